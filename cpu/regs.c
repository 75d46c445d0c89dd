#include "cpu/regs.h"

#include <errno.h>
#include <linux/kvm.h>
#include <string.h>
#include <sys/ioctl.h>

#include "mem/layout.h"

/* GDT slots; Linux's boot protocol wants __BOOT_CS = 0x10, __BOOT_DS = 0x18. */
#define SEL_CODE 0x10
#define SEL_DATA 0x18
#define SEL_TSS  0x20

#define X86_CR0_PE 0x1ull
#define X86_CR0_ET 0x10ull
#define X86_CR0_PG 0x80000000ull
#define X86_CR4_PAE 0x20ull
#define EFER_LME 0x100ull
#define EFER_LMA 0x400ull

static uint64_t gdt_entry(uint16_t flags, uint32_t base, uint32_t limit)
{
	return ((uint64_t)(base & 0xff000000u) << 32) | ((uint64_t)(flags & 0xf0ffu) << 40) |
	       ((uint64_t)(limit & 0x000f0000u) << 32) | ((uint64_t)(base & 0x00ffffffu) << 16) |
	       (uint64_t)(limit & 0x0000ffffu);
}

static struct kvm_segment segment_from(uint64_t desc, uint16_t sel)
{
	uint32_t limit = (uint32_t)((desc & 0xffff) | (((desc >> 48) & 0xf) << 16));
	/* KVM wants the limit in bytes: expand page granularity */
	if ((desc >> 55) & 1)
		limit = (limit << 12) | 0xfff;
	return (struct kvm_segment){
		.base = ((desc >> 16) & 0xffffff) | (((desc >> 56) & 0xff) << 24),
		.limit = limit,
		.selector = sel,
		.type = (desc >> 40) & 0xf,
		.present = (desc >> 47) & 1,
		.dpl = (desc >> 45) & 3,
		.db = (desc >> 54) & 1,
		.s = (desc >> 44) & 1,
		.l = (desc >> 53) & 1,
		.g = (desc >> 55) & 1,
	};
}

static void boot_gdt(const struct boot_entry *b, uint64_t gdt[5])
{
	gdt[0] = 0;
	gdt[1] = 0;
	/* flags: G, D/B or L, P, S, type */
	gdt[2] = b->mode == BOOT_LINUX64 ? gdt_entry(0xa09b, 0, 0xfffff)
					 : gdt_entry(0xc09b, 0, 0xfffff);
	gdt[3] = gdt_entry(0xc093, 0, 0xfffff);
	gdt[4] = gdt_entry(0x008b, 0, 0x67);
}

int regs_write_boot_tables(struct guest_mem *m, const struct boot_entry *b)
{
	uint64_t gdt[5];
	boot_gdt(b, gdt);
	if (gmem_write(m, LAYOUT_GDT, gdt, sizeof(gdt)) < 0)
		return -EFAULT;
	if (b->mode != BOOT_LINUX64)
		return 0;
	uint64_t *pml4 = gmem_ptr(m, LAYOUT_PML4, 4096);
	uint64_t *pdpt = gmem_ptr(m, LAYOUT_PDPT, 4096);
	uint64_t *pd = gmem_ptr(m, LAYOUT_PD, 4 * 4096);
	if (!pml4 || !pdpt || !pd)
		return -EFAULT;
	memset(pml4, 0, 4096);
	memset(pdpt, 0, 4096);
	pml4[0] = LAYOUT_PDPT | 0x3; /* present, writable */
	for (uint64_t i = 0; i < 4; i++)
		pdpt[i] = (LAYOUT_PD + i * 4096) | 0x3;
	for (uint64_t i = 0; i < 4 * 512; i++)
		pd[i] = (i << 21) | 0x83; /* present, writable, 2 MiB page */
	return 0;
}

static void boot_sregs(const struct boot_entry *b, struct kvm_sregs *s)
{
	uint64_t gdt[5];
	boot_gdt(b, gdt);
	s->cs = segment_from(gdt[2], SEL_CODE);
	s->ds = s->es = s->fs = s->gs = s->ss = segment_from(gdt[3], SEL_DATA);
	s->tr = segment_from(gdt[4], SEL_TSS);
	s->gdt.base = LAYOUT_GDT;
	s->gdt.limit = sizeof(gdt) - 1;
	s->cr0 = X86_CR0_PE | X86_CR0_ET;
	s->cr4 = 0;
	s->efer = 0;
	if (b->mode == BOOT_LINUX64) {
		s->cr0 |= X86_CR0_PG;
		s->cr3 = LAYOUT_PML4;
		s->cr4 = X86_CR4_PAE;
		s->efer = EFER_LME | EFER_LMA;
	}
}

int regs_setup_lapic(int vcpu_fd)
{
	struct kvm_lapic_state lapic;
	if (ioctl(vcpu_fd, KVM_GET_LAPIC, &lapic) < 0)
		return -errno;
	/* LVT LINT0 (0x350): ExtINT, so the 8259's output reaches CPU 0;
	 * LVT LINT1 (0x360): NMI. Delivery mode lives in bits 8-10. */
	uint32_t *lint0 = (uint32_t *)(void *)&lapic.regs[0x350];
	uint32_t *lint1 = (uint32_t *)(void *)&lapic.regs[0x360];
	*lint0 = (*lint0 & ~0x700u) | (7u << 8);
	*lint1 = (*lint1 & ~0x700u) | (4u << 8);
	if (ioctl(vcpu_fd, KVM_SET_LAPIC, &lapic) < 0)
		return -errno;
	return 0;
}

int regs_setup_boot_cpu(int vcpu_fd, const struct boot_entry *b, const char **what)
{
	struct kvm_sregs sregs;
	*what = "KVM_GET_SREGS";
	if (ioctl(vcpu_fd, KVM_GET_SREGS, &sregs) < 0)
		return -errno;
	boot_sregs(b, &sregs);
	*what = "KVM_SET_SREGS";
	if (ioctl(vcpu_fd, KVM_SET_SREGS, &sregs) < 0)
		return -errno;

	struct kvm_regs regs = { .rflags = 0x2, .rip = b->entry };
	if (b->mode == BOOT_LINUX64)
		regs.rsi = b->arg;
	else
		regs.rbx = b->arg;
	*what = "KVM_SET_REGS";
	if (ioctl(vcpu_fd, KVM_SET_REGS, &regs) < 0)
		return -errno;

	struct kvm_fpu fpu = { .fcw = 0x37f, .mxcsr = 0x1f80 };
	*what = "KVM_SET_FPU";
	if (ioctl(vcpu_fd, KVM_SET_FPU, &fpu) < 0)
		return -errno;
	return 0;
}
