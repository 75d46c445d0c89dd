/* The test-guest library: include this one header. Each concept has its
 * own header and file; see tests/guest/README.md for the conventions.
 *
 * A guest defines guest_main(). The boot code (entry.S, start.c) has by
 * then: entered long mode on the BSP with [0, 8 GiB) identity mapped,
 * zeroed .bss, initialised COM1, loaded an IDT that reports exceptions,
 * and checked the start_info magic. Interrupts are off and stay off.
 *
 * guest_main returns 0 -> poweroff() (ACPI S5, host exit status 0), or
 * n > 0 -> debug_exit(n) (host exit status n*2+1). It may also end the
 * guest itself with poweroff() or debug_exit(). */
#ifndef GUEST_GUEST_H
#define GUEST_GUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "acpi.h"
#include "cmdline.h"
#include "cpu.h"
#include "exit.h"
#include "io.h"
#include "layout.h"
#include "libc.h"
#include "printf.h"
#include "serial.h"
#include "start_info.h"
#include "time.h"
#include "trap.h"

int guest_main(void);

/* Linker-script symbols: the loaded image including .bss (page tables,
 * stacks), page aligned. */
extern char _image_start[], _image_end[];

#endif
