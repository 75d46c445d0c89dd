/* virtio-balloon (virtio/balloon.c over virtio/device.c and queue.c): a
 * driver written here fills split rings in a buffer registered as guest
 * RAM, kicks the queues' eventfds and runs the real event loop. Discards
 * go to a recording callback; a fake transport counts interrupts. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fake_platform.h"
#include "unit.h"
#include "virtio/balloon.h"
#include "lib/evloop.h"

#define RAM_SIZE (8u << 20)
#define QSIZE 16u
#define RING_BASE(q) (0x4000u * (q))
#define DATA_GPA 0x20000u
#define F_NEXT FAKE_VRING_F_NEXT
#define F_WRITE FAKE_VRING_F_WRITE
#define MAX_DISCARDS 64

struct discard_rec {
	uint64_t gpa, len;
};

struct env {
	struct fake_vplat v; /* RAM, loop, logger, platform, interrupt counts */
	bool gap;            /* RAM at [0, 4 MiB) and [8 MiB, 12 MiB) */
	unsigned refills;    /* record_discard() re-posts the last chain this often */
	struct virtio_balloon *b;
	struct virtio_dev *d;
	struct discard_rec discards[MAX_DISCARDS];
	unsigned nr_discards;
	int discard_rc;
	uint16_t avail_idx[4], next_desc[4];
	uint64_t data_next;
};

static void refill(struct env *e);

static int record_discard(void *cookie, uint64_t gpa, uint64_t len)
{
	struct env *e = cookie;
	if (e->nr_discards < MAX_DISCARDS)
		e->discards[e->nr_discards++] = (struct discard_rec){ gpa, len };
	if (e->refills) {
		e->refills--;
		refill(e);
	}
	return e->discard_rc;
}

#define GAP_LO (4u << 20)
#define GAP_HI (8u << 20)
#define GAP_RAM_END (12u << 20)

static bool env_create_with(struct env *e, uint64_t page_size, unsigned stats_period, bool report,
			    bool gap)
{
	memset(e, 0, sizeof(*e));
	e->gap = gap;
	fake_vplat_init(&e->v, gap ? GAP_RAM_END : RAM_SIZE, false);
	if (gap) {
		/* two RAM regions with a hole between them, as below and above
		 * the 32-bit MMIO hole of a real VM */
		memset(&e->v.mem, 0, sizeof(e->v.mem));
		CHECK_EQ(gmem_add_region(&e->v.mem, 0, GAP_LO, e->v.ram, -1, 0), 0);
		CHECK_EQ(gmem_add_region(&e->v.mem, GAP_HI, GAP_RAM_END - GAP_HI,
					 e->v.ram + GAP_HI, -1, 0), 0);
	}
	e->v.mem.page_size = page_size;
	struct virtio_balloon_params p = {
		.plat = &e->v.plat, .page_size = page_size, .discard = record_discard,
		.discard_cookie = e, .stats_period = stats_period, .deflate_on_oom = true,
		.free_page_reporting = report,
	};
	int r = virtio_balloon_create(&p, &e->b);
	CHECK_EQ(r, 0);
	if (r)
		return false;
	e->d = virtio_balloon_dev(e->b);
	fake_vplat_attach(&e->v, e->d);
	e->data_next = DATA_GPA;
	return true;
}

static bool env_create(struct env *e, uint64_t page_size, unsigned stats_period, bool report)
{
	return env_create_with(e, page_size, stats_period, report, false);
}

static void env_destroy(struct env *e)
{
	virtio_balloon_destroy(e->b);
	fake_vplat_fini(&e->v);
}

/* The driver's initialisation (3.1.1) with @features (low word), enabling
 * @nr_queues queues. */
