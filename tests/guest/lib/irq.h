/* Checking that a device raised an interrupt without taking it (interrupts
 * stay off: the build machines' KVM cannot return from one). The LAPIC is
 * software-enabled so that it accepts fixed interrupts; a delivered one
 * then waits in the LAPIC's IRR, which irq_pending() reads. INTx and
 * virtio-mmio lines go through an IOAPIC redirection entry programmed by
 * irq_route_gsi(); MSI-X messages are addressed to this CPU's LAPIC. */
#ifndef GUEST_IRQ_H
#define GUEST_IRQ_H

#include <stdbool.h>
#include <stdint.h>

#define IOAPIC_BASE 0xFEC00000ull /* when the MADT lists none */

/* Software-enables the LAPIC (SVR) with TPR 0. Idempotent. */
void irq_lapic_enable(void);
/* True if vector's bit is set in the LAPIC IRR. */
bool irq_pending(uint8_t vector);
/* Routes IOAPIC pin gsi to vector on this CPU, unmasked; level-triggered
 * (PCI INTx) or edge. False if the IOAPIC has no such pin. */
bool irq_route_gsi(uint32_t gsi, uint8_t vector, bool level);
/* Remote-IRR of the pin's redirection entry (level-triggered and delivered). */
bool irq_gsi_remote_irr(uint32_t gsi);
/* MSI address/data that reach this CPU's LAPIC with a fixed, edge vector. */
uint32_t irq_msi_addr(void);
uint32_t irq_msi_data(uint8_t vector);

#endif
