/* bzImage parsing (cpu/bzimage.c) and the Linux loader (cpu/linux_boot.c)
 * over a buffer-backed guest_mem, with synthesized images; plus the real
 * Debian kernel when /boot/vmlinuz-* is readable. */
#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cpu/bzimage.h"
#include "mem/layout.h"
#include "cpu/linux_boot.h"
#include "unit.h"

#define MiB (1024ull * 1024)

static uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t le32(const uint8_t *p) { return (uint32_t)le16(p) | (uint32_t)le16(p + 2) << 16; }
static uint64_t le64(const uint8_t *p) { return le32(p) | (uint64_t)le32(p + 4) << 32; }
static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { put16(p, (uint16_t)v); put16(p + 2, (uint16_t)(v >> 16)); }
static void put64(uint8_t *p, uint64_t v) { put32(p, (uint32_t)v); put32(p + 4, (uint32_t)(v >> 32)); }

/* ---- a captured logger ------------------------------------------------ */

static struct logger lg;
static char logbuf[4096];

static void log_begin(void)
{
	log_init(&lg, LOG_WARN, "test");
	lg.fd = memfd_create("log", 0);
	CHECK(lg.fd >= 0);
}

/* The text logged since log_begin(); closes the capture. */
static const char *log_end(void)
{
	ssize_t n = pread(lg.fd, logbuf, sizeof(logbuf) - 1, 0);
	logbuf[n > 0 ? n : 0] = 0;
	close(lg.fd);
	return logbuf;
}

/* ---- synthesized bzImage ------------------------------------------------ */

#define BZ_SETUP_SECTS 4
#define BZ_KERNEL_SIZE 0x2000
#define BZ_LEN ((BZ_SETUP_SECTS + 1) * 512 + BZ_KERNEL_SIZE)

static uint8_t bz[BZ_LEN];

/* A minimal valid 2.15 bzImage: setup, then protected-mode "code" whose
 * bytes are their offset's low byte. */
static void make_bz(void)
{
	memset(bz, 0, sizeof(bz));
	bz[0x1f1] = BZ_SETUP_SECTS;
	put32(bz + 0x1f4, BZ_KERNEL_SIZE / 16);
	put16(bz + 0x1fa, 0xffff);
	put16(bz + 0x1fe, 0xaa55);
	bz[0x200] = 0xeb;
	bz[0x201] = 0x6a; /* header ends at 0x26c */
	memcpy(bz + 0x202, "HdrS", 4);
	put16(bz + 0x206, 0x020f);
	bz[0x211] = BZ_LOADED_HIGH | BZ_CAN_USE_HEAP;
	put32(bz + 0x214, 0x100000);
	put32(bz + 0x22c, 0x7fffffff);
	put32(bz + 0x230, 0x200000);
	bz[0x234] = 1;
	put16(bz + 0x236, BZ_XLF_KERNEL_64 | BZ_XLF_CAN_BE_LOADED_ABOVE_4G);
	put32(bz + 0x238, 2047);
	put32(bz + 0x248, 0x100);
	put32(bz + 0x24c, 0x1000);
	put64(bz + 0x258, 0x1000000);
	put32(bz + 0x260, 0x100000); /* init_size 1 MiB */
	bz[0x26c] = 0x77;            /* past the header: must not reach the zero page */
	for (size_t i = (BZ_SETUP_SECTS + 1) * 512; i < sizeof(bz); i++)
		bz[i] = (uint8_t)i;
}

static enum bzimage_error parse_bz(size_t len)
{
	struct bzimage_info bi;
	return bzimage_parse(bz, len, &bi);
}

static void test_parse_ok(void)
{
	make_bz();
	struct bzimage_info bi;
	CHECK_EQ(bzimage_parse(bz, sizeof(bz), &bi), BZIMAGE_OK);
	CHECK_EQ(bi.version, 0x020f);
	CHECK_EQ(bi.setup_sects, 4);
	CHECK_EQ(bi.kernel_offset, 2560);
	CHECK_EQ(bi.kernel_size, BZ_KERNEL_SIZE);
	CHECK_EQ(bi.hdr_end, 0x26c);
	CHECK(bi.relocatable);
	CHECK_EQ(bi.kernel_alignment, 0x200000);
	CHECK_EQ(bi.cmdline_size, 2047);
	CHECK_EQ(bi.initrd_addr_max, 0x7fffffff);
	CHECK_EQ(bi.pref_address, 0x1000000);
	CHECK_EQ(bi.init_size, 0x100000);
	CHECK_EQ(bi.payload_offset, 0x100);
	/* setup_sects 0 means 4 */
	bz[0x1f1] = 0;
	CHECK_EQ(bzimage_parse(bz, sizeof(bz), &bi), BZIMAGE_OK);
	CHECK_EQ(bi.setup_sects, 4);
	/* trailing bytes (a signature) are fine */
	uint8_t *big = calloc(1, sizeof(bz) + 512);
	memcpy(big, bz, sizeof(bz));
	CHECK_EQ(bzimage_parse(big, sizeof(bz) + 512, &bi), BZIMAGE_OK);
	free(big);
}

