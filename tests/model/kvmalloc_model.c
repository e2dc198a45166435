/*
 * tests/model/kvmalloc_model.c - seeded differential model test of
 * virtually contiguous allocations (kvmalloc.h) over a multiheap whose
 * physical memory is fragmented on purpose.
 *
 * Each layout: 2..6 regions of 1..400 blocks in one arena of real memory
 * (adjacent or apart by a gap, each with or without a placement index) in
 * a multiheap, and a kvmalloc window over them: a range reserved PROT_NONE
 * (so any access the library made at a window address would fault), of
 * about as many blocks as the regions or, one layout in four, fewer (the
 * window fills first), indexed or not, mapped through the simulated page
 * table of tests/unit/sim_pagetable.h. The regions are filled with single
 * blocks and about half of them freed at random, so most free runs are
 * short. Then random operations, the way kheap combines the two (kmalloc:
 * contiguous first, the window when no region has the run; kfree, ksize and
 * krealloc dispatched by the pointer; krealloc of heap memory that can
 * neither grow nor move contiguously goes into the window):
 *   - alloc of a few blocks, and of runs longer than any free run (or of
 *     every free block, or one more), so that they come from the window;
 *   - free (kfree or krealloc to 0) with the contents verified;
 *   - krealloc growing and shrinking, contiguous and window allocations;
 *   - ksize of live allocations, and of bad pointers (0);
 *   - bad frees into the window: interior, unaligned, double free, never
 *     allocated; a backing block freed in its region (wrong owner); a
 *     corrupt backing record (WINDOW_CORRUPT, then restored);
 *   - the map hook refusing one of an allocation's calls (NULL, nothing
 *     changed).
 * The model decides every pointer itself: a contiguous allocation is the
 * first fit by address across its maps of the regions; a window allocation
 * the first fit in its map of the window, backed by the lowest free blocks
 * of the regions in address order (it predicts each backing block, and
 * checks it in kvmalloc_backing and in the page table). Contents: every
 * block carries a stamp at its start and end, written and checked through
 * the simulated MMU for window allocations.
 * After every operation: kvmalloc_check (V1..V6, the page table included)
 * and multiheap_check pass; the counters agree with the model (blocks used
 * and allocations in the regions, window blocks and allocations, pages
 * mapped, failed allocations of each, map failures, refused frees of each)
 * and a refused free is reported once with its kind. Every CHECK_EVERY
 * operations and at the end of a layout: every table byte of every region
 * (plain chains, VMAP bytes 45) and of the window, the backing record and
 * the page table against the model's, and the stamps of every live
 * allocation.
 *
 * Usage: kvmalloc_model [--seed N] [--ops N]   (default: seed 1, 300,000 ops)
 * On a failure it prints the seed, the layout and the operation number.
 */
#define _DEFAULT_SOURCE
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "memory/heap/heap_index.h"
#include "memory/heap/heap_internal.h"
#include "memory/heap/kvmalloc.h"
#include "memory/heap/multiheap.h"
#include "status.h"
#include "memory/heap/heap_status.h"

#include "../unit/sim_pagetable.h"
#include "model_regions.h"

#define BS ((size_t)PEACHOS_HEAP_BLOCK_SIZE)
#define MAX_REGIONS 6
#define MAX_REGION_BLOCKS 400
#define MAX_GAP 2
#define ARENA_BLOCKS (MAX_REGIONS * (MAX_REGION_BLOCKS + MAX_GAP) + MAX_GAP)
#define MAX_WINDOW_BLOCKS (MAX_REGIONS * MAX_REGION_BLOCKS + 64)
#define OPS_PER_LAYOUT 3000
#define MAX_LIVE 4096
#define CHECK_EVERY 250
#define VMAP_BYTE ((HEAP_BLOCK_TABLE_ENTRY)(HEAP_BLOCK_TABLE_ENTRY_TAKEN | HEAP_BLOCK_IS_FIRST | HEAP_BLOCK_TYPE_VMAP))

_Static_assert(MAX_REGIONS <= MULTIHEAP_MAX_REGIONS && MAX_REGIONS <= KVMALLOC_MAX_SOURCES, "6 regions");
_Static_assert(MAX_REGIONS * MAX_REGION_BLOCKS < MAX_LIVE, "every block can be a live allocation");

/* The model's map of a region (struct m_region's map): what each block is
 * (heap_scan_first_fit: nonzero = taken). */
enum
{
    M_FREE = 0,
    M_PLAIN = 1,
    M_VMAP = 2,
};

struct m_alloc
{
    unsigned char* ptr; /* a region address, or a window address */
    size_t blocks;
    bool window;
    size_t region; /* contiguous only */
    uint64_t stamp;
};

