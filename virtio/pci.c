#include "virtio/pci_priv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "devices/le.h"

/* 4.1.4 struct virtio_pci_cap field offsets */
#define VCAP_CFG_TYPE 3
#define VCAP_BAR      4
#define VCAP_ID       5
#define VCAP_OFFSET   8
#define VCAP_LENGTH   12
#define VCAP_SIZE     16
#define VCAP_NOTIFY_MULT 16 /* struct virtio_pci_notify_cap */
#define VCAP_PCI_DATA 16    /* struct virtio_pci_cfg_cap */

/* 5 Device Types: the ones with a PCI class of their own (4.1.2.1 leaves
 * the class to the device; these match what drivers and tools expect). */
#define VIRTIO_ID_NET     1
#define VIRTIO_ID_BLOCK   2
#define VIRTIO_ID_BALLOON 5

/* ---- INTx ---- */

void vpci_intx_raise(struct virtio_pci *vp)
{
	pci_host_set_intx_status(vp->host, vp->slot, true);
	if (pci_host_command(vp->host, vp->slot) & PCI_COMMAND_INTX_DISABLE)
		return;
	virtio_dev_signal_fd(vp->d, vp->intx.fd, "raising INTx");
}

/* Event thread: the guest EOI'd the level-triggered line and KVM lowered
 * it; raise it again while ISR says work is pending. */
static void on_resample(void *cookie, uint32_t events)
{
	struct virtio_pci *vp = cookie;
	uint64_t n;
	(void)events;
	if (read(vp->intx.resample_fd, &n, sizeof(n)) != sizeof(n))
		return;
	pthread_mutex_lock(&vp->d->lock);
	if (vp->d->isr && !msix_enabled(&vp->msix))
		vpci_intx_raise(vp);
	pthread_mutex_unlock(&vp->d->lock);
}

/* ---- virtio_transport_ops (d->lock held) ---- */

static void tr_signal_queue(struct virtio_dev *d, unsigned q)
{
	struct virtio_pci *vp = d->transport;
	if (msix_enabled(&vp->msix))
		msix_fire(&vp->msix, q < d->nr_queues ? d->queues[q].msix_vector : VIRTIO_MSI_NO_VECTOR);
	else
		vpci_intx_raise(vp);
}

static void tr_signal_config(struct virtio_dev *d)
{
	struct virtio_pci *vp = d->transport;
	if (msix_enabled(&vp->msix))
		msix_fire(&vp->msix, d->config_msix_vector);
	else
		vpci_intx_raise(vp);
}

static int kick_set(struct virtio_pci *vp, unsigned q, bool on)
{
	const struct virtio_platform *p = vp->d->plat;
	int fd = vp->d->queues[q].kick_fd;
	if (!p->ioeventfd || fd < 0 || on == vp->kick_on[q])
		return 0;
	if (!on) {
		vp->kick_on[q] = false;
		return p->ioeventfd(p->cookie, fd, vp->kick_addr[q], 0, false, 0, false);
	}
	uint64_t addr = vp->bar0 + VIRTIO_PCI_NOTIFY_OFF + (uint64_t)q * VIRTIO_PCI_NOTIFY_MULT;
	int rc = p->ioeventfd(p->cookie, fd, addr, 0, false, 0, true);
	if (rc == 0) {
		vp->kick_on[q] = true;
		vp->kick_addr[q] = addr;
	}
	return rc;
}

static int tr_kick_attach(struct virtio_dev *d, unsigned q, int fd, bool assign)
{
	struct virtio_pci *vp = d->transport;
	if (q >= d->nr_queues || fd != d->queues[q].kick_fd)
		return -EINVAL;
	return kick_set(vp, q, assign && vp->bar0_on);
}

/* The vector's irqfd, when it delivers straight to the guest: MSI-X on,
 * the vector unmasked and routed. */
static int tr_queue_irqfd(struct virtio_dev *d, unsigned q)
{
	struct virtio_pci *vp = d->transport;
	unsigned v = q < d->nr_queues ? d->queues[q].msix_vector : VIRTIO_MSI_NO_VECTOR;
	return msix_direct_fd(&vp->msix, v);
}

