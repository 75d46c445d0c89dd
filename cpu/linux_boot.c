/* Linux 64-bit boot protocol loader: plan every placement and check it
 * against RAM first, then write guest memory. */
#include "cpu/linux_boot.h"

#include <elf.h>
#include <errno.h>
#include <string.h>

#include "cpu/bzimage.h"
#include "mem/layout.h"

#define WHO "linux_boot"
#define INITRD_ALIGN 0x1000ull
#define ENTRY64_OFFSET 0x200 /* 64-bit entry: load address + 0x200 */
/* x86 COMMAND_LINE_SIZE is 2048 including the NUL; a vmlinux has no
 * header to say so. */
#define VMLINUX_CMDLINE_MAX 2047
#define VMLINUX_INITRD_ADDR_MAX 0x7fffffffu
#define VMLINUX_ALIGNMENT 0x200000u
#define ELF_MAX_PHDRS 64

struct plan {
	uint8_t zp[ZP_SIZE];       /* the zero page, built in full here */
	uint64_t image_start;      /* lowest guest address of the kernel */
	uint64_t image_end;        /* end of its init_size footprint */
	uint64_t initrd_addr;
	uint64_t entry;
	const char *cmdline;
	size_t cmdline_len;
};

static void wr16(uint8_t *b, size_t off, uint16_t v)
{
	b[off] = (uint8_t)v;
	b[off + 1] = (uint8_t)(v >> 8);
}

static void wr32(uint8_t *b, size_t off, uint32_t v)
{
	wr16(b, off, (uint16_t)v);
	wr16(b, off + 2, (uint16_t)(v >> 16));
}

static void wr64(uint8_t *b, size_t off, uint64_t v)
{
	wr32(b, off, (uint32_t)v);
	wr32(b, off + 4, (uint32_t)(v >> 32));
}

enum linux_boot_kind linux_boot_kind(const void *buf, size_t len)
{
	const uint8_t *b = buf;
	if (len >= SELFMAG && memcmp(b, ELFMAG, SELFMAG) == 0)
		return LINUX_BOOT_ELF;
	if (len >= BZ_OFF_HEADER + 4 && b[BZ_OFF_BOOT_FLAG] == 0x55 &&
	    b[BZ_OFF_BOOT_FLAG + 1] == 0xaa && memcmp(b + BZ_OFF_HEADER, "HdrS", 4) == 0)
		return LINUX_BOOT_BZIMAGE;
	return LINUX_BOOT_UNKNOWN;
}

/* The end of the RAM region holding @gpa, capped at the MMIO hole. */
static uint64_t low_ram_top(const struct guest_mem *m, uint64_t gpa)
{
	const struct gmem_region *r = gmem_find(m, gpa, 0);
	if (!r)
		return 0;
	uint64_t top = r->gpa + r->size;
	return top > LAYOUT_MMIO_HOLE ? LAYOUT_MMIO_HOLE : top;
}

static int place_initrd(const struct guest_mem *m, const struct linux_boot_params *p,
			struct plan *pl, uint32_t initrd_addr_max,
			const struct logger *log)
{
	if (p->initrd_len == 0)
		return 0;
	uint64_t top = low_ram_top(m, pl->image_start);
	uint64_t limit = (uint64_t)initrd_addr_max + 1;
	if (limit < top)
		top = limit;
	if (p->initrd_len > top || ((top - p->initrd_len) & ~(INITRD_ALIGN - 1)) < pl->image_end) {
		log_err(log, WHO, "initrd of %zu bytes does not fit in RAM between the "
			"kernel's end %#llx and %#llx (initrd_addr_max %#x): give the VM "
			"more memory", p->initrd_len, (unsigned long long)pl->image_end,
			(unsigned long long)top, initrd_addr_max);
		return -EINVAL;
	}
	pl->initrd_addr = (top - p->initrd_len) & ~(INITRD_ALIGN - 1);
	if (!gmem_ptr(m, pl->initrd_addr, p->initrd_len)) {
		log_err(log, WHO, "initrd at %#llx is not RAM",
			(unsigned long long)pl->initrd_addr);
		return -EINVAL;
	}
	wr32(pl->zp, BZ_OFF_RAMDISK_IMAGE, (uint32_t)pl->initrd_addr);
	wr32(pl->zp, ZP_EXT_RAMDISK_IMAGE, (uint32_t)(pl->initrd_addr >> 32));
	wr32(pl->zp, BZ_OFF_RAMDISK_SIZE, (uint32_t)p->initrd_len);
	wr32(pl->zp, ZP_EXT_RAMDISK_SIZE, (uint32_t)((uint64_t)p->initrd_len >> 32));
	return 0;
}

