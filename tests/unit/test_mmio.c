/* The virtio-mmio transport (virtio/mmio.c, virtio 1.2 section 4.2) through
 * its registers on a real bus, over a fake platform that records the
 * ioeventfds and irqfds it is given: identification, feature words, queue
 * configuration and its rules (only between FEATURES_OK and DRIVER_OK,
 * fixed once ready), notifications with and without an ioeventfd, the
 * interrupt line with status and acknowledge, the config window, reset,
 * teardown, and the kernel command-line helper. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "mem/layout.h"
#include "devices/bus.h"
#include "fake_platform.h"
#include "unit.h"
#include "virtio/mmio.h"

#define BASE LAYOUT_VIRTIO_MMIO
#define GSI 17
#define NQ 2
#define QMAX 16

/* 4.2.2 register offsets */
enum {
	MAGIC = 0x000, VERSION = 0x004, DEVICE_ID = 0x008, VENDOR_ID = 0x00c,
	DEV_FEAT = 0x010, DEV_FEAT_SEL = 0x014, DRV_FEAT = 0x020, DRV_FEAT_SEL = 0x024,
	QSEL = 0x030, QNUM_MAX = 0x034, QNUM = 0x038, QREADY = 0x044, QNOTIFY = 0x050,
	ISR = 0x060, ISR_ACK = 0x064, STATUS = 0x070,
	QDESC = 0x080, QDRIVER = 0x090, QDEVICE = 0x0a0, SHM_LEN_LOW = 0x0b0,
	GENERATION = 0x0fc, CONFIG = 0x100,
};

struct ioev {
	int fd;
	uint64_t addr;
	unsigned len;
	bool datamatch;
	uint64_t data;
};

struct env {
	struct fake_vplat v;
	struct virtio_dev dev;
	struct virtio_dev_ops ops;
	struct bus bus;
	struct virtio_mmio *m;
	uint8_t cfg[8];
	struct ioev ioev[NQ];
	unsigned nr_ioev, ioev_deassigned;
	int irq_fd, resample_fd;
	unsigned irq_gsi, irqfd_calls;
	unsigned notified[NQ];
};

static int hook_ioeventfd(void *cookie, int fd, uint64_t addr, unsigned len, bool datamatch,
			  uint64_t data, bool assign)
{
	struct env *e = cookie;
	if (!assign) {
		e->ioev_deassigned++;
		return 0;
	}
	if (e->nr_ioev == NQ)
		return -ENOSPC;
	e->ioev[e->nr_ioev++] = (struct ioev){ fd, addr, len, datamatch, data };
	return 0;
}

static int hook_irqfd(void *cookie, int fd, unsigned gsi, int resample_fd, bool assign)
{
	struct env *e = cookie;
	e->irqfd_calls++;
	if (assign) {
		e->irq_fd = fd;
		e->resample_fd = resample_fd;
		e->irq_gsi = gsi;
	} else {
		e->irq_fd = -1;
	}
	return 0;
}

static void cfg_read(struct virtio_dev *d, uint32_t off, void *data, unsigned len)
{
	memcpy(data, ((struct env *)d->priv)->cfg + off, len);
}

static void cfg_write(struct virtio_dev *d, uint32_t off, const void *data, unsigned len)
{
	memcpy(((struct env *)d->priv)->cfg + off, data, len);
}

static void notify(struct virtio_dev *d, unsigned q)
{
	((struct env *)d->priv)->notified[q]++;
}

static void dev_reset(struct virtio_dev *d)
{
	(void)d;
}

static void env_init(struct env *e)
{
	memset(e, 0, sizeof(*e));
	fake_vplat_init(&e->v, 1u << 20, true);
	e->v.plat.cookie = e;
	e->v.plat.ioeventfd = hook_ioeventfd;
	e->v.plat.irqfd = hook_irqfd;
	e->irq_fd = e->resample_fd = -1;
	e->ops = (struct virtio_dev_ops){ .features = 1ull << 3, .config_size = sizeof(e->cfg),
					  .config_read = cfg_read, .config_write = cfg_write,
					  .notify = notify, .reset = dev_reset };
	memcpy(e->cfg, "ABCDEFGH", 8);
	CHECK_EQ(virtio_dev_init(&e->dev, "virtio-test0", 42, &e->ops, e, &e->v.plat, NQ, QMAX), 0);
	bus_init(&e->bus, "mmio");
	CHECK_EQ(virtio_mmio_create(&e->bus, BASE, GSI, &e->dev, &e->m), 0);
}

