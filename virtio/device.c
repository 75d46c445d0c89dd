#include "virtio/device.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "virtio/queue.h"

#define CORE_FEATURES ((1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_F_EVENT_IDX) | \
		       (1ull << VIRTIO_F_INDIRECT_DESC))

static struct virtio_dev *dev_of_queue(struct virtio_queue *vq_state, unsigned *qi);

/* Event thread: the guest wrote the queue's notify address. */
static void on_kick(void *cookie, uint32_t events)
{
	unsigned q;
	struct virtio_queue *qs = cookie;
	struct virtio_dev *d = dev_of_queue(qs, &q);
	uint64_t n;
	if (read(qs->kick_fd, &n, sizeof(n)) != sizeof(n))
		return;
	pthread_mutex_lock(&d->lock);
	qs->kicks++;
	if (d->quiesced) {
		/* dropped: virtio_dev_unquiesce re-kicks every queue */
	} else if (virtio_dev_live(d) && qs->vq && qs->enabled)
		d->ops->notify(d, q);
	else if (qs->vq && qs->enabled && !(d->status & VIRTIO_STATUS_DRIVER_OK))
		qs->kicked_early = true; /* seen again at DRIVER_OK: virtio_dev_set_status */
	pthread_mutex_unlock(&d->lock);
}

static struct virtio_dev *dev_of_queue(struct virtio_queue *qs, unsigned *qi)
{
	struct virtio_dev *d = qs->dev;
	*qi = (unsigned)(qs - d->queues);
	return d;
}

int virtio_dev_init(struct virtio_dev *d, const char *name, uint32_t device_id,
		    const struct virtio_dev_ops *ops, void *priv,
		    const struct virtio_platform *plat, unsigned nr_queues,
		    uint16_t max_queue_size)
{
	if (nr_queues == 0 || nr_queues > VIRTIO_MAX_QUEUES)
		return -EINVAL;
	memset(d, 0, sizeof(*d));
	d->name = name;
	d->device_id = device_id;
	d->ops = ops;
	d->priv = priv;
	d->plat = plat;
	d->nr_queues = nr_queues;
	d->host_features = ops->features | CORE_FEATURES;
	d->config_msix_vector = VIRTIO_MSI_NO_VECTOR;
	pthread_mutex_init(&d->lock, NULL);
	for (unsigned i = 0; i < nr_queues; i++) {
		struct virtio_queue *q = &d->queues[i];
		q->dev = d;
		q->max_size = q->size = max_queue_size;
		q->msix_vector = VIRTIO_MSI_NO_VECTOR;
		q->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (q->kick_fd < 0) {
			int e = errno;
			log_err(plat->log, name, "eventfd for queue %u: %s", i, strerror(e));
			virtio_dev_uninit(d);
			return -e;
		}
		if (plat->loop) {
			int rc = evloop_add(plat->loop, q->kick_fd, EPOLLIN, on_kick, q);
			if (rc < 0) {
				log_err(plat->log, name, "watching queue %u kicks: %s", i, strerror(-rc));
				close(q->kick_fd);
				q->kick_fd = -1;
				virtio_dev_uninit(d);
				return rc;
			}
		}
	}
	return 0;
}

static void queues_stop(struct virtio_dev *d)
{
	for (unsigned i = 0; i < d->nr_queues; i++) {
		struct virtio_queue *q = &d->queues[i];
		free(q->vq);
		q->vq = NULL;
		q->enabled = false;
		q->size = q->max_size;
		q->desc = q->driver = q->device = 0;
		q->msix_vector = VIRTIO_MSI_NO_VECTOR;
		q->kicked_early = false;
	}
}

void virtio_dev_uninit(struct virtio_dev *d)
{
	for (unsigned i = 0; i < d->nr_queues; i++) {
		struct virtio_queue *q = &d->queues[i];
		if (q->kick_fd >= 0) {
			if (d->plat->loop)
				evloop_del(d->plat->loop, q->kick_fd);
			close(q->kick_fd);
		}
		q->kick_fd = -1;
	}
	queues_stop(d);
	pthread_mutex_destroy(&d->lock);
}

uint32_t virtio_dev_features_word(const struct virtio_dev *d, uint32_t sel)
{
	return sel < 2 ? (uint32_t)(d->host_features >> (32 * sel)) : 0;
}

void virtio_dev_set_driver_features(struct virtio_dev *d, uint32_t sel, uint32_t val)
{
	/* 3.1.1: features can only be written before FEATURES_OK */
	if (sel >= 2 || (d->status & VIRTIO_STATUS_FEATURES_OK))
		return;
	uint64_t mask = 0xffffffffull << (32 * sel);
	d->guest_features = (d->guest_features & ~mask) | ((uint64_t)val << (32 * sel));
}

