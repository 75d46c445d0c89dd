/* ACPI tables for every guest: RSDP, RSDT, XSDT, FADT, FACS, DSDT, MADT.
 *
 * The platform described is a full (not hardware-reduced) ACPI PC: fixed
 * hardware (PM1a blocks, reset register, SCI) in the FADT, the IOAPIC, one
 * local APIC per vCPU and the board's interrupt source overrides in the
 * MADT, and in the DSDT the board's devices, optionally a PCI host bridge,
 * and virtio-mmio slots. The caller (vmm/board.c) describes the devices;
 * this file knows no device, only how ACPI spells a description. Memory
 * layout comes from mem/layout.h.
 *
 * Pure code: tables are assembled in a host buffer and written through
 * guest_mem, so unit tests run it over a plain buffer. Nothing KVM here. */
#ifndef KVMRUN_ACPI_H
#define KVMRUN_ACPI_H

#include <stdbool.h>
#include <stdint.h>

#include "mem/guest_mem.h"

#define ACPI_MAX_CPUS        256
#define ACPI_MAX_VIRTIO_MMIO 32
/* Pins of the (KVM in-kernel) IOAPIC the MADT describes, GSI base 0: a
 * virtio-mmio GSI must be below this. */
#define ACPI_IOAPIC_PINS     24

struct acpi_virtio_mmio {
	uint64_t base; /* guest-physical, below 4 GiB (Memory32Fixed) */
	uint64_t size; /* non-zero */
	uint32_t gsi;  /* < ACPI_IOAPIC_PINS; level-triggered, active-high */
};

#define ACPI_MAX_DEVICES     16
#define ACPI_DEVICE_MAX_IO   3
#define ACPI_MAX_OVERRIDES   8
#define ACPI_PCI_MAX_SLOTS   32

struct acpi_io {
	uint16_t base;
	uint8_t len;   /* non-zero */
};

/* An ISA-style device in \_SB, found by the guest's ACPI enumeration. */
struct acpi_device {
	const char *name;   /* AML name segment, up to 4 characters */
	const char *hid;    /* "PNPxxxx" (EISA id) or a plain string id */
	bool eisa;          /* encode hid as a compressed EISA id */
	int uid;            /* -1: no _UID */
	unsigned nr_io;     /* 0..ACPI_DEVICE_MAX_IO */
	struct acpi_io io[ACPI_DEVICE_MAX_IO];
	int irq;            /* ISA IRQ (edge, active-high), < 16; -1: none */
};

/* An ISA IRQ that reaches the IOAPIC elsewhere than its own pin, or with
 * other than edge/active-high polarity (MADT interrupt source override). */
struct acpi_irq_override {
	uint8_t irq;        /* ISA IRQ */
	uint32_t gsi;       /* < ACPI_IOAPIC_PINS */
	uint16_t flags;     /* MPS INTI flags: 0 conforms to the bus */
};

/* The FADT's fixed hardware (ACPI 6.5, 4.8). */
struct acpi_fixed_hw {
	uint16_t pm1a_evt, pm1a_cnt;    /* ports of the PM1a blocks */
	uint8_t pm1_evt_len, pm1_cnt_len;
	uint16_t reset_port;            /* reset register, 1 byte */
	uint8_t reset_value;
	uint8_t slp_typ_s5;             /* \_S5's SLP_TYP */
	uint16_t sci;                   /* SCI_INT: the SCI's GSI */
};

/* \_SB.PCI0 (PNP0A03): config mechanism #1 ports, the 32-bit window its
 * BARs are placed in, and the GSI of INTA# of slots 1..nr_slots-1 (_PRT). */
struct acpi_pci_host {
	uint16_t config_port;
	uint8_t config_len;
	uint32_t window_base, window_size;
	unsigned nr_slots;              /* 2..ACPI_PCI_MAX_SLOTS */
	uint32_t slot_gsi[ACPI_PCI_MAX_SLOTS];
};

struct acpi_params {
	unsigned nr_cpus;          /* 1..ACPI_MAX_CPUS */
	const uint32_t *apic_ids;  /* nr_cpus distinct APIC IDs; vCPU i gets
	                            * ACPI processor UID i. IDs > 254 are
	                            * described with x2APIC entries. */
	struct acpi_fixed_hw fixed;
	bool pci;                  /* describe \_SB.PCI0 from pci_host */
	struct acpi_pci_host pci_host;
	unsigned nr_devices;       /* 0..ACPI_MAX_DEVICES, in DSDT order */
	struct acpi_device devices[ACPI_MAX_DEVICES];
	unsigned nr_overrides;     /* 0..ACPI_MAX_OVERRIDES, in MADT order */
	struct acpi_irq_override overrides[ACPI_MAX_OVERRIDES];
	unsigned nr_virtio_mmio;   /* 0..ACPI_MAX_VIRTIO_MMIO */
	struct acpi_virtio_mmio virtio_mmio[ACPI_MAX_VIRTIO_MMIO];
};

/* Builds all tables into guest memory [gpa, gpa+max_len) (normally
 * LAYOUT_ACPI, LAYOUT_ACPI_MAX) and sets *rsdp_gpa (== gpa: the RSDP comes
 * first, 16-byte aligned, so a legacy scan of 0xe0000-0xfffff finds it too).
 * Returns 0; -EINVAL for bad params (no CPUs, duplicate APIC IDs, a
 * virtio-mmio window above 4 GiB or a GSI or IRQ out of range, a count
 * above its maximum, gpa unaligned or the range above 4 GiB); -ENOSPC if the tables do not fit in max_len;
 * -EFAULT if the range is not RAM; -ENOMEM. Writes nothing on error. */
__attribute__((warn_unused_result))
int acpi_build(const struct acpi_params *p, struct guest_mem *m, uint64_t gpa,
	       uint64_t max_len, uint64_t *rsdp_gpa);

#endif
