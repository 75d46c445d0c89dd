/* The few C library routines the guests need (gcc may also emit calls to
 * memset/memcpy/memmove/memcmp itself, so these names are fixed). */
#ifndef GUEST_LIBC_H
#define GUEST_LIBC_H

#include <stddef.h>

void *memset(void *dst, int c, size_t n);
void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
size_t strnlen(const char *s, size_t max);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);

#endif
