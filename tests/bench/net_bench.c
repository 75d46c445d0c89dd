/* Host-side virtio-net benchmark, no guest: the device code (net/net.c and
 * net/userspace.c, the userspace backend) is driven directly by a driver
 * written here that keeps the rings full of buffers in plain memory
 * registered as guest RAM, against a real tap, and compared with the raw
 * tap's own read/write loop on the same tap in the same run.
 *
 *   guest->host (TX): the driver posts UDP frames (vnet header + frame,
 *     one descriptor each) to 10.0.2.2 on the tap; the device writes them
 *     to the tap. Baseline: writev() of the same frame in a loop.
 *   host->guest (RX): a thread sends UDP datagrams to 10.0.2.15 through the
 *     tap (static neighbour entry); the device reads them into merged
 *     2 KiB receive buffers the driver recycles. Baseline: read() of the
 *     tap into one buffer in a loop, same sender.
 *
 * Runs in a network namespace of its own (unshare(CLONE_NEWNET): needs
 * root), so nothing touches the host's network. Prints packets per
 * second, Gbit/s (Ethernet frame bytes) and the ratio device/raw.
 *
 *   build/tests/bench/net_bench [SECONDS_PER_CASE]   (default 2) */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "net/net.h"
#include "net/tap.h"
#include "lib/evloop.h"

#define TAP "nb0"
#define RAM_SIZE (64u << 20)
#define QSIZE 256u
#define QBASE(q) (0x100000u + (q) * 0x10000u)
#define TXBUF_GPA 0x400000u  /* one frame per descriptor slot, 2 KiB apart */
#define RXBUF_GPA 0x800000u
#define BUF 2048u

static const uint8_t guest_mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int sh(const char *cmd)
{
	int rc = system(cmd);
	if (rc != 0)
		fprintf(stderr, "net_bench: '%s' failed (%d)\n", cmd, rc);
	return rc;
}

static uint16_t csum(const uint8_t *p, size_t n)
{
	uint32_t s = 0;
	for (size_t i = 0; i + 1 < n; i += 2)
		s += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (n & 1)
		s += (uint32_t)p[n - 1] << 8;
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

/* A UDP frame 10.0.2.15:40000 -> 10.0.2.2:9 from the "guest" to the tap. */
static size_t make_frame(uint8_t *f, const uint8_t tap_mac[6], unsigned payload)
{
	memcpy(f, tap_mac, 6);
	memcpy(f + 6, guest_mac, 6);
	f[12] = 0x08;
	f[13] = 0x00;
	uint8_t *ip = f + 14, *udp = ip + 20;
	memset(ip, 0, 28);
	ip[0] = 0x45;
	uint16_t tot = (uint16_t)(28 + payload);
	ip[2] = (uint8_t)(tot >> 8);
	ip[3] = (uint8_t)tot;
	ip[6] = 0x40;
	ip[8] = 64;
	ip[9] = 17;
	memcpy(ip + 12, "\x0a\x00\x02\x0f", 4);
	memcpy(ip + 16, "\x0a\x00\x02\x02", 4);
	uint16_t c = csum(ip, 20);
	ip[10] = (uint8_t)(c >> 8);
	ip[11] = (uint8_t)c;
	udp[0] = 40000 >> 8;
	udp[1] = 40000 & 0xff;
	udp[3] = 9;
	udp[4] = (uint8_t)((8 + payload) >> 8);
	udp[5] = (uint8_t)(8 + payload);
	memset(udp + 8, 0x5a, payload); /* UDP checksum 0: none */
	return 14 + 28 + payload;
}

struct sender {
	atomic_bool stop;
	unsigned payload;
	uint64_t sent;
};

static void *send_thread(void *arg)
{
	struct sender *s = arg;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(9) };
	inet_pton(AF_INET, "10.0.2.15", &to.sin_addr);
	static uint8_t buf[1500];
	memset(buf, 0xa5, sizeof(buf));
	while (!atomic_load(&s->stop))
		if (sendto(fd, buf, s->payload, 0, (struct sockaddr *)&to, sizeof(to)) > 0)
			s->sent++;
	close(fd);
	return NULL;
}

