/* The VM configuration's key table. One static table of keys drives
 * lookup, applying values, printing and freeing; the special keys' values
 * are here too, as the table points at them. See config.h for the syntax
 * and config_priv.h for how the parser is split across vmm/config*.c. */
#include "vmm/config.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/cpulist.h"
#include "vmm/cgroup.h"
#include "vmm/jail.h"
#include "vmm/config_priv.h"

static const char default_name[] = "kvmrun";

const struct group_def config_groups[] = {
	[G_VM] = { NULL, 1 },
	[G_DISK] = { "disk", CONFIG_MAX_DISKS },
	[G_NET] = { "net", CONFIG_MAX_NETS },
};

_Static_assert(sizeof(enum hugepages) == sizeof(unsigned), "enum fields are stored as unsigned");
_Static_assert(sizeof(enum log_level) == sizeof(unsigned), "enum fields are stored as unsigned");
_Static_assert(sizeof(enum vsock_backend) == sizeof(unsigned), "enum fields are stored as unsigned");

/* ---- messages ---------------------------------------------------------- */

void config_report(struct config_diag *d, const char *file, unsigned line,
		   const char *key, const char *fmt, ...)
{
	FILE *out = d->out ? d->out : stderr;
	char kb[80];
	va_list ap;

	fputs(file ? file : "(default)", out);
	if (line)
		fprintf(out, ":%u", line);
	if (key)
		fprintf(out, ": %s", config_shown(key, kb, sizeof(kb)));
	fputs(": ", out);
	va_start(ap, fmt);
	vfprintf(out, fmt, ap);
	va_end(ap);
	fputc('\n', out);
	d->errors++;
}

/* ---- the special keys' values ----------------------------------------------
 * Setters report their own errors and return 0 or -errno; @base is the
 * vm_config (net_config for the mac). */

static int config_set_affinity(void *base, const char *v, const struct set_ctx *x)
{
	struct vm_config *c = base;
	unsigned cpus[CONFIG_MAX_CPUS];
	size_t n = 0;
	char vb[80];

	if (*v) {
		int r = cpulist_parse(v, cpus, CONFIG_MAX_CPUS, &n);
		if (r == -ERANGE) {
			set_error(x, "'%s' lists more than %d CPUs or a CPU above 65535",
				  config_shown(v, vb, sizeof(vb)), CONFIG_MAX_CPUS);
			return -EINVAL;
		}
		if (r) {
			set_error(x, "'%s' is not a CPU list like 0-3,6 (ascending ranges, no duplicates)",
				  config_shown(v, vb, sizeof(vb)));
			return -EINVAL;
		}
	}
	memcpy(c->cpu_affinity, cpus, n * sizeof(cpus[0]));
	c->nr_cpu_affinity = (unsigned)n;
	return 0;
}

static void config_print_affinity(const void *base, FILE *out)
{
	const struct vm_config *c = base;
	char buf[CONFIG_MAX_CPUS * 12];
	if (cpulist_format(c->cpu_affinity, c->nr_cpu_affinity, buf, sizeof(buf)) >= 0)
		fputs(buf, out);
}

static int config_set_topology(void *base, const char *v, const struct set_ctx *x)
{
	struct vm_config *c = base;
	uint64_t t[3];
	char part[3][24], vb[80];

	if (!*v || strcmp(v, "auto") == 0) {
		c->topology_set = false;
		return 0;
	}
	size_t a = strcspn(v, ":"), b = a + (v[a] ? 1 + strcspn(v + a + 1, ":") : 0);
	if (!v[a] || !v[b] || a >= sizeof(part[0]) || b - a - 1 >= sizeof(part[0]) ||
	    strlen(v + b + 1) >= sizeof(part[0]))
		goto bad;
	snprintf(part[0], sizeof(part[0]), "%.*s", (int)a, v);
	snprintf(part[1], sizeof(part[1]), "%.*s", (int)(b - a - 1), v + a + 1);
	snprintf(part[2], sizeof(part[2]), "%s", v + b + 1);
	for (int i = 0; i < 3; i++)
		if (config_parse_uint(part[i], CONFIG_MAX_CPUS, &t[i]) || t[i] == 0)
			goto bad;
	c->sockets = (unsigned)t[0];
	c->cores = (unsigned)t[1];
	c->threads = (unsigned)t[2];
	c->topology_set = true;
	return 0;
bad:
	set_error(x, "'%s' is not SOCKETS:CORES:THREADS (each 1..%d) or auto",
		  config_shown(v, vb, sizeof(vb)), CONFIG_MAX_CPUS);
	return -EINVAL;
}