/* Tells the device that queue interrupts moved (see queue_irqfd). */
static void irq_changed(struct virtio_pci *vp)
{
	if (vp->d->ops->irq_changed && virtio_dev_live(vp->d))
		vp->d->ops->irq_changed(vp->d);
}

static const struct virtio_transport_ops pci_tops = {
	.signal_queue = tr_signal_queue,
	.signal_config = tr_signal_config,
	.kick_attach = tr_kick_attach,
	.queue_irqfd = tr_queue_irqfd,
};

/* ---- common configuration (4.1.4.3) ---- */

/* Width of the field starting at @off, 0 if none. */
static unsigned common_width(unsigned off)
{
	switch (off) {
	case VIRTIO_PCI_COMMON_DFSELECT: case VIRTIO_PCI_COMMON_DF:
	case VIRTIO_PCI_COMMON_GFSELECT: case VIRTIO_PCI_COMMON_GF:
		return 4;
	case VIRTIO_PCI_COMMON_MSIX: case VIRTIO_PCI_COMMON_NUMQ:
	case VIRTIO_PCI_COMMON_Q_SELECT: case VIRTIO_PCI_COMMON_Q_SIZE:
	case VIRTIO_PCI_COMMON_Q_MSIX: case VIRTIO_PCI_COMMON_Q_ENABLE:
	case VIRTIO_PCI_COMMON_Q_NOFF: case VIRTIO_PCI_COMMON_Q_NDATA:
	case VIRTIO_PCI_COMMON_Q_RESET:
		return 2;
	case VIRTIO_PCI_COMMON_STATUS: case VIRTIO_PCI_COMMON_CFGGENERATION:
		return 1;
	case VIRTIO_PCI_COMMON_Q_DESCLO: case VIRTIO_PCI_COMMON_Q_AVAILLO:
	case VIRTIO_PCI_COMMON_Q_USEDLO:
		return 8;
	default:
		return 0;
	}
}

/* Maps an access onto a field: its start in *@field and the bit shift of
 * the accessed part. "The driver MUST access each field using the
 * 'natural' access method ... For 64-bit fields, the driver MAY access
 * each of the high and low 32-bit parts of the field independently."
 * (4.1.3.1) Anything else is not a field access. */
static bool common_field(unsigned off, unsigned len, unsigned *field, unsigned *shift)
{
	unsigned w = common_width(off);
	*field = off;
	*shift = 0;
	if (w && (len == w || (w == 8 && len == 4)))
		return true;
	if (len == 4 && off >= 4 && common_width(off - 4) == 8) {
		*field = off - 4;
		*shift = 32;
		return true;
	}
	return false;
}

static struct virtio_queue *selected_queue(struct virtio_pci *vp)
{
	return vp->queue_select < vp->d->nr_queues ? &vp->d->queues[vp->queue_select] : NULL;
}

static uint64_t common_get(struct virtio_pci *vp, unsigned field)
{
	struct virtio_dev *d = vp->d;
	struct virtio_queue *q = selected_queue(vp);
	switch (field) {
	case VIRTIO_PCI_COMMON_DFSELECT: return vp->dfselect;
	case VIRTIO_PCI_COMMON_DF: return virtio_dev_features_word(d, vp->dfselect);
	case VIRTIO_PCI_COMMON_GFSELECT: return vp->gfselect;
	case VIRTIO_PCI_COMMON_GF:
		return vp->gfselect < 2 ? (uint32_t)(d->guest_features >> (32 * vp->gfselect)) : 0;
	case VIRTIO_PCI_COMMON_MSIX: return d->config_msix_vector;
	case VIRTIO_PCI_COMMON_NUMQ: return d->nr_queues;
	case VIRTIO_PCI_COMMON_STATUS: return d->status;
	case VIRTIO_PCI_COMMON_CFGGENERATION: return (uint8_t)d->config_generation;
	case VIRTIO_PCI_COMMON_Q_SELECT: return vp->queue_select;
	}
	if (!q) /* "queue_size ... 0 if the queue is unavailable"; the rest reads 0 */
		return field == VIRTIO_PCI_COMMON_Q_MSIX ? VIRTIO_MSI_NO_VECTOR : 0;
	switch (field) {
	case VIRTIO_PCI_COMMON_Q_SIZE: return q->size;
	case VIRTIO_PCI_COMMON_Q_MSIX: return q->msix_vector;
	case VIRTIO_PCI_COMMON_Q_ENABLE: return q->enabled;
	case VIRTIO_PCI_COMMON_Q_NOFF: return vp->queue_select;
	case VIRTIO_PCI_COMMON_Q_DESCLO: return q->desc;
	case VIRTIO_PCI_COMMON_Q_AVAILLO: return q->driver;
	case VIRTIO_PCI_COMMON_Q_USEDLO: return q->device;
	default: return 0; /* queue_notify_data, queue_reset: not offered */
	}
}

