/* PVH entry: the VMM starts us in 32-bit protected mode, paging off, flat
 * segments, EBX = physical address of struct start_info. We load our own
 * GDT, zero .bss, enter long mode and call lib_start(start_info) on the
 * boot stack.
 *
 * Start-up cost matters (every instruction is emulated on the build
 * machines): the page tables identity-mapping [0, 4 GiB) with 2 MiB pages
 * are initialised data built by the assembler, so the boot code writes no
 * page-table entry; paging_map_8g() (paging.c) extends the map to 8 GiB
 * for the guests that need it. */
#include "layout.h"

#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define CR0_PE 0x1
#define CR0_PG 0x80000000
#define CR4_PAE 0x20
#define MSR_EFER 0xC0000080
#define EFER_LME 0x100
#define PTE_P 0x1
#define PTE_RW 0x2
#define PTE_PWT 0x8
#define PTE_PCD 0x10
#define PTE_PS 0x80

/* ELF note read by both kvmrun and QEMU. The descriptor is 8 bytes in this
 * ELF64 file (QEMU reads a 64-bit value here); the entry is below 4 GiB. */
	.section .note.Xen, "a"
	.balign 4
	.long 4f - 3f		/* namesz */
	.long 6f - 5f		/* descsz */
	.long XEN_ELFNOTE_PHYS32_ENTRY
3:	.asciz "Xen"
4:	.balign 4
5:	.quad pvh_start32
6:	.balign 4

	.section .text.entry, "ax"
	.code32
	.globl pvh_start32
pvh_start32:
	cli
	cld
	mov %ebx, %esi			/* keep start_info in ESI throughout */
	lgdt boot_gdt_desc
	mov $SEL_DATA, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %ss
	mov %eax, %fs
	mov %eax, %gs
	ljmp $SEL_CODE32, $1f
1:
	/* Zero .bss (C variables only: the page tables are initialised data and
	 * the stack is in .noinit). rep stosl is one emulated instruction. */
	mov $__bss_start, %edi
	mov $__bss_end, %ecx
	sub %edi, %ecx
	shr $2, %ecx
	xor %eax, %eax
	rep stosl

	.globl boot_enter_long_mode
boot_enter_long_mode:			/* APs join here from the trampoline */
	mov %cr4, %eax
	or $CR4_PAE, %eax
	mov %eax, %cr4
	mov $boot_pml4, %eax
	mov %eax, %cr3
	mov $MSR_EFER, %ecx
	rdmsr
	or $EFER_LME, %eax
	wrmsr
	mov %cr0, %eax
	or $(CR0_PG + CR0_PE), %eax
	mov %eax, %cr0
	ljmp $SEL_CODE64, $start64

	.code64
start64:
	mov $SEL_DATA, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %ss
	test %esi, %esi
	jz ap_start64			/* ESI = 0 marks an AP (see smp_trampoline.S) */
	mov $boot_stack_top, %rsp
	xor %ebp, %ebp
	mov %esi, %edi			/* zero-extends: lib_start(start_info) */
	call lib_start
7:	cli
	hlt
	jmp 7b

/* Guests without lib/smp_trampoline.S never start APs; this keeps the
 * link working and parks a stray AP. */
	.weak ap_start64
ap_start64:
8:	cli
	hlt
	jmp 8b

	.section .data
	.balign 16
	.globl boot_gdt
boot_gdt:
	.quad 0
	.quad 0x00CF9B000000FFFF	/* SEL_CODE32: flat 32-bit code, accessed */
	.quad 0x00CF93000000FFFF	/* SEL_DATA: flat data, accessed */
	.quad 0x00AF9B000000FFFF	/* SEL_CODE64: long mode code */
boot_gdt_end:
	.balign 8
	.globl boot_gdt_desc
boot_gdt_desc:
	.word boot_gdt_end - boot_gdt - 1
	.long boot_gdt

/* Page tables: PML4[0] -> PDPT; PDPT[0..3] -> the four PDs below
 * (PDPT[4..7] are filled by paging_map_8g); 3-4 GiB (LAPIC, IOAPIC, PCI and
 * virtio MMIO) is mapped uncached. */
	.section .data.pagetables, "aw"
	.balign 4096
	.globl boot_pml4
boot_pml4:
	.quad boot_pdpt + PTE_P + PTE_RW
	.fill 511, 8, 0
	.globl boot_pdpt
boot_pdpt:
	.set pdpti, 0
	.rept BOOT_MAP_GIB
	.quad boot_pd + pdpti * 4096 + PTE_P + PTE_RW
	.set pdpti, pdpti + 1
	.endr
	.fill 512 - BOOT_MAP_GIB, 8, 0
	.globl boot_pd
boot_pd:
	.set pdi, 0
	.rept 3 * 512
	.quad (pdi << 21) + PTE_P + PTE_RW + PTE_PS
	.set pdi, pdi + 1
	.endr
	.rept 512
	.quad (pdi << 21) + PTE_P + PTE_RW + PTE_PS + PTE_PCD + PTE_PWT
	.set pdi, pdi + 1
	.endr

/* Not zeroed at boot. */
	.section .noinit, "aw", @nobits
	.balign 16
boot_stack:
	.skip BOOT_STACK_SIZE
boot_stack_top:

	.section .note.GNU-stack, "", @progbits
