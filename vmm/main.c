/* kvmrun: the command line. Parses the config, then runs the VM through
 * the same library API a CI farm would use (vmm/vm.h). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "block/overlay.h"
#include "vmm/config.h"
#include "vmm/control.h"
#include "lib/exitcode.h"
#include "vmm/vm.h"

#ifndef KVMRUN_VERSION
#define KVMRUN_VERSION "0.1.0"
#endif

static const char usage_text[] =
	"usage: kvmrun [--print-config | --check] [CONFIG_FILE] [KEY=VALUE ...]\n"
	"       kvmrun [--print-config | --check] restore=SNAPSHOT_DIR [KEY=VALUE ...]\n"
	"       kvmrun ctl SOCKET COMMAND [ARGS ...]\n"
	"       kvmrun overlay-merge OVERLAY TARGET\n"
	"       kvmrun --help | --version\n"
	"\n"
	"Boots a VM from a flat key=value config file; KEY=VALUE arguments\n"
	"override the file's keys (or stand alone: kvmrun kernel=guest.elf).\n"
	"\n"
	"  --print-config  print the effective configuration and exit\n"
	"  --check         validate the configuration and exit\n"
	"  --help          this text\n"
	"  --version       the version\n"
	"\n"
	"Exit codes: 0 guest powered off (or rebooted with on_reboot=exit),\n"
	"1 VMM error, 2 usage, 3 guest crashed or panicked, 124 timeout expired,\n"
	"128+N killed by signal N; with debug_exit=on, the guest's value*2+1.\n"
	"Keys and examples: see README.md and configs/.\n";

enum mode { MODE_RUN, MODE_PRINT, MODE_CHECK };

/* The value of a restore=DIR argument, or NULL. */
static const char *restore_arg(int argc, char **argv)
{
	const char *dir = NULL;
	bool options_done = false;
	for (int i = 1; i < argc; i++) {
		if (!options_done && strcmp(argv[i], "--") == 0)
			options_done = true;
		else if ((options_done || argv[i][0] != '-') && strncmp(argv[i], "restore=", 8) == 0)
			dir = argv[i] + 8;
	}
	return dir && *dir ? dir : NULL;
}

static int parse_args(int argc, char **argv, struct vm_config *cfg, enum mode *mode)
{
	struct config_diag diag = { .out = stderr };
	const char *file = NULL;
	bool options_done = false;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!options_done && strcmp(a, "--") == 0) {
			options_done = true;
		} else if (!options_done && strcmp(a, "--print-config") == 0) {
			*mode = MODE_PRINT;
		} else if (!options_done && strcmp(a, "--check") == 0) {
			*mode = MODE_CHECK;
		} else if (!options_done && a[0] == '-' && a[1]) {
			fprintf(stderr, "kvmrun: unknown option '%s'\n%s", a, usage_text);
			return EXIT_USAGE;
		} else if (strchr(a, '=') == NULL) {
			if (file) {
				fprintf(stderr, "kvmrun: two config files given ('%s' and '%s'); "
					"overrides are KEY=VALUE\n", file, a);
				return EXIT_USAGE;
			}
			file = a;
		}
	}
	const char *restore = restore_arg(argc, argv);
	if (restore && file) {
		fprintf(stderr, "kvmrun: restore= takes the configuration from the snapshot; "
			"give no config file ('%s'), only KEY=VALUE overrides\n", file);
		return EXIT_USAGE;
	}
	if (restore)
		(void)config_restore_load(cfg, restore, &diag);
	else if (file)
		(void)config_load_file(cfg, file, &diag);
	unsigned pos = 0;
	options_done = false;
	for (int i = 1; i < argc; i++) {
		if (!options_done && strcmp(argv[i], "--") == 0) {
			options_done = true;
			continue;
		}
		if (strchr(argv[i], '=') && (options_done || argv[i][0] != '-'))
			(void)config_apply_arg(cfg, argv[i], ++pos, &diag);
	}
	if (!file && pos == 0) {
		fputs(usage_text, stderr);
		return EXIT_USAGE;
	}
	if (diag.errors == 0 && restore)
		(void)config_restore_check(cfg, &diag);
	if (!restore && cfg->restore) {
		fprintf(stderr, "kvmrun: restore= is a command-line key: the snapshot brings its "
			"own configuration (kvmrun restore=DIR [KEY=VALUE ...])\n");
		diag.errors++;
	}
	if (diag.errors == 0)
		(void)config_validate(cfg, &diag);
	if (diag.errors == 0 && *mode != MODE_PRINT) {
		/* what the files and the host say, before anything starts */
		struct config_host host;
		int rc = config_host_probe(&host);
		if (rc < 0) {
			fprintf(stderr, "kvmrun: sysinfo: %s\n", strerror(-rc));
			return EXIT_VMM_ERROR;
		}
		(void)config_check_host(cfg, &host, &diag);
	}
	if (diag.errors) {
		fprintf(stderr, "kvmrun: %u error%s in the configuration; nothing was started\n",
			diag.errors, diag.errors == 1 ? "" : "s");
		return EXIT_VMM_ERROR;
	}
	return 0;
}

