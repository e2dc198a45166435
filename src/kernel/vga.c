/*
 * vga.c - VGA text-mode console: 80x25 cells of (character, attribute) at
 * physical 0xB8000; scrolls up when the cursor passes the last line.
 */
#include "vga.h"

#include <stddef.h>

#include "io.h"

static volatile uint16_t* const vga_buffer = (volatile uint16_t*)0xB8000;
static size_t vga_row;
static size_t vga_col;
static uint8_t vga_attribute = 0x07;

static uint16_t vga_cell(char c, uint8_t attribute)
{
    return (uint16_t)((uint16_t)(unsigned char)c | ((uint16_t)attribute << 8));
}

static void vga_move_cursor(void)
{
    uint16_t pos = (uint16_t)(vga_row * VGA_WIDTH + vga_col);
    outb(0x3D4, 0x0F);
    outb(0x3D5, (uint8_t)(pos & 0xFF));
    outb(0x3D4, 0x0E);
    outb(0x3D5, (uint8_t)(pos >> 8));
}

void vga_init(void)
{
    for (size_t i = 0; i < VGA_WIDTH * VGA_HEIGHT; i++) {
        vga_buffer[i] = vga_cell(' ', vga_attribute);
    }
    vga_row = 0;
    vga_col = 0;
    vga_move_cursor();
}

void vga_set_color(uint8_t attribute)
{
    vga_attribute = attribute;
}

static void vga_newline(void)
{
    vga_col = 0;
    if (vga_row + 1 < VGA_HEIGHT) {
        vga_row++;
        return;
    }
    for (size_t i = 0; i < VGA_WIDTH * (VGA_HEIGHT - 1); i++) {
        vga_buffer[i] = vga_buffer[i + VGA_WIDTH];
    }
    for (size_t i = 0; i < VGA_WIDTH; i++) {
        vga_buffer[VGA_WIDTH * (VGA_HEIGHT - 1) + i] = vga_cell(' ', vga_attribute);
    }
}

static void vga_put_visible(char c)
{
    vga_buffer[vga_row * VGA_WIDTH + vga_col] = vga_cell(c, vga_attribute);
    if (++vga_col == VGA_WIDTH) {
        vga_newline();
    }
}

void vga_putc(char c)
{
    if (c == '\n') {
        vga_newline();
    } else if (c == '\r') {
        vga_col = 0;
    } else if (c == '\t') {
        do {
            vga_put_visible(' ');
        } while (vga_col % 8 != 0);
    } else {
        vga_put_visible(c);
    }
    vga_move_cursor();
}
