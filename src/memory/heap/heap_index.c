/*
 * heap_index.c - the placement index described in heap_index.h.
 *
 * Invariants (checked by heap_index_verify, hence by heap_check):
 *   - bitmap bit b is 1 exactly when table entry b is FREE; bits past the
 *     last block are 0 (padding counts as taken, so no run reaches past it),
 *     and leaves past the last word read as an all-zero word (the bitmap
 *     stores only `words` words, so leaves - words words cost nothing);
 *   - every node's prefix/suffix/best equal those computed from its
 *     children (leaves: from their bitmap word).
 */
#include "heap_index.h"
#include "heap_internal.h"
#include "heap_status.h"

#include "../memory.h"

/*
 * Trailing / leading zeros of a nonzero 64-bit word. On a 32-bit target
 * __builtin_ctzll can become a call to libgcc's __ctzdi2 (gcc at -O0), and
 * kernels such as PeachOS link without libgcc: two 32-bit halves instead.
 */
static inline unsigned heap_index_ctz64(uint64_t x)
{
#if UINTPTR_MAX > 0xFFFFFFFFu
    return (unsigned)__builtin_ctzll(x);
#else
    uint32_t low = (uint32_t)x;
    return low != 0 ? (unsigned)__builtin_ctz(low) : 32u + (unsigned)__builtin_ctz((uint32_t)(x >> 32));
#endif
}

static inline unsigned heap_index_clz64(uint64_t x)
{
#if UINTPTR_MAX > 0xFFFFFFFFu
    return (unsigned)__builtin_clzll(x);
#else
    uint32_t high = (uint32_t)(x >> 32);
    return high != 0 ? (unsigned)__builtin_clz(high) : 32u + (unsigned)__builtin_clz((uint32_t)x);
#endif
}

#define HEAP_INDEX_WORD_BITS 64u

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
    size_t words;                  /* bitmap words actually covering blocks */
    size_t leaves;                 /* power of two >= words */
    uint64_t* bitmap;              /* [words]: leaves past it are all taken */
    struct heap_index_node* nodes; /* [2 * leaves]; node 1 is the root, leaf i is node leaves + i */
};

#define HEAP_INDEX_HEADER_BYTES ((sizeof(struct heap_index) + 7u) / 8u * 8u)

/* find's answer when the index contradicts itself (a leaf it reached holds
 * no run of n): past any table, so heap.c drops the index and scans. */
#define HEAP_INDEX_CONTRADICTED (SIZE_MAX - 1u)

/* Power of two >= words (words >= 1): the largest power of two <= 2 * words - 1. */
static size_t heap_index_leaves(size_t words)
{
    return (size_t)1 << (63u - heap_index_clz64((uint64_t)(2 * words - 1)));
}

static size_t heap_index_words(size_t total)
{
    return total / HEAP_INDEX_WORD_BITS + (total % HEAP_INDEX_WORD_BITS != 0);
}

/* The layout of an index at `mem` for `total` blocks (heap_create_indexed
 * checked it against the index memory's size). Computed once and kept in
 * struct heap: the hot paths read it from there, not from the index memory
 * and not afresh from the block count. */
static struct heap_index_layout heap_index_layout_of(void* mem, size_t total)
{
    struct heap_index_layout at;
    at.words = heap_index_words(total);
    at.leaves = heap_index_leaves(at.words);
    at.bitmap = (uint64_t*)((unsigned char*)mem + HEAP_INDEX_HEADER_BYTES);
    at.nodes = (struct heap_index_node*)(at.bitmap + at.words);
    return at;
}

size_t heap_index_bytes(size_t total_blocks)
{
    if (total_blocks == 0 || total_blocks > (size_t)UINT32_MAX - HEAP_INDEX_WORD_BITS) {
        return 0;
    }
    size_t words = heap_index_words(total_blocks);
    size_t leaves = heap_index_leaves(words);
    return HEAP_INDEX_HEADER_BYTES + words * sizeof(uint64_t) + 2 * leaves * sizeof(struct heap_index_node);
}

/* One greedy step: extend the runs at `*at` (of `*len` ones) by 2^j if any
 * can be (`run_j` = runs of 2^j ones), with selects rather than a branch. */
static void heap_index_extend(uint64_t* at, uint32_t* len, uint64_t run_j, uint32_t j)
{
    uint64_t longer = *at & (run_j >> *len); /* *len <= 62 here */
    uint64_t fits = (uint64_t)0 - (uint64_t)(longer != 0); /* masks: compilers turn ?: into branches here */
    *at = (longer & fits) | (*at & ~fits);
    *len += (uint32_t)fits & (1u << j);
}

