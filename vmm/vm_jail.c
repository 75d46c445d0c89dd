/* The jail's layers applied to one VM, in the order vm_create and vm_run
 * need them (see vmm/jail.h for why this order). */
#include <errno.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/caps.h"
#include "vmm/cgroup.h"
#include "vmm/jail.h"
#include "vmm/landlock.h"
#include "vmm/seccomp.h"
#include "vmm/vm_priv.h"

int vm_jail_enter_cgroup(struct vm *vm)
{
	const struct vm_config *c = vm->cfg;
	if (!c->cgroup)
		return 0;
	if (vm->shared_process) {
		log_err(&vm->log, "cgroup", "cgroup=%s: it moves the whole process, and in a "
			"program that embeds kvmrun that is the program's to do", c->cgroup);
		return -EPERM;
	}
	const struct cgroup_params p = {
		.path = c->cgroup, .cpu_max = c->cgroup_cpu_max,
		.memory_max = c->cgroup_memory_max, .io_max = c->cgroup_io_max,
	};
	return cgroup_enter(&p, &vm->log);
}

/* What a running VM may still open: its files again (a restart, a tap
 * made again), the devices, its own /proc entries (the memory command),
 * the control socket's folder. */
static int restrict_files(struct vm *vm)
{
	const struct vm_config *c = vm->cfg;
	struct landlock_path paths[9 + CONFIG_MAX_DISKS];
	unsigned n = 0;
	char *control_dir = NULL;
	paths[n++] = (struct landlock_path){ "/dev/kvm", LL_WRITE };
	paths[n++] = (struct landlock_path){ "/dev/net/tun", LL_WRITE };
	paths[n++] = (struct landlock_path){ "/dev/vhost-net", LL_WRITE };
	paths[n++] = (struct landlock_path){ "/dev/vhost-vsock", LL_WRITE };
	paths[n++] = (struct landlock_path){ "/proc/self", LL_READ };
	paths[n++] = (struct landlock_path){ c->kernel, LL_READ };
	paths[n++] = (struct landlock_path){ c->initrd, LL_READ };
	if (c->serial == SERIAL_FILE)
		paths[n++] = (struct landlock_path){ c->serial_path, LL_WRITE };
	for (unsigned i = 0; i < CONFIG_MAX_DISKS; i++)
		if (c->disks[i].path)
			paths[n++] = (struct landlock_path){
				c->disks[i].path, c->disks[i].readonly ? LL_READ : LL_WRITE };
	if (c->control) {
		char *copy = strdup(c->control);
		if (!copy)
			return -ENOMEM;
		control_dir = strdup(dirname(copy));
		free(copy);
		if (!control_dir)
			return -ENOMEM;
		paths[n++] = (struct landlock_path){ control_dir, LL_DIR_SOCKET };
	}
	if (c->snapshot_dir)
		paths[n++] = (struct landlock_path){ c->snapshot_dir, LL_DIR_FILES };
	int rc = landlock_restrict(paths, n, &vm->log);
	free(control_dir);
	return rc;
}

int vm_jail_lock(struct vm *vm)
{
	const struct vm_config *c = vm->cfg;
	vm->seccomp_on = c->seccomp && seccomp_available();
	if (c->seccomp && !vm->seccomp_on)
		log_warn(&vm->log, "seccomp", "this kernel has no seccomp filters: "
			 "running without them");
	int rc = 0;
	if (vm->seccomp_on || c->landlock || c->user || c->group)
		rc = jail_set_no_new_privs(&vm->log);
	if (rc == 0 && (c->user || c->group) && vm->shared_process) {
		log_err(&vm->log, "jail", "user=/group=: they switch the ids of every thread of "
			"the process, and in a program that embeds kvmrun that is the program's "
			"to do");
		rc = -EPERM;
	} else if (rc == 0 && (c->user || c->group)) {
		struct jail_ids ids;
		rc = jail_resolve_ids(c->user, c->group, &ids, &vm->log);
		if (rc == 0)
			rc = jail_switch_user(&ids, &vm->log);
	}
	if (rc == 0 && c->drop_caps)
		/* vm_run's threads inherit empty sets */
		rc = caps_drop(&vm->log, vm->shared_process);
	if (rc == 0 && c->landlock)
		rc = restrict_files(vm);
	return rc;
}

int vm_jail_vcpu_thread(void *cookie, unsigned index)
{
	struct vm *vm = cookie;
	if (!vm->seccomp_on)
		return 0;
	return seccomp_install(SECCOMP_VCPU, vm->log.fd, &vm->log);
}

int vm_jail_event_thread(struct vm *vm)
{
	if (!vm->seccomp_on || vm->event_filtered)
		return 0;
	int rc = seccomp_install(SECCOMP_EVENT, vm->log.fd, &vm->log);
	if (rc == 0) {
		vm->event_filtered = true;
		log_info(&vm->log, "seccomp", "filters on: vcpu and event threads");
	}
	return rc;
}
