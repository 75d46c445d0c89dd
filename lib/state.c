/* Saved state (see state.h): a little-endian writer and a bounded reader. */
#include "lib/state.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HDR_LEN (8 + 4 + 4 + 4)
#define HDR_COUNT_AT (8 + 4 + 4)
#define ENDIAN_MARK 0x01020304u

/* ---------------------------------------------------------------- writer */

void state_w_init(struct state_w *w)
{
	memset(w, 0, sizeof(*w));
}

void state_w_free(struct state_w *w)
{
	free(w->buf);
	memset(w, 0, sizeof(*w));
}

static uint8_t *w_room(struct state_w *w, size_t n)
{
	if (w->oom)
		return NULL;
	if (n > SIZE_MAX / 2 - w->len) {
		w->oom = true;
		return NULL;
	}
	if (w->len + n > w->cap) {
		size_t cap = w->cap ? w->cap : 4096;
		while (cap < w->len + n)
			cap *= 2;
		uint8_t *b = realloc(w->buf, cap);
		if (!b) {
			w->oom = true;
			return NULL;
		}
		w->buf = b;
		w->cap = cap;
	}
	uint8_t *p = w->buf + w->len;
	w->len += n;
	return p;
}

static void le_store(uint8_t *p, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t le_load(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static void put_le(struct state_w *w, uint64_t v, unsigned n)
{
	uint8_t *p = w_room(w, n);
	if (p)
		le_store(p, v, n);
}

void state_put_u8(struct state_w *w, uint8_t v) { put_le(w, v, 1); }
void state_put_u16(struct state_w *w, uint16_t v) { put_le(w, v, 2); }
void state_put_u32(struct state_w *w, uint32_t v) { put_le(w, v, 4); }
void state_put_u64(struct state_w *w, uint64_t v) { put_le(w, v, 8); }
void state_put_bool(struct state_w *w, bool v) { put_le(w, v ? 1 : 0, 1); }

void state_put_bytes(struct state_w *w, const void *p, size_t n)
{
	uint8_t *d = w_room(w, n);
	if (d && n)
		memcpy(d, p, n);
}

static void w_header(struct state_w *w)
{
	if (w->len)
		return;
	state_put_bytes(w, STATE_MAGIC, 8);
	state_put_u32(w, STATE_FORMAT_VERSION);
	state_put_u32(w, ENDIAN_MARK);
	state_put_u32(w, 0); /* sections, set by finish */
}

void state_section_begin(struct state_w *w, const char *name, uint32_t version)
{
	w_header(w);
	size_t n = strlen(name);
	if (w->sec_len_at || n == 0 || n > STATE_NAME_MAX) {
		w->oom = true; /* a programming error: make finish fail */
		return;
	}
	state_put_u16(w, (uint16_t)n);
	state_put_bytes(w, name, n);
	state_put_u32(w, version);
	w->sec_len_at = w->len;
	state_put_u64(w, 0);
	w->nr_sections++;
}

void state_section_end(struct state_w *w)
{
	if (!w->sec_len_at)
		return;
	if (!w->oom)
		le_store(w->buf + w->sec_len_at, w->len - w->sec_len_at - 8, 8);
	w->sec_len_at = 0;
}

int state_w_finish(struct state_w *w, const uint8_t **out, size_t *len)
{
	if (w->sec_len_at)
		return -EINVAL;
	w_header(w);
	if (w->oom)
		return -ENOMEM;
	le_store(w->buf + HDR_COUNT_AT, w->nr_sections, 4);
	uint32_t crc = state_crc32(0, w->buf, w->len);
	state_put_u32(w, crc);
	if (w->oom)
		return -ENOMEM;
	*out = w->buf;
	*len = w->len;
	return 0;
}

/* ---------------------------------------------------------------- reader */

__attribute__((format(printf, 3, 4)))
static int file_err(char *err, size_t len, const char *fmt, ...)
{
	if (err && len) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, len, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

/* Walks the section at @*pos; fills what is non-NULL. false: malformed. */
static bool next_section(const uint8_t *p, size_t end, size_t *pos, const uint8_t **name,
			 size_t *name_len, uint32_t *version, const uint8_t **payload,
			 uint64_t *payload_len)
{
	size_t at = *pos;
	if (end - at < 2)
		return false;
	size_t n = (size_t)le_load(p + at, 2);
	at += 2;
	if (n == 0 || n > STATE_NAME_MAX || end - at < n + 4 + 8)
		return false;
	const uint8_t *nm = p + at;
	if (memchr(nm, 0, n))
		return false;
	at += n;
	uint32_t ver = (uint32_t)le_load(p + at, 4);
	at += 4;
	uint64_t plen = le_load(p + at, 8);
	at += 8;
	if (plen > end - at)
		return false;
	if (name) {
		*name = nm;
		*name_len = n;
	}
	if (version)
		*version = ver;
	if (payload) {
		*payload = p + at;
		*payload_len = plen;
	}
	*pos = at + (size_t)plen;
	return true;
}

int state_file_parse(const void *buf, size_t len, struct state_file *out,
		     char *err, size_t err_len)
{
	const uint8_t *p = buf;
	memset(out, 0, sizeof(*out));
	if (len < HDR_LEN + 4)
		return file_err(err, err_len, "truncated: %zu bytes, the header alone is %d", len,
				HDR_LEN + 4);
	if (memcmp(p, STATE_MAGIC, 8) != 0)
		return file_err(err, err_len, "not a kvmrun state file (bad magic)");
	uint32_t endian = (uint32_t)le_load(p + 12, 4);
	if (endian != ENDIAN_MARK)
		return file_err(err, err_len, "byte order mark 0x%08x, expected 0x%08x "
				"(written on a host of other byte order?)", endian, ENDIAN_MARK);
	uint32_t ver = (uint32_t)le_load(p + 8, 4);
	if (ver != STATE_FORMAT_VERSION)
		return file_err(err, err_len, "format version %u; this kvmrun reads version %u",
				ver, STATE_FORMAT_VERSION);
	uint32_t crc = (uint32_t)le_load(p + len - 4, 4);
	if (state_crc32(0, p, len - 4) != crc)
		return file_err(err, err_len, "checksum mismatch: the file is corrupt or truncated");
	uint32_t count = (uint32_t)le_load(p + HDR_COUNT_AT, 4);
	if (count > STATE_MAX_SECTIONS)
		return file_err(err, err_len, "%u sections, at most %d", count, STATE_MAX_SECTIONS);
	size_t end = len - 4, pos = HDR_LEN;
	for (uint32_t i = 0; i < count; i++) {
		const uint8_t *nm;
		size_t nl;
		if (!next_section(p, end, &pos, &nm, &nl, NULL, NULL, NULL))
			return file_err(err, err_len, "section %u of %u is malformed", i + 1, count);
		/* one name, one section: a reader must never pick between two */
		size_t q = HDR_LEN;
		for (uint32_t j = 0; j < i; j++) {
			const uint8_t *nm2 = NULL;
			size_t nl2 = 0;
			/* sections before @i were walked already: this cannot fail */
			next_section(p, end, &q, &nm2, &nl2, NULL, NULL, NULL);
			if (nl2 == nl && memcmp(nm, nm2, nl) == 0)
				return file_err(err, err_len, "section '%.*s' appears twice",
						(int)nl, (const char *)nm);
		}
	}
	if (pos != end)
		return file_err(err, err_len, "%zu bytes after the last section", end - pos);
	out->p = p;
	out->len = end;
	out->nr_sections = count;
	return 0;
}

int state_section(const struct state_file *f, const char *name, uint32_t max_version,
		  struct state_r *out, char *err, size_t err_len)
{
	memset(out, 0, sizeof(*out));
	size_t want = strlen(name), pos = HDR_LEN;
	for (uint32_t i = 0; i < f->nr_sections; i++) {
		const uint8_t *nm, *pl;
		size_t nl;
		uint32_t ver;
		uint64_t plen;
		if (!next_section(f->p, f->len, &pos, &nm, &nl, &ver, &pl, &plen))
			return file_err(err, err_len, "section %u is malformed", i + 1);
		if (nl != want || memcmp(nm, name, nl) != 0)
			continue;
		if (ver > max_version)
			return file_err(err, err_len, "section %s: version %u, this kvmrun reads "
					"up to %u", name, ver, max_version);
		out->p = pl;
		out->len = (size_t)plen;
		out->version = ver;
		snprintf(out->name, sizeof(out->name), "%s", name);
		return 0;
	}
	return -ENOENT;
}

bool state_section_name(const struct state_file *f, uint32_t i, char *name, size_t len)
{
	size_t pos = HDR_LEN;
	for (uint32_t j = 0; j < f->nr_sections; j++) {
		const uint8_t *nm;
		size_t nl;
		if (!next_section(f->p, f->len, &pos, &nm, &nl, NULL, NULL, NULL))
			return false;
		if (j == i) {
			snprintf(name, len, "%.*s", (int)nl, (const char *)nm);
			return true;
		}
	}
	return false;
}

void state_fail(struct state_r *r, const char *fmt, ...)
{
	if (r->failed)
		return;
	r->failed = true;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->err, sizeof(r->err), fmt, ap);
	va_end(ap);
}

static const uint8_t *r_take(struct state_r *r, size_t n)
{
	if (r->failed)
		return NULL;
	if (n > r->len - r->pos) {
		state_fail(r, "truncated at byte %zu of %zu (wanted %zu more)", r->pos, r->len, n);
		return NULL;
	}
	const uint8_t *p = r->p + r->pos;
	r->pos += n;
	return p;
}

static uint64_t get_le(struct state_r *r, unsigned n)
{
	const uint8_t *p = r_take(r, n);
	return p ? le_load(p, n) : 0;
}

uint8_t state_get_u8(struct state_r *r) { return (uint8_t)get_le(r, 1); }
uint16_t state_get_u16(struct state_r *r) { return (uint16_t)get_le(r, 2); }
uint32_t state_get_u32(struct state_r *r) { return (uint32_t)get_le(r, 4); }
uint64_t state_get_u64(struct state_r *r) { return get_le(r, 8); }

bool state_get_bool(struct state_r *r)
{
	uint8_t v = state_get_u8(r);
	if (v > 1)
		state_fail(r, "boolean byte %u at %zu", v, r->pos - 1);
	return v == 1;
}

void state_get_bytes(struct state_r *r, void *p, size_t n)
{
	const uint8_t *s = r_take(r, n);
	if (s)
		memcpy(p, s, n);
	else if (n)
		memset(p, 0, n);
}

uint32_t state_get_u32_max(struct state_r *r, uint32_t max, const char *what)
{
	uint32_t v = state_get_u32(r);
	if (v > max) {
		state_fail(r, "%s is %u, at most %u", what, v, max);
		return 0;
	}
	return v;
}

uint64_t state_get_u64_max(struct state_r *r, uint64_t max, const char *what)
{
	uint64_t v = state_get_u64(r);
	if (v > max) {
		state_fail(r, "%s is %llu, at most %llu", what, (unsigned long long)v,
			   (unsigned long long)max);
		return 0;
	}
	return v;
}

int state_r_finish(struct state_r *r)
{
	if (!r->failed && r->pos != r->len)
		state_fail(r, "%zu bytes left unread", r->len - r->pos);
	if (!r->failed)
		return 0;
	char msg[STATE_ERR_MAX];
	memcpy(msg, r->err, sizeof(msg));
	int n = snprintf(r->err, sizeof(r->err), "section %s: ", r->name[0] ? r->name : "?");
	if (n > 0 && (size_t)n < sizeof(r->err)) {
		size_t m = strnlen(msg, sizeof(r->err) - (size_t)n - 1);
		memcpy(r->err + n, msg, m);
		r->err[(size_t)n + m] = 0;
	}
	return -EINVAL;
}

uint32_t state_crc32(uint32_t crc, const void *buf, size_t n)
{
	const uint8_t *p = buf;
	crc = ~crc;
	for (size_t i = 0; i < n; i++) {
		crc ^= p[i];
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
	}
	return ~crc;
}
