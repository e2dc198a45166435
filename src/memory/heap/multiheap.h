/*
 * multiheap.h - one block heap per usable region of physical memory (for
 * example each usable range of the e820 map), behind one allocator: the
 * 64-bit course's "multiheap", built on heap.h.
 *
 * Each region is a complete struct heap with its own table (and, optionally,
 * its own placement index), in memory the caller gives, outside every pool.
 * The multiheap keeps its state (the heaps, their table descriptors, the
 * address order, its counters) in struct multiheap, never in a pool.
 *
 * Placement is first fit by address across the regions: the lowest region
 * that has a run of the blocks asked for, at the lowest such run inside it.
 * That is exactly what one scan of the regions' tables in address order
 * finds (heap_scan_first_fit on each, lowest region first). An allocation
 * never spans two regions, even adjacent ones (the end of one the start of
 * the next): each region is a heap of its own.
 *
 * A free goes to the region that holds the pointer (a binary search over
 * the regions in address order); that region's heap_free checks it and
 * refuses it if it is bad, with its own report. A pointer in no region
 * (before the first, between two, past the last) is refused by the
 * multiheap: HEAP_REPORT_FREE_OUTSIDE through the same report hook, block
 * SIZE_MAX, counted in rejected_outside; nothing changes.
 *
 * Threading: no locking; the caller serialises every call, as for heap.h.
 */
#ifndef PEACHOS_MULTIHEAP_H
#define PEACHOS_MULTIHEAP_H

#include "heap.h"

/* How many regions one multiheap can hold (its size grows with it: about
 * 100 bytes per region on x86_64). A kernel may define its own. */
#ifndef MULTIHEAP_MAX_REGIONS
#define MULTIHEAP_MAX_REGIONS 16
#endif

_Static_assert(MULTIHEAP_MAX_REGIONS >= 1, "MULTIHEAP_MAX_REGIONS must be at least 1");

/* One region: a heap and the descriptor of its table (the entries are the
 * caller's memory). */
struct multiheap_region
{
    struct heap heap;
    struct heap_table table;
};

/*
 * The allocator state. Regions are stored in the slot they were added to
 * (slots never move: a heap points at its table) and ordered through
 * order[]. Invariants (multiheap_check verifies each):
 *   I1 count <= MULTIHEAP_MAX_REGIONS, and order[0..count) holds every slot
 *      0..count-1 exactly once;
 *   I2 the heap of every slot describes that slot's table (heap.table ==
 *      &table) and passes heap_check (its table, counters and index);
 *   I3 the pools in order[] order are sorted by address: the k-th starts
 *      below the (k+1)-th;
 *   I4 total_blocks is the sum of the regions' blocks;
 *   I5 two regions share no byte: neither of pool, table entries nor index
 *      (so pools are disjoint, the end of the k-th at most the start of the
 *      (k+1)-th, and no region's metadata lies in another's pool).
 * (Within one region, heap_create keeps pool, table and index apart.)
 */
struct multiheap
{
    struct multiheap_region slot[MULTIHEAP_MAX_REGIONS];
    size_t order[MULTIHEAP_MAX_REGIONS]; /* slot numbers, lowest address first */
    size_t count;                        /* regions added */
    size_t total_blocks;                 /* blocks of all regions */
    size_t rejected_outside;             /* frees refused because the pointer is in no region */
    size_t failed_allocs;                /* allocations that found room in no region */
    heap_report_fn report;               /* also installed in every region */
    void* report_ctx;
};

struct multiheap_stats
{
    size_t regions;
    /* Sums over the regions, except: largest_free_run is the largest of
     * any one region (no allocation spans two); rejected_frees adds the
     * multiheap's own refusals (rejected_outside); failed_allocs is the
     * multiheap's (a request none of the regions could take). */
    struct heap_stats total;
    size_t rejected_outside;
};

/* An empty multiheap: no region, counters 0, no report hook.
 * Returns 0, or -EINVARG for NULL. */
int multiheap_init(struct multiheap* mh);