static void test_parse_errors(void)
{
	make_bz();
	CHECK_EQ(parse_bz(0), BZIMAGE_ERR_TRUNCATED_HEADER);
	CHECK_EQ(parse_bz(0x205), BZIMAGE_ERR_TRUNCATED_HEADER);
	CHECK_EQ(parse_bz(0x280), BZIMAGE_ERR_TRUNCATED_HEADER);
	CHECK_EQ(parse_bz(2559), BZIMAGE_ERR_TRUNCATED_SETUP);
	CHECK_EQ(parse_bz(2560), BZIMAGE_ERR_TRUNCATED_KERNEL);
	CHECK_EQ(parse_bz(sizeof(bz) - 1), BZIMAGE_ERR_TRUNCATED_KERNEL);

	make_bz(); bz[0x1fe] = 0;
	CHECK_EQ(parse_bz(sizeof(bz)), BZIMAGE_ERR_BAD_BOOT_FLAG);
	make_bz(); bz[0x202] = 'h';
	CHECK_EQ(parse_bz(sizeof(bz)), BZIMAGE_ERR_BAD_MAGIC);
	make_bz(); put16(bz + 0x206, 0x0205);
	CHECK_EQ(parse_bz(sizeof(bz)), BZIMAGE_ERR_OLD_PROTOCOL);
	make_bz(); put16(bz + 0x206, 0x020b); /* no xloadflags yet */
	CHECK_EQ(parse_bz(sizeof(bz)), BZIMAGE_ERR_NOT_64BIT);
	make_bz(); put16(bz + 0x236, BZ_XLF_CAN_BE_LOADED_ABOVE_4G);
	CHECK_EQ(parse_bz(sizeof(bz)), BZIMAGE_ERR_NOT_64BIT);
	make_bz(); bz[0x211] = 0;
	CHECK_EQ(parse_bz(sizeof(bz)), BZIMAGE_ERR_NOT_LOADED_HIGH);
	make_bz(); put32(bz + 0x1f4, 0);
	CHECK_EQ(parse_bz(sizeof(bz)), BZIMAGE_ERR_EMPTY_KERNEL);
	make_bz(); put32(bz + 0x1f4, 0xffffffff);
	CHECK_EQ(parse_bz(sizeof(bz)), BZIMAGE_ERR_TRUNCATED_KERNEL);
	make_bz(); bz[0x1f1] = 200; /* setup longer than the file */
	CHECK_EQ(parse_bz(sizeof(bz)), BZIMAGE_ERR_TRUNCATED_SETUP);
	make_bz(); bz[0x201] = 0x40; /* header ends before init_size */
	CHECK_EQ(parse_bz(sizeof(bz)), BZIMAGE_ERR_BAD_HEADER_END);
	make_bz(); put32(bz + 0x230, 0x300000);
	CHECK_EQ(parse_bz(sizeof(bz)), BZIMAGE_ERR_BAD_ALIGNMENT);
	make_bz(); put32(bz + 0x230, 0);
	CHECK_EQ(parse_bz(sizeof(bz)), BZIMAGE_ERR_BAD_ALIGNMENT);
	make_bz(); put32(bz + 0x260, 0);
	CHECK_EQ(parse_bz(sizeof(bz)), BZIMAGE_ERR_BAD_INIT_SIZE);
	make_bz(); put32(bz + 0x248, BZ_KERNEL_SIZE - 0x10);
	CHECK_EQ(parse_bz(sizeof(bz)), BZIMAGE_ERR_BAD_PAYLOAD);
	make_bz(); put32(bz + 0x248, 0xfffffff0); put32(bz + 0x24c, 0x20);
	CHECK_EQ(parse_bz(sizeof(bz)), BZIMAGE_ERR_BAD_PAYLOAD);

	for (int e = BZIMAGE_OK; e <= BZIMAGE_ERR_BAD_PAYLOAD; e++)
		CHECK(strcmp(bzimage_strerror(e), "unknown bzImage error") != 0);
}

