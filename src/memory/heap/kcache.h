/*
 * kcache.h - small-object caches (slab style) on top of the block heap, and
 * the kmalloc family built on them. docs/kcache.md has the full design.
 *
 * Sizes 1..KCACHE_MAX_SIZE go to one of KCACHE_CLASSES size classes:
 *   16, 32, 48, ..., 512          (16-byte steps: 32 classes)
 *   640, 768, 896, 1024,
 *   1280, 1536, 1792, 2048        (four classes per power of two: 8 classes)
 * Each class carves objects out of slabs: runs of 1..KCACHE_MAX_SLAB_BLOCKS
 * heap blocks allocated with heap_malloc_blocks_typed(..., HEAP_BLOCK_TYPE_CACHE),
 * so the table encoding of a slab is the seed's chain encoding plus the type
 * bits 0x02: 1 block 43, 2 blocks C3 03, 3 blocks C3 83 03. Larger sizes get
 * whole blocks with the seed's encoding exactly (41, C1 01, ...).
 *
 * A slab holds objects only: object k at slab + k * size. What the caches
 * know of a slab (its class, partial-list links, live count and allocation
 * bitmap) lives in the slab table, one record per heap block beside the
 * block table, in memory the caller gives (kcache_table_bytes), outside the
 * pool. No byte of the pool is allocator state, so a write past the end of
 * an object (or anywhere in the pool) can change objects but never what the
 * caches decide: an object is never handed out twice, and a bad free is
 * decided from the table and the slab table alone.
 *
 * Alignment: every small object is 16-byte aligned (slabs are block-aligned,
 * classes are multiples of 16). Whole-block allocations (size >
 * KCACHE_MAX_SIZE, and kcache_palloc of any size) are
 * PEACHOS_HEAP_BLOCK_SIZE-aligned.
 *
 * Threading: no locking here; the caller serialises (kheap does).
 */
#ifndef PEACHOS_KCACHE_H
#define PEACHOS_KCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "heap.h"

#define KCACHE_ALIGN 16          /* alignment of every small object, and the smallest class */
#define KCACHE_SMALL_STEP 16     /* class spacing up to KCACHE_SMALL_MAX */
#define KCACHE_SMALL_MAX 512     /* last class of the 16-byte steps */
#define KCACHE_MAX_SIZE 2048     /* largest size served by a cache: half a 4 KiB block */
#define KCACHE_OCTAVE_CLASSES 4  /* classes per power of two above KCACHE_SMALL_MAX */
#define KCACHE_SMALL_CLASSES (KCACHE_SMALL_MAX / KCACHE_SMALL_STEP) /* 32 */
#define KCACHE_CLASSES (KCACHE_SMALL_CLASSES + 2 * KCACHE_OCTAVE_CLASSES) /* 32 + 8, see above */
#define KCACHE_MAX_SLAB_BLOCKS 8 /* longest slab a class may prefer */
#define KCACHE_POISON_BYTE 0x6B  /* content of a free object with KCACHE_FLAG_POISON */
/* The classes above KCACHE_SMALL_MAX cover two powers of two. */
_Static_assert(KCACHE_MAX_SIZE == 4 * KCACHE_SMALL_MAX, "two octaves above the 16-byte steps");

/* Bitmap words per heap block in the slab table: a bit for every
 * KCACHE_ALIGN bytes, so any slab's bitmap fits in its blocks' records. */
#define KCACHE_BLOCK_WORDS (PEACHOS_HEAP_BLOCK_SIZE / KCACHE_ALIGN / (8 * sizeof(uintptr_t)))
#define KCACHE_NONE UINT32_MAX /* no slab: an empty list, no spare, the end of a list */

