/*
 * tests/fuzz/fuzz_heap_ops.c - the input is a heap size and a sequence of
 * operations. Two heaps of that size run in lockstep, one with the placement
 * index (heap_create_indexed) and one with the linear scan (heap_create),
 * against a model kept here: an owner array (one allocation id per block)
 * with its own first-fit search. After every operation:
 *   - both heaps returned what the model says (same pointer, same refusal
 *     with the same report kind and block);
 *   - both tables equal, byte for byte, the encoding the model derives from
 *     its owner array (heap.h: 41 / C1 01 / C1 81 01, type bits kept);
 *   - the counters and statistics equal the model's;
 *   - heap_check() == 0 on both.
 * The data pool is a PROT_NONE mapping (or an unmapped address range near 0
 * or near the top of the address space): the heap must never touch it.
 *
 * Then the same input drives kmalloc / kzalloc / kfree through the hosted
 * kheap port on a small heap: every live object carries a byte pattern that
 * must be intact when it is freed, no two live objects overlap, bad frees
 * are reported and change nothing, and heap_check stays clean.
 *
 * Input layout (reads past the end give zeros):
 *   u16 blocks (1 + (v & 0xFFF) >> (v >> 12)), u8 flags (bits 0-1 pool placement: real
 *   PROT_NONE mapping / near 0 / near the top of the address space; bits
 *   2-7 kheap options), u16 heap_len; then heap_len bytes of operations on
 *   the two heaps (u8 opcode and its arguments, see fuzz_op), then the
 *   kheap part (see kheap_phase and kop), if any bytes remain.
 */
#define _DEFAULT_SOURCE
#include <sys/mman.h>

#include "fuzz_common.h"
#include "hosted/kheap_hosted.h"
#include "memory/heap/heap_index.h"
#include "status.h"

#define OPS_MAX_BLOCKS 4096u
#define OPS_MAX_STEPS 3000
#define OPS_STALE 64

struct ops_recorder
{
    size_t count;
    struct heap_report last;
};

static void ops_record(void* ctx, const struct heap_report* report)
{
    struct ops_recorder* r = (struct ops_recorder*)ctx;
    r->count++;
    r->last = *report;
}

struct ops_alloc
{
    size_t start;
    size_t len;
    uint8_t type;
};

/* The model: who owns each block, the live allocations, the counters. */
static struct
{
    size_t total;
    uintptr_t base;
    uint32_t owner[OPS_MAX_BLOCKS]; /* 0 = free, else allocation id */
    uint8_t otype[OPS_MAX_BLOCKS];  /* type bits of the owning allocation */
    size_t slot[OPS_MAX_BLOCKS];    /* index in live[] of the allocation starting here */
    uint32_t next_id;
    struct ops_alloc live[OPS_MAX_BLOCKS];
    size_t nlive;
    size_t used, rejected, failed;
    uintptr_t stale[OPS_STALE]; /* pointers freed earlier (double-free material) */
    size_t nstale;
} m;

/* The two heaps under test, and their memory. */
static struct heap heap_a, heap_b; /* a: indexed, b: linear scan */
static struct heap_table table_a, table_b;
static uint8_t entries_a[OPS_MAX_BLOCKS], entries_b[OPS_MAX_BLOCKS], expected[OPS_MAX_BLOCKS];
static uint64_t index_mem[2048]; /* heap_index_bytes(4096) = 1,192 bytes */
static struct ops_recorder rec_a, rec_b;

static uintptr_t ops_real_pool(void)
{
    static void* pool;
    if (pool == NULL) {
        pool = mmap(NULL, (OPS_MAX_BLOCKS + 2) * FUZZ_BS, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                    -1, 0);
        FUZZ_CHECK(pool != MAP_FAILED);
    }
    return ((uintptr_t)pool + FUZZ_BS) & ~(uintptr_t)(FUZZ_BS - 1);
}

static void* ops_ptr(size_t block)
{
    return (void*)(m.base + block * FUZZ_BS);
}

/* ---- model ---- */
static void model_reset(size_t total, uintptr_t base)
{
    m.total = total;
    m.base = base;
    memset(m.owner, 0, sizeof(m.owner));
    m.nlive = 0;
    m.used = m.rejected = m.failed = 0;
    m.next_id = 1;
}

static uint8_t model_entry(size_t b)
{
    if (m.owner[b] == 0) {
        return 0;
    }
    uint8_t e = (uint8_t)(0x01 | m.otype[b]);
    if (b == 0 || m.owner[b - 1] != m.owner[b]) {
        e |= 0x40;
    }
    if (b + 1 < m.total && m.owner[b + 1] == m.owner[b]) {
        e |= 0x80;
    }
    return e;
}

