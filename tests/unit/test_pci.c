/* The PCI host bridge and the virtio-pci transport over a fake platform:
 * config mechanism #1, BAR sizing and moves, the capability list, a full
 * driver initialisation through BAR0, MSI-X, INTx/ISR and hostile values. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "mem/layout.h"
#include "vmm/board.h"
#include "devices/bus.h"
#include "devices/pci_host.h"
#include "mem/guest_mem.h"
#include "fake_platform.h"
#include "unit.h"
#include "virtio/device.h"
#include "virtio/pci.h"
#include "lib/evloop.h"
#include "lib/log.h"

/* ---- fake platform ---- */

#define MAX_REC 128

struct fake_io { int fd; uint64_t addr; unsigned len; };
struct fake_irqfd { int fd; unsigned gsi; int resample_fd; };

struct fake_plat {
	struct fake_io io[MAX_REC];
	unsigned nr_io, io_assigns, io_errors;
	struct fake_irqfd irq[MAX_REC];
	unsigned nr_irq, irq_errors;
	unsigned next_gsi, allocs, frees;
	unsigned routes;
	unsigned last_route_gsi;
	uint64_t last_route_addr;
	uint32_t last_route_data;
};

static int fake_ioeventfd(void *cookie, int fd, uint64_t addr, unsigned len, bool datamatch,
			  uint64_t data, bool assign)
{
	struct fake_plat *f = cookie;
	(void)data;
	if (datamatch && len == 0)
		return -EINVAL; /* what KVM says */
	for (unsigned i = 0; i < f->nr_io; i++) {
		if (f->io[i].fd == fd && f->io[i].addr == addr && f->io[i].len == len) {
			if (assign) {
				f->io_errors++;
				return -EEXIST;
			}
			f->io[i] = f->io[--f->nr_io];
			return 0;
		}
	}
	if (!assign || f->nr_io == MAX_REC) {
		f->io_errors++;
		return -ENOENT;
	}
	f->io[f->nr_io++] = (struct fake_io){ fd, addr, len };
	f->io_assigns++;
	return 0;
}

static int fake_irqfd(void *cookie, int fd, unsigned gsi, int resample_fd, bool assign)
{
	struct fake_plat *f = cookie;
	for (unsigned i = 0; i < f->nr_irq; i++) {
		if (f->irq[i].fd == fd && f->irq[i].gsi == gsi) {
			if (assign) {
				f->irq_errors++;
				return -EEXIST;
			}
			f->irq[i] = f->irq[--f->nr_irq];
			return 0;
		}
	}
	if (!assign || f->nr_irq == MAX_REC) {
		f->irq_errors++;
		return -ENOENT;
	}
	f->irq[f->nr_irq++] = (struct fake_irqfd){ fd, gsi, resample_fd };
	return 0;
}

static int fake_msi_alloc(void *cookie, unsigned *gsi)
{
	struct fake_plat *f = cookie;
	*gsi = 24 + f->next_gsi++;
	f->allocs++;
	return 0;
}

static int fake_msi_route(void *cookie, unsigned gsi, uint64_t addr, uint32_t data)
{
	struct fake_plat *f = cookie;
	f->routes++;
	f->last_route_gsi = gsi;
	f->last_route_addr = addr;
	f->last_route_data = data;
	return 0;
}

static void fake_msi_free(void *cookie, unsigned gsi)
{
	struct fake_plat *f = cookie;
	(void)gsi;
	f->frees++;
}

static const struct fake_io *io_find(const struct fake_plat *f, uint64_t addr)
{
	for (unsigned i = 0; i < f->nr_io; i++)
		if (f->io[i].addr == addr)
			return &f->io[i];
	return NULL;
}

static const struct fake_irqfd *irq_find(const struct fake_plat *f, unsigned gsi)
{
	for (unsigned i = 0; i < f->nr_irq; i++)
		if (f->irq[i].gsi == gsi)
			return &f->irq[i];
	return NULL;
}

/* Reads and resets an eventfd's counter (0 if nothing was signalled). */
static uint64_t drain(int fd)
{
	uint64_t n = 0;
	if (read(fd, &n, sizeof(n)) != sizeof(n))
		return 0;
	return n;
}

/* ---- a trivial device model ---- */

#define FAKE_ID 3        /* console: class "other" */
#define FAKE_QUEUES 2
#define FAKE_QSIZE 64
#define FAKE_FEATURES ((1ull << 0) | (1ull << 5))

struct fake_model {
	uint8_t config[8];
	unsigned activates, notifies, resets;
};

static void model_config_read(struct virtio_dev *d, uint32_t off, void *data, unsigned len)
{
	struct fake_model *m = d->priv;
	memcpy(data, &m->config[off], len);
}

static void model_config_write(struct virtio_dev *d, uint32_t off, const void *data, unsigned len)
{
	struct fake_model *m = d->priv;
	memcpy(&m->config[off], data, len);
}

static int model_activate(struct virtio_dev *d)
{
	struct fake_model *m = d->priv;
	m->activates++;
	return 0;
}

static void model_notify(struct virtio_dev *d, unsigned q)
{
	struct fake_model *m = d->priv;
	(void)q;
	m->notifies++;
}

static void model_reset(struct virtio_dev *d)
{
	struct fake_model *m = d->priv;
	m->resets++;
}

static const struct virtio_dev_ops model_ops = {
	.features = FAKE_FEATURES,
	.config_size = sizeof(((struct fake_model *)0)->config),
	.config_read = model_config_read,
	.config_write = model_config_write,
	.activate = model_activate,
	.notify = model_notify,
	.reset = model_reset,
};

/* ---- a whole machine: buses, RAM, host, one virtio function ---- */

#define RAM_SIZE 0x100000u

struct rig {
	struct logger log;
	struct bus pio, mmio;
	struct guest_mem mem;
	uint8_t *ram;
	struct fake_plat fp;
	struct virtio_platform plat;
	struct pci_host *host;
	unsigned cf9_writes;
	uint8_t cf9_value;
	struct fake_model model;
	struct virtio_dev dev;
	struct virtio_pci *vp;
	uint64_t bar0;
};

static void on_cf9(void *cookie, uint8_t value)
{
	struct rig *r = cookie;
	r->cf9_writes++;
	r->cf9_value = value;
}

static void rig_init(struct rig *r, struct evloop *loop, bool with_virtio)
{
	memset(r, 0, sizeof(*r));
	log_init(&r->log, LOG_ERROR, "test");
	bus_init(&r->pio, "pio");
	bus_init(&r->mmio, "mmio");
	r->ram = fake_ram_create(&r->mem, RAM_SIZE);
	r->plat = (struct virtio_platform){
		.mem = &r->mem, .loop = loop, .log = &r->log, .cookie = &r->fp,
		.ioeventfd = fake_ioeventfd, .irqfd = fake_irqfd,
		.msi_alloc = fake_msi_alloc, .msi_route = fake_msi_route,
		.msi_free = fake_msi_free,
	};
	const struct pci_host_params hp = { .log = &r->log, .config_port = PORT_PCI_CONFIG,
		.window_base = LAYOUT_PCI_MMIO, .window_size = LAYOUT_PCI_MMIO_SIZE,
		.cf9_write = on_cf9, .cf9_cookie = r };
	CHECK_EQ(pci_host_create(&r->pio, &r->mmio, &hp, &r->host), 0);
	if (!with_virtio)
		return;
	CHECK_EQ(virtio_dev_init(&r->dev, "virtio-test0", FAKE_ID, &model_ops, &r->model, &r->plat,
				 FAKE_QUEUES, FAKE_QSIZE), 0);
	CHECK_EQ(virtio_pci_create(r->host, &r->dev, &r->vp), 0);
	r->bar0 = LAYOUT_PCI_MMIO; /* the first BAR allocated */
}

