/* Split virtqueue (virtio/queue.c) over plain buffers registered as guest
 * RAM: two adjacent regions [0, 64 KiB) and [64 KiB, 80 KiB), then a hole. */
#include <errno.h>
#include <string.h>

#include "mem/guest_mem.h"
#include "unit.h"
#include "virtio/queue.h"

#define RAM0_SIZE 0x10000u
#define RAM1_GPA  0x10000u
#define RAM1_SIZE 0x4000u
#define RAM_END   (RAM1_GPA + RAM1_SIZE)
#define HOLE_GPA  0x100000u

#define DESC_GPA  0x1000u
#define AVAIL_GPA 0x2000u
#define USED_GPA  0x3000u
#define TABLE_GPA 0x4000u /* indirect tables */
#define DATA_GPA  0x8000u

#define F_NEXT     1u
#define F_WRITE    2u
#define F_INDIRECT 4u

static _Alignas(4096) uint8_t ram0[RAM0_SIZE];
static _Alignas(4096) uint8_t ram1[RAM1_SIZE];

struct tq {
	struct guest_mem m;
	struct vq q;
	struct vq_seg segs[64];
	struct vq_chain c;
	uint16_t size;
	uint16_t avail_idx; /* the driver's shadow */
};

static void mem_init(struct tq *t)
{
	memset(ram0, 0, sizeof(ram0));
	memset(ram1, 0, sizeof(ram1));
	memset(&t->m, 0, sizeof(t->m));
	CHECK_EQ(gmem_add_region(&t->m, 0, RAM0_SIZE, ram0, -1, 0), 0);
	CHECK_EQ(gmem_add_region(&t->m, RAM1_GPA, RAM1_SIZE, ram1, -1, 0), 0);
}

static void chain_init(struct tq *t, uint32_t cap)
{
	t->c = (struct vq_chain){ .segs = t->segs, .cap = cap };
}

static struct vq_layout std_layout(uint16_t size)
{
	return (struct vq_layout){ .size = size, .desc_gpa = DESC_GPA,
				   .avail_gpa = AVAIL_GPA, .used_gpa = USED_GPA };
}

static void tq_init(struct tq *t, uint16_t size, uint32_t features)
{
	mem_init(t);
	t->size = size;
	t->avail_idx = 0;
	vq_reset(&t->q);
	struct vq_layout l = std_layout(size);
	CHECK_EQ(vq_setup(&t->q, &t->m, 256, &l, features), 0);
	chain_init(t, 64);
}

/* What the driver writes, through the same checked helpers. */
static void put16(struct tq *t, uint64_t gpa, uint16_t v)
{
	CHECK_EQ(gmem_write(&t->m, gpa, &v, sizeof(v)), 0);
}

static uint16_t get16(struct tq *t, uint64_t gpa)
{
	uint16_t v = 0;
	CHECK_EQ(gmem_read(&t->m, gpa, &v, sizeof(v)), 0);
	return v;
}

static uint32_t get32(struct tq *t, uint64_t gpa)
{
	uint32_t v = 0;
	CHECK_EQ(gmem_read(&t->m, gpa, &v, sizeof(v)), 0);
	return v;
}

static void desc_at(struct tq *t, uint64_t table, uint16_t i, uint64_t addr,
		    uint32_t len, uint16_t flags, uint16_t next)
{
	uint8_t d[16];
	memcpy(d, &addr, 8);
	memcpy(d + 8, &len, 4);
	memcpy(d + 12, &flags, 2);
	memcpy(d + 14, &next, 2);
	CHECK_EQ(gmem_write(&t->m, table + 16ull * i, d, sizeof(d)), 0);
}

static void desc(struct tq *t, uint16_t i, uint64_t addr, uint32_t len,
		 uint16_t flags, uint16_t next)
{
	desc_at(t, DESC_GPA, i, addr, len, flags, next);
}

static void avail_add(struct tq *t, uint16_t head)
{
	put16(t, AVAIL_GPA + 4 + 2u * (t->avail_idx & (t->size - 1)), head);
	t->avail_idx++;
	put16(t, AVAIL_GPA + 2, t->avail_idx);
}

static uint16_t used_idx(struct tq *t)
{
	return get16(t, USED_GPA + 2);
}

static void set_used_event(struct tq *t, uint16_t v)
{
	put16(t, AVAIL_GPA + 4 + 2u * t->size, v);
}

static uint16_t avail_event(struct tq *t)
{
	return get16(t, USED_GPA + 4 + 8u * t->size);
}

