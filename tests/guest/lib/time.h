/* Time from the TSC. The frequency comes from CPUID leaf 0x15 or 0x16, else
 * from timing PIT channel 2 for 10 ms (polled through port 0x61), else it
 * is assumed to be 1 GHz. Delays are for bounding waits, not for accuracy. */
#ifndef GUEST_TIME_H
#define GUEST_TIME_H

#include <stdint.h>

/* TSC ticks per second; measured on the first call. */
uint64_t time_tsc_hz(void);
/* TSC ticks in ms milliseconds. */
uint64_t time_ms_to_tsc(uint64_t ms);
void time_udelay(uint64_t us);

#endif
