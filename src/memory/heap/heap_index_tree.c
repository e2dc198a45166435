/*
 * heap_index_tree.c - the index's tree of long runs (heap_index_tree.h):
 * where a run of more than 64 free blocks starts. Such a run always
 * crosses a word boundary, so the tree only needs each word's prefix and
 * suffix (its leaves are computed from the bitmap, not stored) and changes
 * only when a mark reaches the free blocks at a word's edge.
 *
 * Invariant (checked by heap_index_tree_verify, hence by heap_check): node
 * i < L (node 1 the root, node 0 unused) equals heap_index_combine of its
 * children 2i and 2i + 1, where node L + w is the leaf of bitmap word w:
 * (prefix, suffix, 0), all 0 past the last word. A node's best is then the
 * longest free run that crosses a word boundary inside its range if it is
 * longer than 64 blocks, and 0 otherwise: shorter runs are the counts'
 * business, and leaving them out stops most walks up after a level or two.
 */
#include "heap_index_tree.h"
#include "heap_index_bits.h"

static struct heap_index_node heap_index_combine(const struct heap_index_node* l, const struct heap_index_node* r,
                                                 uint32_t half)
{
    struct heap_index_node node;
    node.prefix = l->prefix == half ? half + r->prefix : l->prefix;
    node.suffix = r->suffix == half ? half + l->suffix : r->suffix;
    uint32_t middle = l->suffix + r->prefix;
    node.best = l->best > r->best ? l->best : r->best;
    node.best = middle > node.best ? middle : node.best;
    node.best = node.best > HEAP_INDEX_WORD_BITS ? node.best : 0; /* only runs the counts cannot answer */
    return node;
}

static bool heap_index_node_equal(const struct heap_index_node* a, const struct heap_index_node* b)
{
    return a->prefix == b->prefix && a->suffix == b->suffix && a->best == b->best;
}

/* Node i of the tree: stored below L, a leaf (from its bitmap word) from L on. */
static struct heap_index_node heap_index_node_at(const struct heap_index_layout* at, size_t i)
{
    if (i < at->leaves) {
        return at->nodes[i];
    }
    size_t w = i - at->leaves;
    uint64_t x = w < at->words ? at->bitmap[w] : 0;
    struct heap_index_node leaf = { heap_index_prefix(x), heap_index_suffix(x), 0 };
    return leaf;
}

#if HEAP_INDEX_ONE_PATH
/*
 * The path from the parent of leaf w up (a change inside one word, the
 * common case): the changed node stays in registers and only its sibling
 * is read at each level. Stops at the first level that comes out unchanged.
 * HEAP_INDEX_ONE_PATH chooses it (0: the range walk below does it too).
 */
static void heap_index_tree_path(const struct heap_index_layout* at, size_t w)
{
    struct heap_index_node* nodes = at->nodes;
    size_t i = (at->leaves + w) / 2;
    struct heap_index_node l = heap_index_node_at(at, 2 * i);
    struct heap_index_node r = heap_index_node_at(at, 2 * i + 1);
    struct heap_index_node node = heap_index_combine(&l, &r, HEAP_INDEX_WORD_BITS);
    uint32_t half = HEAP_INDEX_WORD_BITS;
    while (!heap_index_node_equal(&node, &nodes[i]) && i > 1) {
        nodes[i] = node;
        const struct heap_index_node* sibling = &nodes[i ^ 1];
        half *= 2;
        node = (i & 1) ? heap_index_combine(sibling, &node, half) : heap_index_combine(&node, sibling, half);
        i /= 2;
    }
    nodes[i] = node;
}
#endif

/*
 * The leaves of words [w0, w1] changed their prefix or suffix: refresh
 * their ancestors level by level. A level where no node changed leaves
 * every node above it unchanged too, so the walk stops there.
 */
void heap_index_tree_refresh(const struct heap_index_layout* at, size_t w0, size_t w1)
{
    if (at->leaves == 1) {
        return; /* one word: no run of more than 64 blocks, no tree */
    }
#if HEAP_INDEX_ONE_PATH
    if (w0 == w1) {
        heap_index_tree_path(at, w0);
        return;
    }
#endif
    struct heap_index_node* nodes = at->nodes;
    size_t lo = (at->leaves + w0) / 2;
    size_t hi = (at->leaves + w1) / 2;
    uint32_t half = HEAP_INDEX_WORD_BITS;
    bool changed = true;
    while (changed) {
        changed = false;
        for (size_t i = lo; i <= hi; i++) {
            struct heap_index_node l = heap_index_node_at(at, 2 * i);
            struct heap_index_node r = heap_index_node_at(at, 2 * i + 1);
            struct heap_index_node node = heap_index_combine(&l, &r, half);
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

/*
 * The descent for n > 64 (docs/index.md proves it exact): go left if the
 * left child holds a run of n, else take the run straddling the middle if
 * it is long enough, else go right. Such a run always straddles some
 * node's middle, so a descent that reaches a leaf was misled by a stray
 * write: HEAP_INDEX_CONTRADICTED.
 */
size_t heap_index_find_long(const struct heap_index_layout* at, size_t n)
{
    if (at->leaves == 1 || n > at->nodes[1].best) {
        return SIZE_MAX;
    }
    size_t i = 1;
    size_t base = 0;
    size_t half = at->leaves * HEAP_INDEX_WORD_BITS / 2;
    while (i < at->leaves) {
        struct heap_index_node l = heap_index_node_at(at, 2 * i);
        struct heap_index_node r = heap_index_node_at(at, 2 * i + 1);
        if (l.best >= n) {
            i = 2 * i;
        } else if ((size_t)l.suffix + r.prefix >= n) {
            return base + half - l.suffix;
        } else {
            i = 2 * i + 1;
            base += half;
        }
        half /= 2;
    }
    return HEAP_INDEX_CONTRADICTED;
}

#if PEACHOS_HEAP_CHECK
size_t heap_index_tree_best(const struct heap_index_layout* at)
{
    return at->leaves > 1 ? at->nodes[1].best : 0;
}

/* The first word below a node that disagrees with its children, or SIZE_MAX. */
size_t heap_index_tree_verify(const struct heap_index_layout* at)
{
    uint32_t half = HEAP_INDEX_WORD_BITS;
    for (size_t first = at->leaves / 2; first >= 1; first /= 2) {
        for (size_t i = first; i < 2 * first; i++) {
            struct heap_index_node l = heap_index_node_at(at, 2 * i);
            struct heap_index_node r = heap_index_node_at(at, 2 * i + 1);
            struct heap_index_node node = heap_index_combine(&l, &r, half);
            if (!heap_index_node_equal(&node, &at->nodes[i])) {
                return (i - first) * (at->leaves / first);
            }
        }
        half *= 2;
    }
    return SIZE_MAX;
}
#endif /* PEACHOS_HEAP_CHECK */
