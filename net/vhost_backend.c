/* The vhost-net backend of virtio-net (net/net.h): the host kernel moves
 * frames between the rings and the tap. This is its glue: the rings and
 * eventfds handed to net/vhost.c, the call eventfds relayed when the
 * transport has no irqfd, and its error eventfd. */
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "net/netdev.h"

static void on_call(void *cookie, uint32_t events)
{
	struct net_call *c = cookie;
	struct net *n = c->p->n;
	struct virtio_dev *d = &n->dev;
	uint64_t v;
	if (read(c->fd, &v, sizeof(v)) != sizeof(v))
		return;
	pthread_mutex_lock(&d->lock);
	if (virtio_dev_live(d)) {
		/* vhost already applied event-idx suppression */
		virtio_dev_signal_queue(d, 2 * c->p->index + c->ring);
	}
	pthread_mutex_unlock(&d->lock);
}

static void on_vhost_err(void *cookie, uint32_t events)
{
	struct net_pair *p = cookie;
	struct net *n = p->n;
	uint64_t v;
	if (read(p->err_fd, &v, sizeof(v)) != sizeof(v))
		return;
	pthread_mutex_lock(&n->dev.lock);
	n->st.needs_reset++;
	virtio_dev_needs_reset(&n->dev, "vhost-net found a malformed ring");
	vhost_net_stop(&p->vhost);
	pthread_mutex_unlock(&n->dev.lock);
}

/* The transport's irqfd for the ring, else our relayed call eventfd. */
static int call_fd_of(struct net_pair *p, unsigned ring)
{
	struct virtio_dev *d = &p->n->dev;
	int fd = -1;
	if (d->tops && d->tops->queue_irqfd)
		fd = d->tops->queue_irqfd(d, 2 * p->index + ring);
	return fd >= 0 ? fd : p->call[ring].fd;
}

static int vhost_backend_start(struct net_pair *p)
{
	struct net *n = p->n;
	struct virtio_dev *d = &n->dev;
	struct vhost_ring r[2];
	for (unsigned j = 0; j < 2; j++) {
		const struct virtio_queue *q = &d->queues[2 * p->index + j];
		/* The rings vq_setup() validated, never the transport's
		 * registers: the driver may have written those since. */
		struct vq_rings vr;
		if (!q->vq || !q->enabled || !vq_get_rings(q->vq, &vr))
			return 0; /* the driver did not set this pair up */
		r[j] = (struct vhost_ring){
			.size = vr.size, .desc = vr.desc, .avail = vr.avail, .used = vr.used,
			.kick_fd = q->kick_fd, .call_fd = call_fd_of(p, j), .err_fd = p->err_fd,
		};
	}
	int rc = vhost_net_start(&p->vhost, d->guest_features, r, p->fd);
	if (rc < 0) {
		log_err(n->plat->log, n->short_name, "vhost-net queue pair %u: %s", p->index,
			strerror(-rc));
		return rc;
	}
	/* look at the rings now: kicks sent before the backend existed */
	uint64_t one = 1;
	for (unsigned j = 0; j < 2; j++)
		if (write(r[j].kick_fd, &one, sizeof(one)) < 0)
			return -errno;
	return 0;
}

/* Opens /dev/vhost-net once per queue pair; all or none. */
static int vhost_backend_open(struct net *n)
{
	for (unsigned i = 0; i < n->max_pairs; i++) {
		int rc = vhost_net_open(&n->pairs[i].vhost, n->plat->mem);
		if (rc < 0) {
			for (unsigned j = 0; j < i; j++)
				vhost_net_close(&n->pairs[j].vhost);
			return rc;
		}
	}
	return 0;
}

static void vhost_backend_close(struct net_pair *p)
{
	vhost_net_close(&p->vhost);
}

static uint64_t vhost_backend_offer(const struct net_pair *p, uint64_t features)
{
	return vhost_net_offer(features, p->vhost.features);
}

static int vhost_backend_setup(struct net_pair *p)
{
	struct evloop *l = p->n->plat->loop;
	for (unsigned j = 0; j < 2; j++) {
		p->call[j] = (struct net_call){ .p = p, .ring = j,
						.fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK) };
		if (p->call[j].fd < 0)
			return -errno;
		int rc = evloop_add(l, p->call[j].fd, EPOLLIN, on_call, &p->call[j]);
		if (rc < 0) {
			close(p->call[j].fd);
			p->call[j].fd = -1;
			return rc;
		}
	}
	p->err_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (p->err_fd < 0)
		return -errno;
	int rc = evloop_add(l, p->err_fd, EPOLLIN, on_vhost_err, p);
	if (rc < 0) {
		close(p->err_fd);
		p->err_fd = -1;
	}
	return rc;
}

static void vhost_backend_teardown(struct net_pair *p)
{
	struct evloop *l = p->n->plat->loop;
	for (unsigned j = 0; j < 2; j++) {
		if (p->call[j].fd >= 0) {
			evloop_del(l, p->call[j].fd);
			close(p->call[j].fd);
		}
		p->call[j].fd = -1;
	}
	if (p->err_fd >= 0) {
		evloop_del(l, p->err_fd);
		close(p->err_fd);
	}
	p->err_fd = -1;
}

static void vhost_backend_reset(struct net_pair *p)
{
	vhost_net_stop(&p->vhost);
}

/* vhost reads the kicks itself: stop the event thread waking for them. */
static void vhost_backend_applied(struct net_pair *p)
{
	struct net *n = p->n;
	struct virtio_dev *d = &n->dev;
	if (p->kicks_paused)
		return;
	(void)evloop_mod(n->plat->loop, d->queues[2 * p->index].kick_fd, 0);
	(void)evloop_mod(n->plat->loop, d->queues[2 * p->index + 1].kick_fd, 0);
	p->kicks_paused = true;
}

/* vhost moves the frames: the tap is watched only for errors. */
static void vhost_backend_tap_ready(struct net_pair *p)
{
	netdev_watch(p, 0);
}

static void vhost_backend_irq_changed(struct net_pair *p)
{
	struct net *n = p->n;
	for (unsigned j = 0; p->vhost.running && j < 2; j++) {
		int rc = vhost_set_call(&p->vhost, j, call_fd_of(p, j));
		if (rc < 0)
			log_ratelimited(n->plat->log, &n->dev.rl, n->short_name,
					"re-pointing vhost interrupts: %s", strerror(-rc));
	}
}

static void vhost_backend_tap_replaced(struct net_pair *p)
{
	struct net *n = p->n;
	int rc;
	if (p->vhost.running && (rc = vhost_net_set_backend(&p->vhost, p->fd)) < 0)
		log_err(n->plat->log, n->short_name, "vhost-net queue pair %u: new tap: %s",
			p->index, strerror(-rc));
}

const struct net_backend_ops vhost_backend_ops = {
	.name = "vhost-net",
	.kind = NET_BACKEND_VHOST,
	.tap_events = 0, /* the kernel reads the tap */
	.open = vhost_backend_open,
	.close = vhost_backend_close,
	.offer = vhost_backend_offer,
	.setup = vhost_backend_setup,
	.teardown = vhost_backend_teardown,
	.start = vhost_backend_start,
	.reset = vhost_backend_reset,
	.applied = vhost_backend_applied,
	.tap_ready = vhost_backend_tap_ready,
	.irq_changed = vhost_backend_irq_changed,
	.tap_replaced = vhost_backend_tap_replaced,
};
