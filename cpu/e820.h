/* The guest's physical memory map, derived from what mem/ really mapped. */
#ifndef KVMRUN_E820_H
#define KVMRUN_E820_H

#include <stdint.h>

#include "mem/guest_mem.h"

#define E820_RAM      1
#define E820_RESERVED 2
#define E820_ACPI     3

#define E820_MAX 16

struct e820_entry {
	uint64_t addr, size;
	uint32_t type;
};

/* Fills @out (capacity E820_MAX) from @m: low RAM up to the EBDA, the
 * reserved legacy area with the ACPI tables, RAM from 1 MiB, RAM above
 * 4 GiB. Returns the number of entries. */
unsigned e820_build(const struct guest_mem *m, struct e820_entry out[E820_MAX]);

#endif
