/*
 * bench/bench.c - the driver shared by every bench binary: registries,
 * command line, traces, replay, timing, statistics, output (see bench.h).
 *
 *   bench-X --list                     allocators and workloads of this binary
 *   bench-X [--alloc A] [--workload W] [--blocks N] [--smoke] [--callgrind]
 *           [--seed S] [--scan-real-setup]
 *
 * Without --alloc/--workload/--blocks it runs every combination. bench/run.py
 * runs one process per (workload, heap size, allocator) so that no
 * allocator's state leaks from one cell into the next.
 */
#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__has_include)
#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#define BENCH_HAVE_CALLGRIND 1
#endif
#endif
#ifndef BENCH_HAVE_CALLGRIND
#define CALLGRIND_START_INSTRUMENTATION
#define CALLGRIND_ZERO_STATS
#define CALLGRIND_TOGGLE_COLLECT
#define CALLGRIND_DUMP_STATS_AT(label) ((void)(label))
#endif

#define BENCH_MAX_ENTRIES 32

const size_t bench_standard_sizes[] = { BENCH_BLOCKS_16M, BENCH_BLOCKS_100M, BENCH_BLOCKS_1G, 0 };
struct bench_options bench_opt = { false, false, false, 0x5EED0004ull };
uint64_t bench_timer_overhead_ns;

static const struct bench_allocator* bench_allocators[BENCH_MAX_ENTRIES];
static size_t bench_allocator_count;
static const struct bench_workload* bench_workloads[BENCH_MAX_ENTRIES];
static size_t bench_workload_count;

static void bench_die(const char* message)
{
    fprintf(stderr, "bench: %s\n", message);
    exit(2);
}

void bench_register_allocator(const struct bench_allocator* allocator)
{
    if (bench_allocator_count == BENCH_MAX_ENTRIES) {
        bench_die("too many allocators");
    }
    bench_allocators[bench_allocator_count++] = allocator;
}

void bench_register_workload(const struct bench_workload* workload)
{
    if (bench_workload_count == BENCH_MAX_ENTRIES) {
        bench_die("too many workloads");
    }
    /* Keep them sorted by name, whatever order the constructors ran in. */
    size_t i = bench_workload_count++;
    while (i > 0 && strcmp(bench_workloads[i - 1]->name, workload->name) > 0) {
        bench_workloads[i] = bench_workloads[i - 1];
        i--;
    }
    bench_workloads[i] = workload;
}

size_t bench_pick(size_t normal, size_t smoke, size_t callgrind)
{
    if (bench_opt.smoke) {
        return smoke;
    }
    return bench_opt.callgrind ? callgrind : normal;
}

uint64_t bench_hash(uint64_t hash, const void* data, size_t len)
{
    const unsigned char* p = (const unsigned char*)data;
    for (size_t i = 0; i < len; i++) {
        hash ^= p[i];
        hash *= 0x100000001B3ull;
    }
    return hash;
}

/* --------------------------------------------------------------------- trace */

void bench_trace_init(struct bench_trace* trace)
{
    memset(trace, 0, sizeof(*trace));
}

void bench_trace_push(struct bench_trace* trace, uint32_t slot, uint32_t bytes)
{
    if (trace->count == trace->capacity) {
        trace->capacity = trace->capacity ? trace->capacity * 2 : 4096;
        trace->ops = realloc(trace->ops, trace->capacity * sizeof(struct bench_op));
        if (trace->ops == NULL) {
            bench_die("out of memory for the trace");
        }
    }
    trace->ops[trace->count].slot = slot;
    trace->ops[trace->count].bytes = bytes;
    trace->count++;
    if (slot + (size_t)1 > trace->slots) {
        trace->slots = slot + (size_t)1;
    }
}

void bench_trace_free(struct bench_trace* trace)
{
    free(trace->ops);
    bench_trace_init(trace);
}

uint64_t bench_trace_hash(const struct bench_trace* trace)
{
    uint64_t h = BENCH_HASH_INIT;
    for (size_t i = 0; i < trace->count; i++) {
        uint32_t v[2] = { trace->ops[i].slot, trace->ops[i].bytes };
        h = bench_hash(h, v, sizeof(v));
    }
    return h;
}

size_t bench_replay(const struct bench_allocator* a, void** slots, const struct bench_op* ops, size_t from,
                    size_t to, size_t* allocs)
{
    void* (*alloc)(size_t) = a->alloc;
    void (*release)(void*) = a->release;
    size_t failures = 0;
    size_t count = 0;
    for (size_t i = from; i < to; i++) {
        struct bench_op op = ops[i];
        if (op.bytes != 0) {
            void* p = alloc(op.bytes);
            failures += (p == NULL);
            slots[op.slot] = p;
            count++;
        } else {
            release(slots[op.slot]);
            slots[op.slot] = NULL;
        }
    }
    if (allocs != NULL) {
        *allocs += count;
    }
    return failures;
}

void bench_release_all(const struct bench_allocator* a, void** slots, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        if (slots[i] != NULL) {
            a->release(slots[i]);
            slots[i] = NULL;
        }
    }
}

