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
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "mem/ram_stats.h"
#include "vmm/config.h"
#include "vmm/control_priv.h"
#include "vmm/exitcode.h"
#include "vmm/vm_priv.h"

_Static_assert(CONTROL_MAX_NODES == RAM_STATS_MAX_NODES, "control_mem holds ram_stats' nodes");

struct control_client {
	struct control *c;
	int fd;
	uint32_t events;                 /* what the event loop watches */
	bool closing;                    /* hang up once the output is flushed */
	bool draining;                   /* hung up: discarding input until EOF */
	size_t drained;
	size_t in_len, out_len;
	char in[CONTROL_MAX_LINE + 1];
	char out[CONTROL_OUT_MAX];
};

void control_execute(struct control *c, const char *line, char *resp, size_t resp_len)
{
	if (control_cmds_run(c, line, resp, resp_len) && c->ops->stop)
		c->ops->stop(c->cookie);
}

/* ------------------------------------------------------------ connections */

static void client_close(struct control_client *cl)
{
	struct control *c = cl->c;
	for (unsigned i = 0; i < CONTROL_MAX_CLIENTS; i++)
		if (c->clients[i] == cl)
			c->clients[i] = NULL;
	evloop_del(c->loop, cl->fd);
	close(cl->fd);
	free(cl);
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
			cl->in_len += (size_t)n;
			if (!client_lines(cl) || cl->closing)
				return;
		}
	}
}

int control_add_client(struct control *c, int fd)
{
	unsigned slot = CONTROL_MAX_CLIENTS;
	for (unsigned i = 0; i < CONTROL_MAX_CLIENTS && slot == CONTROL_MAX_CLIENTS; i++)
		if (!c->clients[i])
			slot = i;
	if (slot == CONTROL_MAX_CLIENTS) {
		static const char msg[] = "error too many clients\n";
		ssize_t w = send(fd, msg, sizeof(msg) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
		(void)w;
		close(fd);
		return -EMFILE;
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
	int rc = evloop_add(c->loop, fd, EPOLLIN, on_client, cl);
	if (rc < 0) {
		close(fd);
		free(cl);
		return rc;
	}
	c->clients[slot] = cl;
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
		if (rc < 0)
			log_info(c->log, "control", "refused a connection on %s: %s", c->path,
				 rc == -EMFILE ? "too many clients" : strerror(-rc));
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
	c->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (c->listen_fd < 0) {
		int e = errno;
		log_err(c->log, "control", "control=%s: socket: %s", path, strerror(e));
		return -e;
	}
	int rc = bind(c->listen_fd, (struct sockaddr *)&sa, sizeof(sa));
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
	/* The socket can stop the VM: only its owner may connect. */
	struct stat st;
	const char *what = "chmod";
	rc = chmod(path, 0600);
	if (rc == 0) {
		what = "stat";
		rc = stat(path, &st);
	}
	if (rc == 0) {
		what = "listen";
		rc = listen(c->listen_fd, CONTROL_MAX_CLIENTS);
	}
	if (rc < 0) {
		int e = errno;
		log_err(c->log, "control", "control=%s: %s: %s", c->path, what, strerror(e));
		unlink(path);
		return -e;
	}
	c->sock_dev = st.st_dev;
	c->sock_ino = st.st_ino;
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
	c->listen_fd = -1;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	c->created_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	if (p->path) {
		int rc = control_listen(c, p->path);
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
	if (c->path && lstat(c->path, &st) == 0 && st.st_dev == c->sock_dev &&
	    st.st_ino == c->sock_ino)
		unlink(c->path);
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
