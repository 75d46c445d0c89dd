/* virtio-balloon (virtio spec 1.2, section 5.5 "Traditional Memory Balloon
 * Device"): the host asks the guest for memory back by setting num_pages;
 * the guest gives pages through the inflate queue and takes them back
 * through the deflate queue, reports `actual` in config space, sends memory
 * statistics on the stats queue and (free page reporting, 5.5.6.7) tells
 * the host about free ranges it may drop.
 *
 * Host memory is given back through a discard callback the VM provides
 * (ram_discard: MADV_DONTNEED for anonymous RAM, a punched hole for a
 * memfd/hugetlbfs backing). Balloon pages are 4 KiB (5.5.6:
 * VIRTIO_BALLOON_PFN_SHIFT 12) whatever backs RAM; with a larger backing
 * page (2 MiB, 1 GiB) a backing page is discarded only once all of its
 * 4 KiB pages are in the balloon, tracked with a bitmap of inflated pages
 * and a count per backing page.
 *
 * Queues (5.5.2) are numbered densely over the *negotiated* features, as
 * the Linux driver does: inflateq 0, deflateq 1, then statsq if
 * VIRTIO_BALLOON_F_STATS_VQ, then reporting_vq if
 * VIRTIO_BALLOON_F_PAGE_REPORTING (free_page_vq is not offered).
 *
 * Statistics (5.5.6.3): the driver posts one buffer of {le16 tag, le64 val}
 * entries; the device keeps it and hands it back (used, length 0) every
 * stats_period seconds from a timerfd on the event loop, and the driver
 * refills and re-posts it.
 *
 * Work per kick is bounded (chains, PFNs and reported ranges): a driver
 * that keeps its rings full is served a budget at a time, the queue
 * re-kicked in between, so it cannot starve the event loop.
 *
 * Threads: every callback runs with dev->lock held (notify and the stats
 * timer on the event thread, config/status/reset from vCPU threads);
 * virtio_balloon_set_target and virtio_balloon_get take it themselves.
 *
 * Error classes (STYLE 8): a PFN outside guest RAM, one inflated twice or
 * deflated while not inflated, buffers that are not whole PFNs or stat
 * entries, and PFN buffers over VIRTIO_BALLOON_CHAIN_PFNS are ignored,
 * counted and logged once per kind; a malformed chain
 * (vq_pop -EINVAL) puts the device in DEVICE_NEEDS_RESET; a failed discard
 * is counted and logged rate-limited (the page simply stays resident). */
#ifndef KVMRUN_VIRTIO_BALLOON_H
#define KVMRUN_VIRTIO_BALLOON_H

#include <stdbool.h>
#include <stdint.h>

#include "virtio/device.h"
#include "virtio/queue.h"

/* 5.5.1 Device ID */
#define VIRTIO_ID_BALLOON 5

/* 5.5.3 Feature bits */
#define VIRTIO_BALLOON_F_MUST_TELL_HOST 0
#define VIRTIO_BALLOON_F_STATS_VQ       1
#define VIRTIO_BALLOON_F_DEFLATE_ON_OOM 2
#define VIRTIO_BALLOON_F_FREE_PAGE_HINT 3
#define VIRTIO_BALLOON_F_PAGE_POISON    4
#define VIRTIO_BALLOON_F_PAGE_REPORTING 5

/* 5.5.6: PFNs are in 4 KiB units. */
#define VIRTIO_BALLOON_PFN_SHIFT 12
#define VIRTIO_BALLOON_PAGE_SIZE (1u << VIRTIO_BALLOON_PFN_SHIFT)

#define VIRTIO_BALLOON_QUEUE_SIZE 128

/* PFNs one inflate or deflate buffer may carry (Linux sends up to 256); a
 * larger buffer is ignored whole, counted in `oversized`. */
#define VIRTIO_BALLOON_CHAIN_PFNS 4096

/* 5.5.4 Device configuration layout (little-endian). num_pages is written
 * by the device, actual by the driver. */
struct virtio_balloon_config {
	uint32_t num_pages;
	uint32_t actual;
	uint32_t free_page_hint_cmd_id;
	uint32_t poison_val;
};

/* 5.5.6.3 Memory Statistics Tags */
enum {
	VIRTIO_BALLOON_S_SWAP_IN = 0,  /* bytes swapped in */
	VIRTIO_BALLOON_S_SWAP_OUT = 1, /* bytes swapped out */
	VIRTIO_BALLOON_S_MAJFLT = 2,   /* major faults */
	VIRTIO_BALLOON_S_MINFLT = 3,   /* minor faults */
	VIRTIO_BALLOON_S_MEMFREE = 4,  /* bytes free */
	VIRTIO_BALLOON_S_MEMTOT = 5,   /* bytes total */
	VIRTIO_BALLOON_S_AVAIL = 6,    /* bytes available */
	VIRTIO_BALLOON_S_CACHES = 7,   /* bytes of disk caches */
	VIRTIO_BALLOON_S_HTLB_PGALLOC = 8, /* hugetlb page allocations */
	VIRTIO_BALLOON_S_HTLB_PGFAIL = 9,  /* hugetlb allocation failures */
	VIRTIO_BALLOON_S_NR = 10,
};
#define VIRTIO_BALLOON_STAT_BYTES 10 /* packed {le16 tag; le64 val;} */