/*
 * Longest run of 1 bits in x, at most 63 (x all ones also gives 63: the
 * caller adds the missing 1), in a fixed 11 steps without a branch: a
 * busy heap's words hold a random number of free runs, and a loop over them
 * mispredicts its exit on almost every call. r_j (r_0 = x) has bit p set iff a run
 * of 2^j ones starts at p. Then the length is built bit by bit from the top:
 * `at` has bit p set iff a run of `len` ones starts at p, and a run of len
 * at p followed by a run of 2^j at p + len is a run of len + 2^j at p. The
 * lengths that fit at some p are all those up to the longest, so taking
 * each power when it fits gives the longest.
 */
static uint32_t heap_index_word_best(uint64_t x)
{
    uint64_t r1 = x & (x >> 1);
    uint64_t r2 = r1 & (r1 >> 2);
    uint64_t r3 = r2 & (r2 >> 4);
    uint64_t r4 = r3 & (r3 >> 8);
    uint64_t r5 = r4 & (r4 >> 16);
    uint64_t at = UINT64_MAX;
    uint32_t len = 0;
    heap_index_extend(&at, &len, r5, 5);
    heap_index_extend(&at, &len, r4, 4);
    heap_index_extend(&at, &len, r3, 3);
    heap_index_extend(&at, &len, r2, 2);
    heap_index_extend(&at, &len, r1, 1);
    heap_index_extend(&at, &len, x, 0);
    return len;
}

/* The leaf of word x, branch-free for the same reason (x all ones has no
 * 0 bit for ctz/clz to find: `full` supplies one and adds the 64th block). */
struct heap_index_node heap_index_leaf_branchless(uint64_t x)
{
    struct heap_index_node node;
    uint64_t taken = ~x; /* 1 = taken; bit 0 is the lowest block */
    uint32_t full = taken == 0;
    uint64_t stop_high = taken | ((uint64_t)full << 63); /* != 0: ctz finds 63 when full, + 1 */
    uint64_t stop_low = taken + full;                    /* != 0: clz finds 63 when full, + 1 */
    node.prefix = (uint32_t)heap_index_ctz64(stop_high) + full;
    node.suffix = (uint32_t)heap_index_clz64(stop_low) + full;
    node.best = heap_index_word_best(x) + full;
    return node;
}

/* The same, one bit at a time: the obvious version, to compare with. */
struct heap_index_node heap_index_leaf_loop(uint64_t x)
{
    struct heap_index_node node = { 0, 0, 0 };
    uint32_t run = 0;
    for (unsigned b = 0; b < HEAP_INDEX_WORD_BITS; b++) {
        run = (x >> b) & 1u ? run + 1 : 0;
        node.best = run > node.best ? run : node.best;
        node.prefix = run == b + 1 ? run : node.prefix; /* still the run that starts at bit 0 */
    }
    node.suffix = run;
    return node;
}

static struct heap_index_node heap_index_leaf(uint64_t x)
{
#if HEAP_INDEX_BRANCHLESS
    return heap_index_leaf_branchless(x);
#else
    return heap_index_leaf_loop(x);
#endif
}

static struct heap_index_node heap_index_combine(const struct heap_index_node* l, const struct heap_index_node* r,
                                                 uint32_t half)
{
    struct heap_index_node node;
    node.prefix = l->prefix == half ? half + r->prefix : l->prefix;
    node.suffix = r->suffix == half ? half + l->suffix : r->suffix;
    uint32_t middle = l->suffix + r->prefix;
    node.best = l->best > r->best ? l->best : r->best;
    node.best = middle > node.best ? middle : node.best;
    return node;
}

static bool heap_index_node_equal(const struct heap_index_node* a, const struct heap_index_node* b)
{
    return a->prefix == b->prefix && a->suffix == b->suffix && a->best == b->best;
}

/* Length in blocks of the range covered by each child of node i. */
static uint32_t heap_index_half(size_t leaves, size_t i)
{
    size_t len = leaves * HEAP_INDEX_WORD_BITS;
    while (i > 1) {
        i /= 2;
        len /= 2;
    }
    return (uint32_t)(len / 2);
}

/* Bitmap word w of any leaf: the padding leaves past `words` are stored
 * nowhere and read as all taken. (The hot paths only reach leaves < words.) */
static uint64_t heap_index_word(const struct heap_index_layout* at, size_t w)
{
    return w < at->words ? at->bitmap[w] : 0;
}

/*
 * The path from one leaf up, the common case (a change inside one word):
 * the changed node stays in registers and only its sibling is read at each
 * level, which halves the loads and avoids reading back what was just
 * stored. Stops at the first level that comes out unchanged.
 */
