/* virtio-net: features, config space, the control queue and the choice and
 * lifecycle of the backend (see net/net.h). */
#include "net/net.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "net/netdev.h"
#include "virtio/device_state.h"

#define OFFLOAD_FEATURES ((1ull << VIRTIO_NET_F_CSUM) | (1ull << VIRTIO_NET_F_GUEST_CSUM) | \
	(1ull << VIRTIO_NET_F_GUEST_TSO4) | (1ull << VIRTIO_NET_F_GUEST_TSO6) | \
	(1ull << VIRTIO_NET_F_GUEST_ECN) | (1ull << VIRTIO_NET_F_GUEST_UFO) | \
	(1ull << VIRTIO_NET_F_HOST_TSO4) | (1ull << VIRTIO_NET_F_HOST_TSO6) | \
	(1ull << VIRTIO_NET_F_HOST_ECN) | (1ull << VIRTIO_NET_F_HOST_UFO))

#define BIT(f) (1ull << (f))

void net_default_mac(const char *vm_name, unsigned index, uint8_t mac[6])
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (const char *s = vm_name ? vm_name : "kvmrun"; *s; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	h = (h ^ (uint8_t)index) * 16777619u;
	mac[0] = 0x52; /* locally administered, unicast */
	mac[1] = 0x54;
	for (int i = 0; i < 4; i++)
		mac[2 + i] = (uint8_t)(h >> (8 * (3 - i)));
}

/* What the tap may hand the guest, for the negotiated features. */
static unsigned guest_offloads(uint64_t f)
{
	unsigned o = 0;
	if (f & BIT(VIRTIO_NET_F_GUEST_CSUM)) o |= TAP_OFF_CSUM;
	if (f & BIT(VIRTIO_NET_F_GUEST_TSO4)) o |= TAP_OFF_TSO4;
	if (f & BIT(VIRTIO_NET_F_GUEST_TSO6)) o |= TAP_OFF_TSO6;
	if (f & BIT(VIRTIO_NET_F_GUEST_ECN)) o |= TAP_OFF_ECN;
	if (f & BIT(VIRTIO_NET_F_GUEST_UFO)) o |= TAP_OFF_UFO;
	return o;
}

/* Device features given what the tap accepts (@tap_off, TAP_OFF_*). */
static uint64_t offered_features(unsigned tap_off, unsigned pairs)
{
	uint64_t f = BIT(VIRTIO_NET_F_MAC) | BIT(VIRTIO_NET_F_STATUS) | BIT(VIRTIO_NET_F_MTU) |
		     BIT(VIRTIO_NET_F_MRG_RXBUF) | BIT(VIRTIO_NET_F_CTRL_VQ);
	if (pairs > 1)
		f |= BIT(VIRTIO_NET_F_MQ);
	/* guest -> tap: the tap takes partial checksums and GSO frames with
	 * the vnet header; tap -> guest: what TUNSETOFFLOAD accepted */
	f |= BIT(VIRTIO_NET_F_CSUM) | BIT(VIRTIO_NET_F_HOST_TSO4) | BIT(VIRTIO_NET_F_HOST_TSO6) |
	     BIT(VIRTIO_NET_F_HOST_ECN);
	if (tap_off & TAP_OFF_UFO)
		f |= BIT(VIRTIO_NET_F_HOST_UFO);
	if (tap_off & TAP_OFF_CSUM) {
		f |= BIT(VIRTIO_NET_F_GUEST_CSUM);
		if (tap_off & TAP_OFF_TSO4) f |= BIT(VIRTIO_NET_F_GUEST_TSO4);
		if (tap_off & TAP_OFF_TSO6) f |= BIT(VIRTIO_NET_F_GUEST_TSO6);
		if (tap_off & TAP_OFF_ECN) f |= BIT(VIRTIO_NET_F_GUEST_ECN);
		if (tap_off & TAP_OFF_UFO) f |= BIT(VIRTIO_NET_F_GUEST_UFO);
	}
	return f;
}

static struct net *net_of(struct virtio_dev *d)
{
	return d->priv;
}

/* ---- pair state, applied on the event thread ---- */

/* The tap failed (EBADFD, EPOLLERR, end of file): link down, stop
 * watching. Backends reach it through n->on_tap_gone. */
