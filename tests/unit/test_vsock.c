/* virtio-vsock's userspace backend (vsock/ over virtio/device.c and
 * queue.c): a driver written here posts rx buffers and sends packets on
 * split rings in a buffer registered as guest RAM, runs the real event
 * loop, and real Unix sockets in a temporary folder stand for the host's
 * programs. Covers the connection state machine both ways, credit flow
 * control, shutdown, RST for unknown connections and hostile packets. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "fake_platform.h"
#include "unit.h"
#include "vsock/mux.h"
#include "vsock/vsock.h"

#define RAM_SIZE (8u << 20)
#define QSIZE 64u
#define RING_BASE(q) (0x10000u * (q))
#define RX_BUFS 32u
#define RX_BUF_SIZE 4096u
#define RX_DATA 0x100000u               /* rx buffers */
#define TX_DATA 0x200000u               /* tx packets, 128 KiB slots */
#define TX_SLOT 0x20000u
#define CID 42u
#define F_NEXT FAKE_VRING_F_NEXT
#define F_WRITE FAKE_VRING_F_WRITE

struct env {
	struct fake_vplat v;
	struct vsock *vs;
	struct virtio_dev *d;
	char dir[64], path[96];
	uint16_t avail_idx[2], last_used[2];
	uint16_t tx_desc;
	unsigned tx_slot;
};

/* ---- the driver ---- */

static void avail_add(struct env *e, unsigned q, uint16_t head)
{
	uint8_t *avail = e->v.ram + RING_BASE(q) + 0x1000;
	memcpy(avail + 4 + 2u * (e->avail_idx[q] % QSIZE), &head, 2);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	e->avail_idx[q]++;
	memcpy(avail + 2, &e->avail_idx[q], 2);
}

static void rx_post(struct env *e, uint16_t i)
{
	fake_vring_desc(e->v.ram, RING_BASE(0), i, RX_DATA + (uint64_t)i * RX_BUF_SIZE,
			RX_BUF_SIZE, F_WRITE, 0);
	avail_add(e, 0, i);
}

static void run(struct env *e, int rounds)
{
	for (int i = 0; i < rounds; i++)
		evloop_run_once(e->v.loop, 20);
}

static bool env_create(struct env *e, enum vsock_backend b, bool with_uds, int *rc)
{
	memset(e, 0, sizeof(*e));
	fake_vplat_init(&e->v, RAM_SIZE, true);
	snprintf(e->dir, sizeof(e->dir), "/tmp/kvmrun-vsock-XXXXXX");
	CHECK(mkdtemp(e->dir) != NULL);
	snprintf(e->path, sizeof(e->path), "%s/v.sock", e->dir);
	struct vsock_params p = { .cid = CID, .backend = b, .uds = with_uds ? e->path : NULL,
				  .plat = &e->v.plat };
	*rc = vsock_create(&p, &e->vs);
	if (*rc < 0) {
		rmdir(e->dir);
		fake_vplat_fini(&e->v);
		return false;
	}
	e->d = vsock_dev(e->vs);
	fake_vplat_attach(&e->v, e->d);
	return true;
}

