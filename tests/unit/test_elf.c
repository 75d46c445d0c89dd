/* ELF kernels (cpu/elf.c): elf_parse() reads an untrusted image, so every
 * check is tested on both sides of its boundary (the last accepted value
 * and the first refused one), for ELF64 and ELF32; the PVH note scan; and
 * elf_load() copying segments and zeroing their bss. */
#include <elf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/elf.h"
#include "unit.h"

#define IMG_SIZE 0x3000u
#define PH_OFF 0x40u    /* program headers right after the ELF64 header */
#define SEG_OFF 0x1000u /* first segment's bytes */

static uint8_t img[IMG_SIZE];

/* ---- building images ---- */

/* An ELF64 x86-64 executable with @nph program headers at PH_OFF, all
 * zero (PT_NULL) until set. */
static void elf64(unsigned nph)
{
	memset(img, 0, sizeof(img));
	Elf64_Ehdr h = {
		.e_ident = { ELFMAG0, ELFMAG1, ELFMAG2, ELFMAG3, ELFCLASS64, ELFDATA2LSB, EV_CURRENT },
		.e_type = ET_EXEC, .e_machine = EM_X86_64, .e_version = EV_CURRENT,
		.e_entry = 0x100000, .e_phoff = PH_OFF, .e_ehsize = sizeof(Elf64_Ehdr),
		.e_phentsize = sizeof(Elf64_Phdr), .e_phnum = (uint16_t)nph,
	};
	memcpy(img, &h, sizeof(h));
}

static Elf64_Ehdr *eh64(void)
{
	return (Elf64_Ehdr *)img;
}

static Elf64_Phdr *ph64(unsigned i)
{
	return (Elf64_Phdr *)(img + PH_OFF) + i;
}

static void load64(unsigned i, uint64_t off, uint64_t paddr, uint64_t filesz, uint64_t memsz)
{
	*ph64(i) = (Elf64_Phdr){ .p_type = PT_LOAD, .p_offset = off, .p_paddr = paddr,
				 .p_vaddr = paddr, .p_filesz = filesz, .p_memsz = memsz };
}

/* The ELF32 (i386) equivalent, program headers at 0x34. */
#define PH32_OFF 0x34u

static void elf32(unsigned nph)
{
	memset(img, 0, sizeof(img));
	Elf32_Ehdr h = {
		.e_ident = { ELFMAG0, ELFMAG1, ELFMAG2, ELFMAG3, ELFCLASS32, ELFDATA2LSB, EV_CURRENT },
		.e_type = ET_EXEC, .e_machine = EM_386, .e_version = EV_CURRENT,
		.e_entry = 0x100000, .e_phoff = PH32_OFF, .e_ehsize = sizeof(Elf32_Ehdr),
		.e_phentsize = sizeof(Elf32_Phdr), .e_phnum = (uint16_t)nph,
	};
	memcpy(img, &h, sizeof(h));
}

static Elf32_Phdr *ph32(unsigned i)
{
	return (Elf32_Phdr *)(img + PH32_OFF) + i;
}

/* Parses the first @len bytes of img; returns 0 or -EINVAL, and checks a
 * failure comes with a reason. */
static int parse(size_t len, struct elf_image *out)
{
	const char *why = NULL;
	int rc = elf_parse(img, len, out, &why);
	if (rc < 0)
		CHECK(why != NULL && *why);
	return rc;
}

/* The reason elf_parse() gives for the first @len bytes ("" if accepted). */
static const char *reason(size_t len)
{
	static const char *why;
	struct elf_image e;
	why = NULL;
	return elf_parse(img, len, &e, &why) == 0 ? "" : why;
}

/* ---- the header ---- */