static void heap_index_refresh_path(const struct heap_index_layout* at, size_t w)
{
    struct heap_index_node* nodes = at->nodes;
    size_t i = at->leaves + w;
    struct heap_index_node node = heap_index_leaf(at->bitmap[w]);
    uint32_t half = HEAP_INDEX_WORD_BITS;
    while (!heap_index_node_equal(&node, &nodes[i])) {
        nodes[i] = node;
        if (i == 1) {
            return;
        }
        const struct heap_index_node* sibling = &nodes[i ^ 1];
        node = (i & 1) ? heap_index_combine(sibling, &node, half) : heap_index_combine(&node, sibling, half);
        i /= 2;
        half *= 2;
    }
}

/*
 * Refresh leaves [w0, w1] from the bitmap, then their ancestors level by
 * level. A level where no node changed leaves every node above it
 * unchanged too, so the walk stops there: most mallocs and frees change a
 * few nodes, not the whole path to the root.
 */
static void heap_index_refresh(const struct heap_index_layout* at, size_t w0, size_t w1)
{
    if (w0 == w1) {
        heap_index_refresh_path(at, w0);
        return;
    }
    struct heap_index_node* nodes = at->nodes;
    bool changed = false;
    for (size_t w = w0; w <= w1; w++) {
        struct heap_index_node leaf = heap_index_leaf(heap_index_word(at, w));
        changed |= !heap_index_node_equal(&leaf, &nodes[at->leaves + w]);
        nodes[at->leaves + w] = leaf;
    }
    size_t lo = (at->leaves + w0) / 2;
    size_t hi = (at->leaves + w1) / 2;
    uint32_t half = HEAP_INDEX_WORD_BITS;
    while (changed && lo >= 1) {
        changed = false;
        for (size_t i = lo; i <= hi; i++) {
            struct heap_index_node node = heap_index_combine(&nodes[2 * i], &nodes[2 * i + 1], half);
            changed |= !heap_index_node_equal(&node, &nodes[i]);
            nodes[i] = node;
        }
        if (lo == hi) {
            break; /* one path from here up: the cheaper loop below */
        }
        lo /= 2;
        hi /= 2;
        half *= 2;
    }
    for (size_t i = lo / 2; changed && i >= 1; i /= 2) {
        half *= 2;
        struct heap_index_node node = heap_index_combine(&nodes[2 * i], &nodes[2 * i + 1], half);
        changed = !heap_index_node_equal(&node, &nodes[i]);
        nodes[i] = node;
    }
}

/* Bits [from, to) of a word, 0 <= from < to <= 64. */
static uint64_t heap_index_mask(size_t from, size_t to)
{
    uint64_t high = to == HEAP_INDEX_WORD_BITS ? UINT64_MAX : (((uint64_t)1 << to) - 1);
    return high & ~(((uint64_t)1 << from) - 1);
}

/* Blocks [start, start + n) became taken or free: heap.c passes a range
 * inside the table, so every word and node written lies in the layout. */
static void heap_index_mark(struct heap* heap, size_t start, size_t n, bool taken)
{
    const struct heap_index_layout* at = &heap->index_layout;
    size_t end = start + n; /* exclusive */
    size_t w0 = start / HEAP_INDEX_WORD_BITS;
    size_t w1 = (end - 1) / HEAP_INDEX_WORD_BITS;
    for (size_t w = w0; w <= w1; w++) {
        size_t from = w == w0 ? start % HEAP_INDEX_WORD_BITS : 0;
        size_t to = w == w1 ? end - w1 * HEAP_INDEX_WORD_BITS : HEAP_INDEX_WORD_BITS;
        uint64_t mask = heap_index_mask(from, to);
        at->bitmap[w] = taken ? (at->bitmap[w] & ~mask) : (at->bitmap[w] | mask);
    }
    heap_index_refresh(at, w0, w1);
}

/* Bit p of the result is set iff bits p..p+n-1 of x are all 1; 1 <= n <= 64. */
static uint64_t heap_index_word_runs(uint64_t x, size_t n)
{
    size_t have = 1; /* bit p of x is set iff a run of `have` starts at p */
    while (have < n) {
        size_t step = have < n - have ? have : n - have;
        x &= x >> step;
        have += step;
    }
    return x;
}

/*
 * The descent stays inside the layout whatever the nodes say: it stops at
 * the leaves, and the leaf it reaches must be a stored word holding a run
 * of n (n <= 64). If not (only a stray write makes it so), the answer is
 * HEAP_INDEX_CONTRADICTED, which heap.c takes for the mismatch it is. Any
 * other block a corrupt node leads to is checked against the table there.
 */