static void env_fini(struct env *e)
{
	virtio_mmio_destroy(e->m);
	virtio_dev_uninit(&e->dev);
	fake_vplat_fini(&e->v);
}

static uint32_t rd(struct env *e, uint64_t off)
{
	uint32_t v = 0xdeadbeef;
	CHECK(bus_read(&e->bus, BASE + off, &v, 4));
	return v;
}

static void wr(struct env *e, uint64_t off, uint32_t v)
{
	CHECK(bus_write(&e->bus, BASE + off, &v, 4));
}

static uint64_t drain(int fd)
{
	uint64_t n = 0;
	if (read(fd, &n, sizeof(n)) != sizeof(n))
		return 0;
	return n;
}

static void test_identification(void)
{
	struct env e;
	env_init(&e);
	CHECK_EQ(rd(&e, MAGIC), 0x74726976); /* "virt" */
	CHECK_EQ(rd(&e, VERSION), 2);
	CHECK_EQ(rd(&e, DEVICE_ID), 42);
	CHECK_EQ(rd(&e, VENDOR_ID), 0x4b564d52);
	CHECK_EQ(rd(&e, SHM_LEN_LOW), 0xffffffffu); /* no shared memory */
	CHECK_EQ(rd(&e, 0x0f8), 0);                  /* reserved */
	/* registers are 32-bit: narrower or unaligned reads see 0 */
	uint16_t h = 0xffff;
	CHECK(bus_read(&e.bus, BASE + MAGIC, &h, 2));
	CHECK_EQ(h, 0);
	uint32_t v = 0xffffffff;
	CHECK(bus_read(&e.bus, BASE + MAGIC + 2, &v, 4));
	CHECK_EQ(v, 0);
	/* the window is 4 KiB: the next byte is someone else's */
	CHECK(!bus_read(&e.bus, BASE + LAYOUT_VIRTIO_MMIO_SLOT, &v, 4));
	/* wiring: one ioeventfd per queue on QueueNotify matching its index,
	 * one level-triggered irqfd with a resample fd */
	CHECK_EQ(e.nr_ioev, NQ);
	for (unsigned q = 0; q < e.nr_ioev; q++) {
		CHECK_EQ(e.ioev[q].addr, BASE + QNOTIFY);
		CHECK_EQ(e.ioev[q].len, 4);
		CHECK(e.ioev[q].datamatch);
		CHECK_EQ(e.ioev[q].data, q);
		CHECK_EQ(e.ioev[q].fd, e.dev.queues[q].kick_fd);
	}
	CHECK_EQ(e.irq_gsi, GSI);
	CHECK(e.irq_fd >= 0 && e.resample_fd >= 0);
	env_fini(&e);
	CHECK_EQ(e.ioev_deassigned, NQ);
	CHECK_EQ(e.irqfd_calls, 2); /* assigned, then deassigned */
}

