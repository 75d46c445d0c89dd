/* Guest RAM layout (regions around the MMIO hole), the e820 map derived
 * from it, discard, and the APIC IDs a topology gives. */
#include <errno.h>
#include <string.h>

#include "cpu/cpuid.h"
#include "cpu/e820.h"
#include "mem/layout.h"
#include "mem/ram.h"
#include "unit.h"

static struct logger lg = { .level = LOG_ERROR, .fd = 2 };

static void test_layout_below_hole(void)
{
	struct ram r;
	struct ram_opts o = { .size = 256ull << 20, .numa_node = -1 };
	CHECK_EQ(ram_create(&r, &o, &lg), 0);
	CHECK_EQ(r.mem.nr_regions, 1);
	CHECK_EQ(r.mem.regions[0].gpa, 0);
	CHECK_EQ(r.mem.regions[0].size, 256ull << 20);
	CHECK(((uintptr_t)r.base & ((2u << 20) - 1)) == 0); /* 2 MiB aligned for THP */
	struct e820_entry e[E820_MAX];
	unsigned n = e820_build(&r.mem, e);
	CHECK_EQ(n, 3);
	CHECK(e[0].addr == 0 && e[0].size == LAYOUT_EBDA && e[0].type == E820_RAM);
	CHECK(e[1].addr == LAYOUT_EBDA && e[1].addr + e[1].size == LAYOUT_HIGH_MEM &&
	      e[1].type == E820_RESERVED);
	CHECK(e[2].addr == LAYOUT_HIGH_MEM && e[2].addr + e[2].size == 256ull << 20);
	ram_destroy(&r);
}

static void test_layout_across_hole(void)
{
	struct ram r;
	/* MAP_NORESERVE: nothing is touched, so this costs no memory */
	struct ram_opts o = { .size = 3584ull << 20, .numa_node = -1 };
	CHECK_EQ(ram_create(&r, &o, &lg), 0);
	CHECK_EQ(r.mem.nr_regions, 2);
	CHECK_EQ(r.mem.regions[0].size, LAYOUT_MMIO_HOLE);
	CHECK_EQ(r.mem.regions[1].gpa, LAYOUT_4G);
	CHECK_EQ(r.mem.regions[1].size, 512ull << 20);
	CHECK_EQ(gmem_total(&r.mem), 3584ull << 20);
	/* nothing maps the hole */
	CHECK(gmem_ptr(&r.mem, LAYOUT_MMIO_HOLE, 1) == NULL);
	CHECK(gmem_ptr(&r.mem, LAYOUT_4G - 8, 16) == NULL);
	CHECK(gmem_ptr(&r.mem, LAYOUT_4G, 8) == r.base + LAYOUT_MMIO_HOLE);
	CHECK_EQ(ram_offset_to_gpa(&r, LAYOUT_MMIO_HOLE + 4096), LAYOUT_4G + 4096);
	struct e820_entry e[E820_MAX];
	unsigned n = e820_build(&r.mem, e);
	CHECK_EQ(n, 4);
	CHECK(e[3].addr == LAYOUT_4G && e[3].size == 512ull << 20 && e[3].type == E820_RAM);
	ram_destroy(&r);
}

static void test_discard(void)
{
	struct ram r;
	struct ram_opts o = { .size = 16ull << 20, .numa_node = -1 };
	CHECK_EQ(ram_create(&r, &o, &lg), 0);
	uint8_t *p = gmem_ptr(&r.mem, 0x200000, 4096);
	memset(p, 0xab, 4096);
	CHECK_EQ(ram_discard(&r, 0x200000, 4096), 0);
	CHECK_EQ(p[0], 0);             /* the guest reads zeroes afterwards */
	CHECK_EQ(ram_discard(&r, 0x200001, 4096), -EINVAL);   /* unaligned */
	CHECK_EQ(ram_discard(&r, 16ull << 20, 4096), -EINVAL); /* beyond RAM */
	CHECK_EQ(ram_discard(&r, 0, 0), -EINVAL);
	ram_destroy(&r);
}

/* Hugetlb backing: give-back only when asked for (ram_can_give_back). Needs
 * two free 2 MiB hugepages in the host's pool; skipped without. */
static void test_hugepage_giveback(void)
{
	for (int giveback = 0; giveback < 2; giveback++) {
		struct ram r;
		struct ram_opts o = { .size = 4ull << 20, .numa_node = -1,
				      .hugepages = HUGEPAGES_2M, .hugepage_giveback = giveback };
		lg.fd = -1;
		int rc = ram_create(&r, &o, &lg);
		lg.fd = 2;
		if (rc < 0) {
			printf("  skip test_hugepage_giveback: no 2 MiB hugepages to map (%s)\n",
			       strerror(-rc));
			return;
		}
		CHECK_EQ(ram_can_give_back(&r), giveback);
		uint8_t *p = gmem_ptr(&r.mem, 0x200000, 4096);
		memset(p, 0xab, 4096);
		CHECK_EQ(ram_discard(&r, 0x200000, 2u << 20), giveback ? 0 : -EPERM);
		CHECK_EQ(p[0], giveback ? 0 : 0xab);
		ram_destroy(&r);
	}
	struct ram r;
	struct ram_opts o = { .size = 16ull << 20, .numa_node = -1 };
	CHECK_EQ(ram_create(&r, &o, &lg), 0);
	CHECK(ram_can_give_back(&r)); /* anonymous RAM always */
	ram_destroy(&r);
}

static void test_bad_sizes(void)
{
	struct ram r;
	struct ram_opts o = { .size = (16ull << 20) + 100, .numa_node = -1 };
	lg.fd = -1; /* expected errors: keep the test output clean */
	CHECK_EQ(ram_create(&r, &o, &lg), -EINVAL);
	o.size = 16ull << 20;
	o.numa_node = 4000;
	CHECK(ram_create(&r, &o, &lg) < 0);
	CHECK(r.base == NULL); /* nothing left mapped */
	lg.fd = 2;
}

static void test_apic_ids(void)
{
	struct cpu_topology one = { 1, 4, 1 }, smt = { 1, 2, 2 }, odd = { 2, 3, 1 };
	for (unsigned i = 0; i < 4; i++)
		CHECK_EQ(cpuid_apic_id(&one, i), i);
	CHECK_EQ(cpuid_thread_bits(&smt), 1);
	CHECK_EQ(cpuid_apic_id(&smt, 3), 3);
	/* 3 cores need 2 bits: socket 1 starts at APIC ID 4 */
	CHECK_EQ(cpuid_core_bits(&odd), 2);
	CHECK_EQ(cpuid_apic_id(&odd, 2), 2);
	CHECK_EQ(cpuid_apic_id(&odd, 3), 4);
	CHECK_EQ(cpuid_apic_id(&odd, 5), 6);
}

int main(void)
{
	RUN(test_layout_below_hole);
	RUN(test_layout_across_hole);
	RUN(test_discard);
	RUN(test_hugepage_giveback);
	RUN(test_bad_sizes);
	RUN(test_apic_ids);
	return unit_done();
}
