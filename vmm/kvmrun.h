/* libkvmrun: KVM virtual machines inside your own program.
 *
 * Installed as <kvmrun.h>; link with `pkg-config --cflags --libs kvmrun`.
 * Every type is opaque and every function is kvmrun_*: the library exports
 * nothing else, and its soname (libkvmrun.so.0) changes only when this
 * interface does.
 *
 *	kvmrun_vm *vm;
 *	char err[1024];
 *	const char *keys[] = { "kernel=guest.elf", "mem=64M", NULL };
 *	if (kvmrun_vm_new(NULL, keys, &vm, err, sizeof(err)) < 0)
 *		errx(1, "%s", err);
 *	if (kvmrun_vm_start(vm) == 0)
 *		printf("exit code %d\n", kvmrun_vm_wait(vm, -1));
 *	kvmrun_vm_free(vm);
 *
 * A VM is configured with the same keys as the kvmrun command (kvmrun(1)),
 * from a file, key=value strings, or both; it runs on threads of its own,
 * so a program can run many VMs at once, from any of its threads.
 *
 * Threads. Every function may be called from any thread of the program,
 * for different VMs at the same time, and for the same VM from several
 * threads at once (calls are serialised inside), except: kvmrun_vm_free
 * only when no other call on that VM is in progress; no kvmrun_* call from
 * inside a log callback. Each started VM has an event thread (named
 * "kvmrun-vm") and one thread per vCPU, all the library's own; they are
 * joined by kvmrun_vm_wait once the VM has ended.
 *
 * What the library does to the process, and nothing else:
 *   - Signals. A vCPU thread is made to leave KVM_RUN by a signal sent to
 *     that thread only: the kick signal, SIGRTMIN + 3 unless
 *     kvmrun_vm_set_kick_signal chose another. The first VM to start
 *     installs an empty handler for it when it has the default disposition,
 *     and the handler stays (the library is linked with -z nodelete, so it
 *     is never unloaded under it). A signal the program handles or ignores
 *     is never taken over: kvmrun_vm_start fails with -EBUSY instead. The
 *     library's threads block every signal, so the program's signals are
 *     never delivered to them, and the calling thread's mask is left as
 *     it was. No other handler is installed; SIGPIPE is not touched (the
 *     library's threads have it blocked, and its sockets use
 *     MSG_NOSIGNAL).
 *   - Capabilities. drop_caps=on (the default) drops the capabilities of
 *     the VM's own threads once its devices are set up. Capabilities
 *     belong to each thread: the program's threads keep theirs.
 *   - File descriptors. Each VM holds some (KVM, eventfds, images, taps),
 *     all close-on-exec: the running VM's are closed by the time
 *     kvmrun_vm_wait returns its exit code, the handle's one eventfd by
 *     kvmrun_vm_free. RLIMIT_NOFILE is not raised: a
 *     program that runs many VMs with many queues raises it itself (the
 *     kvmrun command raises its soft limit to the hard one).
 *   - Files. Only those the config names: kernel, initrd, images,
 *     serial=file:, the control= socket (mode 0600 less the umask, which
 *     is not changed) and its lock file.
 *   - Output. Nothing is written to the program's stdout or stderr unless
 *     asked: log lines go where kvmrun_vm_set_log or kvmrun_vm_set_log_fd
 *     say and are dropped otherwise; serial is none unless the config sets
 *     serial= (serial=stdio reads the process's stdin and writes its
 *     stdout, as the command does).
 *
 * Errors are negative errno values. A config error is explained in the
 * caller's buffer given to kvmrun_vm_new; a failed start is explained by
 * kvmrun_vm_last_error. */
#ifndef KVMRUN_H
#define KVMRUN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kvmrun_vm kvmrun_vm;

/* The library's version, "MAJOR.MINOR.PATCH". */
const char *kvmrun_version(void);

/* Reads the config (as `kvmrun [CONFIG_FILE] [KEY=VALUE ...]` does):
 * @config_file (NULL: none), then each "key=value" of the NULL-terminated
 * @keys (NULL: none), which override the file. Validates it and checks it
 * against this host (kernel and images readable, mem within reach); opens
 * nothing else, starts nothing. On error returns -EINVAL (or -ENOMEM) and
 * writes every message, one "FILE:LINE: KEY: message" a line, into @err
 * (@err_len bytes, NUL-terminated; @err may be NULL). On success *@out is
 * a VM not yet started. */
int kvmrun_vm_new(const char *config_file, const char *const *keys, kvmrun_vm **out,
		  char *err, size_t err_len);

/* Log levels, as the log_level= key names them. */
enum kvmrun_log_level {
	KVMRUN_LOG_ERROR = 0,
	KVMRUN_LOG_WARN = 1,
	KVMRUN_LOG_INFO = 2,
	KVMRUN_LOG_DEBUG = 3,
};

