/* A line server on a Unix stream socket (see linesrv.h). */
#include "lib/linesrv.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/types.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

struct linesrv {
	const char *name;                /* borrowed: log speaker, key in messages */
	const char *peer;                /* borrowed: what another holder is called */
	struct evloop *loop;
	const struct logger *log;
	const struct linesrv_ops *ops;
	void *cookie;
	int listen_fd;
	char *path;                      /* NULL when not listening */
	dev_t sock_dev;                  /* identity of the socket file we made */
	ino_t sock_ino;
	char *lock_path;                 /* PATH.lock, held while lock_fd is open */
	int lock_fd;
	uid_t owner;                     /* effective uid that may connect (and root) */
	uint64_t idle_ns;                /* idle connections are closed after this */
	int idle_fd;                     /* timerfd checking for them, or -1 */
	bool idle_armed;
	struct linesrv_client *clients[LINESRV_MAX_CLIENTS];
};

struct linesrv_client {
	struct linesrv *s;
	int fd;
	uint32_t events;                 /* what the event loop watches */
	bool closing;                    /* hang up once the output is flushed */
	bool draining;                   /* hung up: discarding input until EOF */
	size_t drained;
	uint64_t last_ns;                /* when it last sent something (or connected) */
	size_t in_len, out_len;
	char in[LINESRV_MAX_LINE + 1];
	char out[LINESRV_OUT_MAX];
};

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ------------------------------------------------------------ connections */

/* The idle check runs while there are connections: every quarter of the
 * idle timeout. */
static void idle_arm(struct linesrv *s, bool on)
{
	if (s->idle_fd < 0 || s->idle_armed == on)
		return;
	struct itimerspec its = { 0 };
	if (on) {
		uint64_t period = s->idle_ns / 4 > 1000000 ? s->idle_ns / 4 : 1000000;
		its.it_value.tv_sec = (time_t)(period / 1000000000ull);
		its.it_value.tv_nsec = (long)(period % 1000000000ull);
		its.it_interval = its.it_value;
	}
	if (timerfd_settime(s->idle_fd, 0, &its, NULL) < 0)
		log_warn(s->log, s->name, "idle timer: timerfd_settime: %s", strerror(errno));
	else
		s->idle_armed = on;
}

static void client_close(struct linesrv_client *cl)
{
	struct linesrv *s = cl->s;
	for (unsigned i = 0; i < LINESRV_MAX_CLIENTS; i++)
		if (s->clients[i] == cl)
			s->clients[i] = NULL;
	evloop_del(s->loop, cl->fd);
	close(cl->fd);
	free(cl);
	if (linesrv_nr_clients(s) == 0)
		idle_arm(s, false);
}

/* Closes @cl with a last line it gets if its socket has room for it. */
static void client_close_saying(struct linesrv_client *cl, const char *line)
{
	ssize_t w = send(cl->fd, line, strlen(line), MSG_NOSIGNAL | MSG_DONTWAIT);
	(void)w; /* best effort: it is going either way */
	client_close(cl);
}

/* Writes what it can; false if the client is gone (closed here). */
static bool client_flush(struct linesrv_client *cl)
{
	size_t off = 0;
	while (off < cl->out_len) {
		ssize_t n = send(cl->fd, cl->out + off, cl->out_len - off, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) {
			client_close(cl);
			return false;
		}
		off += (size_t)n;
	}
	memmove(cl->out, cl->out + off, cl->out_len - off);
	cl->out_len -= off;
	if (cl->out_len == 0 && cl->closing && !cl->draining) {
		/* Closing with unread input would make the peer's kernel report
		 * ECONNRESET before it reads our error line: send EOF, then
		 * discard what it still sends until it closes too. */
		shutdown(cl->fd, SHUT_WR);
		cl->draining = true;
	}
	uint32_t want = ((cl->closing && !cl->draining) ? 0 : EPOLLIN) |
			(cl->out_len ? EPOLLOUT : 0);
	if (want != cl->events) {
		evloop_mod(cl->s->loop, cl->fd, want);
		cl->events = want;
	}
	return true;
}

/* Queues one response line; false if the client is gone. */
static bool client_reply(struct linesrv_client *cl, const char *line)
{
	size_t n = strlen(line);
	if (cl->out_len + n + 1 > sizeof(cl->out)) {
		log_info(cl->s->log, cl->s->name, "dropping a client that does not read its responses");
		client_close(cl);
		return false;
	}
	memcpy(cl->out + cl->out_len, line, n);
	cl->out[cl->out_len + n] = '\n';
	cl->out_len += n + 1;
	return client_flush(cl);
}