static size_t model_first_fit(size_t n)
{
    size_t run = 0;
    for (size_t b = 0; b < m.total; b++) {
        run = m.owner[b] == 0 ? run + 1 : 0;
        if (run == n) {
            return b + 1 - n;
        }
    }
    return SIZE_MAX;
}

static size_t model_largest(void)
{
    size_t best = 0, run = 0;
    for (size_t b = 0; b < m.total; b++) {
        run = m.owner[b] == 0 ? run + 1 : 0;
        best = run > best ? run : best;
    }
    return best;
}

static void model_take(size_t start, size_t n, uint8_t type)
{
    uint32_t id = m.next_id++;
    for (size_t b = start; b < start + n; b++) {
        m.owner[b] = id;
        m.otype[b] = type;
    }
    m.slot[start] = m.nlive;
    m.live[m.nlive++] = (struct ops_alloc){ start, n, type };
    m.used += n;
}

static void model_remember_stale(uintptr_t p)
{
    m.stale[m.nstale % OPS_STALE] = p;
    m.nstale++;
}

static void model_release(size_t slot)
{
    struct ops_alloc a = m.live[slot];
    for (size_t b = a.start; b < a.start + a.len; b++) {
        m.owner[b] = 0;
    }
    m.used -= a.len;
    m.live[slot] = m.live[--m.nlive];
    if (slot < m.nlive) {
        m.slot[m.live[slot].start] = slot;
    }
    model_remember_stale((uintptr_t)ops_ptr(a.start));
}

/* Model of heap_malloc_blocks_typed: the block it returns, or SIZE_MAX. */
static size_t model_malloc(size_t n, uint8_t type)
{
    if (n == 0 || (type != HEAP_BLOCK_TYPE_PLAIN && type != HEAP_BLOCK_TYPE_CACHE)) {
        return SIZE_MAX; /* refused outright: not a failed allocation */
    }
    size_t start = n > m.total ? SIZE_MAX : model_first_fit(n);
    if (start == SIZE_MAX) {
        m.failed++;
        return SIZE_MAX;
    }
    model_take(start, n, type);
    return start;
}

/* Model of heap_free_typed: 0 if freed or ignored, else the report kind
 * (and *block). */
static int model_free(uintptr_t p, uint8_t type, size_t* block)
{
    if (p == 0) {
        return 0;
    }
    if (p < m.base || (p - m.base) / FUZZ_BS >= m.total) {
        *block = SIZE_MAX;
        m.rejected++;
        return HEAP_REPORT_FREE_OUTSIDE;
    }
    size_t b = (p - m.base) / FUZZ_BS;
    *block = b;
    int kind = 0;
    if ((p - m.base) % FUZZ_BS != 0) {
        kind = HEAP_REPORT_FREE_UNALIGNED;
    } else if (m.owner[b] == 0) {
        kind = HEAP_REPORT_FREE_NOT_ALLOCATED;
    } else if (b > 0 && m.owner[b - 1] == m.owner[b]) {
        kind = HEAP_REPORT_FREE_INTERIOR;
    } else if (m.otype[b] != type) {
        kind = HEAP_REPORT_FREE_WRONG_OWNER;
    }
    if (kind != 0) {
        m.rejected++;
        return kind;
    }
    model_release(m.slot[b]);
    return 0;
}

/* ---- checks after every operation ---- */
static void ops_check_heap(const struct heap* h, const uint8_t* entries, const char* name)
{
    size_t bad = 0;
    int res = heap_check(h, &bad);
    if (res != 0) {
        fprintf(stderr, "heap %s: heap_check %d at block %zu\n", name, res, bad);
    }
    FUZZ_CHECK(res == PEACHOS_ALL_OK);
    if (memcmp(entries, expected, m.total) != 0) {
        size_t b = 0;
        while (entries[b] == expected[b]) {
            b++;
        }
        fprintf(stderr, "heap %s: table byte %zu is %02x, model says %02x\n", name, b, entries[b], expected[b]);
        FUZZ_CHECK(!"table equals the model");
    }
    struct heap_stats s;
    heap_get_stats(h, &s);
    FUZZ_CHECK(s.total_blocks == m.total);
    FUZZ_CHECK(s.used_blocks == m.used);
    FUZZ_CHECK(s.free_blocks == m.total - m.used);
    FUZZ_CHECK(s.live_allocations == m.nlive);
    FUZZ_CHECK(s.rejected_frees == m.rejected);
    FUZZ_CHECK(s.failed_allocs == m.failed);
    FUZZ_CHECK(s.largest_free_run == model_largest());
}

