#include "vsock/packet.h"

#include <string.h>

const char *vsock_pkt_strerror(enum vsock_pkt_err e)
{
	switch (e) {
	case VSOCK_PKT_OK: return "ok";
	case VSOCK_PKT_WRITABLE: return "tx chain has a device-writable buffer";
	case VSOCK_PKT_SHORT: return "tx chain shorter than a packet header";
	case VSOCK_PKT_TOO_LONG: return "packet length above 64 KiB";
	case VSOCK_PKT_TRUNCATED: return "packet length beyond the chain";
	case VSOCK_PKT_IOV: return "packet payload in too many pieces";
	}
	return "?";
}

/* Copies @len bytes from offset @off of the chain's readable part. The
 * caller checked that they are there. */
static void chain_read(const struct vq_chain *c, size_t off, void *dst, size_t len)
{
	uint8_t *d = dst;
	for (uint32_t i = 0; i < c->nr_readable && len; i++) {
		const struct vq_seg *g = &c->segs[i];
		if (off >= g->len) {
			off -= g->len;
			continue;
		}
		size_t k = g->len - off < len ? g->len - off : len;
		memcpy(d, (const uint8_t *)g->host + off, k);
		d += k;
		len -= k;
		off = 0;
	}
}

enum vsock_pkt_err vsock_pkt_parse(const struct vq_chain *c, struct vsock_pkt *p)
{
	p->nr_iov = 0;
	if (c->nr_readable != c->nr_segs)
		return VSOCK_PKT_WRITABLE;
	if (c->readable_len < VSOCK_HDR_LEN)
		return VSOCK_PKT_SHORT;
	chain_read(c, 0, &p->hdr, VSOCK_HDR_LEN);
	uint32_t len = p->hdr.len;
	if (len > VSOCK_MAX_PAYLOAD)
		return VSOCK_PKT_TOO_LONG;
	if (len > c->readable_len - VSOCK_HDR_LEN)
		return VSOCK_PKT_TRUNCATED;
	size_t off = VSOCK_HDR_LEN;
	for (uint32_t i = 0; i < c->nr_readable && len; i++) {
		const struct vq_seg *g = &c->segs[i];
		if (off >= g->len) {
			off -= g->len;
			continue;
		}
		if (p->nr_iov == p->iov_cap)
			return VSOCK_PKT_IOV;
		size_t k = g->len - off < len ? g->len - off : len;
		p->iov[p->nr_iov++] = (struct iovec){ (uint8_t *)g->host + off, k };
		len -= (uint32_t)k;
		off = 0;
	}
	return VSOCK_PKT_OK;
}

bool vsock_pkt_addressed(const struct vsock_hdr *h, uint64_t guest_cid)
{
	/* 5.10.6.3: the device drops packets not from the guest's own CID;
	 * kvmrun carries only guest <-> host traffic */
	return h->src_cid == guest_cid && h->dst_cid == VSOCK_CID_HOST;
}

bool vsock_pkt_rx_ok(const struct vq_chain *c)
{
	return c->nr_readable == 0 && c->writable_len >= VSOCK_HDR_LEN;
}

void vsock_pkt_put_hdr(const struct vq_chain *c, const struct vsock_hdr *h)
{
	const uint8_t *s = (const uint8_t *)h;
	size_t len = VSOCK_HDR_LEN;
	for (uint32_t i = c->nr_readable; i < c->nr_segs && len; i++) {
		const struct vq_seg *g = &c->segs[i];
		size_t k = g->len < len ? g->len : len;
		memcpy(g->host, s, k);
		s += k;
		len -= k;
	}
}

size_t vsock_pkt_rx_iov(const struct vq_chain *c, size_t max, struct iovec *iov, unsigned cap,
			unsigned *nr)
{
	size_t off = VSOCK_HDR_LEN, total = 0;
	*nr = 0;
	for (uint32_t i = c->nr_readable; i < c->nr_segs && total < max && *nr < cap; i++) {
		const struct vq_seg *g = &c->segs[i];
		if (off >= g->len) {
			off -= g->len;
			continue;
		}
		size_t k = g->len - off;
		if (k > max - total)
			k = max - total;
		iov[(*nr)++] = (struct iovec){ (uint8_t *)g->host + off, k };
		total += k;
		off = 0;
	}
	return total;
}
