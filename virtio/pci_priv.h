/* Inside the virtio-pci transport: the state shared by virtio/pci.c
 * (configuration space, common configuration, BAR0, INTx, set-up) and
 * virtio/pci_msix.c (the MSI-X table, PBA and vectors). Nothing outside
 * those two files includes this. */
#ifndef KVMRUN_VIRTIO_PCI_PRIV_H
#define KVMRUN_VIRTIO_PCI_PRIV_H

#include "virtio/pci.h"

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

	unsigned nr_vectors;
	uint8_t table[MSIX_MAX_VECTORS * MSIX_ENTRY_SIZE];
	uint64_t pba[(MSIX_MAX_VECTORS + 63) / 64];
	struct msix_vec vec[MSIX_MAX_VECTORS];

	unsigned intx_gsi;
	int intx_fd, resample_fd;
	bool intx_irqfd_on, resample_watched;

	bool kick_on[VIRTIO_MAX_QUEUES];
	uint64_t kick_addr[VIRTIO_MAX_QUEUES];
};

/* [off, off + len) lies within the BAR0 region [base, base + size). */
static inline bool vpci_inside(uint64_t off, unsigned len, uint64_t base, uint64_t size)
{
	return off >= base && off - base + len <= size;
}

/* Writes 1 to the eventfd @fd (none if negative); a failure is logged as
 * "@what: error". */
void vpci_signal(struct virtio_pci *vp, int fd, const char *what);

/* ---- virtio/pci_msix.c; d->lock held unless said ---- */

/* The capability's Message Control word (0 before the capability exists). */
uint16_t msix_control(const struct virtio_pci *vp);
bool msix_enabled(const struct virtio_pci *vp);

/* Raises vector @v (VIRTIO_MSI_NO_VECTOR or out of range: nothing); a
 * masked vector sets its pending bit instead. */
void msix_fire(struct virtio_pci *vp, unsigned v);

/* After Message Control changed: routes unmasked vectors and delivers
 * what became pending while they were masked. */
void msix_sync_all(struct virtio_pci *vp);

/* The irqfd that delivers vector @v straight to the guest (MSI-X on, the
 * vector unmasked and routed), or -1 when interrupts must go through
 * msix_fire. */
int msix_direct_fd(struct virtio_pci *vp, unsigned v);

/* BAR0 accesses inside the table or the PBA: true when @off was theirs.
 * A table write may change where queue interrupts go; the caller tells
 * the device. */
bool msix_bar_read(struct virtio_pci *vp, uint64_t off, void *data, unsigned len);
bool msix_bar_write(struct virtio_pci *vp, uint64_t off, const void *data, unsigned len);

/* Every vector masked, MSI-X disabled, nothing pending, no route cached. */
void msix_reset(struct virtio_pci *vp);

/* Set-up and teardown of the vectors' eventfds, GSIs and irqfds (no lock;
 * vCPUs not running). msix_unwire undoes whatever msix_wire got done. */
int msix_wire(struct virtio_pci *vp);
void msix_unwire(struct virtio_pci *vp);

#endif
