/* net: a virtio-net driver (VIRTIO 1.2 section 5.1) with just enough IPv4
 * to be pinged: it answers ARP requests for its address and ICMP echo
 * requests (same id, sequence and payload; checksums computed here, no
 * offloads negotiated), sends a gratuitous ARP at start and can send a
 * burst of UDP frames for a throughput test.
 *
 * Command line:
 *   transport=pci|mmio   which transport to look on
 *   net.ip=A.B.C.D       its address (default 10.0.2.15)
 *   net.send=N           send N UDP frames to net.peer (default 0)
 *   net.peer=A.B.C.D     their destination (default 10.0.2.2); its MAC is
 *                        resolved by ARP (broadcast if no answer in 1 s)
 *   net.port=P           UDP destination port (default 9, discard)
 *   net.size=B           UDP payload bytes (default 1024, at most 1472)
 *   net.send_delay_ms=D  send them D ms after start (default 0), answering
 *                        ARP and ping meanwhile
 *   net.seconds=S        power off after S seconds (default: run forever)
 *
 * Output: `net: mac=52:54:00:12:34:56 mtu=M hdr_len=12 mrg_rxbuf=1`,
 * `net: link up` / `net: link down` (at start and on each change, with
 * VIRTIO_NET_F_STATUS), `net: ip=10.0.2.15`, `net: sent gratuitous arp`,
 * `net: arp reply to A.B.C.D`, `net: icmp echo reply to A.B.C.D seq=N`
 * (the first 20 of each), `net: sent N udp frames to A.B.C.D in T ms`,
 * `irq: ...` after the first received frame, and at the end
 * `net: rx=N tx=N arp_replies=N icmp_replies=N dropped=N`. */
#include "guest.h"
#include "mem.h"
#include "virtio.h"

#define VIRTIO_ID_NET 1

#define NET_F_MTU 3
#define NET_F_MAC 5
#define NET_F_MRG_RXBUF 15
#define NET_F_STATUS 16

#define NET_CFG_MAC 0
#define NET_CFG_STATUS 6
#define NET_CFG_MTU 10
#define NET_S_LINK_UP 1

#define RXQ 0
#define TXQ 1
#define RX_BUFS 64
#define TX_BUFS 32
#define BUF_SIZE 2048
#define FRAME_MAX 1514
#define LOG_MAX 20
#define IRQ_VECTOR 0x52

#define ETH_ARP 0x0806
#define ETH_IP 0x0800

struct net_hdr { /* virtio_net_hdr (5.1.6) */
	uint8_t flags, gso_type;
	uint16_t hdr_len, gso_size, csum_start, csum_offset, num_buffers;
} __attribute__((packed));

static struct virtio_dev dev;
static struct virtq rxq, txq;
static uint8_t *rx_mem, *tx_mem, frame[BUF_SIZE * 2];
static int tx_slot_of[VIRTQ_MAX]; /* tx head id -> buffer slot */
static uint8_t rx_slot_of[VIRTQ_MAX]; /* rx head id -> buffer slot */
static bool tx_busy[TX_BUFS];
static unsigned hdr_len;
static uint8_t mac[6], ip[4], peer[4], peer_mac[6];
static bool peer_known;
static struct {
	uint64_t rx, tx, arp, icmp, dropped;
} cnt;
static bool irq_reported;

static uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static uint16_t csum(const uint8_t *p, unsigned len)
{
	uint32_t s = 0;

	for (; len > 1; p += 2, len -= 2)
		s += be16(p);
	if (len)
		s += (uint32_t)p[0] << 8;
	while (s >> 16)
		s = (s & 0xFFFF) + (s >> 16);
	return (uint16_t)~s;
}

static bool parse_ip(const char *s, uint8_t out[4])
{
	for (int i = 0; i < 4; i++) {
		unsigned v = 0, digits = 0;

		while (*s >= '0' && *s <= '9' && digits < 4) {
			v = v * 10 + (unsigned)(*s++ - '0');
			digits++;
		}
		if (!digits || v > 255 || (i < 3 && *s++ != '.'))
			return false;
		out[i] = (uint8_t)v;
	}
	return *s == '\0';
}

static void rx_post(unsigned slot)
{
	struct vq_buf b = vq_wr(rx_mem + slot * BUF_SIZE, BUF_SIZE);
	int head = virtq_add(&rxq, &b, 1, false);

	if (head >= 0)
		rx_slot_of[head] = (uint8_t)slot;
}

