/* The board table: kvmrun's PC, one row per platform device. */
#include "vmm/board.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "mem/layout.h"
#include "devices/acpi_pm.h"
#include "devices/debug_exit.h"
#include "devices/i8042.h"
#include "devices/mc146818.h"
#include "devices/ns16550.h"
#include "devices/pci_host.h"
#include "devices/pvpanic.h"
#include "lib/exitcode.h"
#include "vmm/vm.h"

#define BOARD_ROW_IO 3
#define NO_IRQ (-1)

/* MPS INTI flags of a level-triggered, active-high line (the SCI) */
#define INTI_LEVEL_HIGH 0x0d

struct board_row {
	const char *name;                   /* in messages */
	struct acpi_io io[BOARD_ROW_IO];    /* port ranges; len 0 ends */
	int irq;                            /* ISA IRQ, or NO_IRQ */
	unsigned gsi;                       /* where the IRQ reaches the IOAPIC */
	bool level;                         /* level-triggered, active-high */
	/* DSDT node; NULL: the device has none */
	const char *acpi_name, *hid;
	bool eisa;
	int uid;
	bool (*present)(const struct board_opts *o); /* NULL: always */
	/* NULL: nothing to create here (KVM's own device) */
	int (*create)(struct board *b, const struct board_row *row);
	void (*destroy)(struct board *b);
	/* what the row alone cannot say; may be NULL */
	void (*describe)(const struct board_row *row, struct acpi_params *p);
	/* saved state: the section's name and version, and the device's
	 * save/load of its payload; NULL: the device has no state */
	const char *section;
	uint32_t version;
	void (*save)(const struct board *b, struct state_w *w);
	int (*load)(struct board *b, struct state_r *r);
};

static struct irq_line row_line(const struct board *b, const struct board_row *row)
{
	return (struct irq_line){ .set = b->env.set_irq, .cookie = b->env.cookie, .gsi = row->gsi };
}

static void on_reset_request(void *cookie)
{
	const struct board *b = cookie;
	b->env.request_exit(b->env.cookie, VM_RESTART, "guest requested a reset");
}

static void on_poweroff(void *cookie)
{
	const struct board *b = cookie;
	b->env.request_exit(b->env.cookie, EXIT_GUEST_POWEROFF, "guest powered off");
}

static void on_debug_exit(void *cookie, int code)
{
	const struct board *b = cookie;
	b->env.request_exit(b->env.cookie, code, "guest wrote to the debug-exit port");
}

/* A crash-kernel-loaded event is only information; a panic ends the VM. */
static void on_pvpanic(void *cookie, uint8_t events)
{
	const struct board *b = cookie;
	if (events & PVPANIC_PANICKED)
		b->env.request_exit(b->env.cookie, EXIT_GUEST_CRASH, "guest kernel panic (pvpanic)");
}

/* 0xcf9 lies inside the PCI config ports: the host bridge forwards it. */
static void forward_cf9(void *cookie, uint8_t value)
{
	const struct board *b = cookie;
	if (b->acpi_pm)
		acpi_pm_reset_write(b->acpi_pm, value);
}

static int create_uart(struct board *b, const struct board_row *row)
{
	struct ns16550_params p = {
		.irq = row_line(b, row),
		.out_fd = b->env.serial_out_fd, .log = b->env.log, .name = "ttyS0",
		/* a guest printing in a loop must not fill the host's disk */
		.out_limit = b->env.serial_out_limit,
		.out_limit_key = "serial.max_size",
	};
	return ns16550_create(b->env.pio, row->io[0].base, &p, &b->uart);
}

static int create_i8042(struct board *b, const struct board_row *row)
{
	struct i8042_params p = {
		.data_port = row->io[0].base, .cmd_port = row->io[1].base,
		.reset = on_reset_request, .cookie = b, .log = b->env.log,
	};
	return i8042_create(b->env.pio, &p, &b->i8042);
}

static int create_rtc(struct board *b, const struct board_row *row)
{
	struct mc146818_params p = { .log = b->env.log };
	return mc146818_create(b->env.pio, row->io[0].base, &p, &b->rtc);
}

