/*
 * selftest.c - the kernel's self-test of the heap.
 *
 *   1. The table contract on a small heap in a static buffer, with heap_create
 *      (linear first fit) and heap_create_indexed: the seed's encoding (41,
 *      C1 01, C1 81 01), first fit, and the seed's defects fixed (malloc(0),
 *      sizes near SIZE_MAX, requests longer than the heap, free(NULL), and
 *      bad frees - interior, unaligned, outside, double - that leave the table
 *      unchanged and are reported and counted).
 *      The same small heap then carries caches built with KCACHE_FLAG_POISON
 *      (the debug configuration): a write after free is reported.
 *   2. The kernel heap itself: placed at the config.h addresses; exhausted
 *      block by block (exactly 25,600 blocks), every byte written and read
 *      back, freed; a seeded random workload of kmalloc/kzalloc/krealloc/kfree
 *      with a per-object pattern in every byte, checked on free, kheap_check
 *      every 1000 operations; the small-object caches; the kmalloc family's
 *      edges (kcalloc overflow, krealloc with NULL, 0, shrinking and growing,
 *      ksize of bad pointers); an overrun into a slab, which changes nothing
 *      the caches decide.
 *   3. Live allocations of every kind are left for the statistics and the map.
 *
 * Every allocation is filled with a pattern right after it is made and
 * checked right before it is freed (st_filled / st_intact, k_filled / k_free).
 *
 * Every case prints one line, PASS or FAIL, and failed checks print the
 * condition and line above it.
 */
#include "selftest.h"

#include "../config.h"
#include "../memory/heap/heap.h"
#include "../memory/heap/heap_index.h"
#include "../memory/heap/kcache.h"
#include "../memory/heap/kheap.h"
#include "../memory/memory.h"
#include "../status.h"
#include "../memory/heap/heap_status.h"
#include "kernel.h"
#include "print.h"

#define BS ((size_t)PEACHOS_HEAP_BLOCK_SIZE)
#define KHEAP_BLOCKS (PEACHOS_HEAP_SIZE_BYTES / PEACHOS_HEAP_BLOCK_SIZE)

static int st_passed;
static int st_failed;

#define EXPECT(cond) SELFTEST_EXPECT(cond)

static void st_result(const char* name, const char* variant, bool ok)
{
    printk("%s %s%s\n", ok ? "PASS" : "FAIL", name, variant);
    if (ok) {
        st_passed++;
    } else {
        st_failed++;
    }
}

/* ---- patterns: byte i of an object with seed s, written a word at a time ---- */

static uint32_t st_word(uint32_t seed, size_t word)
{
    return seed ^ ((uint32_t)word * 0x9E3779B1u);
}

static void st_fill(void* ptr, size_t size, uint32_t seed)
{
    uint32_t* words = (uint32_t*)ptr; /* every allocation is at least 16-byte aligned */
    size_t n = size / 4;
    for (size_t i = 0; i < n; i++) {
        words[i] = st_word(seed, i);
    }
    unsigned char* bytes = (unsigned char*)ptr;
    for (size_t i = n * 4; i < size; i++) {
        bytes[i] = (unsigned char)(st_word(seed, i / 4) >> (8 * (i % 4)));
    }
}

/* Returns the first byte offset that differs, or SIZE_MAX. */
static size_t st_verify(const void* ptr, size_t size, uint32_t seed)
{
    const uint32_t* words = (const uint32_t*)ptr;
    size_t n = size / 4;
    for (size_t i = 0; i < n; i++) {
        if (words[i] != st_word(seed, i)) {
            return i * 4;
        }
    }
    const unsigned char* bytes = (const unsigned char*)ptr;
    for (size_t i = n * 4; i < size; i++) {
        if (bytes[i] != (unsigned char)(st_word(seed, i / 4) >> (8 * (i % 4)))) {
            return i;
        }
    }
    return SIZE_MAX;
}

static bool st_all_zero(const void* ptr, size_t size)
{
    const unsigned char* bytes = (const unsigned char*)ptr;
    for (size_t i = 0; i < size; i++) {
        if (bytes[i] != 0) {
            return false;
        }
    }
    return true;
}

static bool st_same(const void* a, const void* b, size_t size)
{
    const unsigned char* x = (const unsigned char*)a;
    const unsigned char* y = (const unsigned char*)b;
    for (size_t i = 0; i < size; i++) {
        if (x[i] != y[i]) {
            return false;
        }
    }
    return true;
}

/*
 * Every allocation is filled right after it is made and verified right
 * before it is freed, with a pattern keyed by its own address: two
 * allocations that overlap overwrite each other's pattern, and a wrong
 * address shows up as a fault or a mismatch. NULL passes through (the
 * callers check for NULL themselves).
 */
static uint32_t st_seed_of(const void* ptr)
{
    return (uint32_t)(uintptr_t)ptr * 0x85EBCA6Bu;
}

static void* st_filled(void* ptr, size_t size)
{
    if (ptr != NULL) {
        st_fill(ptr, size, st_seed_of(ptr));
    }
    return ptr;
}

static bool st_intact(const void* ptr, size_t size)
{
    size_t at = ptr == NULL ? SIZE_MAX : st_verify(ptr, size, st_seed_of(ptr));
    if (at != SIZE_MAX) {
        printk("  %p (%zu bytes): pattern differs at byte %zu\n", ptr, size, at);
    }
    return at == SIZE_MAX;
}

/* xorshift32: the random workload is the same on every boot. */
static uint32_t st_rng_state;

static uint32_t st_rand(void)
{
    uint32_t x = st_rng_state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    st_rng_state = x;
    return x;
}

/* ---- 1. the table contract on a small heap ---- */

#define SMALL_BLOCKS 16
static unsigned char small_pool[SMALL_BLOCKS * PEACHOS_HEAP_BLOCK_SIZE]
    __attribute__((aligned(PEACHOS_HEAP_BLOCK_SIZE)));
static HEAP_BLOCK_TABLE_ENTRY small_entries[SMALL_BLOCKS];
static HEAP_BLOCK_TABLE_ENTRY small_snapshot[SMALL_BLOCKS];
static uint64_t small_index[128];
static struct heap_table small_table;
static struct heap small_heap;
static size_t small_reports;
static struct heap_report small_last;

static void small_report(void* ctx, const struct heap_report* report)
{
    (void)ctx;
    small_reports++;
    small_last = *report;
}

static int small_create(bool indexed)
{
    small_table.entries = small_entries;
    small_table.total = SMALL_BLOCKS;
    int res = indexed ? heap_create_indexed(&small_heap, small_pool, small_pool + sizeof(small_pool), &small_table,
                                            small_index, sizeof(small_index))
                      : heap_create(&small_heap, small_pool, small_pool + sizeof(small_pool), &small_table);
    heap_set_report(&small_heap, small_report, NULL);
    small_reports = 0;
    return res;
}

static unsigned char* small_block(size_t b)
{
    return small_pool + b * BS;
}

static void small_take_snapshot(void)
{
    memcpy(small_snapshot, small_entries, sizeof(small_entries));
}

static bool small_unchanged(void)
{
    return st_same(small_snapshot, small_entries, sizeof(small_entries));
}

static bool small_check(void)
{
    size_t bad = 0;
    int res = heap_check(&small_heap, &bad);
    if (res != 0) {
        printk("  heap_check: %d, first bad block %zu\n", res, bad);
    }
    return res == 0;
}

/* Every block free again, no report, and the heap sound. */
static bool small_empty(void)
{
    return st_all_zero(small_entries, sizeof(small_entries)) && small_reports == 0 && small_check();
}

/* heap_malloc / heap_free on the small heap, with the pattern in every byte. */
static void* small_alloc(size_t size)
{
    return st_filled(heap_malloc(&small_heap, size), size);
}

