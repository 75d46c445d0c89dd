/* Virtio 1.x split virtqueue, device side (virtio v1.2, section 2.7
 * "Split Virtqueues"). Pure code over a guest_mem: no KVM, no allocation,
 * no syscalls, no logging, so unit tests and the fuzzer run it over plain
 * buffers and devices call it on their hot path.
 *
 * Life of a queue: vq_reset() (or zero-fill), then vq_setup() once the driver
 * has written the ring addresses and enabled it; vq_pop() a chain, do the
 * work, vq_push() its head with the bytes written, then vq_should_notify()
 * to decide whether to interrupt the driver. vq_reset() again on device reset.
 *
 * Everything read from guest memory is hostile. vq_pop() checks every
 * descriptor (index, loops, length, RAM, flag rules) and returns only
 * segments that lie wholly in guest RAM. Once a pop finds the ring malformed
 * the queue is broken: every later pop returns -EINVAL until vq_reset().
 * The caller then puts the device in NEEDS_RESET (logged rate-limited, with
 * vq_error() as the reason).
 *
 * Thread safety: a struct vq is owned by one thread at a time (the device's
 * event thread); pop, push and should_notify on one queue must not run
 * concurrently. The driver runs on other CPUs: ring indices are read with
 * acquire and published with release ordering, and the two store-then-load
 * handshakes of VIRTIO_F_EVENT_IDX have full fences.
 *
 * Byte order: virtio 1.x rings are little-endian; kvmrun hosts are x86-64,
 * so fields are used as they are (queue.c asserts this at compile time). */
#ifndef KVMRUN_VIRTIO_QUEUE_H
#define KVMRUN_VIRTIO_QUEUE_H

#include <stdbool.h>
#include <stdint.h>

#include "mem/guest_mem.h"

/* Largest Queue Size a split ring may have (2.7: "The maximum Queue Size
 * value is 32768"). */
#define VQ_MAX_SIZE 32768u

/* Suggested chain capacity for devices with no tighter bound. */
#define VQ_MAX_SEGS 1024u

/* Features that change how the ring is parsed, passed to vq_setup() as a
 * bitmask. They mirror the negotiated VIRTIO_F_INDIRECT_DESC (28) and
 * VIRTIO_F_EVENT_IDX (29) bits. */
#define VQ_F_INDIRECT  (1u << 0)
#define VQ_F_EVENT_IDX (1u << 1)

/* One device-visible buffer of a chain. host maps [gpa, gpa+len) and the
 * whole range is RAM; host is non-NULL even when len is 0. A descriptor
 * whose buffer crosses from one RAM region into an adjacent one yields one
 * segment per region. */
struct vq_seg {
	uint64_t gpa;
	void *host;
	uint32_t len;
	bool writable; /* device-writable (VIRTQ_DESC_F_WRITE) */
};

/* A popped descriptor chain. The caller sets segs and cap (its capacity; a
 * chain with more segments is malformed); vq_pop() fills the rest.
 * Readable segments come first (2.7.4.2): segs[0, nr_readable) are
 * readable, segs[nr_readable, nr_segs) writable. */
struct vq_chain {
	struct vq_seg *segs;   /* caller's array of cap entries */
	uint32_t cap;          /* set by the caller, >= 1 */
	uint32_t nr_segs;      /* >= 1 after a successful pop */
	uint32_t nr_readable;
	uint16_t head;         /* descriptor index to hand to vq_push() */
	uint64_t readable_len; /* sum of readable segment lengths */
	uint64_t writable_len; /* sum of writable segment lengths */
};

/* Ring placement as the driver wrote it in the transport's registers. */
struct vq_layout {
	uint32_t size;     /* Queue Size: power of two, 1..max_size */
	uint64_t desc_gpa; /* descriptor table, 16-byte aligned, 16*size bytes */
	uint64_t avail_gpa; /* driver area, 2-byte aligned, 6+2*size bytes */
	uint64_t used_gpa;  /* device area, 4-byte aligned, 6+8*size bytes */
};

/* Queue state. Fields are private to queue.c: read them only in tests. */
struct vq {
	const struct guest_mem *mem;
	uint8_t *desc;  /* host pointers to the three rings, checked at setup */
	uint8_t *avail;
	uint8_t *used;
	uint32_t size;
	uint32_t features;    /* VQ_F_* */
	uint16_t last_avail;  /* next avail->ring slot to consume */
	uint16_t used_idx;    /* next used->ring slot to fill (shadow of used->idx) */
	uint16_t checked_used; /* used_idx at the last vq_should_notify() */
	bool ready;           /* vq_setup() succeeded */
	bool broken;          /* a pop found the ring malformed */
	uint32_t inflight;    /* popped but not yet pushed */
	const char *error;    /* static string: why the queue broke */
};

