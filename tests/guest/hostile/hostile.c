/* hostile: a malicious driver for the first virtio-blk device (VIRTIO 1.2,
 * 2.7 split virtqueues, 5.2 block device), checking the rule "everything a
 * guest writes is hostile": a malformed virtqueue puts the device into
 * DEVICE_NEEDS_RESET (or fails the request with a status the spec allows),
 * never crashes or hangs the VMM, and a reset brings the device back.
 *
 * Command line:
 *   transport=pci|mmio      which transport to look on (default: PCI, then MMIO)
 *   hostile.registers=1     the register storm (below) instead of the attacks
 *   hostile.writes=N        storm: random writes after the sweeps (default 16384)
 *   hostile.seed=S          storm: xorshift seed (default 0x6b766d72756e)
 *   hostile.only=NAME       attacks: run only the one named NAME
 *   hostile.flood=balloon   instead: keep the first virtio-balloon's inflate
 *                           queue full, forever, of one chain of
 *                           hostile.flood_descs (default 68) descriptors that
 *                           all point at the same hostile.flood_bytes (default
 *                           60 MiB) at 16 MiB (give the VM mem=128M); prints
 *                           `hostile: balloon flood running` once it is on
 *   hostile.flood=serial    instead: print lines on COM1, forever
 *                           (`hostile: serial flood line N: ...`)
 *
 * Attacks: each starts from a fresh reset (ACKNOWLEDGE, DRIVER, features
 * INDIRECT_DESC [+ DISCARD, WRITE_ZEROES], FEATURES_OK, queue 0, DRIVER_OK
 * unless the attack is in the set-up itself), writes raw descriptors and
 * ring entries, kicks, then waits up to 2 s for the outcome: the status
 * register's NEEDS_RESET bit (64), or a used element whose status byte says
 * IOERR/UNSUPP (or, when the status byte is not device-writable, that it
 * was left alone). Then it resets the device and checks that a write and a
 * read-back of one sector work. One line per attack:
 *   `hostile: <attack>: needs_reset|ioerr|unsupp|no_status|quiesced ok`
 * (`quiesced` for a reset with reads in flight: nothing written after it)
 * or `hostile: <attack>: FAIL <why>`; finally `hostile: all ok` (poweroff)
 * or `hostile: N failures` and debug_exit(1).
 *
 * Register storm: with the device reset and MSI-X off (so no garbage MSI
 * message can reach a CPU), pseudo-random values of every width at every
 * offset of the virtio-pci common configuration, ISR, device configuration,
 * notification area, MSI-X table and PBA (or of the virtio-mmio register
 * window), then hostile.writes random (region, offset, width, value)
 * writes, each fourth followed by a read; then every slot's PCI
 * configuration space through 0xCF8/0xCFC (all offsets, random widths and
 * values, some with a garbage address register). Then the PCI header of the
 * device is restored (BAR0, command, MSI-X off), the device is found again
 * and must pass a write/read round trip: `hostile: registers survived`. */
#include "guest.h"
#include "mem.h"
#include "pci.h"
#include "virtio.h"

#define VIRTIO_ID_BLOCK 2

#define BLK_F_DISCARD 13
#define BLK_F_WRITE_ZEROES 14
#define BLK_T_IN 0
#define BLK_T_OUT 1
#define BLK_T_DISCARD 11
#define BLK_T_WRITE_ZEROES 13
#define BLK_S_OK 0
#define BLK_S_IOERR 1
#define BLK_S_UNSUPP 2

#define SECTOR 512u
#define TIMEOUT_MS 2000
#define POISON 0xEE
#define MMIO_HOLE_ADDR 0xD0000000ull /* inside the PCI window, no BAR there */

/* Outcomes, as bits so an attack can allow several. */
#define O_NEEDS_RESET 1u
#define O_IOERR 2u
#define O_UNSUPP 4u
#define O_NO_STATUS 8u
#define O_OK 16u
#define O_TIMEOUT 32u
#define O_SETUP 64u /* the attack could not be set up */
#define O_QUIESCED 128u /* nothing written after a reset */

struct blk_hdr {
	uint32_t type;
	uint32_t reserved;
	uint64_t sector;
};

struct blk_seg {
	uint64_t sector;
	uint32_t num_sectors;
	uint32_t flags;
};

static struct virtio_dev dev;
static struct virtq vq;
static struct blk_hdr *hdr;
static volatile uint8_t *status;
static uint8_t *data, *rbuf;
static struct vring_desc *itab, *itab2; /* raw indirect tables */
static uint8_t *scratch;                /* rings for raw queue set-ups */
static uint64_t ram_top, seed = 0x5eed;
static unsigned failures;