/* Each limit at the last accepted and the first refused value. */
static void test_parse_boundaries(void)
{
	make_bz();
	/* the header must be in the file up to BZ_HDR_END_MAX */
	CHECK_EQ(parse_bz(BZ_HDR_END_MAX - 1), BZIMAGE_ERR_TRUNCATED_HEADER);
	CHECK_EQ(parse_bz(BZ_HDR_END_MAX), BZIMAGE_ERR_TRUNCATED_SETUP);
	/* the magic's four bytes: a file ending inside them is truncated (and
	 * is never read past: an exact-size copy for ASan) */
	for (size_t len = BZ_OFF_HEADER; len < BZ_OFF_HEADER + 4; len++) {
		uint8_t *copy = malloc(len);
		memcpy(copy, bz, len);
		struct bzimage_info bi;
		CHECK_EQ(bzimage_parse(copy, len, &bi), BZIMAGE_ERR_TRUNCATED_HEADER);
		free(copy);
	}
	/* a 2.12+ header must reach past init_size (ends at 0x264) */
	make_bz(); bz[0x201] = BZ_HDR_MIN_END - BZ_OFF_HEADER - 1;
	CHECK_EQ(parse_bz(sizeof(bz)), BZIMAGE_ERR_BAD_HEADER_END);
	bz[0x201] = BZ_HDR_MIN_END - BZ_OFF_HEADER;
	CHECK_EQ(parse_bz(sizeof(bz)), BZIMAGE_OK);
	/* the payload ends at most at the kernel's end */
	make_bz(); put32(bz + 0x248, BZ_KERNEL_SIZE - 0x1000); put32(bz + 0x24c, 0x1000);
	CHECK_EQ(parse_bz(sizeof(bz)), BZIMAGE_OK);
	put32(bz + 0x24c, 0x1001);
	CHECK_EQ(parse_bz(sizeof(bz)), BZIMAGE_ERR_BAD_PAYLOAD);
	/* the protocol versions: 2.06 parses (then lacks the 64-bit entry), 2.05
	 * does not; 2.12 has the 64-bit entry, 2.11 not */
	make_bz(); put16(bz + 0x206, BZ_MIN_VERSION);
	CHECK_EQ(parse_bz(sizeof(bz)), BZIMAGE_ERR_NOT_64BIT);
	put16(bz + 0x206, BZ_MIN_VERSION - 1);
	CHECK_EQ(parse_bz(sizeof(bz)), BZIMAGE_ERR_OLD_PROTOCOL);
	put16(bz + 0x206, BZ_MIN_VERSION_64);
	CHECK_EQ(parse_bz(sizeof(bz)), BZIMAGE_OK);
	put16(bz + 0x206, BZ_MIN_VERSION_64 - 1);
	CHECK_EQ(parse_bz(sizeof(bz)), BZIMAGE_ERR_NOT_64BIT);
	/* the kernel: exactly syssize * 16 bytes after the setup is enough */
	make_bz();
	CHECK_EQ(parse_bz(sizeof(bz)), BZIMAGE_OK);
	put32(bz + 0x1f4, BZ_KERNEL_SIZE / 16 + 1);
	CHECK_EQ(parse_bz(sizeof(bz)), BZIMAGE_ERR_TRUNCATED_KERNEL);
	put32(bz + 0x1f4, 1); /* 16 bytes: payload past it */
	CHECK_EQ(parse_bz(sizeof(bz)), BZIMAGE_ERR_BAD_PAYLOAD);
}

/* Every prefix of a valid image is rejected without reading past it. */
static void test_parse_every_truncation(void)
{
	make_bz();
	for (size_t len = 0; len < sizeof(bz); len++) {
		uint8_t *copy = malloc(len ? len : 1);
		memcpy(copy, bz, len);
		struct bzimage_info bi;
		CHECK(bzimage_parse(copy, len, &bi) != BZIMAGE_OK);
		free(copy);
	}
}

/* ---- the loader ----------------------------------------------------------- */

struct vm {
	struct guest_mem m;
	uint8_t *ram;
	size_t size;
};

static void vm_init(struct vm *v, size_t size)
{
	memset(v, 0, sizeof(*v));
	v->size = size;
	v->ram = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(v->ram != MAP_FAILED);
	memset(v->ram + LAYOUT_ZERO_PAGE, 0xcc, ZP_SIZE);
	CHECK_EQ(gmem_add_region(&v->m, 0, size, v->ram, -1, 0), 0);
}

static void vm_free(struct vm *v)
{
	munmap(v->ram, v->size);
}

static const struct e820_entry e820_32m[] = {
	{ 0, 0x9fc00, E820_RAM },
	{ 0x9fc00, 0x100000 - 0x9fc00, E820_RESERVED },
	{ 0x100000, 32 * MiB - 0x100000, E820_RAM },
};

static uint8_t initrd[300000];

static struct linux_boot_params bz_params(void)
{
	for (size_t i = 0; i < sizeof(initrd); i++)
		initrd[i] = (uint8_t)(i * 7);
	return (struct linux_boot_params){
		.kernel = bz, .kernel_len = sizeof(bz),
		.initrd = initrd, .initrd_len = sizeof(initrd),
		.cmdline = "console=ttyS0 kvmrun.test=poweroff",
		.e820 = e820_32m, .nr_e820 = 3, .rsdp_gpa = LAYOUT_ACPI,
	};
}