static void ops_check(void)
{
    for (size_t b = 0; b < m.total; b++) {
        expected[b] = model_entry(b);
    }
    ops_check_heap(&heap_a, entries_a, "indexed");
    ops_check_heap(&heap_b, entries_b, "scan");
    FUZZ_CHECK(rec_a.count == m.rejected && rec_b.count == m.rejected);
}

/* ---- operations on both heaps ---- */
static void both_malloc_blocks(size_t n, uint8_t type)
{
    size_t want = model_malloc(n, type);
    void* pa = heap_malloc_blocks_typed(&heap_a, n, type);
    void* pb = heap_malloc_blocks_typed(&heap_b, n, type);
    FUZZ_CHECK(pa == pb);
    FUZZ_CHECK(pa == (want == SIZE_MAX ? NULL : ops_ptr(want)));
}

static void both_malloc(size_t size)
{
    size_t n = size / FUZZ_BS + (size % FUZZ_BS != 0);
    size_t want = model_malloc(n, HEAP_BLOCK_TYPE_PLAIN);
    void* pa = heap_malloc(&heap_a, size);
    void* pb = heap_malloc(&heap_b, size);
    FUZZ_CHECK(pa == pb);
    FUZZ_CHECK(pa == (want == SIZE_MAX ? NULL : ops_ptr(want)));
}

static void both_free(uintptr_t p, uint8_t type)
{
    size_t block = 0;
    size_t before = rec_a.count;
    int kind = model_free(p, type, &block);
    heap_free_typed(&heap_a, (void*)p, type);
    heap_free_typed(&heap_b, (void*)p, type);
    if (kind == 0) {
        FUZZ_CHECK(rec_a.count == before && rec_b.count == before);
        return;
    }
    FUZZ_CHECK(rec_a.count == before + 1 && rec_b.count == before + 1);
    FUZZ_CHECK((int)rec_a.last.kind == kind && (int)rec_b.last.kind == kind);
    FUZZ_CHECK(rec_a.last.block == block && rec_b.last.block == block);
    FUZZ_CHECK((uintptr_t)rec_a.last.ptr == p && (uintptr_t)rec_b.last.ptr == p);
}

static size_t pick_live(struct fuzz_input* in)
{
    uint16_t v = fuzz_u16(in);
    return m.nlive == 0 ? SIZE_MAX : v % m.nlive;
}

static void op_grow(struct fuzz_input* in)
{
    size_t s = pick_live(in);
    uint16_t want = fuzz_u16(in);
    if (s == SIZE_MAX) {
        return;
    }
    struct ops_alloc a = m.live[s];
    bool ok = want > a.len && want <= m.total - a.start;
    for (size_t b = a.start + a.len; ok && b < a.start + want; b++) {
        ok = m.owner[b] == 0;
    }
    FUZZ_CHECK(heap_grow_in_place(&heap_a, a.start, a.len, want) == ok);
    FUZZ_CHECK(heap_grow_in_place(&heap_b, a.start, a.len, want) == ok);
    if (ok) {
        uint32_t id = m.owner[a.start];
        for (size_t b = a.start + a.len; b < a.start + want; b++) {
            m.owner[b] = id;
            m.otype[b] = a.type;
        }
        m.used += want - a.len;
        m.live[s].len = want;
    }
}

static void op_shrink(struct fuzz_input* in)
{
    size_t s = pick_live(in);
    uint16_t want = fuzz_u16(in);
    if (s == SIZE_MAX) {
        return;
    }
    struct ops_alloc a = m.live[s];
    heap_shrink_in_place(&heap_a, a.start, a.len, want);
    heap_shrink_in_place(&heap_b, a.start, a.len, want);
    if (want != 0 && want < a.len) {
        for (size_t b = a.start + want; b < a.start + a.len; b++) {
            m.owner[b] = 0;
        }
        m.used -= a.len - want;
        m.live[s].len = want;
    }
}