static void test_header(void)
{
	struct elf_image e;
	CHECK(!elf_is_elf(img, 0));
	elf64(1);
	load64(0, SEG_OFF, 0x100000, 0x10, 0x10);
	CHECK(elf_is_elf(img, 4));
	CHECK(!elf_is_elf(img, 3));
	CHECK_EQ(parse(IMG_SIZE, &e), 0);
	CHECK(e.is64);
	CHECK_EQ(e.entry, 0x100000);

	/* magic */
	img[3] = 'G';
	CHECK_STREQ(reason(IMG_SIZE), "not an ELF file");
	img[3] = 'F';
	/* the magic alone, shorter than e_ident: refused, never read past */
	CHECK_STREQ(reason(4), "not an ELF file");
	CHECK_STREQ(reason(EI_NIDENT - 1), "not an ELF file");
	/* e_ident complete but the header is not: the boundary is the header size */
	CHECK_STREQ(reason(EI_NIDENT), "ELF header truncated");
	CHECK_STREQ(reason(sizeof(Elf64_Ehdr) - 1), "ELF header truncated");
	CHECK_STREQ(reason(sizeof(Elf64_Ehdr)), "ELF program headers run past the end of the file");

	img[EI_CLASS] = ELFCLASSNONE;
	CHECK_STREQ(reason(IMG_SIZE), "unknown ELF class");
	img[EI_CLASS] = 3;
	CHECK_STREQ(reason(IMG_SIZE), "unknown ELF class");
	img[EI_CLASS] = ELFCLASS64;
	img[EI_DATA] = ELFDATA2MSB;
	CHECK_STREQ(reason(IMG_SIZE), "ELF file is not little-endian");
	img[EI_DATA] = ELFDATA2LSB;

	eh64()->e_machine = EM_AARCH64;
	CHECK_STREQ(reason(IMG_SIZE), "ELF file is not for x86");
	eh64()->e_machine = EM_386; /* a 64-bit header for i386 is still x86 */
	CHECK_EQ(parse(IMG_SIZE, &e), 0);
	eh64()->e_machine = EM_X86_64;

	eh64()->e_type = ET_DYN;
	CHECK_STREQ(reason(IMG_SIZE), "ELF file is not an executable");
	eh64()->e_type = ET_EXEC;

	eh64()->e_phentsize = sizeof(Elf64_Phdr) - 1;
	CHECK_STREQ(reason(IMG_SIZE), "bad ELF program header size");
	eh64()->e_phentsize = sizeof(Elf64_Phdr) + 8; /* larger entries are read at their stride */
	CHECK_EQ(parse(IMG_SIZE, &e), 0);
	eh64()->e_phentsize = sizeof(Elf64_Phdr);

	eh64()->e_phnum = 0;
	CHECK_STREQ(reason(IMG_SIZE), "ELF file has no program headers");
}

/* The program header table must lie in the file: ending exactly at the
 * end is fine, one byte more is not, and a huge e_phoff does not wrap. */
static void test_phdr_table_bounds(void)
{
	struct elf_image e;
	elf64(2);
	load64(0, SEG_OFF, 0x100000, 0x10, 0x10);
	size_t end = PH_OFF + 2 * sizeof(Elf64_Phdr);
	/* the segment's bytes must be in the file too: put them before the table */
	ph64(0)->p_offset = 0;
	CHECK_EQ(parse(end, &e), 0);
	CHECK_STREQ(reason(end - 1), "ELF program headers run past the end of the file");
	eh64()->e_phoff = IMG_SIZE - 2 * sizeof(Elf64_Phdr);
	memcpy(img + eh64()->e_phoff, img + PH_OFF, 2 * sizeof(Elf64_Phdr));
	CHECK_EQ(parse(IMG_SIZE, &e), 0);
	eh64()->e_phoff += 1;
	CHECK_STREQ(reason(IMG_SIZE), "ELF program headers run past the end of the file");
	eh64()->e_phoff = UINT64_MAX - 8;
	CHECK_STREQ(reason(IMG_SIZE), "ELF program headers run past the end of the file");
	eh64()->e_phoff = IMG_SIZE;
	CHECK_STREQ(reason(IMG_SIZE), "ELF program headers run past the end of the file");
	eh64()->e_phoff = IMG_SIZE + 1;
	CHECK_STREQ(reason(IMG_SIZE), "ELF program headers run past the end of the file");
}

/* p_offset + p_filesz against the file size, both sides, and the
 * overflow of their sum. */
