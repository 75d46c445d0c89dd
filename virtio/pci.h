/* The virtio 1.x modern PCI transport (virtio spec 1.2, 4.1), non-
 * transitional: vendor 0x1af4, device 0x1040 + device id, revision 1
 * (4.1.2.1), subsystem 0x1af4:0x40+device id.
 *
 * Everything lives in BAR0 (VIRTIO_PCI_BAR0_SIZE bytes, 4 KiB per region):
 *   0x0000 common configuration (4.1.4.3)
 *   0x1000 ISR status, read-to-clear (4.1.4.5)
 *   0x2000 device-specific configuration (4.1.4.6), if the device has one
 *   0x3000 notifications (4.1.4.4): queue q at 0x3000 + 4*q
 *          (queue_notify_off = q, notify_off_multiplier = 4)
 *   0x4000 MSI-X table, nr_queues + 1 vectors
 *   0x5000 MSI-X pending bit array
 * The capability list: common, notify, ISR, device (vendor caps, 4.1.4),
 * the PCI configuration access capability (4.1.4.9) and MSI-X.
 *
 * Kicks: each queue's kick eventfd (created by virtio_dev_init) is attached
 * with plat->ioeventfd at its notify address with length 0 and no
 * datamatch: any write width at that address kicks (KVM then uses its fast
 * MMIO path, no instruction decoding). It moves with BAR0 and is detached
 * while memory decoding is off. A notify write that reaches userspace
 * anyway (an odd offset, no ioeventfd support) writes the eventfd itself.
 *
 * Interrupts (4.1.5.3, 4.1.5.4): with MSI-X enabled, each vector has an
 * eventfd registered with plat->irqfd on a GSI from plat->msi_alloc, routed
 * with plat->msi_route to the table entry's message when the vector is
 * unmasked; a masked vector's interrupt sets its PBA bit and is delivered
 * on unmask. With MSI-X disabled, INTA# goes through an irqfd with a
 * resample fd on pci_host_slot_gsi(slot): it is asserted on an interrupt
 * (unless the command register's interrupt disable bit is set); reading
 * ISR clears it, and at the guest's EOI (the resample fd, watched on
 * plat->loop) it is asserted again while ISR is non-zero. KVM drops the
 * line itself at EOI, so an ISR read cannot lower it earlier.
 *
 * Threads: BAR and config accesses on vCPU threads, the resample fd on the
 * event thread; all transport state is under d->lock (taken after the PCI
 * host's locks, see devices/pci_host.h).
 *
 * Files: virtio/pci.c holds configuration space, BAR0 and INTx,
 * virtio/pci_msix.c the MSI-X table and vectors; virtio/pci_priv.h is
 * the state the two share. */
#ifndef KVMRUN_VIRTIO_PCI_H
#define KVMRUN_VIRTIO_PCI_H

#include "devices/pci_host.h"
#include "virtio/device.h"
#include "lib/state.h"

#define VIRTIO_PCI_VENDOR_ID    0x1af4
#define VIRTIO_PCI_DEVICE_BASE  0x1040
#define VIRTIO_PCI_BAR0_SIZE    0x8000u

/* BAR0 layout */
#define VIRTIO_PCI_COMMON_OFF   0x0000u
#define VIRTIO_PCI_COMMON_LEN   0x003cu  /* through queue_reset (1.2) */
#define VIRTIO_PCI_ISR_OFF      0x1000u
#define VIRTIO_PCI_DEVICE_OFF   0x2000u
#define VIRTIO_PCI_DEVICE_MAX   0x1000u
#define VIRTIO_PCI_NOTIFY_OFF   0x3000u
#define VIRTIO_PCI_NOTIFY_MULT  4u
#define VIRTIO_PCI_MSIX_TABLE   0x4000u
#define VIRTIO_PCI_MSIX_PBA     0x5000u

/* 4.1.4 cfg_type values */
#define VIRTIO_PCI_CAP_COMMON_CFG 1
#define VIRTIO_PCI_CAP_NOTIFY_CFG 2
#define VIRTIO_PCI_CAP_ISR_CFG    3
#define VIRTIO_PCI_CAP_DEVICE_CFG 4
#define VIRTIO_PCI_CAP_PCI_CFG    5

