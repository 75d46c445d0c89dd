/* The README's example: one VM from key=value strings, its log lines to a
 * callback, a command while it runs, and its exit code.
 *
 *	cc example.c $(pkg-config --cflags --libs kvmrun) -o example
 *	./example GUEST_ELF */
#include <stdio.h>
#include <string.h>

#include <kvmrun.h>

static void on_log(void *cookie, int level, const char *line)
{
	(void)cookie;
	fprintf(stderr, "[log %d] %s\n", level, line);
}

int main(int argc, char **argv)
{
	char kernel[512], err[2048], resp[KVMRUN_RESPONSE_MAX];
	snprintf(kernel, sizeof(kernel), "kernel=%s", argc > 1 ? argv[1] : "guest.elf");
	const char *keys[] = { kernel, "name=example", "mem=64M", "log_level=info",
			       "serial=file:example.serial", NULL };
	kvmrun_vm *vm;
	if (kvmrun_vm_new(NULL, keys, &vm, err, sizeof(err)) < 0) {
		fprintf(stderr, "config:\n%s", err);
		return 1;
	}
	kvmrun_vm_set_log(vm, on_log, NULL);
	if (kvmrun_vm_start(vm) < 0) {
		fprintf(stderr, "start: %s\n", kvmrun_vm_last_error(vm, err, sizeof(err)));
		kvmrun_vm_free(vm);
		return 1;
	}
	if (kvmrun_vm_status(vm, resp, sizeof(resp)) == 0)
		printf("status: %.60s...\n", resp);
	int code = kvmrun_vm_wait(vm, 60 * 1000);
	printf("libkvmrun %s: the VM exited with code %d\n", kvmrun_version(), code);
	kvmrun_vm_free(vm);
	return code == 0 ? 0 : 1;
}
