/* virtio-blk request parser (virtio/blk.c, blk_parse): every valid and
 * invalid request shape, over chains built by hand from plain buffers
 * (what vq_pop() would hand over). */
#include <stdint.h>
#include <string.h>

#include "unit.h"
#include "virtio/blk.h"

#define CAP_SECTORS 2048u /* a 1 MiB disk */

static uint8_t mem[64 * 1024];

struct tc {
	struct vq_seg segs[32];
	struct vq_chain c;
	struct iovec iov[8];
	struct blk_request r;
	size_t used; /* bytes of mem handed out */
};

static const struct blk_limits lim = {
	.discard = true, .write_zeroes = true, .max_dwz_segs = 4,
	.max_discard_sectors = 1024, .max_write_zeroes_sectors = 512,
};

static void tc_init(struct tc *t)
{
	memset(t, 0, sizeof(*t));
	memset(mem, 0xee, sizeof(mem));
	t->c.segs = t->segs;
	t->c.cap = 32;
	t->r.iov = t->iov;
	t->r.iov_cap = 8;
}

/* Appends a segment of @len bytes (copied from @data unless NULL). */
static uint8_t *seg(struct tc *t, const void *data, uint32_t len, bool writable)
{
	uint8_t *p = mem + t->used;
	t->used += len + 64; /* gaps between segments catch overruns */
	if (data)
		memcpy(p, data, len);
	t->segs[t->c.nr_segs++] = (struct vq_seg){
		.gpa = (uint64_t)(p - mem), .host = p, .len = len, .writable = writable,
	};
	if (writable) {
		t->c.writable_len += len;
	} else {
		t->c.nr_readable++;
		t->c.readable_len += len;
	}
	return p;
}

static void hdr(uint8_t out[16], uint32_t type, uint64_t sector)
{
	memset(out, 0, 16);
	memcpy(out, &type, 4);
	memcpy(out + 8, &sector, 8);
}

static void dwz(uint8_t out[16], uint64_t sector, uint32_t n, uint32_t flags)
{
	memcpy(out, &sector, 8);
	memcpy(out + 8, &n, 4);
	memcpy(out + 12, &flags, 4);
}

static enum blk_parse_error parse(struct tc *t)
{
	return blk_parse(&t->c, CAP_SECTORS, &lim, &t->r);
}

static void test_read_classic(void)
{
	struct tc t;
	tc_init(&t);
	uint8_t h[16];
	hdr(h, VIRTIO_BLK_T_IN, 8);
	seg(&t, h, 16, false);
	uint8_t *d = seg(&t, NULL, 4096, true);
	uint8_t *st = seg(&t, NULL, 1, true);
	CHECK_EQ(parse(&t), BLK_PARSE_OK);
	CHECK_EQ(t.r.type, VIRTIO_BLK_T_IN);
	CHECK_EQ(t.r.sector, 8);
	CHECK(t.r.status == st);
	CHECK_EQ(t.r.iovcnt, 1);
	CHECK(t.r.iov[0].iov_base == d);
	CHECK_EQ(t.r.iov[0].iov_len, 4096);
	CHECK_EQ(t.r.data_len, 4096);
	CHECK_EQ(blk_parse_status(BLK_PARSE_OK), VIRTIO_BLK_S_OK);
}

static void test_write_multi_segment(void)
{
	struct tc t;
	tc_init(&t);
	uint8_t h[16];
	hdr(h, VIRTIO_BLK_T_OUT, CAP_SECTORS - 3);
	seg(&t, h, 16, false);
	seg(&t, NULL, 512, false);
	seg(&t, NULL, 0, false);  /* empty segments are skipped */
	seg(&t, NULL, 1024, false);
	seg(&t, NULL, 1, true);
	CHECK_EQ(parse(&t), BLK_PARSE_OK);
	CHECK_EQ(t.r.type, VIRTIO_BLK_T_OUT);
	CHECK_EQ(t.r.iovcnt, 2);
	CHECK_EQ(t.r.data_len, 1536);
	CHECK_EQ(t.r.iov[1].iov_len, 1024);
}

