/* 16550A UART. Register layout and interrupt rules from the National
 * Semiconductor PC16550D datasheet; see ns16550.h for what is modelled. */
#include "devices/ns16550.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* Register offsets (DLAB = LCR bit 7 switches 0/1 to the divisor latch) */
#define REG_RBR_THR_DLL 0
#define REG_IER_DLM     1
#define REG_IIR_FCR     2
#define REG_LCR         3
#define REG_MCR         4
#define REG_LSR         5
#define REG_MSR         6
#define REG_SCR         7

#define IER_ERBFI 0x01 /* received data available */
#define IER_ETBEI 0x02 /* THR empty */
#define IER_ELSI  0x04 /* receiver line status */
#define IER_EDSSI 0x08 /* modem status */
#define IER_MASK  0x0f

#define IIR_NONE   0x01
#define IIR_MSR    0x00
#define IIR_THRE   0x02
#define IIR_RDA    0x04
#define IIR_RLS    0x06
#define IIR_FIFO   0xc0

#define FCR_ENABLE   0x01
#define FCR_CLEAR_RX 0x02
#define FCR_CLEAR_TX 0x04

#define LCR_DLAB 0x80

#define MCR_DTR  0x01
#define MCR_RTS  0x02
#define MCR_OUT1 0x04
#define MCR_OUT2 0x08
#define MCR_LOOP 0x10
#define MCR_MASK 0x1f

#define LSR_DR   0x01
#define LSR_OE   0x02
#define LSR_THRE 0x20
#define LSR_TEMT 0x40

#define MSR_DCTS 0x01
#define MSR_DDSR 0x02
#define MSR_TERI 0x04
#define MSR_DDCD 0x08
#define MSR_CTS  0x10
#define MSR_DSR  0x20
#define MSR_RI   0x40
#define MSR_DCD  0x80
#define MSR_DELTAS 0x0f

#define FIFO_SIZE 16

/* How the output fd is written without waiting (see ns16550.h). */
enum out_how { OUT_NONE, OUT_WRITE, OUT_SEND, OUT_POLL };

struct ns16550 {
	pthread_mutex_t lock; /* guards everything below */
	struct irq_line irq;
	int out_fd;           /* what is written: the caller's fd or own_fd */
	int own_fd;           /* private non-blocking reopen of it, or -1 */
	enum out_how out_how;
	uint64_t out_limit, out_written;
	char limit_key[32];
	bool warned_full, warned_limit;
	const struct logger *log;
	char name[16];
	void (*rx_ready)(void *cookie);
	void *rx_cookie;

	uint8_t ier, fcr, lcr, mcr, scr, dll, dlm;
	uint8_t lsr_err;      /* sticky LSR error bits (OE), cleared by reading LSR */
	uint8_t msr;          /* status bits 4-7 and delta bits 0-3 */
	bool thre_pending;    /* THRE interrupt latched, see iir_id() */
	bool irq_level;       /* last level handed to irq_line_set */
	bool rx_refused;      /* ns16550_input turned bytes away: owe rx_ready */

	uint8_t rx[NS16550_RX_BUF];
	unsigned rx_head, rx_count;

	uint8_t tx[NS16550_TX_BUF]; /* output the fd did not take yet */
	unsigned tx_head, tx_count;

	uint64_t dropped;
	struct log_ratelimit rl;
};

/* --- helpers, all with the lock held --- */

static bool loopback(const struct ns16550 *u)
{
	return u->mcr & MCR_LOOP;
}

/* Modem status lines as the guest sees them: looped back from MCR in
 * loopback mode, otherwise a permanently connected, ready peer. */
static uint8_t mcr_lines(uint8_t mcr)
{
	if (!(mcr & MCR_LOOP))
		return MSR_DCD | MSR_DSR | MSR_CTS;
	uint8_t v = 0;
	if (mcr & MCR_RTS)
		v |= MSR_CTS;
	if (mcr & MCR_DTR)
		v |= MSR_DSR;
	if (mcr & MCR_OUT1)
		v |= MSR_RI;
	if (mcr & MCR_OUT2)
		v |= MSR_DCD;
	return v;
}

