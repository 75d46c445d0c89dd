#include "vmm/irq_routing.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

void irq_routing_init(struct irq_routing *r, int vm_fd, const struct logger *log)
{
	memset(r, 0, sizeof(*r));
	r->vm_fd = vm_fd;
	r->log = log;
	pthread_mutex_init(&r->lock, NULL);
}

void irq_routing_destroy(struct irq_routing *r)
{
	pthread_mutex_destroy(&r->lock);
}

/* The IOAPIC pin an ISA IRQ (KVM raises it on the GSI of the same
 * number) reaches: its own, unless the board overrides it. */
static unsigned ioapic_pin(const struct irq_routing *r, unsigned gsi)
{
	for (unsigned i = 0; i < r->nr_overrides; i++)
		if (r->overrides[i].irq == gsi)
			return r->overrides[i].gsi;
	return gsi;
}

/* A pin another IRQ is overridden onto belongs to that IRQ alone. */
static bool pin_taken(const struct irq_routing *r, unsigned gsi)
{
	for (unsigned i = 0; i < r->nr_overrides; i++)
		if (r->overrides[i].gsi == gsi && r->overrides[i].irq != gsi)
			return true;
	return false;
}

/* The legacy pins as a PC wires them, and as the MADT tells the guest:
 * ISA IRQ0 (the PIT, which KVM raises on GSI 0) reaches the IOAPIC on pin
 * 2 (the board's interrupt source override), and nothing else uses pin 2,
 * so an EOI on pin 2 maps back to GSI 0 alone. That reverse map matters:
 * the in-kernel PIT re-injects its next tick only once the previous one is
 * acknowledged through GSI 0's ack notifier. KVM's own default table
 * routes GSI 0 to pin 0 and GSI 2 to pin 2, so a guest that follows the
 * override gets no timer ticks at all once it switches to the IOAPIC.
 * GSI 2 (the PIC cascade, whose pin the PIT took) is not routed. GSIs 1-15
 * reach both the PIC and the IOAPIC, 16-23 the IOAPIC only. */
static unsigned fill_pins(const struct irq_routing *r, struct kvm_irq_routing_entry *e)
{
	unsigned n = 0;
	for (unsigned gsi = 0; gsi < IRQ_ROUTING_PINS; gsi++) {
		if (pin_taken(r, gsi))
			continue;
		if (gsi < 16) {
			e[n++] = (struct kvm_irq_routing_entry){
				.gsi = gsi, .type = KVM_IRQ_ROUTING_IRQCHIP,
				.u.irqchip = { .irqchip = gsi < 8 ? KVM_IRQCHIP_PIC_MASTER
								  : KVM_IRQCHIP_PIC_SLAVE,
					       .pin = gsi % 8 },
			};
		}
		e[n++] = (struct kvm_irq_routing_entry){
			.gsi = gsi, .type = KVM_IRQ_ROUTING_IRQCHIP,
			.u.irqchip = { .irqchip = KVM_IRQCHIP_IOAPIC, .pin = ioapic_pin(r, gsi) },
		};
	}
	return n;
}

static int push_locked(struct irq_routing *r)
{
	unsigned max = 40 + IRQ_ROUTING_MAX_MSI;
	struct kvm_irq_routing *t = calloc(1, sizeof(*t) + max * sizeof(t->entries[0]));
	if (!t)
		return -ENOMEM;
	unsigned n = fill_pins(r, t->entries);
	for (unsigned i = 0; i < IRQ_ROUTING_MAX_MSI; i++) {
		if (!r->routed[i])
			continue;
		t->entries[n++] = (struct kvm_irq_routing_entry){
			.gsi = IRQ_ROUTING_PINS + i, .type = KVM_IRQ_ROUTING_MSI,
			.u.msi = { .address_lo = (uint32_t)r->addr[i],
				   .address_hi = (uint32_t)(r->addr[i] >> 32), .data = r->data[i] },
		};
	}
	t->nr = n;
	int rc = ioctl(r->vm_fd, KVM_SET_GSI_ROUTING, t) < 0 ? -errno : 0;
	if (rc < 0)
		log_err(r->log, "irq", "KVM_SET_GSI_ROUTING (%u routes): %s", n, strerror(-rc));
	free(t);
	return rc;
}

int irq_routing_start(struct irq_routing *r, const struct acpi_irq_override *ov, unsigned n)
{
	if (n > ACPI_MAX_OVERRIDES)
		return -EINVAL;
	pthread_mutex_lock(&r->lock);
	memcpy(r->overrides, ov, n * sizeof(*ov));
	r->nr_overrides = n;
	int rc = push_locked(r);
	pthread_mutex_unlock(&r->lock);
	return rc;
}

int irq_routing_alloc(struct irq_routing *r, unsigned *gsi)
{
	pthread_mutex_lock(&r->lock);
	int rc = -ENOSPC;
	for (unsigned i = 0; i < IRQ_ROUTING_MAX_MSI; i++) {
		if (!r->used[i]) {
			r->used[i] = true;
			*gsi = IRQ_ROUTING_PINS + i;
			rc = 0;
			break;
		}
	}
	pthread_mutex_unlock(&r->lock);
	return rc;
}

int irq_routing_set_msi(struct irq_routing *r, unsigned gsi, uint64_t addr, uint32_t data)
{
	if (gsi < IRQ_ROUTING_PINS || gsi >= IRQ_ROUTING_PINS + IRQ_ROUTING_MAX_MSI)
		return -EINVAL;
	unsigned i = gsi - IRQ_ROUTING_PINS;
	pthread_mutex_lock(&r->lock);
	int rc = 0;
	if (!r->routed[i] || r->addr[i] != addr || r->data[i] != data) {
		r->routed[i] = true;
		r->addr[i] = addr;
		r->data[i] = data;
		rc = push_locked(r);
	}
	pthread_mutex_unlock(&r->lock);
	return rc;
}

void irq_routing_free(struct irq_routing *r, unsigned gsi)
{
	if (gsi < IRQ_ROUTING_PINS || gsi >= IRQ_ROUTING_PINS + IRQ_ROUTING_MAX_MSI)
		return;
	unsigned i = gsi - IRQ_ROUTING_PINS;
	pthread_mutex_lock(&r->lock);
	bool was_routed = r->routed[i];
	r->used[i] = r->routed[i] = false;
	if (was_routed)
		push_locked(r);
	pthread_mutex_unlock(&r->lock);
}
