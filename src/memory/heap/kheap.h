/*
 * kheap.h - the kernel heap: one global heap at the config.h addresses (or
 * wherever the platform's kheap_port puts it), safe to call from any
 * context the port's lock hook protects against.
 *
 * Small requests (1..KCACHE_MAX_SIZE = 2048 bytes) are served by the
 * small-object caches (kcache.h): 16-byte aligned objects packed into
 * CACHE-typed slabs. Larger requests get whole blocks, block-aligned, with
 * the seed's table encoding. kpalloc gives block-aligned whole blocks for
 * any size. docs/kcache.md describes the layout and the guarantees.
 *
 * Debug configuration: build with -DPEACHOS_KCACHE_POISON=1 to poison freed
 * small objects and report writes after free (HEAP_REPORT_CACHE_USE_AFTER_FREE).
 */
#ifndef PEACHOS_KHEAP_H
#define PEACHOS_KHEAP_H

#include <stddef.h>

#include "heap.h"
#include "kcache.h"

/* Create the kernel heap. On failure it prints "kheap: failed to create heap"
 * through the port, and every later kmalloc returns NULL. Calling it again
 * re-creates the heap, forgetting every allocation. The caches' checksum
 * secret comes from kheap_port_secret(). */
void kheap_init(void);

/* True once kheap_init has succeeded. */
bool kheap_ready(void);

/* Allocate `size` bytes; NULL if size is 0, the heap is not ready or out of
 * memory. 1..KCACHE_MAX_SIZE bytes: a small object, 16-byte aligned;
 * larger: whole blocks, block-aligned. */
void* kmalloc(size_t size);

/* kmalloc, then zero the `size` requested bytes. */
void* kzalloc(size_t size);

/* kzalloc(n * size); NULL if the product overflows or is 0. */
void* kcalloc(size_t n, size_t size);

/* Whole blocks for any size >= 1, always PEACHOS_HEAP_BLOCK_SIZE-aligned
 * (page tables, DMA buffers). Freed with kfree. NULL for 0. */
void* kpalloc(size_t size);

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

/* heap_check + kcache_check under the lock: 0, -ECORRUPT (first bad block
 * in *bad, SIZE_MAX if not tied to a block) or -EINVARG if not ready. */
int kheap_check(size_t* bad);

/* Give every spare (empty) slab back to the heap; returns blocks freed. */
size_t kheap_trim(void);

/* The kernel heap, for heap_get_stats, heap_check and heap_dump_map (read
 * them under kheap_lock/kheap_unlock if other contexts may allocate).
 * NULL before a successful kheap_init. */
struct heap* kheap_get(void);

/* The kernel heap's caches (kcache_get_stats, ...); NULL before kheap_init. */
struct kcache* kheap_cache(void);

/* Fault injection for tests (issue 6): install a kcache fault hook on the
 * kernel heap's caches, now and after every later kheap_init. NULL removes it. */
void kheap_set_fault(kcache_fault_fn fn, void* ctx);

/* Take / release the kernel heap's lock (the port's hook). */
uintptr_t kheap_lock(void);
void kheap_unlock(uintptr_t state);

#endif /* PEACHOS_KHEAP_H */