/* heap_allocation_start / heap_allocation_blocks against the model. */
static void op_lookup(struct fuzz_input* in)
{
    int64_t off = (int64_t)fuzz_u64(in);
    uintptr_t p = m.base + (uintptr_t)(off % (int64_t)((m.total + 4) * FUZZ_BS));
    size_t want = SIZE_MAX;
    if (p >= m.base && (p - m.base) / FUZZ_BS < m.total) {
        size_t b = (p - m.base) / FUZZ_BS;
        if (m.owner[b] != 0) {
            while (b > 0 && m.owner[b - 1] == m.owner[b]) {
                b--;
            }
            want = b;
        }
    }
    FUZZ_CHECK(heap_allocation_start(&heap_a, (void*)p) == want);
    FUZZ_CHECK(heap_allocation_start(&heap_b, (void*)p) == want);
    size_t first = (size_t)(fuzz_u16(in) % (m.total + 2));
    size_t n = 0;
    if (first < m.total && m.owner[first] != 0 && (first == 0 || m.owner[first - 1] != m.owner[first])) {
        n = m.live[m.slot[first]].len;
    }
    FUZZ_CHECK(heap_allocation_blocks(&heap_a, first) == n);
    FUZZ_CHECK(heap_allocation_blocks(&heap_b, first) == n);
    FUZZ_CHECK(heap_block_to_address(&heap_a, first) == ops_ptr(first));
    FUZZ_CHECK(heap_address_to_block(&heap_a, ops_ptr(first)) == first);
}

static void op_map(struct fuzz_input* in)
{
    size_t k = fuzz_u8(in) % 5;
    size_t width = fuzz_u16(in) % 300;
    size_t lines = fuzz_u16(in);
    struct fuzz_map_stats s = { m.used, m.total - m.used, model_largest(), m.nlive, m.rejected };
    for (size_t b = 0; b < m.total; b++) {
        expected[b] = model_entry(b);
    }
    fuzz_compare_map(&heap_a, expected, m.total, k, width, lines, &s);
    fuzz_compare_map(&heap_b, expected, m.total, k, width, lines, &s);
}

/*
 * Overwrite one table byte (the same in both heaps), as a stray write
 * would. heap_check must name the block the independent checker names (or
 * SIZE_MAX when only the counters disagree), and a free of the damaged
 * allocation may only ever free blocks of that allocation. Then every byte
 * of both heaps is restored.
 */
static void op_corrupt(struct fuzz_input* in)
{
    size_t b = fuzz_u16(in) % m.total;
    uint8_t v = fuzz_u8(in);
    static uint8_t save_a[OPS_MAX_BLOCKS], save_b[OPS_MAX_BLOCKS], broken[OPS_MAX_BLOCKS];
    static uint64_t save_index[sizeof(index_mem) / sizeof(index_mem[0])];
    if (v == entries_a[b]) {
        return;
    }
    memcpy(save_a, entries_a, m.total);
    memcpy(save_b, entries_b, m.total);
    memcpy(save_index, index_mem, sizeof(index_mem));
    struct heap keep_a = heap_a, keep_b = heap_b;
    struct ops_recorder keep_ra = rec_a, keep_rb = rec_b;

    entries_a[b] = entries_b[b] = v;
    memcpy(broken, entries_a, m.total);
    struct fuzz_table_facts f = fuzz_check_table(entries_a, m.total);
    int want_res = -ECORRUPT;
    size_t want_bad = f.bad;
    if (f.bad == SIZE_MAX) {
        bool counts = f.used == m.used && f.allocations == m.nlive;
        want_res = counts ? PEACHOS_ALL_OK : -ECORRUPT;
        want_bad = counts ? 777 : SIZE_MAX;
    }
    size_t bad_a = 777, bad_b = 777;
    FUZZ_CHECK(heap_check(&heap_a, &bad_a) == want_res);
    FUZZ_CHECK(heap_check(&heap_b, &bad_b) == want_res);
    FUZZ_CHECK(bad_a == want_bad && bad_b == want_bad);

    /* Free the allocation the model says owns block b (or any live one). */
    size_t first = b;
    if (m.owner[b] != 0) {
        while (first > 0 && m.owner[first - 1] == m.owner[first]) {
            first--;
        }
    } else if (m.nlive > 0) {
        first = m.live[fuzz_u16(in) % m.nlive].start;
    }
    if (m.owner[first] != 0) {
        struct ops_alloc a = m.live[m.slot[first]];
        heap_free_typed(&heap_a, ops_ptr(first), a.type);
        heap_free_typed(&heap_b, ops_ptr(first), a.type);
        FUZZ_CHECK(memcmp(entries_a, entries_b, m.total) == 0);
        FUZZ_CHECK(rec_a.count == rec_b.count);
        for (size_t i = 0; i < m.total; i++) {
            if (entries_a[i] != broken[i]) { /* only ever this allocation's blocks, only ever freed */
                FUZZ_CHECK(i >= a.start && i < a.start + a.len && entries_a[i] == 0);
            }
        }
        if (rec_a.count != keep_ra.count) {
            FUZZ_CHECK(memcmp(entries_a, broken, m.total) == 0);
        }
    }

    memcpy(entries_a, save_a, m.total);
    memcpy(entries_b, save_b, m.total);
    memcpy(index_mem, save_index, sizeof(index_mem));
    heap_a = keep_a;
    heap_b = keep_b;
    rec_a = keep_ra;
    rec_b = keep_rb;
}