static int check_cmdline(struct plan *pl, uint32_t max, const struct logger *log)
{
	if (pl->cmdline_len > max || pl->cmdline_len + 1 > LAYOUT_CMDLINE_MAX) {
		log_err(log, WHO, "command line is %zu bytes; this kernel takes at most %u",
			pl->cmdline_len,
			max < LAYOUT_CMDLINE_MAX - 1 ? max : (unsigned)(LAYOUT_CMDLINE_MAX - 1));
		return -EINVAL;
	}
	return 0;
}

/* The kernel's footprint [start, start+size) must be RAM, above the
 * low-memory boot data and below the MMIO hole (the boot page tables map
 * only the first 4 GiB). */
static bool kernel_fits(const struct guest_mem *m, uint64_t start, uint64_t size)
{
	return start >= LAYOUT_HIGH_MEM && size <= LAYOUT_MMIO_HOLE &&
	       start <= LAYOUT_MMIO_HOLE - size && gmem_ptr(m, start, size) != NULL;
}

static int plan_bzimage(const struct guest_mem *m, const struct linux_boot_params *p,
			struct plan *pl, const struct logger *log)
{
	const uint8_t *k = p->kernel;
	struct bzimage_info bi;
	enum bzimage_error e = bzimage_parse(p->kernel, p->kernel_len, &bi);
	if (e != BZIMAGE_OK) {
		log_err(log, WHO, "kernel: bad bzImage: %s", bzimage_strerror(e));
		return -EINVAL;
	}
	int rc = check_cmdline(pl, bi.cmdline_size, log);
	if (rc)
		return rc;

	/* Where the kernel runs: pref_address (LOAD_PHYSICAL_ADDR), aligned.
	 * A relocatable kernel loaded lower still decompresses to at least
	 * LOAD_PHYSICAL_ADDR (arch/x86/boot/compressed/head_64.S), so
	 * loading below pref_address would save nothing: the init_size
	 * footprint from there must be RAM either way. */
	uint64_t footprint = bi.init_size > bi.kernel_size ? bi.init_size : bi.kernel_size;
	uint64_t load = bi.pref_address;
	if (bi.relocatable) {
		uint64_t align = bi.kernel_alignment;
		if (load < LAYOUT_KERNEL)
			load = LAYOUT_KERNEL;
		if (load > UINT64_MAX - align)
			load = 0; /* fails kernel_fits */
		else
			load = (load + align - 1) & ~(align - 1);
	}
	if (!kernel_fits(m, load, footprint)) {
		log_err(log, WHO, "kernel: needs %#llx bytes of RAM (init_size) from %#llx "
			"(pref_address%s): give the VM more memory",
			(unsigned long long)footprint, (unsigned long long)load,
			bi.relocatable ? "" : ", not relocatable");
		return -EINVAL;
	}
	pl->image_start = load;
	pl->image_end = load + footprint;
	pl->entry = load + ENTRY64_OFFSET;

