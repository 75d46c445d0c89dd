/* QEMU's isa-debug-exit: a test guest writes a value to the port and the
 * VMM exits with status (value << 1) | 1 (the OS keeps the low 8 bits), so
 * a guest can never fake a plain 0.
 *
 * Any write of 1, 2 or 4 bytes at the base port calls params.exit with the
 * code; reads return all-ones. QEMU maps 2 ports; we map 4, because the bus
 * treats an access running past a range's end as unmapped and a 4-byte
 * outl must reach the device (0x501-0x504 are otherwise unused). The device holds no
 * mutable state, so it takes no lock: exit may be called from several vCPU
 * threads at once and must cope (the first stop request wins). */
#ifndef KVMRUN_DEBUG_EXIT_H
#define KVMRUN_DEBUG_EXIT_H

#include <stdint.h>

#include "devices/bus.h"
#include "lib/log.h"

#define DEBUG_EXIT_NR_PORTS 4

struct debug_exit;

struct debug_exit_params {
	/* Called on the writing vCPU thread with no lock held. */
	void (*exit)(void *cookie, int code);
	void *cookie;
	const struct logger *log; /* may be NULL */
};

/* Maps [base, base+4) on @pio (PORT_DEBUG_EXIT normally). Returns 0 and
 * sets *out, -ENOMEM, or bus_register's error. Before vCPUs run. */
__attribute__((warn_unused_result))
int debug_exit_create(struct bus *pio, uint16_t base,
		      const struct debug_exit_params *p, struct debug_exit **out);

/* Nothing to reset; present for the uniform lifecycle. */
void debug_exit_reset(struct debug_exit *d);

/* Frees it once nothing dispatches on @pio any more. NULL is a no-op. */
void debug_exit_destroy(struct debug_exit *d);

#endif