static void rig_fini(struct rig *r)
{
	if (r->vp) {
		virtio_pci_destroy(r->vp);
		virtio_dev_uninit(&r->dev);
	}
	pci_host_destroy(r->host);
	fake_ram_destroy(r->ram, RAM_SIZE);
}

static uint32_t conf1(unsigned bus, unsigned dev, unsigned reg)
{
	return 0x80000000u | bus << 16 | dev << 11 | (reg & 0xfc);
}

static uint32_t cfg_read(struct rig *r, unsigned dev, unsigned reg, unsigned len)
{
	uint32_t a = conf1(0, dev, reg), v = 0;
	CHECK(bus_write(&r->pio, PORT_PCI_CONFIG, &a, 4));
	CHECK(bus_read(&r->pio, PORT_PCI_CONFIG + 4 + (reg & 3), &v, len));
	return v;
}

static void cfg_write(struct rig *r, unsigned dev, unsigned reg, uint32_t v, unsigned len)
{
	uint32_t a = conf1(0, dev, reg);
	CHECK(bus_write(&r->pio, PORT_PCI_CONFIG, &a, 4));
	CHECK(bus_write(&r->pio, PORT_PCI_CONFIG + 4 + (reg & 3), &v, len));
}

static uint64_t mmio_rd(struct rig *r, uint64_t addr, unsigned len)
{
	uint64_t v = 0;
	bus_read(&r->mmio, addr, &v, len);
	return v;
}

static void mmio_wr(struct rig *r, uint64_t addr, uint64_t v, unsigned len)
{
	bus_write(&r->mmio, addr, &v, len);
}

static uint64_t common_rd(struct rig *r, unsigned off, unsigned len)
{
	return mmio_rd(r, r->bar0 + VIRTIO_PCI_COMMON_OFF + off, len);
}

static void common_wr(struct rig *r, unsigned off, uint64_t v, unsigned len)
{
	mmio_wr(r, r->bar0 + VIRTIO_PCI_COMMON_OFF + off, v, len);
}

/* ---- tests ---- */

static void test_conf1_host_bridge(void)
{
	struct rig r;
	rig_init(&r, NULL, false);
	CHECK_EQ(cfg_read(&r, 0, 0x00, 4), 0x29c08086);
	CHECK_EQ(cfg_read(&r, 0, 0x08, 4) >> 8, 0x060000);
	CHECK_EQ(cfg_read(&r, 0, PCI_CFG_HEADER_TYPE, 1), 0);
	/* the address register reads back */
	uint32_t a = 0;
	CHECK(bus_read(&r.pio, PORT_PCI_CONFIG, &a, 4));
	CHECK_EQ(a, conf1(0, 0, 0x0e));
	/* sub-dword accesses at any offset in the dword */
	CHECK_EQ(cfg_read(&r, 0, 0x02, 2), 0x29c0);
	CHECK_EQ(cfg_read(&r, 0, 0x01, 1), 0x80);
	CHECK_EQ(cfg_read(&r, 0, 0x03, 1), 0x29);
	CHECK_EQ(cfg_read(&r, 0, 0x0b, 1), 0x06);
	/* empty slot, other bus, other function, enable bit clear */
	CHECK_EQ(cfg_read(&r, 5, 0x00, 4), 0xffffffffu);
	CHECK_EQ(cfg_read(&r, 31, 0x00, 2), 0xffff);
	a = conf1(1, 0, 0);
	uint32_t v = 0;
	CHECK(bus_write(&r.pio, PORT_PCI_CONFIG, &a, 4));
	CHECK(bus_read(&r.pio, PORT_PCI_CONFIG + 4, &v, 4));
	CHECK_EQ(v, 0xffffffffu);
	a = conf1(0, 0, 0) | 1u << 8; /* function 1 */
	CHECK(bus_write(&r.pio, PORT_PCI_CONFIG, &a, 4));
	CHECK(bus_read(&r.pio, PORT_PCI_CONFIG + 4, &v, 4));
	CHECK_EQ(v, 0xffffffffu);
	a = 0; /* disabled */
	CHECK(bus_write(&r.pio, PORT_PCI_CONFIG, &a, 4));
	CHECK(bus_read(&r.pio, PORT_PCI_CONFIG + 4, &v, 4));
	CHECK_EQ(v, 0xffffffffu);
	/* read-only ids stay */
	cfg_write(&r, 0, 0x00, 0x12345678, 4);
	CHECK_EQ(cfg_read(&r, 0, 0x00, 4), 0x29c08086);
	/* 0xcf9: byte writes go to the reset callback, nothing else does */
	uint8_t b = 0x06;
	CHECK(bus_write(&r.pio, PORT_ACPI_RESET, &b, 1));
	CHECK_EQ(r.cf9_writes, 1);
	CHECK_EQ(r.cf9_value, 0x06);
	a = 0x80000000u;
	CHECK(bus_write(&r.pio, PORT_PCI_CONFIG, &a, 4));
	uint16_t w = 0x0606;
	CHECK(bus_write(&r.pio, PORT_PCI_CONFIG, &w, 2));
	CHECK_EQ(r.cf9_writes, 1);
	CHECK(bus_read(&r.pio, PORT_PCI_CONFIG, &a, 4));
	CHECK_EQ(a, 0x80000000u);
	/* the whole window is one range; with no BARs it reads all-ones */
	CHECK_EQ(mmio_rd(&r, LAYOUT_PCI_MMIO + 0x1234, 4), 0xffffffffu);
	rig_fini(&r);
}

static void test_virtio_function_header(void)
{
	struct rig r;
	rig_init(&r, NULL, true);
	unsigned s = virtio_pci_slot(r.vp);
	CHECK_EQ(s, 1);
	CHECK_EQ(cfg_read(&r, s, 0x00, 2), VIRTIO_PCI_VENDOR_ID);
	CHECK_EQ(cfg_read(&r, s, 0x02, 2), 0x1040 + FAKE_ID);
	CHECK_EQ(cfg_read(&r, s, PCI_CFG_REVISION, 1), 1);
	CHECK_EQ(cfg_read(&r, s, 0x08, 4) >> 8, 0xff0000);
	CHECK_EQ(cfg_read(&r, s, PCI_CFG_SUBSYS_VENDOR, 2), VIRTIO_PCI_VENDOR_ID);
	CHECK(cfg_read(&r, s, PCI_CFG_SUBSYS_ID, 2) >= 0x40);
	CHECK(cfg_read(&r, s, PCI_CFG_STATUS, 2) & PCI_STATUS_CAP_LIST);
	CHECK(cfg_read(&r, s, PCI_CFG_COMMAND, 2) & PCI_COMMAND_MEMORY);
	CHECK_EQ(cfg_read(&r, s, PCI_CFG_INT_PIN, 1), 1);
	CHECK_EQ(cfg_read(&r, s, PCI_CFG_INT_LINE, 1), pci_host_slot_gsi(s));
	CHECK_EQ(cfg_read(&r, s, PCI_CFG_BAR0, 4), r.bar0);
	CHECK_EQ(cfg_read(&r, s, PCI_CFG_BAR0 + 4, 4), 0); /* BAR1 unimplemented */
	cfg_write(&r, s, PCI_CFG_BAR0 + 4, 0xffffffffu, 4);
	CHECK_EQ(cfg_read(&r, s, PCI_CFG_BAR0 + 4, 4), 0);
	CHECK_EQ(cfg_read(&r, s, PCI_CFG_ROM, 4), 0);
	/* INTx irqfd with a resample fd on the slot's GSI */
	const struct fake_irqfd *ir = irq_find(&r.fp, pci_host_slot_gsi(s));
	CHECK(ir != NULL && ir->resample_fd >= 0);
	/* one MSI GSI per vector, each with an irqfd */
	CHECK_EQ(r.fp.allocs, FAKE_QUEUES + 1);
	CHECK_EQ(r.fp.nr_irq, FAKE_QUEUES + 2);
	/* kicks attached at the notify addresses, length 0 */
	CHECK_EQ(r.fp.nr_io, FAKE_QUEUES);
	for (unsigned q = 0; q < FAKE_QUEUES; q++) {
		const struct fake_io *io = io_find(&r.fp, r.bar0 + VIRTIO_PCI_NOTIFY_OFF + 4 * q);
		CHECK(io != NULL && io->fd == r.dev.queues[q].kick_fd && io->len == 0);
	}
	/* a second device gets the next slot and a disjoint BAR */
	struct fake_model m2 = {0};
	struct virtio_dev d2;
	struct virtio_pci *vp2;
	CHECK_EQ(virtio_dev_init(&d2, "virtio-test1", 2, &model_ops, &m2, &r.plat, 1, 16), 0);
	CHECK_EQ(virtio_pci_create(r.host, &d2, &vp2), 0);
	CHECK_EQ(virtio_pci_slot(vp2), 2);
	CHECK_EQ(cfg_read(&r, 2, 0x08, 4) >> 8, 0x018000);
	uint32_t b2 = cfg_read(&r, 2, PCI_CFG_BAR0, 4);
	CHECK(b2 >= r.bar0 + VIRTIO_PCI_BAR0_SIZE && b2 % VIRTIO_PCI_BAR0_SIZE == 0);
	CHECK_EQ(common_rd(&r, VIRTIO_PCI_COMMON_NUMQ, 2), FAKE_QUEUES);
	CHECK_EQ(mmio_rd(&r, b2 + VIRTIO_PCI_COMMON_NUMQ, 2), 1);
	virtio_pci_destroy(vp2);
	virtio_dev_uninit(&d2);
	CHECK_EQ(cfg_read(&r, 2, 0, 4), 0xffffffffu); /* removed */
	CHECK_EQ(mmio_rd(&r, b2 + VIRTIO_PCI_COMMON_NUMQ, 2), 0xffff);

	rig_fini(&r);
	CHECK_EQ(r.fp.nr_io, 0);  /* every ioeventfd deassigned */
	CHECK_EQ(r.fp.nr_irq, 0); /* every irqfd deassigned */
	CHECK_EQ(r.fp.frees, r.fp.allocs);
	CHECK_EQ(r.fp.io_errors, 0);
	CHECK_EQ(r.fp.irq_errors, 0);
}

