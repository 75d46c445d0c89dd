/* The sync engine: every staged request runs to completion inside
 * engine_submit() (pread/pwritev/fdatasync/fallocate), then the batch's
 * completions are delivered by engine_reap() after one eventfd write, the
 * same way io_uring's are. Used with diskN.io=sync and when io_uring cannot
 * be set up. It blocks the event thread for the duration of each batch. */
#include "block/engine_priv.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct sync_engine {
	struct engine base;
	struct engine_req *staged_head, *staged_tail;
	struct engine_req *done_head, *done_tail;
};

static struct sync_engine *sync_of(struct engine *e)
{
	return (struct sync_engine *)e;
}

static void sync_append(struct engine_req **head, struct engine_req **tail,
			struct engine_req *req)
{
	req->priv.next = NULL;
	if (*tail)
		(*tail)->priv.next = req;
	else
		*head = req;
	*tail = req;
}

static int sync_queue(struct engine *e, struct engine_req *req)
{
	struct sync_engine *s = sync_of(e);
	sync_append(&s->staged_head, &s->staged_tail, req);
	return 0;
}

/* Reads or writes until done; a transfer that makes no progress is -EIO. */
static int64_t sync_rw(struct engine *e, struct engine_req *req)
{
	int fd = e->img->fd;
	while (req->priv.done < req->len) {
		struct iovec *iov;
		unsigned cnt = engine_iov_remainder(req, &iov);
		off_t off = (off_t)(req->offset + req->priv.done);
		ssize_t n = req->op == ENGINE_OP_READ ? preadv(fd, iov, (int)cnt, off)
						      : pwritev(fd, iov, (int)cnt, off);
		if (n < 0 && (errno == EINTR || errno == EAGAIN) && req->priv.retries++ < 16)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		if (req->priv.done + (uint64_t)n < req->len)
			e->stats.resubmits++;
		req->priv.done += (uint64_t)n;
	}
	return (int64_t)req->len;
}

static int64_t sync_exec(struct engine *e, struct engine_req *req)
{
	int r;
	switch (req->op) {
	case ENGINE_OP_READ:
	case ENGINE_OP_WRITE:
		return sync_rw(e, req);
	case ENGINE_OP_FLUSH:
		while ((r = fdatasync(e->img->fd)) < 0 && errno == EINTR)
			;
		return r < 0 ? -errno : 0;
	case ENGINE_OP_DISCARD:
		r = image_discard(e->img, req->offset, req->len);
		return r < 0 ? r : (int64_t)req->len;
	case ENGINE_OP_WRITE_ZEROES:
		r = image_write_zeroes(e->img, req->offset, req->len);
		return r < 0 ? r : (int64_t)req->len;
	}
	return -EINVAL;
}

static int sync_submit(struct engine *e)
{
	struct sync_engine *s = sync_of(e);
	if (!s->staged_head)
		return 0;
	struct engine_req *req = s->staged_head;
	s->staged_head = s->staged_tail = NULL;
	e->stats.submit_calls++;
	while (req) {
		struct engine_req *next = req->priv.next;
		req->result = sync_exec(e, req);
		sync_append(&s->done_head, &s->done_tail, req);
		req = next;
	}
	engine_kick(e);
	return 0;
}

static int sync_reap(struct engine *e, engine_done_fn *cb, void *cookie)
{
	struct sync_engine *s = sync_of(e);
	engine_drain_event_fd(e);
	/* Detach first: callbacks may queue and submit more, which then land
	 * on a fresh list and kick the eventfd again. */
	struct engine_req *req = s->done_head;
	s->done_head = s->done_tail = NULL;
	int n = 0;
	while (req) {
		struct engine_req *next = req->priv.next;
		engine_complete(e, req, req->result, cb, cookie);
		n++;
		req = next;
	}
	return n;
}

static void sync_destroy(struct engine *e)
{
	if (e->event_fd >= 0)
		close(e->event_fd);
	free(sync_of(e));
}

static const struct engine_ops sync_ops = {
	.name = "sync",
	.queue = sync_queue,
	.submit = sync_submit,
	.reap = sync_reap,
	.destroy = sync_destroy,
};

int sync_create(struct image *img, struct engine **out)
{
	struct sync_engine *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->base.ops = &sync_ops;
	s->base.img = img;
	s->base.event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (s->base.event_fd < 0) {
		int err = errno;
		free(s);
		return -err;
	}
	*out = &s->base;
	return 0;
}
