#include "virtio/mmio.h"
#include "virtio/device_state.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "mem/layout.h"

/* 4.2.2 MMIO Device Register Layout */
enum {
	REG_MAGIC = 0x000, REG_VERSION = 0x004, REG_DEVICE_ID = 0x008, REG_VENDOR_ID = 0x00c,
	REG_DEVICE_FEATURES = 0x010, REG_DEVICE_FEATURES_SEL = 0x014,
	REG_DRIVER_FEATURES = 0x020, REG_DRIVER_FEATURES_SEL = 0x024,
	REG_QUEUE_SEL = 0x030, REG_QUEUE_NUM_MAX = 0x034, REG_QUEUE_NUM = 0x038,
	REG_QUEUE_READY = 0x044, REG_QUEUE_NOTIFY = 0x050,
	REG_INTERRUPT_STATUS = 0x060, REG_INTERRUPT_ACK = 0x064, REG_STATUS = 0x070,
	REG_QUEUE_DESC_LOW = 0x080, REG_QUEUE_DESC_HIGH = 0x084,
	REG_QUEUE_DRIVER_LOW = 0x090, REG_QUEUE_DRIVER_HIGH = 0x094,
	REG_QUEUE_DEVICE_LOW = 0x0a0, REG_QUEUE_DEVICE_HIGH = 0x0a4,
	REG_SHM_SEL = 0x0ac, REG_SHM_LEN_LOW = 0x0b0, REG_SHM_LEN_HIGH = 0x0b4,
	REG_SHM_BASE_LOW = 0x0b8, REG_SHM_BASE_HIGH = 0x0bc,
	REG_CONFIG_GENERATION = 0x0fc, REG_CONFIG = 0x100,
};

#define MMIO_MAGIC 0x74726976u /* "virt" */
#define MMIO_VENDOR 0x4b564d52u /* "KVMR" */

struct virtio_mmio {
	struct virtio_dev *d;
	uint64_t base;
	unsigned gsi;
	uint32_t device_features_sel, driver_features_sel, queue_sel;
	struct virtio_intx irq;
	unsigned kicks_attached;
};

static struct virtio_queue *selected(struct virtio_mmio *m)
{
	return m->queue_sel < m->d->nr_queues ? &m->d->queues[m->queue_sel] : NULL;
}

static void raise_irq(struct virtio_mmio *m)
{
	uint64_t one = 1;
	if (m->irq.fd >= 0 && write(m->irq.fd, &one, sizeof(one)) < 0)
		log_ratelimited(m->d->plat->log, &m->d->rl, m->d->name,
				"raising the interrupt: %s", strerror(errno));
}

static void signal_any(struct virtio_dev *d, unsigned q)
{
	(void)q;
	raise_irq(d->transport);
}

static void signal_config(struct virtio_dev *d)
{
	raise_irq(d->transport);
}

static int kick_attach(struct virtio_dev *d, unsigned q, int fd, bool assign)
{
	struct virtio_mmio *m = d->transport;
	return d->plat->ioeventfd(d->plat->cookie, fd, m->base + REG_QUEUE_NOTIFY, 4,
				  true, q, assign);
}

static const struct virtio_transport_ops mmio_tops = {
	.signal_queue = signal_any, .signal_config = signal_config, .kick_attach = kick_attach,
};

/* At the guest's EOI the line drops; raise it again while work is pending. */
static void on_resample(void *cookie, uint32_t events)
{
	struct virtio_mmio *m = cookie;
	uint64_t n;
	if (read(m->irq.resample_fd, &n, sizeof(n)) != sizeof(n))
		return;
	pthread_mutex_lock(&m->d->lock);
	if (m->d->isr)
		raise_irq(m);
	pthread_mutex_unlock(&m->d->lock);
}

static uint32_t read_reg(struct virtio_mmio *m, uint64_t off)
{
	struct virtio_dev *d = m->d;
	struct virtio_queue *q = selected(m);
	switch (off) {
	case REG_MAGIC: return MMIO_MAGIC;
	case REG_VERSION: return 2;
	case REG_DEVICE_ID: return d->device_id;
	case REG_VENDOR_ID: return MMIO_VENDOR;
	case REG_DEVICE_FEATURES: return virtio_dev_features_word(d, m->device_features_sel);
	case REG_QUEUE_NUM_MAX: return q ? q->max_size : 0;
	case REG_QUEUE_READY: return q ? q->enabled : 0;
	case REG_INTERRUPT_STATUS: return d->isr;
	case REG_STATUS: return d->status;
	case REG_SHM_LEN_LOW: case REG_SHM_LEN_HIGH:
		return 0xffffffffu; /* no shared memory regions */
	case REG_CONFIG_GENERATION: return d->config_generation;
	default: return 0;
	}
}

