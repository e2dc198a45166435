/*
 * kheap_regions.h - kheap.c's multi-region part (kheap_regions.c), used
 * only when PEACHOS_KHEAP_REGIONS > 0 (heap_config.h). Private to kheap.c
 * and kheap_check.c; kheap.h has the public side.
 */
#ifndef PEACHOS_KHEAP_REGIONS_H
#define PEACHOS_KHEAP_REGIONS_H

#include <stddef.h>

#include "heap.h"
#include "kheap_port.h"

#if PEACHOS_KHEAP_REGIONS
struct kcache; /* NULL without the caches */

/* The weak default of kheap_port_regions: kheap_port_region(), once. */
int kheap_default_regions(struct kheap_region* regions, size_t max);

/* kheap.c: put the caches' slab table in, or at the top of, the region
 * that carries the caches. */
void kheap_place_cache_table(struct kheap_region* region);

/* Build the multiheap from the port's regions; 0 or a negative code. */
int kheap_regions_create(void);

/* The port's first region: the caches' home (NULL before a create). */
struct heap* kheap_regions_first(void);

void kheap_regions_set_report(heap_report_fn fn);

/* Is first-only mode on (read under the lock: the window asks)? */
bool kheap_regions_first_only_now(void);

/* The kmalloc family's operations: whole blocks across the regions; the
 * small objects (and everything of the first region in first-only mode)
 * through the first region's own allocator (kc, or its heap without caches). */
void* kheap_regions_blocks(struct kcache* kc, size_t size);
void* kheap_regions_small(struct kcache* kc, size_t size);
void kheap_regions_free(struct kcache* kc, void* ptr);
void* kheap_regions_realloc(struct kcache* kc, void* ptr, size_t size);
size_t kheap_regions_size(const struct kcache* kc, const void* ptr);
#endif

#endif /* PEACHOS_KHEAP_REGIONS_H */
