/* Snapshots of the VM's virtio devices: quiescing them for a pause, and
 * their saved state, one section per device, named by its transport and
 * its place there: "virtio-pci.N" (N: the Nth PCI function created,
 * disks, then the balloon, then nets, as vm_virtio_create makes them) or
 * "virtio-mmio.N" (the Nth slot). Each holds the transport's registers,
 * the device core's state and the model's (virtio/pci.h, virtio/mmio.h,
 * virtio/device_state.h, and each model's state_save: virtio-blk its
 * config space, to recognise the disk; virtio-net its MAC and active
 * queue pairs; the balloon its target, actual, inflated pages, held stats
 * buffer and last statistics).
 *
 * All on the event thread (quiesce, unquiesce, can_snapshot, save) or on
 * the VM's thread before vCPUs run (load). */
#ifndef KVMRUN_VM_VIRTIO_STATE_H
#define KVMRUN_VM_VIRTIO_STATE_H

#include <stddef.h>

#include "lib/state.h"

struct vm;

/* vCPUs paused: every device stops taking kicks (they are dropped, to be
 * re-checked by unquiesce), stops its own work (tap reads, the balloon's
 * stats timer) and completes what is in flight (io_uring requests) into
 * its used rings, interrupts included. Returns once nothing is in flight. */
void vm_virtio_quiesce(struct vm *vm);
/* Takes kicks again and re-kicks every enabled queue, so a request the
 * guest made available while paused is served. */
void vm_virtio_unquiesce(struct vm *vm);

/* 0, or -ENOTSUP with the reason in @why: a live vhost-net device (its
 * rings are in the host kernel), or a device with I/O still in flight.
 * Call while paused and quiesced. */
int vm_virtio_can_snapshot(struct vm *vm, char *why, size_t len);

/* Writes every device's section; paused and quiesced. 0 or -ENOMEM. */
int vm_virtio_save(struct vm *vm, struct state_w *w);

/* Reads every device's section into the devices vm_create built from the
 * snapshot's config (after board_load, which put their PCI BARs back),
 * guest RAM already restored. A missing section, one for a device this VM
 * does not have, or any invalid value fails with -EINVAL and "section
 * NAME: reason" in @err, leaving that device as created; a device that
 * cannot be started again fails with its error. */
int vm_virtio_load(struct vm *vm, const struct state_file *f, char *err, size_t len);

#endif
