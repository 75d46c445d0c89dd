/* virtio-net end to end without a guest (net/net.c, net/userspace.c over
 * virtio/device.c): a driver written here fills split rings in a buffer
 * registered as guest RAM and kicks their eventfds; the "tap" is a
 * SOCK_SEQPACKET socketpair injected through net_params.fds (one frame
 * with its 12-byte header per message, like a tap with IFF_VNET_HDR); the
 * real event loop runs the device. A fake transport counts interrupts.
 * Also the pure parts of the vhost-net backend (memory table, features). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/net.h"
#include "net/netdev.h"
#include "net/vhost.h"
#include "fake_platform.h"
#include "unit.h"
#include "lib/evloop.h"

#define RAM_SIZE (2u << 20)
#define QSIZE 16u
#define QBASE(q) (0x10000u + (q) * 0x4000u) /* desc; avail +0x1000; used +0x2000 */
#define BUF_GPA 0x80000u
#define F_NEXT FAKE_VRING_F_NEXT
#define F_WRITE FAKE_VRING_F_WRITE
#define BIT(f) (1ull << (f))

struct env {
	struct fake_vplat v; /* RAM, loop, logger, platform, interrupt counts */
	unsigned pairs;
	int sv[NET_MAX_PAIRS][2];      /* [0] device side, [1] test side */
	struct net *n;
	struct virtio_dev *d;
	uint16_t avail_idx[8];
	uint16_t next_desc[8];
	uint16_t qsize[8];             /* Queue Size per queue; 0: QSIZE */
};

static uint8_t *gpa(struct env *e, uint64_t a)
{
	return fake_gpa(&e->v, a);
}

static bool env_create(struct env *e, unsigned pairs)
{
	memset(e, 0, sizeof(*e));
	fake_vplat_init(&e->v, RAM_SIZE, true);
	e->pairs = pairs;
	int fds[NET_MAX_PAIRS];
	for (unsigned i = 0; i < pairs; i++) {
		CHECK_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
				    e->sv[i]), 0);
		fds[i] = e->sv[i][0];
	}
	struct net_params p = { .tap = "fake0", .vhost = NET_VHOST_OFF, .queues = pairs,
				.mtu = 1500, .index = 0, .plat = &e->v.plat, .fds = fds };
	net_default_mac("unit", 0, p.mac);
	int rc = net_create(&p, &e->n);
	CHECK_EQ(rc, 0);
	if (rc < 0)
		return false;
	e->d = net_dev(e->n);
	fake_vplat_attach(&e->v, e->d);
	return true;
}

static void env_destroy(struct env *e)
{
	fake_vplat_detach(e->d);
	net_destroy(e->n, false);
	for (unsigned i = 0; i < e->pairs; i++) {
		close(e->sv[i][0]);
		if (e->sv[i][1] >= 0)
			close(e->sv[i][1]);
	}
	fake_vplat_fini(&e->v);
}

/* The driver side of 3.1.1, with @features. Returns the status read back. */
static uint8_t driver_init(struct env *e, uint64_t features, unsigned nr_queues)
{
	struct virtio_dev *d = e->d;
	pthread_mutex_lock(&d->lock);
	uint8_t st = fake_driver_features(d, features);
	if (st & VIRTIO_STATUS_FEATURES_OK) {
		for (unsigned q = 0; q < nr_queues; q++)
			CHECK(fake_driver_queue(d, q, e->qsize[q] ? e->qsize[q] : QSIZE, QBASE(q)));
		virtio_dev_set_status(d, st | VIRTIO_STATUS_DRIVER_OK);
		st = d->status;
	}
	pthread_mutex_unlock(&d->lock);
	memset(e->avail_idx, 0, sizeof(e->avail_idx));
	memset(e->next_desc, 0, sizeof(e->next_desc));
	return st;
}

static void desc(struct env *e, unsigned q, uint16_t i, uint64_t addr, uint32_t len,
		 uint16_t flags, uint16_t next)
{
	fake_vring_desc(e->v.ram, QBASE(q), i, addr, len, flags, next);
}

/* Adds a chain of @n buffers {gpa, len, writable}; returns its head. */
static uint16_t chain(struct env *e, unsigned q, unsigned n, const uint64_t *addr,
		      const uint32_t *len, const bool *w)
{
	uint16_t head = e->next_desc[q];
	for (unsigned i = 0; i < n; i++) {
		uint16_t idx = (uint16_t)((head + i) % QSIZE);
		uint16_t next = (uint16_t)((idx + 1) % QSIZE);
		desc(e, q, idx, addr[i], len[i],
		     (uint16_t)((w[i] ? F_WRITE : 0) | (i + 1 < n ? F_NEXT : 0)), next);
	}
	e->next_desc[q] = (uint16_t)((head + n) % QSIZE);
	uint8_t *avail = gpa(e, QBASE(q) + 0x1000);
	memcpy(avail + 4 + 2 * (e->avail_idx[q] % QSIZE), &head, 2);
	e->avail_idx[q]++;
	__atomic_store_n((uint16_t *)(avail + 2), e->avail_idx[q], __ATOMIC_RELEASE);
	return head;
}

