/*
 * tests/model/heap_model.c - seeded random model test and differential test.
 *
 * Runs two heaps in lockstep over one pool: the seed's linear scan
 * (heap_create) and the placement index (heap_create_indexed). After every
 * operation both must agree with an independent first-fit model kept here:
 *   - the same returned pointer (the model's own scan decides it, and the
 *     indexed heap's choice must equal heap_scan_first_fit on its table);
 *   - the same table bytes, byte for byte (the model writes the encoding
 *     from the spec: 41 / C1 01 / C1 81 01);
 *   - the same counters (used blocks, live allocations, rejected frees);
 *   - heap_check() clean, including the index against the table (every
 *     operation on small heaps, every CHECK_EVERY on large ones, and at the end);
 *   - real memory: every allocation gets a stamp at its first and last
 *     bytes, checked when it is freed, so overlap would show.
 * Operations: mallocs of every kind of size (1..16 blocks, large, exactly the
 * largest free run, one block more than it, beyond the heap, 0, near
 * SIZE_MAX), frees of live allocations, frees of arbitrary pointers (interior,
 * unaligned, outside, free blocks, double frees, NULL), and frees of
 * everything followed by an allocation that fills the heap exactly.
 *
 * Usage: heap_model [--long] [--seed N] [--scale F]
 *   default: >= 1,000,000 operations over heaps of 1 .. 25,600 blocks (100 MiB)
 *   --long:  >= 10,000,000 operations over heaps of 1 .. 262,144 blocks (1 GiB)
 * On a failure it prints the seed, heap size and operation number.
 */
#define _DEFAULT_SOURCE
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "memory/heap/heap.h"
#include "memory/heap/heap_index.h"
#include "status.h"
#include "memory/heap/heap_status.h"

#define BS ((size_t)PEACHOS_HEAP_BLOCK_SIZE)
/* heap_check runs after every operation, except in --long runs on heaps
 * above CHECK_EVERY_LIMIT blocks (O(size) per check), where it runs every
 * CHECK_EVERY operations: pointers and table bytes are still compared after
 * every operation there. */
#define CHECK_EVERY_LIMIT 4097
#define CHECK_EVERY 512

struct model_alloc
{
    size_t start;
    size_t n;
    uint64_t stamp;
};

struct model
{
    size_t total;
    unsigned char* expected; /* the table the spec says we must have */
    struct model_alloc* live;
    size_t nlive;
    size_t used;
    size_t rejected;
};

struct run
{
    uint64_t seed;
    uint64_t rng;
    size_t op;
    unsigned char* pool;
    struct model model;
    struct heap scan_heap, index_heap;
    struct heap_table scan_table, index_table;
    void* index_mem;
    size_t reports; /* report hook calls on the indexed heap */
    enum heap_report_kind last_kind;
    unsigned long long ops_done, bad_frees, fills, exact_fits;
};

static void fail(const struct run* r, const char* what)
{
    fprintf(stderr, "heap_model: FAILED: %s\n  seed=%" PRIu64 " heap=%zu blocks op=%zu\n", what, r->seed,
            r->model.total, r->op);
    exit(1);
}

static uint64_t rnd(struct run* r)
{
    /* splitmix64: good enough, tiny, reproducible */
    uint64_t z = (r->rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static size_t rnd_below(struct run* r, size_t n)
{
    return n == 0 ? 0 : (size_t)(rnd(r) % n);
}

/* ---- the model ---------------------------------------------------------- */

static size_t model_first_fit(const struct model* m, size_t n)
{
    size_t run = 0;
    for (size_t i = 0; i < m->total; i++) {
        run = m->expected[i] == 0 ? run + 1 : 0;
        if (run == n && n > 0) {
            return i + 1 - n;
        }
    }
    return SIZE_MAX;
}

static size_t model_largest_run(const struct model* m)
{
    size_t best = 0, run = 0;
    for (size_t i = 0; i < m->total; i++) {
        run = m->expected[i] == 0 ? run + 1 : 0;
        best = run > best ? run : best;
    }
    return best;
}

static void model_take(struct model* m, size_t start, size_t n, uint64_t stamp)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char e = 0x01;
        e |= (i == 0) ? 0x40 : 0;
        e |= (i + 1 < n) ? 0x80 : 0;
        m->expected[start + i] = e;
    }
    m->live[m->nlive++] = (struct model_alloc){ start, n, stamp };
    m->used += n;
}

