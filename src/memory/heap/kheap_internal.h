/*
 * kheap_internal.h - the kernel heap's state, which kheap_init.c owns and
 * creates and kheap.c's kmalloc family reads. Private to the kheap files;
 * kheap.h has the public side.
 */
#ifndef PEACHOS_KHEAP_INTERNAL_H
#define PEACHOS_KHEAP_INTERNAL_H

#include <stdbool.h>

#include "kheap.h"
#include "kheap_port.h"
#if PEACHOS_KHEAP_REGIONS
#include "kheap_regions.h" /* only then: a kernel with one region needs neither it nor multiheap.h */
#endif
#if PEACHOS_KHEAP_VMALLOC
#include "kheap_vmalloc.h"
#endif

/* The heap of a one-region kernel and its table descriptor (the seed's
 * names; with several regions, kheap_regions.c's multiheap holds them). */
extern struct heap kernel_heap;
extern struct heap_table kernel_heap_table;

/* True once kheap_init has succeeded; false while it runs or after it
 * failed. Read and written under the port's lock. */
extern bool kheap_is_ready;

#if PEACHOS_KHEAP_CACHES
/* The caches on the heap's (first) region. */
extern struct kcache kheap_kcache;
#define KHEAP_KCACHE (&kheap_kcache)
#else
#define KHEAP_KCACHE NULL
#endif

/* The heap the caches live on: the only one, or the port's first region. */
#if PEACHOS_KHEAP_REGIONS
#define KHEAP_MAIN kheap_regions_first()
#else
#define KHEAP_MAIN (&kernel_heap)
#endif

#endif /* PEACHOS_KHEAP_INTERNAL_H */
