/*
 * bench/w1.c - W1: random requests of 1..16 blocks with random frees, held
 * at a steady occupancy of 50% ("w1-50") or 90% ("w1-90") of the heap.
 *
 * The trace, generated once per (heap size, occupancy) from the seed and
 * replayed unchanged on every allocator:
 *   warm-up   allocations only, until used blocks >= target (= occupancy * blocks);
 *   settle    steady state, unmeasured: if used >= target free a random live
 *             allocation, else allocate; 4 ops per live allocation, so most
 *             warm-up allocations have been replaced and the heap is
 *             fragmented as it will stay;
 *   timed     steady state, measured in batches of 200 ops (throughput);
 *   latency   steady state, every op timed on its own (p99, max).
 * A request of n blocks asks for n * 4096 - r bytes, r uniform in 0..63.
 * "used" counts blocks as the trace requested them, whatever the allocator
 * returned: a failed allocation is freed later as free(NULL).
 *
 * Timed and latency passes have 100,000 ops each at 16 and 100 MiB but only
 * 20,000 at 1 GiB: the scan costs ~40 us per op there, and the trace is the
 * same for every allocator.
 *
 * w1_build makes the trace for both w1_run and w1_record (--trace-out), so
 * the written trace is the one replayed, phase ends included.
 */
#include "bench.h"

#include <stdio.h>
#include <stdlib.h>

#define W1_MAX_BLOCKS 16u
#define W1_BATCH_OPS 200u

struct w1_layout
{
    size_t warmup_end;  /* end of warm-up (allocations only) */
    size_t settle_end;  /* end of warm-up + settle (unmeasured) */
    size_t timed_end;   /* end of the throughput pass */
    size_t latency_end; /* end of the latency pass */
    size_t live;        /* live allocations at the end of warm-up */
};

struct w1_state
{
    uint64_t rng;
    size_t target;
    size_t used;
    uint32_t* live;        /* slots of live allocations */
    size_t live_count;
    uint32_t* free_slots;  /* slot numbers to reuse */
    size_t free_count;
    uint32_t next_slot;
    uint8_t* slot_blocks;  /* blocks of the allocation in each slot */
    size_t max_slots;
};

static void w1_alloc_op(struct w1_state* s, struct bench_trace* t)
{
    uint32_t n = 1 + (uint32_t)bench_rand_below(&s->rng, W1_MAX_BLOCKS);
    uint32_t bytes = n * BENCH_BLOCK_BYTES - (uint32_t)bench_rand_below(&s->rng, 64);
    uint32_t slot = s->free_count ? s->free_slots[--s->free_count] : s->next_slot++;
    s->slot_blocks[slot] = (uint8_t)n;
    s->live[s->live_count++] = slot;
    s->used += n;
    bench_trace_push(t, slot, bytes);
}

static void w1_free_op(struct w1_state* s, struct bench_trace* t)
{
    size_t i = (size_t)bench_rand_below(&s->rng, s->live_count);
    uint32_t slot = s->live[i];
    s->live[i] = s->live[--s->live_count];
    s->used -= s->slot_blocks[slot];
    s->free_slots[s->free_count++] = slot;
    bench_trace_push(t, slot, 0);
}

static void w1_steady(struct w1_state* s, struct bench_trace* t, size_t ops)
{
    for (size_t i = 0; i < ops; i++) {
        if (s->used >= s->target) {
            w1_free_op(s, t);
        } else {
            w1_alloc_op(s, t);
        }
    }
}

static void w1_generate(struct bench_trace* t, size_t blocks, unsigned occupancy, size_t measured,
                        struct w1_layout* layout)
{
    struct w1_state s = { 0 };
    s.rng = bench_opt.seed ^ ((uint64_t)blocks << 20) ^ occupancy;
    s.target = blocks * occupancy / 100;
    s.max_slots = s.target + W1_MAX_BLOCKS + 1; /* every live allocation has >= 1 block */
    s.live = malloc(s.max_slots * sizeof(uint32_t));
    s.free_slots = malloc(s.max_slots * sizeof(uint32_t));
    s.slot_blocks = malloc(s.max_slots);
    if (s.live == NULL || s.free_slots == NULL || s.slot_blocks == NULL) {
        fprintf(stderr, "bench: out of memory\n");
        exit(2);
    }
    bench_trace_init(t);
    while (s.used < s.target) {
        w1_alloc_op(&s, t);
    }
    layout->live = s.live_count;
    layout->warmup_end = t->count;
    w1_steady(&s, t, 4 * s.live_count);
    layout->settle_end = t->count;
    w1_steady(&s, t, measured);
    layout->timed_end = t->count;
    w1_steady(&s, t, measured);
    layout->latency_end = t->count;
    free(s.live);
    free(s.free_slots);
    free(s.slot_blocks);
}