static uint8_t *host_of(uint64_t gpa)
{
	return gpa < RAM0_SIZE ? ram0 + gpa : ram1 + (gpa - RAM1_GPA);
}

static void test_setup_checks(void)
{
	struct tq t;
	mem_init(&t);
	struct vq_layout l = std_layout(16);
	CHECK_EQ(vq_setup(&t.q, &t.m, 256, &l, 0), 0);
	CHECK(t.q.ready);

	const struct { uint32_t size; uint64_t desc, avail, used; uint32_t max; } bad[] = {
		{ 0, DESC_GPA, AVAIL_GPA, USED_GPA, 256 },         /* size 0 */
		{ 12, DESC_GPA, AVAIL_GPA, USED_GPA, 256 },        /* not a power of two */
		{ 512, DESC_GPA, AVAIL_GPA, USED_GPA, 256 },       /* above max */
		{ 16, DESC_GPA, AVAIL_GPA, USED_GPA, 65536 },      /* max above the spec's */
		{ 16, DESC_GPA, AVAIL_GPA, USED_GPA, 0 },
		{ 16, DESC_GPA + 8, AVAIL_GPA, USED_GPA, 256 },    /* desc not 16-aligned */
		{ 16, DESC_GPA, AVAIL_GPA + 1, USED_GPA, 256 },    /* avail not 2-aligned */
		{ 16, DESC_GPA, AVAIL_GPA, USED_GPA + 2, 256 },    /* used not 4-aligned */
		{ 16, HOLE_GPA, AVAIL_GPA, USED_GPA, 256 },        /* desc in the hole */
		{ 16, RAM_END - 0x80, AVAIL_GPA, USED_GPA, 256 },  /* desc past RAM's end */
		{ 16, RAM1_GPA - 0x80, AVAIL_GPA, USED_GPA, 256 }, /* desc across regions */
		{ 16, DESC_GPA, RAM_END - 0x20, USED_GPA, 256 },   /* used_event past the end */
		{ 16, DESC_GPA, AVAIL_GPA, RAM_END - 0x84, 256 },  /* avail_event past the end */
		{ 16, UINT64_MAX - 15, AVAIL_GPA, USED_GPA, 256 }, /* address wraps */
	};
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		l = (struct vq_layout){ .size = bad[i].size, .desc_gpa = bad[i].desc,
					.avail_gpa = bad[i].avail, .used_gpa = bad[i].used };
		int rc = vq_setup(&t.q, &t.m, bad[i].max, &l, 0);
		if (rc != -EINVAL)
			fprintf(stderr, "  bad layout %u accepted\n", i);
		CHECK_EQ(rc, -EINVAL);
		CHECK(!t.q.ready);
		chain_init(&t, 64);
		CHECK_EQ(vq_pop(&t.q, &t.c), 0); /* not ready: nothing to do */
	}
	l = std_layout(16);
	CHECK_EQ(vq_setup(&t.q, &t.m, 256, &l, 1u << 7), -EINVAL); /* unknown feature */
	/* the largest legal layouts fit exactly */
	l = (struct vq_layout){ .size = 32768, .desc_gpa = 0, .avail_gpa = RAM1_GPA,
				.used_gpa = RAM1_GPA };
	CHECK_EQ(vq_setup(&t.q, &t.m, VQ_MAX_SIZE, &l, 0), -EINVAL); /* used ring too big */
	l = (struct vq_layout){ .size = 1, .desc_gpa = RAM_END - 16,
				.avail_gpa = RAM_END - 8, .used_gpa = RAM_END - 32 };
	CHECK_EQ(vq_setup(&t.q, &t.m, 1, &l, 0), 0);
	CHECK_EQ(t.q.size, 1);
}

