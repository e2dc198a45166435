/*
 * tools/heapmap/heapmap.c - command line of the heapmap tool.
 *
 *   heapmap [render] [options] INPUT     draw INPUT as PREFIX.png + PREFIX.svg
 *   heapmap text [options] INPUT         print heap_dump_map's text map of a table
 *   heapmap regions [options] INPUT      draw every heap region of a kernel's output (and its window)
 *   heapmap replay [options]             run a workload on a hosted heap, draw it
 *
 * See tools/heapmap/README.md.
 */
#define _GNU_SOURCE /* memmem */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "heapmap.h"
#include "memory/heap/heap.h"

static void usage(void)
{
    fprintf(stderr,
            "usage: heapmap [render] [--format auto|raw|hex|text] [--map N] [--cols N] [--cell PX]\n"
            "               [--labels] [--title TEXT] [-o PREFIX] INPUT|-\n"
            "       heapmap text [--format raw|hex] [--per-char K] [--width W] [--lines L] INPUT|-\n"
            "       heapmap regions [--region K | --no-window | --whole-window] [--cols N] [--cell PX] [--title TEXT]\n"
            "               [-o PREFIX] INPUT|-\n"
            "               (every region; then the kvmalloc window, its allocations linked by colour to the\n"
            "               region blocks behind them, when the log has a HEAPMAP window section. The window's\n"
            "               grid stops one free row after its last used block, with a line naming the free\n"
            "               blocks not drawn; --whole-window draws them all. Statistics: the whole window)\n"
            "       heapmap replay --help\n"
            "INPUT: a raw table (one byte per block), a hex listing (--format hex or *.hex),\n"
            "or text containing a \"HEAPMAP v1\" map (e.g. captured serial output).\n"
            "A title too wide for the picture is broken into lines (after \": \" where it can).\n");
}

static bool number(const char* text, size_t* value)
{
    char* end = NULL;
    if (text == NULL || text[0] < '0' || text[0] > '9') {
        return false;
    }
    unsigned long long v = strtoull(text, &end, 10);
    *value = (size_t)v;
    return *end == '\0';
}

