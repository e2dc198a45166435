/*
 * kheap_vmalloc.c - the kernel heap's virtually contiguous allocations
 * (PEACHOS_KHEAP_VMALLOC = 1, heap_config.h; empty otherwise, so the
 * default kernel heap never links kvmalloc.c).
 *
 * The port's window (kheap_port_window) becomes a kvmalloc whose sources
 * are the kernel heap's regions, all of them, lowest address first (or
 * the one heap). kheap.c sends it the requests no region could hold
 * contiguously, and every pointer inside the window's range; the window
 * refuses and reports a bad one through the kernel heap's report hook.
 * kvmalloc() asks for contiguous blocks first, as kmalloc does.
 */
#include "kheap_vmalloc.h"

#if PEACHOS_KHEAP_VMALLOC
#include "heap_status.h"
#include "kheap.h"
#include "kvmalloc.h"
#if PEACHOS_KHEAP_REGIONS
#include "kheap_regions.h"
#endif

static struct kvmalloc kernel_window;
static bool kernel_window_ready;  /* kvmalloc_init took the port's window */
static bool kernel_window_paging; /* and the port's paging hooks may run */

int kheap_default_window(struct kheap_window* window)
{
    (void)window;
    return -EIO; /* a port without paging hooks: no window */
}

int kheap_port_window(struct kheap_window* window) __attribute__((weak, alias("kheap_default_window")));

/* The kernel heap's regions (or its one heap) as the window's sources. */
static int kheap_vm_add_sources(void)
{
#if PEACHOS_KHEAP_REGIONS
    struct multiheap* mh = kheap_regions();
    for (size_t k = 0; k < mh->count; k++) {
        if (kvmalloc_add_source(&kernel_window, multiheap_region(mh, k)) < 0) {
            return -EINVARG;
        }
    }
    return PEACHOS_ALL_OK;
#else
    return kvmalloc_add_source(&kernel_window, kheap_get());
#endif
}

void kheap_vm_create(heap_report_fn report)
{
    struct kheap_window w = { 0 }; /* a field the port leaves alone stays 0 */
    kernel_window_ready = false;
    if (kheap_port_window(&w) < 0) {
        return;
    }
    if (kvmalloc_init(&kernel_window, w.start, w.end, w.table, w.index, w.index_bytes, w.backing, &w.ops) < 0 ||
        kheap_vm_add_sources() < 0) {
        kheap_port_print("kheap: the port's window was refused: no virtually contiguous allocations\n");
        return;
    }
    kvmalloc_set_report(&kernel_window, report, NULL);
    kernel_window_paging = !w.after_paging;
    kernel_window_ready = true;
}

void kheap_window_paging_on(void)
{
    uintptr_t state = kheap_lock();
    kernel_window_paging = true;
    kheap_unlock(state);
}

bool kheap_vm_owns(const void* ptr)
{
    return kernel_window_ready && kvmalloc_owns(&kernel_window, ptr);
}

/* In first-only mode the window, too, draws on the first region alone, so
 * that a full first region is full, as with one region. */
void* kheap_vm_alloc(size_t size)
{
#if PEACHOS_KHEAP_REGIONS
    const struct heap* only = kheap_regions_first_only_now() ? kheap_regions_first() : NULL;
#else
    const struct heap* only = NULL;
#endif
    return kernel_window_ready && kernel_window_paging ? kvmalloc_alloc_from(&kernel_window, size, only) : NULL;
}

void kheap_vm_free(void* ptr)
{
    kvmalloc_free(&kernel_window, ptr);
}

size_t kheap_vm_size(const void* ptr)
{
    return kvmalloc_size(&kernel_window, ptr);
}

void* kheap_vm_realloc(void* ptr, size_t size)
{
    return kvmalloc_realloc(&kernel_window, ptr, size);
}

int kheap_vm_check(size_t* bad)
{
    return kernel_window_ready ? kvmalloc_check(&kernel_window, bad) : PEACHOS_ALL_OK;
}

void* kheap_window_alloc(size_t size)
{
    uintptr_t state = kheap_lock();
    void* ptr = kheap_ready() ? kheap_vm_alloc(size) : NULL;
    kheap_unlock(state);
    return ptr;
}

struct kvmalloc* kheap_window(void)
{
    return kheap_ready() && kernel_window_ready ? &kernel_window : NULL;
}

void* kvmalloc(size_t size)
{
    void* ptr = kpalloc(size);
    return ptr != NULL || size == 0 ? ptr : kheap_window_alloc(size);
}

void kvfree(void* ptr)
{
    kfree(ptr);
}
#endif
