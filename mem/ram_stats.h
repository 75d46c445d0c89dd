/* What the host kernel says about guest RAM: how much of the mapping is
 * resident (and of that, hugetlb and transparent hugepages), swapped out,
 * on which NUMA nodes, and merged by KSM. Read from /proc/self (smaps,
 * numa_maps, ksm_merging_pages or ksm_stat); nothing here changes memory.
 *
 * Threads: any; each call opens and reads its own files. */
#ifndef KVMRUN_RAM_STATS_H
#define KVMRUN_RAM_STATS_H

#include <stdint.h>
#include <stdio.h>

#define RAM_STATS_MAX_NODES 64

struct ram_stats {
	uint64_t rss;              /* resident bytes of the mapping (hugetlb included) */
	uint64_t hugetlb;          /* of which hugetlb pages */
	uint64_t thp;              /* of which transparent hugepages */
	uint64_t swap;             /* bytes swapped out */
	int64_t ksm_merging_pages; /* this process's merged pages; -1: unknown */
	char numa_policy[32];      /* from numa_maps: "default", "bind:0", ...; "" unknown */
	uint64_t node_pages[RAM_STATS_MAX_NODES]; /* resident pages per NUMA node */
};

/* Fills @out for the mapping [@base, @base + @size) of this process.
 * smaps is required: -errno when it cannot be opened, -ENOENT when no
 * mapping lies in the range; numa_maps and the KSM counters are optional
 * and left unknown when missing. Returns 0 or -errno. */
int ram_stats_read(const void *base, uint64_t size, struct ram_stats *out);

/* The parsers behind ram_stats_read(), exposed for tests. */

/* Adds up the smaps entries (Rss, hugetlb, AnonHugePages, Swap) of the
 * mappings lying within [@start, @end) and sets rss, hugetlb, thp and
 * swap; -ENOENT (and @out untouched) if there is none. */
int ram_stats_scan_smaps(FILE *f, uint64_t start, uint64_t end, struct ram_stats *out);
/* Sets numa_policy from the first numa_maps line of a mapping starting
 * within [@start, @end) and adds the per-node page counts (N<node>=<pages>)
 * of all of them to node_pages; -ENOENT (and @out untouched) if none. */
int ram_stats_scan_numa_maps(FILE *f, uint64_t start, uint64_t end, struct ram_stats *out);

#endif