static void config_print_topology(const void *base, FILE *out)
{
	const struct vm_config *c = base;
	if (c->topology_set)
		fprintf(out, "%u:%u:%u", c->sockets, c->cores, c->threads);
	else
		fputs("auto", out);
}

static int config_set_numa(void *base, const char *v, const struct set_ctx *x)
{
	struct vm_config *c = base;
	uint64_t node;
	char vb[80];

	if (!*v || strcmp(v, "none") == 0) {
		c->mem_numa_node = -1;
		return 0;
	}
	if (config_parse_uint(v, INT_MAX, &node)) {
		set_error(x, "'%s' is not a NUMA node number (>= 0) or none", config_shown(v, vb, sizeof(vb)));
		return -EINVAL;
	}
	c->mem_numa_node = (int)node;
	return 0;
}

static void config_print_numa(const void *base, FILE *out)
{
	const struct vm_config *c = base;
	if (c->mem_numa_node < 0)
		fputs("none", out);
	else
		fprintf(out, "%d", c->mem_numa_node);
}

static int config_set_serial(void *base, const char *v, const struct set_ctx *x)
{
	struct vm_config *c = base;
	char *path = NULL, vb[80];
	enum serial_mode mode;

	if (strcmp(v, "stdio") == 0) {
		mode = SERIAL_STDIO;
	} else if (strcmp(v, "none") == 0) {
		mode = SERIAL_NONE;
	} else if (strncmp(v, "file:", 5) == 0 && v[5]) {
		mode = SERIAL_FILE;
		path = config_resolve_path(v + 5, x->basedir);
		if (!path) {
			set_error(x, "out of memory");
			return -ENOMEM;
		}
	} else {
		set_error(x, "'%s' is not one of: stdio, file:PATH, none", config_shown(v, vb, sizeof(vb)));
		return -EINVAL;
	}
	free(c->serial_path);
	c->serial_path = path;
	c->serial = mode;
	return 0;
}

static void config_print_serial(const void *base, FILE *out)
{
	const struct vm_config *c = base;
	if (c->serial == SERIAL_FILE)
		config_print_path(out, "file:", c->serial_path); /* quotes "file:/a b" whole */
	else
		fputs(c->serial == SERIAL_NONE ? "none" : "stdio", out);
}

static int config_set_control(void *base, const char *v, const struct set_ctx *x)
{
	struct vm_config *c = base;
	char *path = NULL;

	if (!*v) {
		set_error(x, "empty path; give a socket path, or none for no control socket");
		return -EINVAL;
	}
	if (strcmp(v, "none") != 0) {
		path = config_resolve_path(v, x->basedir);
		if (!path) {
			set_error(x, "out of memory");
			return -ENOMEM;
		}
	}
	free(c->control);
	c->control = path;
	return 0;
}

static void config_print_control(const void *base, FILE *out)
{
	const struct vm_config *c = base;
	if (c->control)
		config_print_path(out, "", c->control);
	else
		fputs("none", out);
}