static uint16_t used_idx(struct env *e, unsigned q)
{
	return __atomic_load_n((uint16_t *)gpa(e, QBASE(q) + 0x2000 + 2), __ATOMIC_ACQUIRE);
}

static uint32_t used_len(struct env *e, unsigned q, uint16_t slot)
{
	uint32_t v;
	memcpy(&v, gpa(e, QBASE(q) + 0x2000 + 4 + 8u * (slot % QSIZE) + 4), 4);
	return v;
}

static uint32_t used_id(struct env *e, unsigned q, uint16_t slot)
{
	uint32_t v;
	memcpy(&v, gpa(e, QBASE(q) + 0x2000 + 4 + 8u * (slot % QSIZE)), 4);
	return v;
}

static void kick(struct env *e, unsigned q)
{
	fake_vplat_kick(e->d, q);
}

/* Runs the event loop until it is idle; returns the callbacks run. */
static unsigned pump(struct env *e)
{
	unsigned total = 0;
	for (int i = 0; i < 100; i++) {
		int r = evloop_run_once(e->v.loop, 0);
		CHECK(r >= 0);
		if (r <= 0)
			break;
		total += (unsigned)r;
	}
	return total;
}

static void fill(uint8_t *p, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(i * 7 + seed);
}

static struct net_stats stats(struct env *e)
{
	struct net_stats s;
	net_get_stats(e->n, &s);
	return s;
}

static void test_mac_and_config(void)
{
	uint8_t a[6], b[6], c[6];
	net_default_mac("vm-a", 0, a);
	net_default_mac("vm-a", 0, b);
	net_default_mac("vm-b", 0, c);
	CHECK(memcmp(a, b, 6) == 0);          /* stable */
	CHECK(memcmp(a, c, 6) != 0);          /* per name */
	CHECK_EQ(a[0] & 3, 2);                /* locally administered unicast */
	net_default_mac("vm-a", 1, c);
	CHECK(memcmp(a, c, 6) != 0);          /* per device */

	struct env e;
	if (!env_create(&e, 2))
		return;
	struct virtio_net_config cfg;
	pthread_mutex_lock(&e.d->lock);
	virtio_dev_config_read(e.d, 0, &cfg, sizeof(cfg));
	pthread_mutex_unlock(&e.d->lock);
	net_default_mac("unit", 0, a);
	CHECK(memcmp(cfg.mac, a, 6) == 0);
	CHECK_EQ(cfg.status, VIRTIO_NET_S_LINK_UP);
	CHECK_EQ(cfg.max_virtqueue_pairs, 2);
	CHECK_EQ(cfg.mtu, 1500);
	CHECK_EQ(e.d->nr_queues, 5);
	uint64_t f = e.d->host_features;
	CHECK(f & BIT(VIRTIO_NET_F_MRG_RXBUF));
	CHECK(f & BIT(VIRTIO_NET_F_MQ));
	CHECK(f & BIT(VIRTIO_NET_F_CTRL_VQ));
	CHECK(f & BIT(VIRTIO_NET_F_MAC));
	CHECK(f & BIT(VIRTIO_NET_F_STATUS));
	CHECK(f & BIT(VIRTIO_NET_F_MTU));
	CHECK(f & BIT(VIRTIO_F_VERSION_1));
	/* 5.1.3.1: GUEST_TSO4 without GUEST_CSUM is refused */
	uint8_t st = driver_init(&e, BIT(VIRTIO_F_VERSION_1) | BIT(VIRTIO_NET_F_GUEST_TSO4), 3);
	CHECK(!(st & VIRTIO_STATUS_FEATURES_OK));
	pthread_mutex_lock(&e.d->lock);
	virtio_dev_set_status(e.d, 0);
	pthread_mutex_unlock(&e.d->lock);
	st = driver_init(&e, BIT(VIRTIO_F_VERSION_1) | BIT(VIRTIO_NET_F_GUEST_CSUM) |
			 BIT(VIRTIO_NET_F_GUEST_TSO4), 3);
	CHECK(st & VIRTIO_STATUS_DRIVER_OK);
	CHECK_EQ(net_rx_max(e.d->guest_features, 1500), NET_HDR_LEN + NET_MAX_FRAME);
	CHECK_EQ(net_rx_max(BIT(VIRTIO_NET_F_MRG_RXBUF), 1500), 12 + 1500 + 18);
	CHECK_EQ(net_rx_max(0, 9000), 12 + 9000 + 18);
	env_destroy(&e);
}

