/* blk_bench: the virtio-blk device (virtio/blk.c + block/ io_uring engine)
 * against raw fio on the same file, on the host, without a guest.
 *
 * How it measures: the harness plays the guest driver. The rings and the
 * data buffers live in an anonymous mapping registered as guest RAM; the
 * driver (main thread, standing in for a vCPU) fills the avail ring,
 * kicks by writing the queue's kick eventfd (what KVM's ioeventfd does),
 * and sleeps on an eventfd that the device's transport hook writes (what
 * KVM's irqfd does). The device runs on its own event thread exactly as in
 * kvmrun: epoll on the kick fd and the io_uring completion eventfd, pop,
 * parse, submit, reap, push, interrupt. VIRTIO_F_EVENT_IDX is negotiated
 * and the driver honours avail_event/used_event like Linux does, so kicks
 * and interrupts are coalesced the same way. CPU cost of the device is the
 * event thread's CPU time (pthread_getcpuclockid); the process total
 * (getrusage, which includes the driver thread and io_uring workers) is
 * printed too.
 *
 * The driver keeps exactly QD requests in flight: every completion it
 * finds is refilled at once, and one kick covers the batch.
 *
 * Noise: build machines are small and shared, and fio's own figure moves
 * by +-30% between runs. Each workload therefore runs --repeat rounds of
 * kvmrun then fio (odd rounds: fio first); the table gives medians, and
 * the ratio is the median of the per-round ratios. Each round also times
 * an eventfd ping-pong between two threads (the kick + interrupt round
 * trip that the model adds to every request and fio never pays), printed
 * next to QD1's latency gap.
 *
 * Usage: blk_bench [--file PATH] [--size BYTES] [--runtime SECONDS]
 *                  [--repeat N] [--only qd1,qd32,w32,sr8,sw8]
 *                  [--poll-us N] [--submit-batch N] [--metrics on|off|ab]
 *                  [--cache none|writeback] [--no-fio] [--keep]
 * --poll-us sets the device's busy-poll budget (virtio_blk_params.poll_us,
 * default 0: off); --submit-batch the requests the engine stages before
 * it submits them (virtio_blk_params.submit_batch, the diskN.submit_batch key;
 * default 2; 256 submits each notification's batch in one syscall);
 * --metrics the request timing behind the latency histogram
 * (virtio_blk_params.metrics, the metrics key; default off here, so older
 * figures stay comparable); --metrics ab runs each round twice on the same
 * device, metrics off and on (virtio_blk_set_metrics; odd rounds on
 * first), instead of kvmrun and fio, and prints the on/off ratio, of
 * IOPS and of the device thread's CPU time per request; --cache writeback
 * reads through the page cache (a CPU-bound device: where counting would
 * show most, and no disk noise; fio's baseline is then not comparable). The
 * file (default /var/tmp/kvmrun-blk-bench.img, 1 GiB) is filled with data
 * first: a sparse file reads its holes without any I/O. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "virtio/blk.h"
#include "lib/evloop.h"

#define RAM_SIZE (64u << 20)
#define QSIZE 256u
#define DESC_GPA 0x0000u
#define AVAIL_GPA 0x1000u
#define USED_GPA 0x2000u
#define HDR_GPA 0x4000u
#define STATUS_GPA 0x5000u
#define DATA_GPA 0x100000u
#define MAX_QD 64u
#define MAX_BS (128u * 1024)
#define MAX_REPEAT 15u

#define F_NEXT 1u
#define F_WRITE 2u

struct workload {
	const char *name;
	const char *key;      /* for --only */
	const char *fio_rw;   /* randread, randwrite, read, write */
	unsigned bs, qd;
	bool write, random;
};

static const struct workload workloads[] = {
	{ "4k randread QD1", "qd1", "randread", 4096, 1, false, true },
	{ "4k randread QD32", "qd32", "randread", 4096, 32, false, true },
	{ "4k randwrite QD32", "w32", "randwrite", 4096, 32, true, true },
	{ "128k seqread QD8", "sr8", "read", 128 * 1024, 8, false, false },
	{ "128k seqwrite QD8", "sw8", "write", 128 * 1024, 8, true, false },
};
#define NR_WORKLOADS (sizeof(workloads) / sizeof(workloads[0]))

struct result {
	double iops, mbs;
	double dev_cpu_us_per_req, dev_core_pct, drv_core_pct, proc_core_pct;
	uint64_t kicks, irqs;
	bool ok;
};

