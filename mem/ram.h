/* Guest RAM: allocation, placement and release of host memory.
 *
 * RAM is one host mapping split into guest regions below and above the
 * 32-bit MMIO hole (mem/layout.h): [0, min(size, hole)) and, for the rest,
 * [4 GiB, ...). Anonymous memory by default; hugepages come from a
 * hugetlb memfd so that the balloon can punch holes in whole pages. */
#ifndef KVMRUN_RAM_H
#define KVMRUN_RAM_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/log.h"
#include "mem/guest_mem.h"

/* What backs guest RAM: small pages, or hugetlb pages of one size. */
enum hugepages { HUGEPAGES_OFF, HUGEPAGES_2M, HUGEPAGES_1G };

struct ram_opts {
	uint64_t size;                /* bytes, multiple of the page size */
	enum hugepages hugepages;
	int numa_node;                /* -1: no binding */
	bool prefault, thp, merge;
	/* hugetlb backing only: let ram_discard() give hugepages back to the
	 * host's pool (see ram_can_give_back) */
	bool hugepage_giveback;
	const char *name;             /* for the memfd name and messages */
	/* A restore: RAM is this file (a snapshot's memory file, exactly
	 * @size bytes), mapped MAP_PRIVATE: pages load on first touch, clean
	 * ones stay shared in the page cache among VMs restored from it, and a
	 * guest's writes stay its own. Small pages only (no hugepages, no
	 * NUMA binding). @file_prefault reads it all in at once. */
	const char *file;
	bool file_prefault;
};

struct ram {
	struct guest_mem mem;
	uint8_t *base;                /* the whole mapping */
	uint64_t size;
	int fd;                       /* hugetlb memfd, or -1 */
	uint64_t page_size;
	int numa_node;
	bool giveback;                /* ram_discard() may give memory back */
	bool file_backed;             /* ram_opts.file: discard maps zeroes */
};

/* Maps guest RAM per @o and fills r->mem. Errors name the key concerned
 * (mem_hugepages, mem_numa_node, ...) and what to do about them; returns
 * -errno and leaves nothing mapped. */
__attribute__((warn_unused_result))
int ram_create(struct ram *r, const struct ram_opts *o, const struct logger *lg);
void ram_destroy(struct ram *r);

/* Whether guest RAM may be given back to the host (the balloon, free page
 * reporting) so that the guest can take it again whenever it likes.
 * Anonymous RAM: yes, a discarded page refaults from the host's free
 * memory. Hugetlb backing: only with ram_opts.hugepage_giveback. A punched
 * hugepage goes back to the host's pool together with its reservation; if
 * the pool has been emptied meanwhile (another VM, nr_hugepages lowered),
 * the guest's next touch of that page cannot be backed: SIGBUS in the
 * kvmrun thread that touched it, EFAULT out of KVM_RUN for a vCPU. Without
 * give-back, hugepage RAM stays reserved for the guest from start to end,
 * as mem_hugepages promises. */
bool ram_can_give_back(const struct ram *r);

/* Gives [gpa, gpa+len) back to the host (the balloon, free page reporting):
 * MADV_DONTNEED for anonymous memory, a punched hole for memfd backing.
 * The range must be RAM and aligned to the backing page size; -EINVAL
 * otherwise, and -EPERM unless ram_can_give_back(). The guest reads zeroes
 * there afterwards. */
__attribute__((warn_unused_result))
int ram_discard(struct ram *r, uint64_t gpa, uint64_t len);

/* Guest-physical address of host byte offset @off in the mapping. */
uint64_t ram_offset_to_gpa(const struct ram *r, uint64_t off);

#endif
