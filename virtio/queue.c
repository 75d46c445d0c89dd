/* Virtio 1.x split virtqueue, device side. Section numbers are those of
 * the virtio v1.2 specification, chapter 2.7 "Split Virtqueues". */
#include "virtio/queue.h"

#include <errno.h>
#include <string.h>

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
	       "virtio 1.x rings are little-endian; queue.c uses them as is");

/* 2.7.5 The Virtqueue Descriptor Table */
#define DESC_SIZE 16u
#define VIRTQ_DESC_F_NEXT     1u
#define VIRTQ_DESC_F_WRITE    2u
#define VIRTQ_DESC_F_INDIRECT 4u

/* 2.7.6 The Virtqueue Available Ring: flags, idx, ring[size], used_event */
#define AVAIL_FLAGS 0u
#define AVAIL_IDX   2u
#define AVAIL_RING  4u
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1u

/* 2.7.8 The Virtqueue Used Ring: flags, idx, ring[size] of {id, len},
 * avail_event */
#define USED_IDX  2u
#define USED_RING 4u
#define USED_ELEM 8u

/* 2.7.5.2: "Drivers MUST NOT add a descriptor chain longer than 2^32 bytes
 * in total". */
#define CHAIN_MAX_BYTES (1ull << 32)

struct desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};
_Static_assert(sizeof(struct desc) == DESC_SIZE, "descriptor layout");

static inline uint16_t *avail_idx(const struct vq *q)
{
	return (uint16_t *)(q->avail + AVAIL_IDX);
}

static inline uint16_t *avail_ring(const struct vq *q, uint32_t slot)
{
	return (uint16_t *)(q->avail + AVAIL_RING + 2u * slot);
}

/* used_event lives just after avail->ring (2.7.6) */
static inline uint16_t *used_event(const struct vq *q)
{
	return avail_ring(q, q->size);
}

/* avail_event lives just after used->ring (2.7.8) */
static inline uint16_t *avail_event(const struct vq *q)
{
	return (uint16_t *)(q->used + USED_RING + USED_ELEM * q->size);
}

void vq_reset(struct vq *q)
{
	memset(q, 0, sizeof(*q));
}

const char *vq_error(const struct vq *q)
{
	return q->broken ? q->error : NULL;
}

bool vq_get_rings(const struct vq *q, struct vq_rings *out)
{
	if (!q->ready)
		return false;
	*out = (struct vq_rings){ .size = q->size, .desc = q->desc, .avail = q->avail,
				  .used = q->used };
	return true;
}

/* Host pointer for a ring of @len bytes at @gpa, or NULL unless it is RAM
 * and both the gpa and the host mapping have @align alignment (so that the
 * 16/32-bit ring fields can be accessed atomically). */
static uint8_t *ring_ptr(const struct guest_mem *mem, uint64_t gpa,
			 uint64_t len, uint64_t align)
{
	if (gpa & (align - 1))
		return NULL;
	uint8_t *p = gmem_ptr(mem, gpa, len);
	if (!p || ((uintptr_t)p & (align - 1)))
		return NULL;
	return p;
}

int vq_setup(struct vq *q, const struct guest_mem *mem, uint32_t max_size,
	     const struct vq_layout *l, uint32_t features)
{
	vq_reset(q);
	if (max_size == 0 || max_size > VQ_MAX_SIZE)
		return -EINVAL;
	/* 2.7: "Queue Size value is always a power of 2" */
	if (l->size == 0 || l->size > max_size || (l->size & (l->size - 1)))
		return -EINVAL;
	if (features & ~(VQ_F_INDIRECT | VQ_F_EVENT_IDX))
		return -EINVAL;

	/* 2.7 alignment and size table: descriptor table 16 bytes, 16*size;
	 * available ring 2, 6+2*size; used ring 4, 6+8*size. The event
	 * fields are counted even without VIRTIO_F_EVENT_IDX, as the table
	 * does. */
	uint64_t n = l->size;
	uint8_t *desc = ring_ptr(mem, l->desc_gpa, DESC_SIZE * n, 16);
	uint8_t *avail = ring_ptr(mem, l->avail_gpa, 6 + 2 * n, 2);
	uint8_t *used = ring_ptr(mem, l->used_gpa, 6 + USED_ELEM * n, 4);
	if (!desc || !avail || !used)
		return -EINVAL;

	q->mem = mem;
	q->desc = desc;
	q->avail = avail;
	q->used = used;
	q->size = l->size;
	q->features = features;
	q->ready = true;
	return 0;
}