static void net_tap_gone(struct net *n, const char *why)
{
	if (n->tap_gone)
		return;
	n->tap_gone = true;
	log_err(n->plat->log, n->short_name, "tap %s went away (%s): link down",
		n->injected ? "(injected)" : n->tap.name, why);
	n->config.status &= (uint16_t)~VIRTIO_NET_S_LINK_UP;
	for (unsigned i = 0; i < n->max_pairs; i++) {
		struct net_pair *p = &n->pairs[i];
		if (p->watched)
			evloop_del(n->plat->loop, p->fd);
		p->watched = false;
	}
	if (n->dev.status & VIRTIO_STATUS_DRIVER_OK)
		virtio_dev_config_changed(&n->dev);
}

static void on_tap(void *cookie, uint32_t events)
{
	struct net_pair *p = cookie;
	struct net *n = p->n;
	pthread_mutex_lock(&n->dev.lock);
	n->st.tap_wakeups++;
	if (n->dev.quiesced)
		netdev_watch(p, 0); /* paused: unquiesce watches it again */
	else if (events & (EPOLLERR | EPOLLHUP))
		net_tap_gone(n, events & EPOLLERR ? "EPOLLERR" : "EPOLLHUP");
	else
		n->ops->tap_ready(p);
	pthread_mutex_unlock(&n->dev.lock);
}

/* Attaches the tap queues of the active pairs and detaches the others,
 * and watches what should be watched. Event thread (or before it runs). */
static void pairs_apply(struct net *n)
{
	struct virtio_dev *d = &n->dev;
	bool live = virtio_dev_live(d);
	unsigned want = live ? n->active_pairs : 1;
	for (unsigned i = 0; i < n->max_pairs; i++) {
		struct net_pair *p = &n->pairs[i];
		bool on = i < want && !n->tap_gone;
		if (!n->injected && n->max_pairs > 1 && i > 0 && on != p->attached) {
			int rc = tap_set_queue(p->fd, on);
			if (rc == 0)
				p->attached = on;
			else
				log_warn(n->plat->log, n->short_name, "tap queue %u: %s: %s", i,
					 on ? "attach" : "detach", strerror(-rc));
		}
		/* a detached tap queue polls as EPOLLERR: only attached ones */
		bool watch = !n->tap_gone && (on || i == 0) && (p->attached || n->injected);
		uint32_t ev = live && on ? n->ops->tap_events : 0;
		if (watch && !p->watched) {
			int rc = evloop_add(n->plat->loop, p->fd, ev, on_tap, p);
			if (rc < 0)
				log_warn(n->plat->log, n->short_name, "watching tap queue %u: %s", i,
					 strerror(-rc));
			p->watched = rc == 0;
			p->events = ev;
		} else if (!watch && p->watched) {
			evloop_del(n->plat->loop, p->fd);
			p->watched = false;
		}
		netdev_watch(p, ev);
		if (n->ops->applied)
			n->ops->applied(p);
	}
}

static void on_sync(void *cookie, uint32_t events)
{
	struct net *n = cookie;
	uint64_t v;
	if (read(n->sync_fd, &v, sizeof(v)) != sizeof(v))
		return;
	pthread_mutex_lock(&n->dev.lock);
	pairs_apply(n);
	pthread_mutex_unlock(&n->dev.lock);
}

/* From any thread: have the event thread re-apply the pair state. */
static void net_sync(struct net *n)
{
	uint64_t one = 1;
	if (write(n->sync_fd, &one, sizeof(one)) < 0)
		log_warn(n->plat->log, n->short_name, "sync: %s", strerror(errno));
}

/* ---- the tap on the host: down/up, removed/made again ---- */

/* The guest's link status (5.1.4 VIRTIO_NET_S_LINK_UP), with a config
 * change interrupt when it changes under a running driver. */
static void link_set(struct net *n, bool up)
{
	uint16_t st = up ? (uint16_t)(n->config.status | VIRTIO_NET_S_LINK_UP)
			 : (uint16_t)(n->config.status & ~VIRTIO_NET_S_LINK_UP);
	if (st == n->config.status)
		return;
	n->config.status = st;
	if (n->dev.status & VIRTIO_STATUS_DRIVER_OK)
		virtio_dev_config_changed(&n->dev);
}

/* The tap is there again under the same name (deleted, then made again)
 * and set up: open it and put its queues where the old ones were, under
 * the userspace backend's watches or vhost's rings. Not before it is up:
 * `ip tuntap add` holds a queue of it while it makes it, and a multi-queue
 * tap takes the flags of the first queue attached (net/tap.c). */
