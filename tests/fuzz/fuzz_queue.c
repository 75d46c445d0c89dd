/* libFuzzer target for virtio/queue.c: the guest controls the whole ring
 * memory, the ring placement, the queue size and the negotiated features;
 * the fuzzer also plays the device (pop, push, notify, reset) and the guest
 * rewriting memory between device steps.
 *
 * Input layout (little-endian):
 *   0      size_log2 (mod 9: queue sizes 1..256)
 *   1      features (VQ_F_* bits, low two)
 *   2      chain capacity (0 means VQ_MAX_SEGS)
 *   3..8   desc, avail, used offsets (u16 each) from gpa 0
 *   9      number of ops N (each OP_SIZE bytes)
 *   10..   N ops: kind, u16 offset, u16 value
 *   rest   guest RAM image, filling regions A, B, C in order
 *
 * Guest RAM: A = [0, 0x4000) and B = [0x4000, 0x5000), adjacent; a hole;
 * C = [0x8000, 0x9000). Each region is its own heap allocation of exactly
 * its size (allocated once per process), so ASan reports any access past
 * one.
 *
 * Invariants checked (abort on violation):
 *  - pop returns 1, 0 or -EINVAL; once -EINVAL, always -EINVAL until reset;
 *  - a popped chain has 1..cap segments, readable before writable, lengths
 *    adding up, a head below the queue size, and every segment lies inside
 *    one region's buffer and matches gmem_ptr();
 *  - pop writes nothing but avail_event; push nothing but the used ring. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mem/guest_mem.h"
#include "virtio/queue.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define HDR_SIZE 10u
#define OP_SIZE 5u
#define NR_REGIONS 3u

static const struct { uint64_t gpa, size; } layout[NR_REGIONS] = {
	{ 0x0, 0x4000 }, { 0x4000, 0x1000 }, { 0x8000, 0x1000 },
};

enum op_kind { OP_POP, OP_PUSH, OP_NOTIFY, OP_WRITE16, OP_RESET, OP_NR };

#define CHECK(c) do { if (!(c)) { \
	fprintf(stderr, "fuzz_queue: invariant failed: %s (line %d)\n", #c, __LINE__); \
	abort(); } } while (0)

struct fz {
	uint8_t *buf[NR_REGIONS];
	uint8_t *shadow[NR_REGIONS];
	struct guest_mem mem;
	struct vq q;
	struct vq_layout l;
	uint32_t max_size, features;
	bool ready;
	uint16_t heads[VQ_MAX_SIZE > 256 ? 256 : VQ_MAX_SIZE]; /* in flight, FIFO */
	unsigned nr_heads, first_head;
	struct vq_chain c;
	struct vq_seg segs[VQ_MAX_SEGS];
};

static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static void snapshot(struct fz *f)
{
	for (unsigned i = 0; i < NR_REGIONS; i++)
		memcpy(f->shadow[i], f->buf[i], layout[i].size);
}

/* Every byte differing from the snapshot lies in [lo, hi). */
static void check_writes_within(const struct fz *f, uint64_t lo, uint64_t hi)
{
	for (unsigned i = 0; i < NR_REGIONS; i++) {
		if (memcmp(f->buf[i], f->shadow[i], layout[i].size) == 0)
			continue;
		for (uint64_t off = 0; off < layout[i].size; off++) {
			if (f->buf[i][off] == f->shadow[i][off])
				continue;
			uint64_t gpa = layout[i].gpa + off;
			CHECK(gpa >= lo && gpa < hi);
		}
	}
}

static bool host_in_region(const struct fz *f, const struct vq_seg *s)
{
	for (unsigned i = 0; i < NR_REGIONS; i++) {
		const uint8_t *b = f->buf[i];
		if ((const uint8_t *)s->host >= b &&
		    (const uint8_t *)s->host <= b + layout[i].size &&
		    s->len <= (uint64_t)(b + layout[i].size - (const uint8_t *)s->host) &&
		    s->gpa == layout[i].gpa + (uint64_t)((const uint8_t *)s->host - b))
			return true;
	}
	return false;
}

static void check_chain(struct fz *f)
{
	const struct vq_chain *c = &f->c;
	CHECK(c->nr_segs >= 1 && c->nr_segs <= c->cap);
	CHECK(c->nr_readable <= c->nr_segs);
	CHECK(c->head < f->l.size);
	uint64_t rd = 0, wr = 0;
	volatile uint8_t sink = 0;
	for (uint32_t i = 0; i < c->nr_segs; i++) {
		const struct vq_seg *s = &c->segs[i];
		CHECK(s->host != NULL);
		CHECK(s->writable == (i >= c->nr_readable));
		CHECK(host_in_region(f, s));
		CHECK(gmem_ptr(&f->mem, s->gpa, s->len) == s->host);
		if (s->len) { /* touch both ends: ASan checks them too */
			sink ^= ((const uint8_t *)s->host)[0];
			sink ^= ((const uint8_t *)s->host)[s->len - 1];
		}
		if (s->writable)
			wr += s->len;
		else
			rd += s->len;
	}
	(void)sink;
	CHECK(rd == c->readable_len && wr == c->writable_len);
	CHECK(rd + wr <= (1ull << 32));
}

static void do_setup(struct fz *f)
{
	f->nr_heads = f->first_head = 0;
	f->ready = vq_setup(&f->q, &f->mem, f->max_size, &f->l, f->features) == 0;
}