static int config_set_mac(void *base, const char *v, const struct set_ctx *x)
{
	struct net_config *n = base;
	uint8_t mac[6];
	char vb[80];

	if (!*v) {
		n->mac_set = false;
		return 0;
	}
	if (config_parse_mac(v, mac)) {
		set_error(x, "'%s' is not a MAC address like 52:54:00:12:34:56", config_shown(v, vb, sizeof(vb)));
		return -EINVAL;
	}
	if (mac[0] & 1) {
		set_error(x, "%s is a multicast address; a NIC needs a unicast one (first byte even)", v);
		return -EINVAL;
	}
	if (!(mac[0] | mac[1] | mac[2] | mac[3] | mac[4] | mac[5])) {
		set_error(x, "00:00:00:00:00:00 is not a valid MAC address");
		return -EINVAL;
	}
	memcpy(n->mac, mac, 6);
	n->mac_set = true;
	return 0;
}

static void config_print_mac(const void *base, FILE *out)
{
	const struct net_config *n = base;
	if (n->mac_set)
		fprintf(out, "%02x:%02x:%02x:%02x:%02x:%02x", n->mac[0], n->mac[1],
			n->mac[2], n->mac[3], n->mac[4], n->mac[5]);
}

/* metrics_period: a duration, "500ms", "10s", "1m", or plain seconds. */
static int config_set_period(void *base, const char *v, const struct set_ctx *x)
{
	struct vm_config *c = base;
	char *end = NULL, vb[80];
	errno = 0;
	unsigned long long n = strtoull(v, &end, 10);
	unsigned long long mul = 1000;
	if (end && strcmp(end, "ms") == 0)
		mul = 1;
	else if (end && strcmp(end, "m") == 0)
		mul = 60000;
	else if (end && *end && strcmp(end, "s") != 0)
		end = NULL;
	if (!*v || !end || end == v || v[0] == '-' || errno || n == 0 || n > 86400000ull / mul) {
		set_error(x, "'%s' is not a duration from 1ms to 24h like 500ms, 10s or 1m",
			  config_shown(v, vb, sizeof(vb)));
		return -EINVAL;
	}
	c->metrics_period_ms = (unsigned)(n * mul);
	return 0;
}

static void config_print_period(const void *base, FILE *out)
{
	const struct vm_config *c = base;
	if (c->metrics_period_ms % 1000)
		fprintf(out, "%ums", c->metrics_period_ms);
	else
		fprintf(out, "%us", c->metrics_period_ms / 1000);
}

/* vsock.cid: empty is no vsock device; 0-2 are not a guest's (5.10.4). */
static int config_set_vsock_cid(void *base, const char *v, const struct set_ctx *x)
{
	struct vm_config *c = base;
	uint64_t cid;
	char vb[80];

	if (!*v) {
		c->vsock_cid = 0;
		return 0;
	}
	if (config_parse_uint(v, UINT32_MAX, &cid)) {
		set_error(x, "'%s' is not a number", config_shown(v, vb, sizeof(vb)));
		return -EINVAL;
	}
	if (cid < VSOCK_CID_MIN || cid > VSOCK_CID_MAX) {
		set_error(x, "%" PRIu64 " is not a guest CID: 0 and 1 are reserved, 2 is the host and "
			  "4294967295 is 'any'; use %u..%u", cid, VSOCK_CID_MIN, VSOCK_CID_MAX);
		return -EINVAL;
	}
	c->vsock_cid = (unsigned)cid;
	return 0;
}

static void config_print_vsock_cid(const void *base, FILE *out)
{
	const struct vm_config *c = base;
	if (c->vsock_cid)
		fprintf(out, "%u", c->vsock_cid);
}

static int config_set_overlay(void *base, const char *v, const struct set_ctx *x)
{
	struct disk_config *dc = base;
	char *path = NULL;
	enum overlay_kind kind = OVERLAY_FILE;
	if (!*v || strcmp(v, "none") == 0) {
		kind = OVERLAY_NONE;
	} else if (strcmp(v, "memory") == 0) {
		kind = OVERLAY_MEMORY;
	} else if (!(path = config_resolve_path(v, x->basedir))) {
		set_error(x, "out of memory");
		return -ENOMEM;
	}
	free(dc->overlay_path);
	dc->overlay_path = path;
	dc->overlay = kind;
	return 0;
}

