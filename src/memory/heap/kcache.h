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
 * Slab layout: [header | bitmap | pad to 16 | object 0 | object 1 | ...]. The
 * header (struct kcache_slab, private: kcache_internal.h) holds the partial-list
 * links, the class, the geometry, the number of live objects and the
 * allocation bitmap (1 bit per object, 1 = live). There is no free list in
 * the objects: free objects hold nothing the allocator reads (except the
 * poison, when enabled). The header carries a checksum keyed with a per-cache
 * secret over all its words and the slab's own address; it is verified
 * before every use, and a mismatch is reported and never followed. A slab
 * whose header fails when the class needs it (partial-list head, spare, a
 * neighbour of a slab that empties) is quarantined: left allocated for
 * ever, its objects lost, and the class's partial list rebuilt from the
 * table (O(table), on that rare event) so that the class goes on working
 * (docs/kcache.md, "Quarantine").
 *
 * Alignment: every small object is 16-byte aligned (slabs are block-aligned,
 * the first object is at a multiple of 16, classes are multiples of 16).
 * Whole-block allocations (size > KCACHE_MAX_SIZE, and kcache_palloc of any
 * size) are PEACHOS_HEAP_BLOCK_SIZE-aligned.
 *
 * Threading: no locking here; the caller serialises (kheap does).
 */
#ifndef PEACHOS_KCACHE_H
#define PEACHOS_KCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "heap.h"

#define KCACHE_ALIGN 16          /* alignment of every small object */
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

struct kcache_slab; /* header in the slab's first block, see kcache_internal.h */

#define KCACHE_PREFERRED 0
#define KCACHE_SINGLE 1

/* Shape of a slab of a class: constant after kcache_init. */
struct kcache_geometry
{
    uint16_t blocks;   /* slab length in blocks */
    uint16_t capacity; /* objects per slab */
    uint16_t offset;   /* byte offset of object 0: header + bitmap, rounded up to KCACHE_ALIGN */
    uint16_t words;    /* bitmap words (uintptr_t) */
};

/*
 * One size class. Invariants (kcache_check verifies each):
 *   - every slab of the class has 0 < inuse < capacity and is on `partial`,
 *     or inuse == capacity and is on no list (next == prev == NULL),
 *     or inuse == 0 and is `spare` (at most one: the hysteresis);
 *   - `partial` is a well-formed doubly-linked list of partial_slabs slabs;
 *   - slabs and objects count the class's slabs and live objects.
 * A quarantined slab breaks the first invariant for good (its header is
 * corrupt), so kcache_check keeps reporting it; it stays counted in
 * `slabs` and its objects in `objects` (they are still allocated).
 */
struct kcache_class
{
    uint32_t size;                     /* object size, a multiple of KCACHE_ALIGN */
    uint32_t reciprocal;               /* ceil(2^32 / size): offset / size by a multiply */
    /* [KCACHE_PREFERRED]: the normal slab (least waste, see kcache.c);
     * [KCACHE_SINGLE]: one block, used when no longer free run is left. */
    struct kcache_geometry geometry[2];
    struct kcache_slab* partial;       /* slabs with free and live objects */
    struct kcache_slab* spare;         /* the one empty slab kept, or NULL */
    size_t partial_slabs;
    size_t slabs;
    size_t objects;
    size_t quarantined;                /* corrupt slabs abandoned by this class */
};

/* Header words a slab may have (kcache_internal.h): 5 fixed + the largest bitmap,
 * a 16-byte class in the longest slab. */
#define KCACHE_HEADER_WORDS \
    (5 + (KCACHE_MAX_SLAB_BLOCKS * PEACHOS_HEAP_BLOCK_SIZE / KCACHE_ALIGN + 8 * sizeof(uintptr_t) - 1) / (8 * sizeof(uintptr_t)))

