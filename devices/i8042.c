/* 8042 keyboard controller; see i8042.h for what is modelled. */
#include "devices/i8042.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>


/* Status register */
#define STR_OBF     0x01 /* output buffer full */
#define STR_IBF     0x02 /* input buffer full (never: we consume at once) */
#define STR_SYS     0x04 /* system flag, mirrors CTR_SYS */
#define STR_CMD     0x08 /* last write was to the command port */
#define STR_UNLOCK  0x10 /* keyboard not inhibited */
#define STR_AUXDATA 0x20 /* output buffer holds aux data */
#define STR_TIMEOUT 0x40

/* Command byte (CTR) */
#define CTR_KBDINT 0x01
#define CTR_AUXINT 0x02
#define CTR_SYS    0x04
#define CTR_KBDDIS 0x10
#define CTR_AUXDIS 0x20
#define CTR_XLATE  0x40
#define CTR_DEFAULT (CTR_XLATE | CTR_SYS | CTR_KBDINT)

/* Output port: bit 0 = system reset line (active low), bit 1 = A20 gate */
#define OUTP_RESET 0x01
#define OUTP_A20   0x02

#define WHO "i8042"

struct i8042 {
	pthread_mutex_t lock; /* guards the fields below */
	void (*reset_cb)(void *cookie);
	void *cookie;
	const struct logger *log;

	uint8_t status; /* STR_* bits other than OBF/AUXDATA/TIMEOUT tracking */
	uint8_t ctr;
	uint8_t outp;
	uint8_t out;     /* output buffer, valid while status & STR_OBF */
	uint8_t pending; /* command waiting for its data byte, or 0 */
};

static void put_out(struct i8042 *k, uint8_t v, uint8_t flags)
{
	k->out = v;
	k->status &= (uint8_t)~(STR_AUXDATA | STR_TIMEOUT);
	k->status |= STR_OBF | flags;
}

static void reset_locked(struct i8042 *k)
{
	k->ctr = CTR_DEFAULT;
	k->status = STR_SYS | STR_UNLOCK;
	k->outp = OUTP_RESET | OUTP_A20;
	k->out = 0;
	k->pending = 0;
}

/* Returns true if the guest pulled the reset line. */
static bool command(struct i8042 *k, uint8_t cmd)
{
	k->pending = 0;
	switch (cmd) {
	case 0x20:
		put_out(k, k->ctr, 0);
		break;
	case 0x60: /* write CTR */
	case 0xd1: /* write output port */
	case 0xd2: /* echo as keyboard data */
	case 0xd3: /* echo as aux data */
	case 0xd4: /* send to aux device */
		k->pending = cmd;
		break;
	case 0xa7:
		k->ctr |= CTR_AUXDIS;
		break;
	case 0xa8:
		k->ctr &= (uint8_t)~CTR_AUXDIS;
		break;
	case 0xa9: /* aux interface test: 0x02 = clock line stuck high, no port */
		put_out(k, 0x02, 0);
		break;
	case 0xaa: /* controller self test */
		k->ctr |= CTR_SYS;
		k->status |= STR_SYS;
		put_out(k, 0x55, 0);
		break;
	case 0xab: /* keyboard interface test: passed */
		put_out(k, 0x00, 0);
		break;
	case 0xad:
		k->ctr |= CTR_KBDDIS;
		break;
	case 0xae:
		k->ctr &= (uint8_t)~CTR_KBDDIS;
		break;
	case 0xc0: /* input port */
		put_out(k, 0x00, 0);
		break;
	case 0xd0:
		put_out(k, k->outp, 0);
		break;
	case 0xe0: /* test inputs */
		put_out(k, 0x00, 0);
		break;
	default:
		/* 0xF0-0xFF pulse output port bits whose mask bit is 0;
		 * bit 0 is the reset line (0xFE is the usual reboot). */
		if (cmd >= 0xf0 && !(cmd & 0x01))
			return true;
		/* 0x21-0x3F / 0x61-0x7F address internal RAM: reads give 0,
		 * writes swallow their data byte. Anything else is ignored. */
		if (cmd > 0x20 && cmd < 0x40)
			put_out(k, 0x00, 0);
		else if (cmd > 0x60 && cmd < 0x80)
			k->pending = 0x61;
		break;
	}
	return false;
}

/* Returns true if the guest pulled the reset line. */
static bool data(struct i8042 *k, uint8_t v)
{
	uint8_t cmd = k->pending;
	k->pending = 0;
	switch (cmd) {
	case 0x60:
		k->ctr = v;
		if (v & CTR_SYS)
			k->status |= STR_SYS;
		else
			k->status &= (uint8_t)~STR_SYS;
		break;
	case 0x61:
		break;
	case 0xd1:
		k->outp = v;
		if (!(v & OUTP_RESET))
			return true;
		break;
	case 0xd2:
		put_out(k, v, 0);
		break;
	case 0xd3:
		/* No aux port: the byte comes back from the keyboard side,
		 * which Linux takes as "no aux loopback". */
		put_out(k, v, 0);
		break;
	case 0xd4:
		put_out(k, 0xfe, STR_AUXDATA | STR_TIMEOUT);
		break;
	default:
		/* A byte for the keyboard: nobody answers. */
		put_out(k, 0xfe, STR_TIMEOUT);
		break;
	}
	return false;
}

