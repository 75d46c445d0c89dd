/* The installed library's contract, from a program that knows nothing but
 * <kvmrun.h> and `pkg-config kvmrun` (built by tests/install/check.sh
 * against a temporary install):
 *   - 8 VMs started at once from one thread, each exits 0 having run its
 *     own config (its serial file shows its own command line);
 *   - the control commands run in-process (status, memory, balloon, stop,
 *     help), also from 4 threads at once, and a command the VMM lacks
 *     answers its error;
 *   - a program that owns SIGUSR1 keeps it: the library refuses it as the
 *     kick signal and kicks with its own; the caller's signal mask is
 *     unchanged;
 *   - nothing is written to stderr; logs go to the callback or fd asked;
 *   - config errors come back in the caller's buffer, naming the key;
 *   - a start that fails leaves nothing running and says why;
 *   - nothing leaks: the fds in /proc/self/fd and the threads in
 *     /proc/self/task are back to what they were.
 *
 *	many_vms [--no-guest] HELLO_ELF BALLOON_ELF
 *
 * --no-guest: only what needs no KVM (config errors, the kick signal, a
 * failed start, leaks, stderr), for the unit suite on any host. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <kvmrun.h>

#define NR_VMS 8
#define CMD_THREADS 4
#define CMDS_PER_THREAD 50

static unsigned passed, failed;
static char dir[256];

static void check(int ok, const char *what, const char *detail)
{
	printf("%s %s%s%s\n", ok ? "ok  " : "FAIL", what, detail && *detail ? ": " : "",
	       detail ? detail : "");
	ok ? passed++ : failed++;
}

static unsigned count_entries(const char *path)
{
	unsigned n = 0;
	DIR *d = opendir(path);
	if (!d)
		return 0;
	for (struct dirent *e; (e = readdir(d));)
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

static char *slurp(const char *path)
{
	static char buf[65536];
	buf[0] = '\0';
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return buf;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	buf[n > 0 ? n : 0] = '\0';
	close(fd);
	return buf;
}

static atomic_uint log_lines;

static void on_log(void *cookie, int level, const char *line)
{
	(void)cookie;
	if (level <= KVMRUN_LOG_INFO && strncmp(line, "kvmrun[lib-0]: ", 15) == 0)
		atomic_fetch_add(&log_lines, 1);
}

static void on_usr1(int sig)
{
	(void)sig;
}

static kvmrun_vm *new_vm(const char *const *keys)
{
	char err[2048];
	kvmrun_vm *vm = NULL;
	int rc = kvmrun_vm_new(NULL, keys, &vm, err, sizeof(err));
	if (rc < 0)
		printf("     kvmrun_vm_new: %s\n%s", strerror(-rc), err);
	return vm;
}

static void test_config_error(const char *hello)
{
	char kernel[512], err[2048];
	snprintf(kernel, sizeof(kernel), "kernel=%s", hello);
	const char *keys[] = { kernel, "memm=64M", NULL };
	kvmrun_vm *vm = (kvmrun_vm *)1;
	int rc = kvmrun_vm_new(NULL, keys, &vm, err, sizeof(err));
	check(rc == -EINVAL && vm == NULL && strstr(err, "memm") && strstr(err, "mem"),
	      "a misspelt key: -EINVAL, the message names it", err);
}

/* 8 VMs at once, started from this one thread. */
static void test_eight_at_once(const char *hello)
{
	kvmrun_vm *vms[NR_VMS] = { 0 };
	char logpath[300];
	snprintf(logpath, sizeof(logpath), "%s/lib-1.log", dir);
	int logfd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	unsigned started = 0;
	for (unsigned i = 0; i < NR_VMS; i++) {
		char kernel[512], name[32], serial[320], cmdline[32], cpus[16];
		snprintf(kernel, sizeof(kernel), "kernel=%s", hello);
		snprintf(name, sizeof(name), "name=lib-%u", i);
		snprintf(serial, sizeof(serial), "serial=file:%s/lib-%u.serial", dir, i);
		snprintf(cmdline, sizeof(cmdline), "cmdline=vm=%u", i);
		snprintf(cpus, sizeof(cpus), "cpus=%u", 1 + i % 2);
		const char *keys[] = { kernel, name, serial, cmdline, cpus, "mem=32M", "timeout=120",
				       i < 2 ? "log_level=info" : "log_level=warn", NULL };
		vms[i] = new_vm(keys);
		if (!vms[i])
			continue;
		if (i == 0)
			(void)kvmrun_vm_set_log(vms[i], on_log, NULL);
		if (i == 1)
			(void)kvmrun_vm_set_log_fd(vms[i], logfd);
		int rc = kvmrun_vm_start(vms[i]);
		if (rc < 0) {
			char e[1024];
			printf("     VM %u: kvmrun_vm_start: %s: %s\n", i, strerror(-rc),
			       kvmrun_vm_last_error(vms[i], e, sizeof(e)));
		}
		started += rc == 0;
	}
	char detail[64];
	snprintf(detail, sizeof(detail), "%u of %d", started, NR_VMS);
	check(started == NR_VMS, "8 VMs started, from one thread", detail);
	unsigned ok = 0;
	for (unsigned i = 0; i < NR_VMS; i++) {
		int code = vms[i] ? kvmrun_vm_wait(vms[i], 120000) : -1;
		char serial[320], want[32];
		snprintf(serial, sizeof(serial), "%s/lib-%u.serial", dir, i);
		snprintf(want, sizeof(want), "cmdline: vm=%u", i);
		const char *out = slurp(serial), *line = strstr(out, want);
		/* its own line, whatever the line end ("\r\n" from the UART) */
		int good = code == 0 && strstr(out, "Hello from the kvmrun test guest") && line &&
			   (line[strlen(want)] == '\r' || line[strlen(want)] == '\n');
		if (!good)
			printf("     VM %u: exit code %d, serial:\n%s\n", i, code, out);
		ok += good;
		kvmrun_vm_free(vms[i]);
	}
	snprintf(detail, sizeof(detail), "%u of %d", ok, NR_VMS);
	check(ok == NR_VMS, "each exited 0 after its guest printed its own cmdline", detail);
	close(logfd);
	snprintf(detail, sizeof(detail), "%u lines", atomic_load(&log_lines));
	check(atomic_load(&log_lines) > 0, "VM 0's log lines reached its callback", detail);
	check(strstr(slurp(logpath), "kvmrun[lib-1]: info: ") != NULL,
	      "VM 1's log lines reached its fd", NULL);
}

