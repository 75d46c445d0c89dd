/* The inside of the control server, for vmm/control*.c only; the contract
 * is vmm/control.h.
 *
 *   control.c       the socket server: listening, connections, line
 *                   framing, and the VM's hooks
 *   control_cmds.c  one request line: parsing, the command table, the
 *                   handlers and the response line
 *
 * Threads: the event thread only, like everything in control.h. */
#ifndef KVMRUN_CONTROL_PRIV_H
#define KVMRUN_CONTROL_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "vmm/control.h"

struct control_client;

struct control {
	struct evloop *loop;
	const struct logger *log;
	const struct control_ops *ops;
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
	uint64_t created_ns;
	struct control_client *clients[CONTROL_MAX_CLIENTS];
};

/* Executes one request line (no '\n', at most CONTROL_MAX_LINE bytes or it
 * is refused) and writes the response line into @resp. Returns true when
 * it was a successful "stop": the caller calls c->ops->stop once the
 * response is on its way. The only other side effects are the ops'
 * (balloon_set), for a well-formed request. */
bool control_cmds_run(struct control *c, const char *line, char *resp, size_t resp_len);

#endif
