/* vCPU threads: one thread per vCPU, pinned, running KVM_RUN and
 * dispatching port and MMIO exits to the buses.
 *
 * Threads: each vcpu struct is owned by its thread while it runs; the VM's
 * thread only starts, kicks and joins it. A kick is a signal (the VM's
 * env->kick_signal, vcpu_kick_signal() by default) that is blocked outside
 * KVM_RUN and unblocked inside it (via KVM_SET_SIGNAL_MASK), so a kick sent
 * at any moment makes the thread see the stop flag before it enters the
 * guest again. A vCPU thread otherwise keeps the signal mask of the thread
 * that started it: a program that embeds kvmrun chooses which of its
 * signals vCPU threads may take.
 *
 * Pausing: vcpu_env.pause makes every thread leave KVM_RUN (after a kick),
 * complete the instruction a port or MMIO exit left half done (a KVM_RUN
 * with immediate_exit), and park on the env's condition variable, still
 * alive, until vcpu_env_resume(). A parked vCPU's state may be read and
 * written by ioctls from another thread. */
#ifndef KVMRUN_VCPU_H
#define KVMRUN_VCPU_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "devices/bus.h"
#include "lib/log.h"

struct kvm_run;
struct kvm_cpuid2;

/* The userspace exits a vCPU thread counts (metrics: vcpuN.exits_NAME). */
enum vcpu_exit_kind {
	VCPU_EXIT_IO, VCPU_EXIT_MMIO, VCPU_EXIT_HLT, VCPU_EXIT_SHUTDOWN,
	VCPU_EXIT_SYSTEM_EVENT, VCPU_EXIT_INTR, VCPU_EXIT_IRQ_WINDOW,
	VCPU_EXIT_INTERNAL_ERROR, VCPU_EXIT_FAIL_ENTRY, VCPU_EXIT_OTHER,
	VCPU_EXIT_NR
};

/* "io", "mmio", "hlt", "shutdown", "system_event", "intr", "irq_window",
 * "internal_error", "fail_entry", "other". */
const char *vcpu_exit_name(enum vcpu_exit_kind k);

/* What the vCPU threads share with the VM; owned by the VM. */
struct vcpu_env {
	const struct bus *pio, *mmio;
	const struct logger *log;
	atomic_bool stop;   /* set by the VM before kicking */
	int kick_signal;    /* set before vcpu_start; see vcpu_kick_setup() */
	atomic_bool pause;  /* set by vcpu_env_pause(); cleared by _resume() */
	pthread_mutex_t lock;   /* guards parked, exited; with @cond */
	pthread_cond_t cond;
	unsigned parked;    /* threads parked now */
	unsigned exited;    /* threads that have returned */
	/* The guest ended the VM (crash, shutdown): @code is an exit code. */
	void (*guest_exit)(void *cookie, int code, const char *why);
	/* Optional: runs on each vCPU thread before its first KVM_RUN (the
	 * VM installs the thread's seccomp filter there); a negative return
	 * ends the VM. */
	int (*thread_start)(void *cookie, unsigned index);
	void *cookie;
	bool metrics;       /* count exits by kind (set before the threads start) */
};

struct vcpu {
	struct vcpu_env *env;
	unsigned index;
	uint32_t apic_id;
	int host_cpu;        /* -1: not pinned */
	int fd;
	struct kvm_run *run;
	size_t run_size;
	pthread_t thread;
	bool started;
	uint64_t exits;      /* count of userspace exits, for status/debug */
	/* By kind, with env->metrics: written by the vCPU's thread only,
	 * read by any thread with vcpu_exit_count() (tear-free, racy). */
	uint64_t exit_count[VCPU_EXIT_NR];
};

/* Userspace exits of kind @k so far; any thread. */
static inline uint64_t vcpu_exit_count(const struct vcpu *v, enum vcpu_exit_kind k)
{
	return __atomic_load_n(&v->exit_count[k], __ATOMIC_RELAXED);
}

/* Initialises (destroys) the pause machinery of @env. */
__attribute__((warn_unused_result))
int vcpu_env_init(struct vcpu_env *env);
void vcpu_env_destroy(struct vcpu_env *env);

/* Makes the @n vCPUs of @env leave KVM_RUN and park; returns once every
 * started one is parked or has ended, 0, or -ETIMEDOUT after @timeout_ms
 * (the pause is then undone). Called by the VM's thread only. */
__attribute__((warn_unused_result))
int vcpu_env_pause(struct vcpu_env *env, struct vcpu *vcpus, unsigned n, unsigned timeout_ms);
/* Lets parked vCPUs run again. */
void vcpu_env_resume(struct vcpu_env *env);

/* The default kick signal, SIGRTMIN + 3. */
int vcpu_kick_signal(void);

/* Makes @sig usable as a kick signal: installs kvmrun's (empty) handler
 * when the signal has the default disposition, accepts it when that
 * handler is already there, and refuses with -EBUSY when the process has
 * its own handler or ignores it (an ignored signal would not interrupt
 * KVM_RUN), so a program's own use of a signal is never taken over.
 * -EINVAL for SIGKILL, SIGSTOP and numbers that are no signal. The handler
 * is process-wide and stays installed. */
__attribute__((warn_unused_result))
int vcpu_kick_setup(int sig);

/* Creates vCPU @index on @vm_fd with @cpuid (completed here with the
 * vCPU's TSC frequency), its local APIC set up. */
__attribute__((warn_unused_result))
int vcpu_create(struct vcpu *v, struct vcpu_env *env, int kvm_fd, int vm_fd,
		unsigned index, uint32_t apic_id, struct kvm_cpuid2 *cpuid,
		int host_cpu);

/* Starts the thread; pinning happens in the thread before the first run. */
__attribute__((warn_unused_result))
int vcpu_start(struct vcpu *v);

/* Makes a running thread leave KVM_RUN (set env->stop first). */
void vcpu_kick(struct vcpu *v);
void vcpu_join(struct vcpu *v);
void vcpu_destroy(struct vcpu *v);

#endif