/* ------------------------------------------------------------ helpers */

static void fail(const char *what, const char *why)
{
	printf("hostile: %s: FAIL %s\n", what, why);
	failures++;
}

/* Reset, ACKNOWLEDGE, DRIVER, FEATURES_OK. */
static bool dev_begin(void)
{
	virtio_reset(&dev);
	if (virtio_get_status(&dev) != 0)
		return false;
	virtio_set_status(&dev, VIRTIO_S_ACKNOWLEDGE);
	virtio_set_status(&dev, VIRTIO_S_DRIVER);
	return virtio_negotiate(&dev, VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC) |
					      VIRTIO_BIT(BLK_F_DISCARD) |
					      VIRTIO_BIT(BLK_F_WRITE_ZEROES));
}

/* A live device with queue 0 set up by the library. */
static bool dev_up(void)
{
	if (!dev_begin() || virtq_setup(&dev, 0, &vq, VIRTQ_MAX) != 0)
		return false;
	virtio_driver_ok(&dev);
	return (virtio_get_status(&dev) & (VIRTIO_S_DRIVER_OK | VIRTIO_S_NEEDS_RESET)) ==
	       VIRTIO_S_DRIVER_OK;
}

static void req(uint32_t type, uint64_t sector)
{
	hdr->type = type;
	hdr->reserved = 0;
	hdr->sector = sector;
	*status = POISON;
}

static void d_set(unsigned i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	vq.desc[i].addr = addr;
	vq.desc[i].len = len;
	vq.desc[i].flags = flags;
	vq.desc[i].next = next;
}

static void t_set(struct vring_desc *t, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
		  uint16_t next)
{
	t[i] = (struct vring_desc){ addr, len, flags, next };
}

static uint64_t pa(const volatile void *p)
{
	return (uint64_t)(uintptr_t)p;
}

/* Publishes @head in the avail ring (idx advances by @step) and kicks. */
static void publish_step(uint16_t head, uint16_t step)
{
	vq.avail[2 + vq.avail_idx % vq.size] = head;
	__asm__ volatile("" ::: "memory");
	vq.avail_idx = (uint16_t)(vq.avail_idx + step);
	vq.avail[1] = vq.avail_idx;
	virtq_kick(&vq);
}

static void publish(uint16_t head)
{
	publish_step(head, 1);
}

/* The standard three-descriptor read of one sector into `data`, with
 * the data descriptor at @daddr/@dlen. */
static void submit_read(uint64_t sector, uint64_t daddr, uint32_t dlen)
{
	req(BLK_T_IN, sector);
	d_set(0, pa(hdr), sizeof(*hdr), VRING_DESC_F_NEXT, 1);
	d_set(1, daddr, dlen, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 2);
	d_set(2, pa(status), 1, VRING_DESC_F_WRITE, 0);
	publish(0);
}

/* Waits for NEEDS_RESET or a used element (@ring: the queue is live). */
static unsigned observe(bool ring)
{
	uint64_t start = rdtsc(), limit = time_ms_to_tsc(TIMEOUT_MS);

	for (;;) {
		if (virtio_get_status(&dev) & VIRTIO_S_NEEDS_RESET)
			return O_NEEDS_RESET;
		if (ring && vq.used[1] != vq.last_used) {
			uint8_t s;

			__asm__ volatile("" ::: "memory");
			s = *status;
			vq.last_used++;
			if (s == BLK_S_IOERR)
				return O_IOERR;
			if (s == BLK_S_UNSUPP)
				return O_UNSUPP;
			if (s == POISON)
				return O_NO_STATUS;
			return O_OK;
		}
		if (rdtsc() - start > limit)
			return O_TIMEOUT;
		cpu_relax();
	}
}

static uint64_t pattern(uint64_t sector, unsigned word)
{
	return ((sector << 32) | word) ^ seed;
}

static void fill(uint8_t *buf, uint64_t sector)
{
	uint64_t *w = (uint64_t *)buf;

	for (unsigned i = 0; i < SECTOR / 8; i++)
		w[i] = pattern(sector, i);
}

static bool matches(const uint8_t *buf, uint64_t sector)
{
	const uint64_t *w = (const uint64_t *)buf;

	for (unsigned i = 0; i < SECTOR / 8; i++)
		if (w[i] != pattern(sector, i))
			return false;
	return true;
}

