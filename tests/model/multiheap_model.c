/*
 * tests/model/multiheap_model.c - seeded differential model test of the
 * multiheap (multiheap.h) over random region layouts.
 *
 * Each layout has 1..8 regions of 1..3000 blocks in one arena of real
 * memory, some adjacent (the end of one the start of the next), some apart
 * by a gap of 1..3 blocks, each with or without a placement index, added
 * to the multiheap in a random order; an overlapping region is refused
 * with the multiheap unchanged. Then random operations: malloc and zalloc
 * of every kind of size (up to past any region), frees of live
 * allocations, realloc (shrink, grow in place, move across regions,
 * realloc(NULL, n), realloc(p, 0)), and bad frees (in a gap, before the
 * first region, past the last, interior, unaligned, free block, double
 * free). The model keeps its own map of taken blocks per region and
 * decides every pointer itself: the first fit across regions is the
 * lowest region, in address order, where heap_scan_first_fit over the
 * model's map finds a run (never a run across two regions); a realloc
 * stays where the model says it can and otherwise moves to that first fit.
 * After every operation:
 *   - the returned pointer is the model's;
 *   - multiheap_check passes (every region's heap_check, index included,
 *     and the multiheap's invariants);
 *   - the stats agree with the model (used blocks, live allocations,
 *     failed allocations, refused frees inside regions and outside them),
 *     and a refused free is reported once with the right kind;
 *   - contents: every block of every allocation carries a stamp at its
 *     start and its end, checked when the allocation is freed, moved or
 *     shrunk, and for all live ones every CHECK_EVERY operations, with the
 *     model's map compared to the tables' TAKEN bits.
 *
 * Usage: multiheap_model [--seed N] [--ops N]   (default: seed 1, 200,000 ops)
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
#include "memory/heap/multiheap.h"
#include "status.h"
#include "memory/heap/heap_status.h"

#include "model_regions.h"

#define BS ((size_t)PEACHOS_HEAP_BLOCK_SIZE)
#define MAX_REGIONS 8
#define MAX_REGION_BLOCKS 3000
#define MAX_GAP 3
#define ARENA_BLOCKS (MAX_REGIONS * (MAX_REGION_BLOCKS + MAX_GAP) + MAX_GAP)
#define OPS_PER_LAYOUT 2000
#define MAX_LIVE 2048
#define CHECK_EVERY 500

_Static_assert(MAX_REGIONS <= MULTIHEAP_MAX_REGIONS, "the model needs 8 regions");

struct m_alloc
{
    unsigned char* ptr;
    size_t blocks;
    size_t region;
    uint64_t stamp;
};

struct model
{
    uint64_t seed;
    uint64_t rng;
    unsigned long long op;
    unsigned layout;
    unsigned char* arena;
    struct multiheap mh;
    struct m_region r[MAX_REGIONS]; /* in address order */
    size_t nr;
    struct m_alloc live[MAX_LIVE];
    size_t nlive;
    size_t used;
    size_t failed;
    size_t refused_inside;
    size_t refused_outside;
    unsigned char* last_freed;
    size_t reports;
    struct heap_report last_report;
    /* for the summary */
    unsigned long long mallocs, nulls, frees, bad_frees, reallocs, moves, in_place, refused_regions, regions;
};

static void die(const struct model* m, int line, const char* what)
{
    fprintf(stderr, "multiheap_model: FAILED line %d: %s (seed %" PRIu64 ", layout %u, op %llu)\n", line, what,
            m->seed, m->layout, m->op);
    exit(1);
}
#define CHECK(m, cond)                  \
    do {                                \
        if (!(cond)) {                  \
            die((m), __LINE__, #cond);  \
        }                               \
    } while (0)

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

/* ---------------------------------------------------------- the stamps */

static uint64_t stamp_of(uint64_t stamp, size_t i)
{
    return stamp ^ ((uint64_t)i * 0x9E3779B97F4A7C15ull);
}

static void stamp_blocks(const struct m_alloc* a, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++) {
        uint64_t v = stamp_of(a->stamp, i);
        memcpy(a->ptr + i * BS, &v, sizeof(v));
        memcpy(a->ptr + (i + 1) * BS - sizeof(v), &v, sizeof(v));
    }
}

static void check_stamps(const struct model* m, const unsigned char* ptr, const struct m_alloc* a, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t v = stamp_of(a->stamp, i);
        CHECK(m, memcmp(ptr + i * BS, &v, sizeof(v)) == 0);
        CHECK(m, memcmp(ptr + (i + 1) * BS - sizeof(v), &v, sizeof(v)) == 0);
    }
}

