/* block/image and block/engine on real files under /var/tmp (not tmpfs,
 * which may refuse O_DIRECT), through both engines and both cache modes. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "block/engine.h"
#include "block/engine_priv.h" /* engine_iov_remainder */
#include "block/image.h"
#include "unit.h"

#define IMG_SIZE (8u << 20)
#define BLK 4096u

static struct logger lg;

/* One engine configuration under test. */
struct cfg {
	enum disk_io io;
	enum disk_cache cache;
};

static const char *io_name(enum disk_io io)
{
	return io == DISK_IO_URING ? "io_uring" : "sync";
}

static char *make_image(uint64_t size)
{
	char *path = strdup("/var/tmp/kvmrun-test-blk-XXXXXX");
	int fd = mkstemp(path);
	if (fd < 0) {
		perror("mkstemp /var/tmp");
		exit(1);
	}
	if (ftruncate(fd, (off_t)size) < 0) {
		perror("ftruncate");
		exit(1);
	}
	close(fd);
	return path;
}

static void drop_image(char *path)
{
	unlink(path);
	free(path);
}

static void *abuf(size_t len)
{
	void *p = NULL;
	if (posix_memalign(&p, BLK, len))
		exit(1);
	memset(p, 0, len);
	return p;
}

static void fill(void *buf, size_t len, unsigned seed)
{
	uint8_t *b = buf;
	for (size_t i = 0; i < len; i++)
		b[i] = (uint8_t)(seed * 131 + i * 7 + (i >> 9));
}

static bool all_zero(const void *buf, size_t len)
{
	const uint8_t *b = buf;
	for (size_t i = 0; i < len; i++)
		if (b[i])
			return false;
	return true;
}

struct done_log {
	unsigned calls;
	struct engine_req *last;
};

static void on_done(void *cookie, struct engine_req *req)
{
	struct done_log *d = cookie;
	d->calls++;
	d->last = req;
}

/* Reaps until nothing is in flight, waiting on the event fd as the event
 * loop would. Returns the number of callbacks. */
static unsigned wait_all(struct engine *e, struct done_log *d)
{
	unsigned before = d->calls;
	while (engine_inflight(e)) {
		struct pollfd pfd = { .fd = engine_event_fd(e), .events = POLLIN };
		int r = poll(&pfd, 1, 10000);
		if (r != 1) {
			fprintf(stderr, "  no completion within 10 s (%u in flight)\n",
				engine_inflight(e));
			unit_fail(__FILE__, __LINE__, "event fd readable");
			break;
		}
		int n = engine_reap(e, on_done, d);
		if (n < 0) {
			unit_fail(__FILE__, __LINE__, "engine_reap >= 0");
			break;
		}
	}
	return d->calls - before;
}

static void set_rw(struct engine_req *r, enum engine_op op, uint64_t off,
		   struct iovec *iov, unsigned cnt)
{
	memset(r, 0, sizeof(*r));
	r->op = op;
	r->offset = off;
	r->iov = iov;
	r->iovcnt = cnt;
	for (unsigned i = 0; i < cnt; i++)
		r->len += iov[i].iov_len;
}

/* Runs one request to completion and returns its result. */
static int64_t run_one(struct engine *e, struct engine_req *r)
{
	struct done_log d = {0};
	int q = engine_queue(e, r);
	if (q < 0)
		return q;
	CHECK_EQ(engine_submit(e), 0);
	CHECK_EQ(wait_all(e, &d), 1);
	CHECK(d.last == r);
	return r->result;
}

static int64_t rw(struct engine *e, enum engine_op op, uint64_t off, void *buf, size_t len)
{
	struct iovec v = { buf, len };
	struct engine_req r;
	set_rw(&r, op, off, &v, 1);
	return run_one(e, &r);
}

static int64_t range_op(struct engine *e, enum engine_op op, uint64_t off, uint64_t len)
{
	struct engine_req r = { .op = op, .offset = off, .len = len };
	return run_one(e, &r);
}

struct fixture {
	char *path;
	struct image img;
	struct engine *e;
};