/* Receives each log line up to the config's log_level (default warn), e.g.
 * "kvmrun[ci-42]: warn: vm: timeout=60 expired", without a newline. Called
 * from the VM's threads, vCPU threads included: it must be thread-safe,
 * must not block for long, and must call no kvmrun_* function. */
typedef void (*kvmrun_log_fn)(void *cookie, int level, const char *line);

/* Where the VM's log lines go: to @fn (NULL: nowhere), or written to @fd
 * one line a write(2) (-1: nowhere; the fd is borrowed and must stay open
 * until the VM has ended). The last call wins. Before kvmrun_vm_start
 * only: -EBUSY after. */
int kvmrun_vm_set_log(kvmrun_vm *vm, kvmrun_log_fn fn, void *cookie);
int kvmrun_vm_set_log_fd(kvmrun_vm *vm, int fd);

/* The signal that kicks this VM's vCPU threads out of the guest (see
 * "Signals" above), for a program that uses SIGRTMIN + 3 itself. Any
 * signal the program leaves at its default disposition will do; VMs may
 * share one. Before kvmrun_vm_start only: -EBUSY after, -EINVAL for
 * SIGKILL, SIGSTOP or no signal. */
int kvmrun_vm_set_kick_signal(kvmrun_vm *vm, int signo);

/* Creates the VM (KVM, guest RAM, devices, kernel, vCPUs) on its own
 * event thread and, once that succeeded, lets it run; returns without
 * waiting for the guest. Returns 0, or -errno with nothing left running
 * (the cause: kvmrun_vm_last_error; kvmrun_vm_wait then returns 1). Once
 * per VM: -EALREADY after. */
int kvmrun_vm_start(kvmrun_vm *vm);

/* Waits for the VM to end, at most @timeout_ms milliseconds (-1: for as
 * long as it takes; 0: just look). Returns its exit code (kvmrun(1): 0
 * powered off, 1 VMM error, 3 guest crash or panic, 124 timeout=, with
 * debug_exit=on the guest's value * 2 + 1), -ETIMEDOUT if it still runs,
 * -EINVAL if it was never started. The VM's threads are joined before the
 * exit code is returned; later calls return it again. A VM whose config
 * says on_reboot=restart is recreated in place when its guest reboots. */
int kvmrun_vm_wait(kvmrun_vm *vm, int timeout_ms);

/* Asks the VM to end now with exit code 0, as the `stop` command does;
 * returns at once (kvmrun_vm_wait for the end). 0, or -ESRCH when the VM
 * is not running (never started, or already ended). */
int kvmrun_vm_stop(kvmrun_vm *vm);

/* Runs one control-socket command line on the running VM, as
 * `kvmrun ctl SOCKET LINE` would (the protocol: kvmrun(1)), whether or not
 * the config has a control= socket, and writes the response line
 * ("ok key=value ..." or "error message") into @resp (@resp_len bytes,
 * NUL-terminated; KVMRUN_RESPONSE_MAX holds any). The command runs on the
 * VM's event thread, like a socket client's, and this call waits for it.
 * Returns 0 for "ok", -EINVAL for "error ..." (the reason is in @resp),
 * -ESRCH when the VM is not running. */
#define KVMRUN_RESPONSE_MAX 65536
int kvmrun_vm_command(kvmrun_vm *vm, const char *line, char *resp, size_t resp_len);

/* Typed commands, through kvmrun_vm_command; @resp may be NULL (then
 * @resp_len is ignored). */
/* "status": state=, name=, cpus=, mem=, uptime_ms=, balloon and memory. */
int kvmrun_vm_status(kvmrun_vm *vm, char *resp, size_t resp_len);
/* "balloon target=BYTES": the balloon's size; the guest is asked to give
 * @target_bytes of its RAM back to the host (needs balloon=on). */
int kvmrun_vm_set_balloon(kvmrun_vm *vm, uint64_t target_bytes, char *resp, size_t resp_len);
/* "pause", "resume", "metrics": "error unknown command" where this
 * version's VMM does not have them. */
int kvmrun_vm_pause(kvmrun_vm *vm, char *resp, size_t resp_len);
int kvmrun_vm_resume(kvmrun_vm *vm, char *resp, size_t resp_len);
int kvmrun_vm_metrics(kvmrun_vm *vm, char *resp, size_t resp_len);

/* The last error-level log line of this VM (whatever the log setting), ""
 * when none: what made kvmrun_vm_start fail, or exit code 1. Copied into
 * @buf (NUL-terminated); returns @buf. */
const char *kvmrun_vm_last_error(kvmrun_vm *vm, char *buf, size_t buf_len);

/* Ends the VM if it runs (kvmrun_vm_stop, then kvmrun_vm_wait) and frees
 * everything it had. NULL: nothing. */
void kvmrun_vm_free(kvmrun_vm *vm);

#ifdef __cplusplus
}
#endif

#endif
