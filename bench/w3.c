/*
 * bench/w3.c - W3, the worst case for a first-fit scan: a heap fragmented
 * into alternating single blocks, then a large request.
 *
 * Set-up (unmeasured): allocate blocks - 64 single blocks (4096 bytes each),
 * which fills all but the heap's last 64 blocks, then free every other one
 * (the even ones), leaving 1-block holes and one free 64-block run at the end.
 * Then, repeated 1000 times:
 *   "w3-fit"    a 64-block request (262,144 bytes): fits only in the tail;
 *   "w3-nofit"  a second 64-block request: cannot fit anywhere (NULL for a
 *               bounded heap; malloc-family allocators simply grow);
 *   both freed again (not timed).
 * Each request is timed on its own (timer overhead subtracted): the median,
 * p99 and max are over the 1000 requests of each kind.
 *
 * w3_build writes all of it as a trace (slots 0..fill-1 for the single
 * blocks, fill and fill+1 for the two requests). w3_run replays the set-up
 * from it and takes the request size from it; w3_record gives it to
 * --trace-out.
 */
#include "bench.h"

#include <stdio.h>
#include <stdlib.h>

#define W3_RUN_BLOCKS 64u

struct w3_layout
{
    size_t fill_end;  /* after the single-block allocations */
    size_t setup_end; /* after the frees: the state each timed request starts from */
};

static void w3_build(struct bench_trace* t, size_t blocks, size_t reps, struct w3_layout* layout)
{
    uint32_t fill = (uint32_t)(blocks - W3_RUN_BLOCKS);
    uint32_t big = W3_RUN_BLOCKS * BENCH_BLOCK_BYTES;
    bench_trace_init(t);
    for (uint32_t i = 0; i < fill; i++) {
        bench_trace_push(t, i, BENCH_BLOCK_BYTES);
    }
    layout->fill_end = t->count;
    for (uint32_t i = 0; i < fill; i += 2) {
        bench_trace_push(t, i, 0);
    }
    layout->setup_end = t->count;
    for (size_t r = 0; r < reps; r++) {
        bench_trace_push(t, fill, big);     /* p: fits only in the free tail */
        bench_trace_push(t, fill + 1, big); /* q: cannot fit */
        bench_trace_push(t, fill, 0);
        bench_trace_push(t, fill + 1, 0);
    }
}

static uint64_t w3_hash(size_t blocks, size_t reps)
{
    uint64_t params[3] = { blocks, W3_RUN_BLOCKS, reps };
    return bench_hash(BENCH_HASH_INIT, params, sizeof(params));
}

static void w3_fill_row(struct bench_row* row, const char* workload, const struct bench_allocator* a, size_t blocks,
                        uint64_t hash, uint64_t* lat, size_t reps, size_t failures, const char* note)
{
    double sum = 0;
    for (size_t i = 0; i < reps; i++) {
        sum += (double)lat[i];
    }
    row->workload = workload;
    row->allocator = a->name;
    row->blocks = blocks;
    row->unit = "request";
    row->ops_timed = reps;
    row->ops_latency = reps;
    row->mean_ns = reps ? sum / (double)reps : 0;
    row->p99_ns = bench_quantile_u64(lat, reps, 0.99);
    row->median_ns = bench_quantile_u64(lat, reps, 0.5);
    row->max_ns = reps ? (double)lat[reps - 1] : 0;
    row->allocs = reps;
    row->failures = failures;
    row->trace_hash = hash;
    row->note = note;
}

