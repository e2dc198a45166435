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
 * Then the same input drives the whole kmalloc family (kmalloc, kzalloc,
 * kcalloc, kpalloc, krealloc, ksize, kfree, kheap_trim, fault injection)
 * through the hosted kheap port on a small heap, against a model of the
 * live objects (kind, usable size, a byte pattern per object that must
 * survive krealloc and be intact when freed): no two live objects overlap,
 * bad pointers are refused with one report and change nothing, and after
 * every operation kheap_check is clean and the counters equal the model's
 * (the contract checked is listed above kheap_phase).
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
#include "memory/heap/heap_status.h"

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
    if (n == 0 || (type != HEAP_BLOCK_TYPE_PLAIN && type != HEAP_BLOCK_TYPE_CACHE && type != HEAP_BLOCK_TYPE_VMAP)) {
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
 * The kmalloc family through the hosted kheap port: kmalloc, kzalloc,
 * kcalloc, kpalloc, krealloc, ksize, kfree, kheap_trim, with fault
 * injection. The model (klive) holds every live object: pointer, requested
 * size, usable size, kind (small object or whole blocks) and the seed of the
 * byte pattern that fills its requested bytes. What is asserted is the
 * contract of kheap.h / docs/api.md / docs/kcache.md:
 *   - kmalloc(n), kzalloc, kcalloc: ceil(n/4096) plain whole blocks,
 *     block-aligned (the seed's contract); built with
 *     PEACHOS_KMALLOC_SMALL_OBJECTS=1 (target fuzz_heap_ops_small), as
 *     kmalloc_small;
 *   - kmalloc_small(n): NULL for 0 (nothing changed); 1..2048 a 16-byte aligned
 *     object of the smallest class (16..512 step 16, then 640, 768, 896,
 *     1024, 1280, 1536, 1792, 2048) in a CACHE slab; larger ceil(n/4096)
 *     plain whole blocks, block-aligned. NULL only when out of memory: then
 *     the spare slabs have been given back and no free run is long enough;
 *   - kzalloc / kcalloc zero the bytes asked for; kcalloc of an overflowing
 *     or zero n * size is NULL with nothing tried (nothing changed at all);
 *   - kpalloc(n): whole blocks, block-aligned, for any n >= 1;
 *   - ksize: the usable size of a live object, 0 for NULL or any pointer
 *     kfree refuses, never a report, nothing changed;
 *   - krealloc(NULL, n) = kmalloc(n); krealloc(p, 0) frees p; a bad p is
 *     refused with the report kfree gives and nothing else changes; a small
 *     object stays put (nothing changed at all) while n fits its class;
 *     block memory stays whole blocks, shrinks in place, grows in place
 *     whenever the next blocks are free, else moves; a move keeps the data
 *     (min(old, new) requested bytes checked) and frees the old memory; a
 *     failed move returns NULL with p live, intact and the same size;
 *   - kfree of a live object: no report, data intact up to the free, ksize
 *     0 afterwards; of anything else: one report, nothing else changed;
 *   - after EVERY operation kheap_check is clean and the heap's and the
 *     caches' counters equal the model's (objects, object bytes, used
 *     blocks, allocations, refused frees, reports).
 */
#define K_MAX_LIVE 256
#define K_SNAP_BLOCKS 4096u

struct kobj
{
    unsigned char* p;
    size_t size;   /* requested bytes: they hold the pattern */
    size_t usable; /* what ksize must say */
    bool blocks;   /* whole blocks (plain), else a small object */
    uint8_t seed;
};

static struct kobj klive[K_MAX_LIVE];
static size_t nklive;
static uintptr_t kstale[OPS_STALE];
static size_t nkstale;
static size_t krejected;     /* refused frees since kheap_init (model) */
static size_t kreports_base; /* kheap_hosted_report_count() at kheap_init */

static unsigned char kpattern(uint8_t seed, size_t i)
{
    return (unsigned char)(seed + i * 37u + (i >> 8));
}

static void kfill_range(const struct kobj* o, size_t from)
{
    for (size_t i = from; i < o->size; i++) {
        o->p[i] = kpattern(o->seed, i);
    }
}

/* The first n pattern bytes of o are intact (at p, which may be o's new place). */
static void kverify_bytes(const struct kobj* o, const unsigned char* p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] != kpattern(o->seed, i)) {
            fprintf(stderr, "kheap object %p (%zu bytes, now at %p): byte %zu overwritten\n", (void*)o->p, o->size,
                    (const void*)p, i);
            FUZZ_CHECK(!"live object data intact");
        }
    }
}

