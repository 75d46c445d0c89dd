/* CPU lists as the kernel prints them ("0-3,6,8-9"): parse, format, and a
 * look at which host CPUs are online. */
#include "lib/cpulist.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define CPULIST_MAX_CPU 65535u
#define CPULIST_ONLINE "/sys/devices/system/cpu/online"

/* Reads one decimal number at *p. Returns 0, -EINVAL (no digit) or -ERANGE. */
static int cpulist_number(const char **p, unsigned *out)
{
	const char *s = *p;
	unsigned v = 0;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	for (; *s >= '0' && *s <= '9'; s++) {
		v = v * 10 + (unsigned)(*s - '0');
		if (v > CPULIST_MAX_CPU)
			return -ERANGE;
	}
	*p = s;
	*out = v;
	return 0;
}

/* Reads one element "N" or "N-M" at *p and the ',' after it, if any.
 * Returns 1 when an element was read and more follow, 0 when it was the
 * last, or -errno. */
static int cpulist_element(const char **p, unsigned *lo, unsigned *hi)
{
	int r = cpulist_number(p, lo);
	if (r)
		return r;
	*hi = *lo;
	if (**p == '-') {
		(*p)++;
		r = cpulist_number(p, hi);
		if (r)
			return r;
		if (*hi < *lo)
			return -EINVAL;
	}
	if (**p == '\0')
		return 0;
	if (**p != ',')
		return -EINVAL;
	(*p)++;
	return 1;
}

static bool cpulist_contains(const unsigned *cpus, size_t n, unsigned cpu)
{
	for (size_t i = 0; i < n; i++)
		if (cpus[i] == cpu)
			return true;
	return false;
}

int cpulist_parse(const char *s, unsigned *out, size_t max, size_t *n)
{
	size_t count = 0;
	unsigned lo, hi;
	int more;

	do {
		more = cpulist_element(&s, &lo, &hi);
		if (more < 0)
			return more;
		for (unsigned cpu = lo;; cpu++) {
			if (count == max)
				return -ERANGE;
			if (cpulist_contains(out, count, cpu))
				return -EINVAL;
			out[count++] = cpu;
			if (cpu == hi)
				break;
		}
	} while (more);
	*n = count;
	return 0;
}

int cpulist_format(const unsigned *cpus, size_t n, char *buf, size_t buflen)
{
	size_t len = 0;

	if (buflen == 0)
		return -ENOSPC;
	buf[0] = '\0';
	for (size_t i = 0; i < n;) {
		size_t j = i;
		while (j + 1 < n && cpus[j + 1] == cpus[j] + 1)
			j++;
		int w = j > i ? snprintf(buf + len, buflen - len, "%s%u-%u", i ? "," : "", cpus[i], cpus[j])
			      : snprintf(buf + len, buflen - len, "%s%u", i ? "," : "", cpus[i]);
		if (w < 0 || (size_t)w >= buflen - len)
			return -ENOSPC;
		len += (size_t)w;
		i = j + 1;
	}
	return (int)len;
}

int cpulist_host_online(unsigned cpu)
{
	char line[4096];
	FILE *f = fopen(CPULIST_ONLINE, "re");
	if (!f)
		return -errno;
	char *got = fgets(line, sizeof(line), f);
	int err = ferror(f) ? -EIO : 0;
	fclose(f);
	if (!got)
		return err ? err : -ENODATA;
	line[strcspn(line, "\n")] = '\0';

	const char *p = line;
	unsigned lo, hi;
	int more;
	do {
		more = cpulist_element(&p, &lo, &hi);
		if (more < 0)
			return -EIO;
		if (cpu >= lo && cpu <= hi)
			return 1;
	} while (more);
	return 0;
}
