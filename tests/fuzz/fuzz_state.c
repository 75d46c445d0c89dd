/* libFuzzer target for the device loaders of a snapshot: arbitrary section
 * payloads fed to each saved-state reader of the platform devices
 * (devices/: the UART, RTC, i8042, ACPI PM, PCI host) and of virtio
 * (virtio/device_state.c with the pci and mmio transports, a small device
 * model, and the balloon's own part), each into a device created fresh as
 * at boot.
 *
 * Input: byte 0 picks the loader (% NR_TARGETS); the rest is the payload.
 *
 * Invariants (abort on violation): no crash, hang or sanitizer report; a
 * refused payload leaves the device exactly as created (a save of it is
 * byte for byte a fresh device's save) and names its section; an accepted
 * one gives a device that saves again and runs (its queues are kicked and
 * served from whatever indices it was given).
 *
 * Seeds: with FUZZ_STATE_SEEDS=DIR in the environment the binary writes
 * real saves of these devices in several states into DIR and exits (see
 * make_seeds_state.py), so the checked-in corpus is what kvmrun writes. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "mem/layout.h"
#include "devices/acpi_pm.h"
#include "devices/bus.h"
#include "devices/i8042.h"
#include "devices/mc146818.h"
#include "devices/ns16550.h"
#include "devices/pci_host.h"
#include "virtio/balloon.h"
#include "virtio/device.h"
#include "virtio/device_state.h"
#include "virtio/mmio.h"
#include "virtio/pci.h"
#include "lib/evloop.h"
#include "lib/log.h"
#include "lib/state.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "fuzz_state: %s:%d: %s\n", \
	__FILE__, __LINE__, #c); abort(); } } while (0)

#define RAM_SIZE (1u << 20)
#define QBASE 0x10000u
#define MMIO_BASE 0xd0000000u

enum target { T_UART, T_RTC, T_I8042, T_ACPI, T_PCI_HOST, T_VPCI, T_VMMIO, T_BALLOON,
	      NR_TARGETS };

static const char *const section_of[NR_TARGETS] = {
	"uart.com1", "rtc", "i8042", "acpi-pm", "pci-host", "virtio-pci.0", "virtio-mmio.0",
	"virtio-mmio.1",
};

/* ---- a small virtio device: completes every chain ---- */

struct echo {
	struct virtio_dev dev;
	uint32_t reg;
};

static void echo_cfg_read(struct virtio_dev *d, uint32_t off, void *p, unsigned len)
{
	memcpy(p, (uint8_t *)&((struct echo *)d->priv)->reg + off, len);
}

static void echo_notify(struct virtio_dev *d, unsigned q)
{
	struct vq *vq = d->queues[q].vq;
	struct vq_seg segs[8];
	for (int n = 0; vq && n < 64; n++) {
		struct vq_chain c = { .segs = segs, .cap = 8 };
		if (vq_pop(vq, &c) <= 0)
			break;
		if (vq_push(vq, c.head, 0) < 0)
			break;
	}
	virtio_dev_used(d, q);
}

static void echo_reset(struct virtio_dev *d) { }

static void echo_save(struct virtio_dev *d, struct state_w *w)
{
	state_put_u32(w, ((struct echo *)d->priv)->reg);
}

static void echo_load(struct virtio_dev *d, struct state_r *r, const struct virtio_dev_state *c,
		      bool apply)
{
	uint32_t v = state_get_u32(r);
	if (apply)
		((struct echo *)d->priv)->reg = v;
}

static const struct virtio_dev_ops echo_ops = {
	.features = 1ull << 5, .config_size = 4, .config_read = echo_cfg_read,
	.notify = echo_notify, .reset = echo_reset,
	.state_save = echo_save, .state_load = echo_load,
};

/* ---- the machine ---- */

struct rig {
	uint8_t *ram;
	struct guest_mem mem;
	struct evloop *loop;
	struct logger log;
	struct virtio_platform plat;
	struct bus pio, mmio;
	struct ns16550 *uart;
	struct mc146818 *rtc;
	struct i8042 *kbd;
	struct acpi_pm *pm;
	struct pci_host *host;
	struct echo e;
	bool e_init;
	struct virtio_pci *vp;
	struct virtio_mmio *vm, *bm;
	struct virtio_balloon *balloon;
};

