/*
 * bench/alloc_malloc.c - malloc/free of whatever malloc this binary is
 * linked with: built three times by mk/bench.mk,
 *   bench-glibc     plain libc
 *   bench-jemalloc  -ljemalloc  (Debian's jemalloc replaces malloc/free)
 *   bench-mimalloc  -lmimalloc  (Debian's mimalloc replaces malloc/free)
 * with BENCH_MALLOC_NAME naming the allocator and BENCH_MALLOC_LIB a
 * substring of the shared object that must provide malloc; the binary
 * refuses to run if the dynamic linker picked another one.
 *
 * These allocators grow on demand: there is no fixed heap. The workloads
 * give them the same trace, so the same live set in bytes as the block
 * heaps, which is what "heap size" and "occupancy" mean for them.
 */
#include "bench.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef BENCH_MALLOC_NAME
#define BENCH_MALLOC_NAME "glibc"
#endif
#ifndef BENCH_MALLOC_LIB
#define BENCH_MALLOC_LIB "libc.so"
#endif

static char malloc_description[512];

static const char* malloc_describe(void)
{
    if (malloc_description[0] != '\0') {
        return malloc_description;
    }
    void* sym = dlsym(RTLD_DEFAULT, "malloc");
    Dl_info info;
    const char* where = (sym != NULL && dladdr(sym, &info) != 0 && info.dli_fname != NULL) ? info.dli_fname : "?";
    if (strstr(where, BENCH_MALLOC_LIB) == NULL) {
        fprintf(stderr, "bench: malloc comes from %s, expected %s\n", where, BENCH_MALLOC_LIB);
        exit(2);
    }
    snprintf(malloc_description, sizeof(malloc_description), "malloc/free from %s", where);
    return malloc_description;
}

static int malloc_create(size_t blocks)
{
    (void)blocks;
    (void)malloc_describe(); /* exits if the wrong malloc is linked in */
    return 0;
}

static void* malloc_alloc(size_t bytes)
{
    return malloc(bytes);
}

static void malloc_release(void* ptr)
{
    free(ptr);
}

static void malloc_destroy(void)
{
}

static const struct bench_allocator bench_malloc = {
    BENCH_MALLOC_NAME, false, malloc_create, malloc_alloc, malloc_release, NULL, NULL, malloc_destroy,
    malloc_describe, NULL,
};
BENCH_ALLOCATOR(bench_malloc)
