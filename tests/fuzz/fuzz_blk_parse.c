/* libFuzzer target for virtio/blk_parse.c: the guest controls every byte
 * of a request and how its bytes are split into descriptors; blk_parse()
 * must never read or hand out memory outside the chain's segments, and
 * what it accepts must obey the spec's rules (5.2.6).
 *
 * Input layout (little-endian):
 *   0      nr_segs - 1 (mod MAX_SEGS)
 *   1      nr_readable (mod nr_segs + 1)
 *   2      iov_cap - 1 (mod MAX_IOV)
 *   3      limits: bit 0 discard, bit 1 write-zeroes
 *   4      max_dwz_segs
 *   5..12  capacity in sectors (u64), shifted right by byte 13 mod 64
 *   13     capacity shift
 *   14..17 max_discard_sectors, 18..21 max_write_zeroes_sectors (u32)
 *   22..   nr_segs u16 segment lengths (mod MAX_SEG_LEN + 1)
 *   rest   the segments' contents, in order (zero-filled when short)
 *
 * The chain is shaped as vq_pop() returns it (readable segments first,
 * lengths summed), so the fuzzer explores the parser, not the queue. Each
 * segment is its own heap allocation of exactly its length, so ASan
 * reports any access outside one.
 *
 * Invariants checked (abort on violation):
 *  - the error is a known one, with a status byte and a name;
 *  - unless NO_STATUS, the status byte is the last byte of the last
 *    non-empty writable segment;
 *  - an accepted IN/OUT/GET_ID describes exactly the data bytes (IN and
 *    GET_ID: writable bytes from 0, not the status byte; OUT: readable
 *    bytes after the 16-byte header), in order, within iov_cap entries,
 *    each wholly inside one segment; IN/OUT lie within the capacity;
 *  - accepted discard/write-zeroes ranges are offered, non-empty, within
 *    the limits and the capacity, with valid flags. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "virtio/blk.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define HDR_SIZE 22u
#define MAX_SEGS 32u
#define MAX_IOV 130u
#define MAX_SEG_LEN 8704u /* 17 sectors: a few sector multiples and odd sizes */

