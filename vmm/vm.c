/* VM lifecycle: create (KVM, RAM, devices, kernel, vCPUs), run, tear down. */
#include "vmm/vm.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "mem/layout.h"
#include "cpu/regs.h"
#include "mem/ram_stats.h"
#include "virtio/balloon.h"
#include "vmm/board.h"
#include "vmm/console.h"
#include "vmm/control.h"
#include "lib/exitcode.h"
#include "vmm/vm_priv.h"

/* Just below the LAPIC/IOAPIC-free top of the hole, where QEMU puts them. */
#define KVM_TSS_ADDR          0xfffbd000ul
#define KVM_IDENTITY_MAP_ADDR 0xfffbc000ull

void vm_request_exit(struct vm *vm, int code, const char *why)
{
	int expected = -1;
	if (!atomic_compare_exchange_strong(&vm->exit_code, &expected, code))
		return;
	log_info(&vm->log, "vm", "ending: %s (exit code %d)", why,
		 code == VM_RESTART ? -1 : code);
	uint64_t one = 1;
	ssize_t r = write(vm->exit_fd, &one, sizeof(one));
	(void)r; /* an eventfd write of 1 cannot fail short of overflow */
}

/* vm_request_exit for those below vm.c: vCPUs, the board, the console */
static void on_exit_request(void *cookie, int code, const char *why)
{
	vm_request_exit(cookie, code, why);
}

/* KVM_IRQ_LINE, as an irq_line callback; cookie is the vm. */
static void vm_set_irq(void *cookie, unsigned gsi, int level)
{
	struct vm *vm = cookie;
	struct kvm_irq_level irq = { .irq = gsi, .level = (uint32_t)level };
	if (ioctl(vm->vm_fd, KVM_IRQ_LINE, &irq) < 0)
		log_warn(&vm->log, "irq", "KVM_IRQ_LINE gsi %u level %d: %s", gsi, level,
			 strerror(errno));
}

static int kvm_open(struct vm *vm)
{
	vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0) {
		int e = errno;
		log_err(&vm->log, "kvm", "opening /dev/kvm: %s%s", strerror(e),
			e == EACCES ? " (add yourself to the 'kvm' group)" :
			e == ENOENT ? " (is the kvm module loaded? is virtualisation enabled?)" : "");
		return -e;
	}
	int v = ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0);
	if (v != KVM_API_VERSION) {
		log_err(&vm->log, "kvm", "/dev/kvm: API version %d, kvmrun needs %d", v, KVM_API_VERSION);
		return -ENOTSUP;
	}
	static const struct { int cap; const char *name; } needed[] = {
		{ KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP" },
		{ KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY" },
		{ KVM_CAP_IOEVENTFD, "KVM_CAP_IOEVENTFD" },
		{ KVM_CAP_IRQFD, "KVM_CAP_IRQFD" },
		{ KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR" },
		{ KVM_CAP_PIT2, "KVM_CAP_PIT2" },
	};
	for (size_t i = 0; i < sizeof(needed) / sizeof(needed[0]); i++) {
		if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, needed[i].cap) <= 0) {
			log_err(&vm->log, "kvm", "/dev/kvm lacks %s", needed[i].name);
			return -ENOTSUP;
		}
	}
	return 0;
}

static int vm_ioctl(struct vm *vm, unsigned long req, void *arg, const char *what)
{
	if (ioctl(vm->vm_fd, req, arg) < 0) {
		int e = errno;
		log_err(&vm->log, "kvm", "%s: %s", what, strerror(e));
		return -e;
	}
	return 0;
}

static int kvm_create_vm(struct vm *vm)
{
	vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	if (vm->vm_fd < 0) {
		int e = errno;
		log_err(&vm->log, "kvm", "KVM_CREATE_VM: %s", strerror(e));
		return -e;
	}
	fcntl(vm->vm_fd, F_SETFD, FD_CLOEXEC);
	return 0;
}

