/* The control socket server (see control.h): a listening Unix socket and
 * its connections on the VM's event loop, the request parser and command
 * table, and the VM side of the hooks (memory visibility from /proc). */
#include "vmm/control.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "vmm/config.h"
#include "vmm/exitcode.h"
#include "vmm/vm_priv.h"

#define CONTROL_MAX_ARGS 8

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

struct control {
	struct evloop *loop;
	const struct logger *log;
	const struct control_ops *ops;
	void *cookie;
	int listen_fd;
	char *path;                      /* NULL when not listening */
	dev_t sock_dev;                  /* identity of the socket file we made */
	ino_t sock_ino;
	uint64_t created_ns;
	struct control_client *clients[CONTROL_MAX_CLIENTS];
};

/* ------------------------------------------------------------ responses */

struct resp {
	char *buf;
	size_t len, used;
	bool error;
};

__attribute__((format(printf, 2, 3)))
static void resp_add(struct resp *r, const char *fmt, ...)
{
	if (r->used >= r->len)
		return;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(r->buf + r->used, r->len - r->used, fmt, ap);
	va_end(ap);
	if (n > 0)
		r->used += (size_t)n < r->len - r->used ? (size_t)n : r->len - r->used - 1;
}

__attribute__((format(printf, 2, 3)))
static void resp_error(struct resp *r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = snprintf(r->buf, r->len, "error ");
	vsnprintf(r->buf + n, r->len - (size_t)n, fmt, ap);
	va_end(ap);
	r->used = strlen(r->buf);
	r->error = true;
}

const char *control_format_size(uint64_t v, char *buf, size_t len)
{
	static const char suffix[] = "KMGT";
	int shift = 0;
	for (int i = 4; i >= 1; i--) {
		if (v && v % (1ull << (10 * i)) == 0) {
			shift = i;
			break;
		}
	}
	if (shift)
		snprintf(buf, len, "%" PRIu64 "%c", v >> (10 * shift), suffix[shift - 1]);
	else
		snprintf(buf, len, "%" PRIu64, v);
	return buf;
}

static void resp_size(struct resp *r, const char *key, uint64_t v)
{
	char s[32];
	resp_add(r, " %s=%s", key, control_format_size(v, s, sizeof(s)));
}

/* A string value made safe for the line format: blanks, '=' and
 * non-printable bytes become '_'. */
static void resp_str(struct resp *r, const char *key, const char *v)
{
	char s[128];
	size_t i = 0;
	for (; v && v[i] && i < sizeof(s) - 1; i++) {
		unsigned char ch = (unsigned char)v[i];
		s[i] = (ch <= ' ' || ch >= 0x7f || ch == '=') ? '_' : (char)ch;
	}
	s[i] = 0;
	resp_add(r, " %s=%s", key, i ? s : "-");
}

/* An argument echoed in an error message: printable and short. */
static const char *safe_arg(const char *a, char *buf, size_t len)
{
	size_t i = 0, max = len - 4;
	for (; a[i] && i < max; i++)
		buf[i] = (a[i] > ' ' && a[i] < 0x7f) ? a[i] : '?';
	if (a[i]) {
		memcpy(buf + i, "...", 3);
		i += 3;
	}
	buf[i] = 0;
	return buf;
}

/* ------------------------------------------------------------- commands */

struct request {
	const char *cmd;
	unsigned nr_args;
	char *key[CONTROL_MAX_ARGS];
	char *val[CONTROL_MAX_ARGS];
};

/* Returns the value of argument @key, or NULL. */
static const char *req_arg(const struct request *q, const char *key)
{
	for (unsigned i = 0; i < q->nr_args; i++)
		if (strcmp(q->key[i], key) == 0)
			return q->val[i];
	return NULL;
}

/* Every argument must be one of @allowed (NULL-terminated). */
static bool req_check_args(const struct request *q, const char *const *allowed, struct resp *r)
{
	char b[64];
	for (unsigned i = 0; i < q->nr_args; i++) {
		bool ok = false;
		for (const char *const *a = allowed; *a; a++)
			ok = ok || strcmp(*a, q->key[i]) == 0;
		if (!ok) {
			if (!allowed[0])
				resp_error(r, "%s takes no arguments", q->cmd);
			else
				resp_error(r, "%s: unknown argument '%s'", q->cmd,
					   safe_arg(q->key[i], b, sizeof(b)));
			return false;
		}
	}
	return true;
}

static const char *const no_args[] = { NULL };