static void test_simple_chain(void)
{
	struct tq t;
	tq_init(&t, 16, 0);
	desc(&t, 3, DATA_GPA, 16, F_NEXT, 7);
	desc(&t, 7, DATA_GPA + 0x100, 512, F_NEXT | F_WRITE, 1);
	desc(&t, 1, DATA_GPA + 0x400, 1, F_WRITE, 0);
	CHECK_EQ(vq_pop(&t.q, &t.c), 0);
	avail_add(&t, 3);
	CHECK_EQ(vq_pop(&t.q, &t.c), 1);
	CHECK_EQ(t.c.head, 3);
	CHECK_EQ(t.c.nr_segs, 3);
	CHECK_EQ(t.c.nr_readable, 1);
	CHECK_EQ(t.c.readable_len, 16);
	CHECK_EQ(t.c.writable_len, 513);
	CHECK_EQ(t.c.segs[0].gpa, DATA_GPA);
	CHECK(t.c.segs[0].host == ram0 + DATA_GPA);
	CHECK(!t.c.segs[0].writable);
	CHECK_EQ(t.c.segs[1].len, 512);
	CHECK(t.c.segs[1].host == ram0 + DATA_GPA + 0x100);
	CHECK(t.c.segs[1].writable);
	CHECK_EQ(t.c.segs[2].len, 1);
	CHECK(t.c.segs[2].writable);
	CHECK_EQ(vq_pop(&t.q, &t.c), 0);

	CHECK(!vq_should_notify(&t.q)); /* nothing pushed yet */
	CHECK_EQ(vq_push(&t.q, 3, 513), 0);
	CHECK_EQ(used_idx(&t), 1);
	CHECK_EQ(get32(&t, USED_GPA + 4), 3);
	CHECK_EQ(get32(&t, USED_GPA + 8), 513);
	CHECK_EQ(get16(&t, USED_GPA), 0); /* used->flags untouched */
	CHECK(vq_should_notify(&t.q));
	CHECK(!vq_should_notify(&t.q));   /* no new push since */

	/* push checks its arguments */
	CHECK_EQ(vq_push(&t.q, 3, 0), -EINVAL);  /* nothing in flight */
	avail_add(&t, 1);
	CHECK_EQ(vq_pop(&t.q, &t.c), 1);
	CHECK_EQ(t.c.head, 1);
	CHECK_EQ(t.c.nr_readable, 0);
	CHECK_EQ(vq_push(&t.q, 16, 0), -EINVAL); /* head out of range */
	CHECK_EQ(used_idx(&t), 1);
	CHECK_EQ(vq_push(&t.q, 1, 1), 0);
	CHECK_EQ(used_idx(&t), 2);
	CHECK_EQ(get32(&t, USED_GPA + 12), 1);
	CHECK_EQ(get32(&t, USED_GPA + 16), 1);
	CHECK(vq_error(&t.q) == NULL);
}

static void test_no_interrupt_flag(void)
{
	struct tq t;
	tq_init(&t, 8, 0);
	desc(&t, 0, DATA_GPA, 8, 0, 0);
	put16(&t, AVAIL_GPA, 1); /* VIRTQ_AVAIL_F_NO_INTERRUPT */
	avail_add(&t, 0);
	CHECK_EQ(vq_pop(&t.q, &t.c), 1);
	CHECK_EQ(vq_push(&t.q, 0, 0), 0);
	CHECK(!vq_should_notify(&t.q));
	put16(&t, AVAIL_GPA, 0);
	avail_add(&t, 0);
	CHECK_EQ(vq_pop(&t.q, &t.c), 1);
	CHECK_EQ(vq_push(&t.q, 0, 0), 0);
	CHECK(vq_should_notify(&t.q));
	/* without EVENT_IDX, used_event is ignored and avail_event untouched */
	CHECK_EQ(avail_event(&t), 0);
}

/* 16-bit indices wrap: run the ring past 65535 twice, with event idx, and
 * check both notification outcomes at every step. */
static void test_wraparound(void)
{
	struct tq t;
	tq_init(&t, 4, VQ_F_EVENT_IDX);
	for (uint16_t i = 0; i < 4; i++)
		desc(&t, i, DATA_GPA + 0x10u * i, 0x10, i & 1 ? F_WRITE : 0, 0);
	for (uint32_t n = 0; n < 140000; n++) {
		uint16_t before = (uint16_t)n;
		avail_add(&t, (uint16_t)(n % 4));
		int rc = vq_pop(&t.q, &t.c);
		CHECK_EQ(rc, 1);
		if (rc != 1)
			return;
		CHECK_EQ(t.c.head, n % 4);
		CHECK_EQ(avail_event(&t), (uint16_t)(before + 1));
		CHECK_EQ(vq_push(&t.q, t.c.head, n % 4), 0);
		CHECK_EQ(used_idx(&t), (uint16_t)(before + 1));
		CHECK_EQ(get32(&t, USED_GPA + 4 + 8 * (before % 4)), n % 4);
		/* used_event == old idx: this push crosses it; old - 1: it
		 * was crossed earlier, so stay quiet */
		set_used_event(&t, n & 1 ? before : (uint16_t)(before - 1));
		bool notify = vq_should_notify(&t.q);
		CHECK_EQ(notify, n & 1);
		if (notify != (n & 1))
			return;
	}
	CHECK_EQ(vq_pop(&t.q, &t.c), 0);
}

