/*
 * paging_common.c - the part of paging.h that is the same on i686
 * (paging.c) and x86_64 (src/kernel64/paging64.c): alignment, PeachOS's
 * rule for a mapping's arguments, and the calls built on paging_map_range.
 */
#include "paging.h"
#include "../status.h"
#include "../memory/heap/heap_status.h"

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

bool paging_range_args_ok(uintptr_t virt, uintptr_t phys, size_t count, uint32_t flags)
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
    return last <= UINTPTR_MAX - virt && last <= UINTPTR_MAX - phys;
}

int paging_map(struct paging_dir* dir, uintptr_t virt, uintptr_t phys, uint32_t flags)
{
    return paging_map_range(dir, virt, phys, 1, flags);
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
