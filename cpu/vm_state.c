#include "cpu/vm_state.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

static int fail(char *err, size_t len, const char *what)
{
	int e = errno;
	snprintf(err, len, "%s: %s", what, strerror(e));
	return -e;
}

int vm_kvm_state_get(int vm_fd, uint64_t clock, struct vm_kvm_state *s, char *err, size_t len)
{
	memset(s, 0, sizeof(*s));
	for (uint32_t i = 0; i < 3; i++) {
		s->chip[i].chip_id = i;
		if (ioctl(vm_fd, KVM_GET_IRQCHIP, &s->chip[i]) < 0)
			return fail(err, len, "KVM_GET_IRQCHIP");
	}
	if (ioctl(vm_fd, KVM_GET_PIT2, &s->pit) < 0)
		return fail(err, len, "KVM_GET_PIT2");
	s->clock = clock;
	return 0;
}

int vm_kvm_state_set(int vm_fd, const struct vm_kvm_state *s, char *err, size_t len)
{
	for (unsigned i = 0; i < 3; i++) {
		struct kvm_irqchip c = s->chip[i];
		if (ioctl(vm_fd, KVM_SET_IRQCHIP, &c) < 0)
			return fail(err, len, i < 2 ? "KVM_SET_IRQCHIP (PIC)" : "KVM_SET_IRQCHIP (IOAPIC)");
	}
	struct kvm_pit_state2 pit = s->pit;
	if (ioctl(vm_fd, KVM_SET_PIT2, &pit) < 0)
		return fail(err, len, "KVM_SET_PIT2");
	return 0;
}

int vm_kvm_clock_set(int vm_fd, uint64_t clock, char *err, size_t len)
{
	struct kvm_clock_data clk = { .clock = clock };
	if (ioctl(vm_fd, KVM_SET_CLOCK, &clk) < 0)
		return fail(err, len, "KVM_SET_CLOCK");
	return 0;
}
