/* net/tap.c on real tap devices, in a network namespace of its own
 * (unshare(CLONE_NEWNET): nothing is created on the host). Skips (77)
 * when the namespace or /dev/net/tun is not available. Then the whole
 * device over a real tap: frames written by the device come out of the
 * tap, frames written into the tap reach the guest's buffers. */
#include <errno.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <unistd.h>

#include "net/net.h"
#include "net/tap.h"
#include "fake_platform.h"
#include "unit.h"
#include "lib/evloop.h"

static struct logger lg;

static void test_open_create(void)
{
	struct tap t;
	struct tap_params p = { .name = "kvt0", .nr_queues = 2, .mtu = 9000 };
	CHECK_EQ(if_nametoindex("kvt0"), 0);
	CHECK_EQ(tap_open(&t, &p, &lg, "test"), 0);
	CHECK(t.created);
	CHECK(!t.persistent);
	CHECK_EQ(t.nr_queues, 2);
	CHECK(t.fds[0] >= 0 && t.fds[1] >= 0 && t.fds[2] == -1);
	CHECK_EQ(t.mtu, 9000);
	CHECK(t.offloads & TAP_OFF_CSUM);
	CHECK(if_nametoindex("kvt0") != 0);
	/* queues detach and attach again */
	CHECK_EQ(tap_set_queue(t.fds[1], false), 0);
	CHECK_EQ(tap_set_queue(t.fds[1], true), 0);
	CHECK_EQ(tap_set_offloads(t.fds[0], TAP_OFF_CSUM | TAP_OFF_TSO4), 0);
	/* a second, single-queue open of a multi-queue tap is refused */
	struct tap t2;
	struct tap_params p2 = { .name = "kvt0", .nr_queues = 1 };
	CHECK(tap_open(&t2, &p2, &lg, "test") < 0);
	tap_close(&t, true);
	CHECK_EQ(if_nametoindex("kvt0"), 0); /* not persistent: gone with its fds */

	/* persistent: stays for a later open, removed on request */
	struct tap_params pp = { .name = "kvt1", .nr_queues = 1, .persist = true };
	CHECK_EQ(tap_open(&t, &pp, &lg, "test"), 0);
	CHECK(t.persistent);
	tap_close(&t, false);
	CHECK(if_nametoindex("kvt1") != 0);
	CHECK_EQ(tap_open(&t, &pp, &lg, "test"), 0);
	CHECK(!t.created);
	CHECK_EQ(t.mtu, 1500);
	tap_close(&t, true);
	CHECK(if_nametoindex("kvt1") != 0); /* not ours this time: kept */
	/* clean up with a created handle */
	struct tap t3;
	CHECK_EQ(tap_open(&t3, &(struct tap_params){ .name = "kvt1", .nr_queues = 1 }, &lg, "test"), 0);
	int off = 0;
	CHECK_EQ(ioctl(t3.fds[0], TUNSETPERSIST, off), 0);
	tap_close(&t3, false);
	CHECK_EQ(if_nametoindex("kvt1"), 0);

	/* a multi-queue tap whose first queue (another process's) has no vnet
	 * header: ours would not take effect, so it is refused */
	int other = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	struct ifreq oifr;
	memset(&oifr, 0, sizeof(oifr));
	snprintf(oifr.ifr_name, sizeof(oifr.ifr_name), "kvt4");
	oifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_MULTI_QUEUE;
	CHECK_EQ(ioctl(other, TUNSETIFF, &oifr), 0);
	struct tap_params p4 = { .name = "kvt4", .nr_queues = 2 };
	CHECK_EQ(tap_open(&t, &p4, &lg, "test"), -EBUSY);
	close(other);
	CHECK_EQ(if_nametoindex("kvt4"), 0);

	struct tap_params bad = { .name = "a-name-far-too-long", .nr_queues = 1 };
	CHECK_EQ(tap_open(&t, &bad, &lg, "test"), -EINVAL);
}

static int set_up(const char *name)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	int rc = ioctl(s, SIOCGIFFLAGS, &ifr);
	ifr.ifr_flags |= IFF_UP;
	if (rc == 0)
		rc = ioctl(s, SIOCSIFFLAGS, &ifr);
	close(s);
	return rc;
}

#define RAM_SIZE (1u << 20)
#define QB(q) (0x10000u + (q) * 0x4000u)

static void put_desc(uint8_t *ram, unsigned q, uint16_t i, uint64_t a, uint32_t l, uint16_t f)
{
	uint8_t *p = ram + QB(q) + 16u * i;
	uint16_t next = 0;
	memcpy(p, &a, 8);
	memcpy(p + 8, &l, 4);
	memcpy(p + 12, &f, 2);
	memcpy(p + 14, &next, 2);
}

static void put_avail(uint8_t *ram, unsigned q, uint16_t slot, uint16_t head)
{
	uint8_t *av = ram + QB(q) + 0x1000;
	memcpy(av + 4 + 2 * slot, &head, 2);
	uint16_t idx = (uint16_t)(slot + 1);
	__atomic_store_n((uint16_t *)(av + 2), idx, __ATOMIC_RELEASE);
}

