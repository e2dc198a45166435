/*
 * bench/w2_threads.c - W2 with threads: what the per-CPU magazines do when
 * several threads allocate small objects from the one kernel heap. Not a
 * test: it measures (but it fails loudly on a broken heap, see below).
 *
 * Each of N threads runs W2's loop (bench/w2.c) on the shared kheap: it
 * allocates its own 2,000 objects of 8..512 bytes (uniform), then, until
 * told to stop, frees a random one of them and allocates a new random size
 * in its place, writing one byte of each new object. A round lasts a fixed
 * time; its result is the pairs all threads completed per second, counted
 * from the moment every thread has its objects to the moment every thread
 * has stopped. Threads are new in every round (each gets a CPU number from
 * the hosted port on its first call and gives its magazines back when it
 * exits, kheap_port.c's key destructor calling kheap_cpu_flush).
 *
 * The byte written is the thread's tag and is checked when the object is
 * freed, so two threads handed the same object are caught (exit 1), on
 * every allocator alike (one load and compare a pair). After the threads
 * of a kheap round have exited: kheap_trim, then kheap_check must be clean
 * and the heap empty (no block, no allocation, no small object, no slab),
 * which also proves every thread's magazines came back; else exit 1.
 *
 * One binary is built per allocator set (mk/bench.mk): the magazine build
 * (PEACHOS_KCACHE_MAGAZINES=1) and the same code without magazines (the
 * port's lock on every call) have "small" (kmalloc_small/kfree) and
 * "malloc" (the C library's, or jemalloc's / mimalloc's when linked with
 * -ljemalloc / -lmimalloc).
 *
 * Usage:
 *   w2-threads --round KEY THREADS SECONDS SEED
 *       one round in this process; prints "pairs_per_second
 *       lock_acquisitions_per_pair" (the second -1 for malloc)
 *   w2-threads [--threads 1,2,4] [--rounds R] [--seconds S] [--dat FILE]
 *              --run LABEL=PATH:KEY ...
 *       the table: R rounds, each running every (threads, run) once as its
 *       own process (`PATH --round KEY ...`), interleaved; prints Markdown
 *       (medians, speedup over 1 thread) and writes FILE for gnuplot
 *       (a line per thread count: threads, then each run's median pairs/s).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "median.h"
#include "hosted/kheap_hosted.h"
#include "memory/heap/heap.h"
#include "memory/heap/kcache.h"

#define WT_HEAP_BYTES ((size_t)16 << 20)
#define WT_MIN 8
#define WT_MAX 512
#define WT_LIVE 2000        /* objects each thread keeps, as W2's first live count */
#define WT_MAX_THREADS 64   /* beyond PEACHOS_KCACHE_CPUS (8) threads take the locked path */
#define WT_MAX_RUNS 8
#define WT_MAX_COUNTS 8
#define WT_MAX_ROUNDS 101

struct wt_alloc
{
    const char* key;
    void* (*alloc)(size_t size);
    void (*release)(void* ptr);
    bool kheap; /* the kernel heap: lock count and end checks apply */
};

static const struct wt_alloc wt_allocators[] = {
    { "small", kmalloc_small, kfree, true },
    { "malloc", malloc, free, false },
};

struct wt_thread
{
    pthread_t handle;
    unsigned id;
    const struct wt_alloc* a;
    uint64_t state; /* the thread's own random numbers */
    unsigned long long pairs;
    void* live[WT_LIVE];
    char pad[64]; /* no cache line shared with the next thread's state */
};

static pthread_barrier_t wt_filled, wt_go, wt_stopped, wt_release;
static atomic_bool wt_stop;

static uint32_t wt_rand(uint64_t* state)
{
    *state = *state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(*state >> 33);
}

static size_t wt_size(uint64_t* state)
{
    return WT_MIN + wt_rand(state) % (WT_MAX - WT_MIN + 1);
}

static double wt_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void wt_fail(const char* what, unsigned id)
{
    fprintf(stderr, "w2-threads: thread %u: %s\n", id, what);
    exit(1);
}

