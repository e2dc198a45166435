/*
 * tools/heapmap/input.c - an input file into a map: read it whole (or
 * stdin), and parse it in its format: raw table bytes (map.c classifies
 * them), a hex listing of those bytes (here), or a text map (textmap.c).
 * The format is picked by heapmap.c (--format, or auto).
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "heapmap.h"

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

/* The byte written at data[i] ("c1", "0x41") into *byte: the offset after
 * it, or 0 if it is not one (no digit, more than two, or no separator after). */
static size_t hm_hex_byte(const unsigned char* data, size_t len, size_t i, unsigned char* byte)
{
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
        return 0;
    }
    *byte = (unsigned char)value;
    return j;
}

/* "c1 0x41, 00  # comment": one byte per block, then classified as a raw table. */
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
            size_t j = hm_hex_byte(data, len, i, &bytes[n]);
            if (j == 0) {
                fprintf(stderr, "heapmap: hex input line %zu: expected a byte like c1 or 0x41\n", line);
                free(bytes);
                return -1;
            }
            n++;
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
