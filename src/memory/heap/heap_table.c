/*
 * heap_table.c - runs of table bytes, a word at a time and byte by byte
 * (heap_table.h says why both).
 *
 * An allocation is 1..16 blocks on a typical workload, and a byte loop
 * costs one store or compare per block plus a mispredicted exit; words
 * bought heap_malloc + heap_free about 17%. Unaligned accesses go through
 * may_alias types (defined for any object, like memory.c's words). x86
 * only, little-endian: byte k of a loaded word is the byte at address + k.
 */
#include "heap_table.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "heap_table.c reads table bytes a word at a time, lowest address first: little-endian only"
#endif
typedef uint64_t __attribute__((may_alias, aligned(1))) heap_table_u64;
typedef uint32_t __attribute__((may_alias, aligned(1))) heap_table_u32;
/* The span loads unsigned longs (8 bytes on x86_64, 4 on i686), for
 * __builtin_ctzl: on i686, GCC calls libgcc's __ctzdi2 for ctzll. */
typedef unsigned long __attribute__((may_alias, aligned(1))) heap_table_word;
#define HEAP_TABLE_WORD_BYTES sizeof(unsigned long)
#define HEAP_TABLE_BYTES_ONES (~0ul / 0xFFu) /* 0x01 in every byte */

/* 8-byte stores from p, then one ending at p + n (overlapping the last ones)
 * if n >= 8; otherwise two overlapping 4-byte stores, or bytes 0, n / 2 and
 * n - 1 (n <= 3). */
void heap_table_fill_words(HEAP_BLOCK_TABLE_ENTRY* p, size_t n, HEAP_BLOCK_TABLE_ENTRY value)
{
    PEACHOS_HEAP_ASSERT(n >= 1); /* the stores below assume it */
    uint64_t word = 0x0101010101010101ull * value;
    if (n >= 8) {
        for (size_t i = 0; i + 8 < n; i += 8) {
            *(heap_table_u64*)(p + i) = word;
        }
        *(heap_table_u64*)(p + n - 8) = word;
    } else if (n >= 4) {
        *(heap_table_u32*)p = (uint32_t)word;
        *(heap_table_u32*)(p + n - 4) = (uint32_t)word;
    } else {
        p[0] = value;
        p[n / 2] = value; /* n = 2 or 3 */
        p[n - 1] = value;
    }
}

void heap_table_fill_bytes(HEAP_BLOCK_TABLE_ENTRY* p, size_t n, HEAP_BLOCK_TABLE_ENTRY value)
{
    for (size_t i = 0; i < n; i++) {
        p[i] = value;
    }
}

/* The same loads as heap_table_fill_words's stores. */
bool heap_table_all_free_words(const HEAP_BLOCK_TABLE_ENTRY* p, size_t n)
{
    PEACHOS_HEAP_ASSERT(n >= 1);
    uint64_t any;
    if (n >= 8) {
        any = *(const heap_table_u64*)(p + n - 8);
        for (size_t i = 0; i + 8 < n; i += 8) {
            any |= *(const heap_table_u64*)(p + i);
        }
    } else if (n >= 4) {
        any = *(const heap_table_u32*)p | *(const heap_table_u32*)(p + n - 4);
    } else {
        any = (uint64_t)(p[0] | p[n / 2] | p[n - 1]);
    }
    return any == 0;
}

bool heap_table_all_free_bytes(const HEAP_BLOCK_TABLE_ENTRY* p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] != HEAP_BLOCK_TABLE_ENTRY_FREE) {
            return false;
        }
    }
    return true;
}

/* Whole words while they fit, then the last bytes one by one. */
size_t heap_table_span_words(const HEAP_BLOCK_TABLE_ENTRY* p, size_t n, HEAP_BLOCK_TABLE_ENTRY value)
{
    const unsigned long same = HEAP_TABLE_BYTES_ONES * value;
    size_t i = 0;
    for (; i + HEAP_TABLE_WORD_BYTES <= n; i += HEAP_TABLE_WORD_BYTES) {
        unsigned long diff = *(const heap_table_word*)(p + i) ^ same;
        if (diff != 0) {
            return i + (size_t)__builtin_ctzl(diff) / 8;
        }
    }
    return i + heap_table_span_bytes(p + i, n - i, value);
}

size_t heap_table_span_bytes(const HEAP_BLOCK_TABLE_ENTRY* p, size_t n, HEAP_BLOCK_TABLE_ENTRY value)
{
    size_t i = 0;
    while (i < n && p[i] == value) {
        i++;
    }
    return i;
}
