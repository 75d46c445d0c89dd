/* Checks of a whole configuration: config_validate()'s cross-key checks,
 * reported where the keys concerned were set, and config_suggest_key()'s
 * "did you mean" over the key table. */
#include "vmm/config.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <string.h>

#include "mem/layout.h"
#include "vmm/config_priv.h"
#include "lib/cpulist.h"

#define MIN_MEM (16ull << 20)
#define SUN_PATH_MAX 107           /* sizeof(sockaddr_un.sun_path) - 1 */

/* ---- "did you mean" -------------------------------------------------------- */

/* Optimal string alignment distance (Levenshtein plus transpositions). */
static unsigned edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	unsigned rows[3][CONFIG_MAX_SUGGEST_LEN + 1];
	unsigned *prev2 = rows[0], *prev = rows[1], *cur = rows[2];

	if (la > CONFIG_MAX_SUGGEST_LEN || lb > CONFIG_MAX_SUGGEST_LEN)
		return UINT_MAX;
	for (size_t j = 0; j <= lb; j++)
		prev[j] = (unsigned)j;
	for (size_t i = 1; i <= la; i++) {
		cur[0] = (unsigned)i;
		for (size_t j = 1; j <= lb; j++) {
			unsigned cost = a[i - 1] != b[j - 1];
			unsigned best = prev[j - 1] + cost;
			if (prev[j] + 1 < best)
				best = prev[j] + 1;
			if (cur[j - 1] + 1 < best)
				best = cur[j - 1] + 1;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
			    prev2[j - 2] + 1 < best)
				best = prev2[j - 2] + 1;
			cur[j] = best;
		}
		unsigned *t = prev2;
		prev2 = prev;
		prev = cur;
		cur = t;
	}
	return prev[lb];
}

/* The index the user wrote (first run of up to 3 digits), else "0". */
static void user_index(const char *key, char idx[4])
{
	const char *p = key + strcspn(key, "0123456789");
	size_t n = strspn(p, "0123456789");
	if (n == 0 || n > 3)
		p = "0", n = 1;
	memcpy(idx, p, n);
	idx[n] = '\0';
}

static bool prefix_close(const char *key, const char *cand)
{
	size_t lk = strlen(key), lc = strlen(cand);
	size_t shorter = lk < lc ? lk : lc;
	return shorter >= 3 && strncmp(key, cand, shorter) == 0;
}

const char *config_suggest_key(const char *key, char *buf, size_t buflen)
{
	size_t len = strlen(key);
	unsigned limit = len / 3 > 2 ? (unsigned)(len / 3) : 2, best = UINT_MAX;
	char idx[4], cand[CONFIG_MAX_SUGGEST_LEN + 16];

	if (len > CONFIG_MAX_SUGGEST_LEN)
		return NULL;
	user_index(key, idx);
	for (size_t i = 0; i < config_nr_keys; i++) {
		const struct key_def *k = &config_keys[i];
		if (k->group == G_VM)
			snprintf(cand, sizeof(cand), "%s", k->name);
		else
			snprintf(cand, sizeof(cand), "%s%s.%s", config_groups[k->group].prefix, idx, k->name);
		unsigned d = edit_distance(key, cand);
		if (d > limit)
			d = prefix_close(key, cand) ? limit + d : UINT_MAX; /* after close ones */
		if (d < best && d > 0 && strlen(cand) < buflen) {
			best = d;
			memcpy(buf, cand, strlen(cand) + 1);
		}
	}
	return best == UINT_MAX ? NULL : buf;
}

/* ---- validation ----------------------------------------------------------------- */

void config_report_key(struct vm_config *c, struct config_diag *d, const char *key,
		       const char *fmt, ...)
{
	struct key_ref r;
	const struct config_origin *o = NULL;
	char msg[512];
	va_list ap;

	if (config_key_lookup(key, &r) == 0)
		o = config_key_origin(c, &r);
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	config_report(d, o ? o->file : NULL, o && o->file ? o->line : 0, key, "%s", msg);
}

