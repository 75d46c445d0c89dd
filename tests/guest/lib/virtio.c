/* virtio-pci modern and virtio-mmio v2 transports, feature negotiation,
 * configuration access and the interrupt check. See virtio.h. */
#include "guest.h"
#include "irq.h"
#include "mem.h"
#include "paging.h"
#include "pci.h"
#include "virtio.h"

/* virtio-pci (4.1.4): vendor capability fields and cfg_type values. */
#define IRQ_WAIT_MS 200 /* how long virtio_irq_report waits for an interrupt */
#define VPCI_CAP_CFG_TYPE 3
#define VPCI_CAP_BAR 4
#define VPCI_CAP_OFFSET 8
#define VPCI_CAP_LENGTH 12
#define VPCI_CAP_NOTIFY_MULT 16
#define VPCI_CFG_COMMON 1
#define VPCI_CFG_NOTIFY 2
#define VPCI_CFG_ISR 3
#define VPCI_CFG_DEVICE 4

/* struct virtio_pci_common_cfg (4.1.4.3). */
#define VC_DFSELECT 0
#define VC_DF 4
#define VC_GFSELECT 8
#define VC_GF 12
#define VC_MSIX_CONFIG 16
#define VC_NUM_QUEUES 18
#define VC_STATUS 20
#define VC_GENERATION 21
#define VC_Q_SELECT 22
#define VC_Q_SIZE 24
#define VC_Q_MSIX 26
#define VC_Q_ENABLE 28
#define VC_Q_NOFF 30
#define VC_Q_DESC 32
#define VC_Q_DRIVER 40
#define VC_Q_DEVICE 48
#define VIRTIO_MSI_NO_VECTOR 0xFFFF

/* MSI-X capability (PCI 3.0 6.8.2). */
#define MSIX_CTRL 2
#define MSIX_TABLE 4
#define MSIX_CTRL_ENABLE 0x8000
#define MSIX_CTRL_MASKALL 0x4000

/* virtio-mmio v2 registers (4.2.2). */
#define VM_MAGIC 0x000
#define VM_VERSION 0x004
#define VM_DEVICE_ID 0x008
#define VM_DEV_FEATURES 0x010
#define VM_DEV_FEATURES_SEL 0x014
#define VM_DRV_FEATURES 0x020
#define VM_DRV_FEATURES_SEL 0x024
#define VM_QUEUE_SEL 0x030
#define VM_QUEUE_NUM_MAX 0x034
#define VM_QUEUE_NUM 0x038
#define VM_QUEUE_READY 0x044
#define VM_QUEUE_NOTIFY 0x050
#define VM_INT_STATUS 0x060
#define VM_INT_ACK 0x064
#define VM_STATUS 0x070
#define VM_QUEUE_DESC 0x080
#define VM_QUEUE_DRIVER 0x090
#define VM_QUEUE_DEVICE 0x0A0
#define VM_GENERATION 0x0FC
#define VM_CONFIG 0x100
#define VIRTIO_MMIO_MAGIC 0x74726976u

#define VIRTIO_PCI_VENDOR 0x1AF4
#define MMIO_MAX_CANDIDATES 64

/* ---------------------------------------------------------------- PCI */

static bool vpci_map(uint64_t pa)
{
	if (pa >= paging_mapped_limit())
		paging_map_8g();
	return pa && pa < paging_mapped_limit();
}