#define CHECK(c) do { if (!(c)) { \
	fprintf(stderr, "fuzz_blk_parse: invariant failed: %s (line %d)\n", #c, __LINE__); \
	abort(); } } while (0)

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p)
{
	return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

/* The stream offset of [p, p+len) within segments @s[0, n), or -1 when it
 * is not wholly inside one of them. */
static int64_t stream_offset(const struct vq_seg *s, unsigned n, const void *p, size_t len)
{
	uint64_t off = 0;
	for (unsigned i = 0; i < n; i++) {
		const uint8_t *h = s[i].host;
		if ((const uint8_t *)p >= h && (const uint8_t *)p + len <= h + s[i].len &&
		    ((const uint8_t *)p < h + s[i].len || len == 0))
			return (int64_t)(off + (uint64_t)((const uint8_t *)p - h));
		off += s[i].len;
	}
	return -1;
}

/* The data iovecs are bytes [start, start + data_len) of segments @s[0, n)
 * in order; they are touched so ASan sees them. */
static void check_data(const struct blk_request *r, const struct vq_seg *s, unsigned n,
		       uint64_t start, bool device_writes)
{
	CHECK(r->iovcnt <= r->iov_cap);
	uint64_t at = start, sum = 0;
	for (unsigned i = 0; i < r->iovcnt; i++) {
		const struct iovec *v = &r->iov[i];
		CHECK(v->iov_len > 0);
		int64_t off = stream_offset(s, n, v->iov_base, v->iov_len);
		CHECK(off >= 0 && (uint64_t)off == at);
		if (device_writes) {
			memset(v->iov_base, 0xa5, v->iov_len);
		} else {
			volatile uint8_t acc = 0;
			for (size_t k = 0; k < v->iov_len; k++)
				acc ^= ((const uint8_t *)v->iov_base)[k];
			(void)acc;
		}
		at += v->iov_len;
		sum += v->iov_len;
	}
	CHECK(sum == r->data_len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < HDR_SIZE)
		return 0;
	unsigned nr_segs = 1 + data[0] % MAX_SEGS;
	unsigned nr_rd = data[1] % (nr_segs + 1);
	unsigned iov_cap = 1 + data[2] % MAX_IOV;
	struct blk_limits lim = {
		.discard = data[3] & 1,
		.write_zeroes = data[3] & 2,
		.max_dwz_segs = data[4],
		.max_discard_sectors = rd32(data + 14),
		.max_write_zeroes_sectors = rd32(data + 18),
	};
	uint64_t capacity = rd64(data + 5) >> (data[13] % 64);
	/* every length first, then the contents (the layout above) */
	size_t pos = HDR_SIZE + 2 * (size_t)nr_segs;

	struct vq_seg segs[MAX_SEGS];
	struct vq_chain c = { .segs = segs, .cap = MAX_SEGS, .nr_segs = nr_segs,
			      .nr_readable = nr_rd };
	for (unsigned i = 0; i < nr_segs; i++) {
		size_t at = HDR_SIZE + 2 * (size_t)i;
		uint32_t len = 0;
		if (at + 2 <= size)
			len = (uint32_t)(data[at] | data[at + 1] << 8) % (MAX_SEG_LEN + 1);
		/* malloc(0) may return NULL; a zero-length segment still has a
		 * host address (queue.h), one byte past which nothing is valid */
		uint8_t *h = malloc(len ? len : 1);
		if (!h)
			abort();
		size_t have = pos < size ? size - pos : 0;
		size_t n = have < len ? have : len;
		if (n)
			memcpy(h, data + pos, n);
		memset(h + n, 0, len - n);
		pos += n;
		segs[i] = (struct vq_seg){ .gpa = 0x100000u * (i + 1), .host = h, .len = len,
					   .writable = i >= nr_rd };
		if (i < nr_rd)
			c.readable_len += len;
		else
			c.writable_len += len;
	}

	struct iovec iov[MAX_IOV];
	struct blk_request r;
	memset(&r, 0xcc, sizeof(r)); /* the parser sets what it reports */
	r.iov = iov;
	r.iov_cap = iov_cap;
	enum blk_parse_error e = blk_parse(&c, capacity, &lim, &r);

	CHECK(e >= BLK_PARSE_OK && e <= BLK_ERR_DWZ_RANGE);
	CHECK(blk_parse_error_name(e) != NULL);
	uint8_t st = blk_parse_status(e);
	CHECK(st <= VIRTIO_BLK_S_UNSUPP && (st == VIRTIO_BLK_S_OK) == (e == BLK_PARSE_OK));

	const struct vq_seg *rd = segs, *wr = segs + nr_rd;
	unsigned nwr = nr_segs - nr_rd;
	if (e == BLK_ERR_NO_STATUS) {
		CHECK(c.writable_len == 0);
	} else {
		const struct vq_seg *last = NULL;
		for (unsigned i = 0; i < nwr; i++)
			if (wr[i].len)
				last = &wr[i];
		CHECK(last && r.status == (uint8_t *)last->host + last->len - 1);
		*r.status = VIRTIO_BLK_S_OK; /* the device writes it */
	}

	if (e == BLK_PARSE_OK) {
		switch (r.type) {
		case VIRTIO_BLK_T_IN:
		case VIRTIO_BLK_T_OUT: {
			bool in = r.type == VIRTIO_BLK_T_IN;
			CHECK(in ? c.readable_len == VIRTIO_BLK_HDR_BYTES : c.writable_len == 1);
			CHECK(r.data_len % VIRTIO_BLK_SECTOR_SIZE == 0);
			uint64_t ns = r.data_len / VIRTIO_BLK_SECTOR_SIZE;
			CHECK(r.sector <= capacity && ns <= capacity - r.sector);
			if (in) {
				CHECK(r.data_len == c.writable_len - 1);
				check_data(&r, wr, nwr, 0, true);
			} else {
				CHECK(r.data_len == c.readable_len - VIRTIO_BLK_HDR_BYTES);
				check_data(&r, rd, nr_rd, VIRTIO_BLK_HDR_BYTES, false);
			}
			break;
		}
		case VIRTIO_BLK_T_GET_ID:
			CHECK(c.readable_len == VIRTIO_BLK_HDR_BYTES);
			CHECK(r.data_len == VIRTIO_BLK_ID_BYTES && c.writable_len > VIRTIO_BLK_ID_BYTES);
			check_data(&r, wr, nwr, 0, true);
			break;
		case VIRTIO_BLK_T_FLUSH:
			break;
		case VIRTIO_BLK_T_DISCARD:
		case VIRTIO_BLK_T_WRITE_ZEROES: {
			bool discard = r.type == VIRTIO_BLK_T_DISCARD;
			CHECK(discard ? lim.discard : lim.write_zeroes);
			CHECK(c.writable_len == 1);
			uint32_t max_segs = lim.max_dwz_segs < VIRTIO_BLK_MAX_DWZ_SEGS
						    ? lim.max_dwz_segs : VIRTIO_BLK_MAX_DWZ_SEGS;
			uint32_t max_sectors = discard ? lim.max_discard_sectors
						       : lim.max_write_zeroes_sectors;
			CHECK(r.nr_ranges >= 1 && r.nr_ranges <= max_segs);
			CHECK((uint64_t)r.nr_ranges * VIRTIO_BLK_DWZ_BYTES ==
			      c.readable_len - VIRTIO_BLK_HDR_BYTES);
			for (unsigned i = 0; i < r.nr_ranges; i++) {
				const struct blk_range *g = &r.ranges[i];
				CHECK(g->num_sectors >= 1 && g->num_sectors <= max_sectors);
				CHECK(g->sector <= capacity && g->num_sectors <= capacity - g->sector);
				CHECK((g->flags & ~VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP) == 0);
				CHECK(!discard || g->flags == 0);
			}
			break;
		}
		default:
			CHECK(!"accepted an unknown request type");
		}
	}

	for (unsigned i = 0; i < nr_segs; i++)
		free(segs[i].host);
	return 0;
}
