/*
 * memory.h - the few byte-level helpers the kernel needs (no libc here).
 */
#ifndef PEACHOS_MEMORY_H
#define PEACHOS_MEMORY_H

#include <stddef.h>

/* Fill `size` bytes at `ptr` with (unsigned char)c; returns ptr. Any size_t. */
void* memset(void* ptr, int c, size_t size);

/* Copy `size` bytes from `src` to `dst` (must not overlap); returns dst. */
void* memcpy(void* dst, const void* src, size_t size);

#endif /* PEACHOS_MEMORY_H */