struct bench {
	uint8_t *ram;
	struct guest_mem mem;
	struct evloop *loop;
	struct logger lg;
	struct virtio_platform plat;
	struct virtio_blk *blk;
	struct virtio_dev *d;
	int irq_fd;
	pthread_t ev_thread;
	bool stop;            /* __atomic */
	uint64_t irqs;
	/* driver state */
	uint16_t avail_idx, last_used;
	uint64_t size, seq_off;
	uint64_t rng;
	unsigned poll_us;     /* virtio_blk_params.poll_us */
	unsigned submit_batch; /* virtio_blk_params.submit_batch */
	bool metrics;         /* virtio_blk_params.metrics */
	bool writeback;       /* --cache writeback: the page cache, no disk */
	bool readonly;        /* virtio_blk_params.readonly */
	enum overlay_kind overlay; /* virtio_blk_params.overlay.kind */
};


static void on_signal_queue(struct virtio_dev *d, unsigned q)
{
	struct bench *b = d->transport;
	uint64_t one = 1;
	__atomic_fetch_add(&b->irqs, 1, __ATOMIC_RELAXED);
	if (write(b->irq_fd, &one, sizeof(one)) != sizeof(one))
		abort();
}

static void on_signal_config(struct virtio_dev *d)
{
	fprintf(stderr, "blk_bench: config interrupt (device needs reset?)\n");
}

static const struct virtio_transport_ops bench_tops = {
	.signal_queue = on_signal_queue,
	.signal_config = on_signal_config,
};

