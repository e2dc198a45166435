/*
 * bench/bench.h - shared helpers of `make bench`: allocators,
 * workloads, seeded traces, timing, statistics and the CSV rows that
 * bench/run.py turns into docs/bench/.
 *
 * Adding a workload is one file, bench/wN.c (mk/bench.mk compiles every
 * bench/w*.c into every bench binary):
 *
 *     static int w2_run(const struct bench_allocator* a, size_t blocks) { ... }
 *     static int w2_record(size_t blocks, struct bench_recording* rec) { ... }
 *     static const size_t w2_sizes[] = { 4096, 25600, 262144, 0 };
 *     static const struct bench_workload w2 = { "w2", "what it does", w2_sizes, w2_run, w2_record };
 *     BENCH_WORKLOAD(w2)
 *
 * A run function builds its trace (bench_trace_*), creates the heap with
 * a->create(blocks), replays the unmeasured part, calls bench_measure_begin(a),
 * then measures with bench_measure_throughput / bench_measure_latency (or
 * bench_cg_* under --callgrind) and ends with bench_emit() and a->destroy().
 *
 * Adding an allocator is one file too: define a struct bench_allocator and
 * BENCH_ALLOCATOR(it). Files bench/alloc_peach*.c are linked with the
 * PeachOS library (bench-peach); bench/alloc_malloc.c is built once per
 * malloc implementation (bench-glibc, bench-jemalloc, bench-mimalloc).
 *
 * Every workload also gives its trace to the driver (the `record` hook):
 * `bench-X --workload W --blocks N --trace-out FILE` writes the exact trace
 * W's run replays at that size, in heapmap's trace format, and exits
 * without timing (see bench_write_trace in bench.c).
 *
 * Output: one line per measured cell on stdout,
 *   row,<workload>,<allocator>,<blocks>,<unit>,<ops_timed>,<ops_latency>,
 *       <median_ns>,<mean_ns>,<p99_ns>,<max_ns>,<mallocs>,<failures>,
 *       <trace_hash>,<end_state>,<note>
 * and, under --callgrind, callgrind dumps labelled
 *   cg|<workload>|<allocator>|<blocks>|<ops counted>
 * Lines starting with '#' are comments.
 */
#ifndef PEACHOS_BENCH_H
#define PEACHOS_BENCH_H

/* Include bench.h first: clock_gettime, mmap flags and dladdr need this. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BENCH_BLOCK_BYTES 4096u

/* ---------------------------------------------------------------- allocators */

struct bench_allocator
{
    const char* name;
    /* true: a fixed-size heap of `blocks` blocks, so a NULL return is a real
     * failure. false: a malloc that grows; "heap size" is only the live set. */
    bool bounded;
    /* Make a heap of `blocks` 4 KiB blocks (malloc family: nothing to do). 0 or -1. */
    int (*create)(size_t blocks);
    void* (*alloc)(size_t bytes);
    void (*release)(void* ptr);
    /* Called once, right before the first measured operation (may be NULL). */
    void (*measure_begin)(void);
    /* After the measured passes: verify the heap; store a hash of its state
     * in *state (0 if it has none). Returns 0, or -1 if the heap is broken.
     * May be NULL. */
    int (*check)(uint64_t* state);
    void (*destroy)(void);
    /* One line about the implementation (version, library path). */
    const char* (*describe)(void);
    /* The block table (bounded heaps), for --dump-table: its entries and,
     * in *blocks, their number. NULL: the allocator has no table. */
    const unsigned char* (*table)(size_t* blocks);
};

void bench_register_allocator(const struct bench_allocator* allocator);
#define BENCH_ALLOCATOR(var)                                                                                  \
    static void __attribute__((constructor)) bench_register_##var(void)                                     \
    {                                                                                                         \
        bench_register_allocator(&(var));                                                                     \
    }

/* ----------------------------------------------------------------- workloads */

struct bench_recording;

struct bench_workload
{
    const char* name;
    const char* help;
    const size_t* sizes; /* heap sizes in blocks, 0-terminated */
    /* Run the workload on one allocator and heap size; emit its rows.
     * Returns 0, or -1 on an error (not on allocation failures). */
    int (*run)(const struct bench_allocator* allocator, size_t blocks);
    /* Build the trace that `run` replays at this heap size (same generator,
     * same seed, same ops) and the ends of its phases, for --trace-out.
     * Returns 0, or -1 on an error. */
    int (*record)(size_t blocks, struct bench_recording* recording);
};

void bench_register_workload(const struct bench_workload* workload);
#define BENCH_WORKLOAD(var)                                                                                   \
    static void __attribute__((constructor)) bench_register_##var(void)                                     \
    {                                                                                                         \
        bench_register_workload(&(var));                                                                      \
    }

/* The standard heap sizes: 16 MiB, 100 MiB, 1 GiB. */
#define BENCH_BLOCKS_16M 4096u
#define BENCH_BLOCKS_100M 25600u
#define BENCH_BLOCKS_1G 262144u
extern const size_t bench_standard_sizes[]; /* the three above, 0-terminated */

/* ------------------------------------------------------------------- options */

struct bench_options
{
    bool smoke;          /* tiny op counts: a check that the code runs, no figures */
    bool callgrind;      /* running under callgrind: count instructions, no timing */
    bool scan_real_setup;/* scan heap: run the unmeasured set-up with the scan too */
    uint64_t seed;
    const char* dump_table; /* --dump-table: write the table bench_check verifies */
};
extern struct bench_options bench_opt;