static void driver_init(struct env *e, uint32_t features, unsigned nr_queues)
{
	struct virtio_dev *d = e->d;
	pthread_mutex_lock(&d->lock);
	uint64_t f = (uint64_t)virtio_dev_features_word(d, 1) << 32 |
		     (features & virtio_dev_features_word(d, 0));
	CHECK(fake_driver_features(d, f) & VIRTIO_STATUS_FEATURES_OK);
	for (unsigned q = 0; q < nr_queues; q++)
		CHECK(fake_driver_queue(d, q, QSIZE, RING_BASE(q)));
	virtio_dev_set_status(d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
				 VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
	CHECK(virtio_dev_live(d));
	pthread_mutex_unlock(&d->lock);
}

struct buf {
	uint64_t gpa;
	uint32_t len;
	bool writable;
};

/* Places @len bytes of @data in guest RAM; returns their gpa. */
static uint64_t put_data(struct env *e, const void *data, uint32_t len)
{
	uint64_t gpa = e->data_next;
	memcpy(e->v.ram + gpa, data, len);
	e->data_next += (len + 15u) & ~15u;
	return gpa;
}

/* Adds a chain of @n buffers to queue @q, kicks it and runs the loop once. */
static void send_chain(struct env *e, unsigned q, const struct buf *bufs, unsigned n)
{
	uint16_t head = e->next_desc[q];
	for (unsigned i = 0; i < n; i++) {
		uint16_t idx = (uint16_t)((head + i) % QSIZE);
		uint16_t flags = (uint16_t)((bufs[i].writable ? F_WRITE : 0) | (i + 1 < n ? F_NEXT : 0));
		fake_vring_desc(e->v.ram, RING_BASE(q), idx, bufs[i].gpa, bufs[i].len, flags,
				(uint16_t)((idx + 1) % QSIZE));
	}
	e->next_desc[q] = (uint16_t)((head + n) % QSIZE);
	uint8_t *avail = e->v.ram + RING_BASE(q) + 0x1000;
	uint16_t slot = e->avail_idx[q] % QSIZE;
	memcpy(avail + 4 + 2u * slot, &head, 2);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	e->avail_idx[q]++;
	memcpy(avail + 2, &e->avail_idx[q], 2);
	fake_vplat_kick(e->d, q);
	CHECK(evloop_run_once(e->v.loop, 100) >= 1);
}

/* A driver that refills its ring as soon as the device takes a chain: the
 * chain just popped from queue 0 (its one PFN buffer bumped to the next
 * page) is made available again, from inside the device's discard. */
static void refill(struct env *e)
{
	uint8_t *avail = e->v.ram + RING_BASE(0) + 0x1000;
	uint16_t head;
	memcpy(&head, avail + 4 + 2u * ((e->avail_idx[0] - 1u) % QSIZE), 2);
	uint64_t buf;
	memcpy(&buf, e->v.ram + RING_BASE(0) + 16u * head, 8);
	uint32_t pfn;
	memcpy(&pfn, e->v.ram + buf, 4);
	pfn++;
	memcpy(e->v.ram + buf, &pfn, 4);
	memcpy(avail + 4 + 2u * (e->avail_idx[0] % QSIZE), &head, 2);
	e->avail_idx[0]++;
	memcpy(avail + 2, &e->avail_idx[0], 2);
}

static void send_pfns(struct env *e, unsigned q, const uint32_t *pfns, unsigned n)
{
	struct buf b = { put_data(e, pfns, n * 4u), n * 4u, false };
	send_chain(e, q, &b, 1);
}

static uint16_t used_idx(struct env *e, unsigned q)
{
	uint16_t v;
	memcpy(&v, e->v.ram + RING_BASE(q) + 0x2000 + 2, 2);
	return v;
}

static struct virtio_balloon_info info(struct env *e)
{
	struct virtio_balloon_info i;
	virtio_balloon_get(e->b, &i);
	return i;
}

#define ALL_FEATURES ((1u << VIRTIO_BALLOON_F_STATS_VQ) | \
		      (1u << VIRTIO_BALLOON_F_DEFLATE_ON_OOM) | \
		      (1u << VIRTIO_BALLOON_F_PAGE_REPORTING))

static void test_config_and_features(void)
{
	struct env e;
	if (!env_create(&e, 4096, 5, true))
		return;
	struct virtio_dev *d = e.d;
	CHECK_EQ(d->device_id, VIRTIO_ID_BALLOON);
	CHECK_EQ(d->nr_queues, 4);
	uint32_t f = virtio_dev_features_word(d, 0);
	CHECK(f & (1u << VIRTIO_BALLOON_F_STATS_VQ));
	CHECK(f & (1u << VIRTIO_BALLOON_F_DEFLATE_ON_OOM));
	CHECK(f & (1u << VIRTIO_BALLOON_F_PAGE_REPORTING));
	CHECK(!(f & (1u << VIRTIO_BALLOON_F_MUST_TELL_HOST)));
	CHECK(!(f & (1u << VIRTIO_BALLOON_F_FREE_PAGE_HINT)));

	/* a target before the driver is up: no interrupt, but config shows it */
	CHECK_EQ(virtio_balloon_set_target(e.b, 2u << 20), 0);
	CHECK_EQ(e.v.config_signals, 0);
	uint32_t v = 0;
	virtio_dev_config_read(d, 0, &v, 4);
	CHECK_EQ(v, 512);
	CHECK_EQ(virtio_balloon_set_target(e.b, RAM_SIZE + 4096ull), -ERANGE);
	CHECK_EQ(info(&e).target, 2u << 20);

	driver_init(&e, ALL_FEATURES, 4);
	CHECK_EQ(virtio_balloon_set_target(e.b, 4u << 20), 0);
	CHECK_EQ(e.v.config_signals, 1);
	CHECK_EQ(virtio_balloon_set_target(e.b, 4u << 20), 0); /* unchanged: no signal */
	CHECK_EQ(e.v.config_signals, 1);
	virtio_dev_config_read(d, 0, &v, 4);
	CHECK_EQ(v, 1024);
	/* the driver writes actual; num_pages is read-only to it */
	uint32_t actual = 77, bogus = 5;
	virtio_dev_config_write(d, 4, &actual, 4);
	virtio_dev_config_write(d, 0, &bogus, 4);
	virtio_dev_config_read(d, 4, &v, 4);
	CHECK_EQ(v, 77);
	virtio_dev_config_read(d, 0, &v, 4);
	CHECK_EQ(v, 1024);
	struct virtio_balloon_info i = info(&e);
	CHECK_EQ(i.actual, 77u * 4096);
	CHECK(i.live);
	CHECK(i.features & (1u << VIRTIO_BALLOON_F_DEFLATE_ON_OOM));
	env_destroy(&e);
}