static void test_segment_file_bounds(void)
{
	struct elf_image e;
	elf64(1);
	load64(0, SEG_OFF, 0x100000, IMG_SIZE - SEG_OFF, IMG_SIZE - SEG_OFF);
	CHECK_EQ(parse(IMG_SIZE, &e), 0); /* ends exactly at the end */
	ph64(0)->p_filesz = IMG_SIZE - SEG_OFF + 1;
	ph64(0)->p_memsz = ph64(0)->p_filesz;
	CHECK_STREQ(reason(IMG_SIZE), "an ELF segment runs past the end of the file (truncated image?)");
	CHECK_STREQ(reason(IMG_SIZE - 1),
		    "an ELF segment runs past the end of the file (truncated image?)");
	/* offset exactly at the end with nothing in the file: fine */
	load64(0, IMG_SIZE, 0x100000, 0, 0x1000);
	CHECK_EQ(parse(IMG_SIZE, &e), 0);
	ph64(0)->p_offset = IMG_SIZE + 1;
	CHECK_STREQ(reason(IMG_SIZE), "an ELF segment runs past the end of the file (truncated image?)");
	/* a sum that wraps to a small number */
	load64(0, SEG_OFF, 0x100000, UINT64_MAX - SEG_OFF + 2, UINT64_MAX);
	CHECK_STREQ(reason(IMG_SIZE), "an ELF segment runs past the end of the file (truncated image?)");
	load64(0, UINT64_MAX, 0x100000, 2, 2);
	CHECK_STREQ(reason(IMG_SIZE), "an ELF segment runs past the end of the file (truncated image?)");
	/* PT_NOTE is checked the same way */
	load64(0, SEG_OFF, 0x100000, 0x10, 0x10);
	eh64()->e_phnum = 2;
	*ph64(1) = (Elf64_Phdr){ .p_type = PT_NOTE, .p_offset = SEG_OFF, .p_filesz = IMG_SIZE - SEG_OFF };
	CHECK_EQ(parse(IMG_SIZE, &e), 0);
	ph64(1)->p_filesz++;
	CHECK_STREQ(reason(IMG_SIZE), "an ELF segment runs past the end of the file (truncated image?)");
	/* other segment types are not looked at, wherever they point */
	*ph64(1) = (Elf64_Phdr){ .p_type = PT_DYNAMIC, .p_offset = UINT64_MAX, .p_filesz = UINT64_MAX };
	CHECK_EQ(parse(IMG_SIZE, &e), 0);
}

/* p_memsz >= p_filesz, and p_paddr + p_memsz must not wrap. */
static void test_segment_sizes(void)
{
	struct elf_image e;
	elf64(1);
	load64(0, SEG_OFF, 0x100000, 0x100, 0x100);
	CHECK_EQ(parse(IMG_SIZE, &e), 0);
	ph64(0)->p_memsz = 0xff;
	CHECK_STREQ(reason(IMG_SIZE), "an ELF segment has an impossible size");
	load64(0, SEG_OFF, UINT64_MAX - 0x1000, 0x100, 0x1000); /* ends at UINT64_MAX */
	CHECK_EQ(parse(IMG_SIZE, &e), 0);
	CHECK_EQ(e.load_end, UINT64_MAX);
	ph64(0)->p_memsz = 0x1001; /* ends at 2^64: wraps to 0 */
	CHECK_STREQ(reason(IMG_SIZE), "an ELF segment has an impossible size");
	ph64(0)->p_memsz = UINT64_MAX;
	CHECK_STREQ(reason(IMG_SIZE), "an ELF segment has an impossible size");
}

static void test_load_range_and_nothing_to_load(void)
{
	struct elf_image e;
	elf64(3);
	load64(0, SEG_OFF, 0x200000, 0x100, 0x3000);
	load64(1, SEG_OFF + 0x100, 0x100000, 0x100, 0x100);
	*ph64(2) = (Elf64_Phdr){ .p_type = PT_NOTE, .p_offset = SEG_OFF, .p_filesz = 0 };
	CHECK_EQ(parse(IMG_SIZE, &e), 0);
	CHECK_EQ(e.load_start, 0x100000);
	CHECK_EQ(e.load_end, 0x203000);
	CHECK(!e.has_pvh);
	/* only notes and other types: nothing to load */
	ph64(0)->p_type = PT_NOTE;
	ph64(0)->p_filesz = 0;
	ph64(1)->p_type = PT_PHDR;
	CHECK_STREQ(reason(IMG_SIZE), "ELF file has nothing to load");
}