static void kverify(const struct kobj* o)
{
    kverify_bytes(o, o->p, o->size);
}

static void kverify_all(void)
{
    for (size_t i = 0; i < nklive; i++) {
        kverify(&klive[i]);
    }
}

/* Index of the live object starting at p (or containing p, if inside). */
static size_t kfind(uintptr_t p, int inside)
{
    for (size_t i = 0; i < nklive; i++) {
        uintptr_t s = (uintptr_t)klive[i].p;
        if (p == s || (inside && p > s && p < s + klive[i].usable)) {
            return i;
        }
    }
    return SIZE_MAX;
}

static void kstale_add(const void* p)
{
    kstale[nkstale++ % OPS_STALE] = (uintptr_t)p;
}

/* The class size kmalloc must give for 1..KCACHE_MAX_SIZE bytes (kcache.h). */
static size_t kclass_size(size_t n)
{
    if (n <= 512) {
        return (n + 15) / 16 * 16;
    }
    static const size_t big[] = { 640, 768, 896, 1024, 1280, 1536, 1792, 2048 };
    for (size_t i = 0; i < sizeof(big) / sizeof(big[0]); i++) {
        if (n <= big[i]) {
            return big[i];
        }
    }
    FUZZ_CHECK(!"kclass_size of a size above KCACHE_MAX_SIZE");
    return 0;
}

static size_t kblocks_for(size_t n)
{
    return n / FUZZ_BS + (n % FUZZ_BS != 0);
}

/* What kmalloc_small(n) must return, for n >= 1: kind and usable size. */
static struct kobj kexpect_small(size_t n)
{
    struct kobj e = { NULL, n, 0, n > KCACHE_MAX_SIZE, 0 };
    e.usable = e.blocks ? kblocks_for(n) * FUZZ_BS : kclass_size(n);
    return e;
}

/* What kmalloc(n) must return: whole blocks (the seed's contract), unless
 * built with PEACHOS_KMALLOC_SMALL_OBJECTS=1 (fuzz_heap_ops_small). */
static struct kobj kexpect_kmalloc(size_t n)
{
    struct kobj e = kexpect_small(n);
    if (!PEACHOS_KMALLOC_SMALL_OBJECTS) {
        e.blocks = true;
        e.usable = kblocks_for(n) * FUZZ_BS;
    }
    return e;
}

/* ---- the whole observable state, to prove that nothing changed ---- */
struct ksnap
{
    struct heap_stats hs;
    struct kcache_stats cs;
    size_t reports;
    size_t total;
    uint8_t table[K_SNAP_BLOCKS];
};

static void ksnap_take(struct ksnap* s)
{
    s->reports = kheap_hosted_report_count();
    struct heap* h = kheap_get();
    if (h == NULL) {
        s->total = 0;
        return;
    }
    uintptr_t state = kheap_lock();
    heap_get_stats(h, &s->hs);
    kcache_get_stats(kheap_cache(), &s->cs);
    s->total = h->table->total;
    FUZZ_CHECK(s->total <= K_SNAP_BLOCKS);
    memcpy(s->table, h->table->entries, s->total);
    kheap_unlock(state);
}

