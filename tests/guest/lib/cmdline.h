/* key=value options on the kernel command line, separated by spaces, e.g.
 * "blk_sectors=64 verbose". A bare word is a key with the value "". */
#ifndef GUEST_CMDLINE_H
#define GUEST_CMDLINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Copies the value of the last occurrence of key into buf (NUL-terminated,
 * truncated to size-1). Returns true if key is present. */
bool cmdline_get(const char *key, char *buf, size_t size);
/* True if key is present, with or without a value. */
bool cmdline_has(const char *key);
/* Value as an unsigned number (decimal, or hex with 0x, optional k/m/g
 * suffix); def if absent or malformed. */
uint64_t cmdline_get_u64(const char *key, uint64_t def);

#endif