/* "set at FILE:LINE" or "default", for naming the other key of a conflict. */
static const char *where(struct vm_config *c, const char *key, char *buf, size_t len)
{
	struct key_ref r;
	if (config_key_lookup(key, &r) == 0) {
		const struct config_origin *o = config_key_origin(c, &r);
		if (o->file) {
			snprintf(buf, len, "set at %s:%u", o->file, o->line);
			return buf;
		}
	}
	return "default";
}

static void validate_cpus(struct vm_config *c, struct config_diag *d)
{
	char w[256];
	if (c->cpus < 1 || c->cpus > CONFIG_MAX_CPUS)
		config_report_key(c, d, "cpus", "%u is out of range 1..%d", c->cpus, CONFIG_MAX_CPUS);
	if (!c->topology_set) {
		c->sockets = c->threads = 1;
		c->cores = c->cpus;
	} else if ((uint64_t)c->sockets * c->cores * c->threads != c->cpus) {
		config_report_key(c, d, "cpu_topology", "%u:%u:%u makes %" PRIu64 " CPUs but cpus=%u (%s)",
			c->sockets, c->cores, c->threads,
			(uint64_t)c->sockets * c->cores * c->threads, c->cpus,
			where(c, "cpus", w, sizeof(w)));
	}
	if (c->nr_cpu_affinity == 0)
		return;
	if (c->nr_cpu_affinity < c->cpus)
		config_report_key(c, d, "cpu_affinity", "lists %u host CPUs but cpus=%u (%s); give one per vCPU",
			c->nr_cpu_affinity, c->cpus, where(c, "cpus", w, sizeof(w)));
	for (unsigned i = 0; i < c->nr_cpu_affinity; i++) {
		int r = cpulist_host_online(c->cpu_affinity[i]);
		if (r < 0) {
			config_report_key(c, d, "cpu_affinity", "cannot read /sys/devices/system/cpu/online: %s",
				strerror(-r));
			return;
		}
		if (r == 0)
			config_report_key(c, d, "cpu_affinity", "host CPU %u is not online", c->cpu_affinity[i]);
	}
}

static void validate_mem(struct vm_config *c, struct config_diag *d)
{
	static const uint64_t align[] = {
		[HUGEPAGES_OFF] = 4096, [HUGEPAGES_2M] = 2ull << 20, [HUGEPAGES_1G] = 1ull << 30,
	};
	char a[32], b[32], w[256];

	if (c->mem < MIN_MEM) {
		config_report_key(c, d, "mem", "%s is less than the minimum 16M",
				  config_fmt_size(c->mem, a, sizeof(a)));
	} else if ((unsigned)c->mem_hugepages < 3 && c->mem % align[c->mem_hugepages]) {
		config_report_key(c, d, "mem", "%s is not a multiple of %s (mem_hugepages, %s)",
			config_fmt_size(c->mem, a, sizeof(a)), config_fmt_size(align[c->mem_hugepages], b, sizeof(b)),
			where(c, "mem_hugepages", w, sizeof(w)));
	}
	if (c->mem_numa_node < -1)
		config_report_key(c, d, "mem_numa_node", "%d is not a node number (>= 0) or none",
			c->mem_numa_node);
}

static void validate_misc(struct vm_config *c, struct config_diag *d)
{
	const char *why;
	char nb[80];

	if (!c->kernel && !c->restore)
		config_report_key(c, d, "kernel", "no kernel given; set kernel=PATH");
	if (c->serial == SERIAL_FILE && (!c->serial_path || !*c->serial_path))
		config_report_key(c, d, "serial", "file: needs a path");
	if (c->control && strlen(c->control) > SUN_PATH_MAX)
		config_report_key(c, d, "control", "path is %zu bytes; a socket path is at most %d",
			strlen(c->control), SUN_PATH_MAX);
	why = c->name ? config_check_name(c->name) : "must be set";
	if (why)
		config_report_key(c, d, "name", "'%s' %s",
				  config_shown(c->name ? c->name : "", nb, sizeof(nb)), why);
}

/* The first key of device @index that was set, for naming it in messages. */
static void first_set_key(struct vm_config *c, enum key_group g, unsigned index,
			  char *buf, size_t len)
{
	const char *sub = g == G_DISK ? "path" : "tap";
	for (size_t i = 0; i < config_nr_keys; i++) {
		struct key_ref r = { &config_keys[i], index };
		if (config_keys[i].group == g && config_key_origin(c, &r)->file) {
			sub = config_keys[i].name;
			break;
		}
	}
	snprintf(buf, len, "%s%u.%s", config_groups[g].prefix, index, sub);
}