/* One request through the library; the status byte, or -1. */
static int blk_rw(uint32_t type, uint64_t sector, uint8_t *buf)
{
	struct vq_buf b[3];

	req(type, sector);
	b[0] = vq_rd(hdr, sizeof(*hdr));
	b[1] = type == BLK_T_IN ? vq_wr(buf, SECTOR) : vq_rd(buf, SECTOR);
	b[2] = vq_wr((void *)status, 1);
	if (!virtq_run(&vq, b, 3, false, NULL, TIMEOUT_MS))
		return -1;
	return *status;
}

/* The device recovers: reset, set-up, write and read back @sector. */
static bool recover(uint64_t sector, char *why, size_t n)
{
	int st;

	if (!dev_up()) {
		snprintf(why, n, "no clean restart after reset (status 0x%x)",
			 virtio_get_status(&dev));
		return false;
	}
	fill(data, sector);
	st = blk_rw(BLK_T_OUT, sector, data);
	if (st != BLK_S_OK) {
		snprintf(why, n, "write after reset: status %d", st);
		return false;
	}
	memset(rbuf, 0xA5, SECTOR);
	st = blk_rw(BLK_T_IN, sector, rbuf);
	if (st != BLK_S_OK || !matches(rbuf, sector)) {
		snprintf(why, n, "read back after reset: status %d%s", st,
			 st == BLK_S_OK ? ", data differs" : "");
		return false;
	}
	return true;
}

/* ------------------------------------------------------------ attacks */

static unsigned a_cyclic(void)
{
	req(BLK_T_IN, 0);
	d_set(0, pa(hdr), sizeof(*hdr), VRING_DESC_F_NEXT, 1);
	d_set(1, pa(data), SECTOR, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 2);
	d_set(2, pa(status), 1, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1); /* back to 1 */
	publish(0);
	return observe(true);
}

static unsigned a_self_loop(void)
{
	req(BLK_T_IN, 0);
	d_set(0, pa(hdr), sizeof(*hdr), VRING_DESC_F_NEXT, 0);
	publish(0);
	return observe(true);
}

static unsigned a_next_range(void)
{
	req(BLK_T_IN, 0);
	d_set(0, pa(hdr), sizeof(*hdr), VRING_DESC_F_NEXT, 1);
	d_set(1, pa(data), SECTOR, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, vq.size);
	publish(0);
	return observe(true);
}

static unsigned a_head_range(void)
{
	req(BLK_T_IN, 0); /* a valid chain at 0, never named */
	d_set(0, pa(hdr), sizeof(*hdr), VRING_DESC_F_NEXT, 1);
	d_set(1, pa(data), SECTOR, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 2);
	d_set(2, pa(status), 1, VRING_DESC_F_WRITE, 0);
	publish(0xFFFF);
	return observe(true);
}

/* An indirect table of size + 1 valid descriptors: a chain longer than
 * the queue with no loop in it. */
static unsigned a_too_long(void)
{
	unsigned n = vq.size + 1u;

	req(BLK_T_IN, 0);
	t_set(itab, 0, pa(hdr), sizeof(*hdr), VRING_DESC_F_NEXT, 1);
	for (unsigned i = 1; i + 1 < n; i++)
		t_set(itab, i, pa(data), 16, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, (uint16_t)(i + 1));
	t_set(itab, n - 1, pa(status), 1, VRING_DESC_F_WRITE, 0);
	d_set(0, pa(itab), n * 16, VRING_DESC_F_INDIRECT, 0);
	publish(0);
	return observe(true);
}

/* A valid three-entry read chain in table @t. */
static void table_read(struct vring_desc *t)
{
	req(BLK_T_IN, 0);
	t_set(t, 0, pa(hdr), sizeof(*hdr), VRING_DESC_F_NEXT, 1);
	t_set(t, 1, pa(data), SECTOR, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 2);
	t_set(t, 2, pa(status), 1, VRING_DESC_F_WRITE, 0);
}

static unsigned a_nested_indirect(void)
{
	table_read(itab2);
	t_set(itab, 0, pa(itab2), 3 * 16, VRING_DESC_F_INDIRECT, 0);
	d_set(0, pa(itab), 16, VRING_DESC_F_INDIRECT, 0);
	publish(0);
	return observe(true);
}

static unsigned indirect_len(uint32_t len, uint16_t flags, uint64_t addr)
{
	table_read(itab);
	d_set(0, addr, len, (uint16_t)(VRING_DESC_F_INDIRECT | flags), 1);
	d_set(1, pa(status), 1, VRING_DESC_F_WRITE, 0);
	publish(0);
	return observe(true);
}