static bool small_free(void* ptr, size_t size)
{
    bool intact = st_intact(ptr, size);
    heap_free(&small_heap, ptr);
    return intact;
}

static void case_small_create(bool indexed, const char* variant)
{
    bool ok = true;
    EXPECT(heap_index_bytes(SMALL_BLOCKS) <= sizeof(small_index));
    /* Refusals write nothing at all. */
    memset(small_entries, 0xAA, sizeof(small_entries));
    small_table.entries = small_entries;
    small_table.total = SMALL_BLOCKS;
    EXPECT(heap_create(&small_heap, small_pool + 1, small_pool + sizeof(small_pool), &small_table) == -EINVARG);
    small_table.total = SMALL_BLOCKS + 1;
    EXPECT(heap_create(&small_heap, small_pool, small_pool + sizeof(small_pool), &small_table) == -EINVARG);
    EXPECT(heap_create(&small_heap, small_pool + sizeof(small_pool), small_pool, &small_table) == -EINVARG);
    for (size_t i = 0; i < SMALL_BLOCKS; i++) {
        EXPECT(small_entries[i] == 0xAA);
    }
    /* Metadata in the pool (the caller's memory) is refused: a table, an index. */
    small_table.total = SMALL_BLOCKS;
    memset(small_pool, 0xAA, 2 * BS);
    small_table.entries = small_pool + BS;
    EXPECT(heap_create(&small_heap, small_pool, small_pool + sizeof(small_pool), &small_table) == -EINVARG);
    small_table.entries = small_entries;
    EXPECT(heap_create_indexed(&small_heap, small_pool, small_pool + sizeof(small_pool), &small_table, small_pool,
                               sizeof(small_index)) == -EINVARG);
    bool pool_untouched = true;
    for (size_t i = 0; i < 2 * BS; i++) {
        pool_untouched = pool_untouched && small_pool[i] == 0xAA;
    }
    EXPECT(pool_untouched);
    EXPECT(small_create(indexed) == 0);
    EXPECT(st_all_zero(small_entries, sizeof(small_entries)));
    struct heap_stats stats;
    heap_get_stats(&small_heap, &stats);
    EXPECT(stats.total_blocks == SMALL_BLOCKS && stats.free_blocks == SMALL_BLOCKS && stats.used_blocks == 0);
    EXPECT(stats.largest_free_run == SMALL_BLOCKS && stats.live_allocations == 0);
    EXPECT(small_check());
    st_result("table: heap_create refuses bad arguments and metadata in the pool untouched, clears the table", variant, ok);
}

static void case_small_encoding(bool indexed, const char* variant)
{
    bool ok = true;
    EXPECT(small_create(indexed) == 0);
    void* a = heap_malloc(&small_heap, 1);
    void* b = heap_malloc(&small_heap, BS + 1);
    void* c = heap_malloc(&small_heap, 3 * BS);
    void* d = heap_malloc(&small_heap, BS);
    EXPECT(a == small_block(0) && b == small_block(1) && c == small_block(3) && d == small_block(6));
    static const HEAP_BLOCK_TABLE_ENTRY expect[SMALL_BLOCKS] = { 0x41, 0xC1, 0x01, 0xC1, 0x81, 0x01, 0x41 };
    EXPECT(st_same(small_entries, expect, sizeof(expect)));
    if (!st_same(small_entries, expect, sizeof(expect))) {
        print("  table:");
        for (size_t i = 0; i < SMALL_BLOCKS; i++) {
            printk(" %02x", small_entries[i]);
        }
        print("\n");
    }
    struct heap_stats stats;
    heap_get_stats(&small_heap, &stats);
    EXPECT(stats.used_blocks == 7 && stats.live_allocations == 4 && stats.largest_free_run == 9);
    /* The data pool holds no metadata: every byte is the caller's. */
    if (a != NULL && b != NULL && c != NULL && d != NULL) {
        st_fill(a, BS, 1);
        st_fill(b, 2 * BS, 2);
        st_fill(c, 3 * BS, 3);
        st_fill(d, BS, 4);
        EXPECT(st_verify(a, BS, 1) == SIZE_MAX && st_verify(b, 2 * BS, 2) == SIZE_MAX);
        EXPECT(st_verify(c, 3 * BS, 3) == SIZE_MAX && st_verify(d, BS, 4) == SIZE_MAX);
    }
    EXPECT(small_check());
    heap_free(&small_heap, a);
    heap_free(&small_heap, b);
    heap_free(&small_heap, c);
    heap_free(&small_heap, d);
    EXPECT(small_empty());
    st_result("table: 1, 2, 3 blocks encode as 41 / C1 01 / C1 81 01", variant, ok);
}

static void case_small_first_fit(bool indexed, const char* variant)
{
    bool ok = true;
    EXPECT(small_create(indexed) == 0);
    void* a = small_alloc(BS);     /* block 0 */
    void* b = small_alloc(2 * BS); /* blocks 1-2 */
    void* c = small_alloc(BS);     /* block 3 */
    EXPECT(small_free(b, 2 * BS)); /* hole of 2 at block 1 */
    void* d = small_alloc(3 * BS); /* too big for the hole: block 4 */
    void* e = small_alloc(BS);     /* lowest fit: block 1 */
    void* f = small_alloc(BS);     /* block 2 */
    void* g = small_alloc(BS);     /* block 7 */
    EXPECT(a == small_block(0) && c == small_block(3) && d == small_block(4));
    EXPECT(e == small_block(1) && f == small_block(2) && g == small_block(7));
    EXPECT(small_free(a, BS));
    EXPECT(small_free(c, BS));
    EXPECT(small_free(d, 3 * BS));
    EXPECT(small_free(e, BS));
    EXPECT(small_free(f, BS));
    EXPECT(small_free(g, BS));
    /* The whole heap in one allocation, then nothing more. */
    void* all = small_alloc(SMALL_BLOCKS * BS);
    EXPECT(all == small_block(0));
    EXPECT(heap_malloc(&small_heap, 1) == NULL);
    EXPECT(small_entries[0] == 0xC1 && small_entries[SMALL_BLOCKS - 1] == 0x01);
    EXPECT(small_free(all, SMALL_BLOCKS * BS));
    EXPECT(small_empty());
    st_result("table: first fit takes the lowest run that is long enough", variant, ok);
}

static void case_small_bad_sizes(bool indexed, const char* variant)
{
    bool ok = true;
    EXPECT(small_create(indexed) == 0);
    void* keep = small_alloc(2 * BS);
    EXPECT(keep != NULL);
    small_take_snapshot();
    EXPECT(heap_malloc(&small_heap, 0) == NULL);
    EXPECT(heap_malloc(&small_heap, SIZE_MAX) == NULL);
    EXPECT(heap_malloc(&small_heap, SIZE_MAX - BS + 2) == NULL); /* rounding up would wrap */
    EXPECT(heap_malloc(&small_heap, SIZE_MAX / 2 + 1) == NULL);
    EXPECT(heap_malloc(&small_heap, (SMALL_BLOCKS - 1) * BS) == NULL); /* one block too many */
    EXPECT(heap_malloc(&small_heap, (SMALL_BLOCKS + 1) * BS) == NULL); /* longer than the heap */
    EXPECT(small_unchanged());
    EXPECT(small_free(keep, 2 * BS));
    EXPECT(small_check() && small_reports == 0);
    st_result("table: malloc(0), sizes near SIZE_MAX and too-long requests return NULL", variant, ok);
}

struct bad_free
{
    const char* what;
    void* ptr;
    enum heap_report_kind kind;
};

