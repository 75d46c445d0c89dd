#include "layout.h"
#include "paging.h"

#define PTE_P 0x1ull
#define PTE_RW 0x2ull
#define PTE_PS 0x80ull
#define HIGH_GIB (IDENTITY_MAP_GIB - BOOT_MAP_GIB)

extern uint64_t boot_pdpt[512];

/* Filled completely by paging_map_8g, so it need not be zeroed. */
static uint64_t paging_high_pd[HIGH_GIB][512]
	__attribute__((section(".noinit.paging"), aligned(4096)));
static uint64_t paging_limit = (uint64_t)BOOT_MAP_GIB << 30;

void paging_map_8g(void)
{
	uint64_t cr3;

	if (paging_limit >= (uint64_t)IDENTITY_MAP_GIB << 30)
		return;
	for (unsigned g = 0; g < HIGH_GIB; g++) {
		uint64_t base = (uint64_t)(BOOT_MAP_GIB + g) << 30;

		for (unsigned i = 0; i < 512; i++)
			paging_high_pd[g][i] = (base + ((uint64_t)i << 21)) | PTE_P | PTE_RW | PTE_PS;
		boot_pdpt[BOOT_MAP_GIB + g] = (uint64_t)(uintptr_t)paging_high_pd[g] | PTE_P | PTE_RW;
	}
	__asm__ volatile("mov %%cr3, %0; mov %0, %%cr3" : "=r"(cr3) : : "memory");
	paging_limit = (uint64_t)IDENTITY_MAP_GIB << 30;
}

uint64_t paging_mapped_limit(void)
{
	return paging_limit;
}
