/* Shared set-up for the unit tests that run a virtio device without KVM:
 * guest RAM in an anonymous buffer registered at gpa 0, the real event
 * loop, a logger and a virtio_platform over them, and a fake transport
 * that counts the interrupts the device raises. Split-ring layout helpers
 * write descriptors the way a driver would. */
#ifndef KVMRUN_TESTS_FAKE_PLATFORM_H
#define KVMRUN_TESTS_FAKE_PLATFORM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mem/guest_mem.h"
#include "virtio/device.h"
#include "lib/evloop.h"
#include "lib/log.h"

/* Maps @size bytes of zeroed anonymous memory and registers it in @mem as
 * RAM at gpa 0; exits the test on failure. */
uint8_t *fake_ram_create(struct guest_mem *mem, size_t size);
void fake_ram_destroy(uint8_t *ram, size_t size);

struct fake_vplat {
	uint8_t *ram;
	size_t ram_size;
	struct guest_mem mem;
	struct evloop *loop;
	struct logger lg;
	struct virtio_platform plat; /* mem, loop and log; no KVM hooks */
	unsigned queue_signals, config_signals; /* counted by the fake transport */
};

/* Fills @v: RAM of @ram_size, an event loop, a logger at LOG_ERROR (written
 * to /dev/null when @quiet) and plat over them. */
void fake_vplat_init(struct fake_vplat *v, size_t ram_size, bool quiet);
void fake_vplat_fini(struct fake_vplat *v);

/* Makes @v the transport of @d: interrupts bump v's counters. */
void fake_vplat_attach(struct fake_vplat *v, struct virtio_dev *d);
/* Detaches @d again (before a device teardown that may signal). */
void fake_vplat_detach(struct virtio_dev *d);

static inline uint8_t *fake_gpa(const struct fake_vplat *v, uint64_t gpa)
{
	return v->ram + gpa;
}

#define FAKE_VRING_F_NEXT 1u
#define FAKE_VRING_F_WRITE 2u

/* Writes descriptor @i of the table at @desc_gpa. */
void fake_vring_desc(uint8_t *ram, uint64_t desc_gpa, uint16_t i, uint64_t addr, uint32_t len,
		     uint16_t flags, uint16_t next);

/* The driver's side of 3.1.1 up to FEATURES_OK: ACKNOWLEDGE, DRIVER, the
 * 64 feature bits @features, FEATURES_OK. Returns the status read back.
 * d->lock held. */
uint8_t fake_driver_features(struct virtio_dev *d, uint64_t features);

/* Configures queue @q as a split ring of @size entries (descriptors at
 * @base, driver area at +0x1000, device area at +0x2000) and enables it;
 * returns what virtio_dev_queue_enable() says. d->lock held. */
bool fake_driver_queue(struct virtio_dev *d, unsigned q, uint16_t size, uint64_t base);

/* Signals queue @q's kick eventfd once. */
void fake_vplat_kick(struct virtio_dev *d, unsigned q);

/* Reads and clears queue @q's kick eventfd: the kicks pending (0: none),
 * e.g. a device's re-kick of itself. */
uint64_t fake_vplat_kicks_pending(struct virtio_dev *d, unsigned q);

/* Makes descriptor @head available @n times in the split ring at @desc_gpa
 * (laid out as by fake_driver_queue(), @size entries), as a driver that
 * keeps its ring full would; returns the new avail idx. */
uint16_t fake_vring_fill(uint8_t *ram, uint64_t desc_gpa, uint16_t size, uint16_t head,
			 unsigned n);

#endif
