#include <stddef.h>

#include "acpi.h"
#include "layout.h"
#include "libc.h"
#include "start_info.h"

#define ACPI_MAX_TABLE_LEN (16u << 20) /* sanity bound on any table */
#define ACPI_MAP_LIMIT ((uint64_t)BOOT_MAP_GIB << 30) /* identity map of the boot code */

/* RSDP layout (ACPI 5.2.5.3). */
#define RSDP_V1_LEN 20
#define RSDP_REVISION 15
#define RSDP_RSDT 16
#define RSDP_LENGTH 20
#define RSDP_XSDT 24
#define RSDP_V2_LEN 36

/* FADT offsets (ACPI 5.2.9). */
#define FADT_DSDT 40
#define FADT_PM1A_CNT_BLK 64
#define FADT_X_DSDT 140
#define FADT_X_PM1A_CNT_BLK 172
#define GAS_LEN 12
#define GAS_SPACE_IO 1

/* MADT (ACPI 5.2.12). */
#define MADT_ENTRIES 44
#define MADT_LAPIC 0
#define MADT_X2APIC 9
#define MADT_ENABLED 1u

static uint32_t acpi_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t acpi_le64(const uint8_t *p)
{
	return acpi_le32(p) | (uint64_t)acpi_le32(p + 4) << 32;
}

/* Eight bytes per step (every guest instruction is emulated on the build
 * machines and the DSDT is checked on every poweroff): bytes are summed in
 * four 16-bit lanes, folded before a lane can overflow. */
bool acpi_checksum_ok(const void *p, uint32_t len)
{
	const uint8_t *b = p;
	const uint64_t lanes = 0x00FF00FF00FF00FFull;
	uint32_t sum = 0;

	while (len >= 8) {
		uint32_t words = len / 8 > 128 ? 128 : len / 8; /* 128 * 510 < 65536 */
		uint64_t acc = 0, w;

		for (uint32_t i = 0; i < words; i++, b += 8) {
			__builtin_memcpy(&w, b, 8);
			acc += (w & lanes) + ((w >> 8) & lanes);
		}
		len -= words * 8;
		acc = (acc & 0x0000FFFF0000FFFFull) + ((acc >> 16) & 0x0000FFFF0000FFFFull);
		sum += (uint32_t)acc + (uint32_t)(acc >> 32);
	}
	while (len--)
		sum += *b++;
	return (sum & 0xFF) == 0;
}

static bool acpi_range_ok(uint64_t pa, uint64_t len)
{
	return pa != 0 && len <= ACPI_MAX_TABLE_LEN && pa < ACPI_MAP_LIMIT &&
	       len <= ACPI_MAP_LIMIT - pa;
}

static bool acpi_rsdp_valid(uint64_t pa)
{
	const uint8_t *p = (const uint8_t *)(uintptr_t)pa;

	if (!acpi_range_ok(pa, RSDP_V2_LEN) || memcmp(p, "RSD PTR ", 8) ||
	    !acpi_checksum_ok(p, RSDP_V1_LEN))
		return false;
	if (p[RSDP_REVISION] >= 2) {
		uint32_t len = acpi_le32(p + RSDP_LENGTH);

		if (len < RSDP_V2_LEN || !acpi_range_ok(pa, len) || !acpi_checksum_ok(p, len))
			return false;
	}
	return true;
}

uint64_t acpi_find_rsdp(void)
{
	const struct start_info *si = start_info_get();

	if (si && si->rsdp_paddr)
		return acpi_rsdp_valid(si->rsdp_paddr) ? si->rsdp_paddr : 0;
	for (uint64_t pa = 0xE0000; pa < 0x100000; pa += 16)
		if (acpi_rsdp_valid(pa))
			return pa;
	return 0;
}

/* The table at pa if its length and checksum are valid. */
static const struct acpi_sdt *acpi_table_at(uint64_t pa)
{
	const struct acpi_sdt *t = (const struct acpi_sdt *)(uintptr_t)pa;

	if (!acpi_range_ok(pa, sizeof(*t)) || t->length < sizeof(*t) ||
	    !acpi_range_ok(pa, t->length) || !acpi_checksum_ok(t, t->length))
		return NULL;
	return t;
}

const struct acpi_sdt *acpi_find_table(const char sig[4], unsigned n)
{
	uint64_t rsdp_pa = acpi_find_rsdp();
	const uint8_t *rsdp = (const uint8_t *)(uintptr_t)rsdp_pa;
	const struct acpi_sdt *root = NULL;
	unsigned width = 4;

	if (!rsdp_pa)
		return NULL;
	if (rsdp[RSDP_REVISION] >= 2 && acpi_le64(rsdp + RSDP_XSDT)) {
		root = acpi_table_at(acpi_le64(rsdp + RSDP_XSDT));
		if (root && memcmp(root->signature, "XSDT", 4))
			root = NULL;
		width = 8;
	}
	if (!root) {
		root = acpi_table_at(acpi_le32(rsdp + RSDP_RSDT));
		if (root && memcmp(root->signature, "RSDT", 4))
			root = NULL;
		width = 4;
	}
	if (!root)
		return NULL;

	const uint8_t *ent = (const uint8_t *)(root + 1);
	uint32_t count = (root->length - (uint32_t)sizeof(*root)) / width;

	for (uint32_t i = 0; i < count; i++) {
		uint64_t pa = width == 8 ? acpi_le64(ent + i * 8) : acpi_le32(ent + i * 4);
		const struct acpi_sdt *t = acpi_table_at(pa);

		if (t && !memcmp(t->signature, sig, 4) && n-- == 0)
			return t;
	}
	return NULL;
}

