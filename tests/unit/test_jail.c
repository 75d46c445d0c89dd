/* The jail's process-level layers (vmm/jail.c, vmm/landlock.c), each in a
 * forked child: no new privileges; user=/group= resolved, with errors
 * naming the key, and the switch (as root: the uid changes and a root-only
 * file can no longer be opened); Landlock: a file outside the allowed
 * paths cannot be opened (where the kernel has Landlock). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "child.h"
#include "unit.h"
#include "vmm/jail.h"
#include "vmm/landlock.h"

static struct logger lg;
static char dir[64];

static int nnp(int fd, void *arg)
{
	lg.fd = fd;
	if (jail_set_no_new_privs(&lg) < 0)
		return 2;
	return prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1 ? 0 : 3;
}

static void test_no_new_privs(void)
{
	struct child_result r;
	child_run(nnp, NULL, &r);
	CHECK_EQ(r.code, 0);
}

struct ids_case {
	const char *user, *group;
	int rc;
	const char *msg;
};

static int resolve(int fd, void *arg)
{
	const struct ids_case *c = arg;
	lg.fd = fd;
	struct jail_ids ids;
	return jail_resolve_ids(c->user, c->group, &ids, &lg) == c->rc ? 0 : 1;
}

static void test_resolve_errors(void)
{
	static const struct ids_case cases[] = {
		{ "no-such-user-kvmrun", NULL, -ENOENT, "user=no-such-user-kvmrun: no such user" },
		{ "nobody", "no-such-group-kvmrun", -ENOENT, "group=no-such-group-kvmrun: no such group" },
		{ "4000000", NULL, -EINVAL, "user=4000000 has no entry in the user database: give group=" },
		{ "root", NULL, -EINVAL, "user=root is root" },
		{ "0", NULL, -EINVAL, "user=0 is root" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct child_result r;
		child_run(resolve, (void *)&cases[i], &r);
		CHECK_EQ(r.code, 0);
		CHECK_HAS(r.out, cases[i].msg);
	}
	CHECK(jail_check_id("nobody") == NULL);
	CHECK(jail_check_id("65534") == NULL);
	CHECK(jail_check_id("") == NULL); /* unset */
	CHECK(jail_check_id("a b") != NULL);
	CHECK(jail_check_id("-x") != NULL);
}

static int resolved_nobody(int fd, void *arg)
{
	struct jail_ids ids;
	lg.fd = fd;
	if (jail_resolve_ids("65534", "65534", &ids, &lg) < 0)
		return 1;
	return ids.uid == 65534 && ids.gid == 65534 && ids.nr_groups >= 1 ? 0 : 2;
}

static void test_resolve_numbers(void)
{
	struct child_result r;
	child_run(resolved_nobody, NULL, &r);
	CHECK_EQ(r.code, 0);
}

/* As root: switch to nobody, then prove it (the ids, /proc's Uid line, a
 * root-only file refused, root not regained). */
static int switch_user(int fd, void *arg)
{
	const char *secret = arg;
	struct jail_ids ids;
	lg.fd = fd;
	if (jail_resolve_ids("65534", "65534", &ids, &lg) < 0 || jail_switch_user(&ids, &lg) < 0)
		return 1;
	uid_t r, e, s;
	if (getresuid(&r, &e, &s) < 0 || r != 65534 || e != 65534 || s != 65534)
		return 2;
	FILE *f = fopen("/proc/self/status", "re");
	char line[256];
	while (f && fgets(line, sizeof(line), f))
		if (strncmp(line, "Uid:", 4) == 0 || strncmp(line, "Gid:", 4) == 0 ||
		    strncmp(line, "Groups:", 7) == 0 || strncmp(line, "CapEff:", 7) == 0)
			dprintf(fd, "%s", line);
	if (f)
		fclose(f);
	if (open(secret, O_RDONLY) >= 0 || errno != EACCES)
		return 3;
	if (setuid(0) == 0)
		return 4;
	return 0;
}

static void test_switch_user(void)
{
	if (geteuid() != 0) {
		printf("  (test_switch_user skipped: needs root)\n");
		return;
	}
	char secret[96];
	snprintf(secret, sizeof(secret), "%s/root-only", dir);
	int fd = open(secret, O_CREAT | O_WRONLY | O_TRUNC, 0600);
	CHECK(fd >= 0);
	close(fd);
	struct child_result r;
	child_run(switch_user, secret, &r);
	CHECK_EQ(r.code, 0);
	CHECK_HAS(r.out, "Uid:\t65534\t65534\t65534\t65534");
	CHECK_HAS(r.out, "Gid:\t65534\t65534\t65534\t65534");
	CHECK_HAS(r.out, "CapEff:\t0000000000000000");
	unlink(secret);
}

/* Landlock: only @dir/allowed may be read. */
static int landlocked(int fd, void *arg)
{
	lg.fd = fd;
	char allowed[96], outside[96];
	snprintf(allowed, sizeof(allowed), "%s/allowed", dir);
	snprintf(outside, sizeof(outside), "%s/outside", dir);
	struct landlock_path paths[] = { { allowed, LL_READ }, { "/no/such/path", LL_READ } };
	if (jail_set_no_new_privs(&lg) < 0 || landlock_restrict(paths, 2, &lg) < 0)
		return 1;
	int a = open(allowed, O_RDONLY);
	if (a < 0)
		return 2;
	close(a);
	if (open(outside, O_RDONLY) >= 0 || errno != EACCES)
		return 3;
	if (open(allowed, O_WRONLY) >= 0 || errno != EACCES) /* read-only rule */
		return 4;
	if (open("/etc/hostname", O_RDONLY) >= 0 || errno != EACCES)
		return 5;
	return 0;
}

static void test_landlock(void)
{
	if (landlock_abi() <= 0) {
		printf("  (test_landlock skipped: this kernel has no Landlock)\n");
		return;
	}
	const char *names[] = { "allowed", "outside" };
	for (int i = 0; i < 2; i++) {
		char p[96];
		snprintf(p, sizeof(p), "%s/%s", dir, names[i]);
		int fd = open(p, O_CREAT | O_WRONLY | O_TRUNC, 0644);
		CHECK(fd >= 0);
		close(fd);
	}
	struct child_result r;
	child_run(landlocked, NULL, &r);
	CHECK_EQ(r.code, 0);
	for (int i = 0; i < 2; i++) {
		char p[96];
		snprintf(p, sizeof(p), "%s/%s", dir, names[i]);
		unlink(p);
	}
}

int main(void)
{
	log_init(&lg, LOG_INFO, "test");
	snprintf(dir, sizeof(dir), "/tmp/kvmrun-jail-XXXXXX");
	if (!mkdtemp(dir))
		return 99;
	chmod(dir, 0755);
	RUN(test_no_new_privs);
	RUN(test_resolve_errors);
	RUN(test_resolve_numbers);
	RUN(test_switch_user);
	RUN(test_landlock);
	rmdir(dir);
	return unit_done();
}
