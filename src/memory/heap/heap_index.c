/*
 * heap_index.c - the placement index described in heap_index.h.
 *
 * The index memory holds, after a header (a record that only heap_check
 * reads), four arrays; W = bitmap words, L = W rounded up to a power of two.
 * Their invariants, checked by heap_index_verify (hence by heap_check):
 *   - bitmap [W]: bit b is 1 exactly when table entry b is FREE; bits past
 *     the last block are 0 (taken), so no run reaches past the heap;
 *   - best [W] bytes: the longest free run inside each word;
 *   - counts: one byte per entry, eight entries to a 64-bit word, in levels.
 *     Level 0 has an entry per bitmap word w: the longest free run of at
 *     most 64 blocks that starts in w, that is
 *       min(64, max(best(w), suffix(w) > 0 ? suffix(w) + prefix(w + 1) : 0))
 *     (a run of n <= 64 blocks that starts in w ends in w or w + 1).
 *     Entry i of level k + 1 is the largest of entries 8i..8i+7 of level k,
 *     up to a top level of at most 64 entries (eight words). Entries past a
 *     level's length are 0;
 *   - nodes [L]: a complete binary tree over the words for runs of more than
 *     64 blocks, which always cross a word boundary. Leaf w (node L + w) is
 *     not stored: it is (prefix, suffix, 0) of bitmap word w, all 0 past W.
 *     Node i < L (node 1 the root, node 0 unused) combines its children 2i
 *     and 2i + 1, so its `best` is the longest free run that crosses a word
 *     boundary inside its range if that is longer than 64 blocks, else 0
 *     (heap_index_tree.c).
 * A request of n <= 64 blocks descends the counts, a longer one the tree.
 */
#include "heap_index.h"
#include "heap_index_bits.h"
#include "heap_index_tree.h"
#include "heap_internal.h"
#include "heap_status.h"

#include "../memory.h"

/* The most entries the top level of counts holds: eight words, which the
 * search tests side by side (heap_index_top_first). */
#define HEAP_INDEX_TOP_MAX 64u

/*
 * The header at the start of the index memory: a record of the layout,
 * written by heap_index_build and compared by heap_index_verify (so
 * heap_check reports a header that a stray write changed), and read by
 * nothing else. The index memory is the caller's, so anything in it may be
 * overwritten: every address and bound the index uses comes from
 * heap->index_layout instead, computed once from the heap's own state (the
 * index's base address and the table's block count).
 */
struct heap_index
{
    size_t total;                  /* blocks */
    size_t words;                  /* bitmap words */
    size_t leaves;                 /* power of two >= words */
    uint64_t* bitmap;              /* where the bitmap starts */
    struct heap_index_node* nodes; /* where the tree starts */
};

#define HEAP_INDEX_HEADER_BYTES ((sizeof(struct heap_index) + 7u) / 8u * 8u)

/* Power of two >= words (words >= 1): the largest power of two <= 2 * words - 1. */
static size_t heap_index_leaves(size_t words)
{
    return (size_t)1 << (63u - heap_index_clz64((uint64_t)(2 * words - 1)));
}

static size_t heap_index_words(size_t total)
{
    return total / HEAP_INDEX_WORD_BITS + (total % HEAP_INDEX_WORD_BITS != 0);
}

/* The levels of counts over `words` words: each level's length and first
 * word; returns the number of count words in all. */
static size_t heap_index_levels(size_t words, struct heap_index_layout* at)
{
    size_t len = words;
    size_t count_words = 0;
    at->levels = 0;
    for (;;) {
        at->level_len[at->levels] = (uint32_t)len;
        at->level_at[at->levels] = (uint32_t)count_words;
        at->levels++;
        count_words += (len + 7) / 8;
        if (len <= HEAP_INDEX_TOP_MAX) {
            return count_words;
        }
        len = (len + 7) / 8;
    }
}

/* The layout of an index at `mem` for `total` blocks; with mem NULL, only
 * the counts (for heap_index_bytes). Returns the bytes it takes. */
static size_t heap_index_layout_of(unsigned char* mem, size_t total, struct heap_index_layout* at)
{
    at->words = heap_index_words(total);
    at->leaves = heap_index_leaves(at->words);
    size_t count_words = heap_index_levels(at->words, at);
    size_t bitmap_at = HEAP_INDEX_HEADER_BYTES;
    size_t counts_at = bitmap_at + at->words * sizeof(uint64_t);
    size_t nodes_at = counts_at + count_words * sizeof(uint64_t);
    size_t best_at = nodes_at + at->leaves * sizeof(struct heap_index_node);
    if (mem != NULL) {
        at->bitmap = (uint64_t*)(void*)(mem + bitmap_at);
        at->counts = (uint64_t*)(void*)(mem + counts_at);
        at->nodes = (struct heap_index_node*)(void*)(mem + nodes_at);
        at->best = mem + best_at;
    }
    return (best_at + at->words + 7) / 8 * 8; /* whole words, like the rest */
}

