/*
 * selftest_paging.c - the kmalloc family used the way PeachOS uses it: with
 * paging on, kzalloc'd buffers mapped page by page into a second ("user")
 * page directory with paging_map_to, which refuses any address that is not
 * 4096-aligned. That only works, and only exposes nothing else to user
 * mode, if every buffer is whole blocks of its own: block-aligned, sharing
 * no page with any other allocation. docs/kernel.md ("Paging") has the
 * memory layout.
 *
 *   A. a kernel directory identity-maps 4 GiB; CR3, paging on; a user
 *      directory (identity, supervisor only) beside it;
 *   B. paging_map_to refuses an unaligned virt, phys or phys_end;
 *   C. one buffer per size around every small-object class boundary and past
 *      a block (kzalloc, some kmalloc and kcalloc), all live at once: each
 *      4096-aligned, zeroed, and its pages its own - in the heap table (no
 *      slab, no other allocation) and among the test's buffers;
 *   D. each mapped into the user directory at PG_USER_BASE + k *
 *      PG_USER_STRIDE with user|present|writable: 0 returned, exactly its
 *      pages mapped, no other user page in the directory;
 *   E. a pattern per buffer written through the user directory is read back
 *      through the kernel's pointers;
 *   F. everything freed, paging off (x86_64: the boot tables back in CR3),
 *      the heap as it was and sound.
 *
 * The same cases on i686 (paging.c: 32-bit directories, CR0.PG) and on
 * x86_64 (src/kernel64/paging64.c: 4-level tables under the same
 * interface); paging.h says what differs.
 *
 * A failure names the size, the allocator and why, on the lines above FAIL.
 */
#include "../config.h"
#include "../memory/heap/heap.h"
#include "../memory/heap/kcache.h"
#include "../memory/heap/kheap.h"
#include "../status.h"
#include "../memory/heap/heap_status.h"
#include "paging.h"
#include "print.h"
#include "selftest.h"

_Static_assert(PEACHOS_HEAP_BLOCK_SIZE == PAGING_PAGE_SIZE, "a heap block must be one page");

#define PAGE ((uintptr_t)PAGING_PAGE_SIZE)
#define PG_MAX 160
/* User windows: 64 KiB each (a buffer is at most 4 pages), between the
 * kernel image and the heap's pool: the user directory keeps every kernel
 * object (image, table, index, pool, VGA) identity-mapped. */
#define PG_USER_BASE ((uintptr_t)0x00400000)
#define PG_USER_STRIDE ((uintptr_t)0x00010000)
#define PG_PROBE_VIRT ((uintptr_t)0x00300000) /* case B's page, below the windows */
#define PG_USER_FLAGS (PAGING_USER | PAGING_PRESENT | PAGING_WRITABLE)
#define PG_KERNEL_FLAGS (PAGING_PRESENT | PAGING_WRITABLE)

_Static_assert(PG_USER_BASE + PG_MAX * PG_USER_STRIDE <= PEACHOS_HEAP_ADDRESS, "user windows reach the heap");

extern char _kernel_end[]; /* linker.ld */

struct pg_buf
{
    size_t size;
    const char* how; /* the allocator */
    unsigned char* ptr;
    uintptr_t virt;
    size_t pages;
    bool zeroed; /* its allocator promises zeroes */
    bool owns;   /* case C passed for it: aligned, zeroed, pages its own */
    bool mapped; /* case D mapped it */
};

static struct pg_buf pg_bufs[PG_MAX];
static size_t pg_count;
static struct paging_dir* pg_kernel_dir;
static struct paging_dir* pg_user_dir;
static int* pg_passed;
static int* pg_failed;

#define PG_EXPECT(cond) SELFTEST_EXPECT(cond)

static void pg_result(const char* name, bool ok)
{
    printk("%s paging: %s\n", ok ? "PASS" : "FAIL", name);
    ++*(ok ? pg_passed : pg_failed);
}

static void pg_say(const struct pg_buf* b, const char* what)
{
    printk("  size %zu (%s) = %p: %s", b->size, b->how, (void*)b->ptr, what);
}

/* ---- A. the two directories ---- */

