/* Saved state of a virtio device on the PCI and mmio transports
 * (virtio/device_state.c, virtio/pci.c, virtio/mmio.c, virtio/queue.c)
 * over a fake platform: a driver sets a device up through BAR0 (MSI-X
 * on, a queue, DRIVER_OK), completes requests, the device is quiesced and
 * saved; a device created fresh on the same guest RAM loads it and carries
 * on: its queue continues at its indices and completes the next request
 * (also one made available and kicked while the first was quiesced), its
 * MSI-X table and routes, kicks at BAR0's place and the model's own state
 * survive. Hostile payloads (each field out of range, truncations, every
 * byte flipped) are refused, naming the field, and leave the device as
 * created. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mem/layout.h"
#include "devices/bus.h"
#include "devices/pci_host.h"
#include "virtio/device.h"
#include "virtio/device_state.h"
#include "virtio/mmio.h"
#include "virtio/pci.h"
#include "virtio/queue.h"
#include "lib/state.h"
#include "fake_platform.h"
#include "unit.h"

#define RAM_SIZE (1u << 20)
#define QMAX 16
#define QSIZE 8
#define QBASE 0x10000u  /* queue 0: desc, +0x1000 avail, +0x2000 used */
#define DATA 0x40000u
#define MSI_ADDR 0xfee00000u
#define MMIO_BASE 0xd0000000u

/* ---- the KVM hooks, recorded ---- */

#define MAX_REC 64

struct hooks {
	struct { int fd; uint64_t addr; } io[MAX_REC];
	unsigned nr_io;
	struct { int fd; unsigned gsi; } irq[MAX_REC];
	unsigned nr_irq;
	unsigned next_gsi;
	uint32_t route_data[128]; /* by gsi; 0: never routed */
	unsigned routes;
};

static int h_ioeventfd(void *cookie, int fd, uint64_t addr, unsigned len, bool dm, uint64_t data,
		       bool assign)
{
	struct hooks *h = cookie;
	for (unsigned i = 0; i < h->nr_io; i++) {
		if (h->io[i].fd == fd && h->io[i].addr == addr) {
			if (assign)
				return -EEXIST;
			h->io[i] = h->io[--h->nr_io];
			return 0;
		}
	}
	if (!assign || h->nr_io == MAX_REC)
		return -ENOENT;
	h->io[h->nr_io].fd = fd;
	h->io[h->nr_io++].addr = addr;
	return 0;
}

static int h_irqfd(void *cookie, int fd, unsigned gsi, int resample_fd, bool assign)
{
	struct hooks *h = cookie;
	for (unsigned i = 0; i < h->nr_irq; i++) {
		if (h->irq[i].fd == fd && h->irq[i].gsi == gsi) {
			if (assign)
				return -EEXIST;
			h->irq[i] = h->irq[--h->nr_irq];
			return 0;
		}
	}
	if (!assign || h->nr_irq == MAX_REC)
		return -ENOENT;
	h->irq[h->nr_irq].fd = fd;
	h->irq[h->nr_irq++].gsi = gsi;
	return 0;
}

static int h_msi_alloc(void *cookie, unsigned *gsi)
{
	struct hooks *h = cookie;
	*gsi = 24 + h->next_gsi++;
	return 0;
}

static int h_msi_route(void *cookie, unsigned gsi, uint64_t addr, uint32_t data)
{
	struct hooks *h = cookie;
	if (gsi < 128 && addr == MSI_ADDR)
		h->route_data[gsi] = data;
	h->routes++;
	return 0;
}

static void h_msi_free(void *cookie, unsigned gsi) { }

static bool io_at(const struct hooks *h, int fd, uint64_t addr)
{
	for (unsigned i = 0; i < h->nr_io; i++)
		if (h->io[i].fd == fd && h->io[i].addr == addr)
			return true;
	return false;
}

/* The eventfd irqfd'd to the gsi routed with @data, or -1. */
static int irq_fd_of(const struct hooks *h, uint32_t data)
{
	for (unsigned i = 0; i < h->nr_irq; i++)
		if (h->irq[i].gsi < 128 && h->route_data[h->irq[i].gsi] == data)
			return h->irq[i].fd;
	return -1;
}