static void case_small_bad_frees(bool indexed, const char* variant)
{
    bool ok = true;
    EXPECT(small_create(indexed) == 0);
    unsigned char* a = small_alloc(BS);     /* block 0 */
    unsigned char* c = small_alloc(3 * BS); /* blocks 1-3 */
    EXPECT(a == small_block(0) && c == small_block(1));
    small_take_snapshot();
    heap_free(&small_heap, NULL);
    EXPECT(small_unchanged() && small_reports == 0 && small_heap.rejected_frees == 0);

    static unsigned char outside_static[16];
    unsigned char on_stack[16];
    struct bad_free cases[] = {
        { "interior block", c + BS, HEAP_REPORT_FREE_INTERIOR },
        { "last block", c + 2 * BS, HEAP_REPORT_FREE_INTERIOR },
        { "unaligned", a + 1, HEAP_REPORT_FREE_UNALIGNED },
        { "unaligned interior", c + BS + 100, HEAP_REPORT_FREE_UNALIGNED },
        { "never allocated", small_block(10), HEAP_REPORT_FREE_NOT_ALLOCATED },
        { "pool end", small_pool + sizeof(small_pool), HEAP_REPORT_FREE_OUTSIDE },
        { "before the pool", small_pool - BS, HEAP_REPORT_FREE_OUTSIDE },
        { "static data", outside_static, HEAP_REPORT_FREE_OUTSIDE },
        { "stack", on_stack, HEAP_REPORT_FREE_OUTSIDE },
    };
    size_t n = sizeof(cases) / sizeof(cases[0]);
    for (size_t i = 0; i < n; i++) {
        size_t reports = small_reports;
        size_t rejected = small_heap.rejected_frees;
        heap_free(&small_heap, cases[i].ptr);
        bool good = small_unchanged() && small_reports == reports + 1 && small_heap.rejected_frees == rejected + 1 &&
                    small_last.kind == cases[i].kind && small_last.ptr == cases[i].ptr;
        if (!good) {
            printk("  bad free '%s' (%p): reports %zu -> %zu, kind %d (expected %d), table %s\n", cases[i].what,
                   cases[i].ptr, reports, small_reports, (int)small_last.kind, (int)cases[i].kind,
                   small_unchanged() ? "unchanged" : "CHANGED");
            ok = false;
        }
    }
    /* The refusals touched no data either. Then a double free. */
    EXPECT(st_intact(c, 3 * BS));
    EXPECT(small_free(a, BS));
    EXPECT(small_entries[0] == 0 && small_reports == n);
    small_take_snapshot();
    heap_free(&small_heap, a);
    EXPECT(small_unchanged() && small_reports == n + 1 && small_last.kind == HEAP_REPORT_FREE_NOT_ALLOCATED);
    EXPECT(small_heap.rejected_frees == n + 1);
    EXPECT(small_check());
    EXPECT(small_free(c, 3 * BS));
    EXPECT(st_all_zero(small_entries, sizeof(small_entries)) && small_check());
    st_result("table: free(NULL) is a no-op; bad and double frees change nothing, reported and counted", variant,
              ok);
}

static void small_suite(bool indexed)
{
    const char* variant = indexed ? " [heap_create_indexed]" : " [heap_create]";
    case_small_create(indexed, variant);
    case_small_encoding(indexed, variant);
    case_small_first_fit(indexed, variant);
    case_small_bad_sizes(indexed, variant);
    case_small_bad_frees(indexed, variant);
}

/*
 * An index overwritten behind the heap's back (here: rebuilt as the fresh,
 * all-free index of another heap that shares its memory) names a taken
 * run; heap_malloc sees that in the table, reports it once, drops the index
 * and places with the scan.
 */
static void case_small_index_mismatch(void)
{
    bool ok = true;
    static HEAP_BLOCK_TABLE_ENTRY other_entries[SMALL_BLOCKS] = { 0 }; /* heap_create_indexed clears it */
    static struct heap_table other_table = { other_entries, SMALL_BLOCKS };
    static struct heap other;
    EXPECT(small_create(true) == 0);
    void* a = heap_malloc(&small_heap, 2 * BS);
    EXPECT(a == small_block(0));
    unsigned char* other_pool = (unsigned char*)0x00200000; /* never touched */
    EXPECT(heap_create_indexed(&other, other_pool, other_pool + SMALL_BLOCKS * BS, &other_table, small_index,
                               sizeof(small_index)) == 0);
    void* b = heap_malloc(&small_heap, BS);
    EXPECT(b == small_block(2)); /* not block 0, which is taken */
    EXPECT(small_reports == 1 && small_last.kind == HEAP_REPORT_INDEX_MISMATCH && small_last.block == 0);
    EXPECT(small_heap.index == NULL && small_heap.rejected_frees == 0);
    heap_free(&small_heap, a);
    EXPECT(heap_malloc(&small_heap, 2 * BS) == small_block(0) && small_check());
    st_result("index: an overwritten index is caught by the next malloc, reported, dropped; the scan goes on", "",
              ok);
}

/* ---- the debug configuration: poison, on a private heap ---- */

/* Caches with KCACHE_FLAG_POISON over the small heap: the kernel heap's
 * caches stay as built, and no second kernel build is needed. */
static struct kcache poison_cache;
/* Their slab table: a record per block, and with the per-CPU magazines the
 * live bitmap after the records (less than a record per block more). */
static struct kcache_slab poison_slabs[(1 + PEACHOS_KCACHE_MAGAZINES) * SMALL_BLOCKS];

static void case_kcache_poison(void)
{
    bool ok = true;
    EXPECT(small_create(true) == 0);
    EXPECT(kcache_table_bytes(SMALL_BLOCKS) == sizeof(poison_slabs) || PEACHOS_KCACHE_MAGAZINES);
    EXPECT(kcache_table_bytes(SMALL_BLOCKS) <= sizeof(poison_slabs));
    EXPECT(kcache_init(&poison_cache, &small_heap, poison_slabs, sizeof(poison_slabs), KCACHE_FLAG_POISON) == 0);
    unsigned char* a = kcache_alloc(&poison_cache, 64);
    unsigned char* b = kcache_alloc(&poison_cache, 64);
    EXPECT(a != NULL && b != NULL);
    if (a == NULL || b == NULL) {
        st_result("kcache poison: a write after free is reported on the next allocation [private heap]", "", false);
        return;
    }
    st_filled(a, 64);
    st_filled(b, 64);
    EXPECT(st_intact(a, 64));
    kcache_free(&poison_cache, a);
    bool poisoned = true;
    for (size_t i = 0; i < 64; i++) {
        poisoned = poisoned && a[i] == KCACHE_POISON_BYTE;
    }
    EXPECT(poisoned);
    size_t bad = 0;
    EXPECT(kcache_check(&poison_cache, &bad) == 0);

    /* The bug: a write through a pointer that was freed. kcache_check sees
     * it; the next allocation reports it and hands the object out anyway. */
    a[40] = 0;
    EXPECT(kcache_check(&poison_cache, &bad) == -ECORRUPT && bad == heap_address_to_block(&small_heap, a));
    unsigned char* again = kcache_alloc(&poison_cache, 64);
    EXPECT(again == a);
    EXPECT(small_reports == 1 && small_last.kind == HEAP_REPORT_CACHE_USE_AFTER_FREE && small_last.ptr == a);
    EXPECT(poison_cache.use_after_free == 1 && small_heap.rejected_frees == 0);
    printk("  write after free at %p: reported (kind %d), use_after_free=%zu\n", (void*)a, (int)small_last.kind,
           poison_cache.use_after_free);
    EXPECT(kcache_check(&poison_cache, &bad) == 0);

    /* Untouched poison: freed and allocated again without a report. */
    st_filled(again, 64);
    EXPECT(st_intact(b, 64));
    kcache_free(&poison_cache, b);
    EXPECT(kcache_alloc(&poison_cache, 64) == b && small_reports == 1);
    st_filled(b, 64);
    EXPECT(st_intact(again, 64) && st_intact(b, 64));
    kcache_free(&poison_cache, again);
    kcache_free(&poison_cache, b);
    kcache_trim(&poison_cache);
    EXPECT(kcache_check(&poison_cache, &bad) == 0 && small_reports == 1);
    EXPECT(st_all_zero(small_entries, sizeof(small_entries)) && small_check());
    st_result("kcache poison: a write after free is reported on the next allocation [private heap]", "", ok);
}

