/* Guest-side virtio 1.x (VIRTIO spec 1.2): a transport-neutral device
 * handle over virtio-pci modern (4.1) and virtio-mmio version 2 (4.2), and
 * a polled split virtqueue (2.7). No interrupts are taken; a test can
 * still check that the device raised one (virtio_irq_arm/_report).
 *
 * Finding a device (virtio_find): the command line option
 * transport=pci|mmio picks one transport, default PCI first, then MMIO.
 *  - PCI: bus 0 through mechanism #1, vendor 0x1AF4, device 0x1040 + id,
 *    with the modern vendor capabilities (common/notify/ISR/device cfg)
 *    in memory BARs that the VMM or firmware assigned.
 *  - MMIO: the slots listed by `virtio_mmio=BASE[@GSI][,BASE[@GSI]...]` on
 *    the command line, or by Linux-style `virtio_mmio.device=SIZE@BASE:GSI`
 *    options (QEMU microvm adds those when it has no ACPI); else every LNRO0005 device in the ACPI DSDT (its
 *    _CRS Memory32Fixed base and first Extended Interrupt); else a probe
 *    of the magic 0x74726976 at kvmrun's slots (0xE0000000 + i*0x1000,
 *    i < 32) and QEMU microvm's (0xFEB00000 + i*0x200, i < 24).
 * The library prints one line when it picks a device:
 *   `virtio: <name> id=N at <where>` */
#ifndef GUEST_VIRTIO_H
#define GUEST_VIRTIO_H

#include <stdbool.h>
#include <stdint.h>

/* Device status (2.1). */
#define VIRTIO_S_ACKNOWLEDGE 1
#define VIRTIO_S_DRIVER 2
#define VIRTIO_S_DRIVER_OK 4
#define VIRTIO_S_FEATURES_OK 8
#define VIRTIO_S_NEEDS_RESET 64
#define VIRTIO_S_FAILED 128

/* Transport-independent feature bits (6). */
#define VIRTIO_F_INDIRECT_DESC 28
#define VIRTIO_F_EVENT_IDX 29
#define VIRTIO_F_VERSION_1 32
#define VIRTIO_F_ACCESS_PLATFORM 33
#define VIRTIO_F_RING_PACKED 34

#define VIRTIO_BIT(b) (1ull << (b))

enum virtio_transport { VIRTIO_PCI = 1, VIRTIO_MMIO = 2 };

struct virtio_dev {
	enum virtio_transport transport;
	uint32_t device_id;
	char where[40];        /* "pci 00:04.0" or "mmio 0xfeb00000" */
	uint64_t features;     /* negotiated */
	/* PCI */
	uint8_t bus, slot, fn;
	uint64_t common, notify, isr, devcfg;
	uint32_t notify_mult, devcfg_len;
	uint8_t msix_cap;      /* 0: none */
	uint16_t msix_entries;
	uint64_t msix_table;
	uint8_t intx_gsi;      /* interrupt line register, 0xFF: none */
	/* MMIO */
	uint64_t base;
	int32_t gsi;           /* -1: unknown */
	/* interrupt check: vector of each armed queue (0: not armed) */
	uint8_t irq_vec[8];
	bool irq_msix;
};

/* Finds the n-th (from 0) device with this virtio device ID (1 net, 2 blk,
 * 5 balloon) on the transport the command line allows; resets it and sets
 * ACKNOWLEDGE | DRIVER. Prints "virtio: ..." and returns false if absent. */
bool virtio_find(uint32_t device_id, unsigned n, struct virtio_dev *d);

void virtio_reset(struct virtio_dev *d);
uint8_t virtio_get_status(struct virtio_dev *d);
void virtio_set_status(struct virtio_dev *d, uint8_t status);
uint64_t virtio_device_features(struct virtio_dev *d);
/* Accepts offered & (wanted | VERSION_1), sets FEATURES_OK and checks the
 * device kept it. False (status FAILED set) if VERSION_1 is not offered or
 * FEATURES_OK does not stick. */
bool virtio_negotiate(struct virtio_dev *d, uint64_t wanted);
static inline bool virtio_has(const struct virtio_dev *d, unsigned bit)
{
	return (d->features >> bit) & 1;
}
void virtio_driver_ok(struct virtio_dev *d);
/* Number of queues the device offers (PCI num_queues; MMIO: probed). */
unsigned virtio_num_queues(struct virtio_dev *d);

/* Device-specific configuration, little-endian; 64-bit reads are retried
 * until the configuration generation is stable. */
uint8_t virtio_cfg_read8(struct virtio_dev *d, uint32_t off);
uint16_t virtio_cfg_read16(struct virtio_dev *d, uint32_t off);
uint32_t virtio_cfg_read32(struct virtio_dev *d, uint32_t off);
uint64_t virtio_cfg_read64(struct virtio_dev *d, uint32_t off);
void virtio_cfg_write32(struct virtio_dev *d, uint32_t off, uint32_t v);

