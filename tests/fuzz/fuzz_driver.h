/* A hostile virtio driver for the device fuzzers (fuzz_net, fuzz_balloon):
 * guest RAM in two regions with a gap, the real event loop, a transport
 * that counts interrupts, the driver's side of 3.1.1 with the features the
 * input asks for, and split rings the input writes descriptor by
 * descriptor. Each fuzzer decodes its input into fdrv_op() calls and adds
 * its own device operations.
 *
 * Guest RAM: A = [0, 2 MiB) and B = [4 MiB, 6 MiB), each its own heap
 * allocation of exactly that size (ASan reports an access past either),
 * zeroed for every input.
 * Queue q's rings: descriptors at FDRV_RING(q), driver area +0x400, device
 * area +0x800, FDRV_QSIZE entries. Buffers may be anywhere: addresses come
 * from the input as they are.
 *
 * Operations (FDRV_OP_SIZE bytes each, little-endian):
 *   0      kind (see enum fdrv_kind; taken modulo FDRV_NR_KINDS, kinds
 *          from FDRV_DEV_A on are the device's)
 *   1      queue (modulo the device's queue count)
 *   2      descriptor index / head (modulo FDRV_QSIZE)
 *   3      descriptor flags (NEXT 1, WRITE 2, INDIRECT 4) / avail flags
 *   4..5   next / new avail idx
 *   6..7   aux (device-defined)
 *   8..11  addr (u32 gpa)
 *   12..15 len (u32) */
#ifndef KVMRUN_FUZZ_DRIVER_H
#define KVMRUN_FUZZ_DRIVER_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "mem/guest_mem.h"
#include "virtio/device.h"
#include "lib/evloop.h"
#include "lib/log.h"

#define FDRV_CHECK(name, c) do { if (!(c)) { \
	fprintf(stderr, "%s: invariant failed: %s (line %d)\n", name, #c, __LINE__); \
	abort(); } } while (0)

#define FDRV_RAM_A 0x0ull
#define FDRV_RAM_B 0x400000ull
#define FDRV_RAM_SIZE 0x200000ull  /* each region */
#define FDRV_QSIZE 16u
#define FDRV_MAX_QUEUES 9u
#define FDRV_RING(q) (0x1000ull + (q) * 0x1000ull)
#define FDRV_OP_SIZE 16u
#define FDRV_MAX_OPS 256u

enum fdrv_kind {
	FDRV_DESC,      /* descriptor idx of queue q := {addr, len, flags, next} */
	FDRV_AVAIL,     /* offer head idx on queue q (avail idx + 1, release) */
	FDRV_KICK,      /* signal queue q's kick eventfd, run the event loop */
	FDRV_RAW,       /* aux + 1 le32 words at gpa len (while in RAM): addr,
			 * addr + next, addr + 2 * next, ... (page-number arrays) */
	FDRV_AVAIL_RAW, /* avail flags := byte 3, avail idx := next (hostile jumps) */
	FDRV_RESET,     /* device status 0, then the driver initialises it again */
	FDRV_PUMP,      /* run the event loop until it is idle */
	FDRV_DEV_A,     /* device-defined */
	FDRV_DEV_B,
	FDRV_DEV_C,
	FDRV_NR_KINDS,
};

struct fdrv_op {
	uint8_t kind, q, idx, flags;
	uint16_t next, aux;
	uint32_t addr, len;
};

struct fdrv {
	const char *name;
	uint8_t *ram_a, *ram_b;
	struct guest_mem mem;
	struct evloop *loop;
	struct logger lg;
	struct virtio_platform plat;
	struct virtio_dev *d;
	uint64_t features;          /* what the driver asks for */
	uint16_t avail_idx[FDRV_MAX_QUEUES];
	unsigned queue_signals, config_signals;
	bool live;                  /* DRIVER_OK was accepted */
};

/* Guest RAM (allocated once per process, zeroed per input), the event
 * loop and the platform. */
void fdrv_init(struct fdrv *f, const char *name);
/* Attaches the counting transport to @d and runs the driver's
 * initialisation with @features; returns whether the device went live. */
bool fdrv_attach(struct fdrv *f, struct virtio_dev *d, uint64_t features);
void fdrv_fini(struct fdrv *f);

/* Decodes the op at @p. */
struct fdrv_op fdrv_decode(const uint8_t *p);
/* Runs a generic op (kinds below FDRV_DEV_A); returns false for device kinds. */
bool fdrv_op(struct fdrv *f, const struct fdrv_op *op);
/* Runs the event loop until idle (bounded). */
void fdrv_pump(struct fdrv *f);

/* Host pointer for [gpa, gpa+len) of guest RAM, or NULL. */
void *fdrv_gpa(struct fdrv *f, uint64_t gpa, uint64_t len);

#endif
