/* The VM configuration parser. One static table of keys drives setting,
 * printing, freeing and "did you mean"; see config.h for the syntax. */
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
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/cpulist.h"

#define MIN_MEM (16ull << 20)
#define MAX_SUGGEST_LEN 64         /* longer keys get no suggestion */
#define VIRTIO_BLK_ID_BYTES 20     /* virtio spec 5.2.6: GET_ID string */
#define TAP_NAME_MAX 15            /* IFNAMSIZ - 1 */
#define SUN_PATH_MAX 107           /* sizeof(sockaddr_un.sun_path) - 1 */
#define NAME_MAX_LEN 64

static const char default_name[] = "kvmrun";

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

static const struct group_def groups[] = {
	[G_VM] = { NULL, 1 },
	[G_DISK] = { "disk", CONFIG_MAX_DISKS },
	[G_NET] = { "net", CONFIG_MAX_NETS },
};

/* A key as written, resolved to its definition and device index. */
struct key_ref {
	const struct key_def *def;
	unsigned index;
};

_Static_assert(sizeof(enum hugepages) == sizeof(unsigned), "enum fields are stored as unsigned");
_Static_assert(sizeof(enum log_level) == sizeof(unsigned), "enum fields are stored as unsigned");

/* ---- messages ---------------------------------------------------------- */

/* @s made safe to print: control and non-ASCII bytes as '?', cut short. */
static const char *shown(const char *s, char *buf, size_t len)
{
	size_t i = 0;
	if (!*s)
		return "\"\"";
	for (; s[i] && i + 4 < len; i++) {
		unsigned char ch = (unsigned char)s[i];
		buf[i] = ch < 0x20 || ch >= 0x7f ? '?' : (char)ch;
	}
	if (s[i])
		memcpy(buf + i, "...", 3), i += 3;
	buf[i] = '\0';
	return buf;
}

/* Prints "FILE:LINE: KEY: message" and counts it. file NULL is a default;
 * line 0 and key NULL are left out. */
__attribute__((format(printf, 5, 6)))
static void report(struct config_diag *d, const char *file, unsigned line,
		   const char *key, const char *fmt, ...)
{
	FILE *out = d->out ? d->out : stderr;
	char kb[80];
	va_list ap;

	fputs(file ? file : "(default)", out);
	if (line)
		fprintf(out, ":%u", line);
	if (key)
		fprintf(out, ": %s", shown(key, kb, sizeof(kb)));
	fputs(": ", out);
	va_start(ap, fmt);
	vfprintf(out, fmt, ap);
	va_end(ap);
	fputc('\n', out);
	d->errors++;
}

#define set_error(x, ...) report((x)->d, (x)->file, (x)->line, (x)->key, __VA_ARGS__)

/* ---- value parsers ----------------------------------------------------- */

/* Leading decimal digits of @s into *v; *end after them. */
static int parse_digits(const char *s, uint64_t *v, const char **end)
{
	uint64_t n = 0;
	if (*s < '0' || *s > '9')
		return -EINVAL;
	for (; *s >= '0' && *s <= '9'; s++) {
		unsigned digit = (unsigned)(*s - '0');
		if (n > (UINT64_MAX - digit) / 10)
			return -ERANGE;
		n = n * 10 + digit;
	}
	*v = n;
	*end = s;
	return 0;
}

int config_parse_uint(const char *s, uint64_t max, uint64_t *out)
{
	uint64_t v;
	const char *end;
	int r = parse_digits(s, &v, &end);
	if (r)
		return r;
	if (*end)
		return -EINVAL;
	if (v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

static unsigned size_shift(char c)
{
	switch (c) {
	case 'k': case 'K': return 10;
	case 'm': case 'M': return 20;
	case 'g': case 'G': return 30;
	case 't': case 'T': return 40;
	default: return 0;
	}
}

int config_parse_size(const char *s, uint64_t *out)
{
	uint64_t v;
	const char *p;
	int r = parse_digits(s, &v, &p);
	if (r)
		return r;
	unsigned shift = size_shift(*p);
	if (shift)
		p++;
	if (shift && p[0] == 'i' && p[1] == 'B')
		p += 2;
	else if (*p == 'B')
		p++;
	if (*p)
		return -EINVAL;
	if (shift && v > (UINT64_MAX >> shift))
		return -ERANGE;
	*out = v << shift;
	return 0;
}

int config_parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = { "on", "yes", "true", "1" };
	static const char *const no[] = { "off", "no", "false", "0" };
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcasecmp(s, yes[i]) == 0 || strcasecmp(s, no[i]) == 0) {
			*out = strcasecmp(s, yes[i]) == 0;
			return 0;
		}
	}
	return -EINVAL;
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int config_parse_mac(const char *s, uint8_t mac[6])
{
	uint8_t m[6];
	for (int i = 0; i < 6; i++, s += 3) {
		int hi = hex_digit(s[0]), lo = hi < 0 ? -1 : hex_digit(s[1]);
		if (lo < 0 || s[2] != (i == 5 ? '\0' : ':'))
			return -EINVAL;
		m[i] = (uint8_t)(hi << 4 | lo);
	}
	memcpy(mac, m, 6);
	return 0;
}