static uint8_t *gpa(struct bench *b, uint64_t a)
{
	return b->ram + a;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static double cpu_s(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static double rusage_s(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static void *event_thread(void *arg)
{
	struct bench *b = arg;
	while (!__atomic_load_n(&b->stop, __ATOMIC_RELAXED))
		if (evloop_run_once(b->loop, 50) < 0)
			break;
	return NULL;
}

static uint64_t rnd(struct bench *b)
{
	uint64_t x = b->rng;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return b->rng = x;
}

/* ---- the driver side ---- */

static void desc(struct bench *b, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags,
		 uint16_t next)
{
	uint8_t *p = gpa(b, DESC_GPA + 16u * i);
	memcpy(p, &addr, 8);
	memcpy(p + 8, &len, 4);
	memcpy(p + 12, &flags, 2);
	memcpy(p + 14, &next, 2);
}

static uint16_t *avail_ring(struct bench *b)
{
	return (uint16_t *)gpa(b, AVAIL_GPA + 4);
}

static uint16_t *used_event(struct bench *b)
{
	return (uint16_t *)gpa(b, AVAIL_GPA + 4 + 2 * QSIZE);
}

static uint16_t *avail_event(struct bench *b)
{
	return (uint16_t *)gpa(b, USED_GPA + 4 + 8 * QSIZE);
}

static uint16_t used_idx(struct bench *b)
{
	return __atomic_load_n((uint16_t *)gpa(b, USED_GPA + 2), __ATOMIC_ACQUIRE);
}

/* Request slot @s: descriptors 3s..3s+2, header, status and data buffer. */
static void queue_req(struct bench *b, const struct workload *w, unsigned s)
{
	uint64_t off;
	if (w->random) {
		off = rnd(b) % (b->size / w->bs) * w->bs;
	} else {
		off = b->seq_off;
		b->seq_off += w->bs;
		if (b->seq_off + w->bs > b->size)
			b->seq_off = 0;
	}
	uint8_t *h = gpa(b, HDR_GPA + 16u * s);
	uint32_t type = w->write ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN;
	uint64_t sector = off / 512;
	memcpy(h, &type, 4);
	memset(h + 4, 0, 4);
	memcpy(h + 8, &sector, 8);
	*gpa(b, STATUS_GPA + s) = 0xff;
	uint16_t d0 = (uint16_t)(3 * s);
	desc(b, d0, HDR_GPA + 16u * s, 16, F_NEXT, (uint16_t)(d0 + 1));
	desc(b, (uint16_t)(d0 + 1), DATA_GPA + (uint64_t)s * MAX_BS, w->bs,
	     (uint16_t)(F_NEXT | (w->write ? 0 : F_WRITE)), (uint16_t)(d0 + 2));
	desc(b, (uint16_t)(d0 + 2), STATUS_GPA + s, 1, F_WRITE, 0);
	avail_ring(b)[b->avail_idx % QSIZE] = d0;
	b->avail_idx++;
}

/* Publishes avail->idx and kicks if the device asked for it (2.7.10). */
static bool publish(struct bench *b, uint16_t old)
{
	__atomic_store_n((uint16_t *)gpa(b, AVAIL_GPA + 2), b->avail_idx, __ATOMIC_RELEASE);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	uint16_t ev = __atomic_load_n(avail_event(b), __ATOMIC_RELAXED);
	uint16_t nw = b->avail_idx;
	if ((uint16_t)(nw - ev - 1) < (uint16_t)(nw - old)) {
		uint64_t one = 1;
		if (write(b->d->queues[0].kick_fd, &one, sizeof(one)) != sizeof(one))
			abort();
		return true;
	}
	return false;
}

static void wait_irq(struct bench *b)
{
	uint64_t v;
	if (read(b->irq_fd, &v, sizeof(v)) != sizeof(v) && errno != EINTR)
		abort();
}

static struct result run_kvmrun(struct bench *b, const struct workload *w, double runtime)
{
	struct result r = { .ok = true };
	clockid_t evclk;
	pthread_getcpuclockid(b->ev_thread, &evclk);
	b->seq_off = 0;
	uint64_t irqs0 = __atomic_load_n(&b->irqs, __ATOMIC_RELAXED);
	uint64_t kicks = 0, done = 0, errors = 0;
	unsigned outstanding = 0;

	double t0 = now_s(), ev0 = cpu_s(evclk), pr0 = rusage_s();
	double dr0 = cpu_s(CLOCK_THREAD_CPUTIME_ID);
	uint16_t old = b->avail_idx;
	for (unsigned s = 0; s < w->qd; s++) {
		queue_req(b, w, s);
		outstanding++;
	}
	kicks += publish(b, old);
	double end = t0 + runtime;
	bool stopping = false;
	while (outstanding) {
		/* ask for an interrupt at the next used buffer, then re-check
		 * (2.7.10: used_event) */
		__atomic_store_n(used_event(b), b->last_used, __ATOMIC_RELAXED);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		if (used_idx(b) == b->last_used)
			wait_irq(b);
		uint16_t ui = used_idx(b);
		old = b->avail_idx;
		if (!stopping && now_s() >= end)
			stopping = true;
		while (b->last_used != ui) {
			const uint8_t *e = gpa(b, USED_GPA + 4 + 8u * (b->last_used % QSIZE));
			uint32_t id;
			memcpy(&id, e, 4);
			b->last_used++;
			unsigned s = id / 3;
			if (*gpa(b, STATUS_GPA + s) != VIRTIO_BLK_S_OK)
				errors++;
			done++;
			outstanding--;
			if (!stopping) {
				queue_req(b, w, s);
				outstanding++;
			}
		}
		if (b->avail_idx != old)
			kicks += publish(b, old);
	}
	double t1 = now_s(), ev1 = cpu_s(evclk), pr1 = rusage_s();
	double dr1 = cpu_s(CLOCK_THREAD_CPUTIME_ID);
	double el = t1 - t0;
	r.iops = done / el;
	r.mbs = done * (double)w->bs / el / 1e6;
	r.dev_cpu_us_per_req = done ? (ev1 - ev0) / done * 1e6 : 0;
	r.dev_core_pct = (ev1 - ev0) / el * 100;
	r.drv_core_pct = (dr1 - dr0) / el * 100;
	r.proc_core_pct = (pr1 - pr0) / el * 100;
	r.kicks = kicks;
	r.irqs = __atomic_load_n(&b->irqs, __ATOMIC_RELAXED) - irqs0;
	if (errors) {
		fprintf(stderr, "blk_bench: %s: %" PRIu64 " requests failed\n", w->name, errors);
		r.ok = false;
	}
	return r;
}

/* ---- the model's floor ----
 *
 * Every request costs this harness one round trip that fio does not pay:
 * the driver's kick wakes the event thread and the device's interrupt
 * wakes the driver (in a VM: ioeventfd and irqfd). pingpong_us() measures
 * that round trip alone (eventfd + epoll between two threads, no I/O) in
 * the same round, so QD1's gap to fio can be split into what the model
 * costs on this host right now and what the device adds. */

struct pingpong {
	int to_dev, to_drv, ep;
};

static void *pingpong_thread(void *arg)
{
	struct pingpong *p = arg;
	for (;;) {
		struct epoll_event ev;
		uint64_t v;
		if (epoll_wait(p->ep, &ev, 1, -1) < 0 && errno != EINTR)
			abort();
		if (read(p->to_dev, &v, sizeof(v)) != sizeof(v))
			continue;
		if (v > 1)
			return NULL;
		if (write(p->to_drv, &v, sizeof(v)) != sizeof(v))
			abort();
	}
}

static double pingpong_us(unsigned n)
{
	struct pingpong p = {
		.to_dev = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK),
		.to_drv = eventfd(0, EFD_CLOEXEC),
		.ep = epoll_create1(EPOLL_CLOEXEC),
	};
	struct epoll_event ev = { .events = EPOLLIN };
	pthread_t t;
	if (p.to_dev < 0 || p.to_drv < 0 || p.ep < 0 ||
	    epoll_ctl(p.ep, EPOLL_CTL_ADD, p.to_dev, &ev) < 0 ||
	    pthread_create(&t, NULL, pingpong_thread, &p))
		abort();
	double t0 = now_s();
	uint64_t v = 1;
	for (unsigned i = 0; i < n; i++) {
		v = 1;
		if (write(p.to_dev, &v, sizeof(v)) != sizeof(v) ||
		    read(p.to_drv, &v, sizeof(v)) != sizeof(v))
			abort();
	}
	double us = (now_s() - t0) / n * 1e6;
	v = 2;
	if (write(p.to_dev, &v, sizeof(v)) != sizeof(v))
		abort();
	pthread_join(t, NULL);
	close(p.to_dev);
	close(p.to_drv);
	close(p.ep);
	return us;
}

/* ---- fio ---- */

static bool json_num(const char *json, const char *section, const char *key, double *out)
{
	char pat[64];
	snprintf(pat, sizeof(pat), "\"%s\" : {", section);
	const char *p = strstr(json, pat);
	if (!p)
		return false;
	snprintf(pat, sizeof(pat), "\"%s\" : ", key);
	p = strstr(p, pat);
	if (!p)
		return false;
	*out = strtod(p + strlen(pat), NULL);
	return true;
}

static bool run_fio(const char *path, uint64_t size, const struct workload *w, int runtime,
		    struct result *r)
{
	char cmd[1024];
	snprintf(cmd, sizeof(cmd),
		 "fio --name=bench --ioengine=io_uring --direct=1 --bs=%u --iodepth=%u "
		 "--rw=%s --filename=%s --size=%" PRIu64 " --runtime=%d --time_based "
		 "--numjobs=1 --output-format=json 2>/dev/null",
		 w->bs, w->qd, w->fio_rw, path, size, runtime);
	FILE *f = popen(cmd, "r");
	if (!f)
		return false;
	size_t cap = 1 << 20, len = 0;
	char *buf = malloc(cap);
	size_t n;
	while (buf && (n = fread(buf + len, 1, cap - 1 - len, f)) > 0)
		len += n;
	int st = pclose(f);
	if (!buf)
		return false;
	buf[len] = 0;
	double iops = 0, bw = 0, usr = 0, sys = 0;
	const char *sec = w->write ? "write" : "read";
	bool ok = st == 0 && json_num(buf, sec, "iops", &iops) &&
		  json_num(buf, sec, "bw_bytes", &bw);
	const char *u = strstr(buf, "\"usr_cpu\" : ");
	const char *s = strstr(buf, "\"sys_cpu\" : ");
	if (u)
		usr = strtod(u + 12, NULL);
	if (s)
		sys = strtod(s + 12, NULL);
	free(buf);
	if (!ok)
		return false;
	*r = (struct result){ .iops = iops, .mbs = bw / 1e6, .proc_core_pct = usr + sys,
			      .ok = true };
	if (iops > 0)
		r->dev_cpu_us_per_req = (usr + sys) / 100.0 / iops * 1e6;
	return true;
}

static bool have_fio(void)
{
	return system("fio --version >/dev/null 2>&1") == 0;
}

/* ---- setup ---- */

static int fill_file(const char *path, uint64_t size)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_DIRECT, 0600);
	if (fd < 0) {
		fprintf(stderr, "blk_bench: %s: %s\n", path, strerror(errno));
		return -1;
	}
	const size_t chunk = 4u << 20;
	uint8_t *buf = NULL;
	if (posix_memalign((void **)&buf, 4096, chunk))
		return -1;
	uint64_t x = 0x9e3779b97f4a7c15ull;
	for (size_t i = 0; i < chunk; i += 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(buf + i, &x, 8);
	}
	for (uint64_t off = 0; off < size; off += chunk) {
		size_t n = size - off < chunk ? (size_t)(size - off) : chunk;
		buf[0] = (uint8_t)(off >> 22);
		if (pwrite(fd, buf, n, (off_t)off) != (ssize_t)n) {
			fprintf(stderr, "blk_bench: writing %s: %s\n", path, strerror(errno));
			close(fd);
			free(buf);
			return -1;
		}
	}
	fsync(fd);
	close(fd);
	free(buf);
	return 0;
}

