/*
 * hosted/kheap_port.c - kheap on a POSIX host: the arena, table and index
 * come from mmap, the lock is a pthread mutex, reports go to stderr. Lets
 * the same kheap.c run in host tests, fuzzers and benchmarks.
 *
 * Test hooks: kheap_hosted_configure() picks the heap size (default
 * PEACHOS_HEAP_SIZE_BYTES), whether to index it, and can make the next
 * kheap_init fail.
 */
#define _DEFAULT_SOURCE
#include "kheap_hosted.h"

#include <pthread.h>
#include <stdio.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "../status.h"
#include "../memory/heap/heap_status.h"
#include "../memory/heap/kheap_regions.h"
#if PEACHOS_KCACHE_MAGAZINES && !PEACHOS_HOSTED_NO_CPUS
#include "kheap_port_cpu.h"
#endif

static pthread_mutex_t kheap_hosted_mutex = PTHREAD_MUTEX_INITIALIZER;
static struct kheap_hosted_config kheap_hosted_config = { PEACHOS_HEAP_SIZE_BYTES, true, false, false };
/* The mappings of the current heap: one per region. */
#define KHEAP_HOSTED_MAPS 16
static void* kheap_hosted_mapping[KHEAP_HOSTED_MAPS];
static size_t kheap_hosted_mapping_bytes[KHEAP_HOSTED_MAPS];
static size_t kheap_hosted_maps;
/* kheap_hosted_configure_regions: pool bytes of each region (0 regions:
 * the one region of kheap_hosted_config). */
static size_t kheap_hosted_region_bytes[KHEAP_HOSTED_MAPS];
static size_t kheap_hosted_region_count;
static size_t kheap_hosted_reports;
static struct heap_report kheap_hosted_last;

/* Who holds the lock: a test that failed an assertion while holding it
 * (cmocka jumps out of the test) must not leave the next test blocked. */
static bool kheap_hosted_locked;
static pthread_t kheap_hosted_owner;

void kheap_hosted_configure(const struct kheap_hosted_config* config)
{
    if (kheap_hosted_locked && pthread_equal(kheap_hosted_owner, pthread_self())) {
        kheap_hosted_locked = false;
        pthread_mutex_unlock(&kheap_hosted_mutex);
    }
    kheap_hosted_config = *config;
}

size_t kheap_hosted_report_count(void)
{
    return kheap_hosted_reports;
}

struct heap_report kheap_hosted_last_report(void)
{
    return kheap_hosted_last;
}

static enum kheap_hosted_bad_region kheap_hosted_bad;

void kheap_hosted_bad_region(enum kheap_hosted_bad_region how)
{
    kheap_hosted_bad = how;
}

int kheap_hosted_configure_regions(const size_t* pool_bytes, size_t count)
{
    if (count > KHEAP_HOSTED_MAPS) {
        return -EINVARG;
    }
    for (size_t k = 0; k < count; k++) {
        kheap_hosted_region_bytes[k] = pool_bytes[k];
    }
    kheap_hosted_region_count = count;
    return PEACHOS_ALL_OK;
}

static void kheap_hosted_unmap(void)
{
    for (size_t k = 0; k < kheap_hosted_maps; k++) {
        munmap(kheap_hosted_mapping[k], kheap_hosted_mapping_bytes[k]);
    }
    kheap_hosted_maps = 0;
}

static bool kheap_hosted_no_slab_table;

void kheap_hosted_slab_table_from_pool(bool on)
{
    kheap_hosted_no_slab_table = on;
}

/* Round up to a multiple of `align`. */
static size_t kheap_hosted_round_up(size_t value, size_t align)
{
    return (value + align - 1) / align * align;
}

/*
 * One mapping: [pool][guard page][table][index][slab table]. The tables and
 * the index live outside the pool, as on bare metal; the inaccessible guard page makes
 * an overrun off the pool's end fault at once instead of silently rewriting
 * the table or the index. (Best effort: if mprotect fails, the layout is the
 * same without the trap.)
 */
static int kheap_hosted_map_region(size_t heap_bytes, struct kheap_region* region)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t pool = heap_bytes / PEACHOS_HEAP_BLOCK_SIZE * PEACHOS_HEAP_BLOCK_SIZE;
    size_t blocks = pool / PEACHOS_HEAP_BLOCK_SIZE;
    size_t guard = kheap_hosted_round_up(pool, page); /* offset of the guard page */
    size_t table = kheap_hosted_round_up(blocks, PEACHOS_HEAP_BLOCK_SIZE);
