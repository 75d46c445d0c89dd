/* Values as text: the scalar parsers (sizes, numbers, booleans, MACs),
 * quoting and unquoting, paths, and the values of the special keys
 * (cpu_affinity, cpu_topology, mem_numa_node, serial, netN.mac) and the
 * checks of the string keys that the key table in config.c points at. */
#include "vmm/config.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "vmm/config_priv.h"
#include "lib/cpulist.h"

#define VIRTIO_BLK_ID_BYTES 20     /* virtio spec 5.2.6: GET_ID string */
#define TAP_NAME_MAX 15            /* IFNAMSIZ - 1 */
#define NAME_MAX_LEN 64

/* ---- showing values in messages -------------------------------------- */

/* @s made safe to print: control and non-ASCII bytes as '?', cut short. */
const char *config_shown(const char *s, char *buf, size_t len)
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
const char *config_fmt_size(uint64_t v, char *buf, size_t len)
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

bool config_is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* Unquotes the value at @s (which starts with '"') in place. Returns NULL
 * or what is wrong. */
const char *config_unquote(char *s)
{
	char *out = s;
	for (const char *p = s + 1;; p++) {
		if (*p == '\0')
			return "unterminated quote";
		if (*p == '"') {
			*out = '\0';
			while (config_is_blank(*++p))
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

/* Prints @v (NULL: nothing) so that config_unquote() or a bare read gives it back. */
void config_print_str(FILE *out, const char *v)
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

/* ---- paths ---------------------------------------------------------------- */

/* Prints a path; a relative one (set on the command line, so relative to
 * the cwd) is printed joined to the cwd, so the output loads the same from
 * any directory. */
void config_print_path(FILE *out, const char *prefix, const char *v)
{
	char *cwd = v && *v && v[0] != '/' ? getcwd(NULL, 0) : NULL, *s;
	if (asprintf(&s, "%s%s%s%s", prefix, cwd ? cwd : "", cwd ? "/" : "", v ? v : "") >= 0) {
		config_print_str(out, *s ? s : NULL);
		free(s);
	}
	free(cwd);
}

/* @v as stored: resolved against the config file's directory (@basedir)
 * if relative. */
char *config_resolve_path(const char *v, const char *basedir)
{
	char *p;
	if (!basedir || v[0] == '/')
		return strdup(v);
	size_t n = strlen(basedir);
	const char *sep = n && basedir[n - 1] == '/' ? "" : "/";
	return asprintf(&p, "%s%s%s", basedir, sep, v) < 0 ? NULL : p;
}

/* ---- special keys -------------------------------------------------------- */

int config_set_affinity(void *base, const char *v, const struct set_ctx *x)
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

void config_print_affinity(const void *base, FILE *out)
{
	const struct vm_config *c = base;
	char buf[CONFIG_MAX_CPUS * 12];
	if (cpulist_format(c->cpu_affinity, c->nr_cpu_affinity, buf, sizeof(buf)) >= 0)
		fputs(buf, out);
}

int config_set_topology(void *base, const char *v, const struct set_ctx *x)
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

void config_print_topology(const void *base, FILE *out)
{
	const struct vm_config *c = base;
	if (c->topology_set)
		fprintf(out, "%u:%u:%u", c->sockets, c->cores, c->threads);
	else
		fputs("auto", out);
}

int config_set_numa(void *base, const char *v, const struct set_ctx *x)
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

void config_print_numa(const void *base, FILE *out)
{
	const struct vm_config *c = base;
	if (c->mem_numa_node < 0)
		fputs("none", out);
	else
		fprintf(out, "%d", c->mem_numa_node);
}

int config_set_serial(void *base, const char *v, const struct set_ctx *x)
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

void config_print_serial(const void *base, FILE *out)
{
	const struct vm_config *c = base;
	if (c->serial == SERIAL_FILE)
		config_print_path(out, "file:", c->serial_path); /* quotes "file:/a b" whole */
	else
		fputs(c->serial == SERIAL_NONE ? "none" : "stdio", out);
}

int config_set_control(void *base, const char *v, const struct set_ctx *x)
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

void config_print_control(const void *base, FILE *out)
{
	const struct vm_config *c = base;
	if (c->control)
		config_print_path(out, "", c->control);
	else
		fputs("none", out);
}

int config_set_mac(void *base, const char *v, const struct set_ctx *x)
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

void config_print_mac(const void *base, FILE *out)
{
	const struct net_config *n = base;
	if (n->mac_set)
		fprintf(out, "%02x:%02x:%02x:%02x:%02x:%02x", n->mac[0], n->mac[1],
			n->mac[2], n->mac[3], n->mac[4], n->mac[5]);
}

const char *config_check_name(const char *v)
{
	if (!*v)
		return "must not be empty";
	if (strlen(v) > NAME_MAX_LEN)
		return "is longer than 64 characters";
	if (v[strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-")])
		return "may only contain A-Z a-z 0-9 . _ -";
	return NULL;
}

const char *config_check_tap(const char *v)
{
	if (strlen(v) > TAP_NAME_MAX)
		return "is longer than 15 characters (IFNAMSIZ)";
	if (v[strcspn(v, "/ \t\n:")])
		return "is not an interface name (no '/', ':' or blanks)";
	return NULL;
}

const char *config_check_disk_serial(const char *v)
{
	return strlen(v) > VIRTIO_BLK_ID_BYTES ? "is longer than 20 bytes (virtio-blk ID)" : NULL;
}