static unsigned a_indirect_len0(void)
{
	return indirect_len(0, 0, pa(itab));
}

static unsigned a_indirect_len_odd(void)
{
	return indirect_len(3 * 16 - 8, 0, pa(itab));
}

static unsigned a_indirect_next(void)
{
	return indirect_len(3 * 16, VRING_DESC_F_NEXT, pa(itab));
}

static unsigned a_indirect_hole(void)
{
	return indirect_len(3 * 16, 0, MMIO_HOLE_ADDR);
}

static unsigned a_buf_hole(void)
{
	submit_read(0, MMIO_HOLE_ADDR, SECTOR);
	return observe(true);
}

static unsigned a_buf_registers(void)
{
	submit_read(0, dev.transport == VIRTIO_PCI ? dev.common : dev.base, 64);
	return observe(true);
}

static unsigned a_buf_above_ram(void)
{
	submit_read(0, ram_top, SECTOR);
	return observe(true);
}

static unsigned a_buf_straddle(void)
{
	submit_read(0, ram_top - SECTOR / 2, SECTOR);
	return observe(true);
}

static unsigned a_buf_far(void)
{
	submit_read(0, 1ull << 46, SECTOR);
	return observe(true);
}

static unsigned a_buf_wrap(void)
{
	submit_read(0, 0xFFFFFFFFFFFFFF00ull, SECTOR);
	return observe(true);
}

/* A queue set up by hand after FEATURES_OK; the device must refuse it. */
static unsigned raw_queue(uint32_t size, uint64_t desc, uint64_t avail, uint64_t used)
{
	if (!dev_begin())
		return O_SETUP;
	virtq_setup_raw(&dev, 0, size, desc, avail, used);
	virtio_driver_ok(&dev);
	return observe(false);
}

static unsigned a_qsize_3(void)
{
	return raw_queue(3, pa(scratch), pa(scratch + PAGE_SIZE), pa(scratch + 2 * PAGE_SIZE));
}

static unsigned a_qsize_0(void)
{
	return raw_queue(0, pa(scratch), pa(scratch + PAGE_SIZE), pa(scratch + 2 * PAGE_SIZE));
}

static unsigned a_qsize_big(void)
{
	return raw_queue(0x8000, pa(scratch), pa(scratch + PAGE_SIZE), pa(scratch + 2 * PAGE_SIZE));
}

static unsigned a_ring_hole(void)
{
	return raw_queue(16, MMIO_HOLE_ADDR, pa(scratch + PAGE_SIZE), pa(scratch + 2 * PAGE_SIZE));
}

static unsigned a_ring_above(void)
{
	/* the used ring straddles the end of RAM */
	return raw_queue(16, pa(scratch), pa(scratch + PAGE_SIZE), ram_top - 64);
}

static unsigned a_ring_wrap(void)
{
	return raw_queue(16, pa(scratch), 0xFFFFFFFFFFFFFFF0ull, pa(scratch + 2 * PAGE_SIZE));
}

static unsigned a_ring_misaligned(void)
{
	return raw_queue(16, pa(scratch) + 8, pa(scratch + PAGE_SIZE), pa(scratch + 2 * PAGE_SIZE));
}

static unsigned a_avail_jump(void)
{
	req(BLK_T_IN, 0);
	d_set(0, pa(hdr), sizeof(*hdr), VRING_DESC_F_NEXT, 1);
	d_set(1, pa(data), SECTOR, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 2);
	d_set(2, pa(status), 1, VRING_DESC_F_WRITE, 0);
	publish_step(0, (uint16_t)(vq.size + 1));
	return observe(true);
}

#define RO_SECTOR 777

/* Every descriptor device-readable, the status byte too: the device can
 * neither write a status nor (must not) execute the write. */
static unsigned a_status_ro(void)
{
	req(BLK_T_OUT, RO_SECTOR);
	fill(data, RO_SECTOR ^ 0xBAD);
	d_set(0, pa(hdr), sizeof(*hdr), VRING_DESC_F_NEXT, 1);
	d_set(1, pa(data), SECTOR, VRING_DESC_F_NEXT, 2);
	d_set(2, pa(status), 1, 0, 0);
	publish(0);
	return observe(true);
}

static unsigned a_status_ro_after_w(void)
{
	req(BLK_T_IN, 0);
	d_set(0, pa(hdr), sizeof(*hdr), VRING_DESC_F_NEXT, 1);
	d_set(1, pa(data), SECTOR, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 2);
	d_set(2, pa(status), 1, 0, 0);
	publish(0);
	return observe(true);
}

