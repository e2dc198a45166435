/*
 * tools/heapmap/replay.h - what the parts of `heapmap replay` share: its
 * options, the state of one replay (the hosted heap, the live ids, the
 * timeline and record files), and each part's entry points. The parts:
 * replay.c (command line), replay_heap.c (the hosted heap, its operations
 * and snapshots), replay_workload.c (the built-in w1 and w3), replay_trace.c
 * (trace files) and replay_plot.c (the timeline). Kept apart from heapmap.h,
 * which only needs hm_replay_main, so that the rest of the tool does not see
 * the heap's own headers.
 */
#ifndef HEAPMAP_REPLAY_H
#define HEAPMAP_REPLAY_H

#include <stdint.h>

#include "heapmap.h"
#include "memory/heap/heap.h"

#define RP_MAX_ID 10000000u
#define RP_MAX_SNAPSHOTS 100
#define RP_MAX_SAMPLES 1000

struct rp_options
{
    const char* workload;
    const char* out;
    const char* record;
    const char* dat;
    const char* dump;
    size_t blocks;
    uint64_t seed;
    size_t ops; /* per w1 phase */
    size_t occupancy[8];
    size_t phases;
    size_t every;
    size_t* at;
    size_t nat;
    bool plot;
    struct hm_render_options render;
};

struct rp
{
    struct rp_options* o;
    const char* name; /* for titles */
    size_t blocks;
    struct heap heap;
    struct heap_table table;
    unsigned char* map_base;
    size_t map_bytes;
    unsigned char* entries;
    void** ptr;           /* [RP_MAX_ID] by id, NULL = not live */
    unsigned char* type;  /* [RP_MAX_ID] */
    unsigned char* known; /* [RP_MAX_ID] id was ever allocated */
    size_t ops;
    size_t expected_ops;
    size_t sample_every;
    size_t last_snapshot;
    size_t snapshots;
    size_t failed_ops; /* heap_malloc returned NULL */
    FILE* dat;
    FILE* record;
    size_t marks[RP_MAX_SNAPSHOTS];
    size_t nmarks;
    uint64_t rng;
};

/* replay_heap.c: the heap over an mmap'd pool, and the operations on it.
 * Each operation is written to the record file, sampled for the timeline
 * and drawn when a snapshot is due. line: the trace's line, for errors. */
int rp_create(struct rp* r, size_t blocks);
void rp_sample(struct rp* r);
int rp_malloc(struct rp* r, size_t id, size_t amount, bool cache, size_t line);
int rp_free(struct rp* r, size_t id, size_t line);
void rp_mark(struct rp* r, const char* label);

/* replay_workload.c: the built-in workloads. */
int rp_w1(struct rp* r);
int rp_w3(struct rp* r);

/* replay_trace.c: trace files. */
/* A decimal number at *p (after blanks); *p moves past it. */
bool rp_number(const char** p, size_t* value);
/* Split the trace into lines in place; count operations; find "heap N". */
char** rp_trace_lines(char* text, size_t* count, size_t* ops, size_t* heap_blocks);
int rp_trace(struct rp* r, char** lines, size_t count);

/* replay_plot.c: the timeline of the samples in dat, drawn by gnuplot. */
int rp_plot(struct rp* r, const char* dat);

#endif /* HEAPMAP_REPLAY_H */
