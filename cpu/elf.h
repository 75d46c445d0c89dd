/* ELF kernels: validation, PVH note lookup and loading of PT_LOAD segments
 * at their physical addresses. Accepts ELF32 and ELF64, x86 only. */
#ifndef KVMRUN_ELF_H
#define KVMRUN_ELF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mem/guest_mem.h"

struct elf_image {
	const uint8_t *buf;
	size_t len;
	bool is64;
	uint64_t entry;        /* e_entry as written */
	bool has_pvh;
	uint64_t pvh_entry;    /* XEN_ELFNOTE_PHYS32_ENTRY */
	uint64_t load_start;   /* lowest p_paddr of a PT_LOAD */
	uint64_t load_end;     /* highest p_paddr + p_memsz */
};

/* True if @buf starts with the ELF magic. */
bool elf_is_elf(const void *buf, size_t len);

/* Checks the headers and every PT_LOAD/PT_NOTE against the file's bounds.
 * On failure returns -EINVAL and sets *why to a sentence for the user. */
int elf_parse(const void *buf, size_t len, struct elf_image *out, const char **why);

/* Copies each PT_LOAD to guest memory at p_paddr and zeroes its bss.
 * -EFAULT (with *why) if a segment does not fit in RAM. */
int elf_load(const struct elf_image *img, struct guest_mem *m, const char **why);

#endif
