/* The PC every VM is: its platform devices in one ordered table
 * (board.c). Each row gives a device's ports, its IRQ and GSI, and its
 * create, destroy and describe hooks; bus registration, the interrupt
 * routes (irq_routing.c) and the ACPI tables' device list all come from
 * that row, so they cannot disagree. Adding a legacy device: its file in
 * devices/, one row, its config keys.
 *
 * The board knows nothing of struct vm: the VM hands it buses, a logger
 * and two callbacks (raise a line, end the VM) in a board_env. Created and
 * destroyed on the VM's thread; the devices serialise their own state. */
#ifndef KVMRUN_BOARD_H
#define KVMRUN_BOARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cpu/acpi.h"
#include "devices/bus.h"
#include "lib/log.h"
#include "lib/state.h"

/* The board's ports and GSIs, for the table and for tests that drive a
 * device where the board puts it. */
#define PORT_COM1            0x3f8
#define PORT_I8042_DATA      0x60
#define PORT_I8042_CMD       0x64
#define PORT_RTC             0x70
#define PORT_DEBUG_EXIT      0x501
#define PORT_PVPANIC         0x505   /* QEMU0001 in the DSDT */
#define PORT_ACPI_PM1A_EVT   0x600   /* 4 bytes: status, enable */
#define PORT_ACPI_PM1A_CNT   0x604   /* 2 bytes */
#define PORT_ACPI_RESET      0xcf9
#define PORT_PCI_CONFIG      0xcf8   /* 8 bytes: 0xcf8 address, 0xcfc data */

#define GSI_COM1             4
#define GSI_ACPI_SCI         9

struct ns16550;
struct i8042;
struct mc146818;
struct acpi_pm;
struct debug_exit;
struct pvpanic;
struct pci_host;

/* The parts of the board a VM's config switches on or off. */
struct board_opts {
	bool pci;          /* transport=pci: the PCI host bridge */
	bool debug_exit;   /* debug_exit=on */
};

struct board_env {
	struct bus *pio, *mmio;
	const struct logger *log;
	struct board_opts opts;
	int serial_out_fd;          /* the UART's output, -1 for none */
	uint64_t serial_out_limit;  /* bytes; 0: unlimited */
	/* Drives a PIC/IOAPIC line (an irq_line's set). */
	void (*set_irq)(void *cookie, unsigned gsi, int level);
	/* Ends the VM with an exit code (any thread). */
	void (*request_exit)(void *cookie, int code, const char *why);
	void *cookie;
};

/* Every device of the board, NULL where absent. */
struct board {
	struct board_env env;
	struct ns16550 *uart;
	struct i8042 *i8042;
	struct mc146818 *rtc;
	struct acpi_pm *acpi_pm;
	struct debug_exit *debug_exit;
	struct pvpanic *pvpanic;
	struct pci_host *pci;
};

/* Creates the devices in table order, before the vCPUs exist. Returns 0
 * or -errno; after a failure, board_destroy frees what was created. */
__attribute__((warn_unused_result))
int board_create(struct board *b, const struct board_env *env);
/* Destroys in reverse order, once nothing dispatches on the buses. */
void board_destroy(struct board *b);

/* Adds the board's devices, fixed hardware, PCI host and interrupt source
 * overrides to @p (CPUs and virtio-mmio slots are the caller's). Pure:
 * the VM and tests (acpi_dump) describe the same board. */
void board_describe(const struct board_opts *o, struct acpi_params *p);

/* Saved state: one section per stateful device of the board, named by its
 * row ("uart.com1", "i8042", "rtc", "acpi-pm", "pci-host"), each with
 * its device's own version; what each captures is in its header
 * (devices/ns16550.h, i8042.h, mc146818.h, acpi_pm.h, pci_host.h). The
 * PIT is KVM's (saved with the irqchip); pvpanic and debug-exit hold no
 * state and have no section.
 *
 * board_save writes the sections (vCPUs paused). board_load reads them
 * into a board that board_create built from the same options, with every
 * PCI function already added, and before vCPUs run: a section missing
 * for a device this board has, or present for one it lacks, or any
 * invalid value, fails with -EINVAL and "section NAME: reason" in @err.
 * Each device takes its section whole or not at all; on a failure the
 * devices loaded before it keep their restored state (the caller
 * abandons the VM). It drives the UART and SCI lines to their restored
 * levels, so restore the irqchip after it. Load it before the virtio
 * devices (vm_virtio_load): it places their PCI BARs. */
__attribute__((warn_unused_result))
int board_save(const struct board *b, struct state_w *w);
__attribute__((warn_unused_result))
int board_load(struct board *b, const struct state_file *f, char *err, size_t len);

#endif
