/*
 * heap.h - a block-table heap: one table byte describes one block of
 * PEACHOS_HEAP_BLOCK_SIZE bytes of the data pool. This block layer keeps no
 * metadata in the pool at all, so a caller who overruns a buffer cannot
 * corrupt the table or the index. (The small-object caches of kcache.h do
 * keep a header at the start of each slab, in the pool; it is sealed with a
 * keyed checksum and verified before every use, see kcache.h.)
 *
 * Table entry encoding (one HEAP_BLOCK_TABLE_ENTRY per block):
 *
 *   bit 7    HEAP_BLOCK_HAS_NEXT   the allocation continues in the next block
 *   bit 6    HEAP_BLOCK_IS_FIRST   first block of an allocation
 *   bits 5-4 reserved, always 0
 *   bits 3-1 HEAP_BLOCK_TYPE_MASK  owner of the allocation (0 = caller of
 *            heap_malloc, HEAP_BLOCK_TYPE_CACHE = small-object cache,
 *            HEAP_BLOCK_TYPE_VMAP = a block behind the kvmalloc window)
 *   bit 0    HEAP_BLOCK_TABLE_ENTRY_TAKEN
 *
 * An n-block allocation starting at block b is encoded as
 *   entries[b]         = TAKEN | IS_FIRST (| HAS_NEXT if n > 1)
 *   entries[b+1..b+n-2] = TAKEN | HAS_NEXT
 *   entries[b+n-1]     = TAKEN              (when n > 1)
 * with the same type bits on every block, so 1 block is 41, 2 blocks C1 01,
 * 3 blocks C1 81 01. A free block is 00. heap_check() verifies exactly this.
 *
 * Threading: heap_* functions do no locking; the caller serialises them
 * (kheap does, through its lock hook).
 *
 * This header is the contract a kernel calls. The functions the library's
 * own layers share (the caches, the index, the checker, tests and tools)
 * are in heap_internal.h.
 */
#ifndef PEACHOS_HEAP_H
#define PEACHOS_HEAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "heap_config.h"

#define HEAP_BLOCK_TABLE_ENTRY_TAKEN 0x01
#define HEAP_BLOCK_TABLE_ENTRY_FREE 0x00
#define HEAP_BLOCK_HAS_NEXT 0x80 /* 0b10000000 */
#define HEAP_BLOCK_IS_FIRST 0x40 /* 0b01000000 */

/* Our additions to the seed's encoding (the seed leaves these bits 0). */
#define HEAP_BLOCK_TYPE_MASK 0x0E
#define HEAP_BLOCK_TYPE_PLAIN 0x00 /* returned by heap_malloc */
#define HEAP_BLOCK_TYPE_CACHE 0x02 /* owned by the small-object cache */
#define HEAP_BLOCK_TYPE_VMAP 0x04  /* one block backing a virtually contiguous allocation (kvmalloc.h) */
/* Every bit a valid entry may have; the others (5, 4) are always 0. */
#define HEAP_BLOCK_KNOWN_BITS \
    (HEAP_BLOCK_HAS_NEXT | HEAP_BLOCK_IS_FIRST | HEAP_BLOCK_TYPE_MASK | HEAP_BLOCK_TABLE_ENTRY_TAKEN)

typedef unsigned char HEAP_BLOCK_TABLE_ENTRY;

struct heap_table
{
    HEAP_BLOCK_TABLE_ENTRY* entries;
    size_t total; /* number of entries = number of blocks in the pool */
};