static bool ends_with(const char* s, const char* suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static enum hm_format detect(const unsigned char* data, size_t len, const char* path, enum hm_format format)
{
    if (format != HM_FORMAT_AUTO) {
        return format;
    }
    /* A valid table never holds these bytes: 'H' = 0x48 has type bits 0x08. */
    if (memmem(data, len, "HEAPMAP v1 ", 11) != NULL) {
        return HM_FORMAT_TEXT;
    }
    return ends_with(path, ".hex") ? HM_FORMAT_HEX : HM_FORMAT_RAW;
}

struct args
{
    enum hm_format format;
    size_t map_number;
    size_t per_char, width, lines;
    size_t region; /* regions: SIZE_MAX = all */
    bool no_window; /* regions: leave the kvmalloc window out */
    const char* out;
    const char* input;
    struct hm_render_options render;
};

static int parse_args(int argc, char** argv, struct args* a)
{
    for (int i = 0; i < argc; i++) {
        const char* k = argv[i];
        const char* v = i + 1 < argc ? argv[i + 1] : NULL;
        size_t n = 0;
        if (strcmp(k, "--labels") == 0) {
            a->render.labels = true;
            continue;
        }
        if (strcmp(k, "--no-window") == 0) {
            a->no_window = true;
            continue;
        }
        if (strcmp(k, "--whole-window") == 0) {
            a->render.whole_window = true;
            continue;
        }
        if (k[0] != '-' || strcmp(k, "-") == 0) {
            if (a->input != NULL) {
                fprintf(stderr, "heapmap: more than one input\n");
                return -1;
            }
            a->input = k;
            continue;
        }
        if (v == NULL) {
            fprintf(stderr, "heapmap: %s needs a value\n", k);
            return -1;
        }
        i++;
        if (strcmp(k, "--format") == 0) {
            a->format = strcmp(v, "raw") == 0    ? HM_FORMAT_RAW
                        : strcmp(v, "hex") == 0  ? HM_FORMAT_HEX
                        : strcmp(v, "text") == 0 ? HM_FORMAT_TEXT
                                                 : HM_FORMAT_AUTO;
            if (a->format == HM_FORMAT_AUTO && strcmp(v, "auto") != 0) {
                fprintf(stderr, "heapmap: unknown format %s\n", v);
                return -1;
            }
        } else if (strcmp(k, "-o") == 0 || strcmp(k, "--out") == 0) {
            a->out = v;
        } else if (strcmp(k, "--title") == 0) {
            a->render.title = v;
        } else if (strcmp(k, "--map") == 0 && number(v, &n)) {
            a->map_number = n;
        } else if (strcmp(k, "--cols") == 0 && number(v, &n) && n > 0) {
            a->render.cols = n;
        } else if (strcmp(k, "--cell") == 0 && number(v, &n) && n > 0 && n < 256) {
            a->render.cell = (int)n;
        } else if (strcmp(k, "--per-char") == 0 && number(v, &n)) {
            a->per_char = n;
        } else if (strcmp(k, "--width") == 0 && number(v, &n)) {
            a->width = n;
        } else if (strcmp(k, "--lines") == 0 && number(v, &n)) {
            a->lines = n;
        } else if (strcmp(k, "--region") == 0 && number(v, &n)) {
            a->region = n;
        } else {
            fprintf(stderr, "heapmap: bad option or value: %s %s\n", k, v);
            return -1;
        }
    }
    if (a->input == NULL) {
        fprintf(stderr, "heapmap: no input\n");
        return -1;
    }
    return 0;
}

static int load(const struct args* a, struct hm_map* map)
{
    size_t len = 0;
    unsigned char* data = hm_read_file(a->input, &len);
    if (data == NULL) {
        return -1;
    }
    enum hm_format format = detect(data, len, a->input, a->format);
    if (format == HM_FORMAT_TEXT && a->map_number == 0 && memmem(data, len, "HEAPMAP region ", 15) != NULL) {
        fprintf(stderr, "heapmap: drawing the input's last map; `heapmap regions` draws every heap region\n");
    }
    int res = hm_parse(data, len, format, a->map_number, map);
    free(data);
    return res;
}

static void write_stdout(void* ctx, const char* text, size_t len)
{
    (void)ctx;
    fwrite(text, 1, len, stdout);
}

/* heapmap text: a table through the library's own heap_dump_map. */
static int text_main(int argc, char** argv)
{
    struct args a = { 0 };
    a.per_char = 1;
    a.width = 64;
    a.lines = 0;
    if (parse_args(argc, argv, &a) < 0) {
        usage();
        return 2;
    }
    struct hm_map map;
    if (load(&a, &map) < 0) {
        return 1;
    }
    if (map.bytes == NULL) {
        fprintf(stderr, "heapmap text: needs a raw or hex table, not a text map\n");
        hm_free(&map);
        return 1;
    }
    /* A heap over the dumped table: pool address is never dereferenced. */
    struct heap_table table = { map.bytes, map.blocks };
    struct heap heap;
    memset(&heap, 0, sizeof(heap));
    heap.table = &table;
    heap.saddr = (void*)(uintptr_t)PEACHOS_HEAP_ADDRESS;
    for (size_t i = 0; i < map.blocks; i++) {
        heap.used_blocks += map.bytes[i] != HEAP_BLOCK_TABLE_ENTRY_FREE;
    }
    heap.live_allocations = map.stats.allocations;
    heap_dump_map(&heap, write_stdout, NULL, a.per_char, a.width, a.lines);
    hm_free(&map);
    return 0;
}

static int render_main(int argc, char** argv)
{
    struct args a = { 0 };
    a.out = "heapmap";
    if (parse_args(argc, argv, &a) < 0) {
        usage();
        return 2;
    }
    struct hm_map map;
    if (load(&a, &map) < 0) {
        return 1;
    }
    hm_print_stats(stdout, &map);
    printf("\n");
    int res = hm_render(&map, &a.render, a.out);
    hm_free(&map);
    return res < 0 ? 1 : 0;
}

/* heapmap regions: every "HEAPMAP region" section of a kernel's output,
 * stacked in one picture (regions.c), or the one --region names. */
static int regions_main(int argc, char** argv)
{
    struct args a = { 0 };
    a.out = "heapmap";
    a.region = SIZE_MAX;
    if (parse_args(argc, argv, &a) < 0) {
        usage();
        return 2;
    }
    size_t len = 0, count = 0;
    unsigned char* data = hm_read_file(a.input, &len);
    struct hm_section* sections = data != NULL ? hm_parse_regions(data, len, &count) : NULL;
    struct hm_window window;
    int found = sections != NULL && a.region == SIZE_MAX && !a.no_window ? hm_parse_window(data, len, sections, count,
                                                                                             &window)
                                                                          : 1;
    free(data);
    if (sections == NULL || found < 0) {
        hm_free_regions(sections, count);
        return 1;
    }
    int res = 0;
    if (a.region == SIZE_MAX) {
        res = hm_render_regions(sections, count, found == 0 ? &window : NULL, &a.render, a.out);
        if (found == 0) {
            hm_free_window(&window);
        }
    } else if (a.region < count) {
        res = hm_render_regions(&sections[a.region], 1, NULL, &a.render, a.out);
    } else {
        fprintf(stderr, "heapmap: --region %zu: the input has regions 0..%zu\n", a.region, count - 1);
        res = -1;
    }
    hm_free_regions(sections, count);
    return res < 0 ? 1 : 0;
}

int main(int argc, char** argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage();
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "replay") == 0) {
        return hm_replay_main(argc - 1, argv + 1);
    }
    if (strcmp(argv[1], "text") == 0) {
        return text_main(argc - 2, argv + 2);
    }
    if (strcmp(argv[1], "regions") == 0) {
        return regions_main(argc - 2, argv + 2);
    }
    if (strcmp(argv[1], "render") == 0) {
        return render_main(argc - 2, argv + 2);
    }
    return render_main(argc - 1, argv + 1);
}
