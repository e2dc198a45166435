/*
 * tests/unit/unit.h - shared helpers of the cmocka unit tests.
 *
 * Include this first in every tests/unit/test_*.c (it pulls in cmocka and
 * the heap headers). Do not include <errno.h>: src/status.h defines EIO,
 * EINVARG, ENOMEM, ECORRUPT itself.
 *
 * Most tests put the data pool at a fake, block-aligned address that is never
 * dereferenced (the heap keeps all metadata in the table and never touches
 * the pool), and give the table exactly `blocks` bytes of malloc'd memory, so
 * ASan and valgrind catch any access past either end of the table.
 */
#ifndef PEACHOS_UNIT_H
#define PEACHOS_UNIT_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "memory/heap/heap.h"
#include "memory/heap/heap_index.h"
#include "memory/memory.h"
#include "status.h"
#include "memory/heap/heap_status.h"

#define UNIT_BS ((size_t)PEACHOS_HEAP_BLOCK_SIZE)

/* Default fake pool address: block-aligned, never dereferenced. */
#define UNIT_POOL ((uintptr_t)0x10000000u)

/* Records every report passed to the heap's report hook. */
struct unit_reports
{
    size_t count;
    struct heap_report last;
};

static inline void unit_record_report(void* ctx, const struct heap_report* report)
{
    struct unit_reports* reports = (struct unit_reports*)ctx;
    reports->count++;
    reports->last = *report;
}

/* A heap with its own table (and index), reports recorded in `reports`. */
struct unit_heap
{
    struct heap heap;
    struct heap_table table;
    size_t blocks;
    void* index_mem;
    size_t index_bytes;
    struct unit_reports reports;
};

static inline void* unit_xmalloc(size_t bytes)
{
    void* p = malloc(bytes == 0 ? 1 : bytes);
    assert_non_null(p);
    return p;
}

/* Create a heap of `blocks` blocks at pool address `pool` (indexed or not).
 * The table starts full of 0xEE so that heap_create must really clear it,
 * the index memory full of 0xA5 (heap_create_indexed need not write every
 * byte of it, and a test that compares it must not read undefined bytes). */
static inline void unit_heap_make_at(struct unit_heap* u, size_t blocks, bool indexed, uintptr_t pool)
{
    memset(u, 0, sizeof(*u));
    u->blocks = blocks;
    u->table.entries = (HEAP_BLOCK_TABLE_ENTRY*)unit_xmalloc(blocks);
    memset(u->table.entries, 0xEE, blocks);
    u->table.total = blocks;
    void* start = (void*)pool;
    void* end = (void*)(pool + blocks * UNIT_BS);
    if (indexed) {
        u->index_bytes = heap_index_bytes(blocks);
        assert_true(u->index_bytes > 0);
        u->index_mem = unit_xmalloc(u->index_bytes);
        memset(u->index_mem, 0xA5, u->index_bytes); /* stale bytes, defined: tests compare the index memory */
        assert_int_equal(heap_create_indexed(&u->heap, start, end, &u->table, u->index_mem, u->index_bytes), 0);
        assert_non_null(u->heap.index);
    } else {
        assert_int_equal(heap_create(&u->heap, start, end, &u->table), 0);
        assert_null(u->heap.index);
    }
    heap_set_report(&u->heap, unit_record_report, &u->reports);
}

static inline void unit_heap_make(struct unit_heap* u, size_t blocks, bool indexed)
{
    unit_heap_make_at(u, blocks, indexed, UNIT_POOL);
}

static inline void unit_heap_destroy(struct unit_heap* u)
{
    free(u->table.entries);
    free(u->index_mem);
    u->table.entries = NULL;
    u->index_mem = NULL;
}

/* Address of block b of the heap's pool. */
static inline void* unit_ptr(const struct unit_heap* u, size_t block)
{
    return (void*)((uintptr_t)u->heap.saddr + block * UNIT_BS);
}

/* Block number of a pointer returned by the heap (asserts block alignment). */
static inline size_t unit_block_of(const struct unit_heap* u, const void* ptr)
{
    uintptr_t offset = (uintptr_t)ptr - (uintptr_t)u->heap.saddr;
    assert_int_equal(offset % UNIT_BS, 0);
    return (size_t)(offset / UNIT_BS);
}

/* Parse "41 C1 01" into bytes; returns the count. */
static inline size_t unit_parse_hex(const char* text, unsigned char* out, size_t max)
{
    size_t n = 0;
    const char* p = text;
    while (*p != '\0') {
        if (*p == ' ') {
            p++;
            continue;
        }
        char* next = NULL;
        unsigned long v = strtoul(p, &next, 16);
        if (next == p || v > 0xFF || n == max) {
            print_error("bad table literal \"%s\"\n", text);
            return SIZE_MAX;
        }
        out[n++] = (unsigned char)v;
        p = next;
    }
    return n;
}

static inline void unit_print_table(const char* label, const unsigned char* bytes, size_t n)
{
    print_error("%s:", label);
    for (size_t i = 0; i < n; i++) {
        print_error(" %02X", bytes[i]);
    }
    print_error("\n");
}

