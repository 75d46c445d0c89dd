/* block/overlay over the engine, on real files under /var/tmp: both
 * engines under it, both cache modes, both stores. Every check compares
 * the disk the engine shows with a model kept in memory, and the base file
 * with its original bytes. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "block/engine.h"
#include "block/image.h"
#include "block/overlay.h"
#include "unit.h"

/* Not a multiple of the 4 KiB block: the last block is partial. */
#define DISK_SIZE ((1u << 20) + 1536u)
#define BS OVERLAY_BLOCK_SIZE

static struct logger lg;

struct cfg {
	enum disk_io io;
	enum disk_cache cache;
	enum overlay_kind kind;
};

struct fx {
	char base[64], ov[64];
	struct image img;
	struct engine *e;
	uint8_t *model;   /* what the disk must read as */
	uint8_t *orig;    /* the base's bytes */
	uint8_t *buf;     /* aligned scratch, DISK_SIZE */
};

static void fill(uint8_t *b, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		b[i] = (uint8_t)(seed * 131 + i * 7 + (i >> 9) + 1);
}

static void write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, data, len) != (ssize_t)len) {
		perror(path);
		exit(1);
	}
	close(fd);
}

static bool file_equals(const char *path, const uint8_t *want, size_t len)
{
	uint8_t *got = malloc(len + 1);
	int fd = open(path, O_RDONLY);
	ssize_t n = fd < 0 ? -1 : pread(fd, got, len + 1, 0);
	if (fd >= 0)
		close(fd);
	bool ok = n == (ssize_t)len && memcmp(got, want, len) == 0;
	free(got);
	return ok;
}

static void on_done(void *cookie, struct engine_req *req)
{
	(void)req;
	(*(unsigned *)cookie)++;
}

static int64_t run_one(struct engine *e, struct engine_req *r)
{
	unsigned calls = 0;
	int q = engine_queue(e, r);
	if (q < 0)
		return q;
	CHECK_EQ(engine_submit(e), 0);
	while (engine_inflight(e)) {
		struct pollfd pfd = { .fd = engine_event_fd(e), .events = POLLIN };
		if (poll(&pfd, 1, 10000) != 1) {
			unit_fail(__FILE__, __LINE__, "completion within 10 s");
			return -ETIMEDOUT;
		}
		CHECK(engine_reap(e, on_done, &calls) >= 0);
	}
	CHECK_EQ(calls, 1);
	return r->result;
}

/* A read or write of @len bytes at @off, split into @parts iovec entries. */
static int64_t rw(struct fx *f, enum engine_op op, uint64_t off, uint8_t *buf, size_t len,
		  unsigned parts)
{
	struct iovec v[4];
	size_t at = 0;
	for (unsigned i = 0; i < parts; i++) {
		size_t l = i + 1 == parts ? len - at : len / parts / 512 * 512;
		v[i] = (struct iovec){ buf + at, l };
		at += l;
	}
	struct engine_req r = { .op = op, .offset = off, .iov = v, .iovcnt = parts, .len = len };
	return run_one(f->e, &r);
}

static int64_t range_op(struct fx *f, enum engine_op op, uint64_t off, uint64_t len)
{
	struct engine_req r = { .op = op, .offset = off, .len = len };
	return run_one(f->e, &r);
}

/* Writes @len bytes of a pattern at @off through the engine and the model. */
static void model_write(struct fx *f, uint64_t off, size_t len, unsigned seed, unsigned parts)
{
	fill(f->buf, len, seed);
	CHECK_EQ(rw(f, ENGINE_OP_WRITE, off, f->buf, len, parts), (int64_t)len);
	memcpy(f->model + off, f->buf, len);
}

static void model_zero(struct fx *f, enum engine_op op, uint64_t off, uint64_t len)
{
	CHECK_EQ(range_op(f, op, off, len), (int64_t)len);
	memset(f->model + off, 0, len);
}

/* The whole disk, read in @chunk pieces, equals the model. */
static bool disk_matches(struct fx *f, size_t chunk)
{
	bool ok = true;
	for (uint64_t off = 0; off < DISK_SIZE; off += chunk) {
		size_t len = DISK_SIZE - off < chunk ? DISK_SIZE - off : chunk;
		memset(f->buf, 0xee, len);
		if (rw(f, ENGINE_OP_READ, off, f->buf, len, len >= 2048 ? 2 : 1) != (int64_t)len ||
		    memcmp(f->buf, f->model + off, len) != 0) {
			fprintf(stderr, "  disk differs from the model in %llu+%zu\n",
				(unsigned long long)off, len);
			ok = false;
		}
	}
	return ok;
}

