#include "block/image.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <linux/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <unistd.h>

#define IMAGE_ZERO_BUF_LEN (1u << 20)
#define PUNCH_MODE (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE)

/* Reads one unsigned number from a sysfs file; 0 when it cannot. */
static uint64_t image_sysfs_u64(const char *path)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return 0;
	unsigned long long v = 0;
	if (fscanf(f, "%llu", &v) != 1)
		v = 0;
	fclose(f);
	return v;
}

/* Block devices: fallocate(PUNCH_HOLE) becomes a write-zeroes-with-unmap
 * that the kernel does not emulate, so it works only where the queue
 * advertises write-zeroes. Partitions have no queue/ of their own. */
static bool image_blockdev_can_punch(dev_t rdev)
{
	char p[128];
	snprintf(p, sizeof(p), "/sys/dev/block/%u:%u/queue/write_zeroes_max_bytes",
		 major(rdev), minor(rdev));
	if (access(p, R_OK) != 0)
		snprintf(p, sizeof(p), "/sys/dev/block/%u:%u/../queue/write_zeroes_max_bytes",
			 major(rdev), minor(rdev));
	return image_sysfs_u64(p) > 0;
}

/* Regular files: punching a hole at the end of the file changes nothing a
 * reader can see, and tells us whether the file system can punch. */
static bool image_file_can_punch(struct image *img)
{
	if (fallocate(img->fd, PUNCH_MODE, (off_t)img->size, 4096) == 0)
		return true;
	if (errno != EOPNOTSUPP && errno != ENOSYS && errno != EINVAL)
		log_warn(img->lg, img->name, "probing discard on %s: fallocate: %s; discard disabled",
			 img->path, strerror(errno));
	return false;
}

static void image_dio_align(struct image *img)
{
	img->dio_mem_align = 1;
	img->dio_offset_align = 1;
	if (!img->direct)
		return;
	img->dio_mem_align = img->logical_block_size;
	img->dio_offset_align = img->logical_block_size;
	struct statx stx;
	memset(&stx, 0, sizeof(stx));
	if (syscall(SYS_statx, img->fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) == 0 &&
	    (stx.stx_mask & STATX_DIOALIGN) && stx.stx_dio_offset_align) {
		img->dio_mem_align = stx.stx_dio_mem_align ? stx.stx_dio_mem_align : 1;
		img->dio_offset_align = stx.stx_dio_offset_align;
	}
	/* A length must satisfy both; keep it simple for callers. */
	if (img->dio_mem_align < img->dio_offset_align)
		img->dio_mem_align = img->dio_offset_align;
}