static bool setup_batch(struct fixture *f, const struct cfg *c, unsigned ring_size,
			unsigned submit_batch)
{
	f->path = make_image(IMG_SIZE);
	f->e = NULL;
	int r = image_open(&f->img, "disk0", f->path, false, c->cache, &lg);
	CHECK_EQ(r, 0);
	if (r)
		return false;
	struct engine_params p = { .io = c->io, .ring_size = ring_size,
				   .submit_batch = submit_batch };
	r = engine_create(&f->img, &p, &f->e);
	CHECK_EQ(r, 0);
	if (r)
		return false;
	CHECK_STREQ(engine_name(f->e), io_name(c->io));
	return true;
}

static bool setup(struct fixture *f, const struct cfg *c, unsigned ring_size)
{
	return setup_batch(f, c, ring_size, 0);
}

static void teardown(struct fixture *f)
{
	engine_destroy(f->e);
	image_close(&f->img);
	drop_image(f->path);
}

static void test_write_read_back(const struct cfg *c)
{
	struct fixture f;
	if (!setup(&f, c, 0))
		goto out;
	CHECK_EQ(f.img.size, IMG_SIZE);
	CHECK_EQ(f.img.direct, c->cache == DISK_CACHE_NONE);
	size_t len = 16 * BLK;
	uint8_t *w = abuf(len), *rd = abuf(len);
	fill(w, len, 1);
	/* three segments of unequal size */
	struct iovec wv[3] = { { w, BLK }, { w + BLK, 5 * BLK }, { w + 6 * BLK, 10 * BLK } };
	struct engine_req r;
	set_rw(&r, ENGINE_OP_WRITE, 3 * BLK, wv, 3);
	CHECK_EQ(run_one(f.e, &r), (int64_t)len);
	CHECK(wv[1].iov_base == w + BLK && wv[1].iov_len == 5 * BLK);

	CHECK_EQ(rw(f.e, ENGINE_OP_READ, 3 * BLK, rd, len), (int64_t)len);
	CHECK(memcmp(w, rd, len) == 0);
	/* what an outsider reads through the file agrees */
	int fd = open(f.path, O_RDONLY);
	memset(rd, 0, len);
	CHECK_EQ(pread(fd, rd, len, 3 * BLK), (ssize_t)len);
	CHECK(memcmp(w, rd, len) == 0);
	close(fd);

	struct engine_stats s;
	engine_get_stats(f.e, &s);
	CHECK_EQ(s.requests, 2);
	CHECK_EQ(s.bytes_written, len);
	CHECK_EQ(s.bytes_read, len);
	CHECK_EQ(s.errors, 0);
	free(w);
	free(rd);
out:
	teardown(&f);
}

/* 64 requests queued, then one engine_submit(): with a submit batch as
 * large as the ring that is one io_uring_submit for the lot. */
static void test_batch_64(const struct cfg *c)
{
	struct fixture f;
	if (!setup_batch(&f, c, 256, 256))
		goto out;
	enum { N = 64 };
	uint8_t *bufs = abuf(N * BLK);
	struct iovec v[N];
	struct engine_req r[N];
	struct done_log d = {0};
	struct engine_stats s0, s1;

	for (unsigned i = 0; i < N; i++) {
		fill(bufs + i * BLK, BLK, i + 7);
		v[i] = (struct iovec){ bufs + i * BLK, BLK };
		/* scattered offsets, back to front */
		set_rw(&r[i], ENGINE_OP_WRITE, (uint64_t)(N - 1 - i) * 2 * BLK, &v[i], 1);
		r[i].cookie = &r[i];
	}
	engine_get_stats(f.e, &s0);
	for (unsigned i = 0; i < N; i++)
		CHECK_EQ(engine_queue(f.e, &r[i]), 0);
	CHECK_EQ(engine_inflight(f.e), N);
	CHECK_EQ(engine_submit(f.e), 0);
	engine_get_stats(f.e, &s1);
	CHECK_EQ(s1.submit_calls - s0.submit_calls, 1);
	CHECK_EQ(wait_all(f.e, &d), N);
	for (unsigned i = 0; i < N; i++)
		CHECK_EQ(r[i].result, BLK);

	uint8_t *rd = abuf(N * BLK);
	for (unsigned i = 0; i < N; i++) {
		v[i] = (struct iovec){ rd + i * BLK, BLK };
		set_rw(&r[i], ENGINE_OP_READ, (uint64_t)(N - 1 - i) * 2 * BLK, &v[i], 1);
		CHECK_EQ(engine_queue(f.e, &r[i]), 0);
	}
	engine_get_stats(f.e, &s0);
	CHECK_EQ(engine_submit(f.e), 0);
	engine_get_stats(f.e, &s1);
	CHECK_EQ(s1.submit_calls - s0.submit_calls, 1);
	CHECK_EQ(wait_all(f.e, &d), N);
	CHECK(memcmp(bufs, rd, N * BLK) == 0);
	CHECK_EQ(s1.overflowed, 0);
	engine_get_stats(f.e, &s1);
	CHECK_EQ(s1.reads, N);
	CHECK_EQ(s1.writes, N);
	free(bufs);
	free(rd);
out:
	teardown(&f);
}

