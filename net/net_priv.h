/* The inside of struct net, for net/ only (net.c: device model, controlq,
 * backend choice; userspace.c: the userspace data path). Everything here
 * is under dev.lock. */
#ifndef KVMRUN_NET_PRIV_H
#define KVMRUN_NET_PRIV_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "net/net.h"
#include "net/tap.h"
#include "net/vhost.h"
#include "virtio/queue.h"

#define NET_RX_SEGS 1023u       /* segment pool of one receive queue (+1 iov: IOV_MAX) */
#define NET_CHAIN_SEGS 64u      /* segments of one chain (Linux: <= 2 + MAX_SKB_FRAGS) */
#define NET_RX_BUDGET 64u       /* frames per readiness callback */
#define NET_TX_BUDGET 256u      /* chains per kick before yielding */
#define NET_RX_BAD_BUDGET 64u   /* unusable receive chains per callback before yielding */
#define NET_CTRL_BUDGET 64u     /* control commands per kick before yielding */

/* Receive chains popped ahead of the frames they will carry (with merged
 * buffers a frame takes several). Chains are used in pop order. */
struct net_rxq {
	struct vq_chain chains[NET_QUEUE_SIZE];
	unsigned nr_chains;
	uint64_t room;                  /* writable bytes of all chains */
	struct vq_seg segs[NET_RX_SEGS];
	unsigned nr_segs;
	struct iovec iov[NET_RX_SEGS + 1];
};

struct net_pair {
	struct net *n;
	unsigned index;
	int fd;                         /* tap queue (or an injected fd) */
	bool watched;                   /* fd is on the event loop */
	uint32_t events;                /* what the event loop watches fd for */
	bool attached;                  /* tap queue attached (TUNSETQUEUE) */
	struct net_rxq *rx;             /* userspace backend */
	/* vhost backend */
	struct vhost vhost;
	struct net_call {
		struct net_pair *p;
		unsigned ring;          /* 0 rx, 1 tx */
		int fd;                 /* relayed when the transport has no irqfd */
	} call[2];
	int err_fd;
	bool kicks_paused;              /* kick fds left to vhost alone */
};

struct net {
	struct virtio_dev dev;
	char name[24];                  /* "virtio-net0" */
	char short_name[8];             /* "net0" */
	const struct virtio_platform *plat;
	enum net_backend backend;
	bool injected;                  /* fds from the params: no tap ioctls */
	bool keep_tap;
	struct tap tap;
	struct virtio_net_config config;
	unsigned max_pairs, active_pairs;
	unsigned mtu;
	bool tap_gone;
	/* The tap on the host (tap_watch_*): its last seen IFF_UP, and an
	 * index that could not be re-attached (not retried until it changes). */
	int watch_fd;
	bool tap_up;
	unsigned refused_ifindex;
	int sync_fd;                    /* eventfd: re-apply pair state on the event thread */
	struct net_pair pairs[NET_MAX_PAIRS];
	/* transmit scratch (event thread) */
	struct vq_seg tx_segs[VQ_MAX_SEGS];
	struct iovec tx_iov[VQ_MAX_SEGS];
	uint8_t *overflow;              /* catches what does not fit a receive buffer */
	struct net_stats st;
};

/* Queue indices (5.1.2). */
static inline unsigned net_ctrl_queue(const struct net *n)
{
	return virtio_dev_has_feature(&n->dev, VIRTIO_NET_F_MQ) ? 2 * n->max_pairs : 2;
}

/* userspace.c (event thread, dev.lock held) */
void userspace_rx(struct net_pair *p);
void userspace_tx(struct net_pair *p);
void userspace_reset(struct net_pair *p);
/* Watch the pair's fd for @events (0 pauses reading). */
void userspace_watch(struct net_pair *p, uint32_t events);
/* The tap failed (EBADFD, EPOLLERR): link down, stop watching. */
void net_tap_gone(struct net *n, const char *why);

#endif