static int w3_run(const struct bench_allocator* a, size_t blocks)
{
    size_t reps = bench_pick(1000, 10, 20);
    uint64_t hash = w3_hash(blocks, reps);
    struct bench_trace t;
    struct w3_layout layout;
    w3_build(&t, blocks, reps, &layout);
    size_t big = t.ops[layout.setup_end].bytes; /* 64 blocks */

    if (a->create(blocks) != 0) {
        fprintf(stderr, "bench: cannot create a heap of %zu blocks for %s\n", blocks, a->name);
        bench_trace_free(&t);
        return -1;
    }
    void** slots = calloc(t.slots, sizeof(void*));
    uint64_t* lat_fit = calloc(reps, sizeof(uint64_t));
    uint64_t* lat_nofit = calloc(reps, sizeof(uint64_t));
    if (slots == NULL || lat_fit == NULL || lat_nofit == NULL) {
        fprintf(stderr, "bench: out of memory\n");
        exit(2);
    }
    int status = 0;
    size_t fill_failures = bench_replay(a, slots, t.ops, 0, layout.setup_end, NULL);
    if (fill_failures != 0) {
        fprintf(stderr, "bench: w3 fill: %zu single-block allocations failed on %s\n", fill_failures, a->name);
        status = -1;
    }
    bench_measure_begin(a);

    size_t fail_fit = 0, fail_nofit = 0;
    uint64_t overhead = bench_timer_overhead_ns;
    if (bench_opt.callgrind) {
        for (size_t r = 0; r < reps; r++) {
            bench_cg_on();
            void* p = a->alloc(big);
            bench_cg_off();
            void* q = a->alloc(big);
            a->release(p);
            a->release(q);
        }
        bench_cg_dump("w3-fit", a->name, blocks, reps);
        for (size_t r = 0; r < reps; r++) {
            void* p = a->alloc(big);
            bench_cg_on();
            void* q = a->alloc(big);
            bench_cg_off();
            a->release(p);
            a->release(q);
        }
        bench_cg_dump("w3-nofit", a->name, blocks, reps);
    } else {
        for (size_t r = 0; r < reps; r++) {
            uint64_t t0 = bench_now_ns();
            void* p = a->alloc(big);
            uint64_t t1 = bench_now_ns();
            void* q = a->alloc(big);
            uint64_t t2 = bench_now_ns();
            a->release(p);
            a->release(q);
            fail_fit += (p == NULL);
            fail_nofit += (q == NULL);
            lat_fit[r] = t1 - t0 > overhead ? t1 - t0 - overhead : 0;
            lat_nofit[r] = t2 - t1 > overhead ? t2 - t1 - overhead : 0;
        }
        struct bench_row fit = { 0 }, nofit = { 0 };
        fit.workload = "w3-fit";
        fit.allocator = a->name;
        fit.blocks = blocks;
        if (bench_check(a, &fit) != 0) {
            status = -1;
        }
        uint64_t state = fit.end_state;
        w3_fill_row(&fit, "w3-fit", a, blocks, hash, lat_fit, reps, fail_fit, "64-block request that fits only at the end");
        w3_fill_row(&nofit, "w3-nofit", a, blocks, hash, lat_nofit, reps, fail_nofit,
                    "64-block request that cannot fit in a bounded heap");
        fit.end_state = nofit.end_state = state;
        bench_emit(&fit);
        bench_emit(&nofit);
    }
    bench_release_all(a, slots, t.slots);
    a->destroy();
    free(slots);
    free(lat_fit);
    free(lat_nofit);
    bench_trace_free(&t);
    return status;
}

/* --trace-out: the same trace; the timed requests are 4 ops per repetition. */
static int w3_record(size_t blocks, struct bench_recording* rec)
{
    size_t reps = bench_pick(1000, 10, 20);
    struct w3_layout layout;
    w3_build(&rec->trace, blocks, reps, &layout);
    rec->trace_hash = w3_hash(blocks, reps);
    bench_recording_phase(rec, layout.fill_end, "filled with single blocks");
    bench_recording_phase(rec, layout.setup_end, "every other block freed (requests start here)");
    bench_recording_phase(rec, layout.setup_end + 2, "64 blocks placed at the end; the next 64 refused");
    bench_recording_phase(rec, rec->trace.count, "end of the requests (bench_check's state)");
    return 0;
}

static const struct bench_workload w3 = {
    "w3", "alternating single blocks, then a 64-block request that fits only at the end and one that cannot fit",
    bench_standard_sizes, w3_run, w3_record,
};
BENCH_WORKLOAD(w3)
