/* The control socket: a Unix stream socket (config key control=PATH) on
 * which a CI farm's tooling, or `kvmrun ctl`, talks to a running VM.
 *
 * Protocol: one request line in, one response line out, in order. A line
 * is at most CONTROL_MAX_LINE bytes before its '\n' ('\r\n' is accepted).
 * A request is a command word and key=value arguments separated by blanks;
 * a response is "ok" followed by key=value fields, or "error MESSAGE".
 * Sizes are written exactly, the way the config reads them: an integer with
 * the largest K/M/G/T suffix that divides it (256M, 1536K, 0, 4097).
 *
 *   status                 ok state=running name= cpus= mem= uptime_ms= transport=
 *                          balloon=on|off [balloon_target= balloon_actual=]
 *                          + the fields of `memory`
 *   memory                 ok ram= page_size= ram_rss= hugetlb= thp= swap=
 *                          numa_policy= numa_nodes=0,1|none numa_pages=N0:123,..
 *                          merge=on|off ksm_merged_pages=N|unknown
 *   balloon [target=SIZE]  ok target= actual=   (sets num_pages first when given;
 *                          answers at once, the guest inflates in its own time)
 *   balloon-stats          ok target= actual= inflated= host_freed= reported=
 *                          bad_pfns= duplicate_pfns= live=yes|no
 *                          stats_age_ms=N swap_in= swap_out= major_faults=
 *                          minor_faults= free_memory= total_memory=
 *                          available_memory= disk_caches= ... (the tags the
 *                          guest sent), or stats=none before the first
 *   stop                   ok stopping   (then the VM ends with exit code 0)
 *   help                   ok commands=status,memory,balloon,balloon-stats,stop,help
 *
 * A malformed request (unknown command or key, a bad size, arguments to a
 * command that takes none, a NUL byte) is answered "error ..." and changes
 * nothing. A line longer than CONTROL_MAX_LINE is answered
 * "error line too long" and the connection is closed.
 *
 * Robustness: sockets are non-blocking and everything runs on the VM's
 * event loop; a client whose unread responses pass CONTROL_OUT_MAX bytes
 * is dropped; a connection idle (nothing received) for the idle timeout
 * (CONTROL_IDLE_TIMEOUT_MS by default) is closed; at most
 * CONTROL_MAX_CLIENTS connections at once, and when a new one arrives with
 * every slot taken, the connection idle the longest is closed to make room
 * for it, so scripts that leave connections open never lock a client out.
 *
 * Access: the socket is made mode 0600 before it is bound (fchmod on the
 * socket, so no window and no path that could be a symbolic link), and a
 * connection is served only if SO_PEERCRED says its process runs as this
 * one's effective uid, or as root; others get "error permission denied".
 * Both hold even when the socket's directory is more open than it should.
 *
 * The path: while it runs, a server holds an exclusive flock(2) on
 * PATH.lock (created 0600, not through a symbolic link, removed at the
 * end). A socket file at PATH is replaced only by the holder of that lock
 * and only if nothing accepts connections on it, so two VMs starting on
 * the same path cannot both take it, nor one remove the other's socket
 * between its bind() and its listen().
 *
 * Threads: the event thread only (create, destroy, every callback). */
#ifndef KVMRUN_CONTROL_H
#define KVMRUN_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "virtio/balloon.h"
#include "lib/evloop.h"
#include "lib/log.h"

#define CONTROL_MAX_LINE 4096
#define CONTROL_MAX_CLIENTS 16
#define CONTROL_IDLE_TIMEOUT_MS 60000
#define CONTROL_OUT_MAX (64 * 1024)
#define CONTROL_MAX_RESPONSE 2048
#define CONTROL_MAX_NODES 64

struct control;
struct vm;

/* What `status` says about the VM. */
struct control_vm {
	const char *state;     /* "starting", "running", "stopping" */
	const char *name;
	unsigned cpus;
	uint64_t mem;
	const char *transport; /* "pci" or "mmio" */
};

/* Guest RAM as the host sees it (`memory`): the VM's settings and the
 * facts of mem/ram_stats.h (CONTROL_MAX_NODES == RAM_STATS_MAX_NODES). */
