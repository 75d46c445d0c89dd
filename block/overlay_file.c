/* The file store of an overlay, and merging a kept one onto a base copy.
 *
 * Format (little-endian), all offsets from the file's start:
 *   0      header, OVERLAY_FILE_HDR bytes: magic "KVMRUNOV", u32 version
 *          (1), u32 block size (4096), u64 disk size, u64 map offset
 *          (4096), u64 bytes of each bitmap, u64 data offset; zeroes after.
 *   4096   the `touched` bitmap, then the `data` bitmap (overlay_priv.h),
 *          each padded to whole 4 KiB pages;
 *   data   block b at data offset + b * 4096, the file sparse elsewhere.
 * Every field but the disk size follows from the disk size, so a header is
 * valid only when it equals the one this code would write: nothing in the
 * file (which a guest's writes fill) is trusted beyond that.
 *
 * Durability: data is written in place as the guest writes; the map only
 * at a flush (its dirty pages), then one fdatasync covers both, and the
 * flush is acknowledged after it. So after a crash the map names only
 * blocks whose data was synced with it; a block written since reads as
 * the old state the map still names. */
#include "block/overlay_priv.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define OVERLAY_FILE_MAGIC "KVMRUNOV"
#define OVERLAY_FILE_VERSION 1u
#define OVERLAY_FILE_HDR 4096u
#define OVERLAY_FILE_DATA_ALIGN (1ull << 20)
/* Larger disks than this are refused, so offsets never overflow. */
#define OVERLAY_FILE_MAX_DISK (1ull << 56)
#define OVERLAY_FILE_CHUNK (1u << 20)
#define OVERLAY_FILE_IOV_BATCH 64u

struct overlay_file {
	struct overlay_store base;
	int fd;
	uint64_t data_off;
	bool keep;
	const struct logger *lg;
	const char *who;     /* "disk0" */
};

struct overlay_file_layout {
	uint64_t size, map_bytes, data_off;
};

static struct overlay_file *overlay_file_of(struct overlay_store *s)
{
	return (struct overlay_file *)s;
}

static void overlay_file_layout(uint64_t size, size_t map_bytes, struct overlay_file_layout *l)
{
	l->size = size;
	l->map_bytes = map_bytes;
	uint64_t end = OVERLAY_FILE_HDR + 2 * (uint64_t)map_bytes;
	l->data_off = (end + OVERLAY_FILE_DATA_ALIGN - 1) / OVERLAY_FILE_DATA_ALIGN *
		      OVERLAY_FILE_DATA_ALIGN;
}

static void overlay_file_put_header(uint8_t *h, const struct overlay_file_layout *l)
{
	memset(h, 0, OVERLAY_FILE_HDR);
	memcpy(h, OVERLAY_FILE_MAGIC, 8);
	uint32_t v32 = htole32(OVERLAY_FILE_VERSION);
	memcpy(h + 8, &v32, 4);
	v32 = htole32(OVERLAY_BLOCK_SIZE);
	memcpy(h + 12, &v32, 4);
	uint64_t v[4] = { htole64(l->size), htole64(OVERLAY_FILE_HDR), htole64(l->map_bytes),
			  htole64(l->data_off) };
	memcpy(h + 16, v, sizeof(v));
}

/* Reads and checks the header; fills @l from the disk size it names.
 * Returns 0, or -EINVAL for a file that is not an overlay of ours. */
