/* Dropping privileges once set-up is done (drop_caps=on, the default).
 *
 * Capabilities are per thread, and new threads inherit their creator's:
 * call caps_drop() on the VM's thread at the end of vm_create(), after
 * every privileged step (taps opened or created, /dev/vhost-net opened,
 * images opened, memory mapped) and before vm_run() starts the vCPU
 * threads, so that every thread of the process runs with empty sets.
 *
 * It clears the effective, permitted, inheritable and ambient sets, and
 * the bounding set when CAP_SETPCAP allows (libcap-ng), and logs at info
 * what was dropped. A process that holds nothing (an unprivileged user
 * with a pre-made tap and access to /dev/kvm) has nothing to drop. */
#ifndef KVMRUN_CAPS_H
#define KVMRUN_CAPS_H

#include "vmm/log.h"

/* Returns 0, or -errno when the capabilities could not be dropped (the
 * caller then fails rather than run privileged). */
__attribute__((warn_unused_result))
int caps_drop(const struct logger *lg);

#endif