static int open_engine(struct fx *f, const struct cfg *c, uint64_t max, bool keep)
{
	int r = image_open(&f->img, "disk0", f->base, true, c->cache, &lg);
	if (r < 0)
		return r;
	struct engine_params p = { .io = c->io, .overlay = { .kind = c->kind, .path = f->ov,
							     .max = max, .keep = keep } };
	r = engine_create(&f->img, &p, &f->e);
	if (r < 0)
		image_close(&f->img);
	return r;
}

static void close_engine(struct fx *f)
{
	engine_destroy(f->e);
	f->e = NULL;
	image_close(&f->img);
}

static bool setup(struct fx *f, const struct cfg *c, uint64_t max, bool keep)
{
	memset(f, 0, sizeof(*f));
	snprintf(f->base, sizeof(f->base), "/var/tmp/kvmrun-test-ovb-%d", (int)getpid());
	snprintf(f->ov, sizeof(f->ov), "/var/tmp/kvmrun-test-ovo-%d", (int)getpid());
	unlink(f->ov);
	f->model = malloc(DISK_SIZE);
	f->orig = malloc(DISK_SIZE);
	if (posix_memalign((void **)&f->buf, 4096, DISK_SIZE))
		exit(1);
	fill(f->orig, DISK_SIZE, 7);
	memcpy(f->model, f->orig, DISK_SIZE);
	write_file(f->base, f->orig, DISK_SIZE);
	chmod(f->base, 0400); /* a shared base may be read-only to us */
	int r = open_engine(f, c, max, keep);
	CHECK_EQ(r, 0);
	return r == 0;
}

/* The base is unchanged (byte for byte) after all of it. */
static void teardown(struct fx *f)
{
	if (f->e)
		close_engine(f);
	CHECK(file_equals(f->base, f->orig, DISK_SIZE));
	unlink(f->base);
	unlink(f->ov);
	free(f->model);
	free(f->orig);
	free(f->buf);
}

static void test_caps(const struct cfg *c)
{
	struct fx f;
	if (!setup(&f, c, 0, false))
		return teardown(&f);
	CHECK(!engine_readonly(f.e));
	CHECK(engine_can_discard(f.e));
	CHECK(engine_can_write_zeroes(f.e));
	CHECK_STREQ(engine_name(f.e), "overlay");
	/* a non-kept file overlay is unlinked as soon as it is open */
	CHECK(access(f.ov, F_OK) != 0);
	teardown(&f);
}

static void test_reads_come_from_base(const struct cfg *c)
{
	struct fx f;
	if (!setup(&f, c, 0, false))
		return teardown(&f);
	CHECK(disk_matches(&f, 4096));
	CHECK(disk_matches(&f, 65536));
	CHECK_EQ(rw(&f, ENGINE_OP_READ, DISK_SIZE - 512, f.buf, 512, 1), 512);
	CHECK(memcmp(f.buf, f.orig + DISK_SIZE - 512, 512) == 0);
	teardown(&f);
}

static void test_read_after_write(const struct cfg *c)
{
	struct fx f;
	if (!setup(&f, c, 0, false))
		return teardown(&f);
	model_write(&f, 8 * BS, BS, 1, 1);               /* one aligned block */
	model_write(&f, 20 * BS, 5 * BS, 2, 3);          /* blocks, three iovec entries */
	model_write(&f, 20 * BS, BS, 3, 1);              /* overwrite */
	/* a read across written and unwritten blocks, from both sources */
	memset(f.buf, 0, 12 * BS);
	CHECK_EQ(rw(&f, ENGINE_OP_READ, 6 * BS + 512, f.buf, 12 * BS, 4), 12 * BS);
	CHECK(memcmp(f.buf, f.model + 6 * BS + 512, 12 * BS) == 0);
	CHECK(disk_matches(&f, 3 * BS));
	teardown(&f);
}