/* "128M", "1G", "4097K", "513": the largest binary unit that is exact. */
static const char *fmt_size(uint64_t v, char *buf, size_t len)
{
	static const char units[] = "TGMK";
	for (int i = 0; v && i < 4; i++) {
		unsigned shift = 40 - 10 * (unsigned)i;
		if ((v & ((1ull << shift) - 1)) == 0) {
			snprintf(buf, len, "%" PRIu64 "%c", v >> shift, units[i]);
			return buf;
		}
	}
	snprintf(buf, len, "%" PRIu64, v);
	return buf;
}

/* ---- quoting ------------------------------------------------------------ */

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

static char *trim(char *s)
{
	while (is_blank(*s))
		s++;
	size_t n = strlen(s);
	while (n && is_blank(s[n - 1]))
		s[--n] = '\0';
	return s;
}

/* Unquotes the value at @s (which starts with '"') in place. Returns NULL
 * or what is wrong. */
static const char *unquote(char *s)
{
	char *out = s;
	for (const char *p = s + 1;; p++) {
		if (*p == '\0')
			return "unterminated quote";
		if (*p == '"') {
			*out = '\0';
			while (is_blank(*++p))
				;
			return *p ? "text after the closing quote" : NULL;
		}
		if (*p != '\\') {
			*out++ = *p;
			continue;
		}
		switch (*++p) {
		case '\\': *out++ = '\\'; break;
		case '"': *out++ = '"'; break;
		case 'n': *out++ = '\n'; break;
		case 'r': *out++ = '\r'; break;
		case 't': *out++ = '\t'; break;
		case 'x': {
			int hi = hex_digit(p[1]), lo = hi < 0 ? -1 : hex_digit(p[2]);
			if (lo < 0 || (hi | lo) == 0)
				return "\\x needs two hex digits and must not be \\x00";
			*out++ = (char)(hi << 4 | lo);
			p += 2;
			break;
		}
		default:
			return "unknown escape (use \\\\ \\\" \\n \\r \\t \\xHH)";
		}
	}
}

static bool needs_quotes(const char *v)
{
	if (*v == '"')
		return true;
	for (; *v; v++) {
		unsigned char ch = (unsigned char)*v;
		if (ch <= ' ' || ch == 0x7f)
			return true;
	}
	return false;
}

/* Prints @v (NULL: nothing) so that unquote() or a bare read gives it back. */
static void print_str(FILE *out, const char *v)
{
	if (!v)
		return;
	if (!needs_quotes(v)) {
		fputs(v, out);
		return;
	}
	fputc('"', out);
	for (; *v; v++) {
		unsigned char ch = (unsigned char)*v;
		if (ch == '"' || ch == '\\')
			fprintf(out, "\\%c", ch);
		else if (ch == '\n')
			fputs("\\n", out);
		else if (ch == '\r')
			fputs("\\r", out);
		else if (ch == '\t')
			fputs("\\t", out);
		else if (ch < 0x20 || ch == 0x7f)
			fprintf(out, "\\x%02x", ch);
		else
			fputc(ch, out);
	}
	fputc('"', out);
}

/* Splits "key = value" in place into trimmed key and unquoted value.
 * Returns NULL or what is wrong; *key is always set (for the message). */
static const char *split_kv(char *s, char **key, char **val)
{
	char *eq = strchr(s, '=');
	if (!eq) {
		s = trim(s);
		s[strcspn(s, " \t")] = '\0';
		*key = s;
		return "expected key=value";
	}
	*eq = '\0';
	*key = trim(s);
	*val = trim(eq + 1);
	if (!**key)
		return "empty key before '='";
	return **val == '"' ? unquote(*val) : NULL;
}

/* ---- special keys -------------------------------------------------------- */