static void config_print_overlay(const void *base, FILE *out)
{
	const struct disk_config *dc = base;
	if (dc->overlay == OVERLAY_FILE)
		config_print_path(out, "", dc->overlay_path);
	else
		fputs(dc->overlay == OVERLAY_MEMORY ? "memory" : "none", out);
}

/* ---- the key table -------------------------------------------------------- */

static const struct enum_name hugepage_names[] = {
	{ "off", HUGEPAGES_OFF }, { "2M", HUGEPAGES_2M }, { "1G", HUGEPAGES_1G },
	{ "on", HUGEPAGES_2M }, { NULL, 0 },
};
static const struct enum_name cache_names[] = {
	{ "none", DISK_CACHE_NONE }, { "writeback", DISK_CACHE_WRITEBACK }, { NULL, 0 },
};
static const struct enum_name io_names[] = {
	{ "io_uring", DISK_IO_URING }, { "sync", DISK_IO_SYNC }, { NULL, 0 },
};
static const struct enum_name vhost_names[] = {
	{ "auto", NET_VHOST_AUTO }, { "on", NET_VHOST_ON }, { "off", NET_VHOST_OFF }, { NULL, 0 },
};
static const struct enum_name vsock_backend_names[] = {
	{ "auto", VSOCK_BACKEND_AUTO }, { "vhost", VSOCK_BACKEND_VHOST },
	{ "userspace", VSOCK_BACKEND_USERSPACE }, { NULL, 0 },
};
static const struct enum_name transport_names[] = {
	{ "pci", TRANSPORT_PCI }, { "mmio", TRANSPORT_MMIO }, { NULL, 0 },
};
static const struct enum_name on_reboot_names[] = {
	{ "exit", ON_REBOOT_EXIT }, { "restart", ON_REBOOT_RESTART }, { NULL, 0 },
};
static const struct enum_name log_level_names[] = {
	{ "error", LOG_ERROR }, { "warn", LOG_WARN }, { "info", LOG_INFO },
	{ "debug", LOG_DEBUG }, { NULL, 0 },
};

#define KEY(n, g, st, f, t, ...) \
	{ .name = n, .group = g, .off = offsetof(st, f), .type = t, __VA_ARGS__ }
#define VMK(n, f, t, ...) KEY(n, G_VM, struct vm_config, f, t, __VA_ARGS__)
#define DISKK(n, f, t, ...) KEY(n, G_DISK, struct disk_config, f, t, __VA_ARGS__)
#define NETK(n, f, t, ...) KEY(n, G_NET, struct net_config, f, t, __VA_ARGS__)
#define SPECIAL(s, p) .set = s, .print = p
#define RANGE(lo, hi) .min = lo, .max = hi

