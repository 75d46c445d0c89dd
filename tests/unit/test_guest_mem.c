#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mem/guest_mem.h"
#include "unit.h"

static uint8_t low[64 * 1024], high[16 * 1024];

static void setup(struct guest_mem *m)
{
	memset(m, 0, sizeof(*m));
	CHECK_EQ(gmem_add_region(m, 0, sizeof(low), low, -1, 0), 0);
	CHECK_EQ(gmem_add_region(m, 1ull << 32, sizeof(high), high, -1, 0), 0);
}

static void test_add_region_checks(void)
{
	struct guest_mem m = {0};
	CHECK_EQ(gmem_add_region(&m, 0x1000, 0, low, -1, 0), -EINVAL);
	CHECK_EQ(gmem_add_region(&m, UINT64_MAX - 10, 100, low, -1, 0), -EINVAL);
	CHECK_EQ(gmem_add_region(&m, 0x10000, 0x1000, low, -1, 0), 0);
	CHECK_EQ(gmem_add_region(&m, 0x10800, 0x1000, low, -1, 0), -EINVAL);
	CHECK_EQ(gmem_add_region(&m, 0x0, 0x1000, low, -1, 0), -EINVAL);
	for (unsigned i = 1; i < GMEM_MAX_REGIONS; i++)
		CHECK_EQ(gmem_add_region(&m, 0x100000ull * i, 0x1000, low, -1, 0), 0);
	CHECK_EQ(gmem_add_region(&m, 1ull << 40, 0x1000, low, -1, 0), -ENOSPC);
}

static void test_translation_bounds(void)
{
	struct guest_mem m;
	setup(&m);
	CHECK(gmem_ptr(&m, 0, 1) == low);
	CHECK(gmem_ptr(&m, sizeof(low) - 4, 4) == low + sizeof(low) - 4);
	CHECK(gmem_ptr(&m, sizeof(low) - 4, 5) == NULL);
	CHECK(gmem_ptr(&m, sizeof(low), 1) == NULL);
	CHECK(gmem_ptr(&m, (1ull << 32) + 16, 16) == high + 16);
	CHECK(gmem_ptr(&m, (1ull << 32) - 1, 2) == NULL);      /* hole */
	CHECK(gmem_ptr(&m, 0x8000, UINT64_MAX) == NULL);        /* length overflow */
	CHECK(gmem_ptr(&m, UINT64_MAX, 2) == NULL);             /* address overflow */
	CHECK(gmem_ptr(&m, (1ull << 32) + sizeof(high) - 8, UINT64_MAX - 3) == NULL);
	CHECK_EQ(gmem_total(&m), sizeof(low) + sizeof(high));
}

static void test_copy_helpers(void)
{
	struct guest_mem m;
	setup(&m);
	const char msg[] = "hello guest";
	char back[sizeof(msg)];
	CHECK_EQ(gmem_write(&m, 0x100, msg, sizeof(msg)), 0);
	CHECK_EQ(gmem_read(&m, 0x100, back, sizeof(back)), 0);
	CHECK(memcmp(msg, back, sizeof(msg)) == 0);
	CHECK_EQ(gmem_write(&m, sizeof(low) - 2, msg, sizeof(msg)), -EFAULT);
	CHECK_EQ(gmem_read(&m, 0x20000, back, 1), -EFAULT);
}

int main(void)
{
	RUN(test_add_region_checks);
	RUN(test_translation_bounds);
	RUN(test_copy_helpers);
	return unit_done();
}
