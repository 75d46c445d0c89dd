/* CPUID for a vCPU: topology leaves and APIC IDs from cpu_topology, the
 * TSC rate, and what KVM supports (x2APIC, TSC deadline, the KVM leaves)
 * passed through untouched. */
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/cpuid.h"
#include "unit.h"

static struct kvm_cpuid2 *base_cpuid(void)
{
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + 16 * sizeof(struct kvm_cpuid_entry2));
	struct kvm_cpuid_entry2 e[] = {
		{ .function = 0, .eax = 0x1f },
		{ .function = 1, .ecx = (1u << 21) | (1u << 24), .ebx = 0x00010800 },
		{ .function = 4, .index = 0, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX, .eax = 0x121 },
		{ .function = 4, .index = 1, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX, .eax = 0x163 },
		{ .function = 0xb, .index = 0, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX, .ebx = 99 },
		{ .function = 0x15 },
		{ .function = 0x16, .eax = 2100 },
		{ .function = 0x40000000, .eax = 0x40000001, .ebx = 0x4b4d564b, .ecx = 0x564b4d56, .edx = 0x4d },
		{ .function = 0x40000001, .eax = 0x1007efb },
	};
	c->nent = sizeof(e) / sizeof(e[0]);
	memcpy(c->entries, e, sizeof(e));
	return c;
}

static const struct kvm_cpuid_entry2 *leaf(const struct kvm_cpuid2 *c, uint32_t fn, uint32_t idx)
{
	for (uint32_t i = 0; i < c->nent; i++)
		if (c->entries[i].function == fn && c->entries[i].index == idx)
			return &c->entries[i];
	return NULL;
}

static void test_topology_leaves(void)
{
	struct kvm_cpuid2 *base = base_cpuid(), *c = NULL;
	struct cpu_topology t = { .sockets = 2, .cores = 3, .threads = 2 }; /* 12 vCPUs */
	CHECK_EQ(cpuid_for_vcpu(base, &t, 7, &c), 0);
	/* vCPU 7: thread 1 of core 0 of socket 1 -> (1 << 3) | (0 << 1) | 1 */
	uint32_t id = cpuid_apic_id(&t, 7);
	CHECK_EQ(id, 9);
	const struct kvm_cpuid_entry2 *l1 = leaf(c, 1, 0);
	CHECK(l1 && l1->ebx >> 24 == id);
	CHECK(l1 && ((l1->ebx >> 16) & 0xff) == 8);        /* addressable IDs per package */
	CHECK(l1 && (l1->edx & (1u << 28)));               /* HTT */
	CHECK(l1 && (l1->ecx & (1u << 31)));               /* hypervisor */
	CHECK(l1 && (l1->ecx & (1u << 21)) && (l1->ecx & (1u << 24))); /* x2APIC, TSC deadline kept */
	for (uint32_t fn = 0xb; fn <= 0x1f; fn += 0x1f - 0xb) {
		const struct kvm_cpuid_entry2 *smt = leaf(c, fn, 0), *core = leaf(c, fn, 1),
					      *end = leaf(c, fn, 2);
		CHECK(smt && smt->eax == 1 && smt->ebx == 2 && ((smt->ecx >> 8) & 0xff) == 1 && smt->edx == id);
		CHECK(core && core->eax == 3 && core->ebx == 6 && ((core->ecx >> 8) & 0xff) == 2 &&
		      core->edx == id);
		CHECK(end && end->ebx == 0 && ((end->ecx >> 8) & 0xff) == 0);
	}
	const struct kvm_cpuid_entry2 *l4 = leaf(c, 4, 0);
	CHECK(l4 && (l4->eax >> 26) == 3);                 /* 4 addressable core IDs - 1 */
	const struct kvm_cpuid_entry2 *kvm = leaf(c, 0x40000000, 0);
	CHECK(kvm && kvm->ebx == 0x4b4d564b && kvm->eax == 0x40000001); /* "KVMKVMKVM" */
	CHECK(leaf(c, 0x40000001, 0) && leaf(c, 0x40000001, 0)->eax == 0x1007efb);
	free(c);
	free(base);
}

static void test_tsc_rate(void)
{
	struct kvm_cpuid2 *base = base_cpuid(), *c = NULL;
	struct cpu_topology t = { 1, 1, 1 };
	CHECK_EQ(cpuid_for_vcpu(base, &t, 0, &c), 0);
	cpuid_set_tsc_khz(c, 2700000);
	const struct kvm_cpuid_entry2 *l15 = leaf(c, 0x15, 0), *l16 = leaf(c, 0x16, 0);
	CHECK(l15 && l15->eax && (uint64_t)l15->ecx * l15->ebx / l15->eax == 2700000000ull);
	CHECK(l16 && l16->eax == 2700);
	free(c);
	free(base);
}

int main(void)
{
	RUN(test_topology_leaves);
	RUN(test_tsc_rate);
	return unit_done();
}
