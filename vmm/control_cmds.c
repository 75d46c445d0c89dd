/* One control request (see control.h): the request parser, the command
 * table and its handlers, and the response line they build. control.c
 * feeds it the lines of a line server (lib/linesrv.c). */
#include "vmm/control.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>

#include "vmm/config.h"
#include "vmm/control_priv.h"

#define CONTROL_MAX_ARGS 8

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

static void resp_size(struct resp *r, const char *key, uint64_t v)
{
	char s[32];
	resp_add(r, " %s=%s", key, config_fmt_size(v, s, sizeof(s)));
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
	m.stats.ksm_merging_pages = -1;
	if (!c->ops->memory || c->ops->memory(c->cookie, &m) < 0) {
		resp_add(r, " ram_rss=unknown");
		return;
	}
	resp_size(r, "ram", m.ram);
	resp_size(r, "page_size", m.page_size);
	resp_size(r, "ram_rss", m.stats.rss);
	resp_size(r, "hugetlb", m.stats.hugetlb);
	resp_size(r, "thp", m.stats.thp);
	resp_size(r, "swap", m.stats.swap);
	resp_str(r, "numa_policy", m.stats.numa_policy[0] ? m.stats.numa_policy : "default");
	char nodes[256] = "", pages[512] = "";
	size_t nl = 0, pl = 0;
	for (unsigned n = 0; n < RAM_STATS_MAX_NODES; n++) {
		if (!m.stats.node_pages[n])
			continue;
		nl += (size_t)snprintf(nodes + nl, sizeof(nodes) - nl, "%s%u", nl ? "," : "", n);
		pl += (size_t)snprintf(pages + pl, sizeof(pages) - pl, "%sN%u:%" PRIu64,
				       pl ? "," : "", n, m.stats.node_pages[n]);
		if (nl >= sizeof(nodes) - 8 || pl >= sizeof(pages) - 32)
			break;
	}
	resp_add(r, " numa_nodes=%s numa_pages=%s", nl ? nodes : "none", pl ? pages : "none");
	resp_add(r, " merge=%s", m.merge ? "on" : "off");
	if (m.stats.ksm_merging_pages >= 0)
		resp_add(r, " ksm_merged_pages=%" PRId64, m.stats.ksm_merging_pages);
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
	struct control_status v = { .state = "running" };
	if (c->ops->status)
		c->ops->status(c->cookie, &v);
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
			struct control_status v = { 0 };
			if (c->ops->status)
				c->ops->status(c->cookie, &v);
			resp_error(r, "balloon: target=%s is more than guest RAM (mem=%s)",
				   safe_arg(t, b, sizeof(b)), config_fmt_size(v.mem, s, sizeof(s)));
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

static void cmd_metrics(struct control *c, const struct request *q, struct resp *r)
{
	if (!req_check_args(q, no_args, r))
		return;
	if (!c->ops->metrics) {
		resp_error(r, "metrics are not available");
		return;
	}
	resp_add(r, "ok");
	if (r->used < r->len)
		r->used += c->ops->metrics(c->cookie, r->buf + r->used, r->len - r->used);
}

static void cmd_stop(struct control *c, const struct request *q, struct resp *r)
{
	if (req_check_args(q, no_args, r))
		resp_add(r, "ok stopping");
}

/* pause, resume and snapshot share one shape: a hook that says why not. */
static void run_state_hook(struct resp *r, const char *cmd,
			   int (*hook)(void *, char *, size_t), void *cookie, const char *ok)
{
	char why[256] = "";
	if (!hook) {
		resp_error(r, "%s: not supported by this VM", cmd);
		return;
	}
	if (hook(cookie, why, sizeof(why)) < 0) {
		resp_error(r, "%s: %s", cmd, why[0] ? why : "failed");
		return;
	}
	resp_add(r, "ok state=%s", ok);
}

static void cmd_pause(struct control *c, const struct request *q, struct resp *r)
{
	if (req_check_args(q, no_args, r))
		run_state_hook(r, "pause", c->ops->pause, c->cookie, "paused");
}

static void cmd_resume(struct control *c, const struct request *q, struct resp *r)
{
	if (req_check_args(q, no_args, r))
		run_state_hook(r, "resume", c->ops->resume, c->cookie, "running");
}

static void cmd_snapshot(struct control *c, const struct request *q, struct resp *r)
{
	static const char *const allowed[] = { "path", NULL };
	if (!req_check_args(q, allowed, r))
		return;
	const char *path = req_arg(q, "path");
	if (!path || !*path) {
		resp_error(r, "snapshot: give path=DIR");
		return;
	}
	if (!c->ops->snapshot) {
		resp_error(r, "snapshot: not supported by this VM");
		return;
	}
	char why[256] = "";
	if (c->ops->snapshot(c->cookie, path, why, sizeof(why)) < 0) {
		resp_error(r, "snapshot: %s", why[0] ? why : "failed");
		return;
	}
	resp_add(r, "ok");
	resp_str(r, "path", path);
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
	{ "metrics", cmd_metrics },
	{ "stop", cmd_stop },
	{ "pause", cmd_pause },
	{ "resume", cmd_resume },
	{ "snapshot", cmd_snapshot },
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

bool control_cmds_run(struct control *c, const char *line, char *resp, size_t resp_len)
{
	const struct control_command *cmd = execute(c, line, resp, resp_len);
	return cmd && cmd->handler == cmd_stop;
}
