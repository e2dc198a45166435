/*
 * tools/heapmap/map.c - turn an input (raw table bytes, hex listing, or the
 * text map of heap_dump_map) into cells and statistics.
 *
 * Classification of a raw table entry (same encoding as src/memory/heap/heap.h):
 *   00                      free
 *   TAKEN|IS_FIRST|type     first block (type 0: plain, HEAP_BLOCK_TYPE_CACHE: cache,
 *                           HEAP_BLOCK_TYPE_VMAP: a block behind the kvmalloc window)
 *   TAKEN|type              further block
 * and a block is drawn INVALID when
 *   1. its entry is bad on its own: bits 5-4 set, a type other than plain,
 *      cache or vmap, or non-zero without TAKEN (the text map's '?');
 *   2. it is a further block whose predecessor is not a valid block of the
 *      same type with HAS_NEXT (an orphan, or the tail of a broken chain);
 *   3. it has HAS_NEXT but the next block is not a further block of the same
 *      type (a dangling chain), or it belongs to a chain that breaks later.
 * Some block is INVALID exactly when heap_check() rejects the table itself
 * (heap_check also checks the heap's counters and index, which a dump lacks).
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "heapmap.h"
#include "memory/heap/heap.h"

unsigned char* hm_read_file(const char* path, size_t* len)
{
    FILE* f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "heapmap: cannot open %s: %s\n", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16;
    size_t n = 0;
    unsigned char* buf = malloc(cap + 1);
    while (buf != NULL) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap) {
            break;
        }
        cap *= 2;
        unsigned char* bigger = realloc(buf, cap + 1);
        if (bigger == NULL) {
            free(buf);
        }
        buf = bigger;
    }
    bool failed = buf == NULL || ferror(f);
    if (f != stdin) {
        fclose(f);
    }
    if (failed) {
        fprintf(stderr, "heapmap: cannot read %s\n", path);
        free(buf);
        return NULL;
    }
    buf[n] = '\0'; /* so text parsing may use string functions */
    *len = n;
    return buf;
}

double hm_fragmentation(size_t free_blocks, size_t largest_free)
{
    return free_blocks == 0 ? 0.0 : 1.0 - (double)largest_free / (double)free_blocks;
}

void hm_free(struct hm_map* map)
{
    free(map->state);
    free(map->share);
    free(map->bytes);
    memset(map, 0, sizeof(*map));
}

static int hm_alloc(struct hm_map* map, size_t blocks, size_t per_cell)
{
    memset(map, 0, sizeof(*map));
    map->blocks = blocks;
    map->per_cell = per_cell;
    map->ncells = blocks / per_cell + (blocks % per_cell != 0);
    map->state = calloc(map->ncells, 1);
    map->share = calloc(map->ncells, 1);
    if (map->state == NULL || map->share == NULL) {
        fprintf(stderr, "heapmap: out of memory\n");
        hm_free(map);
        return -1;
    }
    return 0;
}

static bool hm_entry_is_bad(unsigned char e)
{
    unsigned char type = e & HEAP_BLOCK_TYPE_MASK;
    return e != HEAP_BLOCK_TABLE_ENTRY_FREE &&
           ((e & ~HEAP_BLOCK_KNOWN_BITS) != 0 || !(e & HEAP_BLOCK_TABLE_ENTRY_TAKEN) ||
            (type != HEAP_BLOCK_TYPE_PLAIN && type != HEAP_BLOCK_TYPE_CACHE && type != HEAP_BLOCK_TYPE_VMAP));
}

/* The cell of a valid first (or further) block of `type`, as heap_map.c
 * draws it: '#'/'=' plain, 'C'/'c' cache, 'V'/'v' vmap. */
static unsigned char hm_taken_cell(unsigned char type, bool first)
{
    if (type == HEAP_BLOCK_TYPE_CACHE) {
        return first ? HM_CACHE_FIRST : HM_CACHE_MORE;
    }
    if (type == HEAP_BLOCK_TYPE_VMAP) {
        return first ? HM_VMAP_FIRST : HM_VMAP_MORE;
    }
    return first ? HM_FIRST : HM_MORE;
}

