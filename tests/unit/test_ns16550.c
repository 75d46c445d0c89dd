/* The 16550A UART through the PIO bus: what Linux's 8250 driver probes. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mem/layout.h"
#include "vmm/board.h"
#include "devices/bus.h"
#include "devices/ns16550.h"
#include "unit.h"

#define RBR 0
#define THR 0
#define IER 1
#define IIR 2
#define FCR 2
#define LCR 3
#define MCR 4
#define LSR 5
#define MSR 6
#define SCR 7

struct irq_probe {
	int level;
	unsigned changes;
	unsigned gsi;
};

static void irq_set(void *cookie, unsigned gsi, int level)
{
	struct irq_probe *p = cookie;
	p->level = level;
	p->changes++;
	p->gsi = gsi;
}

struct rig {
	struct bus pio;
	struct irq_probe irq;
	struct ns16550 *u;
	int pipe[2];
	unsigned ready_calls;
};

static void on_rx_ready(void *cookie)
{
	struct rig *r = cookie;
	r->ready_calls++;
}

static void rig_init(struct rig *r, bool with_pipe)
{
	memset(r, 0, sizeof(*r));
	bus_init(&r->pio, "pio");
	r->pipe[0] = r->pipe[1] = -1;
	if (with_pipe) {
		CHECK_EQ(pipe2(r->pipe, O_NONBLOCK), 0);
	}
	struct ns16550_params p = {
		.irq = { .set = irq_set, .cookie = &r->irq, .gsi = GSI_COM1 },
		.out_fd = r->pipe[1], .log = NULL, .name = "com1",
		.rx_ready = on_rx_ready, .rx_cookie = r,
	};
	CHECK_EQ(ns16550_create(&r->pio, PORT_COM1, &p, &r->u), 0);
}

static void rig_fini(struct rig *r)
{
	ns16550_destroy(r->u);
	if (r->pipe[0] >= 0)
		close(r->pipe[0]);
	if (r->pipe[1] >= 0)
		close(r->pipe[1]);
}

static uint8_t in(struct rig *r, unsigned reg)
{
	uint8_t v = 0;
	CHECK(bus_read(&r->pio, PORT_COM1 + reg, &v, 1));
	return v;
}

static void out(struct rig *r, unsigned reg, uint8_t v)
{
	CHECK(bus_write(&r->pio, PORT_COM1 + reg, &v, 1));
}

static void test_registration(void)
{
	struct rig r;
	rig_init(&r, false);
	const struct bus_range *br = bus_find(&r.pio, PORT_COM1, 1);
	CHECK(br != NULL);
	CHECK_EQ(br->base, PORT_COM1);
	CHECK_EQ(br->len, 8);
	/* a second UART on the same ports is refused */
	struct ns16550 *u2 = NULL;
	struct ns16550_params p = { .out_fd = -1 };
	CHECK_EQ(ns16550_create(&r.pio, PORT_COM1 + 4, &p, &u2), -EEXIST);
	CHECK(u2 == NULL);
	rig_fini(&r);
}

static void test_output_reaches_pipe(void)
{
	struct rig r;
	rig_init(&r, true);
	const char *msg = "hello\n";
	for (const char *c = msg; *c; c++)
		out(&r, THR, (uint8_t)*c);
	char buf[32] = {0};
	CHECK_EQ(read(r.pipe[0], buf, sizeof(buf)), 6);
	CHECK_STREQ(buf, msg);
	CHECK_EQ(in(&r, LSR) & 0x60, 0x60); /* THRE and TEMT */
	CHECK_EQ(ns16550_dropped(r.u), 0);
	rig_fini(&r);
}

