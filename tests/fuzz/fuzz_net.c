/* libFuzzer target for virtio-net (net/net.c, net/userspace.c): a hostile
 * driver (fuzz_driver.h) posts receive and transmit chains and control
 * commands of its choosing, while the "tap" (a SOCK_SEQPACKET socketpair
 * per queue pair, injected as net_params.fds, one frame with its 12-byte
 * header per message) delivers frames of any size, is read, or goes away.
 * The userspace backend runs on the real event loop.
 *
 * Input:
 *   0..7   the features the driver asks for (masked by what the device
 *          offers unless byte 8 bit 0 is set)
 *   8      bit 0 unmasked features, bits 1-2 queue pairs - 1 (1..4),
 *          bit 3 MTU 9000 (else 1500)
 *   9..    fuzz_driver ops; the device's kinds:
 *          DEV_A  the tap of pair q sends a frame of len bytes (modulo
 *                 1600, or modulo the largest GSO frame when aux bit 0 is
 *                 set): a vnet header with flags/gso_type from bytes 3 and
 *                 7, then bytes counting up from addr
 *          DEV_B  read every frame the device sent to pair q's tap
 *          DEV_C  flags bit 0: pair q's tap goes away (its other end is
 *                 closed); else a config space read
 *
 * Invariants (abort on violation): no crash or sanitizer report (guest RAM
 * is two exact-size heap buffers); no frame the device sends is longer
 * than a 64 KiB GSO frame plus its header; every frame the device counts
 * as sent reaches the tap side; no more frames are delivered to the guest
 * than the taps sent; the link is reported down once pair 0's tap (the
 * one always watched) went away. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz_driver.h"
#include "net/net.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NAME "fuzz_net"
#define CHECK(c) FDRV_CHECK(NAME, c)
#define HDR 9u
#define MAX_PAIRS 4u

struct fz {
	struct fdrv drv;
	struct net *n;
	unsigned pairs;
	int sv[MAX_PAIRS][2];   /* [0] the device's, [1] the tap side */
	uint64_t injected, received;
	bool gone;              /* some pair's tap went away */
	bool gone0;             /* pair 0's, which is always watched */
	uint8_t frame[NET_HDR_LEN + NET_MAX_FRAME + 64];
};

static void inject(struct fz *f, const struct fdrv_op *op)
{
	unsigned p = op->q % f->pairs;
	if (f->sv[p][1] < 0)
		return;
	size_t cap = op->aux & 1 ? NET_HDR_LEN + NET_MAX_FRAME + 64 : 1600;
	size_t len = op->len % (cap + 1);
	memset(f->frame, 0, NET_HDR_LEN);
	f->frame[0] = op->flags;
	f->frame[1] = (uint8_t)(op->aux >> 8);
	for (size_t i = NET_HDR_LEN; i < len; i++)
		f->frame[i] = (uint8_t)(op->addr + i);
	if (send(f->sv[p][1], f->frame, len, MSG_DONTWAIT | MSG_NOSIGNAL) == (ssize_t)len)
		f->injected++;
	fdrv_pump(&f->drv);
}

static void drain(struct fz *f, unsigned p)
{
	if (f->sv[p][1] < 0)
		return;
	for (;;) {
		ssize_t n = recv(f->sv[p][1], f->frame, sizeof(f->frame), MSG_DONTWAIT | MSG_TRUNC);
		if (n < 0)
			break;
		CHECK((size_t)n <= NET_HDR_LEN + NET_MAX_FRAME);
		f->received++;
	}
}

static void tap_gone(struct fz *f, unsigned p)
{
	if (f->sv[p][1] < 0)
		return;
	drain(f, p);
	close(f->sv[p][1]);
	f->sv[p][1] = -1;
	f->gone = true;
	f->gone0 |= p == 0;
	fdrv_pump(&f->drv);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct fz f;
	if (size < HDR)
		return 0;
	uint64_t features;
	memcpy(&features, data, 8);
	f.pairs = ((data[8] >> 1) & 3) + 1;
	f.injected = f.received = 0;
	f.gone = f.gone0 = false;
	fdrv_init(&f.drv, NAME);

	int fds[MAX_PAIRS];
	for (unsigned i = 0; i < f.pairs; i++) {
		CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
				 f.sv[i]) == 0);
		fds[i] = f.sv[i][0];
	}
	struct net_params p = { .tap = "fuzz0", .vhost = NET_VHOST_OFF, .queues = f.pairs,
				.mtu = data[8] & 8 ? 9000 : 1500, .index = 0, .plat = &f.drv.plat,
				.fds = fds };
	net_default_mac("fuzz", 0, p.mac);
	CHECK(net_create(&p, &f.n) == 0);
	struct virtio_dev *d = net_dev(f.n);
	if (!(data[8] & 1))
		features &= d->host_features;
	fdrv_attach(&f.drv, d, features);

	size_t nr_ops = (size - HDR) / FDRV_OP_SIZE;
	if (nr_ops > FDRV_MAX_OPS)
		nr_ops = FDRV_MAX_OPS;
	for (size_t i = 0; i < nr_ops; i++) {
		struct fdrv_op op = fdrv_decode(data + HDR + i * FDRV_OP_SIZE);
		if (fdrv_op(&f.drv, &op))
			continue;
		unsigned pair = op.q % f.pairs;
		if (op.kind == FDRV_DEV_A) {
			inject(&f, &op);
		} else if (op.kind == FDRV_DEV_B) {
			drain(&f, pair);
		} else if (op.flags & 1) {
			tap_gone(&f, pair);
		} else {
			struct virtio_net_config cfg;
			pthread_mutex_lock(&d->lock);
			virtio_dev_config_read(d, 0, &cfg, sizeof(cfg));
			pthread_mutex_unlock(&d->lock);
			CHECK(cfg.max_virtqueue_pairs == f.pairs);
			CHECK(!f.gone0 || !(cfg.status & VIRTIO_NET_S_LINK_UP));
		}
	}
	fdrv_pump(&f.drv);
	for (unsigned i = 0; i < f.pairs; i++)
		drain(&f, i);
	struct net_stats st;
	net_get_stats(f.n, &st);
	CHECK(st.rx_frames <= f.injected);
	CHECK(st.tx_frames == f.received || f.gone);
	CHECK(st.active_pairs >= 1 && st.active_pairs <= f.pairs);
	CHECK(!f.gone0 || !st.link_up);

	d->tops = NULL;
	d->transport = NULL;
	net_destroy(f.n, false);
	for (unsigned i = 0; i < f.pairs; i++) {
		close(f.sv[i][0]);
		if (f.sv[i][1] >= 0)
			close(f.sv[i][1]);
	}
	fdrv_fini(&f.drv);
	return 0;
}