/* Handles every complete line in the input buffer; false if the client is gone. */
static bool client_lines(struct linesrv_client *cl)
{
	struct linesrv *s = cl->s;
	char resp[LINESRV_MAX_RESPONSE];
	size_t start = 0;
	for (;;) {
		char *nl = memchr(cl->in + start, '\n', cl->in_len - start);
		if (!nl)
			break;
		*nl = 0;
		size_t len = (size_t)(nl - (cl->in + start));
		bool nul = memchr(cl->in + start, 0, len) != NULL;
		if (len && cl->in[start + len - 1] == '\r')
			cl->in[start + len - 1] = 0;
		bool after = false;
		if (nul)
			snprintf(resp, sizeof(resp), "error NUL byte in the request");
		else
			after = s->ops->line(s->cookie, cl->in + start, resp, sizeof(resp));
		start += len + 1;
		if (!client_reply(cl, resp))
			return false;
		if (after && s->ops->after)
			s->ops->after(s->cookie);
	}
	memmove(cl->in, cl->in + start, cl->in_len - start);
	cl->in_len -= start;
	if (cl->in_len > LINESRV_MAX_LINE) {
		cl->in_len = 0;
		cl->closing = true;
		char resp2[64];
		snprintf(resp2, sizeof(resp2), "error line too long (at most %d bytes)",
			 LINESRV_MAX_LINE);
		return client_reply(cl, resp2);
	}
	return true;
}

static void on_client(void *cookie, uint32_t events)
{
	struct linesrv_client *cl = cookie;
	if ((events & EPOLLOUT) && !client_flush(cl))
		return;
	if (cl->draining) {
		char scratch[4096];
		for (;;) {
			ssize_t n = recv(cl->fd, scratch, sizeof(scratch), 0);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
				return;
			cl->drained += n > 0 ? (size_t)n : 0;
			if (n <= 0 || cl->drained > LINESRV_OUT_MAX * 16) {
				client_close(cl);
				return;
			}
		}
	}
	if (cl->closing)
		return;
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		for (;;) {
			size_t room = sizeof(cl->in) - cl->in_len;
			ssize_t n = recv(cl->fd, cl->in + cl->in_len, room, 0);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
				return;
			if (n <= 0) {
				/* EOF or error: flush what we can, then go */
				if (client_flush(cl))
					client_close(cl);
				return;
			}
			cl->last_ns = mono_ns();
			cl->in_len += (size_t)n;
			if (!client_lines(cl) || cl->closing)
				return;
		}
	}
}

static void on_idle(void *cookie, uint32_t events)
{
	struct linesrv *s = cookie;
	uint64_t n;
	if (read(s->idle_fd, &n, sizeof(n)) != sizeof(n))
		return;
	uint64_t now = mono_ns();
	for (unsigned i = 0; i < LINESRV_MAX_CLIENTS; i++) {
		struct linesrv_client *cl = s->clients[i];
		if (!cl || now - cl->last_ns < s->idle_ns)
			continue;
		log_info(s->log, s->name, "closing a connection idle for %llu ms",
			 (unsigned long long)((now - cl->last_ns) / 1000000));
		client_close_saying(cl, "error idle for too long: closing\n");
	}
}

/* Whether the peer of @fd may use this server: its process runs as our
 * effective uid, or as root. */
static int peer_check(struct linesrv *s, int fd)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0) {
		int e = errno;
		log_warn(s->log, s->name, "refused a connection: SO_PEERCRED: %s", strerror(e));
		return -e;
	}
	if (cr.uid == s->owner || cr.uid == 0)
		return 0;
	log_info(s->log, s->name, "refused a connection from pid %d: uid %u, not %u",
		 (int)cr.pid, (unsigned)cr.uid, (unsigned)s->owner);
	return -EACCES;
}

