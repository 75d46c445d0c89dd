/* libkvmrun's public API (vmm/kvmrun.h) over the in-process one (vmm/vm.h):
 * a handle owns the config, the VM's event thread and the requests other
 * threads make of it.
 *
 * Threads and locks. h->lock guards state, vm, exit_code, stop_requested
 * and the command slot; h->cond signals their changes. h->cmd_lock is held
 * by the one caller whose command is in flight (taken before h->lock).
 * h->err_lock guards last_error only and is taken by the log sink, which
 * may run under h->lock (vm_request_exit logs): no other lock is taken
 * under it. The event thread (api_thread) owns the struct vm: it creates,
 * runs and destroys it, and publishes it in h->vm while it runs. */
#include "vmm/kvmrun.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "lib/exitcode.h"
#include "lib/log.h"
#include "vmm/config.h"
#include "vmm/control.h"
#include "vmm/vm.h"

_Static_assert(KVMRUN_RESPONSE_MAX >= CONTROL_MAX_RESPONSE,
	       "kvmrun.h's KVMRUN_RESPONSE_MAX must hold any control response");

#ifndef KVMRUN_VERSION
#define KVMRUN_VERSION "0.1.0"
#endif

enum api_state { API_NEW, API_STARTING, API_RUNNING, API_ENDED };

/* A command handed to the event thread; the caller's buffers, valid while
 * the caller waits for done. */
struct api_cmd {
	const char *line;
	char *resp;
	size_t resp_len;
	bool pending, done;
};

struct kvmrun_vm {
	struct vm_config cfg;
	int kick_signal;              /* 0: the default */
	kvmrun_log_fn log_fn;
	void *log_cookie;
	int log_fd;                   /* -1: none */

	pthread_mutex_t lock;
	pthread_cond_t cond;          /* CLOCK_MONOTONIC */
	enum api_state state;
	bool start_done;              /* the first vm_create has returned */
	int start_rc;                 /* its result, for kvmrun_vm_start */
	int exit_code;                /* once API_ENDED */
	bool stop_requested;
	bool joined;
	struct vm *vm;                /* while it runs (event thread's) */
	pthread_t thread;

	pthread_mutex_t cmd_lock;
	int cmd_fd;                   /* eventfd: a command is pending */
	struct api_cmd cmd;

	pthread_mutex_t err_lock;
	char last_error[1024];
};

