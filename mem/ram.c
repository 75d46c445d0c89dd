#include "mem/ram.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/memfd.h>
#include <numa.h>
#include <numaif.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mem/layout.h"

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

static uint64_t hugepage_bytes(enum hugepages h)
{
	switch (h) {
	case HUGEPAGES_2M: return 2ull << 20;
	case HUGEPAGES_1G: return 1ull << 30;
	default: return (uint64_t)sysconf(_SC_PAGESIZE);
	}
}

static int ram_map_hugetlb(struct ram *r, const struct ram_opts *o,
			   const struct logger *lg)
{
	unsigned flag = o->hugepages == HUGEPAGES_1G ? MFD_HUGE_1GB : MFD_HUGE_2MB;
	r->fd = memfd_create(o->name ? o->name : "kvmrun-ram",
			     MFD_CLOEXEC | MFD_HUGETLB | flag);
	if (r->fd < 0) {
		int e = errno;
		log_err(lg, "mem", "mem_hugepages=%s: memfd_create(MFD_HUGETLB): %s",
			o->hugepages == HUGEPAGES_1G ? "1G" : "2M", strerror(e));
		return -e;
	}
	if (ftruncate(r->fd, (off_t)o->size) < 0) {
		int e = errno;
		log_err(lg, "mem", "mem_hugepages: sizing hugetlb memfd to %llu bytes: %s",
			(unsigned long long)o->size, strerror(e));
		return -e;
	}
	/* A shared hugetlb mapping reserves its pages now, so a shortage is an
	 * mmap error here rather than a SIGBUS in the middle of the guest. */
	void *p = mmap(NULL, o->size, PROT_READ | PROT_WRITE, MAP_SHARED, r->fd, 0);
	if (p == MAP_FAILED) {
		int e = errno;
		log_err(lg, "mem", "mem_hugepages=%s: cannot reserve %llu hugepages of %llu MiB (%s); "
			"reserve more in /proc/sys/vm/nr_hugepages%s",
			o->hugepages == HUGEPAGES_1G ? "1G" : "2M",
			(unsigned long long)(o->size / r->page_size),
			(unsigned long long)(r->page_size >> 20), strerror(e),
			o->hugepages == HUGEPAGES_1G ?
			" (1G pages: /sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages)" : "");
		return -e;
	}
	r->base = p;
	return 0;
}

static int ram_map_anonymous(struct ram *r, const struct ram_opts *o,
			     const struct logger *lg)
{
	/* Over-allocate by 2 MiB and trim so the mapping is 2 MiB aligned:
	 * transparent hugepages need it, and it costs nothing otherwise. */
	const uint64_t align = 2ull << 20;
	uint64_t len = o->size + align;
	uint8_t *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED) {
		int e = errno;
		log_err(lg, "mem", "mem=%lluM: mmap of guest RAM: %s",
			(unsigned long long)(o->size >> 20), strerror(e));
		return -e;
	}
	uint8_t *aligned = (uint8_t *)(((uintptr_t)p + align - 1) & ~(uintptr_t)(align - 1));
	if (aligned > p)
		munmap(p, (size_t)(aligned - p));
	uint8_t *end = p + len, *want_end = aligned + o->size;
	if (end > want_end)
		munmap(want_end, (size_t)(end - want_end));
	r->base = aligned;
	return 0;
}

/* restore.prefault=on: the whole file into the page cache and mapped,
 * read-only until the guest writes (shared with other VMs until then). */
static int ram_prefault_read(struct ram *r, const struct ram_opts *o, const struct logger *lg)
{
	if (madvise(r->base, o->size, MADV_POPULATE_READ) == 0)
		return 0;
	if (errno != EINVAL) {
		int e = errno;
		log_err(lg, "mem", "restore.prefault=on: reading in %s: %s", o->file, strerror(e));
		return -e;
	}
	/* kernels before 5.14: read each page */
	for (uint64_t off = 0; off < o->size; off += r->page_size)
		(void)((volatile uint8_t *)r->base)[off];
	return 0;
}

