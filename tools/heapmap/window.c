/*
 * tools/heapmap/window.c - the kvmalloc window of a kernel's log, and the
 * link between each window allocation and the region blocks behind it.
 *
 * The x86_64 kernel (PEACHOS_KHEAP_VMALLOC) prints, after its region
 * sections (src/kernel/regions_print.c):
 *
 *   HEAPMAP window range=A..B table=T backing=R blocks=N sources=S
 *   kheap window: total=.. used=.. ... backing=K map_failures=..
 *   HEAPMAP v1 blocks=N per_char=1 width=128      (the window heap's map)
 *   ...
 *   HEAPMAP end ...
 *   HEAPMAP backing alloc=1 window=0 blocks=48 runs=7 0:10+3 0:20+4 ...
 *   HEAPMAP backing end allocations=.. blocks=.. runs=.. lines=.. outside_regions=..
 *
 * A backing line: window blocks W..W+N-1 of allocation A are backed, in
 * order, by the runs K:B+C (region K's blocks B..B+C-1); an allocation with
 * many runs takes several lines. heapmap regions draws the window as a
 * section of its own below the regions: each window allocation filled in
 * a colour of its own, the region cells that hold its backing blocks
 * framed in that colour, and a legend that lists them. The window is
 * mostly free: its grid stops one free row after the row of its last used
 * block (unless --whole-window), with a line that names the free blocks
 * left out; its statistics are still the whole window's.
 */
#define _GNU_SOURCE
#include <cairo.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "heapmap.h"

#define HM_WINDOW_TAG "HEAPMAP window "
#define HM_BACKING_TAG "HEAPMAP backing "
#define HM_LISTED 12   /* allocations listed in the legend */
#define HM_LIST_RUNS 8 /* runs named per listed allocation */
#define HM_ROW 19

static const unsigned hm_alloc_colours[] = { 0x8e24aa, 0x00897b, 0xd81b60, 0xf9a825,
                                             0x6d4c41, 0x00acc1, 0x7cb342, 0x3949ab };
#define HM_NCOLOURS (sizeof(hm_alloc_colours) / sizeof(hm_alloc_colours[0]))

unsigned hm_window_colour(size_t alloc)
{
    return hm_alloc_colours[(alloc - 1) % HM_NCOLOURS];
}

static bool hm_bad(const char* why, size_t a)
{
    fprintf(stderr, "heapmap: the window section: %s (%zu)\n", why, a);
    return false;
}

static bool hm_add_run(struct hm_window* w, size_t alloc, size_t window, size_t region, size_t block, size_t count)
{
    if (w->nruns % 64 == 0) {
        struct hm_run* more = realloc(w->runs, (w->nruns + 64) * sizeof(*more));
        if (more == NULL) {
            return false;
        }
        w->runs = more;
    }
    w->runs[w->nruns++] = (struct hm_run){ alloc, window, region, block, count };
    return true;
}

/* "HEAPMAP backing alloc=A window=W blocks=N runs=R K:B+C ..." */
static bool hm_backing_line(const char* at, struct hm_window* w)
{
    size_t alloc = 0, window = 0, blocks = 0, runs = 0, got = 0, sum = 0;
    int used = 0;
    if (sscanf(at, HM_BACKING_TAG "alloc=%zu window=%zu blocks=%zu runs=%zu%n", &alloc, &window, &blocks, &runs,
               &used) != 4) {
        return hm_bad("a backing line does not parse", w->nruns);
    }
    at += used;
    size_t k, b, c;
    while (sscanf(at, " %zu:%zu+%zu%n", &k, &b, &c, &used) == 3) {
        if (c == 0 || !hm_add_run(w, alloc, window + sum, k, b, c)) {
            return hm_bad("an empty run", alloc);
        }
        sum += c;
        got++;
        at += used;
    }
    at += strspn(at, " \t\r");
    return *at != '\0' ? hm_bad("a backing line ends in something else", alloc)
           : got != runs ? hm_bad("a backing line has another number of runs", alloc)
           : sum != blocks ? hm_bad("a backing line's runs do not add up to its blocks", alloc)
                            : true;
}