static int create_acpi_pm(struct board *b, const struct board_row *row)
{
	struct acpi_pm_params p = {
		.evt_port = row->io[0].base, .cnt_port = row->io[1].base,
		.reset_port = row->io[2].base,
		.poweroff = on_poweroff, .reset = on_reset_request, .cookie = b,
		.log = b->env.log, .sci = row_line(b, row),
		/* with a PCI host bridge, 0xcf9 is inside its ports and forwarded */
		.reset_port_forwarded = b->env.opts.pci,
	};
	return acpi_pm_create(b->env.pio, &p, &b->acpi_pm);
}

static int create_debug_exit(struct board *b, const struct board_row *row)
{
	struct debug_exit_params p = { .exit = on_debug_exit, .cookie = b, .log = b->env.log };
	return debug_exit_create(b->env.pio, row->io[0].base, &p, &b->debug_exit);
}

static int create_pvpanic(struct board *b, const struct board_row *row)
{
	struct pvpanic_params p = { .event = on_pvpanic, .cookie = b, .log = b->env.log };
	return pvpanic_create(b->env.pio, row->io[0].base, &p, &b->pvpanic);
}

static int create_pci(struct board *b, const struct board_row *row)
{
	struct pci_host_params p = {
		.log = b->env.log, .config_port = row->io[0].base,
		.window_base = LAYOUT_PCI_MMIO, .window_size = LAYOUT_PCI_MMIO_SIZE,
		.cf9_write = forward_cf9, .cf9_cookie = b,
	};
	return pci_host_create(b->env.pio, b->env.mmio, &p, &b->pci);
}

static void destroy_uart(struct board *b) { ns16550_destroy(b->uart); b->uart = NULL; }
static void destroy_i8042(struct board *b) { i8042_destroy(b->i8042); b->i8042 = NULL; }
static void destroy_rtc(struct board *b) { mc146818_destroy(b->rtc); b->rtc = NULL; }
static void destroy_acpi_pm(struct board *b) { acpi_pm_destroy(b->acpi_pm); b->acpi_pm = NULL; }
static void destroy_pvpanic(struct board *b) { pvpanic_destroy(b->pvpanic); b->pvpanic = NULL; }
static void destroy_pci(struct board *b) { pci_host_destroy(b->pci); b->pci = NULL; }

static void destroy_debug_exit(struct board *b)
{
	if (b->debug_exit)
		debug_exit_destroy(b->debug_exit);
	b->debug_exit = NULL;
}

static void save_uart(const struct board *b, struct state_w *w) { ns16550_save(b->uart, w); }
static void save_i8042(const struct board *b, struct state_w *w) { i8042_save(b->i8042, w); }
static void save_rtc(const struct board *b, struct state_w *w) { mc146818_save(b->rtc, w); }
static void save_acpi_pm(const struct board *b, struct state_w *w) { acpi_pm_save(b->acpi_pm, w); }
static void save_pci(const struct board *b, struct state_w *w) { pci_host_save(b->pci, w); }
static int load_uart(struct board *b, struct state_r *r) { return ns16550_load(b->uart, r); }
static int load_i8042(struct board *b, struct state_r *r) { return i8042_load(b->i8042, r); }
static int load_rtc(struct board *b, struct state_r *r) { return mc146818_load(b->rtc, r); }
static int load_acpi_pm(struct board *b, struct state_r *r) { return acpi_pm_load(b->acpi_pm, r); }
static int load_pci(struct board *b, struct state_r *r) { return pci_host_load(b->pci, r); }

static bool has_pci(const struct board_opts *o) { return o->pci; }
static bool has_debug_exit(const struct board_opts *o) { return o->debug_exit; }

static void describe_acpi_pm(const struct board_row *row, struct acpi_params *p)
{
	p->fixed = (struct acpi_fixed_hw){
		.pm1a_evt = row->io[0].base, .pm1_evt_len = row->io[0].len,
		.pm1a_cnt = row->io[1].base, .pm1_cnt_len = row->io[1].len,
		.reset_port = row->io[2].base, .reset_value = ACPI_PM_RESET_VALUE,
		.slp_typ_s5 = ACPI_PM_SLP_TYP_S5, .sci = (uint16_t)row->gsi,
	};
}

