/* The vhost-net backend's kernel side (virtio/vhost.h plus the tap): one
 * /dev/vhost-net instance per queue pair, ring 0 = receiveq, ring 1 =
 * transmitq, the pair's tap queue as backend, so packets never pass
 * through kvmrun.
 *
 * Life: vhost_net_open() at VM creation (before the capability drop:
 * opening /dev/vhost-net and VHOST_SET_OWNER bind the instance to this
 * process), then per DRIVER_OK vhost_net_start() and per device reset
 * vhost_net_stop() (backend detached, rings stopped; the next start
 * rebuilds them from the driver's new ring addresses).
 *
 * All functions return 0 or -errno; none logs. */
#ifndef KVMRUN_NET_VHOST_H
#define KVMRUN_NET_VHOST_H

#include "virtio/vhost.h"

/* Feature bits vhost-net must implement itself (ring layout, merged
 * receive buffers): the device offers them only where vhost does. Every
 * other virtio-net feature is the tap's or kvmrun's (config, controlq). */
#define VHOST_NET_RING_FEATURES ((1ull << 15) /* VIRTIO_NET_F_MRG_RXBUF */ | \
				 (1ull << 28) /* VIRTIO_F_INDIRECT_DESC */ | \
				 (1ull << 29) /* VIRTIO_F_EVENT_IDX */ | \
				 (1ull << 32) /* VIRTIO_F_VERSION_1 */)

/* What the device can offer given VHOST_GET_FEATURES @vhost. */
uint64_t vhost_net_offer(uint64_t offer, uint64_t vhost);
/* What to VHOST_SET_FEATURES for the negotiated @guest features. */
uint64_t vhost_net_features_for(uint64_t guest);

/* vhost_open() of /dev/vhost-net. -ENOENT: the host has no vhost-net. */
__attribute__((warn_unused_result))
int vhost_net_open(struct vhost *v, const struct guest_mem *m);
/* Stops and closes. */
void vhost_net_close(struct vhost *v);

/* VHOST_SET_FEATURES, both rings started, and NET_SET_BACKEND to @tap_fd. */
__attribute__((warn_unused_result))
int vhost_net_start(struct vhost *v, uint64_t features, const struct vhost_ring rings[2],
		    int tap_fd);
/* VHOST_NET_SET_BACKEND of both rings to @tap_fd on a running instance:
 * the rings go on where they were (the tap was replaced under them). */
__attribute__((warn_unused_result))
int vhost_net_set_backend(struct vhost *v, int tap_fd);
/* Detaches the backend and stops both rings. */
void vhost_net_stop(struct vhost *v);

#endif
