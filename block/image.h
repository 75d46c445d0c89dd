/* Disk images: a raw image file or a host block device opened for one disk.
 *
 * image_open() opens the file (read-only or read-write; cache=none adds
 * O_DIRECT), takes an OFD lock on it so that two VMs (or two disks of one VM)
 * cannot write the same image at once, and learns its size, logical block
 * size, O_DIRECT alignment and whether it can discard. Every failure is
 * logged with what was being done, the file and strerror, and returned as
 * -errno.
 *
 * Thread: a struct image is owned by the event thread that runs its I/O
 * engine (block/engine.h); the fields below are read-only after image_open()
 * except the *_ok flags, which the engines clear on that thread when the file
 * system refuses an fallocate mode. */
#ifndef KVMRUN_IMAGE_H
#define KVMRUN_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/config.h"
#include "lib/log.h"

struct image {
	int fd;
	char *path;                  /* owned copy, for messages */
	const char *name;            /* borrowed: "disk0", the log's speaker */
	const struct logger *lg;     /* borrowed */

	bool readonly;
	bool direct;                 /* opened with O_DIRECT (cache=none) */
	bool blockdev;               /* a block device, not a regular file */

	uint64_t size;               /* bytes */
	unsigned logical_block_size; /* BLKSSZGET for devices, 512 for files */
	/* O_DIRECT constraints (1 and 1 when !direct): buffer addresses and
	 * lengths must be multiples of dio_mem_align, file offsets and lengths
	 * multiples of dio_offset_align. */
	unsigned dio_mem_align;
	unsigned dio_offset_align;

	/* Discard (FALLOC_FL_PUNCH_HOLE|KEEP_SIZE) is supported: probed at open
	 * (always false for read-only images). */
	bool can_discard;
	/* Write-zeroes always works: FALLOC_FL_ZERO_RANGE, else PUNCH_HOLE,
	 * else writing zeroes from zero_buf. False only for read-only images. */
	bool can_write_zeroes;
	bool zero_range_ok;          /* ZERO_RANGE not refused yet */
	bool punch_ok;               /* PUNCH_HOLE not refused yet */

	/* zero_buf_len bytes of zeroes, aligned for O_DIRECT; never written. */
	const void *zero_buf;
	size_t zero_buf_len;
};

/* Opens @path for the disk called @name (its config prefix, "disk0": a
 * failure is logged as "NAME.path=PATH: what: strerror", naming the key it
 * came from, and the hint "use NAME.cache=writeback" when the file system
 * refuses O_DIRECT). A FIFO is refused without blocking.
 * Returns 0 and fills @img, or -errno: -EBUSY when another open file
 * description (another process, or another image_open of the same file)
 * holds a conflicting lock; -EINVAL for something that is neither a regular
 * file nor a block device, or O_DIRECT refused. @lg and @name must outlive
 * the image. */
__attribute__((warn_unused_result))
int image_open(struct image *img, const char *name, const char *path,
	       bool readonly, enum disk_cache cache, const struct logger *lg);

/* Closes the file (dropping the lock) and frees what image_open() took.
 * Safe on an image whose open failed or that was closed already. */
void image_close(struct image *img);

/* 0 when [offset, offset+len) lies within the image, else -EINVAL
 * (overflow included). */
int image_check_range(const struct image *img, uint64_t offset, uint64_t len);

/* Synchronous discard: PUNCH_HOLE|KEEP_SIZE. Returns 0, -EOPNOTSUPP when
 * the file cannot (and clears can_discard), -EROFS read-only, or -errno. */
int image_discard(struct image *img, uint64_t offset, uint64_t len);

/* Synchronous write-zeroes along the fallback chain ZERO_RANGE, PUNCH_HOLE,
 * writing zeroes; clears the *_ok flag of each mode the file refuses.
 * Returns 0, -EROFS read-only, or -errno. */
int image_write_zeroes(struct image *img, uint64_t offset, uint64_t len);

/* The fallocate mode write-zeroes tries first now (ZERO_RANGE or
 * PUNCH_HOLE|KEEP_SIZE), or 0 when only writing zeroes is left. */
int image_zero_mode(const struct image *img);

/* Records that the file refused fallocate @mode with -EOPNOTSUPP (or
 * -EINVAL, which some file systems return for unknown modes): the next
 * image_zero_mode() moves on, and a refused punch clears can_discard. */
void image_mode_refused(struct image *img, int mode);

#endif