struct model
{
    uint64_t seed;
    uint64_t rng;
    unsigned long long op;
    unsigned layout;
    unsigned char* arena;
    unsigned char* window_range; /* PROT_NONE, MAX_WINDOW_BLOCKS blocks */
    struct multiheap mh;
    struct m_region r[MAX_REGIONS]; /* in address order */
    size_t nr;
    /* the window */
    struct kvmalloc kv;
    size_t wblocks;
    HEAP_BLOCK_TABLE_ENTRY* wtable;
    void* windex;
    void** backing;
    void* pte[MAX_WINDOW_BLOCKS];
    struct sim_pt sim;
    struct heap_table wmap; /* the model's window: 1 = taken */
    void** wback;           /* the model's backing record */
    /* live allocations and counters */
    struct m_alloc live[MAX_LIVE];
    size_t nlive;
    size_t used;     /* region blocks taken, plain and VMAP */
    size_t nplain;   /* live contiguous allocations */
    size_t vmap;     /* VMAP blocks = window blocks taken = pages mapped */
    size_t nwindow;  /* live window allocations */
    size_t mh_failed, kv_failed, map_failed, window_refused, region_refused;
    unsigned char* last_window_freed;
    size_t reports;
    struct heap_report last_report;
    /* for the summary */
    unsigned long long contiguous, windowed, nulls, frees, reallocs, shrunk, grown, moved, into_window, sizes,
        bad_frees, corrupt_records, map_faults, regions, small_windows;
};

static struct model* the_model;

static void die(const struct model* m, int line, const char* what)
{
    fprintf(stderr, "kvmalloc_model: FAILED line %d: %s (seed %" PRIu64 ", layout %u, op %llu)\n", line, what,
            m->seed, m->layout, m->op);
    exit(1);
}
#define CHECK(m, cond)                  \
    do {                                \
        if (!(cond)) {                  \
            die((m), __LINE__, #cond);  \
        }                               \
    } while (0)

static void sim_misuse(const char* what)
{
    die(the_model, __LINE__, what);
}

/* xorshift64* (the state is never 0: main seeds it with an odd number). */
static uint64_t rnd(struct model* m)
{
    m->rng ^= m->rng >> 12;
    m->rng ^= m->rng << 25;
    m->rng ^= m->rng >> 27;
    return m->rng * 0x2545F4914F6CDD1Dull;
}

static size_t below(struct model* m, size_t n)
{
    return (size_t)(rnd(m) % n);
}

static void on_report(void* ctx, const struct heap_report* report)
{
    struct model* m = ctx;
    m->reports++;
    m->last_report = *report;
}

/* A size in bytes of exactly n blocks. */
static size_t bytes_for(struct model* m, size_t n)
{
    return (n - 1) * BS + 1 + below(m, BS);
}

/* ---------------------------------------------------------- the stamps */

/* The first byte of block i of an allocation at ptr: through the MMU for
 * a window allocation. */
static unsigned char* block_at(struct model* m, unsigned char* ptr, bool window, size_t i)
{
    return window ? sim_pt_translate(&m->sim, ptr + i * BS) : ptr + i * BS;
}

static uint64_t stamp_of(uint64_t stamp, size_t i)
{
    return stamp ^ ((uint64_t)i * 0x9E3779B97F4A7C15ull);
}

static void stamp_blocks(struct model* m, const struct m_alloc* a, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++) {
        uint64_t v = stamp_of(a->stamp, i);
        unsigned char* b = block_at(m, a->ptr, a->window, i);
        memcpy(b, &v, sizeof(v));
        memcpy(b + BS - sizeof(v), &v, sizeof(v));
    }
}

/* The first n blocks at (ptr, window) carry a's stamps. */
static void check_stamps(struct model* m, unsigned char* ptr, bool window, const struct m_alloc* a, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t v = stamp_of(a->stamp, i);
        const unsigned char* b = block_at(m, ptr, window, i);
        CHECK(m, memcmp(b, &v, sizeof(v)) == 0);
        CHECK(m, memcmp(b + BS - sizeof(v), &v, sizeof(v)) == 0);
    }
}

/* ------------------------------------------- the system under test
 * kheap's combination of the two (kheap.c, kheap_vmalloc.c), with the
 * window reached through the simulated MMU. */

static void* sut_alloc(struct model* m, size_t size)
{
    void* p = multiheap_malloc(&m->mh, size);
    return p != NULL ? p : kvmalloc_alloc(&m->kv, size);
}