/* 2.7.4: the header split over descriptors, and header + data + status
 * sharing segments. */
static void test_framing_free(void)
{
	struct tc t;
	tc_init(&t);
	uint8_t h[16];
	hdr(h, VIRTIO_BLK_T_IN, 0x102);
	seg(&t, h, 3, false);
	seg(&t, h + 3, 9, false);
	seg(&t, h + 12, 4, false);
	uint8_t *w = seg(&t, NULL, 513, true); /* data and status in one */
	CHECK_EQ(parse(&t), BLK_PARSE_OK);
	CHECK_EQ(t.r.type, VIRTIO_BLK_T_IN);
	CHECK_EQ(t.r.sector, 0x102);
	CHECK(t.r.status == w + 512);
	CHECK_EQ(t.r.iovcnt, 1);
	CHECK_EQ(t.r.iov[0].iov_len, 512);

	/* OUT: header and data in one readable segment, data spilling over */
	tc_init(&t);
	uint8_t buf[16 + 100];
	hdr(buf, VIRTIO_BLK_T_OUT, 1);
	uint8_t *r = seg(&t, buf, sizeof(buf), false);
	uint8_t *r2 = seg(&t, NULL, 412, false);
	seg(&t, NULL, 1, true);
	seg(&t, NULL, 0, true); /* an empty trailing writable segment */
	CHECK_EQ(parse(&t), BLK_PARSE_OK);
	CHECK_EQ(t.r.iovcnt, 2);
	CHECK(t.r.iov[0].iov_base == r + 16);
	CHECK_EQ(t.r.iov[0].iov_len, 100);
	CHECK(t.r.iov[1].iov_base == r2);
	CHECK_EQ(t.r.data_len, 512);
	CHECK(t.r.status == t.segs[2].host);
}

static void test_status(void)
{
	struct tc t;
	tc_init(&t);
	uint8_t h[16];
	hdr(h, VIRTIO_BLK_T_IN, 0);
	seg(&t, h, 16, false);
	seg(&t, NULL, 512, false);
	seg(&t, NULL, 1, false); /* status readable: nothing writable */
	CHECK_EQ(parse(&t), BLK_ERR_NO_STATUS);
	CHECK(t.r.status == NULL);
	CHECK_EQ(blk_parse_status(BLK_ERR_NO_STATUS), VIRTIO_BLK_S_IOERR);

	tc_init(&t);
	seg(&t, h, 16, false);
	seg(&t, NULL, 0, true); /* a zero-length "status" */
	CHECK_EQ(parse(&t), BLK_ERR_NO_STATUS);
}

static void test_header_short(void)
{
	struct tc t;
	tc_init(&t);
	uint8_t h[16];
	hdr(h, VIRTIO_BLK_T_IN, 0);
	seg(&t, h, 8, false);       /* legacy-sized header */
	uint8_t *w = seg(&t, NULL, 513, true);
	CHECK_EQ(parse(&t), BLK_ERR_HDR_SHORT);
	CHECK(t.r.status == w + 512);
	CHECK_EQ(blk_parse_status(BLK_ERR_HDR_SHORT), VIRTIO_BLK_S_IOERR);

	/* header in a writable buffer */
	tc_init(&t);
	seg(&t, h, 16, true);
	seg(&t, NULL, 1, true);
	CHECK_EQ(parse(&t), BLK_ERR_HDR_SHORT);
}

