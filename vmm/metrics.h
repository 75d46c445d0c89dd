/* A VM's metrics: one line of key=value counters (the `metrics` control
 * command, metrics_file=, and the library), formatted in one place.
 *
 * Every value is a plain decimal integer (bytes, counts, nanoseconds,
 * microseconds), so a scraper can take differences. The fields, in order:
 *
 *   ts_ms                       wall clock (Unix time, milliseconds)
 *   uptime_ms
 *   vcpuN.exits_KIND            userspace exits the vCPU thread saw, KIND one
 *                               of io mmio hlt shutdown system_event intr
 *                               irq_window internal_error fail_entry other
 *   vcpuN.kvm_NAME              KVM's in-kernel counters (cpu/kvm_stats.h),
 *                               those the kernel has: exits, halt_exits,
 *                               io_exits, mmio_exits, irq_exits, ...,
 *                               halt_wait_ns, halt_poll_success_ns, ...
 *   vcpuN.halt_ns               halt_wait_ns + halt_poll_*_ns (if KVM has them)
 *   diskN.requests reads writes flushes discards write_zeroes
 *   diskN.read_bytes write_bytes
 *   diskN.errors ioerr unsupp   errors = ioerr + unsupp
 *   diskN.inflight throttled
 *   diskN.lat_us_le_B           requests that completed within B µs, B = 1,
 *                               2, 4, ... 1048576 (cumulative, like
 *                               Prometheus's le), then lat_us_count (all)
 *                               and lat_us_sum; 0 with metrics=off
 *   netN.source=device|tap      where the net counters come from: the
 *                               userspace backend, or (vhost-net) the tap's
 *                               /sys/class/net/TAP/statistics, turned round
 *                               to the guest's view
 *   netN.rx_packets rx_bytes tx_packets tx_bytes rx_drops tx_drops
 *   netN.rx_throttled tx_throttled (userspace backend)
 *   balloon_target balloon_actual   (balloon=on)
 *   ram_rss hugetlb thp swap    guest RAM as the host sees it (`memory`)
 *
 * A line longer than the buffer ends with truncated=yes after the last
 * whole field. */
#ifndef KVMRUN_METRICS_H
#define KVMRUN_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cpu/kvm_stats.h"

struct vm;

/* Metrics state of a VM (in struct vm). */
struct vm_metrics {
	struct kvm_stats *vcpu_stats;   /* one per vCPU, or NULL */
	unsigned nr_vcpus;
	uint64_t start_ns;              /* CLOCK_MONOTONIC at vm_metrics_start */
	int file_fd, timer_fd;          /* metrics_file=, its period timer */
	char *line;                     /* the file's line buffer */
	bool file_failed;               /* a write failed (logged once) */
};

#define VM_METRICS_MAX_LINE (60 * 1024)

/* After the vCPUs and the event loop exist, before privileges are dropped:
 * opens each vCPU's KVM statistics (with metrics=on), the metrics_file and
 * its timer. Returns 0 or -errno (logged). */
__attribute__((warn_unused_result))
int vm_metrics_start(struct vm *vm);
void vm_metrics_stop(struct vm *vm);

/* Appends a line to metrics_file now (vm_run does at the end, so the
 * last counts are kept); nothing without metrics_file. */
void vm_metrics_flush(struct vm *vm);

/* Writes the fields, each with a leading blank, NUL-terminated, into @buf;
 * returns the length. Any thread: the counters are read racily but
 * tear-free, device counters under their device's lock. */
size_t vm_metrics_format(struct vm *vm, char *buf, size_t len);

#endif
