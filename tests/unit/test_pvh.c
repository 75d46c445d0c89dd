/* The PVH boot protocol (cpu/pvh.c): what a PVH kernel finds in guest RAM
 * (start_info, memory map, command line, the initrd as module 0), where the
 * initrd goes, and the limits a config or image can break: no PVH note, a
 * kernel below 1 MiB, an over-long command line, an initrd that does not
 * fit above the kernel. Each limit is tested on both sides. */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "cpu/e820.h"
#include "mem/layout.h"
#include "cpu/pvh.h"
#include "fake_platform.h"
#include "unit.h"

#define RAM_SIZE (16u << 20)
#define KERNEL_PADDR 0x100000u

static uint8_t image[0x2000];

struct env {
	struct guest_mem mem;
	uint8_t *ram;
	struct logger lg;
	struct elf_image elf;
	struct e820_entry e820[E820_MAX];
	unsigned nr_e820;
	struct pvh_params p;
};

/* A PVH ELF with one 4 KiB PT_LOAD at @paddr (bss up to @memsz) and the
 * PVH entry note. */
static void make_image(uint64_t paddr, uint64_t memsz)
{
	memset(image, 0, sizeof(image));
	Elf64_Ehdr h = {
		.e_ident = { ELFMAG0, ELFMAG1, ELFMAG2, ELFMAG3, ELFCLASS64, ELFDATA2LSB, EV_CURRENT },
		.e_type = ET_EXEC, .e_machine = EM_X86_64, .e_version = EV_CURRENT,
		.e_phoff = sizeof(Elf64_Ehdr), .e_phentsize = sizeof(Elf64_Phdr), .e_phnum = 2,
	};
	Elf64_Phdr ph[2] = {
		{ .p_type = PT_LOAD, .p_offset = 0x1000, .p_paddr = paddr, .p_filesz = 0x1000,
		  .p_memsz = memsz },
		{ .p_type = PT_NOTE, .p_offset = 0x200, .p_filesz = 20 },
	};
	memcpy(image, &h, sizeof(h));
	memcpy(image + sizeof(h), ph, sizeof(ph));
	uint32_t note[5] = { 4, 4, 18, 0, (uint32_t)paddr + 0x40 };
	memcpy(note + 3, "Xen", 4);
	memcpy(image + 0x200, note, sizeof(note));
	memset(image + 0x1000, 0x90, 0x1000);
}

static void env_init(struct env *e, uint64_t paddr, uint64_t memsz)
{
	memset(e, 0, sizeof(*e));
	e->ram = fake_ram_create(&e->mem, RAM_SIZE);
	log_init(&e->lg, LOG_ERROR, "test");
	e->lg.fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	make_image(paddr, memsz);
	const char *why = NULL;
	CHECK_EQ(elf_parse(image, sizeof(image), &e->elf, &why), 0);
	CHECK(e->elf.has_pvh);
	e->nr_e820 = e820_build(&e->mem, e->e820);
	e->p = (struct pvh_params){ .elf = &e->elf, .cmdline = "console=ttyS0",
				    .e820 = e->e820, .nr_e820 = e->nr_e820, .rsdp_gpa = 0xe0000 };
}

static void env_fini(struct env *e)
{
	close(e->lg.fd);
	fake_ram_destroy(e->ram, RAM_SIZE);
}

static struct hvm_start_info start_info(struct env *e)
{
	struct hvm_start_info si;
	memcpy(&si, e->ram + LAYOUT_START_INFO, sizeof(si));
	return si;
}

static void test_load(void)
{
	struct env e;
	env_init(&e, KERNEL_PADDR, 0x3000);
	memset(e.ram + KERNEL_PADDR + 0x1000, 0xcc, 0x2000); /* bss to be zeroed */
	struct boot_entry b;
	CHECK_EQ(pvh_load(&e.mem, &e.p, &b, &e.lg), 0);
	CHECK_EQ(b.mode, BOOT_PVH32);
	CHECK_EQ(b.entry, KERNEL_PADDR + 0x40);
	CHECK_EQ(b.arg, LAYOUT_START_INFO);
	CHECK_EQ(e.ram[KERNEL_PADDR], 0x90);
	CHECK_EQ(e.ram[KERNEL_PADDR + 0xfff], 0x90);
	CHECK_EQ(e.ram[KERNEL_PADDR + 0x1000], 0);
	CHECK_EQ(e.ram[KERNEL_PADDR + 0x2fff], 0);

	struct hvm_start_info si = start_info(&e);
	CHECK_EQ(si.magic, 0x336ec578u);
	CHECK_EQ(si.version, 1);
	CHECK_EQ(si.nr_modules, 0);
	CHECK_EQ(si.rsdp_paddr, 0xe0000);
	CHECK_EQ(si.cmdline_paddr, LAYOUT_CMDLINE);
	CHECK_STREQ((const char *)e.ram + LAYOUT_CMDLINE, "console=ttyS0");
	CHECK_EQ(si.memmap_entries, e.nr_e820);
	for (unsigned i = 0; i < e.nr_e820; i++) {
		struct hvm_memmap_entry m;
		memcpy(&m, e.ram + si.memmap_paddr + i * sizeof(m), sizeof(m));
		CHECK_EQ(m.addr, e.e820[i].addr);
		CHECK_EQ(m.size, e.e820[i].size);
		CHECK_EQ(m.type, e.e820[i].type);
	}
	/* no command line: an empty string */
	e.p.cmdline = NULL;
	CHECK_EQ(pvh_load(&e.mem, &e.p, &b, &e.lg), 0);
	CHECK_STREQ((const char *)e.ram + LAYOUT_CMDLINE, "");
	env_fini(&e);
}