static void test_bar_sizing_and_moving(void)
{
	struct rig r;
	rig_init(&r, NULL, true);
	unsigned s = virtio_pci_slot(r.vp);
	uint64_t notify0 = VIRTIO_PCI_NOTIFY_OFF;
	CHECK(io_find(&r.fp, r.bar0 + notify0) != NULL);

	/* sizing: all-ones reads back the size mask; decoding stops there */
	uint32_t orig = cfg_read(&r, s, PCI_CFG_BAR0, 4);
	cfg_write(&r, s, PCI_CFG_BAR0, 0xffffffffu, 4);
	CHECK_EQ(cfg_read(&r, s, PCI_CFG_BAR0, 4), ~(VIRTIO_PCI_BAR0_SIZE - 1));
	CHECK_EQ(r.fp.nr_io, 0);
	CHECK_EQ(mmio_rd(&r, orig + VIRTIO_PCI_COMMON_NUMQ, 2), 0xffff);

	/* moved: the ioeventfds follow, the old place reads all-ones */
	uint64_t nb = LAYOUT_PCI_MMIO + 0x100000;
	cfg_write(&r, s, PCI_CFG_BAR0, (uint32_t)nb | 0x7, 4); /* low bits are flags, RO 0 */
	CHECK_EQ(cfg_read(&r, s, PCI_CFG_BAR0, 4), nb);
	CHECK_EQ(r.fp.nr_io, FAKE_QUEUES);
	CHECK(io_find(&r.fp, nb + notify0) != NULL);
	CHECK(io_find(&r.fp, nb + notify0 + VIRTIO_PCI_NOTIFY_MULT) != NULL);
	CHECK(io_find(&r.fp, orig + notify0) == NULL);
	CHECK_EQ(mmio_rd(&r, orig + VIRTIO_PCI_COMMON_NUMQ, 2), 0xffff);
	CHECK_EQ(mmio_rd(&r, nb + VIRTIO_PCI_COMMON_NUMQ, 2), FAKE_QUEUES);

	/* byte-wise BAR writes work too */
	cfg_write(&r, s, PCI_CFG_BAR0 + 2, 0x20, 1);
	CHECK_EQ(cfg_read(&r, s, PCI_CFG_BAR0, 4), (nb & ~0xff0000ull) | 0x200000);
	cfg_write(&r, s, PCI_CFG_BAR0 + 2, (uint32_t)(nb >> 16) & 0xff, 1);
	CHECK_EQ(cfg_read(&r, s, PCI_CFG_BAR0, 4), nb);

	/* memory decoding off: nothing decodes, no kicks; on: back */
	uint16_t cmd = (uint16_t)cfg_read(&r, s, PCI_CFG_COMMAND, 2);
	cfg_write(&r, s, PCI_CFG_COMMAND, cmd & ~PCI_COMMAND_MEMORY, 2);
	CHECK_EQ(r.fp.nr_io, 0);
	CHECK_EQ(mmio_rd(&r, nb + VIRTIO_PCI_COMMON_NUMQ, 2), 0xffff);
	cfg_write(&r, s, PCI_CFG_COMMAND, cmd, 2);
	CHECK_EQ(r.fp.nr_io, FAKE_QUEUES);
	CHECK(io_find(&r.fp, nb + notify0) != NULL);
	CHECK_EQ(mmio_rd(&r, nb + VIRTIO_PCI_COMMON_NUMQ, 2), FAKE_QUEUES);

	/* outside the window: not decoded */
	cfg_write(&r, s, PCI_CFG_BAR0, 0x10000000, 4);
	CHECK_EQ(r.fp.nr_io, 0);
	/* reset puts it back where it was created */
	pci_host_reset(r.host);
	CHECK_EQ(cfg_read(&r, s, PCI_CFG_BAR0, 4), orig);
	CHECK(io_find(&r.fp, orig + notify0) != NULL);
	CHECK_EQ(r.fp.io_errors, 0);
	rig_fini(&r);
}

