/* balloon: a virtio-balloon driver (VIRTIO 1.2 section 5.5) over the guest
 * page allocator (lib/mem.c: RAM from the start_info memory map above this
 * image). Balloon pages are taken from the top of RAM and never touched;
 * their 4 KiB frame numbers go to the host in batches of up to 256.
 *
 * Command line:
 *   transport=pci|mmio       which transport to look on
 *   balloon.selftest=1       standalone: inflate to balloon.pages (default
 *                            1024), wait balloon.wait_ms (default 500),
 *                            deflate to 0, report free pages, power off
 *   balloon.rounds=N         host-driven mode: power off after the N-th
 *                            target change has been carried out (0: never)
 *   balloon.seconds=S        host-driven mode: power off after S seconds
 *                            (default 600)
 *   balloon.reserve=P        pages never given to the balloon (default 1024)
 *   balloon.touch=1          write to every page the balloon gives back, as a
 *                            guest that uses its memory again would
 *
 * Host-driven mode (the default): num_pages in the config is polled every
 * 10 ms; a change prints `balloon: target=N pages`, the balloon inflates
 * or deflates to it and writes `actual`, then prints
 * `balloon: actual=N pages`. A target of 0xFFFFFFFF means stop: the guest
 * deflates, prints `balloon: stop requested` and powers off. Stats
 * requests are answered whenever the device returns the stats buffer
 * (`balloon: stats answered n=K`); after each settled inflation a few free
 * 4 MiB ranges are reported if FREE_PAGE_REPORTING was negotiated
 * (`balloon: reported N ranges (M KiB)`). Ends with `balloon: done`. */
#include "guest.h"
#include "mem.h"
#include "virtio.h"

#define VIRTIO_ID_BALLOON 5

#define BAL_F_MUST_TELL_HOST 0
#define BAL_F_STATS_VQ 1
#define BAL_F_DEFLATE_ON_OOM 2
#define BAL_F_FREE_PAGE_HINT 3
#define BAL_F_PAGE_POISON 4
#define BAL_F_PAGE_REPORTING 5

#define BAL_CFG_NUM_PAGES 0
#define BAL_CFG_ACTUAL 4

#define BAL_S_SWAP_IN 0
#define BAL_S_SWAP_OUT 1
#define BAL_S_MAJFLT 2
#define BAL_S_MINFLT 3
#define BAL_S_MEMFREE 4
#define BAL_S_MEMTOT 5
#define BAL_S_AVAIL 6
#define BAL_S_CACHES 7
#define BAL_NR_STATS 8

#define BATCH 256
#define TIMEOUT_MS 5000
#define POLL_MS 10
#define TARGET_STOP 0xFFFFFFFFu
#define REPORT_CHUNK (4ull << 20)
#define REPORT_MAX 4
#define IRQ_VECTOR 0x51

struct bal_stat {
	uint16_t tag;
	uint64_t val;
} __attribute__((packed));

static struct virtio_dev dev;
static struct virtq inflate_vq, deflate_vq, stats_vq, report_vq;
static bool have_stats, have_report;
static uint32_t *pfns;
static struct bal_stat *stats;
static uint32_t actual, reserve;
static bool touch; /* balloon.touch: use deflated pages again */
static unsigned stats_answered;
static bool irq_reported;

static bool post_pfns(struct virtq *vq, unsigned n)
{
	struct vq_buf b = vq_rd(pfns, n * 4u);

	return virtq_run(vq, &b, 1, false, NULL, TIMEOUT_MS);
}

static void fill_stats(void)
{
	uint64_t free = mem_free_bytes();
	const uint64_t v[BAL_NR_STATS] = { 0, 0, 0, 0, free, mem_total_bytes(), free, 0 };

	for (unsigned i = 0; i < BAL_NR_STATS; i++) {
		stats[i].tag = (uint16_t)i;
		stats[i].val = v[i];
	}
}

static void stats_post(void)
{
	struct vq_buf b = vq_rd(stats, sizeof(*stats) * BAL_NR_STATS);

	fill_stats();
	if (virtq_add(&stats_vq, &b, 1, false) >= 0)
		virtq_kick(&stats_vq);
}

