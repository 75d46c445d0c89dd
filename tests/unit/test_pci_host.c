/* The PCI host bridge alone (devices/pci_host.c): configuration mechanism
 * #1 addressing, every bus/device/function a guest can name, the address
 * and data ports at every width, header write masks, and the BAR window.
 * A guest probes all 256 x 32 x 8 functions; every one that is not there
 * must read all-ones, so the decode of each address field is tested on
 * both sides of its width (a device number masked to 4 bits would make
 * slot 17 answer as slot 1). */
#include <errno.h>
#include <string.h>

#include "mem/layout.h"
#include "vmm/board.h"
#include "devices/bus.h"
#include "devices/pci_host.h"
#include "unit.h"

#define NR_FNS 17 /* functions added after the host bridge: slots 1..17 */

struct fn_state {
	unsigned reads, writes, remaps;
	uint64_t remap_addr;
	bool remap_decoded;
	uint64_t last_off;
	unsigned last_bar, last_len;
	uint8_t cfg[256];
};

static void fn_cfg_read(void *cookie, unsigned off, void *data, unsigned len)
{
	struct fn_state *f = cookie;
	memcpy(data, &f->cfg[off], len);
}

static void fn_cfg_write(void *cookie, unsigned off, const void *data, unsigned len)
{
	struct fn_state *f = cookie;
	memcpy(&f->cfg[off], data, len);
}

static void fn_bar_read(void *cookie, unsigned bar, uint64_t off, void *data, unsigned len)
{
	struct fn_state *f = cookie;
	f->reads++;
	f->last_bar = bar;
	f->last_off = off;
	f->last_len = len;
	memset(data, 0x5a, len);
}

static void fn_bar_write(void *cookie, unsigned bar, uint64_t off, const void *data, unsigned len)
{
	struct fn_state *f = cookie;
	f->writes++;
	f->last_bar = bar;
	f->last_off = off;
	f->last_len = len;
}

/* Where the function is told its BAR now decodes (ioeventfds follow it). */
static void fn_bar_remap(void *cookie, unsigned bar, uint64_t addr, bool decoded)
{
	struct fn_state *f = cookie;
	f->remaps++;
	f->remap_addr = addr;
	f->remap_decoded = decoded;
}

static const struct pci_function_ops fn_ops = {
	.cfg_read = fn_cfg_read, .cfg_write = fn_cfg_write,
	.bar_read = fn_bar_read, .bar_write = fn_bar_write, .bar_remap = fn_bar_remap,
};

struct rig {
	struct logger log;
	struct bus pio, mmio;
	struct pci_host *host;
	struct fn_state fn[NR_FNS + 1];
};

/* The host bridge at slot 0 and NR_FNS functions, device id 0x1000 + slot;
 * slot 1 has a 4 KiB BAR0 and config-space hooks, the others no ops. */
static void rig_init(struct rig *r)
{
	memset(r, 0, sizeof(*r));
	log_init(&r->log, LOG_ERROR, "test");
	bus_init(&r->pio, "pio");
	bus_init(&r->mmio, "mmio");
	const struct pci_host_params hp = { .log = &r->log, .config_port = PORT_PCI_CONFIG,
		.window_base = LAYOUT_PCI_MMIO, .window_size = LAYOUT_PCI_MMIO_SIZE };
	CHECK_EQ(pci_host_create(&r->pio, &r->mmio, &hp, &r->host), 0);
	for (unsigned i = 1; i <= NR_FNS; i++) {
		struct pci_function_params p = {
			.name = "fn", .vendor_id = 0x1234, .device_id = (uint16_t)(0x1000 + i),
			.class_code = 0xff0000,
		};
		if (i == 1)
			p.bar_size[0] = 0x1000;
		unsigned slot = 0;
		memset(r->fn[i].cfg, (int)i, sizeof(r->fn[i].cfg));
		CHECK_EQ(pci_host_add_function(r->host, i == 1 ? &fn_ops : NULL, &r->fn[i], &p, &slot),
			 0);
		CHECK_EQ(slot, i);
	}
}