static void test_direction(void)
{
	struct tc t;
	uint8_t h[16];
	/* IN with readable data */
	tc_init(&t);
	hdr(h, VIRTIO_BLK_T_IN, 0);
	seg(&t, h, 16, false);
	seg(&t, NULL, 512, false);
	seg(&t, NULL, 1, true);
	CHECK_EQ(parse(&t), BLK_ERR_DIRECTION);
	/* OUT with writable data */
	tc_init(&t);
	hdr(h, VIRTIO_BLK_T_OUT, 0);
	seg(&t, h, 16, false);
	seg(&t, NULL, 513, true);
	CHECK_EQ(parse(&t), BLK_ERR_DIRECTION);
	CHECK_EQ(t.r.type, VIRTIO_BLK_T_OUT);
	/* GET_ID with readable data */
	tc_init(&t);
	hdr(h, VIRTIO_BLK_T_GET_ID, 0);
	seg(&t, h, 16, false);
	seg(&t, NULL, 20, false);
	seg(&t, NULL, 21, true);
	CHECK_EQ(parse(&t), BLK_ERR_DIRECTION);
	/* DISCARD with writable data */
	tc_init(&t);
	hdr(h, VIRTIO_BLK_T_DISCARD, 0);
	seg(&t, h, 16, false);
	seg(&t, NULL, 17, true);
	CHECK_EQ(parse(&t), BLK_ERR_DIRECTION);
	CHECK_EQ(blk_parse_status(BLK_ERR_DIRECTION), VIRTIO_BLK_S_IOERR);
}

static void test_ranges(void)
{
	struct tc t;
	uint8_t h[16];
	struct { uint32_t type; uint64_t sector; uint32_t len; enum blk_parse_error want; } cases[] = {
		{ VIRTIO_BLK_T_IN, CAP_SECTORS - 1, 512, BLK_PARSE_OK },
		{ VIRTIO_BLK_T_IN, CAP_SECTORS - 1, 1024, BLK_ERR_RANGE },
		{ VIRTIO_BLK_T_IN, CAP_SECTORS, 512, BLK_ERR_RANGE },
		{ VIRTIO_BLK_T_IN, CAP_SECTORS, 0, BLK_PARSE_OK },    /* empty, at the end */
		{ VIRTIO_BLK_T_IN, CAP_SECTORS + 1, 0, BLK_ERR_RANGE },
		{ VIRTIO_BLK_T_OUT, UINT64_MAX, 512, BLK_ERR_RANGE }, /* *512 overflows */
		{ VIRTIO_BLK_T_OUT, UINT64_MAX / 512, 512, BLK_ERR_RANGE },
		{ VIRTIO_BLK_T_OUT, 1ull << 55, 512, BLK_ERR_RANGE },
		{ VIRTIO_BLK_T_OUT, 0, 511, BLK_ERR_LENGTH },
		{ VIRTIO_BLK_T_IN, 0, 513, BLK_ERR_LENGTH },
		{ VIRTIO_BLK_T_IN, 0, 100, BLK_ERR_LENGTH },
	};
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		tc_init(&t);
		hdr(h, cases[i].type, cases[i].sector);
		seg(&t, h, 16, false);
		if (cases[i].len)
			seg(&t, NULL, cases[i].len, cases[i].type == VIRTIO_BLK_T_IN);
		seg(&t, NULL, 1, true);
		enum blk_parse_error e = parse(&t);
		if (e != cases[i].want)
			fprintf(stderr, "  case %u\n", i);
		CHECK_EQ(e, cases[i].want);
	}
	CHECK_EQ(blk_parse_status(BLK_ERR_RANGE), VIRTIO_BLK_S_IOERR);
	CHECK_EQ(blk_parse_status(BLK_ERR_LENGTH), VIRTIO_BLK_S_IOERR);
}

static void test_too_many_segs(void)
{
	struct tc t;
	tc_init(&t);
	uint8_t h[16];
	hdr(h, VIRTIO_BLK_T_IN, 0);
	seg(&t, h, 16, false);
	for (int i = 0; i < 9; i++) /* the caller's iov array holds 8 */
		seg(&t, NULL, 512, true);
	seg(&t, NULL, 1, true);
	CHECK_EQ(parse(&t), BLK_ERR_TOO_MANY_SEGS);
	CHECK_EQ(blk_parse_status(BLK_ERR_TOO_MANY_SEGS), VIRTIO_BLK_S_IOERR);
}

static void test_flush(void)
{
	struct tc t;
	tc_init(&t);
	uint8_t h[16];
	hdr(h, VIRTIO_BLK_T_FLUSH, 0);
	seg(&t, h, 16, false);
	uint8_t *st = seg(&t, NULL, 1, true);
	CHECK_EQ(parse(&t), BLK_PARSE_OK);
	CHECK_EQ(t.r.type, VIRTIO_BLK_T_FLUSH);
	CHECK(t.r.status == st);
	CHECK_EQ(t.r.data_len, 0);
}

