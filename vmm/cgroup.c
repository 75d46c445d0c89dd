#include "vmm/cgroup.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *cgroup_check_path(const char *v)
{
	if (!*v) /* unset */
		return NULL;
	while (*v == '/')
		v++;
	if (!*v)
		return "is the root group, which holds the whole system: name a group under it";
	if (strlen(v) > 200)
		return "is longer than 200 characters";
	for (const char *c = v; *c; c++)
		if (!isalnum((unsigned char)*c) && !strchr("/._-", *c))
			return "may only contain letters, digits, '/', '.', '_' and '-'";
	if (strstr(v, "//") || strstr(v, "/./") || strstr(v, "..") || v[strlen(v) - 1] == '/' ||
	    v[0] == '.')
		return "is not a plain path under the cgroup2 root (no '..', '.', '//' or trailing '/')";
	return NULL;
}

static bool all_digits(const char *s, size_t n)
{
	if (n == 0 || n > 19)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isdigit((unsigned char)s[i]))
			return false;
	return true;
}

const char *cgroup_check_cpu_max(const char *v)
{
	if (!*v) /* unset */
		return NULL;
	const char *sp = strchr(v, ' ');
	size_t qn = sp ? (size_t)(sp - v) : strlen(v);
	if (!(qn == 3 && strncmp(v, "max", 3) == 0) && !all_digits(v, qn))
		return "is not 'max' or a quota in µs, optionally a space and a period in µs "
		       "(cpu.max: \"50000 100000\" is half a CPU)";
	if (sp && !all_digits(sp + 1, strlen(sp + 1)))
		return "has a period (after the space) that is not a number of µs";
	return NULL;
}

const char *cgroup_check_memory_max(const char *v)
{
	if (!*v) /* unset */
		return NULL;
	if (strcmp(v, "max") == 0)
		return NULL;
	char *end;
	errno = 0;
	unsigned long long n = strtoull(v, &end, 10);
	if (end == v || errno || (*end && (!strchr("KMGkmg", *end) || end[1])))
		return "is not 'max' or bytes, with an optional K, M or G";
	if (n == 0)
		return "leaves the VM no memory";
	return NULL;
}

/* One "key=value" of io.max. */
static bool io_pair_ok(const char *s, size_t n)
{
	static const char *const keys[] = { "rbps=", "wbps=", "riops=", "wiops=" };
	for (size_t i = 0; i < 4; i++) {
		size_t k = strlen(keys[i]);
		if (n > k && strncmp(s, keys[i], k) == 0)
			return (n - k == 3 && strncmp(s + k, "max", 3) == 0) ||
			       all_digits(s + k, n - k);
	}
	return false;
}

const char *cgroup_check_io_max(const char *v)
{
	if (!*v) /* unset */
		return NULL;
	static const char why[] = "is not \"MAJ:MIN\" of a block device, then one or more of "
				  "rbps=N wbps=N riops=N wiops=N (or =max), space-separated";
	const char *colon = strchr(v, ':');
	const char *sp = strchr(v, ' ');
	if (!colon || !sp || colon > sp || !all_digits(v, (size_t)(colon - v)) ||
	    !all_digits(colon + 1, (size_t)(sp - colon - 1)))
		return why;
	for (const char *p = sp + 1; *p;) {
		size_t n = strcspn(p, " ");
		if (!io_pair_ok(p, n))
			return why;
		p += n;
		while (*p == ' ')
			p++;
	}
	return NULL;
}

/* The first cgroup2 mount point in @mountinfo, into @out. */
static int find_root(const char *mountinfo, const char *key, char *out, size_t len,
		     const struct logger *lg)
{
	FILE *f = fopen(mountinfo, "re");
	if (!f) {
		int e = errno;
		log_err(lg, "cgroup", "cgroup=%s: reading %s: %s", key, mountinfo, strerror(e));
		return -e;
	}
	char line[4096];
	int rc = -ENOENT;
	while (rc && fgets(line, sizeof(line), f)) {
		/* id parent maj:min root mountpoint opts... - fstype source superopts */
		char mnt[PATH_MAX], fstype[64];
		const char *dash = strstr(line, " - ");
		if (!dash || sscanf(dash, " - %63s", fstype) != 1 || strcmp(fstype, "cgroup2"))
			continue;
		if (sscanf(line, "%*s %*s %*s %*s %4095s", mnt) == 1 && strlen(mnt) < len) {
			snprintf(out, len, "%s", mnt);
			rc = 0;
		}
	}
	fclose(f);
	if (rc)
		log_err(lg, "cgroup", "cgroup=%s: cgroup v2 is not mounted (no cgroup2 in %s); "
			"mount it with: mount -t cgroup2 none /sys/fs/cgroup", key, mountinfo);
	return rc;
}