static void test_device_on_tap(void)
{
	uint8_t *ram = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct guest_mem mem = { 0 };
	CHECK_EQ(gmem_add_region(&mem, 0, RAM_SIZE, ram, -1, 0), 0);
	struct evloop *loop;
	CHECK_EQ(evloop_create(&loop), 0);
	struct virtio_platform plat = { .mem = &mem, .loop = loop, .log = &lg };
	struct net_params p = { .tap = "kvt2", .vhost = NET_VHOST_OFF, .queues = 1, .mtu = 1500,
				.plat = &plat };
	net_default_mac("unit", 0, p.mac);
	struct net *n;
	CHECK_EQ(net_create(&p, &n), 0);
	CHECK_EQ(set_up("kvt2"), 0);
	struct virtio_dev *d = net_dev(n);
	uint64_t f = (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_NET_F_MRG_RXBUF) |
		     (1ull << VIRTIO_NET_F_GUEST_CSUM) | (1ull << VIRTIO_NET_F_CSUM);
	pthread_mutex_lock(&d->lock);
	fake_driver_features(d, f);
	for (unsigned q = 0; q < 3; q++)
		CHECK(fake_driver_queue(d, q, 16, QB(q)));
	virtio_dev_set_status(d, d->status | VIRTIO_STATUS_DRIVER_OK); /* TUNSETOFFLOAD */
	CHECK(virtio_dev_live(d));
	pthread_mutex_unlock(&d->lock);
	for (uint16_t i = 0; i < 16; i++) {
		put_desc(ram, 0, i, 0x80000 + i * 0x1000u, 2048, 2 /* WRITE */);
		put_avail(ram, 0, i, i);
	}
	uint64_t one = 1;
	CHECK_EQ(write(d->queues[0].kick_fd, &one, 8), 8);
	/* the guest sends a broadcast frame: a packet socket on the tap sees it */
	int ps = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK, htons(0x88b5));
	CHECK(ps >= 0);
	uint8_t *tx = ram + 0x70000;
	memset(tx, 0, 12 + 60);
	memset(tx + 12, 0xff, 6);                    /* dst: broadcast */
	memcpy(tx + 18, "\x52\x54\x00\x00\x00\x01", 6);
	tx[24] = 0x88;                               /* local experimental ethertype */
	tx[25] = 0xb5;
	memcpy(tx + 26, "kvmrun", 6);
	put_desc(ram, 1, 0, 0x70000, 72, 0);
	put_avail(ram, 1, 0, 0);
	CHECK_EQ(write(d->queues[1].kick_fd, &one, 8), 8);
	for (int i = 0; i < 20; i++)
		evloop_run_once(loop, 10);
	uint8_t got[256];
	ssize_t r = recv(ps, got, sizeof(got), 0);
	CHECK(r >= 60);
	CHECK(r >= 20 && memcmp(got + 14, "kvmrun", 6) == 0);
	/* and the other way: a frame sent on the tap lands in a receive buffer */
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_ifindex = (int)if_nametoindex("kvt2"),
				   .sll_halen = 6 };
	memset(sll.sll_addr, 0xff, 6);
	CHECK_EQ(sendto(ps, tx + 12, 60, 0, (struct sockaddr *)&sll, sizeof(sll)), 60);
	for (int i = 0; i < 20; i++)
		evloop_run_once(loop, 10);
	struct net_stats st;
	net_get_stats(n, &st);
	CHECK(st.rx_frames >= 1);
	CHECK_EQ(st.tx_frames, 1);
	uint16_t used = __atomic_load_n((uint16_t *)(ram + QB(0) + 0x2000 + 2), __ATOMIC_ACQUIRE);
	CHECK(used >= 1);
	bool found = false;
	for (uint16_t i = 0; i < used; i++)
		if (memcmp(ram + 0x80000 + i * 0x1000u + 12 + 14, "kvmrun", 6) == 0)
			found = true;
	CHECK(found);
	close(ps);
	net_destroy(n, false);
	evloop_destroy(loop);
	munmap(ram, RAM_SIZE);
	CHECK_EQ(if_nametoindex("kvt2"), 0);
}

static int set_flags(const char *name, bool up)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	int rc = ioctl(s, SIOCGIFFLAGS, &ifr);
	ifr.ifr_flags = (short)(up ? ifr.ifr_flags | IFF_UP : ifr.ifr_flags & ~IFF_UP);
	if (rc == 0)
		rc = ioctl(s, SIOCSIFFLAGS, &ifr);
	close(s);
	return rc;
}

/* Runs the event loop until the device's link is @up (at most ~2 s). */
static bool link_becomes(struct fake_vplat *v, struct net *n, bool up)
{
	struct net_stats st;
	for (int i = 0; i < 200; i++) {
		evloop_run_once(v->loop, 10);
		net_get_stats(n, &st);
		if (st.link_up == up)
			return true;
	}
	return false;
}

