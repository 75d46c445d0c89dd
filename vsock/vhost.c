/* The vhost-vsock backend of virtio-vsock (vsock/vsock.h, <linux/vhost.h>):
 * the host kernel runs the rx (0) and tx (1) rings. It reads kicks from the
 * queues' own ioeventfds (VHOST_SET_VRING_KICK) and interrupts through the
 * transport's irqfd (VHOST_SET_VRING_CALL), or through a call eventfd the
 * event thread relays where the transport has none (virtio-mmio, INTx).
 * The event queue (2) stays with the device model.
 *
 * Life: open at VM creation (/dev/vhost-vsock, VHOST_SET_OWNER, the memory
 * table, VHOST_VSOCK_SET_GUEST_CID: a CID another VM on the host holds
 * fails here, EADDRINUSE); per DRIVER_OK the rings and
 * VHOST_VSOCK_SET_RUNNING 1; per device reset RUNNING 0 and the rings
 * stopped. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "virtio/queue.h"
#include "virtio/vhost.h"
#include "vsock/vsockdev.h"

/* Ring features vhost must implement itself: offered only where it does. */
#define VHOST_RING_FEATURES ((1ull << VIRTIO_F_INDIRECT_DESC) | (1ull << VIRTIO_F_EVENT_IDX) | \
			     (1ull << VIRTIO_F_VERSION_1))

struct vh;

struct vh_call {
	struct vh *h;
	unsigned q;
	int fd;
};

struct vh {
	struct vsock *v;
	struct vhost vh;
	struct vh_call call[2];
	int err_fd;
};

static struct vh *vh_of(struct vsock *v)
{
	return v->be;
}

static void on_call(void *cookie, uint32_t events)
{
	struct vh_call *c = cookie;
	struct virtio_dev *d = &c->h->v->dev;
	uint64_t n;
	if (read(c->fd, &n, sizeof(n)) != sizeof(n))
		return;
	pthread_mutex_lock(&d->lock);
	if (virtio_dev_live(d))
		virtio_dev_signal_queue(d, c->q); /* vhost applied event-idx already */
	pthread_mutex_unlock(&d->lock);
}

static void vh_stop(struct vh *h)
{
	if (h->vh.fd < 0 || !h->vh.running)
		return;
	int off = 0;
	(void)ioctl(h->vh.fd, VHOST_VSOCK_SET_RUNNING, &off);
	vhost_rings_stop(&h->vh, 2);
}

static void on_err(void *cookie, uint32_t events)
{
	struct vh *h = cookie;
	struct virtio_dev *d = &h->v->dev;
	uint64_t n;
	if (read(h->err_fd, &n, sizeof(n)) != sizeof(n))
		return;
	pthread_mutex_lock(&d->lock);
	h->v->st.needs_reset++;
	virtio_dev_needs_reset(d, "vhost-vsock found a malformed ring");
	vh_stop(h);
	pthread_mutex_unlock(&d->lock);
}

/* The transport's irqfd for queue @q, else the relayed call eventfd. */
static int call_fd_of(struct vh *h, unsigned q)
{
	struct virtio_dev *d = &h->v->dev;
	int fd = -1;
	if (d->tops && d->tops->queue_irqfd)
		fd = d->tops->queue_irqfd(d, q);
	return fd >= 0 ? fd : h->call[q].fd;
}

static void vh_close(struct vsock *v)
{
	struct vh *h = vh_of(v);
	if (!h)
		return;
	vh_stop(h);
	for (unsigned i = 0; i < 2; i++) {
		if (h->call[i].fd >= 0) {
			evloop_del(v->plat->loop, h->call[i].fd);
			close(h->call[i].fd);
		}
	}
	if (h->err_fd >= 0) {
		evloop_del(v->plat->loop, h->err_fd);
		close(h->err_fd);
	}
	vhost_close(&h->vh);
	free(h);
	v->be = NULL;
}

static int vh_open(struct vsock *v)
{
	const struct logger *lg = v->plat->log;
	struct vh *h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	*h = (struct vh){ .v = v, .vh = { .fd = -1 }, .err_fd = -1,
			  .call = { { h, 0, -1 }, { h, 1, -1 } } };
	v->be = h;
	const char *what = "open";
	int rc = vhost_open(&h->vh, "/dev/vhost-vsock", v->plat->mem, &what);
	if (rc < 0 && strcmp(what, "open") == 0) {
		vh_close(v);
		return rc; /* the caller says what this means */
	}
	if (rc == 0) {
		what = "VHOST_VSOCK_SET_GUEST_CID";
		uint64_t cid = v->config.guest_cid;
		rc = ioctl(h->vh.fd, VHOST_VSOCK_SET_GUEST_CID, &cid) < 0 ? -errno : 0;
	}
	if (rc < 0) {
		log_err(lg, "vsock", "/dev/vhost-vsock: %s: %s%s", what, strerror(-rc),
			rc == -EADDRINUSE ? " (another VM on this host has this vsock.cid)" : "");
		vh_close(v);
	}
	return rc;
}