/* The guest's statistics: val[tag] is meaningful when bit tag of valid is set. */
struct balloon_stats {
	uint64_t val[VIRTIO_BALLOON_S_NR];
	uint32_t valid;
	uint32_t unknown; /* entries with a tag this device does not know */
};

/* Parses a stats buffer (the readable bytes of @c, however they are split
 * into descriptors) into @out (zeroed first). Pure: no logging. Returns
 * the number of entries read, or -EINVAL when the readable length is not
 * a whole number of entries or is above 256 entries (@out is then
 * unspecified). */
int balloon_stats_parse(const struct vq_chain *c, struct balloon_stats *out);

/* The name of stat @tag in the control protocol ("swap_in", "free_memory",
 * ...), or NULL for an unknown tag. Memory sizes are tags 0, 1, 4-7. */
const char *balloon_stat_name(unsigned tag);
bool balloon_stat_is_bytes(unsigned tag);

/* ---- The device ---- */

struct virtio_balloon;

struct virtio_balloon_params {
	const struct virtio_platform *plat; /* plat->mem and plat->loop are required */
	/* Backing page size of guest RAM: 4 KiB, 2 MiB or 1 GiB; discards are
	 * whole, aligned backing pages. */
	uint64_t page_size;
	/* Gives [gpa, gpa+len) back to the host (page_size-aligned, in RAM);
	 * 0 or -errno. Called on the event thread with dev->lock held. NULL:
	 * the host keeps every page (RAM that must stay reserved, mem/ram.h):
	 * the guest still inflates and deflates, nothing is discarded or
	 * counted as discarded, and free page reporting is not offered. */
	int (*discard)(void *cookie, uint64_t gpa, uint64_t len);
	void *discard_cookie;
	unsigned stats_period;    /* seconds; 0: no stats queue offered */
	bool deflate_on_oom;      /* offer VIRTIO_BALLOON_F_DEFLATE_ON_OOM */
	bool free_page_reporting; /* offer VIRTIO_BALLOON_F_PAGE_REPORTING */
};

/* A snapshot for the control interface. Sizes are bytes. */
struct virtio_balloon_info {
	bool live;                /* DRIVER_OK and not NEEDS_RESET */
	uint64_t features;        /* negotiated */
	uint64_t target;          /* num_pages * 4 KiB */
	uint64_t actual;          /* the driver's `actual` * 4 KiB */
	uint64_t inflated;        /* pages the device holds as inflated */
	uint64_t discarded;       /* of those, given back to the host */
	uint64_t reported;        /* free page reporting: bytes discarded, total */
	uint64_t inflates, deflates, reports; /* pages / ranges processed, total */
	uint64_t bad_pfns;        /* outside guest RAM */
	uint64_t duplicate_pfns;  /* inflated twice, or deflated while not inflated */
	uint64_t discard_errors;
	uint64_t oversized;       /* inflate/deflate buffers over VIRTIO_BALLOON_CHAIN_PFNS */
	uint64_t yields;          /* notifies that ran out of budget and re-kicked */
	bool stats_valid;
	struct balloon_stats stats;
	uint64_t stats_age_ms;    /* since the last stats buffer arrived */
	uint64_t stats_updates;   /* stats buffers received */
};

/* Creates the device (id 5): features per @p, 2 to 4 queues, the tracking
 * bitmap over guest RAM, and the stats timerfd on plat->loop when
 * stats_period > 0. The caller then attaches a transport to
 * virtio_balloon_dev(). Returns 0 or -errno (logged). */
__attribute__((warn_unused_result))
int virtio_balloon_create(const struct virtio_balloon_params *p, struct virtio_balloon **out);

/* The virtio device, for the transport. Valid until destroy. */
struct virtio_dev *virtio_balloon_dev(struct virtio_balloon *b);

/* Tears down after the transport is gone. NULL: no-op. */
void virtio_balloon_destroy(struct virtio_balloon *b);

/* Asks the guest to hold @bytes in the balloon (num_pages = @bytes / 4 KiB,
 * rounded down) and signals a config change. -ERANGE above guest RAM.
 * Returns at once; the guest inflates or deflates in its own time. */
__attribute__((warn_unused_result))
int virtio_balloon_set_target(struct virtio_balloon *b, uint64_t bytes);

/* A snapshot of the device's state (takes dev->lock). */
void virtio_balloon_get(struct virtio_balloon *b, struct virtio_balloon_info *out);

#endif