/* -------------------------------------------------------------------- timing */

static int bench_cmp_u64(const void* x, const void* y)
{
    uint64_t a = *(const uint64_t*)x, b = *(const uint64_t*)y;
    return (a > b) - (a < b);
}

static int bench_cmp_double(const void* x, const void* y)
{
    double a = *(const double*)x, b = *(const double*)y;
    return (a > b) - (a < b);
}

static size_t bench_rank(size_t n, double q)
{
    /* nearest rank: the smallest value with at least q of the sample at or below it */
    double r = q * (double)n;
    size_t k = (size_t)r;
    if ((double)k < r) {
        k++;
    }
    return k == 0 ? 0 : k - 1;
}

double bench_quantile_u64(uint64_t* v, size_t n, double q)
{
    if (n == 0) {
        return 0;
    }
    qsort(v, n, sizeof(*v), bench_cmp_u64);
    return (double)v[bench_rank(n, q)];
}

double bench_quantile_double(double* v, size_t n, double q)
{
    if (n == 0) {
        return 0;
    }
    qsort(v, n, sizeof(*v), bench_cmp_double);
    return v[bench_rank(n, q)];
}

static void bench_calibrate_timer(void)
{
    enum { SAMPLES = 20001 };
    static uint64_t d[SAMPLES];
    for (size_t i = 0; i < SAMPLES; i++) {
        uint64_t t0 = bench_now_ns();
        uint64_t t1 = bench_now_ns();
        d[i] = t1 - t0;
    }
    bench_timer_overhead_ns = (uint64_t)bench_quantile_u64(d, SAMPLES, 0.5);
}

void bench_measure_begin(const struct bench_allocator* a)
{
    if (a->measure_begin != NULL) {
        a->measure_begin();
    }
    if (bench_opt.callgrind) {
        CALLGRIND_START_INSTRUMENTATION;
    }
}

void bench_measure_throughput(const struct bench_allocator* a, void** slots, const struct bench_op* ops,
                              size_t from, size_t to, size_t batch, struct bench_row* row)
{
    size_t n = to - from;
    size_t batches = (n + batch - 1) / batch;
    double* per_pair = malloc((batches ? batches : 1) * sizeof(double));
    if (per_pair == NULL) {
        bench_die("out of memory");
    }
    uint64_t total = 0;
    size_t k = 0;
    for (size_t i = from; i < to; i += batch) {
        size_t end = i + batch < to ? i + batch : to;
        uint64_t t0 = bench_now_ns();
        row->failures += bench_replay(a, slots, ops, i, end, &row->allocs);
        uint64_t t1 = bench_now_ns();
        total += t1 - t0;
        per_pair[k++] = (double)(t1 - t0) / ((double)(end - i) / 2.0);
    }
    row->ops_timed = n;
    row->mean_ns = n ? (double)total / ((double)n / 2.0) : 0;
    row->median_ns = bench_quantile_double(per_pair, k, 0.5);
    free(per_pair);
}

void bench_measure_latency(const struct bench_allocator* a, void** slots, const struct bench_op* ops,
                           size_t from, size_t to, struct bench_row* row)
{
    size_t n = to - from;
    uint64_t* lat = malloc((n ? n : 1) * sizeof(uint64_t));
    if (lat == NULL) {
        bench_die("out of memory");
    }
    void* (*alloc)(size_t) = a->alloc;
    void (*release)(void*) = a->release;
    uint64_t overhead = bench_timer_overhead_ns;
    for (size_t i = from; i < to; i++) {
        struct bench_op op = ops[i];
        uint64_t t0, t1;
        if (op.bytes != 0) {
            t0 = bench_now_ns();
            void* p = alloc(op.bytes);
            t1 = bench_now_ns();
            row->failures += (p == NULL);
            row->allocs++;
            slots[op.slot] = p;
        } else {
            void* p = slots[op.slot];
            t0 = bench_now_ns();
            release(p);
            t1 = bench_now_ns();
            slots[op.slot] = NULL;
        }
        uint64_t d = t1 - t0;
        lat[i - from] = d > overhead ? d - overhead : 0;
    }
    row->ops_latency = n;
    row->p99_ns = bench_quantile_u64(lat, n, 0.99);
    row->max_ns = n ? (double)lat[n - 1] : 0; /* sorted by the quantile */
    free(lat);
}

int bench_check(const struct bench_allocator* a, struct bench_row* row)
{
    row->end_state = 0;
    if (a->check == NULL) {
        return 0;
    }
    if (a->check(&row->end_state) != 0) {
        fprintf(stderr, "bench: %s: heap check failed after %s on %zu blocks\n", a->name, row->workload,
                row->blocks);
        return -1;
    }
    return 0;
}