static unsigned a_sector_2_32(void)
{
	submit_read(1ull << 32, pa(data), SECTOR);
	return observe(true);
}

static unsigned a_sector_overflow(void)
{
	submit_read(1ull << 55, pa(data), SECTOR); /* * 512 wraps to 0 */
	return observe(true);
}

static unsigned a_sector_max(void)
{
	submit_read(~0ull, pa(data), SECTOR);
	return observe(true);
}

/* 2^32 bytes of data (2^23 sectors) in two descriptors. */
static unsigned a_bytes_2_32(void)
{
	req(BLK_T_IN, 0);
	d_set(0, pa(hdr), sizeof(*hdr), VRING_DESC_F_NEXT, 1);
	d_set(1, pa(data), 0xFFFFFE00u, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 2);
	d_set(2, pa(data), SECTOR, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 3);
	d_set(3, pa(status), 1, VRING_DESC_F_WRITE, 0);
	publish(0);
	return observe(true);
}

static unsigned dwz_2_32(uint32_t type)
{
	struct blk_seg *seg = (struct blk_seg *)data;

	*seg = (struct blk_seg){ 0, 0xFFFFFFFFu, 0 };
	req(type, 0);
	d_set(0, pa(hdr), sizeof(*hdr), VRING_DESC_F_NEXT, 1);
	d_set(1, pa(seg), sizeof(*seg), VRING_DESC_F_NEXT, 2);
	d_set(2, pa(status), 1, VRING_DESC_F_WRITE, 0);
	publish(0);
	return observe(true);
}

static unsigned a_wz_2_32(void)
{
	return dwz_2_32(BLK_T_WRITE_ZEROES);
}

static unsigned a_discard_2_32(void)
{
	return dwz_2_32(BLK_T_DISCARD);
}

/* A reset while reads are in flight: once status reads 0 again, the
 * device must not write the buffers those reads named (virtio 2.1.1:
 * after a reset the device does not use the rings or buffers). */
static unsigned a_reset_inflight(void)
{
	unsigned n = 8;

	for (unsigned i = 0; i < n; i++) {
		req(BLK_T_IN, 0);
		d_set(3 * i, pa(hdr), sizeof(*hdr), VRING_DESC_F_NEXT, (uint16_t)(3 * i + 1));
		d_set(3 * i + 1, pa(data), 4096, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT,
		      (uint16_t)(3 * i + 2));
		d_set(3 * i + 2, pa(status), 1, VRING_DESC_F_WRITE, 0);
		vq.avail[2 + vq.avail_idx % vq.size] = (uint16_t)(3 * i);
		vq.avail_idx++;
	}
	vq.avail[1] = vq.avail_idx;
	virtq_kick(&vq);
	virtio_reset(&dev);
	if (virtio_get_status(&dev) != 0)
		return O_TIMEOUT;
	memset(data, 0x5A, 4096);
	*status = POISON;
	time_udelay(50000);
	for (unsigned i = 0; i < 4096; i++)
		if (data[i] != 0x5A)
			return O_OK; /* written after the reset */
	return *status == POISON ? O_QUIESCED : O_OK;
}

struct attack {
	const char *name;
	unsigned (*run)(void);
	unsigned allowed;
	bool live; /* starts from a live device with queue 0 */
};