static void sut_free(struct model* m, void* p)
{
    if (kvmalloc_owns(&m->kv, p)) {
        kvmalloc_free(&m->kv, p);
    } else {
        multiheap_free(&m->mh, p);
    }
}

static size_t sut_size(struct model* m, const void* p)
{
    return kvmalloc_owns(&m->kv, p) ? kvmalloc_size(&m->kv, p) : multiheap_allocation_size(&m->mh, p);
}

static void* sut_realloc(struct model* m, unsigned char* p, size_t size)
{
    if (kvmalloc_owns(&m->kv, p)) {
        return kvmalloc_realloc(&m->kv, p, size);
    }
    unsigned char* moved = multiheap_realloc(&m->mh, p, size);
    size_t have = moved == NULL && size != 0 ? multiheap_allocation_size(&m->mh, p) / BS : 0;
    if (have != 0 && (moved = kvmalloc_alloc(&m->kv, size)) != NULL) {
        for (size_t b = 0; b < have; b++) { /* have < the size asked for: it did not fit */
            memcpy(sim_pt_translate(&m->sim, moved + b * BS), p + b * BS, BS);
        }
        multiheap_free(&m->mh, p);
    }
    return moved;
}

/* ------------------------------------------------------- the reference */

static void mark(struct model* m, size_t region, size_t first, size_t n, unsigned char what)
{
    memset(m->r[region].map.entries + first, what, n);
    m->used = what != M_FREE ? m->used + n : m->used - n;
}

static size_t first_block(const struct model* m, const struct m_alloc* a)
{
    return (size_t)(a->ptr - m->r[a->region].start) / BS;
}

static size_t window_block(const struct model* m, const unsigned char* p)
{
    return (size_t)((uintptr_t)p - (uintptr_t)m->window_range) / BS;
}

static size_t free_blocks(const struct model* m)
{
    size_t total = 0;
    for (size_t k = 0; k < m->nr; k++) {
        total += m->r[k].blocks;
    }
    return total - m->used;
}

static size_t largest_run(const struct model* m)
{
    size_t best = 0;
    for (size_t k = 0; k < m->nr; k++) {
        size_t run = 0;
        for (size_t b = 0; b < m->r[k].blocks; b++) {
            run = m->r[k].map.entries[b] == M_FREE ? run + 1 : 0;
            best = run > best ? run : best;
        }
    }
    return best;
}

/* Where a window allocation of n blocks goes: its first window block, or
 * SIZE_MAX when the window has no run or the regions too few free blocks. */
static size_t window_fit(const struct model* m, size_t n)
{
    return free_blocks(m) >= n ? heap_scan_first_fit(&m->wmap, n) : SIZE_MAX;
}

/* Window blocks [w0, w0 + n) taken, backed by the regions' lowest free
 * blocks in address order (what kvmalloc_alloc must do). */
static void window_take(struct model* m, size_t w0, size_t n)
{
    size_t got = 0;
    for (size_t k = 0; k < m->nr && got < n; k++) {
        for (size_t b = 0; b < m->r[k].blocks && got < n; b++) {
            if (m->r[k].map.entries[b] == M_FREE) {
                mark(m, k, b, 1, M_VMAP);
                m->wback[w0 + got++] = m->r[k].start + b * BS;
            }
        }
    }
    CHECK(m, got == n);
    memset(m->wmap.entries + w0, 1, n);
    m->vmap += n;
}

/* Window blocks [from, to) given back, and their backing blocks. */
static void window_release(struct model* m, size_t from, size_t to)
{
    for (size_t w = from; w < to; w++) {
        unsigned char* block = m->wback[w];
        size_t k = m_regions_find(m->r, m->nr, block);
        mark(m, k, (size_t)(block - m->r[k].start) / BS, 1, M_FREE);
        m->wback[w] = NULL;
    }
    memset(m->wmap.entries + from, 0, to - from);
    m->vmap -= to - from;
}

/* A new window allocation the SUT returned at got: where the model put it,
 * with the backing blocks it chose, in the record and the page table. */
static void check_window_alloc(struct model* m, const unsigned char* got, size_t w0, size_t n)
{
    CHECK(m, got == m->window_range + w0 * BS);
    for (size_t i = 0; i < n; i++) {
        CHECK(m, kvmalloc_backing(&m->kv, got + i * BS + below(m, BS)) == m->wback[w0 + i]);
        CHECK(m, m->pte[w0 + i] == m->wback[w0 + i]);
    }
}

/* ------------------------------------------------------ after each op */

