/* libFuzzer target for virtio-vsock's packet parser and connection state
 * machine (vsock/packet.c, vsock/mux.c): a hostile guest sends tx chains
 * of its choosing (segments of any length and direction, headers with any
 * fields) and hands the device rx chains of any shape, while host programs
 * (socketpairs standing for the Unix sockets) connect, write, read and go
 * away. The sockets run on the real event loop.
 *
 * Input: a sequence of ops, each one kind byte (modulo 7) and its bytes:
 *   0 TX     n (1..4 segments), flags (bit i: segment i device-writable;
 *            bit 7: force the header's CIDs to guest -> host, so packets
 *            reach the state machine), n le16 lengths (modulo 1024, the
 *            first modulo 128), then each segment's bytes from the input
 *            (zeros when it runs out)
 *   1 RX     n (1..4), flags (bit i: segment i readable), n le16 lengths
 *   2 HCONN  le32 guest port: a host program connects to it
 *   3 HWRITE index, le16 length: that host program writes bytes
 *   4 HCLOSE index: it closes its end
 *   5 HREAD  index: it reads what is there
 *   6 PUMP   the event loop runs until idle
 * A guest REQUEST to host port P connects when P % 4 != 0, else refused.
 *
 * Invariants (abort on violation): no crash or sanitizer report (every
 * segment is its own exact-size heap buffer); a parsed packet's payload
 * iovec covers exactly hdr.len bytes inside the chain; a packet the device
 * writes fits its rx chain, is addressed host -> guest and its length field
 * matches what was written; never more connections than the bound. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/evloop.h"
#include "lib/log.h"
#include "vsock/mux.h"
#include "vsock/packet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) { \
	fprintf(stderr, "fuzz_vsock: invariant failed: %s (line %d)\n", #c, __LINE__); \
	abort(); } } while (0)

#define GUEST_CID 3u
#define MAX_HOSTS 8u
#define MAX_SEGS 4u

struct fz {
	const uint8_t *in;
	size_t len, pos;
	struct evloop *loop;
	struct logger lg;
	struct log_ratelimit rl;
	pthread_mutex_t lock;
	struct vsock_stats st;
	struct vsock_mux *m;
	int hosts[MAX_HOSTS];   /* the host programs' ends */
	unsigned next_host;
	uint8_t *seg[MAX_SEGS];
};

static uint8_t byte(struct fz *f)
{
	return f->pos < f->len ? f->in[f->pos++] : 0;
}

static uint32_t le(struct fz *f, unsigned n)
{
	uint32_t v = 0;
	for (unsigned i = 0; i < n; i++)
		v |= (uint32_t)byte(f) << (8 * i);
	return v;
}

static void host_keep(struct fz *f, int fd)
{
	unsigned i = f->next_host++ % MAX_HOSTS;
	if (f->hosts[i] >= 0)
		close(f->hosts[i]);
	f->hosts[i] = fd;
}

static int connect_port(void *cookie, uint32_t port)
{
	struct fz *f = cookie;
	if (port % 4 == 0)
		return -ECONNREFUSED;
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	host_keep(f, sv[1]);
	return sv[0];
}

static void want_rx(void *cookie)
{
	(void)cookie; /* the input decides when the guest offers rx buffers */
}

/* Builds a chain of n segments, each its own heap buffer. */
static void chain_build(struct fz *f, struct vq_chain *c, struct vq_seg *segs, bool tx)
{
	unsigned n = 1 + byte(f) % MAX_SEGS;
	uint8_t flags = byte(f);
	uint32_t lens[MAX_SEGS];
	for (unsigned i = 0; i < n; i++)
		lens[i] = le(f, 2) % (i == 0 && tx ? 128u : 1024u);
	*c = (struct vq_chain){ .segs = segs, .cap = MAX_SEGS, .nr_segs = n };
	/* readable segments first, as vq_pop() guarantees */
	bool writable[MAX_SEGS];
	unsigned nr_w = 0;
	for (unsigned i = 0; i < n; i++)
		nr_w += writable[i] = tx ? (flags >> i) & 1 : !((flags >> i) & 1);
	unsigned r = 0, w = n - nr_w;
	c->nr_readable = n - nr_w;
	for (unsigned i = 0; i < n; i++) {
		unsigned at = writable[i] ? w++ : r++;
		f->seg[at] = malloc(lens[i] ? lens[i] : 1);
		for (uint32_t k = 0; k < lens[i]; k++)
			f->seg[at][k] = tx ? byte(f) : 0xee;
		segs[at] = (struct vq_seg){ .gpa = 0x1000u * at, .host = f->seg[at], .len = lens[i],
					    .writable = writable[i] };
		if (writable[i])
			c->writable_len += lens[i];
		else
			c->readable_len += lens[i];
	}
	if (tx && (flags & 0x80) && c->nr_readable && segs[0].len >= 16) {
		uint64_t g = GUEST_CID, h = VSOCK_CID_HOST;
		memcpy(segs[0].host, &g, 8);
		memcpy((uint8_t *)segs[0].host + 8, &h, 8);
	}
}

static void chain_free(struct fz *f, const struct vq_chain *c)
{
	for (unsigned i = 0; i < c->nr_segs; i++) {
		free(f->seg[i]);
		f->seg[i] = NULL;
	}
}

