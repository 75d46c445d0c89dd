/* i8042, debug-exit and the CMOS RTC, through the PIO bus. */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "mem/layout.h"
#include "vmm/board.h"
#include "devices/bus.h"
#include "devices/debug_exit.h"
#include "devices/i8042.h"
#include "devices/mc146818.h"
#include "unit.h"

static uint8_t inb(struct bus *b, uint16_t port)
{
	uint8_t v = 0;
	CHECK(bus_read(b, port, &v, 1));
	return v;
}

static void outb(struct bus *b, uint16_t port, uint8_t v)
{
	CHECK(bus_write(b, port, &v, 1));
}

/* --- i8042 --- */

static void count_reset(void *cookie)
{
	(*(unsigned *)cookie)++;
}

/* i8042 command: waits nothing (we never set IBF), reads a reply if any. */
static int kbc_cmd(struct bus *b, uint8_t cmd, int param, bool reply)
{
	CHECK_EQ(inb(b, PORT_I8042_CMD) & 0x02, 0);
	outb(b, PORT_I8042_CMD, cmd);
	if (param >= 0)
		outb(b, PORT_I8042_DATA, (uint8_t)param);
	if (!reply)
		return -1;
	CHECK_EQ(inb(b, PORT_I8042_CMD) & 0x01, 1);
	return inb(b, PORT_I8042_DATA);
}

static void test_i8042(void)
{
	struct bus pio;
	bus_init(&pio, "pio");
	unsigned resets = 0;
	struct i8042_params p = { .data_port = PORT_I8042_DATA, .cmd_port = PORT_I8042_CMD,
				   .reset = count_reset, .cookie = &resets };
	struct i8042 *k = NULL;
	CHECK_EQ(i8042_create(&pio, &p, &k), 0);
	CHECK(bus_find(&pio, 0x60, 1) && bus_find(&pio, 0x64, 1));
	CHECK(!bus_find(&pio, 0x61, 1)); /* 0x61-0x63 left to others */

	/* Linux's flush: nothing waiting */
	CHECK_EQ(inb(&pio, PORT_I8042_CMD) & 0x01, 0);
	CHECK_EQ(inb(&pio, PORT_I8042_CMD) & 0x04, 0x04); /* SYS after POST */

	CHECK_EQ(kbc_cmd(&pio, 0x20, -1, true), 0x45);
	kbc_cmd(&pio, 0x60, 0x56, false);
	CHECK_EQ(kbc_cmd(&pio, 0x20, -1, true), 0x56);
	CHECK_EQ(inb(&pio, PORT_I8042_CMD) & 0x01, 0); /* reply consumed */

	CHECK_EQ(kbc_cmd(&pio, 0xaa, -1, true), 0x55);
	CHECK_EQ(kbc_cmd(&pio, 0xab, -1, true), 0x00);

	kbc_cmd(&pio, 0xa7, -1, false);
	CHECK_EQ(kbc_cmd(&pio, 0x20, -1, true) & 0x20, 0x20);
	kbc_cmd(&pio, 0xa8, -1, false);
	CHECK_EQ(kbc_cmd(&pio, 0x20, -1, true) & 0x20, 0);
	kbc_cmd(&pio, 0xad, -1, false);
	CHECK_EQ(kbc_cmd(&pio, 0x20, -1, true) & 0x10, 0x10);
	kbc_cmd(&pio, 0xae, -1, false);
	CHECK_EQ(kbc_cmd(&pio, 0x20, -1, true) & 0x10, 0);

	/* no aux port: loopback answers from the keyboard side, test fails */
	outb(&pio, PORT_I8042_CMD, 0xd3);
	outb(&pio, PORT_I8042_DATA, 0x5a);
	CHECK_EQ(inb(&pio, PORT_I8042_CMD) & 0x21, 0x01);
	int t = kbc_cmd(&pio, 0xa9, -1, true);
	CHECK(t != 0 && t != 0xfa && t != 0xff);

	/* no keyboard: a byte for it is answered 0xFE with a timeout */
	outb(&pio, PORT_I8042_DATA, 0xf2);
	CHECK_EQ(inb(&pio, PORT_I8042_CMD) & 0x41, 0x41);
	CHECK_EQ(inb(&pio, PORT_I8042_DATA), 0xfe);
	CHECK_EQ(inb(&pio, PORT_I8042_CMD) & 0x41, 0);

	CHECK_EQ(resets, 0);
	outb(&pio, PORT_I8042_CMD, 0xff); /* pulse nothing */
	CHECK_EQ(resets, 0);
	outb(&pio, PORT_I8042_CMD, 0xfe);
	CHECK_EQ(resets, 1);
	kbc_cmd(&pio, 0xd1, 0xfe, false); /* output port, reset bit low */
	CHECK_EQ(resets, 2);

	i8042_reset(k);
	CHECK_EQ(kbc_cmd(&pio, 0x20, -1, true), 0x45);
	i8042_destroy(k);
}

