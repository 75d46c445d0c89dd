/* The inside of the control server, for vmm/control*.c only; the contract
 * is vmm/control.h.
 *
 *   control.c       the protocol on a line server (lib/linesrv.h)
 *   control_cmds.c  one request line: parsing, the command table, the
 *                   handlers and the response line
 *
 * Threads: the event thread only, like everything in control.h. */
#ifndef KVMRUN_CONTROL_PRIV_H
#define KVMRUN_CONTROL_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/linesrv.h"
#include "vmm/control.h"

struct control {
	struct linesrv *srv;
	const struct control_ops *ops;
	void *cookie;
	uint64_t created_ns;             /* CLOCK_MONOTONIC, for uptime_ms */
};

/* Executes one request line (no '\n', at most CONTROL_MAX_LINE bytes or it
 * is refused) and writes the response line into @resp. Returns true when
 * it was a successful "stop": the caller calls c->ops->stop once the
 * response is on its way. The only other side effects are the ops'
 * (balloon_set), for a well-formed request. */
bool control_cmds_run(struct control *c, const char *line, char *resp, size_t resp_len);

#endif
