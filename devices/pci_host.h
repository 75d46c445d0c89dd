/* The PCI host bridge: configuration mechanism #1 on 8 config ports
 * (on a PC 0xcf8: the address register, 32-bit; 0xcfc-0xcff data, 1/2/4-byte accesses
 * at any offset inside the dword), bus 0 only, a host bridge function at
 * 00:00.0 and up to PCI_HOST_SLOTS-1 single-function devices at 00:N.0.
 *
 * The host owns each function's type-0 header (0x00-0x3f): ids, class,
 * command/status, BARs, interrupt line/pin. The function owns 0x40-0xff
 * (its capability list) through cfg_read/cfg_write, and its BARs' contents
 * through bar_read/bar_write.
 *
 * BARs are 32-bit non-prefetchable memory BARs of a power-of-two size,
 * pre-programmed from the window's base (naturally aligned) with memory
 * decoding enabled, as firmware would leave them. The sizing protocol works
 * and the guest may move a BAR: the host registers ONE MMIO bus range over
 * the whole PCI window and dispatches each access to the function whose
 * decoded BAR covers it (all-ones for reads that hit none). A BAR decodes
 * while the command register's memory-enable bit is set and the BAR lies
 * wholly inside the window; each change is reported through bar_remap.
 *
 * INTx: function at slot N uses pin INTA# on GSI pci_host_slot_gsi(N)
 * (PCI_HOST_GSI_BASE + N % PCI_HOST_NR_GSIS, level, active high), written
 * into its interrupt line register; an ACPI _PRT would map (N, pin 0) to
 * the same GSI. These GSIs are the ones virtio-mmio slots use: a VM uses
 * one transport or the other. Delivery is the function's (irqfd); it only
 * reports the line's state for the status register's interrupt bit.
 *
 * Port 0xcf9 is inside the config ports: 1-byte writes to it go to the
 * cf9_write callback (the ACPI reset register, acpi_pm_reset_write()).
 *
 * Threads and locking: config and MMIO accesses come from vCPU threads.
 * Lock order: the host's config mutex, then its BAR map (rwlock: MMIO
 * dispatch reads it), then the function's own lock. Callbacks into a
 * function run with host locks held, so a function must never call into
 * the host while holding its own lock, except the lock-free
 * pci_host_set_intx_status() and pci_host_command(). */
#ifndef KVMRUN_PCI_HOST_H
#define KVMRUN_PCI_HOST_H

#include <stdbool.h>
#include <stdint.h>

#include "devices/bus.h"
#include "lib/log.h"
#include "lib/state.h"

#define PCI_HOST_CONFIG_PORTS 8
#define PCI_HOST_SLOTS    32  /* slot 0 is the host bridge */
#define PCI_HOST_BARS     6
#define PCI_HOST_GSI_BASE 16
#define PCI_HOST_NR_GSIS  8

/* Type-0 header offsets and bits (PCI Local Bus 3.0, 6.2) */
#define PCI_CFG_VENDOR_ID      0x00
#define PCI_CFG_DEVICE_ID      0x02
#define PCI_CFG_COMMAND        0x04
#define PCI_CFG_STATUS         0x06
#define PCI_CFG_REVISION       0x08
#define PCI_CFG_CLASS_PROG     0x09
#define PCI_CFG_HEADER_TYPE    0x0e
#define PCI_CFG_BAR0           0x10
#define PCI_CFG_SUBSYS_VENDOR  0x2c
#define PCI_CFG_SUBSYS_ID      0x2e
#define PCI_CFG_ROM            0x30
#define PCI_CFG_CAP_PTR        0x34
#define PCI_CFG_INT_LINE       0x3c
#define PCI_CFG_INT_PIN        0x3d
#define PCI_CFG_HEADER_END     0x40 /* the function owns [0x40, 0x100) */
#define PCI_CFG_SIZE           0x100

#define PCI_COMMAND_MEMORY        (1u << 1)
#define PCI_COMMAND_MASTER        (1u << 2)
#define PCI_COMMAND_INTX_DISABLE  (1u << 10)
#define PCI_STATUS_INTERRUPT      (1u << 3)
#define PCI_STATUS_CAP_LIST       (1u << 4)

/* Capability ids */
#define PCI_CAP_ID_VNDR  0x09
#define PCI_CAP_ID_MSIX  0x11

struct pci_host;

struct pci_host_params {
	const struct logger *log;  /* borrowed; must outlive the host */
	uint16_t config_port;      /* first of PCI_HOST_CONFIG_PORTS (0xcf8) */
	/* The 32-bit MMIO window the BARs are placed in */
	uint64_t window_base, window_size;
	/* A guest byte write to port 0xcf9 (config_port + 1); may be NULL. */
	void (*cf9_write)(void *cookie, uint8_t value);
	void *cf9_cookie;
};

/* What a function implements. All callbacks run on vCPU threads with the
 * host's locks held (see the lock order above). */