/* ---- 2. the kernel heap ---- */

static HEAP_BLOCK_TABLE_ENTRY kheap_snapshot[KHEAP_BLOCKS];
static void* kheap_blocks[KHEAP_BLOCKS];

bool kheap_clean(void)
{
    size_t bad = 0;
    int res = kheap_check(&bad);
    if (res != 0) {
        printk("  kheap_check: %d, first bad block %zu\n", res, bad);
    }
    return res == 0;
}

void kheap_stats_now(struct heap_stats* stats)
{
    uintptr_t state = kheap_lock();
    heap_get_stats(kheap_get(), stats);
    kheap_unlock(state);
}

static void kheap_take_snapshot(void)
{
    memcpy(kheap_snapshot, kheap_get()->table->entries, sizeof(kheap_snapshot));
}

static bool kheap_unchanged(void)
{
    return st_same(kheap_snapshot, kheap_get()->table->entries, sizeof(kheap_snapshot));
}

static HEAP_BLOCK_TABLE_ENTRY kheap_entry(const void* ptr)
{
    struct heap* heap = kheap_get();
    return heap->table->entries[heap_address_to_block(heap, ptr)];
}

/* kmalloc family memory with the pattern in all its usable bytes (ksize). */
static void* k_filled(void* ptr)
{
    return st_filled(ptr, ksize(ptr));
}

static bool k_intact(const void* ptr)
{
    return st_intact(ptr, ksize(ptr));
}

/* kfree after checking the pattern; false if it was damaged. */
static bool k_free(void* ptr)
{
    bool intact = k_intact(ptr);
    kfree(ptr);
    return intact;
}

static void case_kheap_placement(void)
{
    bool ok = true;
    struct heap* heap = kheap_get();
    EXPECT(heap != NULL);
    if (heap == NULL) {
        st_result("kheap: at the config.h addresses", "", false);
        return;
    }
    EXPECT(heap->saddr == (void*)PEACHOS_HEAP_ADDRESS);
    EXPECT(heap->table->entries == (HEAP_BLOCK_TABLE_ENTRY*)PEACHOS_HEAP_TABLE_ADDRESS);
    EXPECT(heap->table->total == KHEAP_BLOCKS);
    EXPECT(heap->index == (struct heap_index*)PEACHOS_HEAP_INDEX_ADDRESS);
    EXPECT(heap_index_bytes(KHEAP_BLOCKS) <= PEACHOS_HEAP_INDEX_MAX_BYTES);
    struct heap_stats stats;
    kheap_stats_now(&stats);
    EXPECT(stats.total_blocks == KHEAP_BLOCKS && stats.free_blocks == KHEAP_BLOCKS);
    EXPECT(stats.largest_free_run == KHEAP_BLOCKS);
    EXPECT(kheap_clean());
    st_result("kheap: pool at 0x01000000, table at 0x7E00, index at 0xE200, all 25600 blocks free", "", ok);
}

static void case_kheap_exhaustion(void)
{
    bool ok = true;
    struct heap* heap = kheap_get();
    size_t count = 0;
    bool ordered = true;
    while (count < KHEAP_BLOCKS) {
        void* p = kmalloc(BS);
        if (p == NULL) {
            break;
        }
        ordered = ordered && p == (unsigned char*)heap->saddr + count * BS;
        kheap_blocks[count++] = p;
    }
    printk("  allocated %zu blocks of %u bytes (%zu MiB)\n", count, (unsigned)BS, count * BS >> 20);
    EXPECT(count == KHEAP_BLOCKS);
    EXPECT(ordered);
    EXPECT(kmalloc(BS) == NULL);
    EXPECT(kmalloc(1) == NULL); /* no block left for a slab either */
    EXPECT(kpalloc(1) == NULL);
    struct heap_stats stats;
    kheap_stats_now(&stats);
    EXPECT(stats.used_blocks == KHEAP_BLOCKS && stats.free_blocks == 0 && stats.largest_free_run == 0);
    EXPECT(stats.live_allocations == KHEAP_BLOCKS);
    EXPECT(kheap_clean());

    /* Every byte of the 100 MiB: write a per-block pattern, then read it all. */
    for (size_t i = 0; i < count; i++) {
        st_fill(kheap_blocks[i], BS, (uint32_t)(uintptr_t)kheap_blocks[i]);
    }
    size_t bad_blocks = 0;
    for (size_t i = 0; i < count; i++) {
        size_t at = st_verify(kheap_blocks[i], BS, (uint32_t)(uintptr_t)kheap_blocks[i]);
        if (at != SIZE_MAX) {
            if (bad_blocks++ < 4) {
                printk("  block %zu (%p): pattern differs at byte %zu\n", i, kheap_blocks[i], at);
            }
        }
    }
    printk("  wrote and read back %zu bytes, %zu blocks differ\n", count * BS, bad_blocks);
    EXPECT(bad_blocks == 0);

    /* Free in a scrambled order (7919 is coprime with 25,600). */
    for (size_t i = 0; i < count; i++) {
        kfree(kheap_blocks[(i * 7919u) % count]);
    }
    kheap_stats_now(&stats);
    EXPECT(stats.used_blocks == 0 && stats.live_allocations == 0 && stats.largest_free_run == KHEAP_BLOCKS);
    EXPECT(kheap_clean());
    st_result("kheap: exhaustion - exactly 25600 blocks, every byte written and read back, all freed", "", ok);
}

#define WORK_SLOTS 256
#define WORK_OPS 20000
#define WORK_LARGE_BLOCKS 64

struct work_object
{
    unsigned char* ptr;
    size_t size;
    uint32_t seed;
};

static struct work_object work[WORK_SLOTS];

static size_t work_size(void)
{
    uint32_t r = st_rand();
    if (r % 100 < 85) {
        return 1 + st_rand() % KCACHE_MAX_SIZE; /* small: a cache object */
    }
    return KCACHE_MAX_SIZE + 1 + st_rand() % (WORK_LARGE_BLOCKS * BS - KCACHE_MAX_SIZE); /* whole blocks */
}

static bool work_aligned(const void* ptr, size_t size)
{
    size_t align = size <= KCACHE_MAX_SIZE ? KCACHE_ALIGN : BS;
    return ((uintptr_t)ptr & (align - 1)) == 0;
}