/*
 * Add the region [start, end): a heap whose table is the (end - start) /
 * block size bytes at table_mem, and, if index_mem is not NULL, whose
 * placement index is the index_bytes bytes there (heap_create_indexed's
 * rules). Regions may be added in any order; they are kept sorted by
 * address. Refused with -EINVARG, nothing written, when: mh is NULL, the
 * multiheap is full, heap_create(_indexed) refuses the region (alignment,
 * size, metadata in the pool...), or the region overlaps another region's
 * pool, table or index, or its table or index lies in another region's
 * pool, or *mh lies in its pool. Returns 0 on success.
 * Cost: O(region blocks + regions).
 */
int multiheap_add_region(struct multiheap* mh, void* start, void* end, HEAP_BLOCK_TABLE_ENTRY* table_mem,
                         void* index_mem, size_t index_bytes);

/* ceil(size / block size) whole blocks at the first fit across the regions
 * (see above). NULL for a NULL mh, size 0 (not counted), or when no region
 * has room (counted in failed_allocs). */
void* multiheap_malloc(struct multiheap* mh, size_t size);

/* multiheap_malloc, then the `size` requested bytes zeroed. */
void* multiheap_zalloc(struct multiheap* mh, size_t size);

/* Free an allocation of any region. NULL (or a NULL mh) does nothing; a bad
 * pointer is refused and reported (see above). */
void multiheap_free(struct multiheap* mh, void* ptr);

/*
 * Resize an allocation, keeping whole blocks:
 *   ptr NULL     -> multiheap_malloc(size);
 *   in no region -> refused as multiheap_free refuses it, NULL;
 *   size 0 or a pointer its region's heap_free would refuse -> heap_realloc
 *                   in that region (frees it, or refuses and reports it), NULL;
 *   fewer blocks or as many -> shrunk in place, ptr;
 *   more blocks, the next ones in its region free -> grown in place, ptr;
 *   otherwise    -> moved to the first fit across the regions (the old one
 *                   still taken while it is found), old blocks copied, then
 *                   freed. No room: NULL (counted in failed_allocs), ptr
 *                   untouched.
 */
void* multiheap_realloc(struct multiheap* mh, void* ptr, size_t size);

/* Usable size (whole blocks) of the live allocation starting at ptr, 0 for
 * anything multiheap_free would refuse (nothing reported). */
size_t multiheap_allocation_size(const struct multiheap* mh, const void* ptr);

/* Is ptr inside the pool of one of the regions? */
bool multiheap_is_address_within_heap(const struct multiheap* mh, const void* ptr);

/* The heap of the region holding ptr, NULL if none: for heap_dump_map,
 * heap_get_stats of one region. */
struct heap* multiheap_get_heap_for_address(struct multiheap* mh, const void* ptr);

/* The k-th region by address (k < regions), NULL otherwise. */
struct heap* multiheap_region(struct multiheap* mh, size_t k);

/* Install the report hook in the multiheap and every region, present and
 * future (NULL: refusals are only counted). */
void multiheap_set_report(struct multiheap* mh, heap_report_fn fn, void* ctx);

/*
 * The totals in *stats and, for k < max_regions, the k-th region's own
 * heap_get_stats in regions[k] (regions may be NULL when max_regions is 0).
 * mh and stats must not be NULL. Cost: sum of heap_get_stats.
 */
void multiheap_get_stats(const struct multiheap* mh, struct multiheap_stats* stats, struct heap_stats* regions,
                         size_t max_regions);

/*
 * heap_check of every region and the invariants I1..I5 above. Returns 0;
 * -ECORRUPT with the region (its rank by address; SIZE_MAX when the fault
 * is the multiheap's own, I1 or I4) in *bad_region and heap_check's block
 * (SIZE_MAX if none) in *bad_block, each if not NULL; -EINVARG for NULL mh.
 * Never writes the heaps. Cost: O(all blocks + regions^2).
 */
int multiheap_check(const struct multiheap* mh, size_t* bad_region, size_t* bad_block);

#endif /* PEACHOS_MULTIHEAP_H */
