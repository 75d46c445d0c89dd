/* A VM's metrics line (see metrics.h) and the metrics_file writer. */
#include "vmm/metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "mem/ram_stats.h"
#include "net/net.h"
#include "virtio/balloon.h"
#include "virtio/blk.h"
#include "vsock/vsock.h"
#include "vmm/vm_priv.h"

/* ------------------------------------------------------------ the line */

struct line {
	char *buf;
	size_t len, used, last_whole; /* last_whole: end of the last whole field */
	bool truncated;
};

#define LINE_TAIL sizeof(" truncated=yes")

__attribute__((format(printf, 2, 3)))
static void add(struct line *l, const char *fmt, ...)
{
	if (l->truncated)
		return;
	va_list ap;
	va_start(ap, fmt);
	size_t room = l->len - LINE_TAIL - l->used;
	int n = vsnprintf(l->buf + l->used, room, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= room) {
		l->truncated = true;
		l->buf[l->last_whole] = 0;
		return;
	}
	l->used += (size_t)n;
	l->last_whole = l->used;
}

static void add_u64(struct line *l, const char *prefix, const char *key, uint64_t v)
{
	add(l, " %s%s=%" PRIu64, prefix, key, v);
}

static uint64_t now_ns(clockid_t clk)
{
	struct timespec ts;
	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void add_vcpu(struct vm *vm, struct line *l, unsigned i)
{
	char p[16];
	snprintf(p, sizeof(p), "vcpu%u.", i);
	const struct vcpu *v = &vm->vcpus[i];
	for (unsigned k = 0; k < VCPU_EXIT_NR; k++) {
		char key[32];
		snprintf(key, sizeof(key), "exits_%s", vcpu_exit_name(k));
		add_u64(l, p, key, vcpu_exit_count(v, k));
	}
	if (!vm->metrics.vcpu_stats || i >= vm->metrics.nr_vcpus)
		return;
	const struct kvm_stats *ks = &vm->metrics.vcpu_stats[i];
	uint64_t halt = 0;
	bool have_halt = false;
	for (unsigned k = 0; k < KVM_STATS_NR; k++) {
		uint64_t val;
		if (kvm_stats_read(ks, k, &val) < 0)
			continue;
		const char *name = kvm_stats_name(k);
		add(l, " %skvm_%s=%" PRIu64, p, name, val);
		if (strncmp(name, "halt_", 5) == 0 && strstr(name, "_ns")) {
			halt += val;
			have_halt = true;
		}
	}
	if (have_halt)
		add_u64(l, p, "halt_ns", halt);
}

static void add_disk(struct line *l, unsigned i, struct virtio_blk *b)
{
	char p[16];
	snprintf(p, sizeof(p), "disk%u.", i);
	struct virtio_blk_stats st;
	virtio_blk_get_stats(b, &st);
	add_u64(l, p, "requests", st.requests);
	add_u64(l, p, "reads", st.reads);
	add_u64(l, p, "writes", st.writes);
	add_u64(l, p, "flushes", st.flushes);
	add_u64(l, p, "discards", st.discards);
	add_u64(l, p, "write_zeroes", st.write_zeroes);
	add_u64(l, p, "read_bytes", st.bytes_read);
	add_u64(l, p, "write_bytes", st.bytes_written);
	add_u64(l, p, "errors", st.ioerr + st.unsupp);
	add_u64(l, p, "ioerr", st.ioerr);
	add_u64(l, p, "unsupp", st.unsupp);
	add_u64(l, p, "inflight", st.inflight);
	add_u64(l, p, "throttled", st.throttled);
	uint64_t cum = 0;
	for (unsigned k = 0; k + 1 < VIRTIO_BLK_LAT_BUCKETS; k++) {
		cum += st.lat_us[k];
		add(l, " %slat_us_le_%" PRIu64 "=%" PRIu64, p, (uint64_t)1 << k, cum);
	}
	add_u64(l, p, "lat_us_count", cum + st.lat_us[VIRTIO_BLK_LAT_BUCKETS - 1]);
	add_u64(l, p, "lat_us_sum", st.lat_us_sum);
}

/* One counter of /sys/class/net/@tap/statistics; false when unreadable. */
static bool tap_counter(const char *tap, const char *name, uint64_t *out)
{
	char path[128];
	snprintf(path, sizeof(path), "/sys/class/net/%s/statistics/%s", tap, name);
	FILE *f = fopen(path, "re");
	if (!f)
		return false;
	bool ok = fscanf(f, "%" SCNu64, out) == 1;
	fclose(f);
	return ok;
}

/* vhost-net: the kernel moves the frames; the tap counts them. What the
 * tap transmits the guest receives. */
static void add_net_tap(struct line *l, const char *p, const char *tap)
{
	static const char *const map[][2] = {
		{ "rx_packets", "tx_packets" }, { "rx_bytes", "tx_bytes" },
		{ "tx_packets", "rx_packets" }, { "tx_bytes", "rx_bytes" },
		{ "rx_drops", "tx_dropped" }, { "tx_drops", "rx_dropped" },
	};
	add(l, " %ssource=tap", p);
	for (size_t k = 0; k < sizeof(map) / sizeof(map[0]); k++) {
		uint64_t v;
		if (tap && tap_counter(tap, map[k][1], &v))
			add_u64(l, p, map[k][0], v);
	}
}

static void add_net(struct vm *vm, struct line *l, unsigned i, struct net *n)
{
	char p[16];
	snprintf(p, sizeof(p), "net%u.", i);
	struct net_stats st;
	net_get_stats(n, &st);
	if (st.backend == NET_BACKEND_VHOST) {
		add_net_tap(l, p, vm->cfg->nets[i].tap);
		return;
	}
	add(l, " %ssource=device", p);
	add_u64(l, p, "rx_packets", st.rx_frames);
	add_u64(l, p, "rx_bytes", st.rx_bytes);
	add_u64(l, p, "tx_packets", st.tx_frames);
	add_u64(l, p, "tx_bytes", st.tx_bytes);
	add_u64(l, p, "rx_drops", st.rx_dropped_small + st.rx_bad_buffers + st.rx_short);
	add_u64(l, p, "tx_drops", st.tx_bad + st.tx_errors + st.tx_dropped_link_down);
	add_u64(l, p, "rx_throttled", st.rx_throttled);
	add_u64(l, p, "tx_throttled", st.tx_throttled);
	for (unsigned q = 0; q < st.max_pairs; q++) {
		const struct net_queue_stats *s = &st.q[q];
		char pq[24];
		snprintf(pq, sizeof(pq), "net%u.q%u.", i, q);
		add_u64(l, pq, "rx_packets", s->rx_packets);
		add_u64(l, pq, "rx_bytes", s->rx_bytes);
		add_u64(l, pq, "rx_drops", s->rx_drops);
		add_u64(l, pq, "tx_packets", s->tx_packets);
		add_u64(l, pq, "tx_bytes", s->tx_bytes);
		add_u64(l, pq, "tx_drops", s->tx_drops);
	}
}

/* vhost-vsock moves the packets in the kernel: only the device's own
 * counters (connections the userspace backend saw, resets) then exist. */
static void add_vsock(struct line *l, struct vsock *v)
{
	struct vsock_stats st;
	vsock_get_stats(v, &st);
	add(l, " vsock.source=%s", st.vhost ? "vhost" : "device");
	if (st.vhost) {
		add_u64(l, "vsock.", "needs_reset", st.needs_reset);
		return;
	}
	add_u64(l, "vsock.", "rx_packets", st.rx_packets);
	add_u64(l, "vsock.", "rx_bytes", st.rx_bytes);
	add_u64(l, "vsock.", "tx_packets", st.tx_packets);
	add_u64(l, "vsock.", "tx_bytes", st.tx_bytes);
	add_u64(l, "vsock.", "bad_packets", st.bad_packets);
	add_u64(l, "vsock.", "resets_sent", st.resets_sent);
	add_u64(l, "vsock.", "conns_opened", st.conns_opened);
	add_u64(l, "vsock.", "conns", st.conns);
	add_u64(l, "vsock.", "needs_reset", st.needs_reset);
}

size_t vm_metrics_format(struct vm *vm, char *buf, size_t len)
{
	struct line l = { .buf = buf, .len = len };
	if (len < LINE_TAIL + 1) {
		if (len)
			buf[0] = 0;
		return 0;
	}
	buf[0] = 0;
	add_u64(&l, "", "ts_ms", now_ns(CLOCK_REALTIME) / 1000000);
	add_u64(&l, "", "uptime_ms", (now_ns(CLOCK_MONOTONIC) - vm->metrics.start_ns) / 1000000);
	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		add_vcpu(vm, &l, i);
	for (unsigned i = 0; i < CONFIG_MAX_DISKS; i++)
		if (vm->disks[i])
			add_disk(&l, i, vm->disks[i]);
	for (unsigned i = 0; i < CONFIG_MAX_NETS; i++)
		if (vm->nets[i])
			add_net(vm, &l, i, vm->nets[i]);
	if (vm->vsock)
		add_vsock(&l, vm->vsock);
	if (vm->balloon) {
		struct virtio_balloon_info bi;
		virtio_balloon_get(vm->balloon, &bi);
		add_u64(&l, "", "balloon_target", bi.target);
		add_u64(&l, "", "balloon_actual", bi.actual);
	}
	struct ram_stats rs;
	memset(&rs, 0, sizeof(rs));
	if (ram_stats_read(vm->ram.base, vm->ram.size, &rs) == 0) {
		add_u64(&l, "", "ram_rss", rs.rss);
		add_u64(&l, "", "hugetlb", rs.hugetlb);
		add_u64(&l, "", "thp", rs.thp);
		add_u64(&l, "", "swap", rs.swap);
	}
	if (l.truncated) {
		l.used = l.last_whole;
		memcpy(buf + l.used, " truncated=yes", LINE_TAIL);
		l.used += LINE_TAIL - 1;
	}
	return l.used;
}

/* ------------------------------------------------------- metrics_file */

static void write_line(struct vm *vm)
{
	struct vm_metrics *m = &vm->metrics;
	size_t n = vm_metrics_format(vm, m->line, VM_METRICS_MAX_LINE);
	m->line[n] = '\n'; /* the leading blank stays: "ts_ms=" is the first field */
	const char *p = m->line + 1;
	size_t left = n;
	while (left) {
		ssize_t w = write(m->file_fd, p, left);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			if (!m->file_failed)
				log_err(&vm->log, "metrics", "writing %s: %s (logged once)",
					vm->cfg->metrics_file, w < 0 ? strerror(errno) : "nothing written");
			m->file_failed = true;
			return;
		}
		p += w;
		left -= (size_t)w;
	}
}