/* The section's lines: header, kheap window statistics, backing lines;
 * *map_number the text map after the header (1-based). 1: no window. */
static int hm_scan(const unsigned char* data, size_t len, struct hm_window* w, size_t* map_number)
{
    size_t maps = 0, next = 0, end_allocs = 0, end_blocks = 0, end_runs = 0;
    bool header = false, ended = false, ok = true;
    for (size_t i = 0; i < len && ok; i = next) {
        char* line = hm_next_line(data, len, i, &next);
        if (line == NULL) {
            return -1;
        }
        const char* at;
        if (strstr(line, "HEAPMAP v1 ") != NULL) {
            maps++;
            *map_number = header && *map_number == 0 ? maps : *map_number;
        } else if ((at = strstr(line, HM_WINDOW_TAG "range=")) != NULL) {
            ok = !header || hm_bad("two window sections", 2);
            header = true;
            ok = ok && (sscanf(at, HM_WINDOW_TAG "range=%llx..%llx table=%llx backing=%llx blocks=%zu sources=%zu",
                               &w->start, &w->end, &w->table, &w->backing_addr, &w->blocks, &w->sources) == 6 ||
                        hm_bad("its HEAPMAP window line does not parse", 0));
        } else if (header && (at = strstr(line, "kheap window: ")) != NULL) {
            const char* k = strstr(at, " backing=");
            const char* m = strstr(at, " map_failures=");
            w->backing_count = k != NULL ? strtoull(k + 9, NULL, 10) : SIZE_MAX;
            w->map_failures = m != NULL ? strtoull(m + 14, NULL, 10) : 0;
        } else if (header && (at = strstr(line, HM_BACKING_TAG "end ")) != NULL) {
            ended = true;
            ok = sscanf(at, HM_BACKING_TAG "end allocations=%zu blocks=%zu runs=%zu", &end_allocs, &end_blocks,
                        &end_runs) == 3 || hm_bad("its backing end line does not parse", 0);
        } else if (header && (at = strstr(line, HM_BACKING_TAG "alloc=")) != NULL) {
            ok = !ended ? hm_backing_line(at, w) : hm_bad("a backing line after the end line", w->nruns);
        }
        free(line);
    }
    if (!header || !ok) {
        return header ? -1 : 1;
    }
    if (*map_number == 0 || !ended) {
        return hm_bad(*map_number == 0 ? "no map after the HEAPMAP window line" : "no HEAPMAP backing end line", 0)
                   ? 0 : -1;
    }
    w->end_allocs = end_allocs;
    w->end_blocks = end_blocks;
    w->end_runs = end_runs;
    return 0;
}

/* Allocations from the runs (numbered 1, 2, ... in window order, lines of
 * one allocation contiguous), each run adjacent to the one before it. */
static bool hm_group(struct hm_window* w)
{
    w->allocs = calloc(w->nruns + 1, sizeof(*w->allocs));
    if (w->allocs == NULL) {
        return false;
    }
    for (size_t i = 0; i < w->nruns; i++) {
        const struct hm_run* r = &w->runs[i];
        struct hm_walloc* a = w->nallocs > 0 ? &w->allocs[w->nallocs - 1] : NULL;
        if (a == NULL || r->alloc != a->index) {
            if (r->alloc != w->nallocs + 1 || (a != NULL && r->window < a->window + a->blocks)) {
                return hm_bad("allocations out of order", r->alloc);
            }
            a = &w->allocs[w->nallocs++];
            *a = (struct hm_walloc){ r->alloc, r->window, 0, i, 0 };
        } else if (r->window != a->window + a->blocks) {
            return hm_bad("an allocation's lines leave a gap in the window", r->alloc);
        }
        a->blocks += r->count;
        a->nruns++;
    }
    return true;
}

/* Every run inside its region, and not in a free part of the region's map. */
static bool hm_check_runs(const struct hm_window* w, const struct hm_section* sections, size_t count)
{
    for (size_t i = 0; i < w->nruns; i++) {
        const struct hm_run* r = &w->runs[i];
        if (r->region >= count || r->block + r->count > sections[r->region].blocks) {
            return hm_bad("a run lies outside every region", r->alloc);
        }
        const struct hm_map* m = &sections[r->region].map;
        for (size_t c = r->block / m->per_cell; c <= (r->block + r->count - 1) / m->per_cell; c++) {
            unsigned char st = m->state[c];
            bool vmap = st == HM_VMAP_FIRST || st == HM_VMAP_MORE || (st == HM_GROUP && m->share[c] > 0);
            if (!vmap) {
                return hm_bad("a backing block is not a VMAP block in its region's map", r->alloc);
            }
        }
    }
    return true;
}

