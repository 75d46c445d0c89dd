#include "net/vhost.h"

#include <errno.h>
#include <sys/ioctl.h>

uint64_t vhost_net_offer(uint64_t offer, uint64_t vhost)
{
	return vhost_offer_mask(offer, VHOST_NET_RING_FEATURES, vhost);
}

uint64_t vhost_net_features_for(uint64_t guest)
{
	/* The tap carries the 12-byte header itself (TUNSETVNETHDRSZ), so
	 * VHOST_NET_F_VIRTIO_NET_HDR stays off: vhost passes headers through
	 * and fills num_buffers for merged buffers. */
	return guest & VHOST_NET_RING_FEATURES;
}

int vhost_net_open(struct vhost *v, const struct guest_mem *m)
{
	return vhost_open(v, "/dev/vhost-net", m, NULL);
}

void vhost_net_close(struct vhost *v)
{
	vhost_net_stop(v);
	vhost_close(v);
}

static int set_backend(struct vhost *v, int tap_fd)
{
	for (unsigned i = 0; i < 2; i++) {
		struct vhost_vring_file b = { .index = i, .fd = tap_fd };
		if (ioctl(v->fd, VHOST_NET_SET_BACKEND, &b) < 0)
			return -errno;
	}
	return 0;
}

int vhost_net_start(struct vhost *v, uint64_t features, const struct vhost_ring rings[2],
		    int tap_fd)
{
	if (v->fd < 0)
		return -EBADF;
	vhost_net_stop(v);
	int rc = vhost_set_features(v, vhost_net_features_for(features));
	for (unsigned i = 0; rc == 0 && i < 2; i++)
		rc = vhost_ring_start(v, i, &rings[i]);
	if (rc < 0)
		return rc;
	v->running = true; /* from here on, stop undoes what took */
	rc = set_backend(v, tap_fd);
	if (rc < 0)
		vhost_net_stop(v);
	return rc;
}

int vhost_net_set_backend(struct vhost *v, int tap_fd)
{
	if (v->fd < 0 || !v->running)
		return -EBADF;
	return set_backend(v, tap_fd);
}

void vhost_net_stop(struct vhost *v)
{
	if (v->fd < 0 || !v->running)
		return;
	for (unsigned i = 0; i < 2; i++) {
		struct vhost_vring_file b = { .index = i, .fd = -1 };
		(void)ioctl(v->fd, VHOST_NET_SET_BACKEND, &b);
	}
	vhost_rings_stop(v, 2);
}