/* Reads everything the pipe holds now into @buf; returns the bytes read. */
static size_t drain_pipe(int fd, uint8_t *buf, size_t cap)
{
	size_t got = 0;
	int fl = fcntl(fd, F_GETFL);
	fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	for (;;) {
		ssize_t n = read(fd, buf + got, cap - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	fcntl(fd, F_SETFL, fl);
	return got;
}

/* Output nobody reads: the pipe fills, then the output buffer, then bytes
 * are dropped and counted; once the reader catches up, a flush writes the
 * held bytes out in order. */
static void test_output_full_pipe_drops(void)
{
	struct rig r;
	rig_init(&r, true);
	int cap = fcntl(r.pipe[1], F_GETPIPE_SZ);
	CHECK(cap > 0);
	for (int i = 0; i < cap; i++)
		out(&r, THR, 'x');
	CHECK_EQ(ns16550_dropped(r.u), 0);
	for (unsigned i = 0; i < NS16550_TX_BUF; i++)
		out(&r, THR, (uint8_t)('a' + i % 26)); /* pipe full: held */
	CHECK_EQ(ns16550_dropped(r.u), 0);
	CHECK_EQ(ns16550_flush(r.u), NS16550_TX_BUF);
	out(&r, THR, 'y'); /* buffer full too: dropped, no block */
	out(&r, THR, 'z');
	CHECK_EQ(ns16550_dropped(r.u), 2);
	CHECK_EQ(in(&r, LSR) & 0x60, 0x60);
	static uint8_t got[4 * NS16550_TX_BUF];
	CHECK_EQ(drain_pipe(r.pipe[0], got, sizeof(got)), (size_t)cap);
	CHECK_EQ(ns16550_flush(r.u), NS16550_TX_BUF - (size_t)cap);
	size_t n = drain_pipe(r.pipe[0], got, sizeof(got));
	while (ns16550_flush(r.u))
		n += drain_pipe(r.pipe[0], got + n, sizeof(got) - n);
	CHECK_EQ(n, NS16550_TX_BUF);
	bool in_order = true;
	for (unsigned i = 0; i < n; i++)
		in_order &= got[i] == (uint8_t)('a' + i % 26);
	CHECK(in_order);
	out(&r, THR, '!'); /* written at once again */
	CHECK_EQ(drain_pipe(r.pipe[0], got, sizeof(got)), 1);
	CHECK_EQ(got[0], '!');

	/* the output buffer is a ring: held bytes wrap around its end */
	static uint8_t all[4 * NS16550_TX_BUF];
	size_t have = 0;
	for (int i = 0; i < cap; i++)
		out(&r, THR, 'x');
	unsigned seq = 0;
	for (unsigned i = 0; i < NS16550_TX_BUF; i++)
		out(&r, THR, (uint8_t)seq++); /* held from the ring's start */
	CHECK_EQ(read(r.pipe[0], all, 4096), 4096);
	have = 4096;
	CHECK_EQ(ns16550_flush(r.u), NS16550_TX_BUF - 4096); /* read position moved */
	for (int i = 0; i < 4096; i++)
		out(&r, THR, (uint8_t)seq++); /* stored past the end: from the start */
	uint64_t dropped = ns16550_dropped(r.u);
	have += drain_pipe(r.pipe[0], all + have, sizeof(all) - have);
	/* the reader caught up: the next byte pushes the held ones out ahead
	 * of it, no flush needed */
	out(&r, THR, (uint8_t)seq++);
	size_t pushed = drain_pipe(r.pipe[0], all + have, sizeof(all) - have);
	CHECK(pushed > 0);
	have += pushed;
	while (ns16550_flush(r.u))
		have += drain_pipe(r.pipe[0], all + have, sizeof(all) - have);
	have += drain_pipe(r.pipe[0], all + have, sizeof(all) - have);
	CHECK_EQ(have, (size_t)cap + seq);
	CHECK_EQ(ns16550_dropped(r.u), dropped);
	in_order = true;
	for (size_t i = 0; i < have; i++)
		in_order &= all[i] == (i < (size_t)cap ? 'x' : (uint8_t)(i - (size_t)cap));
	CHECK(in_order);
	rig_fini(&r);
}

struct writer {
	struct rig *r;
	unsigned long bytes;
	volatile bool done;
};

static void *write_lots(void *arg)
{
	struct writer *w = arg;
	for (unsigned long i = 0; i < w->bytes; i++)
		out(w->r, THR, (uint8_t)i);
	w->done = true;
	return NULL;
}

/* Output fds as a harness hands them over: blocking, and nobody reading.
 * A vCPU writing THR must never wait for the reader (it would hold the
 * UART lock and defeat teardown, timeout= and signals). */
static void test_output_blocking_unread(void)
{
	for (int kind = 0; kind < 2; kind++) {
		struct rig r;
		memset(&r, 0, sizeof(r));
		bus_init(&r.pio, "pio");
		int fds[2];
		if (kind == 0)
			CHECK_EQ(pipe2(fds, O_CLOEXEC), 0);
		else
			CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
		CHECK(!(fcntl(fds[1], F_GETFL) & O_NONBLOCK));
		struct ns16550_params p = {
			.irq = { .set = irq_set, .cookie = &r.irq, .gsi = GSI_COM1 },
			.out_fd = fds[1], .name = "com1",
		};
		CHECK_EQ(ns16550_create(&r.pio, PORT_COM1, &p, &r.u), 0);
		/* the caller's description stays blocking: it is shared */
		CHECK(!(fcntl(fds[1], F_GETFL) & O_NONBLOCK));
		struct writer w = { .r = &r, .bytes = 1024ul * 1024 };
		pthread_t t;
		pthread_create(&t, NULL, write_lots, &w);
		for (int ms = 0; ms < 20000 && !w.done; ms++)
			usleep(1000);
		CHECK(w.done);
		if (!w.done) {
			fprintf(stderr, "  %s: the vCPU blocked in write: giving up\n",
				kind ? "socket" : "pipe");
			_exit(1); /* the writer thread cannot be joined */
		}
		pthread_join(t, NULL);
		CHECK(ns16550_dropped(r.u) > 0);
		CHECK(ns16550_dropped(r.u) < w.bytes);
		CHECK(ns16550_flush(r.u) <= NS16550_TX_BUF);
		/* what did arrive is the start of the output, in order */
		static uint8_t got[256 * 1024];
		size_t n = drain_pipe(fds[0], got, sizeof(got));
		CHECK(n > 0);
		bool in_order = true;
		for (size_t i = 0; i < n; i++)
			in_order &= got[i] == (uint8_t)i;
		CHECK(in_order);
		ns16550_destroy(r.u);
		r.u = NULL;
		close(fds[0]);
		close(fds[1]);
	}
}

static bool flushed;

static void *flush_once(void *arg)
{
	ns16550_flush(arg);
	__atomic_store_n(&flushed, true, __ATOMIC_RELEASE);
	return NULL;
}

/* Where /proc cannot reopen the pipe (here: a private mount namespace with
 * an empty /proc), each write is preceded by a zero-timeout poll: still
 * no wait. Needs root for the namespace; skipped without. */
static void test_output_blocking_no_proc(void)
{
	if (geteuid() != 0) {
		printf("  skip test_output_blocking_no_proc: needs root for a mount namespace\n");
		return;
	}
	pid_t pid = fork();
	if (pid == 0) {
		if (unshare(CLONE_NEWNS) < 0 ||
		    mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
		    mount("tmpfs", "/proc", "tmpfs", 0, NULL) < 0)
			_exit(77);
		struct rig r;
		memset(&r, 0, sizeof(r));
		bus_init(&r.pio, "pio");
		int fds[2];
		if (pipe2(fds, O_CLOEXEC) < 0)
			_exit(2);
		struct ns16550_params p = {
			.irq = { .set = irq_set, .cookie = &r.irq, .gsi = GSI_COM1 },
			.out_fd = fds[1], .name = "com1",
		};
		if (ns16550_create(&r.pio, PORT_COM1, &p, &r.u) < 0)
			_exit(3);
		struct writer w = { .r = &r, .bytes = 256ul * 1024 };
		pthread_t t;
		pthread_create(&t, NULL, write_lots, &w);
		for (int ms = 0; ms < 20000 && !w.done; ms++)
			usleep(1000);
		if (!w.done)
			_exit(4); /* blocked in write */
		pthread_join(t, NULL);
		/* the reader takes a little: a flush must write only what
		 * fits, not block on the rest */
		static uint8_t got[256 * 1024];
		if (read(fds[0], got, 4096) != 4096)
			_exit(6);
		pthread_create(&t, NULL, flush_once, r.u);
		for (int ms = 0; ms < 20000 && !__atomic_load_n(&flushed, __ATOMIC_ACQUIRE); ms++)
			usleep(1000);
		if (!__atomic_load_n(&flushed, __ATOMIC_ACQUIRE))
			_exit(7);
		pthread_join(t, NULL);
		size_t n = 4096 + drain_pipe(fds[0], got + 4096, sizeof(got) - 4096);
		bool in_order = n > 0;
		for (size_t i = 0; i < n; i++)
			in_order &= got[i] == (uint8_t)i;
		_exit(ns16550_dropped(r.u) > 0 && in_order ? 0 : 5);
	}
	int status = 0;
	CHECK_EQ(waitpid(pid, &status, 0), pid);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 77) {
		printf("  skip test_output_blocking_no_proc: no private mount namespace here\n");
		return;
	}
	CHECK(WIFEXITED(status));
	CHECK_EQ(WEXITSTATUS(status), 0);
}

/* out_limit: a file stops growing there, and the rest is counted. */
static void test_output_limit(void)
{
	struct rig r;
	memset(&r, 0, sizeof(r));
	bus_init(&r.pio, "pio");
	r.pipe[0] = r.pipe[1] = -1;
	FILE *f = tmpfile();
	CHECK(f != NULL);
	int lfd[2];
	CHECK_EQ(pipe2(lfd, O_NONBLOCK | O_CLOEXEC), 0);
	struct logger lg;
	log_init(&lg, LOG_WARN, "test");
	lg.fd = lfd[1];
	struct ns16550_params p = {
		.irq = { .set = irq_set, .cookie = &r.irq, .gsi = GSI_COM1 },
		.out_fd = fileno(f), .out_limit = 100, .out_limit_key = "serial.max_size",
		.log = &lg, .name = "com1",
	};
	CHECK_EQ(ns16550_create(&r.pio, PORT_COM1, &p, &r.u), 0);
	for (int i = 0; i < 150; i++)
		out(&r, THR, 'L');
	struct stat st;
	CHECK_EQ(fstat(fileno(f), &st), 0);
	CHECK_EQ(st.st_size, 100);
	CHECK_EQ(ns16550_dropped(r.u), 50);
	char msg[1024] = { 0 };
	CHECK(read(lfd[0], msg, sizeof(msg) - 1) > 0);
	CHECK(strstr(msg, "serial.max_size") != NULL);
	CHECK(strchr(msg, '\n') == strrchr(msg, '\n')); /* said once */
	ns16550_destroy(r.u);

	/* bytes that waited in the output buffer count towards it too */
	bus_init(&r.pio, "pio");
	CHECK_EQ(pipe2(r.pipe, O_NONBLOCK | O_CLOEXEC), 0);
	int cap = fcntl(r.pipe[1], F_GETPIPE_SZ);
	p.out_fd = r.pipe[1];
	p.out_limit = (uint64_t)cap + 100;
	CHECK_EQ(ns16550_create(&r.pio, PORT_COM1, &p, &r.u), 0);
	for (int i = 0; i < cap + 200; i++)
		out(&r, THR, 'P');
	CHECK_EQ(ns16550_dropped(r.u), 100);
	static uint8_t got[2 * NS16550_TX_BUF];
	size_t n = drain_pipe(r.pipe[0], got, sizeof(got));
	CHECK_EQ(ns16550_flush(r.u), 0);
	n += drain_pipe(r.pipe[0], got + n, sizeof(got) - n);
	out(&r, THR, 'P');
	n += drain_pipe(r.pipe[0], got + n, sizeof(got) - n);
	CHECK_EQ(n, (size_t)cap + 100);
	CHECK_EQ(ns16550_dropped(r.u), 101);
	rig_fini(&r);
	fclose(f);
	close(lfd[0]);
	close(lfd[1]);
}

static void test_discard_output(void)
{
	struct rig r;
	rig_init(&r, false);
	out(&r, THR, 'a');
	CHECK_EQ(ns16550_dropped(r.u), 0); /* -1 discards silently */
	rig_fini(&r);
}

/* The sequence of Linux's autoconfig(): IER probe, loopback MSR check,
 * FIFO detection, no EFR, no 64-byte FIFO, IER bits 4-7 not writable. */
static void test_linux_autoconfig(void)
{
	struct rig r;
	rig_init(&r, false);
	out(&r, IER, 0);
	CHECK_EQ(in(&r, IER) & 0x0f, 0);
	out(&r, IER, 0x0f);
	CHECK_EQ(in(&r, IER) & 0x0f, 0x0f);
	out(&r, IER, 0);

	out(&r, MCR, 0x10 | 0x0a); /* loop, OUT2, RTS */
	CHECK_EQ(in(&r, MSR) & 0xf0, 0x90);
	out(&r, MCR, 0);
	CHECK_EQ(in(&r, MSR) & 0xf0, 0xb0); /* DCD DSR CTS outside loopback */

	out(&r, LCR, 0xbf);
	out(&r, FCR, 0); /* "EFR" write lands in FCR */
	out(&r, LCR, 0);
	out(&r, FCR, 0x01);
	CHECK_EQ(in(&r, IIR) >> 6, 3); /* 16550A */
	CHECK_EQ(in(&r, IIR), 0xc1);

	out(&r, LCR, 0x80);
	CHECK(in(&r, IIR) != 0); /* no EFR behind DLAB */
	out(&r, LCR, 0);
	out(&r, FCR, 0x21);
	CHECK_EQ(in(&r, IIR) & 0x20, 0); /* not a 16750 */

	out(&r, IER, 0x40);
	CHECK_EQ(in(&r, IER) & 0x40, 0); /* not an XScale */
	CHECK(in(&r, LSR) != 0xff);

	out(&r, FCR, 0x00);
	CHECK_EQ(in(&r, IIR), 0x01); /* FIFO bits go with the FIFO */
	CHECK_EQ(r.irq.level, 0);
	rig_fini(&r);
}

static void test_scratch_and_dlab(void)
{
	struct rig r;
	rig_init(&r, true);
	out(&r, SCR, 0xa5);
	CHECK_EQ(in(&r, SCR), 0xa5);
	out(&r, SCR, 0x5a);
	CHECK_EQ(in(&r, SCR), 0x5a);

	out(&r, IER, 0x05);
	out(&r, LCR, 0x83); /* DLAB, 8N1 */
	out(&r, 0, 0x01);   /* DLL: 115200 */
	out(&r, 1, 0x00);   /* DLM */
	CHECK_EQ(in(&r, 0), 0x01);
	CHECK_EQ(in(&r, 1), 0x00);
	CHECK_EQ(in(&r, LCR), 0x83);
	out(&r, LCR, 0x03);
	CHECK_EQ(in(&r, IER), 0x05); /* untouched by divisor writes */
	char c;
	CHECK_EQ(read(r.pipe[0], &c, 1), -1); /* DLL write was not output */
	rig_fini(&r);
}

/* Linux's THRE test in serial8250_do_startup and the TX interrupt cycle. */
static void test_thre_interrupt(void)
{
	struct rig r;
	rig_init(&r, true);
	out(&r, FCR, 0x07);
	out(&r, IER, 0x02);
	CHECK_EQ(r.irq.level, 1);
	CHECK_EQ(r.irq.gsi, GSI_COM1);
	CHECK_EQ(in(&r, IIR), 0xc2);
	CHECK_EQ(r.irq.level, 0); /* reading IIR acknowledged it */
	CHECK_EQ(in(&r, IIR), 0xc1);
	out(&r, IER, 0);
	out(&r, IER, 0x02); /* re-enabling re-asserts: no UART_BUG_THRE */
	CHECK_EQ(r.irq.level, 1);
	CHECK_EQ(in(&r, IIR), 0xc2);
	CHECK_EQ(r.irq.level, 0);

	/* a THR write clears THRE; the byte leaves at once and THRE returns */
	out(&r, THR, 'A');
	CHECK_EQ(r.irq.level, 1);
	CHECK_EQ(in(&r, IIR), 0xc2);
	out(&r, IER, 0); /* stop_tx */
	CHECK_EQ(r.irq.level, 0);
	out(&r, THR, 'B');
	CHECK_EQ(r.irq.level, 0);
	CHECK_EQ(in(&r, IIR), 0xc1);
	rig_fini(&r);
}

static void test_loopback(void)
{
	struct rig r;
	rig_init(&r, true);
	out(&r, MCR, 0x10);
	CHECK_EQ(ns16550_rx_space(r.u), 0); /* receive line disconnected */
	uint8_t b = 'q';
	CHECK_EQ(ns16550_input(r.u, &b, 1), 0);
	out(&r, THR, 0x42);
	CHECK_EQ(in(&r, LSR) & 0x01, 1);
	CHECK_EQ(in(&r, RBR), 0x42);
	CHECK_EQ(in(&r, LSR) & 0x01, 0);
	char c;
	CHECK_EQ(read(r.pipe[0], &c, 1), -1); /* nothing went out */

	/* modem status deltas and their interrupt */
	in(&r, MSR);
	out(&r, IER, 0x08);
	out(&r, MCR, 0x10 | 0x01); /* DTR -> DSR */
	CHECK_EQ(in(&r, MSR), 0x20 | 0x02);
	CHECK_EQ(r.irq.level, 0); /* reading MSR cleared the delta */
	out(&r, MCR, 0x10 | 0x01 | 0x02);
	CHECK_EQ(r.irq.level, 1);
	CHECK_EQ(in(&r, IIR), 0x00);
	CHECK_EQ(in(&r, MSR) & 0x0f, 0x01);
	CHECK_EQ(r.irq.level, 0);

	/* leaving loopback lets input in again and owes an rx_ready */
	out(&r, IER, 0);
	out(&r, MCR, 0);
	CHECK_EQ(r.ready_calls, 1);
	CHECK_EQ(ns16550_rx_space(r.u), NS16550_RX_BUF);
	rig_fini(&r);
}

static void test_loopback_overrun(void)
{
	struct rig r;
	rig_init(&r, false);
	out(&r, MCR, 0x10);
	out(&r, IER, 0x04);
	for (unsigned i = 0; i < NS16550_RX_BUF; i++)
		out(&r, THR, (uint8_t)i);
	CHECK_EQ(r.irq.level, 0);
	out(&r, THR, 0xee);
	CHECK_EQ(r.irq.level, 1);
	CHECK_EQ(in(&r, IIR) & 0x0f, 0x06);
	CHECK_EQ(in(&r, LSR) & 0x03, 0x03); /* OE, DR */
	CHECK_EQ(in(&r, LSR) & 0x02, 0);    /* OE cleared by the read */
	CHECK_EQ(r.irq.level, 0);
	rig_fini(&r);
}

static void test_rx_interrupt(void)
{
	struct rig r;
	rig_init(&r, false);
	out(&r, FCR, 0x07);
	const uint8_t msg[] = "ok";
	CHECK_EQ(ns16550_input(r.u, msg, 2), 2);
	CHECK_EQ(r.irq.level, 0); /* not enabled yet */
	out(&r, IER, 0x01);
	CHECK_EQ(r.irq.level, 1);
	CHECK_EQ(in(&r, IIR), 0xc4);
	CHECK_EQ(in(&r, LSR) & 0x01, 1);
	CHECK_EQ(in(&r, RBR), 'o');
	CHECK_EQ(r.irq.level, 1);
	CHECK_EQ(in(&r, RBR), 'k');
	CHECK_EQ(r.irq.level, 0);
	CHECK_EQ(in(&r, IIR), 0xc1);
	CHECK_EQ(in(&r, LSR) & 0x01, 0);

	/* priority: RX data before THRE */
	out(&r, IER, 0x03);
	CHECK_EQ(ns16550_input(r.u, msg, 1), 1);
	CHECK_EQ(in(&r, IIR), 0xc4);
	CHECK_EQ(in(&r, IIR), 0xc4); /* THRE not acknowledged by that */
	in(&r, RBR);
	CHECK_EQ(in(&r, IIR), 0xc2);
	CHECK_EQ(in(&r, IIR), 0xc1);
	rig_fini(&r);
}

static void test_rx_flow_control(void)
{
	struct rig r;
	rig_init(&r, false);
	static uint8_t big[NS16550_RX_BUF + 100];
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)i;
	CHECK_EQ(ns16550_rx_space(r.u), NS16550_RX_BUF);
	CHECK_EQ(ns16550_input(r.u, big, sizeof(big)), NS16550_RX_BUF);
	CHECK_EQ(ns16550_rx_space(r.u), 0);
	CHECK_EQ(ns16550_input(r.u, big, 1), 0);
	/* order is kept, and rx_ready fires once half the buffer is free */
	unsigned i;
	for (i = 0; i < NS16550_RX_BUF / 2; i++) {
		CHECK_EQ(in(&r, RBR), (uint8_t)i);
		if (i + 1 < NS16550_RX_BUF / 2)
			CHECK_EQ(r.ready_calls, 0);
	}
	CHECK_EQ(r.ready_calls, 1);
	CHECK_EQ(ns16550_rx_space(r.u), NS16550_RX_BUF / 2);

	/* FCR clear drops the 16 bytes the FIFO holds, no more */
	out(&r, FCR, 0x03);
	CHECK_EQ(ns16550_rx_space(r.u), NS16550_RX_BUF / 2 + 16);
	CHECK_EQ(in(&r, RBR), (uint8_t)(i + 16));

	ns16550_reset(r.u);
	CHECK_EQ(ns16550_rx_space(r.u), NS16550_RX_BUF);
	CHECK_EQ(in(&r, LSR), 0x60);
	rig_fini(&r);
}

