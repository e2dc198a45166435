/*
 * tools/demo/demo.c - hosted demo: create the kernel heap (mmap'd), run a
 * short workload, print statistics, heap_check and the heap map.
 */
#include <stdio.h>
#include <stdlib.h>

#include "hosted/kheap_hosted.h"
#include "status.h"
#include "memory/heap/heap_status.h"

static void demo_write(void* ctx, const char* text, size_t len)
{
    fwrite(text, 1, len, (FILE*)ctx);
}

int main(void)
{
    kheap_init();
    if (!kheap_ready()) {
        return 1;
    }
    void* live[512] = { 0 };
    unsigned seed = 42;
    for (int i = 0; i < 4096; i++) {
        seed = seed * 1103515245u + 12345u;
        size_t slot = (seed >> 8) % 512;
        if (live[slot] != NULL) {
            kfree(live[slot]);
            live[slot] = NULL;
        } else {
            live[slot] = kmalloc(((seed >> 16) % 64 + 1) * PEACHOS_HEAP_BLOCK_SIZE - (seed % 100));
        }
    }
    struct heap* heap = kheap_get();
    struct heap_stats s;
    heap_get_stats(heap, &s);
    size_t bad = 0;
    int check = heap_check(heap, &bad);
    printf("blocks: %zu total, %zu used, %zu free, largest free run %zu; %zu allocations live\n", s.total_blocks,
           s.used_blocks, s.free_blocks, s.largest_free_run, s.live_allocations);
    printf("heap_check: %s\n", check == 0 ? "clean" : "CORRUPT");
    heap_dump_map(heap, demo_write, stdout, 0, 64, 16);
    return check == 0 ? 0 : 1;
}
