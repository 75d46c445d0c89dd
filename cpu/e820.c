#include "cpu/e820.h"

#include "mem/layout.h"

static unsigned add(struct e820_entry *out, unsigned n, uint64_t addr, uint64_t end,
		    uint32_t type)
{
	if (end > addr && n < E820_MAX)
		out[n++] = (struct e820_entry){ .addr = addr, .size = end - addr, .type = type };
	return n;
}

unsigned e820_build(const struct guest_mem *m, struct e820_entry out[E820_MAX])
{
	unsigned n = 0;
	for (unsigned i = 0; i < m->nr_regions; i++) {
		const struct gmem_region *r = &m->regions[i];
		uint64_t start = r->gpa, end = r->gpa + r->size;
		if (start < LAYOUT_HIGH_MEM) {
			/* the legacy hole is RAM to KVM but not to the guest */
			uint64_t low_end = end < LAYOUT_EBDA ? end : LAYOUT_EBDA;
			n = add(out, n, start, low_end, E820_RAM);
			n = add(out, n, LAYOUT_EBDA, LAYOUT_HIGH_MEM, E820_RESERVED);
			start = LAYOUT_HIGH_MEM;
		}
		n = add(out, n, start, end, E820_RAM);
	}
	return n;
}
