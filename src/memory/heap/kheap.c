/*
 * kheap.c - the kmalloc family of the kernel heap, as the seed describes
 * it, under the port's lock (kheap_init.c creates the heap). Its parts are
 * chosen in
 * heap_config.h: the placement index (PEACHOS_KHEAP_INDEX) and the
 * small-object caches of kcache.c (PEACHOS_KHEAP_CACHES), which kmalloc
 * uses only when PEACHOS_KMALLOC_SMALL_OBJECTS asks for it, and the
 * number of memory regions (PEACHOS_KHEAP_REGIONS: 0 = the one region of
 * kheap_port_region; more = kheap_regions.c's multiheap).
 */
#include "kheap_internal.h"
#include "heap_status.h"

#include "../memory.h"
#if PEACHOS_KCACHE_MAGAZINES
#include "kcache_cpu.h"
/* A port may give its per-CPU section inline (KHEAP_PORT_CPU_ENTER and
 * _LEAVE, in the header this names): on the magazine path a call costs
 * as much as the work. Else the kheap_port.h functions. */
#ifdef PEACHOS_KHEAP_PORT_CPU_HEADER
#include PEACHOS_KHEAP_PORT_CPU_HEADER
#endif
#define KCACHE_LIKELY(x) __builtin_expect(!!(x), 1)
#ifndef KHEAP_PORT_CPU_ENTER
#define KHEAP_PORT_CPU_ENTER(state) kheap_port_cpu_enter(state)
#define KHEAP_PORT_CPU_LEAVE(state) kheap_port_cpu_leave(state)
#endif
/* The slow paths call the port's functions: an inline section may answer
 * "no CPU" to a caller that kheap_port_cpu_enter would give one. */
#endif

/* The locked halves of kmalloc_small and kfree: out of line with the
 * magazines, so that their fast paths save no registers; inline else. */
#if PEACHOS_KCACHE_MAGAZINES
#define KHEAP_COLD __attribute__((noinline))
#else
#define KHEAP_COLD inline
#endif

uintptr_t kheap_lock(void)
{
    return kheap_port_lock();
}

void kheap_unlock(uintptr_t state)
{
    kheap_port_unlock(state);
}

/*
 * The allocator behind the kmalloc family. Without the caches, the block
 * heap itself (heap.c's whole-block functions). With them, kcache.c, which
 * serves block allocations with the same encoding (and gives spare slabs
 * back when the heap is full), and small objects to those who ask. With
 * several regions, kheap_regions.c dispatches between the multiheap and
 * the first region's caches.
 */
#if PEACHOS_KHEAP_REGIONS
#define KHEAP_BLOCKS(size) kheap_regions_blocks(KHEAP_KCACHE, (size))
#define KHEAP_SMALL(size) kheap_regions_small(KHEAP_KCACHE, (size))
#define KHEAP_FREE(ptr) kheap_regions_free(KHEAP_KCACHE, (ptr))
#define KHEAP_REALLOC(ptr, size) kheap_regions_realloc(KHEAP_KCACHE, (ptr), (size))
#define KHEAP_SIZE(ptr) kheap_regions_size(KHEAP_KCACHE, (ptr))
#elif PEACHOS_KHEAP_CACHES
#define KHEAP_SMALL(size) kcache_alloc(&kheap_kcache, (size))
#define KHEAP_BLOCKS(size) kcache_palloc(&kheap_kcache, (size))
#define KHEAP_FREE(ptr) kcache_free(&kheap_kcache, (ptr))
#define KHEAP_REALLOC(ptr, size) kcache_realloc(&kheap_kcache, (ptr), (size))
#define KHEAP_SIZE(ptr) kcache_size(&kheap_kcache, (ptr))
#else
#define KHEAP_BLOCKS(size) heap_malloc(&kernel_heap, (size))
#define KHEAP_FREE(ptr) heap_free(&kernel_heap, (ptr))
#define KHEAP_REALLOC(ptr, size) heap_realloc(&kernel_heap, (ptr), (size))
#define KHEAP_SIZE(ptr) heap_allocation_size(&kernel_heap, (ptr))
#endif