static void describe_pci(const struct board_row *row, struct acpi_params *p)
{
	struct acpi_pci_host *h = &p->pci_host;
	p->pci = true;
	*h = (struct acpi_pci_host){
		.config_port = row->io[0].base, .config_len = row->io[0].len,
		.window_base = (uint32_t)LAYOUT_PCI_MMIO,
		.window_size = (uint32_t)LAYOUT_PCI_MMIO_SIZE,
		.nr_slots = PCI_HOST_SLOTS,
	};
	for (unsigned slot = 1; slot < PCI_HOST_SLOTS; slot++)
		h->slot_gsi[slot] = pci_host_slot_gsi(slot);
}

/* Created top to bottom, destroyed bottom to top; the DSDT lists the
 * devices, and the MADT the overrides, in this order too. */
static const struct board_row board_rows[] = {
	{ .name = "pit (in-kernel)", .io = { { 0x40, 4 } }, .irq = 0, .gsi = 2 },
	{ .name = "serial (16550A)", .io = { { PORT_COM1, NS16550_NR_PORTS } },
	  .irq = GSI_COM1, .gsi = GSI_COM1,
	  .acpi_name = "COM1", .hid = "PNP0501", .eisa = true, .uid = 1,
	  .create = create_uart, .destroy = destroy_uart,
	  .section = "uart.com1", .version = NS16550_STATE_VERSION,
	  .save = save_uart, .load = load_uart },
	{ .name = "i8042", .io = { { PORT_I8042_DATA, 1 }, { PORT_I8042_CMD, 1 } },
	  .irq = 1, .gsi = 1,
	  .acpi_name = "PS2K", .hid = "PNP0303", .eisa = true, .uid = -1,
	  .create = create_i8042, .destroy = destroy_i8042,
	  .section = "i8042", .version = I8042_STATE_VERSION,
	  .save = save_i8042, .load = load_i8042 },
	{ .name = "rtc (mc146818)", .io = { { PORT_RTC, MC146818_NR_PORTS } },
	  .irq = 8, .gsi = 8,
	  .acpi_name = "RTC", .hid = "PNP0B00", .eisa = true, .uid = -1,
	  .create = create_rtc, .destroy = destroy_rtc,
	  .section = "rtc", .version = MC146818_STATE_VERSION,
	  .save = save_rtc, .load = load_rtc },
	{ .name = "acpi-pm",
	  .io = { { PORT_ACPI_PM1A_EVT, ACPI_PM1_EVT_LEN }, { PORT_ACPI_PM1A_CNT, ACPI_PM1_CNT_LEN },
		  { PORT_ACPI_RESET, 1 } },
	  .irq = GSI_ACPI_SCI, .gsi = GSI_ACPI_SCI, .level = true,
	  .create = create_acpi_pm, .destroy = destroy_acpi_pm, .describe = describe_acpi_pm,
	  .section = "acpi-pm", .version = ACPI_PM_STATE_VERSION,
	  .save = save_acpi_pm, .load = load_acpi_pm },
	{ .name = "debug-exit", .io = { { PORT_DEBUG_EXIT, DEBUG_EXIT_NR_PORTS } }, .irq = NO_IRQ,
	  .present = has_debug_exit, .create = create_debug_exit, .destroy = destroy_debug_exit },
	/* QEMU's pvpanic id, which Linux's pvpanic-mmio driver matches */
	{ .name = "pvpanic", .io = { { PORT_PVPANIC, 1 } }, .irq = NO_IRQ,
	  .acpi_name = "PEVT", .hid = "QEMU0001", .uid = -1,
	  .create = create_pvpanic, .destroy = destroy_pvpanic },
	{ .name = "pci host bridge", .io = { { PORT_PCI_CONFIG, PCI_HOST_CONFIG_PORTS } },
	  .irq = NO_IRQ, .present = has_pci,
	  .create = create_pci, .destroy = destroy_pci, .describe = describe_pci,
	  .section = "pci-host", .version = PCI_HOST_STATE_VERSION,
	  .save = save_pci, .load = load_pci },
};
#define NR_ROWS (sizeof(board_rows) / sizeof(board_rows[0]))

