/* blk: drives the first virtio-blk device (VIRTIO 1.2 section 5.2) through
 * the guest virtio library and checks what it reads back.
 *
 * Command line:
 *   transport=pci|mmio      which transport to look on (default: PCI, then MMIO)
 *   blk.expect_ro=1         the disk is read-only: RO must be offered and a
 *                           write must fail with VIRTIO_BLK_S_IOERR
 *   blk.mode=crashtest      write/flush loop for crash-consistency tests (below)
 *   blk.sectors=N           crashtest: sectors per round (default 64)
 *   blk.start=S             crashtest: first sector (default 0)
 *
 * Normal mode writes address-and-seed patterns with several descriptor
 * layouts (header, data and status in separate descriptors; data split per
 * sector; the header itself split in two; an indirect table), flushes, reads
 * back and compares, then GET_ID, DISCARD and WRITE_ZEROES when offered, a
 * write past the end (must fail) and, with num_queues > 1, queue 1.
 * Output, one line per check: `blk: <check> ok`, `blk: serial=...`,
 * `irq: ...`, then `blk: all ok` (poweroff) or `blk: FAIL ...` lines and
 * debug_exit(1).
 *
 * crashtest: rounds seq = 1, 2, ... each write sectors [S, S+N), 8 per
 * request, then FLUSH, then print `blk: flushed seq=K`; forever. Every
 * sector is 64 little-endian qwords: [0] = 0x48534152434d564b ("KVMCRASH"),
 * [1] = sector number, [2] = seq, [3..63] = sector * 0x9E3779B97F4A7C15 ^ seq.
 * After `blk: flushed seq=K` every sector in the range holds seq >= K. */
#include "guest.h"
#include "irq.h"
#include "mem.h"
#include "virtio.h"

#define VIRTIO_ID_BLOCK 2

/* Feature bits (5.2.3). */
#define BLK_F_SIZE_MAX 1
#define BLK_F_SEG_MAX 2
#define BLK_F_GEOMETRY 4
#define BLK_F_RO 5
#define BLK_F_BLK_SIZE 6
#define BLK_F_FLUSH 9
#define BLK_F_TOPOLOGY 10
#define BLK_F_CONFIG_WCE 11
#define BLK_F_MQ 12
#define BLK_F_DISCARD 13
#define BLK_F_WRITE_ZEROES 14

/* Configuration layout (5.2.4). */
#define BLK_CFG_CAPACITY 0
#define BLK_CFG_SEG_MAX 12
#define BLK_CFG_BLK_SIZE 20
#define BLK_CFG_NUM_QUEUES 34
#define BLK_CFG_MAX_DISCARD_SECTORS 36
#define BLK_CFG_DISCARD_ALIGN 44
#define BLK_CFG_MAX_WZ_SECTORS 48

/* Requests (5.2.6). */
#define BLK_T_IN 0
#define BLK_T_OUT 1
#define BLK_T_FLUSH 4
#define BLK_T_GET_ID 8
#define BLK_T_DISCARD 11
#define BLK_T_WRITE_ZEROES 13
#define BLK_S_OK 0
#define BLK_S_IOERR 1
#define BLK_S_UNSUPP 2
#define BLK_ID_BYTES 20

#define SECTOR 512u
#define BUF_SECTORS 64u /* 32 KiB data buffers */
#define TIMEOUT_MS 5000
#define IRQ_VECTOR 0x50

struct blk_hdr {
	uint32_t type;
	uint32_t reserved;
	uint64_t sector;
};

struct blk_seg { /* discard / write zeroes */
	uint64_t sector;
	uint32_t num_sectors;
	uint32_t flags;
};

/* Descriptor layouts for blk_req. */
#define L_SPLIT_DATA 1u /* one data descriptor per sector */
#define L_SPLIT_HDR 2u  /* header in two descriptors (8 + 8 bytes) */
#define L_INDIRECT 4u   /* the whole chain in an indirect table */

