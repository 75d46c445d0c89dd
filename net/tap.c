#include "net/tap.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

static int ifreq_init(struct ifreq *ifr, const char *name)
{
	memset(ifr, 0, sizeof(*ifr));
	if (!name || !name[0] || strlen(name) >= IFNAMSIZ)
		return -EINVAL;
	memcpy(ifr->ifr_name, name, strlen(name));
	return 0;
}

/* An ifreq for @name and a throw-away socket to ask about it with: the
 * socket's fd, or -errno. */
static int ifreq_socket(struct ifreq *ifr, const char *name)
{
	int rc = ifreq_init(ifr, name);
	if (rc < 0)
		return rc;
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	return s < 0 ? -errno : s;
}

/* SIOCGIFMTU / SIOCSIFMTU through a throw-away socket. */
static int mtu_ioctl(const char *name, unsigned long req, unsigned *mtu)
{
	struct ifreq ifr;
	int s = ifreq_socket(&ifr, name);
	if (s < 0)
		return s;
	ifr.ifr_mtu = (int)*mtu;
	int rc = ioctl(s, req, &ifr) < 0 ? -errno : 0;
	if (rc == 0)
		*mtu = (unsigned)ifr.ifr_mtu;
	close(s);
	return rc;
}

static const char *open_hint(int e, bool exists, unsigned nr_queues)
{
	if (e == EPERM && !exists)
		return " (creating a tap needs CAP_NET_ADMIN; or pre-create it: "
		       "ip tuntap add dev NAME mode tap multi_queue user $USER)";
	if (e == EPERM)
		return " (the tap belongs to another user: ip tuntap add ... user $USER)";
	if (e == EINVAL && exists && nr_queues > 1)
		return " (an existing tap used with queues > 1 must be multi_queue)";
	if (e == EINVAL && exists)
		return " (the existing device is not a tap, or is multi_queue while queues=1)";
	if (e == EBUSY)
		return " (the tap is in use by another process)";
	if (e == ENOENT || e == ENODEV)
		return " (/dev/net/tun is missing: modprobe tun)";
	if (e == EACCES)
		return " (no access to /dev/net/tun)";
	return "";
}

static int open_queue(struct tap *t, unsigned i, bool exists, const struct logger *lg,
		      const char *who)
{
	int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		log_err(lg, who, "%s.tap=%s: opening /dev/net/tun: %s%s", who, t->name, strerror(e),
			open_hint(e, exists, 1));
		return -e;
	}
	t->fds[i] = fd;
	struct ifreq ifr;
	int rc = ifreq_init(&ifr, t->name);
	if (rc < 0)
		return rc;
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	if (t->nr_queues > 1)
		ifr.ifr_flags |= IFF_MULTI_QUEUE;
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		int e = errno;
		log_err(lg, who, "%s.tap=%s: TUNSETIFF (queue %u): %s%s", who, t->name, i, strerror(e),
			open_hint(e, exists, t->nr_queues));
		return -e;
	}
	/* A multi-queue tap takes the flags of the first queue attached: with
	 * another process's queue still on it (the `ip tuntap add` that made
	 * it, another VMM) ours may not be in effect, and frames would carry
	 * our header as data. */
	if (ioctl(fd, TUNGETIFF, &ifr) == 0 && !(ifr.ifr_flags & IFF_VNET_HDR)) {
		log_err(lg, who, "tap %s: another process holds a queue of it without "
			"IFF_VNET_HDR, so ours cannot take effect", t->name);
		return -EBUSY;
	}
	int hdr = TAP_VNET_HDR_LEN;
	if (ioctl(fd, TUNSETVNETHDRSZ, &hdr) < 0) {
		int e = errno;
		log_err(lg, who, "%s.tap=%s: TUNSETVNETHDRSZ %d: %s", who, t->name, hdr, strerror(e));
		return -e;
	}
	return 0;
}

/* Which offloads the kernel accepts: the full set, then without UFO (a
 * kernel that dropped it), then checksum only. Left cleared. */
static unsigned probe_offloads(int fd)
{
	static const unsigned tries[] = {
		TAP_OFF_CSUM | TAP_OFF_TSO4 | TAP_OFF_TSO6 | TAP_OFF_ECN | TAP_OFF_UFO,
		TAP_OFF_CSUM | TAP_OFF_TSO4 | TAP_OFF_TSO6 | TAP_OFF_ECN,
		TAP_OFF_CSUM,
	};
	unsigned got = 0;
	for (size_t i = 0; i < sizeof(tries) / sizeof(tries[0]); i++) {
		if (tap_set_offloads(fd, tries[i]) == 0) {
			got = tries[i];
			break;
		}
	}
	if (tap_set_offloads(fd, 0) < 0)
		return 0;
	return got;
}