struct result {
	double pps, gbps;
};

static struct result result_of(uint64_t frames, size_t frame_len, double secs)
{
	return (struct result){ frames / secs, frames * (double)frame_len * 8 / secs / 1e9 };
}

/* ---- raw tap baselines ---- */

static struct result raw_tx(const uint8_t tap_mac[6], unsigned payload, double secs)
{
	struct tap t;
	struct logger lg;
	log_init(&lg, LOG_ERROR, "bench");
	if (tap_open(&t, &(struct tap_params){ .name = TAP, .nr_queues = 1 }, &lg, "raw") < 0)
		exit(1);
	static uint8_t f[NET_HDR_LEN + 1600];
	memset(f, 0, NET_HDR_LEN);
	size_t len = make_frame(f + NET_HDR_LEN, tap_mac, payload);
	uint64_t n = 0;
	double t0 = now(), t1;
	do {
		for (int i = 0; i < 256; i++)
			if (write(t.fds[0], f, NET_HDR_LEN + len) > 0)
				n++;
		t1 = now();
	} while (t1 - t0 < secs);
	tap_close(&t, false);
	return result_of(n, len, t1 - t0);
}

static struct result raw_rx(unsigned payload, double secs)
{
	struct tap t;
	struct logger lg;
	log_init(&lg, LOG_ERROR, "bench");
	if (tap_open(&t, &(struct tap_params){ .name = TAP, .nr_queues = 1 }, &lg, "raw") < 0)
		exit(1);
	int fl = fcntl(t.fds[0], F_GETFL);
	fcntl(t.fds[0], F_SETFL, fl & ~O_NONBLOCK);
	struct sender s = { .payload = payload };
	pthread_t th;
	pthread_create(&th, NULL, send_thread, &s);
	static uint8_t buf[NET_HDR_LEN + 65550];
	uint64_t n = 0;
	double t0 = now(), t1;
	do {
		for (int i = 0; i < 64; i++)
			if (read(t.fds[0], buf, sizeof(buf)) > 0)
				n++;
		t1 = now();
	} while (t1 - t0 < secs);
	atomic_store(&s.stop, true);
	pthread_join(th, NULL);
	tap_close(&t, false);
	return result_of(n, 14 + 28 + payload, t1 - t0);
}

/* ---- the device, driven by a minimal driver ---- */

struct drv {
	uint8_t *ram;
	struct guest_mem mem;
	struct evloop *loop;
	struct logger lg;
	struct virtio_platform plat;
	struct net *n;
	struct virtio_dev *d;
	uint16_t avail[2], last_used[2];
};

static void desc(struct drv *v, unsigned q, uint16_t i, uint64_t a, uint32_t l, uint16_t f)
{
	uint8_t *p = v->ram + QBASE(q) + 16u * i;
	memcpy(p, &a, 8);
	memcpy(p + 8, &l, 4);
	memcpy(p + 12, &f, 2);
	memset(p + 14, 0, 2);
}

static void post(struct drv *v, unsigned q, uint16_t head)
{
	uint8_t *av = v->ram + QBASE(q) + 0x1000;
	memcpy(av + 4 + 2 * (v->avail[q] % QSIZE), &head, 2);
	v->avail[q]++;
	__atomic_store_n((uint16_t *)(av + 2), v->avail[q], __ATOMIC_RELEASE);
}

static void kick(struct drv *v, unsigned q)
{
	uint64_t one = 1;
	if (write(v->d->queues[q].kick_fd, &one, 8) < 0)
		exit(1);
}

