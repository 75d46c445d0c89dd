/* COM1 16550 UART output (port 0x3F8), polled: every byte waits for
 * LSR.THRE first. Output only; the guests never read the UART. */
#ifndef GUEST_SERIAL_H
#define GUEST_SERIAL_H

#include <stddef.h>

#define SERIAL_COM1 0x3F8

/* 115200 8N1, FIFOs on, interrupts off. Called by the boot code. */
void serial_init(void);
/* Writes one byte; '\n' is sent as "\r\n". */
void serial_putc(char c);
void serial_write(const char *s, size_t len);
void serial_puts(const char *s);

#endif