/* A vector the device can map, or NO_VECTOR (4.1.5.1.2: the driver reads
 * the field back to learn whether the mapping took). */
static uint16_t valid_vector(const struct virtio_pci *vp, uint64_t v)
{
	return v < vp->msix.nr_vectors ? (uint16_t)v : VIRTIO_MSI_NO_VECTOR;
}

static void set_half(uint64_t *f, unsigned shift, unsigned len, uint64_t v)
{
	if (len == 8)
		*f = v;
	else
		*f = (*f & ~(0xffffffffull << shift)) | ((v & 0xffffffffull) << shift);
}

static void queue_enable(struct virtio_pci *vp, struct virtio_queue *q, uint64_t v)
{
	struct virtio_dev *d = vp->d;
	if (v != 1 || q->enabled)
		return; /* 4.1.4.3.2: the driver MUST NOT write 0 to queue_enable */
	if (!(d->status & VIRTIO_STATUS_FEATURES_OK) || (d->status & VIRTIO_STATUS_DRIVER_OK)) {
		/* 3.1.1: queues are set up after FEATURES_OK, before DRIVER_OK */
		log_ratelimited(d->plat->log, &d->rl, d->name,
				"queue %u enabled in device status 0x%x: ignored", vp->queue_select,
				d->status);
		return;
	}
	virtio_dev_queue_enable(d, vp->queue_select); /* NEEDS_RESET if invalid */
}

static void common_set(struct virtio_pci *vp, unsigned field, unsigned shift, unsigned len,
		       uint64_t v)
{
	struct virtio_dev *d = vp->d;
	struct virtio_queue *q = selected_queue(vp);
	switch (field) {
	case VIRTIO_PCI_COMMON_DFSELECT: vp->dfselect = (uint32_t)v; return;
	case VIRTIO_PCI_COMMON_GFSELECT: vp->gfselect = (uint32_t)v; return;
	case VIRTIO_PCI_COMMON_GF:
		virtio_dev_set_driver_features(d, vp->gfselect, (uint32_t)v);
		return;
	case VIRTIO_PCI_COMMON_MSIX: d->config_msix_vector = valid_vector(vp, v); return;
	case VIRTIO_PCI_COMMON_STATUS:
		virtio_dev_set_status(d, (uint8_t)v);
		if (v == 0) /* 4.1.4.3.1: reset; ISR went to 0 with it */
			pci_host_set_intx_status(vp->host, vp->slot, false);
		return;
	case VIRTIO_PCI_COMMON_Q_SELECT: vp->queue_select = (uint16_t)v; return;
	}
	if (!q)
		return; /* queue_select out of range: nothing to configure */
	switch (field) {
	case VIRTIO_PCI_COMMON_Q_MSIX:
		q->msix_vector = valid_vector(vp, v);
		irq_changed(vp);
		return;
	case VIRTIO_PCI_COMMON_Q_ENABLE: queue_enable(vp, q, v); return;
	}
	if (q->enabled)
		return; /* ring geometry is fixed once enabled */
	switch (field) {
	case VIRTIO_PCI_COMMON_Q_SIZE: q->size = (uint16_t)v; break; /* checked at enable */
	case VIRTIO_PCI_COMMON_Q_DESCLO: set_half(&q->desc, shift, len, v); break;
	case VIRTIO_PCI_COMMON_Q_AVAILLO: set_half(&q->driver, shift, len, v); break;
	case VIRTIO_PCI_COMMON_Q_USEDLO: set_half(&q->device, shift, len, v); break;
	default: break; /* read-only: device_feature, num_queues, ... */
	}
}