/* Could `e` continue a chain of `type`? */
static bool hm_is_continuation(unsigned char e, unsigned char type)
{
    return e != HEAP_BLOCK_TABLE_ENTRY_FREE && !hm_entry_is_bad(e) && !(e & HEAP_BLOCK_IS_FIRST) &&
           (e & HEAP_BLOCK_TYPE_MASK) == type;
}

static bool hm_cell_is_valid_taken(unsigned char state)
{
    return state == HM_FIRST || state == HM_MORE || state == HM_CACHE_FIRST || state == HM_CACHE_MORE ||
           state == HM_VMAP_FIRST || state == HM_VMAP_MORE;
}

/* Per-block statistics of a map whose cells are single blocks. */
static void hm_count(struct hm_map* map)
{
    struct hm_stats* s = &map->stats;
    memset(s, 0, sizeof(*s));
    s->known = true;
    s->cache_known = true;
    size_t run = 0;
    for (size_t i = 0; i < map->ncells; i++) {
        unsigned char st = map->state[i];
        run = st == HM_FREE ? run + 1 : 0;
        s->largest_free = run > s->largest_free ? run : s->largest_free;
        s->free += st == HM_FREE;
        s->used += st != HM_FREE && st != HM_MISSING;
        s->allocations += st == HM_FIRST || st == HM_CACHE_FIRST || st == HM_VMAP_FIRST;
        s->cache_blocks += st == HM_CACHE_FIRST || st == HM_CACHE_MORE;
        s->vmap_blocks += st == HM_VMAP_FIRST || st == HM_VMAP_MORE;
        s->invalid += st == HM_INVALID;
    }
}

int hm_from_table(const unsigned char* entries, size_t blocks, struct hm_map* map)
{
    if (blocks == 0) {
        fprintf(stderr, "heapmap: empty table\n");
        return -1;
    }
    if (hm_alloc(map, blocks, 1) < 0) {
        return -1;
    }
    map->bytes = malloc(blocks);
    if (map->bytes == NULL) {
        hm_free(map);
        return -1;
    }
    memcpy(map->bytes, entries, blocks);
    map->source = "raw table";
    unsigned char* st = map->state;
    for (size_t i = 0; i < blocks; i++) {
        unsigned char e = entries[i];
        unsigned char type = e & HEAP_BLOCK_TYPE_MASK;
        if (e == HEAP_BLOCK_TABLE_ENTRY_FREE) {
            st[i] = HM_FREE;
            continue;
        }
        if (hm_entry_is_bad(e)) { /* rule 1 */
            st[i] = HM_INVALID;
            continue;
        }
        if (e & HEAP_BLOCK_IS_FIRST) {
            st[i] = hm_taken_cell(type, true);
        } else if (i > 0 && hm_cell_is_valid_taken(st[i - 1]) && (entries[i - 1] & HEAP_BLOCK_HAS_NEXT) &&
                   (entries[i - 1] & HEAP_BLOCK_TYPE_MASK) == type) {
            st[i] = hm_taken_cell(type, false);
        } else {
            st[i] = HM_INVALID; /* rule 2 */
            continue;
        }
        if ((e & HEAP_BLOCK_HAS_NEXT) && !(i + 1 < blocks && hm_is_continuation(entries[i + 1], type))) {
            st[i] = HM_INVALID; /* rule 3: dangling */
        }
    }
    /* rule 3: a chain that breaks is invalid from its first block on */
    for (size_t i = blocks - 1; i-- > 0;) {
        if (hm_cell_is_valid_taken(st[i]) && (entries[i] & HEAP_BLOCK_HAS_NEXT) && st[i + 1] == HM_INVALID) {
            st[i] = HM_INVALID;
        }
    }
    hm_count(map);
    return 0;
}

/* ---- hex listing ---------------------------------------------------- */