static void rig_fini(struct rig *r)
{
	pci_host_destroy(r->host);
}

static uint32_t addr_of(unsigned bus, unsigned dev, unsigned fn, unsigned reg)
{
	return 0x80000000u | bus << 16 | dev << 11 | fn << 8 | (reg & 0xfc);
}

static uint32_t cfg_rd(struct rig *r, uint32_t addr, unsigned o, unsigned len)
{
	uint32_t v = 0;
	CHECK(bus_write(&r->pio, PORT_PCI_CONFIG, &addr, 4));
	CHECK(bus_read(&r->pio, PORT_PCI_CONFIG + 4 + o, &v, len));
	return v;
}

static void cfg_wr(struct rig *r, uint32_t addr, unsigned o, uint32_t v, unsigned len)
{
	CHECK(bus_write(&r->pio, PORT_PCI_CONFIG, &addr, 4));
	CHECK(bus_write(&r->pio, PORT_PCI_CONFIG + 4 + o, &v, len));
}

/* Every bus, device and function a guest can address: only 00:00.0 to
 * 00:17.0 answer, each with its own ids; everything else reads all-ones. */
static void test_every_function(void)
{
	struct rig r;
	rig_init(&r);
	static const unsigned buses[] = { 0, 1, 2, 127, 128, 255 };
	unsigned present = 0, wrong = 0;
	for (unsigned b = 0; b < sizeof(buses) / sizeof(buses[0]); b++) {
		for (unsigned dev = 0; dev < 32; dev++) {
			for (unsigned fn = 0; fn < 8; fn++) {
				uint32_t v = cfg_rd(&r, addr_of(buses[b], dev, fn, 0), 0, 4);
				uint32_t want = 0xffffffffu;
				if (buses[b] == 0 && fn == 0 && dev == 0)
					want = 0x29c08086u;
				else if (buses[b] == 0 && fn == 0 && dev <= NR_FNS)
					want = (0x1000u + dev) << 16 | 0x1234;
				if (v != want) {
					if (wrong++ < 8)
						fprintf(stderr, "  %02x:%02x.%u reads 0x%08x, want 0x%08x\n",
							buses[b], dev, fn, v, want);
				} else if (want != 0xffffffffu) {
					present++;
				}
			}
		}
	}
	CHECK_EQ(wrong, 0);
	CHECK_EQ(present, NR_FNS + 1);
	/* every register of an empty slot, at every width, reads all-ones */
	for (unsigned reg = 0; reg < 256; reg += 4) {
		CHECK_EQ(cfg_rd(&r, addr_of(0, 31, 0, reg), 0, 4), 0xffffffffu);
		CHECK_EQ(cfg_rd(&r, addr_of(0, 18, 0, reg), 2, 2), 0xffffu);
		CHECK_EQ(cfg_rd(&r, addr_of(0, 1, 7, reg), 3, 1), 0xffu);
	}
	/* writes to them change nothing anywhere */
	cfg_wr(&r, addr_of(0, 17 + 16, 0, 0x04), 0, 0xffffffffu, 4);
	cfg_wr(&r, addr_of(1, 1, 0, 0x04), 0, 0xffffffffu, 4);
	cfg_wr(&r, addr_of(0, 1, 1, 0x04), 0, 0xffffffffu, 4);
	CHECK_EQ(cfg_rd(&r, addr_of(0, 1, 0, 0x04), 0, 2), PCI_COMMAND_MEMORY);
	CHECK_EQ(cfg_rd(&r, addr_of(0, 17, 0, 0x04), 0, 2), 0);
	/* a removed function reads all-ones again */
	pci_host_remove_function(r.host, 17);
	CHECK_EQ(cfg_rd(&r, addr_of(0, 17, 0, 0), 0, 4), 0xffffffffu);
	CHECK_EQ(cfg_rd(&r, addr_of(0, 16, 0, 0), 0, 4), 0x10101234u);
	pci_host_remove_function(r.host, 0);  /* the bridge stays */
	pci_host_remove_function(r.host, 32); /* no such slot */
	CHECK_EQ(cfg_rd(&r, addr_of(0, 0, 0, 0), 0, 4), 0x29c08086u);
	rig_fini(&r);
}

