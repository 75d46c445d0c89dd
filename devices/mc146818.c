/* MC146818 CMOS RTC; register meanings from the Motorola datasheet. See
 * mc146818.h for what is modelled. */
#include "devices/mc146818.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>


#define REG_SEC     0x00
#define REG_MIN     0x02
#define REG_HOUR    0x04
#define REG_WDAY    0x06
#define REG_MDAY    0x07
#define REG_MONTH   0x08
#define REG_YEAR    0x09
#define REG_A       0x0a
#define REG_B       0x0b
#define REG_C       0x0c
#define REG_D       0x0d
#define REG_CENTURY 0x32

#define A_UIP   0x80
#define B_SET   0x80
#define B_UIE   0x10
#define B_AIE   0x20
#define B_PIE   0x40
#define B_BIN   0x04 /* data mode: binary, else BCD */
#define B_24H   0x02
#define C_IRQF  0x80
#define C_PF    0x40
#define C_AF    0x20
#define C_UF    0x10
#define D_VRT   0x80
#define HOUR_PM 0x80 /* 12-hour mode */

#define CMOS_SIZE 128
#define WHO "rtc"

struct mc146818 {
	pthread_mutex_t lock; /* guards the fields below */
	const struct logger *log;
	int64_t (*clock)(void *cookie);
	void *clock_cookie;

	uint8_t cmos[CMOS_SIZE];
	uint8_t index;
	int64_t offset;    /* guest time - host time, seconds */
	int64_t last_uf;   /* guest second when register C was last read */
	struct log_ratelimit rl;
};

static int64_t host_now(const struct mc146818 *r)
{
	if (r->clock)
		return r->clock(r->clock_cookie);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec;
}

static bool is_time_reg(unsigned i)
{
	return i <= REG_YEAR || i == REG_CENTURY;
}

static uint8_t encode(const struct mc146818 *r, unsigned v)
{
	if (r->cmos[REG_B] & B_BIN)
		return (uint8_t)v;
	return (uint8_t)(((v / 10) << 4) | (v % 10));
}

/* Returns the value, or -1 for a byte that is not valid BCD. */
static int decode(const struct mc146818 *r, uint8_t v)
{
	if (r->cmos[REG_B] & B_BIN)
		return v;
	if ((v & 0x0f) > 9 || (v >> 4) > 9)
		return -1;
	return (v >> 4) * 10 + (v & 0x0f);
}

/* Fills the time registers from the running clock, in the current mode. */
static void latch(struct mc146818 *r)
{
	time_t t = (time_t)(host_now(r) + r->offset);
	struct tm tm;
	if (!gmtime_r(&t, &tm))
		return;
	uint8_t *c = r->cmos;
	c[REG_SEC] = encode(r, (unsigned)tm.tm_sec);
	c[REG_MIN] = encode(r, (unsigned)tm.tm_min);
	if (c[REG_B] & B_24H) {
		c[REG_HOUR] = encode(r, (unsigned)tm.tm_hour);
	} else {
		unsigned h = (unsigned)tm.tm_hour % 12;
		c[REG_HOUR] = encode(r, h ? h : 12);
		if (tm.tm_hour >= 12)
			c[REG_HOUR] |= HOUR_PM;
	}
	c[REG_WDAY] = encode(r, (unsigned)tm.tm_wday + 1);
	c[REG_MDAY] = encode(r, (unsigned)tm.tm_mday);
	c[REG_MONTH] = encode(r, (unsigned)tm.tm_mon + 1);
	unsigned year = (unsigned)tm.tm_year + 1900;
	c[REG_YEAR] = encode(r, year % 100);
	c[REG_CENTURY] = encode(r, (year / 100) % 100);
}

/* Takes the time registers as the guest's new time: recomputes the offset.
 * Returns false (offset unchanged) if they do not hold a valid time. */
