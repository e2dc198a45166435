/*
 * tools/heapmap/textmap.c - the text map that heap_dump_map() prints
 * (format in src/memory/heap/heap.h), read back into cells: a "HEAPMAP v1
 * blocks=.. per_char=.. width=.." line, data lines "<first block, hex>
 * <cells>", and "HEAPMAP end used=.. free=.. ..". Serial output may come
 * before, after and between these lines, with ANSI colours and CRLF: they
 * are removed first, and lines inside the map that are not data lines are
 * skipped and counted. A cell no line covers is missing. Apart from the
 * table parsers (input.c) because none of this applies to raw bytes.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "heapmap.h"

/* Copy a line without ANSI escape sequences (ESC [ ... final byte) and \r. */
static size_t hm_clean_line(const unsigned char* src, size_t len, char* dst)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (src[i] == 0x1b) {
            i++;
            if (i < len && src[i] == '[') {
                while (i + 1 < len && !(src[i + 1] >= 0x40 && src[i + 1] <= 0x7e)) {
                    i++;
                }
                i++; /* the final byte */
            }
            continue;
        }
        if (src[i] != '\r') {
            dst[n++] = (char)src[i];
        }
    }
    while (n > 0 && (dst[n - 1] == ' ' || dst[n - 1] == '\t')) {
        n--;
    }
    dst[n] = '\0';
    return n;
}

static bool hm_field(const char* line, const char* name, size_t* value)
{
    const char* p = strstr(line, name);
    if (p == NULL) {
        return false;
    }
    p += strlen(name);
    if (*p < '0' || *p > '9') {
        return false;
    }
    char* end = NULL;
    errno = 0;
    unsigned long long v = strtoull(p, &end, 10);
    if (errno != 0) {
        return false;
    }
    *value = (size_t)v;
    return true;
}

static int hm_text_cell(char c, size_t per_char, unsigned char* state, unsigned char* share)
{
    *share = 0;
    if (c == '.') {
        *state = HM_FREE;
    } else if (c == '?') {
        *state = HM_INVALID;
    } else if (per_char == 1) {
        switch (c) {
        case '#': *state = HM_FIRST; break;
        case '=': *state = HM_MORE; break;
        case 'C': *state = HM_CACHE_FIRST; break;
        case 'c': *state = HM_CACHE_MORE; break;
        case 'V': *state = HM_VMAP_FIRST; break;
        case 'v': *state = HM_VMAP_MORE; break;
        default: return -1;
        }
    } else if (c == '#') {
        *state = HM_GROUP;
        *share = 10;
    } else if (c >= '1' && c <= '9') {
        *state = HM_GROUP;
        *share = (unsigned char)(c - '0');
    } else {
        return -1;
    }
    return 0;
}

/* "<hex address> <cells>" -> first block and the cell text, or false. */
static bool hm_data_line(const char* line, size_t* first_block, const char** cells)
{
    size_t digits = strspn(line, "0123456789abcdef");
    if (digits < 8 || digits > 16 || line[digits] != ' ' || line[digits + 1] == '\0') {
        return false;
    }
    *first_block = (size_t)strtoull(line, NULL, 16);
    *cells = line + digits + 1;
    return true;
}

/* The input as cleaned lines (without the ANSI sequences and \r). */
struct hm_text
{
    char** lines;
    size_t count;
};

static void hm_text_split(const unsigned char* data, size_t len, struct hm_text* t)
{
    size_t cap = 16;
    t->count = 0;
    t->lines = malloc(cap * sizeof(char*));
    for (size_t i = 0; i < len && t->lines != NULL;) {
        size_t j = i;
        while (j < len && data[j] != '\n') {
            j++;
        }
        if (t->count == cap) {
            cap *= 2;
            char** bigger = realloc(t->lines, cap * sizeof(char*));
            if (bigger == NULL) {
                break;
            }
            t->lines = bigger;
        }
        t->lines[t->count] = malloc(j - i + 1);
        if (t->lines[t->count] == NULL) {
            break;
        }
        hm_clean_line(data + i, j - i, t->lines[t->count]);
        t->count++;
        i = j + 1;
    }
}

static void hm_text_free(struct hm_text* t)
{
    for (size_t i = 0; i < t->count; i++) {
        free(t->lines[i]);
    }
    free(t->lines);
}

/* The header line of map number map_number (1-based, 0 = the last) in *start. */
static bool hm_text_find(const struct hm_text* t, size_t map_number, size_t* start)
{
    size_t maps = 0;
    for (size_t i = 0; i < t->count; i++) {
        if (strstr(t->lines[i], "HEAPMAP v1 ") != NULL) {
            maps++;
            if (map_number == 0 || maps == map_number) {
                *start = i;
            }
        }
    }
    if (maps == 0 || (map_number != 0 && map_number > maps)) {
        fprintf(stderr, "heapmap: map %zu not found (input has %zu text maps)\n", map_number, maps);
        return false;
    }
    return true;
}