static void test_partial_block_cow(const struct cfg *c)
{
	struct fx f;
	if (!setup(&f, c, 0, false))
		return teardown(&f);
	model_write(&f, 3 * BS + 1024, 512, 4, 1);       /* inside one block */
	model_write(&f, 9 * BS + 3584, 1024, 5, 1);      /* across a boundary */
	model_write(&f, 30 * BS + 512, 3 * BS, 6, 2);    /* partial head and tail */
	model_write(&f, DISK_SIZE - 1024, 1024, 7, 1);   /* the partial last block */
	CHECK(disk_matches(&f, BS));
	/* the block around the small write holds the base's bytes */
	CHECK_EQ(rw(&f, ENGINE_OP_READ, 3 * BS, f.buf, BS, 1), BS);
	CHECK(memcmp(f.buf, f.orig + 3 * BS, 1024) == 0);
	CHECK(memcmp(f.buf + 1536, f.orig + 3 * BS + 1536, BS - 1536) == 0);
	teardown(&f);
}

static bool range_zero(struct fx *f, uint64_t off, size_t len)
{
	CHECK_EQ(rw(f, ENGINE_OP_READ, off, f->buf, len, 1), (int64_t)len);
	for (size_t i = 0; i < len; i++)
		if (f->buf[i])
			return false;
	return true;
}

static void test_discard_zeroes(const struct cfg *c)
{
	struct fx f;
	if (!setup(&f, c, 0, false))
		return teardown(&f);
	model_write(&f, 40 * BS, 8 * BS, 8, 1);
	/* written blocks, base blocks, partial edges: all read back zero */
	model_zero(&f, ENGINE_OP_DISCARD, 40 * BS, 4 * BS);
	model_zero(&f, ENGINE_OP_WRITE_ZEROES, 44 * BS + 512, 2 * BS);
	model_zero(&f, ENGINE_OP_DISCARD, 60 * BS, 16 * BS);       /* never written */
	model_zero(&f, ENGINE_OP_WRITE_ZEROES, 80 * BS + 1024, 1024); /* inside a base block */
	model_zero(&f, ENGINE_OP_DISCARD, DISK_SIZE - 1536, 1536);   /* the partial last block */
	CHECK(range_zero(&f, 40 * BS, 4 * BS));
	CHECK(range_zero(&f, 60 * BS, 16 * BS));
	CHECK(disk_matches(&f, 8 * BS));
	/* a write into a zeroed block copies zeroes, not the base */
	model_write(&f, 61 * BS + 512, 512, 9, 1);
	CHECK_EQ(rw(&f, ENGINE_OP_READ, 61 * BS, f.buf, BS, 1), BS);
	CHECK(f.buf[0] == 0 && f.buf[BS - 1] == 0);
	CHECK(disk_matches(&f, BS));
	teardown(&f);
}

static int capture_log(void)
{
	char tmpl[] = "/var/tmp/kvmrun-test-log-XXXXXX";
	int fd = mkstemp(tmpl);
	unlink(tmpl);
	lg.fd = fd;
	return fd;
}

static unsigned count_in_log(int fd, const char *needle)
{
	char text[8192];
	ssize_t n = pread(fd, text, sizeof(text) - 1, 0);
	text[n > 0 ? n : 0] = 0;
	unsigned count = 0;
	for (const char *p = text; (p = strstr(p, needle)); p++)
		count++;
	return count;
}

static void test_overlay_max(const struct cfg *c)
{
	struct fx f;
	int logfd = capture_log();
	if (!setup(&f, c, 4 * BS, false))
		goto out;
	model_write(&f, 0, 3 * BS, 10, 1);
	model_write(&f, 100 * BS + 512, 512, 11, 1); /* a CoW block: the fourth */
	fill(f.buf, BS, 12);
	CHECK_EQ(rw(&f, ENGINE_OP_WRITE, 50 * BS, f.buf, BS, 1), -ENOSPC);
	CHECK_EQ(rw(&f, ENGINE_OP_WRITE, 3 * BS, f.buf, 2 * BS, 1), -ENOSPC); /* one fits, not two */
	CHECK_EQ(rw(&f, ENGINE_OP_WRITE, 51 * BS, f.buf, 512, 1), -ENOSPC);
	model_write(&f, BS, BS, 13, 1); /* rewriting a block takes no room */
	CHECK(disk_matches(&f, 16 * BS)); /* the refused writes changed nothing */
	CHECK_EQ(count_in_log(logfd, "overlay_max"), 1);
	/* zeroing frees room; zero blocks cost none */
	model_zero(&f, ENGINE_OP_DISCARD, 0, 2 * BS);
	model_zero(&f, ENGINE_OP_WRITE_ZEROES, 200 * BS, 16 * BS);
	model_write(&f, 50 * BS, 2 * BS, 14, 1);
	CHECK(disk_matches(&f, 16 * BS));
	CHECK_EQ(count_in_log(logfd, "overlay_max"), 1);
out:
	close(logfd);
	lg.fd = STDERR_FILENO;
	teardown(&f);
}