static void i8042_read(void *cookie, uint64_t offset, void *buf, unsigned len)
{
	struct i8042 *k = cookie;
	uint8_t v;
	pthread_mutex_lock(&k->lock);
	if (offset == 0) {
		v = k->out;
		k->status &= (uint8_t)~(STR_OBF | STR_AUXDATA | STR_TIMEOUT);
	} else {
		v = k->status;
	}
	pthread_mutex_unlock(&k->lock);
	memset(buf, 0xff, len);
	*(uint8_t *)buf = v;
}

static void i8042_write(void *cookie, uint64_t offset, const void *buf,
			unsigned len, bool is_cmd)
{
	struct i8042 *k = cookie;
	uint8_t v = *(const uint8_t *)buf;
	pthread_mutex_lock(&k->lock);
	bool reset;
	if (is_cmd) {
		k->status |= STR_CMD;
		reset = command(k, v);
	} else {
		k->status &= (uint8_t)~STR_CMD;
		reset = data(k, v);
	}
	pthread_mutex_unlock(&k->lock);
	if (reset) {
		if (k->log)
			log_info(k->log, WHO, "guest pulsed the reset line");
		if (k->reset_cb)
			k->reset_cb(k->cookie);
	}
}

static void data_read(void *cookie, uint64_t offset, void *buf, unsigned len)
{
	i8042_read(cookie, 0, buf, len);
}

static void data_write(void *cookie, uint64_t offset, const void *buf, unsigned len)
{
	i8042_write(cookie, offset, buf, len, false);
}

static void cmd_read(void *cookie, uint64_t offset, void *buf, unsigned len)
{
	i8042_read(cookie, 1, buf, len);
}

static void cmd_write(void *cookie, uint64_t offset, const void *buf, unsigned len)
{
	i8042_write(cookie, offset, buf, len, true);
}

static const struct bus_ops i8042_data_ops = { .read = data_read, .write = data_write };
static const struct bus_ops i8042_cmd_ops = { .read = cmd_read, .write = cmd_write };

int i8042_create(struct bus *pio, const struct i8042_params *p, struct i8042 **out)
{
	struct i8042 *k = calloc(1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	int err = pthread_mutex_init(&k->lock, NULL);
	if (err) {
		free(k);
		return -err;
	}
	k->reset_cb = p->reset;
	k->cookie = p->cookie;
	k->log = p->log;
	reset_locked(k);

	/* Two ranges: 0x61-0x63 belong to other devices (PC speaker, NMI).
	 * If the second cannot go in, the first comes off again: a failure
	 * leaves nothing pointing at @k. */
	err = bus_register(pio, p->data_port, 1, &i8042_data_ops, k, "i8042-data");
	if (!err) {
		err = bus_register(pio, p->cmd_port, 1, &i8042_cmd_ops, k, "i8042-cmd");
		if (err)
			(void)bus_unmap(pio, p->data_port, 1);
	}
	if (err) {
		if (k->log)
			log_err(k->log, WHO, "cannot map ports: %s", strerror(-err));
		i8042_destroy(k);
		return err;
	}
	*out = k;
	return 0;
}

void i8042_reset(struct i8042 *k)
{
	pthread_mutex_lock(&k->lock);
	reset_locked(k);
	pthread_mutex_unlock(&k->lock);
}

void i8042_destroy(struct i8042 *k)
{
	if (!k)
		return;
	pthread_mutex_destroy(&k->lock);
	free(k);
}

/* --- saved state (see i8042.h) --- */

#define STR_SAVED (STR_OBF | STR_SYS | STR_CMD | STR_UNLOCK | STR_AUXDATA | STR_TIMEOUT)

void i8042_save(struct i8042 *k, struct state_w *w)
{
	pthread_mutex_lock(&k->lock);
	state_put_u8(w, k->status);
	state_put_u8(w, k->ctr);
	state_put_u8(w, k->outp);
	state_put_u8(w, k->out);
	state_put_u8(w, k->pending);
	pthread_mutex_unlock(&k->lock);
}

/* The commands that wait for a data byte (command(), data()). */
static bool pending_valid(uint8_t cmd)
{
	return cmd == 0 || cmd == 0x60 || cmd == 0x61 || (cmd >= 0xd1 && cmd <= 0xd4);
}

int i8042_load(struct i8042 *k, struct state_r *r)
{
	uint8_t status = state_get_u8(r), ctr = state_get_u8(r), outp = state_get_u8(r);
	uint8_t out = state_get_u8(r), pending = state_get_u8(r);
	if (status & ~STR_SAVED)
		state_fail(r, "status is %#x: bits %#x are never set", status, status & ~STR_SAVED);
	if (!(status & STR_UNLOCK))
		state_fail(r, "status %#x has the keyboard inhibited", status);
	if (!(status & STR_SYS) != !(ctr & CTR_SYS))
		state_fail(r, "status SYS bit disagrees with command byte %#x", ctr);
	if (!pending_valid(pending))
		state_fail(r, "pending command %#x takes no data byte", pending);
	int rc = state_r_finish(r);
	if (rc)
		return rc;
	pthread_mutex_lock(&k->lock);
	k->status = status;
	k->ctr = ctr;
	k->outp = outp;
	k->out = out;
	k->pending = pending;
	pthread_mutex_unlock(&k->lock);
	return 0;
}