/* The device returns the stats buffer when it wants fresh numbers. */
static void stats_poll(void)
{
	uint32_t id, len;

	if (!have_stats || !virtq_get(&stats_vq, &id, &len))
		return;
	stats_answered++;
	printf("balloon: stats answered n=%u memfree=%lu memtot=%lu\n", stats_answered,
	       mem_free_bytes(), mem_total_bytes());
	stats_post();
}

static void set_actual(uint32_t n)
{
	actual = n;
	virtio_cfg_write32(&dev, BAL_CFG_ACTUAL, n);
}

/* Inflates or deflates towards target; returns false on a device error. */
static bool balloon_to(uint32_t target)
{
	uint64_t max = mem_free_bytes() / PAGE_SIZE;

	max = max > reserve ? max - reserve : 0;
	if (target > actual && target - actual > max) {
		printf("balloon: target %u above what can be given (%lu more pages)\n", target, max);
		target = actual + (uint32_t)max;
	}
	while (actual < target) {
		unsigned n = 0;

		while (n < BATCH && actual + n < target) {
			uint64_t pa = mem_top_take();

			if (!pa)
				break;
			pfns[n++] = (uint32_t)(pa / PAGE_SIZE);
		}
		if (!n)
			break;
		if (!post_pfns(&inflate_vq, n))
			return false;
		set_actual(actual + n);
		if (!irq_reported) {
			virtio_irq_report(&dev, 0);
			irq_reported = true;
			inflate_vq.hold_used_event = false;
		}
		stats_poll();
	}
	while (actual > target) {
		unsigned n = 0;

		while (n < BATCH && actual - n > target) {
			uint64_t pa = mem_top_give();

			if (!pa)
				break;
			pfns[n++] = (uint32_t)(pa / PAGE_SIZE);
		}
		if (!n)
			break;
		if (!post_pfns(&deflate_vq, n))
			return false;
		/* 5.5.6.1: a deflated page may be used once the device has it */
		for (unsigned i = 0; touch && i < n; i++)
			*(volatile uint8_t *)(uintptr_t)((uint64_t)pfns[i] * PAGE_SIZE) = 1;
		set_actual(actual - n);
		stats_poll();
	}
	printf("balloon: actual=%u pages\n", actual);
	return true;
}

/* Reports up to REPORT_MAX free, REPORT_CHUNK-aligned ranges in one chain. */
static void report_free(void)
{
	struct vq_buf b[REPORT_MAX];
	uint64_t lo, hi, bytes = 0;
	unsigned n = 0;

	if (!have_report)
		return;
	for (unsigned i = 0; n < REPORT_MAX && mem_free_extent(i, &lo, &hi); i++) {
		lo = (lo + REPORT_CHUNK - 1) & ~(REPORT_CHUNK - 1);
		for (; n < REPORT_MAX && lo + REPORT_CHUNK <= hi; lo += REPORT_CHUNK) {
			b[n++] = (struct vq_buf){ lo, (uint32_t)REPORT_CHUNK, true };
			bytes += REPORT_CHUNK;
		}
	}
	if (!n) {
		printf("balloon: no free 4 MiB range to report\n");
		return;
	}
	if (virtq_run(&report_vq, b, n, false, NULL, TIMEOUT_MS))
		printf("balloon: reported %u ranges (%lu KiB)\n", n, bytes >> 10);
	else
		printf("balloon: FAIL free page report not returned\n");
}

static void wait_ms(uint64_t ms)
{
	uint64_t start = rdtsc(), limit = time_ms_to_tsc(ms);

	while (rdtsc() - start < limit) {
		stats_poll();
		time_udelay(1000);
	}
}