static void check_state(struct model* m)
{
    size_t bad = 0;
    size_t bad_region = 0;
    if (kvmalloc_check(&m->kv, &bad) != 0) {
        fprintf(stderr, "kvmalloc_check: window block %zu\n", bad);
        die(m, __LINE__, "kvmalloc_check");
    }
    if (multiheap_check(&m->mh, &bad_region, &bad) != 0) {
        fprintf(stderr, "multiheap_check: region %zu block %zu\n", bad_region, bad);
        die(m, __LINE__, "multiheap_check");
    }
    struct multiheap_stats s;
    multiheap_get_stats(&m->mh, &s, NULL, 0);
    CHECK(m, s.total.used_blocks == m->used);
    CHECK(m, s.total.live_allocations == m->nplain + m->vmap); /* every VMAP block is an allocation */
    CHECK(m, s.total.failed_allocs == m->mh_failed);
    CHECK(m, s.total.rejected_frees == m->region_refused);
    CHECK(m, m->kv.blocks == m->vmap && m->kv.window.used_blocks == m->vmap && m->sim.mapped == m->vmap);
    CHECK(m, m->kv.window.live_allocations == m->nwindow);
    CHECK(m, m->kv.failed_allocs == m->kv_failed && m->kv.map_failures == m->map_failed);
    CHECK(m, m->kv.window.rejected_frees == m->window_refused);
}

/* The table bytes the model expects in region k (chains of the live
 * contiguous allocations, 45 for VMAP blocks). */
static void expected_table(const struct model* m, size_t k, HEAP_BLOCK_TABLE_ENTRY* out)
{
    for (size_t b = 0; b < m->r[k].blocks; b++) {
        out[b] = m->r[k].map.entries[b] == M_VMAP ? VMAP_BYTE : HEAP_BLOCK_TABLE_ENTRY_FREE;
    }
    for (size_t i = 0; i < m->nlive; i++) {
        const struct m_alloc* a = &m->live[i];
        if (a->window || a->region != k) {
            continue;
        }
        size_t first = first_block(m, a);
        for (size_t j = 0; j < a->blocks; j++) {
            out[first + j] = (HEAP_BLOCK_TABLE_ENTRY)(HEAP_BLOCK_TABLE_ENTRY_TAKEN | (j == 0 ? HEAP_BLOCK_IS_FIRST : 0) |
                                                      (j + 1 < a->blocks ? HEAP_BLOCK_HAS_NEXT : 0));
        }
    }
}

static void check_everything(struct model* m)
{
    static HEAP_BLOCK_TABLE_ENTRY want[MAX_REGION_BLOCKS];
    for (size_t k = 0; k < m->nr; k++) {
        const struct heap* heap = multiheap_region(&m->mh, k);
        CHECK(m, heap != NULL && heap->saddr == m->r[k].start && m->kv.source[k] == heap);
        expected_table(m, k, want);
        CHECK(m, memcmp(heap->table->entries, want, m->r[k].blocks) == 0);
    }
    for (size_t w = 0; w < m->wblocks; w++) {
        CHECK(m, (m->wtable[w] & HEAP_BLOCK_TABLE_ENTRY_TAKEN) == m->wmap.entries[w]);
        CHECK(m, m->backing[w] == m->wback[w] && m->pte[w] == m->wback[w]);
    }
    for (size_t i = 0; i < m->nlive; i++) {
        const struct m_alloc* a = &m->live[i];
        if (a->window) {
            CHECK(m, heap_allocation_blocks(&m->kv.window, window_block(m, a->ptr)) == a->blocks);
        }
        check_stamps(m, a->ptr, a->window, a, a->blocks);
    }
}

/* ------------------------------------------------------------ the ops */

static struct m_alloc* add_live(struct model* m, unsigned char* p, size_t n, bool window, size_t region)
{
    CHECK(m, m->nlive < MAX_LIVE);
    struct m_alloc* a = &m->live[m->nlive++];
    a->ptr = p;
    a->blocks = n;
    a->window = window;
    a->region = region;
    a->stamp = rnd(m);
    if (window) {
        m->nwindow++;
    } else {
        mark(m, region, first_block(m, a), n, M_PLAIN);
        m->nplain++;
    }
    stamp_blocks(m, a, 0, n);
    return a;
}

/* Allocate n blocks the way kmalloc does; `fail_map`: make the map hook
 * refuse one of the window's calls (if the request goes there). */