static void test_inflate_deflate_4k(void)
{
	struct env e;
	if (!env_create(&e, 4096, 0, false))
		return;
	CHECK_EQ(e.d->nr_queues, 2);
	driver_init(&e, 0, 2);
	uint32_t in[] = { 0x200, 0x201, 0x202, 0x300 };
	send_pfns(&e, 0, in, 4);
	CHECK_EQ(used_idx(&e, 0), 1);
	CHECK(e.v.queue_signals >= 1);
	CHECK_EQ(e.nr_discards, 2); /* consecutive PFNs merged */
	CHECK_EQ(e.discards[0].gpa, 0x200000);
	CHECK_EQ(e.discards[0].len, 0x3000);
	CHECK_EQ(e.discards[1].gpa, 0x300000);
	CHECK_EQ(e.discards[1].len, 0x1000);
	struct virtio_balloon_info i = info(&e);
	CHECK_EQ(i.inflated, 4 * 4096);
	CHECK_EQ(i.discarded, 4 * 4096);

	/* out of RAM, far out of RAM, and the same page twice: ignored */
	uint32_t bad[] = { RAM_SIZE / 4096, 0xffffffffu, 0x201, 0x400, 0x400 };
	e.nr_discards = 0;
	send_pfns(&e, 0, bad, 5);
	CHECK_EQ(used_idx(&e, 0), 2);
	CHECK_EQ(e.nr_discards, 1);
	CHECK_EQ(e.discards[0].gpa, 0x400000);
	i = info(&e);
	CHECK_EQ(i.bad_pfns, 2);
	CHECK_EQ(i.duplicate_pfns, 2);
	CHECK_EQ(i.inflated, 5 * 4096);

	/* deflate: nothing discarded; deflating twice is ignored */
	uint32_t out[] = { 0x201, 0x201, 0x555 };
	e.nr_discards = 0;
	send_pfns(&e, 1, out, 3);
	CHECK_EQ(used_idx(&e, 1), 1);
	CHECK_EQ(e.nr_discards, 0);
	i = info(&e);
	CHECK_EQ(i.inflated, 4 * 4096);
	CHECK_EQ(i.duplicate_pfns, 4);
	CHECK_EQ(i.deflates, 1);
	/* and the page can go in again */
	uint32_t again[] = { 0x201 };
	send_pfns(&e, 0, again, 1);
	CHECK_EQ(e.nr_discards, 1);
	CHECK_EQ(e.discards[0].gpa, 0x201000);

	/* a PFN split across two descriptors, and a stray trailing byte */
	uint32_t pfn = 0x123;
	uint8_t raw[5];
	memcpy(raw, &pfn, 4);
	raw[4] = 0xee;
	uint64_t g = put_data(&e, raw, 5);
	struct buf two[] = { { g, 3, false }, { g + 3, 2, false } };
	e.nr_discards = 0;
	send_chain(&e, 0, two, 2);
	CHECK_EQ(e.nr_discards, 1);
	CHECK_EQ(e.discards[0].gpa, 0x123000);

	/* descending PFNs merge too */
	uint32_t down[] = { 0x502, 0x501, 0x500 };
	e.nr_discards = 0;
	send_pfns(&e, 0, down, 3);
	CHECK_EQ(e.nr_discards, 1);
	CHECK_EQ(e.discards[0].gpa, 0x500000);
	CHECK_EQ(e.discards[0].len, 0x3000);

	/* a failing discard is counted, the device goes on */
	e.discard_rc = -EINVAL;
	uint32_t one[] = { 0x124 };
	send_pfns(&e, 0, one, 1);
	CHECK_EQ(info(&e).discard_errors, 1);
	CHECK(virtio_dev_live(e.d));
	env_destroy(&e);
}

