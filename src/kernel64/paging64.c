/*
 * paging64.c - paging.h in long mode: 4-level tables with 4 KiB pages
 * (PML4 -> PDPT -> page directory -> page table, 512 entries each), every
 * table a kpzalloc'd heap block. An identity directory maps the first
 * 4 GiB page by page (one PDPT, 4 page directories, 2048 page tables),
 * where the kernel, its heap's first region and the self-test's windows
 * are, and the RAM above, as far as boot64.S maps it, in 2 MiB pages (a
 * page directory per GiB): the other regions' tables stay reachable, so
 * kheap_check works with either directory loaded.
 *
 * Long mode has no "paging off": paging_enable does nothing (the directory
 * paging_switch loaded already translates), paging_disable loads
 * boot64.S's tables (2 MiB pages over all mapped RAM) back into CR3, and
 * paging_is_enabled says whether CR3 holds anything else.
 */
#include "../kernel/paging.h"
#include "../memory/heap/kheap.h"
#include "../status.h"
#include "../memory/heap/heap_status.h"

#define ADDRESS_MASK 0x000FFFFFFFFFF000ull
#define LARGE_PAGE 0x080u /* PS: a 2 MiB or 1 GiB page, no table below */
#define LEVELS 4          /* PML4 = level 3 ... page table = level 0 */
#define IDENTITY_GIB 4
/* x86 grants the AND of every level's user and writable bits: the upper
 * levels get all of them, so each page's own entry alone says who may
 * touch it. */
#define TABLE_FLAGS (PAGING_PRESENT | PAGING_WRITABLE | PAGING_USER)

_Static_assert(sizeof(struct paging_dir) == PAGING_PAGE_SIZE, "a table is one page");

extern char boot64_pml4[];        /* boot64.S */
extern uint32_t boot64_mapped_gib; /* GiB boot64.S identity-maps */

static size_t index_at(uintptr_t virt, int level)
{
    return (virt >> (12 + 9 * level)) & (PAGING_ENTRIES - 1);
}

/* The table an entry points to, NULL for an absent entry or a large page. */
static uint64_t* table_of(uint64_t entry)
{
    return (entry & PAGING_PRESENT) && !(entry & LARGE_PAGE) ? (uint64_t*)(uintptr_t)(entry & ADDRESS_MASK) : NULL;
}

/* The page table entry that maps `virt`, NULL if a level is missing. */
static uint64_t* entry_of(const struct paging_dir* dir, uintptr_t virt)
{
    uint64_t* table = (uint64_t*)dir->entries;
    for (int level = LEVELS - 1; level > 0 && table != NULL; level--) {
        table = table_of(table[index_at(virt, level)]);
    }
    return table != NULL ? &table[index_at(virt, 0)] : NULL;
}

/* A zeroed table linked into `parent[i]`; NULL if the heap has no block. */
static uint64_t* add_table(uint64_t* parent, size_t i)
{
    uint64_t* table = kpzalloc(PAGING_PAGE_SIZE);
    if (table != NULL) {
        parent[i] = (uintptr_t)table | TABLE_FLAGS;
    }
    return table;
}

/* GiB `g` of the identity map: a page directory of 512 page tables. */
static bool fill_gib(uint64_t* pdpt, size_t g, uint32_t flags)
{
    uint64_t* pd = add_table(pdpt, g);
    for (size_t i = 0; pd != NULL && i < PAGING_ENTRIES; i++) {
        uint64_t* pt = add_table(pd, i);
        if (pt == NULL) {
            return false;
        }
        uint64_t base = (uint64_t)g << 30 | (uint64_t)i << 21;
        for (size_t j = 0; j < PAGING_ENTRIES; j++) {
            pt[j] = (base + j * PAGING_PAGE_SIZE) | flags;
        }
    }
    return pd != NULL;
}

/* GiB `g` above the first 4: one page directory of 2 MiB pages. */
static bool fill_gib_large(uint64_t* pdpt, size_t g, uint32_t flags)
{
    uint64_t* pd = add_table(pdpt, g);
    for (size_t i = 0; pd != NULL && i < PAGING_ENTRIES; i++) {
        pd[i] = ((uint64_t)g << 30 | (uint64_t)i << 21) | flags | LARGE_PAGE;
    }
    return pd != NULL;
}

