/* The control socket server (see control.h): a listening Unix socket and
 * its connections on the VM's event loop, split into request lines for
 * control_cmds.c, and the VM side of the hooks (guest RAM facts from
 * mem/ram_stats.c). */
#include "vmm/control.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "mem/ram_stats.h"
#include "vmm/config.h"
#include "vmm/control_priv.h"
#include "lib/exitcode.h"
#include "vmm/vm_priv.h"

_Static_assert(CONTROL_MAX_NODES == RAM_STATS_MAX_NODES, "control_mem holds ram_stats' nodes");

struct control_client {
	struct control *c;
	int fd;
	uint32_t events;                 /* what the event loop watches */
	bool closing;                    /* hang up once the output is flushed */
	bool draining;                   /* hung up: discarding input until EOF */
	size_t drained;
	uint64_t last_ns;                /* when it last sent something (or connected) */
	size_t in_len, out_len;
	char in[CONTROL_MAX_LINE + 1];
	char out[CONTROL_OUT_MAX];
};

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void control_execute(struct control *c, const char *line, char *resp, size_t resp_len)
{
	if (control_cmds_run(c, line, resp, resp_len) && c->ops->stop)
		c->ops->stop(c->cookie);
}

/* ------------------------------------------------------------ connections */

/* The idle check runs while there are connections: every quarter of the
 * idle timeout. */
static void idle_arm(struct control *c, bool on)
{
	if (c->idle_fd < 0 || c->idle_armed == on)
		return;
	struct itimerspec its = { 0 };
	if (on) {
		uint64_t period = c->idle_ns / 4 > 1000000 ? c->idle_ns / 4 : 1000000;
		its.it_value.tv_sec = (time_t)(period / 1000000000ull);
		its.it_value.tv_nsec = (long)(period % 1000000000ull);
		its.it_interval = its.it_value;
	}
	if (timerfd_settime(c->idle_fd, 0, &its, NULL) < 0)
		log_warn(c->log, "control", "idle timer: timerfd_settime: %s", strerror(errno));
	else
		c->idle_armed = on;
}

static void client_close(struct control_client *cl)
{
	struct control *c = cl->c;
	for (unsigned i = 0; i < CONTROL_MAX_CLIENTS; i++)
		if (c->clients[i] == cl)
			c->clients[i] = NULL;
	evloop_del(c->loop, cl->fd);
	close(cl->fd);
	free(cl);
	if (control_nr_clients(c) == 0)
		idle_arm(c, false);
}

/* Closes @cl with a last line it gets if its socket has room for it. */
static void client_close_saying(struct control_client *cl, const char *line)
{
	ssize_t w = send(cl->fd, line, strlen(line), MSG_NOSIGNAL | MSG_DONTWAIT);
	(void)w; /* best effort: it is going either way */
	client_close(cl);
}

/* Writes what it can; false if the client is gone (closed here). */
static bool client_flush(struct control_client *cl)
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
		evloop_mod(cl->c->loop, cl->fd, want);
		cl->events = want;
	}
	return true;
}

/* Queues one response line; false if the client is gone. */
static bool client_reply(struct control_client *cl, const char *line)
{
	size_t n = strlen(line);
	if (cl->out_len + n + 1 > sizeof(cl->out)) {
		log_info(cl->c->log, "control", "dropping a client that does not read its responses");
		client_close(cl);
		return false;
	}
	memcpy(cl->out + cl->out_len, line, n);
	cl->out[cl->out_len + n] = '\n';
	cl->out_len += n + 1;
	return client_flush(cl);
}

/* Handles every complete line in the input buffer; false if the client is gone. */
static bool client_lines(struct control_client *cl)
{
	char resp[CONTROL_MAX_RESPONSE];
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
		bool stop = false;
		if (nul)
			snprintf(resp, sizeof(resp), "error NUL byte in the request");
		else
			stop = control_cmds_run(cl->c, cl->in + start, resp, sizeof(resp));
		start += len + 1;
		struct control *c = cl->c;
		if (!client_reply(cl, resp))
			return false;
		if (stop && c->ops->stop)
			c->ops->stop(c->cookie);
	}
	memmove(cl->in, cl->in + start, cl->in_len - start);
	cl->in_len -= start;
	if (cl->in_len > CONTROL_MAX_LINE) {
		cl->in_len = 0;
		cl->closing = true;
		char resp2[64];
		snprintf(resp2, sizeof(resp2), "error line too long (at most %d bytes)",
			 CONTROL_MAX_LINE);
		return client_reply(cl, resp2);
	}
	return true;
}