/* The map the header line describes, every cell missing until a line covers it. */
static int hm_text_header(const char* line, struct hm_map* map)
{
    size_t blocks = 0, per_char = 0, width = 0;
    const char* header = strstr(line, "HEAPMAP v1 ");
    if (!hm_field(header, "blocks=", &blocks) || !hm_field(header, "per_char=", &per_char) ||
        !hm_field(header, "width=", &width) || blocks == 0 || per_char == 0) {
        fprintf(stderr, "heapmap: bad header: %s\n", header);
        return -1;
    }
    if (hm_map_alloc(map, blocks, per_char) < 0) {
        return -1;
    }
    map->width_hint = width;
    map->source = "text map";
    memset(map->state, HM_MISSING, map->ncells);
    return 0;
}

/* One data line into its cells; false (nothing changed) if it is not one. */
static bool hm_text_row(struct hm_map* map, const char* line)
{
    size_t first = 0;
    const char* cells = NULL;
    if (!hm_data_line(line, &first, &cells) || first % map->per_cell != 0) {
        return false;
    }
    size_t cell = first / map->per_cell;
    size_t n = strlen(cells);
    unsigned char st[512], sh[512];
    bool ok = n <= map->width_hint && n <= sizeof(st) && cell + n <= map->ncells;
    for (size_t k = 0; ok && k < n; k++) {
        ok = hm_text_cell(cells[k], map->per_cell, &st[k], &sh[k]) == 0;
    }
    if (ok) {
        memcpy(&map->state[cell], st, n);
        memcpy(&map->share[cell], sh, n);
    }
    return ok;
}

/* The lines after the header up to the end line (*ended, its counters in
 * *end) or the next map; the lines that are not data lines are counted. */
static void hm_text_rows(struct hm_map* map, const struct hm_text* t, size_t start, struct hm_stats* end)
{
    size_t noise = 0;
    bool ended = false;
    for (size_t i = start + 1; i < t->count; i++) {
        const char* line = t->lines[i];
        const char* tail = strstr(line, "HEAPMAP end");
        if (strstr(line, "HEAPMAP v1 ") != NULL) {
            break; /* the next map begins: this one was cut short */
        }
        if (tail != NULL) {
            end->known = hm_field(tail, "used=", &end->used) && hm_field(tail, "free=", &end->free) &&
                         hm_field(tail, "largest_free=", &end->largest_free) &&
                         hm_field(tail, "allocations=", &end->allocations);
            ended = true;
            break;
        }
        noise += !hm_text_row(map, line);
    }
    if (noise > 0) {
        fprintf(stderr, "heapmap: ignored %zu line(s) inside the map that are not map lines\n", noise);
    }
    if (!ended) {
        fprintf(stderr, "heapmap: warning: the map has no \"HEAPMAP end\" line\n");
    }
}

static size_t hm_text_missing(const struct hm_map* map)
{
    size_t missing = 0;
    for (size_t i = 0; i < map->ncells; i++) {
        missing += map->state[i] == HM_MISSING;
    }
    if (missing > 0) {
        fprintf(stderr, "heapmap: warning: %zu of %zu cells missing (drawn grey)\n", missing, map->ncells);
    }
    return missing;
}

/* One block per cell: a further block must follow a block of its own allocation. */
static void hm_text_orphans(struct hm_map* map)
{
    for (size_t i = 0; i < map->ncells; i++) {
        unsigned char s = map->state[i];
        unsigned char prev = i > 0 ? map->state[i - 1] : HM_FREE;
        if ((s == HM_MORE && prev != HM_FIRST && prev != HM_MORE) ||
            (s == HM_CACHE_MORE && prev != HM_CACHE_FIRST && prev != HM_CACHE_MORE) ||
            (s == HM_VMAP_MORE && prev != HM_VMAP_FIRST && prev != HM_VMAP_MORE)) {
            map->state[i] = HM_INVALID;
        }
    }
}

/* The statistics: from the cells (one block each; the end line's counters
 * must agree), else from the end line. */
static void hm_text_stats(struct hm_map* map, const struct hm_stats* end, size_t missing)
{
    if (map->per_cell == 1) {
        hm_text_orphans(map);
        hm_count(map);
        if (end->known && missing == 0 &&
            (end->used != map->stats.used || end->free != map->stats.free ||
             end->largest_free != map->stats.largest_free)) {
            fprintf(stderr,
                    "heapmap: warning: the end line (heap counters: used=%zu free=%zu largest_free=%zu) "
                    "disagrees with the map\n",
                    end->used, end->free, end->largest_free);
        }
        return;
    }
    map->stats = *end;
    map->stats.cache_known = false;
    for (size_t i = 0; i < map->ncells; i++) {
        map->stats.invalid += map->state[i] == HM_INVALID;
    }
}

int hm_parse_text(const unsigned char* data, size_t len, size_t map_number, struct hm_map* map)
{
    struct hm_text t;
    hm_text_split(data, len, &t);
    size_t start = 0;
    int res = -1;
    if (hm_text_find(&t, map_number, &start) && hm_text_header(t.lines[start], map) == 0) {
        struct hm_stats end = { 0 };
        hm_text_rows(map, &t, start, &end);
        hm_text_stats(map, &end, hm_text_missing(map));
        res = 0;
    }
    hm_text_free(&t);
    return res;
}
