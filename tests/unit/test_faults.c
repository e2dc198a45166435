/*
 * tests/unit/test_faults.c - fault injection on the kernel heap (issue 6),
 * through kheap.c and the hosted port. What test_kcache.c and
 * test_kcache_kheap.c already do site by site, this file does as sweeps:
 *
 *   - a port that hands kheap_init a bad region (no table, end before start):
 *     refused, kmalloc returns NULL;
 *   - an exhausted heap: every allocating call (kmalloc small and large,
 *     kzalloc, kcalloc, kpalloc, krealloc growing in place, moving, or
 *     changing class) returns NULL with the table and every counter unchanged
 *     and the old data intact; a full heap with a spare slab gives the spare
 *     back and succeeds;
 *   - exactly one block free, at every position of the heap (indexed or
 *     not): only one block's worth fits, the cache falls back to a one-block
 *     slab, krealloc grows into it in place;
 *   - a sweep of a fixed workload with the n-th internal allocation forced
 *     to fail, for every n (all sites at once, then each site alone): each
 *     NULL changes nothing, the data of every live object survives, and at
 *     the end everything is freed and nothing is left (no leak);
 *   - a table corrupted at every block in turn, and every field of every
 *     slab-table record in turn (and the record of every block of no
 *     slab): kheap_check reports exactly that block (a slab's first);
 *   - every slab's first bytes overwritten in turn (a stray write: objects,
 *     never allocator state), then its class asked for objects and
 *     everything freed: the same objects as without the write, nothing
 *     reported or refused, every byte outside the write intact, kheap_check
 *     clean.
 */
#include "unit.h"
#include "unit_kheap.h"

/* ------------------------------------------------------------ helpers */

static void init_heap(size_t blocks, bool indexed)
{
    struct kheap_hosted_config config = { blocks * UNIT_BS, indexed, false, true };
    kheap_hosted_configure(&config);
    kheap_init();
    assert_true(kheap_ready());
}

/* Everything an allocation that fails must leave as it was: the table byte
 * for byte, the heap's counters (but failed_allocs, which counts it) and the
 * caches' (but forced_failures). */
struct snap
{
    unsigned char* table;
    size_t total;
    size_t used_blocks;
    size_t live_allocations;
    size_t rejected_frees;
    struct kcache_stats kc;
};

static void snap_take(struct snap* s)
{
    struct heap* h = kheap_get();
    s->total = h->table->total;
    s->table = unit_xmalloc(s->total);
    memcpy(s->table, h->table->entries, s->total);
    s->used_blocks = h->used_blocks;
    s->live_allocations = h->live_allocations;
    s->rejected_frees = h->rejected_frees;
    kcache_get_stats(kheap_cache(), &s->kc);
}

static bool snap_same(const struct snap* s)
{
    struct heap* h = kheap_get();
    struct kcache_stats kc;
    kcache_get_stats(kheap_cache(), &kc);
    kc.forced_failures = s->kc.forced_failures;
    return h->table->total == s->total && memcmp(h->table->entries, s->table, s->total) == 0 &&
           h->used_blocks == s->used_blocks && h->live_allocations == s->live_allocations &&
           h->rejected_frees == s->rejected_frees && memcmp(&kc, &s->kc, sizeof(kc)) == 0;
}

static void snap_free(struct snap* s)
{
    free(s->table);
    s->table = NULL;
}

/* The call must return NULL and change nothing. */
#define assert_null_unchanged(expr)                                        \
    do {                                                                   \
        struct snap s_;                                                    \
        snap_take(&s_);                                                    \
        assert_null(expr);                                                 \
        assert_true(snap_same(&s_));                                       \
        snap_free(&s_);                                                    \
    } while (0)

static void fill(unsigned char* p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++) {
        p[i] = (unsigned char)(seed * 31u + i * 7u);
    }
}

static bool filled(const unsigned char* p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] != (unsigned char)(seed * 31u + i * 7u)) {
            return false;
        }
    }
    return true;
}

/* A class whose preferred slab is longer than one block (so that, with one
 * block left, the cache must fall back to a one-block slab). */
static size_t long_slab_class(void)
{
    const struct kcache* kc = kheap_cache();
    for (size_t ci = 0; ci < KCACHE_CLASSES; ci++) {
        if (kc->classes[ci].geometry[KCACHE_PREFERRED].blocks > 1) {
            return ci;
        }
    }
    fail_msg("every class prefers one-block slabs");
    return 0;
}

