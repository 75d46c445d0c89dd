/* How a guest ends. Exit codes seen by the host (QEMU isa-debug-exit
 * convention, also kvmrun's with debug_exit=on): debug_exit(v) makes the
 * VMM exit with status v*2+1; an ACPI S5 poweroff exits with status 0. */
#ifndef GUEST_EXIT_H
#define GUEST_EXIT_H

#include <stdint.h>

#define DEBUG_EXIT_PORT 0x501

/* Conventional debug_exit values (host status in brackets). */
#define EXIT_PASS 0  /* [1] success without ACPI poweroff */
#define EXIT_FAIL 1  /* [3] a check failed */
#define EXIT_PANIC 2 /* [5] exception, bad boot data, lib bug */

/* Writes v (0..127) as one byte to port 0x501; if the VMM has no
 * debug-exit device, halts with interrupts off. */
__attribute__((noreturn)) void debug_exit(uint32_t v);

/* Finds the ACPI S5 parameters now and remembers them. Call it before
 * overwriting RAM that may hold ACPI tables (e.g. a memory test); later
 * calls do nothing. poweroff() calls it itself if nobody did. */
void poweroff_prepare(void);

/* ACPI S5 soft-off through PM1a_CNT, printing one line saying which path
 * it takes: "poweroff: acpi pm1a_cnt=0x604 slp_typ=0", or
 * "poweroff: debug-exit (<reason>)" falling back to debug_exit(EXIT_PASS). */
__attribute__((noreturn)) void poweroff(void);

/* Prints "PANIC: <msg>" and debug_exit(EXIT_PANIC). */
__attribute__((noreturn, format(printf, 1, 2))) void panic(const char *fmt, ...);

#endif