/* More requests than the ring holds wait inside the engine and still all
 * complete, correctly. */
/* The default submit batch (2): engine_queue() sends every second
 * request on its own, so the disk starts before the whole batch is
 * parsed; engine_submit() sends the odd one left. */
static void test_submit_in_pairs(const struct cfg *c)
{
	struct fixture f;
	if (!setup(&f, c, 0))
		goto out;
	enum { N = 5 };
	uint8_t *bufs = abuf(N * BLK);
	struct iovec v[N];
	struct engine_req r[N];
	struct done_log d = {0};
	struct engine_stats s0, s1;
	engine_get_stats(f.e, &s0);
	for (unsigned i = 0; i < N; i++) {
		v[i] = (struct iovec){ bufs + i * BLK, BLK };
		set_rw(&r[i], ENGINE_OP_READ, (uint64_t)i * 4 * BLK, &v[i], 1);
		CHECK_EQ(engine_queue(f.e, &r[i]), 0);
	}
	engine_get_stats(f.e, &s1);
	CHECK_EQ(s1.submit_calls - s0.submit_calls, 2);
	/* the first four complete without engine_submit() */
	while (d.calls < N - 1) {
		struct pollfd pfd = { .fd = engine_event_fd(f.e), .events = POLLIN };
		if (poll(&pfd, 1, 10000) != 1) {
			unit_fail(__FILE__, __LINE__, "the first four complete unsubmitted");
			break;
		}
		CHECK(engine_reap(f.e, on_done, &d) >= 0);
	}
	CHECK_EQ(d.calls, N - 1);
	CHECK_EQ(engine_inflight(f.e), 1);
	CHECK_EQ(engine_submit(f.e), 0);
	engine_get_stats(f.e, &s1);
	CHECK_EQ(s1.submit_calls - s0.submit_calls, 3);
	CHECK_EQ(wait_all(f.e, &d), 1);
	CHECK(d.last == &r[N - 1]);
	for (unsigned i = 0; i < N; i++)
		CHECK_EQ(r[i].result, BLK);
	free(bufs);
out:
	teardown(&f);
}

static void test_ring_overflow(const struct cfg *c)
{
	struct fixture f;
	if (!setup(&f, c, 4))
		goto out;
	enum { N = 100 };
	uint8_t *bufs = abuf(N * BLK), *rd = abuf(N * BLK);
	struct iovec v[N];
	struct engine_req r[N];
	struct done_log d = {0};
	for (unsigned i = 0; i < N; i++) {
		fill(bufs + i * BLK, BLK, i);
		v[i] = (struct iovec){ bufs + i * BLK, BLK };
		set_rw(&r[i], ENGINE_OP_WRITE, (uint64_t)i * BLK, &v[i], 1);
		CHECK_EQ(engine_queue(f.e, &r[i]), 0);
	}
	CHECK_EQ(engine_submit(f.e), 0);
	CHECK_EQ(wait_all(f.e, &d), N);
	CHECK_EQ(rw(f.e, ENGINE_OP_READ, 0, rd, N * BLK), N * BLK);
	CHECK(memcmp(bufs, rd, N * BLK) == 0);
	struct engine_stats s;
	engine_get_stats(f.e, &s);
	if (c->io == DISK_IO_URING)
		CHECK(s.overflowed > 0);
	CHECK_EQ(s.errors, 0);
	free(bufs);
	free(rd);
out:
	teardown(&f);
}

