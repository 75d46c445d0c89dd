/* The memory store of an overlay: one anonymous, MAP_NORESERVE mapping as
 * large as the disk, where block b lives at b's disk offset. Only the
 * pages written are ever backed (small pages, never huge ones), so its
 * cost is the blocks the guest wrote (bounded by overlay_max in
 * block/overlay.c); a dropped range goes back to the kernel with
 * MADV_DONTNEED and reads as zeroes. */
#include "block/overlay_priv.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

struct overlay_mem {
	struct overlay_store base;
	uint8_t *mem;
	size_t len;
};

static struct overlay_mem *overlay_mem_of(struct overlay_store *s)
{
	return (struct overlay_mem *)s;
}

static int overlay_mem_read(struct overlay_store *s, uint64_t off, const struct iovec *iov,
			    unsigned cnt)
{
	const uint8_t *p = overlay_mem_of(s)->mem + off;
	for (unsigned i = 0; i < cnt; i++) {
		memcpy(iov[i].iov_base, p, iov[i].iov_len);
		p += iov[i].iov_len;
	}
	return 0;
}

static int overlay_mem_write(struct overlay_store *s, uint64_t off, const struct iovec *iov,
			     unsigned cnt)
{
	uint8_t *p = overlay_mem_of(s)->mem + off;
	for (unsigned i = 0; i < cnt; i++) {
		memcpy(p, iov[i].iov_base, iov[i].iov_len);
		p += iov[i].iov_len;
	}
	return 0;
}

static int overlay_mem_drop(struct overlay_store *s, uint64_t off, uint64_t len)
{
	struct overlay_mem *m = overlay_mem_of(s);
	/* The disk's last block may be partial; its page is whole. */
	uint64_t end = (off + len + OVERLAY_BLOCK_SIZE - 1) / OVERLAY_BLOCK_SIZE * OVERLAY_BLOCK_SIZE;
	if (madvise(m->mem + off, (size_t)(end - off), MADV_DONTNEED) == 0)
		return 0;
	/* Not expected on private anonymous memory; zero it by hand. */
	memset(m->mem + off, 0, (size_t)len);
	return 0;
}

static void overlay_mem_destroy(struct overlay_store *s)
{
	struct overlay_mem *m = overlay_mem_of(s);
	if (m->mem)
		munmap(m->mem, m->len);
	overlay_map_free(&s->map);
	free(s->name);
	free(m);
}

static const struct overlay_store_ops overlay_mem_ops = {
	.read = overlay_mem_read,
	.write = overlay_mem_write,
	.drop = overlay_mem_drop,
	.destroy = overlay_mem_destroy,
};

int overlay_mem_create(const struct image *base, struct overlay_store **out)
{
	struct overlay_mem *m = calloc(1, sizeof(*m));
	if (!m || !(m->base.name = strdup("memory"))) {
		free(m);
		log_err(base->lg, base->name, "%s.overlay=memory: out of memory", base->name);
		return -ENOMEM;
	}
	m->base.ops = &overlay_mem_ops;
	int r = overlay_map_init(&m->base.map, base->size);
	if (r < 0) {
		log_err(base->lg, base->name, "%s.overlay=memory: allocating the block map of %" PRIu64
			" blocks: %s", base->name, m->base.map.nblocks, strerror(-r));
		overlay_mem_destroy(&m->base);
		return r;
	}
	m->len = (size_t)(m->base.map.nblocks * OVERLAY_BLOCK_SIZE);
	if (m->len) {
		void *p = mmap(NULL, m->len, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (p == MAP_FAILED) {
			r = -errno;
			log_err(base->lg, base->name, "%s.overlay=memory: reserving %zu bytes of "
				"address space: mmap: %s", base->name, m->len, strerror(-r));
			m->len = 0;
			overlay_mem_destroy(&m->base);
			return r;
		}
		m->mem = p;
		/* A block is a page: a transparent huge page would make the
		 * guest's first 4 KiB write to a 2 MiB region allocate (and
		 * zero) all of it. */
		if (madvise(p, m->len, MADV_NOHUGEPAGE) < 0)
			log_debug(base->lg, base->name, "%s.overlay=memory: madvise(MADV_NOHUGEPAGE): %s",
				  base->name, strerror(errno));
	}
	*out = &m->base;
	return 0;
}