bool virtio_dev_has_feature(const struct virtio_dev *d, unsigned bit)
{
	return (d->guest_features >> bit) & 1;
}

bool virtio_dev_live(const struct virtio_dev *d)
{
	return (d->status & VIRTIO_STATUS_DRIVER_OK) &&
	       !(d->status & (VIRTIO_STATUS_DEVICE_NEEDS_RESET | VIRTIO_STATUS_FAILED));
}

static void dev_reset(struct virtio_dev *d)
{
	if (d->status & VIRTIO_STATUS_DRIVER_OK)
		d->ops->reset(d);
	queues_stop(d);
	d->status = 0;
	d->isr = 0;
	d->guest_features = 0;
	d->config_msix_vector = VIRTIO_MSI_NO_VECTOR;
}

bool virtio_dev_queue_enable(struct virtio_dev *d, unsigned qi)
{
	if (qi >= d->nr_queues)
		return false;
	struct virtio_queue *q = &d->queues[qi];
	struct vq *vq = calloc(1, sizeof(*vq));
	if (!vq)
		return false;
	unsigned feats = (virtio_dev_has_feature(d, VIRTIO_F_EVENT_IDX) ? VQ_F_EVENT_IDX : 0) |
			 (virtio_dev_has_feature(d, VIRTIO_F_INDIRECT_DESC) ? VQ_F_INDIRECT : 0);
	struct vq_layout l = {
		.size = q->size, .desc_gpa = q->desc, .avail_gpa = q->driver, .used_gpa = q->device,
	};
	int rc = vq_setup(vq, d->plat->mem, q->max_size, &l, feats);
	if (rc < 0) {
		free(vq);
		virtio_dev_needs_reset(d, "queue configured outside guest RAM or with a bad size");
		return false;
	}
	free(q->vq);
	q->vq = vq;
	q->enabled = true;
	return true;
}

static bool features_acceptable(struct virtio_dev *d)
{
	if (d->guest_features & ~d->host_features)
		return false;
	if (!virtio_dev_has_feature(d, VIRTIO_F_VERSION_1))
		return false; /* no legacy interface */
	return !d->ops->features_ok || d->ops->features_ok(d, d->guest_features);
}

/* A driver may make buffers available and notify before DRIVER_OK:
 * Linux's virtio_balloon posts its first statistics buffer in probe, before
 * virtio_device_ready(), and then waits for the device to hand it back.
 * Such a kick found the device not live and was dropped (on_kick); signal
 * it again now so the event thread looks at the queue. vCPU thread,
 * d->lock held. */
static void rekick_early(struct virtio_dev *d)
{
	uint64_t one = 1;
	for (unsigned i = 0; i < d->nr_queues; i++) {
		struct virtio_queue *q = &d->queues[i];
		if (!q->kicked_early)
			continue;
		q->kicked_early = false;
		if (q->kick_fd >= 0 && write(q->kick_fd, &one, sizeof(one)) < 0)
			log_ratelimited(d->plat->log, &d->rl, d->name, "queue %u: re-kick: %s", i,
					strerror(errno));
	}
}

void virtio_dev_set_status(struct virtio_dev *d, uint8_t status)
{
	if (status == 0) {
		dev_reset(d);
		return;
	}
	/* 2.1.2: "The driver MUST NOT clear a device status bit": only a
	 * reset (0) clears them. Were DRIVER_OK clearable, the reset after it
	 * would skip ops->reset (in-flight I/O, vhost, reserved buffers) and
	 * setting it again would run activate a second time. */
	uint8_t added = status & ~d->status;
	status |= d->status;
	if ((added & VIRTIO_STATUS_FEATURES_OK) && !features_acceptable(d))
		status &= (uint8_t)~VIRTIO_STATUS_FEATURES_OK; /* 3.1.1 step 6: driver re-reads */
	if ((added & VIRTIO_STATUS_DRIVER_OK) && !(status & VIRTIO_STATUS_FEATURES_OK)) {
		log_ratelimited(d->plat->log, &d->rl, d->name, "DRIVER_OK without FEATURES_OK");
		status &= (uint8_t)~VIRTIO_STATUS_DRIVER_OK;
	}
	/* NEEDS_RESET is the device's to set, never the driver's to clear */
	status = (uint8_t)((status & ~VIRTIO_STATUS_DEVICE_NEEDS_RESET) |
			   (d->status & VIRTIO_STATUS_DEVICE_NEEDS_RESET));
	d->status = status;
	if ((added & VIRTIO_STATUS_DRIVER_OK) && (status & VIRTIO_STATUS_DRIVER_OK)) {
		int rc = d->ops->activate ? d->ops->activate(d) : 0;
		if (rc < 0)
			virtio_dev_needs_reset(d, "device could not start");
		else
			rekick_early(d);
	}
}

