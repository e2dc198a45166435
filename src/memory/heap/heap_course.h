/*
 * heap_course.h - the names the PeachOS 64-bit course's memory code uses,
 * as thin functions over this library, so that a kernel written against
 * the course compiles against ours (docs/porting.md, section 2):
 *
 *   heap_total_size / _used / _available   bytes of a heap (its counters: O(1))
 *   heap_is_address_within_heap            is ptr in the heap's pool
 *   heap_eaddr                             the pool's end (the course's heap->eaddr)
 *   heap_align_value_to_upper / _lower     block alignment
 *   multiheap_alloc                        multiheap_malloc
 *   multiheap_add                          a region whose table sits at its own start
 *   kheap_post_paging                      the kernel heap's step after paging is on
 *
 * heap_zalloc, heap_realloc, multiheap_free, multiheap_get_heap_for_address,
 * multiheap_is_address_within_heap, kpalloc, kpzalloc and krealloc already
 * have the course's names (heap.h, multiheap.h, kheap.h).
 */
#ifndef PEACHOS_HEAP_COURSE_H
#define PEACHOS_HEAP_COURSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "heap.h"
#include "multiheap.h"

/* The course's region flags for multiheap_add. */
enum
{
    MULTIHEAP_HEAP_FLAG_EXTERNALLY_OWNED = 0x01,     /* refused: a region here is always the multiheap's */
    MULTIHEAP_HEAP_FLAG_DEFRAGMENT_WITH_PAGING = 0x02 /* accepted; the paging second pass is kvmalloc's */
};

/* Bytes of the pool, of its taken blocks, of its free blocks. */
size_t heap_total_size(const struct heap* heap);
size_t heap_total_used(const struct heap* heap);
size_t heap_total_available(const struct heap* heap);

/* Is ptr inside the pool, [saddr, heap_eaddr)? */
bool heap_is_address_within_heap(const struct heap* heap, const void* ptr);

/* The end of the pool (exclusive). */
void* heap_eaddr(const struct heap* heap);

/* val rounded up / down to a multiple of PEACHOS_HEAP_BLOCK_SIZE (up: the
 * highest multiple when val is within a block of UINTPTR_MAX). */
uintptr_t heap_align_value_to_upper(uintptr_t val);
uintptr_t heap_align_value_to_lower(uintptr_t val);

/* multiheap_malloc under the course's name. */
void* multiheap_alloc(struct multiheap* mh, size_t size);

/*
 * Add [saddr, eaddr) (both block-aligned) as a region whose block table
 * takes its first blocks (one byte per block of the whole range, rounded
 * up to a block) and whose pool is the rest, no index: the course's
 * multiheap_add, where the table comes from the region itself instead of
 * another heap. flags: 0 or MULTIHEAP_HEAP_FLAG_DEFRAGMENT_WITH_PAGING.
 * 0, or -EINVARG (nothing written) for unaligned addresses, a range with
 * no block left for the pool, other flags, or what multiheap_add_region
 * refuses.
 */
int multiheap_add(struct multiheap* mh, void* saddr, void* eaddr, int flags);

/*
 * The course calls it once paging is on, to let the heap build allocations
 * from scattered blocks (its multiheap's "ready"). Here that is the
 * kvmalloc window's fallback: a port whose window says after_paging
 * (kheap_port.h) gets it from this call on, with the lock taken; any other
 * window works from kheap_init, and without PEACHOS_KHEAP_VMALLOC this does
 * nothing. The regions need no such step: the port gives them mapped.
 */
void kheap_post_paging(void);

#endif /* PEACHOS_HEAP_COURSE_H */
