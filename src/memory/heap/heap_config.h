/*
 * heap_config.h - every compile-time setting the memory library reads, with
 * its default. The kernel's own src/config.h comes first, so a value it
 * defines (or a -D on the command line) wins; anything it leaves out gets
 * the default below. A kernel whose config.h has only the seed's four heap
 * macros (PeachOS's) therefore builds the library unchanged.
 * docs/porting.md explains each setting.
 */
#ifndef PEACHOS_HEAP_CONFIG_H
#define PEACHOS_HEAP_CONFIG_H

#include "../../config.h"

/* ------------------------------------------------------ the seed's layout */

/* Size of the kernel heap's data pool: 100 MiB. */
#ifndef PEACHOS_HEAP_SIZE_BYTES
#define PEACHOS_HEAP_SIZE_BYTES 104857600
#endif

/* Allocation unit: one table byte describes one block. A power of two. */
#ifndef PEACHOS_HEAP_BLOCK_SIZE
#define PEACHOS_HEAP_BLOCK_SIZE 4096
#endif

/* Physical address of the data pool (16 MiB, block-aligned). */
#ifndef PEACHOS_HEAP_ADDRESS
#define PEACHOS_HEAP_ADDRESS 0x01000000
#endif

/* Physical address of the block table: free conventional memory right after
 * the boot sector. 100 MiB / 4 KiB = 25,600 bytes: 0x7E00..0xE1FF. */
#ifndef PEACHOS_HEAP_TABLE_ADDRESS
#define PEACHOS_HEAP_TABLE_ADDRESS 0x00007E00
#endif

/* ------------------------------------------------------------ our additions */

/*
 * The placement index (docs/index.md): 1 = kheap places with the O(log n)
 * index (heap_index.c must be linked), 0 = the seed's linear scan.
 * Its memory: right after the table. For the default heap it needs 15,512
 * bytes on i686 (15,528 on x86_64): 0xE200..0x11E97, free conventional
 * memory. kheap refuses to start if the index would exceed
 * PEACHOS_HEAP_INDEX_MAX_BYTES.
 */
#ifndef PEACHOS_KHEAP_INDEX
#define PEACHOS_KHEAP_INDEX 1
#endif
#ifndef PEACHOS_HEAP_INDEX_ADDRESS
#define PEACHOS_HEAP_INDEX_ADDRESS 0x0000E200
#endif
#ifndef PEACHOS_HEAP_INDEX_MAX_BYTES
#define PEACHOS_HEAP_INDEX_MAX_BYTES 0x00010000
#endif

/*
 * The small-object caches (kcache.c, docs/kcache.md). 1 = compiled into
 * kheap: kmalloc_small / kzalloc_small hand out 16-byte aligned objects
 * packed into shared slabs. 0 = left out (kcache.c need not be linked).
 */
#ifndef PEACHOS_KHEAP_CACHES
#define PEACHOS_KHEAP_CACHES 1
#endif

/*
 * What kmalloc, kzalloc and kcalloc return. 0 (the default, the seed's
 * contract): whole blocks, block-aligned, sharing no block with any other
 * allocation, so the memory may be mapped into page tables or user space.
 * 1: requests of up to KCACHE_MAX_SIZE bytes get small objects, as
 * kmalloc_small does. Such memory shares its page with other kernel objects:
 * a kernel that maps kmalloc'd memory into user space or hands it to paging
 * code (PeachOS does both) must keep 0. Needs PEACHOS_KHEAP_CACHES = 1.
 */
#ifndef PEACHOS_KMALLOC_SMALL_OBJECTS
#define PEACHOS_KMALLOC_SMALL_OBJECTS 0
#endif

/* Debug configuration of the caches: 1 = poison freed small objects and
 * report a write after free (HEAP_REPORT_CACHE_USE_AFTER_FREE). */
#ifndef PEACHOS_KCACHE_POISON
#define PEACHOS_KCACHE_POISON 0
#endif

