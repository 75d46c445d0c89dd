/* The userspace data path of virtio-net (5.1.6.3 receive, 5.1.6.2
 * transmit): the event thread moves frames between the rings and the tap
 * with one readv/writev per frame straight from/to guest buffers, and
 * coalesces used-buffer interrupts per batch. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "net/netdev.h"

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A frame's size is known only once it moved: it was admitted for one
 * byte (limit.h), the rest is charged after. */
static uint64_t past_first(uint64_t bytes)
{
	return bytes ? bytes - 1 : 0;
}

static void userspace_reset(struct net_pair *p)
{
	if (!p->rx)
		return;
	p->rx->nr_chains = 0;
	p->rx->nr_segs = 0;
	p->rx->room = 0;
	p->rx->held_len = 0;
}

/* Writes @len bytes at offset @off of the chain's writable part. */
static void chain_write(const struct vq_chain *c, uint64_t off, const void *src, size_t len)
{
	const uint8_t *s = src;
	for (uint32_t i = c->nr_readable; i < c->nr_segs && len; i++) {
		const struct vq_seg *g = &c->segs[i];
		if (off >= g->len) {
			off -= g->len;
			continue;
		}
		size_t k = g->len - off < len ? g->len - off : len;
		memcpy((uint8_t *)g->host + off, s, k);
		s += k;
		len -= k;
		off = 0;
	}
}

/* Drops the first @k reserved chains (pushed or given up). */
static void rx_consume(struct net_rxq *rx, unsigned k)
{
	uint64_t room = 0;
	for (unsigned i = 0; i < k; i++)
		room += rx->chains[i].writable_len;
	unsigned seg_off = k < rx->nr_chains ? (unsigned)(rx->chains[k].segs - rx->segs) : rx->nr_segs;
	memmove(rx->segs, rx->segs + seg_off, (rx->nr_segs - seg_off) * sizeof(rx->segs[0]));
	memmove(rx->chains, rx->chains + k, (rx->nr_chains - k) * sizeof(rx->chains[0]));
	rx->nr_chains -= k;
	rx->nr_segs -= seg_off;
	rx->room -= room;
	for (unsigned i = 0; i < rx->nr_chains; i++)
		rx->chains[i].segs -= seg_off;
}

enum { FILL_MALFORMED = -1, FILL_EMPTY = 0, FILL_READY = 1, FILL_YIELD = 2 };

/* Reserves receive chains: one without merged buffers; with them, until
 * they hold @want bytes (or the ring ran dry with room for a full-size
 * non-GSO frame, or every buffer of the ring is ours). Chains with no room
 * for the header go straight back, empty: *@pushed and *@bad count those,
 * and once *@bad reaches NET_RX_BAD_BUDGET (a driver can post them
 * without end) it returns FILL_YIELD. */
static int rx_fill(struct net_pair *p, struct vq *vq, bool mrg, uint64_t want, unsigned *pushed,
		   unsigned *bad)
{
	struct net *n = p->n;
	struct net_rxq *rx = p->rx;
	uint64_t small = net_rx_max(0, n->mtu);
	uint32_t qsize = n->dev.queues[2 * p->index].size;
	for (;;) {
		if (rx->nr_chains > 0 && (!mrg || rx->room >= want))
			return FILL_READY;
		if (rx->nr_chains == NET_QUEUE_SIZE || NET_RX_SEGS - rx->nr_segs < NET_CHAIN_SEGS)
			return rx->nr_chains ? FILL_READY : FILL_EMPTY;
		struct vq_chain *c = &rx->chains[rx->nr_chains];
		*c = (struct vq_chain){ .segs = rx->segs + rx->nr_segs, .cap = NET_CHAIN_SEGS };
		int r = vq_pop(vq, c);
		if (r < 0)
			return FILL_MALFORMED;
		if (r == 0) {
			bool enough = rx->room >= small || rx->nr_chains >= qsize;
			return rx->nr_chains && enough ? FILL_READY : FILL_EMPTY;
		}
		if (c->nr_readable || c->writable_len < NET_HDR_LEN) {
			n->st.rx_bad_buffers++;
			p->st.rx_drops++;
			log_ratelimited(n->plat->log, &n->dev.rl, n->short_name,
					"receive buffer of %llu writable bytes (%u readable segments) "
					"returned unused", (unsigned long long)c->writable_len,
					c->nr_readable);
			if (vq_push(vq, c->head, 0) < 0)
				return FILL_MALFORMED;
			(*pushed)++;
			if (++(*bad) >= NET_RX_BAD_BUDGET)
				return FILL_YIELD;
			continue;
		}
		rx->nr_chains++;
		rx->nr_segs += c->nr_segs;
		rx->room += c->writable_len;
	}
}

