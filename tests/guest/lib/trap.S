/* Exception entry stubs 0-31: push a dummy error code where the CPU does
 * not, then the vector, and call trap_handle(frame). Never returns. */
#include "layout.h"

	.code64
	.text

.macro TRAP_STUB vec, has_error
	.balign 16
trap_stub_\vec:
	.if \has_error == 0
	push $0
	.endif
	push $\vec
	jmp trap_common
.endm

TRAP_STUB 0, 0
TRAP_STUB 1, 0
TRAP_STUB 2, 0
TRAP_STUB 3, 0
TRAP_STUB 4, 0
TRAP_STUB 5, 0
TRAP_STUB 6, 0
TRAP_STUB 7, 0
TRAP_STUB 8, 1
TRAP_STUB 9, 0
TRAP_STUB 10, 1
TRAP_STUB 11, 1
TRAP_STUB 12, 1
TRAP_STUB 13, 1
TRAP_STUB 14, 1
TRAP_STUB 15, 0
TRAP_STUB 16, 0
TRAP_STUB 17, 1
TRAP_STUB 18, 0
TRAP_STUB 19, 0
TRAP_STUB 20, 0
TRAP_STUB 21, 1
TRAP_STUB 22, 0
TRAP_STUB 23, 0
TRAP_STUB 24, 0
TRAP_STUB 25, 0
TRAP_STUB 26, 0
TRAP_STUB 27, 0
TRAP_STUB 28, 0
TRAP_STUB 29, 1
TRAP_STUB 30, 1
TRAP_STUB 31, 0

trap_common:
	mov %rsp, %rdi
	and $-16, %rsp
	call trap_handle
1:	cli
	hlt
	jmp 1b

	.section .rodata
	.balign 8
	.globl trap_stubs
trap_stubs:
	.irp vec, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	.quad trap_stub_\vec
	.endr

	.section .note.GNU-stack, "", @progbits
