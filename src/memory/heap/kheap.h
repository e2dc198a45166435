/*
 * kheap.h - the kernel heap: one global heap at the config.h addresses (or
 * wherever the platform's kheap_port puts it), safe to call from any
 * context the port's lock hook protects against.
 *
 * The seed's contract: kmalloc, kzalloc, kcalloc, kpalloc and kpzalloc
 * return whole blocks, PEACHOS_HEAP_BLOCK_SIZE-aligned, sharing no block
 * with any other allocation (table bytes 41, C1 01, C1 81 01, ...). Such
 * memory may be mapped page by page into page tables or user space.
 *
 * Small objects are opt-in. With the caches compiled in
 * (PEACHOS_KHEAP_CACHES, heap_config.h), kmalloc_small and kzalloc_small
 * hand out 16-byte aligned objects of 1..KCACHE_MAX_SIZE (2048) bytes
 * packed into shared slabs (kcache.h, docs/kcache.md); with
 * PEACHOS_KMALLOC_SMALL_OBJECTS=1, kmalloc, kzalloc and kcalloc do too.
 * WARNING: a small object shares its page with other kernel objects. Never
 * map one into user space or hand it to paging code: the page would expose
 * (or let a process overwrite) every object beside it.
 *
 * Debug configuration: PEACHOS_KCACHE_POISON=1 poisons freed small objects
 * and reports writes after free (HEAP_REPORT_CACHE_USE_AFTER_FREE).
 */
#ifndef PEACHOS_KHEAP_H
#define PEACHOS_KHEAP_H

#include <stddef.h>

#include "heap.h"
#if PEACHOS_KHEAP_CACHES
#include "kcache.h"
#endif

/* Create the kernel heap. On failure it prints "kheap: failed to create heap"
 * through the port, and every later kmalloc returns NULL. Calling it again
 * re-creates the heap, forgetting every allocation. With the caches, their
 * slab table is the region's cache_table, or the top of the region
 * (kheap_port.h). */
void kheap_init(void);

/* True once kheap_init has succeeded. */
bool kheap_ready(void);

/* Allocate `size` bytes as whole blocks, block-aligned (the seed's
 * heap_malloc); NULL if size is 0, the heap is not ready or out of memory.
 * With PEACHOS_KMALLOC_SMALL_OBJECTS=1: kmalloc_small. */
void* kmalloc(size_t size);

/* kmalloc, zeroed: every byte of its whole blocks (so the tail of the last
 * block shows nothing of the kernel's, should it be mapped into user
 * space); a small object (PEACHOS_KMALLOC_SMALL_OBJECTS=1): its `size` bytes. */
void* kzalloc(size_t size);

/* kzalloc(n * size); NULL if the product overflows or is 0. */
void* kcalloc(size_t n, size_t size);

/* Whole blocks for any size >= 1, always PEACHOS_HEAP_BLOCK_SIZE-aligned
 * (page tables, DMA buffers), whatever the configuration. Freed with kfree.
 * NULL for 0. */
void* kpalloc(size_t size);

/* kpalloc, then zero every byte of its whole blocks. */
void* kpzalloc(size_t size);

#if PEACHOS_KHEAP_CACHES
/* A small object for 1..KCACHE_MAX_SIZE bytes (16-byte aligned, in a slab
 * shared with other objects: see the warning above), whole blocks for
 * larger sizes; NULL for 0 or when out of memory. Freed with kfree. */
void* kmalloc_small(size_t size);

/* kmalloc_small, then zero the `size` requested bytes. */
void* kzalloc_small(size_t size);
#endif

/*
 * Resize: krealloc(NULL, n) = kmalloc(n); krealloc(p, 0) frees p and returns
 * NULL; a bad p is refused as kfree refuses it and NULL returned. A small
 * object stays put while `size` fits its class; block memory stays whole
 * blocks (shrunk or grown in place when possible). Otherwise the data moves
 * (the old usable size is copied) and the old memory is freed. On failure
 * returns NULL and p is untouched.
 */