void bench_emit(const struct bench_row* row)
{
    if (bench_opt.callgrind) {
        return; /* the dumps carry the figures */
    }
    printf("row,%s,%s,%zu,%s,%zu,%zu,%.1f,%.1f,%.1f,%.1f,%zu,%zu,%016llx,%016llx,%s\n", row->workload,
           row->allocator, row->blocks, row->unit, row->ops_timed, row->ops_latency, row->median_ns, row->mean_ns,
           row->p99_ns, row->max_ns, row->allocs, row->failures, (unsigned long long)row->trace_hash,
           (unsigned long long)row->end_state, row->note ? row->note : "");
    fflush(stdout);
}

/* ----------------------------------------------------------------- callgrind */

void bench_cg_dump(const char* workload, const char* allocator, size_t blocks, size_t ops)
{
    char label[256];
    snprintf(label, sizeof(label), "cg|%s|%s|%zu|%zu", workload, allocator, blocks, ops);
    CALLGRIND_DUMP_STATS_AT(label);
    printf("# callgrind dump %s\n", label);
}

void bench_cg_on(void)
{
    CALLGRIND_TOGGLE_COLLECT;
}

void bench_cg_off(void)
{
    CALLGRIND_TOGGLE_COLLECT;
}

void bench_cg_replay(const struct bench_allocator* a, void** slots, const struct bench_op* ops, size_t from,
                     size_t to, const char* workload, size_t blocks)
{
    CALLGRIND_ZERO_STATS;
    CALLGRIND_TOGGLE_COLLECT;
    bench_replay(a, slots, ops, from, to, NULL);
    CALLGRIND_TOGGLE_COLLECT;
    bench_cg_dump(workload, a->name, blocks, to - from);
}

/* ---------------------------------------------------------------------- main */

static void bench_usage(void)
{
    fprintf(stderr, "usage: bench-X [--list] [--alloc NAME] [--workload NAME] [--blocks N] [--smoke]\n"
                    "               [--callgrind] [--seed S] [--scan-real-setup]\n");
    exit(2);
}

int main(int argc, char** argv)
{
    const char* only_alloc = NULL;
    const char* only_workload = NULL;
    size_t only_blocks = 0;
    bool list = false;
    for (int i = 1; i < argc; i++) {
        const char* arg = argv[i];
        bool has_value = i + 1 < argc;
        if (strcmp(arg, "--list") == 0) {
            list = true;
        } else if (strcmp(arg, "--smoke") == 0) {
            bench_opt.smoke = true;
        } else if (strcmp(arg, "--callgrind") == 0) {
            bench_opt.callgrind = true;
        } else if (strcmp(arg, "--scan-real-setup") == 0) {
            bench_opt.scan_real_setup = true;
        } else if (strcmp(arg, "--alloc") == 0 && has_value) {
            only_alloc = argv[++i];
        } else if (strcmp(arg, "--workload") == 0 && has_value) {
            only_workload = argv[++i];
        } else if (strcmp(arg, "--blocks") == 0 && has_value) {
            only_blocks = (size_t)strtoull(argv[++i], NULL, 0);
        } else if (strcmp(arg, "--seed") == 0 && has_value) {
            bench_opt.seed = strtoull(argv[++i], NULL, 0);
        } else {
            bench_usage();
        }
    }

    if (list) {
        for (size_t i = 0; i < bench_allocator_count; i++) {
            const struct bench_allocator* a = bench_allocators[i];
            printf("alloc %s %s %s\n", a->name, a->bounded ? "bounded" : "unbounded",
                   a->describe ? a->describe() : "-");
        }
        for (size_t i = 0; i < bench_workload_count; i++) {
            const struct bench_workload* w = bench_workloads[i];
            printf("workload %s", w->name);
            for (const size_t* s = w->sizes; *s != 0; s++) {
                printf(" %zu", *s);
            }
            printf("\n");
        }
        return 0;
    }

    bench_calibrate_timer();
    printf("# seed %llu timer_overhead_ns %llu%s%s\n", (unsigned long long)bench_opt.seed,
           (unsigned long long)bench_timer_overhead_ns, bench_opt.smoke ? " smoke" : "",
           bench_opt.callgrind ? " callgrind" : "");
    int status = 0;
    size_t cells = 0;
    for (size_t wi = 0; wi < bench_workload_count; wi++) {
        const struct bench_workload* w = bench_workloads[wi];
        if (only_workload != NULL && strcmp(only_workload, w->name) != 0) {
            continue;
        }
        for (const size_t* s = w->sizes; *s != 0; s++) {
            if (only_blocks != 0 && only_blocks != *s) {
                continue;
            }
            for (size_t ai = 0; ai < bench_allocator_count; ai++) {
                const struct bench_allocator* a = bench_allocators[ai];
                if (only_alloc != NULL && strcmp(only_alloc, a->name) != 0) {
                    continue;
                }
                printf("# %s on %s, %zu blocks: %s\n", w->name, a->name, *s, a->describe ? a->describe() : "-");
                fflush(stdout);
                if (w->run(a, *s) != 0) {
                    fprintf(stderr, "bench: %s on %s, %zu blocks failed\n", w->name, a->name, *s);
                    status = 1;
                }
                cells++;
            }
        }
    }
    if (cells == 0) {
        fprintf(stderr, "bench: nothing matched the selection\n");
        return 2;
    }
    return status;
}
