/* `kvmrun ctl SOCKET COMMAND [ARGS...]`: the control socket's command-line
 * client (protocol in vmm/control.h). Joins the arguments into one request
 * line, prints the response line, and exits 0 for "ok", 1 for "error",
 * 2 for usage and connection errors. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "vmm/control.h"

#define CTL_TIMEOUT_MS 10000

static const char ctl_usage[] =
	"usage: kvmrun ctl SOCKET COMMAND [KEY=VALUE ...]\n"
	"commands: status, memory, balloon [target=SIZE], balloon-stats, stop, help\n";

static int ctl_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "kvmrun ctl: %s: %s\n", path, strerror(ENAMETOOLONG));
		return -1;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		fprintf(stderr, "kvmrun ctl: socket: %s\n", strerror(errno));
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		fprintf(stderr, "kvmrun ctl: connecting to %s: %s\n", path, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static int ctl_send(int fd, const char *path, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fprintf(stderr, "kvmrun ctl: writing to %s: %s\n", path, strerror(errno));
			return -1;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Reads one line (without '\n') into @buf; -1 on error, timeout or EOF first. */
static int ctl_recv_line(int fd, const char *path, char *buf, size_t cap)
{
	size_t len = 0;
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		struct timespec t;
		clock_gettime(CLOCK_MONOTONIC, &t);
		long waited = (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int r = waited < CTL_TIMEOUT_MS ? poll(&p, 1, (int)(CTL_TIMEOUT_MS - waited)) : 0;
		if (r < 0 && errno == EINTR)
			continue;
		if (r == 0) {
			fprintf(stderr, "kvmrun ctl: %s: no response in %d s\n", path,
				CTL_TIMEOUT_MS / 1000);
			return -1;
		}
		ssize_t n = r < 0 ? -1 : recv(fd, buf + len, cap - 1 - len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fprintf(stderr, "kvmrun ctl: reading from %s: %s\n", path, strerror(errno));
			return -1;
		}
		if (n == 0) {
			fprintf(stderr, "kvmrun ctl: %s closed the connection without a response\n",
				path);
			return -1;
		}
		char *nl = memchr(buf + len, '\n', (size_t)n);
		len += (size_t)n;
		if (nl) {
			*nl = 0;
			return 0;
		}
		if (len == cap - 1) {
			fprintf(stderr, "kvmrun ctl: %s: response longer than %zu bytes\n", path,
				cap - 1);
			return -1;
		}
	}
}

int control_client_main(int argc, char **argv)
{
	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		fputs(ctl_usage, stdout);
		return 0;
	}
	if (argc < 3) {
		fputs(ctl_usage, stderr);
		return 2;
	}
	const char *path = argv[1];
	char req[CONTROL_MAX_LINE + 2];
	size_t len = 0;
	for (int i = 2; i < argc; i++) {
		size_t n = strlen(argv[i]);
		if (strchr(argv[i], '\n') || len + n + 2 > sizeof(req)) {
			fprintf(stderr, "kvmrun ctl: the request must be one line of at most %d bytes\n",
				CONTROL_MAX_LINE);
			return 2;
		}
		if (i > 2)
			req[len++] = ' ';
		memcpy(req + len, argv[i], n);
		len += n;
	}
	req[len++] = '\n';
	int fd = ctl_connect(path);
	if (fd < 0)
		return 2;
	char resp[64 * 1024];
	int rc = ctl_send(fd, path, req, len);
	if (rc == 0)
		rc = ctl_recv_line(fd, path, resp, sizeof(resp));
	close(fd);
	if (rc < 0)
		return 2;
	puts(resp);
	if (strncmp(resp, "ok", 2) == 0 && (resp[2] == 0 || resp[2] == ' '))
		return 0;
	if (strncmp(resp, "error", 5) == 0)
		return 1;
	fprintf(stderr, "kvmrun ctl: %s: unexpected response\n", path);
	return 2;
}