static bool env_start(struct env *e)
{
	int rc;
	if (!env_create(e, VSOCK_BACKEND_USERSPACE, true, &rc)) {
		CHECK_EQ(rc, 0);
		return false;
	}
	struct virtio_dev *d = e->d;
	pthread_mutex_lock(&d->lock);
	uint64_t f = (uint64_t)virtio_dev_features_word(d, 1) << 32 | virtio_dev_features_word(d, 0);
	CHECK(fake_driver_features(d, f) & VIRTIO_STATUS_FEATURES_OK);
	for (unsigned q = 0; q < VSOCK_NR_QUEUES; q++)
		CHECK(fake_driver_queue(d, q, QSIZE, RING_BASE(q)));
	virtio_dev_set_status(d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
				 VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
	CHECK(virtio_dev_live(d));
	pthread_mutex_unlock(&d->lock);
	for (uint16_t i = 0; i < RX_BUFS; i++)
		rx_post(e, i);
	fake_vplat_kick(d, VSOCK_QUEUE_RX);
	run(e, 1);
	return true;
}

static void env_destroy(struct env *e)
{
	fake_vplat_detach(e->d);
	vsock_destroy(e->vs);
	struct stat st;
	CHECK(lstat(e->path, &st) < 0); /* the socket file is removed */
	rmdir(e->dir);
	fake_vplat_fini(&e->v);
}

static struct vsock_hdr hdr(uint32_t src_port, uint32_t dst_port, uint16_t op)
{
	return (struct vsock_hdr){ .src_cid = CID, .dst_cid = VSOCK_CID_HOST,
				   .src_port = src_port, .dst_port = dst_port,
				   .type = VSOCK_TYPE_STREAM, .op = op, .buf_alloc = 1u << 20 };
}

/* Sends a tx chain: the header in one descriptor and the payload in a
 * second (as Linux does), or both in one when @one_desc. */
static void send_raw(struct env *e, const void *h, uint32_t hlen, const void *data, uint32_t len,
		     bool one_desc)
{
	uint64_t gpa = TX_DATA + (uint64_t)(e->tx_slot++ % 8) * TX_SLOT;
	memcpy(e->v.ram + gpa, h, hlen);
	if (len)
		memcpy(e->v.ram + gpa + hlen, data, len);
	uint16_t i = e->tx_desc;
	if (one_desc || !len) {
		fake_vring_desc(e->v.ram, RING_BASE(1), i, gpa, hlen + len, 0, 0);
		e->tx_desc = (uint16_t)((i + 1) % QSIZE);
	} else {
		uint16_t j = (uint16_t)((i + 1) % QSIZE);
		fake_vring_desc(e->v.ram, RING_BASE(1), i, gpa, hlen, F_NEXT, j);
		fake_vring_desc(e->v.ram, RING_BASE(1), j, gpa + hlen, len, 0, 0);
		e->tx_desc = (uint16_t)((j + 1) % QSIZE);
	}
	avail_add(e, 1, i);
	fake_vplat_kick(e->d, VSOCK_QUEUE_TX);
	run(e, 1);
}

static void send_pkt(struct env *e, struct vsock_hdr h, const void *data, uint32_t len)
{
	h.len = len;
	send_raw(e, &h, sizeof(h), data, len, false);
}

static uint16_t used_idx(struct env *e, unsigned q)
{
	uint16_t v;
	memcpy(&v, e->v.ram + RING_BASE(q) + 0x2000 + 2, 2);
	return v;
}

/* The next packet on the rx queue (running the loop up to @rounds times);
 * its payload into @data (up to @cap). The buffer is posted again. */
static bool recv_pkt(struct env *e, struct vsock_hdr *h, void *data, uint32_t cap, int rounds)
{
	for (int r = 0; used_idx(e, 0) == e->last_used[0] && r < rounds; r++)
		run(e, 1);
	if (used_idx(e, 0) == e->last_used[0])
		return false;
	uint8_t *elem = e->v.ram + RING_BASE(0) + 0x2000 + 4 + 8u * (e->last_used[0] % QSIZE);
	uint32_t id, len;
	memcpy(&id, elem, 4);
	memcpy(&len, elem + 4, 4);
	e->last_used[0]++;
	CHECK(id < RX_BUFS);
	CHECK(len >= VSOCK_HDR_LEN && len <= RX_BUF_SIZE);
	const uint8_t *buf = e->v.ram + RX_DATA + (uint64_t)id * RX_BUF_SIZE;
	memcpy(h, buf, sizeof(*h));
	CHECK_EQ(h->len, len - VSOCK_HDR_LEN);
	CHECK_EQ(h->src_cid, VSOCK_CID_HOST);
	CHECK_EQ(h->dst_cid, CID);
	CHECK_EQ(h->type, VSOCK_TYPE_STREAM);
	if (data)
		memcpy(data, buf + VSOCK_HDR_LEN, h->len < cap ? h->len : cap);
	rx_post(e, (uint16_t)id);
	fake_vplat_kick(e->d, VSOCK_QUEUE_RX);
	return true;
}

static bool no_pkt(struct env *e)
{
	struct vsock_hdr h;
	return !recv_pkt(e, &h, NULL, 0, 5);
}

/* ---- the host's side ---- */

static int host_listen(struct env *e, uint32_t port)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	snprintf(a.sun_path, sizeof(a.sun_path), "%s_%u", e->path, port);
	unlink(a.sun_path); /* an earlier test's */
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK(fd >= 0);
	CHECK_EQ(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	CHECK_EQ(listen(fd, 4), 0);
	return fd;
}

static int host_connect(struct env *e)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", e->path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK(fd >= 0);
	CHECK_EQ(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return fd;
}

static ssize_t host_read(int fd, void *buf, size_t len)
{
	return recv(fd, buf, len, MSG_DONTWAIT);
}

/* The device closed its end (unread bytes there make it a reset). */
static bool host_closed(int fd)
{
	char b[64];
	ssize_t n = recv(fd, b, sizeof(b), MSG_DONTWAIT);
	return n == 0 || (n < 0 && errno == ECONNRESET);
}

static struct vsock_stats stats(struct env *e)
{
	struct vsock_stats s;
	vsock_get_stats(e->vs, &s);
	return s;
}

/* A guest connection to host port 1234, accepted: returns the host's fd. */
static int guest_connects(struct env *e, uint32_t gport)
{
	int l = host_listen(e, 1234);
	send_pkt(e, hdr(gport, 1234, VSOCK_OP_REQUEST), NULL, 0);
	struct vsock_hdr h;
	CHECK(recv_pkt(e, &h, NULL, 0, 5));
	CHECK_EQ(h.op, VSOCK_OP_RESPONSE);
	CHECK_EQ(h.src_port, 1234);
	CHECK_EQ(h.dst_port, gport);
	CHECK_EQ(h.buf_alloc, VSOCK_BUF_ALLOC);
	int fd = accept(l, NULL, NULL);
	CHECK(fd >= 0);
	close(l);
	return fd;
}

/* ---- tests ---- */

static void test_guest_connect_data_shutdown(void)
{
	struct env e;
	if (!env_start(&e))
		return;
	int fd = guest_connects(&e, 5000);
	CHECK_EQ(stats(&e).conns, 1);

	send_pkt(&e, hdr(5000, 1234, VSOCK_OP_RW), "hello", 5);
	char buf[64] = { 0 };
	CHECK_EQ(host_read(fd, buf, sizeof(buf)), 5);
	CHECK_STREQ(buf, "hello");

	CHECK_EQ(write(fd, "world!", 6), 6);
	struct vsock_hdr h;
	memset(buf, 0, sizeof(buf));
	CHECK(recv_pkt(&e, &h, buf, sizeof(buf), 5));
	CHECK_EQ(h.op, VSOCK_OP_RW);
	CHECK_EQ(h.len, 6);
	CHECK_EQ(h.dst_port, 5000);
	CHECK_EQ(h.fwd_cnt, 5); /* the 5 bytes the socket took */
	CHECK_STREQ(buf, "world!");

	/* 5.10.6.5: the guest shuts both directions; the host sees the end
	 * and the guest gets its RST */
	struct vsock_hdr s = hdr(5000, 1234, VSOCK_OP_SHUTDOWN);
	s.flags = VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND;
	send_pkt(&e, s, NULL, 0);
	CHECK(recv_pkt(&e, &h, NULL, 0, 5));
	CHECK_EQ(h.op, VSOCK_OP_RST);
	CHECK_EQ(host_read(fd, buf, sizeof(buf)), 0);
	CHECK_EQ(stats(&e).conns, 0);
	close(fd);
	env_destroy(&e);
}

static void test_host_connect(void)
{
	struct env e;
	if (!env_start(&e))
		return;
	int fd = host_connect(&e);
	CHECK_EQ(write(fd, "CONNECT 52\n", 11), 11);
	struct vsock_hdr h;
	CHECK(recv_pkt(&e, &h, NULL, 0, 10));
	CHECK_EQ(h.op, VSOCK_OP_REQUEST);
	CHECK_EQ(h.dst_port, 52);
	CHECK(h.src_port >= VSOCK_HOST_PORT_BASE);
	uint32_t hp = h.src_port;

	struct vsock_hdr r = hdr(52, hp, VSOCK_OP_RESPONSE);
	send_pkt(&e, r, NULL, 0);
	char buf[64] = { 0 }, want[32];
	snprintf(want, sizeof(want), "OK %u\n", hp);
	CHECK_EQ(host_read(fd, buf, sizeof(buf)), (ssize_t)strlen(want));
	CHECK_STREQ(buf, want);

	/* both ways */
	CHECK_EQ(write(fd, "ping", 4), 4);
	memset(buf, 0, sizeof(buf));
	CHECK(recv_pkt(&e, &h, buf, sizeof(buf), 5));
	CHECK_EQ(h.op, VSOCK_OP_RW);
	CHECK_STREQ(buf, "ping");
	send_pkt(&e, hdr(52, hp, VSOCK_OP_RW), "pong", 4);
	memset(buf, 0, sizeof(buf));
	CHECK_EQ(host_read(fd, buf, sizeof(buf)), 4);
	CHECK_STREQ(buf, "pong");

	/* the host closes: SHUTDOWN(SEND) to the guest; the guest closes
	 * its end too and gets its RST */
	close(fd);
	CHECK(recv_pkt(&e, &h, NULL, 0, 5));
	CHECK_EQ(h.op, VSOCK_OP_SHUTDOWN);
	CHECK(h.flags & VSOCK_SHUTDOWN_SEND);
	struct vsock_hdr s = hdr(52, hp, VSOCK_OP_SHUTDOWN);
	s.flags = VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND;
	send_pkt(&e, s, NULL, 0);
	CHECK(recv_pkt(&e, &h, NULL, 0, 5));
	CHECK_EQ(h.op, VSOCK_OP_RST);
	CHECK_EQ(stats(&e).conns, 0);
	env_destroy(&e);
}

static void test_host_connect_refused(void)
{
	struct env e;
	if (!env_start(&e))
		return;
	/* the guest has no listener: it answers RST, the host sees EOF */
	int fd = host_connect(&e);
	CHECK_EQ(write(fd, "CONNECT 99\n", 11), 11);
	struct vsock_hdr h;
	CHECK(recv_pkt(&e, &h, NULL, 0, 10));
	CHECK_EQ(h.op, VSOCK_OP_REQUEST);
	send_pkt(&e, hdr(99, h.src_port, VSOCK_OP_RST), NULL, 0);
	char buf[16];
	CHECK_EQ(host_read(fd, buf, sizeof(buf)), 0);
	close(fd);

	/* a bad handshake line is closed without a word to the guest */
	const char *bad[] = { "HELLO\n", "CONNECT\n", "CONNECT 4294967296\n", "CONNECT 1x\n",
			      "CONNECT 123456789012345678901234567890\n" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		fd = host_connect(&e);
		CHECK_EQ(write(fd, bad[i], strlen(bad[i])), (ssize_t)strlen(bad[i]));
		run(&e, 3);
		CHECK(host_closed(fd));
		close(fd);
	}
	CHECK(no_pkt(&e));
	env_destroy(&e);
}

static void test_rst_unknown(void)
{
	struct env e;
	if (!env_start(&e))
		return;
	struct vsock_hdr h;
	/* no Unix socket PATH_7 */
	send_pkt(&e, hdr(6000, 7, VSOCK_OP_REQUEST), NULL, 0);
	CHECK(recv_pkt(&e, &h, NULL, 0, 5));
	CHECK_EQ(h.op, VSOCK_OP_RST);
	CHECK_EQ(h.src_port, 7);
	CHECK_EQ(h.dst_port, 6000);
	/* data, shutdown and credit for no connection: RST each */
	uint16_t ops[] = { VSOCK_OP_RW, VSOCK_OP_SHUTDOWN, VSOCK_OP_CREDIT_UPDATE,
			   VSOCK_OP_RESPONSE };
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		send_pkt(&e, hdr(6001, 8, ops[i]), "x", ops[i] == VSOCK_OP_RW);
		CHECK(recv_pkt(&e, &h, NULL, 0, 5));
		CHECK_EQ(h.op, VSOCK_OP_RST);
	}
	/* an RST for no connection is not answered */
	send_pkt(&e, hdr(6001, 8, VSOCK_OP_RST), NULL, 0);
	CHECK(no_pkt(&e));
	CHECK_EQ(stats(&e).resets_sent, 5);
	env_destroy(&e);
}