struct pci_function_ops {
	/* Config space [0x40, 0x100): @off >= 0x40, the access stays inside
	 * one dword, @len 1, 2 or 4. Optional (NULL: reads 0, writes dropped). */
	void (*cfg_read)(void *cookie, unsigned off, void *data, unsigned len);
	void (*cfg_write)(void *cookie, unsigned off, const void *data, unsigned len);
	/* An MMIO access at @off inside decoded BAR @bar; the whole access
	 * lies inside the BAR. */
	void (*bar_read)(void *cookie, unsigned bar, uint64_t off, void *data, unsigned len);
	void (*bar_write)(void *cookie, unsigned bar, uint64_t off, const void *data, unsigned len);
	/* BAR @bar now decodes at guest-physical @addr (@decoded) or not at all
	 * (!@decoded, @addr is then the BAR's value). Called only on change,
	 * and once from pci_host_add_function() for each BAR that decodes. */
	void (*bar_remap)(void *cookie, unsigned bar, uint64_t addr, bool decoded);
};

struct pci_function_params {
	const char *name;             /* for messages; borrowed */
	uint16_t vendor_id, device_id;
	uint16_t subsys_vendor_id, subsys_id;
	uint8_t revision;
	uint32_t class_code;          /* 24 bits: class, subclass, prog-if */
	uint8_t cap_ptr;              /* first capability (>= 0x40, dword
	                               * aligned) or 0 for none */
	uint32_t bar_size[PCI_HOST_BARS]; /* 0: not implemented; else a power
	                               * of two >= 16 (allocated >= 4 KiB) */
};

/* Allocates the host, registers its config ports on @pio and the whole
 * PCI window on @mmio, and
 * creates the host bridge at 00:00.0. Returns 0, -ENOMEM, -EINVAL or the
 * bus error (-EEXIST). Call before vCPUs start. A failure leaves nothing
 * mapped. */
__attribute__((warn_unused_result))
int pci_host_create(struct bus *pio, struct bus *mmio, const struct pci_host_params *p,
		    struct pci_host **out);

/* Adds a function at the next free slot (*@slot), allocating its BARs.
 * @ops and @cookie must stay valid until pci_host_destroy(); the function
 * must be ready for bar_remap (called before this returns). Returns 0,
 * -EINVAL (bad params), -ENOSPC (no slot or no window space left). Call
 * before vCPUs start. */
__attribute__((warn_unused_result))
int pci_host_add_function(struct pci_host *h, const struct pci_function_ops *ops, void *cookie,
			  const struct pci_function_params *p, unsigned *slot);

/* Takes the function at @slot off the bus (an error path of its creator,
 * or its teardown; vCPUs not running). Calls no callback; its BARs' space
 * is not reused. */
void pci_host_remove_function(struct pci_host *h, unsigned slot);

/* The GSI of INTA# of the function at @slot. */
static inline unsigned pci_host_slot_gsi(unsigned slot)
{
	return PCI_HOST_GSI_BASE + slot % PCI_HOST_NR_GSIS;
}

/* The function at @slot reports its INTx line's state (status register bit
 * 3). Lock-free; any thread, any lock held. */
void pci_host_set_intx_status(struct pci_host *h, unsigned slot, bool pending);

/* The command register of @slot (PCI_COMMAND_*). Lock-free; any thread. */
uint16_t pci_host_command(struct pci_host *h, unsigned slot);

/* Back to the power-on state (after a guest reset): address register 0,
 * every function's command register, BARs and interrupt line as created
 * (bar_remap reports moves). Functions reset their own state. */
void pci_host_reset(struct pci_host *h);

/* Frees the host; the buses must no longer dispatch to it (vCPUs stopped).
 * Calls no function callback. NULL is allowed. */
void pci_host_destroy(struct pci_host *h);

/* Saved state (section "pci-host"), version PCI_HOST_STATE_VERSION. A
 * save captures the config address register and, for every function on
 * the bus (the bridge included), its slot and its type-0 header: command
 * register, BARs, cache line size, latency timer, interrupt line, and the
 * read-only rest. A function's own config space [0x40, 0x100) and its
 * BARs' contents are its own to save (virtio-pci: vmm/vm_virtio_state.h).
 *
 * pci_host_load takes the functions as created (the same slots, as the
 * VM rebuilt them from the same config) and refuses a snapshot whose set
 * of slots differs, a header whose read-only bits differ from the
 * function's (another device in that slot), a BAR not aligned to its size
 * or with type bits, and address register bits that do not exist. It
 * applies nothing unless the whole payload is valid (-EINVAL, reason in
 * r->err). Then every function's BARs decode where the snapshot had them
 * (bar_remap reports each move), so load the host before the functions'
 * own state. On the VM's thread, before vCPUs run. */
#define PCI_HOST_STATE_VERSION 1
void pci_host_save(struct pci_host *h, struct state_w *w);
__attribute__((warn_unused_result))
int pci_host_load(struct pci_host *h, struct state_r *r);

#endif