/* The window map's allocations are the backing lines' allocations. */
static bool hm_check_map(const struct hm_window* w)
{
    const struct hm_map* m = &w->map;
    if (m->blocks != w->blocks || w->end - w->start != (unsigned long long)w->blocks * 4096) {
        return hm_bad("its map or range is not its blocks", m->blocks);
    }
    if (!m->stats.known || w->end_allocs != w->nallocs || w->end_runs != w->nruns ||
        w->end_blocks != m->stats.used || (w->backing_count != SIZE_MAX && w->backing_count != m->stats.used)) {
        return hm_bad("the backing lines, the end line and the window's used blocks disagree", w->nallocs);
    }
    if (m->per_cell != 1) {
        return m->stats.allocations == w->nallocs || hm_bad("another number of allocations in the map", w->nallocs);
    }
    size_t found = 0;
    for (size_t c = 0; c < m->ncells; c++) {
        found += m->state[c] == HM_FIRST;
    }
    for (size_t i = 0; i < w->nallocs; i++) {
        const struct hm_walloc* a = &w->allocs[i];
        size_t end = a->window + a->blocks;
        bool ok = end <= m->ncells && m->state[a->window] == HM_FIRST && (end == m->ncells || m->state[end] != HM_MORE);
        for (size_t c = a->window + 1; ok && c < end; c++) {
            ok = m->state[c] == HM_MORE;
        }
        if (!ok) {
            return hm_bad("a backed range is not one allocation of the window's map", a->index);
        }
    }
    return found == w->nallocs || hm_bad("allocations in the window's map with no backing line", found);
}

int hm_parse_window(const unsigned char* data, size_t len, const struct hm_section* sections, size_t count,
                    struct hm_window* w)
{
    memset(w, 0, sizeof(*w));
    w->backing_count = SIZE_MAX;
    size_t map_number = 0;
    int res = hm_scan(data, len, w, &map_number);
    if (res == 0 && hm_parse(data, len, HM_FORMAT_TEXT, map_number, &w->map) < 0) {
        res = -1;
    }
    w->have_map = res == 0;
    if (res == 0 && !(hm_group(w) && hm_check_map(w) && hm_check_runs(w, sections, count))) {
        res = -1;
    }
    if (res != 0) {
        hm_free_window(w);
    }
    return res;
}

void hm_free_window(struct hm_window* w)
{
    if (w->have_map) {
        hm_free(&w->map);
    }
    free(w->runs);
    free(w->allocs);
    memset(w, 0, sizeof(*w));
}

/* The runs of allocation a, as "K:B+C,K:B+C..." (at most max, then "..."). */
static void hm_runs_text(const struct hm_window* w, const struct hm_walloc* a, size_t max, char* out, size_t size)
{
    size_t n = 0;
    out[0] = '\0';
    for (size_t i = 0; i < a->nruns && n < size; i++) {
        const struct hm_run* r = &w->runs[a->first_run + i];
        n += (size_t)snprintf(out + n, size - n, i >= max ? ",..." : "%s%zu:%zu+%zu", i > 0 ? "," : "", r->region,
                              r->block, r->count);
        if (i >= max) {
            break;
        }
    }
}