static int selftest(void)
{
	uint32_t pages = (uint32_t)cmdline_get_u64("balloon.pages", 1024);

	printf("balloon: selftest pages=%u\n", pages);
	if (!balloon_to(pages) || actual != pages) {
		printf("balloon: FAIL inflate to %u pages (actual %u)\n", pages, actual);
		return EXIT_FAIL;
	}
	printf("balloon: host target=%u pages\n", virtio_cfg_read32(&dev, BAL_CFG_NUM_PAGES));
	wait_ms(cmdline_get_u64("balloon.wait_ms", 500));
	if (!balloon_to(0) || actual != 0) {
		printf("balloon: FAIL deflate (actual %u)\n", actual);
		return EXIT_FAIL;
	}
	report_free();
	printf("balloon: done\n");
	return 0;
}

static int host_driven(void)
{
	uint64_t rounds = cmdline_get_u64("balloon.rounds", 0), done = 0;
	uint64_t start = rdtsc(), limit = time_ms_to_tsc(cmdline_get_u64("balloon.seconds", 600) * 1000);
	uint32_t last = actual;

	printf("balloon: waiting for targets (rounds=%lu)\n", rounds);
	while (rdtsc() - start < limit) {
		uint32_t target = virtio_cfg_read32(&dev, BAL_CFG_NUM_PAGES);

		if (target == TARGET_STOP) {
			balloon_to(0);
			printf("balloon: stop requested\n");
			break;
		}
		if (target != last) {
			printf("balloon: target=%u pages\n", target);
			last = target;
			if (!balloon_to(target)) {
				printf("balloon: FAIL device did not take the pages\n");
				return EXIT_FAIL;
			}
			if (target > 0)
				report_free();
			if (rounds && ++done >= rounds)
				break;
		}
		stats_poll();
		time_udelay(POLL_MS * 1000);
	}
	printf("balloon: done\n");
	return 0;
}

int guest_main(void)
{
	uint64_t want = VIRTIO_BIT(BAL_F_STATS_VQ) | VIRTIO_BIT(BAL_F_DEFLATE_ON_OOM) |
			VIRTIO_BIT(BAL_F_PAGE_REPORTING);
	unsigned q = 2;

	if (!mem_init()) {
		printf("balloon: FAIL no memory map in start_info\n");
		return EXIT_FAIL;
	}
	poweroff_prepare(); /* the ACPI tables may be in RAM the balloon takes */
	reserve = (uint32_t)cmdline_get_u64("balloon.reserve", 1024);
	touch = cmdline_get_u64("balloon.touch", 0) != 0;
	if (!virtio_find(VIRTIO_ID_BALLOON, 0, &dev)) {
		printf("balloon: FAIL no virtio-balloon device\n");
		return EXIT_FAIL;
	}
	if (!virtio_negotiate(&dev, want)) {
		printf("balloon: FAIL feature negotiation\n");
		return EXIT_FAIL;
	}
	have_stats = virtio_has(&dev, BAL_F_STATS_VQ);
	have_report = virtio_has(&dev, BAL_F_PAGE_REPORTING);
	printf("balloon: features=0x%lx stats=%d deflate_on_oom=%d reporting=%d\n", dev.features,
	       have_stats, virtio_has(&dev, BAL_F_DEFLATE_ON_OOM), have_report);
	printf("balloon: ram=%lu KiB free=%lu KiB\n", mem_total_bytes() >> 10, mem_free_bytes() >> 10);

	virtio_irq_arm(&dev, 0, IRQ_VECTOR);
	/* Queue indices: inflate 0, deflate 1, then only the negotiated ones:
	 * stats, (free page hints: not negotiated), reporting. */
	if (virtq_setup(&dev, 0, &inflate_vq, 64) || virtq_setup(&dev, 1, &deflate_vq, 64) ||
	    (have_stats && virtq_setup(&dev, q++, &stats_vq, 4)) ||
	    (have_report && virtq_setup(&dev, q++, &report_vq, 16))) {
		printf("balloon: FAIL queue setup\n");
		return EXIT_FAIL;
	}
	inflate_vq.hold_used_event = true; /* until the interrupt check */
	pfns = mem_alloc(1);
	stats = mem_alloc(1);
	virtio_driver_ok(&dev);
	set_actual(0);
	if (have_stats)
		stats_post(); /* the initial stats buffer (5.5.6.3) */

	if (cmdline_get_u64("balloon.selftest", 0))
		return selftest();
	return host_driven();
}