/* ------------------------------------------------------- the reference */

static void mark(struct model* m, size_t region, size_t first, size_t n, unsigned char taken)
{
    memset(m->r[region].map.entries + first, taken, n);
    m->used = taken ? m->used + n : m->used - n;
}

static size_t block_of(const struct model* m, const struct m_alloc* a)
{
    return (size_t)(a->ptr - m->r[a->region].start) / BS;
}

/* ------------------------------------------------------ after each op */

static void check_state(struct model* m)
{
    size_t bad_region = 0;
    size_t bad_block = 0;
    if (multiheap_check(&m->mh, &bad_region, &bad_block) != 0) {
        fprintf(stderr, "multiheap_check: region %zu block %zu\n", bad_region, bad_block);
        die(m, __LINE__, "multiheap_check");
    }
    struct multiheap_stats s;
    multiheap_get_stats(&m->mh, &s, NULL, 0);
    CHECK(m, s.regions == m->nr);
    CHECK(m, s.total.used_blocks == m->used);
    CHECK(m, s.total.live_allocations == m->nlive);
    CHECK(m, s.total.failed_allocs == m->failed);
    CHECK(m, s.rejected_outside == m->refused_outside);
    CHECK(m, s.total.rejected_frees == m->refused_outside + m->refused_inside);
    CHECK(m, m->mh.failed_allocs == m->failed);
}

static void check_everything(struct model* m)
{
    for (size_t k = 0; k < m->nr; k++) {
        const struct heap* heap = multiheap_region(&m->mh, k);
        CHECK(m, heap != NULL && heap->saddr == m->r[k].start);
        for (size_t b = 0; b < m->r[k].blocks; b++) {
            CHECK(m, (heap->table->entries[b] & HEAP_BLOCK_TABLE_ENTRY_TAKEN) == m->r[k].map.entries[b]);
        }
    }
    for (size_t i = 0; i < m->nlive; i++) {
        check_stamps(m, m->live[i].ptr, &m->live[i], m->live[i].blocks);
    }
}

/* ------------------------------------------------------------ the ops */

static size_t random_blocks(struct model* m)
{
    size_t c = below(m, 100);
    if (c < 60) {
        return 1 + below(m, 4);
    }
    if (c < 85) {
        return 1 + below(m, 32);
    }
    if (c < 95) {
        return 1 + below(m, 400);
    }
    return 1 + below(m, MAX_REGION_BLOCKS + 100);
}

/* A size in bytes of exactly n blocks. */
static size_t bytes_for(struct model* m, size_t n)
{
    return (n - 1) * BS + 1 + below(m, BS);
}

static void add_live(struct model* m, unsigned char* p, size_t n, size_t region)
{
    struct m_alloc* a = &m->live[m->nlive++];
    a->ptr = p;
    a->blocks = n;
    a->region = region;
    a->stamp = rnd(m);
    mark(m, region, (size_t)(p - m->r[region].start) / BS, n, 1);
    stamp_blocks(a, 0, n);
}

static void op_malloc(struct model* m)
{
    size_t n = random_blocks(m);
    size_t size = bytes_for(m, n);
    bool zero = below(m, 8) == 0;
    size_t region = 0;
    unsigned char* want = m_regions_first_fit(m->r, m->nr, n, &region);
    unsigned char* got = zero ? multiheap_zalloc(&m->mh, size) : multiheap_malloc(&m->mh, size);
    m->mallocs++;
    CHECK(m, got == want);
    if (got == NULL) {
        m->failed++;
        m->nulls++;
        return;
    }
    for (size_t i = 0; zero && i < n; i++) {
        size_t end = i * BS + 7 < size ? i * BS + 7 : size - 1;
        CHECK(m, got[i * BS] == 0 && got[end] == 0);
    }
    CHECK(m, !zero || got[size - 1] == 0);
    CHECK(m, multiheap_allocation_size(&m->mh, got) == n * BS);
    add_live(m, got, n, region);
}

static void forget(struct model* m, size_t i)
{
    m->live[i] = m->live[--m->nlive];
}

static void op_free(struct model* m, size_t i)
{
    struct m_alloc a = m->live[i];
    check_stamps(m, a.ptr, &a, a.blocks);
    if (below(m, 2) == 0) {
        multiheap_free(&m->mh, a.ptr);
    } else {
        CHECK(m, multiheap_realloc(&m->mh, a.ptr, 0) == NULL);
    }
    mark(m, a.region, block_of(m, &a), a.blocks, 0);
    m->last_freed = a.ptr;
    forget(m, i);
    m->frees++;
}

