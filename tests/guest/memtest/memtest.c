/* memtest: prints the memory map from start_info, then writes and verifies
 * an address-derived pattern over the RAM it was given.
 *
 * Density: three qwords per 4 KiB page (first, middle, last), all pages
 * written first and verified in a second pass, so a page that is missing,
 * aliased to another page or mapped at the wrong offset is caught within
 * the instruction budget (measured under QEMU TCG: about 5 M instructions for 512 MiB).
 *
 * Not tested: the first 1 MiB, this image (code, data, .bss with stacks and
 * page tables), the start_info/memmap/cmdline pages, and RAM above the
 * 8 GiB identity map. The ACPI poweroff path is resolved before the test,
 * because the VMM's memory map may list the pages holding the ACPI tables
 * as RAM (QEMU with SeaBIOS does). */
#include "guest.h"
#include "paging.h"

#define PAGE 4096ull
#define LOW_LIMIT 0x100000ull
#define MAP_LIMIT ((uint64_t)IDENTITY_MAP_GIB << 30) /* after paging_map_8g() */
#define MAX_EXCL 8
#define MAX_FAILS 8

struct memtest_range {
	uint64_t lo, hi; /* [lo, hi) */
};

struct memtest {
	struct memtest_range excl[MAX_EXCL];
	unsigned nexcl;
	uint64_t seed;
	uint64_t pages;
	uint64_t fails;
	bool verify;
};

/* The three qwords tested in each page. */
#define OFF_FIRST 0
#define OFF_MID 2048
#define OFF_LAST (PAGE - 8)

static uint64_t memtest_pattern(const struct memtest *t, uint64_t addr)
{
	return (addr * 0x9E3779B97F4A7C15ull) ^ t->seed;
}

static void memtest_exclude(struct memtest *t, uint64_t lo, uint64_t len)
{
	if (!len || t->nexcl == MAX_EXCL)
		return;
	t->excl[t->nexcl].lo = lo & ~(PAGE - 1);
	t->excl[t->nexcl].hi = (lo + len + PAGE - 1) & ~(PAGE - 1);
	t->nexcl++;
}

static void memtest_write(const struct memtest *t, uint64_t lo, uint64_t hi)
{
	for (uint64_t a = lo; a < hi; a += PAGE) {
		*(volatile uint64_t *)(uintptr_t)(a + OFF_FIRST) = memtest_pattern(t, a + OFF_FIRST);
		*(volatile uint64_t *)(uintptr_t)(a + OFF_MID) = memtest_pattern(t, a + OFF_MID);
		*(volatile uint64_t *)(uintptr_t)(a + OFF_LAST) = memtest_pattern(t, a + OFF_LAST);
	}
}

static void memtest_check(struct memtest *t, uint64_t a)
{
	uint64_t want = memtest_pattern(t, a);
	uint64_t got = *(volatile uint64_t *)(uintptr_t)a;

	if (got != want && t->fails++ < MAX_FAILS)
		printf("memtest: FAIL at 0x%lx want 0x%lx got 0x%lx\n", a, want, got);
}

static void memtest_pages(struct memtest *t, uint64_t lo, uint64_t hi)
{
	if (!t->verify) {
		memtest_write(t, lo, hi);
		return;
	}
	for (uint64_t a = lo; a < hi; a += PAGE) {
		memtest_check(t, a + OFF_FIRST);
		memtest_check(t, a + OFF_MID);
		memtest_check(t, a + OFF_LAST);
		t->pages++;
	}
}

/* Runs memtest_pages over [lo, hi) minus the exclusions from index i on. */
static void memtest_clip(struct memtest *t, uint64_t lo, uint64_t hi, unsigned i)
{
	for (; i < t->nexcl; i++) {
		const struct memtest_range *x = &t->excl[i];

		if (x->hi <= lo || x->lo >= hi)
			continue;
		if (lo < x->lo)
			memtest_clip(t, lo, x->lo, i + 1);
		if (x->hi < hi)
			memtest_clip(t, x->hi, hi, i + 1);
		return;
	}
	if (lo < hi)
		memtest_pages(t, lo, hi);
}

static void memtest_pass(struct memtest *t)
{
	for (uint32_t i = 0; i < start_info_memmap_count(); i++) {
		const struct start_info_memmap *e = start_info_memmap_entry(i);
		uint64_t lo = (e->addr + PAGE - 1) & ~(PAGE - 1);
		uint64_t hi = (e->addr + e->size) & ~(PAGE - 1);

		if (e->type != E820_RAM || e->addr + e->size < e->addr)
			continue;
		if (lo < LOW_LIMIT)
			lo = LOW_LIMIT;
		if (hi > MAP_LIMIT)
			hi = MAP_LIMIT;
		if (lo < hi)
			memtest_clip(t, lo, hi, 0);
	}
}

int guest_main(void)
{
	const struct start_info *si = start_info_get();
	struct memtest t = { .seed = rdtsc() | 1 };
	uint64_t ram = 0, above = 0;
	uint32_t n = start_info_memmap_count();

	paging_map_8g();
	for (uint32_t i = 0; i < n; i++) {
		const struct start_info_memmap *e = start_info_memmap_entry(i);

		printf("e820: 0x%016lx - 0x%016lx type %u\n", e->addr, e->addr + e->size, e->type);
		if (e->type != E820_RAM)
			continue;
		ram += e->size;
		if (e->addr + e->size > MAP_LIMIT)
			above += e->addr + e->size - (e->addr > MAP_LIMIT ? e->addr : MAP_LIMIT);
	}
	printf("memtest: ram=%lu MiB\n", ram >> 20);
	if (!n) {
		printf("memtest: FAIL at 0x0: no memory map in start_info\n");
		return EXIT_FAIL;
	}
	if (above)
		printf("memtest: not testing %lu MiB above the 8 GiB map\n", above >> 20);

	poweroff_prepare();
	memtest_exclude(&t, (uint64_t)(uintptr_t)_image_start,
			(uint64_t)(uintptr_t)(_image_end - _image_start));
	memtest_exclude(&t, (uint64_t)(uintptr_t)si, sizeof(*si));
	memtest_exclude(&t, si->memmap_paddr, (uint64_t)n * sizeof(struct start_info_memmap));
	if (si->cmdline_paddr)
		memtest_exclude(&t, si->cmdline_paddr, strlen(start_info_cmdline()) + 1);

	memtest_pass(&t);
	t.verify = true;
	memtest_pass(&t);
	if (t.fails) {
		printf("memtest: %lu bad qwords in %lu pages\n", t.fails, t.pages);
		return EXIT_FAIL;
	}
	printf("memtest: ok pages=%lu\n", t.pages);
	return 0;
}