struct kcache
{
    struct heap* heap;
    /* Copies of the heap's fixed geometry (heap_create sets it once), so the
     * kfree fast path reaches the table in one load. */
    uintptr_t pool;                  /* heap->saddr */
    HEAP_BLOCK_TABLE_ENTRY* entries; /* heap->table->entries */
    size_t blocks;                   /* heap->table->total */
    uintptr_t keys[KCACHE_HEADER_WORDS]; /* checksum key of each header word (odd), from the secret */
    uintptr_t key_final;                 /* checksum offset and address key */
    unsigned flags;
    kcache_fault_fn fault;
    void* fault_ctx;
    size_t slabs;          /* all slabs of all classes */
    size_t slab_blocks;    /* heap blocks they occupy */
    size_t corruptions;    /* corrupt slab headers detected (each reported) */
    size_t use_after_free; /* poison violations detected (each reported) */
    size_t forced_failures;/* allocations failed by the fault hook */
    size_t rebuilds;       /* partial lists rebuilt from the table after a quarantine */
    size_t rebuild_corrupt;/* corrupt slab headers the last rebuild's table scan skipped */
    struct kcache_class classes[KCACHE_CLASSES];
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
    size_t quarantined_slabs;     /* corrupt slabs abandoned, all classes (still allocated) */
    size_t list_rebuilds;         /* partial lists rebuilt from the table */
    size_t rebuild_corrupt_slabs; /* corrupt slab headers the last rebuild skipped, all classes */
};

/*
 * Set up caches over `heap` (which must have been created and be otherwise
 * empty of CACHE-typed blocks; re-creating the heap means calling this
 * again, since the heap's pool and table are copied). `secret` keys the header checksums: use an
 * unpredictable value (kheap: kheap_port_secret()). Computes each class's
 * geometry. Returns 0, or -EINVARG for a NULL argument or unknown flags
 * (then nothing is written). O(KCACHE_CLASSES).
 */
int kcache_init(struct kcache* kc, struct heap* heap, uintptr_t secret, unsigned flags);

/* Install the fault hook (NULL: never fail on purpose). */
void kcache_set_fault(struct kcache* kc, kcache_fault_fn fn, void* ctx);

/* Class index for a size in 1..KCACHE_MAX_SIZE (KCACHE_CLASSES otherwise). */
size_t kcache_class_of(size_t size);

/*
 * kmalloc: size 0 -> NULL; 1..KCACHE_MAX_SIZE -> a 16-byte aligned object of
 * the smallest class that fits; larger -> whole blocks (block-aligned, plain
 * seed encoding). NULL when the heap cannot supply the memory (after
 * returning every spare slab to it and trying once more).
 * A corrupt header met on the way (the class's partial-list head, or its
 * spare) is reported once (HEAP_REPORT_CACHE_QUARANTINE, ptr = the slab,
 * corruptions + 1) and quarantined; the class's partial list is rebuilt
 * from the table and the allocation goes on from a sound slab: O(table +
 * slab headers) for that call only.
 */
void* kcache_alloc(struct kcache* kc, size_t size);

/* Whole blocks for any size >= 1: always block-aligned. NULL for size 0. */
void* kcache_palloc(struct kcache* kc, size_t size);

/*
 * kfree: NULL does nothing. A live small object or the start of a live block
 * allocation is freed. Anything else (interior or misaligned pointer, double
 * free, free block, outside the pool, corrupt slab header) changes nothing,
 * increments heap->rejected_frees and is passed to heap->report: small-object
 * pointers with HEAP_REPORT_CACHE_BAD_FREE (HEAP_REPORT_FREE_CORRUPT for a
 * corrupt header), others with the kinds heap_free uses.
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

/* Return every spare slab to the heap. Returns the number of blocks freed.
 * A spare whose header fails its check is reported and quarantined (no
 * longer the spare, never freed). */
size_t kcache_trim(struct kcache* kc);

/* Counters (O(KCACHE_CLASSES)). */
void kcache_get_stats(const struct kcache* kc, struct kcache_stats* stats);

/*
 * heap_check, then every cache invariant: each class's partial list and
 * spare, every slab header (checksum, class, geometry, bitmap vs inuse,
 * padding bits), that every CACHE-typed allocation in the table is a slab
 * of its class on the right list, the counters, and with KCACHE_FLAG_POISON
 * the poison of every free object. Returns 0 or -ECORRUPT with the first
 * offending block in *bad_block (SIZE_MAX for a counter), -EINVARG for NULL.
 * O(table + slab headers (+ free objects with poison)). Never writes.
 * A quarantined slab keeps failing it (at the slab's block while its header
 * is corrupt): a heap with one is not sound, though every class works.
 */
int kcache_check(const struct kcache* kc, size_t* bad_block);

#endif /* PEACHOS_KCACHE_H */
