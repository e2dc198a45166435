/*
 * tools/heapmap/replay.c - command line of `heapmap replay`: run a workload
 * on a hosted heap, render the map at chosen operations, and plot occupancy
 * and fragmentation over time. This file reads the options, picks the
 * workload, opens the timeline's data file and the --record file, and at
 * the end runs heap_check, writes --dump and has the timeline drawn; the
 * work itself is in replay_heap.c (the heap and its operations),
 * replay_workload.c (w1, w3), replay_trace.c (trace files) and
 * replay_plot.c (the timeline). README.md has the details.
 */
#define _DEFAULT_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "replay.h"

/* The workload: its name in titles, its size, and a trace's lines. */
struct rp_source
{
    char name[256];
    size_t blocks;
    char* text;
    char** lines;
    size_t nlines;
};

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

static void rp_defaults(struct rp_options* o)
{
    memset(o, 0, sizeof(*o));
    o->workload = "w1";
    o->out = "replay";
    o->blocks = 0;
    o->seed = 1;
    o->ops = 3000;
    o->occupancy[0] = 50;
    o->occupancy[1] = 90;
    o->phases = 2;
    o->plot = true;
}

enum rp_value_result
{
    RP_VALUE_OK,
    RP_VALUE_BAD,       /* an unknown option or a bad value: say which */
    RP_VALUE_BAD_QUIET, /* an occupancy over 100: the usage alone */
};

/* Option a with its value v; at: room for 256 --at operations. */
static enum rp_value_result rp_value(struct rp_options* o, const char* a, const char* v, size_t* at)
{
    size_t num = 0;
    const char* q = v;
    bool numeric = rp_number(&q, &num) && *q == '\0';
    if (strcmp(a, "--workload") == 0 || strcmp(a, "-w") == 0) {
        o->workload = v;
    } else if (strcmp(a, "-o") == 0 || strcmp(a, "--out") == 0) {
        o->out = v;
    } else if (strcmp(a, "--record") == 0) {
        o->record = v;
    } else if (strcmp(a, "--dat") == 0) {
        o->dat = v;
    } else if (strcmp(a, "--dump") == 0) {
        o->dump = v;
    } else if (strcmp(a, "--blocks") == 0 && numeric && num > 0) {
        o->blocks = num;
    } else if (strcmp(a, "--seed") == 0 && numeric) {
        o->seed = num;
    } else if (strcmp(a, "--ops") == 0 && numeric) {
        o->ops = num;
    } else if (strcmp(a, "--every") == 0 && numeric) {
        o->every = num;
    } else if (strcmp(a, "--cols") == 0 && numeric) {
        o->render.cols = num;
    } else if (strcmp(a, "--cell") == 0 && numeric && num < 256) {
        o->render.cell = (int)num;
    } else if (strcmp(a, "--at") == 0 && (o->nat = rp_list(v, at, 256)) > 0) {
        o->at = at;
    } else if (strcmp(a, "--occupancy") == 0 && (o->phases = rp_list(v, o->occupancy, 8)) > 0) {
        for (size_t k = 0; k < o->phases; k++) {
            if (o->occupancy[k] > 100) {
                return RP_VALUE_BAD_QUIET;
            }
        }
    } else {
        return RP_VALUE_BAD;
    }
    return RP_VALUE_OK;
}

/* The options without a value: --no-plot, --labels. False: not one of them. */
static bool rp_flag(struct rp_options* o, const char* a)
{
    bool no_plot = strcmp(a, "--no-plot") == 0, labels = strcmp(a, "--labels") == 0;
    o->plot = o->plot && !no_plot;
    o->render.labels = o->render.labels || labels;
    return no_plot || labels;
}

/* -1: go on; otherwise the exit status (0 after --help, 2 for bad options). */
static int rp_parse_args(int argc, char** argv, struct rp_options* o, size_t* at)
{
    rp_defaults(o);
    for (int i = 1; i < argc; i++) {
        const char* a = argv[i];
        const char* v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            rp_usage();
            return 0;
        }
        if (rp_flag(o, a)) {
            continue;
        }
        enum rp_value_result res = v == NULL ? RP_VALUE_BAD_QUIET : rp_value(o, a, v, at);
        if (res == RP_VALUE_BAD) {
            fprintf(stderr, "heapmap replay: bad option or value: %s %s\n", a, v);
        }
        if (res != RP_VALUE_OK) {
            rp_usage();
            return 2;
        }
        i++;
    }
    return -1;
}

/* A trace file: its lines, its "heap N" size and a title from its name. */
static int rp_trace_source(struct rp* r, struct rp_source* s)
{
    const char* path = r->o->workload;
    size_t len = 0, trace_blocks = 0;
    s->text = (char*)hm_read_file(path, &len);
    if (s->text == NULL) {
        return -1;
    }
    s->lines = rp_trace_lines(s->text, &s->nlines, &r->expected_ops, &trace_blocks);
    if (s->lines == NULL) {
        return -1;
    }
    s->blocks = s->blocks != 0 ? s->blocks : trace_blocks != 0 ? trace_blocks : 4096;
    const char* base = strrchr(path, '/');
    base = base != NULL ? base + 1 : path;
    size_t len_base = strlen(base);
    if (len_base > 6 && strcmp(base + len_base - 6, ".trace") == 0) {
        len_base -= 6; /* "trace bench-w1-90", not "trace bench-w1-90.trace" */
    }
    snprintf(s->name, sizeof(s->name), "trace %.*s", (int)len_base, base);
    return 0;
}

