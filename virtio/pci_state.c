/* Saved state of the virtio-pci transport (see pci.h): its registers,
 * capability list and MSI-X state, then the device's. */
#include "virtio/pci_priv.h"

#include <stdlib.h>
#include <string.h>

#include "virtio/device_state.h"

struct pci_saved {
	uint32_t dfselect, gfselect;
	uint16_t queue_select;
	uint8_t cfg[PCI_CFG_SIZE];
	uint8_t table[MSIX_MAX_VECTORS * MSIX_ENTRY_SIZE];
	uint64_t pba[(MSIX_MAX_VECTORS + 63) / 64];
};

static unsigned pba_words(const struct virtio_pci *vp)
{
	return (vp->msix.nr_vectors + 63) / 64;
}

void virtio_pci_save(struct virtio_pci *vp, struct state_w *w)
{
	pthread_mutex_lock(&vp->d->lock);
	state_put_u32(w, vp->dfselect);
	state_put_u32(w, vp->gfselect);
	state_put_u16(w, vp->queue_select);
	state_put_bytes(w, &vp->cfg[PCI_CFG_HEADER_END], PCI_CFG_SIZE - PCI_CFG_HEADER_END);
	state_put_bytes(w, vp->msix.table, vp->msix.nr_vectors * MSIX_ENTRY_SIZE);
	for (unsigned i = 0; i < pba_words(vp); i++)
		state_put_u64(w, vp->msix.pba[i]);
	virtio_dev_save(vp->d, w);
	pthread_mutex_unlock(&vp->d->lock);
}

/* An MSI-X table entry as msix_bar_write leaves it. */
static bool msix_entry_ok(const uint8_t *e)
{
	return !(e[0] & 3) && !(e[12] & ~MSIX_ENTRY_MASKED) && !e[13] && !e[14] && !e[15];
}

static void read_transport(const struct virtio_pci *vp, struct state_r *r, struct pci_saved *s)
{
	unsigned nv = vp->msix.nr_vectors;
	s->dfselect = state_get_u32(r);
	s->gfselect = state_get_u32(r);
	s->queue_select = state_get_u16(r);
	memcpy(s->cfg, vp->cfg, PCI_CFG_HEADER_END);
	state_get_bytes(r, &s->cfg[PCI_CFG_HEADER_END], PCI_CFG_SIZE - PCI_CFG_HEADER_END);
	state_get_bytes(r, s->table, nv * MSIX_ENTRY_SIZE);
	for (unsigned i = 0; i < pba_words(vp); i++)
		s->pba[i] = state_get_u64(r);
	for (unsigned i = PCI_CFG_HEADER_END; i < PCI_CFG_SIZE && !r->failed; i++)
		if ((s->cfg[i] ^ vp->cfg[i]) & ~vp->wmask[i])
			state_fail(r, "config byte 0x%x is 0x%x, read-only as 0x%x", i, s->cfg[i],
				   vp->cfg[i]);
	for (unsigned v = 0; v < nv && !r->failed; v++)
		if (!msix_entry_ok(&s->table[v * MSIX_ENTRY_SIZE]))
			state_fail(r, "MSI-X table entry %u has reserved bits set", v);
	if (!r->failed && nv % 64 && (s->pba[nv / 64] >> (nv % 64)))
		state_fail(r, "MSI-X PBA has bits of vectors beyond the %u there are", nv);
}

int virtio_pci_load(struct virtio_pci *vp, struct state_r *r)
{
	struct virtio_dev *d = vp->d;
	struct pci_saved *s = calloc(1, sizeof(*s));
	struct virtio_dev_state *st = calloc(1, sizeof(*st));
	if (!s || !st) {
		free(s);
		free(st);
		state_fail(r, "out of memory");
		return state_r_finish(r);
	}
	pthread_mutex_lock(&d->lock);
	struct state_r check = *r;
	read_transport(vp, &check, s);
	if (!check.failed)
		virtio_dev_load_check(d, &check, vp->msix.nr_vectors, st);
	int rc = state_r_finish(&check);
	if (rc < 0) {
		*r = check;
		goto out;
	}
	read_transport(vp, r, s);
	vp->dfselect = s->dfselect;
	vp->gfselect = s->gfselect;
	vp->queue_select = s->queue_select;
	memcpy(vp->cfg, s->cfg, PCI_CFG_SIZE);
	memcpy(vp->msix.table, s->table, sizeof(s->table));
	memcpy(vp->msix.pba, s->pba, sizeof(s->pba));
	rc = virtio_dev_load_apply(d, r, vp->msix.nr_vectors);
	msix_sync_all(&vp->msix);
	if (d->isr && !msix_enabled(&vp->msix))
		vpci_intx_raise(vp);
	int fin = state_r_finish(r);
	rc = rc < 0 ? rc : fin;
out:
	pthread_mutex_unlock(&d->lock);
	free(s);
	free(st);
	return rc;
}

struct virtio_dev *virtio_pci_dev(const struct virtio_pci *vp)
{
	return vp->d;
}
