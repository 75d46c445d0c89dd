/* One vCPU's architectural state, as KVM gives it out and takes it back,
 * for snapshots: general and special registers, FPU/XSAVE, XCRs, the MSRs
 * KVM lists (those that read back), the local APIC, pending events, debug
 * registers, MP state, CPUID and the TSC frequency.
 *
 * Three steps, so that the middle one is fuzzed without KVM:
 *   vcpu_state_get()    ioctls -> struct vcpu_state (a parked vCPU)
 *   vcpu_state_save()   struct -> a state section "vcpu.N"
 *   vcpu_state_parse()  a section -> struct, every length and count
 *                       checked (pure: no KVM, no side effect)
 *   vcpu_state_set()    struct -> ioctls, before the vCPU first runs
 *
 * In the section, each KVM structure is its kernel ABI layout (x86-64,
 * little-endian, stable by the kernel's promise), framed by a u32 length
 * that must match exactly; variable parts (MSRs, CPUID entries, XSAVE)
 * carry their count or size, bounded below.
 *
 * Threads: the caller's; the vCPU must not be in KVM_RUN. */
#ifndef KVMRUN_VCPU_STATE_H
#define KVMRUN_VCPU_STATE_H

#include <linux/kvm.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/state.h"

#define VCPU_STATE_VERSION 1u
#define VCPU_STATE_MAX_MSRS 1024
#define VCPU_STATE_MAX_CPUID 256
#define VCPU_STATE_MAX_XSAVE (64u * 1024)   /* bytes */

struct vcpu_state {
	uint32_t index, apic_id;
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	uint8_t *xsave;          /* @xsave_len bytes (KVM_GET_XSAVE2's size) */
	uint32_t xsave_len;
	struct kvm_xcrs xcrs;
	struct kvm_lapic_state lapic;
	struct kvm_vcpu_events events;
	struct kvm_debugregs debugregs;
	struct kvm_mp_state mp;
	struct kvm_msr_entry *msrs;
	uint32_t nr_msrs;
	struct kvm_cpuid_entry2 *cpuid;
	uint32_t nr_cpuid;
	uint32_t tsc_khz;        /* 0: unknown */
};

/* Reads vCPU @vcpu_fd's state. @msr_index/@nr_msr_index: the MSRs to try
 * (KVM_GET_MSR_INDEX_LIST); those that do not read back are left out.
 * Returns 0, or -errno with the failing ioctl in @err. */
__attribute__((warn_unused_result))
int vcpu_state_get(int kvm_fd, int vcpu_fd, const uint32_t *msr_index, uint32_t nr_msr_index,
		   struct vcpu_state *s, char *err, size_t err_len);

/* Appends section "vcpu.<index>". */
void vcpu_state_save(const struct vcpu_state *s, struct state_w *w);

/* Reads a section written by vcpu_state_save into @s (which the caller
 * vcpu_state_free()s in any case). Returns 0, or -EINVAL with the reason
 * in r->err (state_r_finish's). */
__attribute__((warn_unused_result))
int vcpu_state_parse(struct state_r *r, struct vcpu_state *s);

/* Loads @s into vCPU @vcpu_fd (never run yet); the caller has checked
 * s->xsave_len against this host's vcpu_state_xsave_len(). An MSR KVM
 * refuses is skipped and counted in *@msrs_skipped (the first in
 * *@msr_first). Returns 0, or -errno with the failing step in @err. */
__attribute__((warn_unused_result))
int vcpu_state_set(int vcpu_fd, const struct vcpu_state *s, unsigned *msrs_skipped,
		   uint32_t *msr_first, char *err, size_t err_len);

/* The XSAVE buffer size KVM uses on this host (KVM_CAP_XSAVE2, else the
 * 4 KiB of struct kvm_xsave). */
uint32_t vcpu_state_xsave_len(int kvm_fd);

/* The MSR indices KVM saves and restores (KVM_GET_MSR_INDEX_LIST), in a
 * malloc'ed array. Returns 0 or -errno. */
__attribute__((warn_unused_result))
int vcpu_state_msr_list(int kvm_fd, uint32_t **out, uint32_t *nr);

void vcpu_state_free(struct vcpu_state *s);

#endif
