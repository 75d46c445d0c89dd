/* The VM configuration: one flat key=value namespace, from a file and from
 * command-line overrides, validated in full before anything is created.
 *
 * Errors are collected, not fatal one by one: each is printed to diag->out as
 * "FILE:LINE: KEY: message" (the command line is "<command line>" with the
 * argument's position as LINE), and counted; the caller fails once at the
 * end if diag->errors is non-zero. Nothing here opens /dev/kvm or any file
 * other than the config file itself (and /sys/devices/system/cpu/online).
 *
 * File syntax, one setting a line:
 *   - blank lines are ignored; a line whose first non-blank character is '#'
 *     is a comment. There are no trailing comments: "cmdline=a # b" sets
 *     cmdline to "a # b" (values may contain '#').
 *   - "key = value": whitespace around the key, the '=' and the value is
 *     trimmed; CRLF line ends are accepted.
 *   - a value starting with '"' is quoted: it runs to the closing '"' (only
 *     blanks may follow), and inside it \\ \" \n \r \t and \xHH are
 *     escapes. Unquoted values are taken literally (backslash included).
 *   - an empty value resets a string key to unset (initrd=, net0.mac=, ...);
 *     cpu_affinity= means not pinned; cpu_topology=auto (or empty) means
 *     1:cpus:1; mem_numa_node=none (or empty) means no binding (-1);
 *     control=none means no control socket, and an empty control= is an
 *     error (a script's unset variable must not silently drop the socket).
 *   - lines longer than CONFIG_MAX_LINE bytes, lines with NUL bytes and files
 *     larger than CONFIG_MAX_FILE_SIZE are errors.
 * A command-line argument uses the same "key=value" syntax (quotes included).
 *
 * Relative paths (kernel, initrd, control, diskN.path, serial=file:PATH) read
 * from a config FILE are resolved against that file's directory and stored
 * as absolute paths (the directory goes through realpath(3)), so printed
 * configs load the same from anywhere. Paths given on the command line or
 * through config_set() are stored as given (relative to the cwd);
 * config_print() shows those joined to the cwd, the path in effect. */
#ifndef KVMRUN_CONFIG_H
#define KVMRUN_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "block/engine.h"
#include "block/image.h"
#include "lib/log.h"
#include "mem/ram.h"
#include "net/net.h"
#include "vsock/vsock.h"
#include "vmm/config_value.h"

#define CONFIG_MAX_CPUS 64
#define CONFIG_MAX_DISKS 8
#define CONFIG_MAX_NETS 4
#define CONFIG_DEFAULT_SERIAL_MAX_SIZE (1ull << 30) /* serial.max_size: 1G */

#define CONFIG_MAX_LINE (64 * 1024)        /* bytes in one line */
#define CONFIG_MAX_FILE_SIZE (1024 * 1024) /* bytes in one config file */
#define CONFIG_CMDLINE_FILE "<command line>" /* FILE label of overrides */

/* Where a key got its value, for messages of cross-key checks and for
 * duplicate detection: the FILE label and LINE it was set at. file == NULL
 * means the key still has its default. Maintained by config.c only. */
struct config_origin {
	char *file;
	unsigned line;
};

#define CONFIG_VM_KEYS 80  /* room for the per-VM keys' origins */
#define CONFIG_DEV_KEYS 24  /* room for one diskN./netN. key set's origins */

enum serial_mode { SERIAL_STDIO, SERIAL_FILE, SERIAL_NONE };
enum transport { TRANSPORT_PCI, TRANSPORT_MMIO };
enum on_reboot { ON_REBOOT_EXIT, ON_REBOOT_RESTART };

struct disk_config {
	bool present;          /* some diskN.* key was given */
	char *path;            /* required when present */
	bool readonly;         /* default off */
	enum disk_cache cache; /* default none (O_DIRECT) */
	enum disk_io io;       /* default io_uring */
	unsigned queues;       /* 0 = one per vCPU */
	unsigned submit_batch; /* requests per io_uring submit, 1..ENGINE_MAX_SUBMIT_BATCH;
				* default ENGINE_DEFAULT_SUBMIT_BATCH */
	char *serial;          /* VIRTIO_BLK_T_GET_ID string; NULL = derived from name */
	unsigned iops, iops_burst;          /* requests a second; 0 = unlimited */
	uint64_t bandwidth, bandwidth_burst; /* data bytes a second; 0 = unlimited */
	enum overlay_kind overlay; /* default none (block/overlay.h) */
	char *overlay_path;    /* OVERLAY_FILE */
	uint64_t overlay_max;  /* bytes; 0 = OVERLAY_DEFAULT_MEM_MAX (memory), no limit (file) */
	bool overlay_keep;     /* keep the overlay file at exit; default off */
	struct config_origin origin[CONFIG_DEV_KEYS]; /* private to config.c */
};