/* heap_create with bad arguments writes nothing and returns -EINVARG;
 * with good ones it starts afresh. */
static void op_create(struct fuzz_input* in)
{
    uint8_t sel = fuzz_u8(in);
    uintptr_t base = m.base, end = m.base + m.total * FUZZ_BS;
    struct heap_table t = table_a;
    struct heap* h = &heap_a;
    switch (sel % 9) {
    case 0: base += 1; break;
    case 1: end -= 1; break;
    case 2: end = base; break;
    case 3: t.total += 1; break;
    case 4: t.entries = NULL; break;
    case 5: h = NULL; break;
    case 6: base = 0; break;
    case 7: end = base - FUZZ_BS; t.total = 1; break;
    default: {
        /* a good one: both heaps afresh */
        FUZZ_CHECK(heap_create_indexed(&heap_a, (void*)base, (void*)end, &table_a, index_mem, sizeof(index_mem)) ==
                   PEACHOS_ALL_OK);
        FUZZ_CHECK(heap_create(&heap_b, (void*)base, (void*)end, &table_b) == PEACHOS_ALL_OK);
        heap_set_report(&heap_a, ops_record, &rec_a);
        heap_set_report(&heap_b, ops_record, &rec_b);
        rec_a.count = rec_b.count = 0;
        model_reset(m.total, m.base);
        return;
    }
    }
    struct heap keep = heap_a;
    memcpy(expected, entries_a, m.total);
    FUZZ_CHECK(heap_create(h, (void*)base, (void*)end, &t) == -EINVARG);
    FUZZ_CHECK(heap_create_indexed(h, (void*)base, (void*)end, &t, index_mem, sizeof(index_mem)) == -EINVARG);
    FUZZ_CHECK(memcmp(&keep, &heap_a, sizeof(keep)) == 0);
    FUZZ_CHECK(memcmp(expected, entries_a, m.total) == 0);
}

/* Fill the heap with one-block allocations until exactly `leave` blocks are
 * free (an exhausted heap, one block free, ...), then try one more. */
static void op_fill(struct fuzz_input* in)
{
    size_t free_blocks = m.total - m.used;
    size_t leave = fuzz_u8(in) % 4;
    while (free_blocks > leave) {
        both_malloc_blocks(1, HEAP_BLOCK_TYPE_PLAIN);
        free_blocks--;
    }
    both_malloc((leave + 1) * FUZZ_BS);
    both_malloc(leave * FUZZ_BS);
}

static void op_free_all(struct fuzz_input* in)
{
    int reverse = fuzz_u8(in) & 1;
    while (m.nlive > 0) {
        struct ops_alloc a = m.live[reverse ? m.nlive - 1 : 0];
        both_free((uintptr_t)ops_ptr(a.start), a.type);
    }
}

static size_t special_size(struct fuzz_input* in)
{
    uint8_t sel = fuzz_u8(in);
    size_t free_bytes = (m.total - m.used) * FUZZ_BS;
    size_t sizes[] = { 0, 1, FUZZ_BS - 1, FUZZ_BS, FUZZ_BS + 1, SIZE_MAX, SIZE_MAX - FUZZ_BS + 1, SIZE_MAX - FUZZ_BS,
                       SIZE_MAX / 2 + 1, m.total * FUZZ_BS, m.total * FUZZ_BS + 1, free_bytes,
                       model_largest() * FUZZ_BS, model_largest() * FUZZ_BS + 1 };
    return sizes[sel % (sizeof(sizes) / sizeof(sizes[0]))];
}

