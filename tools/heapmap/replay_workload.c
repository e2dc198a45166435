/*
 * tools/heapmap/replay_workload.c - the built-in workloads of `heapmap
 * replay`, synthetic ones for any heap size and seed (not the benchmark's
 * traces, which replay_trace.c replays):
 *   w1  on bench/w1.c's rules: random 1..16-block requests and random frees,
 *       for each occupancy of --occupancy a warm-up to it and then --ops
 *       steady-state operations
 *   w3  on bench/w3.c's rules: fill with single blocks (all but the last 64),
 *       free every other one, then a 64-block request (fits only at the end)
 *       and another (cannot fit)
 * They choose the operations; replay_heap.c carries them out.
 */
#include <stdlib.h>

#include "replay.h"

static uint64_t rp_random(struct rp* r)
{
    uint64_t z = (r->rng += 0x9E3779B97F4A7C15ull); /* splitmix64 */
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/*
 * W1 as bench/w1.c builds it: while the blocks requested by live
 * allocations are below the target, allocate n = 1..16 blocks (n * 4096 - r
 * bytes, r in 0..63), else free a random live allocation. A failed
 * allocation still counts as live and is freed later, as free(NULL). Each
 * phase: warm-up (allocate until the target is reached), then --ops
 * steady-state operations; ids of freed allocations are reused.
 */
struct rp_w1_state
{
    size_t cap;
    size_t* live;       /* ids of live allocations (failed ones included) */
    size_t* spare;      /* freed ids, reused first */
    unsigned char* req; /* [id] blocks requested */
    size_t nlive, nspare, next_id, used;
};

/* One W1 operation: allocate if below target, else free a random live one. */
static int rp_w1_op(struct rp* r, struct rp_w1_state* w, size_t target)
{
    if (w->used < target || w->nlive == 0) {
        size_t blocks = 1 + rp_random(r) % 16;
        size_t bytes = blocks * PEACHOS_HEAP_BLOCK_SIZE - rp_random(r) % 64;
        size_t id = w->nspare > 0 ? w->spare[--w->nspare] : w->next_id++;
        if (w->nlive == w->cap || rp_malloc(r, id, bytes, false, 0) < 0) {
            return -1;
        }
        w->req[id] = (unsigned char)blocks;
        w->used += blocks;
        w->live[w->nlive++] = id;
        return 0;
    }
    size_t k = rp_random(r) % w->nlive;
    size_t id = w->live[k];
    w->live[k] = w->live[--w->nlive];
    w->used -= w->req[id];
    w->spare[w->nspare++] = id;
    return rp_free(r, id, 0);
}

int rp_w1(struct rp* r)
{
    struct rp_w1_state w = { 0 };
    w.cap = r->blocks + 17; /* live allocations <= used < target + 16 */
    w.live = malloc(w.cap * sizeof(size_t));
    w.spare = malloc(w.cap * sizeof(size_t));
    w.req = malloc(w.cap);
    int res = w.live != NULL && w.spare != NULL && w.req != NULL ? 0 : -1;
    for (size_t p = 0; res == 0 && p < r->o->phases; p++) {
        size_t target = r->blocks * r->o->occupancy[p] / 100;
        while (res == 0 && w.used < target) { /* warm-up */
            res = rp_w1_op(r, &w, target);
        }
        for (size_t i = 0; res == 0 && i < r->o->ops; i++) { /* steady state */
            res = rp_w1_op(r, &w, target);
        }
        char label[64];
        snprintf(label, sizeof(label), "steady state at %zu%% occupancy", r->o->occupancy[p]);
        rp_mark(r, label);
    }
    free(w.live);
    free(w.spare);
    free(w.req);
    return res;
}

int rp_w3(struct rp* r)
{
    size_t singles = r->blocks > 64 ? r->blocks - 64 : 0;
    for (size_t id = 0; id < singles; id++) {
        rp_malloc(r, id, PEACHOS_HEAP_BLOCK_SIZE, false, 0);
    }
    rp_mark(r, "filled with single blocks");
    for (size_t id = 0; id < singles; id += 2) {
        rp_free(r, id, 0);
    }
    rp_mark(r, "every other block freed");
    rp_malloc(r, singles, 64 * PEACHOS_HEAP_BLOCK_SIZE, false, 0);
    rp_malloc(r, singles + 1, 64 * PEACHOS_HEAP_BLOCK_SIZE, false, 0);
    rp_mark(r, "64-block request fits at the end, the next fails");
    return 0;
}