static void model_release(struct model* m, size_t k)
{
    memset(&m->expected[m->live[k].start], 0, m->live[k].n);
    m->used -= m->live[k].n;
    m->live[k] = m->live[--m->nlive];
}

/* Index in live[] of the allocation starting at `block`, or SIZE_MAX. */
static size_t model_find_live(const struct model* m, size_t block)
{
    for (size_t k = 0; k < m->nlive; k++) {
        if (m->live[k].start == block) {
            return k;
        }
    }
    return SIZE_MAX;
}

/* ---- checks ------------------------------------------------------------- */

static void report_hook(void* ctx, const struct heap_report* report)
{
    struct run* r = ctx;
    r->reports++;
    r->last_kind = report->kind;
}

static void check_state(struct run* r, bool full_check)
{
    const struct model* m = &r->model;
    if (memcmp(r->scan_table.entries, m->expected, m->total) != 0) {
        fail(r, "scan heap table differs from the model");
    }
    if (memcmp(r->index_table.entries, m->expected, m->total) != 0) {
        fail(r, "indexed heap table differs from the model");
    }
    const struct heap* heaps[2] = { &r->scan_heap, &r->index_heap };
    for (int h = 0; h < 2; h++) {
        if (heaps[h]->used_blocks != m->used || heaps[h]->live_allocations != m->nlive ||
            heaps[h]->rejected_frees != m->rejected) {
            fail(r, "counters differ from the model");
        }
        size_t bad = 0;
        if (full_check && heap_check(heaps[h], &bad) != 0) {
            fprintf(stderr, "heap_check: bad block %zu (%s heap)\n", bad, h ? "indexed" : "scan");
            fail(r, "heap_check failed");
        }
    }
}

static void stamp_write(unsigned char* p, size_t bytes, uint64_t stamp)
{
    memcpy(p, &stamp, sizeof stamp);
    memcpy(p + bytes - sizeof stamp, &stamp, sizeof stamp);
}

static bool stamp_ok(const unsigned char* p, size_t bytes, uint64_t stamp)
{
    uint64_t a, b;
    memcpy(&a, p, sizeof a);
    memcpy(&b, p + bytes - sizeof b, sizeof b);
    return a == stamp && b == stamp;
}

/* ---- operations --------------------------------------------------------- */

static size_t pick_size(struct run* r)
{
    size_t total = r->model.total;
    size_t largest;
    switch (rnd_below(r, 20)) {
    case 0: /* exactly the largest free run */
        largest = model_largest_run(&r->model);
        r->exact_fits++;
        return largest == 0 ? BS : largest * BS - rnd_below(r, BS);
    case 1: /* one block more than the largest free run: must fail */
        return (model_largest_run(&r->model) + 1) * BS;
    case 2: /* beyond the heap */
        return (total + rnd_below(r, 3)) * BS + rnd_below(r, 2);
    case 3:
        return 0;
    case 4: /* near SIZE_MAX: must not wrap */
        return SIZE_MAX - rnd_below(r, 2 * BS);
    case 5:
    case 6:
    case 7: /* large */
        return (1 + rnd_below(r, total / 4 + 1)) * BS - rnd_below(r, BS);
    default: /* 1..16 blocks, any byte count */
        return (1 + rnd_below(r, 16)) * BS - rnd_below(r, BS);
    }
}

static void op_malloc(struct run* r, size_t size)
{
    struct model* m = &r->model;
    size_t n = size / BS + (size % BS != 0);
    size_t want = (size == 0 || n > m->total) ? SIZE_MAX : model_first_fit(m, n);
    size_t reference = size == 0 ? SIZE_MAX : heap_scan_first_fit(&r->index_table, n);
    void* a = heap_malloc(&r->scan_heap, size);
    void* b = heap_malloc(&r->index_heap, size);
    if (a != b) {
        fail(r, "scan and indexed heaps returned different pointers");
    }
    if (want == SIZE_MAX) {
        if (a != NULL) {
            fail(r, "heap returned memory where the model has no room");
        }
        return;
    }
    if (a != r->pool + want * BS || reference != want) {
        fail(r, "heap did not place at the first fit");
    }
    uint64_t stamp = rnd(r);
    stamp_write(a, n * BS, stamp);
    model_take(m, want, n, stamp);
}