/* -------------------------------------------------- bad region from the port */

static void test_bad_region_refused(void** state)
{
    (void)state;
    static const enum kheap_hosted_bad_region kinds[] = { KHEAP_HOSTED_REGION_NO_TABLE,
                                                          KHEAP_HOSTED_REGION_END_BEFORE_START };
    for (size_t k = 0; k < 2; k++) {
        init_heap(8, k == 0);
        void* old = kmalloc_small(100);
        assert_non_null(old);
        kheap_hosted_bad_region(kinds[k]);
        kheap_init(); /* prints "kheap: failed to create heap" */
        assert_false(kheap_ready());
        assert_null(kheap_get());
        assert_null(kmalloc_small(16));
        assert_null(kpalloc(1));
        assert_null(krealloc(NULL, 16));
        kfree(old); /* ignored: no heap */
        assert_int_equal(kheap_check(NULL), -EINVARG);
        /* One-shot: the next kheap_init works again. */
        init_heap(8, k == 0);
        assert_int_equal(kheap_get()->used_blocks, 0);
        assert_kheap_clean();
    }
}

/* --------------------------------------------------------- exhausted heap */

static void test_exhausted_heap(void** state)
{
    (void)state;
    for (int indexed = 0; indexed < 2; indexed++) {
        init_heap(8, indexed);
        /* One slab with room (a 16-byte object), the rest whole blocks. */
        unsigned char* small = kmalloc_small(16);
        assert_non_null(small);
        fill(small, 16, 1);
        unsigned char* blocks[8];
        size_t nb = 0;
        while ((blocks[nb] = kpalloc(1)) != NULL) {
            fill(blocks[nb], UNIT_BS, 10 + (unsigned)nb);
            nb++;
        }
        assert_int_equal(kheap_get()->used_blocks, 8);
        assert_kheap_clean();

        assert_null_unchanged(kmalloc_small(48));   /* another class: needs a slab */
        assert_null_unchanged(kmalloc_small(2048)); /* largest class */
        assert_null_unchanged(kmalloc_small(2049)); /* smallest block allocation */
        assert_null_unchanged(kmalloc_small(5000));
        assert_null_unchanged(kzalloc_small(100));
        assert_null_unchanged(kcalloc(3, 100));
        assert_null_unchanged(kpalloc(1));
        assert_null_unchanged(krealloc(NULL, 64));
        /* krealloc of blocks: cannot grow (next block taken), cannot move. */
        assert_null_unchanged(krealloc(blocks[0], 2 * UNIT_BS));
        assert_null_unchanged(krealloc(blocks[nb - 1], 2 * UNIT_BS)); /* last: nothing after it */
        assert_true(filled(blocks[0], UNIT_BS, 10));
        assert_int_equal(ksize(blocks[0]), UNIT_BS);
        /* krealloc of the small object to another class: no slab for it. */
        assert_null_unchanged(krealloc(small, 100));
        assert_null_unchanged(krealloc(small, 3000));
        assert_true(filled(small, 16, 1));
        /* What needs no new memory still works. */
        unsigned char* same = kmalloc_small(16);
        assert_non_null(same);
        kfree(same);
        assert_ptr_equal(krealloc(small, 10), small);
        assert_true(filled(small, 10, 1));
        assert_kheap_clean();

        /* Free every object of the slab: it stays as the spare, the heap
         * is still full, and a block allocation gives the spare back. */
        kfree(small);
        struct kcache_stats st;
        kcache_get_stats(kheap_cache(), &st);
        assert_int_equal(st.spare_slabs, 1);
        assert_int_equal(kheap_get()->used_blocks, 8);
        unsigned char* last = kpalloc(1);
        assert_non_null(last);
        kcache_get_stats(kheap_cache(), &st);
        assert_int_equal(st.slabs, 0);
        assert_int_equal(kheap_get()->used_blocks, 8);
        kfree(last);

        for (size_t i = 0; i < nb; i++) {
            assert_true(filled(blocks[i], UNIT_BS, 10 + (unsigned)i));
            kfree(blocks[i]);
        }
        kheap_trim();
        assert_int_equal(kheap_get()->used_blocks, 0);
        assert_int_equal(kheap_get()->live_allocations, 0);
        assert_int_equal(kheap_get()->rejected_frees, 0);
        assert_kheap_clean();
    }
}