static void test_flush(const struct cfg *c)
{
	struct fixture f;
	if (!setup(&f, c, 0))
		goto out;
	uint8_t *w = abuf(BLK);
	fill(w, BLK, 3);
	CHECK_EQ(rw(f.e, ENGINE_OP_WRITE, 0, w, BLK), BLK);
	CHECK_EQ(range_op(f.e, ENGINE_OP_FLUSH, 0, 0), 0);
	struct engine_stats s;
	engine_get_stats(f.e, &s);
	CHECK_EQ(s.flushes, 1);
	free(w);
out:
	teardown(&f);
}

static uint64_t blocks_of(const char *path)
{
	struct stat st;
	if (stat(path, &st) < 0)
		return 0;
	return (uint64_t)st.st_blocks;
}

static void test_discard(const struct cfg *c)
{
	struct fixture f;
	if (!setup(&f, c, 0))
		goto out;
	if (!f.img.can_discard) {
		printf("SKIP discard: /var/tmp's file system cannot punch holes\n");
		goto out;
	}
	size_t len = 1u << 20;
	uint8_t *w = abuf(len), *rd = abuf(len);
	fill(w, len, 9);
	CHECK_EQ(rw(f.e, ENGINE_OP_WRITE, 0, w, len), (int64_t)len);
	CHECK_EQ(range_op(f.e, ENGINE_OP_FLUSH, 0, 0), 0);
	uint64_t before = blocks_of(f.path);
	CHECK(before >= len / 512);
	CHECK_EQ(range_op(f.e, ENGINE_OP_DISCARD, 64 * 1024, 512 * 1024), 512 * 1024);
	uint64_t after = blocks_of(f.path);
	CHECK(after + 512 * 1024 / 512 <= before);
	CHECK_EQ(rw(f.e, ENGINE_OP_READ, 0, rd, len), (int64_t)len);
	CHECK(all_zero(rd + 64 * 1024, 512 * 1024));
	CHECK(memcmp(rd, w, 64 * 1024) == 0);
	CHECK(memcmp(rd + 576 * 1024, w + 576 * 1024, len - 576 * 1024) == 0);
	struct engine_stats s;
	engine_get_stats(f.e, &s);
	CHECK_EQ(s.discards, 1);
	free(w);
	free(rd);
out:
	teardown(&f);
}

/* Write-zeroes through each step of the fallback chain: ZERO_RANGE,
 * PUNCH_HOLE, and writing zeroes (over more than one zero buffer). */
static void test_write_zeroes(const struct cfg *c)
{
	for (int step = 0; step < 3; step++) {
		struct fixture f;
		if (!setup(&f, c, 0)) {
			teardown(&f);
			return;
		}
		CHECK(f.img.can_write_zeroes);
		if (step >= 1)
			f.img.zero_range_ok = false;
		if (step >= 2)
			f.img.punch_ok = false;
		size_t len = 4u << 20;
		uint8_t *w = abuf(len), *rd = abuf(len);
		fill(w, len, 11);
		CHECK_EQ(rw(f.e, ENGINE_OP_WRITE, 0, w, len), (int64_t)len);
		/* 2.5 MiB: more than two 1 MiB zero buffers */
		uint64_t zoff = 512 * 1024, zlen = 2560 * 1024;
		CHECK_EQ(range_op(f.e, ENGINE_OP_WRITE_ZEROES, zoff, zlen), (int64_t)zlen);
		CHECK_EQ(rw(f.e, ENGINE_OP_READ, 0, rd, len), (int64_t)len);
		CHECK(memcmp(rd, w, zoff) == 0);
		CHECK(all_zero(rd + zoff, zlen));
		CHECK(memcmp(rd + zoff + zlen, w + zoff + zlen, len - zoff - zlen) == 0);
		struct engine_stats s;
		engine_get_stats(f.e, &s);
		CHECK_EQ(s.write_zeroes, 1);
		CHECK_EQ(s.errors, 0);
		if (step == 0)
			CHECK(f.img.zero_range_ok);
		/* writing zeroes goes 1 MiB at a time: 3 writes for 2.5 MiB */
		if (step == 2 && c->io == DISK_IO_URING)
			CHECK_EQ(s.resubmits, 2);
		free(w);
		free(rd);
		teardown(&f);
	}
}