static size_t heap_index_find(const struct heap* heap, size_t n)
{
    const struct heap_index_layout* at = &heap->index_layout;
    const struct heap_index_node* nodes = at->nodes;
    if (n == 0 || n > nodes[1].best) {
        return SIZE_MAX;
    }
    size_t i = 1;
    size_t base = 0;
    size_t half = at->leaves * HEAP_INDEX_WORD_BITS / 2;
    while (i < at->leaves) {
        const struct heap_index_node* l = &nodes[2 * i];
        const struct heap_index_node* r = &nodes[2 * i + 1];
        if (l->best >= n) {
            i = 2 * i;
        } else if ((size_t)l->suffix + r->prefix >= n) {
            return base + half - l->suffix; /* the run straddling the middle */
        } else {
            i = 2 * i + 1;
            base += half;
        }
        half /= 2;
    }
    size_t w = i - at->leaves;
    uint64_t runs = w < at->words && n <= HEAP_INDEX_WORD_BITS ? heap_index_word_runs(at->bitmap[w], n) : 0;
    return runs != 0 ? base + (size_t)heap_index_ctz64(runs) : HEAP_INDEX_CONTRADICTED;
}

/* root.best, at most the table: a corrupt root must not promise more. */
static size_t heap_index_largest(const struct heap* heap)
{
    size_t best = heap->index_layout.nodes[1].best;
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

/* A disagreement in the padding past the last block is reported at the last
 * block: heap_check promises a block of the table, which callers may index. */
static size_t heap_index_table_block(size_t block, const struct heap_table* table)
{
    return block < table->total ? block : table->total - 1;
}

/* The header heap_index_build wrote, unchanged? (Block 0 if not.) */
static bool heap_index_header_sound(const struct heap* heap, const struct heap_index_layout* at)
{
    const struct heap_index* header = heap->index;
    return header->total == heap->table->total && header->words == at->words && header->leaves == at->leaves &&
           header->bitmap == at->bitmap && header->nodes == at->nodes;
}

static size_t heap_index_verify(const struct heap* heap)
{
    const struct heap_table* table = heap->table;
    struct heap_index_layout at = heap->index_layout;
    if (!heap_index_header_sound(heap, &at)) {
        return 0;
    }
    for (size_t w = 0; w < at.leaves; w++) {
        uint64_t word = heap_index_word(&at, w);
        uint64_t diff = word ^ heap_index_expected_word(table, w);
        if (diff != 0) {
            return heap_index_table_block(w * HEAP_INDEX_WORD_BITS + (size_t)heap_index_ctz64(diff), table);
        }
        struct heap_index_node leaf = heap_index_leaf(word);
        if (!heap_index_node_equal(&leaf, &at.nodes[at.leaves + w])) {
            return heap_index_table_block(w * HEAP_INDEX_WORD_BITS, table);
        }
    }
    for (size_t i = at.leaves - 1; i >= 1; i--) {
        uint32_t half = heap_index_half(at.leaves, i);
        struct heap_index_node node = heap_index_combine(&at.nodes[2 * i], &at.nodes[2 * i + 1], half);
        if (!heap_index_node_equal(&node, &at.nodes[i])) {
            size_t first = i; /* leftmost leaf below node i */
            while (first < at.leaves) {
                first *= 2;
            }
            size_t block = (first - at.leaves) * HEAP_INDEX_WORD_BITS;
            return heap_index_table_block(block, table);
        }
    }
    return SIZE_MAX;
}

static const struct heap_index_ops heap_index_operations = {
    heap_index_find,
    heap_index_mark,
    heap_index_verify,
    heap_index_largest,
};

/* Lay the index out at heap->index, write its header and mark every block
 * free. O(total). */
static void heap_index_build(struct heap* heap)
{
    heap->index_layout = heap_index_layout_of(heap->index, heap->table->total);
    struct heap_index_layout at = heap->index_layout;
    size_t total = heap->table->total;
    struct heap_index* header = heap->index;
    header->total = total;
    header->words = at.words;
    header->leaves = at.leaves;
    header->bitmap = at.bitmap;
    header->nodes = at.nodes;
    for (size_t w = 0; w < at.words; w++) {
        size_t blocks = total - w * HEAP_INDEX_WORD_BITS; /* > 0: w < words */
        at.bitmap[w] = blocks >= HEAP_INDEX_WORD_BITS ? UINT64_MAX : heap_index_mask(0, blocks);
    }
    /* An all-zero tree is consistent with an all-taken bitmap, so the
     * refresh (which stops at unchanged levels) starts from a valid state. */
    memset(at.nodes, 0, 2 * at.leaves * sizeof(struct heap_index_node));
    heap_index_refresh(&at, 0, at.leaves - 1);
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
