/* cpu/kvm_stats: finding counters by name in a file laid out as KVM's
 * binary statistics (KVM_GET_STATS_FD), and refusing malformed layouts. */
#include <errno.h>
#include <linux/kvm.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cpu/kvm_stats.h"
#include "unit.h"

#define NAME_SIZE 48

struct fdesc {
	const char *name;
	uint32_t flags;
	uint16_t size;
	uint64_t value;
};

/* Writes header, descriptors (in @d order) and data (reversed order, so
 * offsets are not the descriptor index) to a memfd. */
static int make_stats(const struct fdesc *d, unsigned n, uint32_t name_size)
{
	int fd = memfd_create("kvmstats", 0);
	CHECK(fd >= 0);
	size_t dsz = sizeof(struct kvm_stats_desc) + name_size;
	struct kvm_stats_header h = {
		.name_size = name_size, .num_desc = n, .id_offset = sizeof(h),
		.desc_offset = sizeof(h) + 64, .data_offset = (uint32_t)(sizeof(h) + 64 + n * dsz),
	};
	CHECK_EQ(pwrite(fd, &h, sizeof(h), 0), (ssize_t)sizeof(h));
	uint8_t buf[512];
	for (unsigned i = 0; i < n; i++) {
		memset(buf, 0, sizeof(buf));
		struct kvm_stats_desc *k = (struct kvm_stats_desc *)buf;
		k->flags = d[i].flags;
		k->size = d[i].size;
		unsigned j = n - 1 - i;
		k->offset = j * 16;
		memcpy(buf + sizeof(*k), d[i].name, strnlen(d[i].name, name_size));
		CHECK_EQ(pwrite(fd, buf, dsz, h.desc_offset + i * dsz), (ssize_t)dsz);
		CHECK_EQ(pwrite(fd, &d[i].value, 8, h.data_offset + k->offset), 8);
	}
	return fd;
}

static void test_find(void)
{
	static const struct fdesc d[] = {
		{ "exits", KVM_STATS_TYPE_CUMULATIVE, 1, 12345 },
		{ "halt_poll_success_hist", KVM_STATS_TYPE_LOG_HIST, 32, 7 },
		{ "halt_wait_ns", KVM_STATS_TYPE_CUMULATIVE | KVM_STATS_UNIT_SECONDS, 1, 999000 },
		{ "some_future_counter", KVM_STATS_TYPE_CUMULATIVE, 1, 5 },
		{ "io_exits", KVM_STATS_TYPE_CUMULATIVE, 1, 42 },
		{ "halt_exits", KVM_STATS_TYPE_LINEAR_HIST, 4, 3 }, /* not a counter: skipped */
	};
	int fd = make_stats(d, 6, NAME_SIZE);
	struct kvm_stats s;
	CHECK_EQ(kvm_stats_from_fd(&s, fd), 0);
	uint64_t v = 0;
	for (unsigned i = 0; i < KVM_STATS_NR; i++) {
		int rc = kvm_stats_read(&s, i, &v);
		const char *n = kvm_stats_name(i);
		if (strcmp(n, "exits") == 0) {
			CHECK_EQ(rc, 0);
			CHECK_EQ(v, 12345);
		} else if (strcmp(n, "halt_wait_ns") == 0) {
			CHECK_EQ(rc, 0);
			CHECK_EQ(v, 999000);
		} else if (strcmp(n, "io_exits") == 0) {
			CHECK_EQ(rc, 0);
			CHECK_EQ(v, 42);
		} else {
			CHECK_EQ(rc, -ENOENT);
		}
	}
	kvm_stats_close(&s);
	CHECK_EQ(kvm_stats_read(&s, 0, &v), -ENOENT);
}

/* A name that fills name_size without a NUL still matches exactly. */
static void test_full_name(void)
{
	static const struct fdesc d[] = { { "mmio_exits", KVM_STATS_TYPE_CUMULATIVE, 1, 8 } };
	int fd = make_stats(d, 1, 10); /* strlen("mmio_exits") == 10 */
	struct kvm_stats s;
	CHECK_EQ(kvm_stats_from_fd(&s, fd), 0);
	uint64_t v = 0;
	for (unsigned i = 0; i < KVM_STATS_NR; i++)
		if (strcmp(kvm_stats_name(i), "mmio_exits") == 0) {
			CHECK_EQ(kvm_stats_read(&s, i, &v), 0);
			CHECK_EQ(v, 8);
		}
	kvm_stats_close(&s);
}

static void test_malformed(void)
{
	struct kvm_stats s;
	/* descriptors past the end of the file */
	static const struct fdesc d[] = { { "exits", 0, 1, 1 } };
	int fd = make_stats(d, 1, NAME_SIZE);
	struct kvm_stats_header h;
	CHECK_EQ(pread(fd, &h, sizeof(h), 0), (ssize_t)sizeof(h));
	h.num_desc = 100;
	CHECK_EQ(pwrite(fd, &h, sizeof(h), 0), (ssize_t)sizeof(h));
	CHECK_EQ(kvm_stats_from_fd(&s, fd), -EINVAL);
	kvm_stats_close(&s);
	/* absurd sizes */
	fd = make_stats(d, 1, NAME_SIZE);
	h.name_size = 100000;
	h.num_desc = 1;
	CHECK_EQ(pwrite(fd, &h, sizeof(h), 0), (ssize_t)sizeof(h));
	CHECK_EQ(kvm_stats_from_fd(&s, fd), -EINVAL);
	kvm_stats_close(&s);
	/* an empty file */
	fd = memfd_create("empty", 0);
	CHECK_EQ(kvm_stats_from_fd(&s, fd), -EINVAL);
	kvm_stats_close(&s);
}

int main(void)
{
	RUN(test_find);
	RUN(test_full_name);
	RUN(test_malformed);
	return unit_done();
}