static void test_hugepages(void)
{
	struct env e;
	if (!env_create(&e, 2u << 20, 0, false))
		return;
	driver_init(&e, 0, 2);
	/* 511 of the 512 4K pages of the backing page at 2 MiB: nothing yet */
	uint32_t pfns[256];
	for (unsigned base = 0x200; base < 0x400; base += 256) {
		unsigned n = 0;
		for (unsigned k = 0; k < 256; k++)
			if (base + k != 0x3ff)
				pfns[n++] = base + k;
		send_pfns(&e, 0, pfns, n);
	}
	CHECK_EQ(e.nr_discards, 0);
	CHECK_EQ(info(&e).inflated, 511 * 4096);
	CHECK_EQ(info(&e).discarded, 0);
	uint32_t last[] = { 0x3ff, 0x3ff };
	send_pfns(&e, 0, last, 2);
	CHECK_EQ(e.nr_discards, 1);
	CHECK_EQ(e.discards[0].gpa, 2u << 20);
	CHECK_EQ(e.discards[0].len, 2u << 20);
	CHECK_EQ(info(&e).discarded, 2u << 20);
	CHECK_EQ(info(&e).duplicate_pfns, 1);
	/* deflate one: the hugepage is no longer wholly in the balloon */
	uint32_t one[] = { 0x250 };
	send_pfns(&e, 1, one, 1);
	CHECK_EQ(info(&e).discarded, 0);
	CHECK_EQ(info(&e).inflated, 511 * 4096);
	send_pfns(&e, 0, one, 1);
	CHECK_EQ(e.nr_discards, 2);
	CHECK_EQ(e.discards[1].gpa, 2u << 20);
	/* driver reset: the balloon is forgotten */
	pthread_mutex_lock(&e.d->lock);
	virtio_dev_set_status(e.d, 0);
	pthread_mutex_unlock(&e.d->lock);
	CHECK_EQ(info(&e).inflated, 0);
	CHECK_EQ(info(&e).actual, 0);
	env_destroy(&e);
}

static void put_stat(uint8_t *p, uint16_t tag, uint64_t val)
{
	memcpy(p, &tag, 2);
	memcpy(p + 2, &val, 8);
}

static void test_stats(void)
{
	struct env e;
	if (!env_create(&e, 4096, 1, false))
		return;
	CHECK_EQ(e.d->nr_queues, 3);
	driver_init(&e, 1u << VIRTIO_BALLOON_F_STATS_VQ, 3);
	CHECK(!info(&e).stats_valid);
	uint8_t st[40];
	put_stat(st, VIRTIO_BALLOON_S_MEMFREE, 100u << 20);
	put_stat(st + 10, VIRTIO_BALLOON_S_MEMTOT, 128u << 20);
	put_stat(st + 20, 42, 7);
	put_stat(st + 30, VIRTIO_BALLOON_S_SWAP_IN, 3);
	uint64_t g = put_data(&e, st, 40);
	/* split mid-entry across descriptors */
	struct buf two[] = { { g, 13, false }, { g + 13, 27, false } };
	send_chain(&e, 2, two, 2);
	struct virtio_balloon_info i = info(&e);
	CHECK(i.stats_valid);
	CHECK_EQ(i.stats.val[VIRTIO_BALLOON_S_MEMFREE], 100u << 20);
	CHECK_EQ(i.stats.val[VIRTIO_BALLOON_S_MEMTOT], 128u << 20);
	CHECK_EQ(i.stats.val[VIRTIO_BALLOON_S_SWAP_IN], 3);
	CHECK(!(i.stats.valid & (1u << VIRTIO_BALLOON_S_MAJFLT)));
	CHECK_EQ(i.stats.unknown, 1);
	CHECK_STREQ(balloon_stat_name(VIRTIO_BALLOON_S_AVAIL), "available_memory");
	CHECK(balloon_stat_name(10) == NULL);
	/* the device holds the buffer until the period ends */
	CHECK_EQ(used_idx(&e, 2), 0);
	unsigned before = e.v.queue_signals;
	for (int k = 0; k < 30 && used_idx(&e, 2) == 0; k++)
		evloop_run_once(e.v.loop, 100);
	CHECK_EQ(used_idx(&e, 2), 1);
	CHECK(e.v.queue_signals > before);
	/* the driver re-posts; a malformed one keeps the previous stats */
	uint64_t g2 = put_data(&e, st, 15);
	struct buf bad = { g2, 15, false };
	send_chain(&e, 2, &bad, 1);
	CHECK_EQ(info(&e).stats_updates, 1);
	CHECK_EQ(info(&e).stats.val[VIRTIO_BALLOON_S_MEMFREE], 100u << 20);
	env_destroy(&e);
}

/* Linux's driver posts its first stats buffer and kicks before DRIVER_OK,
 * then waits for it to come back: the device must see it once the driver
 * is ready, or it never gets statistics at all. */
