/* libFuzzer target for the virtio register interface a guest drives: the
 * virtio core (virtio/device.c), the modern PCI transport (virtio/pci.c) on
 * the PCI host (devices/pci_host.c: config mechanism #1 and the BAR
 * window), and the virtio-mmio transport (virtio/mmio.c), all on real
 * struct bus instances, over a fake virtio_platform (no KVM, no event
 * loop) and a buffer-backed guest_mem. The device model is a trivial fake
 * that pops every chain it is kicked for, writes one byte into its last
 * writable segment and pushes it back, so guest-written rings and
 * descriptors are walked too.
 *
 * Input (little-endian):
 *   0      config: bit 0 transport (0 PCI, 1 MMIO), bits 1-2 queues - 1
 *          (1..4), bit 3 offer a 16-byte config space
 *   1..    operations of OP_SIZE bytes:
 *          0      kind: bits 0-1 target, bits 4-5 log2 width, bit 6 read
 *                  target 0: port 0xcf8 + (a % 8)     (PCI config ports);
 *                            with bit 7: one access to the virtio
 *                            function's config space as a driver makes
 *                            it (address port, then data port), at
 *                            offset a0 within the area a1 names: 1 the
 *                            MSI-X capability, 2 the virtio PCI_CFG
 *                            capability (the window onto BAR0), else
 *                            the space itself; capabilities are found
 *                            by walking the list from 0x34, so the
 *                            fuzzer need not guess where they are
 *                  target 1: mmio 0xc0000000 + (a % 64 KiB) (BAR0 window)
 *                  target 2: mmio 0xe0000000 + (a % 4 KiB) (virtio-mmio)
 *                  target 3: bit 2 set: guest RAM, 8-byte store at a;
 *                            else bit 3: absolute port a % 64 Ki (set) or
 *                            mmio address a (clear)
 *          1..4   a (u32)
 *          5..12  value (u64; the low `width` bytes are written)
 * Writes go through the fake KVM first: an access matching a registered
 * ioeventfd (address, length 0 or equal, datamatch) only signals its
 * eventfd, as KVM would; then every signalled kick is delivered to the
 * device as the event thread would (on_kick in device.c).
 *
 * Invariants (abort on violation): no crash, no sanitizer report, reads of
 * a width fill exactly that width; after any sequence, undoing the guest's
 * moves of BAR0 and the command register and writing 0 to device_status
 * (PCI) or Status (MMIO) leaves the device at status 0, with no queue
 * enabled, no vq, features 0, and reading status back through the bus
 * gives 0. Everything is torn down per input (LeakSanitizer sees leaks). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mem/layout.h"
#include "vmm/board.h"
#include "devices/bus.h"
#include "devices/pci_host.h"
#include "mem/guest_mem.h"
#include "virtio/device.h"
#include "virtio/mmio.h"
#include "virtio/pci.h"
#include "virtio/queue.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define OP_SIZE 13u
#define MAX_OPS 512u
#define RAM_SIZE 0x10000u  /* [0, 64 KiB) */
#define RAM2_GPA 0x100000u /* a second region [1 MiB, 1 MiB + 4 KiB) */
#define RAM2_SIZE 0x1000u
#define MAX_QUEUE_SIZE 16
#define MAX_IOEVENTFDS 16
#define CHAIN_CAP 8u

#define CHECK(c) do { if (!(c)) { \
	fprintf(stderr, "fuzz_virtio_regs: invariant failed: %s (line %d)\n", #c, __LINE__); \
	abort(); } } while (0)

struct ioeventfd {
	bool used;
	int fd;
	uint64_t addr;
	unsigned len;
	bool datamatch;
	uint64_t data;
};

struct fz {
	uint8_t *ram, *ram2;
	struct guest_mem mem;
	struct logger log;
	struct virtio_platform plat;
	struct bus pio, mmio;
	struct pci_host *host;
	struct virtio_pci *vp;
	struct virtio_mmio *vm;
	struct virtio_dev dev;
	struct virtio_dev_ops ops;
	uint8_t cfg[16];
	struct ioeventfd ioev[MAX_IOEVENTFDS];
	unsigned next_gsi;
	struct vq_seg segs[CHAIN_CAP];
};

