/* virtio-blk device model (virtio spec 1.2, section 5.2). See blk.h.
 *
 * Per request queue: VIRTIO_BLK_QUEUE_SIZE preallocated slots (engine
 * request, parsed request, iovec array), a free list, and one segment
 * array that vq_pop() fills. A notify pops every available chain into a
 * slot, parses it, stages its I/O (engine_queue) and ends with one
 * engine_submit(). Completions arrive on the engine's event fd: each
 * writes its status byte and vq_push()es the chain; one virtio_dev_used()
 * per queue per reap batch lets event idx coalesce the interrupts.
 *
 * Multi-step requests run their steps one after another from the
 * completion callback: discard/write-zeroes ranges, and transfers copied
 * through a bounce buffer in BLK_BOUNCE_MAX chunks (O_DIRECT needs guest
 * buffers aligned to the image's dio_mem_align; unaligned ones are rare,
 * so the bounce buffer is allocated per request, bounded in size, and the
 * disk's total is bounded by VIRTIO_BLK_BOUNCE_TOTAL: a hostile guest with
 * 64 queues of 256 misaligned requests would otherwise make the host
 * allocate 4 GiB. Requests past the total wait on bounce_wait, FIFO). */
#include "virtio/blk.h"
#include "virtio/device_state.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>

#include "block/engine.h"
#include "block/image.h"
#include "virtio/limit.h"

_Static_assert(sizeof(struct virtio_blk_config) == 60, "5.2.4 layout");
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "virtio 1.x is little-endian");

#define BLK_CHAIN_CAP VQ_MAX_SEGS          /* segments vq_pop() may return */
#define BLK_IOV_CAP (VIRTIO_BLK_SEG_MAX + 2) /* data iovecs per request */
#define BLK_BOUNCE_MAX (256u * 1024)       /* bytes per bounced step */
#define BLK_POLL_MAX_NS 200000u            /* longest busy-poll per event */

struct blk_queue;

struct blk_slot {
	struct engine_req er;       /* er.cookie = this slot */
	struct blk_request req;
	struct blk_queue *q;
	struct blk_slot *next_free;
	uint64_t status_offset;     /* of the status byte in the writable bytes */
	uint16_t head;
	unsigned step;              /* DISCARD/WRITE_ZEROES: next range */
	uint64_t done;              /* bounced IN/OUT: bytes transferred */
	uint8_t *bounce;            /* NULL unless bounced */
	size_t bounce_len;
	struct iovec bounce_iov;
	struct blk_slot *next_wait; /* on virtio_blk.bounce_wait */
	uint64_t start_ns;          /* popped (metrics=on) */
};

struct blk_queue {
	struct virtio_blk *b;
	unsigned index;
	struct blk_slot *slots;     /* VIRTIO_BLK_QUEUE_SIZE */
	struct blk_slot *free;
	struct iovec *iovs;         /* BLK_IOV_CAP per slot */
	struct vq_seg *segs;        /* BLK_CHAIN_CAP, for vq_pop() */
	bool used_pending;          /* pushed since the last virtio_dev_used() */
	bool stalled;               /* stopped popping: no free slot */
	struct blk_slot *held;      /* parsed, waiting for rate-limit tokens */
};

struct virtio_blk {
	struct virtio_dev dev;
	const struct virtio_platform *plat;
	char name[24];              /* "virtio-blk0" */
	char disk_name[16];         /* "disk0" */
	char serial[VIRTIO_BLK_ID_BYTES];
	struct image img;
	bool img_open;
	struct engine *eng;
	bool eng_watched;
	bool need_submit;           /* engine_queue()d since the last submit */
	bool quiescing;             /* reset: completions only free slots */
	uint64_t poll_ns;           /* busy-poll budget after progress; 0: off */
	struct virtio_dev_ops ops;  /* per device: the features depend on the image */
	struct virtio_blk_config cfg;
	uint64_t capacity;          /* sectors */
	struct blk_limits lim;
	unsigned nr_queues;
	struct blk_queue *queues;
	struct blk_slot *bounce_wait, **bounce_wait_tail; /* waiting for bounce room */
	struct virtio_blk_stats stats;
	bool metrics;               /* time requests (latency histogram) */
	uint64_t now_ns;            /* clock of this event (metrics or limits) */
	struct limit limit;         /* diskN.iops, diskN.bandwidth */
};

/* ------------------------------------------------------------- execution */

static struct vq *blk_vq(struct virtio_blk *b, const struct blk_queue *q)
{
	return b->dev.queues[q->index].vq;
}

static void slot_release(struct blk_queue *q, struct blk_slot *s)
{
	if (s->bounce)
		q->b->stats.bounce_bytes -= s->bounce_len;
	q->b->stats.inflight--;
	free(s->bounce);
	s->bounce = NULL;
	s->bounce_len = 0;
	s->next_free = q->free;
	q->free = s;
}

/* Bytes written into the writable part as a prefix (2.7.8: the used
 * length), given @data bytes of data written from its start. */
static uint32_t slot_written(const struct blk_slot *s, uint64_t data)
{
	if (!s->req.status)
		return 0;
	return (uint32_t)(data + (s->status_offset == data ? 1 : 0));
}