static void case_directories(void)
{
    bool ok = true;
    pg_kernel_dir = paging_new_identity(PG_KERNEL_FLAGS);
    /* PeachOS's process directories: the kernel identity-mapped, not for ring 3. */
    pg_user_dir = paging_new_identity(PG_KERNEL_FLAGS);
    PG_EXPECT(pg_kernel_dir != NULL && pg_user_dir != NULL);
    PG_EXPECT((uintptr_t)_kernel_end <= PG_PROBE_VIRT);
    if (pg_kernel_dir != NULL && pg_user_dir != NULL) {
        paging_switch(pg_kernel_dir);
        paging_enable();
        PG_EXPECT(paging_is_enabled());
        PG_EXPECT(paging_current() == (uintptr_t)pg_kernel_dir);
        paging_entry_t entry = 0;
        PG_EXPECT(paging_get(pg_kernel_dir, 0xB8000, &entry) == 0 && entry == (0xB8000u | PG_KERNEL_FLAGS));
        PG_EXPECT(paging_get(pg_kernel_dir, 0xFFFFF000u, &entry) == 0 && entry == (0xFFFFF000u | PG_KERNEL_FLAGS));
        PG_EXPECT(kheap_clean()); /* the heap's table, index and pool, read through the tables */
    }
    pg_result(PAGING_IDENTITY_WHAT "; user directory beside it", ok);
}

/* ---- B. PeachOS's alignment rule ---- */

static bool pg_probe_unmapped(void)
{
    paging_entry_t entry = 0;
    return paging_get(pg_user_dir, PG_PROBE_VIRT, &entry) == 0 && entry == (PG_PROBE_VIRT | PG_KERNEL_FLAGS);
}

static void case_alignment_rule(void)
{
    bool ok = true;
    uintptr_t q = (uintptr_t)kpalloc(PAGE);
    paging_entry_t entry = 0;
    PG_EXPECT(q != 0 && paging_is_aligned(q));
    PG_EXPECT(paging_map_to(pg_user_dir, PG_PROBE_VIRT + 1, q, q + PAGE, PG_USER_FLAGS) == -EINVARG);
    PG_EXPECT(paging_map_to(pg_user_dir, PG_PROBE_VIRT, q + 16, q + PAGE, PG_USER_FLAGS) == -EINVARG);
    PG_EXPECT(paging_map_to(pg_user_dir, PG_PROBE_VIRT, q, q + 100, PG_USER_FLAGS) == -EINVARG);
    PG_EXPECT(paging_map_to(pg_user_dir, PG_PROBE_VIRT, q + PAGE, q, PG_USER_FLAGS) == -EINVARG);
    PG_EXPECT(paging_map(pg_user_dir, PG_PROBE_VIRT + 0x800, q, PG_USER_FLAGS) == -EINVARG);
    PG_EXPECT(paging_get(pg_user_dir, PG_PROBE_VIRT + 4, &entry) == -EINVARG);
    PG_EXPECT(pg_probe_unmapped()); /* the refused calls wrote nothing */
    PG_EXPECT(paging_map_to(pg_user_dir, PG_PROBE_VIRT, q, q + PAGE, PG_USER_FLAGS) == 0);
    PG_EXPECT(paging_get(pg_user_dir, PG_PROBE_VIRT, &entry) == 0 && entry == (q | PG_USER_FLAGS));
    PG_EXPECT(paging_map(pg_user_dir, PG_PROBE_VIRT, PG_PROBE_VIRT, PG_KERNEL_FLAGS) == 0);
    PG_EXPECT(pg_probe_unmapped());
    kfree((void*)q);
    pg_result("paging_map_to refuses an unaligned virt, phys or phys_end and phys_end < phys (-EINVARG), "
              "maps nothing then",
              ok);
}

/* ---- C. the buffers: aligned, zeroed, their pages their own ---- */

static void pg_push(size_t size)
{
    if (pg_count < PG_MAX && (pg_count == 0 || size > pg_bufs[pg_count - 1].size)) {
        pg_bufs[pg_count++].size = size;
    }
}

static void pg_push_boundary(size_t c)
{
    pg_push(c - 1);
    pg_push(c);
    pg_push(c + 1);
}

/* 1, 2, every class boundary c-1, c, c+1 of kcache.h, then past a block. */
static void pg_make_sizes(void)
{
    pg_count = 0;
    pg_push(1);
    pg_push(2);
    for (size_t c = KCACHE_SMALL_STEP; c <= KCACHE_SMALL_MAX; c += KCACHE_SMALL_STEP) {
        pg_push_boundary(c);
    }
    for (size_t p = KCACHE_SMALL_MAX; p < KCACHE_MAX_SIZE; p *= 2) {
        for (size_t q = 1; q <= 4; q++) { /* four classes per power of two */
            size_t c = p + q * p / 4;
            pg_push_boundary(c);
        }
    }
    static const size_t blocks[] = { 4095, 4096, 4097, 8192, 3 * 4096 + 1 };
    for (size_t i = 0; i < sizeof(blocks) / sizeof(blocks[0]); i++) {
        pg_push(blocks[i]);
    }
}

