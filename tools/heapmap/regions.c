/*
 * tools/heapmap/regions.c - every heap region of a kernel in one picture.
 *
 * A kernel with several regions (PEACHOS_KHEAP_REGIONS, docs/kernel.md)
 * prints one section per region at the end of its self-test:
 *
 *   HEAPMAP region 1 of 3 pool=0x00000000074b9000..0x00000000bffe0000 table=0x0000000007400000 blocks=756519
 *   (its statistics)
 *   HEAPMAP v1 blocks=756519 per_char=739 width=64
 *   ...
 *   HEAPMAP end used=.. free=.. largest_free=.. allocations=.. rejected_frees=..
 *
 * Each section becomes a map of its own (map.c parses it), titled with its
 * addresses, and the pictures are drawn one below the other, lowest
 * address first, so fragmentation can be seen across the whole machine;
 * then the kvmalloc window's section when the log has one (window.c).
 */
#define _GNU_SOURCE /* memmem */
#include <cairo.h>
#include <stdlib.h>
#include <string.h>

#include "heapmap.h"

#define HM_REGION_TAG "HEAPMAP region "
#define HM_MAP_TAG "HEAPMAP v1 "

char* hm_next_line(const unsigned char* data, size_t len, size_t i, size_t* next)
{
    size_t j = i;
    while (j < len && data[j] != '\n') {
        j++;
    }
    *next = j + 1;
    char* line = malloc(j - i + 1);
    if (line != NULL) {
        memcpy(line, data + i, j - i);
        line[j - i] = '\0';
    }
    return line;
}

/* "HEAPMAP region k of n pool=A..B table=T blocks=N" into *s. */
static bool hm_region_line(const char* line, struct hm_section* s)
{
    const char* at = strstr(line, HM_REGION_TAG);
    return at != NULL && sscanf(at, HM_REGION_TAG "%zu of %zu pool=%llx..%llx table=%llx blocks=%zu", &s->k, &s->n,
                                &s->pool_start, &s->pool_end, &s->table, &s->blocks) == 6;
}

/* The region lines, each with the number (1-based) of the text map after it. */
static size_t hm_find_sections(const unsigned char* data, size_t len, struct hm_section* out, size_t* map_numbers,
                               size_t max)
{
    size_t count = 0, maps = 0, next = 0;
    bool waiting = false; /* a region line whose map has not begun yet */
    for (size_t i = 0; i < len; i = next) {
        char* line = hm_next_line(data, len, i, &next);
        if (line == NULL) {
            break;
        }
        if (strstr(line, HM_MAP_TAG) != NULL) {
            maps++;
            if (waiting) {
                map_numbers[count++] = maps;
                waiting = false;
            }
        } else if (count < max && hm_region_line(line, &out[count])) {
            waiting = true;
        }
        free(line);
    }
    return count;
}

static bool hm_section_agrees(const struct hm_section* s, size_t index, size_t count)
{
    const char* why = s->k != index          ? "sections out of order or missing"
                      : s->n != count         ? "the region count differs from the sections found"
                      : s->map.blocks != s->blocks ? "its map has another block count"
                      : s->pool_end - s->pool_start != (unsigned long long)s->blocks * 4096 ? "its pool is not its blocks"
                                                                                           : NULL;
    if (why != NULL) {
        fprintf(stderr, "heapmap: region %zu of %zu: %s\n", s->k, s->n, why);
    }
    return why == NULL;
}

struct hm_section* hm_parse_regions(const unsigned char* data, size_t len, size_t* count)
{
    size_t max = 256;
    struct hm_section* sections = calloc(max, sizeof(*sections));
    size_t* map_numbers = calloc(max, sizeof(size_t));
    size_t n = sections != NULL && map_numbers != NULL ? hm_find_sections(data, len, sections, map_numbers, max) : 0;
    bool ok = n > 0;
    if (!ok) {
        fprintf(stderr, "heapmap: no \"" HM_REGION_TAG "\" section followed by its map in the input\n");
    }
    size_t parsed = 0;
    for (; ok && parsed < n; parsed++) {
        ok = hm_parse(data, len, HM_FORMAT_TEXT, map_numbers[parsed], &sections[parsed].map) == 0;
        ok = ok && hm_section_agrees(&sections[parsed], parsed, n);
    }
    free(map_numbers);
    if (!ok) {
        hm_free_regions(sections, parsed);
        return NULL;
    }
    *count = n;
    return sections;
}

void hm_free_regions(struct hm_section* sections, size_t count)
{
    for (size_t i = 0; sections != NULL && i < count; i++) {
        hm_free(&sections[i].map);
    }
    free(sections);
}

/* ---- the picture: one map picture per section, stacked ---- */

struct hm_stack
{
    const struct hm_section* sections;
    size_t count; /* the regions; the window, if any, is picture `count` */
    const struct hm_window* window;
    struct hm_render_options* options; /* one per section: its title */
    struct hm_layout* layouts;
    struct hm_window_view view; /* the window's */
    int* y; /* top of each section */
};

