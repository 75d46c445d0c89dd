/* The board's saved state (vmm/board.c's board_save/board_load and the
 * devices' save/load): a guest programs every stateful platform device,
 * the board is saved, a second board built as at boot loads it, and the
 * second behaves as the first did: the UART keeps its divisor, pending
 * bytes and interrupt, the RTC its time and CMOS RAM, the i8042 its
 * half-done command, ACPI PM its power-button event and SCI, the PCI host
 * its address latch and moved BAR. Hostile files (every field out of
 * range, every truncation, every byte corrupted) are refused, naming the
 * section, and leave the refusing device as it was created. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mem/layout.h"
#include "vmm/board.h"
#include "devices/acpi_pm.h"
#include "devices/bus.h"
#include "devices/ns16550.h"
#include "devices/pci_host.h"
#include "lib/state.h"
#include "unit.h"

#define NR_GSI 24
#define FN_BAR_SIZE 0x1000

struct fn_probe {
	unsigned remaps, writes;
	uint64_t addr, last_off;
	bool decoded;
};

struct rig {
	struct logger log;
	struct bus pio, mmio;
	struct board b;
	int level[NR_GSI];
	unsigned exits;
	int pipe[2];
	struct fn_probe fn;
	unsigned fn_slot;
};

static void set_irq(void *cookie, unsigned gsi, int level)
{
	struct rig *r = cookie;
	if (gsi < NR_GSI)
		r->level[gsi] = level;
}

static void request_exit(void *cookie, int code, const char *why)
{
	struct rig *r = cookie;
	r->exits++;
}

static void fn_bar_read(void *cookie, unsigned bar, uint64_t off, void *data, unsigned len)
{
	memset(data, 0x5a, len);
}

static void fn_bar_write(void *cookie, unsigned bar, uint64_t off, const void *data, unsigned len)
{
	struct fn_probe *f = cookie;
	f->writes++;
	f->last_off = off;
}

static void fn_bar_remap(void *cookie, unsigned bar, uint64_t addr, bool decoded)
{
	struct fn_probe *f = cookie;
	f->remaps++;
	f->addr = addr;
	f->decoded = decoded;
}

static const struct pci_function_ops fn_ops = {
	.bar_read = fn_bar_read, .bar_write = fn_bar_write, .bar_remap = fn_bar_remap,
};

/* A board as vm_create builds it, with one PCI function (as a virtio-pci
 * device would be) at slot 1. */
static void rig_init(struct rig *r, bool pci)
{
	memset(r, 0, sizeof(*r));
	log_init(&r->log, LOG_ERROR, "test");
	r->log.fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	bus_init(&r->pio, "pio");
	bus_init(&r->mmio, "mmio");
	CHECK_EQ(pipe2(r->pipe, O_NONBLOCK | O_CLOEXEC), 0);
	struct board_env env = {
		.pio = &r->pio, .mmio = &r->mmio, .log = &r->log,
		.opts = { .pci = pci, .debug_exit = true },
		.serial_out_fd = r->pipe[1],
		.set_irq = set_irq, .request_exit = request_exit, .cookie = r,
	};
	CHECK_EQ(board_create(&r->b, &env), 0);
	if (pci) {
		struct pci_function_params p = {
			.name = "testfn", .vendor_id = 0x1af4, .device_id = 0x1042,
			.class_code = 0x018000, .bar_size = { FN_BAR_SIZE },
		};
		CHECK_EQ(pci_host_add_function(r->b.pci, &fn_ops, &r->fn, &p, &r->fn_slot), 0);
	}
}

static void rig_fini(struct rig *r)
{
	board_destroy(&r->b);
	close(r->pipe[0]);
	close(r->pipe[1]);
	close(r->log.fd);
}

static void outb(struct rig *r, uint16_t port, uint8_t v)
{
	CHECK(bus_write(&r->pio, port, &v, 1));
}

static uint8_t inb(struct rig *r, uint16_t port)
{
	uint8_t v = 0;
	CHECK(bus_read(&r->pio, port, &v, 1));
	return v;
}

static void outw(struct rig *r, uint16_t port, uint16_t v)
{
	CHECK(bus_write(&r->pio, port, &v, 2));
}