static void test_features(void)
{
	struct env e;
	env_init(&e);
	wr(&e, DEV_FEAT_SEL, 0);
	CHECK_EQ(rd(&e, DEV_FEAT), (uint32_t)e.dev.host_features);
	CHECK(rd(&e, DEV_FEAT) & (1u << 3));
	wr(&e, DEV_FEAT_SEL, 1);
	CHECK_EQ(rd(&e, DEV_FEAT), (uint32_t)(e.dev.host_features >> 32));
	CHECK(rd(&e, DEV_FEAT) & 1); /* VERSION_1 */
	wr(&e, DEV_FEAT_SEL, 2);
	CHECK_EQ(rd(&e, DEV_FEAT), 0);
	wr(&e, STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	wr(&e, DRV_FEAT_SEL, 1);
	wr(&e, DRV_FEAT, 1);
	wr(&e, DRV_FEAT_SEL, 0);
	wr(&e, DRV_FEAT, 1u << 3);
	CHECK_EQ(e.dev.guest_features, (1ull << 32) | (1ull << 3));
	wr(&e, STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
	CHECK(rd(&e, STATUS) & VIRTIO_STATUS_FEATURES_OK);
	/* after FEATURES_OK the features are fixed */
	wr(&e, DRV_FEAT, 0);
	CHECK_EQ(e.dev.guest_features, (1ull << 32) | (1ull << 3));
	env_fini(&e);
}

/* Programs queue @q as a ring at @base (desc, +0x1000 driver, +0x2000 device). */
static void program_queue(struct env *e, unsigned q, uint32_t num, uint64_t base)
{
	wr(e, QSEL, q);
	wr(e, QNUM, num);
	wr(e, QDESC, (uint32_t)base);
	wr(e, QDESC + 4, (uint32_t)(base >> 32));
	wr(e, QDRIVER, (uint32_t)(base + 0x1000));
	wr(e, QDRIVER + 4, 0);
	wr(e, QDEVICE, (uint32_t)(base + 0x2000));
	wr(e, QDEVICE + 4, 0);
}

static void features_ok(struct env *e)
{
	wr(e, STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	wr(e, DRV_FEAT_SEL, 1);
	wr(e, DRV_FEAT, 1);
	wr(e, STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
}

static void test_queue_setup(void)
{
	struct env e;
	env_init(&e);
	wr(&e, QSEL, 0);
	CHECK_EQ(rd(&e, QNUM_MAX), QMAX);
	wr(&e, QSEL, NQ); /* past the last queue: nothing there */
	CHECK_EQ(rd(&e, QNUM_MAX), 0);
	CHECK_EQ(rd(&e, QREADY), 0);
	wr(&e, QNUM, 8);
	wr(&e, QREADY, 1);
	CHECK_EQ(rd(&e, QREADY), 0);

	/* before FEATURES_OK a queue cannot be made ready */
	program_queue(&e, 0, 8, 0x10000);
	CHECK_EQ(e.dev.queues[0].desc, 0x10000);
	CHECK_EQ(e.dev.queues[0].driver, 0x11000);
	CHECK_EQ(e.dev.queues[0].device, 0x12000);
	CHECK_EQ(e.dev.queues[0].size, 8);
	wr(&e, QREADY, 1);
	CHECK_EQ(rd(&e, QREADY), 0);

	features_ok(&e);
	wr(&e, QSEL, 0);
	wr(&e, QREADY, 1);
	CHECK_EQ(rd(&e, QREADY), 1);
	CHECK(e.dev.queues[0].vq != NULL);
	/* ready: the ring's size and addresses are fixed (4.2.3.2) */
	program_queue(&e, 0, 4, 0x40000);
	CHECK_EQ(e.dev.queues[0].size, 8);
	CHECK_EQ(e.dev.queues[0].desc, 0x10000);
	/* a high half is written on its own */
	program_queue(&e, 1, 8, 0x20000);
	wr(&e, QDESC + 4, 1);
	CHECK_EQ(e.dev.queues[1].desc, 0x100020000ull);
	wr(&e, QDESC + 4, 0);
	/* a QueueNum above 16 bits becomes 0, which queue setup refuses */
	wr(&e, QNUM, 0x10008);
	CHECK_EQ(e.dev.queues[1].size, 0);
	wr(&e, QNUM, 8);

	/* after DRIVER_OK, no more queues are enabled */
	wr(&e, STATUS, rd(&e, STATUS) | VIRTIO_STATUS_DRIVER_OK);
	CHECK(rd(&e, STATUS) & VIRTIO_STATUS_DRIVER_OK);
	wr(&e, QSEL, 1);
	wr(&e, QREADY, 1);
	CHECK_EQ(rd(&e, QREADY), 0);

	/* a reset returns every queue to not ready */
	wr(&e, STATUS, 0);
	CHECK_EQ(rd(&e, STATUS), 0);
	wr(&e, QSEL, 0);
	CHECK_EQ(rd(&e, QREADY), 0);
	CHECK(e.dev.queues[0].vq == NULL);
	env_fini(&e);
}

/* A queue outside guest RAM puts the device in NEEDS_RESET, not ready. */
static void test_queue_outside_ram(void)
{
	struct env e;
	env_init(&e);
	features_ok(&e);
	program_queue(&e, 0, 8, (1u << 20) - 0x1000); /* used ring past RAM */
	wr(&e, QREADY, 1);
	CHECK_EQ(rd(&e, QREADY), 0);
	CHECK(rd(&e, STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	env_fini(&e);
}

static void live(struct env *e)
{
	features_ok(e);
	for (unsigned q = 0; q < NQ; q++) {
		program_queue(e, q, 8, 0x10000 + q * 0x4000);
		wr(e, QREADY, 1);
	}
	wr(e, STATUS, rd(e, STATUS) | VIRTIO_STATUS_DRIVER_OK);
	CHECK(virtio_dev_live(&e->dev));
}

static unsigned pump(struct env *e)
{
	unsigned n = 0;
	for (int r; (r = evloop_run_once(e->v.loop, 0)) > 0;)
		n += (unsigned)r;
	return n;
}

/* A QueueNotify that reaches the bus (no ioeventfd took it, or another
 * width) is forwarded to the queue's kick; an index past the last queue
 * is ignored. */
static void test_notify(void)
{
	struct env e;
	env_init(&e);
	live(&e);
	wr(&e, QNOTIFY, 1);
	pump(&e);
	CHECK_EQ(e.notified[1], 1);
	CHECK_EQ(e.notified[0], 0);
	wr(&e, QNOTIFY, NQ);
	wr(&e, QNOTIFY, 0xffffffffu);
	pump(&e);
	CHECK_EQ(e.notified[0] + e.notified[1], 1);
	env_fini(&e);
}

/* The line is raised through the irqfd, InterruptStatus says why, an
 * acknowledge clears only the bits written, and a resample while bits are
 * pending raises the line again. */
static void test_interrupts(void)
{
	struct env e;
	env_init(&e);
	live(&e);
	drain(e.irq_fd);
	virtio_dev_config_changed(&e.dev);
	CHECK_EQ(drain(e.irq_fd), 1);
	CHECK_EQ(rd(&e, ISR), VIRTIO_ISR_CONFIG);
	CHECK_EQ(rd(&e, GENERATION), 1);
	e.dev.isr |= VIRTIO_ISR_QUEUE;
	wr(&e, ISR_ACK, VIRTIO_ISR_CONFIG);
	CHECK_EQ(rd(&e, ISR), VIRTIO_ISR_QUEUE);
	/* EOI with work pending: raised again */
	uint64_t one = 1;
	CHECK_EQ(write(e.resample_fd, &one, 8), 8);
	pump(&e);
	CHECK_EQ(drain(e.irq_fd), 1);
	wr(&e, ISR_ACK, VIRTIO_ISR_QUEUE);
	CHECK_EQ(rd(&e, ISR), 0);
	/* EOI with nothing pending: stays low */
	CHECK_EQ(write(e.resample_fd, &one, 8), 8);
	pump(&e);
	CHECK_EQ(drain(e.irq_fd), 0);
	env_fini(&e);
}

/* The config window at 0x100: any width, bounded by the device's size. */
static void test_config_window(void)
{
	struct env e;
	env_init(&e);
	uint8_t b = 0;
	CHECK(bus_read(&e.bus, BASE + CONFIG + 7, &b, 1));
	CHECK_EQ(b, 'H');
	uint16_t h = 0;
	CHECK(bus_read(&e.bus, BASE + CONFIG + 2, &h, 2));
	CHECK_EQ(h, 'C' | 'D' << 8);
	uint32_t v = 0x41414141;
	CHECK(bus_read(&e.bus, BASE + CONFIG + 6, &v, 4)); /* runs past the 8 bytes */
	CHECK_EQ(v, 0);
	v = 0x7a7a7a7a;
	CHECK(bus_write(&e.bus, BASE + CONFIG + 4, &v, 4));
	CHECK(memcmp(e.cfg, "ABCDzzzz", 8) == 0);
	CHECK(bus_write(&e.bus, BASE + CONFIG + 5, &v, 4)); /* ignored */
	CHECK(memcmp(e.cfg, "ABCDzzzz", 8) == 0);
	env_fini(&e);
}

static void test_cmdline(void)
{
	char buf[64] = "console=ttyS0";
	CHECK_EQ(virtio_mmio_cmdline(0xe0000000, 16, buf, sizeof(buf)), 0);
	CHECK_STREQ(buf, "console=ttyS0 virtio_mmio.device=4K@0xe0000000:16");
	/* exactly full (with its NUL) fits; one byte less does not */
	char small[sizeof(" virtio_mmio.device=4K@0xe0001000:17")] = "";
	CHECK_EQ(virtio_mmio_cmdline(0xe0001000, 17, small, sizeof(small)), 0);
	CHECK_STREQ(small, " virtio_mmio.device=4K@0xe0001000:17");
	char tiny[sizeof(small) - 1] = "";
	CHECK_EQ(virtio_mmio_cmdline(0xe0001000, 17, tiny, sizeof(tiny)), -ENOSPC);
}

int main(void)
{
	RUN(test_identification);
	RUN(test_features);
	RUN(test_queue_setup);
	RUN(test_queue_outside_ram);
	RUN(test_notify);
	RUN(test_interrupts);
	RUN(test_config_window);
	RUN(test_cmdline);
	return unit_done();
}
