/* The saved state of a virtio device's core (virtio/device.h) and of its
 * model's part (virtio_dev_ops.state_save/state_load), for snapshots. A
 * transport (pci.c, mmio.c) writes its own registers, then this, into
 * the device's section.
 *
 * A save captures: the device id, queue count and offered features (to
 * recognise the device on load), the status byte (NEEDS_RESET included),
 * ISR, the accepted features, the config generation, the config MSI-X
 * vector, and per queue its registers (size, max size, enabled, the three
 * ring addresses, MSI-X vector) and, once the driver enabled it, where
 * the device is in the rings (last_avail_idx, used idx, chains in flight;
 * event-idx state lives in the rings, in guest memory). Then the model's
 * part.
 *
 * A load is two passes over the same bytes. virtio_dev_load_check reads
 * and checks everything against the device as created and changes
 * nothing: the same device id, queue count, max sizes and offered
 * features; DRIVER_OK only with FEATURES_OK, and with FEATURES_OK
 * accepted features within those offered and acceptable to the model
 * (before it they are whatever the driver wrote); ISR bits that exist; MSI-X vectors below @nr_vectors (0: the transport
 * has none) or VIRTIO_MSI_NO_VECTOR; for a queue with rings: a power-of-
 * two size up to its max, rings inside guest RAM and aligned (vq_setup),
 * indices that agree (vq_indices_valid); then the model's checks. Once
 * the reader finished cleanly, virtio_dev_load_apply reads them again and
 * applies them to the device, which must be as created (status 0): the
 * queues continue at their indices, and a device whose driver had set
 * DRIVER_OK is activated again as when the driver did it (its engine,
 * tap, timers; the transport keeps its own ioeventfds, irqfds and MSI
 * routes), the model's part is applied and every enabled queue is
 * re-kicked so a request made available before the snapshot is served.
 *
 * Threads: save with the device quiesced and d->lock held; loads on the
 * VM's thread before vCPUs run, d->lock held. */
#ifndef KVMRUN_VIRTIO_DEVICE_STATE_H
#define KVMRUN_VIRTIO_DEVICE_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "virtio/device.h"
#include "virtio/queue.h"
#include "lib/state.h"

struct virtio_queue_state {
	uint16_t size;
	bool enabled;
	uint64_t desc, driver, device;
	uint16_t msix_vector;
	bool has_rings;               /* enabled once: the vq exists */
	struct vq_indices ix;
};

/* The core state a load read (for the model's checks). */
struct virtio_dev_state {
	uint8_t status, isr;
	uint64_t guest_features;
	uint32_t config_generation;
	uint16_t config_msix_vector;
	unsigned nr_queues;
	struct virtio_queue_state q[VIRTIO_MAX_QUEUES];
};

void virtio_dev_save(struct virtio_dev *d, struct state_w *w);

/* Pass 1: reads and checks, into @st; the reader fails on a bad value. */
void virtio_dev_load_check(struct virtio_dev *d, struct state_r *r, unsigned nr_vectors,
			   struct virtio_dev_state *st);

/* Pass 2, over bytes pass 1 accepted: applies. Returns 0, or -errno when
 * the model could not be activated again (the device is then in
 * NEEDS_RESET, as after a failed DRIVER_OK). */
__attribute__((warn_unused_result))
int virtio_dev_load_apply(struct virtio_dev *d, struct state_r *r, unsigned nr_vectors);

/* Event thread. quiesce: kicks are no longer served (they are dropped)
 * and the model finishes its in-flight work (ops->quiesce). unquiesce:
 * serves kicks again and re-kicks every enabled queue, so a kick dropped
 * meanwhile is not lost. Each takes d->lock. */
void virtio_dev_quiesce(struct virtio_dev *d);
void virtio_dev_unquiesce(struct virtio_dev *d);

/* 0, or -ENOTSUP with the reason in @why: the model refuses (vhost-net
 * running the rings in the kernel, I/O still in flight). d->lock held. */
int virtio_dev_can_snapshot(struct virtio_dev *d, char *why, size_t len);

#endif
