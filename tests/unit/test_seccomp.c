/* The seccomp filters (vmm/seccomp.c), each installed in a forked child:
 * what a thread kind's table allows goes through, and a syscall outside
 * it ends the process with EXIT_VMM_ERROR and a line naming the thread
 * kind and the syscall. Skips (77) where the kernel has no seccomp. */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "child.h"
#include "lib/exitcode.h"
#include "unit.h"
#include "vmm/jail.h"
#include "vmm/seccomp.h"

static struct logger lg;

static int install(enum seccomp_kind kind, int fd)
{
	lg.fd = fd;
	if (jail_set_no_new_privs(&lg) < 0)
		return 90;
	return seccomp_install(kind, fd, &lg) < 0 ? 91 : 0;
}

/* What a vCPU thread does: KVM_RUN (on a non-KVM fd: ENOTTY, but allowed),
 * a console write, an eventfd-like read and write, malloc. */
static int vcpu_allowed(int fd, void *arg)
{
	int null = open("/dev/null", O_RDWR);
	int rc = install(SECCOMP_VCPU, fd);
	if (rc)
		return rc;
	if (ioctl(null, KVM_RUN, 0) != -1 || errno != ENOTTY)
		return 2;
	if (write(null, "x", 1) != 1)
		return 3;
	void *big = malloc(1 << 20); /* mmap'd by malloc */
	if (!big)
		return 4;
	free(big);
	void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED || munmap(p, 4096) < 0)
		return 5;
	return 0;
}

enum forbidden { F_OPENAT, F_IOCTL, F_EXEC_MMAP, F_PACKET_SOCKET, F_EXECVE, F_PTRACE_LIKE };

struct case_arg {
	enum seccomp_kind kind;
	enum forbidden what;
};

static int do_forbidden(int fd, void *argp)
{
	const struct case_arg *a = argp;
	int null = open("/dev/null", O_RDWR);
	int rc = install(a->kind, fd);
	if (rc)
		return rc;
	switch (a->what) {
	case F_OPENAT:
		(void)open("/etc/hostname", O_RDONLY);
		break;
	case F_IOCTL: /* a VM-creating request: no thread needs it once running */
		(void)ioctl(null, KVM_CREATE_VM, 0);
		break;
	case F_EXEC_MMAP:
		(void)mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		break;
	case F_PACKET_SOCKET:
		(void)socket(AF_PACKET, SOCK_RAW, 0);
		break;
	case F_EXECVE: {
		char *argv[] = { (char *)"/bin/true", NULL };
		execve("/bin/true", argv, NULL);
		break;
	}
	case F_PTRACE_LIKE:
		(void)syscall(SYS_process_vm_writev, 0, NULL, 0, NULL, 0, 0);
		break;
	}
	return 0; /* reached only if the filter let it through */
}

static void expect_killed(enum seccomp_kind kind, enum forbidden what, const char *name)
{
	struct case_arg a = { kind, what };
	struct child_result r;
	child_run(do_forbidden, &a, &r);
	CHECK(r.exited);
	CHECK_EQ(r.code, EXIT_VMM_ERROR);
	char want[128];
	snprintf(want, sizeof(want), "seccomp: the %s thread made a forbidden syscall: %s (",
		 seccomp_kind_name(kind), name);
	CHECK_HAS(r.out, want);
}

static void test_vcpu_allows_its_table(void)
{
	struct child_result r;
	child_run(vcpu_allowed, NULL, &r);
	CHECK(r.exited);
	CHECK_EQ(r.code, 0);
	CHECK_STREQ(r.out, "");
}

static void test_vcpu_forbidden(void)
{
#ifndef __SANITIZE_ADDRESS__ /* the sanitizer build lets a report open /proc/self/maps */
	expect_killed(SECCOMP_VCPU, F_OPENAT, "openat");
#endif
	expect_killed(SECCOMP_VCPU, F_IOCTL, "ioctl");
	expect_killed(SECCOMP_VCPU, F_PTRACE_LIKE, "process_vm_writev");
	expect_killed(SECCOMP_VCPU, F_EXEC_MMAP, "mmap");
	expect_killed(SECCOMP_VCPU, F_PACKET_SOCKET, "socket");
	expect_killed(SECCOMP_VCPU, F_EXECVE, "execve");
}

