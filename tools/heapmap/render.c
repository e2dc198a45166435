/*
 * tools/heapmap/render.c - draw a map with cairo, once on an image surface
 * (written as PNG) and once on an SVG surface, with the same code.
 *
 * Picture: a title, a grid of cells (row labels = first block of the row in
 * hex, as in the text map), then a legend with the colours and statistics.
 * Allocation boundaries: the first block of every allocation is darker and
 * has a dark bar on its left edge, and the further blocks of consecutive
 * allocations alternate between two shades.
 */
#define _POSIX_C_SOURCE 200809L
#include <cairo-svg.h>
#include <cairo.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "heapmap.h"
#include "memory/heap/heap.h"

struct hm_rgb
{
    double r, g, b;
};

#define HM_RGB(hex) { ((hex) >> 16 & 0xff) / 255.0, ((hex) >> 8 & 0xff) / 255.0, ((hex)&0xff) / 255.0 }

static const struct hm_rgb hm_background = HM_RGB(0xffffff);
static const struct hm_rgb hm_ink = HM_RGB(0x1b1f24);
static const struct hm_rgb hm_free_rgb = HM_RGB(0xe3e7ec);
static const struct hm_rgb hm_first_rgb = HM_RGB(0x1d4f8c);
static const struct hm_rgb hm_more_rgb[2] = { HM_RGB(0x4f8fd6), HM_RGB(0x86b6ea) };
static const struct hm_rgb hm_cache_first_rgb = HM_RGB(0x9c4a06);
static const struct hm_rgb hm_cache_more_rgb[2] = { HM_RGB(0xee9a3a), HM_RGB(0xf6c27f) };
static const struct hm_rgb hm_vmap_first_rgb = HM_RGB(0x1b5e20);
static const struct hm_rgb hm_vmap_more_rgb[2] = { HM_RGB(0x4caf50), HM_RGB(0x9ccc65) };
static const struct hm_rgb hm_edge_rgb = HM_RGB(0x0a1a33);
static const struct hm_rgb hm_invalid_rgb = HM_RGB(0xd62728);
static const struct hm_rgb hm_missing_rgb = HM_RGB(0x9a9a9a);
static const struct hm_rgb hm_group_full_rgb = HM_RGB(0x1d4f8c);

#define HM_MARGIN 16
#define HM_TEXT 13.0
#define HM_LINE 19
#define HM_SWATCH 14
#define HM_MIN_WIDTH 660
#define HM_VMAP_LEGEND_WIDTH 80 /* the legend's "vmap" swatch, drawn only when there are VMAP blocks */

static void hm_set(cairo_t* cr, struct hm_rgb c)
{
    cairo_set_source_rgb(cr, c.r, c.g, c.b);
}

static struct hm_rgb hm_blend(struct hm_rgb a, struct hm_rgb b, double t)
{
    struct hm_rgb c = { a.r + (b.r - a.r) * t, a.g + (b.g - a.g) * t, a.b + (b.b - a.b) * t };
    return c;
}

static bool hm_dark(struct hm_rgb c)
{
    return 0.299 * c.r + 0.587 * c.g + 0.114 * c.b < 0.55;
}

static struct hm_rgb hm_cell_rgb(unsigned char state, unsigned char share, size_t parity)
{
    switch (state) {
    case HM_FREE: return hm_free_rgb;
    case HM_FIRST: return hm_first_rgb;
    case HM_MORE: return hm_more_rgb[parity & 1];
    case HM_CACHE_FIRST: return hm_cache_first_rgb;
    case HM_CACHE_MORE: return hm_cache_more_rgb[parity & 1];
    case HM_VMAP_FIRST: return hm_vmap_first_rgb;
    case HM_VMAP_MORE: return hm_vmap_more_rgb[parity & 1];
    case HM_INVALID: return hm_invalid_rgb;
    case HM_GROUP: return hm_blend(hm_free_rgb, hm_group_full_rgb, share >= 10 ? 1.0 : 0.12 + 0.08 * share);
    default: return hm_missing_rgb;
    }
}

