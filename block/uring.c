/* The io_uring engine (liburing).
 *
 * One ring per engine, the image's fd registered as fixed file 0 and every
 * SQE marked IOSQE_FIXED_FILE. io-wq worker threads (what io_uring uses for
 * fsync, fallocate and buffered I/O it cannot do inline) are capped with
 * IORING_REGISTER_IOWQ_MAX_WORKERS: they are threads of this process, in its
 * cgroup, so a host running hundreds of VMs stays within its PID limits.
 *
 * Capacity: at most cq_entries requests are in the ring (prepared or in the
 * kernel), so the CQ never overflows in normal operation; requests beyond
 * that, or beyond free SQ slots, wait on an intrusive FIFO (req->priv.next,
 * no allocation) and are prepared when reaping frees room. Short transfers,
 * -EAGAIN results and the write-zeroes fallback chain are continued by
 * re-preparing the same request at the front of that list.
 *
 * Submitting in pairs: an io_uring_enter() with more than two reads or
 * writes holds them in a block plug until the last is prepared, so the
 * disk sees none of a 32-request batch until all 32 have been through the
 * block layer. When the guest refills a whole queue at once (all earlier
 * requests having completed together) that delay is added to every
 * request. engine_queue() therefore submits each time submit_batch
 * requests are staged, so the disk starts on the first ones while the
 * rest are parsed. Measured on a virtio disk, 4 KiB random reads at QD32
 * (liburing loop, interleaved runs): submitting in ones or twos gave
 * 166-177k IOPS, in eights 150-163k, all 32 at once 141-143k; fio's
 * default (one io_uring_enter per I/O) is in the first group.
 *
 * Submit errors: -EINTR retries at once; -EAGAIN/-EBUSY (kernel short of
 * memory, CQ overflow backlog) leave the SQEs in the SQ ring and retry on the
 * next reap, which completions (or, with nothing in flight, a kick of our
 * own eventfd after a few yields) guarantee. */
#include "block/engine_priv.h"

#include <errno.h>
#include <liburing.h>
#include <linux/falloc.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define URING_DEFAULT_WORKERS 4
#define URING_MAX_RETRIES 16
#define URING_FIXED_FD 0 /* index of the image in the registered files */

/* Setup flags, tried in this order (a kernel that does not know a flag
 * refuses the whole set with -EINVAL). SUBMIT_ALL (5.18): an SQE that
 * fails early does not stop the batch.
 *
 * Measured and left out (tests/bench/blk_bench, 6.18 host, 4 KiB random
 * reads): COOP_TASKRUN + TASKRUN_FLAG (5.19) cost 5-15% of the IOPS at
 * QD32 against this set, in three interleaved runs: the completion then
 * waits for the event thread's next syscall instead of an IPI. Not
 * SINGLE_ISSUER/DEFER_TASKRUN (6.1) either: they tie submission and
 * reaping to one thread, but a device reset reaps from a vCPU thread
 * (virtio/blk.c blk_quiesce()) and teardown from whichever thread stops
 * the VM; a deferred completion would then never run. uring_pending()
 * still honours IORING_SQ_TASKRUN should a flag set add TASKRUN_FLAG. */
static const unsigned uring_setups[] = {
	IORING_SETUP_SUBMIT_ALL,
	0,
};
#define URING_NR_SETUPS (sizeof(uring_setups) / sizeof(uring_setups[0]))

struct uring_engine {
	struct engine base;
	struct io_uring ring;
	bool ring_ready;
	unsigned cq_limit;  /* most requests in the ring at once */
	unsigned in_ring;   /* SQEs prepared and not yet reaped */
	unsigned submit_batch; /* staged SQEs that trigger a submit */
	struct engine_req *pend_head, *pend_tail;
};

static struct uring_engine *uring_of(struct engine *e)
{
	return (struct uring_engine *)e;
}