static void test_event_idx(void)
{
	struct tq t;
	tq_init(&t, 8, VQ_F_EVENT_IDX);
	for (uint16_t i = 0; i < 8; i++)
		desc(&t, i, DATA_GPA, 8, F_WRITE, 0);
	/* an empty pop asks for a kick at the current index */
	put16(&t, USED_GPA + 4 + 8 * 8, 0xbeef);
	CHECK_EQ(vq_pop(&t.q, &t.c), 0);
	CHECK_EQ(avail_event(&t), 0);

	for (uint16_t i = 0; i < 6; i++)
		avail_add(&t, i);
	for (uint16_t i = 0; i < 6; i++) {
		CHECK_EQ(vq_pop(&t.q, &t.c), 1);
		CHECK_EQ(avail_event(&t), i + 1);
	}
	/* the driver wants an interrupt once used->idx passes 4 */
	set_used_event(&t, 4);
	put16(&t, AVAIL_GPA, 1); /* NO_INTERRUPT is ignored with event idx */
	CHECK_EQ(vq_push(&t.q, 0, 8), 0);
	CHECK_EQ(vq_push(&t.q, 1, 8), 0);
	CHECK(!vq_should_notify(&t.q)); /* used idx 2 */
	CHECK_EQ(vq_push(&t.q, 2, 8), 0);
	CHECK_EQ(vq_push(&t.q, 3, 8), 0);
	CHECK(!vq_should_notify(&t.q)); /* 4: not yet past used_event */
	CHECK_EQ(vq_push(&t.q, 4, 8), 0);
	CHECK_EQ(vq_push(&t.q, 5, 8), 0);
	CHECK(vq_should_notify(&t.q));  /* 6: crossed 5 == used_event + 1 */
	CHECK(!vq_should_notify(&t.q));
	/* used_event far behind (already passed long ago): stay quiet */
	set_used_event(&t, 1);
	avail_add(&t, 6);
	CHECK_EQ(vq_pop(&t.q, &t.c), 1);
	CHECK_EQ(vq_push(&t.q, 6, 0), 0);
	CHECK(!vq_should_notify(&t.q));
}

static void test_indirect(void)
{
	struct tq t;
	tq_init(&t, 8, VQ_F_INDIRECT);
	/* a direct header, then an indirect table of three (2.7.5.3.2); the
	 * table descriptor's WRITE flag is ignored */
	desc(&t, 2, DATA_GPA, 16, F_NEXT, 5);
	desc(&t, 5, TABLE_GPA, 3 * 16, F_INDIRECT | F_WRITE, 0);
	desc_at(&t, TABLE_GPA, 0, DATA_GPA + 0x100, 32, F_NEXT, 2);
	desc_at(&t, TABLE_GPA, 2, DATA_GPA + 0x200, 64, F_NEXT | F_WRITE, 1);
	desc_at(&t, TABLE_GPA, 1, DATA_GPA + 0x300, 1, F_WRITE, 0);
	avail_add(&t, 2);
	CHECK_EQ(vq_pop(&t.q, &t.c), 1);
	CHECK_EQ(t.c.head, 2);
	CHECK_EQ(t.c.nr_segs, 4);
	CHECK_EQ(t.c.nr_readable, 2);
	CHECK_EQ(t.c.readable_len, 48);
	CHECK_EQ(t.c.writable_len, 65);
	CHECK(t.c.segs[1].host == ram0 + DATA_GPA + 0x100);
	CHECK_EQ(t.c.segs[2].gpa, DATA_GPA + 0x200);
	CHECK(t.c.segs[3].writable);
	CHECK_EQ(vq_push(&t.q, 2, 65), 0);

	/* a table that is only the head, at an odd address */
	desc(&t, 0, TABLE_GPA + 0x101, 16, F_INDIRECT, 0);
	desc_at(&t, TABLE_GPA + 0x101, 0, DATA_GPA, 4, 0, 0);
	avail_add(&t, 0);
	CHECK_EQ(vq_pop(&t.q, &t.c), 1);
	CHECK_EQ(t.c.nr_segs, 1);
	CHECK_EQ(t.c.readable_len, 4);
}