struct storm {
	kvmrun_vm *vm;
	unsigned ok;
};

static void *command_storm(void *arg)
{
	struct storm *s = arg;
	char resp[KVMRUN_RESPONSE_MAX];
	for (unsigned i = 0; i < CMDS_PER_THREAD; i++)
		s->ok += kvmrun_vm_command(s->vm, i % 2 ? "status" : "memory", resp, sizeof(resp)) == 0 &&
			 strncmp(resp, i % 2 ? "ok state=running" : "ok ram=64M", 10) == 0;
	return NULL;
}

static int has_field(const char *resp, const char *field)
{
	const char *p = strstr(resp, field);
	size_t n = strlen(field);
	return p && (p == resp || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0');
}

/* Commands on a running VM: the balloon guest runs until told otherwise. */
static void test_commands(const char *balloon)
{
	char kernel[512], resp[KVMRUN_RESPONSE_MAX];
	snprintf(kernel, sizeof(kernel), "kernel=%s", balloon);
	const char *keys[] = { kernel, "name=lib-cmd", "mem=64M", "balloon=on", "timeout=300",
			       "cmdline=balloon.seconds=300", NULL };
	kvmrun_vm *vm = new_vm(keys);
	if (!vm || kvmrun_vm_start(vm) < 0) {
		check(0, "the balloon VM started", NULL);
		kvmrun_vm_free(vm);
		return;
	}
	check(kvmrun_vm_set_log_fd(vm, 2) == -EBUSY, "no log change once started", NULL);
	check(kvmrun_vm_wait(vm, 50) == -ETIMEDOUT, "wait with a timeout: -ETIMEDOUT while it runs",
	      NULL);
	int rc = kvmrun_vm_status(vm, resp, sizeof(resp));
	check(rc == 0 && strncmp(resp, "ok state=running name=lib-cmd cpus=1 mem=64M", 44) == 0 &&
	      has_field(resp, "balloon=on"), "status", resp);
	rc = kvmrun_vm_command(vm, "memory", resp, sizeof(resp));
	check(rc == 0 && strncmp(resp, "ok ram=64M", 10) == 0, "memory", resp);
	rc = kvmrun_vm_command(vm, "bogus", resp, sizeof(resp));
	check(rc == -EINVAL && strncmp(resp, "error ", 6) == 0, "an unknown command: its error",
	      resp);
	rc = kvmrun_vm_set_balloon(vm, 16ull << 20, resp, sizeof(resp));
	check(rc == 0 && has_field(resp, "target=16M"), "balloon target 16M", resp);
	/* the guest inflates in its own time */
	int settled = 0;
	for (unsigned i = 0; i < 600 && !settled; i++) {
		settled = kvmrun_vm_status(vm, resp, sizeof(resp)) == 0 &&
			  has_field(resp, "balloon_actual=16M");
		if (!settled)
			usleep(50000);
	}
	check(settled, "the guest gave back 16M (status balloon_actual=16M)", resp);
	rc = kvmrun_vm_set_balloon(vm, 1ull << 40, resp, sizeof(resp));
	check(rc == -EINVAL && strstr(resp, "more than guest RAM"), "balloon beyond RAM refused",
	      resp);

	/* pause, resume and metrics are the VMM's commands: where its help
	 * lists them they answer ok, else their "unknown command" error */
	char help[KVMRUN_RESPONSE_MAX];
	(void)kvmrun_vm_command(vm, "help", help, sizeof(help));
	static const struct {
		const char *name;
		int (*fn)(kvmrun_vm *, char *, size_t);
	} typed[] = { { "pause", kvmrun_vm_pause }, { "resume", kvmrun_vm_resume },
		      { "metrics", kvmrun_vm_metrics } };
	for (unsigned i = 0; i < 3; i++) {
		char what[64];
		int listed = strstr(help, typed[i].name) != NULL;
		rc = typed[i].fn(vm, resp, sizeof(resp));
		snprintf(what, sizeof(what), "kvmrun_vm_%s: %s", typed[i].name,
			 listed ? "ok (help lists it)" : "the VMM's error (help lacks it)");
		check(listed ? rc == 0 : rc == -EINVAL && strstr(resp, "unknown command"), what, resp);
	}

	struct storm s[CMD_THREADS];
	pthread_t t[CMD_THREADS];
	for (unsigned i = 0; i < CMD_THREADS; i++) {
		s[i] = (struct storm){ .vm = vm };
		pthread_create(&t[i], NULL, command_storm, &s[i]);
	}
	unsigned ok = 0;
	for (unsigned i = 0; i < CMD_THREADS; i++) {
		pthread_join(t[i], NULL);
		ok += s[i].ok;
	}
	char detail[64];
	snprintf(detail, sizeof(detail), "%u of %d answered", ok, CMD_THREADS * CMDS_PER_THREAD);
	check(ok == CMD_THREADS * CMDS_PER_THREAD, "commands from 4 threads at once", detail);

	check(kvmrun_vm_stop(vm) == 0, "stop", NULL);
	rc = kvmrun_vm_wait(vm, 60000);
	snprintf(detail, sizeof(detail), "exit code %d", rc);
	check(rc == 0, "the stopped VM exits 0", detail);
	check(kvmrun_vm_wait(vm, 0) == 0, "wait again: the same exit code", NULL);
	check(kvmrun_vm_status(vm, resp, sizeof(resp)) == -ESRCH && kvmrun_vm_stop(vm) == -ESRCH,
	      "an ended VM: -ESRCH", resp);
	kvmrun_vm_free(vm);
}

/* The program owns SIGUSR1: the library must not take it. */
static void test_kick_signal(const char *hello)
{
	char kernel[512], err[1024];
	snprintf(kernel, sizeof(kernel), "kernel=%s", hello);
	const char *keys[] = { kernel, "name=lib-sig", "mem=32M", "timeout=60", NULL };
	kvmrun_vm *vm = new_vm(keys);
	if (!vm)
		return;
	check(kvmrun_vm_set_kick_signal(vm, SIGKILL) == -EINVAL, "SIGKILL is no kick signal", NULL);
	check(kvmrun_vm_set_kick_signal(vm, SIGUSR1) == 0, "SIGUSR1 chosen", NULL);
	int rc = kvmrun_vm_start(vm);
	kvmrun_vm_last_error(vm, err, sizeof(err));
	check(rc == -EBUSY && strstr(err, "kick signal"),
	      "the program's SIGUSR1 is refused as the kick signal", err);
	check(kvmrun_vm_wait(vm, 0) == 1 && kvmrun_vm_stop(vm) == -ESRCH,
	      "after a failed start: exit code 1, nothing to stop", NULL);
	kvmrun_vm_free(vm);
}

/* A kernel that is gone by the time the VM starts (on a host without
 * KVM, /dev/kvm fails first): the start fails and says why. */
static void test_failed_start(const char *hello)
{
	char copy[300], kernel[320], err[1024];
	snprintf(copy, sizeof(copy), "%s/gone.elf", dir);
	int in = open(hello, O_RDONLY | O_CLOEXEC);
	int out = open(copy, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	char buf[65536];
	for (ssize_t n; in >= 0 && out >= 0 && (n = read(in, buf, sizeof(buf))) > 0;)
		if (write(out, buf, (size_t)n) != n)
			break;
	close(in);
	close(out);
	snprintf(kernel, sizeof(kernel), "kernel=%s", copy);
	const char *keys[] = { kernel, "name=lib-gone", "mem=32M", NULL };
	kvmrun_vm *vm = new_vm(keys);
	if (!vm)
		return;
	unlink(copy);
	int rc = kvmrun_vm_start(vm);
	kvmrun_vm_last_error(vm, err, sizeof(err));
	check(rc < 0 && (strstr(err, "gone.elf") || strstr(err, "/dev/kvm")),
	      "a start that fails: -errno, and the error says why", err);
	check(kvmrun_vm_wait(vm, 0) == 1 && kvmrun_vm_start(vm) == -EALREADY,
	      "then exit code 1, and no second start", NULL);
	kvmrun_vm_free(vm);
}

int main(int argc, char **argv)
{
	bool guests = !(argc == 4 && strcmp(argv[1], "--no-guest") == 0);
	if (argc != 3 + !guests) {
		fprintf(stderr, "usage: %s [--no-guest] HELLO_ELF BALLOON_ELF\n", argv[0]);
		return 2;
	}
	argv += !guests;
	if (guests && access("/dev/kvm", R_OK | W_OK) != 0) {
		printf("SKIP: /dev/kvm is not usable here\n");
		return 77;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("libkvmrun %s\n", kvmrun_version());
	const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	snprintf(dir, sizeof(dir), "%s/kvmrun-lib-XXXXXX", tmp);
	if (!mkdtemp(dir)) {
		printf("FAIL mkdtemp %s: %s\n", dir, strerror(errno));
		return 1;
	}
	/* stderr into a file: the library must write nothing there */
	char errpath[300];
	snprintf(errpath, sizeof(errpath), "%s/stderr", dir);
	int errfd = open(errpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int saved_stderr = dup(2);
	dup2(errfd, 2);
	close(errfd);

	struct sigaction usr1 = { .sa_handler = on_usr1 }, now;
	sigemptyset(&usr1.sa_mask);
	sigaction(SIGUSR1, &usr1, NULL);
	sigset_t mask0, mask1;
	pthread_sigmask(SIG_SETMASK, NULL, &mask0);
	unsigned fds0 = count_entries("/proc/self/fd"), threads0 = count_entries("/proc/self/task");

	test_config_error(argv[1]);
	test_kick_signal(argv[1]);
	test_failed_start(argv[1]);
	if (guests) {
		test_eight_at_once(argv[1]);
		test_commands(argv[2]);
	}

	unsigned fds1 = count_entries("/proc/self/fd"), threads1 = count_entries("/proc/self/task");
	char detail[128];
	snprintf(detail, sizeof(detail), "fds %u before, %u after; threads %u before, %u after",
		 fds0, fds1, threads0, threads1);
	check(fds0 == fds1 && threads0 == threads1, "nothing leaked", detail);
	sigaction(SIGUSR1, NULL, &now);
	pthread_sigmask(SIG_SETMASK, NULL, &mask1);
	check(now.sa_handler == on_usr1, "SIGUSR1 is still the program's", NULL);
	/* signal by signal: past the kernel's 64 bits a sigset_t is filler */
	int same = 1;
	for (int sig = 1; sig <= SIGRTMAX; sig++)
		same &= sigismember(&mask0, sig) == sigismember(&mask1, sig);
	check(same, "the caller's signal mask unchanged", NULL);

	dup2(saved_stderr, 2);
	close(saved_stderr);
	struct stat st;
	const char *errout = slurp(errpath);
	check(stat(errpath, &st) == 0 && st.st_size == 0, "nothing written to stderr", errout);
	printf("%u passed, %u failed\n", passed, failed);
	return failed ? 1 : 0;
}