static void uring_pend_tail(struct uring_engine *u, struct engine_req *req)
{
	req->priv.next = NULL;
	if (u->pend_tail)
		u->pend_tail->priv.next = req;
	else
		u->pend_head = req;
	u->pend_tail = req;
}

static void uring_pend_front(struct uring_engine *u, struct engine_req *req)
{
	req->priv.next = u->pend_head;
	u->pend_head = req;
	if (!u->pend_tail)
		u->pend_tail = req;
}

static bool uring_has_room(const struct uring_engine *u)
{
	return u->in_ring < u->cq_limit && io_uring_sq_space_left(&u->ring) > 0;
}

/* Fills one SQE for what is left of @req. False when the SQ is full. */
static bool uring_prep(struct uring_engine *u, struct engine_req *req)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
	if (!sqe)
		return false;
	struct image *img = u->base.img;
	uint64_t off = req->offset + req->priv.done;
	struct iovec *iov;
	unsigned cnt;

	switch (req->op) {
	case ENGINE_OP_READ:
		cnt = engine_iov_remainder(req, &iov);
		io_uring_prep_readv(sqe, URING_FIXED_FD, iov, cnt, off);
		break;
	case ENGINE_OP_WRITE:
		cnt = engine_iov_remainder(req, &iov);
		io_uring_prep_writev(sqe, URING_FIXED_FD, iov, cnt, off);
		break;
	case ENGINE_OP_FLUSH:
		io_uring_prep_fsync(sqe, URING_FIXED_FD, IORING_FSYNC_DATASYNC);
		break;
	case ENGINE_OP_DISCARD:
		req->priv.mode = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
		io_uring_prep_fallocate(sqe, URING_FIXED_FD, req->priv.mode,
					(off_t)req->offset, (off_t)req->len);
		break;
	case ENGINE_OP_WRITE_ZEROES:
		req->priv.mode = image_zero_mode(img);
		if (req->priv.mode) {
			io_uring_prep_fallocate(sqe, URING_FIXED_FD, req->priv.mode,
						(off_t)req->offset, (off_t)req->len);
		} else {
			uint64_t left = req->len - req->priv.done;
			unsigned chunk = left < img->zero_buf_len ? (unsigned)left
								  : (unsigned)img->zero_buf_len;
			io_uring_prep_write(sqe, URING_FIXED_FD, img->zero_buf, chunk, off);
		}
		break;
	}
	sqe->flags |= IOSQE_FIXED_FILE;
	io_uring_sqe_set_data(sqe, req);
	u->in_ring++;
	return true;
}

static void uring_flush_pending(struct uring_engine *u)
{
	while (u->pend_head && uring_has_room(u)) {
		struct engine_req *req = u->pend_head;
		if (!uring_prep(u, req))
			break;
		u->pend_head = req->priv.next;
		if (!u->pend_head)
			u->pend_tail = NULL;
		req->priv.next = NULL;
	}
}

static int uring_submit(struct engine *e);

static int uring_queue(struct engine *e, struct engine_req *req)
{
	struct uring_engine *u = uring_of(e);
	if (u->pend_head || !uring_has_room(u) || !uring_prep(u, req)) {
		e->stats.overflowed++;
		uring_pend_tail(u, req);
		return 0;
	}
	/* A failure leaves the SQEs staged and kicks the retry. */
	if (io_uring_sq_ready(&u->ring) >= u->submit_batch)
		(void)uring_submit(e);
	return 0;
}