/* Used entries since the last call; calls @each with the head. */
static unsigned reap(struct drv *v, unsigned q, void (*each)(struct drv *, unsigned, uint16_t))
{
	uint8_t *used = v->ram + QBASE(q) + 0x2000;
	uint16_t idx = __atomic_load_n((uint16_t *)(used + 2), __ATOMIC_ACQUIRE);
	unsigned n = 0;
	while (v->last_used[q] != idx) {
		uint32_t id;
		memcpy(&id, used + 4 + 8 * (v->last_used[q] % QSIZE), 4);
		v->last_used[q]++;
		if (each)
			each(v, q, (uint16_t)id);
		n++;
	}
	return n;
}

static void repost(struct drv *v, unsigned q, uint16_t head)
{
	post(v, q, head);
}

static int drv_start(struct drv *v)
{
	memset(v, 0, sizeof(*v));
	v->ram = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
		      -1, 0);
	if (v->ram == MAP_FAILED || gmem_add_region(&v->mem, 0, RAM_SIZE, v->ram, -1, 0) < 0 ||
	    evloop_create(&v->loop) < 0)
		return -1;
	log_init(&v->lg, LOG_WARN, "bench");
	v->plat = (struct virtio_platform){ .mem = &v->mem, .loop = v->loop, .log = &v->lg };
	struct net_params p = { .tap = TAP, .vhost = NET_VHOST_OFF, .queues = 1, .mtu = 1500,
				.plat = &v->plat };
	net_default_mac("bench", 0, p.mac);
	if (net_create(&p, &v->n) < 0)
		return -1;
	v->d = net_dev(v->n);
	struct virtio_dev *d = v->d;
	uint64_t f = (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_NET_F_MRG_RXBUF);
	pthread_mutex_lock(&d->lock);
	virtio_dev_set_status(d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	virtio_dev_set_driver_features(d, 0, (uint32_t)f);
	virtio_dev_set_driver_features(d, 1, (uint32_t)(f >> 32));
	virtio_dev_set_status(d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
			      VIRTIO_STATUS_FEATURES_OK);
	for (unsigned q = 0; q < 3; q++) {
		d->queues[q].size = QSIZE;
		d->queues[q].desc = QBASE(q);
		d->queues[q].driver = QBASE(q) + 0x1000;
		d->queues[q].device = QBASE(q) + 0x2000;
		if (!virtio_dev_queue_enable(d, q))
			return -1;
	}
	virtio_dev_set_status(d, d->status | VIRTIO_STATUS_DRIVER_OK);
	pthread_mutex_unlock(&d->lock);
	return virtio_dev_live(d) ? 0 : -1;
}

static void drv_stop(struct drv *v)
{
	net_destroy(v->n, true);
	evloop_destroy(v->loop);
	munmap(v->ram, RAM_SIZE);
}

static struct result dev_tx(const uint8_t tap_mac[6], unsigned payload, double secs,
			    struct net_stats *st)
{
	struct drv v;
	if (drv_start(&v) < 0)
		exit(1);
	size_t len = 0;
	for (uint16_t i = 0; i < QSIZE; i++) {
		uint8_t *b = v.ram + TXBUF_GPA + i * BUF;
		memset(b, 0, NET_HDR_LEN);
		len = make_frame(b + NET_HDR_LEN, tap_mac, payload);
		desc(&v, 1, i, TXBUF_GPA + i * BUF, (uint32_t)(NET_HDR_LEN + len), 0);
		post(&v, 1, i);
	}
	kick(&v, 1);
	uint64_t n = 0;
	double t0 = now(), t1;
	do {
		evloop_run_once(v.loop, 10);
		unsigned k = reap(&v, 1, repost);
		n += k;
		if (k)
			kick(&v, 1);
		t1 = now();
	} while (t1 - t0 < secs);
	net_get_stats(v.n, st);
	drv_stop(&v);
	return result_of(n, len, t1 - t0);
}

