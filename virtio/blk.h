/* virtio-blk (virtio spec 1.2, section 5.2 "Block Device"): features,
 * config space, a pure request parser and the request engine glue.
 *
 * The device model plugs into the transport-independent core
 * (virtio/device.h) and does its I/O through block/engine.h (io_uring or
 * sync) on one struct image. Requests are parsed once into a struct
 * blk_request (STYLE 7: execution never reads raw descriptors again), then
 * executed asynchronously; completions write the status byte and return
 * the chain on the event thread.
 *
 * Threads: every callback runs with dev->lock held: notify and I/O
 * completions on the VM's event thread, config/status/reset from vCPU
 * threads. The engine and the image belong to the event thread.
 *
 * Error classes (STYLE 8):
 *   - a request blk_parse() rejects is completed with VIRTIO_BLK_S_IOERR
 *     (VIRTIO_BLK_S_UNSUPP for unknown types and flags), logged
 *     rate-limited; a chain without a writable status byte is returned
 *     with used length 0;
 *   - a malformed chain (vq_pop() -EINVAL) puts the device in
 *     DEVICE_NEEDS_RESET with vq_error() as the reason;
 *   - host I/O failures complete the request with IOERR (-EOPNOTSUPP:
 *     UNSUPP) and are counted; writes to a read-only disk get IOERR;
 *   - setup failures return -errno to vmm/. */
#ifndef KVMRUN_VIRTIO_BLK_H
#define KVMRUN_VIRTIO_BLK_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "block/engine.h"
#include "block/image.h"
#include "virtio/device.h"
#include "virtio/queue.h"

/* 5.2.1 Device ID */
#define VIRTIO_ID_BLOCK 2

/* 5.2.3 Feature bits */
#define VIRTIO_BLK_F_SIZE_MAX     1
#define VIRTIO_BLK_F_SEG_MAX      2
#define VIRTIO_BLK_F_GEOMETRY     4
#define VIRTIO_BLK_F_RO           5
#define VIRTIO_BLK_F_BLK_SIZE     6
#define VIRTIO_BLK_F_FLUSH        9
#define VIRTIO_BLK_F_TOPOLOGY     10
#define VIRTIO_BLK_F_CONFIG_WCE   11
#define VIRTIO_BLK_F_MQ           12
#define VIRTIO_BLK_F_DISCARD      13
#define VIRTIO_BLK_F_WRITE_ZEROES 14

/* 5.2.6 Device Operation: request types and status values */
#define VIRTIO_BLK_T_IN           0
#define VIRTIO_BLK_T_OUT          1
#define VIRTIO_BLK_T_FLUSH        4
#define VIRTIO_BLK_T_GET_ID       8
#define VIRTIO_BLK_T_DISCARD      11
#define VIRTIO_BLK_T_WRITE_ZEROES 13

#define VIRTIO_BLK_S_OK     0
#define VIRTIO_BLK_S_IOERR  1
#define VIRTIO_BLK_S_UNSUPP 2

#define VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP 1u

#define VIRTIO_BLK_SECTOR_SIZE 512u
#define VIRTIO_BLK_ID_BYTES 20     /* 5.2.6: GET_ID string, NUL-padded */
#define VIRTIO_BLK_HDR_BYTES 16    /* le32 type, le32 reserved, le64 sector */
#define VIRTIO_BLK_DWZ_BYTES 16    /* struct virtio_blk_discard_write_zeroes */

/* What this device offers (config space, 5.2.4). */
#define VIRTIO_BLK_QUEUE_SIZE 256  /* max Queue Size of each requestq */
/* Chains one notify (or reap) pops from a queue before it re-kicks the
 * queue and yields: requests that complete at once (a parse error, GET_ID)
 * free their slot at once, so slots alone do not bound the loop. */
#define VIRTIO_BLK_KICK_BUDGET 128
/* Bounce buffers (cache=none: guest buffers not aligned for O_DIRECT are
 * copied through one, up to 256 KiB a request) one disk holds at most, all
 * queues together. A request that would pass it waits, in order, until a
 * bounced request completes; it holds its ring slot meanwhile. */
#define VIRTIO_BLK_BOUNCE_TOTAL (8u << 20)
#define VIRTIO_BLK_SEG_MAX 126     /* data segments per request */
#define VIRTIO_BLK_SIZE_MAX (1u << 20) /* bytes per data segment */
#define VIRTIO_BLK_MAX_DWZ_SEGS 16 /* max_discard_seg, max_write_zeroes_seg */
#define VIRTIO_BLK_MAX_DWZ_SECTORS 0x3fffffu /* per range, 2 GiB - 512 */

