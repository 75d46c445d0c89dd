/* virtio-balloon across a save and load (virtio/balloon.c's state hooks):
 * the target, the driver's `actual`, which pages are in the balloon, the
 * stats buffer the device holds and the last statistics survive into a
 * device created fresh on the same RAM: a page inflated before the save
 * deflates after it (not a "deflated while not inflated" one), and the
 * held stats buffer is handed back on the next stats request. A save
 * whose held buffer disagrees with the stats queue, or whose pages lie
 * outside RAM, is refused. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fake_platform.h"
#include "unit.h"
#include "virtio/balloon.h"
#include "virtio/device_state.h"
#include "lib/state.h"

#define RAM_SIZE ((4u << 20) - 0x8000u) /* the last bitmap word is partial */
#define QSIZE 8u
#define PFN_GPA 0x30000u
#define STATS_GPA 0x31000u

static uint64_t qbase(unsigned q)
{
	return 0x4000u * q;
}

static struct virtio_balloon *balloon_new(struct fake_vplat *v)
{
	struct virtio_balloon_params p = { .plat = &v->plat, .page_size = 4096, .stats_period = 1 };
	struct virtio_balloon *b = NULL;
	CHECK_EQ(virtio_balloon_create(&p, &b), 0);
	if (!b)
		exit(1);
	fake_vplat_attach(v, virtio_balloon_dev(b));
	return b;
}

static uint16_t used_idx(struct fake_vplat *v, unsigned q)
{
	uint16_t i;
	memcpy(&i, fake_gpa(v, qbase(q) + 0x2000 + 2), 2);
	return i;
}

static void run(struct fake_vplat *v)
{
	for (int i = 0; i < 5; i++)
		evloop_run_once(v->loop, 5);
}

/* One chain of @len readable bytes at @gpa on queue @q, kicked. */
static void post(struct fake_vplat *v, struct virtio_dev *d, unsigned q, uint16_t head,
		 uint64_t gpa, uint32_t len)
{
	fake_vring_desc(v->ram, qbase(q), head, gpa, len, 0, 0);
	fake_vring_fill(v->ram, qbase(q), QSIZE, head, 1);
	fake_vplat_kick(d, q);
	run(v);
}

