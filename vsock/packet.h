/* The virtio-vsock packet (virtio spec 1.2, 5.10.6 "Device Operation"):
 * the 44-byte header every packet on the rx and tx queues starts with,
 * and the pure parser and writer of packets in descriptor chains. No I/O,
 * no allocation, no logging: unit tests and the fuzzer run it over plain
 * buffers.
 *
 * Everything a tx chain holds is hostile: vsock_pkt_parse() checks the
 * chain's shape and the header's length before anything uses them, and
 * vsock_pkt_check() the addressing. */
#ifndef KVMRUN_VSOCK_PACKET_H
#define KVMRUN_VSOCK_PACKET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "virtio/queue.h"

/* 5.10.1 Device ID */
#define VIRTIO_ID_VSOCK 19

/* 5.10.2 Virtqueues */
#define VSOCK_QUEUE_RX 0
#define VSOCK_QUEUE_TX 1
#define VSOCK_QUEUE_EVENT 2
#define VSOCK_NR_QUEUES 3

/* Well-known CIDs: 0 and 1 are reserved, 2 is the host; a guest's is >= 3
 * and below VMADDR_CID_ANY (0xffffffff). */
#define VSOCK_CID_HOST 2u
#define VSOCK_CID_MIN 3u
#define VSOCK_CID_MAX 0xfffffffeu

/* 5.10.6 packet types and operations */
#define VSOCK_TYPE_STREAM 1
enum vsock_op {
	VSOCK_OP_INVALID = 0,
	VSOCK_OP_REQUEST = 1,
	VSOCK_OP_RESPONSE = 2,
	VSOCK_OP_RST = 3,
	VSOCK_OP_SHUTDOWN = 4,
	VSOCK_OP_RW = 5,
	VSOCK_OP_CREDIT_UPDATE = 6,
	VSOCK_OP_CREDIT_REQUEST = 7,
};
/* VSOCK_OP_SHUTDOWN flags */
#define VSOCK_SHUTDOWN_RCV 1u
#define VSOCK_SHUTDOWN_SEND 2u

/* Largest payload of one packet kvmrun accepts from a guest (Linux's
 * VIRTIO_VSOCK_MAX_PKT_BUF_SIZE). */
#define VSOCK_MAX_PAYLOAD (64u * 1024)

/* struct virtio_vsock_hdr, little-endian like every virtio 1.x field
 * (kvmrun hosts are x86-64). */
struct vsock_hdr {
	uint64_t src_cid;
	uint64_t dst_cid;
	uint32_t src_port;
	uint32_t dst_port;
	uint32_t len;
	uint16_t type;
	uint16_t op;
	uint32_t flags;
	uint32_t buf_alloc;
	uint32_t fwd_cnt;
} __attribute__((packed));

#define VSOCK_HDR_LEN 44u
_Static_assert(sizeof(struct vsock_hdr) == VSOCK_HDR_LEN, "5.10.6: the header is 44 bytes");

/* Why a tx chain is not a packet. */
enum vsock_pkt_err {
	VSOCK_PKT_OK = 0,
	VSOCK_PKT_WRITABLE,   /* the driver gave the device a writable buffer */
	VSOCK_PKT_SHORT,      /* fewer readable bytes than a header */
	VSOCK_PKT_TOO_LONG,   /* hdr.len above VSOCK_MAX_PAYLOAD */
	VSOCK_PKT_TRUNCATED,  /* hdr.len more than the chain carries */
	VSOCK_PKT_IOV,        /* payload in more pieces than the caller's iov */
};

/* A message for @e (a static string). */
const char *vsock_pkt_strerror(enum vsock_pkt_err e);

/* A parsed tx packet: the header copied out of guest memory (so a driver
 * rewriting it meanwhile changes nothing), and the hdr.len payload bytes
 * as an iovec over the chain's readable segments, in the caller's array. */
struct vsock_pkt {
	struct vsock_hdr hdr;
	struct iovec *iov;  /* set by the caller */
	unsigned iov_cap;   /* set by the caller */
	unsigned nr_iov;
};

/* Parses the tx chain @c (5.10.6.2: the header, then hdr.len payload bytes,
 * all device-readable). Bytes past hdr.len are ignored. */
enum vsock_pkt_err vsock_pkt_parse(const struct vq_chain *c, struct vsock_pkt *p);

/* Whether a parsed packet is addressed as one from guest @guest_cid to the
 * host must be (src_cid, dst_cid); false means it is dropped. */
bool vsock_pkt_addressed(const struct vsock_hdr *h, uint64_t guest_cid);

/* The receive side: whether the rx chain @c can take a packet (no readable
 * segment, room for at least the header). */
bool vsock_pkt_rx_ok(const struct vq_chain *c);

/* Writes @h at the start of the rx chain @c's writable part. */
void vsock_pkt_put_hdr(const struct vq_chain *c, const struct vsock_hdr *h);

/* Fills @iov (at most @cap entries) with the writable bytes of @c after
 * the header, at most @max of them; returns their total and sets @nr. */
size_t vsock_pkt_rx_iov(const struct vq_chain *c, size_t max, struct iovec *iov, unsigned cap,
			unsigned *nr);

#endif