/* Why a heap_free() was refused. The table is unchanged in every case. */
enum heap_report_kind
{
    HEAP_REPORT_FREE_OUTSIDE = 1,  /* pointer is not inside the data pool */
    HEAP_REPORT_FREE_UNALIGNED,    /* pointer is inside but not at a block start */
    HEAP_REPORT_FREE_NOT_ALLOCATED,/* block is free: double free or never allocated */
    HEAP_REPORT_FREE_INTERIOR,     /* block is taken but not the first of its allocation */
    HEAP_REPORT_FREE_WRONG_OWNER,  /* block belongs to the small-object cache (or vice versa) */
    HEAP_REPORT_FREE_CORRUPT,      /* the allocation's chain in the table is broken */
    HEAP_REPORT_CACHE_BAD_FREE,    /* kfree of a pointer that is no live small object */
    HEAP_REPORT_CACHE_USE_AFTER_FREE, /* poison of a freed small object was overwritten */
    HEAP_REPORT_INDEX_MISMATCH,    /* the index named a run the table says is not free: index dropped */
    HEAP_REPORT_WINDOW_CORRUPT,    /* a kvmalloc allocation's record of its backing blocks is corrupt */
};

struct heap_report
{
    enum heap_report_kind kind;
    const void* ptr; /* the pointer that was passed (INDEX_MISMATCH: the block the index named) */
    size_t block;    /* its block number, or SIZE_MAX if outside the pool */
};

/* Words for a report (heap_report.c, optional): is it a refused free (the
 * three other kinds come from an allocation)? What happened ("refused free
 * of", "write after free of", "corrupt slab at", "index named") and why. */
bool heap_report_is_free(enum heap_report_kind kind);
const char* heap_report_action(enum heap_report_kind kind);
const char* heap_report_reason(enum heap_report_kind kind);

/* Report hook: called once per refused operation. May print, log or panic. */
typedef void (*heap_report_fn)(void* ctx, const struct heap_report* report);

struct heap_index;      /* optional placement index, see heap_index.h */
struct heap_index_ops;  /* what heap.c needs from it (heap_internal.h) */
struct heap_index_node; /* a summary node of the index (heap_index.h) */

/*
 * Where the index's arrays lie inside heap->index and how long they are.
 * heap_create_indexed computes it once from table->total and keeps it here,
 * in the allocator's own state: the index memory is the caller's, and a
 * stray write there must not move what the index reads or writes.
 * heap_index.c describes the arrays.
 */
#define HEAP_INDEX_LEVELS_MAX 9 /* levels of run counts for 2^26 words, eight per word above the next */

struct heap_index_layout
{
    uint64_t* bitmap;              /* [words] */
    uint64_t* counts;              /* the levels of run counts, eight bytes per word */
    struct heap_index_node* nodes; /* [leaves] */
    uint8_t* best;                 /* [words] */
    size_t words;
    size_t leaves;
    size_t levels; /* a size_t: no padding at the end, so struct heap compares whole */
    uint32_t level_at[HEAP_INDEX_LEVELS_MAX];  /* first word of each level in counts */
    uint32_t level_len[HEAP_INDEX_LEVELS_MAX]; /* counts in each level */
};

struct heap
{
    struct heap_table* table;
    /* start address of the heap data pool */
    void* saddr;

    /* Our additions; heap_create sets them. */
    size_t used_blocks;      /* blocks with TAKEN set */
    size_t live_allocations; /* entries with IS_FIRST set */
    size_t rejected_frees;   /* heap_free calls refused (and reported) */
    size_t failed_allocs;    /* heap_malloc calls that returned NULL for lack of space */
    heap_report_fn report;   /* NULL: refused frees are only counted */
    void* report_ctx;
    struct heap_index* index;               /* NULL: linear first-fit scan */
    const struct heap_index_ops* index_ops; /* set together with index */
    struct heap_index_layout index_layout;  /* set together with index */
};

struct heap_stats
{
    size_t total_blocks;
    size_t free_blocks;
    size_t used_blocks;
    size_t largest_free_run; /* in blocks */
    size_t live_allocations;
    size_t rejected_frees;
    size_t failed_allocs;
};

/*
 * Create a heap over [ptr, end) with `table` describing it.
 * Checks: no NULL pointer (heap, ptr, end, table, table->entries), ptr and
 * end block-aligned, end > ptr, table->total == (end - ptr) / block size,
 * and the metadata apart: the entries, *heap and *table outside the pool,
 * the entries overlapping neither *heap nor *table.
 * Returns 0 with every entry FREE, or -EINVARG having written nothing at all.
 * Cost: O(table->total) (one memset of the table). No placement index: use
 * heap_create_indexed() (heap_index.h) for O(log n) placement.
 */