/* The frame of @got bytes is in the reserved chains: hand it over. */
static int rx_deliver(struct net_pair *p, struct vq *vq, bool mrg, size_t got)
{
	struct net_rxq *rx = p->rx;
	unsigned k = 1;
	if (mrg) {
		uint64_t left = got;
		for (k = 0; k < rx->nr_chains && left; k++)
			left -= left < rx->chains[k].writable_len ? left : rx->chains[k].writable_len;
	}
	uint16_t nbuf = (uint16_t)k;
	chain_write(&rx->chains[0], offsetof(struct virtio_net_hdr_v1, num_buffers), &nbuf,
		    sizeof(nbuf));
	uint64_t left = got;
	for (unsigned i = 0; i < k; i++) {
		uint32_t w = (uint32_t)(left < rx->chains[i].writable_len ? left
							       : rx->chains[i].writable_len);
		if (vq_push(vq, rx->chains[i].head, w) < 0)
			return -EINVAL;
		left -= w;
	}
	rx_consume(rx, k);
	return 0;
}

/* No more chains can be reserved: every buffer of the ring is ours, or
 * the reservation is full. */
static bool rx_full(const struct net_pair *p)
{
	const struct net_rxq *rx = p->rx;
	return rx->nr_chains >= p->n->dev.queues[2 * p->index].size ||
	       rx->nr_chains == NET_QUEUE_SIZE || NET_RX_SEGS - rx->nr_segs < NET_CHAIN_SEGS;
}

static void rx_drop_big(struct net_pair *p, size_t got, uint64_t cap)
{
	struct net *n = p->n;
	n->st.rx_dropped_small++;
	p->st.rx_drops++;
	log_ratelimited(n->plat->log, &n->dev.rl, n->short_name,
			"received frame of %zu bytes does not fit %llu bytes of receive buffers: "
			"dropped", got, (unsigned long long)cap);
}

/* The frame of @got bytes read into chains holding @cap: its tail beyond
 * them went to the overflow area. With merged buffers it is kept until
 * the guest posts enough chains; true if so. */
static bool rx_hold(struct net_pair *p, bool mrg, size_t got, uint64_t cap)
{
	struct net_rxq *rx = p->rx;
	if (!mrg || rx_full(p))
		return false;
	if (!rx->held && !(rx->held = malloc(NET_HDR_LEN + NET_MAX_FRAME)))
		return false;
	memcpy(rx->held, p->n->overflow, got - cap);
	rx->held_len = got;
	rx->held_chains = rx->nr_chains;
	return true;
}

/* The held frame's tail into the chains reserved after its head. */
static void rx_unhold(struct net_rxq *rx)
{
	uint64_t head = 0;
	for (unsigned i = 0; i < rx->held_chains; i++)
		head += rx->chains[i].writable_len;
	uint64_t want = rx->held_len - head;
	const uint8_t *src = rx->held;
	for (unsigned i = rx->held_chains; i < rx->nr_chains && want; i++) {
		uint64_t k = want < rx->chains[i].writable_len ? want : rx->chains[i].writable_len;
		chain_write(&rx->chains[i], 0, src, (size_t)k);
		src += k;
		want -= k;
	}
}

enum { RX_NEXT = -1, RX_STOP = -2 };

/* One frame from the tap into the reserved chains: its length, or
 * RX_NEXT (nothing to deliver: dropped, held, interrupted) or RX_STOP
 * (the tap is empty or gone). */
static ssize_t rx_read(struct net_pair *p, bool mrg)
{
	struct net *n = p->n;
	struct net_rxq *rx = p->rx;
	unsigned nv = 0, last = mrg ? rx->nr_chains : 1;
	uint64_t cap = 0;
	for (unsigned i = 0; i < last; i++) {
		const struct vq_chain *c = &rx->chains[i];
		for (uint32_t s = 0; s < c->nr_segs; s++)
			rx->iov[nv++] = (struct iovec){ c->segs[s].host, c->segs[s].len };
		cap += c->writable_len;
	}
	/* never written past the buffers: the rest goes to the overflow area */
	rx->iov[nv++] = (struct iovec){ n->overflow, NET_HDR_LEN + NET_MAX_FRAME };
	ssize_t got = readv(p->fd, rx->iov, (int)nv);
	if (got < 0) {
		if (errno == EINTR)
			return RX_NEXT;
		if (errno != EAGAIN)
			n->on_tap_gone(n, strerror(errno));
		return RX_STOP;
	}
	if (got == 0) {
		n->on_tap_gone(n, "end of file");
		return RX_STOP;
	}
	if ((size_t)got < NET_HDR_LEN) {
		n->st.rx_short++;
		p->st.rx_drops++;
		return RX_NEXT;
	}
	if ((uint64_t)got > cap) {
		/* held for more chains, or dropped: the chains stay for the
		 * next frame */
		if (!rx_hold(p, mrg, (size_t)got, cap))
			rx_drop_big(p, (size_t)got, cap);
		return RX_NEXT;
	}
	return got;
}