/* The address port holds enable, bus, device, function and register (bits
 * 31, 23:2); only dword accesses at 0xcf8 reach it. Data-port accesses of
 * every width at every byte of the dword reach the addressed register. */
static void test_ports(void)
{
	struct rig r;
	rig_init(&r);
	uint32_t a = 0xffffffffu, v = 0;
	CHECK(bus_write(&r.pio, PORT_PCI_CONFIG, &a, 4));
	CHECK(bus_read(&r.pio, PORT_PCI_CONFIG, &v, 4));
	CHECK_EQ(v, 0x80fffffcu);
	/* byte and word accesses at 0xcf8 are not the address register */
	a = addr_of(0, 0, 0, 0);
	CHECK(bus_write(&r.pio, PORT_PCI_CONFIG, &a, 4));
	uint16_t w = 0x1234;
	CHECK(bus_write(&r.pio, PORT_PCI_CONFIG, &w, 2));
	CHECK(bus_write(&r.pio, PORT_PCI_CONFIG + 2, &w, 2));
	uint8_t b = 0x12;
	CHECK(bus_write(&r.pio, PORT_PCI_CONFIG, &b, 1));
	CHECK(bus_read(&r.pio, PORT_PCI_CONFIG, &v, 4));
	CHECK_EQ(v, a);
	w = 0;
	CHECK(bus_read(&r.pio, PORT_PCI_CONFIG, &w, 2));
	CHECK_EQ(w, 0xffff);
	/* 0xcf9 (the reset control register) reads 0 */
	b = 0xff;
	CHECK(bus_read(&r.pio, PORT_ACPI_RESET, &b, 1));
	CHECK_EQ(b, 0);
	/* sub-dword data accesses, each byte of the dword */
	uint32_t id = (0x1000u + 5) << 16 | 0x1234;
	for (unsigned o = 0; o < 4; o++)
		CHECK_EQ(cfg_rd(&r, addr_of(0, 5, 0, 0), o, 1), (id >> (8 * o)) & 0xff);
	CHECK_EQ(cfg_rd(&r, addr_of(0, 5, 0, 0), 2, 2), 0x1005);
	CHECK_EQ(cfg_rd(&r, addr_of(0, 5, 0, 0), 1, 2), 0x0512);
	/* the register number's low two bits are not part of the address */
	CHECK_EQ(cfg_rd(&r, addr_of(0, 5, 0, 0) | 3, 0, 4), id);
	/* an access that would run past the data port is not a config access */
	a = addr_of(0, 5, 0, 0);
	CHECK(bus_write(&r.pio, PORT_PCI_CONFIG, &a, 4));
	CHECK(!bus_read(&r.pio, PORT_PCI_CONFIG + 6, &v, 4));
	rig_fini(&r);
}

/* Header writes keep read-only bits; the function's own space (0x40 and
 * up) goes to its hooks, or reads 0 without them; the status register's
 * interrupt bit follows the function's INTx state. */