static int64_t fixed_clock(void *cookie) { return 1700000000; }
static void nop(void *cookie) { }
static int nop_ioeventfd(void *c, int fd, uint64_t a, unsigned l, bool dm, uint64_t d, bool as)
{
	return 0;
}
static int nop_irqfd(void *c, int fd, unsigned gsi, int rfd, bool assign) { return 0; }
static int nop_msi_alloc(void *c, unsigned *gsi) { *gsi = 40; return 0; }
static int nop_msi_route(void *c, unsigned gsi, uint64_t addr, uint32_t data) { return 0; }
static void nop_msi_free(void *c, unsigned gsi) { }

static void rig_init(struct rig *r, enum target t)
{
	memset(r, 0, sizeof(*r));
	r->ram = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(r->ram != MAP_FAILED);
	CHECK(gmem_add_region(&r->mem, 0, RAM_SIZE, r->ram, -1, 0) == 0);
	r->mem.page_size = 4096;
	CHECK(evloop_create(&r->loop) == 0);
	log_init(&r->log, LOG_ERROR, "fuzz");
	r->log.fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	r->plat = (struct virtio_platform){
		.mem = &r->mem, .loop = r->loop, .log = &r->log,
		.ioeventfd = nop_ioeventfd, .irqfd = nop_irqfd, .msi_alloc = nop_msi_alloc,
		.msi_route = nop_msi_route, .msi_free = nop_msi_free,
	};
	bus_init(&r->pio, "pio");
	bus_init(&r->mmio, "mmio");
	switch (t) {
	case T_UART: {
		struct ns16550_params p = { .out_fd = -1, .name = "com1" };
		CHECK(ns16550_create(&r->pio, 0x3f8, &p, &r->uart) == 0);
		break;
	}
	case T_RTC: {
		struct mc146818_params p = { .clock = fixed_clock };
		CHECK(mc146818_create(&r->pio, 0x70, &p, &r->rtc) == 0);
		break;
	}
	case T_I8042: {
		struct i8042_params p = { .data_port = 0x60, .cmd_port = 0x64, .reset = nop };
		CHECK(i8042_create(&r->pio, &p, &r->kbd) == 0);
		break;
	}
	case T_ACPI: {
		struct acpi_pm_params p = { .evt_port = 0x600, .cnt_port = 0x604,
					    .reset_port = 0xcf9, .poweroff = nop, .reset = nop,
					    .log = &r->log };
		CHECK(acpi_pm_create(&r->pio, &p, &r->pm) == 0);
		break;
	}
	case T_PCI_HOST:
	case T_VPCI: {
		struct pci_host_params p = { .log = &r->log, .config_port = 0xcf8,
					     .window_base = LAYOUT_PCI_MMIO,
					     .window_size = LAYOUT_PCI_MMIO_SIZE };
		CHECK(pci_host_create(&r->pio, &r->mmio, &p, &r->host) == 0);
		CHECK(virtio_dev_init(&r->e.dev, "echo", 0x3e, &echo_ops, &r->e, &r->plat, 2, 16) == 0);
		r->e_init = true;
		CHECK(virtio_pci_create(r->host, &r->e.dev, &r->vp) == 0);
		break;
	}
	case T_VMMIO:
		CHECK(virtio_dev_init(&r->e.dev, "echo", 0x3e, &echo_ops, &r->e, &r->plat, 2, 16) == 0);
		r->e_init = true;
		CHECK(virtio_mmio_create(&r->mmio, MMIO_BASE, 5, &r->e.dev, &r->vm) == 0);
		break;
	case T_BALLOON: {
		struct virtio_balloon_params p = { .plat = &r->plat, .page_size = 4096,
						   .stats_period = 5 };
		CHECK(virtio_balloon_create(&p, &r->balloon) == 0);
		CHECK(virtio_mmio_create(&r->mmio, MMIO_BASE + 0x1000, 6,
					 virtio_balloon_dev(r->balloon), &r->bm) == 0);
		break;
	}
	case NR_TARGETS:
		break;
	}
}

static void rig_fini(struct rig *r)
{
	virtio_pci_destroy(r->vp);
	virtio_mmio_destroy(r->vm);
	virtio_mmio_destroy(r->bm);
	if (r->e_init)
		virtio_dev_uninit(&r->e.dev);
	virtio_balloon_destroy(r->balloon);
	pci_host_destroy(r->host);
	ns16550_destroy(r->uart);
	mc146818_destroy(r->rtc);
	i8042_destroy(r->kbd);
	acpi_pm_destroy(r->pm);
	evloop_destroy(r->loop);
	close(r->log.fd);
	munmap(r->ram, RAM_SIZE);
}