/* Adds @s's pop-to-now time to the latency histogram: bucket k holds
 * latencies of at most 2^k microseconds. */
static void blk_lat_count(struct virtio_blk *b, const struct blk_slot *s)
{
	if (!s->start_ns)
		return; /* popped while metrics were off */
	uint64_t us = b->now_ns > s->start_ns ? (b->now_ns - s->start_ns) / 1000 : 0;
	unsigned k = us <= 1 ? 0 : 64 - (unsigned)__builtin_clzll(us - 1);
	if (k >= VIRTIO_BLK_LAT_BUCKETS)
		k = VIRTIO_BLK_LAT_BUCKETS - 1;
	b->stats.lat_us[k]++;
	b->stats.lat_us_sum += us;
}

/* Completes @s to the guest: status byte, used element, slot freed. */
static void slot_finish(struct virtio_blk *b, struct blk_slot *s, uint8_t status,
			uint64_t data_written)
{
	struct blk_queue *q = s->q;
	struct virtio_blk_stats *st = &b->stats;
	if (s->req.status)
		__atomic_store_n(s->req.status, status, __ATOMIC_RELAXED);
	st->requests++;
	if (b->metrics)
		blk_lat_count(b, s);
	if (status == VIRTIO_BLK_S_IOERR)
		st->ioerr++;
	else if (status == VIRTIO_BLK_S_UNSUPP)
		st->unsupp++;
	else {
		switch (s->req.type) {
		case VIRTIO_BLK_T_IN:
			st->reads++;
			st->bytes_read += s->req.data_len;
			break;
		case VIRTIO_BLK_T_OUT:
			st->writes++;
			st->bytes_written += s->req.data_len;
			break;
		case VIRTIO_BLK_T_FLUSH: st->flushes++; break;
		case VIRTIO_BLK_T_GET_ID: st->get_ids++; break;
		case VIRTIO_BLK_T_DISCARD: st->discards++; break;
		case VIRTIO_BLK_T_WRITE_ZEROES: st->write_zeroes++; break;
		}
	}
	struct vq *vq = blk_vq(b, q);
	uint32_t written = status == VIRTIO_BLK_S_OK ? slot_written(s, data_written)
						     : slot_written(s, 0);
	if (!vq || vq_push(vq, s->head, written) < 0)
		log_ratelimited(b->plat->log, &b->dev.rl, b->name,
				"queue %u: cannot return descriptor %u", q->index, s->head);
	q->used_pending = true;
	slot_release(q, s);
}

static uint8_t status_of_errno(int64_t err)
{
	return err == -EOPNOTSUPP ? VIRTIO_BLK_S_UNSUPP : VIRTIO_BLK_S_IOERR;
}

/* Stages s->er; a refusal completes the request at once. */
static void slot_queue(struct virtio_blk *b, struct blk_slot *s)
{
	s->er.cookie = s;
	int r = engine_queue(b->eng, &s->er);
	if (r < 0) {
		if (r != -EROFS && r != -EOPNOTSUPP)
			b->stats.backend_errors++;
		slot_finish(b, s, status_of_errno(r), 0);
		return;
	}
	b->need_submit = true;
}

/* Copies @len bytes between a flat buffer and the iovec's bytes from @off:
 * into the iovec when @to_iov, out of it otherwise. */
static void iov_copy(const struct iovec *iov, unsigned cnt, uint64_t off, uint8_t *buf,
		     size_t len, bool to_iov)
{
	for (unsigned i = 0; i < cnt && len; i++) {
		if (off >= iov[i].iov_len) {
			off -= iov[i].iov_len;
			continue;
		}
		size_t part = iov[i].iov_len - off;
		if (part > len)
			part = len;
		uint8_t *v = (uint8_t *)iov[i].iov_base + off;
		if (to_iov)
			memcpy(v, buf, part);
		else
			memcpy(buf, v, part);
		buf += part;
		len -= part;
		off = 0;
	}
}

/* Next chunk of a bounced IN/OUT. */
static void bounce_step(struct virtio_blk *b, struct blk_slot *s)
{
	uint64_t left = s->req.data_len - s->done;
	size_t chunk = left < s->bounce_len ? (size_t)left : s->bounce_len;
	bool in = s->req.type == VIRTIO_BLK_T_IN;
	if (!in)
		iov_copy(s->req.iov, s->req.iovcnt, s->done, s->bounce, chunk, false);
	s->bounce_iov = (struct iovec){ .iov_base = s->bounce, .iov_len = chunk };
	s->er = (struct engine_req){
		.op = in ? ENGINE_OP_READ : ENGINE_OP_WRITE,
		.offset = s->req.sector * VIRTIO_BLK_SECTOR_SIZE + s->done,
		.iov = &s->bounce_iov, .iovcnt = 1, .len = chunk,
	};
	slot_queue(b, s);
}

static bool iov_aligned(const struct iovec *iov, unsigned cnt, unsigned align)
{
	if (align <= 1)
		return true;
	for (unsigned i = 0; i < cnt; i++)
		if ((uintptr_t)iov[i].iov_base % align || iov[i].iov_len % align)
			return false;
	return true;
}

static size_t bounce_len_of(const struct blk_slot *s)
{
	return s->req.data_len < BLK_BOUNCE_MAX ? (size_t)s->req.data_len : BLK_BOUNCE_MAX;
}