static int do_pop(struct fz *f, bool *broken)
{
	uint64_t ae = f->l.used_gpa + 4 + 8ull * f->l.size;
	snapshot(f);
	int rc = vq_pop(&f->q, &f->c);
	CHECK(rc == 1 || rc == 0 || rc == -EINVAL);
#ifdef FUZZ_QUEUE_TRACE /* build with -DFUZZ_QUEUE_TRACE to follow one input */
	fprintf(stderr, "pop: %d head %u segs %u (%u readable) %s\n", rc,
		rc == 1 ? f->c.head : 0, rc == 1 ? f->c.nr_segs : 0,
		rc == 1 ? f->c.nr_readable : 0, vq_error(&f->q) ? vq_error(&f->q) : "");
#endif
	if (*broken)
		CHECK(rc == -EINVAL);
	if (!f->ready)
		CHECK(rc == 0);
	/* only avail_event may change, and only with EVENT_IDX */
	if (f->ready && (f->features & VQ_F_EVENT_IDX))
		check_writes_within(f, ae, ae + 2);
	else
		check_writes_within(f, 0, 0);
	if (rc == -EINVAL) {
		*broken = true;
		CHECK(vq_error(&f->q) != NULL);
		return rc;
	}
	CHECK(vq_error(&f->q) == NULL);
	if (rc == 1) {
		check_chain(f);
		if (f->nr_heads < sizeof(f->heads) / sizeof(f->heads[0])) {
			unsigned slot = (f->first_head + f->nr_heads++) %
					(sizeof(f->heads) / sizeof(f->heads[0]));
			f->heads[slot] = f->c.head;
		}
	}
	return rc;
}

static void do_push(struct fz *f, uint32_t written)
{
	if (!f->nr_heads) {
		/* pushing what was never popped is refused, unless a pop was
		 * dropped from our FIFO because it was full */
		if (f->ready && f->q.inflight == 0)
			CHECK(vq_push(&f->q, 0, written) == -EINVAL);
		return;
	}
	uint16_t head = f->heads[f->first_head];
	f->first_head = (f->first_head + 1) % (sizeof(f->heads) / sizeof(f->heads[0]));
	f->nr_heads--;
	snapshot(f);
	CHECK(vq_push(&f->q, head, written) == 0);
	check_writes_within(f, f->l.used_gpa, f->l.used_gpa + 4 + 8ull * f->l.size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct fz f; /* big (segs); the harness is single-threaded */
	if (size < HDR_SIZE)
		return 0;

	for (unsigned i = 0; i < NR_REGIONS; i++) {
		if (!f.buf[i]) { /* once per process; ASan redzones surround each */
			f.buf[i] = malloc(layout[i].size);
			f.shadow[i] = malloc(layout[i].size);
			CHECK(f.buf[i] && f.shadow[i]);
		}
		memset(f.buf[i], 0, layout[i].size);
	}
	memset(&f.mem, 0, sizeof(f.mem));
	for (unsigned i = 0; i < NR_REGIONS; i++)
		CHECK(gmem_add_region(&f.mem, layout[i].gpa, layout[i].size,
				      f.buf[i], -1, 0) == 0);

	f.l = (struct vq_layout){
		.size = 1u << (data[0] % 9),
		.desc_gpa = rd16(data + 3),
		.avail_gpa = rd16(data + 5),
		.used_gpa = rd16(data + 7),
	};
	f.features = data[1] & (VQ_F_INDIRECT | VQ_F_EVENT_IDX);
	f.max_size = 256;
	f.c = (struct vq_chain){ .segs = f.segs, .cap = data[2] ? data[2] : VQ_MAX_SEGS };
	size_t nr_ops = data[9];
	const uint8_t *ops = data + HDR_SIZE;
	if ((size - HDR_SIZE) / OP_SIZE < nr_ops)
		nr_ops = (size - HDR_SIZE) / OP_SIZE;
	const uint8_t *img = ops + nr_ops * OP_SIZE;
	size_t img_len = size - HDR_SIZE - nr_ops * OP_SIZE;
	for (unsigned i = 0; i < NR_REGIONS && img_len; i++) {
		size_t n = img_len < layout[i].size ? img_len : layout[i].size;
		memcpy(f.buf[i], img, n);
		img += n;
		img_len -= n;
	}

	vq_reset(&f.q);
	do_setup(&f);
#ifdef FUZZ_QUEUE_TRACE
	fprintf(stderr, "setup: size %u features %u cap %u: %s\n", f.l.size,
		f.features, f.c.cap, f.ready ? "ready" : "rejected");
#endif
	bool broken = false;
	/* with no ops, pop until empty or broken (at most size+1 pops) */
	if (nr_ops == 0) {
		for (unsigned i = 0; i <= f.l.size; i++) {
			if (do_pop(&f, &broken) != 1)
				break;
		}
	}
	for (size_t k = 0; k < nr_ops; k++) {
		const uint8_t *op = ops + k * OP_SIZE;
		uint16_t a = rd16(op + 1), v = rd16(op + 3);
		switch (op[0] % OP_NR) {
		case OP_POP:
			(void)do_pop(&f, &broken);
			break;
		case OP_PUSH:
			do_push(&f, v);
			break;
		case OP_NOTIFY:
			(void)vq_should_notify(&f.q);
			break;
		case OP_WRITE16: { /* the guest rewrites its memory */
			void *p = gmem_ptr(&f.mem, a, 2);
			if (p)
				memcpy(p, &v, 2);
			break;
		}
		case OP_RESET:
			vq_reset(&f.q);
			CHECK(vq_error(&f.q) == NULL);
			broken = false;
			if (a & 1)
				do_setup(&f);
			else
				f.ready = false, f.nr_heads = 0;
			break;
		}
	}
	return 0;
}