static void alloc_blocks(struct model* m, size_t n, bool fail_map)
{
    size_t size = bytes_for(m, n);
    size_t region = 0;
    unsigned char* want = m_regions_first_fit(m->r, m->nr, n, &region);
    size_t w0 = want == NULL ? window_fit(m, n) : SIZE_MAX;
    bool refuse = fail_map && w0 != SIZE_MAX;
    if (refuse) {
        m->sim.fail_at = m->sim.calls + below(m, n);
    }
    unsigned char* got = sut_alloc(m, size);
    m->sim.fail_at = SIZE_MAX;
    if (want != NULL) {
        CHECK(m, got == want);
        CHECK(m, multiheap_allocation_size(&m->mh, got) == n * BS);
        add_live(m, got, n, false, region);
        m->contiguous++;
        return;
    }
    m->mh_failed++;
    if (w0 == SIZE_MAX || refuse) {
        CHECK(m, got == NULL);
        m->kv_failed++;
        m->map_failed += refuse;
        m->map_faults += refuse;
        m->nulls++;
        return;
    }
    window_take(m, w0, n);
    check_window_alloc(m, got, w0, n);
    CHECK(m, kvmalloc_size(&m->kv, got) == n * BS && sut_size(m, got) == n * BS);
    add_live(m, got, n, true, 0);
    m->windowed++;
}

static size_t small_blocks(struct model* m)
{
    return below(m, 10) < 7 ? 1 + below(m, 3) : 1 + below(m, 32);
}

/* A run longer than any free run (mostly), every free block, or one more. */
static size_t big_blocks(struct model* m)
{
    size_t run = largest_run(m);
    size_t c = below(m, 10);
    if (c < 7) {
        return run + 1 + below(m, 8);
    }
    if (c < 9) {
        size_t n = free_blocks(m) + below(m, 2);
        return n == 0 ? 1 : n;
    }
    return 1 + below(m, run + 1);
}

static void forget(struct model* m, size_t i)
{
    m->live[i] = m->live[--m->nlive];
}

/* Model side of freeing live[i] (the SUT already freed it). */
static void model_free(struct model* m, size_t i)
{
    struct m_alloc a = m->live[i];
    if (a.window) {
        size_t w0 = window_block(m, a.ptr);
        window_release(m, w0, w0 + a.blocks);
        m->nwindow--;
        m->last_window_freed = a.ptr;
    } else {
        mark(m, a.region, first_block(m, &a), a.blocks, M_FREE);
        m->nplain--;
    }
    forget(m, i);
}

static void op_free(struct model* m, size_t i)
{
    struct m_alloc* a = &m->live[i];
    check_stamps(m, a->ptr, a->window, a, a->blocks);
    if (below(m, 4) == 0) {
        CHECK(m, sut_realloc(m, a->ptr, 0) == NULL);
    } else {
        sut_free(m, a->ptr);
    }
    CHECK(m, sut_size(m, a->ptr) == 0);
    model_free(m, i);
    m->frees++;
}

static bool fits_in_place(const struct model* m, const struct m_alloc* a, size_t want)
{
    const struct m_region* r = &m->r[a->region];
    size_t first = first_block(m, a);
    if (want > r->blocks - first) {
        return false;
    }
    for (size_t b = first + a->blocks; b < first + want; b++) {
        if (r->map.entries[b] != M_FREE) {
            return false;
        }
    }
    return true;
}

/* The model's side of moving a (its a->blocks blocks) into a new window
 * allocation of `want` blocks the SUT returned at got: false (got must be
 * NULL) when the window has no run or the regions too few blocks; else
 * the window blocks taken and checked, with a's stamps copied to them. */
static bool window_move(struct model* m, const struct m_alloc* a, size_t want, unsigned char* got)
{
    size_t w1 = window_fit(m, want);
    if (w1 == SIZE_MAX) {
        CHECK(m, got == NULL);
        m->kv_failed++;
        m->nulls++;
        return false;
    }
    window_take(m, w1, want);
    check_window_alloc(m, got, w1, want);
    check_stamps(m, got, true, a, a->blocks);
    return true;
}

/* A window allocation resized to `want` blocks: in place when it shrinks,
 * else moved to a new window allocation (the old one still held). */
static void realloc_window(struct model* m, struct m_alloc* a, size_t want, unsigned char* got)
{
    size_t w0 = window_block(m, a->ptr);
    if (want <= a->blocks) {
        CHECK(m, got == a->ptr);
        window_release(m, w0 + want, w0 + a->blocks);
        m->shrunk++;
        a->blocks = want;
        return;
    }
    if (!window_move(m, a, want, got)) {
        return;
    }
    window_release(m, w0, w0 + a->blocks);
    a->ptr = got;
    a->blocks = want;
    m->last_window_freed = m->window_range + w0 * BS;
    m->moved++;
}

/* A contiguous allocation resized: in place, moved to the first fit, or
 * (no region has the run) into the window. */