static void test_zero_length_and_region_split(void)
{
	struct tq t;
	tq_init(&t, 8, 0);
	/* zero-length descriptors are allowed; their address must be RAM */
	desc(&t, 0, DATA_GPA, 0, F_NEXT, 1);
	desc(&t, 1, RAM_END, 0, F_NEXT | F_WRITE, 2);  /* end of RAM: ok */
	/* crosses from ram0 into the adjacent ram1: two segments */
	desc(&t, 2, RAM1_GPA - 0x10, 0x30, F_WRITE, 0);
	avail_add(&t, 0);
	CHECK_EQ(vq_pop(&t.q, &t.c), 1);
	CHECK_EQ(t.c.nr_segs, 4);
	CHECK_EQ(t.c.segs[0].len, 0);
	CHECK(t.c.segs[0].host == ram0 + DATA_GPA);
	CHECK(t.c.segs[1].host != NULL);
	CHECK_EQ(t.c.segs[2].gpa, RAM1_GPA - 0x10);
	CHECK_EQ(t.c.segs[2].len, 0x10);
	CHECK(t.c.segs[2].host == ram0 + RAM1_GPA - 0x10);
	CHECK_EQ(t.c.segs[3].gpa, RAM1_GPA);
	CHECK_EQ(t.c.segs[3].len, 0x20);
	CHECK(t.c.segs[3].host == ram1);
	CHECK_EQ(t.c.writable_len, 0x30);
}

/* One hostile ring per case, each on a fresh queue. */
enum bad_case {
	BAD_CYCLE, BAD_SELF_LOOP, BAD_HEAD_RANGE, BAD_NEXT_RANGE, BAD_TOO_MANY_SEGS,
	BAD_INDIRECT_NOFEAT, BAD_NESTED_INDIRECT, BAD_INDIRECT_NEXT,
	BAD_INDIRECT_LEN0, BAD_INDIRECT_LEN17, BAD_INDIRECT_TOO_LONG,
	BAD_INDIRECT_OUTSIDE, BAD_INDIRECT_CYCLE, BAD_INDIRECT_RANGE,
	BAD_AVAIL_AHEAD, BAD_PAST_RAM_END, BAD_IN_HOLE, BAD_ADDR_WRAP,
	BAD_ZERO_LEN_HOLE, BAD_READ_AFTER_WRITE, BAD_READ_AFTER_WRITE_INDIRECT,
	BAD_NR
};

