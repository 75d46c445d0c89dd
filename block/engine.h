/* I/O engines: asynchronous reads, writes, flushes, discards and
 * write-zeroes on one struct image, for virtio-blk.
 *
 * Two backends behind one ops table: io_uring (block/uring.c, liburing,
 * registered file, bounded io-wq workers) and a synchronous one
 * (block/sync.c: pread/pwritev/fdatasync/fallocate executed inside
 * engine_submit()). Both complete through engine_reap() on the event thread
 * and signal pending completions on engine_event_fd().
 *
 * Usage, all on the event thread that owns the engine and its image:
 *   for each request popped in one notification: engine_queue(e, req)
 *   engine_submit(e)                      -- sends what is still staged
 *   ... epoll says engine_event_fd(e) is readable ...
 *   engine_reap(e, done_cb, cookie)       -- done_cb once per finished request
 *
 * Guarantees: a request completes exactly once, with result == the bytes
 * asked for (0 for a flush) or -errno; a short transfer is continued, never
 * acknowledged as complete (a transfer that makes no progress is -EIO). A
 * flush (fdatasync) completes only once the data written before it was
 * queued is durable; the engine does not order requests otherwise, so the
 * caller queues a flush only after the writes it covers have completed (as
 * virtio-blk guests do). Requests beyond the ring's capacity wait in an
 * intrusive list inside the engine (no allocation, invisible to the caller)
 * and are submitted as earlier ones complete. */
#ifndef KVMRUN_ENGINE_H
#define KVMRUN_ENGINE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "block/image.h"
#include "block/overlay.h"
#include "lib/log.h"

enum engine_op {
	ENGINE_OP_READ,
	ENGINE_OP_WRITE,
	ENGINE_OP_FLUSH,
	ENGINE_OP_DISCARD,
	ENGINE_OP_WRITE_ZEROES,
};

/* Most iovec entries in one request (the kernel's UIO_MAXIOV). */
#define ENGINE_MAX_IOV 1024

/* One request, owned by the caller; it must stay alive and untouched from
 * engine_queue() until its completion callback. */
struct engine_req {
	/* Set by the caller. */
	enum engine_op op;
	uint64_t offset;         /* bytes into the image (ignored for FLUSH) */
	struct iovec *iov;       /* READ/WRITE only; entries are restored before
				  * completion, but one may be rewritten while
				  * the request is in flight */
	unsigned iovcnt;         /* 1..ENGINE_MAX_IOV for READ/WRITE */
	uint64_t len;            /* READ/WRITE: sum of iov lengths; DISCARD and
				  * WRITE_ZEROES: range length; FLUSH: 0 */
	void *cookie;            /* the caller's, untouched */

	/* Set by the engine before the completion callback. */
	int64_t result;          /* len (0 for FLUSH) or -errno */

	/* Engine-private. */
	struct {
		struct engine_req *next;
		uint64_t done;           /* bytes transferred so far */
		struct iovec iov_saved;  /* original of iov[iov_idx] */
		unsigned iov_idx;
		bool iov_modified;
		int mode;                /* fallocate mode in flight, 0 = write */
		unsigned retries;        /* -EAGAIN/-EINTR retries */
	} priv;
};

/* Counters, updated on the event thread. */
struct engine_stats {
	uint64_t requests;        /* completed through engine_reap(), ok or not */
	uint64_t reads, writes, flushes, discards, write_zeroes; /* completed ok */
	uint64_t bytes_read, bytes_written;
	uint64_t errors;          /* completed with an error other than
				   * -EOPNOTSUPP: the guest sees VIRTIO_BLK_S_IOERR */
	uint64_t unsupported;     /* completed with -EOPNOTSUPP (discard the file
				   * cannot do): VIRTIO_BLK_S_UNSUPP */
	uint64_t rejected;        /* refused by engine_queue() */
	uint64_t submit_calls;    /* submitting syscalls (io_uring_submit), or
				   * synchronous batches for the sync engine */
	uint64_t resubmits;       /* short transfers continued, retries */
	uint64_t overflowed;      /* requests that waited for ring space */
};

/* The backend to run; URING falls back to SYNC when io_uring cannot be
 * set up. */
enum disk_io { DISK_IO_URING, DISK_IO_SYNC };

/* SQ entries of an io_uring ring when engine_params.ring_size is 0. */
#define ENGINE_DEFAULT_RING_SIZE 256
/* engine_params.submit_batch: two by default (block/uring.c says why);
 * more than a ring holds would never be reached. */