void* krealloc(void* ptr, size_t size);

/* Usable size of a live allocation (class size or blocks * block size);
 * 0 for NULL or a pointer kfree would refuse. */
size_t ksize(const void* ptr);

/* Free memory from any function above. NULL does nothing; a bad pointer
 * (interior, misaligned, double free, not from the heap) is reported through
 * the port and changes nothing. */
void kfree(void* ptr);

/* heap_check (+ kcache_check with the caches) under the lock: 0, -ECORRUPT
 * (first bad block in *bad, SIZE_MAX if not tied to a block) or -EINVARG
 * if not ready. In kheap_check.c, with heap_check.c (and kcache_check):
 * a kernel that never calls it need not link them. */
int kheap_check(size_t* bad);

/* Give every spare (empty) slab back to the heap; returns blocks freed
 * (always 0 without the caches). */
size_t kheap_trim(void);

/* The kernel heap, for heap_get_stats, heap_check and heap_dump_map (read
 * them under kheap_lock/kheap_unlock if other contexts may allocate).
 * NULL before a successful kheap_init. */
struct heap* kheap_get(void);

#if PEACHOS_KHEAP_CACHES
/* The kernel heap's caches (kcache_get_stats, ...); NULL before kheap_init. */
struct kcache* kheap_cache(void);

/* Fault injection for tests: install a kcache fault hook on the kernel
 * heap's caches, now and after every later kheap_init. NULL removes it. */
void kheap_set_fault(kcache_fault_fn fn, void* ctx);
#endif

#if PEACHOS_KHEAP_REGIONS
#include "multiheap.h"
/* Several regions (PEACHOS_KHEAP_REGIONS > 0): the multiheap of the port's
 * regions (multiheap_get_stats, multiheap_region...; read under the lock),
 * NULL before a successful kheap_init. kheap_get() is the port's first
 * region, the one the small-object caches live on. */
struct multiheap* kheap_regions(void);

/* First-only mode, for tests that need the first region's known size: on,
 * every allocation comes from the port's first region alone, and a pointer
 * in no region is refused by it, exactly as with one region (frees of the
 * other regions' memory still work). Off by default; survives kheap_init.
 * Returns the previous setting. */
bool kheap_regions_first_only(bool on);
#endif

#if PEACHOS_KHEAP_VMALLOC
#include "kvmalloc.h"
/*
 * Virtually contiguous memory (PEACHOS_KHEAP_VMALLOC = 1 and a port with a
 * window, kheap_port.h): contiguous whole blocks if a region has the run
 * (kpalloc), else blocks from anywhere mapped one after the other in the
 * window (kvmalloc.h); block-aligned; NULL for 0 or when neither has room.
 * kmalloc, kzalloc, kcalloc and krealloc fall back to the window the same
 * way. Freed with kfree or kvfree; ksize and krealloc take it too. Not for
 * paging code or devices: the blocks behind it are scattered.
 */
void* kvmalloc(size_t size);
void kvfree(void* ptr);

/* The kernel heap's window (kvmalloc_check, its heap for heap_dump_map;
 * read under the lock), NULL without one or before kheap_init. */
struct kvmalloc* kheap_window(void);

/* Paging is on: a window the port gave with after_paging (kheap_port.h)
 * may now be used. kheap_post_paging() calls it; harmless otherwise. */
void kheap_window_paging_on(void);
#endif

#if PEACHOS_KCACHE_MAGAZINES
/* For a port: give every object CPU `cpu`'s magazines hold back to the
 * caches (a host thread that exits; a CPU going offline). Takes the lock. */
void kheap_cpu_flush(unsigned cpu);
#endif

/* Take / release the kernel heap's lock (the port's hook). */
uintptr_t kheap_lock(void);
void kheap_unlock(uintptr_t state);

#endif /* PEACHOS_KHEAP_H */
