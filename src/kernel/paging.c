/*
 * paging.c - x86 32-bit paging with 4 KiB pages (paging.h): identity
 * directories from the kernel heap, page mapping with PeachOS's alignment
 * rule, CR3 and CR0.PG.
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

bool paging_is_aligned(uintptr_t address)
{
    return (address & (PAGING_PAGE_SIZE - 1)) == 0;
}

uintptr_t paging_align_up(uintptr_t address)
{
    return (address + PAGING_PAGE_SIZE - 1) & ~(uintptr_t)(PAGING_PAGE_SIZE - 1);
}

uintptr_t paging_align_down(uintptr_t address)
{
    return address & ~(uintptr_t)(PAGING_PAGE_SIZE - 1);
}

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

int paging_get(const struct paging_dir* dir, uintptr_t virt, uint32_t* entry)
{
    const struct paging_table* table = paging_is_aligned(virt) ? paging_table_at(dir, virt) : NULL;
    if (table == NULL) {
        return -EINVARG;
    }
    *entry = table->entries[paging_index_in_table(virt)];
    return 0;
}

int paging_map(struct paging_dir* dir, uintptr_t virt, uintptr_t phys, uint32_t flags)
{
    return paging_map_range(dir, virt, phys, 1, flags);
}

/* Every argument of a mapping of `count` pages is usable: checked before
 * the first entry is written, so a refused mapping changes nothing. */
static bool paging_range_ok(const struct paging_dir* dir, uintptr_t virt, uintptr_t phys, size_t count,
                            uint32_t flags)
{
    if (!paging_is_aligned(virt) || !paging_is_aligned(phys) || (flags & ~PAGING_FLAGS_MASK) != 0) {
        return false;
    }
    if (count == 0) {
        return true; /* PeachOS: phys_end == phys maps nothing */
    }
    if (count - 1 > (UINTPTR_MAX >> 12)) {
        return false;
    }
    uintptr_t last = (uintptr_t)(count - 1) * PAGING_PAGE_SIZE;
    if (last > UINTPTR_MAX - virt || last > UINTPTR_MAX - phys) {
        return false;
    }
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

int paging_map_to(struct paging_dir* dir, uintptr_t virt, uintptr_t phys, uintptr_t phys_end, uint32_t flags)
{
    if (!paging_is_aligned(virt) || !paging_is_aligned(phys) || !paging_is_aligned(phys_end) || phys_end < phys) {
        return -EINVARG;
    }
    return paging_map_range(dir, virt, phys, (phys_end - phys) / PAGING_PAGE_SIZE, flags);
}

void paging_switch(const struct paging_dir* dir)
{
    __asm__ volatile("mov %0, %%cr3" : : "r"((uintptr_t)dir) : "memory");
}

uintptr_t paging_current(void)
{
    uintptr_t cr3;
    __asm__ volatile("mov %%cr3, %0" : "=r"(cr3));
    return cr3;
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