/* ---- a small device model: completes every chain, keeps a register ---- */

struct echo {
	struct virtio_dev dev;
	unsigned served, activations;
	uint32_t reg;              /* config space, the driver's to write */
};

static void echo_config_read(struct virtio_dev *d, uint32_t off, void *data, unsigned len)
{
	struct echo *e = d->priv;
	memcpy(data, (uint8_t *)&e->reg + off, len);
}

static void echo_config_write(struct virtio_dev *d, uint32_t off, const void *data, unsigned len)
{
	struct echo *e = d->priv;
	memcpy((uint8_t *)&e->reg + off, data, len);
}

static int echo_activate(struct virtio_dev *d)
{
	struct echo *e = d->priv;
	e->activations++;
	return 0;
}

/* Writes the served count into the first writable byte of each chain. */
static void echo_notify(struct virtio_dev *d, unsigned q)
{
	struct echo *e = d->priv;
	struct vq *vq = d->queues[q].vq;
	struct vq_seg segs[4];
	for (;;) {
		struct vq_chain c = { .segs = segs, .cap = 4 };
		int r = vq_pop(vq, &c);
		if (r <= 0)
			break;
		uint32_t written = 0;
		if (c.nr_segs > c.nr_readable && c.segs[c.nr_readable].len) {
			*(uint8_t *)c.segs[c.nr_readable].host = (uint8_t)(0xa0 + e->served);
			written = 1;
		}
		e->served++;
		CHECK_EQ(vq_push(vq, c.head, written), 0);
	}
	virtio_dev_used(d, q);
}

static void echo_reset(struct virtio_dev *d) { }

static void echo_save(struct virtio_dev *d, struct state_w *w)
{
	struct echo *e = d->priv;
	state_put_u32(w, e->reg);
}

static void echo_load(struct virtio_dev *d, struct state_r *r, const struct virtio_dev_state *core,
		      bool apply)
{
	struct echo *e = d->priv;
	uint32_t v = state_get_u32_max(r, 1000, "echo register");
	if (apply)
		e->reg = v;
}

static const struct virtio_dev_ops echo_ops = {
	.features = 0,
	.config_size = 4,
	.config_read = echo_config_read,
	.config_write = echo_config_write,
	.activate = echo_activate,
	.notify = echo_notify,
	.reset = echo_reset,
	.state_save = echo_save,
	.state_load = echo_load,
};

/* ---- a VM's worth of it ---- */

struct rig {
	struct fake_vplat *v;      /* shared: guest RAM and the event loop */
	struct virtio_platform plat;
	struct hooks h;
	struct bus pio, mmio;
	struct pci_host *host;
	struct echo e;
	struct virtio_pci *vp;
	struct virtio_mmio *vm;
	unsigned slot;
};

static void rig_init(struct rig *r, struct fake_vplat *v, bool pci)
{
	memset(r, 0, sizeof(*r));
	r->v = v;
	r->plat = v->plat;
	r->plat.cookie = &r->h;
	r->plat.ioeventfd = h_ioeventfd;
	r->plat.irqfd = h_irqfd;
	r->plat.msi_alloc = h_msi_alloc;
	r->plat.msi_route = h_msi_route;
	r->plat.msi_free = h_msi_free;
	bus_init(&r->pio, "pio");
	bus_init(&r->mmio, "mmio");
	CHECK_EQ(virtio_dev_init(&r->e.dev, "echo", 0x3e, &echo_ops, &r->e, &r->plat, 2, QMAX), 0);
	if (pci) {
		struct pci_host_params hp = {
			.log = &v->lg, .config_port = 0xcf8,
			.window_base = LAYOUT_PCI_MMIO, .window_size = LAYOUT_PCI_MMIO_SIZE,
		};
		CHECK_EQ(pci_host_create(&r->pio, &r->mmio, &hp, &r->host), 0);
		CHECK_EQ(virtio_pci_create(r->host, &r->e.dev, &r->vp), 0);
		r->slot = virtio_pci_slot(r->vp);
	} else {
		CHECK_EQ(virtio_mmio_create(&r->mmio, MMIO_BASE, 5, &r->e.dev, &r->vm), 0);
	}
}