static void test_capability_list(void)
{
	struct rig r;
	rig_init(&r, NULL, true);
	unsigned s = virtio_pci_slot(r.vp);
	unsigned seen[16] = {0}, msix = 0, hops = 0;
	uint32_t notify_mult = 0, notify_len = 0;
	for (unsigned c = cfg_read(&r, s, PCI_CFG_CAP_PTR, 1); c; c = cfg_read(&r, s, c + 1, 1)) {
		CHECK(c >= 0x40 && c % 4 == 0 && c <= 0xfc);
		if (++hops > 48 || c < 0x40)
			break;
		unsigned id = cfg_read(&r, s, c, 1);
		if (id == PCI_CAP_ID_MSIX) {
			msix = c;
			continue;
		}
		CHECK_EQ(id, PCI_CAP_ID_VNDR);
		unsigned len = cfg_read(&r, s, c + 2, 1), type = cfg_read(&r, s, c + 3, 1);
		CHECK(len >= 16 && c + len <= 0x100);
		CHECK(type >= 1 && type <= 5);
		seen[type & 15]++;
		CHECK_EQ(cfg_read(&r, s, c + 4, 1), 0); /* BAR0 */
		uint32_t off = cfg_read(&r, s, c + 8, 4), l = cfg_read(&r, s, c + 12, 4);
		CHECK((uint64_t)off + l <= VIRTIO_PCI_BAR0_SIZE);
		if (type == VIRTIO_PCI_CAP_COMMON_CFG) {
			CHECK_EQ(off, VIRTIO_PCI_COMMON_OFF);
			CHECK(l >= 0x38);
		} else if (type == VIRTIO_PCI_CAP_NOTIFY_CFG) {
			CHECK(len >= 20);
			notify_mult = cfg_read(&r, s, c + 16, 4);
			notify_len = l;
			CHECK_EQ(off, VIRTIO_PCI_NOTIFY_OFF);
		} else if (type == VIRTIO_PCI_CAP_ISR_CFG) {
			CHECK(l >= 1);
		} else if (type == VIRTIO_PCI_CAP_DEVICE_CFG) {
			CHECK_EQ(l, model_ops.config_size);
		} else if (type == VIRTIO_PCI_CAP_PCI_CFG) {
			CHECK_EQ(len, 20);
		}
	}
	for (unsigned t = 1; t <= 5; t++)
		CHECK_EQ(seen[t], 1);
	CHECK_EQ(notify_mult, VIRTIO_PCI_NOTIFY_MULT);
	/* each queue's notify address (queue_notify_off * multiplier) fits */
	for (unsigned q = 0; q < FAKE_QUEUES; q++) {
		common_wr(&r, VIRTIO_PCI_COMMON_Q_SELECT, q, 2);
		uint64_t noff = common_rd(&r, VIRTIO_PCI_COMMON_Q_NOFF, 2);
		CHECK(noff * notify_mult + 2 <= notify_len);
	}
	CHECK(msix != 0);
	if (msix) {
		uint16_t ctrl = (uint16_t)cfg_read(&r, s, msix + 2, 2);
		CHECK_EQ((ctrl & 0x7ff) + 1, FAKE_QUEUES + 1);
		CHECK_EQ(ctrl & 0xc000, 0);
		uint32_t t = cfg_read(&r, s, msix + 4, 4), p = cfg_read(&r, s, msix + 8, 4);
		CHECK_EQ(t & 7, 0);
		CHECK_EQ(p & 7, 0);
		CHECK((t & ~7u) + (FAKE_QUEUES + 1) * 16 <= VIRTIO_PCI_BAR0_SIZE);
		CHECK((p & ~7u) + 8 <= VIRTIO_PCI_BAR0_SIZE);
		/* table size is read-only */
		cfg_write(&r, s, msix + 2, 0x07ff, 2);
		CHECK_EQ(cfg_read(&r, s, msix + 2, 2), ctrl);
	}
	rig_fini(&r);
}

/* Drives the driver side of 3.1.1 through BAR0 up to DRIVER_OK. */
static void driver_init(struct rig *r)
{
	common_wr(r, VIRTIO_PCI_COMMON_STATUS, 0, 1);
	CHECK_EQ(common_rd(r, VIRTIO_PCI_COMMON_STATUS, 1), 0);
	common_wr(r, VIRTIO_PCI_COMMON_STATUS, VIRTIO_STATUS_ACKNOWLEDGE, 1);
	common_wr(r, VIRTIO_PCI_COMMON_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER, 1);
	common_wr(r, VIRTIO_PCI_COMMON_DFSELECT, 0, 4);
	uint64_t f = common_rd(r, VIRTIO_PCI_COMMON_DF, 4);
	common_wr(r, VIRTIO_PCI_COMMON_DFSELECT, 1, 4);
	f |= common_rd(r, VIRTIO_PCI_COMMON_DF, 4) << 32;
	CHECK_EQ(f & FAKE_FEATURES, FAKE_FEATURES);
	CHECK(f & (1ull << VIRTIO_F_VERSION_1));
	common_wr(r, VIRTIO_PCI_COMMON_DFSELECT, 2, 4);
	CHECK_EQ(common_rd(r, VIRTIO_PCI_COMMON_DF, 4), 0);

	/* without VERSION_1, FEATURES_OK does not stick */
	uint8_t st = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER;
	common_wr(r, VIRTIO_PCI_COMMON_GFSELECT, 0, 4);
	common_wr(r, VIRTIO_PCI_COMMON_GF, 1, 4);
	common_wr(r, VIRTIO_PCI_COMMON_GFSELECT, 1, 4);
	common_wr(r, VIRTIO_PCI_COMMON_GF, 0, 4);
	common_wr(r, VIRTIO_PCI_COMMON_STATUS, st | VIRTIO_STATUS_FEATURES_OK, 1);
	CHECK_EQ(common_rd(r, VIRTIO_PCI_COMMON_STATUS, 1), st);
	/* a queue cannot be enabled before FEATURES_OK */
	common_wr(r, VIRTIO_PCI_COMMON_Q_SELECT, 0, 2);
	common_wr(r, VIRTIO_PCI_COMMON_Q_ENABLE, 1, 2);
	CHECK_EQ(common_rd(r, VIRTIO_PCI_COMMON_Q_ENABLE, 2), 0);

	common_wr(r, VIRTIO_PCI_COMMON_GF, 1, 4); /* VERSION_1, select still 1 */
	CHECK_EQ(common_rd(r, VIRTIO_PCI_COMMON_GF, 4), 1);
	common_wr(r, VIRTIO_PCI_COMMON_STATUS, st | VIRTIO_STATUS_FEATURES_OK, 1);
	st |= VIRTIO_STATUS_FEATURES_OK;
	CHECK_EQ(common_rd(r, VIRTIO_PCI_COMMON_STATUS, 1), st);
	CHECK_EQ(r->dev.guest_features, (1ull << 32) | 1);

	CHECK_EQ(common_rd(r, VIRTIO_PCI_COMMON_NUMQ, 2), FAKE_QUEUES);
	for (unsigned q = 0; q < FAKE_QUEUES; q++) {
		uint64_t base = 0x10000 + q * 0x4000;
		common_wr(r, VIRTIO_PCI_COMMON_Q_SELECT, q, 2);
		CHECK_EQ(common_rd(r, VIRTIO_PCI_COMMON_Q_SELECT, 2), q);
		CHECK_EQ(common_rd(r, VIRTIO_PCI_COMMON_Q_SIZE, 2), FAKE_QSIZE);
		CHECK_EQ(common_rd(r, VIRTIO_PCI_COMMON_Q_ENABLE, 2), 0);
		CHECK_EQ(common_rd(r, VIRTIO_PCI_COMMON_Q_NOFF, 2), q);
		common_wr(r, VIRTIO_PCI_COMMON_Q_SIZE, 16, 2);
		/* 64-bit fields: two 32-bit halves, or one 64-bit access */
		common_wr(r, VIRTIO_PCI_COMMON_Q_DESCLO, base, 4);
		common_wr(r, VIRTIO_PCI_COMMON_Q_DESCHI, 0, 4);
		common_wr(r, VIRTIO_PCI_COMMON_Q_AVAILLO, base + 0x1000, 8);
		common_wr(r, VIRTIO_PCI_COMMON_Q_USEDLO, base + 0x2000, 4);
		common_wr(r, VIRTIO_PCI_COMMON_Q_USEDHI, 0, 4);
		CHECK_EQ(common_rd(r, VIRTIO_PCI_COMMON_Q_DESCLO, 8), base);
		CHECK_EQ(common_rd(r, VIRTIO_PCI_COMMON_Q_AVAILLO, 4), base + 0x1000);
		CHECK_EQ(common_rd(r, VIRTIO_PCI_COMMON_Q_AVAILHI, 4), 0);
		CHECK_EQ(common_rd(r, VIRTIO_PCI_COMMON_Q_USEDLO, 8), base + 0x2000);
		common_wr(r, VIRTIO_PCI_COMMON_Q_ENABLE, 1, 2);
		CHECK_EQ(common_rd(r, VIRTIO_PCI_COMMON_Q_ENABLE, 2), 1);
		/* ring geometry is fixed once enabled */
		common_wr(r, VIRTIO_PCI_COMMON_Q_SIZE, 32, 2);
		CHECK_EQ(common_rd(r, VIRTIO_PCI_COMMON_Q_SIZE, 2), 16);
	}
	st |= VIRTIO_STATUS_DRIVER_OK;
	common_wr(r, VIRTIO_PCI_COMMON_STATUS, st, 1);
	CHECK_EQ(common_rd(r, VIRTIO_PCI_COMMON_STATUS, 1), st);
}