static int overlay_file_get_header(int fd, struct overlay_file_layout *l, const char **why)
{
	uint8_t h[OVERLAY_FILE_HDR], want[OVERLAY_FILE_HDR];
	ssize_t n = pread(fd, h, sizeof(h), 0);
	if (n < 0) {
		*why = "reading its header";
		return -errno;
	}
	*why = "not a kvmrun overlay file (bad or truncated header)";
	if ((size_t)n != sizeof(h) || memcmp(h, OVERLAY_FILE_MAGIC, 8) != 0)
		return -EINVAL;
	uint64_t size;
	memcpy(&size, h + 16, 8);
	size = le64toh(size);
	if (size > OVERLAY_FILE_MAX_DISK)
		return -EINVAL;
	struct overlay_map probe;
	if (overlay_map_init(&probe, size) < 0) {
		*why = "allocating its map";
		return -ENOMEM;
	}
	overlay_file_layout(size, probe.bytes, l);
	overlay_map_free(&probe);
	overlay_file_put_header(want, l);
	if (memcmp(h, want, sizeof(h)) != 0) {
		*why = "unknown version, block size or layout in its header";
		return -EINVAL;
	}
	return 0;
}

/* pread/pwrite of exactly @len bytes; -EIO when no progress is made. */
static int overlay_file_full(int fd, void *buf, size_t len, uint64_t off, bool write)
{
	uint8_t *p = buf;
	while (len) {
		ssize_t n = write ? pwrite(fd, p, len, (off_t)off) : pread(fd, p, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

static int overlay_file_read_map(int fd, const struct overlay_file_layout *l,
				 struct overlay_map *m)
{
	int r = overlay_file_full(fd, m->touched, m->bytes, OVERLAY_FILE_HDR, false);
	if (r == 0)
		r = overlay_file_full(fd, m->data, m->bytes, OVERLAY_FILE_HDR + l->map_bytes, false);
	if (r == 0)
		overlay_map_sanitise(m);
	return r;
}

/* preadv/pwritev of a whole iovec, continuing short transfers, in batches
 * copied to the stack so the caller's entries are never rewritten. */
static int overlay_file_rwv(struct overlay_file *f, uint64_t off, const struct iovec *iov,
			    unsigned cnt, bool write)
{
	uint64_t pos = f->data_off + off;
	for (unsigned i = 0; i < cnt; i += OVERLAY_FILE_IOV_BATCH) {
		struct iovec v[OVERLAY_FILE_IOV_BATCH];
		unsigned n = cnt - i < OVERLAY_FILE_IOV_BATCH ? cnt - i : OVERLAY_FILE_IOV_BATCH;
		memcpy(v, iov + i, n * sizeof(*v));
		struct iovec *cur = v;
		while (n) {
			ssize_t got = write ? pwritev(f->fd, cur, (int)n, (off_t)pos)
					    : preadv(f->fd, cur, (int)n, (off_t)pos);
			if (got < 0 && errno == EINTR)
				continue;
			if (got < 0)
				return -errno;
			if (got == 0)
				return -EIO;
			pos += (uint64_t)got;
			size_t left = (size_t)got;
			while (n && left >= cur->iov_len) {
				left -= cur->iov_len;
				cur++;
				n--;
			}
			if (n) {
				cur->iov_base = (uint8_t *)cur->iov_base + left;
				cur->iov_len -= left;
			}
		}
	}
	return 0;
}

static int overlay_file_read(struct overlay_store *s, uint64_t off, const struct iovec *iov,
			     unsigned cnt)
{
	return overlay_file_rwv(overlay_file_of(s), off, iov, cnt, false);
}

static int overlay_file_write(struct overlay_store *s, uint64_t off, const struct iovec *iov,
			      unsigned cnt)
{
	return overlay_file_rwv(overlay_file_of(s), off, iov, cnt, true);
}

/* Writes zeroes over [pos, pos + len) of @fd: punches (KEEP_SIZE), else
 * ZERO_RANGE, else writes them. */
static int overlay_file_zero(int fd, uint64_t pos, uint64_t len)
{
	if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)pos, (off_t)len) == 0)
		return 0;
	if (fallocate(fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, (off_t)pos, (off_t)len) == 0)
		return 0;
	static const uint8_t zero[OVERLAY_BLOCK_SIZE];
	while (len) {
		size_t n = len < sizeof(zero) ? (size_t)len : sizeof(zero);
		int r = overlay_file_full(fd, (void *)zero, n, pos, true);
		if (r < 0)
			return r;
		pos += n;
		len -= n;
	}
	return 0;
}

