/*
 * serial.h - COM1 (0x3F8), 115200 8N1, polled output.
 */
#ifndef PEACHOS_KERNEL_SERIAL_H
#define PEACHOS_KERNEL_SERIAL_H

#include <stdbool.h>

/* Program the UART; returns false if no UART answers at COM1. */
bool serial_init(void);
/* Write one character ("\n" goes out as "\r\n"). No-op without a UART. */
void serial_putc(char c);

#endif /* PEACHOS_KERNEL_SERIAL_H */
