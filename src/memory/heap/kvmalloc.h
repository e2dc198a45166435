/*
 * kvmalloc.h - virtually contiguous allocations built from scattered
 * blocks: when no heap holds a run of n free blocks but n free blocks
 * exist somewhere, kvmalloc takes them from any of its source heaps and
 * has the port map them one after the other in a virtual window, the way
 * Linux's vmalloc does.
 *
 * The window's own allocator is a block heap like every other here: a
 * struct heap over the window's virtual range [start, end), whose table
 * (and optional placement index) the caller gives, outside every pool. Its
 * pool is never read or written by the library (nothing is, at a window
 * address: the memory behind it is only reached through the source
 * heaps' addresses). So the encoding, heap_check and heap_dump_map apply
 * to the window as they do to any heap.
 *
 * The backing record: backing[w] is the address (as its source heap knows
 * it) of the block mapped at window block w, NULL while w is free. It is
 * caller memory too, outside the window and every source pool. Each
 * backing block is a one-block allocation of type HEAP_BLOCK_TYPE_VMAP in
 * its source heap (table byte 45): kfree of one is refused as
 * HEAP_REPORT_FREE_WRONG_OWNER, and the heap map shows them as 'V'.
 *
 * Invariants (kvmalloc_check verifies each; see docs/kvmalloc.md):
 *   V1 the window passes heap_check, and every allocation in it is PLAIN;
 *   V2 backing[w] != NULL exactly when window block w is taken;
 *   V3 every backing[w] is the address of a block of one of the sources
 *      whose table byte is TAKEN | IS_FIRST | VMAP (a one-block VMAP
 *      allocation);
 *   V4 within one window allocation the backing addresses strictly rise
 *      (the blocks are distinct and in address order);
 *   V5 blocks == the window's used blocks == the number of VMAP blocks in
 *      all the sources, and fingerprint == the sum over the record of
 *      kvmalloc_mix(address): a record entry changed behind the allocator's
 *      back, or a VMAP block no entry names, is found;
 *   V6 if the port gave a lookup hook, it names backing[w] at every taken
 *      window block and nothing at the free ones.
 *
 * Decisions:
 *   - the kernel heap tries the window only after a contiguous allocation
 *     failed (kheap.h: kmalloc, kzalloc, kcalloc, krealloc); kvmalloc()
 *     asks for it explicitly; kpalloc never uses it (its memory must be
 *     physically contiguous);
 *   - pointers are block-aligned (window blocks);
 *   - the backing blocks of one allocation are the lowest free blocks of
 *     the sources, taken in address order (lowest source first), so
 *     backing[] of an allocation rises;
 *   - growing a window allocation moves it (a new window range, fresh
 *     blocks, a block-by-block copy through the backing addresses);
 *     shrinking unmaps and frees its tail in place.
 *
 * Threading: no locking; the caller serialises (kheap does, with its lock).
 */
#ifndef PEACHOS_KVMALLOC_H
#define PEACHOS_KVMALLOC_H

#include "heap.h"

/* How many source heaps one window draws on (a multiheap's regions). */
#ifndef KVMALLOC_MAX_SOURCES
#define KVMALLOC_MAX_SOURCES 16
#endif

/*
 * The port's paging hooks. map: make window address `virt` (block-aligned,
 * one block) show the block at `block` (its source heap's address of it;
 * a port whose heap addresses are not physical translates); return 0, or a
 * negative code with nothing mapped. unmap: remove the mapping of `virt`
 * (and flush it from the TLB). lookup (optional, NULL: not checked): the
 * block mapped at `virt`, NULL if none; only kvmalloc_check calls it.
 */
struct kvmalloc_ops
{
    int (*map)(void* ctx, void* virt, void* block);
    void (*unmap)(void* ctx, void* virt);
    void* (*lookup)(void* ctx, const void* virt);
    void* ctx;
};

struct kvmalloc
{
    struct heap window; /* over the virtual range: its pool is never touched */
    struct heap_table window_table;
    void** backing;                            /* [window blocks], caller memory (V2..V5) */
    struct heap* source[KVMALLOC_MAX_SOURCES]; /* lowest pool first */
    size_t sources;
    struct kvmalloc_ops ops;
    size_t blocks;         /* VMAP blocks held (V5) */
    uint64_t fingerprint;  /* sum of kvmalloc_mix over the record (V5) */
    size_t map_failures;   /* allocations undone because the map hook refused */
    size_t failed_allocs;  /* kvmalloc_alloc calls that returned NULL for lack of room */
};

/* The bytes of the backing record a window of `blocks` blocks needs. */
#define KVMALLOC_BACKING_BYTES(blocks) ((blocks) * sizeof(void*))