static int overlay_file_drop(struct overlay_store *s, uint64_t off, uint64_t len)
{
	struct overlay_file *f = overlay_file_of(s);
	return overlay_file_zero(f->fd, f->data_off + off, len);
}

static int overlay_file_write_map(struct overlay_file *f)
{
	struct overlay_map *m = &f->base.map;
	size_t pages = m->bytes / OVERLAY_MAP_PAGE;
	for (size_t p = 0; p < pages; p++) {
		if (!m->dirty[p])
			continue;
		size_t at = p * OVERLAY_MAP_PAGE;
		int r = overlay_file_full(f->fd, (uint8_t *)m->touched + at, OVERLAY_MAP_PAGE,
					  OVERLAY_FILE_HDR + at, true);
		if (r == 0)
			r = overlay_file_full(f->fd, (uint8_t *)m->data + at, OVERLAY_MAP_PAGE,
					      OVERLAY_FILE_HDR + m->bytes + at, true);
		if (r < 0)
			return r;
		m->dirty[p] = 0;
	}
	return 0;
}

static int overlay_file_sync(struct overlay_store *s)
{
	struct overlay_file *f = overlay_file_of(s);
	int r = overlay_file_write_map(f);
	if (r < 0) {
		log_err(f->lg, f->who, "%s.overlay=%s: writing the block map: %s", f->who, s->name,
			strerror(-r));
		return r;
	}
	while ((r = fdatasync(f->fd)) < 0 && errno == EINTR)
		;
	if (r < 0) {
		r = -errno;
		log_err(f->lg, f->who, "%s.overlay=%s: fdatasync: %s", f->who, s->name, strerror(-r));
	}
	return r;
}

static void overlay_file_destroy(struct overlay_store *s)
{
	struct overlay_file *f = overlay_file_of(s);
	if (f->fd >= 0) {
		if (f->keep)
			(void)overlay_file_sync(s); /* logged; the last flush holds */
		close(f->fd);
	}
	overlay_map_free(&s->map);
	free(s->name);
	free(f);
}

static const struct overlay_store_ops overlay_file_ops = {
	.read = overlay_file_read,
	.write = overlay_file_write,
	.drop = overlay_file_drop,
	.sync = overlay_file_sync,
	.destroy = overlay_file_destroy,
};

/* fsync of the file's directory, so a kept overlay's name survives too. */
static int overlay_file_sync_dir(const char *path)
{
	char *copy = strdup(path);
	if (!copy)
		return -ENOMEM;
	int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	free(copy);
	if (fd < 0)
		return -errno;
	int r = fsync(fd) < 0 ? -errno : 0;
	close(fd);
	return r;
}

/* A new overlay: the header written, the map all zeroes (the sparse file
 * reads so), the file as long as header, map and data. */
static int overlay_file_init(struct overlay_file *f, const char **why)
{
	struct overlay_file_layout l;
	overlay_file_layout(f->base.map.size, f->base.map.bytes, &l);
	f->data_off = l.data_off;
	uint8_t h[OVERLAY_FILE_HDR];
	overlay_file_put_header(h, &l);
	*why = "sizing it: ftruncate";
	if (ftruncate(f->fd, (off_t)(l.data_off + l.size)) < 0)
		return -errno;
	*why = "writing its header";
	int r = overlay_file_full(f->fd, h, sizeof(h), 0, true);
	if (r < 0 || !f->keep)
		return r;
	*why = "syncing it";
	if (fsync(f->fd) < 0)
		return -errno;
	return overlay_file_sync_dir(f->base.name);
}

