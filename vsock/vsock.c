/* virtio-vsock: config space, features, the event queue and the choice and
 * life of the backend (see vsock/vsock.h). */
#include "vsock/vsock.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vsock/vsockdev.h"

static struct vsock *vsock_of(struct virtio_dev *d)
{
	return d->priv;
}

static void vsock_config_read(struct virtio_dev *d, uint32_t off, void *data, unsigned len)
{
	memcpy(data, (const uint8_t *)&vsock_of(d)->config + off, len);
}

static int vsock_activate(struct virtio_dev *d)
{
	struct vsock *v = vsock_of(d);
	return v->ops->start ? v->ops->start(v) : 0;
}

static void vsock_notify(struct virtio_dev *d, unsigned q)
{
	struct vsock *v = vsock_of(d);
	/* 5.10.6.6: the event queue's buffers wait for an event (only a
	 * transport reset after migration has one); they stay posted */
	if (q != VSOCK_QUEUE_EVENT && v->ops->notify)
		v->ops->notify(v, q);
}

static void vsock_reset(struct virtio_dev *d)
{
	struct vsock *v = vsock_of(d);
	if (v->ops->reset)
		v->ops->reset(v);
}

static void vsock_irq_changed(struct virtio_dev *d)
{
	struct vsock *v = vsock_of(d);
	if (v->ops->irq_changed)
		v->ops->irq_changed(v);
}

/* Connections live in the host kernel (vhost) or in kvmrun's sockets
 * (userspace), and neither is saved. */
static const char *vsock_snapshot_refusal(struct virtio_dev *d)
{
	(void)d;
	return "vsock connections are not saved: snapshot a VM without vsock.cid";
}

static const struct virtio_dev_ops vsock_ops = {
	.snapshot_refusal = vsock_snapshot_refusal,
	.features = 0, /* 5.10.3: no stream feature bits; SEQPACKET is not offered */
	.config_size = sizeof(struct vsock_config),
	.config_read = vsock_config_read,
	.activate = vsock_activate,
	.notify = vsock_notify,
	.reset = vsock_reset,
	.irq_changed = vsock_irq_changed,
};

static int choose_backend(struct vsock *v, const struct vsock_params *p)
{
	const struct logger *lg = p->plat->log;
	if (p->backend == VSOCK_BACKEND_USERSPACE) {
		v->ops = &vsock_uds_ops;
		return v->ops->open(v);
	}
	int rc = vsock_vhost_ops.open(v);
	if (rc == 0) {
		v->ops = &vsock_vhost_ops;
		return 0;
	}
	/* no vhost-vsock here, or not for this user: auto may fall back; a
	 * CID another VM holds (EADDRINUSE) or a failing ioctl may not */
	bool absent = rc == -ENOENT || rc == -ENODEV;
	bool unusable = absent || rc == -EACCES || rc == -EPERM;
	if (p->backend == VSOCK_BACKEND_VHOST || !unusable) {
		if (unusable)
			log_err(lg, "vsock", "vsock.backend=vhost but /dev/vhost-vsock cannot be used: "
				"%s (%s, or vsock.backend=userspace with vsock.uds=PATH)",
				strerror(-rc), absent ? "modprobe vhost_vsock" : "check its permissions");
		return rc;
	}
	if (!p->uds) {
		log_err(lg, "vsock", "vsock.cid=%u: /dev/vhost-vsock: %s, and the userspace "
			"backend needs vsock.uds=PATH (or modprobe vhost_vsock)", p->cid,
			strerror(-rc));
		return rc;
	}
	log_info(lg, "vsock", "vhost-vsock unavailable (/dev/vhost-vsock: %s): userspace backend",
		 strerror(-rc));
	v->ops = &vsock_uds_ops;
	return v->ops->open(v);
}

int vsock_create(const struct vsock_params *p, struct vsock **out)
{
	if (!p->plat->loop || p->cid < VSOCK_CID_MIN || p->cid > VSOCK_CID_MAX)
		return -EINVAL;
	struct vsock *v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	v->plat = p->plat;
	v->config.guest_cid = p->cid;
	if (p->uds && !(v->uds = strdup(p->uds))) {
		free(v);
		return -ENOMEM;
	}
	int rc = choose_backend(v, p);
	if (rc < 0) {
		free(v->uds);
		free(v);
		return rc;
	}
	rc = virtio_dev_init(&v->dev, "virtio-vsock", VIRTIO_ID_VSOCK, &vsock_ops, v, p->plat,
			     VSOCK_NR_QUEUES, VSOCK_QUEUE_SIZE);
	if (rc < 0) {
		v->ops->close(v);
		free(v->uds);
		free(v);
		return rc;
	}
	if (v->ops->offer)
		v->dev.host_features = v->ops->offer(v, v->dev.host_features);
	v->st.vhost = v->ops->vhost;
	if (v->ops->setup && (rc = v->ops->setup(v)) < 0) {
		log_err(p->plat->log, "vsock", "setting up: %s", strerror(-rc));
		vsock_destroy(v);
		return rc;
	}
	if (v->ops->vhost)
		log_info(p->plat->log, "vsock", "guest CID %u, vhost-vsock backend", p->cid);
	else
		log_info(p->plat->log, "vsock", "guest CID %u, userspace backend on %s", p->cid,
			 v->uds);
	*out = v;
	return 0;
}

struct virtio_dev *vsock_dev(struct vsock *v)
{
	return &v->dev;
}

void vsock_destroy(struct vsock *v)
{
	if (!v)
		return;
	pthread_mutex_lock(&v->dev.lock);
	v->ops->close(v);
	pthread_mutex_unlock(&v->dev.lock);
	virtio_dev_uninit(&v->dev);
	free(v->uds);
	free(v);
}

void vsock_get_stats(struct vsock *v, struct vsock_stats *out)
{
	pthread_mutex_lock(&v->dev.lock);
	*out = v->st;
	pthread_mutex_unlock(&v->dev.lock);
}
