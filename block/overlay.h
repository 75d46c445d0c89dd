/* Disk overlays: a copy-on-write layer over a read-only base image, so
 * that many VMs boot from one image and each one's writes stay its own.
 *
 * With an overlay, the disk's image (block/image.h) is opened read-only
 * and its engine (block/engine.h, engine_params.overlay) sends reads of
 * blocks never written straight to the base's engine (io_uring or sync),
 * while writes, discards and write-zeroes go to a store:
 *   OVERLAY_MEMORY  anonymous memory, gone when the disk is;
 *   OVERLAY_FILE    a sparse file with a header and a block map, unlinked
 *                   as soon as it is opened unless kept (then durable at
 *                   each flush, and reopened by the next run).
 * A partial write to a block not yet in the overlay first copies the rest
 * of the block from the base. A discarded or zeroed block reads back as
 * zeroes, never as the base's data again.
 *
 * Block size: OVERLAY_BLOCK_SIZE (4 KiB), the guest file systems' block
 * and the host's page, so a guest's 4 KiB random writes copy nothing from
 * the base and a memory block is one page (MADV_DONTNEED frees it exactly).
 * 64 KiB blocks would shrink a map that is already small (two bits per
 * 4 KiB: 64 KiB per GiB of disk) at the price of reading and storing 16
 * times the data on each first write. */
#ifndef KVMRUN_OVERLAY_H
#define KVMRUN_OVERLAY_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/log.h"

enum overlay_kind { OVERLAY_NONE, OVERLAY_MEMORY, OVERLAY_FILE };

#define OVERLAY_BLOCK_SIZE 4096u
/* overlay_max when 0 is given: memory overlays hold at most 1 GiB of
 * written blocks (a host running many VMs must not be run out of memory by
 * one guest); file overlays may grow to the disk's size. */
#define OVERLAY_DEFAULT_MEM_MAX (1ull << 30)

struct overlay_params {
	enum overlay_kind kind;  /* OVERLAY_NONE: no overlay */
	const char *path;        /* OVERLAY_FILE: the overlay file */
	uint64_t max;            /* bytes of written blocks; 0: the default
				  * above. A write that needs more completes
				  * with -ENOSPC (the guest: an I/O error). */
	bool keep;               /* OVERLAY_FILE: keep the file at exit */
};

/* Writes the blocks a kept overlay file holds (data, and zeroes for the
 * discarded ones) onto @target_path, a copy of the base image of the same
 * size, and fdatasyncs it: `kvmrun overlay-merge OVERLAY TARGET`. Every
 * failure is logged naming the file (a malformed overlay is refused, never
 * trusted). Returns 0 or -errno; on success *@blocks (if not NULL) is the
 * number of blocks written. */
__attribute__((warn_unused_result))
int overlay_merge(const char *overlay_path, const char *target_path,
		  const struct logger *lg, uint64_t *blocks);

#endif