/* The trace of one cell: what w1_run replays and w1_record writes. */
static void w1_build(struct bench_trace* t, size_t blocks, unsigned occupancy, struct w1_layout* layout)
{
    size_t measured = bench_opt.smoke ? 1000 : (blocks >= BENCH_BLOCKS_1G ? 20000 : 100000);
    w1_generate(t, blocks, occupancy, measured, layout);
}

static int w1_run(const char* name, unsigned occupancy, const struct bench_allocator* a, size_t blocks)
{
    size_t counted = bench_opt.smoke ? 200 : 2000; /* ops under callgrind */
    struct bench_trace t;
    struct w1_layout layout;
    w1_build(&t, blocks, occupancy, &layout);

    if (a->create(blocks) != 0) {
        fprintf(stderr, "bench: cannot create a heap of %zu blocks for %s\n", blocks, a->name);
        bench_trace_free(&t);
        return -1;
    }
    void** slots = calloc(t.slots, sizeof(void*));
    if (slots == NULL) {
        fprintf(stderr, "bench: out of memory\n");
        exit(2);
    }
    size_t setup_failures = bench_replay(a, slots, t.ops, 0, layout.settle_end, NULL);
    bench_measure_begin(a);

    struct bench_row row = { 0 };
    row.workload = name;
    row.allocator = a->name;
    row.blocks = blocks;
    row.unit = "pair";
    row.trace_hash = bench_trace_hash(&t);
    char note[160];
    snprintf(note, sizeof(note), "live=%zu settle_ops=%zu setup_failures=%zu", layout.live, layout.settle_end,
             setup_failures);
    row.note = note;

    int status = 0;
    if (bench_opt.callgrind) {
        size_t end = layout.settle_end + counted < layout.timed_end ? layout.settle_end + counted : layout.timed_end;
        bench_cg_replay(a, slots, t.ops, layout.settle_end, end, name, blocks);
    } else {
        bench_measure_throughput(a, slots, t.ops, layout.settle_end, layout.timed_end, W1_BATCH_OPS, &row);
        bench_measure_latency(a, slots, t.ops, layout.timed_end, layout.latency_end, &row);
        status = bench_check(a, &row);
        bench_emit(&row);
    }
    bench_release_all(a, slots, t.slots);
    a->destroy();
    free(slots);
    bench_trace_free(&t);
    return status;
}

/* --trace-out: the same trace, with its four phase ends (heapmap's titles: keep the labels short). */
static int w1_record(unsigned occupancy, size_t blocks, struct bench_recording* rec)
{
    struct w1_layout layout;
    w1_build(&rec->trace, blocks, occupancy, &layout);
    rec->trace_hash = bench_trace_hash(&rec->trace);
    static const char* const labels[4] = {
        "end of warm-up",
        "end of settle (the timed pass starts here)",
        "end of the timed pass",
        "end of the latency pass (bench_check's state)",
    };
    const size_t ends[4] = { layout.warmup_end, layout.settle_end, layout.timed_end, layout.latency_end };
    for (size_t i = 0; i < 4; i++) {
        bench_recording_phase(rec, ends[i], labels[i]);
    }
    return 0;
}

static int w1_50_run(const struct bench_allocator* a, size_t blocks)
{
    return w1_run("w1-50", 50, a, blocks);
}

static int w1_90_run(const struct bench_allocator* a, size_t blocks)
{
    return w1_run("w1-90", 90, a, blocks);
}

static int w1_50_record(size_t blocks, struct bench_recording* rec)
{
    return w1_record(50, blocks, rec);
}

static int w1_90_record(size_t blocks, struct bench_recording* rec)
{
    return w1_record(90, blocks, rec);
}

static const struct bench_workload w1_50 = {
    "w1-50", "1..16-block requests and random frees at 50% occupancy", bench_standard_sizes, w1_50_run,
    w1_50_record,
};
static const struct bench_workload w1_90 = {
    "w1-90", "1..16-block requests and random frees at 90% occupancy", bench_standard_sizes, w1_90_run,
    w1_90_record,
};
BENCH_WORKLOAD(w1_50)
BENCH_WORKLOAD(w1_90)