static int uring_submit(struct engine *e)
{
	struct uring_engine *u = uring_of(e);
	unsigned busy = 0;
	for (;;) {
		uring_flush_pending(u);
		if (io_uring_sq_ready(&u->ring) == 0)
			return 0;
		e->stats.submit_calls++;
		int r = io_uring_submit(&u->ring);
		if (r > 0) {
			busy = 0;
			continue; /* a partial submit, or room for more pending */
		}
		if (r == -EINTR)
			continue;
		if (r == 0)
			r = -EAGAIN;
		if (r != -EAGAIN && r != -EBUSY) {
			log_ratelimited(e->img->lg, &e->rl, e->img->name,
					"%s: io_uring_submit: %s", e->img->path, strerror(-r));
			engine_kick(e);
			return r;
		}
		/* Completions are on their way: the reap they cause retries. */
		if (u->in_ring > io_uring_sq_ready(&u->ring))
			return 0;
		if (++busy < 8) {
			sched_yield();
			continue;
		}
		engine_kick(e);
		return r;
	}
}

static bool uring_fallocate_refused(int res)
{
	return res == -EOPNOTSUPP || res == -EINVAL || res == -ENOSYS;
}

/* Handles one CQE for @req: completes it (true) or puts it back at the
 * front of the pending list to continue (false). */
static bool uring_finish(struct uring_engine *u, struct engine_req *req, int res,
			 engine_done_fn *cb, void *cookie)
{
	struct engine *e = &u->base;
	if ((res == -EAGAIN || res == -EINTR) && req->priv.retries < URING_MAX_RETRIES) {
		req->priv.retries++;
		e->stats.resubmits++;
		uring_pend_front(u, req);
		return false;
	}
	switch (req->op) {
	case ENGINE_OP_FLUSH:
		engine_complete(e, req, res < 0 ? res : 0, cb, cookie);
		return true;
	case ENGINE_OP_DISCARD:
		if (res == -EOPNOTSUPP)
			image_mode_refused(e->img, req->priv.mode);
		engine_complete(e, req, res < 0 ? res : (int64_t)req->len, cb, cookie);
		return true;
	case ENGINE_OP_WRITE_ZEROES:
		if (req->priv.mode) {
			if (res >= 0) {
				engine_complete(e, req, (int64_t)req->len, cb, cookie);
				return true;
			}
			if (!uring_fallocate_refused(res)) {
				engine_complete(e, req, res, cb, cookie);
				return true;
			}
			/* Next step of the chain; each refusal clears one mode. */
			image_mode_refused(e->img, req->priv.mode);
			uring_pend_front(u, req);
			return false;
		}
		break; /* writing zeroes: a write like any other */
	case ENGINE_OP_READ:
	case ENGINE_OP_WRITE:
		break;
	}
	if (res < 0) {
		engine_complete(e, req, res, cb, cookie);
		return true;
	}
	if (res == 0) {
		engine_complete(e, req, -EIO, cb, cookie);
		return true;
	}
	req->priv.done += (uint64_t)res;
	if (req->priv.done < req->len) {
		e->stats.resubmits++;
		uring_pend_front(u, req);
		return false;
	}
	engine_complete(e, req, (int64_t)req->len, cb, cookie);
	return true;
}

static int uring_reap(struct engine *e, engine_done_fn *cb, void *cookie)
{
	struct uring_engine *u = uring_of(e);
	engine_drain_event_fd(e);
	if (io_uring_cq_has_overflow(&u->ring))
		io_uring_get_events(&u->ring);

	/* Bounded: callbacks may submit more that completes inline; those
	 * CQEs signal the eventfd again, so nothing is stranded. */
	unsigned budget = u->cq_limit;
	int n = 0;
	struct io_uring_cqe *cqe;
	while (budget && io_uring_peek_cqe(&u->ring, &cqe) == 0) {
		struct engine_req *req = io_uring_cqe_get_data(cqe);
		int res = cqe->res;
		io_uring_cqe_seen(&u->ring, cqe);
		u->in_ring--;
		budget--;
		if (uring_finish(u, req, res, cb, cookie))
			n++;
	}
	if (!budget && io_uring_cq_ready(&u->ring))
		engine_kick(e);
	int r = uring_submit(e);
	return r < 0 && n == 0 ? r : n;
}

