/* The control socket (vmm/control.c on lib/linesrv.c) over fake VM hooks: requests
 * through a socketpair and through a real listening socket, malformed
 * input, clients that do not read, and the /proc parsers. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "unit.h"
#include "mem/ram_stats.h"
#include "vmm/config.h"
#include "vmm/control.h"

struct fake {
	bool has_balloon;
	uint64_t target;
	unsigned sets, stops;
	int set_rc;
};

static void fake_status(void *cookie, struct control_status *out)
{
	out->state = "running";
	out->name = "ci vm=1"; /* blanks and '=' must not break the line format */
	out->cpus = 2;
	out->mem = 512ull << 20;
	out->transport = "pci";
}

static int fake_memory(void *cookie, struct control_mem *out)
{
	out->ram = 512ull << 20;
	out->page_size = 4096;
	out->stats.rss = 300ull << 20;
	out->stats.node_pages[0] = 76800;
	out->stats.ksm_merging_pages = 12;
	snprintf(out->stats.numa_policy, sizeof(out->stats.numa_policy), "bind:0");
	return 0;
}

static bool fake_balloon_get(void *cookie, struct virtio_balloon_info *out)
{
	struct fake *f = cookie;
	memset(out, 0, sizeof(*out));
	out->target = f->target;
	out->actual = 4096;
	out->stats_valid = true;
	out->stats.valid = (1u << VIRTIO_BALLOON_S_MEMFREE) | (1u << VIRTIO_BALLOON_S_MAJFLT);
	out->stats.val[VIRTIO_BALLOON_S_MEMFREE] = 100ull << 20;
	out->stats.val[VIRTIO_BALLOON_S_MAJFLT] = 7;
	return f->has_balloon;
}

static int fake_balloon_set(void *cookie, uint64_t bytes)
{
	struct fake *f = cookie;
	if (f->set_rc)
		return f->set_rc;
	if (bytes > (512ull << 20))
		return -ERANGE;
	f->target = bytes;
	f->sets++;
	return 0;
}

static void fake_stop(void *cookie)
{
	((struct fake *)cookie)->stops++;
}

static size_t fake_metrics(void *cookie, char *buf, size_t len)
{
	return (size_t)snprintf(buf, len, " vcpu0.exits_io=3 disk0.read_bytes=4096");
}

static const struct control_ops fake_ops = {
	.metrics = fake_metrics,
	.status = fake_status, .memory = fake_memory, .balloon_get = fake_balloon_get,
	.balloon_set = fake_balloon_set, .stop = fake_stop,
};

struct env {
	struct evloop *loop;
	struct logger lg;
	struct fake f;
	struct control *c;
};

static void env_create_idle(struct env *e, const char *path, unsigned idle_ms)
{
	memset(e, 0, sizeof(*e));
	e->f.has_balloon = true;
	CHECK_EQ(evloop_create(&e->loop), 0);
	log_init(&e->lg, LOG_ERROR, "test");
	struct control_params p = { .path = path, .loop = e->loop, .log = &e->lg,
				    .ops = &fake_ops, .cookie = &e->f, .idle_timeout_ms = idle_ms };
	CHECK_EQ(control_create(&p, &e->c), 0);
}

static void env_create(struct env *e, const char *path)
{
	env_create_idle(e, path, 0);
}

static void env_destroy(struct env *e)
{
	control_destroy(e->c);
	evloop_destroy(e->loop);
}

/* One end of a socketpair served by the control; returns the other. */
static int add_pair(struct env *e)
{
	int sv[2];
	CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	CHECK_EQ(control_add_client(e->c, sv[0]), 0);
	return sv[1];
}

static void run_loop(struct env *e)
{
	for (int i = 0; i < 5; i++)
		evloop_run_once(e->loop, 10);
}