static void case_kheap_workload(void)
{
    bool ok = true;
    size_t errors = 0;
    size_t allocs = 0, frees = 0, reallocs = 0, checks = 0;
    size_t max_used = 0;
    st_rng_state = 0x2545F491u;
    size_t reports = selftest_reports();
    for (size_t op = 1; op <= WORK_OPS && errors < 8; op++) {
        struct work_object* obj = &work[st_rand() % WORK_SLOTS];
        uint32_t action = st_rand() % 100;
        if (obj->ptr == NULL) {
            size_t size = work_size();
            uint32_t seed = st_rand();
            unsigned char* p;
            if (action < 40) {
                p = kmalloc(size);
            } else if (action < 80) {
                p = kzalloc(size);
                if (p != NULL && !st_all_zero(p, size)) {
                    printk("  op %zu: kzalloc(%zu) = %p is not zeroed\n", op, size, (void*)p);
                    errors++;
                }
            } else {
                p = krealloc(NULL, size);
            }
            if (p == NULL || !work_aligned(p, size) || ksize(p) < size) {
                printk("  op %zu: allocation of %zu bytes gave %p (ksize %zu)\n", op, size, (void*)p, ksize(p));
                errors++;
                continue;
            }
            st_fill(p, size, seed);
            obj->ptr = p;
            obj->size = size;
            obj->seed = seed;
            allocs++;
        } else {
            size_t at = st_verify(obj->ptr, obj->size, obj->seed);
            if (at != SIZE_MAX) {
                printk("  op %zu: object %p (%zu bytes) overwritten at byte %zu\n", op, (void*)obj->ptr, obj->size, at);
                errors++;
            }
            if (action < 55) {
                kfree(obj->ptr);
                obj->ptr = NULL;
                frees++;
            } else {
                size_t size = work_size();
                unsigned char* p = krealloc(obj->ptr, size);
                if (p == NULL || !work_aligned(p, size) || ksize(p) < size) {
                    printk("  op %zu: krealloc(%p, %zu) gave %p\n", op, (void*)obj->ptr, size, (void*)p);
                    errors++;
                    continue;
                }
                size_t keep = size < obj->size ? size : obj->size;
                at = st_verify(p, keep, obj->seed);
                if (at != SIZE_MAX) {
                    printk("  op %zu: krealloc %zu -> %zu lost byte %zu\n", op, obj->size, size, at);
                    errors++;
                }
                obj->ptr = p;
                obj->size = size;
                obj->seed = st_rand();
                st_fill(p, size, obj->seed);
                reallocs++;
            }
        }
        if (op % 1000 == 0) {
            checks++;
            if (!kheap_clean()) {
                printk("  op %zu: kheap_check failed\n", op);
                errors++;
            }
            struct heap_stats stats;
            kheap_stats_now(&stats);
            max_used = stats.used_blocks > max_used ? stats.used_blocks : max_used;
        }
    }
    for (size_t i = 0; i < WORK_SLOTS; i++) {
        if (work[i].ptr != NULL) {
            if (st_verify(work[i].ptr, work[i].size, work[i].seed) != SIZE_MAX) {
                printk("  object %p (%zu bytes) overwritten\n", (void*)work[i].ptr, work[i].size);
                errors++;
            }
            kfree(work[i].ptr);
            work[i].ptr = NULL;
            frees++;
        }
    }
    printk("  %u ops: %zu allocations, %zu reallocs, %zu frees, %zu checks, peak %zu blocks used\n",
           (unsigned)WORK_OPS, allocs, reallocs, frees, checks, max_used);
    EXPECT(errors == 0);
    EXPECT(selftest_reports() == reports);
    EXPECT(kheap_clean());
    size_t trimmed = kheap_trim();
    struct heap_stats stats;
    kheap_stats_now(&stats);
    printk("  after kheap_trim (%zu blocks given back): %zu blocks used\n", trimmed, stats.used_blocks);
    EXPECT(stats.used_blocks == 0 && stats.live_allocations == 0);
    EXPECT(kheap_clean());
    st_result("kheap: seeded random workload, 20000 ops, patterns verified, kheap_check every 1000", "", ok);
}

static void case_kcache_small(void)
{
    bool ok = true;
    struct heap* heap = kheap_get();
    struct heap_stats before, after;
    kheap_stats_now(&before);
    void* objs[100];
    for (size_t i = 0; i < 100; i++) {
        objs[i] = kmalloc_small(32);
        EXPECT(objs[i] != NULL && ((uintptr_t)objs[i] & (KCACHE_ALIGN - 1)) == 0);
        if (objs[i] != NULL) {
            st_fill(objs[i], 32, (uint32_t)i);
        }
    }
    kheap_stats_now(&after);
    printk("  100 objects of 32 bytes took %zu block(s)\n", after.used_blocks - before.used_blocks);
    EXPECT(after.used_blocks - before.used_blocks <= 2);
    EXPECT(ksize(objs[0]) == 32);
    size_t slab = heap_allocation_start(heap, objs[0]);
    EXPECT(slab != SIZE_MAX && slab == heap_allocation_start(heap, objs[1]));
    EXPECT(slab != SIZE_MAX && (heap->table->entries[slab] & HEAP_BLOCK_TYPE_MASK) == HEAP_BLOCK_TYPE_CACHE);
    for (size_t i = 0; i < 100; i++) {
        EXPECT(objs[i] == NULL || st_verify(objs[i], 32, (uint32_t)i) == SIZE_MAX);
        kfree(objs[i]);
    }
    EXPECT(kheap_clean());
    st_result("kcache: small objects share a slab instead of taking a block each", "", ok);
}

static void case_kcache_bad_frees(void)
{
    bool ok = true;
    unsigned char* a = k_filled(kmalloc_small(32));
    unsigned char* b = k_filled(kmalloc_small(32));
    EXPECT(a != NULL && b != NULL);
    if (a == NULL || b == NULL) {
        st_result("kcache: bad and double frees of small objects are reported and change nothing", "", false);
        return;
    }
    struct kcache_stats cache_before, cache_after;
    kcache_get_stats(kheap_cache(), &cache_before);
    kheap_take_snapshot();
    size_t reports = selftest_reports();

    selftest_expect_reports(1);
    kfree(a + 16); /* interior of a small object (a 16-aligned address inside it) */
    kcache_get_stats(kheap_cache(), &cache_after);
    EXPECT(selftest_reports() == reports + 1);
    EXPECT(kheap_unchanged());
    EXPECT(cache_after.objects == cache_before.objects);
    EXPECT(ksize(a) == 32 && ksize(b) == 32);

    selftest_expect_reports(1);
    kfree(a + 3); /* misaligned */
    EXPECT(selftest_reports() == reports + 2);
    EXPECT(kheap_unchanged() && ksize(a) == 32);

    EXPECT(k_intact(a));
    EXPECT(k_free(b));
    kcache_get_stats(kheap_cache(), &cache_after);
    EXPECT(cache_after.objects == cache_before.objects - 1);
    kheap_take_snapshot();
    selftest_expect_reports(1);
    kfree(b); /* double free */
    struct kcache_stats cache_again;
    kcache_get_stats(kheap_cache(), &cache_again);
    EXPECT(selftest_reports() == reports + 3);
    EXPECT(kheap_unchanged() && cache_again.objects == cache_after.objects);
    EXPECT(kheap_clean());
    EXPECT(k_free(a));
    EXPECT(selftest_reports() == reports + 3);
    EXPECT(kheap_clean());
    selftest_expect_reports(0);
    st_result("kcache: bad and double frees of small objects are reported and change nothing", "", ok);
}

/* ---- the kmalloc family's edges ---- */

/* The table and every counter a refused or failed call must leave alone. */
struct kheap_state
{
    struct heap_stats heap;
    struct kcache_stats cache;
    size_t reports;
};

static void kheap_state_take(struct kheap_state* state)
{
    kheap_take_snapshot();
    kheap_stats_now(&state->heap);
    kcache_get_stats(kheap_cache(), &state->cache);
    state->reports = selftest_reports();
}

/* Table, blocks, objects and failures as in `was`; `rejected` more rejected
 * frees, `corruptions` more corrupt headers and `reports` more reports. */
static bool kheap_state_same(const struct kheap_state* was, size_t rejected, size_t corruptions, size_t reports)
{
    struct kheap_state now;
    kheap_stats_now(&now.heap);
    kcache_get_stats(kheap_cache(), &now.cache);
    now.reports = selftest_reports();
    bool table = kheap_unchanged();
    bool same = table && now.heap.used_blocks == was->heap.used_blocks &&
                now.heap.live_allocations == was->heap.live_allocations &&
                now.heap.failed_allocs == was->heap.failed_allocs &&
                now.heap.rejected_frees == was->heap.rejected_frees + rejected &&
                now.cache.slabs == was->cache.slabs && now.cache.objects == was->cache.objects &&
                now.cache.corruptions == was->cache.corruptions + corruptions &&
                now.cache.use_after_free == was->cache.use_after_free && now.reports == was->reports + reports;
    if (!same) {
        printk("  changed: table %s, used %zu -> %zu, allocations %zu -> %zu, failed %zu -> %zu, rejected %zu -> %zu, "
               "objects %zu -> %zu, corruptions %zu -> %zu, reports %zu -> %zu\n",
               table ? "same" : "CHANGED", was->heap.used_blocks, now.heap.used_blocks, was->heap.live_allocations,
               now.heap.live_allocations, was->heap.failed_allocs, now.heap.failed_allocs, was->heap.rejected_frees,
               now.heap.rejected_frees, was->cache.objects, now.cache.objects, was->cache.corruptions,
               now.cache.corruptions, was->reports, now.reports);
    }
    return same;
}

