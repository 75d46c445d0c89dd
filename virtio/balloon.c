/* virtio-balloon device model (virtio spec 1.2, section 5.5). See balloon.h.
 *
 * Tracking: one bit per 4 KiB page of the guest-physical range up to the end
 * of RAM says "in the balloon". With a backing page larger than 4 KiB, a
 * count per backing page says how many of its 4 KiB pages are in; the
 * backing page is discarded when the count reaches page_size / 4 KiB.
 * Discards of consecutive pages in one chain are merged into one call. */
#include "virtio/balloon.h"
#include "virtio/device_state.h"

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

_Static_assert(sizeof(struct virtio_balloon_config) == 16, "5.5.4 layout");
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "virtio 1.x is little-endian");

#define BALLOON_CHAIN_CAP 256      /* segments vq_pop() may return */
#define BALLOON_MAX_STATS 256      /* entries in one stats buffer */

/* What one notify may do before it yields to the rest of the event loop
 * and re-kicks its queue (virtio_dev_rekick): a guest that keeps its ring
 * full must not starve signals, timeout=, the control socket and I/O.
 * Linux posts at most 256 PFNs per buffer; one kick of these costs well
 * under a millisecond. */
#define BALLOON_KICK_CHAINS 64     /* chains of any queue */
#define BALLOON_KICK_PFNS 65536    /* inflated/deflated PFNs */
#define BALLOON_KICK_RANGES 256    /* free page reporting ranges */

#define STR_(x) #x
#define STR(x) STR_(x)

enum balloon_role { ROLE_NONE, ROLE_INFLATE, ROLE_DEFLATE, ROLE_STATS, ROLE_REPORTING };

/* Kinds of guest mistakes, each logged once per device. */
enum balloon_warn {
	WARN_RANGE, WARN_DUP_INFLATE, WARN_DUP_DEFLATE, WARN_LENGTH, WARN_BIG, WARN_STATS,
	WARN_NR
};

struct virtio_balloon {
	struct virtio_dev dev;
	struct virtio_dev_ops ops;
	const struct virtio_platform *plat;
	const char *name;
	struct virtio_balloon_config cfg;
	uint64_t ram_size;
	uint64_t page_size;
	uint32_t pages_per_unit;          /* 4 KiB pages per backing page */
	int (*discard)(void *cookie, uint64_t gpa, uint64_t len);
	void *discard_cookie;
	unsigned stats_period;

	enum balloon_role role[4];        /* by queue index, per negotiated features */
	int stats_q;                      /* queue index of statsq, or -1 */

	uint64_t nr_pfns;                 /* bits in bitmap */
	uint64_t *bitmap;
	uint32_t *unit_count;             /* per backing page; NULL with 4 KiB backing */
	uint64_t nr_units;
	uint64_t run_gpa, run_len;        /* discard being merged */

	int timer_fd;
	bool timer_watched;
	bool stats_held;                  /* the driver's stats buffer is with us */
	uint16_t stats_head;
	uint64_t stats_ns;

	struct virtio_balloon_info info;  /* counters; target/actual filled by get */
	bool warned[WARN_NR];
	struct log_ratelimit rl;
	struct vq_seg segs[BALLOON_CHAIN_CAP];
};

static const char *const stat_names[VIRTIO_BALLOON_S_NR] = {
	[VIRTIO_BALLOON_S_SWAP_IN] = "swap_in",
	[VIRTIO_BALLOON_S_SWAP_OUT] = "swap_out",
	[VIRTIO_BALLOON_S_MAJFLT] = "major_faults",
	[VIRTIO_BALLOON_S_MINFLT] = "minor_faults",
	[VIRTIO_BALLOON_S_MEMFREE] = "free_memory",
	[VIRTIO_BALLOON_S_MEMTOT] = "total_memory",
	[VIRTIO_BALLOON_S_AVAIL] = "available_memory",
	[VIRTIO_BALLOON_S_CACHES] = "disk_caches",
	[VIRTIO_BALLOON_S_HTLB_PGALLOC] = "hugetlb_allocations",
	[VIRTIO_BALLOON_S_HTLB_PGFAIL] = "hugetlb_failures",
};

