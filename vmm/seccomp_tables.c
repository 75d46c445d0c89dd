/* The allowlists: ONE table per thread kind, plus what every thread's
 * runtime needs. A feature that makes a new syscall on a thread adds one
 * row, with a comment saying who makes it and why, to that thread's table.
 * Everything not listed raises SIGSYS (vmm/seccomp.c). */
#include "vmm/seccomp.h"

#include <linux/kvm.h>
#include <linux/sockios.h>
#include <linux/if_tun.h>
#include <linux/vhost.h>
#include <seccomp.h>
#include <sys/socket.h>
#include <stddef.h>
#include <sys/ioctl.h> /* TCGETS, TCSETS* */

#define SYS(name)          { SCMP_SYS(name), SC_ANY, 0 }
#define SYS_NO_EXEC(name)  { SCMP_SYS(name), SC_NO_EXEC, 0 }
#define SYS_ARG0(name, v)  { SCMP_SYS(name), SC_ARG0, (unsigned long)(v) }
#define IOCTL(req)         { SCMP_SYS(ioctl), SC_IOCTL, (unsigned long)(req) }
#define TABLE(t)           { t, sizeof(t) / sizeof(t[0]) }

/* libc and the compiler's runtime, on every thread. */
static const struct seccomp_rule runtime_rules[] = {
	SYS(futex),                 /* mutexes, condition variables, pthread_join */
	SYS_NO_EXEC(mmap),          /* malloc; never executable memory */
	SYS_NO_EXEC(mprotect),      /* malloc growing a thread arena */
	SYS(munmap), SYS(mremap), SYS(brk),
	SYS(madvise),               /* malloc trimming, a thread's stack at exit */
	SYS(rt_sigprocmask), SYS(rt_sigreturn), SYS(restart_syscall),
	SYS(read), SYS(write),      /* eventfds; log lines (one write each); the console */
	SYS(close),
	SYS(clock_gettime), SYS(gettimeofday), /* the vDSO's fallbacks */
	SYS(sched_yield), SYS(getpid), SYS(gettid),
	SYS(getrandom),             /* glibc's malloc seeds its tcache */
	SYS(exit), SYS(exit_group), /* a thread's end; _exit in the SIGSYS handler */
#if defined(__SANITIZE_ADDRESS__)
	/* The ASan+UBSan build only (CI's sanitizer build), never a release
	 * build's filter. A thread's end frees ASan's alternate signal stack;
	 * a report (found by running one in a filtered vCPU thread) asks
	 * whether stderr is a terminal and reads /proc/self/maps and the
	 * binary's path to name the frames: without these rows a finding in a
	 * vCPU or the event thread would end at its first line. LeakSanitizer's
	 * stop-the-world at exit (clone, ptrace) needs no row: it runs on the
	 * caller's thread, which vm_run leaves unfiltered. So in this build a
	 * filtered thread may also open files. */
	SYS(sigaltstack), IOCTL(TCGETS), SYS(open), SYS(openat), SYS(newfstatat), SYS(readlink),
#endif
};

/* A vCPU thread (cpu/vcpu.c): KVM_RUN, and what the devices it reaches
 * directly do on a port or MMIO write (the UART, a virtio transport's
 * registers: a device's activation and reset run here). */
