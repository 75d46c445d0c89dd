#include "serial.h"
#include "io.h"

#define UART_THR 0
#define UART_IER 1
#define UART_FCR 2
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define UART_DLL 0
#define UART_DLM 1
#define LSR_THRE 0x20

/* Bounded so that a missing or stuck UART slows output instead of hanging. */
#define THRE_POLL_MAX 100000

void serial_init(void)
{
	outb(SERIAL_COM1 + UART_IER, 0x00);
	outb(SERIAL_COM1 + UART_LCR, 0x80); /* DLAB */
	outb(SERIAL_COM1 + UART_DLL, 0x01); /* 115200 */
	outb(SERIAL_COM1 + UART_DLM, 0x00);
	outb(SERIAL_COM1 + UART_LCR, 0x03); /* 8N1 */
	outb(SERIAL_COM1 + UART_FCR, 0x07);
	outb(SERIAL_COM1 + UART_MCR, 0x03); /* DTR, RTS; OUT2 off: no IRQ */
}

static void serial_put_raw(char c)
{
	for (int i = 0; i < THRE_POLL_MAX; i++)
		if (inb(SERIAL_COM1 + UART_LSR) & LSR_THRE)
			break;
	outb(SERIAL_COM1 + UART_THR, (unsigned char)c);
}

void serial_putc(char c)
{
	if (c == '\n')
		serial_put_raw('\r');
	serial_put_raw(c);
}

void serial_write(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		serial_putc(s[i]);
}

void serial_puts(const char *s)
{
	while (*s)
		serial_putc(*s++);
}