/* Starts a bounced IN/OUT with a fresh bounce buffer; false when the disk
 * has no VIRTIO_BLK_BOUNCE_TOTAL room for it now. */
static bool slot_start_bounced(struct virtio_blk *b, struct blk_slot *s)
{
	size_t len = bounce_len_of(s);
	if (b->stats.bounce_bytes + len > VIRTIO_BLK_BOUNCE_TOTAL)
		return false;
	size_t align = b->img.dio_mem_align > 4096 ? b->img.dio_mem_align : 4096;
	void *p = NULL;
	if (posix_memalign(&p, align, len)) {
		log_ratelimited(b->plat->log, &b->dev.rl, b->name,
				"no memory for a %zu-byte bounce buffer", len);
		b->stats.backend_errors++;
		slot_finish(b, s, VIRTIO_BLK_S_IOERR, 0);
		return true;
	}
	b->stats.bounce_bytes += len;
	if (b->stats.bounce_bytes > b->stats.bounce_peak)
		b->stats.bounce_peak = b->stats.bounce_bytes;
	s->bounce = p;
	s->bounce_len = len;
	s->done = 0;
	bounce_step(b, s);
	return true;
}

/* Starts the requests waiting for bounce room, in order, while it lasts
 * (not from inside slot_release: callers run it once their work is done). */
static void bounce_resume(struct virtio_blk *b)
{
	while (b->bounce_wait && !b->quiescing) {
		struct blk_slot *s = b->bounce_wait;
		if (b->stats.bounce_bytes + bounce_len_of(s) > VIRTIO_BLK_BOUNCE_TOTAL)
			return;
		b->bounce_wait = s->next_wait;
		if (!b->bounce_wait)
			b->bounce_wait_tail = &b->bounce_wait;
		s->next_wait = NULL;
		slot_start_bounced(b, s);
	}
}

static void slot_start_rw(struct virtio_blk *b, struct blk_slot *s)
{
	bool in = s->req.type == VIRTIO_BLK_T_IN;
	if (s->req.data_len == 0) {
		slot_finish(b, s, VIRTIO_BLK_S_OK, 0);
		return;
	}
	if (!iov_aligned(s->req.iov, s->req.iovcnt, b->img.dio_mem_align)) {
		b->stats.bounced++;
		if (!b->bounce_wait && slot_start_bounced(b, s))
			return;
		b->stats.bounce_waits++;
		s->next_wait = NULL;
		*b->bounce_wait_tail = s;
		b->bounce_wait_tail = &s->next_wait;
		return;
	}
	s->er = (struct engine_req){
		.op = in ? ENGINE_OP_READ : ENGINE_OP_WRITE,
		.offset = s->req.sector * VIRTIO_BLK_SECTOR_SIZE,
		.iov = s->req.iov, .iovcnt = s->req.iovcnt, .len = s->req.data_len,
	};
	slot_queue(b, s);
}

/* Discard/write-zeroes: stages range s->step, skipping discard ranges
 * with nothing aligned inside them; finishes after the last. */
static void dwz_step(struct virtio_blk *b, struct blk_slot *s)
{
	bool discard = s->req.type == VIRTIO_BLK_T_DISCARD;
	unsigned align = b->img.dio_offset_align;
	if (b->img.blockdev && b->img.logical_block_size > align)
		align = b->img.logical_block_size;
	while (s->step < s->req.nr_ranges) {
		const struct blk_range *r = &s->req.ranges[s->step++];
		uint64_t off = r->sector * VIRTIO_BLK_SECTOR_SIZE;
		uint64_t end = off + (uint64_t)r->num_sectors * VIRTIO_BLK_SECTOR_SIZE;
		if (discard && align > 1) {
			/* 5.2.6.2: discard is a hint (the device MAY
			 * deallocate): only the aligned inside is punched. */
			off = (off + align - 1) / align * align;
			end = end / align * align;
			if (end <= off)
				continue;
		}
		s->er = (struct engine_req){
			.op = discard ? ENGINE_OP_DISCARD : ENGINE_OP_WRITE_ZEROES,
			.offset = off, .len = end - off,
		};
		slot_queue(b, s);
		return;
	}
	slot_finish(b, s, VIRTIO_BLK_S_OK, 0);
}

/* GET_ID (5.2.6): the NUL-padded serial, no terminator at 20 bytes. */
static void slot_get_id(struct virtio_blk *b, struct blk_slot *s)
{
	iov_copy(s->req.iov, s->req.iovcnt, 0, (uint8_t *)b->serial, VIRTIO_BLK_ID_BYTES, true);
	slot_finish(b, s, VIRTIO_BLK_S_OK, VIRTIO_BLK_ID_BYTES);
}

/* Takes the rate-limit tokens of parsed request @s: one operation, and
 * its data bytes for IN/OUT; GET_ID is free. */
static bool blk_admit(struct virtio_blk *b, const struct blk_slot *s)
{
	uint32_t t = s->req.type;
	if (!b->limit.on || t == VIRTIO_BLK_T_GET_ID)
		return true;
	uint64_t bytes = t == VIRTIO_BLK_T_IN || t == VIRTIO_BLK_T_OUT ? s->req.data_len : 0;
	return limit_admit(&b->limit, 1, bytes, b->now_ns);
}

