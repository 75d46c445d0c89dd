/* A tiny printf to COM1. Conversions: %s %c %d %i %u %x %X %p %% with the
 * length modifiers l, ll, z (64-bit) and an optional '0' flag and width,
 * e.g. %08x, %016lx. %p prints 0x followed by 16 hex digits. */
#ifndef GUEST_PRINTF_H
#define GUEST_PRINTF_H

#include <stdarg.h>
#include <stddef.h>

#define GUEST_PRINTF(f, a) __attribute__((format(printf, f, a)))

int printf(const char *fmt, ...) GUEST_PRINTF(1, 2);
int vprintf(const char *fmt, va_list ap);
/* Always NUL-terminates when size > 0; returns the untruncated length. */
int snprintf(char *buf, size_t size, const char *fmt, ...) GUEST_PRINTF(3, 4);
int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);

#endif
