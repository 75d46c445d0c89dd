/* The platform devices of every VM, in one ordered table, and the serial
 * console's host side (stdio with a raw terminal, a file, or nothing). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <termios.h>
#include <unistd.h>

#include "cpu/layout.h"
#include "devices/acpi_pm.h"
#include "devices/debug_exit.h"
#include "devices/i8042.h"
#include "devices/mc146818.h"
#include "devices/ns16550.h"
#include "devices/pvpanic.h"
#include "lib/exitcode.h"
#include "vmm/vm_priv.h"

#define CTRL_A 0x01

static void on_reset_request(void *cookie)
{
	vm_request_exit(cookie, VM_RESTART, "guest requested a reset");
}

static void on_poweroff(void *cookie)
{
	vm_request_exit(cookie, EXIT_GUEST_POWEROFF, "guest powered off");
}

static void on_debug_exit(void *cookie, int code)
{
	vm_request_exit(cookie, code, "guest wrote to the debug-exit port");
}

/* A crash-kernel-loaded event is only information; a panic ends the VM. */
static void on_pvpanic(void *cookie, uint8_t events)
{
	if (events & PVPANIC_PANICKED)
		vm_request_exit(cookie, EXIT_GUEST_CRASH, "guest kernel panic (pvpanic)");
}

static int open_serial_out(struct vm *vm)
{
	switch (vm->cfg->serial) {
	case SERIAL_STDIO:
		return STDOUT_FILENO;
	case SERIAL_NONE:
		return -1;
	case SERIAL_FILE:
		break;
	}
	/* The console may carry secrets: 0600 (and the umask). A symbolic
	 * link is not followed (a link planted where a CI job writes its log
	 * must not make kvmrun truncate what it points to); O_NONBLOCK keeps
	 * a FIFO from stalling the open, and a slow one the vCPUs. */
	vm->serial_out_fd = open(vm->cfg->serial_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC |
				 O_NOFOLLOW | O_NOCTTY | O_NONBLOCK, 0600);
	if (vm->serial_out_fd < 0) {
		int e = errno;
		log_err(&vm->log, "serial", "serial=file:%s: %s", vm->cfg->serial_path,
			e == ELOOP ? "is a symbolic link (not followed: name the file itself)"
				   : strerror(e));
		return -e - 1000; /* keep -1 meaning "none" distinct from failure */
	}
	return vm->serial_out_fd;
}

static int create_uart(struct vm *vm)
{
	int out = open_serial_out(vm);
	if (out < -1)
		return out + 1000;
	struct ns16550_params p = {
		.irq = { .set = vm_set_irq, .cookie = vm, .gsi = GSI_COM1 },
		.out_fd = out, .log = &vm->log, .name = "ttyS0",
		/* a guest printing in a loop must not fill the host's disk */
		.out_limit = vm->cfg->serial == SERIAL_FILE ? vm->cfg->serial_max_size : 0,
		.out_limit_key = "serial.max_size",
	};
	return ns16550_create(&vm->pio, PORT_COM1, &p, &vm->uart);
}

static int create_i8042(struct vm *vm)
{
	struct i8042_params p = { .reset = on_reset_request, .cookie = vm, .log = &vm->log };
	return i8042_create(&vm->pio, &p, &vm->i8042);
}

static int create_rtc(struct vm *vm)
{
	struct mc146818_params p = { .log = &vm->log };
	return mc146818_create(&vm->pio, &p, &vm->rtc);
}

static int create_acpi_pm(struct vm *vm)
{
	struct acpi_pm_params p = {
		.poweroff = on_poweroff, .reset = on_reset_request, .cookie = vm,
		.log = &vm->log,
		.sci = { .set = vm_set_irq, .cookie = vm, .gsi = GSI_ACPI_SCI },
	};
	/* with a PCI host bridge, 0xcf9 is inside its ports and forwarded */
	p.reset_port_forwarded = vm->cfg->transport == TRANSPORT_PCI;
	return acpi_pm_create(&vm->pio, &p, &vm->acpi_pm);
}

static int create_debug_exit(struct vm *vm)
{
	if (!vm->cfg->debug_exit)
		return 0;
	struct debug_exit_params p = { .exit = on_debug_exit, .cookie = vm, .log = &vm->log };
	return debug_exit_create(&vm->pio, PORT_DEBUG_EXIT, &p, &vm->debug_exit);
}

static int create_pvpanic(struct vm *vm)
{
	struct pvpanic_params p = { .event = on_pvpanic, .cookie = vm, .log = &vm->log };
	return pvpanic_create(&vm->pio, PORT_PVPANIC, &p, &vm->pvpanic);
}

static void destroy_pvpanic(struct vm *vm)
{
	pvpanic_destroy(vm->pvpanic);
	vm->pvpanic = NULL;
}

static void destroy_uart(struct vm *vm) { ns16550_destroy(vm->uart); vm->uart = NULL; }
static void destroy_i8042(struct vm *vm) { i8042_destroy(vm->i8042); vm->i8042 = NULL; }
static void destroy_rtc(struct vm *vm) { mc146818_destroy(vm->rtc); vm->rtc = NULL; }
static void destroy_acpi_pm(struct vm *vm) { acpi_pm_destroy(vm->acpi_pm); vm->acpi_pm = NULL; }
static void destroy_debug_exit(struct vm *vm)
{
	if (vm->debug_exit)
		debug_exit_destroy(vm->debug_exit);
	vm->debug_exit = NULL;
}