static void tx_reclaim(void)
{
	uint32_t id, len;

	while (virtq_get(&txq, &id, &len))
		if (id < VIRTQ_MAX && tx_slot_of[id] >= 0) {
			tx_busy[tx_slot_of[id]] = false;
			tx_slot_of[id] = -1;
		}
}

/* Queues one frame (header prepended here); waits for a free slot. */
static bool tx_send(const uint8_t *f, unsigned len)
{
	uint64_t start = rdtsc(), limit = time_ms_to_tsc(2000);
	int slot = -1, head;

	for (;;) {
		tx_reclaim();
		for (int i = 0; i < TX_BUFS && slot < 0; i++)
			if (!tx_busy[i])
				slot = i;
		if (slot >= 0)
			break;
		if (rdtsc() - start > limit) {
			printf("net: tx ring stuck\n");
			return false;
		}
		cpu_relax();
	}
	uint8_t *buf = tx_mem + slot * BUF_SIZE;

	memset(buf, 0, hdr_len);
	memcpy(buf + hdr_len, f, len);
	struct vq_buf b = vq_rd(buf, hdr_len + len);

	head = virtq_add(&txq, &b, 1, false);
	if (head < 0)
		return false;
	tx_busy[slot] = true;
	tx_slot_of[head] = slot;
	virtq_kick(&txq);
	cnt.tx++;
	return true;
}

static unsigned eth_hdr(uint8_t *f, const uint8_t dst[6], uint16_t type)
{
	memcpy(f, dst, 6);
	memcpy(f + 6, mac, 6);
	put16(f + 12, type);
	return 14;
}

static void arp_send(uint16_t op, const uint8_t dst_mac[6], const uint8_t tha[6],
		     const uint8_t tpa[4])
{
	uint8_t f[64];
	unsigned n = eth_hdr(f, dst_mac, ETH_ARP);
	uint8_t *a = f + n;

	put16(a, 1);
	put16(a + 2, ETH_IP);
	a[4] = 6;
	a[5] = 4;
	put16(a + 6, op);
	memcpy(a + 8, mac, 6);
	memcpy(a + 14, ip, 4);
	memcpy(a + 18, tha, 6);
	memcpy(a + 24, tpa, 4);
	memset(a + 28, 0, 60 - n - 28); /* pad to the 60-byte minimum */
	tx_send(f, 60);
}

static void ip_fmt(char *s, const uint8_t a[4])
{
	snprintf(s, 16, "%u.%u.%u.%u", a[0], a[1], a[2], a[3]);
}

static void handle_arp(const uint8_t *f, unsigned len)
{
	const uint8_t *a = f + 14;
	char s[16];

	if (len < 14 + 28 || be16(a) != 1 || be16(a + 2) != ETH_IP || a[4] != 6 || a[5] != 4)
		return;
	if (be16(a + 6) == 2 && peer_known == false && !memcmp(a + 14, peer, 4)) {
		memcpy(peer_mac, a + 8, 6);
		peer_known = true;
		return;
	}
	if (be16(a + 6) != 1 || memcmp(a + 24, ip, 4))
		return;
	arp_send(2, a + 8, a + 8, a + 14);
	if (cnt.arp++ < LOG_MAX) {
		ip_fmt(s, a + 14);
		printf("net: arp reply to %s\n", s);
	}
}

static void handle_ip(const uint8_t *f, unsigned len)
{
	const uint8_t *h = f + 14;
	unsigned ihl, total;
	uint8_t out[FRAME_MAX];
	char s[16];

	if (len < 14 + 20 || (h[0] >> 4) != 4)
		return;
	ihl = (h[0] & 15) * 4u;
	total = be16(h + 2);
	if (ihl < 20 || total < ihl + 8 || 14 + total > len || memcmp(h + 16, ip, 4) || h[9] != 1)
		return;
	if (csum(h, ihl) != 0) {
		cnt.dropped++;
		return;
	}
	const uint8_t *icmp = h + ihl;
	unsigned ilen = total - ihl;

	if (icmp[0] != 8 || csum(icmp, ilen) != 0)
		return;
	/* echo reply: same IP header with addresses swapped, ICMP type 0 */
	memcpy(out, f + 6, 6);
	memcpy(out + 6, mac, 6);
	put16(out + 12, ETH_IP);
	uint8_t *oh = out + 14;

	memcpy(oh, h, ihl);
	memcpy(oh + 12, h + 16, 4);
	memcpy(oh + 16, h + 12, 4);
	oh[8] = 64;
	put16(oh + 10, 0);
	put16(oh + 10, csum(oh, ihl));
	uint8_t *oi = oh + ihl;

	memcpy(oi, icmp, ilen);
	oi[0] = 0;
	put16(oi + 2, 0);
	put16(oi + 2, csum(oi, ilen));
	unsigned n = 14 + total;

	if (n < 60) {
		memset(out + n, 0, 60 - n);
		n = 60;
	}
	tx_send(out, n);
	if (cnt.icmp++ < LOG_MAX) {
		ip_fmt(s, h + 12);
		printf("net: icmp echo reply to %s seq=%u\n", s, be16(icmp + 6));
	}
}

