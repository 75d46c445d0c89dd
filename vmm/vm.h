/* The kvmrun library API: one struct vm owns everything of one VM, so a
 * program (a CI farm's runner) can run many VMs in one process and tear
 * each down with nothing leaked. kvmrun's own main.c is such a program.
 *
 *	struct vm *vm;
 *	if (vm_create(&cfg, &vm) == 0) {
 *		int code = vm_run(vm);   // returns an exit code (lib/exitcode.h)
 *		vm_destroy(vm);
 *	}
 *
 * Threads: vm_create, vm_run and vm_destroy are called from one thread,
 * which becomes the VM's event thread inside vm_run. vm_request_exit may
 * be called from any thread, including signal-handling threads. */
#ifndef KVMRUN_VM_H
#define KVMRUN_VM_H

#include <stddef.h>

#include "vmm/config.h"

struct vm;

/* Builds the VM from a validated config: KVM VM, RAM, devices, kernel,
 * vCPUs (not yet running). @cfg is borrowed and must outlive the VM.
 * Returns 0 or -errno; every failure has been logged with its cause. */
__attribute__((warn_unused_result))
int vm_create(const struct vm_config *cfg, struct vm **out);

/* Runs the guest until it ends and returns the exit code (lib/exitcode.h),
 * or VM_RESTART when the guest rebooted under on_reboot=restart (destroy
 * and create the VM again to honour it). The vCPU threads are joined
 * before it returns. */
int vm_run(struct vm *vm);

/* Makes timeout= count from @start_ns (CLOCK_MONOTONIC) instead of from
 * vm_run(): a caller that restarts the VM on reboot keeps one deadline. */
void vm_set_timeout_start(struct vm *vm, uint64_t start_ns);

/* Ends the VM with @code (the first request wins). Thread-safe. */
void vm_request_exit(struct vm *vm, int code, const char *why);

/* Watches @fd on the VM's event thread (e.g. a signalfd); @cb runs there. */
__attribute__((warn_unused_result))
int vm_watch_fd(struct vm *vm, int fd, void (*cb)(struct vm *vm, int fd, void *cookie),
		void *cookie);

/* Pause and resume (event thread only, while vm_run runs: the control
 * socket's hooks, or a vm_watch_fd callback). vm_pause makes every vCPU
 * leave KVM_RUN and park, quiesces the virtio queues (no new kicks taken;
 * requests in flight complete) and stops the guest's clock (KVM_GET_CLOCK),
 * which vm_resume sets back (KVM_SET_CLOCK), so guest time does not jump.
 * Return 0, -EALREADY (already paused / not paused), -EAGAIN (not
 * running) or -ETIMEDOUT (a vCPU would not stop within 5 s). */
__attribute__((warn_unused_result))
int vm_pause(struct vm *vm);
__attribute__((warn_unused_result))
int vm_resume(struct vm *vm);

/* Writes a snapshot of the paused VM into directory @dir (created if
 * missing; its snapshot files replaced): the memory file, the state file
 * and the header (README "Snapshots"). Returns 0, or -errno with the
 * reason in @err: not paused, a device that cannot be snapshotted
 * faithfully, an I/O error naming the file. Event thread only. */
__attribute__((warn_unused_result))
int vm_snapshot(struct vm *vm, const char *dir, char *err, size_t err_len);

void vm_destroy(struct vm *vm);

#endif