/* The receive buffer is a ring: input that arrives after the guest has
 * read some lands past the end and wraps to the start, and comes out in
 * order. */
static void test_rx_wrap(void)
{
	struct rig r;
	rig_init(&r, false);
	static uint8_t data[2 * NS16550_RX_BUF];
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 7 + i / 251);
	const size_t first = 100, consumed = 60;
	CHECK_EQ(ns16550_input(r.u, data, first), first);
	for (size_t i = 0; i < consumed; i++)
		CHECK_EQ(in(&r, RBR), data[i]);
	/* room for exactly what was read, plus what was never written */
	size_t room = NS16550_RX_BUF - (first - consumed);
	CHECK_EQ(ns16550_rx_space(r.u), room);
	CHECK_EQ(ns16550_input(r.u, data + first, room + 10), room);
	CHECK_EQ(ns16550_rx_space(r.u), 0);
	size_t bad = 0;
	for (size_t i = consumed; i < first + room; i++)
		bad += in(&r, RBR) != data[i];
	CHECK_EQ(bad, 0);
	CHECK_EQ(in(&r, LSR) & 0x01, 0);
	CHECK_EQ(ns16550_rx_space(r.u), NS16550_RX_BUF);
	/* and again around the ring, a byte at a time */
	for (size_t i = 0; i < 3 * NS16550_RX_BUF; i++) {
		uint8_t b = data[i % sizeof(data)];
		CHECK_EQ(ns16550_input(r.u, &b, 1), 1);
		if (i % 3 == 2)
			for (int k = 0; k < 3; k++)
				bad += in(&r, RBR) != data[(i - 2 + (size_t)k) % sizeof(data)];
	}
	CHECK_EQ(bad, 0);
	/* a FIFO clear (16 bytes) across the end of the ring */
	ns16550_reset(r.u); /* read position back at 0 */
	CHECK_EQ(ns16550_rx_space(r.u), NS16550_RX_BUF);
	CHECK_EQ(ns16550_input(r.u, data, NS16550_RX_BUF - 6), NS16550_RX_BUF - 6);
	for (size_t i = 0; i < NS16550_RX_BUF - 6; i++)
		in(&r, RBR); /* the read position is now 6 bytes from the end */
	CHECK_EQ(ns16550_input(r.u, data, 20), 20);
	out(&r, FCR, 0x03);
	for (size_t i = 16; i < 20; i++)
		bad += in(&r, RBR) != data[i];
	CHECK_EQ(bad, 0);
	CHECK_EQ(ns16550_rx_space(r.u), NS16550_RX_BUF);
	rig_fini(&r);
}