static int hm_parse_hex(const unsigned char* data, size_t len, struct hm_map* map)
{
    unsigned char* bytes = malloc(len / 2 + 1);
    size_t n = 0;
    size_t line = 1;
    if (bytes == NULL) {
        return -1;
    }
    for (size_t i = 0; i < len;) {
        unsigned char c = data[i];
        if (c == '#') { /* comment to end of line */
            while (i < len && data[i] != '\n') {
                i++;
            }
        } else if (c == '\n' || c == ' ' || c == '\t' || c == '\r' || c == ',') {
            line += c == '\n';
            i++;
        } else {
            size_t j = i;
            if (j + 1 < len && data[j] == '0' && (data[j + 1] == 'x' || data[j + 1] == 'X')) {
                j += 2;
            }
            unsigned value = 0;
            size_t digits = 0;
            while (j < len && strchr("0123456789abcdefABCDEF", data[j]) != NULL && data[j] != '\0') {
                char d = (char)data[j];
                value = value * 16 + (unsigned)(d <= '9' ? d - '0' : (d | 0x20) - 'a' + 10);
                digits++;
                j++;
            }
            bool end_ok = j == len || strchr(" \t\r\n,#", data[j]) != NULL;
            if (digits == 0 || digits > 2 || !end_ok) {
                fprintf(stderr, "heapmap: hex input line %zu: expected a byte like c1 or 0x41\n", line);
                free(bytes);
                return -1;
            }
            bytes[n++] = (unsigned char)value;
            i = j;
        }
    }
    int res = hm_from_table(bytes, n, map);
    free(bytes);
    if (res == 0) {
        map->source = "hex table";
    }
    return res;
}

/* ---- text map ------------------------------------------------------- */

struct hm_line
{
    const char* text;
    size_t len;
};

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

static int hm_parse_text(const unsigned char* data, size_t len, size_t map_number, struct hm_map* map)
{
    /* Split into cleaned lines. */
    size_t cap = 16, count = 0;
    char** lines = malloc(cap * sizeof(char*));
    for (size_t i = 0; i < len && lines != NULL;) {
        size_t j = i;
        while (j < len && data[j] != '\n') {
            j++;
        }
        if (count == cap) {
            cap *= 2;
            char** bigger = realloc(lines, cap * sizeof(char*));
            if (bigger == NULL) {
                break;
            }
            lines = bigger;
        }
        lines[count] = malloc(j - i + 1);
        if (lines[count] == NULL) {
            break;
        }
        hm_clean_line(data + i, j - i, lines[count]);
        count++;
        i = j + 1;
    }
    int res = -1;
    size_t maps = 0, start = 0;
    for (size_t i = 0; i < count; i++) {
        if (strstr(lines[i], "HEAPMAP v1 ") != NULL) {
            maps++;
            if (map_number == 0 || maps == map_number) {
                start = i;
            }
        }
    }
    if (maps == 0 || (map_number != 0 && map_number > maps)) {
        fprintf(stderr, "heapmap: map %zu not found (input has %zu text maps)\n", map_number, maps);
        goto out;
    }
    size_t blocks = 0, per_char = 0, width = 0;
    const char* header = strstr(lines[start], "HEAPMAP v1 ");
    if (!hm_field(header, "blocks=", &blocks) || !hm_field(header, "per_char=", &per_char) ||
        !hm_field(header, "width=", &width) || blocks == 0 || per_char == 0) {
        fprintf(stderr, "heapmap: bad header: %s\n", header);
        goto out;
    }
    if (hm_alloc(map, blocks, per_char) < 0) {
        goto out;
    }
    map->width_hint = width;
    map->source = "text map";
    memset(map->state, HM_MISSING, map->ncells);
    size_t noise = 0, covered = 0;
    bool ended = false;
    struct hm_stats end = { 0 };
    for (size_t i = start + 1; i < count; i++) {
        const char* line = lines[i];
        const char* tail = strstr(line, "HEAPMAP end");
        if (strstr(line, "HEAPMAP v1 ") != NULL) {
            break; /* the next map begins: this one was cut short */
        }
        if (tail != NULL) {
            end.known = hm_field(tail, "used=", &end.used) && hm_field(tail, "free=", &end.free) &&
                        hm_field(tail, "largest_free=", &end.largest_free) &&
                        hm_field(tail, "allocations=", &end.allocations);
            ended = true;
            break;
        }
        size_t first = 0;
        const char* cells = NULL;
        if (!hm_data_line(line, &first, &cells) || first % per_char != 0) {
            noise++;
            continue;
        }
        size_t cell = first / per_char;
        size_t n = strlen(cells);
        unsigned char st[512], sh[512];
        bool ok = n <= width && n <= sizeof(st) && cell + n <= map->ncells;
        for (size_t k = 0; ok && k < n; k++) {
            ok = hm_text_cell(cells[k], per_char, &st[k], &sh[k]) == 0;
        }
        if (!ok) {
            noise++;
            continue;
        }
        memcpy(&map->state[cell], st, n);
        memcpy(&map->share[cell], sh, n);
        covered += n;
    }
    if (noise > 0) {
        fprintf(stderr, "heapmap: ignored %zu line(s) inside the map that are not map lines\n", noise);
    }
    if (!ended) {
        fprintf(stderr, "heapmap: warning: the map has no \"HEAPMAP end\" line\n");
    }
    size_t missing = 0;
    for (size_t i = 0; i < map->ncells; i++) {
        missing += map->state[i] == HM_MISSING;
    }
    if (missing > 0) {
        fprintf(stderr, "heapmap: warning: %zu of %zu cells missing (drawn grey)\n", missing, map->ncells);
    }
    (void)covered;
    if (per_char == 1) {
        /* A further block must follow a block of its own allocation. */
        for (size_t i = 0; i < map->ncells; i++) {
            unsigned char s = map->state[i];
            unsigned char prev = i > 0 ? map->state[i - 1] : HM_FREE;
            if ((s == HM_MORE && prev != HM_FIRST && prev != HM_MORE) ||
                (s == HM_CACHE_MORE && prev != HM_CACHE_FIRST && prev != HM_CACHE_MORE) ||
                (s == HM_VMAP_MORE && prev != HM_VMAP_FIRST && prev != HM_VMAP_MORE)) {
                map->state[i] = HM_INVALID;
            }
        }
        hm_count(map);
        if (end.known && missing == 0 &&
            (end.used != map->stats.used || end.free != map->stats.free ||
             end.largest_free != map->stats.largest_free)) {
            fprintf(stderr,
                    "heapmap: warning: the end line (heap counters: used=%zu free=%zu largest_free=%zu) "
                    "disagrees with the map\n",
                    end.used, end.free, end.largest_free);
        }
    } else {
        map->stats = end;
        map->stats.cache_known = false;
        for (size_t i = 0; i < map->ncells; i++) {
            map->stats.invalid += map->state[i] == HM_INVALID;
        }
    }
    res = 0;
out:
    for (size_t i = 0; i < count; i++) {
        free(lines[i]);
    }
    free(lines);
    return res;
}