/* ---- the PVH note ---- */

/* Writes a note at @off; returns its size. */
static size_t note(size_t off, uint32_t namesz, const char *name, uint32_t descsz,
		   uint32_t type, uint64_t desc)
{
	uint32_t h[3] = { namesz, descsz, type };
	memcpy(img + off, h, 12);
	size_t n = (namesz + 3u) & ~3u, d = (descsz + 3u) & ~3u;
	size_t nl = strlen(name) + 1;
	memcpy(img + off + 12, name, namesz < nl ? namesz : nl);
	if (off + 12 + n + 8 <= IMG_SIZE) /* a huge namesz: no room, nothing to write */
		memcpy(img + off + 12 + n, &desc, descsz < 8 ? descsz : 8);
	return 12 + n + d;
}

/* Parses an image whose PT_NOTE covers @filesz bytes of the notes
 * written at 0x2000 (kept across the header rewrite). */
static int parse_note(size_t filesz, struct elf_image *e)
{
	static uint8_t notes[0x400];
	memcpy(notes, img + 0x2000, sizeof(notes));
	elf64(2);
	memcpy(img + 0x2000, notes, sizeof(notes));
	load64(0, SEG_OFF, 0x100000, 0x10, 0x10);
	*ph64(1) = (Elf64_Phdr){ .p_type = PT_NOTE, .p_offset = 0x2000, .p_filesz = filesz };
	return parse(IMG_SIZE, e);
}

static void test_pvh_note(void)
{
	struct elf_image e;
	memset(img, 0, sizeof(img));
	size_t n = note(0x2000, 4, "Xen", 4, 18, 0x1000c0);
	CHECK_EQ(n, 20);
	CHECK_EQ(parse_note(20, &e), 0);
	CHECK(e.has_pvh);
	CHECK_EQ(e.pvh_entry, 0x1000c0);
	/* the note must fit the segment: one byte short and it is not seen */
	note(0x2000, 4, "Xen", 4, 18, 0x1000c0);
	CHECK_EQ(parse_note(19, &e), 0);
	CHECK(!e.has_pvh);
	/* an 8-byte descriptor is read whole */
	note(0x2000, 4, "Xen", 8, 18, 0x1234567890ull);
	CHECK_EQ(parse_note(24, &e), 0);
	CHECK(e.has_pvh);
	CHECK_EQ(e.pvh_entry, 0x1234567890ull);
	/* a 3-byte descriptor is too short to be an entry */
	note(0x2000, 4, "Xen", 3, 18, 0x1000c0);
	CHECK_EQ(parse_note(20, &e), 0);
	CHECK(!e.has_pvh);
	/* other owners and types are skipped; a later Xen note is still found */
	size_t at = 0x2000;
	at += note(at, 4, "GNU", 4, 18, 0xdead);
	at += note(at, 4, "Xen", 4, 17, 0xbeef);
	at += note(at, 5, "Xen\0", 4, 18, 0xbad);
	at += note(at, 4, "Xen", 4, 18, 0x2000c0);
	CHECK_EQ(parse_note(at - 0x2000, &e), 0);
	CHECK(e.has_pvh);
	CHECK_EQ(e.pvh_entry, 0x2000c0);
	/* a name or descriptor size that runs past the segment ends the walk */
	memset(img + 0x2000, 0, 0x100);
	note(0x2000, 0xfffffff0u, "Xen", 4, 18, 0x1000c0);
	CHECK_EQ(parse_note(0x100, &e), 0);
	CHECK(!e.has_pvh);
	note(0x2000, 4, "Xen", 0xfffffffdu, 18, 0x1000c0);
	CHECK_EQ(parse_note(0x100, &e), 0);
	CHECK(!e.has_pvh);
	/* fewer than 12 bytes left: no header to read */
	note(0x2000, 4, "Xen", 4, 18, 0x1000c0);
	CHECK_EQ(parse_note(11, &e), 0);
	CHECK(!e.has_pvh);
	/* ... not even when those bytes end the file: an exact-size copy, so
	 * ASan sees a read past them */
	for (size_t left = 1; left < 12; left++) {
		size_t len = 0x2000 + left;
		parse_note(left, &e);
		uint8_t *copy = malloc(len);
		CHECK(copy != NULL);
		if (!copy)
			return;
		memcpy(copy, img, len);
		const char *why = NULL;
		CHECK_EQ(elf_parse(copy, len, &e, &why), 0);
		CHECK(!e.has_pvh);
		free(copy);
	}
}

