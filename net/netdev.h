/* The inside of struct net, for net/ only, and the ops table each data-path
 * backend fills (net/userspace.c, net/vhost_backend.c), as block/ does for
 * its engines. net.c (device model, controlq, backend choice and
 * lifecycle) calls through the table and never asks which backend it has;
 * the backends include this and net/frame.h, never net.c's net/net.h, so
 * the two sides do not depend on each other. Everything here is under
 * dev.lock. */
#ifndef KVMRUN_NETDEV_H
#define KVMRUN_NETDEV_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "net/frame.h"
#include "net/stats.h"
#include "net/tap.h"
#include "net/vhost.h"
#include "virtio/device.h"
#include "virtio/limit.h"
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
	/* A frame larger than the chains it was read into (with merged
	 * buffers the guest refills the ring as it goes): its head fills
	 * chains[0..held_chains), its tail waits in held for more chains. */
	uint8_t *held;                  /* NET_HDR_LEN + NET_MAX_FRAME, on first use */
	size_t held_len;                /* the whole frame, header included; 0: none */
	unsigned held_chains;
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
	struct net_queue_stats st;      /* the userspace backend counts here too */
};

struct net {
	struct virtio_dev dev;
	char name[24];                  /* "virtio-net0" */
	char short_name[8];             /* "net0" */
	const struct virtio_platform *plat;
	const struct net_backend_ops *ops;      /* the data path */
	/* net.c's: the tap failed (EBADFD, EPOLLERR, end of file): link
	 * down, stop watching. A callback so a backend reports it (through
	 * n->on_tap_gone) without
	 * depending on the device model. */
	void (*on_tap_gone)(struct net *n, const char *why);
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
	struct limit rx_limit, tx_limit; /* netN.bandwidth; off when zeroed */
};

/* Queue indices (5.1.2). */
static inline unsigned net_ctrl_queue(const struct net *n)
{
	return virtio_dev_has_feature(&n->dev, VIRTIO_NET_F_MQ) ? 2 * n->max_pairs : 2;
}

/* Watch the pair's fd for @events (0 pauses reading), if it is watched. */
static inline void netdev_watch(struct net_pair *p, uint32_t events)
{
	if (!p->watched || p->events == events)
		return;
	if (evloop_mod(p->n->plat->loop, p->fd, events) == 0)
		p->events = events;
}

/* A data-path backend. Hooks run under dev.lock; NULL hooks do nothing. */
struct net_backend_ops {
	const char *name;               /* for the log: "vhost-net", "userspace" */
	enum net_backend kind;          /* for net_stats */
	/* What an active pair's tap fd is watched for while the device runs. */
	uint32_t tap_events;
	/* net_create(), before the tap opens: acquire per-pair resources
	 * (vhost-net fds); -errno having released them. close() undoes it. */
	int (*open)(struct net *n);
	void (*close)(struct net_pair *p);
	/* Narrows the device features to what the backend carries. */
	uint64_t (*offer)(const struct net_pair *p, uint64_t features);
	/* Per-pair event-loop state and buffers; teardown() undoes any part
	 * of setup() and is called for every pair, set up or not. */
	int (*setup)(struct net_pair *p);
	void (*teardown)(struct net_pair *p);
	/* DRIVER_OK: start the pair's data path (before the pair state is
	 * re-applied). */
	int (*start)(struct net_pair *p);
	/* After start() and whenever a new tap is attached under a running
	 * device: frames may already wait in the tap. -errno on failure. */
	int (*tap_waiting)(struct net *n);
	/* Device reset: stop the pair and forget what it held. */
	void (*reset)(struct net_pair *p);
	/* After the pair's tap watch was (re-)applied. */
	void (*applied)(struct net_pair *p);
	/* The tap fd is readable (no error). */
	void (*tap_ready)(struct net_pair *p);
	/* The driver kicked ring 0 (receive) or 1 (transmit) of the pair. */
	void (*notify)(struct net_pair *p, unsigned ring);
	/* The transport's interrupt routes changed. */
	void (*irq_changed)(struct net_pair *p);
	/* A new tap fd replaced p->fd under a running device. */
	void (*tap_replaced)(struct net_pair *p);
	/* net_create(): set up n->rx_limit and n->tx_limit (bytes a second
	 * each way); -errno. NULL: the backend cannot limit. */
	int (*limits)(struct net *n, uint64_t bandwidth, uint64_t burst);
	/* Snapshots: return every chain popped ahead and not used (receive
	 * buffers) to the ring, unused (vq_unpop), so the device holds none. */
	void (*give_back)(struct net_pair *p);
};

extern const struct net_backend_ops userspace_ops;     /* net/userspace.c */
extern const struct net_backend_ops vhost_backend_ops; /* net/vhost_backend.c */

#endif