static void test_readonly_refuses_writes(const struct cfg *c)
{
	char *path = make_image(IMG_SIZE);
	struct image img;
	struct engine *e = NULL;
	CHECK_EQ(image_open(&img, "disk0", path, true, c->cache, &lg), 0);
	CHECK(img.readonly);
	CHECK(!img.can_discard);
	struct engine_params p = { .io = c->io };
	CHECK_EQ(engine_create(&img, &p, &e), 0);
	if (e) {
		uint8_t *b = abuf(BLK);
		CHECK_EQ(rw(e, ENGINE_OP_WRITE, 0, b, BLK), -EROFS);
		CHECK_EQ(range_op(e, ENGINE_OP_DISCARD, 0, BLK), -EROFS);
		CHECK_EQ(range_op(e, ENGINE_OP_WRITE_ZEROES, 0, BLK), -EROFS);
		CHECK_EQ(rw(e, ENGINE_OP_READ, 0, b, BLK), BLK);
		CHECK_EQ(range_op(e, ENGINE_OP_FLUSH, 0, 0), 0);
		/* the fd itself cannot write either */
		CHECK(pwrite(img.fd, b, BLK, 0) < 0);
		struct engine_stats s;
		engine_get_stats(e, &s);
		CHECK_EQ(s.rejected, 3);
		CHECK_EQ(engine_inflight(e), 0);
		free(b);
	}
	engine_destroy(e);
	image_close(&img);
	drop_image(path);
}

static void test_out_of_range(const struct cfg *c)
{
	struct fixture f;
	if (!setup(&f, c, 0))
		goto out;
	uint8_t *b = abuf(2 * BLK);
	CHECK_EQ(rw(f.e, ENGINE_OP_READ, IMG_SIZE - BLK, b, 2 * BLK), -EINVAL);
	CHECK_EQ(rw(f.e, ENGINE_OP_WRITE, IMG_SIZE, b, BLK), -EINVAL);
	CHECK_EQ(rw(f.e, ENGINE_OP_READ, UINT64_MAX - BLK + 1, b, BLK), -EINVAL);
	CHECK_EQ(range_op(f.e, ENGINE_OP_WRITE_ZEROES, IMG_SIZE - BLK, 2 * BLK), -EINVAL);
	CHECK_EQ(range_op(f.e, ENGINE_OP_DISCARD, BLK, UINT64_MAX - BLK + 1), -EINVAL);
	CHECK_EQ(range_op(f.e, ENGINE_OP_WRITE_ZEROES, BLK, 0), -EINVAL);
	/* the last block is in range */
	CHECK_EQ(rw(f.e, ENGINE_OP_READ, IMG_SIZE - BLK, b, BLK), BLK);
	/* len must match the iovecs */
	struct iovec v = { b, BLK };
	struct engine_req r;
	set_rw(&r, ENGINE_OP_READ, 0, &v, 1);
	r.len = 2 * BLK;
	CHECK_EQ(engine_queue(f.e, &r), -EINVAL);
	r.op = (enum engine_op)42;
	r.len = BLK;
	CHECK_EQ(engine_queue(f.e, &r), -EINVAL);
	CHECK_EQ(engine_inflight(f.e), 0);
	struct engine_stats s;
	engine_get_stats(f.e, &s);
	CHECK_EQ(s.rejected, 8);
	CHECK(f.img.zero_range_ok);
	free(b);
out:
	teardown(&f);
}

/* Reading past the end of a file that shrank under us: the kernel returns
 * 0 bytes, which must become -EIO, not a success. */
static void test_short_read_is_error(const struct cfg *c)
{
	struct fixture f;
	if (!setup(&f, c, 0))
		goto out;
	uint8_t *b = abuf(4 * BLK);
	CHECK_EQ(truncate(f.path, IMG_SIZE - 2 * BLK), 0);
	/* straddles the new end: a short read, then nothing */
	CHECK_EQ(rw(f.e, ENGINE_OP_READ, IMG_SIZE - 4 * BLK, b, 4 * BLK), -EIO);
	struct engine_stats s;
	engine_get_stats(f.e, &s);
	CHECK_EQ(s.errors, 1);
	CHECK(s.resubmits >= 1);
	free(b);
out:
	teardown(&f);
}