static void userspace_rx(struct net_pair *p)
{
	struct net *n = p->n;
	struct virtio_dev *d = &n->dev;
	unsigned qi = 2 * p->index;
	struct vq *vq = d->queues[qi].vq;
	if (!virtio_dev_live(d) || !vq || p->index >= n->active_pairs || n->tap_gone || !p->rx) {
		netdev_watch(p, 0);
		return;
	}
	struct net_rxq *rx = p->rx;
	bool mrg = virtio_dev_has_feature(d, VIRTIO_NET_F_MRG_RXBUF);
	uint64_t want = net_rx_max(d->guest_features, n->mtu);
	unsigned pushed = 0, bad = 0;
	uint32_t events = EPOLLIN;
	for (unsigned f = 0; f < NET_RX_BUDGET; f++) {
		if (n->rx_limit.on && !limit_admit(&n->rx_limit, 0, 1, now_ns())) {
			/* out of tokens: leave frames in the tap until the timer */
			n->st.rx_throttled++;
			events = 0;
			break;
		}
		size_t held = rx->held_len;
		int r = rx_fill(p, vq, mrg, held ? held : want, &pushed, &bad);
		if (r == FILL_MALFORMED) {
			n->st.needs_reset++;
			virtio_dev_needs_reset(d, vq_error(vq) ? vq_error(vq) : "receive queue");
			events = 0;
			break;
		}
		if (r == FILL_YIELD) {
			/* come back on the next round; the tap stays watched */
			n->st.yields++;
			virtio_dev_rekick(d, qi);
			break;
		}
		if (held && rx->room < held && rx_full(p)) {
			rx_drop_big(p, held, rx->room); /* it can never fit */
			rx->held_len = 0;
			continue;
		}
		if (r == FILL_EMPTY || (held && rx->room < held)) {
			/* no buffers: stop reading the tap until the guest kicks */
			n->st.rx_stalls++;
			events = 0;
			break;
		}
		ssize_t got = (ssize_t)held;
		if (held) {
			rx_unhold(rx);
			rx->held_len = 0;
		} else if ((got = rx_read(p, mrg)) == RX_NEXT) {
			continue;
		} else if (got == RX_STOP) {
			break;
		}
		if (rx_deliver(p, vq, mrg, (size_t)got) < 0) {
			virtio_dev_needs_reset(d, "receive queue");
			events = 0;
			break;
		}
		pushed++;
		n->st.rx_frames++;
		n->st.rx_bytes += (uint64_t)got - NET_HDR_LEN;
		p->st.rx_packets++;
		p->st.rx_bytes += (uint64_t)got - NET_HDR_LEN;
		limit_charge(&n->rx_limit, 0, past_first((uint64_t)got - NET_HDR_LEN));
	}
	if (!n->tap_gone)
		netdev_watch(p, events);
	if (pushed)
		virtio_dev_used(d, qi);
}

static void userspace_tx(struct net_pair *p)
{
	struct net *n = p->n;
	struct virtio_dev *d = &n->dev;
	unsigned qi = 2 * p->index + 1;
	struct vq *vq = d->queues[qi].vq;
	if (!virtio_dev_live(d) || !vq)
		return;
	unsigned done = 0;
	bool more = false;
	for (;;) {
		if (done == NET_TX_BUDGET) {
			more = true;
			break;
		}
		if (n->tx_limit.on && !limit_admit(&n->tx_limit, 0, 1, now_ns())) {
			n->st.tx_throttled++; /* the limit's timer resumes */
			break;
		}
		struct vq_chain c = { .segs = n->tx_segs, .cap = VQ_MAX_SEGS };
		int r = vq_pop(vq, &c);
		if (r < 0) {
			n->st.needs_reset++;
			virtio_dev_needs_reset(d, vq_error(vq) ? vq_error(vq) : "transmit queue");
			break;
		}
		if (r == 0)
			break;
		done++;
		bool sent = false;
		if (c.nr_readable != c.nr_segs || c.readable_len < NET_HDR_LEN ||
		    c.readable_len > NET_HDR_LEN + NET_MAX_FRAME) {
			n->st.tx_bad++;
			log_ratelimited(n->plat->log, &d->rl, n->short_name,
					"transmit chain of %llu readable, %llu writable bytes: dropped",
					(unsigned long long)c.readable_len,
					(unsigned long long)c.writable_len);
		} else if (n->tap_gone) {
			n->st.tx_dropped_link_down++;
		} else if (p->index >= n->active_pairs) {
			n->st.tx_bad++; /* a queue pair the driver did not enable */
		} else {
			for (uint32_t s = 0; s < c.nr_segs; s++)
				n->tx_iov[s] = (struct iovec){ c.segs[s].host, c.segs[s].len };
			ssize_t w = writev(p->fd, n->tx_iov, (int)c.nr_segs);
			if (w >= 0) {
				n->st.tx_frames++;
				n->st.tx_bytes += c.readable_len - NET_HDR_LEN;
				p->st.tx_packets++;
				p->st.tx_bytes += c.readable_len - NET_HDR_LEN;
				sent = true;
				limit_charge(&n->tx_limit, 0, past_first(c.readable_len - NET_HDR_LEN));
			} else if (errno == EIO) {
				/* the host has not brought the tap up (yet) */
				n->st.tx_dropped_link_down++;
			} else if (errno == EBADFD || errno == EPIPE || errno == ECONNRESET) {
				n->on_tap_gone(n, strerror(errno));
				n->st.tx_dropped_link_down++;
			} else {
				n->st.tx_errors++;
				log_ratelimited(n->plat->log, &d->rl, n->short_name,
						"tap refused a %llu-byte frame: %s",
						(unsigned long long)c.readable_len, strerror(errno));
			}
		}
		if (!sent)
			p->st.tx_drops++;
		if (vq_push(vq, c.head, 0) < 0) {
			virtio_dev_needs_reset(d, "transmit queue");
			break;
		}
	}
	if (done)
		virtio_dev_used(d, qi);
	if (more) {
		/* yield to the other queues, come back on the next round */
		n->st.yields++;
		virtio_dev_rekick(d, qi);
	}
}