static void test_refuses(void)
{
	struct env e;
	struct boot_entry b;
	/* a kernel that loads below 1 MiB would overwrite the boot data */
	env_init(&e, LAYOUT_HIGH_MEM - 0x1000, 0x1000);
	CHECK_EQ(pvh_load(&e.mem, &e.p, &b, &e.lg), -EINVAL);
	env_fini(&e);
	env_init(&e, LAYOUT_HIGH_MEM, 0x1000);
	CHECK_EQ(pvh_load(&e.mem, &e.p, &b, &e.lg), 0);
	/* without the note there is no PVH entry */
	e.elf.has_pvh = false;
	CHECK_EQ(pvh_load(&e.mem, &e.p, &b, &e.lg), -EINVAL);
	env_fini(&e);
	/* a kernel that ends past RAM */
	env_init(&e, RAM_SIZE - 0x1000, 0x1001);
	CHECK_EQ(pvh_load(&e.mem, &e.p, &b, &e.lg), -EFAULT);
	env_fini(&e);
	env_init(&e, RAM_SIZE - 0x1000, 0x1000);
	CHECK_EQ(pvh_load(&e.mem, &e.p, &b, &e.lg), 0);
	env_fini(&e);
}

/* The command line takes up to LAYOUT_CMDLINE_MAX - 1 bytes and its NUL. */
static void test_cmdline_limit(void)
{
	static char line[LAYOUT_CMDLINE_MAX + 1];
	struct env e;
	struct boot_entry b;
	env_init(&e, KERNEL_PADDR, 0x1000);
	memset(line, 'x', LAYOUT_CMDLINE_MAX - 1);
	line[LAYOUT_CMDLINE_MAX - 1] = '\0';
	e.p.cmdline = line;
	CHECK_EQ(pvh_load(&e.mem, &e.p, &b, &e.lg), 0);
	CHECK_EQ(strlen((const char *)e.ram + LAYOUT_CMDLINE), LAYOUT_CMDLINE_MAX - 1);
	line[LAYOUT_CMDLINE_MAX - 1] = 'x';
	line[LAYOUT_CMDLINE_MAX] = '\0';
	CHECK_EQ(pvh_load(&e.mem, &e.p, &b, &e.lg), -EINVAL);
	env_fini(&e);
}

/* The initrd goes page-aligned at the top of low RAM, above the kernel,
 * and is module 0; one that does not fit above the kernel is refused. */
static void test_initrd(void)
{
	static uint8_t rd[0x2800];
	memset(rd, 0xa7, sizeof(rd));
	struct env e;
	struct boot_entry b;
	env_init(&e, KERNEL_PADDR, 0x1000);
	e.p.initrd = rd;
	e.p.initrd_len = sizeof(rd);
	CHECK_EQ(pvh_load(&e.mem, &e.p, &b, &e.lg), 0);
	struct hvm_start_info si = start_info(&e);
	CHECK_EQ(si.nr_modules, 1);
	struct hvm_modlist_entry mod;
	memcpy(&mod, e.ram + si.modlist_paddr, sizeof(mod));
	CHECK_EQ(mod.size, sizeof(rd));
	CHECK_EQ(mod.paddr % 4096, 0);
	CHECK_EQ(mod.paddr, (RAM_SIZE - sizeof(rd)) & ~0xfffull);
	CHECK(mod.paddr + mod.size <= RAM_SIZE);
	CHECK(memcmp(e.ram + mod.paddr, rd, sizeof(rd)) == 0);
	env_fini(&e);

	/* exactly the room between the kernel's end and the top of RAM */
	static uint8_t big[RAM_SIZE - KERNEL_PADDR - 0x1000 + 0x1000];
	env_init(&e, KERNEL_PADDR, 0x1000);
	e.p.initrd = big;
	e.p.initrd_len = RAM_SIZE - (KERNEL_PADDR + 0x1000);
	CHECK_EQ(pvh_load(&e.mem, &e.p, &b, &e.lg), 0);
	memcpy(&mod, e.ram + start_info(&e).modlist_paddr, sizeof(mod));
	CHECK_EQ(mod.paddr, KERNEL_PADDR + 0x1000);
	/* one page more would overlap the kernel */
	e.p.initrd_len += 0x1000;
	CHECK_EQ(pvh_load(&e.mem, &e.p, &b, &e.lg), -ENOSPC);
	/* more than all of RAM */
	e.p.initrd_len = RAM_SIZE + 1;
	CHECK_EQ(pvh_load(&e.mem, &e.p, &b, &e.lg), -ENOSPC);
	env_fini(&e);
}

int main(void)
{
	RUN(test_load);
	RUN(test_refuses);
	RUN(test_cmdline_limit);
	RUN(test_initrd);
	return unit_done();
}
