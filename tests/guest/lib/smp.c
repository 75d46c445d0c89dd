#include "acpi.h"
#include "cpu.h"
#include "layout.h"
#include "lapic.h"
#include "libc.h"
#include "smp.h"
#include "time.h"
#include "trap.h"

_Static_assert(AP_STACK_SIZE == 0x1000, "smp_trampoline.S shifts by 12");
_Static_assert((TRAMPOLINE_ADDR & 0xFFF) == 0 && TRAMPOLINE_ADDR < 0x100000,
	       "SIPI needs a page below 1 MiB");

#define INIT_DELAY_US 10000
#define SIPI_DELAY_US 200

extern const char smp_trampoline_start[], smp_trampoline_end[];
void smp_ap_main(uint32_t slot);

/* Shared with ap_start64 (smp_trampoline.S) and the APs. */
uint32_t smp_ap_next;
char smp_ap_stacks[AP_MAX][AP_STACK_SIZE] __attribute__((aligned(16)));

static struct smp_cpu smp_cpus[AP_MAX + 1];
static uint32_t smp_checked_in;
static smp_ap_fn *smp_fn;

unsigned smp_count_cpus(const char **source)
{
	unsigned n = acpi_madt_cpu_count();

	if (n) {
		*source = "madt";
		return n;
	}
	if (cpuid(0, 0).eax >= 0xB) {
		n = cpuid(0xB, 1).ebx & 0xFFFF;
		if (n) {
			*source = "cpuid";
			return n;
		}
	}
	*source = "default";
	return 1;
}

void smp_ap_main(uint32_t slot)
{
	unsigned cpu = slot + 1;

	trap_init();
	smp_cpus[cpu].cpuid_apic_id = cpu_apic_id();
	smp_cpus[cpu].lapic_id = lapic_id();
	__atomic_fetch_add(&smp_checked_in, 1, __ATOMIC_SEQ_CST);
	if (smp_fn)
		smp_fn(cpu);
	cpu_halt_forever();
}

static uint32_t smp_up(void)
{
	return __atomic_load_n(&smp_checked_in, __ATOMIC_SEQ_CST);
}

unsigned smp_start_aps(unsigned expected_aps, uint64_t timeout_ms, smp_ap_fn *fn)
{
	smp_cpus[0].cpuid_apic_id = cpu_apic_id();
	smp_cpus[0].lapic_id = lapic_id();
	smp_fn = fn;
	if (expected_aps == 0)
		return 0;

	memcpy((void *)(uintptr_t)TRAMPOLINE_ADDR, smp_trampoline_start,
	       (size_t)(smp_trampoline_end - smp_trampoline_start));
	__atomic_thread_fence(__ATOMIC_SEQ_CST);

	lapic_init_others();
	time_udelay(INIT_DELAY_US);
	lapic_sipi_others(TRAMPOLINE_ADDR >> 12);
	time_udelay(SIPI_DELAY_US);
	if (smp_up() < expected_aps)
		lapic_sipi_others(TRAMPOLINE_ADDR >> 12);

	uint64_t start = rdtsc(), limit = time_ms_to_tsc(timeout_ms);

	while (smp_up() < expected_aps && rdtsc() - start < limit)
		cpu_relax();
	uint32_t up = smp_up();

	return up > AP_MAX ? AP_MAX : up;
}

const struct smp_cpu *smp_cpu_info(unsigned cpu)
{
	return cpu <= AP_MAX ? &smp_cpus[cpu] : NULL;
}
