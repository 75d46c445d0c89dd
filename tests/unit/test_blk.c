/* virtio-blk end to end (virtio/blk.c over block/ and virtio/device.c):
 * a driver written here fills a split ring in a buffer registered as
 * guest RAM, kicks the queue's eventfd, and runs the real event loop
 * until the device completes. The disk is a temp file in /var/tmp (not
 * tmpfs: O_DIRECT), through both engines. No transport: a fake one counts
 * interrupts. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fake_platform.h"
#include "unit.h"
#include "virtio/blk.h"
#include "lib/evloop.h"

#define RAM_SIZE (4u << 20)
#define QSIZE 64u
#define DESC_GPA 0x0000u
#define AVAIL_GPA 0x1000u
#define USED_GPA 0x2000u
#define HDR_GPA 0x3000u      /* 16 bytes per request slot */
#define STATUS_GPA 0x4000u   /* 1 byte per request slot */
#define DATA_GPA 0x10000u
#define IMG_SIZE (8u << 20)

#define F_NEXT 1u
#define F_WRITE 2u

struct env {
	uint8_t *ram;
	struct guest_mem mem;
	struct evloop *loop;
	struct logger lg;
	struct virtio_platform plat;
	char *path;
	struct virtio_blk *b;
	struct virtio_dev *d;
	unsigned queue_signals, config_signals;
	uint16_t avail_idx;
	uint16_t next_desc;
	uint16_t qsize;              /* Queue Size driver_init() sets; 0: QSIZE */
};

static void on_signal_queue(struct virtio_dev *d, unsigned q)
{
	((struct env *)d->transport)->queue_signals++;
}

static void on_signal_config(struct virtio_dev *d)
{
	((struct env *)d->transport)->config_signals++;
}

static const struct virtio_transport_ops fake_tops = {
	.signal_queue = on_signal_queue,
	.signal_config = on_signal_config,
};

static char *make_image(void)
{
	char *path = strdup("/var/tmp/kvmrun-test-vblk-XXXXXX");
	int fd = mkstemp(path);
	if (fd < 0 || ftruncate(fd, IMG_SIZE) < 0) {
		perror("image in /var/tmp");
		exit(1);
	}
	close(fd);
	return path;
}

static uint8_t *gpa(struct env *e, uint64_t a)
{
	return e->ram + a;
}

/* Creates the device over a fresh RAM buffer; returns false on failure. */
static bool env_create(struct env *e, const char *path, bool readonly, enum disk_io io)
{
	memset(e, 0, sizeof(*e));
	e->ram = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (e->ram == MAP_FAILED)
		exit(1);
	CHECK_EQ(gmem_add_region(&e->mem, 0, RAM_SIZE, e->ram, -1, 0), 0);
	CHECK_EQ(evloop_create(&e->loop), 0);
	log_init(&e->lg, LOG_ERROR, "test");
	e->plat = (struct virtio_platform){ .mem = &e->mem, .loop = e->loop, .log = &e->lg };
	struct virtio_blk_params p = {
		.path = path, .readonly = readonly, .cache = DISK_CACHE_NONE, .io = io,
		.submit_batch = ENGINE_DEFAULT_SUBMIT_BATCH, .index = 3, .nr_queues = 2, .plat = &e->plat,
		.serial = "kvmrun-test-serial",
	};
	int r = virtio_blk_create(&p, &e->b);
	CHECK_EQ(r, 0);
	if (r)
		return false;
	e->d = virtio_blk_dev(e->b);
	e->d->tops = &fake_tops;
	e->d->transport = e;
	return true;
}

static void env_destroy(struct env *e)
{
	virtio_blk_destroy(e->b);
	evloop_destroy(e->loop);
	munmap(e->ram, RAM_SIZE);
}