struct control_mem {
	uint64_t ram;          /* guest RAM bytes */
	uint64_t page_size;    /* backing page size */
	uint64_t rss;          /* resident bytes of the RAM mapping (hugetlb included) */
	uint64_t hugetlb;      /* of which hugetlb pages */
	uint64_t thp;          /* of which transparent hugepages */
	uint64_t swap;
	bool merge;            /* mem_merge=on (MADV_MERGEABLE) */
	int64_t ksm_merging_pages; /* this process's merged pages; -1: unknown */
	char numa_policy[32];  /* from numa_maps: "default", "bind:0", ... */
	uint64_t node_pages[CONTROL_MAX_NODES]; /* resident pages per NUMA node */
};

/* How a control server reaches its VM; every hook runs on the event thread. */
struct control_ops {
	void (*vm)(void *cookie, struct control_vm *out);
	int (*memory)(void *cookie, struct control_mem *out);   /* 0 or -errno */
	/* false: the VM has no balloon */
	bool (*balloon_get)(void *cookie, struct virtio_balloon_info *out);
	int (*balloon_set)(void *cookie, uint64_t bytes);       /* 0 or -errno */
	void (*stop)(void *cookie);                              /* after "ok" is sent */
};

struct control_params {
	const char *path;      /* socket to listen on; NULL: clients only by
				* control_add_client() */
	struct evloop *loop;
	const struct logger *log;
	const struct control_ops *ops;
	void *cookie;
	unsigned idle_timeout_ms;   /* 0: CONTROL_IDLE_TIMEOUT_MS */
};

/* Listens on @p->path (a stale socket file there, one nobody listens on,
 * is replaced; anything else is an error naming the path) with mode 0600,
 * holding PATH.lock (see above). Returns 0 or -errno (logged): -EADDRINUSE
 * when another server has the path. */
__attribute__((warn_unused_result))
int control_create(const struct control_params *p, struct control **out);

/* Closes every connection and the socket, and unlinks the path if it is
 * still the socket this server made, and the lock file. NULL: no-op. */
void control_destroy(struct control *c);

/* Serves one more connection on @fd (made non-blocking; owned from now on,
 * closed even on failure), closing the longest-idle one first when
 * CONTROL_MAX_CLIENTS are connected. 0, -EACCES (answered "error permission
 * denied") when its peer runs as another user (SO_PEERCRED), or -errno. */
__attribute__((warn_unused_result))
int control_add_client(struct control *c, int fd);

/* Executes one request line (no '\n') and writes the response line (no
 * '\n') into @resp. The only side effects are the ops' (balloon_set, stop)
 * and happen only for a well-formed request. */
void control_execute(struct control *c, const char *line, char *resp, size_t resp_len);

/* Connections currently served (for tests). */
unsigned control_nr_clients(const struct control *c);

/* ---- helpers, exposed for tests ---- */

/* Writes @v as a size string ("256M", "0", "4097"); returns @buf. */
const char *control_format_size(uint64_t v, char *buf, size_t len);

/* The /proc parsers of mem/ram_stats.h, filling a control_mem: */
/* ram_stats_scan_smaps(): sets rss, hugetlb, thp and swap from the smaps
 * entries of the mappings lying within [@start, @end); -ENOENT if none. */
int control_scan_smaps(FILE *f, uint64_t start, uint64_t end, struct control_mem *out);
/* ram_stats_scan_numa_maps(): sets numa_policy and adds to node_pages from
 * the numa_maps lines of mappings starting within [@start, @end). */
int control_scan_numa_maps(FILE *f, uint64_t start, uint64_t end, struct control_mem *out);

/* ---- the VM's control socket (vmm/vm.c) ---- */

/* Creates vm->control for vm->cfg->control (nothing when unset). */
__attribute__((warn_unused_result))
int control_start(struct vm *vm);
/* Destroys vm->control. */
void control_stop(struct vm *vm);

/* `kvmrun ctl SOCKET COMMAND [ARGS...]` (vmm/ctl.c): sends the arguments
 * as one request line and prints the response line. @argv[0] is "ctl".
 * Exit status: 0 for "ok", 1 for "error", 2 for usage and connection
 * errors. */
int control_client_main(int argc, char **argv);

#endif
