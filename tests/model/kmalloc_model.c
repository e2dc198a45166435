/*
 * tests/model/kmalloc_model.c - seeded random model test of the kmalloc
 * family (kheap.c + kcache.c over the hosted port), small and large sizes.
 *
 * Keeps its own record of every live allocation (pointer, size, kind, a
 * stamp) and after every operation checks what it can:
 *   - the pointer's alignment (16 for small objects, a block for whole
 *     blocks and kpalloc), ksize (the class size or the blocks' bytes);
 *   - contents: every allocation is filled with a pattern made from its
 *     stamp; checked on free, on krealloc (the kept prefix), and for all
 *     live allocations every --check-every operations, so any overlap or
 *     stray write shows; kzalloc/kcalloc memory must read as zeros;
 *   - a NULL is only accepted when the heap really has no room: no free run
 *     long enough for blocks, no free block at all for a small object whose
 *     class is full (kmalloc gives the spare slabs back before failing);
 *   - bad frees (interior, misaligned, double free, outside) are refused,
 *     counted and reported, and change nothing;
 *   - kheap_check (heap_check + kcache_check) every --check-every operations
 *     and at the end of each run; the cache's object count equals the
 *     model's; after freeing everything and kheap_trim, no block is used.
 * Operations: kmalloc (small, medium, large), kpalloc, kzalloc, kcalloc,
 * kmalloc_small, kzalloc_small
 * (also overflowing), krealloc (grow, shrink, to and from blocks, NULL, 0),
 * kfree, bad frees, kheap_trim; phases that fill the heap and drain it.
 * kmalloc, kzalloc, kcalloc and krealloc(NULL, n) must give whole blocks
 * (the seed's contract), or small objects in a build with
 * -DPEACHOS_KMALLOC_SMALL_OBJECTS=1 (mk/kcache.mk runs both).
 * Built with -DPEACHOS_KCACHE_POISON=1 it also proves that a write after
 * free is reported.
 *
 * Usage: kmalloc_model [--seed N] [--ops N] [--check-every N]
 *   default: 1,200,000 operations over heaps of 64, 512 and 2,048 blocks.
 * On a failure it prints the seed, run and operation number.
 */
#define _DEFAULT_SOURCE
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hosted/kheap_hosted.h"
#include "memory/heap/kcache.h"
#include "status.h"
#include "memory/heap/heap_status.h"

#define BS ((size_t)PEACHOS_HEAP_BLOCK_SIZE)
#define MAX_LIVE 6000

enum kind
{
    KIND_SMALL,  /* from the caches */
    KIND_BLOCKS, /* whole blocks */
};

struct live
{
    unsigned char* p;
    size_t size; /* bytes the model fills and checks */
    uint64_t stamp;
    enum kind kind;
};

struct model
{
    struct live live[MAX_LIVE];
    size_t nlive;
    size_t small_live;
    uint64_t rng;
    uint64_t next_stamp;
    size_t op;
    size_t run;
    uint64_t seed;
    size_t check_every;
    size_t reports;
    size_t rejected;
    size_t stats[10]; /* operations done, by kind, for the summary */
    size_t nulls;    /* allocations refused for lack of room (each checked) */
};

static struct model m;

#define FAIL(...)                                                                                          \
    do {                                                                                                   \
        fprintf(stderr, "kmalloc_model: seed %" PRIu64 " run %zu op %zu: ", m.seed, m.run, m.op);         \
        fprintf(stderr, __VA_ARGS__);                                                                      \
        fputc('\n', stderr);                                                                               \
        exit(1);                                                                                           \
    } while (0)

static uint32_t rnd(void)
{
    m.rng = m.rng * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(m.rng >> 33);
}

static size_t rnd_below(size_t n)
{
    return (size_t)(((uint64_t)rnd() << 32 | rnd()) % n);
}

/* ------------------------------------------------------------ contents */

static unsigned char pattern(uint64_t stamp, size_t i)
{
    uint64_t x = stamp * 0x9E3779B97F4A7C15ull + (uint64_t)(i / 8) * 0xBF58476D1CE4E5B9ull;
    return (unsigned char)(x >> (8 * (i % 8)));
}