/* Nothing changed since `before` but `refused` more refused (and reported) frees. */
static void ksnap_same(const struct ksnap* before, size_t refused)
{
    static struct ksnap now;
    ksnap_take(&now);
    FUZZ_CHECK(now.reports == before->reports + refused);
    FUZZ_CHECK(now.total == before->total);
    if (now.total == 0) {
        return;
    }
    FUZZ_CHECK(memcmp(now.table, before->table, now.total) == 0);
    struct heap_stats hs = before->hs;
    hs.rejected_frees += refused;
    FUZZ_CHECK(memcmp(&now.hs, &hs, sizeof(hs)) == 0);
    FUZZ_CHECK(memcmp(&now.cs, &before->cs, sizeof(now.cs)) == 0);
}

static size_t kforced_since(const struct ksnap* before)
{
    struct kcache* kc = kheap_cache();
    if (kc == NULL) {
        return 0;
    }
    struct kcache_stats cs;
    kcache_get_stats(kc, &cs);
    return cs.forced_failures - before->cs.forced_failures;
}

/* An allocation (whole blocks: `blocks` of them, else a small object)
 * failed without a forced failure: the heap really had no room, even after
 * giving the spare slabs back. */
static void kcheck_out_of_memory(bool whole_blocks, size_t blocks)
{
    struct heap_stats hs;
    struct kcache_stats cs;
    uintptr_t state = kheap_lock();
    heap_get_stats(kheap_get(), &hs);
    kcache_get_stats(kheap_cache(), &cs);
    kheap_unlock(state);
    FUZZ_CHECK(cs.spare_slabs == 0);
    if (whole_blocks) {
        FUZZ_CHECK(hs.largest_free_run < blocks);
    } else {
        FUZZ_CHECK(hs.free_blocks == 0); /* any free block makes a one-block slab */
    }
}

/* p (of kind and usable size e) is well placed: aligned, in the right kind
 * of table chain, ksize right, overlapping no other live object. */
static void kcheck_placed(const void* p, const struct kobj* e, size_t self)
{
    struct heap* h = kheap_get();
    uintptr_t a = (uintptr_t)p, pool = (uintptr_t)h->saddr;
    FUZZ_CHECK(a >= pool && a + e->usable <= pool + h->table->total * FUZZ_BS);
    size_t block = (a - pool) / FUZZ_BS;
    uint8_t entry = h->table->entries[block];
    if (e->blocks) {
        FUZZ_CHECK(a % FUZZ_BS == 0);
        FUZZ_CHECK(entry == (HEAP_BLOCK_TABLE_ENTRY_TAKEN | HEAP_BLOCK_IS_FIRST) ||
                   entry == (HEAP_BLOCK_TABLE_ENTRY_TAKEN | HEAP_BLOCK_IS_FIRST | HEAP_BLOCK_HAS_NEXT));
        FUZZ_CHECK(heap_allocation_blocks(h, block) == e->usable / FUZZ_BS);
    } else {
        FUZZ_CHECK(a % KCACHE_ALIGN == 0);
        FUZZ_CHECK((entry & (HEAP_BLOCK_TABLE_ENTRY_TAKEN | HEAP_BLOCK_TYPE_MASK)) ==
                   (HEAP_BLOCK_TABLE_ENTRY_TAKEN | HEAP_BLOCK_TYPE_CACHE));
    }
    FUZZ_CHECK(ksize(p) == e->usable);
    for (size_t i = 0; i < nklive; i++) {
        uintptr_t s = (uintptr_t)klive[i].p;
        FUZZ_CHECK(i == self || a + e->usable <= s || s + klive[i].usable <= a);
    }
}

