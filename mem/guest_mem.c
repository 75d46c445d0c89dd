#include "mem/guest_mem.h"

#include <errno.h>
#include <string.h>

int gmem_add_region(struct guest_mem *m, uint64_t gpa, uint64_t size,
		    void *host, int fd, uint64_t fd_offset)
{
	if (size == 0 || gpa + size < gpa || host == NULL)
		return -EINVAL;
	if (m->nr_regions == GMEM_MAX_REGIONS)
		return -ENOSPC;
	if (m->nr_regions) {
		const struct gmem_region *last = &m->regions[m->nr_regions - 1];
		if (gpa < last->gpa + last->size)
			return -EINVAL;
	}
	m->regions[m->nr_regions++] = (struct gmem_region){
		.gpa = gpa, .size = size, .host = host, .fd = fd, .fd_offset = fd_offset,
	};
	return 0;
}

const struct gmem_region *gmem_find(const struct guest_mem *m, uint64_t gpa,
				    uint64_t len)
{
	for (unsigned i = 0; i < m->nr_regions; i++) {
		const struct gmem_region *r = &m->regions[i];
		if (gpa < r->gpa)
			continue;
		uint64_t off = gpa - r->gpa;
		/* written so that no sum can overflow */
		if (off <= r->size && len <= r->size - off)
			return r;
	}
	return NULL;
}

void *gmem_ptr(const struct guest_mem *m, uint64_t gpa, uint64_t len)
{
	const struct gmem_region *r = gmem_find(m, gpa, len);
	return r ? r->host + (gpa - r->gpa) : NULL;
}

int gmem_read(const struct guest_mem *m, uint64_t gpa, void *dst, size_t len)
{
	const void *p = gmem_ptr(m, gpa, len);
	if (!p)
		return -EFAULT;
	memcpy(dst, p, len);
	return 0;
}

int gmem_write(const struct guest_mem *m, uint64_t gpa, const void *src, size_t len)
{
	void *p = gmem_ptr(m, gpa, len);
	if (!p)
		return -EFAULT;
	memcpy(p, src, len);
	return 0;
}

uint64_t gmem_total(const struct guest_mem *m)
{
	uint64_t t = 0;
	for (unsigned i = 0; i < m->nr_regions; i++)
		t += m->regions[i].size;
	return t;
}
