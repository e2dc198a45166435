/*
 * tests/fuzz/fuzz_common.h - helpers shared by the fuzz targets: an input
 * reader, a failure macro, an independent table checker and an independent
 * heap-map renderer, both written from the encoding in heap.h (not from
 * heap_check.c / heap_map.c), so that the library is judged against the
 * contract rather than against itself.
 */
#ifndef PEACHOS_FUZZ_COMMON_H
#define PEACHOS_FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "memory/heap/heap.h"

#define FUZZ_BS ((size_t)PEACHOS_HEAP_BLOCK_SIZE)

/* A failed check is a crash, which libFuzzer records with its input. */
#define FUZZ_CHECK(cond)                                                                                   \
    do {                                                                                                   \
        if (!(cond)) {                                                                                     \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);                       \
            abort();                                                                                       \
        }                                                                                                  \
    } while (0)

/* ---- input reader: every read past the end yields zeros ---- */
struct fuzz_input
{
    const uint8_t* data;
    size_t size;
    size_t pos;
};

static inline int fuzz_more(const struct fuzz_input* in)
{
    return in->pos < in->size;
}

static inline uint8_t fuzz_u8(struct fuzz_input* in)
{
    return in->pos < in->size ? in->data[in->pos++] : 0;
}

static inline uint16_t fuzz_u16(struct fuzz_input* in)
{
    uint16_t lo = fuzz_u8(in);
    return (uint16_t)(lo | (uint16_t)(fuzz_u8(in) << 8));
}

static inline uint32_t fuzz_u32(struct fuzz_input* in)
{
    uint32_t lo = fuzz_u16(in);
    return lo | ((uint32_t)fuzz_u16(in) << 16);
}

static inline uint64_t fuzz_u64(struct fuzz_input* in)
{
    uint64_t lo = fuzz_u32(in);
    return lo | ((uint64_t)fuzz_u32(in) << 32);
}

/* ---- independent table checker ----
 * The table is valid iff it is a sequence of tokens, left to right:
 *   00                      a free block
 *   41|t                    a one-block allocation        (t = 00 plain, 02 cache)
 *   C1|t (81|t)* 01|t       a longer allocation, one type all along
 * Returns SIZE_MAX if valid (and the block/allocation counts), else the
 * block at which a left-to-right reading first fails (total - 1 if the
 * table ends inside an allocation). */
struct fuzz_table_facts
{
    size_t bad;         /* SIZE_MAX when valid */
    size_t used;        /* non-free entries (valid tables only) */
    size_t allocations; /* first blocks (valid tables only) */
};

static inline struct fuzz_table_facts fuzz_check_table(const uint8_t* t, size_t total)
{
    struct fuzz_table_facts f = { SIZE_MAX, 0, 0 };
    int in_chain = 0;
    unsigned type = 0;
    for (size_t i = 0; i < total; i++) {
        unsigned e = t[i];
        if (!in_chain) {
            if (e == 0x00) {
                continue;
            }
            if (e == 0x41 || e == 0x43 || e == 0x45) { /* plain, cache, vmap */
                f.used++;
                f.allocations++;
            } else if (e == 0xC1 || e == 0xC3 || e == 0xC5) {
                f.used++;
                f.allocations++;
                in_chain = 1;
                type = e & 0x0E;
            } else {
                f.bad = i;
                return f;
            }
        } else {
            if (e == (0x81u | type)) {
                f.used++;
            } else if (e == (0x01u | type)) {
                f.used++;
                in_chain = 0;
            } else {
                f.bad = i;
                return f;
            }
        }
    }
    if (in_chain) {
        f.bad = total - 1;
    }
    return f;
}

/* Longest run of blocks whose `free_at` is 1. */
static inline size_t fuzz_longest_run(const uint8_t* free_at, size_t total)
{
    size_t best = 0, run = 0;
    for (size_t i = 0; i < total; i++) {
        run = free_at[i] ? run + 1 : 0;
        best = run > best ? run : best;
    }
    return best;
}

/* ---- output buffer for heap_dump_map ---- */
#define FUZZ_MAP_MAX (1u << 20)
struct fuzz_buf
{
    char* text;
    size_t len;
    size_t cap;
    int overflow;
};

static inline void fuzz_buf_write(void* ctx, const char* text, size_t len)
{
    struct fuzz_buf* b = (struct fuzz_buf*)ctx;
    FUZZ_CHECK(text != NULL);
    if (b->len + len > b->cap) {
        b->overflow = 1;
        return;
    }
    memcpy(b->text + b->len, text, len);
    b->len += len;
}

static inline void fuzz_buf_printf_size(struct fuzz_buf* b, const char* fmt, size_t v)
{
    char tmp[64];
    int n = snprintf(tmp, sizeof(tmp), fmt, v);
    fuzz_buf_write(b, tmp, (size_t)n);
}