void hm_print_window(const struct hm_window* w)
{
    printf("window range=0x%016llx..0x%016llx table=0x%016llx backing=0x%016llx ", w->start, w->end, w->table,
           w->backing_addr);
    hm_print_stats(stdout, &w->map);
    printf("\n");
    size_t regions = 0;
    unsigned long long seen = 0;
    for (size_t i = 0; i < w->nruns; i++) {
        seen |= w->runs[i].region < 64 ? 1ull << w->runs[i].region : 0;
    }
    for (; seen != 0; seen &= seen - 1) {
        regions++;
    }
    printf("window_backing count=%zu allocations=%zu runs=%zu regions=%zu map_failures=%zu\n", w->map.stats.used,
           w->nallocs, w->nruns, regions, w->map_failures);
    for (size_t i = 0; i < w->nallocs; i++) {
        const struct hm_walloc* a = &w->allocs[i];
        char runs[4096];
        hm_runs_text(w, a, SIZE_MAX, runs, sizeof(runs));
        printf("walloc %zu window=%zu..%zu address=0x%llx blocks=%zu runs=%zu colour=#%06x backing=%s\n", a->index,
               a->window, a->window + a->blocks - 1, w->start + (unsigned long long)a->window * 4096, a->blocks,
               a->nruns, hm_window_colour(a->index), runs);
    }
}

/* ---- drawing ---- */

static void hm_colour(cairo_t* cr, unsigned rgb)
{
    cairo_set_source_rgb(cr, (rgb >> 16 & 0xff) / 255.0, (rgb >> 8 & 0xff) / 255.0, (rgb & 0xff) / 255.0);
}

static size_t hm_listed(const struct hm_window* w)
{
    return w->nallocs < HM_LISTED ? w->nallocs : HM_LISTED;
}

/* The last cell that is not free (SIZE_MAX: none). */
static size_t hm_last_used(const struct hm_map* m)
{
    size_t last = SIZE_MAX;
    for (size_t c = 0; c < m->ncells; c++) {
        last = m->state[c] == HM_FREE || (m->state[c] == HM_GROUP && m->share[c] == 0) ? last : c;
    }
    return last;
}

void hm_window_view(const struct hm_window* w, const struct hm_render_options* o, struct hm_window_view* v)
{
    memset(v, 0, sizeof(*v));
    v->map = w->map;
    hm_layout(&v->map, o, &v->layout);
    size_t last = hm_last_used(&w->map);
    size_t rows = (last == SIZE_MAX ? 0 : last / v->layout.cols + 1) + 1; /* and one free row */
    if (!o->whole_window && rows < v->layout.rows) {
        struct hm_render_options cut = *o;
        cut.cols = v->layout.cols;
        v->map.ncells = rows * v->layout.cols;
        hm_layout(&v->map, &cut, &v->layout);
    }
    v->drawn_blocks = v->map.ncells * v->map.per_cell < w->map.blocks ? v->map.ncells * v->map.per_cell
                                                                        : w->map.blocks;
    if (v->drawn_blocks < w->map.blocks) { /* the note, between the grid and the legend */
        v->note_y = v->layout.legend_y + 10;
        v->layout.legend_y += HM_ROW + 6;
        v->layout.height += HM_ROW + 6;
    }
    v->height = v->layout.height + (int)(hm_listed(w) + 2 + (w->nallocs > HM_LISTED)) * HM_ROW + 8;
}

/* Allocation a's window cells, filled in its colour (the first block's
 * dark bar stays). */
static void hm_fill_alloc(cairo_t* cr, const struct hm_window* w, const struct hm_walloc* a, const struct hm_layout* l)
{
    int inner = l->cell - l->gap, bar = l->cell >= 12 ? 3 : l->cell >= 4 ? 2 : 1;
    size_t per = w->map.per_cell;
    for (size_t c = a->window / per; c <= (a->window + a->blocks - 1) / per; c++) {
        double x = l->grid_x + (double)(c % l->cols) * l->cell, y = l->grid_y + (double)(c / l->cols) * l->cell;
        int skip = c == a->window / per ? bar : 0;
        cairo_rectangle(cr, x + skip, y, inner - skip, inner);
    }
    hm_colour(cr, hm_window_colour(a->index));
    cairo_fill(cr);
}

/* text at (x, y), cut at its last ',' that leaves room for ",..." when it is wider than max */
static void hm_show_fitted(cairo_t* cr, char* text, double x, double y, double max)
{
    size_t len = strlen(text);
    cairo_text_extents_t ext;
    cairo_text_extents(cr, text, &ext);
    if (ext.x_advance > max) {
        cairo_text_extents(cr, ",...", &ext);
        size_t n = hm_fit(cr, text, len, max - ext.x_advance);
        char* comma = memrchr(text, ',', n);
        snprintf(text + (comma != NULL ? (size_t)(comma - text) : n), 5, ",...");
    }
    cairo_move_to(cr, x, y);
    cairo_show_text(cr, text);
}

