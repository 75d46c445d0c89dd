/* smp: starts every AP and checks that each one reaches long mode and
 * reports itself. Expected CPUs: MADT if present, else CPUID leaf 0xB.
 * Options: smp_timeout_ms=N (default 5000) bounds the wait for the APs. */
#include "guest.h"
#include "smp.h"

int guest_main(void)
{
	const char *source;
	unsigned want = smp_count_cpus(&source);
	uint64_t timeout_ms = cmdline_get_u64("smp_timeout_ms", 5000);
	unsigned aps, up;
	bool ok = true;

	if (want > AP_MAX + 1) {
		printf("smp: %u cpus is more than the %u this guest supports\n", want, AP_MAX + 1);
		want = AP_MAX + 1;
		ok = false;
	}
	printf("smp: expecting %u cpus (from %s)\n", want, source);
	aps = smp_start_aps(want - 1, timeout_ms, NULL);
	up = aps + 1;
	for (unsigned i = 0; i < up; i++) {
		const struct smp_cpu *c = smp_cpu_info(i);

		printf("cpu %u apic_id=%u lapic_id=%u\n", i, c->cpuid_apic_id, c->lapic_id);
		if (c->cpuid_apic_id != c->lapic_id) {
			printf("smp: cpu %u: CPUID and LAPIC disagree on the APIC ID\n", i);
			ok = false;
		}
		for (unsigned j = 0; j < i; j++) {
			if (smp_cpu_info(j)->lapic_id == c->lapic_id) {
				printf("smp: cpu %u and cpu %u share APIC ID %u\n", j, i, c->lapic_id);
				ok = false;
			}
		}
	}
	printf("smp: %u of %u cpus up\n", up, want);
	return ok && up == want ? 0 : EXIT_FAIL;
}