/* After every operation: kheap_check clean, counters equal the model. */
static void kcheck_all(void)
{
    if (!kheap_ready()) {
        FUZZ_CHECK(kheap_check(NULL) == -EINVARG);
        FUZZ_CHECK(nklive == 0 && kheap_hosted_report_count() == kreports_base);
        return;
    }
    size_t bad = 777;
    int res = kheap_check(&bad);
    if (res != PEACHOS_ALL_OK) {
        fprintf(stderr, "kheap_check: %d at block %zu\n", res, bad);
    }
    FUZZ_CHECK(res == PEACHOS_ALL_OK);
    size_t small = 0, small_bytes = 0, blocks = 0, block_allocs = 0;
    for (size_t i = 0; i < nklive; i++) {
        if (klive[i].blocks) {
            block_allocs++;
            blocks += klive[i].usable / FUZZ_BS;
        } else {
            small++;
            small_bytes += klive[i].usable;
        }
    }
    struct heap_stats hs;
    struct kcache_stats cs;
    uintptr_t state = kheap_lock();
    heap_get_stats(kheap_get(), &hs);
    kcache_get_stats(kheap_cache(), &cs);
    kheap_unlock(state);
    FUZZ_CHECK(cs.objects == small && cs.object_bytes == small_bytes);
    FUZZ_CHECK(hs.used_blocks == blocks + cs.slab_blocks);
    FUZZ_CHECK(hs.live_allocations == block_allocs + cs.slabs);
    FUZZ_CHECK(hs.rejected_frees == krejected);
    FUZZ_CHECK(kheap_hosted_report_count() - kreports_base == krejected);
    FUZZ_CHECK(cs.corruptions == 0 && cs.use_after_free == 0);
}

/* Check a new allocation against what kmalloc/kpalloc(n) must give (e), and
 * record it: zero says the n bytes must read 0 (kzalloc, kcalloc). */
static void kaccept(void* p, struct kobj e, uint8_t seed, bool zero, const struct ksnap* before)
{
    if (!kheap_ready()) {
        FUZZ_CHECK(p == NULL);
        ksnap_same(before, 0);
        return;
    }
    if (p == NULL) {
        if (kforced_since(before) == 0) {
            kcheck_out_of_memory(e.blocks, kblocks_for(e.size));
        }
        return;
    }
    kcheck_placed(p, &e, SIZE_MAX);
    unsigned char* b = (unsigned char*)p;
    for (size_t i = 0; zero && i < e.size; i++) {
        FUZZ_CHECK(b[i] == 0);
    }
    FUZZ_CHECK(nklive < K_MAX_LIVE);
    e.p = b;
    e.seed = seed;
    klive[nklive++] = e;
    kfill_range(&e, 0);
}

