/* cgroup=PATH (vmm/cgroup.c): the keys' checks; a clear error where no
 * cgroup2 is mounted (a mountinfo without one); and, as root where cgroup2
 * is mounted, a child process moved into a new group with all its threads
 * (those made before the move and after), read back from
 * /proc/PID/task/TID/cgroup, and a limit written (or, where the host's
 * cgroup v2 lacks the controller, an error naming key and file). */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "child.h"
#include "unit.h"
#include "vmm/cgroup.h"

static struct logger lg;

static void test_checks(void)
{
	CHECK(cgroup_check_path("ci/job42") == NULL);
	CHECK(cgroup_check_path("/ci/job-42.a_b") == NULL);
	CHECK(cgroup_check_path("/") != NULL);
	CHECK(cgroup_check_path("ci/../x") != NULL);
	CHECK(cgroup_check_path("ci//x") != NULL);
	CHECK(cgroup_check_path("ci/x/") != NULL);
	CHECK(cgroup_check_path("ci x") != NULL);
	CHECK(cgroup_check_cpu_max("max") == NULL);
	CHECK(cgroup_check_cpu_max("50000 100000") == NULL);
	CHECK(cgroup_check_cpu_max("max 100000") == NULL);
	CHECK(cgroup_check_cpu_max("half") != NULL);
	CHECK(cgroup_check_cpu_max("50000 x") != NULL);
	CHECK(cgroup_check_memory_max("512M") == NULL);
	CHECK(cgroup_check_memory_max("max") == NULL);
	CHECK(cgroup_check_memory_max("1073741824") == NULL);
	CHECK(cgroup_check_memory_max("0") != NULL);
	CHECK(cgroup_check_memory_max("12MB") != NULL);
	CHECK(cgroup_check_io_max("8:0 rbps=1048576 wiops=max") == NULL);
	CHECK(cgroup_check_io_max("8:0") != NULL);
	CHECK(cgroup_check_io_max("sda rbps=1") != NULL);
	CHECK(cgroup_check_io_max("8:0 speed=1") != NULL);
}

static int enter_fake(int fd, void *arg)
{
	lg.fd = fd;
	struct cgroup_params p = { .path = "kvmrun-never", .mountinfo = arg };
	return cgroup_enter(&p, &lg) == -ENOENT ? 0 : 1;
}

static void test_no_cgroup2(void)
{
	char path[] = "/tmp/kvmrun-mountinfo-XXXXXX";
	int fd = mkstemp(path);
	CHECK(fd >= 0);
	dprintf(fd, "22 1 0:21 / /sys rw,nosuid - sysfs sysfs rw\n"
		    "30 22 0:26 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n");
	close(fd);
	struct child_result r;
	child_run(enter_fake, path, &r);
	CHECK_EQ(r.code, 0);
	CHECK_HAS(r.out, "cgroup v2 is not mounted");
	unlink(path);
}

/* The cgroup2 mount and whether its root offers @controller. */
static bool cgroup2_root(char *out, size_t len, const char *controller, bool *has)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[1024];
	bool found = false;
	while (f && !found && fgets(line, sizeof(line), f))
		if (strstr(line, " - cgroup2 ") && sscanf(line, "%*s %*s %*s %*s %255s", out) == 1)
			found = true;
	if (f)
		fclose(f);
	*has = false;
	if (!found)
		return false;
	char p[300], ctl[256] = "";
	snprintf(p, sizeof(p), "%s/cgroup.controllers", out);
	f = fopen(p, "re");
	if (f && fgets(ctl, sizeof(ctl), f))
		*has = strstr(ctl, controller) != NULL;
	if (f)
		fclose(f);
	(void)len;
	return true;
}

static void *idle(void *arg)
{
	(void)arg;
	pause();
	return NULL;
}

/* Every thread's /proc/self/task/TID/cgroup, written to @fd. */
static int dump_tasks(int fd)
{
	DIR *d = opendir("/proc/self/task");
	if (!d)
		return -1;
	int n = 0;
	for (struct dirent *e; (e = readdir(d));) {
		if (e->d_name[0] == '.')
			continue;
		char p[300], line[256];
		snprintf(p, sizeof(p), "/proc/self/task/%.64s/cgroup", e->d_name);
		FILE *f = fopen(p, "re");
		while (f && fgets(line, sizeof(line), f))
			if (strncmp(line, "0::", 3) == 0)
				dprintf(fd, "task %s %s", e->d_name, line);
		if (f)
			fclose(f);
		n++;
	}
	closedir(d);
	return n;
}

struct enter_arg {
	const char *path;
	const char *cpu_max;
};

static int enter_real(int fd, void *argp)
{
	const struct enter_arg *a = argp;
	lg.fd = fd;
	pthread_t before, after;
	if (pthread_create(&before, NULL, idle, NULL))
		return 1;
	struct cgroup_params p = { .path = a->path, .cpu_max = a->cpu_max };
	int rc = cgroup_enter(&p, &lg);
	if (rc < 0)
		return 10;
	if (pthread_create(&after, NULL, idle, NULL))
		return 2;
	return dump_tasks(fd) == 3 ? 0 : 3;
}

static unsigned count(const char *hay, const char *needle)
{
	unsigned n = 0;
	for (const char *p = hay; (p = strstr(p, needle)); p++)
		n++;
	return n;
}

static void test_enter(void)
{
	char root[256];
	bool has_cpu;
	if (geteuid() != 0 || !cgroup2_root(root, sizeof(root), "cpu", &has_cpu)) {
		printf("  (test_enter skipped: needs root and a cgroup2 mount)\n");
		return;
	}
	char rel[64], want[96], leaf[400], parent[400];
	snprintf(rel, sizeof(rel), "kvmrun-unit-%d/vm", (int)getpid());
	snprintf(want, sizeof(want), "0::/%s\n", rel);
	struct enter_arg a = { .path = rel };
	struct child_result r;
	child_run(enter_real, &a, &r);
	CHECK_EQ(r.code, 0);
	CHECK_EQ(count(r.out, want), 3); /* all three threads */
	snprintf(leaf, sizeof(leaf), "%s/%s", root, rel);
	snprintf(parent, sizeof(parent), "%s/kvmrun-unit-%d", root, (int)getpid());
	CHECK_EQ(rmdir(leaf), 0);

	/* a limit: written where the controller exists, else a clear error */
	a.cpu_max = "50000 100000";
	child_run(enter_real, &a, &r);
	if (has_cpu) {
		CHECK_EQ(r.code, 0);
		char p[450], v[64] = "";
		snprintf(p, sizeof(p), "%s/cpu.max", leaf);
		FILE *f = fopen(p, "re");
		CHECK(f && fgets(v, sizeof(v), f));
		if (f)
			fclose(f);
		CHECK_STREQ(v, "50000 100000\n");
	} else {
		CHECK_EQ(r.code, 10);
		CHECK_HAS(r.out, "cgroup.cpu_max=50000 100000: enabling the cpu controller: "
			  "writing '+cpu' to ");
		CHECK_HAS(r.out, "cgroup.subtree_control");
	}
	rmdir(leaf);
	CHECK_EQ(rmdir(parent), 0);
}

int main(void)
{
	log_init(&lg, LOG_INFO, "test");
	RUN(test_checks);
	RUN(test_no_cgroup2);
	RUN(test_enter);
	return unit_done();
}
