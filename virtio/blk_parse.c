/* virtio-blk request parser (virtio spec 1.2, section 5.2.6): a pure
 * function from a popped chain to a struct blk_request, no I/O, no
 * allocation, no logging (STYLE 7). See blk.h for the contract; fuzzed by
 * tests/fuzz/fuzz_blk_parse.c. */
#include "virtio/blk.h"

#include <string.h>

/* Copies @len bytes at offset @off of the byte stream formed by @n
 * segments (the caller checked the stream is long enough). */
static void stream_copy(const struct vq_seg *s, unsigned n, uint64_t off,
			void *dst, size_t len)
{
	uint8_t *d = dst;
	for (unsigned i = 0; i < n && len; i++) {
		if (off >= s[i].len) {
			off -= s[i].len;
			continue;
		}
		size_t part = s[i].len - off;
		if (part > len)
			part = len;
		memcpy(d, (const uint8_t *)s[i].host + off, part);
		d += part;
		len -= part;
		off = 0;
	}
}

/* Describes bytes [@off, @off+@len) of the stream as iovecs; false if
 * more than @cap entries would be needed. Empty pieces are skipped. */
static bool stream_iov(const struct vq_seg *s, unsigned n, uint64_t off, uint64_t len,
		       struct iovec *iov, unsigned cap, unsigned *cnt)
{
	unsigned k = 0;
	for (unsigned i = 0; i < n && len; i++) {
		if (off >= s[i].len) {
			off -= s[i].len;
			continue;
		}
		uint64_t part = s[i].len - off;
		if (part > len)
			part = len;
		if (k == cap)
			return false;
		iov[k].iov_base = (uint8_t *)s[i].host + off;
		iov[k].iov_len = (size_t)part;
		k++;
		len -= part;
		off = 0;
	}
	*cnt = k;
	return true;
}

static uint32_t get_le32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, sizeof(v));
	return v;
}

static uint64_t get_le64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, sizeof(v));
	return v;
}

/* 5.2.6.1: [sector*512, +len) must lie within the capacity. */
static bool sectors_ok(uint64_t sector, uint64_t nsectors, uint64_t capacity)
{
	return sector <= capacity && nsectors <= capacity - sector;
}

static enum blk_parse_error parse_data(const struct vq_seg *s, unsigned n, uint64_t off,
				       uint64_t len, uint64_t capacity,
				       struct blk_request *out)
{
	/* 5.2.6.1: IN/OUT data is a multiple of 512 bytes. */
	if (len % VIRTIO_BLK_SECTOR_SIZE)
		return BLK_ERR_LENGTH;
	if (!sectors_ok(out->sector, len / VIRTIO_BLK_SECTOR_SIZE, capacity))
		return BLK_ERR_RANGE;
	if (!stream_iov(s, n, off, len, out->iov, out->iov_cap, &out->iovcnt))
		return BLK_ERR_TOO_MANY_SEGS;
	out->data_len = len;
	return BLK_PARSE_OK;
}

static enum blk_parse_error parse_dwz(const struct vq_seg *s, unsigned n, uint64_t len,
				      uint64_t capacity, const struct blk_limits *lim,
				      struct blk_request *out)
{
	bool discard = out->type == VIRTIO_BLK_T_DISCARD;
	/* 5.2.6.1: data is a non-empty array of 16-byte segments, at most
	 * max_discard_seg / max_write_zeroes_seg of them. */
	if (len == 0 || len % VIRTIO_BLK_DWZ_BYTES)
		return BLK_ERR_DWZ_LENGTH;
	uint64_t nr = len / VIRTIO_BLK_DWZ_BYTES;
	uint32_t max_segs = lim->max_dwz_segs < VIRTIO_BLK_MAX_DWZ_SEGS
				    ? lim->max_dwz_segs : VIRTIO_BLK_MAX_DWZ_SEGS;
	if (nr > max_segs)
		return BLK_ERR_DWZ_SEGS;
	uint32_t max_sectors = discard ? lim->max_discard_sectors
				       : lim->max_write_zeroes_sectors;
	for (unsigned i = 0; i < nr; i++) {
		uint8_t raw[VIRTIO_BLK_DWZ_BYTES];
		stream_copy(s, n, VIRTIO_BLK_HDR_BYTES + (uint64_t)i * VIRTIO_BLK_DWZ_BYTES,
			    raw, sizeof(raw));
		struct blk_range *r = &out->ranges[i];
		r->sector = get_le64(raw);
		r->num_sectors = get_le32(raw + 8);
		r->flags = get_le32(raw + 12);
		out->nr_ranges = i + 1;
		/* 5.2.6.2: UNSUPP for unknown flags, and for unmap on discard. */
		if (r->flags & ~VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP)
			return BLK_ERR_DWZ_FLAGS;
		if (discard && (r->flags & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP))
			return BLK_ERR_DWZ_FLAGS;
		if (r->num_sectors == 0 || r->num_sectors > max_sectors ||
		    !sectors_ok(r->sector, r->num_sectors, capacity))
			return BLK_ERR_DWZ_RANGE;
	}
	return BLK_PARSE_OK;
}