static void fuzz_op(struct fuzz_input* in)
{
    uint8_t op = fuzz_u8(in);
    switch (op % 16) {
    case 0: { /* malloc of k blocks less a little */
        size_t k = fuzz_u16(in) % (m.total + 3);
        size_t sub = fuzz_u16(in) % FUZZ_BS;
        both_malloc(k * FUZZ_BS > sub ? k * FUZZ_BS - sub : k * FUZZ_BS);
        break;
    }
    case 1: /* malloc of a small number of blocks */
        both_malloc((size_t)(fuzz_u8(in) % 8 + 1) * FUZZ_BS);
        break;
    case 2: /* any size at all */
        both_malloc((size_t)fuzz_u64(in));
        break;
    case 3:
        both_malloc(special_size(in));
        break;
    case 4: { /* typed: plain, cache or a type nobody may use */
        size_t n = fuzz_u8(in) % 9;
        both_malloc_blocks(n, fuzz_u8(in));
        break;
    }
    case 5:
    case 6: { /* free a live allocation, sometimes with the wrong type */
        size_t s = pick_live(in);
        uint8_t wrong = fuzz_u8(in);
        if (s != SIZE_MAX) {
            struct ops_alloc a = m.live[s];
            uint8_t type = (wrong & 0xF0) == 0xF0 ? (uint8_t)(wrong & 0x0F) : a.type;
            both_free((uintptr_t)ops_ptr(a.start), type);
        }
        break;
    }
    case 7: { /* interior or unaligned pointer into (or just past) a live allocation */
        size_t s = pick_live(in);
        uint32_t off = fuzz_u32(in);
        if (s != SIZE_MAX) {
            struct ops_alloc a = m.live[s];
            both_free((uintptr_t)ops_ptr(a.start) + off % ((a.len + 1) * FUZZ_BS), HEAP_BLOCK_TYPE_PLAIN);
        }
        break;
    }
    case 8: { /* garbage: absolute, or relative to the pool */
        uint8_t how = fuzz_u8(in);
        uint64_t raw = fuzz_u64(in);
        uintptr_t p = (how & 1) ? (uintptr_t)raw : m.base + (uintptr_t)raw;
        both_free(p, (how & 2) ? HEAP_BLOCK_TYPE_CACHE : HEAP_BLOCK_TYPE_PLAIN);
        break;
    }
    case 9: { /* a pointer freed before: double free, or a new allocation's */
        uint8_t i = fuzz_u8(in);
        if (m.nstale > 0) {
            size_t n = m.nstale < OPS_STALE ? m.nstale : OPS_STALE;
            both_free(m.stale[i % n], HEAP_BLOCK_TYPE_PLAIN);
        }
        break;
    }
    case 10: /* NULL, and NULL heaps */
        both_free(0, HEAP_BLOCK_TYPE_PLAIN);
        heap_free(NULL, ops_ptr(0));
        FUZZ_CHECK(heap_malloc(NULL, 1) == NULL);
        FUZZ_CHECK(heap_malloc_blocks_typed(NULL, 1, HEAP_BLOCK_TYPE_PLAIN) == NULL);
        break;
    case 11:
        if (fuzz_u8(in) & 1) {
            op_grow(in);
        } else {
            op_shrink(in);
        }
        break;
    case 12:
        op_lookup(in);
        break;
    case 13:
        if (fuzz_u8(in) & 1) {
            op_map(in);
        } else {
            op_corrupt(in);
        }
        break;
    case 14:
        if (fuzz_u8(in) & 1) {
            op_create(in);
        } else {
            op_fill(in);
        }
        break;
    default:
        op_free_all(in);
        break;
    }
}

/* ---------------------------------------------------------------------
 * kmalloc / kzalloc / kfree through the hosted kheap port.
 */
#define K_MAX_LIVE 256

struct kobj
{
    unsigned char* p;
    size_t size;
    uint8_t seed;
};

static struct kobj klive[K_MAX_LIVE];
static size_t nklive;
static uintptr_t kstale[OPS_STALE];
static size_t nkstale;

static unsigned char kpattern(uint8_t seed, size_t i)
{
    return (unsigned char)(seed + i * 37u + (i >> 8));
}

static void kfill(struct kobj* o)
{
    for (size_t i = 0; i < o->size; i++) {
        o->p[i] = kpattern(o->seed, i);
    }
}

static void kverify(const struct kobj* o)
{
    for (size_t i = 0; i < o->size; i++) {
        if (o->p[i] != kpattern(o->seed, i)) {
            fprintf(stderr, "kheap object %p (%zu bytes): byte %zu overwritten\n", (void*)o->p, o->size, i);
            FUZZ_CHECK(!"live object data intact");
        }
    }
}

