/* The userspace backend's connections (virtio spec 1.2, 5.10.6.3-5.10.6.5):
 * the stream state machine (REQUEST/RESPONSE/RST/SHUTDOWN/RW and
 * CREDIT_UPDATE/CREDIT_REQUEST), credit-based flow control (buf_alloc,
 * fwd_cnt) in both directions, and the host end of each connection, a
 * connected Unix stream socket watched on the event loop.
 *
 * It knows no virtqueue: the caller hands it each parsed tx packet
 * (vsock_mux_tx) and asks it to fill rx chains (vsock_mux_rx) while it has
 * something to say (vsock_mux_rx_pending). After vsock_mux_tx() and
 * vsock_mux_host_connect() the caller runs its rx loop itself; after a
 * socket event that leaves a packet owed, the mux calls want_rx.
 *
 * Bounds: at most VSOCK_MUX_MAX_CONNS connections; each buffers at most
 * VSOCK_BUF_ALLOC bytes from the guest that its socket has not taken yet
 * (the credit it advertises), allocated only while needed. A guest that
 * sends beyond that credit has its connection reset.
 *
 * Threads: every call, and every socket callback, runs under @lock. */
#ifndef KVMRUN_VSOCK_MUX_H
#define KVMRUN_VSOCK_MUX_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "lib/evloop.h"
#include "lib/log.h"
#include "vsock/packet.h"
#include "vsock/vsock.h"

#define VSOCK_MUX_MAX_CONNS 256u
#define VSOCK_BUF_ALLOC (256u * 1024)    /* the credit each connection gives the guest */
#define VSOCK_MUX_MAX_RSTS 64u           /* RSTs owed for closed or unknown connections */
#define VSOCK_HOST_PORT_BASE (1u << 30)  /* host ports of host-initiated connections */

struct vsock_mux;

struct vsock_mux_params {
	uint64_t guest_cid;
	struct evloop *loop;
	pthread_mutex_t *lock;          /* held around every socket callback */
	const struct logger *log;
	struct log_ratelimit *rl;
	const char *name;               /* for the log: "vsock" */
	struct vsock_stats *st;         /* counters, owned by the caller */
	/* A guest connects to host port @port: return a connected,
	 * non-blocking stream socket, or -errno (the guest gets RST). */
	int (*connect_port)(void *cookie, uint32_t port);
	/* Packets are owed to the guest: run the rx loop (lock held). */
	void (*want_rx)(void *cookie);
	void *cookie;
};

__attribute__((warn_unused_result))
int vsock_mux_create(const struct vsock_mux_params *p, struct vsock_mux **out);
/* Closes every connection. NULL: no-op. */
void vsock_mux_destroy(struct vsock_mux *m);

/* Device reset: every connection closed, nothing owed. */
void vsock_mux_reset(struct vsock_mux *m);

/* A host program connected and asked for guest port @port; @fd (taken
 * over, also on failure) is its non-blocking socket. Sends the guest a
 * REQUEST; "OK <hostport>\n" is written to @fd when the guest accepts, and
 * @fd is closed when it refuses. Returns 0 or -errno (-EMFILE: too many
 * connections). */
int vsock_mux_host_connect(struct vsock_mux *m, int fd, uint32_t port);

/* One tx packet from the guest, parsed by vsock_pkt_parse(). */
void vsock_mux_tx(struct vsock_mux *m, const struct vsock_pkt *p);

/* Whether a packet is owed to the guest (vsock_mux_rx would fill a chain). */
bool vsock_mux_rx_pending(const struct vsock_mux *m);

/* Fills the rx chain @c (vsock_pkt_rx_ok) with the next packet owed.
 * Returns the bytes written (header and payload), or 0 when nothing was
 * (the chain is then unused: keep it for the next call). */
uint32_t vsock_mux_rx(struct vsock_mux *m, const struct vq_chain *c);

/* Connections open now. */
unsigned vsock_mux_conns(const struct vsock_mux *m);

#endif