static void test_tx(void)
{
	struct env e;
	if (!env_create(&e, 1))
		return;
	CHECK(driver_init(&e, BIT(VIRTIO_F_VERSION_1), 3) & VIRTIO_STATUS_DRIVER_OK);
	pump(&e);
	/* header and frame split over three descriptors */
	uint8_t *hdr = gpa(&e, BUF_GPA), *f1 = gpa(&e, BUF_GPA + 0x1000), *f2 = gpa(&e, BUF_GPA + 0x2000);
	memset(hdr, 0, 12);
	hdr[0] = 0; /* no checksum offload */
	fill(f1, 40, 1);
	fill(f2, 60, 2);
	uint64_t a[] = { BUF_GPA, BUF_GPA + 0x1000, BUF_GPA + 0x2000 };
	uint32_t l[] = { 12, 40, 60 };
	bool w[] = { false, false, false };
	for (int i = 0; i < 5; i++)
		chain(&e, 1, 3, a, l, w);
	kick(&e, 1);
	pump(&e);
	CHECK_EQ(used_idx(&e, 1), 5);
	CHECK_EQ(used_len(&e, 1, 0), 0);
	CHECK(e.v.queue_signals >= 1);
	uint8_t got[256];
	for (int i = 0; i < 5; i++) {
		ssize_t r = recv(e.sv[0][1], got, sizeof(got), MSG_DONTWAIT);
		CHECK_EQ(r, 112);
		CHECK(memcmp(got, hdr, 12) == 0 && memcmp(got + 12, f1, 40) == 0 &&
		      memcmp(got + 52, f2, 60) == 0);
	}
	CHECK(recv(e.sv[0][1], got, sizeof(got), MSG_DONTWAIT) < 0);
	/* a transmit chain with a writable buffer, one shorter than the
	 * header: dropped and counted, returned, the queue goes on */
	uint64_t a2[] = { BUF_GPA, BUF_GPA + 0x1000 };
	uint32_t l2[] = { 12, 40 };
	bool w2[] = { false, true };
	chain(&e, 1, 2, a2, l2, w2);
	uint32_t l3[] = { 8 };
	chain(&e, 1, 1, a, l3, w);
	chain(&e, 1, 3, a, l, w);
	kick(&e, 1);
	pump(&e);
	CHECK_EQ(used_idx(&e, 1), 8);
	CHECK_EQ(stats(&e).tx_bad, 2);
	CHECK_EQ(stats(&e).tx_frames, 6);
	/* the pair's own counters: the same frames, payload bytes only */
	struct net_stats s = stats(&e);
	CHECK_EQ(s.max_pairs, 1);
	CHECK_EQ(s.q[0].tx_packets, 6);
	CHECK_EQ(s.q[0].tx_bytes, 6 * 100);
	CHECK_EQ(s.q[0].tx_drops, 2);
	CHECK_EQ(s.q[0].rx_packets, 0);
	CHECK_EQ(recv(e.sv[0][1], got, sizeof(got), MSG_DONTWAIT), 112);
	CHECK(virtio_dev_live(e.d));
	env_destroy(&e);
}

static void send_frame(struct env *e, unsigned pair, size_t frame_len, unsigned seed)
{
	static uint8_t buf[NET_HDR_LEN + NET_MAX_FRAME];
	memset(buf, 0, NET_HDR_LEN);
	buf[10] = 0xee; /* num_buffers: the tap leaves it alone, the device sets it */
	buf[11] = 0xee;
	fill(buf + NET_HDR_LEN, frame_len, seed);
	CHECK_EQ(send(e->sv[pair][1], buf, NET_HDR_LEN + frame_len, MSG_DONTWAIT),
		 (ssize_t)(NET_HDR_LEN + frame_len));
}

