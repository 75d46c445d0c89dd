#include "acpi.h"
#include "io.h"
#include "irq.h"
#include "lapic.h"

#define LAPIC_TPR 0x80
#define LAPIC_SVR 0xF0
#define LAPIC_IRR 0x200
#define SVR_ENABLE 0x100
#define SPURIOUS_VECTOR 0xFF

#define IOAPIC_SEL 0x00
#define IOAPIC_WIN 0x10
#define IOAPIC_VER 0x01
#define IOAPIC_REDIR 0x10
#define REDIR_LEVEL (1u << 15)
#define REDIR_REMOTE_IRR (1u << 14)

#define MADT_ENTRIES 44
#define MADT_IOAPIC 1

static uint32_t ioapic_read(uint64_t base, uint32_t reg)
{
	mmio_write32(base + IOAPIC_SEL, reg);
	return mmio_read32(base + IOAPIC_WIN);
}

static void ioapic_write(uint64_t base, uint32_t reg, uint32_t v)
{
	mmio_write32(base + IOAPIC_SEL, reg);
	mmio_write32(base + IOAPIC_WIN, v);
}

/* The IOAPIC serving gsi, from the MADT's I/O APIC entries (QEMU microvm
 * has a second one for GSIs 24-47); without a MADT, the one at 0xFEC00000
 * with GSI base 0. Returns the base and sets *pin; 0 if none has the GSI. */
static uint64_t ioapic_for(uint32_t gsi, uint32_t *pin)
{
	const struct acpi_sdt *madt = acpi_find_table("APIC", 0);
	const uint8_t *m = (const uint8_t *)madt;
	bool any = false;

	if (madt) {
		for (uint32_t off = MADT_ENTRIES; off + 2 <= madt->length;) {
			uint8_t type = m[off], len = m[off + 1];

			if (len < 2 || off + len > madt->length)
				break;
			if (type == MADT_IOAPIC && len >= 12) {
				uint64_t base;
				uint32_t gbase, max;

				__builtin_memcpy(&gbase, m + off + 8, 4);
				base = (uint64_t)m[off + 4] | (uint64_t)m[off + 5] << 8 |
				       (uint64_t)m[off + 6] << 16 | (uint64_t)m[off + 7] << 24;
				max = (ioapic_read(base, IOAPIC_VER) >> 16) & 0xFF;
				any = true;
				if (gsi >= gbase && gsi <= gbase + max) {
					*pin = gsi - gbase;
					return base;
				}
			}
			off += len;
		}
	}
	if (!any && gsi <= ((ioapic_read(IOAPIC_BASE, IOAPIC_VER) >> 16) & 0xFF)) {
		*pin = gsi;
		return IOAPIC_BASE;
	}
	return 0;
}

void irq_lapic_enable(void)
{
	lapic_write(LAPIC_TPR, 0);
	lapic_write(LAPIC_SVR, SVR_ENABLE | SPURIOUS_VECTOR);
}

bool irq_pending(uint8_t vector)
{
	return (lapic_read(LAPIC_IRR + 0x10 * (vector / 32)) >> (vector % 32)) & 1;
}

bool irq_route_gsi(uint32_t gsi, uint8_t vector, bool level)
{
	uint32_t pin;
	uint64_t base = ioapic_for(gsi, &pin);

	if (!base)
		return false;
	irq_lapic_enable();
	ioapic_write(base, IOAPIC_REDIR + 2 * pin + 1, lapic_id() << 24);
	ioapic_write(base, IOAPIC_REDIR + 2 * pin, vector | (level ? REDIR_LEVEL : 0));
	return true;
}

bool irq_gsi_remote_irr(uint32_t gsi)
{
	uint32_t pin;
	uint64_t base = ioapic_for(gsi, &pin);

	return base && (ioapic_read(base, IOAPIC_REDIR + 2 * pin) & REDIR_REMOTE_IRR);
}

uint32_t irq_msi_addr(void)
{
	return 0xFEE00000u | (lapic_id() & 0xFF) << 12;
}

uint32_t irq_msi_data(uint8_t vector)
{
	return vector; /* fixed delivery, edge */
}