static bool k_aligned(const void* ptr, size_t align)
{
    return ptr != NULL && ((uintptr_t)ptr & (align - 1)) == 0;
}

static void case_kcalloc(void)
{
    bool ok = true;
    /* Products that wrap to 16, 0, 1 and 2 bytes: a kcalloc that multiplied
     * without checking would hand out a tiny object for a huge array. */
    static const size_t wraps[][2] = {
        { SIZE_MAX / 16 + 2, 16 }, { 16, SIZE_MAX / 16 + 2 }, { SIZE_MAX / 2 + 1, 2 },
        { SIZE_MAX, SIZE_MAX },    { SIZE_MAX / 3 + 1, 3 },   { 0, 16 },
        { 16, 0 },
    };
    struct kheap_state before;
    kheap_state_take(&before);
    for (size_t i = 0; i < sizeof(wraps) / sizeof(wraps[0]); i++) {
        void* p = kcalloc(wraps[i][0], wraps[i][1]);
        if (p != NULL) {
            printk("  kcalloc(%zu, %zu) = %p, expected NULL\n", wraps[i][0], wraps[i][1], p);
            ok = false;
        }
    }
    EXPECT(kheap_state_same(&before, 0, 0, 0));

    /* Dirty memory first: first fit puts kcalloc's blocks exactly there (the
     * one block, then the three after it), so the zeroing is really seen.
     * kcalloc gives whole blocks, zeroed to their last byte. */
    void* dirty_block = k_filled(kmalloc(BS));
    void* dirty_blocks = k_filled(kmalloc(9000));
    EXPECT(dirty_block != NULL && dirty_blocks != NULL);
    EXPECT(k_free(dirty_block) && k_free(dirty_blocks));
    unsigned char* small = kcalloc(10, 30);
    unsigned char* blocks = kcalloc(3, 3000);
    EXPECT(small == dirty_block && k_aligned(small, BS) && ksize(small) == BS && kheap_entry(small) == 0x41);
    EXPECT(blocks == dirty_blocks && k_aligned(blocks, BS) && ksize(blocks) == 3 * BS);
    EXPECT(small != NULL && st_all_zero(small, BS));
    EXPECT(blocks != NULL && st_all_zero(blocks, 3 * BS));
    EXPECT(k_free(k_filled(small)) && k_free(k_filled(blocks)));
    EXPECT(kheap_clean());
    st_result("kmalloc family: kcalloc zeroes; n * size overflow returns NULL and changes nothing", "", ok);
}

static void case_krealloc_null_zero(void)
{
    bool ok = true;
    kheap_trim(); /* no spare slab: the table is back to `before` at the end */
    struct kheap_state before;
    kheap_state_take(&before);

    unsigned char* p = k_filled(krealloc(NULL, 100)); /* = kmalloc(100): a whole block */
    EXPECT(k_aligned(p, BS) && ksize(p) == BS && kheap_entry(p) == 0x41);
    unsigned char* q = k_filled(krealloc(NULL, 2 * BS + 1));
    EXPECT(k_aligned(q, BS) && ksize(q) == 3 * BS && kheap_entry(q) == 0xC1);
    struct kcache_stats cache;
    kcache_get_stats(kheap_cache(), &cache);
    EXPECT(cache.objects == before.cache.objects); /* no small object */

    /* krealloc(p, 0) frees p and returns NULL; p is gone for ksize. */
    EXPECT(k_intact(p) && krealloc(p, 0) == NULL);
    EXPECT(ksize(p) == 0);
    EXPECT(k_intact(q) && krealloc(q, 0) == NULL);
    EXPECT(ksize(q) == 0 && kheap_entry(q) == 0);
    EXPECT(krealloc(NULL, 0) == NULL);
    kcache_get_stats(kheap_cache(), &cache);
    EXPECT(cache.objects == before.cache.objects);

    kheap_trim();
    EXPECT(kheap_state_same(&before, 0, 0, 0));
    EXPECT(kheap_clean());
    st_result("kmalloc family: krealloc(NULL, n) allocates, krealloc(p, 0) frees and returns NULL", "", ok);
}

/* krealloc(*ptr, size), expecting `same` (stays put) or a move; the first
 * `keep` bytes of the pattern written at `was` must survive. */
static bool k_resize(unsigned char** ptr, size_t size, bool same, size_t keep)
{
    unsigned char* was = *ptr;
    unsigned char* now = krealloc(was, size);
    bool good = now != NULL && (now == was) == same && ksize(now) >= size &&
                st_verify(now, keep, st_seed_of(was)) == SIZE_MAX;
    if (!good) {
        printk("  krealloc(%p, %zu) = %p (ksize %zu): expected %s, %zu bytes kept\n", (void*)was, size, (void*)now,
               ksize(now), same ? "the same pointer" : "a move", keep);
    }
    if (now != NULL) {
        *ptr = now;
    }
    return good;
}

static void case_krealloc_resize(void)
{
    bool ok = true;
    size_t reports = selftest_reports();
    /* Within a small class: 100 bytes live in the 112 class, and stay. */
    unsigned char* a = k_filled(kmalloc_small(100));
    EXPECT(a != NULL && k_resize(&a, 97, true, 97) && ksize(a) == 112);
    EXPECT(a != NULL && k_resize(&a, 112, true, 97) && ksize(a) == 112);
    /* Shrinking across classes never moves a small object: 1000 -> 20 stays
     * in the 1024 class; growing past its class moves it (1536 class). */
    unsigned char* b = k_filled(kmalloc_small(1000));
    EXPECT(b != NULL && k_resize(&b, 20, true, 20) && ksize(b) == 1024);
    EXPECT(b != NULL && k_resize(&b, 1500, false, 20) && ksize(b) == 1536);
    /* A larger small class, then whole blocks. */
    unsigned char* c = k_filled(kmalloc_small(48));
    EXPECT(c != NULL && k_resize(&c, 200, false, 48) && ksize(c) == 208);
    c = k_filled(c);
    EXPECT(c != NULL && k_resize(&c, 5000, false, 208) && k_aligned(c, BS) && ksize(c) == 2 * BS);
    /* Block memory shrunk to a small size stays whole blocks, in place (a
     * kpalloc page stays a page); then it grows back in place. */
    unsigned char* d = k_filled(kmalloc(3 * BS));
    EXPECT(d != NULL && k_resize(&d, 100, true, BS) && ksize(d) == BS);
    EXPECT(d != NULL && kheap_entry(d) == 0x41 && kheap_entry(d + BS) == 0 && kheap_entry(d + 2 * BS) == 0);
    EXPECT(d != NULL && k_resize(&d, 3 * BS, true, BS) && ksize(d) == 3 * BS);
    EXPECT(d != NULL && kheap_entry(d) == 0xC1 && kheap_entry(d + BS) == 0x81 && kheap_entry(d + 2 * BS) == 0x01);
    /* Refill what krealloc left, check it all, free it. */
    unsigned char* all[] = { a, b, c, d };
    for (size_t i = 0; i < 4; i++) {
        EXPECT(k_free(k_filled(all[i])));
    }
    EXPECT(selftest_reports() == reports);
    EXPECT(kheap_clean());
    st_result("kmalloc family: krealloc shrinks in place within and across classes, moves to grow, data kept", "",
              ok);
}