static void test_header(void)
{
	struct rig r;
	rig_init(&r);
	uint32_t f1 = addr_of(0, 1, 0, 0);
	cfg_wr(&r, f1 | 0x00, 0, 0, 4);                       /* ids are read-only */
	CHECK_EQ(cfg_rd(&r, f1 | 0x00, 0, 4), 0x10011234u);
	cfg_wr(&r, f1 | 0x04, 0, 0xffffffffu, 4);             /* command: its writable bits */
	CHECK_EQ(cfg_rd(&r, f1 | 0x04, 0, 2), PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER | 1u << 6 |
		 1u << 8 | PCI_COMMAND_INTX_DISABLE);
	CHECK_EQ(pci_host_command(r.host, 1), cfg_rd(&r, f1 | 0x04, 0, 2));
	CHECK_EQ(cfg_rd(&r, f1 | 0x04, 2, 2), 0);              /* status unchanged */
	pci_host_set_intx_status(r.host, 1, true);
	uint32_t cmd = cfg_rd(&r, f1 | 0x04, 0, 2);
	CHECK_EQ(cmd, pci_host_command(r.host, 1)); /* the bit is in status, not command */
	CHECK_EQ(cfg_rd(&r, f1 | 0x04, 0, 1), cmd & 0xff);
	CHECK_EQ(cfg_rd(&r, f1 | 0x04, 2, 2), PCI_STATUS_INTERRUPT);
	CHECK_EQ(cfg_rd(&r, f1 | 0x04, 2, 1), PCI_STATUS_INTERRUPT);
	CHECK_EQ(cfg_rd(&r, f1 | 0x04, 3, 1), 0);
	CHECK_EQ(cfg_rd(&r, f1 | 0x04, 0, 4) >> 16, PCI_STATUS_INTERRUPT);
	CHECK_EQ(cfg_rd(&r, addr_of(0, 2, 0, 0x04), 2, 2), 0); /* only slot 1's */
	pci_host_set_intx_status(r.host, 1, false);
	CHECK_EQ(cfg_rd(&r, f1 | 0x04, 2, 2), 0);
	pci_host_set_intx_status(r.host, PCI_HOST_SLOTS, true);  /* ignored */
	CHECK_EQ(pci_host_command(r.host, PCI_HOST_SLOTS), 0);
	cfg_wr(&r, f1 | 0x3c, 0, 0xabcd, 2);                  /* line writable, pin not */
	CHECK_EQ(cfg_rd(&r, f1 | 0x3c, 0, 2), 0x01cd);
	/* 0x3f is the header's last byte, 0x40 the function's first */
	CHECK_EQ(cfg_rd(&r, f1 | 0x3c, 3, 1), 0);
	CHECK_EQ(cfg_rd(&r, f1 | 0x40, 0, 1), 1);              /* slot 1's hooks */
	cfg_wr(&r, f1 | 0xfc, 3, 0x77, 1);
	CHECK_EQ(r.fn[1].cfg[0xff], 0x77);
	cfg_wr(&r, f1 | 0x40, 0, 0x44332211u, 4);                  /* 0x40: the function's */
	CHECK_EQ(r.fn[1].cfg[0x40], 0x11);
	CHECK_EQ(r.fn[1].cfg[0x43], 0x44);
	CHECK_EQ(cfg_rd(&r, f1 | 0x3c, 0, 4) >> 8, 0x0001);       /* the header unchanged */
	cfg_wr(&r, f1 | 0x3c, 3, 0x99, 1);                         /* max latency: read-only */
	CHECK_EQ(cfg_rd(&r, f1 | 0x3c, 3, 1), 0);
	CHECK_EQ(cfg_rd(&r, addr_of(0, 2, 0, 0x40), 0, 4), 0); /* no hooks: 0 */
	cfg_wr(&r, addr_of(0, 2, 0, 0x40), 0, 0x12345678u, 4);
	CHECK_EQ(r.fn[2].cfg[0x40], 2);
	/* reset puts the header back as it was at power-on */
	cfg_wr(&r, f1 | 0x04, 0, 0, 2);
	cfg_wr(&r, f1 | 0x3c, 0, 0x55, 1);
	pci_host_reset(r.host);
	CHECK_EQ(cfg_rd(&r, f1 | 0x04, 0, 2), PCI_COMMAND_MEMORY);
	CHECK_EQ(cfg_rd(&r, f1 | 0x3c, 0, 1), pci_host_slot_gsi(1));
	rig_fini(&r);
}