static bool row_present(const struct board_row *row, const struct board_opts *o)
{
	return !row->present || row->present(o);
}

int board_create(struct board *b, const struct board_env *env)
{
	memset(b, 0, sizeof(*b));
	b->env = *env;
	for (size_t i = 0; i < NR_ROWS; i++) {
		const struct board_row *row = &board_rows[i];
		if (!row->create || !row_present(row, &env->opts))
			continue;
		int rc = row->create(b, row);
		if (rc < 0) {
			log_err(env->log, "vm", "creating %s: %s", row->name, strerror(-rc));
			return rc;
		}
	}
	return 0;
}

void board_destroy(struct board *b)
{
	for (size_t i = NR_ROWS; i-- > 0;)
		if (board_rows[i].destroy)
			board_rows[i].destroy(b);
}

static void describe_node(const struct board_row *row, struct acpi_params *p)
{
	if (!row->acpi_name || p->nr_devices == ACPI_MAX_DEVICES)
		return;
	struct acpi_device *d = &p->devices[p->nr_devices++];
	*d = (struct acpi_device){
		.name = row->acpi_name, .hid = row->hid, .eisa = row->eisa, .uid = row->uid,
		.irq = row->irq,
	};
	for (unsigned i = 0; i < BOARD_ROW_IO && row->io[i].len; i++)
		d->io[d->nr_io++] = row->io[i];
}

/* An IRQ that does not reach its own pin edge-triggered needs an override. */
static void describe_override(const struct board_row *row, struct acpi_params *p)
{
	if (row->irq == NO_IRQ || ((unsigned)row->irq == row->gsi && !row->level))
		return;
	if (p->nr_overrides == ACPI_MAX_OVERRIDES)
		return;
	p->overrides[p->nr_overrides++] = (struct acpi_irq_override){
		.irq = (uint8_t)row->irq, .gsi = row->gsi,
		.flags = row->level ? INTI_LEVEL_HIGH : 0,
	};
}

void board_describe(const struct board_opts *o, struct acpi_params *p)
{
	for (size_t i = 0; i < NR_ROWS; i++) {
		const struct board_row *row = &board_rows[i];
		if (!row_present(row, o))
			continue;
		describe_node(row, p);
		describe_override(row, p);
		if (row->describe)
			row->describe(row, p);
	}
}

int board_save(const struct board *b, struct state_w *w)
{
	for (size_t i = 0; i < NR_ROWS; i++) {
		const struct board_row *row = &board_rows[i];
		if (!row->save || !row_present(row, &b->env.opts))
			continue;
		state_section_begin(w, row->section, row->version);
		row->save(b, w);
		state_section_end(w);
	}
	return w->oom ? -ENOMEM : 0;
}

/* One row's section: required where the board has the device, refused
 * where it has not (the snapshot came from another board). */
static int load_row(struct board *b, const struct board_row *row, const struct state_file *f,
		    char *err, size_t len)
{
	struct state_r r;
	int rc = state_section(f, row->section, row->version, &r, err, len);
	bool present = row_present(row, &b->env.opts);
	if (rc == -ENOENT) {
		if (!present)
			return 0;
		snprintf(err, len, "section %s: missing (this VM has a %s)", row->section, row->name);
		return -EINVAL;
	}
	if (rc < 0)
		return rc;
	if (!present) {
		snprintf(err, len, "section %s: the snapshot has a %s, this VM has none",
			 row->section, row->name);
		return -EINVAL;
	}
	rc = row->load(b, &r);
	if (rc < 0)
		snprintf(err, len, "%s", r.err);
	return rc;
}

int board_load(struct board *b, const struct state_file *f, char *err, size_t len)
{
	for (size_t i = 0; i < NR_ROWS; i++) {
		if (!board_rows[i].load)
			continue;
		int rc = load_row(b, &board_rows[i], f, err, len);
		if (rc < 0)
			return rc;
	}
	return 0;
}
