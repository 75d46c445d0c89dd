#include <errno.h>
#include <string.h>

#include "devices/bus.h"
#include "unit.h"

struct probe {
	uint64_t last_off;
	unsigned last_len, reads, writes;
	uint8_t last_byte;
};

static void probe_read(void *cookie, uint64_t off, void *data, unsigned len)
{
	struct probe *p = cookie;
	p->reads++;
	p->last_off = off;
	p->last_len = len;
	memset(data, 0x5a, len);
}

static void probe_write(void *cookie, uint64_t off, const void *data, unsigned len)
{
	struct probe *p = cookie;
	p->writes++;
	p->last_off = off;
	p->last_len = len;
	p->last_byte = *(const uint8_t *)data;
}

static const struct bus_ops probe_ops = { .read = probe_read, .write = probe_write };

static void test_register_rejects_bad_ranges(void)
{
	struct bus b;
	struct probe p = {0};
	bus_init(&b, "pio");
	CHECK_EQ(bus_register(&b, 0x3f8, 0, &probe_ops, &p, "zero"), -EINVAL);
	CHECK_EQ(bus_register(&b, UINT64_MAX - 1, 4, &probe_ops, &p, "wrap"), -EINVAL);
	CHECK_EQ(bus_register(&b, 0x3f8, 8, &probe_ops, &p, "uart"), 0);
	CHECK_EQ(bus_register(&b, 0x3f8, 1, &probe_ops, &p, "same"), -EEXIST);
	CHECK_EQ(bus_register(&b, 0x3f0, 9, &probe_ops, &p, "tail"), -EEXIST);
	CHECK_EQ(bus_register(&b, 0x3ff, 1, &probe_ops, &p, "head"), -EEXIST);
	CHECK_EQ(bus_register(&b, 0x3f0, 8, &probe_ops, &p, "below"), 0);
	CHECK_EQ(bus_register(&b, 0x400, 8, &probe_ops, &p, "above"), 0);
	CHECK_EQ(bus_register(&b, UINT64_MAX, 1, &probe_ops, &p, "last byte"), 0);
	CHECK_EQ(b.nr_ranges, 4);
	for (unsigned i = 1; i < b.nr_ranges; i++)
		CHECK(b.ranges[i - 1].base < b.ranges[i].base);
}

static void test_dispatch_and_unmapped(void)
{
	struct bus b;
	struct probe p = {0};
	bus_init(&b, "mmio");
	CHECK_EQ(bus_register(&b, 0x1000, 0x100, &probe_ops, &p, "dev"), 0);

	uint32_t v = 0;
	CHECK(bus_read(&b, 0x1010, &v, 4));
	CHECK_EQ(v, 0x5a5a5a5a);
	CHECK_EQ(p.last_off, 0x10);
	CHECK_EQ(p.last_len, 4);

	uint8_t w = 0x42;
	CHECK(bus_write(&b, 0x10ff, &w, 1));
	CHECK_EQ(p.last_off, 0xff);
	CHECK_EQ(p.last_byte, 0x42);

	v = 0;
	CHECK(!bus_read(&b, 0x2000, &v, 4));
	CHECK_EQ(v, 0xffffffff);
	/* straddling the end of a range is not a device access */
	CHECK(!bus_read(&b, 0x10fe, &v, 4));
	CHECK_EQ(p.reads, 1);
	CHECK(!bus_write(&b, 0xfff, &w, 2));
	CHECK_EQ(p.writes, 1);
}

static void test_unmap(void)
{
	struct bus b;
	struct probe p = {0};
	uint8_t v = 0;
	bus_init(&b, "pio");
	CHECK_EQ(bus_register(&b, 0x60, 1, &probe_ops, &p, "a"), 0);
	CHECK_EQ(bus_register(&b, 0x64, 1, &probe_ops, &p, "b"), 0);
	CHECK_EQ(bus_register(&b, 0x70, 2, &probe_ops, &p, "c"), 0);
	/* only the exact range comes off */
	CHECK_EQ(bus_unmap(&b, 0x64, 2), -ENOENT);
	CHECK_EQ(bus_unmap(&b, 0x63, 1), -ENOENT);
	CHECK_EQ(bus_unmap(&b, 0x64, 1), 0);
	CHECK_EQ(b.nr_ranges, 2);
	CHECK(!bus_read(&b, 0x64, &v, 1));
	CHECK_EQ(v, 0xff);
	CHECK_EQ(bus_unmap(&b, 0x64, 1), -ENOENT);
	/* the others still dispatch, and lookups stay sorted */
	CHECK(bus_find(&b, 0x60, 1) && bus_find(&b, 0x71, 1));
	CHECK(bus_read(&b, 0x71, &v, 1));
	CHECK_EQ(p.last_off, 1);
	/* the freed space can be mapped again */
	CHECK_EQ(bus_register(&b, 0x62, 4, &probe_ops, &p, "d"), 0);
	CHECK_EQ(bus_unmap(&b, 0x60, 1), 0);
	CHECK_EQ(bus_unmap(&b, 0x70, 2), 0);
	CHECK_EQ(bus_unmap(&b, 0x62, 4), 0);
	CHECK_EQ(b.nr_ranges, 0);
}

int main(void)
{
	RUN(test_register_rejects_bad_ranges);
	RUN(test_dispatch_and_unmapped);
	RUN(test_unmap);
	return unit_done();
}
