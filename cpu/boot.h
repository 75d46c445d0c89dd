/* What a kernel loader decided, for the vCPU code to apply to the boot CPU.
 *
 * Loaders (pvh.c for ELF with a PVH note, linux_boot.c for bzImage and
 * vmlinux through the Linux 64-bit boot protocol) write the image and the
 * boot data into guest memory and fill a boot_entry; regs.c turns it into
 * register state. */
#ifndef KVMRUN_BOOT_H
#define KVMRUN_BOOT_H

#include <stdint.h>

enum boot_mode {
	BOOT_PVH32,    /* 32-bit protected mode, paging off, EBX = start_info */
	BOOT_LINUX64,  /* long mode, identity-mapped 4 GiB, RSI = boot_params */
};

struct boot_entry {
	enum boot_mode mode;
	uint64_t entry; /* guest-physical entry point */
	uint64_t arg;   /* EBX (PVH) or RSI (Linux) */
};

#endif
