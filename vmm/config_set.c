/* Setting a key as a file line or an argument wrote it: unknown keys
 * (with "did you mean"), duplicates within one source, and where each
 * key got its value. The key table that does the setting is config.c. */
#include "vmm/config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/config_priv.h"

static int report_unknown(const char *key, int err, const struct key_ref *r,
			  const struct set_ctx *x)
{
	char sug[CONFIG_MAX_SUGGEST_LEN + 16];

	if (err == -ERANGE) {
		const struct group_def *g = &config_groups[r->def->group];
		set_error(x, "index %u is out of range: %s0 to %s%u", r->index, g->prefix,
			  g->prefix, g->count - 1);
	} else if (config_suggest_key(key, sug, sizeof(sug))) {
		set_error(x, "unknown key, did you mean '%s'?", sug);
	} else {
		set_error(x, "unknown key");
	}
	return -EINVAL;
}

static bool same_file(const char *a, const char *b)
{
	return a && b && strcmp(a, b) == 0;
}

int config_set_at(struct vm_config *c, const char *key, const char *value,
		  const struct set_ctx *x)
{
	struct key_ref ref;
	int r = config_key_lookup(key, &ref);
	if (r)
		return report_unknown(key, r, &ref, x);

	struct config_origin *o = config_key_origin(c, &ref);
	if (same_file(o->file, x->file)) {
		bool args = strcmp(x->file, CONFIG_CMDLINE_FILE) == 0;
		set_error(x, "duplicate key (first set at %s %u)", args ? "argument" : "line", o->line);
		return -EINVAL;
	}
	r = config_key_apply(c, &ref, value, x);
	if (r)
		return r;
	if (x->file) {
		char *f = strdup(x->file);
		if (f) {
			free(o->file);
			o->file = f;
			o->line = x->line;
		}
	}
	return 0;
}

int config_set(struct vm_config *c, const char *key, const char *value,
	       const char *file, unsigned line, struct config_diag *d)
{
	struct set_ctx x = { .d = d, .file = file, .line = line, .key = key };
	return config_set_at(c, key, value, &x) ? -EINVAL : 0;
}