static int bench_start(struct bench *b, const char *path)
{
	b->ram = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (b->ram == MAP_FAILED)
		return -errno;
	int r = gmem_add_region(&b->mem, 0, RAM_SIZE, b->ram, -1, 0);
	if (r < 0)
		return r;
	r = evloop_create(&b->loop);
	if (r < 0)
		return r;
	log_init(&b->lg, LOG_WARN, "bench");
	b->plat = (struct virtio_platform){ .mem = &b->mem, .loop = b->loop, .log = &b->lg };
	struct virtio_blk_params p = { .path = path,
				       .cache = b->writeback ? DISK_CACHE_WRITEBACK : DISK_CACHE_NONE,
				       .io = DISK_IO_URING, .submit_batch = b->submit_batch,
				       .index = 0, .nr_queues = 1, .plat = &b->plat,
				       .serial = "bench", .poll_us = b->poll_us,
				       .metrics = b->metrics,
				       .readonly = b->readonly,
				       .overlay = { .kind = b->overlay } };
	r = virtio_blk_create(&p, &b->blk);
	if (r < 0)
		return r;
	b->d = virtio_blk_dev(b->blk);
	b->d->tops = &bench_tops;
	b->d->transport = b;
	b->irq_fd = eventfd(0, EFD_CLOEXEC);
	if (b->irq_fd < 0)
		return -errno;

	/* the driver's initialisation (3.1.1), EVENT_IDX included */
	struct virtio_dev *d = b->d;
	pthread_mutex_lock(&d->lock);
	uint8_t st = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER;
	virtio_dev_set_status(d, st);
	virtio_dev_set_driver_features(d, 0, virtio_dev_features_word(d, 0));
	virtio_dev_set_driver_features(d, 1, virtio_dev_features_word(d, 1));
	st |= VIRTIO_STATUS_FEATURES_OK;
	virtio_dev_set_status(d, st);
	d->queues[0].size = QSIZE;
	d->queues[0].desc = DESC_GPA;
	d->queues[0].driver = AVAIL_GPA;
	d->queues[0].device = USED_GPA;
	bool ok = (d->status & VIRTIO_STATUS_FEATURES_OK) && virtio_dev_queue_enable(d, 0);
	st |= VIRTIO_STATUS_DRIVER_OK;
	virtio_dev_set_status(d, st);
	ok = ok && virtio_dev_live(d) && virtio_dev_has_feature(d, VIRTIO_F_EVENT_IDX);
	pthread_mutex_unlock(&d->lock);
	if (!ok)
		return -EINVAL;
	b->rng = 0x2545f4914f6cdd1dull;
	return pthread_create(&b->ev_thread, NULL, event_thread, b) ? -EAGAIN : 0;
}