static void rig_fini(struct rig *r)
{
	virtio_pci_destroy(r->vp);
	virtio_mmio_destroy(r->vm);
	virtio_dev_uninit(&r->e.dev);
	pci_host_destroy(r->host);
}

static void cfg_write32(struct rig *r, unsigned reg, uint32_t v, unsigned len)
{
	uint32_t a = 0x80000000u | (r->slot << 11) | (reg & 0xfc);
	CHECK(bus_write(&r->pio, 0xcf8, &a, 4));
	CHECK(bus_write(&r->pio, 0xcfc + (reg & 3), &v, len));
}

static uint32_t cfg_read32(struct rig *r, unsigned reg)
{
	uint32_t a = 0x80000000u | (r->slot << 11) | (reg & 0xfc), v = 0;
	CHECK(bus_write(&r->pio, 0xcf8, &a, 4));
	CHECK(bus_read(&r->pio, 0xcfc, &v, 4));
	return v;
}

static uint64_t bar0(struct rig *r)
{
	return cfg_read32(r, PCI_CFG_BAR0) & ~0xfu;
}

static void w(struct rig *r, uint64_t off, uint64_t v, unsigned len)
{
	CHECK(bus_write(&r->mmio, bar0(r) + off, &v, len));
}

static uint64_t rd(struct rig *r, uint64_t off, unsigned len)
{
	uint64_t v = 0;
	CHECK(bus_read(&r->mmio, bar0(r) + off, &v, len));
	return v;
}

static unsigned msix_cap(struct rig *r)
{
	unsigned c = cfg_read32(r, PCI_CFG_CAP_PTR) & 0xff;
	while (c && (cfg_read32(r, c) & 0xff) != PCI_CAP_ID_MSIX)
		c = (cfg_read32(r, c) >> 8) & 0xff;
	return c;
}

/* The driver's set-up through BAR0: MSI-X with vectors 0 (queue 0) and 2
 * (config), queue 0 of QSIZE at QBASE, the echo register, DRIVER_OK. */
static void driver_setup(struct rig *r)
{
	w(r, VIRTIO_PCI_COMMON_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER, 1);
	w(r, VIRTIO_PCI_COMMON_GFSELECT, 1, 4);
	w(r, VIRTIO_PCI_COMMON_GF, 1, 4); /* VERSION_1 */
	w(r, VIRTIO_PCI_COMMON_STATUS, 0x0b, 1);
	unsigned cap = msix_cap(r);
	CHECK(cap != 0);
	cfg_write32(r, cap + 2, 0x8000, 2); /* MSI-X enable */
	for (unsigned v = 0; v < 3; v += 2) {
		w(r, VIRTIO_PCI_MSIX_TABLE + 16 * v, MSI_ADDR, 4);
		w(r, VIRTIO_PCI_MSIX_TABLE + 16 * v + 8, 0x40 + v, 4);
		w(r, VIRTIO_PCI_MSIX_TABLE + 16 * v + 12, 0, 4); /* unmask */
	}
	w(r, VIRTIO_PCI_COMMON_MSIX, 2, 2);
	w(r, VIRTIO_PCI_COMMON_Q_SELECT, 0, 2);
	w(r, VIRTIO_PCI_COMMON_Q_SIZE, QSIZE, 2);
	w(r, VIRTIO_PCI_COMMON_Q_MSIX, 0, 2);
	w(r, VIRTIO_PCI_COMMON_Q_DESCLO, QBASE, 8);
	w(r, VIRTIO_PCI_COMMON_Q_AVAILLO, QBASE + 0x1000, 8);
	w(r, VIRTIO_PCI_COMMON_Q_USEDLO, QBASE + 0x2000, 8);
	w(r, VIRTIO_PCI_COMMON_Q_ENABLE, 1, 2);
	w(r, VIRTIO_PCI_DEVICE_OFF, 77, 4);
	w(r, VIRTIO_PCI_COMMON_STATUS, 0x0f, 1);
	CHECK_EQ(rd(r, VIRTIO_PCI_COMMON_STATUS, 1), 0x0f);
}