static void test_driver_init_sequence(void)
{
	struct rig r;
	rig_init(&r, NULL, true);
	driver_init(&r);
	CHECK_EQ(r.model.activates, 1);
	CHECK(virtio_dev_live(&r.dev));
	/* read-only fields stay */
	common_wr(&r, VIRTIO_PCI_COMMON_NUMQ, 7, 2);
	CHECK_EQ(common_rd(&r, VIRTIO_PCI_COMMON_NUMQ, 2), FAKE_QUEUES);
	common_wr(&r, VIRTIO_PCI_COMMON_Q_NOFF, 9, 2);
	CHECK_EQ(common_rd(&r, VIRTIO_PCI_COMMON_Q_NOFF, 2), 1);
	/* features are frozen after FEATURES_OK */
	common_wr(&r, VIRTIO_PCI_COMMON_GFSELECT, 0, 4);
	common_wr(&r, VIRTIO_PCI_COMMON_GF, 0x20, 4);
	CHECK_EQ(common_rd(&r, VIRTIO_PCI_COMMON_GF, 4), 1);

	/* device config through the device cfg region */
	r.model.config[0] = 0xab;
	r.model.config[4] = 0xcd;
	CHECK_EQ(mmio_rd(&r, r.bar0 + VIRTIO_PCI_DEVICE_OFF, 1), 0xab);
	CHECK_EQ(mmio_rd(&r, r.bar0 + VIRTIO_PCI_DEVICE_OFF + 4, 4), 0xcd);
	mmio_wr(&r, r.bar0 + VIRTIO_PCI_DEVICE_OFF + 2, 0x1234, 2);
	CHECK_EQ(r.model.config[2], 0x34);
	CHECK_EQ(r.model.config[3], 0x12);
	CHECK_EQ(mmio_rd(&r, r.bar0 + VIRTIO_PCI_DEVICE_OFF + 6, 4), 0); /* past the end */
	uint32_t gen = (uint32_t)common_rd(&r, VIRTIO_PCI_COMMON_CFGGENERATION, 1);
	pthread_mutex_lock(&r.dev.lock);
	virtio_dev_config_changed(&r.dev);
	pthread_mutex_unlock(&r.dev.lock);
	CHECK_EQ(common_rd(&r, VIRTIO_PCI_COMMON_CFGGENERATION, 1), (gen + 1) & 0xff);

	/* a notify write that reaches userspace kicks through the eventfd */
	drain(r.dev.queues[1].kick_fd);
	mmio_wr(&r, r.bar0 + VIRTIO_PCI_NOTIFY_OFF + VIRTIO_PCI_NOTIFY_MULT, 1, 2);
	CHECK_EQ(drain(r.dev.queues[1].kick_fd), 1);
	CHECK_EQ(drain(r.dev.queues[0].kick_fd), 0);

	/* reset: status 0, queues disabled, the model told */
	common_wr(&r, VIRTIO_PCI_COMMON_STATUS, 0, 1);
	CHECK_EQ(common_rd(&r, VIRTIO_PCI_COMMON_STATUS, 1), 0);
	CHECK_EQ(r.model.resets, 1);
	common_wr(&r, VIRTIO_PCI_COMMON_Q_SELECT, 0, 2);
	CHECK_EQ(common_rd(&r, VIRTIO_PCI_COMMON_Q_ENABLE, 2), 0);
	CHECK_EQ(common_rd(&r, VIRTIO_PCI_COMMON_Q_SIZE, 2), FAKE_QSIZE);
	/* and it initialises again */
	driver_init(&r);
	CHECK_EQ(r.model.activates, 2);
	rig_fini(&r);
}

static unsigned msix_cap_of(struct rig *r, unsigned s)
{
	for (unsigned c = cfg_read(r, s, PCI_CFG_CAP_PTR, 1), n = 0; c && n < 48;
	     c = cfg_read(r, s, c + 1, 1), n++)
		if (cfg_read(r, s, c, 1) == PCI_CAP_ID_MSIX)
			return c;
	return 0;
}

static void entry_write(struct rig *r, unsigned v, uint64_t addr, uint32_t data, uint32_t ctrl)
{
	uint64_t e = r->bar0 + VIRTIO_PCI_MSIX_TABLE + 16 * v;
	mmio_wr(r, e, (uint32_t)addr, 4);
	mmio_wr(r, e + 4, addr >> 32, 4);
	mmio_wr(r, e + 8, data, 4);
	mmio_wr(r, e + 12, ctrl, 4);
}