static void test_stats_before_driver_ok(void)
{
	struct env e;
	if (!env_create(&e, 4096, 1, false))
		return;
	struct virtio_dev *d = e.d;
	pthread_mutex_lock(&d->lock);
	uint64_t f = (uint64_t)virtio_dev_features_word(d, 1) << 32 |
		     ((1u << VIRTIO_BALLOON_F_STATS_VQ) & virtio_dev_features_word(d, 0));
	CHECK(fake_driver_features(d, f) & VIRTIO_STATUS_FEATURES_OK);
	for (unsigned q = 0; q < 3; q++)
		CHECK(fake_driver_queue(d, q, QSIZE, RING_BASE(q)));
	pthread_mutex_unlock(&d->lock);
	uint8_t st[10];
	put_stat(st, VIRTIO_BALLOON_S_MEMTOT, 64u << 20);
	struct buf b = { put_data(&e, st, 10), 10, false };
	send_chain(&e, 2, &b, 1);
	CHECK(!info(&e).stats_valid); /* not live yet: not read */
	pthread_mutex_lock(&d->lock);
	virtio_dev_set_status(d, d->status | VIRTIO_STATUS_DRIVER_OK);
	pthread_mutex_unlock(&d->lock);
	CHECK(evloop_run_once(e.v.loop, 100) >= 1);
	CHECK(info(&e).stats_valid);
	CHECK_EQ(info(&e).stats.val[VIRTIO_BALLOON_S_MEMTOT], 64u << 20);
	env_destroy(&e);
}

static void test_reporting(void)
{
	struct env e;
	if (!env_create(&e, 2u << 20, 1, true))
		return;
	/* without STATS_VQ the reporting queue is queue 2 (dense numbering) */
	driver_init(&e, 1u << VIRTIO_BALLOON_F_PAGE_REPORTING, 3);
	struct buf r[] = {
		{ 4u << 20, 2u << 20, true },          /* one whole hugepage */
		{ (6u << 20) + 4096, 1u << 20, true }, /* no whole hugepage inside */
	};
	send_chain(&e, 2, r, 2);
	CHECK_EQ(used_idx(&e, 2), 1);
	CHECK_EQ(e.nr_discards, 1);
	CHECK_EQ(e.discards[0].gpa, 4u << 20);
	CHECK_EQ(e.discards[0].len, 2u << 20);
	struct virtio_balloon_info i = info(&e);
	CHECK_EQ(i.reported, 2u << 20);
	CHECK_EQ(i.reports, 2);
	CHECK_EQ(i.inflated, 0); /* reported pages stay the guest's */
	env_destroy(&e);
}