struct net_config {
	bool present;
	char *tap;             /* required when present */
	uint8_t mac[6];
	bool mac_set;          /* else derived from the VM name */
	enum net_vhost vhost;  /* default auto */
	unsigned queues;       /* queue pairs; default 1 */
	unsigned mtu;          /* default 1500 */
	uint64_t bandwidth, bandwidth_burst; /* bytes a second each way; 0 = unlimited
					      * (userspace backend only) */
	struct config_origin origin[CONFIG_DEV_KEYS]; /* private to config.c */
};

struct vm_config {
	char *kernel;          /* required */
	char *initrd;
	char *cmdline;

	unsigned cpus;                       /* default 1, 1..CONFIG_MAX_CPUS */
	unsigned cpu_affinity[CONFIG_MAX_CPUS];
	unsigned nr_cpu_affinity;            /* 0 = not pinned */
	unsigned sockets, cores, threads;    /* cpu_topology; default 1:cpus:1 */
	bool topology_set;

	uint64_t mem;                        /* bytes; default 128M */
	enum hugepages mem_hugepages;        /* off | on (=2M) | 2M | 1G */
	int mem_numa_node;                   /* -1 = no binding */
	bool mem_prefault, mem_thp, mem_merge;
	bool mem_overcommit;                 /* allow mem beyond the host's RAM + swap */

	enum serial_mode serial;             /* default stdio */
	char *serial_path;                   /* serial=file:PATH */
	uint64_t serial_max_size;            /* bytes serial=file: writes at most; 0: no limit */

	struct disk_config disks[CONFIG_MAX_DISKS];
	struct net_config nets[CONFIG_MAX_NETS];

	bool balloon;
	unsigned balloon_stats_period;       /* seconds, 0 = off */
	bool balloon_free_page_reporting;
	bool balloon_deflate_on_oom;
	bool balloon_hugepage_giveback;      /* default off: hugepages stay reserved */

	unsigned vsock_cid;                  /* 0 = no vsock device; else VSOCK_CID_MIN.. */
	enum vsock_backend vsock_backend;    /* default auto */
	char *vsock_uds;                     /* the userspace backend's Unix socket */

	enum transport transport;            /* default pci */
	char *control;                       /* control socket path, or NULL (control=none;
					      * an empty control= is an error) */

	unsigned timeout;                    /* seconds, 0 = none */
	enum on_reboot on_reboot;            /* default exit */
	bool debug_exit;                     /* default off */
	enum log_level log_level;            /* default warn */
	bool drop_caps;                      /* default on */
	/* the jail (vmm/jail.h, vmm/seccomp.h, vmm/landlock.h, vmm/cgroup.h) */
	bool seccomp;                        /* default on (where the kernel has it) */
	char *user, *group;                  /* user=, group=: switch to them, or NULL */
	bool landlock;                       /* default off */
	char *cgroup;                        /* cgroup=PATH, or NULL */
	char *cgroup_cpu_max, *cgroup_memory_max, *cgroup_io_max; /* passthroughs, or NULL */
	char *name;                          /* default "kvmrun" (never NULL) */
	char *restore;                       /* restore=DIR: a snapshot directory, or NULL */
	char *snapshot_dir;                  /* where snapshot path= may write, or NULL (anywhere;
					      * with landlock=on, nowhere) */
	bool restore_prefault;               /* restore.prefault: read the memory file in */

	bool metrics;                        /* default on: time requests, count exits */
	char *metrics_file;                  /* append a metrics line per period, or NULL */
	unsigned metrics_period_ms;          /* default 10000 */

	struct config_origin origin[CONFIG_VM_KEYS]; /* private to config.c */
};

/* Where errors go and how many there were. */
struct config_diag {
	FILE *out;
	unsigned errors;
};

/* Fills in every default. Owns no memory until a string key is set (the
 * default name is a static string that config_free() knows not to free). */
void config_init(struct vm_config *c);
/* Frees every string and origin record, then leaves the struct as
 * config_init() does, so it may be reused or config_init()ed again. */
void config_free(struct vm_config *c);

/* Reads a config file. A missing or unreadable file is one error naming it.
 * Duplicate keys within one file are errors. Returns 0 or -EINVAL when any
 * error was reported (the other lines are still applied and checked). */