#define NR O_NEEDS_RESET
static const struct attack attacks[] = {
	{ "cyclic-chain", a_cyclic, NR, true },
	{ "cyclic-chain-self", a_self_loop, NR, true },
	{ "next-index-out-of-range", a_next_range, NR, true },
	{ "head-index-out-of-range", a_head_range, NR, true },
	{ "chain-longer-than-queue", a_too_long, NR, true },
	{ "indirect-in-indirect", a_nested_indirect, NR, true },
	{ "indirect-len-0", a_indirect_len0, NR, true },
	{ "indirect-len-not-16x", a_indirect_len_odd, NR, true },
	{ "indirect-with-next", a_indirect_next, NR, true },
	{ "indirect-table-in-mmio-hole", a_indirect_hole, NR, true },
	{ "buffer-in-mmio-hole", a_buf_hole, NR, true },
	{ "buffer-on-device-registers", a_buf_registers, NR, true },
	{ "buffer-above-ram", a_buf_above_ram, NR, true },
	{ "buffer-straddles-ram-end", a_buf_straddle, NR, true },
	{ "buffer-at-64-tib", a_buf_far, NR, true },
	{ "buffer-wraps-2^64", a_buf_wrap, NR, true },
	{ "queue-size-3", a_qsize_3, NR, false },
	{ "queue-size-0", a_qsize_0, NR, false },
	{ "queue-size-32768", a_qsize_big, NR, false },
	{ "rings-in-mmio-hole", a_ring_hole, NR, false },
	{ "used-ring-past-ram-end", a_ring_above, NR, false },
	{ "avail-ring-wraps-2^64", a_ring_wrap, NR, false },
	{ "desc-ring-misaligned", a_ring_misaligned, NR, false },
	{ "avail-idx-jump", a_avail_jump, NR, true },
	{ "status-in-read-only-desc", a_status_ro, NR | O_NO_STATUS, true },
	{ "status-read-only-after-writable", a_status_ro_after_w, NR, true },
	{ "read-at-sector-2^32", a_sector_2_32, O_IOERR, true },
	{ "read-sector-times-512-wraps", a_sector_overflow, O_IOERR, true },
	{ "read-at-sector-2^64-1", a_sector_max, O_IOERR, true },
	{ "request-2^32-bytes", a_bytes_2_32, NR | O_IOERR, true },
	{ "write-zeroes-2^32-sectors", a_wz_2_32, O_IOERR | O_UNSUPP, true },
	{ "discard-2^32-sectors", a_discard_2_32, O_IOERR | O_UNSUPP, true },
	{ "reset-with-io-in-flight", a_reset_inflight, O_QUIESCED, true },
};

static const char *outcome_name(unsigned o)
{
	switch (o) {
	case O_NEEDS_RESET: return "needs_reset";
	case O_IOERR: return "ioerr";
	case O_UNSUPP: return "unsupp";
	case O_NO_STATUS: return "no_status";
	case O_OK: return "completed-ok";
	case O_QUIESCED: return "quiesced";
	case O_TIMEOUT: return "no reaction within 2 s";
	default: return "could not set up";
	}
}

static void run_attacks(void)
{
	char only[48] = "", why[96];
	unsigned ran = 0;

	cmdline_get("hostile.only", only, sizeof(only));
	for (unsigned i = 0; i < sizeof(attacks) / sizeof(attacks[0]); i++) {
		const struct attack *a = &attacks[i];
		unsigned o;

		if (only[0] && strcmp(only, a->name))
			continue;
		ran++;
		if (a->live && !dev_up()) {
			fail(a->name, "device does not come up before the attack");
			continue;
		}
		o = a->run();
		if (!(o & a->allowed)) {
			snprintf(why, sizeof(why), "outcome %s (status 0x%x)", outcome_name(o),
				 virtio_get_status(&dev));
			fail(a->name, why);
		} else if (!recover(1000 + i, why, sizeof(why))) {
			fail(a->name, why);
		} else if (a->run == a_status_ro) {
			/* the write that had no writable status must not have happened */
			int st = blk_rw(BLK_T_IN, RO_SECTOR, rbuf);

			if (st != BLK_S_OK || matches(rbuf, RO_SECTOR ^ 0xBAD))
				fail(a->name, "the request was executed anyway");
			else
				printf("hostile: %s: %s ok\n", a->name, outcome_name(o));
		} else {
			printf("hostile: %s: %s ok\n", a->name, outcome_name(o));
		}
	}
	if (!ran)
		fail(only, "no such attack");
}

/* ------------------------------------------------------- register storm */

static uint64_t rng;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void poke(uint64_t addr, unsigned width, uint64_t v)
{
	switch (width) {
	case 1: mmio_write8(addr, (uint8_t)v); break;
	case 2: mmio_write16(addr, (uint16_t)v); break;
	case 4: mmio_write32(addr, (uint32_t)v); break;
	default: mmio_write64(addr, v); break;
	}
}

static void peek(uint64_t addr, unsigned width)
{
	switch (width) {
	case 1: (void)mmio_read8(addr); break;
	case 2: (void)mmio_read16(addr); break;
	case 4: (void)mmio_read32(addr); break;
	default: (void)mmio_read64(addr); break;
	}
}

struct region {
	const char *name;
	uint64_t base, len;
};

static unsigned long storm_writes;

/* Every width at every offset (unaligned ones too), random values. */
static void sweep(const struct region *r)
{
	for (uint64_t off = 0; off < r->len; off++)
		for (unsigned w = 1; w <= 8; w <<= 1) {
			poke(r->base + off, w, rnd());
			storm_writes++;
		}
}