	/* the zero page carries the file's setup header */
	size_t hdr_end = bi.hdr_end < BZ_HDR_END_MAX ? bi.hdr_end : BZ_HDR_END_MAX;
	memcpy(pl->zp + BZ_HDR_START, k + BZ_HDR_START, hdr_end - BZ_HDR_START);
	pl->zp[BZ_OFF_TYPE_OF_LOADER] = 0xff;
	pl->zp[BZ_OFF_LOADFLAGS] = (uint8_t)((bi.loadflags | BZ_LOADED_HIGH) & ~BZ_CAN_USE_HEAP);
	wr32(pl->zp, BZ_OFF_CODE32_START, (uint32_t)load);
	wr64(pl->zp, BZ_OFF_SETUP_DATA, 0);
	wr32(pl->zp, BZ_OFF_HW_SUBARCH, 0);

	rc = place_initrd(m, p, pl, bi.initrd_addr_max, log);
	if (rc)
		return rc;
	log_info(log, WHO, "bzImage protocol %u.%02u at %#llx (init_size %#x), initrd %zu bytes at %#llx",
		 bi.version >> 8, bi.version & 0xff, (unsigned long long)load,
		 bi.init_size, p->initrd_len, (unsigned long long)pl->initrd_addr);
	return 0;
}

/* Reads and checks the ELF header and program headers into @eh and @ph. */
static int elf_phdrs(const struct linux_boot_params *p, Elf64_Ehdr *eh, Elf64_Phdr *ph,
		     const struct logger *log)
{
	const uint8_t *k = p->kernel;
	if (p->kernel_len < sizeof(*eh)) {
		log_err(log, WHO, "kernel: ELF file truncated in its header");
		return -EINVAL;
	}
	memcpy(eh, k, sizeof(*eh));
	if (eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_ident[EI_DATA] != ELFDATA2LSB ||
	    eh->e_ident[EI_VERSION] != EV_CURRENT || eh->e_machine != EM_X86_64) {
		log_err(log, WHO, "kernel: not a little-endian x86-64 ELF64 file");
		return -EINVAL;
	}
	if (eh->e_type != ET_EXEC) {
		log_err(log, WHO, "kernel: ELF type %u is not an executable vmlinux", eh->e_type);
		return -EINVAL;
	}
	if (eh->e_phentsize != sizeof(Elf64_Phdr) || eh->e_phnum == 0 ||
	    eh->e_phnum > ELF_MAX_PHDRS) {
		log_err(log, WHO, "kernel: bad ELF program header table (%u entries of %u bytes)",
			eh->e_phnum, eh->e_phentsize);
		return -EINVAL;
	}
	uint64_t ph_bytes = (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr);
	if (eh->e_phoff > p->kernel_len || ph_bytes > p->kernel_len - eh->e_phoff) {
		log_err(log, WHO, "kernel: ELF program headers lie past the end of the file");
		return -EINVAL;
	}
	memcpy(ph, k + eh->e_phoff, ph_bytes);
	return 0;
}

static int plan_vmlinux(const struct guest_mem *m, const struct linux_boot_params *p,
			struct plan *pl, const struct logger *log)
{
	Elf64_Ehdr eh;
	Elf64_Phdr ph[ELF_MAX_PHDRS];
	int rc = elf_phdrs(p, &eh, ph, log);
	if (rc)
		return rc;