/*
 * The slab table's record of one heap block (an array of these, one per
 * block of the heap, given to kcache_init). The record of a slab's first
 * block describes the slab; the bitmap of a slab of k blocks is the k
 * records' words read in order (word w in record first + w / KCACHE_BLOCK_WORDS),
 * 1 = live object. Invariants (kcache_check verifies each):
 *   - a block that starts no slab: shape, next, prev and inuse are 0;
 *   - a block of no slab: its words are 0;
 *   - a slab's first block: shape == (class << 1 | geometry) + 1 and that
 *     geometry's length is the CACHE allocation's length in the table;
 *     inuse == the number of live objects <= capacity; next/prev are the
 *     first blocks of its neighbours on the class's partial list, or
 *     KCACHE_NONE (both, when full or the spare);
 *   - a slab's words: the first `words` hold one bit per object, then 1s
 *     from the capacity to the end of the last of them (so the free-slot
 *     search needs no bound); the words after them are 0.
 */
struct kcache_slab
{
    uint32_t next;   /* partial list: first block of the next slab, or KCACHE_NONE */
    uint32_t prev;
    uint16_t inuse;  /* live objects */
    uint8_t shape;   /* (class << 1 | KCACHE_PREFERRED or KCACHE_SINGLE) + 1; 0: no slab starts here */
    uint8_t unused;  /* 0 */
    uintptr_t bits[KCACHE_BLOCK_WORDS];
};

/* kcache_init flags */
#define KCACHE_FLAG_POISON 0x1u /* poison freed objects, check the poison on allocation */

/* Where the library asks the heap for memory; the fault hook sees these. */
enum kcache_fault_site
{
    KCACHE_FAULT_SLAB = 1,  /* a new slab for a cache (cache growth) */
    KCACHE_FAULT_BLOCKS,    /* whole blocks: kmalloc above KCACHE_MAX_SIZE, kpalloc */
    KCACHE_FAULT_GROW,      /* krealloc growing a block allocation in place */
    KCACHE_FAULT_MOVE,      /* krealloc's new allocation when it has to move */
};

/* Test hook (issue 6): return true to make that allocation fail as if the
 * heap were full. Called once per attempt, before the heap is asked. */
typedef bool (*kcache_fault_fn)(void* ctx, enum kcache_fault_site site);

#define KCACHE_PREFERRED 0
#define KCACHE_SINGLE 1

/* Shape of a slab of a class: constant after kcache_init. */
struct kcache_geometry
{
    uint16_t blocks;   /* slab length in blocks */
    uint16_t capacity; /* objects per slab: blocks * block size / class size */
    uint16_t words;    /* bitmap words (uintptr_t) */
};

/*
 * One size class. Invariants (kcache_check verifies each):
 *   - every slab of the class has 0 < inuse < capacity and is on `partial`,
 *     or inuse == capacity and is on no list (next == prev == KCACHE_NONE),
 *     or inuse == 0 and is `spare` (at most one: the hysteresis);
 *   - `partial` is a well-formed doubly-linked list of partial_slabs slabs;
 *   - slabs and objects count the class's slabs and live objects.
 */
struct kcache_class
{
    uint32_t size;                     /* object size, a multiple of KCACHE_ALIGN */
    uint32_t reciprocal;               /* ceil(2^32 / size): offset / size by a multiply */
    /* [KCACHE_PREFERRED]: the normal slab (least waste, see kcache.c);
     * [KCACHE_SINGLE]: one block, used when no longer free run is left. */
    struct kcache_geometry geometry[2];
    uint32_t partial;                  /* first block of the first slab with free and live objects */
    uint32_t spare;                    /* first block of the one empty slab kept, or KCACHE_NONE */
    size_t partial_slabs;
    size_t slabs;
    size_t objects;
};

#if PEACHOS_KCACHE_MAGAZINES
#define KCACHE_MAG_SIZE 63  /* objects a magazine holds: with its count, a power-of-two size */
#define KCACHE_MAG_BATCH 32 /* at most this many objects moved per refill or drain (limit / 2) */
#define KCACHE_NO_CPU 0xFFFFu /* kheap_port_cpu_enter: no per-CPU state for this caller */

/* A CPU's stack of free objects of one class: taken in their slabs, not
 * live. Touched only by its CPU (inside its per-CPU section) or, for
 * kcache_check, while that CPU is quiet. */
struct kcache_mag
{
    uint32_t count;
    uint32_t limit; /* full at this count: eight slabs' capacity, at most KCACHE_MAG_SIZE,
                       so that a CPU keeps at most a few blocks of the largest classes */
    void* objects[KCACHE_MAG_SIZE];
};

