/* C side of the boot: called by entry.S on the boot stack. */
#include "guest.h"

void lib_start(uint32_t start_info_pa);

void lib_start(uint32_t start_info_pa)
{
	const struct start_info *si = (const struct start_info *)(uintptr_t)start_info_pa;
	int rc;

	serial_init();
	trap_init();
	if (si->magic != START_INFO_MAGIC)
		panic("start_info at 0x%x has magic 0x%x, want 0x%x", start_info_pa, si->magic,
		      START_INFO_MAGIC);
	start_info_set(si);
	rc = guest_main();
	if (rc == 0)
		poweroff();
	debug_exit((uint32_t)rc);
}