static void on_client(void *cookie, uint32_t events)
{
	struct control_client *cl = cookie;
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
			if (n <= 0 || cl->drained > CONTROL_OUT_MAX * 16) {
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
	struct control *c = cookie;
	uint64_t n;
	if (read(c->idle_fd, &n, sizeof(n)) != sizeof(n))
		return;
	uint64_t now = mono_ns();
	for (unsigned i = 0; i < CONTROL_MAX_CLIENTS; i++) {
		struct control_client *cl = c->clients[i];
		if (!cl || now - cl->last_ns < c->idle_ns)
			continue;
		log_info(c->log, "control", "closing a connection idle for %llu ms",
			 (unsigned long long)((now - cl->last_ns) / 1000000));
		client_close_saying(cl, "error idle for too long: closing\n");
	}
}

/* Whether the peer of @fd may use this server: its process runs as our
 * effective uid, or as root. */
static int peer_check(struct control *c, int fd)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0) {
		int e = errno;
		log_warn(c->log, "control", "refused a connection: SO_PEERCRED: %s", strerror(e));
		return -e;
	}
	if (cr.uid == c->owner || cr.uid == 0)
		return 0;
	log_info(c->log, "control", "refused a connection from pid %d: uid %u, not %u",
		 (int)cr.pid, (unsigned)cr.uid, (unsigned)c->owner);
	return -EACCES;
}

