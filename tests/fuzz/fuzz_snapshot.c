/* libFuzzer target for what restore=DIR reads before anything is applied:
 * the snapshot header (vmm/snapshot_header.c), the state file's framing
 * (lib/state.c) and the KVM state sections (cpu/vcpu_state.c,
 * cpu/vm_state.c), exactly as vmm/restore.c parses them.
 *
 * Input: byte 0 even: the rest is a header file; odd: the rest is a state
 * file, and every "vcpu.N" and "kvm.vm" section in it is parsed.
 *
 * Invariants (abort on violation): no crash or sanitizer report; a failed
 * parse says why; a section that parses, written back by its saver and
 * parsed again, gives the same state (the format loses nothing); a header
 * that parses, written back, parses to the same header. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/vcpu_state.h"
#include "cpu/vm_state.h"
#include "lib/state.h"
#include "vmm/snapshot_header.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) { \
	fprintf(stderr, "fuzz_snapshot: invariant failed: %s (line %d)\n", #c, __LINE__); \
	abort(); } } while (0)

static void header(const uint8_t *p, size_t n)
{
	struct snapshot_header h, h2;
	char err[256] = "";
	if (snapshot_header_parse((const char *)p, n, &h, err, sizeof(err)) < 0) {
		CHECK(err[0]);
		return;
	}
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	CHECK(f);
	snapshot_header_write(&h, f);
	fclose(f);
	CHECK(snapshot_header_parse(text, len, &h2, err, sizeof(err)) == 0);
	h.version = h2.version; /* written as this kvmrun's version */
	CHECK(memcmp(&h, &h2, sizeof(h)) == 0);
	free(text);
}

/* Writes one section with @save, reads it back as a whole file. */
static int reread(void (*save)(const void *, struct state_w *), const void *s,
		  const char *name, uint32_t version, struct state_w *w, struct state_file *f,
		  struct state_r *r)
{
	const uint8_t *out;
	size_t len;
	char err[STATE_ERR_MAX];
	state_w_init(w);
	save(s, w);
	CHECK(state_w_finish(w, &out, &len) == 0);
	CHECK(state_file_parse(out, len, f, err, sizeof(err)) == 0);
	return state_section(f, name, version, r, err, sizeof(err));
}

static void save_vcpu(const void *s, struct state_w *w)
{
	vcpu_state_save(s, w);
}

static void save_vm(const void *s, struct state_w *w)
{
	vm_kvm_state_save(s, w);
}

static void vcpu(struct state_r *r, const char *name)
{
	struct vcpu_state s, s2;
	if (vcpu_state_parse(r, &s) < 0) {
		CHECK(r->err[0]);
		vcpu_state_free(&s);
		return;
	}
	struct state_w w;
	struct state_file f;
	struct state_r r2;
	char nm[32];
	snprintf(nm, sizeof(nm), "vcpu.%u", s.index);
	CHECK(reread(save_vcpu, &s, nm, VCPU_STATE_VERSION, &w, &f, &r2) == 0);
	CHECK(vcpu_state_parse(&r2, &s2) == 0);
	CHECK(memcmp(&s.regs, &s2.regs, sizeof(s.regs)) == 0);
	CHECK(memcmp(&s.sregs, &s2.sregs, sizeof(s.sregs)) == 0);
	CHECK(memcmp(&s.lapic, &s2.lapic, sizeof(s.lapic)) == 0);
	CHECK(s.xsave_len == s2.xsave_len && memcmp(s.xsave, s2.xsave, s.xsave_len) == 0);
	CHECK(s.nr_msrs == s2.nr_msrs &&
	      memcmp(s.msrs, s2.msrs, s.nr_msrs * sizeof(*s.msrs)) == 0);
	CHECK(s.nr_cpuid == s2.nr_cpuid &&
	      memcmp(s.cpuid, s2.cpuid, s.nr_cpuid * sizeof(*s.cpuid)) == 0);
	CHECK(s.mp.mp_state == s2.mp.mp_state && s.tsc_khz == s2.tsc_khz);
	(void)name;
	state_w_free(&w);
	vcpu_state_free(&s);
	vcpu_state_free(&s2);
}

static void vm(struct state_r *r)
{
	struct vm_kvm_state s, s2;
	if (vm_kvm_state_parse(r, &s) < 0) {
		CHECK(r->err[0]);
		return;
	}
	struct state_w w;
	struct state_file f;
	struct state_r r2;
	CHECK(reread(save_vm, &s, VM_STATE_SECTION, VM_STATE_VERSION, &w, &f, &r2) == 0);
	CHECK(vm_kvm_state_parse(&r2, &s2) == 0);
	CHECK(memcmp(&s, &s2, sizeof(s)) == 0);
	state_w_free(&w);
}

static void state(const uint8_t *p, size_t n)
{
	struct state_file f;
	char err[STATE_ERR_MAX] = "";
	if (state_file_parse(p, n, &f, err, sizeof(err)) < 0) {
		CHECK(err[0]);
		return;
	}
	char name[STATE_NAME_MAX + 1];
	for (uint32_t i = 0; state_section_name(&f, i, name, sizeof(name)); i++) {
		struct state_r r;
		bool is_vcpu = strncmp(name, "vcpu.", 5) == 0;
		bool is_vm = strcmp(name, VM_STATE_SECTION) == 0;
		if (!is_vcpu && !is_vm)
			continue;
		err[0] = 0;
		if (state_section(&f, name, is_vm ? VM_STATE_VERSION : VCPU_STATE_VERSION, &r,
				  err, sizeof(err)) < 0) {
			CHECK(err[0]);
			continue;
		}
		if (is_vm)
			vm(&r);
		else
			vcpu(&r, name);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	if (data[0] & 1)
		state(data + 1, size - 1);
	else
		header(data + 1, size - 1);
	return 0;
}