static void common_read(struct virtio_pci *vp, unsigned off, void *data, unsigned len)
{
	unsigned field, shift;
	if (!common_field(off, len, &field, &shift)) {
		log_ratelimited(vp->d->plat->log, &vp->d->rl, vp->d->name,
				"common config read of %u bytes at 0x%x", len, off);
		return; /* reads 0 */
	}
	uint64_t v = common_get(vp, field) >> shift;
	memcpy(data, &v, len); /* little-endian host */
}

static void common_write(struct virtio_pci *vp, unsigned off, const void *data, unsigned len)
{
	unsigned field, shift;
	if (!common_field(off, len, &field, &shift)) {
		log_ratelimited(vp->d->plat->log, &vp->d->rl, vp->d->name,
				"common config write of %u bytes at 0x%x: ignored", len, off);
		return;
	}
	uint64_t v = 0;
	memcpy(&v, data, len);
	common_set(vp, field, shift, len, v);
}

/* ---- BAR0 (d->lock held) ---- */

static void bar0_read(struct virtio_pci *vp, uint64_t off, void *data, unsigned len)
{
	struct virtio_dev *d = vp->d;
	memset(data, 0, len);
	if (vpci_inside(off, len, VIRTIO_PCI_COMMON_OFF, VIRTIO_PCI_COMMON_LEN)) {
		common_read(vp, (unsigned)(off - VIRTIO_PCI_COMMON_OFF), data, len);
	} else if (off == VIRTIO_PCI_ISR_OFF) {
		/* 4.1.4.5.1: reading ISR resets it to 0 (and so the INTx status) */
		*(uint8_t *)data = d->isr;
		d->isr = 0;
		pci_host_set_intx_status(vp->host, vp->slot, false);
	} else if (vpci_inside(off, len, VIRTIO_PCI_DEVICE_OFF, VIRTIO_PCI_DEVICE_MAX)) {
		virtio_dev_config_read(d, (uint32_t)(off - VIRTIO_PCI_DEVICE_OFF), data, len);
	} else {
		(void)msix_bar_read(&vp->msix, off, data, len);
	}
	/* notify area and gaps read 0 */
}

static void bar0_write(struct virtio_pci *vp, uint64_t off, const void *data, unsigned len)
{
	struct virtio_dev *d = vp->d;
	if (vpci_inside(off, len, VIRTIO_PCI_COMMON_OFF, VIRTIO_PCI_COMMON_LEN)) {
		common_write(vp, (unsigned)(off - VIRTIO_PCI_COMMON_OFF), data, len);
	} else if (vpci_inside(off, len, VIRTIO_PCI_DEVICE_OFF, VIRTIO_PCI_DEVICE_MAX)) {
		virtio_dev_config_write(d, (uint32_t)(off - VIRTIO_PCI_DEVICE_OFF), data, len);
	} else if (vpci_inside(off, len, VIRTIO_PCI_NOTIFY_OFF,
			       (uint64_t)d->nr_queues * VIRTIO_PCI_NOTIFY_MULT)) {
		/* 4.1.5.2: normally the ioeventfd catches this; one that got
		 * here (another offset or width, no ioeventfd) kicks by hand. */
		unsigned q = (unsigned)(off - VIRTIO_PCI_NOTIFY_OFF) / VIRTIO_PCI_NOTIFY_MULT;
		virtio_dev_signal_fd(vp->d, d->queues[q].kick_fd, "forwarding a kick");
	} else if (msix_bar_write(&vp->msix, off, data, len)) {
		irq_changed(vp);
	}
	/* ISR, PBA (read-only) and gaps: ignored */
}

/* ---- pci_function_ops ---- */

static void fn_bar_read(void *cookie, unsigned bar, uint64_t off, void *data, unsigned len)
{
	struct virtio_pci *vp = cookie;
	if (bar != 0) {
		memset(data, 0xff, len);
		return;
	}
	pthread_mutex_lock(&vp->d->lock);
	bar0_read(vp, off, data, len);
	pthread_mutex_unlock(&vp->d->lock);
}

