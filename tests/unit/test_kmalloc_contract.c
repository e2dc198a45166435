/*
 * tests/unit/test_kmalloc_contract.c - the seed's contract of the kmalloc
 * family, which PeachOS's paging and process code depend on: kmalloc,
 * kzalloc, kcalloc, kpalloc, kpzalloc and krealloc(NULL, n) return whole
 * blocks, block-aligned, with the seed's table bytes (41, C1 01, C1 81 01,
 * ...), sharing no block with any other live allocation, small objects
 * included. Every size from 1 to 3 blocks + 1.
 *
 * Built in every kheap configuration (mk/unit.mk): with the caches and
 * without them; with PEACHOS_KMALLOC_SMALL_OBJECTS=1 only kpalloc and
 * kpzalloc keep the contract, and that is what is checked there.
 */
#include "unit.h"
#include "unit_kheap.h"

#define MAX_SIZE (3 * UNIT_BS + 1)
#define KINDS 7

static void init_heap(size_t blocks)
{
    struct kheap_hosted_config config = { blocks * UNIT_BS, true, false, true };
    kheap_hosted_configure(&config);
    kheap_init();
    assert_true(kheap_ready());
}

static size_t blocks_for(size_t size)
{
    return (size + UNIT_BS - 1) / UNIT_BS;
}

/* Does this allocator promise whole blocks in this configuration? */
static bool whole_blocks_promised(size_t kind)
{
    return kind >= 5 || !PEACHOS_KMALLOC_SMALL_OBJECTS; /* kpalloc, kpzalloc: always */
}

/* kind 0..6: kmalloc, kzalloc, kcalloc(1, n), kcalloc(n, 1), krealloc(NULL, n),
 * kpalloc, kpzalloc. */
static unsigned char* allocate(size_t kind, size_t size)
{
    switch (kind) {
    case 0: return kmalloc(size);
    case 1: return kzalloc(size);
    case 2: return kcalloc(1, size);
    case 3: return kcalloc(size, 1);
    case 4: return krealloc(NULL, size);
    case 5: return kpalloc(size);
    default: return kpzalloc(size);
    }
}

static bool zeroed_kind(size_t kind)
{
    return kind == 1 || kind == 2 || kind == 3 || kind == 6;
}

/* The seed's bytes for an n-block allocation at block b: 41 / C1 .. 81 .. 01. */
static void assert_seed_chain(size_t b, size_t n)
{
    const HEAP_BLOCK_TABLE_ENTRY* e = kheap_get()->table->entries;
    for (size_t i = 0; i < n; i++) {
        unsigned expect = HEAP_BLOCK_TABLE_ENTRY_TAKEN | (i == 0 ? HEAP_BLOCK_IS_FIRST : 0u) |
                          (i + 1 < n ? HEAP_BLOCK_HAS_NEXT : 0u);
        assert_int_equal(e[b + i], expect);
    }
}

/* p holds `size` bytes as whole blocks of its own. */
static size_t assert_whole_blocks(const unsigned char* p, size_t size)
{
    assert_non_null(p);
    size_t offset = (size_t)(p - pool());
    assert_int_equal(offset % UNIT_BS, 0);
    assert_int_equal(ksize(p), blocks_for(size) * UNIT_BS);
    assert_seed_chain(offset / UNIT_BS, blocks_for(size));
    return offset / UNIT_BS;
}

/* Every allocator, every size: all KINDS allocations (plus a live small
 * object when there are caches) are live together, and their block ranges
 * are pairwise disjoint; contents zeroed where promised, written and read
 * back before the free. */