static void kfree_slot(size_t i)
{
    struct kobj o = klive[i];
    kverify(&o);
    size_t reports = kheap_hosted_report_count();
    kfree(o.p);
    FUZZ_CHECK(kheap_hosted_report_count() == reports);
    klive[i] = klive[--nklive];
    FUZZ_CHECK(ksize(o.p) == 0); /* no longer live */
    kstale_add(o.p);
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

/* kmalloc (how 0), kzalloc (1), kpalloc (2), krealloc(NULL, n) (3),
 * kmalloc_small (4) or kzalloc_small (5). */
static void kop_alloc(int how, size_t n, uint8_t seed)
{
    if (nklive == K_MAX_LIVE) {
        return;
    }
    static struct ksnap before;
    ksnap_take(&before);
    void* p = how == 0   ? kmalloc(n)
              : how == 1 ? kzalloc(n)
              : how == 2 ? kpalloc(n)
              : how == 3 ? krealloc(NULL, n)
              : how == 4 ? kmalloc_small(n)
                         : kzalloc_small(n);
    if (n == 0) {
        FUZZ_CHECK(p == NULL);
        ksnap_same(&before, 0);
        return;
    }
    struct kobj e = how >= 4 ? kexpect_small(n) : kexpect_kmalloc(n);
    if (how == 2) { /* kpalloc: whole blocks whatever the size */
        e.blocks = true;
        e.usable = kblocks_for(n) * FUZZ_BS;
    }
    kaccept(p, e, seed, how == 1 || how == 5, &before);
}

/* kcalloc(n, size): the product, if it does not overflow, like kzalloc. */
static void kop_calloc(struct fuzz_input* in)
{
    uint8_t sel = fuzz_u8(in);
    size_t n, size;
    switch ((sel & 0x7F) % 5) { /* bit 7: swap n and size */
    case 0: n = fuzz_u8(in); size = fuzz_u8(in); break;
    case 1: n = fuzz_u16(in) % 64; size = ksize_arg(in); break;
    case 2: { /* just past SIZE_MAX: overflows */
        unsigned k = fuzz_u8(in) % 63 + 1;
        n = (size_t)1 << k;
        size = (SIZE_MAX >> k) + 1 + fuzz_u8(in);
        break;
    }
    case 3: { /* just below: no overflow, but far too big */
        unsigned k = fuzz_u8(in) % 63 + 1;
        n = (size_t)1 << k;
        size = (SIZE_MAX >> k) - fuzz_u8(in);
        break;
    }
    default: n = (size_t)fuzz_u64(in); size = (size_t)fuzz_u64(in); break;
    }
    if (sel & 0x80) {
        size_t t = n;
        n = size;
        size = t;
    }
    uint8_t seed = fuzz_u8(in);
    if (nklive == K_MAX_LIVE) {
        return;
    }
    size_t product;
    bool overflow = __builtin_mul_overflow(n, size, &product);
    static struct ksnap before;
    ksnap_take(&before);
    void* p = kcalloc(n, size);
    if (overflow || product == 0) {
        FUZZ_CHECK(p == NULL);
        ksnap_same(&before, 0); /* nothing tried */
        return;
    }
    kaccept(p, kexpect_kmalloc(product), seed, true, &before);
}

/* The new size for krealloc of live object o. */
static size_t krealloc_size(struct fuzz_input* in, const struct kobj* o)
{
    uint8_t how = fuzz_u8(in);
    uint16_t v = fuzz_u16(in);
    switch (how % 8) {
    case 0: return ksize_arg(in);
    case 1: return 1 + v % o->size;                                   /* shrink (or the same) */
    case 2: return o->size + v % (o->usable - o->size + 1);           /* within the usable size */
    case 3: return o->usable + 1 + v % 64;                            /* just past: class change, one more block */
    case 4: return o->usable + 1 + (size_t)v * 16;                    /* grow */
    case 5: return SIZE_MAX - v;                                      /* too big */
    case 6: return 0;                                                 /* free */
    default: return (size_t)(v % 8 + 1) * FUZZ_BS - (size_t)(v >> 8) % 3; /* around whole blocks */
    }
}

static void kop_realloc(size_t i, size_t n)
{
    struct kobj o = klive[i];
    kverify(&o);
    struct heap* h = kheap_get();
    size_t first = ((uintptr_t)o.p - (uintptr_t)h->saddr) / FUZZ_BS;
    size_t have = o.usable / FUZZ_BS, want = kblocks_for(n);
    static struct ksnap before;
    ksnap_take(&before);
    /* Block memory grows in place iff the blocks after it are free. */
    bool can_grow = o.blocks && want > have && want <= before.total - first;
    for (size_t b = first + have; can_grow && b < first + want; b++) {
        can_grow = before.table[b] == 0;
    }

    unsigned char* r = (unsigned char*)krealloc(o.p, n);

    if (n == 0) { /* frees o */
        FUZZ_CHECK(r == NULL);
        FUZZ_CHECK(kheap_hosted_report_count() == before.reports);
        klive[i] = klive[--nklive];
        FUZZ_CHECK(ksize(o.p) == 0);
        kstale_add(o.p);
        return;
    }
    bool forced = kforced_since(&before) != 0;
    struct kobj e = o; /* what o must become */
    if (!o.blocks && n <= o.usable) {
        FUZZ_CHECK(r == o.p); /* the class still fits: stays put, nothing changes */
        ksnap_same(&before, 0);
    } else if (o.blocks && want <= have) {
        FUZZ_CHECK(r == o.p); /* shrunk in place, still whole blocks */
        e.usable = want * FUZZ_BS;
    } else {
        e = o.blocks ? o : kexpect_small(n); /* block memory stays blocks; a small object moves as kmalloc_small */
        if (o.blocks) {
            e.usable = want * FUZZ_BS;
        }
        if (r == NULL) { /* failed: o is live, intact, unchanged */
            FUZZ_CHECK(!can_grow || forced);
            FUZZ_CHECK(kheap_hosted_report_count() == before.reports);
            FUZZ_CHECK(ksize(o.p) == o.usable);
            kverify(&o);
            if (!forced) {
                kcheck_out_of_memory(e.blocks, kblocks_for(n));
            }
            return;
        }
        if (r == o.p) {
            FUZZ_CHECK(o.blocks && can_grow); /* grown in place */
        } else {
            FUZZ_CHECK(!can_grow || forced); /* moved only when growing in place was impossible */
            FUZZ_CHECK(ksize(o.p) == 0); /* the old memory is freed */
            kstale_add(o.p);
        }
    }
    FUZZ_CHECK(kheap_hosted_report_count() == before.reports);
    kverify_bytes(&o, r, o.size < n ? o.size : n);
    e.p = r;
    e.size = n;
    e.seed = o.seed;
    kcheck_placed(r, &e, i);
    klive[i] = e;
    kfill_range(&e, o.size < n ? o.size : n);
}

/* A pointer kfree must refuse: given to kfree, krealloc or ksize. */
static void kbad(uintptr_t p, int call, size_t n)
{
    if (p == 0 || kfind(p, 0) != SIZE_MAX) {
        return; /* NULL, or (a stale pointer reused by) a live object: not bad */
    }
    size_t refused = kheap_ready() ? 1 : 0;
    static struct ksnap before;
    ksnap_take(&before);
    if (call == 2) {
        FUZZ_CHECK(ksize((void*)p) == 0);
        ksnap_same(&before, 0); /* no report */
        return;
    }
    if (call == 1) {
        FUZZ_CHECK(krealloc((void*)p, n) == NULL);
        ksnap_same(&before, refused);
        krejected += refused;
        if (refused == 0) {
            return;
        }
        /* kfree refuses it the same way */
        struct heap_report by_realloc = kheap_hosted_last_report();
        kfree((void*)p);
        struct heap_report by_free = kheap_hosted_last_report();
        FUZZ_CHECK(by_free.kind == by_realloc.kind && by_free.ptr == by_realloc.ptr &&
                   by_free.block == by_realloc.block);
        ksnap_same(&before, 2);
        krejected++;
    } else {
        kfree((void*)p);
        ksnap_same(&before, refused);
        krejected += refused;
    }
    if (refused != 0) {
        FUZZ_CHECK(kheap_hosted_last_report().ptr == (void*)p);
    }
    kverify_all();
}

static void kop_bad(struct fuzz_input* in)
{
    uint8_t call = fuzz_u8(in) % 3; /* kfree, krealloc, ksize */
    uint8_t kind = fuzz_u8(in);
    uintptr_t p;
    if (kind % 3 == 0) { /* interior of a live object, or just past it */
        uint16_t v = fuzz_u16(in);
        uint32_t off = fuzz_u32(in);
        if (nklive == 0) {
            return;
        }
        const struct kobj* o = &klive[v % nklive];
        p = (uintptr_t)o->p + 1 + off % o->usable;
    } else if (kind % 3 == 1) { /* stale: double free, freed slot */
        uint8_t v = fuzz_u8(in);
        if (nkstale == 0) {
            return;
        }
        p = kstale[v % (nkstale < OPS_STALE ? nkstale : OPS_STALE)];
    } else { /* garbage, absolute or from the pool */
        uint8_t how = fuzz_u8(in);
        uint64_t raw = fuzz_u64(in);
        struct heap* h = kheap_get();
        uintptr_t base = h != NULL ? (uintptr_t)h->saddr : 0;
        p = (how & 1) ? (uintptr_t)raw : base + (uintptr_t)(raw % (1u << 22));
    }
    size_t n = call == 1 ? ksize_arg(in) : 0;
    kbad(p, call, n);
}

/* Fault injection: let `successes` allocations through, then fail every
 * one at the chosen sites; mask 0 switches it off. */
static void kop_fault(struct fuzz_input* in)
{
    uint8_t successes = fuzz_u8(in) % 8;
    uint8_t sites = fuzz_u8(in) & 0x0F; /* bit k: site k + 1 */
    if (sites == 0) {
        kheap_hosted_fail_reset();
        return;
    }
    kheap_hosted_fail_after(successes, (unsigned)sites << 1);
}

static void kop(struct fuzz_input* in)
{
    uint8_t op = fuzz_u8(in);
    switch (op % 16) {
    case 0: { /* kmalloc */
        size_t n = ksize_arg(in);
        kop_alloc(0, n, fuzz_u8(in));
        break;
    }
    case 11: { /* kmalloc_small, or kzalloc_small for an odd size byte */
        size_t n = ksize_arg(in);
        kop_alloc(n % 2 ? 5 : 4, n, fuzz_u8(in));
        break;
    }
    case 1: { /* kzalloc */
        size_t n = ksize_arg(in);
        kop_alloc(1, n, fuzz_u8(in));
        break;
    }
    case 2:
        kop_calloc(in);
        break;
    case 3: { /* kpalloc */
        size_t n = ksize_arg(in);
        kop_alloc(2, n, fuzz_u8(in));
        break;
    }
    case 4:
    case 12: { /* kfree of a live object */
        uint16_t v = fuzz_u16(in);
        if (nklive > 0) {
            kfree_slot(v % nklive);
        }
        break;
    }
    case 5:
    case 13: { /* krealloc of a live object */
        uint16_t v = fuzz_u16(in);
        if (nklive > 0) {
            size_t i = v % nklive;
            kop_realloc(i, krealloc_size(in, &klive[i]));
        }
        break;
    }
    case 6: { /* krealloc(NULL, n) = kmalloc(n) */
        size_t n = ksize_arg(in);
        kop_alloc(3, n, fuzz_u8(in));
        break;
    }
    case 7: { /* ksize of a live object, and of NULL */
        uint16_t v = fuzz_u16(in);
        FUZZ_CHECK(ksize(NULL) == 0);
        if (nklive > 0) {
            const struct kobj* o = &klive[v % nklive];
            FUZZ_CHECK(ksize(o->p) == o->usable && o->usable >= o->size);
        }
        break;
    }
    case 8:
    case 14:
        kop_bad(in);
        break;
    case 9:
        kop_fault(in);
        break;
    default: { /* kfree(NULL) changes nothing; kheap_trim only frees spare slabs */
        static struct ksnap before;
        ksnap_take(&before);
        kfree(NULL);
        ksnap_same(&before, 0);
        size_t trimmed = kheap_trim();
        if (kheap_ready()) {
            struct kcache_stats cs;
            kcache_get_stats(kheap_cache(), &cs);
            FUZZ_CHECK(cs.spare_slabs == 0 && trimmed == before.cs.slab_blocks - cs.slab_blocks);
            FUZZ_CHECK(cs.objects == before.cs.objects);
        } else {
            FUZZ_CHECK(trimmed == 0);
        }
        kverify_all();
        break;
    }
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
    kheap_hosted_fail_reset();
    kheap_init();
    FUZZ_CHECK(kheap_ready() == (!cfg.fail_init && cfg.heap_bytes >= FUZZ_BS));
    FUZZ_CHECK((kheap_get() != NULL) == kheap_ready());
    nklive = 0;
    nkstale = 0;
    krejected = 0;
    kreports_base = kheap_hosted_report_count();
    kcheck_all();
    for (int step = 0; step < OPS_MAX_STEPS && fuzz_more(in); step++) {
        kop(in);
        kcheck_all();
    }
    kheap_hosted_fail_reset();
    while (nklive > 0) {
        kfree_slot(nklive - 1);
        kcheck_all();
    }
    if (kheap_ready()) {
        /* Empty cache slabs may stay (hysteresis); after a trim nothing does. */
        kheap_trim();
        struct heap_stats s;
        heap_get_stats(kheap_get(), &s);
        FUZZ_CHECK(s.live_allocations == 0 && s.used_blocks == 0);
        kcheck_all();
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