static void fn_bar_write(void *cookie, unsigned bar, uint64_t off, const void *data, unsigned len)
{
	struct virtio_pci *vp = cookie;
	if (bar != 0)
		return;
	pthread_mutex_lock(&vp->d->lock);
	bar0_write(vp, off, data, len);
	pthread_mutex_unlock(&vp->d->lock);
}

static void fn_bar_remap(void *cookie, unsigned bar, uint64_t addr, bool decoded)
{
	struct virtio_pci *vp = cookie;
	struct virtio_dev *d = vp->d;
	if (bar != 0)
		return;
	pthread_mutex_lock(&d->lock);
	for (unsigned q = 0; q < d->nr_queues; q++)
		kick_set(vp, q, false);
	vp->bar0 = addr;
	vp->bar0_on = decoded;
	for (unsigned q = 0; decoded && q < d->nr_queues; q++) {
		int rc = kick_set(vp, q, true);
		if (rc < 0) /* kicks still arrive through the bus handler */
			log_warn(d->plat->log, d->name, "queue %u notify at 0x%llx: %s", q,
				 (unsigned long long)(addr + VIRTIO_PCI_NOTIFY_OFF), strerror(-rc));
	}
	pthread_mutex_unlock(&d->lock);
}

/* 4.1.4.9 PCI configuration access capability: a window onto the BARs. */
static bool pcicfg_target(const struct virtio_pci *vp, uint64_t *off, unsigned *len)
{
	const uint8_t *c = &vp->cfg[vp->pcicfg_cap];
	uint32_t o = le32_get(c + VCAP_OFFSET), l = le32_get(c + VCAP_LENGTH);
	if (c[VCAP_BAR] != 0 || (l != 1 && l != 2 && l != 4) || o % l ||
	    (uint64_t)o + l > VIRTIO_PCI_BAR0_SIZE)
		return false;
	*off = o;
	*len = l;
	return true;
}

static bool touches(unsigned off, unsigned len, unsigned base, unsigned size)
{
	return off < base + size && base < off + len;
}

static void fn_cfg_read(void *cookie, unsigned off, void *data, unsigned len)
{
	struct virtio_pci *vp = cookie;
	pthread_mutex_lock(&vp->d->lock);
	unsigned data_at = vp->pcicfg_cap + VCAP_PCI_DATA;
	uint64_t boff;
	unsigned blen;
	/* "Upon detecting driver read access to pci_cfg_data, the device MUST
	 * execute a read access of length cap.length at offset cap.offset at
	 * BAR selected by cap.bar and store the first cap.length bytes in
	 * pci_cfg_data." (4.1.4.9.1) */
	if (touches(off, len, data_at, 4) && pcicfg_target(vp, &boff, &blen)) {
		uint8_t tmp[4] = {0};
		bar0_read(vp, boff, tmp, blen);
		memcpy(&vp->cfg[data_at], tmp, blen);
	}
	memcpy(data, &vp->cfg[off], len);
	pthread_mutex_unlock(&vp->d->lock);
}

static void fn_cfg_write(void *cookie, unsigned off, const void *data, unsigned len)
{
	struct virtio_pci *vp = cookie;
	const uint8_t *v = data;
	pthread_mutex_lock(&vp->d->lock);
	uint16_t old_ctrl = msix_control(&vp->msix);
	for (unsigned i = 0; i < len; i++)
		vp->cfg[off + i] = (uint8_t)((vp->cfg[off + i] & ~vp->wmask[off + i]) |
					     (v[i] & vp->wmask[off + i]));
	if (vp->msix_cap && touches(off, len, vp->msix_cap + 2, 2) && msix_control(&vp->msix) != old_ctrl) {
		msix_sync_all(&vp->msix); /* enabled or unmasked: deliver what is pending */
		irq_changed(vp);
	}
	unsigned data_at = vp->pcicfg_cap + VCAP_PCI_DATA;
	uint64_t boff;
	unsigned blen;
	/* 4.1.4.9.1: a write to pci_cfg_data writes its first cap.length
	 * bytes at cap.offset of BAR cap.bar; ignored unless those are valid. */
	if (touches(off, len, data_at, 4) && pcicfg_target(vp, &boff, &blen))
		bar0_write(vp, boff, &vp->cfg[data_at], blen);
	pthread_mutex_unlock(&vp->d->lock);
}