static void on_signal(struct vm *vm, int fd, void *cookie)
{
	struct signalfd_siginfo si;
	if (read(fd, &si, sizeof(si)) != sizeof(si))
		return;
	vm_request_exit(vm, EXIT_SIGNAL_BASE + (int)si.ssi_signo, strsignal((int)si.ssi_signo));
}

/* Every virtqueue holds a few descriptors (a kick eventfd, an MSI-X
 * vector's irqfd): 8 disks with 64 queues each need more than the usual
 * soft limit of 1024. Raise it to the hard limit, as a program that uses
 * no select(2) may. */
static void raise_fd_limit(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
		fprintf(stderr, "kvmrun: getrlimit(RLIMIT_NOFILE): %s\n", strerror(errno));
		return;
	}
	if (rl.rlim_cur >= rl.rlim_max)
		return;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		fprintf(stderr, "kvmrun: setrlimit(RLIMIT_NOFILE, %llu): %s\n",
			(unsigned long long)rl.rlim_max, strerror(errno));
}

static int run(const struct vm_config *cfg)
{
	raise_fd_limit();
	/* Blocked before any thread exists, so every vCPU thread inherits the
	 * block and the signals are read only through the signalfd. */
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	sigaddset(&sigs, SIGQUIT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	int sfd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0) {
		fprintf(stderr, "kvmrun: signalfd: %s\n", strerror(errno));
		return EXIT_VMM_ERROR;
	}
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	uint64_t start_ns = (uint64_t)t0.tv_sec * 1000000000ull + (uint64_t)t0.tv_nsec;
	int code;
	do {
		struct vm *vm = NULL;
		if (vm_create(cfg, &vm) < 0) {
			code = EXIT_VMM_ERROR;
			break;
		}
		vm_set_timeout_start(vm, start_ns);
		if (vm_watch_fd(vm, sfd, on_signal, NULL) < 0)
			vm_request_exit(vm, EXIT_VMM_ERROR, "cannot watch signals");
		code = vm_run(vm);
		vm_destroy(vm);
	} while (code == VM_RESTART);
	close(sfd);
	return code;
}

/* kvmrun overlay-merge OVERLAY TARGET: a kept overlay's blocks onto a
 * copy of its base (block/overlay.h). */
static int overlay_merge_main(int argc, char **argv)
{
	if (argc != 3) {
		fputs("usage: kvmrun overlay-merge OVERLAY TARGET\n"
		      "writes the blocks of a kept overlay (diskN.overlay=PATH, overlay_keep=on)\n"
		      "onto TARGET, a copy of the disk's base image\n", stderr);
		return EXIT_USAGE;
	}
	struct logger lg;
	log_init(&lg, LOG_INFO, NULL);
	uint64_t blocks = 0;
	if (overlay_merge(argv[1], argv[2], &lg, &blocks) < 0)
		return EXIT_VMM_ERROR;
	printf("merged %llu blocks of %u bytes from %s into %s\n", (unsigned long long)blocks,
	       OVERLAY_BLOCK_SIZE, argv[1], argv[2]);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "ctl") == 0)
		return control_client_main(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "overlay-merge") == 0)
		return overlay_merge_main(argc - 1, argv + 1);
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			fputs(usage_text, stdout);
			return 0;
		}
		if (strcmp(argv[i], "--version") == 0) {
			printf("kvmrun %s\n", KVMRUN_VERSION);
			return 0;
		}
	}
	struct vm_config cfg;
	config_init(&cfg);
	enum mode mode = MODE_RUN;
	int code = parse_args(argc, argv, &cfg, &mode);
	if (code == 0) {
		if (mode == MODE_PRINT)
			config_print(&cfg, stdout);
		else if (mode == MODE_RUN)
			code = run(&cfg);
	}
	config_free(&cfg);
	return code;
}