/* ---- ELF32 ---- */

static void test_elf32(void)
{
	struct elf_image e;
	elf32(1);
	*ph32(0) = (Elf32_Phdr){ .p_type = PT_LOAD, .p_offset = SEG_OFF, .p_paddr = 0x100000,
				 .p_filesz = 0x100, .p_memsz = 0x200 };
	CHECK_EQ(parse(IMG_SIZE, &e), 0);
	CHECK(!e.is64);
	CHECK_EQ(e.load_end, 0x100200);
	CHECK_STREQ(reason(sizeof(Elf32_Ehdr) - 1), "ELF header truncated");
	Elf32_Ehdr *h = (Elf32_Ehdr *)img;
	h->e_phentsize = sizeof(Elf32_Phdr) - 1;
	CHECK_STREQ(reason(IMG_SIZE), "bad ELF program header size");
	h->e_phentsize = sizeof(Elf32_Phdr);
	ph32(0)->p_filesz = IMG_SIZE - SEG_OFF;
	ph32(0)->p_memsz = IMG_SIZE;
	CHECK_EQ(parse(IMG_SIZE, &e), 0);
	ph32(0)->p_filesz++;
	CHECK_STREQ(reason(IMG_SIZE), "an ELF segment runs past the end of the file (truncated image?)");
	ph32(0)->p_filesz = 0x100;
	ph32(0)->p_memsz = 0xff;
	CHECK_STREQ(reason(IMG_SIZE), "an ELF segment has an impossible size");
}

/* ---- loading ---- */

static void test_load(void)
{
	static uint8_t ram[0x10000];
	struct guest_mem m;
	memset(&m, 0, sizeof(m));
	CHECK_EQ(gmem_add_region(&m, 0x100000, sizeof(ram), ram, -1, 0), 0);
	memset(ram, 0xcc, sizeof(ram));
	elf64(3);
	memset(img + SEG_OFF, 0x5a, 0x200);
	load64(0, SEG_OFF, 0x100000, 0x100, 0x180);       /* 0x80 bytes of bss */
	load64(1, SEG_OFF + 0x100, 0x108000, 0x100, 0x100);
	load64(2, SEG_OFF, 0x10f000, 0, 0);               /* empty: skipped */
	struct elf_image e;
	const char *why = NULL;
	CHECK_EQ(parse(IMG_SIZE, &e), 0);
	CHECK_EQ(elf_load(&e, &m, &why), 0);
	for (unsigned i = 0; i < 0x100; i++)
		CHECK_EQ(ram[i], 0x5a);
	for (unsigned i = 0x100; i < 0x180; i++)
		CHECK_EQ(ram[i], 0);
	CHECK_EQ(ram[0x180], 0xcc);
	CHECK_EQ(ram[0x8000], 0x5a);
	CHECK_EQ(ram[0x80ff], 0x5a);
	CHECK_EQ(ram[0x8100], 0xcc);
	/* a segment that ends one byte past RAM is refused, and says so */
	load64(1, SEG_OFF, 0x100000 + sizeof(ram) - 0x100, 0x100, 0x101);
	CHECK_EQ(parse(IMG_SIZE, &e), 0);
	CHECK_EQ(elf_load(&e, &m, &why), -EFAULT);
	CHECK(why && strstr(why, "mem="));
	ph64(1)->p_memsz = 0x100;
	CHECK_EQ(parse(IMG_SIZE, &e), 0);
	CHECK_EQ(elf_load(&e, &m, &why), 0);
}

int main(void)
{
	RUN(test_header);
	RUN(test_phdr_table_bounds);
	RUN(test_segment_file_bounds);
	RUN(test_segment_sizes);
	RUN(test_load_range_and_nothing_to_load);
	RUN(test_pvh_note);
	RUN(test_elf32);
	RUN(test_load);
	return unit_done();
}
