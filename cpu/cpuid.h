/* CPUID for the guest: what KVM supports, with a topology and APIC IDs that
 * match cpu_topology= (SOCKETS:CORES:THREADS) and the MADT. */
#ifndef KVMRUN_CPUID_H
#define KVMRUN_CPUID_H

#include <stdint.h>

struct kvm_cpuid2;

struct cpu_topology {
	unsigned sockets, cores, threads; /* cores per socket, threads per core */
};

/* The x2APIC ID of vCPU @index: socket, core and thread fields packed at the
 * bit widths the topology needs (so IDs have gaps when a count is not a
 * power of two, as on real hardware). */
uint32_t cpuid_apic_id(const struct cpu_topology *t, unsigned index);

/* Bits of the APIC ID below the core field and below the socket field. */
unsigned cpuid_thread_bits(const struct cpu_topology *t);
unsigned cpuid_core_bits(const struct cpu_topology *t);

/* Reads KVM_GET_SUPPORTED_CPUID from the /dev/kvm fd. The caller frees. */
__attribute__((warn_unused_result))
int cpuid_supported(int kvm_fd, struct kvm_cpuid2 **out);

/* Returns a copy of @base patched for vCPU @index: APIC IDs in leaves 1,
 * 0xB and 0x1F, core/thread counts in leaves 1, 4, 0xB, 0x1F, 0x80000008
 * and 0x8000001E, the hypervisor bit. The caller frees. */
__attribute__((warn_unused_result))
int cpuid_for_vcpu(const struct kvm_cpuid2 *base, const struct cpu_topology *t,
		   unsigned index, struct kvm_cpuid2 **out);

/* States the TSC frequency in leaves 0x15 (crystal = TSC, ratio 1:1) and
 * 0x16 (MHz) where the CPUID range has them: otherwise the guest sees the
 * host CPU's nominal values, which need not be the rate KVM runs its TSC
 * at, and a guest timing with rdtsc is off by that factor. */
void cpuid_set_tsc_khz(struct kvm_cpuid2 *c, uint32_t tsc_khz);
/* Sets the TSC-deadline timer bit (leaf 1 ECX bit 24). KVM emulates that
 * timer mode but KVM_GET_SUPPORTED_CPUID does not report it: a VMM sets it
 * when KVM_CAP_TSC_DEADLINE_TIMER is present. Without it Linux programs the
 * LAPIC timer in one-shot mode, two register writes per timer event. */
void cpuid_set_tsc_deadline(struct kvm_cpuid2 *c);

#endif