static struct virtio_dev dev;
static struct virtq vqs[2];
static struct blk_hdr *hdr;
static uint8_t *status;
static uint8_t *wbuf, *rbuf;
static uint64_t capacity, seed;
static uint32_t seg_max;
static unsigned failures;

static void fail(const char *what)
{
	printf("blk: FAIL %s\n", what);
	failures++;
}

/* One request; returns the status byte, or -1 if it never completed. */
static int blk_req(struct virtq *vq, uint32_t type, uint64_t sector, void *data, uint32_t len,
		   unsigned layout)
{
	struct vq_buf b[BUF_SECTORS + 4];
	unsigned n = 0;
	bool dev_writes = type == BLK_T_IN || type == BLK_T_GET_ID;

	hdr->type = type;
	hdr->reserved = 0;
	hdr->sector = sector;
	*status = 0xEE;
	if (layout & L_SPLIT_HDR) {
		b[n++] = vq_rd(hdr, 8);
		b[n++] = vq_rd((uint8_t *)hdr + 8, 8);
	} else {
		b[n++] = vq_rd(hdr, sizeof(*hdr));
	}
	if (len && (layout & L_SPLIT_DATA)) {
		for (uint32_t off = 0; off < len; off += SECTOR) {
			uint32_t l = len - off < SECTOR ? len - off : SECTOR;

			b[n] = dev_writes ? vq_wr((uint8_t *)data + off, l) : vq_rd((uint8_t *)data + off, l);
			n++;
		}
	} else if (len) {
		b[n++] = dev_writes ? vq_wr(data, len) : vq_rd(data, len);
	}
	b[n++] = vq_wr(status, 1);
	if (!virtq_run(vq, b, n, (layout & L_INDIRECT) != 0, NULL, TIMEOUT_MS))
		return -1;
	return *status;
}

static uint64_t pattern(uint64_t sector, unsigned word)
{
	return ((sector << 32) | word) ^ seed;
}

static void fill(uint8_t *buf, uint64_t sector, unsigned count)
{
	for (unsigned s = 0; s < count; s++) {
		uint64_t *w = (uint64_t *)(buf + s * SECTOR);

		for (unsigned i = 0; i < SECTOR / 8; i++)
			w[i] = pattern(sector + s, i);
	}
}

/* Index of the first wrong sector, or -1. */
static int verify(const uint8_t *buf, uint64_t sector, unsigned count)
{
	for (unsigned s = 0; s < count; s++) {
		const uint64_t *w = (const uint64_t *)(buf + s * SECTOR);

		for (unsigned i = 0; i < SECTOR / 8; i++)
			if (w[i] != pattern(sector + s, i)) {
				printf("blk: sector %lu word %u: got 0x%lx want 0x%lx\n", sector + s, i,
				       w[i], pattern(sector + s, i));
				return (int)s;
			}
	}
	return -1;
}

static void check_status(const char *what, int st, int want)
{
	char msg[96];

	if (st == want) {
		printf("blk: %s ok\n", what);
		return;
	}
	snprintf(msg, sizeof(msg), "%s: status %d, want %d", what, st, want);
	fail(msg);
}

/* Writes count sectors at `sector` with a layout, reads them back in one
 * descriptor and compares. */
static void write_read(struct virtq *vq, const char *what, uint64_t sector, unsigned count,
		       unsigned layout)
{
	char msg[96];
	int st;

	fill(wbuf, sector, count);
	st = blk_req(vq, BLK_T_OUT, sector, wbuf, count * SECTOR, layout);
	snprintf(msg, sizeof(msg), "write %s sector=%lu count=%u", what, sector, count);
	check_status(msg, st, BLK_S_OK);
	if (st != BLK_S_OK)
		return;
	memset(rbuf, 0xA5, count * SECTOR);
	st = blk_req(vq, BLK_T_IN, sector, rbuf, count * SECTOR, 0);
	snprintf(msg, sizeof(msg), "read back %s sector=%lu count=%u", what, sector, count);
	if (st != BLK_S_OK) {
		check_status(msg, st, BLK_S_OK);
		return;
	}
	if (verify(rbuf, sector, count) >= 0) {
		snprintf(msg, sizeof(msg), "verify %s sector=%lu: data differs", what, sector);
		fail(msg);
		return;
	}
	printf("blk: verify %s sector=%lu count=%u ok\n", what, sector, count);
}