static bool commit(struct mc146818 *r)
{
	const uint8_t *c = r->cmos;
	int sec = decode(r, c[REG_SEC]), min = decode(r, c[REG_MIN]);
	int mday = decode(r, c[REG_MDAY]), mon = decode(r, c[REG_MONTH]);
	int year = decode(r, c[REG_YEAR]), cent = decode(r, c[REG_CENTURY]);
	int hour;
	if (c[REG_B] & B_24H) {
		hour = decode(r, c[REG_HOUR]);
	} else {
		hour = decode(r, c[REG_HOUR] & (uint8_t)~HOUR_PM);
		if (hour >= 1 && hour <= 12)
			hour = hour % 12 + ((c[REG_HOUR] & HOUR_PM) ? 12 : 0);
		else
			hour = -1;
	}
	if (sec < 0 || sec > 59 || min < 0 || min > 59 || hour < 0 || hour > 23 ||
	    mday < 1 || mday > 31 || mon < 1 || mon > 12 || year < 0 || year > 99 ||
	    cent < 0 || cent > 99)
		return false;
	struct tm tm = {
		.tm_sec = sec, .tm_min = min, .tm_hour = hour, .tm_mday = mday,
		.tm_mon = mon - 1, .tm_year = cent * 100 + year - 1900,
	};
	time_t t = timegm(&tm);
	if (t == (time_t)-1 && tm.tm_year != 69)
		return false;
	r->offset = (int64_t)t - host_now(r);
	return true;
}

static void commit_or_warn(struct mc146818 *r)
{
	if (!commit(r) && r->log)
		log_ratelimited(r->log, &r->rl, WHO,
				"guest set an invalid time; clock unchanged");
}

static void reset_locked(struct mc146818 *r)
{
	r->index = 0;
	r->offset = 0;
	r->cmos[REG_A] = 0x26;  /* 32.768 kHz time base, 1024 Hz rate */
	r->cmos[REG_B] = B_24H; /* BCD, 24-hour, no interrupts */
	r->cmos[REG_C] = 0;
	r->cmos[REG_D] = D_VRT;
	r->last_uf = host_now(r);
	latch(r);
}

static uint8_t data_read(struct mc146818 *r)
{
	unsigned i = r->index;
	uint8_t b = r->cmos[REG_B];
	if (is_time_reg(i)) {
		if (!(b & B_SET))
			latch(r);
		return r->cmos[i];
	}
	switch (i) {
	case REG_A:
		return r->cmos[REG_A] & (uint8_t)~A_UIP;
	case REG_C: {
		/* An update cycle ends every second while the clock runs. */
		uint8_t v = 0;
		int64_t now = host_now(r) + r->offset;
		if (!(b & B_SET) && now != r->last_uf)
			v |= C_UF;
		r->last_uf = now;
		if ((v & C_UF && b & B_UIE) || (v & C_AF && b & B_AIE) ||
		    (v & C_PF && b & B_PIE))
			v |= C_IRQF;
		return v;
	}
	case REG_D:
		return D_VRT;
	default:
		return r->cmos[i];
	}
}

static void data_write(struct mc146818 *r, uint8_t v)
{
	unsigned i = r->index;
	uint8_t b = r->cmos[REG_B];
	if (is_time_reg(i)) {
		if (b & B_SET) {
			r->cmos[i] = v;
		} else {
			latch(r);
			r->cmos[i] = v;
			commit_or_warn(r);
		}
		return;
	}
	switch (i) {
	case REG_A:
		r->cmos[REG_A] = v & (uint8_t)~A_UIP;
		break;
	case REG_B:
		if ((v & B_SET) && !(b & B_SET)) {
			latch(r);        /* freeze the time the guest will edit */
			v &= (uint8_t)~B_UIE;
		}
		r->cmos[REG_B] = v;
		if (!(v & B_SET) && (b & B_SET)) {
			commit_or_warn(r);
			r->last_uf = host_now(r) + r->offset;
		}
		break;
	case REG_C:
	case REG_D:
		break; /* read-only */
	default:
		r->cmos[i] = v;
		break;
	}
}