/* Host -> guest: never more than the guest's buf_alloc in flight. */
static void test_credit_to_guest(void)
{
	struct env e;
	if (!env_start(&e))
		return;
	int l = host_listen(&e, 1234);
	struct vsock_hdr req = hdr(5001, 1234, VSOCK_OP_REQUEST);
	req.buf_alloc = 5000;
	send_pkt(&e, req, NULL, 0);
	struct vsock_hdr h;
	CHECK(recv_pkt(&e, &h, NULL, 0, 5));
	CHECK_EQ(h.op, VSOCK_OP_RESPONSE);
	int fd = accept(l, NULL, NULL);
	close(l);
	static uint8_t data[12000], got[12000];
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 7 + 3);
	CHECK_EQ(write(fd, data, sizeof(data)), (ssize_t)sizeof(data));
	uint32_t total = 0;
	while (recv_pkt(&e, &h, got + total, sizeof(got) - total, 5)) {
		CHECK_EQ(h.op, VSOCK_OP_RW);
		total += h.len;
	}
	CHECK_EQ(total, 5000); /* stopped at the credit */
	/* the guest's reader took 3000: its CREDIT_UPDATE lets 3000 more go */
	struct vsock_hdr cu = hdr(5001, 1234, VSOCK_OP_CREDIT_UPDATE);
	cu.buf_alloc = 5000;
	cu.fwd_cnt = 3000;
	send_pkt(&e, cu, NULL, 0);
	while (recv_pkt(&e, &h, got + total, sizeof(got) - total, 5))
		total += h.len;
	CHECK_EQ(total, 8000);
	/* hostile counters (fwd_cnt beyond what was sent) give no credit */
	cu.fwd_cnt = 100000;
	cu.buf_alloc = 1000;
	send_pkt(&e, cu, NULL, 0);
	CHECK(no_pkt(&e));
	cu.fwd_cnt = 8000;
	cu.buf_alloc = 1u << 20;
	send_pkt(&e, cu, NULL, 0);
	while (recv_pkt(&e, &h, got + total, sizeof(got) - total, 5))
		total += h.len;
	CHECK_EQ(total, sizeof(data));
	CHECK(memcmp(got, data, sizeof(data)) == 0);
	/* a CREDIT_REQUEST is answered with the device's counters */
	send_pkt(&e, hdr(5001, 1234, VSOCK_OP_CREDIT_REQUEST), NULL, 0);
	CHECK(recv_pkt(&e, &h, NULL, 0, 5));
	CHECK_EQ(h.op, VSOCK_OP_CREDIT_UPDATE);
	CHECK_EQ(h.buf_alloc, VSOCK_BUF_ALLOC);
	CHECK_EQ(h.fwd_cnt, 0);
	close(fd);
	env_destroy(&e);
}