/* An overlay takes the disk's writes: pointless on a readonly disk, and
 * only a file can be kept, as the disk's alone. */
static void validate_overlay(struct vm_config *c, struct config_diag *d, unsigned i)
{
	const struct disk_config *dc = &c->disks[i];
	char key[32];
	if (dc->overlay && dc->readonly) {
		snprintf(key, sizeof(key), "disk%u.overlay", i);
		config_report_key(c, d, key, "disk%u.readonly=on takes no writes, so an overlay "
				  "has nothing to hold; drop one of them", i);
	}
	if (dc->overlay_keep && dc->overlay != OVERLAY_FILE) {
		snprintf(key, sizeof(key), "disk%u.overlay_keep", i);
		config_report_key(c, d, key, "on needs disk%u.overlay=PATH (%s cannot be kept)", i,
				  dc->overlay == OVERLAY_MEMORY ? "a memory overlay" : "there is no overlay");
	}
	if (dc->overlay_max && !dc->overlay) {
		snprintf(key, sizeof(key), "disk%u.overlay_max", i);
		config_report_key(c, d, key, "bounds an overlay, but disk%u.overlay is not set", i);
	}
	if (dc->overlay_max && dc->overlay_max < OVERLAY_BLOCK_SIZE) {
		snprintf(key, sizeof(key), "disk%u.overlay_max", i);
		config_report_key(c, d, key, "is less than one %u-byte overlay block", OVERLAY_BLOCK_SIZE);
	}
	if (dc->overlay != OVERLAY_FILE)
		return;
	snprintf(key, sizeof(key), "disk%u.overlay", i);
	if (dc->path && strcmp(dc->path, dc->overlay_path) == 0)
		config_report_key(c, d, key, "is the disk's own image, disk%u.path", i);
	for (unsigned j = 0; j < CONFIG_MAX_DISKS; j++) {
		const struct disk_config *o = &c->disks[j];
		if (j == i || !o->present)
			continue;
		if ((o->overlay == OVERLAY_FILE && j < i && strcmp(o->overlay_path, dc->overlay_path) == 0) ||
		    (o->path && strcmp(o->path, dc->overlay_path) == 0))
			config_report_key(c, d, key, "is also disk%u's %s", j,
					  o->path && strcmp(o->path, dc->overlay_path) == 0 ? "image" : "overlay");
	}
}

static void validate_disks(struct vm_config *c, struct config_diag *d)
{
	char key[32];
	for (unsigned i = 0; i < CONFIG_MAX_DISKS; i++) {
		struct disk_config *dc = &c->disks[i];
		if (!dc->present)
			continue;
		if (!dc->path) {
			first_set_key(c, G_DISK, i, key, sizeof(key));
			config_report_key(c, d, key, "disk%u has no disk%u.path", i, i);
			continue;
		}
		for (unsigned j = 0; j < i; j++) {
			const struct disk_config *o = &c->disks[j];
			bool shared = (o->readonly || o->overlay) && (dc->readonly || dc->overlay);
			if (!o->present || !o->path || strcmp(o->path, dc->path) || shared)
				continue;
			snprintf(key, sizeof(key), "disk%u.path", i);
			config_report_key(c, d, key, "same image as disk%u (and not both readonly)", j);
		}
		validate_overlay(c, d, i);
		if (dc->queues > CONFIG_MAX_CPUS) {
			snprintf(key, sizeof(key), "disk%u.queues", i);
			config_report_key(c, d, key, "%u is out of range 0..%d", dc->queues, CONFIG_MAX_CPUS);
		}
	}
}

