/* The port-I/O and MMIO buses: address ranges mapped to device handlers.
 *
 * Registration happens during VM set-up only; once vCPUs run, a bus is
 * read-only and lookups take no lock (each device serialises its own
 * state). Handlers get the offset into their range and the access width;
 * reads of unmapped addresses return all-ones, writes to them are dropped. */
#ifndef KVMRUN_BUS_H
#define KVMRUN_BUS_H

#include <stdbool.h>
#include <stdint.h>

struct bus_ops {
	/* @data has @len bytes (1, 2, 4 or 8); fill it on read. */
	void (*read)(void *cookie, uint64_t offset, void *data, unsigned len);
	void (*write)(void *cookie, uint64_t offset, const void *data, unsigned len);
};

#define BUS_MAX_RANGES 64

struct bus_range {
	uint64_t base, len;
	const struct bus_ops *ops;
	void *cookie;
	const char *name;
};

struct bus {
	const char *name; /* "pio" or "mmio", for messages */
	struct bus_range ranges[BUS_MAX_RANGES];
	unsigned nr_ranges; /* sorted by base, non-overlapping */
};

void bus_init(struct bus *b, const char *name);

/* Maps [base, base+len) to @ops/@cookie. Returns 0, -EINVAL for a zero
 * length or an overflowing range, -EEXIST if it overlaps a mapped range,
 * -ENOSPC if the bus is full. */
__attribute__((warn_unused_result))
int bus_register(struct bus *b, uint64_t base, uint64_t len,
		 const struct bus_ops *ops, void *cookie, const char *name);

/* Takes off the range mapped at exactly [base, base+len), so a device
 * whose set-up fails part-way leaves nothing pointing at it. Set-up only,
 * like bus_register. Returns 0, or -ENOENT if no such range is mapped. */
int bus_unmap(struct bus *b, uint64_t base, uint64_t len);

/* Dispatches an access. Returns true if a device handled it; otherwise a
 * read fills @data with 0xff. An access straddling a range's end is treated
 * as unmapped. */
bool bus_read(const struct bus *b, uint64_t addr, void *data, unsigned len);
bool bus_write(const struct bus *b, uint64_t addr, const void *data, unsigned len);

/* The range containing @addr, or NULL. */
const struct bus_range *bus_find(const struct bus *b, uint64_t addr, unsigned len);

#endif