#if PEACHOS_KCACHE_MAGAZINES
/*
 * The per-CPU magazines (kcache_cpu.c): kmalloc_small and kfree of a small
 * object take only the port's per-CPU section; the lock only when the
 * magazine is empty or full. A port without CPUs (the weak defaults)
 * takes the locked path every time.
 */
static unsigned kheap_default_cpu_enter(uintptr_t* state)
{
    *state = 0;
    return KCACHE_NO_CPU;
}

static void kheap_default_cpu_leave(uintptr_t state)
{
    (void)state;
}

static uint32_t kheap_default_cpus_busy(void)
{
    return 0;
}

unsigned kheap_port_cpu_enter(uintptr_t* state) __attribute__((weak, alias("kheap_default_cpu_enter")));
void kheap_port_cpu_leave(uintptr_t state) __attribute__((weak, alias("kheap_default_cpu_leave")));
uint32_t kheap_port_cpus_busy(void) __attribute__((weak, alias("kheap_default_cpus_busy")));

/* The magazine's empty: refill it under the lock, inside the CPU's
 * section. NULL when the heap has no room. */
static __attribute__((noinline)) void* kheap_cpu_refill(unsigned cpu, size_t ci)
{
    uintptr_t state = kheap_port_lock();
    void* ptr = kcache_cpu_alloc_locked(&kheap_kcache, cpu, ci);
    kheap_port_unlock(state);
    return ptr;
}

/* The magazine of class ci is full: give its oldest objects back, under
 * the lock, before anything else on this CPU can push onto it. */
static __attribute__((noinline)) void kheap_cpu_drain(unsigned cpu, size_t ci)
{
    uintptr_t state = kheap_port_lock();
    kcache_cpu_drain(&kheap_kcache, cpu, ci);
    kheap_port_unlock(state);
}

/* A small object of class ci from this CPU's magazine; *done false when
 * the port gives no CPU. */
static void* kheap_cpu_alloc(size_t ci, bool* done)
{
    uintptr_t section;
    unsigned cpu = kheap_port_cpu_enter(&section);
    void* ptr = NULL;
    *done = cpu < PEACHOS_KCACHE_CPUS;
    if (KCACHE_LIKELY(*done)) {
        ptr = kcache_cpu_alloc_fast(&kheap_kcache, cpu, ci);
        if (KCACHE_UNLIKELY(ptr == NULL)) {
            ptr = kheap_cpu_refill(cpu, ci);
        }
    }
    kheap_port_cpu_leave(section);
    return ptr;
}

/* True if ptr was a live small object, now on this CPU's magazine;
 * anything else (blocks, bad frees) is left to the locked path. */
static bool kheap_cpu_free(void* ptr)
{
    uintptr_t section;
    unsigned cpu = KHEAP_PORT_CPU_ENTER(&section);
    int res = KCACHE_LIKELY(cpu < PEACHOS_KCACHE_CPUS) ? kcache_cpu_free_fast(&kheap_kcache, cpu, ptr) : -1;
    if (KCACHE_UNLIKELY(res > 0)) {
        kheap_cpu_drain(cpu, (size_t)res - 1);
    }
    KHEAP_PORT_CPU_LEAVE(section);
    return res >= 0;
}

/* Give back what this CPU's magazines hold (the heap is full, or trim);
 * with the lock held. */
static void kheap_cpu_flush_self(unsigned cpu)
{
    if (kheap_is_ready && cpu < PEACHOS_KCACHE_CPUS) {
        kcache_cpu_flush(&kheap_kcache, cpu);
    }
}

void kheap_cpu_flush(unsigned cpu)
{
    uintptr_t state = kheap_port_lock();
    kheap_cpu_flush_self(cpu);
    kheap_port_unlock(state);
}
#define KHEAP_CPU_ENTER(section) kheap_port_cpu_enter(section)
#define KHEAP_CPU_LEAVE(section) kheap_port_cpu_leave(section)
#define KHEAP_CPU_FLUSH(cpu) kheap_cpu_flush_self(cpu)
#else
#define KHEAP_CPU_ENTER(section) (*(section) = 0, 0u)
#define KHEAP_CPU_LEAVE(section) ((void)(section))
#define KHEAP_CPU_FLUSH(cpu) ((void)(cpu))
#endif