static void tap_reattach(struct net *n, const struct tap_state *s)
{
	struct virtio_dev *d = &n->dev;
	struct tap t;
	struct tap_params tp = { .name = n->tap.name, .nr_queues = n->max_pairs, .mtu = n->mtu };
	int rc = tap_open(&t, &tp, n->plat->log, n->short_name);
	if (rc < 0) {
		/* EBUSY: another process still holds it; try again on its next
		 * change. Anything else (not a tap, not ours) is for good. */
		if (rc != -EBUSY)
			n->refused_ifindex = s->ifindex;
		log_err(n->plat->log, n->short_name, "tap %s is back but cannot be attached (%s): "
			"the link stays down", n->tap.name, strerror(-rc));
		return;
	}
	for (unsigned i = 0; i < n->max_pairs; i++) {
		struct net_pair *p = &n->pairs[i];
		if (p->watched)
			evloop_del(n->plat->loop, p->fd);
		p->watched = false;
		p->fd = t.fds[i];
		p->attached = true;
	}
	tap_close(&n->tap, false);
	n->tap = t;
	if (virtio_dev_live(d)) {
		rc = tap_set_offloads(t.fds[0], guest_offloads(d->guest_features));
		if (rc < 0)
			log_warn(n->plat->log, n->short_name, "tap %s: TUNSETOFFLOAD: %s", t.name,
				 strerror(-rc));
		for (unsigned i = 0; n->ops->tap_replaced && i < n->max_pairs; i++)
			n->ops->tap_replaced(&n->pairs[i]);
	}
	n->tap_gone = false;
	n->refused_ifindex = 0;
	pairs_apply(n);
	n->tap_up = true;
	link_set(n, true);
	log_warn(n->plat->log, n->short_name, "tap %s is back: re-attached, link up", t.name);
	if (n->ops->tap_waiting && virtio_dev_live(d)) {
		rc = n->ops->tap_waiting(n); /* frames may already wait in the new tap */
		if (rc < 0)
			log_warn(n->plat->log, n->short_name, "kick: %s", strerror(-rc));
	}
}

/* Something changed on the host's links: is it our tap? A tap set down
 * takes the guest's link down and back up with it; a tap removed is gone
 * (net_tap_gone); a tap of the same name made again is re-attached once it
 * is set up. The
 * link follows transitions only: a tap still down when the VM starts (one
 * kvmrun creates starts down) does not hold the link down. */
static void on_link(void *cookie, uint32_t events)
{
	struct net *n = cookie;
	tap_watch_drain(n->watch_fd);
	struct tap_state s;
	if (tap_state_get(n->tap.name, &s) < 0)
		return;
	pthread_mutex_lock(&n->dev.lock);
	bool same = s.exists && s.ifindex == n->tap.ifindex;
	if (!same && !n->tap_gone)
		net_tap_gone(n, s.exists ? "replaced by a new device" : "removed");
	if (!same && s.exists && s.up && s.ifindex != n->refused_ifindex) {
		tap_reattach(n, &s);
	} else if (same && !n->tap_gone && s.up != n->tap_up) {
		n->tap_up = s.up;
		log_info(n->plat->log, n->short_name, "tap %s set %s: link %s", n->tap.name,
			 s.up ? "up" : "down", s.up ? "up" : "down");
		link_set(n, s.up);
	}
	pthread_mutex_unlock(&n->dev.lock);
}

/* ---- virtio_dev_ops ---- */

static void net_config_read(struct virtio_dev *d, uint32_t off, void *data, unsigned len)
{
	memcpy(data, (const uint8_t *)&net_of(d)->config + off, len);
}