static uint16_t used_idx(struct fake_vplat *v)
{
	uint16_t i;
	memcpy(&i, v->ram + QBASE + 0x2000 + 2, 2);
	return i;
}

/* Makes request @n available (a one-byte writable buffer) and kicks. */
static void request(struct rig *r, unsigned n, bool kick)
{
	uint16_t head = (uint16_t)(n % QSIZE);
	fake_vring_desc(r->v->ram, QBASE, head, DATA + 0x100 * n, 16, FAKE_VRING_F_WRITE, 0);
	fake_vring_fill(r->v->ram, QBASE, QSIZE, head, 1);
	if (kick)
		fake_vplat_kick(&r->e.dev, 0);
}

static void run_loop(struct fake_vplat *v)
{
	for (int i = 0; i < 4; i++)
		evloop_run_once(v->loop, 10);
}

/* The host's and the device's sections of @r, as a parsed file in @w. */
static void save(struct rig *r, struct state_w *w, struct state_file *f)
{
	state_w_init(w);
	if (r->host) {
		state_section_begin(w, "pci-host", PCI_HOST_STATE_VERSION);
		pci_host_save(r->host, w);
		state_section_end(w);
		state_section_begin(w, "virtio-pci.0", VIRTIO_PCI_STATE_VERSION);
		virtio_pci_save(r->vp, w);
	} else {
		state_section_begin(w, "virtio-mmio.0", VIRTIO_MMIO_STATE_VERSION);
		virtio_mmio_save(r->vm, w);
	}
	state_section_end(w);
	const uint8_t *p;
	size_t len;
	char err[STATE_ERR_MAX];
	CHECK_EQ(state_w_finish(w, &p, &len), 0);
	CHECK_EQ(state_file_parse(p, len, f, err, sizeof(err)), 0);
}

static int load(struct rig *r, const struct state_file *f, char *err, size_t len)
{
	struct state_r rd;
	int rc;
	if (r->host) {
		CHECK_EQ(state_section(f, "pci-host", 1, &rd, err, len), 0);
		rc = pci_host_load(r->host, &rd);
		if (rc < 0) {
			snprintf(err, len, "%s", rd.err);
			return rc;
		}
		CHECK_EQ(state_section(f, "virtio-pci.0", 1, &rd, err, len), 0);
		rc = virtio_pci_load(r->vp, &rd);
	} else {
		CHECK_EQ(state_section(f, "virtio-mmio.0", 1, &rd, err, len), 0);
		rc = virtio_mmio_load(r->vm, &rd);
	}
	if (rc < 0)
		snprintf(err, len, "%s", rd.err);
	return rc;
}