/* ------------------------------------------------- exactly one block free */

static void test_one_block_free(void** state)
{
    (void)state;
    enum { N = 16 };
    for (int indexed = 0; indexed < 2; indexed++) {
        for (size_t pos = 0; pos < N; pos++) {
            init_heap(N, indexed);
            size_t ci = long_slab_class();
            size_t csize = kheap_cache()->classes[ci].size;
            unsigned char* b[N];
            for (size_t i = 0; i < N; i++) {
                b[i] = kpalloc(1);
                assert_ptr_equal(b[i], pool() + i * UNIT_BS);
                fill(b[i], UNIT_BS, (unsigned)i);
            }
            kfree(b[pos]);
            b[pos] = NULL;
            assert_kheap_clean();

            /* Two blocks never fit. */
            assert_null_unchanged(kpalloc(UNIT_BS + 1));
            assert_null_unchanged(kmalloc_small(2 * UNIT_BS));
            if (pos + 1 < N) { /* b[pos + 1] cannot grow: the block after it is taken or past the end */
                assert_null_unchanged(krealloc(b[pos + 1], 2 * UNIT_BS));
            }

            /* One block fits, exactly there. */
            unsigned char* one = kpalloc(UNIT_BS);
            assert_ptr_equal(one, pool() + pos * UNIT_BS);
            assert_null_unchanged(kpalloc(1));
            kfree(one);

            /* The block before grows into it in place, and shrinks back. */
            if (pos > 0) {
                assert_ptr_equal(krealloc(b[pos - 1], 2 * UNIT_BS), b[pos - 1]);
                assert_int_equal(ksize(b[pos - 1]), 2 * UNIT_BS);
                assert_true(filled(b[pos - 1], UNIT_BS, (unsigned)(pos - 1)));
                assert_null_unchanged(kmalloc_small(1));
                assert_ptr_equal(krealloc(b[pos - 1], UNIT_BS), b[pos - 1]);
                assert_int_equal(kheap_get()->used_blocks, N - 1);
            }

            /* A class that prefers longer slabs falls back to one block. */
            unsigned char* obj = kmalloc_small(csize);
            assert_ptr_equal(obj, pool() + pos * UNIT_BS); /* object 0 is the slab's first byte */
            assert_int_equal(kheap_cache()->slab_table[pos].shape, (ci << 1 | KCACHE_SINGLE) + 1);
            assert_int_equal(kheap_get()->table->entries[pos],
                             HEAP_BLOCK_TABLE_ENTRY_TAKEN | HEAP_BLOCK_IS_FIRST | HEAP_BLOCK_TYPE_CACHE);
            fill(obj, csize, 99);
            assert_null_unchanged(kmalloc_small(ci == 0 ? 32 : 16)); /* another class: no room */
            assert_null_unchanged(krealloc(obj, csize + 1));
            assert_true(filled(obj, csize, 99));
            kfree(obj); /* the slab is kept as the spare */
            one = kpalloc(1); /* heap full: the spare is given back */
            assert_ptr_equal(one, pool() + pos * UNIT_BS);
            kfree(one);

            for (size_t i = 0; i < N; i++) {
                if (b[i] != NULL) {
                    assert_true(filled(b[i], UNIT_BS, (unsigned)i));
                    kfree(b[i]);
                }
            }
            kheap_trim();
            assert_int_equal(kheap_get()->used_blocks, 0);
            assert_int_equal(kheap_get()->rejected_frees, 0);
            assert_kheap_clean();
        }
    }
}

/* ------------------------------------------------ fault sweep of a workload */

enum
{
    SWEEP_BLOCKS = 1024,
    SWEEP_OPS = 400,
    SWEEP_SLOTS = 24,
};

struct obj
{
    unsigned char* p;
    size_t size;
    unsigned seed;
};

struct sweep_result
{
    size_t nulls;    /* calls that returned NULL (each checked) */
    size_t failures; /* internal allocations failed on purpose */
};

