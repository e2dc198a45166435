/*
 * memory.c - memset, memcpy and memcmp for a freestanding kernel.
 *
 * Compilers recognise "store c into every byte" loops and replace them with a
 * call to memset - which, here, would be a call to this very function and
 * recurse for ever. GCC does so even with -ffreestanding. The empty asm
 * statements below hide the pointer from the optimiser on every iteration,
 * so no idiom can be recognised whatever flags the including kernel uses.
 * The Makefile checks the object files for an undefined memset/memcpy.
 */
#include "memory.h"

#include <stdint.h>

/* Tell the compiler that `p` may have changed: no loop idiom survives this. */
#define MEMORY_OPAQUE(p) __asm__ volatile("" : "+r"(p))

/* A word that may alias any object, so word stores are defined behaviour. */
typedef uintptr_t __attribute__((may_alias)) memory_word;

void* memset(void* ptr, int c, size_t size)
{
    unsigned char* p = (unsigned char*)ptr;
    unsigned char byte = (unsigned char)c;

    /* Byte stores until p is word-aligned, then whole words, then the tail. */
    while (size > 0 && ((uintptr_t)p % sizeof(uintptr_t)) != 0) {
        *p++ = byte;
        size--;
        MEMORY_OPAQUE(p);
    }
    memory_word word = (memory_word)-1 / 0xFF * byte; /* byte in every lane */
    while (size >= sizeof(uintptr_t)) {
        *(memory_word*)(void*)p = word;
        p += sizeof(uintptr_t);
        size -= sizeof(uintptr_t);
        MEMORY_OPAQUE(p);
    }
    while (size > 0) {
        *p++ = byte;
        size--;
        MEMORY_OPAQUE(p);
    }
    return ptr;
}

void* memcpy(void* dst, const void* src, size_t size)
{
    unsigned char* d = (unsigned char*)dst;
    const unsigned char* s = (const unsigned char*)src;

    for (size_t i = 0; i < size; i++) {
        d[i] = s[i];
        MEMORY_OPAQUE(d);
    }
    return dst;
}

int memcmp(const void* a, const void* b, size_t size)
{
    const unsigned char* x = (const unsigned char*)a;
    const unsigned char* y = (const unsigned char*)b;

    for (size_t i = 0; i < size; i++) {
        MEMORY_OPAQUE(x);
        if (x[i] != y[i]) {
            return x[i] < y[i] ? -1 : 1;
        }
    }
    return 0;
}