static struct result dev_rx(unsigned payload, double secs, struct net_stats *st)
{
	struct drv v;
	if (drv_start(&v) < 0)
		exit(1);
	for (uint16_t i = 0; i < QSIZE; i++) {
		desc(&v, 0, i, RXBUF_GPA + i * BUF, BUF, 2 /* WRITE */);
		post(&v, 0, i);
	}
	kick(&v, 0);
	evloop_run_once(v.loop, 0);
	struct sender s = { .payload = payload };
	pthread_t th;
	pthread_create(&th, NULL, send_thread, &s);
	uint64_t n = 0;
	double t0 = now(), t1;
	do {
		evloop_run_once(v.loop, 10);
		unsigned k = reap(&v, 0, repost);
		n += k;
		if (k)
			kick(&v, 0);
		t1 = now();
	} while (t1 - t0 < secs);
	atomic_store(&s.stop, true);
	pthread_join(th, NULL);
	net_get_stats(v.n, st);
	drv_stop(&v);
	return result_of(n, 14 + 28 + payload, t1 - t0);
}

int main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 2.0;
	if (unshare(CLONE_NEWNET) < 0) {
		fprintf(stderr, "net_bench: needs root for a network namespace: %s\n", strerror(errno));
		return 77;
	}
	/* a persistent tap, addressed, with a static neighbour for the "guest" */
	struct tap t;
	struct logger lg;
	log_init(&lg, LOG_ERROR, "bench");
	if (tap_open(&t, &(struct tap_params){ .name = TAP, .nr_queues = 1, .persist = true }, &lg,
		     "bench") < 0)
		return 1;
	if (sh("ip link set lo up && ip addr add 10.0.2.2/24 dev " TAP " && ip link set " TAP
	       " up && ip neigh replace 10.0.2.15 lladdr 52:54:00:12:34:56 dev " TAP " nud permanent"))
		return 1;
	uint8_t tap_mac[6];
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", TAP);
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (ioctl(s, SIOCGIFHWADDR, &ifr) < 0) { /* sysfs shows the old namespace */
		perror("SIOCGIFHWADDR");
		return 1;
	}
	close(s);
	memcpy(tap_mac, ifr.ifr_hwaddr.sa_data, 6);
	tap_close(&t, false); /* persistent: stays, with its address */

	printf("virtio-net host-side benchmark: device (userspace backend) vs raw tap loop, "
	       "%.1f s per case\n", secs);
	printf("%-10s %7s | %12s %9s | %12s %9s | %6s\n", "direction", "payload", "raw pps",
	       "raw Gb/s", "device pps", "dev Gb/s", "ratio");
	static const unsigned sizes[] = { 64, 1472 };
	for (size_t i = 0; i < 2; i++) {
		struct net_stats st;
		struct result raw = raw_tx(tap_mac, sizes[i], secs);
		struct result dev = dev_tx(tap_mac, sizes[i], secs, &st);
		printf("%-10s %7u | %12.0f %9.3f | %12.0f %9.3f | %6.2f\n", "guest->host", sizes[i],
		       raw.pps, raw.gbps, dev.pps, dev.gbps, dev.pps / raw.pps);
		if (st.tx_errors || st.tx_bad)
			printf("  (device tx errors %llu, bad %llu)\n", (unsigned long long)st.tx_errors,
			       (unsigned long long)st.tx_bad);
	}
	for (size_t i = 0; i < 2; i++) {
		struct net_stats st;
		struct result raw = raw_rx(sizes[i], secs);
		struct result dev = dev_rx(sizes[i], secs, &st);
		printf("%-10s %7u | %12.0f %9.3f | %12.0f %9.3f | %6.2f   (wakeups/frame %.3f)\n",
		       "host->guest", sizes[i], raw.pps, raw.gbps, dev.pps, dev.gbps, dev.pps / raw.pps,
		       st.rx_frames ? (double)st.tap_wakeups / st.rx_frames : 0.0);
	}
	return 0;
}