static bool vpci_parse(struct virtio_dev *d, struct pci_addr a)
{
	bool have[5] = { false };
	uint8_t cap = 0;

	while ((cap = pci_find_cap(a, PCI_CAP_ID_VNDR, cap)) != 0) {
		uint8_t type = pci_read8(a, (uint8_t)(cap + VPCI_CAP_CFG_TYPE));
		uint8_t bar = pci_read8(a, (uint8_t)(cap + VPCI_CAP_BAR));
		uint32_t off = pci_read32(a, (uint8_t)(cap + VPCI_CAP_OFFSET));
		uint32_t len = pci_read32(a, (uint8_t)(cap + VPCI_CAP_LENGTH));
		uint64_t base;

		if (type < VPCI_CFG_COMMON || type > VPCI_CFG_DEVICE || have[type] || bar > 5)
			continue;
		base = pci_bar_addr(a, bar);
		if (!base || !vpci_map(base + off)) {
			printf("virtio: pci %02x:%02x.%x cfg type %u in BAR%u at 0x%lx: unassigned or unmapped\n",
			       a.bus, a.dev, a.fn, type, bar, base);
			continue;
		}
		have[type] = true;
		switch (type) {
		case VPCI_CFG_COMMON:
			d->common = base + off;
			break;
		case VPCI_CFG_NOTIFY:
			d->notify = base + off;
			d->notify_mult = pci_read32(a, (uint8_t)(cap + VPCI_CAP_NOTIFY_MULT));
			break;
		case VPCI_CFG_ISR:
			d->isr = base + off;
			break;
		case VPCI_CFG_DEVICE:
			d->devcfg = base + off;
			d->devcfg_len = len;
			break;
		}
	}
	if (!have[VPCI_CFG_COMMON] || !have[VPCI_CFG_NOTIFY] || !have[VPCI_CFG_ISR]) {
		printf("virtio: pci %02x:%02x.%x lacks modern capabilities (common %d notify %d isr %d)\n",
		       a.bus, a.dev, a.fn, have[1], have[2], have[3]);
		return false;
	}
	d->msix_cap = pci_find_cap(a, PCI_CAP_ID_MSIX, 0);
	if (d->msix_cap) {
		uint16_t ctl = pci_read16(a, (uint8_t)(d->msix_cap + MSIX_CTRL));
		uint32_t tbl = pci_read32(a, (uint8_t)(d->msix_cap + MSIX_TABLE));
		uint64_t base = pci_bar_addr(a, tbl & 7);

		d->msix_entries = (uint16_t)((ctl & 0x7FF) + 1);
		d->msix_table = base ? base + (tbl & ~7u) : 0;
		if (!d->msix_table || !vpci_map(d->msix_table))
			d->msix_cap = 0;
	}
	d->intx_gsi = pci_read8(a, PCI_INTERRUPT_PIN) ? pci_read8(a, PCI_INTERRUPT_LINE) : 0xFF;
	pci_write16(a, PCI_COMMAND,
		    (uint16_t)(pci_read16(a, PCI_COMMAND) | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER));
	return true;
}

/* Modern (0x1040 + id) and transitional (0x1000-0x103F, subsystem = id)
 * devices; both must offer the modern capabilities. */
static bool vpci_find(uint32_t id, unsigned n, struct virtio_dev *d)
{
	struct pci_addr a = { 0, 0, 0 };

	if (!pci_present())
		return false;
	for (a.dev = 0; a.dev < 32; a.dev++) {
		unsigned nfn = 1;

		for (a.fn = 0; a.fn < nfn; a.fn++) {
			uint32_t vd = pci_read32(a, PCI_VENDOR_ID);
			uint16_t dev = (uint16_t)(vd >> 16);
			uint32_t vid;

			if ((vd & 0xFFFF) == 0xFFFF)
				continue;
			if (a.fn == 0 && (pci_read8(a, PCI_HEADER_TYPE) & 0x80))
				nfn = 8;
			if ((vd & 0xFFFF) != VIRTIO_PCI_VENDOR)
				continue;
			if (dev >= 0x1040 && dev <= 0x107F)
				vid = dev - 0x1040u;
			else if (dev >= 0x1000 && dev <= 0x103F)
				vid = pci_read16(a, 0x2E);
			else
				continue;
			if (vid != id || n-- != 0)
				continue;
			memset(d, 0, sizeof(*d));
			d->transport = VIRTIO_PCI;
			d->device_id = id;
			d->bus = a.bus;
			d->slot = a.dev;
			d->fn = a.fn;
			d->gsi = -1;
			snprintf(d->where, sizeof(d->where), "pci %02x:%02x.%x", a.bus, a.dev, a.fn);
			return vpci_parse(d, a);
		}
		a.fn = 0;
	}
	return false;
}

static struct pci_addr vpci_addr(const struct virtio_dev *d)
{
	return (struct pci_addr){ d->bus, d->slot, d->fn };
}

/* --------------------------------------------------------------- MMIO */

struct mmio_cand {
	uint64_t base;
	int32_t gsi;
};

static uint64_t parse_hex(const char **s)
{
	const char *p = *s;
	uint64_t v = 0;
	int base = 10;

	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
		base = 16;
		p += 2;
	}
	for (;; p++) {
		int c = *p, dig;

		if (c >= '0' && c <= '9')
			dig = c - '0';
		else if (base == 16 && c >= 'a' && c <= 'f')
			dig = c - 'a' + 10;
		else if (base == 16 && c >= 'A' && c <= 'F')
			dig = c - 'A' + 10;
		else
			break;
		v = v * (uint64_t)base + (uint64_t)dig;
	}
	*s = p;
	return v;
}