void virtio_dev_config_read(struct virtio_dev *d, uint32_t off, void *data, unsigned len)
{
	if (off > d->ops->config_size || len > d->ops->config_size - off || !d->ops->config_read) {
		memset(data, 0, len);
		return;
	}
	d->ops->config_read(d, off, data, len);
}

void virtio_dev_config_write(struct virtio_dev *d, uint32_t off, const void *data, unsigned len)
{
	if (off > d->ops->config_size || len > d->ops->config_size - off || !d->ops->config_write)
		return;
	d->ops->config_write(d, off, data, len);
}

void virtio_dev_used(struct virtio_dev *d, unsigned q)
{
	if (q >= d->nr_queues || !d->queues[q].vq)
		return;
	if (!vq_should_notify(d->queues[q].vq))
		return;
	virtio_dev_signal_queue(d, q);
}

void virtio_dev_signal_queue(struct virtio_dev *d, unsigned q)
{
	d->isr |= VIRTIO_ISR_QUEUE;
	if (d->tops && d->tops->signal_queue)
		d->tops->signal_queue(d, q);
}

void virtio_dev_rekick(struct virtio_dev *d, unsigned q)
{
	if (q >= d->nr_queues || d->queues[q].kick_fd < 0)
		return;
	uint64_t one = 1;
	if (write(d->queues[q].kick_fd, &one, sizeof(one)) < 0)
		log_ratelimited(d->plat->log, &d->rl, d->name, "queue %u: re-kick: %s", q,
				strerror(errno));
}

void virtio_dev_needs_reset(struct virtio_dev *d, const char *why)
{
	if (d->status & VIRTIO_STATUS_DEVICE_NEEDS_RESET)
		return;
	log_ratelimited(d->plat->log, &d->rl, d->name,
			"malformed input from the guest driver (%s): device needs reset", why);
	d->status |= VIRTIO_STATUS_DEVICE_NEEDS_RESET;
	if (d->status & VIRTIO_STATUS_DRIVER_OK)
		virtio_dev_config_changed(d);
}

void virtio_dev_config_changed(struct virtio_dev *d)
{
	d->config_generation++;
	d->isr |= VIRTIO_ISR_CONFIG;
	if (d->tops && d->tops->signal_config)
		d->tops->signal_config(d);
}

void virtio_dev_signal_fd(struct virtio_dev *d, int fd, const char *what)
{
	uint64_t one = 1;
	if (fd >= 0 && write(fd, &one, sizeof(one)) < 0)
		log_ratelimited(d->plat->log, &d->rl, d->name, "%s: %s", what, strerror(errno));
}

void virtio_intx_init(struct virtio_intx *x)
{
	*x = (struct virtio_intx){ .fd = -1, .resample_fd = -1 };
}

int virtio_intx_wire(struct virtio_dev *d, struct virtio_intx *x, unsigned gsi,
		     void (*on_resample)(void *cookie, uint32_t events), void *cookie)
{
	const struct virtio_platform *p = d->plat;
	x->gsi = gsi;
	x->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	x->resample_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (x->fd < 0 || x->resample_fd < 0)
		return -errno;
	if (p->irqfd) {
		int rc = p->irqfd(p->cookie, x->fd, gsi, x->resample_fd, true);
		if (rc < 0)
			return rc;
		x->irqfd_on = true;
	}
	if (p->loop) {
		int rc = evloop_add(p->loop, x->resample_fd, EPOLLIN, on_resample, cookie);
		if (rc < 0)
			return rc;
		x->watched = true;
	}
	return 0;
}

void virtio_intx_unwire(struct virtio_dev *d, struct virtio_intx *x)
{
	const struct virtio_platform *p = d->plat;
	if (x->watched)
		evloop_del(p->loop, x->resample_fd);
	if (x->irqfd_on)
		p->irqfd(p->cookie, x->fd, x->gsi, x->resample_fd, false);
	if (x->fd >= 0)
		close(x->fd);
	if (x->resample_fd >= 0)
		close(x->resample_fd);
	virtio_intx_init(x);
}
