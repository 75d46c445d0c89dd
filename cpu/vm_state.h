/* The VM-wide state KVM keeps in the kernel, for snapshots: the
 * in-kernel irqchip (PIC master, PIC slave, IOAPIC), the PIT and the
 * kvm-clock. The same three steps as cpu/vcpu_state.h: get (ioctls), save
 * and parse (section "kvm.vm", pure and fuzzed), set (ioctls).
 *
 * Threads: the caller's; no vCPU may be in KVM_RUN. */
#ifndef KVMRUN_VM_STATE_H
#define KVMRUN_VM_STATE_H

#include <linux/kvm.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/state.h"

#define VM_STATE_SECTION "kvm.vm"
#define VM_STATE_VERSION 1u

struct vm_kvm_state {
	struct kvm_irqchip chip[3];   /* KVM_IRQCHIP_PIC_MASTER, _SLAVE, _IOAPIC */
	struct kvm_pit_state2 pit;
	uint64_t clock;               /* kvm-clock ns, as KVM_GET_CLOCK gave it */
};

/* Reads the irqchip and PIT of @vm_fd; @clock is the caller's (the value
 * taken when the VM paused). Returns 0 or -errno, the ioctl in @err. */
__attribute__((warn_unused_result))
int vm_kvm_state_get(int vm_fd, uint64_t clock, struct vm_kvm_state *s, char *err, size_t len);

void vm_kvm_state_save(const struct vm_kvm_state *s, struct state_w *w);

/* Pure: 0, or -EINVAL with the reason in r->err. */
__attribute__((warn_unused_result))
int vm_kvm_state_parse(struct state_r *r, struct vm_kvm_state *s);

/* Loads @s's irqchip and PIT into @vm_fd. Returns 0 or -errno, the ioctl
 * in @err. The clock is set apart, with vm_kvm_clock_set, just before the
 * vCPUs first run, so the guest's time does not run on while the rest of
 * the VM is built. */
__attribute__((warn_unused_result))
int vm_kvm_state_set(int vm_fd, const struct vm_kvm_state *s, char *err, size_t len);
__attribute__((warn_unused_result))
int vm_kvm_clock_set(int vm_fd, uint64_t clock, char *err, size_t len);

#endif