/* Reads what the server wrote; returns bytes (the buffer is terminated). */
static size_t drain(int fd, char *buf, size_t cap)
{
	size_t len = 0;
	for (;;) {
		ssize_t n = recv(fd, buf + len, cap - 1 - len, MSG_DONTWAIT);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	buf[len] = 0;
	return len;
}

/* Sends @req, runs the loop and returns the response line (without '\n'). */
static const char *ask(struct env *e, int fd, const char *req)
{
	static char buf[8192];
	CHECK_EQ(send(fd, req, strlen(req), 0), (ssize_t)strlen(req));
	run_loop(e);
	size_t n = drain(fd, buf, sizeof(buf));
	if (n && buf[n - 1] == '\n')
		buf[n - 1] = 0;
	return buf;
}

static bool starts(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

static void test_commands(void)
{
	struct env e;
	env_create(&e, NULL);
	int fd = add_pair(&e);
	const char *r = ask(&e, fd, "status\n");
	CHECK(starts(r, "ok state=running name=ci_vm_1 cpus=2 mem=512M uptime_ms="));
	CHECK(strstr(r, " balloon=on balloon_target=0 balloon_actual=4K ") != NULL);
	CHECK(strstr(r, " ram_rss=300M ") != NULL);
	CHECK(strstr(r, " numa_policy=bind:0 numa_nodes=0 numa_pages=N0:76800 ") != NULL);
	CHECK(strstr(r, " ksm_merged_pages=12") != NULL);

	CHECK_STREQ(ask(&e, fd, "balloon target=256M\n"), "ok target=256M actual=4K");
	CHECK_EQ(e.f.target, 256u << 20);
	CHECK_STREQ(ask(&e, fd, "balloon\r\n"), "ok target=256M actual=4K");
	CHECK_STREQ(ask(&e, fd, "  balloon \t target=1536K  \n"), "ok target=1536K actual=4K");
	CHECK_EQ(e.f.sets, 2);

	r = ask(&e, fd, "balloon-stats\n");
	CHECK(starts(r, "ok target=1536K actual=4K "));
	CHECK(strstr(r, " major_faults=7") != NULL);
	CHECK(strstr(r, " free_memory=100M") != NULL);

	r = ask(&e, fd, "memory\n");
	CHECK(starts(r, "ok ram=512M page_size=4K ram_rss=300M "));
	CHECK_STREQ(ask(&e, fd, "help\n"),
		    "ok commands=status,memory,balloon,balloon-stats,metrics,stop,pause,resume,snapshot,help");
	/* metrics: the hook's fields after "ok", nothing else; no arguments */
	CHECK_STREQ(ask(&e, fd, "metrics\n"), "ok vcpu0.exits_io=3 disk0.read_bytes=4096");
	CHECK(starts(ask(&e, fd, "metrics all=1\n"), "error metrics takes no arguments"));

	/* two requests in one write, answered in order */
	r = ask(&e, fd, "balloon target=1M\nballoon target=2M\n");
	CHECK_STREQ(r, "ok target=1M actual=4K\nok target=2M actual=4K");

	CHECK_EQ(e.f.stops, 0);
	CHECK_STREQ(ask(&e, fd, "stop\n"), "ok stopping");
	CHECK_EQ(e.f.stops, 1);
	close(fd);
	run_loop(&e);
	CHECK_EQ(control_nr_clients(e.c), 0);
	env_destroy(&e);
}

static void test_malformed(void)
{
	struct env e;
	env_create(&e, NULL);
	e.f.target = 64u << 20;
	int fd = add_pair(&e);
	static const char *const bad[] = {
		"\n", "   \n", "bogus\n", "bogus x\n", "balloon target=\n", "balloon target=abc\n",
		"balloon target=-1M\n", "balloon target=1Q\n", "balloon size=1M\n",
		"balloon target=1M target=2M\n", "balloon =1M\n", "balloon target\n",
		"balloon target=1G\n", "status now\n", "stop please=1\n", "help x=1\n",
		"balloon target=99999999999999999999999\n", "STATUS\n", "balloon\x01 target=1M\n",
		"balloon a=1 b=2 c=3 d=4 e=5 f=6 g=7 h=8 i=9\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *r = ask(&e, fd, bad[i]);
		if (!starts(r, "error "))
			fprintf(stderr, "  request %zu got: %s\n", i, r);
		CHECK(starts(r, "error "));
		CHECK(strchr(r, '\n') == NULL);
	}
	CHECK_EQ(e.f.sets, 0);
	CHECK_EQ(e.f.stops, 0);
	CHECK_EQ(e.f.target, 64u << 20);
	CHECK(strstr(ask(&e, fd, "balloon target=1G\n"), "more than guest RAM") != NULL);
	CHECK(strstr(ask(&e, fd, "frobnicate\n"), "unknown command 'frobnicate'") != NULL);

	/* a NUL byte inside a line */
	const char nul[] = "balloon target=1M\0x\n";
	CHECK_EQ(send(fd, nul, sizeof(nul) - 1, 0), (ssize_t)sizeof(nul) - 1);
	run_loop(&e);
	char buf[256];
	drain(fd, buf, sizeof(buf));
	CHECK(starts(buf, "error NUL"));
	CHECK_EQ(e.f.sets, 0);

	/* no balloon */
	e.f.has_balloon = false;
	CHECK(starts(ask(&e, fd, "balloon target=1M\n"), "error no balloon"));
	CHECK(starts(ask(&e, fd, "balloon-stats\n"), "error no balloon"));
	CHECK(strstr(ask(&e, fd, "status\n"), " balloon=off ") != NULL);
	e.f.has_balloon = true;
	e.f.set_rc = -EIO;
	CHECK(starts(ask(&e, fd, "balloon target=1M\n"), "error balloon: "));

	/* still served after all that */
	CHECK_EQ(control_nr_clients(e.c), 1);
	close(fd);
	env_destroy(&e);
}

static void test_long_line(void)
{
	struct env e;
	env_create(&e, NULL);
	int fd = add_pair(&e);
	char line[CONTROL_MAX_LINE + 2];
	memset(line, 'a', sizeof(line));
	line[CONTROL_MAX_LINE] = '\n'; /* exactly the maximum: one answer */
	CHECK_EQ(send(fd, line, CONTROL_MAX_LINE + 1, 0), CONTROL_MAX_LINE + 1);
	run_loop(&e);
	char buf[512];
	drain(fd, buf, sizeof(buf));
	CHECK(starts(buf, "error unknown command"));
	CHECK_EQ(control_nr_clients(e.c), 1);
	/* one byte more, in pieces: "line too long", then the server hangs up */
	memset(line, 'b', sizeof(line));
	CHECK_EQ(send(fd, line, 1000, 0), 1000);
	run_loop(&e);
	CHECK_EQ(send(fd, line, CONTROL_MAX_LINE + 1 - 1000, 0), CONTROL_MAX_LINE + 1 - 1000);
	run_loop(&e);
	drain(fd, buf, sizeof(buf));
	CHECK(starts(buf, "error line too long"));
	CHECK_EQ(recv(fd, buf, sizeof(buf), MSG_DONTWAIT), 0); /* EOF */
	/* what the client still sends is discarded, never answered */
	CHECK_EQ(send(fd, "status\n", 7, 0), 7);
	run_loop(&e);
	CHECK_EQ(recv(fd, buf, sizeof(buf), MSG_DONTWAIT), 0);
	close(fd);
	run_loop(&e);
	CHECK_EQ(control_nr_clients(e.c), 0);
	env_destroy(&e);
}

static void test_slow_reader(void)
{
	struct env e;
	env_create(&e, NULL);
	int sv[2];
	CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	int small = 4096;
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	CHECK_EQ(control_add_client(e.c, sv[0]), 0);
	int fd = sv[1];
	int other = add_pair(&e);
	/* ask for far more than CONTROL_OUT_MAX plus the socket buffers and never read */
	char req[4000];
	size_t n = 0;
	while (n + 8 < sizeof(req)) {
		memcpy(req + n, "status\n", 7);
		n += 7;
	}
	bool dropped = false;
	for (int i = 0; i < 400 && !dropped; i++) {
		if (send(fd, req, n, MSG_DONTWAIT) < 0 && errno != EAGAIN)
			break;
		run_loop(&e);
		dropped = control_nr_clients(e.c) == 1;
	}
	CHECK(dropped);
	/* the other client is still served */
	CHECK(starts(ask(&e, other, "help\n"), "ok commands="));
	CHECK_EQ(e.f.sets, 0);
	close(fd);
	close(other);
	env_destroy(&e);
}

static void test_socket_path(void)
{
	char dir[] = "/tmp/kvmrun-test-ctl-XXXXXX";
	CHECK(mkdtemp(dir) != NULL);
	char path[64];
	snprintf(path, sizeof(path), "%s/ctl.sock", dir);

	struct env e;
	env_create(&e, path);
	struct stat st;
	CHECK_EQ(stat(path, &st), 0);
	CHECK(S_ISSOCK(st.st_mode));
	CHECK_EQ(st.st_mode & 0777, 0600);

	/* a second server on the same live path is refused */
	struct control *c2 = NULL;
	struct control_params p = { .path = path, .loop = e.loop, .log = &e.lg,
				    .ops = &fake_ops, .cookie = &e.f };
	CHECK_EQ(control_create(&p, &c2), -EADDRINUSE);
	CHECK(c2 == NULL);

	/* connect through the path */
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK_EQ(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	run_loop(&e);
	CHECK_EQ(control_nr_clients(e.c), 1);
	CHECK_STREQ(ask(&e, fd, "balloon target=8M\n"), "ok target=8M actual=4K");
	close(fd);
	env_destroy(&e);
	CHECK_EQ(stat(path, &st), -1); /* unlinked at teardown */

	/* a stale socket (nobody listening) is replaced */
	int stale = socket(AF_UNIX, SOCK_STREAM, 0);
	CHECK_EQ(bind(stale, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(stale);
	CHECK_EQ(stat(path, &st), 0);
	env_create(&e, path);
	CHECK(e.c != NULL);
	env_destroy(&e);

	/* a regular file is not replaced */
	int f = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	CHECK(f >= 0);
	close(f);
	CHECK_EQ(evloop_create(&e.loop), 0);
	p.loop = e.loop;
	CHECK_EQ(control_create(&p, &c2), -EEXIST);
	CHECK_EQ(stat(path, &st), 0);
	CHECK(S_ISREG(st.st_mode));
	evloop_destroy(e.loop);
	unlink(path);

	/* a directory that does not exist */
	snprintf(path, sizeof(path), "%s/nope/ctl.sock", dir);
	CHECK_EQ(evloop_create(&e.loop), 0);
	p.loop = e.loop;
	CHECK_EQ(control_create(&p, &c2), -ENOENT);
	evloop_destroy(e.loop);
	rmdir(dir);
}

/* Sixteen connections that sit there: a new client still gets in, and the
 * one idle the longest makes room. */
static void test_full_makes_room(void)
{
	struct env e;
	env_create(&e, NULL);
	int fds[CONTROL_MAX_CLIENTS];
	for (int i = 0; i < CONTROL_MAX_CLIENTS; i++) {
		fds[i] = add_pair(&e);
		usleep(1000); /* distinct idle times */
	}
	/* all but the second-oldest ask something: fds[1] is idle the longest */
	for (int i = 0; i < CONTROL_MAX_CLIENTS; i++)
		if (i != 1)
			CHECK(starts(ask(&e, fds[i], "status\n"), "ok "));
	int sv[2];
	CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	CHECK_EQ(control_add_client(e.c, sv[0]), 0);
	CHECK_EQ(control_nr_clients(e.c), CONTROL_MAX_CLIENTS);
	char buf[128];
	drain(fds[1], buf, sizeof(buf));
	CHECK_STREQ(buf, "error closed to make room for a new connection\n");
	CHECK_EQ(recv(fds[1], buf, sizeof(buf), MSG_DONTWAIT), 0); /* closed */
	CHECK(starts(ask(&e, sv[1], "status\n"), "ok state=running"));
	CHECK(starts(ask(&e, fds[0], "status\n"), "ok state=running")); /* the others stay */
	close(sv[1]);
	for (int i = 0; i < CONTROL_MAX_CLIENTS; i++)
		close(fds[i]);
	run_loop(&e);
	CHECK_EQ(control_nr_clients(e.c), 0);
	env_destroy(&e);
}

/* A connection that sends nothing for the idle timeout is closed; one that
 * keeps asking is not. The busy one asks ten times as often as the limit,
 * so a loaded host's scheduling delays do not make it idle too. */
static void test_idle_timeout(void)
{
	struct env e;
	env_create_idle(&e, NULL, 1000);
	int idle = add_pair(&e), busy = add_pair(&e);
	for (int i = 0; i < 15; i++) {
		CHECK(starts(ask(&e, busy, "status\n"), "ok "));
		usleep(100 * 1000);
	}
	run_loop(&e);
	char buf[128];
	drain(idle, buf, sizeof(buf));
	CHECK_STREQ(buf, "error idle for too long: closing\n");
	CHECK_EQ(recv(idle, buf, sizeof(buf), MSG_DONTWAIT), 0);
	CHECK_EQ(control_nr_clients(e.c), 1);
	CHECK(starts(ask(&e, busy, "status\n"), "ok "));
	close(idle);
	close(busy);
	env_destroy(&e);
}

static int connect_to(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -errno;
	}
	return fd;
}

/* Another VM on the same path, caught between bind() and listen(): its
 * socket looks stale to connect(), but it holds PATH.lock, so it is left
 * alone. Once the lock is free, a socket nobody listens on is replaced. */
static void test_lock(void)
{
	char dir[] = "/tmp/kvmrun-test-ctl-XXXXXX";
	CHECK(mkdtemp(dir) != NULL);
	char path[64], lock[80];
	snprintf(path, sizeof(path), "%s/ctl.sock", dir);
	snprintf(lock, sizeof(lock), "%s.lock", path);
	int lfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	CHECK(lfd >= 0);
	CHECK_EQ(flock(lfd, LOCK_EX), 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	int other = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK_EQ(bind(other, (struct sockaddr *)&sa, sizeof(sa)), 0);
	struct stat before, after;
	CHECK_EQ(stat(path, &before), 0);
	struct env e;
	memset(&e, 0, sizeof(e));
	CHECK_EQ(evloop_create(&e.loop), 0);
	log_init(&e.lg, LOG_ERROR, "test");
	e.lg.fd = -1;
	struct control_params p = { .path = path, .loop = e.loop, .log = &e.lg,
				    .ops = &fake_ops, .cookie = &e.f };
	struct control *c = NULL;
	CHECK_EQ(control_create(&p, &c), -EADDRINUSE);
	CHECK(c == NULL);
	CHECK_EQ(stat(path, &after), 0);
	CHECK_EQ(after.st_ino, before.st_ino); /* the other VM's socket is still there */
	CHECK_EQ(stat(lock, &after), 0);       /* and its lock file */
	/* it goes away without cleaning up: its socket is stale now */
	close(other);
	close(lfd);
	CHECK_EQ(control_create(&p, &c), 0);
	int fd = connect_to(path); /* the new socket, listening */
	CHECK(fd >= 0);
	run_loop(&(struct env){ .loop = e.loop });
	CHECK_EQ(control_nr_clients(c), 1);
	close(fd);
	/* a second server while the first runs: refused, nothing touched */
	CHECK_EQ(stat(path, &before), 0);
	struct control *c2 = NULL;
	CHECK_EQ(control_create(&p, &c2), -EADDRINUSE);
	CHECK_EQ(stat(path, &after), 0);
	CHECK_EQ(before.st_ino, after.st_ino);
	fd = connect_to(path);
	CHECK(fd >= 0);
	close(fd);
	control_destroy(c);
	CHECK_EQ(stat(path, &after), -1);
	CHECK_EQ(stat(lock, &after), -1); /* the lock file goes with it */
	/* a symbolic link as the lock file is not followed */
	CHECK_EQ(symlink("/etc/passwd", lock), 0);
	CHECK_EQ(control_create(&p, &c2), -ELOOP);
	unlink(lock);
	evloop_destroy(e.loop);
	rmdir(dir);
}

/* Calls of chmod(2) by path from kvmrun's code: the socket's mode must be
 * set on the socket itself. (The test binary's own chmod and fchmodat
 * take the place of libc's for the library linked into it.) */
static unsigned chmod_by_path;

int chmod(const char *path, mode_t mode)
{
	chmod_by_path++;
	return (int)syscall(SYS_fchmodat, AT_FDCWD, path, mode, 0);
}

int fchmodat(int dirfd, const char *path, mode_t mode, int flags)
{
	chmod_by_path++;
	return (int)syscall(SYS_fchmodat, dirfd, path, mode, flags);
}

/* The socket is 0600 from the moment it exists, even with a umask that
 * takes nothing away, and no path is chmod()ed. */
static void test_socket_mode(void)
{
	char dir[] = "/tmp/kvmrun-test-ctl-XXXXXX";
	CHECK(mkdtemp(dir) != NULL);
	char path[64];
	snprintf(path, sizeof(path), "%s/ctl.sock", dir);
	mode_t old = umask(0);
	chmod_by_path = 0;
	struct env e;
	env_create(&e, path);
	umask(old);
	CHECK_EQ(chmod_by_path, 0);
	struct stat st;
	CHECK_EQ(lstat(path, &st), 0);
	CHECK_EQ(st.st_mode & 0777, 0600);
	CHECK_EQ(lstat(e.c ? path : "", &st), 0);
	char lock[80];
	snprintf(lock, sizeof(lock), "%s.lock", path);
	CHECK_EQ(lstat(lock, &st), 0);
	CHECK_EQ(st.st_mode & 0777, 0600);
	env_destroy(&e);
	rmdir(dir);
}

/* A process of another user that gets to the socket (its directory and
 * mode opened up by mistake) is refused: SO_PEERCRED. Needs root. */
static void test_peer_uid(void)
{
	if (geteuid() != 0) {
		printf("  skip test_peer_uid: needs root to connect as another user\n");
		return;
	}
	char dir[] = "/tmp/kvmrun-test-ctl-XXXXXX";
	CHECK(mkdtemp(dir) != NULL);
	CHECK_EQ(chmod(dir, 0755), 0);
	char path[64];
	snprintf(path, sizeof(path), "%s/ctl.sock", dir);
	struct env e;
	env_create(&e, path);
	CHECK_EQ(chmod(path, 0666), 0); /* the mistake */
	int pfd[2];
	CHECK_EQ(pipe(pfd), 0);
	pid_t pid = fork();
	if (pid == 0) {
		char buf[128] = "no answer";
		if (setgid(65534) < 0 || setuid(65534) < 0)
			_exit(2);
		int fd = connect_to(path);
		if (fd < 0)
			snprintf(buf, sizeof(buf), "connect: %s", strerror(-fd));
		else {
			/* no request: it is answered at once, and a request the
			 * server does not read would turn its close into a reset */
			struct pollfd pf = { .fd = fd, .events = POLLIN };
			if (poll(&pf, 1, 5000) == 1) {
				ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
				buf[n > 0 ? n : 0] = 0;
			}
		}
		if (write(pfd[1], buf, strlen(buf)) < 0)
			_exit(3);
		_exit(0);
	}
	close(pfd[1]);
	char got[128] = "";
	for (int i = 0; i < 100; i++) {
		evloop_run_once(e.loop, 20);
		struct pollfd pf = { .fd = pfd[0], .events = POLLIN };
		if (poll(&pf, 1, 0) == 1)
			break;
	}
	ssize_t n = read(pfd[0], got, sizeof(got) - 1);
	got[n > 0 ? n : 0] = 0;
	int status = 0;
	waitpid(pid, &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CHECK_STREQ(got, "error permission denied\n");
	CHECK_EQ(control_nr_clients(e.c), 0);
	close(pfd[0]);
	env_destroy(&e);
	rmdir(dir);
}

static void test_execute_and_sizes(void)
{
	struct env e;
	env_create(&e, NULL);
	char r[CONTROL_MAX_RESPONSE];
	control_execute(e.c, "balloon target=2G", r, sizeof(r));
	CHECK(starts(r, "error balloon: target=2G is more than guest RAM (mem=512M)"));
	control_execute(e.c, "stop", r, sizeof(r));
	CHECK_STREQ(r, "ok stopping");
	CHECK_EQ(e.f.stops, 1);
	env_destroy(&e);

	char s[32];
	CHECK_STREQ(config_fmt_size(0, s, sizeof(s)), "0");
	CHECK_STREQ(config_fmt_size(4097, s, sizeof(s)), "4097");
	CHECK_STREQ(config_fmt_size(1536 * 1024, s, sizeof(s)), "1536K");
	CHECK_STREQ(config_fmt_size(256ull << 20, s, sizeof(s)), "256M");
	CHECK_STREQ(config_fmt_size(3ull << 30, s, sizeof(s)), "3G");
	CHECK_STREQ(config_fmt_size(2ull << 40, s, sizeof(s)), "2T");
}

static void test_proc_parsers(void)
{
	static const char smaps[] =
		"00400000-00452000 r-xp 00000000 08:02 173521 /usr/bin/kvmrun\n"
		"Size:                328 kB\n"
		"Rss:                 300 kB\n"
		"7f0000000000-7f0010000000 rw-p 00000000 00:00 0 \n"
		"Size:             262144 kB\n"
		"Rss:              102400 kB\n"
		"AnonHugePages:     40960 kB\n"
		"Shared_Hugetlb:        0 kB\n"
		"Private_Hugetlb:       0 kB\n"
		"Swap:                  4 kB\n"
		"7f0010000000-7f0020000000 rw-s 00000000 00:0f 1 /memfd:vm (deleted)\n"
		"Rss:                   0 kB\n"
		"Shared_Hugetlb:     4096 kB\n"
		"7fff00000000-7fff00021000 rw-p 00000000 00:00 0 [stack]\n"
		"Rss:                  16 kB\n";
	FILE *f = fmemopen((void *)smaps, sizeof(smaps) - 1, "r");
	struct ram_stats m;
	memset(&m, 0, sizeof(m));
	CHECK_EQ(ram_stats_scan_smaps(f, 0x7f0000000000ull, 0x7f0020000000ull, &m), 0);
	CHECK_EQ(m.rss, (102400ull + 4096) << 10);
	CHECK_EQ(m.hugetlb, 4096ull << 10);
	CHECK_EQ(m.thp, 40960ull << 10);
	CHECK_EQ(m.swap, 4096);
	fclose(f);
	f = fmemopen((void *)smaps, sizeof(smaps) - 1, "r");
	CHECK_EQ(ram_stats_scan_smaps(f, 0x1000, 0x2000, &m), -ENOENT);
	fclose(f);

	static const char numa[] =
		"00400000 default file=/usr/bin/kvmrun mapped=82 N0=82\n"
		"7f0000000000 bind:0 anon=25600 dirty=25600 N0=25000 N1=600 kernelpagesize_kB=4\n"
		"7f0008000000 bind:0 anon=10 N1=10 kernelpagesize_kB=4\n";
	f = fmemopen((void *)numa, sizeof(numa) - 1, "r");
	memset(&m, 0, sizeof(m));
	CHECK_EQ(ram_stats_scan_numa_maps(f, 0x7f0000000000ull, 0x7f0020000000ull, &m), 0);
	CHECK_STREQ(m.numa_policy, "bind:0");
	CHECK_EQ(m.node_pages[0], 25000);
	CHECK_EQ(m.node_pages[1], 610);
	fclose(f);
}

int main(void)
{
	RUN(test_commands);
	RUN(test_malformed);
	RUN(test_long_line);
	RUN(test_slow_reader);
	RUN(test_socket_path);
	RUN(test_full_makes_room);
	RUN(test_idle_timeout);
	RUN(test_lock);
	RUN(test_socket_mode);
	RUN(test_peer_uid);
	RUN(test_execute_and_sizes);
	RUN(test_proc_parsers);
	return unit_done();
}