/* Can allocation a grow to `want` blocks where it is? */
static bool fits_in_place(const struct model* m, const struct m_alloc* a, size_t want)
{
    const struct m_region* r = &m->r[a->region];
    size_t first = block_of(m, a);
    if (want > r->blocks - first) {
        return false;
    }
    for (size_t b = first + a->blocks; b < first + want; b++) {
        if (r->map.entries[b] != 0) {
            return false;
        }
    }
    return true;
}

static void realloc_move(struct model* m, struct m_alloc* a, size_t want, unsigned char* got)
{
    size_t region = 0;
    unsigned char* expect = m_regions_first_fit(m->r, m->nr, want, &region);
    CHECK(m, got == expect);
    if (got == NULL) {
        m->failed++;
        m->nulls++;
        return;
    }
    check_stamps(m, got, a, a->blocks); /* copied */
    mark(m, a->region, block_of(m, a), a->blocks, 0);
    a->ptr = got;
    a->region = region;
    mark(m, region, block_of(m, a), want, 1);
    m->moves++;
}

static void op_realloc(struct model* m, size_t i)
{
    struct m_alloc* a = &m->live[i];
    check_stamps(m, a->ptr, a, a->blocks);
    size_t want = below(m, 2) == 0 ? 1 + below(m, a->blocks + 4) : random_blocks(m);
    size_t have = a->blocks;
    unsigned char* old = a->ptr;
    bool stays = want <= have || fits_in_place(m, a, want);
    unsigned char* got = multiheap_realloc(&m->mh, a->ptr, bytes_for(m, want));
    m->reallocs++;
    if (stays) {
        CHECK(m, got == old);
        size_t first = block_of(m, a);
        if (want < have) {
            mark(m, a->region, first + want, have - want, 0);
        } else {
            mark(m, a->region, first + have, want - have, 1);
        }
        m->in_place++;
    } else {
        realloc_move(m, a, want, got);
        if (got == NULL) {
            return; /* unchanged, still live at old */
        }
    }
    a->blocks = want;
    if (want > have) {
        stamp_blocks(a, have, want);
    }
}

/* An address in no region: before the first, in a gap, past the last. */
static unsigned char* outside_address(struct model* m)
{
    size_t k = below(m, m->nr + 1);
    if (k == m->nr) {
        const struct m_region* last = &m->r[m->nr - 1];
        return last->start + last->blocks * BS + below(m, 3 * BS);
    }
    return m->r[k].start - 1 - below(m, BS); /* below region k: a gap, or another region's end */
}

static void expect_refused(struct model* m, void* ptr, enum heap_report_kind kind)
{
    size_t reports = m->reports;
    bool outside = kind == HEAP_REPORT_FREE_OUTSIDE;
    if (below(m, 4) == 0) {
        CHECK(m, multiheap_realloc(&m->mh, ptr, 1 + below(m, 4 * BS)) == NULL);
    } else {
        multiheap_free(&m->mh, ptr);
    }
    CHECK(m, m->reports == reports + 1);
    CHECK(m, m->last_report.kind == kind && m->last_report.ptr == ptr);
    m->refused_outside += outside;
    m->refused_inside += !outside;
    m->bad_frees++;
}

static void op_bad_free(struct model* m)
{
    size_t c = below(m, 5);
    if (c == 0 || m->nlive == 0) {
        unsigned char* p = outside_address(m);
        if (m_regions_find(m->r, m->nr, p) == SIZE_MAX) {
            expect_refused(m, p, HEAP_REPORT_FREE_OUTSIDE);
        }
        return;
    }
    const struct m_alloc* a = &m->live[below(m, m->nlive)];
    if (c == 1) {
        expect_refused(m, a->ptr + 1 + below(m, BS - 1), HEAP_REPORT_FREE_UNALIGNED);
    } else if (c == 2 && a->blocks > 1) {
        expect_refused(m, a->ptr + (1 + below(m, a->blocks - 1)) * BS, HEAP_REPORT_FREE_INTERIOR);
    } else if (m->last_freed != NULL) {
        size_t k = m_regions_find(m->r, m->nr, m->last_freed);
        size_t b = (size_t)(m->last_freed - m->r[k].start) / BS;
        if (m->r[k].map.entries[b] == 0) {
            expect_refused(m, m->last_freed, HEAP_REPORT_FREE_NOT_ALLOCATED); /* a double free */
        }
    }
}