size_t heap_index_bytes(size_t total_blocks)
{
    if (total_blocks == 0 || total_blocks > (size_t)UINT32_MAX - HEAP_INDEX_WORD_BITS) {
        return 0;
    }
    struct heap_index_layout at;
    return heap_index_layout_of(NULL, total_blocks, &at);
}

/* ------------------------------------------------- runs of up to 64 blocks */

/* Level-0 count of word w: the longest run of at most 64 free blocks that
 * starts in it. best[w] is bounded here like anything read from the index. */
/* The free run that begins word w's free suffix and goes on into word
 * w + 1 (its prefix): its length, or 0 if w ends with a taken block. */
static inline uint32_t heap_index_cross(const struct heap_index_layout* at, size_t w)
{
    uint32_t suffix = heap_index_suffix(at->bitmap[w]);
    uint32_t next = w + 1 < at->words ? heap_index_prefix(at->bitmap[w + 1]) : 0;
    return (suffix + next) & (0u - (uint32_t)(suffix != 0));
}

static uint32_t heap_index_run(const struct heap_index_layout* at, size_t w)
{
    uint32_t cross = heap_index_cross(at, w);
    uint32_t run = at->best[w] > cross ? at->best[w] : cross;
    return run < HEAP_INDEX_WORD_BITS ? run : HEAP_INDEX_WORD_BITS;
}

/*
 * Level-0 counts of words [a, b] recomputed, then every entry above them
 * set to the largest of its eight, level by level up to the top: O(b - a +
 * levels). The walk has no exit that depends on the counts, whose branches
 * a busy heap makes unpredictable (stopping at the first unchanged level,
 * with the new maximum derived from the old one, took fewer instructions
 * and 3 to 6% more time: docs/index.md).
 */
static void heap_index_counts_refresh(const struct heap_index_layout* at, size_t a, size_t b)
{
    uint64_t* counts = at->counts;
    for (size_t w = a; w <= b; w++) {
        heap_index_byte_set(&counts[w / 8], (uint32_t)(w % 8), heap_index_run(at, w));
    }
    for (uint32_t k = 1; k < at->levels; k++) {
        const uint64_t* below = counts + at->level_at[k - 1];
        uint64_t* level = counts + at->level_at[k];
        a /= 8;
        b /= 8;
        for (size_t i = a; i <= b; i++) {
            heap_index_byte_set(&level[i / 8], (uint32_t)(i % 8), heap_index_byte_max(below[i]));
        }
    }
}

/* The top level's words of counts, and how many there are (1 to 8). */
static const uint64_t* heap_index_top(const struct heap_index_layout* at, uint32_t* words)
{
    *words = (at->level_len[at->levels - 1] + 7) / 8;
    return at->counts + at->level_at[at->levels - 1];
}

/*
 * The first entry >= n of the top level (at most HEAP_INDEX_TOP_MAX entries,
 * in as many words as the heap's layout says), or SIZE_MAX if none: every
 * word tested without a branch, then the first that has one. A top of up
 * to eight words saves the walk after every mark a level, for a few word
 * tests per search.
 */
static size_t heap_index_top_first(const struct heap_index_layout* at, uint32_t n)
{
    uint32_t words;
    const uint64_t* top = heap_index_top(at, &words);
    uint32_t has = 0;
    for (uint32_t j = 0; j < words; j++) {
        has |= (uint32_t)heap_index_any_at_least(top[j], n) << j;
    }
    if (has == 0) {
        return SIZE_MAX;
    }
    uint32_t j = heap_index_ctz64(has);
    return 8 * j + heap_index_first_at_least(top[j], n);
}

/*
 * The lowest block starting a run of n <= 64 free blocks: down the levels,
 * each time to the first entry >= n of eight (the lowest words first), to
 * the first word w in which such a run starts. It lies inside w (the lowest
 * such start) or begins w's free suffix: a run inside w starts before that
 * suffix or is part of it. The descent stays inside the levels whatever
 * the counts say; heap.c checks the run it names against the table.
 */