void vm_metrics_flush(struct vm *vm)
{
	if (vm->metrics.file_fd >= 0)
		write_line(vm);
}

static void on_period(void *cookie, uint32_t events)
{
	struct vm *vm = cookie;
	uint64_t n;
	(void)events;
	if (read(vm->metrics.timer_fd, &n, sizeof(n)) == sizeof(n))
		write_line(vm);
}

static int start_file(struct vm *vm)
{
	struct vm_metrics *m = &vm->metrics;
	const char *path = vm->cfg->metrics_file;
	m->line = malloc(VM_METRICS_MAX_LINE + 1);
	if (!m->line)
		return -ENOMEM;
	m->file_fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0644);
	if (m->file_fd < 0) {
		int e = errno;
		log_err(&vm->log, "metrics", "metrics_file: opening %s: %s", path, strerror(e));
		return -e;
	}
	m->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (m->timer_fd < 0) {
		int e = errno;
		log_err(&vm->log, "metrics", "metrics_period: timerfd_create: %s", strerror(e));
		return -e;
	}
	unsigned ms = vm->cfg->metrics_period_ms;
	struct timespec t = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000 };
	struct itimerspec its = { .it_value = t, .it_interval = t };
	if (timerfd_settime(m->timer_fd, 0, &its, NULL) < 0) {
		int e = errno;
		log_err(&vm->log, "metrics", "metrics_period: timerfd_settime: %s", strerror(e));
		return -e;
	}
	int rc = evloop_add(vm->loop, m->timer_fd, EPOLLIN, on_period, vm);
	if (rc < 0) {
		log_err(&vm->log, "metrics", "metrics_period: watching the timer: %s", strerror(-rc));
		close(m->timer_fd);
		m->timer_fd = -1;
	}
	return rc;
}