static void get_id(struct virtq *vq)
{
	char id[BLK_ID_BYTES + 1];
	uint8_t *buf = rbuf;
	int st;

	memset(buf, 0, BLK_ID_BYTES);
	st = blk_req(vq, BLK_T_GET_ID, 0, buf, BLK_ID_BYTES, 0);
	if (st == BLK_S_UNSUPP) {
		printf("blk: serial unsupported\n");
		return;
	}
	if (st != BLK_S_OK) {
		check_status("get_id", st, BLK_S_OK);
		return;
	}
	unsigned i;

	for (i = 0; i < BLK_ID_BYTES && buf[i] >= 0x20 && buf[i] < 0x7F; i++)
		id[i] = (char)buf[i];
	id[i] = '\0';
	printf("blk: serial=%s\n", id);
}

static void discard_and_zeroes(struct virtq *vq)
{
	struct blk_seg *seg = (struct blk_seg *)wbuf;
	int st;

	if (virtio_has(&dev, BLK_F_DISCARD)) {
		uint32_t align = virtio_cfg_read32(&dev, BLK_CFG_DISCARD_ALIGN);
		uint64_t start = align > 1 && align <= 64 ? align : 8;

		printf("blk: discard max_sectors=%u align=%u\n",
		       virtio_cfg_read32(&dev, BLK_CFG_MAX_DISCARD_SECTORS), align);
		*seg = (struct blk_seg){ start, (uint32_t)start, 0 };
		st = blk_req(vq, BLK_T_DISCARD, 0, seg, sizeof(*seg), 0);
		check_status("discard", st, BLK_S_OK);
	} else {
		printf("blk: discard not offered\n");
	}
	if (virtio_has(&dev, BLK_F_WRITE_ZEROES)) {
		const uint64_t s = 40;
		const unsigned count = 8;

		printf("blk: write_zeroes max_sectors=%u\n", virtio_cfg_read32(&dev, BLK_CFG_MAX_WZ_SECTORS));
		fill(rbuf, s, count);
		blk_req(vq, BLK_T_OUT, s, rbuf, count * SECTOR, 0);
		*seg = (struct blk_seg){ s, count, 0 };
		st = blk_req(vq, BLK_T_WRITE_ZEROES, 0, seg, sizeof(*seg), 0);
		check_status("write_zeroes", st, BLK_S_OK);
		memset(rbuf, 0xA5, count * SECTOR);
		st = blk_req(vq, BLK_T_IN, s, rbuf, count * SECTOR, 0);
		bool zero = st == BLK_S_OK;

		for (unsigned i = 0; zero && i < count * SECTOR; i++)
			zero = rbuf[i] == 0;
		if (zero)
			printf("blk: write_zeroes read back zeroes ok\n");
		else
			fail("write_zeroes: sectors do not read back as zeroes");
	} else {
		printf("blk: write_zeroes not offered\n");
	}
}

static void crash_fill(uint8_t *buf, uint64_t sector, uint64_t seq)
{
	uint64_t *w = (uint64_t *)buf;

	w[0] = 0x48534152434d564bull; /* "KVMCRASH" */
	w[1] = sector;
	w[2] = seq;
	for (unsigned i = 3; i < SECTOR / 8; i++)
		w[i] = sector * 0x9E3779B97F4A7C15ull ^ seq;
}