/* Is p the start of a live object? inside one? */
static size_t kfind(uintptr_t p, int inside)
{
    for (size_t i = 0; i < nklive; i++) {
        uintptr_t s = (uintptr_t)klive[i].p;
        if (p == s || (inside && p > s && p < s + klive[i].size)) {
            return i;
        }
    }
    return SIZE_MAX;
}

static void kcheck_heap(void)
{
    struct heap* h = kheap_get();
    if (h != NULL) {
        uintptr_t state = kheap_lock();
        size_t bad = 0;
        int res = heap_check(h, &bad);
        kheap_unlock(state);
        FUZZ_CHECK(res == PEACHOS_ALL_OK);
    }
}

static void kadd(unsigned char* p, size_t size, uint8_t seed)
{
    FUZZ_CHECK(kheap_ready());
    /* no overlap with any live object */
    for (size_t i = 0; i < nklive; i++) {
        uintptr_t s = (uintptr_t)klive[i].p;
        FUZZ_CHECK((uintptr_t)p + size <= s || s + klive[i].size <= (uintptr_t)p);
    }
    struct kobj* o = &klive[nklive++];
    *o = (struct kobj){ p, size, seed };
    kfill(o);
}

static void kfree_slot(size_t i)
{
    kverify(&klive[i]);
    size_t reports = kheap_hosted_report_count();
    kfree(klive[i].p);
    FUZZ_CHECK(kheap_hosted_report_count() == reports);
    kstale[nkstale++ % OPS_STALE] = (uintptr_t)klive[i].p;
    klive[i] = klive[--nklive];
}

static size_t ksize_arg(struct fuzz_input* in)
{
    uint8_t sel = fuzz_u8(in);
    switch (sel % 6) {
    case 0: return fuzz_u8(in);
    case 1: return (size_t)fuzz_u16(in) % 600;
    case 2: return fuzz_u16(in);
    case 3: return (size_t)fuzz_u16(in) * 16;
    case 4: return (size_t)fuzz_u64(in);
    default: return (size_t)(fuzz_u8(in) % 8) * FUZZ_BS + (size_t)(fuzz_u8(in) % 3) - 1;
    }
}

static void kbad_free(uintptr_t p)
{
    if (p == 0 || kfind(p, 0) != SIZE_MAX) {
        return; /* NULL, or (a stale pointer reused by) a live object: not a bad free */
    }
    size_t reports = kheap_hosted_report_count();
    kfree((void*)p);
    FUZZ_CHECK(kheap_hosted_report_count() == reports + (kheap_ready() ? 1 : 0));
    for (size_t i = 0; i < nklive; i++) {
        kverify(&klive[i]);
    }
}

static void kop(struct fuzz_input* in)
{
    uint8_t op = fuzz_u8(in);
    switch (op % 8) {
    case 0:
    case 1: {
        size_t size = ksize_arg(in);
        uint8_t seed = fuzz_u8(in);
        if (nklive == K_MAX_LIVE) {
            break;
        }
        unsigned char* p = (unsigned char*)kmalloc(size);
        if (size == 0 || !kheap_ready()) {
            FUZZ_CHECK(p == NULL);
        }
        if (p != NULL) {
            kadd(p, size, seed);
        }
        break;
    }
    case 2: {
        size_t size = ksize_arg(in);
        uint8_t seed = fuzz_u8(in);
        if (nklive == K_MAX_LIVE) {
            break;
        }
        unsigned char* p = (unsigned char*)kzalloc(size);
        if (size == 0 || !kheap_ready()) {
            FUZZ_CHECK(p == NULL);
        }
        if (p != NULL) {
            for (size_t i = 0; i < size; i++) {
                FUZZ_CHECK(p[i] == 0);
            }
            kadd(p, size, seed);
        }
        break;
    }
    case 3:
    case 4: {
        uint16_t v = fuzz_u16(in);
        if (nklive > 0) {
            kfree_slot(v % nklive);
        }
        break;
    }
    case 5: { /* interior pointer of a live object, or just past it */
        uint16_t v = fuzz_u16(in);
        uint32_t off = fuzz_u32(in);
        if (nklive > 0) {
            struct kobj* o = &klive[v % nklive];
            kbad_free((uintptr_t)o->p + 1 + off % (o->size + 1));
        }
        break;
    }
    case 6: { /* stale (double free) or garbage */
        uint8_t how = fuzz_u8(in);
        uint64_t raw = fuzz_u64(in);
        if ((how & 1) && nkstale > 0) {
            size_t n = nkstale < OPS_STALE ? nkstale : OPS_STALE;
            kbad_free(kstale[raw % n]);
        } else {
            struct heap* h = kheap_get();
            uintptr_t base = h != NULL ? (uintptr_t)h->saddr : 0;
            kbad_free((how & 2) ? (uintptr_t)raw : base + (uintptr_t)(raw % (1u << 22)));
        }
        break;
    }
    default:
        kcheck_heap();
        kfree(NULL);
        break;
    }
}

