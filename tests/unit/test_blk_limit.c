/* virtio-blk's rate limits and request metrics (virtio/blk_limit.c and its
 * use in virtio/blk.c) over the fake platform: a throttled queue stops
 * popping, resumes on the limit's timer, loses and reorders nothing, and
 * finishes no sooner than the limit allows. Times are real (the timerfd is
 * real), so bounds below are one-sided or loose. */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fake_platform.h"
#include "unit.h"
#include "virtio/blk.h"

#define RAM_SIZE (1u << 20)
#define QSIZE 64u
#define HDR_GPA 0x8000u
#define DATA_GPA 0x10000u
#define STATUS_GPA 0x9000u

struct env {
	struct fake_vplat v;
	char path[64];
	struct virtio_blk *b;
	struct virtio_dev *d;
};

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static bool env_create(struct env *e, const struct virtio_blk_params *lim)
{
	memset(e, 0, sizeof(*e));
	fake_vplat_init(&e->v, RAM_SIZE, false);
	strcpy(e->path, "/var/tmp/kvmrun-test-blklim-XXXXXX");
	int fd = mkstemp(e->path);
	CHECK(fd >= 0 && ftruncate(fd, 1u << 20) == 0);
	close(fd);
	struct virtio_blk_params p = *lim;
	p.path = e->path;
	p.cache = DISK_CACHE_WRITEBACK;
	p.io = DISK_IO_SYNC;
	p.submit_batch = ENGINE_DEFAULT_SUBMIT_BATCH;
	p.nr_queues = 1;
	p.plat = &e->v.plat;
	if (virtio_blk_create(&p, &e->b) != 0) {
		CHECK(false);
		return false;
	}
	e->d = virtio_blk_dev(e->b);
	fake_vplat_attach(&e->v, e->d);
	pthread_mutex_lock(&e->d->lock);
	fake_driver_features(e->d, (uint64_t)virtio_dev_features_word(e->d, 0) |
				   (uint64_t)virtio_dev_features_word(e->d, 1) << 32);
	CHECK(fake_driver_queue(e->d, 0, QSIZE, 0));
	virtio_dev_set_status(e->d, e->d->status | VIRTIO_STATUS_DRIVER_OK);
	CHECK(virtio_dev_live(e->d));
	pthread_mutex_unlock(&e->d->lock);
	return true;
}

static void env_destroy(struct env *e)
{
	fake_vplat_detach(e->d);
	virtio_blk_destroy(e->b);
	fake_vplat_fini(&e->v);
	unlink(e->path);
}

/* Posts @n reads of @len bytes, all through one chain (head 0). */
static void post_reads(struct env *e, unsigned n, uint32_t len)
{
	uint8_t *h = fake_gpa(&e->v, HDR_GPA);
	memset(h, 0, 16); /* type IN, sector 0 */
	fake_vring_desc(e->v.ram, 0, 0, HDR_GPA, 16, FAKE_VRING_F_NEXT, 1);
	fake_vring_desc(e->v.ram, 0, 1, DATA_GPA, len, FAKE_VRING_F_NEXT | FAKE_VRING_F_WRITE, 2);
	fake_vring_desc(e->v.ram, 0, 2, STATUS_GPA, 1, FAKE_VRING_F_WRITE, 0);
	fake_vring_fill(e->v.ram, 0, QSIZE, 0, n);
	fake_vplat_kick(e->d, 0);
}

static uint16_t used_idx(struct env *e)
{
	return __atomic_load_n((uint16_t *)fake_gpa(&e->v, 0x2000 + 2), __ATOMIC_ACQUIRE);
}

/* Runs the loop until @want requests completed or @max_ms passed;
 * returns the milliseconds it took. */
static uint64_t pump(struct env *e, uint16_t want, uint64_t max_ms)
{
	uint64_t t0 = now_ms();
	while (used_idx(e) != want && now_ms() - t0 < max_ms)
		CHECK(evloop_run_once(e->v.loop, 10) >= 0);
	return now_ms() - t0;
}