struct kcache_cpu
{
    struct kcache_mag mags[KCACHE_CLASSES];
};

/* The CPUs other than the caller that may be inside their per-CPU section
 * now (bit k = CPU k); called by kcache_check under the lock. */
typedef uint32_t (*kcache_busy_fn)(void);
#endif

struct kcache
{
    struct heap* heap;
    /* Copies of the heap's fixed geometry (heap_create sets it once), so the
     * kfree fast path reaches the table in one load. */
    uintptr_t pool;                  /* heap->saddr */
    HEAP_BLOCK_TABLE_ENTRY* entries; /* heap->table->entries */
    size_t blocks;                   /* heap->table->total */
    struct kcache_slab* slab_table;  /* the caller's memory: a record per block */
#if PEACHOS_KCACHE_MAGAZINES
    /* After the records in the same memory: the live bitmap, a bit per
     * KCACHE_ALIGN bytes of the pool (KCACHE_BLOCK_WORDS words a block):
     * bit i set = the caller holds the object starting at pool + 16 * i,
     * so a pointer finds its bit without its slab's class. Changed only by
     * atomic operations: the per-CPU paths change it without the lock.
     * Invariant: set only at the start of an object whose slot is set in
     * its slab's bitmap (live is a subset of taken; taken but not live =
     * in a CPU's magazine). */
    uintptr_t* live;
    size_t fast_blocks; /* blocks, or 0 with poison: the lock-free kfree takes pointers below it */
#endif
    unsigned flags;
    kcache_fault_fn fault;
    void* fault_ctx;
    size_t slabs;          /* all slabs of all classes */
    size_t slab_blocks;    /* heap blocks they occupy */
    size_t corruptions;    /* frees into a slab whose record names no class (each reported) */
    size_t use_after_free; /* poison violations detected (each reported) */
    size_t forced_failures;/* allocations failed by the fault hook */
    struct kcache_class classes[KCACHE_CLASSES];
#if PEACHOS_KCACHE_MAGAZINES
    kcache_busy_fn busy; /* NULL: every CPU quiet while kcache_check runs */
    struct kcache_cpu cpus[PEACHOS_KCACHE_CPUS];
#endif
};

struct kcache_stats
{
    size_t slabs;
    size_t slab_blocks;
    size_t spare_slabs;
    size_t objects;       /* live small objects */
    size_t object_bytes;  /* their class sizes summed */
    size_t corruptions;
    size_t use_after_free;
    size_t forced_failures;
    size_t table_bytes;   /* the slab table, outside the pool */
};

/* Bytes of slab table a heap of `blocks` blocks needs (a record per block),
 * or 0 if `blocks` is too many for 32-bit list links. */
size_t kcache_table_bytes(size_t blocks);

/*
 * Set up caches over `heap`, which must have been created and hold no
 * CACHE-typed blocks (re-creating the heap means calling this again, since
 * the heap's pool and table are copied). `slab_table` is the caller's
 * memory for the slab table, at least kcache_table_bytes(blocks of the
 * heap) bytes, aligned for a uintptr_t, sharing no byte with the pool, the
 * block table or *kc; it is cleared here and must not be written by anyone
 * else after. Computes each class's geometry. Returns 0, or -EINVARG for a
 * NULL argument, unknown flags, or a slab table that is too small,
 * misaligned or overlaps the heap (then nothing is written).
 * O(KCACHE_CLASSES + slab table bytes).
 */
int kcache_init(struct kcache* kc, struct heap* heap, void* slab_table, size_t table_bytes, unsigned flags);

/* Install the fault hook (NULL: never fail on purpose). */
void kcache_set_fault(struct kcache* kc, kcache_fault_fn fn, void* ctx);

/* Class index for a size in 1..KCACHE_MAX_SIZE (KCACHE_CLASSES otherwise). */
size_t kcache_class_of(size_t size);

/*
 * kmalloc: size 0 -> NULL; 1..KCACHE_MAX_SIZE -> a 16-byte aligned object of
 * the smallest class that fits; larger -> whole blocks (block-aligned, plain
 * seed encoding). NULL when the heap cannot supply the memory (after
 * returning every spare slab to it and trying once more).
 * O(1) but for a new slab (heap_malloc_blocks_typed) and, with
 * KCACHE_FLAG_POISON, the poison check of the object.
 */
