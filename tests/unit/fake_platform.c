/* See fake_platform.h. */
#include "fake_platform.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "unit.h"

uint8_t *fake_ram_create(struct guest_mem *mem, size_t size)
{
	uint8_t *ram = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(ram != MAP_FAILED);
	if (ram == MAP_FAILED) {
		perror("fake guest RAM");
		exit(1);
	}
	CHECK_EQ(gmem_add_region(mem, 0, size, ram, -1, 0), 0);
	return ram;
}

void fake_ram_destroy(uint8_t *ram, size_t size)
{
	munmap(ram, size);
}

static void on_signal_queue(struct virtio_dev *d, unsigned q)
{
	(void)q;
	((struct fake_vplat *)d->transport)->queue_signals++;
}

static void on_signal_config(struct virtio_dev *d)
{
	((struct fake_vplat *)d->transport)->config_signals++;
}

static const struct virtio_transport_ops fake_tops = {
	.signal_queue = on_signal_queue,
	.signal_config = on_signal_config,
};

void fake_vplat_init(struct fake_vplat *v, size_t ram_size, bool quiet)
{
	memset(v, 0, sizeof(*v));
	v->ram_size = ram_size;
	v->ram = fake_ram_create(&v->mem, ram_size);
	CHECK_EQ(evloop_create(&v->loop), 0);
	log_init(&v->lg, LOG_ERROR, "test");
	if (quiet)
		v->lg.fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	v->plat = (struct virtio_platform){ .mem = &v->mem, .loop = v->loop, .log = &v->lg };
}

void fake_vplat_fini(struct fake_vplat *v)
{
	evloop_destroy(v->loop);
	if (v->lg.fd > 2)
		close(v->lg.fd);
	fake_ram_destroy(v->ram, v->ram_size);
}

void fake_vplat_attach(struct fake_vplat *v, struct virtio_dev *d)
{
	d->tops = &fake_tops;
	d->transport = v;
}

void fake_vplat_detach(struct virtio_dev *d)
{
	d->tops = NULL;
	d->transport = NULL;
}

void fake_vring_desc(uint8_t *ram, uint64_t desc_gpa, uint16_t i, uint64_t addr, uint32_t len,
		     uint16_t flags, uint16_t next)
{
	uint8_t *p = ram + desc_gpa + 16u * i;
	memcpy(p, &addr, 8);
	memcpy(p + 8, &len, 4);
	memcpy(p + 12, &flags, 2);
	memcpy(p + 14, &next, 2);
}

uint8_t fake_driver_features(struct virtio_dev *d, uint64_t features)
{
	virtio_dev_set_status(d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	virtio_dev_set_driver_features(d, 0, (uint32_t)features);
	virtio_dev_set_driver_features(d, 1, (uint32_t)(features >> 32));
	virtio_dev_set_status(d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
				 VIRTIO_STATUS_FEATURES_OK);
	return d->status;
}

bool fake_driver_queue(struct virtio_dev *d, unsigned q, uint16_t size, uint64_t base)
{
	d->queues[q].size = size;
	d->queues[q].desc = base;
	d->queues[q].driver = base + 0x1000;
	d->queues[q].device = base + 0x2000;
	return virtio_dev_queue_enable(d, q);
}

void fake_vplat_kick(struct virtio_dev *d, unsigned q)
{
	uint64_t one = 1;
	CHECK_EQ(write(d->queues[q].kick_fd, &one, sizeof(one)), 8);
}

uint64_t fake_vplat_kicks_pending(struct virtio_dev *d, unsigned q)
{
	uint64_t n = 0;
	if (read(d->queues[q].kick_fd, &n, sizeof(n)) != sizeof(n))
		return 0;
	return n;
}

uint16_t fake_vring_fill(uint8_t *ram, uint64_t desc_gpa, uint16_t size, uint16_t head,
			 unsigned n)
{
	uint8_t *avail = ram + desc_gpa + 0x1000;
	uint16_t idx;
	memcpy(&idx, avail + 2, 2);
	for (unsigned i = 0; i < n; i++, idx++)
		memcpy(avail + 4 + 2u * (idx % size), &head, 2);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	memcpy(avail + 2, &idx, 2);
	return idx;
}