static int vq_break(struct vq *q, const char *why)
{
	q->broken = true;
	q->error = why;
	return -EINVAL;
}

/* Reads one descriptor exactly once: the driver may rewrite it while we
 * look, so every check and use below works on this private copy. The
 * compiler barrier stops the compiler from re-reading guest memory in
 * place of the copy; memcpy tolerates indirect tables of any alignment. */
static inline void desc_load(struct desc *d, const uint8_t *p)
{
	memcpy(d, p, sizeof(*d));
	__asm__ __volatile__("" ::: "memory");
}

/* Appends [gpa, gpa+len) to @c, one segment per RAM region it touches.
 * Returns NULL or the reason it is malformed. */
static const char *chain_add(const struct guest_mem *mem, struct vq_chain *c,
			     uint64_t gpa, uint32_t len, bool writable)
{
	/* 2.7.4.2 / 2.7.5.1: device-readable descriptors come before
	 * device-writable ones. */
	if (!writable && c->nr_segs > c->nr_readable)
		return "readable descriptor after a writable one";
	if (c->readable_len + c->writable_len + len > CHAIN_MAX_BYTES)
		return "chain longer than 2^32 bytes";
	if (writable)
		c->writable_len += len;
	else
		c->readable_len += len;

	uint64_t left = len;
	for (;;) {
		if (c->nr_segs == c->cap)
			return "chain has more segments than the device takes";
		uint64_t part = left;
		void *host = gmem_ptr(mem, gpa, part);
		if (!host) {
			/* Not in one region: maybe it spans adjacent ones.
			 * Take the part inside the region holding gpa. */
			const struct gmem_region *r = gmem_find(mem, gpa, 1);
			if (!r)
				return "buffer outside guest RAM";
			part = r->gpa + r->size - gpa; /* < left, >= 1 */
			host = gmem_ptr(mem, gpa, part);
			if (!host)
				return "buffer outside guest RAM";
		}
		c->segs[c->nr_segs++] = (struct vq_seg){
			.gpa = gpa, .host = host, .len = (uint32_t)part,
			.writable = writable,
		};
		if (!writable)
			c->nr_readable++;
		left -= part;
		if (left == 0)
			return NULL;
		gpa += part; /* the end of a region: cannot wrap */
	}
}

/* Walks the chain at @head into @c (2.7.5, 2.7.5.3). Returns NULL or the
 * reason it is malformed. Each hop either adds at least one segment or
 * switches to the indirect table (once), and hops are bounded by the table
 * size, so a walk costs at most min(size, cap) + 1 descriptor reads. */
static const char *chain_walk(struct vq *q, struct vq_chain *c, uint16_t head)
{
	const uint8_t *table = q->desc;
	uint32_t table_len = q->size;
	uint32_t hops = q->size;  /* a longer chain must loop (2.7.5.2) */
	bool indirect = false;
	uint32_t i = head;

	for (;;) {
		struct desc d;
		if (i >= table_len)
			return indirect ? "indirect descriptor index out of range"
					: "descriptor index out of range";
		if (hops-- == 0)
			return "descriptor chain loops or exceeds the queue size";
		desc_load(&d, table + (uint64_t)i * DESC_SIZE);

		if (d.flags & VIRTQ_DESC_F_INDIRECT) {
			/* 2.7.5.3.1: only with the feature, one table per
			 * descriptor, never with NEXT. */
			if (!(q->features & VQ_F_INDIRECT))
				return "indirect descriptor without VIRTIO_F_INDIRECT_DESC";
			if (indirect)
				return "indirect descriptor inside an indirect table";
			if (d.flags & VIRTQ_DESC_F_NEXT)
				return "indirect descriptor with NEXT";
			/* The table holds len/16 descriptors; 2.7.5.3.1 bounds a
			 * chain by the queue size. The WRITE flag of this
			 * descriptor is ignored (2.7.5.3.2). */
			if (d.len == 0 || d.len % DESC_SIZE)
				return "indirect table length not a non-zero multiple of 16";
			if (d.len / DESC_SIZE > q->size)
				return "indirect table longer than the queue size";
			table = gmem_ptr(q->mem, d.addr, d.len);
			if (!table)
				return "indirect table outside guest RAM";
			table_len = d.len / DESC_SIZE;
			hops = table_len;
			indirect = true;
			i = 0;
			continue;
		}

		const char *err = chain_add(q->mem, c, d.addr, d.len,
					    d.flags & VIRTQ_DESC_F_WRITE);
		if (err)
			return err;
		if (!(d.flags & VIRTQ_DESC_F_NEXT))
			return NULL;
		i = d.next;
	}
}