static void test_msix(void)
{
	struct rig r;
	rig_init(&r, NULL, true);
	unsigned s = virtio_pci_slot(r.vp), cap = msix_cap_of(&r, s);
	CHECK(cap != 0);
	driver_init(&r);

	/* entries start masked */
	for (unsigned v = 0; v < FAKE_QUEUES + 1; v++)
		CHECK_EQ(mmio_rd(&r, r.bar0 + VIRTIO_PCI_MSIX_TABLE + 16 * v + 12, 4), 1);
	/* enable with the function masked, as Linux does */
	cfg_write(&r, s, cap + 2, 0xc000, 2);
	CHECK_EQ(cfg_read(&r, s, cap + 2, 2) & 0xc000, 0xc000);
	/* vector mapping: valid vectors read back, others read NO_VECTOR */
	common_wr(&r, VIRTIO_PCI_COMMON_MSIX, 2, 2);
	CHECK_EQ(common_rd(&r, VIRTIO_PCI_COMMON_MSIX, 2), 2);
	common_wr(&r, VIRTIO_PCI_COMMON_Q_SELECT, 0, 2);
	common_wr(&r, VIRTIO_PCI_COMMON_Q_MSIX, 99, 2);
	CHECK_EQ(common_rd(&r, VIRTIO_PCI_COMMON_Q_MSIX, 2), VIRTIO_MSI_NO_VECTOR);
	common_wr(&r, VIRTIO_PCI_COMMON_Q_MSIX, 0, 2);
	CHECK_EQ(common_rd(&r, VIRTIO_PCI_COMMON_Q_MSIX, 2), 0);
	common_wr(&r, VIRTIO_PCI_COMMON_Q_SELECT, 1, 2);
	common_wr(&r, VIRTIO_PCI_COMMON_Q_MSIX, 1, 2);

	/* program vector 0 while masked: no route yet */
	entry_write(&r, 0, 0xfee00000, 0x4041, 1);
	CHECK_EQ(mmio_rd(&r, r.bar0 + VIRTIO_PCI_MSIX_TABLE + 8, 4), 0x4041);
	CHECK_EQ(r.fp.routes, 0);
	/* unmask the function: vector 0 is still masked */
	cfg_write(&r, s, cap + 3, 0x80, 1);
	CHECK_EQ(r.fp.routes, 0);
	/* unmask vector 0: routed to its message */
	mmio_wr(&r, r.bar0 + VIRTIO_PCI_MSIX_TABLE + 12, 0, 4);
	CHECK_EQ(r.fp.routes, 1);
	CHECK_EQ(r.fp.last_route_addr, 0xfee00000);
	CHECK_EQ(r.fp.last_route_data, 0x4041);
	unsigned gsi0 = r.fp.last_route_gsi;
	const struct fake_irqfd *ir0 = irq_find(&r.fp, gsi0);
	CHECK(ir0 != NULL && ir0->resample_fd < 0);

	/* a queue interrupt on vector 0 signals its irqfd */
	pthread_mutex_lock(&r.dev.lock);
	r.dev.tops->signal_queue(&r.dev, 0);
	pthread_mutex_unlock(&r.dev.lock);
	CHECK(ir0 && drain(ir0->fd) == 1);

	/* config change on masked vector 2: pending bit, no interrupt */
	uint32_t gen = (uint32_t)common_rd(&r, VIRTIO_PCI_COMMON_CFGGENERATION, 1);
	pthread_mutex_lock(&r.dev.lock);
	virtio_dev_config_changed(&r.dev);
	pthread_mutex_unlock(&r.dev.lock);
	CHECK_EQ(common_rd(&r, VIRTIO_PCI_COMMON_CFGGENERATION, 1), (gen + 1) & 0xff);
	CHECK_EQ(mmio_rd(&r, r.bar0 + VIRTIO_PCI_MSIX_PBA, 8), 1u << 2);
	mmio_wr(&r, r.bar0 + VIRTIO_PCI_MSIX_PBA, 0, 8); /* PBA is read-only */
	CHECK_EQ(mmio_rd(&r, r.bar0 + VIRTIO_PCI_MSIX_PBA, 8), 1u << 2);
	/* unmasking delivers it and clears the pending bit */
	entry_write(&r, 2, 0xfee01000, 0x4042, 0);
	CHECK_EQ(r.fp.routes, 2);
	CHECK_EQ(r.fp.last_route_data, 0x4042);
	const struct fake_irqfd *ir2 = irq_find(&r.fp, r.fp.last_route_gsi);
	CHECK(ir2 && drain(ir2->fd) == 1);
	CHECK_EQ(mmio_rd(&r, r.bar0 + VIRTIO_PCI_MSIX_PBA, 8), 0);

	/* function mask: pending, then delivered on function unmask */
	cfg_write(&r, s, cap + 2, 0xc000, 2);
	pthread_mutex_lock(&r.dev.lock);
	r.dev.tops->signal_queue(&r.dev, 0);
	pthread_mutex_unlock(&r.dev.lock);
	CHECK(ir0 && drain(ir0->fd) == 0);
	CHECK_EQ(mmio_rd(&r, r.bar0 + VIRTIO_PCI_MSIX_PBA, 1), 1);
	cfg_write(&r, s, cap + 2, 0x8000, 2);
	CHECK(ir0 && drain(ir0->fd) == 1);
	CHECK_EQ(mmio_rd(&r, r.bar0 + VIRTIO_PCI_MSIX_PBA, 1), 0);
	CHECK_EQ(r.fp.routes, 2); /* message unchanged: no re-route */

	/* a changed message is re-routed (masked while it changes, as the
	 * PCI spec asks of software) */
	mmio_wr(&r, r.bar0 + VIRTIO_PCI_MSIX_TABLE + 12, 1, 4);
	entry_write(&r, 0, 0xfee02000, 0x4043, 1);
	CHECK_EQ(r.fp.routes, 2);
	mmio_wr(&r, r.bar0 + VIRTIO_PCI_MSIX_TABLE + 12, 0, 4);
	CHECK_EQ(r.fp.routes, 3);
	CHECK_EQ(r.fp.last_route_gsi, gsi0);
	CHECK_EQ(r.fp.last_route_addr, 0xfee02000);

	/* NO_VECTOR: no interrupt at all */
	common_wr(&r, VIRTIO_PCI_COMMON_Q_SELECT, 1, 2);
	common_wr(&r, VIRTIO_PCI_COMMON_Q_MSIX, VIRTIO_MSI_NO_VECTOR, 2);
	pthread_mutex_lock(&r.dev.lock);
	r.dev.tops->signal_queue(&r.dev, 1);
	pthread_mutex_unlock(&r.dev.lock);
	CHECK_EQ(mmio_rd(&r, r.bar0 + VIRTIO_PCI_MSIX_PBA, 1), 0);
	/* MSI-X on: the INTx line stays quiet */
	const struct fake_irqfd *intx = irq_find(&r.fp, pci_host_slot_gsi(s));
	CHECK(intx && drain(intx->fd) == 0);

	/* guest reset: table masked, MSI-X off */
	virtio_pci_reset(r.vp);
	CHECK_EQ(cfg_read(&r, s, cap + 2, 2) & 0xc000, 0);
	CHECK_EQ(mmio_rd(&r, r.bar0 + VIRTIO_PCI_MSIX_TABLE + 12, 4), 1);
	CHECK_EQ(common_rd(&r, VIRTIO_PCI_COMMON_STATUS, 1), 0);
	rig_fini(&r);
}

static void test_intx_and_isr(void)
{
	struct evloop *loop;
	CHECK_EQ(evloop_create(&loop), 0);
	struct rig r;
	rig_init(&r, loop, true);
	unsigned s = virtio_pci_slot(r.vp);
	driver_init(&r);
	const struct fake_irqfd *intx = irq_find(&r.fp, pci_host_slot_gsi(s));
	CHECK(intx != NULL);
	if (!intx) {
		rig_fini(&r);
		evloop_destroy(loop);
		return;
	}
	int irq_fd = intx->fd, resample_fd = intx->resample_fd;
	CHECK(resample_fd >= 0);

	/* a config interrupt: ISR bit 1, line raised, status bit 3 */
	pthread_mutex_lock(&r.dev.lock);
	virtio_dev_config_changed(&r.dev);
	pthread_mutex_unlock(&r.dev.lock);
	CHECK_EQ(drain(irq_fd), 1);
	CHECK(cfg_read(&r, s, PCI_CFG_STATUS, 2) & PCI_STATUS_INTERRUPT);

	/* EOI while ISR is set: raised again */
	uint64_t one = 1;
	CHECK_EQ(write(resample_fd, &one, 8), 8);
	CHECK_EQ(evloop_run_once(loop, 0), 1);
	CHECK_EQ(drain(irq_fd), 1);

	/* read-to-clear */
	CHECK_EQ(mmio_rd(&r, r.bar0 + VIRTIO_PCI_ISR_OFF, 1), VIRTIO_ISR_CONFIG);
	CHECK_EQ(mmio_rd(&r, r.bar0 + VIRTIO_PCI_ISR_OFF, 1), 0);
	CHECK_EQ(cfg_read(&r, s, PCI_CFG_STATUS, 2) & PCI_STATUS_INTERRUPT, 0);
	/* EOI with ISR clear: the line stays down */
	CHECK_EQ(write(resample_fd, &one, 8), 8);
	CHECK_EQ(evloop_run_once(loop, 0), 1);
	CHECK_EQ(drain(irq_fd), 0);

	/* ISR writes are ignored */
	pthread_mutex_lock(&r.dev.lock);
	r.dev.isr |= VIRTIO_ISR_QUEUE;
	r.dev.tops->signal_queue(&r.dev, 0);
	pthread_mutex_unlock(&r.dev.lock);
	CHECK_EQ(drain(irq_fd), 1);
	mmio_wr(&r, r.bar0 + VIRTIO_PCI_ISR_OFF, 0, 1);
	CHECK_EQ(mmio_rd(&r, r.bar0 + VIRTIO_PCI_ISR_OFF, 4), VIRTIO_ISR_QUEUE);

	/* interrupt disable: status set but no line */
	uint16_t cmd = (uint16_t)cfg_read(&r, s, PCI_CFG_COMMAND, 2);
	cfg_write(&r, s, PCI_CFG_COMMAND, cmd | PCI_COMMAND_INTX_DISABLE, 2);
	pthread_mutex_lock(&r.dev.lock);
	virtio_dev_config_changed(&r.dev);
	pthread_mutex_unlock(&r.dev.lock);
	CHECK_EQ(drain(irq_fd), 0);
	CHECK(cfg_read(&r, s, PCI_CFG_STATUS, 2) & PCI_STATUS_INTERRUPT);
	cfg_write(&r, s, PCI_CFG_COMMAND, cmd, 2);

	/* kicks arrive on the event loop and reach the model once live */
	unsigned before = r.model.notifies;
	CHECK_EQ(write(r.dev.queues[0].kick_fd, &one, 8), 8);
	CHECK_EQ(evloop_run_once(loop, 0), 1);
	CHECK_EQ(r.model.notifies, before + 1);

	rig_fini(&r);
	evloop_destroy(loop);
}