static size_t heap_index_find_short(const struct heap_index_layout* at, uint32_t n)
{
    uint32_t top = (uint32_t)at->levels - 1;
    size_t i = heap_index_top_first(at, n);
    if (i == SIZE_MAX || i >= at->level_len[top]) {
        return i == SIZE_MAX ? SIZE_MAX : HEAP_INDEX_CONTRADICTED;
    }
    for (uint32_t k = top; k-- > 0;) {
        uint32_t b = heap_index_first_at_least(at->counts[at->level_at[k] + i], n);
        i = 8 * i + b;
        if (b == 8 || i >= at->level_len[k]) {
            return HEAP_INDEX_CONTRADICTED;
        }
    }
    uint64_t x = at->bitmap[i];
    uint64_t runs = heap_index_word_runs(x, n);
    if (runs != 0) {
        return i * HEAP_INDEX_WORD_BITS + heap_index_ctz64(runs);
    }
    bool crosses = heap_index_cross(at, i) >= n; /* n >= 1: w ends with free blocks */
    return crosses ? (i + 1) * HEAP_INDEX_WORD_BITS - heap_index_suffix(x) : HEAP_INDEX_CONTRADICTED;
}

/* ------------------------------------------------------------- operations */

static size_t heap_index_find(const struct heap* heap, size_t n)
{
    const struct heap_index_layout* at = &heap->index_layout;
    if (n == 0) {
        return SIZE_MAX;
    }
    return n <= HEAP_INDEX_WORD_BITS ? heap_index_find_short(at, (uint32_t)n) : heap_index_find_long(at, n);
}

/* Blocks [start, start + n) became taken or free: heap.c passes a range
 * inside the table, so every word and entry written lies in the layout. */
static void heap_index_mark(struct heap* heap, size_t start, size_t n, bool taken)
{
    const struct heap_index_layout* at = &heap->index_layout;
    size_t end = start + n; /* exclusive */
    size_t w0 = start / HEAP_INDEX_WORD_BITS;
    size_t w1 = (end - 1) / HEAP_INDEX_WORD_BITS;
    bool low = false;  /* word w0's prefix may have changed: so may word w0 - 1's run */
    bool high = false; /* some prefix or suffix may have changed: the tree needs them */
    for (size_t w = w0; w <= w1; w++) {
        uint32_t from = w == w0 ? (uint32_t)(start % HEAP_INDEX_WORD_BITS) : 0;
        uint32_t to = w == w1 ? (uint32_t)(end - w1 * HEAP_INDEX_WORD_BITS) : HEAP_INDEX_WORD_BITS;
        uint64_t mask = heap_index_mask(from, to);
        uint64_t old = at->bitmap[w];
        uint64_t x = taken ? old & ~mask : old | mask;
        at->bitmap[w] = x;
        at->best[w] = (uint8_t)heap_index_best_after(x, mask, taken, at->best[w]);
        low |= w == w0 && heap_index_prefix_touched(old, old ^ x);
        high |= heap_index_suffix_touched(old, old ^ x);
    }
    heap_index_counts_refresh(at, low && w0 > 0 ? w0 - 1 : w0, w1);
    if (low || high) {
        heap_index_tree_refresh(at, w0, w1);
    }
}

/* ------------------------------------------------------------ verification */

#if PEACHOS_HEAP_CHECK
/* The longest free run, at most the table: a corrupt count or root must
 * not promise more. */
static size_t heap_index_largest(const struct heap* heap)
{
    const struct heap_index_layout* at = &heap->index_layout;
    uint32_t words;
    const uint64_t* top = heap_index_top(at, &words);
    size_t best = 0;
    for (uint32_t j = 0; j < words; j++) {
        size_t most = heap_index_byte_max(top[j]);
        best = most > best ? most : best;
    }
    size_t crossing = heap_index_tree_best(at);
    best = crossing > best ? crossing : best;
    return best < heap->table->total ? best : heap->table->total;
}


static uint64_t heap_index_expected_word(const struct heap_table* table, size_t w)
{
    uint64_t word = 0;
    for (size_t b = 0; b < HEAP_INDEX_WORD_BITS; b++) {
        size_t block = w * HEAP_INDEX_WORD_BITS + b;
        if (block < table->total && table->entries[block] == HEAP_BLOCK_TABLE_ENTRY_FREE) {
            word |= (uint64_t)1 << b;
        }
    }
    return word;
}

/* The first block of word w, for heap_check, which promises a block of the
 * table: a disagreement past the last block is reported at the last one. */
static size_t heap_index_word_block(size_t w, const struct heap_table* table)
{
    return w < heap_index_words(table->total) ? w * HEAP_INDEX_WORD_BITS : table->total - 1;
}

/* The header heap_index_build wrote, unchanged? (Block 0 if not.) */
static bool heap_index_header_sound(const struct heap* heap, const struct heap_index_layout* at)
{
    const struct heap_index* header = heap->index;
    return header->total == heap->table->total && header->words == at->words && header->leaves == at->leaves &&
           header->bitmap == at->bitmap && header->nodes == at->nodes;
}