static void test_event_fd(const struct cfg *c)
{
	struct fixture f;
	if (!setup(&f, c, 0))
		goto out;
	int efd = engine_event_fd(f.e);
	struct pollfd pfd = { .fd = efd, .events = POLLIN };
	CHECK_EQ(poll(&pfd, 1, 0), 0);
	uint8_t *b = abuf(BLK);
	struct iovec v = { b, BLK };
	struct engine_req r;
	set_rw(&r, ENGINE_OP_READ, 0, &v, 1);
	CHECK_EQ(engine_queue(f.e, &r), 0);
	CHECK_EQ(engine_submit(f.e), 0);
	CHECK_EQ(poll(&pfd, 1, 10000), 1);
	CHECK(pfd.revents & POLLIN);
	struct done_log d = {0};
	CHECK_EQ(engine_reap(f.e, on_done, &d), 1);
	CHECK_EQ(d.calls, 1);
	CHECK_EQ(r.result, BLK);
	/* drained: not readable until the next completion */
	pfd.revents = 0;
	CHECK_EQ(poll(&pfd, 1, 0), 0);
	CHECK_EQ(engine_reap(f.e, on_done, &d), 0);
	free(b);
out:
	teardown(&f);
}

static void test_dio_alignment(const struct cfg *c)
{
	struct fixture f;
	if (!setup(&f, c, 0))
		goto out;
	uint8_t *b = abuf(3 * BLK);
	if (c->cache == DISK_CACHE_NONE) {
		CHECK(f.img.dio_offset_align >= 1);
		CHECK(f.img.dio_offset_align <= BLK);
		CHECK(f.img.dio_mem_align >= f.img.dio_offset_align);
		if (f.img.dio_offset_align > 1) {
			CHECK_EQ(rw(f.e, ENGINE_OP_READ, 1, b, BLK), -EINVAL);
			CHECK_EQ(rw(f.e, ENGINE_OP_READ, 0, b, BLK + 1), -EINVAL);
		}
		if (f.img.dio_mem_align > 1)
			CHECK_EQ(rw(f.e, ENGINE_OP_READ, 0, b + 1, BLK), -EINVAL);
		/* and the aligned request at the edge of those works */
		CHECK_EQ(rw(f.e, ENGINE_OP_READ, f.img.dio_offset_align, b + f.img.dio_mem_align,
			    f.img.dio_mem_align), f.img.dio_mem_align);
	} else {
		CHECK_EQ(f.img.dio_offset_align, 1);
		fill(b, 3 * BLK, 5);
		CHECK_EQ(rw(f.e, ENGINE_OP_WRITE, 1, b + 3, 1000), 1000);
		uint8_t got[1000];
		CHECK_EQ(rw(f.e, ENGINE_OP_READ, 1, got, 1000), 1000);
		CHECK(memcmp(got, b + 3, 1000) == 0);
	}
	free(b);
out:
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

static void release_log(int fd, char *out, size_t len)
{
	ssize_t n = pread(fd, out, len - 1, 0);
	out[n > 0 ? n : 0] = 0;
	close(fd);
	lg.fd = STDERR_FILENO;
}

static void test_ofd_lock(void)
{
	char *path = make_image(IMG_SIZE);
	struct image a, b, c;
	char msg[2048];

	CHECK_EQ(image_open(&a, "disk0", path, false, DISK_CACHE_WRITEBACK, &lg), 0);
	int fd = capture_log();
	CHECK_EQ(image_open(&b, "disk1", path, false, DISK_CACHE_WRITEBACK, &lg), -EBUSY);
	CHECK_EQ(image_open(&c, "disk2", path, true, DISK_CACHE_NONE, &lg), -EBUSY);
	release_log(fd, msg, sizeof(msg));
	CHECK(strstr(msg, path) != NULL);
	CHECK(strstr(msg, "another process") != NULL);
	CHECK(strstr(msg, "disk1") != NULL);
	image_close(&b); /* harmless after a failed open */
	image_close(&a);

	/* readers share */
	CHECK_EQ(image_open(&a, "disk0", path, true, DISK_CACHE_WRITEBACK, &lg), 0);
	CHECK_EQ(image_open(&b, "disk1", path, true, DISK_CACHE_WRITEBACK, &lg), 0);
	fd = capture_log();
	CHECK_EQ(image_open(&c, "disk2", path, false, DISK_CACHE_WRITEBACK, &lg), -EBUSY);
	release_log(fd, msg, sizeof(msg));
	image_close(&a);
	image_close(&b);

	/* and the lock goes with the fd */
	CHECK_EQ(image_open(&a, "disk0", path, false, DISK_CACHE_WRITEBACK, &lg), 0);
	image_close(&a);
	image_close(&a);
	drop_image(path);
}

static void test_open_errors(void)
{
	struct image img;
	char msg[2048];
	int fd = capture_log();
	CHECK_EQ(image_open(&img, "disk0", "/var/tmp/kvmrun-no-such-image", false,
			    DISK_CACHE_NONE, &lg), -ENOENT);
	CHECK_EQ(image_open(&img, "disk0", "/dev/null", false, DISK_CACHE_WRITEBACK, &lg),
		 -EINVAL);
	release_log(fd, msg, sizeof(msg));
	/* each names the key it came from */
	CHECK(strstr(msg, "disk0.path=/var/tmp/kvmrun-no-such-image: ") != NULL);
	CHECK(strstr(msg, strerror(ENOENT)) != NULL);
	CHECK(strstr(msg, "disk0.path=/dev/null: a character device, not a regular file or a "
			  "block device") != NULL);

	/* A file system without O_DIRECT: the hint names the key to change.
	 * /proc's files refuse it; not every host has such a writable one,
	 * so this only checks the read-only case where it applies. */
	fd = capture_log();
	int r = image_open(&img, "disk3", "/proc/version", true, DISK_CACHE_NONE, &lg);
	release_log(fd, msg, sizeof(msg));
	if (r == -EINVAL && strstr(msg, "O_DIRECT")) {
		CHECK(strstr(msg, "disk3.cache=writeback") != NULL);
		CHECK(strstr(msg, "/proc/version") != NULL);
	} else if (r == 0) {
		image_close(&img);
	}
}

/* io_uring that cannot be set up (here: a ring size the kernel refuses)
 * falls back to the sync engine, and says so. */
static void test_fallback_to_sync(void)
{
	char *path = make_image(IMG_SIZE);
	struct image img;
	struct engine *e = NULL;
	char msg[2048];
	CHECK_EQ(image_open(&img, "disk0", path, false, DISK_CACHE_WRITEBACK, &lg), 0);
	struct engine_params p = { .io = DISK_IO_URING, .ring_size = 1u << 20 };
	int fd = capture_log();
	CHECK_EQ(engine_create(&img, &p, &e), 0);
	release_log(fd, msg, sizeof(msg));
	if (e) {
		CHECK_STREQ(engine_name(e), "sync");
		CHECK(strstr(msg, "falling back to the sync io engine") != NULL);
		uint8_t *b = abuf(BLK);
		CHECK_EQ(rw(e, ENGINE_OP_READ, 0, b, BLK), BLK);
		free(b);
	}
	engine_destroy(e);
	image_close(&img);
	drop_image(path);
}

/* As where kernel.io_uring_disabled or a container's seccomp profile
 * forbids io_uring: a child whose io_uring_setup fails with EPERM still gets
 * a working (sync) engine. */
static void test_fallback_when_io_uring_denied(void)
{
	char *path = make_image(IMG_SIZE);
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		struct sock_filter insns[] = {
			BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
			BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
			BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
			BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		};
		struct sock_fprog prog = { .len = sizeof(insns) / sizeof(insns[0]), .filter = insns };
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) ||
		    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog))
			_exit(2);
		struct image img;
		struct engine *e = NULL;
		struct engine_params p = { .io = DISK_IO_URING };
		if (image_open(&img, "disk0", path, false, DISK_CACHE_NONE, &lg) ||
		    engine_create(&img, &p, &e))
			_exit(3);
		uint8_t *b = abuf(BLK);
		fill(b, BLK, 1);
		int ok = strcmp(engine_name(e), "sync") == 0 &&
			 rw(e, ENGINE_OP_WRITE, BLK, b, BLK) == BLK &&
			 rw(e, ENGINE_OP_READ, BLK, b, BLK) == BLK;
		engine_destroy(e);
		image_close(&img);
		_exit(ok && unit.failures == 0 ? 0 : 4);
	}
	int status = 0;
	CHECK(pid > 0);
	CHECK_EQ(waitpid(pid, &status, 0), pid);
	CHECK(WIFEXITED(status));
	CHECK_EQ(WEXITSTATUS(status), 0);
	drop_image(path);
}