static void hm_font(cairo_t* cr, bool mono, double size)
{
    cairo_select_font_face(cr, mono ? "DejaVu Sans Mono" : "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL,
                           CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, size);
}

static double hm_text_width(cairo_t* cr, const char* text)
{
    cairo_text_extents_t ext;
    cairo_text_extents(cr, text, &ext);
    return ext.x_advance;
}

void hm_layout(const struct hm_map* map, const struct hm_render_options* o, struct hm_layout* l)
{
    memset(l, 0, sizeof(*l));
    size_t n = map->ncells;
    l->cols = o->cols != 0 ? o->cols
              : map->width_hint != 0 ? map->width_hint
              : n <= 64      ? 16
              : n <= 512     ? 32
              : n <= 8192    ? 64
              : n <= 32768   ? 128
              : n <= 131072  ? 256
                             : 512;
    l->rows = n / l->cols + (n % l->cols != 0);
    if (o->cell > 0) {
        l->cell = o->cell;
    } else {
        long cell = 768 / (long)l->cols;
        cell = cell > 32 ? 32 : cell < 2 ? 2 : cell;
        while (cell > 1 && (long)l->rows * cell > 1600) {
            cell--;
        }
        l->cell = (int)cell;
    }
    l->gap = l->cell >= 6 ? 1 : 0;
    l->label_font = l->cell >= 12 ? 11.0 : 10.0;
    l->label_step = (int)(14 / l->cell) + (14 % l->cell != 0);
    l->label_step = l->label_step < 1 ? 1 : l->label_step;

    cairo_surface_t* scratch = cairo_image_surface_create(CAIRO_FORMAT_RGB24, 8, 8);
    cairo_t* cr = cairo_create(scratch);
    hm_font(cr, true, l->label_font);
    l->label_w = (int)(hm_text_width(cr, "00000000") + 8.5);
    l->grid_x = HM_MARGIN + l->label_w;
    int grid_right = l->grid_x + (int)l->cols * l->cell + HM_MARGIN;
    int min_width = HM_MIN_WIDTH + (map->stats.vmap_blocks > 0 ? HM_VMAP_LEGEND_WIDTH : 0);
    l->width = grid_right > min_width ? grid_right : min_width;
    hm_title_wrap(cr, o->title, l->width - 2 * HM_MARGIN, &l->title); /* nothing past the right margin */
    cairo_destroy(cr);
    cairo_surface_destroy(scratch);

    l->title_h = hm_title_height(&l->title);
    l->grid_y = HM_MARGIN + l->title_h;
    l->legend_y = l->grid_y + (int)l->rows * l->cell + 14;
    l->height = l->legend_y + HM_SWATCH + 10 + 4 * HM_LINE + HM_MARGIN;
}

/* Colours of the grid, as indices so that each colour is filled once. */
enum
{
    HM_P_FREE,
    HM_P_FIRST,
    HM_P_MORE0,
    HM_P_MORE1,
    HM_P_CACHE_FIRST,
    HM_P_CACHE_MORE0,
    HM_P_CACHE_MORE1,
    HM_P_VMAP_FIRST,
    HM_P_VMAP_MORE0,
    HM_P_VMAP_MORE1,
    HM_P_INVALID,
    HM_P_MISSING,
    HM_P_GROUP, /* + share (1..10) */
    HM_P_COUNT = HM_P_GROUP + 11,
};

static unsigned char hm_palette_index(unsigned char state, unsigned char share, size_t parity)
{
    switch (state) {
    case HM_FREE: return HM_P_FREE;
    case HM_FIRST: return HM_P_FIRST;
    case HM_MORE: return (unsigned char)(HM_P_MORE0 + (parity & 1));
    case HM_CACHE_FIRST: return HM_P_CACHE_FIRST;
    case HM_CACHE_MORE: return (unsigned char)(HM_P_CACHE_MORE0 + (parity & 1));
    case HM_VMAP_FIRST: return HM_P_VMAP_FIRST;
    case HM_VMAP_MORE: return (unsigned char)(HM_P_VMAP_MORE0 + (parity & 1));
    case HM_INVALID: return HM_P_INVALID;
    case HM_GROUP: return (unsigned char)(HM_P_GROUP + (share > 10 ? 10 : share));
    default: return HM_P_MISSING;
    }
}