/* A persistent tap (or @tun: a tun device) made by someone else, as
 * `ip tuntap add` does. */
static int make_tap(const char *name, bool tun)
{
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	ifr.ifr_flags = (short)((tun ? IFF_TUN : IFF_TAP) | IFF_NO_PI | IFF_VNET_HDR);
	int rc = ioctl(fd, TUNSETIFF, &ifr) < 0 || ioctl(fd, TUNSETPERSIST, 1ul) < 0 ? -errno : 0;
	close(fd);
	return rc;
}

/* The guest's link follows the tap on the host: down and up with it, down
 * when it is deleted, and back (re-attached, frames flowing through the
 * new tap) when one of the same name is made again. */
static void test_link_follows_tap(void)
{
	struct fake_vplat v;
	fake_vplat_init(&v, RAM_SIZE, true);
	struct net_params p = { .tap = "kvt3", .vhost = NET_VHOST_OFF, .queues = 1, .mtu = 1500,
				.plat = &v.plat };
	net_default_mac("unit", 0, p.mac);
	struct net *n;
	CHECK_EQ(net_create(&p, &n), 0);
	struct virtio_dev *d = net_dev(n);
	fake_vplat_attach(&v, d);
	pthread_mutex_lock(&d->lock);
	fake_driver_features(d, (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_NET_F_STATUS));
	for (unsigned q = 0; q < 3; q++)
		CHECK(fake_driver_queue(d, q, 16, QB(q)));
	virtio_dev_set_status(d, d->status | VIRTIO_STATUS_DRIVER_OK);
	pthread_mutex_unlock(&d->lock);

	/* a created tap starts down: that alone leaves the link up */
	CHECK(link_becomes(&v, n, true));
	CHECK_EQ(set_flags("kvt3", true), 0);
	CHECK(link_becomes(&v, n, true));
	unsigned sig = v.config_signals;
	CHECK_EQ(set_flags("kvt3", false), 0);
	CHECK(link_becomes(&v, n, false));
	CHECK(v.config_signals > sig);
	CHECK_EQ(set_flags("kvt3", true), 0);
	CHECK(link_becomes(&v, n, true));

	/* deleted: down; made again (down: not attached yet, its maker may
	 * still hold it), then set up: re-attached, up */
	CHECK_EQ(system("ip link del kvt3"), 0);
	CHECK(link_becomes(&v, n, false));
	CHECK_EQ(make_tap("kvt3", false), 0);
	for (int i = 0; i < 20; i++)
		evloop_run_once(v.loop, 10);
	struct net_stats st;
	net_get_stats(n, &st);
	CHECK(!st.link_up);
	CHECK_EQ(set_flags("kvt3", true), 0);
	CHECK(link_becomes(&v, n, true));
	/* a frame the guest sends comes out of the new tap */
	int ps = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK, htons(0x88b5));
	CHECK(ps >= 0);
	uint8_t *tx = v.ram + 0x70000;
	memset(tx, 0, 12 + 60);
	memset(tx + 12, 0xff, 6);
	memcpy(tx + 18, "\x52\x54\x00\x00\x00\x01", 6);
	tx[24] = 0x88;
	tx[25] = 0xb5;
	memcpy(tx + 26, "again!", 6);
	put_desc(v.ram, 1, 0, 0x70000, 72, 0);
	put_avail(v.ram, 1, 0, 0);
	fake_vplat_kick(d, 1);
	uint8_t got[256];
	ssize_t r = -1;
	for (int i = 0; i < 50 && r < 0; i++) {
		evloop_run_once(v.loop, 10);
		r = recv(ps, got, sizeof(got), 0);
	}
	CHECK(r >= 20 && memcmp(got + 14, "again!", 6) == 0);
	close(ps);

	/* a device of that name that is not a tap: logged, left alone, down */
	CHECK_EQ(system("ip link del kvt3"), 0);
	CHECK(link_becomes(&v, n, false));
	CHECK_EQ(make_tap("kvt3", true), 0);
	CHECK_EQ(set_flags("kvt3", true), 0);
	for (int i = 0; i < 20; i++)
		evloop_run_once(v.loop, 10);
	net_get_stats(n, &st);
	CHECK(!st.link_up);
	fake_vplat_detach(d);
	net_destroy(n, false);
	CHECK_EQ(system("ip link del kvt3"), 0);
	fake_vplat_fini(&v);
}

int main(void)
{
	if (unshare(CLONE_NEWNET) < 0) {
		printf("SKIP: cannot create a network namespace: %s\n", strerror(errno));
		return 77;
	}
	if (access("/dev/net/tun", R_OK | W_OK) < 0) {
		printf("SKIP: /dev/net/tun: %s\n", strerror(errno));
		return 77;
	}
	log_init(&lg, LOG_ERROR, "test");
	RUN(test_open_create);
	RUN(test_device_on_tap);
	RUN(test_link_follows_tap);
	return unit_done();
}