static int vh_setup(struct vsock *v)
{
	struct vh *h = vh_of(v);
	struct evloop *l = v->plat->loop;
	for (unsigned i = 0; i < 2; i++) {
		h->call[i].fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (h->call[i].fd < 0)
			return -errno;
		int rc = evloop_add(l, h->call[i].fd, EPOLLIN, on_call, &h->call[i]);
		if (rc < 0) {
			close(h->call[i].fd);
			h->call[i].fd = -1;
			return rc;
		}
		/* vhost reads these kicks itself: the event thread must not */
		(void)evloop_mod(l, v->dev.queues[i].kick_fd, 0);
	}
	h->err_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (h->err_fd < 0)
		return -errno;
	int rc = evloop_add(l, h->err_fd, EPOLLIN, on_err, h);
	if (rc < 0) {
		close(h->err_fd);
		h->err_fd = -1;
	}
	return rc;
}

static uint64_t vh_offer(struct vsock *v, uint64_t features)
{
	return vhost_offer_mask(features, VHOST_RING_FEATURES, vh_of(v)->vh.features);
}

static int vh_start(struct vsock *v)
{
	struct vh *h = vh_of(v);
	struct virtio_dev *d = &v->dev;
	vh_stop(h);
	struct vq_rings r[2];
	for (unsigned i = 0; i < 2; i++) {
		const struct virtio_queue *q = &d->queues[i];
		/* the rings vq_setup() validated, never the registers */
		if (!q->vq || !q->enabled || !vq_get_rings(q->vq, &r[i])) {
			log_err(v->plat->log, "vsock", "the driver did not enable the %s queue",
				i ? "tx" : "rx");
			return -EINVAL;
		}
	}
	int rc = vhost_set_features(&h->vh, d->guest_features & VHOST_RING_FEATURES);
	const char *what = "VHOST_SET_FEATURES";
	h->vh.running = true; /* from here on, vh_stop undoes what took */
	for (unsigned i = 0; rc == 0 && i < 2; i++) {
		what = "setting up a ring";
		struct vhost_ring ring = {
			.size = r[i].size, .desc = r[i].desc, .avail = r[i].avail, .used = r[i].used,
			.kick_fd = d->queues[i].kick_fd, .call_fd = call_fd_of(h, i),
			.err_fd = h->err_fd,
		};
		rc = vhost_ring_start(&h->vh, i, &ring);
	}
	if (rc == 0) {
		int on = 1;
		what = "VHOST_VSOCK_SET_RUNNING";
		rc = ioctl(h->vh.fd, VHOST_VSOCK_SET_RUNNING, &on) < 0 ? -errno : 0;
	}
	if (rc < 0) {
		log_err(v->plat->log, "vsock", "vhost-vsock: %s: %s", what, strerror(-rc));
		vh_stop(h);
		return rc;
	}
	/* look at the rings now: buffers the driver posted before */
	uint64_t one = 1;
	for (unsigned i = 0; i < 2; i++)
		if (write(d->queues[i].kick_fd, &one, sizeof(one)) < 0)
			return -errno;
	return 0;
}

static void vh_reset(struct vsock *v)
{
	vh_stop(vh_of(v));
}

static void vh_irq_changed(struct vsock *v)
{
	struct vh *h = vh_of(v);
	for (unsigned i = 0; h->vh.running && i < 2; i++) {
		int rc = vhost_set_call(&h->vh, i, call_fd_of(h, i));
		if (rc < 0)
			log_ratelimited(v->plat->log, &v->dev.rl, "vsock",
					"re-pointing vhost-vsock interrupts: %s", strerror(-rc));
	}
}

const struct vsock_backend_ops vsock_vhost_ops = {
	.name = "vhost-vsock",
	.vhost = true,
	.open = vh_open,
	.setup = vh_setup,
	.close = vh_close,
	.offer = vh_offer,
	.start = vh_start,
	.reset = vh_reset,
	.irq_changed = vh_irq_changed,
};