#define ENGINE_DEFAULT_SUBMIT_BATCH 2
#define ENGINE_MAX_SUBMIT_BATCH ENGINE_DEFAULT_RING_SIZE

struct engine_params {
	enum disk_io io;                /* DISK_IO_URING falls back to sync when
					 * io_uring cannot be set up */
	unsigned ring_size;             /* SQ entries; 0 = ENGINE_DEFAULT_RING_SIZE.
					 * At most this
					 * many requests are in the kernel. */
	unsigned max_workers_bounded;   /* io-wq workers for file I/O; 0 = 4 */
	unsigned max_workers_unbounded; /* io-wq workers otherwise; 0 = 4 */
	unsigned submit_batch;          /* io_uring: engine_queue() submits as
					 * soon as this many requests are
					 * staged, without waiting for
					 * engine_submit(); 0 =
					 * ENGINE_DEFAULT_SUBMIT_BATCH. */
	struct overlay_params overlay;  /* kind OVERLAY_NONE: none. Otherwise
					 * the image must be read-only; the
					 * engine takes writes into the overlay
					 * (block/overlay.h). */
};

struct engine;

/* Called once per completed request, with req->result set. It may queue
 * and submit new requests; it must not destroy the engine. */
typedef void engine_done_fn(void *cookie, struct engine_req *req);

/* Creates an engine for @img (which must outlive it). With an overlay,
 * the engine runs over the read-only image and stores the guest's writes
 * (block/overlay.h); it fails (logged, naming the key) when the overlay
 * cannot be set up. With io=io_uring and
 * an io_uring that cannot be set up (disabled by kernel.io_uring_disabled,
 * a seccomp filter, RLIMIT_MEMLOCK, ...), falls back to the sync engine;
 * either way one log line says which engine runs and why. Returns 0 or
 * -errno (out of memory, no eventfd). */
__attribute__((warn_unused_result))
int engine_create(struct image *img, const struct engine_params *p,
		  struct engine **out);

/* Waits for the requests in the kernel to finish (their callbacks are not
 * called: the caller is tearing down), then frees everything. NULL is a
 * no-op. */
void engine_destroy(struct engine *e);

/* Stages @req. Returns 0 (it will complete through engine_reap()) or, with
 * nothing staged and the request untouched except result: -EINVAL for a
 * bad op, a range outside the image (overflow included), an empty
 * transfer, discard or write-zeroes, iov lengths that
 * do not sum to len or too many entries, or O_DIRECT misalignment (offset,
 * length, buffer address or segment length not a multiple of the image's
 * dio alignment); -EROFS for a write, discard or write-zeroes on a
 * read-only image; -EOPNOTSUPP for a discard the file cannot do. */
__attribute__((warn_unused_result))
int engine_queue(struct engine *e, struct engine_req *req);

/* Submits everything staged since the last call (io_uring: in groups of
 * engine_params.submit_batch, engine_queue() having sent the full groups
 * already). Returns 0, or -errno for a host failure (staged requests then
 * stay staged, and are retried on the next submit or reap; the event fd
 * is kicked so the retry happens). */
int engine_submit(struct engine *e);

/* Calls @cb(@cookie, req) for every request completed so far, and submits
 * what waited for ring space or needs continuing. Call it when the event fd
 * is readable (it drains the fd). Returns the number of callbacks made, or
 * -errno. */
int engine_reap(struct engine *e, engine_done_fn *cb, void *cookie);

/* Whether engine_reap() has work right now (completions to deliver, or
 * waiting requests that now fit), checked without a syscall: for a caller
 * that busy-polls between event-loop waits. False is not final: the event
 * fd still signals what comes later. */
bool engine_pending(const struct engine *e);

/* An eventfd (EFD_NONBLOCK) that becomes readable when completions are
 * pending. Owned by the engine. */
int engine_event_fd(const struct engine *e);

/* What the guest may do through @e: the image's own flags, or, with an
 * overlay, write, discard and write-zeroes on a read-only image. */
bool engine_readonly(const struct engine *e);
bool engine_can_discard(const struct engine *e);
bool engine_can_write_zeroes(const struct engine *e);

/* "io_uring", "sync" or "overlay". */
const char *engine_name(const struct engine *e);

/* Requests queued and not yet completed. */
unsigned engine_inflight(const struct engine *e);

void engine_get_stats(const struct engine *e, struct engine_stats *out);

#endif