int hm_parse(const unsigned char* data, size_t len, enum hm_format format, size_t map_number, struct hm_map* map)
{
    switch (format) {
    case HM_FORMAT_TEXT: return hm_parse_text(data, len, map_number, map);
    case HM_FORMAT_HEX: return hm_parse_hex(data, len, map);
    case HM_FORMAT_RAW:
    case HM_FORMAT_AUTO: break;
    }
    return hm_from_table(data, len, map);
}

void hm_print_stats(FILE* out, const struct hm_map* map)
{
    const struct hm_stats* s = &map->stats;
    fprintf(out, "stats blocks=%zu per_cell=%zu cells=%zu", map->blocks, map->per_cell, map->ncells);
    if (s->known) {
        fprintf(out, " used=%zu free=%zu largest_free=%zu allocations=%zu", s->used, s->free, s->largest_free,
                s->allocations);
    } else {
        fprintf(out, " used=? free=? largest_free=? allocations=?");
    }
    if (s->cache_known) {
        fprintf(out, " cache_blocks=%zu vmap_blocks=%zu", s->cache_blocks, s->vmap_blocks);
    } else {
        fprintf(out, " cache_blocks=? vmap_blocks=?");
    }
    fprintf(out, " invalid=%zu", s->invalid);
    if (s->known) {
        fprintf(out, " fragmentation=%.4f", hm_fragmentation(s->free, s->largest_free));
    } else {
        fprintf(out, " fragmentation=?");
    }
}