static const struct seccomp_rule vcpu_rules[] = {
	IOCTL(KVM_RUN),
	IOCTL(KVM_GET_REGS), IOCTL(KVM_GET_SREGS), /* a crash's register line */
	IOCTL(KVM_IRQ_LINE),        /* the UART's and the board's interrupts */
	IOCTL(KVM_IRQFD), IOCTL(KVM_IOEVENTFD), /* virtio: queues set up and torn down */
	IOCTL(KVM_SET_GSI_ROUTING), /* virtio-pci: MSI-X vectors programmed */
	IOCTL(KVM_SIGNAL_MSI),
	SYS(epoll_ctl),             /* a device's activation watches its fds */
	SYS(eventfd2),              /* ... and may make them */
	SYS(fcntl),                 /* fd flags of those */
	SYS(tgkill),                /* raise(), abort() */
	SYS(rt_sigaction),          /* abort() */
	/* virtio-net on activation and reset: offloads, vhost-net's rings */
	IOCTL(TUNSETOFFLOAD), IOCTL(TUNSETQUEUE), IOCTL(TUNSETVNETHDRSZ),
	IOCTL(VHOST_SET_FEATURES), IOCTL(VHOST_GET_FEATURES), IOCTL(VHOST_SET_MEM_TABLE),
	IOCTL(VHOST_SET_VRING_NUM), IOCTL(VHOST_SET_VRING_BASE), IOCTL(VHOST_GET_VRING_BASE),
	IOCTL(VHOST_SET_VRING_ADDR), IOCTL(VHOST_SET_VRING_KICK), IOCTL(VHOST_SET_VRING_CALL),
	IOCTL(VHOST_SET_VRING_ERR), IOCTL(VHOST_NET_SET_BACKEND),
	/* vsock (issue 18, the vsock helper): vhost-vsock started and stopped
	 * by the guest driver's status writes */
	IOCTL(VHOST_VSOCK_SET_GUEST_CID), IOCTL(VHOST_VSOCK_SET_RUNNING),
	/* pause and snapshot (issue 18, the snapshot helper): a vCPU may save
	 * its own state when asked to stop; these only read it */
	IOCTL(KVM_GET_XSAVE), IOCTL(KVM_GET_XCRS), IOCTL(KVM_GET_MSRS), IOCTL(KVM_GET_LAPIC),
	IOCTL(KVM_GET_VCPU_EVENTS), IOCTL(KVM_GET_DEBUGREGS), IOCTL(KVM_GET_MP_STATE),
	IOCTL(KVM_GET_CPUID2), IOCTL(KVM_GET_FPU),
	/* a device reset (the driver writes status 0) drains the disk's
	 * in-flight I/O here (virtio/blk.c blk_quiesce): submit, wait, reap,
	 * with io_uring or the sync engine */
	SYS(io_uring_enter), SYS(poll), SYS(ppoll),
	SYS(pwrite64), SYS(preadv), SYS(pwritev), SYS(preadv2), SYS(pwritev2),
	SYS(fdatasync), SYS(fsync), SYS(fallocate),
	/* the balloon's statistics timer, armed on activation, stopped on reset */
	SYS(timerfd_settime),
	/* metrics (issue 18, the metrics helper): a vCPU's KVM binary stats
	 * fd; also the sync engine's reads at a reset */
	SYS(pread64),
	/* a kick that arrived after KVM_RUN returned stays pending (blocked);
	 * cpu/vcpu.c consumes it with a zero-timeout sigtimedwait, or every
	 * later KVM_RUN would return EINTR at once */
	SYS(rt_sigtimedwait),
};

/* The event thread (lib/evloop.c, driven by vm_run): epoll, signals,
 * timeout=, the control socket, the virtqueues not handed to vhost, the
 * I/O engines, the console, the balloon; and vm_destroy's teardown, which
 * runs on it after vm_run. */