static void slot_exec(struct virtio_blk *b, struct blk_slot *s);

static void slot_start(struct virtio_blk *b, struct blk_queue *q, struct blk_slot *s,
		       const struct vq_chain *c)
{
	s->start_ns = b->metrics ? b->now_ns : 0; /* 0: not timed */
	s->head = c->head;
	s->status_offset = c->writable_len ? c->writable_len - 1 : 0;
	s->step = 0;
	s->done = 0;
	s->req.iov = q->iovs + (size_t)(s - q->slots) * BLK_IOV_CAP;
	s->req.iov_cap = BLK_IOV_CAP;
	enum blk_parse_error e = blk_parse(c, b->capacity, &b->lim, &s->req);
	if (e != BLK_PARSE_OK) {
		b->stats.parse_errors++;
		log_ratelimited(b->plat->log, &b->dev.rl, b->name,
				"queue %u: bad request (type %" PRIu32 "): %s", q->index,
				s->req.type, blk_parse_error_name(e));
		slot_finish(b, s, blk_parse_status(e), 0);
		return;
	}
	if (!blk_admit(b, s)) {
		q->held = s; /* blk_queue_run() stops popping until blk_resume() */
		b->stats.throttled++;
		return;
	}
	slot_exec(b, s);
}

/* Starts a parsed request that has its tokens. */
static void slot_exec(struct virtio_blk *b, struct blk_slot *s)
{
	switch (s->req.type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT:
		slot_start_rw(b, s);
		return;
	case VIRTIO_BLK_T_FLUSH:
		/* Completes once everything completed before is durable
		 * (engine.h); guests flush only after the writes it covers
		 * completed (5.2.6.2, case 3). */
		s->er = (struct engine_req){ .op = ENGINE_OP_FLUSH };
		slot_queue(b, s);
		return;
	case VIRTIO_BLK_T_GET_ID:
		slot_get_id(b, s);
		return;
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		dwz_step(b, s);
		return;
	}
	slot_finish(b, s, VIRTIO_BLK_S_UNSUPP, 0); /* not reached: parse refused it */
}

static void blk_submit(struct virtio_blk *b)
{
	if (!b->need_submit)
		return;
	b->need_submit = false;
	int r = engine_submit(b->eng);
	if (r < 0) /* staged requests stay staged; the engine kicks itself to retry */
		log_ratelimited(b->plat->log, &b->dev.rl, b->name, "submitting I/O: %s",
				strerror(-r));
}

static void blk_signal(struct virtio_blk *b, struct blk_queue *q)
{
	if (q->used_pending) {
		q->used_pending = false;
		virtio_dev_used(&b->dev, q->index);
	}
}

/* Pops every available chain of queue @q into a free slot and starts it
 * (dev->lock held). Stops when the ring is empty (vq_pop() re-checks it
 * after publishing avail_event, so nothing that arrived meanwhile is
 * missed), when no slot is free (the next completion resumes), when the
 * ring is malformed (NEEDS_RESET), or after VIRTIO_BLK_KICK_BUDGET chains
 * (the queue is re-kicked: the event loop comes back to it after serving
 * everything else). Returns the number popped. */
static unsigned blk_queue_run(struct virtio_blk *b, struct blk_queue *q)
{
	struct vq *vq = blk_vq(b, q);
	unsigned popped = 0;
	if (b->dev.quiesced)
		return 0; /* virtio_dev_unquiesce re-kicks every queue */
	q->stalled = false;
	if (!vq)
		return 0;
	for (;;) {
		if (q->held)
			break; /* out of tokens: the limit's timer resumes */
		if (popped == VIRTIO_BLK_KICK_BUDGET) {
			b->stats.yields++;
			virtio_dev_rekick(&b->dev, q->index);
			break;
		}
		if (!q->free) {
			q->stalled = true;
			b->stats.slot_stalls++;
			break;
		}
		struct vq_chain c = { .segs = q->segs, .cap = BLK_CHAIN_CAP };
		int r = vq_pop(vq, &c);
		if (r == 0)
			break;
		if (r < 0) {
			const char *why = vq_error(vq);
			b->stats.needs_reset++;
			virtio_dev_needs_reset(&b->dev, why ? why : "malformed descriptor chain");
			break;
		}
		struct blk_slot *s = q->free;
		q->free = s->next_free;
		b->stats.inflight++;
		slot_start(b, q, s, &c);
		popped++;
	}
	return popped;
}

static void blk_done(void *cookie, struct engine_req *er);

static void blk_signal_all(struct virtio_blk *b)
{
	for (unsigned i = 0; i < b->nr_queues; i++)
		blk_signal(b, &b->queues[i]);
}

/* Delivers the engine's completions (the guest is signalled before more
 * I/O is submitted), then resumes queues that were short of slots.
 * Returns the number of completions. */
