#include "cpu/vcpu.h"

#include <errno.h>
#include <linux/kvm.h>
#include <sched.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "cpu/cpuid.h"
#include "cpu/regs.h"
#include "lib/exitcode.h"

int vcpu_kick_signal(void)
{
	return SIGRTMIN + 3;
}

static void kick_handler(int sig)
{
	(void)sig; /* only there to interrupt KVM_RUN */
}

int vcpu_kick_setup(int sig)
{
	if (sig <= 0 || sig > SIGRTMAX || sig == SIGKILL || sig == SIGSTOP)
		return -EINVAL;
	struct sigaction old;
	if (sigaction(sig, NULL, &old) < 0)
		return -errno;
	if (!(old.sa_flags & SA_SIGINFO) && old.sa_handler == kick_handler)
		return 0;
	if ((old.sa_flags & SA_SIGINFO) || old.sa_handler != SIG_DFL)
		return -EBUSY;
	struct sigaction sa = { .sa_handler = kick_handler };
	sigemptyset(&sa.sa_mask);
	return sigaction(sig, &sa, NULL) < 0 ? -errno : 0;
}

int vcpu_create(struct vcpu *v, struct vcpu_env *env, int kvm_fd, int vm_fd,
		unsigned index, uint32_t apic_id, struct kvm_cpuid2 *cpuid,
		int host_cpu)
{
	memset(v, 0, sizeof(*v));
	v->env = env;
	v->index = index;
	v->apic_id = apic_id;
	v->host_cpu = host_cpu;
	v->fd = ioctl(vm_fd, KVM_CREATE_VCPU, (unsigned long)apic_id);
	if (v->fd < 0) {
		int e = errno;
		log_err(env->log, "vcpu", "vcpu %u: KVM_CREATE_VCPU (apic id %u): %s",
			index, apic_id, strerror(e));
		return -e;
	}
	int sz = ioctl(kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	const char *what = "KVM_GET_VCPU_MMAP_SIZE";
	int rc = 0;
	if (sz < (int)sizeof(struct kvm_run)) {
		rc = sz < 0 ? -errno : -EINVAL;
		goto fail;
	}
	v->run_size = (size_t)sz;
	v->run = mmap(NULL, v->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
	if (v->run == MAP_FAILED) {
		v->run = NULL;
		what = "mmap of kvm_run";
		rc = -errno;
		goto fail;
	}
	int khz = ioctl(v->fd, KVM_GET_TSC_KHZ, 0);
	if (khz > 0)
		cpuid_set_tsc_khz(cpuid, (uint32_t)khz);
	what = "KVM_SET_CPUID2";
	if (ioctl(v->fd, KVM_SET_CPUID2, cpuid) < 0) {
		rc = -errno;
		goto fail;
	}
	what = "KVM_GET/SET_LAPIC";
	rc = regs_setup_lapic(v->fd);
	if (rc < 0)
		goto fail;
	return 0;
fail:
	log_err(env->log, "vcpu", "vcpu %u: %s: %s", index, what, strerror(-rc));
	vcpu_destroy(v);
	return rc;
}

static void report_emulation_failure(struct vcpu *v)
{
	struct kvm_regs regs;
	unsigned long long rip = 0;
	if (ioctl(v->fd, KVM_GET_REGS, &regs) == 0)
		rip = regs.rip;
	struct kvm_run *r = v->run;
	char bytes[64] = "";
	if (r->internal.suberror == KVM_INTERNAL_ERROR_EMULATION &&
	    (r->emulation_failure.flags & KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES)) {
		unsigned n = r->emulation_failure.insn_size;
		const uint8_t *insn = r->emulation_failure.insn_bytes;
		size_t pos = 0;
		for (unsigned i = 0; i < n && i < 15; i++)
			pos += (size_t)snprintf(bytes + pos, sizeof(bytes) - pos, " %02x", insn[i]);
	}
	log_err(v->env->log, "vcpu", "vcpu %u: KVM internal error, suberror %u at rip 0x%llx%s%s",
		v->index, r->internal.suberror, rip, bytes[0] ? ", instruction bytes" : "", bytes);
}

/* One line of the state a crash left, so a guest author can find it. */
static void report_cpu_state(struct vcpu *v, const char *what)
{
	struct kvm_regs r;
	struct kvm_sregs s;
	if (ioctl(v->fd, KVM_GET_REGS, &r) < 0 || ioctl(v->fd, KVM_GET_SREGS, &s) < 0)
		return;
	log_warn(v->env->log, "vcpu", "vcpu %u: %s: rip=0x%llx rsp=0x%llx cs=0x%x cr0=0x%llx "
		 "cr3=0x%llx cr4=0x%llx efer=0x%llx", v->index, what,
		 (unsigned long long)r.rip, (unsigned long long)r.rsp, s.cs.selector,
		 (unsigned long long)s.cr0, (unsigned long long)s.cr3,
		 (unsigned long long)s.cr4, (unsigned long long)s.efer);
}

static void handle_io(struct vcpu *v)
{
	struct kvm_run *r = v->run;
	uint8_t *data = (uint8_t *)r + r->io.data_offset;
	for (uint32_t i = 0; i < r->io.count; i++, data += r->io.size) {
		if (r->io.direction == KVM_EXIT_IO_OUT)
			bus_write(v->env->pio, r->io.port, data, r->io.size);
		else
			bus_read(v->env->pio, r->io.port, data, r->io.size);
	}
}

static void handle_mmio(struct vcpu *v)
{
	struct kvm_run *r = v->run;
	unsigned len = r->mmio.len <= 8 ? r->mmio.len : 8;
	if (r->mmio.is_write)
		bus_write(v->env->mmio, r->mmio.phys_addr, r->mmio.data, len);
	else
		bus_read(v->env->mmio, r->mmio.phys_addr, r->mmio.data, len);
}

static void handle_system_event(struct vcpu *v)
{
	switch (v->run->system_event.type) {
	case KVM_SYSTEM_EVENT_SHUTDOWN:
		v->env->guest_exit(v->env->cookie, EXIT_GUEST_POWEROFF, "system event: shutdown");
		break;
	case KVM_SYSTEM_EVENT_RESET:
		v->env->guest_exit(v->env->cookie, VM_RESTART, "system event: reset");
		break;
	default:
		v->env->guest_exit(v->env->cookie, EXIT_GUEST_CRASH, "system event: crash");
	}
}

const char *vcpu_exit_name(enum vcpu_exit_kind k)
{
	static const char *const names[VCPU_EXIT_NR] = {
		"io", "mmio", "hlt", "shutdown", "system_event", "intr", "irq_window",
		"internal_error", "fail_entry", "other",
	};
	return k < VCPU_EXIT_NR ? names[k] : "?";
}

static enum vcpu_exit_kind exit_kind(uint32_t reason)
{
	switch (reason) {
	case KVM_EXIT_IO: return VCPU_EXIT_IO;
	case KVM_EXIT_MMIO: return VCPU_EXIT_MMIO;
	case KVM_EXIT_HLT: return VCPU_EXIT_HLT;
	case KVM_EXIT_SHUTDOWN: return VCPU_EXIT_SHUTDOWN;
	case KVM_EXIT_SYSTEM_EVENT: return VCPU_EXIT_SYSTEM_EVENT;
	case KVM_EXIT_INTR: return VCPU_EXIT_INTR;
	case KVM_EXIT_IRQ_WINDOW_OPEN: return VCPU_EXIT_IRQ_WINDOW;
	case KVM_EXIT_INTERNAL_ERROR: return VCPU_EXIT_INTERNAL_ERROR;
	case KVM_EXIT_FAIL_ENTRY: return VCPU_EXIT_FAIL_ENTRY;
	default: return VCPU_EXIT_OTHER;
	}
}

/* One more exit of its kind: only this thread writes the counter, so a
 * relaxed load and store (no read-modify-write, no lock) keep it exact,
 * and readers on other threads see whole values. */
static void count_exit(struct vcpu *v, uint32_t reason)
{
	uint64_t *c = &v->exit_count[exit_kind(reason)];
	__atomic_store_n(c, __atomic_load_n(c, __ATOMIC_RELAXED) + 1, __ATOMIC_RELAXED);
}

/* Returns false when the vCPU must stop running. */
static bool handle_exit(struct vcpu *v)
{
	struct kvm_run *r = v->run;
	v->exits++;
	if (v->env->metrics)
		count_exit(v, r->exit_reason);
	switch (r->exit_reason) {
	case KVM_EXIT_IO:
		handle_io(v);
		return true;
	case KVM_EXIT_MMIO:
		handle_mmio(v);
		return true;
	case KVM_EXIT_HLT:
	case KVM_EXIT_IRQ_WINDOW_OPEN:
	case KVM_EXIT_INTR:
		return true;
	case KVM_EXIT_SHUTDOWN:
		report_cpu_state(v, "triple fault (shutdown exit)");
		v->env->guest_exit(v->env->cookie, EXIT_GUEST_CRASH, "triple fault");
		return false;
	case KVM_EXIT_SYSTEM_EVENT:
		handle_system_event(v);
		return false;
	case KVM_EXIT_INTERNAL_ERROR:
		report_emulation_failure(v);
		v->env->guest_exit(v->env->cookie, EXIT_GUEST_CRASH, "KVM internal error");
		return false;
	case KVM_EXIT_FAIL_ENTRY:
		log_err(v->env->log, "vcpu", "vcpu %u: VM entry failed, hardware reason 0x%llx",
			v->index, (unsigned long long)r->fail_entry.hardware_entry_failure_reason);
		v->env->guest_exit(v->env->cookie, EXIT_GUEST_CRASH, "VM entry failure");
		return false;
	default:
		log_err(v->env->log, "vcpu", "vcpu %u: unhandled KVM exit reason %u",
			v->index, r->exit_reason);
		v->env->guest_exit(v->env->cookie, EXIT_GUEST_CRASH, "unhandled exit");
		return false;
	}
}

static int set_run_sigmask(struct vcpu *v)
{
	/* The kernel's sigset is 8 bytes; KVM wants exactly that length. A
	 * union gives the flexible sigset[] its room without a struct that
	 * has a variable-sized member before another (a GNU extension). */
	union {
		struct kvm_signal_mask hdr;
		uint8_t raw[sizeof(struct kvm_signal_mask) + 8];
	} m;
	sigset_t cur;
	pthread_sigmask(SIG_SETMASK, NULL, &cur);
	sigdelset(&cur, v->env->kick_signal);
	m.hdr.len = 8;
	memcpy(m.raw + offsetof(struct kvm_signal_mask, sigset), &cur, 8);
	return ioctl(v->fd, KVM_SET_SIGNAL_MASK, &m.hdr) < 0 ? -errno : 0;
}

static void pin(struct vcpu *v)
{
	if (v->host_cpu < 0)
		return;
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET((unsigned)v->host_cpu, &set);
	int rc = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	if (rc)
		log_warn(v->env->log, "vcpu", "cpu_affinity: vcpu %u on host CPU %d: %s",
			 v->index, v->host_cpu, strerror(rc));
}

/* A kick that interrupted KVM_RUN stays pending once KVM_RUN returns
 * (the thread blocks the signal outside it), and every later KVM_RUN would
 * return EINTR at once: take it off the queue. */
static void eat_kicks(const struct vcpu *v)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, v->env->kick_signal);
	struct timespec zero = { 0, 0 };
	while (sigtimedwait(&set, NULL, &zero) >= 0)
		;
}