static const struct pci_function_ops virtio_fn_ops = {
	.cfg_read = fn_cfg_read,
	.cfg_write = fn_cfg_write,
	.bar_read = fn_bar_read,
	.bar_write = fn_bar_write,
	.bar_remap = fn_bar_remap,
};

/* ---- set-up ---- */

/* Appends a capability of @size bytes with id @id at *@at, linked from
 * *@prev_next; returns its offset. */
static unsigned cap_add(struct virtio_pci *vp, unsigned *at, unsigned *prev_next, uint8_t id,
			unsigned size)
{
	unsigned c = *at;
	vp->cfg[c] = id;
	vp->cfg[c + 1] = 0;
	vp->cfg[*prev_next] = (uint8_t)c;
	*prev_next = c + 1;
	*at = (c + size + 3) & ~3u;
	return c;
}

static unsigned vcap_add(struct virtio_pci *vp, unsigned *at, unsigned *prev_next, uint8_t type,
			 uint32_t offset, uint32_t length, unsigned size)
{
	unsigned c = cap_add(vp, at, prev_next, PCI_CAP_ID_VNDR, size);
	vp->cfg[c + 2] = (uint8_t)size; /* cap_len */
	vp->cfg[c + VCAP_CFG_TYPE] = type;
	vp->cfg[c + VCAP_BAR] = 0;
	vp->cfg[c + VCAP_ID] = 0;
	le32_put(&vp->cfg[c + VCAP_OFFSET], offset);
	le32_put(&vp->cfg[c + VCAP_LENGTH], length);
	return c;
}

static void build_caps(struct virtio_pci *vp)
{
	struct virtio_dev *d = vp->d;
	unsigned at = PCI_CFG_HEADER_END, prev = PCI_CFG_CAP_PTR; /* cfg[0x34] unused */
	vcap_add(vp, &at, &prev, VIRTIO_PCI_CAP_COMMON_CFG, VIRTIO_PCI_COMMON_OFF,
		 VIRTIO_PCI_COMMON_LEN, VCAP_SIZE);
	unsigned n = vcap_add(vp, &at, &prev, VIRTIO_PCI_CAP_NOTIFY_CFG, VIRTIO_PCI_NOTIFY_OFF,
			      d->nr_queues * VIRTIO_PCI_NOTIFY_MULT, VCAP_SIZE + 4);
	le32_put(&vp->cfg[n + VCAP_NOTIFY_MULT], VIRTIO_PCI_NOTIFY_MULT);
	vcap_add(vp, &at, &prev, VIRTIO_PCI_CAP_ISR_CFG, VIRTIO_PCI_ISR_OFF, 1, VCAP_SIZE);
	if (d->ops->config_size)
		vcap_add(vp, &at, &prev, VIRTIO_PCI_CAP_DEVICE_CFG, VIRTIO_PCI_DEVICE_OFF,
			 d->ops->config_size, VCAP_SIZE);
	/* 4.1.4.9: bar, offset, length and data are the driver's to write */
	vp->pcicfg_cap = vcap_add(vp, &at, &prev, VIRTIO_PCI_CAP_PCI_CFG, 0, 0, VCAP_SIZE + 4);
	vp->wmask[vp->pcicfg_cap + VCAP_BAR] = 0xff;
	memset(&vp->wmask[vp->pcicfg_cap + VCAP_OFFSET], 0xff, 12);

	vp->msix_cap = cap_add(vp, &at, &prev, PCI_CAP_ID_MSIX, MSIX_CAP_SIZE);
	vp->msix.cap = &vp->cfg[vp->msix_cap];
	le16_put(&vp->cfg[vp->msix_cap + 2], (uint16_t)(vp->msix.nr_vectors - 1));
	le32_put(&vp->cfg[vp->msix_cap + 4], VIRTIO_PCI_MSIX_TABLE); /* BIR 0 */
	le32_put(&vp->cfg[vp->msix_cap + 8], VIRTIO_PCI_MSIX_PBA);   /* BIR 0 */
	vp->wmask[vp->msix_cap + 3] = (MSIX_CTRL_ENABLE | MSIX_CTRL_MASKALL) >> 8;
}