static void bench_stop(struct bench *b)
{
	__atomic_store_n(&b->stop, true, __ATOMIC_RELAXED);
	pthread_join(b->ev_thread, NULL);
	virtio_blk_destroy(b->blk);
	evloop_destroy(b->loop);
	close(b->irq_fd);
	munmap(b->ram, RAM_SIZE);
}

__attribute__((noreturn)) static void usage(void)
{
	fprintf(stderr, "usage: blk_bench [--file PATH] [--size BYTES] [--runtime SECONDS] "
			"[--repeat N] [--only qd1,qd32,w32,sr8,sw8] [--poll-us N] [--submit-batch N] "
			"[--metrics on|off|ab] [--cache none|writeback] [--no-fio] "
			"[--keep]\n");
	exit(2);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(const double *v, unsigned n)
{
	double t[MAX_REPEAT];
	memcpy(t, v, n * sizeof(*t));
	qsort(t, n, sizeof(*t), cmp_double);
	return n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
}

static bool selected(const char *only, const struct workload *w)
{
	if (!only)
		return true;
	size_t k = strlen(w->key);
	for (const char *p = only; *p;) {
		const char *e = strchr(p, ',');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		if (n == k && !strncmp(p, w->key, k))
			return true;
		p += n + (e ? 1 : 0);
	}
	return false;
}

/* Medians over the rounds of one workload. */
struct summary {
	double k_iops, k_mbs, f_iops, f_mbs, ratio;
	double dev_us, dev_pct, drv_pct, proc_pct, f_us, f_pct;
	double pp_us, extra_us;  /* model round trip; QD1 latency above fio's */
	unsigned rounds, fio_rounds;
	bool ok;
};

/* --metrics ab: the median on/off IOPS ratio of @repeat rounds of @w. */
static double run_metrics_ab(struct bench *b, const struct workload *w, int runtime,
			     unsigned repeat, double *off_med, double *on_med)
{
	double on[MAX_REPEAT], off[MAX_REPEAT], ra[MAX_REPEAT], cpu[2][MAX_REPEAT];
	printf("  %-20s", w->name);
	for (unsigned i = 0; i < repeat; i++) {
		bool on_first = i % 2 == 1;
		for (unsigned k = 0; k < 2; k++) {
			bool m = (k == 0) == on_first;
			virtio_blk_set_metrics(b->blk, m);
			struct result r = run_kvmrun(b, w, runtime);
			(m ? on : off)[i] = r.iops;
			cpu[m][i] = r.dev_cpu_us_per_req;
		}
		ra[i] = on[i] / off[i];
		printf(" [off %.0f / on %.0f%s]", off[i], on[i], on_first ? " first" : "");
		fflush(stdout);
	}
	printf("\n");
	*off_med = median(off, repeat);
	*on_med = median(on, repeat);
	printf("  device thread CPU per request: metrics=off %.3f us, metrics=on %.3f us (medians)\n",
	       median(cpu[0], repeat), median(cpu[1], repeat));
	return median(ra, repeat);
}

/* The baseline of one round: fio on the file, or (--overlay) the same
 * device without an overlay. */
static bool run_baseline(struct bench *raw, const char *path, uint64_t size,
			 const struct workload *w, int runtime, struct result *f)
{
	if (!raw)
		return run_fio(path, size, w, runtime, f);
	*f = run_kvmrun(raw, w, runtime);
	return f->ok;
}

static void run_workload(struct bench *b, struct bench *raw, const struct workload *w,
			 int runtime, unsigned repeat, bool fio, const char *path, uint64_t size,
			 struct summary *sm)
{
	double ki[MAX_REPEAT], km[MAX_REPEAT], fi[MAX_REPEAT], fm[MAX_REPEAT], ra[MAX_REPEAT];
	double du[MAX_REPEAT], dp[MAX_REPEAT], dr[MAX_REPEAT], pp[MAX_REPEAT];
	double fu[MAX_REPEAT], fp[MAX_REPEAT], pu[MAX_REPEAT], ex[MAX_REPEAT];
	unsigned nf = 0;
	memset(sm, 0, sizeof(*sm));
	sm->ok = true;
	printf("  %-20s", w->name);
	for (unsigned i = 0; i < repeat; i++) {
		/* alternate the order: the disk and the host drift over a run */
		bool fio_first = fio && i % 2 == 1;
		struct result f;
		bool f_ok = false;
		if (fio_first)
			f_ok = run_baseline(raw, path, size, w, runtime, &f);
		struct result k = run_kvmrun(b, w, runtime);
		pu[i] = pingpong_us(2000);
		if (fio && !fio_first)
			f_ok = run_baseline(raw, path, size, w, runtime, &f);
		ki[i] = k.iops;
		km[i] = k.mbs;
		du[i] = k.dev_cpu_us_per_req;
		dp[i] = k.dev_core_pct;
		dr[i] = k.drv_core_pct;
		pp[i] = k.proc_core_pct;
		if (!k.ok)
			sm->ok = false;
		printf(" [%.0f", k.iops);
		if (f_ok) {
			fi[nf] = f.iops;
			fm[nf] = f.mbs;
			fu[nf] = f.dev_cpu_us_per_req;
			fp[nf] = f.proc_core_pct;
			ra[nf] = k.iops / f.iops;
			/* at QD n, n/IOPS is the mean latency */
			ex[nf] = w->qd / k.iops * 1e6 - w->qd / f.iops * 1e6;
			nf++;
			printf(" / fio %.0f%s", f.iops, fio_first ? " first" : "");
		} else if (fio) {
			printf(" / fio failed");
		}
		printf("]");
		fflush(stdout);
	}
	printf("\n");
	sm->rounds = repeat;
	sm->fio_rounds = nf;
	sm->k_iops = median(ki, repeat);
	sm->k_mbs = median(km, repeat);
	sm->dev_us = median(du, repeat);
	sm->dev_pct = median(dp, repeat);
	sm->drv_pct = median(dr, repeat);
	sm->proc_pct = median(pp, repeat);
	sm->pp_us = median(pu, repeat);
	if (nf) {
		sm->extra_us = median(ex, nf);
		sm->f_iops = median(fi, nf);
		sm->f_mbs = median(fm, nf);
		sm->f_us = median(fu, nf);
		sm->f_pct = median(fp, nf);
		sm->ratio = median(ra, nf);
	}
}

int main(int argc, char **argv)
{
	const char *path = "/var/tmp/kvmrun-blk-bench.img";
	const char *only = NULL;
	uint64_t size = 1ull << 30;
	int runtime = 5;
	unsigned repeat = 1;
	unsigned poll_us = 0, submit_batch = 0;
	bool fio = true, keep = false, metrics = false, ab = false, writeback = false;
	bool overlay = false;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--file") && i + 1 < argc)
			path = argv[++i];
		else if (!strcmp(argv[i], "--size") && i + 1 < argc)
			size = strtoull(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--runtime") && i + 1 < argc)
			runtime = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--repeat") && i + 1 < argc)
			repeat = (unsigned)atoi(argv[++i]);
		else if (!strcmp(argv[i], "--only") && i + 1 < argc)
			only = argv[++i];
		else if (!strcmp(argv[i], "--poll-us") && i + 1 < argc)
			poll_us = (unsigned)atoi(argv[++i]);
		else if (!strcmp(argv[i], "--submit-batch") && i + 1 < argc)
			submit_batch = (unsigned)atoi(argv[++i]);
		else if (!strcmp(argv[i], "--metrics") && i + 1 < argc) {
			i++;
			metrics = !strcmp(argv[i], "on");
			ab = !strcmp(argv[i], "ab");
		}
		else if (!strcmp(argv[i], "--cache") && i + 1 < argc)
			writeback = !strcmp(argv[++i], "writeback");
		else if (!strcmp(argv[i], "--no-fio"))
			fio = false;
		else if (!strcmp(argv[i], "--keep"))
			keep = true;
		else if (!strcmp(argv[i], "--overlay"))
			overlay = true;
		else
			usage();
	}
	if (!path || runtime <= 0 || size < (16u << 20) || size % MAX_BS || repeat == 0 ||
	    repeat > MAX_REPEAT)
		usage();
	bool any = false;
	for (unsigned i = 0; i < NR_WORKLOADS; i++)
		any |= selected(only, &workloads[i]);
	if (!any)
		usage();
	if (overlay && (!only || strstr(only, "w32") || strstr(only, "sw8")))
		only = "qd1,qd32,sr8"; /* reads: the base is read-only to both devices */
	if (fio && !overlay && !have_fio()) {
		printf("fio not found: the baseline is missing; printing kvmrun figures only\n");
		fio = false;
	}
	struct stat sb;
	if (stat(path, &sb) == 0 && (uint64_t)sb.st_size == size && (uint64_t)sb.st_blocks * 512 >= size) {
		printf("using %s (%" PRIu64 " MiB, already filled)\n", path, size >> 20);
	} else {
		printf("filling %s with %" PRIu64 " MiB of data (not sparse)...\n", path, size >> 20);
		fflush(stdout);
		if (fill_file(path, size) < 0)
			return 1;
	}

	struct summary sm[NR_WORKLOADS];
	struct bench b;
	memset(&b, 0, sizeof(b));
	b.size = size;
	b.poll_us = poll_us;
	b.submit_batch = submit_batch;
	b.metrics = metrics;
	b.writeback = writeback;
	/* --overlay: the device under disk.overlay=memory against the same
	 * device on the read-only base, both kvmrun, in the same rounds */
	struct bench raw;
	memset(&raw, 0, sizeof(raw));
	raw = b;
	raw.readonly = true;
	b.overlay = overlay ? OVERLAY_MEMORY : OVERLAY_NONE;
	int r = bench_start(&b, path);
	if (r == 0 && overlay)
		r = bench_start(&raw, path);
	if (r < 0) {
		fprintf(stderr, "blk_bench: device setup: %s\n", strerror(-r));
		return 1;
	}
	struct virtio_blk_stats st0;
	virtio_blk_get_stats(b.blk, &st0);
	char sb_text[16] = "default";
	if (submit_batch)
		snprintf(sb_text, sizeof(sb_text), "%u", submit_batch);
	printf("device: virtio-blk, 1 queue of %u, engine %s, cache=%s, busy-poll %u us, submit batch %s, "
	       "metrics %s; %d s per run, %u round%s per workload%s\n", QSIZE, st0.engine,
	       writeback ? "writeback" : "none",
	       poll_us, sb_text, metrics ? "on" : "off", runtime, repeat,
	       repeat == 1 ? "" : "s", fio && repeat > 1 ? " (odd rounds run fio first)" : "");
	if (ab) {
		printf("  per round: [IOPS with metrics=off / metrics=on]\n");
		bool met = true;
		for (unsigned i = 0; i < NR_WORKLOADS; i++) {
			if (!selected(only, &workloads[i]))
				continue;
			double off, on;
			double ra = run_metrics_ab(&b, &workloads[i], runtime, repeat, &off, &on);
			printf("%s: median metrics=off %.0f IOPS, metrics=on %.0f IOPS, "
			       "on/off %.1f%% (median of per-round ratios)\n", workloads[i].name, off, on,
			       ra * 100);
			met = met && ra >= 0.98;
		}
		printf("target (metrics cost <= 2%% of IOPS): %s\n", met ? "met" : "NOT met");
		bench_stop(&b);
		if (!keep)
			unlink(path);
		return 0;
	}
	if (overlay)
		printf("--overlay: the device under disk.overlay=memory; its baseline (the \"fio\" "
		       "columns) is the same device on the read-only base, no overlay\n");
	printf("  per round: [kvmrun IOPS / %s IOPS]\n", overlay ? "no-overlay" : "fio");
	for (unsigned i = 0; i < NR_WORKLOADS; i++)
		if (selected(only, &workloads[i]))
			run_workload(&b, overlay ? &raw : NULL, &workloads[i], runtime, repeat,
				     fio || overlay, path, size, &sm[i]);
	struct virtio_blk_stats st;
	virtio_blk_get_stats(b.blk, &st);
	bench_stop(&b);
	if (overlay)
		bench_stop(&raw);
	if (!keep)
		unlink(path);

	printf("\nmedians of %u round%s; ratio = median of the per-round kvmrun/fio ratios\n",
	       repeat, repeat == 1 ? "" : "s");
	printf("%-20s %11s %8s | %10s %8s | %6s | %10s %9s %8s %8s | %8s %8s\n", "workload",
	       "kvmrun IOPS", "MB/s", "fio IOPS", "MB/s", "ratio", "dev us/req", "dev %core",
	       "drv %", "proc %", "fio us/req", "fio %cpu");
	bool pass = true;
	for (unsigned i = 0; i < NR_WORKLOADS; i++) {
		if (!selected(only, &workloads[i]))
			continue;
		const struct summary *k = &sm[i];
		printf("%-20s %11.0f %8.1f | ", workloads[i].name, k->k_iops, k->k_mbs);
		if (k->fio_rounds)
			printf("%10.0f %8.1f | %5.1f%% | ", k->f_iops, k->f_mbs, k->ratio * 100);
		else
			printf("%10s %8s | %6s | ", "-", "-", "-");
		printf("%10.2f %8.1f%% %7.1f%% %7.1f%% | ", k->dev_us, k->dev_pct, k->drv_pct,
		       k->proc_pct);
		if (k->fio_rounds)
			printf("%8.2f %7.1f%%\n", k->f_us, k->f_pct);
		else
			printf("%8s %8s\n", "-", "-");
		if (!k->ok)
			pass = false;
	}
	printf("\ndev = the device's event thread, drv = the driver thread (the guest's "
	       "share), proc = the whole process\n");
	for (unsigned i = 0; i < NR_WORKLOADS; i++) {
		if (!selected(only, &workloads[i]) || workloads[i].qd != 1 || !sm[i].fio_rounds)
			continue;
		printf("%s: latency above fio's %.1f us, of which the model's kick+interrupt "
		       "round trip (eventfd ping-pong, same rounds) %.1f us\n", workloads[i].name,
		       sm[i].extra_us, sm[i].pp_us);
	}
	printf("requests %" PRIu64 ", bounced %" PRIu64 ", errors %" PRIu64 ", notifies %" PRIu64
	       ", reaps %" PRIu64 ", found by polling %" PRIu64 "\n", st.requests, st.bounced,
	       st.ioerr + st.unsupp, st.notifies, st.reaps, st.polled);
	uint64_t timed = 0;
	for (unsigned k = 0; k < VIRTIO_BLK_LAT_BUCKETS; k++)
		timed += st.lat_us[k];
	printf("requests timed for the latency histogram: %" PRIu64 "\n", timed);
	/* the target from the issue: >= 90%% of fio's IOPS at QD32 on <= 1 core */
	if (selected(only, &workloads[1]) && sm[1].fio_rounds) {
		double ratio = sm[1].ratio;
		printf("target (4k randread QD32 >= 90%% of fio, device <= 1 core): %.1f%% of fio, "
		       "%.1f%% of a core: %s\n", ratio * 100, sm[1].dev_pct,
		       ratio >= 0.9 && sm[1].dev_pct <= 100 ? "met" : "NOT met");
	}
	return pass ? 0 : 1;
}
