/* The exit codes of kvmrun: the contract CI farms script against. */
#ifndef KVMRUN_EXITCODE_H
#define KVMRUN_EXITCODE_H

enum {
	EXIT_GUEST_POWEROFF = 0,   /* power-off, or reboot with on_reboot=exit */
	EXIT_VMM_ERROR = 1,        /* config, resources, KVM */
	EXIT_USAGE = 2,
	EXIT_GUEST_CRASH = 3,      /* triple fault, KVM internal/emulation error */
	EXIT_TIMEOUT = 124,        /* timeout= expired */
	EXIT_SIGNAL_BASE = 128,    /* + signal number, after a clean teardown */
};

/* Not an exit code: vm_run() asks its caller to boot the VM again
 * (guest reboot with on_reboot=restart). */
#define VM_RESTART 256

#endif