static void test_load_bzimage(void)
{
	struct vm v;
	vm_init(&v, 32 * MiB);
	make_bz();
	struct linux_boot_params p = bz_params();
	struct boot_entry e = {0};
	log_begin();
	lg.level = LOG_INFO;
	CHECK_EQ(linux_boot_load(&v.m, &p, &e, &lg), 0);
	log_end();
	CHECK_EQ(e.mode, BOOT_LINUX64);
	CHECK_EQ(e.entry, 0x1000000 + 0x200);
	CHECK_EQ(e.arg, LAYOUT_ZERO_PAGE);

	/* the protected-mode kernel at pref_address */
	CHECK(memcmp(v.ram + 0x1000000, bz + 2560, BZ_KERNEL_SIZE) == 0);

	const uint8_t *zp = v.ram + LAYOUT_ZERO_PAGE;
	CHECK_EQ(le16(zp + 0x1fe), 0xaa55);
	CHECK(memcmp(zp + 0x202, "HdrS", 4) == 0);
	CHECK_EQ(le16(zp + 0x206), 0x020f);
	CHECK_EQ(zp[0x210], 0xff);
	CHECK_EQ(zp[0x211] & BZ_LOADED_HIGH, BZ_LOADED_HIGH);
	CHECK_EQ(zp[0x211] & BZ_CAN_USE_HEAP, 0);
	CHECK_EQ(le32(zp + 0x228), LAYOUT_CMDLINE);
	CHECK_EQ(le32(zp + 0x238), 2047);            /* copied from the file */
	CHECK_EQ(le64(zp + 0x258), 0x1000000);
	CHECK_EQ(zp[0x26c], 0);                       /* beyond the header: not copied */
	CHECK_EQ(zp[0x1ef], 0);                       /* sentinel */
	CHECK_EQ(le64(zp + ZP_ACPI_RSDP_ADDR), LAYOUT_ACPI);
	CHECK(le16(zp) == 0);                         /* the rest is zero */
	CHECK_STREQ((const char *)v.ram + LAYOUT_CMDLINE, "console=ttyS0 kvmrun.test=poweroff");

	/* e820 */
	CHECK_EQ(zp[ZP_E820_ENTRIES], 3);
	for (unsigned i = 0; i < 3; i++) {
		const uint8_t *ent = zp + ZP_E820_TABLE + 20 * i;
		CHECK_EQ(le64(ent), e820_32m[i].addr);
		CHECK_EQ(le64(ent + 8), e820_32m[i].size);
		CHECK_EQ(le32(ent + 16), e820_32m[i].type);
	}
	CHECK_EQ(le32(zp + ZP_E820_TABLE + 60 + 16), 0);

	/* initrd: highest 4 KiB-aligned spot below the top of RAM */
	uint64_t ird = le32(zp + 0x218) | (uint64_t)le32(zp + ZP_EXT_RAMDISK_IMAGE) << 32;
	uint64_t irs = le32(zp + 0x21c) | (uint64_t)le32(zp + ZP_EXT_RAMDISK_SIZE) << 32;
	CHECK_EQ(irs, sizeof(initrd));
	CHECK_EQ(ird % 4096, 0);
	CHECK(ird + irs <= 32 * MiB);
	CHECK(ird + irs + 4096 > 32 * MiB);
	CHECK(ird >= 0x1000000 + 0x100000);           /* above init_size */
	CHECK(memcmp(v.ram + ird, initrd, sizeof(initrd)) == 0);
	vm_free(&v);
}

static void test_load_bzimage_placement(void)
{
	struct vm v;
	struct boot_entry e;
	struct linux_boot_params p;

	/* 16 MiB of RAM: [pref_address, +init_size) does not fit */
	vm_init(&v, 16 * MiB);
	make_bz();
	p = bz_params();
	log_begin();
	CHECK_EQ(linux_boot_load(&v.m, &p, &e, &lg), -EINVAL);
	CHECK(strstr(log_end(), "more memory") != NULL);

	/* a low pref_address is raised to 1 MiB, then aligned (2 MiB) */
	put64(bz + 0x258, 0x80000);
	log_begin();
	CHECK_EQ(linux_boot_load(&v.m, &p, &e, &lg), 0);
	log_end();
	CHECK_EQ(e.entry, 0x200000 + 0x200);
	CHECK(memcmp(v.ram + 0x200000, bz + 2560, BZ_KERNEL_SIZE) == 0);
	const uint8_t *zp = v.ram + LAYOUT_ZERO_PAGE;
	CHECK_EQ(le32(zp + 0x214), 0x200000);          /* code32_start */
	CHECK(le32(zp + 0x218) + sizeof(initrd) <= 16 * MiB);
	/* an unaligned one is aligned up */
	put64(bz + 0x258, 0x500000);
	log_begin();
	CHECK_EQ(linux_boot_load(&v.m, &p, &e, &lg), 0);
	log_end();
	CHECK_EQ(e.entry, 0x600000 + 0x200);
	put64(bz + 0x258, 0x200000);

	/* initrd_addr_max caps the initrd's end (inclusive) */
	put32(bz + 0x22c, 0x00800000 - 1);
	log_begin();
	CHECK_EQ(linux_boot_load(&v.m, &p, &e, &lg), 0);
	log_end();
	uint32_t ird = le32(zp + 0x218);
	CHECK(ird + sizeof(initrd) <= 0x00800000);
	CHECK(ird + sizeof(initrd) + 4096 > 0x00800000);
	CHECK_EQ(ird % 4096, 0);

	/* ... and when that leaves no room above the kernel, say so */
	put32(bz + 0x22c, 0x00300000 - 1);
	log_begin();
	CHECK_EQ(linux_boot_load(&v.m, &p, &e, &lg), -EINVAL);
	CHECK(strstr(log_end(), "initrd") != NULL);

	/* a non-relocatable kernel must sit at pref_address, unaligned or not */
	make_bz();
	bz[0x234] = 0;
	log_begin();
	CHECK_EQ(linux_boot_load(&v.m, &p, &e, &lg), -EINVAL);
	CHECK(strstr(log_end(), "not relocatable") != NULL);
	put64(bz + 0x258, 0x400000);
	log_begin();
	CHECK_EQ(linux_boot_load(&v.m, &p, &e, &lg), 0);
	log_end();
	CHECK_EQ(e.entry, 0x400000 + 0x200);
	vm_free(&v);
}