static const struct seccomp_rule event_rules[] = {
	SYS(epoll_wait), SYS(epoll_pwait), SYS(epoll_ctl),
	SYS(timerfd_settime), SYS(timerfd_gettime), /* timeout= */
	SYS(eventfd2), SYS(fcntl), SYS(poll), SYS(ppoll),
	SYS(tgkill),                /* kicking the vCPU threads out of KVM_RUN */
	SYS(rt_sigaction),          /* abort() */
	/* the control socket (lib/linesrv.c) */
	SYS(accept4), SYS(recvfrom), SYS(sendto), SYS(getsockopt), SYS(shutdown),
	SYS(unlink), SYS(unlinkat), /* its socket and lock file, at the end */
	/* the I/O engines: io_uring, and the sync engine */
	SYS(io_uring_enter), SYS(io_uring_register),
	SYS(pread64), SYS(pwrite64), SYS(preadv), SYS(pwritev), SYS(preadv2), SYS(pwritev2),
	SYS(fdatasync), SYS(fsync), SYS(fallocate), /* flush; discard, write zeroes */
	/* virtio-net's userspace backend and the tap's state */
	SYS(readv), SYS(writev), SYS(recvmsg), SYS(sendmsg),
	/* a tap deleted and made again is reopened (net/net.c tap_reattach):
	 * /dev/net/tun, and an AF_INET socket for its SIOCGIF* ioctls */
	SYS(openat), SYS_ARG0(socket, AF_INET), SYS_ARG0(socket, AF_NETLINK),
	IOCTL(TUNSETIFF), IOCTL(TUNGETIFF), IOCTL(TUNSETVNETHDRSZ), IOCTL(TUNSETOFFLOAD),
	IOCTL(TUNSETQUEUE), IOCTL(SIOCGIFFLAGS), IOCTL(SIOCGIFINDEX), IOCTL(SIOCGIFMTU),
	IOCTL(SIOCSIFMTU),
	/* stdio reading /proc/self/smaps (the memory command), snapshot files */
	SYS(fstat), SYS(newfstatat), SYS(lseek), SYS(getdents64),
	/* the balloon gives pages back; KSM and numa stats */
	SYS(sysinfo),
	/* virtio on the event thread (resample, queue set-up of injected
	 * queues) and vhost's teardown in vm_destroy */
	IOCTL(KVM_IRQ_LINE), IOCTL(KVM_IRQFD), IOCTL(KVM_IOEVENTFD), IOCTL(KVM_SET_GSI_ROUTING),
	IOCTL(KVM_SIGNAL_MSI), IOCTL(KVM_SET_USER_MEMORY_REGION),
	IOCTL(VHOST_SET_FEATURES), IOCTL(VHOST_SET_MEM_TABLE), IOCTL(VHOST_SET_VRING_NUM),
	IOCTL(VHOST_SET_VRING_BASE), IOCTL(VHOST_GET_VRING_BASE), IOCTL(VHOST_SET_VRING_ADDR),
	IOCTL(VHOST_SET_VRING_KICK), IOCTL(VHOST_SET_VRING_CALL), IOCTL(VHOST_SET_VRING_ERR),
	IOCTL(VHOST_NET_SET_BACKEND), IOCTL(VHOST_SET_OWNER), IOCTL(VHOST_GET_FEATURES),
	/* the console: the terminal put back at the end */
	IOCTL(TCGETS), IOCTL(TCSETS), IOCTL(TCSETSW), IOCTL(TCSETSF),
	/* pause and snapshot (issue 18, the snapshot helper): the state
	 * file written, the vCPUs' and VM's state read */
	SYS(mkdir), SYS(mkdirat), SYS(ftruncate), SYS(renameat), SYS(renameat2),
	IOCTL(KVM_GET_MSR_INDEX_LIST), IOCTL(KVM_CHECK_EXTENSION), /* on /dev/kvm's fd */
	IOCTL(KVM_GET_TSC_KHZ),
	IOCTL(KVM_GET_REGS), IOCTL(KVM_GET_SREGS), IOCTL(KVM_GET_XSAVE), IOCTL(KVM_GET_XCRS),
	IOCTL(KVM_GET_MSRS), IOCTL(KVM_GET_LAPIC), IOCTL(KVM_GET_VCPU_EVENTS),
	IOCTL(KVM_GET_DEBUGREGS), IOCTL(KVM_GET_MP_STATE), IOCTL(KVM_GET_CPUID2),
	IOCTL(KVM_GET_FPU), IOCTL(KVM_GET_IRQCHIP), IOCTL(KVM_GET_PIT2), IOCTL(KVM_GET_CLOCK),
	IOCTL(KVM_SET_CLOCK),
#ifdef KVM_GET_XSAVE2
	IOCTL(KVM_GET_XSAVE2),
#endif
	/* vsock (issue 18, the vsock helper): vhost-vsock, and the userspace
	 * backend's Unix sockets to the host's services */
	IOCTL(VHOST_VSOCK_SET_GUEST_CID), IOCTL(VHOST_VSOCK_SET_RUNNING),
	SYS_ARG0(socket, AF_UNIX), SYS(connect), SYS(getsockname), SYS(getpeername),
	/* metrics (issue 18, the metrics helper): KVM's binary stats fds are
	 * read with pread64 (above); the metrics file is written (write,
	 * above) and opened (openat, above) */
	IOCTL(KVM_GET_STATS_FD),
	/* the library (issue 18): vm_destroy joins the vCPU threads (futex)
	 * and frees everything (munmap, close): in the runtime table */
};

static const struct seccomp_table tables[SECCOMP_NR_KINDS] = {
	[SECCOMP_VCPU] = TABLE(vcpu_rules),
	[SECCOMP_EVENT] = TABLE(event_rules),
};

struct seccomp_table seccomp_allowlist(enum seccomp_kind kind)
{
	if ((unsigned)kind >= SECCOMP_NR_KINDS)
		return (struct seccomp_table){ NULL, 0 };
	return tables[kind];
}

struct seccomp_table seccomp_runtime(void)
{
	return (struct seccomp_table)TABLE(runtime_rules);
}
