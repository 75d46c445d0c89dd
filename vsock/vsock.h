/* virtio-vsock (virtio spec 1.2, section 5.10 "Socket Device"): stream
 * sockets between the guest (CID vsock.cid) and the host (CID 2), with two
 * backends for the rx and tx queues:
 *   - vhost-vsock (vsock/vhost.c): the host kernel moves the packets, and
 *     host programs use AF_VSOCK sockets (connect to CID N, or listen for
 *     the guest's connections to CID 2);
 *   - userspace (vsock/uds.c, vsock/mux.c): the VM's event thread speaks the
 *     packet protocol and maps the guest's ports to Unix sockets, as
 *     Firecracker does: a host program connects to the socket vsock.uds
 *     PATH and writes "CONNECT <port>\n", is answered "OK <hostport>\n" and
 *     then talks to the guest's listener on <port>; a guest connection to
 *     host port P is forwarded to a connection to the Unix socket "PATH_P".
 * vsock.backend=auto picks vhost-vsock when /dev/vhost-vsock opens, else
 * userspace (which then needs vsock.uds). The event queue (5.10.6.6) is
 * the device's in both: it holds the driver's buffers and never needs one
 * (no live migration).
 *
 * Error classes (STYLE 8):
 *   - a malformed ring (vq_pop -EINVAL, an rx buffer that is readable or
 *     shorter than a header, vhost's error eventfd): DEVICE_NEEDS_RESET,
 *     logged rate-limited;
 *   - a malformed packet (vsock/packet.h), or one not from the guest's CID
 *     to the host: dropped, counted; one for no connection: answered RST;
 *     a guest overrunning the credit it was given: the connection is reset;
 *   - a host socket failing: the connection is reset (RST to the guest);
 *   - set-up failures: -errno to vmm/ (logged).
 *
 * Threads: every callback runs under dev->lock: kicks and socket events on
 * the VM's event thread, config/status/reset from vCPU threads. */
#ifndef KVMRUN_VSOCK_H
#define KVMRUN_VSOCK_H

#include <stdbool.h>
#include <stdint.h>

#include "virtio/device.h"
#include "vsock/packet.h"

/* Which backend runs the rx and tx queues. AUTO: vhost-vsock where
 * /dev/vhost-vsock opens, else userspace. */
enum vsock_backend { VSOCK_BACKEND_AUTO, VSOCK_BACKEND_VHOST, VSOCK_BACKEND_USERSPACE };

/* Longest vsock.uds path: PATH_4294967295 must fit a sockaddr_un. */
#define VSOCK_UDS_MAX_PATH (108 - 1 - 11)

struct vsock;

/* Resolved values: the caller has applied every default. */
struct vsock_params {
	uint32_t cid;                  /* VSOCK_CID_MIN..VSOCK_CID_MAX */
	enum vsock_backend backend;
	const char *uds;               /* userspace: the socket's path; NULL: none */
	const struct virtio_platform *plat; /* plat->loop is required */
};

/* Counters; a snapshot from vsock_get_stats(). */
struct vsock_stats {
	bool vhost;                    /* which backend runs */
	uint64_t tx_packets, rx_packets;   /* guest -> host, host -> guest */
	uint64_t tx_bytes, rx_bytes;       /* payload bytes */
	uint64_t bad_packets;          /* dropped: malformed or misaddressed */
	uint64_t resets_sent;          /* RST packets to the guest */
	uint64_t conns_opened;         /* connections established */
	uint64_t conns;                /* open now */
	uint64_t needs_reset;
};

/* Opens the backend (/dev/vhost-vsock and VHOST_VSOCK_SET_GUEST_CID, or
 * binds the Unix socket, replacing a stale socket file but nothing else),
 * initialises the virtio device (id 19, three queues) and watches its
 * descriptors on plat->loop. The caller then attaches a transport to
 * vsock_dev(). Logs which backend runs. Returns 0 or -errno (logged). */
__attribute__((warn_unused_result))
int vsock_create(const struct vsock_params *p, struct vsock **out);

/* The virtio device, for the transport. Valid until destroy. */
struct virtio_dev *vsock_dev(struct vsock *v);

/* After the transport is gone: closes every connection and the backend,
 * removes the Unix socket file. NULL: no-op. */
void vsock_destroy(struct vsock *v);

/* A snapshot of the counters (takes dev->lock). */
void vsock_get_stats(struct vsock *v, struct vsock_stats *out);

#endif