static void fill(unsigned char* p, size_t n, uint64_t stamp)
{
    for (size_t i = 0; i < n; i++) {
        p[i] = pattern(stamp, i);
    }
}

static void check_contents(const unsigned char* p, size_t n, uint64_t stamp, const char* what)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] != pattern(stamp, i)) {
            FAIL("%s: byte %zu of %p (%zu bytes) is %02X, want %02X", what, i, (const void*)p, n, p[i],
                 pattern(stamp, i));
        }
    }
}

static void check_all(void)
{
    for (size_t i = 0; i < m.nlive; i++) {
        check_contents(m.live[i].p, m.live[i].size, m.live[i].stamp, "live allocation");
    }
}

/* --------------------------------------------------------------- checks */

/* What kmalloc_small (and a small object's move) gives for `size`. */
static enum kind small_kind_of(size_t size)
{
    return size <= KCACHE_MAX_SIZE ? KIND_SMALL : KIND_BLOCKS;
}

/* What kmalloc, kzalloc, kcalloc and krealloc(NULL, n) give: whole blocks
 * (the seed's contract), unless built with PEACHOS_KMALLOC_SMALL_OBJECTS=1. */
static enum kind kind_of(size_t size)
{
    return PEACHOS_KMALLOC_SMALL_OBJECTS ? small_kind_of(size) : KIND_BLOCKS;
}

static size_t blocks_for(size_t size)
{
    return size / BS + (size % BS != 0);
}

static size_t usable_for(size_t size, enum kind kind)
{
    if (kind == KIND_SMALL) {
        return kheap_cache()->classes[kcache_class_of(size)].size;
    }
    return blocks_for(size) * BS;
}

static void check_new(const unsigned char* p, size_t size, enum kind kind)
{
    uintptr_t offset = (uintptr_t)p - (uintptr_t)kheap_get()->saddr;
    size_t align = kind == KIND_SMALL ? KCACHE_ALIGN : BS;
    if (offset % align != 0 || offset / BS >= kheap_get()->table->total) {
        FAIL("%p (%zu bytes) is not %zu-aligned in the pool", (const void*)p, size, align);
    }
    if (ksize(p) != usable_for(size, kind)) {
        FAIL("ksize(%p) = %zu for %zu bytes, want %zu", (const void*)p, ksize(p), size, usable_for(size, kind));
    }
}

/* A NULL for `size` is only right if there is really no room. */
static void check_null_is_full(size_t size, enum kind kind)
{
    m.nulls++;
    struct heap_stats hs;
    heap_get_stats(kheap_get(), &hs);
    struct kcache_stats cs;
    kcache_get_stats(kheap_cache(), &cs);
    if (cs.spare_slabs != 0) {
        FAIL("NULL for %zu bytes while %zu spare slabs were kept", size, cs.spare_slabs);
    }
    if (kind == KIND_BLOCKS && hs.largest_free_run >= blocks_for(size)) {
        FAIL("NULL for %zu bytes with a free run of %zu blocks", size, hs.largest_free_run);
    }
    if (kind == KIND_SMALL) {
        const struct kcache_class* c = &kheap_cache()->classes[kcache_class_of(size)];
        if (c->partial != KCACHE_NONE || hs.free_blocks != 0) {
            FAIL("NULL for %zu bytes with a partial slab or %zu free blocks", size, hs.free_blocks);
        }
    }
}

static void check_heap(void)
{
    size_t bad = 0;
    int res = kheap_check(&bad);
    if (res != 0) {
        FAIL("kheap_check: %d at block %zu", res, bad);
    }
    struct kcache_stats cs;
    kcache_get_stats(kheap_cache(), &cs);
    if (cs.objects != m.small_live) {
        FAIL("the caches count %zu objects, the model %zu", cs.objects, m.small_live);
    }
    if (kheap_get()->rejected_frees != m.rejected || kheap_hosted_report_count() != m.reports) {
        FAIL("rejected frees %zu (model %zu), reports %zu (model %zu)", kheap_get()->rejected_frees, m.rejected,
             kheap_hosted_report_count(), m.reports);
    }
}

