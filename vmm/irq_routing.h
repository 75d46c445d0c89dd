/* The VM's GSI routing table: the in-kernel PIC/IOAPIC pins plus one MSI
 * route per MSI-X vector in use. KVM_SET_GSI_ROUTING replaces the whole
 * table, so kvmrun keeps the table and re-sends it on each change.
 * Thread-safe (MSI-X table writes arrive on vCPU threads). */
#ifndef KVMRUN_IRQ_ROUTING_H
#define KVMRUN_IRQ_ROUTING_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "cpu/acpi.h"
#include "lib/log.h"

#define IRQ_ROUTING_PINS 24      /* IOAPIC pins; GSIs above are MSI */
#define IRQ_ROUTING_MAX_MSI 1024 /* every MSI-X vector of the largest config: vm_virtio.c */

struct irq_routing {
	int vm_fd;
	const struct logger *log;
	pthread_mutex_t lock;
	unsigned nr_overrides;   /* the board's, as the MADT lists them */
	struct acpi_irq_override overrides[ACPI_MAX_OVERRIDES];
	bool used[IRQ_ROUTING_MAX_MSI];
	bool routed[IRQ_ROUTING_MAX_MSI];
	uint64_t addr[IRQ_ROUTING_MAX_MSI];
	uint32_t data[IRQ_ROUTING_MAX_MSI];
};

void irq_routing_init(struct irq_routing *r, int vm_fd, const struct logger *log);
void irq_routing_destroy(struct irq_routing *r);
/* Sends the legacy pin routes, wired as the board's interrupt source
 * overrides say (board_describe: the same list the MADT gets); after
 * KVM_CREATE_IRQCHIP, before any vCPU runs (KVM's default table misroutes
 * the PIT: see irq_routing.c). At most ACPI_MAX_OVERRIDES. */
int irq_routing_start(struct irq_routing *r, const struct acpi_irq_override *ov, unsigned n);
/* A free GSI for an MSI route (not yet routed anywhere). */
int irq_routing_alloc(struct irq_routing *r, unsigned *gsi);
/* Points @gsi at MSI (@addr, @data) and pushes the table to KVM. */
int irq_routing_set_msi(struct irq_routing *r, unsigned gsi, uint64_t addr, uint32_t data);
void irq_routing_free(struct irq_routing *r, unsigned gsi);

#endif