const char *balloon_stat_name(unsigned tag)
{
	return tag < VIRTIO_BALLOON_S_NR ? stat_names[tag] : NULL;
}

bool balloon_stat_is_bytes(unsigned tag)
{
	return tag == VIRTIO_BALLOON_S_SWAP_IN || tag == VIRTIO_BALLOON_S_SWAP_OUT ||
	       (tag >= VIRTIO_BALLOON_S_MEMFREE && tag <= VIRTIO_BALLOON_S_CACHES);
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---------------------------------------------------------------- parsing */

/* Copies @len bytes at offset @off of the readable byte stream of @c. */
static void readable_copy(const struct vq_chain *c, uint64_t off, void *dst, size_t len)
{
	uint8_t *d = dst;
	for (uint32_t i = 0; i < c->nr_readable && len; i++) {
		const struct vq_seg *s = &c->segs[i];
		if (off >= s->len) {
			off -= s->len;
			continue;
		}
		size_t part = s->len - off;
		if (part > len)
			part = len;
		memcpy(d, (const uint8_t *)s->host + off, part);
		d += part;
		len -= part;
		off = 0;
	}
}

int balloon_stats_parse(const struct vq_chain *c, struct balloon_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (c->readable_len % VIRTIO_BALLOON_STAT_BYTES ||
	    c->readable_len > BALLOON_MAX_STATS * VIRTIO_BALLOON_STAT_BYTES)
		return -EINVAL;
	int n = (int)(c->readable_len / VIRTIO_BALLOON_STAT_BYTES);
	for (int i = 0; i < n; i++) {
		uint8_t raw[VIRTIO_BALLOON_STAT_BYTES];
		readable_copy(c, (uint64_t)i * VIRTIO_BALLOON_STAT_BYTES, raw, sizeof(raw));
		uint16_t tag;
		uint64_t val;
		memcpy(&tag, raw, 2);
		memcpy(&val, raw + 2, 8);
		if (tag >= VIRTIO_BALLOON_S_NR) {
			out->unknown++;
			continue;
		}
		out->val[tag] = val;
		out->valid |= 1u << tag;
	}
	return n;
}

/* ---------------------------------------------------------------- helpers */

static void warn_once(struct virtio_balloon *b, enum balloon_warn w, const char *fmt,
		      uint64_t arg)
{
	if (b->warned[w])
		return;
	b->warned[w] = true;
	log_warn(b->plat->log, b->name, fmt, arg);
}

static bool bit_test(const struct virtio_balloon *b, uint64_t pfn)
{
	return (b->bitmap[pfn / 64] >> (pfn % 64)) & 1;
}

static void bit_set(struct virtio_balloon *b, uint64_t pfn)
{
	b->bitmap[pfn / 64] |= 1ull << (pfn % 64);
}

static void bit_clear(struct virtio_balloon *b, uint64_t pfn)
{
	b->bitmap[pfn / 64] &= ~(1ull << (pfn % 64));
}

static void discard_flush(struct virtio_balloon *b)
{
	if (!b->run_len)
		return;
	int rc = b->discard(b->discard_cookie, b->run_gpa, b->run_len);
	if (rc < 0) {
		b->info.discard_errors++;
		log_ratelimited(b->plat->log, &b->rl, b->name,
				"discarding 0x%" PRIx64 "+0x%" PRIx64 ": %s", b->run_gpa,
				b->run_len, strerror(-rc));
	}
	b->run_len = 0;
}

/* Queues [gpa, gpa+len) for discarding, merged with the pending range
 * when adjacent (above or below); discard_flush() does it. */
static void discard_add(struct virtio_balloon *b, uint64_t gpa, uint64_t len)
{
	if (!b->discard)
		return;
	if (b->run_len && b->run_gpa + b->run_len == gpa) {
		b->run_len += len;
		return;
	}
	if (b->run_len && gpa + len == b->run_gpa) { /* drivers often go downwards */
		b->run_gpa = gpa;
		b->run_len += len;
		return;
	}
	discard_flush(b);
	b->run_gpa = gpa;
	b->run_len = len;
}

/* A 4 KiB balloon page number that lies in guest RAM, or false. */
static bool pfn_ok(const struct virtio_balloon *b, uint64_t pfn)
{
	return pfn < b->nr_pfns &&
	       gmem_find(b->plat->mem, pfn << VIRTIO_BALLOON_PFN_SHIFT,
			 VIRTIO_BALLOON_PAGE_SIZE) != NULL;
}

static void page_inflate(struct virtio_balloon *b, uint64_t pfn)
{
	if (!pfn_ok(b, pfn)) {
		b->info.bad_pfns++;
		warn_once(b, WARN_RANGE, "guest inflated PFN 0x%" PRIx64
			  " outside its RAM: ignored (logged once)", pfn);
		return;
	}
	if (bit_test(b, pfn)) {
		b->info.duplicate_pfns++;
		warn_once(b, WARN_DUP_INFLATE, "guest inflated PFN 0x%" PRIx64
			  " twice: ignored (logged once)", pfn);
		return;
	}
	bit_set(b, pfn);
	b->info.inflated += VIRTIO_BALLOON_PAGE_SIZE;
	b->info.inflates++;
	uint64_t gpa = pfn << VIRTIO_BALLOON_PFN_SHIFT;
	if (!b->discard)
		return; /* the host keeps the page */
	if (!b->unit_count) {
		discard_add(b, gpa, VIRTIO_BALLOON_PAGE_SIZE);
		b->info.discarded += VIRTIO_BALLOON_PAGE_SIZE;
		return;
	}
	uint64_t unit = gpa / b->page_size;
	if (++b->unit_count[unit] == b->pages_per_unit) {
		discard_add(b, unit * b->page_size, b->page_size);
		b->info.discarded += b->page_size;
	}
}

static void page_deflate(struct virtio_balloon *b, uint64_t pfn)
{
	if (!pfn_ok(b, pfn)) {
		b->info.bad_pfns++;
		warn_once(b, WARN_RANGE, "guest deflated PFN 0x%" PRIx64
			  " outside its RAM: ignored (logged once)", pfn);
		return;
	}
	if (!bit_test(b, pfn)) {
		b->info.duplicate_pfns++;
		warn_once(b, WARN_DUP_DEFLATE, "guest deflated PFN 0x%" PRIx64
			  " that is not in the balloon: ignored (logged once)", pfn);
		return;
	}
	/* Nothing to do on the host: the guest's next access refaults it. */
	bit_clear(b, pfn);
	b->info.inflated -= VIRTIO_BALLOON_PAGE_SIZE;
	b->info.deflates++;
	if (!b->discard)
		return;
	if (!b->unit_count) {
		b->info.discarded -= VIRTIO_BALLOON_PAGE_SIZE;
		return;
	}
	uint64_t unit = (pfn << VIRTIO_BALLOON_PFN_SHIFT) / b->page_size;
	if (b->unit_count[unit]-- == b->pages_per_unit)
		b->info.discarded -= b->page_size;
}

/* Applies @fn to every le32 PFN in the readable bytes of @c, unless there
 * are more than VIRTIO_BALLOON_CHAIN_PFNS of them: a buffer that large is
 * no driver's (each descriptor can point at the same gigabytes), and is
 * ignored whole. Returns the number of PFNs processed. */
static uint64_t for_each_pfn(struct virtio_balloon *b, const struct vq_chain *c,
			     void (*fn)(struct virtio_balloon *b, uint64_t pfn))
{
	if (c->readable_len > 4ull * VIRTIO_BALLOON_CHAIN_PFNS) {
		b->info.oversized++;
		warn_once(b, WARN_BIG, "guest sent a PFN buffer of %" PRIu64 " bytes, more than "
			  "the " STR(VIRTIO_BALLOON_CHAIN_PFNS) " PFNs a buffer may hold: ignored "
			  "(logged once)", c->readable_len);
		return 0;
	}
	uint8_t carry[4];
	unsigned ncarry = 0;
	for (uint32_t i = 0; i < c->nr_readable; i++) {
		const uint8_t *p = c->segs[i].host;
		uint32_t n = c->segs[i].len;
		while (n && ncarry && ncarry < sizeof(carry)) { /* a PFN split across descriptors */
			carry[ncarry++] = *p++;
			n--;
			if (ncarry == 4) {
				uint32_t pfn;
				memcpy(&pfn, carry, 4);
				fn(b, pfn);
				ncarry = 0;
			}
		}
		for (; n >= 4; p += 4, n -= 4) {
			uint32_t pfn;
			memcpy(&pfn, p, 4);
			fn(b, pfn);
		}
		while (n) {
			carry[ncarry++] = *p++;
			n--;
		}
	}
	if (ncarry)
		warn_once(b, WARN_LENGTH, "guest sent a PFN buffer of %" PRIu64
			  " bytes, not a multiple of 4: trailing bytes ignored (logged once)",
			  c->readable_len);
	discard_flush(b);
	return c->readable_len / 4;
}

/* Free page reporting (5.5.6.7): each buffer is a free range of guest
 * memory the host may drop; the guest does not touch it until the buffer
 * is used. Only whole backing pages inside the range are discarded. */
static uint32_t report_chain(struct virtio_balloon *b, const struct vq_chain *c)
{
	for (uint32_t i = 0; i < c->nr_segs; i++) {
		uint64_t start = c->segs[i].gpa, end = start + c->segs[i].len;
		uint64_t s = (start + b->page_size - 1) & ~(b->page_size - 1);
		uint64_t e = end & ~(b->page_size - 1);
		b->info.reports++;
		if (e > s) {
			discard_add(b, s, e - s);
			b->info.reported += e - s;
		}
	}
	discard_flush(b);
	return c->nr_segs;
}

/* ---------------------------------------------------------------- queues */

static struct vq *queue_vq(struct virtio_balloon *b, unsigned q)
{
	return b->dev.queues[q].vq;
}

/* Pops and processes the chains of inflate/deflate/reporting queue @q,
 * within one kick's budget: when it runs out with chains still there, the
 * queue is re-kicked and the rest waits for the event loop's next round.
 * A malformed ring puts the device in NEEDS_RESET. */
static void run_queue(struct virtio_balloon *b, unsigned q, enum balloon_role role)
{
	struct vq *vq = queue_vq(b, q);
	bool pushed = false;
	uint64_t pfns = 0, ranges = 0;
	for (unsigned chains = 0;; chains++) {
		if (chains == BALLOON_KICK_CHAINS || pfns >= BALLOON_KICK_PFNS ||
		    ranges >= BALLOON_KICK_RANGES) {
			b->info.yields++;
			virtio_dev_rekick(&b->dev, q);
			break;
		}
		struct vq_chain c = { .segs = b->segs, .cap = BALLOON_CHAIN_CAP };
		int r = vq_pop(vq, &c);
		if (r == 0)
			break;
		if (r < 0) {
			virtio_dev_needs_reset(&b->dev, vq_error(vq));
			break;
		}
		if (role == ROLE_INFLATE)
			pfns += for_each_pfn(b, &c, page_inflate);
		else if (role == ROLE_DEFLATE)
			pfns += for_each_pfn(b, &c, page_deflate);
		else
			ranges += report_chain(b, &c);
		if (vq_push(vq, c.head, 0) == 0)
			pushed = true;
	}
	if (pushed)
		virtio_dev_used(&b->dev, q);
}

/* Hands the stats buffer back so the driver refills it (5.5.6.3). */
static void stats_request(struct virtio_balloon *b)
{
	if (!b->stats_held || b->stats_q < 0 || !virtio_dev_live(&b->dev))
		return;
	struct vq *vq = queue_vq(b, (unsigned)b->stats_q);
	b->stats_held = false;
	if (vq_push(vq, b->stats_head, 0) == 0)
		virtio_dev_used(&b->dev, (unsigned)b->stats_q);
}

static void stats_queue(struct virtio_balloon *b, unsigned q)
{
	struct vq *vq = queue_vq(b, q);
	for (unsigned chains = 0;; chains++) {
		if (chains == BALLOON_KICK_CHAINS) {
			/* a driver posting buffer after buffer: each one hands
			 * the previous back, so this could go on forever */
			b->info.yields++;
			virtio_dev_rekick(&b->dev, q);
			return;
		}
		struct vq_chain c = { .segs = b->segs, .cap = BALLOON_CHAIN_CAP };
		int r = vq_pop(vq, &c);
		if (r == 0)
			return;
		if (r < 0) {
			virtio_dev_needs_reset(&b->dev, vq_error(vq));
			return;
		}
		if (b->stats_held) {
			/* a second buffer: give the older one back unread */
			if (vq_push(vq, b->stats_head, 0) == 0)
				virtio_dev_used(&b->dev, q);
		}
		b->stats_held = true;
		b->stats_head = c.head;
		struct balloon_stats st;
		if (balloon_stats_parse(&c, &st) < 0) {
			warn_once(b, WARN_STATS, "guest sent a stats buffer of %" PRIu64
				  " bytes, not whole 10-byte entries (or too many): ignored "
				  "(logged once)", c.readable_len);
			continue;
		}
		b->info.stats = st;
		b->info.stats_valid = true;
		b->info.stats_updates++;
		b->stats_ns = now_ns();
	}
}

static void timer_arm(struct virtio_balloon *b, bool on)
{
	if (b->timer_fd < 0)
		return;
	struct itimerspec its = { 0 };
	if (on) {
		its.it_value.tv_sec = b->stats_period;
		its.it_interval.tv_sec = b->stats_period;
	}
	if (timerfd_settime(b->timer_fd, 0, &its, NULL) < 0)
		log_warn(b->plat->log, b->name, "stats timer: %s", strerror(errno));
}

static void on_timer(void *cookie, uint32_t events)
{
	struct virtio_balloon *b = cookie;
	uint64_t n;
	if (read(b->timer_fd, &n, sizeof(n)) != sizeof(n))
		return;
	pthread_mutex_lock(&b->dev.lock);
	stats_request(b);
	pthread_mutex_unlock(&b->dev.lock);
}

/* --------------------------------------------------------- virtio_dev_ops */

static void balloon_config_read(struct virtio_dev *d, uint32_t off, void *data, unsigned len)
{
	struct virtio_balloon *b = d->priv;
	memcpy(data, (const uint8_t *)&b->cfg + off, len);
}

static void balloon_config_write(struct virtio_dev *d, uint32_t off, const void *data,
				 unsigned len)
{
	struct virtio_balloon *b = d->priv;
	/* 5.5.4: only `actual` is the driver's to write (poison_val needs
	 * VIRTIO_BALLOON_F_PAGE_POISON, which is not offered). */
	const uint32_t lo = offsetof(struct virtio_balloon_config, actual), hi = lo + 4;
	if (off < lo || off + len > hi)
		return;
	memcpy((uint8_t *)&b->cfg + off, data, len);
}

static bool balloon_features_ok(struct virtio_dev *d, uint64_t features)
{
	struct virtio_balloon *b = d->priv;
	unsigned q = 0;
	memset(b->role, 0, sizeof(b->role));
	b->stats_q = -1;
	b->role[q++] = ROLE_INFLATE;
	b->role[q++] = ROLE_DEFLATE;
	if (features & (1ull << VIRTIO_BALLOON_F_STATS_VQ)) {
		b->stats_q = (int)q;
		b->role[q++] = ROLE_STATS;
	}
	if (features & (1ull << VIRTIO_BALLOON_F_PAGE_REPORTING))
		b->role[q++] = ROLE_REPORTING;
	return true;
}

static int balloon_activate(struct virtio_dev *d)
{
	struct virtio_balloon *b = d->priv;
	if (b->stats_q >= 0)
		timer_arm(b, true);
	return 0;
}

static void balloon_notify(struct virtio_dev *d, unsigned q)
{
	struct virtio_balloon *b = d->priv;
	enum balloon_role role = q < 4 ? b->role[q] : ROLE_NONE;
	switch (role) {
	case ROLE_INFLATE:
	case ROLE_DEFLATE:
	case ROLE_REPORTING:
		run_queue(b, q, role);
		break;
	case ROLE_STATS:
		stats_queue(b, q);
		break;
	case ROLE_NONE:
		break;
	}
}

/* The driver reset the device: its balloon is gone (a new driver starts
 * empty), so forget which pages were in it. Discarded pages stay
 * discarded until the guest touches them. */
static void balloon_reset(struct virtio_dev *d)
{
	struct virtio_balloon *b = d->priv;
	timer_arm(b, false);
	b->stats_held = false;
	memset(b->bitmap, 0, (b->nr_pfns + 63) / 64 * sizeof(uint64_t));
	if (b->unit_count)
		memset(b->unit_count, 0, (size_t)b->nr_units * sizeof(uint32_t));
	b->info.inflated = b->info.discarded = 0;
	b->cfg.actual = 0;
}

/* ------------------------------------------------------------ snapshots */

static void balloon_quiesce(struct virtio_dev *d, bool on)
{
	struct virtio_balloon *b = d->priv;
	if (b->stats_q >= 0)
		timer_arm(b, !on); /* no stats request while paused */
}

static uint64_t bitmap_words(const struct virtio_balloon *b)
{
	return (b->nr_pfns + 63) / 64;
}

/* What the device holds: the target and actual size, which pages are in
 * the balloon, the driver's stats buffer if it is with us, and the last
 * statistics. */
static void balloon_state_save(struct virtio_dev *d, struct state_w *w)
{
	struct virtio_balloon *b = d->priv;
	state_put_u32(w, b->cfg.num_pages);
	state_put_u32(w, b->cfg.actual);
	state_put_u64(w, bitmap_words(b));
	for (uint64_t i = 0; i < bitmap_words(b); i++)
		state_put_u64(w, b->bitmap[i]);
	state_put_bool(w, b->stats_held);
	state_put_u16(w, b->stats_head);
	state_put_bool(w, b->info.stats_valid);
	for (unsigned i = 0; i < VIRTIO_BALLOON_S_NR; i++)
		state_put_u64(w, b->info.stats.val[i]);
	state_put_u32(w, b->info.stats.valid);
	state_put_u32(w, b->info.stats.unknown);
}

/* Every page in the saved balloon lies in guest RAM. */
static void check_bitmap_word(struct virtio_balloon *b, struct state_r *r, uint64_t i,
			      uint64_t word)
{
	for (unsigned bit = 0; word && bit < 64 && !r->failed; bit++, word >>= 1)
		if ((word & 1) && !pfn_ok(b, i * 64 + bit))
			state_fail(r, "inflated page 0x%llx is not guest RAM",
				   (unsigned long long)(i * 64 + bit));
}

/* The stats buffer is the only chain the balloon keeps. */
static void check_inflight(struct state_r *r, const struct virtio_dev_state *core, int stats_q,
			   bool held, uint16_t head)
{
	for (unsigned q = 0; q < core->nr_queues && !r->failed; q++) {
		const struct virtio_queue_state *qs = &core->q[q];
		uint32_t want = (int)q == stats_q && held ? 1 : 0;
		uint32_t got = qs->has_rings ? qs->ix.inflight : 0;
		if (got != want)
			state_fail(r, "queue %u: %u chains in flight, the balloon holds %u", q, got,
				   want);
		else if (want && head >= qs->size)
			state_fail(r, "stats buffer head %u, queue size %u", head, qs->size);
	}
	if (held && stats_q < 0 && !r->failed)
		state_fail(r, "a stats buffer held without a stats queue");
}

/* Recounts what the bitmap implies: inflated and discarded bytes, and
 * the inflated 4 KiB pages of each backing page. */
static void recount(struct virtio_balloon *b)
{
	uint64_t pages = 0;
	if (b->unit_count)
		memset(b->unit_count, 0, (size_t)b->nr_units * sizeof(uint32_t));
	b->info.discarded = 0;
	for (uint64_t pfn = 0; pfn < b->nr_pfns; pfn++) {
		if (!bit_test(b, pfn))
			continue;
		pages++;
		if (!b->discard)
			continue;
		if (!b->unit_count) {
			b->info.discarded += VIRTIO_BALLOON_PAGE_SIZE;
			continue;
		}
		uint64_t unit = (pfn << VIRTIO_BALLOON_PFN_SHIFT) / b->page_size;
		if (++b->unit_count[unit] == b->pages_per_unit)
			b->info.discarded += b->page_size;
	}
	b->info.inflated = pages * VIRTIO_BALLOON_PAGE_SIZE;
}

static void balloon_state_load(struct virtio_dev *d, struct state_r *r,
			       const struct virtio_dev_state *core, bool apply)
{
	struct virtio_balloon *b = d->priv;
	uint32_t num_pages = state_get_u32(r), actual = state_get_u32(r);
	uint64_t words = state_get_u64(r);
	if (!r->failed && words != bitmap_words(b)) {
		state_fail(r, "a page bitmap of %llu words, this VM's RAM needs %llu",
			   (unsigned long long)words, (unsigned long long)bitmap_words(b));
		return;
	}
	if (!r->failed && (uint64_t)num_pages << VIRTIO_BALLOON_PFN_SHIFT > b->ram_size)
		state_fail(r, "target of %u pages is more than guest RAM", num_pages);
	for (uint64_t i = 0; i < words && !r->failed; i++) {
		uint64_t word = state_get_u64(r);
		if (apply)
			b->bitmap[i] = word;
		else
			check_bitmap_word(b, r, i, word);
	}
	bool held = state_get_bool(r);
	uint16_t head = state_get_u16(r);
	struct balloon_stats st = { 0 };
	bool stats_valid = state_get_bool(r);
	for (unsigned i = 0; i < VIRTIO_BALLOON_S_NR; i++)
		st.val[i] = state_get_u64(r);
	st.valid = state_get_u32(r);
	st.unknown = state_get_u32(r);
	int stats_q = core->guest_features >> VIRTIO_BALLOON_F_STATS_VQ & 1 ? 2 : -1;
	if (!apply) {
		if (!r->failed)
			check_inflight(r, core, stats_q, held, head);
		return;
	}
	b->cfg.num_pages = num_pages;
	b->cfg.actual = actual;
	b->stats_held = held;
	b->stats_head = head;
	b->info.stats_valid = stats_valid;
	b->info.stats = st;
	b->stats_ns = now_ns();
	recount(b);
}

static const struct virtio_dev_ops balloon_ops_template = {
	.quiesce = balloon_quiesce,
	.state_save = balloon_state_save,
	.state_load = balloon_state_load,
	.config_size = sizeof(struct virtio_balloon_config),
	.config_read = balloon_config_read,
	.config_write = balloon_config_write,
	.features_ok = balloon_features_ok,
	.activate = balloon_activate,
	.notify = balloon_notify,
	.reset = balloon_reset,
};

/* ---------------------------------------------------------------- public */

static int balloon_alloc_tracking(struct virtio_balloon *b)
{
	const struct guest_mem *m = b->plat->mem;
	uint64_t end = 0;
	for (unsigned i = 0; i < m->nr_regions; i++) {
		uint64_t e = m->regions[i].gpa + m->regions[i].size;
		if (e > end)
			end = e;
	}
	b->ram_size = gmem_total(m);
	b->nr_pfns = end >> VIRTIO_BALLOON_PFN_SHIFT;
	b->bitmap = calloc((size_t)((b->nr_pfns + 63) / 64) + 1, sizeof(uint64_t));
	if (!b->bitmap)
		return -ENOMEM;
	if (b->pages_per_unit > 1) {
		b->nr_units = end / b->page_size + 1;
		b->unit_count = calloc((size_t)b->nr_units, sizeof(uint32_t));
		if (!b->unit_count)
			return -ENOMEM;
	}
	return 0;
}

static void balloon_free(struct virtio_balloon *b)
{
	if (b->timer_fd >= 0) {
		if (b->timer_watched)
			evloop_del(b->plat->loop, b->timer_fd);
		close(b->timer_fd);
	}
	free(b->bitmap);
	free(b->unit_count);
	free(b);
}

int virtio_balloon_create(const struct virtio_balloon_params *p, struct virtio_balloon **out)
{
	*out = NULL;
	const struct virtio_platform *plat = p->plat;
	if (!plat || !plat->mem || !plat->loop ||
	    p->page_size < VIRTIO_BALLOON_PAGE_SIZE || (p->page_size & (p->page_size - 1)))
		return -EINVAL;
	struct virtio_balloon *b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->plat = plat;
	b->name = "virtio-balloon";
	b->page_size = p->page_size;
	b->pages_per_unit = (uint32_t)(p->page_size / VIRTIO_BALLOON_PAGE_SIZE);
	b->discard = p->discard;
	b->discard_cookie = p->discard_cookie;
	b->stats_period = p->stats_period;
	b->stats_q = -1;
	b->timer_fd = -1;
	int r = balloon_alloc_tracking(b);
	if (r < 0) {
		log_err(plat->log, b->name, "allocating the page bitmap: %s", strerror(-r));
		balloon_free(b);
		return r;
	}
	unsigned nr_queues = 2;
	b->ops = balloon_ops_template;
	if (p->stats_period) {
		b->ops.features |= 1ull << VIRTIO_BALLOON_F_STATS_VQ;
		nr_queues++;
		b->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
		if (b->timer_fd < 0) {
			r = -errno;
			log_err(plat->log, b->name, "stats timer: timerfd_create: %s", strerror(-r));
			balloon_free(b);
			return r;
		}
		r = evloop_add(plat->loop, b->timer_fd, EPOLLIN, on_timer, b);
		if (r < 0) {
			log_err(plat->log, b->name, "watching the stats timer: %s", strerror(-r));
			balloon_free(b);
			return r;
		}
		b->timer_watched = true;
	}
	if (p->deflate_on_oom)
		b->ops.features |= 1ull << VIRTIO_BALLOON_F_DEFLATE_ON_OOM;
	if (p->free_page_reporting && p->discard) {
		b->ops.features |= 1ull << VIRTIO_BALLOON_F_PAGE_REPORTING;
		nr_queues++;
	}
	r = virtio_dev_init(&b->dev, b->name, VIRTIO_ID_BALLOON, &b->ops, b, plat, nr_queues,
			    VIRTIO_BALLOON_QUEUE_SIZE);
	if (r < 0) {
		balloon_free(b);
		return r;
	}
	log_info(plat->log, b->name, "%" PRIu64 " MiB of RAM in %" PRIu64 " KiB pages%s%s%s%s",
		 b->ram_size >> 20, b->page_size >> 10, p->discard ? "" : ", kept by the host",
		 p->stats_period ? ", stats" : "", p->deflate_on_oom ? ", deflate-on-oom" : "",
		 p->free_page_reporting && p->discard ? ", free page reporting" : "");
	*out = b;
	return 0;
}

struct virtio_dev *virtio_balloon_dev(struct virtio_balloon *b)
{
	return &b->dev;
}

void virtio_balloon_destroy(struct virtio_balloon *b)
{
	if (!b)
		return;
	virtio_dev_uninit(&b->dev);
	balloon_free(b);
}

int virtio_balloon_set_target(struct virtio_balloon *b, uint64_t bytes)
{
	if (bytes > b->ram_size || (bytes >> VIRTIO_BALLOON_PFN_SHIFT) > UINT32_MAX)
		return -ERANGE;
	pthread_mutex_lock(&b->dev.lock);
	uint32_t pages = (uint32_t)(bytes >> VIRTIO_BALLOON_PFN_SHIFT);
	if (pages != b->cfg.num_pages) {
		b->cfg.num_pages = pages;
		if (b->dev.status & VIRTIO_STATUS_DRIVER_OK)
			virtio_dev_config_changed(&b->dev);
	}
	pthread_mutex_unlock(&b->dev.lock);
	return 0;
}

void virtio_balloon_get(struct virtio_balloon *b, struct virtio_balloon_info *out)
{
	pthread_mutex_lock(&b->dev.lock);
	*out = b->info;
	out->live = virtio_dev_live(&b->dev);
	out->features = b->dev.guest_features;
	out->target = (uint64_t)b->cfg.num_pages << VIRTIO_BALLOON_PFN_SHIFT;
	out->actual = (uint64_t)b->cfg.actual << VIRTIO_BALLOON_PFN_SHIFT;
	if (out->stats_valid)
		out->stats_age_ms = (now_ns() - b->stats_ns) / 1000000;
	pthread_mutex_unlock(&b->dev.lock);
}