static int wire_intx(struct virtio_pci *vp)
{
	return virtio_intx_wire(vp->d, &vp->intx, pci_host_slot_gsi(vp->slot), on_resample, vp);
}

static uint32_t class_of(uint32_t device_id)
{
	switch (device_id) {
	case VIRTIO_ID_BLOCK: return 0x018000;   /* mass storage, other */
	case VIRTIO_ID_NET: return 0x020000;     /* network, ethernet */
	case VIRTIO_ID_BALLOON: return 0x00ff00; /* unclassified */
	default: return 0xff0000;
	}
}

int virtio_pci_create(struct pci_host *h, struct virtio_dev *d, struct virtio_pci **out)
{
	if (d->ops->config_size > VIRTIO_PCI_DEVICE_MAX || d->device_id > 0x3f || d->transport)
		return -EINVAL;
	struct virtio_pci *vp = calloc(1, sizeof(*vp));
	if (!vp)
		return -ENOMEM;
	vp->d = d;
	vp->host = h;
	virtio_intx_init(&vp->intx);
	vp->msix.d = d;
	vp->msix.table_off = VIRTIO_PCI_MSIX_TABLE;
	vp->msix.pba_off = VIRTIO_PCI_MSIX_PBA;
	vp->msix.nr_vectors = d->nr_queues + 1; /* one per queue, one for config */
	for (unsigned v = 0; v < MSIX_MAX_VECTORS; v++)
		vp->msix.vec[v].fd = -1;
	build_caps(vp);
	msix_reset(&vp->msix);

	int rc = msix_wire(&vp->msix);
	if (rc == 0) {
		d->tops = &pci_tops;
		d->transport = vp;
		/* 4.1.2.1: non-transitional ids, revision 1 */
		const struct pci_function_params fp = {
			.name = d->name,
			.vendor_id = VIRTIO_PCI_VENDOR_ID,
			.device_id = (uint16_t)(VIRTIO_PCI_DEVICE_BASE + d->device_id),
			.subsys_vendor_id = VIRTIO_PCI_VENDOR_ID,
			.subsys_id = (uint16_t)(0x40 + d->device_id),
			.revision = 1,
			.class_code = class_of(d->device_id),
			.cap_ptr = vp->cfg[PCI_CFG_CAP_PTR],
			.bar_size = { VIRTIO_PCI_BAR0_SIZE },
		};
		rc = pci_host_add_function(h, &virtio_fn_ops, vp, &fp, &vp->slot);
		vp->added = rc == 0;
	}
	if (rc == 0)
		rc = wire_intx(vp);
	if (rc < 0) {
		log_err(d->plat->log, d->name, "virtio-pci: %s", strerror(-rc));
		virtio_pci_destroy(vp);
		return rc;
	}
	*out = vp;
	return 0;
}

unsigned virtio_pci_slot(const struct virtio_pci *vp)
{
	return vp->slot;
}

void virtio_pci_reset(struct virtio_pci *vp)
{
	struct virtio_dev *d = vp->d;
	pthread_mutex_lock(&d->lock);
	virtio_dev_set_status(d, 0);
	vp->dfselect = vp->gfselect = 0;
	vp->queue_select = 0;
	msix_reset(&vp->msix);
	memset(&vp->cfg[vp->pcicfg_cap + VCAP_BAR], 0, 1);
	memset(&vp->cfg[vp->pcicfg_cap + VCAP_OFFSET], 0, 12);
	pci_host_set_intx_status(vp->host, vp->slot, false);
	pthread_mutex_unlock(&d->lock);
}

void virtio_pci_destroy(struct virtio_pci *vp)
{
	if (!vp)
		return;
	struct virtio_dev *d = vp->d;
	if (vp->added)
		pci_host_remove_function(vp->host, vp->slot);
	pthread_mutex_lock(&d->lock);
	for (unsigned q = 0; q < d->nr_queues; q++)
		kick_set(vp, q, false);
	pthread_mutex_unlock(&d->lock);
	virtio_intx_unwire(d, &vp->intx);
	msix_unwire(&vp->msix);
	if (d->transport == vp) {
		d->tops = NULL;
		d->transport = NULL;
	}
	free(vp);
}

