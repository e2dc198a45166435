/*
 * print.h - kernel console output: every character goes to COM1 (serial) and
 * to the VGA text screen.
 */
#ifndef PEACHOS_KERNEL_PRINT_H
#define PEACHOS_KERNEL_PRINT_H

#include <stdarg.h>
#include <stddef.h>

/* Initialise serial and VGA. */
void print_init(void);

/* Print a NUL-terminated string. */
void print(const char* text);

/* Print `len` bytes (a heap_write_fn-compatible writer is print_writer). */
void print_n(const char* text, size_t len);
void print_writer(void* ctx, const char* text, size_t len);

/*
 * Minimal printf: %s %c %d %i %u %x %p %%, with an optional width and
 * '0' flag (e.g. %08x), and the length modifiers l, z (size_t) and ll
 * (64-bit: needs the compiler runtime's __udivdi3/__umoddi3, see
 * docs/kernel.md).
 */
void printk(const char* format, ...) __attribute__((format(printf, 1, 2)));

/* printk with the arguments already in a va_list (panic's formatted message),
 * taken by pointer: va_arg advances the caller's list, and the type says so. */
void vprintk(const char* format, va_list* args);

#endif /* PEACHOS_KERNEL_PRINT_H */
