/* The overlay engine: a backend (block/engine_priv.h) stacked on the base
 * image's own engine, io_uring or sync.
 *
 * A read none of whose blocks the guest has written goes to the base's
 * engine untouched (the same request, through the base's ops), so reads of
 * the base keep the speed of the engine under it. Everything else runs at
 * once inside engine_queue() on the event thread, as the sync engine's
 * requests do: writes, discards and write-zeroes into the store (memory or
 * a file, block/overlay_priv.h), reads that touch written blocks (each run
 * of blocks from the store or with preadv from the base), and flushes. Their
 * completions are delivered by the next engine_reap(), after a kick of the
 * event fd, which the two engines share.
 *
 * Write: blocks not yet in the store count against overlay_max first (the
 * whole request fails with -ENOSPC if they do not fit, logged once); a
 * partly covered block not yet in the store is copied from the base (copy
 * on write); then the data goes to the store and the blocks are marked.
 * Discard and write-zeroes: the same write of zeroes for partly covered
 * blocks; whole blocks are dropped from the store and marked zero, so the
 * base shows through nowhere they cover. Flush: the store's sync (a kept
 * file: map and data fdatasync'd) before the completion. */
#include "block/engine_priv.h"
#include "block/overlay_priv.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct overlay_engine {
	struct engine base;
	struct engine *inner;          /* the base image's engine */
	struct overlay_store *store;
	uint64_t max_blocks;           /* overlay_max, in blocks */
	bool full_logged;
	bool kick;                     /* completions done since the last kick */
	struct engine_req *done_head, *done_tail;
	engine_done_fn *cb;            /* during overlay_reap() */
	void *cookie;
	uint8_t *block;                /* one block, aligned for the base's O_DIRECT */
	uint8_t *zeroes;               /* one block of zeroes, never written */
	size_t block_align;
	struct iovec slice[ENGINE_MAX_IOV];
};

static struct overlay_engine *overlay_of(struct engine *e)
{
	return (struct overlay_engine *)e;
}

static uint64_t overlay_block_end(const struct overlay_engine *o, uint64_t b)
{
	uint64_t end = (b + 1) * OVERLAY_BLOCK_SIZE;
	return end < o->base.img->size ? end : o->base.img->size;
}

/* Points o->slice at bytes [skip, skip + len) of @req's iovec; returns the
 * entry count. */
static unsigned overlay_slice(struct overlay_engine *o, const struct engine_req *req,
			      uint64_t skip, uint64_t len)
{
	unsigned n = 0;
	for (unsigned i = 0; i < req->iovcnt && len; i++) {
		size_t l = req->iov[i].iov_len;
		if (skip >= l) {
			skip -= l;
			continue;
		}
		size_t part = l - (size_t)skip < len ? l - (size_t)skip : (size_t)len;
		o->slice[n].iov_base = (uint8_t *)req->iov[i].iov_base + skip;
		o->slice[n].iov_len = part;
		n++;
		len -= part;
		skip = 0;
	}
	return n;
}