static void realloc_contiguous(struct model* m, struct m_alloc* a, size_t want, unsigned char* got)
{
    size_t have = a->blocks;
    size_t first = first_block(m, a);
    if (want <= have || fits_in_place(m, a, want)) {
        CHECK(m, got == a->ptr);
        if (want < have) {
            mark(m, a->region, first + want, have - want, M_FREE);
            m->shrunk++;
        } else if (want > have) {
            mark(m, a->region, first + have, want - have, M_PLAIN);
            m->grown++;
        }
        a->blocks = want;
        return;
    }
    size_t region = 0;
    unsigned char* fit = m_regions_first_fit(m->r, m->nr, want, &region);
    if (fit != NULL) {
        CHECK(m, got == fit);
        check_stamps(m, got, false, a, have);
        mark(m, a->region, first, have, M_FREE);
        a->ptr = got;
        a->region = region;
        mark(m, region, first_block(m, a), want, M_PLAIN);
        a->blocks = want;
        m->moved++;
        return;
    }
    m->mh_failed++;
    if (!window_move(m, a, want, got)) {
        return;
    }
    mark(m, a->region, first, have, M_FREE);
    m->nplain--;
    m->nwindow++;
    a->ptr = got;
    a->window = true;
    a->blocks = want;
    m->into_window++;
}

static void op_realloc(struct model* m, size_t i)
{
    struct m_alloc* a = &m->live[i];
    check_stamps(m, a->ptr, a->window, a, a->blocks);
    size_t have = a->blocks;
    size_t c = below(m, 3);
    size_t want = c == 0 ? 1 + below(m, have + 3) : c == 1 ? small_blocks(m) : big_blocks(m);
    unsigned char* got = sut_realloc(m, a->ptr, bytes_for(m, want));
    m->reallocs++;
    if (a->window) {
        realloc_window(m, a, want, got);
    } else {
        realloc_contiguous(m, a, want, got);
    }
    if (got != NULL) {
        CHECK(m, sut_size(m, got) == want * BS);
        if (want > have) {
            stamp_blocks(m, a, have, want);
        }
    }
}

static void op_size(struct model* m)
{
    const struct m_alloc* a = &m->live[below(m, m->nlive)];
    CHECK(m, sut_size(m, a->ptr) == a->blocks * BS);
    CHECK(m, (a->window ? multiheap_allocation_size(&m->mh, a->ptr) : kvmalloc_size(&m->kv, a->ptr)) == 0);
    if (a->blocks > 1) {
        CHECK(m, sut_size(m, a->ptr + (1 + below(m, a->blocks - 1)) * BS) == 0); /* interior */
    }
    CHECK(m, sut_size(m, a->ptr + 1 + below(m, BS - 1)) == 0); /* unaligned */
    m->sizes++;
}

/* A free (1 in 4: a krealloc) of `ptr` that must be refused with `kind`,
 * counted by the window or by a region. */
static void expect_refused(struct model* m, void* ptr, enum heap_report_kind kind, bool by_window)
{
    size_t reports = m->reports;
    if (below(m, 4) == 0 && kind != HEAP_REPORT_FREE_WRONG_OWNER) {
        CHECK(m, sut_realloc(m, ptr, 1 + below(m, 4 * BS)) == NULL);
    } else {
        sut_free(m, ptr);
    }
    CHECK(m, m->reports == reports + 1);
    CHECK(m, m->last_report.kind == kind && m->last_report.ptr == ptr);
    m->window_refused += by_window;
    m->region_refused += !by_window;
    m->bad_frees++;
}

/* A live window allocation, or NULL if there is none (a few tries). */
static struct m_alloc* some_window_alloc(struct model* m)
{
    for (int tries = 0; tries < 8 && m->nlive > 0; tries++) {
        struct m_alloc* a = &m->live[below(m, m->nlive)];
        if (a->window) {
            return a;
        }
    }
    return NULL;
}

/* Overwrite one entry of a live window allocation's backing record: the
 * free is refused as WINDOW_CORRUPT and kvmalloc_check names the entry;
 * then the entry is put back. */
static void corrupt_record(struct model* m, const struct m_alloc* a)
{
    size_t w0 = window_block(m, a->ptr);
    size_t j = below(m, a->blocks);
    void* saved = m->backing[w0 + j];
    size_t c = below(m, 4);
    void* other = c == 0 ? NULL
                : c == 1 ? (unsigned char*)saved + 8 /* unaligned */
                : c == 2 ? m->r[0].start             /* a block that is no VMAP block, or the wrong one */
                         : (void*)m->window_range;   /* in no region */
    if (other == saved || (c == 2 && m->r[0].map.entries[0] == M_VMAP)) {
        return;
    }
    m->backing[w0 + j] = other;
    size_t bad = 0;
    CHECK(m, kvmalloc_check(&m->kv, &bad) == -ECORRUPT && bad == w0 + j);
    expect_refused(m, a->ptr, HEAP_REPORT_WINDOW_CORRUPT, true);
    CHECK(m, m->last_report.block == w0);
    m->backing[w0 + j] = saved;
    m->corrupt_records++;
}