static void case_ksize_bad(void)
{
    bool ok = true;
    struct heap* heap = kheap_get();
    unsigned char* p = k_filled(kmalloc_small(64));
    unsigned char* q = k_filled(kmalloc(3 * BS));
    EXPECT(p != NULL && q != NULL && ksize(p) == 64 && ksize(q) == 3 * BS);
    if (p == NULL || q == NULL) {
        st_result("kmalloc family: ksize is 0 for NULL, interior, freed and outside pointers; never reports", "",
                  false);
        return;
    }
    size_t slab = heap_allocation_start(heap, p);
    EXPECT(slab != SIZE_MAX);
    /* The slab's last slot (a 64-byte class: one block of 64) is free: its
     * bit in the slab table (kcache.h) is 0. */
    size_t last = BS / 64 - 1;
    size_t word = last / (8 * sizeof(uintptr_t));
    EXPECT(slab != SIZE_MAX && kheap_cache()->classes[kcache_class_of(64)].geometry[KCACHE_PREFERRED].blocks == 1 &&
           !((kheap_cache()->slab_table[slab].bits[word] >> (last % (8 * sizeof(uintptr_t)))) & 1u));
    unsigned char on_stack[16] = { 0 };
    const void* bad[] = {
        NULL,
        p + 16,                                                  /* inside a small object, 16-aligned */
        p + 1,                                                   /* misaligned */
        (unsigned char*)heap->saddr + slab * BS + last * 64,     /* a free slot of the slab */
        q + BS,                                                  /* an interior block */
        q + 8,                                                   /* not at a block start */
        (unsigned char*)heap->saddr + (KHEAP_BLOCKS - 1) * BS,   /* a free block */
        (void*)0x00200000,                                       /* below the pool */
        (unsigned char*)heap->saddr + KHEAP_BLOCKS * BS,         /* the pool's end */
        on_stack,                                                /* the stack */
    };
    struct kheap_state before;
    kheap_state_take(&before);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        size_t size = ksize(bad[i]);
        if (size != 0) {
            printk("  ksize(%p) = %zu, expected 0\n", bad[i], size);
            ok = false;
        }
    }
    /* Freed: a small object and a block allocation. */
    EXPECT(k_free(p) && k_free(q));
    EXPECT(ksize(p) == 0 && ksize(q) == 0);
    EXPECT(selftest_reports() == before.reports && heap->rejected_frees == before.heap.rejected_frees);
    EXPECT(kheap_clean());
    st_result("kmalloc family: ksize is 0 for NULL, interior, freed and outside pointers; never reports", "", ok);
}

/*
 * A write past the end of one object into the next (an overrun inside a
 * slab, over the slab's first bytes where a slab header once was): it
 * changes objects only. The slab's record is in the slab table, outside the
 * pool, so the table, the record, every counter and every later decision
 * are as they would have been: nothing is refused or reported, kheap_check
 * is clean, the freed slot is handed out again.
 */
#define ST_OVERRUN_TITLE "kcache: an overrun into a slab changes no allocator state (slab table outside the pool)"

/* With the per-CPU magazines a kfree lands in the CPU's magazine first:
 * give them back, so that the slab records say what the slabs hold. */
static void st_flush_magazines(void)
{
#if PEACHOS_KCACHE_MAGAZINES
    kheap_cpu_flush(0);
#endif
}

static void case_kcache_overrun_slab(void)
{
    bool ok = true;
    struct heap* heap = kheap_get();
    struct kcache* kc = kheap_cache();
    unsigned char* a = k_filled(kmalloc_small(80)); /* a class no other case uses: a new slab */
    unsigned char* b = k_filled(kmalloc_small(80));
    size_t slab = a != NULL ? heap_allocation_start(heap, a) : SIZE_MAX;
    EXPECT(slab != SIZE_MAX && b != NULL && heap_allocation_start(heap, b) == slab);
    if (slab == SIZE_MAX || b == NULL) {
        st_result(ST_OVERRUN_TITLE, "", false);
        return;
    }
    unsigned char* start = (unsigned char*)heap->saddr + slab * BS;
    EXPECT(a == start && b == start + 80); /* object 0 is the slab's first byte */
    const struct kcache_geometry* g = &kc->classes[kcache_class_of(80)].geometry[KCACHE_PREFERRED];
    EXPECT((uintptr_t)kc->slab_table + kcache_table_bytes(kc->blocks) <= (uintptr_t)heap->saddr ||
           (uintptr_t)kc->slab_table >= (uintptr_t)heap->saddr + kc->blocks * BS);

    /* The overrun: a written 32 bytes past its end, into b. */
    st_flush_magazines(); /* the record then counts a and b alone */
    struct kheap_state before;
    kheap_state_take(&before);
    struct kcache_slab record = kc->slab_table[slab];
    for (size_t i = 0; i < 80 + 32; i++) {
        a[i] = (unsigned char)(0xA5 ^ i);
    }
    EXPECT(kheap_state_same(&before, 0, 0, 0)); /* table, counters, reports */
    EXPECT(memcmp(&kc->slab_table[slab], &record, sizeof(record)) == 0);
    EXPECT(kheap_clean());
    EXPECT(ksize(a) == 80 && ksize(b) == 80);

    /* Ordinary calls: nothing refused, the same decisions as ever. */
    kfree(a);
    st_flush_magazines();
    EXPECT(heap->rejected_frees == before.heap.rejected_frees && selftest_reports() == before.reports);
    EXPECT(kc->slab_table[slab].inuse == record.inuse - 1);
    unsigned char* c = kmalloc_small(80);
    EXPECT(c == a); /* the lowest free slot, overrun or not */
    kfree(c);
    kfree(b);
    st_flush_magazines();
    struct kcache_stats cache;
    kcache_get_stats(kc, &cache);
    EXPECT(cache.corruptions == before.cache.corruptions && cache.use_after_free == before.cache.use_after_free);
    EXPECT(heap->rejected_frees == before.heap.rejected_frees && selftest_reports() == before.reports);
    EXPECT(kc->slab_table[slab].inuse == 0 && kc->slab_table[slab].shape == record.shape && g->capacity > 2);
    printk("  slab at block %zu: 112 bytes written from object 0 into object 1; record, table and counters "
           "unchanged, no report\n",
           slab);
    EXPECT(kheap_clean());
    st_result(ST_OVERRUN_TITLE, "", ok);
}

static void case_kheap_blocks(void)
{
    bool ok = true;
    size_t reports = selftest_reports();
    unsigned char* p = k_filled(kpalloc(1));
    unsigned char* q = k_filled(kpalloc(BS + 1));
    unsigned char* r = k_filled(kmalloc(3000));
    unsigned char* s = k_filled(kmalloc(2 * BS + 1));
    EXPECT(p != NULL && q != NULL && r != NULL && s != NULL);
    if (p == NULL || q == NULL || r == NULL || s == NULL) {
        st_result("kheap: kpalloc and large kmalloc are block-aligned whole blocks", "", false);
        return;
    }
    EXPECT(((uintptr_t)p & (BS - 1)) == 0 && ((uintptr_t)q & (BS - 1)) == 0);
    EXPECT(((uintptr_t)r & (BS - 1)) == 0 && ((uintptr_t)s & (BS - 1)) == 0);
    EXPECT(ksize(p) == BS && ksize(q) == 2 * BS && ksize(r) == BS && ksize(s) == 3 * BS);
    EXPECT(kheap_entry(p) == 0x41 && kheap_entry(q) == 0xC1 && kheap_entry(q + BS) == 0x01);
    EXPECT(kheap_entry(r) == 0x41);
    EXPECT(kheap_entry(s) == 0xC1 && kheap_entry(s + BS) == 0x81 && kheap_entry(s + 2 * BS) == 0x01);

    /* Bad frees of block memory, through kfree. */
    kheap_take_snapshot();
    selftest_expect_reports(3);
    kfree(s + BS);            /* interior block */
    kfree(q + 8);             /* not at a block start */
    kfree((void*)0x00200000); /* not in the heap */
    EXPECT(selftest_reports() == reports + 3);
    EXPECT(kheap_unchanged());
    selftest_expect_reports(0);
    EXPECT(k_intact(p) && k_intact(q) && k_intact(r) && k_intact(s));

    /* krealloc of block memory keeps the data. */
    st_fill(s, 3 * BS, 77);
    unsigned char* t = krealloc(s, 5 * BS);
    EXPECT(t != NULL && st_verify(t, 3 * BS, 77) == SIZE_MAX && ksize(t) == 5 * BS);
    t = k_filled(t != NULL ? t : s);
    EXPECT(k_free(p));
    EXPECT(k_free(q));
    EXPECT(k_free(r));
    EXPECT(k_free(t));
    EXPECT(kheap_clean());
    st_result("kheap: kpalloc and large kmalloc are block-aligned whole blocks; bad block frees refused", "", ok);
}