static void add_memory(struct control *c, struct resp *r)
{
	struct control_mem m;
	memset(&m, 0, sizeof(m));
	m.ksm_merging_pages = -1;
	if (!c->ops->memory || c->ops->memory(c->cookie, &m) < 0) {
		resp_add(r, " ram_rss=unknown");
		return;
	}
	resp_size(r, "ram", m.ram);
	resp_size(r, "page_size", m.page_size);
	resp_size(r, "ram_rss", m.rss);
	resp_size(r, "hugetlb", m.hugetlb);
	resp_size(r, "thp", m.thp);
	resp_size(r, "swap", m.swap);
	resp_str(r, "numa_policy", m.numa_policy[0] ? m.numa_policy : "default");
	char nodes[256] = "", pages[512] = "";
	size_t nl = 0, pl = 0;
	for (unsigned n = 0; n < CONTROL_MAX_NODES; n++) {
		if (!m.node_pages[n])
			continue;
		nl += (size_t)snprintf(nodes + nl, sizeof(nodes) - nl, "%s%u", nl ? "," : "", n);
		pl += (size_t)snprintf(pages + pl, sizeof(pages) - pl, "%sN%u:%" PRIu64,
				       pl ? "," : "", n, m.node_pages[n]);
		if (nl >= sizeof(nodes) - 8 || pl >= sizeof(pages) - 32)
			break;
	}
	resp_add(r, " numa_nodes=%s numa_pages=%s", nl ? nodes : "none", pl ? pages : "none");
	resp_add(r, " merge=%s", m.merge ? "on" : "off");
	if (m.ksm_merging_pages >= 0)
		resp_add(r, " ksm_merged_pages=%" PRId64, m.ksm_merging_pages);
	else
		resp_add(r, " ksm_merged_pages=unknown");
}

static bool get_balloon(struct control *c, struct virtio_balloon_info *bi)
{
	return c->ops->balloon_get && c->ops->balloon_get(c->cookie, bi);
}

static void cmd_status(struct control *c, const struct request *q, struct resp *r)
{
	if (!req_check_args(q, no_args, r))
		return;
	struct control_vm v = { .state = "running" };
	if (c->ops->vm)
		c->ops->vm(c->cookie, &v);
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	uint64_t now = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	resp_add(r, "ok");
	resp_str(r, "state", v.state);
	resp_str(r, "name", v.name);
	resp_add(r, " cpus=%u", v.cpus);
	resp_size(r, "mem", v.mem);
	resp_add(r, " uptime_ms=%" PRIu64, (now - c->created_ns) / 1000000);
	resp_str(r, "transport", v.transport);
	struct virtio_balloon_info bi;
	if (get_balloon(c, &bi)) {
		resp_add(r, " balloon=on");
		resp_size(r, "balloon_target", bi.target);
		resp_size(r, "balloon_actual", bi.actual);
	} else {
		resp_add(r, " balloon=off");
	}
	add_memory(c, r);
}

static void cmd_memory(struct control *c, const struct request *q, struct resp *r)
{
	if (!req_check_args(q, no_args, r))
		return;
	resp_add(r, "ok");
	add_memory(c, r);
	struct virtio_balloon_info bi;
	if (get_balloon(c, &bi)) {
		resp_size(r, "balloon_actual", bi.actual);
		resp_size(r, "balloon_host_freed", bi.discarded);
	}
}

static void cmd_balloon(struct control *c, const struct request *q, struct resp *r)
{
	static const char *const allowed[] = { "target", NULL };
	if (!req_check_args(q, allowed, r))
		return;
	struct virtio_balloon_info bi;
	if (!get_balloon(c, &bi)) {
		resp_error(r, "no balloon device (start the VM with balloon=on)");
		return;
	}
	const char *t = req_arg(q, "target");
	if (t) {
		uint64_t bytes;
		char b[64], s[32];
		if (config_parse_size(t, &bytes) < 0) {
			resp_error(r, "balloon: target=%s is not a size (e.g. 256M)",
				   safe_arg(t, b, sizeof(b)));
			return;
		}
		int rc = c->ops->balloon_set(c->cookie, bytes);
		if (rc == -ERANGE) {
			struct control_vm v = { 0 };
			if (c->ops->vm)
				c->ops->vm(c->cookie, &v);
			resp_error(r, "balloon: target=%s is more than guest RAM (mem=%s)",
				   safe_arg(t, b, sizeof(b)), control_format_size(v.mem, s, sizeof(s)));
			return;
		}
		if (rc < 0) {
			resp_error(r, "balloon: %s", strerror(-rc));
			return;
		}
		(void)get_balloon(c, &bi);
	}
	resp_add(r, "ok");
	resp_size(r, "target", bi.target);
	resp_size(r, "actual", bi.actual);
}