/* ---- the fake platform ---- */

static int fake_ioeventfd(void *cookie, int fd, uint64_t addr, unsigned len, bool datamatch,
			  uint64_t data, bool assign)
{
	struct fz *f = cookie;
	for (unsigned i = 0; i < MAX_IOEVENTFDS; i++) {
		struct ioeventfd *e = &f->ioev[i];
		if (!assign && e->used && e->fd == fd && e->addr == addr) {
			e->used = false;
			return 0;
		}
		if (assign && !e->used) {
			*e = (struct ioeventfd){ true, fd, addr, len, datamatch, data };
			return 0;
		}
	}
	return assign ? -ENOSPC : -ENOENT;
}

static int fake_irqfd(void *cookie, int fd, unsigned gsi, int resample_fd, bool assign)
{
	(void)cookie; (void)fd; (void)gsi; (void)resample_fd; (void)assign;
	return 0;
}

static int fake_msi_alloc(void *cookie, unsigned *gsi)
{
	struct fz *f = cookie;
	*gsi = 24 + f->next_gsi++;
	return 0;
}

/* Refuses messages with data bit 31 set, so the routing error path runs. */
static int fake_msi_route(void *cookie, unsigned gsi, uint64_t addr, uint32_t data)
{
	(void)cookie; (void)gsi; (void)addr;
	return data & 0x80000000u ? -EINVAL : 0;
}

static void fake_msi_free(void *cookie, unsigned gsi)
{
	(void)cookie; (void)gsi;
}

/* ---- the fake device model ---- */

static void fake_config_read(struct virtio_dev *d, uint32_t off, void *data, unsigned len)
{
	struct fz *f = d->priv;
	CHECK(off <= sizeof(f->cfg) && len <= sizeof(f->cfg) - off);
	memcpy(data, f->cfg + off, len);
}

static void fake_config_write(struct virtio_dev *d, uint32_t off, const void *data, unsigned len)
{
	struct fz *f = d->priv;
	CHECK(off <= sizeof(f->cfg) && len <= sizeof(f->cfg) - off);
	memcpy(f->cfg + off, data, len);
}

static void fake_notify(struct virtio_dev *d, unsigned q)
{
	struct fz *f = d->priv;
	CHECK(q < d->nr_queues);
	struct vq *vq = d->queues[q].vq;
	CHECK(vq != NULL);
	bool pushed = false;
	for (unsigned n = 0; n <= MAX_QUEUE_SIZE; n++) {
		struct vq_chain c = { .segs = f->segs, .cap = CHAIN_CAP };
		int r = vq_pop(vq, &c);
		if (r == 0)
			break;
		if (r < 0) {
			virtio_dev_needs_reset(d, vq_error(vq));
			break;
		}
		uint32_t written = 0;
		for (uint32_t i = c.nr_segs; i-- > c.nr_readable;) {
			if (c.segs[i].len) { /* the status byte */
				((uint8_t *)c.segs[i].host)[c.segs[i].len - 1] = 0;
				written = 1;
				break;
			}
		}
		for (uint32_t i = 0; i < c.nr_readable; i++) /* ASan checks reads too */
			if (c.segs[i].len)
				(void)*(volatile uint8_t *)c.segs[i].host;
		CHECK(vq_push(vq, c.head, written) == 0);
		pushed = true;
#ifdef FUZZ_VIRTIO_REGS_TRACE /* build with -DFUZZ_VIRTIO_REGS_TRACE to follow one input */
		fprintf(stderr, "queue %u: chain head %u, %u segments\n", q, c.head, c.nr_segs);
#endif
	}
	if (pushed)
		virtio_dev_used(d, q);
}

static int fake_activate(struct virtio_dev *d)
{
	for (unsigned q = 0; q < d->nr_queues; q++)
		if (d->queues[q].enabled)
			CHECK(d->queues[q].vq != NULL);
	return 0;
}

