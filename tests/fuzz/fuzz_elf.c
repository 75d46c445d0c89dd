/* libFuzzer target for cpu/elf.c: a kernel image is whatever file the
 * config names, so elf_parse() and elf_load() see every byte of it as
 * hostile. The input is the image itself, in a heap buffer of exactly its
 * size (ASan reports any read past it).
 *
 * Invariants (abort on violation): no crash or sanitizer report; a refused
 * image comes with a reason; an accepted one has something to load, its
 * load range is ordered, and every PT_LOAD and PT_NOTE it has lies within
 * the file (re-checked here from the raw headers); elf_load() into a
 * guest RAM of two regions with a gap returns 0 or -EFAULT with a reason,
 * and on success every loaded segment holds the file's bytes followed by
 * zeroes. */
#include <elf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/elf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) { \
	fprintf(stderr, "fuzz_elf: invariant failed: %s (line %d)\n", #c, __LINE__); \
	abort(); } } while (0)

/* Guest RAM: [1 MiB, 1 MiB + 256 KiB) and [4 MiB, 4 MiB + 64 KiB). */
#define R0_GPA 0x100000u
#define R0_SIZE 0x40000u
#define R1_GPA 0x400000u
#define R1_SIZE 0x10000u

struct seg {
	uint32_t type;
	uint64_t offset, paddr, filesz, memsz;
};

/* Program header @i as the file says, or false if it is not in the file. */
static bool raw_phdr(const uint8_t *d, size_t n, bool is64, unsigned i, struct seg *s)
{
	uint64_t phoff, entsize;
	if (is64) {
		Elf64_Ehdr h;
		memcpy(&h, d, sizeof(h));
		phoff = h.e_phoff;
		entsize = h.e_phentsize;
	} else {
		Elf32_Ehdr h;
		memcpy(&h, d, sizeof(h));
		phoff = h.e_phoff;
		entsize = h.e_phentsize;
	}
	uint64_t off = phoff + i * entsize;
	if (off < phoff || off > n || n - off < (is64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr)))
		return false;
	if (is64) {
		Elf64_Phdr p;
		memcpy(&p, d + off, sizeof(p));
		*s = (struct seg){ p.p_type, p.p_offset, p.p_paddr, p.p_filesz, p.p_memsz };
	} else {
		Elf32_Phdr p;
		memcpy(&p, d + off, sizeof(p));
		*s = (struct seg){ p.p_type, p.p_offset, p.p_paddr, p.p_filesz, p.p_memsz };
	}
	return true;
}

static unsigned phnum(const uint8_t *d, bool is64)
{
	if (is64) {
		Elf64_Ehdr h;
		memcpy(&h, d, sizeof(h));
		return h.e_phnum;
	}
	Elf32_Ehdr h;
	memcpy(&h, d, sizeof(h));
	return h.e_phnum;
}

static uint8_t *ram0, *ram1;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* an exact-size copy: libFuzzer's buffer may have slack after it */
	uint8_t *img = malloc(size ? size : 1);
	CHECK(img != NULL);
	memcpy(img, data, size);

	CHECK(elf_is_elf(img, size) == (size >= 4 && memcmp(img, ELFMAG, 4) == 0));
	struct elf_image e;
	const char *why = NULL;
	int rc = elf_parse(img, size, &e, &why);
	if (rc < 0) {
		CHECK(rc == -EINVAL && why && *why);
		free(img);
		return 0;
	}
	CHECK(rc == 0);
	CHECK(e.buf == img && e.len == size);
	CHECK(e.load_start <= e.load_end);
	bool any_load = false;
	for (unsigned i = 0; i < phnum(img, e.is64); i++) {
		struct seg s;
		CHECK(raw_phdr(img, size, e.is64, i, &s));
		if (s.type != PT_LOAD && s.type != PT_NOTE)
			continue;
		CHECK(s.offset <= size && s.filesz <= size - s.offset);
		if (s.type == PT_LOAD) {
			any_load = true;
			CHECK(s.memsz >= s.filesz && s.paddr + s.memsz >= s.paddr);
			CHECK(s.paddr >= e.load_start && s.paddr + s.memsz <= e.load_end);
		}
	}
	CHECK(any_load);

	if (!ram0) {
		ram0 = malloc(R0_SIZE);
		ram1 = malloc(R1_SIZE);
		CHECK(ram0 && ram1);
	}
	struct guest_mem m;
	memset(&m, 0, sizeof(m));
	CHECK(gmem_add_region(&m, R0_GPA, R0_SIZE, ram0, -1, 0) == 0);
	CHECK(gmem_add_region(&m, R1_GPA, R1_SIZE, ram1, -1, 0) == 0);
	why = NULL;
	rc = elf_load(&e, &m, &why);
	CHECK(rc == 0 || (rc == -EFAULT && why && *why));
	for (unsigned i = 0; rc == 0 && i < phnum(img, e.is64); i++) {
		struct seg s;
		CHECK(raw_phdr(img, size, e.is64, i, &s));
		if (s.type != PT_LOAD || s.memsz == 0)
			continue;
		const uint8_t *dst = gmem_ptr(&m, s.paddr, s.memsz);
		CHECK(dst != NULL);
		/* a later segment may overlap an earlier one: check only the last
		 * PT_LOAD, which nothing overwrote */
		bool last = true;
		for (unsigned j = i + 1; j < phnum(img, e.is64); j++) {
			struct seg t;
			if (raw_phdr(img, size, e.is64, j, &t) && t.type == PT_LOAD && t.memsz)
				last = false;
		}
		if (!last)
			continue;
		CHECK(memcmp(dst, img + s.offset, s.filesz) == 0);
		for (uint64_t k = s.filesz; k < s.memsz; k++)
			CHECK(dst[k] == 0);
	}
	free(img);
	return 0;
}