/* alloc(size) under the lock; with the magazines, when the heap is full,
 * once more after this CPU's magazines are given back (they may hold the
 * last objects of slabs that then go back to the heap). */
static void* kheap_locked_retry(size_t size, void* (*alloc)(size_t))
{
    uintptr_t section;
    unsigned cpu = KHEAP_CPU_ENTER(&section);
    uintptr_t state = kheap_port_lock();
    void* ptr = kheap_is_ready ? alloc(size) : NULL;
#if PEACHOS_KCACHE_MAGAZINES
    if (ptr == NULL && size != 0 && kheap_is_ready) {
        KHEAP_CPU_FLUSH(cpu);
        ptr = alloc(size);
    }
#else
    (void)cpu;
#endif
    kheap_port_unlock(state);
    KHEAP_CPU_LEAVE(section);
    return ptr;
}

static void* kheap_blocks_locked(size_t size)
{
    return KHEAP_BLOCKS(size);
}

void* kpalloc(size_t size)
{
    return kheap_locked_retry(size, kheap_blocks_locked);
}

/* Zero the first `bytes` bytes of fresh memory (ours: no lock needed). */
static void* kheap_zeroed(void* ptr, size_t bytes)
{
    if (ptr != NULL) {
        memset(ptr, 0x00, bytes);
    }
    return ptr;
}

/* The bytes of the whole blocks that hold `size` bytes. Zeroing all of them,
 * not only the `size` asked for, matters when the last block is mapped into
 * user space: its tail must not show what the kernel kept there before. */
static size_t kheap_block_bytes(size_t size)
{
    size_t tail = size % PEACHOS_HEAP_BLOCK_SIZE;
    return tail == 0 || size > SIZE_MAX - PEACHOS_HEAP_BLOCK_SIZE ? size : size - tail + PEACHOS_HEAP_BLOCK_SIZE;
}

void* kpzalloc(size_t size)
{
    return kheap_zeroed(kpalloc(size), kheap_block_bytes(size));
}

#if PEACHOS_KHEAP_CACHES
static void* kheap_small_locked(size_t size)
{
    return KHEAP_SMALL(size);
}

/* kmalloc_small past the magazine's fast path (out of line, so that the
 * fast path saves no registers): any class on this CPU's magazine,
 * refilled under the lock if need be, or, without a CPU, under the lock. */
static KHEAP_COLD void* kheap_small_slow(size_t size)
{
#if PEACHOS_KCACHE_MAGAZINES
    size_t ci = kcache_class_of(size);
    if (ci < KCACHE_CLASSES && kheap_is_ready) {
        bool done;
        void* ptr = kheap_cpu_alloc(ci, &done);
        if (done) {
            return ptr;
        }
    }
#endif
    return kheap_locked_retry(size, kheap_small_locked);
}

void* kmalloc_small(size_t size)
{
#if PEACHOS_KCACHE_MAGAZINES
    /* No test of kheap_is_ready: until kheap_init succeeds every
     * magazine is empty and kcache_cpu_free_fast takes no pointer. */
    if (KCACHE_LIKELY(size - 1 < KCACHE_SMALL_MAX)) {
        uintptr_t section;
        unsigned cpu = KHEAP_PORT_CPU_ENTER(&section);
        void* ptr = KCACHE_LIKELY(cpu < PEACHOS_KCACHE_CPUS)
                        ? kcache_cpu_alloc_fast(&kheap_kcache, cpu, (size - 1) / KCACHE_SMALL_STEP)
                        : NULL;
        KHEAP_PORT_CPU_LEAVE(section);
        if (KCACHE_LIKELY(ptr != NULL)) {
            return ptr;
        }
    }
#endif
    return kheap_small_slow(size);
}

void* kzalloc_small(size_t size)
{
    return kheap_zeroed(kmalloc_small(size), size);
}
#endif

/*
 * The window (kheap_vmalloc.c): it owns every pointer in its range, and
 * takes the block requests no region can serve contiguously.
 */
#if PEACHOS_KHEAP_VMALLOC
#define KHEAP_VM_OWNS(ptr) kheap_vm_owns(ptr)
#define KHEAP_VM_FALLBACK(ptr, size) ((ptr) != NULL || (size) == 0 ? (ptr) : kheap_window_alloc(size))