/* 4.1.4.3 common configuration structure offsets */
#define VIRTIO_PCI_COMMON_DFSELECT     0x00
#define VIRTIO_PCI_COMMON_DF           0x04
#define VIRTIO_PCI_COMMON_GFSELECT     0x08
#define VIRTIO_PCI_COMMON_GF           0x0c
#define VIRTIO_PCI_COMMON_MSIX         0x10
#define VIRTIO_PCI_COMMON_NUMQ         0x12
#define VIRTIO_PCI_COMMON_STATUS       0x14
#define VIRTIO_PCI_COMMON_CFGGENERATION 0x15
#define VIRTIO_PCI_COMMON_Q_SELECT     0x16
#define VIRTIO_PCI_COMMON_Q_SIZE       0x18
#define VIRTIO_PCI_COMMON_Q_MSIX       0x1a
#define VIRTIO_PCI_COMMON_Q_ENABLE     0x1c
#define VIRTIO_PCI_COMMON_Q_NOFF       0x1e
#define VIRTIO_PCI_COMMON_Q_DESCLO     0x20
#define VIRTIO_PCI_COMMON_Q_DESCHI     0x24
#define VIRTIO_PCI_COMMON_Q_AVAILLO    0x28
#define VIRTIO_PCI_COMMON_Q_AVAILHI    0x2c
#define VIRTIO_PCI_COMMON_Q_USEDLO     0x30
#define VIRTIO_PCI_COMMON_Q_USEDHI     0x34
#define VIRTIO_PCI_COMMON_Q_NDATA      0x38
#define VIRTIO_PCI_COMMON_Q_RESET      0x3a

struct virtio_pci;

/* Creates the PCI function for @d (initialised by virtio_dev_init, not yet
 * attached to a transport) on @h: builds its config space, allocates MSI-X
 * GSIs and eventfds, wires INTx, adds it at the next free slot and
 * attaches the queues' kick eventfds. Returns 0 or -errno (-ENOSPC: no
 * slot; the hooks' errors). Call before vCPUs start. */
__attribute__((warn_unused_result))
int virtio_pci_create(struct pci_host *h, struct virtio_dev *d, struct virtio_pci **out);

/* The slot (00:slot.0) the function was given. */
unsigned virtio_pci_slot(const struct virtio_pci *vp);

/* Guest reset: resets the device (as a driver write of 0 to device_status)
 * and the transport (selectors, MSI-X table masked and disabled, PBA and
 * INTx cleared). Call after pci_host_reset(), vCPUs paused. */
void virtio_pci_reset(struct virtio_pci *vp);

/* Saved state (the payload of the device's section, version
 * VIRTIO_PCI_STATE_VERSION): the transport's registers (the feature and
 * queue selectors, the capability list in config space [0x40, 0x100)
 * with the PCI-config-access window and MSI-X Message Control, the MSI-X
 * table and PBA), then the device (virtio/device_state.h). The type-0
 * header, BAR0's place included, is the PCI host's (devices/pci_host.h).
 *
 * virtio_pci_load checks the whole payload first and changes nothing
 * unless all of it is valid: read-only config bytes as created, MSI-X
 * table entries with no reserved bits, PBA bits of vectors that exist,
 * then the device's checks. Then it applies it to a function as created
 * (BAR0 already where the host put it back): the device continues (see
 * virtio_dev_load_apply), unmasked MSI-X vectors are routed again, and an
 * interrupt still owed (ISR set, INTx) is raised again. Returns 0, or
 * -EINVAL with "section NAME: reason" in r->err, or the activation's
 * error. d->lock taken inside; before vCPUs run. */
#define VIRTIO_PCI_STATE_VERSION 1
void virtio_pci_save(struct virtio_pci *vp, struct state_w *w);
__attribute__((warn_unused_result))
int virtio_pci_load(struct virtio_pci *vp, struct state_r *r);

/* The device the function carries. */
struct virtio_dev *virtio_pci_dev(const struct virtio_pci *vp);

/* Takes the function off the PCI host, detaches kicks and interrupts and
 * frees the transport; the device stays initialised (uninit it after).
 * vCPUs stopped, the event loop not running, the host not yet destroyed.
 * NULL allowed. */
void virtio_pci_destroy(struct virtio_pci *vp);

#endif