static uint8_t msr_lines(const struct ns16550 *u)
{
	return mcr_lines(u->mcr);
}

/* Recomputes the MSR line bits and latches the delta bits for changes. */
static void msr_update(struct ns16550 *u)
{
	uint8_t old = u->msr & 0xf0, now = msr_lines(u), d = 0;
	if ((old ^ now) & MSR_CTS)
		d |= MSR_DCTS;
	if ((old ^ now) & MSR_DSR)
		d |= MSR_DDSR;
	if ((old & MSR_RI) && !(now & MSR_RI))
		d |= MSR_TERI;
	if ((old ^ now) & MSR_DCD)
		d |= MSR_DDCD;
	u->msr = now | (u->msr & MSR_DELTAS) | d;
}

/* The highest-priority pending interrupt, as IIR bits 0-3. */
static uint8_t iir_id(const struct ns16550 *u)
{
	if ((u->ier & IER_ELSI) && (u->lsr_err & LSR_OE))
		return IIR_RLS;
	if ((u->ier & IER_ERBFI) && u->rx_count)
		return IIR_RDA;
	if ((u->ier & IER_ETBEI) && u->thre_pending)
		return IIR_THRE;
	if ((u->ier & IER_EDSSI) && (u->msr & MSR_DELTAS))
		return IIR_MSR;
	return IIR_NONE;
}

static void irq_update(struct ns16550 *u)
{
	bool level = iir_id(u) != IIR_NONE;
	if (level != u->irq_level) {
		u->irq_level = level;
		irq_line_set(&u->irq, level);
	}
}

static size_t rx_free(const struct ns16550 *u)
{
	return NS16550_RX_BUF - u->rx_count;
}

static bool rx_push(struct ns16550 *u, uint8_t c)
{
	if (u->rx_count == NS16550_RX_BUF)
		return false;
	u->rx[(u->rx_head + u->rx_count) % NS16550_RX_BUF] = c;
	u->rx_count++;
	return true;
}

static uint8_t rx_pop(struct ns16550 *u)
{
	if (!u->rx_count)
		return 0;
	uint8_t c = u->rx[u->rx_head];
	u->rx_head = (u->rx_head + 1) % NS16550_RX_BUF;
	u->rx_count--;
	return c;
}

/* Clearing the receive FIFO drops what the 16-byte FIFO holds; the rest of
 * the buffer stands for bytes still on the wire and moves up behind it. */
static void rx_clear_fifo(struct ns16550 *u)
{
	unsigned n = u->rx_count < FIFO_SIZE ? u->rx_count : FIFO_SIZE;
	u->rx_head = (u->rx_head + n) % NS16550_RX_BUF;
	u->rx_count -= n;
}

/* True if the event thread is owed an rx_ready call now. */
static bool rx_ready_due(struct ns16550 *u)
{
	if (!u->rx_refused || loopback(u) || rx_free(u) < NS16550_RX_BUF / 2)
		return false;
	u->rx_refused = false;
	return u->rx_ready != NULL;
}

/* --- output: never waits (see ns16550.h) --- */

/* Writes up to @len bytes without waiting: the count written, or -1 with
 * errno (EAGAIN when the fd takes nothing now). */
