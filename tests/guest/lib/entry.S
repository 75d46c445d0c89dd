/* PVH entry: the VMM starts us in 32-bit protected mode, paging off, flat
 * segments, EBX = physical address of struct start_info. We load our own
 * GDT, zero .bss, identity-map [0, 8 GiB) with 2 MiB pages, enter long mode
 * and call lib_start(start_info) on the boot stack. */
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
	/* Zero .bss (page tables and stacks live there). */
	mov $__bss_start, %edi
2:	cmp $__bss_end, %edi
	jae 3f
	movl $0, (%edi)
	add $4, %edi
	jmp 2b
3:
	/* PML4[0] -> PDPT; PDPT[i] -> PD i; PD entries: 2 MiB pages. */
	movl $(boot_pdpt + PTE_P + PTE_RW), boot_pml4
	xor %ecx, %ecx			/* ecx = PD index 0..IDENTITY_MAP_GIB-1 */
4:	mov %ecx, %eax
	shl $12, %eax
	add $(boot_pd + PTE_P + PTE_RW), %eax
	mov %eax, boot_pdpt(,%ecx,8)
	inc %ecx
	cmp $IDENTITY_MAP_GIB, %ecx
	jb 4b

	xor %ecx, %ecx			/* ecx = 2 MiB page number */
5:	mov %ecx, %eax
	shl $21, %eax			/* low 32 bits of the address */
	mov %ecx, %edx
	shr $11, %edx			/* high bits */
	or $(PTE_P + PTE_RW + PTE_PS), %eax
	/* 3-4 GiB is the MMIO hole (LAPIC, IOAPIC, PCI BARs): uncached. */
	cmp $(3 * 512), %ecx
	jb 6f
	cmp $(4 * 512), %ecx
	jae 6f
	or $(PTE_PCD + PTE_PWT), %eax
6:	mov %eax, boot_pd(,%ecx,8)
	mov %edx, boot_pd+4(,%ecx,8)
	inc %ecx
	cmp $(IDENTITY_MAP_GIB * 512), %ecx
	jb 5b

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

	.section .bss
	.balign 4096
	.globl boot_pml4
boot_pml4:
	.skip 4096
boot_pdpt:
	.skip 4096
boot_pd:
	.skip 4096 * IDENTITY_MAP_GIB
	.balign 16
boot_stack:
	.skip BOOT_STACK_SIZE
boot_stack_top:

	.section .note.GNU-stack, "", @progbits