int tap_open(struct tap *t, const struct tap_params *p, const struct logger *lg,
	     const char *who)
{
	memset(t, 0, sizeof(*t));
	for (unsigned i = 0; i < TAP_MAX_QUEUES; i++)
		t->fds[i] = -1;
	if (!p->name || !p->name[0] || strlen(p->name) >= IFNAMSIZ) {
		log_err(lg, who, "%s.tap=%s: the name is empty or longer than %d bytes", who,
			p->name ? p->name : "", IFNAMSIZ - 1);
		return -EINVAL;
	}
	if (p->nr_queues < 1 || p->nr_queues > TAP_MAX_QUEUES)
		return -EINVAL;
	snprintf(t->name, sizeof(t->name), "%s", p->name);
	t->nr_queues = p->nr_queues;
	bool exists = if_nametoindex(t->name) != 0;
	int rc = 0;
	for (unsigned i = 0; i < t->nr_queues && rc == 0; i++)
		rc = open_queue(t, i, exists, lg, who);
	if (rc < 0) {
		tap_close(t, false);
		return rc;
	}
	t->created = !exists;
	if (t->created && p->persist) {
		unsigned long uid = geteuid();
		if (ioctl(t->fds[0], TUNSETOWNER, uid) < 0 || ioctl(t->fds[0], TUNSETPERSIST, 1ul) < 0) {
			rc = -errno;
			log_err(lg, who, "%s.tap=%s: making it persistent: %s", who, t->name,
				strerror(-rc));
			tap_close(t, false);
			return rc;
		}
		t->persistent = true;
	}
	unsigned mtu = 0;
	if (t->created && p->mtu) {
		mtu = p->mtu;
		rc = mtu_ioctl(t->name, SIOCSIFMTU, &mtu);
		if (rc < 0) {
			log_err(lg, who, "%s.tap=%s: setting MTU %u (%s.mtu): %s", who, t->name, p->mtu,
				who, strerror(-rc));
			tap_close(t, true);
			return rc;
		}
	}
	if (mtu_ioctl(t->name, SIOCGIFMTU, &mtu) == 0) {
		t->mtu = mtu;
		if (p->mtu && mtu != p->mtu)
			log_warn(lg, who, "tap %s has MTU %u but the guest is offered %u: "
				 "set it with ip link set %s mtu %u", t->name, mtu, p->mtu,
				 t->name, p->mtu);
	}
	t->offloads = probe_offloads(t->fds[0]);
	t->ifindex = if_nametoindex(t->name);
	log_info(lg, who, "tap %s: %s, %u queue%s, MTU %u, offloads 0x%x", t->name,
		 t->created ? "created" : "existing", t->nr_queues, t->nr_queues == 1 ? "" : "s",
		 t->mtu, t->offloads);
	return 0;
}

void tap_close(struct tap *t, bool remove)
{
	if (remove && t->persistent && t->fds[0] >= 0 &&
	    ioctl(t->fds[0], TUNSETPERSIST, 0ul) == 0)
		t->persistent = false;
	for (unsigned i = 0; i < TAP_MAX_QUEUES; i++) {
		if (t->fds[i] >= 0)
			close(t->fds[i]);
		t->fds[i] = -1;
	}
}

int tap_set_offloads(int fd, unsigned offloads)
{
	unsigned long f = 0;
	if (offloads & TAP_OFF_CSUM) f |= TUN_F_CSUM;
	if (offloads & TAP_OFF_TSO4) f |= TUN_F_TSO4;
	if (offloads & TAP_OFF_TSO6) f |= TUN_F_TSO6;
	if (offloads & TAP_OFF_ECN) f |= TUN_F_TSO_ECN;
	if (offloads & TAP_OFF_UFO) f |= TUN_F_UFO;
	return ioctl(fd, TUNSETOFFLOAD, f) < 0 ? -errno : 0;
}

int tap_set_queue(int fd, bool attach)
{
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = attach ? IFF_ATTACH_QUEUE : IFF_DETACH_QUEUE;
	return ioctl(fd, TUNSETQUEUE, &ifr) < 0 ? -errno : 0;
}

int tap_state_get(const char *name, struct tap_state *out)
{
	memset(out, 0, sizeof(*out));
	struct ifreq ifr;
	int s = ifreq_socket(&ifr, name);
	if (s < 0)
		return s;
	int rc = 0;
	if (ioctl(s, SIOCGIFINDEX, &ifr) < 0) {
		rc = errno == ENODEV ? 0 : -errno;
	} else {
		out->ifindex = (unsigned)ifr.ifr_ifindex;
		if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0) {
			rc = errno == ENODEV ? 0 : -errno; /* gone in between */
			out->ifindex = 0;
		} else {
			out->exists = true;
			out->up = ifr.ifr_flags & IFF_UP;
		}
	}
	close(s);
	return rc;
}

int tap_watch_open(void)
{
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (fd < 0)
		return -errno;
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK, .nl_groups = RTMGRP_LINK };
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

void tap_watch_drain(int fd)
{
	char buf[8192];
	for (int i = 0; i < 64; i++) {
		ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		/* ENOBUFS: messages were lost, which only means "something changed" */
		if (n < 0 && errno != EINTR && errno != ENOBUFS)
			return;
	}
}