/* The driver kicked: a receive kick means buffers were posted (read the
 * tap again, it may have been paused for want of them). */
static void userspace_notify(struct net_pair *p, unsigned ring)
{
	struct net *n = p->n;
	if (ring == 1) {
		userspace_tx(p);
	} else if (p->index < n->active_pairs && !n->tap_gone) {
		netdev_watch(p, EPOLLIN);
		userspace_rx(p);
	}
}

/* Frames may wait in the tap: have the event thread look (a receive kick). */
static int userspace_tap_waiting(struct net *n)
{
	uint64_t one = 1;
	if (write(n->dev.queues[0].kick_fd, &one, sizeof(one)) < 0)
		return -errno;
	return 0;
}

static int userspace_setup(struct net_pair *p)
{
	p->rx = calloc(1, sizeof(*p->rx));
	return p->rx ? 0 : -ENOMEM;
}

static void userspace_teardown(struct net_pair *p)
{
	if (p->rx)
		free(p->rx->held);
	free(p->rx);
	p->rx = NULL;
}

/* netN.bandwidth's timers (event thread): tokens are back. */
static void userspace_rx_resume(void *cookie)
{
	struct net *n = cookie;
	pthread_mutex_lock(&n->dev.lock);
	for (unsigned i = 0; i < n->active_pairs && !n->tap_gone; i++) {
		netdev_watch(&n->pairs[i], EPOLLIN);
		userspace_rx(&n->pairs[i]);
	}
	pthread_mutex_unlock(&n->dev.lock);
}

static void userspace_tx_resume(void *cookie)
{
	struct net *n = cookie;
	pthread_mutex_lock(&n->dev.lock);
	for (unsigned i = 0; i < n->active_pairs; i++)
		userspace_tx(&n->pairs[i]);
	pthread_mutex_unlock(&n->dev.lock);
}

static int userspace_limits(struct net *n, uint64_t bandwidth, uint64_t burst)
{
	int rc = limit_create(&n->rx_limit, 0, 0, bandwidth, burst, n->plat->loop, n->plat->log,
			      n->short_name, userspace_rx_resume, n);
	if (rc == 0)
		rc = limit_create(&n->tx_limit, 0, 0, bandwidth, burst, n->plat->loop,
				  n->plat->log, n->short_name, userspace_tx_resume, n);
	return rc;
}

/* The receive chains popped ahead go back to the ring, still unused: the
 * next pops return them again. */
static void userspace_give_back(struct net_pair *p)
{
	struct vq *vq = p->n->dev.queues[2 * p->index].vq;
	if (!p->rx || !p->rx->nr_chains)
		return;
	if (!vq || vq_unpop(vq, p->rx->nr_chains) < 0)
		log_warn(p->n->plat->log, p->n->short_name, "queue pair %u: %u receive buffers "
			 "could not be given back", p->index, p->rx->nr_chains);
	userspace_reset(p);
}

const struct net_backend_ops userspace_ops = {
	.give_back = userspace_give_back,
	.name = "userspace",
	.kind = NET_BACKEND_USERSPACE,
	.tap_events = EPOLLIN, /* the event thread reads the tap */
	.setup = userspace_setup,
	.teardown = userspace_teardown,
	.tap_waiting = userspace_tap_waiting,
	.reset = userspace_reset,
	.tap_ready = userspace_rx,
	.notify = userspace_notify,
	.limits = userspace_limits,
};