static void op_tx(struct fz *f)
{
	struct vq_seg segs[MAX_SEGS];
	struct vq_chain c;
	chain_build(f, &c, segs, true);
	struct iovec iov[MAX_SEGS];
	struct vsock_pkt p = { .iov = iov, .iov_cap = MAX_SEGS };
	enum vsock_pkt_err e = vsock_pkt_parse(&c, &p);
	if (e == VSOCK_PKT_OK) {
		size_t total = 0;
		for (unsigned i = 0; i < p.nr_iov; i++) {
			bool inside = false;
			for (unsigned s = 0; s < c.nr_readable; s++) {
				const uint8_t *b = segs[s].host;
				const uint8_t *q = p.iov[i].iov_base;
				inside |= q >= b && q + p.iov[i].iov_len <= b + segs[s].len;
			}
			CHECK(inside);
			total += p.iov[i].iov_len;
		}
		CHECK(total == p.hdr.len);
		CHECK(c.readable_len >= VSOCK_HDR_LEN + (uint64_t)p.hdr.len);
		pthread_mutex_lock(&f->lock);
		vsock_mux_tx(f->m, &p);
		pthread_mutex_unlock(&f->lock);
	} else {
		CHECK(vsock_pkt_strerror(e)[0]);
	}
	chain_free(f, &c);
}

static void op_rx(struct fz *f)
{
	struct vq_seg segs[MAX_SEGS];
	struct vq_chain c;
	chain_build(f, &c, segs, false);
	pthread_mutex_lock(&f->lock);
	if (vsock_pkt_rx_ok(&c) && vsock_mux_rx_pending(f->m)) {
		uint32_t w = vsock_mux_rx(f->m, &c);
		CHECK(w <= c.writable_len);
		if (w) {
			struct vsock_hdr h;
			uint8_t *d = (uint8_t *)&h;
			size_t got = 0;
			for (unsigned i = c.nr_readable; i < c.nr_segs && got < sizeof(h); i++) {
				size_t k = segs[i].len < sizeof(h) - got ? segs[i].len : sizeof(h) - got;
				memcpy(d + got, segs[i].host, k);
				got += k;
			}
			CHECK(h.len + VSOCK_HDR_LEN == w);
			CHECK(h.src_cid == VSOCK_CID_HOST && h.dst_cid == GUEST_CID);
			CHECK(h.op >= VSOCK_OP_REQUEST && h.op <= VSOCK_OP_CREDIT_REQUEST);
		}
	}
	CHECK(vsock_mux_conns(f->m) <= VSOCK_MUX_MAX_CONNS);
	pthread_mutex_unlock(&f->lock);
	chain_free(f, &c);
}

static void pump(struct fz *f)
{
	for (int i = 0; i < 16 && evloop_run_once(f->loop, 0) > 0; i++)
		;
}

static void op_host_connect(struct fz *f)
{
	uint32_t port = le(f, 4);
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
		return;
	host_keep(f, sv[1]);
	pthread_mutex_lock(&f->lock);
	(void)vsock_mux_host_connect(f->m, sv[0], port);
	pthread_mutex_unlock(&f->lock);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz f = { .in = data, .len = size };
	for (unsigned i = 0; i < MAX_HOSTS; i++)
		f.hosts[i] = -1;
	if (evloop_create(&f.loop) < 0)
		return 0;
	f.lg = (struct logger){ .level = LOG_ERROR, .fd = -1 };
	pthread_mutex_init(&f.lock, NULL);
	struct vsock_mux_params mp = {
		.guest_cid = GUEST_CID, .loop = f.loop, .lock = &f.lock, .log = &f.lg, .rl = &f.rl,
		.name = "vsock", .st = &f.st, .connect_port = connect_port, .want_rx = want_rx,
		.cookie = &f,
	};
	if (vsock_mux_create(&mp, &f.m) < 0)
		goto out;
	static uint8_t buf[65536];
	for (unsigned ops = 0; f.pos < f.len && ops < 512; ops++) {
		switch (byte(&f) % 7) {
		case 0: op_tx(&f); break;
		case 1: op_rx(&f); break;
		case 2: op_host_connect(&f); break;
		case 3: {
			int fd = f.hosts[byte(&f) % MAX_HOSTS];
			size_t n = le(&f, 2);
			for (size_t i = 0; i < n; i++)
				buf[i] = (uint8_t)(i + n);
			if (fd >= 0)
				(void)send(fd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL);
			break;
		}
		case 4: {
			unsigned i = byte(&f) % MAX_HOSTS;
			if (f.hosts[i] >= 0)
				close(f.hosts[i]);
			f.hosts[i] = -1;
			break;
		}
		case 5: {
			int fd = f.hosts[byte(&f) % MAX_HOSTS];
			while (fd >= 0 && recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
				;
			break;
		}
		case 6: pump(&f); break;
		}
	}
	pump(&f);
	vsock_mux_destroy(f.m);
out:
	for (unsigned i = 0; i < MAX_HOSTS; i++)
		if (f.hosts[i] >= 0)
			close(f.hosts[i]);
	pthread_mutex_destroy(&f.lock);
	evloop_destroy(f.loop);
	return 0;
}
