/* Running a test step in a forked child, for what cannot be undone in the
 * test process: a seccomp filter, Landlock, a uid switch, a cgroup move.
 * The child's log (and the SIGSYS line) goes to a pipe the parent reads. */
#ifndef KVMRUN_UNIT_CHILD_H
#define KVMRUN_UNIT_CHILD_H

#include <stddef.h>

struct child_result {
	int exited;     /* 1: exited with code; 0: killed by signal */
	int code;       /* exit code, or the signal */
	char out[4096]; /* what it wrote to @log_fd, NUL-terminated */
};

/* Forks; the child runs fn(log_fd, arg) and _exits with its return. */
void child_run(int (*fn)(int log_fd, void *arg), void *arg, struct child_result *r);

#endif
