/* Saved state of a split virtqueue (see queue.h): where the device is in
 * the rings, checked and restored, and chains given back unused. */
#include "virtio/queue.h"

#include <errno.h>

/* avail_event lives just after used->ring (virtio 1.2, 2.7.8) */
static uint16_t *avail_event(const struct vq *q)
{
	return (uint16_t *)(q->used + 4 + 8u * q->size);
}

void vq_get_indices(const struct vq *q, struct vq_indices *out)
{
	*out = (struct vq_indices){ .last_avail = q->last_avail, .used_idx = q->used_idx,
				    .inflight = q->inflight };
}

bool vq_indices_valid(const struct vq_indices *ix, uint32_t size)
{
	return ix->inflight <= size &&
	       (uint16_t)(ix->last_avail - ix->used_idx) == (uint16_t)ix->inflight;
}

int vq_set_indices(struct vq *q, const struct vq_indices *ix)
{
	if (!q->ready || !vq_indices_valid(ix, q->size))
		return -EINVAL;
	q->last_avail = ix->last_avail;
	q->used_idx = ix->used_idx;
	q->checked_used = ix->used_idx;
	q->inflight = ix->inflight;
	return 0;
}

int vq_unpop(struct vq *q, uint32_t n)
{
	if (n > q->inflight)
		return -EINVAL;
	q->last_avail = (uint16_t)(q->last_avail - n);
	q->inflight -= n;
	if (q->ready && (q->features & VQ_F_EVENT_IDX))
		__atomic_store_n(avail_event(q), q->last_avail, __ATOMIC_RELAXED);
	return 0;
}