/* 5.2.4 struct virtio_blk_config, up to write_zeroes_may_unmap and its
 * padding (secure erase and zoned fields are not offered). Little-endian
 * on the wire; kvmrun hosts are little-endian. */
struct virtio_blk_config {
	uint64_t capacity;          /* 512-byte sectors */
	uint32_t size_max;
	uint32_t seg_max;
	uint16_t geo_cylinders;
	uint8_t geo_heads;
	uint8_t geo_sectors;
	uint32_t blk_size;
	uint8_t physical_block_exp;
	uint8_t alignment_offset;
	uint16_t min_io_size;
	uint32_t opt_io_size;
	uint8_t writeback;
	uint8_t unused0;
	uint16_t num_queues;
	uint32_t max_discard_sectors;
	uint32_t max_discard_seg;
	uint32_t discard_sector_alignment;
	uint32_t max_write_zeroes_sectors;
	uint32_t max_write_zeroes_seg;
	uint8_t write_zeroes_may_unmap;
	uint8_t unused1[3];
} __attribute__((packed));

/* ---- The pure parser (no I/O, no allocation, no logging) ---- */

/* Why blk_parse() refused a request. blk_parse_status() maps each to the
 * status byte the guest sees. */
enum blk_parse_error {
	BLK_PARSE_OK = 0,
	BLK_ERR_NO_STATUS,      /* no device-writable byte at the end of the chain */
	BLK_ERR_HDR_SHORT,      /* fewer than 16 readable bytes for the header */
	BLK_ERR_UNSUPPORTED,    /* unknown type, or a type this disk cannot do */
	BLK_ERR_DIRECTION,      /* data readable for IN/GET_ID or writable for OUT/
				 * DISCARD/WRITE_ZEROES */
	BLK_ERR_LENGTH,         /* IN/OUT data not a multiple of 512 */
	BLK_ERR_RANGE,          /* sector arithmetic overflows or runs past capacity */
	BLK_ERR_TOO_MANY_SEGS,  /* more data segments than the caller's iov array */
	BLK_ERR_GET_ID_SHORT,   /* GET_ID buffer shorter than 20 bytes */
	BLK_ERR_DWZ_LENGTH,     /* discard/write-zeroes payload empty or not n*16 */
	BLK_ERR_DWZ_SEGS,       /* more ranges than max_*_seg */
	BLK_ERR_DWZ_FLAGS,      /* unknown flag, or unmap on a discard (5.2.6.2) */
	BLK_ERR_DWZ_RANGE,      /* a range empty, too long, or past capacity */
};

/* One discard/write-zeroes range, copied out of guest memory. */
struct blk_range {
	uint64_t sector;
	uint32_t num_sectors;
	uint32_t flags;
};

/* What the parser accepts beyond the capacity. */
struct blk_limits {
	bool discard;              /* VIRTIO_BLK_T_DISCARD is offered */
	bool write_zeroes;         /* VIRTIO_BLK_T_WRITE_ZEROES is offered */
	uint32_t max_dwz_segs;     /* <= VIRTIO_BLK_MAX_DWZ_SEGS */
	uint32_t max_discard_sectors;
	uint32_t max_write_zeroes_sectors;
};

/* A parsed request. The caller sets iov and iov_cap; blk_parse() fills
 * the rest. iov entries point into guest memory (the chain's segments). */
struct blk_request {
	struct iovec *iov;         /* caller's array for the data segments */
	unsigned iov_cap;
	uint32_t type;
	uint64_t sector;           /* IN/OUT only (0 otherwise) */
	uint8_t *status;           /* the status byte; NULL only with NO_STATUS */
	unsigned iovcnt;           /* IN/OUT/GET_ID: data segments */
	uint64_t data_len;         /* IN/OUT/GET_ID: sum of iov lengths */
	unsigned nr_ranges;        /* DISCARD/WRITE_ZEROES */
	struct blk_range ranges[VIRTIO_BLK_MAX_DWZ_SEGS];
};

/* Parses the chain @c of one request (5.2.6): the 16-byte header in the
 * first readable bytes, the status byte in the last writable byte, data in
 * between, with no assumption on how the bytes are split into descriptors
 * (2.7.4 "Message Framing"). Checks direction, lengths, sector arithmetic
 * against @capacity_sectors and discard/write-zeroes ranges against @lim.
 * Returns BLK_PARSE_OK with @out filled, or the first error found; @out's
 * status is then set unless the error is BLK_ERR_NO_STATUS, and type is
 * set unless it is NO_STATUS or HDR_SHORT. */
enum blk_parse_error blk_parse(const struct vq_chain *c, uint64_t capacity_sectors,
			       const struct blk_limits *lim, struct blk_request *out);

