/* What both engine backends complete requests with: iovec bookkeeping for
 * continued short transfers, statistics and failure logs, the event fd. */
#include "block/engine_priv.h"

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

static const char *engine_op_name(enum engine_op op)
{
	switch (op) {
	case ENGINE_OP_READ: return "read";
	case ENGINE_OP_WRITE: return "write";
	case ENGINE_OP_FLUSH: return "flush";
	case ENGINE_OP_DISCARD: return "discard";
	case ENGINE_OP_WRITE_ZEROES: return "write-zeroes";
	}
	return "?";
}

static void engine_iov_restore(struct engine_req *req)
{
	if (req->priv.iov_modified) {
		req->iov[req->priv.iov_idx] = req->priv.iov_saved;
		req->priv.iov_modified = false;
	}
}

unsigned engine_iov_remainder(struct engine_req *req, struct iovec **out)
{
	engine_iov_restore(req);
	uint64_t skip = req->priv.done;
	unsigned i = 0;
	while (i < req->iovcnt && skip >= req->iov[i].iov_len) {
		skip -= req->iov[i].iov_len;
		i++;
	}
	if (i < req->iovcnt && skip) {
		req->priv.iov_idx = i;
		req->priv.iov_saved = req->iov[i];
		req->priv.iov_modified = true;
		req->iov[i].iov_base = (char *)req->iov[i].iov_base + skip;
		req->iov[i].iov_len -= (size_t)skip;
	}
	*out = req->iov + i;
	return req->iovcnt - i;
}

void engine_complete(struct engine *e, struct engine_req *req, int64_t result,
		     engine_done_fn *cb, void *cookie)
{
	engine_iov_restore(req);
	struct engine_stats *s = &e->stats;
	s->requests++;
	if (result == -EOPNOTSUPP) {
		s->unsupported++;
	} else if (result < 0) {
		s->errors++;
		log_ratelimited(e->img->lg, &e->rl, e->img->name,
				"%s of %" PRIu64 " bytes at %" PRIu64 " on %s failed: %s",
				engine_op_name(req->op), req->len, req->offset,
				e->img->path, strerror((int)-result));
	} else {
		switch (req->op) {
		case ENGINE_OP_READ:
			s->reads++;
			s->bytes_read += (uint64_t)result;
			break;
		case ENGINE_OP_WRITE:
			s->writes++;
			s->bytes_written += (uint64_t)result;
			break;
		case ENGINE_OP_FLUSH:
			s->flushes++;
			break;
		case ENGINE_OP_DISCARD:
			s->discards++;
			break;
		case ENGINE_OP_WRITE_ZEROES:
			s->write_zeroes++;
			break;
		}
	}
	req->result = result;
	e->inflight--;
	cb(cookie, req);
}

void engine_kick(struct engine *e)
{
	uint64_t one = 1;
	ssize_t n = write(e->event_fd, &one, sizeof(one));
	(void)n; /* EAGAIN means the counter is saturated: already readable */
}

void engine_drain_event_fd(struct engine *e)
{
	uint64_t v;
	ssize_t n = read(e->event_fd, &v, sizeof(v));
	(void)n; /* EAGAIN: nothing pending */
}