static int set_affinity(void *base, const char *v, const struct set_ctx *x)
{
	struct vm_config *c = base;
	unsigned cpus[CONFIG_MAX_CPUS];
	size_t n = 0;
	char vb[80];

	if (*v) {
		int r = cpulist_parse(v, cpus, CONFIG_MAX_CPUS, &n);
		if (r == -ERANGE) {
			set_error(x, "'%s' lists more than %d CPUs or a CPU above 65535",
				  shown(v, vb, sizeof(vb)), CONFIG_MAX_CPUS);
			return -EINVAL;
		}
		if (r) {
			set_error(x, "'%s' is not a CPU list like 0-3,6 (ascending ranges, no duplicates)",
				  shown(v, vb, sizeof(vb)));
			return -EINVAL;
		}
	}
	memcpy(c->cpu_affinity, cpus, n * sizeof(cpus[0]));
	c->nr_cpu_affinity = (unsigned)n;
	return 0;
}

static void print_affinity(const void *base, FILE *out)
{
	const struct vm_config *c = base;
	char buf[CONFIG_MAX_CPUS * 12];
	if (cpulist_format(c->cpu_affinity, c->nr_cpu_affinity, buf, sizeof(buf)) >= 0)
		fputs(buf, out);
}

static int set_topology(void *base, const char *v, const struct set_ctx *x)
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
		  shown(v, vb, sizeof(vb)), CONFIG_MAX_CPUS);
	return -EINVAL;
}

static void print_topology(const void *base, FILE *out)
{
	const struct vm_config *c = base;
	if (c->topology_set)
		fprintf(out, "%u:%u:%u", c->sockets, c->cores, c->threads);
	else
		fputs("auto", out);
}

static int set_numa(void *base, const char *v, const struct set_ctx *x)
{
	struct vm_config *c = base;
	uint64_t node;
	char vb[80];

	if (!*v || strcmp(v, "none") == 0) {
		c->mem_numa_node = -1;
		return 0;
	}
	if (config_parse_uint(v, INT_MAX, &node)) {
		set_error(x, "'%s' is not a NUMA node number (>= 0) or none", shown(v, vb, sizeof(vb)));
		return -EINVAL;
	}
	c->mem_numa_node = (int)node;
	return 0;
}

static void print_numa(const void *base, FILE *out)
{
	const struct vm_config *c = base;
	if (c->mem_numa_node < 0)
		fputs("none", out);
	else
		fprintf(out, "%d", c->mem_numa_node);
}

/* Prints a path; a relative one (set on the command line, so relative to
 * the cwd) is printed joined to the cwd, so the output loads the same from
 * any directory. */
static void print_path(FILE *out, const char *prefix, const char *v)
{
	char *cwd = v && *v && v[0] != '/' ? getcwd(NULL, 0) : NULL, *s;
	if (asprintf(&s, "%s%s%s%s", prefix, cwd ? cwd : "", cwd ? "/" : "", v ? v : "") >= 0) {
		print_str(out, *s ? s : NULL);
		free(s);
	}
	free(cwd);
}

/* @v as stored: resolved against the config file's directory if relative. */
static char *resolve_path(const char *v, const struct set_ctx *x)
{
	char *p;
	if (!x->basedir || v[0] == '/')
		return strdup(v);
	size_t n = strlen(x->basedir);
	const char *sep = n && x->basedir[n - 1] == '/' ? "" : "/";
	return asprintf(&p, "%s%s%s", x->basedir, sep, v) < 0 ? NULL : p;
}

static int set_serial(void *base, const char *v, const struct set_ctx *x)
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
		path = resolve_path(v + 5, x);
		if (!path) {
			set_error(x, "out of memory");
			return -ENOMEM;
		}
	} else {
		set_error(x, "'%s' is not one of: stdio, file:PATH, none", shown(v, vb, sizeof(vb)));
		return -EINVAL;
	}
	free(c->serial_path);
	c->serial_path = path;
	c->serial = mode;
	return 0;
}

static void print_serial(const void *base, FILE *out)
{
	const struct vm_config *c = base;
	if (c->serial == SERIAL_FILE)
		print_path(out, "file:", c->serial_path); /* quotes "file:/a b" whole */
	else
		fputs(c->serial == SERIAL_NONE ? "none" : "stdio", out);
}