static void test_pci_round_trip(void)
{
	struct fake_vplat v;
	fake_vplat_init(&v, RAM_SIZE, true);
	struct rig a;
	rig_init(&a, &v, true);
	/* BAR0 moved by the guest: the kicks must follow it into B */
	uint64_t moved = LAYOUT_PCI_MMIO + 0x200000;
	cfg_write32(&a, PCI_CFG_BAR0, (uint32_t)moved, 4);
	CHECK_EQ(bar0(&a), moved);
	driver_setup(&a);
	for (unsigned n = 0; n < 3; n++)
		request(&a, n, true);
	run_loop(&v);
	CHECK_EQ(a.e.served, 3);
	CHECK_EQ(used_idx(&v), 3);
	int fd = irq_fd_of(&a.h, 0x40);
	CHECK(fd >= 0);
	uint64_t cnt = 0;
	CHECK_EQ(read(fd, &cnt, 8), 8);

	/* paused: a request made available and kicked now is not served... */
	virtio_dev_quiesce(&a.e.dev);
	request(&a, 3, true);
	run_loop(&v);
	CHECK_EQ(a.e.served, 3);
	char why[128];
	CHECK_EQ(virtio_dev_can_snapshot(&a.e.dev, why, sizeof(why)), 0);
	struct state_w sw;
	struct state_file f;
	save(&a, &sw, &f);
	rig_fini(&a);

	/* ...by A; B, built as at boot on the same RAM, serves it */
	struct rig b;
	rig_init(&b, &v, true);
	CHECK_EQ(bar0(&b), LAYOUT_PCI_MMIO);
	char err[256] = "";
	CHECK_EQ(load(&b, &f, err, sizeof(err)), 0);
	CHECK_STREQ(err, "");
	CHECK_EQ(bar0(&b), moved);
	CHECK(io_at(&b.h, b.e.dev.queues[0].kick_fd, moved + VIRTIO_PCI_NOTIFY_OFF));
	CHECK(!io_at(&b.h, b.e.dev.queues[0].kick_fd, LAYOUT_PCI_MMIO + VIRTIO_PCI_NOTIFY_OFF));
	CHECK_EQ(b.e.activations, 1);
	CHECK_EQ(b.e.reg, 77);
	CHECK_EQ(rd(&b, VIRTIO_PCI_COMMON_STATUS, 1), 0x0f);
	CHECK_EQ(rd(&b, VIRTIO_PCI_COMMON_Q_SIZE, 2), QSIZE);
	CHECK_EQ(rd(&b, VIRTIO_PCI_COMMON_Q_ENABLE, 2), 1);
	CHECK_EQ(rd(&b, VIRTIO_PCI_COMMON_Q_MSIX, 2), 0);
	CHECK_EQ(rd(&b, VIRTIO_PCI_COMMON_MSIX, 2), 2);
	CHECK_EQ(rd(&b, VIRTIO_PCI_MSIX_TABLE + 8, 4), 0x40);
	CHECK_EQ(rd(&b, VIRTIO_PCI_MSIX_TABLE + 32 + 8, 4), 0x42);
	CHECK_EQ(cfg_read32(&b, msix_cap(&b)) >> 16 & 0x8000, 0x8000);
	/* the unmasked vectors are routed again before any interrupt */
	int bfd = irq_fd_of(&b.h, 0x40);
	CHECK(bfd >= 0);
	CHECK(irq_fd_of(&b.h, 0x42) >= 0);
	run_loop(&v);
	CHECK_EQ(b.e.served, 1);
	CHECK_EQ(used_idx(&v), 4);
	CHECK_EQ(v.ram[DATA + 0x300], 0xa0);
	CHECK_EQ(read(bfd, &cnt, 8), 8);
	/* and the next request, through the notify address, continues */
	request(&b, 4, true);
	run_loop(&v);
	CHECK_EQ(b.e.served, 2);
	CHECK_EQ(used_idx(&v), 5);
	uint32_t used_id;
	memcpy(&used_id, v.ram + QBASE + 0x2000 + 4 + 8 * 4, 4);
	CHECK_EQ(used_id, 4);
	state_w_free(&sw);
	rig_fini(&b);
	fake_vplat_fini(&v);
}

/* virtio-mmio: the same device, its selectors and the owed interrupt. */
static void test_mmio_round_trip(void)
{
	struct fake_vplat v;
	fake_vplat_init(&v, RAM_SIZE, true);
	struct rig a;
	rig_init(&a, &v, false);
	struct virtio_dev *d = &a.e.dev;
	pthread_mutex_lock(&d->lock);
	CHECK_EQ(fake_driver_features(d, 1ull << VIRTIO_F_VERSION_1), 0x0b);
	CHECK(fake_driver_queue(d, 0, QSIZE, QBASE));
	virtio_dev_set_status(d, 0x0f);
	pthread_mutex_unlock(&d->lock);
	uint32_t sel = 1;
	CHECK(bus_write(&a.mmio, MMIO_BASE + 0x30, &sel, 4)); /* QueueSel */
	request(&a, 0, true);
	run_loop(&v);
	CHECK_EQ(used_idx(&v), 1);
	CHECK_EQ(d->isr, VIRTIO_ISR_QUEUE);
	virtio_dev_quiesce(d);
	struct state_w sw;
	struct state_file f;
	save(&a, &sw, &f);
	rig_fini(&a);

	struct rig b;
	rig_init(&b, &v, false);
	char err[256] = "";
	CHECK_EQ(load(&b, &f, err, sizeof(err)), 0);
	uint32_t val = 0;
	CHECK(bus_read(&b.mmio, MMIO_BASE + 0x44, &val, 4)); /* QueueReady of QueueSel 1 */
	CHECK_EQ(val, 0);
	CHECK(bus_write(&b.mmio, MMIO_BASE + 0x30, &(uint32_t){ 0 }, 4));
	CHECK(bus_read(&b.mmio, MMIO_BASE + 0x44, &val, 4));
	CHECK_EQ(val, 1);
	CHECK(bus_read(&b.mmio, MMIO_BASE + 0x60, &val, 4)); /* InterruptStatus */
	CHECK_EQ(val, VIRTIO_ISR_QUEUE);
	CHECK(bus_read(&b.mmio, MMIO_BASE + 0x70, &val, 4)); /* Status */
	CHECK_EQ(val, 0x0f);
	request(&b, 1, true);
	run_loop(&v);
	CHECK_EQ(used_idx(&v), 2);
	CHECK_EQ(b.e.served, 1);
	state_w_free(&sw);
	rig_fini(&b);
	fake_vplat_fini(&v);
}

