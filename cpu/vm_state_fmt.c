/* The section "kvm.vm": vm_kvm_state_save() and vm_kvm_state_parse(),
 * pure (no KVM) and fuzzed; the ioctls are vm_state.c's. */
#include "cpu/vm_state.h"

#include <string.h>

static const char *const chip_names[3] = { "PIC master", "PIC slave", "IOAPIC" };

void vm_kvm_state_save(const struct vm_kvm_state *s, struct state_w *w)
{
	state_section_begin(w, VM_STATE_SECTION, VM_STATE_VERSION);
	for (unsigned i = 0; i < 3; i++) {
		state_put_u32(w, (uint32_t)sizeof(s->chip[i].chip));
		state_put_bytes(w, &s->chip[i].chip, sizeof(s->chip[i].chip));
	}
	state_put_u32(w, (uint32_t)sizeof(s->pit));
	state_put_bytes(w, &s->pit, sizeof(s->pit));
	state_put_u64(w, s->clock);
	state_section_end(w);
}

static void get_fixed(struct state_r *r, void *p, uint32_t n, const char *what)
{
	uint32_t len = state_get_u32(r);
	if (!r->failed && len != n) {
		state_fail(r, "%s is %u bytes, this kvmrun's is %u", what, len, n);
		return;
	}
	state_get_bytes(r, p, n);
}

/* Values KVM would take but no PIT can be in. */
static void check_pit(struct state_r *r, const struct kvm_pit_state2 *p)
{
	for (unsigned i = 0; i < 3; i++) {
		const struct kvm_pit_channel_state *c = &p->channels[i];
		/* mode 0xff: never programmed (KVM's reset value) */
		if ((c->mode > 5 && c->mode != 0xff) || c->rw_mode > 3 || c->read_state > 4 || c->write_state > 4)
			state_fail(r, "PIT channel %u: mode %u, rw mode %u, read/write state %u/%u "
				   "out of range", i, c->mode, c->rw_mode, c->read_state, c->write_state);
	}
}

int vm_kvm_state_parse(struct state_r *r, struct vm_kvm_state *s)
{
	memset(s, 0, sizeof(*s));
	for (uint32_t i = 0; i < 3; i++) {
		s->chip[i].chip_id = i;
		get_fixed(r, &s->chip[i].chip, sizeof(s->chip[i].chip), chip_names[i]);
	}
	get_fixed(r, &s->pit, sizeof(s->pit), "PIT");
	s->clock = state_get_u64(r);
	if (!r->failed)
		check_pit(r, &s->pit);
	return state_r_finish(r);
}