static void test_wide_access(void)
{
	struct rig r;
	rig_init(&r, false);
	/* a 2-byte write at LCR/MCR is two byte writes */
	uint16_t w = 0x0803;
	CHECK(bus_write(&r.pio, PORT_COM1 + LCR, &w, 2));
	CHECK_EQ(in(&r, LCR), 0x03);
	CHECK_EQ(in(&r, MCR), 0x08);
	rig_fini(&r);
}

#define STRESS_BYTES 2000

static void *stress_tx(void *arg)
{
	/* raw bus calls: the harness's counters are not thread-safe */
	struct rig *r = arg;
	uint8_t c = 'x', v;
	for (int i = 0; i < STRESS_BYTES; i++) {
		bus_write(&r->pio, PORT_COM1 + THR, &c, 1);
		bus_read(&r->pio, PORT_COM1 + IIR, &v, 1);
		bus_read(&r->pio, PORT_COM1 + LSR, &v, 1);
	}
	return NULL;
}

static void *stress_rx(void *arg)
{
	struct rig *r = arg;
	size_t got = 0;
	while (got < STRESS_BYTES) {
		uint8_t b = 'i';
		if (ns16550_input(r->u, &b, 1) == 1)
			got++;
	}
	return NULL;
}

/* vCPU threads and the event thread at once (run under TSan by hand). */
static void test_threads(void)
{
	struct rig r;
	rig_init(&r, true);
	out(&r, IER, 0x03);
	pthread_t t[3];
	pthread_create(&t[0], NULL, stress_tx, &r);
	pthread_create(&t[1], NULL, stress_tx, &r);
	pthread_create(&t[2], NULL, stress_rx, &r);
	unsigned read_back = 0;
	while (read_back < STRESS_BYTES)
		if (in(&r, LSR) & 0x01) {
			in(&r, RBR);
			read_back++;
		}
	for (int i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
	char buf[4096];
	ssize_t total = 0, n;
	while ((n = read(r.pipe[0], buf, sizeof(buf))) > 0)
		total += n;
	CHECK_EQ(total, 2 * STRESS_BYTES);
	CHECK_EQ(ns16550_dropped(r.u), 0);
	rig_fini(&r);
}

int main(void)
{
	RUN(test_registration);
	RUN(test_output_reaches_pipe);
	RUN(test_output_full_pipe_drops);
	RUN(test_output_blocking_unread);
	RUN(test_output_blocking_no_proc);
	RUN(test_output_limit);
	RUN(test_discard_output);
	RUN(test_linux_autoconfig);
	RUN(test_scratch_and_dlab);
	RUN(test_thre_interrupt);
	RUN(test_loopback);
	RUN(test_loopback_overrun);
	RUN(test_rx_interrupt);
	RUN(test_rx_flow_control);
	RUN(test_rx_wrap);
	RUN(test_wide_access);
	RUN(test_threads);
	return unit_done();
}
