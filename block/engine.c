#include "block/engine.h"
#include "block/engine_priv.h"

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

static int engine_create_backend(struct image *img, const struct engine_params *p,
				 struct engine **out)
{
	*out = NULL;
	const char *why = "disk io=sync";
	if (p->io == DISK_IO_URING) {
		const char *fail = NULL;
		int r = uring_create(img, p, out, &fail);
		if (r == 0) {
			log_info(img->lg, img->name, "%s: io engine io_uring", img->path);
			return 0;
		}
		if (r == -ENOMEM && !fail)
			return r;
		log_warn(img->lg, img->name, "%s: io_uring unavailable (%s: %s); "
			 "falling back to the sync io engine", img->path,
			 fail ? fail : "setup", strerror(-r));
		why = "io_uring unavailable";
	}
	int r = sync_create(img, out);
	if (r < 0) {
		log_err(img->lg, img->name, "%s: creating the sync io engine: %s",
			img->path, strerror(-r));
		return r;
	}
	log_info(img->lg, img->name, "%s: io engine sync (%s)", img->path, why);
	return 0;
}

int engine_create(struct image *img, const struct engine_params *p,
		  struct engine **out)
{
	if (p->overlay.kind != OVERLAY_NONE && !img->readonly) {
		log_err(img->lg, img->name, "%s.overlay: the base %s must be opened read-only",
			img->name, img->path);
		return -EINVAL;
	}
	int r = engine_create_backend(img, p, out);
	if (r < 0 || p->overlay.kind == OVERLAY_NONE)
		return r;
	struct engine *inner = *out;
	*out = NULL;
	return overlay_create(img, &p->overlay, inner, out);
}

void engine_destroy(struct engine *e)
{
	if (e)
		e->ops->destroy(e);
}

static bool engine_aligned(uint64_t v, unsigned align)
{
	return align <= 1 || v % align == 0;
}

static int engine_validate(const struct engine *e, const struct engine_req *req)
{
	const struct image *img = e->img;
	switch (req->op) {
	case ENGINE_OP_FLUSH:
		return 0;
	case ENGINE_OP_WRITE:
	case ENGINE_OP_DISCARD:
	case ENGINE_OP_WRITE_ZEROES:
		if (engine_readonly(e))
			return -EROFS;
		break;
	case ENGINE_OP_READ:
		break;
	default:
		return -EINVAL;
	}
	if (image_check_range(img, req->offset, req->len))
		return -EINVAL;

	if (req->op == ENGINE_OP_DISCARD || req->op == ENGINE_OP_WRITE_ZEROES) {
		unsigned a = img->dio_offset_align;
		if (img->blockdev && img->logical_block_size > a)
			a = img->logical_block_size;
		if (req->len == 0 || !engine_aligned(req->offset, a) ||
		    !engine_aligned(req->len, a))
			return -EINVAL;
		if (req->op == ENGINE_OP_DISCARD && !engine_can_discard(e))
			return -EOPNOTSUPP;
		return 0;
	}

	if (!req->iov || req->iovcnt == 0 || req->iovcnt > ENGINE_MAX_IOV)
		return -EINVAL;
	if (!engine_aligned(req->offset, img->dio_offset_align))
		return -EINVAL;
	uint64_t sum = 0;
	for (unsigned i = 0; i < req->iovcnt; i++) {
		const struct iovec *v = &req->iov[i];
		if (!engine_aligned((uintptr_t)v->iov_base, img->dio_mem_align) ||
		    !engine_aligned(v->iov_len, img->dio_mem_align))
			return -EINVAL;
		if (v->iov_len > UINT64_MAX - sum)
			return -EINVAL;
		sum += v->iov_len;
	}
	if (sum != req->len || sum == 0)
		return -EINVAL;
	return 0;
}

int engine_queue(struct engine *e, struct engine_req *req)
{
	int r = engine_validate(e, req);
	if (r < 0) {
		e->stats.rejected++;
		req->result = r;
		return r;
	}
	memset(&req->priv, 0, sizeof(req->priv));
	req->result = 0;
	r = e->ops->queue(e, req);
	if (r < 0) {
		e->stats.rejected++;
		req->result = r;
		return r;
	}
	e->inflight++;
	return 0;
}

int engine_submit(struct engine *e)
{
	return e->ops->submit(e);
}

int engine_reap(struct engine *e, engine_done_fn *cb, void *cookie)
{
	return e->ops->reap(e, cb, cookie);
}

bool engine_pending(const struct engine *e)
{
	return e->ops->pending && e->ops->pending(e);
}

int engine_event_fd(const struct engine *e)
{
	return e->event_fd;
}

bool engine_readonly(const struct engine *e)
{
	return e->img->readonly && !e->overlay;
}

bool engine_can_discard(const struct engine *e)
{
	return e->overlay || e->img->can_discard;
}

bool engine_can_write_zeroes(const struct engine *e)
{
	return e->overlay || e->img->can_write_zeroes;
}

const char *engine_name(const struct engine *e)
{
	return e->ops->name;
}

unsigned engine_inflight(const struct engine *e)
{
	return e->inflight;
}

void engine_get_stats(const struct engine *e, struct engine_stats *out)
{
	*out = e->stats;
}
