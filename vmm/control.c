/* The control socket (see control.h): the protocol of control_cmds.c
 * served on a line server. */
#include "vmm/control.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "vmm/control_priv.h"

static bool control_line(void *cookie, const char *line, char *resp, size_t resp_len)
{
	return control_cmds_run(cookie, line, resp, resp_len);
}

/* After "ok stopping" is queued: the client gets its answer before the VM
 * goes. */
static void control_after(void *cookie)
{
	struct control *c = cookie;
	if (c->ops->stop)
		c->ops->stop(c->cookie);
}

static const struct linesrv_ops control_line_ops = {
	.line = control_line,
	.after = control_after,
};

int control_create(const struct control_params *p, struct control **out)
{
	*out = NULL;
	if (!p->loop || !p->ops)
		return -EINVAL;
	struct control *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->ops = p->ops;
	c->cookie = p->cookie;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	c->created_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	struct linesrv_params lp = {
		.name = "control", .peer = "VM", .path = p->path, .loop = p->loop,
		.log = p->log, .ops = &control_line_ops, .cookie = c,
		.idle_timeout_ms = p->idle_timeout_ms,
	};
	int rc = linesrv_create(&lp, &c->srv);
	if (rc < 0) {
		free(c);
		return rc;
	}
	*out = c;
	return 0;
}

void control_destroy(struct control *c)
{
	if (!c)
		return;
	linesrv_destroy(c->srv);
	free(c);
}

int control_add_client(struct control *c, int fd)
{
	return linesrv_add_client(c->srv, fd);
}

void control_execute(struct control *c, const char *line, char *resp, size_t resp_len)
{
	if (control_cmds_run(c, line, resp, resp_len))
		control_after(c);
}

unsigned control_nr_clients(const struct control *c)
{
	return linesrv_nr_clients(c->srv);
}