struct paging_dir* paging_new_identity(uint32_t flags)
{
    if ((flags & ~PAGING_FLAGS_MASK) != 0) {
        return NULL;
    }
    struct paging_dir* dir = kpzalloc(sizeof(struct paging_dir));
    uint64_t* pdpt = dir != NULL ? add_table(dir->entries, 0) : NULL;
    bool ok = pdpt != NULL;
    for (size_t g = 0; ok && g < IDENTITY_GIB; g++) {
        ok = fill_gib(pdpt, g, flags);
    }
    for (size_t g = IDENTITY_GIB; ok && g < boot64_mapped_gib && g < PAGING_ENTRIES; g++) {
        ok = fill_gib_large(pdpt, g, flags);
    }
    if (!ok) {
        paging_free(dir); /* frees whatever was linked in */
        return NULL;
    }
    return dir;
}

/* Free a page directory's page tables, then the directory; and so on up:
 * one function per level (the levels are fixed, no recursion needed). */
static void free_pd(uint64_t* pd)
{
    for (size_t i = 0; i < PAGING_ENTRIES; i++) {
        kfree(table_of(pd[i])); /* NULL (absent, or a 2 MiB page) is a no-op */
    }
    kfree(pd);
}

static void free_pdpt(uint64_t* pdpt)
{
    for (size_t i = 0; i < PAGING_ENTRIES; i++) {
        uint64_t* pd = table_of(pdpt[i]);
        if (pd != NULL) {
            free_pd(pd);
        }
    }
    kfree(pdpt);
}

void paging_free(struct paging_dir* dir)
{
    for (size_t i = 0; dir != NULL && i < PAGING_ENTRIES; i++) {
        uint64_t* pdpt = table_of(dir->entries[i]);
        if (pdpt != NULL) {
            free_pdpt(pdpt);
        }
    }
    kfree(dir);
}

int paging_get(const struct paging_dir* dir, uintptr_t virt, paging_entry_t* entry)
{
    const uint64_t* e = paging_is_aligned(virt) ? entry_of(dir, virt) : NULL;
    if (e == NULL) {
        return -EINVARG;
    }
    *entry = *e;
    return 0;
}

/* Pages of a page table (NULL: none) with every bit of `flags`. */
static size_t count_pt(const uint64_t* pt, paging_entry_t flags)
{
    size_t n = 0;
    for (size_t i = 0; pt != NULL && i < PAGING_ENTRIES; i++) {
        n += (pt[i] & flags) == flags;
    }
    return n;
}

/* Every page table under the PML4: its PDPTs, their page directories. */
size_t paging_count_pages(const struct paging_dir* dir, paging_entry_t flags)
{
    size_t n = 0;
    for (size_t i = 0; i < PAGING_ENTRIES; i++) {
        const uint64_t* pdpt = table_of(dir->entries[i]);
        for (size_t j = 0; pdpt != NULL && j < PAGING_ENTRIES; j++) {
            const uint64_t* pd = table_of(pdpt[j]);
            for (size_t k = 0; pd != NULL && k < PAGING_ENTRIES; k++) {
                n += count_pt(table_of(pd[k]), flags);
            }
        }
    }
    return n;
}

int paging_map_range(struct paging_dir* dir, uintptr_t virt, uintptr_t phys, size_t count, uint32_t flags)
{
    if (!paging_range_args_ok(virt, phys, count, flags)) {
        return -EINVARG;
    }
    /* Every page's table must exist before the first entry is written, so
     * a refused mapping changes nothing. */
    for (size_t i = 0; i < count; i++) {
        if (entry_of(dir, virt + i * PAGING_PAGE_SIZE) == NULL) {
            return -EINVARG;
        }
    }
    for (size_t i = 0; i < count; i++) {
        *entry_of(dir, virt + i * PAGING_PAGE_SIZE) = (phys + i * PAGING_PAGE_SIZE) | flags;
    }
    return 0;
}

void paging_enable(void)
{
}

void paging_disable(void)
{
    paging_switch((const struct paging_dir*)(uintptr_t)boot64_pml4);
}

bool paging_is_enabled(void)
{
    return (paging_current() & ADDRESS_MASK) != (uintptr_t)boot64_pml4;
}
