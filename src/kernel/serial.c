/*
 * serial.c - COM1 driver: 16550 UART at 0x3F8, polled transmit.
 */
#include "serial.h"

#include "io.h"

#define COM1 0x3F8
#define UART_DATA 0     /* THR (write) / divisor low with DLAB */
#define UART_IER 1      /* interrupt enable / divisor high with DLAB */
#define UART_FCR 2      /* FIFO control */
#define UART_LCR 3      /* line control */
#define UART_MCR 4      /* modem control */
#define UART_LSR 5      /* line status */
#define UART_SCRATCH 7
#define UART_LSR_THR_EMPTY 0x20

static bool serial_present;

bool serial_init(void)
{
    /* Is there a UART? The scratch register keeps what we write. */
    outb(COM1 + UART_SCRATCH, 0x5A);
    if (inb(COM1 + UART_SCRATCH) != 0x5A) {
        return false;
    }
    outb(COM1 + UART_IER, 0x00); /* no interrupts: we poll */
    outb(COM1 + UART_LCR, 0x80); /* DLAB on */
    outb(COM1 + UART_DATA, 0x01); /* divisor 1 = 115200 baud */
    outb(COM1 + UART_IER, 0x00);
    outb(COM1 + UART_LCR, 0x03); /* 8 bits, no parity, 1 stop bit, DLAB off */
    outb(COM1 + UART_FCR, 0xC7); /* FIFO on, cleared, 14-byte threshold */
    outb(COM1 + UART_MCR, 0x03); /* DTR, RTS */
    serial_present = true;
    return true;
}

static void serial_raw(char c)
{
    /* Bounded wait: a stuck UART must not hang the kernel. */
    for (unsigned spin = 0; spin < 100000; spin++) {
        if (inb(COM1 + UART_LSR) & UART_LSR_THR_EMPTY) {
            break;
        }
    }
    outb(COM1 + UART_DATA, (unsigned char)c);
}

void serial_putc(char c)
{
    if (!serial_present) {
        return;
    }
    if (c == '\n') {
        serial_raw('\r');
    }
    serial_raw(c);
}