/* preadv from the base until done; -EIO when no progress is made. */
static int overlay_base_read(struct overlay_engine *o, uint64_t off, struct iovec *iov,
			     unsigned cnt)
{
	while (cnt) {
		ssize_t n = preadv(o->base.img->fd, iov, (int)cnt, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		off += (uint64_t)n;
		size_t left = (size_t)n;
		while (cnt && left >= iov->iov_len) {
			left -= iov->iov_len;
			iov++;
			cnt--;
		}
		if (cnt) {
			iov->iov_base = (uint8_t *)iov->iov_base + left;
			iov->iov_len -= left;
		}
	}
	return 0;
}

/* A read that touches written blocks: each run of blocks with the same
 * source, from the store or the base. */
static int64_t overlay_read(struct overlay_engine *o, const struct engine_req *req)
{
	const struct overlay_map *m = &o->store->map;
	uint64_t pos = req->offset, end = req->offset + req->len;
	while (pos < end) {
		uint64_t b = pos / OVERLAY_BLOCK_SIZE;
		bool touched = overlay_map_touched(m, b);
		uint64_t run_end = overlay_block_end(o, b);
		while (run_end < end && overlay_map_touched(m, run_end / OVERLAY_BLOCK_SIZE) == touched)
			run_end = overlay_block_end(o, run_end / OVERLAY_BLOCK_SIZE);
		if (run_end > end)
			run_end = end;
		unsigned cnt = overlay_slice(o, req, pos - req->offset, run_end - pos);
		int r = touched ? o->store->ops->read(o->store, pos, o->slice, cnt)
				: overlay_base_read(o, pos, o->slice, cnt);
		if (r < 0)
			return r;
		pos = run_end;
	}
	return (int64_t)req->len;
}

/* Copies block @b from the base into the store, unless it is there (or
 * zero) already. */
static int overlay_cow(struct overlay_engine *o, uint64_t b)
{
	if (overlay_map_touched(&o->store->map, b))
		return 0;
	uint64_t off = b * OVERLAY_BLOCK_SIZE, len = overlay_block_end(o, b) - off;
	/* O_DIRECT wants whole aligned blocks: read a whole one; at the
	 * disk's end the read comes back short. */
	struct iovec v = { .iov_base = o->block, .iov_len = OVERLAY_BLOCK_SIZE };
	ssize_t n;
	while ((n = pread(o->base.img->fd, o->block, v.iov_len, (off_t)off)) < 0 && errno == EINTR)
		;
	if (n < 0)
		return -errno;
	if ((uint64_t)n < len)
		return -EIO;
	v.iov_len = (size_t)len;
	return o->store->ops->write(o->store, off, &v, 1);
}

/* @bytes as a config size: "16K", "1G", or bytes. */
static void overlay_fmt_size(uint64_t bytes, char *buf, size_t len)
{
	static const char units[] = "KMGT";
	int u = -1;
	while (u < 3 && bytes && bytes % 1024 == 0) {
		bytes /= 1024;
		u++;
	}
	if (u < 0)
		snprintf(buf, len, "%" PRIu64, bytes);
	else
		snprintf(buf, len, "%" PRIu64 "%c", bytes, units[u]);
}

/* Whether the blocks of [off, off + len) not yet holding data fit under
 * overlay_max; logs the first refusal. */
static bool overlay_room(struct overlay_engine *o, uint64_t off, uint64_t len)
{
	const struct overlay_map *m = &o->store->map;
	uint64_t need = 0;
	for (uint64_t b = off / OVERLAY_BLOCK_SIZE; b * OVERLAY_BLOCK_SIZE < off + len; b++)
		need += !overlay_map_data(m, b);
	if (m->used + need <= o->max_blocks)
		return true;
	if (!o->full_logged) {
		char sz[32];
		overlay_fmt_size(o->max_blocks * OVERLAY_BLOCK_SIZE, sz, sizeof(sz));
		o->full_logged = true;
		log_warn(o->base.img->lg, o->base.img->name, "%s.overlay_max=%s is full: writes to "
			 "blocks not yet written fail with an I/O error in the guest (logged once)",
			 o->base.img->name, sz);
	}
	return false;
}

static int overlay_write_iov(struct overlay_engine *o, uint64_t off, uint64_t len,
			     struct iovec *iov, unsigned cnt)
{
	if (!overlay_room(o, off, len))
		return -ENOSPC;
	uint64_t first = off / OVERLAY_BLOCK_SIZE, last = (off + len - 1) / OVERLAY_BLOCK_SIZE;
	int r = 0;
	if (off % OVERLAY_BLOCK_SIZE || off + len < overlay_block_end(o, first))
		r = overlay_cow(o, first);
	if (r == 0 && last != first && off + len < overlay_block_end(o, last))
		r = overlay_cow(o, last);
	if (r == 0)
		r = o->store->ops->write(o->store, off, iov, cnt);
	if (r < 0)
		return r;
	for (uint64_t b = first; b <= last; b++)
		overlay_map_set(&o->store->map, b, true, true);
	return 0;
}

/* Zeroes [off, off + len), inside one block, with a write (copy on write
 * first); nothing to do in a block that reads as zeroes already. */
static int overlay_zero_part(struct overlay_engine *o, uint64_t off, uint64_t len)
{
	const struct overlay_map *m = &o->store->map;
	uint64_t b = off / OVERLAY_BLOCK_SIZE;
	if (overlay_map_touched(m, b) && !overlay_map_data(m, b))
		return 0;
	struct iovec v = { .iov_base = o->zeroes, .iov_len = (size_t)len };
	return overlay_write_iov(o, off, len, &v, 1);
}

/* Discard and write-zeroes: both read back as zeroes. Partly covered
 * blocks at either end are written; whole ones (a partial last block of
 * the disk counts as whole) are dropped and marked zero. */
static int64_t overlay_zero(struct overlay_engine *o, const struct engine_req *req)
{
	const uint64_t bs = OVERLAY_BLOCK_SIZE;
	uint64_t off = req->offset, end = req->offset + req->len;
	uint64_t wstart = off, wend = end; /* the whole blocks */
	int r = 0;
	if (off % bs) {
		uint64_t head_end = (off / bs + 1) * bs < end ? (off / bs + 1) * bs : end;
		r = overlay_zero_part(o, off, head_end - off);
		wstart = head_end;
	}
	if (r == 0 && end % bs && end != o->base.img->size && end > wstart) {
		uint64_t tail = end / bs * bs > wstart ? end / bs * bs : wstart;
		r = overlay_zero_part(o, tail, end - tail);
		wend = tail;
	}
	if (r == 0 && wstart < wend)
		r = o->store->ops->drop(o->store, wstart, wend - wstart);
	if (r < 0)
		return r;
	for (uint64_t b = wstart / bs; wstart < wend && b <= (wend - 1) / bs; b++)
		overlay_map_set(&o->store->map, b, true, false);
	return (int64_t)req->len;
}

static int64_t overlay_exec(struct overlay_engine *o, struct engine_req *req)
{
	int r;
	switch (req->op) {
	case ENGINE_OP_READ:
		return overlay_read(o, req);
	case ENGINE_OP_WRITE:
		r = overlay_write_iov(o, req->offset, req->len, req->iov, req->iovcnt);
		return r < 0 ? r : (int64_t)req->len;
	case ENGINE_OP_DISCARD:
	case ENGINE_OP_WRITE_ZEROES:
		return overlay_zero(o, req);
	case ENGINE_OP_FLUSH:
		if (!o->store->durable || !o->store->ops->sync)
			return 0;
		return o->store->ops->sync(o->store);
	}
	return -EINVAL;
}

/* Hands @req to the base's engine as engine_queue() would. */
static int overlay_pass(struct overlay_engine *o, struct engine_req *req)
{
	struct engine *in = o->inner;
	memset(&req->priv, 0, sizeof(req->priv));
	int r = in->ops->queue(in, req);
	if (r == 0)
		in->inflight++;
	return r;
}

static int overlay_queue(struct engine *e, struct engine_req *req)
{
	struct overlay_engine *o = overlay_of(e);
	if (req->op == ENGINE_OP_READ &&
	    !overlay_map_any_touched(&o->store->map, req->offset / OVERLAY_BLOCK_SIZE,
				     (req->offset + req->len - 1) / OVERLAY_BLOCK_SIZE))
		return overlay_pass(o, req);
	req->result = overlay_exec(o, req);
	req->priv.next = NULL;
	if (o->done_tail)
		o->done_tail->priv.next = req;
	else
		o->done_head = req;
	o->done_tail = req;
	o->kick = true;
	return 0;
}

static int overlay_submit(struct engine *e)
{
	struct overlay_engine *o = overlay_of(e);
	int r = o->inner->ops->submit(o->inner);
	if (o->kick) {
		o->kick = false;
		engine_kick(e);
	}
	return r;
}

/* A base read completed (the base's engine_complete() called us). */
static void overlay_inner_done(void *cookie, struct engine_req *req)
{
	struct overlay_engine *o = cookie;
	engine_complete(&o->base, req, req->result, o->cb, o->cookie);
}

static int overlay_reap(struct engine *e, engine_done_fn *cb, void *cookie)
{
	struct overlay_engine *o = overlay_of(e);
	o->cb = cb;
	o->cookie = cookie;
	int n = o->inner->ops->reap(o->inner, overlay_inner_done, o); /* drains the fd */
	int r = n < 0 ? n : 0;
	n = n < 0 ? 0 : n;
	/* Detach first: callbacks may queue more, which kicks again. */
	struct engine_req *req = o->done_head;
	o->done_head = o->done_tail = NULL;
	while (req) {
		struct engine_req *next = req->priv.next;
		engine_complete(e, req, req->result, cb, cookie);
		n++;
		req = next;
	}
	if (o->kick) {
		o->kick = false;
		engine_kick(e);
	}
	return r < 0 && n == 0 ? r : n;
}

static bool overlay_pending(const struct engine *e)
{
	const struct overlay_engine *o = (const struct overlay_engine *)e;
	return o->done_head || (o->inner->ops->pending && o->inner->ops->pending(o->inner));
}

static void overlay_destroy(struct engine *e)
{
	struct overlay_engine *o = overlay_of(e);
	if (o->inner)
		o->inner->ops->destroy(o->inner); /* closes the shared event fd */
	if (o->store)
		o->store->ops->destroy(o->store);
	free(o->block);
	free(o->zeroes);
	free(o);
}

static const struct engine_ops overlay_ops = {
	.name = "overlay",
	.queue = overlay_queue,
	.submit = overlay_submit,
	.reap = overlay_reap,
	.pending = overlay_pending,
	.destroy = overlay_destroy,
};

int overlay_create(struct image *img, const struct overlay_params *p, struct engine *inner,
		   struct engine **out)
{
	struct overlay_engine *o = calloc(1, sizeof(*o));
	if (!o) {
		inner->ops->destroy(inner);
		log_err(img->lg, img->name, "%s.overlay: out of memory", img->name);
		return -ENOMEM;
	}
	o->base.ops = &overlay_ops;
	o->base.img = img;
	o->base.event_fd = inner->event_fd;
	o->base.overlay = true;
	o->inner = inner;
	if (img->dio_offset_align > OVERLAY_BLOCK_SIZE) {
		log_err(img->lg, img->name, "%s.overlay: %s needs O_DIRECT I/O in units of %u bytes, "
			"more than the overlay's %u-byte blocks; use %s.cache=writeback",
			img->name, img->path, img->dio_offset_align, OVERLAY_BLOCK_SIZE, img->name);
		overlay_destroy(&o->base);
		return -EINVAL;
	}
	o->block_align = img->dio_mem_align > 4096 ? img->dio_mem_align : 4096;
	if (posix_memalign((void **)&o->block, o->block_align,
			   OVERLAY_BLOCK_SIZE > o->block_align ? OVERLAY_BLOCK_SIZE : o->block_align) ||
	    !(o->zeroes = calloc(1, OVERLAY_BLOCK_SIZE))) {
		overlay_destroy(&o->base);
		log_err(img->lg, img->name, "%s.overlay: out of memory", img->name);
		return -ENOMEM;
	}
	int r = p->kind == OVERLAY_MEMORY ? overlay_mem_create(img, &o->store)
					  : overlay_file_create(img, p, &o->store);
	if (r < 0) {
		overlay_destroy(&o->base);
		return r;
	}
	uint64_t max = p->max ? p->max : p->kind == OVERLAY_MEMORY ? OVERLAY_DEFAULT_MEM_MAX
								   : UINT64_MAX;
	o->max_blocks = max / OVERLAY_BLOCK_SIZE;
	char sz[32] = "no limit";
	if (max != UINT64_MAX)
		overlay_fmt_size(o->max_blocks * OVERLAY_BLOCK_SIZE, sz, sizeof(sz));
	log_info(img->lg, img->name, "%s: base read-only under overlay %s (%u-byte blocks, "
		 "overlay_max %s)", img->path, o->store->name, OVERLAY_BLOCK_SIZE, sz);
	*out = &o->base;
	return 0;
}
