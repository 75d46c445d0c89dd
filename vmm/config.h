/* The VM configuration: one flat key=value namespace, from a file and from
 * command-line overrides, validated in full before anything is created.
 *
 * Errors are collected, not fatal one by one: each is printed to diag->out as
 * "FILE:LINE: KEY: message" (the command line is "<command line>" with the
 * argument's position as LINE), and counted; the caller fails once at the
 * end if diag->errors is non-zero. Nothing here opens /dev/kvm or any file
 * other than the config file itself. */
#ifndef KVMRUN_CONFIG_H
#define KVMRUN_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "vmm/log.h"

#define CONFIG_MAX_CPUS 64
#define CONFIG_MAX_DISKS 8
#define CONFIG_MAX_NETS 4

enum serial_mode { SERIAL_STDIO, SERIAL_FILE, SERIAL_NONE };
enum hugepages { HUGEPAGES_OFF, HUGEPAGES_2M, HUGEPAGES_1G };
enum disk_cache { DISK_CACHE_NONE, DISK_CACHE_WRITEBACK };
enum disk_io { DISK_IO_URING, DISK_IO_SYNC };
enum tristate { TRISTATE_AUTO, TRISTATE_ON, TRISTATE_OFF };
enum transport { TRANSPORT_PCI, TRANSPORT_MMIO };
enum on_reboot { ON_REBOOT_EXIT, ON_REBOOT_RESTART };

struct disk_config {
	bool present;          /* some diskN.* key was given */
	char *path;            /* required when present */
	bool readonly;         /* default off */
	enum disk_cache cache; /* default none (O_DIRECT) */
	enum disk_io io;       /* default io_uring */
	unsigned queues;       /* 0 = one per vCPU */
	char *serial;          /* VIRTIO_BLK_T_GET_ID string; NULL = derived from name */
};

struct net_config {
	bool present;
	char *tap;             /* required when present */
	uint8_t mac[6];
	bool mac_set;          /* else derived from the VM name */
	enum tristate vhost;   /* default auto */
	unsigned queues;       /* queue pairs; default 1 */
	unsigned mtu;          /* default 1500 */
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

	enum serial_mode serial;             /* default stdio */
	char *serial_path;                   /* serial=file:PATH */

	struct disk_config disks[CONFIG_MAX_DISKS];
	struct net_config nets[CONFIG_MAX_NETS];

	bool balloon;
	unsigned balloon_stats_period;       /* seconds, 0 = off */
	bool balloon_free_page_reporting;
	bool balloon_deflate_on_oom;

	enum transport transport;            /* default pci */
	char *control;                       /* control socket path, or NULL */

	unsigned timeout;                    /* seconds, 0 = none */
	enum on_reboot on_reboot;            /* default exit */
	bool debug_exit;                     /* default off */
	enum log_level log_level;            /* default warn */
	bool drop_caps;                      /* default on */
	char *name;                          /* default "kvmrun" */
};

/* Where errors go and how many there were. */
struct config_diag {
	FILE *out;
	unsigned errors;
};

/* Fills in every default. Owns no memory until a string key is set. */
void config_init(struct vm_config *c);
/* Frees every string; the struct may then be config_init()ed again. */
void config_free(struct vm_config *c);

/* Reads a config file. A missing or unreadable file is one error naming it.
 * Duplicate keys within one file are errors. Returns 0 or -EINVAL when any
 * error was reported (the other lines are still applied and checked). */
int config_load_file(struct vm_config *c, const char *path, struct config_diag *d);

/* Applies one "key=value" argument from the command line; @position is its
 * index among the arguments, used as the LINE in messages. Overrides the
 * file; the same key twice on the command line is an error. */
int config_apply_arg(struct vm_config *c, const char *arg, unsigned position,
		     struct config_diag *d);

/* Sets one key (the parser's core, exposed for tests and the library API).
 * @file/@line only label messages. */
int config_set(struct vm_config *c, const char *key, const char *value,
	       const char *file, unsigned line, struct config_diag *d);

/* Cross-key checks once everything is applied: kernel present, affinity list
 * long enough and naming online CPUs, topology product == cpus, disks have a
 * path, ... Returns 0 or -EINVAL. */
int config_validate(struct vm_config *c, struct config_diag *d);

/* Prints the effective configuration, one key=value a line, in a form
 * config_load_file() reads back to the same config. */
void config_print(const struct vm_config *c, FILE *out);

/* Value parsers, shared with tests. Each returns 0 or -EINVAL/-ERANGE. */
int config_parse_size(const char *s, uint64_t *out);        /* 512, 64K, 128M, 2G, 1T */
int config_parse_bool(const char *s, bool *out);             /* on/off (also yes/no, true/false, 1/0) */
int config_parse_uint(const char *s, uint64_t max, uint64_t *out);
int config_parse_mac(const char *s, uint8_t mac[6]);

/* The valid key closest to @key by edit distance, for "did you mean";
 * NULL when nothing is close. Indexed keys are matched with their index. */
const char *config_suggest_key(const char *key, char *buf, size_t buflen);

#endif
