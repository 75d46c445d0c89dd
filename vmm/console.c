/* The serial console's host side: stdio with a raw terminal, a file, or
 * nothing, in front of the board's UART. */
#include "vmm/console.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "devices/ns16550.h"
#include "lib/exitcode.h"

#define CTRL_A 0x01

int console_open(struct console *c, const struct vm_config *cfg, const struct logger *log)
{
	memset(c, 0, sizeof(*c));
	c->cfg = cfg;
	c->log = log;
	c->owned_fd = -1;
	switch (cfg->serial) {
	case SERIAL_STDIO:
		c->out_fd = STDOUT_FILENO;
		return 0;
	case SERIAL_NONE:
		c->out_fd = -1;
		return 0;
	case SERIAL_FILE:
		break;
	}
	/* The console may carry secrets: 0600 (and the umask). A symbolic
	 * link is not followed (a link planted where a CI job writes its log
	 * must not make kvmrun truncate what it points to); O_NONBLOCK keeps
	 * a FIFO from stalling the open, and a slow one the vCPUs. */
	c->owned_fd = open(cfg->serial_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC |
			   O_NOFOLLOW | O_NOCTTY | O_NONBLOCK, 0600);
	if (c->owned_fd < 0) {
		int e = errno;
		log_err(log, "serial", "serial=file:%s: %s", cfg->serial_path,
			e == ELOOP ? "is a symbolic link (not followed: name the file itself)"
				   : strerror(e));
		return -e;
	}
	c->out_fd = c->owned_fd;
	return 0;
}

uint64_t console_out_limit(const struct console *c)
{
	/* a guest printing in a loop must not fill the host's disk */
	return c->cfg->serial == SERIAL_FILE ? c->cfg->serial_max_size : 0;
}

void console_close(struct console *c)
{
	if (c->owned_fd >= 0)
		close(c->owned_fd);
	c->owned_fd = c->out_fd = -1;
}

/* Feeds what the UART has room for; the rest waits in rx_pending. */
static void serial_flush_pending(struct console *c)
{
	size_t took = ns16550_input(c->uart, c->rx_pending, c->rx_pending_len);
	memmove(c->rx_pending, c->rx_pending + took, c->rx_pending_len - took);
	c->rx_pending_len -= took;
}

/* Ctrl-A x quits (like QEMU's -serial stdio); Ctrl-A Ctrl-A sends one Ctrl-A. */
static size_t serial_filter_escape(struct console *c, uint8_t *buf, size_t n)
{
	size_t w = 0;
	for (size_t i = 0; i < n; i++) {
		if (c->escape_pending) {
			c->escape_pending = false;
			if (buf[i] == 'x') {
				c->request_exit(c->cookie, EXIT_SIGNAL_BASE + SIGINT, "Ctrl-A x on the console");
				return w;
			}
			if (buf[i] != CTRL_A)
				continue;
		} else if (buf[i] == CTRL_A && c->term_raw) {
			c->escape_pending = true;
			continue;
		}
		buf[w++] = buf[i];
	}
	return w;
}

static void on_stdin(void *cookie, uint32_t events)
{
	struct console *c = cookie;
	uint8_t buf[sizeof(c->rx_pending)];
	ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
	if (n <= 0) {
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		/* EOF or error: the console has no more input to give */
		evloop_del(c->loop, STDIN_FILENO);
		c->stdin_on = false;
		return;
	}
	size_t len = serial_filter_escape(c, buf, (size_t)n);
	memcpy(c->rx_pending, buf, len);
	c->rx_pending_len = len;
	serial_flush_pending(c);
	/* The guest is not reading: stop reading stdin until it has room
	 * (console_poll), so the input is not lost and we do not spin. */
	if (c->rx_pending_len)
		evloop_mod(c->loop, STDIN_FILENO, 0);
}

void console_poll(struct console *c)
{
	/* output a slow reader did not take yet (the UART holds it) */
	if (c->uart)
		ns16550_flush(c->uart);
	if (!c->stdin_on || c->rx_pending_len == 0)
		return;
	serial_flush_pending(c);
	if (c->rx_pending_len == 0)
		evloop_mod(c->loop, STDIN_FILENO, EPOLLIN);
}

static void terminal_make_raw(struct console *c)
{
	if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &c->term_saved) < 0)
		return;
	struct termios raw = c->term_saved;
	cfmakeraw(&raw);
	raw.c_oflag |= OPOST | ONLCR; /* keep the host's line endings sane */
	if (tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0)
		c->term_raw = true;
}

int console_start(struct console *c, struct evloop *loop, struct ns16550 *uart,
		  void (*request_exit)(void *cookie, int code, const char *why), void *cookie)
{
	c->loop = loop;
	c->uart = uart;
	c->request_exit = request_exit;
	c->cookie = cookie;
	if (c->cfg->serial != SERIAL_STDIO)
		return 0;
	/* Input is optional: with no usable stdin the guest simply gets none. */
	if (evloop_add(c->loop, STDIN_FILENO, EPOLLIN, on_stdin, c) < 0)
		return 0;
	c->stdin_on = true;
	terminal_make_raw(c);
	return 0;
}

void console_stop(struct console *c)
{
	if (c->uart) {
		uint64_t lost = ns16550_flush(c->uart) + ns16550_dropped(c->uart);
		if (lost)
			log_warn(c->log, "serial", "%llu bytes of console output were dropped "
				 "(not read in time, or past serial.max_size)", (unsigned long long)lost);
	}
	if (c->stdin_on)
		evloop_del(c->loop, STDIN_FILENO);
	c->stdin_on = false;
	if (c->term_raw)
		tcsetattr(STDIN_FILENO, TCSANOW, &c->term_saved);
	c->term_raw = false;
}
