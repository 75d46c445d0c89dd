/* The host kernel's vhost rings (<linux/vhost.h>), what every vhost device
 * shares: an instance bound to this process with the guest's memory
 * table, rings started from where the driver placed them, and stopped.
 * Each device adds its own part: net/vhost.c (the tap as backend),
 * vsock/vhost.c (the guest's CID, running).
 *
 * The kernel reads kicks from the queue's own ioeventfd
 * (VHOST_SET_VRING_KICK), interrupts the guest through the transport's
 * irqfd or a call eventfd (VHOST_SET_VRING_CALL), and signals a malformed
 * ring on the error eventfd (VHOST_SET_VRING_ERR).
 *
 * All functions return 0 or -errno; none logs. */
#ifndef KVMRUN_VIRTIO_VHOST_H
#define KVMRUN_VIRTIO_VHOST_H

#include <linux/vhost.h>
#include <stdbool.h>
#include <stdint.h>

#include "mem/guest_mem.h"

/* One ring as the driver placed it. */
struct vhost_ring {
	unsigned size;
	void *desc, *avail, *used;  /* host addresses (checked by the caller) */
	int kick_fd, call_fd, err_fd;
};

struct vhost {
	int fd;                     /* -1: not open */
	uint64_t features;          /* VHOST_GET_FEATURES */
	bool running;               /* rings started: vhost_rings_stop() has work */
};

/* @offer less the bits of @ring_features (those vhost must implement
 * itself) that @vhost (VHOST_GET_FEATURES) lacks. */
uint64_t vhost_offer_mask(uint64_t offer, uint64_t ring_features, uint64_t vhost);

/* The memory table of every RAM region of @m (guest-physical address,
 * size, host address). @out must have room for m->nr_regions regions.
 * Returns the number of regions. */
unsigned vhost_mem_table(const struct guest_mem *m, struct vhost_memory *out);

/* Opens @path (/dev/vhost-net, /dev/vhost-vsock), VHOST_SET_OWNER,
 * VHOST_GET_FEATURES and VHOST_SET_MEM_TABLE for @m; on failure closes it
 * and sets *@what (if given) to the step that failed. -ENOENT from the
 * open: the host has no such device. */
__attribute__((warn_unused_result))
int vhost_open(struct vhost *v, const char *path, const struct guest_mem *m, const char **what);
/* Closes the instance; the caller stops its rings first. */
void vhost_close(struct vhost *v);

__attribute__((warn_unused_result))
int vhost_set_features(struct vhost *v, uint64_t features);
/* Ring @i: NUM, BASE 0, ADDR, KICK, ERR and CALL. */
__attribute__((warn_unused_result))
int vhost_ring_start(struct vhost *v, unsigned i, const struct vhost_ring *r);
/* Rings 0..@n-1 stopped (VHOST_GET_VRING_BASE), their kick and call
 * eventfds let go; clears v->running. Nothing where nothing runs. */
void vhost_rings_stop(struct vhost *v, unsigned n);
/* VHOST_SET_VRING_CALL for ring @ring: the guest reprogrammed its vector. */
__attribute__((warn_unused_result))
int vhost_set_call(struct vhost *v, unsigned ring, int call_fd);

#endif
