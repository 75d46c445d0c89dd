#include "vmm/jail.h"

#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>
#include <linux/capability.h>

const char *jail_check_id(const char *v)
{
	if (!*v) /* unset */
		return NULL;
	if (strlen(v) > 32)
		return "is longer than 32 characters";
	if (v[0] == '-' || v[strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-")])
		return "is not a user or group name or number";
	return NULL;
}

/* A number if @s is all digits (and fits), else -1. */
static long long as_id(const char *s)
{
	if (!*s || strlen(s) > 10)
		return -1;
	for (const char *p = s; *p; p++)
		if (!isdigit((unsigned char)*p))
			return -1;
	long long v = strtoll(s, NULL, 10);
	return v < (long long)UINT_MAX ? v : -1; /* (uid_t)-1 means "unchanged" */
}

static int resolve_user(const char *user, struct jail_ids *out, const struct logger *lg,
			bool *named)
{
	struct passwd pw, *res = NULL;
	char buf[4096];
	long long n = as_id(user);
	int e = n >= 0 ? getpwuid_r((uid_t)n, &pw, buf, sizeof(buf), &res)
		       : getpwnam_r(user, &pw, buf, sizeof(buf), &res);
	if (!res && n < 0) {
		log_err(lg, "jail", "user=%s: no such user%s%s", user, e ? ": " : "",
			e ? strerror(e) : "");
		return -ENOENT;
	}
	out->uid = res ? res->pw_uid : (uid_t)n;
	out->gid = res ? res->pw_gid : (gid_t)-1;
	*named = res != NULL;
	if (res) {
		int ng = JAIL_MAX_GROUPS;
		if (getgrouplist(res->pw_name, res->pw_gid, out->groups, &ng) < 0) {
			log_err(lg, "jail", "user=%s: in more than %d groups", user, JAIL_MAX_GROUPS);
			return -E2BIG;
		}
		out->nr_groups = ng;
	}
	return 0;
}

static int resolve_group(const char *group, gid_t *gid, const struct logger *lg)
{
	struct group gr, *res = NULL;
	char buf[4096];
	long long n = as_id(group);
	if (n >= 0) {
		*gid = (gid_t)n;
		return 0;
	}
	int e = getgrnam_r(group, &gr, buf, sizeof(buf), &res);
	if (!res) {
		log_err(lg, "jail", "group=%s: no such group%s%s", group, e ? ": " : "",
			e ? strerror(e) : "");
		return -ENOENT;
	}
	*gid = res->gr_gid;
	return 0;
}

int jail_resolve_ids(const char *user, const char *group, struct jail_ids *out,
		     const struct logger *lg)
{
	memset(out, 0, sizeof(*out));
	out->uid = getuid();
	out->gid = getgid();
	bool named = false;
	if (user) {
		int rc = resolve_user(user, out, lg, &named);
		if (rc < 0)
			return rc;
	}
	if (group) {
		int rc = resolve_group(group, &out->gid, lg);
		if (rc < 0)
			return rc;
	} else if (user && out->gid == (gid_t)-1) {
		log_err(lg, "jail", "user=%s has no entry in the user database: give group= too",
			user);
		return -EINVAL;
	}
	if (!named) { /* no database entry: the one group, no others */
		out->groups[0] = out->gid;
		out->nr_groups = 1;
	}
	if (out->uid == 0 && user) {
		log_err(lg, "jail", "user=%s is root: that jails nothing", user);
		return -EINVAL;
	}
	return 0;
}

static bool already(const struct jail_ids *ids)
{
	uid_t r, e, s;
	gid_t rg, eg, sg;
	if (getresuid(&r, &e, &s) < 0 || getresgid(&rg, &eg, &sg) < 0)
		return false;
	return r == ids->uid && e == ids->uid && s == ids->uid &&
	       rg == ids->gid && eg == ids->gid && sg == ids->gid;
}

/* Without this, a later execve of a file with capabilities could raise
 * them up to the bounding set; NO_NEW_PRIVS stops that too, this is the
 * belt to its braces. Needs CAP_SETPCAP, so before the uid changes. */
static void clear_bounding_set(void)
{
	for (int cap = 0; cap <= CAP_LAST_CAP; cap++)
		(void)prctl(PR_CAPBSET_DROP, cap, 0, 0, 0);
}

int jail_switch_user(const struct jail_ids *ids, const struct logger *lg)
{
	if (already(ids))
		return 0;
	clear_bounding_set();
	const char *what = "setgroups";
	if (setgroups((size_t)ids->nr_groups, ids->groups) < 0)
		goto fail;
	what = "setresgid";
	if (setresgid(ids->gid, ids->gid, ids->gid) < 0)
		goto fail;
	what = "setresuid";
	if (setresuid(ids->uid, ids->uid, ids->uid) < 0)
		goto fail;
	/* root cannot be regained: a setuid(0) that works means the switch
	 * did not take (a kept capability) */
	if (ids->uid != 0 && setuid(0) == 0) {
		log_err(lg, "jail", "uid %u: setuid(0) still works after the switch",
			(unsigned)ids->uid);
		return -EPERM;
	}
	log_info(lg, "jail", "running as uid %u gid %u (%d groups)", (unsigned)ids->uid,
		 (unsigned)ids->gid, ids->nr_groups);
	return 0;
fail:;
	int e = errno;
	log_err(lg, "jail", "switching to uid %u gid %u: %s: %s%s", (unsigned)ids->uid,
		(unsigned)ids->gid, what, strerror(e),
		e == EPERM ? " (user= and group= need kvmrun to start as root, or with "
			     "CAP_SETUID and CAP_SETGID)" : "");
	return -e;
}

int jail_set_no_new_privs(const struct logger *lg)
{
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		int e = errno;
		log_err(lg, "jail", "prctl(PR_SET_NO_NEW_PRIVS): %s", strerror(e));
		return -e;
	}
	return 0;
}
