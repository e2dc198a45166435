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
#include <unistd.h>

#include "median.h"
#include "hosted/kheap_hosted.h"
#include "memory/heap/heap_status.h"
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

/* The harness alone (random numbers, the live array, the write of the
 * first byte), for the instruction counts: a bump pointer that never frees. */
static unsigned char w2_null_pool[1 << 16] __attribute__((aligned(16)));
static size_t w2_null_next;

static void* w2_null_alloc(size_t size)
{
    (void)size;
    w2_null_next = (w2_null_next + 512) % sizeof(w2_null_pool);
    return &w2_null_pool[w2_null_next];
}

static void w2_null_free(void* ptr)
{
    __asm__ volatile("" : : "r"(ptr) : "memory");
}

#ifndef W2_MALLOC_NAME
#define W2_MALLOC_NAME "glibc"
#endif
#if PEACHOS_KCACHE_MAGAZINES
#define W2_SMALL_NAME "kmalloc_small/kfree (per-CPU magazines)"
#else
#define W2_SMALL_NAME "kmalloc_small/kfree (the port's lock)"
#endif

/* In-process allocators; `key` names them on the command line. */
static const struct w2_alloc w2_allocators[] = {
    { W2_SMALL_NAME, kmalloc_small, kfree },
    { "kcache core, no lock", w2_core_alloc, w2_core_free },
    { "kmalloc/kfree (whole blocks, the default)", kmalloc, kfree },
    { W2_MALLOC_NAME " malloc/free", malloc, free },
    { "harness alone", w2_null_alloc, w2_null_free },
};
static const char* const w2_keys[] = { "small", "core", "blocks", "malloc", "null" };
#define W2_ALLOCATORS (sizeof(w2_allocators) / sizeof(w2_allocators[0]))
#define W2_TIMED 4 /* the first four are timed; "null" only counts instructions */

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

/* The measured loop (callgrind counts this function alone). */
__attribute__((noinline)) void w2_pairs(const struct w2_alloc* a, size_t live, size_t pairs)
{
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
}

/* One timed round of `pairs` free+malloc pairs over `live` objects. */
static double w2_round(const struct w2_alloc* a, size_t live, size_t pairs, uint64_t seed)
{
    w2_state = seed;
    for (size_t i = 0; i < live; i++) {
        w2_live[i] = a->alloc(w2_size());
    }
    double start = w2_now_ns();
    w2_pairs(a, live, pairs);
    double ns = (w2_now_ns() - start) / (double)pairs;
    for (size_t i = 0; i < live; i++) {
        a->release(w2_live[i]);
    }
    return ns;
}

/* Another w2 binary (jemalloc, mimalloc, the locked build) asked for one
 * round of one of its allocators, so that rounds interleave across them. */
struct w2_peer
{
    char label[128];
    char path[256];
    char key[16];
};

static double w2_peer_round(const struct w2_peer* peer, size_t live, size_t pairs, uint64_t seed)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "%s --round %s %zu %zu %llu", peer->path, peer->key, live, pairs,
             (unsigned long long)seed);
    FILE* f = popen(cmd, "r");
    double ns = -1;
    if (f == NULL || fscanf(f, "%lf", &ns) != 1 || pclose(f) != 0) {
        fprintf(stderr, "w2: %s failed\n", cmd);
        exit(1);
    }
    return ns;
}

/* Callgrind's instructions per pair of w2_pairs for `key` in binary `path`
 * (NAN without valgrind). */