/* VIRTIO_BLK_S_* for a parse error (OK for BLK_PARSE_OK). */
uint8_t blk_parse_status(enum blk_parse_error e);
/* A short description, for log lines. */
const char *blk_parse_error_name(enum blk_parse_error e);

/* ---- The device ---- */

struct virtio_blk;

/* Resolved values: the caller has applied every default. */
struct virtio_blk_params {
	const char *path;              /* image file or block device (block/image.h) */
	bool readonly;
	enum disk_cache cache;
	enum disk_io io;
	unsigned submit_batch;         /* engine_params.submit_batch (block/engine.h) */
	struct overlay_params overlay; /* engine_params.overlay: kind OVERLAY_NONE
					* or the overlay the base is read under */
	unsigned index;                /* disk number: names "disk0", "virtio-blk0" */
	unsigned nr_queues;            /* resolved by the caller, 1..VIRTIO_MAX_QUEUES */
	const struct virtio_platform *plat; /* plat->loop is required */
	const char *serial;            /* GET_ID string, <= 20 bytes; NULL: "diskN" */
	unsigned poll_us;              /* busy-poll budget of the event thread, in
					* microseconds (see virtio/blk.c blk_poll());
					* 0: no polling, the default */
	bool metrics;                  /* time requests for the latency histogram */
	/* Token-bucket limits (lib/ratelimit.h), 0: unlimited. A burst of
	 * 0 is one second's worth. */
	uint64_t iops, iops_burst;     /* requests a second (IN, OUT, FLUSH,
					* DISCARD, WRITE_ZEROES) */
	uint64_t bandwidth, bandwidth_burst; /* IN/OUT data bytes a second */
};

/* Latency histogram: bucket k counts requests completed in at most 2^k
 * microseconds (and more than 2^(k-1)); the last counts the rest. */
#define VIRTIO_BLK_LAT_BUCKETS 22

struct virtio_blk_stats {
	uint64_t requests;         /* chains completed */
	uint64_t reads, writes, flushes, discards, write_zeroes, get_ids; /* ok */
	uint64_t bytes_read, bytes_written;
	uint64_t ioerr;            /* completed with VIRTIO_BLK_S_IOERR */
	uint64_t unsupp;           /* completed with VIRTIO_BLK_S_UNSUPP */
	uint64_t parse_errors;     /* refused by blk_parse() */
	uint64_t backend_errors;   /* the engine failed the I/O */
	uint64_t bounced;          /* requests copied through a bounce buffer */
	uint64_t bounce_waits;     /* of those, waited for VIRTIO_BLK_BOUNCE_TOTAL room */
	uint64_t bounce_bytes;     /* bounce buffers allocated now */
	uint64_t bounce_peak;      /* the most bounce_bytes ever was */
	uint64_t slot_stalls;      /* pops deferred: every request slot busy */
	uint64_t needs_reset;      /* malformed chains */
	uint64_t notifies, reaps;  /* kick notifications, engine reaps */
	uint64_t polled;           /* requests found by busy-polling, not a kick */
	uint64_t yields;           /* a queue's budget ran out: re-kicked */
	const char *engine;        /* "io_uring" or "sync" */
	uint64_t inflight;         /* request slots in use now */
	uint64_t throttled;        /* times a queue stopped for iops/bandwidth tokens */
	/* with params.metrics: pop-to-completion latency of every request */
	uint64_t lat_us[VIRTIO_BLK_LAT_BUCKETS];
	uint64_t lat_us_sum;
};

/* Opens the image (path, readonly, cache), creates its I/O engine (io,
 * submit_batch), watches the engine's event fd on plat->loop and initialises
 * the virtio device (id 2) with @nr_queues request queues. The caller then
 * attaches a transport to virtio_blk_dev(). Returns 0 or -errno (logged). */
__attribute__((warn_unused_result))
int virtio_blk_create(const struct virtio_blk_params *p, struct virtio_blk **out);

/* The virtio device, for the transport. Valid until destroy. */
struct virtio_dev *virtio_blk_dev(struct virtio_blk *b);

/* Tears down after the transport is gone: waits for the I/O in the kernel
 * (without completing it to the guest), closes the image. NULL: no-op.
 * Event thread, or with the event loop stopped. */
void virtio_blk_destroy(struct virtio_blk *b);

/* A snapshot of the counters (takes dev->lock). */
void virtio_blk_get_stats(struct virtio_blk *b, struct virtio_blk_stats *out);

/* Turns the request timing (params.metrics) on or off (takes dev->lock);
 * requests popped before the change complete untimed or timed from
 * their pop. For benchmarks that compare the two in one run. */
void virtio_blk_set_metrics(struct virtio_blk *b, bool on);

#endif