/* Maps @o->file MAP_PRIVATE over an anonymous reservation aligned as
 * ram_map_anonymous's (so THP stays possible for written pages). */
static int ram_map_file(struct ram *r, const struct ram_opts *o, const struct logger *lg)
{
	if (o->hugepages != HUGEPAGES_OFF || o->numa_node >= 0) {
		log_err(lg, "mem", "restore: guest RAM from a snapshot's memory file takes small "
			"pages and no NUMA binding (mem_hugepages=off, mem_numa_node=none)");
		return -EINVAL;
	}
	int fd = open(o->file, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		log_err(lg, "mem", "restore: opening memory file %s: %s", o->file, strerror(e));
		return -e;
	}
	struct stat st;
	int rc = fstat(fd, &st) < 0 ? -errno : 0;
	if (rc == 0 && (uint64_t)st.st_size != o->size) {
		log_err(lg, "mem", "restore: memory file %s is %llu bytes, mem= says %llu",
			o->file, (unsigned long long)st.st_size, (unsigned long long)o->size);
		rc = -EINVAL;
	}
	if (rc == 0)
		rc = ram_map_anonymous(r, o, lg);
	if (rc == 0 && mmap(r->base, o->size, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_FIXED | MAP_NORESERVE, fd, 0) == MAP_FAILED) {
		rc = -errno;
		log_err(lg, "mem", "restore: mmap of memory file %s: %s", o->file, strerror(-rc));
	}
	close(fd); /* the mapping holds the file */
	r->file_backed = true;
	if (rc == 0 && o->file_prefault)
		rc = ram_prefault_read(r, o, lg);
	return rc;
}

static int ram_bind_node(struct ram *r, int node, const struct logger *lg)
{
	if (numa_available() < 0) {
		log_err(lg, "mem", "mem_numa_node=%d: this host has no NUMA support", node);
		return -ENOSYS;
	}
	if (node > numa_max_node() || !numa_bitmask_isbitset(numa_all_nodes_ptr, (unsigned)node)) {
		log_err(lg, "mem", "mem_numa_node=%d: no such NUMA node (this host has nodes 0-%d)",
			node, numa_max_node());
		return -EINVAL;
	}
	struct bitmask *mask = numa_allocate_nodemask();
	if (!mask)
		return -ENOMEM;
	numa_bitmask_setbit(mask, (unsigned)node);
	/* MPOL_BIND is strict: an allocation the node cannot satisfy fails
	 * instead of silently landing elsewhere. */
	long rc = mbind(r->base, r->size, MPOL_BIND, mask->maskp, mask->size + 1,
			MPOL_MF_STRICT | MPOL_MF_MOVE);
	int e = errno;
	numa_free_nodemask(mask);
	if (rc < 0) {
		log_err(lg, "mem", "mem_numa_node=%d: mbind of guest RAM: %s", node, strerror(e));
		return -e;
	}
	return 0;
}

static int ram_prefault(struct ram *r, const struct logger *lg)
{
	if (madvise(r->base, r->size, MADV_POPULATE_WRITE) == 0)
		return 0;
	if (errno != EINVAL) {
		int e = errno;
		log_err(lg, "mem", "mem_prefault=on: populating %llu MiB of guest RAM: %s",
			(unsigned long long)(r->size >> 20), strerror(e));
		return -e;
	}
	/* kernels before 5.14: touch each page */
	for (uint64_t off = 0; off < r->size; off += r->page_size)
		((volatile uint8_t *)r->base)[off] = 0;
	return 0;
}

