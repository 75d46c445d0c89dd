#include "child.h"

#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

void child_run(int (*fn)(int log_fd, void *arg), void *arg, struct child_result *r)
{
	memset(r, 0, sizeof(*r));
	int p[2];
	if (pipe(p) < 0) {
		r->code = -1;
		return;
	}
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		close(p[0]);
		_exit(fn(p[1], arg));
	}
	close(p[1]);
	size_t len = 0;
	ssize_t n;
	while ((n = read(p[0], r->out + len, sizeof(r->out) - 1 - len)) > 0)
		len += (size_t)n;
	close(p[0]);
	int st = 0;
	waitpid(pid, &st, 0);
	r->exited = WIFEXITED(st);
	r->code = WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st);
}