static unsigned char* wt_new(struct wt_thread* t, unsigned char tag)
{
    unsigned char* p = t->a->alloc(wt_size(&t->state));
    if (p == NULL) {
        wt_fail("allocation failed", t->id);
    }
    p[0] = tag;
    return p;
}

static void wt_free(struct wt_thread* t, unsigned char* p, unsigned char tag)
{
    if (p[0] != tag) {
        wt_fail("an object's byte changed: another thread has it too", t->id);
    }
    t->a->release(p);
}

/* The measured loop: W2's pairs, until main says stop. */
static __attribute__((noinline)) unsigned long long wt_pairs(struct wt_thread* t, unsigned char tag)
{
    unsigned long long pairs = 0;
    while (!atomic_load_explicit(&wt_stop, memory_order_relaxed)) {
        size_t slot = wt_rand(&t->state) % WT_LIVE;
        wt_free(t, t->live[slot], tag);
        t->live[slot] = wt_new(t, tag);
        pairs++;
    }
    return pairs;
}

static void* wt_worker(void* arg)
{
    struct wt_thread* t = arg;
    unsigned char tag = (unsigned char)(0x40 + t->id % 0xC0);
    for (size_t i = 0; i < WT_LIVE; i++) {
        t->live[i] = wt_new(t, tag);
    }
    pthread_barrier_wait(&wt_filled); /* main reads the clock and the lock count */
    pthread_barrier_wait(&wt_go);
    t->pairs = wt_pairs(t, tag);
    pthread_barrier_wait(&wt_stopped); /* main reads them again */
    pthread_barrier_wait(&wt_release);
    for (size_t i = 0; i < WT_LIVE; i++) {
        wt_free(t, t->live[i], tag);
    }
    return NULL; /* the port's key destructor gives this thread's magazines back */
}

/* The heap after the threads are gone: sound and empty. */
static void wt_check_empty(void)
{
    (void)kheap_trim();
    size_t bad = 0;
    int check = kheap_check(&bad);
    if (check != 0) {
        fprintf(stderr, "w2-threads: kheap_check at the end: %d at block %zu\n", check, bad);
        exit(1);
    }
    const struct heap* h = kheap_get();
    struct kcache_stats st;
    kcache_get_stats(kheap_cache(), &st);
    if (h->used_blocks != 0 || h->live_allocations != 0 || st.objects != 0 || st.slabs != 0) {
        fprintf(stderr,
                "w2-threads: not empty at the end: %zu blocks, %zu allocations, %zu small objects "
                "(live or in magazines), %zu slabs\n",
                h->used_blocks, h->live_allocations, st.objects, st.slabs);
        exit(1);
    }
}

/* The lock count, read while no worker is in the heap. */
static size_t wt_locks(void)
{
    return kheap_hosted_lock_count();
}

static int wt_round(const char* key, unsigned threads, double seconds, uint64_t seed)
{
    const struct wt_alloc* a = NULL;
    for (size_t k = 0; k < sizeof(wt_allocators) / sizeof(wt_allocators[0]); k++) {
        a = strcmp(wt_allocators[k].key, key) == 0 ? &wt_allocators[k] : a;
    }
    if (a == NULL || threads == 0 || threads > WT_MAX_THREADS || !(seconds > 0)) {
        fprintf(stderr, "w2-threads: --round small|malloc THREADS(1..%d) SECONDS SEED\n", WT_MAX_THREADS);
        return 2;
    }
    struct kheap_hosted_config config = { WT_HEAP_BYTES, true, false, false };
    kheap_hosted_configure(&config);
    kheap_init();
    if (!kheap_ready()) {
        fprintf(stderr, "w2-threads: kheap_init failed\n");
        return 1;
    }
    struct wt_thread* t = calloc(threads, sizeof(*t));
    if (t == NULL) {
        return 1;
    }
    pthread_barrier_init(&wt_filled, NULL, threads + 1);
    pthread_barrier_init(&wt_go, NULL, threads + 1);
    pthread_barrier_init(&wt_stopped, NULL, threads + 1);
    pthread_barrier_init(&wt_release, NULL, threads + 1);
    for (unsigned i = 0; i < threads; i++) {
        t[i].id = i;
        t[i].a = a;
        t[i].state = seed * 1000003u + i;
        if (pthread_create(&t[i].handle, NULL, wt_worker, &t[i]) != 0) {
            fprintf(stderr, "w2-threads: pthread_create failed\n");
            return 1;
        }
    }
    pthread_barrier_wait(&wt_filled);
    size_t locks = wt_locks();
    double start = wt_now();
    pthread_barrier_wait(&wt_go);
    struct timespec nap = { (time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9) };
    nanosleep(&nap, NULL);
    atomic_store(&wt_stop, true);
    pthread_barrier_wait(&wt_stopped);
    double elapsed = wt_now() - start;
    locks = wt_locks() - locks;
    pthread_barrier_wait(&wt_release);
    unsigned long long pairs = 0;
    for (unsigned i = 0; i < threads; i++) {
        pthread_join(t[i].handle, NULL);
        pairs += t[i].pairs;
    }
    if (a->kheap) {
        wt_check_empty();
    }
    printf("%.0f %.6f\n", (double)pairs / elapsed, a->kheap ? (double)locks / (double)(pairs ? pairs : 1) : -1.0);
    free(t);
    return 0;
}

