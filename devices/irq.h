/* How a device raises an interrupt line without knowing KVM: the VM hands
 * each device an irq_line whose set() asserts or deasserts a GSI (through
 * KVM_IRQ_LINE). Safe to call from any thread. */
#ifndef KVMRUN_IRQ_H
#define KVMRUN_IRQ_H

struct irq_line {
	void (*set)(void *cookie, unsigned gsi, int level);
	void *cookie;
	unsigned gsi;
};

static inline void irq_line_set(const struct irq_line *l, int level)
{
	if (l->set)
		l->set(l->cookie, l->gsi, level);
}

#endif
