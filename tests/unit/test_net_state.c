/* virtio-net with the userspace backend across a save and load (net/net.c
 * and net/userspace.c's snapshot hooks): quiesced, the device stops
 * reading its "tap" (a SOCK_SEQPACKET socketpair, as in test_net.c) and
 * gives back the receive buffers it popped ahead; a device created fresh
 * on the same RAM and socket loads the state and delivers the frame that
 * waited meanwhile into the next buffer the driver posted (none skipped),
 * and transmits. A MAC that differs, or more active pairs than the
 * device has, is refused. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/net.h"
#include "fake_platform.h"
#include "unit.h"
#include "virtio/device_state.h"
#include "lib/evloop.h"
#include "lib/state.h"

#define RAM_SIZE (2u << 20)
#define QSIZE 16u
#define QBASE(q) (0x10000u + (q) * 0x4000u)
#define BUF_GPA 0x80000u
#define BUF_LEN 2048u
#define HDR 12u

static struct net *net_new(struct fake_vplat *v, int fd, const uint8_t mac[6])
{
	int fds[1] = { fd };
	struct net_params p = { .tap = "fake0", .vhost = NET_VHOST_OFF, .queues = 1, .mtu = 1500,
				.plat = &v->plat, .fds = fds };
	memcpy(p.mac, mac, 6);
	struct net *n = NULL;
	CHECK_EQ(net_create(&p, &n), 0);
	if (!n)
		exit(1);
	fake_vplat_attach(v, net_dev(n));
	return n;
}

static uint16_t used_idx(struct fake_vplat *v, unsigned q)
{
	return __atomic_load_n((uint16_t *)fake_gpa(v, QBASE(q) + 0x2000 + 2), __ATOMIC_ACQUIRE);
}

static uint32_t used_id(struct fake_vplat *v, unsigned q, uint16_t slot)
{
	uint32_t id;
	memcpy(&id, fake_gpa(v, QBASE(q) + 0x2000 + 4 + 8u * (slot % QSIZE)), 4);
	return id;
}

static void run(struct fake_vplat *v)
{
	for (int i = 0; i < 5; i++)
		evloop_run_once(v->loop, 5);
}

/* A frame of @len bytes (after the 12-byte header) filled with @fill. */
static void send_frame(int fd, uint8_t fill, size_t len)
{
	uint8_t f[HDR + 128] = { 0 };
	memset(f + HDR, fill, len);
	CHECK_EQ(send(fd, f, HDR + len, 0), (ssize_t)(HDR + len));
}

static void save(struct virtio_dev *d, struct state_w *w, struct state_file *f)
{
	state_w_init(w);
	state_section_begin(w, "net", 1);
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
	struct state_r r = { .p = p, .len = n, .name = "net" };
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
	int sv[2];
	CHECK_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
	const uint8_t mac[6] = { 0x52, 0x54, 0, 1, 2, 3 };
	struct net *a = net_new(&v, sv[0], mac);
	struct virtio_dev *d = net_dev(a);
	pthread_mutex_lock(&d->lock);
	uint64_t feats = 1ull << VIRTIO_F_VERSION_1 | 1ull << VIRTIO_NET_F_MRG_RXBUF;
	CHECK_EQ(fake_driver_features(d, feats) & VIRTIO_STATUS_FEATURES_OK,
		 VIRTIO_STATUS_FEATURES_OK);
	CHECK(fake_driver_queue(d, 0, QSIZE, QBASE(0)));
	CHECK(fake_driver_queue(d, 1, QSIZE, QBASE(1)));
	virtio_dev_set_status(d, d->status | VIRTIO_STATUS_DRIVER_OK);
	CHECK(virtio_dev_live(d));
	pthread_mutex_unlock(&d->lock);
	/* 8 receive buffers, heads 0..7 */
	for (uint16_t i = 0; i < 8; i++) {
		fake_vring_desc(v.ram, QBASE(0), i, BUF_GPA + BUF_LEN * i, BUF_LEN,
				FAKE_VRING_F_WRITE, 0);
		fake_vring_fill(v.ram, QBASE(0), QSIZE, i, 1);
	}
	fake_vplat_kick(d, 0);
	send_frame(sv[1], 0x11, 60);
	run(&v);
	CHECK_EQ(used_idx(&v, 0), 1);
	CHECK_EQ(used_id(&v, 0, 0), 0);

	/* paused: the frame waits in the socket */
	virtio_dev_quiesce(d);
	send_frame(sv[1], 0x22, 60);
	run(&v);
	CHECK_EQ(used_idx(&v, 0), 1);
	char why[160] = "";
	pthread_mutex_lock(&d->lock);
	CHECK_EQ(virtio_dev_can_snapshot(d, why, sizeof(why)), 0);
	pthread_mutex_unlock(&d->lock);
	struct state_w w;
	struct state_file f;
	save(d, &w, &f);
	fake_vplat_detach(d);
	net_destroy(a, false);

	struct net *b = net_new(&v, sv[0], mac);
	d = net_dev(b);
	struct state_r r;
	char err[256] = "";
	CHECK_EQ(state_section(&f, "net", 1, &r, err, sizeof(err)), 0);
	CHECK_EQ(load_bytes(d, r.p, r.len, err, sizeof(err)), 0);
	CHECK_STREQ(err, "");
	run(&v);
	/* delivered into buffer 1: none was lost to a pop-ahead */
	CHECK_EQ(used_idx(&v, 0), 2);
	CHECK_EQ(used_id(&v, 0, 1), 1);
	CHECK_EQ(*fake_gpa(&v, BUF_GPA + BUF_LEN + HDR), 0x22);
	/* and it transmits */
	uint8_t *tx = fake_gpa(&v, BUF_GPA + 0x10000);
	memset(tx, 0, HDR);
	memset(tx + HDR, 0x33, 60);
	fake_vring_desc(v.ram, QBASE(1), 0, BUF_GPA + 0x10000, HDR + 60, 0, 0);
	fake_vring_fill(v.ram, QBASE(1), QSIZE, 0, 1);
	fake_vplat_kick(d, 1);
	run(&v);
	CHECK_EQ(used_idx(&v, 1), 1);
	uint8_t got[HDR + 128];
	CHECK_EQ(recv(sv[1], got, sizeof(got), 0), HDR + 60);
	CHECK_EQ(got[HDR], 0x33);
	fake_vplat_detach(d);
	net_destroy(b, false);

	/* another MAC; more pairs than one */
	const uint8_t other[6] = { 0x52, 0x54, 0, 9, 9, 9 };
	struct net *c = net_new(&v, sv[0], other);
	CHECK_EQ(load_bytes(net_dev(c), r.p, r.len, err, sizeof(err)), -EINVAL);
	CHECK_HAS(err, "MAC 52:54:00:01:02:03");
	fake_vplat_detach(net_dev(c));
	net_destroy(c, false);
	uint8_t *p = malloc(r.len);
	memcpy(p, r.p, r.len);
	p[r.len - 4] = 2; /* active pairs, the payload's last u32 */
	c = net_new(&v, sv[0], mac);
	CHECK_EQ(load_bytes(net_dev(c), p, r.len, err, sizeof(err)), -EINVAL);
	CHECK_HAS(err, "2 active queue pairs, at most 1");
	CHECK_EQ(net_dev(c)->status, 0);
	free(p);
	fake_vplat_detach(net_dev(c));
	net_destroy(c, false);
	state_w_free(&w);
	close(sv[0]);
	close(sv[1]);
	fake_vplat_fini(&v);
}

int main(void)
{
	RUN(test_round_trip);
	return unit_done();
}