static bool uring_pending(const struct engine *e)
{
	const struct uring_engine *u = (const struct uring_engine *)e;
	unsigned kflags = IO_URING_READ_ONCE(*u->ring.sq.kflags);
	return io_uring_cq_ready(&u->ring) ||
	       (kflags & (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW)) ||
	       (u->pend_head && uring_has_room(u));
}

static void uring_destroy(struct engine *e)
{
	struct uring_engine *u = uring_of(e);
	if (u->ring_ready) {
		/* Requests in the kernel still point at caller buffers: wait
		 * for them. Prepared but unsubmitted SQEs never reach it. */
		while (u->in_ring > io_uring_sq_ready(&u->ring)) {
			struct io_uring_cqe *cqe;
			int r = io_uring_wait_cqe(&u->ring, &cqe);
			if (r == -EINTR)
				continue;
			if (r < 0)
				break;
			io_uring_cqe_seen(&u->ring, cqe);
			u->in_ring--;
		}
		io_uring_queue_exit(&u->ring);
	}
	if (e->event_fd >= 0)
		close(e->event_fd);
	free(u);
}

static const struct engine_ops uring_ops = {
	.name = "io_uring",
	.queue = uring_queue,
	.submit = uring_submit,
	.reap = uring_reap,
	.pending = uring_pending,
	.destroy = uring_destroy,
};

int uring_create(struct image *img, const struct engine_params *p,
		 struct engine **out, const char **why)
{
	*why = NULL;
	struct uring_engine *u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	u->base.ops = &uring_ops;
	u->base.img = img;
	u->base.event_fd = -1;

	unsigned entries = p->ring_size ? p->ring_size : ENGINE_DEFAULT_RING_SIZE;
	struct io_uring_params params;
	memset(&params, 0, sizeof(params));
	/* Newest flag set first; a kernel that does not know a flag refuses
	 * the whole set with -EINVAL, so retry with less. */
	int r = -EINVAL;
	for (unsigned i = 0; i < URING_NR_SETUPS && r == -EINVAL; i++) {
		memset(&params, 0, sizeof(params));
		params.flags = uring_setups[i];
		r = io_uring_queue_init_params(entries, &u->ring, &params);
	}
	if (r < 0) {
		*why = "io_uring_queue_init";
		goto fail;
	}
	u->ring_ready = true;
	u->cq_limit = params.cq_entries;
	u->submit_batch = p->submit_batch ? p->submit_batch : ENGINE_DEFAULT_SUBMIT_BATCH;

	r = io_uring_register_files(&u->ring, &img->fd, 1);
	if (r < 0) {
		*why = "io_uring_register_files";
		goto fail;
	}

	unsigned workers[2] = {
		p->max_workers_bounded ? p->max_workers_bounded : URING_DEFAULT_WORKERS,
		p->max_workers_unbounded ? p->max_workers_unbounded : URING_DEFAULT_WORKERS,
	};
	r = io_uring_register_iowq_max_workers(&u->ring, workers);
	if (r < 0) {
		/* Only kernels before 5.15 lack it: run, but say so. */
		log_warn(img->lg, img->name, "%s: io_uring_register_iowq_max_workers: %s; "
			 "io_uring worker threads are not bounded", img->path, strerror(-r));
	}

	u->base.event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (u->base.event_fd < 0) {
		r = -errno;
		*why = "eventfd";
		goto fail;
	}
	r = io_uring_register_eventfd(&u->ring, u->base.event_fd);
	if (r < 0) {
		*why = "io_uring_register_eventfd";
		goto fail;
	}
	log_debug(img->lg, img->name, "io_uring: %u SQ, %u CQ entries, flags %#x, io-wq workers %u bounded, %u unbounded, submit batch %u",
		  params.sq_entries, params.cq_entries, params.flags, workers[0], workers[1],
		  u->submit_batch);
	*out = &u->base;
	return 0;

fail:
	uring_destroy(&u->base);
	return r;
}