static int crashtest(struct virtq *vq)
{
	uint64_t n = cmdline_get_u64("blk.sectors", 64), start = cmdline_get_u64("blk.start", 0);

	if (!n || start + n > capacity) {
		printf("blk: FAIL crashtest range %lu+%lu beyond capacity %lu\n", start, n, capacity);
		return EXIT_FAIL;
	}
	printf("blk: crashtest sectors=%lu start=%lu\n", n, start);
	for (uint64_t seq = 1;; seq++) {
		for (uint64_t s = start; s < start + n; s += 8) {
			unsigned count = start + n - s < 8 ? (unsigned)(start + n - s) : 8;

			for (unsigned i = 0; i < count; i++)
				crash_fill(wbuf + i * SECTOR, s + i, seq);
			int st = blk_req(vq, BLK_T_OUT, s, wbuf, count * SECTOR, 0);

			if (st != BLK_S_OK) {
				printf("blk: FAIL crashtest write sector=%lu seq=%lu status %d\n", s, seq, st);
				return EXIT_FAIL;
			}
		}
		int st = blk_req(vq, BLK_T_FLUSH, 0, NULL, 0, 0);

		if (st != BLK_S_OK) {
			printf("blk: FAIL crashtest flush seq=%lu status %d\n", seq, st);
			return EXIT_FAIL;
		}
		printf("blk: flushed seq=%lu\n", seq);
	}
}