int control_add_client(struct control *c, int fd)
{
	int rc = peer_check(c, fd);
	if (rc < 0) {
		static const char msg[] = "error permission denied\n";
		ssize_t w = send(fd, msg, sizeof(msg) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
		(void)w;
		close(fd);
		return rc;
	}
	unsigned slot = CONTROL_MAX_CLIENTS, oldest = 0;
	for (unsigned i = 0; i < CONTROL_MAX_CLIENTS && slot == CONTROL_MAX_CLIENTS; i++) {
		if (!c->clients[i])
			slot = i;
		else if (c->clients[i]->last_ns < c->clients[oldest]->last_ns)
			oldest = i;
	}
	if (slot == CONTROL_MAX_CLIENTS) {
		/* keep a way in: the connection idle the longest makes room */
		log_info(c->log, "control", "%u connections: closing the one idle the longest",
			 CONTROL_MAX_CLIENTS);
		client_close_saying(c->clients[oldest],
				    "error closed to make room for a new connection\n");
		slot = oldest;
	}
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	struct control_client *cl = calloc(1, sizeof(*cl));
	if (!cl) {
		close(fd);
		return -ENOMEM;
	}
	cl->c = c;
	cl->fd = fd;
	cl->events = EPOLLIN;
	cl->last_ns = mono_ns();
	rc = evloop_add(c->loop, fd, EPOLLIN, on_client, cl);
	if (rc < 0) {
		close(fd);
		free(cl);
		return rc;
	}
	c->clients[slot] = cl;
	idle_arm(c, true);
	return 0;
}

unsigned control_nr_clients(const struct control *c)
{
	unsigned n = 0;
	for (unsigned i = 0; i < CONTROL_MAX_CLIENTS; i++)
		n += c->clients[i] != NULL;
	return n;
}

static void on_accept(void *cookie, uint32_t events)
{
	struct control *c = cookie;
	for (;;) {
		int fd = accept4(c->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				log_warn(c->log, "control", "accept on %s: %s", c->path,
					 strerror(errno));
			return;
		}
		int rc = control_add_client(c, fd);
		if (rc < 0 && rc != -EACCES)
			log_info(c->log, "control", "refused a connection on %s: %s", c->path,
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
static int control_lock(struct control *c, const char *path)
{
	size_t n = strlen(path);
	c->lock_path = malloc(n + sizeof(".lock"));
	if (!c->lock_path)
		return -ENOMEM;
	memcpy(c->lock_path, path, n);
	memcpy(c->lock_path + n, ".lock", sizeof(".lock"));
	for (int tries = 0; tries < 16; tries++) {
		int fd = open(c->lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY |
				  O_NONBLOCK, 0600);
		if (fd < 0) {
			int e = errno;
			log_err(c->log, "control", "control=%s: %s: %s", path, c->lock_path,
				e == ELOOP ? "is a symbolic link" : strerror(e));
			return -e;
		}
		struct stat held, now;
		if (fstat(fd, &held) < 0 || !S_ISREG(held.st_mode)) {
			log_err(c->log, "control", "control=%s: %s is not a regular file", path,
				c->lock_path);
			close(fd);
			return -EEXIST;
		}
		if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
			int e = errno;
			close(fd);
			if (e == EWOULDBLOCK) {
				log_err(c->log, "control", "control=%s: another VM is using it "
					"(it holds %s)", path, c->lock_path);
				return -EADDRINUSE;
			}
			log_err(c->log, "control", "control=%s: locking %s: %s", path,
				c->lock_path, strerror(e));
			return -e;
		}
		if (lstat(c->lock_path, &now) == 0 && now.st_dev == held.st_dev &&
		    now.st_ino == held.st_ino) {
			c->lock_fd = fd;
			return 0;
		}
		close(fd); /* removed by the holder we waited for: take the new one */
	}
	log_err(c->log, "control", "control=%s: %s keeps being replaced", path, c->lock_path);
	return -EAGAIN;
}

static int control_listen(struct control *c, const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path)) {
		log_err(c->log, "control", "control=%s: a socket path is at most %zu bytes", path,
			sizeof(sa.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	c->path = strdup(path);
	if (!c->path)
		return -ENOMEM;
	/* Only the holder of the lock touches the socket file, so a socket
	 * another VM has bound but is not yet listening on is never taken
	 * for a stale one. */
	int rc = control_lock(c, path);
	if (rc < 0)
		return rc;
	c->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (c->listen_fd < 0) {
		int e = errno;
		log_err(c->log, "control", "control=%s: socket: %s", path, strerror(e));
		return -e;
	}
	/* The socket can stop the VM: only its owner may connect. The mode
	 * is the socket's before bind() creates the file (less the umask),
	 * so there is no moment where it is more open, and no chmod by a
	 * path that could have become a symbolic link. */
	if (fchmod(c->listen_fd, 0600) < 0) {
		int e = errno;
		log_err(c->log, "control", "control=%s: fchmod of the socket: %s", path, strerror(e));
		return -e;
	}
	rc = bind(c->listen_fd, (struct sockaddr *)&sa, sizeof(sa));
	if (rc < 0 && errno == EADDRINUSE) {
		struct stat st;
		if (lstat(path, &st) == 0 && !S_ISSOCK(st.st_mode)) {
			log_err(c->log, "control", "control=%s: the path exists and is not a socket",
				path);
			return -EEXIST;
		}
		if (socket_alive(&sa)) {
			log_err(c->log, "control", "control=%s: another process is listening on it",
				path);
			return -EADDRINUSE;
		}
		log_info(c->log, "control", "control=%s: replacing a stale socket", path);
		if (unlink(path) < 0 && errno != ENOENT) {
			int e = errno;
			log_err(c->log, "control", "control=%s: removing the stale socket: %s", path,
				strerror(e));
			return -e;
		}
		rc = bind(c->listen_fd, (struct sockaddr *)&sa, sizeof(sa));
	}
	if (rc < 0) {
		int e = errno;
		log_err(c->log, "control", "control=%s: bind: %s", path, strerror(e));
		return -e;
	}
	struct stat st;
	const char *what = "lstat";
	rc = lstat(path, &st);
	if (rc == 0) {
		c->sock_dev = st.st_dev;
		c->sock_ino = st.st_ino;
		what = "listen";
		rc = listen(c->listen_fd, CONTROL_MAX_CLIENTS);
	}
	if (rc < 0) {
		int e = errno;
		log_err(c->log, "control", "control=%s: %s: %s", c->path, what, strerror(e));
		return -e;
	}
	rc = evloop_add(c->loop, c->listen_fd, EPOLLIN, on_accept, c);
	if (rc < 0)
		log_err(c->log, "control", "control=%s: watching the socket: %s", path,
			strerror(-rc));
	return rc;
}

int control_create(const struct control_params *p, struct control **out)
{
	*out = NULL;
	if (!p->loop || !p->ops)
		return -EINVAL;
	struct control *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->loop = p->loop;
	c->log = p->log;
	c->ops = p->ops;
	c->cookie = p->cookie;
	c->listen_fd = c->lock_fd = c->idle_fd = -1;
	c->owner = geteuid();
	c->idle_ns = (uint64_t)(p->idle_timeout_ms ? p->idle_timeout_ms : CONTROL_IDLE_TIMEOUT_MS) *
		     1000000ull;
	c->created_ns = mono_ns();
	c->idle_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	int rc = c->idle_fd < 0 ? -errno : evloop_add(c->loop, c->idle_fd, EPOLLIN, on_idle, c);
	if (rc < 0) {
		log_err(c->log, "control", "idle timer: %s", strerror(-rc));
		if (c->idle_fd >= 0)
			close(c->idle_fd);
		c->idle_fd = -1;
		control_destroy(c);
		return rc;
	}
	if (p->path) {
		rc = control_listen(c, p->path);
		if (rc < 0) {
			control_destroy(c);
			return rc;
		}
	}
	*out = c;
	return 0;
}

void control_destroy(struct control *c)
{
	if (!c)
		return;
	for (unsigned i = 0; i < CONTROL_MAX_CLIENTS; i++)
		if (c->clients[i])
			client_close(c->clients[i]);
	if (c->listen_fd >= 0) {
		evloop_del(c->loop, c->listen_fd);
		close(c->listen_fd);
	}
	struct stat st;
	if (c->path && c->sock_ino && lstat(c->path, &st) == 0 && st.st_dev == c->sock_dev &&
	    st.st_ino == c->sock_ino)
		unlink(c->path);
	if (c->lock_fd >= 0) {
		/* still holding it: whoever waits re-checks the path once locked */
		unlink(c->lock_path);
		close(c->lock_fd);
	}
	if (c->idle_fd >= 0) {
		evloop_del(c->loop, c->idle_fd);
		close(c->idle_fd);
	}
	free(c->lock_path);
	free(c->path);
	free(c);
}

/* ------------------------------------------------------------ guest RAM */

/* The smaps part of @s into @m. */
static void mem_set_smaps(struct control_mem *m, const struct ram_stats *s)
{
	m->rss = s->rss;
	m->hugetlb = s->hugetlb;
	m->thp = s->thp;
	m->swap = s->swap;
}

/* The numa_maps part of @s into @m. */
static void mem_set_numa(struct control_mem *m, const struct ram_stats *s)
{
	memcpy(m->numa_policy, s->numa_policy, sizeof(m->numa_policy));
	memcpy(m->node_pages, s->node_pages, sizeof(m->node_pages));
}

/* ram_stats_scan_smaps() into a control_mem. */
int control_scan_smaps(FILE *f, uint64_t start, uint64_t end, struct control_mem *out)
{
	struct ram_stats s = { 0 };
	int rc = ram_stats_scan_smaps(f, start, end, &s);
	if (rc == 0)
		mem_set_smaps(out, &s);
	return rc;
}

/* ram_stats_scan_numa_maps() into a control_mem, adding to its counts. */
int control_scan_numa_maps(FILE *f, uint64_t start, uint64_t end, struct control_mem *out)
{
	struct ram_stats s = { 0 };
	memcpy(s.numa_policy, out->numa_policy, sizeof(s.numa_policy));
	memcpy(s.node_pages, out->node_pages, sizeof(s.node_pages));
	int rc = ram_stats_scan_numa_maps(f, start, end, &s);
	if (rc == 0)
		mem_set_numa(out, &s);
	return rc;
}

/* ------------------------------------------------------------ the VM's hooks */

static void vm_hook_vm(void *cookie, struct control_vm *out)
{
	struct vm *vm = cookie;
	out->state = atomic_load(&vm->exit_code) != -1 ? "stopping" :
		     vm->running ? "running" : "starting";
	out->name = vm->cfg->name;
	out->cpus = vm->cfg->cpus;
	out->mem = vm->cfg->mem;
	out->transport = vm->cfg->transport == TRANSPORT_MMIO ? "mmio" : "pci";
}

static int vm_hook_memory(void *cookie, struct control_mem *out)
{
	struct vm *vm = cookie;
	struct ram_stats s;
	out->ram = vm->ram.size;
	out->page_size = vm->ram.page_size;
	out->merge = vm->cfg->mem_merge;
	int rc = ram_stats_read(vm->ram.base, vm->ram.size, &s);
	out->ksm_merging_pages = s.ksm_merging_pages;
	mem_set_smaps(out, &s);
	mem_set_numa(out, &s);
	return rc;
}

static bool vm_hook_balloon_get(void *cookie, struct virtio_balloon_info *out)
{
	struct vm *vm = cookie;
	if (!vm->balloon)
		return false;
	virtio_balloon_get(vm->balloon, out);
	return true;
}

static int vm_hook_balloon_set(void *cookie, uint64_t bytes)
{
	struct vm *vm = cookie;
	if (!vm->balloon)
		return -ENODEV;
	int rc = virtio_balloon_set_target(vm->balloon, bytes);
	if (rc == 0)
		log_info(&vm->log, "control", "balloon target %" PRIu64 " MiB", bytes >> 20);
	return rc;
}

static void vm_hook_stop(void *cookie)
{
	vm_request_exit(cookie, EXIT_GUEST_POWEROFF, "stop on the control socket");
}

static const struct control_ops vm_control_ops = {
	.vm = vm_hook_vm,
	.memory = vm_hook_memory,
	.balloon_get = vm_hook_balloon_get,
	.balloon_set = vm_hook_balloon_set,
	.stop = vm_hook_stop,
};

int control_start(struct vm *vm)
{
	if (!vm->cfg->control)
		return 0;
	struct control_params p = {
		.path = vm->cfg->control, .loop = vm->loop, .log = &vm->log,
		.ops = &vm_control_ops, .cookie = vm,
	};
	int rc = control_create(&p, &vm->control);
	if (rc == 0)
		log_info(&vm->log, "control", "listening on %s", vm->cfg->control);
	return rc;
}

void control_stop(struct vm *vm)
{
	control_destroy(vm->control);
	vm->control = NULL;
}