static int blk_reap(struct virtio_blk *b)
{
	b->stats.reaps++;
	int n = engine_reap(b->eng, blk_done, b);
	if (n < 0)
		log_ratelimited(b->plat->log, &b->dev.rl, b->name, "reaping I/O: %s",
				strerror(-n));
	bounce_resume(b);
	blk_signal_all(b);
	bool live = virtio_dev_live(&b->dev);
	for (unsigned i = 0; i < b->nr_queues; i++) {
		struct blk_queue *q = &b->queues[i];
		if (q->stalled && live)
			blk_queue_run(b, q);
	}
	blk_submit(b);
	blk_signal_all(b);
	return n;
}

static uint64_t blk_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Reads the clock once per event for what needs it: the latency
 * histogram and the rate limits. */
static void blk_clock(struct virtio_blk *b)
{
	if (b->metrics || b->limit.on)
		b->now_ns = blk_now_ns();
}

/* The rate limit's timer (event thread): starts the requests that waited
 * for tokens, in queue order, and pops on behind them. */
static void blk_resume(void *cookie)
{
	struct virtio_blk *b = cookie;
	pthread_mutex_lock(&b->dev.lock);
	b->now_ns = blk_now_ns();
	bool live = virtio_dev_live(&b->dev);
	for (unsigned i = 0; i < b->nr_queues; i++) {
		struct blk_queue *q = &b->queues[i];
		struct blk_slot *s = q->held;
		if (!s || !blk_admit(b, s))
			continue;
		q->held = NULL;
		slot_exec(b, s);
		if (live)
			blk_queue_run(b, q);
	}
	bounce_resume(b);
	blk_submit(b);
	blk_signal_all(b);
	pthread_mutex_unlock(&b->dev.lock);
}

/* Adaptive busy-polling (event thread, dev->lock held; it is dropped
 * between rounds so vCPUs are not held up). After a notify or a reap that
 * did work, the guest's next request and the next completion usually
 * follow within microseconds: checking the avail rings and the engine
 * (no syscalls) for a while before going back to epoll saves the thread
 * a sleep and a wakeup, and the kick or completion eventfd round trip.
 * Polling stops b->poll_ns after the last progress, and after
 * BLK_POLL_MAX_NS in all so the event loop's other fds are served. */
static void blk_poll(struct virtio_blk *b)
{
	if (!b->poll_ns)
		return;
	uint64_t start = blk_now_ns(), last = start;
	for (;;) {
		pthread_mutex_unlock(&b->dev.lock);
#if defined(__x86_64__) || defined(__i386__)
		__builtin_ia32_pause();
#endif
		pthread_mutex_lock(&b->dev.lock);
		if (!virtio_dev_live(&b->dev))
			break;
		bool progress = false;
		if (engine_pending(b->eng))
			progress |= blk_reap(b) > 0;
		unsigned popped = 0;
		for (unsigned i = 0; i < b->nr_queues; i++)
			if (b->queues[i].free) /* a stalled queue resumes on a reap */
				popped += blk_queue_run(b, &b->queues[i]);
		if (popped) {
			b->stats.polled += popped;
			blk_submit(b);
			blk_signal_all(b);
			progress = true;
		}
		uint64_t t = blk_now_ns();
		b->now_ns = t;
		if (progress)
			last = t;
		else if (t - last >= b->poll_ns)
			break;
		if (t - start >= BLK_POLL_MAX_NS)
			break;
	}
}

static void blk_notify(struct virtio_dev *d, unsigned qi)
{
	struct virtio_blk *b = d->priv;
	if (qi >= b->nr_queues)
		return;
	struct blk_queue *q = &b->queues[qi];
	b->stats.notifies++;
	blk_clock(b);
	unsigned popped = blk_queue_run(b, q);
	bounce_resume(b);
	blk_submit(b);
	blk_signal(b, q);
	if (popped)
		blk_poll(b);
}

/* Engine completion (event thread, dev->lock held). */
static void blk_done(void *cookie, struct engine_req *er)
{
	struct virtio_blk *b = cookie;
	struct blk_slot *s = er->cookie;
	if (b->quiescing) {
		slot_release(s->q, s);
		return;
	}
	if (er->result < 0) {
		if (er->result != -EOPNOTSUPP)
			b->stats.backend_errors++;
		slot_finish(b, s, status_of_errno(er->result), 0);
		return;
	}
	switch (s->req.type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT:
		if (s->bounce) {
			if (s->req.type == VIRTIO_BLK_T_IN)
				iov_copy(s->req.iov, s->req.iovcnt, s->done, s->bounce,
					 (size_t)er->len, true);
			s->done += er->len;
			if (s->done < s->req.data_len) {
				bounce_step(b, s);
				return;
			}
		}
		slot_finish(b, s, VIRTIO_BLK_S_OK, s->req.type == VIRTIO_BLK_T_IN ? s->req.data_len : 0);
		return;
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		dwz_step(b, s);
		return;
	default:
		slot_finish(b, s, VIRTIO_BLK_S_OK, 0);
		return;
	}
}

static void blk_on_engine(void *cookie, uint32_t events)
{
	struct virtio_blk *b = cookie;
	pthread_mutex_lock(&b->dev.lock);
	blk_clock(b);
	if (blk_reap(b) > 0 && virtio_dev_live(&b->dev))
		blk_poll(b);
	pthread_mutex_unlock(&b->dev.lock);
}

/* Waits for everything in flight; completions free their slots without
 * touching guest memory. */
