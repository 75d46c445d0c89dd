/* Logging (lib/log.c): the line format with and without a VM name, level
 * filtering, one write per line (cut to the buffer, never unterminated),
 * level names, and the rate limit a hostile guest meets. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "unit.h"
#include "lib/log.h"

/* A logger writing into a pipe, and what it wrote. */
struct cap {
	int fd[2];
	struct logger lg;
	char buf[8192];
};

static void cap_open(struct cap *c, enum log_level level, const char *vm)
{
	CHECK_EQ(pipe2(c->fd, O_NONBLOCK | O_CLOEXEC), 0);
	log_init(&c->lg, level, vm);
	CHECK_EQ(c->lg.fd, STDERR_FILENO);
	c->lg.fd = c->fd[1];
}

/* Everything written since the last call, NUL-terminated. */
static const char *cap_read(struct cap *c)
{
	ssize_t n = read(c->fd[0], c->buf, sizeof(c->buf) - 1);
	c->buf[n > 0 ? n : 0] = '\0';
	return c->buf;
}

static void cap_close(struct cap *c)
{
	close(c->fd[0]);
	close(c->fd[1]);
}

static void test_format_and_levels(void)
{
	struct cap c;
	cap_open(&c, LOG_WARN, "vm0");
	log_err(&c.lg, "disk0", "opening %s: %s", "/x", "No such file or directory");
	CHECK_STREQ(cap_read(&c), "kvmrun[vm0]: error: disk0: opening /x: No such file or directory\n");
	log_warn(&c.lg, "net0", "w %d", 1);
	CHECK_STREQ(cap_read(&c), "kvmrun[vm0]: warn: net0: w 1\n");
	/* above the level: nothing, not even a newline */
	log_info(&c.lg, "net0", "info");
	log_debug(&c.lg, "net0", "debug");
	CHECK_STREQ(cap_read(&c), "");
	c.lg.level = LOG_DEBUG;
	log_debug(&c.lg, "x", "d");
	CHECK_STREQ(cap_read(&c), "kvmrun[vm0]: debug: x: d\n");
	c.lg.vm_name = NULL;
	log_info(&c.lg, "x", "no name");
	CHECK_STREQ(cap_read(&c), "kvmrun: info: x: no name\n");
	cap_close(&c);
}

static void test_long_line_is_cut_and_terminated(void)
{
	struct cap c;
	cap_open(&c, LOG_ERROR, "vm");
	char big[3000];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	log_err(&c.lg, "x", "%s", big);
	const char *s = cap_read(&c);
	size_t n = strlen(s);
	CHECK(n > 1000 && n <= 1024);
	CHECK_EQ(s[n - 1], '\n');
	CHECK(strchr(s, '\n') == s + n - 1); /* one line */
	CHECK(strncmp(s, "kvmrun[vm]: error: x: aaa", 25) == 0);
	/* a name longer than the whole buffer still gives one terminated line */
	char name[1500];
	memset(name, 'n', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	c.lg.vm_name = name;
	log_err(&c.lg, "x", "tail");
	s = cap_read(&c);
	n = strlen(s);
	CHECK(n > 0 && n <= 1024);
	CHECK_EQ(s[n - 1], '\n');
	CHECK(strchr(s, '\n') == s + n - 1);
	cap_close(&c);
}

static void test_level_names(void)
{
	enum log_level l = LOG_ERROR;
	static const char *const names[] = { "error", "warn", "info", "debug" };
	for (unsigned i = 0; i < 4; i++) {
		CHECK_STREQ(log_level_name((enum log_level)i), names[i]);
		CHECK_EQ(log_level_parse(names[i], &l), 0);
		CHECK_EQ(l, i);
	}
	CHECK_STREQ(log_level_name((enum log_level)4), "?");
	CHECK_STREQ(log_level_name((enum log_level)-1), "?");
	l = LOG_INFO;
	CHECK_EQ(log_level_parse("WARN", &l), -EINVAL);
	CHECK_EQ(log_level_parse("", &l), -EINVAL);
	CHECK_EQ(log_level_parse("warning", &l), -EINVAL);
	CHECK_EQ(l, LOG_INFO); /* untouched on failure */
}

/* One line per second at most; the next one says how many were dropped. */
static void test_ratelimit(void)
{
	struct cap c;
	cap_open(&c, LOG_WARN, "vm");
	struct log_ratelimit rl = { 0 };
	log_ratelimited(&c.lg, &rl, "blk", "bad request %d", 1);
	CHECK_STREQ(cap_read(&c), "kvmrun[vm]: warn: blk: bad request 1\n");
	for (int i = 2; i <= 100; i++)
		log_ratelimited(&c.lg, &rl, "blk", "bad request %d", i);
	CHECK_STREQ(cap_read(&c), "");
	CHECK_EQ(rl.suppressed, 99);
	/* a second later (moved back in time rather than slept) */
	rl.last_ns -= 1000000001ull;
	log_ratelimited(&c.lg, &rl, "blk", "bad request %d", 101);
	CHECK_STREQ(cap_read(&c), "kvmrun[vm]: warn: blk: 99 similar messages suppressed\n"
				  "kvmrun[vm]: warn: blk: bad request 101\n");
	CHECK_EQ(rl.suppressed, 0);
	/* at level error the lines are counted and dropped all the same */
	c.lg.level = LOG_ERROR;
	rl.last_ns -= 1000000001ull;
	log_ratelimited(&c.lg, &rl, "blk", "quiet");
	log_ratelimited(&c.lg, &rl, "blk", "quiet");
	CHECK_STREQ(cap_read(&c), "");
	CHECK_EQ(rl.suppressed, 1);
	cap_close(&c);
}

/* A sink gets each line (no newline) with its level instead of the fd;
 * fd -1 without a sink drops lines (a library that must not write to its
 * caller's stderr). */
struct sunk {
	unsigned n;
	enum log_level level;
	char line[1100];
};

static void sink(void *cookie, enum log_level level, const char *line)
{
	struct sunk *s = cookie;
	s->n++;
	s->level = level;
	snprintf(s->line, sizeof(s->line), "%s", line);
}

static void test_sink_and_no_fd(void)
{
	struct cap c;
	cap_open(&c, LOG_INFO, "vm1");
	CHECK(c.lg.sink == NULL);
	struct sunk got = { 0 };
	c.lg.sink = sink;
	c.lg.sink_cookie = &got;
	log_warn(&c.lg, "net0", "w %d", 2);
	CHECK_EQ(got.n, 1);
	CHECK_EQ(got.level, LOG_WARN);
	CHECK_STREQ(got.line, "kvmrun[vm1]: warn: net0: w 2");
	log_debug(&c.lg, "x", "filtered");
	CHECK_EQ(got.n, 1);
	CHECK_STREQ(cap_read(&c), ""); /* nothing reached the fd */
	c.lg.sink = NULL;
	int wfd = c.lg.fd;
	c.lg.fd = -1;
	log_err(&c.lg, "x", "dropped");
	CHECK_EQ(got.n, 1);
	c.lg.fd = wfd;
	CHECK_STREQ(cap_read(&c), "");
	cap_close(&c);
}

int main(void)
{
	RUN(test_sink_and_no_fd);
	RUN(test_format_and_levels);
	RUN(test_long_line_is_cut_and_terminated);
	RUN(test_level_names);
	RUN(test_ratelimit);
	return unit_done();
}