static double w2_instructions(const char* path, const char* key, size_t live, size_t pairs)
{
    char out[] = "/tmp/w2-callgrind-XXXXXX";
    int fd = mkstemp(out);
    if (fd < 0) {
        return 0.0 / 0.0;
    }
    close(fd);
    char cmd[1024];
    snprintf(cmd, sizeof(cmd),
             "valgrind --tool=callgrind --callgrind-out-file=%s --toggle-collect=w2_pairs %s --callgrind %s %zu %zu "
             ">/dev/null 2>&1",
             out, path, key, live, pairs);
    double per_pair = 0.0 / 0.0;
    /* Everything under w2_pairs, less w2_pairs' own instructions (the
     * loop, the random numbers, the write of a byte): callgrind_annotate
     * gives the total, then each function's own cost. */
    snprintf(cmd + strlen(cmd), sizeof(cmd) - strlen(cmd), " && callgrind_annotate %s 2>/dev/null", out);
    FILE* f = popen(strstr(cmd, ">/dev/null 2>&1 && ") != NULL ? cmd : "false", "r");
    char line[512];
    unsigned long long total = 0, own = 0;
    while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
        char digits[64];
        size_t k = 0;
        for (const char* c = line; *c == ' ' || (*c >= '0' && *c <= '9') || *c == ','; c++) {
            if (*c >= '0' && *c <= '9' && k + 1 < sizeof(digits)) {
                digits[k++] = *c;
            }
        }
        digits[k] = '\0';
        if (k > 0 && strstr(line, "PROGRAM TOTALS") != NULL) {
            total = strtoull(digits, NULL, 10);
        } else if (k > 0 && own == 0 && strstr(line, ":w2_pairs") != NULL) {
            own = strtoull(digits, NULL, 10);
        }
    }
    if (f != NULL && pclose(f) == 0 && total > own) {
        per_pair = (double)(total - own) / (double)pairs;
    }
    unlink(out);
    return per_pair;
}

static const struct w2_alloc* w2_find(const char* key)
{
    for (size_t a = 0; a < W2_ALLOCATORS; a++) {
        if (strcmp(w2_keys[a], key) == 0) {
            return &w2_allocators[a];
        }
    }
    fprintf(stderr, "w2: no allocator %s\n", key);
    exit(2);
}

/* Every kind of bad free of a small object still refused and reported:
 * interior, double, never allocated. Returns how many of the three were. */
static int w2_bad_frees(void)
{
    w2_kheap_init();
    unsigned char* p = kmalloc_small(100); /* class 112 */
    unsigned char* keep = kmalloc_small(100);
    size_t before = kheap_get()->rejected_frees;
    size_t reports = kheap_hosted_report_count();
    kfree(p + 16);          /* interior */
    kfree(p);
    kfree(p);               /* double */
    kfree(keep + 112 * 10); /* a slot never handed out */
    int refused = (int)(kheap_get()->rejected_frees - before);
    bool reported = kheap_hosted_report_count() - reports == (size_t)refused &&
                    kheap_hosted_last_report().kind == HEAP_REPORT_CACHE_BAD_FREE;
    kfree(keep);
    return reported ? refused : -1;
}

static const char* w2_met(bool ok)
{
    return ok ? "met" : "not met";
}

