/*
 * heap_map.c - a compact text picture of the block table (format in heap.h).
 * Read-only; output goes through a caller-supplied writer, so the kernel can
 * send it to serial and a host program to stdout.
 */
#include "heap.h"

#define HEAP_MAP_MAX_WIDTH 256

/* Write `value` in decimal (or hex, zero-padded to `digits`). */
static void heap_map_number(heap_write_fn write, void* ctx, size_t value, unsigned base, size_t digits)
{
    char buf[24];
    size_t n = 0;
    do {
        buf[sizeof(buf) - 1 - n] = "0123456789abcdef"[value % base];
        value /= base;
        n++;
    } while ((value != 0 || n < digits) && n < sizeof(buf));
    write(ctx, &buf[sizeof(buf) - n], n);
}

static void heap_map_text(heap_write_fn write, void* ctx, const char* text)
{
    size_t n = 0;
    while (text[n] != '\0') {
        n++;
    }
    write(ctx, text, n);
}

static void heap_map_field(heap_write_fn write, void* ctx, const char* name, size_t value)
{
    heap_map_text(write, ctx, name);
    heap_map_number(write, ctx, value, 10, 1);
}

static bool heap_map_entry_is_bad(HEAP_BLOCK_TABLE_ENTRY e)
{
    HEAP_BLOCK_TABLE_ENTRY type = e & HEAP_BLOCK_TYPE_MASK;
    return e != HEAP_BLOCK_TABLE_ENTRY_FREE &&
           ((e & ~HEAP_BLOCK_KNOWN_BITS) != 0 || !(e & HEAP_BLOCK_TABLE_ENTRY_TAKEN) ||
            (type != HEAP_BLOCK_TYPE_PLAIN && type != HEAP_BLOCK_TYPE_CACHE && type != HEAP_BLOCK_TYPE_VMAP));
}

static char heap_map_block_char(HEAP_BLOCK_TABLE_ENTRY e)
{
    if (e == HEAP_BLOCK_TABLE_ENTRY_FREE) {
        return '.';
    }
    if (heap_map_entry_is_bad(e)) {
        return '?';
    }
    static const char first[] = { '#', 'C', 'V' }; /* by type: plain, cache, vmap */
    static const char more[] = { '=', 'c', 'v' };
    size_t type = (size_t)(e & HEAP_BLOCK_TYPE_MASK) >> 1;
    const char* chars = (e & HEAP_BLOCK_IS_FIRST) ? first : more; /* a char, not an int from ?: */
    return chars[type];
}

static char heap_map_group_char(const HEAP_BLOCK_TABLE_ENTRY* entries, size_t n)
{
    size_t taken = 0;
    for (size_t i = 0; i < n; i++) {
        if (heap_map_entry_is_bad(entries[i])) {
            return '?';
        }
        taken += (entries[i] != HEAP_BLOCK_TABLE_ENTRY_FREE);
    }
    if (taken == 0) {
        return '.';
    }
    if (taken == n) {
        return '#';
    }
    /* The share in tenths, rounded up (never shows 0), at most 9: the
     * smallest t with t * n >= taken * 10. Counted, not divided: clang's
     * analyzer loses n != 0 in the loop above and reports a division. */
    size_t tenths = 1;
    while (tenths < 9 && tenths * n < taken * 10) {
        tenths++;
    }
    return (char)('0' + tenths);
}

void heap_dump_map(const struct heap* heap, heap_write_fn write, void* ctx, size_t blocks_per_char, size_t width,
                   size_t max_lines)
{
    if (heap == NULL || heap->table == NULL || write == NULL) {
        return;
    }
    const struct heap_table* table = heap->table;
    if (width == 0 || width > HEAP_MAP_MAX_WIDTH) {
        width = 64;
    }
    if (blocks_per_char == 0) {
        size_t lines = max_lines == 0 ? 1 : max_lines;
        /* Saturate: width * lines could wrap, even to 0 (found by
         * tests/fuzz/fuzz_table_check: division by zero). */
        size_t cells = lines > SIZE_MAX / width ? SIZE_MAX : width * lines;
        blocks_per_char = table->total / cells + (table->total % cells != 0);
        blocks_per_char = blocks_per_char == 0 ? 1 : blocks_per_char;
    }
    heap_map_field(write, ctx, "HEAPMAP v1 blocks=", table->total);
    heap_map_field(write, ctx, " per_char=", blocks_per_char);
    heap_map_field(write, ctx, " width=", width);
    heap_map_text(write, ctx, "\n");

    char line[HEAP_MAP_MAX_WIDTH + 1];
    size_t block = 0;
    while (block < table->total) {
        heap_map_number(write, ctx, block, 16, 8);
        heap_map_text(write, ctx, " ");
        size_t len = 0;
        while (len < width && block < table->total) {
            size_t n = table->total - block < blocks_per_char ? table->total - block : blocks_per_char;
            if (blocks_per_char == 1) {
                line[len++] = heap_map_block_char(table->entries[block]);
            } else {
                line[len++] = heap_map_group_char(&table->entries[block], n);
            }
            block += n;
        }
        line[len++] = '\n';
        write(ctx, line, len);
    }

    struct heap_stats stats;
    heap_get_stats(heap, &stats);
    heap_map_field(write, ctx, "HEAPMAP end used=", stats.used_blocks);
    heap_map_field(write, ctx, " free=", stats.free_blocks);
    heap_map_field(write, ctx, " largest_free=", stats.largest_free_run);
    heap_map_field(write, ctx, " allocations=", stats.live_allocations);
    heap_map_field(write, ctx, " rejected_frees=", stats.rejected_frees);
    heap_map_text(write, ctx, "\n");
}
