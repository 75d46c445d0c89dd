/* A line server: a Unix stream socket on an event loop where each request
 * line gets one response line, in order. What the lines mean is the
 * caller's (vmm/control.c serves the control protocol on it).
 *
 * Framing: a line is at most LINESRV_MAX_LINE bytes before its '\n'
 * ('\r\n' is accepted). The server answers some lines itself, with lines
 * starting "error ": a line holding a NUL byte is answered "error NUL byte
 * in the request"; a line longer than LINESRV_MAX_LINE is answered "error
 * line too long" and the connection is closed.
 *
 * Robustness: sockets are non-blocking and everything runs on the event
 * loop; a client whose unread responses pass LINESRV_OUT_MAX bytes is
 * dropped; a connection idle (nothing received) for the idle timeout
 * (LINESRV_IDLE_TIMEOUT_MS by default) is closed; at most
 * LINESRV_MAX_CLIENTS connections at once, and when a new one arrives with
 * every slot taken, the connection idle the longest is closed to make room
 * for it, so scripts that leave connections open never lock a client out.
 *
 * Access: the socket is made mode 0600 before it is bound (fchmod on the
 * socket, so no window and no path that could be a symbolic link), and a
 * connection is served only if SO_PEERCRED says its process runs as this
 * one's effective uid, or as root; others get "error permission denied".
 * Both hold even when the socket's directory is more open than it should.
 *
 * The path: while it runs, a server holds an exclusive flock(2) on
 * PATH.lock (created 0600, not through a symbolic link, removed at the
 * end). A socket file at PATH is replaced only by the holder of that lock
 * and only if nothing accepts connections on it, so two servers starting
 * on the same path cannot both take it, nor one remove the other's socket
 * between its bind() and its listen().
 *
 * Threads: the event loop's thread only (create, destroy, every callback). */
#ifndef KVMRUN_LINESRV_H
#define KVMRUN_LINESRV_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/evloop.h"
#include "lib/log.h"

#define LINESRV_MAX_LINE 4096
#define LINESRV_MAX_RESPONSE (60 * 1024) /* `metrics` of a 64-vCPU VM */
#define LINESRV_MAX_CLIENTS 16
#define LINESRV_IDLE_TIMEOUT_MS 60000
#define LINESRV_OUT_MAX (64 * 1024)

struct linesrv;

/* What the server does with a line; both run on the event loop's thread. */
struct linesrv_ops {
	/* Answers one request line (no '\n', no NUL) with one response line
	 * (no '\n') in @resp. Returns true to have after() called once the
	 * response is queued for the client. Required. */
	bool (*line)(void *cookie, const char *line, char *resp, size_t resp_len);
	/* Optional. */
	void (*after)(void *cookie);
};

struct linesrv_params {
	const char *name;      /* log speaker and config key in messages
				* ("control": "control=PATH: bind: ...") */
	const char *peer;      /* what another server on the path is, in messages
				* ("VM": "another VM is using it") */
	const char *path;      /* socket to listen on; NULL: clients only by
				* linesrv_add_client() */
	struct evloop *loop;
	const struct logger *log;
	const struct linesrv_ops *ops;
	void *cookie;
	unsigned idle_timeout_ms;   /* 0: LINESRV_IDLE_TIMEOUT_MS */
};

/* Listens on @p->path (a stale socket file there, one nobody listens on,
 * is replaced; anything else is an error naming the path) with mode 0600,
 * holding PATH.lock (see above). @p's strings other than path are
 * borrowed and must outlive the server. Returns 0 or -errno (logged):
 * -EADDRINUSE when another server has the path. */
__attribute__((warn_unused_result))
int linesrv_create(const struct linesrv_params *p, struct linesrv **out);

/* Closes every connection and the socket, and unlinks the path if it is
 * still the socket this server made, and the lock file. NULL: no-op. */
void linesrv_destroy(struct linesrv *s);

/* Serves one more connection on @fd (made non-blocking; owned from now on,
 * closed even on failure), closing the longest-idle one first when
 * LINESRV_MAX_CLIENTS are connected. 0, -EACCES (answered "error permission
 * denied") when its peer runs as another user (SO_PEERCRED), or -errno. */
__attribute__((warn_unused_result))
int linesrv_add_client(struct linesrv *s, int fd);

/* Connections currently served. */
unsigned linesrv_nr_clients(const struct linesrv *s);

#endif
