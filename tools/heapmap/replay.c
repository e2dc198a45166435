/*
 * tools/heapmap/replay.c - `heapmap replay`: run a workload on a hosted heap
 * (heap_create_indexed over an mmap'd pool, the library's own code), render
 * the map at chosen operations, and plot occupancy and fragmentation over
 * time with gnuplot.
 *
 * Workloads (README.md has the details):
 *   FILE   a trace (format below), e.g. the benchmark's exact trace written by
 *          `bench-peach --workload W --blocks N --trace-out FILE`
 *   w1     synthetic (any size and seed; not the benchmark's trace), on
 *          bench/w1.c's rules: random 1..16-block requests and random frees,
 *          for each occupancy of --occupancy (default 50,90) a warm-up to it
 *          and then --ops steady-state operations
 *   w3     synthetic, on bench/w3.c's rules: fill with single blocks (all
 *          but the last 64), free every other one, then a 64-block request
 *          (fits only at the end) and another (cannot fit)
 * Trace format: "heap <blocks>", "m <id> <bytes>", "c <id> <blocks>",
 * "f <id>", "snap [label]", "# comment".
 */
#define _DEFAULT_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "heapmap.h"
#include "memory/heap/heap.h"
#include "memory/heap/heap_index.h"

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

static uint64_t rp_random(struct rp* r)
{
    uint64_t z = (r->rng += 0x9E3779B97F4A7C15ull); /* splitmix64 */
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static int rp_create(struct rp* r, size_t blocks)
{
    size_t pool = blocks * PEACHOS_HEAP_BLOCK_SIZE;
    size_t index = heap_index_bytes(blocks);
    if (blocks == 0 || index == 0) {
        fprintf(stderr, "heapmap replay: cannot make a heap of %zu blocks\n", blocks);
        return -1;
    }
    size_t table = (blocks + 63) / 64 * 64;
    /* [pool][table][index], one block of slack to align the pool */
    r->map_bytes = PEACHOS_HEAP_BLOCK_SIZE + pool + table + index;
    void* map = mmap(NULL, r->map_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (map == MAP_FAILED) {
        fprintf(stderr, "heapmap replay: mmap: %s\n", strerror(errno));
        return -1;
    }
    r->map_base = map;
    uintptr_t start = ((uintptr_t)map + PEACHOS_HEAP_BLOCK_SIZE - 1) / PEACHOS_HEAP_BLOCK_SIZE *
                      PEACHOS_HEAP_BLOCK_SIZE;
    r->entries = (unsigned char*)(start + pool);
    r->table.entries = r->entries;
    r->table.total = blocks;
    r->blocks = blocks;
    int res = heap_create_indexed(&r->heap, (void*)start, (void*)(start + pool), &r->table, r->entries + table,
                                  index);
    if (res < 0) {
        fprintf(stderr, "heapmap replay: heap_create_indexed failed (%d)\n", res);
        return -1;
    }
    return 0;
}

static void rp_snapshot(struct rp* r, const char* label)
{
    if (r->snapshots > 0 && r->last_snapshot == r->ops) {
        return; /* already drawn at this operation */
    }
    if (r->snapshots == RP_MAX_SNAPSHOTS) {
        fprintf(stderr, "heapmap replay: more than %d snapshots; no more drawn\n", RP_MAX_SNAPSHOTS);
        r->snapshots++;
        return;
    }
    if (r->snapshots > RP_MAX_SNAPSHOTS) {
        return;
    }
    r->snapshots++;
    r->last_snapshot = r->ops;
    r->marks[r->nmarks++] = r->ops;
    struct hm_map map;
    if (hm_from_table(r->entries, r->blocks, &map) < 0) {
        return;
    }
    char title[256], prefix[4096];
    snprintf(title, sizeof(title), "%s: after operation %zu%s%s", r->name, r->ops, label[0] ? " - " : "", label);
    snprintf(prefix, sizeof(prefix), "%s-op%06zu", r->o->out, r->ops);
    struct hm_render_options ro = r->o->render;
    ro.title = title;
    printf("snapshot op=%zu label=\"%s\" ", r->ops, label);
    hm_print_stats(stdout, &map);
    printf("\n");
    hm_render(&map, &ro, prefix);
    hm_free(&map);
}

static void rp_sample(struct rp* r)
{
    if (r->dat == NULL || r->ops % r->sample_every != 0) {
        return;
    }
    struct heap_stats s;
    heap_get_stats(&r->heap, &s);
    fprintf(r->dat, "%zu %.3f %.3f %.3f %zu\n", r->ops, 100.0 * (double)s.used_blocks / (double)s.total_blocks,
            100.0 * hm_fragmentation(s.free_blocks, s.largest_free_run),
            100.0 * (double)s.largest_free_run / (double)s.total_blocks, s.failed_allocs);
}

/* After each operation: timeline sample and the snapshots asked for. */
static void rp_after_op(struct rp* r)
{
    r->ops++;
    rp_sample(r);
    bool snap = r->o->every != 0 && r->ops % r->o->every == 0;
    for (size_t i = 0; i < r->o->nat; i++) {
        snap = snap || r->o->at[i] == r->ops;
    }
    if (snap) {
        rp_snapshot(r, "");
    }
}

static int rp_check_id(size_t id, size_t line)
{
    if (id >= RP_MAX_ID) {
        fprintf(stderr, "heapmap replay: line %zu: id %zu too large (ids are 0..%u)\n", line, id, RP_MAX_ID - 1);
        return -1;
    }
    return 0;
}

/* m / c: allocate `amount` (bytes for plain, blocks for cache) as `id`. */
static int rp_malloc(struct rp* r, size_t id, size_t amount, bool cache, size_t line)
{
    if (rp_check_id(id, line) < 0) {
        return -1;
    }
    if (r->ptr[id] != NULL) {
        fprintf(stderr, "heapmap replay: line %zu: id %zu is still live\n", line, id);
        return -1;
    }
    void* p = cache ? heap_malloc_blocks_typed(&r->heap, amount, HEAP_BLOCK_TYPE_CACHE)
                    : heap_malloc(&r->heap, amount);
    r->ptr[id] = p;
    r->type[id] = cache ? HEAP_BLOCK_TYPE_CACHE : HEAP_BLOCK_TYPE_PLAIN;
    r->known[id] = 1;
    r->failed_ops += p == NULL;
    if (r->record != NULL) {
        fprintf(r->record, "%c %zu %zu\n", cache ? 'c' : 'm', id, amount);
    }
    rp_after_op(r);
    return 0;
}

static int rp_free(struct rp* r, size_t id, size_t line)
{
    if (rp_check_id(id, line) < 0) {
        return -1;
    }
    if (!r->known[id]) {
        fprintf(stderr, "heapmap replay: line %zu: id %zu was never allocated\n", line, id);
        return -1;
    }
    /* A free of a failed allocation frees NULL, as real code would. */
    heap_free_typed(&r->heap, r->ptr[id], r->type[id]);
    r->ptr[id] = NULL;
    if (r->record != NULL) {
        fprintf(r->record, "f %zu\n", id);
    }
    rp_after_op(r);
    return 0;
}

static void rp_mark(struct rp* r, const char* label)
{
    if (r->record != NULL) {
        fprintf(r->record, "snap %s\n", label);
    }
    rp_snapshot(r, label);
}

/* ---- built-in workloads ------------------------------------------- */

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

static int rp_w1(struct rp* r)
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

static int rp_w3(struct rp* r)
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

/* ---- trace file ---------------------------------------------------- */

static bool rp_number(const char** p, size_t* value)
{
    while (**p == ' ' || **p == '\t') {
        (*p)++;
    }
    if (**p < '0' || **p > '9') {
        return false;
    }
    char* end = NULL;
    errno = 0;
    unsigned long long v = strtoull(*p, &end, 10);
    if (errno != 0) {
        return false;
    }
    *p = end;
    *value = (size_t)v;
    return true;
}

static bool rp_line_end(const char* p)
{
    while (*p == ' ' || *p == '\t' || *p == '\r') {
        p++;
    }
    return *p == '\0' || *p == '#';
}

/* Split the trace into lines in place; count operations; find "heap N". */
static char** rp_trace_lines(char* text, size_t* count, size_t* ops, size_t* heap_blocks)
{
    size_t n = 1;
    for (char* p = text; *p; p++) {
        n += *p == '\n';
    }
    char** lines = malloc(n * sizeof(char*));
    if (lines == NULL) {
        return NULL;
    }
    *count = 0;
    *ops = 0;
    for (char* p = text; p != NULL;) {
        char* nl = strchr(p, '\n');
        if (nl != NULL) {
            *nl = '\0';
        }
        lines[(*count)++] = p;
        while (*p == ' ' || *p == '\t') {
            p++;
        }
        *ops += (p[0] == 'm' || p[0] == 'c' || p[0] == 'f') && (p[1] == ' ' || p[1] == '\t');
        size_t v = 0;
        const char* q = p + 4;
        if (strncmp(p, "heap", 4) == 0 && rp_number(&q, &v) && rp_line_end(q)) {
            *heap_blocks = v;
        }
        p = nl != NULL ? nl + 1 : NULL;
    }
    return lines;
}

static int rp_trace(struct rp* r, char** lines, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        const char* p = lines[i];
        size_t line = i + 1;
        while (*p == ' ' || *p == '\t') {
            p++;
        }
        if (rp_line_end(p) || strncmp(p, "heap", 4) == 0) {
            continue; /* blank, comment, or the heap line (read before) */
        }
        if (strncmp(p, "snap", 4) == 0 && (p[4] == '\0' || p[4] == ' ' || p[4] == '\t' || p[4] == '\r')) {
            char label[128];
            p += 4;
            while (*p == ' ' || *p == '\t') {
                p++;
            }
            snprintf(label, sizeof(label), "%s", p);
            label[strcspn(label, "\r#")] = '\0';
            rp_mark(r, label);
            continue;
        }
        char op = *p++;
        size_t id = 0, amount = 0;
        bool ok = (*p == ' ' || *p == '\t') && rp_number(&p, &id);
        if (ok && (op == 'm' || op == 'c')) {
            ok = rp_number(&p, &amount) && rp_line_end(p) && amount > 0;
            if (ok && rp_malloc(r, id, amount, op == 'c', line) < 0) {
                return -1;
            }
        } else if (ok && op == 'f') {
            ok = rp_line_end(p);
            if (ok && rp_free(r, id, line) < 0) {
                return -1;
            }
        } else {
            ok = false;
        }
        if (!ok) {
            fprintf(stderr, "heapmap replay: line %zu: expected \"m ID BYTES\", \"c ID BLOCKS\", \"f ID\", "
                            "\"snap [LABEL]\" or \"heap BLOCKS\": %s\n",
                    line, lines[i]);
            return -1;
        }
    }
    rp_mark(r, "end of trace");
    return 0;
}

/* ---- timeline plot ---------------------------------------------------- */

static void rp_quote(FILE* f, const char* s)
{
    fputc('\'', f);
    for (; *s; s++) {
        if (*s == '\'') {
            fputc('\'', f); /* gnuplot: '' inside single quotes */
        }
        fputc(*s, f);
    }
    fputc('\'', f);
}

static int rp_plot(struct rp* r, const char* dat)
{
    FILE* g = popen("gnuplot", "w");
    if (g == NULL) {
        fprintf(stderr, "heapmap replay: cannot run gnuplot (tools/need gnuplot-nox)\n");
        return -1;
    }
    char out[4096];
    fprintf(g, "set title \"%s: occupancy and fragmentation, %zu blocks\"\n", r->name, r->blocks);
    fprintf(g, "set xlabel 'operation'\nset ylabel 'percent'\nset yrange [0:105]\nset xrange [0:%zu]\n", r->ops);
    fprintf(g, "set grid\nset key below horizontal maxcols 3 font ',9'\n");
    for (size_t i = 0; i < r->nmarks; i++) {
        fprintf(g, "set arrow from %zu, graph 0 to %zu, graph 1 nohead dashtype 2 lc rgb '#777777'\n", r->marks[i],
                r->marks[i]);
        fprintf(g, "set label 'snapshot %zu' at %zu, graph 1.03 %s font ',8' tc rgb '#555555'\n", i + 1,
                r->marks[i], r->marks[i] == r->ops ? "right" : r->marks[i] == 0 ? "left" : "center");
    }
    const char* terms[2][2] = { { "pngcairo size 900,440 font 'DejaVu Sans,10'", "png" },
                                { "svg size 900,440 font 'DejaVu Sans,10' background '#ffffff'", "svg" } };
    for (int t = 0; t < 2; t++) {
        snprintf(out, sizeof(out), "%s-timeline.%s", r->o->out, terms[t][1]);
        fprintf(g, "set terminal %s\nset output ", terms[t][0]);
        rp_quote(g, out);
        fprintf(g, "\nplot ");
        rp_quote(g, dat);
        fprintf(g, " using 1:2 with lines lw 2 lc rgb '#1d4f8c' title 'occupancy (used / total)', ");
        rp_quote(g, dat);
        fprintf(g, " using 1:3 with lines lw 2 lc rgb '#d2691e' title 'fragmentation (1 - largest free run / free)', ");
        rp_quote(g, dat);
        fprintf(g, " using 1:4 with lines lw 1 lc rgb '#2ca02c' title 'largest free run / total'\n");
        fprintf(g, "set output\n");
    }
    int status = pclose(g);
    if (status != 0) {
        fprintf(stderr, "heapmap replay: gnuplot failed (status %d)\n", status);
        return -1;
    }
    printf("timeline dat=%s png=%s-timeline.png svg=%s-timeline.svg samples_every=%zu\n", dat, r->o->out,
           r->o->out, r->sample_every);
    return 0;
}

/* ---- command line ------------------------------------------------------ */

static void rp_usage(void)
{
    fprintf(stderr,
            "usage: heapmap replay [--workload w1|w3|TRACE] [--blocks N] [--seed S] [--ops N]\n"
            "                      [--occupancy P,P,...] [--every K] [--at N,N,...] [--record FILE]\n"
            "                      [--dat FILE] [--dump FILE] [--no-plot] [--cols N] [--cell PX] [-o PREFIX]\n");
}

static size_t rp_list(const char* text, size_t* out, size_t max)
{
    size_t n = 0;
    const char* p = text;
    while (n < max && *p) {
        size_t v = 0;
        if (!rp_number(&p, &v)) {
            return 0;
        }
        out[n++] = v;
        if (*p == ',') {
            p++;
        } else if (*p != '\0') {
            return 0;
        }
    }
    return *p == '\0' ? n : 0;
}

int hm_replay_main(int argc, char** argv)
{
    struct rp_options o = { 0 };
    o.workload = "w1";
    o.out = "replay";
    o.blocks = 0;
    o.seed = 1;
    o.ops = 3000;
    o.occupancy[0] = 50;
    o.occupancy[1] = 90;
    o.phases = 2;
    o.plot = true;
    size_t at[256];
    for (int i = 1; i < argc; i++) {
        const char* a = argv[i];
        const char* v = i + 1 < argc ? argv[i + 1] : NULL;
        bool takes = true;
        size_t num = 0;
        const char* q = v;
        bool numeric = v != NULL && rp_number(&q, &num) && *q == '\0';
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            rp_usage();
            return 0;
        }
        if (strcmp(a, "--no-plot") == 0) {
            o.plot = false;
            takes = false;
        } else if (strcmp(a, "--labels") == 0) {
            o.render.labels = true;
            takes = false;
        } else if (v == NULL) {
            rp_usage();
            return 2;
        } else if (strcmp(a, "--workload") == 0 || strcmp(a, "-w") == 0) {
            o.workload = v;
        } else if (strcmp(a, "-o") == 0 || strcmp(a, "--out") == 0) {
            o.out = v;
        } else if (strcmp(a, "--record") == 0) {
            o.record = v;
        } else if (strcmp(a, "--dat") == 0) {
            o.dat = v;
        } else if (strcmp(a, "--dump") == 0) {
            o.dump = v;
        } else if (strcmp(a, "--blocks") == 0 && numeric && num > 0) {
            o.blocks = num;
        } else if (strcmp(a, "--seed") == 0 && numeric) {
            o.seed = num;
        } else if (strcmp(a, "--ops") == 0 && numeric) {
            o.ops = num;
        } else if (strcmp(a, "--every") == 0 && numeric) {
            o.every = num;
        } else if (strcmp(a, "--cols") == 0 && numeric) {
            o.render.cols = num;
        } else if (strcmp(a, "--cell") == 0 && numeric && num < 256) {
            o.render.cell = (int)num;
        } else if (strcmp(a, "--at") == 0 && (o.nat = rp_list(v, at, 256)) > 0) {
            o.at = at;
        } else if (strcmp(a, "--occupancy") == 0 && (o.phases = rp_list(v, o.occupancy, 8)) > 0) {
            for (size_t k = 0; k < o.phases; k++) {
                if (o.occupancy[k] > 100) {
                    rp_usage();
                    return 2;
                }
            }
        } else {
            fprintf(stderr, "heapmap replay: bad option or value: %s %s\n", a, v);
            rp_usage();
            return 2;
        }
        i += takes;
    }

    struct rp r;
    memset(&r, 0, sizeof(r));
    r.o = &o;
    r.rng = o.seed;
    char* text = NULL;
    char** lines = NULL;
    size_t nlines = 0;
    size_t blocks = o.blocks;
    char name[256];
    if (strcmp(o.workload, "w1") == 0) {
        blocks = blocks != 0 ? blocks : 4096;
        r.expected_ops = o.ops * o.phases + blocks / 4; /* + warm-ups, about */
        snprintf(name, sizeof(name), "W1 (seed %llu)", (unsigned long long)o.seed);
    } else if (strcmp(o.workload, "w3") == 0) {
        blocks = blocks != 0 ? blocks : 1024;
        r.expected_ops = blocks;
        snprintf(name, sizeof(name), "W3");
    } else {
        size_t len = 0, trace_blocks = 0;
        text = (char*)hm_read_file(o.workload, &len);
        if (text == NULL) {
            return 1;
        }
        lines = rp_trace_lines(text, &nlines, &r.expected_ops, &trace_blocks);
        if (lines == NULL) {
            free(text);
            return 1;
        }
        blocks = blocks != 0 ? blocks : trace_blocks != 0 ? trace_blocks : 4096;
        const char* base = strrchr(o.workload, '/');
        base = base != NULL ? base + 1 : o.workload;
        size_t len_base = strlen(base);
        if (len_base > 6 && strcmp(base + len_base - 6, ".trace") == 0) {
            len_base -= 6; /* "trace bench-w1-90", not "trace bench-w1-90.trace" */
        }
        snprintf(name, sizeof(name), "trace %.*s", (int)len_base, base);
    }
    r.name = name;
    int res = 1;
    r.ptr = calloc(RP_MAX_ID, sizeof(void*));
    r.type = calloc(RP_MAX_ID, 1);
    r.known = calloc(RP_MAX_ID, 1);
    if (r.ptr == NULL || r.type == NULL || r.known == NULL || rp_create(&r, blocks) < 0) {
        goto out;
    }
    r.sample_every = r.expected_ops / RP_MAX_SAMPLES + 1;
    char dat[4096];
    snprintf(dat, sizeof(dat), "%s", o.dat != NULL ? o.dat : "");
    if (dat[0] == '\0') {
        snprintf(dat, sizeof(dat), "%s-timeline.dat", o.out);
    }
    r.dat = fopen(dat, "w");
    if (r.dat == NULL) {
        fprintf(stderr, "heapmap replay: cannot write %s: %s\n", dat, strerror(errno));
        goto out;
    }
    fprintf(r.dat, "# op occupancy%% fragmentation%% largest_free_run%%_of_total failed_allocs\n");
    rp_sample(&r); /* op 0: the empty heap */
    if (o.record != NULL) {
        r.record = fopen(o.record, "w");
        if (r.record == NULL) {
            fprintf(stderr, "heapmap replay: cannot write %s: %s\n", o.record, strerror(errno));
            goto out;
        }
        fprintf(r.record, "# heapmap trace: workload %s, seed %llu\nheap %zu\n", o.workload,
                (unsigned long long)o.seed, blocks);
    }

    int run = strcmp(o.workload, "w1") == 0   ? rp_w1(&r)
              : strcmp(o.workload, "w3") == 0 ? rp_w3(&r)
                                              : rp_trace(&r, lines, nlines);
    if (r.record != NULL) {
        fclose(r.record);
        r.record = NULL;
    }
    fclose(r.dat);
    r.dat = NULL;
    if (run < 0) {
        goto out;
    }
    size_t bad = 0;
    int check = heap_check(&r.heap, &bad);
    struct heap_stats s;
    heap_get_stats(&r.heap, &s);
    printf("replay workload=%s blocks=%zu ops=%zu failed_allocs=%zu rejected_frees=%zu heap_check=%s\n", o.workload,
           blocks, r.ops, s.failed_allocs, s.rejected_frees, check == 0 ? "clean" : "CORRUPT");
    if (check != 0) {
        fprintf(stderr, "heapmap replay: heap_check failed at block %zu\n", bad);
        goto out;
    }
    if (o.dump != NULL) { /* the final table, raw: as a kernel dump would be */
        FILE* f = fopen(o.dump, "wb");
        if (f == NULL || fwrite(r.entries, 1, blocks, f) != blocks || fclose(f) != 0) {
            fprintf(stderr, "heapmap replay: cannot write %s\n", o.dump);
            goto out;
        }
    }
    res = o.plot && rp_plot(&r, dat) < 0 ? 1 : 0;
out:
    if (r.dat != NULL) {
        fclose(r.dat);
    }
    if (r.record != NULL) {
        fclose(r.record);
    }
    if (r.map_base != NULL) {
        munmap(r.map_base, r.map_bytes);
    }
    free(r.ptr);
    free(r.type);
    free(r.known);
    free(lines);
    free(text);
    return res;
}