/* BAR0 of slot 1: 4 KiB at the start of the window, decoded while memory
 * space is on and the BAR lies inside the window; accesses reach the
 * function with the BAR-relative offset, the rest reads all-ones. */
static void test_bar_window(void)
{
	struct rig r;
	rig_init(&r);
	struct fn_state *f = &r.fn[1];
	uint32_t bar = addr_of(0, 1, 0, PCI_CFG_BAR0);
	CHECK_EQ(cfg_rd(&r, bar, 0, 4), (uint32_t)LAYOUT_PCI_MMIO);
	uint64_t v = 0;
	CHECK(bus_read(&r.mmio, LAYOUT_PCI_MMIO + 0xffc, &v, 4));
	CHECK_EQ(v, 0x5a5a5a5a);
	CHECK_EQ(f->last_off, 0xffc);
	CHECK_EQ(f->last_len, 4);
	/* straddling the BAR's end, or just past it: all-ones, not the function */
	unsigned before = f->reads;
	CHECK(bus_read(&r.mmio, LAYOUT_PCI_MMIO + 0xffe, &v, 4));
	CHECK_EQ(v & 0xffffffff, 0xffffffffu);
	CHECK(bus_read(&r.mmio, LAYOUT_PCI_MMIO + 0x1000, &v, 4));
	CHECK_EQ(v & 0xffffffff, 0xffffffffu);
	CHECK_EQ(f->reads, before);
	uint32_t w = 1;
	CHECK(bus_write(&r.mmio, LAYOUT_PCI_MMIO + 0x1000, &w, 4));
	CHECK_EQ(f->writes, 0);
	CHECK(bus_write(&r.mmio, LAYOUT_PCI_MMIO + 8, &w, 4));
	CHECK_EQ(f->writes, 1);
	CHECK_EQ(f->last_off, 8);
	/* sizing: all-ones reads back the size mask, low flag bits clear */
	cfg_wr(&r, bar, 0, 0xffffffffu, 4);
	CHECK_EQ(cfg_rd(&r, bar, 0, 4), 0xfffff000u);
	CHECK(bus_read(&r.mmio, LAYOUT_PCI_MMIO, &v, 4)); /* not decoded there now */
	CHECK_EQ(v & 0xffffffff, 0xffffffffu);
	/* moved to the last 4 KiB of the window: decoded there */
	uint64_t last = LAYOUT_PCI_MMIO + LAYOUT_PCI_MMIO_SIZE - 0x1000;
	cfg_wr(&r, bar, 0, (uint32_t)last | 0xf, 4);
	CHECK_EQ(cfg_rd(&r, bar, 0, 4), (uint32_t)last);
	before = f->reads;
	CHECK(bus_read(&r.mmio, last + 0xff8, &v, 8));
	CHECK_EQ(f->reads, before + 1);
	CHECK_EQ(f->last_off, 0xff8);
	CHECK(f->remap_decoded);
	CHECK_EQ(f->remap_addr, last);
	/* one page further it would end past the window: not decoded */
	cfg_wr(&r, bar, 0, (uint32_t)(last + 0x1000), 4);
	CHECK(!f->remap_decoded);
	/* outside the window (below it, or over its end): not decoded */
	cfg_wr(&r, bar, 0, (uint32_t)LAYOUT_PCI_MMIO - 0x1000, 4);
	CHECK(!f->remap_decoded); /* no ioeventfd below the window (it may be RAM) */
	CHECK(!bus_read(&r.mmio, LAYOUT_PCI_MMIO - 0x1000, &v, 4));
	CHECK(bus_read(&r.mmio, LAYOUT_PCI_MMIO, &v, 4));
	CHECK_EQ(v & 0xffffffff, 0xffffffffu);
	CHECK_EQ(f->reads, before + 1);
	/* memory space off: not decoded; on again: decoded */
	cfg_wr(&r, bar, 0, (uint32_t)LAYOUT_PCI_MMIO, 4);
	cfg_wr(&r, addr_of(0, 1, 0, 0x04), 0, 0, 2);
	CHECK(bus_read(&r.mmio, LAYOUT_PCI_MMIO, &v, 4));
	CHECK_EQ(v & 0xffffffff, 0xffffffffu);
	CHECK_EQ(f->reads, before + 1);
	CHECK(!f->remap_decoded);
	cfg_wr(&r, addr_of(0, 1, 0, 0x04), 0, PCI_COMMAND_MEMORY, 2);
	CHECK(f->remap_decoded);
	CHECK_EQ(f->remap_addr, LAYOUT_PCI_MMIO);
	CHECK(bus_read(&r.mmio, LAYOUT_PCI_MMIO, &v, 4));
	CHECK_EQ(f->reads, before + 2);
	/* BARs a function does not implement stay zero */
	cfg_wr(&r, addr_of(0, 1, 0, PCI_CFG_BAR0 + 4), 0, 0xffffffffu, 4);
	CHECK_EQ(cfg_rd(&r, addr_of(0, 1, 0, PCI_CFG_BAR0 + 4), 0, 4), 0);
	rig_fini(&r);
}