static struct hm_rgb hm_palette_rgb(unsigned char p)
{
    static const unsigned char state[HM_P_GROUP] = { HM_FREE,       HM_FIRST,      HM_MORE,       HM_MORE,
                                                     HM_CACHE_FIRST, HM_CACHE_MORE, HM_CACHE_MORE, HM_VMAP_FIRST,
                                                     HM_VMAP_MORE,  HM_VMAP_MORE,  HM_INVALID,    HM_MISSING };
    if (p >= HM_P_GROUP) {
        return hm_cell_rgb(HM_GROUP, (unsigned char)(p - HM_P_GROUP), 0);
    }
    return hm_cell_rgb(state[p], 0, p == HM_P_MORE1 || p == HM_P_CACHE_MORE1 || p == HM_P_VMAP_MORE1);
}

/*
 * The grid: every colour is one path of rectangles (runs of equal cells in
 * a row are one rectangle), then the 1-pixel gaps as white lines, then the
 * allocation edges, invalid crosses and labels. Few, large SVG elements.
 */
static void hm_draw_grid(cairo_t* cr, const struct hm_map* map, const struct hm_render_options* o,
                         const struct hm_layout* l)
{
    unsigned char* pal = malloc(map->ncells);
    if (pal == NULL) {
        return;
    }
    size_t parity = 0;
    for (size_t i = 0; i < map->ncells; i++) {
        unsigned char st = map->state[i];
        parity += st == HM_FIRST || st == HM_CACHE_FIRST || st == HM_VMAP_FIRST;
        pal[i] = hm_palette_index(st, map->share[i], parity);
    }
    int inner = l->cell - l->gap;
    for (unsigned char p = 0; p < HM_P_COUNT; p++) {
        bool any = false;
        for (size_t row = 0; row < l->rows; row++) {
            size_t first = row * l->cols;
            size_t n = first + l->cols < map->ncells ? l->cols : map->ncells - first;
            for (size_t k = 0; k < n;) {
                if (pal[first + k] != p) {
                    k++;
                    continue;
                }
                size_t m = k + 1;
                while (m < n && pal[first + m] == p) {
                    m++;
                }
                cairo_rectangle(cr, l->grid_x + (double)k * l->cell, l->grid_y + (double)row * l->cell,
                                (double)(m - k) * l->cell, l->cell);
                any = true;
                k = m;
            }
        }
        if (any) {
            hm_set(cr, hm_palette_rgb(p));
            cairo_fill(cr);
        }
    }
    if (l->gap != 0) {
        for (size_t k = 1; k <= l->cols; k++) {
            cairo_rectangle(cr, l->grid_x + (double)k * l->cell - 1, l->grid_y, 1, (double)l->rows * l->cell);
        }
        for (size_t r = 1; r <= l->rows; r++) {
            cairo_rectangle(cr, l->grid_x, l->grid_y + (double)r * l->cell - 1, (double)l->cols * l->cell, 1);
        }
        hm_set(cr, hm_background);
        cairo_fill(cr);
    }
    /* allocation boundaries: a dark bar on the left edge of each first block */
    int bar = l->cell >= 12 ? 3 : l->cell >= 4 ? 2 : 1;
    bool crosses = false;
    for (size_t i = 0; i < map->ncells; i++) {
        unsigned char st = map->state[i];
        double x = l->grid_x + (double)(i % l->cols) * l->cell;
        double y = l->grid_y + (double)(i / l->cols) * l->cell;
        if (st == HM_FIRST || st == HM_CACHE_FIRST || st == HM_VMAP_FIRST) {
            cairo_rectangle(cr, x, y, bar, inner);
        }
        crosses = crosses || (st == HM_INVALID && l->cell >= 10);
    }
    hm_set(cr, hm_edge_rgb);
    cairo_fill(cr);
    if (crosses) {
        for (size_t i = 0; i < map->ncells; i++) {
            if (map->state[i] == HM_INVALID) {
                double x = l->grid_x + (double)(i % l->cols) * l->cell;
                double y = l->grid_y + (double)(i / l->cols) * l->cell;
                cairo_move_to(cr, x + 3, y + 3);
                cairo_line_to(cr, x + inner - 3, y + inner - 3);
                cairo_move_to(cr, x + inner - 3, y + 3);
                cairo_line_to(cr, x + 3, y + inner - 3);
            }
        }
        cairo_set_source_rgb(cr, 1, 1, 1);
        cairo_set_line_width(cr, l->cell >= 20 ? 2.0 : 1.0);
        cairo_stroke(cr);
    }
    /* each entry's byte, for small tables */
    if (o->labels && map->bytes != NULL && l->cell >= 18) {
        hm_font(cr, true, l->label_font);
        for (size_t i = 0; i < map->ncells; i++) {
            unsigned char st = map->state[i];
            double x = l->grid_x + (double)(i % l->cols) * l->cell;
            double y = l->grid_y + (double)(i / l->cols) * l->cell;
            char text[4];
            snprintf(text, sizeof(text), "%02x", map->bytes[i]);
            double w = hm_text_width(cr, text);
            if (st == HM_INVALID) { /* keep the label readable over the cross */
                hm_set(cr, hm_invalid_rgb);
                cairo_rectangle(cr, x + inner / 2.0 - w / 2 - 1, y + inner * 0.62 - l->cell * 0.3, w + 2,
                                l->cell * 0.38);
                cairo_fill(cr);
            }
            if (hm_dark(hm_palette_rgb(pal[i]))) {
                cairo_set_source_rgb(cr, 1, 1, 1);
            } else {
                hm_set(cr, hm_ink);
            }
            bool first = st == HM_FIRST || st == HM_CACHE_FIRST || st == HM_VMAP_FIRST;
            cairo_move_to(cr, x + inner / 2.0 - w / 2 + (first ? 1 : 0), y + inner * 0.62);
            cairo_show_text(cr, text);
        }
    }
    /* row labels: first block of the row, as in the text map */
    hm_font(cr, true, l->label_font);
    hm_set(cr, hm_ink);
    for (size_t row = 0; row < l->rows; row += (size_t)l->label_step) {
        char text[32];
        snprintf(text, sizeof(text), "%08zx", row * l->cols * map->per_cell);
        double w = hm_text_width(cr, text);
        cairo_move_to(cr, l->grid_x - 6 - w, l->grid_y + (double)row * l->cell + (l->cell < 10 ? 10 : l->cell / 2.0 + 4));
        cairo_show_text(cr, text);
    }
    free(pal);
}