/* The driver's initialisation (3.1.1), queue 0 only. */
static void driver_init(struct env *e)
{
	struct virtio_dev *d = e->d;
	memset(gpa(e, 0), 0, DATA_GPA);
	e->avail_idx = 0;
	e->next_desc = 0;
	pthread_mutex_lock(&d->lock);
	virtio_dev_set_status(d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	virtio_dev_set_driver_features(d, 0, virtio_dev_features_word(d, 0));
	virtio_dev_set_driver_features(d, 1, virtio_dev_features_word(d, 1));
	virtio_dev_set_status(d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
				 VIRTIO_STATUS_FEATURES_OK);
	CHECK(d->status & VIRTIO_STATUS_FEATURES_OK);
	d->queues[0].size = e->qsize ? e->qsize : QSIZE;
	d->queues[0].desc = DESC_GPA;
	d->queues[0].driver = AVAIL_GPA;
	d->queues[0].device = USED_GPA;
	CHECK(virtio_dev_queue_enable(d, 0));
	virtio_dev_set_status(d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
				 VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
	CHECK(virtio_dev_live(d));
	pthread_mutex_unlock(&d->lock);
}

static void desc(struct env *e, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags,
		 uint16_t next)
{
	fake_vring_desc(e->ram, DESC_GPA, i, addr, len, flags, next);
}

static void avail_add(struct env *e, uint16_t head)
{
	uint16_t *ring = (uint16_t *)gpa(e, AVAIL_GPA + 4);
	ring[e->avail_idx % QSIZE] = head;
	e->avail_idx++;
	__atomic_store_n((uint16_t *)gpa(e, AVAIL_GPA + 2), e->avail_idx, __ATOMIC_RELEASE);
}

static uint16_t used_idx(struct env *e)
{
	return __atomic_load_n((uint16_t *)gpa(e, USED_GPA + 2), __ATOMIC_ACQUIRE);
}

static uint32_t used_len_of(struct env *e, uint16_t idx)
{
	uint32_t v;
	memcpy(&v, gpa(e, USED_GPA + 4 + 8u * (idx % QSIZE) + 4), 4);
	return v;
}

static void kick(struct env *e)
{
	uint64_t one = 1;
	CHECK_EQ(write(e->d->queues[0].kick_fd, &one, sizeof(one)), 8);
}

/* Runs the event loop until used->idx reaches @want (or 10 s). */
static void pump(struct env *e, uint16_t want)
{
	for (int i = 0; i < 1000 && used_idx(e) != want; i++)
		CHECK(evloop_run_once(e->loop, 10) >= 0);
	CHECK_EQ(used_idx(e), want);
}

/* One request: header in its own descriptor, @nseg data buffers of
 * @seglen bytes each from @data, status last. Returns the request slot
 * (its status byte is at STATUS_GPA + slot). */
static unsigned req(struct env *e, uint32_t type, uint64_t sector, uint64_t data,
		    unsigned nseg, uint32_t seglen, bool data_writable)
{
	unsigned slot = e->next_desc / 8 % (QSIZE / 8);
	uint16_t base = (uint16_t)(slot * 8), i = base;
	uint8_t *h = gpa(e, HDR_GPA + 16u * slot);
	memset(h, 0, 16);
	memcpy(h, &type, 4);
	memcpy(h + 8, &sector, 8);
	*gpa(e, STATUS_GPA + slot) = 0xaa;
	desc(e, i, HDR_GPA + 16u * slot, 16, F_NEXT, (uint16_t)(i + 1));
	i++;
	for (unsigned k = 0; k < nseg; k++, i++)
		desc(e, i, data + (uint64_t)k * seglen, seglen,
		     (uint16_t)(F_NEXT | (data_writable ? F_WRITE : 0)), (uint16_t)(i + 1));
	desc(e, i, STATUS_GPA + slot, 1, F_WRITE, 0);
	e->next_desc = (uint16_t)(base + 8);
	avail_add(e, base);
	return slot;
}

static uint8_t status_of(struct env *e, unsigned slot)
{
	return *gpa(e, STATUS_GPA + slot);
}

/* Submits one request and waits for it; returns its status. */
static uint8_t run1(struct env *e, uint32_t type, uint64_t sector, uint64_t data,
		    unsigned nseg, uint32_t seglen, bool writable, uint32_t *used_len)
{
	unsigned slot = req(e, type, sector, data, nseg, seglen, writable);
	uint16_t before = used_idx(e);
	kick(e);
	pump(e, (uint16_t)(before + 1));
	if (used_len)
		*used_len = used_len_of(e, before);
	return status_of(e, slot);
}

static void fill(uint8_t *p, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(seed * 37 + i * 13 + (i >> 10));
}

static void test_config(void)
{
	char *path = make_image();
	struct env e;
	if (!env_create(&e, path, false, DISK_IO_URING))
		goto out;
	struct virtio_dev *d = e.d;
	CHECK_EQ(d->device_id, 2);
	uint64_t f = (uint64_t)virtio_dev_features_word(d, 0) |
		     (uint64_t)virtio_dev_features_word(d, 1) << 32;
	CHECK(f & (1ull << VIRTIO_BLK_F_FLUSH));
	CHECK(f & (1ull << VIRTIO_BLK_F_MQ));
	CHECK(f & (1ull << VIRTIO_BLK_F_SEG_MAX));
	CHECK(f & (1ull << VIRTIO_BLK_F_BLK_SIZE));
	CHECK(f & (1ull << VIRTIO_BLK_F_TOPOLOGY));
	CHECK(f & (1ull << VIRTIO_BLK_F_WRITE_ZEROES));
	CHECK(!(f & (1ull << VIRTIO_BLK_F_RO)));
	CHECK(f & (1ull << VIRTIO_F_VERSION_1));

	uint64_t cap = 0;
	virtio_dev_config_read(d, 0, &cap, 8);
	CHECK_EQ(cap, IMG_SIZE / 512);
	uint32_t lo = 0, hi = 0; /* any offset and width */
	virtio_dev_config_read(d, 0, &lo, 4);
	virtio_dev_config_read(d, 4, &hi, 4);
	CHECK_EQ(((uint64_t)hi << 32) | lo, IMG_SIZE / 512);
	uint8_t b1 = 0;
	virtio_dev_config_read(d, 1, &b1, 1);
	CHECK_EQ(b1, (IMG_SIZE / 512) >> 8 & 0xff);
	uint16_t nq = 0;
	virtio_dev_config_read(d, 34, &nq, 2);
	CHECK_EQ(nq, 2);
	uint32_t seg_max = 0, blk_size = 0;
	virtio_dev_config_read(d, 12, &seg_max, 4);
	virtio_dev_config_read(d, 20, &blk_size, 4);
	CHECK_EQ(seg_max, VIRTIO_BLK_SEG_MAX);
	CHECK(blk_size >= 512 && (blk_size & (blk_size - 1)) == 0);
	uint32_t wz_max = 0;
	virtio_dev_config_read(d, 48, &wz_max, 4);
	CHECK_EQ(wz_max, VIRTIO_BLK_MAX_DWZ_SECTORS);
	uint8_t past[4] = { 1, 1, 1, 1 };
	virtio_dev_config_read(d, 58, past, 4); /* crosses the end: zeroes */
	CHECK_EQ(past[0], 0);
	env_destroy(&e);
out:
	unlink(path);
	free(path);
}

static void rw_flush_getid(enum disk_io io)
{
	char *path = make_image();
	struct env e;
	if (!env_create(&e, path, false, io))
		goto out;
	driver_init(&e);
	struct virtio_blk_stats st;
	virtio_blk_get_stats(e.b, &st);
	CHECK_STREQ(st.engine, io == DISK_IO_URING ? "io_uring" : "sync");

	/* write 8 KiB at sector 16 from two 4 KiB buffers */
	fill(gpa(&e, DATA_GPA), 8192, 1);
	uint32_t ul = 99;
	CHECK_EQ(run1(&e, VIRTIO_BLK_T_OUT, 16, DATA_GPA, 2, 4096, false, &ul), VIRTIO_BLK_S_OK);
	CHECK_EQ(ul, 1); /* only the status byte was written */
	CHECK_EQ(run1(&e, VIRTIO_BLK_T_FLUSH, 0, 0, 0, 0, false, &ul), VIRTIO_BLK_S_OK);
	CHECK_EQ(ul, 1);

	/* read it back into one 8 KiB buffer elsewhere */
	uint64_t rd = DATA_GPA + 0x100000;
	memset(gpa(&e, rd), 0, 8192);
	CHECK_EQ(run1(&e, VIRTIO_BLK_T_IN, 16, rd, 1, 8192, true, &ul), VIRTIO_BLK_S_OK);
	CHECK_EQ(ul, 8192 + 1);
	CHECK(memcmp(gpa(&e, rd), gpa(&e, DATA_GPA), 8192) == 0);

	/* the data is in the file */
	int fd = open(path, O_RDONLY);
	uint8_t buf[8192];
	CHECK_EQ(pread(fd, buf, sizeof(buf), 16 * 512), (ssize_t)sizeof(buf));
	CHECK(memcmp(buf, gpa(&e, DATA_GPA), sizeof(buf)) == 0);
	close(fd);

	/* GET_ID: NUL-padded, 20 bytes */
	memset(gpa(&e, rd), 0xff, 64);
	CHECK_EQ(run1(&e, VIRTIO_BLK_T_GET_ID, 0, rd, 1, 20, true, &ul), VIRTIO_BLK_S_OK);
	CHECK_EQ(ul, 21);
	CHECK(memcmp(gpa(&e, rd), "kvmrun-test-serial\0\0", 20) == 0);
	CHECK_EQ(*gpa(&e, rd + 20), 0xff);

	/* write zeroes, then read zeroes */
	uint8_t wz[16] = { 0 };
	uint64_t sec = 17;
	uint32_t n = 8;
	memcpy(wz, &sec, 8);
	memcpy(wz + 8, &n, 4);
	memcpy(gpa(&e, rd), wz, 16);
	CHECK_EQ(run1(&e, VIRTIO_BLK_T_WRITE_ZEROES, 0, rd, 1, 16, false, NULL), VIRTIO_BLK_S_OK);
	CHECK_EQ(run1(&e, VIRTIO_BLK_T_IN, 16, rd, 1, 8192, true, NULL), VIRTIO_BLK_S_OK);
	CHECK(memcmp(gpa(&e, rd), gpa(&e, DATA_GPA), 512) == 0);
	bool zero = true;
	for (unsigned i = 512; i < 512 + 4096; i++)
		zero = zero && *gpa(&e, rd + i) == 0;
	CHECK(zero);
	CHECK(memcmp(gpa(&e, rd + 4608), gpa(&e, DATA_GPA + 4608), 8192 - 4608) == 0);

	/* discard (when the file system can punch holes): a hint; the
	 * request succeeds and the file keeps its size */
	uint64_t f = (uint64_t)virtio_dev_features_word(e.d, 0);
	if (f & (1ull << VIRTIO_BLK_F_DISCARD)) {
		sec = 1024;
		n = 64;
		memcpy(wz, &sec, 8);
		memcpy(wz + 8, &n, 4);
		memcpy(gpa(&e, rd), wz, 16);
		CHECK_EQ(run1(&e, VIRTIO_BLK_T_DISCARD, 0, rd, 1, 16, false, NULL), VIRTIO_BLK_S_OK);
		/* unmap is not allowed on discard (5.2.6.2) */
		uint32_t unmap = VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP;
		memcpy(gpa(&e, rd + 12), &unmap, 4);
		CHECK_EQ(run1(&e, VIRTIO_BLK_T_DISCARD, 0, rd, 1, 16, false, NULL),
			 VIRTIO_BLK_S_UNSUPP);
	} else {
		printf("  (discard not offered: the file system cannot punch holes)\n");
	}

	/* bad requests complete with an error, the device stays live */
	CHECK_EQ(run1(&e, VIRTIO_BLK_T_IN, IMG_SIZE / 512, rd, 1, 512, true, &ul),
		 VIRTIO_BLK_S_IOERR);
	CHECK_EQ(ul, 0);
	CHECK_EQ(run1(&e, VIRTIO_BLK_T_IN, 0, rd, 1, 100, true, NULL), VIRTIO_BLK_S_IOERR);
	CHECK_EQ(run1(&e, 77, 0, 0, 0, 0, false, NULL), VIRTIO_BLK_S_UNSUPP);
	CHECK(virtio_dev_live(e.d));

	virtio_blk_get_stats(e.b, &st);
	CHECK(st.writes >= 1);
	CHECK(st.reads >= 2);
	CHECK_EQ(st.flushes, 1);
	CHECK_EQ(st.get_ids, 1);
	CHECK_EQ(st.parse_errors, 3 + ((f >> VIRTIO_BLK_F_DISCARD) & 1));
	CHECK_EQ(st.bounced, 0);
	CHECK(e.queue_signals >= 1);
	env_destroy(&e);
out:
	unlink(path);
	free(path);
}

static void test_rw_uring(void)
{
	rw_flush_getid(DISK_IO_URING);
}

static void test_rw_sync(void)
{
	rw_flush_getid(DISK_IO_SYNC);
}

/* Guest buffers that O_DIRECT cannot take go through a bounce buffer,
 * in chunks when large. */
static void test_bounce(void)
{
	char *path = make_image();
	struct env e;
	if (!env_create(&e, path, false, DISK_IO_URING))
		goto out;
	driver_init(&e);
	const uint32_t len = 512 * 1024 + 4096; /* > one bounce chunk */
	uint64_t wr = DATA_GPA + 1, rd = DATA_GPA + 0x100000 + 3;
	fill(gpa(&e, wr), len, 7);
	memset(gpa(&e, rd), 0, len);
	CHECK_EQ(run1(&e, VIRTIO_BLK_T_OUT, 64, wr, 2, len / 2, false, NULL), VIRTIO_BLK_S_OK);
	uint32_t ul = 0;
	CHECK_EQ(run1(&e, VIRTIO_BLK_T_IN, 64, rd, 1, len, true, &ul), VIRTIO_BLK_S_OK);
	CHECK_EQ(ul, len + 1);
	CHECK(memcmp(gpa(&e, rd), gpa(&e, wr), len) == 0);
	struct virtio_blk_stats st;
	virtio_blk_get_stats(e.b, &st);
	int fd = open(path, O_RDONLY | O_DIRECT);
	bool direct_ok = fd >= 0;
	if (fd >= 0)
		close(fd);
	if (direct_ok)
		CHECK_EQ(st.bounced, 2);
	env_destroy(&e);
out:
	unlink(path);
	free(path);
}

/* Many misaligned requests at once under cache=none: the disk never holds
 * more than VIRTIO_BLK_BOUNCE_TOTAL of bounce buffers; the requests past it
 * wait their turn and complete all the same, with the right data. */
static void test_bounce_total(void)
{
	char *path = make_image();
	struct env e;
	if (!env_create(&e, path, false, DISK_IO_URING))
		goto out;
	int fd = open(path, O_RDONLY | O_DIRECT);
	if (fd < 0) {
		printf("  skip: %s takes no O_DIRECT: nothing is bounced\n", path);
		env_destroy(&e);
		goto out;
	}
	close(fd);
	const uint16_t qsize = VIRTIO_BLK_QUEUE_SIZE;
	e.qsize = qsize;
	driver_init(&e);
	/* the image's first MiB, written through an aligned buffer */
	fill(gpa(&e, DATA_GPA), 1u << 20, 5);
	CHECK_EQ(run1(&e, VIRTIO_BLK_T_OUT, 0, DATA_GPA, 1, 1u << 20, false, NULL),
		 VIRTIO_BLK_S_OK);
	/* 3 descriptors a request: 85 reads of 256 KiB (21 MiB of bounce
	 * buffers if nothing bounded them), all into the same misaligned
	 * buffer; each has its own header and status byte */
	const unsigned n = qsize / 3, len = 256u << 10;
	const uint64_t buf = DATA_GPA + 0x100000 + 1;
	uint16_t before = used_idx(&e);
	for (unsigned i = 0; i < n; i++) {
		uint16_t d0 = (uint16_t)(3 * i);
		uint64_t sector = (i % 4) * (len / 512);
		uint8_t *h = gpa(&e, 0x8000 + 16u * i);
		uint32_t type = VIRTIO_BLK_T_IN;
		memset(h, 0, 16);
		memcpy(h, &type, 4);
		memcpy(h + 8, &sector, 8);
		*gpa(&e, 0xa000 + i) = 0xaa;
		desc(&e, d0, 0x8000 + 16u * i, 16, F_NEXT, (uint16_t)(d0 + 1));
		desc(&e, (uint16_t)(d0 + 1), buf, len, F_NEXT | F_WRITE, (uint16_t)(d0 + 2));
		desc(&e, (uint16_t)(d0 + 2), 0xa000 + i, 1, F_WRITE, 0);
		uint16_t *ring = (uint16_t *)gpa(&e, AVAIL_GPA + 4);
		ring[e.avail_idx % qsize] = d0;
		e.avail_idx++;
	}
	__atomic_store_n((uint16_t *)gpa(&e, AVAIL_GPA + 2), e.avail_idx, __ATOMIC_RELEASE);
	kick(&e);
	for (int i = 0; i < 2000 && used_idx(&e) != (uint16_t)(before + n); i++)
		CHECK(evloop_run_once(e.loop, 10) >= 0);
	CHECK_EQ(used_idx(&e), (uint16_t)(before + n));
	struct virtio_blk_stats st;
	virtio_blk_get_stats(e.b, &st);
	CHECK_EQ(st.bounced, n);
	CHECK(st.bounce_peak <= VIRTIO_BLK_BOUNCE_TOTAL);
	CHECK(st.bounce_peak >= VIRTIO_BLK_BOUNCE_TOTAL / 2);
	CHECK(st.bounce_waits > 0);
	CHECK_EQ(st.bounce_bytes, 0);
	unsigned ok = 0;
	for (unsigned i = 0; i < n; i++)
		ok += *gpa(&e, 0xa000 + i) == VIRTIO_BLK_S_OK;
	CHECK_EQ(ok, n);
	/* the last read to complete is one of the four 256 KiB pieces */
	bool match = false;
	for (unsigned k = 0; k < 4; k++)
		match |= memcmp(gpa(&e, buf), gpa(&e, DATA_GPA + k * len), len) == 0;
	CHECK(match);
	/* a reset with requests waiting for bounce room drops them cleanly */
	e.avail_idx = used_idx(&e);
	for (unsigned i = 0; i < n; i++) {
		uint16_t *ring = (uint16_t *)gpa(&e, AVAIL_GPA + 4);
		ring[e.avail_idx % qsize] = (uint16_t)(3 * i);
		e.avail_idx++;
	}
	__atomic_store_n((uint16_t *)gpa(&e, AVAIL_GPA + 2), e.avail_idx, __ATOMIC_RELEASE);
	kick(&e);
	CHECK(evloop_run_once(e.loop, 100) >= 1);
	pthread_mutex_lock(&e.d->lock);
	virtio_dev_set_status(e.d, 0);
	pthread_mutex_unlock(&e.d->lock);
	virtio_blk_get_stats(e.b, &st);
	CHECK_EQ(st.bounce_bytes, 0);
	e.qsize = 0;
	driver_init(&e);
	CHECK_EQ(run1(&e, VIRTIO_BLK_T_IN, 0, buf, 1, 4096, true, NULL), VIRTIO_BLK_S_OK);
	env_destroy(&e);
out:
	unlink(path);
	free(path);
}

static void test_readonly(void)
{
	char *path = make_image();
	struct env e;
	if (!env_create(&e, path, true, DISK_IO_URING))
		goto out;
	uint64_t f = virtio_dev_features_word(e.d, 0);
	CHECK(f & (1ull << VIRTIO_BLK_F_RO));
	CHECK(!(f & (1ull << VIRTIO_BLK_F_DISCARD)));
	CHECK(!(f & (1ull << VIRTIO_BLK_F_WRITE_ZEROES)));
	driver_init(&e);
	fill(gpa(&e, DATA_GPA), 4096, 3);
	CHECK_EQ(run1(&e, VIRTIO_BLK_T_OUT, 0, DATA_GPA, 1, 4096, false, NULL), VIRTIO_BLK_S_IOERR);
	CHECK_EQ(run1(&e, VIRTIO_BLK_T_IN, 0, DATA_GPA, 1, 4096, true, NULL), VIRTIO_BLK_S_OK);
	bool zero = true;
	for (unsigned i = 0; i < 4096; i++)
		zero = zero && *gpa(&e, DATA_GPA + i) == 0;
	CHECK(zero); /* nothing was written (5.2.6.2) */
	CHECK_EQ(run1(&e, VIRTIO_BLK_T_FLUSH, 0, 0, 0, 0, false, NULL), VIRTIO_BLK_S_OK);
	env_destroy(&e);
out:
	unlink(path);
	free(path);
}

/* A malformed chain: NEEDS_RESET, a config interrupt; the driver's reset
 * brings the device back. */
static void test_malformed_chain(void)
{
	char *path = make_image();
	struct env e;
	if (!env_create(&e, path, false, DISK_IO_URING))
		goto out;
	driver_init(&e);
	desc(&e, 0, HDR_GPA, 16, F_NEXT, QSIZE + 5); /* next out of range */
	avail_add(&e, 0);
	kick(&e);
	for (int i = 0; i < 10; i++)
		CHECK(evloop_run_once(e.loop, 10) >= 0);
	CHECK(e.d->status & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	CHECK(!virtio_dev_live(e.d));
	CHECK_EQ(e.config_signals, 1);
	CHECK_EQ(used_idx(&e), 0);
	struct virtio_blk_stats st;
	virtio_blk_get_stats(e.b, &st);
	CHECK_EQ(st.needs_reset, 1);

	/* a descriptor outside RAM is malformed too (after a reset) */
	pthread_mutex_lock(&e.d->lock);
	virtio_dev_set_status(e.d, 0);
	pthread_mutex_unlock(&e.d->lock);
	driver_init(&e);
	CHECK_EQ(run1(&e, VIRTIO_BLK_T_FLUSH, 0, 0, 0, 0, false, NULL), VIRTIO_BLK_S_OK);
	desc(&e, 8, RAM_SIZE - 8, 16, F_NEXT, 9);
	desc(&e, 9, STATUS_GPA, 1, F_WRITE, 0);
	avail_add(&e, 8);
	kick(&e);
	for (int i = 0; i < 10; i++)
		CHECK(evloop_run_once(e.loop, 10) >= 0);
	CHECK(e.d->status & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	env_destroy(&e);
out:
	unlink(path);
	free(path);
}

/* Reset with requests in flight: reset returns only when they are done,
 * and none of them completes to the guest afterwards. */
static void test_reset_inflight(void)
{
	char *path = make_image();
	struct env e;
	if (!env_create(&e, path, false, DISK_IO_URING))
		goto out;
	driver_init(&e);
	for (unsigned i = 0; i < QSIZE / 8; i++)
		req(&e, i % 2 ? VIRTIO_BLK_T_IN : VIRTIO_BLK_T_OUT, i * 256,
		    DATA_GPA + i * 0x20000u, 2, 0x10000, i % 2);
	kick(&e);
	/* dispatch the kick only: the I/O is now in flight */
	CHECK(evloop_run_once(e.loop, 1000) >= 1);
	struct virtio_blk_stats st;
	virtio_blk_get_stats(e.b, &st);
	CHECK(st.requests < QSIZE / 8);
	uint16_t used_before = used_idx(&e);
	pthread_mutex_lock(&e.d->lock);
	virtio_dev_set_status(e.d, 0);
	pthread_mutex_unlock(&e.d->lock);
	CHECK_EQ(e.d->status, 0);
	/* nothing more reaches guest memory */
	uint8_t snap[QSIZE / 8];
	memcpy(snap, gpa(&e, STATUS_GPA), sizeof(snap));
	for (int i = 0; i < 20; i++)
		CHECK(evloop_run_once(e.loop, 5) >= 0);
	CHECK(memcmp(snap, gpa(&e, STATUS_GPA), sizeof(snap)) == 0);
	CHECK_EQ(used_idx(&e), used_before);
	virtio_blk_get_stats(e.b, &st);
	uint64_t done = st.requests;
	/* and the device works again after re-initialisation */
	driver_init(&e);
	fill(gpa(&e, DATA_GPA), 4096, 9);
	CHECK_EQ(run1(&e, VIRTIO_BLK_T_OUT, 8, DATA_GPA, 1, 4096, false, NULL), VIRTIO_BLK_S_OK);
	CHECK_EQ(run1(&e, VIRTIO_BLK_T_IN, 8, DATA_GPA + 8192, 1, 4096, true, NULL),
		 VIRTIO_BLK_S_OK);
	CHECK(memcmp(gpa(&e, DATA_GPA), gpa(&e, DATA_GPA + 8192), 4096) == 0);
	virtio_blk_get_stats(e.b, &st);
	CHECK_EQ(st.requests, done + 2);
	env_destroy(&e);
out:
	unlink(path);
	free(path);
}

/* Several requests in one kick complete with at most one interrupt per
 * reap batch (event idx negotiated, used_event left at 0: the driver asks
 * for an interrupt after the first used buffer only). */
static void test_batch(void)
{
	char *path = make_image();
	struct env e;
	if (!env_create(&e, path, false, DISK_IO_URING))
		goto out;
	driver_init(&e);
	unsigned n = QSIZE / 8;
	for (unsigned i = 0; i < n; i++)
		req(&e, VIRTIO_BLK_T_IN, i * 8, DATA_GPA + i * 4096u, 1, 4096, true);
	kick(&e);
	pump(&e, (uint16_t)n);
	for (unsigned i = 0; i < n; i++)
		CHECK_EQ(status_of(&e, i), VIRTIO_BLK_S_OK);
	CHECK(e.queue_signals >= 1 && e.queue_signals <= n);
	env_destroy(&e);
out:
	unlink(path);
	free(path);
}

/* A ring full of requests that complete at once (an unknown type: UNSUPP
 * without any I/O, so each frees its slot at once, and a driver can keep
 * posting them): one kick takes a budget of them, then re-kicks. */
static void test_kick_budget(void)
{
	char *path = make_image();
	struct env e;
	if (!env_create(&e, path, false, DISK_IO_SYNC))
		goto out;
	e.qsize = VIRTIO_BLK_QUEUE_SIZE;
	driver_init(&e);
	uint32_t type = 99;
	memset(gpa(&e, HDR_GPA), 0, 16);
	memcpy(gpa(&e, HDR_GPA), &type, 4);
	desc(&e, 0, HDR_GPA, 16, F_NEXT, 1);
	desc(&e, 1, STATUS_GPA, 1, F_WRITE, 0);
	fake_vring_fill(e.ram, DESC_GPA, VIRTIO_BLK_QUEUE_SIZE, 0, VIRTIO_BLK_QUEUE_SIZE);
	kick(&e);
	CHECK(evloop_run_once(e.loop, 100) >= 1);
	CHECK_EQ(used_idx(&e), VIRTIO_BLK_KICK_BUDGET);
	struct virtio_blk_stats st;
	virtio_blk_get_stats(e.b, &st);
	CHECK_EQ(st.unsupp, VIRTIO_BLK_KICK_BUDGET);
	CHECK_EQ(st.yields, 1);
	CHECK_EQ(fake_vplat_kicks_pending(e.d, 0), 1);
	kick(&e);
	pump(&e, VIRTIO_BLK_QUEUE_SIZE);
	CHECK(virtio_dev_live(e.d));
	env_destroy(&e);
out:
	unlink(path);
	free(path);
}

int main(void)
{
	RUN(test_config);
	RUN(test_rw_uring);
	RUN(test_rw_sync);
	RUN(test_bounce);
	RUN(test_bounce_total);
	RUN(test_readonly);
	RUN(test_malformed_chain);
	RUN(test_reset_inflight);
	RUN(test_batch);
	RUN(test_kick_budget);
	return unit_done();
}
