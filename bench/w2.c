/*
 * bench/w2.c - benchmark W2: small requests, 8..512 bytes
 * uniformly at random, in a 16 MiB kernel heap. Not a test: it measures.
 *
 *   1. Density: allocate the trace until the first failure. Reports the
 *      objects that fit and the share of the memory that carries requested
 *      bytes: of the 16 MiB pool, and of the pool plus the caches' slab
 *      table (kcache.h: a record per block, outside the pool; the port
 *      gives it, so it is overhead the pool does not show). glibc malloc
 *      gets the same trace; its "fit" is the
 *      number of objects allocated before the memory it took from the
 *      system for them (mallinfo2: arena minus the free top chunk) passes
 *      16 MiB.
 *   2. Speed: with L live objects (L = 2,000 and 3,700), time rounds of
 *      malloc+free pairs (free a random live object, allocate a new random
 *      size in its place; the first byte of each new object is written).
 *      Median ns per pair over the rounds, kmalloc_small/kfree (hosted port:
 *      a pthread mutex around each call), the cache core without the lock
 *      (kcache_alloc/kcache_free), kmalloc/kfree (whole blocks, the seed's
 *      contract and the default) and glibc malloc/free, on the same trace,
 *      rounds interleaved.
 *   Density and speed are also given for the default kmalloc, which spends
 *   a whole 4 KiB block on each of these objects.
 *
 * Usage: w2 [--rounds N] [--pairs N]; output is Markdown (docs/bench/w2.md).
 */
#define _GNU_SOURCE
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hosted/kheap_hosted.h"
#include "memory/heap/kcache.h"

#define W2_HEAP_BYTES ((size_t)16 << 20)
#define W2_MIN 8
#define W2_MAX 512
#define W2_MAX_OBJECTS 200000

struct w2_alloc
{
    const char* name;
    void* (*alloc)(size_t size);
    void (*release)(void* ptr);
};

static uint64_t w2_state;

static uint32_t w2_rand(void)
{
    w2_state = w2_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(w2_state >> 33);
}

static size_t w2_size(void)
{
    return W2_MIN + w2_rand() % (W2_MAX - W2_MIN + 1);
}

static double w2_now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static void w2_kheap_init(void)
{
    struct kheap_hosted_config config = { W2_HEAP_BYTES, true, false, true };
    kheap_hosted_configure(&config);
    kheap_init();
    if (!kheap_ready()) {
        fprintf(stderr, "w2: kheap_init failed\n");
        exit(1);
    }
}

static void* w2_core_alloc(size_t size)
{
    return kcache_alloc(kheap_cache(), size);
}

static void w2_core_free(void* ptr)
{
    kcache_free(kheap_cache(), ptr);
}

static const struct w2_alloc w2_allocators[] = {
    { "kmalloc_small/kfree (with the port's mutex)", kmalloc_small, kfree },
    { "kcache core, no lock", w2_core_alloc, w2_core_free },
    { "kmalloc/kfree (whole blocks, the default)", kmalloc, kfree },
    { "glibc malloc/free", malloc, free },
};
#define W2_ALLOCATORS (sizeof(w2_allocators) / sizeof(w2_allocators[0]))

static void** w2_live;

/* Density of the kernel heap: objects until the first failure. */
static void w2_density_kheap(void* (*alloc)(size_t), size_t* objects, size_t* requested)
{
    w2_kheap_init();
    w2_state = 1;
    *objects = 0;
    *requested = 0;
    for (;;) {
        size_t size = w2_size();
        void* p = alloc(size);
        if (p == NULL) {
            break;
        }
        memset(p, 0x5A, size);
        w2_live[(*objects)++ % W2_MAX_OBJECTS] = p;
        *requested += size;
    }
    size_t bad = 0;
    if (kheap_check(&bad) != 0) {
        fprintf(stderr, "w2: kheap_check failed at block %zu\n", bad);
        exit(1);
    }
}

static size_t w2_glibc_footprint(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.arena + mi.hblkhd - mi.keepcost;
}

