/* MSI-X of the virtio-pci transport (PCI Local Bus 3.0, 6.8.2; virtio
 * 4.1.5.1.2): one vector per queue plus one for configuration changes.
 * Each vector is an eventfd bound with plat->irqfd to a GSI of its own;
 * the GSI is routed to the table entry's message when the vector is
 * unmasked or fires, and only if the message changed since the last
 * route. The table and PBA live in BAR0 (virtio/pci.h). */
#include "virtio/pci_priv.h"

#include <errno.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "devices/le.h"

uint16_t msix_control(const struct virtio_pci *vp)
{
	return vp->msix_cap ? le16_get(&vp->cfg[vp->msix_cap + 2]) : 0;
}

bool msix_enabled(const struct virtio_pci *vp)
{
	return msix_control(vp) & MSIX_CTRL_ENABLE;
}

static bool vector_masked(const struct virtio_pci *vp, unsigned v)
{
	return (msix_control(vp) & MSIX_CTRL_MASKALL) ||
	       (vp->table[v * MSIX_ENTRY_SIZE + 12] & MSIX_ENTRY_MASKED);
}

static bool vector_pending(const struct virtio_pci *vp, unsigned v)
{
	return vp->pba[v / 64] & (1ull << (v % 64));
}

/* Points the vector's GSI at its table entry's message if that changed. */
static void vector_route(struct virtio_pci *vp, unsigned v)
{
	const struct virtio_platform *p = vp->d->plat;
	struct msix_vec *mv = &vp->vec[v];
	const uint8_t *e = &vp->table[v * MSIX_ENTRY_SIZE];
	uint64_t addr = le32_get(e) | (uint64_t)le32_get(e + 4) << 32;
	uint32_t data = le32_get(e + 8);
	if (!mv->gsi_ok || !p->msi_route || (mv->routed && mv->addr == addr && mv->data == data))
		return;
	int rc = p->msi_route(p->cookie, mv->gsi, addr, data);
	if (rc < 0) {
		log_ratelimited(p->log, &vp->d->rl, vp->d->name, "routing MSI-X vector %u: %s", v,
				strerror(-rc));
		mv->routed = false;
		return;
	}
	mv->routed = true;
	mv->addr = addr;
	mv->data = data;
}

void msix_fire(struct virtio_pci *vp, unsigned v)
{
	if (v >= vp->nr_vectors)
		return; /* NO_VECTOR: 4.1.5.3/4.1.5.4 no notification */
	if (vector_masked(vp, v)) {
		vp->pba[v / 64] |= 1ull << (v % 64);
		return;
	}
	vector_route(vp, v);
	vpci_signal(vp, vp->vec[v].fd, "raising an MSI-X interrupt");
}

/* After a table or control change: route an unmasked vector and deliver
 * what became pending while it was masked. */
static void vector_sync(struct virtio_pci *vp, unsigned v)
{
	if (!msix_enabled(vp) || vector_masked(vp, v))
		return;
	vector_route(vp, v);
	if (vector_pending(vp, v)) {
		vp->pba[v / 64] &= ~(1ull << (v % 64));
		vpci_signal(vp, vp->vec[v].fd, "raising an MSI-X interrupt");
	}
}

void msix_sync_all(struct virtio_pci *vp)
{
	for (unsigned v = 0; v < vp->nr_vectors; v++)
		vector_sync(vp, v);
}

int msix_direct_fd(struct virtio_pci *vp, unsigned v)
{
	if (!msix_enabled(vp) || v >= vp->nr_vectors || vector_masked(vp, v) ||
	    !vp->vec[v].irqfd_on)
		return -1;
	vector_route(vp, v);
	return vp->vec[v].routed ? vp->vec[v].fd : -1;
}

static unsigned table_size(const struct virtio_pci *vp)
{
	return vp->nr_vectors * MSIX_ENTRY_SIZE;
}

static unsigned pba_size(const struct virtio_pci *vp)
{
	return (vp->nr_vectors + 63) / 64 * 8;
}

bool msix_bar_read(struct virtio_pci *vp, uint64_t off, void *data, unsigned len)
{
	if (vpci_inside(off, len, VIRTIO_PCI_MSIX_TABLE, table_size(vp)))
		memcpy(data, &vp->table[off - VIRTIO_PCI_MSIX_TABLE], len);
	else if (vpci_inside(off, len, VIRTIO_PCI_MSIX_PBA, pba_size(vp)))
		memcpy(data, (const uint8_t *)vp->pba + (off - VIRTIO_PCI_MSIX_PBA), len);
	else
		return false;
	return true;
}

/* The PBA is read-only: a write there is swallowed like one to a gap. */
bool msix_bar_write(struct virtio_pci *vp, uint64_t off, const void *data, unsigned len)
{
	if (!vpci_inside(off, len, VIRTIO_PCI_MSIX_TABLE, table_size(vp)))
		return false;
	unsigned at = (unsigned)(off - VIRTIO_PCI_MSIX_TABLE);
	const uint8_t *v = data;
	for (unsigned i = 0; i < len; i++) {
		unsigned b = at + i, field = b % MSIX_ENTRY_SIZE;
		uint8_t val = v[i];
		if (field == 0)
			val &= 0xfc; /* Message Address is dword aligned */
		else if (field == 12)
			val &= MSIX_ENTRY_MASKED;
		else if (field > 12)
			val = 0; /* Vector Control reserved bits */
		vp->table[b] = val;
	}
	for (unsigned e = at / MSIX_ENTRY_SIZE; e <= (at + len - 1) / MSIX_ENTRY_SIZE; e++)
		vector_sync(vp, e);
	return true;
}

void msix_reset(struct virtio_pci *vp)
{
	memset(vp->table, 0, sizeof(vp->table));
	for (unsigned v = 0; v < vp->nr_vectors; v++) {
		vp->table[v * MSIX_ENTRY_SIZE + 12] = MSIX_ENTRY_MASKED;
		vp->vec[v].routed = false;
	}
	memset(vp->pba, 0, sizeof(vp->pba));
	if (vp->msix_cap)
		vp->cfg[vp->msix_cap + 3] = 0; /* disabled, function not masked */
}

int msix_wire(struct virtio_pci *vp)
{
	const struct virtio_platform *p = vp->d->plat;
	for (unsigned v = 0; v < vp->nr_vectors; v++) {
		struct msix_vec *mv = &vp->vec[v];
		mv->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (mv->fd < 0)
			return -errno;
		if (!p->msi_alloc || !p->irqfd)
			continue; /* no MSI routing: interrupts go nowhere */
		int rc = p->msi_alloc(p->cookie, &mv->gsi);
		if (rc < 0)
			return rc;
		mv->gsi_ok = true;
		rc = p->irqfd(p->cookie, mv->fd, mv->gsi, -1, true);
		if (rc < 0)
			return rc;
		mv->irqfd_on = true;
	}
	return 0;
}

void msix_unwire(struct virtio_pci *vp)
{
	const struct virtio_platform *p = vp->d->plat;
	for (unsigned v = 0; v < vp->nr_vectors; v++) {
		struct msix_vec *mv = &vp->vec[v];
		if (mv->irqfd_on)
			p->irqfd(p->cookie, mv->fd, mv->gsi, -1, false);
		if (mv->gsi_ok && p->msi_free)
			p->msi_free(p->cookie, mv->gsi);
		if (mv->fd >= 0)
			close(mv->fd);
		*mv = (struct msix_vec){ .fd = -1 };
	}
}