static int ram_advise(struct ram *r, const struct ram_opts *o, const struct logger *lg)
{
	if (o->thp && r->fd < 0 && madvise(r->base, r->size, MADV_HUGEPAGE) < 0) {
		int e = errno;
		log_err(lg, "mem", "mem_thp=on: madvise(MADV_HUGEPAGE): %s "
			"(is /sys/kernel/mm/transparent_hugepage/enabled 'never'?)", strerror(e));
		return -e;
	}
	if (o->merge && madvise(r->base, r->size, MADV_MERGEABLE) < 0) {
		int e = errno;
		log_err(lg, "mem", "mem_merge=on: madvise(MADV_MERGEABLE): %s "
			"(is the kernel built with KSM?)", strerror(e));
		return -e;
	}
	/* Guest RAM in a core dump is the guest's data, not ours. */
	madvise(r->base, r->size, MADV_DONTDUMP);
	return 0;
}

static int ram_add_regions(struct ram *r)
{
	uint64_t low = r->size < LAYOUT_MMIO_HOLE ? r->size : LAYOUT_MMIO_HOLE;
	int rc = gmem_add_region(&r->mem, 0, low, r->base, r->fd, 0);
	if (rc == 0 && r->size > low)
		rc = gmem_add_region(&r->mem, LAYOUT_4G, r->size - low, r->base + low,
				     r->fd, low);
	r->mem.page_size = r->page_size;
	return rc;
}

int ram_create(struct ram *r, const struct ram_opts *o, const struct logger *lg)
{
	memset(r, 0, sizeof(*r));
	r->fd = -1;
	r->size = o->size;
	r->page_size = hugepage_bytes(o->hugepages);
	r->numa_node = o->numa_node;
	r->giveback = o->hugepages == HUGEPAGES_OFF || o->hugepage_giveback;
	if (o->size == 0 || o->size % r->page_size) {
		log_err(lg, "mem", "mem=%llu is not a multiple of the %llu KiB page size",
			(unsigned long long)o->size, (unsigned long long)(r->page_size >> 10));
		return -EINVAL;
	}
	int rc = o->file ? ram_map_file(r, o, lg) :
		 o->hugepages != HUGEPAGES_OFF ? ram_map_hugetlb(r, o, lg)
					       : ram_map_anonymous(r, o, lg);
	if (rc == 0 && o->numa_node >= 0)
		rc = ram_bind_node(r, o->numa_node, lg);
	if (rc == 0)
		rc = ram_advise(r, o, lg);
	if (rc == 0 && o->prefault && !o->file)
		rc = ram_prefault(r, lg);
	if (rc == 0)
		rc = ram_add_regions(r);
	if (rc < 0)
		ram_destroy(r);
	return rc;
}

void ram_destroy(struct ram *r)
{
	if (r->base)
		munmap(r->base, r->size);
	if (r->fd >= 0)
		close(r->fd);
	r->base = NULL;
	r->fd = -1;
	memset(&r->mem, 0, sizeof(r->mem));
}

bool ram_can_give_back(const struct ram *r)
{
	return r->giveback;
}

int ram_discard(struct ram *r, uint64_t gpa, uint64_t len)
{
	const struct gmem_region *reg = gmem_find(&r->mem, gpa, len);
	if (!reg || len == 0 || gpa % r->page_size || len % r->page_size)
		return -EINVAL;
	if (!r->giveback)
		return -EPERM;
	uint64_t off = (uint64_t)(reg->host - r->base) + (gpa - reg->gpa);
	if (r->fd >= 0) {
		if (fallocate(r->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			      (off_t)off, (off_t)len) < 0)
			return -errno;
		return 0;
	}
	/* MADV_DONTNEED on a private file mapping would bring the file's
	 * page back, not zeroes: map fresh anonymous memory there instead
	 * (KVM follows the change through its MMU notifier). */
	if (r->file_backed) {
		if (mmap(r->base + off, len, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0) == MAP_FAILED)
			return -errno;
		return 0;
	}
	if (madvise(r->base + off, len, MADV_DONTNEED) < 0)
		return -errno;
	return 0;
}

uint64_t ram_offset_to_gpa(const struct ram *r, uint64_t off)
{
	return off < LAYOUT_MMIO_HOLE ? off : off - LAYOUT_MMIO_HOLE + LAYOUT_4G;
}