static void blk_quiesce(struct virtio_blk *b)
{
	b->quiescing = true;
	blk_submit(b);
	while (engine_inflight(b->eng)) {
		struct pollfd p = { .fd = engine_event_fd(b->eng), .events = POLLIN };
		int r = poll(&p, 1, 1000);
		if (r < 0 && errno != EINTR)
			break;
		int n = engine_reap(b->eng, blk_done, b);
		if (n < 0 && r == 0) {
			log_err(b->plat->log, b->name, "waiting for I/O at reset: %s", strerror(-n));
			break;
		}
	}
	b->quiescing = false;
}

/* --------------------------------------------------------- virtio_dev_ops */

static void blk_config_read(struct virtio_dev *d, uint32_t off, void *data, unsigned len)
{
	struct virtio_blk *b = d->priv;
	memcpy(data, (const uint8_t *)&b->cfg + off, len); /* bounds checked by the core */
}

static void blk_reset(struct virtio_dev *d)
{
	struct virtio_blk *b = d->priv;
	/* waiting for bounce room: nothing in flight, just give the slots back */
	while (b->bounce_wait) {
		struct blk_slot *s = b->bounce_wait;
		b->bounce_wait = s->next_wait;
		slot_release(s->q, s);
	}
	b->bounce_wait_tail = &b->bounce_wait;
	for (unsigned i = 0; i < b->nr_queues; i++) {
		if (b->queues[i].held)
			slot_release(&b->queues[i], b->queues[i].held);
		b->queues[i].held = NULL;
	}
	limit_reset(&b->limit);
	blk_quiesce(b);
	for (unsigned i = 0; i < b->nr_queues; i++) {
		b->queues[i].used_pending = false;
		b->queues[i].stalled = false;
	}
}

/* Features this disk offers (5.2.3); FLUSH always (5.2.5.2: SHOULD). */
static uint64_t blk_features(const struct virtio_blk *b)
{
	uint64_t f = (1ull << VIRTIO_BLK_F_SIZE_MAX) | (1ull << VIRTIO_BLK_F_SEG_MAX) |
		     (1ull << VIRTIO_BLK_F_BLK_SIZE) | (1ull << VIRTIO_BLK_F_TOPOLOGY) |
		     (1ull << VIRTIO_BLK_F_FLUSH) | (1ull << VIRTIO_BLK_F_MQ);
	if (engine_readonly(b->eng))
		f |= 1ull << VIRTIO_BLK_F_RO;
	if (b->lim.discard)
		f |= 1ull << VIRTIO_BLK_F_DISCARD;
	if (b->lim.write_zeroes)
		f |= 1ull << VIRTIO_BLK_F_WRITE_ZEROES;
	return f;
}

static unsigned log2u(unsigned v)
{
	unsigned r = 0;
	while (v > 1) {
		v >>= 1;
		r++;
	}
	return r;
}

/* 5.2.4 config space, fixed for the life of the device. */
static void blk_fill_config(struct virtio_blk *b)
{
	struct virtio_blk_config *c = &b->cfg;
	const struct image *img = &b->img;
	unsigned lbs = img->logical_block_size;
	if (img->dio_offset_align > lbs)
		lbs = img->dio_offset_align;
	if (lbs < VIRTIO_BLK_SECTOR_SIZE || (lbs & (lbs - 1)))
		lbs = VIRTIO_BLK_SECTOR_SIZE;
	unsigned pbs = lbs < 4096 ? 4096 : lbs; /* host file systems: 4 KiB blocks */
	memset(c, 0, sizeof(*c));
	c->capacity = b->capacity;
	c->size_max = VIRTIO_BLK_SIZE_MAX;
	c->seg_max = VIRTIO_BLK_SEG_MAX;
	c->blk_size = lbs;
	c->physical_block_exp = (uint8_t)log2u(pbs / lbs);
	c->alignment_offset = 0;
	c->min_io_size = (uint16_t)(pbs / lbs);
	c->opt_io_size = 0;
	c->num_queues = (uint16_t)b->nr_queues;
	if (b->lim.discard) {
		c->max_discard_sectors = b->lim.max_discard_sectors;
		c->max_discard_seg = b->lim.max_dwz_segs;
		c->discard_sector_alignment = lbs / VIRTIO_BLK_SECTOR_SIZE;
	}
	if (b->lim.write_zeroes) {
		c->max_write_zeroes_sectors = b->lim.max_write_zeroes_sectors;
		c->max_write_zeroes_seg = b->lim.max_dwz_segs;
		/* 5.2.6.2: set iff write zeroes can deallocate (punch). */
		c->write_zeroes_may_unmap = img->punch_ok ? 1 : 0;
	}
}

/* ------------------------------------------------------------ snapshots */

#define BLK_DRAIN_WAITS 30 /* seconds without a completion before giving up */

/* Completes everything in flight to the guest (used rings, interrupts)
 * and pops nothing new (blk_queue_run sees dev.quiesced). */
