#include <stdbool.h>

#include "cpu.h"
#include "io.h"
#include "time.h"

#define PIT_HZ 1193182u
#define PIT_CH2 0x42
#define PIT_CMD 0x43
#define PIT_GATE 0x61
#define PIT_CAL_MS 10u
#define PIT_POLL_MAX 500000 /* ~5 s at 9 us per emulated port read */
#define TSC_HZ_FALLBACK 1000000000ull
#define TSC_HZ_MIN 10000000ull /* below this the measurement is bogus */

static uint64_t time_hz;

static uint64_t time_from_cpuid(void)
{
	uint32_t max = cpuid(0, 0).eax;

	if (max >= 0x15) {
		struct cpuid_regs r = cpuid(0x15, 0);

		if (r.eax && r.ebx && r.ecx)
			return (uint64_t)r.ecx * r.ebx / r.eax;
	}
	if (max >= 0x16) {
		uint32_t mhz = cpuid(0x16, 0).eax & 0xFFFF;

		if (mhz)
			return (uint64_t)mhz * 1000000;
	}
	return 0;
}

/* PIT channel 2 in mode 0 counts down once with the gate high; OUT2
 * (port 0x61 bit 5) rises at terminal count. */
static uint64_t time_from_pit(void)
{
	uint16_t latch = (uint16_t)(PIT_HZ / (1000 / PIT_CAL_MS));
	uint64_t t0, t1;
	int i;

	outb(PIT_GATE, (uint8_t)((inb(PIT_GATE) & ~0x02) | 0x01));
	outb(PIT_CMD, 0xB0); /* channel 2, lobyte/hibyte, mode 0, binary */
	outb(PIT_CH2, (uint8_t)latch);
	outb(PIT_CH2, (uint8_t)(latch >> 8));
	t0 = rdtsc();
	for (i = 0; i < PIT_POLL_MAX; i++)
		if (inb(PIT_GATE) & 0x20)
			break;
	t1 = rdtsc();
	if (i == PIT_POLL_MAX)
		return 0;
	return (t1 - t0) * (1000 / PIT_CAL_MS);
}

uint64_t time_tsc_hz(void)
{
	if (time_hz)
		return time_hz;
	uint64_t hz = time_from_cpuid();

	if (hz < TSC_HZ_MIN)
		hz = time_from_pit();
	if (hz < TSC_HZ_MIN)
		hz = TSC_HZ_FALLBACK;
	time_hz = hz;
	return hz;
}

uint64_t time_ms_to_tsc(uint64_t ms)
{
	return time_tsc_hz() / 1000 * ms;
}

void time_udelay(uint64_t us)
{
	uint64_t end = rdtsc() + time_tsc_hz() / 1000000 * us;

	while ((int64_t)(rdtsc() - end) < 0)
		cpu_relax();
}