static void op_free_live(struct run* r, size_t k)
{
    struct model_alloc al = r->model.live[k];
    unsigned char* p = r->pool + al.start * BS;
    if (!stamp_ok(p, al.n * BS, al.stamp)) {
        fail(r, "allocation's memory was overwritten (overlap)");
    }
    heap_free(&r->scan_heap, p);
    heap_free(&r->index_heap, p);
    model_release(&r->model, k);
}

/* The kind of refusal the model expects for freeing `p`, or 0 if valid. */
static enum heap_report_kind expected_refusal(const struct run* r, const unsigned char* p)
{
    const struct model* m = &r->model;
    if (p < r->pool || p >= r->pool + m->total * BS) {
        return HEAP_REPORT_FREE_OUTSIDE;
    }
    size_t off = (size_t)(p - r->pool);
    if (off % BS != 0) {
        return HEAP_REPORT_FREE_UNALIGNED;
    }
    unsigned char e = m->expected[off / BS];
    if (e == 0) {
        return HEAP_REPORT_FREE_NOT_ALLOCATED;
    }
    return (e & 0x40) ? (enum heap_report_kind)0 : HEAP_REPORT_FREE_INTERIOR;
}

static unsigned char* pick_bad_pointer(struct run* r)
{
    size_t total = r->model.total;
    const struct model* m = &r->model;
    switch (rnd_below(r, 6)) {
    case 0: /* interior block of a live allocation (or its start if 1 block) */
        if (m->nlive > 0) {
            const struct model_alloc* al = &m->live[rnd_below(r, m->nlive)];
            return r->pool + (al->start + rnd_below(r, al->n)) * BS;
        }
        return r->pool;
    case 1: /* unaligned */
        return r->pool + rnd_below(r, total) * BS + 1 + rnd_below(r, BS - 1);
    case 2: /* just outside, either side */
        return rnd_below(r, 2) ? r->pool - BS * (1 + rnd_below(r, 4)) : r->pool + total * BS + rnd_below(r, 3 * BS);
    case 3:
        return NULL;
    default: /* any block: free ones give double frees / never-allocated frees */
        return r->pool + rnd_below(r, total) * BS;
    }
}

static void op_free_any(struct run* r)
{
    unsigned char* p = pick_bad_pointer(r);
    r->bad_frees++;
    if (p == NULL) {
        heap_free(&r->scan_heap, NULL);
        heap_free(&r->index_heap, NULL);
        return;
    }
    enum heap_report_kind kind = expected_refusal(r, p);
    if (kind == 0) { /* it happens to be a live allocation's start */
        op_free_live(r, model_find_live(&r->model, (size_t)(p - r->pool) / BS));
        return;
    }
    size_t before = r->reports;
    heap_free(&r->scan_heap, p);
    heap_free(&r->index_heap, p);
    r->model.rejected++;
    if (r->reports != before + 1 || r->last_kind != kind) {
        fail(r, "bad free not reported with the expected kind");
    }
}

static void op_free_all_and_fill(struct run* r)
{
    while (r->model.nlive > 0) {
        op_free_live(r, rnd_below(r, r->model.nlive));
    }
    check_state(r, true);
    op_malloc(r, r->model.total * BS - rnd_below(r, BS)); /* fills the heap exactly */
    if (r->model.used != r->model.total) {
        fail(r, "exact fill of an empty heap failed");
    }
    r->fills++;
}

static void step(struct run* r)
{
    size_t dice = rnd_below(r, 1000);
    if (dice < 2) {
        op_free_all_and_fill(r);
    } else if (dice < 80) {
        op_free_any(r);
    } else if (dice < 520 || r->model.nlive == 0) {
        op_malloc(r, pick_size(r));
    } else {
        op_free_live(r, rnd_below(r, r->model.nlive));
    }
}

/* ---- one heap size ------------------------------------------------------ */

static void* map_or_die(size_t bytes)
{
    void* p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
        perror("mmap");
        exit(2);
    }
    return p;
}

