/* Guest-physical memory: the one place a guest-physical address becomes a
 * host pointer.
 *
 * A guest_mem is a small set of non-overlapping RAM regions, each backed by a
 * host mapping. It knows nothing of KVM, so unit tests and fuzzers build one
 * over a plain buffer. Nothing outside mem/ adds a gpa to a host base: every
 * access goes through gmem_ptr() or the copy helpers, which fail unless the
 * whole, overflow-checked range lies inside one region.
 *
 * Thread safety: the region table is written only before vCPUs start and is
 * read-only afterwards, so lookups take no lock. */
#ifndef KVMRUN_GUEST_MEM_H
#define KVMRUN_GUEST_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GMEM_MAX_REGIONS 4

struct gmem_region {
	uint64_t gpa;      /* first guest-physical address */
	uint64_t size;     /* bytes; non-zero */
	uint8_t *host;     /* host mapping of the whole region */
	int fd;            /* backing memfd/hugetlbfs fd, or -1 for anonymous */
	uint64_t fd_offset; /* offset of the region within fd */
};

struct guest_mem {
	struct gmem_region regions[GMEM_MAX_REGIONS];
	unsigned nr_regions;
	uint64_t page_size; /* host page size backing RAM (4 KiB, 2 MiB, 1 GiB) */
};

/* Adds a region; regions must be added in ascending gpa order and must not
 * overlap. Returns 0, -EINVAL (empty, overflowing, unordered or overlapping
 * range) or -ENOSPC (table full). */
__attribute__((warn_unused_result))
int gmem_add_region(struct guest_mem *m, uint64_t gpa, uint64_t size,
		    void *host, int fd, uint64_t fd_offset);

/* Host pointer for [gpa, gpa+len), or NULL unless the whole range is RAM in
 * one region. len == 0 is allowed and checks only that gpa is inside RAM
 * (or exactly at a region's end). */
void *gmem_ptr(const struct guest_mem *m, uint64_t gpa, uint64_t len);

/* The region holding [gpa, gpa+len), or NULL. */
const struct gmem_region *gmem_find(const struct guest_mem *m, uint64_t gpa,
				    uint64_t len);

/* Copy between guest and host memory; 0 or -EFAULT if any byte is not RAM. */
__attribute__((warn_unused_result))
int gmem_read(const struct guest_mem *m, uint64_t gpa, void *dst, size_t len);
__attribute__((warn_unused_result))
int gmem_write(const struct guest_mem *m, uint64_t gpa, const void *src, size_t len);

/* Total bytes of RAM over all regions. */
uint64_t gmem_total(const struct guest_mem *m);

#endif