static void test_rx_mergeable(void)
{
	struct env e;
	if (!env_create(&e, 1))
		return;
	CHECK(driver_init(&e, BIT(VIRTIO_F_VERSION_1) | BIT(VIRTIO_NET_F_MRG_RXBUF), 3) &
	      VIRTIO_STATUS_DRIVER_OK);
	for (unsigned i = 0; i < 8; i++) {
		uint64_t a[] = { BUF_GPA + i * 0x1000 };
		uint32_t l[] = { 512 };
		bool w[] = { true };
		chain(&e, 0, 1, a, l, w);
	}
	kick(&e, 0);
	pump(&e);
	CHECK_EQ(used_idx(&e, 0), 0);
	send_frame(&e, 0, 1500, 3);
	send_frame(&e, 0, 60, 4);
	pump(&e);
	/* 12 + 1500 bytes over 512-byte buffers: 3 of them, then 72 in one */
	CHECK_EQ(used_idx(&e, 0), 4);
	CHECK_EQ(used_len(&e, 0, 0), 512);
	CHECK_EQ(used_len(&e, 0, 1), 512);
	CHECK_EQ(used_len(&e, 0, 2), 1512 - 1024);
	CHECK_EQ(used_len(&e, 0, 3), 72);
	uint16_t nb;
	memcpy(&nb, gpa(&e, BUF_GPA + 10), 2);
	CHECK_EQ(nb, 3);
	memcpy(&nb, gpa(&e, BUF_GPA + 0x3000 + 10), 2);
	CHECK_EQ(nb, 1);
	uint8_t want[1500], got[1500];
	fill(want, 1500, 3);
	memcpy(got, gpa(&e, BUF_GPA + 12), 500);
	memcpy(got + 500, gpa(&e, BUF_GPA + 0x1000), 512);
	memcpy(got + 1012, gpa(&e, BUF_GPA + 0x2000), 488);
	CHECK(memcmp(want, got, 1500) == 0);
	CHECK_EQ(stats(&e).rx_frames, 2);
	CHECK(e.v.queue_signals >= 1);
	env_destroy(&e);
}

/* Merged buffers and a GSO-sized frame larger than the chains the ring
 * holds now (they take a full-size plain frame, so it was read): it
 * waits for the guest's next buffers instead of being dropped. One
 * larger than the whole ring is dropped, and its chains serve the next
 * frame. */
static void test_rx_held(void)
{
	struct env e;
	if (!env_create(&e, 1))
		return;
	CHECK(driver_init(&e, BIT(VIRTIO_F_VERSION_1) | BIT(VIRTIO_NET_F_MRG_RXBUF), 3) &
	      VIRTIO_STATUS_DRIVER_OK);
	uint64_t a[] = { BUF_GPA };
	uint32_t l[] = { 512 };
	bool w[] = { true };
	for (unsigned i = 0; i < 4; i++) {
		a[0] = BUF_GPA + i * 0x1000;
		chain(&e, 0, 1, a, l, w);
	}
	kick(&e, 0);
	pump(&e);
	send_frame(&e, 0, 3000, 7);
	pump(&e);
	CHECK_EQ(used_idx(&e, 0), 0);
	CHECK_EQ(stats(&e).rx_dropped_small, 0);
	CHECK(stats(&e).rx_stalls >= 1);
	for (unsigned i = 4; i < 6; i++) {
		a[0] = BUF_GPA + i * 0x1000;
		chain(&e, 0, 1, a, l, w);
	}
	kick(&e, 0);
	pump(&e);
	/* 12 + 3000 bytes: five 512-byte buffers and 452 bytes of a sixth */
	CHECK_EQ(used_idx(&e, 0), 6);
	CHECK_EQ(used_len(&e, 0, 4), 512);
	CHECK_EQ(used_len(&e, 0, 5), 3012 - 5 * 512);
	uint16_t nb;
	memcpy(&nb, gpa(&e, BUF_GPA + 10), 2);
	CHECK_EQ(nb, 6);
	static uint8_t want[3000], got[3000];
	fill(want, sizeof(want), 7);
	memcpy(got, gpa(&e, BUF_GPA + 12), 500);
	for (unsigned i = 1; i < 5; i++)
		memcpy(got + 500 + (i - 1) * 512, gpa(&e, BUF_GPA + i * 0x1000), 512);
	memcpy(got + 2548, gpa(&e, BUF_GPA + 0x5000), 452);
	CHECK(memcmp(want, got, sizeof(want)) == 0);
	CHECK_EQ(stats(&e).rx_frames, 1);
	CHECK_EQ(stats(&e).rx_dropped_small, 0);
	/* the whole ring in 64-byte buffers holds 1024 bytes, never 3012:
	 * dropped, and a small frame then takes the first of them */
	l[0] = 64;
	for (unsigned i = 6; i < 6 + QSIZE; i++) {
		a[0] = BUF_GPA + i * 0x1000;
		chain(&e, 0, 1, a, l, w);
	}
	kick(&e, 0);
	pump(&e);
	send_frame(&e, 0, 3000, 8);
	send_frame(&e, 0, 40, 9);
	pump(&e);
	CHECK_EQ(stats(&e).rx_dropped_small, 1);
	CHECK_EQ(used_idx(&e, 0), 7);
	CHECK_EQ(used_id(&e, 0, 6), 6);
	CHECK_EQ(used_len(&e, 0, 6), 52);
	CHECK(virtio_dev_live(e.d));
	env_destroy(&e);
}

