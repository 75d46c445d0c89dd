/* The inside of the config parser, for vmm/config*.c only; the contract
 * with the rest of kvmrun is vmm/config.h.
 *
 *   config_value.c  values as text: scalars, quoting, paths and the checks
 *                   of string keys (config_value.h); knows no key
 *   config.c        the key table: lookup, applying values (the special
 *                   keys' own), origins, messages, init/free, printing
 *   config_check.c  cross-key checks (config_validate) and "did you mean"
 *   config_set.c    setting a key as written: unknown keys, duplicates
 *   config_file.c   reading config files and command-line arguments
 *   config_host.c   checks against this host (config_check_host): the
 *                   files named exist and have the right type, RAM the
 *                   host can back
 * Each calls only files listed above it.
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
 * key, or -ERANGE for a device index too big (@r then names the key and
 * the index asked for). */
int config_key_lookup(const char *key, struct key_ref *r);
/* Where the key @r was set in @c (file NULL: never). */
struct config_origin *config_key_origin(struct vm_config *c, const struct key_ref *r);

/* Sets the key @r of @c to @v (reporting a bad value) and marks its
 * device present; the origin is the caller's. Returns 0 or -errno. */
int config_key_apply(struct vm_config *c, const struct key_ref *r, const char *v,
		     const struct set_ctx *x);

/* Prints "FILE:LINE: KEY: message" to d->out and counts it. file NULL is a
 * default; line 0 and key NULL are left out. */
__attribute__((format(printf, 5, 6), nonnull(1, 5)))
void config_report(struct config_diag *d, const char *file, unsigned line,
		   const char *key, const char *fmt, ...);

/* config_report() at the place a set_ctx describes. */
#define set_error(x, ...) config_report((x)->d, (x)->file, (x)->line, (x)->key, __VA_ARGS__)

/* ---- config_check.c ---- */

/* config_report() at the place @key was set in @c ("(default)" when it
 * never was), for checks of a whole configuration. */
__attribute__((format(printf, 4, 5), nonnull(1, 2, 3, 4)))
void config_report_key(struct vm_config *c, struct config_diag *d, const char *key,
		       const char *fmt, ...);

/* ---- config_set.c ---- */

/* config_set() with the context of a file line or an argument: reports
 * unknown and duplicate keys and bad values, records the origin. Returns 0
 * or -errno (already reported). */
int config_set_at(struct vm_config *c, const char *key, const char *value,
		  const struct set_ctx *x);

/* ---- config_host.c ---- */

/* What a file of mode @m is, for messages: "a directory", "a FIFO", ... */
const char *config_file_kind(mode_t m);

#endif
