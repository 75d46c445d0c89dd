/* Saved state: the binary format of a snapshot's state file, and the
 * bounded reader that treats it as hostile input.
 *
 * A state file is
 *
 *   header   "KVMRUNST" (8 bytes), u32 format version (STATE_FORMAT_VERSION),
 *            u32 0x01020304 (written little-endian: a reader on a machine
 *            of the other byte order sees 0x04030201 and refuses),
 *            u32 number of sections
 *   sections name length u16, name (1..STATE_NAME_MAX bytes, no NUL),
 *            u32 section version, u64 payload length, payload
 *   trailer  u32 CRC-32 (IEEE) of every byte before it
 *
 * Every integer is little-endian, whatever the host. A section's payload
 * is a flat sequence of the state_put_* values its owner wrote; its owner
 * reads them back in the same order with state_get_*. A section has a
 * version of its own, so a device can change its layout and still read
 * (or clearly refuse) older files.
 *
 * Reading never trusts the file: state_file_parse() checks the magic,
 * version, byte order, CRC and every section's framing before anything is
 * read, and a section reader's getters stop at its end. A getter past the
 * end, or a state_fail(), makes the reader sticky-failed: later getters
 * return 0, and state_r_finish() reports the first failure, naming the
 * section. Callers check once, at the end, before they apply anything.
 *
 * Threads: none of its own; a writer or reader belongs to its caller. */
#ifndef KVMRUN_STATE_H
#define KVMRUN_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STATE_MAGIC "KVMRUNST"
#define STATE_FORMAT_VERSION 1u
#define STATE_NAME_MAX 64
#define STATE_MAX_SECTIONS 1024
#define STATE_ERR_MAX 192

/* ---------------------------------------------------------------- writer */

struct state_w {
	uint8_t *buf;
	size_t len, cap;
	bool oom;
	uint32_t nr_sections;
	size_t sec_len_at;   /* offset of the open section's length; 0: none */
};

void state_w_init(struct state_w *w);
void state_w_free(struct state_w *w);

/* Opens a section; every put until state_section_end() is its payload.
 * Sections do not nest. */
void state_section_begin(struct state_w *w, const char *name, uint32_t version);
void state_section_end(struct state_w *w);

void state_put_u8(struct state_w *w, uint8_t v);
void state_put_u16(struct state_w *w, uint16_t v);
void state_put_u32(struct state_w *w, uint32_t v);
void state_put_u64(struct state_w *w, uint64_t v);
void state_put_bool(struct state_w *w, bool v);
void state_put_bytes(struct state_w *w, const void *p, size_t n);

/* Seals the file (header count, CRC) and returns its bytes in @out, @len,
 * owned by @w. Returns 0, or -ENOMEM if any put failed, or -EINVAL if a
 * section is still open. */
__attribute__((warn_unused_result))
int state_w_finish(struct state_w *w, const uint8_t **out, size_t *len);

/* ---------------------------------------------------------------- reader */

struct state_r {
	const uint8_t *p;
	size_t len, pos;
	uint32_t version;          /* the section's version */
	char name[STATE_NAME_MAX + 1];
	bool failed;
	char err[STATE_ERR_MAX];
};

/* A whole state file, validated. */
struct state_file {
	const uint8_t *p;
	size_t len;
	uint32_t nr_sections;
};

/* Validates @p/@len as a state file (magic, version, byte order, framing
 * of every section, CRC, no two sections with one name). Returns 0, or
 * -EINVAL with the reason in @err. @p is borrowed. */
__attribute__((warn_unused_result))
int state_file_parse(const void *p, size_t len, struct state_file *out,
		     char *err, size_t err_len);

/* Finds section @name. Returns 0 and a reader over its payload, -ENOENT
 * if there is none, or -EINVAL (reason in @err) if its version is above
 * @max_version. */
__attribute__((warn_unused_result))
int state_section(const struct state_file *f, const char *name, uint32_t max_version,
		  struct state_r *out, char *err, size_t err_len);

/* The name of section @i (0-based, file order) into @name; false when
 * there is no such section. For tools that list a snapshot. */
bool state_section_name(const struct state_file *f, uint32_t i, char *name, size_t len);

uint8_t state_get_u8(struct state_r *r);
uint16_t state_get_u16(struct state_r *r);
uint32_t state_get_u32(struct state_r *r);
uint64_t state_get_u64(struct state_r *r);
/* A byte other than 0 or 1 fails the reader. */
bool state_get_bool(struct state_r *r);
/* Fills @p with @n bytes, or zeroes it and fails the reader. */
void state_get_bytes(struct state_r *r, void *p, size_t n);
/* A u32/u64 that must be <= @max, else the reader fails naming @what. */
uint32_t state_get_u32_max(struct state_r *r, uint32_t max, const char *what);
uint64_t state_get_u64_max(struct state_r *r, uint64_t max, const char *what);

/* Fails the reader with a message of the caller's (a value that breaks
 * an invariant); the first failure is the one kept. */
__attribute__((format(printf, 2, 3)))
void state_fail(struct state_r *r, const char *fmt, ...);

/* 0 if every get succeeded and the payload was read to its end; else
 * -EINVAL with "section NAME: reason" in r->err. */
__attribute__((warn_unused_result))
int state_r_finish(struct state_r *r);

/* CRC-32 (IEEE 802.3, as zlib's crc32) of @p/@n, continuing @crc (0 to start). */
uint32_t state_crc32(uint32_t crc, const void *p, size_t n);

#endif