static ssize_t out_write(struct ns16550 *u, const uint8_t *buf, size_t len)
{
	for (;;) {
		ssize_t n;
		if (u->out_how == OUT_SEND) {
			n = send(u->out_fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
		} else {
			if (u->out_how == OUT_POLL) {
				/* POLLOUT promises room for one byte (a terminal's
				 * room can be that small): never ask for more */
				len = len ? 1 : 0;
				struct pollfd p = { .fd = u->out_fd, .events = POLLOUT };
				int r = poll(&p, 1, 0);
				if (r < 0 && errno == EINTR)
					continue;
				if (r == 0) {
					errno = EAGAIN;
					return -1;
				}
			}
			n = write(u->out_fd, buf, len);
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0 && len) {
			errno = EIO;
			return -1;
		}
		return n;
	}
}

static bool would_block(int err)
{
	return err == EAGAIN || err == EWOULDBLOCK;
}

/* A write failed for good: @n bytes are lost. */
static void out_failed(struct ns16550 *u, int err, uint64_t n)
{
	u->dropped += n;
	if (u->log)
		log_ratelimited(u->log, &u->rl, u->name,
				"output write failed: %s (%llu bytes dropped)", strerror(err),
				(unsigned long long)u->dropped);
}

/* Writes what the output buffer holds, as far as the fd takes it. */
static void tx_drain(struct ns16550 *u)
{
	while (u->tx_count) {
		size_t chunk = NS16550_TX_BUF - u->tx_head;
		if (chunk > u->tx_count)
			chunk = u->tx_count;
		ssize_t n = out_write(u, u->tx + u->tx_head, chunk);
		if (n < 0) {
			if (!would_block(errno)) {
				out_failed(u, errno, u->tx_count);
				u->tx_head = u->tx_count = 0;
			}
			return;
		}
		u->out_written += (uint64_t)n;
		u->tx_head = (u->tx_head + (unsigned)n) % NS16550_TX_BUF;
		u->tx_count -= (unsigned)n;
	}
}

static void tx_byte(struct ns16550 *u, uint8_t c)
{
	if (u->out_how == OUT_NONE)
		return;
	if (u->out_limit && u->out_written + u->tx_count >= u->out_limit) {
		u->dropped++;
		if (!u->warned_limit && u->log && u->limit_key[0])
			log_warn(u->log, u->name, "output reached %s (%llu bytes): the rest is "
				 "dropped (said once)", u->limit_key, (unsigned long long)u->out_limit);
		else if (!u->warned_limit && u->log)
			log_warn(u->log, u->name, "output reached its limit of %llu bytes: the rest "
				 "is dropped (said once)", (unsigned long long)u->out_limit);
		u->warned_limit = true;
		return;
	}
	if (u->tx_count)
		tx_drain(u);
	if (!u->tx_count) {
		ssize_t n = out_write(u, &c, 1);
		if (n == 1) {
			u->out_written++;
			return;
		}
		if (!would_block(errno)) {
			out_failed(u, errno, 1);
			return;
		}
	}
	/* The reader is not keeping up. Waiting for it would stall this
	 * vCPU (and with it teardown, timeout= and signals): hold the byte,
	 * or drop it once the buffer is full. */
	if (u->tx_count == NS16550_TX_BUF) {
		u->dropped++;
		if (!u->warned_full && u->log)
			log_warn(u->log, u->name, "nobody is reading the output: %u KiB held, "
				 "the rest is dropped until it drains (said once)",
				 NS16550_TX_BUF / 1024);
		u->warned_full = true;
		return;
	}
	u->tx[(u->tx_head + u->tx_count) % NS16550_TX_BUF] = c;
	u->tx_count++;
}

/* Picks how to write @fd without waiting, reopening it if need be. */
static void out_setup(struct ns16550 *u, int fd)
{
	u->out_fd = fd;
	u->own_fd = -1;
	if (fd < 0) {
		u->out_how = OUT_NONE;
		return;
	}
	struct stat st;
	if (fstat(fd, &st) < 0) {
		/* e.g. stdout closed: there is nowhere to write */
		if (u->log)
			log_warn(u->log, u->name, "output fd %d: fstat: %s: output discarded", fd,
				 strerror(errno));
		u->out_how = OUT_NONE;
		return;
	}
	u->out_how = OUT_WRITE;
	if (S_ISSOCK(st.st_mode)) {
		u->out_how = OUT_SEND;
		return;
	}
	int fl = fcntl(fd, F_GETFL);
	if (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode) || (fl >= 0 && (fl & O_NONBLOCK)))
		return;
	/* A pipe, FIFO or terminal that blocks: a private non-blocking open
	 * file description of the same object (setting O_NONBLOCK on the
	 * caller's would change it for everyone sharing it). */
	char path[32];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	u->own_fd = open(path, O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (u->own_fd >= 0) {
		u->out_fd = u->own_fd;
		return;
	}
	if (u->log)
		log_info(u->log, u->name, "output fd %d: reopening %s non-blocking: %s; "
			 "polling before each write instead", fd, path, strerror(errno));
	u->out_how = OUT_POLL;
}

static void reset_locked(struct ns16550 *u)
{
	u->ier = 0;
	u->fcr = 0;
	u->lcr = 0;
	u->mcr = 0;
	u->scr = 0;
	u->dll = 0x0c; /* 9600 baud, as firmware would leave it */
	u->dlm = 0;
	u->lsr_err = 0;
	u->msr = msr_lines(u); /* no deltas at power-on */
	u->thre_pending = false;
	u->rx_head = 0;
	u->rx_count = 0;
	irq_update(u);
}

/* --- register access --- */

static uint8_t reg_read(struct ns16550 *u, unsigned reg, bool *notify)
{
	uint8_t v = 0;
	switch (reg) {
	case REG_RBR_THR_DLL:
		if (u->lcr & LCR_DLAB)
			return u->dll;
		v = rx_pop(u);
		*notify |= rx_ready_due(u);
		break;
	case REG_IER_DLM:
		return (u->lcr & LCR_DLAB) ? u->dlm : u->ier;
	case REG_IIR_FCR:
		v = iir_id(u);
		/* Reading IIR acknowledges a THRE interrupt it reports. */
		if (v == IIR_THRE)
			u->thre_pending = false;
		if (u->fcr & FCR_ENABLE)
			v |= IIR_FIFO;
		break;
	case REG_LCR:
		return u->lcr;
	case REG_MCR:
		return u->mcr;
	case REG_LSR:
		/* THR and transmitter are always empty: output is immediate. */
		v = LSR_THRE | LSR_TEMT | u->lsr_err;
		if (u->rx_count)
			v |= LSR_DR;
		u->lsr_err = 0;
		break;
	case REG_MSR:
		v = u->msr;
		u->msr &= (uint8_t)~MSR_DELTAS;
		break;
	case REG_SCR:
		return u->scr;
	}
	irq_update(u);
	return v;
}

static void reg_write(struct ns16550 *u, unsigned reg, uint8_t v, bool *notify)
{
	switch (reg) {
	case REG_RBR_THR_DLL:
		if (u->lcr & LCR_DLAB) {
			u->dll = v;
			return;
		}
		/* Writing THR clears a THRE interrupt; the byte leaves at once,
		 * THR is empty again and the interrupt re-arms. */
		u->thre_pending = false;
		if (loopback(u)) {
			if (!rx_push(u, v))
				u->lsr_err |= LSR_OE;
		} else {
			tx_byte(u, v);
		}
		u->thre_pending = true;
		break;
	case REG_IER_DLM: {
		if (u->lcr & LCR_DLAB) {
			u->dlm = v;
			return;
		}
		uint8_t old = u->ier;
		u->ier = v & IER_MASK;
		/* Enabling ETBEI with THR empty (always) raises THRE at once. */
		if ((u->ier & IER_ETBEI) && !(old & IER_ETBEI))
			u->thre_pending = true;
		else if (!(u->ier & IER_ETBEI))
			u->thre_pending = false;
		break;
	}
	case REG_IIR_FCR: {
		/* FCR is written regardless of DLAB. Toggling the enable bit
		 * clears both FIFOs; the clear bits act only with it set. */
		uint8_t old = u->fcr;
		if ((old ^ v) & FCR_ENABLE)
			rx_clear_fifo(u);
		else if ((v & FCR_ENABLE) && (v & FCR_CLEAR_RX))
			rx_clear_fifo(u);
		u->fcr = v & (FCR_ENABLE | 0xc0); /* trigger level kept, unused */
		*notify |= rx_ready_due(u);
		break;
	}
	case REG_LCR:
		u->lcr = v;
		return;
	case REG_MCR:
		u->mcr = v & MCR_MASK;
		msr_update(u);
		*notify |= rx_ready_due(u);
		break;
	case REG_LSR: /* factory test register on some parts: ignored */
	case REG_MSR:
		return;
	case REG_SCR:
		u->scr = v;
		return;
	}
	irq_update(u);
}

/* Wider accesses are split into byte accesses at successive offsets, as an
 * ISA bus would. */
static void uart_read(void *cookie, uint64_t offset, void *data, unsigned len)
{
	struct ns16550 *u = cookie;
	uint8_t *d = data;
	bool notify = false;
	pthread_mutex_lock(&u->lock);
	for (unsigned i = 0; i < len; i++)
		d[i] = reg_read(u, (unsigned)(offset + i) % NS16550_NR_PORTS, &notify);
	pthread_mutex_unlock(&u->lock);
	if (notify)
		u->rx_ready(u->rx_cookie);
}

static void uart_write(void *cookie, uint64_t offset, const void *data, unsigned len)
{
	struct ns16550 *u = cookie;
	const uint8_t *d = data;
	bool notify = false;
	pthread_mutex_lock(&u->lock);
	for (unsigned i = 0; i < len; i++)
		reg_write(u, (unsigned)(offset + i) % NS16550_NR_PORTS, d[i], &notify);
	pthread_mutex_unlock(&u->lock);
	if (notify)
		u->rx_ready(u->rx_cookie);
}

static const struct bus_ops ns16550_ops = { .read = uart_read, .write = uart_write };

/* --- public interface --- */

int ns16550_create(struct bus *pio, uint16_t base,
		   const struct ns16550_params *p, struct ns16550 **out)
{
	struct ns16550 *u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	int err = pthread_mutex_init(&u->lock, NULL);
	if (err) {
		free(u);
		return -err;
	}
	u->irq = p->irq;
	u->log = p->log;
	snprintf(u->name, sizeof(u->name), "%s", p->name ? p->name : "uart");
	u->rx_ready = p->rx_ready;
	u->rx_cookie = p->rx_cookie;
	u->out_limit = p->out_limit;
	snprintf(u->limit_key, sizeof(u->limit_key), "%s", p->out_limit_key ? p->out_limit_key : "");
	out_setup(u, p->out_fd);
	reset_locked(u);

	err = bus_register(pio, base, NS16550_NR_PORTS, &ns16550_ops, u, u->name);
	if (err) {
		if (u->log)
			log_err(u->log, u->name, "cannot map ports %#x-%#x: %s",
				base, base + NS16550_NR_PORTS - 1, strerror(-err));
		ns16550_destroy(u);
		return err;
	}
	*out = u;
	return 0;
}

void ns16550_reset(struct ns16550 *u)
{
	pthread_mutex_lock(&u->lock);
	reset_locked(u);
	bool notify = rx_ready_due(u);
	pthread_mutex_unlock(&u->lock);
	if (notify)
		u->rx_ready(u->rx_cookie);
}

void ns16550_destroy(struct ns16550 *u)
{
	if (!u)
		return;
	if (u->own_fd >= 0)
		close(u->own_fd);
	pthread_mutex_destroy(&u->lock);
	free(u);
}

size_t ns16550_input(struct ns16550 *u, const uint8_t *buf, size_t len)
{
	size_t n = 0;
	pthread_mutex_lock(&u->lock);
	if (!loopback(u)) {
		while (n < len && rx_push(u, buf[n]))
			n++;
	}
	if (n < len)
		u->rx_refused = true;
	irq_update(u);
	pthread_mutex_unlock(&u->lock);
	return n;
}

size_t ns16550_rx_space(struct ns16550 *u)
{
	pthread_mutex_lock(&u->lock);
	size_t n = loopback(u) ? 0 : rx_free(u);
	pthread_mutex_unlock(&u->lock);
	return n;
}

uint64_t ns16550_dropped(struct ns16550 *u)
{
	pthread_mutex_lock(&u->lock);
	uint64_t n = u->dropped;
	pthread_mutex_unlock(&u->lock);
	return n;
}

size_t ns16550_flush(struct ns16550 *u)
{
	pthread_mutex_lock(&u->lock);
	tx_drain(u);
	size_t n = u->tx_count;
	pthread_mutex_unlock(&u->lock);
	return n;
}

/* --- saved state (see ns16550.h) --- */

/* The bytes of a ring buffer of @cap starting at @head, in order. */
static void put_ring(struct state_w *w, const uint8_t *buf, unsigned cap, unsigned head,
		     unsigned count)
{
	state_put_u32(w, count);
	unsigned first = cap - head < count ? cap - head : count;
	state_put_bytes(w, buf + head, first);
	state_put_bytes(w, buf, count - first);
}

void ns16550_save(struct ns16550 *u, struct state_w *w)
{
	pthread_mutex_lock(&u->lock);
	state_put_u8(w, u->ier);
	state_put_u8(w, u->fcr);
	state_put_u8(w, u->lcr);
	state_put_u8(w, u->mcr);
	state_put_u8(w, u->scr);
	state_put_u8(w, u->dll);
	state_put_u8(w, u->dlm);
	state_put_u8(w, u->lsr_err);
	state_put_u8(w, u->msr);
	state_put_bool(w, u->thre_pending);
	state_put_bool(w, u->rx_refused);
	put_ring(w, u->rx, NS16550_RX_BUF, u->rx_head, u->rx_count);
	put_ring(w, u->tx, NS16550_TX_BUF, u->tx_head, u->tx_count);
	pthread_mutex_unlock(&u->lock);
}

/* The state a load stages before it touches the UART. */
struct uart_saved {
	uint8_t ier, fcr, lcr, mcr, scr, dll, dlm, lsr_err, msr;
	bool thre_pending, rx_refused;
	unsigned rx_count, tx_count;
	uint8_t rx[NS16550_RX_BUF];
	uint8_t tx[NS16550_TX_BUF];
};

static void get_bits(struct state_r *r, uint8_t *v, uint8_t allowed, const char *what)
{
	*v = state_get_u8(r);
	if (*v & ~allowed)
		state_fail(r, "%s is %#x: bits %#x do not exist", what, *v, *v & ~allowed);
}

static void load_regs(struct state_r *r, struct uart_saved *s)
{
	get_bits(r, &s->ier, IER_MASK, "IER");
	get_bits(r, &s->fcr, FCR_ENABLE | 0xc0, "FCR");
	s->lcr = state_get_u8(r);
	get_bits(r, &s->mcr, MCR_MASK, "MCR");
	s->scr = state_get_u8(r);
	s->dll = state_get_u8(r);
	s->dlm = state_get_u8(r);
	get_bits(r, &s->lsr_err, LSR_OE, "LSR error bits");
	s->msr = state_get_u8(r);
	if ((s->msr & ~MSR_DELTAS) != mcr_lines(s->mcr))
		state_fail(r, "MSR lines %#x disagree with MCR %#x", s->msr & ~MSR_DELTAS, s->mcr);
	s->thre_pending = state_get_bool(r);
	s->rx_refused = state_get_bool(r);
	/* THRE may be latched with ETBEI clear: every THR write latches it
	 * (a polling driver's), and iir_id() reports it only once enabled. */
}

int ns16550_load(struct ns16550 *u, struct state_r *r)
{
	struct uart_saved *s = calloc(1, sizeof(*s));
	if (!s) {
		state_fail(r, "out of memory");
		return state_r_finish(r);
	}
	load_regs(r, s);
	s->rx_count = state_get_u32_max(r, NS16550_RX_BUF, "receive byte count");
	state_get_bytes(r, s->rx, s->rx_count);
	s->tx_count = state_get_u32_max(r, NS16550_TX_BUF, "output byte count");
	state_get_bytes(r, s->tx, s->tx_count);
	int rc = state_r_finish(r);
	if (rc == 0) {
		pthread_mutex_lock(&u->lock);
		u->ier = s->ier;
		u->fcr = s->fcr;
		u->lcr = s->lcr;
		u->mcr = s->mcr;
		u->scr = s->scr;
		u->dll = s->dll;
		u->dlm = s->dlm;
		u->lsr_err = s->lsr_err;
		u->msr = s->msr;
		u->thre_pending = s->thre_pending;
		u->rx_refused = s->rx_refused;
		memcpy(u->rx, s->rx, s->rx_count);
		u->rx_head = 0;
		u->rx_count = s->rx_count;
		memcpy(u->tx, s->tx, s->tx_count);
		u->tx_head = 0;
		u->tx_count = s->tx_count;
		irq_update(u);
		pthread_mutex_unlock(&u->lock);
	}
	free(s);
	return rc;
}
