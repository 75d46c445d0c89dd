#include "cmdline.h"
#include "libc.h"
#include "start_info.h"

/* Finds the value of the last "key" or "key=value" token; returns its start
 * and length through val and len. */
static bool cmdline_find(const char *key, const char **val, size_t *len)
{
	const char *p = start_info_cmdline();
	size_t klen = strlen(key);
	bool found = false;

	while (*p) {
		while (*p == ' ' || *p == '\t')
			p++;
		const char *tok = p;

		while (*p && *p != ' ' && *p != '\t')
			p++;
		size_t tlen = (size_t)(p - tok);

		if (tlen >= klen && !strncmp(tok, key, klen) &&
		    (tlen == klen || tok[klen] == '=')) {
			found = true;
			*val = tlen == klen ? tok + klen : tok + klen + 1;
			*len = tlen == klen ? 0 : tlen - klen - 1;
		}
	}
	return found;
}

bool cmdline_get(const char *key, char *buf, size_t size)
{
	const char *v;
	size_t len;

	if (!cmdline_find(key, &v, &len))
		return false;
	if (size) {
		if (len > size - 1)
			len = size - 1;
		memcpy(buf, v, len);
		buf[len] = '\0';
	}
	return true;
}

bool cmdline_has(const char *key)
{
	const char *v;
	size_t len;

	return cmdline_find(key, &v, &len);
}

uint64_t cmdline_get_u64(const char *key, uint64_t def)
{
	const char *v;
	size_t len, i = 0;
	uint64_t n = 0;
	unsigned base = 10;

	if (!cmdline_find(key, &v, &len) || !len)
		return def;
	if (len > 2 && v[0] == '0' && (v[1] == 'x' || v[1] == 'X')) {
		base = 16;
		i = 2;
	}
	size_t first = i;

	for (; i < len; i++) {
		char c = v[i];
		unsigned d;

		if (c >= '0' && c <= '9')
			d = (unsigned)(c - '0');
		else if (base == 16 && c >= 'a' && c <= 'f')
			d = (unsigned)(c - 'a' + 10);
		else if (base == 16 && c >= 'A' && c <= 'F')
			d = (unsigned)(c - 'A' + 10);
		else
			break;
		n = n * base + d;
	}
	if (i == first)
		return def;
	if (i + 1 == len) {
		switch (v[i]) {
		case 'k': case 'K': return n << 10;
		case 'm': case 'M': return n << 20;
		case 'g': case 'G': return n << 30;
		default: return def;
		}
	}
	return i == len ? n : def;
}
