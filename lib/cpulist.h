/* CPU lists as the kernel prints them: "0-3,6,8-9". */
#ifndef KVMRUN_CPULIST_H
#define KVMRUN_CPULIST_H

#include <stddef.h>

/* Parses @s into @out in the order written (ranges ascending), at most @max
 * entries; *n receives the count. Returns 0, -EINVAL for bad syntax (empty
 * element, reversed range, trailing comma, non-digits) or -ERANGE when there
 * are more than @max entries or a number exceeds 65535. Duplicates are
 * rejected with -EINVAL. */
int cpulist_parse(const char *s, unsigned *out, size_t max, size_t *n);

/* Formats @n entries back, compressing ascending runs into ranges. Returns
 * the length written (excluding NUL), or -ENOSPC if @buflen is too small. */
int cpulist_format(const unsigned *cpus, size_t n, char *buf, size_t buflen);

/* 1 if host CPU @cpu is online (/sys/devices/system/cpu/online), 0 if not,
 * -errno if that cannot be read. */
int cpulist_host_online(unsigned cpu);

#endif