/*
 * Per-CPU magazines in front of the caches (kcache_cpu.c, docs/kcache.md):
 * 0 (the default) = every kmalloc_small and kfree takes the port's lock.
 * 1 = each CPU keeps a small stack of free objects per class, so that
 * kmalloc_small and the kfree of a small object take only the per-CPU
 * section of the port (kheap_port_cpu_enter: interrupts off in a kernel,
 * nothing on a host, where each thread is a CPU) and touch the global lock
 * once per KCACHE_MAG_BATCH objects. A free stays exact: a second bitmap,
 * one bit per 16 bytes of every slab, says which objects the caller holds.
 * Costs 32 bytes more of slab table per block. Needs PEACHOS_KHEAP_CACHES.
 * PEACHOS_KCACHE_CPUS: the CPUs (host threads) with magazines, at most 32;
 * a port that names a CPU beyond it gets the locked path.
 */
#ifndef PEACHOS_KCACHE_MAGAZINES
#define PEACHOS_KCACHE_MAGAZINES 0
#endif
#ifndef PEACHOS_KCACHE_CPUS
#define PEACHOS_KCACHE_CPUS 8
#endif

/*
 * Several memory regions (the boot memory map): 0 (the default) = one
 * region, kheap_port_region()'s, exactly the seed's heap. N > 0 = up to N
 * regions from kheap_port_regions(), kept in a multiheap (multiheap.h,
 * linked only then): the kmalloc family places whole blocks at the first
 * fit by address across them; the small-object caches stay on the port's
 * first region. At most MULTIHEAP_MAX_REGIONS.
 */
#ifndef PEACHOS_KHEAP_REGIONS
#define PEACHOS_KHEAP_REGIONS 0
#endif

/*
 * Virtually contiguous allocations (kvmalloc.h, kheap_vmalloc.c): 0 (the
 * default) = left out, kvmalloc.c need not be linked. 1 = kheap_init asks
 * the port for a window (kheap_port_window; its weak default says no), and
 * with one, a kmalloc, kzalloc, kcalloc or krealloc no region can serve
 * contiguously is built from scattered blocks mapped one after the other
 * there. Such memory is contiguous only virtually: a kernel that hands
 * kmalloc'd memory to paging code or devices as physical addresses must
 * use kpalloc (never from the window) for that.
 */
#ifndef PEACHOS_KHEAP_VMALLOC
#define PEACHOS_KHEAP_VMALLOC 0
#endif

/*
 * What the kernel port does with a refused free (bad pointer, double free):
 * 0 = print a report on the console and carry on (the heap is unchanged),
 * 1 = print the report and halt.
 */
#ifndef PEACHOS_HEAP_PANIC_ON_BAD_FREE
#define PEACHOS_HEAP_PANIC_ON_BAD_FREE 0
#endif

/*
 * Preconditions of the library's internal functions ("n >= 1", "inside the
 * table") are checked with PEACHOS_HEAP_ASSERT(cond). Off by default (a
 * release kernel pays nothing); a port may define it, for example to call
 * its panic. The unit, model, fuzz and stress tests and the demo kernel's
 * build turn it on (a trap). A failed one is a bug in the library, never a
 * bad pointer from the caller: those are refused and reported.
 */
#ifndef PEACHOS_HEAP_ASSERT
#define PEACHOS_HEAP_ASSERT(cond) ((void)0)
#endif

_Static_assert(PEACHOS_HEAP_BLOCK_SIZE >= 64 && (PEACHOS_HEAP_BLOCK_SIZE & (PEACHOS_HEAP_BLOCK_SIZE - 1)) == 0,
               "PEACHOS_HEAP_BLOCK_SIZE must be a power of two of at least 64");
_Static_assert(PEACHOS_HEAP_ADDRESS % PEACHOS_HEAP_BLOCK_SIZE == 0, "PEACHOS_HEAP_ADDRESS must be block-aligned");
_Static_assert(PEACHOS_KMALLOC_SMALL_OBJECTS == 0 || PEACHOS_KHEAP_CACHES == 1,
               "PEACHOS_KMALLOC_SMALL_OBJECTS needs PEACHOS_KHEAP_CACHES");
_Static_assert(PEACHOS_KCACHE_MAGAZINES == 0 || PEACHOS_KHEAP_CACHES == 1,
               "PEACHOS_KCACHE_MAGAZINES needs PEACHOS_KHEAP_CACHES");
_Static_assert(PEACHOS_KCACHE_CPUS >= 1 && PEACHOS_KCACHE_CPUS <= 32, "PEACHOS_KCACHE_CPUS: 1..32 (a 32-bit mask)");

#endif /* PEACHOS_HEAP_CONFIG_H */
