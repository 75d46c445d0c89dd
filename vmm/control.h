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
 *   metrics                ok ts_ms= uptime_ms= vcpu0.exits_io= ... disk0.read_bytes=
 *                          ... disk0.lat_us_le_64= ... net0.rx_packets= ...
 *                          (every field plain decimal; the list is in
 *                          vmm/metrics.h)
 *   stop                   ok stopping   (then the VM ends with exit code 0)
 *   pause                  ok state=paused   (every vCPU out of KVM_RUN and parked,
 *                          virtio queues quiesced, the guest's clock stopped)
 *   resume                 ok state=running
 *   snapshot path=DIR      ok path=DIR   (only while paused; writes the snapshot
 *                          directory, see README "Snapshots"; DIR relative to
 *                          kvmrun's working directory)
 *   help                   ok commands=status,memory,balloon,balloon-stats,metrics,stop,
 *                          pause,resume,snapshot,help
 *
 * A malformed request (unknown command or key, a bad size, arguments to a
 * command that takes none, a NUL byte) is answered "error ..." and changes
 * nothing.
 *
 * The socket is a line server (lib/linesrv.h): its framing, limits, access
 * check and path lock are the control socket's. Hooks (control_ops) give
 * the commands their VM, so nothing here knows struct vm.
 *
 * Threads: the event thread only (create, destroy, every callback). */
#ifndef KVMRUN_CONTROL_H
#define KVMRUN_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/evloop.h"
#include "lib/linesrv.h"
#include "lib/log.h"
#include "mem/ram_stats.h"
#include "virtio/balloon.h"

#define CONTROL_MAX_LINE LINESRV_MAX_LINE
#define CONTROL_MAX_CLIENTS LINESRV_MAX_CLIENTS
#define CONTROL_IDLE_TIMEOUT_MS LINESRV_IDLE_TIMEOUT_MS
#define CONTROL_OUT_MAX LINESRV_OUT_MAX
#define CONTROL_MAX_RESPONSE LINESRV_MAX_RESPONSE

struct control;

/* What `status` says about the VM. */
struct control_status {
	const char *state;     /* "starting", "running", "paused", "stopping" */
	const char *name;
	unsigned cpus;
	uint64_t mem;
	const char *transport; /* "pci" or "mmio" */
};

/* Guest RAM as the host sees it (`memory`): the VM's settings and what
 * the host kernel says about the RAM mapping. */
struct control_mem {
	uint64_t ram;          /* guest RAM bytes */
	uint64_t page_size;    /* backing page size */
	bool merge;            /* mem_merge=on (MADV_MERGEABLE) */
	struct ram_stats stats;
};

/* How a control server reaches its VM; every hook runs on the event thread. */
struct control_ops {
	void (*status)(void *cookie, struct control_status *out);
	int (*memory)(void *cookie, struct control_mem *out);   /* 0 or -errno */
	/* false: the VM has no balloon */
	bool (*balloon_get)(void *cookie, struct virtio_balloon_info *out);
	int (*balloon_set)(void *cookie, uint64_t bytes);       /* 0 or -errno */
	void (*stop)(void *cookie);                              /* after "ok" is sent */
	/* the metrics fields (vmm/metrics.h), each with a leading blank */
	size_t (*metrics)(void *cookie, char *buf, size_t len);
	/* 0, or -errno with the reason in @err */
	int (*pause)(void *cookie, char *err, size_t len);
	int (*resume)(void *cookie, char *err, size_t len);
	int (*snapshot)(void *cookie, const char *dir, char *err, size_t len);
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

/* Serves the protocol on a line server listening on @p->path (see
 * linesrv_create()). Returns 0 or -errno (logged): -EADDRINUSE when
 * another VM has the path. */
__attribute__((warn_unused_result))
int control_create(const struct control_params *p, struct control **out);

/* Closes every connection and the socket, and unlinks the path if it is
 * still the socket this server made, and the lock file. NULL: no-op. */
void control_destroy(struct control *c);

/* Serves one more connection on @fd: linesrv_add_client(). */
__attribute__((warn_unused_result))
int control_add_client(struct control *c, int fd);

/* Executes one request line (no '\n') and writes the response line (no
 * '\n') into @resp. The only side effects are the ops' (balloon_set, stop)
 * and happen only for a well-formed request. */
void control_execute(struct control *c, const char *line, char *resp, size_t resp_len);

/* Connections currently served (for tests). */
unsigned control_nr_clients(const struct control *c);

/* `kvmrun ctl SOCKET COMMAND [ARGS...]` (vmm/ctl.c): sends the arguments
 * as one request line and prints the response line. @argv[0] is "ctl".
 * Exit status: 0 for "ok", 1 for "error", 2 for usage and connection
 * errors. */
int control_client_main(int argc, char **argv);

#endif
