/* Inside the overlay (block/overlay.h): the block map (block/overlay_map.c)
 * and the store ops table its two stores fill (block/overlay_mem.c,
 * block/overlay_file.c). block/overlay.c, the engine, decides per request
 * from the map and calls through the ops; nothing outside block/ includes
 * this. */
#ifndef KVMRUN_OVERLAY_PRIV_H
#define KVMRUN_OVERLAY_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "block/image.h"
#include "block/overlay.h"

/* Two bits per block, in two bitmaps:
 *   touched=0            the block reads from the base;
 *   touched=1, data=1    its data is in the store (it counts in `used`);
 *   touched=1, data=0    it reads as zeroes (discarded or zeroed).
 * The bitmaps are padded to whole OVERLAY_MAP_PAGE pages, the unit the
 * file store writes a dirty map back in. */
#define OVERLAY_MAP_PAGE 4096u
#define OVERLAY_MAP_PAGE_BITS (OVERLAY_MAP_PAGE * 8u)

struct overlay_map {
	uint64_t size;      /* disk bytes */
	uint64_t nblocks;   /* blocks of OVERLAY_BLOCK_SIZE, the last maybe partial */
	size_t bytes;       /* of each bitmap, a multiple of OVERLAY_MAP_PAGE */
	uint64_t *touched;
	uint64_t *data;
	uint64_t used;      /* blocks with data=1 */
	uint8_t *dirty;     /* one byte per map page changed since the last sync */
};

/* Sizes the map for a disk of @size bytes, all blocks reading the base.
 * Returns 0 or -ENOMEM. */
int overlay_map_init(struct overlay_map *m, uint64_t size);
void overlay_map_free(struct overlay_map *m);
bool overlay_map_touched(const struct overlay_map *m, uint64_t block);
bool overlay_map_data(const struct overlay_map *m, uint64_t block);
/* Sets block @block's state (and marks its map page dirty). */
void overlay_map_set(struct overlay_map *m, uint64_t block, bool touched, bool data);
/* Whether any block of [first, last] is touched, a word at a time. */
bool overlay_map_any_touched(const struct overlay_map *m, uint64_t first, uint64_t last);
/* After the bitmaps were read from a file: clears the bits past nblocks
 * and data bits without touched, recounts used, clears dirty. */
void overlay_map_sanitise(struct overlay_map *m);

/* Disk offsets throughout: a store keeps block b's bytes as if at b's
 * offset in the disk. Ranges are within the disk (the engine checked). */
struct overlay_store;
struct overlay_store_ops {
	/* Copies [off, off + iov total) of the store into @iov. */
	int (*read)(struct overlay_store *s, uint64_t off, const struct iovec *iov, unsigned cnt);
	/* Copies @iov into the store at @off. */
	int (*write)(struct overlay_store *s, uint64_t off, const struct iovec *iov, unsigned cnt);
	/* Frees [off, off + len) (whole blocks, the last may end at the
	 * disk's end): they then read as zeroes. */
	int (*drop)(struct overlay_store *s, uint64_t off, uint64_t len);
	/* Makes the data written and the map durable; NULL: nothing to do. */
	int (*sync)(struct overlay_store *s);
	/* Syncs a kept store one last time, frees it (the map included). */
	void (*destroy)(struct overlay_store *s);
};

struct overlay_store {
	const struct overlay_store_ops *ops;
	struct overlay_map map;
	bool durable;       /* a flush must reach the disk (a kept file) */
	char *name;         /* for messages: "memory" or the file's path */
};

/* The stores' constructors. Each logs its failures naming the key
 * ("diskN.overlay=...") and returns 0 or -errno. */
int overlay_mem_create(const struct image *base, struct overlay_store **out);
int overlay_file_create(const struct image *base, const struct overlay_params *p,
			struct overlay_store **out);

#endif