static void rtc_read(void *cookie, uint64_t offset, void *buf, unsigned len)
{
	struct mc146818 *r = cookie;
	uint8_t *d = buf;
	pthread_mutex_lock(&r->lock);
	for (unsigned i = 0; i < len; i++) {
		/* The index port is write-only; reading it returns the index. */
		d[i] = ((offset + i) % 2 == 0) ? r->index : data_read(r);
	}
	pthread_mutex_unlock(&r->lock);
}

static void rtc_write(void *cookie, uint64_t offset, const void *buf, unsigned len)
{
	struct mc146818 *r = cookie;
	const uint8_t *d = buf;
	pthread_mutex_lock(&r->lock);
	for (unsigned i = 0; i < len; i++) {
		if ((offset + i) % 2 == 0)
			r->index = d[i] & 0x7f; /* bit 7 masks NMI: ignored */
		else
			data_write(r, d[i]);
	}
	pthread_mutex_unlock(&r->lock);
}

static const struct bus_ops mc146818_ops = { .read = rtc_read, .write = rtc_write };

int mc146818_create(struct bus *pio, uint16_t base, const struct mc146818_params *p,
		    struct mc146818 **out)
{
	struct mc146818 *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	int err = pthread_mutex_init(&r->lock, NULL);
	if (err) {
		free(r);
		return -err;
	}
	r->log = p->log;
	r->clock = p->clock;
	r->clock_cookie = p->clock_cookie;
	reset_locked(r);
	err = bus_register(pio, base, MC146818_NR_PORTS, &mc146818_ops, r, "rtc");
	if (err) {
		if (r->log)
			log_err(r->log, WHO, "cannot map ports: %s", strerror(-err));
		mc146818_destroy(r);
		return err;
	}
	*out = r;
	return 0;
}

void mc146818_reset(struct mc146818 *r)
{
	pthread_mutex_lock(&r->lock);
	reset_locked(r);
	pthread_mutex_unlock(&r->lock);
}

void mc146818_destroy(struct mc146818 *r)
{
	if (!r)
		return;
	pthread_mutex_destroy(&r->lock);
	free(r);
}

/* --- saved state (see mc146818.h) --- */

#define OFFSET_LIMIT (1ll << 40) /* seconds: ~35,000 years either way */

void mc146818_save(struct mc146818 *r, struct state_w *w)
{
	pthread_mutex_lock(&r->lock);
	state_put_bytes(w, r->cmos, CMOS_SIZE);
	state_put_u8(w, r->index);
	state_put_u64(w, (uint64_t)r->offset);
	state_put_u64(w, (uint64_t)r->last_uf);
	pthread_mutex_unlock(&r->lock);
}

static int64_t get_seconds(struct state_r *rd, const char *what)
{
	int64_t v = (int64_t)state_get_u64(rd);
	if (v > OFFSET_LIMIT || v < -OFFSET_LIMIT) {
		state_fail(rd, "%s is %lld s, beyond +-2^40", what, (long long)v);
		return 0;
	}
	return v;
}

int mc146818_load(struct mc146818 *r, struct state_r *rd)
{
	uint8_t cmos[CMOS_SIZE];
	state_get_bytes(rd, cmos, CMOS_SIZE);
	uint8_t index = state_get_u8(rd);
	int64_t offset = get_seconds(rd, "clock offset");
	int64_t last_uf = get_seconds(rd, "last update second");
	if (index >= CMOS_SIZE)
		state_fail(rd, "index register is %#x, CMOS has %d bytes", index, CMOS_SIZE);
	if (cmos[REG_A] & A_UIP)
		state_fail(rd, "register A has UIP set");
	if (cmos[REG_C] != 0)
		state_fail(rd, "register C is %#x, stored as 0", cmos[REG_C]);
	if (cmos[REG_D] != D_VRT)
		state_fail(rd, "register D is %#x, stored as %#x", cmos[REG_D], D_VRT);
	int rc = state_r_finish(rd);
	if (rc)
		return rc;
	pthread_mutex_lock(&r->lock);
	memcpy(r->cmos, cmos, CMOS_SIZE);
	r->index = index;
	r->offset = offset;
	r->last_uf = last_uf;
	pthread_mutex_unlock(&r->lock);
	return 0;
}
