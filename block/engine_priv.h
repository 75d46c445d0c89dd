/* Inside the block engines: the ops table each backend (block/uring.c,
 * block/sync.c) fills, the common struct engine, and the helpers they
 * complete requests with (block/engine_priv.c). block/engine.c picks a
 * backend and calls through its ops; nothing outside block/ includes
 * this. */
#ifndef KVMRUN_ENGINE_PRIV_H
#define KVMRUN_ENGINE_PRIV_H

#include "block/engine.h"

struct engine_ops {
	const char *name;
	/* Called after engine_queue() validated @req and reset req->priv. */
	int (*queue)(struct engine *e, struct engine_req *req);
	int (*submit)(struct engine *e);
	/* Must call engine_complete() for each finished request. */
	int (*reap)(struct engine *e, engine_done_fn *cb, void *cookie);
	/* engine_pending(); NULL: always false (the event fd tells). */
	bool (*pending)(const struct engine *e);
	/* Frees the backend, the struct engine included. */
	void (*destroy)(struct engine *e);
};

/* The common part, first member of each backend's struct. */
struct engine {
	const struct engine_ops *ops;
	struct image *img;
	int event_fd;
	unsigned inflight;
	struct engine_stats stats;
	struct log_ratelimit rl;
	bool overlay;            /* writes go to an overlay (block/overlay.c) */
};

/* The backends' constructors (block/uring.c, block/sync.c). Each returns 0
 * and a fully set-up engine (event_fd included), or -errno having logged
 * nothing: engine_create() logs the reason; uring_create() sets *@why to
 * the step that failed. */
int uring_create(struct image *img, const struct engine_params *p,
		 struct engine **out, const char **why);
int sync_create(struct image *img, struct engine **out);
/* Stacks an overlay (block/overlay.c) on @inner, the engine of the
 * read-only @img, sharing its event fd; takes @inner over (destroyed on
 * failure too). Logs its failures. */
int overlay_create(struct image *img, const struct overlay_params *p, struct engine *inner,
		   struct engine **out);

/* Restores the iovec, counts, logs failures (rate-limited), sets
 * req->result and calls @cb. */
void engine_complete(struct engine *e, struct engine_req *req, int64_t result,
		     engine_done_fn *cb, void *cookie);

/* Points *@out at what is left of req->iov after req->priv.done bytes,
 * rewriting (and saving) at most one entry; returns the entry count. */
unsigned engine_iov_remainder(struct engine_req *req, struct iovec **out);

/* Makes the event fd readable. */
void engine_kick(struct engine *e);
/* Reads the event fd empty. */
void engine_drain_event_fd(struct engine *e);

#endif
