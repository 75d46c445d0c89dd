#include "cpu/cpuid.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#define CPUID_MAX_ENTRIES 256

static unsigned bits_for(unsigned count)
{
	unsigned b = 0;
	while ((1u << b) < count)
		b++;
	return b;
}

unsigned cpuid_thread_bits(const struct cpu_topology *t)
{
	return bits_for(t->threads);
}

unsigned cpuid_core_bits(const struct cpu_topology *t)
{
	return bits_for(t->cores);
}

uint32_t cpuid_apic_id(const struct cpu_topology *t, unsigned index)
{
	unsigned tb = cpuid_thread_bits(t), cb = cpuid_core_bits(t);
	unsigned thread = index % t->threads;
	unsigned core = (index / t->threads) % t->cores;
	unsigned socket = index / (t->threads * t->cores);
	return (socket << (tb + cb)) | (core << tb) | thread;
}

int cpuid_supported(int kvm_fd, struct kvm_cpuid2 **out)
{
	size_t sz = sizeof(struct kvm_cpuid2) +
		    CPUID_MAX_ENTRIES * sizeof(struct kvm_cpuid_entry2);
	struct kvm_cpuid2 *c = calloc(1, sz);
	if (!c)
		return -ENOMEM;
	c->nent = CPUID_MAX_ENTRIES;
	if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, c) < 0) {
		int e = errno;
		free(c);
		return -e;
	}
	*out = c;
	return 0;
}

static struct kvm_cpuid_entry2 *find(struct kvm_cpuid2 *c, uint32_t fn, uint32_t idx)
{
	for (uint32_t i = 0; i < c->nent; i++)
		if (c->entries[i].function == fn && c->entries[i].index == idx)
			return &c->entries[i];
	return NULL;
}

static void drop_leaf(struct kvm_cpuid2 *c, uint32_t fn)
{
	uint32_t w = 0;
	for (uint32_t i = 0; i < c->nent; i++)
		if (c->entries[i].function != fn)
			c->entries[w++] = c->entries[i];
	c->nent = w;
}

static void add_entry(struct kvm_cpuid2 *c, uint32_t fn, uint32_t idx,
		      uint32_t a, uint32_t b, uint32_t cx, uint32_t d)
{
	if (c->nent >= CPUID_MAX_ENTRIES)
		return;
	c->entries[c->nent++] = (struct kvm_cpuid_entry2){
		.function = fn, .index = idx, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
		.eax = a, .ebx = b, .ecx = cx, .edx = d,
	};
}

/* Leaves 0xB and 0x1F: one subleaf per level (SMT, core), then an invalid
 * one, each carrying the x2APIC ID in EDX (Intel SDM, CPUID leaf 0BH). */
static void set_topology_leaf(struct kvm_cpuid2 *c, uint32_t fn,
			      const struct cpu_topology *t, uint32_t apic_id)
{
	unsigned tb = cpuid_thread_bits(t), cb = cpuid_core_bits(t);
	drop_leaf(c, fn);
	add_entry(c, fn, 0, tb, t->threads, 0 | (1u << 8), apic_id);
	add_entry(c, fn, 1, tb + cb, t->threads * t->cores, 1 | (2u << 8), apic_id);
	add_entry(c, fn, 2, 0, 0, 2, apic_id);
}

static void patch_cache_leaf(struct kvm_cpuid2 *c, const struct cpu_topology *t)
{
	unsigned tb = cpuid_thread_bits(t), cb = cpuid_core_bits(t);
	for (uint32_t i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];
		if (e->function != 4 || (e->eax & 0x1f) == 0)
			continue;
		unsigned level = (e->eax >> 5) & 7;
		/* L1/L2 are per core, L3 per package */
		unsigned sharing = level >= 3 ? (1u << (tb + cb)) : (1u << tb);
		e->eax &= 0x3fff;
		e->eax |= ((sharing - 1) & 0xfff) << 14;
		e->eax |= (((1u << cb) - 1) & 0x3f) << 26;
	}
}

static void patch_amd_leaves(struct kvm_cpuid2 *c, const struct cpu_topology *t,
			     uint32_t apic_id)
{
	unsigned per_pkg = t->cores * t->threads;
	unsigned tb = cpuid_thread_bits(t), cb = cpuid_core_bits(t);
	struct kvm_cpuid_entry2 *e = find(c, 0x80000008, 0);
	if (e) {
		e->ecx &= ~0xf0ffu;
		e->ecx |= ((per_pkg - 1) & 0xff) | ((tb + cb) << 12);
	}
	e = find(c, 0x8000001e, 0);
	if (e) {
		e->eax = apic_id;
		e->ebx = ((t->threads - 1) << 8) | ((apic_id >> tb) & 0xff);
		e->ecx = (apic_id >> (tb + cb)) & 0xff;
	}
}

int cpuid_for_vcpu(const struct kvm_cpuid2 *base, const struct cpu_topology *t,
		   unsigned index, struct kvm_cpuid2 **out)
{
	size_t sz = sizeof(struct kvm_cpuid2) +
		    CPUID_MAX_ENTRIES * sizeof(struct kvm_cpuid_entry2);
	struct kvm_cpuid2 *c = calloc(1, sz);
	if (!c)
		return -ENOMEM;
	memcpy(c, base, sizeof(*base) + base->nent * sizeof(base->entries[0]));
	uint32_t apic_id = cpuid_apic_id(t, index);
	unsigned per_pkg_ids = 1u << (cpuid_thread_bits(t) + cpuid_core_bits(t));

	struct kvm_cpuid_entry2 *e = find(c, 1, 0);
	if (e) {
		e->ebx = (e->ebx & 0xffff) | ((per_pkg_ids & 0xff) << 16) | (apic_id << 24);
		if (t->cores * t->threads > 1)
			e->edx |= 1u << 28; /* HTT: more than one logical CPU per package */
		e->ecx |= 1u << 31;        /* running under a hypervisor */
	}
	struct kvm_cpuid_entry2 *leaf0 = find(c, 0, 0);
	uint32_t max_basic = leaf0 ? leaf0->eax : 0;
	if (max_basic >= 0xb)
		set_topology_leaf(c, 0xb, t, apic_id);
	if (max_basic >= 0x1f)
		set_topology_leaf(c, 0x1f, t, apic_id);
	patch_cache_leaf(c, t);
	patch_amd_leaves(c, t, apic_id);
	*out = c;
	return 0;
}

void cpuid_set_tsc_khz(struct kvm_cpuid2 *c, uint32_t tsc_khz)
{
	struct kvm_cpuid_entry2 *leaf0 = find(c, 0, 0);
	uint32_t max_basic = leaf0 ? leaf0->eax : 0;
	if (tsc_khz == 0)
		return;
	if (max_basic >= 0x15) {
		drop_leaf(c, 0x15);
		add_entry(c, 0x15, 0, 1, 1, tsc_khz * 1000u, 0);
		c->entries[c->nent - 1].flags = 0;
	}
	if (max_basic >= 0x16) {
		struct kvm_cpuid_entry2 *e = find(c, 0x16, 0);
		if (!e) {
			add_entry(c, 0x16, 0, 0, 0, 0, 0);
			e = &c->entries[c->nent - 1];
			e->flags = 0;
		}
		e->eax = tsc_khz / 1000u;
		e->ebx = tsc_khz / 1000u;
	}
}

void cpuid_set_tsc_deadline(struct kvm_cpuid2 *c)
{
	struct kvm_cpuid_entry2 *e = find(c, 1, 0);
	if (e)
		e->ecx |= 1u << 24;
}