void* kcache_alloc(struct kcache* kc, size_t size);

/* Whole blocks for any size >= 1: always block-aligned. NULL for size 0. */
void* kcache_palloc(struct kcache* kc, size_t size);

/*
 * kfree: NULL does nothing. A live small object or the start of a live block
 * allocation is freed. Anything else (interior or misaligned pointer, double
 * free, free block, outside the pool) changes nothing, increments
 * heap->rejected_frees and is passed to heap->report: pointers into a slab
 * with HEAP_REPORT_CACHE_BAD_FREE (HEAP_REPORT_FREE_CORRUPT if the slab's
 * record names no class: a slab table written by someone else), others
 * with the kinds heap_free uses. O(1) for a small object.
 */
void kcache_free(struct kcache* kc, void* ptr);

/*
 * krealloc:
 *   ptr NULL          -> kcache_alloc(size);
 *   size 0            -> kcache_free(ptr), returns NULL;
 *   bad ptr           -> refused exactly as kcache_free refuses it, returns NULL;
 *   small object      -> the same pointer if size <= its class size (it never
 *                        moves to shrink), else moved to kcache_alloc(size);
 *   block allocation  -> stays whole blocks (so kpalloc memory stays
 *                        block-aligned): shrunk in place, grown in place when
 *                        the next blocks are free, else moved to new blocks.
 * On a move the old usable size (ksize) is copied, then the old memory is
 * freed. If the move cannot be made, returns NULL and ptr is untouched.
 */
void* kcache_realloc(struct kcache* kc, void* ptr, size_t size);

/* Usable size: the class size, or the blocks' bytes; 0 for NULL or any
 * pointer kcache_free would refuse (no report for NULL/bad pointers). */
size_t kcache_size(const struct kcache* kc, const void* ptr);

/* Return every spare slab to the heap. Returns the number of blocks freed. */
size_t kcache_trim(struct kcache* kc);

/* Counters (O(KCACHE_CLASSES)). */
void kcache_get_stats(const struct kcache* kc, struct kcache_stats* stats);

/*
 * heap_check, then every cache invariant: each class's partial list and
 * spare; every record of the slab table (struct kcache_slab: class,
 * geometry against the table, bitmap against inuse, padding bits, the
 * zeros of blocks that start no slab); that every CACHE-typed allocation in
 * the table is a slab of its class on the right list; the counters; and
 * with KCACHE_FLAG_POISON the poison of every free object. Returns 0 or
 * -ECORRUPT with the first offending block in *bad_block (SIZE_MAX for a
 * counter), -EINVARG for NULL. O(blocks (+ free objects with poison)).
 * Never writes.
 */
int kcache_check(const struct kcache* kc, size_t* bad_block);

#if PEACHOS_KCACHE_MAGAZINES
/*
 * The per-CPU front end (kcache_cpu.c; its lock-free halves, inline, in
 * kcache_cpu.h). `cpu` < PEACHOS_KCACHE_CPUS, and the caller is inside
 * that CPU's per-CPU section (nothing else touches its magazines
 * meanwhile). These take the lock's place for the magazines: the caller
 * holds the lock. alloc_locked refills an empty magazine (NULL: no room
 * even after this CPU's magazines were given back); drain gives the
 * oldest KCACHE_MAG_BATCH objects of a full one back to their slabs.
 */
void* kcache_cpu_alloc_locked(struct kcache* kc, unsigned cpu, size_t ci);
void kcache_cpu_drain(struct kcache* kc, unsigned cpu, size_t ci);
/* Every object of the CPU's magazines back to its slab (lock held);
 * how many there were. */
size_t kcache_cpu_flush(struct kcache* kc, unsigned cpu);
/* Objects in every magazine (racy while CPUs run; exact when quiet). */
size_t kcache_cpu_held(const struct kcache* kc, size_t ci);
void kcache_set_busy(struct kcache* kc, kcache_busy_fn busy);
#endif

#endif /* PEACHOS_KCACHE_H */
