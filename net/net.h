/* virtio-net (virtio spec 1.2, section 5.1 "Network Device") over a tap,
 * with two backends for the data path:
 *   - vhost-net (net/vhost.c): the host kernel moves packets between the
 *     rings and the tap; kicks reach it through the queue's ioeventfd and
 *     it interrupts through the transport's irqfd (no userspace hop; on
 *     virtio-mmio or INTx the event thread relays its call eventfd);
 *   - userspace (net/userspace.c): the VM's event thread moves them,
 *     readv/writev straight between guest buffers and the tap.
 * net.vhost=auto picks vhost-net when /dev/vhost-net opens, else userspace
 * (and logs which); on without /dev/vhost-net is an error.
 *
 * The device offers MAC, STATUS (link up; down while the tap is down or gone),
 * MTU, MRG_RXBUF, CSUM/GUEST_CSUM and the TSO/ECN/UFO offloads the tap
 * accepts (TUNSETOFFLOAD follows what the guest negotiated), CTRL_VQ and,
 * with queues > 1, MQ over an IFF_MULTI_QUEUE tap. Queues: receiveq N at
 * 2N, transmitq N at 2N+1, controlq at 2*max_pairs (2 without MQ, 5.1.2).
 *
 * Error classes (STYLE 8):
 *   - a malformed ring (vq_pop -EINVAL, or vhost's error eventfd):
 *     DEVICE_NEEDS_RESET, logged rate-limited;
 *   - a bad transmit chain (writable part, shorter than the header, longer
 *     than 64 KiB), a receive buffer too small for the frame or a frame the
 *     tap refuses: dropped, counted, never written past the buffer;
 *   - the tap going away (EBADFD, EPOLLERR/HUP, or the host's link
 *     changes say so): logged once, link down (a config-change interrupt),
 *     transmits dropped; when a tap of the same name appears again and
 *     is set up, it is re-attached (opened again, its queues put under the
 *     same rings) and the link comes back; one that cannot be attached
 *     (not a tap, not multi_queue, another owner) is logged and left alone,
 *     one another process still holds without a vnet header is tried again
 *     on its next change;
 *   - a tap set down on the host: the guest's link goes down with it and
 *     comes back when it is set up (net/tap.h: rtnetlink link changes);
 *     frames sent meanwhile (EIO on write) are dropped, counted. A tap
 *     still down when the VM starts does not hold the link down;
 *   - set-up failures: -errno to vmm/.
 * A flood from the host while the guest posts no receive buffers makes
 * the event thread stop reading the tap (no busy loop) until the guest
 * kicks the receive queue; the kernel's tap queue absorbs or drops.
 *
 * Threads: every callback runs under dev->lock: kicks and tap events on
 * the VM's event thread, config/status/reset from vCPU threads. */
#ifndef KVMRUN_NET_H
#define KVMRUN_NET_H

#include <stdbool.h>
#include <stdint.h>

#include "net/frame.h"
#include "net/stats.h"
#include "virtio/device.h"

/* 5.1.1 Device ID */
#define VIRTIO_ID_NET 1

/* 5.1.6.5 control classes and commands */
#define VIRTIO_NET_OK  0
#define VIRTIO_NET_ERR 1
#define VIRTIO_NET_CTRL_MQ 4
#define VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET 0
#define VIRTIO_NET_CTRL_MQ_VQ_PAIRS_MIN 1
#define VIRTIO_NET_CTRL_MQ_VQ_PAIRS_MAX 0x8000

/* Whether the data path runs in vhost-net: AUTO when /dev/vhost-net opens. */
enum net_vhost { NET_VHOST_AUTO, NET_VHOST_ON, NET_VHOST_OFF };

struct net;

/* Resolved values: the caller has applied every default. */
struct net_params {
	const char *tap;               /* the host tap's name */
	uint8_t mac[6];                /* the guest's (see net_default_mac()) */
	enum net_vhost vhost;
	unsigned queues;               /* queue pairs, 1..NET_MAX_PAIRS */
	unsigned mtu;
	unsigned index;                /* "net0", "virtio-net0" */
	const struct virtio_platform *plat; /* plat->loop is required */
	/* Leave a tap kvmrun creates persistent (owned by the euid), so the
	 * VM can re-attach it after a restart without CAP_NET_ADMIN (see
	 * vmm/caps.h: it then outlives kvmrun). */
	bool persist_tap;
	/* Tests and benchmarks: use these descriptors (queues of them,
	 * non-blocking, one frame with its 12-byte header per read/write: a
	 * tap, or a SOCK_SEQPACKET socket) instead of opening tap. No
	 * tap ioctls are made on them; the backend is userspace. Borrowed. */
	const int *fds;
	/* Bytes a second each way, 0: unlimited; burst 0: one second's
	 * worth. The userspace backend only: net_create() refuses a limit
	 * with vhost-net (the kernel moves the frames). */
	uint64_t bandwidth, bandwidth_burst;
};

/* Opens the tap (and /dev/vhost-net per queue pair when vhost is used),
 * initialises the virtio device (id 1) with 2*queues+1 queues and watches
 * its descriptors on plat->loop. The caller then attaches a transport to
 * net_dev(). Logs which backend runs. Returns 0 or -errno (logged). */
__attribute__((warn_unused_result))
int net_create(const struct net_params *p, struct net **out);

/* The virtio device, for the transport. Valid until destroy. */
struct virtio_dev *net_dev(struct net *n);

/* After the transport is gone: stops vhost, closes the tap (removing a
 * persistent tap kvmrun created unless @keep_tap). NULL: no-op. */
void net_destroy(struct net *n, bool keep_tap);

/* A snapshot of the counters (takes dev->lock). */
void net_get_stats(struct net *n, struct net_stats *out);

/* The default MAC: locally administered unicast 52:54:xx:xx:xx:xx, the
 * last four bytes a hash of the VM name and the device index. */
void net_default_mac(const char *vm_name, unsigned index, uint8_t mac[6]);

#endif
