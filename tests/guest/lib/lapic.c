#include "cpu.h"
#include "io.h"
#include "lapic.h"

#define ICR_DELIVERY_INIT (5u << 8)
#define ICR_DELIVERY_STARTUP (6u << 8)
#define ICR_BUSY (1u << 12)
#define ICR_LEVEL_ASSERT (1u << 14)
#define ICR_ALL_BUT_SELF (3u << 18)
#define ICR_BUSY_POLL_MAX 100000

uint32_t lapic_read(uint32_t reg)
{
	return mmio_read32(LAPIC_BASE + reg);
}

void lapic_write(uint32_t reg, uint32_t v)
{
	mmio_write32(LAPIC_BASE + reg, v);
}

uint32_t lapic_id(void)
{
	return lapic_read(LAPIC_ID) >> 24;
}

static bool lapic_send(uint32_t icr_lo)
{
	lapic_write(LAPIC_ICR_HI, 0);
	lapic_write(LAPIC_ICR_LO, icr_lo);
	for (int i = 0; i < ICR_BUSY_POLL_MAX; i++) {
		if (!(lapic_read(LAPIC_ICR_LO) & ICR_BUSY))
			return true;
		cpu_relax();
	}
	return false;
}

bool lapic_init_others(void)
{
	return lapic_send(ICR_ALL_BUT_SELF | ICR_LEVEL_ASSERT | ICR_DELIVERY_INIT);
}

bool lapic_sipi_others(uint8_t vector)
{
	return lapic_send(ICR_ALL_BUT_SELF | ICR_LEVEL_ASSERT | ICR_DELIVERY_STARTUP | vector);
}