void hm_draw_window(cairo_t* cr, const struct hm_window* w, const struct hm_window_view* v,
                    const struct hm_render_options* o)
{
    const struct hm_layout* l = &v->layout;
    hm_draw(cr, &v->map, o, l);
    for (size_t i = 0; i < w->nallocs; i++) {
        hm_fill_alloc(cr, w, &w->allocs[i], l);
    }
    cairo_select_font_face(cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, 13.0);
    double max = l->width - 16 - 35;
    char text[512], runs[256];
    cairo_set_source_rgb(cr, 0.106, 0.122, 0.141);
    if (v->note_y != 0) {
        size_t rest = w->map.blocks - v->drawn_blocks;
        snprintf(text, sizeof(text), "blocks %zu..%zu free, not drawn (%zu blocks, %.4g MiB; counted below)",
                 v->drawn_blocks, w->map.blocks - 1, rest, (double)rest * 4096 / (1024.0 * 1024.0));
        cairo_move_to(cr, l->grid_x, v->note_y);
        cairo_show_text(cr, text);
    }
    double y = l->height - 4;
    snprintf(text, sizeof(text), "%zu window allocations, %zu backing blocks in %zu runs (region:block+count).",
             w->nallocs, w->map.stats.used, w->nruns);
    cairo_move_to(cr, 16, y);
    cairo_show_text(cr, text);
    cairo_move_to(cr, 16, y + HM_ROW);
    cairo_show_text(cr, "Each is filled in its colour here and frames the region cells behind it in that colour.");
    y += HM_ROW;
    for (size_t i = 0; i < hm_listed(w); i++) {
        const struct hm_walloc* a = &w->allocs[i];
        y += HM_ROW;
        hm_colour(cr, hm_window_colour(a->index));
        cairo_rectangle(cr, 16, y - 12, 14, 14);
        cairo_fill(cr);
        hm_runs_text(w, a, HM_LIST_RUNS, runs, sizeof(runs));
        snprintf(text, sizeof(text), "window blocks %zu..%zu (%zu) at 0x%llx <- %zu run%s %s", a->window,
                 a->window + a->blocks - 1, a->blocks, w->start + (unsigned long long)a->window * 4096, a->nruns,
                 a->nruns == 1 ? "" : "s", runs);
        cairo_set_source_rgb(cr, 0.106, 0.122, 0.141);
        hm_show_fitted(cr, text, 35, y, max);
    }
    if (w->nallocs > HM_LISTED) {
        snprintf(text, sizeof(text), "... and %zu more (heapmap's output lists them all)", w->nallocs - HM_LISTED);
        cairo_move_to(cr, 35, y + HM_ROW);
        cairo_show_text(cr, text);
    }
}

/* On region `region`'s picture (layout l): a frame in each allocation's
 * colour around every cell that holds one of its backing blocks. */
void hm_draw_window_marks(cairo_t* cr, const struct hm_window* w, size_t region, const struct hm_map* m,
                          const struct hm_layout* l)
{
    int inner = l->cell - l->gap, t = l->cell >= 8 ? 2 : 1;
    for (size_t i = 0; i < w->nruns; i++) {
        const struct hm_run* r = &w->runs[i];
        if (r->region != region) {
            continue;
        }
        for (size_t c = r->block / m->per_cell; c <= (r->block + r->count - 1) / m->per_cell; c++) {
            double x = l->grid_x + (double)(c % l->cols) * l->cell, y = l->grid_y + (double)(c / l->cols) * l->cell;
            cairo_rectangle(cr, x, y, inner, t);
            cairo_rectangle(cr, x, y + inner - t, inner, t);
            cairo_rectangle(cr, x, y + t, t, inner - 2 * t);
            cairo_rectangle(cr, x + inner - t, y + t, t, inner - 2 * t);
        }
        hm_colour(cr, hm_window_colour(r->alloc));
        cairo_fill(cr);
    }
}
