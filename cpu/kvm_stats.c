/* KVM binary statistics: see kvm_stats.h and the kernel's
 * Documentation/virt/kvm/api.rst, "KVM_GET_STATS_FD". */
#include "cpu/kvm_stats.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stddef.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define KVM_STATS_MAX_DESC 4096     /* far more than any kernel has */
#define KVM_STATS_MAX_NAME 256      /* name_size; KVM's is 48 */

static const char *const stat_names[KVM_STATS_NR] = {
	"exits", "halt_exits", "io_exits", "mmio_exits", "irq_exits", "signal_exits",
	"irq_window_exits", "nmi_window_exits", "request_irq_exits", "insn_emulation",
	"hypercalls", "halt_wakeup", "halt_successful_poll", "halt_attempted_poll",
	"halt_wait_ns", "halt_poll_success_ns", "halt_poll_fail_ns",
};

const char *kvm_stats_name(unsigned i)
{
	return i < KVM_STATS_NR ? stat_names[i] : "?";
}

static int pread_full(int fd, void *buf, size_t len, uint64_t off)
{
	ssize_t n = pread(fd, buf, len, (off_t)off);
	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EINVAL;
}

/* Records descriptor @d (its name NUL-terminated by the caller) if it is
 * one of ours and a plain counter. */
static void match_desc(struct kvm_stats *s, const struct kvm_stats_desc *d, const char *name,
		       uint64_t data_offset)
{
	uint32_t type = d->flags & KVM_STATS_TYPE_MASK;
	if (d->size < 1 || (type != KVM_STATS_TYPE_CUMULATIVE && type != KVM_STATS_TYPE_INSTANT &&
			    type != KVM_STATS_TYPE_PEAK))
		return;
	for (unsigned i = 0; i < KVM_STATS_NR; i++) {
		if (strcmp(name, stat_names[i]) == 0) {
			s->present[i] = true;
			s->offset[i] = data_offset + d->offset;
			return;
		}
	}
}

int kvm_stats_from_fd(struct kvm_stats *s, int fd)
{
	memset(s, 0, sizeof(*s));
	s->fd = fd;
	struct kvm_stats_header h;
	int rc = pread_full(fd, &h, sizeof(h), 0);
	if (rc < 0)
		return rc;
	if (h.name_size == 0 || h.name_size > KVM_STATS_MAX_NAME || h.num_desc > KVM_STATS_MAX_DESC)
		return -EINVAL;
	size_t dsz = sizeof(struct kvm_stats_desc) + h.name_size;
	union {
		struct kvm_stats_desc d;
		char raw[sizeof(struct kvm_stats_desc) + KVM_STATS_MAX_NAME + 1];
	} u;
	for (uint32_t k = 0; k < h.num_desc; k++) {
		rc = pread_full(fd, u.raw, dsz, (uint64_t)h.desc_offset + (uint64_t)k * dsz);
		if (rc < 0)
			return rc;
		u.raw[dsz] = 0; /* the name may fill name_size without a NUL */
		match_desc(s, &u.d, u.d.name, h.data_offset);
	}
	return 0;
}

int kvm_stats_open(struct kvm_stats *s, int vcpu_fd, const struct logger *log, const char *who)
{
	memset(s, 0, sizeof(*s));
	s->fd = -1;
	int fd = ioctl(vcpu_fd, KVM_GET_STATS_FD, 0);
	if (fd < 0) {
		int e = errno;
		if (e == ENOTTY || e == EINVAL) {
			log_info(log, who, "KVM_GET_STATS_FD: %s: no in-kernel exit counters",
				 strerror(e));
			return 0;
		}
		log_err(log, who, "KVM_GET_STATS_FD: %s", strerror(e));
		return -e;
	}
	int rc = kvm_stats_from_fd(s, fd);
	if (rc < 0) {
		log_err(log, who, "reading KVM's statistics descriptors: %s", strerror(-rc));
		kvm_stats_close(s);
	}
	return rc;
}

int kvm_stats_read(const struct kvm_stats *s, unsigned i, uint64_t *out)
{
	if (s->fd < 0 || i >= KVM_STATS_NR || !s->present[i])
		return -ENOENT;
	return pread_full(s->fd, out, sizeof(*out), s->offset[i]);
}

void kvm_stats_close(struct kvm_stats *s)
{
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	memset(s->present, 0, sizeof(s->present));
}
