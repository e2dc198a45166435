/*
 * kheap_port.c - the kernel heap's port for PeachOS (32-bit), written into
 * a PeachOS tree as src/memory/heap/kheap_port.c by tools/peachos-dropin.
 *
 *   region   the seed's layout from config.h: the pool at
 *            PEACHOS_HEAP_ADDRESS, the table at PEACHOS_HEAP_TABLE_ADDRESS,
 *            the placement index (when built with it) right after the table
 *            at PEACHOS_HEAP_INDEX_ADDRESS, in free conventional memory.
 *   lock     EFLAGS saved, interrupts masked, EFLAGS restored: PeachOS calls
 *            kmalloc with interrupts off (boot, interrupt gates), so the lock
 *            must never turn them on by itself.
 *   report   one line through PeachOS's print(); panic() instead when built
 *            with PEACHOS_HEAP_PANIC_ON_BAD_FREE=1.
 */
#include "kheap_port.h"

#include "heap_status.h"
#include "kernel.h"
#if PEACHOS_KHEAP_INDEX
#include "heap_index.h"
#endif

#define KHEAP_PORT_BLOCKS (PEACHOS_HEAP_SIZE_BYTES / PEACHOS_HEAP_BLOCK_SIZE)

/* The index memory, or NULL (the linear scan) if it would not fit its room. */
static void* kheap_port_index(size_t* bytes)
{
    *bytes = 0;
#if PEACHOS_KHEAP_INDEX
    size_t need = heap_index_bytes(KHEAP_PORT_BLOCKS);
    if (PEACHOS_HEAP_TABLE_ADDRESS + KHEAP_PORT_BLOCKS > PEACHOS_HEAP_INDEX_ADDRESS || need == 0 ||
        need > PEACHOS_HEAP_INDEX_MAX_BYTES) {
        print("kheap: no room for the placement index: first fit by linear scan\n");
        return NULL;
    }
    *bytes = need;
    return (void*)PEACHOS_HEAP_INDEX_ADDRESS;
#else
    return NULL;
#endif
}

int kheap_port_region(struct kheap_region* region)
{
    region->start = (void*)PEACHOS_HEAP_ADDRESS;
    region->end = (void*)(PEACHOS_HEAP_ADDRESS + PEACHOS_HEAP_SIZE_BYTES);
    region->table = (HEAP_BLOCK_TABLE_ENTRY*)PEACHOS_HEAP_TABLE_ADDRESS;
    region->index = kheap_port_index(&region->index_bytes);
    return PEACHOS_ALL_OK;
}

uintptr_t kheap_port_lock(void)
{
    uintptr_t flags;
    __asm__ volatile("pushf\n\tpop %0\n\tcli" : "=r"(flags) : : "memory");
    return flags;
}

void kheap_port_unlock(uintptr_t state)
{
    __asm__ volatile("push %0\n\tpopf" : : "r"(state) : "memory", "cc");
}

/* "0x" and 8 hex digits of v into out[11]. */
static void kheap_port_hex(uintptr_t v, char* out)
{
    out[0] = '0';
    out[1] = 'x';
    for (int i = 0; i < 8; i++) {
        out[9 - i] = "0123456789abcdef"[v & 0xF];
        v >>= 4;
    }
    out[10] = '\0';
}

void kheap_port_report(const struct heap_report* report)
{
    char hex[11];
    kheap_port_hex((uintptr_t)report->ptr, hex);
    print("kheap: ");
    print(heap_report_action(report->kind));
    print(" ");
    print(hex);
    print(": ");
    print(heap_report_reason(report->kind));
    print("\n");
#if PEACHOS_HEAP_PANIC_ON_BAD_FREE
    panic("kheap: bad free (PEACHOS_HEAP_PANIC_ON_BAD_FREE=1)\n");
#endif
}

void kheap_port_print(const char* message)
{
    print(message);
}