/* A kept overlay from an earlier run: same disk size, its map loaded. */
static int overlay_file_load(struct overlay_file *f, const struct image *base, const char **why)
{
	struct overlay_file_layout l;
	int r = overlay_file_get_header(f->fd, &l, why);
	if (r < 0)
		return r;
	if (l.size != base->size) {
		log_err(f->lg, f->who, "%s.overlay=%s: made for a disk of %" PRIu64 " bytes, but "
			"%s.path=%s has %" PRIu64, f->who, f->base.name, l.size, f->who, base->path,
			base->size);
		*why = NULL;
		return -EINVAL;
	}
	f->data_off = l.data_off;
	*why = "reading its block map";
	r = overlay_file_read_map(f->fd, &l, &f->base.map);
	if (r < 0)
		return r;
	/* A file cut short reads as holes, which is what it would hold. */
	struct stat st;
	*why = "extending it: ftruncate";
	if (fstat(f->fd, &st) == 0 && (uint64_t)st.st_size < l.data_off + l.size &&
	    ftruncate(f->fd, (off_t)(l.data_off + l.size)) < 0)
		return -errno;
	return 0;
}

/* Opens (kept: reuses or creates; otherwise creates and unlinks at once,
 * so nothing is left even after a SIGKILL) and locks the file. Sets
 * *@fresh when it is new. */
static int overlay_file_open(struct overlay_file *f, bool *fresh, const char **why)
{
	const char *path = f->base.name;
	*fresh = false;
	*why = "opening it";
	f->fd = f->keep ? open(path, O_RDWR | O_CLOEXEC) : -1;
	if (f->fd < 0 && (!f->keep || errno == ENOENT)) {
		*fresh = true;
		*why = "creating it";
		f->fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	}
	if (f->fd < 0)
		return -errno;
	struct flock lk = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	if (fcntl(f->fd, F_OFD_SETLK, &lk) < 0) {
		*why = errno == EAGAIN || errno == EACCES
			       ? "locking it: another process holds it (another VM's overlay?)"
			       : "locking it";
		return errno == EAGAIN || errno == EACCES ? -EBUSY : -errno;
	}
	if (!f->keep && unlink(path) < 0) {
		*why = "unlinking it (it is removed at once unless overlay_keep=on)";
		return -errno;
	}
	struct stat st;
	*why = "fstat";
	if (fstat(f->fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode)) {
		*why = "not a regular file";
		return -EINVAL;
	}
	if (st.st_size == 0)
		*fresh = true; /* kept, but created empty (touch) */
	return 0;
}

int overlay_file_create(const struct image *base, const struct overlay_params *p,
			struct overlay_store **out)
{
	const char *who = base->name;
	struct overlay_file *f = calloc(1, sizeof(*f));
	if (!f || !(f->base.name = strdup(p->path))) {
		free(f);
		log_err(base->lg, who, "%s.overlay=%s: out of memory", who, p->path);
		return -ENOMEM;
	}
	f->base.ops = &overlay_file_ops;
	f->base.durable = p->keep;
	f->fd = -1;
	f->keep = false; /* set once opened: destroy syncs only a usable file */
	f->lg = base->lg;
	f->who = who;
	const char *why = "allocating its block map";
	int r = base->size > OVERLAY_FILE_MAX_DISK ? -EFBIG : overlay_map_init(&f->base.map, base->size);
	if (r == 0) {
		f->keep = p->keep;
		bool fresh;
		r = overlay_file_open(f, &fresh, &why);
		if (r == 0)
			r = fresh ? overlay_file_init(f, &why) : overlay_file_load(f, base, &why);
	}
	if (r < 0) {
		if (why)
			log_err(base->lg, who, "%s.overlay=%s: %s: %s", who, p->path, why, strerror(-r));
		f->keep = false;
		overlay_file_destroy(&f->base);
		return r;
	}
	log_info(base->lg, who, "overlay %s%s: %" PRIu64 " blocks written", p->path,
		 p->keep ? " (kept)" : "", f->base.map.used);
	*out = &f->base;
	return 0;
}

/* ---- merging -------------------------------------------------------------- */