/* krealloc under the lock: a window pointer stays in the window; heap
 * memory that cannot grow where it is nor move to a run goes there. */
static void* kheap_realloc_any(void* ptr, size_t size)
{
    if (kheap_vm_owns(ptr)) {
        return kheap_vm_realloc(ptr, size);
    }
    void* moved = KHEAP_REALLOC(ptr, size);
    size_t have = moved == NULL && size != 0 ? KHEAP_SIZE(ptr) : 0;
    if (have != 0 && (moved = kheap_vm_alloc(size)) != NULL) {
        memcpy(moved, ptr, have < size ? have : size);
        KHEAP_FREE(ptr);
    }
    return moved;
}
#define KHEAP_REALLOC_ANY(ptr, size) kheap_realloc_any((ptr), (size))
#define KHEAP_VM_SIZE(ptr) kheap_vm_size(ptr)
#define KHEAP_VM_FREE(ptr) kheap_vm_free(ptr)
#else
#define KHEAP_VM_OWNS(ptr) ((void)(ptr), false)
#define KHEAP_VM_SIZE(ptr) ((void)(ptr), (size_t)0)
#define KHEAP_VM_FREE(ptr) ((void)(ptr))
#define KHEAP_VM_FALLBACK(ptr, size) ((void)(size), (ptr))
#define KHEAP_REALLOC_ANY(ptr, size) KHEAP_REALLOC((ptr), (size))
#endif

void* kmalloc(size_t size)
{
#if PEACHOS_KMALLOC_SMALL_OBJECTS
    void* ptr = kmalloc_small(size);
#else
    void* ptr = kpalloc(size);
#endif
    return KHEAP_VM_FALLBACK(ptr, size);
}

void* kzalloc(size_t size)
{
#if PEACHOS_KMALLOC_SMALL_OBJECTS
    return kheap_zeroed(kmalloc(size), size);
#else
    return kheap_zeroed(kmalloc(size), kheap_block_bytes(size)); /* kpzalloc, or the window */
#endif
}

void* kcalloc(size_t n, size_t size)
{
    if (size != 0 && n > SIZE_MAX / size) {
        return NULL;
    }
    return kzalloc(n * size);
}

void* krealloc(void* ptr, size_t size)
{
    if (ptr == NULL) {
        return kmalloc(size); /* whatever kmalloc hands out in this configuration */
    }
    uintptr_t state = kheap_port_lock();
    void* moved = kheap_is_ready ? KHEAP_REALLOC_ANY(ptr, size) : NULL;
    kheap_port_unlock(state);
    return moved;
}

size_t ksize(const void* ptr)
{
    uintptr_t state = kheap_port_lock();
    size_t size = !kheap_is_ready ? 0 : KHEAP_VM_OWNS(ptr) ? KHEAP_VM_SIZE(ptr) : KHEAP_SIZE(ptr);
    kheap_port_unlock(state);
    return size;
}

static KHEAP_COLD void kheap_free_locked(void* ptr);

void kfree(void* ptr)
{
#if PEACHOS_KCACHE_MAGAZINES
    if (KCACHE_LIKELY(kheap_cpu_free(ptr))) {
        return;
    }
#endif
    kheap_free_locked(ptr);
}

/* kfree under the lock: block allocations, the window, and every refusal. */
static KHEAP_COLD void kheap_free_locked(void* ptr)
{
    uintptr_t state = kheap_port_lock();
    if (kheap_is_ready && KHEAP_VM_OWNS(ptr)) {
        KHEAP_VM_FREE(ptr);
    } else if (kheap_is_ready) {
        KHEAP_FREE(ptr);
    }
    kheap_port_unlock(state);
}

size_t kheap_trim(void)
{
#if PEACHOS_KHEAP_CACHES
    uintptr_t section;
    unsigned cpu = KHEAP_CPU_ENTER(&section);
    uintptr_t state = kheap_port_lock();
    KHEAP_CPU_FLUSH(cpu); /* this CPU's magazines first: they may hold a slab's last objects */
    size_t freed = kheap_is_ready ? kcache_trim(&kheap_kcache) : 0;
    kheap_port_unlock(state);
    KHEAP_CPU_LEAVE(section);
    return freed;
#else
    return 0; /* no caches, no spare slabs */
#endif
}