int guest_main(void)
{
	char mode[16] = "";
	bool expect_ro = cmdline_get_u64("blk.expect_ro", 0) != 0;
	uint64_t want = VIRTIO_BIT(BLK_F_SIZE_MAX) | VIRTIO_BIT(BLK_F_SEG_MAX) |
			VIRTIO_BIT(BLK_F_GEOMETRY) | VIRTIO_BIT(BLK_F_RO) | VIRTIO_BIT(BLK_F_BLK_SIZE) |
			VIRTIO_BIT(BLK_F_FLUSH) | VIRTIO_BIT(BLK_F_TOPOLOGY) | VIRTIO_BIT(BLK_F_MQ) |
			VIRTIO_BIT(BLK_F_DISCARD) | VIRTIO_BIT(BLK_F_WRITE_ZEROES) |
			VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC) | VIRTIO_BIT(VIRTIO_F_EVENT_IDX);
	unsigned nq = 1;
	int rc;

	cmdline_get("blk.mode", mode, sizeof(mode));
	if (!mem_init()) {
		printf("blk: FAIL no memory map in start_info\n");
		return EXIT_FAIL;
	}
	if (!virtio_find(VIRTIO_ID_BLOCK, 0, &dev)) {
		printf("blk: FAIL no virtio-blk device\n");
		return EXIT_FAIL;
	}
	uint64_t offered = virtio_device_features(&dev);

	if (!virtio_negotiate(&dev, want)) {
		printf("blk: FAIL feature negotiation\n");
		return EXIT_FAIL;
	}
	capacity = virtio_cfg_read64(&dev, BLK_CFG_CAPACITY);
	seg_max = virtio_has(&dev, BLK_F_SEG_MAX) ? virtio_cfg_read32(&dev, BLK_CFG_SEG_MAX) : 0;
	if (virtio_has(&dev, BLK_F_MQ))
		nq = virtio_cfg_read16(&dev, BLK_CFG_NUM_QUEUES);
	printf("blk: capacity=%lu sectors blk_size=%u seg_max=%u num_queues=%u\n", capacity,
	       virtio_has(&dev, BLK_F_BLK_SIZE) ? virtio_cfg_read32(&dev, BLK_CFG_BLK_SIZE) : SECTOR,
	       seg_max, nq);
	printf("blk: features offered=0x%lx negotiated=0x%lx\n", offered, dev.features);

	virtio_irq_arm(&dev, 0, IRQ_VECTOR);
	if ((rc = virtq_setup(&dev, 0, &vqs[0], VIRTQ_MAX)) != 0) {
		printf("blk: FAIL queue 0 setup: %d\n", rc);
		return EXIT_FAIL;
	}
	if (nq > 1 && (rc = virtq_setup(&dev, 1, &vqs[1], VIRTQ_MAX)) != 0) {
		printf("blk: FAIL queue 1 setup: %d\n", rc);
		return EXIT_FAIL;
	}
	virtio_driver_ok(&dev);
	printf("blk: queue 0 size=%u event_idx=%d indirect=%d\n", vqs[0].size, vqs[0].event_idx,
	       vqs[0].indirect_ok);

	hdr = mem_alloc(1);
	status = (uint8_t *)hdr + 64;
	wbuf = mem_alloc(BUF_SECTORS * SECTOR / PAGE_SIZE);
	rbuf = mem_alloc(BUF_SECTORS * SECTOR / PAGE_SIZE);
	seed = rdtsc() * 0x9E3779B97F4A7C15ull;

	if (!strcmp(mode, "crashtest"))
		return crashtest(&vqs[0]);
	if (capacity < 128) {
		printf("blk: FAIL capacity %lu: need at least 128 sectors\n", capacity);
		return EXIT_FAIL;
	}

	if (expect_ro) {
		if (virtio_has(&dev, BLK_F_RO))
			printf("blk: read-only offered ok\n");
		else
			fail("expect_ro: VIRTIO_BLK_F_RO not offered");
		fill(wbuf, 0, 1);
		vqs[0].hold_used_event = true;
		check_status("write to read-only disk -> ioerr", blk_req(&vqs[0], BLK_T_OUT, 0, wbuf, SECTOR, 0),
			     BLK_S_IOERR);
		virtio_irq_report(&dev, 0);
		vqs[0].hold_used_event = false;
		check_status("read from read-only disk", blk_req(&vqs[0], BLK_T_IN, 0, rbuf, SECTOR, 0),
			     BLK_S_OK);
		get_id(&vqs[0]);
	} else {
		unsigned multi = seg_max && seg_max < 16 ? seg_max : 16;

		vqs[0].hold_used_event = true;
		write_read(&vqs[0], "single", 0, 1, 0);
		virtio_irq_report(&dev, 0);
		vqs[0].hold_used_event = false;
		write_read(&vqs[0], "multi-descriptor", 8, multi, L_SPLIT_DATA);
		write_read(&vqs[0], "split-header", 24, 4, L_SPLIT_HDR | L_SPLIT_DATA);
		if (vqs[0].indirect_ok)
			write_read(&vqs[0], "indirect", 32, 8, L_INDIRECT | L_SPLIT_DATA);
		else
			printf("blk: indirect descriptors not offered\n");
		write_read(&vqs[0], "large", 64, BUF_SECTORS, 0);
		write_read(&vqs[0], "last", capacity - 1, 1, 0);
		write_read(&vqs[0], "middle", capacity / 2, 3, 0);
		if (virtio_has(&dev, BLK_F_FLUSH))
			check_status("flush", blk_req(&vqs[0], BLK_T_FLUSH, 0, NULL, 0, 0), BLK_S_OK);
		else
			printf("blk: flush not offered\n");
		/* everything written earlier must still be there */
		if (blk_req(&vqs[0], BLK_T_IN, 8, rbuf, multi * SECTOR, L_SPLIT_DATA) == BLK_S_OK &&
		    verify(rbuf, 8, multi) < 0)
			printf("blk: reread after flush ok\n");
		else
			fail("reread after flush");
		fill(wbuf, capacity, 1);
		check_status("write past end -> ioerr",
			     blk_req(&vqs[0], BLK_T_OUT, capacity, wbuf, SECTOR, 0), BLK_S_IOERR);
		get_id(&vqs[0]);
		discard_and_zeroes(&vqs[0]);
		if (nq > 1)
			write_read(&vqs[1], "queue1", 96, 4, L_SPLIT_DATA);
		else
			printf("blk: one queue only\n");
	}
	printf("blk: isr=0x%x notifies=%u suppressed=%u\n", virtio_isr(&dev), vqs[0].notifies,
	       vqs[0].suppressed);
	if (failures) {
		printf("blk: %u check(s) failed\n", failures);
		return EXIT_FAIL;
	}
	printf("blk: all ok\n");
	return 0;
}