static size_t sweep_size(uint64_t* rng)
{
    uint32_t r = unit_rand(rng);
    switch (r % 4) {
    case 0:
        return 1 + r / 4 % 128;
    case 1:
        return 1 + r / 4 % KCACHE_MAX_SIZE;
    case 2:
        return KCACHE_MAX_SIZE + 1 + r / 4 % (4 * UNIT_BS);
    default:
        return 1 + r / 4 % 600;
    }
}

/* One run of the fixed workload; every NULL is checked on the spot. */
static struct sweep_result sweep_run(void)
{
    struct obj objs[SWEEP_SLOTS];
    memset(objs, 0, sizeof(objs));
    struct sweep_result res = { 0, 0 };
    uint64_t rng = 0x5EEDu;
    for (size_t op = 0; op < SWEEP_OPS; op++) {
        size_t i = unit_rand(&rng) % SWEEP_SLOTS;
        struct obj* o = &objs[i];
        uint32_t kind = unit_rand(&rng) % 8;
        size_t size = sweep_size(&rng);
        unsigned seed = (unsigned)op;
        size_t failures_before = kheap_hosted_failures();
        struct snap s;
        snap_take(&s);
        unsigned char* p = NULL;
        if (o->p != NULL && kind < 3) { /* krealloc, data kept up to the smaller size */
            p = krealloc(o->p, size);
            if (p == NULL) {
                assert_true(filled(o->p, o->size, o->seed)); /* old data intact */
            } else {
                size_t keep = o->size < size ? o->size : size;
                assert_true(filled(p, keep, o->seed));
                fill(p, size, seed);
                o->p = p;
                o->size = size;
                o->seed = seed;
            }
        } else if (o->p != NULL) {
            assert_true(filled(o->p, o->size, o->seed));
            kfree(o->p);
            o->p = NULL;
            snap_free(&s);
            continue;
        } else {
            switch (kind) {
            case 0:
            case 1:
            case 2:
            case 3:
                p = kmalloc_small(size);
                break;
            case 4:
                p = kzalloc_small(size);
                break;
            case 5:
                size = (size + 2) / 3 * 3;
                p = kcalloc(3, size / 3);
                break;
            case 6:
                p = kpalloc(size);
                break;
            default:
                p = krealloc(NULL, size);
                break;
            }
            if (p != NULL) {
                if (kind == 4 || kind == 5) {
                    for (size_t j = 0; j < size; j++) {
                        assert_int_equal(p[j], 0);
                    }
                }
                fill(p, size, seed);
                o->p = p;
                o->size = size;
                o->seed = seed;
            }
        }
        if (p == NULL) {
            /* Only a forced failure may cause it (the heap is never full
             * here), and it changed nothing. */
            assert_true(kheap_hosted_failures() > failures_before);
            assert_true(snap_same(&s));
            res.nulls++;
        }
        snap_free(&s);
        if (op % 16 == 0) {
            assert_kheap_clean();
        }
    }
    for (size_t i = 0; i < SWEEP_SLOTS; i++) {
        if (objs[i].p != NULL) {
            assert_true(filled(objs[i].p, objs[i].size, objs[i].seed));
            kfree(objs[i].p);
        }
    }
    res.failures = kheap_hosted_failures();
    return res;
}

/* For n = 0, 1, 2, ...: the first n internal allocations (at the sites of
 * `mask`) succeed, every later one fails, until n is past the workload's
 * last one. Returns the number of runs. */
static size_t sweep(unsigned mask, size_t* total_nulls)
{
    size_t runs = 0;
    for (size_t n = 0;; n++) {
        init_heap(SWEEP_BLOCKS, n % 2 == 0);
        kheap_hosted_fail_after(n, mask);
        struct sweep_result r = sweep_run();
        kheap_hosted_fail_reset();
        runs++;
        *total_nulls += r.nulls;
        /* Nothing leaked: with every object freed and the spares trimmed,
         * the heap is empty and sound. */
        assert_int_equal(kheap_get()->rejected_frees, 0);
        kheap_trim();
        assert_int_equal(kheap_get()->used_blocks, 0);
        assert_int_equal(kheap_get()->live_allocations, 0);
        struct kcache_stats st;
        kcache_get_stats(kheap_cache(), &st);
        assert_int_equal(st.objects, 0);
        assert_int_equal(st.slabs, 0);
        assert_int_equal(st.corruptions, 0);
        assert_int_equal(st.forced_failures, r.failures);
        assert_kheap_clean();
        if (r.failures == 0) {
            break;
        }
        /* A forced failure is seen by the caller as NULL - except a forced
         * GROW, after which krealloc moves instead (data checked above). */
        if (mask != 1u << KCACHE_FAULT_GROW) {
            assert_true(r.nulls > 0);
        }
    }
    return runs;
}