/* A port or MMIO exit is complete only once KVM_RUN is entered again
 * (IN's data reaches the register); immediate_exit does that without
 * running the guest, so the state a snapshot reads is consistent. */
static void complete_pending_exit(struct vcpu *v)
{
	v->run->immediate_exit = 1;
	if (ioctl(v->fd, KVM_RUN, 0) < 0 && errno != EINTR)
		log_warn(v->env->log, "vcpu", "vcpu %u: completing an exit before parking: %s",
			 v->index, strerror(errno));
	v->run->immediate_exit = 0;
	eat_kicks(v);
}

static void park(struct vcpu *v)
{
	struct vcpu_env *env = v->env;
	complete_pending_exit(v);
	pthread_mutex_lock(&env->lock);
	env->parked++;
	pthread_cond_broadcast(&env->cond);
	while (atomic_load(&env->pause) && !atomic_load(&env->stop))
		pthread_cond_wait(&env->cond, &env->lock);
	env->parked--;
	pthread_mutex_unlock(&env->lock);
}

static void thread_exited(struct vcpu *v)
{
	pthread_mutex_lock(&v->env->lock);
	v->env->exited++;
	pthread_cond_broadcast(&v->env->cond);
	pthread_mutex_unlock(&v->env->lock);
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *v = arg;
	char name[16];
	snprintf(name, sizeof(name), "vcpu%u", v->index);
	pthread_setname_np(pthread_self(), name);
	pin(v);
	int rc = set_run_sigmask(v);
	if (rc < 0) {
		log_err(v->env->log, "vcpu", "vcpu %u: KVM_SET_SIGNAL_MASK: %s", v->index, strerror(-rc));
		v->env->guest_exit(v->env->cookie, EXIT_VMM_ERROR, "vcpu setup");
		thread_exited(v);
		return NULL;
	}
	if (v->env->thread_start && v->env->thread_start(v->env->cookie, v->index) < 0) {
		v->env->guest_exit(v->env->cookie, EXIT_VMM_ERROR, "vcpu thread set-up");
		thread_exited(v);
		return NULL;
	}
	while (!atomic_load(&v->env->stop)) {
		if (atomic_load(&v->env->pause)) {
			park(v);
			continue;
		}
		if (ioctl(v->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR) {
				eat_kicks(v);
				continue;
			}
			if (errno == EAGAIN)
				continue;
			int e = errno;
			log_err(v->env->log, "vcpu", "vcpu %u: KVM_RUN: %s", v->index, strerror(e));
			v->env->guest_exit(v->env->cookie, EXIT_VMM_ERROR, "KVM_RUN failed");
			break;
		}
		if (!handle_exit(v))
			break;
	}
	thread_exited(v);
	return NULL;
}

