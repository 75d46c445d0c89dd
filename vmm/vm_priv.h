/* The inside of struct vm, for vmm/ only. Devices never see it: they get
 * what they need (buses, guest memory, the event loop, interrupt lines)
 * through their create parameters.
 *
 * Ownership and threads: everything here is created and destroyed by the
 * VM's thread. After vm_run starts the vCPUs, only the fields marked
 * "shared" are touched by other threads; devices serialise their own state. */
#ifndef KVMRUN_VM_PRIV_H
#define KVMRUN_VM_PRIV_H

#include <stdatomic.h>
#include <stdbool.h>
#include <termios.h>

#include "cpu/boot.h"
#include "cpu/cpuid.h"
#include "cpu/vcpu.h"
#include "devices/bus.h"
#include "mem/ram.h"
#include "vmm/board.h"
#include "vmm/console.h"
#include "vmm/config.h"
#include "virtio/device.h"
#include "lib/evloop.h"
#include "vmm/irq_routing.h"
#include "vmm/metrics.h"
#include "lib/log.h"
#include "vmm/vm.h"

struct virtio_pci;
struct virtio_mmio;
struct virtio_blk;
struct virtio_balloon;
struct control;
struct net;
struct vsock;

struct restore;
struct state_w;
struct state_file;

#define VM_MAX_VIRTIO 16  /* virtio devices of one VM, all kinds */

#define VM_MAX_WATCHES 8

struct vm_watch {
	struct vm *vm;
	int fd;
	void (*cb)(struct vm *vm, int fd, void *cookie);
	void *cookie;
};

struct vm {
	const struct vm_config *cfg;
	struct logger log;

	int kvm_fd, vm_fd;
	struct ram ram;
	struct bus pio, mmio;
	struct evloop *loop;
	struct cpu_topology topo;

	struct vcpu_env env;          /* shared with vCPU threads */
	struct vcpu *vcpus;
	unsigned nr_vcpus;

	struct irq_routing routing;
	bool routing_ready;
	struct virtio_platform vplat; /* hooks for every virtio device */

	struct boot_entry boot;
	uint64_t rsdp_gpa;

	/* the platform devices (vmm/board.c keeps their ordered table) */
	struct board_opts board_opts;
	struct board board;
	struct console console;       /* the UART's host side */

	/* virtio devices and their transports (vm_virtio.c) */
	struct virtio_blk *disks[CONFIG_MAX_DISKS];
	struct virtio_mmio *mmio_devs[VM_MAX_VIRTIO];
	uint64_t mmio_base[VM_MAX_VIRTIO];
	unsigned mmio_gsi[VM_MAX_VIRTIO];
	unsigned nr_mmio;
	struct virtio_pci *pci_devs[VM_MAX_VIRTIO];
	unsigned nr_pci;

	int exit_fd;                  /* eventfd: an exit was requested */
	int timer_fd;                 /* timeout=, or -1 */
	uint64_t timeout_start_ns;    /* 0: timeout counts from vm_run */
	atomic_int exit_code;         /* shared: -1 until the first request */
	bool running;

	struct vm_watch watches[VM_MAX_WATCHES];
	unsigned nr_watches;

	struct net *nets[CONFIG_MAX_NETS]; /* virtio-net devices (vm_virtio.c) */

	bool env_ready;                 /* env's lock and cond exist */
	bool paused;                    /* vm_pause() (vm_pause.c) */
	uint64_t paused_clock;          /* KVM_GET_CLOCK at the pause; a restore's clock */
	bool restore_clock;             /* restore_start_clock() still to set it */
	struct restore *restore;        /* restore=DIR, until restore_apply is done */

	struct virtio_balloon *balloon; /* balloon=on (vm_virtio.c) */
	struct vsock *vsock;            /* vsock.cid=N (vm_virtio.c) */
	struct control *control;        /* control=PATH (vm.c) */
	struct vm_metrics metrics;      /* vmm/metrics.c */

	bool shared_process;            /* vm_opts: a program's threads share the process */
	bool seccomp_on;                /* seccomp=on and the kernel has it (vm_jail.c) */
	bool event_filtered;            /* the event thread's filter is on */
	int run_code;                   /* vm_run's result, from the event thread */
};

/* Loads the kernel (and initrd) per cfg into RAM and sets vm->boot. */
__attribute__((warn_unused_result))
int vm_load_kernel(struct vm *vm);

/* Fills vm->vplat (vm_virtio.c); after the event loop exists. */
void vm_virtio_platform_init(struct vm *vm);
/* Creates the configured virtio devices with their transports; before the
 * kernel is loaded (the ACPI tables list the virtio-mmio slots). */
__attribute__((warn_unused_result))
int vm_virtio_create(struct vm *vm);
void vm_virtio_destroy(struct vm *vm);
/* The PCI side (vm_virtio_pci.c): one function per device, on the
 * board's host bridge. */
__attribute__((warn_unused_result))
int vm_virtio_attach_pci(struct vm *vm, struct virtio_dev *d);
void vm_virtio_detach_pci(struct vm *vm);

/* The jail (vm_jail.c): the cgroup, first in vm_create, before anything
 * is allocated; the process-level layers (no new privileges, user=,
 * capabilities, Landlock), last in vm_create; the seccomp filters, on
 * each vCPU thread before its first KVM_RUN (vcpu_env.thread_start) and
 * on the event thread in vm_run once the vCPU threads exist. */
__attribute__((warn_unused_result))
int vm_jail_enter_cgroup(struct vm *vm);
__attribute__((warn_unused_result))
int vm_jail_lock(struct vm *vm);
int vm_jail_vcpu_thread(void *cookie, unsigned index);
__attribute__((warn_unused_result))
int vm_jail_event_thread(struct vm *vm);

/* ---- pause, snapshot, restore ---- */

/* vm_pause / vm_resume with the reason for a failure in @err (vm_pause.c). */
__attribute__((warn_unused_result))
int vm_pause_why(struct vm *vm, char *err, size_t len);
__attribute__((warn_unused_result))
int vm_resume_why(struct vm *vm, char *err, size_t len);

/* restore=DIR (restore.c). restore_open reads and validates the whole
 * snapshot (header, state file, memory file's size) into vm->restore
 * before anything is created; restore_memory_path names its memory file
 * for vm_map_ram; restore_apply, once the devices and vCPUs exist, loads
 * the board's, the virtio devices', the VM's and the vCPUs' state.
 * restore_free drops vm->restore (NULL: no-op). Errors are logged. */
__attribute__((warn_unused_result))
int restore_open(struct vm *vm);
const char *restore_memory_path(const struct vm *vm);
__attribute__((warn_unused_result))
int restore_apply(struct vm *vm);
/* Sets the snapshot's kvm-clock, right before the vCPUs first run. */
__attribute__((warn_unused_result))
int restore_start_clock(struct vm *vm);
void restore_free(struct vm *vm);

/* The virtio side of pause and snapshots (vm_virtio_state.c). quiesce:
 * stop taking kicks, let requests in flight complete; unquiesce undoes it.
 * can_snapshot: 0, or -ENOTSUP with why not in @why (vhost-net mid-flight).
 * save/load: the virtio devices' state sections. */
void vm_virtio_quiesce(struct vm *vm);
void vm_virtio_unquiesce(struct vm *vm);
int vm_virtio_can_snapshot(struct vm *vm, char *why, size_t len);
int vm_virtio_save(struct vm *vm, struct state_w *w);
int vm_virtio_load(struct vm *vm, const struct state_file *f, char *err, size_t len);

#endif
