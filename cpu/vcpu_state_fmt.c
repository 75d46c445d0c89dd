/* The section "vcpu.N": vcpu_state_save() and vcpu_state_parse(), pure
 * (no KVM), so the parse is fuzzed (tests/fuzz/fuzz_snapshot.c). The
 * ioctls are vcpu_state.c's. */
#include "cpu/vcpu_state.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void put_blob(struct state_w *w, const void *p, uint32_t n)
{
	state_put_u32(w, n);
	state_put_bytes(w, p, n);
}

void vcpu_state_save(const struct vcpu_state *s, struct state_w *w)
{
	char name[32];
	snprintf(name, sizeof(name), "vcpu.%u", s->index);
	state_section_begin(w, name, VCPU_STATE_VERSION);
	state_put_u32(w, s->index);
	state_put_u32(w, s->apic_id);
	put_blob(w, &s->regs, sizeof(s->regs));
	put_blob(w, &s->sregs, sizeof(s->sregs));
	put_blob(w, s->xsave, s->xsave_len);
	put_blob(w, &s->xcrs, sizeof(s->xcrs));
	put_blob(w, &s->lapic, sizeof(s->lapic));
	put_blob(w, &s->events, sizeof(s->events));
	put_blob(w, &s->debugregs, sizeof(s->debugregs));
	state_put_u32(w, s->mp.mp_state);
	state_put_u32(w, s->nr_msrs);
	for (uint32_t i = 0; i < s->nr_msrs; i++) {
		state_put_u32(w, s->msrs[i].index);
		state_put_u64(w, s->msrs[i].data);
	}
	put_blob(w, s->cpuid, s->nr_cpuid * (uint32_t)sizeof(*s->cpuid));
	state_put_u32(w, s->tsc_khz);
	state_section_end(w);
}

/* A blob that must be exactly @n bytes (a KVM struct of this ABI). */
static void get_fixed(struct state_r *r, void *p, uint32_t n, const char *what)
{
	uint32_t len = state_get_u32(r);
	if (!r->failed && len != n) {
		state_fail(r, "%s is %u bytes, this kvmrun's is %u", what, len, n);
		memset(p, 0, n);
		return;
	}
	state_get_bytes(r, p, n);
}

/* A blob of at most @max bytes, into a new buffer in *@out. */
static uint32_t get_var(struct state_r *r, void **out, uint32_t max, uint32_t unit,
			const char *what)
{
	uint32_t len = state_get_u32_max(r, max, what);
	if (r->failed)
		return 0;
	if (len % unit) {
		state_fail(r, "%s: %u bytes is not a whole number of %u-byte entries", what, len, unit);
		return 0;
	}
	*out = calloc(1, len ? len : 1);
	if (!*out) {
		state_fail(r, "%s: out of memory", what);
		return 0;
	}
	state_get_bytes(r, *out, len);
	return len;
}

static void check_semantics(struct state_r *r, struct vcpu_state *s)
{
	if (s->mp.mp_state > KVM_MP_STATE_SUSPENDED)
		state_fail(r, "MP state %u is not one KVM knows", s->mp.mp_state);
	if (s->xcrs.nr_xcrs > KVM_MAX_XCRS)
		state_fail(r, "%u XCRs, at most %d", s->xcrs.nr_xcrs, KVM_MAX_XCRS);
	if (s->xsave_len < sizeof(struct kvm_xsave))
		state_fail(r, "XSAVE area of %u bytes, at least %zu", s->xsave_len,
			   sizeof(struct kvm_xsave));
	for (uint32_t i = 0; i < s->nr_cpuid; i++)
		s->cpuid[i].padding[0] = s->cpuid[i].padding[1] = s->cpuid[i].padding[2] = 0;
}

int vcpu_state_parse(struct state_r *r, struct vcpu_state *s)
{
	memset(s, 0, sizeof(*s));
	s->index = state_get_u32(r);
	s->apic_id = state_get_u32(r);
	get_fixed(r, &s->regs, sizeof(s->regs), "regs");
	get_fixed(r, &s->sregs, sizeof(s->sregs), "sregs");
	void *p = NULL;
	s->xsave_len = get_var(r, &p, VCPU_STATE_MAX_XSAVE, 1, "XSAVE area");
	s->xsave = p;
	get_fixed(r, &s->xcrs, sizeof(s->xcrs), "xcrs");
	get_fixed(r, &s->lapic, sizeof(s->lapic), "lapic");
	get_fixed(r, &s->events, sizeof(s->events), "vcpu events");
	get_fixed(r, &s->debugregs, sizeof(s->debugregs), "debugregs");
	s->mp.mp_state = state_get_u32(r);
	uint32_t n = state_get_u32_max(r, VCPU_STATE_MAX_MSRS, "MSR count");
	s->msrs = calloc(n ? n : 1, sizeof(*s->msrs));
	if (!s->msrs)
		state_fail(r, "MSRs: out of memory");
	for (uint32_t i = 0; i < n && !r->failed; i++) {
		s->msrs[i].index = state_get_u32(r);
		s->msrs[i].data = state_get_u64(r);
	}
	s->nr_msrs = r->failed ? 0 : n;
	p = NULL;
	uint32_t bytes = get_var(r, &p, VCPU_STATE_MAX_CPUID * sizeof(*s->cpuid),
				 sizeof(*s->cpuid), "CPUID");
	s->cpuid = p;
	s->nr_cpuid = bytes / (uint32_t)sizeof(*s->cpuid);
	s->tsc_khz = state_get_u32(r);
	if (!r->failed)
		check_semantics(r, s);
	return state_r_finish(r);
}

void vcpu_state_free(struct vcpu_state *s)
{
	free(s->xsave);
	free(s->msrs);
	free(s->cpuid);
	s->xsave = NULL;
	s->msrs = NULL;
	s->cpuid = NULL;
}