static void pg_alloc(struct pg_buf* b, size_t k)
{
    b->zeroed = true;
    if (k % 7 == 3) {
        b->how = "kmalloc";
        b->zeroed = false;
        b->ptr = kmalloc(b->size);
    } else if (k % 7 == 5) {
        b->how = "kcalloc";
        b->ptr = b->size % 4 == 0 ? kcalloc(b->size / 4, 4) : kcalloc(b->size, 1);
    } else {
        b->how = "kzalloc";
        b->ptr = kzalloc(b->size);
    }
    b->mapped = false;
    b->pages = 0;
}

static uintptr_t pg_first_page(const struct pg_buf* b)
{
    return paging_align_down((uintptr_t)b->ptr);
}

static uintptr_t pg_end_page(const struct pg_buf* b)
{
    return paging_align_up((uintptr_t)b->ptr + b->size);
}

static size_t pg_first_nonzero(const struct pg_buf* b)
{
    for (size_t i = 0; i < b->size; i++) {
        if (b->ptr[i] != 0) {
            return i;
        }
    }
    return SIZE_MAX;
}

/* Why the pages [first, end) are not all one allocation's, starting at
 * `first`, in the heap table (NULL if they are); *page: the bad one. */
static const char* pg_table_owner(uintptr_t first, uintptr_t end, uintptr_t* page)
{
    const struct heap* heap = kheap_get();
    uintptr_t pool = (uintptr_t)heap->saddr;
    HEAP_BLOCK_TABLE_ENTRY prev = 0;
    for (*page = first; *page < end; *page += PAGE) {
        if (*page < pool || (*page - pool) / PAGE >= heap->table->total) {
            return "outside the heap's pool";
        }
        HEAP_BLOCK_TABLE_ENTRY e = heap->table->entries[(*page - pool) / PAGE];
        bool starts = (e & HEAP_BLOCK_IS_FIRST) != 0;
        if (!(e & HEAP_BLOCK_TABLE_ENTRY_TAKEN)) {
            return "a free block";
        }
        if ((e & HEAP_BLOCK_TYPE_MASK) == HEAP_BLOCK_TYPE_CACHE) {
            return "in a slab, shared by small objects";
        }
        if (*page == first && !starts) {
            return "inside an allocation that starts before it";
        }
        if (*page != first && (starts || !(prev & HEAP_BLOCK_HAS_NEXT))) {
            return "after the end of its allocation (another allocation's)";
        }
        prev = e;
    }
    return NULL;
}

/* The first other test buffer that shares a page with buffer k (pg_count if none). */
static size_t pg_sharing(size_t k, uintptr_t* page)
{
    const struct pg_buf* b = &pg_bufs[k];
    for (size_t j = 0; j < pg_count; j++) {
        const struct pg_buf* o = &pg_bufs[j];
        if (j == k || o->ptr == NULL || pg_first_page(o) >= pg_end_page(b) || pg_first_page(b) >= pg_end_page(o)) {
            continue;
        }
        *page = pg_first_page(o) > pg_first_page(b) ? pg_first_page(o) : pg_first_page(b);
        return j;
    }
    return pg_count;
}

static bool pg_owns_pages(const struct pg_buf* b, size_t k)
{
    uintptr_t page = 0;
    uintptr_t state = kheap_lock();
    const char* why = pg_table_owner(pg_first_page(b), pg_end_page(b), &page);
    kheap_unlock(state);
    if (why != NULL) {
        pg_say(b, "");
        printk("page 0x%08x is %s\n", (unsigned)page, why);
    }
    size_t j = pg_sharing(k, &page);
    if (j < pg_count) {
        pg_say(b, "");
        printk("page 0x%08x also holds size %zu (%s) = %p\n", (unsigned)page, pg_bufs[j].size, pg_bufs[j].how,
               (void*)pg_bufs[j].ptr);
    }
    return why == NULL && j == pg_count;
}