static void test_every_size_whole_blocks(void** state)
{
    (void)state;
    init_heap(64);
#if PEACHOS_KHEAP_CACHES
    unsigned char* small = kmalloc_small(16); /* a slab that kmalloc must never share */
    assert_non_null(small);
    size_t small_block = (size_t)(small - pool()) / UNIT_BS;
#endif
    size_t checked = 0;
    for (size_t size = 1; size <= MAX_SIZE; size++) {
        unsigned char* p[KINDS];
        size_t first[KINDS];
        for (size_t k = 0; k < KINDS; k++) {
            p[k] = allocate(k, size);
            assert_non_null(p[k]);
            first[k] = SIZE_MAX;
            if (!whole_blocks_promised(k)) {
                continue;
            }
            first[k] = assert_whole_blocks(p[k], size);
#if PEACHOS_KHEAP_CACHES
            assert_true(small_block < first[k] || small_block >= first[k] + blocks_for(size));
#endif
            for (size_t j = 0; j < k; j++) { /* disjoint from every earlier one */
                size_t lo = first[j] == SIZE_MAX ? (size_t)(p[j] - pool()) / UNIT_BS : first[j];
                assert_true(lo + (first[j] == SIZE_MAX ? 1 : blocks_for(size)) <= first[k] ||
                            first[k] + blocks_for(size) <= lo);
            }
            checked++;
        }
        for (size_t k = 0; k < KINDS; k++) {
            /* Zeroed: every usable byte, so a block's tail mapped into user
             * space shows nothing; the whole block was dirty before. */
            size_t usable = ksize(p[k]);
            if (zeroed_kind(k)) {
                size_t zeroed = whole_blocks_promised(k) ? usable : size;
                for (size_t i = 0; i < zeroed; i++) {
                    assert_int_equal(p[k][i], 0);
                }
            }
            memset(p[k], (int)(0xA0 + k), usable);
        }
        for (size_t k = 0; k < KINDS; k++) {
            assert_int_equal(p[k][0], 0xA0 + k);
            assert_int_equal(p[k][size - 1], 0xA0 + k);
            kfree(p[k]);
        }
    }
    assert_true(checked >= MAX_SIZE * 2); /* kpalloc and kpzalloc at least */
    print_message("contract: %zu allocations of 1..%zu bytes checked as whole blocks\n", checked,
                  (size_t)MAX_SIZE);
    size_t slab_blocks = 0;
#if PEACHOS_KHEAP_CACHES
    kfree(small);
    struct kcache_stats stats;
    kcache_get_stats(kheap_cache(), &stats);
    slab_blocks = stats.slab_blocks; /* the spare slabs kept */
#endif
    assert_kheap_clean();
    assert_int_equal(kheap_get()->used_blocks, slab_blocks);
}

/* Growing and shrinking with krealloc keeps whole blocks at the same start
 * when the next blocks are free, and the data. */
static void test_krealloc_stays_whole_blocks(void** state)
{
    (void)state;
    init_heap(16);
    unsigned char* p = kpalloc(1);
    assert_whole_blocks(p, 1);
    memset(p, 0x5A, UNIT_BS);
    for (size_t size = 2; size <= MAX_SIZE; size += 511) {
        unsigned char* q = krealloc(p, size);
        assert_ptr_equal(q, p); /* the heap is empty beyond it: grown in place */
        assert_whole_blocks(q, size);
        assert_int_equal(q[UNIT_BS - 1], 0x5A);
        p = q;
    }
    unsigned char* q = krealloc(p, 1);
    assert_ptr_equal(q, p);
    assert_whole_blocks(q, 1);
    assert_int_equal(q[0], 0x5A);
    kfree(q);
    assert_kheap_clean();
    assert_int_equal(kheap_get()->used_blocks, 0);
}

#if PEACHOS_KHEAP_CACHES
/* Small objects of every class beside kmalloc'd memory: no small object
 * lies in a kmalloc'd block, and kmalloc never returns a CACHE block. */
static void test_small_objects_never_share(void** state)
{
    (void)state;
    init_heap(256);
    unsigned char* small[64];
    unsigned char* big[64];
    size_t n = 0;
    for (size_t size = 16; size <= KCACHE_MAX_SIZE && n < 64; size += 33, n++) {
        small[n] = kmalloc_small(size);
        big[n] = kmalloc(size);
        assert_non_null(small[n]);
        if (!PEACHOS_KMALLOC_SMALL_OBJECTS) {
            assert_whole_blocks(big[n], size);
        }
    }
    for (size_t i = 0; i < n && !PEACHOS_KMALLOC_SMALL_OBJECTS; i++) {
        size_t b = (size_t)(big[i] - pool()) / UNIT_BS;
        for (size_t j = 0; j < n; j++) {
            assert_int_not_equal((size_t)(small[j] - pool()) / UNIT_BS, b);
        }
    }
    for (size_t i = 0; i < n; i++) {
        kfree(small[i]);
        kfree(big[i]);
    }
    assert_kheap_clean();
}
#endif

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_size_whole_blocks),
        cmocka_unit_test(test_krealloc_stays_whole_blocks),
#if PEACHOS_KHEAP_CACHES
        cmocka_unit_test(test_small_objects_never_share),
#endif
    };
    return cmocka_run_group_tests_name("kmalloc_contract", tests, NULL, NULL);
}