/* ---- 3. live allocations for the statistics and the map ---- */

/* Kept for the last check: every live allocation still holds its pattern. */
#define LIVE_SMALL 66
#define LIVE_SHORTS 24
#define LIVE_CHUNKS 64
static void* live_small[LIVE_SMALL];
static void* live_shorts[LIVE_SHORTS];
static void* live_chunks[LIVE_CHUNKS];

/* Free every third of `ptrs[0..n)` from `first` on; false if one was damaged. */
static bool live_free_every_third(void** ptrs, size_t n, size_t first)
{
    bool intact = true;
    for (size_t i = first; i < n; i += 3) {
        intact = k_free(ptrs[i]) && intact;
        ptrs[i] = NULL;
    }
    return intact;
}

static bool live_intact(void* const* ptrs, size_t n)
{
    bool intact = true;
    for (size_t i = 0; i < n; i++) {
        intact = k_intact(ptrs[i]) && intact; /* NULL (freed) passes */
    }
    return intact;
}

static void case_leave_live_allocations(void)
{
    bool ok = true;
    /* The cases above leave spare (empty) slabs: they would show in the map
     * as slabs with nothing in them. */
    kheap_trim();
    st_rng_state = 0x1234567u;
    /* Small objects of a few classes: slabs ('C', 'c' in the map). */
    for (size_t i = 0; i < 60; i++) {
        live_small[i] = k_filled(kmalloc_small(24 + (i % 3) * 200));
        EXPECT(live_small[i] != NULL);
    }
    for (size_t i = 60; i < LIVE_SMALL; i++) {
        live_small[i] = kzalloc_small(1500);
        EXPECT(live_small[i] != NULL && st_all_zero(live_small[i], 1500));
        k_filled(live_small[i]);
    }
    /* Short whole-block allocations and kpalloc pages right after the slabs,
     * every third freed again: holes in the detailed map. */
    for (size_t i = 0; i < LIVE_SHORTS; i++) {
        size_t blocks = 1 + (i * 7) % 5;
        live_shorts[i] = k_filled(i % 4 == 3 ? kpalloc(blocks * BS) : kmalloc(blocks * BS - 100));
        EXPECT(live_shorts[i] != NULL);
    }
    EXPECT(live_free_every_third(live_shorts, LIVE_SHORTS, 1));
    /* Larger allocations all over the heap, every third freed again. */
    size_t n = 0;
    for (; n < LIVE_CHUNKS; n++) {
        size_t blocks = 1 + st_rand() % (n % 4 == 0 ? 900 : 60);
        live_chunks[n] = k_filled(n % 5 == 0 ? kpalloc(blocks * BS) : kmalloc(blocks * BS));
        if (live_chunks[n] == NULL) {
            break;
        }
    }
    EXPECT(live_free_every_third(live_chunks, n, 0));
    /* What stays for the map still holds what was written. */
    EXPECT(live_intact(live_small, LIVE_SMALL));
    EXPECT(live_intact(live_shorts, LIVE_SHORTS));
    EXPECT(live_intact(live_chunks, n));
    struct heap_stats stats;
    kheap_stats_now(&stats);
    EXPECT(stats.used_blocks > 0 && stats.free_blocks > 0 && stats.live_allocations > 0);
    EXPECT(kheap_clean());
    st_result("kheap: live allocations left for the map (small objects, blocks, kpalloc, holes)", "", ok);
}

/* ---- the panic probe (make test-boot's panic kernel) ---- */

void selftest_panic_probe(void)
{
    unsigned char* p = k_filled(kmalloc(BS));
    bool intact = k_intact(p);
    printk("probe: kmalloc(%zu) = %p, pattern %s; freeing it twice (the second free is not expected)\n", BS,
           (void*)p, intact ? "intact" : "DAMAGED");
    kfree(p);
    kfree(p);
}

int selftest_run(void)
{
    st_passed = 0;
    st_failed = 0;
    selftest_reports_install();
    print("selftest: table contract on a 16-block heap\n");
    small_suite(false);
    small_suite(true);
    case_small_index_mismatch();
    print("selftest: small-object caches with poison on the 16-block heap\n");
    case_kcache_poison();
    print("selftest: the kernel heap\n");
    case_kheap_placement();
    if (kheap_get() != NULL) {
        case_kheap_exhaustion();
        case_kheap_workload();
        case_kcache_small();
        case_kcache_bad_frees();
        case_kcalloc();
        case_krealloc_null_zero();
        case_krealloc_resize();
        case_ksize_bad();
        case_kcache_overrun_slab();
        case_kheap_blocks();
        case_leave_live_allocations();
        selftest_paging(&st_passed, &st_failed);
        selftest_regions(&st_passed, &st_failed);
    }
    printk("selftest: %d passed, %d failed\n", st_passed, st_failed);
    return st_failed;
}

void selftest_print_state(void)
{
    struct heap* heap = kheap_get();
    if (heap == NULL) {
        return;
    }
    uintptr_t state = kheap_lock();
    struct heap_stats stats;
    heap_get_stats(heap, &stats);
    struct kcache_stats cache;
    kcache_get_stats(kheap_cache(), &cache);

    printk("kheap stats: total=%zu used=%zu free=%zu largest_free=%zu allocations=%zu rejected_frees=%zu "
           "failed_allocs=%zu\n",
           stats.total_blocks, stats.used_blocks, stats.free_blocks, stats.largest_free_run, stats.live_allocations,
           stats.rejected_frees, stats.failed_allocs);
    printk("kcache stats: slabs=%zu slab_blocks=%zu objects=%zu object_bytes=%zu reports=%zu\n", cache.slabs,
           cache.slab_blocks, cache.objects, cache.object_bytes, selftest_reports());

    /* The first 256 blocks, one character per block: a view of the same
     * table with its own counters (heap_dump_map's end line describes it). */
    struct heap_table window_table = { heap->table->entries, 256 };
    struct heap window = *heap;
    window.table = &window_table;
    window.index = NULL;
    window.index_ops = NULL;
    window.used_blocks = 0;
    window.live_allocations = 0;
    for (size_t i = 0; i < window_table.total; i++) {
        window.used_blocks += (window_table.entries[i] & HEAP_BLOCK_TABLE_ENTRY_TAKEN) != 0;
        window.live_allocations += (window_table.entries[i] & HEAP_BLOCK_IS_FIRST) != 0;
    }
    print("heap map: blocks 0..255, one character per block\n");
    heap_dump_map(&window, print_writer, NULL, 1, 64, 0);
    print("heap map: the whole heap\n");
    heap_dump_map(heap, print_writer, NULL, 0, 64, 16);
    kheap_unlock(state);
    kernel_regions_print_state();
}