static void test_malformed_chain(void)
{
	struct env e;
	if (!env_create(&e, 4096, 0, false))
		return;
	driver_init(&e, 0, 2);
	struct buf out = { RAM_SIZE - 4, 8, false }; /* runs past the end of RAM */
	send_chain(&e, 0, &out, 1);
	CHECK(e.d->status & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	CHECK_EQ(e.nr_discards, 0);
	CHECK(e.v.config_signals >= 1);
	env_destroy(&e);
}

static void test_stats_parse(void)
{
	uint8_t raw[20];
	put_stat(raw, VIRTIO_BALLOON_S_CACHES, 9);
	put_stat(raw + 10, VIRTIO_BALLOON_S_CACHES, 11); /* last one wins */
	struct vq_seg seg = { .host = raw, .len = 20 };
	struct vq_chain c = { .segs = &seg, .cap = 1, .nr_segs = 1, .nr_readable = 1,
			      .readable_len = 20 };
	struct balloon_stats st;
	CHECK_EQ(balloon_stats_parse(&c, &st), 2);
	CHECK_EQ(st.val[VIRTIO_BALLOON_S_CACHES], 11);
	c.readable_len = seg.len = 19;
	CHECK_EQ(balloon_stats_parse(&c, &st), -EINVAL);
	c.readable_len = seg.len = 0;
	CHECK_EQ(balloon_stats_parse(&c, &st), 0);
	CHECK_EQ(st.valid, 0);
	CHECK(balloon_stat_is_bytes(VIRTIO_BALLOON_S_MEMFREE));
	CHECK(!balloon_stat_is_bytes(VIRTIO_BALLOON_S_MAJFLT));
}

/* 2.1.2: the driver cannot clear DRIVER_OK by writing a smaller status; if
 * it could, the reset that follows would skip the device's reset callback
 * (here: the balloon would keep the old driver's pages). */
static void test_status_bits_sticky(void)
{
	struct env e;
	if (!env_create(&e, 4096, 0, false))
		return;
	driver_init(&e, 0, 2);
	uint32_t in[] = { 0x200, 0x201 };
	send_pfns(&e, 0, in, 2);
	CHECK_EQ(info(&e).inflated, 2 * 4096);
	pthread_mutex_lock(&e.d->lock);
	uint8_t st = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK;
	virtio_dev_set_status(e.d, st);
	CHECK(e.d->status & VIRTIO_STATUS_DRIVER_OK);
	virtio_dev_set_status(e.d, 0);
	CHECK_EQ(e.d->status, 0);
	pthread_mutex_unlock(&e.d->lock);
	CHECK_EQ(info(&e).inflated, 0);
	env_destroy(&e);
}

static void test_create_errors(void)
{
	struct env e;
	memset(&e, 0, sizeof(e));
	struct virtio_balloon *b = NULL;
	struct virtio_platform plat = { .mem = &e.v.mem };
	struct virtio_balloon_params p = { .plat = &plat, .page_size = 4096,
					   .discard = record_discard };
	CHECK_EQ(virtio_balloon_create(&p, &b), -EINVAL); /* no loop */
	CHECK(b == NULL);
	p.page_size = 3000;
	CHECK_EQ(virtio_balloon_create(&p, &b), -EINVAL);
}

/* A pfn in the hole between two RAM regions is below the end of RAM but
 * not RAM: bad, never discarded, never counted as inflated. */
static void test_ram_gap(void)
{
	struct env e;
	if (!env_create_with(&e, 4096, 0, false, true))
		return;
	driver_init(&e, 0, 2);
	uint32_t in[] = {
		GAP_LO / 4096 - 1,        /* last page below the hole: RAM */
		GAP_LO / 4096,            /* first page of the hole */
		0x500,                    /* inside it */
		GAP_HI / 4096 - 1,        /* last page of the hole */
		GAP_HI / 4096,            /* first page above: RAM */
		GAP_RAM_END / 4096 - 1,   /* last page of RAM */
		GAP_RAM_END / 4096,       /* just past the end */
	};
	send_pfns(&e, 0, in, 7);
	struct virtio_balloon_info i = info(&e);
	CHECK_EQ(i.bad_pfns, 4);
	CHECK_EQ(i.inflated, 3 * 4096);
	CHECK_EQ(i.discarded, 3 * 4096);
	CHECK_EQ(e.nr_discards, 3);
	for (unsigned k = 0; k < e.nr_discards; k++) {
		uint64_t g = e.discards[k].gpa;
		CHECK(g < GAP_LO || g >= GAP_HI);
		CHECK(g + e.discards[k].len <= GAP_LO || g >= GAP_HI);
	}
	/* deflating a page of the hole is just as bad */
	uint32_t out[] = { 0x500, GAP_HI / 4096 };
	send_pfns(&e, 1, out, 2);
	i = info(&e);
	CHECK_EQ(i.bad_pfns, 5);
	CHECK_EQ(i.inflated, 2 * 4096);
	CHECK_EQ(i.duplicate_pfns, 0);
	env_destroy(&e);
}

/* One chain whose 64 descriptors all point at the same 4 MiB: a billion
 * PFNs' worth of work for one kick if it were taken at its word. */
static void test_oversized_buffer(void)
{
	struct env e;
	if (!env_create(&e, 4096, 0, false))
		return;
	driver_init(&e, 0, 2);
	struct buf big[QSIZE];
	for (unsigned k = 0; k < QSIZE; k++)
		big[k] = (struct buf){ 0x400000, 4u << 20, false };
	send_chain(&e, 0, big, QSIZE);
	struct virtio_balloon_info i = info(&e);
	CHECK_EQ(used_idx(&e, 0), 1);       /* returned to the driver */
	CHECK_EQ(i.oversized, 1);
	CHECK_EQ(i.inflated, 0);
	CHECK_EQ(i.duplicate_pfns, 0);
	CHECK_EQ(i.inflates, 0);
	CHECK_EQ(e.nr_discards, 0);
	CHECK(virtio_dev_live(e.d));
	/* the largest buffer a driver may send is still taken */
	uint32_t *pfns = calloc(VIRTIO_BALLOON_CHAIN_PFNS, 4);
	for (unsigned k = 0; k < VIRTIO_BALLOON_CHAIN_PFNS; k++)
		pfns[k] = 0x400 + k % 1024;
	e.data_next = 0x40000;
	send_pfns(&e, 0, pfns, VIRTIO_BALLOON_CHAIN_PFNS);
	free(pfns);
	i = info(&e);
	CHECK_EQ(i.oversized, 1);
	CHECK_EQ(i.inflated, 1024 * 4096);
	CHECK_EQ(i.duplicate_pfns, VIRTIO_BALLOON_CHAIN_PFNS - 1024);
	env_destroy(&e);
}

/* A driver that refills the inflate queue as fast as the device takes from
 * it: one kick does a bounded amount of work and re-kicks the queue, so
 * the event loop gets to its other file descriptors. */
static void test_kick_budget(void)
{
	struct env e;
	if (!env_create(&e, 4096, 0, false))
		return;
	driver_init(&e, 0, 2);
	e.refills = 1000;
	uint32_t first[] = { 0x100 };
	send_pfns(&e, 0, first, 1); /* kicks and runs the loop once */
	struct virtio_balloon_info i = info(&e);
	CHECK(used_idx(&e, 0) < 1000);
	CHECK(used_idx(&e, 0) >= 16);
	CHECK_EQ(i.yields, 1);
	CHECK_EQ(i.inflates, used_idx(&e, 0));
	CHECK_EQ(fake_vplat_kicks_pending(e.d, 0), 1); /* the queue kicked itself */
	/* the next rounds go on where it stopped */
	uint16_t before = used_idx(&e, 0);
	fake_vplat_kick(e.d, 0);
	CHECK(evloop_run_once(e.v.loop, 100) >= 1);
	CHECK(used_idx(&e, 0) > before);
	for (int k = 0; k < 100 && fake_vplat_kicks_pending(e.d, 0); k++) {
		fake_vplat_kick(e.d, 0);
		evloop_run_once(e.v.loop, 100);
	}
	CHECK_EQ(info(&e).inflates, 1001);
	CHECK_EQ(info(&e).bad_pfns, 0);
	env_destroy(&e);
}

/* Chains of the largest size a buffer may have: a kick stops after its
 * budget of PFNs, long before the chain budget. */
static void test_pfn_budget(void)
{
	struct env e;
	if (!env_create(&e, 4096, 0, false))
		return;
	const uint16_t big = VIRTIO_BALLOON_QUEUE_SIZE;
	struct virtio_dev *d = e.d;
	pthread_mutex_lock(&d->lock);
	CHECK(fake_driver_features(d, (uint64_t)virtio_dev_features_word(d, 1) << 32) &
	      VIRTIO_STATUS_FEATURES_OK);
	CHECK(fake_driver_queue(d, 0, big, RING_BASE(0)));
	CHECK(fake_driver_queue(d, 1, QSIZE, RING_BASE(1)));
	virtio_dev_set_status(d, d->status | VIRTIO_STATUS_DRIVER_OK);
	pthread_mutex_unlock(&d->lock);
	uint32_t *pfns = calloc(VIRTIO_BALLOON_CHAIN_PFNS, 4);
	for (unsigned k = 0; k < VIRTIO_BALLOON_CHAIN_PFNS; k++)
		pfns[k] = 0x400 + k % 1024;
	e.data_next = 0x40000;
	uint64_t g = put_data(&e, pfns, 4 * VIRTIO_BALLOON_CHAIN_PFNS);
	free(pfns);
	fake_vring_desc(e.v.ram, RING_BASE(0), 0, g, 4 * VIRTIO_BALLOON_CHAIN_PFNS, 0, 0);
	fake_vring_fill(e.v.ram, RING_BASE(0), big, 0, 32);
	fake_vplat_kick(d, 0);
	CHECK(evloop_run_once(e.v.loop, 100) >= 1);
	CHECK_EQ(used_idx(&e, 0), 65536 / VIRTIO_BALLOON_CHAIN_PFNS);
	CHECK_EQ(info(&e).yields, 1);
	CHECK_EQ(fake_vplat_kicks_pending(d, 0), 1);
	env_destroy(&e);
}

/* Free page reports of a whole ring's worth of ranges each: a kick stops
 * after its budget of ranges. */
static void test_report_budget(void)
{
	struct env e;
	if (!env_create(&e, 4096, 0, true))
		return;
	const uint16_t big = VIRTIO_BALLOON_QUEUE_SIZE;
	struct virtio_dev *d = e.d;
	pthread_mutex_lock(&d->lock);
	uint64_t f = (uint64_t)virtio_dev_features_word(d, 1) << 32 |
		     (1u << VIRTIO_BALLOON_F_PAGE_REPORTING);
	CHECK(fake_driver_features(d, f) & VIRTIO_STATUS_FEATURES_OK);
	CHECK(fake_driver_queue(d, 0, QSIZE, RING_BASE(0)));
	CHECK(fake_driver_queue(d, 1, QSIZE, RING_BASE(1)));
	CHECK(fake_driver_queue(d, 2, big, RING_BASE(2)));
	virtio_dev_set_status(d, d->status | VIRTIO_STATUS_DRIVER_OK);
	pthread_mutex_unlock(&d->lock);
	for (uint16_t k = 0; k < big; k++)
		fake_vring_desc(e.v.ram, RING_BASE(2), k, 0x100000, 4096,
				F_WRITE | (k + 1 < big ? F_NEXT : 0), (uint16_t)(k + 1));
	fake_vring_fill(e.v.ram, RING_BASE(2), big, 0, 4);
	fake_vplat_kick(d, 2);
	CHECK(evloop_run_once(e.v.loop, 100) >= 1);
	CHECK_EQ(used_idx(&e, 2), 256 / big);
	CHECK_EQ(info(&e).reports, 256);
	CHECK_EQ(info(&e).yields, 1);
	CHECK_EQ(fake_vplat_kicks_pending(d, 2), 1);
	env_destroy(&e);
}

/* A driver that keeps posting stats buffers: each new one makes the
 * device hand the previous one back, which the driver posts again. A
 * kick takes at most its budget of them. */
static void test_stats_budget(void)
{
	struct env e;
	if (!env_create(&e, 4096, 60, false))
		return;
	const uint16_t big = VIRTIO_BALLOON_QUEUE_SIZE;
	struct virtio_dev *d = e.d;
	pthread_mutex_lock(&d->lock);
	uint64_t f = (uint64_t)virtio_dev_features_word(d, 1) << 32 |
		     (1u << VIRTIO_BALLOON_F_STATS_VQ);
	CHECK(fake_driver_features(d, f) & VIRTIO_STATUS_FEATURES_OK);
	CHECK(fake_driver_queue(d, 0, QSIZE, RING_BASE(0)));
	CHECK(fake_driver_queue(d, 1, QSIZE, RING_BASE(1)));
	CHECK(fake_driver_queue(d, 2, big, RING_BASE(2)));
	virtio_dev_set_status(d, d->status | VIRTIO_STATUS_DRIVER_OK);
	CHECK(virtio_dev_live(d));
	pthread_mutex_unlock(&d->lock);
	uint8_t st[10];
	put_stat(st, VIRTIO_BALLOON_S_MEMFREE, 1);
	fake_vring_desc(e.v.ram, RING_BASE(2), 0, put_data(&e, st, 10), 10, 0, 0);
	fake_vring_fill(e.v.ram, RING_BASE(2), big, 0, big);
	fake_vplat_kick(d, 2);
	CHECK(evloop_run_once(e.v.loop, 100) >= 1);
	CHECK(info(&e).stats_updates < big);
	CHECK(info(&e).stats_updates >= 16);
	CHECK_EQ(info(&e).yields, 1);
	CHECK_EQ(fake_vplat_kicks_pending(d, 2), 1);
	/* the re-kick brings the device back for the rest */
	for (int k = 0; k < 10 && info(&e).stats_updates < big; k++) {
		fake_vplat_kick(d, 2);
		evloop_run_once(e.v.loop, 100);
	}
	CHECK_EQ(info(&e).stats_updates, big);
	env_destroy(&e);
}

/* RAM that must stay reserved (hugepages without balloon.hugepage_giveback):
 * no discard callback. The guest inflates and deflates as before, nothing
 * is given back nor counted as given back, and free page reporting is not
 * offered. */
static void test_kept_by_host(void)
{
	struct env e;
	memset(&e, 0, sizeof(e));
	fake_vplat_init(&e.v, RAM_SIZE, false);
	e.v.mem.page_size = 2u << 20;
	struct virtio_balloon_params p = {
		.plat = &e.v.plat, .page_size = 2u << 20, .discard = NULL,
		.free_page_reporting = true,
	};
	CHECK_EQ(virtio_balloon_create(&p, &e.b), 0);
	if (!e.b) {
		fake_vplat_fini(&e.v);
		return;
	}
	e.d = virtio_balloon_dev(e.b);
	fake_vplat_attach(&e.v, e.d);
	e.data_next = DATA_GPA;
	CHECK(!(virtio_dev_features_word(e.d, 0) & (1u << VIRTIO_BALLOON_F_PAGE_REPORTING)));
	CHECK_EQ(e.d->nr_queues, 2);
	driver_init(&e, 0, 2);
	uint32_t pfns[256];
	for (unsigned base = 0x200; base < 0x400; base += 256) {
		for (unsigned k = 0; k < 256; k++)
			pfns[k] = base + k;
		send_pfns(&e, 0, pfns, 256);
	}
	struct virtio_balloon_info i = info(&e);
	CHECK_EQ(i.inflated, 2u << 20); /* a whole backing page */
	CHECK_EQ(i.discarded, 0);
	CHECK_EQ(i.discard_errors, 0);
	send_pfns(&e, 1, pfns, 256);
	i = info(&e);
	CHECK_EQ(i.inflated, 1u << 20);
	CHECK_EQ(i.deflates, 256);
	CHECK_EQ(i.discarded, 0);
	env_destroy(&e);
}

int main(void)
{
	RUN(test_config_and_features);
	RUN(test_inflate_deflate_4k);
	RUN(test_hugepages);
	RUN(test_stats);
	RUN(test_stats_before_driver_ok);
	RUN(test_reporting);
	RUN(test_malformed_chain);
	RUN(test_stats_parse);
	RUN(test_status_bits_sticky);
	RUN(test_create_errors);
	RUN(test_ram_gap);
	RUN(test_oversized_buffer);
	RUN(test_kick_budget);
	RUN(test_pfn_budget);
	RUN(test_report_budget);
	RUN(test_stats_budget);
	RUN(test_kept_by_host);
	return unit_done();
}