enum blk_parse_error blk_parse(const struct vq_chain *c, uint64_t capacity_sectors,
			       const struct blk_limits *lim, struct blk_request *out)
{
	const struct vq_seg *rd = c->segs, *wr = c->segs + c->nr_readable;
	unsigned nrd = c->nr_readable, nwr = c->nr_segs - c->nr_readable;

	out->type = 0;
	out->sector = 0;
	out->status = NULL;
	out->iovcnt = 0;
	out->data_len = 0;
	out->nr_ranges = 0;

	/* 5.2.6: the status byte is the last device-writable byte. 2.7.4: no
	 * framing assumptions, so it may end a bigger segment, and empty
	 * segments may follow it. */
	if (c->writable_len == 0)
		return BLK_ERR_NO_STATUS;
	for (unsigned i = nwr; i-- > 0;) {
		if (wr[i].len) {
			out->status = (uint8_t *)wr[i].host + wr[i].len - 1;
			break;
		}
	}
	/* The header: the first 16 device-readable bytes. */
	if (c->readable_len < VIRTIO_BLK_HDR_BYTES)
		return BLK_ERR_HDR_SHORT;
	uint8_t hdr[VIRTIO_BLK_HDR_BYTES];
	stream_copy(rd, nrd, 0, hdr, sizeof(hdr));
	out->type = get_le32(hdr);
	uint64_t sector = get_le64(hdr + 8);
	uint64_t rdata = c->readable_len - VIRTIO_BLK_HDR_BYTES; /* after the header */
	uint64_t wdata = c->writable_len - 1;                     /* before the status */

	switch (out->type) {
	case VIRTIO_BLK_T_IN:
		if (rdata)
			return BLK_ERR_DIRECTION;
		out->sector = sector;
		return parse_data(wr, nwr, 0, wdata, capacity_sectors, out);
	case VIRTIO_BLK_T_OUT:
		if (wdata)
			return BLK_ERR_DIRECTION;
		out->sector = sector;
		return parse_data(rd, nrd, VIRTIO_BLK_HDR_BYTES, rdata, capacity_sectors, out);
	case VIRTIO_BLK_T_FLUSH:
		/* 5.2.6.1: sector 0 and no data are the driver's SHOULDs;
		 * neither changes what a flush does, so neither is checked. */
		return BLK_PARSE_OK;
	case VIRTIO_BLK_T_GET_ID:
		if (rdata)
			return BLK_ERR_DIRECTION;
		/* 5.2.6.1: the data is 20 bytes; a longer buffer gets the 20. */
		if (wdata < VIRTIO_BLK_ID_BYTES)
			return BLK_ERR_GET_ID_SHORT;
		if (!stream_iov(wr, nwr, 0, VIRTIO_BLK_ID_BYTES, out->iov, out->iov_cap,
				&out->iovcnt))
			return BLK_ERR_TOO_MANY_SEGS;
		out->data_len = VIRTIO_BLK_ID_BYTES;
		return BLK_PARSE_OK;
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		if (out->type == VIRTIO_BLK_T_DISCARD ? !lim->discard : !lim->write_zeroes)
			return BLK_ERR_UNSUPPORTED;
		if (wdata)
			return BLK_ERR_DIRECTION;
		return parse_dwz(rd, nrd, rdata, capacity_sectors, lim, out);
	default:
		return BLK_ERR_UNSUPPORTED;
	}
}

uint8_t blk_parse_status(enum blk_parse_error e)
{
	switch (e) {
	case BLK_PARSE_OK:
		return VIRTIO_BLK_S_OK;
	case BLK_ERR_UNSUPPORTED:
	case BLK_ERR_DWZ_FLAGS:
		return VIRTIO_BLK_S_UNSUPP;
	default:
		return VIRTIO_BLK_S_IOERR;
	}
}

const char *blk_parse_error_name(enum blk_parse_error e)
{
	switch (e) {
	case BLK_PARSE_OK: return "ok";
	case BLK_ERR_NO_STATUS: return "no writable status byte";
	case BLK_ERR_HDR_SHORT: return "request header shorter than 16 readable bytes";
	case BLK_ERR_UNSUPPORTED: return "unsupported request type";
	case BLK_ERR_DIRECTION: return "data buffers in the wrong direction";
	case BLK_ERR_LENGTH: return "data length not a multiple of 512";
	case BLK_ERR_RANGE: return "sectors beyond the capacity";
	case BLK_ERR_TOO_MANY_SEGS: return "more data segments than seg_max";
	case BLK_ERR_GET_ID_SHORT: return "GET_ID buffer shorter than 20 bytes";
	case BLK_ERR_DWZ_LENGTH: return "discard/write-zeroes data not a multiple of 16 bytes";
	case BLK_ERR_DWZ_SEGS: return "too many discard/write-zeroes segments";
	case BLK_ERR_DWZ_FLAGS: return "unknown or invalid discard/write-zeroes flags";
	case BLK_ERR_DWZ_RANGE: return "discard/write-zeroes range empty, too long or beyond the capacity";
	}
	return "?";
}
