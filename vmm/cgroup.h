/* cgroup=PATH: kvmrun puts itself in a cgroup v2 group, made if missing,
 * before it allocates anything, so the guest's RAM and every thread made
 * later (vCPUs, io_uring's iou-wrk workers) are charged to it.
 *
 * PATH is inside the cgroup2 hierarchy ("ci/job42" or "/ci/job42", as
 * /proc/PID/cgroup shows it), found from the cgroup2 mount in
 * /proc/self/mountinfo. cgroup.cpu_max=, cgroup.memory_max= and
 * cgroup.io_max= are written to the group's cpu.max, memory.max and
 * io.max, the controller enabled in each parent's cgroup.subtree_control
 * first.
 *
 * Process-wide: cgroup v2 keeps a process's threads together, so the
 * whole process moves (for a library user: every VM of the process). */
#ifndef KVMRUN_CGROUP_H
#define KVMRUN_CGROUP_H

#include "lib/log.h"

struct cgroup_params {
	const char *path;        /* cgroup= */
	const char *cpu_max;     /* "max" or "QUOTA PERIOD" in µs, or NULL */
	const char *memory_max;  /* bytes (a size), "max", or NULL */
	const char *io_max;      /* "MAJ:MIN rbps=N wbps=N riops=N wiops=N", or NULL */
	const char *mountinfo;   /* NULL: /proc/self/mountinfo (tests pass their own) */
};

/* Config-time checks of the values: NULL, or why not (a static string). */
const char *cgroup_check_path(const char *v);
const char *cgroup_check_cpu_max(const char *v);
const char *cgroup_check_memory_max(const char *v);
const char *cgroup_check_io_max(const char *v);

/* Makes the group, writes the limits, moves the process in. Nothing to do
 * when the process is in it already (a restarted VM). Errors name the key
 * and the file. Returns 0 or -errno. */
__attribute__((warn_unused_result))
int cgroup_enter(const struct cgroup_params *p, const struct logger *lg);

#endif
