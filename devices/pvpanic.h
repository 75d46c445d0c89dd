/* pvpanic: the one-byte ISA port (QEMU's "QEMU0001" device, at 0x505)
 * through which a guest kernel's pvpanic driver says it panicked, so a
 * panic ends the VM with the crash exit code instead of looking like a
 * reboot. Reads return the events supported; writes report events. */
#ifndef KVMRUN_PVPANIC_H
#define KVMRUN_PVPANIC_H

#include <stdint.h>

#include "devices/bus.h"
#include "lib/log.h"

#define PVPANIC_PANICKED     (1u << 0)
#define PVPANIC_CRASH_LOADED (1u << 1)

struct pvpanic;

struct pvpanic_params {
	/* The guest reported @events (PVPANIC_*); runs on a vCPU thread. */
	void (*event)(void *cookie, uint8_t events);
	void *cookie;
	const struct logger *log;
};

/* Registers the port at @port on @pio. */
__attribute__((warn_unused_result))
int pvpanic_create(struct bus *pio, uint16_t port, const struct pvpanic_params *p,
		   struct pvpanic **out);
void pvpanic_destroy(struct pvpanic *d);

#endif
