/*
 * vga.h - VGA text mode (80x25 at 0xB8000), with scrolling.
 */
#ifndef PEACHOS_KERNEL_VGA_H
#define PEACHOS_KERNEL_VGA_H

#include <stdint.h>

#define VGA_WIDTH 80
#define VGA_HEIGHT 25

/* Clear the screen, light grey on black. */
void vga_init(void);
/* Colour of the next characters: VGA attribute (background << 4 | foreground). */
void vga_set_color(uint8_t attribute);
/* Write one character: '\n' new line, '\r' column 0, '\t' to the next multiple of 8. */
void vga_putc(char c);

#endif /* PEACHOS_KERNEL_VGA_H */
