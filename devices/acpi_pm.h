/* ACPI fixed hardware: the PM1a event block (4 bytes: PM1_STS then
 * PM1_EN, 16 bits each), the PM1a control block (2 bytes) and the reset
 * register, at the ports the board (vmm/board.c) gives them and describes
 * in the FADT.
 *
 * PM1_STS is write-1-to-clear; PM1_CNT.SCI_EN (bit 0) always reads 1 (ACPI
 * is always enabled, there is no SMI_CMD). Writing SLP_EN (bit 13) with
 * SLP_TYP (bits 10-12) == ACPI_PM_SLP_TYP_S5 calls poweroff; other sleep
 * types are logged and ignored. Writing a value with bit 2 (RST_CPU) set to
 * the reset register, e.g. the FADT's RESET_VALUE 0x06, calls reset.
 * acpi_pm_power_button() latches PWRBTN_STS and raises the SCI if the guest
 * enabled PWRBTN_EN (the SCI line is level: high while STS & EN != 0).
 *
 * Threads: port handlers run on vCPU threads, concurrently; state is under
 * a mutex, and callbacks are called with it released, once per guest
 * write (a guest may ask twice: callers make their actions idempotent). */
#ifndef KVMRUN_ACPI_PM_H
#define KVMRUN_ACPI_PM_H

#include <stdbool.h>

#include "devices/bus.h"
#include "devices/irq.h"
#include "lib/log.h"
#include "lib/state.h"

#define ACPI_PM1_EVT_LEN 4
#define ACPI_PM1_CNT_LEN 2

/* SLP_TYP of \_S5 in the DSDT; the PM1 control block powers off on it. */
#define ACPI_PM_SLP_TYP_S5 5
/* FADT RESET_VALUE written to the reset register. */
#define ACPI_PM_RESET_VALUE 0x06

/* PM1 register bits (ACPI 6.5, 4.8.3) */
#define ACPI_PM1_STS_PWRBTN  (1u << 8)
#define ACPI_PM1_STS_WAK     (1u << 15)
#define ACPI_PM1_CNT_SCI_EN  (1u << 0)
#define ACPI_PM1_CNT_SLP_TYP_SHIFT 10
#define ACPI_PM1_CNT_SLP_EN  (1u << 13)

struct acpi_pm;

struct acpi_pm_params {
	/* PM1a event block (4 bytes), control block (2 bytes), reset
	 * register (1 byte): 0x600, 0x604 and 0xcf9 on kvmrun's board */
	uint16_t evt_port, cnt_port, reset_port;
	void (*poweroff)(void *cookie); /* guest entered S5 */
	void (*reset)(void *cookie);    /* guest wrote the reset register */
	void *cookie;
	const struct logger *log;       /* borrowed; must outlive the device */
	struct irq_line sci;            /* optional (set == NULL: none) */
	/* When the PCI host bridge owns 0xcf8-0xcff (its config ports), it cannot share 0xcf9 on the bus: set this, and have the
	 * bridge forward 1-byte writes at 0xcf9 to acpi_pm_reset_write(). */
	bool reset_port_forwarded;
};

/* Allocates the device and registers its ports on @pio (the reset port
 * unless p->reset_port_forwarded). Returns 0, -ENOMEM, -EINVAL (no
 * callbacks) or the bus error (-EEXIST for a port already taken). Call
 * before vCPUs start. */
__attribute__((warn_unused_result))
int acpi_pm_create(struct bus *pio, const struct acpi_pm_params *p,
		   struct acpi_pm **out);

/* Back to power-on state: STS and EN cleared, SLP_TYP 0, SCI deasserted. */
void acpi_pm_reset(struct acpi_pm *pm);

/* A guest write of @value to the reset register (see reset_port_forwarded). */
void acpi_pm_reset_write(struct acpi_pm *pm, uint8_t value);

/* Presses the fixed-feature power button (for a graceful stop): the guest
 * sees PWRBTN_STS and, if enabled, an SCI. Any thread. */
void acpi_pm_power_button(struct acpi_pm *pm);

/* Frees the device; the bus must no longer dispatch to it (vCPUs stopped).
 * NULL is allowed. */
void acpi_pm_destroy(struct acpi_pm *pm);

/* Saved state (section "acpi-pm"), version ACPI_PM_STATE_VERSION. A save
 * captures PM1_STS, PM1_EN, PM1_CNT and the reset register; the SCI's
 * level follows from STS & EN. acpi_pm_load refuses bits the registers
 * cannot hold (a STS bit other than PWRBTN, EN bits outside those that
 * exist, CNT without SCI_EN or with write-only bits, RST_CPU in the reset
 * register), applies nothing unless the whole payload is valid (-EINVAL,
 * reason in r->err), and drives the SCI to the restored level. */
#define ACPI_PM_STATE_VERSION 1
void acpi_pm_save(struct acpi_pm *pm, struct state_w *w);
__attribute__((warn_unused_result))
int acpi_pm_load(struct acpi_pm *pm, struct state_r *r);

#endif