/* ------------------------------------------------------------ the table */

struct wt_run
{
    char label[128];
    char path[256];
    char key[16];
};

static void wt_child(const struct wt_run* run, unsigned threads, double seconds, uint64_t seed, double* rate,
                     double* locks)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "%s --round %s %u %g %llu", run->path, run->key, threads, seconds,
             (unsigned long long)seed);
    FILE* f = popen(cmd, "r");
    if (f == NULL || fscanf(f, "%lf %lf", rate, locks) != 2 || pclose(f) != 0) {
        fprintf(stderr, "w2-threads: %s failed\n", cmd);
        exit(1);
    }
}

int main(int argc, char** argv)
{
    if (argc == 6 && strcmp(argv[1], "--round") == 0) {
        return wt_round(argv[2], (unsigned)strtoul(argv[3], NULL, 10), strtod(argv[4], NULL),
                        strtoull(argv[5], NULL, 10));
    }
    unsigned counts[WT_MAX_COUNTS] = { 1, 2, 4 };
    size_t ncounts = 3, rounds = 11, nruns = 0;
    double seconds = 0.3;
    const char* dat = NULL;
    const char* command = "make bench-w2-threads";
    static struct wt_run runs[WT_MAX_RUNS];
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && strcmp(argv[i], "--threads") == 0) {
            ncounts = 0;
            for (char* s = argv[++i]; *s != '\0' && ncounts < WT_MAX_COUNTS;) {
                char* end;
                counts[ncounts++] = (unsigned)strtoul(s, &end, 10);
                s = *end == ',' ? end + 1 : end;
                if (end == s && *s != '\0') {
                    break;
                }
            }
        } else if (i + 1 < argc && strcmp(argv[i], "--rounds") == 0) {
            rounds = strtoul(argv[++i], NULL, 10);
        } else if (i + 1 < argc && strcmp(argv[i], "--seconds") == 0) {
            seconds = strtod(argv[++i], NULL);
        } else if (i + 1 < argc && strcmp(argv[i], "--dat") == 0) {
            dat = argv[++i];
        } else if (i + 1 < argc && strcmp(argv[i], "--command") == 0) {
            command = argv[++i];
        } else if (i + 1 < argc && strcmp(argv[i], "--run") == 0 && nruns < WT_MAX_RUNS) {
            struct wt_run* r = &runs[nruns++];
            if (sscanf(argv[++i], "%127[^=]=%255[^:]:%15s", r->label, r->path, r->key) != 3) {
                fprintf(stderr, "w2-threads: --run LABEL=PATH:KEY\n");
                return 2;
            }
        } else {
            fprintf(stderr, "w2-threads: unknown argument %s\n", argv[i]);
            return 2;
        }
    }
    bool counts_ok = ncounts > 0;
    for (size_t c = 0; c < ncounts; c++) {
        counts_ok = counts_ok && counts[c] >= 1 && counts[c] <= WT_MAX_THREADS;
    }
    if (!counts_ok || rounds == 0 || rounds > WT_MAX_ROUNDS || !(seconds > 0) || nruns == 0) {
        fprintf(stderr, "usage: w2-threads [--threads 1,2,4] [--rounds 1..%d] [--seconds S] [--dat FILE] "
                        "[--command TEXT] --run LABEL=PATH:KEY...\n"
                        "       w2-threads --round small|malloc THREADS SECONDS SEED\n",
                WT_MAX_ROUNDS);
        return 2;
    }

    double load[3] = { 0, 0, 0 };
    (void)getloadavg(load, 3); /* other work on the machine: before the rounds */
    static double rate[WT_MAX_RUNS][WT_MAX_COUNTS][WT_MAX_ROUNDS];
    static double lock[WT_MAX_RUNS][WT_MAX_COUNTS][WT_MAX_ROUNDS];
    for (size_t r = 0; r < rounds; r++) {
        for (size_t c = 0; c < ncounts; c++) {
            for (size_t k = 0; k < nruns; k++) {
                wt_child(&runs[k], counts[c], seconds, 1000 + r, &rate[k][c][r], &lock[k][c][r]);
            }
        }
    }
    double med[WT_MAX_RUNS][WT_MAX_COUNTS], lo[WT_MAX_RUNS][WT_MAX_COUNTS], hi[WT_MAX_RUNS][WT_MAX_COUNTS];
    double locks[WT_MAX_RUNS][WT_MAX_COUNTS];
    for (size_t k = 0; k < nruns; k++) {
        for (size_t c = 0; c < ncounts; c++) {
            med[k][c] = bench_median(rate[k][c], rounds);
            lo[k][c] = rate[k][c][0];
            hi[k][c] = rate[k][c][rounds - 1];
            locks[k][c] = bench_median(lock[k][c], rounds);
        }
    }
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    printf("# Benchmark W2 with threads: small-object pairs per second\n\n");
    printf("Generated by `%s` (bench/w2_threads.c): each thread keeps %d objects of %d..%d bytes on the "
           "one shared heap (16 MiB kernel heap; the C library's heap for malloc) and frees and allocates "
           "one in a pair, writing a byte of each; %zu rounds of %g s per (threads, allocator), each its own "
           "process, interleaved; the median round. %ld cores, so more than %ld threads share them; "
           "load average %.2f (1 min) before the rounds, so other work had about that many of them. "
           "Every kernel heap round ends with kheap_check clean and the heap empty.\n\n",
           command, WT_LIVE, WT_MIN, WT_MAX, rounds, seconds, cores, cores, load[0]);
    printf("| allocator | threads | million pairs/s (median) | min | max | speedup over 1 thread | "
           "lock acquisitions per pair |\n|---|---:|---:|---:|---:|---:|---:|\n");
    for (size_t k = 0; k < nruns; k++) {
        for (size_t c = 0; c < ncounts; c++) {
            char lk[32] = "-";
            if (locks[k][c] >= 0) {
                snprintf(lk, sizeof(lk), "%.6f", locks[k][c]);
            }
            printf("| %s | %u | %.2f | %.2f | %.2f | %.2fx | %s |\n", runs[k].label, counts[c], med[k][c] / 1e6,
                   lo[k][c] / 1e6, hi[k][c] / 1e6, med[k][c] / med[k][0], lk);
        }
    }
    printf("\nSpeedup is over the first row of the same allocator (%u thread%s).\n", counts[0],
           counts[0] == 1 ? "" : "s");
    if (dat != NULL) {
        FILE* f = fopen(dat, "w");
        if (f == NULL) {
            perror(dat);
            return 1;
        }
        for (size_t c = 0; c < ncounts; c++) {
            fprintf(f, "%u", counts[c]);
            for (size_t k = 0; k < nruns; k++) {
                fprintf(f, " %.0f", med[k][c]);
            }
            fprintf(f, "\n");
        }
        fclose(f);
    }
    return 0;
}
