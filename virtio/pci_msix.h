/* MSI-X for the virtio-pci transport (PCI Local Bus 3.0, 6.8.2): the
 * vector table and pending-bit array a function shows in a BAR, each
 * vector's eventfd, GSI and irqfd, and delivery (virtio 1.2, 4.1.4.5).
 * virtio/pci.c owns a struct msix per function and places the capability,
 * table and PBA; this file knows only their contents. */
#ifndef KVMRUN_VIRTIO_PCI_MSIX_H
#define KVMRUN_VIRTIO_PCI_MSIX_H

#include <stdbool.h>
#include <stdint.h>

#include "virtio/device.h"

#define MSIX_MAX_VECTORS (VIRTIO_MAX_QUEUES + 1)
#define MSIX_ENTRY_SIZE 16
#define MSIX_CAP_SIZE 12
#define MSIX_CTRL_ENABLE 0x8000u   /* Message Control: MSI-X Enable */
#define MSIX_CTRL_MASKALL 0x4000u  /* Message Control: Function Mask */
#define MSIX_ENTRY_MASKED 1u       /* Vector Control: Mask Bit */

struct msix_vec {
	int fd;               /* irqfd of the vector's GSI */
	unsigned gsi;
	bool gsi_ok, irqfd_on;
	bool routed;          /* the GSI points at (addr, data) below */
	uint64_t addr;
	uint32_t data;
};

struct msix {
	struct virtio_dev *d;         /* its platform, log and rate limit */
	uint8_t *cap;                 /* the capability in config space; NULL
	                               * before it exists */
	uint64_t table_off, pba_off;  /* where the BAR shows them */
	unsigned nr_vectors;
	uint8_t table[MSIX_MAX_VECTORS * MSIX_ENTRY_SIZE];
	uint64_t pba[(MSIX_MAX_VECTORS + 63) / 64];
	struct msix_vec vec[MSIX_MAX_VECTORS];
};

/* d->lock held unless said. */

/* The capability's Message Control word (0 before the capability exists). */
uint16_t msix_control(const struct msix *m);
bool msix_enabled(const struct msix *m);

/* Raises vector @v (VIRTIO_MSI_NO_VECTOR or out of range: nothing); a
 * masked vector sets its pending bit instead. */
void msix_fire(struct msix *m, unsigned v);

/* After Message Control changed: routes unmasked vectors and delivers
 * what became pending while they were masked. */
void msix_sync_all(struct msix *m);

/* The irqfd that delivers vector @v straight to the guest (MSI-X on, the
 * vector unmasked and routed), or -1 when interrupts must go through
 * msix_fire. */
int msix_direct_fd(struct msix *m, unsigned v);

/* BAR accesses (@off from the BAR's start) inside the table or the PBA: true when @off was theirs.
 * A table write may change where queue interrupts go; the caller tells
 * the device. */
bool msix_bar_read(struct msix *m, uint64_t off, void *data, unsigned len);
bool msix_bar_write(struct msix *m, uint64_t off, const void *data, unsigned len);

/* Every vector masked, MSI-X disabled, nothing pending, no route cached. */
void msix_reset(struct msix *m);

/* Set-up and teardown of the vectors' eventfds, GSIs and irqfds (no lock;
 * vCPUs not running). msix_unwire undoes whatever msix_wire got done. */
int msix_wire(struct msix *m);
void msix_unwire(struct msix *m);

#endif