int vq_pop(struct vq *q, struct vq_chain *c)
{
	if (!q->ready)
		return 0;
	if (q->broken)
		return -EINVAL;

	/* Acquire pairs with the driver's release of avail->idx: ring
	 * entries and descriptors it wrote before are visible below. */
	uint16_t idx = __atomic_load_n(avail_idx(q), __ATOMIC_ACQUIRE);
	if (idx == q->last_avail) {
		if (!(q->features & VQ_F_EVENT_IDX))
			return 0;
		/* 2.7.10: ask to be notified of the next buffer, then look
		 * again. The fence orders our avail_event store before the
		 * reload; the driver fences between its avail->idx store and
		 * its avail_event load, so one of us sees the other. */
		__atomic_store_n(avail_event(q), q->last_avail, __ATOMIC_RELAXED);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		idx = __atomic_load_n(avail_idx(q), __ATOMIC_ACQUIRE);
		if (idx == q->last_avail)
			return 0;
	}
	/* 2.7.6: the driver cannot make more than size entries available. */
	if ((uint16_t)(idx - q->last_avail) > q->size)
		return vq_break(q, "avail idx ran more than the queue size ahead");

	uint16_t head = __atomic_load_n(avail_ring(q, q->last_avail & (q->size - 1)),
					__ATOMIC_RELAXED);
	if (head >= q->size)
		return vq_break(q, "available head index out of range");

	c->nr_segs = 0;
	c->nr_readable = 0;
	c->readable_len = 0;
	c->writable_len = 0;
	c->head = head;
	const char *err = chain_walk(q, c, head);
	if (err)
		return vq_break(q, err);

	q->last_avail++;
	q->inflight++;
	if (q->features & VQ_F_EVENT_IDX) {
		/* 2.7.10: a hint only; no kick is wanted until the driver
		 * passes what we have consumed. */
		__atomic_store_n(avail_event(q), q->last_avail, __ATOMIC_RELAXED);
	}
	return 1;
}

int vq_push(struct vq *q, uint16_t head, uint32_t written)
{
	if (!q->ready || head >= q->size || q->inflight == 0)
		return -EINVAL;
	uint8_t *elem = q->used + USED_RING + USED_ELEM * (q->used_idx & (q->size - 1));
	__atomic_store_n((uint32_t *)elem, (uint32_t)head, __ATOMIC_RELAXED);
	__atomic_store_n((uint32_t *)(elem + 4), written, __ATOMIC_RELAXED);
	q->used_idx++;
	q->inflight--;
	/* 2.7.8.2 / 2.7.14: the element must be visible before the index. */
	__atomic_store_n((uint16_t *)(q->used + USED_IDX), q->used_idx,
			 __ATOMIC_RELEASE);
	return 0;
}

bool vq_should_notify(struct vq *q)
{
	if (!q->ready)
		return false;
	uint16_t old = q->checked_used, new = q->used_idx;
	if (old == new)
		return false;
	q->checked_used = new;

	/* Our used->idx store must be visible before we read the driver's
	 * suppression state, which it writes before re-reading used->idx. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (q->features & VQ_F_EVENT_IDX) {
		/* 2.7.7.2: notify iff used->idx passed used_event in the
		 * window (old, new]; 16-bit wrap-around arithmetic. */
		uint16_t event = __atomic_load_n(used_event(q), __ATOMIC_RELAXED);
		return (uint16_t)(new - event - 1) < (uint16_t)(new - old);
	}
	uint16_t flags = __atomic_load_n((uint16_t *)(q->avail + AVAIL_FLAGS),
					 __ATOMIC_RELAXED);
	return !(flags & VIRTQ_AVAIL_F_NO_INTERRUPT);
}