const char *kvmrun_version(void)
{
	return KVMRUN_VERSION;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- logging: the VM's lines to the program's callback or fd ---- */

static void api_log_sink(void *cookie, enum log_level level, const char *line)
{
	kvmrun_vm *h = cookie;
	if (level == LOG_ERROR) {
		pthread_mutex_lock(&h->err_lock);
		snprintf(h->last_error, sizeof(h->last_error), "%s", line);
		pthread_mutex_unlock(&h->err_lock);
	}
	if (h->log_fn) {
		h->log_fn(h->log_cookie, (int)level, line);
	} else if (h->log_fd >= 0) {
		/* one write a line, as lib/log.c does for its own fd */
		char buf[1100];
		int n = snprintf(buf, sizeof(buf), "%s\n", line);
		if (n > 0) {
			ssize_t r = write(h->log_fd, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
			(void)r; /* nowhere left to report a failed log write */
		}
	}
}

/* ---- creating the handle: the config, read as the command reads it ---- */

/* The config's messages (collected in a memory stream) into @err. */
static int api_load_config(kvmrun_vm *h, const char *file, const char *const *keys,
			   char *err, size_t err_len)
{
	char *msgs = NULL;
	size_t msgs_len = 0;
	FILE *out = open_memstream(&msgs, &msgs_len);
	if (!out)
		return -ENOMEM;
	struct config_diag diag = { .out = out };
	if (file)
		(void)config_load_file(&h->cfg, file, &diag);
	unsigned pos = 0;
	for (; keys && keys[pos]; pos++)
		(void)config_apply_arg(&h->cfg, keys[pos], pos + 1, &diag);
	if (!file && pos == 0) {
		fputs("no config file and no keys: kernel= at least is needed\n", out);
		diag.errors++;
	}
	if (diag.errors == 0)
		(void)config_validate(&h->cfg, &diag);
	struct config_host host;
	if (diag.errors == 0 && config_host_probe(&host) == 0)
		(void)config_check_host(&h->cfg, &host, &diag);
	fclose(out);
	if (err && err_len)
		snprintf(err, err_len, "%s", msgs ? msgs : "");
	free(msgs);
	return diag.errors ? -EINVAL : 0;
}

static void api_free_handle(kvmrun_vm *h)
{
	if (h->cmd_fd >= 0)
		close(h->cmd_fd);
	config_free(&h->cfg);
	pthread_cond_destroy(&h->cond);
	pthread_mutex_destroy(&h->lock);
	pthread_mutex_destroy(&h->cmd_lock);
	pthread_mutex_destroy(&h->err_lock);
	free(h);
}

static int api_init_sync(kvmrun_vm *h)
{
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	int rc = pthread_cond_init(&h->cond, &ca);
	pthread_condattr_destroy(&ca);
	if (rc == 0)
		rc = pthread_mutex_init(&h->lock, NULL);
	if (rc == 0)
		rc = pthread_mutex_init(&h->cmd_lock, NULL);
	if (rc == 0)
		rc = pthread_mutex_init(&h->err_lock, NULL);
	return -rc;
}

int kvmrun_vm_new(const char *config_file, const char *const *keys, kvmrun_vm **out,
		  char *err, size_t err_len)
{
	if (err && err_len)
		err[0] = '\0';
	if (!out)
		return -EINVAL;
	*out = NULL;
	kvmrun_vm *h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->log_fd = -1;
	config_init(&h->cfg);
	/* The command's default is stdio; a library's caller did not ask
	 * for its terminal to be taken. */
	h->cfg.serial = SERIAL_NONE;
	h->cmd_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	int rc = h->cmd_fd < 0 ? -errno : api_init_sync(h);
	if (rc < 0) {
		if (err && err_len)
			snprintf(err, err_len, "kvmrun_vm_new: %s\n", strerror(-rc));
		api_free_handle(h);
		return rc;
	}
	rc = api_load_config(h, config_file, keys, err, err_len);
	if (rc < 0) {
		api_free_handle(h);
		return rc;
	}
	*out = h;
	return 0;
}

/* ---- settings before the start ---- */

static int api_set_before_start(kvmrun_vm *h, kvmrun_log_fn fn, void *cookie, int fd,
				int kick_signal)
{
	pthread_mutex_lock(&h->lock);
	int rc = h->state == API_NEW ? 0 : -EBUSY;
	if (rc == 0 && kick_signal) {
		h->kick_signal = kick_signal;
	} else if (rc == 0) {
		h->log_fn = fn;
		h->log_cookie = cookie;
		h->log_fd = fd;
	}
	pthread_mutex_unlock(&h->lock);
	return rc;
}

int kvmrun_vm_set_log(kvmrun_vm *vm, kvmrun_log_fn fn, void *cookie)
{
	return api_set_before_start(vm, fn, cookie, -1, 0);
}

int kvmrun_vm_set_log_fd(kvmrun_vm *vm, int fd)
{
	return api_set_before_start(vm, NULL, NULL, fd < 0 ? -1 : fd, 0);
}

int kvmrun_vm_set_kick_signal(kvmrun_vm *vm, int signo)
{
	if (signo <= 0 || signo > SIGRTMAX || signo == SIGKILL || signo == SIGSTOP)
		return -EINVAL;
	return api_set_before_start(vm, NULL, NULL, -1, signo);
}

/* ---- the event thread ---- */

/* A command's turn on the event thread (a vm_watch_fd callback). */
static void api_on_cmd(struct vm *vm, int fd, void *cookie)
{
	kvmrun_vm *h = cookie;
	uint64_t n;
	if (read(fd, &n, sizeof(n)) != sizeof(n))
		return;
	pthread_mutex_lock(&h->lock);
	struct api_cmd c = h->cmd;
	pthread_mutex_unlock(&h->lock);
	if (!c.pending || c.done)
		return;
	/* Without h->lock: a "stop" logs, and the log sink must not wait on
	 * a caller of kvmrun_vm_stop. The caller's buffers stay valid: it
	 * waits for done. */
	vm_command(vm, c.line, c.resp, c.resp_len);
	pthread_mutex_lock(&h->lock);
	h->cmd.done = true;
	pthread_cond_broadcast(&h->cond);
	pthread_mutex_unlock(&h->lock);
}

/* The first creation's result, for kvmrun_vm_start waiting on it. */
static void api_publish(kvmrun_vm *h, struct vm *vm, int rc)
{
	pthread_mutex_lock(&h->lock);
	h->vm = vm;
	if (!h->start_done) {
		h->start_done = true;
		h->start_rc = rc;
		if (rc == 0)
			h->state = API_RUNNING;
	}
	if (vm && h->stop_requested)
		vm_request_exit(vm, EXIT_GUEST_POWEROFF, "kvmrun_vm_stop");
	pthread_cond_broadcast(&h->cond);
	pthread_mutex_unlock(&h->lock);
}

/* One VM from creation to destruction; its exit code, or -errno when the
 * first creation failed. */
static int api_run_once(kvmrun_vm *h, uint64_t start_ns, bool first)
{
	struct logger lg;
	log_init(&lg, h->cfg.log_level, h->cfg.name);
	lg.sink = api_log_sink;
	lg.sink_cookie = h;
	struct vm_opts opts = { .kick_signal = h->kick_signal, .log = &lg, .shared_process = true };
	struct vm *vm = NULL;
	int rc = vm_create_with(&h->cfg, &opts, &vm);
	if (rc == 0) {
		vm_set_timeout_start(vm, start_ns);
		rc = vm_watch_fd(vm, h->cmd_fd, api_on_cmd, h);
		if (rc < 0) {
			log_msg(&lg, LOG_ERROR, "api", "watching the command eventfd: %s", strerror(-rc));
			vm_destroy(vm);
			vm = NULL;
		}
	}
	if (rc < 0 && !first)
		return EXIT_VMM_ERROR;
	api_publish(h, vm, rc);
	if (rc < 0)
		return rc;
	int code = vm_run(vm);
	pthread_mutex_lock(&h->lock);
	h->vm = NULL;
	pthread_mutex_unlock(&h->lock);
	vm_destroy(vm);
	return code;
}

static void *api_thread(void *arg)
{
	kvmrun_vm *h = arg;
	pthread_setname_np(pthread_self(), "kvmrun-vm");
	uint64_t start_ns = now_ns();
	int code;
	bool first = true, again;
	do {
		code = api_run_once(h, start_ns, first);
		first = false;
		pthread_mutex_lock(&h->lock);
		again = code == VM_RESTART && !h->stop_requested;
		pthread_mutex_unlock(&h->lock);
	} while (again);
	/* API_ENDED is this thread's last word: it takes no lock after it,
	 * so whoever sees it may join the thread holding h->lock. */
	pthread_mutex_lock(&h->lock);
	h->exit_code = code < 0 ? EXIT_VMM_ERROR : code == VM_RESTART ? EXIT_GUEST_POWEROFF : code;
	h->state = API_ENDED;
	if (h->cmd.pending && !h->cmd.done) {
		snprintf(h->cmd.resp, h->cmd.resp_len, "error the VM has ended");
		h->cmd.done = true;
	}
	pthread_cond_broadcast(&h->cond);
	pthread_mutex_unlock(&h->lock);
	return NULL;
}

int kvmrun_vm_start(kvmrun_vm *h)
{
	pthread_mutex_lock(&h->lock);
	if (h->state != API_NEW) {
		pthread_mutex_unlock(&h->lock);
		return -EALREADY;
	}
	h->state = API_STARTING;
	/* Every signal blocked in the library's threads (the vCPU threads
	 * inherit it), so the program's signals go to its own threads. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int rc = -pthread_create(&h->thread, NULL, api_thread, h);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc < 0) {
		h->state = API_NEW;
		pthread_mutex_unlock(&h->lock);
		pthread_mutex_lock(&h->err_lock);
		snprintf(h->last_error, sizeof(h->last_error), "creating the VM's thread: %s",
			 strerror(-rc));
		pthread_mutex_unlock(&h->err_lock);
		return rc;
	}
	while (!h->start_done)
		pthread_cond_wait(&h->cond, &h->lock);
	rc = h->start_rc;
	while (rc < 0 && h->state != API_ENDED)
		pthread_cond_wait(&h->cond, &h->lock);
	if (rc < 0 && !h->joined) {
		pthread_join(h->thread, NULL);
		h->joined = true;
	}
	pthread_mutex_unlock(&h->lock);
	return rc;
}

/* ---- the running VM ---- */

int kvmrun_vm_wait(kvmrun_vm *h, int timeout_ms)
{
	pthread_mutex_lock(&h->lock);
	struct timespec until;
	clock_gettime(CLOCK_MONOTONIC, &until);
	if (timeout_ms > 0) {
		until.tv_sec += timeout_ms / 1000;
		until.tv_nsec += (long)(timeout_ms % 1000) * 1000000l;
		if (until.tv_nsec >= 1000000000l) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000l;
		}
	}
	int rc = 0;
	while (rc == 0 && (h->state == API_STARTING || h->state == API_RUNNING)) {
		if (timeout_ms < 0)
			rc = -pthread_cond_wait(&h->cond, &h->lock);
		else
			rc = -pthread_cond_timedwait(&h->cond, &h->lock, &until);
	}
	if (h->state == API_NEW)
		rc = -EINVAL;
	else if (h->state == API_ENDED)
		rc = h->exit_code;
	if (h->state == API_ENDED && !h->joined) {
		pthread_join(h->thread, NULL);
		h->joined = true;
	}
	pthread_mutex_unlock(&h->lock);
	return rc;
}

int kvmrun_vm_stop(kvmrun_vm *h)
{
	pthread_mutex_lock(&h->lock);
	int rc = h->state == API_STARTING || h->state == API_RUNNING ? 0 : -ESRCH;
	if (rc == 0) {
		h->stop_requested = true;
		if (h->vm)
			vm_request_exit(h->vm, EXIT_GUEST_POWEROFF, "kvmrun_vm_stop");
	}
	pthread_mutex_unlock(&h->lock);
	return rc;
}

int kvmrun_vm_command(kvmrun_vm *h, const char *line, char *resp, size_t resp_len)
{
	if (!line || !resp || resp_len == 0)
		return -EINVAL;
	pthread_mutex_lock(&h->cmd_lock);
	pthread_mutex_lock(&h->lock);
	if (h->state != API_RUNNING || pthread_equal(pthread_self(), h->thread)) {
		pthread_mutex_unlock(&h->lock);
		pthread_mutex_unlock(&h->cmd_lock);
		snprintf(resp, resp_len, "error the VM is not running");
		return -ESRCH;
	}
	h->cmd = (struct api_cmd){ .line = line, .resp = resp, .resp_len = resp_len,
				   .pending = true };
	uint64_t one = 1;
	ssize_t w = write(h->cmd_fd, &one, sizeof(one));
	(void)w; /* an eventfd write of 1 cannot fail short of overflow */
	while (!h->cmd.done)
		pthread_cond_wait(&h->cond, &h->lock);
	h->cmd = (struct api_cmd){ 0 };
	pthread_mutex_unlock(&h->lock);
	pthread_mutex_unlock(&h->cmd_lock);
	return strncmp(resp, "ok", 2) == 0 && (resp[2] == '\0' || resp[2] == ' ') ? 0 : -EINVAL;
}

/* A typed command whose caller may not want the response. */
static int api_command(kvmrun_vm *h, const char *line, char *resp, size_t resp_len)
{
	char own[KVMRUN_RESPONSE_MAX];
	if (!resp)
		return kvmrun_vm_command(h, line, own, sizeof(own));
	return kvmrun_vm_command(h, line, resp, resp_len);
}

int kvmrun_vm_status(kvmrun_vm *vm, char *resp, size_t resp_len)
{
	return api_command(vm, "status", resp, resp_len);
}

int kvmrun_vm_set_balloon(kvmrun_vm *vm, uint64_t target_bytes, char *resp, size_t resp_len)
{
	char line[64];
	snprintf(line, sizeof(line), "balloon target=%llu", (unsigned long long)target_bytes);
	return api_command(vm, line, resp, resp_len);
}

int kvmrun_vm_pause(kvmrun_vm *vm, char *resp, size_t resp_len)
{
	return api_command(vm, "pause", resp, resp_len);
}

int kvmrun_vm_resume(kvmrun_vm *vm, char *resp, size_t resp_len)
{
	return api_command(vm, "resume", resp, resp_len);
}

int kvmrun_vm_metrics(kvmrun_vm *vm, char *resp, size_t resp_len)
{
	return api_command(vm, "metrics", resp, resp_len);
}

const char *kvmrun_vm_last_error(kvmrun_vm *h, char *buf, size_t buf_len)
{
	if (!buf || buf_len == 0)
		return buf;
	pthread_mutex_lock(&h->err_lock);
	snprintf(buf, buf_len, "%s", h->last_error);
	pthread_mutex_unlock(&h->err_lock);
	return buf;
}

void kvmrun_vm_free(kvmrun_vm *h)
{
	if (!h)
		return;
	if (kvmrun_vm_stop(h) == 0 || !h->joined)
		(void)kvmrun_vm_wait(h, -1);
	api_free_handle(h);
}