int main(int argc, char** argv)
{
    size_t rounds = 21;
    size_t pairs = 200000;
    size_t cg_pairs = 20000;
    struct w2_peer peers[8];
    size_t npeers = 0;
    bool instructions = true;
    if (argc == 6 && strcmp(argv[1], "--round") == 0) {
        w2_live = calloc(W2_MAX_OBJECTS, sizeof(void*));
        w2_kheap_init();
        printf("%.3f\n", w2_round(w2_find(argv[2]), strtoul(argv[3], NULL, 10), strtoul(argv[4], NULL, 10),
                                  strtoull(argv[5], NULL, 10)));
        return 0;
    }
    if (argc == 5 && strcmp(argv[1], "--callgrind") == 0) {
        w2_live = calloc(W2_MAX_OBJECTS, sizeof(void*));
        w2_kheap_init();
        w2_round(w2_find(argv[2]), strtoul(argv[3], NULL, 10), strtoul(argv[4], NULL, 10), 1000);
        return 0;
    }
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--no-callgrind") == 0) {
            instructions = false;
        } else if (i + 1 < argc && strcmp(argv[i], "--rounds") == 0) {
            rounds = strtoul(argv[++i], NULL, 10);
        } else if (i + 1 < argc && strcmp(argv[i], "--pairs") == 0) {
            pairs = strtoul(argv[++i], NULL, 10);
            cg_pairs = pairs < cg_pairs ? pairs : cg_pairs;
        } else if (i + 1 < argc && strcmp(argv[i], "--peer") == 0 && npeers < 8) {
            /* LABEL=PATH:KEY */
            struct w2_peer* p = &peers[npeers++];
            if (sscanf(argv[++i], "%127[^=]=%255[^:]:%15s", p->label, p->path, p->key) != 3) {
                fprintf(stderr, "w2: --peer LABEL=PATH:KEY\n");
                return 2;
            }
        }
    }
    if (rounds == 0 || rounds > 1001 || pairs == 0) {
        fprintf(stderr, "usage: w2 [--rounds 1..1001] [--pairs N] [--peer LABEL=PATH:KEY]... [--no-callgrind]\n");
        return 2;
    }
    w2_live = calloc(W2_MAX_OBJECTS, sizeof(void*));
    double* samples = calloc(rounds, sizeof(double));
    if (w2_live == NULL || samples == NULL) {
        return 1;
    }
    instructions = instructions && system("valgrind --version >/dev/null 2>&1") == 0;

    size_t k_objects, k_requested, g_objects, g_requested, b_objects, b_requested;
    w2_density_glibc(&g_objects, &g_requested);
    w2_density_kheap(kmalloc, &b_objects, &b_requested);
    w2_density_kheap(kmalloc_small, &k_objects, &k_requested);
    struct kcache_stats cs;
    kcache_get_stats(kheap_cache(), &cs);
    struct heap_stats hs;
    heap_get_stats(kheap_get(), &hs);

    printf("# Benchmark W2: 8..512-byte requests in a 16 MiB heap\n\n");
    printf("Generated by `make bench-w2` (bench/w2.c, %zu rounds of %zu pairs, -O2, %d-bit host, "
           "PEACHOS_KCACHE_MAGAZINES=%d).\n\n",
           rounds, pairs, (int)(sizeof(void*) * 8), PEACHOS_KCACHE_MAGAZINES);
    printf("## Density: objects that fit before the first failure\n\n");
    printf("| allocator | objects | requested bytes | share of 16 MiB carrying requested bytes |\n");
    printf("|---|---:|---:|---:|\n");
    printf("| kmalloc_small (kcache) | %zu | %zu | %.1f%% |\n", k_objects, k_requested,
           100.0 * (double)k_requested / (double)W2_HEAP_BYTES);
    printf("| kmalloc (whole blocks, the default) | %zu | %zu | %.1f%% |\n", b_objects, b_requested,
           100.0 * (double)b_requested / (double)W2_HEAP_BYTES);
    printf("| glibc malloc (footprint +16 MiB) | %zu | %zu | %.1f%% |\n\n", g_objects, g_requested,
           100.0 * (double)g_requested / (double)W2_HEAP_BYTES);
    printf("At the failure: %zu slabs on %zu of %zu blocks (%zu blocks free), %zu spare slabs, "
           "%zu object bytes in class sizes.\n\n",
           cs.slabs, cs.slab_blocks, hs.total_blocks, hs.free_blocks, cs.spare_slabs, cs.object_bytes);

    /* Rows: the timed in-process allocators, then the peers. */
    size_t rows = W2_TIMED + npeers;
    const size_t lives[] = { 2000, 3700 };
    static double all[2][W2_TIMED + 8][1001];
    double med[2][W2_TIMED + 8], lo[2][W2_TIMED + 8], hi[2][W2_TIMED + 8], ins[2][W2_TIMED + 8];
    size_t locks[2] = { 0, 0 };
    for (size_t l = 0; l < 2; l++) {
        w2_kheap_init();
        for (size_t r = 0; r < rounds; r++) {
            for (size_t a = 0; a < W2_TIMED; a++) {
                size_t before = kheap_hosted_lock_count();
                all[l][a][r] = w2_round(&w2_allocators[a], lives[l], pairs, 1000 + r);
                locks[l] += a == 0 ? kheap_hosted_lock_count() - before : 0;
            }
            for (size_t k = 0; k < npeers; k++) {
                all[l][W2_TIMED + k][r] = w2_peer_round(&peers[k], lives[l], pairs, 1000 + r);
            }
        }
        if (kheap_check(NULL) != 0) {
            fprintf(stderr, "w2: kheap_check failed after the timed rounds\n");
            return 1;
        }
        for (size_t a = 0; a < rows; a++) {
            memcpy(samples, all[l][a], rounds * sizeof(double));
            med[l][a] = bench_median(samples, rounds);
            lo[l][a] = samples[0];
            hi[l][a] = samples[rounds - 1];
            ins[l][a] = !instructions ? 0.0 / 0.0
                        : a < W2_TIMED ? w2_instructions(argv[0], w2_keys[a], lives[l], cg_pairs)
                                       : w2_instructions(peers[a - W2_TIMED].path, peers[a - W2_TIMED].key,
                                                         lives[l], cg_pairs);
        }
    }
    printf("## Speed: median ns per malloc+free pair\n\n");
    printf("Instructions per pair: callgrind over the measured loop (%zu pairs), less the loop's own "
           "instructions (random numbers, the array, the byte written).\n\n", cg_pairs);
    printf("| live objects | allocator | median ns/pair | min | max | instructions per pair |\n"
           "|---:|---|---:|---:|---:|---:|\n");
    for (size_t l = 0; l < 2; l++) {
        for (size_t a = 0; a < rows; a++) {
            const char* name = a < W2_TIMED ? w2_allocators[a].name : peers[a - W2_TIMED].label;
            printf("| %zu | %s | %.1f | %.1f | %.1f | %.0f |\n", lives[l], name, med[l][a], lo[l][a], hi[l][a],
                   ins[l][a]);
        }
    }
    int bad = w2_bad_frees();
    size_t mim = rows;
    for (size_t k = 0; k < npeers; k++) {
        mim = strstr(peers[k].label, "mimalloc") != NULL ? W2_TIMED + k : mim;
    }
    double share = 100.0 * (double)k_requested / (double)W2_HEAP_BYTES;
    printf("\n## Goals\n\n");
    printf("| goal | result | status |\n|---|---|---|\n");
    printf("| >= 60,000 objects fit | %zu | %s |\n", k_objects, w2_met(k_objects >= 60000));
    printf("| >= 80%% of the heap carries requested bytes | %.1f%% | %s |\n", share, w2_met(share >= 80.0));
    for (size_t l = 0; l < 2; l++) {
        printf("| <= 100 instructions per kmalloc_small+kfree pair, %zu live | %.0f (glibc %.0f) | %s |\n", lives[l],
               ins[l][0], ins[l][3], instructions ? w2_met(ins[l][0] <= 100) : "not measured (no valgrind)");
    }
    for (size_t l = 0; l < 2; l++) {
        double k = med[l][0];
        double g = med[l][3];
        printf("| time <= glibc's, %zu live | kmalloc_small %.1f ns, glibc %.1f ns (%.2fx) | %s |\n", lives[l], k, g,
               k / g, w2_met(k <= g));
    }
    for (size_t l = 0; l < 2 && mim < rows; l++) {
        printf("| time within 2x mimalloc's, %zu live | kmalloc_small %.1f ns, mimalloc %.1f ns (%.2fx) | %s |\n",
               lives[l], med[l][0], med[l][mim], med[l][0] / med[l][mim], w2_met(med[l][0] <= 2 * med[l][mim]));
    }
    printf("| every bad free of a small object refused and reported (interior, double, never allocated) | "
           "%d of 3 | %s |\n", bad, w2_met(bad == 3));
    printf("| the common path takes no global lock | %.4f lock acquisitions per kmalloc_small+kfree pair "
           "(%zu rounds x %zu pairs x 2 live counts) | %s |\n",
           (double)(locks[0] + locks[1]) / (double)(rounds * (2 * pairs + lives[0] + lives[1])), rounds, pairs,
           w2_met(PEACHOS_KCACHE_MAGAZINES && locks[0] + locks[1] < rounds * pairs / 4));
    printf("\nkmalloc gives whole blocks by default (%zu objects of this trace fit); the goals are "
           "kmalloc_small's. docs/kcache.md (\"Cost\") says where the instructions go.\n", b_objects);
    free(samples);
    free(w2_live);
    return 0;
}
