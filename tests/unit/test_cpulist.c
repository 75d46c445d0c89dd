#include <errno.h>
#include <string.h>

#include "lib/cpulist.h"
#include "unit.h"

static void test_parse_good(void)
{
	unsigned c[16];
	size_t n = 0;

	CHECK_EQ(cpulist_parse("0", c, 16, &n), 0);
	CHECK_EQ(n, 1);
	CHECK_EQ(c[0], 0);

	CHECK_EQ(cpulist_parse("0-3,6", c, 16, &n), 0);
	CHECK_EQ(n, 5);
	CHECK_EQ(c[0], 0);
	CHECK_EQ(c[3], 3);
	CHECK_EQ(c[4], 6);

	/* order as written, not sorted */
	CHECK_EQ(cpulist_parse("8,2-3", c, 16, &n), 0);
	CHECK_EQ(n, 3);
	CHECK_EQ(c[0], 8);
	CHECK_EQ(c[1], 2);
	CHECK_EQ(c[2], 3);

	CHECK_EQ(cpulist_parse("5-5", c, 16, &n), 0);
	CHECK_EQ(n, 1);
	CHECK_EQ(c[0], 5);

	CHECK_EQ(cpulist_parse("65535", c, 16, &n), 0);
	CHECK_EQ(c[0], 65535);
}

static void test_parse_bad(void)
{
	static const char *const bad[] = {
		"", ",", "1,", ",1", "1,,2", "3-1", "3-2", "1-", "-1", "a", "1 ,2", " 1",
		"1-2-3", "0x1", "1,1", "0-3,2", "+1", "1.5",
	};
	unsigned c[16];
	size_t n = 99;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = cpulist_parse(bad[i], c, 16, &n);
		if (r != -EINVAL)
			fprintf(stderr, "  \"%s\" -> %d\n", bad[i], r);
		CHECK_EQ(r, -EINVAL);
	}
	CHECK_EQ(n, 99); /* untouched on error */
	CHECK_EQ(cpulist_parse("65536", c, 16, &n), -ERANGE);
	CHECK_EQ(cpulist_parse("99999999999999999999", c, 16, &n), -ERANGE);
	CHECK_EQ(cpulist_parse("0-16", c, 16, &n), -ERANGE);
	CHECK_EQ(cpulist_parse("0-65535", c, 16, &n), -ERANGE);
	CHECK_EQ(cpulist_parse("0-15", c, 16, &n), 0);
	CHECK_EQ(n, 16);
	CHECK_EQ(cpulist_parse("1", c, 0, &n), -ERANGE);
}

static void test_format(void)
{
	char buf[64];
	static const unsigned a[] = { 0, 1, 2, 3, 6, 8, 9 };
	static const unsigned b[] = { 5, 4, 7 };

	CHECK_EQ(cpulist_format(a, 7, buf, sizeof(buf)), 9);
	CHECK_STREQ(buf, "0-3,6,8-9");
	CHECK_EQ(cpulist_format(b, 3, buf, sizeof(buf)), 5);
	CHECK_STREQ(buf, "5,4,7");
	CHECK_EQ(cpulist_format(a, 0, buf, sizeof(buf)), 0);
	CHECK_STREQ(buf, "");
	CHECK_EQ(cpulist_format(a, 7, buf, 9), -ENOSPC);
	CHECK_EQ(cpulist_format(a, 7, buf, 10), 9);
	CHECK_EQ(cpulist_format(a, 1, buf, 0), -ENOSPC);
}

static void test_round_trip(void)
{
	static const char *const lists[] = { "0", "0-3,6", "8,2-3", "1,3,5", "0-63" };
	unsigned c[64];
	size_t n;
	char buf[256];

	for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
		CHECK_EQ(cpulist_parse(lists[i], c, 64, &n), 0);
		CHECK(cpulist_format(c, n, buf, sizeof(buf)) > 0);
		CHECK_STREQ(buf, lists[i]);
	}
}

static void test_host_online(void)
{
	int r = cpulist_host_online(0);
	if (r == -ENOENT) {
		printf("skip host_online: no /sys/devices/system/cpu/online\n");
		return;
	}
	CHECK_EQ(r, 1); /* CPU 0 is always online */
	CHECK_EQ(cpulist_host_online(65535), 0);
}

int main(void)
{
	RUN(test_parse_good);
	RUN(test_parse_bad);
	RUN(test_format);
	RUN(test_round_trip);
	RUN(test_host_online);
	return unit_done();
}