/* Created top to bottom, destroyed bottom to top. */
static const struct {
	const char *name;
	int (*create)(struct vm *vm);
	void (*destroy)(struct vm *vm);
} platform_devices[] = {
	{ "serial (16550A)", create_uart, destroy_uart },
	{ "i8042", create_i8042, destroy_i8042 },
	{ "rtc (mc146818)", create_rtc, destroy_rtc },
	{ "acpi-pm", create_acpi_pm, destroy_acpi_pm },
	{ "debug-exit", create_debug_exit, destroy_debug_exit },
	{ "pvpanic", create_pvpanic, destroy_pvpanic },
	{ "pci host bridge", vm_pci_create, vm_pci_destroy },
};
#define NR_PLATFORM_DEVICES (sizeof(platform_devices) / sizeof(platform_devices[0]))

int vm_devices_create(struct vm *vm)
{
	for (size_t i = 0; i < NR_PLATFORM_DEVICES; i++) {
		int rc = platform_devices[i].create(vm);
		if (rc < 0) {
			log_err(&vm->log, "vm", "creating %s: %s", platform_devices[i].name,
				strerror(-rc));
			return rc;
		}
	}
	return 0;
}

void vm_devices_destroy(struct vm *vm)
{
	for (size_t i = NR_PLATFORM_DEVICES; i-- > 0;)
		platform_devices[i].destroy(vm);
	if (vm->serial_out_fd >= 0)
		close(vm->serial_out_fd);
	vm->serial_out_fd = -1;
}

/* Feeds what the UART has room for; the rest waits in rx_pending. */
static void serial_flush_pending(struct vm *vm)
{
	size_t took = ns16550_input(vm->uart, vm->rx_pending, vm->rx_pending_len);
	memmove(vm->rx_pending, vm->rx_pending + took, vm->rx_pending_len - took);
	vm->rx_pending_len -= took;
}

/* Ctrl-A x quits (like QEMU's -serial stdio); Ctrl-A Ctrl-A sends one Ctrl-A. */
static size_t serial_filter_escape(struct vm *vm, uint8_t *buf, size_t n)
{
	size_t w = 0;
	for (size_t i = 0; i < n; i++) {
		if (vm->escape_pending) {
			vm->escape_pending = false;
			if (buf[i] == 'x') {
				vm_request_exit(vm, EXIT_SIGNAL_BASE + SIGINT, "Ctrl-A x on the console");
				return w;
			}
			if (buf[i] != CTRL_A)
				continue;
		} else if (buf[i] == CTRL_A && vm->term_raw) {
			vm->escape_pending = true;
			continue;
		}
		buf[w++] = buf[i];
	}
	return w;
}

static void on_stdin(void *cookie, uint32_t events)
{
	struct vm *vm = cookie;
	uint8_t buf[sizeof(vm->rx_pending)];
	ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
	if (n <= 0) {
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		/* EOF or error: the console has no more input to give */
		evloop_del(vm->loop, STDIN_FILENO);
		vm->serial_stdin = false;
		return;
	}
	size_t len = serial_filter_escape(vm, buf, (size_t)n);
	memcpy(vm->rx_pending, buf, len);
	vm->rx_pending_len = len;
	serial_flush_pending(vm);
	/* The guest is not reading: stop reading stdin until it has room
	 * (vm_serial_poll), so the input is not lost and we do not spin. */
	if (vm->rx_pending_len)
		evloop_mod(vm->loop, STDIN_FILENO, 0);
}

void vm_serial_poll(struct vm *vm)
{
	/* output a slow reader did not take yet (the UART holds it) */
	if (vm->uart)
		ns16550_flush(vm->uart);
	if (!vm->serial_stdin || vm->rx_pending_len == 0)
		return;
	serial_flush_pending(vm);
	if (vm->rx_pending_len == 0)
		evloop_mod(vm->loop, STDIN_FILENO, EPOLLIN);
}

static void terminal_make_raw(struct vm *vm)
{
	if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &vm->term_saved) < 0)
		return;
	struct termios raw = vm->term_saved;
	cfmakeraw(&raw);
	raw.c_oflag |= OPOST | ONLCR; /* keep the host's line endings sane */
	if (tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0)
		vm->term_raw = true;
}

int vm_serial_start(struct vm *vm)
{
	if (vm->cfg->serial != SERIAL_STDIO)
		return 0;
	/* Input is optional: with no usable stdin the guest simply gets none. */
	if (evloop_add(vm->loop, STDIN_FILENO, EPOLLIN, on_stdin, vm) < 0)
		return 0;
	vm->serial_stdin = true;
	terminal_make_raw(vm);
	return 0;
}

void vm_serial_stop(struct vm *vm)
{
	if (vm->uart) {
		uint64_t lost = ns16550_flush(vm->uart) + ns16550_dropped(vm->uart);
		if (lost)
			log_warn(&vm->log, "serial", "%llu bytes of console output were dropped "
				 "(not read in time, or past serial.max_size)", (unsigned long long)lost);
	}
	if (vm->serial_stdin)
		evloop_del(vm->loop, STDIN_FILENO);
	vm->serial_stdin = false;
	if (vm->term_raw)
		tcsetattr(STDIN_FILENO, TCSANOW, &vm->term_saved);
	vm->term_raw = false;
}
