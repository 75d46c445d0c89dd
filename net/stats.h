/* What net_get_stats() reports (net/net.h). Its own header so struct net
 * (net/netdev.h) can hold the counters without the device model's API. */
#ifndef KVMRUN_STATS_H
#define KVMRUN_STATS_H

#include <stdbool.h>
#include <stdint.h>

enum net_backend { NET_BACKEND_USERSPACE, NET_BACKEND_VHOST };

#define NET_STATS_MAX_PAIRS 16         /* NET_MAX_PAIRS (net/frame.h) */

/* One queue pair's share (the userspace backend; vhost-net moves frames
 * in the kernel, where only the tap's whole-device counters exist). */
struct net_queue_stats {
	uint64_t rx_packets, rx_bytes;     /* frames into this pair's receiveq */
	uint64_t rx_drops;                 /* short, too large, bad receive buffers */
	uint64_t tx_packets, tx_bytes;     /* frames from its transmitq */
	uint64_t tx_drops;                 /* malformed, link down, refused by the tap */
};

struct net_stats {
	uint64_t rx_frames, rx_bytes;      /* delivered to the guest */
	uint64_t tx_frames, tx_bytes;      /* written to the tap */
	uint64_t rx_dropped_small;         /* frame larger than the buffers */
	uint64_t rx_bad_buffers;           /* receive chain without room for the header */
	uint64_t rx_short;                 /* tap read shorter than the header */
	uint64_t rx_stalls;                /* reading paused: no receive buffers */
	uint64_t tx_bad;                   /* malformed transmit chains dropped */
	uint64_t tx_errors;                /* the tap refused a frame */
	uint64_t tx_dropped_link_down;
	uint64_t needs_reset;
	uint64_t ctrl_cmds, ctrl_errors;
	uint64_t tap_wakeups;              /* tap readiness callbacks */
	uint64_t yields;                   /* a queue's budget ran out: re-kicked */
	uint64_t rx_throttled, tx_throttled; /* stopped for netN.bandwidth tokens */
	unsigned active_pairs;
	unsigned max_pairs;                /* q[0..max_pairs-1] are the device's */
	struct net_queue_stats q[NET_STATS_MAX_PAIRS];
	bool link_up;
	enum net_backend backend;
};

#endif
