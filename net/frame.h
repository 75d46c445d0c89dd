/* virtio-net's wire format (virtio spec 1.2, 5.1.3-5.1.6) and the frame
 * and ring sizes that follow from it. Its own header so the backends can
 * size buffers without depending on the device model (net/net.c);
 * net/net.h includes it, so its public API is unchanged. */
#ifndef KVMRUN_FRAME_H
#define KVMRUN_FRAME_H

#include <stdint.h>

/* 5.1.3 Feature bits */
#define VIRTIO_NET_F_CSUM        0
#define VIRTIO_NET_F_GUEST_CSUM  1
#define VIRTIO_NET_F_CTRL_GUEST_OFFLOADS 2
#define VIRTIO_NET_F_MTU         3
#define VIRTIO_NET_F_MAC         5
#define VIRTIO_NET_F_GUEST_TSO4  7
#define VIRTIO_NET_F_GUEST_TSO6  8
#define VIRTIO_NET_F_GUEST_ECN   9
#define VIRTIO_NET_F_GUEST_UFO   10
#define VIRTIO_NET_F_HOST_TSO4   11
#define VIRTIO_NET_F_HOST_TSO6   12
#define VIRTIO_NET_F_HOST_ECN    13
#define VIRTIO_NET_F_HOST_UFO    14
#define VIRTIO_NET_F_MRG_RXBUF   15
#define VIRTIO_NET_F_STATUS      16
#define VIRTIO_NET_F_CTRL_VQ     17
#define VIRTIO_NET_F_CTRL_RX     18
#define VIRTIO_NET_F_MQ          22

#define VIRTIO_NET_S_LINK_UP 1

/* Device sizes: queue pairs and ring size (net_params.queues), frames. */
#define NET_MAX_PAIRS 16
#define NET_QUEUE_SIZE 256        /* max Queue Size of every queue */
#define NET_HDR_LEN 12            /* struct virtio_net_hdr_v1 (VERSION_1) */
#define NET_MAX_FRAME 65550u      /* 64 KiB GSO frame + Ethernet/VLAN header */

/* 5.1.4 struct virtio_net_config, up to mtu. Little-endian. */
struct virtio_net_config {
	uint8_t mac[6];
	uint16_t status;
	uint16_t max_virtqueue_pairs;
	uint16_t mtu;
} __attribute__((packed));

/* 5.1.6 struct virtio_net_hdr (with num_buffers: always there in 1.x) */
struct virtio_net_hdr_v1 {
	uint8_t flags;
	uint8_t gso_type;
	uint16_t hdr_len;
	uint16_t gso_size;
	uint16_t csum_start;
	uint16_t csum_offset;
	uint16_t num_buffers;
} __attribute__((packed));

/* The largest frame (header included) a receive may carry with the
 * negotiated @features and @mtu. */
uint32_t net_rx_max(uint64_t features, unsigned mtu);

#endif
