/*
 * paging.c - x86 32-bit paging with 4 KiB pages (paging.h): identity
 * directories from the kernel heap, their entries, CR0.PG. The checks and
 * calls common to both architectures are paging_common.c's.
 */
#include "paging.h"

#include "../memory/heap/kheap.h"
#include "../status.h"
#include "../memory/heap/heap_status.h"

#define PAGING_TABLE_SPAN (PAGING_ENTRIES * PAGING_PAGE_SIZE) /* 4 MiB per table */
#define CR0_PG 0x80000000u

/*
 * x86 grants the AND of a directory entry's and a table entry's user and
 * writable bits: directory entries get all of them, so each page's own
 * entry alone says who may touch it.
 */
#define PAGING_DIR_FLAGS (PAGING_PRESENT | PAGING_WRITABLE | PAGING_USER)

static struct paging_table* paging_table_at(const struct paging_dir* dir, uintptr_t virt)
{
    uint32_t entry = dir->entries[(virt >> 22) & (PAGING_ENTRIES - 1)];
    if (!(entry & PAGING_PRESENT)) {
        return NULL;
    }
    return (struct paging_table*)(uintptr_t)(entry & ~PAGING_FLAGS_MASK);
}

static size_t paging_index_in_table(uintptr_t virt)
{
    return (virt >> 12) & (PAGING_ENTRIES - 1);
}

/* Table `t` of an identity directory: its 4 MiB mapped onto themselves. */
static void paging_fill_identity(struct paging_table* table, size_t t, uint32_t flags)
{
    uint32_t base = (uint32_t)t * PAGING_TABLE_SPAN;
    for (size_t j = 0; j < PAGING_ENTRIES; j++) {
        table->entries[j] = (base + (uint32_t)j * PAGING_PAGE_SIZE) | flags;
    }
}

struct paging_dir* paging_new_identity(uint32_t flags)
{
    if ((flags & ~PAGING_FLAGS_MASK) != 0) {
        return NULL;
    }
    /* kpalloc: whole blocks, block-aligned whatever kmalloc's configuration
     * (CR3 and directory entries hold page-aligned addresses only). */
    struct paging_dir* dir = kpalloc(sizeof(struct paging_dir));
    if (dir == NULL) {
        return NULL;
    }
    for (size_t t = 0; t < PAGING_ENTRIES; t++) {
        dir->entries[t] = 0;
    }
    for (size_t t = 0; t < PAGING_ENTRIES; t++) {
        struct paging_table* table = kpalloc(sizeof(struct paging_table));
        if (table == NULL) {
            paging_free(dir);
            return NULL;
        }
        paging_fill_identity(table, t, flags);
        dir->entries[t] = (uint32_t)(uintptr_t)table | PAGING_DIR_FLAGS;
    }
    return dir;
}

void paging_free(struct paging_dir* dir)
{
    if (dir == NULL) {
        return;
    }
    for (size_t t = 0; t < PAGING_ENTRIES; t++) {
        if (dir->entries[t] & PAGING_PRESENT) {
            kfree((void*)(uintptr_t)(dir->entries[t] & ~PAGING_FLAGS_MASK));
        }
    }
    kfree(dir);
}

int paging_get(const struct paging_dir* dir, uintptr_t virt, paging_entry_t* entry)
{
    const struct paging_table* table = paging_is_aligned(virt) ? paging_table_at(dir, virt) : NULL;
    if (table == NULL) {
        return -EINVARG;
    }
    *entry = table->entries[paging_index_in_table(virt)];
    return 0;
}

size_t paging_count_pages(const struct paging_dir* dir, paging_entry_t flags)
{
    size_t n = 0;
    for (uintptr_t t = 0; t < PAGING_ENTRIES; t++) {
        const struct paging_table* table = paging_table_at(dir, t << 22);
        for (size_t j = 0; table != NULL && j < PAGING_ENTRIES; j++) {
            n += (table->entries[j] & flags) == flags;
        }
    }
    return n;
}

/* Every argument of a mapping of `count` pages is usable: checked before
 * the first entry is written, so a refused mapping changes nothing. */
static bool paging_range_ok(const struct paging_dir* dir, uintptr_t virt, uintptr_t phys, size_t count,
                            uint32_t flags)
{
    if (!paging_range_args_ok(virt, phys, count, flags)) {
        return false;
    }
    if (count == 0) {
        return true;
    }
    uintptr_t last = (uintptr_t)(count - 1) * PAGING_PAGE_SIZE;
    for (uintptr_t t = virt >> 22; t <= (virt + last) >> 22 && t < PAGING_ENTRIES; t++) {
        if (!(dir->entries[t] & PAGING_PRESENT)) {
            return false;
        }
    }
    return true;
}

int paging_map_range(struct paging_dir* dir, uintptr_t virt, uintptr_t phys, size_t count, uint32_t flags)
{
    if (!paging_range_ok(dir, virt, phys, count, flags)) {
        return -EINVARG;
    }
    for (size_t i = 0; i < count; i++) {
        uintptr_t page = virt + i * PAGING_PAGE_SIZE;
        struct paging_table* table = paging_table_at(dir, page);
        if (table == NULL) {
            return -EINVARG; /* paging_range_ok saw every table: never taken */
        }
        table->entries[paging_index_in_table(page)] = (uint32_t)(phys + i * PAGING_PAGE_SIZE) | flags;
    }
    return 0;
}

static uint32_t paging_cr0(void)
{
    uint32_t cr0;
    __asm__ volatile("mov %%cr0, %0" : "=r"(cr0));
    return cr0;
}

static void paging_set_cr0(uint32_t cr0)
{
    __asm__ volatile("mov %0, %%cr0" : : "r"(cr0) : "memory");
}

void paging_enable(void)
{
    paging_set_cr0(paging_cr0() | CR0_PG);
}

void paging_disable(void)
{
    paging_set_cr0(paging_cr0() & ~CR0_PG);
}

bool paging_is_enabled(void)
{
    return (paging_cr0() & CR0_PG) != 0;
}