static void test_fault_sweep_all_sites(void** state)
{
    (void)state;
    size_t nulls = 0;
    size_t runs = sweep(KHEAP_HOSTED_FAIL_ALL, &nulls);
    print_message("fault sweep, all sites: %zu runs, %zu NULLs checked\n", runs, nulls);
    assert_true(runs > 20); /* the workload makes many internal allocations */
}

static void test_fault_sweep_each_site(void** state)
{
    (void)state;
    static const enum kcache_fault_site sites[] = { KCACHE_FAULT_SLAB, KCACHE_FAULT_BLOCKS, KCACHE_FAULT_GROW,
                                                    KCACHE_FAULT_MOVE };
    for (size_t k = 0; k < 4; k++) {
        size_t nulls = 0;
        size_t runs = sweep(1u << sites[k], &nulls);
        print_message("fault sweep, site %d: %zu runs, %zu NULLs checked\n", (int)sites[k], runs, nulls);
        assert_true(runs > 2); /* the workload reaches every site more than once */
    }
}

/* -------------------------------------------- corruption at every block */

/* A kernel heap with slabs of several classes, blocks allocations and free
 * runs between them. */
static void corrupt_setup(void** keep, size_t nkeep)
{
    init_heap(64, true);
    static const size_t sizes[] = { 16, 3 * UNIT_BS, 100, 2048, 5000, 700, UNIT_BS, 48 };
    void* tmp[64];
    size_t nt = 0;
    for (size_t i = 0; i < nkeep; i++) {
        keep[i] = kmalloc_small(sizes[i % 8]);
        assert_non_null(keep[i]);
        tmp[nt++] = kpalloc(1 + i % 3); /* freed below: holes */
        assert_non_null(tmp[nt - 1]);
    }
    for (size_t i = 0; i < nt; i++) {
        kfree(tmp[i]);
    }
    assert_kheap_clean();
}

static void expect_bad_block(size_t want)
{
    size_t bad = 12345;
    assert_int_equal(kheap_check(&bad), -ECORRUPT);
    if (bad != want) {
        print_error("kheap_check reported block %zu, want %zu\n", bad, want);
    }
    assert_int_equal(bad, want);
}

static void test_corrupt_table_every_block(void** state)
{
    (void)state;
    void* keep[12];
    corrupt_setup(keep, 12);
    HEAP_BLOCK_TABLE_ENTRY* t = kheap_get()->table->entries;
    size_t total = kheap_get()->table->total;
    size_t tried = 0;
    for (size_t i = 0; i < total; i++) {
        HEAP_BLOCK_TABLE_ENTRY e = t[i];
        /* A reserved bit (5 or 4) set on any entry. */
        static const HEAP_BLOCK_TABLE_ENTRY reserved[] = { 0x10, 0x20 };
        for (size_t r = 0; r < 2; r++) {
            t[i] = (HEAP_BLOCK_TABLE_ENTRY)(e | reserved[r]);
            expect_bad_block(i);
            tried++;
        }
        if (e == HEAP_BLOCK_TABLE_ENTRY_FREE) {
            t[i] = HEAP_BLOCK_TABLE_ENTRY_TAKEN; /* orphan continuation */
            expect_bad_block(i);
            t[i] = HEAP_BLOCK_HAS_NEXT; /* flag without TAKEN */
            expect_bad_block(i);
            tried += 2;
        } else {
            t[i] = (HEAP_BLOCK_TABLE_ENTRY)(e & ~HEAP_BLOCK_TABLE_ENTRY_TAKEN); /* lost its TAKEN bit */
            expect_bad_block(i);
            t[i] = (HEAP_BLOCK_TABLE_ENTRY)((e & ~HEAP_BLOCK_TYPE_MASK) | 0x0C); /* unknown type */
            expect_bad_block(i);
            tried += 2;
            if (!(e & HEAP_BLOCK_HAS_NEXT)) {
                /* The chain runs on past its last block: into a free block,
                 * a first block, or off the end of the table. */
                t[i] = (HEAP_BLOCK_TABLE_ENTRY)(e | HEAP_BLOCK_HAS_NEXT);
                expect_bad_block(i + 1 < total ? i + 1 : i);
                tried++;
            }
        }
        t[i] = e;
        assert_kheap_clean();
    }
    print_message("table corruption: %zu corruptions over %zu blocks, each reported at its block\n", tried, total);
    for (size_t i = 0; i < 12; i++) {
        kfree(keep[i]);
    }
    kheap_trim();
    assert_int_equal(kheap_get()->used_blocks, 0);
}