/* ---- independent map renderer (format in heap.h) ----
 * `view_free[i]` is what the statistics consider free (the index's view
 * when there is one), used for largest_free. */
struct fuzz_map_stats
{
    size_t used, free, largest, allocations, rejected;
};

static inline int fuzz_entry_bad(unsigned e)
{
    unsigned type = e & 0x0E;
    return e != 0 && ((e & 0x30) != 0 || !(e & 0x01) || (type != 0x00 && type != 0x02 && type != 0x04));
}

static inline void fuzz_render_map(struct fuzz_buf* b, const uint8_t* t, size_t total, size_t k, size_t width,
                                   size_t max_lines, const struct fuzz_map_stats* s)
{
    if (width == 0 || width > 256) {
        width = 64;
    }
    if (k == 0) {
        size_t lines = max_lines == 0 ? 1 : max_lines;
        if (lines > SIZE_MAX / width) {
            k = 1; /* more cells than any table has blocks */
        } else {
            size_t cells = width * lines;
            k = total / cells + (total % cells != 0);
        }
        k = k == 0 ? 1 : k;
    }
    fuzz_buf_printf_size(b, "HEAPMAP v1 blocks=%zu", total);
    fuzz_buf_printf_size(b, " per_char=%zu", k);
    fuzz_buf_printf_size(b, " width=%zu\n", width);
    size_t block = 0;
    while (block < total) {
        fuzz_buf_printf_size(b, "%08zx ", block);
        for (size_t col = 0; col < width && block < total; col++) {
            size_t n = total - block < k ? total - block : k;
            char c;
            if (k == 1) {
                unsigned e = t[block];
                if (e == 0) {
                    c = '.';
                } else if (fuzz_entry_bad(e)) {
                    c = '?';
                } else {
                    unsigned type = e & 0x0E; /* 0x02 cache, 0x04 vmap */
                    c = (e & 0x40) ? (type == 0x02 ? 'C' : type == 0x04 ? 'V' : '#')
                                   : (type == 0x02 ? 'c' : type == 0x04 ? 'v' : '=');
                }
            } else {
                size_t taken = 0;
                int bad = 0;
                for (size_t j = 0; j < n; j++) {
                    bad |= fuzz_entry_bad(t[block + j]);
                    taken += t[block + j] != 0;
                }
                if (bad) {
                    c = '?';
                } else if (taken == 0) {
                    c = '.';
                } else if (taken == n) {
                    c = '#';
                } else {
                    /* taken/n in tenths, rounded up, at most 9; exact arithmetic */
                    size_t tenths = 1;
                    while (tenths < 9 && taken * 10 > tenths * n) {
                        tenths++;
                    }
                    c = (char)('0' + tenths);
                }
            }
            fuzz_buf_write(b, &c, 1);
            block += n;
        }
        fuzz_buf_write(b, "\n", 1);
    }
    fuzz_buf_printf_size(b, "HEAPMAP end used=%zu", s->used);
    fuzz_buf_printf_size(b, " free=%zu", s->free);
    fuzz_buf_printf_size(b, " largest_free=%zu", s->largest);
    fuzz_buf_printf_size(b, " allocations=%zu", s->allocations);
    fuzz_buf_printf_size(b, " rejected_frees=%zu\n", s->rejected);
}

/* Render with the library and independently, and require identical text. */
static inline void fuzz_compare_map(const struct heap* heap, const uint8_t* t, size_t total, size_t k, size_t width,
                                    size_t max_lines, const struct fuzz_map_stats* s)
{
    static char got_text[FUZZ_MAP_MAX];
    static char want_text[FUZZ_MAP_MAX];
    struct fuzz_buf got = { got_text, 0, sizeof(got_text), 0 };
    struct fuzz_buf want = { want_text, 0, sizeof(want_text), 0 };
    heap_dump_map(heap, fuzz_buf_write, &got, k, width, max_lines);
    fuzz_render_map(&want, t, total, k, width, max_lines, s);
    FUZZ_CHECK(got.overflow == want.overflow);
    if (got.len != want.len || memcmp(got.text, want.text, got.len) != 0) {
        size_t at = 0;
        while (at < got.len && at < want.len && got.text[at] == want.text[at]) {
            at++;
        }
        fprintf(stderr, "heap map differs at byte %zu (got %zu bytes, want %zu)\n--- got:\n%.*s\n--- want:\n%.*s\n", at,
                got.len, want.len, (int)(got.len > 2000 ? 2000 : got.len), got.text,
                (int)(want.len > 2000 ? 2000 : want.len), want.text);
        FUZZ_CHECK(!"heap_dump_map output matches the specification");
    }
}

#endif /* PEACHOS_FUZZ_COMMON_H */
