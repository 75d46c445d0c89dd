#include "exit.h"
#include "io.h"
#include "layout.h"
#include "printf.h"
#include "trap.h"

#define TRAP_VECTORS 32
#define GATE_INTR64 0x8E /* present, DPL 0, 64-bit interrupt gate */

struct trap_gate {
	uint16_t off_lo;
	uint16_t sel;
	uint8_t ist;
	uint8_t type;
	uint16_t off_mid;
	uint32_t off_hi;
	uint32_t reserved;
} __attribute__((packed));

extern const uint64_t trap_stubs[TRAP_VECTORS];

static struct trap_gate trap_idt[TRAP_VECTORS] __attribute__((aligned(16)));
static volatile int trap_nesting;

static const char *const trap_names[TRAP_VECTORS] = {
	"#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM",
	"#DF", "?", "#TS", "#NP", "#SS", "#GP", "#PF", "?",
	"#MF", "#AC", "#MC", "#XM", "#VE", "#CP", "?", "?",
	"?", "?", "?", "?", "?", "?", "#SX", "?",
};

void trap_init(void)
{
	struct {
		uint16_t limit;
		uint64_t base;
	} __attribute__((packed)) idtr;

	if (!trap_idt[0].type) {
		for (int i = 0; i < TRAP_VECTORS; i++) {
			uint64_t a = trap_stubs[i];

			trap_idt[i] = (struct trap_gate){
				.off_lo = (uint16_t)a,
				.sel = SEL_CODE64,
				.type = GATE_INTR64,
				.off_mid = (uint16_t)(a >> 16),
				.off_hi = (uint32_t)(a >> 32),
			};
		}
	}
	idtr.limit = sizeof(trap_idt) - 1;
	idtr.base = (uint64_t)(uintptr_t)trap_idt;
	__asm__ volatile("lidt %0" : : "m"(idtr));
}

void trap_handle(const struct trap_frame *f)
{
	uint64_t cr2;

	/* A fault while reporting a fault: leave without printing. */
	if (__atomic_fetch_add(&trap_nesting, 1, __ATOMIC_SEQ_CST))
		debug_exit(EXIT_PANIC);
	__asm__ volatile("mov %%cr2, %0" : "=r"(cr2));
	printf("EXCEPTION %lu (%s) err=0x%lx rip=0x%lx rsp=0x%lx cr2=0x%lx\n", f->vector,
	       trap_names[f->vector & (TRAP_VECTORS - 1)], f->error, f->rip, f->rsp, cr2);
	debug_exit(EXIT_PANIC);
}