static bool pg_check_buffer(const struct pg_buf* b, size_t k)
{
    if (b->ptr == NULL) {
        pg_say(b, "returned NULL\n");
        return false;
    }
    bool ok = true;
    uintptr_t offset = (uintptr_t)b->ptr & (PAGE - 1);
    if (offset != 0) {
        pg_say(b, "");
        printk("not 4096-aligned (offset 0x%x in its page)\n", (unsigned)offset);
        ok = false;
    }
    size_t at = b->zeroed ? pg_first_nonzero(b) : SIZE_MAX;
    if (at != SIZE_MAX) {
        pg_say(b, "");
        printk("not zeroed (byte %zu is 0x%02x)\n", at, (unsigned)b->ptr[at]);
        ok = false;
    }
    return pg_owns_pages(b, k) && ok;
}

static void case_buffers(void)
{
    bool ok = true;
    pg_make_sizes();
    for (size_t k = 0; k < pg_count; k++) {
        pg_alloc(&pg_bufs[k], k);
    }
    size_t good = 0;
    for (size_t k = 0; k < pg_count; k++) {
        pg_bufs[k].owns = pg_check_buffer(&pg_bufs[k], k);
        good += pg_bufs[k].owns;
    }
    if (good != pg_count) {
        printk("  %zu of %zu buffers are not whole pages of their own\n", pg_count - good, pg_count);
        ok = false;
    }
    printk("paging: %zu buffers of 1..%zu bytes live at once\n", pg_count, pg_bufs[pg_count - 1].size);
    pg_result("kzalloc/kmalloc/kcalloc buffers at every class boundary and past a block: 4096-aligned, zeroed, "
              "no page shared with another allocation",
              ok);
}

/* ---- D. mapped into the user directory ---- */

static bool pg_entry_is(uintptr_t virt, paging_entry_t expected)
{
    paging_entry_t entry = 0;
    if (paging_get(pg_user_dir, virt, &entry) != 0 || entry != expected) {
        printk("  user directory: entry of 0x%08x is 0x%08llx, expected 0x%08llx\n", (unsigned)virt,
               (unsigned long long)entry, (unsigned long long)expected);
        return false;
    }
    return true;
}

/* Exactly the buffer's pages are mapped: the page after them is still the
 * user directory's supervisor-only identity page. */
static bool pg_mapping_exact(const struct pg_buf* b)
{
    bool ok = true;
    for (size_t i = 0; i < b->pages; i++) {
        ok = pg_entry_is(b->virt + i * PAGE, (paging_entry_t)((uintptr_t)b->ptr + i * PAGE) | PG_USER_FLAGS) && ok;
    }
    uintptr_t after = b->virt + b->pages * PAGE;
    return pg_entry_is(after, (paging_entry_t)after | PG_KERNEL_FLAGS) && ok;
}

static bool pg_map_buffer(struct pg_buf* b, size_t k)
{
    b->virt = PG_USER_BASE + k * PG_USER_STRIDE;
    if (b->ptr == NULL) {
        return false;
    }
    uintptr_t phys = (uintptr_t)b->ptr;
    int res = paging_map_to(pg_user_dir, b->virt, phys, pg_end_page(b), PG_USER_FLAGS);
    if (res != 0) {
        pg_say(b, "");
        printk("paging_map_to(0x%08x, %p, 0x%08x) returned %d%s\n", (unsigned)b->virt, (void*)b->ptr,
               (unsigned)pg_end_page(b), res, paging_is_aligned(phys) ? "" : " (the pointer is not 4096-aligned)");
        return false;
    }
    b->mapped = true;
    b->pages = (pg_end_page(b) - phys) / PAGE;
    return pg_mapping_exact(b);
}

static void case_user_mappings(void)
{
    bool ok = true;
    size_t mapped = 0;
    size_t pages = 0;
    for (size_t k = 0; k < pg_count; k++) {
        bool exact = pg_map_buffer(&pg_bufs[k], k);
        ok = ok && exact;
        mapped += pg_bufs[k].mapped;
        pages += pg_bufs[k].pages;
    }
    if (mapped != pg_count) {
        printk("  %zu of %zu buffers could not be mapped\n", pg_count - mapped, pg_count);
    }
    size_t user = paging_count_pages(pg_user_dir, PAGING_USER);
    if (user != pages) {
        printk("  the user directory has %zu user pages, the buffers %zu\n", user, pages);
        ok = false;
    }
    printk("paging: %zu buffers mapped, %zu user pages at 0x%08x + k * 0x%x\n", mapped, pages,
           (unsigned)PG_USER_BASE, (unsigned)PG_USER_STRIDE);
    pg_result("every buffer mapped page by page into a user directory (paging_map_to to align_up(ptr + size) "
              "returns 0, exactly its pages are user pages)",
              ok);
}