static void test_i8042_no_half_registration(void)
{
	struct bus pio;
	bus_init(&pio, "pio");
	static const struct bus_ops none = {0};
	CHECK_EQ(bus_register(&pio, 0x64, 1, &none, NULL, "taken"), 0);
	struct i8042_params p = { .data_port = PORT_I8042_DATA, .cmd_port = PORT_I8042_CMD };
	struct i8042 *k = NULL;
	CHECK_EQ(i8042_create(&pio, &p, &k), -EEXIST);
	CHECK(!bus_find(&pio, 0x60, 1)); /* nothing left pointing at freed memory */
}

/* --- debug-exit --- */

struct exit_probe {
	int code;
	unsigned calls;
};

static void on_exit_code(void *cookie, int code)
{
	struct exit_probe *e = cookie;
	e->code = code;
	e->calls++;
}

static void test_debug_exit(void)
{
	struct bus pio;
	bus_init(&pio, "pio");
	struct exit_probe e = {0};
	struct debug_exit_params p = { .exit = on_exit_code, .cookie = &e };
	struct debug_exit *d = NULL;
	CHECK_EQ(debug_exit_create(&pio, PORT_DEBUG_EXIT, &p, &d), 0);
	CHECK_EQ(bus_find(&pio, PORT_DEBUG_EXIT, 4)->len, DEBUG_EXIT_NR_PORTS);

	uint8_t b = 0x10;
	CHECK(bus_write(&pio, PORT_DEBUG_EXIT, &b, 1));
	CHECK_EQ(e.code, 0x21);
	uint16_t w = 0;
	CHECK(bus_write(&pio, PORT_DEBUG_EXIT, &w, 2));
	CHECK_EQ(e.code, 1);
	uint32_t l = 0x31;
	CHECK(bus_write(&pio, PORT_DEBUG_EXIT, &l, 4));
	CHECK_EQ(e.code, 0x63);
	CHECK(bus_write(&pio, PORT_DEBUG_EXIT + 1, &b, 1));
	CHECK_EQ(e.code & 0xff, 0x21);
	CHECK_EQ(e.calls, 4);
	l = 0;
	CHECK(bus_read(&pio, PORT_DEBUG_EXIT, &l, 2));
	CHECK_EQ(l, 0xffff);
	CHECK_EQ(e.calls, 4);
	debug_exit_reset(d);
	debug_exit_destroy(d);
}

/* --- RTC --- */

static int64_t fake_clock(void *cookie)
{
	return *(int64_t *)cookie;
}

static uint8_t cmos_read(struct bus *b, uint8_t idx)
{
	outb(b, PORT_RTC, idx);
	return inb(b, PORT_RTC + 1);
}

static void cmos_write(struct bus *b, uint8_t idx, uint8_t v)
{
	outb(b, PORT_RTC, idx);
	outb(b, PORT_RTC + 1, v);
}

static struct mc146818 *rtc_rig(struct bus *pio, int64_t *clock)
{
	bus_init(pio, "pio");
	struct mc146818_params p = { .clock = fake_clock, .clock_cookie = clock };
	struct mc146818 *r = NULL;
	CHECK_EQ(mc146818_create(pio, PORT_RTC, &p, &r), 0);
	return r;
}

static void test_rtc_bcd_and_binary(void)
{
	struct bus pio;
	int64_t now = 1700000000; /* 2023-11-14 22:13:20 UTC, a Tuesday */
	struct mc146818 *r = rtc_rig(&pio, &now);
	CHECK_EQ(cmos_read(&pio, 0x0b), 0x02); /* BCD, 24h */
	CHECK_EQ(cmos_read(&pio, 0x00), 0x20);
	CHECK_EQ(cmos_read(&pio, 0x02), 0x13);
	CHECK_EQ(cmos_read(&pio, 0x04), 0x22);
	CHECK_EQ(cmos_read(&pio, 0x06), 0x03);
	CHECK_EQ(cmos_read(&pio, 0x07), 0x14);
	CHECK_EQ(cmos_read(&pio, 0x08), 0x11);
	CHECK_EQ(cmos_read(&pio, 0x09), 0x23);
	CHECK_EQ(cmos_read(&pio, 0x32), 0x20);

	cmos_write(&pio, 0x0b, 0x06); /* binary, 24h */
	CHECK_EQ(cmos_read(&pio, 0x00), 20);
	CHECK_EQ(cmos_read(&pio, 0x04), 22);
	CHECK_EQ(cmos_read(&pio, 0x09), 23);
	CHECK_EQ(cmos_read(&pio, 0x32), 20);

	cmos_write(&pio, 0x0b, 0x04); /* binary, 12h: 10 PM */
	CHECK_EQ(cmos_read(&pio, 0x04), 0x80 | 10);
	cmos_write(&pio, 0x0b, 0x00); /* BCD, 12h */
	CHECK_EQ(cmos_read(&pio, 0x04), 0x80 | 0x10);

	/* the clock runs with the host's */
	cmos_write(&pio, 0x0b, 0x02);
	now += 61;
	CHECK_EQ(cmos_read(&pio, 0x00), 0x21);
	CHECK_EQ(cmos_read(&pio, 0x02), 0x14);
	mc146818_destroy(r);
}

