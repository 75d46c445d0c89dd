/* The library contract for CI farms: many VMs in one process, one after
 * the other and at the same time, each torn down with nothing leaked
 * (file descriptors counted here; memory checked by LeakSanitizer in the
 * sanitizer build).
 *
 *	api_many_vms GUEST_ELF */
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmm/config.h"
#include "vmm/vm.h"

#define PARALLEL 4
#define SEQUENTIAL 5

static const char *guest;

static unsigned count_fds(void)
{
	unsigned n = 0;
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return 0;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

/* Boots the guest once; returns its exit code, or -1 if it could not start. */
static int boot_once(unsigned id, const char *extra_key, const char *extra_value)
{
	struct vm_config cfg;
	struct config_diag diag = { .out = stderr };
	char name[32];
	snprintf(name, sizeof(name), "api-%u", id);
	config_init(&cfg);
	config_set(&cfg, "kernel", guest, "<test>", 1, &diag);
	config_set(&cfg, "serial", "none", "<test>", 2, &diag);
	config_set(&cfg, "mem", "32M", "<test>", 3, &diag);
	config_set(&cfg, "name", name, "<test>", 4, &diag);
	config_set(&cfg, "timeout", "60", "<test>", 5, &diag);
	if (extra_key)
		config_set(&cfg, extra_key, extra_value, "<test>", 6, &diag);
	int code = -1;
	struct vm *vm = NULL;
	if (diag.errors == 0 && config_validate(&cfg, &diag) == 0 && vm_create(&cfg, &vm) == 0) {
		code = vm_run(vm);
		vm_destroy(vm);
	}
	config_free(&cfg);
	return code;
}

static void *parallel_boot(void *arg)
{
	unsigned id = (unsigned)(uintptr_t)arg;
	return (void *)(intptr_t)boot_once(id, "cpus", id % 2 ? "2" : "1");
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s GUEST_ELF\n", argv[0]);
		return 2;
	}
	if (access("/dev/kvm", R_OK | W_OK) != 0) {
		printf("SKIP: /dev/kvm is not usable here\n");
		return 77;
	}
	guest = argv[1];
	unsigned failed = 0, passed = 0;
	unsigned fds0 = count_fds();

	for (unsigned i = 0; i < SEQUENTIAL; i++) {
		int code = boot_once(i, NULL, NULL);
		if (code != 0) {
			printf("FAIL sequential VM %u: exit code %d, want 0\n", i, code);
			failed++;
		} else {
			passed++;
		}
	}
	unsigned fds1 = count_fds();
	printf("%s sequential: %u VMs one after the other; fds %u before, %u after\n",
	       fds1 == fds0 ? "ok  " : "FAIL", SEQUENTIAL, fds0, fds1);
	fds1 == fds0 ? passed++ : failed++;

	pthread_t t[PARALLEL];
	for (unsigned i = 0; i < PARALLEL; i++)
		pthread_create(&t[i], NULL, parallel_boot, (void *)(uintptr_t)(100 + i));
	unsigned ok = 0;
	for (unsigned i = 0; i < PARALLEL; i++) {
		void *ret;
		pthread_join(t[i], &ret);
		ok += (intptr_t)ret == 0;
	}
	unsigned fds2 = count_fds();
	printf("%s parallel: %u of %u VMs on their own threads exited 0\n",
	       ok == PARALLEL ? "ok  " : "FAIL", ok, PARALLEL);
	ok == PARALLEL ? passed++ : failed++;
	printf("%s parallel teardown: fds %u before, %u after\n",
	       fds2 == fds0 ? "ok  " : "FAIL", fds0, fds2);
	fds2 == fds0 ? passed++ : failed++;

	printf("%u passed, %u failed\n", passed, failed);
	return failed ? 1 : 0;
}