static bool net_features_ok(struct virtio_dev *d, uint64_t f)
{
	/* 5.1.3.1 feature dependencies */
	uint64_t guest_gso = BIT(VIRTIO_NET_F_GUEST_TSO4) | BIT(VIRTIO_NET_F_GUEST_TSO6) |
			     BIT(VIRTIO_NET_F_GUEST_UFO);
	uint64_t host_gso = BIT(VIRTIO_NET_F_HOST_TSO4) | BIT(VIRTIO_NET_F_HOST_TSO6) |
			    BIT(VIRTIO_NET_F_HOST_UFO);
	if ((f & guest_gso) && !(f & BIT(VIRTIO_NET_F_GUEST_CSUM)))
		return false;
	if ((f & BIT(VIRTIO_NET_F_GUEST_ECN)) &&
	    !(f & (BIT(VIRTIO_NET_F_GUEST_TSO4) | BIT(VIRTIO_NET_F_GUEST_TSO6))))
		return false;
	if ((f & host_gso) && !(f & BIT(VIRTIO_NET_F_CSUM)))
		return false;
	if ((f & BIT(VIRTIO_NET_F_HOST_ECN)) &&
	    !(f & (BIT(VIRTIO_NET_F_HOST_TSO4) | BIT(VIRTIO_NET_F_HOST_TSO6))))
		return false;
	if ((f & BIT(VIRTIO_NET_F_MQ)) && !(f & BIT(VIRTIO_NET_F_CTRL_VQ)))
		return false;
	return true;
}

static int net_activate(struct virtio_dev *d)
{
	struct net *n = net_of(d);
	n->active_pairs = 1; /* 5.1.6.5.5: one pair until VQ_PAIRS_SET */
	if (!n->injected && !n->tap_gone) {
		int rc = tap_set_offloads(n->tap.fds[0], guest_offloads(d->guest_features));
		if (rc < 0) {
			log_err(n->plat->log, n->short_name, "tap %s: TUNSETOFFLOAD: %s", n->tap.name,
				strerror(-rc));
			return rc;
		}
	}
	for (unsigned i = 0; n->ops->start && i < n->max_pairs; i++) {
		int rc = n->ops->start(&n->pairs[i]);
		if (rc < 0)
			return rc;
	}
	net_sync(n);
	/* frames may already wait in the tap */
	return n->ops->tap_waiting ? n->ops->tap_waiting(n) : 0;
}

static void net_reset(struct virtio_dev *d)
{
	struct net *n = net_of(d);
	for (unsigned i = 0; n->ops->reset && i < n->max_pairs; i++)
		n->ops->reset(&n->pairs[i]);
	n->active_pairs = 1;
	net_sync(n);
}

static void net_irq_changed(struct virtio_dev *d)
{
	struct net *n = net_of(d);
	for (unsigned i = 0; n->ops->irq_changed && i < n->max_pairs; i++)
		n->ops->irq_changed(&n->pairs[i]);
}

/* 5.1.6.5 one control command; returns the ack byte. */
static uint8_t ctrl_command(struct net *n, const uint8_t *cmd, size_t len)
{
	struct virtio_dev *d = &n->dev;
	if (len >= 4 && cmd[0] == VIRTIO_NET_CTRL_MQ && cmd[1] == VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET &&
	    virtio_dev_has_feature(d, VIRTIO_NET_F_MQ)) {
		unsigned pairs = (unsigned)(cmd[2] | cmd[3] << 8);
		if (pairs < 1 || pairs > n->max_pairs)
			return VIRTIO_NET_ERR;
		n->active_pairs = pairs;
		pairs_apply(n);
		log_debug(n->plat->log, n->short_name, "%u queue pair%s active", pairs,
			  pairs == 1 ? "" : "s");
		return VIRTIO_NET_OK;
	}
	return VIRTIO_NET_ERR;
}

static void ctrl_process(struct net *n)
{
	struct virtio_dev *d = &n->dev;
	unsigned qi = net_ctrl_queue(n);
	struct vq *vq = d->queues[qi].vq;
	bool pushed = false;
	for (unsigned done = 0; vq; done++) {
		if (done == NET_CTRL_BUDGET) {
			/* a driver refilling the queue as fast as we take
			 * from it: let the event loop breathe, come back */
			n->st.yields++;
			virtio_dev_rekick(d, qi);
			break;
		}
		struct vq_chain c = { .segs = n->tx_segs, .cap = VQ_MAX_SEGS };
		int r = vq_pop(vq, &c);
		if (r < 0) {
			n->st.needs_reset++;
			virtio_dev_needs_reset(d, vq_error(vq) ? vq_error(vq) : "control queue");
			break;
		}
		if (r == 0)
			break;
		uint8_t cmd[64];
		size_t len = 0;
		for (uint32_t s = 0; s < c.nr_readable && len < sizeof(cmd); s++) {
			size_t k = c.segs[s].len < sizeof(cmd) - len ? c.segs[s].len : sizeof(cmd) - len;
			memcpy(cmd + len, c.segs[s].host, k);
			len += k;
		}
		/* the ack is the last writable byte */
		uint8_t *ack = NULL;
		for (uint32_t s = c.nr_segs; s-- > c.nr_readable;) {
			if (c.segs[s].len) {
				ack = (uint8_t *)c.segs[s].host + c.segs[s].len - 1;
				break;
			}
		}
		n->st.ctrl_cmds++;
		uint32_t written = 0;
		if (!ack || len < 2) {
			n->st.ctrl_errors++;
			log_ratelimited(n->plat->log, &d->rl, n->short_name,
					"control command without header or ack byte: dropped");
		} else {
			*ack = ctrl_command(n, cmd, len);
			if (*ack != VIRTIO_NET_OK)
				n->st.ctrl_errors++;
			written = 1;
		}
		if (vq_push(vq, c.head, written) < 0)
			break;
		pushed = true;
	}
	if (pushed)
		virtio_dev_used(d, qi);
}

