/* Loading a stock Linux kernel through the 64-bit boot protocol
 * (Documentation/arch/x86/boot.rst, "64-bit Boot Protocol"): a bzImage, or
 * an uncompressed ELF vmlinux.
 *
 * The loader writes the kernel, the initrd, the command line and the zero
 * page (boot_params) into guest memory at the places mem/layout.h names,
 * and fills a boot_entry (BOOT_LINUX64, RSI = LAYOUT_ZERO_PAGE); regs.c
 * sets up the page tables, GDT and registers. Every malformed or truncated
 * image, an overlong command line, or a kernel or initrd that does not fit
 * in RAM is -EINVAL with a log line naming the problem, before any guest
 * memory is written.
 *
 * Which path: the caller asks linux_boot_kind() first. An ELF that carries
 * a PVH note (XEN_ELFNOTE_PHYS32_ENTRY) should boot through cpu/pvh.c
 * instead; linux_boot_load() does not look for that note and boots any
 * ELF it is given as a vmlinux through its e_entry. */
#ifndef KVMRUN_LINUX_BOOT_H
#define KVMRUN_LINUX_BOOT_H

#include <stddef.h>
#include <stdint.h>

#include "cpu/boot.h"
#include "cpu/e820.h"
#include "mem/guest_mem.h"
#include "lib/log.h"

#define LINUX_BOOT_E820_MAX 128 /* entries in boot_params.e820_table */

/* Zero page (struct boot_params) offsets used here, see zero-page.rst */
#define ZP_ACPI_RSDP_ADDR    0x070
#define ZP_EXT_RAMDISK_IMAGE 0x0c0
#define ZP_EXT_RAMDISK_SIZE  0x0c4
#define ZP_EXT_CMD_LINE_PTR  0x0c8
#define ZP_E820_ENTRIES      0x1e8
#define ZP_SENTINEL          0x1ef
#define ZP_E820_TABLE        0x2d0
#define ZP_SIZE              0x1000

/* The version a vmlinux's from-scratch zero page claims. */
#define LINUX_BOOT_VMLINUX_VERSION 0x020f

enum linux_boot_kind {
	LINUX_BOOT_UNKNOWN,
	LINUX_BOOT_BZIMAGE, /* boot flag and "HdrS" magic (not yet validated) */
	LINUX_BOOT_ELF,     /* ELF magic (not yet validated) */
};

struct linux_boot_params {
	const void *kernel;       /* the kernel file's bytes */
	size_t kernel_len;
	const void *initrd;       /* optional: NULL/0 for none */
	size_t initrd_len;
	const char *cmdline;      /* NULL means "" */
	/* The guest's memory map, built by the VM core from what it mapped;
	 * copied verbatim (1..LINUX_BOOT_E820_MAX entries). */
	const struct e820_entry *e820; /* cpu/e820.h */
	unsigned nr_e820;
	uint64_t rsdp_gpa;        /* boot_params.acpi_rsdp_addr; 0 for none */
};

/* What the file in [buf, buf+len) looks like, from its magic numbers only. */
enum linux_boot_kind linux_boot_kind(const void *buf, size_t len);

/* Loads the kernel of @p into @m and fills @out. A bzImage's
 * protected-mode code goes to pref_address (for a relocatable kernel:
 * at least LAYOUT_KERNEL, rounded up to kernel_alignment), and
 * [that, +init_size) must be RAM below the MMIO hole: the decompressor
 * runs there whatever the load address (so a distro kernel with
 * pref_address 16 MiB and init_size ~52 MiB needs ~70 MiB of low RAM).
 * A vmlinux's PT_LOAD segments go to their p_paddr. The
 * initrd goes at the highest 4 KiB-aligned address whose end lies below
 * initrd_addr_max (a vmlinux: 2 GiB), below the MMIO hole and inside the
 * RAM region of the kernel, and above the kernel's init_size footprint.
 * The command line goes to LAYOUT_CMDLINE (at most cmdline_size chars,
 * not counting the NUL, and LAYOUT_CMDLINE_MAX bytes), the zero page to
 * LAYOUT_ZERO_PAGE. Returns 0, -EINVAL (bad input, logged) or -EFAULT. */
__attribute__((warn_unused_result))
int linux_boot_load(struct guest_mem *m, const struct linux_boot_params *p,
		    struct boot_entry *out, const struct logger *log);

#endif
