#include "cpu/elf.h"

#include <elf.h>
#include <errno.h>
#include <string.h>

#define XEN_ELFNOTE_PHYS32_ENTRY 18

/* One program header in a width-independent form. */
struct phdr {
	uint32_t type;
	uint64_t offset, paddr, filesz, memsz;
};

bool elf_is_elf(const void *buf, size_t len)
{
	return len >= SELFMAG && memcmp(buf, ELFMAG, SELFMAG) == 0;
}

static bool read_phdr(const struct elf_image *img, uint64_t phoff, unsigned i,
		      unsigned phentsize, struct phdr *p)
{
	uint64_t off = phoff + (uint64_t)i * phentsize;
	if (off > img->len || img->len - off < phentsize)
		return false;
	const uint8_t *b = img->buf + off;
	if (img->is64) {
		Elf64_Phdr h;
		memcpy(&h, b, sizeof(h));
		*p = (struct phdr){ h.p_type, h.p_offset, h.p_paddr, h.p_filesz, h.p_memsz };
	} else {
		Elf32_Phdr h;
		memcpy(&h, b, sizeof(h));
		*p = (struct phdr){ h.p_type, h.p_offset, h.p_paddr, h.p_filesz, h.p_memsz };
	}
	return true;
}

/* Walks the notes of one PT_NOTE segment looking for the PVH entry. */
static void scan_notes(struct elf_image *img, const struct phdr *p)
{
	uint64_t pos = p->offset, end = p->offset + p->filesz;
	while (end - pos >= 12) {
		uint32_t hdr[3];
		memcpy(hdr, img->buf + pos, sizeof(hdr));
		uint64_t namesz = (hdr[0] + 3ull) & ~3ull, descsz = (hdr[1] + 3ull) & ~3ull;
		uint64_t name = pos + 12, desc = name + namesz;
		if (desc > end || descsz > end - desc)
			return;
		if (hdr[2] == XEN_ELFNOTE_PHYS32_ENTRY && hdr[0] == 4 &&
		    memcmp(img->buf + name, "Xen", 4) == 0 && hdr[1] >= 4) {
			uint64_t v = 0;
			memcpy(&v, img->buf + desc, hdr[1] >= 8 ? 8 : 4);
			img->has_pvh = true;
			img->pvh_entry = hdr[1] >= 8 ? v : (uint32_t)v;
		}
		pos = desc + descsz;
	}
}

static int parse_header(struct elf_image *img, uint64_t *phoff, unsigned *phnum,
			unsigned *phentsize, const char **why)
{
	const uint8_t *b = img->buf;
	if (!elf_is_elf(b, img->len) || img->len < EI_NIDENT) {
		*why = "not an ELF file";
		return -EINVAL;
	}
	img->is64 = b[EI_CLASS] == ELFCLASS64;
	if (b[EI_CLASS] != ELFCLASS64 && b[EI_CLASS] != ELFCLASS32) {
		*why = "unknown ELF class";
		return -EINVAL;
	}
	if (b[EI_DATA] != ELFDATA2LSB) {
		*why = "ELF file is not little-endian";
		return -EINVAL;
	}
	uint16_t machine, type;
	if (img->is64) {
		Elf64_Ehdr h;
		if (img->len < sizeof(h)) { *why = "ELF header truncated"; return -EINVAL; }
		memcpy(&h, b, sizeof(h));
		machine = h.e_machine; type = h.e_type;
		img->entry = h.e_entry; *phoff = h.e_phoff; *phnum = h.e_phnum;
		*phentsize = h.e_phentsize;
		if (*phentsize < sizeof(Elf64_Phdr)) { *why = "bad ELF program header size"; return -EINVAL; }
	} else {
		Elf32_Ehdr h;
		if (img->len < sizeof(h)) { *why = "ELF header truncated"; return -EINVAL; }
		memcpy(&h, b, sizeof(h));
		machine = h.e_machine; type = h.e_type;
		img->entry = h.e_entry; *phoff = h.e_phoff; *phnum = h.e_phnum;
		*phentsize = h.e_phentsize;
		if (*phentsize < sizeof(Elf32_Phdr)) { *why = "bad ELF program header size"; return -EINVAL; }
	}
	if (machine != EM_X86_64 && machine != EM_386) {
		*why = "ELF file is not for x86";
		return -EINVAL;
	}
	if (type != ET_EXEC) {
		*why = "ELF file is not an executable";
		return -EINVAL;
	}
	if (*phnum == 0) {
		*why = "ELF file has no program headers";
		return -EINVAL;
	}
	return 0;
}

int elf_parse(const void *buf, size_t len, struct elf_image *out, const char **why)
{
	memset(out, 0, sizeof(*out));
	out->buf = buf;
	out->len = len;
	uint64_t phoff;
	unsigned phnum, phentsize;
	int rc = parse_header(out, &phoff, &phnum, &phentsize, why);
	if (rc < 0)
		return rc;
	out->load_start = UINT64_MAX;
	bool any_load = false;
	for (unsigned i = 0; i < phnum; i++) {
		struct phdr p;
		if (!read_phdr(out, phoff, i, phentsize, &p)) {
			*why = "ELF program headers run past the end of the file";
			return -EINVAL;
		}
		if (p.type != PT_LOAD && p.type != PT_NOTE)
			continue;
		if (p.offset > len || p.filesz > len - p.offset) {
			*why = "an ELF segment runs past the end of the file (truncated image?)";
			return -EINVAL;
		}
		if (p.type == PT_NOTE) {
			scan_notes(out, &p);
			continue;
		}
		if (p.memsz < p.filesz || p.paddr + p.memsz < p.paddr) {
			*why = "an ELF segment has an impossible size";
			return -EINVAL;
		}
		any_load = true;
		if (p.paddr < out->load_start)
			out->load_start = p.paddr;
		if (p.paddr + p.memsz > out->load_end)
			out->load_end = p.paddr + p.memsz;
	}
	if (!any_load) {
		*why = "ELF file has nothing to load";
		return -EINVAL;
	}
	return 0;
}

int elf_load(const struct elf_image *img, struct guest_mem *m, const char **why)
{
	uint64_t phoff;
	unsigned phnum, phentsize;
	struct elf_image tmp = *img;
	if (parse_header(&tmp, &phoff, &phnum, &phentsize, why) < 0)
		return -EINVAL;
	for (unsigned i = 0; i < phnum; i++) {
		struct phdr p;
		if (!read_phdr(img, phoff, i, phentsize, &p))
			return -EINVAL;
		if (p.type != PT_LOAD || p.memsz == 0)
			continue;
		uint8_t *dst = gmem_ptr(m, p.paddr, p.memsz);
		if (!dst) {
			*why = "the kernel does not fit in guest RAM at its load address (raise mem=)";
			return -EFAULT;
		}
		memcpy(dst, img->buf + p.offset, p.filesz);
		memset(dst + p.filesz, 0, p.memsz - p.filesz);
	}
	return 0;
}