/* One legend entry: swatch + text; returns the x after it. */
static double hm_swatch(cairo_t* cr, double x, double y, struct hm_rgb c, bool edge, bool cross, const char* text)
{
    hm_set(cr, c);
    cairo_rectangle(cr, x, y, HM_SWATCH, HM_SWATCH);
    cairo_fill(cr);
    if (edge) {
        hm_set(cr, hm_edge_rgb);
        cairo_rectangle(cr, x, y, 3, HM_SWATCH);
        cairo_fill(cr);
    }
    if (cross) {
        cairo_set_source_rgb(cr, 1, 1, 1);
        cairo_set_line_width(cr, 1.0);
        cairo_move_to(cr, x + 3, y + 3);
        cairo_line_to(cr, x + HM_SWATCH - 3, y + HM_SWATCH - 3);
        cairo_move_to(cr, x + HM_SWATCH - 3, y + 3);
        cairo_line_to(cr, x + 3, y + HM_SWATCH - 3);
        cairo_stroke(cr);
    }
    hm_font(cr, false, HM_TEXT);
    hm_set(cr, hm_ink);
    cairo_move_to(cr, x + HM_SWATCH + 5, y + HM_SWATCH - 2);
    cairo_show_text(cr, text);
    return x + HM_SWATCH + 5 + hm_text_width(cr, text) + 16;
}

