/* The serial console's host side: where the board's UART writes (stdout,
 * serial=file:PATH, or nowhere) and, for serial=stdio, stdin fed into it
 * with the terminal in raw mode (Ctrl-A x quits, Ctrl-A Ctrl-A sends one
 * Ctrl-A). All on the VM's thread. */
#ifndef KVMRUN_CONSOLE_H
#define KVMRUN_CONSOLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <termios.h>

#include "lib/evloop.h"
#include "lib/log.h"
#include "vmm/config.h"

struct ns16550;

struct console {
	const struct vm_config *cfg;
	const struct logger *log;
	int out_fd;                   /* the UART's output: -1 for none */
	int owned_fd;                 /* serial=file's, closed by console_close */
	/* set by console_start */
	struct evloop *loop;
	struct ns16550 *uart;
	void (*request_exit)(void *cookie, int code, const char *why);
	void *cookie;
	bool stdin_on;                /* reading stdin for the UART */
	bool term_raw;                /* stdin's termios changed */
	struct termios term_saved;
	bool escape_pending;          /* saw Ctrl-A on stdin */
	uint8_t rx_pending[256];      /* input the UART had no room for */
	size_t rx_pending_len;
};

/* Opens the output per cfg->serial (a file is created 0600, not through a
 * symbolic link); sets c->out_fd. Before the board's UART is created.
 * Returns 0 or -errno (logged). console_close undoes it either way. */
__attribute__((warn_unused_result))
int console_open(struct console *c, const struct vm_config *cfg, const struct logger *log);
/* How many bytes the UART may write to out_fd: serial.max_size for a
 * file, 0 (unlimited) otherwise. */
uint64_t console_out_limit(const struct console *c);
/* With serial=stdio, feeds stdin into @uart from the event loop; Ctrl-A x
 * calls @request_exit. Returns 0 (input is optional). */
__attribute__((warn_unused_result))
int console_start(struct console *c, struct evloop *loop, struct ns16550 *uart,
		  void (*request_exit)(void *cookie, int code, const char *why), void *cookie);
/* Called on every event-loop round (at least every 100 ms): writes output
 * a slow reader did not take yet, retries input the UART had no room for. */
void console_poll(struct console *c);
/* After the vCPUs stopped: a last flush of the output, and a warning with
 * the count of bytes dropped, if any; the terminal is restored. */
void console_stop(struct console *c);
/* After the UART is destroyed. */
void console_close(struct console *c);

#endif