static void test_rx_too_small(void)
{
	struct env e;
	if (!env_create(&e, 1))
		return;
	CHECK(driver_init(&e, BIT(VIRTIO_F_VERSION_1), 3) & VIRTIO_STATUS_DRIVER_OK);
	/* without merged buffers one chain takes a frame: 100 bytes here,
	 * with a canary after it */
	memset(gpa(&e, BUF_GPA), 0xcc, 0x1000);
	uint64_t a[] = { BUF_GPA };
	uint32_t l[] = { 100 };
	bool w[] = { true };
	chain(&e, 0, 1, a, l, w);
	/* a chain with no room for the header is returned unused */
	uint64_t a2[] = { BUF_GPA + 0x2000 };
	uint32_t l2[] = { 8 };
	chain(&e, 0, 1, a2, l2, w);
	kick(&e, 0);
	pump(&e);
	send_frame(&e, 0, 500, 5);
	pump(&e);
	CHECK_EQ(used_idx(&e, 0), 0);
	CHECK_EQ(stats(&e).rx_dropped_small, 1);
	for (unsigned i = 100; i < 0x1000; i++)
		if (*gpa(&e, BUF_GPA + i) != 0xcc) {
			CHECK(!"written past the receive buffer");
			break;
		}
	send_frame(&e, 0, 60, 6); /* fits: delivered into the same chain */
	pump(&e);
	CHECK_EQ(used_idx(&e, 0), 2);
	CHECK_EQ(used_id(&e, 0, 0), 0);
	CHECK_EQ(used_len(&e, 0, 0), 72);
	CHECK_EQ(used_id(&e, 0, 1), 1);   /* the 8-byte one, back with 0 bytes */
	CHECK_EQ(used_len(&e, 0, 1), 0);
	CHECK_EQ(stats(&e).rx_bad_buffers, 1);
	uint16_t nb;
	memcpy(&nb, gpa(&e, BUF_GPA + 10), 2);
	CHECK_EQ(nb, 1);
	CHECK(virtio_dev_live(e.d));
	env_destroy(&e);
}