static void fake_reset(struct virtio_dev *d)
{
	(void)d;
}

static void fake_irq_changed(struct virtio_dev *d)
{
	for (unsigned q = 0; q < d->nr_queues; q++)
		if (d->tops && d->tops->queue_irqfd)
			(void)d->tops->queue_irqfd(d, q);
}

/* ---- dispatch ---- */

static bool ioeventfd_hit(struct fz *f, uint64_t addr, unsigned len, uint64_t v)
{
	for (unsigned i = 0; i < MAX_IOEVENTFDS; i++) {
		const struct ioeventfd *e = &f->ioev[i];
		if (!e->used || e->addr != addr || (e->len && e->len != len))
			continue;
		if (e->datamatch && e->data != v)
			continue;
		uint64_t one = 1;
		CHECK(write(e->fd, &one, sizeof(one)) == sizeof(one));
		return true;
	}
	return false;
}

/* What the event thread does for each signalled kick (device.c on_kick). */
static void deliver_kicks(struct fz *f)
{
	struct virtio_dev *d = &f->dev;
	for (unsigned q = 0; q < d->nr_queues; q++) {
		uint64_t n;
		if (read(d->queues[q].kick_fd, &n, sizeof(n)) != sizeof(n))
			continue;
		pthread_mutex_lock(&d->lock);
		d->queues[q].kicks++;
		if (virtio_dev_live(d) && d->queues[q].vq)
			d->ops->notify(d, q);
		pthread_mutex_unlock(&d->lock);
	}
}

static void bus_access(struct fz *f, bool pio, uint64_t addr, unsigned len, bool read, uint64_t v)
{
	struct bus *b = pio ? &f->pio : &f->mmio;
	if (read) {
		uint8_t buf[16];
		memset(buf, 0xa5, sizeof(buf));
		bus_read(b, addr, buf, len);
		for (unsigned i = len; i < sizeof(buf); i++)
			CHECK(buf[i] == 0xa5);
		return;
	}
	if (!pio && ioeventfd_hit(f, addr, len, v))
		return;
	bus_write(b, addr, &v, len); /* little-endian host: the low bytes */
}

/* The config-space offset of the first capability with id @id (and, for
 * vendor capabilities, virtio cfg_type @type), read through the ports as
 * a driver walks the list; 0 when there is none. */
static unsigned find_cap(struct fz *f, uint32_t dev, uint8_t id, uint8_t type)
{
	uint32_t addr = 0x80000000u | dev << 11 | PCI_CFG_CAP_PTR;
	uint8_t at = 0;
	bus_write(&f->pio, PORT_PCI_CONFIG, &addr, 4);
	bus_read(&f->pio, PORT_PCI_CONFIG + 4, &at, 1);
	for (unsigned hops = 0; at >= PCI_CFG_HEADER_END && hops < 48; hops++) {
		uint32_t hdr = 0;
		addr = 0x80000000u | dev << 11 | (at & 0xfcu);
		bus_write(&f->pio, PORT_PCI_CONFIG, &addr, 4);
		bus_read(&f->pio, PORT_PCI_CONFIG + 4, &hdr, 4);
		if ((uint8_t)hdr == id && (id != PCI_CAP_ID_VNDR || (uint8_t)(hdr >> 24) == type))
			return at;
		at = (uint8_t)(hdr >> 8);
	}
	return 0;
}

/* One config-space access to the virtio function (see the input layout). */
static void cfg_access(struct fz *f, uint32_t a, unsigned len, bool read, uint64_t v)
{
	if (!f->vp)
		return;
	uint32_t dev = virtio_pci_slot(f->vp);
	unsigned base = 0;
	if (((a >> 8) & 0xff) == 1)
		base = find_cap(f, dev, PCI_CAP_ID_MSIX, 0);
	else if (((a >> 8) & 0xff) == 2)
		base = find_cap(f, dev, PCI_CAP_ID_VNDR, VIRTIO_PCI_CAP_PCI_CFG);
	unsigned reg = (base + (a & 0xff)) & 0xff;
	if (len > 4 - (reg & 3))
		len = 4 - (reg & 3);
	uint32_t addr = 0x80000000u | dev << 11 | (reg & 0xfcu);
	bus_write(&f->pio, PORT_PCI_CONFIG, &addr, 4);
	bus_access(f, true, PORT_PCI_CONFIG + 4 + (reg & 3), len, read, v);
}