static void net_notify(struct virtio_dev *d, unsigned q)
{
	struct net *n = net_of(d);
	if (q == net_ctrl_queue(n)) {
		ctrl_process(n);
		return;
	}
	unsigned pair = q / 2;
	if (pair >= n->max_pairs || (!virtio_dev_has_feature(d, VIRTIO_NET_F_MQ) && pair > 0))
		return;
	/* no notify hook: the backend (vhost) reads the same eventfd */
	if (n->ops->notify)
		n->ops->notify(&n->pairs[pair], q % 2);
}

/* ---- snapshots ---- */

/* Paused: the tap is not read and nothing popped ahead stays with us;
 * resumed: the pair state is applied again (the core re-kicks the
 * queues, which reads the tap). */
static void net_quiesce(struct virtio_dev *d, bool on)
{
	struct net *n = net_of(d);
	if (!on) {
		pairs_apply(n);
		return;
	}
	for (unsigned i = 0; i < n->max_pairs; i++) {
		netdev_watch(&n->pairs[i], 0);
		if (n->ops->give_back)
			n->ops->give_back(&n->pairs[i]);
	}
}

static const char *net_snapshot_refusal(struct virtio_dev *d)
{
	struct net *n = net_of(d);
	if (n->ops->kind == NET_BACKEND_VHOST && (d->status & VIRTIO_STATUS_DRIVER_OK))
		return "vhost-net runs its rings in the host kernel, whose ring state is not "
		       "saved: snapshot with netN.vhost=off";
	return NULL;
}

/* The MAC (to recognise the device) and the active queue pairs; the link
 * status follows the tap, which is opened again as at boot. */
static void net_state_save(struct virtio_dev *d, struct state_w *w)
{
	struct net *n = net_of(d);
	state_put_bytes(w, n->config.mac, sizeof(n->config.mac));
	state_put_u32(w, n->active_pairs);
}

static void net_state_load(struct virtio_dev *d, struct state_r *r,
			   const struct virtio_dev_state *core, bool apply)
{
	struct net *n = net_of(d);
	uint8_t mac[6];
	state_get_bytes(r, mac, sizeof(mac));
	uint32_t pairs = state_get_u32(r);
	if (apply) {
		n->active_pairs = pairs;
		pairs_apply(n);
		return;
	}
	bool mq = core->guest_features >> VIRTIO_NET_F_MQ & 1;
	if (r->failed)
		return;
	if (memcmp(mac, n->config.mac, sizeof(mac)) != 0)
		state_fail(r, "MAC %02x:%02x:%02x:%02x:%02x:%02x, this device's differs", mac[0],
			   mac[1], mac[2], mac[3], mac[4], mac[5]);
	else if (pairs < 1 || pairs > (mq ? n->max_pairs : 1))
		state_fail(r, "%u active queue pairs, at most %u", pairs, mq ? n->max_pairs : 1);
	for (unsigned q = 0; q < core->nr_queues && !r->failed; q++)
		if (core->q[q].has_rings && core->q[q].ix.inflight)
			state_fail(r, "queue %u: %u chains in flight", q, core->q[q].ix.inflight);
}

static const struct virtio_dev_ops net_ops = {
	.quiesce = net_quiesce,
	.snapshot_refusal = net_snapshot_refusal,
	.state_save = net_state_save,
	.state_load = net_state_load,
	.features = 0, /* per device, set in host_features after init */
	.config_size = sizeof(struct virtio_net_config),
	.config_read = net_config_read,
	.features_ok = net_features_ok,
	.activate = net_activate,
	.notify = net_notify,
	.reset = net_reset,
	.irq_changed = net_irq_changed,
};