/* Linux's syntax, which QEMU microvm appends without ACPI:
 * virtio_mmio.device=SIZE[KMG]@BASE:IRQ, one token per device. */
static unsigned mmio_from_linux_cmdline(struct mmio_cand *c, unsigned max)
{
	static const char key[] = "virtio_mmio.device=";
	const char *p = start_info_cmdline();
	unsigned n = 0;

	while (*p && n < max) {
		while (*p == ' ')
			p++;
		if (!strncmp(p, key, sizeof(key) - 1)) {
			const char *q = p + sizeof(key) - 1;

			while (*q && *q != '@' && *q != ' ')
				q++;
			if (*q == '@') {
				q++;
				c[n].base = parse_hex(&q);
				c[n].gsi = *q == ':' ? (q++, (int32_t)parse_hex(&q)) : -1;
				n += c[n].base != 0;
			}
		}
		while (*p && *p != ' ')
			p++;
	}
	return n;
}

/* virtio_mmio=BASE[@GSI][,BASE[@GSI]...], else Linux's syntax. */
static unsigned mmio_from_cmdline(struct mmio_cand *c, unsigned max)
{
	char buf[256];
	const char *p = buf;
	unsigned n = 0;

	if (!cmdline_get("virtio_mmio", buf, sizeof(buf)))
		return mmio_from_linux_cmdline(c, max);
	while (*p && n < max) {
		c[n].base = parse_hex(&p);
		c[n].gsi = -1;
		if (*p == '@') {
			p++;
			c[n].gsi = (int32_t)parse_hex(&p);
		}
		if (c[n].base)
			n++;
		while (*p && *p != ',')
			p++;
		if (*p == ',')
			p++;
	}
	return n;
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* LNRO0005 devices in the DSDT. Not a full AML parser: after each
 * "LNRO0005" string (the _HID), the resource descriptors of the device's
 * _CRS are looked for before the next device: Memory32Fixed (tag 0x86,
 * length 9: base at +4) and Extended Interrupt (tag 0x89: first GSI at +5). */
static unsigned mmio_from_dsdt(struct mmio_cand *c, unsigned max)
{
	const struct acpi_sdt *dsdt = acpi_find_dsdt();
	const uint8_t *aml;
	uint32_t len, i;
	unsigned n = 0;

	if (!dsdt)
		return 0;
	aml = (const uint8_t *)dsdt;
	len = dsdt->length;
	for (i = sizeof(*dsdt); i + 9 <= len && n < max; i++) {
		if (aml[i] != 'L' || memcmp(aml + i, "LNRO0005", 8))
			continue;
		uint32_t end = i + 512 < len ? i + 512 : len;
		uint64_t base = 0;
		int32_t gsi = -1;

		for (uint32_t j = i + 8; j + 12 <= end; j++) {
			if (aml[j] == 'L' && !memcmp(aml + j, "LNRO0005", 8))
				break;
			if (!base && aml[j] == 0x86 && aml[j + 1] == 9 && aml[j + 2] == 0)
				base = le32(aml + j + 4);
			else if (gsi < 0 && aml[j] == 0x89 && aml[j + 2] == 0 && aml[j + 1] >= 6 &&
				 aml[j + 4] >= 1)
				gsi = (int32_t)le32(aml + j + 5);
			if (base && gsi >= 0)
				break;
		}
		if (base) {
			c[n].base = base;
			c[n].gsi = gsi;
			n++;
		}
		i += 7;
	}
	return n;
}

static unsigned mmio_from_probe(struct mmio_cand *c, unsigned max)
{
	unsigned n = 0;

	for (unsigned i = 0; i < 32 && n < max; i++) {
		c[n].base = 0xE0000000ull + i * 0x1000;
		c[n].gsi = -1;
		n++;
	}
	for (unsigned i = 0; i < 24 && n < max; i++) {
		c[n].base = 0xFEB00000ull + i * 0x200;
		c[n].gsi = -1;
		n++;
	}
	return n;
}

static bool vmmio_find(uint32_t id, unsigned n, struct virtio_dev *d)
{
	static struct mmio_cand cand[MMIO_MAX_CANDIDATES];
	const char *how = "cmdline";
	unsigned nc = mmio_from_cmdline(cand, MMIO_MAX_CANDIDATES);

	if (!nc) {
		nc = mmio_from_dsdt(cand, MMIO_MAX_CANDIDATES);
		how = "acpi";
	}
	if (!nc) {
		nc = mmio_from_probe(cand, MMIO_MAX_CANDIDATES);
		how = "probe";
	}
	for (unsigned i = 0; i < nc; i++) {
		uint64_t b = cand[i].base;

		if (b >= paging_mapped_limit() || mmio_read32(b + VM_MAGIC) != VIRTIO_MMIO_MAGIC)
			continue;
		uint32_t ver = mmio_read32(b + VM_VERSION), did = mmio_read32(b + VM_DEVICE_ID);

		if (did != id)
			continue;
		if (ver != 2) {
			printf("virtio: mmio 0x%lx id=%u is version %u, need 2\n", b, did, ver);
			continue;
		}
		if (n-- != 0)
			continue;
		memset(d, 0, sizeof(*d));
		d->transport = VIRTIO_MMIO;
		d->device_id = id;
		d->base = b;
		d->gsi = cand[i].gsi;
		d->intx_gsi = 0xFF;
		snprintf(d->where, sizeof(d->where), "mmio 0x%lx (%s)", b, how);
		return true;
	}
	return false;
}

/* ------------------------------------------------------------ generic */

bool virtio_find(uint32_t device_id, unsigned n, struct virtio_dev *d)
{
	char t[8] = "";
	bool pci, mmio;

	cmdline_get("transport", t, sizeof(t));
	pci = !t[0] || !strcmp(t, "pci");
	mmio = !t[0] || !strcmp(t, "mmio");
	if (!(pci && vpci_find(device_id, n, d)) && !(mmio && vmmio_find(device_id, n, d))) {
		printf("virtio: no device id=%u (transport=%s)\n", device_id, t[0] ? t : "any");
		return false;
	}
	virtio_reset(d);
	virtio_set_status(d, VIRTIO_S_ACKNOWLEDGE);
	virtio_set_status(d, VIRTIO_S_DRIVER);
	printf("virtio: %s id=%u at %s\n", d->transport == VIRTIO_PCI ? "pci" : "mmio", device_id,
	       d->where);
	return true;
}

uint8_t virtio_get_status(struct virtio_dev *d)
{
	if (d->transport == VIRTIO_PCI)
		return mmio_read8(d->common + VC_STATUS);
	return (uint8_t)mmio_read32(d->base + VM_STATUS);
}

static void virtio_write_status(struct virtio_dev *d, uint8_t s)
{
	if (d->transport == VIRTIO_PCI)
		mmio_write8(d->common + VC_STATUS, s);
	else
		mmio_write32(d->base + VM_STATUS, s);
}

void virtio_set_status(struct virtio_dev *d, uint8_t status)
{
	virtio_write_status(d, (uint8_t)(virtio_get_status(d) | status));
}

/* Writing 0 resets; the device reads 0 once the reset is done (4.1.4.3.2). */
void virtio_reset(struct virtio_dev *d)
{
	virtio_write_status(d, 0);
	for (int i = 0; i < 100000 && virtio_get_status(d); i++)
		cpu_relax();
}

uint64_t virtio_device_features(struct virtio_dev *d)
{
	uint64_t f = 0;

	for (uint32_t sel = 0; sel < 2; sel++) {
		uint32_t v;

		if (d->transport == VIRTIO_PCI) {
			mmio_write32(d->common + VC_DFSELECT, sel);
			v = mmio_read32(d->common + VC_DF);
		} else {
			mmio_write32(d->base + VM_DEV_FEATURES_SEL, sel);
			v = mmio_read32(d->base + VM_DEV_FEATURES);
		}
		f |= (uint64_t)v << (32 * sel);
	}
	return f;
}

bool virtio_negotiate(struct virtio_dev *d, uint64_t wanted)
{
	uint64_t offered = virtio_device_features(d);

	d->features = offered & (wanted | VIRTIO_BIT(VIRTIO_F_VERSION_1));
	if (!virtio_has(d, VIRTIO_F_VERSION_1)) {
		printf("virtio: device does not offer VERSION_1 (features 0x%lx)\n", offered);
		virtio_set_status(d, VIRTIO_S_FAILED);
		return false;
	}
	for (uint32_t sel = 0; sel < 2; sel++) {
		uint32_t v = (uint32_t)(d->features >> (32 * sel));

		if (d->transport == VIRTIO_PCI) {
			mmio_write32(d->common + VC_GFSELECT, sel);
			mmio_write32(d->common + VC_GF, v);
		} else {
			mmio_write32(d->base + VM_DRV_FEATURES_SEL, sel);
			mmio_write32(d->base + VM_DRV_FEATURES, v);
		}
	}
	virtio_set_status(d, VIRTIO_S_FEATURES_OK);
	if (!(virtio_get_status(d) & VIRTIO_S_FEATURES_OK)) {
		printf("virtio: device refused features 0x%lx\n", d->features);
		virtio_set_status(d, VIRTIO_S_FAILED);
		return false;
	}
	return true;
}

void virtio_driver_ok(struct virtio_dev *d)
{
	virtio_set_status(d, VIRTIO_S_DRIVER_OK);
}

unsigned virtio_num_queues(struct virtio_dev *d)
{
	unsigned q;

	if (d->transport == VIRTIO_PCI)
		return mmio_read16(d->common + VC_NUM_QUEUES);
	for (q = 0; q < 64; q++) {
		mmio_write32(d->base + VM_QUEUE_SEL, q);
		if (!mmio_read32(d->base + VM_QUEUE_NUM_MAX))
			break;
	}
	return q;
}

static uint32_t virtio_generation(struct virtio_dev *d)
{
	if (d->transport == VIRTIO_PCI)
		return mmio_read8(d->common + VC_GENERATION);
	return mmio_read32(d->base + VM_GENERATION);
}

static uint64_t virtio_cfg_addr(struct virtio_dev *d, uint32_t off)
{
	return d->transport == VIRTIO_PCI ? d->devcfg + off : d->base + VM_CONFIG + off;
}

uint8_t virtio_cfg_read8(struct virtio_dev *d, uint32_t off)
{
	return mmio_read8(virtio_cfg_addr(d, off));
}

uint16_t virtio_cfg_read16(struct virtio_dev *d, uint32_t off)
{
	return mmio_read16(virtio_cfg_addr(d, off));
}

uint32_t virtio_cfg_read32(struct virtio_dev *d, uint32_t off)
{
	return mmio_read32(virtio_cfg_addr(d, off));
}

uint64_t virtio_cfg_read64(struct virtio_dev *d, uint32_t off)
{
	uint32_t gen, lo, hi;

	do {
		gen = virtio_generation(d);
		lo = mmio_read32(virtio_cfg_addr(d, off));
		hi = mmio_read32(virtio_cfg_addr(d, off + 4));
	} while (gen != virtio_generation(d));
	return (uint64_t)hi << 32 | lo;
}

void virtio_cfg_write32(struct virtio_dev *d, uint32_t off, uint32_t v)
{
	mmio_write32(virtio_cfg_addr(d, off), v);
}

uint8_t virtio_isr(struct virtio_dev *d)
{
	uint32_t s;

	if (d->transport == VIRTIO_PCI)
		return mmio_read8(d->isr);
	s = mmio_read32(d->base + VM_INT_STATUS);
	if (s)
		mmio_write32(d->base + VM_INT_ACK, s);
	return (uint8_t)s;
}

/* ---------------------------------------------------------- interrupts */

bool virtio_irq_arm(struct virtio_dev *d, unsigned q, uint8_t vector)
{
	if (q >= sizeof(d->irq_vec))
		return false;
	if (d->transport == VIRTIO_PCI && d->msix_cap) {
		struct pci_addr a = vpci_addr(d);
		uint8_t ctl_off = (uint8_t)(d->msix_cap + MSIX_CTRL);
		uint64_t e = d->msix_table + 16ull * (q + 1);

		if (q + 1 >= d->msix_entries)
			return false;
		irq_lapic_enable();
		mmio_write32(e + 0, irq_msi_addr());
		mmio_write32(e + 4, 0);
		mmio_write32(e + 8, irq_msi_data(vector));
		mmio_write32(e + 12, 0); /* unmasked */
		pci_write16(a, ctl_off,
			    (uint16_t)((pci_read16(a, ctl_off) | MSIX_CTRL_ENABLE) & ~MSIX_CTRL_MASKALL));
		mmio_write16(d->common + VC_MSIX_CONFIG, VIRTIO_MSI_NO_VECTOR);
		d->irq_msix = true;
	} else {
		int32_t gsi = d->transport == VIRTIO_PCI
				      ? (d->intx_gsi == 0xFF || d->intx_gsi == 0 ? -1 : d->intx_gsi)
				      : d->gsi;

		if (gsi < 0 || !irq_route_gsi((uint32_t)gsi, vector, d->transport == VIRTIO_PCI))
			return false;
		d->gsi = gsi;
	}
	d->irq_vec[q] = vector;
	return true;
}

bool virtio_irq_report(struct virtio_dev *d, unsigned q)
{
	uint8_t v = q < sizeof(d->irq_vec) ? d->irq_vec[q] : 0;
	bool seen;

	if (!v) {
		printf("irq: not seen\nirq: queue %u not armed (no msi-x entry or irq line)\n", q);
		return false;
	}
	/* The device writes the used ring before it signals the interrupt,
	 * so a guest polling the ring can look before the interrupt lands:
	 * wait for it a while (a driver would sleep until it came). */
	uint64_t end = rdtsc() + time_ms_to_tsc(IRQ_WAIT_MS);
	do
		seen = irq_pending(v) || (!d->irq_msix && irq_gsi_remote_irr((uint32_t)d->gsi));
	while (!seen && rdtsc() < end);
	if (seen)
		printf("irq: queue %u raised\n", q);
	else
		printf("irq: not seen\n");
	if (d->irq_msix)
		printf("irq: via msi-x entry %u vector 0x%x\n", q + 1, v);
	else
		printf("irq: via ioapic gsi %d vector 0x%x\n", d->gsi, v);
	return seen;
}

/* ---------------------------------------------------------- virtqueue */

static inline void virtio_mb(void)
{
	__asm__ volatile("lock; addl $0, (%%rsp)" ::: "memory", "cc");
}

static inline void compiler_barrier(void)
{
	__asm__ volatile("" ::: "memory");
}

int virtq_setup(struct virtio_dev *d, unsigned q, struct virtq *vq, unsigned size)
{
	unsigned max;
	uint8_t *mem;

	memset(vq, 0, sizeof(*vq));
	if (d->transport == VIRTIO_PCI) {
		mmio_write16(d->common + VC_Q_SELECT, (uint16_t)q);
		max = mmio_read16(d->common + VC_Q_SIZE);
		if (max && mmio_read16(d->common + VC_Q_ENABLE))
			return -2;
	} else {
		mmio_write32(d->base + VM_QUEUE_SEL, q);
		if (mmio_read32(d->base + VM_QUEUE_READY))
			return -2;
		max = mmio_read32(d->base + VM_QUEUE_NUM_MAX);
	}
	if (!max)
		return -1;
	if (size > max)
		size = max;
	if (size > VIRTQ_MAX)
		size = VIRTQ_MAX;
	while (size & (size - 1))
		size &= size - 1; /* split rings: a power of two */

	mem = mem_alloc(3); /* desc | avail | used, one page each */
	vq->dev = d;
	vq->index = (uint16_t)q;
	vq->size = (uint16_t)size;
	vq->desc = (volatile struct vring_desc *)mem;
	vq->avail = (volatile uint16_t *)(mem + PAGE_SIZE);
	vq->used = (volatile uint16_t *)(mem + 2 * PAGE_SIZE);
	vq->used_ring = (volatile struct vring_used_elem *)(mem + 2 * PAGE_SIZE + 4);
	vq->num_free = (uint16_t)size;
	vq->event_idx = virtio_has(d, VIRTIO_F_EVENT_IDX);
	vq->indirect_ok = virtio_has(d, VIRTIO_F_INDIRECT_DESC);
	for (unsigned i = 0; i < size; i++)
		vq->desc[i].next = (uint16_t)(i + 1);

	uint64_t pd = (uint64_t)(uintptr_t)vq->desc, pa = (uint64_t)(uintptr_t)vq->avail,
		 pu = (uint64_t)(uintptr_t)vq->used;

	if (d->transport == VIRTIO_PCI) {
		uint64_t c = d->common;

		mmio_write16(c + VC_Q_SIZE, (uint16_t)size);
		mmio_write32(c + VC_Q_DESC, (uint32_t)pd);
		mmio_write32(c + VC_Q_DESC + 4, (uint32_t)(pd >> 32));
		mmio_write32(c + VC_Q_DRIVER, (uint32_t)pa);
		mmio_write32(c + VC_Q_DRIVER + 4, (uint32_t)(pa >> 32));
		mmio_write32(c + VC_Q_DEVICE, (uint32_t)pu);
		mmio_write32(c + VC_Q_DEVICE + 4, (uint32_t)(pu >> 32));
		if (d->irq_msix && q < sizeof(d->irq_vec) && d->irq_vec[q]) {
			mmio_write16(c + VC_Q_MSIX, (uint16_t)(q + 1));
			if (mmio_read16(c + VC_Q_MSIX) != q + 1) {
				printf("virtio: queue %u: msi-x vector %u refused\n", q, q + 1);
				d->irq_vec[q] = 0;
			}
		} else if (d->msix_cap && (pci_read16(vpci_addr(d), (uint8_t)(d->msix_cap + MSIX_CTRL)) &
					   MSIX_CTRL_ENABLE)) {
			mmio_write16(c + VC_Q_MSIX, VIRTIO_MSI_NO_VECTOR);
		}
		vq->notify_addr = d->notify + (uint64_t)mmio_read16(c + VC_Q_NOFF) * d->notify_mult;
		mmio_write16(c + VC_Q_ENABLE, 1);
	} else {
		uint64_t b = d->base;

		mmio_write32(b + VM_QUEUE_NUM, size);
		mmio_write32(b + VM_QUEUE_DESC, (uint32_t)pd);
		mmio_write32(b + VM_QUEUE_DESC + 4, (uint32_t)(pd >> 32));
		mmio_write32(b + VM_QUEUE_DRIVER, (uint32_t)pa);
		mmio_write32(b + VM_QUEUE_DRIVER + 4, (uint32_t)(pa >> 32));
		mmio_write32(b + VM_QUEUE_DEVICE, (uint32_t)pu);
		mmio_write32(b + VM_QUEUE_DEVICE + 4, (uint32_t)(pu >> 32));
		mmio_write32(b + VM_QUEUE_READY, 1);
		if (mmio_read32(b + VM_QUEUE_READY) != 1)
			return -3;
		vq->notify_addr = b + VM_QUEUE_NOTIFY;
	}
	return 0;
}

int virtq_setup_raw(struct virtio_dev *d, unsigned q, uint32_t size, uint64_t desc,
		    uint64_t driver, uint64_t device)
{
	if (d->transport == VIRTIO_PCI) {
		uint64_t c = d->common;

		mmio_write16(c + VC_Q_SELECT, (uint16_t)q);
		mmio_write16(c + VC_Q_SIZE, (uint16_t)size);
		mmio_write32(c + VC_Q_DESC, (uint32_t)desc);
		mmio_write32(c + VC_Q_DESC + 4, (uint32_t)(desc >> 32));
		mmio_write32(c + VC_Q_DRIVER, (uint32_t)driver);
		mmio_write32(c + VC_Q_DRIVER + 4, (uint32_t)(driver >> 32));
		mmio_write32(c + VC_Q_DEVICE, (uint32_t)device);
		mmio_write32(c + VC_Q_DEVICE + 4, (uint32_t)(device >> 32));
		mmio_write16(c + VC_Q_ENABLE, 1);
		return mmio_read16(c + VC_Q_ENABLE) == 1 ? 0 : -3;
	}
	uint64_t b = d->base;

	mmio_write32(b + VM_QUEUE_SEL, q);
	mmio_write32(b + VM_QUEUE_NUM, size);
	mmio_write32(b + VM_QUEUE_DESC, (uint32_t)desc);
	mmio_write32(b + VM_QUEUE_DESC + 4, (uint32_t)(desc >> 32));
	mmio_write32(b + VM_QUEUE_DRIVER, (uint32_t)driver);
	mmio_write32(b + VM_QUEUE_DRIVER + 4, (uint32_t)(driver >> 32));
	mmio_write32(b + VM_QUEUE_DEVICE, (uint32_t)device);
	mmio_write32(b + VM_QUEUE_DEVICE + 4, (uint32_t)(device >> 32));
	mmio_write32(b + VM_QUEUE_READY, 1);
	return mmio_read32(b + VM_QUEUE_READY) == 1 ? 0 : -3;
}

int virtq_add(struct virtq *vq, const struct vq_buf *bufs, unsigned n, bool indirect)
{
	uint16_t head = vq->free_head;

	if (!n || n > vq->size)
		return -1;
	for (unsigned i = 1; i < n; i++)
		if (bufs[i - 1].write && !bufs[i].write)
			return -1; /* readable after writable */
	if (indirect) {
		struct vring_desc *t;

		if (!vq->indirect_ok || n > VIRTQ_INDIRECT_MAX || !vq->num_free)
			return -1;
		if (!vq->indirect)
			vq->indirect = mem_alloc(
				(unsigned)((vq->size * VIRTQ_INDIRECT_MAX * sizeof(struct vring_desc) +
					    PAGE_SIZE - 1) / PAGE_SIZE));
		t = vq->indirect + (size_t)head * VIRTQ_INDIRECT_MAX;
		for (unsigned i = 0; i < n; i++) {
			t[i].addr = bufs[i].addr;
			t[i].len = bufs[i].len;
			t[i].flags = (uint16_t)((bufs[i].write ? VRING_DESC_F_WRITE : 0) |
						(i + 1 < n ? VRING_DESC_F_NEXT : 0));
			t[i].next = (uint16_t)(i + 1 < n ? i + 1 : 0);
		}
		vq->desc[head].addr = (uint64_t)(uintptr_t)t;
		vq->desc[head].len = n * (uint32_t)sizeof(struct vring_desc);
		vq->desc[head].flags = VRING_DESC_F_INDIRECT;
		vq->free_head = vq->desc[head].next;
		vq->num_free--;
		vq->chain[head] = 1;
	} else {
		uint16_t idx = head;

		if (vq->num_free < n)
			return -1;
		for (unsigned i = 0; i < n; i++) {
			vq->desc[idx].addr = bufs[i].addr;
			vq->desc[idx].len = bufs[i].len;
			vq->desc[idx].flags = (uint16_t)((bufs[i].write ? VRING_DESC_F_WRITE : 0) |
							 (i + 1 < n ? VRING_DESC_F_NEXT : 0));
			if (i + 1 < n)
				idx = vq->desc[idx].next;
		}
		vq->free_head = vq->desc[idx].next;
		vq->num_free = (uint16_t)(vq->num_free - n);
		vq->chain[head] = (uint16_t)n;
	}
	vq->avail[2 + vq->avail_idx % vq->size] = head;
	compiler_barrier(); /* x86 keeps stores in order */
	vq->avail_idx++;
	vq->avail[1] = vq->avail_idx;
	return head;
}

void virtq_kick(struct virtq *vq)
{
	uint16_t new_idx = vq->avail_idx, old_idx = vq->kicked_idx;
	bool notify;

	virtio_mb(); /* the avail idx store before the used-ring loads below */
	if (vq->event_idx) {
		uint16_t event = vq->used[2 + 2 * 2 * vq->size]; /* avail_event */

		/* vring_need_event (2.7.10) over the entries added since the last kick */
		notify = (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old_idx);
	} else {
		notify = !(vq->used[0] & 1); /* VIRTQ_USED_F_NO_NOTIFY */
	}
	vq->kicked_idx = new_idx;
	if (!notify) {
		vq->suppressed++;
		return;
	}
	vq->notifies++;
	if (vq->dev->transport == VIRTIO_PCI)
		mmio_write16(vq->notify_addr, vq->index);
	else
		mmio_write32(vq->notify_addr, vq->index);
}

bool virtq_get(struct virtq *vq, uint32_t *id, uint32_t *len)
{
	uint16_t head, idx;
	unsigned n;

	if (vq->last_used == vq->used[1])
		return false;
	compiler_barrier();
	head = (uint16_t)vq->used_ring[vq->last_used % vq->size].id;
	*id = head;
	*len = vq->used_ring[vq->last_used % vq->size].len;
	vq->last_used++;
	if (vq->event_idx && !vq->hold_used_event)
		vq->avail[2 + vq->size] = vq->last_used; /* used_event */
	if (head >= vq->size || !vq->chain[head]) {
		printf("virtq: queue %u: device returned bad id %u\n", vq->index, head);
		return true;
	}
	n = vq->chain[head];
	idx = head;
	for (unsigned i = 1; i < n; i++)
		idx = vq->desc[idx].next;
	vq->desc[idx].next = vq->free_head;
	vq->free_head = head;
	vq->num_free = (uint16_t)(vq->num_free + n);
	vq->chain[head] = 0;
	vq->desc[head].flags = 0;
	return true;
}

bool virtq_wait(struct virtq *vq, uint32_t *id, uint32_t *len, uint64_t timeout_ms)
{
	uint64_t start = rdtsc(), limit = time_ms_to_tsc(timeout_ms);

	while (!virtq_get(vq, id, len)) {
		if (rdtsc() - start > limit)
			return false;
		cpu_relax();
	}
	return true;
}

bool virtq_run(struct virtq *vq, const struct vq_buf *bufs, unsigned n, bool indirect,
	       uint32_t *len, uint64_t timeout_ms)
{
	int head = virtq_add(vq, bufs, n, indirect);
	uint32_t id, l;

	if (head < 0) {
		printf("virtq: queue %u: cannot add %u buffers\n", vq->index, n);
		return false;
	}
	virtq_kick(vq);
	if (!virtq_wait(vq, &id, &l, timeout_ms)) {
		printf("virtq: queue %u: no used buffer after %lu ms\n", vq->index, timeout_ms);
		return false;
	}
	if (id != (uint32_t)head) {
		printf("virtq: queue %u: used id %u, want %d\n", vq->index, id, head);
		return false;
	}
	if (len)
		*len = l;
	return true;
}