/* The geometry a slab's record names. */
static const struct kcache_geometry* record_geometry(const struct kcache_slab* rec)
{
    assert_true(rec->shape >= 1 && rec->shape <= 2 * KCACHE_CLASSES);
    return &kheap_cache()->classes[(rec->shape - 1) >> 1].geometry[(rec->shape - 1) & 1];
}

/* The first block of every slab of the kernel heap, in table order. */
static size_t slab_starts(size_t* starts, size_t max)
{
    const struct heap* h = kheap_get();
    size_t n = 0;
    for (size_t i = 0; i < h->table->total; i++) {
        HEAP_BLOCK_TABLE_ENTRY e = h->table->entries[i] & (HEAP_BLOCK_TABLE_ENTRY)~HEAP_BLOCK_HAS_NEXT;
        if (e == (HEAP_BLOCK_TABLE_ENTRY_TAKEN | HEAP_BLOCK_IS_FIRST | HEAP_BLOCK_TYPE_CACHE)) {
            assert_true(n < max);
            starts[n++] = i;
        }
    }
    return n;
}

/* Every field of every slab's record changed in turn (those whose change
 * the record itself shows): reported at the slab's first block; and any
 * field of the record of a block of no slab: reported at that block.
 * Nothing is reported once each is put back. */
static void test_corrupt_slab_records(void** state)
{
    (void)state;
    void* keep[12];
    corrupt_setup(keep, 12);
    struct kcache* kc = kheap_cache();
    size_t total = kheap_get()->table->total;
    size_t starts[16];
    size_t slabs = slab_starts(starts, 16);
    assert_true(slabs >= 4);
    bool in_slab[64] = { false };
    assert_true(total <= 64);
    size_t tried = 0;
    for (size_t k = 0; k < slabs; k++) {
        size_t first = starts[k];
        struct kcache_slab* rec = &kc->slab_table[first];
        const struct kcache_geometry* g = record_geometry(rec);
        for (size_t b = first; b < first + g->blocks; b++) {
            in_slab[b] = true;
        }
        struct kcache_slab saved = *rec;
        bool partial = rec->inuse > 0 && rec->inuse < g->capacity;
        rec->shape = 0; /* no slab starts here, yet the table has one */
        expect_bad_block(first);
        *rec = saved;
        rec->shape = (uint8_t)(2 * KCACHE_CLASSES + 1); /* names no class */
        expect_bad_block(first);
        *rec = saved;
        rec->unused = 1;
        expect_bad_block(first);
        *rec = saved;
        rec->inuse = (uint16_t)(rec->inuse + 1); /* more than the bitmap holds */
        expect_bad_block(first);
        *rec = saved;
        rec->bits[0] ^= 1; /* object 0 live <-> free, the count unchanged */
        expect_bad_block(first);
        *rec = saved;
        if (partial) {
            rec->prev ^= 1; /* on the list: its prev no longer the one before it */
        } else {
            rec->next = (uint32_t)first; /* full or spare: linked to anything */
        }
        expect_bad_block(first);
        *rec = saved;
        if (g->blocks > 1) {
            kc->slab_table[first + 1].shape = saved.shape; /* another block's record: not clear */
            expect_bad_block(first);
            kc->slab_table[first + 1].shape = 0;
        }
        tried += 6 + (g->blocks > 1);
        assert_kheap_clean();
    }
    for (size_t b = 0; b < total; b++) {
        if (in_slab[b]) {
            continue;
        }
        struct kcache_slab* rec = &kc->slab_table[b];
        rec->bits[KCACHE_BLOCK_WORDS - 1] = 1; /* a block of no slab has an all-zero record */
        expect_bad_block(b);
        rec->bits[KCACHE_BLOCK_WORDS - 1] = 0;
        rec->inuse = 1;
        expect_bad_block(b);
        rec->inuse = 0;
        tried += 2;
        assert_kheap_clean();
    }
    print_message("slab records: %zu corruptions over %zu slabs and %zu blocks, each reported at its block\n", tried,
                  slabs, total);
    for (size_t i = 0; i < 12; i++) {
        kfree(keep[i]);
    }
    kheap_trim();
    assert_int_equal(kheap_get()->used_blocks, 0);
    assert_int_equal(kheap_get()->rejected_frees, 0);
}

