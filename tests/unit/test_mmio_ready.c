/* The virtio-mmio transport (virtio/mmio.c) through its register window on
 * a bus, over the fake platform: once QueueReady has been set, the queue's
 * size and ring addresses stay as validated until the device is reset,
 * and what a backend is handed (vq_get_rings) is what was validated. */
#include <string.h>

#include "devices/bus.h"
#include "fake_platform.h"
#include "unit.h"
#include "virtio/mmio.h"
#include "virtio/queue.h"

#define RAM_SIZE (1u << 20)
#define BASE 0xd0000000ull

/* 4.2.2 registers */
#define R_STATUS 0x070
#define R_DRV_FEAT 0x020
#define R_DRV_FEAT_SEL 0x024
#define R_QSEL 0x030
#define R_QNUM_MAX 0x034
#define R_QNUM 0x038
#define R_QREADY 0x044
#define R_QDESC_LO 0x080
#define R_QDESC_HI 0x084
#define R_QDRV_LO 0x090
#define R_QDEV_LO 0x0a0

struct rig {
	struct fake_vplat v;
	struct bus mmio;
	struct virtio_dev d;
	struct virtio_dev_ops ops;
	struct virtio_mmio *m;
	unsigned notifies;
};

static void on_notify(struct virtio_dev *d, unsigned q)
{
	((struct rig *)d->priv)->notifies++;
}

static void on_reset(struct virtio_dev *d)
{
	(void)d;
}

static void rig_init(struct rig *r)
{
	memset(r, 0, sizeof(*r));
	fake_vplat_init(&r->v, RAM_SIZE, true);
	bus_init(&r->mmio, "mmio");
	r->ops = (struct virtio_dev_ops){ .notify = on_notify, .reset = on_reset };
	CHECK_EQ(virtio_dev_init(&r->d, "test", 42, &r->ops, r, &r->v.plat, 2, 64), 0);
	CHECK_EQ(virtio_mmio_create(&r->mmio, BASE, 5, &r->d, &r->m), 0);
}

static void rig_fini(struct rig *r)
{
	virtio_mmio_destroy(r->m);
	virtio_dev_uninit(&r->d);
	fake_vplat_fini(&r->v);
}

static void wr(struct rig *r, uint64_t reg, uint32_t v)
{
	CHECK(bus_write(&r->mmio, BASE + reg, &v, 4));
}

static uint32_t rd(struct rig *r, uint64_t reg)
{
	uint32_t v = 0;
	CHECK(bus_read(&r->mmio, BASE + reg, &v, 4));
	return v;
}

/* ACKNOWLEDGE, DRIVER, VERSION_1, FEATURES_OK (3.1.1). */
static void driver_begin(struct rig *r)
{
	wr(r, R_STATUS, 0);
	wr(r, R_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	wr(r, R_DRV_FEAT_SEL, 1);
	wr(r, R_DRV_FEAT, 1); /* VIRTIO_F_VERSION_1 */
	wr(r, R_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
			VIRTIO_STATUS_FEATURES_OK);
	CHECK(rd(r, R_STATUS) & VIRTIO_STATUS_FEATURES_OK);
}

static void queue_program(struct rig *r, uint32_t size, uint64_t base)
{
	wr(r, R_QSEL, 0);
	wr(r, R_QNUM, size);
	wr(r, R_QDESC_LO, (uint32_t)base);
	wr(r, R_QDESC_HI, 0);
	wr(r, R_QDRV_LO, (uint32_t)(base + 0x1000));
	wr(r, R_QDEV_LO, (uint32_t)(base + 0x2000));
}

static void check_rings(struct rig *r, uint32_t size, uint64_t base)
{
	struct vq_rings vr;
	CHECK(r->d.queues[0].vq != NULL);
	if (!r->d.queues[0].vq)
		return;
	CHECK(vq_get_rings(r->d.queues[0].vq, &vr));
	CHECK_EQ(vr.size, size);
	CHECK(vr.desc == fake_gpa(&r->v, base));
	CHECK(vr.avail == fake_gpa(&r->v, base + 0x1000));
	CHECK(vr.used == fake_gpa(&r->v, base + 0x2000));
	/* and the registers agree with them */
	CHECK_EQ(r->d.queues[0].size, size);
	CHECK_EQ(r->d.queues[0].desc, base);
	CHECK_EQ(r->d.queues[0].driver, base + 0x1000);
	CHECK_EQ(r->d.queues[0].device, base + 0x2000);
}

/* QueueReady=1 validates the rings; after QueueReady=0 the driver cannot
 * move them or change the size (here: to a size above the maximum and
 * rings outside RAM) without a reset. */
static void test_queue_frozen_once_ready(void)
{
	struct rig r;
	rig_init(&r);
	CHECK_EQ(rd(&r, R_QNUM_MAX), 64);
	driver_begin(&r);
	queue_program(&r, 16, 0x10000);
	wr(&r, R_QREADY, 1);
	CHECK_EQ(rd(&r, R_QREADY), 1);
	check_rings(&r, 16, 0x10000);

	wr(&r, R_QREADY, 0);
	CHECK_EQ(rd(&r, R_QREADY), 0); /* 4.2.2: reads back what was written */
	queue_program(&r, 4096, 0xf0000000ull);
	check_rings(&r, 16, 0x10000);  /* nothing moved */
	/* ready again while still setting up: the same, re-validated rings */
	wr(&r, R_QREADY, 1);
	CHECK_EQ(rd(&r, R_QREADY), 1);
	check_rings(&r, 16, 0x10000);

	wr(&r, R_STATUS, rd(&r, R_STATUS) | VIRTIO_STATUS_DRIVER_OK);
	CHECK(virtio_dev_live(&r.d));
	/* live: ready=0, new geometry, ready=1: still the validated rings */
	wr(&r, R_QREADY, 0);
	queue_program(&r, 32, 0x40000);
	wr(&r, R_QREADY, 1);
	check_rings(&r, 16, 0x10000);
	CHECK(virtio_dev_live(&r.d));

	/* a reset frees the queue: the driver may program it anew */
	driver_begin(&r);
	CHECK(r.d.queues[0].vq == NULL);
	queue_program(&r, 32, 0x40000);
	wr(&r, R_QREADY, 1);
	check_rings(&r, 32, 0x40000);
	rig_fini(&r);
}

/* A queue enabled with a bad geometry is refused (NEEDS_RESET) and hands
 * nothing to a backend. */
static void test_queue_invalid(void)
{
	struct rig r;
	rig_init(&r);
	driver_begin(&r);
	queue_program(&r, 3, 0x10000);
	wr(&r, R_QREADY, 1);
	CHECK_EQ(rd(&r, R_QREADY), 0);
	CHECK(r.d.queues[0].vq == NULL);
	CHECK(rd(&r, R_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	struct vq q;
	vq_reset(&q);
	struct vq_rings vr;
	CHECK(!vq_get_rings(&q, &vr));
	rig_fini(&r);
}

int main(void)
{
	RUN(test_queue_frozen_once_ready);
	RUN(test_queue_invalid);
	return unit_done();
}
