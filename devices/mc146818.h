/* The CMOS real-time clock (MC146818) at ports 0x70 (index) and 0x71
 * (data): 128 bytes of CMOS, the first 14 of which are the clock.
 *
 * Time is the host's wall clock (UTC) at the moment of the read plus an
 * offset the guest sets by writing the time registers: either with
 * register B's SET bit held (updates halt; the offset is recomputed when
 * SET clears), or directly while the clock runs (applied at once). BCD or
 * binary (register B bit 2) and 12/24-hour (bit 1) modes; the century is
 * register 0x32. Register A's UIP bit always reads 0 (the clock updates
 * atomically at read time, so a guest polling for UIP never waits);
 * register C reports the update-ended flag once per elapsed second and
 * clears on read; register D reads 0x80 (valid RAM and time).
 *
 * Not modelled: periodic, alarm and update-ended interrupts (no IRQ 8 is
 * wired; the enable bits in register B are plain storage), the alarm, the
 * square-wave output and daylight-saving adjustment. Index bit 7 (the NMI
 * mask) is ignored. Bytes 0x0E-0x7F other than 0x32 are plain storage.
 *
 * Threads: handlers run on any vCPU thread, serialised by a mutex inside. */
#ifndef KVMRUN_MC146818_H
#define KVMRUN_MC146818_H

#include <stdint.h>

#include "devices/bus.h"
#include "lib/log.h"
#include "lib/state.h"

#define MC146818_NR_PORTS 2

struct mc146818;

struct mc146818_params {
	const struct logger *log; /* may be NULL */
	/* Seconds since the epoch, UTC. NULL: clock_gettime(CLOCK_REALTIME).
	 * Tests pass a fake. */
	int64_t (*clock)(void *cookie);
	void *clock_cookie;
};

/* Maps [base, base+2) on @pio (0x70 on a PC). Returns 0 and sets *out, -ENOMEM, or
 * bus_register's error. Before vCPUs run. */
__attribute__((warn_unused_result))
int mc146818_create(struct bus *pio, uint16_t base, const struct mc146818_params *p,
		    struct mc146818 **out);

/* Clock registers back to defaults (24-hour BCD, offset 0); the rest of
 * CMOS keeps its contents, as battery-backed RAM does. */
void mc146818_reset(struct mc146818 *r);

/* Frees it once nothing dispatches on @pio any more. NULL is a no-op. */
void mc146818_destroy(struct mc146818 *r);

/* Saved state (section "rtc"), version MC146818_STATE_VERSION. A save
 * captures all 128 bytes of CMOS RAM (the clock registers as last latched
 * or, while register B's SET bit holds the clock, as the guest is editing
 * them; registers A-D; the battery-backed rest), the index register, the
 * guest's clock offset from the host's wall clock, and the second of the
 * last update-ended report. The time base is the host's UTC wall clock
 * plus that offset, so a restored guest reads the same wall-clock time a
 * host read gives, however long the snapshot waited. The alarm and
 * periodic state are register A/B bits (no interrupt is modelled).
 *
 * mc146818_load checks the values (index < 128, UIP clear in A, C and D
 * as the device keeps them, the offset and the last update second
 * within +-2^40 s) and applies them only when the whole payload is valid;
 * else -EINVAL with the reason in r->err, the RTC left as it was. */
#define MC146818_STATE_VERSION 1
void mc146818_save(struct mc146818 *r, struct state_w *w);
__attribute__((warn_unused_result))
int mc146818_load(struct mc146818 *r, struct state_r *rd);

#endif
