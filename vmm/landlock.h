/* Landlock (landlock=on): after set-up the VM's threads can reach only
 * the files the VM needs, whatever the permissions say. The ABI is asked
 * of the kernel at run time: ABI 1 (Linux 5.13) restricts opening,
 * creating and removing; ABI 2 also linking and renaming across
 * folders; ABI 3 also truncating.
 *
 * It applies to the calling thread and every thread it creates later
 * (the vCPUs, io_uring's workers, which act with their creator's
 * credentials), for good: in vm_create() that is the thread that runs
 * the VM, and it stays restricted after vm_destroy(). Fds opened before
 * stay usable; what is checked is every later open. */
#ifndef KVMRUN_LANDLOCK_H
#define KVMRUN_LANDLOCK_H

#include <stdbool.h>

#include "lib/log.h"

enum landlock_access {
	LL_READ,        /* read files, list folders */
	LL_WRITE,       /* read and write files */
	LL_DIR_SOCKET,  /* a folder where a Unix socket and its lock file are
			 * made and removed (control=) */
	LL_DIR_FILES,   /* a folder where folders and files are made, written,
			 * renamed and removed (snapshot_dir=) */
};

struct landlock_path {
	const char *path;
	enum landlock_access access;
};

/* The kernel's Landlock ABI version; 0 when it has none (not built, or
 * not in the lsm= list). */
int landlock_abi(void);

/* Restricts the calling thread to @paths (a missing path is skipped).
 * Returns 0, -EOPNOTSUPP when the kernel has no Landlock, or -errno;
 * each logged. Needs PR_SET_NO_NEW_PRIVS (vmm/jail.h) or CAP_SYS_ADMIN. */
__attribute__((warn_unused_result))
int landlock_restrict(const struct landlock_path *paths, unsigned n, const struct logger *lg);

#endif