/* ----------------------------------------------------------- operations */

static void remember(unsigned char* p, size_t size, enum kind kind)
{
    struct live* l = &m.live[m.nlive++];
    l->p = p;
    l->size = size;
    l->stamp = ++m.next_stamp;
    l->kind = kind;
    fill(p, size, l->stamp);
    m.small_live += kind == KIND_SMALL;
}

static void forget(size_t i)
{
    m.small_live -= m.live[i].kind == KIND_SMALL;
    m.live[i] = m.live[--m.nlive];
}

/* Sizes: mostly small (every class), some medium and large, a few edges. */
static size_t pick_size(void)
{
    uint32_t r = rnd() % 100;
    if (r < 70) {
        return 1 + rnd_below(KCACHE_MAX_SIZE);
    }
    if (r < 75) {
        static const size_t edges[] = { 1, 15, 16, 17, 512, 513, 1024, 2047, 2048, 2049, 4095, 4096, 4097 };
        return edges[rnd_below(sizeof(edges) / sizeof(edges[0]))];
    }
    if (r < 95) {
        return KCACHE_MAX_SIZE + 1 + rnd_below(4 * BS);
    }
    return 1 + rnd_below(32 * BS);
}

/* how: 0 kmalloc, 1 kzalloc, 2 kcalloc, 3 kpalloc, 8 kmalloc_small, 9 kzalloc_small */
static void op_alloc(int how)
{
    if (m.nlive == MAX_LIVE) {
        return;
    }
    size_t size = pick_size();
    enum kind kind = kind_of(size);
    unsigned char* p;
    if (how == 0) {
        p = kmalloc(size);
    } else if (how == 1) {
        p = kzalloc(size);
    } else if (how == 2) {
        size_t n = 1 + rnd_below(8);
        size = (size + n - 1) / n * n;
        kind = kind_of(size);
        p = kcalloc(n, size / n);
    } else if (how == 3) {
        p = kpalloc(size);
        kind = KIND_BLOCKS;
    } else {
        p = how == 8 ? kmalloc_small(size) : kzalloc_small(size);
        kind = small_kind_of(size);
    }
    m.stats[how]++;
    if (p == NULL) {
        check_null_is_full(size, kind);
        return;
    }
    check_new(p, size, kind);
    if (how == 1 || how == 2 || how == 9) {
        for (size_t i = 0; i < size; i++) {
            if (p[i] != 0) {
                FAIL("kzalloc/kcalloc(%zu): byte %zu is %02X", size, i, p[i]);
            }
        }
    }
    remember(p, size, kind);
}

static void op_free(void)
{
    if (m.nlive == 0) {
        return;
    }
    size_t i = rnd_below(m.nlive);
    struct live l = m.live[i];
    check_contents(l.p, l.size, l.stamp, "kfree");
    kfree(l.p);
    forget(i);
    m.stats[4]++;
    if (rnd() % 16 == 0) { /* double free, before anything can reuse the memory */
        size_t rejected = kheap_get()->rejected_frees;
        kfree(l.p);
        if (kheap_get()->rejected_frees != rejected + 1 || kheap_hosted_last_report().ptr != l.p) {
            FAIL("double free of %p (%zu bytes) not refused", (void*)l.p, l.size);
        }
        m.rejected++;
        m.reports++;
    }
}

/* A pointer that is no allocation's start: inside a live one, or outside. */
static void op_bad_free(void)
{
    if (m.nlive == 0) {
        return;
    }
    struct live* l = &m.live[rnd_below(m.nlive)];
    size_t usable = ksize(l->p);
    unsigned char* bad;
    switch (rnd() % 3) {
    case 0:
        bad = l->p + 1 + rnd_below(usable - 1); /* usable >= 16 */
        break;
    case 1:
        bad = l->p + 8;
        break;
    default:
        bad = (unsigned char*)&m;
        break;
    }
    size_t rejected = kheap_get()->rejected_frees;
    kfree(bad);
    if (kheap_get()->rejected_frees != rejected + 1 || kheap_hosted_last_report().ptr != bad) {
        FAIL("bad free of %p (live %p, %zu bytes) was not refused", (void*)bad, (void*)l->p, l->size);
    }
    m.rejected++;
    m.reports++;
    m.stats[5]++;
}

