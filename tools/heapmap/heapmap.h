/*
 * tools/heapmap/heapmap.h - host tool that draws the PeachOS heap's block
 * table as PNG + SVG (cairo), from a raw table dump, a hex listing or the
 * text map heap_dump_map() prints, and replays workloads on a hosted heap.
 * Usage and formats: tools/heapmap/README.md.
 */
#ifndef HEAPMAP_H
#define HEAPMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* What one cell of the picture shows. */
enum hm_cell
{
    HM_FREE = 0,
    HM_FIRST,       /* first block of a plain (heap_malloc) allocation */
    HM_MORE,        /* further block of a plain allocation */
    HM_CACHE_FIRST, /* first block of a small-object cache allocation */
    HM_CACHE_MORE,  /* further block of a cache allocation */
    HM_VMAP_FIRST,  /* first block of a VMAP allocation (a block behind the kvmalloc window) */
    HM_VMAP_MORE,   /* further block of a VMAP allocation */
    HM_INVALID,     /* an entry heap_check would reject (see classify) */
    HM_GROUP,       /* text map with per_char > 1: share[] tenths taken (10 = all) */
    HM_MISSING,     /* text map: no line covered this cell */
};

struct hm_stats
{
    bool known; /* false: grouped text map without its "HEAPMAP end" line */
    size_t used;
    size_t free;
    size_t largest_free;
    size_t allocations;
    bool cache_known; /* cache_blocks is only known per block (per_cell == 1) */
    size_t cache_blocks;
    size_t vmap_blocks; /* known when cache_blocks is */
    size_t invalid; /* cells drawn invalid */
};

struct hm_map
{
    size_t blocks;        /* blocks the map describes */
    size_t per_cell;      /* blocks per cell (text map's per_char) */
    size_t ncells;        /* ceil(blocks / per_cell) */
    size_t width_hint;    /* text map's width, 0 if none */
    unsigned char* state; /* [ncells] enum hm_cell */
    unsigned char* share; /* [ncells] tenths taken, for HM_GROUP */
    unsigned char* bytes; /* [blocks] raw entries, or NULL (text input) */
    struct hm_stats stats;
    const char* source; /* "raw table", "hex table", "text map" */
};

/* input.c: reading an input and parsing it in its format. */
enum hm_format
{
    HM_FORMAT_AUTO,
    HM_FORMAT_RAW,
    HM_FORMAT_HEX,
    HM_FORMAT_TEXT,
};
/* Read all of `path` ("-" = stdin). Returns NULL with a message on stderr. */
unsigned char* hm_read_file(const char* path, size_t* len);
/* Parse an input; map_number: which text map (1-based, 0 = the last). 0 on success. */
int hm_parse(const unsigned char* data, size_t len, enum hm_format format, size_t map_number, struct hm_map* map);

/* textmap.c: the text map of heap_dump_map(), read back (hm_parse with HM_FORMAT_TEXT). */
int hm_parse_text(const unsigned char* data, size_t len, size_t map_number, struct hm_map* map);

/* map.c: a table's entries classified into cells. */
/* Build the map of a table (classification here, statistics by hm_count). */
int hm_from_table(const unsigned char* entries, size_t blocks, struct hm_map* map);
/* A map of `blocks` blocks, per_cell to a cell, every cell HM_FREE. 0 on success. */
int hm_map_alloc(struct hm_map* map, size_t blocks, size_t per_cell);
void hm_free(struct hm_map* map);

/* stats.c: a map's statistics. */
/* Per-block statistics of a map whose cells are single blocks, into map->stats. */
void hm_count(struct hm_map* map);
/* 1 - largest free run / free blocks (0 when nothing is free). */
double hm_fragmentation(size_t free_blocks, size_t largest_free);
/* "blocks=... fragmentation=..." on one line, no newline. */
void hm_print_stats(FILE* out, const struct hm_map* map);

/* text.c: a title broken into lines that fit the picture's width. */
typedef struct _cairo cairo_t;
#define HM_TITLE_LINES 4
struct hm_title
{
    size_t n; /* lines, 0 = no title */
    size_t start[HM_TITLE_LINES], len[HM_TITLE_LINES];
    bool cut; /* the last line is shortened and ends in "..." */
};
/* Bytes of text[0..len) that fit in max pixels in cr's font (whole UTF-8 characters). */
size_t hm_fit(cairo_t* cr, const char* text, size_t len, double max);
void hm_title_font(cairo_t* cr);
/* Break title (NULL: none) into lines no wider than max pixels in the title font. */
void hm_title_wrap(cairo_t* cr, const char* title, double max, struct hm_title* t);
int hm_title_height(const struct hm_title* t);
/* The lines, the first one's baseline at (x, y). */
void hm_draw_title(cairo_t* cr, const char* title, const struct hm_title* t, double x, double y);