/* In print order; the position within a group is the key's origin slot. */
const struct key_def config_keys[] = {
	VMK("kernel", kernel, T_PATH),
	VMK("initrd", initrd, T_PATH),
	VMK("cmdline", cmdline, T_STR),
	VMK("cpus", cpus, T_UINT, RANGE(1, CONFIG_MAX_CPUS)),
	VMK("cpu_affinity", cpu_affinity, T_SPECIAL, SPECIAL(config_set_affinity, config_print_affinity)),
	VMK("cpu_topology", sockets, T_SPECIAL, SPECIAL(config_set_topology, config_print_topology)),
	VMK("mem", mem, T_SIZE),
	VMK("mem_hugepages", mem_hugepages, T_ENUM, .names = hugepage_names),
	VMK("mem_numa_node", mem_numa_node, T_SPECIAL, SPECIAL(config_set_numa, config_print_numa)),
	VMK("mem_prefault", mem_prefault, T_BOOL),
	VMK("mem_thp", mem_thp, T_BOOL),
	VMK("mem_merge", mem_merge, T_BOOL),
	VMK("mem_overcommit", mem_overcommit, T_BOOL),
	VMK("serial", serial, T_SPECIAL, SPECIAL(config_set_serial, config_print_serial)),
	VMK("serial.max_size", serial_max_size, T_SIZE),
	VMK("balloon", balloon, T_BOOL),
	VMK("balloon.stats_period", balloon_stats_period, T_UINT, RANGE(0, UINT_MAX)),
	VMK("balloon.free_page_reporting", balloon_free_page_reporting, T_BOOL),
	VMK("balloon.deflate_on_oom", balloon_deflate_on_oom, T_BOOL),
	VMK("balloon.hugepage_giveback", balloon_hugepage_giveback, T_BOOL),
	VMK("vsock.cid", vsock_cid, T_SPECIAL, SPECIAL(config_set_vsock_cid, config_print_vsock_cid)),
	VMK("vsock.backend", vsock_backend, T_ENUM, .names = vsock_backend_names),
	VMK("vsock.uds", vsock_uds, T_PATH),
	VMK("transport", transport, T_ENUM, .names = transport_names),
	VMK("control", control, T_SPECIAL, SPECIAL(config_set_control, config_print_control)),
	VMK("timeout", timeout, T_UINT, RANGE(0, UINT_MAX)),
	VMK("on_reboot", on_reboot, T_ENUM, .names = on_reboot_names),
	VMK("debug_exit", debug_exit, T_BOOL),
	VMK("log_level", log_level, T_ENUM, .names = log_level_names),
	VMK("drop_caps", drop_caps, T_BOOL),
	VMK("seccomp", seccomp, T_BOOL),
	VMK("user", user, T_STR, .check = jail_check_id),
	VMK("group", group, T_STR, .check = jail_check_id),
	VMK("landlock", landlock, T_BOOL),
	VMK("cgroup", cgroup, T_STR, .check = cgroup_check_path),
	VMK("cgroup.cpu_max", cgroup_cpu_max, T_STR, .check = cgroup_check_cpu_max),
	VMK("cgroup.memory_max", cgroup_memory_max, T_STR, .check = cgroup_check_memory_max),
	VMK("cgroup.io_max", cgroup_io_max, T_STR, .check = cgroup_check_io_max),
	VMK("name", name, T_STR, .check = config_check_name),
	VMK("metrics", metrics, T_BOOL),
	VMK("metrics_file", metrics_file, T_PATH),
	VMK("metrics_period", metrics_period_ms, T_SPECIAL,
	    SPECIAL(config_set_period, config_print_period)),
	VMK("restore", restore, T_PATH),
	VMK("restore.prefault", restore_prefault, T_BOOL),
	VMK("snapshot_dir", snapshot_dir, T_PATH),

	DISKK("path", path, T_PATH),
	DISKK("readonly", readonly, T_BOOL),
	DISKK("cache", cache, T_ENUM, .names = cache_names),
	DISKK("io", io, T_ENUM, .names = io_names),
	DISKK("queues", queues, T_UINT, RANGE(0, CONFIG_MAX_CPUS)),
	DISKK("submit_batch", submit_batch, T_UINT, RANGE(1, ENGINE_MAX_SUBMIT_BATCH)),
	DISKK("serial", serial, T_STR, .check = config_check_disk_serial),
	DISKK("iops", iops, T_UINT, RANGE(0, UINT_MAX)),
	DISKK("iops_burst", iops_burst, T_UINT, RANGE(0, UINT_MAX)),
	DISKK("bandwidth", bandwidth, T_SIZE),
	DISKK("bandwidth_burst", bandwidth_burst, T_SIZE),
	DISKK("overlay", overlay, T_SPECIAL, SPECIAL(config_set_overlay, config_print_overlay)),
	DISKK("overlay_max", overlay_max, T_SIZE),
	DISKK("overlay_keep", overlay_keep, T_BOOL),

	NETK("tap", tap, T_STR, .check = config_check_tap),
	NETK("mac", mac, T_SPECIAL, SPECIAL(config_set_mac, config_print_mac)),
	NETK("vhost", vhost, T_ENUM, .names = vhost_names),
	NETK("queues", queues, T_UINT, RANGE(1, NET_MAX_PAIRS)),
	NETK("mtu", mtu, T_UINT, RANGE(68, 65535)),
	NETK("bandwidth", bandwidth, T_SIZE),
	NETK("bandwidth_burst", bandwidth_burst, T_SIZE),
};