/* The workload's name, size and expected operations (for the sampling). */
static int rp_source(struct rp* r, struct rp_source* s)
{
    const struct rp_options* o = r->o;
    s->blocks = o->blocks;
    if (strcmp(o->workload, "w1") == 0) {
        s->blocks = s->blocks != 0 ? s->blocks : 4096;
        r->expected_ops = o->ops * o->phases + s->blocks / 4; /* + warm-ups, about */
        snprintf(s->name, sizeof(s->name), "W1 (seed %llu)", (unsigned long long)o->seed);
    } else if (strcmp(o->workload, "w3") == 0) {
        s->blocks = s->blocks != 0 ? s->blocks : 1024;
        r->expected_ops = s->blocks;
        snprintf(s->name, sizeof(s->name), "W3");
    } else if (rp_trace_source(r, s) < 0) {
        return -1;
    }
    r->name = s->name;
    return 0;
}

/* The timeline's data file (its name in dat) with its first sample, and
 * the --record file with its header. */
static int rp_open_outputs(struct rp* r, char* dat, size_t size)
{
    const struct rp_options* o = r->o;
    snprintf(dat, size, "%s", o->dat != NULL ? o->dat : "");
    if (dat[0] == '\0') {
        snprintf(dat, size, "%s-timeline.dat", o->out);
    }
    r->dat = fopen(dat, "w");
    if (r->dat == NULL) {
        fprintf(stderr, "heapmap replay: cannot write %s: %s\n", dat, strerror(errno));
        return -1;
    }
    fprintf(r->dat, "# op occupancy%% fragmentation%% largest_free_run%%_of_total failed_allocs\n");
    rp_sample(r); /* op 0: the empty heap */
    if (o->record != NULL) {
        r->record = fopen(o->record, "w");
        if (r->record == NULL) {
            fprintf(stderr, "heapmap replay: cannot write %s: %s\n", o->record, strerror(errno));
            return -1;
        }
        fprintf(r->record, "# heapmap trace: workload %s, seed %llu\nheap %zu\n", o->workload,
                (unsigned long long)o->seed, r->blocks);
    }
    return 0;
}

static void rp_close_outputs(struct rp* r)
{
    if (r->dat != NULL) {
        fclose(r->dat);
        r->dat = NULL;
    }
    if (r->record != NULL) {
        fclose(r->record);
        r->record = NULL;
    }
}

static int rp_run_workload(struct rp* r, const struct rp_source* s)
{
    const char* w = r->o->workload;
    int run = strcmp(w, "w1") == 0 ? rp_w1(r) : strcmp(w, "w3") == 0 ? rp_w3(r) : rp_trace(r, s->lines, s->nlines);
    rp_close_outputs(r);
    return run;
}

/* heap_check and the summary line; --dump: the final table, raw, as a
 * kernel dump would be. */
static int rp_finish(struct rp* r)
{
    size_t bad = 0;
    int check = heap_check(&r->heap, &bad);
    struct heap_stats s;
    heap_get_stats(&r->heap, &s);
    printf("replay workload=%s blocks=%zu ops=%zu failed_allocs=%zu rejected_frees=%zu heap_check=%s\n",
           r->o->workload, r->blocks, r->ops, s.failed_allocs, s.rejected_frees, check == 0 ? "clean" : "CORRUPT");
    if (check != 0) {
        fprintf(stderr, "heapmap replay: heap_check failed at block %zu\n", bad);
        return -1;
    }
    const char* dump = r->o->dump;
    if (dump != NULL) {
        FILE* f = fopen(dump, "wb");
        if (f == NULL || fwrite(r->entries, 1, r->blocks, f) != r->blocks || fclose(f) != 0) {
            fprintf(stderr, "heapmap replay: cannot write %s\n", dump);
            return -1;
        }
    }
    return 0;
}

/* The replay of a chosen workload, start to end: the exit status. */
static int rp_replay(struct rp* r, const struct rp_source* s)
{
    r->ptr = calloc(RP_MAX_ID, sizeof(void*));
    r->type = calloc(RP_MAX_ID, 1);
    r->known = calloc(RP_MAX_ID, 1);
    if (r->ptr == NULL || r->type == NULL || r->known == NULL || rp_create(r, s->blocks) < 0) {
        return 1;
    }
    r->sample_every = r->expected_ops / RP_MAX_SAMPLES + 1;
    char dat[4096];
    if (rp_open_outputs(r, dat, sizeof(dat)) < 0 || rp_run_workload(r, s) < 0 || rp_finish(r) < 0) {
        return 1;
    }
    return r->o->plot && rp_plot(r, dat) < 0 ? 1 : 0;
}

static void rp_cleanup(struct rp* r, struct rp_source* s)
{
    rp_close_outputs(r);
    if (r->map_base != NULL) {
        munmap(r->map_base, r->map_bytes);
    }
    free(r->ptr);
    free(r->type);
    free(r->known);
    free(s->lines);
    free(s->text);
}

int hm_replay_main(int argc, char** argv)
{
    struct rp_options o;
    size_t at[256];
    int status = rp_parse_args(argc, argv, &o, at);
    if (status >= 0) {
        return status;
    }
    struct rp r;
    memset(&r, 0, sizeof(r));
    r.o = &o;
    r.rng = o.seed;
    struct rp_source s;
    memset(&s, 0, sizeof(s));
    int res = rp_source(&r, &s) < 0 ? 1 : rp_replay(&r, &s);
    rp_cleanup(&r, &s);
    return res;
}
