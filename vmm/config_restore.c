/* restore=DIR: the configuration comes from the snapshot; the few keys a
 * restored VM may have of its own are checked here (config.h). */
#include "vmm/config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/config_priv.h"

static const char *const vm_keys_allowed[] = {
	"restore", "restore.prefault", "control", "serial", "serial.max_size", "timeout",
	"cpu_affinity", "log_level", "on_reboot", "drop_caps", "name",
	/* the host's side of a job: its jail, limits and counters */
	"seccomp", "user", "group", "landlock", "cgroup", "cgroup.cpu_max", "cgroup.memory_max",
	"cgroup.io_max", "metrics", "metrics_file", "metrics_period", "snapshot_dir", NULL,
};

static const char *const disk_keys_allowed[] = {
	"path", "iops", "iops_burst", "bandwidth", "bandwidth_burst", NULL,
};

static bool in(const char *const *list, const char *name)
{
	for (const char *const *a = list; *a; a++)
		if (strcmp(*a, name) == 0)
			return true;
	return false;
}

static bool allowed(const struct key_def *k)
{
	if (k->group == G_DISK)
		return in(disk_keys_allowed, k->name) || strncmp(k->name, "overlay", 7) == 0;
	if (k->group == G_NET)
		return strcmp(k->name, "tap") == 0 || strncmp(k->name, "bandwidth", 9) == 0;
	return in(vm_keys_allowed, k->name);
}

int config_restore_load(struct vm_config *c, const char *dir, struct config_diag *d)
{
	size_t n = strlen(dir) + 16;
	char *path = malloc(n);
	if (!path)
		return -ENOMEM;
	snprintf(path, n, "%s/config", dir);
	unsigned before = d->errors;
	int rc = config_load_file(c, path, d);
	free(path);
	if (rc < 0 || d->errors != before) {
		config_report(d, CONFIG_CMDLINE_FILE, 0, "restore",
			      "%s does not hold a snapshot's readable configuration", dir);
		return -EINVAL;
	}
	free(c->control);
	c->control = NULL;
	return 0;
}

int config_restore_check(struct vm_config *c, struct config_diag *d)
{
	unsigned before = d->errors;
	for (size_t i = 0; i < config_nr_keys; i++) {
		const struct key_def *k = &config_keys[i];
		for (unsigned idx = 0; idx < config_groups[k->group].count; idx++) {
			struct key_ref r = { k, idx };
			struct config_origin *o = config_key_origin(c, &r);
			if (!o->file || strcmp(o->file, CONFIG_CMDLINE_FILE) != 0 || allowed(k))
				continue;
			char key[64];
			if (k->group == G_VM)
				snprintf(key, sizeof(key), "%s", k->name);
			else
				snprintf(key, sizeof(key), "%s%u.%s", config_groups[k->group].prefix,
					 idx, k->name);
			config_report(d, o->file, o->line, key, "cannot change across a restore: "
				      "it is the snapshot's (restore=%s)", c->restore);
		}
	}
	return d->errors == before ? 0 : -EINVAL;
}