/* The legacy pins, wired as the board's description (and so the MADT)
 * says. */
static int start_routing(struct vm *vm)
{
	struct acpi_params *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	board_describe(&vm->board_opts, p);
	int rc = irq_routing_start(&vm->routing, p->overrides, p->nr_overrides);
	free(p);
	return rc;
}

/* After the memory slots: a slot added once the in-kernel irqchip exists
 * waits for an SRCU grace period (about 6 ms here); before, it does not. */
static int kvm_create_platform(struct vm *vm)
{
	int rc = vm_ioctl(vm, KVM_SET_TSS_ADDR, (void *)KVM_TSS_ADDR, "KVM_SET_TSS_ADDR");
	uint64_t idmap = KVM_IDENTITY_MAP_ADDR;
	if (rc == 0)
		rc = vm_ioctl(vm, KVM_SET_IDENTITY_MAP_ADDR, &idmap, "KVM_SET_IDENTITY_MAP_ADDR");
	if (rc == 0)
		rc = vm_ioctl(vm, KVM_CREATE_IRQCHIP, NULL, "KVM_CREATE_IRQCHIP");
	if (rc == 0)
		rc = start_routing(vm);
	/* SPEAKER_DUMMY: KVM itself answers port 0x61 with PIT channel 2's
	 * gate and output, which Linux (without kvm-clock) and the test
	 * guests time the TSC against. Without it the port is unmapped and
	 * reads all-ones, so every calibration ends at once. */
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
	if (rc == 0)
		rc = vm_ioctl(vm, KVM_CREATE_PIT2, &pit, "KVM_CREATE_PIT2");
	return rc;
}

static int vm_map_ram(struct vm *vm)
{
	const struct vm_config *c = vm->cfg;
	struct ram_opts o = {
		.size = c->mem, .hugepages = c->mem_hugepages, .numa_node = c->mem_numa_node,
		.prefault = c->mem_prefault, .thp = c->mem_thp, .merge = c->mem_merge,
		.hugepage_giveback = c->balloon_hugepage_giveback, .name = c->name,
		.file = vm->restore ? restore_memory_path(vm) : NULL,
		.file_prefault = c->restore_prefault,
	};
	int rc = ram_create(&vm->ram, &o, &vm->log);
	if (rc < 0)
		return rc;
	for (unsigned i = 0; i < vm->ram.mem.nr_regions; i++) {
		const struct gmem_region *r = &vm->ram.mem.regions[i];
		struct kvm_userspace_memory_region slot = {
			.slot = i, .guest_phys_addr = r->gpa, .memory_size = r->size,
			.userspace_addr = (uintptr_t)r->host,
		};
		rc = vm_ioctl(vm, KVM_SET_USER_MEMORY_REGION, &slot, "KVM_SET_USER_MEMORY_REGION");
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int vm_create_vcpus(struct vm *vm)
{
	const struct vm_config *c = vm->cfg;
	struct kvm_cpuid2 *base = NULL;
	int rc = cpuid_supported(vm->kvm_fd, &base);
	if (rc < 0) {
		log_err(&vm->log, "kvm", "KVM_GET_SUPPORTED_CPUID: %s", strerror(-rc));
		return rc;
	}
	if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_TSC_DEADLINE_TIMER) > 0)
		cpuid_set_tsc_deadline(base);
	vm->vcpus = calloc(c->cpus, sizeof(*vm->vcpus));
	if (!vm->vcpus) {
		free(base);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < c->cpus && rc == 0; i++) {
		struct kvm_cpuid2 *cpuid = NULL;
		rc = cpuid_for_vcpu(base, &vm->topo, i, &cpuid);
		if (rc < 0)
			break;
		int host = i < c->nr_cpu_affinity ? (int)c->cpu_affinity[i] : -1;
		rc = vcpu_create(&vm->vcpus[i], &vm->env, vm->kvm_fd, vm->vm_fd, i,
				 cpuid_apic_id(&vm->topo, i), cpuid, host);
		free(cpuid);
		if (rc == 0)
			vm->nr_vcpus++;
	}
	free(base);
	return rc;
}