static void op_bad_free(struct model* m)
{
    size_t c = below(m, 6);
    struct m_alloc* a = some_window_alloc(m);
    if (c == 0 && a != NULL && a->blocks > 1) {
        expect_refused(m, a->ptr + (1 + below(m, a->blocks - 1)) * BS, HEAP_REPORT_FREE_INTERIOR, true);
    } else if (c == 1 && a != NULL) {
        expect_refused(m, a->ptr + 1 + below(m, BS - 1), HEAP_REPORT_FREE_UNALIGNED, true);
    } else if (c == 2 && m->last_window_freed != NULL &&
               m->wmap.entries[window_block(m, m->last_window_freed)] == 0) {
        expect_refused(m, m->last_window_freed, HEAP_REPORT_FREE_NOT_ALLOCATED, true); /* a double free */
    } else if (c == 3) {
        size_t w = below(m, m->wblocks);
        if (m->wmap.entries[w] == 0) {
            expect_refused(m, m->window_range + w * BS, HEAP_REPORT_FREE_NOT_ALLOCATED, true); /* never allocated */
        }
    } else if (c == 4 && a != NULL) {
        void* block = m->wback[window_block(m, a->ptr) + below(m, a->blocks)];
        expect_refused(m, block, HEAP_REPORT_FREE_WRONG_OWNER, false); /* a backing block, in its region */
    } else if (c == 5 && a != NULL) {
        corrupt_record(m, a);
    }
}

static void step(struct model* m)
{
    size_t c = below(m, 100);
    if (m->nlive == MAX_LIVE && c < 45) {
        c = 50;
    }
    if (m->nlive == 0 || c < 27) {
        alloc_blocks(m, small_blocks(m), false);
    } else if (c < 42) {
        alloc_blocks(m, big_blocks(m), below(m, 10) == 0);
    } else if (c < 70) {
        op_free(m, below(m, m->nlive));
    } else if (c < 87) {
        op_realloc(m, below(m, m->nlive));
    } else if (c < 92) {
        op_size(m);
    } else {
        op_bad_free(m);
    }
}

/* ------------------------------------------------------------ layouts */

static size_t random_region_blocks(struct model* m)
{
    size_t c = below(m, 10);
    return c < 6 ? 1 + below(m, MAX_REGION_BLOCKS) : c < 9 ? 1 + below(m, 64) : 1 + below(m, 3);
}

static void make_window(struct model* m, size_t total)
{
    m->wblocks = below(m, 4) == 0 ? 1 + below(m, total / 2 + 1) : total + below(m, 65);
    m->small_windows += m->wblocks < total;
    m->wtable = malloc(m->wblocks);
    m->windex = below(m, 2) == 0 ? malloc(heap_index_bytes(m->wblocks)) : NULL;
    m->backing = malloc(KVMALLOC_BACKING_BYTES(m->wblocks));
    m->wback = calloc(m->wblocks, sizeof(void*));
    m->wmap.entries = calloc(m->wblocks, 1);
    m->wmap.total = m->wblocks;
    CHECK(m, m->wtable != NULL && m->backing != NULL && m->wback != NULL && m->wmap.entries != NULL);
    sim_pt_init(&m->sim, (uintptr_t)m->window_range, m->pte, m->wblocks, m->arena, ARENA_BLOCKS * BS, sim_misuse);
    struct kvmalloc_ops ops = sim_pt_ops(&m->sim);
    CHECK(m, kvmalloc_init(&m->kv, m->window_range, m->window_range + m->wblocks * BS, m->wtable, m->windex,
                           m->windex != NULL ? heap_index_bytes(m->wblocks) : 0, m->backing, &ops) == 0);
    kvmalloc_set_report(&m->kv, on_report, m);
    for (size_t k = 0; k < m->nr; k++) { /* in reverse address order: kept sorted */
        CHECK(m, kvmalloc_add_source(&m->kv, multiheap_region(&m->mh, m->nr - 1 - k)) == 0);
    }
}

/* Every region filled with single blocks, then about half of them freed at
 * random (each step checked like an operation). */
