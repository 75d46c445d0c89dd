/* See fuzz_driver.h. */
#include "fuzz_driver.h"

#include <string.h>
#include <unistd.h>

#define CHECK(c) FDRV_CHECK(f->name, c)

static void on_signal_queue(struct virtio_dev *d, unsigned q)
{
	struct fdrv *f = d->transport;
	CHECK(q < d->nr_queues);
	f->queue_signals++;
}

static void on_signal_config(struct virtio_dev *d)
{
	struct fdrv *f = d->transport;
	f->config_signals++;
}

static const struct virtio_transport_ops tops = {
	.signal_queue = on_signal_queue,
	.signal_config = on_signal_config,
};

void fdrv_init(struct fdrv *f, const char *name)
{
	static uint8_t *ram_a, *ram_b; /* once per process */
	memset(f, 0, sizeof(*f));
	f->name = name;
	if (!ram_a) {
		ram_a = malloc(FDRV_RAM_SIZE);
		ram_b = malloc(FDRV_RAM_SIZE);
		CHECK(ram_a && ram_b);
	}
	f->ram_a = ram_a;
	f->ram_b = ram_b;
	/* zeroed per input, so an input does the same whatever ran before */
	memset(ram_a, 0, FDRV_RAM_SIZE);
	memset(ram_b, 0, FDRV_RAM_SIZE);
	CHECK(gmem_add_region(&f->mem, FDRV_RAM_A, FDRV_RAM_SIZE, ram_a, -1, 0) == 0);
	CHECK(gmem_add_region(&f->mem, FDRV_RAM_B, FDRV_RAM_SIZE, ram_b, -1, 0) == 0);
	f->mem.page_size = 4096;
	CHECK(evloop_create(&f->loop) == 0);
	f->lg = (struct logger){ .level = LOG_ERROR, .fd = -1 };
	f->plat = (struct virtio_platform){ .mem = &f->mem, .loop = f->loop, .log = &f->lg };
}

void fdrv_fini(struct fdrv *f)
{
	evloop_destroy(f->loop);
}

void *fdrv_gpa(struct fdrv *f, uint64_t gpa, uint64_t len)
{
	return gmem_ptr(&f->mem, gpa, len);
}

void fdrv_pump(struct fdrv *f)
{
	for (int i = 0; i < 32 && evloop_run_once(f->loop, 0) > 0; i++)
		;
}

/* 3.1.1 up to DRIVER_OK, every queue a ring of FDRV_QSIZE at FDRV_RING(q). */
static void driver_init(struct fdrv *f)
{
	struct virtio_dev *d = f->d;
	memset(f->avail_idx, 0, sizeof(f->avail_idx));
	pthread_mutex_lock(&d->lock);
	virtio_dev_set_status(d, 0);
	virtio_dev_set_status(d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	uint64_t feat = f->features | 1ull << VIRTIO_F_VERSION_1;
	virtio_dev_set_driver_features(d, 0, (uint32_t)feat);
	virtio_dev_set_driver_features(d, 1, (uint32_t)(feat >> 32));
	virtio_dev_set_status(d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
				 VIRTIO_STATUS_FEATURES_OK);
	if (d->status & VIRTIO_STATUS_FEATURES_OK) {
		for (unsigned q = 0; q < d->nr_queues && q < FDRV_MAX_QUEUES; q++) {
			uint64_t base = FDRV_RING(q);
			memset(f->ram_a + base, 0, 0x1000);
			d->queues[q].size = FDRV_QSIZE;
			d->queues[q].desc = base;
			d->queues[q].driver = base + 0x400;
			d->queues[q].device = base + 0x800;
			CHECK(virtio_dev_queue_enable(d, q));
		}
		virtio_dev_set_status(d, d->status | VIRTIO_STATUS_DRIVER_OK);
	}
	f->live = virtio_dev_live(d);
	pthread_mutex_unlock(&d->lock);
}

bool fdrv_attach(struct fdrv *f, struct virtio_dev *d, uint64_t features)
{
	CHECK(d->nr_queues <= FDRV_MAX_QUEUES);
	f->d = d;
	f->features = features;
	d->tops = &tops;
	d->transport = f;
	driver_init(f);
	fdrv_pump(f);
	return f->live;
}

struct fdrv_op fdrv_decode(const uint8_t *p)
{
	struct fdrv_op op;
	op.kind = (uint8_t)(p[0] % FDRV_NR_KINDS);
	op.q = p[1];
	op.idx = (uint8_t)(p[2] % FDRV_QSIZE);
	op.flags = p[3];
	memcpy(&op.next, p + 4, 2);
	memcpy(&op.aux, p + 6, 2);
	memcpy(&op.addr, p + 8, 4);
	memcpy(&op.len, p + 12, 4);
	return op;
}

bool fdrv_op(struct fdrv *f, const struct fdrv_op *op)
{
	struct virtio_dev *d = f->d;
	unsigned q = op->q % d->nr_queues;
	uint8_t *ring = f->ram_a + FDRV_RING(q);
	switch (op->kind) {
	case FDRV_DESC: {
		uint64_t addr = op->addr;
		uint16_t flags = op->flags & 7, next = op->next;
		uint8_t *p = ring + 16u * op->idx;
		memcpy(p, &addr, 8);
		memcpy(p + 8, &op->len, 4);
		memcpy(p + 12, &flags, 2);
		memcpy(p + 14, &next, 2);
		return true;
	}
	case FDRV_AVAIL: {
		uint16_t head = op->idx, idx = f->avail_idx[q];
		memcpy(ring + 0x400 + 4 + 2u * (idx % FDRV_QSIZE), &head, 2);
		f->avail_idx[q] = ++idx;
		__atomic_store_n((uint16_t *)(ring + 0x400 + 2), idx, __ATOMIC_RELEASE);
		return true;
	}
	case FDRV_KICK: {
		uint64_t one = 1;
		CHECK(write(d->queues[q].kick_fd, &one, sizeof(one)) == sizeof(one));
		fdrv_pump(f);
		return true;
	}
	case FDRV_RAW: /* aux + 1 words: addr, addr + next, addr + 2 * next, ... */
		for (uint32_t i = 0; i <= op->aux; i++) {
			uint32_t v = op->addr + i * (uint32_t)op->next;
			void *p = fdrv_gpa(f, (uint64_t)op->len + 4ull * i, 4);
			if (!p)
				break;
			memcpy(p, &v, 4);
		}
		return true;
	case FDRV_AVAIL_RAW: {
		uint16_t flags = op->flags & 1;
		memcpy(ring + 0x400, &flags, 2);
		f->avail_idx[q] = op->next;
		__atomic_store_n((uint16_t *)(ring + 0x400 + 2), op->next, __ATOMIC_RELEASE);
		memcpy(ring + 0x400 + 4 + 2 * FDRV_QSIZE, &op->aux, 2); /* used_event */
		return true;
	}
	case FDRV_RESET:
		driver_init(f);
		fdrv_pump(f);
		return true;
	case FDRV_PUMP:
		fdrv_pump(f);
		return true;
	default:
		return false;
	}
}