#if PEACHOS_KHEAP_INDEX
    size_t index = kheap_hosted_config.indexed ? heap_index_bytes(blocks) : 0;
#else
    size_t index = 0; /* kheap built without the index: heap_index.c is not linked */
#endif
#if PEACHOS_KHEAP_CACHES
    size_t slabs = kheap_hosted_round_up(kcache_table_bytes(blocks), sizeof(uintptr_t));
#else
    size_t slabs = 0;
#endif
    size_t bytes = guard + page + table + index + slabs + PEACHOS_HEAP_BLOCK_SIZE;
    /* Shared, so that a test's kvmalloc window can map the pool's pages a
     * second time (mremap with old size 0 copies only shared mappings). */
    void* map = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (map == MAP_FAILED) {
        return -ENOMEM;
    }
    kheap_hosted_mapping[kheap_hosted_maps] = map;
    kheap_hosted_mapping_bytes[kheap_hosted_maps++] = bytes;
    unsigned char* start = (unsigned char*)map; /* page-aligned, so block-aligned */
    (void)mprotect(start + guard, page, PROT_NONE);
    unsigned char* meta = start + guard + page;
    region->start = start;
    region->end = start + pool;
    region->table = meta;
    region->index = index != 0 ? meta + table : NULL;
    region->index_bytes = index;
    bool give = slabs != 0 && !kheap_hosted_no_slab_table;
    region->cache_table = give ? meta + table + kheap_hosted_round_up(index, sizeof(uintptr_t)) : NULL;
    region->cache_table_bytes = give ? slabs : 0;
    return PEACHOS_ALL_OK;
}

int kheap_port_region(struct kheap_region* region)
{
    kheap_hosted_unmap();
    if (kheap_hosted_config.fail_init) {
        return -ENOMEM;
    }
    int res = kheap_hosted_map_region(kheap_hosted_config.heap_bytes, region);
    if (res < 0) {
        return res;
    }
    if (kheap_hosted_bad == KHEAP_HOSTED_REGION_NO_TABLE) {
        region->table = NULL;
    } else if (kheap_hosted_bad == KHEAP_HOSTED_REGION_END_BEFORE_START) {
        void* start = region->start;
        region->start = region->end;
        region->end = start;
    }
    kheap_hosted_bad = KHEAP_HOSTED_REGION_OK;
    return PEACHOS_ALL_OK;
}

#if PEACHOS_KHEAP_REGIONS
/* The regions of kheap_hosted_configure_regions, each its own mapping (so
 * their order by address is mmap's), or the one region of the config. */
int kheap_port_regions(struct kheap_region* regions, size_t max)
{
    if (kheap_hosted_region_count == 0) {
        return kheap_default_regions(regions, max);
    }
    kheap_hosted_unmap();
    if (kheap_hosted_config.fail_init) {
        return -ENOMEM;
    }
    size_t count = kheap_hosted_region_count < max ? kheap_hosted_region_count : max;
    for (size_t k = 0; k < count; k++) {
        int res = kheap_hosted_map_region(kheap_hosted_region_bytes[k], &regions[k]);
        if (res < 0) {
            return res;
        }
    }
    return (int)count;
}
#endif

static size_t kheap_hosted_locks;

size_t kheap_hosted_lock_count(void)
{
    return kheap_hosted_locks;
}

uintptr_t kheap_port_lock(void)
{
    pthread_mutex_lock(&kheap_hosted_mutex);
    kheap_hosted_locks++;
    kheap_hosted_owner = pthread_self();
    kheap_hosted_locked = true;
    return 0;
}

void kheap_port_unlock(uintptr_t state)
{
    (void)state;
    kheap_hosted_locked = false;
    pthread_mutex_unlock(&kheap_hosted_mutex);
}

#if PEACHOS_KCACHE_MAGAZINES && !PEACHOS_HOSTED_NO_CPUS
/*
 * Each thread is a CPU: the first kheap call that wants per-CPU state gives
 * the thread a free number (under the heap's lock, so kheap_check never
 * sees a number appear while it reads), and the thread's exit gives its
 * magazines back and frees the number. Threads beyond PEACHOS_KCACHE_CPUS
 * take the locked path. Nothing needs masking: a thread's magazines are
 * its own.
 */