static void on_exit_fd(void *cookie, uint32_t events)
{
	struct vm *vm = cookie;
	uint64_t n;
	ssize_t r = read(vm->exit_fd, &n, sizeof(n));
	(void)r;
	vm->running = false;
}

static void on_timer(void *cookie, uint32_t events)
{
	struct vm *vm = cookie;
	uint64_t expirations;
	/* Read it, or the level-triggered loop reports it again before the
	 * vCPUs have stopped (the warning used to be printed twice). */
	if (read(vm->timer_fd, &expirations, sizeof(expirations)) != sizeof(expirations))
		return;
	log_warn(&vm->log, "vm", "timeout=%u expired", vm->cfg->timeout);
	vm_request_exit(vm, EXIT_TIMEOUT, "timeout");
}

static int vm_setup_loop(struct vm *vm)
{
	int rc = evloop_create(&vm->loop);
	if (rc < 0)
		return rc;
	vm->exit_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vm->exit_fd < 0)
		return -errno;
	rc = evloop_add(vm->loop, vm->exit_fd, EPOLLIN, on_exit_fd, vm);
	if (rc < 0 || vm->cfg->timeout == 0)
		return rc;
	vm->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (vm->timer_fd < 0) {
		rc = -errno;
		log_err(&vm->log, "vm", "timeout: timerfd_create: %s", strerror(-rc));
		return rc;
	}
	return evloop_add(vm->loop, vm->timer_fd, EPOLLIN, on_timer, vm);
}

/* ---- the control socket's view of the VM (control_ops) ---- */

static void control_hook_status(void *cookie, struct control_status *out)
{
	struct vm *vm = cookie;
	out->state = atomic_load(&vm->exit_code) != -1 ? "stopping" :
		     vm->paused ? "paused" : vm->running ? "running" : "starting";
	out->name = vm->cfg->name;
	out->cpus = vm->cfg->cpus;
	out->mem = vm->cfg->mem;
	out->transport = vm->cfg->transport == TRANSPORT_MMIO ? "mmio" : "pci";
}

static int control_hook_memory(void *cookie, struct control_mem *out)
{
	struct vm *vm = cookie;
	out->ram = vm->ram.size;
	out->page_size = vm->ram.page_size;
	out->merge = vm->cfg->mem_merge;
	return ram_stats_read(vm->ram.base, vm->ram.size, &out->stats);
}

static bool control_hook_balloon_get(void *cookie, struct virtio_balloon_info *out)
{
	struct vm *vm = cookie;
	if (!vm->balloon)
		return false;
	virtio_balloon_get(vm->balloon, out);
	return true;
}

static int control_hook_balloon_set(void *cookie, uint64_t bytes)
{
	struct vm *vm = cookie;
	if (!vm->balloon)
		return -ENODEV;
	int rc = virtio_balloon_set_target(vm->balloon, bytes);
	if (rc == 0)
		log_info(&vm->log, "control", "balloon target %" PRIu64 " MiB", bytes >> 20);
	return rc;
}

static int control_hook_pause(void *cookie, char *err, size_t len)
{
	return vm_pause_why(cookie, err, len);
}

static int control_hook_resume(void *cookie, char *err, size_t len)
{
	return vm_resume_why(cookie, err, len);
}

static int control_hook_snapshot(void *cookie, const char *dir, char *err, size_t len)
{
	return vm_snapshot(cookie, dir, err, len);
}

static void control_hook_stop(void *cookie)
{
	vm_request_exit(cookie, EXIT_GUEST_POWEROFF, "stop on the control socket");
}

static size_t control_hook_metrics(void *cookie, char *buf, size_t len)
{
	return vm_metrics_format(cookie, buf, len);
}

