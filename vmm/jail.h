/* The jail's process-level layers (issue 18): no new privileges, and the
 * switch to an unprivileged uid/gid (user=, group=). Seccomp is
 * vmm/seccomp.h, Landlock vmm/landlock.h, the cgroup vmm/cgroup.h.
 *
 * Order in vm_create(): everything privileged first (taps, vhost,
 * hugepages, images, /dev/kvm), then jail_switch_user(), then caps_drop()
 * (which finds nothing left when the uid changed), then Landlock; the
 * threads' seccomp filters go on last, in vm_run().
 *
 * Process-wide effects: glibc applies setgroups/setresgid/setresuid to
 * every thread of the process, so user= changes the whole embedding
 * program's ids, and must not be used while another VM of the process
 * runs with seccomp=on (its filtered threads would be asked to make the
 * same syscalls and be killed). */
#ifndef KVMRUN_JAIL_H
#define KVMRUN_JAIL_H

#include <stdbool.h>
#include <sys/types.h>

#include "lib/log.h"

#define JAIL_MAX_GROUPS 64

struct jail_ids {
	uid_t uid;
	gid_t gid;
	gid_t groups[JAIL_MAX_GROUPS]; /* supplementary groups */
	int nr_groups;
};

/* Config-time check of a user= or group= value: NULL, or why not. */
const char *jail_check_id(const char *v);

/* Resolves user= and group= (names or numbers; either may be NULL, not
 * both). group= defaults to the user's primary group; the supplementary
 * groups are the user's (from the group database), or none for a uid
 * that has no name. Errors name the key. Returns 0 or -errno. */
__attribute__((warn_unused_result))
int jail_resolve_ids(const char *user, const char *group, struct jail_ids *out,
		     const struct logger *lg);

/* Clears the capability bounding set (while CAP_SETPCAP is held), then
 * setgroups, setresgid, setresuid; then checks that the ids cannot be
 * regained. Nothing to do when the process already runs as @ids. */
__attribute__((warn_unused_result))
int jail_switch_user(const struct jail_ids *ids, const struct logger *lg);

/* PR_SET_NO_NEW_PRIVS on the calling thread (inherited by the threads it
 * creates): execve can never again grant privileges (setuid binaries,
 * file capabilities). Seccomp and Landlock need it. */
__attribute__((warn_unused_result))
int jail_set_no_new_privs(const struct logger *lg);

#endif