static void hm_draw_stack(cairo_t* cr, const void* ctx)
{
    const struct hm_stack* st = ctx;
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    for (size_t i = 0; i < st->count; i++) {
        cairo_save(cr);
        cairo_translate(cr, 0, st->y[i]);
        cairo_rectangle(cr, 0, 0, st->layouts[i].width, st->layouts[i].height);
        cairo_clip(cr);
        hm_draw(cr, &st->sections[i].map, &st->options[i], &st->layouts[i]);
        if (st->window != NULL) {
            hm_draw_window_marks(cr, st->window, st->sections[i].k, &st->sections[i].map, &st->layouts[i]);
        }
        cairo_restore(cr);
    }
    if (st->window != NULL) {
        cairo_save(cr);
        cairo_translate(cr, 0, st->y[st->count]);
        cairo_rectangle(cr, 0, 0, st->view.layout.width, st->view.height);
        cairo_clip(cr);
        hm_draw_window(cr, st->window, &st->view, &st->options[st->count]);
        cairo_restore(cr);
    }
}

static void hm_print_totals(const struct hm_section* sections, size_t count)
{
    size_t blocks = 0, used = 0, free_blocks = 0, largest = 0, allocations = 0;
    bool known = true;
    for (size_t i = 0; i < count; i++) {
        const struct hm_map* m = &sections[i].map;
        printf("region %zu of %zu pool=0x%016llx..0x%016llx table=0x%016llx ", sections[i].k, sections[i].n,
               sections[i].pool_start, sections[i].pool_end, sections[i].table);
        hm_print_stats(stdout, m);
        printf("\n");
        known = known && m->stats.known;
        blocks += m->blocks;
        used += m->stats.used;
        free_blocks += m->stats.free;
        allocations += m->stats.allocations;
        largest = m->stats.largest_free > largest ? m->stats.largest_free : largest;
    }
    if (known) {
        printf("regions count=%zu blocks=%zu used=%zu free=%zu largest_free=%zu allocations=%zu fragmentation=%.4f\n",
               count, blocks, used, free_blocks, largest, allocations, hm_fragmentation(free_blocks, largest));
    } else {
        printf("regions count=%zu blocks=%zu used=? free=? largest_free=? allocations=? fragmentation=?\n", count,
               blocks);
    }
}

int hm_render_regions(const struct hm_section* sections, size_t count, const struct hm_window* window,
                      const struct hm_render_options* options, const char* prefix)
{
    size_t pictures = count + (window != NULL);
    struct hm_stack st = { .sections = sections, .count = count, .window = window,
                           .options = calloc(pictures, sizeof(*st.options)),
                           .layouts = calloc(pictures, sizeof(*st.layouts)), .y = calloc(pictures, sizeof(int)) };
    char(*titles)[256] = calloc(pictures, sizeof(*titles));
    int res = -1, width = 0, height = 0;
    if (st.options != NULL && st.layouts != NULL && st.y != NULL && titles != NULL) {
        for (size_t i = 0; i < count; i++) {
            const struct hm_section* s = &sections[i];
            snprintf(titles[i], sizeof(titles[i]), "%s%sregion %zu of %zu: pool 0x%llx..0x%llx (%zu blocks, %llu MiB), table at 0x%llx",
                     options->title != NULL ? options->title : "", options->title != NULL ? " - " : "", s->k, s->n,
                     s->pool_start, s->pool_end, s->blocks, (s->pool_end - s->pool_start) >> 20, s->table);
            st.options[i] = *options;
            st.options[i].title = titles[i];
            hm_layout(&s->map, &st.options[i], &st.layouts[i]);
            st.y[i] = height;
            height += st.layouts[i].height;
            width = st.layouts[i].width > width ? st.layouts[i].width : width;
        }
        if (window != NULL) {
            snprintf(titles[count], sizeof(titles[count]), "%s%skvmalloc window: 0x%llx..0x%llx (%zu blocks, %llu MiB), "
                     "table at 0x%llx, backing record at 0x%llx", options->title != NULL ? options->title : "",
                     options->title != NULL ? " - " : "", window->start, window->end, window->blocks,
                     (window->end - window->start) >> 20, window->table, window->backing_addr);
            st.options[count] = *options;
            st.options[count].title = titles[count];
            hm_window_view(window, &st.options[count], &st.view);
            st.layouts[count] = st.view.layout;
            st.y[count] = height;
            height += st.view.height;
            width = st.layouts[count].width > width ? st.layouts[count].width : width;
        }
        hm_print_totals(sections, count);
        if (window != NULL) {
            hm_print_window(window);
        }
        res = hm_write(prefix, width, height, hm_draw_stack, &st);
    }
    for (size_t i = 0; res == 0 && i < pictures; i++) {
        const struct hm_layout* l = &st.layouts[i];
        int h = i < count ? l->height : st.view.height;
        if (i < count) {
            printf("section %zu", sections[i].k);
        } else {
            printf("section window");
        }
        printf(" y=%d height=%d grid_x=%d grid_y=%d cell=%d gap=%d cols=%zu rows=%zu per_cell=%zu title_lines=%zu", st.y[i],
               h, l->grid_x, st.y[i] + l->grid_y, l->cell, l->gap, l->cols, l->rows,
               i < count ? sections[i].map.per_cell : window->map.per_cell, l->title.n);
        if (i == count && st.view.drawn_blocks < window->blocks) {
            printf(" drawn_blocks=%zu not_drawn=%zu..%zu", st.view.drawn_blocks, st.view.drawn_blocks,
                   window->blocks - 1);
        } else if (i == count) {
            printf(" drawn_blocks=%zu not_drawn=none", st.view.drawn_blocks);
        }
        printf("\n");
    }
    if (res == 0) {
        printf("image png=%s.png svg=%s.svg width=%d height=%d sections=%zu\n", prefix, prefix, width, height,
               pictures);
    }
    free(st.options);
    free(st.layouts);
    free(st.y);
    free(titles);
    return res;
}
