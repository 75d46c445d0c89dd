/* The e820 map (cpu/e820.c) derived from guest RAM regions: the legacy
 * area (EBDA to 1 MiB) is reserved, never RAM, whatever the regions look
 * like; RAM above 4 GiB is its own entry; a RAM size that ends below the
 * EBDA or at exactly 1 MiB leaves no empty or negative entry behind. The
 * regions' host pointers are never touched, so none are mapped. */
#include <string.h>

#include "cpu/e820.h"
#include "mem/layout.h"
#include "unit.h"

static uint8_t dummy;

static unsigned build(const uint64_t (*r)[2], unsigned nr, struct e820_entry *e)
{
	struct guest_mem m;
	memset(&m, 0, sizeof(m));
	for (unsigned i = 0; i < nr; i++)
		CHECK_EQ(gmem_add_region(&m, r[i][0], r[i][1], &dummy, -1, 0), 0);
	memset(e, 0xee, E820_MAX * sizeof(*e));
	return e820_build(&m, e);
}

static void check_entry(const struct e820_entry *e, uint64_t addr, uint64_t end, uint32_t type)
{
	CHECK_EQ(e->addr, addr);
	CHECK_EQ(e->addr + e->size, end);
	CHECK_EQ(e->type, type);
}

static void test_empty(void)
{
	struct e820_entry e[E820_MAX];
	CHECK_EQ(build(NULL, 0, e), 0);
}

/* RAM below the EBDA: RAM up to where it ends, then the legacy area. */
static void test_tiny_ram(void)
{
	struct e820_entry e[E820_MAX];
	const uint64_t r[][2] = { { 0, 512 << 10 } };
	CHECK_EQ(build(r, 1, e), 2);
	check_entry(&e[0], 0, 512 << 10, E820_RAM);
	check_entry(&e[1], LAYOUT_EBDA, LAYOUT_HIGH_MEM, E820_RESERVED);
}

/* The boundaries: RAM ending exactly at the EBDA, one byte past it, at
 * exactly 1 MiB and one page past it. */
static void test_boundaries(void)
{
	struct e820_entry e[E820_MAX];
	const uint64_t at_ebda[][2] = { { 0, LAYOUT_EBDA } };
	CHECK_EQ(build(at_ebda, 1, e), 2);
	check_entry(&e[0], 0, LAYOUT_EBDA, E820_RAM);
	check_entry(&e[1], LAYOUT_EBDA, LAYOUT_HIGH_MEM, E820_RESERVED);

	const uint64_t past_ebda[][2] = { { 0, LAYOUT_EBDA + 1 } };
	CHECK_EQ(build(past_ebda, 1, e), 2);
	check_entry(&e[0], 0, LAYOUT_EBDA, E820_RAM); /* the legacy area is never RAM */

	const uint64_t at_1m[][2] = { { 0, LAYOUT_HIGH_MEM } };
	CHECK_EQ(build(at_1m, 1, e), 2);
	check_entry(&e[1], LAYOUT_EBDA, LAYOUT_HIGH_MEM, E820_RESERVED);

	const uint64_t past_1m[][2] = { { 0, LAYOUT_HIGH_MEM + 4096 } };
	CHECK_EQ(build(past_1m, 1, e), 3);
	check_entry(&e[2], LAYOUT_HIGH_MEM, LAYOUT_HIGH_MEM + 4096, E820_RAM);
}

/* Low RAM up to the MMIO hole, the rest from 4 GiB: the hole is absent. */
static void test_split_at_hole(void)
{
	struct e820_entry e[E820_MAX];
	const uint64_t r[][2] = { { 0, LAYOUT_MMIO_HOLE }, { LAYOUT_4G, 1ull << 30 } };
	CHECK_EQ(build(r, 2, e), 4);
	check_entry(&e[0], 0, LAYOUT_EBDA, E820_RAM);
	check_entry(&e[1], LAYOUT_EBDA, LAYOUT_HIGH_MEM, E820_RESERVED);
	check_entry(&e[2], LAYOUT_HIGH_MEM, LAYOUT_MMIO_HOLE, E820_RAM);
	check_entry(&e[3], LAYOUT_4G, LAYOUT_4G + (1ull << 30), E820_RAM);
	for (unsigned i = 0; i < 4; i++)
		CHECK(e[i].addr + e[i].size <= LAYOUT_MMIO_HOLE || e[i].addr >= LAYOUT_4G);
}

/* A region that starts above 1 MiB is RAM as it is, with no legacy entry. */
static void test_region_above_1m(void)
{
	struct e820_entry e[E820_MAX];
	const uint64_t r[][2] = { { 2 << 20, 2 << 20 } };
	CHECK_EQ(build(r, 1, e), 1);
	check_entry(&e[0], 2 << 20, 4 << 20, E820_RAM);
	/* sorted and non-overlapping whatever the input */
	const uint64_t r2[][2] = { { 0, 64 << 10 }, { 1 << 20, 1 << 20 }, { LAYOUT_4G, 4096 } };
	unsigned n = build(r2, 3, e);
	CHECK_EQ(n, 4);
	for (unsigned i = 1; i < n; i++)
		CHECK(e[i - 1].addr + e[i - 1].size <= e[i].addr);
	for (unsigned i = 0; i < n; i++)
		CHECK(e[i].size > 0);
}

int main(void)
{
	RUN(test_empty);
	RUN(test_tiny_ram);
	RUN(test_boundaries);
	RUN(test_split_at_hole);
	RUN(test_region_above_1m);
	return unit_done();
}
