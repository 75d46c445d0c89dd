#include <stddef.h>

#include "start_info.h"

/* The one piece of guest-wide state: where the VMM put the boot data. */
static const struct start_info *start_info_ptr;

void start_info_set(const struct start_info *si)
{
	start_info_ptr = si;
}

const struct start_info *start_info_get(void)
{
	return start_info_ptr;
}

const char *start_info_cmdline(void)
{
	if (!start_info_ptr || !start_info_ptr->cmdline_paddr)
		return "";
	return (const char *)(uintptr_t)start_info_ptr->cmdline_paddr;
}

uint32_t start_info_memmap_count(void)
{
	if (!start_info_ptr || start_info_ptr->version < 1 || !start_info_ptr->memmap_paddr)
		return 0;
	return start_info_ptr->memmap_entries;
}

const struct start_info_memmap *start_info_memmap_entry(uint32_t i)
{
	if (i >= start_info_memmap_count())
		return NULL;
	return (const struct start_info_memmap *)(uintptr_t)start_info_ptr->memmap_paddr + i;
}