static void test_iov_remainder(void)
{
	char a[10], b[20], c[30];
	struct iovec v[3] = { { a, 10 }, { b, 20 }, { c, 30 } };
	struct engine_req r;
	set_rw(&r, ENGINE_OP_READ, 0, v, 3);
	memset(&r.priv, 0, sizeof(r.priv));
	struct iovec *rest;

	CHECK_EQ(engine_iov_remainder(&r, &rest), 3);
	CHECK(rest == v);
	r.priv.done = 10;
	CHECK_EQ(engine_iov_remainder(&r, &rest), 2);
	CHECK(rest == v + 1 && rest[0].iov_base == b && rest[0].iov_len == 20);
	r.priv.done = 15;
	CHECK_EQ(engine_iov_remainder(&r, &rest), 2);
	CHECK(rest[0].iov_base == b + 5 && rest[0].iov_len == 15);
	r.priv.done = 59;
	CHECK_EQ(engine_iov_remainder(&r, &rest), 1);
	CHECK(rest[0].iov_base == c + 29 && rest[0].iov_len == 1);
	/* the earlier rewrite of v[1] was undone */
	CHECK(v[1].iov_base == b && v[1].iov_len == 20);
	r.priv.done = 0;
	CHECK_EQ(engine_iov_remainder(&r, &rest), 3);
	CHECK(v[2].iov_base == c && v[2].iov_len == 30);
}

