/* Values as text: the scalar parsers (sizes, numbers, booleans, MACs),
 * quoting and unquoting, paths, and the checks of the string keys that the
 * key table in config.c points at. Nothing here knows a key or struct
 * vm_config: the keys are built on it. */
#include "vmm/config_value.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>


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

/* ---- checks of the string keys ------------------------------------------ */

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