/* krealloc(NULL, n) = kmalloc(n). */
static void op_realloc_null(void)
{
    if (m.nlive == MAX_LIVE) {
        return;
    }
    size_t size = pick_size();
    unsigned char* p = krealloc(NULL, size);
    if (p == NULL) {
        check_null_is_full(size, kind_of(size));
        return;
    }
    check_new(p, size, kind_of(size));
    remember(p, size, kind_of(size));
}

static void op_realloc(void)
{
    m.stats[6]++;
    if (m.nlive == 0 || rnd() % 10 == 0) {
        op_realloc_null();
        return;
    }
    size_t i = rnd_below(m.nlive);
    struct live l = m.live[i];
    check_contents(l.p, l.size, l.stamp, "krealloc (before)");
    if (rnd() % 20 == 0) { /* krealloc(p, 0) frees */
        if (krealloc(l.p, 0) != NULL || ksize(l.p) != 0) {
            FAIL("krealloc(p, 0) did not free p");
        }
        forget(i);
        return;
    }
    size_t old_usable = ksize(l.p);
    size_t size = rnd() % 2 ? pick_size() : 1 + rnd_below(l.size * 2);
    unsigned char* p = krealloc(l.p, size);
    if (p == NULL) {
        check_contents(l.p, l.size, l.stamp, "krealloc failed: old data");
        return;
    }
    check_contents(p, l.size < size ? l.size : size, l.stamp, "krealloc (kept)");
    bool in_place = l.kind == KIND_SMALL ? size <= old_usable : blocks_for(size) <= old_usable / BS;
    if (in_place && p != l.p) {
        FAIL("krealloc(%p, %zu) moved though it fitted (%zu usable)", (void*)l.p, size, old_usable);
    }
    /* Block memory stays blocks; a small object that moves goes where kmalloc puts it. */
    enum kind kind = l.kind == KIND_BLOCKS ? KIND_BLOCKS : p == l.p ? KIND_SMALL : small_kind_of(size);
    if (kind == KIND_SMALL && p == l.p) {
        if (ksize(p) != old_usable) {
            FAIL("krealloc in place changed ksize");
        }
    } else {
        check_new(p, size, kind);
    }
    forget(i);
    remember(p, size, kind);
}

static void op_trim(void)
{
    kheap_trim();
    struct kcache_stats cs;
    kcache_get_stats(kheap_cache(), &cs);
    if (cs.spare_slabs != 0) {
        FAIL("%zu spare slabs after kheap_trim", cs.spare_slabs);
    }
    m.stats[7]++;
}

/* One operation; the mix leans to allocation or to freeing by phase. */
static void step(bool filling)
{
    uint32_t r = rnd() % 1000;
    uint32_t alloc_share = filling ? 560 : 300;
    if (r < alloc_share) {
        uint32_t how = rnd() % 30;
        op_alloc(how < 10 ? 0 : how < 12 ? 1 : how < 14 ? 2 : how < 16 ? 3 : how < 26 ? 8 : 9);
    } else if (r < 900) {
        op_free();
    } else if (r < 980) {
        op_realloc();
    } else if (r < 995) {
        op_bad_free();
    } else if (r < 996) {
        op_trim();
    } else {
        /* kcalloc that overflows: NULL, nothing tried */
        size_t failed = kheap_get()->failed_allocs;
        if (kcalloc(SIZE_MAX / 3 + 1 + rnd_below(1000), 3 + rnd_below(5)) != NULL ||
            kheap_get()->failed_allocs != failed) {
            FAIL("an overflowing kcalloc did something");
        }
    }
}