#define RUN_CFG(fn, cfgp) do { \
	static char name_[96]; \
	snprintf(name_, sizeof(name_), "%s[%s,%s]", #fn, io_name((cfgp)->io), \
		 (cfgp)->cache == DISK_CACHE_NONE ? "cache=none" : "cache=writeback"); \
	unit.current = name_; \
	unit.tests++; \
	fn(cfgp); \
} while (0)

int main(void)
{
	log_init(&lg, LOG_WARN, "test");
	static const struct cfg cfgs[] = {
		{ DISK_IO_URING, DISK_CACHE_NONE },
		{ DISK_IO_URING, DISK_CACHE_WRITEBACK },
		{ DISK_IO_SYNC, DISK_CACHE_NONE },
		{ DISK_IO_SYNC, DISK_CACHE_WRITEBACK },
	};
	RUN(test_iov_remainder);
	RUN(test_ofd_lock);
	RUN(test_open_errors);
	RUN(test_fallback_to_sync);
	RUN(test_fallback_when_io_uring_denied);
	for (unsigned i = 0; i < sizeof(cfgs) / sizeof(cfgs[0]); i++) {
		const struct cfg *c = &cfgs[i];
		RUN_CFG(test_write_read_back, c);
		RUN_CFG(test_batch_64, c);
		if (c->io == DISK_IO_URING) /* sync does its I/O in engine_submit() */
			RUN_CFG(test_submit_in_pairs, c);
		RUN_CFG(test_ring_overflow, c);
		RUN_CFG(test_flush, c);
		RUN_CFG(test_discard, c);
		RUN_CFG(test_write_zeroes, c);
		RUN_CFG(test_readonly_refuses_writes, c);
		RUN_CFG(test_out_of_range, c);
		RUN_CFG(test_short_read_is_error, c);
		RUN_CFG(test_event_fd, c);
		RUN_CFG(test_dio_alignment, c);
	}
	return unit_done();
}