static void test_get_id(void)
{
	struct tc t;
	uint8_t h[16];
	tc_init(&t);
	hdr(h, VIRTIO_BLK_T_GET_ID, 0);
	seg(&t, h, 16, false);
	uint8_t *w = seg(&t, NULL, 10, true);
	seg(&t, NULL, 11, true); /* 10 + 10 data bytes, then the status */
	CHECK_EQ(parse(&t), BLK_PARSE_OK);
	CHECK_EQ(t.r.data_len, 20);
	CHECK_EQ(t.r.iovcnt, 2);
	CHECK(t.r.iov[0].iov_base == w);

	tc_init(&t);
	seg(&t, h, 16, false);
	seg(&t, NULL, 20, true); /* 19 data bytes + status */
	CHECK_EQ(parse(&t), BLK_ERR_GET_ID_SHORT);
	CHECK_EQ(blk_parse_status(BLK_ERR_GET_ID_SHORT), VIRTIO_BLK_S_IOERR);

	tc_init(&t);
	seg(&t, h, 16, false);
	seg(&t, NULL, 512, true); /* longer is fine: 20 bytes are written */
	CHECK_EQ(parse(&t), BLK_PARSE_OK);
	CHECK_EQ(t.r.data_len, 20);
	CHECK_EQ(t.r.iov[0].iov_len, 20);
}