/* Returns the queue to its power-on state: not ready, not broken, indices
 * zero. Never fails. */
void vq_reset(struct vq *q);

/* Validates @l against @mem (2.7: size a power of two and <= @max_size,
 * which must itself be <= VQ_MAX_SIZE; alignment 16/2/4; each ring wholly
 * in one RAM region, event fields included) and makes the queue ready with
 * @features (VQ_F_*). Resets the indices. Returns 0, or -EINVAL leaving
 * the queue reset (not ready). @mem must outlive the queue and its regions
 * must not move while the queue is ready. */
__attribute__((warn_unused_result))
int vq_setup(struct vq *q, const struct guest_mem *mem, uint32_t max_size,
	     const struct vq_layout *l, uint32_t features);

/* Takes the next available chain into @c (whose segs/cap the caller set).
 * Returns 1 with @c filled, 0 when the ring is empty (or the queue is not
 * ready), or -EINVAL when the ring is malformed: avail->idx more than size
 * ahead, a head or next index >= size, a loop or a chain longer than the
 * queue size (an indirect table: longer than itself or the queue size),
 * more segments than @c->cap, a buffer not wholly in RAM, more than 2^32
 * bytes in total, a readable descriptor after a writable one, INDIRECT
 * without VQ_F_INDIRECT, with NEXT, nested, or with a length that is zero
 * or not a multiple of 16. After -EINVAL the queue stays broken and @c is
 * unspecified. Zero-length descriptors are accepted (the spec does not
 * forbid them) as zero-length segments whose address must still be RAM.
 * With VQ_F_EVENT_IDX, also publishes avail_event (2.7.10). */
int vq_pop(struct vq *q, struct vq_chain *c);

/* Returns a chain to the driver: adds used element {@head, @written} and
 * publishes used->idx with release ordering (2.7.8). @written is the number
 * of bytes the device wrote into the chain's writable segments. Returns 0,
 * or -EINVAL (queue not ready, @head >= size, or nothing in flight). Works
 * on a broken queue so in-flight requests can still complete. */
__attribute__((warn_unused_result))
int vq_push(struct vq *q, uint16_t head, uint32_t written);

/* After one or more vq_push() calls: whether the driver wants a used-buffer
 * notification (2.7.7.2). With VQ_F_EVENT_IDX, true when used->idx moved
 * past used_event since the previous call (vring_need_event semantics);
 * otherwise true unless avail->flags has VIRTQ_AVAIL_F_NO_INTERRUPT. False
 * when nothing was pushed since the previous call. */
bool vq_should_notify(struct vq *q);

/* Why the queue broke (a static string), or NULL if it is not broken. */
const char *vq_error(const struct vq *q);

/* Saved state of a ready queue: where the device is in the rings. The
 * driver's side (avail->idx, the descriptors) is guest memory. */
struct vq_indices {
	uint16_t last_avail;  /* next avail->ring slot to consume */
	uint16_t used_idx;    /* used->idx as the device last published it */
	uint32_t inflight;    /* chains popped and not yet pushed */
};

void vq_get_indices(const struct vq *q, struct vq_indices *out);

/* Whether @ix can be the state of a ready queue of @size entries: at most
 * @size chains in flight, and exactly last_avail - used_idx of them (each
 * pop advances last_avail, each push used_idx). Pure. */
bool vq_indices_valid(const struct vq_indices *ix, uint32_t size);

/* Continues a queue just made ready by vq_setup() from @ix (which
 * vq_indices_valid() accepted), as if it had popped and pushed so far; it
 * counts as having notified up to used_idx. Returns 0, or -EINVAL (not
 * ready, @ix invalid) leaving the queue as it was. */
__attribute__((warn_unused_result))
int vq_set_indices(struct vq *q, const struct vq_indices *ix);

/* Gives back the last @n chains popped and not pushed, unused, as if they
 * had never been popped: the next pops return them again (their heads are
 * still in the avail ring, which the driver cannot refill before they are
 * used). For a device that pops ahead (virtio-net's receive buffers) and
 * must hold nothing while it is saved. Returns 0, or -EINVAL if fewer
 * than @n chains are in flight. */
__attribute__((warn_unused_result))
int vq_unpop(struct vq *q, uint32_t n);

/* The rings as vq_setup() validated them: host pointers into guest RAM,
 * each ring wholly in one region and aligned, and the Queue Size. For a
 * backend that runs the queue itself (vhost-net), so that it is handed
 * exactly what was checked and never re-reads the transport's registers,
 * which the driver may have written since. */
struct vq_rings {
	uint32_t size;
	void *desc, *avail, *used;
};

/* Fills @out and returns true if the queue is ready; false otherwise. */
bool vq_get_rings(const struct vq *q, struct vq_rings *out);

#endif
