#include "vmm/snapshot_header.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>


void snapshot_header_write(const struct snapshot_header *h, FILE *out)
{
	fprintf(out, "format=kvmrun-snapshot\nversion=%u\nmem=%" PRIu64 "\ncpus=%u\n"
		"state_size=%" PRIu64 "\nstate_crc=%08x\n", SNAPSHOT_VERSION, h->mem, h->cpus,
		h->state_size, h->state_crc);
	for (unsigned i = 0; i < CONFIG_MAX_DISKS; i++)
		if (h->disk_present[i])
			fprintf(out, "disk%u_size=%" PRIu64 "\n", i, h->disk_size[i]);
}

enum { K_FORMAT = 1, K_VERSION = 2, K_MEM = 4, K_CPUS = 8, K_SSIZE = 16, K_SCRC = 32,
       K_ALL = 63 };

/* A decimal (or with base 16, hex) number of at most @max, digits only. */
static bool num(const char *v, int base, uint64_t max, uint64_t *out)
{
	if (!*v || strlen(v) > 20)
		return false;
	for (const char *p = v; *p; p++)
		if (!(base == 16 ? strchr("0123456789abcdefABCDEF", *p) : strchr("0123456789", *p)))
			return false;
	errno = 0;
	unsigned long long n = strtoull(v, NULL, base);
	if (errno || n > max)
		return false;
	*out = n;
	return true;
}

/* One "key=value" line; returns the K_ bit it set, 0 for a disk size, or
 * -1 when the line is wrong (reason in @err). */
static int parse_line(char *line, struct snapshot_header *h, unsigned seen, char *err,
		      size_t len)
{
	char *eq = strchr(line, '=');
	if (!eq) {
		snprintf(err, len, "'%.40s' is not key=value", line);
		return -1;
	}
	*eq = 0;
	const char *k = line, *v = eq + 1;
	uint64_t n = 0;
	if (!(seen & K_FORMAT) && strcmp(k, "format") != 0) {
		snprintf(err, len, "not a kvmrun snapshot header (no format= first)");
		return -1;
	}
	if (strcmp(k, "format") == 0) {
		if (strcmp(v, "kvmrun-snapshot") != 0) {
			snprintf(err, len, "format=%.40s is not kvmrun-snapshot", v);
			return -1;
		}
		return K_FORMAT;
	}
	if (strcmp(k, "version") == 0) {
		if (!num(v, 10, UINT32_MAX, &n) || n == 0) {
			snprintf(err, len, "version=%.40s is not a version number", v);
			return -1;
		}
		if (n > SNAPSHOT_VERSION) {
			snprintf(err, len, "snapshot version %" PRIu64 " is newer than this kvmrun "
				 "reads (%u)", n, SNAPSHOT_VERSION);
			return -1;
		}
		h->version = (uint32_t)n;
		return K_VERSION;
	}
	struct { const char *key; int bit; uint64_t max; int base; } keys[] = {
		{ "mem", K_MEM, 1ull << 46, 10 }, { "cpus", K_CPUS, CONFIG_MAX_CPUS, 10 },
		{ "state_size", K_SSIZE, SNAPSHOT_MAX_STATE, 10 },
		{ "state_crc", K_SCRC, UINT32_MAX, 16 },
	};
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (strcmp(k, keys[i].key) != 0)
			continue;
		if (!num(v, keys[i].base, keys[i].max, &n) || (keys[i].bit == K_CPUS && n == 0)) {
			snprintf(err, len, "%.40s=%.40s is not a valid value", k, v);
			return -1;
		}
		if (keys[i].bit == K_MEM)
			h->mem = n;
		else if (keys[i].bit == K_CPUS)
			h->cpus = (uint32_t)n;
		else if (keys[i].bit == K_SSIZE)
			h->state_size = n;
		else
			h->state_crc = (uint32_t)n;
		return keys[i].bit;
	}
	unsigned d;
	int used = 0;
	if (sscanf(k, "disk%u_size%n", &d, &used) == 1 && k[used] == 0 && d < CONFIG_MAX_DISKS &&
	    num(v, 10, UINT64_MAX, &n) && !h->disk_present[d]) {
		h->disk_present[d] = true;
		h->disk_size[d] = n;
		return 0;
	}
	snprintf(err, len, "unknown or repeated key '%.40s'", k);
	return -1;
}

static const char *const key_names[] = { "format", "version", "mem", "cpus", "state_size",
					 "state_crc" };

int snapshot_header_parse(const char *text, size_t len, struct snapshot_header *h,
			  char *err, size_t err_len)
{
	memset(h, 0, sizeof(*h));
	if (len > SNAPSHOT_HEADER_MAX) {
		snprintf(err, err_len, "header is %zu bytes, at most %d", len, SNAPSHOT_HEADER_MAX);
		return -EINVAL;
	}
	unsigned seen = 0, lineno = 0;
	size_t at = 0;
	while (at < len) {
		const char *nl = memchr(text + at, '\n', len - at);
		size_t n = nl ? (size_t)(nl - (text + at)) : len - at;
		lineno++;
		char line[SNAPSHOT_HEADER_MAX_LINE + 1], why[160];
		if (n > SNAPSHOT_HEADER_MAX_LINE || memchr(text + at, 0, n)) {
			snprintf(err, err_len, "line %u: too long or has a NUL byte", lineno);
			return -EINVAL;
		}
		memcpy(line, text + at, n);
		line[n] = 0;
		at += n + (nl != NULL);
		if (n == 0 || line[0] == '#')
			continue;
		int bit = parse_line(line, h, seen, why, sizeof(why));
		if (bit < 0 || (bit & seen)) {
			snprintf(err, err_len, "line %u: %s", lineno, bit < 0 ? why : "key repeated");
			return -EINVAL;
		}
		seen |= (unsigned)bit;
	}
	for (unsigned i = 0; i < 6; i++) {
		if (!(seen & (1u << i))) {
			snprintf(err, err_len, "%s= is missing (a truncated header?)", key_names[i]);
			return -EINVAL;
		}
	}
	return 0;
}