static void test_load_errors(void)
{
	struct vm v;
	struct boot_entry e = { .entry = 0x1234 };
	struct linux_boot_params p;
	vm_init(&v, 32 * MiB);

	/* init_size larger than RAM */
	make_bz();
	put32(bz + 0x260, 17 * MiB);
	p = bz_params();
	log_begin();
	CHECK_EQ(linux_boot_load(&v.m, &p, &e, &lg), -EINVAL);
	CHECK(strstr(log_end(), "init_size") != NULL);

	/* initrd larger than RAM */
	make_bz();
	static uint8_t huge_initrd[1];
	p.initrd = huge_initrd;
	p.initrd_len = 16 * MiB;
	log_begin();
	CHECK_EQ(linux_boot_load(&v.m, &p, &e, &lg), -EINVAL);
	CHECK(strstr(log_end(), "initrd of") != NULL);

	/* cmdline: cmdline_size counts characters without the NUL */
	p = bz_params();
	char *cl = malloc(LAYOUT_CMDLINE_MAX + 10);
	memset(cl, 'a', LAYOUT_CMDLINE_MAX + 9);
	cl[LAYOUT_CMDLINE_MAX + 9] = 0;
	cl[2047] = 0;
	p.cmdline = cl;
	log_begin();
	CHECK_EQ(linux_boot_load(&v.m, &p, &e, &lg), 0);
	log_end();
	cl[2047] = 'a';
	cl[2048] = 0;
	log_begin();
	CHECK_EQ(linux_boot_load(&v.m, &p, &e, &lg), -EINVAL);
	CHECK(strstr(log_end(), "command line is 2048 bytes") != NULL);
	/* a kernel accepting more than the cmdline area still gets the area's limit */
	put32(bz + 0x238, 0xffffffff);
	cl[2048] = 'a';
	cl[LAYOUT_CMDLINE_MAX] = 0;
	log_begin();
	CHECK_EQ(linux_boot_load(&v.m, &p, &e, &lg), -EINVAL);
	CHECK(strstr(log_end(), "command line") != NULL);
	cl[LAYOUT_CMDLINE_MAX - 1] = 0;
	log_begin();
	CHECK_EQ(linux_boot_load(&v.m, &p, &e, &lg), 0);
	log_end();
	free(cl);

	e.entry = 0x1234;
	/* a malformed image: the bzImage error is named */
	memset(v.ram + LAYOUT_ZERO_PAGE, 0xcc, ZP_SIZE);
	make_bz();
	put16(bz + 0x236, 0);
	p = bz_params();
	log_begin();
	CHECK_EQ(linux_boot_load(&v.m, &p, &e, &lg), -EINVAL);
	CHECK(strstr(log_end(), "64-bit") != NULL);
	CHECK_EQ(v.ram[LAYOUT_ZERO_PAGE], 0xcc);         /* nothing written */
	CHECK_EQ(e.entry, 0x1234);

	/* truncated */
	make_bz();
	p.kernel_len = 3000;
	log_begin();
	CHECK_EQ(linux_boot_load(&v.m, &p, &e, &lg), -EINVAL);
	CHECK(strstr(log_end(), "syssize") != NULL);

	/* neither format */
	static const uint8_t junk[4096] = { 1, 2, 3 };
	p.kernel = junk;
	p.kernel_len = sizeof(junk);
	log_begin();
	CHECK_EQ(linux_boot_load(&v.m, &p, &e, &lg), -EINVAL);
	CHECK(strstr(log_end(), "neither") != NULL);
	p.kernel_len = 0;
	log_begin();
	CHECK_EQ(linux_boot_load(&v.m, &p, &e, &lg), -EINVAL);
	log_end();

	/* e820 */
	p = bz_params();
	p.nr_e820 = 0;
	log_begin();
	CHECK_EQ(linux_boot_load(&v.m, &p, &e, &lg), -EINVAL);
	CHECK(strstr(log_end(), "e820") != NULL);
	p.nr_e820 = LINUX_BOOT_E820_MAX + 1;
	log_begin();
	CHECK_EQ(linux_boot_load(&v.m, &p, &e, &lg), -EINVAL);
	log_end();
	CHECK_EQ(v.ram[LAYOUT_ZERO_PAGE], 0xcc);
	vm_free(&v);
}

