/*
 * paging.h - x86 32-bit paging with 4 KiB pages, as much as the demo kernel
 * needs to use kernel heap memory the way PeachOS does: a page directory of
 * 1024 page tables identity-mapping all 4 GiB, pages mapped into such a
 * directory one by one or as a range, CR3 and CR0.PG.
 *
 * The mapping functions follow PeachOS's rule: every address they are given
 * (virt, phys, phys_end) must be PAGING_PAGE_SIZE-aligned, else -EINVARG and
 * nothing is mapped. Directory and page tables are whole heap blocks
 * (kpalloc), one block each, freed with paging_free.
 *
 * Every address here is physical = virtual for the kernel (the identity
 * directory), so a table's heap pointer is also what the CPU walks.
 */
#ifndef PEACHOS_KERNEL_PAGING_H
#define PEACHOS_KERNEL_PAGING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PAGING_PAGE_SIZE 4096u
#define PAGING_ENTRIES 1024u /* per directory and per table */

/* Entry flags (directory and table entries alike). */
#define PAGING_PRESENT 0x001u
#define PAGING_WRITABLE 0x002u
#define PAGING_USER 0x004u /* ring 3 may access the page */
#define PAGING_FLAGS_MASK 0xFFFu

/* A page directory: entry i is the physical address of the page table for
 * virtual addresses [i << 22, (i + 1) << 22), with flags. */
struct paging_dir
{
    uint32_t entries[PAGING_ENTRIES];
};

/* A page table: entry j maps one 4 KiB page, physical address | flags. */
struct paging_table
{
    uint32_t entries[PAGING_ENTRIES];
};

bool paging_is_aligned(uintptr_t address);
uintptr_t paging_align_up(uintptr_t address);
uintptr_t paging_align_down(uintptr_t address);

/*
 * A directory with all 1024 page tables, every page mapped to itself with
 * `flags` (PAGING_PRESENT | ...). Takes 1025 heap blocks; NULL (and nothing
 * kept) when the heap cannot give them or flags has bits outside the mask.
 */
struct paging_dir* paging_new_identity(uint32_t flags);

/* Free the tables and the directory. Must not be the loaded one while
 * paging is on (the CPU would walk freed memory). NULL does nothing. */
void paging_free(struct paging_dir* dir);

/* Read the table entry of the page at `virt` (aligned): 0, or -EINVARG for
 * an unaligned address or a missing table. */
int paging_get(const struct paging_dir* dir, uintptr_t virt, uint32_t* entry);

/* Map the page at `virt` to `phys` with `flags`: 0, or -EINVARG (unaligned
 * virt or phys, flags outside the mask, missing table). */
int paging_map(struct paging_dir* dir, uintptr_t virt, uintptr_t phys, uint32_t flags);

/* Map `count` pages from virt to phys: all of them, or none (-EINVARG for
 * the reasons above, or a range that wraps past 4 GiB). */
int paging_map_range(struct paging_dir* dir, uintptr_t virt, uintptr_t phys, size_t count, uint32_t flags);

/*
 * PeachOS's paging_map_to: map [phys, phys_end) at virt, page by page.
 * virt, phys and phys_end must all be page-aligned and phys_end >= phys,
 * else -EINVARG and nothing is mapped.
 */
int paging_map_to(struct paging_dir* dir, uintptr_t virt, uintptr_t phys, uintptr_t phys_end, uint32_t flags);

/* Load `dir` into CR3 (flushes the TLB). */
void paging_switch(const struct paging_dir* dir);

/* The directory in CR3. */
uintptr_t paging_current(void);

/* Set / clear CR0.PG. Enable only with an identity directory loaded: the
 * next instruction is fetched through it. */
void paging_enable(void);
void paging_disable(void);
bool paging_is_enabled(void);

#endif /* PEACHOS_KERNEL_PAGING_H */