static void hm_draw_legend(cairo_t* cr, const struct hm_map* map, const struct hm_layout* l)
{
    const struct hm_stats* s = &map->stats;
    double x = HM_MARGIN;
    double y = l->legend_y;
    size_t missing = 0;
    for (size_t i = 0; i < map->ncells; i++) {
        missing += map->state[i] == HM_MISSING;
    }
    if (map->per_cell == 1) {
        x = hm_swatch(cr, x, y, hm_free_rgb, false, false, "free");
        x = hm_swatch(cr, x, y, hm_first_rgb, true, false, "first block");
        hm_set(cr, hm_more_rgb[0]);
        cairo_rectangle(cr, x, y, HM_SWATCH / 2.0, HM_SWATCH);
        cairo_fill(cr);
        x = hm_swatch(cr, x + HM_SWATCH / 2.0, y, hm_more_rgb[1], false, false, "further blocks") ;
        x = hm_swatch(cr, x, y, hm_cache_first_rgb, true, false, "cache first");
        hm_set(cr, hm_cache_more_rgb[0]);
        cairo_rectangle(cr, x, y, HM_SWATCH / 2.0, HM_SWATCH);
        cairo_fill(cr);
        x = hm_swatch(cr, x + HM_SWATCH / 2.0, y, hm_cache_more_rgb[1], false, false, "cache further");
        if (s->vmap_blocks > 0) { /* only where the kvmalloc window took blocks: the row stays short */
            x = hm_swatch(cr, x, y, hm_vmap_first_rgb, true, false, "vmap");
        }
    } else {
        x = hm_swatch(cr, x, y, hm_free_rgb, false, false, "all free");
        for (int d = 1; d <= 9; d++) {
            hm_set(cr, hm_cell_rgb(HM_GROUP, (unsigned char)d, 0));
            cairo_rectangle(cr, x + (d - 1) * 7, y, 7, HM_SWATCH);
            cairo_fill(cr);
        }
        hm_font(cr, false, HM_TEXT);
        hm_set(cr, hm_ink);
        cairo_move_to(cr, x + 9 * 7 + 5, y + HM_SWATCH - 2);
        cairo_show_text(cr, "taken share (tenths, rounded up)");
        x += 9 * 7 + 5 + hm_text_width(cr, "taken share (tenths, rounded up)") + 16;
        x = hm_swatch(cr, x, y, hm_group_full_rgb, false, false, "all taken");
    }
    x = hm_swatch(cr, x, y, hm_invalid_rgb, false, true, "invalid");
    if (missing > 0) {
        hm_swatch(cr, x, y, hm_missing_rgb, false, false, "missing");
    }

    char line[4][320];
    double mib = (double)map->blocks * PEACHOS_HEAP_BLOCK_SIZE / (1024.0 * 1024.0);
    snprintf(line[0], sizeof(line[0]), "%zu blocks of %d bytes (%.4g MiB) from a %s; %s; row = %zu blocks",
             map->blocks, PEACHOS_HEAP_BLOCK_SIZE, mib, map->source,
             map->per_cell == 1 ? "1 cell = 1 block" : "1 cell = a group of blocks", l->cols * map->per_cell);
    if (map->per_cell > 1) {
        snprintf(line[0], sizeof(line[0]), "%zu blocks of %d bytes (%.4g MiB) from a %s; 1 cell = %zu blocks",
                 map->blocks, PEACHOS_HEAP_BLOCK_SIZE, mib, map->source, map->per_cell);
    }
    if (s->known) {
        double total = (double)(s->used + s->free);
        snprintf(line[1], sizeof(line[1]),
                 "used %zu blocks (%.1f%%)    free %zu    largest free run %zu    allocations %zu", s->used,
                 total > 0 ? 100.0 * (double)s->used / total : 0.0, s->free, s->largest_free, s->allocations);
        snprintf(line[2], sizeof(line[2]), "fragmentation %.3f  = 1 - largest free run / free blocks",
                 hm_fragmentation(s->free, s->largest_free));
    } else {
        snprintf(line[1], sizeof(line[1]), "statistics unknown: the map has no \"HEAPMAP end\" line");
        line[2][0] = '\0';
    }
    line[3][0] = '\0';
    if (s->cache_known || s->invalid > 0 || missing > 0) {
        int n = 0;
        if (s->cache_known) {
            n += snprintf(line[3] + n, sizeof(line[3]) - (size_t)n, "cache blocks %zu    ", s->cache_blocks);
            if (s->vmap_blocks > 0) {
                n += snprintf(line[3] + n, sizeof(line[3]) - (size_t)n, "vmap blocks %zu    ", s->vmap_blocks);
            }
        }
        n += snprintf(line[3] + n, sizeof(line[3]) - (size_t)n, "invalid %s %zu", map->per_cell == 1 ? "blocks" : "cells",
                      s->invalid);
        if (missing > 0) {
            snprintf(line[3] + n, sizeof(line[3]) - (size_t)n, "    missing cells %zu", missing);
        }
    }
    hm_font(cr, false, HM_TEXT);
    hm_set(cr, hm_ink);
    for (int i = 0; i < 4; i++) {
        cairo_move_to(cr, HM_MARGIN, y + HM_SWATCH + 8 + HM_LINE * (i + 1) - 4);
        cairo_show_text(cr, line[i]);
    }
}

