/* virtio-blk across a save and load (virtio/blk.c's quiesce and state
 * hooks, virtio/device_state.c): a write still in io_uring when the device
 * is quiesced completes into the used ring before the save; a device
 * created fresh on the same image and RAM loads the state and serves the
 * next request from where the ring was, reading back what was written. A
 * disk of another size, or a save with requests in flight, is refused.
 * The disk is a temp file in /var/tmp (O_DIRECT). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fake_platform.h"
#include "unit.h"
#include "virtio/blk.h"
#include "virtio/device_state.h"
#include "lib/evloop.h"
#include "lib/state.h"

#define RAM_SIZE (4u << 20)
#define QSIZE 16u
#define QBASE 0x0u           /* desc; +0x1000 avail, +0x2000 used */
#define HDR_GPA 0x3000u      /* 16 bytes per request */
#define STATUS_GPA 0x4000u   /* 1 byte per request */
#define DATA_GPA 0x10000u    /* 4 KiB per request */
#define IMG_SIZE (8u << 20)

static char *make_image(size_t size)
{
	char *path = strdup("/var/tmp/kvmrun-test-blkstate-XXXXXX");
	int fd = mkstemp(path);
	if (fd < 0 || ftruncate(fd, (off_t)size) < 0) {
		perror("image in /var/tmp");
		exit(1);
	}
	close(fd);
	return path;
}

static struct virtio_blk *blk_new(struct fake_vplat *v, const char *path)
{
	struct virtio_blk_params p = {
		.path = path, .cache = DISK_CACHE_NONE, .io = DISK_IO_URING,
		.submit_batch = ENGINE_DEFAULT_SUBMIT_BATCH, .index = 0, .nr_queues = 1,
		.plat = &v->plat, .serial = "state",
	};
	struct virtio_blk *b = NULL;
	CHECK_EQ(virtio_blk_create(&p, &b), 0);
	if (!b)
		exit(1);
	fake_vplat_attach(v, virtio_blk_dev(b));
	return b;
}

/* Request @n: a 4 KiB read or write of sector @sector, made available. */
static void request(struct fake_vplat *v, unsigned n, uint32_t type, uint64_t sector)
{
	uint8_t *hdr = fake_gpa(v, HDR_GPA + 16 * n);
	memset(hdr, 0, 16);
	memcpy(hdr, &type, 4);
	memcpy(hdr + 8, &sector, 8);
	uint16_t d0 = (uint16_t)(3 * n % QSIZE);
	uint16_t d1 = (uint16_t)((d0 + 1) % QSIZE), d2 = (uint16_t)((d0 + 2) % QSIZE);
	fake_vring_desc(v->ram, QBASE, d0, HDR_GPA + 16 * n, 16, FAKE_VRING_F_NEXT, d1);
	fake_vring_desc(v->ram, QBASE, d1, DATA_GPA + 0x1000 * n, 4096,
			FAKE_VRING_F_NEXT | (type == VIRTIO_BLK_T_IN ? FAKE_VRING_F_WRITE : 0), d2);
	fake_vring_desc(v->ram, QBASE, d2, STATUS_GPA + n, 1, FAKE_VRING_F_WRITE, 0);
	*fake_gpa(v, STATUS_GPA + n) = 0xff;
	fake_vring_fill(v->ram, QBASE, QSIZE, d0, 1);
}

static uint16_t used_idx(struct fake_vplat *v)
{
	uint16_t i;
	memcpy(&i, fake_gpa(v, QBASE + 0x2000 + 2), 2);
	return i;
}

static void run_until(struct fake_vplat *v, uint16_t used)
{
	for (int i = 0; i < 500 && used_idx(v) != used; i++)
		evloop_run_once(v->loop, 10);
	CHECK_EQ(used_idx(v), used);
}

static void save(struct virtio_dev *d, struct state_w *w, struct state_file *f)
{
	state_w_init(w);
	state_section_begin(w, "virtio-blk", 1);
	pthread_mutex_lock(&d->lock);
	virtio_dev_save(d, w);
	pthread_mutex_unlock(&d->lock);
	state_section_end(w);
	const uint8_t *p;
	size_t len;
	char err[STATE_ERR_MAX];
	CHECK_EQ(state_w_finish(w, &p, &len), 0);
	CHECK_EQ(state_file_parse(p, len, f, err, sizeof(err)), 0);
}

/* Both passes, as a transport runs them; "" or the refusal in @err. */
static int load(struct virtio_dev *d, const struct state_file *f, char *err, size_t len)
{
	struct state_r r;
	struct virtio_dev_state st;
	CHECK_EQ(state_section(f, "virtio-blk", 1, &r, err, len), 0);
	pthread_mutex_lock(&d->lock);
	struct state_r check = r;
	virtio_dev_load_check(d, &check, 0, &st);
	int rc = state_r_finish(&check);
	if (rc == 0) {
		rc = virtio_dev_load_apply(d, &r, 0);
		if (rc == 0)
			rc = state_r_finish(&r);
	} else {
		snprintf(err, len, "%s", check.err);
	}
	pthread_mutex_unlock(&d->lock);
	return rc;
}

static void driver_start(struct virtio_dev *d)
{
	pthread_mutex_lock(&d->lock);
	CHECK_EQ(fake_driver_features(d, 1ull << VIRTIO_F_VERSION_1), 0x0b);
	CHECK(fake_driver_queue(d, 0, QSIZE, QBASE));
	virtio_dev_set_status(d, 0x0f);
	pthread_mutex_unlock(&d->lock);
}

