/* The vhost-net backend (<linux/vhost.h>): one /dev/vhost-net instance per
 * queue pair, ring 0 = receiveq, ring 1 = transmitq, the pair's tap queue
 * as backend. The kernel reads kicks from the queue's own ioeventfd
 * (VHOST_SET_VRING_KICK) and interrupts the guest through the transport's
 * irqfd (VHOST_SET_VRING_CALL), so packets never pass through kvmrun.
 *
 * Life: vhost_open() at VM creation (before the capability drop: opening
 * /dev/vhost-net and VHOST_SET_OWNER bind the instance to this process),
 * then per DRIVER_OK vhost_start() and per device reset vhost_stop()
 * (backend detached, rings stopped; the next start rebuilds them from the
 * driver's new ring addresses). vhost_set_call() re-points a ring's
 * interrupt when the guest reprograms its MSI-X vector.
 *
 * All functions return 0 or -errno; none logs. */
#ifndef KVMRUN_VHOST_H
#define KVMRUN_VHOST_H

#include <linux/vhost.h>
#include <stdbool.h>
#include <stdint.h>

#include "mem/guest_mem.h"

/* Feature bits vhost-net must implement itself (ring layout, merged
 * receive buffers): the device offers them only where vhost does. Every
 * other virtio-net feature is the tap's or kvmrun's (config, controlq). */
#define VHOST_NET_RING_FEATURES ((1ull << 15) /* VIRTIO_NET_F_MRG_RXBUF */ | \
				 (1ull << 28) /* VIRTIO_F_INDIRECT_DESC */ | \
				 (1ull << 29) /* VIRTIO_F_EVENT_IDX */ | \
				 (1ull << 32) /* VIRTIO_F_VERSION_1 */)

/* What the device can offer given VHOST_GET_FEATURES @vhost: @offer with
 * the ring features vhost lacks removed. */
uint64_t vhost_offer_mask(uint64_t offer, uint64_t vhost);
/* What to VHOST_SET_FEATURES for the negotiated @guest features. */
uint64_t vhost_features_for(uint64_t guest);

/* The memory table of every RAM region of @m (guest-physical address,
 * size, host address). @out must have room for m->nr_regions regions.
 * Returns the number of regions. */
unsigned vhost_mem_table(const struct guest_mem *m, struct vhost_memory *out);

/* One ring as the driver placed it. */
struct vhost_ring {
	unsigned size;
	void *desc, *avail, *used;  /* host addresses (checked by the caller) */
	int kick_fd, call_fd, err_fd;
};

struct vhost {
	int fd;
	uint64_t features;          /* VHOST_GET_FEATURES */
	bool running;
};

/* Opens /dev/vhost-net, VHOST_SET_OWNER, VHOST_GET_FEATURES and
 * VHOST_SET_MEM_TABLE for @m. -ENOENT: the host has no vhost-net. */
__attribute__((warn_unused_result))
int vhost_open(struct vhost *v, const struct guest_mem *m);
void vhost_close(struct vhost *v);

/* VHOST_SET_FEATURES, then for both rings NUM, BASE 0, ADDR, KICK, CALL,
 * ERR, and NET_SET_BACKEND to @tap_fd. */
__attribute__((warn_unused_result))
int vhost_start(struct vhost *v, uint64_t features, const struct vhost_ring rings[2],
		int tap_fd);
/* VHOST_NET_SET_BACKEND of both rings to @tap_fd on a running instance:
 * the rings go on where they were (the tap was replaced under them). */
__attribute__((warn_unused_result))
int vhost_set_backend(struct vhost *v, int tap_fd);
/* Detaches the backend and stops both rings (VHOST_GET_VRING_BASE). */
void vhost_stop(struct vhost *v);
/* VHOST_SET_VRING_CALL for ring @ring (0 rx, 1 tx). */
__attribute__((warn_unused_result))
int vhost_set_call(struct vhost *v, unsigned ring, int call_fd);

#endif
