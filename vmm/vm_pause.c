/* Pause and resume: the vCPUs parked out of KVM_RUN, the virtio queues
 * quiesced, the guest's clock held (vm.h). */
#include <errno.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

#include "vmm/vm_priv.h"

#define PAUSE_TIMEOUT_MS 5000

int vm_pause_why(struct vm *vm, char *err, size_t len)
{
	if (vm->paused) {
		snprintf(err, len, "the VM is already paused");
		return -EALREADY;
	}
	if (!vm->running || atomic_load(&vm->exit_code) != -1) {
		snprintf(err, len, "the VM is not running");
		return -EAGAIN;
	}
	int rc = vcpu_env_pause(&vm->env, vm->vcpus, vm->nr_vcpus, PAUSE_TIMEOUT_MS);
	if (rc < 0) {
		snprintf(err, len, "a vCPU did not leave KVM_RUN within %u ms; not paused",
			 PAUSE_TIMEOUT_MS);
		log_err(&vm->log, "vm", "pause: %s", err);
		return rc;
	}
	vm_virtio_quiesce(vm);
	/* The guest's clock stops here; resume sets it back, so a guest
	 * paused for an hour does not see the hour pass (kvm-clock). */
	struct kvm_clock_data clk;
	memset(&clk, 0, sizeof(clk));
	if (ioctl(vm->vm_fd, KVM_GET_CLOCK, &clk) < 0) {
		rc = -errno;
		snprintf(err, len, "KVM_GET_CLOCK: %s; not paused", strerror(-rc));
		log_err(&vm->log, "vm", "pause: %s", err);
		vm_virtio_unquiesce(vm);
		vcpu_env_resume(&vm->env);
		return rc;
	}
	vm->paused_clock = clk.clock;
	vm->paused = true;
	log_info(&vm->log, "vm", "paused (guest clock %llu ns)", (unsigned long long)clk.clock);
	return 0;
}

int vm_resume_why(struct vm *vm, char *err, size_t len)
{
	if (!vm->paused) {
		snprintf(err, len, "the VM is not paused");
		return -EALREADY;
	}
	struct kvm_clock_data clk;
	memset(&clk, 0, sizeof(clk));
	uint64_t now = ioctl(vm->vm_fd, KVM_GET_CLOCK, &clk) == 0 ? clk.clock : 0;
	memset(&clk, 0, sizeof(clk));
	clk.clock = vm->paused_clock;
	if (ioctl(vm->vm_fd, KVM_SET_CLOCK, &clk) < 0) {
		int e = errno;
		snprintf(err, len, "KVM_SET_CLOCK: %s; still paused", strerror(e));
		log_err(&vm->log, "vm", "resume: %s", err);
		return -e;
	}
	vm_virtio_unquiesce(vm);
	vm->paused = false;
	vcpu_env_resume(&vm->env);
	log_info(&vm->log, "vm", "resumed (guest clock set back from %llu to %llu ns)",
		 (unsigned long long)now, (unsigned long long)vm->paused_clock);
	return 0;
}

int vm_pause(struct vm *vm)
{
	char why[160];
	return vm_pause_why(vm, why, sizeof(why));
}

int vm_resume(struct vm *vm)
{
	char why[160];
	return vm_resume_why(vm, why, sizeof(why));
}
