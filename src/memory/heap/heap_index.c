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

struct heap_index_node
{
    uint32_t prefix; /* free blocks at the start of the node's range */
    uint32_t suffix; /* free blocks at its end */
    uint32_t best;   /* longest free run inside it */
};

struct heap_index
{
    size_t total;                  /* blocks */
    size_t words;                  /* bitmap words actually covering blocks */
    size_t leaves;                 /* power of two >= words */
    uint64_t* bitmap;              /* [words]: leaves past it are all taken */
    struct heap_index_node* nodes; /* [2 * leaves]; node 1 is the root, leaf i is node leaves + i */
};

static size_t heap_index_round_up(size_t value, size_t align)
{
    return (value + align - 1) / align * align;
}

static size_t heap_index_leaves(size_t words)
{
    size_t leaves = 1;
    while (leaves < words) {
        leaves *= 2;
    }
    return leaves;
}

size_t heap_index_bytes(size_t total_blocks)
{
    if (total_blocks == 0 || total_blocks > (size_t)UINT32_MAX - HEAP_INDEX_WORD_BITS) {
        return 0;
    }
    size_t words = total_blocks / HEAP_INDEX_WORD_BITS + (total_blocks % HEAP_INDEX_WORD_BITS != 0);
    size_t leaves = heap_index_leaves(words);
    return heap_index_round_up(sizeof(struct heap_index), 8) + words * sizeof(uint64_t) +
           2 * leaves * sizeof(struct heap_index_node);
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
static struct heap_index_node heap_index_leaf(uint64_t x)
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
static uint32_t heap_index_half(const struct heap_index* index, size_t i)
{
    size_t len = index->leaves * HEAP_INDEX_WORD_BITS;
    while (i > 1) {
        i /= 2;
        len /= 2;
    }
    return (uint32_t)(len / 2);
}

/* Bitmap word w of any leaf: the padding leaves past `words` are stored
 * nowhere and read as all taken. (The hot paths only reach leaves < words.) */
static uint64_t heap_index_word(const struct heap_index* index, size_t w)
{
    return w < index->words ? index->bitmap[w] : 0;
}

/*
 * Refresh leaves [w0, w1] from the bitmap, then their ancestors level by
 * level. A level where no node changed leaves every node above it
 * unchanged too, so the walk stops there: most mallocs and frees change a
 * few nodes, not the whole path to the root.
 */
/*
 * The path from one leaf up, the common case (a change inside one word):
 * the changed node stays in registers and only its sibling is read at each
 * level, which halves the loads and avoids reading back what was just
 * stored. Stops at the first level that comes out unchanged.
 */
static void heap_index_refresh_path(struct heap_index* index, size_t w)
{
    struct heap_index_node* nodes = index->nodes;
    size_t i = index->leaves + w;
    struct heap_index_node node = heap_index_leaf(index->bitmap[w]);
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

static void heap_index_refresh(struct heap_index* index, size_t w0, size_t w1)
{
    if (w0 == w1) {
        heap_index_refresh_path(index, w0);
        return;
    }
    struct heap_index_node* nodes = index->nodes;
    bool changed = false;
    for (size_t w = w0; w <= w1; w++) {
        struct heap_index_node leaf = heap_index_leaf(heap_index_word(index, w));
        changed |= !heap_index_node_equal(&leaf, &nodes[index->leaves + w]);
        nodes[index->leaves + w] = leaf;
    }
    size_t lo = (index->leaves + w0) / 2;
    size_t hi = (index->leaves + w1) / 2;
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

static void heap_index_mark(struct heap_index* index, size_t start, size_t n, bool taken)
{
    size_t end = start + n; /* exclusive */
    size_t w0 = start / HEAP_INDEX_WORD_BITS;
    size_t w1 = (end - 1) / HEAP_INDEX_WORD_BITS;
    for (size_t w = w0; w <= w1; w++) {
        size_t from = w == w0 ? start % HEAP_INDEX_WORD_BITS : 0;
        size_t to = w == w1 ? end - w1 * HEAP_INDEX_WORD_BITS : HEAP_INDEX_WORD_BITS;
        uint64_t mask = heap_index_mask(from, to);
        index->bitmap[w] = taken ? (index->bitmap[w] & ~mask) : (index->bitmap[w] | mask);
    }
    heap_index_refresh(index, w0, w1);
}

/* First bit p such that bits p..p+n-1 of x are all 1 (caller knows one exists). */
static size_t heap_index_word_find(uint64_t x, size_t n)
{
    size_t have = 1; /* bit p of x is set iff a run of `have` starts at p */
    while (have < n) {
        size_t step = have < n - have ? have : n - have;
        x &= x >> step;
        have += step;
    }
    return (size_t)heap_index_ctz64(x);
}

static size_t heap_index_find(const struct heap_index* index, size_t n)
{
    const struct heap_index_node* nodes = index->nodes;
    if (n == 0 || n > nodes[1].best) {
        return SIZE_MAX;
    }
    size_t i = 1;
    size_t base = 0;
    size_t half = index->leaves * HEAP_INDEX_WORD_BITS / 2;
    while (i < index->leaves) {
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
    return base + heap_index_word_find(index->bitmap[i - index->leaves], n);
}

static size_t heap_index_largest(const struct heap_index* index)
{
    return index->nodes[1].best;
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

static size_t heap_index_verify(const struct heap_index* index, const struct heap_table* table)
{
    if (index->total != table->total) {
        return 0;
    }
    for (size_t w = 0; w < index->leaves; w++) {
        uint64_t word = heap_index_word(index, w);
        uint64_t diff = word ^ heap_index_expected_word(table, w);
        if (diff != 0) {
            return heap_index_table_block(w * HEAP_INDEX_WORD_BITS + (size_t)heap_index_ctz64(diff), table);
        }
        struct heap_index_node leaf = heap_index_leaf(word);
        if (!heap_index_node_equal(&leaf, &index->nodes[index->leaves + w])) {
            return heap_index_table_block(w * HEAP_INDEX_WORD_BITS, table);
        }
    }
    for (size_t i = index->leaves - 1; i >= 1; i--) {
        uint32_t half = heap_index_half(index, i);
        struct heap_index_node node = heap_index_combine(&index->nodes[2 * i], &index->nodes[2 * i + 1], half);
        if (!heap_index_node_equal(&node, &index->nodes[i])) {
            size_t first = i; /* leftmost leaf below node i */
            while (first < index->leaves) {
                first *= 2;
            }
            size_t block = (first - index->leaves) * HEAP_INDEX_WORD_BITS;
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

/* Lay the index out in `mem` and mark every block free. O(total). */
static struct heap_index* heap_index_build(void* mem, size_t total)
{
    struct heap_index* index = (struct heap_index*)mem;
    index->total = total;
    index->words = total / HEAP_INDEX_WORD_BITS + (total % HEAP_INDEX_WORD_BITS != 0);
    index->leaves = heap_index_leaves(index->words);
    index->bitmap = (uint64_t*)((unsigned char*)mem + heap_index_round_up(sizeof(struct heap_index), 8));
    index->nodes = (struct heap_index_node*)(index->bitmap + index->words);
    for (size_t w = 0; w < index->words; w++) {
        size_t blocks = total - w * HEAP_INDEX_WORD_BITS; /* > 0: w < words */
        index->bitmap[w] = blocks >= HEAP_INDEX_WORD_BITS ? UINT64_MAX : heap_index_mask(0, blocks);
    }
    /* An all-zero tree is consistent with an all-taken bitmap, so the
     * refresh (which stops at unchanged levels) starts from a valid state. */
    memset(index->nodes, 0, 2 * index->leaves * sizeof(struct heap_index_node));
    heap_index_refresh(index, 0, index->leaves - 1);
    return index;
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
    heap->index = heap_index_build(index_mem, table->total);
    heap->index_ops = &heap_index_operations;
    return PEACHOS_ALL_OK;
}
