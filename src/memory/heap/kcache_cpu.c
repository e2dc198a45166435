/*
 * kcache_cpu.c - per-CPU magazines in front of the small-object caches
 * (PEACHOS_KCACHE_MAGAZINES=1; docs/kcache.md, "Magazines").
 *
 * Each CPU keeps, per class, a stack of up to KCACHE_MAG_SIZE free objects
 * that are taken in their slabs (so no other CPU and no slab search can
 * hand them out) but not live (so a kfree of one is still refused). The
 * common kmalloc_small pops one and sets its live bit; the common kfree
 * clears the live bit and pushes the object: no lock, only the CPU's own
 * section (interrupts off in a kernel). The global lock is taken once per
 * KCACHE_MAG_BATCH objects, to refill an empty magazine from the slabs or
 * to drain a full one back into them.
 *
 * Why a kfree stays exact without the lock: the live bit of an address is
 * set exactly while the caller holds an object starting there, and it is
 * cleared by one atomic test-and-clear. A clear bit (never allocated,
 * freed already, interior or in no slab) sends the pointer to the locked
 * path, which refuses and reports it with its kind; of two racing frees of
 * one object, one wins. Once the bit is cleared the object is still taken,
 * so its slab cannot be given back and its record can be read unlocked.
 */
#include "kcache_cpu.h"

#if PEACHOS_KCACHE_MAGAZINES

/* Half a magazine's worth of free objects of class ci into the empty
 * magazine, the lowest slots on top; how many. */
static uint32_t kcache_cpu_fill(struct kcache* kc, struct kcache_mag* m, size_t ci)
{
    void* taken[KCACHE_MAG_BATCH];
    uint32_t n = 0;
    while (n < m->limit / 2 && (taken[n] = kcache_take(kc, ci)) != NULL) {
        n++;
    }
    for (uint32_t i = 0; i < n; i++) {
        m->objects[i] = taken[n - 1 - i];
    }
    m->count = n;
    return n;
}

void* kcache_cpu_alloc_locked(struct kcache* kc, unsigned cpu, size_t ci)
{
    if (KCACHE_UNLIKELY(kc->flags & KCACHE_FLAG_POISON)) {
        return kcache_alloc_small(kc, ci); /* poison is checked object by object, unbatched */
    }
    struct kcache_mag* m = kcache_mag(kc, cpu, ci);
    if (m->count == 0 && kcache_cpu_fill(kc, m, ci) == 0) {
        /* The heap is full: what this CPU holds may free a slab. */
        if (kcache_cpu_flush(kc, cpu) == 0 || kcache_cpu_fill(kc, m, ci) == 0) {
            return NULL;
        }
    }
    return kcache_cpu_alloc_fast(kc, cpu, ci);
}

/* The oldest half a magazine's worth of objects back into their slabs. */
void kcache_cpu_drain(struct kcache* kc, unsigned cpu, size_t ci)
{
    struct kcache_mag* m = kcache_mag(kc, cpu, ci);
    uint32_t n = m->count < m->limit / 2 ? m->count : m->limit / 2;
    for (uint32_t i = 0; i < n; i++) {
        kcache_put(kc, m->objects[i]);
    }
    for (uint32_t i = n; i < m->count; i++) {
        m->objects[i - n] = m->objects[i];
    }
    m->count -= n;
}

size_t kcache_cpu_flush(struct kcache* kc, unsigned cpu)
{
    size_t n = 0;
    for (size_t ci = 0; ci < KCACHE_CLASSES; ci++) {
        n += kcache_mag(kc, cpu, ci)->count;
        while (kcache_mag(kc, cpu, ci)->count != 0) {
            kcache_cpu_drain(kc, cpu, ci);
        }
    }
    return n;
}

size_t kcache_cpu_held(const struct kcache* kc, size_t ci)
{
    size_t n = 0;
    for (size_t cpu = 0; cpu < PEACHOS_KCACHE_CPUS; cpu++) {
        n += kc->cpus[cpu].mags[ci].count;
    }
    return n;
}

void kcache_set_busy(struct kcache* kc, kcache_busy_fn busy)
{
    kc->busy = busy;
}

#else
/* ISO C wants a declaration in every translation unit. */
typedef int kcache_cpu_unused;
#endif
