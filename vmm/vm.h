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
 * which becomes the VM's event thread inside vm_run (with seccomp=on,
 * the default, vm_run runs the loop on a thread of its own, "event", and
 * waits for it). vm_request_exit may be called from any thread, including
 * signal-handling threads.
 *
 * What the jail (issue 18) does beyond the VM's own threads:
 *   - seccomp=on installs a SIGSYS handler for the process (sigaction);
 *     keep SIGSYS unblocked and do not replace the handler while a VM runs
 *     (vmm/seccomp.h);
 *   - seccomp=on, landlock=on, user= set PR_SET_NO_NEW_PRIVS on the thread
 *     that calls vm_create, for good;
 *   - landlock=on restricts the thread that calls vm_create, for good, to
 *     the files the VM needs;
 *   - user=/group= change the ids of the whole process; cgroup= moves the
 *     whole process (vmm/jail.h, vmm/cgroup.h). */
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

/* What the embedding program decides beyond the config (vmm/kvmrun.c). */
struct vm_opts {
	int kick_signal;           /* 0: vcpu_kick_signal() (cpu/vcpu.h) */
	const struct logger *log;  /* NULL: stderr; else copied (its level and
				    * vm_name are the config's) */
	bool shared_process;       /* the program has threads of its own (which
				    * keep their capabilities by design) */
};

/* vm_create with @opts (NULL: the defaults). Fails with -EBUSY, logged,
 * when the kick signal belongs to the program (vcpu_kick_setup()). */
__attribute__((warn_unused_result))
int vm_create_with(const struct vm_config *cfg, const struct vm_opts *opts, struct vm **out);

/* Runs one control-protocol request line (vmm/control.h) on the VM and
 * writes the response line into @resp. Event thread only: from vm_run's
 * thread, inside a vm_watch_fd callback. */
void vm_command(struct vm *vm, const char *line, char *resp, size_t resp_len);

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
