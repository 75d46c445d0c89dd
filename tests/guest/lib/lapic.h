/* The local APIC in xAPIC mode through its MMIO page (default 0xFEE00000,
 * mapped uncached by the boot code). */
#ifndef GUEST_LAPIC_H
#define GUEST_LAPIC_H

#include <stdbool.h>
#include <stdint.h>

#define LAPIC_BASE 0xFEE00000ull

#define LAPIC_ID 0x20
#define LAPIC_VERSION 0x30
#define LAPIC_ICR_LO 0x300
#define LAPIC_ICR_HI 0x310

uint32_t lapic_read(uint32_t reg);
void lapic_write(uint32_t reg, uint32_t v);
/* APIC ID from the ID register (bits 31:24). */
uint32_t lapic_id(void);
/* Sends INIT to all CPUs but this one. Returns false if the ICR stays busy. */
bool lapic_init_others(void);
/* Sends a STARTUP IPI with vector = trampoline page number (addr >> 12) to
 * all CPUs but this one. Returns false if the ICR stays busy. */
bool lapic_sipi_others(uint8_t vector);

#endif
