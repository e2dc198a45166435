/*
 * heap_index_bits.h - the bit tricks of the placement index (heap_index.c),
 * on one 64-bit bitmap word (1 = free block, bit 0 the lowest block) or on
 * one word of eight byte counts. Private to heap_index.c and its unit tests.
 *
 * Each trick keeps the obvious version beside it, chosen by a macro, and
 * tests/unit/test_heap_index.c checks that the two agree:
 *   HEAP_INDEX_BRANCHLESS  the longest free run in a word: 11 fixed steps
 *                          (1, the default) or one bit at a time (0);
 *   HEAP_INDEX_SWAR        the first byte >= n and the largest byte of eight:
 *                          a few word operations (1, the default) or a loop
 *                          over the bytes (0);
 *   HEAP_INDEX_INCREMENTAL a word's longest run after a change, from the
 *                          old one where that decides (1, the default), or
 *                          counted afresh (0);
 *   HEAP_INDEX_ONE_PATH    the tree's walk up from one word with the changed
 *                          node kept in registers (1, the default), or the
 *                          walk of a range of words (0; heap_index_tree.c).
 */
#ifndef PEACHOS_HEAP_INDEX_BITS_H
#define PEACHOS_HEAP_INDEX_BITS_H

#include <stdbool.h>
#include <stdint.h>

/* Compiled for size (-Os, as PeachOS's drop-in builds it), the plain twins
 * are the default: about 1,200 bytes less of i686 code, which a kernel.bin
 * that its boot sector loads whole (51,200 bytes) needs more than speed. */
#ifndef HEAP_INDEX_TRICKS
#if defined(__OPTIMIZE_SIZE__)
#define HEAP_INDEX_TRICKS 0
#else
#define HEAP_INDEX_TRICKS 1
#endif
#endif
#ifndef HEAP_INDEX_BRANCHLESS
#define HEAP_INDEX_BRANCHLESS HEAP_INDEX_TRICKS
#endif
#ifndef HEAP_INDEX_SWAR
#define HEAP_INDEX_SWAR HEAP_INDEX_TRICKS
#endif
#ifndef HEAP_INDEX_INCREMENTAL
#define HEAP_INDEX_INCREMENTAL HEAP_INDEX_TRICKS
#endif
#ifndef HEAP_INDEX_ONE_PATH
#define HEAP_INDEX_ONE_PATH HEAP_INDEX_TRICKS
#endif

#define HEAP_INDEX_WORD_BITS 64u

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

/* Free blocks at the start (from bit 0) and at the end (down from bit 63)
 * of word x, 0..64. An all-free word has no 0 bit for ctz/clz to find:
 * the extra bit stops the count at 63 and `full` adds the 64th block. */
static inline uint32_t heap_index_prefix(uint64_t x)
{
    uint32_t full = x == UINT64_MAX;
    return (uint32_t)heap_index_ctz64(~x | ((uint64_t)1 << 63)) + full;
}

static inline uint32_t heap_index_suffix(uint64_t x)
{
    uint32_t full = x == UINT64_MAX;
    return (uint32_t)heap_index_clz64(~x | 1u) + full;
}

/* One greedy step: extend the runs at `*at` (of `*len` ones) by 2^j if any
 * can be (`run_j` = runs of 2^j ones), with selects rather than a branch. */
static inline void heap_index_extend(uint64_t* at, uint32_t* len, uint64_t run_j, uint32_t j)
{
    uint64_t longer = *at & (run_j >> *len); /* *len <= 62 here */
    uint64_t fits = (uint64_t)0 - (uint64_t)(longer != 0); /* masks: compilers turn ?: into branches here */
    *at = (longer & fits) | (*at & ~fits);
    *len += (uint32_t)fits & (1u << j);
}

/*
 * Longest run of 1 bits in x, 0..64, in a fixed 11 steps without a branch:
 * a busy heap's words hold a random number of free runs, and a loop over
 * them mispredicts its exit on almost every call. r_j (r_0 = x) has bit p
 * set iff a run of 2^j ones starts at p. Then the length is built bit by
 * bit from the top: `at` has bit p set iff a run of `len` ones starts at p,
 * and a run of len at p followed by a run of 2^j at p + len is a run of
 * len + 2^j at p. The lengths that fit at some p are all those up to the
 * longest, so taking each power when it fits gives the longest (up to 63:
 * an all-ones word adds its 64th through `full`).
 */
