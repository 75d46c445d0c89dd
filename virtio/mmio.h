/* The virtio-mmio transport, version 2 (virtio spec 1.2, 4.2): one 4 KiB
 * register window per device in the MMIO hole, one level-triggered GSI.
 * Guests find the devices through the ACPI DSDT (LNRO0005) or the kernel
 * command line (virtio_mmio.device=4K@BASE:GSI, see virtio_mmio_cmdline). */
#ifndef KVMRUN_VIRTIO_MMIO_H
#define KVMRUN_VIRTIO_MMIO_H

#include <stddef.h>
#include <stdint.h>

#include "devices/bus.h"
#include "virtio/device.h"
#include "lib/state.h"

struct virtio_mmio;

/* Registers the window at @base on @mmio and wires @d's queue kicks
 * (ioeventfd on QueueNotify with the queue index as datamatch) and its
 * interrupt (irqfd with resample on @gsi). @d must be initialised. */
__attribute__((warn_unused_result))
int virtio_mmio_create(struct bus *mmio, uint64_t base, unsigned gsi,
		       struct virtio_dev *d, struct virtio_mmio **out);
void virtio_mmio_destroy(struct virtio_mmio *m);

/* Saved state (the payload of the device's section, version
 * VIRTIO_MMIO_STATE_VERSION): the three selector registers
 * (DeviceFeaturesSel, DriverFeaturesSel, QueueSel), then the device
 * (virtio/device_state.h). virtio_mmio_load checks the whole payload
 * before it changes anything, applies it to a transport as created, and
 * raises the interrupt again when ISR says one is owed. Returns 0, or
 * -EINVAL with "section NAME: reason" in r->err, or the activation's
 * error. Before vCPUs run. */
#define VIRTIO_MMIO_STATE_VERSION 1
void virtio_mmio_save(struct virtio_mmio *m, struct state_w *w);
__attribute__((warn_unused_result))
int virtio_mmio_load(struct virtio_mmio *m, struct state_r *r);

/* The device the transport carries. */
struct virtio_dev *virtio_mmio_dev(const struct virtio_mmio *m);

/* Appends " virtio_mmio.device=4K@0xBASE:GSI" to @buf (NUL-terminated,
 * capacity @cap); -ENOSPC if it does not fit. */
int virtio_mmio_cmdline(uint64_t base, unsigned gsi, char *buf, size_t cap);

#endif