static uint32_t kheap_hosted_cpus;               /* numbers in use: bit k = CPU k */
_Thread_local unsigned kheap_hosted_cpu = KCACHE_NO_CPU; /* kheap_port_cpu.h reads it inline */
static _Thread_local bool kheap_hosted_cpu_asked;          /* a number was sought (maybe none free) */
static pthread_key_t kheap_hosted_cpu_key;
static pthread_once_t kheap_hosted_cpu_once = PTHREAD_ONCE_INIT;

static void kheap_hosted_cpu_exit(void* value)
{
    unsigned cpu = (unsigned)(uintptr_t)value - 1; /* 0 is no value to a key */
    kheap_cpu_flush(cpu);
    uintptr_t state = kheap_port_lock();
    kheap_hosted_cpus &= ~(1u << cpu);
    kheap_port_unlock(state);
}

static void kheap_hosted_cpu_key_create(void)
{
    (void)pthread_key_create(&kheap_hosted_cpu_key, kheap_hosted_cpu_exit);
}

static unsigned kheap_hosted_cpu_assign(void)
{
    kheap_hosted_cpu_asked = true;
    pthread_once(&kheap_hosted_cpu_once, kheap_hosted_cpu_key_create);
    unsigned cpu = KCACHE_NO_CPU;
    uintptr_t state = kheap_port_lock();
    for (unsigned k = 0; k < PEACHOS_KCACHE_CPUS && cpu == KCACHE_NO_CPU; k++) {
        if (!(kheap_hosted_cpus & (1u << k))) {
            kheap_hosted_cpus |= 1u << k;
            cpu = k;
        }
    }
    kheap_port_unlock(state);
    if (cpu != KCACHE_NO_CPU) {
        (void)pthread_setspecific(kheap_hosted_cpu_key, (void*)(uintptr_t)(cpu + 1));
    }
    kheap_hosted_cpu = cpu;
    return cpu;
}

unsigned kheap_port_cpu_enter(uintptr_t* state)
{
    *state = 0;
    return kheap_hosted_cpu_asked ? kheap_hosted_cpu : kheap_hosted_cpu_assign();
}

void kheap_port_cpu_leave(uintptr_t state)
{
    (void)state;
}

uint32_t kheap_port_cpus_busy(void)
{
    unsigned self = kheap_hosted_cpu;
    return kheap_hosted_cpus & ~(self < PEACHOS_KCACHE_CPUS ? 1u << self : 0u);
}
#endif

void kheap_port_report(const struct heap_report* report)
{
    kheap_hosted_reports++;
    kheap_hosted_last = *report;
    if (!kheap_hosted_config.quiet) {
        /* Diagnostics: if stderr is gone there is nobody left to tell. */
        const char* what = heap_report_action(report->kind);
        (void)fprintf(stderr, "kheap: %s %p (block %zu): reason %d\n", what, report->ptr, report->block,
                      (int)report->kind);
    }
}

void kheap_port_print(const char* message)
{
    (void)fputs(message, stderr);
}

/*
 * Fault injection: a countdown over the library's internal allocations
 * (kcache_fault_site) of the sites in a mask. Without the caches there is
 * no such site, and these do nothing.
 */
#if PEACHOS_KHEAP_CACHES
static size_t kheap_hosted_fail_countdown;
static unsigned kheap_hosted_fail_mask;
static size_t kheap_hosted_failed;

static bool kheap_hosted_fault(void* ctx, enum kcache_fault_site site)
{
    (void)ctx;
    if (!(kheap_hosted_fail_mask & (1u << site))) {
        return false;
    }
    if (kheap_hosted_fail_countdown > 0) {
        kheap_hosted_fail_countdown--;
        return false;
    }
    kheap_hosted_failed++;
    return true;
}

void kheap_hosted_fail_after(size_t successes, unsigned site_mask)
{
    kheap_hosted_fail_countdown = successes;
    kheap_hosted_fail_mask = site_mask;
    kheap_hosted_failed = 0;
    kheap_set_fault(kheap_hosted_fault, NULL);
}

void kheap_hosted_fail_reset(void)
{
    kheap_hosted_fail_mask = 0;
    kheap_set_fault(NULL, NULL);
}

size_t kheap_hosted_failures(void)
{
    return kheap_hosted_failed;
}
#else
void kheap_hosted_fail_after(size_t successes, unsigned site_mask)
{
    (void)successes;
    (void)site_mask;
}

void kheap_hosted_fail_reset(void)
{
}

size_t kheap_hosted_failures(void)
{
    return 0;
}
#endif