static void run_op(struct fz *f, const uint8_t *op)
{
	uint32_t a;
	uint64_t v;
	memcpy(&a, op + 1, 4);
	memcpy(&v, op + 5, 8);
	unsigned len = 1u << ((op[0] >> 4) & 3);
	bool read = op[0] & 0x40;
	switch (op[0] & 3) {
	case 0:
		if (op[0] & 0x80)
			cfg_access(f, a, len, read, v);
		else
			bus_access(f, true, PORT_PCI_CONFIG + a % 8, len > 4 ? 4 : len, read, v);
		break;
	case 1:
		bus_access(f, false, LAYOUT_PCI_MMIO + a % 0x10000, len, read, v);
		break;
	case 2:
		bus_access(f, false, LAYOUT_VIRTIO_MMIO + a % 0x1000, len, read, v);
		break;
	default:
		if (op[0] & 4) {
			void *p = gmem_ptr(&f->mem, a, 8);
			if (p)
				memcpy(p, &v, 8);
		} else if (op[0] & 8) {
			bus_access(f, true, a % 0x10000, len > 4 ? 4 : len, read, v);
		} else {
			bus_access(f, false, a, len, read, v);
		}
		break;
	}
	deliver_kicks(f);
}

/* ---- the reset invariant ---- */

static void check_reset(struct fz *f, bool mmio)
{
	struct virtio_dev *d = &f->dev;
	uint32_t status = 0xffffffffu;
	if (mmio) {
		uint32_t zero = 0;
		bus_write(&f->mmio, LAYOUT_VIRTIO_MMIO + 0x70, &zero, 4);
		CHECK(bus_read(&f->mmio, LAYOUT_VIRTIO_MMIO + 0x70, &status, 4));
		for (uint32_t q = 0; q < d->nr_queues; q++) {
			uint32_t ready = 1;
			bus_write(&f->mmio, LAYOUT_VIRTIO_MMIO + 0x30, &q, 4);
			CHECK(bus_read(&f->mmio, LAYOUT_VIRTIO_MMIO + 0x44, &ready, 4));
			CHECK(ready == 0);
		}
	} else {
		/* the guest may have moved BAR0 or turned decoding off: as
		 * firmware would, put them back (slot 1, the first function) */
		unsigned slot = virtio_pci_slot(f->vp);
		uint32_t addr = 0x80000000u | slot << 11, val;
		uint8_t zero = 0;
		val = addr | PCI_CFG_BAR0;
		bus_write(&f->pio, PORT_PCI_CONFIG, &val, 4);
		val = (uint32_t)LAYOUT_PCI_MMIO;
		bus_write(&f->pio, PORT_PCI_CONFIG + 4, &val, 4);
		val = addr | PCI_CFG_COMMAND;
		bus_write(&f->pio, PORT_PCI_CONFIG, &val, 4);
		val = PCI_COMMAND_MEMORY;
		bus_write(&f->pio, PORT_PCI_CONFIG + 4, &val, 2);
		bus_write(&f->mmio, LAYOUT_PCI_MMIO + VIRTIO_PCI_COMMON_STATUS, &zero, 1);
		uint8_t s = 0xff;
		CHECK(bus_read(&f->mmio, LAYOUT_PCI_MMIO + VIRTIO_PCI_COMMON_STATUS, &s, 1));
		status = s;
		for (uint16_t q = 0; q < d->nr_queues; q++) {
			uint16_t en = 1;
			bus_write(&f->mmio, LAYOUT_PCI_MMIO + VIRTIO_PCI_COMMON_Q_SELECT, &q, 2);
			CHECK(bus_read(&f->mmio, LAYOUT_PCI_MMIO + VIRTIO_PCI_COMMON_Q_ENABLE, &en, 2));
			CHECK(en == 0);
		}
	}
	CHECK(status == 0);
	CHECK(d->status == 0);
	CHECK(d->guest_features == 0);
	for (unsigned q = 0; q < d->nr_queues; q++) {
		CHECK(!d->queues[q].enabled);
		CHECK(d->queues[q].vq == NULL);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct fz f; /* single-threaded harness */
	if (size < 1)
		return 0;
	bool mmio = data[0] & 1;
	unsigned nr_queues = ((data[0] >> 1) & 3) + 1;

	if (!f.ram) { /* once per process; ASan redzones surround each */
		f.ram = malloc(RAM_SIZE);
		f.ram2 = malloc(RAM2_SIZE);
		CHECK(f.ram && f.ram2);
	}
	memset(f.ram, 0, RAM_SIZE);
	memset(f.ram2, 0, RAM2_SIZE);
	memset(&f.mem, 0, sizeof(f.mem));
	CHECK(gmem_add_region(&f.mem, 0, RAM_SIZE, f.ram, -1, 0) == 0);
	CHECK(gmem_add_region(&f.mem, RAM2_GPA, RAM2_SIZE, f.ram2, -1, 0) == 0);
	memset(f.ioev, 0, sizeof(f.ioev));
	memset(f.cfg, 0x5a, sizeof(f.cfg));
	f.next_gsi = 0;
	f.log = (struct logger){ .level = LOG_ERROR, .fd = -1 };
	f.plat = (struct virtio_platform){
		.mem = &f.mem, .loop = NULL, .log = &f.log, .cookie = &f,
		.ioeventfd = fake_ioeventfd, .irqfd = fake_irqfd,
		.msi_alloc = fake_msi_alloc, .msi_route = fake_msi_route,
		.msi_free = fake_msi_free,
	};
	f.ops = (struct virtio_dev_ops){
		.features = 1ull << 5,
		.config_size = (data[0] & 8) ? sizeof(f.cfg) : 0,
		.config_read = fake_config_read, .config_write = fake_config_write,
		.notify = fake_notify, .activate = fake_activate, .reset = fake_reset,
		.irq_changed = fake_irq_changed,
	};
	bus_init(&f.pio, "pio");
	bus_init(&f.mmio, "mmio");
	f.host = NULL;
	f.vp = NULL;
	f.vm = NULL;

	CHECK(virtio_dev_init(&f.dev, "fuzz0", 2, &f.ops, &f, &f.plat, nr_queues,
			      MAX_QUEUE_SIZE) == 0);
	if (mmio) {
		CHECK(virtio_mmio_create(&f.mmio, LAYOUT_VIRTIO_MMIO, GSI_VIRTIO_BASE, &f.dev,
					 &f.vm) == 0);
	} else {
		const struct pci_host_params hp = { .log = &f.log, .config_port = PORT_PCI_CONFIG,
		.window_base = LAYOUT_PCI_MMIO, .window_size = LAYOUT_PCI_MMIO_SIZE };
		CHECK(pci_host_create(&f.pio, &f.mmio, &hp, &f.host) == 0);
		CHECK(virtio_pci_create(f.host, &f.dev, &f.vp) == 0);
	}

	size_t nr_ops = (size - 1) / OP_SIZE;
	if (nr_ops > MAX_OPS)
		nr_ops = MAX_OPS;
	for (size_t i = 0; i < nr_ops; i++)
		run_op(&f, data + 1 + i * OP_SIZE);

#ifdef FUZZ_VIRTIO_REGS_TRACE
	fprintf(stderr, "%s, %u queues: status 0x%x before the reset\n", mmio ? "mmio" : "pci",
		nr_queues, f.dev.status);
#endif
	check_reset(&f, mmio);

	if (mmio) {
		virtio_mmio_destroy(f.vm);
	} else {
		virtio_pci_destroy(f.vp);
		pci_host_destroy(f.host);
	}
	virtio_dev_uninit(&f.dev);
	return 0;
}
