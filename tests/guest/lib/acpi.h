/* Read-only ACPI table discovery (ACPI 6.x sections 5.2.5-5.2.12). Every
 * table is length- and checksum-checked before it is used; a table that
 * fails is treated as absent. Tables must lie below 8 GiB (the identity map). */
#ifndef GUEST_ACPI_H
#define GUEST_ACPI_H

#include <stdbool.h>
#include <stdint.h>

struct acpi_sdt {
	char signature[4];
	uint32_t length;
	uint8_t revision;
	uint8_t checksum;
	char oem_id[6];
	char oem_table_id[8];
	uint32_t oem_revision;
	uint32_t creator_id;
	uint32_t creator_revision;
} __attribute__((packed));

/* The RSDP: start_info->rsdp_paddr if set, else a scan of 0xE0000-0xFFFFF
 * on 16-byte boundaries. Returns its physical address, 0 if none is valid. */
uint64_t acpi_find_rsdp(void);
/* The n-th (from 0) table with this signature listed in the XSDT (or the
 * RSDT when there is no valid XSDT); NULL if absent or invalid. The DSDT is
 * not listed there: use acpi_find_dsdt(). */
const struct acpi_sdt *acpi_find_table(const char sig[4], unsigned n);
/* The DSDT named by the FADT (X_DSDT preferred); NULL if absent/invalid. */
const struct acpi_sdt *acpi_find_dsdt(void);
/* True if the len bytes at p sum to 0 mod 256. */
bool acpi_checksum_ok(const void *p, uint32_t len);

/* Number of enabled processors in the MADT (Local APIC and x2APIC
 * entries with the Enabled flag); 0 if there is no valid MADT. */
unsigned acpi_madt_cpu_count(void);

/* What an ACPI S5 (soft-off) request needs. */
struct acpi_s5 {
	uint16_t pm1a_cnt;   /* I/O port of PM1a_CNT_BLK */
	uint16_t slp_typ;    /* SLP_TYPa value from \_S5 */
};

/* Fills *out from the FADT and the DSDT's \_S5 package. Returns false,
 * with *why set to a short reason, if anything is missing or invalid. */
bool acpi_find_s5(struct acpi_s5 *out, const char **why);

#endif
