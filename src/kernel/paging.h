/*
 * paging.h - x86 paging with 4 KiB pages, as much as the demo kernels need
 * to use kernel heap memory the way PeachOS does: a directory that
 * identity-maps the first 4 GiB, pages mapped into such a directory one by
 * one or as a range, CR3, and turning it on and off.
 *
 * Two implementations behind one interface: paging.c, i686 32-bit paging
 * (a page directory of 1024 page tables; CR0.PG on and off), and
 * src/kernel64/paging64.c, x86_64 4-level paging (a PML4, one PDPT, four
 * page directories and 2048 page tables for the first 4 GiB, 2 MiB pages
 * above). Long mode cannot run with paging off, so there "off" means the
 * boot page tables (boot64.S's) back in CR3.
 *
 * The mapping functions follow PeachOS's rule: every address they are given
 * (virt, phys, phys_end) must be PAGING_PAGE_SIZE-aligned, else -EINVARG and
 * nothing is mapped. Every table is a whole heap block (kpalloc), one block
 * each, freed with paging_free.
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

/* Entry flags (every level alike). */
#define PAGING_PRESENT 0x001u
#define PAGING_WRITABLE 0x002u
#define PAGING_USER 0x004u /* ring 3 may access the page */
#define PAGING_FLAGS_MASK 0xFFFu

#if defined(__x86_64__)
typedef uint64_t paging_entry_t; /* a page table entry: physical address | flags */
#define PAGING_ENTRIES 512u      /* per table, at every level */
/* The top level, a PML4: entry i maps [i << 39, (i + 1) << 39). */
struct paging_dir
{
    uint64_t entries[PAGING_ENTRIES];
};
#define PAGING_IDENTITY_WHAT                                                                                     \
    "kernel PML4 identity-maps 4 GiB in 4 KiB pages (a PDPT, 4 page directories, 2048 page tables from kpalloc) " \
    "and the RAM above in 2 MiB pages, CR3 loaded"
#define PAGING_OFF_WHAT "boot64.S's page tables back in CR3"
#else
typedef uint32_t paging_entry_t;
#define PAGING_ENTRIES 1024u /* per directory and per table */

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
#define PAGING_IDENTITY_WHAT "kernel directory identity-maps 4 GiB (1024 page tables from kpalloc), CR3 loaded, CR0.PG on"
#define PAGING_OFF_WHAT "paging off"
#endif

bool paging_is_aligned(uintptr_t address);
uintptr_t paging_align_up(uintptr_t address);
uintptr_t paging_align_down(uintptr_t address);

/*
 * A directory whose tables map every page of the first 4 GiB to itself with
 * `flags` (PAGING_PRESENT | ...). Takes 1025 heap blocks on i686; on x86_64
 * 2054, plus a page directory of 2 MiB pages per GiB that boot64.S maps
 * above 4 GiB. NULL (and nothing kept) when the heap cannot give them or
 * flags has bits outside the mask.
 */
struct paging_dir* paging_new_identity(uint32_t flags);

/* Free the tables and the directory. Must not be the loaded one while
 * paging is on (the CPU would walk freed memory). NULL does nothing. */
void paging_free(struct paging_dir* dir);

/* Read the table entry of the page at `virt` (aligned): 0, or -EINVARG for
 * an unaligned address or a missing table. */
int paging_get(const struct paging_dir* dir, uintptr_t virt, paging_entry_t* entry);

/* How many pages of `dir` have every bit of `flags` set (PAGING_USER: the
 * pages ring 3 may touch). */
size_t paging_count_pages(const struct paging_dir* dir, paging_entry_t flags);

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

/* For the two implementations: are a mapping's arguments usable (virt and
 * phys aligned, flags inside the mask, the range not wrapping)? */
bool paging_range_args_ok(uintptr_t virt, uintptr_t phys, size_t count, uint32_t flags);

/* Load `dir` into CR3 (flushes the TLB). */
void paging_switch(const struct paging_dir* dir);

/* The directory in CR3. */
uintptr_t paging_current(void);

/* i686: set / clear CR0.PG; enable only with an identity directory loaded:
 * the next instruction is fetched through it. x86_64: paging is always on;
 * enable does nothing (paging_switch has loaded the directory), disable
 * loads boot64.S's tables back. paging_is_enabled: a directory of this
 * module translates (i686: CR0.PG set; x86_64: CR3 is not boot64.S's). */
void paging_enable(void);
void paging_disable(void);
bool paging_is_enabled(void);

#endif /* PEACHOS_KERNEL_PAGING_H */