static void test_rtc_set_time(void)
{
	struct bus pio;
	int64_t now = 1700000000;
	struct mc146818 *r = rtc_rig(&pio, &now);
	/* Linux's set: SET, write the fields, clear SET */
	cmos_write(&pio, 0x0b, 0x82);
	now += 5; /* halted: no update while SET */
	CHECK_EQ(cmos_read(&pio, 0x00), 0x20);
	cmos_write(&pio, 0x00, 0x00);
	cmos_write(&pio, 0x02, 0x00);
	cmos_write(&pio, 0x04, 0x00);
	cmos_write(&pio, 0x07, 0x01);
	cmos_write(&pio, 0x08, 0x01);
	cmos_write(&pio, 0x09, 0x00);
	cmos_write(&pio, 0x32, 0x20);
	cmos_write(&pio, 0x0b, 0x02);
	/* 2000-01-01 00:00:00 = 946684800 */
	CHECK_EQ(cmos_read(&pio, 0x09), 0x00);
	CHECK_EQ(cmos_read(&pio, 0x08), 0x01);
	CHECK_EQ(cmos_read(&pio, 0x06), 0x07); /* a Saturday */
	now += 10;
	CHECK_EQ(cmos_read(&pio, 0x00), 0x10);

	/* a direct write while running moves the clock too */
	cmos_write(&pio, 0x02, 0x30);
	CHECK_EQ(cmos_read(&pio, 0x02), 0x30);
	CHECK_EQ(cmos_read(&pio, 0x00), 0x10);

	/* an invalid time (bad BCD) leaves the clock alone */
	cmos_write(&pio, 0x0b, 0x82);
	cmos_write(&pio, 0x00, 0x7a);
	cmos_write(&pio, 0x0b, 0x02);
	CHECK_EQ(cmos_read(&pio, 0x00), 0x10);

	/* reset goes back to host time */
	mc146818_reset(r);
	CHECK_EQ(cmos_read(&pio, 0x09), 0x23);
	mc146818_destroy(r);
}

static void test_rtc_status_registers(void)
{
	struct bus pio;
	int64_t now = 1700000000;
	struct mc146818 *r = rtc_rig(&pio, &now);
	/* UIP never stuck, even after the guest writes it */
	for (int i = 0; i < 100; i++)
		CHECK_EQ(cmos_read(&pio, 0x0a) & 0x80, 0);
	cmos_write(&pio, 0x0a, 0xa6);
	CHECK_EQ(cmos_read(&pio, 0x0a), 0x26);
	CHECK_EQ(cmos_read(&pio, 0x0d), 0x80);
	cmos_write(&pio, 0x0d, 0x00);
	CHECK_EQ(cmos_read(&pio, 0x0d), 0x80);

	/* C: update-ended once per second, cleared by the read */
	CHECK_EQ(cmos_read(&pio, 0x0c), 0x00);
	now++;
	CHECK_EQ(cmos_read(&pio, 0x0c), 0x10);
	CHECK_EQ(cmos_read(&pio, 0x0c), 0x00);
	cmos_write(&pio, 0x0b, 0x12); /* UIE */
	now++;
	CHECK_EQ(cmos_read(&pio, 0x0c), 0x90);
	CHECK_EQ(cmos_read(&pio, 0x0c), 0x00);

	/* plain CMOS storage, NMI bit ignored, index wraps into 0-127 */
	cmos_write(&pio, 0x40, 0xab);
	CHECK_EQ(cmos_read(&pio, 0x40), 0xab);
	CHECK_EQ(cmos_read(&pio, 0x80 | 0x40), 0xab);
	cmos_write(&pio, 0xff, 0x12);
	CHECK_EQ(cmos_read(&pio, 0x7f), 0x12);

	/* a 2-byte write is index then data */
	uint16_t w = 0x5541;
	CHECK(bus_write(&pio, PORT_RTC, &w, 2));
	CHECK_EQ(cmos_read(&pio, 0x41), 0x55);
	mc146818_destroy(r);
}

static void test_rtc_real_clock(void)
{
	struct bus pio;
	bus_init(&pio, "pio");
	struct mc146818_params p = {0};
	struct mc146818 *r = NULL;
	CHECK_EQ(mc146818_create(&pio, PORT_RTC, &p, &r), 0);
	time_t t = time(NULL);
	struct tm tm;
	gmtime_r(&t, &tm);
	uint8_t y = cmos_read(&pio, 0x09);
	CHECK_EQ((y >> 4) * 10 + (y & 0x0f), tm.tm_year % 100);
	mc146818_destroy(r);
}

int main(void)
{
	RUN(test_i8042);
	RUN(test_i8042_no_half_registration);
	RUN(test_debug_exit);
	RUN(test_rtc_bcd_and_binary);
	RUN(test_rtc_set_time);
	RUN(test_rtc_status_registers);
	RUN(test_rtc_real_clock);
	return unit_done();
}