static inline uint32_t heap_index_best_branchless(uint64_t x)
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
    return len + (uint32_t)(x == UINT64_MAX);
}

/* The same, one bit at a time: the obvious version, to compare with. */
static inline uint32_t heap_index_best_loop(uint64_t x)
{
    uint32_t run = 0;
    uint32_t best = 0;
    for (unsigned b = 0; b < HEAP_INDEX_WORD_BITS; b++) {
        run = (x >> b) & 1u ? run + 1 : 0;
        best = run > best ? run : best;
    }
    return best;
}

/* A speed trick or its plain twin, as its macro says (a constant: the
 * other call is folded away; both stay compiled, so the tests compare them). */
#define HEAP_INDEX_TWIN(trick, fast, plain) ((trick) ? (fast) : (plain))

static inline uint32_t heap_index_best(uint64_t x)
{
    return HEAP_INDEX_TWIN(HEAP_INDEX_BRANCHLESS, heap_index_best_branchless(x), heap_index_best_loop(x));
}

/* Bits [from, to) of a word, 0 <= from < to <= 64. */
static inline uint64_t heap_index_mask(uint32_t from, uint32_t to)
{
    return (UINT64_MAX >> (HEAP_INDEX_WORD_BITS - (to - from))) << from;
}

/* Length of the free run of word y (1 = free) that holds bits `mask`, all
 * free in y: from the taken bit below them to the taken bit above. */
static inline uint32_t heap_index_run_around(uint64_t y, uint64_t mask)
{
    uint64_t taken = ~y;
    uint64_t above = taken & ~(mask | (mask - 1)); /* taken bits above the mask */
    uint64_t below = taken & ((mask & (0 - mask)) - 1); /* taken bits below it */
    uint32_t end = (uint32_t)heap_index_ctz64(above | ((uint64_t)1 << 63)) + (uint32_t)(above == 0);
    uint32_t start = 64u - (uint32_t)heap_index_clz64(below | 1u) - (uint32_t)(below == 0);
    return end - start;
}

/*
 * The longest free run of word x, which bits `mask` of a word whose longest
 * run was `best` just made taken or free. Freeing only merges runs, into
 * the one around the mask; taking only splits the run the mask fell in, so
 * the old longest run stands unless that was it: only then are the runs
 * counted afresh (HEAP_INDEX_INCREMENTAL 0: always).
 */
static inline uint32_t heap_index_best_after(uint64_t x, uint64_t mask, bool taken, uint32_t best)
{
#if HEAP_INDEX_INCREMENTAL
    uint32_t split = heap_index_run_around(taken ? x | mask : x, mask);
    if (!taken) {
        return split > best ? split : best;
    }
    return split < best ? best : heap_index_best(x);
#else
    (void)mask;
    (void)taken;
    (void)best;
    return heap_index_best(x);
#endif
}

/* Could the bits `changed` of word x change its prefix? Only a bit of the
 * prefix or the taken bit after it can. Its suffix? Only a bit of the
 * suffix or the taken bit before it. */
static inline bool heap_index_prefix_touched(uint64_t x, uint64_t changed)
{
    uint64_t low = ((x & ~(x + 1)) << 1) | 1u; /* bits 0..prefix */
    return (changed & low) != 0;
}

static inline bool heap_index_suffix_touched(uint64_t x, uint64_t changed)
{
    uint64_t high = ~((UINT64_MAX >> 1) >> heap_index_clz64(~x | 1u)); /* bits 63 - suffix..63 */
    return (changed & high) != 0;
}

/* Bit p of the result is set iff bits p..p+n-1 of x are all 1; 1 <= n <= 64. */
static inline uint64_t heap_index_word_runs(uint64_t x, uint32_t n)
{
    uint32_t have = 1; /* bit p of x is set iff a run of `have` starts at p */
    while (have < n) {
        uint32_t step = have < n - have ? have : n - have;
        x &= x >> step;
        have += step;
    }
    return x;
}