static void cmd_balloon_stats(struct control *c, const struct request *q, struct resp *r)
{
	if (!req_check_args(q, no_args, r))
		return;
	struct virtio_balloon_info bi;
	if (!get_balloon(c, &bi)) {
		resp_error(r, "no balloon device (start the VM with balloon=on)");
		return;
	}
	resp_add(r, "ok");
	resp_size(r, "target", bi.target);
	resp_size(r, "actual", bi.actual);
	resp_size(r, "inflated", bi.inflated);
	resp_size(r, "host_freed", bi.discarded);
	resp_size(r, "reported", bi.reported);
	resp_add(r, " bad_pfns=%" PRIu64 " duplicate_pfns=%" PRIu64 " live=%s", bi.bad_pfns,
		 bi.duplicate_pfns, bi.live ? "yes" : "no");
	if (!bi.stats_valid) {
		resp_add(r, " stats=none");
		return;
	}
	resp_add(r, " stats_age_ms=%" PRIu64, bi.stats_age_ms);
	for (unsigned t = 0; t < VIRTIO_BALLOON_S_NR; t++) {
		if (!(bi.stats.valid & (1u << t)))
			continue;
		if (balloon_stat_is_bytes(t))
			resp_size(r, balloon_stat_name(t), bi.stats.val[t]);
		else
			resp_add(r, " %s=%" PRIu64, balloon_stat_name(t), bi.stats.val[t]);
	}
}

static void cmd_stop(struct control *c, const struct request *q, struct resp *r)
{
	if (req_check_args(q, no_args, r))
		resp_add(r, "ok stopping");
}

static void cmd_help(struct control *c, const struct request *q, struct resp *r);

static const struct control_command {
	const char *name;
	void (*handler)(struct control *c, const struct request *q, struct resp *r);
} commands[] = {
	{ "status", cmd_status },
	{ "memory", cmd_memory },
	{ "balloon", cmd_balloon },
	{ "balloon-stats", cmd_balloon_stats },
	{ "stop", cmd_stop },
	{ "help", cmd_help },
};

#define NR_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void cmd_help(struct control *c, const struct request *q, struct resp *r)
{
	if (!req_check_args(q, no_args, r))
		return;
	resp_add(r, "ok commands=");
	for (size_t i = 0; i < NR_COMMANDS; i++)
		resp_add(r, "%s%s", i ? "," : "", commands[i].name);
}