static void test_pci_cfg_capability(void)
{
	struct rig r;
	rig_init(&r, NULL, true);
	unsigned s = virtio_pci_slot(r.vp), cap = 0;
	for (unsigned c = cfg_read(&r, s, PCI_CFG_CAP_PTR, 1), n = 0; c && n < 48;
	     c = cfg_read(&r, s, c + 1, 1), n++)
		if (cfg_read(&r, s, c, 1) == PCI_CAP_ID_VNDR &&
		    cfg_read(&r, s, c + 3, 1) == VIRTIO_PCI_CAP_PCI_CFG)
			cap = c;
	CHECK(cap != 0);
	if (!cap) {
		rig_fini(&r);
		return;
	}
	/* read num_queues through the window */
	cfg_write(&r, s, cap + 4, 0, 1);
	cfg_write(&r, s, cap + 8, VIRTIO_PCI_COMMON_NUMQ, 4);
	cfg_write(&r, s, cap + 12, 2, 4);
	CHECK_EQ(cfg_read(&r, s, cap + 16, 2), FAKE_QUEUES);
	/* write device_status through it */
	cfg_write(&r, s, cap + 8, VIRTIO_PCI_COMMON_STATUS, 4);
	cfg_write(&r, s, cap + 12, 1, 4);
	cfg_write(&r, s, cap + 16, VIRTIO_STATUS_ACKNOWLEDGE, 4);
	CHECK_EQ(common_rd(&r, VIRTIO_PCI_COMMON_STATUS, 1), VIRTIO_STATUS_ACKNOWLEDGE);
	/* works with memory decoding off too */
	uint16_t cmd = (uint16_t)cfg_read(&r, s, PCI_CFG_COMMAND, 2);
	cfg_write(&r, s, PCI_CFG_COMMAND, 0, 2);
	CHECK_EQ(cfg_read(&r, s, cap + 16, 1), VIRTIO_STATUS_ACKNOWLEDGE);
	cfg_write(&r, s, PCI_CFG_COMMAND, cmd, 2);
	/* invalid length, misaligned offset, another BAR: ignored */
	cfg_write(&r, s, cap + 12, 3, 4);
	cfg_write(&r, s, cap + 16, 0, 4);
	CHECK_EQ(common_rd(&r, VIRTIO_PCI_COMMON_STATUS, 1), VIRTIO_STATUS_ACKNOWLEDGE);
	cfg_write(&r, s, cap + 8, VIRTIO_PCI_COMMON_NUMQ + 1, 4);
	cfg_write(&r, s, cap + 12, 2, 4);
	cfg_write(&r, s, cap + 16, 0, 4);
	cfg_write(&r, s, cap + 4, 5, 1);
	cfg_write(&r, s, cap + 8, VIRTIO_PCI_COMMON_STATUS, 4);
	cfg_write(&r, s, cap + 12, 1, 4);
	cfg_write(&r, s, cap + 16, 0, 4);
	CHECK_EQ(common_rd(&r, VIRTIO_PCI_COMMON_STATUS, 1), VIRTIO_STATUS_ACKNOWLEDGE);
	cfg_write(&r, s, cap + 8, 0xfffffffc, 4);
	cfg_write(&r, s, cap + 4, 0, 1);
	cfg_write(&r, s, cap + 12, 4, 4);
	(void)cfg_read(&r, s, cap + 16, 4); /* beyond BAR0: nothing happens */
	/* the cap's type and the rest of the list are read-only */
	cfg_write(&r, s, cap, 0xffffffff, 4);
	CHECK_EQ(cfg_read(&r, s, cap + 3, 1), VIRTIO_PCI_CAP_PCI_CFG);
	CHECK_EQ(cfg_read(&r, s, cap, 1), PCI_CAP_ID_VNDR);
	rig_fini(&r);
}

static void bring_to_features_ok(struct rig *r)
{
	common_wr(r, VIRTIO_PCI_COMMON_STATUS, 0, 1);
	common_wr(r, VIRTIO_PCI_COMMON_STATUS, 3, 1);
	common_wr(r, VIRTIO_PCI_COMMON_GFSELECT, 1, 4);
	common_wr(r, VIRTIO_PCI_COMMON_GF, 1, 4);
	common_wr(r, VIRTIO_PCI_COMMON_STATUS, 3 | VIRTIO_STATUS_FEATURES_OK, 1);
	CHECK_EQ(common_rd(r, VIRTIO_PCI_COMMON_STATUS, 1), 3 | VIRTIO_STATUS_FEATURES_OK);
}