/* Guest -> host: a backlog the socket cannot take yet is kept up to the
 * credit, written out as the host reads, and announced; beyond the credit
 * the connection is reset. */
static void test_credit_from_guest(void)
{
	struct env e;
	if (!env_start(&e))
		return;
	int fd = guest_connects(&e, 5002);
	static uint8_t pkt[VSOCK_MAX_PAYLOAD];
	memset(pkt, 0xab, sizeof(pkt));
	struct vsock_hdr h;
	uint64_t sent = 0;
	bool reset = false;
	for (int i = 0; i < 64 && !reset; i++) {
		send_pkt(&e, hdr(5002, 1234, VSOCK_OP_RW), pkt, sizeof(pkt));
		sent += sizeof(pkt);
		while (recv_pkt(&e, &h, NULL, 0, 1))
			reset |= h.op == VSOCK_OP_RST;
	}
	CHECK(reset);
	/* reset once the socket's buffer and the credit were both full */
	CHECK(sent > VSOCK_BUF_ALLOC);
	uint64_t got = 0;
	static uint8_t buf[1 << 16];
	ssize_t n;
	while ((n = host_read(fd, buf, sizeof(buf))) > 0)
		got += (uint64_t)n;
	CHECK_EQ(n, 0); /* closed by the reset */
	CHECK(got < sent);
	CHECK(got + VSOCK_BUF_ALLOC + sizeof(pkt) >= sent);
	close(fd);

	/* within the credit: the backlog drains as the host reads, and the
	 * guest hears the new fwd_cnt */
	fd = guest_connects(&e, 5003);
	uint32_t total = 0, fwd = 0;
	for (int i = 0; i < 3; i++) {
		send_pkt(&e, hdr(5003, 1234, VSOCK_OP_RW), pkt, sizeof(pkt));
		total += sizeof(pkt);
	}
	got = 0;
	for (int r = 0; r < 200 && got < total; r++) {
		while ((n = host_read(fd, buf, sizeof(buf))) > 0)
			got += (uint64_t)n;
		run(&e, 1);
		while (recv_pkt(&e, &h, NULL, 0, 0))
			if (h.op == VSOCK_OP_CREDIT_UPDATE)
				fwd = h.fwd_cnt;
	}
	CHECK_EQ(got, total);
	while (recv_pkt(&e, &h, NULL, 0, 3))
		if (h.op == VSOCK_OP_CREDIT_UPDATE)
			fwd = h.fwd_cnt;
	CHECK_EQ(fwd, total);
	close(fd);
	env_destroy(&e);
}