void hm_draw(cairo_t* cr, const struct hm_map* map, const struct hm_render_options* o, const struct hm_layout* l)
{
    hm_set(cr, hm_background);
    cairo_paint(cr);
    cairo_set_antialias(cr, CAIRO_ANTIALIAS_DEFAULT);
    hm_set(cr, hm_ink);
    hm_draw_title(cr, o->title, &l->title, HM_MARGIN, HM_MARGIN + 14);
    hm_draw_grid(cr, map, o, l);
    hm_draw_legend(cr, map, l);
}

int hm_write(const char* prefix, int width, int height, hm_draw_fn draw, const void* ctx)
{
    size_t plen = strlen(prefix) + 5;
    char* png = malloc(plen);
    char* svg = malloc(plen);
    int res = -1;
    if (png == NULL || svg == NULL) {
        goto out;
    }
    snprintf(png, plen, "%s.png", prefix);
    snprintf(svg, plen, "%s.svg", prefix);

    cairo_surface_t* image = cairo_image_surface_create(CAIRO_FORMAT_RGB24, width, height);
    cairo_t* cr = cairo_create(image);
    draw(cr, ctx);
    cairo_destroy(cr);
    cairo_status_t status = cairo_surface_write_to_png(image, png);
    cairo_surface_destroy(image);
    if (status != CAIRO_STATUS_SUCCESS) {
        fprintf(stderr, "heapmap: cannot write %s: %s\n", png, cairo_status_to_string(status));
        goto out;
    }

    cairo_surface_t* vector = cairo_svg_surface_create(svg, width, height);
    cairo_svg_surface_set_document_unit(vector, CAIRO_SVG_UNIT_PX);
    cr = cairo_create(vector);
    draw(cr, ctx);
    cairo_destroy(cr);
    cairo_surface_finish(vector);
    status = cairo_surface_status(vector);
    cairo_surface_destroy(vector);
    if (status != CAIRO_STATUS_SUCCESS) {
        fprintf(stderr, "heapmap: cannot write %s: %s\n", svg, cairo_status_to_string(status));
        goto out;
    }
    res = 0;
out:
    free(png);
    free(svg);
    return res;
}

struct hm_one
{
    const struct hm_map* map;
    const struct hm_render_options* options;
    const struct hm_layout* layout;
};

static void hm_draw_one(cairo_t* cr, const void* ctx)
{
    const struct hm_one* one = ctx;
    hm_draw(cr, one->map, one->options, one->layout);
}

int hm_render(const struct hm_map* map, const struct hm_render_options* options, const char* prefix)
{
    struct hm_layout l;
    hm_layout(map, options, &l);
    struct hm_one one = { map, options, &l };
    if (hm_write(prefix, l.width, l.height, hm_draw_one, &one) < 0) {
        return -1;
    }
    printf("image png=%s.png svg=%s.svg width=%d height=%d grid_x=%d grid_y=%d cell=%d gap=%d cols=%zu rows=%zu\n",
           prefix, prefix, l.width, l.height, l.grid_x, l.grid_y, l.cell, l.gap, l.cols, l.rows);
    return 0;
}