static void handle_frame(const uint8_t *f, unsigned len)
{
	static const uint8_t bcast[6] = { 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF };

	cnt.rx++;
	if (len < 14 || (memcmp(f, mac, 6) && memcmp(f, bcast, 6)))
		return;
	switch (be16(f + 12)) {
	case ETH_ARP:
		handle_arp(f, len);
		break;
	case ETH_IP:
		handle_ip(f, len);
		break;
	}
}

/* Takes every received frame (gathering MRG_RXBUF pieces) and reposts
 * the buffers. */
static void rx_poll(void)
{
	uint32_t id, len;
	bool any = false;

	while (virtq_get(&rxq, &id, &len)) {
		unsigned slot = rx_slot_of[id % VIRTQ_MAX];
		const uint8_t *buf = rx_mem + slot * BUF_SIZE;
		const struct net_hdr *nh = (const struct net_hdr *)buf;
		unsigned nbuf = virtio_has(&dev, NET_F_MRG_RXBUF) ? nh->num_buffers : 1;
		unsigned flen = 0;
		bool ok = len >= hdr_len && len <= BUF_SIZE && nbuf >= 1;

		any = true;
		if (ok) {
			flen = len - hdr_len;
			memcpy(frame, buf + hdr_len, flen);
		}
		rx_post(slot);
		for (unsigned i = 1; i < nbuf; i++) {
			uint64_t start = rdtsc();

			while (!virtq_get(&rxq, &id, &len))
				if (rdtsc() - start > time_ms_to_tsc(100))
					break;
			slot = rx_slot_of[id % VIRTQ_MAX];
			if (ok && len <= BUF_SIZE && flen + len <= sizeof(frame))
				memcpy(frame + flen, rx_mem + slot * BUF_SIZE, len);
			else
				ok = false;
			flen += len;
			rx_post(slot);
		}
		if (!ok) {
			cnt.dropped++;
			continue;
		}
		handle_frame(frame, flen);
		if (!irq_reported) {
			virtio_irq_report(&dev, RXQ);
			irq_reported = true;
			rxq.hold_used_event = false;
		}
	}
	if (any)
		virtq_kick(&rxq);
}

static void link_check(bool *up, bool force)
{
	bool now;

	if (!virtio_has(&dev, NET_F_STATUS))
		return;
	now = virtio_cfg_read16(&dev, NET_CFG_STATUS) & NET_S_LINK_UP;
	if (force || now != *up)
		printf("net: link %s\n", now ? "up" : "down");
	*up = now;
}

static void send_udp(uint64_t count)
{
	static const uint8_t bcast[6] = { 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF };
	static const uint8_t zero[6];
	unsigned size = (unsigned)cmdline_get_u64("net.size", 1024);
	uint16_t port = (uint16_t)cmdline_get_u64("net.port", 9);
	uint8_t f[FRAME_MAX];
	char s[16];
	uint64_t start;

	if (size > 1472)
		size = 1472;
	arp_send(1, bcast, zero, peer);
	start = rdtsc();
	while (!peer_known && rdtsc() - start < time_ms_to_tsc(1000))
		rx_poll();
	ip_fmt(s, peer);
	if (!peer_known)
		printf("net: no arp reply from %s, sending to broadcast\n", s);
	unsigned n = eth_hdr(f, peer_known ? peer_mac : bcast, ETH_IP);
	uint8_t *h = f + n, *u = h + 20;

	memset(h, 0, 28);
	h[0] = 0x45;
	put16(h + 2, (uint16_t)(28 + size));
	h[6] = 0x40; /* don't fragment */
	h[8] = 64;
	h[9] = 17;
	memcpy(h + 12, ip, 4);
	memcpy(h + 16, peer, 4);
	put16(u, 40000);
	put16(u + 2, port);
	put16(u + 4, (uint16_t)(8 + size));
	for (unsigned i = 0; i < size; i++)
		u[8 + i] = (uint8_t)i;
	start = rdtsc();
	for (uint64_t i = 0; i < count; i++) {
		put16(h + 4, (uint16_t)i);
		put16(h + 10, 0);
		put16(h + 10, csum(h, 20));
		if (!tx_send(f, n + 28 + size))
			break;
		rx_poll();
	}
	uint64_t ms = (rdtsc() - start) / time_ms_to_tsc(1);

	printf("net: sent %lu udp frames to %s in %lu ms\n", count, s, ms);
}