static void blk_drain(struct virtio_blk *b)
{
	unsigned idle = 0;
	bounce_resume(b);
	blk_submit(b);
	while ((engine_inflight(b->eng) || b->bounce_wait) && idle < BLK_DRAIN_WAITS) {
		struct pollfd p = { .fd = engine_event_fd(b->eng), .events = POLLIN };
		int r = poll(&p, 1, 1000);
		if (r < 0 && errno != EINTR) {
			log_err(b->plat->log, b->name, "waiting for I/O to pause: poll: %s",
				strerror(errno));
			return;
		}
		idle = r == 0 ? idle + 1 : 0;
		blk_reap(b); /* completes, starts bounced requests, submits */
	}
	if (idle == BLK_DRAIN_WAITS)
		log_err(b->plat->log, b->name, "%u requests still in flight after %d s",
			engine_inflight(b->eng), BLK_DRAIN_WAITS);
}

static void blk_quiesce_op(struct virtio_dev *d, bool on)
{
	if (on)
		blk_drain(d->priv);
}

static const char *blk_snapshot_refusal(struct virtio_dev *d)
{
	struct virtio_blk *b = d->priv;
	if (engine_inflight(b->eng) || b->bounce_wait)
		return "I/O still in flight (quiesce first)";
	for (unsigned i = 0; i < b->nr_queues; i++) {
		struct vq *vq = blk_vq(b, &b->queues[i]);
		struct vq_indices ix = { 0 };
		if (vq)
			vq_get_indices(vq, &ix);
		if (ix.inflight)
			return "requests still in flight (quiesce first)";
	}
	/* The guest's page cache may hold what it wrote; a restored VM gets
	 * its overlay anew, and would read the base under those pages. */
	struct engine_stats st;
	engine_get_stats(b->eng, &st);
	if (strcmp(engine_name(b->eng), "overlay") == 0 &&
	    st.writes + st.discards + st.write_zeroes)
		return "its overlay holds the guest's writes, which a snapshot does not keep "
		       "(snapshot before the guest writes to the disk)";
	return NULL;
}

/* The config space is the disk's (its size, limits): saved to recognise
 * the image on load. Nothing is in flight once quiesced. */
static void blk_state_save(struct virtio_dev *d, struct state_w *w)
{
	struct virtio_blk *b = d->priv;
	state_put_bytes(w, &b->cfg, sizeof(b->cfg));
}

static void blk_state_load(struct virtio_dev *d, struct state_r *r,
			   const struct virtio_dev_state *core, bool apply)
{
	struct virtio_blk *b = d->priv;
	struct virtio_blk_config cfg;
	state_get_bytes(r, &cfg, sizeof(cfg));
	if (apply || r->failed)
		return;
	if (cfg.capacity != b->cfg.capacity)
		state_fail(r, "the disk has %llu sectors, the snapshot's had %llu",
			   (unsigned long long)b->cfg.capacity, (unsigned long long)cfg.capacity);
	else if (memcmp(&cfg, &b->cfg, sizeof(cfg)) != 0)
		state_fail(r, "the disk's config space (block size, limits, queues) differs "
			   "from the snapshot's");
	for (unsigned i = 0; i < core->nr_queues && !r->failed; i++)
		if (core->q[i].has_rings && core->q[i].ix.inflight)
			state_fail(r, "queue %u: %u requests in flight", i, core->q[i].ix.inflight);
}

static const struct virtio_dev_ops blk_ops_template = {
	.config_size = sizeof(struct virtio_blk_config),
	.config_read = blk_config_read,
	.notify = blk_notify,
	.reset = blk_reset,
	.quiesce = blk_quiesce_op,
	.snapshot_refusal = blk_snapshot_refusal,
	.state_save = blk_state_save,
	.state_load = blk_state_load,
};

/* ------------------------------------------------------------- lifecycle */

static int blk_queues_alloc(struct virtio_blk *b)
{
	b->queues = calloc(b->nr_queues, sizeof(*b->queues));
	if (!b->queues)
		return -ENOMEM;
	for (unsigned i = 0; i < b->nr_queues; i++) {
		struct blk_queue *q = &b->queues[i];
		q->b = b;
		q->index = i;
		q->slots = calloc(VIRTIO_BLK_QUEUE_SIZE, sizeof(*q->slots));
		q->iovs = calloc((size_t)VIRTIO_BLK_QUEUE_SIZE * BLK_IOV_CAP, sizeof(*q->iovs));
		q->segs = calloc(BLK_CHAIN_CAP, sizeof(*q->segs));
		if (!q->slots || !q->iovs || !q->segs)
			return -ENOMEM;
		for (unsigned k = VIRTIO_BLK_QUEUE_SIZE; k-- > 0;) {
			q->slots[k].q = q;
			q->slots[k].next_free = q->free;
			q->free = &q->slots[k];
		}
	}
	return 0;
}

static void blk_queues_free(struct virtio_blk *b)
{
	if (!b->queues)
		return;
	for (unsigned i = 0; i < b->nr_queues; i++) {
		struct blk_queue *q = &b->queues[i];
		if (q->slots)
			for (unsigned k = 0; k < VIRTIO_BLK_QUEUE_SIZE; k++)
				free(q->slots[k].bounce);
		free(q->slots);
		free(q->iovs);
		free(q->segs);
	}
	free(b->queues);
	b->queues = NULL;
}

