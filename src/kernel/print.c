/*
 * print.c - console output to serial and VGA, and a small printf.
 */
#include "print.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include "serial.h"
#include "vga.h"

/* printk reads each argument at the size the caller passed it: int, long
 * (l, and z: size_t is the size of long on i686 and on x86_64) or long long.
 * On i686 (ILP32) int and long are one size, so it reads there what it
 * always read; on x86_64 (LP64, the 64-bit kernel) an int is not a long. */
_Static_assert(sizeof(size_t) == sizeof(long), "printk reads %zu as a long");

void print_init(void)
{
    serial_init();
    vga_init();
}

static void print_char(char c)
{
    serial_putc(c);
    vga_putc(c);
}

void print_n(const char* text, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        print_char(text[i]);
    }
}

void print_writer(void* ctx, const char* text, size_t len)
{
    (void)ctx;
    print_n(text, len);
}

void print(const char* text)
{
    while (*text != '\0') {
        print_char(*text++);
    }
}

static void print_number(uint64_t value, unsigned base, bool negative, unsigned width, char pad)
{
    char buf[24];
    size_t n = 0;
    do {
        buf[n++] = "0123456789abcdef"[value % base];
        value /= base;
    } while (value != 0 && n < sizeof(buf));
    if (negative) {
        if (pad == '0') {
            print_char('-');
        } else {
            buf[n++] = '-';
        }
        width = width > 0 ? width - 1 : 0;
    }
    while (n < width) {
        print_char(pad);
        width--;
    }
    while (n > 0) {
        print_char(buf[--n]);
    }
}

void vprintk(const char* format, va_list* args)
{
    for (const char* p = format; *p != '\0'; p++) {
        if (*p != '%') {
            print_char(*p);
            continue;
        }
        p++;
        char pad = ' ';
        unsigned width = 0;
        if (*p == '0') {
            pad = '0';
            p++;
        }
        while (*p >= '0' && *p <= '9') {
            width = width * 10 + (unsigned)(*p - '0');
            p++;
        }
        int longs = 0; /* l: 1, ll: 2, z: 1 */
        while (*p == 'l' || *p == 'z') {
            longs++;
            p++;
        }
        switch (*p) {
        case 's': {
            const char* s = va_arg(*args, const char*);
            s = s == NULL ? "(null)" : s;
            size_t len = 0;
            while (s[len] != '\0') {
                len++;
            }
            for (; len < width; width--) {
                print_char(' ');
            }
            print(s);
            break;
        }
        case 'c':
            print_char((char)va_arg(*args, int));
            break;
        case 'd':
        case 'i': {
            int64_t v = longs >= 2 ? va_arg(*args, long long) : longs == 1 ? va_arg(*args, long) : va_arg(*args, int);
            print_number(v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v, 10, v < 0, width, pad);
            break;
        }
        case 'u':
        case 'x': {
            uint64_t v = longs >= 2   ? va_arg(*args, unsigned long long)
                         : longs == 1 ? va_arg(*args, unsigned long)
                                      : va_arg(*args, unsigned);
            print_number(v, *p == 'x' ? 16 : 10, false, width, pad);
            break;
        }
        case 'p':
            print("0x");
            print_number((uintptr_t)va_arg(*args, void*), 16, false, 8, '0');
            break;
        case '%':
            print_char('%');
            break;
        case '\0':
            p--;
            break;
        default:
            print_char('%');
            print_char(*p);
            break;
        }
    }
}

void printk(const char* format, ...)
{
    va_list args;
    va_start(args, format);
    vprintk(format, &args);
    va_end(args);
}
