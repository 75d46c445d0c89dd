#include <stdarg.h>
#include <stdbool.h>

#include "acpi.h"
#include "cpu.h"
#include "exit.h"
#include "io.h"
#include "printf.h"
#include "time.h"

#define PM1_SLP_EN (1u << 13)
#define PM1_SLP_TYP_SHIFT 10
/* The VMM may finish the I/O exit before it acts on the request. */
#define POWEROFF_WAIT_MS 1000

/* Found before RAM may be overwritten, used at the end (single CPU). */
static struct {
	bool probed;
	bool ok;
	const char *why;
	struct acpi_s5 s5;
} exit_s5;

void debug_exit(uint32_t v)
{
	outb(DEBUG_EXIT_PORT, (uint8_t)v);
	cpu_halt_forever();
}

void poweroff_prepare(void)
{
	if (exit_s5.probed)
		return;
	exit_s5.ok = acpi_find_s5(&exit_s5.s5, &exit_s5.why);
	exit_s5.probed = true;
}

void poweroff(void)
{
	poweroff_prepare();
	if (exit_s5.ok) {
		printf("poweroff: acpi pm1a_cnt=0x%x slp_typ=%u\n", exit_s5.s5.pm1a_cnt,
		       exit_s5.s5.slp_typ);
		outw(exit_s5.s5.pm1a_cnt,
		     (uint16_t)(((exit_s5.s5.slp_typ & 7u) << PM1_SLP_TYP_SHIFT) | PM1_SLP_EN));
		uint64_t start = rdtsc(), limit = time_ms_to_tsc(POWEROFF_WAIT_MS);

		while (rdtsc() - start < limit)
			cpu_relax();
		printf("poweroff: acpi write returned, using debug-exit\n");
	} else {
		printf("poweroff: debug-exit (%s)\n", exit_s5.why);
	}
	debug_exit(EXIT_PASS);
}

void panic(const char *fmt, ...)
{
	va_list ap;

	printf("PANIC: ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	debug_exit(EXIT_PANIC);
}
