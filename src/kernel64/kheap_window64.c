/*
 * kheap_window64.c - the x86_64 demo kernel's kheap_port_window
 * (PEACHOS_KHEAP_VMALLOC = 1, mk/kernel64.mk): a 64 MiB window at 512 GiB,
 * the range of PML4 entry 1, far above the RAM boot64.S identity-maps (at
 * most 64 GiB), mapped in 4 KiB pages through one PDPT, one page directory
 * and 32 page tables of its own in .bss; the window's table and backing
 * record in .bss too (outside every heap pool, which starts at 16 MiB).
 * The heap's addresses are physical (identity map), so a block's address
 * goes into the page table as it is.
 */
#include "vmalloc64.h"

#include "../memory/heap/kheap_port.h"

#if PEACHOS_KHEAP_VMALLOC
#define PT_PRESENT 0x001ull
#define PT_WRITABLE 0x002ull
#define PT_ADDRESS 0x000FFFFFFFFFF000ull
#define PAGE 4096u
#define TABLES (VMALLOC64_BLOCKS / 512u)

_Static_assert(PEACHOS_HEAP_BLOCK_SIZE == PAGE, "a window block is one 4 KiB page");
_Static_assert(VMALLOC64_BLOCKS % 512u == 0 && TABLES <= 512u, "whole page tables, one page directory");

extern uint64_t boot64_pml4[]; /* boot64.S */

static uint64_t window_pdpt[512] __attribute__((aligned(PAGE)));
static uint64_t window_pd[512] __attribute__((aligned(PAGE)));
static uint64_t window_pt[TABLES][512] __attribute__((aligned(PAGE)));
static HEAP_BLOCK_TABLE_ENTRY window_table[VMALLOC64_BLOCKS];
static void* window_backing[VMALLOC64_BLOCKS];

static uint64_t* window_pte(const void* virt)
{
    uint64_t page = ((uint64_t)(uintptr_t)virt - VMALLOC64_BASE) / PAGE;
    return &window_pt[page / 512u][page % 512u];
}

static void window_flush(const void* virt)
{
    __asm__ volatile("invlpg (%0)" : : "r"(virt) : "memory");
}

static int window_map(void* ctx, void* virt, void* block)
{
    (void)ctx;
    *window_pte(virt) = ((uint64_t)(uintptr_t)block & PT_ADDRESS) | PT_PRESENT | PT_WRITABLE;
    return 0; /* a page that was not present is in no TLB: nothing to flush */
}

static void window_unmap(void* ctx, void* virt)
{
    (void)ctx;
    *window_pte(virt) = 0;
    window_flush(virt);
}

static void* window_lookup(void* ctx, const void* virt)
{
    (void)ctx;
    uint64_t e = *window_pte(virt);
    return (e & PT_PRESENT) ? (void*)(uintptr_t)(e & PT_ADDRESS) : NULL;
}

/* The window's tables, every page absent (kheap_init may run again: what
 * an earlier heap mapped is gone with it), then the whole TLB flushed. */
static void window_tables(void)
{
    for (uint32_t t = 0; t < TABLES; t++) {
        for (uint32_t i = 0; i < 512u; i++) {
            window_pt[t][i] = 0;
        }
        window_pd[t] = (uint64_t)(uintptr_t)window_pt[t] | PT_PRESENT | PT_WRITABLE;
    }
    window_pdpt[0] = (uint64_t)(uintptr_t)window_pd | PT_PRESENT | PT_WRITABLE;
    boot64_pml4[VMALLOC64_BASE >> 39] = (uint64_t)(uintptr_t)window_pdpt | PT_PRESENT | PT_WRITABLE;
    uint64_t cr3;
    __asm__ volatile("mov %%cr3, %0; mov %0, %%cr3" : "=r"(cr3) : : "memory");
}

int kheap_port_window(struct kheap_window* window)
{
    window_tables();
    window->start = (void*)(uintptr_t)VMALLOC64_BASE;
    window->end = (void*)(uintptr_t)(VMALLOC64_BASE + (uint64_t)VMALLOC64_BLOCKS * PAGE);
    window->table = window_table;
    window->index = NULL; /* the scan: 16,384 table bytes */
    window->index_bytes = 0;
    window->backing = window_backing;
    window->ops = (struct kvmalloc_ops){ window_map, window_unmap, window_lookup, NULL };
    return 0;
}
#endif