#define NR_KEYS (sizeof(config_keys) / sizeof(config_keys[0]))
const size_t config_nr_keys = NR_KEYS;
#define NR_DISK_KEYS 14
#define NR_NET_KEYS 7
_Static_assert(NR_KEYS - NR_DISK_KEYS - NR_NET_KEYS <= CONFIG_VM_KEYS, "grow CONFIG_VM_KEYS");
_Static_assert(NR_DISK_KEYS <= CONFIG_DEV_KEYS && NR_NET_KEYS <= CONFIG_DEV_KEYS,
	       "grow CONFIG_DEV_KEYS");

static unsigned key_slot(const struct key_def *k)
{
	static const unsigned nr[] = { [G_VM] = NR_KEYS - NR_DISK_KEYS - NR_NET_KEYS,
				       [G_DISK] = NR_DISK_KEYS, [G_NET] = NR_NET_KEYS };
	unsigned slot = 0;
	for (const struct key_def *p = config_keys; p < k; p++)
		slot += p->group == k->group;
	assert(slot < nr[k->group]); /* NR_DISK_KEYS/NR_NET_KEYS match the table */
	return slot;
}

static void *key_base(struct vm_config *c, const struct key_ref *r)
{
	switch (r->def->group) {
	case G_DISK: return &c->disks[r->index];
	case G_NET: return &c->nets[r->index];
	default: return c;
	}
}

static const void *key_cbase(const struct vm_config *c, const struct key_def *k, unsigned index)
{
	struct key_ref r = { k, index };
	return key_base((struct vm_config *)c, &r);
}

struct config_origin *config_key_origin(struct vm_config *c, const struct key_ref *r)
{
	unsigned slot = key_slot(r->def);
	switch (r->def->group) {
	case G_DISK: return &c->disks[r->index].origin[slot];
	case G_NET: return &c->nets[r->index].origin[slot];
	default: return &c->origin[slot];
	}
}

static void *field_of(void *base, const struct key_def *k)
{
	return (char *)base + k->off;
}

static const void *cfield_of(const void *base, const struct key_def *k)
{
	return (const char *)base + k->off;
}

static const struct key_def *key_find(enum key_group g, const char *name)
{
	for (size_t i = 0; i < NR_KEYS; i++)
		if (config_keys[i].group == g && strcmp(config_keys[i].name, name) == 0)
			return &config_keys[i];
	return NULL;
}

/* "diskN.sub" / "netN.sub" into group, index and sub. Returns 1 when @key
 * has that shape (index may be out of range), 0 if not. */
static int split_indexed(const char *key, enum key_group *g, unsigned long *index,
			 const char **sub)
{
	for (int i = G_DISK; i <= G_NET; i++) {
		size_t n = strlen(config_groups[i].prefix);
		const char *p = key + n;
		if (strncmp(key, config_groups[i].prefix, n) != 0 || *p < '0' || *p > '9')
			continue;
		size_t digits = strspn(p, "0123456789");
		if (p[digits] != '.' || digits > 3 || (p[0] == '0' && digits > 1))
			return 0;
		*g = (enum key_group)i;
		*index = strtoul(p, NULL, 10);
		*sub = p + digits + 1;
		return 1;
	}
	return 0;
}

int config_key_lookup(const char *key, struct key_ref *r)
{
	enum key_group g;
	unsigned long index;
	const char *sub;

	if (split_indexed(key, &g, &index, &sub)) {
		r->def = key_find(g, sub);
		if (!r->def)
			return -ENOENT;
		r->index = (unsigned)index; /* at most three digits */
		return index >= config_groups[g].count ? -ERANGE : 0;
	}
	r->def = key_find(G_VM, key);
	r->index = 0;
	return r->def ? 0 : -ENOENT;
}