/* iops=50 with a burst of 5: 20 reads take (20 - 5) / 50 = 300 ms. */
static void test_iops(void)
{
	struct env e;
	struct virtio_blk_params p = { .iops = 50, .iops_burst = 5 };
	if (!env_create(&e, &p))
		return;
	post_reads(&e, 20, 4096);
	pump(&e, 20, 40);
	CHECK(used_idx(&e) >= 5 && used_idx(&e) <= 8); /* the burst, and no more */
	struct virtio_blk_stats st;
	virtio_blk_get_stats(e.b, &st);
	CHECK(st.throttled >= 1);
	CHECK(st.inflight >= 1 && st.inflight <= 2); /* the held one keeps its slot */
	uint64_t ms = 40 + pump(&e, 20, 5000);
	CHECK_EQ(used_idx(&e), 20);
	CHECK(ms >= 280);
	CHECK(ms < 2000);
	virtio_blk_get_stats(e.b, &st);
	CHECK_EQ(st.reads, 20);
	CHECK_EQ(st.inflight, 0);
	CHECK_EQ(*fake_gpa(&e.v, STATUS_GPA), VIRTIO_BLK_S_OK);
	env_destroy(&e);
}

/* bandwidth=256K/s with a 4K burst: 17 reads of 4K take 16 * 4K / 256K =
 * 250 ms, and one 64K read (larger than the burst) still goes. */
static void test_bandwidth(void)
{
	struct env e;
	struct virtio_blk_params p = { .bandwidth = 256 * 1024, .bandwidth_burst = 4096 };
	if (!env_create(&e, &p))
		return;
	post_reads(&e, 17, 4096);
	uint64_t ms = pump(&e, 17, 5000);
	CHECK_EQ(used_idx(&e), 17);
	CHECK(ms >= 230);
	CHECK(ms < 2000);
	post_reads(&e, 1, 65536);
	pump(&e, 18, 5000);
	CHECK_EQ(used_idx(&e), 18);
	struct virtio_blk_stats st;
	virtio_blk_get_stats(e.b, &st);
	CHECK_EQ(st.bytes_read, 17 * 4096 + 65536);
	CHECK(st.throttled >= 1);
	env_destroy(&e);
}

/* A reset while a request waits for tokens gives its slot back; the
 * disk then works again. */
static void test_reset_held(void)
{
	struct env e;
	struct virtio_blk_params p = { .iops = 1, .iops_burst = 1 };
	if (!env_create(&e, &p))
		return;
	post_reads(&e, 3, 512);
	pump(&e, 3, 50);
	CHECK_EQ(used_idx(&e), 1);
	pthread_mutex_lock(&e.d->lock);
	virtio_dev_set_status(e.d, 0);
	pthread_mutex_unlock(&e.d->lock);
	struct virtio_blk_stats st;
	virtio_blk_get_stats(e.b, &st);
	CHECK_EQ(st.inflight, 0);
	env_destroy(&e);
}

/* metrics=on: every completed request lands in one latency bucket. */
static void test_latency_histogram(void)
{
	struct env e;
	struct virtio_blk_params p = { .metrics = true };
	if (!env_create(&e, &p))
		return;
	post_reads(&e, 10, 4096);
	pump(&e, 10, 5000);
	CHECK_EQ(used_idx(&e), 10);
	struct virtio_blk_stats st;
	virtio_blk_get_stats(e.b, &st);
	uint64_t n = 0;
	for (unsigned k = 0; k < VIRTIO_BLK_LAT_BUCKETS; k++)
		n += st.lat_us[k];
	CHECK_EQ(n, 10);
	CHECK_EQ(st.throttled, 0);
	env_destroy(&e);
	/* metrics=off: nothing is timed */
	p.metrics = false;
	if (!env_create(&e, &p))
		return;
	post_reads(&e, 4, 4096);
	pump(&e, 4, 5000);
	virtio_blk_get_stats(e.b, &st);
	n = 0;
	for (unsigned k = 0; k < VIRTIO_BLK_LAT_BUCKETS; k++)
		n += st.lat_us[k];
	CHECK_EQ(n, 0);
	CHECK_EQ(st.reads, 4);
	env_destroy(&e);
}

int main(void)
{
	RUN(test_iops);
	RUN(test_bandwidth);
	RUN(test_reset_held);
	RUN(test_latency_histogram);
	return unit_done();
}
