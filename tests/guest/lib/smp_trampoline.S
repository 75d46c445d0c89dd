/* AP start-up. The bytes from smp_trampoline_start to smp_trampoline_end
 * are copied to TRAMPOLINE_ADDR and entered in real mode at CS:IP =
 * (TRAMPOLINE_ADDR >> 4):0 by the SIPI. They load the boot GDT and jump to
 * 32-bit code in the image, which joins entry.S's long-mode switch with
 * ESI = 0; start64 then sends the AP to ap_start64 below. */
#include "layout.h"

	.section .rodata.smp_trampoline, "a"
	.code16
	.globl smp_trampoline_start, smp_trampoline_end
smp_trampoline_start:
	cli
	cld
	mov %cs, %ax
	mov %ax, %ds
	lgdtl tramp_gdt_desc - smp_trampoline_start
	mov %cr0, %eax
	or $1, %eax
	mov %eax, %cr0
	ljmpl $SEL_CODE32, $ap_start32
	.balign 8
tramp_gdt_desc:
	.word 4 * 8 - 1			/* boot_gdt has 4 descriptors */
	.long boot_gdt
smp_trampoline_end:

	.text
	.code32
ap_start32:
	mov $SEL_DATA, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %ss
	mov %eax, %fs
	mov %eax, %gs
	xor %esi, %esi			/* no start_info: this is an AP */
	jmp boot_enter_long_mode

	.code64
	.globl ap_start64
ap_start64:
	mov $1, %eax
	lock xadd %eax, smp_ap_next(%rip)	/* eax = this AP's slot */
	cmp $AP_MAX, %eax
	jae 1f
	mov %eax, %edi
	inc %eax
	shl $12, %rax			/* AP_STACK_SIZE = 4 KiB */
	lea smp_ap_stacks(%rip), %rsp
	add %rax, %rsp
	xor %ebp, %ebp
	call smp_ap_main		/* smp_ap_main(slot) */
1:	cli
	hlt
	jmp 1b

	.section .note.GNU-stack, "", @progbits