/* A random mix of operations against the model. */
static void test_random_ops(const struct cfg *c)
{
	struct fx f;
	if (!setup(&f, c, 0, false))
		return teardown(&f);
	unsigned seed = 12345;
	for (unsigned i = 0; i < 300; i++) {
		seed = seed * 1103515245u + 12345u;
		uint64_t sectors = DISK_SIZE / 512;
		uint64_t off = (uint64_t)((seed >> 8) % sectors) * 512;
		uint64_t len = (uint64_t)(1 + (seed >> 4) % 24) * 512;
		if (off + len > DISK_SIZE)
			len = DISK_SIZE - off;
		switch (seed % 5) {
		case 0: case 1:
			model_write(&f, off, (size_t)len, i, len >= 1024 ? 2 : 1);
			break;
		case 2:
			model_zero(&f, ENGINE_OP_DISCARD, off, len);
			break;
		case 3:
			model_zero(&f, ENGINE_OP_WRITE_ZEROES, off, len);
			break;
		default:
			CHECK_EQ(rw(&f, ENGINE_OP_READ, off, f.buf, (size_t)len, 1), (int64_t)len);
			CHECK(memcmp(f.buf, f.model + off, len) == 0);
		}
	}
	CHECK(disk_matches(&f, 5 * 512));
	teardown(&f);
}

/* Kept: flushed, closed, reopened: the data and the map are back; then
 * merged onto a copy of the base, which equals the model. */
static void test_kept_reopen_merge(const struct cfg *c)
{
	struct fx f;
	if (!setup(&f, c, 0, true))
		return teardown(&f);
	CHECK_EQ(access(f.ov, F_OK), 0);
	model_write(&f, 5 * BS, 3 * BS, 20, 2);
	model_write(&f, 70 * BS + 1024, 1024, 21, 1);
	model_zero(&f, ENGINE_OP_DISCARD, 90 * BS, 4 * BS);
	model_zero(&f, ENGINE_OP_WRITE_ZEROES, 6 * BS, BS);
	CHECK_EQ(range_op(&f, ENGINE_OP_FLUSH, 0, 0), 0);
	close_engine(&f);
	CHECK_EQ(access(f.ov, F_OK), 0);

	CHECK_EQ(open_engine(&f, c, 0, true), 0);
	if (f.e) {
		CHECK(disk_matches(&f, 8 * BS));
		model_write(&f, 7 * BS, 512, 22, 1); /* unflushed: a clean close keeps it too */
		close_engine(&f);
	}
	char target[80];
	snprintf(target, sizeof(target), "%s.merged", f.base);
	write_file(target, f.orig, DISK_SIZE);
	uint64_t blocks = 0;
	CHECK_EQ(overlay_merge(f.ov, target, &lg, &blocks), 0);
	CHECK_EQ(blocks, 3 + 1 + 4);
	CHECK(file_equals(target, f.model, DISK_SIZE));
	/* a target of another size is refused, untouched */
	write_file(target, f.orig, DISK_SIZE - 512);
	CHECK_EQ(overlay_merge(f.ov, target, &lg, NULL), -EINVAL);
	CHECK(file_equals(target, f.orig, DISK_SIZE - 512));
	unlink(target);
	teardown(&f);
}