static void test_malformed(void)
{
	struct env e;
	if (!env_create(&e, 1))
		return;
	CHECK(driver_init(&e, BIT(VIRTIO_F_VERSION_1), 3) & VIRTIO_STATUS_DRIVER_OK);
	uint64_t a[] = { RAM_SIZE - 4 }; /* runs past the end of RAM */
	uint32_t l[] = { 64 };
	bool w[] = { false };
	chain(&e, 1, 1, a, l, w);
	kick(&e, 1);
	pump(&e);
	CHECK(e.d->status & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	CHECK(e.v.config_signals >= 1);
	CHECK_EQ(stats(&e).needs_reset, 1);
	/* the driver resets and starts over; the device works again */
	pthread_mutex_lock(&e.d->lock);
	virtio_dev_set_status(e.d, 0);
	pthread_mutex_unlock(&e.d->lock);
	pump(&e);
	CHECK(driver_init(&e, BIT(VIRTIO_F_VERSION_1), 3) & VIRTIO_STATUS_DRIVER_OK);
	uint64_t a2[] = { BUF_GPA };
	uint32_t l2[] = { 80 };
	memset(gpa(&e, BUF_GPA), 0, 12);
	chain(&e, 1, 1, a2, l2, w);
	kick(&e, 1);
	pump(&e);
	CHECK_EQ(used_idx(&e, 1), 1);
	uint8_t got[128];
	CHECK_EQ(recv(e.sv[0][1], got, sizeof(got), MSG_DONTWAIT), 80);
	/* a receive chain looping on itself */
	desc(&e, 0, 0, BUF_GPA, 100, F_WRITE | F_NEXT, 0);
	uint8_t *avail = gpa(&e, QBASE(0) + 0x1000);
	uint16_t zero = 0, one = 1;
	memcpy(avail + 4, &zero, 2);
	memcpy(avail + 2, &one, 2);
	kick(&e, 0);
	send_frame(&e, 0, 60, 1);
	pump(&e);
	CHECK(e.d->status & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	env_destroy(&e);
}

static void test_ctrl_mq(void)
{
	struct env e;
	if (!env_create(&e, 2))
		return;
	uint64_t f = BIT(VIRTIO_F_VERSION_1) | BIT(VIRTIO_NET_F_CTRL_VQ) | BIT(VIRTIO_NET_F_MQ);
	CHECK(driver_init(&e, f, 5) & VIRTIO_STATUS_DRIVER_OK);
	CHECK_EQ(net_ctrl_queue(e.n), 4);
	uint8_t *cmd = gpa(&e, BUF_GPA), *ack = gpa(&e, BUF_GPA + 0x100);
	uint64_t a[] = { BUF_GPA, BUF_GPA + 0x100 };
	uint32_t l[] = { 4, 1 };
	bool w[] = { false, true };
	cmd[0] = VIRTIO_NET_CTRL_MQ;
	cmd[1] = VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET;
	cmd[2] = 2;
	cmd[3] = 0;
	*ack = 0xff;
	chain(&e, 4, 2, a, l, w);
	kick(&e, 4);
	pump(&e);
	CHECK_EQ(used_idx(&e, 4), 1);
	CHECK_EQ(used_len(&e, 4, 0), 1);
	CHECK_EQ(*ack, VIRTIO_NET_OK);
	CHECK_EQ(stats(&e).active_pairs, 2);
	/* pair 1 now carries traffic */
	uint64_t ra[] = { BUF_GPA + 0x1000 };
	uint32_t rl[] = { 2048 };
	bool rw[] = { true };
	chain(&e, 2, 1, ra, rl, rw);
	kick(&e, 2);
	send_frame(&e, 1, 100, 9);
	pump(&e);
	CHECK_EQ(used_idx(&e, 2), 1);
	CHECK_EQ(used_len(&e, 2, 0), 112);
	/* counted on pair 1, not pair 0 */
	struct net_stats s = stats(&e);
	CHECK_EQ(s.max_pairs, 2);
	CHECK_EQ(s.q[1].rx_packets, 1);
	CHECK_EQ(s.q[1].rx_bytes, 100);
	CHECK_EQ(s.q[0].rx_packets, 0);
	CHECK_EQ(s.rx_frames, 1);
	/* more pairs than the device has, and an unknown class: ERR */
	cmd[2] = 3;
	*ack = 0xff;
	chain(&e, 4, 2, a, l, w);
	kick(&e, 4);
	pump(&e);
	CHECK_EQ(*ack, VIRTIO_NET_ERR);
	cmd[0] = 0x77;
	cmd[2] = 1;
	*ack = 0xff;
	chain(&e, 4, 2, a, l, w);
	kick(&e, 4);
	pump(&e);
	CHECK_EQ(*ack, VIRTIO_NET_ERR);
	CHECK_EQ(stats(&e).active_pairs, 2);
	CHECK_EQ(stats(&e).ctrl_errors, 2);
	/* reset: back to one pair */
	pthread_mutex_lock(&e.d->lock);
	virtio_dev_set_status(e.d, 0);
	pthread_mutex_unlock(&e.d->lock);
	pump(&e);
	CHECK_EQ(stats(&e).active_pairs, 1);
	env_destroy(&e);
}

/* A driver that keeps the control queue full: one kick runs at most its
 * budget of commands, then the queue kicks itself for the rest. */
static void test_ctrl_budget(void)
{
	struct env e;
	if (!env_create(&e, 2))
		return;
	const uint16_t big = 128;
	e.qsize[4] = big;
	uint64_t f = BIT(VIRTIO_F_VERSION_1) | BIT(VIRTIO_NET_F_CTRL_VQ) | BIT(VIRTIO_NET_F_MQ);
	CHECK(driver_init(&e, f, 5) & VIRTIO_STATUS_DRIVER_OK);
	uint8_t *cmd = gpa(&e, BUF_GPA);
	cmd[0] = VIRTIO_NET_CTRL_MQ;
	cmd[1] = VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET;
	cmd[2] = 2;
	cmd[3] = 0;
	desc(&e, 4, 0, BUF_GPA, 4, F_NEXT, 1);
	desc(&e, 4, 1, BUF_GPA + 0x100, 1, F_WRITE, 0);
	fake_vring_fill(e.v.ram, QBASE(4), big, 0, big);
	kick(&e, 4);
	CHECK(evloop_run_once(e.v.loop, 0) >= 1);
	CHECK_EQ(used_idx(&e, 4), NET_CTRL_BUDGET);
	CHECK_EQ(stats(&e).ctrl_cmds, NET_CTRL_BUDGET);
	CHECK_EQ(stats(&e).yields, 1);
	CHECK_EQ(fake_vplat_kicks_pending(e.d, 4), 1);
	kick(&e, 4);
	pump(&e);
	CHECK_EQ(used_idx(&e, 4), big);
	CHECK_EQ(stats(&e).active_pairs, 2);
	env_destroy(&e);
}

/* A receive queue full of buffers too small for the header (each one goes
 * straight back, and a driver can post them without end): one callback
 * returns a budget of them, then re-kicks. */
static void test_rx_bad_budget(void)
{
	struct env e;
	if (!env_create(&e, 1))
		return;
	const uint16_t big = 128;
	e.qsize[0] = big;
	CHECK(driver_init(&e, BIT(VIRTIO_F_VERSION_1), 3) & VIRTIO_STATUS_DRIVER_OK);
	desc(&e, 0, 0, BUF_GPA, 8, F_WRITE, 0);
	fake_vring_fill(e.v.ram, QBASE(0), big, 0, big);
	kick(&e, 0);
	CHECK(evloop_run_once(e.v.loop, 0) >= 1);
	CHECK_EQ(used_idx(&e, 0), NET_RX_BAD_BUDGET);
	CHECK_EQ(stats(&e).rx_bad_buffers, NET_RX_BAD_BUDGET);
	CHECK_EQ(stats(&e).yields, 1);
	CHECK_EQ(fake_vplat_kicks_pending(e.d, 0), 1);
	kick(&e, 0);
	pump(&e);
	CHECK_EQ(used_idx(&e, 0), big);
	CHECK(virtio_dev_live(e.d));
	env_destroy(&e);
}

static void test_flood_no_buffers(void)
{
	struct env e;
	if (!env_create(&e, 1))
		return;
	CHECK(driver_init(&e, BIT(VIRTIO_F_VERSION_1) | BIT(VIRTIO_NET_F_MRG_RXBUF), 3) &
	      VIRTIO_STATUS_DRIVER_OK);
	pump(&e);
	unsigned sent = 0;
	static uint8_t buf[NET_HDR_LEN + 200];
	memset(buf, 0, sizeof(buf));
	while (sent < 200 && send(e.sv[0][1], buf, sizeof(buf), MSG_DONTWAIT) > 0)
		sent++;
	CHECK(sent > 10);
	unsigned ran = pump(&e);
	CHECK(ran <= 2); /* one wake-up, then the tap is no longer watched */
	CHECK(stats(&e).tap_wakeups <= 2);
	CHECK(stats(&e).rx_stalls >= 1);
	/* nothing more fires while the guest posts nothing: no busy loop */
	CHECK_EQ(evloop_run_once(e.v.loop, 50), 0);
	CHECK_EQ(used_idx(&e, 0), 0);
	/* buffers arrive with a kick: frames flow again */
	for (unsigned i = 0; i < 8; i++) {
		uint64_t a[] = { BUF_GPA + i * 0x1000 };
		uint32_t l[] = { 2048 };
		bool w[] = { true };
		chain(&e, 0, 1, a, l, w);
	}
	kick(&e, 0);
	pump(&e);
	CHECK_EQ(used_idx(&e, 0), 8);
	CHECK_EQ(stats(&e).rx_frames, 8);
	CHECK(virtio_dev_live(e.d));
	env_destroy(&e);
}

static void test_tap_gone(void)
{
	struct env e;
	if (!env_create(&e, 1))
		return;
	CHECK(driver_init(&e, BIT(VIRTIO_F_VERSION_1) | BIT(VIRTIO_NET_F_STATUS), 3) &
	      VIRTIO_STATUS_DRIVER_OK);
	pump(&e);
	unsigned cfg_before = e.v.config_signals;
	close(e.sv[0][1]);
	e.sv[0][1] = -1;
	pump(&e);
	struct net_stats s = stats(&e);
	CHECK(!s.link_up);
	CHECK(e.v.config_signals > cfg_before);
	struct virtio_net_config cfg;
	pthread_mutex_lock(&e.d->lock);
	virtio_dev_config_read(e.d, 0, &cfg, sizeof(cfg));
	pthread_mutex_unlock(&e.d->lock);
	CHECK_EQ(cfg.status & VIRTIO_NET_S_LINK_UP, 0);
	/* transmits are completed (dropped), not stuck */
	uint64_t a[] = { BUF_GPA };
	uint32_t l[] = { 80 };
	bool w[] = { false };
	chain(&e, 1, 1, a, l, w);
	kick(&e, 1);
	pump(&e);
	CHECK_EQ(used_idx(&e, 1), 1);
	CHECK(stats(&e).tx_dropped_link_down + stats(&e).tx_errors >= 1);
	CHECK_EQ(evloop_run_once(e.v.loop, 20), 0); /* no spinning on the dead fd */
	env_destroy(&e);
}

static void test_vhost_pure(void)
{
	static uint8_t a[4096], b[8192];
	struct guest_mem m = { 0 };
	CHECK_EQ(gmem_add_region(&m, 0, sizeof(a), a, -1, 0), 0);
	CHECK_EQ(gmem_add_region(&m, 0x100000000ull, sizeof(b), b, -1, 0), 0);
	union { /* room for the flexible regions[] */
		struct vhost_memory h;
		uint8_t raw[sizeof(struct vhost_memory) +
			    GMEM_MAX_REGIONS * sizeof(struct vhost_memory_region)];
	} t;
	CHECK_EQ(vhost_mem_table(&m, &t.h), 2);
	CHECK_EQ(t.h.nregions, 2);
	CHECK_EQ(t.h.regions[0].guest_phys_addr, 0);
	CHECK_EQ(t.h.regions[0].memory_size, sizeof(a));
	CHECK_EQ(t.h.regions[0].userspace_addr, (uintptr_t)a);
	CHECK_EQ(t.h.regions[1].guest_phys_addr, 0x100000000ull);
	CHECK_EQ(t.h.regions[1].memory_size, sizeof(b));
	CHECK_EQ(t.h.regions[1].userspace_addr, (uintptr_t)b);

	uint64_t offer = BIT(VIRTIO_NET_F_MRG_RXBUF) | BIT(VIRTIO_F_EVENT_IDX) |
			 BIT(VIRTIO_F_INDIRECT_DESC) | BIT(VIRTIO_F_VERSION_1) |
			 BIT(VIRTIO_NET_F_CSUM) | BIT(VIRTIO_NET_F_MQ) | BIT(VIRTIO_NET_F_MAC);
	/* a vhost without merged buffers and event idx: not offered */
	uint64_t vh = BIT(VIRTIO_F_INDIRECT_DESC) | BIT(VIRTIO_F_VERSION_1);
	uint64_t got = vhost_net_offer(offer, vh);
	CHECK(!(got & BIT(VIRTIO_NET_F_MRG_RXBUF)));
	CHECK(!(got & BIT(VIRTIO_F_EVENT_IDX)));
	CHECK(got & BIT(VIRTIO_NET_F_CSUM));  /* the tap's, not vhost's */
	CHECK(got & BIT(VIRTIO_NET_F_MQ));
	CHECK_EQ(vhost_net_offer(offer, ~0ull), offer);
	/* what vhost is told: ring features only, no VHOST_NET_F_VIRTIO_NET_HDR */
	uint64_t s = vhost_net_features_for(offer);
	CHECK_EQ(s, BIT(VIRTIO_NET_F_MRG_RXBUF) | BIT(VIRTIO_F_EVENT_IDX) |
		    BIT(VIRTIO_F_INDIRECT_DESC) | BIT(VIRTIO_F_VERSION_1));
	CHECK(!(s & BIT(VHOST_NET_F_VIRTIO_NET_HDR)));

	/* vhost=on where /dev/vhost-net is missing is a clear error */
	if (access("/dev/vhost-net", F_OK) != 0) {
		struct vhost v = { .fd = -1 };
		CHECK_EQ(vhost_net_open(&v, &m), -ENOENT);
		struct env e;
		memset(&e, 0, sizeof(e));
		CHECK_EQ(evloop_create(&e.v.loop), 0);
		log_init(&e.v.lg, LOG_ERROR, "test");
		e.v.lg.fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
		e.v.plat = (struct virtio_platform){ .mem = &m, .loop = e.v.loop, .log = &e.v.lg };
		struct net_params p = { .tap = "kvt-none", .vhost = NET_VHOST_ON, .queues = 1,
					.mtu = 1500, .plat = &e.v.plat };
		struct net *n = NULL;
		CHECK_EQ(net_create(&p, &n), -ENOENT);
		CHECK(n == NULL);
		evloop_destroy(e.v.loop);
		close(e.v.lg.fd);
	}
}

int main(void)
{
	RUN(test_mac_and_config);
	RUN(test_tx);
	RUN(test_rx_mergeable);
	RUN(test_rx_held);
	RUN(test_rx_too_small);
	RUN(test_malformed);
	RUN(test_ctrl_mq);
	RUN(test_ctrl_budget);
	RUN(test_rx_bad_budget);
	RUN(test_flood_no_buffers);
	RUN(test_tap_gone);
	RUN(test_vhost_pure);
	return unit_done();
}
