/* libFuzzer target for the control socket's line protocol: the server
 * (lib/linesrv.c: connections, line framing, output back-pressure, the
 * line-length limit) and the requests (vmm/control_cmds.c: parsing, the
 * command table, sizes, the response line), over a real event loop and a
 * Unix stream socketpair, with fake VM hooks. Whoever can connect to the
 * socket controls every byte and how the bytes are split into writes.
 *
 * Input:
 *   0      flags: bit 0 small socket buffers (back-pressure after a few
 *          KiB), bit 1 the VM has a balloon, bit 2 balloon_set fails with
 *          EIO, bit 3 memory fails, bit 4 read the responses only at the
 *          end (a client that does not read its answers), bit 5 listen
 *          on a socket path and connect to it (else a socketpair handed
 *          to control_add_client), bit 6 also open as many more
 *          connections as the server takes, and one more
 *   1..8   balloon numbers (target, actual, stats) the fake VM reports
 *   9..    records: u8 n, then n bytes sent as one write; n = 0xff
 *          instead half-closes the client's side (EOF to the server)
 *
 * Invariants (abort on violation): no crash or sanitizer report; every
 * response line starts with "ok" or "error ", is at most
 * CONTROL_MAX_RESPONSE bytes and holds no control character; there are
 * never more responses than request lines plus one (the "line too long"
 * error that ends a connection); the stop hook runs once for each
 * "ok stopping" the client received (fewer received only when the server
 * dropped a client that did not read). */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "vmm/control.h"
#include "lib/evloop.h"
#include "lib/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) { \
	fprintf(stderr, "fuzz_control: invariant failed: %s (line %d)\n", #c, __LINE__); \
	abort(); } } while (0)

struct fz {
	uint8_t flags;
	uint64_t target, actual;
	unsigned stops, sets;
	uint64_t last_set;
	size_t lines_sent;     /* '\n' bytes written to the socket */
	size_t responses;
	unsigned stopping;     /* "ok stopping" lines received */
	size_t in_len;
	char in[256 * 1024];   /* responses read, not yet split (last: not cleared) */
};

static void op_status(void *cookie, struct control_status *out)
{
	(void)cookie;
	*out = (struct control_status){ .state = "running", .name = "fuzz", .cpus = 2,
				    .mem = 256ull << 20, .transport = "pci" };
}

static int op_memory(void *cookie, struct control_mem *out)
{
	struct fz *f = cookie;
	out->ram = 256ull << 20;
	out->page_size = 4096;
	out->stats.rss = f->actual;
	out->stats.ksm_merging_pages = -1;
	snprintf(out->stats.numa_policy, sizeof(out->stats.numa_policy), "default");
	out->stats.node_pages[0] = 12;
	out->stats.node_pages[3] = 1;
	return f->flags & 8 ? -ENOENT : 0;
}

static bool op_balloon_get(void *cookie, struct virtio_balloon_info *out)
{
	struct fz *f = cookie;
	if (!(f->flags & 2))
		return false;
	memset(out, 0, sizeof(*out));
	out->live = true;
	out->target = f->target;
	out->actual = f->actual;
	out->inflated = f->actual / 4096;
	out->stats_valid = f->actual & 1;
	out->stats.valid = (uint32_t)f->target;
	for (unsigned i = 0; i < VIRTIO_BALLOON_S_NR; i++)
		out->stats.val[i] = f->actual * (i + 1);
	return true;
}

static int op_balloon_set(void *cookie, uint64_t bytes)
{
	struct fz *f = cookie;
	f->sets++;
	f->last_set = bytes;
	if (f->flags & 4)
		return -EIO;
	if (bytes > (256ull << 20))
		return -ERANGE;
	f->target = bytes;
	return 0;
}

static void op_stop(void *cookie)
{
	struct fz *f = cookie;
	f->stops++;
}

static const struct control_ops ops = {
	.status = op_status, .memory = op_memory, .balloon_get = op_balloon_get,
	.balloon_set = op_balloon_set, .stop = op_stop,
};

static void pump(struct evloop *l)
{
	for (int i = 0; i < 64 && evloop_run_once(l, 0) > 0; i++)
		;
}