/* ---- E. written through the user directory, read through the kernel's pointers ---- */

static uint32_t pg_word(size_t k, size_t i)
{
    return ((uint32_t)k + 1) * 0x85EBCA6Bu ^ (uint32_t)i * 0x9E3779B1u;
}

static bool pg_writable(const struct pg_buf* b)
{
    /* Never write pages not proven the buffer's own: a slab's neighbours. */
    return b->mapped && b->owns;
}

static void pg_write_through_user(void)
{
    paging_switch(pg_user_dir);
    for (size_t k = 0; k < pg_count; k++) {
        if (pg_writable(&pg_bufs[k])) {
            uint32_t* words = (uint32_t*)pg_bufs[k].virt;
            for (size_t i = 0; i < pg_bufs[k].pages * PAGE / 4; i++) {
                words[i] = pg_word(k, i);
            }
        }
    }
    paging_switch(pg_kernel_dir); /* a compiler barrier too: the writes are done */
}

static bool pg_read_back(const struct pg_buf* b, size_t k)
{
    const uint32_t* words = (const uint32_t*)b->ptr;
    for (size_t i = 0; i < b->pages * PAGE / 4; i++) {
        if (words[i] != pg_word(k, i)) {
            pg_say(b, "");
            printk("byte %zu reads 0x%08x, written 0x%08x through 0x%08x\n", i * 4, words[i], pg_word(k, i),
                   (unsigned)(b->virt + i * 4));
            return false;
        }
    }
    return true;
}

static void case_write_through_user(void)
{
    bool ok = true;
    pg_write_through_user();
    size_t unwritten = 0;
    for (size_t k = 0; k < pg_count; k++) {
        if (!pg_writable(&pg_bufs[k])) {
            unwritten++; /* cases C and D named it and said why */
        } else {
            ok = pg_read_back(&pg_bufs[k], k) && ok;
        }
    }
    if (unwritten != 0) {
        printk("  %zu of %zu buffers not written: not mapped, or not pages of their own (see above)\n", unwritten,
               pg_count);
        ok = false;
    }
    PG_EXPECT(paging_current() == (uintptr_t)pg_kernel_dir);
    pg_result("a pattern per buffer written through the user directory reads back through the kernel's pointer, "
              "every page",
              ok);
}

/* ---- F. back to where we were ---- */

static void case_teardown(const struct heap_stats* before)
{
    bool ok = true;
    for (size_t k = 0; k < pg_count; k++) {
        kfree(pg_bufs[k].ptr);
        pg_bufs[k].ptr = NULL;
    }
    paging_free(pg_user_dir); /* not loaded: the kernel directory is */
    paging_disable();
    paging_free(pg_kernel_dir); /* paging is off: nothing walks it now */
    pg_user_dir = NULL;
    pg_kernel_dir = NULL;
    PG_EXPECT(!paging_is_enabled());
    kheap_trim(); /* spare slabs the small buffers may have left */
    struct heap_stats after;
    kheap_stats_now(&after);
    PG_EXPECT(after.used_blocks == before->used_blocks);
    PG_EXPECT(after.live_allocations == before->live_allocations);
    PG_EXPECT(kheap_clean());
    pg_result("everything freed, " PAGING_OFF_WHAT ", the heap as before and kheap_check clean", ok);
}

void selftest_paging_cases(int* passed, int* failed)
{
    pg_passed = passed;
    pg_failed = failed;
    print("selftest: paging, the heap's memory mapped the way PeachOS maps it\n");
    kheap_trim(); /* the baseline without spare slabs, as case F ends */
    struct heap_stats before;
    kheap_stats_now(&before);
    case_directories();
    if (pg_kernel_dir == NULL || pg_user_dir == NULL || !paging_is_enabled()) {
        paging_disable();
        paging_free(pg_kernel_dir);
        paging_free(pg_user_dir);
        return;
    }
    case_alignment_rule();
    case_buffers();
    case_user_mappings();
    case_write_through_user();
    case_teardown(&before);
}

#if !defined(__x86_64__)
/* On x86_64, src/kernel64/selftest_paging64.c runs these cases and its own. */
void selftest_paging(int* passed, int* failed)
{
    selftest_paging_cases(passed, failed);
}
#endif