static const struct control_ops vm_control_ops = {
	.metrics = control_hook_metrics,
	.status = control_hook_status,
	.memory = control_hook_memory,
	.balloon_get = control_hook_balloon_get,
	.balloon_set = control_hook_balloon_set,
	.stop = control_hook_stop,
	.pause = control_hook_pause,
	.resume = control_hook_resume,
	.snapshot = control_hook_snapshot,
};

/* Creates vm->control: on cfg->control's socket, or with no socket at
 * all (control=none) for vm_command. */
static int vm_control_start(struct vm *vm)
{
	struct control_params p = {
		.path = vm->cfg->control, .loop = vm->loop, .log = &vm->log,
		.ops = &vm_control_ops, .cookie = vm,
	};
	int rc = control_create(&p, &vm->control);
	if (rc == 0 && vm->cfg->control)
		log_info(&vm->log, "control", "listening on %s", vm->cfg->control);
	return rc;
}

static void vm_control_stop(struct vm *vm)
{
	control_destroy(vm->control);
	vm->control = NULL;
}

void vm_command(struct vm *vm, const char *line, char *resp, size_t resp_len)
{
	control_execute(vm->control, line, resp, resp_len);
}

static void vm_init_fields(struct vm *vm, const struct vm_config *cfg,
			   const struct vm_opts *opts)
{
	vm->cfg = cfg;
	if (opts && opts->log)
		vm->log = *opts->log;
	else
		log_init(&vm->log, cfg->log_level, cfg->name);
	vm->log.level = cfg->log_level;
	vm->log.vm_name = cfg->name;
	vm->kvm_fd = vm->vm_fd = vm->exit_fd = vm->timer_fd = -1;
	vm->console.out_fd = vm->console.owned_fd = -1;
	vm->board_opts = (struct board_opts){
		.pci = cfg->transport == TRANSPORT_PCI, .debug_exit = cfg->debug_exit,
	};
	vm->ram.fd = -1;
	atomic_init(&vm->exit_code, -1);
	bus_init(&vm->pio, "pio");
	bus_init(&vm->mmio, "mmio");
	vm->topo = (struct cpu_topology){
		.sockets = cfg->topology_set ? cfg->sockets : 1,
		.cores = cfg->topology_set ? cfg->cores : cfg->cpus,
		.threads = cfg->topology_set ? cfg->threads : 1,
	};
	vm->env.pio = &vm->pio;
	vm->env.mmio = &vm->mmio;
	vm->env.log = &vm->log;
	vm->env.guest_exit = on_exit_request;
	vm->env.thread_start = vm_jail_vcpu_thread;
	vm->env.cookie = vm;
	vm->env.metrics = cfg->metrics;
	vm->metrics.file_fd = vm->metrics.timer_fd = -1;
	vm->env.kick_signal = opts && opts->kick_signal ? opts->kick_signal : vcpu_kick_signal();
	vm->shared_process = opts && opts->shared_process;
	atomic_init(&vm->env.stop, false);
}

/* The console first: the board's UART writes where it says. */
static int create_board(struct vm *vm)
{
	int rc = console_open(&vm->console, vm->cfg, &vm->log);
	if (rc < 0)
		return rc;
	const struct board_env env = {
		.pio = &vm->pio, .mmio = &vm->mmio, .log = &vm->log, .opts = vm->board_opts,
		.serial_out_fd = vm->console.out_fd,
		.serial_out_limit = console_out_limit(&vm->console),
		.set_irq = vm_set_irq, .request_exit = on_exit_request, .cookie = vm,
	};
	return board_create(&vm->board, &env);
}

/* Before anything is made: a program's own handler is never replaced. */
static int vm_kick_setup(struct vm *vm)
{
	int sig = vm->env.kick_signal;
	int rc = vcpu_kick_setup(sig);
	if (rc == -EBUSY)
		log_err(&vm->log, "vcpu", "kick signal %d (%s): the program handles or ignores it; "
			"choose another kick signal", sig, strsignal(sig));
	else if (rc < 0)
		log_err(&vm->log, "vcpu", "kick signal %d: %s", sig, strerror(-rc));
	return rc;
}