static uint16_t inw(struct rig *r, uint16_t port)
{
	uint16_t v = 0;
	CHECK(bus_read(&r->pio, port, &v, 2));
	return v;
}

static void outl(struct rig *r, uint16_t port, uint32_t v)
{
	CHECK(bus_write(&r->pio, port, &v, 4));
}

static uint32_t inl(struct rig *r, uint16_t port)
{
	uint32_t v = 0;
	CHECK(bus_read(&r->pio, port, &v, 4));
	return v;
}

static void rtc_write(struct rig *r, uint8_t reg, uint8_t v)
{
	outb(r, PORT_RTC, reg);
	outb(r, PORT_RTC + 1, v);
}

static uint8_t rtc_read(struct rig *r, uint8_t reg)
{
	outb(r, PORT_RTC, reg);
	return inb(r, PORT_RTC + 1);
}

static uint32_t cfg_addr(unsigned slot, unsigned reg)
{
	return 0x80000000u | (slot << 11) | reg;
}

/* What a guest leaves in every device before the snapshot. */
static void program(struct rig *r)
{
	/* UART: 115200 baud (divisor 1), 8N1, RX interrupt on, OUT2 (the
	 * PC's interrupt gate), scratch byte, and 5 bytes not yet read */
	outb(r, PORT_COM1 + 3, 0x83);
	outb(r, PORT_COM1 + 0, 0x01);
	outb(r, PORT_COM1 + 1, 0x00);
	outb(r, PORT_COM1 + 3, 0x03);
	outb(r, PORT_COM1 + 1, 0x01);
	outb(r, PORT_COM1 + 4, 0x0b);
	outb(r, PORT_COM1 + 7, 0x5a);
	outb(r, PORT_COM1 + 2, 0x01);
	CHECK_EQ(ns16550_input(r->b.uart, (const uint8_t *)"hello", 5), 5);
	CHECK_EQ(r->level[GSI_COM1], 1);
	/* RTC: binary mode, 2001-02-03 04:05:06, a CMOS byte, the index */
	rtc_write(r, 0x0b, 0x80 | 0x04 | 0x02);
	rtc_write(r, 0x00, 6);
	rtc_write(r, 0x02, 5);
	rtc_write(r, 0x04, 4);
	rtc_write(r, 0x07, 3);
	rtc_write(r, 0x08, 2);
	rtc_write(r, 0x09, 1);
	rtc_write(r, 0x32, 20);
	rtc_write(r, 0x0b, 0x04 | 0x02);
	rtc_write(r, 0x40, 0x77);
	outb(r, PORT_RTC, 0x41);
	/* i8042: "write command byte" sent, its data byte not yet */
	outb(r, PORT_I8042_CMD, 0x60);
	/* ACPI PM: power button enabled and pressed: SCI up */
	outw(r, PORT_ACPI_PM1A_EVT + 2, ACPI_PM1_STS_PWRBTN);
	acpi_pm_power_button(r->b.acpi_pm);
	CHECK_EQ(r->level[GSI_ACPI_SCI], 1);
	outw(r, PORT_ACPI_PM1A_CNT, (uint16_t)(ACPI_PM1_CNT_SCI_EN | (3u << 10)));
	/* PCI: the function's BAR0 moved up 1 MiB, bus mastering on */
	outl(r, PORT_PCI_CONFIG, cfg_addr(r->fn_slot, PCI_CFG_BAR0));
	outl(r, PORT_PCI_CONFIG + 4, (uint32_t)LAYOUT_PCI_MMIO + 0x100000);
	outl(r, PORT_PCI_CONFIG, cfg_addr(r->fn_slot, PCI_CFG_COMMAND));
	outw(r, PORT_PCI_CONFIG + 4, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	outl(r, PORT_PCI_CONFIG, cfg_addr(r->fn_slot, PCI_CFG_INT_LINE));
	CHECK_EQ(r->fn.addr, LAYOUT_PCI_MMIO + 0x100000);
}

/* Saves @r's board into a parsed state file whose bytes stay in @w. */
static void save(struct rig *r, struct state_w *w, struct state_file *f)
{
	state_w_init(w);
	CHECK_EQ(board_save(&r->b, w), 0);
	const uint8_t *p;
	size_t len;
	char err[STATE_ERR_MAX];
	CHECK_EQ(state_w_finish(w, &p, &len), 0);
	CHECK_EQ(state_file_parse(p, len, f, err, sizeof(err)), 0);
}

static void test_round_trip(void)
{
	struct rig a, b;
	rig_init(&a, true);
	program(&a);
	struct state_w w;
	struct state_file f;
	save(&a, &w, &f);
	CHECK_EQ(f.nr_sections, 5);

	rig_init(&b, true);
	CHECK_EQ(b.fn.addr, LAYOUT_PCI_MMIO);
	char err[256] = "";
	CHECK_EQ(board_load(&b.b, &f, err, sizeof(err)), 0);
	CHECK_STREQ(err, "");

	/* UART: the interrupt is up again, the divisor and scratch kept, the
	 * bytes come out in order and then the line drops */
	CHECK_EQ(b.level[GSI_COM1], 1);
	CHECK_EQ(inb(&b, PORT_COM1 + 2) & 0x0f, 0x04); /* IIR: received data */
	CHECK_EQ(inb(&b, PORT_COM1 + 2) & 0xc0, 0xc0);  /* FIFOs on */
	CHECK_EQ(inb(&b, PORT_COM1 + 7), 0x5a);
	CHECK_EQ(inb(&b, PORT_COM1 + 4), 0x0b);
	outb(&b, PORT_COM1 + 3, 0x83);
	CHECK_EQ(inb(&b, PORT_COM1 + 0), 0x01);
	CHECK_EQ(inb(&b, PORT_COM1 + 1), 0x00);
	outb(&b, PORT_COM1 + 3, 0x03);
	char got[6] = "";
	for (int i = 0; i < 5; i++)
		got[i] = (char)inb(&b, PORT_COM1);
	CHECK_STREQ(got, "hello");
	CHECK_EQ(inb(&b, PORT_COM1 + 5) & 0x01, 0);
	CHECK_EQ(b.level[GSI_COM1], 0);

	/* RTC: the date set in A (the clock keeps running from there) */
	CHECK_EQ(rtc_read(&b, 0x09), 1);
	CHECK_EQ(rtc_read(&b, 0x32), 20);
	CHECK_EQ(rtc_read(&b, 0x08), 2);
	CHECK_EQ(rtc_read(&b, 0x07), 3);
	CHECK_EQ(rtc_read(&b, 0x0b), 0x06);
	CHECK_EQ(rtc_read(&b, 0x40), 0x77);

	/* i8042: the data byte completes the command sent before the save */
	outb(&b, PORT_I8042_DATA, 0x47);
	outb(&b, PORT_I8042_CMD, 0x20);
	CHECK_EQ(inb(&b, PORT_I8042_DATA), 0x47);

	/* ACPI PM: the pressed button and its SCI, SLP_TYP kept */
	CHECK_EQ(b.level[GSI_ACPI_SCI], 1);
	CHECK_EQ(inw(&b, PORT_ACPI_PM1A_EVT), ACPI_PM1_STS_PWRBTN);
	CHECK_EQ(inw(&b, PORT_ACPI_PM1A_CNT), ACPI_PM1_CNT_SCI_EN | (3u << 10));
	outw(&b, PORT_ACPI_PM1A_EVT, ACPI_PM1_STS_PWRBTN);
	CHECK_EQ(b.level[GSI_ACPI_SCI], 0);

	/* PCI: the latch, the moved BAR (the function was told), decoding */
	CHECK_EQ(inl(&b, PORT_PCI_CONFIG), cfg_addr(b.fn_slot, PCI_CFG_INT_LINE));
	CHECK_EQ(b.fn.addr, LAYOUT_PCI_MMIO + 0x100000);
	CHECK(b.fn.decoded);
	uint32_t v = 1;
	CHECK(bus_write(&b.mmio, LAYOUT_PCI_MMIO + 0x100000 + 8, &v, 4));
	CHECK_EQ(b.fn.writes, 1);
	CHECK_EQ(b.fn.last_off, 8);
	outl(&b, PORT_PCI_CONFIG, cfg_addr(b.fn_slot, PCI_CFG_COMMAND));
	CHECK_EQ(inw(&b, PORT_PCI_CONFIG + 4), PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);

	/* and a save of the restored board is the same file */
	struct state_w w2;
	struct state_file f2;
	rig_fini(&b);
	rig_init(&b, true);
	CHECK_EQ(board_load(&b.b, &f, err, sizeof(err)), 0);
	save(&b, &w2, &f2);
	CHECK_EQ(f2.len, f.len);
	CHECK(f2.len == f.len && memcmp(f2.p, f.p, f.len) == 0);
	state_w_free(&w2);
	state_w_free(&w);
	rig_fini(&a);
	rig_fini(&b);
}

/* ------------------------------------------------------------ hostile */

/* Copies file @f with section @name's payload replaced by @p/@n (NULL:
 * dropped) into @w, parsed into @out. */
static void rewrite(const struct state_file *f, const char *name, const void *p, size_t n,
		    struct state_w *w, struct state_file *out)
{
	char err[STATE_ERR_MAX], nm[STATE_NAME_MAX + 1];
	state_w_init(w);
	for (uint32_t i = 0; state_section_name(f, i, nm, sizeof(nm)); i++) {
		struct state_r r;
		CHECK_EQ(state_section(f, nm, UINT32_MAX, &r, err, sizeof(err)), 0);
		if (strcmp(nm, name) == 0 && !p)
			continue;
		state_section_begin(w, nm, r.version);
		if (strcmp(nm, name) == 0)
			state_put_bytes(w, p, n);
		else
			state_put_bytes(w, r.p, r.len);
		state_section_end(w);
	}
	const uint8_t *b;
	size_t len;
	CHECK_EQ(state_w_finish(w, &b, &len), 0);
	CHECK_EQ(state_file_parse(b, len, out, err, sizeof(err)), 0);
}

/* The payload of section @name of @f, copied into @buf (at most @cap). */
static size_t payload(const struct state_file *f, const char *name, uint8_t *buf, size_t cap)
{
	struct state_r r;
	char err[STATE_ERR_MAX];
	CHECK_EQ(state_section(f, name, UINT32_MAX, &r, err, sizeof(err)), 0);
	CHECK(r.len <= cap);
	memcpy(buf, r.p, r.len < cap ? r.len : cap);
	return r.len;
}

/* The bytes section @name of a save of @r has. */
static size_t section_now(struct rig *r, const char *name, uint8_t *buf, size_t cap)
{
	struct state_w w;
	struct state_file f;
	save(r, &w, &f);
	size_t n = payload(&f, name, buf, cap);
	state_w_free(&w);
	return n;
}

#define BIG (NS16550_RX_BUF + NS16550_TX_BUF + 64)

/* Loading a file whose section @name is @p/@n into a fresh board must
 * fail naming @name and @what, and leave that device as created. */
static void refused(const struct state_file *good, const char *name, const void *p, size_t n,
		    const char *what)
{
	struct state_w w;
	struct state_file f;
	rewrite(good, name, p, n, &w, &f);
	struct rig r, fresh;
	rig_init(&r, true);
	rig_init(&fresh, true);
	char err[256] = "";
	CHECK_EQ(board_load(&r.b, &f, err, sizeof(err)), -EINVAL);
	char want[80];
	snprintf(want, sizeof(want), "section %s: ", name);
	CHECK_HAS(err, want);
	if (what)
		CHECK_HAS(err, what);
	static uint8_t now[BIG], created[BIG];
	size_t a = section_now(&r, name, now, sizeof(now));
	size_t b = section_now(&fresh, name, created, sizeof(created));
	CHECK(a == b && memcmp(now, created, a) == 0);
	rig_fini(&r);
	rig_fini(&fresh);
	state_w_free(&w);
}

/* Section @name of @good with byte @at set to @v (@width bytes, LE). */
static void refused_at(const struct state_file *good, const char *name, size_t at,
		       uint64_t v, unsigned width, const char *what)
{
	static uint8_t buf[BIG];
	size_t n = payload(good, name, buf, sizeof(buf));
	CHECK(at + width <= n);
	for (unsigned i = 0; i < width; i++)
		buf[at + i] = (uint8_t)(v >> (8 * i));
	refused(good, name, buf, n, what);
}

static void test_fields_out_of_range(void)
{
	struct rig a;
	rig_init(&a, true);
	program(&a);
	struct state_w w;
	struct state_file f;
	save(&a, &w, &f);

	/* uart.com1: ier fcr lcr mcr scr dll dlm lsr_err msr thre rx_refused
	 * rx_count rx[] tx_count tx[] */
	refused_at(&f, "uart.com1", 0, 0xff, 1, "IER");
	refused_at(&f, "uart.com1", 1, 0x3e, 1, "FCR");
	refused_at(&f, "uart.com1", 3, 0xe0, 1, "MCR");
	refused_at(&f, "uart.com1", 7, 0x40, 1, "LSR");
	refused_at(&f, "uart.com1", 8, 0x00, 1, "MSR");
	refused_at(&f, "uart.com1", 9, 2, 1, "boolean");  /* THRE latched: a bool */
	refused_at(&f, "uart.com1", 10, 2, 1, "boolean");
	refused_at(&f, "uart.com1", 11, NS16550_RX_BUF + 1, 4, "receive byte count");
	refused_at(&f, "uart.com1", 11, 6, 4, "truncated");
	refused_at(&f, "uart.com1", 11, 4, 4, "truncated");
	refused_at(&f, "uart.com1", 11 + 4 + 5, NS16550_TX_BUF + 1, 4, "output byte count");
	/* rtc: cmos[128] index offset last_uf */
	refused_at(&f, "rtc", 0x0a, 0xa6, 1, "UIP");
	refused_at(&f, "rtc", 0x0c, 0x80, 1, "register C");
	refused_at(&f, "rtc", 0x0d, 0x00, 1, "register D");
	refused_at(&f, "rtc", 128, 0x80, 1, "index");
	refused_at(&f, "rtc", 129, 1ull << 62, 8, "clock offset");
	refused_at(&f, "rtc", 137, (uint64_t)-(1ll << 41), 8, "last update");
	/* i8042: status ctr outp out pending */
	refused_at(&f, "i8042", 0, 0x16, 1, "never set");
	refused_at(&f, "i8042", 0, 0x04, 1, "inhibited");
	refused_at(&f, "i8042", 1, 0x41, 1, "SYS");
	refused_at(&f, "i8042", 4, 0x99, 1, "pending command");
	/* acpi-pm: sts en cnt reset */
	refused_at(&f, "acpi-pm", 0, 0x0001, 2, "PM1_STS");
	refused_at(&f, "acpi-pm", 2, 0x8000, 2, "PM1_EN");
	refused_at(&f, "acpi-pm", 4, 0x0000, 2, "PM1_CNT");
	refused_at(&f, "acpi-pm", 4, 0x2001, 2, "PM1_CNT");
	refused_at(&f, "acpi-pm", 6, 0x04, 1, "RST_CPU");
	/* pci-host: address, count, then (slot, header[64]) per function */
	refused_at(&f, "pci-host", 0, 0x80000001u, 4, "config address");
	refused_at(&f, "pci-host", 4, 1, 1, "missing");
	refused_at(&f, "pci-host", 4, 3, 1, "truncated");
	refused_at(&f, "pci-host", 5 + 65, 0, 1, "saved twice");
	refused_at(&f, "pci-host", 5 + 65, 7, 1, "no function there");
	refused_at(&f, "pci-host", 5 + 65, 200, 1, "no such slot");
	refused_at(&f, "pci-host", 5 + 65 + 1 + PCI_CFG_DEVICE_ID, 0x1041, 2, "read-only");
	refused_at(&f, "pci-host", 5 + 65 + 1 + PCI_CFG_BAR0, LAYOUT_PCI_MMIO + 0x800, 4,
		   "not aligned");
	refused_at(&f, "pci-host", 5 + 65 + 1 + PCI_CFG_BAR0, LAYOUT_PCI_MMIO + 0x8, 4,
		   "not aligned");
	/* a missing section */
	refused(&f, "rtc", NULL, 0, "missing");
	state_w_free(&w);
	rig_fini(&a);
}

/* A snapshot of a board with a PCI host does not load into one without
 * (and the reverse): the VM was not rebuilt from the same config. */
static void test_board_mismatch(void)
{
	struct rig a, b;
	rig_init(&a, true);
	struct state_w w;
	struct state_file f;
	save(&a, &w, &f);
	rig_init(&b, false);
	char err[256] = "";
	CHECK_EQ(board_load(&b.b, &f, err, sizeof(err)), -EINVAL);
	CHECK_HAS(err, "section pci-host: ");
	CHECK_HAS(err, "this VM has none");
	state_w_free(&w);
	save(&b, &w, &f);
	CHECK_EQ(f.nr_sections, 4);
	rig_fini(&a);
	rig_init(&a, true);
	CHECK_EQ(board_load(&a.b, &f, err, sizeof(err)), -EINVAL);
	CHECK_HAS(err, "section pci-host: missing");
	state_w_free(&w);
	rig_fini(&a);
	rig_fini(&b);
}

/* A newer section version is refused by name, not misread. */
static void test_newer_version(void)
{
	struct rig a;
	rig_init(&a, true);
	struct state_w w, w2;
	struct state_file f, f2;
	save(&a, &w, &f);
	char err[256], nm[STATE_NAME_MAX + 1];
	state_w_init(&w2);
	for (uint32_t i = 0; state_section_name(&f, i, nm, sizeof(nm)); i++) {
		struct state_r r;
		CHECK_EQ(state_section(&f, nm, UINT32_MAX, &r, err, sizeof(err)), 0);
		state_section_begin(&w2, nm, strcmp(nm, "i8042") == 0 ? 99 : r.version);
		state_put_bytes(&w2, r.p, r.len);
		state_section_end(&w2);
	}
	const uint8_t *p;
	size_t len;
	CHECK_EQ(state_w_finish(&w2, &p, &len), 0);
	CHECK_EQ(state_file_parse(p, len, &f2, err, sizeof(err)), 0);
	struct rig b;
	rig_init(&b, true);
	CHECK_EQ(board_load(&b.b, &f2, err, sizeof(err)), -EINVAL);
	CHECK_HAS(err, "section i8042: version 99");
	state_w_free(&w);
	state_w_free(&w2);
	rig_fini(&a);
	rig_fini(&b);
}

/* Every truncation of every section, and every byte of every section
 * flipped: refused or accepted, never a crash, and a refusal names the
 * section. (ASan/UBSan builds run this too.) */
static void test_sweep(void)
{
	struct rig a;
	rig_init(&a, true);
	program(&a);
	struct state_w w;
	struct state_file f;
	save(&a, &w, &f);
	static const char *const names[] = { "uart.com1", "i8042", "rtc", "acpi-pm", "pci-host" };
	static uint8_t buf[BIG];
	unsigned refusals = 0, loads = 0;
	for (size_t s = 0; s < sizeof(names) / sizeof(names[0]); s++) {
		size_t n = payload(&f, names[s], buf, sizeof(buf));
		for (size_t cut = 0; cut <= n; cut++) {
			struct state_w w2;
			struct state_file f2;
			rewrite(&f, names[s], buf, cut, &w2, &f2);
			struct rig r;
			rig_init(&r, true);
			char err[256] = "";
			int rc = board_load(&r.b, &f2, err, sizeof(err));
			refusals += rc < 0;
			loads++;
			CHECK_EQ(rc, cut == n ? 0 : -EINVAL);
			rig_fini(&r);
			state_w_free(&w2);
		}
		for (size_t at = 0; at < n && at < 256; at++) {
			buf[at] ^= 0xff;
			struct state_w w2;
			struct state_file f2;
			rewrite(&f, names[s], buf, n, &w2, &f2);
			struct rig r;
			rig_init(&r, true);
			char err[256] = "";
			if (board_load(&r.b, &f2, err, sizeof(err)) < 0) {
				refusals++;
				CHECK_HAS(err, "section ");
			}
			loads++;
			rig_fini(&r);
			state_w_free(&w2);
			buf[at] ^= 0xff;
		}
	}
	CHECK(refusals > loads / 4);
	state_w_free(&w);
	rig_fini(&a);
}

int main(void)
{
	RUN(test_round_trip);
	RUN(test_fields_out_of_range);
	RUN(test_board_mismatch);
	RUN(test_newer_version);
	RUN(test_sweep);
	return unit_done();
}