/* ---- create / destroy ---- */

static int choose_backend(struct net *n, const struct net_params *p)
{
	const struct logger *lg = n->plat->log;
	if (p->fds || p->vhost == NET_VHOST_OFF) {
		n->ops = &userspace_ops;
		return 0;
	}
	int rc = vhost_backend_ops.open(n);
	if (rc == 0) {
		n->ops = &vhost_backend_ops;
		return 0;
	}
	if (p->vhost == NET_VHOST_ON) {
		log_err(lg, n->short_name, "net%u.vhost=on but vhost-net cannot be used: "
			"/dev/vhost-net: %s (%s, or net%u.vhost=auto|off)", p->index,
			strerror(-rc), rc == -ENOENT ? "modprobe vhost_net" : "check its permissions",
			p->index);
		return rc;
	}
	log_info(lg, n->short_name, "vhost-net unavailable (/dev/vhost-net: %s)", strerror(-rc));
	n->ops = &userspace_ops;
	return 0;
}

/* Releases what the backend's open() acquired (nothing before a choice). */
static void backend_close(struct net *n)
{
	for (unsigned i = 0; n->ops && n->ops->close && i < n->max_pairs; i++)
		n->ops->close(&n->pairs[i]);
}

static void unwatch_pair(struct net *n, struct net_pair *p)
{
	if (p->watched)
		evloop_del(n->plat->loop, p->fd);
	p->watched = false;
	if (n->ops->teardown)
		n->ops->teardown(p);
}

/* Follows the tap's state on the host (on_link). Without the rtnetlink
 * socket the VM runs as before, only blind to the tap's changes. */
static void watch_tap(struct net *n)
{
	struct tap_state s;
	if (tap_state_get(n->tap.name, &s) == 0)
		n->tap_up = s.up;
	int fd = tap_watch_open();
	int rc = fd < 0 ? fd : evloop_add(n->plat->loop, fd, EPOLLIN, on_link, n);
	if (rc < 0) {
		log_warn(n->plat->log, n->short_name, "not following tap %s on the host "
			 "(rtnetlink: %s): set down or made again, it leaves the link as it is",
			 n->tap.name, strerror(-rc));
		if (fd >= 0)
			close(fd);
		return;
	}
	n->watch_fd = fd;
}