static void save_payload(struct rig *r, enum target t, struct state_w *w)
{
	switch (t) {
	case T_UART: ns16550_save(r->uart, w); break;
	case T_RTC: mc146818_save(r->rtc, w); break;
	case T_I8042: i8042_save(r->kbd, w); break;
	case T_ACPI: acpi_pm_save(r->pm, w); break;
	case T_PCI_HOST: pci_host_save(r->host, w); break;
	case T_VPCI: virtio_pci_save(r->vp, w); break;
	case T_VMMIO: virtio_mmio_save(r->vm, w); break;
	case T_BALLOON: virtio_mmio_save(r->bm, w); break;
	case NR_TARGETS: break;
	}
}

static int load_payload(struct rig *r, enum target t, struct state_r *rd)
{
	switch (t) {
	case T_UART: return ns16550_load(r->uart, rd);
	case T_RTC: return mc146818_load(r->rtc, rd);
	case T_I8042: return i8042_load(r->kbd, rd);
	case T_ACPI: return acpi_pm_load(r->pm, rd);
	case T_PCI_HOST: return pci_host_load(r->host, rd);
	case T_VPCI: return virtio_pci_load(r->vp, rd);
	case T_VMMIO: return virtio_mmio_load(r->vm, rd);
	case T_BALLOON: return virtio_mmio_load(r->bm, rd);
	case NR_TARGETS: break;
	}
	return -EINVAL;
}

/* A save of @r's device: a malloc'd copy of its payload. */
static uint8_t *snapshot(struct rig *r, enum target t, size_t *len)
{
	struct state_w w;
	state_w_init(&w);
	state_section_begin(&w, section_of[t], 1);
	size_t start = w.len;
	save_payload(r, t, &w);
	state_section_end(&w);
	CHECK(!w.oom);
	*len = w.len - start;
	uint8_t *p = malloc(*len ? *len : 1);
	CHECK(p);
	memcpy(p, w.buf + start, *len);
	state_w_free(&w);
	return p;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	enum target t = (enum target)(data[0] % NR_TARGETS);
	struct state_w w;
	state_w_init(&w);
	state_section_begin(&w, section_of[t], 1);
	state_put_bytes(&w, data + 1, size - 1);
	state_section_end(&w);
	const uint8_t *file;
	size_t flen;
	char err[STATE_ERR_MAX];
	struct state_file f;
	CHECK(state_w_finish(&w, &file, &flen) == 0);
	CHECK(state_file_parse(file, flen, &f, err, sizeof(err)) == 0);
	struct state_r rd;
	CHECK(state_section(&f, section_of[t], 1, &rd, err, sizeof(err)) == 0);

	struct rig r;
	rig_init(&r, t);
	size_t before_len;
	uint8_t *before = snapshot(&r, t, &before_len);
	int rc = load_payload(&r, t, &rd);
	if (rc == -EINVAL && rd.failed) {
		CHECK(strncmp(rd.err, "section ", 8) == 0);
		size_t after_len;
		uint8_t *after = snapshot(&r, t, &after_len);
		CHECK(after_len == before_len && memcmp(after, before, after_len) == 0);
		free(after);
	} else {
		/* accepted (or the device could not start again): it runs */
		for (int i = 0; i < 3; i++)
			evloop_run_once(r.loop, 0);
		size_t again;
		free(snapshot(&r, t, &again));
	}
	free(before);
	rig_fini(&r);
	state_w_free(&w);
	return 0;
}

/* ---- seeds: real saves ---- */

static void write_seed(const char *dir, const char *name, enum target t, struct rig *r)
{
	size_t len;
	uint8_t *p = snapshot(r, t, &len);
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *fp = fopen(path, "wb");
	CHECK(fp);
	uint8_t sel = (uint8_t)t;
	CHECK(fwrite(&sel, 1, 1, fp) == 1);
	CHECK(fwrite(p, 1, len, fp) == len);
	CHECK(fclose(fp) == 0);
	/* a real save loads into a device created as at boot */
	struct state_w w;
	state_w_init(&w);
	state_section_begin(&w, section_of[t], 1);
	state_put_bytes(&w, p, len);
	state_section_end(&w);
	const uint8_t *file;
	size_t flen;
	char err[STATE_ERR_MAX];
	struct state_file f;
	struct state_r rd;
	CHECK(state_w_finish(&w, &file, &flen) == 0);
	CHECK(state_file_parse(file, flen, &f, err, sizeof(err)) == 0);
	CHECK(state_section(&f, section_of[t], 1, &rd, err, sizeof(err)) == 0);
	struct rig fresh;
	rig_init(&fresh, t);
	int rc = load_payload(&fresh, t, &rd);
	if (rc)
		fprintf(stderr, "%s: %s\n", name, rd.err);
	CHECK(rc == 0);
	rig_fini(&fresh);
	state_w_free(&w);
	free(p);
}