/* Hostile or mistaken overlay files are refused, never trusted. */
static void test_bad_overlay_files(void)
{
	struct cfg c = { DISK_IO_SYNC, DISK_CACHE_WRITEBACK, OVERLAY_FILE };
	struct fx f;
	if (!setup(&f, &c, 0, true))
		return teardown(&f);
	close_engine(&f);
	char target[80];
	snprintf(target, sizeof(target), "%s.merged", f.base);
	write_file(target, f.orig, DISK_SIZE);
	/* the overlay file's header, damaged field by field */
	uint8_t hdr[4096];
	int fd = open(f.ov, O_RDWR);
	CHECK_EQ(pread(fd, hdr, sizeof(hdr), 0), (ssize_t)sizeof(hdr));
	static const unsigned at[] = { 0, 8, 12, 16, 24, 32, 40, 100 };
	for (unsigned i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
		uint8_t bad[4096];
		memcpy(bad, hdr, sizeof(bad));
		bad[at[i]] ^= 0x41;
		CHECK_EQ(pwrite(fd, bad, sizeof(bad), 0), (ssize_t)sizeof(bad));
		CHECK(open_engine(&f, &c, 0, true) < 0);
		CHECK(overlay_merge(f.ov, target, &lg, NULL) < 0);
	}
	/* truncated inside the header */
	CHECK_EQ(ftruncate(fd, 100), 0);
	CHECK(open_engine(&f, &c, 0, true) < 0);
	CHECK(overlay_merge(f.ov, target, &lg, NULL) < 0);
	close(fd);
	CHECK(file_equals(target, f.orig, DISK_SIZE));
	/* a kept overlay of another disk's size */
	unlink(f.ov);
	chmod(f.base, 0600);
	write_file(f.base, f.orig, DISK_SIZE - 4096);
	CHECK_EQ(open_engine(&f, &c, 0, true), 0);
	if (f.e)
		close_engine(&f);
	write_file(f.base, f.orig, DISK_SIZE);
	CHECK_EQ(open_engine(&f, &c, 0, true), -EINVAL);
	/* not kept, and the path exists: refused, the file left alone */
	CHECK_EQ(open_engine(&f, &c, 0, false), -EEXIST);
	CHECK_EQ(access(f.ov, F_OK), 0);
	unlink(target);
	teardown(&f);
}

/* An overlay needs a read-only base; a read-only disk without one refuses
 * writes as before. */
static void test_needs_readonly_base(void)
{
	char path[64];
	snprintf(path, sizeof(path), "/var/tmp/kvmrun-test-ovrw-%d", (int)getpid());
	uint8_t z[4096] = {0};
	write_file(path, z, sizeof(z));
	struct image img;
	struct engine *e = NULL;
	CHECK_EQ(image_open(&img, "disk0", path, false, DISK_CACHE_WRITEBACK, &lg), 0);
	struct engine_params p = { .io = DISK_IO_SYNC, .overlay = { .kind = OVERLAY_MEMORY } };
	CHECK_EQ(engine_create(&img, &p, &e), -EINVAL);
	image_close(&img);
	CHECK_EQ(image_open(&img, "disk0", path, true, DISK_CACHE_WRITEBACK, &lg), 0);
	p.overlay.kind = OVERLAY_NONE;
	CHECK_EQ(engine_create(&img, &p, &e), 0);
	CHECK(engine_readonly(e));
	struct iovec v = { z, 512 };
	struct engine_req r = { .op = ENGINE_OP_WRITE, .iov = &v, .iovcnt = 1, .len = 512 };
	CHECK_EQ(engine_queue(e, &r), -EROFS);
	engine_destroy(e);
	image_close(&img);
	unlink(path);
}

#define RUN_CFG(fn, c) do { unit.current = #fn; unit.tests++; fn(c); } while (0)

int main(void)
{
	log_init(&lg, LOG_WARN, "test");
	RUN(test_needs_readonly_base);
	RUN(test_bad_overlay_files);
	for (unsigned kind = OVERLAY_MEMORY; kind <= OVERLAY_FILE; kind++) {
		for (unsigned i = 0; i < 4; i++) {
			struct cfg c = { i < 2 ? DISK_IO_URING : DISK_IO_SYNC,
					 i % 2 ? DISK_CACHE_WRITEBACK : DISK_CACHE_NONE,
					 (enum overlay_kind)kind };
			fprintf(stderr, "overlay %s, %s, cache %s\n",
				kind == OVERLAY_MEMORY ? "memory" : "file",
				c.io == DISK_IO_URING ? "io_uring" : "sync",
				c.cache == DISK_CACHE_NONE ? "none" : "writeback");
			RUN_CFG(test_caps, &c);
			RUN_CFG(test_reads_come_from_base, &c);
			RUN_CFG(test_read_after_write, &c);
			RUN_CFG(test_partial_block_cow, &c);
			RUN_CFG(test_discard_zeroes, &c);
			RUN_CFG(test_overlay_max, &c);
			RUN_CFG(test_random_ops, &c);
			if (kind == OVERLAY_FILE)
				RUN_CFG(test_kept_reopen_merge, &c);
		}
	}
	return unit_done();
}