int vm_metrics_start(struct vm *vm)
{
	struct vm_metrics *m = &vm->metrics;
	m->file_fd = m->timer_fd = -1;
	m->start_ns = now_ns(CLOCK_MONOTONIC);
	if (vm->cfg->metrics && vm->nr_vcpus) {
		m->vcpu_stats = calloc(vm->nr_vcpus, sizeof(*m->vcpu_stats));
		if (!m->vcpu_stats)
			return -ENOMEM;
		for (unsigned i = 0; i < vm->nr_vcpus; i++)
			m->vcpu_stats[i].fd = -1;
		m->nr_vcpus = vm->nr_vcpus;
		for (unsigned i = 0; i < vm->nr_vcpus; i++) {
			char who[16];
			snprintf(who, sizeof(who), "vcpu%u", i);
			int rc = kvm_stats_open(&m->vcpu_stats[i], vm->vcpus[i].fd, &vm->log, who);
			if (rc < 0)
				return rc;
			if (m->vcpu_stats[i].fd < 0)
				break; /* the kernel has none: said once */
		}
	}
	return vm->cfg->metrics_file ? start_file(vm) : 0;
}

void vm_metrics_stop(struct vm *vm)
{
	struct vm_metrics *m = &vm->metrics;
	if (m->timer_fd >= 0) {
		evloop_del(vm->loop, m->timer_fd);
		close(m->timer_fd);
	}
	if (m->file_fd >= 0)
		close(m->file_fd);
	m->timer_fd = m->file_fd = -1;
	for (unsigned i = 0; m->vcpu_stats && i < m->nr_vcpus; i++)
		kvm_stats_close(&m->vcpu_stats[i]);
	free(m->vcpu_stats);
	m->vcpu_stats = NULL;
	free(m->line);
	m->line = NULL;
}