int guest_main(void)
{
	uint64_t want = VIRTIO_BIT(NET_F_MAC) | VIRTIO_BIT(NET_F_STATUS) | VIRTIO_BIT(NET_F_MRG_RXBUF) |
			VIRTIO_BIT(NET_F_MTU);
	char buf[32] = "10.0.2.15", s[16];
	uint64_t seconds = cmdline_get_u64("net.seconds", 0), start;
	bool up = false;

	if (!mem_init()) {
		printf("net: FAIL no memory map in start_info\n");
		return EXIT_FAIL;
	}
	cmdline_get("net.ip", buf, sizeof(buf));
	if (!parse_ip(buf, ip)) {
		printf("net: FAIL bad net.ip=%s\n", buf);
		return EXIT_FAIL;
	}
	memcpy(buf, "10.0.2.2", 9);
	cmdline_get("net.peer", buf, sizeof(buf));
	if (!parse_ip(buf, peer)) {
		printf("net: FAIL bad net.peer=%s\n", buf);
		return EXIT_FAIL;
	}
	if (!virtio_find(VIRTIO_ID_NET, 0, &dev)) {
		printf("net: FAIL no virtio-net device\n");
		return EXIT_FAIL;
	}
	if (!virtio_negotiate(&dev, want)) {
		printf("net: FAIL feature negotiation\n");
		return EXIT_FAIL;
	}
	hdr_len = virtio_has(&dev, VIRTIO_F_VERSION_1) || virtio_has(&dev, NET_F_MRG_RXBUF) ? 12 : 10;
	if (virtio_has(&dev, NET_F_MAC)) {
		for (unsigned i = 0; i < 6; i++)
			mac[i] = virtio_cfg_read8(&dev, NET_CFG_MAC + i);
	} else {
		static const uint8_t fallback[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };

		memcpy(mac, fallback, 6);
	}
	printf("net: mac=%02x:%02x:%02x:%02x:%02x:%02x mtu=%u hdr_len=%u mrg_rxbuf=%d\n", mac[0], mac[1],
	       mac[2], mac[3], mac[4], mac[5],
	       virtio_has(&dev, NET_F_MTU) ? virtio_cfg_read16(&dev, NET_CFG_MTU) : 1500, hdr_len,
	       virtio_has(&dev, NET_F_MRG_RXBUF));

	virtio_irq_arm(&dev, RXQ, IRQ_VECTOR);
	if (virtq_setup(&dev, RXQ, &rxq, RX_BUFS) || virtq_setup(&dev, TXQ, &txq, TX_BUFS * 2)) {
		printf("net: FAIL queue setup\n");
		return EXIT_FAIL;
	}
	rxq.hold_used_event = true; /* until the interrupt check */
	rx_mem = mem_alloc(RX_BUFS * BUF_SIZE / PAGE_SIZE);
	tx_mem = mem_alloc(TX_BUFS * BUF_SIZE / PAGE_SIZE);
	for (unsigned i = 0; i < VIRTQ_MAX; i++)
		tx_slot_of[i] = -1;
	for (unsigned i = 0; i < RX_BUFS && i < rxq.size; i++)
		rx_post(i);
	virtio_driver_ok(&dev);
	virtq_kick(&rxq);
	link_check(&up, true);
	ip_fmt(s, ip);
	printf("net: ip=%s\n", s);

	static const uint8_t bcast[6] = { 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF };
	static const uint8_t zero[6];

	arp_send(1, bcast, zero, ip); /* gratuitous: sender = target = our IP */
	printf("net: sent gratuitous arp\n");
	uint64_t nsend = cmdline_get_u64("net.send", 0);
	uint64_t send_at = time_ms_to_tsc(cmdline_get_u64("net.send_delay_ms", 0));

	start = rdtsc();
	for (uint64_t polls = 0; !seconds || rdtsc() - start < time_ms_to_tsc(seconds * 1000); polls++) {
		if (nsend && rdtsc() - start >= send_at) {
			send_udp(nsend);
			nsend = 0;
		}
		rx_poll();
		tx_reclaim();
		if (polls % 4096 == 0)
			link_check(&up, false);
		cpu_relax();
	}
	printf("net: rx=%lu tx=%lu arp_replies=%lu icmp_replies=%lu dropped=%lu\n", cnt.rx, cnt.tx,
	       cnt.arp, cnt.icmp, cnt.dropped);
	return 0;
}