/* glibc on the same trace: objects before its footprint grows by 16 MiB. */
static void w2_density_glibc(size_t* objects, size_t* requested)
{
    w2_state = 1;
    *objects = 0;
    *requested = 0;
    size_t base = w2_glibc_footprint();
    for (; *objects < W2_MAX_OBJECTS;) {
        size_t size = w2_size();
        void* p = malloc(size);
        memset(p, 0x5A, size);
        if (w2_glibc_footprint() - base > W2_HEAP_BYTES) {
            free(p);
            break;
        }
        w2_live[(*objects)++] = p;
        *requested += size;
    }
    for (size_t i = 0; i < *objects; i++) {
        free(w2_live[i]);
    }
}

/* One timed round of `pairs` free+malloc pairs over `live` objects. */
static double w2_round(const struct w2_alloc* a, size_t live, size_t pairs, uint64_t seed)
{
    w2_state = seed;
    for (size_t i = 0; i < live; i++) {
        w2_live[i] = a->alloc(w2_size());
    }
    double start = w2_now_ns();
    for (size_t i = 0; i < pairs; i++) {
        size_t slot = w2_rand() % live;
        a->release(w2_live[slot]);
        char* p = (char*)a->alloc(w2_size());
        if (p == NULL) {
            fprintf(stderr, "w2: %s failed during the timed rounds\n", a->name);
            exit(1);
        }
        p[0] = 1;
        w2_live[slot] = p;
    }
    double ns = (w2_now_ns() - start) / (double)pairs;
    for (size_t i = 0; i < live; i++) {
        a->release(w2_live[i]);
    }
    return ns;
}

static int w2_cmp(const void* a, const void* b)
{
    double x = *(const double*)a;
    double y = *(const double*)b;
    return (x > y) - (x < y);
}