static void run(size_t blocks, size_t ops)
{
    struct kheap_hosted_config config = { blocks * BS, blocks % 2 == 0, false, true };
    kheap_hosted_configure(&config);
    kheap_init();
    if (!kheap_ready()) {
        FAIL("kheap_init failed for %zu blocks", blocks);
    }
    m.nlive = 0;
    m.small_live = 0;
    m.reports = kheap_hosted_report_count();
    m.rejected = 0;
    bool filling = true;
    for (size_t i = 0; i < ops; i++, m.op++) {
        if (i % 5000 == 0) {
            filling = !filling || rnd() % 2;
        }
        step(filling);
        if ((i + 1) % m.check_every == 0) {
            check_heap();
            check_all();
        }
    }
    check_heap();
    check_all();
    while (m.nlive > 0) {
        op_free();
    }
    kheap_trim();
    check_heap();
    if (kheap_get()->used_blocks != 0 || kheap_get()->live_allocations != 0) {
        FAIL("%zu blocks still used after freeing everything", kheap_get()->used_blocks);
    }
    m.run++;
}

#if PEACHOS_KCACHE_POISON
/* The debug configuration: a write after free is caught by kheap_check and
 * reported by the next allocation of that object. */
static void poison_demo(void)
{
    struct kheap_hosted_config config = { 16 * BS, true, false, true };
    kheap_hosted_configure(&config);
    kheap_init();
    if (!(kheap_cache()->flags & KCACHE_FLAG_POISON)) {
        FAIL("built with PEACHOS_KCACHE_POISON=1 but the caches do not poison");
    }
    unsigned char* p = kmalloc_small(64);
    kfree(p);
    p[3] = 0;
    size_t bad = 0;
    if (kheap_check(&bad) != -ECORRUPT) {
        FAIL("kheap_check missed a write after free");
    }
    size_t reports = kheap_hosted_report_count();
    if (kmalloc_small(64) != p || kheap_hosted_report_count() != reports + 1 ||
        kheap_hosted_last_report().kind != HEAP_REPORT_CACHE_USE_AFTER_FREE || kheap_hosted_last_report().ptr != p) {
        FAIL("a write after free was not reported on allocation");
    }
    kfree(p);
    if (kheap_check(&bad) != 0) {
        FAIL("kheap_check after the poison demo: block %zu", bad);
    }
    printf("kmalloc_model: poison: a write after free was reported (HEAP_REPORT_CACHE_USE_AFTER_FREE)\n");
}
#endif

int main(int argc, char** argv)
{
    m.seed = 20240605;
    size_t ops = 1200000;
    m.check_every = 2000;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--seed") == 0) {
            m.seed = strtoull(argv[i + 1], NULL, 10);
        } else if (strcmp(argv[i], "--ops") == 0) {
            ops = strtoull(argv[i + 1], NULL, 10);
        } else if (strcmp(argv[i], "--check-every") == 0) {
            m.check_every = strtoull(argv[i + 1], NULL, 10);
        } else {
            fprintf(stderr, "usage: kmalloc_model [--seed N] [--ops N] [--check-every N]\n");
            return 2;
        }
    }
    if (m.check_every == 0) {
        m.check_every = 1;
    }
    m.rng = m.seed;
    static const size_t heaps[] = { 64, 512, 2048 };
    static const size_t share[] = { 2, 3, 5 }; /* tenths of the operations */
    for (size_t h = 0; h < 3; h++) {
        run(heaps[h], ops / 10 * share[h]);
    }
#if PEACHOS_KCACHE_POISON
    poison_demo();
#endif
    printf("kmalloc_model: seed %" PRIu64 ": %zu operations over heaps of 64, 512 and 2048 blocks: "
           "%zu kmalloc, %zu kzalloc, %zu kcalloc, %zu kpalloc, %zu kmalloc_small, %zu kzalloc_small, "
           "%zu kfree, %zu bad frees, %zu krealloc, %zu trims, %zu NULLs for lack of room (kmalloc: %s); "
           "every check passed\n",
           m.seed, m.op, m.stats[0], m.stats[1], m.stats[2], m.stats[3], m.stats[8], m.stats[9], m.stats[4],
           m.stats[5], m.stats[6], m.stats[7], m.nulls, PEACHOS_KMALLOC_SMALL_OBJECTS ? "small objects" : "whole blocks");
    return 0;
}