static void test_continues_after_restore(void)
{
	char *path = make_image(IMG_SIZE);
	struct fake_vplat v;
	fake_vplat_init(&v, RAM_SIZE, true);
	struct virtio_blk *a = blk_new(&v, path);
	struct virtio_dev *d = virtio_blk_dev(a);
	driver_start(d);
	memset(fake_gpa(&v, DATA_GPA), 0x5a, 4096);
	request(&v, 0, VIRTIO_BLK_T_OUT, 8);
	fake_vplat_kick(d, 0);
	run_until(&v, 1);
	CHECK_EQ(*fake_gpa(&v, STATUS_GPA), VIRTIO_BLK_S_OK);
	/* a second write, submitted to io_uring, then the pause */
	memset(fake_gpa(&v, DATA_GPA + 0x1000), 0xc3, 4096);
	request(&v, 1, VIRTIO_BLK_T_OUT, 16);
	fake_vplat_kick(d, 0);
	evloop_run_once(v.loop, 0); /* the kick: popped and submitted */
	virtio_dev_quiesce(d);
	CHECK_EQ(used_idx(&v), 2); /* drained into the used ring */
	CHECK_EQ(*fake_gpa(&v, STATUS_GPA + 1), VIRTIO_BLK_S_OK);
	char why[128] = "";
	pthread_mutex_lock(&d->lock);
	CHECK_EQ(virtio_dev_can_snapshot(d, why, sizeof(why)), 0);
	pthread_mutex_unlock(&d->lock);
	/* a kick while paused is not served... */
	request(&v, 2, VIRTIO_BLK_T_IN, 8);
	fake_vplat_kick(d, 0);
	for (int i = 0; i < 5; i++)
		evloop_run_once(v.loop, 5);
	CHECK_EQ(used_idx(&v), 2);
	struct state_w w;
	struct state_file f;
	save(d, &w, &f);
	virtio_blk_destroy(a);

	/* ...the restored device serves it, then the next one */
	struct virtio_blk *b = blk_new(&v, path);
	d = virtio_blk_dev(b);
	char err[256] = "";
	CHECK_EQ(load(d, &f, err, sizeof(err)), 0);
	CHECK_STREQ(err, "");
	CHECK(virtio_dev_live(d));
	run_until(&v, 3);
	CHECK_EQ(*fake_gpa(&v, STATUS_GPA + 2), VIRTIO_BLK_S_OK);
	CHECK_EQ(fake_gpa(&v, DATA_GPA + 0x2000)[4095], 0x5a);
	request(&v, 3, VIRTIO_BLK_T_IN, 16);
	fake_vplat_kick(d, 0);
	run_until(&v, 4);
	CHECK_EQ(fake_gpa(&v, DATA_GPA + 0x3000)[0], 0xc3);
	CHECK(v.queue_signals > 0);
	state_w_free(&w);
	virtio_blk_destroy(b);

	/* another disk size: refused, naming it */
	char *small = make_image(IMG_SIZE / 2);
	struct virtio_blk *c = blk_new(&v, small);
	save(virtio_blk_dev(c), &w, &f); /* a save of its own, to be rewritten */
	state_w_free(&w);
	struct virtio_blk *a2 = blk_new(&v, path);
	save(virtio_blk_dev(a2), &w, &f);
	CHECK_EQ(load(virtio_blk_dev(c), &f, err, sizeof(err)), -EINVAL);
	CHECK_HAS(err, "sectors");
	CHECK_EQ(virtio_blk_dev(c)->status, 0);
	state_w_free(&w);
	virtio_blk_destroy(a2);
	virtio_blk_destroy(c);
	unlink(small);
	free(small);
	fake_vplat_fini(&v);
	unlink(path);
	free(path);
}

/* A save with a request in flight (not quiesced) is refused on load. */
static void test_inflight_refused(void)
{
	char *path = make_image(IMG_SIZE);
	struct fake_vplat v;
	fake_vplat_init(&v, RAM_SIZE, true);
	struct virtio_blk *a = blk_new(&v, path);
	struct virtio_dev *d = virtio_blk_dev(a);
	driver_start(d);
	request(&v, 0, VIRTIO_BLK_T_IN, 0);
	/* popped by hand, as a device that was not quiesced would hold it */
	pthread_mutex_lock(&d->lock);
	struct vq_seg segs[4];
	struct vq_chain c = { .segs = segs, .cap = 4 };
	CHECK_EQ(vq_pop(d->queues[0].vq, &c), 1);
	char why[128] = "";
	CHECK_EQ(virtio_dev_can_snapshot(d, why, sizeof(why)), -ENOTSUP);
	CHECK_HAS(why, "in flight");
	pthread_mutex_unlock(&d->lock);
	struct state_w w;
	struct state_file f;
	save(d, &w, &f);
	pthread_mutex_lock(&d->lock);
	CHECK_EQ(vq_push(d->queues[0].vq, c.head, 0), 0);
	pthread_mutex_unlock(&d->lock);
	virtio_blk_destroy(a);
	struct virtio_blk *b = blk_new(&v, path);
	char err[256] = "";
	CHECK_EQ(load(virtio_blk_dev(b), &f, err, sizeof(err)), -EINVAL);
	CHECK_HAS(err, "queue 0: 1 requests in flight");
	CHECK(virtio_blk_dev(b)->queues[0].vq == NULL);
	state_w_free(&w);
	virtio_blk_destroy(b);
	fake_vplat_fini(&v);
	unlink(path);
	free(path);
}

int main(void)
{
	RUN(test_continues_after_restore);
	RUN(test_inflight_refused);
	return unit_done();
}