static void random_writes(const struct region *rs, unsigned nr, unsigned long n)
{
	for (unsigned long i = 0; i < n; i++) {
		uint64_t x = rnd();
		const struct region *r = &rs[x % nr];
		uint64_t off = (x >> 8) % r->len;
		unsigned w = 1u << ((x >> 40) & 3);

		poke(r->base + off, w, rnd());
		if ((i & 3) == 3)
			peek(r->base + off, w);
		storm_writes++;
	}
}

static void msix_quiet(void)
{
	struct pci_addr a = { dev.bus, dev.slot, dev.fn };

	if (dev.transport != VIRTIO_PCI || !dev.msix_cap)
		return;
	pci_write16(a, (uint8_t)(dev.msix_cap + 2), 0); /* MSI-X off, not masked */
	for (unsigned e = 0; e < dev.msix_entries; e++) {
		mmio_write32(dev.msix_table + 16 * e, 0xFEE00000u);
		mmio_write32(dev.msix_table + 16 * e + 4, 0);
		mmio_write32(dev.msix_table + 16 * e + 8, 0);
		mmio_write32(dev.msix_table + 16 * e + 12, 1); /* masked */
	}
}

static void storm_device(unsigned long nrandom)
{
	struct region rs[6];
	unsigned nr = 0;

	if (dev.transport == VIRTIO_PCI) {
		rs[nr++] = (struct region){ "common", dev.common, 0x80 };
		rs[nr++] = (struct region){ "isr", dev.isr, 0x10 };
		rs[nr++] = (struct region){ "devcfg", dev.devcfg, 0x100 };
		rs[nr++] = (struct region){ "notify", dev.notify,
					    virtio_num_queues(&dev) * 4u + 0x10 };
		if (dev.msix_cap) {
			rs[nr++] = (struct region){ "msix-table", dev.msix_table,
						    dev.msix_entries * 16u + 0x10 };
			/* kvmrun's PBA follows the table at +0x1000 (virtio/pci.h) */
			rs[nr++] = (struct region){ "msix-pba", dev.msix_table + 0x1000, 0x10 };
		}
	} else {
		rs[nr++] = (struct region){ "mmio", dev.base, 0x200 };
	}
	msix_quiet();
	for (unsigned i = 0; i < nr; i++) {
		virtio_reset(&dev);
		sweep(&rs[i]);
		printf("hostile: storm %s 0x%lx+0x%lx swept\n", rs[i].name, rs[i].base, rs[i].len);
	}
	virtio_reset(&dev);
	random_writes(rs, nr, nrandom);
	printf("hostile: storm %lu random writes done\n", nrandom);
	virtio_reset(&dev);
	msix_quiet();
}

#define PCI_ADDR_PORT 0xCF8
#define PCI_DATA_PORT 0xCFC

static void cfg_poke(uint32_t addr, unsigned off, unsigned width, uint32_t v)
{
	uint16_t port = (uint16_t)(PCI_DATA_PORT + (off & 3));

	outl(PCI_ADDR_PORT, addr | (off & 0xFC));
	switch (width) {
	case 1: outb(port, (uint8_t)v); break;
	case 2: outw(port, (uint16_t)v); break;
	default: outl(port, v); break;
	}
	storm_writes++;
}

static void storm_pci_config(void)
{
	struct pci_addr a = { dev.bus, dev.slot, dev.fn };
	bool mine = dev.transport == VIRTIO_PCI;
	uint32_t bar0 = mine ? pci_read32(a, PCI_BAR0) : 0;
	uint16_t cmd = mine ? pci_read16(a, PCI_COMMAND) : 0;

	for (unsigned slot = 0; slot < 32; slot++) {
		for (unsigned off = 0; off < 256; off++) {
			uint64_t x = rnd();
			unsigned fn = (x & 0x700) == 0x700 ? (unsigned)(x >> 3) & 7 : 0;
			uint32_t addr = 0x80000000u | slot << 11 | fn << 8;

			if ((x & 0xF000) == 0xF000) /* garbage address: other bus, no enable bit */
				addr = (uint32_t)(x >> 32) & ~0xFFu;
			cfg_poke(addr, off, 1u << ((x >> 16) % 3), (uint32_t)rnd());
		}
	}
	outl(PCI_ADDR_PORT, 0);
	printf("hostile: storm pci config of 32 slots done\n");
	if (mine) { /* put the device back where the library found it */
		pci_write32(a, PCI_BAR0, bar0);
		pci_write16(a, PCI_COMMAND, cmd);
		if (dev.msix_cap)
			pci_write16(a, (uint8_t)(dev.msix_cap + 2), 0);
	}
}

