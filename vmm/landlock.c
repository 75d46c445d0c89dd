#include "vmm/landlock.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/landlock.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Debian 12's headers stop at ABI 2 */
#ifndef LANDLOCK_ACCESS_FS_REFER
#define LANDLOCK_ACCESS_FS_REFER (1ULL << 13)
#endif
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)
#endif

#define FS_READ (LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR)
#define FS_WRITE (FS_READ | LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_TRUNCATE)
#define FS_DIR_SOCKET (FS_WRITE | LANDLOCK_ACCESS_FS_MAKE_SOCK | LANDLOCK_ACCESS_FS_MAKE_REG | \
		       LANDLOCK_ACCESS_FS_REMOVE_FILE)
#define FS_DIR_FILES (FS_WRITE | LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_MAKE_DIR | \
		      LANDLOCK_ACCESS_FS_REMOVE_FILE)

/* Every right of ABI 1, then what later ABIs add. */
static uint64_t handled_for(int abi)
{
	uint64_t fs = LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE |
		      LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR |
		      LANDLOCK_ACCESS_FS_REMOVE_DIR | LANDLOCK_ACCESS_FS_REMOVE_FILE |
		      LANDLOCK_ACCESS_FS_MAKE_CHAR | LANDLOCK_ACCESS_FS_MAKE_DIR |
		      LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_MAKE_SOCK |
		      LANDLOCK_ACCESS_FS_MAKE_FIFO | LANDLOCK_ACCESS_FS_MAKE_BLOCK |
		      LANDLOCK_ACCESS_FS_MAKE_SYM;
	if (abi >= 2)
		fs |= LANDLOCK_ACCESS_FS_REFER;
	if (abi >= 3)
		fs |= LANDLOCK_ACCESS_FS_TRUNCATE;
	return fs;
}

int landlock_abi(void)
{
	long v = syscall(__NR_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
	return v < 0 ? 0 : (int)v;
}

static uint64_t rights(enum landlock_access a, bool is_dir)
{
	uint64_t r = a == LL_READ ? FS_READ : a == LL_WRITE ? FS_WRITE :
		     a == LL_DIR_FILES ? FS_DIR_FILES : FS_DIR_SOCKET;
	if (!is_dir) /* a rule on a file takes only a file's rights */
		r &= LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_WRITE_FILE |
		     LANDLOCK_ACCESS_FS_TRUNCATE | LANDLOCK_ACCESS_FS_EXECUTE;
	return r;
}

static int add_path(int ruleset, const struct landlock_path *p, uint64_t handled,
		    const struct logger *lg)
{
	int fd = open(p->path, O_PATH | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT) /* nothing there to allow */
			return 0;
		int e = errno;
		log_err(lg, "landlock", "%s: opening it for a rule: %s", p->path, strerror(e));
		return -e;
	}
	struct stat st;
	int rc = fstat(fd, &st) < 0 ? -errno : 0;
	struct landlock_path_beneath_attr attr = {
		.allowed_access = rights(p->access, S_ISDIR(st.st_mode)) & handled,
		.parent_fd = fd,
	};
	if (rc == 0 && syscall(__NR_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH,
			       &attr, 0) < 0)
		rc = -errno;
	close(fd);
	if (rc < 0)
		log_err(lg, "landlock", "%s: adding its rule: %s", p->path, strerror(-rc));
	return rc;
}

int landlock_restrict(const struct landlock_path *paths, unsigned n, const struct logger *lg)
{
	int abi = landlock_abi();
	if (abi <= 0) {
		log_err(lg, "landlock", "landlock=on: this kernel has no Landlock (Linux 5.13 "
			"or later, with landlock in its lsm= list)");
		return -EOPNOTSUPP;
	}
	struct landlock_ruleset_attr attr = { .handled_access_fs = handled_for(abi) };
	int ruleset = (int)syscall(__NR_landlock_create_ruleset, &attr, sizeof(attr), 0);
	if (ruleset < 0) {
		int e = errno;
		log_err(lg, "landlock", "landlock_create_ruleset (ABI %d): %s", abi, strerror(e));
		return -e;
	}
	int rc = 0;
	for (unsigned i = 0; i < n && rc == 0; i++)
		if (paths[i].path)
			rc = add_path(ruleset, &paths[i], attr.handled_access_fs, lg);
	if (rc == 0 && syscall(__NR_landlock_restrict_self, ruleset, 0) < 0) {
		rc = -errno;
		log_err(lg, "landlock", "landlock_restrict_self: %s%s", strerror(-rc),
			rc == -EPERM ? " (needs PR_SET_NO_NEW_PRIVS)" : "");
	}
	close(ruleset);
	if (rc == 0)
		log_info(lg, "landlock", "file system restricted to %u paths (ABI %d)", n, abi);
	return rc;
}