static void test_hostile_values(void)
{
	struct rig r;
	rig_init(&r, NULL, true);
	unsigned s = virtio_pci_slot(r.vp);

	/* queue_size not a power of two: NEEDS_RESET, queue stays off */
	bring_to_features_ok(&r);
	common_wr(&r, VIRTIO_PCI_COMMON_Q_SELECT, 0, 2);
	common_wr(&r, VIRTIO_PCI_COMMON_Q_SIZE, 3, 2);
	common_wr(&r, VIRTIO_PCI_COMMON_Q_DESCLO, 0x10000, 8);
	common_wr(&r, VIRTIO_PCI_COMMON_Q_AVAILLO, 0x11000, 8);
	common_wr(&r, VIRTIO_PCI_COMMON_Q_USEDLO, 0x12000, 8);
	common_wr(&r, VIRTIO_PCI_COMMON_Q_ENABLE, 1, 2);
	CHECK_EQ(common_rd(&r, VIRTIO_PCI_COMMON_Q_ENABLE, 2), 0);
	CHECK(common_rd(&r, VIRTIO_PCI_COMMON_STATUS, 1) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	/* larger than the maximum */
	bring_to_features_ok(&r);
	common_wr(&r, VIRTIO_PCI_COMMON_Q_SIZE, 0x8000, 2);
	common_wr(&r, VIRTIO_PCI_COMMON_Q_DESCLO, 0x10000, 8);
	common_wr(&r, VIRTIO_PCI_COMMON_Q_AVAILLO, 0x11000, 8);
	common_wr(&r, VIRTIO_PCI_COMMON_Q_USEDLO, 0x12000, 8);
	common_wr(&r, VIRTIO_PCI_COMMON_Q_ENABLE, 1, 2);
	CHECK(common_rd(&r, VIRTIO_PCI_COMMON_STATUS, 1) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	/* rings outside RAM */
	bring_to_features_ok(&r);
	common_wr(&r, VIRTIO_PCI_COMMON_Q_SIZE, 16, 2);
	common_wr(&r, VIRTIO_PCI_COMMON_Q_DESCLO, 0xfffffffffffff000ull, 8);
	common_wr(&r, VIRTIO_PCI_COMMON_Q_AVAILLO, RAM_SIZE - 2, 8);
	common_wr(&r, VIRTIO_PCI_COMMON_Q_USEDLO, 0x12000, 8);
	common_wr(&r, VIRTIO_PCI_COMMON_Q_ENABLE, 1, 2);
	CHECK_EQ(common_rd(&r, VIRTIO_PCI_COMMON_Q_ENABLE, 2), 0);
	uint8_t st = (uint8_t)common_rd(&r, VIRTIO_PCI_COMMON_STATUS, 1);
	CHECK(st & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	/* the driver cannot clear NEEDS_RESET, DRIVER_OK does not activate */
	common_wr(&r, VIRTIO_PCI_COMMON_STATUS, 3 | 8 | 4, 1);
	CHECK(common_rd(&r, VIRTIO_PCI_COMMON_STATUS, 1) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	CHECK(!virtio_dev_live(&r.dev));
	/* a reset clears it */
	common_wr(&r, VIRTIO_PCI_COMMON_STATUS, 0, 1);
	CHECK_EQ(common_rd(&r, VIRTIO_PCI_COMMON_STATUS, 1), 0);

	/* queue_select out of range: size 0, writes ignored */
	bring_to_features_ok(&r);
	common_wr(&r, VIRTIO_PCI_COMMON_Q_SELECT, 200, 2);
	CHECK_EQ(common_rd(&r, VIRTIO_PCI_COMMON_Q_SIZE, 2), 0);
	common_wr(&r, VIRTIO_PCI_COMMON_Q_SIZE, 16, 2);
	common_wr(&r, VIRTIO_PCI_COMMON_Q_DESCLO, 0x10000, 8);
	common_wr(&r, VIRTIO_PCI_COMMON_Q_ENABLE, 1, 2);
	CHECK_EQ(common_rd(&r, VIRTIO_PCI_COMMON_Q_ENABLE, 2), 0);
	CHECK_EQ(common_rd(&r, VIRTIO_PCI_COMMON_Q_MSIX, 2), VIRTIO_MSI_NO_VECTOR);
	CHECK_EQ(common_rd(&r, VIRTIO_PCI_COMMON_STATUS, 1), 3 | VIRTIO_STATUS_FEATURES_OK);
	/* feature select out of range reads 0 and drops writes */
	common_wr(&r, VIRTIO_PCI_COMMON_DFSELECT, 0xffffffff, 4);
	CHECK_EQ(common_rd(&r, VIRTIO_PCI_COMMON_DF, 4), 0);

	/* wrong access widths: reads 0, writes ignored */
	common_wr(&r, VIRTIO_PCI_COMMON_DFSELECT, 0, 4);
	CHECK_EQ(common_rd(&r, VIRTIO_PCI_COMMON_DF, 1), 0);
	CHECK_EQ(common_rd(&r, VIRTIO_PCI_COMMON_NUMQ, 4), 0);
	common_wr(&r, VIRTIO_PCI_COMMON_STATUS, 0, 2);
	CHECK_EQ(common_rd(&r, VIRTIO_PCI_COMMON_STATUS, 1), 3 | VIRTIO_STATUS_FEATURES_OK);

	/* unmapped window space reads all-ones; writes vanish */
	CHECK_EQ(mmio_rd(&r, LAYOUT_PCI_MMIO + 0x1000000, 4), 0xffffffffu);
	mmio_wr(&r, LAYOUT_PCI_MMIO + 0x1000000, 0, 4);
	/* an access straddling BAR0's end is not the BAR's */
	CHECK_EQ(mmio_rd(&r, r.bar0 + VIRTIO_PCI_BAR0_SIZE - 2, 4), 0xffffffffu);

	/* random accesses all over BAR0 and config space never crash */
	uint64_t x = 0x9e3779b97f4a7c15ull;
	static const unsigned lens[] = { 1, 2, 4, 8 };
	for (unsigned i = 0; i < 20000; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		unsigned len = lens[x & 3];
		uint64_t off = (x >> 8) % VIRTIO_PCI_BAR0_SIZE;
		uint64_t val = x * 0x2545f4914f6cdd1dull;
		if ((x >> 40) % 4 == 0)
			val = 0;
		if (off == VIRTIO_PCI_COMMON_OFF + VIRTIO_PCI_COMMON_STATUS && (x & 0x100))
			val = 0;
		if ((x >> 20) & 1)
			mmio_wr(&r, r.bar0 + off, val, len);
		else
			(void)mmio_rd(&r, r.bar0 + off, len);
		if (((x >> 30) & 0x3f) == 0) {
			unsigned reg = 0x40 + (unsigned)((x >> 36) % 0xc0);
			unsigned l = lens[(x >> 50) % 3];
			if ((reg & 3) + l <= 4)
				cfg_write(&r, s, reg, (uint32_t)val, l);
		}
	}
	CHECK(r.bar0 == LAYOUT_PCI_MMIO); /* still there: BAR is only in config space */
	CHECK_EQ(r.fp.io_errors, 0);
	rig_fini(&r);
}

struct stress {
	struct rig *r;
	unsigned bad;
};

static void *stress_reader(void *arg)
{
	struct stress *st = arg;
	for (unsigned i = 0; i < 20000; i++) {
		uint64_t v = mmio_rd(st->r, LAYOUT_PCI_MMIO + VIRTIO_PCI_COMMON_NUMQ, 2);
		if (v != FAKE_QUEUES && v != 0xffff)
			st->bad++;
		(void)mmio_rd(st->r, LAYOUT_PCI_MMIO + VIRTIO_PCI_ISR_OFF, 1);
	}
	return NULL;
}

/* vCPU threads hit BAR0 while another moves it and toggles decoding (run
 * under -fsanitize=thread to see the locking hold). */
static void test_concurrent_access(void)
{
	struct rig r;
	rig_init(&r, NULL, true);
	unsigned s = virtio_pci_slot(r.vp);
	pthread_t t[2];
	struct stress st[2] = { { &r, 0 }, { &r, 0 } };
	for (unsigned i = 0; i < 2; i++)
		CHECK_EQ(pthread_create(&t[i], NULL, stress_reader, &st[i]), 0);
	for (unsigned i = 0; i < 2000; i++) {
		cfg_write(&r, s, PCI_CFG_BAR0, i % 2 ? 0xc0100000u : (uint32_t)LAYOUT_PCI_MMIO, 4);
		cfg_write(&r, s, PCI_CFG_COMMAND, i % 3 ? PCI_COMMAND_MEMORY : 0, 2);
		pthread_mutex_lock(&r.dev.lock);
		virtio_dev_config_changed(&r.dev);
		pthread_mutex_unlock(&r.dev.lock);
	}
	for (unsigned i = 0; i < 2; i++) {
		pthread_join(t[i], NULL);
		CHECK_EQ(st[i].bad, 0);
	}
	CHECK_EQ(r.fp.io_errors, 0);
	rig_fini(&r);
}

static void test_bad_params(void)
{
	struct rig r;
	rig_init(&r, NULL, false);
	static const struct pci_function_ops nops = {0};
	unsigned slot;
	struct pci_function_params p = { .name = "bad", .bar_size = { 3000 } };
	CHECK_EQ(pci_host_add_function(r.host, &nops, NULL, &p, &slot), -EINVAL);
	p.bar_size[0] = 0;
	p.cap_ptr = 0x41;
	CHECK_EQ(pci_host_add_function(r.host, &nops, NULL, &p, &slot), -EINVAL);
	p.cap_ptr = 0;
	for (unsigned i = 1; i < PCI_HOST_SLOTS; i++) {
		CHECK_EQ(pci_host_add_function(r.host, &nops, NULL, &p, &slot), 0);
		CHECK_EQ(slot, i);
	}
	CHECK_EQ(pci_host_add_function(r.host, &nops, NULL, &p, &slot), -ENOSPC);
	/* PCI config ports are taken */
	struct pci_host *h2;
	const struct pci_host_params hp = { .log = &r.log, .config_port = PORT_PCI_CONFIG,
		.window_base = LAYOUT_PCI_MMIO, .window_size = LAYOUT_PCI_MMIO_SIZE };
	CHECK_EQ(pci_host_create(&r.pio, &r.mmio, &hp, &h2), -EEXIST);
	rig_fini(&r);
}

int main(void)
{
	RUN(test_conf1_host_bridge);
	RUN(test_virtio_function_header);
	RUN(test_bar_sizing_and_moving);
	RUN(test_capability_list);
	RUN(test_driver_init_sequence);
	RUN(test_msix);
	RUN(test_intx_and_isr);
	RUN(test_pci_cfg_capability);
	RUN(test_hostile_values);
	RUN(test_concurrent_access);
	RUN(test_bad_params);
	return unit_done();
}
