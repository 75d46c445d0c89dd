#include "cpu/pvh.h"

#include <errno.h>
#include <string.h>

#include "mem/layout.h"

#define START_INFO_MEMMAP  (LAYOUT_START_INFO + 0x100)
#define START_INFO_MODLIST (LAYOUT_START_INFO + 0x800)

/* Highest page-aligned spot in low RAM for @len bytes above @floor. */
static int place_initrd(const struct guest_mem *m, uint64_t floor, size_t len, uint64_t *gpa)
{
	uint64_t top = 0;
	for (unsigned i = 0; i < m->nr_regions; i++)
		if (m->regions[i].gpa < LAYOUT_MMIO_HOLE)
			top = m->regions[i].gpa + m->regions[i].size;
	if (top < len)
		return -ENOSPC;
	uint64_t at = (top - len) & ~0xfffull;
	if (at < floor)
		return -ENOSPC;
	*gpa = at;
	return 0;
}

static int write_cmdline(struct guest_mem *m, const char *cmdline, const struct logger *lg)
{
	size_t len = cmdline ? strlen(cmdline) : 0;
	if (len + 1 > LAYOUT_CMDLINE_MAX) {
		log_err(lg, "boot", "cmdline: %zu bytes is longer than the %llu the boot layout allows",
			len, (unsigned long long)LAYOUT_CMDLINE_MAX - 1);
		return -EINVAL;
	}
	if (gmem_write(m, LAYOUT_CMDLINE, cmdline ? cmdline : "", len + 1) < 0)
		return -EFAULT;
	return 0;
}

static int write_memmap(struct guest_mem *m, const struct pvh_params *p)
{
	for (unsigned i = 0; i < p->nr_e820; i++) {
		struct hvm_memmap_entry e = {
			.addr = p->e820[i].addr, .size = p->e820[i].size, .type = p->e820[i].type,
		};
		if (gmem_write(m, START_INFO_MEMMAP + i * sizeof(e), &e, sizeof(e)) < 0)
			return -EFAULT;
	}
	return 0;
}

static int load_initrd(struct guest_mem *m, const struct pvh_params *p,
		       struct hvm_start_info *si, const struct logger *lg)
{
	uint64_t gpa;
	if (place_initrd(m, p->elf->load_end, p->initrd_len, &gpa) < 0) {
		log_err(lg, "boot", "initrd: %zu bytes do not fit in guest RAM above the kernel (raise mem=)",
			p->initrd_len);
		return -ENOSPC;
	}
	struct hvm_modlist_entry mod = { .paddr = gpa, .size = p->initrd_len };
	if (gmem_write(m, gpa, p->initrd, p->initrd_len) < 0 ||
	    gmem_write(m, START_INFO_MODLIST, &mod, sizeof(mod)) < 0)
		return -EFAULT;
	si->nr_modules = 1;
	si->modlist_paddr = START_INFO_MODLIST;
	return 0;
}

int pvh_load(struct guest_mem *m, const struct pvh_params *p, struct boot_entry *out,
	     const struct logger *lg)
{
	const char *why = NULL;
	if (!p->elf->has_pvh) {
		log_err(lg, "boot", "kernel: no PVH entry note");
		return -EINVAL;
	}
	if (p->elf->load_start < LAYOUT_HIGH_MEM) {
		log_err(lg, "boot", "kernel: loads at 0x%llx, below 1 MiB where boot data lives",
			(unsigned long long)p->elf->load_start);
		return -EINVAL;
	}
	if (elf_load(p->elf, m, &why) < 0) {
		log_err(lg, "boot", "kernel: %s", why);
		return -EFAULT;
	}
	struct hvm_start_info si = {
		.magic = HVM_START_MAGIC, .version = 1,
		.cmdline_paddr = LAYOUT_CMDLINE, .rsdp_paddr = p->rsdp_gpa,
		.memmap_paddr = START_INFO_MEMMAP, .memmap_entries = p->nr_e820,
	};
	int rc = write_cmdline(m, p->cmdline, lg);
	if (rc == 0)
		rc = write_memmap(m, p);
	if (rc == 0 && p->initrd)
		rc = load_initrd(m, p, &si, lg);
	if (rc == 0 && gmem_write(m, LAYOUT_START_INFO, &si, sizeof(si)) < 0)
		rc = -EFAULT;
	if (rc < 0)
		return rc;
	*out = (struct boot_entry){
		.mode = BOOT_PVH32, .entry = p->elf->pvh_entry, .arg = LAYOUT_START_INFO,
	};
	return 0;
}