static double w2_median(double* v, size_t n)
{
    qsort(v, n, sizeof(double), w2_cmp);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char** argv)
{
    size_t rounds = 21;
    size_t pairs = 200000;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--rounds") == 0) {
            rounds = strtoul(argv[i + 1], NULL, 10);
        } else if (strcmp(argv[i], "--pairs") == 0) {
            pairs = strtoul(argv[i + 1], NULL, 10);
        }
    }
    if (rounds == 0 || rounds > 1001 || pairs == 0) {
        fprintf(stderr, "usage: w2 [--rounds 1..1001] [--pairs N]\n");
        return 2;
    }
    w2_live = calloc(W2_MAX_OBJECTS, sizeof(void*));
    double* samples = calloc(rounds, sizeof(double));
    if (w2_live == NULL || samples == NULL) {
        return 1;
    }

    size_t k_objects, k_requested, g_objects, g_requested, b_objects, b_requested;
    w2_density_glibc(&g_objects, &g_requested);
    w2_density_kheap(kmalloc, &b_objects, &b_requested);
    w2_density_kheap(kmalloc_small, &k_objects, &k_requested);
    struct kcache_stats cs;
    kcache_get_stats(kheap_cache(), &cs);
    struct heap_stats hs;
    heap_get_stats(kheap_get(), &hs);

    printf("# Benchmark W2: 8..512-byte requests in a 16 MiB heap\n\n");
    printf("Generated by `make bench-w2` (bench/w2.c, %zu rounds of %zu pairs, -O2, %d-bit host).\n\n", rounds,
           pairs, (int)(sizeof(void*) * 8));
    /* The slab table is memory the caches need beside the pool: counted. */
    double with_table = (double)(W2_HEAP_BYTES + cs.table_bytes);
    printf("## Density: objects that fit before the first failure\n\n");
    printf("The kernel heap's pool is 16 MiB; its caches' slab table (a %zu-byte record per block, outside\n"
           "the pool) takes %zu bytes more (%.2f%% of the pool). The last column counts it as overhead.\n\n",
           sizeof(struct kcache_slab), cs.table_bytes, 100.0 * (double)cs.table_bytes / (double)W2_HEAP_BYTES);
    printf("| allocator | objects | requested bytes | share of the 16 MiB pool carrying requested bytes "
           "| share of pool + slab table |\n");
    printf("|---|---:|---:|---:|---:|\n");
    printf("| kmalloc_small (kcache) | %zu | %zu | %.1f%% | %.1f%% |\n", k_objects, k_requested,
           100.0 * (double)k_requested / (double)W2_HEAP_BYTES, 100.0 * (double)k_requested / with_table);
    printf("| kmalloc (whole blocks, the default) | %zu | %zu | %.1f%% | %.1f%% |\n", b_objects, b_requested,
           100.0 * (double)b_requested / (double)W2_HEAP_BYTES, 100.0 * (double)b_requested / with_table);
    printf("| glibc malloc (footprint +16 MiB) | %zu | %zu | %.1f%% | (no slab table) |\n\n", g_objects,
           g_requested, 100.0 * (double)g_requested / (double)W2_HEAP_BYTES);
    printf("At the failure: %zu slabs on %zu of %zu blocks (%zu blocks free), %zu spare slabs, "
           "%zu object bytes in class sizes; slab table %zu bytes beside the %zu-byte pool.\n\n",
           cs.slabs, cs.slab_blocks, hs.total_blocks, hs.free_blocks, cs.spare_slabs, cs.object_bytes,
           cs.table_bytes, (size_t)W2_HEAP_BYTES);

    printf("## Speed: median ns per malloc+free pair\n\n");
    printf("| live objects | allocator | median ns/pair | min | max |\n|---:|---|---:|---:|---:|\n");
    const size_t lives[] = { 2000, 3700 };
    double results[2][W2_ALLOCATORS][3];
    for (size_t l = 0; l < 2; l++) {
        double all[W2_ALLOCATORS][1001];
        w2_kheap_init();
        for (size_t r = 0; r < rounds; r++) {
            for (size_t a = 0; a < W2_ALLOCATORS; a++) {
                all[a][r] = w2_round(&w2_allocators[a], lives[l], pairs, 1000 + r);
            }
        }
        if (kheap_check(NULL) != 0) {
            fprintf(stderr, "w2: kheap_check failed after the timed rounds\n");
            return 1;
        }
        for (size_t a = 0; a < W2_ALLOCATORS; a++) {
            memcpy(samples, all[a], rounds * sizeof(double));
            results[l][a][0] = w2_median(samples, rounds);
            results[l][a][1] = samples[0];
            results[l][a][2] = samples[rounds - 1];
            printf("| %zu | %s | %.1f | %.1f | %.1f |\n", lives[l], w2_allocators[a].name, results[l][a][0],
                   results[l][a][1], results[l][a][2]);
        }
    }
    double share = 100.0 * (double)k_requested / with_table; /* the slab table counted */
    printf("\n## Goals\n\n");
    printf("| goal | result | met |\n|---|---|---|\n");
    printf("| >= 60,000 objects fit | %zu | %s |\n", k_objects, k_objects >= 60000 ? "yes" : "no");
    printf("| >= 80%% of the heap (pool + slab table) carries requested bytes | %.1f%% | %s |\n", share,
           share >= 80.0 ? "yes" : "no");
    for (size_t l = 0; l < 2; l++) {
        double k = results[l][0][0];
        double g = results[l][3][0];
        printf("| ns per pair no worse than glibc, %zu live | kmalloc_small %.1f, core %.1f, glibc %.1f (kmalloc_small %.2fx) | %s |\n",
               lives[l], k, results[l][1][0], g, k / g, k <= g ? "yes" : "no");
    }
    printf("\nThe goals are the small-object path's (kmalloc_small; kmalloc gives whole blocks by default,\n"
           "%zu objects in this heap). Where a pair's time goes: exact bad-free detection (slot\n"
           "arithmetic, the bitmap), the slab's record in the slab table and the partial lists, the table\n"
           "lookup in kfree; plus, for kmalloc_small/kfree, the port's lock (a pthread mutex here).\n"
           "docs/kcache.md has the details.\n",
           b_objects);
    free(samples);
    free(w2_live);
    return 0;
}