static void run_storm(void)
{
	char why[96];
	unsigned long n = cmdline_get_u64("hostile.writes", 16384);

	rng = cmdline_get_u64("hostile.seed", 0x6b766d72756eull) | 1;
	storm_device(n);
	if (pci_present())
		storm_pci_config();
	printf("hostile: storm %lu writes in all\n", storm_writes);
	if (!virtio_find(VIRTIO_ID_BLOCK, 0, &dev)) {
		fail("registers", "device gone after the storm");
		return;
	}
	if (!recover(2000, why, sizeof(why))) {
		fail("registers", why);
		return;
	}
	printf("hostile: registers survived\n");
}

/* ------------------------------------------------------------- floods */

#define VIRTIO_ID_BALLOON 5
#define FLOOD_BUF 0x1000000ul /* 16 MiB */

/* A balloon driver from hell: one chain whose descriptors all point at the
 * same tens of MiB (about a billion PFNs in all), made available again as
 * fast as the device hands it back. Never returns unless set-up fails. */
static void flood_balloon(void)
{
	static struct virtq bq;
	uint64_t bytes = cmdline_get_u64("hostile.flood_bytes", 60ull << 20);
	unsigned n = (unsigned)cmdline_get_u64("hostile.flood_descs", 68);

	if (!virtio_find(VIRTIO_ID_BALLOON, 0, &dev) || !virtio_negotiate(&dev, 0) ||
	    virtq_setup(&dev, 0, &bq, VIRTQ_MAX) != 0) {
		printf("hostile: balloon flood: no balloon device to flood\n");
		return;
	}
	virtio_driver_ok(&dev);
	if (n > bq.size)
		n = bq.size;
	for (unsigned i = 0; i < n; i++) {
		bq.desc[i].addr = FLOOD_BUF;
		bq.desc[i].len = (uint32_t)bytes;
		bq.desc[i].flags = i + 1 < n ? VRING_DESC_F_NEXT : 0;
		bq.desc[i].next = (uint16_t)(i + 1);
	}
	printf("hostile: balloon flood: %u descriptors of %lu bytes at 0x%lx\n", n, bytes,
	       FLOOD_BUF);
	for (bool first = true;; first = false) {
		uint16_t used = bq.used[1];

		while ((uint16_t)(bq.avail_idx - used) < bq.size) {
			bq.avail[2 + bq.avail_idx % bq.size] = 0;
			bq.avail_idx++;
		}
		__asm__ volatile("" ::: "memory");
		bq.avail[1] = bq.avail_idx;
		virtq_kick(&bq);
		if (first)
			printf("hostile: balloon flood running\n");
		cpu_relax();
	}
}

/* Console output without end, for a host that does not read it. */
static void flood_serial(void)
{
	for (unsigned long i = 0;; i++)
		printf("hostile: serial flood line %lu: the quick brown fox jumps over the lazy dog\n",
		       i);
}

/* ------------------------------------------------------------- main */

static void find_ram_top(void)
{
	for (uint32_t i = 0; i < start_info_memmap_count(); i++) {
		const struct start_info_memmap *e = start_info_memmap_entry(i);

		if (e->type == E820_RAM && e->addr + e->size > ram_top)
			ram_top = e->addr + e->size;
	}
}

int guest_main(void)
{
	uint8_t *p;

	if (!mem_init()) {
		printf("hostile: no memory map\n");
		return EXIT_FAIL;
	}
	find_ram_top();
	char flood[16] = "";
	if (cmdline_get("hostile.flood", flood, sizeof(flood))) {
		if (strcmp(flood, "serial") == 0)
			flood_serial();
		else if (strcmp(flood, "balloon") == 0)
			flood_balloon();
		printf("hostile: flood %s: FAIL unknown, or it could not start\n", flood);
		return EXIT_FAIL;
	}
	if (!virtio_find(VIRTIO_ID_BLOCK, 0, &dev))
		return EXIT_FAIL;
	p = mem_alloc(1);
	hdr = (struct blk_hdr *)p;
	status = p + 64;
	data = mem_alloc(1);
	rbuf = mem_alloc(1);
	itab = mem_alloc(2);  /* 257 descriptors */
	itab2 = mem_alloc(1);
	scratch = mem_alloc(3);
	seed ^= rdtsc();
	printf("hostile: ram_top=0x%lx\n", ram_top);

	if (cmdline_get_u64("hostile.registers", 0))
		run_storm();
	else
		run_attacks();
	if (failures) {
		printf("hostile: %u failures\n", failures);
		return EXIT_FAIL;
	}
	if (!cmdline_get_u64("hostile.registers", 0))
		printf("hostile: all ok\n");
	return 0;
}