static void fragment(struct model* m)
{
    while (free_blocks(m) > 0) {
        alloc_blocks(m, 1, false);
        check_state(m);
    }
    for (size_t i = m->nlive; i-- > 0;) {
        if (below(m, 2) == 0) {
            op_free(m, i);
            check_state(m);
        }
    }
}

static void new_layout(struct model* m)
{
    CHECK(m, multiheap_init(&m->mh) == 0);
    multiheap_set_report(&m->mh, on_report, m);
    m->nr = 2 + below(m, MAX_REGIONS - 1);
    unsigned char* at = m->arena + below(m, MAX_GAP + 1) * BS;
    size_t total = 0;
    for (size_t k = 0; k < m->nr; k++) {
        CHECK(m, m_region_init(&m->r[k], at, random_region_blocks(m), below(m, 2) == 0));
        CHECK(m, m_region_add(&m->mh, &m->r[k]) == 0);
        total += m->r[k].blocks;
        at += m->r[k].blocks * BS;
        at += below(m, 2) == 0 ? 0 : (1 + below(m, MAX_GAP)) * BS; /* adjacent or a gap */
    }
    make_window(m, total);
    m->nlive = m->used = m->nplain = m->vmap = m->nwindow = 0;
    m->mh_failed = m->kv_failed = m->map_failed = m->window_refused = m->region_refused = 0;
    m->last_window_freed = NULL;
    m->regions += m->nr;
    check_state(m);
    fragment(m);
    check_everything(m);
}

static void end_layout(struct model* m)
{
    check_everything(m);
    while (m->nlive > 0) {
        op_free(m, m->nlive - 1);
    }
    check_state(m);
    CHECK(m, m->used == 0 && m->sim.mapped == 0);
    for (size_t k = 0; k < m->nr; k++) {
        m_region_free(&m->r[k]);
    }
    free(m->wtable);
    free(m->windex);
    free(m->backing);
    free(m->wback);
    free(m->wmap.entries);
}

static unsigned long long parse_number(const char* s)
{
    char* end = NULL;
    unsigned long long v = strtoull(s, &end, 0);
    if (end == s || *end != '\0') {
        fprintf(stderr, "kvmalloc_model: not a number: %s\n", s);
        exit(2);
    }
    return v;
}

static void* reserve(struct model* m, size_t blocks, int prot)
{
    size_t bytes = (blocks + 1) * BS;
    void* map = mmap(NULL, bytes, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    CHECK(m, map != MAP_FAILED);
    return (void*)(((uintptr_t)map + BS - 1) / BS * BS);
}

int main(int argc, char** argv)
{
    static struct model m;
    the_model = &m;
    unsigned long long ops = 300000;
    m.seed = 1;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--seed") == 0) {
            m.seed = parse_number(argv[i + 1]);
        } else if (strcmp(argv[i], "--ops") == 0) {
            ops = parse_number(argv[i + 1]);
        } else {
            fprintf(stderr, "usage: kvmalloc_model [--seed N] [--ops N]\n");
            return 2;
        }
    }
    if (argc % 2 == 0) {
        fprintf(stderr, "usage: kvmalloc_model [--seed N] [--ops N]\n");
        return 2;
    }
    m.rng = m.seed * 2 + 1;
    m.arena = reserve(&m, ARENA_BLOCKS, PROT_READ | PROT_WRITE);
    m.window_range = reserve(&m, MAX_WINDOW_BLOCKS, PROT_NONE); /* the library must never touch it */
    struct timespec t0;
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (m.op < ops) {
        m.layout++;
        new_layout(&m);
        for (unsigned i = 0; i < OPS_PER_LAYOUT && m.op < ops; i++, m.op++) {
            step(&m);
            check_state(&m);
            if (m.op % CHECK_EVERY == 0) {
                check_everything(&m);
            }
        }
        end_layout(&m);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("kvmalloc_model: %llu operations on %u layouts (%llu regions, fragmented; %llu windows smaller than "
           "the regions), seed %" PRIu64 ", %.2f s: %llu contiguous and %llu window allocations (%llu NULL as the "
           "model said, %llu of them a refused map call), %llu frees, %llu reallocs (%llu shrunk, %llu grown in "
           "place, %llu moved, %llu moved into the window), %llu ksize, %llu bad frees refused (%llu corrupt "
           "records); 0 divergences\n",
           m.op, m.layout, m.regions, m.small_windows, m.seed, secs, m.contiguous, m.windowed, m.nulls, m.map_faults,
           m.frees, m.reallocs, m.shrunk, m.grown, m.moved, m.into_window, m.sizes, m.bad_frees, m.corrupt_records);
    return 0;
}