const struct acpi_sdt *acpi_find_dsdt(void)
{
	const struct acpi_sdt *fadt = acpi_find_table("FACP", 0);
	const uint8_t *f = (const uint8_t *)fadt;
	const struct acpi_sdt *dsdt = NULL;

	if (!fadt)
		return NULL;
	if (fadt->length >= FADT_X_DSDT + 8 && acpi_le64(f + FADT_X_DSDT))
		dsdt = acpi_table_at(acpi_le64(f + FADT_X_DSDT));
	if (!dsdt && fadt->length >= FADT_DSDT + 4)
		dsdt = acpi_table_at(acpi_le32(f + FADT_DSDT));
	if (dsdt && memcmp(dsdt->signature, "DSDT", 4))
		dsdt = NULL;
	return dsdt;
}

unsigned acpi_madt_cpu_count(void)
{
	const struct acpi_sdt *madt = acpi_find_table("APIC", 0);
	const uint8_t *m = (const uint8_t *)madt;
	unsigned cpus = 0;

	if (!madt || madt->length < MADT_ENTRIES)
		return 0;
	for (uint32_t off = MADT_ENTRIES; off + 2 <= madt->length;) {
		uint8_t type = m[off], len = m[off + 1];

		if (len < 2 || off + len > madt->length)
			break;
		if (type == MADT_LAPIC && len >= 8 && (acpi_le32(m + off + 4) & MADT_ENABLED))
			cpus++;
		else if (type == MADT_X2APIC && len >= 16 && (acpi_le32(m + off + 8) & MADT_ENABLED))
			cpus++;
		off += len;
	}
	return cpus;
}

/* Reads the first element of the \_S5 package: the SLP_TYPa value. The AML
 * is Name(_S5, Package(n) {a, b, ...}): "_S5_" PackageOp PkgLength
 * NumElements, then a BytePrefix (0x0A) byte, Zero (0x00) or One (0x01). */
static bool acpi_parse_s5(const struct acpi_sdt *dsdt, uint16_t *slp_typ)
{
	const uint8_t *aml = (const uint8_t *)dsdt;
	uint32_t len = dsdt->length;

	/* Horspool search for "_S5_": look at the last byte of each window. */
	for (uint32_t i = sizeof(*dsdt); i + 5 <= len;) {
		uint8_t c = aml[i + 3];

		if (c != '_') {
			i += c == '5' ? 1 : c == 'S' ? 2 : 4;
			continue;
		}
		if (aml[i] != '_' || aml[i + 1] != 'S' || aml[i + 2] != '5' || aml[i + 4] != 0x12) {
			i += 3;
			continue;
		}
		uint32_t p = i + 5;

		if (p >= len)
			return false;
		p += 1 + (aml[p] >> 6); /* PkgLength: lead byte + 0..3 more */
		p += 1;                 /* NumElements */
		if (p >= len)
			return false;
		switch (aml[p]) {
		case 0x0A:
			if (p + 1 >= len)
				return false;
			*slp_typ = aml[p + 1];
			return true;
		case 0x00:
			*slp_typ = 0;
			return true;
		case 0x01:
			*slp_typ = 1;
			return true;
		default:
			return false;
		}
	}
	return false;
}

bool acpi_find_s5(struct acpi_s5 *out, const char **why)
{
	const struct acpi_sdt *fadt = acpi_find_table("FACP", 0);
	const uint8_t *f = (const uint8_t *)fadt;
	const struct acpi_sdt *dsdt;
	uint64_t port = 0;

	if (!acpi_find_rsdp()) {
		*why = "no rsdp";
		return false;
	}
	if (!fadt || fadt->length < FADT_PM1A_CNT_BLK + 4) {
		*why = "no fadt";
		return false;
	}
	port = acpi_le32(f + FADT_PM1A_CNT_BLK);
	if (!port && fadt->length >= FADT_X_PM1A_CNT_BLK + GAS_LEN &&
	    f[FADT_X_PM1A_CNT_BLK] == GAS_SPACE_IO)
		port = acpi_le64(f + FADT_X_PM1A_CNT_BLK + 4);
	if (!port || port > 0xFFFF) {
		*why = "no pm1a_cnt";
		return false;
	}
	dsdt = acpi_find_dsdt();
	if (!dsdt) {
		*why = "no dsdt";
		return false;
	}
	if (!acpi_parse_s5(dsdt, &out->slp_typ)) {
		*why = "no _S5";
		return false;
	}
	out->pm1a_cnt = (uint16_t)port;
	return true;
}
