/* KVM's binary statistics of one vCPU (KVM_GET_STATS_FD, Linux 5.14+):
 * the in-kernel exit and halt counters that never reach userspace. The
 * descriptors are read once, by name, so no offset is hard-coded and a
 * counter the kernel lacks is simply absent; each read is one pread of a
 * u64, safe from any thread.
 *
 * The counters looked for (KVM's names): exits, halt_exits, io_exits,
 * mmio_exits, irq_exits, signal_exits, irq_window_exits, nmi_window_exits,
 * request_irq_exits, insn_emulation, hypercalls, halt_wakeup,
 * halt_successful_poll, halt_attempted_poll, halt_wait_ns,
 * halt_poll_success_ns, halt_poll_fail_ns. */
#ifndef KVMRUN_KVM_STATS_H
#define KVMRUN_KVM_STATS_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/log.h"

#define KVM_STATS_NR 17

struct kvm_stats {
	int fd;                        /* -1: no statistics */
	bool present[KVM_STATS_NR];
	uint64_t offset[KVM_STATS_NR]; /* of each counter's first u64 in the fd */
};

/* KVM's name of counter @i (< KVM_STATS_NR). */
const char *kvm_stats_name(unsigned i);

/* Gets @vcpu_fd's statistics fd and finds the counters. A kernel without
 * KVM_GET_STATS_FD leaves s->fd at -1 and returns 0 (logged at info).
 * Returns 0 or -errno (logged, naming @who). */
__attribute__((warn_unused_result))
int kvm_stats_open(struct kvm_stats *s, int vcpu_fd, const struct logger *log, const char *who);

/* Finds the counters in a statistics fd laid out as KVM's (struct
 * kvm_stats_header, descriptors, data); takes @fd. Everything is
 * bounds-checked: a malformed layout is -EINVAL. For tests too. */
__attribute__((warn_unused_result))
int kvm_stats_from_fd(struct kvm_stats *s, int fd);

/* Reads counter @i: 0, -ENOENT when the kernel has no such counter, or
 * pread's -errno. */
int kvm_stats_read(const struct kvm_stats *s, unsigned i, uint64_t *out);

void kvm_stats_close(struct kvm_stats *s);

#endif