static void test_e820_max(void)
{
	struct vm v;
	vm_init(&v, 32 * MiB);
	make_bz();
	struct e820_entry map[LINUX_BOOT_E820_MAX];
	for (unsigned i = 0; i < LINUX_BOOT_E820_MAX; i++)
		map[i] = (struct e820_entry){ i * 0x1000ull, 0x1000, 1 + i % 4 };
	struct linux_boot_params p = bz_params();
	p.e820 = map;
	p.nr_e820 = LINUX_BOOT_E820_MAX;
	struct boot_entry e;
	log_begin();
	CHECK_EQ(linux_boot_load(&v.m, &p, &e, &lg), 0);
	log_end();
	const uint8_t *zp = v.ram + LAYOUT_ZERO_PAGE;
	CHECK_EQ(zp[ZP_E820_ENTRIES], LINUX_BOOT_E820_MAX);
	const uint8_t *last = zp + ZP_E820_TABLE + 20 * (LINUX_BOOT_E820_MAX - 1);
	CHECK_EQ(le64(last), (LINUX_BOOT_E820_MAX - 1) * 0x1000ull);
	CHECK_EQ(le32(last + 16), 1 + (LINUX_BOOT_E820_MAX - 1) % 4);
	CHECK(last + 20 <= zp + ZP_SIZE);
	vm_free(&v);
}

static void test_kind(void)
{
	make_bz();
	CHECK_EQ(linux_boot_kind(bz, sizeof(bz)), LINUX_BOOT_BZIMAGE);
	CHECK_EQ(linux_boot_kind(bz, 0x205), LINUX_BOOT_UNKNOWN);
	CHECK_EQ(linux_boot_kind("\177ELF", 4), LINUX_BOOT_ELF);
	CHECK_EQ(linux_boot_kind("\177EL", 3), LINUX_BOOT_UNKNOWN);
	CHECK_EQ(linux_boot_kind("", 0), LINUX_BOOT_UNKNOWN);
}

/* ---- synthesized vmlinux --------------------------------------------------- */

#define KVADDR 0xffffffff81000000ull
#define KPADDR 0x1000000ull

static uint8_t elf[0x3000];

/* Two PT_LOAD segments as a vmlinux has them (virtual addresses in the
 * kernel map, physical from 16 MiB), the second with bss. */
static void make_elf(void)
{
	memset(elf, 0, sizeof(elf));
	Elf64_Ehdr eh = {
		.e_ident = { ELFMAG0, ELFMAG1, ELFMAG2, ELFMAG3, ELFCLASS64, ELFDATA2LSB, EV_CURRENT },
		.e_type = ET_EXEC, .e_machine = EM_X86_64, .e_version = EV_CURRENT,
		.e_entry = KVADDR + 0x40, .e_phoff = sizeof(Elf64_Ehdr),
		.e_ehsize = sizeof(Elf64_Ehdr), .e_phentsize = sizeof(Elf64_Phdr), .e_phnum = 3,
	};
	Elf64_Phdr ph[3] = {
		{ .p_type = PT_LOAD, .p_offset = 0x1000, .p_vaddr = KVADDR, .p_paddr = KPADDR,
		  .p_filesz = 0x1000, .p_memsz = 0x1000, .p_flags = PF_R | PF_X },
		{ .p_type = PT_NOTE, .p_offset = 0x100, .p_filesz = 0x10 },
		{ .p_type = PT_LOAD, .p_offset = 0x2000, .p_vaddr = KVADDR + 0x200000,
		  .p_paddr = KPADDR + 0x200000, .p_filesz = 0x800, .p_memsz = 0x3000,
		  .p_flags = PF_R | PF_W },
	};
	memcpy(elf, &eh, sizeof(eh));
	memcpy(elf + sizeof(eh), ph, sizeof(ph));
	memset(elf + 0x1000, 0x90, 0x1000);
	memset(elf + 0x2000, 0x5a, 0x1000);
}

static Elf64_Ehdr *elf_eh(void) { return (Elf64_Ehdr *)elf; }
static Elf64_Phdr *elf_ph(unsigned i) { return (Elf64_Phdr *)(elf + sizeof(Elf64_Ehdr)) + i; }

static struct linux_boot_params elf_params(void)
{
	struct linux_boot_params p = bz_params();
	p.kernel = elf;
	p.kernel_len = sizeof(elf);
	return p;
}