	uint64_t lo = UINT64_MAX, hi = 0;
	bool entry_found = false;
	for (unsigned i = 0; i < eh.e_phnum; i++) {
		const Elf64_Phdr *s = &ph[i];
		if (s->p_type != PT_LOAD || s->p_memsz == 0)
			continue;
		if (s->p_filesz > s->p_memsz || s->p_offset > p->kernel_len ||
		    s->p_filesz > p->kernel_len - s->p_offset) {
			log_err(log, WHO, "kernel: ELF segment %u lies past the end of the file", i);
			return -EINVAL;
		}
		if (!kernel_fits(m, s->p_paddr, s->p_memsz)) {
			log_err(log, WHO, "kernel: ELF segment %u [%#llx, +%#llx) is not in RAM "
				"between 1 MiB and the MMIO hole", i,
				(unsigned long long)s->p_paddr, (unsigned long long)s->p_memsz);
			return -EINVAL;
		}
		if (s->p_paddr < lo)
			lo = s->p_paddr;
		if (s->p_paddr + s->p_memsz > hi)
			hi = s->p_paddr + s->p_memsz;
		if (!entry_found && eh.e_entry >= s->p_vaddr &&
		    eh.e_entry - s->p_vaddr < s->p_memsz) {
			pl->entry = s->p_paddr + (eh.e_entry - s->p_vaddr);
			entry_found = true;
		}
	}
	if (hi == 0) {
		log_err(log, WHO, "kernel: ELF file has no loadable segment");
		return -EINVAL;
	}
	if (!entry_found) {
		log_err(log, WHO, "kernel: ELF entry %#llx lies in no loadable segment",
			(unsigned long long)eh.e_entry);
		return -EINVAL;
	}
	rc = check_cmdline(pl, VMLINUX_CMDLINE_MAX, log);
	if (rc)
		return rc;
	pl->image_start = lo;
	pl->image_end = hi;

	/* a zero page from scratch, as a 2.15 boot loader would leave it */
	uint8_t *zp = pl->zp;
	zp[BZ_OFF_SETUP_SECTS] = 4;
	wr16(zp, BZ_OFF_BOOT_FLAG, BZ_BOOT_FLAG);
	wr32(zp, BZ_OFF_HEADER, BZ_HEADER_MAGIC);
	wr16(zp, BZ_OFF_VERSION, LINUX_BOOT_VMLINUX_VERSION);
	zp[BZ_OFF_TYPE_OF_LOADER] = 0xff;
	zp[BZ_OFF_LOADFLAGS] = BZ_LOADED_HIGH;
	wr32(zp, BZ_OFF_CODE32_START, (uint32_t)lo);
	wr32(zp, BZ_OFF_INITRD_ADDR_MAX, VMLINUX_INITRD_ADDR_MAX);
	wr32(zp, BZ_OFF_KERNEL_ALIGNMENT, VMLINUX_ALIGNMENT);
	wr16(zp, BZ_OFF_XLOADFLAGS, BZ_XLF_KERNEL_64);
	wr32(zp, BZ_OFF_CMDLINE_SIZE, VMLINUX_CMDLINE_MAX);
	wr64(zp, BZ_OFF_PREF_ADDRESS, lo);
	wr32(zp, BZ_OFF_INIT_SIZE, (uint32_t)(hi - lo));

	rc = place_initrd(m, p, pl, VMLINUX_INITRD_ADDR_MAX, log);
	if (rc)
		return rc;
	log_info(log, WHO, "vmlinux at [%#llx, %#llx), entry %#llx, initrd %zu bytes at %#llx",
		 (unsigned long long)lo, (unsigned long long)hi,
		 (unsigned long long)pl->entry, p->initrd_len,
		 (unsigned long long)pl->initrd_addr);
	return 0;
}

static int load_vmlinux_segments(struct guest_mem *m, const struct linux_boot_params *p)
{
	const uint8_t *k = p->kernel;
	Elf64_Ehdr eh;
	Elf64_Phdr ph;
	memcpy(&eh, k, sizeof(eh));
	for (unsigned i = 0; i < eh.e_phnum; i++) {
		memcpy(&ph, k + eh.e_phoff + (size_t)i * sizeof(ph), sizeof(ph));
		if (ph.p_type != PT_LOAD || ph.p_memsz == 0)
			continue;
		uint8_t *dst = gmem_ptr(m, ph.p_paddr, ph.p_memsz); /* checked by the plan */
		if (!dst)
			return -EFAULT;
		memcpy(dst, k + ph.p_offset, ph.p_filesz);
		memset(dst + ph.p_filesz, 0, ph.p_memsz - ph.p_filesz);
	}
	return 0;
}

