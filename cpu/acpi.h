/* ACPI tables for every guest: RSDP, RSDT, XSDT, FADT, FACS, DSDT, MADT.
 *
 * The platform described is a full (not hardware-reduced) ACPI PC: the PM1a
 * event and control blocks and the reset register of devices/acpi_pm.h, an
 * SCI on GSI_ACPI_SCI, an 8042 and a CMOS RTC, COM1, the IOAPIC and one
 * local APIC per vCPU, optionally a PCI host bridge, and virtio-mmio slots.
 * The DSDT's \_S5 uses ACPI_PM_SLP_TYP_S5, the value devices/acpi_pm.c
 * powers off on. Layout and ports come from cpu/layout.h.
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

struct acpi_params {
	unsigned nr_cpus;          /* 1..ACPI_MAX_CPUS */
	const uint32_t *apic_ids;  /* nr_cpus distinct APIC IDs; vCPU i gets
	                            * ACPI processor UID i. IDs > 254 are
	                            * described with x2APIC entries. */
	bool pci;                  /* describe \_SB.PCI0 (PNP0A03) */
	unsigned nr_virtio_mmio;   /* 0..ACPI_MAX_VIRTIO_MMIO */
	struct acpi_virtio_mmio virtio_mmio[ACPI_MAX_VIRTIO_MMIO];
};

/* Builds all tables into guest memory [gpa, gpa+max_len) (normally
 * LAYOUT_ACPI, LAYOUT_ACPI_MAX) and sets *rsdp_gpa (== gpa: the RSDP comes
 * first, 16-byte aligned, so a legacy scan of 0xe0000-0xfffff finds it too).
 * Returns 0; -EINVAL for bad params (no CPUs, duplicate APIC IDs, a
 * virtio-mmio window above 4 GiB or a GSI out of range, gpa unaligned or
 * the range above 4 GiB); -ENOSPC if the tables do not fit in max_len;
 * -EFAULT if the range is not RAM; -ENOMEM. Writes nothing on error. */
__attribute__((warn_unused_result))
int acpi_build(const struct acpi_params *p, struct guest_mem *m, uint64_t gpa,
	       uint64_t max_len, uint64_t *rsdp_gpa);

#endif