static void run_heap(uint64_t seed, size_t total, size_t ops, bool sparse_checks, unsigned long long* grand_total)
{
    struct run* r = calloc(1, sizeof *r);
    r->seed = r->rng = seed ^ (total * 0x100000001B3ull);
    struct model* m = &r->model;
    m->total = total;
    m->expected = calloc(total, 1);
    m->live = calloc(total, sizeof *m->live);
    /* pool: one guard block either side, so "just outside" pointers are mapped */
    size_t pool_bytes = (total + 8) * BS;
    unsigned char* mapping = map_or_die(pool_bytes);
    r->pool = mapping + 4 * BS;
    r->scan_table.entries = malloc(total);
    r->scan_table.total = total;
    r->index_table.entries = malloc(total);
    r->index_table.total = total;
    size_t index_bytes = heap_index_bytes(total);
    r->index_mem = aligned_alloc(64, (index_bytes + 63) / 64 * 64);
    memset(r->index_mem, 0xA5, index_bytes); /* the index must not rely on zeroed memory */
    memset(r->scan_table.entries, 0x5A, total);
    memset(r->index_table.entries, 0x5A, total);
    if (heap_create(&r->scan_heap, r->pool, r->pool + total * BS, &r->scan_table) != 0 ||
        heap_create_indexed(&r->index_heap, r->pool, r->pool + total * BS, &r->index_table, r->index_mem,
                            index_bytes) != 0) {
        fail(r, "heap creation failed");
    }
    heap_set_report(&r->scan_heap, NULL, NULL);
    heap_set_report(&r->index_heap, report_hook, r);
    check_state(r, true);

    bool every = !sparse_checks || total <= CHECK_EVERY_LIMIT;
    for (r->op = 0; r->op < ops; r->op++) {
        step(r);
        check_state(r, every || r->op % CHECK_EVERY == 0);
    }
    while (m->nlive > 0) {
        op_free_live(r, m->nlive - 1);
    }
    check_state(r, true);
    if (m->used != 0) {
        fail(r, "blocks left after freeing everything");
    }
    printf("  %7zu blocks: %9zu ops, %7llu bad frees, %4llu exact fills, %6llu largest-run requests: ok\n", total,
           ops, r->bad_frees, r->fills, r->exact_fits);
    *grand_total += ops;

    munmap(mapping, pool_bytes);
    free(m->expected);
    free(m->live);
    free(r->scan_table.entries);
    free(r->index_table.entries);
    free(r->index_mem);
    free(r);
}

int main(int argc, char** argv)
{
    uint64_t seed = 20261125;
    bool long_run = false;
    double scale = 1.0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--long") == 0) {
            long_run = true;
        } else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) {
            seed = strtoull(argv[++i], NULL, 0);
        } else if (strcmp(argv[i], "--scale") == 0 && i + 1 < argc) {
            scale = strtod(argv[++i], NULL);
        } else {
            fprintf(stderr, "usage: %s [--long] [--seed N] [--scale F]\n", argv[0]);
            return 2;
        }
    }
    /* Heap sizes in blocks, with the operations each gets. Large heaps cost
     * O(size) per operation (the scan heap and the model are linear), so
     * they get fewer operations. */
    static const struct
    {
        size_t blocks, ops, long_ops;
    } plan[] = {
        { 1, 50000, 200000 },         { 2, 50000, 200000 },         { 3, 50000, 200000 },
        { 63, 90000, 800000 },        { 64, 90000, 800000 },        { 65, 90000, 800000 },
        { 127, 90000, 800000 },       { 128, 60000, 600000 },       { 129, 60000, 600000 },
        { 1000, 60000, 600000 },      { 4095, 70000, 900000 },      { 4096, 70000, 900000 },
        { 4097, 70000, 900000 },      { 8191, 40000, 900000 },      { 16385, 30000, 300000 },
        { 25600, 20000, 200000 },     { 25601, 20000, 200000 },     { 65536, 0, 200000 },
        { 65537, 0, 100000 },         { 262144, 0, 100000 },
    };
    printf("heap_model: seed %" PRIu64 "%s\n", seed, long_run ? " (long run)" : "");
    unsigned long long total_ops = 0;
    for (size_t i = 0; i < sizeof plan / sizeof plan[0]; i++) {
        size_t ops = (size_t)((double)(long_run ? plan[i].long_ops : plan[i].ops) * scale);
        if (ops > 0) {
            run_heap(seed, plan[i].blocks, ops, long_run, &total_ops);
        }
    }
    printf("heap_model: %llu operations, 0 divergences: passed\n", total_ops);
    return 0;
}