static int set_mac(void *base, const char *v, const struct set_ctx *x)
{
	struct net_config *n = base;
	uint8_t mac[6];
	char vb[80];

	if (!*v) {
		n->mac_set = false;
		return 0;
	}
	if (config_parse_mac(v, mac)) {
		set_error(x, "'%s' is not a MAC address like 52:54:00:12:34:56", shown(v, vb, sizeof(vb)));
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

static void print_mac(const void *base, FILE *out)
{
	const struct net_config *n = base;
	if (n->mac_set)
		fprintf(out, "%02x:%02x:%02x:%02x:%02x:%02x", n->mac[0], n->mac[1],
			n->mac[2], n->mac[3], n->mac[4], n->mac[5]);
}

static const char *check_name(const char *v)
{
	if (!*v)
		return "must not be empty";
	if (strlen(v) > NAME_MAX_LEN)
		return "is longer than 64 characters";
	if (v[strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-")])
		return "may only contain A-Z a-z 0-9 . _ -";
	return NULL;
}

static const char *check_tap(const char *v)
{
	if (strlen(v) > TAP_NAME_MAX)
		return "is longer than 15 characters (IFNAMSIZ)";
	if (v[strcspn(v, "/ \t\n:")])
		return "is not an interface name (no '/', ':' or blanks)";
	return NULL;
}

static const char *check_disk_serial(const char *v)
{
	return strlen(v) > VIRTIO_BLK_ID_BYTES ? "is longer than 20 bytes (virtio-blk ID)" : NULL;
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
static const struct enum_name tristate_names[] = {
	{ "auto", TRISTATE_AUTO }, { "on", TRISTATE_ON }, { "off", TRISTATE_OFF }, { NULL, 0 },
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
static const struct key_def keys[] = {
	VMK("kernel", kernel, T_PATH),
	VMK("initrd", initrd, T_PATH),
	VMK("cmdline", cmdline, T_STR),
	VMK("cpus", cpus, T_UINT, RANGE(1, CONFIG_MAX_CPUS)),
	VMK("cpu_affinity", cpu_affinity, T_SPECIAL, SPECIAL(set_affinity, print_affinity)),
	VMK("cpu_topology", sockets, T_SPECIAL, SPECIAL(set_topology, print_topology)),
	VMK("mem", mem, T_SIZE),
	VMK("mem_hugepages", mem_hugepages, T_ENUM, .names = hugepage_names),
	VMK("mem_numa_node", mem_numa_node, T_SPECIAL, SPECIAL(set_numa, print_numa)),
	VMK("mem_prefault", mem_prefault, T_BOOL),
	VMK("mem_thp", mem_thp, T_BOOL),
	VMK("mem_merge", mem_merge, T_BOOL),
	VMK("serial", serial, T_SPECIAL, SPECIAL(set_serial, print_serial)),
	VMK("balloon", balloon, T_BOOL),
	VMK("balloon.stats_period", balloon_stats_period, T_UINT, RANGE(0, UINT_MAX)),
	VMK("balloon.free_page_reporting", balloon_free_page_reporting, T_BOOL),
	VMK("balloon.deflate_on_oom", balloon_deflate_on_oom, T_BOOL),
	VMK("transport", transport, T_ENUM, .names = transport_names),
	VMK("control", control, T_PATH),
	VMK("timeout", timeout, T_UINT, RANGE(0, UINT_MAX)),
	VMK("on_reboot", on_reboot, T_ENUM, .names = on_reboot_names),
	VMK("debug_exit", debug_exit, T_BOOL),
	VMK("log_level", log_level, T_ENUM, .names = log_level_names),
	VMK("drop_caps", drop_caps, T_BOOL),
	VMK("name", name, T_STR, .check = check_name),

	DISKK("path", path, T_PATH),
	DISKK("readonly", readonly, T_BOOL),
	DISKK("cache", cache, T_ENUM, .names = cache_names),
	DISKK("io", io, T_ENUM, .names = io_names),
	DISKK("queues", queues, T_UINT, RANGE(0, CONFIG_MAX_CPUS)),
	DISKK("serial", serial, T_STR, .check = check_disk_serial),

	NETK("tap", tap, T_STR, .check = check_tap),
	NETK("mac", mac, T_SPECIAL, SPECIAL(set_mac, print_mac)),
	NETK("vhost", vhost, T_ENUM, .names = tristate_names),
	NETK("queues", queues, T_UINT, RANGE(1, 16)),
	NETK("mtu", mtu, T_UINT, RANGE(68, 65535)),
};

#define NR_KEYS (sizeof(keys) / sizeof(keys[0]))
#define NR_DISK_KEYS 6
#define NR_NET_KEYS 5
_Static_assert(NR_KEYS - NR_DISK_KEYS - NR_NET_KEYS <= CONFIG_VM_KEYS, "grow CONFIG_VM_KEYS");
_Static_assert(NR_DISK_KEYS <= CONFIG_DEV_KEYS && NR_NET_KEYS <= CONFIG_DEV_KEYS,
	       "grow CONFIG_DEV_KEYS");

static unsigned key_slot(const struct key_def *k)
{
	static const unsigned nr[] = { [G_VM] = NR_KEYS - NR_DISK_KEYS - NR_NET_KEYS,
				       [G_DISK] = NR_DISK_KEYS, [G_NET] = NR_NET_KEYS };
	unsigned slot = 0;
	for (const struct key_def *p = keys; p < k; p++)
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

static struct config_origin *key_origin(struct vm_config *c, const struct key_ref *r)
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
		if (keys[i].group == g && strcmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

/* "diskN.sub" / "netN.sub" into group, index and sub. Returns 1 when @key
 * has that shape (index may be out of range), 0 if not. */
static int split_indexed(const char *key, enum key_group *g, unsigned long *index,
			 const char **sub)
{
	for (int i = G_DISK; i <= G_NET; i++) {
		size_t n = strlen(groups[i].prefix);
		const char *p = key + n;
		if (strncmp(key, groups[i].prefix, n) != 0 || *p < '0' || *p > '9')
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

/* Returns 0, -ENOENT for no such key, or -ERANGE for an index too big. */
static int key_lookup(const char *key, struct key_ref *r)
{
	enum key_group g;
	unsigned long index;
	const char *sub;

	if (split_indexed(key, &g, &index, &sub)) {
		r->def = key_find(g, sub);
		if (!r->def)
			return -ENOENT;
		if (index >= groups[g].count)
			return -ERANGE;
		r->index = (unsigned)index;
		return 0;
	}
	r->def = key_find(G_VM, key);
	r->index = 0;
	return r->def ? 0 : -ENOENT;
}

/* ---- "did you mean" -------------------------------------------------------- */

/* Optimal string alignment distance (Levenshtein plus transpositions). */
static unsigned edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	unsigned rows[3][MAX_SUGGEST_LEN + 1];
	unsigned *prev2 = rows[0], *prev = rows[1], *cur = rows[2];

	if (la > MAX_SUGGEST_LEN || lb > MAX_SUGGEST_LEN)
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
	char idx[4], cand[MAX_SUGGEST_LEN + 16];

	if (len > MAX_SUGGEST_LEN)
		return NULL;
	user_index(key, idx);
	for (size_t i = 0; i < NR_KEYS; i++) {
		const struct key_def *k = &keys[i];
		if (k->group == G_VM)
			snprintf(cand, sizeof(cand), "%s", k->name);
		else
			snprintf(cand, sizeof(cand), "%s%s.%s", groups[k->group].prefix, idx, k->name);
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
	set_error(x, "'%s' is not one of: %s", shown(v, vb, sizeof(vb)),
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
		set_error(x, "%s is out of range %" PRIu64 "..%" PRIu64, shown(v, vb, sizeof(vb)),
			  k->min, k->max);
	else if (r)
		set_error(x, "'%s' is not a number", shown(v, vb, sizeof(vb)));
	else
		*(unsigned *)field = (unsigned)n;
	return r ? -EINVAL : 0;
}

static int set_string(const struct key_def *k, void *field, const char *v, const struct set_ctx *x)
{
	const char *why = k->check ? k->check(v) : NULL;
	char vb[80], *copy = NULL;

	if (why) {
		set_error(x, "'%s' %s", shown(v, vb, sizeof(vb)), why);
		return -EINVAL;
	}
	if (*v) {
		copy = k->type == T_PATH ? resolve_path(v, x) : strdup(v);
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
			set_error(x, "'%s' is not on or off", shown(v, vb, sizeof(vb)));
		return r;
	case T_SIZE:
		r = config_parse_size(v, field);
		if (r == -ERANGE)
			set_error(x, "'%s' is too large", shown(v, vb, sizeof(vb)));
		else if (r)
			set_error(x, "'%s' is not a size like 512M or 2G", shown(v, vb, sizeof(vb)));
		return r;
	}
	return -EINVAL;
}

static void mark_present(struct vm_config *c, const struct key_ref *r)
{
	if (r->def->group == G_DISK)
		c->disks[r->index].present = true;
	else if (r->def->group == G_NET)
		c->nets[r->index].present = true;
}

static int report_unknown(const char *key, int err, const struct set_ctx *x)
{
	char sug[MAX_SUGGEST_LEN + 16];
	enum key_group g;
	unsigned long index;
	const char *sub;

	if (err == -ERANGE && split_indexed(key, &g, &index, &sub))
		set_error(x, "index %lu is out of range: %s0 to %s%u", index,
			  groups[g].prefix, groups[g].prefix, groups[g].count - 1);
	else if (config_suggest_key(key, sug, sizeof(sug)))
		set_error(x, "unknown key, did you mean '%s'?", sug);
	else
		set_error(x, "unknown key");
	return -EINVAL;
}

static bool same_file(const char *a, const char *b)
{
	return a && b && strcmp(a, b) == 0;
}

static int config_set_at(struct vm_config *c, const char *key, const char *value,
			 const struct set_ctx *x)
{
	struct key_ref ref;
	int r = key_lookup(key, &ref);
	if (r)
		return report_unknown(key, r, x);

	struct config_origin *o = key_origin(c, &ref);
	if (same_file(o->file, x->file)) {
		bool args = strcmp(x->file, CONFIG_CMDLINE_FILE) == 0;
		set_error(x, "duplicate key (first set at %s %u)", args ? "argument" : "line", o->line);
		return -EINVAL;
	}
	r = key_apply(ref.def, key_base(c, &ref), value, x);
	if (r)
		return r;
	mark_present(c, &ref);
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
	c->transport = TRANSPORT_PCI;
	c->on_reboot = ON_REBOOT_EXIT;
	c->log_level = LOG_WARN;
	c->drop_caps = true;
	c->name = (char *)default_name; /* never freed, see free_str() */
	for (unsigned i = 0; i < CONFIG_MAX_DISKS; i++) {
		c->disks[i].cache = DISK_CACHE_NONE;
		c->disks[i].io = DISK_IO_URING;
	}
	for (unsigned i = 0; i < CONFIG_MAX_NETS; i++) {
		c->nets[i].vhost = TRISTATE_AUTO;
		c->nets[i].queues = 1;
		c->nets[i].mtu = 1500;
	}
}

void config_free(struct vm_config *c)
{
	for (size_t i = 0; i < NR_KEYS; i++) {
		const struct key_def *k = &keys[i];
		for (unsigned n = 0; n < groups[k->group].count; n++) {
			struct key_ref r = { k, n };
			struct config_origin *o = key_origin(c, &r);
			free(o->file);
			if (k->type == T_STR || k->type == T_PATH)
				free_str(field_of(key_base(c, &r), k));
		}
	}
	free(c->serial_path);
	config_init(c);
}

/* ---- reading files ---------------------------------------------------------- */

struct reader {
	FILE *f;
	char *buf;            /* CONFIG_MAX_LINE + 1 bytes */
	size_t len, total;
	bool too_long, has_nul, too_big;
};

/* Reads one line (without '\n'), keeping at most CONFIG_MAX_LINE bytes.
 * Returns 1 for a line, 0 at the end or once the file is too big. */
static int reader_next(struct reader *r)
{
	bool any = false;
	int ch;

	r->len = 0;
	r->too_long = r->has_nul = false;
	while ((ch = getc(r->f)) != EOF) {
		any = true;
		if (++r->total > CONFIG_MAX_FILE_SIZE) {
			r->too_big = true;
			return 0;
		}
		if (ch == '\n')
			break;
		if (ch == '\0')
			r->has_nul = true;
		if (r->len < CONFIG_MAX_LINE)
			r->buf[r->len++] = (char)ch;
		else
			r->too_long = true;
	}
	r->buf[r->len] = '\0';
	return any;
}

static void parse_line(struct vm_config *c, const struct reader *rd, struct set_ctx *x)
{
	char *s = rd->buf, *key, *val;
	while (is_blank(*s))
		s++;
	if (*s == '#' || (!*s && !rd->has_nul && !rd->too_long))
		return;

	const char *why = split_kv(s, &key, &val);
	x->key = key;
	if (rd->has_nul)
		set_error(x, "line contains a NUL byte");
	else if (rd->too_long)
		set_error(x, "line is longer than %d bytes", CONFIG_MAX_LINE);
	else if (why)
		set_error(x, "%s", why);
	else
		config_set_at(c, key, val, x);
}

/* The absolute directory of @path, for resolving relative paths in it. */
static char *config_dir(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
	if (!dir)
		return NULL;
	char *abs = realpath(dir, NULL);
	if (!abs)
		return dir;
	free(dir);
	return abs;
}

static void read_lines(struct vm_config *c, struct reader *rd, struct set_ctx *x)
{
	unsigned line = 0;
	while (reader_next(rd)) {
		x->line = ++line;
		parse_line(c, rd, x);
	}
	x->key = NULL;
	x->line = 0;
	if (rd->too_big)
		set_error(x, "file is larger than %d bytes; stopped reading at line %u",
			  CONFIG_MAX_FILE_SIZE, line + 1);
	else if (ferror(rd->f))
		set_error(x, "read error: %s", strerror(errno));
}

int config_load_file(struct vm_config *c, const char *path, struct config_diag *d)
{
	unsigned before = d->errors;
	struct set_ctx x = { .d = d, .file = path };
	struct reader rd = { 0 };
	struct stat st;

	rd.f = fopen(path, "re");
	if (!rd.f) {
		set_error(&x, "cannot open: %s", strerror(errno));
		return -EINVAL;
	}
	rd.buf = malloc(CONFIG_MAX_LINE + 1);
	if (fstat(fileno(rd.f), &st) == 0 && S_ISDIR(st.st_mode))
		set_error(&x, "cannot read: %s", strerror(EISDIR));
	else if (!rd.buf)
		set_error(&x, "out of memory");
	else {
		char *dir = config_dir(path);
		x.basedir = dir;
		read_lines(c, &rd, &x);
		free(dir);
	}
	free(rd.buf);
	fclose(rd.f);
	return d->errors > before ? -EINVAL : 0;
}

int config_apply_arg(struct vm_config *c, const char *arg, unsigned position,
		     struct config_diag *d)
{
	struct set_ctx x = { .d = d, .file = CONFIG_CMDLINE_FILE, .line = position };
	char *copy = strdup(arg), *key, *val;
	int r = -EINVAL;

	if (!copy) {
		set_error(&x, "out of memory");
		return -ENOMEM;
	}
	const char *why = split_kv(copy, &key, &val);
	x.key = key;
	if (why)
		set_error(&x, "%s", why);
	else
		r = config_set_at(c, key, val, &x) ? -EINVAL : 0;
	free(copy);
	return r;
}

/* ---- printing ---------------------------------------------------------------- */

static void print_value(const struct key_def *k, const void *base, FILE *out)
{
	const void *field = cfield_of(base, k);
	char buf[32];

	switch (k->type) {
	case T_STR:
		print_str(out, *(char *const *)field);
		break;
	case T_PATH:
		print_path(out, "", *(char *const *)field);
		break;
	case T_BOOL:
		fputs(*(const bool *)field ? "on" : "off", out);
		break;
	case T_UINT:
		fprintf(out, "%u", *(const unsigned *)field);
		break;
	case T_SIZE:
		fputs(fmt_size(*(const uint64_t *)field, buf, sizeof(buf)), out);
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
		const struct key_def *k = &keys[i];
		if (k->group != g)
			continue;
		if (g == G_VM)
			fprintf(out, "%s=", k->name);
		else
			fprintf(out, "%s%u.%s=", groups[g].prefix, index, k->name);
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

/* ---- validation ----------------------------------------------------------------- */

/* Reports a cross-key error at the place @key was set ("(default)" if never). */
__attribute__((format(printf, 4, 5)))
static void vreport(struct vm_config *c, struct config_diag *d, const char *key,
		    const char *fmt, ...)
{
	struct key_ref r;
	const struct config_origin *o = NULL;
	char msg[512];
	va_list ap;

	if (key_lookup(key, &r) == 0)
		o = key_origin(c, &r);
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	report(d, o ? o->file : NULL, o && o->file ? o->line : 0, key, "%s", msg);
}

/* "set at FILE:LINE" or "default", for naming the other key of a conflict. */
static const char *where(struct vm_config *c, const char *key, char *buf, size_t len)
{
	struct key_ref r;
	if (key_lookup(key, &r) == 0) {
		const struct config_origin *o = key_origin(c, &r);
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
		vreport(c, d, "cpus", "%u is out of range 1..%d", c->cpus, CONFIG_MAX_CPUS);
	if (!c->topology_set) {
		c->sockets = c->threads = 1;
		c->cores = c->cpus;
	} else if ((uint64_t)c->sockets * c->cores * c->threads != c->cpus) {
		vreport(c, d, "cpu_topology", "%u:%u:%u makes %" PRIu64 " CPUs but cpus=%u (%s)",
			c->sockets, c->cores, c->threads,
			(uint64_t)c->sockets * c->cores * c->threads, c->cpus,
			where(c, "cpus", w, sizeof(w)));
	}
	if (c->nr_cpu_affinity == 0)
		return;
	if (c->nr_cpu_affinity < c->cpus)
		vreport(c, d, "cpu_affinity", "lists %u host CPUs but cpus=%u (%s); give one per vCPU",
			c->nr_cpu_affinity, c->cpus, where(c, "cpus", w, sizeof(w)));
	for (unsigned i = 0; i < c->nr_cpu_affinity; i++) {
		int r = cpulist_host_online(c->cpu_affinity[i]);
		if (r < 0) {
			vreport(c, d, "cpu_affinity", "cannot read /sys/devices/system/cpu/online: %s",
				strerror(-r));
			return;
		}
		if (r == 0)
			vreport(c, d, "cpu_affinity", "host CPU %u is not online", c->cpu_affinity[i]);
	}
}

static void validate_mem(struct vm_config *c, struct config_diag *d)
{
	static const uint64_t align[] = {
		[HUGEPAGES_OFF] = 4096, [HUGEPAGES_2M] = 2ull << 20, [HUGEPAGES_1G] = 1ull << 30,
	};
	char a[32], b[32], w[256];

	if (c->mem < MIN_MEM) {
		vreport(c, d, "mem", "%s is less than the minimum 16M", fmt_size(c->mem, a, sizeof(a)));
	} else if ((unsigned)c->mem_hugepages < 3 && c->mem % align[c->mem_hugepages]) {
		vreport(c, d, "mem", "%s is not a multiple of %s (mem_hugepages, %s)",
			fmt_size(c->mem, a, sizeof(a)), fmt_size(align[c->mem_hugepages], b, sizeof(b)),
			where(c, "mem_hugepages", w, sizeof(w)));
	}
	if (c->mem_numa_node < -1)
		vreport(c, d, "mem_numa_node", "%d is not a node number (>= 0) or none",
			c->mem_numa_node);
}

static void validate_misc(struct vm_config *c, struct config_diag *d)
{
	const char *why;
	char nb[80];

	if (!c->kernel)
		vreport(c, d, "kernel", "no kernel given; set kernel=PATH");
	if (c->serial == SERIAL_FILE && (!c->serial_path || !*c->serial_path))
		vreport(c, d, "serial", "file: needs a path");
	if (c->control && strlen(c->control) > SUN_PATH_MAX)
		vreport(c, d, "control", "path is %zu bytes; a socket path is at most %d",
			strlen(c->control), SUN_PATH_MAX);
	why = c->name ? check_name(c->name) : "must be set";
	if (why)
		vreport(c, d, "name", "'%s' %s", shown(c->name ? c->name : "", nb, sizeof(nb)), why);
}

/* The first key of device @index that was set, for naming it in messages. */
static void first_set_key(struct vm_config *c, enum key_group g, unsigned index,
			  char *buf, size_t len)
{
	const char *sub = g == G_DISK ? "path" : "tap";
	for (size_t i = 0; i < NR_KEYS; i++) {
		struct key_ref r = { &keys[i], index };
		if (keys[i].group == g && key_origin(c, &r)->file) {
			sub = keys[i].name;
			break;
		}
	}
	snprintf(buf, len, "%s%u.%s", groups[g].prefix, index, sub);
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
			vreport(c, d, key, "disk%u has no disk%u.path", i, i);
			continue;
		}
		for (unsigned j = 0; j < i; j++) {
			const struct disk_config *o = &c->disks[j];
			if (!o->present || !o->path || strcmp(o->path, dc->path) || (o->readonly && dc->readonly))
				continue;
			snprintf(key, sizeof(key), "disk%u.path", i);
			vreport(c, d, key, "same image as disk%u (and not both readonly)", j);
		}
		if (dc->queues > CONFIG_MAX_CPUS) {
			snprintf(key, sizeof(key), "disk%u.queues", i);
			vreport(c, d, key, "%u is out of range 0..%d", dc->queues, CONFIG_MAX_CPUS);
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
			vreport(c, d, key, "net%u has no net%u.tap", i, i);
		}
		for (unsigned j = 0; n->tap && j < i; j++) {
			if (c->nets[j].present && c->nets[j].tap && strcmp(c->nets[j].tap, n->tap) == 0) {
				snprintf(key, sizeof(key), "net%u.tap", i);
				vreport(c, d, key, "tap %s is already used by net%u", n->tap, j);
			}
		}
		snprintf(key, sizeof(key), "net%u.queues", i);
		if (n->queues < 1 || n->queues > 16)
			vreport(c, d, key, "%u is out of range 1..16", n->queues);
		snprintf(key, sizeof(key), "net%u.mtu", i);
		if (n->mtu < 68 || n->mtu > 65535)
			vreport(c, d, key, "%u is out of range 68..65535", n->mtu);
	}
}

int config_validate(struct vm_config *c, struct config_diag *d)
{
	unsigned before = d->errors;
	validate_misc(c, d);
	validate_cpus(c, d);
	validate_mem(c, d);
	validate_disks(c, d);
	validate_nets(c, d);
	return d->errors > before ? -EINVAL : 0;
}

