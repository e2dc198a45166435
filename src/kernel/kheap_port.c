/*
 * kheap_port.c - the bare-metal port of the kernel heap (kheap_port.h):
 *
 *   region   the config.h addresses: pool at PEACHOS_HEAP_ADDRESS (16 MiB),
 *            table at PEACHOS_HEAP_TABLE_ADDRESS (0x7E00), placement index at
 *            PEACHOS_HEAP_INDEX_ADDRESS (0xE200), at most
 *            PEACHOS_HEAP_INDEX_MAX_BYTES, the caches' slab table at
 *            KERNEL_SLAB_TABLE_ADDRESS (config.h). Paging is off: physical =
 *            virtual.
 *   lock     pushf; cli - every heap operation runs with interrupts off;
 *   unlock   push; popf - IF goes back to what it was (single CPU).
 *   report   printed on the console; halts if PEACHOS_HEAP_PANIC_ON_BAD_FREE.
 *   print    the console (serial + VGA).
 */
#include "../memory/heap/heap_index.h"
#include "../memory/heap/kheap.h"
#include "../memory/heap/kheap_port.h"
#include "../status.h"
#include "../memory/heap/heap_status.h"
#include "io.h"
#include "kernel.h"
#include "print.h"

/* The caches' slab table, away from the pool (without the caches: none). */
static int kernel_slab_table(struct kheap_region* region, size_t blocks)
{
#if PEACHOS_KHEAP_CACHES
    size_t bytes = kcache_table_bytes(blocks);
    if (bytes == 0 || bytes > KERNEL_SLAB_TABLE_MAX_BYTES) {
        printk("kheap: slab table needs %zu bytes, only %u reserved at 0x%x\n", bytes,
               (unsigned)KERNEL_SLAB_TABLE_MAX_BYTES, (unsigned)KERNEL_SLAB_TABLE_ADDRESS);
        return -ENOMEM;
    }
    region->cache_table = (void*)KERNEL_SLAB_TABLE_ADDRESS;
    region->cache_table_bytes = bytes;
#else
    (void)region;
    (void)blocks;
#endif
    return PEACHOS_ALL_OK;
}

int kheap_port_region(struct kheap_region* region)
{
    const uintptr_t start = PEACHOS_HEAP_ADDRESS;
    const uintptr_t end = start + PEACHOS_HEAP_SIZE_BYTES;
    const size_t blocks = PEACHOS_HEAP_SIZE_BYTES / PEACHOS_HEAP_BLOCK_SIZE;
    const size_t index_bytes = heap_index_bytes(blocks);

    /* The table must end before the index starts, and the index fit its room. */
    if (PEACHOS_HEAP_TABLE_ADDRESS + blocks > PEACHOS_HEAP_INDEX_ADDRESS) {
        printk("kheap: table 0x%x..0x%x runs into the index at 0x%x\n", (unsigned)PEACHOS_HEAP_TABLE_ADDRESS,
               (unsigned)(PEACHOS_HEAP_TABLE_ADDRESS + blocks), (unsigned)PEACHOS_HEAP_INDEX_ADDRESS);
        return -EINVARG;
    }
    if (index_bytes == 0 || index_bytes > PEACHOS_HEAP_INDEX_MAX_BYTES) {
        printk("kheap: index needs %zu bytes, only %u reserved at 0x%x\n", index_bytes,
               (unsigned)PEACHOS_HEAP_INDEX_MAX_BYTES, (unsigned)PEACHOS_HEAP_INDEX_ADDRESS);
        return -ENOMEM;
    }
    region->start = (void*)start;
    region->end = (void*)end;
    region->table = (HEAP_BLOCK_TABLE_ENTRY*)PEACHOS_HEAP_TABLE_ADDRESS;
    region->index = (void*)PEACHOS_HEAP_INDEX_ADDRESS;
    region->index_bytes = index_bytes;
    return kernel_slab_table(region, blocks);
}

uintptr_t kheap_port_lock(void)
{
    uintptr_t flags;
    __asm__ volatile("pushf\n\tpop %0\n\tcli" : "=r"(flags) : : "memory");
    return flags;
}

/* `state` is the EFLAGS value kheap_port_lock saved. */
void kheap_port_unlock(uintptr_t state)
{
    __asm__ volatile("push %0\n\tpopf" : : "r"(state) : "memory", "cc");
}

#if PEACHOS_KCACHE_MAGAZINES
/* One CPU: CPU 0, its magazines guarded from interrupt handlers by cli
 * around them alone (the slabs behind them keep kheap_port_lock). */
unsigned kheap_port_cpu_enter(uintptr_t* state)
{
    *state = kheap_port_lock();
    return 0;
}

void kheap_port_cpu_leave(uintptr_t state)
{
    kheap_port_unlock(state);
}

uint32_t kheap_port_cpus_busy(void)
{
    return 0; /* the only CPU is the caller */
}
#endif

void kernel_heap_print_report(const struct heap_report* report, const char* note)
{
    const char* verb = heap_report_action(report->kind);
    const char* why = heap_report_reason(report->kind);
    if (report->block == SIZE_MAX) {
        printk("kheap: %s %p: %s (reason %d)%s\n", verb, report->ptr, why, (int)report->kind, note);
    } else {
        printk("kheap: %s %p (block %zu): %s (reason %d)%s\n", verb, report->ptr, report->block, why,
               (int)report->kind, note);
    }
}

void kheap_port_report(const struct heap_report* report)
{
    kernel_heap_print_report(report, "");
#if PEACHOS_HEAP_PANIC_ON_BAD_FREE
    /* The last line on the console names what killed the kernel. */
    panic("%s %p: %s (reason %d, PEACHOS_HEAP_PANIC_ON_BAD_FREE=1)",
          heap_report_is_free(report->kind) ? "bad free of" : heap_report_action(report->kind), report->ptr,
          heap_report_reason(report->kind), (int)report->kind);
#endif
}

void kheap_port_print(const char* message)
{
    print(message);
}