int net_create(const struct net_params *p, struct net **out)
{
	if (!p->plat->loop || p->queues < 1 || p->queues > NET_MAX_PAIRS)
		return -EINVAL;
	struct net *n = calloc(1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	n->plat = p->plat;
	snprintf(n->name, sizeof(n->name), "virtio-net%u", p->index);
	snprintf(n->short_name, sizeof(n->short_name), "net%u", p->index);
	n->max_pairs = p->queues;
	n->active_pairs = 1;
	n->mtu = p->mtu;
	n->injected = p->fds != NULL;
	n->sync_fd = -1;
	n->watch_fd = -1;
	n->on_tap_gone = net_tap_gone;
	for (unsigned i = 0; i < TAP_MAX_QUEUES; i++)
		n->tap.fds[i] = -1;
	for (unsigned i = 0; i < NET_MAX_PAIRS; i++) {
		struct net_pair *q = &n->pairs[i];
		*q = (struct net_pair){ .n = n, .index = i, .fd = -1, .err_fd = -1,
					.vhost = { .fd = -1 }, .call = { { .fd = -1 }, { .fd = -1 } } };
	}
	memcpy(n->config.mac, p->mac, 6);
	n->config.status = VIRTIO_NET_S_LINK_UP;
	n->config.max_virtqueue_pairs = (uint16_t)n->max_pairs;
	n->config.mtu = (uint16_t)n->mtu;

	int rc = choose_backend(n, p);
	if (rc == 0 && p->bandwidth) {
		if (!n->ops->limits) {
			log_err(p->plat->log, n->short_name, "net%u.bandwidth needs the userspace "
				"backend; %s moves frames in the kernel (set net%u.vhost=off)",
				p->index, n->ops->name, p->index);
			rc = -EINVAL;
		} else {
			rc = n->ops->limits(n, p->bandwidth, p->bandwidth_burst);
		}
	}
	unsigned tap_off = TAP_OFF_CSUM | TAP_OFF_TSO4 | TAP_OFF_TSO6 | TAP_OFF_ECN | TAP_OFF_UFO;
	if (rc == 0 && !n->injected) {
		struct tap_params tp = { .name = p->tap, .nr_queues = n->max_pairs,
					 .mtu = n->mtu, .persist = p->persist_tap };
		rc = tap_open(&n->tap, &tp, p->plat->log, n->short_name);
		tap_off = n->tap.offloads;
	}
	n->overflow = rc == 0 ? malloc(NET_HDR_LEN + NET_MAX_FRAME) : NULL;
	if (rc == 0 && !n->overflow)
		rc = -ENOMEM;
	if (rc == 0)
		rc = virtio_dev_init(&n->dev, n->name, VIRTIO_ID_NET, &net_ops, n, p->plat,
				     2 * n->max_pairs + 1, NET_QUEUE_SIZE);
	if (rc < 0) {
		limit_destroy(&n->rx_limit);
		limit_destroy(&n->tx_limit);
		backend_close(n);
		tap_close(&n->tap, true);
		free(n->overflow);
		free(n);
		return rc;
	}
	uint64_t f = n->dev.host_features | offered_features(tap_off, n->max_pairs);
	for (unsigned i = 0; n->ops->offer && i < n->max_pairs; i++)
		f = n->ops->offer(&n->pairs[i], f);
	n->dev.host_features = f;
	for (unsigned i = 0; i < n->max_pairs; i++) {
		struct net_pair *q = &n->pairs[i];
		q->fd = n->injected ? p->fds[i] : n->tap.fds[i];
		q->attached = true;
		if (rc == 0 && n->ops->setup)
			rc = n->ops->setup(q);
	}
	n->sync_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (rc == 0 && n->sync_fd < 0)
		rc = -errno;
	if (rc == 0)
		rc = evloop_add(p->plat->loop, n->sync_fd, EPOLLIN, on_sync, n);
	if (rc == 0 && !n->injected)
		watch_tap(n);
	if (rc < 0) {
		log_err(p->plat->log, n->short_name, "setting up: %s", strerror(-rc));
		net_destroy(n, false);
		return rc;
	}
	pthread_mutex_lock(&n->dev.lock);
	pairs_apply(n);
	pthread_mutex_unlock(&n->dev.lock);
	log_info(p->plat->log, n->short_name,
		 "%s backend on %s, %u queue pair%s, MAC %02x:%02x:%02x:%02x:%02x:%02x, MTU %u",
		 n->ops->name,
		 n->injected ? "injected descriptors" : n->tap.name, n->max_pairs,
		 n->max_pairs == 1 ? "" : "s", n->config.mac[0], n->config.mac[1],
		 n->config.mac[2], n->config.mac[3], n->config.mac[4], n->config.mac[5], n->mtu);
	*out = n;
	return 0;
}

struct virtio_dev *net_dev(struct net *n)
{
	return &n->dev;
}

void net_destroy(struct net *n, bool keep_tap)
{
	if (!n)
		return;
	pthread_mutex_lock(&n->dev.lock);
	backend_close(n);
	pthread_mutex_unlock(&n->dev.lock);
	for (unsigned i = 0; i < n->max_pairs; i++)
		unwatch_pair(n, &n->pairs[i]);
	if (n->sync_fd >= 0) {
		evloop_del(n->plat->loop, n->sync_fd);
		close(n->sync_fd);
	}
	if (n->watch_fd >= 0) {
		evloop_del(n->plat->loop, n->watch_fd);
		close(n->watch_fd);
	}
	limit_destroy(&n->rx_limit);
	limit_destroy(&n->tx_limit);
	virtio_dev_uninit(&n->dev);
	if (!n->injected)
		tap_close(&n->tap, !keep_tap);
	free(n->overflow);
	free(n);
}

_Static_assert(NET_STATS_MAX_PAIRS == NET_MAX_PAIRS, "a queue pair without its counters");

void net_get_stats(struct net *n, struct net_stats *out)
{
	pthread_mutex_lock(&n->dev.lock);
	*out = n->st;
	out->active_pairs = n->active_pairs;
	out->max_pairs = n->max_pairs;
	for (unsigned i = 0; i < n->max_pairs && i < NET_STATS_MAX_PAIRS; i++)
		out->q[i] = n->pairs[i].st;
	out->link_up = n->config.status & VIRTIO_NET_S_LINK_UP;
	out->backend = n->ops->kind;
	pthread_mutex_unlock(&n->dev.lock);
}