/* Checks every complete response line received so far. */
static void check_lines(struct fz *f)
{
	size_t start = 0;
	for (;;) {
		char *nl = memchr(f->in + start, '\n', f->in_len - start);
		if (!nl)
			break;
		size_t len = (size_t)(nl - (f->in + start));
		const char *s = f->in + start;
		CHECK(len <= CONTROL_MAX_RESPONSE);
		CHECK((len >= 2 && memcmp(s, "ok", 2) == 0 && (len == 2 || s[2] == ' ')) ||
		      (len >= 6 && memcmp(s, "error ", 6) == 0));
		for (size_t i = 0; i < len; i++)
			CHECK((unsigned char)s[i] >= ' ' && (unsigned char)s[i] < 0x7f);
		if (len == 11 && memcmp(s, "ok stopping", 11) == 0)
			f->stopping++;
		f->responses++;
		start += len + 1;
	}
	memmove(f->in, f->in + start, f->in_len - start);
	f->in_len -= start;
	CHECK(f->responses <= f->lines_sent + 1);
}

static void read_responses(struct fz *f, int fd)
{
	for (;;) {
		if (f->in_len == sizeof(f->in))
			check_lines(f);
		CHECK(f->in_len < sizeof(f->in));
		ssize_t n = recv(fd, f->in + f->in_len, sizeof(f->in) - f->in_len, MSG_DONTWAIT);
		if (n <= 0)
			break;
		f->in_len += (size_t)n;
	}
	check_lines(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct fz f;
	if (size < 9)
		return 0;
	memset(&f, 0, offsetof(struct fz, in));
	f.flags = data[0];
	f.target = (uint64_t)data[1] << 20 | (uint64_t)data[2] << 12;
	f.actual = (uint64_t)data[3] << 20 | (uint64_t)data[4] << 12 | (data[5] & 1);
	data += 9;
	size -= 9;

	struct logger lg = { .level = LOG_ERROR, .fd = -1 };
	struct evloop *loop;
	CHECK(evloop_create(&loop) == 0);
	static char dir[64], path[96];
	if (!dir[0]) { /* once per process; the socket itself is made per input */
		snprintf(dir, sizeof(dir), "/tmp/fuzz_control.XXXXXX");
		CHECK(mkdtemp(dir) != NULL);
		snprintf(path, sizeof(path), "%s/sock", dir);
	}
	bool listening = f.flags & 32;
	struct control_params p = { .path = listening ? path : NULL, .loop = loop, .log = &lg,
				    .ops = &ops, .cookie = &f };
	struct control *c;
	CHECK(control_create(&p, &c) == 0);
	int sv[2], extra[CONTROL_MAX_CLIENTS + 1];
	unsigned nr_extra = 0;
	if (listening) {
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
		sv[0] = -1;
		sv[1] = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		CHECK(sv[1] >= 0);
		if (f.flags & 1) {
			int small = 4096;
			setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
		}
		CHECK(connect(sv[1], (struct sockaddr *)&sa, sizeof(sa)) == 0);
		for (unsigned i = 0; (f.flags & 64) && i < CONTROL_MAX_CLIENTS; i++) {
			extra[nr_extra] = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
			CHECK(extra[nr_extra] >= 0);
			CHECK(connect(extra[nr_extra], (struct sockaddr *)&sa, sizeof(sa)) == 0);
			nr_extra++;
		}
		pump(loop);
		CHECK(control_nr_clients(c) >= 1 && control_nr_clients(c) <= CONTROL_MAX_CLIENTS);
	} else {
		CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) == 0);
		if (f.flags & 1) {
			int small = 4096;
			setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
			setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
		}
		CHECK(control_add_client(c, sv[0]) == 0);
		CHECK(control_nr_clients(c) == 1);
	}

	bool closed = false;
	size_t pos = 0;
	while (pos < size && !closed) {
		unsigned n = data[pos++];
		if (n == 0xff) {
			shutdown(sv[1], SHUT_WR);
			closed = true;
		} else {
			if (n > size - pos)
				n = (unsigned)(size - pos);
			ssize_t w = send(sv[1], data + pos, n, MSG_DONTWAIT | MSG_NOSIGNAL);
			for (ssize_t i = 0; i < w; i++)
				f.lines_sent += data[pos + (size_t)i] == '\n';
			pos += n;
		}
		pump(loop);
		if (!(f.flags & 16))
			read_responses(&f, sv[1]);
	}
	if (!closed)
		shutdown(sv[1], SHUT_WR);
	for (int i = 0; i < 8; i++) { /* until the server has said all it will */
		pump(loop);
		read_responses(&f, sv[1]);
	}
	CHECK(f.stopping <= f.stops);
	CHECK(f.stops <= f.lines_sent);
	CHECK(f.sets <= f.lines_sent);
	close(sv[1]);
	for (unsigned i = 0; i < nr_extra; i++)
		close(extra[i]);
	pump(loop);
	control_destroy(c);
	evloop_destroy(loop);
	return 0;
}