static void save(struct virtio_dev *d, struct state_w *w, struct state_file *f)
{
	state_w_init(w);
	state_section_begin(w, "balloon", 1);
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

static int load_bytes(struct virtio_dev *d, const uint8_t *p, size_t n, char *err, size_t len)
{
	struct state_r r = { .p = p, .len = n, .name = "balloon" };
	struct virtio_dev_state st;
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

static void test_round_trip(void)
{
	struct fake_vplat v;
	fake_vplat_init(&v, RAM_SIZE, true);
	struct virtio_balloon *a = balloon_new(&v);
	struct virtio_dev *d = virtio_balloon_dev(a);
	pthread_mutex_lock(&d->lock);
	CHECK_EQ(fake_driver_features(d, 1ull << VIRTIO_F_VERSION_1 |
					 1ull << VIRTIO_BALLOON_F_STATS_VQ), 0x0b);
	for (unsigned q = 0; q < 3; q++)
		CHECK(fake_driver_queue(d, q, QSIZE, qbase(q)));
	virtio_dev_set_status(d, 0x0f);
	uint32_t actual = 3;
	virtio_dev_config_write(d, 4, &actual, 4);
	pthread_mutex_unlock(&d->lock);
	CHECK_EQ(virtio_balloon_set_target(a, 16 * 4096), 0);
	uint32_t pfns[3] = { 0x100, 0x101, 0x200 };
	memcpy(fake_gpa(&v, PFN_GPA), pfns, sizeof(pfns));
	post(&v, d, 0, 0, PFN_GPA, sizeof(pfns));
	CHECK_EQ(used_idx(&v, 0), 1);
	/* a stats buffer: MEMFREE (tag 4) = 12345 */
	uint8_t stat[10] = { 4, 0 };
	uint64_t val = 12345;
	memcpy(stat + 2, &val, 8);
	memcpy(fake_gpa(&v, STATS_GPA), stat, sizeof(stat));
	post(&v, d, 2, 5, STATS_GPA, sizeof(stat));
	CHECK_EQ(used_idx(&v, 2), 0); /* held by the device */
	virtio_dev_quiesce(d);
	struct state_w w;
	struct state_file f;
	save(d, &w, &f);
	virtio_balloon_destroy(a);

	struct virtio_balloon *b = balloon_new(&v);
	d = virtio_balloon_dev(b);
	struct state_r r;
	char err[256] = "";
	CHECK_EQ(state_section(&f, "balloon", 1, &r, err, sizeof(err)), 0);
	CHECK_EQ(load_bytes(d, r.p, r.len, err, sizeof(err)), 0);
	CHECK_STREQ(err, "");
	struct virtio_balloon_info i;
	virtio_balloon_get(b, &i);
	CHECK(i.live);
	CHECK_EQ(i.target, 16 * 4096);
	CHECK_EQ(i.actual, 3 * 4096);
	CHECK_EQ(i.inflated, 3 * 4096);
	CHECK(i.stats_valid);
	CHECK_EQ(i.stats.val[VIRTIO_BALLOON_S_MEMFREE], 12345);
	/* a page of the saved balloon deflates */
	memcpy(fake_gpa(&v, PFN_GPA + 0x100), &pfns[2], 4);
	post(&v, d, 1, 0, PFN_GPA + 0x100, 4);
	virtio_balloon_get(b, &i);
	CHECK_EQ(i.inflated, 2 * 4096);
	CHECK_EQ(i.duplicate_pfns, 0);
	/* the held stats buffer comes back at the next stats request (1 s) */
	for (int k = 0; k < 300 && used_idx(&v, 2) == 0; k++)
		evloop_run_once(v.loop, 10);
	CHECK_EQ(used_idx(&v, 2), 1);
	uint32_t id;
	memcpy(&id, fake_gpa(&v, qbase(2) + 0x2000 + 4), 4);
	CHECK_EQ(id, 5);
	virtio_balloon_destroy(b);

	/* hostile: find the held-buffer flag and the bitmap in the payload */
	CHECK_EQ(state_section(&f, "balloon", 1, &r, err, sizeof(err)), 0);
	uint8_t *p = malloc(r.len);
	memcpy(p, r.p, r.len);
	/* the model's part ends with: held(1) head(2) valid(1) 10 x u64, u32, u32 */
	size_t held_at = r.len - (1 + 2 + 1 + 80 + 8);
	CHECK_EQ(p[held_at], 1);
	p[held_at] = 0;
	b = balloon_new(&v);
	d = virtio_balloon_dev(b);
	CHECK_EQ(load_bytes(d, p, r.len, err, sizeof(err)), -EINVAL);
	CHECK_HAS(err, "queue 2: 1 chains in flight, the balloon holds 0");
	CHECK_EQ(d->status, 0);
	p[held_at] = 1;
	p[held_at + 1] = 9; /* head >= queue size */
	CHECK_EQ(load_bytes(d, p, r.len, err, sizeof(err)), -EINVAL);
	CHECK_HAS(err, "stats buffer head 9");
	p[held_at + 1] = 5;
	/* a page past the end of RAM in the last bitmap word */
	size_t last_word = held_at - 8;
	p[last_word + 7] = 0x80;
	CHECK_EQ(load_bytes(d, p, r.len, err, sizeof(err)), -EINVAL);
	CHECK_HAS(err, "is not guest RAM");
	p[last_word + 7] = 0;
	CHECK_EQ(load_bytes(d, p, r.len - 1, err, sizeof(err)), -EINVAL);
	CHECK_HAS(err, "truncated");
	CHECK_EQ(d->status, 0);
	CHECK_EQ(load_bytes(d, p, r.len, err, sizeof(err)), 0);
	free(p);
	state_w_free(&w);
	virtio_balloon_destroy(b);
	fake_vplat_fini(&v);
}

int main(void)
{
	RUN(test_round_trip);
	return unit_done();
}
