/* The PVH boot protocol (Xen's hvm_start_info, as QEMU and Linux use it):
 * an ELF with a XEN_ELFNOTE_PHYS32_ENTRY note is entered in 32-bit
 * protected mode with EBX pointing at start_info, which carries the
 * command line, the memory map, the RSDP and modules (the initrd). */
#ifndef KVMRUN_PVH_H
#define KVMRUN_PVH_H

#include <stddef.h>
#include <stdint.h>

#include "cpu/boot.h"
#include "cpu/e820.h"
#include "cpu/elf.h"
#include "mem/guest_mem.h"
#include "lib/log.h"

/* What the guest reads: Xen public/arch-x86/hvm/start_info.h, version 1. */
#define HVM_START_MAGIC 0x336ec578u

struct hvm_start_info {
	uint32_t magic, version, flags, nr_modules;
	uint64_t modlist_paddr, cmdline_paddr, rsdp_paddr, memmap_paddr;
	uint32_t memmap_entries, reserved;
};

struct hvm_modlist_entry {
	uint64_t paddr, size, cmdline_paddr, reserved;
};

struct hvm_memmap_entry {
	uint64_t addr, size;
	uint32_t type, reserved;
};

struct pvh_params {
	const struct elf_image *elf;  /* parsed, has_pvh set */
	const char *cmdline;          /* may be NULL */
	const void *initrd;           /* may be NULL */
	size_t initrd_len;
	const struct e820_entry *e820;
	unsigned nr_e820;
	uint64_t rsdp_gpa;            /* 0: none */
};

/* Loads the image, start_info, memory map, command line and initrd; fills
 * @out. Errors (-EINVAL/-EFAULT) are logged with what did not fit. */
__attribute__((warn_unused_result))
int pvh_load(struct guest_mem *m, const struct pvh_params *p, struct boot_entry *out,
	     const struct logger *lg);

#endif