static void build_bad(struct tq *t, enum bad_case b)
{
	const uint16_t n = t->size;
	switch (b) {
	case BAD_CYCLE:
		desc(t, 0, DATA_GPA, 8, F_NEXT, 1);
		desc(t, 1, DATA_GPA, 8, F_NEXT, 2);
		desc(t, 2, DATA_GPA, 8, F_NEXT, 0);
		break;
	case BAD_SELF_LOOP:
		desc(t, 0, DATA_GPA, 8, F_NEXT | F_WRITE, 0);
		break;
	case BAD_HEAD_RANGE:
		desc(t, 0, DATA_GPA, 8, 0, 0);
		avail_add(t, n);
		return;
	case BAD_NEXT_RANGE:
		desc(t, 0, DATA_GPA, 8, F_NEXT, (uint16_t)(n + 3));
		break;
	case BAD_TOO_MANY_SEGS: /* cap is 2 */
		desc(t, 0, DATA_GPA, 8, F_NEXT, 1);
		desc(t, 1, DATA_GPA, 8, F_NEXT, 2);
		desc(t, 2, DATA_GPA, 8, 0, 0);
		break;
	case BAD_INDIRECT_NOFEAT: /* queue set up without VQ_F_INDIRECT */
	case BAD_NESTED_INDIRECT:
		desc(t, 0, TABLE_GPA, 32, F_INDIRECT, 0);
		desc_at(t, TABLE_GPA, 0, DATA_GPA, 8, F_NEXT, 1);
		desc_at(t, TABLE_GPA, 1, TABLE_GPA + 0x100, 16, F_INDIRECT, 0);
		desc_at(t, TABLE_GPA + 0x100, 0, DATA_GPA, 8, 0, 0);
		break;
	case BAD_INDIRECT_NEXT:
		desc(t, 0, TABLE_GPA, 16, F_INDIRECT | F_NEXT, 1);
		desc(t, 1, DATA_GPA, 8, 0, 0);
		desc_at(t, TABLE_GPA, 0, DATA_GPA, 8, 0, 0);
		break;
	case BAD_INDIRECT_LEN0:
		desc(t, 0, TABLE_GPA, 0, F_INDIRECT, 0);
		break;
	case BAD_INDIRECT_LEN17:
		desc(t, 0, TABLE_GPA, 17, F_INDIRECT, 0);
		desc_at(t, TABLE_GPA, 0, DATA_GPA, 8, 0, 0);
		break;
	case BAD_INDIRECT_TOO_LONG: /* a table longer than the queue size */
		desc(t, 0, TABLE_GPA, 16u * (n + 1), F_INDIRECT, 0);
		for (uint16_t i = 0; i <= n; i++)
			desc_at(t, TABLE_GPA, i, DATA_GPA, 1, i < n ? F_NEXT : 0,
				(uint16_t)(i + 1));
		break;
	case BAD_INDIRECT_OUTSIDE:
		desc(t, 0, RAM_END - 16, 32, F_INDIRECT, 0);
		break;
	case BAD_INDIRECT_CYCLE:
		desc(t, 0, TABLE_GPA, 32, F_INDIRECT, 0);
		desc_at(t, TABLE_GPA, 0, DATA_GPA, 8, F_NEXT, 1);
		desc_at(t, TABLE_GPA, 1, DATA_GPA, 8, F_NEXT, 0);
		break;
	case BAD_INDIRECT_RANGE:
		desc(t, 0, TABLE_GPA, 32, F_INDIRECT, 0);
		desc_at(t, TABLE_GPA, 0, DATA_GPA, 8, F_NEXT, 2);
		desc_at(t, TABLE_GPA, 2, DATA_GPA, 8, 0, 0); /* outside the table */
		break;
	case BAD_AVAIL_AHEAD:
		desc(t, 0, DATA_GPA, 8, 0, 0);
		put16(t, AVAIL_GPA + 2, (uint16_t)(n + 1));
		return;
	case BAD_PAST_RAM_END:
		desc(t, 0, DATA_GPA, 8, F_NEXT, 1);
		desc(t, 1, RAM_END - 0x10, 0x11, F_WRITE, 0);
		break;
	case BAD_IN_HOLE:
		desc(t, 0, HOLE_GPA, 0x10, 0, 0);
		break;
	case BAD_ADDR_WRAP: /* addr + len overflows 64 bits */
		desc(t, 0, UINT64_MAX - 8, 0x20, 0, 0);
		break;
	case BAD_ZERO_LEN_HOLE:
		desc(t, 0, HOLE_GPA, 0, 0, 0);
		break;
	case BAD_READ_AFTER_WRITE:
		desc(t, 0, DATA_GPA, 8, F_NEXT, 1);
		desc(t, 1, DATA_GPA + 8, 8, F_NEXT | F_WRITE, 2);
		desc(t, 2, DATA_GPA + 16, 8, 0, 0);
		break;
	case BAD_READ_AFTER_WRITE_INDIRECT: /* writable direct, readable in table */
		desc(t, 0, DATA_GPA, 8, F_NEXT | F_WRITE, 1);
		desc(t, 1, TABLE_GPA, 16, F_INDIRECT, 0);
		desc_at(t, TABLE_GPA, 0, DATA_GPA + 8, 8, 0, 0);
		break;
	case BAD_NR:
		break;
	}
	avail_add(t, 0);
}

/* The reason vq_error() gives, so each case fails where it should. */
static const char *const bad_why[BAD_NR] = {
	[BAD_CYCLE] = "loops", [BAD_SELF_LOOP] = "loops",
	[BAD_HEAD_RANGE] = "head index", [BAD_NEXT_RANGE] = "index out of range",
	[BAD_TOO_MANY_SEGS] = "more segments",
	[BAD_INDIRECT_NOFEAT] = "without VIRTIO_F_INDIRECT_DESC",
	[BAD_NESTED_INDIRECT] = "inside an indirect table",
	[BAD_INDIRECT_NEXT] = "with NEXT",
	[BAD_INDIRECT_LEN0] = "multiple of 16", [BAD_INDIRECT_LEN17] = "multiple of 16",
	[BAD_INDIRECT_TOO_LONG] = "longer than the queue size",
	[BAD_INDIRECT_OUTSIDE] = "table outside guest RAM",
	[BAD_INDIRECT_CYCLE] = "loops", [BAD_INDIRECT_RANGE] = "indirect descriptor index",
	[BAD_AVAIL_AHEAD] = "ahead", [BAD_PAST_RAM_END] = "outside guest RAM",
	[BAD_IN_HOLE] = "outside guest RAM", [BAD_ADDR_WRAP] = "outside guest RAM",
	[BAD_ZERO_LEN_HOLE] = "outside guest RAM",
	[BAD_READ_AFTER_WRITE] = "after a writable",
	[BAD_READ_AFTER_WRITE_INDIRECT] = "after a writable",
};