int linesrv_add_client(struct linesrv *s, int fd)
{
	int rc = peer_check(s, fd);
	if (rc < 0) {
		static const char msg[] = "error permission denied\n";
		ssize_t w = send(fd, msg, sizeof(msg) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
		(void)w;
		close(fd);
		return rc;
	}
	unsigned slot = LINESRV_MAX_CLIENTS, oldest = 0;
	for (unsigned i = 0; i < LINESRV_MAX_CLIENTS && slot == LINESRV_MAX_CLIENTS; i++) {
		if (!s->clients[i])
			slot = i;
		else if (s->clients[i]->last_ns < s->clients[oldest]->last_ns)
			oldest = i;
	}
	if (slot == LINESRV_MAX_CLIENTS) {
		/* keep a way in: the connection idle the longest makes room */
		log_info(s->log, s->name, "%u connections: closing the one idle the longest",
			 LINESRV_MAX_CLIENTS);
		client_close_saying(s->clients[oldest],
				    "error closed to make room for a new connection\n");
		slot = oldest;
	}
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	struct linesrv_client *cl = calloc(1, sizeof(*cl));
	if (!cl) {
		close(fd);
		return -ENOMEM;
	}
	cl->s = s;
	cl->fd = fd;
	cl->events = EPOLLIN;
	cl->last_ns = mono_ns();
	rc = evloop_add(s->loop, fd, EPOLLIN, on_client, cl);
	if (rc < 0) {
		close(fd);
		free(cl);
		return rc;
	}
	s->clients[slot] = cl;
	idle_arm(s, true);
	return 0;
}

unsigned linesrv_nr_clients(const struct linesrv *s)
{
	unsigned n = 0;
	for (unsigned i = 0; i < LINESRV_MAX_CLIENTS; i++)
		n += s->clients[i] != NULL;
	return n;
}

static void on_accept(void *cookie, uint32_t events)
{
	struct linesrv *s = cookie;
	for (;;) {
		int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				log_warn(s->log, s->name, "accept on %s: %s", s->path,
					 strerror(errno));
			return;
		}
		int rc = linesrv_add_client(s, fd);
		if (rc < 0 && rc != -EACCES)
			log_info(s->log, s->name, "refused a connection on %s: %s", s->path,
				 strerror(-rc));
	}
}

/* ------------------------------------------------------------ listening */

/* Whether something accepts connections on the socket at @sa. */
static bool socket_alive(const struct sockaddr_un *sa)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return true; /* cannot tell: do not remove it */
	int rc = connect(fd, (const struct sockaddr *)sa, sizeof(*sa));
	int e = errno;
	close(fd);
	return rc == 0 || e != ECONNREFUSED;
}

/* Takes PATH.lock: an exclusive flock held for the server's life, on a
 * file that is still the one at that path once locked (a previous holder
 * may have removed it while we waited to open it). */
static int linesrv_lock(struct linesrv *s, const char *path)
{
	size_t n = strlen(path);
	s->lock_path = malloc(n + sizeof(".lock"));
	if (!s->lock_path)
		return -ENOMEM;
	memcpy(s->lock_path, path, n);
	memcpy(s->lock_path + n, ".lock", sizeof(".lock"));
	for (int tries = 0; tries < 16; tries++) {
		int fd = open(s->lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY |
				  O_NONBLOCK, 0600);
		if (fd < 0) {
			int e = errno;
			log_err(s->log, s->name, "%s=%s: %s: %s", s->name, path, s->lock_path,
				e == ELOOP ? "is a symbolic link" : strerror(e));
			return -e;
		}
		struct stat held, now;
		if (fstat(fd, &held) < 0 || !S_ISREG(held.st_mode)) {
			log_err(s->log, s->name, "%s=%s: %s is not a regular file", s->name, path,
				s->lock_path);
			close(fd);
			return -EEXIST;
		}
		if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
			int e = errno;
			close(fd);
			if (e == EWOULDBLOCK) {
				log_err(s->log, s->name, "%s=%s: another %s is using it "
					"(it holds %s)", s->name, path, s->peer, s->lock_path);
				return -EADDRINUSE;
			}
			log_err(s->log, s->name, "%s=%s: locking %s: %s", s->name, path,
				s->lock_path, strerror(e));
			return -e;
		}
		if (lstat(s->lock_path, &now) == 0 && now.st_dev == held.st_dev &&
		    now.st_ino == held.st_ino) {
			s->lock_fd = fd;
			return 0;
		}
		close(fd); /* removed by the holder we waited for: take the new one */
	}
	log_err(s->log, s->name, "%s=%s: %s keeps being replaced", s->name, path, s->lock_path);
	return -EAGAIN;
}

