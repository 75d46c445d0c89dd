#include "exit.h"
#include "guest.h"
#include "mem.h"
#include "paging.h"

#define MEM_MAX_RANGES 32

struct mem_range {
	uint64_t lo, hi;
};

static struct {
	bool ready;
	unsigned n;
	struct mem_range r[MEM_MAX_RANGES];
	unsigned bi, ti;    /* ranges holding the bottom and top ends */
	uint64_t bot, top;  /* next free byte from the bottom; end of free from the top */
	uint64_t total;
} mem;

static void mem_add(uint64_t lo, uint64_t hi)
{
	lo = (lo + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
	hi &= ~(PAGE_SIZE - 1);
	if (lo >= hi || mem.n == MEM_MAX_RANGES)
		return;
	/* keep sorted by address (insertion) */
	unsigned i = mem.n++;

	while (i && mem.r[i - 1].lo > lo) {
		mem.r[i] = mem.r[i - 1];
		i--;
	}
	mem.r[i].lo = lo;
	mem.r[i].hi = hi;
}

/* Removes [lo, hi) from every range, splitting where needed. */
static void mem_exclude(uint64_t lo, uint64_t hi)
{
	lo &= ~(PAGE_SIZE - 1);
	hi = (hi + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
	for (unsigned i = 0; i < mem.n; i++) {
		struct mem_range *r = &mem.r[i];

		if (hi <= r->lo || lo >= r->hi)
			continue;
		if (lo > r->lo && hi < r->hi) {
			uint64_t old_hi = r->hi;

			r->hi = lo;
			mem_add(hi, old_hi);
		} else if (lo <= r->lo && hi >= r->hi) {
			r->hi = r->lo; /* empty; dropped below */
		} else if (lo <= r->lo) {
			r->lo = hi;
		} else {
			r->hi = lo;
		}
	}
	unsigned j = 0;

	for (unsigned i = 0; i < mem.n; i++)
		if (mem.r[i].lo < mem.r[i].hi)
			mem.r[j++] = mem.r[i];
	mem.n = j;
}

bool mem_init(void)
{
	const struct start_info *si = start_info_get();
	uint32_t n = start_info_memmap_count();
	uint64_t image_end = (uint64_t)(uintptr_t)_image_end;

	if (mem.ready)
		return mem.n != 0;
	mem.ready = true;
	for (uint32_t i = 0; i < n; i++) {
		const struct start_info_memmap *e = start_info_memmap_entry(i);

		if (e->type != E820_RAM || e->addr + e->size <= image_end)
			continue;
		mem_add(e->addr < image_end ? image_end : e->addr, e->addr + e->size);
	}
	mem_exclude((uint64_t)(uintptr_t)si, (uint64_t)(uintptr_t)si + sizeof(*si));
	mem_exclude(si->memmap_paddr, si->memmap_paddr + (uint64_t)n * sizeof(struct start_info_memmap));
	if (si->cmdline_paddr)
		mem_exclude(si->cmdline_paddr, si->cmdline_paddr + strlen(start_info_cmdline()) + 1);
	if (si->rsdp_paddr)
		mem_exclude(si->rsdp_paddr, si->rsdp_paddr + 36);
	if (!mem.n)
		return false;
	for (unsigned i = 0; i < mem.n; i++)
		mem.total += mem.r[i].hi - mem.r[i].lo;
	mem.bi = 0;
	mem.bot = mem.r[0].lo;
	mem.ti = mem.n - 1;
	mem.top = mem.r[mem.ti].hi;
	return true;
}

void *mem_alloc(unsigned npages)
{
	uint64_t len = npages * PAGE_SIZE;

	if (!mem_init())
		panic("mem: no usable RAM in the start_info memory map");
	for (;;) {
		uint64_t end = mem.bi == mem.ti ? mem.top : mem.r[mem.bi].hi;

		if (mem.bot + len <= end && mem.bot + len <= paging_mapped_limit()) {
			void *p = (void *)(uintptr_t)mem.bot;

			mem.bot += len;
			memset(p, 0, len);
			return p;
		}
		if (mem.bi == mem.ti || mem.r[mem.bi + 1].lo >= paging_mapped_limit())
			panic("mem: out of memory allocating %u pages", npages);
		mem.bi++;
		mem.bot = mem.r[mem.bi].lo;
	}
}

uint64_t mem_top_take(void)
{
	if (!mem_init())
		return 0;
	while (mem.top == mem.r[mem.ti].lo) {
		if (mem.ti == mem.bi)
			return 0;
		mem.ti--;
		mem.top = mem.r[mem.ti].hi;
	}
	if (mem.ti == mem.bi && mem.top - PAGE_SIZE < mem.bot)
		return 0;
	mem.top -= PAGE_SIZE;
	return mem.top;
}

uint64_t mem_top_give(void)
{
	uint64_t pa;

	if (!mem.n)
		return 0;
	if (mem.top == mem.r[mem.ti].hi) {
		if (mem.ti + 1 >= mem.n)
			return 0;
		mem.ti++;
		mem.top = mem.r[mem.ti].lo;
	}
	pa = mem.top;
	mem.top += PAGE_SIZE;
	return pa;
}

uint64_t mem_total_bytes(void)
{
	mem_init();
	return mem.total;
}

bool mem_free_extent(unsigned i, uint64_t *lo, uint64_t *hi)
{
	if (!mem_init() || mem.bi + i > mem.ti)
		return false;
	unsigned k = mem.bi + i;

	*lo = k == mem.bi ? mem.bot : mem.r[k].lo;
	*hi = k == mem.ti ? mem.top : mem.r[k].hi;
	if (*hi < *lo)
		*hi = *lo;
	return true;
}

uint64_t mem_free_bytes(void)
{
	uint64_t lo, hi, sum = 0;

	for (unsigned i = 0; mem_free_extent(i, &lo, &hi); i++)
		sum += hi - lo;
	return sum;
}