/* ------------------------------------------------------------ hostile */

/* File @f with section @name's payload replaced by @p/@n. */
static void rewrite(const struct state_file *f, const char *name, const void *p, size_t n,
		    struct state_w *w, struct state_file *out)
{
	char err[STATE_ERR_MAX], nm[STATE_NAME_MAX + 1];
	state_w_init(w);
	for (uint32_t i = 0; state_section_name(f, i, nm, sizeof(nm)); i++) {
		struct state_r r;
		CHECK_EQ(state_section(f, nm, UINT32_MAX, &r, err, sizeof(err)), 0);
		state_section_begin(w, nm, r.version);
		if (strcmp(nm, name) == 0)
			state_put_bytes(w, p, n);
		else
			state_put_bytes(w, r.p, r.len);
		state_section_end(w);
	}
	const uint8_t *b;
	size_t len;
	CHECK_EQ(state_w_finish(w, &b, &len), 0);
	CHECK_EQ(state_file_parse(b, len, out, err, sizeof(err)), 0);
}

static size_t device_bytes(struct rig *r, uint8_t *buf, size_t cap)
{
	struct state_w w;
	struct state_file f;
	save(r, &w, &f);
	struct state_r rd;
	char err[STATE_ERR_MAX];
	CHECK_EQ(state_section(&f, r->host ? "virtio-pci.0" : "virtio-mmio.0", 1, &rd, err,
			       sizeof(err)), 0);
	size_t n = rd.len < cap ? rd.len : cap;
	memcpy(buf, rd.p, n);
	state_w_free(&w);
	return n;
}

struct saved {
	struct fake_vplat v;
	struct state_w w;
	struct state_file f;
	uint8_t payload[1024];
	size_t n;
	uint8_t created[1024];  /* a fresh device's save */
	size_t created_n;
};

/* A PCI device after driver_setup and 3 requests, saved. */
static void saved_init(struct saved *s)
{
	fake_vplat_init(&s->v, RAM_SIZE, true);
	struct rig a;
	rig_init(&a, &s->v, true);
	driver_setup(&a);
	for (unsigned n = 0; n < 3; n++)
		request(&a, n, true);
	run_loop(&s->v);
	virtio_dev_quiesce(&a.e.dev);
	save(&a, &s->w, &s->f);
	rig_fini(&a);
	struct state_r rd;
	char err[STATE_ERR_MAX];
	CHECK_EQ(state_section(&s->f, "virtio-pci.0", 1, &rd, err, sizeof(err)), 0);
	CHECK(rd.len <= sizeof(s->payload));
	memcpy(s->payload, rd.p, rd.len);
	s->n = rd.len;
	struct rig c;
	rig_init(&c, &s->v, true);
	s->created_n = device_bytes(&c, s->created, sizeof(s->created));
	rig_fini(&c);
}

static void saved_fini(struct saved *s)
{
	state_w_free(&s->w);
	fake_vplat_fini(&s->v);
}

