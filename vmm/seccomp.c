/* Building and installing a thread's filter, and the SIGSYS line. */
#include "vmm/seccomp.h"

#include <errno.h>
#include <seccomp.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "lib/exitcode.h"
#include "vmm/seccomp_names.h" /* generated: seccomp_names[nr] (meson) */

/* Which kind the calling thread is and where its log goes, for the SIGSYS
 * handler, which has nothing else to go by. Per thread, set once before
 * the thread's filter is loaded; not state shared between VMs. */
struct seccomp_self {
	const char *kind;
	int fd_plus_1; /* 0: not set, use stderr */
};
static __thread struct seccomp_self seccomp_self;

static const char *const kind_names[SECCOMP_NR_KINDS] = {
	[SECCOMP_VCPU] = "vcpu", [SECCOMP_EVENT] = "event",
};

const char *seccomp_kind_name(enum seccomp_kind kind)
{
	return (unsigned)kind < SECCOMP_NR_KINDS ? kind_names[kind] : "?";
}

static void put(char *buf, size_t *n, size_t cap, const char *s)
{
	while (*s && *n + 1 < cap)
		buf[(*n)++] = *s++;
}

static void put_num(char *buf, size_t *n, size_t cap, long v)
{
	char digits[24];
	int i = 0;
	unsigned long u = v < 0 ? 0ul - (unsigned long)v : (unsigned long)v;
	do {
		digits[i++] = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (v < 0)
		digits[i++] = '-';
	while (i > 0 && *n + 1 < cap)
		buf[(*n)++] = digits[--i];
}

/* Async-signal-safe: fixed buffers, write(2) and _exit(2) only, both in
 * every allowlist. */
static void on_sigsys(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	char line[256];
	size_t n = 0;
	int nr = si->si_syscall;
	const char *name = nr >= 0 && (size_t)nr < sizeof(seccomp_names) / sizeof(seccomp_names[0]) &&
			   seccomp_names[nr] ? seccomp_names[nr] : "?";
	put(line, &n, sizeof(line), "kvmrun: seccomp: the ");
	put(line, &n, sizeof(line), seccomp_self.kind ? seccomp_self.kind : "unknown");
	put(line, &n, sizeof(line), " thread made a forbidden syscall: ");
	put(line, &n, sizeof(line), name);
	put(line, &n, sizeof(line), " (");
	put_num(line, &n, sizeof(line), nr);
	put(line, &n, sizeof(line), "); ending the process (seccomp=off turns the filters off)\n");
	int fd = seccomp_self.fd_plus_1 ? seccomp_self.fd_plus_1 - 1 : STDERR_FILENO;
	ssize_t r = write(fd, line, n);
	(void)r;
	_exit(EXIT_VMM_ERROR);
}

bool seccomp_available(void)
{
	/* EINVAL without CONFIG_SECCOMP; the filter mode is then missing too */
	return prctl(PR_GET_SECCOMP, 0, 0, 0, 0) >= 0 && seccomp_api_get() >= 1;
}

/* Spelled out, not SCMP_An(): clang's -Wmissing-field-initializers rejects
 * the macros' three-field compound literal when datum_b is left out. */
static struct scmp_arg_cmp arg_cmp(unsigned arg, enum scmp_compare op, scmp_datum_t a,
				   scmp_datum_t b)
{
	return (struct scmp_arg_cmp){ .arg = arg, .op = op, .datum_a = a, .datum_b = b };
}

static int add_rule(scmp_filter_ctx ctx, const struct seccomp_rule *r)
{
	switch (r->check) {
	case SC_IOCTL: /* the kernel's cmd is an unsigned int: compare 32 bits */
		return seccomp_rule_add(ctx, SCMP_ACT_ALLOW, r->nr, 1,
					arg_cmp(1, SCMP_CMP_MASKED_EQ, 0xffffffffu, r->val));
	case SC_NO_EXEC:
		return seccomp_rule_add(ctx, SCMP_ACT_ALLOW, r->nr, 1,
					arg_cmp(2, SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	case SC_ARG0:
		return seccomp_rule_add(ctx, SCMP_ACT_ALLOW, r->nr, 1,
					arg_cmp(0, SCMP_CMP_EQ, r->val, 0));
	case SC_ANY:
	default:
		return seccomp_rule_add(ctx, SCMP_ACT_ALLOW, r->nr, 0);
	}
}

static int add_table(scmp_filter_ctx ctx, struct seccomp_table t, enum seccomp_kind kind,
		     const struct logger *lg)
{
	for (unsigned i = 0; i < t.nr; i++) {
		int rc = add_rule(ctx, &t.rules[i]);
		if (rc < 0) {
			int nr = t.rules[i].nr;
			log_err(lg, "seccomp", "%s filter: adding syscall %s (%d), value 0x%lx: %s",
				seccomp_kind_name(kind),
				nr >= 0 && (size_t)nr < sizeof(seccomp_names) / sizeof(seccomp_names[0]) &&
				seccomp_names[nr] ? seccomp_names[nr] : "?", nr, t.rules[i].val,
				strerror(-rc));
			return rc;
		}
	}
	return 0;
}

static int arm_sigsys(enum seccomp_kind kind, const struct logger *lg)
{
	struct sigaction sa = { .sa_sigaction = on_sigsys, .sa_flags = SA_SIGINFO };
	sigemptyset(&sa.sa_mask);
	sigset_t sys;
	sigemptyset(&sys);
	sigaddset(&sys, SIGSYS);
	if (sigaction(SIGSYS, &sa, NULL) < 0 || pthread_sigmask(SIG_UNBLOCK, &sys, NULL) != 0) {
		int e = errno;
		log_err(lg, "seccomp", "%s filter: installing the SIGSYS handler: %s",
			seccomp_kind_name(kind), strerror(e));
		return -e;
	}
	return 0;
}

int seccomp_install(enum seccomp_kind kind, int log_fd, const struct logger *lg)
{
	if ((unsigned)kind >= SECCOMP_NR_KINDS)
		return -EINVAL;
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_TRAP);
	if (!ctx) {
		log_err(lg, "seccomp", "%s filter: seccomp_init failed", seccomp_kind_name(kind));
		return -ENOMEM;
	}
	/* a binary tree over syscall numbers rather than a linear list: the
	 * vCPU's KVM_RUN and write(2) run through the filter on every exit */
	int rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
	if (rc < 0)
		log_debug(lg, "seccomp", "binary-tree filter unavailable: %s", strerror(-rc));
	rc = add_table(ctx, seccomp_runtime(), kind, lg);
	if (rc == 0)
		rc = add_table(ctx, seccomp_allowlist(kind), kind, lg);
	if (rc == 0)
		rc = arm_sigsys(kind, lg);
	if (rc == 0) {
		seccomp_self.kind = seccomp_kind_name(kind);
		seccomp_self.fd_plus_1 = log_fd + 1;
		rc = seccomp_load(ctx);
		if (rc < 0)
			log_err(lg, "seccomp", "%s filter: loading it: %s", seccomp_kind_name(kind),
				strerror(-rc));
	}
	seccomp_release(ctx);
	return rc;
}