static void set_addr(uint64_t *field, bool high, uint32_t v)
{
	*field = high ? (*field & 0xffffffffull) | ((uint64_t)v << 32)
		      : (*field & ~0xffffffffull) | v;
}

static void write_queue_reg(struct virtio_mmio *m, uint64_t off, uint32_t v)
{
	struct virtio_queue *q = selected(m);
	if (!q)
		return;
	if (off == REG_QUEUE_READY) {
		/* 3.1.1: queues are set up between FEATURES_OK and DRIVER_OK */
		bool setup_phase = (m->d->status & VIRTIO_STATUS_FEATURES_OK) &&
				   !(m->d->status & VIRTIO_STATUS_DRIVER_OK);
		if (v && !q->enabled && setup_phase)
			virtio_dev_queue_enable(m->d, m->queue_sel);
		else if (!v)
			q->enabled = false; /* 4.2.3.2: the driver stops using it */
		return;
	}
	/* 4.2.3.2: the queue is configured before QueueReady is set; once it
	 * has been (q->vq holds the rings validated then), its size and
	 * addresses stay as they were until the device is reset, even after
	 * QueueReady=0: a backend given the validated rings (vhost) and the
	 * registers must never disagree. */
	if (q->enabled || q->vq)
		return;
	switch (off) {
	case REG_QUEUE_NUM: q->size = (uint16_t)(v > 0xffff ? 0 : v); break;
	case REG_QUEUE_DESC_LOW: case REG_QUEUE_DESC_HIGH:
		set_addr(&q->desc, off == REG_QUEUE_DESC_HIGH, v); break;
	case REG_QUEUE_DRIVER_LOW: case REG_QUEUE_DRIVER_HIGH:
		set_addr(&q->driver, off == REG_QUEUE_DRIVER_HIGH, v); break;
	case REG_QUEUE_DEVICE_LOW: case REG_QUEUE_DEVICE_HIGH:
		set_addr(&q->device, off == REG_QUEUE_DEVICE_HIGH, v); break;
	}
}

static void write_reg(struct virtio_mmio *m, uint64_t off, uint32_t v)
{
	struct virtio_dev *d = m->d;
	uint64_t one = 1;
	switch (off) {
	case REG_DEVICE_FEATURES_SEL: m->device_features_sel = v; break;
	case REG_DRIVER_FEATURES: virtio_dev_set_driver_features(d, m->driver_features_sel, v); break;
	case REG_DRIVER_FEATURES_SEL: m->driver_features_sel = v; break;
	case REG_QUEUE_SEL: m->queue_sel = v; break;
	case REG_QUEUE_NOTIFY:
		/* Normally caught by the ioeventfd; reaching here means it is not
		 * attached (or was written with another width): forward it. */
		if (v < d->nr_queues && write(d->queues[v].kick_fd, &one, sizeof(one)) < 0)
			log_ratelimited(d->plat->log, &d->rl, d->name, "forwarding a kick: %s",
					strerror(errno));
		break;
	case REG_INTERRUPT_ACK: d->isr &= (uint8_t)~v; break;
	case REG_STATUS: virtio_dev_set_status(d, (uint8_t)v); break;
	case REG_QUEUE_NUM: case REG_QUEUE_READY:
	case REG_QUEUE_DESC_LOW: case REG_QUEUE_DESC_HIGH:
	case REG_QUEUE_DRIVER_LOW: case REG_QUEUE_DRIVER_HIGH:
	case REG_QUEUE_DEVICE_LOW: case REG_QUEUE_DEVICE_HIGH:
		write_queue_reg(m, off, v);
		break;
	default:
		break; /* read-only or reserved: ignored */
	}
}

static void mmio_read(void *cookie, uint64_t off, void *data, unsigned len)
{
	struct virtio_mmio *m = cookie;
	pthread_mutex_lock(&m->d->lock);
	if (off >= REG_CONFIG) {
		virtio_dev_config_read(m->d, (uint32_t)(off - REG_CONFIG), data, len);
	} else if (len == 4 && off % 4 == 0) {
		uint32_t v = read_reg(m, off);
		memcpy(data, &v, 4);
	} else {
		memset(data, 0, len); /* 4.2.2.2: registers are 32-bit only */
	}
	pthread_mutex_unlock(&m->d->lock);
}