int vm_create(const struct vm_config *cfg, struct vm **out)
{
	return vm_create_with(cfg, NULL, out);
}

int vm_create_with(const struct vm_config *cfg, const struct vm_opts *opts, struct vm **out)
{
	struct vm *vm = calloc(1, sizeof(*vm));
	if (!vm)
		return -ENOMEM;
	vm_init_fields(vm, cfg, opts);
	int rc = vcpu_env_init(&vm->env);
	vm->env_ready = rc == 0;
	if (rc == 0)
		rc = vm_kick_setup(vm);
	if (rc == 0 && cfg->restore)
		rc = restore_open(vm); /* the whole snapshot checked before anything is built */
	if (rc == 0)
		rc = vm_jail_enter_cgroup(vm); /* before the RAM: it is charged there */
	if (rc == 0)
		rc = kvm_open(vm);
	if (rc == 0)
		rc = kvm_create_vm(vm);
	if (rc == 0) {
		irq_routing_init(&vm->routing, vm->vm_fd, &vm->log);
		vm->routing_ready = true;
		rc = vm_map_ram(vm);
	}
	if (rc == 0)
		rc = kvm_create_platform(vm);
	if (rc == 0)
		rc = vm_setup_loop(vm);
	if (rc == 0)
		vm_virtio_platform_init(vm);
	if (rc == 0)
		rc = create_board(vm);
	if (rc == 0)
		rc = vm_virtio_create(vm);
	if (rc == 0 && !cfg->restore)
		rc = vm_load_kernel(vm);
	if (rc == 0)
		rc = vm_create_vcpus(vm);
	if (rc == 0 && cfg->restore)
		rc = restore_apply(vm);
	if (rc == 0)
		rc = vm_metrics_start(vm);
	if (rc == 0)
		rc = vm_control_start(vm);
	if (rc == 0)
		rc = vm_jail_lock(vm); /* last: user=, capabilities, Landlock */
	if (rc < 0) {
		vm_destroy(vm);
		return rc;
	}
	*out = vm;
	return 0;
}