static int linesrv_listen(struct linesrv *s, const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path)) {
		log_err(s->log, s->name, "%s=%s: a socket path is at most %zu bytes", s->name, path,
			sizeof(sa.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	s->path = strdup(path);
	if (!s->path)
		return -ENOMEM;
	/* Only the holder of the lock touches the socket file, so a socket
	 * another server has bound but is not yet listening on is never taken
	 * for a stale one. */
	int rc = linesrv_lock(s, path);
	if (rc < 0)
		return rc;
	s->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (s->listen_fd < 0) {
		int e = errno;
		log_err(s->log, s->name, "%s=%s: socket: %s", s->name, path, strerror(e));
		return -e;
	}
	/* A request may do anything (stop a VM): only the owner may connect.
	 * The mode is the socket's before bind() creates the file (less the umask),
	 * so there is no moment where it is more open, and no chmod by a
	 * path that could have become a symbolic link. */
	if (fchmod(s->listen_fd, 0600) < 0) {
		int e = errno;
		log_err(s->log, s->name, "%s=%s: fchmod of the socket: %s", s->name, path, strerror(e));
		return -e;
	}
	rc = bind(s->listen_fd, (struct sockaddr *)&sa, sizeof(sa));
	if (rc < 0 && errno == EADDRINUSE) {
		struct stat st;
		if (lstat(path, &st) == 0 && !S_ISSOCK(st.st_mode)) {
			log_err(s->log, s->name, "%s=%s: the path exists and is not a socket",
				s->name, path);
			return -EEXIST;
		}
		if (socket_alive(&sa)) {
			log_err(s->log, s->name, "%s=%s: another process is listening on it",
				s->name, path);
			return -EADDRINUSE;
		}
		log_info(s->log, s->name, "%s=%s: replacing a stale socket", s->name, path);
		if (unlink(path) < 0 && errno != ENOENT) {
			int e = errno;
			log_err(s->log, s->name, "%s=%s: removing the stale socket: %s", s->name, path,
				strerror(e));
			return -e;
		}
		rc = bind(s->listen_fd, (struct sockaddr *)&sa, sizeof(sa));
	}
	if (rc < 0) {
		int e = errno;
		log_err(s->log, s->name, "%s=%s: bind: %s", s->name, path, strerror(e));
		return -e;
	}
	struct stat st;
	const char *what = "lstat";
	rc = lstat(path, &st);
	if (rc == 0) {
		s->sock_dev = st.st_dev;
		s->sock_ino = st.st_ino;
		what = "listen";
		rc = listen(s->listen_fd, LINESRV_MAX_CLIENTS);
	}
	if (rc < 0) {
		int e = errno;
		log_err(s->log, s->name, "%s=%s: %s: %s", s->name, s->path, what, strerror(e));
		return -e;
	}
	rc = evloop_add(s->loop, s->listen_fd, EPOLLIN, on_accept, s);
	if (rc < 0)
		log_err(s->log, s->name, "%s=%s: watching the socket: %s", s->name, path,
			strerror(-rc));
	return rc;
}

int linesrv_create(const struct linesrv_params *p, struct linesrv **out)
{
	*out = NULL;
	if (!p->loop || !p->ops || !p->ops->line || !p->name || !p->peer)
		return -EINVAL;
	struct linesrv *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->name = p->name;
	s->peer = p->peer;
	s->loop = p->loop;
	s->log = p->log;
	s->ops = p->ops;
	s->cookie = p->cookie;
	s->listen_fd = s->lock_fd = s->idle_fd = -1;
	s->owner = geteuid();
	s->idle_ns = (uint64_t)(p->idle_timeout_ms ? p->idle_timeout_ms : LINESRV_IDLE_TIMEOUT_MS) *
		     1000000ull;
	s->idle_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	int rc = s->idle_fd < 0 ? -errno : evloop_add(s->loop, s->idle_fd, EPOLLIN, on_idle, s);
	if (rc < 0) {
		log_err(s->log, s->name, "idle timer: %s", strerror(-rc));
		if (s->idle_fd >= 0)
			close(s->idle_fd);
		s->idle_fd = -1;
		linesrv_destroy(s);
		return rc;
	}
	if (p->path) {
		rc = linesrv_listen(s, p->path);
		if (rc < 0) {
			linesrv_destroy(s);
			return rc;
		}
	}
	*out = s;
	return 0;
}

void linesrv_destroy(struct linesrv *s)
{
	if (!s)
		return;
	for (unsigned i = 0; i < LINESRV_MAX_CLIENTS; i++)
		if (s->clients[i])
			client_close(s->clients[i]);
	if (s->listen_fd >= 0) {
		evloop_del(s->loop, s->listen_fd);
		close(s->listen_fd);
	}
	struct stat st;
	if (s->path && s->sock_ino && lstat(s->path, &st) == 0 && st.st_dev == s->sock_dev &&
	    st.st_ino == s->sock_ino)
		unlink(s->path);
	if (s->lock_fd >= 0) {
		/* still holding it: whoever waits re-checks the path once locked */
		unlink(s->lock_path);
		close(s->lock_fd);
	}
	if (s->idle_fd >= 0) {
		evloop_del(s->loop, s->idle_fd);
		close(s->idle_fd);
	}
	free(s->lock_path);
	free(s->path);
	free(s);
}