/*
 * Set up a window over [start, end) (block-aligned) with its table at
 * table_mem ((end - start) / block size bytes), an optional placement index
 * (index_mem, index_bytes: heap_create_indexed's rules; NULL for the scan)
 * and the backing record at `backing` (KVMALLOC_BACKING_BYTES of the window's
 * blocks, zeroed here). No source yet. Returns 0, or -EINVARG having
 * written nothing when: kv, backing, ops or ops->map / ops->unmap is NULL,
 * heap_create(_indexed) refuses the window, or the record overlaps the
 * window, its table, its index or *kv. Cost: O(window blocks).
 */
int kvmalloc_init(struct kvmalloc* kv, void* start, void* end, HEAP_BLOCK_TABLE_ENTRY* table_mem, void* index_mem,
                  size_t index_bytes, void** backing, const struct kvmalloc_ops* ops);

/*
 * Let the window take blocks from `heap` (a region of the multiheap, or
 * the one kernel heap); kept in address order. -EINVARG, nothing changed,
 * when kv or heap is NULL, there are KVMALLOC_MAX_SOURCES already, heap is
 * a source already, or its pool overlaps the window, the window's table,
 * index or record, *kv, or another source's pool.
 */
int kvmalloc_add_source(struct kvmalloc* kv, struct heap* heap);

/* Report hook of refused frees (the window's; NULL: only counted). */
void kvmalloc_set_report(struct kvmalloc* kv, heap_report_fn fn, void* ctx);

/*
 * ceil(size / block size) blocks: the first fit in the window, backed by
 * the lowest free blocks of the sources, mapped through ops.map. NULL for
 * size 0 or a NULL kv (not counted), and, counted in failed_allocs, when
 * the window has no run that long or the sources fewer free blocks, or
 * the map hook refused a block (then also counted in map_failures, and
 * everything taken so far is unmapped and given back). Cost: O(n) hook
 * calls + the sources' blocks scanned up to the last block taken.
 */
void* kvmalloc_alloc(struct kvmalloc* kv, size_t size);

/* kvmalloc_alloc with the backing blocks from the source `only` (NULL:
 * any source), e.g. while the kernel heap serves its first region alone. */
void* kvmalloc_alloc_from(struct kvmalloc* kv, size_t size, const struct heap* only);

/* Is ptr inside the window's range (live or not)? False for a NULL kv. */
bool kvmalloc_owns(const struct kvmalloc* kv, const void* ptr);

/*
 * Free a window allocation: unmap each block, free each backing block in
 * its source, free the window's blocks. NULL does nothing. A pointer the
 * window's heap_free would refuse (outside, unaligned, interior, double
 * free, never allocated) is refused by it with its report kind; a live
 * allocation whose record breaks V3/V4 is refused as
 * HEAP_REPORT_WINDOW_CORRUPT (counted in the window's rejected_frees).
 * Either way nothing changes.
 */
void kvmalloc_free(struct kvmalloc* kv, void* ptr);

/* Usable size (blocks * block size) of a live window allocation starting
 * at ptr, 0 for anything kvmalloc_free would refuse (nothing reported). */
size_t kvmalloc_size(const struct kvmalloc* kv, const void* ptr);

/*
 * Resize: NULL ptr -> kvmalloc_alloc; size 0 or a pointer kvmalloc_free
 * refuses -> kvmalloc_free (frees or refuses and reports), NULL; fewer or
 * as many blocks -> the tail unmapped and freed, ptr; more -> moved: a new
 * allocation, the old blocks copied through their backing addresses, the
 * old one freed. No room: NULL, ptr untouched.
 */
void* kvmalloc_realloc(struct kvmalloc* kv, void* ptr, size_t size);

/* The block mapped at window address ptr (inside a live allocation), as
 * its source heap knows it; NULL if ptr is in no live window block. */
void* kvmalloc_backing(const struct kvmalloc* kv, const void* ptr);

/* The rank (0 = the lowest pool) of the source whose pool holds `block`,
 * SIZE_MAX if none: kv->source[rank]. O(sources). */
size_t kvmalloc_source_rank(const struct kvmalloc* kv, const void* block);

/*
 * V1..V6 above. Returns 0; -ECORRUPT with the first offending window
 * block in *bad (SIZE_MAX when the fault is a count or a fingerprint),
 * if bad is not NULL; -EINVARG for NULL kv. Never writes. Cost: O(window
 * blocks + the sources' blocks), plus one lookup per window block.
 */
int kvmalloc_check(const struct kvmalloc* kv, size_t* bad);

/* The record's fingerprint function (V5): a 64-bit mix of a block address. */
uint64_t kvmalloc_mix(const void* block);

#endif /* PEACHOS_KVMALLOC_H */