/* The entry every count should hold: level 0 from the bitmap, above from
 * the eight below; 0 past a level's length. */
static uint32_t heap_index_expected_count(const struct heap_index_layout* at, uint32_t k, size_t i)
{
    if (i >= at->level_len[k]) {
        return 0;
    }
    return k == 0 ? heap_index_run(at, i) : heap_index_byte_max(at->counts[at->level_at[k - 1] + i]);
}

/* The first word whose best or counts disagree, or SIZE_MAX. */
static size_t heap_index_counts_verify(const struct heap_index_layout* at)
{
    for (size_t w = 0; w < at->words; w++) {
        if (at->best[w] != heap_index_best(at->bitmap[w])) {
            return w;
        }
    }
    for (uint32_t k = 0; k < at->levels; k++) {
        size_t entries = ((size_t)at->level_len[k] + 7) / 8 * 8;
        for (size_t i = 0; i < entries; i++) {
            uint32_t count = (uint32_t)(at->counts[at->level_at[k] + i / 8] >> (8 * (i % 8))) & 0xFFu;
            if (count != heap_index_expected_count(at, k, i)) {
                return i << (3 * k); /* the first word below entry i */
            }
        }
    }
    return SIZE_MAX;
}

static size_t heap_index_verify(const struct heap* heap)
{
    const struct heap_table* table = heap->table;
    const struct heap_index_layout* at = &heap->index_layout;
    if (!heap_index_header_sound(heap, at)) {
        return 0;
    }
    for (size_t w = 0; w < at->words; w++) {
        uint64_t diff = at->bitmap[w] ^ heap_index_expected_word(table, w);
        if (diff != 0) {
            size_t block = w * HEAP_INDEX_WORD_BITS + (size_t)heap_index_ctz64(diff);
            return block < table->total ? block : table->total - 1;
        }
    }
    size_t w = heap_index_counts_verify(at);
    if (w == SIZE_MAX) {
        w = heap_index_tree_verify(at);
    }
    return w == SIZE_MAX ? SIZE_MAX : heap_index_word_block(w, table);
}

#endif /* PEACHOS_HEAP_CHECK */

static const struct heap_index_ops heap_index_operations = {
    heap_index_find,
    heap_index_mark,
#if PEACHOS_HEAP_CHECK
    heap_index_verify,
    heap_index_largest,
#else
    NULL, /* heap_check.c, the only caller, is not linked */
    NULL,
#endif
};

/* Lay the index out at heap->index, write its header, and mark every block
 * free. All zeros is a sound index of an all-taken heap (every bit, best,
 * count and node 0), so the mark, which stops at unchanged levels, starts
 * from a sound state. O(total). */
static void heap_index_build(struct heap* heap)
{
    struct heap_index_layout* at = &heap->index_layout;
    size_t total = heap->table->total;
    size_t bytes = heap_index_layout_of((unsigned char*)heap->index, total, at);
    memset(at->bitmap, 0, bytes - HEAP_INDEX_HEADER_BYTES);
    struct heap_index* header = heap->index;
    header->total = total;
    header->words = at->words;
    header->leaves = at->leaves;
    header->bitmap = at->bitmap;
    header->nodes = at->nodes;
    heap_index_mark(heap, 0, total, false);
}

int heap_create_indexed(struct heap* heap, void* ptr, void* end, struct heap_table* table, void* index_mem,
                        size_t index_bytes)
{
    if (table == NULL || index_mem == NULL || ((uintptr_t)index_mem % 8) != 0) {
        return -EINVARG;
    }
    size_t need = heap_index_bytes(table->total);
    if (need == 0 || index_bytes < need) {
        return -EINVARG;
    }
    /* The index is metadata too: apart from the pool, the table and the
     * heap (heap_create checks those among themselves). A bad pool range
     * counts as empty here; heap_create refuses it. */
    size_t pool_bytes = (uintptr_t)end > (uintptr_t)ptr ? (size_t)((uintptr_t)end - (uintptr_t)ptr) : 0;
    if (heap_ranges_overlap(index_mem, need, ptr, pool_bytes) ||
        heap_ranges_overlap(index_mem, need, table->entries, table->total) ||
        heap_ranges_overlap(index_mem, need, table, sizeof(*table)) ||
        heap_ranges_overlap(index_mem, need, heap, sizeof(*heap))) {
        return -EINVARG;
    }
    int res = heap_create(heap, ptr, end, table);
    if (res < 0) {
        return res;
    }
    heap->index = (struct heap_index*)index_mem;
    heap_index_build(heap);
    heap->index_ops = &heap_index_operations;
    return PEACHOS_ALL_OK;
}