/* Assert that the table is exactly `expected` (hex bytes, one per block). */
static inline void unit_assert_table_(const struct heap* heap, const char* expected, const char* file, int line)
{
    unsigned char want[4096];
    size_t n = unit_parse_hex(expected, want, sizeof(want));
    if (n != heap->table->total || memcmp(want, heap->table->entries, n) != 0) {
        print_error("table mismatch (%zu expected bytes, table has %zu)\n", n, heap->table->total);
        unit_print_table("expected", want, n == SIZE_MAX ? 0 : n);
        unit_print_table("actual  ", heap->table->entries, heap->table->total);
        _fail(file, line);
    }
}
#define unit_assert_table(heap, expected) unit_assert_table_((heap), (expected), __FILE__, __LINE__)

/* Overwrite the table with `bytes` (hex); counters are left alone. */
static inline void unit_set_table_(struct heap* heap, const char* bytes, const char* file, int line)
{
    unsigned char want[4096];
    size_t n = unit_parse_hex(bytes, want, sizeof(want));
    if (n != heap->table->total) {
        print_error("unit_set_table: %zu bytes for a table of %zu\n", n, heap->table->total);
        _fail(file, line);
    }
    memcpy(heap->table->entries, want, n);
}
#define unit_set_table(heap, bytes) unit_set_table_((heap), (bytes), __FILE__, __LINE__)

/* Everything heap_free must leave unchanged when it refuses a pointer. */
struct unit_snapshot
{
    unsigned char entries[4096];
    size_t total;
    size_t used_blocks;
    size_t live_allocations;
    size_t rejected_frees;
    size_t failed_allocs;
};

static inline void unit_snapshot_take(const struct heap* heap, struct unit_snapshot* s)
{
    assert_true(heap->table->total <= sizeof(s->entries));
    s->total = heap->table->total;
    memcpy(s->entries, heap->table->entries, s->total);
    s->used_blocks = heap->used_blocks;
    s->live_allocations = heap->live_allocations;
    s->rejected_frees = heap->rejected_frees;
    s->failed_allocs = heap->failed_allocs;
}

/*
 * heap_free(ptr) must be refused: table byte-for-byte unchanged, counters
 * unchanged except rejected_frees + 1, the hook called once with
 * {kind, ptr, block}.
 */
static inline void unit_assert_refused_free_(struct unit_heap* u, void* ptr, HEAP_BLOCK_TABLE_ENTRY type,
                                             enum heap_report_kind kind, size_t block, const char* file, int line)
{
    struct unit_snapshot before;
    unit_snapshot_take(&u->heap, &before);
    size_t reports_before = u->reports.count;
    memset(&u->reports.last, 0xA5, sizeof(u->reports.last));
    heap_free_typed(&u->heap, ptr, type);
    bool ok = memcmp(before.entries, u->heap.table->entries, before.total) == 0 &&
              u->heap.used_blocks == before.used_blocks && u->heap.live_allocations == before.live_allocations &&
              u->heap.failed_allocs == before.failed_allocs && u->heap.rejected_frees == before.rejected_frees + 1 &&
              u->reports.count == reports_before + 1 && u->reports.last.kind == kind && u->reports.last.ptr == ptr &&
              u->reports.last.block == block;
    if (!ok) {
        print_error("refused free of %p: want kind %d block %zu; got %zu reports (kind %d, ptr %p, block %zu), "
                    "rejected_frees %zu -> %zu\n",
                    ptr, (int)kind, block, u->reports.count - reports_before, (int)u->reports.last.kind,
                    u->reports.last.ptr, u->reports.last.block, before.rejected_frees, u->heap.rejected_frees);
        unit_print_table("before", before.entries, before.total);
        unit_print_table("after ", u->heap.table->entries, u->heap.table->total);
        _fail(file, line);
    }
}
#define unit_assert_refused_free(u, ptr, kind, block) \
    unit_assert_refused_free_((u), (ptr), HEAP_BLOCK_TYPE_PLAIN, (kind), (block), __FILE__, __LINE__)
#define unit_assert_refused_free_typed(u, ptr, type, kind, block) \
    unit_assert_refused_free_((u), (ptr), (type), (kind), (block), __FILE__, __LINE__)

/* heap_check must be clean. */
#define unit_assert_clean(heap)                                   \
    do {                                                          \
        size_t unit_bad_ = 12345;                                 \
        int unit_res_ = heap_check((heap), &unit_bad_);           \
        if (unit_res_ != 0) {                                     \
            print_error("heap_check: %d at block %zu\n", unit_res_, unit_bad_); \
        }                                                         \
        assert_int_equal(unit_res_, 0);                           \
    } while (0)

/*
 * The layout of struct heap_index (heap_index.c), to corrupt an index on
 * purpose. Only the pointers are used, so the test follows the real bitmap
 * and nodes wherever heap_index.c puts them.
 */
struct index_node_mirror
{
    uint32_t prefix;
    uint32_t suffix;
    uint32_t best;
};
struct index_mirror
{
    size_t total;
    size_t words;
    size_t leaves;
    uint64_t* bitmap;
    struct index_node_mirror* nodes;
};

static inline struct index_mirror* mirror(struct unit_heap* u)
{
    struct index_mirror* m = (struct index_mirror*)u->heap.index;
    assert_non_null(m);
    assert_int_equal(m->total, u->blocks); /* the mirror matches heap_index.c */
    assert_int_equal(m->words, (u->blocks + 63) / 64);
    return m;
}

/* Tiny deterministic generator (tests must be reproducible). */
static inline uint32_t unit_rand(uint64_t* state)
{
    *state = *state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(*state >> 33);
}

#endif /* PEACHOS_UNIT_H */