int config_load_file(struct vm_config *c, const char *path, struct config_diag *d);

/* Applies one "key=value" argument from the command line; @position is its
 * index among the arguments, used as the LINE in messages. Overrides the
 * file; the same key twice on the command line is an error, and so is an
 * argument without '='. Relative paths are kept as given. */
int config_apply_arg(struct vm_config *c, const char *arg, unsigned position,
		     struct config_diag *d);

/* Sets one key (the parser's core, exposed for tests and the library API).
 * @file/@line label messages and the key's origin; setting a key a second
 * time with the same @file label is a duplicate-key error (the first value
 * stays). @value is taken literally (no quote handling, no path resolution);
 * an empty @value unsets a string key. */
int config_set(struct vm_config *c, const char *key, const char *value,
	       const char *file, unsigned line, struct config_diag *d);

/* Cross-key checks once everything is applied: kernel present, affinity list
 * long enough and naming online CPUs, topology product == cpus, disks have a
 * path, ... Fills in the default topology (1:cpus:1) when cpu_topology was
 * not set. Messages name the key and where it was set ("(default)" for a key
 * never set). Returns 0 or -EINVAL. */
int config_validate(struct vm_config *c, struct config_diag *d);

/* Kernels and initrds larger than this are refused (surely a mistake). */
#define CONFIG_MAX_BOOT_FILE (1ull << 30)

/* What a configuration is checked against on this host. */
struct config_host {
	uint64_t ram;          /* bytes of RAM (sysinfo totalram) */
	uint64_t swap;         /* bytes of swap (sysinfo totalswap) */
	unsigned phys_bits;    /* physical address bits of the CPU (CPUID 0x80000008) */
};

/* Fills @h for this host. Returns 0 or -errno (sysinfo). */
int config_host_probe(struct config_host *h);

/* The checks of a validated configuration against the host it is to run
 * on, for --check and before a VM starts (not for --print-config, nor the
 * golden test of the example configs, whose files are elsewhere):
 *   - kernel and initrd are readable regular files, not empty and at most
 *     CONFIG_MAX_BOOT_FILE; each diskN.path a regular file or block device,
 *     readable, and writable unless readonly (a missing file, a directory
 *     or a FIFO is an error naming the key);
 *   - mem is at most what the host could ever back: its RAM plus swap
 *     (RAM alone with mem_hugepages), unless mem_overcommit=on; and in any
 *     case guest RAM (above 3 GiB it continues at 4 GiB) fits below
 *     2^phys_bits, the guest-physical address space.
 * Errors are reported like config_validate()'s. Returns 0 or -EINVAL. */
int config_check_host(struct vm_config *c, const struct config_host *h, struct config_diag *d);

/* Prints the effective configuration, one key=value a line, in a form
 * config_load_file() reads back to the same config: every per-VM key
 * (defaults included) in a fixed order, then the keys of each present disk
 * and net device. Values that need it are quoted; relative paths are
 * printed joined to the cwd. */
void config_print(const struct vm_config *c, FILE *out);

/* restore=DIR (vmm/config_restore.c). A restored VM's configuration is
 * the snapshot's: config_restore_load() reads DIR/config (what
 * config_print wrote when the snapshot was taken) in place of a config
 * file, and drops its control socket (the snapshotted VM may still hold
 * it; give control= anew). Command-line arguments then override it, and
 * config_restore_check() refuses every key given there that cannot change
 * across a restore: only restore, restore.prefault, control, serial,
 * serial.max_size, timeout, cpu_affinity, log_level, on_reboot, drop_caps,
 * name, diskN.path (the same image: its size is checked), diskN.overlay*
 * and netN.tap may be given. Both return 0 or -EINVAL (reported). */
int config_restore_load(struct vm_config *c, const char *dir, struct config_diag *d);
int config_restore_check(struct vm_config *c, struct config_diag *d);

/* The value parsers (config_parse_size(), _bool(), _uint(), _mac()) and
 * config_fmt_size(), shared with tests: vmm/config_value.h. */

/* The valid key closest to @key by edit distance, for "did you mean";
 * NULL when nothing is close. Indexed keys are matched with their index
 * (disk3.pth -> disk3.path). Close means an edit distance (with
 * transpositions) of at most max(2, strlen(key) / 3), or one being a prefix
 * of the other (memory -> mem). Writes the key into @buf and returns @buf. */
const char *config_suggest_key(const char *key, char *buf, size_t buflen);

#endif