/* Half close: the guest stops sending; the host reads its end, answers
 * and closes, and the guest hears SHUTDOWN(SEND) after the answer. */
static void test_half_close(void)
{
	struct env e;
	if (!env_start(&e))
		return;
	int fd = guest_connects(&e, 5004);
	send_pkt(&e, hdr(5004, 1234, VSOCK_OP_RW), "question", 8);
	struct vsock_hdr s = hdr(5004, 1234, VSOCK_OP_SHUTDOWN);
	s.flags = VSOCK_SHUTDOWN_SEND;
	send_pkt(&e, s, NULL, 0);
	char buf[32] = { 0 };
	CHECK_EQ(host_read(fd, buf, sizeof(buf)), 8);
	CHECK_EQ(host_read(fd, buf, sizeof(buf)), 0); /* SHUT_WR reached the host */
	CHECK_EQ(write(fd, "answer", 6), 6);
	close(fd);
	struct vsock_hdr h;
	memset(buf, 0, sizeof(buf));
	CHECK(recv_pkt(&e, &h, buf, sizeof(buf), 5));
	CHECK_EQ(h.op, VSOCK_OP_RW);
	CHECK_STREQ(buf, "answer");
	CHECK(recv_pkt(&e, &h, NULL, 0, 5));
	CHECK_EQ(h.op, VSOCK_OP_SHUTDOWN);
	CHECK_EQ(h.flags, VSOCK_SHUTDOWN_SEND);
	env_destroy(&e);
}