int vcpu_start(struct vcpu *v)
{
	/* The kick signal must be blocked in the thread from its first
	 * instruction, so create it with the signal blocked. The handler was
	 * installed by vcpu_kick_setup(). */
	sigset_t block, old;
	sigemptyset(&block);
	sigaddset(&block, v->env->kick_signal);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	int rc = pthread_create(&v->thread, NULL, vcpu_thread, v);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc) {
		log_err(v->env->log, "vcpu", "vcpu %u: creating its thread: %s", v->index, strerror(rc));
		return -rc;
	}
	v->started = true;
	return 0;
}

int vcpu_env_init(struct vcpu_env *env)
{
	atomic_init(&env->pause, false);
	env->parked = env->exited = 0;
	int rc = pthread_mutex_init(&env->lock, NULL);
	if (rc)
		return -rc;
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	rc = pthread_cond_init(&env->cond, &ca);
	pthread_condattr_destroy(&ca);
	if (rc) {
		pthread_mutex_destroy(&env->lock);
		return -rc;
	}
	return 0;
}

void vcpu_env_destroy(struct vcpu_env *env)
{
	pthread_cond_destroy(&env->cond);
	pthread_mutex_destroy(&env->lock);
}

int vcpu_env_pause(struct vcpu_env *env, struct vcpu *vcpus, unsigned n, unsigned timeout_ms)
{
	unsigned started = 0;
	atomic_store(&env->pause, true);
	for (unsigned i = 0; i < n; i++) {
		started += vcpus[i].started;
		vcpu_kick(&vcpus[i]);
	}
	struct timespec dl;
	clock_gettime(CLOCK_MONOTONIC, &dl);
	dl.tv_sec += timeout_ms / 1000;
	dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (dl.tv_nsec >= 1000000000) {
		dl.tv_sec++;
		dl.tv_nsec -= 1000000000;
	}
	int rc = 0;
	pthread_mutex_lock(&env->lock);
	while (env->parked + env->exited < started && rc == 0)
		rc = pthread_cond_timedwait(&env->cond, &env->lock, &dl);
	bool all = env->parked + env->exited >= started;
	pthread_mutex_unlock(&env->lock);
	if (!all) {
		vcpu_env_resume(env);
		return -ETIMEDOUT;
	}
	return 0;
}

void vcpu_env_resume(struct vcpu_env *env)
{
	pthread_mutex_lock(&env->lock);
	atomic_store(&env->pause, false);
	pthread_cond_broadcast(&env->cond);
	pthread_mutex_unlock(&env->lock);
}

void vcpu_kick(struct vcpu *v)
{
	if (v->started)
		pthread_kill(v->thread, v->env->kick_signal);
}

void vcpu_join(struct vcpu *v)
{
	if (v->started) {
		pthread_join(v->thread, NULL);
		v->started = false;
	}
}

void vcpu_destroy(struct vcpu *v)
{
	if (v->run)
		munmap(v->run, v->run_size);
	if (v->fd >= 0)
		close(v->fd);
	v->run = NULL;
	v->fd = -1;
}