/* ---- setting ---------------------------------------------------------------- */

static void free_str(char **p)
{
	if (*p != default_name)
		free(*p);
	*p = NULL;
}

static const char *enum_list(const struct enum_name *names, char *buf, size_t len)
{
	size_t n = 0;
	buf[0] = '\0';
	for (; names->name && n < len; names++)
		n += (size_t)snprintf(buf + n, len - n, "%s%s", n ? ", " : "", names->name);
	return buf;
}

static int set_enum(const struct key_def *k, void *field, const char *v, const struct set_ctx *x)
{
	char list[128], vb[80];
	for (const struct enum_name *e = k->names; e->name; e++) {
		if (strcasecmp(v, e->name) == 0) {
			*(unsigned *)field = e->value;
			return 0;
		}
	}
	set_error(x, "'%s' is not one of: %s", config_shown(v, vb, sizeof(vb)),
		  enum_list(k->names, list, sizeof(list)));
	return -EINVAL;
}

static int set_number(const struct key_def *k, void *field, const char *v, const struct set_ctx *x)
{
	uint64_t n;
	char vb[80];
	int r = config_parse_uint(v, k->max, &n);
	if (r == 0 && n < k->min)
		r = -ERANGE;
	if (r == -ERANGE)
		set_error(x, "%s is out of range %" PRIu64 "..%" PRIu64, config_shown(v, vb, sizeof(vb)),
			  k->min, k->max);
	else if (r)
		set_error(x, "'%s' is not a number", config_shown(v, vb, sizeof(vb)));
	else
		*(unsigned *)field = (unsigned)n;
	return r ? -EINVAL : 0;
}

static int set_string(const struct key_def *k, void *field, const char *v, const struct set_ctx *x)
{
	const char *why = k->check ? k->check(v) : NULL;
	char vb[80], *copy = NULL;

	if (why) {
		set_error(x, "'%s' %s", config_shown(v, vb, sizeof(vb)), why);
		return -EINVAL;
	}
	if (*v) {
		copy = k->type == T_PATH ? config_resolve_path(v, x->basedir) : strdup(v);
		if (!copy) {
			set_error(x, "out of memory");
			return -ENOMEM;
		}
	}
	free_str(field);
	*(char **)field = copy;
	return 0;
}

static int key_apply(const struct key_def *k, void *base, const char *v, const struct set_ctx *x)
{
	void *field = field_of(base, k);
	char vb[80];
	int r;

	switch (k->type) {
	case T_STR:
	case T_PATH:
		return set_string(k, field, v, x);
	case T_UINT:
		return set_number(k, field, v, x);
	case T_ENUM:
		return set_enum(k, field, v, x);
	case T_SPECIAL:
		return k->set(base, v, x);
	case T_BOOL:
		r = config_parse_bool(v, field);
		if (r)
			set_error(x, "'%s' is not on or off", config_shown(v, vb, sizeof(vb)));
		return r;
	case T_SIZE:
		r = config_parse_size(v, field);
		if (r == -ERANGE)
			set_error(x, "'%s' is too large", config_shown(v, vb, sizeof(vb)));
		else if (r)
			set_error(x, "'%s' is not a size like 512M or 2G", config_shown(v, vb, sizeof(vb)));
		return r;
	}
	return -EINVAL;
}

int config_key_apply(struct vm_config *c, const struct key_ref *r, const char *v,
		     const struct set_ctx *x)
{
	int rc = key_apply(r->def, key_base(c, r), v, x);
	if (rc == 0 && r->def->group == G_DISK)
		c->disks[r->index].present = true;
	else if (rc == 0 && r->def->group == G_NET)
		c->nets[r->index].present = true;
	return rc;
}

/* ---- init, free -------------------------------------------------------------- */