static int vm_start_vcpus(struct vm *vm)
{
	const char *what = NULL;
	int rc = vm->cfg->restore ? restore_start_clock(vm)
				  : regs_setup_boot_cpu(vm->vcpus[0].fd, &vm->boot, &what);
	if (rc < 0) {
		if (what)
			log_err(&vm->log, "vcpu", "vcpu 0: %s: %s", what, strerror(-rc));
		return rc;
	}
	for (unsigned i = 0; i < vm->nr_vcpus; i++) {
		rc = vcpu_start(&vm->vcpus[i]);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static void vm_stop_vcpus(struct vm *vm)
{
	atomic_store(&vm->env.stop, true);
	if (vm->env_ready)
		vcpu_env_resume(&vm->env); /* wakes parked threads to see stop */
	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		vcpu_kick(&vm->vcpus[i]);
	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		vcpu_join(&vm->vcpus[i]);
}

void vm_set_timeout_start(struct vm *vm, uint64_t start_ns)
{
	vm->timeout_start_ns = start_ns;
}

static int vm_arm_timer(struct vm *vm)
{
	if (vm->timer_fd < 0)
		return 0;
	struct itimerspec its = { .it_value = { .tv_sec = vm->cfg->timeout } };
	int flags = 0;
	if (vm->timeout_start_ns) {
		uint64_t end = vm->timeout_start_ns + (uint64_t)vm->cfg->timeout * 1000000000ull;
		its.it_value.tv_sec = (time_t)(end / 1000000000ull);
		its.it_value.tv_nsec = (long)(end % 1000000000ull);
		flags = TFD_TIMER_ABSTIME;
	}
	if (timerfd_settime(vm->timer_fd, flags, &its, NULL) < 0) {
		int e = errno;
		log_err(&vm->log, "vm", "timeout: timerfd_settime: %s", strerror(e));
		return -e;
	}
	return 0;
}

static int run_loop(struct vm *vm)
{
	vm->running = true;
	int rc = vm_arm_timer(vm);
	if (rc == 0)
		rc = console_start(&vm->console, vm->loop, vm->board.uart, on_exit_request, vm);
	if (rc == 0)
		rc = vm_start_vcpus(vm);
	if (rc == 0) /* after the vCPU threads: they must not inherit it */
		rc = vm_jail_event_thread(vm);
	if (rc < 0)
		vm_request_exit(vm, EXIT_VMM_ERROR, "start-up failed");
	while (vm->running) {
		rc = evloop_run_once(vm->loop, 100);
		if (rc < 0) {
			log_err(&vm->log, "vm", "epoll_wait: %s", strerror(-rc));
			vm_request_exit(vm, EXIT_VMM_ERROR, "event loop failed");
			break;
		}
		console_poll(&vm->console);
	}
	vm_stop_vcpus(vm);
	vm_metrics_flush(vm);
	console_stop(&vm->console);
	int code = atomic_load(&vm->exit_code);
	if (code == VM_RESTART && vm->cfg->on_reboot == ON_REBOOT_EXIT)
		code = EXIT_GUEST_POWEROFF;
	return code;
}

static void *event_thread(void *arg)
{
	struct vm *vm = arg;
	pthread_setname_np(pthread_self(), "event");
	vm->run_code = run_loop(vm);
	return NULL;
}

/* With seccomp the loop runs on a thread of the VM's own: a filter stays
 * with its thread for good, and the caller's thread must be able to create
 * the next VM (a restart, a library's next job). */
int vm_run(struct vm *vm)
{
	if (!vm->seccomp_on)
		return run_loop(vm);
	pthread_t t;
	int e = pthread_create(&t, NULL, event_thread, vm);
	if (e) {
		log_err(&vm->log, "vm", "creating the event thread: %s", strerror(e));
		return EXIT_VMM_ERROR;
	}
	pthread_join(t, NULL);
	return vm->run_code;
}

static void on_watch(void *cookie, uint32_t events)
{
	struct vm_watch *w = cookie;
	w->cb(w->vm, w->fd, w->cookie);
}

int vm_watch_fd(struct vm *vm, int fd, void (*cb)(struct vm *vm, int fd, void *cookie),
		void *cookie)
{
	if (vm->nr_watches == VM_MAX_WATCHES)
		return -ENOSPC;
	struct vm_watch *w = &vm->watches[vm->nr_watches];
	*w = (struct vm_watch){ .vm = vm, .fd = fd, .cb = cb, .cookie = cookie };
	int rc = evloop_add(vm->loop, fd, EPOLLIN, on_watch, w);
	if (rc == 0)
		vm->nr_watches++;
	return rc;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

void vm_destroy(struct vm *vm)
{
	if (!vm)
		return;
	vm_control_stop(vm);
	vm_stop_vcpus(vm);
	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		vcpu_destroy(&vm->vcpus[i]);
	free(vm->vcpus);
	vm_metrics_stop(vm);
	if (vm->env_ready)
		vcpu_env_destroy(&vm->env);
	restore_free(vm);
	vm_virtio_destroy(vm);
	board_destroy(&vm->board);
	console_close(&vm->console);
	evloop_destroy(vm->loop);
	close_fd(&vm->exit_fd);
	close_fd(&vm->timer_fd);
	close_fd(&vm->vm_fd);
	close_fd(&vm->kvm_fd);
	if (vm->routing_ready)
		irq_routing_destroy(&vm->routing);
	ram_destroy(&vm->ram);
	free(vm);
}
