/* What the host kernel says about guest RAM, from /proc/self (see
 * ram_stats.h): smaps for residency, numa_maps for placement, the KSM
 * counters for merging. */
#include "mem/ram_stats.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static bool hex_range(const char *line, uint64_t *lo, uint64_t *hi)
{
	char *end;
	*lo = strtoull(line, &end, 16);
	if (*end != '-')
		return false;
	*hi = strtoull(end + 1, &end, 16);
	return *end == ' ';
}

int ram_stats_scan_smaps(FILE *f, uint64_t start, uint64_t end, struct ram_stats *out)
{
	char line[512];
	bool in = false, found = false;
	uint64_t rss = 0, hugetlb = 0, thp = 0, swap = 0;
	while (fgets(line, sizeof(line), f)) {
		uint64_t lo, hi;
		if (line[0] != ' ' && hex_range(line, &lo, &hi)) {
			in = lo >= start && hi <= end && lo < hi;
			found = found || in;
			continue;
		}
		if (!in)
			continue;
		unsigned long long kb;
		if (sscanf(line, "Rss: %llu kB", &kb) == 1)
			rss += kb << 10;
		else if (sscanf(line, "Shared_Hugetlb: %llu kB", &kb) == 1 ||
			 sscanf(line, "Private_Hugetlb: %llu kB", &kb) == 1)
			hugetlb += kb << 10;
		else if (sscanf(line, "AnonHugePages: %llu kB", &kb) == 1)
			thp += kb << 10;
		else if (sscanf(line, "Swap: %llu kB", &kb) == 1)
			swap += kb << 10;
	}
	if (!found)
		return -ENOENT;
	/* smaps' Rss leaves hugetlb pages out; they are resident all the same */
	out->rss = rss + hugetlb;
	out->hugetlb = hugetlb;
	out->thp = thp;
	out->swap = swap;
	return 0;
}

int ram_stats_scan_numa_maps(FILE *f, uint64_t start, uint64_t end, struct ram_stats *out)
{
	char line[1024];
	bool found = false;
	while (fgets(line, sizeof(line), f)) {
		char *p;
		uint64_t addr = strtoull(line, &p, 16);
		if (*p != ' ' || addr < start || addr >= end)
			continue;
		char *save = NULL;
		char *tok = strtok_r(p, " \n", &save);
		if (tok && !found)
			snprintf(out->numa_policy, sizeof(out->numa_policy), "%s", tok);
		found = true;
		while ((tok = strtok_r(NULL, " \n", &save))) {
			unsigned node;
			unsigned long long pages;
			if (sscanf(tok, "N%u=%llu", &node, &pages) == 2 && node < RAM_STATS_MAX_NODES)
				out->node_pages[node] += pages;
		}
	}
	return found ? 0 : -ENOENT;
}

static int64_t read_ksm_merging_pages(void)
{
	long long v = -1;
	FILE *f = fopen("/proc/self/ksm_merging_pages", "re");
	if (f) {
		if (fscanf(f, "%lld", &v) != 1)
			v = -1;
		fclose(f);
		return v;
	}
	f = fopen("/proc/self/ksm_stat", "re");
	if (!f)
		return -1;
	char line[128];
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "ksm_merging_pages %lld", &v) == 1)
			break;
	fclose(f);
	return v;
}

int ram_stats_read(const void *base, uint64_t size, struct ram_stats *out)
{
	uint64_t start = (uintptr_t)base, end = start + size;
	memset(out, 0, sizeof(*out));
	out->ksm_merging_pages = read_ksm_merging_pages();
	FILE *f = fopen("/proc/self/smaps", "re");
	if (!f)
		return -errno;
	int rc = ram_stats_scan_smaps(f, start, end, out);
	fclose(f);
	f = fopen("/proc/self/numa_maps", "re");
	if (f) {
		(void)ram_stats_scan_numa_maps(f, start, end, out);
		fclose(f);
	}
	return rc;
}
