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
 * with a pre-made tap and access to /dev/kvm) has nothing to drop.
 *
 * Running kvmrun as an unprivileged user U (tested by
 * tests/integration/test_caps.py):
 *   once, as root:  ip tuntap add dev tap0 mode tap user U
 *                   (add multi_queue for net0.queues > 1; set the MTU and
 *                   address here too: kvmrun cannot without CAP_NET_ADMIN)
 *                   usermod -aG kvm U   (rw access to /dev/kvm)
 *                   and, for vhost-net, rw access to /dev/vhost-net
 *   then, as U:     kvmrun vm.conf net0.tap=tap0
 * kvmrun attaches to a tap owned by U without any capability.
 *
 * With on_reboot=restart the VM is destroyed and created again after the
 * drop, so a tap kvmrun created itself (CAP_NET_ADMIN) could not be made
 * again: such a tap is then created persistent and owned by kvmrun's euid
 * (net_params.persist_tap), the next VM attaches to it without privilege,
 * and it stays after kvmrun exits (remove it with ip link del). Without
 * on_reboot=restart a tap kvmrun created goes away with kvmrun. */
#ifndef KVMRUN_CAPS_H
#define KVMRUN_CAPS_H

#include <stdbool.h>

#include "lib/log.h"

/* Returns 0, or -errno when the capabilities could not be dropped (the
 * caller then fails rather than run privileged). Other threads keep their
 * sets: a warning says so, or an info line when @others_expected (the
 * library's VM thread, in a program with threads of its own). */
__attribute__((warn_unused_result))
int caps_drop(const struct logger *lg, bool others_expected);

#endif
