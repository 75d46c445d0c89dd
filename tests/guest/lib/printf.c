#include <stdbool.h>
#include <stdint.h>

#include "printf.h"
#include "serial.h"

struct printf_sink {
	bool serial; /* write to COM1 instead of buf */
	char *buf;
	size_t size;
	size_t len;  /* characters produced so far */
};

static void printf_emit(struct printf_sink *s, char c)
{
	if (s->serial)
		serial_putc(c);
	else if (s->len + 1 < s->size)
		s->buf[s->len] = c;
	s->len++;
}

static void printf_number(struct printf_sink *s, uint64_t v, unsigned base, bool upper,
			  bool negative, unsigned width, char pad)
{
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	char tmp[24];
	unsigned n = 0;

	do {
		tmp[n++] = digits[v % base];
		v /= base;
	} while (v);
	if (negative && pad == '0')
		printf_emit(s, '-');
	for (unsigned i = n + (negative ? 1 : 0); i < width; i++)
		printf_emit(s, pad);
	if (negative && pad != '0')
		printf_emit(s, '-');
	while (n)
		printf_emit(s, tmp[--n]);
}

static void printf_format(struct printf_sink *s, const char *fmt, va_list ap)
{
	for (; *fmt; fmt++) {
		if (*fmt != '%') {
			printf_emit(s, *fmt);
			continue;
		}
		fmt++;
		char pad = ' ';
		unsigned width = 0;
		int longs = 0;

		if (*fmt == '0') {
			pad = '0';
			fmt++;
		}
		while (*fmt >= '0' && *fmt <= '9')
			width = width * 10 + (unsigned)(*fmt++ - '0');
		while (*fmt == 'l' || *fmt == 'z') {
			longs++;
			fmt++;
		}
		switch (*fmt) {
		case 'd':
		case 'i': {
			int64_t v = longs ? va_arg(ap, int64_t) : va_arg(ap, int);
			uint64_t mag = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;

			printf_number(s, mag, 10, false, v < 0, width, pad);
			break;
		}
		case 'u':
		case 'x':
		case 'X': {
			uint64_t v = longs ? va_arg(ap, uint64_t) : va_arg(ap, unsigned);

			printf_number(s, v, *fmt == 'u' ? 10 : 16, *fmt == 'X', false, width, pad);
			break;
		}
		case 'p':
			printf_emit(s, '0');
			printf_emit(s, 'x');
			printf_number(s, (uintptr_t)va_arg(ap, void *), 16, false, false, 16, '0');
			break;
		case 'c':
			printf_emit(s, (char)va_arg(ap, int));
			break;
		case 's': {
			const char *str = va_arg(ap, const char *);
			unsigned n = 0;

			if (!str)
				str = "(null)";
			for (const char *p = str; *p; p++)
				n++;
			for (; n < width; n++)
				printf_emit(s, ' ');
			while (*str)
				printf_emit(s, *str++);
			break;
		}
		case '%':
			printf_emit(s, '%');
			break;
		case '\0':
			return;
		default:
			printf_emit(s, '%');
			printf_emit(s, *fmt);
			break;
		}
	}
}

int vprintf(const char *fmt, va_list ap)
{
	struct printf_sink s = { .serial = true };

	printf_format(&s, fmt, ap);
	return (int)s.len;
}

int printf(const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vprintf(fmt, ap);
	va_end(ap);
	return n;
}

int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
	struct printf_sink s = { .buf = buf, .size = size };

	printf_format(&s, fmt, ap);
	if (size)
		buf[s.len < size ? s.len : size - 1] = '\0';
	return (int)s.len;
}

int snprintf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return n;
}
