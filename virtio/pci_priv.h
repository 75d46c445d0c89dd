/* Inside the virtio-pci transport (virtio/pci.c): configuration space,
 * common configuration, BAR0, INTx, and the MSI-X state virtio/pci_msix.c
 * keeps. Nothing outside virtio/pci.c and virtio/pci_state.c (its saved
 * state) includes this. */
#ifndef KVMRUN_VIRTIO_PCI_PRIV_H
#define KVMRUN_VIRTIO_PCI_PRIV_H

#include "virtio/pci.h"
#include "virtio/pci_msix.h"

struct virtio_pci {
	struct virtio_dev *d;
	struct pci_host *host;
	unsigned slot;
	bool added;

	/* everything below is under d->lock */
	uint8_t cfg[PCI_CFG_SIZE];    /* [0x40, 0x100): the capability list */
	uint8_t wmask[PCI_CFG_SIZE];
	unsigned msix_cap, pcicfg_cap;

	bool bar0_on;                 /* BAR0 decodes at bar0 */
	uint64_t bar0;

	uint32_t dfselect, gfselect;
	uint16_t queue_select;

	struct msix msix;

	struct virtio_intx intx;

	bool kick_on[VIRTIO_MAX_QUEUES];
	uint64_t kick_addr[VIRTIO_MAX_QUEUES];
};

/* [off, off + len) lies within the BAR0 region [base, base + size). */
static inline bool vpci_inside(uint64_t off, unsigned len, uint64_t base, uint64_t size)
{
	return off >= base && off - base + len <= size;
}

/* Raises INTA# (unless the command register disables it); d->lock held. */
void vpci_intx_raise(struct virtio_pci *vp);

#endif
