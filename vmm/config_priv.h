/* The inside of the config parser, for vmm/config*.c only; the contract
 * with the rest of kvmrun is vmm/config.h.
 *
 *   config.c        the key table: lookup, setting, init/free, printing
 *   config_value.c  values as text: scalars, quoting, paths, the values of
 *                   the special keys and the checks of string keys
 *   config_file.c   reading config files and command-line arguments
 *   config_check.c  cross-key checks (config_validate) and "did you mean"
 *   config_host.c   checks against this host (config_check_host): the
 *                   files named exist and have the right type, RAM the
 *                   host can back
 *
 * Everything here is single-threaded, like the public API. */
#ifndef KVMRUN_CONFIG_PRIV_H
#define KVMRUN_CONFIG_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "vmm/config.h"

#define CONFIG_MAX_SUGGEST_LEN 64 /* longer keys get no suggestion */

enum key_group { G_VM, G_DISK, G_NET };
enum key_type { T_STR, T_PATH, T_BOOL, T_UINT, T_SIZE, T_ENUM, T_SPECIAL };

struct enum_name {
	const char *name;
	unsigned value;
};

/* What one config_set() call knows about where its value came from. */
struct set_ctx {
	struct config_diag *d;
	const char *file;
	unsigned line;
	const char *key;      /* as written, for messages */
	const char *basedir;  /* NULL: keep relative paths as given */
};

struct key_def {
	const char *name;     /* for G_DISK/G_NET: the part after "diskN." */
	enum key_group group;
	enum key_type type;
	size_t off;           /* field in vm_config, disk_config or net_config */
	uint64_t min, max;    /* T_UINT */
	const struct enum_name *names;               /* T_ENUM */
	const char *(*check)(const char *v);         /* T_STR: NULL or why not */
	int (*set)(void *base, const char *v, const struct set_ctx *x); /* T_SPECIAL */
	void (*print)(const void *base, FILE *out);  /* T_SPECIAL */
};

struct group_def {
	const char *prefix;
	unsigned count;
};

/* A key as written, resolved to its definition and device index. */
struct key_ref {
	const struct key_def *def;
	unsigned index;
};

/* ---- config.c: the key table ---- */

/* Every key, in print order, and the groups (G_VM, disk, net) they are in. */
extern const struct key_def config_keys[];
extern const size_t config_nr_keys;
extern const struct group_def config_groups[];

/* Resolves @key ("mem", "disk3.path"). Returns 0, -ENOENT for no such
 * key, or -ERANGE for a device index too big. */
int config_key_lookup(const char *key, struct key_ref *r);
/* Where the key @r was set in @c (file NULL: never). */
struct config_origin *config_key_origin(struct vm_config *c, const struct key_ref *r);

/* config_set() with the context of a file line or an argument: reports
 * unknown and duplicate keys and bad values, records the origin. Returns 0
 * or -errno (already reported). */
int config_set_at(struct vm_config *c, const char *key, const char *value,
		  const struct set_ctx *x);

/* Prints "FILE:LINE: KEY: message" to d->out and counts it. file NULL is a
 * default; line 0 and key NULL are left out. */
__attribute__((format(printf, 5, 6), nonnull(1, 5)))
void config_report(struct config_diag *d, const char *file, unsigned line,
		   const char *key, const char *fmt, ...);

/* config_report() at the place @key was set in @c ("(default)" when it
 * never was), for checks of a whole configuration. */
__attribute__((format(printf, 4, 5), nonnull(1, 2, 3, 4)))
void config_report_key(struct vm_config *c, struct config_diag *d, const char *key,
		       const char *fmt, ...);

/* config_report() at the place a set_ctx describes. */
#define set_error(x, ...) config_report((x)->d, (x)->file, (x)->line, (x)->key, __VA_ARGS__)

/* ---- config_value.c: values as text ---- */

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

/* The T_SPECIAL keys' setters (report their own errors, 0 or -errno) and
 * printers; @base is the vm_config (net_config for the mac). */
int config_set_affinity(void *base, const char *v, const struct set_ctx *x);
void config_print_affinity(const void *base, FILE *out);
int config_set_topology(void *base, const char *v, const struct set_ctx *x);
void config_print_topology(const void *base, FILE *out);
int config_set_numa(void *base, const char *v, const struct set_ctx *x);
void config_print_numa(const void *base, FILE *out);
int config_set_serial(void *base, const char *v, const struct set_ctx *x);
void config_print_serial(const void *base, FILE *out);
int config_set_control(void *base, const char *v, const struct set_ctx *x);
void config_print_control(const void *base, FILE *out);
int config_set_mac(void *base, const char *v, const struct set_ctx *x);
void config_print_mac(const void *base, FILE *out);

/* ---- config_host.c ---- */

/* What a file of mode @m is, for messages: "a directory", "a FIFO", ... */
const char *config_file_kind(mode_t m);

/* The T_STR keys' checks: NULL, or why @v is not valid. */
const char *config_check_name(const char *v);
const char *config_check_tap(const char *v);
const char *config_check_disk_serial(const char *v);

#endif
