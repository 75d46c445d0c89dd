/* CPU exceptions 0-31. The guests run with interrupts off and this host's
 * KVM cannot emulate iret outside real mode, so an exception is never
 * returned from: the handler prints one line
 * "EXCEPTION <n> (<name>) err=0x.. rip=0x.. cr2=0x.." and ends the guest
 * with debug_exit(EXIT_PANIC). */
#ifndef GUEST_TRAP_H
#define GUEST_TRAP_H

#include <stdint.h>

struct trap_frame {
	uint64_t vector;
	uint64_t error;
	uint64_t rip;
	uint64_t cs;
	uint64_t rflags;
	uint64_t rsp;
	uint64_t ss;
};

/* Loads the IDT on the calling CPU (the boot code does it for the BSP). */
void trap_init(void);
/* Called by the assembly stubs. */
__attribute__((noreturn)) void trap_handle(const struct trap_frame *f);

#endif
