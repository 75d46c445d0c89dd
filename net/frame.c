/* Frame sizes that follow from the negotiated features (net/frame.h). */
#include "net/frame.h"

#define BIT(f) (1ull << (f))

uint32_t net_rx_max(uint64_t features, unsigned mtu)
{
	if (features & (BIT(VIRTIO_NET_F_GUEST_TSO4) | BIT(VIRTIO_NET_F_GUEST_TSO6) |
			BIT(VIRTIO_NET_F_GUEST_UFO)))
		return NET_HDR_LEN + NET_MAX_FRAME;
	return NET_HDR_LEN + (mtu > 1500 ? mtu : 1500) + 14 + 4; /* Ethernet + VLAN tag */
}
