/*
 * memory.h - the byte-level helpers a kernel needs (no libc here): the three
 * that PeachOS's memory.c has, with the same names.
 */
#ifndef PEACHOS_MEMORY_H
#define PEACHOS_MEMORY_H

#include <stddef.h>

/* Fill `size` bytes at `ptr` with (unsigned char)c; returns ptr. Any size_t. */
void* memset(void* ptr, int c, size_t size);

/* Copy `size` bytes from `src` to `dst` (must not overlap); returns dst. */
void* memcpy(void* dst, const void* src, size_t size);

/* Compare `size` bytes as unsigned chars: <0, 0 or >0 as the first byte
 * that differs is smaller in `a`, none differs, or it is larger in `a`.
 * (PeachOS's own memcmp answers -1 / 0 / 1, which is one choice of these.) */
int memcmp(const void* a, const void* b, size_t size);

#endif /* PEACHOS_MEMORY_H */