static void test_load_vmlinux(void)
{
	struct vm v;
	vm_init(&v, 32 * MiB);
	memset(v.ram + KPADDR + 0x200000, 0xee, 0x3000);
	make_elf();
	struct linux_boot_params p = elf_params();
	struct boot_entry e;
	log_begin();
	CHECK_EQ(linux_boot_load(&v.m, &p, &e, &lg), 0);
	log_end();
	CHECK_EQ(e.mode, BOOT_LINUX64);
	CHECK_EQ(e.entry, KPADDR + 0x40);
	CHECK_EQ(e.arg, LAYOUT_ZERO_PAGE);
	CHECK(memcmp(v.ram + KPADDR, elf + 0x1000, 0x1000) == 0);
	CHECK(memcmp(v.ram + KPADDR + 0x200000, elf + 0x2000, 0x800) == 0);
	CHECK_EQ(v.ram[KPADDR + 0x200800], 0);          /* bss cleared */
	CHECK_EQ(v.ram[KPADDR + 0x202fff], 0);

	const uint8_t *zp = v.ram + LAYOUT_ZERO_PAGE;
	CHECK_EQ(le16(zp + 0x1fe), 0xaa55);
	CHECK(memcmp(zp + 0x202, "HdrS", 4) == 0);
	CHECK_EQ(le16(zp + 0x206), LINUX_BOOT_VMLINUX_VERSION);
	CHECK_EQ(zp[0x210], 0xff);
	CHECK_EQ(zp[0x211], BZ_LOADED_HIGH);
	CHECK_EQ(le32(zp + 0x228), LAYOUT_CMDLINE);
	CHECK_EQ(le64(zp + ZP_ACPI_RSDP_ADDR), LAYOUT_ACPI);
	CHECK_EQ(zp[ZP_E820_ENTRIES], 3);
	CHECK_EQ(le64(zp + ZP_E820_TABLE + 40), 0x100000);
	CHECK_STREQ((const char *)v.ram + LAYOUT_CMDLINE, "console=ttyS0 kvmrun.test=poweroff");
	uint32_t ird = le32(zp + 0x218);
	CHECK_EQ(ird % 4096, 0);
	CHECK(ird >= KPADDR + 0x203000);
	CHECK(ird + sizeof(initrd) <= 32 * MiB);
	CHECK_EQ(le32(zp + 0x21c), sizeof(initrd));
	CHECK(memcmp(v.ram + ird, initrd, sizeof(initrd)) == 0);

	/* the cmdline limit of x86 (2047 characters) applies */
	char *cl = malloc(2049);
	memset(cl, 'b', 2048);
	cl[2048] = 0;
	p.cmdline = cl;
	log_begin();
	CHECK_EQ(linux_boot_load(&v.m, &p, &e, &lg), -EINVAL);
	CHECK(strstr(log_end(), "command line") != NULL);
	free(cl);
	vm_free(&v);
}

static void expect_elf_error(struct vm *v, const char *what)
{
	struct linux_boot_params p = elf_params();
	struct boot_entry e;
	log_begin();
	CHECK_EQ(linux_boot_load(&v->m, &p, &e, &lg), -EINVAL);
	const char *text = log_end();
	if (!strstr(text, what)) {
		fprintf(stderr, "  wanted \"%s\" in: %s\n", what, text);
		CHECK(!"log line names the problem");
	}
}

static void test_vmlinux_errors(void)
{
	struct vm v;
	vm_init(&v, 32 * MiB);
	struct linux_boot_params p;
	struct boot_entry e;

	make_elf();
	p = elf_params();
	p.kernel_len = 40;
	log_begin();
	CHECK_EQ(linux_boot_load(&v.m, &p, &e, &lg), -EINVAL);
	CHECK(strstr(log_end(), "truncated") != NULL);

	make_elf(); elf[EI_CLASS] = ELFCLASS32;
	expect_elf_error(&v, "ELF64");
	make_elf(); elf_eh()->e_machine = EM_386;
	expect_elf_error(&v, "x86-64");
	make_elf(); elf_eh()->e_type = ET_DYN;
	expect_elf_error(&v, "not an executable");
	make_elf(); elf_eh()->e_phentsize = 32;
	expect_elf_error(&v, "program header table");
	make_elf(); elf_eh()->e_phnum = 0;
	expect_elf_error(&v, "program header table");
	make_elf(); elf_eh()->e_phoff = sizeof(elf) - 8;
	expect_elf_error(&v, "past the end");
	make_elf(); elf_eh()->e_phoff = UINT64_MAX - 8;
	expect_elf_error(&v, "past the end");
	make_elf(); elf_ph(2)->p_filesz = 0x2000;
	expect_elf_error(&v, "segment 2 lies past the end");
	make_elf(); elf_ph(2)->p_offset = UINT64_MAX - 0x100;
	expect_elf_error(&v, "segment 2 lies past the end");
	make_elf(); elf_ph(2)->p_filesz = 0x4000; elf_ph(2)->p_memsz = 0x3000;
	expect_elf_error(&v, "segment 2");
	make_elf(); elf_ph(0)->p_paddr = 64 * MiB;
	expect_elf_error(&v, "segment 0");
	make_elf(); elf_ph(0)->p_paddr = 0x8000; /* over the boot data */
	expect_elf_error(&v, "segment 0");
	make_elf(); elf_ph(2)->p_paddr = UINT64_MAX - 0x1000;
	expect_elf_error(&v, "segment 2");
	make_elf(); elf_eh()->e_entry = 0x1234;
	expect_elf_error(&v, "entry");
	make_elf(); elf_ph(0)->p_type = PT_NULL; elf_ph(2)->p_type = PT_NOTE;
	expect_elf_error(&v, "no loadable segment");

	/* an initrd that does not fit above the kernel */
	make_elf();
	p = elf_params();
	static uint8_t one[1];
	p.initrd = one;
	p.initrd_len = 32 * MiB - (KPADDR + 0x203000) + 1;
	log_begin();
	CHECK_EQ(linux_boot_load(&v.m, &p, &e, &lg), -EINVAL);
	CHECK(strstr(log_end(), "initrd") != NULL);
	p.initrd_len = 32 * MiB - (KPADDR + 0x203000);
	uint8_t *big = calloc(1, p.initrd_len);
	p.initrd = big;
	log_begin();
	CHECK_EQ(linux_boot_load(&v.m, &p, &e, &lg), 0);
	log_end();
	CHECK_EQ(le32(v.ram + LAYOUT_ZERO_PAGE + 0x218), KPADDR + 0x203000);
	free(big);
	vm_free(&v);
}