/* Loads @p/@n as the device's section into a fresh device: refused with
 * @what in the message (NULL: refusal not required), device as created. */
static int try_load(struct saved *s, const uint8_t *p, size_t n, const char *what)
{
	struct state_w w;
	struct state_file f;
	rewrite(&s->f, "virtio-pci.0", p, n, &w, &f);
	struct rig b;
	rig_init(&b, &s->v, true);
	char err[256] = "";
	int rc = load(&b, &f, err, sizeof(err));
	if (what) {
		CHECK_EQ(rc, -EINVAL);
		CHECK_HAS(err, "section virtio-pci.0: ");
		CHECK_HAS(err, what);
	}
	if (rc < 0) {
		static uint8_t now[1024];
		size_t k = device_bytes(&b, now, sizeof(now));
		CHECK(k == s->created_n && memcmp(now, s->created, k) == 0);
		CHECK_EQ(b.e.activations, 0);
		CHECK(b.e.dev.queues[0].vq == NULL);
	}
	rig_fini(&b);
	state_w_free(&w);
	return rc;
}

static void refused_at(struct saved *s, size_t at, uint64_t v, unsigned width, const char *what)
{
	uint8_t buf[1024];
	memcpy(buf, s->payload, s->n);
	CHECK(at + width <= s->n);
	for (unsigned i = 0; i < width; i++)
		buf[at + i] = (uint8_t)(v >> (8 * i));
	try_load(s, buf, s->n, what);
}

/* Payload layout: transport (dfselect 4, gfselect 4, queue_select 2,
 * config [0x40,0x100) 192, MSI-X table 3 x 16, PBA 8), then the core
 * (id 4, queues 4, offered 8, status 1, ISR 1, accepted 8, generation 4,
 * config vector 2), queue 0 (size 2, max 2, enabled 1, desc 8, driver 8,
 * device 8, vector 2, rings 1, last_avail 2, used 2, in flight 4), queue
 * 1 (no rings: 32), the echo register 4. */
#define T_CFG 10
#define T_TABLE (T_CFG + 192)
#define T_PBA (T_TABLE + 48)
#define CORE (T_PBA + 8)
#define Q0 (CORE + 32)
#define ECHO (Q0 + 40 + 32)

static void test_hostile_fields(void)
{
	struct saved s;
	saved_init(&s);
	CHECK_EQ(s.n, ECHO + 4);
	CHECK_EQ(try_load(&s, s.payload, s.n, NULL), 0); /* the unchanged payload loads */
	refused_at(&s, T_CFG, 0x05, 1, "read-only");
	refused_at(&s, T_TABLE + 12, 0x03, 1, "reserved bits");
	refused_at(&s, T_TABLE + 0, MSI_ADDR | 1, 4, "reserved bits");
	refused_at(&s, T_PBA, 1u << 5, 1, "PBA");
	refused_at(&s, CORE, 7, 4, "device of id 7");
	refused_at(&s, CORE + 4, 3, 4, "3 queues");
	refused_at(&s, CORE + 8, 1, 8, "features 0x1");
	refused_at(&s, CORE + 16, 0x04, 1, "DRIVER_OK without FEATURES_OK");
	refused_at(&s, CORE + 16, 0x07, 1, "DRIVER_OK without FEATURES_OK");
	refused_at(&s, CORE + 17, 0x04, 1, "ISR");
	refused_at(&s, CORE + 18, (1ull << 32) | (1ull << 40), 8, "not offered");
	refused_at(&s, CORE + 18, 0, 8, "refuses them");
	refused_at(&s, CORE + 30, 3, 2, "config 0: MSI-X vector 3");
	refused_at(&s, Q0, 6, 2, "queue 0: size 6");
	refused_at(&s, Q0, 32, 2, "queue 0: size 32");
	refused_at(&s, Q0 + 2, 8, 2, "max size");
	refused_at(&s, Q0 + 4, 2, 1, "boolean");
	refused_at(&s, Q0 + 5, RAM_SIZE - 0x10, 8, "inside guest RAM");
	refused_at(&s, Q0 + 5, QBASE + 8, 8, "inside guest RAM");
	refused_at(&s, Q0 + 13, (uint64_t)-2, 8, "inside guest RAM");
	refused_at(&s, Q0 + 21, RAM_SIZE, 8, "inside guest RAM");
	refused_at(&s, Q0 + 29, 9, 2, "queue 0: MSI-X vector 9");
	refused_at(&s, Q0 + 31, 0, 1, "enabled without rings");
	refused_at(&s, Q0 + 32, 4, 2, "disagree");
	refused_at(&s, Q0 + 34, 2, 2, "disagree");
	refused_at(&s, Q0 + 36, 1, 4, "disagree");
	refused_at(&s, Q0 + 36, 0x10000, 4, "disagree");
	refused_at(&s, ECHO, 5000, 4, "echo register");
	/* a payload cut anywhere */
	for (size_t cut = 0; cut < s.n; cut++)
		try_load(&s, s.payload, cut, "section virtio-pci.0");
	/* and bytes left over */
	uint8_t longer[1024];
	memcpy(longer, s.payload, s.n);
	longer[s.n] = 0;
	try_load(&s, longer, s.n + 1, "left unread");
	saved_fini(&s);
}