static void test_malformed(void)
{
	for (int b = 0; b < BAD_NR; b++) {
		struct tq t;
		uint32_t feat = b == BAD_INDIRECT_NOFEAT ? 0 : VQ_F_INDIRECT | VQ_F_EVENT_IDX;
		tq_init(&t, 8, feat);
		if (b == BAD_TOO_MANY_SEGS)
			chain_init(&t, 2);
		build_bad(&t, (enum bad_case)b);
		int rc = vq_pop(&t.q, &t.c);
		if (rc != -EINVAL)
			fprintf(stderr, "  bad case %d: pop returned %d\n", b, rc);
		CHECK_EQ(rc, -EINVAL);
		const char *why = vq_error(&t.q);
		CHECK(why && strstr(why, bad_why[b]));
		/* stays broken even once the guest makes the ring sane */
		desc(&t, 0, DATA_GPA, 8, 0, 0);
		put16(&t, AVAIL_GPA + 4, 0);
		put16(&t, AVAIL_GPA + 2, 1);
		CHECK_EQ(vq_pop(&t.q, &t.c), -EINVAL);
		CHECK_EQ(used_idx(&t), 0);
		/* until reset and set up again */
		vq_reset(&t.q);
		CHECK(vq_error(&t.q) == NULL);
		CHECK_EQ(vq_pop(&t.q, &t.c), 0);
		struct vq_layout l = std_layout(8);
		CHECK_EQ(vq_setup(&t.q, &t.m, 8, &l, feat), 0);
		chain_init(&t, 64);
		CHECK_EQ(vq_pop(&t.q, &t.c), 1);
	}
}

/* A chain of exactly the queue size is fine; and so is an indirect table
 * of the queue size. */
static void test_longest_chains(void)
{
	struct tq t;
	tq_init(&t, 8, VQ_F_INDIRECT);
	for (uint16_t i = 0; i < 8; i++)
		desc(&t, i, DATA_GPA + i, 1, i < 7 ? F_NEXT : 0, (uint16_t)(i + 1));
	avail_add(&t, 0);
	CHECK_EQ(vq_pop(&t.q, &t.c), 1);
	CHECK_EQ(t.c.nr_segs, 8);
	CHECK_EQ(vq_push(&t.q, 0, 0), 0);

	/* cap exactly the chain length */
	chain_init(&t, 8);
	avail_add(&t, 0);
	CHECK_EQ(vq_pop(&t.q, &t.c), 1);
	CHECK_EQ(t.c.nr_segs, 8);
	CHECK(host_of(t.c.segs[7].gpa) == t.c.segs[7].host);
	CHECK_EQ(vq_push(&t.q, 0, 0), 0);

	desc(&t, 3, TABLE_GPA, 8 * 16, F_INDIRECT, 0);
	for (uint16_t i = 0; i < 8; i++)
		desc_at(&t, TABLE_GPA, i, DATA_GPA, 2, i < 7 ? F_NEXT : 0,
			(uint16_t)(i + 1));
	avail_add(&t, 3);
	CHECK_EQ(vq_pop(&t.q, &t.c), 1);
	CHECK_EQ(t.c.nr_segs, 8);
	CHECK_EQ(t.c.readable_len, 16);
}

/* A broken queue still completes what was in flight. */
static void test_push_after_break(void)
{
	struct tq t;
	tq_init(&t, 8, 0);
	desc(&t, 0, DATA_GPA, 8, F_WRITE, 0);
	desc(&t, 1, DATA_GPA, 8, F_NEXT, 1);
	avail_add(&t, 0);
	avail_add(&t, 1);
	CHECK_EQ(vq_pop(&t.q, &t.c), 1);
	CHECK_EQ(vq_pop(&t.q, &t.c), -EINVAL);
	CHECK_EQ(vq_push(&t.q, 0, 8), 0);
	CHECK_EQ(used_idx(&t), 1);
	CHECK(vq_should_notify(&t.q));
}

/* The setup limits on both sides: a queue size against a maximum of 1,
 * the driver area's event field at the end of RAM, and each ring's
 * guest-physical alignment on its own (in a region whose host mapping is
 * aligned differently from its gpa, so the host check cannot stand in). */
