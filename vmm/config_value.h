/* Values as text, for the config parser (vmm/config*.c): scalars, quoting,
 * paths and the checks of string keys. Nothing here knows a key or struct
 * vm_config. The scalar parsers and config_fmt_size() are also public,
 * through vmm/config.h, for tests and the control socket. */
#ifndef KVMRUN_CONFIG_VALUE_H
#define KVMRUN_CONFIG_VALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Value parsers. Each returns 0 or -EINVAL/-ERANGE. */
int config_parse_size(const char *s, uint64_t *out);        /* 512, 64K, 128M, 2G, 1T; K/M/G/T
							       * any case, binary, optional B/iB */
int config_parse_bool(const char *s, bool *out);             /* on/off (also yes/no, true/false, 1/0) */
int config_parse_uint(const char *s, uint64_t max, uint64_t *out); /* decimal; -ERANGE if > max */
int config_parse_mac(const char *s, uint8_t mac[6]);        /* 52:54:00:12:34:56, syntax only */
/* The size format config_parse_size() reads back: "128M", "1G", "4097K",
 * "513", the largest binary unit that is exact. Writes @buf, returns it. */
const char *config_fmt_size(uint64_t v, char *buf, size_t len);

/* @s made safe to print into @buf (control and non-ASCII bytes as '?',
 * cut short with "..."); "\"\"" for an empty string. */
const char *config_shown(const char *s, char *buf, size_t len);
/* Blank within a line: space, tab, CR, VT, FF. */
bool config_is_blank(char c);
/* Unquotes the value at @s (which starts with '"') in place. Returns NULL
 * or what is wrong. */
const char *config_unquote(char *s);
/* Prints @v (NULL: nothing), quoted where needed, so that
 * config_unquote() or a bare read gives it back. */
void config_print_str(FILE *out, const char *v);
/* Prints @prefix and the path @v; a relative one is joined to the cwd. */
void config_print_path(FILE *out, const char *prefix, const char *v);
/* @v as stored: joined to @basedir if relative (@basedir NULL: as given).
 * Malloc'd; NULL when out of memory. */
char *config_resolve_path(const char *v, const char *basedir);

/* The T_STR keys' checks: NULL, or why @v is not valid. */
const char *config_check_name(const char *v);
const char *config_check_tap(const char *v);
const char *config_check_disk_serial(const char *v);

#endif