int image_open(struct image *img, const char *name, const char *path,
	       bool readonly, enum disk_cache cache, const struct logger *lg)
{
	memset(img, 0, sizeof(*img));
	img->fd = -1;
	img->name = name;
	img->lg = lg;
	img->readonly = readonly;
	img->direct = cache == DISK_CACHE_NONE;
	img->path = strdup(path);
	if (!img->path) {
		log_err(lg, name, "%s.path=%s: out of memory", name, path);
		return -ENOMEM;
	}

	/* O_NONBLOCK only for the open: a FIFO must not block it (it is then
	 * refused), and I/O on the image must block */
	int flags = (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC | O_NONBLOCK;
	if (img->direct)
		flags |= O_DIRECT;
	img->fd = open(path, flags);
	if (img->fd < 0) {
		int err = errno;
		if (err == EINVAL && img->direct)
			log_err(lg, name, "%s.path=%s: opening with O_DIRECT (cache=none): %s: the "
				"file system refuses direct I/O; use %s.cache=writeback",
				name, path, strerror(err), name);
		else
			log_err(lg, name, "%s.path=%s: opening %s: %s", name, path,
				readonly ? "read-only" : "read-write", strerror(err));
		image_close(img);
		return -err;
	}
	struct stat st;
	if (fstat(img->fd, &st) < 0) {
		int err = errno;
		log_err(lg, name, "%s.path=%s: fstat: %s", name, path, strerror(err));
		image_close(img);
		return -err;
	}
	if (!S_ISBLK(st.st_mode) && !S_ISREG(st.st_mode)) {
		log_err(lg, name, "%s.path=%s: %s, not a regular file or a block device", name, path,
			S_ISDIR(st.st_mode) ? "a directory" : S_ISFIFO(st.st_mode) ? "a FIFO" :
			S_ISCHR(st.st_mode) ? "a character device" : "a special file");
		image_close(img);
		return -EINVAL;
	}
	int fl = fcntl(img->fd, F_GETFL);
	if (fl < 0 || fcntl(img->fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
		int err = errno;
		log_err(lg, name, "%s.path=%s: fcntl: %s", name, path, strerror(err));
		image_close(img);
		return -err;
	}

	/* An OFD lock belongs to this open file description: it conflicts with
	 * other processes and with a second open of the same file here, and
	 * goes away with the fd. */
	struct flock lk = {
		.l_type = readonly ? F_RDLCK : F_WRLCK,
		.l_whence = SEEK_SET,
		.l_start = 0,
		.l_len = 0,
	};
	if (fcntl(img->fd, F_OFD_SETLK, &lk) < 0) {
		int err = errno;
		if (err == EAGAIN || err == EACCES) {
			log_err(lg, name, "%s.path=%s: locking it for %s: another process holds a "
				"lock on it (is another VM using this image?)", name, path,
				readonly ? "reading" : "writing");
			err = EBUSY;
		} else {
			log_err(lg, name, "%s.path=%s: locking it: fcntl(F_OFD_SETLK): %s", name, path,
				strerror(err));
		}
		image_close(img);
		return -err;
	}

	if (S_ISBLK(st.st_mode)) {
		img->blockdev = true;
		uint64_t sz = 0;
		int lbs = 0;
		if (ioctl(img->fd, BLKGETSIZE64, &sz) < 0) {
			int err = errno;
			log_err(lg, name, "%s.path=%s: reading its size: ioctl(BLKGETSIZE64): %s",
				name, path, strerror(err));
			image_close(img);
			return -err;
		}
		if (ioctl(img->fd, BLKSSZGET, &lbs) < 0) {
			int err = errno;
			log_err(lg, name, "%s.path=%s: reading its block size: ioctl(BLKSSZGET): %s",
				name, path, strerror(err));
			image_close(img);
			return -err;
		}
		img->size = sz;
		img->logical_block_size = lbs > 0 ? (unsigned)lbs : 512;
	} else {
		img->size = (uint64_t)st.st_size;
		img->logical_block_size = 512;
	}
	image_dio_align(img);

	if (!readonly) {
		img->can_discard = img->blockdev ? image_blockdev_can_punch(st.st_rdev)
						 : image_file_can_punch(img);
		img->punch_ok = img->can_discard;
		img->zero_range_ok = true;
		img->can_write_zeroes = true;
		void *z = mmap(NULL, IMAGE_ZERO_BUF_LEN, PROT_READ,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (z == MAP_FAILED) {
			int err = errno;
			log_err(lg, name, "%s.path=%s: mapping a zero buffer: %s", name, path,
				strerror(err));
			image_close(img);
			return -err;
		}
		img->zero_buf = z;
		img->zero_buf_len = IMAGE_ZERO_BUF_LEN;
	}

	log_debug(lg, name, "%s: %" PRIu64 " bytes, %s, %s, block %u, dio align mem %u offset %u%s",
		  path, img->size, readonly ? "read-only" : "read-write",
		  img->direct ? "O_DIRECT" : "page cache", img->logical_block_size,
		  img->dio_mem_align, img->dio_offset_align,
		  img->can_discard ? ", discard" : "");
	return 0;
}

void image_close(struct image *img)
{
	if (img->fd >= 0) {
		/* Unlock explicitly: an io_uring that registered this file may
		 * hold a reference for a while after its ring is closed (its
		 * teardown is asynchronous), and the lock would live as long,
		 * so the next VM on this image would find it still taken. */
		struct flock fl = { .l_type = F_UNLCK, .l_whence = SEEK_SET };
		fcntl(img->fd, F_OFD_SETLK, &fl);
		close(img->fd);
	}
	img->fd = -1;
	if (img->zero_buf)
		munmap((void *)img->zero_buf, img->zero_buf_len);
	img->zero_buf = NULL;
	img->zero_buf_len = 0;
	free(img->path);
	img->path = NULL;
}

int image_check_range(const struct image *img, uint64_t offset, uint64_t len)
{
	if (offset > img->size || len > img->size - offset)
		return -EINVAL;
	return 0;
}

int image_zero_mode(const struct image *img)
{
	if (img->zero_range_ok)
		return FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE;
	if (img->punch_ok)
		return PUNCH_MODE;
	return 0;
}

void image_mode_refused(struct image *img, int mode)
{
	if (mode & FALLOC_FL_ZERO_RANGE) {
		if (img->zero_range_ok)
			log_info(img->lg, img->name, "%s refuses FALLOC_FL_ZERO_RANGE; "
				 "write-zeroes falls back", img->path);
		img->zero_range_ok = false;
	} else if (mode & FALLOC_FL_PUNCH_HOLE) {
		if (img->punch_ok)
			log_info(img->lg, img->name, "%s refuses FALLOC_FL_PUNCH_HOLE; "
				 "discard disabled", img->path);
		img->punch_ok = false;
		img->can_discard = false;
	}
}

static int image_fallocate(struct image *img, int mode, uint64_t offset, uint64_t len)
{
	if (fallocate(img->fd, mode, (off_t)offset, (off_t)len) == 0)
		return 0;
	return -errno;
}

static bool image_refusal(int err)
{
	return err == -EOPNOTSUPP || err == -ENOSYS || err == -EINVAL;
}

int image_discard(struct image *img, uint64_t offset, uint64_t len)
{
	if (img->readonly)
		return -EROFS;
	if (image_check_range(img, offset, len))
		return -EINVAL;
	if (!img->can_discard)
		return -EOPNOTSUPP;
	if (len == 0)
		return 0;
	int r = image_fallocate(img, PUNCH_MODE, offset, len);
	if (r == -EOPNOTSUPP) {
		image_mode_refused(img, PUNCH_MODE);
	} else if (r < 0) {
		log_warn(img->lg, img->name, "discarding %" PRIu64 "+%" PRIu64 " of %s: fallocate: %s",
			 offset, len, img->path, strerror(-r));
	}
	return r;
}

int image_write_zeroes(struct image *img, uint64_t offset, uint64_t len)
{
	if (img->readonly)
		return -EROFS;
	if (image_check_range(img, offset, len))
		return -EINVAL;
	if (len == 0)
		return 0;
	int mode;
	while ((mode = image_zero_mode(img)) != 0) {
		int r = image_fallocate(img, mode, offset, len);
		if (r == 0)
			return 0;
		if (!image_refusal(r)) {
			log_warn(img->lg, img->name, "zeroing %" PRIu64 "+%" PRIu64 " of %s: fallocate: %s",
				 offset, len, img->path, strerror(-r));
			return r;
		}
		image_mode_refused(img, mode);
	}
	while (len) {
		size_t chunk = len < img->zero_buf_len ? (size_t)len : img->zero_buf_len;
		ssize_t n = pwrite(img->fd, img->zero_buf, chunk, (off_t)offset);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int err = n < 0 ? errno : EIO;
			log_warn(img->lg, img->name, "zeroing %" PRIu64 "+%zu of %s: pwrite: %s",
				 offset, chunk, img->path, strerror(err));
			return -err;
		}
		offset += (uint64_t)n;
		len -= (uint64_t)n;
	}
	return 0;
}