/* ISR status (PCI, read clears) or MMIO InterruptStatus (acknowledged
 * here): bit 0 used buffer, bit 1 configuration change. */
uint8_t virtio_isr(struct virtio_dev *d);

/* Interrupt check. Before virtq_setup() of queue q: with MSI-X, queue q
 * gets table entry q + 1 aimed at LAPIC vector `vector`; otherwise the
 * device's INTx GSI (PCI interrupt line) or MMIO GSI is routed through the
 * IOAPIC to `vector`. Returns false if there is no way to route it. */
bool virtio_irq_arm(struct virtio_dev *d, unsigned q, uint8_t vector);
/* Prints "irq: queue N raised" if the armed vector is pending in the LAPIC
 * IRR (or the IOAPIC entry's remote IRR is set), else "irq: not seen";
 * then a line saying how. Returns whether it was raised. */
bool virtio_irq_report(struct virtio_dev *d, unsigned q);

/* Split virtqueue. */
#define VIRTQ_MAX 256

struct vring_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};
#define VRING_DESC_F_NEXT 1
#define VRING_DESC_F_WRITE 2
#define VRING_DESC_F_INDIRECT 4

struct vring_used_elem {
	uint32_t id;
	uint32_t len;
};

struct virtq {
	struct virtio_dev *dev;
	uint16_t index, size;
	volatile struct vring_desc *desc;
	volatile uint16_t *avail;     /* flags, idx, ring[size], used_event */
	volatile uint16_t *used;      /* flags, idx, then elems; avail_event */
	volatile struct vring_used_elem *used_ring;
	uint64_t notify_addr;
	uint16_t free_head, num_free, avail_idx, last_used;
	bool event_idx, indirect_ok;
	uint16_t chain[VIRTQ_MAX];    /* descriptors used by each head, 0: free */
	struct vring_desc *indirect;  /* VIRTQ_INDIRECT_MAX per head, on demand */
	uint16_t kicked_idx;          /* avail idx at the last kick */
	uint32_t notifies, suppressed; /* kicks that notified / were suppressed */
	/* With EVENT_IDX, a driver that polls the used ring moves used_event
	 * past each entry it takes, and a device that looks after that rightly
	 * sends no interrupt. While this is set, used_event stays put, so the
	 * next used entry must raise one (for virtio_irq_report). */
	bool hold_used_event;
};
#define VIRTQ_INDIRECT_MAX 16

/* One element of a buffer chain: readable (device reads) or writable. */
struct vq_buf {
	uint64_t addr;
	uint32_t len;
	bool write;
};

static inline struct vq_buf vq_rd(const void *p, uint32_t len)
{
	return (struct vq_buf){ (uint64_t)(uintptr_t)p, len, false };
}
static inline struct vq_buf vq_wr(void *p, uint32_t len)
{
	return (struct vq_buf){ (uint64_t)(uintptr_t)p, len, true };
}

/* Sets up queue q with min(size, device max, VIRTQ_MAX) entries (rings in
 * zeroed pages from mem_alloc) and enables it. 0 on success, else a
 * negative reason (-1 absent, -2 already enabled, -3 setup refused). */
int virtq_setup(struct virtio_dev *d, unsigned q, struct virtq *vq, unsigned size);
/* For hostile tests: programs queue q with exactly this size and these ring
 * addresses (no checks, no rounding, nothing allocated) and enables it.
 * 0 if the device reports the queue enabled afterwards, else -3. */
int virtq_setup_raw(struct virtio_dev *d, unsigned q, uint32_t size, uint64_t desc,
		    uint64_t driver, uint64_t device);
/* Adds a chain (all readable elements must come before the writable ones)
 * and publishes it in the avail ring; indirect=true puts it in an indirect
 * table (needs VIRTIO_F_INDIRECT_DESC). Returns the head id, or -1 if the
 * ring is full or the chain is malformed. Does not notify. */
int virtq_add(struct virtq *vq, const struct vq_buf *bufs, unsigned n, bool indirect);
/* Notifies the device unless it asked not to be (used flags or, with
 * EVENT_IDX, avail_event). */
void virtq_kick(struct virtq *vq);
/* Takes one used element if there is one; frees its descriptors. */
bool virtq_get(struct virtq *vq, uint32_t *id, uint32_t *len);
/* virtq_get with a bounded spin; false after timeout_ms. */
bool virtq_wait(struct virtq *vq, uint32_t *id, uint32_t *len, uint64_t timeout_ms);
/* add + kick + wait for that head; returns false on a full ring, a
 * timeout or a different id coming back. *len gets the used length. */
bool virtq_run(struct virtq *vq, const struct vq_buf *bufs, unsigned n, bool indirect,
	       uint32_t *len, uint64_t timeout_ms);

#endif