void config_init(struct vm_config *c)
{
	memset(c, 0, sizeof(*c));
	c->cpus = 1;
	c->sockets = c->cores = c->threads = 1;
	c->mem = 128ull << 20;
	c->mem_hugepages = HUGEPAGES_OFF;
	c->mem_numa_node = -1;
	c->serial = SERIAL_STDIO;
	c->serial_max_size = CONFIG_DEFAULT_SERIAL_MAX_SIZE;
	c->transport = TRANSPORT_PCI;
	c->on_reboot = ON_REBOOT_EXIT;
	c->log_level = LOG_WARN;
	c->drop_caps = true;
	c->seccomp = true;
	c->name = (char *)default_name; /* never freed, see free_str() */
	c->metrics = true;
	c->metrics_period_ms = 10000;
	for (unsigned i = 0; i < CONFIG_MAX_DISKS; i++) {
		c->disks[i].cache = DISK_CACHE_NONE;
		c->disks[i].io = DISK_IO_URING;
		c->disks[i].submit_batch = ENGINE_DEFAULT_SUBMIT_BATCH;
	}
	for (unsigned i = 0; i < CONFIG_MAX_NETS; i++) {
		c->nets[i].vhost = NET_VHOST_AUTO;
		c->nets[i].queues = 1;
		c->nets[i].mtu = 1500;
	}
}

void config_free(struct vm_config *c)
{
	for (size_t i = 0; i < NR_KEYS; i++) {
		const struct key_def *k = &config_keys[i];
		for (unsigned n = 0; n < config_groups[k->group].count; n++) {
			struct key_ref r = { k, n };
			struct config_origin *o = config_key_origin(c, &r);
			free(o->file);
			if (k->type == T_STR || k->type == T_PATH)
				free_str(field_of(key_base(c, &r), k));
		}
	}
	for (unsigned i = 0; i < CONFIG_MAX_DISKS; i++)
		free(c->disks[i].overlay_path);
	free(c->serial_path);
	free(c->control);
	config_init(c);
}

/* ---- printing ---------------------------------------------------------------- */

static void print_value(const struct key_def *k, const void *base, FILE *out)
{
	const void *field = cfield_of(base, k);
	char buf[32];

	switch (k->type) {
	case T_STR:
		config_print_str(out, *(char *const *)field);
		break;
	case T_PATH:
		config_print_path(out, "", *(char *const *)field);
		break;
	case T_BOOL:
		fputs(*(const bool *)field ? "on" : "off", out);
		break;
	case T_UINT:
		fprintf(out, "%u", *(const unsigned *)field);
		break;
	case T_SIZE:
		fputs(config_fmt_size(*(const uint64_t *)field, buf, sizeof(buf)), out);
		break;
	case T_ENUM:
		for (const struct enum_name *e = k->names; e->name; e++) {
			if (e->value == *(const unsigned *)field) {
				fputs(e->name, out);
				break;
			}
		}
		break;
	case T_SPECIAL:
		k->print(base, out);
		break;
	}
}

static void print_group(const struct vm_config *c, enum key_group g, unsigned index, FILE *out)
{
	for (size_t i = 0; i < NR_KEYS; i++) {
		const struct key_def *k = &config_keys[i];
		if (k->group != g)
			continue;
		if (g == G_VM)
			fprintf(out, "%s=", k->name);
		else
			fprintf(out, "%s%u.%s=", config_groups[g].prefix, index, k->name);
		print_value(k, key_cbase(c, k, index), out);
		fputc('\n', out);
	}
}

void config_print(const struct vm_config *c, FILE *out)
{
	print_group(c, G_VM, 0, out);
	for (unsigned i = 0; i < CONFIG_MAX_DISKS; i++)
		if (c->disks[i].present)
			print_group(c, G_DISK, i, out);
	for (unsigned i = 0; i < CONFIG_MAX_NETS; i++)
		if (c->nets[i].present)
			print_group(c, G_NET, i, out);
}