int heap_create(struct heap* heap, void* ptr, void* end, struct heap_table* table);

/*
 * Allocate ceil(size / block size) whole blocks at the lowest-addressed run
 * of that many free blocks (first fit). The pointer is block-aligned.
 * Returns NULL if heap is NULL, size is 0, or no run is long enough.
 */
void* heap_malloc(struct heap* heap, size_t size);

/*
 * Free the allocation that starts at `ptr`: from its IS_FIRST block along
 * HAS_NEXT to its last block. NULL (and a NULL heap) does nothing. Any other
 * pointer that is not the start of a live plain allocation leaves the table
 * unchanged, increments rejected_frees and is passed to heap->report.
 */
void heap_free(struct heap* heap, void* ptr);

/*
 * Usable size of the live allocation that starts at `ptr`: its blocks times
 * the block size. 0 for NULL and for any pointer heap_free would refuse
 * (nothing is reported). O(length of the allocation).
 */
size_t heap_allocation_size(const struct heap* heap, const void* ptr);

/* heap_malloc, then zero the `size` requested bytes (the 64-bit course's name). */
void* heap_zalloc(struct heap* heap, size_t size);

/*
 * Resize a heap_malloc allocation, keeping it whole blocks:
 *   ptr NULL  -> heap_malloc(size);
 *   size 0    -> heap_free(ptr), returns NULL;
 *   bad ptr   -> refused and reported exactly as heap_free refuses it, NULL;
 *   otherwise -> shrunk in place, grown in place when the next blocks are
 *                free, else moved to the first fit (the old blocks copied,
 *                then freed).
 * If it cannot grow, returns NULL and ptr is untouched.
 */
void* heap_realloc(struct heap* heap, void* ptr, size_t size);

/* Install the report hook (NULL to only count). */
void heap_set_report(struct heap* heap, heap_report_fn fn, void* ctx);

/* Statistics (heap_check.c). O(1) with an index, O(total) without. */
void heap_get_stats(const struct heap* heap, struct heap_stats* stats);

/*
 * Verify every invariant of the table (see the encoding above), the
 * counters, and the index if there is one. Returns 0, or -ECORRUPT and
 * stores the first offending block in *bad_block (if not NULL; SIZE_MAX
 * when the fault is not tied to a block, e.g. a counter), or -EINVARG for
 * a NULL or malformed heap. O(total). Never writes.
 */
int heap_check(const struct heap* heap, size_t* bad_block);

/*
 * Heap map (heap_map.c): a text picture of the table, written through
 * `write` (e.g. a serial port or stdout). Format, one line each:
 *   HEAPMAP v1 blocks=<total> per_char=<k> width=<w>
 *   <first block, 8 hex digits> <w characters, one per k blocks>
 *   ...
 *   HEAPMAP end used=<u> free=<f> largest_free=<l> allocations=<a> rejected_frees=<r>
 * With k = 1: '.' free, '#' first block of an allocation, '=' its further
 * blocks, 'C' / 'c' the same for small-object cache blocks, 'V' / 'v' for
 * blocks behind the kvmalloc window, '?' an entry
 * that is invalid by itself (flags without TAKEN, reserved bits, unknown
 * type). Faults that need context, such as an orphan continuation block,
 * show as '=' / 'c': heap_check finds those. With k > 1: '.' all free, '#'
 * all taken, '1'..'9' taken share in tenths (rounded up, at most 9), '?'
 * any invalid entry. blocks_per_char = 0 picks the smallest k that fits in
 * max_lines lines (0 counts as 1). width 0 or above 256 means 64.
 */
typedef void (*heap_write_fn)(void* ctx, const char* text, size_t len);
void heap_dump_map(const struct heap* heap, heap_write_fn write, void* ctx, size_t blocks_per_char, size_t width,
                   size_t max_lines);

#endif /* PEACHOS_HEAP_H */