static void test_discard_write_zeroes(void)
{
	struct tc t;
	uint8_t h[16], r[4 * 16];

	/* two ranges, the second split across segments */
	tc_init(&t);
	hdr(h, VIRTIO_BLK_T_DISCARD, 0);
	dwz(r, 8, 8, 0);
	dwz(r + 16, 100, 1024, 0);
	seg(&t, h, 16, false);
	seg(&t, r, 20, false);
	seg(&t, r + 20, 12, false);
	seg(&t, NULL, 1, true);
	CHECK_EQ(parse(&t), BLK_PARSE_OK);
	CHECK_EQ(t.r.nr_ranges, 2);
	CHECK_EQ(t.r.ranges[0].sector, 8);
	CHECK_EQ(t.r.ranges[1].sector, 100);
	CHECK_EQ(t.r.ranges[1].num_sectors, 1024);

	/* header and range in one segment; write zeroes with unmap */
	tc_init(&t);
	uint8_t both[32];
	hdr(both, VIRTIO_BLK_T_WRITE_ZEROES, 0);
	dwz(both + 16, CAP_SECTORS - 512, 512, VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP);
	seg(&t, both, 32, false);
	seg(&t, NULL, 1, true);
	CHECK_EQ(parse(&t), BLK_PARSE_OK);
	CHECK_EQ(t.r.type, VIRTIO_BLK_T_WRITE_ZEROES);
	CHECK_EQ(t.r.ranges[0].flags, VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP);

	struct { uint32_t type; uint64_t sector; uint32_t n; uint32_t flags; uint32_t len;
		 enum blk_parse_error want; } cases[] = {
		{ VIRTIO_BLK_T_DISCARD, 0, 8, VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP, 16, BLK_ERR_DWZ_FLAGS },
		{ VIRTIO_BLK_T_DISCARD, 0, 8, 2, 16, BLK_ERR_DWZ_FLAGS },
		{ VIRTIO_BLK_T_WRITE_ZEROES, 0, 8, 0x80000001u, 16, BLK_ERR_DWZ_FLAGS },
		{ VIRTIO_BLK_T_DISCARD, 0, 0, 0, 16, BLK_ERR_DWZ_RANGE },
		{ VIRTIO_BLK_T_DISCARD, 0, 1025, 0, 16, BLK_ERR_DWZ_RANGE },    /* > max */
		{ VIRTIO_BLK_T_WRITE_ZEROES, 0, 513, 0, 16, BLK_ERR_DWZ_RANGE }, /* > max */
		{ VIRTIO_BLK_T_DISCARD, CAP_SECTORS - 7, 8, 0, 16, BLK_ERR_DWZ_RANGE },
		{ VIRTIO_BLK_T_DISCARD, UINT64_MAX - 3, 8, 0, 16, BLK_ERR_DWZ_RANGE },
		{ VIRTIO_BLK_T_DISCARD, 0, 8, 0, 15, BLK_ERR_DWZ_LENGTH },
		{ VIRTIO_BLK_T_DISCARD, 0, 8, 0, 0, BLK_ERR_DWZ_LENGTH },
		{ VIRTIO_BLK_T_DISCARD, 0, 8, 0, 24, BLK_ERR_DWZ_LENGTH },
		{ VIRTIO_BLK_T_WRITE_ZEROES, 0, 8, 0, 5 * 16, BLK_ERR_DWZ_SEGS }, /* > 4 */
		{ VIRTIO_BLK_T_DISCARD, 0, 8, 0, 4 * 16, BLK_PARSE_OK },
	};
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t payload[5 * 16];
		for (unsigned k = 0; k < 5; k++)
			dwz(payload + 16 * k, cases[i].sector, cases[i].n, cases[i].flags);
		tc_init(&t);
		hdr(h, cases[i].type, 0);
		seg(&t, h, 16, false);
		if (cases[i].len)
			seg(&t, payload, cases[i].len, false);
		seg(&t, NULL, 1, true);
		enum blk_parse_error e = parse(&t);
		if (e != cases[i].want)
			fprintf(stderr, "  case %u\n", i);
		CHECK_EQ(e, cases[i].want);
	}
	/* 5.2.6.2: flags errors are UNSUPP, range errors IOERR */
	CHECK_EQ(blk_parse_status(BLK_ERR_DWZ_FLAGS), VIRTIO_BLK_S_UNSUPP);
	CHECK_EQ(blk_parse_status(BLK_ERR_DWZ_RANGE), VIRTIO_BLK_S_IOERR);
	CHECK_EQ(blk_parse_status(BLK_ERR_DWZ_SEGS), VIRTIO_BLK_S_IOERR);
	CHECK_EQ(blk_parse_status(BLK_ERR_DWZ_LENGTH), VIRTIO_BLK_S_IOERR);

	/* a disk that cannot discard */
	struct blk_limits nodiscard = lim;
	nodiscard.discard = false;
	tc_init(&t);
	hdr(h, VIRTIO_BLK_T_DISCARD, 0);
	dwz(r, 0, 8, 0);
	seg(&t, h, 16, false);
	seg(&t, r, 16, false);
	seg(&t, NULL, 1, true);
	CHECK_EQ(blk_parse(&t.c, CAP_SECTORS, &nodiscard, &t.r), BLK_ERR_UNSUPPORTED);
}

static void test_unknown_type(void)
{
	uint32_t types[] = { 2, 3, 5, 10, 14, 15, 16, 0x80000001u, UINT32_MAX };
	for (unsigned i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		struct tc t;
		tc_init(&t);
		uint8_t h[16];
		hdr(h, types[i], 0);
		seg(&t, h, 16, false);
		uint8_t *st = seg(&t, NULL, 1, true);
		CHECK_EQ(parse(&t), BLK_ERR_UNSUPPORTED);
		CHECK_EQ(t.r.type, types[i]);
		CHECK(t.r.status == st);
	}
	CHECK_EQ(blk_parse_status(BLK_ERR_UNSUPPORTED), VIRTIO_BLK_S_UNSUPP);
	CHECK(strlen(blk_parse_error_name(BLK_ERR_UNSUPPORTED)) > 0);
}

int main(void)
{
	RUN(test_read_classic);
	RUN(test_write_multi_segment);
	RUN(test_framing_free);
	RUN(test_status);
	RUN(test_header_short);
	RUN(test_direction);
	RUN(test_ranges);
	RUN(test_too_many_segs);
	RUN(test_flush);
	RUN(test_get_id);
	RUN(test_discard_write_zeroes);
	RUN(test_unknown_type);
	return unit_done();
}
