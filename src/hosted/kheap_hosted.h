/*
 * hosted/kheap_hosted.h - knobs of the hosted kheap port (tests, tools).
 */
#ifndef PEACHOS_KHEAP_HOSTED_H
#define PEACHOS_KHEAP_HOSTED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../memory/heap/heap_index.h"
#include "../memory/heap/kheap.h"
#include "../memory/heap/kheap_port.h"

/* Build knob: 1 makes the port define no per-CPU hooks
 * (kheap_port_cpu_enter/_leave, kheap_port_cpus_busy), so that kheap.c's
 * weak defaults are linked: a port without CPUs, every kmalloc_small and
 * kfree on the locked path (test_kcache_mag's no-CPU build, mk/unit.mk).
 * Not with PEACHOS_KHEAP_PORT_CPU_HEADER="hosted/kheap_port_cpu.h". */
#ifndef PEACHOS_HOSTED_NO_CPUS
#define PEACHOS_HOSTED_NO_CPUS 0
#endif

struct kheap_hosted_config
{
    size_t heap_bytes; /* pool size for the next kheap_init (rounded down to blocks) */
    bool indexed;      /* give the heap a placement index */
    bool fail_init;    /* make the next kheap_init fail, as a bad platform would */
    bool quiet;        /* do not print reports on stderr (they are still recorded) */
};

/* Applies from the next kheap_init(). */
/* Set the next kheap_init's region. Also releases the kheap lock if this
 * thread still holds it: a test that failed while holding it (cmocka jumps
 * out of the test) must not block the next one. */
void kheap_hosted_configure(const struct kheap_hosted_config* config);

/* Several regions (PEACHOS_KHEAP_REGIONS > 0): from the next kheap_init,
 * `count` regions of pool_bytes[k] bytes each, every one its own mapping
 * laid out as the single region is (pool, guard page, table, index), the
 * first one the caches' home; count 0 goes back to the one region of
 * kheap_hosted_configure. The config's indexed, fail_init and quiet still
 * apply. Returns 0, or -EINVARG for more than 16 regions. */
int kheap_hosted_configure_regions(const size_t* pool_bytes, size_t count);

/* From the next kheap_init, give kheap no slab table (on = true), as a
 * port that has no memory for one: kheap then takes it from the top of the
 * pool, which shrinks. Off again with false. */
void kheap_hosted_slab_table_from_pool(bool on);

/* Refused frees reported so far, and the last one. */
size_t kheap_hosted_report_count(void);
struct heap_report kheap_hosted_last_report(void);

/* Make the next kheap_port_region() hand kheap_init a region it must refuse
 * (kheap.c's check of what a port returns). One-shot. */
enum kheap_hosted_bad_region
{
    KHEAP_HOSTED_REGION_OK,
    KHEAP_HOSTED_REGION_NO_TABLE,         /* table == NULL */
    KHEAP_HOSTED_REGION_END_BEFORE_START, /* end < start */
};
void kheap_hosted_bad_region(enum kheap_hosted_bad_region how);

/*
 * Fault injection on the kernel heap's internal allocations:
 * let `successes` attempts at the sites in `site_mask` (bit 1 << site, site
 * from enum kcache_fault_site; KHEAP_HOSTED_FAIL_ALL for all) through, then
 * fail every later one until kheap_hosted_fail_reset(). Survives kheap_init.
 */
#define KHEAP_HOSTED_FAIL_ALL                                                                      \
    ((1u << KCACHE_FAULT_SLAB) | (1u << KCACHE_FAULT_BLOCKS) | (1u << KCACHE_FAULT_GROW) |         \
     (1u << KCACHE_FAULT_MOVE))
void kheap_hosted_fail_after(size_t successes, unsigned site_mask);
void kheap_hosted_fail_reset(void);
/* Attempts failed on purpose since the last kheap_hosted_fail_after. */
size_t kheap_hosted_failures(void);

/* How many times the heap's lock has been taken (benchmarks: the
 * per-CPU magazines should take it once per many calls). */
size_t kheap_hosted_lock_count(void);

#endif /* PEACHOS_KHEAP_HOSTED_H */