static const struct control_command *find_command(const char *name)
{
	for (size_t i = 0; i < NR_COMMANDS; i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

/* Splits @line (modified) into a request for a known command; NULL with
 * @r set on error. */
static const struct control_command *parse_request(char *line, struct request *q,
						   struct resp *r)
{
	char b[64];
	const struct control_command *cmd = NULL;
	memset(q, 0, sizeof(*q));
	char *save = NULL;
	for (char *tok = strtok_r(line, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
		if (!q->cmd) {
			q->cmd = tok;
			cmd = find_command(tok);
			if (!cmd) {
				resp_error(r, "unknown command '%s' (try help)",
					   safe_arg(tok, b, sizeof(b)));
				return NULL;
			}
			continue;
		}
		char *eq = strchr(tok, '=');
		if (!eq || eq == tok) {
			resp_error(r, "%s: argument '%s' is not KEY=VALUE", q->cmd,
				   safe_arg(tok, b, sizeof(b)));
			return NULL;
		}
		*eq = 0;
		if (req_arg(q, tok)) {
			resp_error(r, "%s: %s given twice", q->cmd, safe_arg(tok, b, sizeof(b)));
			return NULL;
		}
		if (q->nr_args == CONTROL_MAX_ARGS) {
			resp_error(r, "%s: too many arguments", q->cmd);
			return NULL;
		}
		q->key[q->nr_args] = tok;
		q->val[q->nr_args++] = eq + 1;
	}
	if (!cmd)
		resp_error(r, "empty request (try help)");
	return cmd;
}

/* Runs @line; returns the command's handler, for the caller's after-send
 * actions (stop), or NULL when the request failed. */
static const struct control_command *execute(struct control *c, const char *line,
					     char *out, size_t out_len)
{
	struct resp r = { .buf = out, .len = out_len };
	out[0] = 0;
	size_t n = strnlen(line, CONTROL_MAX_LINE + 1);
	if (n > CONTROL_MAX_LINE) {
		resp_error(&r, "line too long (at most %d bytes)", CONTROL_MAX_LINE);
		return NULL;
	}
	char copy[CONTROL_MAX_LINE + 1];
	memcpy(copy, line, n + 1);
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)copy[i];
		if (ch < ' ' && ch != '\t') {
			resp_error(&r, "control character 0x%02x in the request", ch);
			return NULL;
		}
	}
	struct request q;
	const struct control_command *cmd = parse_request(copy, &q, &r);
	if (!cmd)
		return NULL;
	cmd->handler(c, &q, &r);
	return r.error ? NULL : cmd;
}

void control_execute(struct control *c, const char *line, char *resp, size_t resp_len)
{
	const struct control_command *cmd = execute(c, line, resp, resp_len);
	if (cmd && cmd->handler == cmd_stop && c->ops->stop)
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
		const struct control_command *cmd;
		if (nul) {
			snprintf(resp, sizeof(resp), "error NUL byte in the request");
			cmd = NULL;
		} else {
			cmd = execute(cl->c, cl->in + start, resp, sizeof(resp));
		}
		start += len + 1;
		struct control *c = cl->c;
		if (!client_reply(cl, resp))
			return false;
		if (cmd && cmd->handler == cmd_stop && c->ops->stop)
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

/* ------------------------------------------------------------ /proc readers */

static bool hex_range(const char *line, uint64_t *lo, uint64_t *hi)
{
	char *end;
	*lo = strtoull(line, &end, 16);
	if (*end != '-')
		return false;
	*hi = strtoull(end + 1, &end, 16);
	return *end == ' ';
}

int control_scan_smaps(FILE *f, uint64_t start, uint64_t end, struct control_mem *out)
{
	char line[512];
	bool in = false, found = false;
	uint64_t rss = 0, hugetlb = 0, thp = 0, swap = 0;
	while (fgets(line, sizeof(line), f)) {
		uint64_t lo, hi;
		if (line[0] != ' ' && hex_range(line, &lo, &hi)) {
			in = lo >= start && hi <= end && lo < hi;
			found = found || in;
			continue;
		}
		if (!in)
			continue;
		unsigned long long kb;
		if (sscanf(line, "Rss: %llu kB", &kb) == 1)
			rss += kb << 10;
		else if (sscanf(line, "Shared_Hugetlb: %llu kB", &kb) == 1 ||
			 sscanf(line, "Private_Hugetlb: %llu kB", &kb) == 1)
			hugetlb += kb << 10;
		else if (sscanf(line, "AnonHugePages: %llu kB", &kb) == 1)
			thp += kb << 10;
		else if (sscanf(line, "Swap: %llu kB", &kb) == 1)
			swap += kb << 10;
	}
	if (!found)
		return -ENOENT;
	/* smaps' Rss leaves hugetlb pages out; they are resident all the same */
	out->rss = rss + hugetlb;
	out->hugetlb = hugetlb;
	out->thp = thp;
	out->swap = swap;
	return 0;
}

int control_scan_numa_maps(FILE *f, uint64_t start, uint64_t end, struct control_mem *out)
{
	char line[1024];
	bool found = false;
	while (fgets(line, sizeof(line), f)) {
		char *p;
		uint64_t addr = strtoull(line, &p, 16);
		if (*p != ' ' || addr < start || addr >= end)
			continue;
		char *save = NULL;
		char *tok = strtok_r(p, " \n", &save);
		if (tok && !found)
			snprintf(out->numa_policy, sizeof(out->numa_policy), "%s", tok);
		found = true;
		while ((tok = strtok_r(NULL, " \n", &save))) {
			unsigned node;
			unsigned long long pages;
			if (sscanf(tok, "N%u=%llu", &node, &pages) == 2 && node < CONTROL_MAX_NODES)
				out->node_pages[node] += pages;
		}
	}
	return found ? 0 : -ENOENT;
}

static int64_t read_ksm_merging_pages(void)
{
	long long v = -1;
	FILE *f = fopen("/proc/self/ksm_merging_pages", "re");
	if (f) {
		if (fscanf(f, "%lld", &v) != 1)
			v = -1;
		fclose(f);
		return v;
	}
	f = fopen("/proc/self/ksm_stat", "re");
	if (!f)
		return -1;
	char line[128];
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "ksm_merging_pages %lld", &v) == 1)
			break;
	fclose(f);
	return v;
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
	uint64_t start = (uintptr_t)vm->ram.base, end = start + vm->ram.size;
	out->ram = vm->ram.size;
	out->page_size = vm->ram.page_size;
	out->merge = vm->cfg->mem_merge;
	out->ksm_merging_pages = read_ksm_merging_pages();
	FILE *f = fopen("/proc/self/smaps", "re");
	if (!f)
		return -errno;
	int rc = control_scan_smaps(f, start, end, out);
	fclose(f);
	f = fopen("/proc/self/numa_maps", "re");
	if (f) {
		(void)control_scan_numa_maps(f, start, end, out);
		fclose(f);
	}
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