/* @what names the key=value the write is for, in the error. */
static int write_file(const char *dir, const char *file, const char *value, const char *what,
		      const struct logger *lg)
{
	char path[PATH_MAX];
	if (snprintf(path, sizeof(path), "%s/%s", dir, file) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n = -1;
	if (fd >= 0) {
		n = write(fd, value, strlen(value));
		int e = errno;
		close(fd);
		errno = e;
	}
	if (n < 0) {
		int e = errno;
		log_err(lg, "cgroup", "%s: writing '%s' to %s: %s", what, value, path, strerror(e));
		return -e;
	}
	return 0;
}

/* mkdir -p of @rel under @root. */
static int make_group(const char *root, const char *rel, const struct logger *lg)
{
	char path[PATH_MAX];
	size_t rl = strlen(root);
	if (snprintf(path, sizeof(path), "%s/%s", root, rel) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	for (char *p = path + rl + 1;; p++) {
		bool end = *p == '\0';
		if (*p != '/' && !end)
			continue;
		*p = '\0';
		if (mkdir(path, 0755) < 0 && errno != EEXIST) {
			int e = errno;
			log_err(lg, "cgroup", "cgroup=%s: making %s: %s", rel, path, strerror(e));
			return -e;
		}
		if (end)
			return 0;
		*p = '/';
	}
}

/* Enables @controller ("cpu") in cgroup.subtree_control of the root and
 * of each group above @rel's leaf, so that the leaf has its files. */
static int enable_controller(const char *root, const char *rel, const char *controller,
			     const char *key, const struct logger *lg)
{
	char plus[16];
	snprintf(plus, sizeof(plus), "+%s", controller);
	for (size_t i = 0; rel[i]; i++) {
		if (i != 0 && rel[i] != '/')
			continue;
		char file[PATH_MAX];
		if (snprintf(file, sizeof(file), "%s%s%.*s/cgroup.subtree_control", root,
			     i ? "/" : "", (int)i, rel) >= (int)sizeof(file))
			return -ENAMETOOLONG;
		int fd = open(file, O_WRONLY | O_CLOEXEC);
		ssize_t n = fd < 0 ? -1 : write(fd, plus, strlen(plus));
		int e = errno;
		if (fd >= 0)
			close(fd);
		if (n < 0) {
			log_err(lg, "cgroup", "%s: enabling the %s controller: writing '%s' to %s: %s%s",
				key, controller, plus, file, strerror(e),
				e == ENOENT ? " (this cgroup v2 hierarchy has no such controller: "
				"on a hybrid host it is bound to cgroup v1)" :
				e == EBUSY ? " (that group holds processes of its own)" : "");
			return -e;
		}
	}
	return 0;
}

static bool already_in(const char *rel)
{
	FILE *f = fopen("/proc/self/cgroup", "re");
	if (!f)
		return false;
	char line[512];
	bool in = false;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		if (strncmp(line, "0::/", 4) == 0 && strcmp(line + 4, rel) == 0)
			in = true;
	}
	fclose(f);
	return in;
}

/* "512M" as bytes, or "max" as it is, into @buf. */
static const char *memory_bytes(const char *v, char *buf, size_t len)
{
	if (strcmp(v, "max") == 0)
		return v;
	char *end;
	unsigned long long n = strtoull(v, &end, 10);
	int shift = !*end ? 0 : strchr("kK", *end) ? 10 : strchr("mM", *end) ? 20 : 30;
	snprintf(buf, len, "%llu", n << shift);
	return buf;
}

static int write_limits(const char *root, const char *rel, const struct cgroup_params *p,
			const struct logger *lg)
{
	char dir[PATH_MAX], bytes[32];
	if (snprintf(dir, sizeof(dir), "%s/%s", root, rel) >= (int)sizeof(dir))
		return -ENAMETOOLONG;
	const struct { const char *given, *value, *controller, *file, *key; } limits[] = {
		{ p->cpu_max, p->cpu_max, "cpu", "cpu.max", "cgroup.cpu_max" },
		{ p->memory_max, p->memory_max ? memory_bytes(p->memory_max, bytes, sizeof(bytes)) : NULL,
		  "memory", "memory.max", "cgroup.memory_max" },
		{ p->io_max, p->io_max, "io", "io.max", "cgroup.io_max" },
	};
	for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
		if (!limits[i].value)
			continue;
		char what[300];
		snprintf(what, sizeof(what), "%s=%s", limits[i].key, limits[i].given);
		int rc = enable_controller(root, rel, limits[i].controller, what, lg);
		if (rc == 0)
			rc = write_file(dir, limits[i].file, limits[i].value, what, lg);
		if (rc < 0)
			return rc;
	}
	return 0;
}

int cgroup_enter(const struct cgroup_params *p, const struct logger *lg)
{
	const char *rel = p->path;
	while (*rel == '/')
		rel++;
	if (already_in(rel))
		return 0;
	char root[PATH_MAX];
	int rc = find_root(p->mountinfo ? p->mountinfo : "/proc/self/mountinfo", p->path, root,
			   sizeof(root), lg);
	if (rc == 0)
		rc = make_group(root, rel, lg);
	if (rc == 0)
		rc = write_limits(root, rel, p, lg);
	char dir[PATH_MAX];
	if (rc == 0 && snprintf(dir, sizeof(dir), "%s/%s", root, rel) >= (int)sizeof(dir))
		rc = -ENAMETOOLONG;
	char what[300];
	snprintf(what, sizeof(what), "cgroup=%s: moving kvmrun in", p->path);
	if (rc == 0) /* "0": the writing process, with all its threads */
		rc = write_file(dir, "cgroup.procs", "0", what, lg);
	if (rc == 0)
		log_info(lg, "cgroup", "in cgroup /%s (%s)", rel, dir);
	return rc;
}