static void test_event_forbidden(void)
{
	expect_killed(SECCOMP_EVENT, F_IOCTL, "ioctl");
	expect_killed(SECCOMP_EVENT, F_EXEC_MMAP, "mmap");
	expect_killed(SECCOMP_EVENT, F_PACKET_SOCKET, "socket");
	expect_killed(SECCOMP_EVENT, F_EXECVE, "execve");
	expect_killed(SECCOMP_EVENT, F_PTRACE_LIKE, "process_vm_writev");
}

static void *vcpu_like_thread(void *arg)
{
	int fd = *(int *)arg;
	if (seccomp_install(SECCOMP_VCPU, fd, &lg) < 0)
		return (void *)1;
	char *p = malloc(100);
	free(p);
	return NULL; /* a filtered thread's end: its stack, its TLS */
}

static void *event_like_thread(void *arg)
{
	int fd = *(int *)arg;
	if (seccomp_install(SECCOMP_EVENT, fd, &lg) < 0)
		return (void *)1;
	int null = open("/dev/null", O_RDONLY); /* the event thread may open */
	if (null < 0)
		return (void *)2;
	close(null);
	return NULL;
}

/* The process's life under the filters, as kvmrun runs: a vCPU-like and
 * an event-like thread, each filtered from its start, end (their stacks,
 * their TLS: ASan's too in the sanitizer build); then the unfiltered
 * caller's exit() (LeakSanitizer in the sanitizer build). */
static int lifecycle(int fd, void *arg)
{
	lg.fd = fd;
	if (jail_set_no_new_privs(&lg) < 0)
		return 90;
	pthread_t t;
	void *ret = (void *)2;
	if (pthread_create(&t, NULL, vcpu_like_thread, &fd) || pthread_join(t, &ret) || ret)
		return 3;
	if (pthread_create(&t, NULL, event_like_thread, &fd) || pthread_join(t, &ret) || ret)
		return 4;
	exit(0);
}

static void test_lifecycle(void)
{
	struct child_result r;
	child_run(lifecycle, NULL, &r);
	CHECK(r.exited);
	CHECK_EQ(r.code, 0);
	CHECK_STREQ(r.out, "");
}

static int read_status(int fd, void *arg)
{
	int rc = install(SECCOMP_EVENT, fd);
	if (rc)
		return rc;
	/* the event thread may read its /proc entries (the memory command) */
	FILE *f = fopen("/proc/thread-self/status", "re");
	char line[256];
	while (f && fgets(line, sizeof(line), f))
		if (strncmp(line, "Seccomp:", 8) == 0 && write(fd, line, strlen(line)) < 0)
			return 7;
	return f ? 0 : 6;
}

/* What the integration test reads of every kvmrun thread, /proc/PID/task/TID/status */
static void test_mode_is_filter(void)
{
	struct child_result r;
	child_run(read_status, NULL, &r);
	CHECK(r.exited);
	CHECK_EQ(r.code, 0);
	CHECK_HAS(r.out, "Seccomp:\t2");
}

static void test_tables_are_distinct(void)
{
	struct seccomp_table v = seccomp_allowlist(SECCOMP_VCPU);
	struct seccomp_table e = seccomp_allowlist(SECCOMP_EVENT);
	CHECK(v.nr > 10);
	CHECK(e.nr > v.nr);
	CHECK(seccomp_allowlist(SECCOMP_NR_KINDS).nr == 0);
	CHECK_STREQ(seccomp_kind_name(SECCOMP_VCPU), "vcpu");
	CHECK_STREQ(seccomp_kind_name(SECCOMP_EVENT), "event");
}

int main(void)
{
	log_init(&lg, LOG_WARN, "test");
	if (!seccomp_available()) {
		printf("SKIP: this kernel has no seccomp filters\n");
		return 77;
	}
	RUN(test_tables_are_distinct);
	RUN(test_vcpu_allows_its_table);
	RUN(test_vcpu_forbidden);
	RUN(test_event_forbidden);
	RUN(test_lifecycle);
	RUN(test_mode_is_filter);
	return unit_done();
}