static void mmio_write(void *cookie, uint64_t off, const void *data, unsigned len)
{
	struct virtio_mmio *m = cookie;
	pthread_mutex_lock(&m->d->lock);
	if (off >= REG_CONFIG) {
		virtio_dev_config_write(m->d, (uint32_t)(off - REG_CONFIG), data, len);
	} else if (len == 4 && off % 4 == 0) {
		uint32_t v;
		memcpy(&v, data, 4);
		write_reg(m, off, v);
	}
	pthread_mutex_unlock(&m->d->lock);
}

static const struct bus_ops mmio_ops = { .read = mmio_read, .write = mmio_write };


int virtio_mmio_create(struct bus *mmio, uint64_t base, unsigned gsi,
		       struct virtio_dev *d, struct virtio_mmio **out)
{
	struct virtio_mmio *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->d = d;
	m->base = base;
	m->gsi = gsi;
	virtio_intx_init(&m->irq);
	d->tops = &mmio_tops;
	d->transport = m;
	int rc = virtio_intx_wire(d, &m->irq, gsi, on_resample, m);
	for (unsigned q = 0; rc == 0 && q < d->nr_queues && d->plat->ioeventfd; q++) {
		rc = kick_attach(d, q, d->queues[q].kick_fd, true);
		if (rc == 0)
			m->kicks_attached++;
	}
	if (rc == 0)
		rc = bus_register(mmio, base, LAYOUT_VIRTIO_MMIO_SLOT, &mmio_ops, m, d->name);
	if (rc < 0) {
		log_err(d->plat->log, d->name, "virtio-mmio at 0x%llx gsi %u: %s",
			(unsigned long long)base, gsi, strerror(-rc));
		virtio_mmio_destroy(m);
		return rc;
	}
	*out = m;
	return 0;
}

void virtio_mmio_destroy(struct virtio_mmio *m)
{
	if (!m)
		return;
	for (unsigned q = 0; q < m->kicks_attached; q++)
		kick_attach(m->d, q, m->d->queues[q].kick_fd, false);
	virtio_intx_unwire(m->d, &m->irq);
	m->d->tops = NULL;
	m->d->transport = NULL;
	free(m);
}

int virtio_mmio_cmdline(uint64_t base, unsigned gsi, char *buf, size_t cap)
{
	size_t used = strlen(buf);
	int n = snprintf(buf + used, cap - used, " virtio_mmio.device=4K@0x%llx:%u",
			 (unsigned long long)base, gsi);
	return (n < 0 || (size_t)n >= cap - used) ? -ENOSPC : 0;
}

/* ---- saved state (see mmio.h) ---- */

void virtio_mmio_save(struct virtio_mmio *m, struct state_w *w)
{
	pthread_mutex_lock(&m->d->lock);
	state_put_u32(w, m->device_features_sel);
	state_put_u32(w, m->driver_features_sel);
	state_put_u32(w, m->queue_sel);
	virtio_dev_save(m->d, w);
	pthread_mutex_unlock(&m->d->lock);
}

int virtio_mmio_load(struct virtio_mmio *m, struct state_r *r)
{
	struct virtio_dev *d = m->d;
	struct virtio_dev_state *st = calloc(1, sizeof(*st));
	if (!st) {
		state_fail(r, "out of memory");
		return state_r_finish(r);
	}
	pthread_mutex_lock(&d->lock);
	struct state_r check = *r;
	for (int i = 0; i < 3; i++)
		(void)state_get_u32(&check); /* any selector value is a register's */
	virtio_dev_load_check(d, &check, 0, st);
	int rc = state_r_finish(&check);
	if (rc < 0) {
		*r = check;
	} else {
		m->device_features_sel = state_get_u32(r);
		m->driver_features_sel = state_get_u32(r);
		m->queue_sel = state_get_u32(r);
		rc = virtio_dev_load_apply(d, r, 0);
		if (d->isr)
			raise_irq(m);
		int fin = state_r_finish(r);
		rc = rc < 0 ? rc : fin;
	}
	pthread_mutex_unlock(&d->lock);
	free(st);
	return rc;
}

struct virtio_dev *virtio_mmio_dev(const struct virtio_mmio *m)
{
	return m->d;
}