static void test_setup_boundaries(void)
{
	struct tq t;
	mem_init(&t);
	struct vq_layout l = std_layout(1);
	CHECK_EQ(vq_setup(&t.q, &t.m, 1, &l, 0), 0);
	l.size = 2;
	CHECK_EQ(vq_setup(&t.q, &t.m, 1, &l, 0), -EINVAL);
	CHECK_EQ(vq_setup(&t.q, &t.m, 2, &l, 0), 0);
	/* size 1: the driver area is flags, idx, ring[1], used_event: 8 bytes */
	l = (struct vq_layout){ .size = 1, .desc_gpa = DESC_GPA, .avail_gpa = RAM_END - 8,
				.used_gpa = USED_GPA };
	CHECK_EQ(vq_setup(&t.q, &t.m, 1, &l, 0), 0);
	l.avail_gpa = RAM_END - 6;
	CHECK_EQ(vq_setup(&t.q, &t.m, 1, &l, 0), -EINVAL);
	/* the device area: flags, idx, ring[1], avail_event: 14 bytes */
	l = (struct vq_layout){ .size = 1, .desc_gpa = DESC_GPA, .avail_gpa = AVAIL_GPA,
				.used_gpa = RAM_END - 16 };
	CHECK_EQ(vq_setup(&t.q, &t.m, 1, &l, 0), 0);
	l.used_gpa = RAM_END - 12;
	CHECK_EQ(vq_setup(&t.q, &t.m, 1, &l, 0), -EINVAL);

	static _Alignas(4096) uint8_t odd[0x2000];
	const uint64_t gpa = HOLE_GPA; /* host odd + 15: gpa + 1 is 16-aligned on the host */
	CHECK_EQ(gmem_add_region(&t.m, gpa, 0x1000, odd + 15, -1, 0), 0);
	static const struct { uint64_t desc, avail, used; } mis[] = {
		{ gpa + 1, AVAIL_GPA, USED_GPA },  /* desc one byte off 16 */
		{ gpa + 9, AVAIL_GPA, USED_GPA },
		{ DESC_GPA, gpa + 1, USED_GPA },   /* avail one byte off 2 */
		{ DESC_GPA, AVAIL_GPA, gpa + 1 },  /* used one byte off 4 */
		{ DESC_GPA, AVAIL_GPA, gpa + 3 },
	};
	for (unsigned i = 0; i < sizeof(mis) / sizeof(mis[0]); i++) {
		l = (struct vq_layout){ .size = 4, .desc_gpa = mis[i].desc, .avail_gpa = mis[i].avail,
					.used_gpa = mis[i].used };
		int rc = vq_setup(&t.q, &t.m, 4, &l, 0);
		if (rc != -EINVAL)
			fprintf(stderr, "  misaligned layout %u accepted\n", i);
		CHECK_EQ(rc, -EINVAL);
	}
}

/* A chain carries at most 2^32 bytes: exactly that is a chain, one byte
 * more is malformed. The buffers lie in a region that is never touched
 * (its host pointer is a stand-in), so no 4 GiB need be mapped. */
static void test_chain_byte_limit(void)
{
	struct tq t;
	tq_init(&t, 8, 0);
	CHECK_EQ(gmem_add_region(&t.m, 1ull << 32, 8ull << 30, ram1, -1, 0), 0);
	desc(&t, 0, 1ull << 32, 0xffffffffu, F_NEXT, 1);
	desc(&t, 1, 1ull << 32, 1, 0, 0);
	avail_add(&t, 0);
	CHECK_EQ(vq_pop(&t.q, &t.c), 1);
	CHECK_EQ(t.c.readable_len, 1ull << 32);
	CHECK_EQ(vq_push(&t.q, 0, 0), 0);
	desc(&t, 1, 1ull << 32, 2, 0, 0);
	avail_add(&t, 0);
	CHECK_EQ(vq_pop(&t.q, &t.c), -EINVAL);
	CHECK_STREQ(vq_error(&t.q), "chain longer than 2^32 bytes");
}

int main(void)
{
	RUN(test_setup_checks);
	RUN(test_setup_boundaries);
	RUN(test_chain_byte_limit);
	RUN(test_simple_chain);
	RUN(test_no_interrupt_flag);
	RUN(test_wraparound);
	RUN(test_event_idx);
	RUN(test_indirect);
	RUN(test_zero_length_and_region_split);
	RUN(test_malformed);
	RUN(test_longest_chains);
	RUN(test_push_after_break);
	return unit_done();
}