/* Copies one run of blocks [b, e) (data) or zeroes it, onto @tfd. */
static int overlay_file_merge_run(int ofd, int tfd, const struct overlay_file_layout *l,
				  uint64_t b, uint64_t e, bool data, uint8_t *buf)
{
	uint64_t pos = b * OVERLAY_BLOCK_SIZE;
	uint64_t end = e * OVERLAY_BLOCK_SIZE < l->size ? e * OVERLAY_BLOCK_SIZE : l->size;
	if (!data)
		return overlay_file_zero(tfd, pos, end - pos);
	while (pos < end) {
		size_t n = end - pos < OVERLAY_FILE_CHUNK ? (size_t)(end - pos) : OVERLAY_FILE_CHUNK;
		int r = overlay_file_full(ofd, buf, n, l->data_off + pos, false);
		if (r < 0)
			return r;
		r = overlay_file_full(tfd, buf, n, pos, true);
		if (r < 0)
			return r;
		pos += n;
	}
	return 0;
}

static int overlay_file_merge_map(int ofd, int tfd, const struct overlay_file_layout *l,
				  const struct overlay_map *m, uint64_t *blocks)
{
	uint8_t *buf = malloc(OVERLAY_FILE_CHUNK);
	if (!buf)
		return -ENOMEM;
	int r = 0;
	*blocks = 0;
	for (uint64_t b = 0; b < m->nblocks && r == 0;) {
		if (!overlay_map_touched(m, b)) {
			b++;
			continue;
		}
		bool data = overlay_map_data(m, b);
		uint64_t e = b + 1;
		while (e < m->nblocks && overlay_map_touched(m, e) && overlay_map_data(m, e) == data)
			e++;
		r = overlay_file_merge_run(ofd, tfd, l, b, e, data, buf);
		*blocks += e - b;
		b = e;
	}
	free(buf);
	return r;
}

int overlay_merge(const char *overlay_path, const char *target_path,
		  const struct logger *lg, uint64_t *blocks)
{
	const char *who = "overlay-merge";
	uint64_t n = 0;
	struct overlay_map m = { 0 };
	struct overlay_file_layout l;
	const char *why = "opening it";
	int tfd = -1, r;
	int ofd = open(overlay_path, O_RDONLY | O_CLOEXEC);
	if (ofd < 0) {
		r = -errno;
		goto bad_overlay;
	}
	r = overlay_file_get_header(ofd, &l, &why);
	if (r == 0) {
		why = "allocating its block map";
		r = overlay_map_init(&m, l.size);
	}
	if (r == 0) {
		why = "reading its block map";
		r = overlay_file_read_map(ofd, &l, &m);
	}
	if (r < 0)
		goto bad_overlay;

	tfd = open(target_path, O_RDWR | O_CLOEXEC);
	off_t tsize = tfd < 0 ? -1 : lseek(tfd, 0, SEEK_END);
	if (tfd < 0 || tsize < 0) {
		r = -errno;
		log_err(lg, who, "%s: opening it read-write: %s", target_path, strerror(-r));
		goto out;
	}
	if ((uint64_t)tsize != l.size) {
		r = -EINVAL;
		log_err(lg, who, "%s has %lld bytes, but %s was made for a disk of %" PRIu64
			" bytes: merge onto a copy of its base image", target_path, (long long)tsize,
			overlay_path, l.size);
		goto out;
	}
	r = overlay_file_merge_map(ofd, tfd, &l, &m, &n);
	if (r == 0 && fdatasync(tfd) < 0)
		r = -errno;
	if (r < 0)
		log_err(lg, who, "merging %s onto %s: %s", overlay_path, target_path, strerror(-r));
	goto out;

bad_overlay:
	log_err(lg, who, "%s: %s: %s", overlay_path, why, strerror(-r));
out:
	overlay_map_free(&m);
	if (ofd >= 0)
		close(ofd);
	if (tfd >= 0)
		close(tfd);
	if (blocks)
		*blocks = n;
	return r;
}