/* The driver's side up to DRIVER_OK, queue 0 at QBASE, @n chains served. */
static void drive(struct virtio_dev *d, uint64_t features, unsigned n)
{
	pthread_mutex_lock(&d->lock);
	virtio_dev_set_status(d, 3);
	virtio_dev_set_driver_features(d, 0, (uint32_t)features);
	virtio_dev_set_driver_features(d, 1, (uint32_t)(features >> 32));
	virtio_dev_set_status(d, 0x0b);
	for (unsigned q = 0; q < d->nr_queues && q < 2; q++) {
		d->queues[q].size = 8;
		d->queues[q].desc = QBASE + 0x4000 * q;
		d->queues[q].driver = QBASE + 0x4000 * q + 0x1000;
		d->queues[q].device = QBASE + 0x4000 * q + 0x2000;
		CHECK(virtio_dev_queue_enable(d, q));
	}
	virtio_dev_set_status(d, 0x0f);
	struct vq *vq = d->queues[0].vq;
	uint8_t *ram = (uint8_t *)gmem_ptr(d->plat->mem, 0, RAM_SIZE);
	for (unsigned i = 0; i < n; i++) {
		uint16_t head = (uint16_t)(i % 8), idx = (uint16_t)(i + 1);
		uint64_t addr = 0x80000 + 0x100 * i;
		uint32_t len = 16;
		uint16_t flags = 2;
		memcpy(ram + QBASE + 16 * head, &addr, 8);
		memcpy(ram + QBASE + 16 * head + 8, &len, 4);
		memcpy(ram + QBASE + 16 * head + 12, &flags, 2);
		memcpy(ram + QBASE + 0x1000 + 4 + 2 * (i % 8), &head, 2);
		memcpy(ram + QBASE + 0x1000 + 2, &idx, 2);
		d->ops->notify(d, 0);
	}
	(void)vq;
	pthread_mutex_unlock(&d->lock);
}

static void seeds(const char *dir)
{
	for (int t = 0; t < NR_TARGETS; t++) {
		struct rig r;
		rig_init(&r, (enum target)t);
		char name[64];
		snprintf(name, sizeof(name), "%s-created", section_of[t]);
		write_seed(dir, name, (enum target)t, &r);
		uint8_t b;
		switch ((enum target)t) {
		case T_UART:
			b = 0x83; bus_write(&r.pio, 0x3fb, &b, 1);
			b = 0x01; bus_write(&r.pio, 0x3f8, &b, 1);
			b = 0x03; bus_write(&r.pio, 0x3fb, &b, 1);
			b = 0x03; bus_write(&r.pio, 0x3f9, &b, 1);
			(void)ns16550_input(r.uart, (const uint8_t *)"seed", 4);
			break;
		case T_RTC:
			b = 0x40; bus_write(&r.pio, 0x70, &b, 1);
			b = 0x99; bus_write(&r.pio, 0x71, &b, 1);
			break;
		case T_I8042:
			b = 0xd1; bus_write(&r.pio, 0x64, &b, 1);
			break;
		case T_ACPI:
			acpi_pm_power_button(r.pm);
			break;
		case T_PCI_HOST:
		case T_VPCI: {
			uint32_t a = 0x80000810u, v = 2 | 4;
			bus_write(&r.pio, 0xcf8, &a, 4);
			v = LAYOUT_PCI_MMIO + 0x100000;
			bus_write(&r.pio, 0xcfc, &v, 4);
			drive(&r.e.dev, 1ull << VIRTIO_F_VERSION_1 | 1ull << VIRTIO_F_EVENT_IDX, 3);
			break;
		}
		case T_VMMIO:
			drive(&r.e.dev, 1ull << VIRTIO_F_VERSION_1, 5);
			break;
		case T_BALLOON:
			CHECK(virtio_balloon_set_target(r.balloon, 64 * 4096) == 0);
			drive(virtio_balloon_dev(r.balloon), 1ull << VIRTIO_F_VERSION_1 |
			      1ull << VIRTIO_BALLOON_F_STATS_VQ, 0);
			break;
		case NR_TARGETS:
			break;
		}
		snprintf(name, sizeof(name), "%s-used", section_of[t]);
		write_seed(dir, name, (enum target)t, &r);
		rig_fini(&r);
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *dir = getenv("FUZZ_STATE_SEEDS");
	if (dir) {
		seeds(dir);
		exit(0);
	}
	return 0;
}