static void validate_nets(struct vm_config *c, struct config_diag *d)
{
	char key[32];
	for (unsigned i = 0; i < CONFIG_MAX_NETS; i++) {
		struct net_config *n = &c->nets[i];
		if (!n->present)
			continue;
		if (!n->tap) {
			first_set_key(c, G_NET, i, key, sizeof(key));
			config_report_key(c, d, key, "net%u has no net%u.tap", i, i);
		}
		for (unsigned j = 0; n->tap && j < i; j++) {
			if (c->nets[j].present && c->nets[j].tap && strcmp(c->nets[j].tap, n->tap) == 0) {
				snprintf(key, sizeof(key), "net%u.tap", i);
				config_report_key(c, d, key, "tap %s is already used by net%u", n->tap, j);
			}
		}
		snprintf(key, sizeof(key), "net%u.queues", i);
		if (n->queues < 1 || n->queues > 16)
			config_report_key(c, d, key, "%u is out of range 1..16", n->queues);
		snprintf(key, sizeof(key), "net%u.mtu", i);
		if (n->mtu < 68 || n->mtu > 65535)
			config_report_key(c, d, key, "%u is out of range 68..65535", n->mtu);
		/* vhost-net moves frames in the kernel, where no bucket of
		 * ours can stop them: a limit needs the userspace backend */
		snprintf(key, sizeof(key), "net%u.bandwidth", i);
		if (n->bandwidth && n->vhost == NET_VHOST_ON)
			config_report_key(c, d, key, "needs the userspace backend, but net%u.vhost=on "
					  "moves frames in the kernel where they cannot be limited; "
					  "set net%u.vhost=off or auto", i, i);
	}
}

static void validate_vsock(struct vm_config *c, struct config_diag *d)
{
	if (!c->vsock_cid) {
		if (c->vsock_uds)
			config_report_key(c, d, "vsock.uds", "there is no vsock device: set vsock.cid");
		if (c->vsock_backend != VSOCK_BACKEND_AUTO)
			config_report_key(c, d, "vsock.backend", "there is no vsock device: set vsock.cid");
		return;
	}
	if (c->vsock_backend == VSOCK_BACKEND_USERSPACE && !c->vsock_uds)
		config_report_key(c, d, "vsock.backend", "userspace needs vsock.uds=PATH, the Unix "
				  "socket host programs connect to");
	if (c->vsock_uds && strlen(c->vsock_uds) > VSOCK_UDS_MAX_PATH)
		config_report_key(c, d, "vsock.uds", "path longer than %d bytes: PATH_<port> would "
				  "not fit a Unix socket address", VSOCK_UDS_MAX_PATH);
}

/* virtio-mmio gives each device an interrupt line of its own, and there
 * are GSI_VIRTIO_SLOTS of them (PCI shares lines and uses MSI-X). */
static void validate_transport(struct vm_config *c, struct config_diag *d)
{
	unsigned disks = 0, nets = 0;
	for (unsigned i = 0; i < CONFIG_MAX_DISKS; i++)
		disks += c->disks[i].present;
	for (unsigned i = 0; i < CONFIG_MAX_NETS; i++)
		nets += c->nets[i].present;
	unsigned n = disks + nets + (c->balloon ? 1 : 0) + (c->vsock_cid ? 1 : 0);
	if (c->transport == TRANSPORT_MMIO && n > GSI_VIRTIO_SLOTS)
		config_report_key(c, d, "transport",
				  "mmio has interrupt lines for %d virtio devices but this VM has %u "
				  "(%u disks, %u nets%s%s); use transport=pci",
				  GSI_VIRTIO_SLOTS, n, disks, nets, c->balloon ? ", a balloon" : "",
				  c->vsock_cid ? ", a vsock" : "");
}

/* The cgroup's passthroughs need the group. */
static void validate_jail(struct vm_config *c, struct config_diag *d)
{
	static const char *const keys[] = { "cgroup.cpu_max", "cgroup.memory_max", "cgroup.io_max" };
	const char *vals[] = { c->cgroup_cpu_max, c->cgroup_memory_max, c->cgroup_io_max };
	for (unsigned i = 0; i < 3; i++)
		if (vals[i] && !c->cgroup)
			config_report_key(c, d, keys[i], "needs cgroup=PATH, the group to write it to");
}

int config_validate(struct vm_config *c, struct config_diag *d)
{
	unsigned before = d->errors;
	validate_misc(c, d);
	validate_transport(c, d);
	validate_cpus(c, d);
	validate_mem(c, d);
	validate_disks(c, d);
	validate_nets(c, d);
	validate_jail(c, d);
	validate_vsock(c, d);
	return d->errors > before ? -EINVAL : 0;
}