static void step(struct model* m)
{
    size_t c = below(m, 100);
    if (m->nlive == MAX_LIVE && c < 45) {
        c = 50;
    }
    if (c < 45 || m->nlive == 0) {
        op_malloc(m);
    } else if (c < 75) {
        op_free(m, below(m, m->nlive));
    } else if (c < 93) {
        op_realloc(m, below(m, m->nlive));
    } else {
        op_bad_free(m);
    }
}

/* ------------------------------------------------------------ layouts */

static size_t random_region_blocks(struct model* m)
{
    size_t c = below(m, 10);
    return c < 5 ? 1 + below(m, MAX_REGION_BLOCKS) : c < 8 ? 1 + below(m, 200) : 1 + below(m, 4);
}

/* A region overlapping region k (added) somewhere: refused, *mh unchanged. */
static void try_overlap(struct model* m, const struct m_region* k)
{
    static struct multiheap before;
    size_t blocks = 1 + below(m, 8);
    size_t back = below(m, blocks);
    unsigned char* start = k->start + below(m, k->blocks) * BS - back * BS;
    if (start < m->arena) {
        return;
    }
    struct m_region r;
    CHECK(m, m_region_init(&r, start, blocks, below(m, 2) == 0));
    memcpy(&before, &m->mh, sizeof(before));
    CHECK(m, m_region_add(&m->mh, &r) == -EINVARG);
    CHECK(m, memcmp(&before, &m->mh, sizeof(before)) == 0);
    m_region_free(&r);
    m->refused_regions++;
}

static void new_layout(struct model* m)
{
    CHECK(m, multiheap_init(&m->mh) == 0);
    multiheap_set_report(&m->mh, on_report, m);
    m->nr = 1 + below(m, MAX_REGIONS);
    unsigned char* at = m->arena + below(m, MAX_GAP + 1) * BS;
    for (size_t k = 0; k < m->nr; k++) {
        CHECK(m, m_region_init(&m->r[k], at, random_region_blocks(m), below(m, 2) == 0));
        at += m->r[k].blocks * BS;
        at += below(m, 5) < 2 ? 0 : (1 + below(m, MAX_GAP)) * BS; /* adjacent or a gap */
    }
    size_t order[MAX_REGIONS];
    for (size_t k = 0; k < m->nr; k++) {
        size_t j = below(m, k + 1);
        order[k] = order[j];
        order[j] = k;
    }
    for (size_t k = 0; k < m->nr; k++) {
        CHECK(m, m_region_add(&m->mh, &m->r[order[k]]) == 0);
        if (below(m, 2) == 0) {
            try_overlap(m, &m->r[order[below(m, k + 1)]]);
        }
    }
    m->nlive = m->used = m->failed = m->refused_inside = m->refused_outside = 0;
    m->last_freed = NULL;
    m->regions += m->nr;
    check_state(m);
}

static void end_layout(struct model* m)
{
    check_everything(m);
    while (m->nlive > 0) {
        op_free(m, m->nlive - 1);
    }
    check_state(m);
    for (size_t k = 0; k < m->nr; k++) {
        m_region_free(&m->r[k]);
    }
}

static unsigned long long parse_number(const char* s)
{
    char* end = NULL;
    unsigned long long v = strtoull(s, &end, 0);
    if (end == s || *end != '\0') {
        fprintf(stderr, "multiheap_model: not a number: %s\n", s);
        exit(2);
    }
    return v;
}

int main(int argc, char** argv)
{
    static struct model m;
    unsigned long long ops = 200000;
    m.seed = 1;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--seed") == 0) {
            m.seed = parse_number(argv[i + 1]);
        } else if (strcmp(argv[i], "--ops") == 0) {
            ops = parse_number(argv[i + 1]);
        } else {
            fprintf(stderr, "usage: multiheap_model [--seed N] [--ops N]\n");
            return 2;
        }
    }
    m.rng = m.seed * 2 + 1;
    size_t arena_bytes = (ARENA_BLOCKS + 1) * BS;
    void* map = mmap(NULL, arena_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    CHECK(&m, map != MAP_FAILED);
    m.arena = (unsigned char*)(((uintptr_t)map + BS - 1) / BS * BS);
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
    printf("multiheap_model: %llu operations on %u layouts (%llu regions; %llu overlapping regions refused), "
           "seed %" PRIu64 ", %.2f s: %llu mallocs (%llu NULL as the model said), %llu frees, %llu reallocs "
           "(%llu in place, %llu moved), %llu bad frees refused; 0 divergences\n",
           m.op, m.layout, m.regions, m.refused_regions, m.seed, secs, m.mallocs, m.nulls, m.frees, m.reallocs,
           m.in_place, m.moves, m.bad_frees);
    munmap(map, arena_bytes);
    return 0;
}
