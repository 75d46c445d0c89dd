/* Starting the application processors: INIT, SIPI, SIPI to all-but-self
 * through the xAPIC ICR. Each AP runs the real-mode trampoline copied to
 * TRAMPOLINE_ADDR (0x8000), switches to protected then long mode with the
 * BSP's page tables, takes a stack by atomic increment, records its IDs,
 * checks in (atomic increment), runs the optional callback and halts with
 * interrupts off. Link lib/smp.c and lib/smp_trampoline.S to use it. */
#ifndef GUEST_SMP_H
#define GUEST_SMP_H

#include <stdint.h>

struct smp_cpu {
	uint32_t cpuid_apic_id; /* CPUID.1:EBX[31:24] */
	uint32_t lapic_id;      /* LAPIC ID register [31:24] */
};

/* Called on each AP after it checked in, with its CPU number (1..). Runs
 * with interrupts off on a 4 KiB stack; must not print (one COM1 writer). */
typedef void smp_ap_fn(unsigned cpu);

/* Counts CPUs: enabled MADT entries if there is a valid MADT, else CPUID
 * leaf 0xB subleaf 1 EBX[15:0], else 1. *source names which one. */
unsigned smp_count_cpus(const char **source);

/* BSP only, once. Starts the APs, then waits until expected_aps have
 * checked in or timeout_ms passed. Returns the number that checked in
 * (at most AP_MAX). CPU 0 is the BSP; APs are numbered by arrival. */
unsigned smp_start_aps(unsigned expected_aps, uint64_t timeout_ms, smp_ap_fn *fn);

/* Records for CPUs 0..smp_start_aps()'s result. */
const struct smp_cpu *smp_cpu_info(unsigned cpu);

#endif
