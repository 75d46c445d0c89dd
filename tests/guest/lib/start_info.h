/* The PVH boot information (Xen public/arch-x86/hvm/start_info.h) that the
 * VMM passes in EBX. The boot code checks the magic before guest_main runs. */
#ifndef GUEST_START_INFO_H
#define GUEST_START_INFO_H

#include <stdint.h>

#define START_INFO_MAGIC 0x336ec578u

struct start_info {
	uint32_t magic;
	uint32_t version;       /* memmap fields exist from version 1 */
	uint32_t flags;
	uint32_t nr_modules;
	uint64_t modlist_paddr;
	uint64_t cmdline_paddr; /* 0: none */
	uint64_t rsdp_paddr;    /* 0: none, scan the BIOS area */
	uint64_t memmap_paddr;
	uint32_t memmap_entries;
	uint32_t reserved;
};

struct start_info_memmap {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
	uint32_t reserved;
};

#define E820_RAM 1
#define E820_RESERVED 2
#define E820_ACPI 3
#define E820_NVS 4

/* Set once by the boot code; NULL before. */
void start_info_set(const struct start_info *si);
const struct start_info *start_info_get(void);
/* The command line, "" when there is none. */
const char *start_info_cmdline(void);
/* Number of memory map entries (0 for a version-0 start_info). */
uint32_t start_info_memmap_count(void);
/* Entry i < start_info_memmap_count(), NULL otherwise. */
const struct start_info_memmap *start_info_memmap_entry(uint32_t i);

#endif