int linux_boot_load(struct guest_mem *m, const struct linux_boot_params *p,
		    struct boot_entry *out, const struct logger *log)
{
	struct plan plan = {0};
	struct plan *pl = &plan;

	if (!p->kernel || p->kernel_len == 0) {
		log_err(log, WHO, "kernel: empty file");
		return -EINVAL;
	}
	if (p->initrd_len && !p->initrd) {
		log_err(log, WHO, "initrd: no data");
		return -EINVAL;
	}
	if (!p->e820 || p->nr_e820 == 0 || p->nr_e820 > LINUX_BOOT_E820_MAX) {
		log_err(log, WHO, "e820 map has %u entries; the zero page takes 1..%u",
			p->nr_e820, LINUX_BOOT_E820_MAX);
		return -EINVAL;
	}
	pl->cmdline = p->cmdline ? p->cmdline : "";
	pl->cmdline_len = strlen(pl->cmdline);
	if (!gmem_ptr(m, LAYOUT_ZERO_PAGE, ZP_SIZE) ||
	    !gmem_ptr(m, LAYOUT_CMDLINE, LAYOUT_CMDLINE_MAX)) {
		log_err(log, WHO, "no RAM for the zero page and command line below 1 MiB");
		return -EINVAL;
	}

	int rc;
	switch (linux_boot_kind(p->kernel, p->kernel_len)) {
	case LINUX_BOOT_BZIMAGE:
		rc = plan_bzimage(m, p, pl, log);
		break;
	case LINUX_BOOT_ELF:
		rc = plan_vmlinux(m, p, pl, log);
		break;
	default:
		log_err(log, WHO, "kernel: neither a bzImage nor an ELF vmlinux");
		rc = -EINVAL;
		break;
	}
	if (rc)
		return rc;

	/* common zero page fields */
	wr32(pl->zp, BZ_OFF_CMD_LINE_PTR, (uint32_t)LAYOUT_CMDLINE);
	wr32(pl->zp, ZP_EXT_CMD_LINE_PTR, 0);
	wr64(pl->zp, ZP_ACPI_RSDP_ADDR, p->rsdp_gpa);
	pl->zp[ZP_SENTINEL] = 0;
	pl->zp[ZP_E820_ENTRIES] = (uint8_t)p->nr_e820;
	for (unsigned i = 0; i < p->nr_e820; i++) {
		size_t off = ZP_E820_TABLE + (size_t)i * 20;
		wr64(pl->zp, off, p->e820[i].addr);
		wr64(pl->zp, off + 8, p->e820[i].size);
		wr32(pl->zp, off + 16, p->e820[i].type);
	}

	/* everything was checked: now write guest memory */
	if (linux_boot_kind(p->kernel, p->kernel_len) == LINUX_BOOT_BZIMAGE) {
		struct bzimage_info bi;
		(void)bzimage_parse(p->kernel, p->kernel_len, &bi);
		rc = gmem_write(m, pl->image_start, (const uint8_t *)p->kernel + bi.kernel_offset,
				bi.kernel_size);
	} else {
		rc = load_vmlinux_segments(m, p);
	}
	if (!rc && p->initrd_len)
		rc = gmem_write(m, pl->initrd_addr, p->initrd, p->initrd_len);
	if (!rc)
		rc = gmem_write(m, LAYOUT_CMDLINE, pl->cmdline, pl->cmdline_len + 1);
	if (!rc)
		rc = gmem_write(m, LAYOUT_ZERO_PAGE, pl->zp, ZP_SIZE);
	if (rc) {
		log_err(log, WHO, "writing the kernel into guest memory failed");
		return rc;
	}

	out->mode = BOOT_LINUX64;
	out->entry = pl->entry;
	out->arg = LAYOUT_ZERO_PAGE;
	return 0;
}
