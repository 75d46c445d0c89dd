/* Seccomp filters, one per kind of kvmrun thread (seccomp=on, the default).
 *
 * Each kind has ONE allowlist (vmm/seccomp_tables.c): the syscalls its
 * thread makes, and for ioctl the request numbers; mmap and mprotect
 * never with PROT_EXEC, socket only for the families kvmrun uses. A
 * feature that adds a syscall on a thread adds one commented row there.
 *
 * A thread installs its filter itself, once its set-up is done:
 *   - a vCPU thread before its first KVM_RUN (cpu/vcpu.c's thread_start
 *     hook, which vmm/vm.c points here);
 *   - the event thread in vm_run(), after the vCPU threads exist (a filter
 *     is inherited by the threads a filtered thread creates, and they
 *     would get both).
 * The filter stays with the thread until it ends: it cannot be removed.
 * So vm_run() runs the event loop on a thread of its own: the caller's
 * thread stays unfiltered and can create the next VM. That thread only
 * waits in pthread_join while the VM runs; an attacker who could write
 * anywhere in the process's memory could still take it over, which only
 * a process per VM (the kvmrun command) and the layers below seccomp
 * (user=, Landlock, the cgroup) answer.
 *
 * io_uring's kernel workers (iou-wrk) are not filtered: they run the
 * ring's requests inside the kernel and make no syscalls, so there is
 * nothing for seccomp to see. What the ring may be asked to do is bounded
 * by what the event thread may submit (io_uring_enter is allowed, so a
 * thread taken over could queue an IORING_OP_OPENAT: Landlock and user=
 * still apply to it, being checked against the submitter's credentials,
 * which the workers carry).
 *
 * A violation: the kernel sends the thread SIGSYS (SECCOMP_RET_TRAP); the
 * handler writes one line to the VM's log fd with write(2),
 *   kvmrun: seccomp: the vcpu thread made a forbidden syscall: socket (41)
 * and ends the process with _exit(EXIT_VMM_ERROR). RET_TRAP rather than
 * RET_KILL_PROCESS because the killed process could say nothing: the
 * line, naming the thread kind and the syscall, is what makes an
 * allowlist gap found in the field fixable.
 *
 * Process-wide effects (for a program embedding kvmrun): the SIGSYS
 * handler is installed with sigaction(), replacing the caller's; and
 * SIGSYS must not be blocked on a VM's threads (the kernel then kills the
 * process with no line). PR_SET_NO_NEW_PRIVS, which seccomp needs, is set
 * on the calling thread by jail_set_no_new_privs() (vmm/jail.h). */
#ifndef KVMRUN_SECCOMP_H
#define KVMRUN_SECCOMP_H

#include <stdbool.h>

#include "lib/log.h"

enum seccomp_kind { SECCOMP_VCPU, SECCOMP_EVENT, SECCOMP_NR_KINDS };

/* One allowlist row: a syscall, with at most one cheap argument check. */
enum seccomp_check {
	SC_ANY,          /* any arguments */
	SC_IOCTL,        /* ioctl(fd, val, ...) */
	SC_NO_EXEC,      /* arg 2 (prot) without PROT_EXEC: mmap, mprotect */
	SC_ARG0,         /* arg 0 == val: socket's family */
};

struct seccomp_rule {
	int nr;
	enum seccomp_check check;
	unsigned long val;
};

struct seccomp_table {
	const struct seccomp_rule *rules;
	unsigned nr;
};

/* The rows of @kind's allowlist (vmm/seccomp_tables.c); every kind also
 * gets seccomp_runtime() (libc, and the sanitizers in such a build). */
struct seccomp_table seccomp_allowlist(enum seccomp_kind kind);
struct seccomp_table seccomp_runtime(void);

const char *seccomp_kind_name(enum seccomp_kind kind);

/* Whether this kernel filters syscalls (CONFIG_SECCOMP_FILTER). */
bool seccomp_available(void);

/* Installs @kind's filter on the calling thread; @log_fd is where a
 * violation's line goes. Returns 0, or -errno (logged). */
__attribute__((warn_unused_result))
int seccomp_install(enum seccomp_kind kind, int log_fd, const struct logger *lg);

#endif