int virtio_blk_create(const struct virtio_blk_params *p, struct virtio_blk **out)
{
	*out = NULL;
	const struct logger *lg = p->plat->log;
	if (!p->path || !p->plat->loop || p->nr_queues == 0 ||
	    p->nr_queues > VIRTIO_MAX_QUEUES)
		return -EINVAL;
	const char *serial = p->serial;
	struct virtio_blk *b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->plat = p->plat;
	b->nr_queues = p->nr_queues;
	b->bounce_wait_tail = &b->bounce_wait;
	b->poll_ns = (uint64_t)(p->poll_us < BLK_POLL_MAX_NS / 1000 ? p->poll_us
								      : BLK_POLL_MAX_NS / 1000) * 1000;
	b->img.fd = -1;
	b->metrics = p->metrics;
	b->limit.timer_fd = -1;
	snprintf(b->name, sizeof(b->name), "virtio-blk%u", p->index);
	snprintf(b->disk_name, sizeof(b->disk_name), "disk%u", p->index);
	if (!serial)
		serial = b->disk_name;
	if (strlen(serial) > VIRTIO_BLK_ID_BYTES) {
		log_err(lg, b->disk_name, "serial \"%s\" is longer than %d bytes", serial,
			VIRTIO_BLK_ID_BYTES);
		free(b);
		return -EINVAL;
	}
	memcpy(b->serial, serial, strlen(serial)); /* NUL-padded, not terminated */

	/* An overlay's base is only read: many VMs may share it. */
	bool ro = p->readonly || p->overlay.kind != OVERLAY_NONE;
	int r = image_open(&b->img, b->disk_name, p->path, ro, p->cache, lg);
	if (r < 0)
		goto fail;
	b->img_open = true;
	b->capacity = b->img.size / VIRTIO_BLK_SECTOR_SIZE;

	struct engine_params ep = { .io = p->io, .submit_batch = p->submit_batch,
				    .overlay = p->overlay };
	r = engine_create(&b->img, &ep, &b->eng);
	if (r < 0)
		goto fail;
	b->lim = (struct blk_limits){
		.discard = engine_can_discard(b->eng),
		.write_zeroes = engine_can_write_zeroes(b->eng),
		.max_dwz_segs = VIRTIO_BLK_MAX_DWZ_SEGS,
		.max_discard_sectors = VIRTIO_BLK_MAX_DWZ_SECTORS,
		.max_write_zeroes_sectors = VIRTIO_BLK_MAX_DWZ_SECTORS,
	};
	r = blk_queues_alloc(b);
	if (r < 0) {
		log_err(lg, b->name, "allocating request slots: %s", strerror(-r));
		goto fail;
	}
	blk_fill_config(b);
	b->stats.engine = engine_name(b->eng);

	b->ops = blk_ops_template;
	b->ops.features = blk_features(b);
	r = virtio_dev_init(&b->dev, b->name, VIRTIO_ID_BLOCK, &b->ops, b, p->plat,
			    p->nr_queues, VIRTIO_BLK_QUEUE_SIZE);
	if (r < 0)
		goto fail;
	r = evloop_add(p->plat->loop, engine_event_fd(b->eng), EPOLLIN, blk_on_engine, b);
	if (r < 0) {
		log_err(lg, b->name, "watching the I/O engine: %s", strerror(-r));
		virtio_dev_uninit(&b->dev);
		goto fail;
	}
	b->eng_watched = true;
	r = limit_create(&b->limit, p->iops, p->iops_burst, p->bandwidth,
			     p->bandwidth_burst, p->plat->loop, lg, b->disk_name, blk_resume, b);
	if (r < 0) {
		evloop_del(p->plat->loop, engine_event_fd(b->eng));
		virtio_dev_uninit(&b->dev);
		goto fail;
	}
	log_info(lg, b->name, "%s: %" PRIu64 " sectors, %u queue%s, %s%s%s%s", p->path,
		 b->capacity, b->nr_queues, b->nr_queues == 1 ? "" : "s", engine_name(b->eng),
		 engine_readonly(b->eng) ? ", read-only" : "", b->lim.discard ? ", discard" : "",
		 b->img.direct ? ", O_DIRECT" : "");
	*out = b;
	return 0;

fail:
	engine_destroy(b->eng);
	blk_queues_free(b);
	if (b->img_open)
		image_close(&b->img);
	free(b);
	return r;
}

struct virtio_dev *virtio_blk_dev(struct virtio_blk *b)
{
	return &b->dev;
}

void virtio_blk_destroy(struct virtio_blk *b)
{
	if (!b)
		return;
	limit_destroy(&b->limit);
	if (b->eng_watched)
		evloop_del(b->plat->loop, engine_event_fd(b->eng));
	engine_destroy(b->eng); /* waits for the kernel; no callbacks */
	virtio_dev_uninit(&b->dev);
	blk_queues_free(b);
	image_close(&b->img);
	free(b);
}

void virtio_blk_set_metrics(struct virtio_blk *b, bool on)
{
	pthread_mutex_lock(&b->dev.lock);
	b->metrics = on;
	pthread_mutex_unlock(&b->dev.lock);
}

void virtio_blk_get_stats(struct virtio_blk *b, struct virtio_blk_stats *out)
{
	pthread_mutex_lock(&b->dev.lock);
	*out = b->stats;
	pthread_mutex_unlock(&b->dev.lock);
}