static void kheap_phase(struct fuzz_input* in, uint8_t kflags)
{
    struct kheap_hosted_config cfg;
    cfg.heap_bytes = (size_t)(fuzz_u8(in) % 160) * FUZZ_BS + (size_t)fuzz_u8(in) * 16;
    cfg.indexed = (kflags & 1) != 0;
    cfg.fail_init = (kflags & 0x3E) == 0x3E; /* rarely: a platform that cannot give a heap */
    cfg.quiet = true;
    kheap_hosted_configure(&cfg);
    kheap_init();
    FUZZ_CHECK(kheap_ready() == (!cfg.fail_init && cfg.heap_bytes >= FUZZ_BS));
    FUZZ_CHECK((kheap_get() != NULL) == kheap_ready());
    nklive = 0;
    nkstale = 0;
    for (int step = 0; step < OPS_MAX_STEPS && fuzz_more(in); step++) {
        kop(in);
    }
    while (nklive > 0) {
        kfree_slot(nklive - 1);
    }
    kcheck_heap();
    if (kheap_ready()) {
        struct heap_stats s;
        heap_get_stats(kheap_get(), &s);
        FUZZ_CHECK(kheap_check(NULL) == PEACHOS_ALL_OK);
        /* Empty cache slabs may stay (hysteresis); after a trim nothing does. */
        kheap_trim();
        heap_get_stats(kheap_get(), &s);
        FUZZ_CHECK(s.live_allocations == 0 && s.used_blocks == 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    struct fuzz_input in = { data, size, 0 };
    /* Heap size 1 .. 4096 blocks, about log-uniform: low 12 bits shifted
     * right by the high 4, so small heaps (fast to check) are common. */
    uint16_t raw = fuzz_u16(&in);
    size_t total = 1 + (size_t)((raw & 0xFFFu) >> (raw >> 12));
    uint8_t flags = fuzz_u8(&in);
    uintptr_t base;
    switch (flags % 3) {
    case 0: base = ops_real_pool(); break;
    case 1: base = FUZZ_BS; break; /* the pool starts at 4 KiB: pointers below it include NULL */
    default: base = (UINTPTR_MAX & ~(uintptr_t)(FUZZ_BS - 1)) - total * FUZZ_BS; break; /* ends at the top page */
    }
    table_a = (struct heap_table){ entries_a, total };
    table_b = (struct heap_table){ entries_b, total };
    memset(entries_a, 0xA5, sizeof(entries_a)); /* heap_create must clear them */
    memset(entries_b, 0x5A, sizeof(entries_b));
    FUZZ_CHECK(heap_index_bytes(total) <= sizeof(index_mem));
    FUZZ_CHECK(heap_create_indexed(&heap_a, (void*)base, (void*)(base + total * FUZZ_BS), &table_a, index_mem,
                                   sizeof(index_mem)) == PEACHOS_ALL_OK);
    FUZZ_CHECK(heap_create(&heap_b, (void*)base, (void*)(base + total * FUZZ_BS), &table_b) == PEACHOS_ALL_OK);
    rec_a.count = rec_b.count = 0;
    heap_set_report(&heap_a, ops_record, &rec_a);
    heap_set_report(&heap_b, ops_record, &rec_b);
    model_reset(total, base);
    m.nstale = 0;
    ops_check();

    /* The next heap_len bytes are operations on the two heaps, the rest
     * (if any) operations on kheap. */
    size_t heap_len = fuzz_u16(&in);
    size_t split = in.size - in.pos < heap_len ? in.size : in.pos + heap_len;
    struct fuzz_input heap_in = { in.data, split, in.pos };
    for (int step = 0; step < OPS_MAX_STEPS && fuzz_more(&heap_in); step++) {
        fuzz_op(&heap_in);
        ops_check();
    }
    op_free_all(&heap_in);
    ops_check();
    FUZZ_CHECK(m.used == 0);

    if (split < in.size) {
        struct fuzz_input k_in = { in.data, in.size, split };
        kheap_phase(&k_in, flags >> 2);
    }
    return 0;
}