/* render.c */
struct hm_render_options
{
    size_t cols;       /* cells per row, 0 = automatic */
    int cell;          /* cell size in pixels, 0 = automatic */
    bool labels;       /* print each entry's hex byte in its cell (raw/hex input) */
    const char* title; /* NULL = none */
    bool whole_window; /* regions: draw every window block, not only up to the last used one */
};
/* Write <prefix>.png and <prefix>.svg; print "image ..." on stdout. 0 on success. */
int hm_render(const struct hm_map* map, const struct hm_render_options* options, const char* prefix);
/* Where the parts of one map's picture go (hm_layout), in pixels from its top left. */
struct hm_layout
{
    size_t cols, rows;
    int cell, gap;
    int label_w, label_step;
    double label_font;
    int title_h;
    struct hm_title title; /* its lines */
    int grid_x, grid_y;
    int legend_y;
    int width, height;
};
void hm_layout(const struct hm_map* map, const struct hm_render_options* o, struct hm_layout* l);
/* Draw one map's picture (title, grid, legend) on cr, at its origin. */
void hm_draw(cairo_t* cr, const struct hm_map* map, const struct hm_render_options* o, const struct hm_layout* l);
/* Write <prefix>.png and <prefix>.svg of width x height pixels, drawn by
 * draw(cr, ctx) on each surface. 0 on success, else a message on stderr. */
typedef void (*hm_draw_fn)(cairo_t* cr, const void* ctx);
int hm_write(const char* prefix, int width, int height, hm_draw_fn draw, const void* ctx);

/* regions.c: the kernel's heap regions (docs/kernel.md), one section each:
 * a "HEAPMAP region k of n pool=A..B table=T blocks=N" line, then its text
 * map. Parse every section of a text input (NULL, with a message on stderr,
 * if there is none or one is bad); draw them one below the other. */
struct hm_section
{
    size_t k, n, blocks;
    unsigned long long pool_start, pool_end, table;
    struct hm_map map;
};
struct hm_section* hm_parse_regions(const unsigned char* data, size_t len, size_t* count);
void hm_free_regions(struct hm_section* sections, size_t count);
/* The line starting at data[i] (up to '\n') as a malloc'd string; *next
 * the offset after it. NULL when out of memory. */
char* hm_next_line(const unsigned char* data, size_t len, size_t i, size_t* next);

/* window.c: the kvmalloc window's section (x86_64 kernel, after the
 * regions): its map and the region blocks behind each window allocation. */
struct hm_run
{
    size_t alloc, window; /* allocation (1-based), first window block it backs */
    size_t region, block, count; /* region k's blocks block..block+count-1 */
};
struct hm_walloc
{
    size_t index, window, blocks; /* window blocks window..window+blocks-1 */
    size_t first_run, nruns;      /* its runs in hm_window.runs */
};
struct hm_window
{
    unsigned long long start, end, table, backing_addr;
    size_t blocks, sources;
    size_t backing_count, map_failures; /* the kheap window line's (SIZE_MAX: none) */
    size_t end_allocs, end_blocks, end_runs;
    bool have_map;
    struct hm_map map;
    struct hm_run* runs;
    size_t nruns;
    struct hm_walloc* allocs;
    size_t nallocs;
};
/* 0: parsed and consistent with itself and the regions' maps; 1: the
 * input has no window section; -1: a bad one (a message on stderr). */
int hm_parse_window(const unsigned char* data, size_t len, const struct hm_section* sections, size_t count,
                    struct hm_window* w);
void hm_free_window(struct hm_window* w);
/* "window ...", "window_backing ..." and one "walloc ..." line per allocation. */
void hm_print_window(const struct hm_window* w);
/* Allocation a's colour (0xRRGGBB), in the window and on the regions. */
unsigned hm_window_colour(size_t alloc);
/* How the window's section is drawn: unless o->whole_window, its rows
 * only up to the last used block's row plus one free row, and a line
 * under them that names the free blocks not drawn. */
struct hm_window_view
{
    struct hm_map map; /* the window's map with only the drawn cells (ncells); blocks and statistics whole */
    struct hm_layout layout;
    size_t drawn_blocks; /* blocks 0..drawn_blocks-1 drawn, the others all free */
    int note_y;          /* baseline of the "not drawn" line (when drawn_blocks < blocks) */
    int height;          /* the map's picture, the note and the list of allocations */
};
void hm_window_view(const struct hm_window* w, const struct hm_render_options* o, struct hm_window_view* v);
void hm_draw_window(cairo_t* cr, const struct hm_window* w, const struct hm_window_view* v,
                    const struct hm_render_options* o);
void hm_draw_window_marks(cairo_t* cr, const struct hm_window* w, size_t region, const struct hm_map* m,
                          const struct hm_layout* l);

/* Print a "region ..." line per section, a "regions ..." totals line, the
 * window's lines when `window` is not NULL, a "section ..." line per
 * section's place in the picture (the window's last, "section window"),
 * then "image ...". */
int hm_render_regions(const struct hm_section* sections, size_t count, const struct hm_window* window,
                      const struct hm_render_options* options, const char* prefix);

/* replay.c (its parts share replay.h) */
int hm_replay_main(int argc, char** argv);

#endif /* HEAPMAP_H */