/* Hostile packets are dropped and counted; the device stays live. */
static void test_malformed_packets(void)
{
	struct env e;
	if (!env_start(&e))
		return;
	int fd = guest_connects(&e, 5005);
	uint64_t bad = stats(&e).bad_packets;
	struct vsock_hdr h = hdr(5005, 1234, VSOCK_OP_RW);
	/* shorter than a header */
	send_raw(&e, &h, 20, NULL, 0, true);
	/* len beyond the chain */
	h.len = 100;
	send_raw(&e, &h, sizeof(h), "abc", 3, true);
	/* len above 64 KiB */
	h.len = VSOCK_MAX_PAYLOAD + 1;
	send_raw(&e, &h, sizeof(h), "abc", 3, true);
	/* not from the guest's CID, or not to the host */
	struct vsock_hdr w = hdr(5005, 1234, VSOCK_OP_RW);
	w.src_cid = CID + 1;
	send_pkt(&e, w, "spoof", 5);
	w = hdr(5005, 1234, VSOCK_OP_RW);
	w.dst_cid = 7;
	send_pkt(&e, w, "spoof", 5);
	CHECK_EQ(stats(&e).bad_packets, bad + 5);
	char buf[16];
	CHECK_EQ(host_read(fd, buf, sizeof(buf)), -1); /* nothing reached the host */
	CHECK(no_pkt(&e));
	/* a device-writable buffer in a tx chain */
	uint64_t gpa = TX_DATA;
	h = hdr(5005, 1234, VSOCK_OP_RW);
	memcpy(e.v.ram + gpa, &h, sizeof(h));
	fake_vring_desc(e.v.ram, RING_BASE(1), e.tx_desc, gpa, sizeof(h), F_WRITE, 0);
	avail_add(&e, 1, e.tx_desc);
	e.tx_desc = (uint16_t)((e.tx_desc + 1) % QSIZE);
	fake_vplat_kick(e.d, VSOCK_QUEUE_TX);
	run(&e, 1);
	CHECK_EQ(stats(&e).bad_packets, bad + 6);
	/* an unknown type on a connection resets it */
	struct vsock_hdr t = hdr(5005, 1234, VSOCK_OP_RW);
	t.type = 2;
	send_pkt(&e, t, "x", 1);
	struct vsock_hdr r;
	CHECK(recv_pkt(&e, &r, NULL, 0, 5));
	CHECK_EQ(r.op, VSOCK_OP_RST);
	CHECK_EQ(host_read(fd, buf, sizeof(buf)), 0);
	close(fd);
	/* an unknown op on a connection resets it too */
	fd = guest_connects(&e, 5006);
	send_pkt(&e, hdr(5006, 1234, 99), NULL, 0);
	CHECK(recv_pkt(&e, &r, NULL, 0, 5));
	CHECK_EQ(r.op, VSOCK_OP_RST);
	close(fd);
	CHECK(virtio_dev_live(e.d));
	env_destroy(&e);
}

