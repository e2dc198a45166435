/*
 * kheap_port.h - what a platform provides so that kheap.c can run on it.
 *
 * Two ports ship with PeachOS: src/kernel/kheap_port.c (bare metal: the
 * config.h addresses, interrupts off as the lock, console output) and
 * src/hosted/kheap_port.c (mmap'd arena, pthread mutex, stderr), which the
 * host tests use. docs/porting.md explains how to write another.
 */
#ifndef PEACHOS_KHEAP_PORT_H
#define PEACHOS_KHEAP_PORT_H

#include <stddef.h>
#include <stdint.h>

#include "heap.h"

/* Where the kernel heap lives. */
struct kheap_region
{
    void* start;                   /* block-aligned data pool start */
    void* end;                     /* block-aligned end (exclusive) */
    HEAP_BLOCK_TABLE_ENTRY* table; /* (end - start) / block size entries */
    void* index;                   /* placement index memory, or NULL for the linear scan */
    size_t index_bytes;
    /* The small-object caches' slab table (kcache_table_bytes(blocks)), used
     * only with the caches and only in the first region. NULL: kheap takes
     * it from the top of the region, which shrinks by about 1.2%. */
    void* cache_table;
    size_t cache_table_bytes;
};

/* Fill *region; return 0, or a negative code (then kheap stays unusable). */
int kheap_port_region(struct kheap_region* region);

/* Several regions (PEACHOS_KHEAP_REGIONS > 0 only): fill up to `max`
 * regions, the first one the home of the small-object caches; return how
 * many (>= 1), or a negative code. Optional: kheap.c's weak default calls
 * kheap_port_region() once. */
int kheap_port_regions(struct kheap_region* regions, size_t max);

/* Lock hook: every kheap operation runs between these two calls. lock()
 * returns whatever unlock() needs to restore (e.g. the saved EFLAGS). They
 * need not be reentrant: kheap never nests them. */
uintptr_t kheap_port_lock(void);
void kheap_port_unlock(uintptr_t state);

/* Report hook: a refused kfree. Called with the lock held; may print and
 * return (the heap is unchanged) or halt. */
void kheap_port_report(const struct heap_report* report);

/* Print a line of diagnostic text (kheap_init failure). */
void kheap_port_print(const char* message);

#if PEACHOS_KCACHE_MAGAZINES
/*
 * The per-CPU section of the magazines (kcache_cpu.c). enter returns the
 * caller's CPU number (< PEACHOS_KCACHE_CPUS) and keeps everything else
 * on that CPU off its magazines until leave: interrupts off in a kernel
 * (pushf; cli / popf), nothing on a host, where each thread has a number
 * of its own. Any number >= PEACHOS_KCACHE_CPUS (KCACHE_NO_CPU) means no
 * per-CPU state: the caller takes the locked path. *state is what leave
 * restores. kheap takes the global lock inside the section, never the
 * other way round. Optional: kheap.c's weak defaults give no CPU.
 */
unsigned kheap_port_cpu_enter(uintptr_t* state);
void kheap_port_cpu_leave(uintptr_t state);

/* Called with the lock held: the CPUs other than the caller that may be
 * inside their per-CPU section now (bit k = CPU k), whose magazines
 * kheap_check therefore leaves alone. A kernel on one CPU: 0 (the weak
 * default). */
uint32_t kheap_port_cpus_busy(void);
#endif

#if PEACHOS_KHEAP_VMALLOC
#include "kvmalloc.h"
/* The window of virtually contiguous allocations (PEACHOS_KHEAP_VMALLOC
 * only, kvmalloc.h): a block-aligned virtual range where nothing is
 * mapped, its table ((end - start) / block size bytes), an optional index,
 * the backing record (KVMALLOC_BACKING_BYTES), all outside every pool, and
 * the paging hooks that map a window block to a heap block. */
struct kheap_window
{
    void* start;
    void* end;
    HEAP_BLOCK_TABLE_ENTRY* table;
    void* index; /* NULL: the linear scan */
    size_t index_bytes;
    void** backing;
    struct kvmalloc_ops ops;
    /* false (what a port that leaves it unset gets): the window is in use
     * from kheap_init on. true: not before kheap_post_paging(), for a
     * kernel that starts its heap before it turns paging on, as the 64-bit
     * course does (kheap_init, then its page tables, then
     * kheap_post_paging); until then kmalloc never falls back. */
    bool after_paging;
};

/* Fill *window; return 0, or a negative code for no window. Optional:
 * kheap's weak default has none (kmalloc then never falls back). */
int kheap_port_window(struct kheap_window* window);
#endif

#endif /* PEACHOS_KHEAP_PORT_H */