/* ---- the real Debian kernel ---------------------------------------------- */

static uint8_t *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	uint8_t *buf = NULL;
	size_t cap = 0, n = 0;
	for (;;) {
		if (n == cap) {
			cap = cap ? cap * 2 : 1 << 20;
			uint8_t *nb = realloc(buf, cap);
			if (!nb)
				break;
			buf = nb;
		}
		size_t got = fread(buf + n, 1, cap - n, f);
		if (got == 0)
			break;
		n += got;
	}
	fclose(f);
	*len = n;
	return buf;
}

static void test_real_kernel(void)
{
	char path[512] = "";
	DIR *d = opendir("/boot");
	struct dirent *de;
	while (d && (de = readdir(d))) {
		if (strncmp(de->d_name, "vmlinuz-", 8) == 0) {
			snprintf(path, sizeof(path), "/boot/%s", de->d_name);
			if (access(path, R_OK) == 0)
				break;
			path[0] = 0;
		}
	}
	if (d)
		closedir(d);
	if (!path[0]) {
		printf("SKIP test_real_kernel: no readable /boot/vmlinuz-* "
		       "(apt-get install linux-image-cloud-amd64)\n");
		return;
	}
	size_t len = 0;
	uint8_t *k = read_file(path, &len);
	CHECK(k != NULL);
	if (!k)
		return;
	struct bzimage_info bi;
	enum bzimage_error err = bzimage_parse(k, len, &bi);
	CHECK_EQ(err, BZIMAGE_OK);
	if (err == BZIMAGE_OK) {
		printf("%s: protocol %x, setup %u sectors, kernel %zu bytes, init_size %#x, "
		       "pref %#llx, align %#x, xloadflags %#x\n", path, bi.version,
		       bi.setup_sects, bi.kernel_size, bi.init_size,
		       (unsigned long long)bi.pref_address, bi.kernel_alignment, bi.xloadflags);
		CHECK(bi.version >= 0x020f);
		CHECK(bi.relocatable);
		CHECK(bi.xloadflags & BZ_XLF_KERNEL_64);
		CHECK(bi.cmdline_size >= 255);
	}

	struct vm v;
	vm_init(&v, 256 * MiB);
	struct e820_entry map[] = {
		{ 0, 0x9fc00, E820_RAM },
		{ 0x100000, 255 * MiB, E820_RAM },
	};
	struct linux_boot_params p = {
		.kernel = k, .kernel_len = len, .initrd = initrd, .initrd_len = sizeof(initrd),
		.cmdline = "console=ttyS0", .e820 = map, .nr_e820 = 2, .rsdp_gpa = LAYOUT_ACPI,
	};
	struct boot_entry e;
	log_begin();
	CHECK_EQ(linux_boot_load(&v.m, &p, &e, &lg), 0);
	log_end();
	CHECK_EQ(e.entry, bi.pref_address + 0x200);
	const uint8_t *zp = v.ram + LAYOUT_ZERO_PAGE;
	CHECK(memcmp(zp + 0x1f1, k + 0x1f1, 0x210 - 0x1f1) == 0);
	CHECK(memcmp(v.ram + bi.pref_address, k + bi.kernel_offset, bi.kernel_size) == 0);
	CHECK(le32(zp + 0x218) >= bi.pref_address + bi.init_size);

	/* too little RAM for init_size: a clear error */
	vm_free(&v);
	vm_init(&v, 48 * MiB);
	log_begin();
	CHECK_EQ(linux_boot_load(&v.m, &p, &e, &lg), -EINVAL);
	CHECK(strstr(log_end(), "more memory") != NULL);
	vm_free(&v);
	free(k);
}

int main(void)
{
	RUN(test_parse_ok);
	RUN(test_parse_errors);
	RUN(test_parse_boundaries);
	RUN(test_parse_every_truncation);
	RUN(test_kind);
	RUN(test_load_bzimage);
	RUN(test_load_bzimage_placement);
	RUN(test_load_errors);
	RUN(test_e820_max);
	RUN(test_load_vmlinux);
	RUN(test_vmlinux_errors);
	RUN(test_real_kernel);
	return unit_done();
}