/*
 * Eight byte counts in one word (byte k = bits 8k..8k+7). The index writes
 * counts of at most 64; a count's top bit, which only a stray write can
 * set, is ignored by both versions alike, so that no borrow crosses bytes.
 */
#define HEAP_INDEX_BYTES_LOW 0x0101010101010101ull
#define HEAP_INDEX_BYTES_HIGH 0x8080808080808080ull

static inline uint32_t heap_index_byte(uint64_t g, uint32_t k)
{
    return (uint32_t)(g >> (8 * k)) & 0x7Fu;
}

/* The top bit of every byte of g that is >= n (1 <= n <= 64): a byte with
 * its top bit set, minus n, keeps that bit iff the byte was >= n. */
static inline uint64_t heap_index_at_least_bits(uint64_t g, uint32_t n)
{
    return ((g | HEAP_INDEX_BYTES_HIGH) - n * HEAP_INDEX_BYTES_LOW) & HEAP_INDEX_BYTES_HIGH;
}

/* The first byte of g that is >= n, or 8 if none. */
static inline uint32_t heap_index_first_at_least_swar(uint64_t g, uint32_t n)
{
    uint64_t ge = heap_index_at_least_bits(g, n);
    return (heap_index_ctz64(ge | ((uint64_t)1 << 63)) >> 3) + (uint32_t)(ge == 0); /* no branch: 8 if none */
}

static inline uint32_t heap_index_first_at_least_loop(uint64_t g, uint32_t n)
{
    uint32_t k = 0;
    while (k < 8 && heap_index_byte(g, k) < n) {
        k++;
    }
    return k;
}

/* In every byte, the larger of g's and other's (bytes below 128: the same
 * borrow-free test). */
static inline uint64_t heap_index_bytes_max(uint64_t g, uint64_t other)
{
    uint64_t ge = ((g | HEAP_INDEX_BYTES_HIGH) - other) & HEAP_INDEX_BYTES_HIGH; /* g's byte >= other's */
    uint64_t keep = (ge << 1) - (ge >> 7); /* 0xFF in each byte whose top bit ge has: 2^(8k+8) - 2^(8k) */
    return (g & keep) | (other & ~keep);
}

/* The largest of g's eight bytes: three rounds of halving. */
static inline uint32_t heap_index_byte_max_swar(uint64_t g)
{
    g &= ~HEAP_INDEX_BYTES_HIGH;
    g = heap_index_bytes_max(g, g >> 32);
    g = heap_index_bytes_max(g, g >> 16);
    g = heap_index_bytes_max(g, g >> 8);
    return (uint32_t)g & 0x7Fu;
}

static inline uint32_t heap_index_byte_max_loop(uint64_t g)
{
    uint32_t max = 0;
    for (uint32_t k = 0; k < 8; k++) {
        max = heap_index_byte(g, k) > max ? heap_index_byte(g, k) : max;
    }
    return max;
}

static inline uint32_t heap_index_first_at_least(uint64_t g, uint32_t n)
{
    return HEAP_INDEX_TWIN(HEAP_INDEX_SWAR, heap_index_first_at_least_swar(g, n), heap_index_first_at_least_loop(g, n));
}

/* Is some byte of g >= n? */
static inline bool heap_index_any_at_least(uint64_t g, uint32_t n)
{
    return HEAP_INDEX_TWIN(HEAP_INDEX_SWAR, heap_index_at_least_bits(g, n) != 0, heap_index_first_at_least_loop(g, n) < 8);
}

static inline uint32_t heap_index_byte_max(uint64_t g)
{
    return HEAP_INDEX_TWIN(HEAP_INDEX_SWAR, heap_index_byte_max_swar(g), heap_index_byte_max_loop(g));
}

/* Byte k of *g set to v (<= 64). */
static inline void heap_index_byte_set(uint64_t* g, uint32_t k, uint32_t v)
{
    *g = (*g & ~((uint64_t)0xFFu << (8 * k))) | ((uint64_t)v << (8 * k));
}

#endif /* PEACHOS_HEAP_INDEX_BITS_H */