/* Pick a count: normal, for --smoke, or for --callgrind. */
size_t bench_pick(size_t normal, size_t smoke, size_t callgrind);

/* -------------------------------------------------------------------- random */

/* splitmix64: the same stream on every machine and in every binary. */
static inline uint64_t bench_rand(uint64_t* state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in [0, n), n > 0 (bias below 2^-40 for the n used here). */
static inline uint64_t bench_rand_below(uint64_t* state, uint64_t n)
{
    return bench_rand(state) % n;
}

/* FNV-1a, to fingerprint traces and heap states. */
uint64_t bench_hash(uint64_t hash, const void* data, size_t len);
#define BENCH_HASH_INIT 0xCBF29CE484222325ull

/* --------------------------------------------------------------------- trace */

/* One operation: bytes != 0: slots[slot] = alloc(bytes); bytes == 0: release(slots[slot]). */
struct bench_op
{
    uint32_t slot;
    uint32_t bytes;
};

struct bench_trace
{
    struct bench_op* ops;
    size_t count;
    size_t capacity;
    size_t slots; /* 1 + highest slot used */
};

void bench_trace_init(struct bench_trace* trace);
void bench_trace_push(struct bench_trace* trace, uint32_t slot, uint32_t bytes);
void bench_trace_free(struct bench_trace* trace);
uint64_t bench_trace_hash(const struct bench_trace* trace);

/* A workload's trace with its phases, as the `record` hook builds it. The
 * phases are in order; phase k ends after operation phases[k].end - 1 (a
 * "snap" line goes there). */
#define BENCH_MAX_PHASES 8
struct bench_phase
{
    size_t end;
    const char* label;
};

struct bench_recording
{
    struct bench_trace trace;
    uint64_t trace_hash; /* the trace_hash of the workload's rows */
    struct bench_phase phases[BENCH_MAX_PHASES];
    size_t nphases;
};

/* Append a phase that ends after `end` operations (phases in order). */
void bench_recording_phase(struct bench_recording* recording, size_t end, const char* label);

/* Replay ops [from, to) of the trace; returns the number of failed allocs
 * and adds the number of allocs to *allocs (if not NULL). slots[] must have
 * trace->slots entries. */
size_t bench_replay(const struct bench_allocator* a, void** slots, const struct bench_op* ops, size_t from,
                    size_t to, size_t* allocs);

/* Release every non-NULL slot. */
void bench_release_all(const struct bench_allocator* a, void** slots, size_t count);

/* -------------------------------------------------------------------- timing */

static inline uint64_t bench_now_ns(void);

/* Median cost of one bench_now_ns() pair, measured at start-up; subtracted
 * from every single-op latency. */
extern uint64_t bench_timer_overhead_ns;

/* Call right before the first measured operation (allocator hook, callgrind). */
void bench_measure_begin(const struct bench_allocator* a);

struct bench_row
{
    const char* workload;
    const char* allocator;
    size_t blocks;
    const char* unit;      /* "pair" (malloc+free) or "request" */
    size_t ops_timed;      /* operations in the throughput pass */
    size_t ops_latency;    /* operations in the latency pass */
    double median_ns;      /* median over batches, per unit */
    double mean_ns;        /* total time / units */
    double p99_ns;         /* single-op latency, timer overhead subtracted */
    double max_ns;
    size_t allocs;         /* allocations in the measured passes */
    size_t failures;       /* of which returned NULL */
    uint64_t trace_hash;
    uint64_t end_state;    /* allocator check() state hash, 0 if none */
    const char* note;
};

/* Throughput pass over ops [from, to): time batches of `batch` ops; each
 * batch's cost is reported per malloc+free pair (batch time / (ops / 2)).
 * Fills median_ns, mean_ns, ops_timed, allocs, failures of *row. */
void bench_measure_throughput(const struct bench_allocator* a, void** slots, const struct bench_op* ops,
                              size_t from, size_t to, size_t batch, struct bench_row* row);

/* Latency pass over ops [from, to): every op timed on its own. Fills p99_ns,
 * max_ns, ops_latency and adds to allocs, failures. */
void bench_measure_latency(const struct bench_allocator* a, void** slots, const struct bench_op* ops,
                           size_t from, size_t to, struct bench_row* row);

/* Sorts v; returns the q-quantile (0 <= q <= 1, nearest rank). */
double bench_quantile_u64(uint64_t* v, size_t n, double q);
double bench_quantile_double(double* v, size_t n, double q);

/* Print a row (see the format above). */
void bench_emit(const struct bench_row* row);

/* Verify the heap after a run (allocator check hook) and fill end_state. */
int bench_check(const struct bench_allocator* a, struct bench_row* row);

/* ----------------------------------------------------------------- callgrind */

/* Under --callgrind (valgrind --tool=callgrind --instr-atstart=no
 * --collect-atstart=no): bench_cg_replay counts ops [from, to) and writes a
 * dump labelled cg|workload|allocator|blocks|ops. bench_cg_on/off bracket a
 * single operation; bench_cg_dump writes what was collected since the last
 * dump. Outside valgrind they do nothing (but still run the ops). */
void bench_cg_replay(const struct bench_allocator* a, void** slots, const struct bench_op* ops, size_t from,
                     size_t to, const char* workload, size_t blocks);
void bench_cg_on(void);
void bench_cg_off(void);
void bench_cg_dump(const char* workload, const char* allocator, size_t blocks, size_t ops);

/* --------------------------------------------------------------- inlines */

#include <time.h>

static inline uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

#endif /* PEACHOS_BENCH_H */