/* Every byte flipped: refused or loaded, never a crash; a refusal leaves
 * the device as created (checked in try_load). */
static void test_hostile_sweep(void)
{
	struct saved s;
	saved_init(&s);
	uint8_t buf[1024];
	unsigned refused = 0;
	for (size_t at = 0; at < s.n; at++) {
		memcpy(buf, s.payload, s.n);
		buf[at] ^= 0xff;
		refused += try_load(&s, buf, s.n, NULL) < 0;
	}
	CHECK(refused > 0);
	saved_fini(&s);
}

/* A device with a chain in flight refuses vq_set_indices' invariant, and
 * vq_unpop gives a popped chain back to be popped again. */
static void test_queue_indices(void)
{
	struct fake_vplat v;
	fake_vplat_init(&v, RAM_SIZE, true);
	struct vq q;
	struct vq_layout l = { .size = QSIZE, .desc_gpa = QBASE, .avail_gpa = QBASE + 0x1000,
			       .used_gpa = QBASE + 0x2000 };
	CHECK_EQ(vq_setup(&q, &v.mem, QMAX, &l, 0), 0);
	fake_vring_desc(v.ram, QBASE, 3, DATA, 16, FAKE_VRING_F_WRITE, 0);
	fake_vring_fill(v.ram, QBASE, QSIZE, 3, 2);
	struct vq_seg segs[2];
	struct vq_chain c = { .segs = segs, .cap = 2 };
	CHECK_EQ(vq_pop(&q, &c), 1);
	CHECK_EQ(vq_pop(&q, &c), 1);
	CHECK_EQ(vq_unpop(&q, 3), -EINVAL);
	CHECK_EQ(vq_unpop(&q, 1), 0);
	struct vq_indices ix;
	vq_get_indices(&q, &ix);
	CHECK_EQ(ix.last_avail, 1);
	CHECK_EQ(ix.inflight, 1);
	CHECK_EQ(vq_pop(&q, &c), 1);
	CHECK_EQ(c.head, 3);
	CHECK_EQ(vq_pop(&q, &c), 0);
	struct vq q2;
	CHECK_EQ(vq_setup(&q2, &v.mem, QMAX, &l, 0), 0);
	struct vq_indices bad = { .last_avail = 5, .used_idx = 1, .inflight = 3 };
	CHECK_EQ(vq_set_indices(&q2, &bad), -EINVAL);
	bad = (struct vq_indices){ .last_avail = 2, .used_idx = 0xfffe, .inflight = 4 };
	CHECK_EQ(vq_set_indices(&q2, &bad), 0);
	CHECK_EQ(vq_push(&q2, 3, 1), 0);
	CHECK_EQ(used_idx(&v), 0xffff);
	fake_vplat_fini(&v);
}

int main(void)
{
	RUN(test_queue_indices);
	RUN(test_pci_round_trip);
	RUN(test_mmio_round_trip);
	RUN(test_hostile_fields);
	RUN(test_hostile_sweep);
	return unit_done();
}