/* What a slab's class does with and without a stray write over the slab's
 * first bytes (where a slab header once was): the same. */
struct stray_run
{
    void* got[3];
    size_t used_blocks;
    struct kcache_stats st;
};

/* keep[i] is pattern i, but for the bytes in [hit, hit + len). */
static bool filled_but(const unsigned char* p, size_t n, unsigned seed, const unsigned char* hit, size_t len)
{
    for (size_t i = 0; i < n; i++) {
        if (p + i >= hit && p + i < hit + len) {
            continue;
        }
        if (p[i] != (unsigned char)(seed * 31u + i * 7u)) {
            return false;
        }
    }
    return true;
}

static void stray_run(size_t first, size_t len, struct stray_run* out)
{
    void* keep[12];
    corrupt_setup(keep, 12);
    for (size_t i = 0; i < 12; i++) {
        fill(keep[i], ksize(keep[i]), (unsigned)i);
    }
    struct kcache_slab* rec = &kheap_cache()->slab_table[first];
    const struct kcache_class* c = &kheap_cache()->classes[(rec->shape - 1) >> 1];
    unsigned char* hit = pool() + first * UNIT_BS;
    for (size_t i = 0; i < len; i++) {
        hit[i] = (unsigned char)(0xC3 ^ i);
    }
    assert_kheap_clean();
    size_t reports = kheap_hosted_report_count();
    for (size_t j = 0; j < 3; j++) {
        out->got[j] = kmalloc_small(c->size);
        assert_non_null(out->got[j]);
        fill(out->got[j], c->size, 100u + (unsigned)j);
    }
    kcache_get_stats(kheap_cache(), &out->st);
    out->used_blocks = kheap_get()->used_blocks;
    assert_kheap_clean();
    for (size_t i = 0; i < 12; i++) {
        assert_true(filled_but(keep[i], ksize(keep[i]), (unsigned)i, hit, len));
        kfree(keep[i]);
    }
    for (size_t j = 0; j < 3; j++) {
        assert_true(filled(out->got[j], c->size, 100u + (unsigned)j));
        kfree(out->got[j]);
    }
    assert_int_equal(kheap_hosted_report_count(), reports);
    assert_int_equal(kheap_get()->rejected_frees, 0);
    kheap_trim();
    assert_int_equal(kheap_get()->used_blocks, 0); /* nothing lost */
    assert_kheap_clean();
}

static void test_stray_write_every_slab(void** state)
{
    (void)state;
    void* keep[12];
    size_t starts[16];
    corrupt_setup(keep, 12);
    size_t slabs = slab_starts(starts, 16);
    assert_true(slabs >= 4);
    for (size_t k = 0; k < slabs; k++) {
        struct stray_run without;
        struct stray_run with;
        stray_run(starts[k], 0, &without);
        stray_run(starts[k], 48 + 8 * k, &with); /* a header's worth and more */
        assert_memory_equal(with.got, without.got, sizeof(with.got));
        assert_int_equal(with.used_blocks, without.used_blocks);
        assert_memory_equal(&with.st, &without.st, sizeof(with.st));
    }
    print_message("stray writes: %zu slabs hit in turn, none changed what its class did\n", slabs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_region_refused),
        cmocka_unit_test(test_exhausted_heap),
        cmocka_unit_test(test_one_block_free),
        cmocka_unit_test(test_fault_sweep_all_sites),
        cmocka_unit_test(test_fault_sweep_each_site),
        cmocka_unit_test(test_corrupt_table_every_block),
        cmocka_unit_test(test_corrupt_slab_records),
        cmocka_unit_test(test_stray_write_every_slab),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