/* A malformed ring (a descriptor index past the queue) puts the device in
 * NEEDS_RESET; a driver reset brings it back with no connection left. */
static void test_malformed_ring_and_reset(void)
{
	struct env e;
	if (!env_start(&e))
		return;
	int fd = guest_connects(&e, 5007);
	fake_vring_desc(e.v.ram, RING_BASE(1), e.tx_desc, TX_DATA, 64, F_NEXT, 1000);
	avail_add(&e, 1, e.tx_desc);
	fake_vplat_kick(e.d, VSOCK_QUEUE_TX);
	run(&e, 1);
	CHECK(e.d->status & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	CHECK_EQ(stats(&e).needs_reset, 1);
	CHECK(e.v.config_signals >= 1);
	pthread_mutex_lock(&e.d->lock);
	virtio_dev_set_status(e.d, 0);
	pthread_mutex_unlock(&e.d->lock);
	char buf[8];
	CHECK_EQ(host_read(fd, buf, sizeof(buf)), 0); /* the reset closed it */
	CHECK_EQ(stats(&e).conns, 0);
	close(fd);
	env_destroy(&e);

	/* an rx buffer the device may not write */
	if (!env_start(&e))
		return;
	fd = guest_connects(&e, 5008);
	/* swap every posted rx buffer for a readable one */
	for (uint16_t i = 0; i < RX_BUFS; i++)
		fake_vring_desc(e.v.ram, RING_BASE(0), i, RX_DATA + (uint64_t)i * RX_BUF_SIZE,
				RX_BUF_SIZE, 0, 0);
	CHECK_EQ(write(fd, "x", 1), 1);
	run(&e, 3);
	CHECK(e.d->status & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	close(fd);
	env_destroy(&e);
}

static void test_backend_choice(void)
{
	struct env e;
	int rc;
	bool have_vhost = access("/dev/vhost-vsock", F_OK) == 0;
	/* userspace without a socket path */
	CHECK(!env_create(&e, VSOCK_BACKEND_USERSPACE, false, &rc));
	CHECK_EQ(rc, -EINVAL);
	if (have_vhost) {
		printf("  /dev/vhost-vsock exists: the no-vhost fallbacks are the nested lane's\n");
		return;
	}
	/* vhost asked for where there is none */
	CHECK(!env_create(&e, VSOCK_BACKEND_VHOST, true, &rc));
	CHECK_EQ(rc, -ENOENT);
	/* auto falls back to userspace, which needs the path */
	CHECK(!env_create(&e, VSOCK_BACKEND_AUTO, false, &rc));
	CHECK_EQ(rc, -ENOENT);
	if (env_create(&e, VSOCK_BACKEND_AUTO, true, &rc)) {
		CHECK(!stats(&e).vhost);
		/* 5.10.4: the config space holds the guest's CID */
		uint64_t cid = 0;
		pthread_mutex_lock(&e.d->lock);
		virtio_dev_config_read(e.d, 0, &cid, 8);
		pthread_mutex_unlock(&e.d->lock);
		CHECK_EQ(cid, CID);
		CHECK_EQ(e.d->device_id, VIRTIO_ID_VSOCK);
		env_destroy(&e);
	}
	CHECK_EQ(rc, 0);
	/* a stale socket file is replaced; a regular file is not */
	char dir[] = "/tmp/kvmrun-vsock-XXXXXX", path[64];
	CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/file", dir);
	int f = open(path, O_CREAT | O_WRONLY, 0600);
	close(f);
	struct fake_vplat v;
	fake_vplat_init(&v, RAM_SIZE, true);
	struct vsock *vs;
	struct vsock_params p = { .cid = 3, .backend = VSOCK_BACKEND_USERSPACE, .uds = path,
				  .plat = &v.plat };
	CHECK_EQ(vsock_create(&p, &vs), -EEXIST);
	p.cid = 2;
	CHECK_EQ(vsock_create(&p, &vs), -EINVAL);
	unlink(path);
	rmdir(dir);
	fake_vplat_fini(&v);
}

int main(void)
{
	RUN(test_guest_connect_data_shutdown);
	RUN(test_host_connect);
	RUN(test_host_connect_refused);
	RUN(test_rst_unknown);
	RUN(test_credit_to_guest);
	RUN(test_credit_from_guest);
	RUN(test_half_close);
	RUN(test_malformed_packets);
	RUN(test_malformed_ring_and_reset);
	RUN(test_backend_choice);
	return unit_done();
}