/* A function's parameters: BAR sizes a power of two from 16 bytes to half
 * the window, with bar hooks; the capability pointer dword-aligned past the
 * header. Each limit on both sides. */
static void test_function_params(void)
{
	struct rig r;
	rig_init(&r);
	static const struct { uint32_t size; int rc; } bars[] = {
		{ 8, -EINVAL }, { 16, 0 }, { 0x3000, -EINVAL }, { 0x1001, -EINVAL }, { 0x2000, 0 },
		{ (uint32_t)(LAYOUT_PCI_MMIO_SIZE / 2), 0 },
		{ (uint32_t)LAYOUT_PCI_MMIO_SIZE, -EINVAL },
	};
	pci_host_remove_function(r.host, 17);
	for (unsigned i = 0; i < sizeof(bars) / sizeof(bars[0]); i++) {
		struct pci_function_params p = { .name = "t", .bar_size = { bars[i].size } };
		unsigned slot = 0;
		int rc = pci_host_add_function(r.host, &fn_ops, &r.fn[17], &p, &slot);
		if (rc != bars[i].rc)
			fprintf(stderr, "  BAR of 0x%x bytes: %d\n", bars[i].size, rc);
		CHECK_EQ(rc, bars[i].rc);
		if (rc == 0)
			pci_host_remove_function(r.host, slot);
	}
	/* a BAR needs bar hooks */
	static const struct pci_function_ops no_bar_ops = { .cfg_read = fn_cfg_read };
	struct pci_function_params p = { .name = "t", .bar_size = { 0x1000 } };
	unsigned slot;
	CHECK_EQ(pci_host_add_function(r.host, &no_bar_ops, NULL, &p, &slot), -EINVAL);
	static const struct { uint8_t cap; int rc; } caps[] = {
		{ 0x3c, -EINVAL }, { 0x40, 0 }, { 0x42, -EINVAL }, { 0x44, 0 }, { 0xfc, 0 },
	};
	for (unsigned i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
		struct pci_function_params q = { .name = "t", .cap_ptr = caps[i].cap };
		int rc = pci_host_add_function(r.host, NULL, NULL, &q, &slot);
		CHECK_EQ(rc, caps[i].rc);
		if (rc == 0) {
			CHECK_EQ(cfg_rd(&r, addr_of(0, slot, 0, PCI_CFG_CAP_PTR), 0, 1), caps[i].cap);
			CHECK_EQ(cfg_rd(&r, addr_of(0, slot, 0, 0x04), 2, 2), PCI_STATUS_CAP_LIST);
			pci_host_remove_function(r.host, slot);
		}
	}
	rig_fini(&r);
}

int main(void)
{
	RUN(test_every_function);
	RUN(test_ports);
	RUN(test_header);
	RUN(test_bar_window);
	RUN(test_function_params);
	return unit_done();
}
