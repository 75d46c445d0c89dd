/* Snapshot formats without KVM: the vCPU and VM state sections written
 * and parsed back, each kind of damage refused with a reason; the header
 * parser; restore='s config rules (which keys may be given anew). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define UNIT_CONFIG_CAPTURE
#include "cpu/vcpu_state.h"
#include "cpu/vm_state.h"
#include "lib/state.h"
#include "unit.h"
#include "vmm/snapshot_header.h"

static void sample_vcpu(struct vcpu_state *s)
{
	memset(s, 0, sizeof(*s));
	s->index = 1;
	s->apic_id = 1;
	s->regs.rip = 0x100123;
	s->regs.rax = 0xfeedface;
	s->sregs.cr0 = 0x80050033;
	s->sregs.efer = 0xd01;
	s->xsave_len = 4096 + 64;
	s->xsave = calloc(1, s->xsave_len);
	s->xsave[4096 + 63] = 0x5a;
	s->lapic.regs[0x20] = 7;
	s->mp.mp_state = KVM_MP_STATE_HALTED;
	s->nr_msrs = 3;
	s->msrs = calloc(3, sizeof(*s->msrs));
	s->msrs[0] = (struct kvm_msr_entry){ .index = 0x10, .data = 123456789 };
	s->msrs[1] = (struct kvm_msr_entry){ .index = 0x4b564d01, .data = 0x1001 };
	s->msrs[2] = (struct kvm_msr_entry){ .index = 0xc0000080, .data = 0xd01 };
	s->nr_cpuid = 2;
	s->cpuid = calloc(2, sizeof(*s->cpuid));
	s->cpuid[1] = (struct kvm_cpuid_entry2){ .function = 0x40000001, .eax = 8 };
	s->tsc_khz = 2000000;
}

/* The file of @s as one section; the bytes are the caller's to free. */
static uint8_t *file_of(const struct vcpu_state *s, size_t *len)
{
	struct state_w w;
	state_w_init(&w);
	vcpu_state_save(s, &w);
	const uint8_t *p;
	CHECK_EQ(state_w_finish(&w, &p, len), 0);
	uint8_t *copy = malloc(*len);
	memcpy(copy, p, *len);
	state_w_free(&w);
	return copy;
}

static int parse(const uint8_t *buf, size_t len, struct vcpu_state *out, char *err)
{
	struct state_file f;
	if (state_file_parse(buf, len, &f, err, STATE_ERR_MAX) < 0)
		return -1;
	struct state_r r;
	if (state_section(&f, "vcpu.1", VCPU_STATE_VERSION, &r, err, STATE_ERR_MAX) < 0)
		return -2;
	int rc = vcpu_state_parse(&r, out);
	if (rc < 0)
		snprintf(err, STATE_ERR_MAX, "%s", r.err);
	return rc;
}

static void test_vcpu_round_trip(void)
{
	struct vcpu_state s, t;
	sample_vcpu(&s);
	size_t len;
	uint8_t *buf = file_of(&s, &len);
	char err[STATE_ERR_MAX] = "";
	CHECK_EQ(parse(buf, len, &t, err), 0);
	CHECK_EQ(t.index, 1);
	CHECK_EQ(t.regs.rip, 0x100123);
	CHECK_EQ(t.regs.rax, 0xfeedface);
	CHECK_EQ(t.sregs.efer, 0xd01);
	CHECK_EQ(t.xsave_len, 4096 + 64);
	CHECK_EQ(t.xsave[4096 + 63], 0x5a);
	CHECK_EQ(t.lapic.regs[0x20], 7);
	CHECK_EQ(t.mp.mp_state, KVM_MP_STATE_HALTED);
	CHECK_EQ(t.nr_msrs, 3);
	CHECK_EQ(t.msrs[1].index, 0x4b564d01);
	CHECK_EQ(t.msrs[0].data, 123456789);
	CHECK_EQ(t.nr_cpuid, 2);
	CHECK_EQ(t.cpuid[1].function, 0x40000001);
	CHECK_EQ(t.tsc_khz, 2000000);
	vcpu_state_free(&t);
	free(buf);
	vcpu_state_free(&s);
}

/* Each damage to a good section, and the words its refusal must hold. */
static void test_vcpu_hostile(void)
{
	struct vcpu_state s, t;
	char err[STATE_ERR_MAX];
	sample_vcpu(&s);
	s.mp.mp_state = 99;
	size_t len;
	uint8_t *buf = file_of(&s, &len);
	CHECK(parse(buf, len, &t, err) < 0);
	CHECK_HAS(err, "MP state 99");
	vcpu_state_free(&t);
	free(buf);

	s.mp.mp_state = 0;
	s.xsave_len = 100;
	buf = file_of(&s, &len);
	CHECK(parse(buf, len, &t, err) < 0);
	CHECK_HAS(err, "XSAVE area of 100 bytes");
	vcpu_state_free(&t);
	free(buf);
	s.xsave_len = 4096;

	/* the section cut short: the framing still right, the payload not */
	struct state_w w;
	state_w_init(&w);
	state_section_begin(&w, "vcpu.1", VCPU_STATE_VERSION);
	state_put_u32(&w, 1);
	state_put_u32(&w, 1);
	state_put_u32(&w, 100);          /* regs: the wrong size */
	state_section_end(&w);
	const uint8_t *p;
	CHECK_EQ(state_w_finish(&w, &p, &len), 0);
	CHECK(parse(p, len, &t, err) < 0);
	CHECK_HAS(err, "regs is 100 bytes");
	vcpu_state_free(&t);
	state_w_free(&w);

	/* an MSR count far beyond the cap */
	state_w_init(&w);
	state_section_begin(&w, "vcpu.1", VCPU_STATE_VERSION);
	state_put_u32(&w, 1);
	state_put_u32(&w, 1);
	state_section_end(&w);
	CHECK_EQ(state_w_finish(&w, &p, &len), 0);
	CHECK(parse(p, len, &t, err) < 0);
	CHECK_HAS(err, "vcpu.1");
	vcpu_state_free(&t);
	state_w_free(&w);

	/* a newer section version is refused, naming it */
	state_w_init(&w);
	state_section_begin(&w, "vcpu.1", VCPU_STATE_VERSION + 1);
	state_section_end(&w);
	CHECK_EQ(state_w_finish(&w, &p, &len), 0);
	CHECK_EQ(parse(p, len, &t, err), -2);
	CHECK_HAS(err, "version");
	state_w_free(&w);
	vcpu_state_free(&s);
}

static void test_vm_state(void)
{
	struct vm_kvm_state s, t;
	memset(&s, 0, sizeof(s));
	s.chip[2].chip.ioapic.id = 3;
	s.chip[2].chip.ioapic.redirtbl[2].bits = 0x10030;
	s.pit.channels[0].mode = 2;
	s.pit.channels[0].count = 0x10000;
	s.clock = 987654321;
	struct state_w w;
	state_w_init(&w);
	vm_kvm_state_save(&s, &w);
	const uint8_t *p;
	size_t len;
	CHECK_EQ(state_w_finish(&w, &p, &len), 0);
	char err[STATE_ERR_MAX];
	struct state_file f;
	struct state_r r;
	CHECK_EQ(state_file_parse(p, len, &f, err, sizeof(err)), 0);
	CHECK_EQ(state_section(&f, VM_STATE_SECTION, VM_STATE_VERSION, &r, err, sizeof(err)), 0);
	CHECK_EQ(vm_kvm_state_parse(&r, &t), 0);
	CHECK_EQ(t.chip[2].chip_id, KVM_IRQCHIP_IOAPIC);
	CHECK_EQ(t.chip[2].chip.ioapic.redirtbl[2].bits, 0x10030);
	CHECK_EQ(t.pit.channels[0].count, 0x10000);
	CHECK_EQ(t.clock, 987654321);
	state_w_free(&w);

	s.pit.channels[1].mode = 6;   /* no PIT has mode 6 */
	state_w_init(&w);
	vm_kvm_state_save(&s, &w);
	CHECK_EQ(state_w_finish(&w, &p, &len), 0);
	CHECK_EQ(state_file_parse(p, len, &f, err, sizeof(err)), 0);
	CHECK_EQ(state_section(&f, VM_STATE_SECTION, VM_STATE_VERSION, &r, err, sizeof(err)), 0);
	CHECK(vm_kvm_state_parse(&r, &t) < 0);
	CHECK_HAS(r.err, "PIT channel 1");
	state_w_free(&w);
}

static int header(const char *text, struct snapshot_header *h, char *err)
{
	return snapshot_header_parse(text, strlen(text), h, err, 256);
}

static void test_header(void)
{
	struct snapshot_header h = { .mem = 256ull << 20, .cpus = 2, .state_size = 12345,
				     .state_crc = 0xabcdef01 };
	h.disk_present[3] = true;
	h.disk_size[3] = 1ull << 30;
	char *text = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&text, &n);
	snapshot_header_write(&h, f);
	fclose(f);
	struct snapshot_header g;
	char err[256] = "";
	CHECK_EQ(snapshot_header_parse(text, n, &g, err, sizeof(err)), 0);
	CHECK_EQ(g.version, SNAPSHOT_VERSION);
	CHECK_EQ(g.mem, 256ull << 20);
	CHECK_EQ(g.cpus, 2);
	CHECK_EQ(g.state_crc, 0xabcdef01);
	CHECK(g.disk_present[3] && !g.disk_present[0]);
	CHECK_EQ(g.disk_size[3], 1ull << 30);
	free(text);

	const char *good = "format=kvmrun-snapshot\nversion=1\nmem=1048576\ncpus=1\n"
			   "state_size=10\nstate_crc=0\n";
	CHECK_EQ(header(good, &g, err), 0);
	CHECK(header("version=1\n", &g, err) < 0);
	CHECK_HAS(err, "not a kvmrun snapshot header");
	CHECK(header("format=kvmrun-snapshot\nversion=2\n", &g, err) < 0);
	CHECK_HAS(err, "snapshot version 2 is newer than this kvmrun reads (1)");
	CHECK(header("format=kvmrun-snapshot\nversion=1\nmem=1\n", &g, err) < 0);
	CHECK_HAS(err, "cpus= is missing");
	char buf[512];
	snprintf(buf, sizeof(buf), "%scpus=1\n", good);
	CHECK(header(buf, &g, err) < 0);
	CHECK_HAS(err, "line 7: key repeated");
	snprintf(buf, sizeof(buf), "%sdisk9_size=1\n", good);
	CHECK(header(buf, &g, err) < 0);
	CHECK_HAS(err, "unknown or repeated key 'disk9_size'");
	snprintf(buf, sizeof(buf), "%s", good);
	memcpy(strstr(buf, "cpus=1"), "cpus=0", 6);
	CHECK(header(buf, &g, err) < 0);
	CHECK_HAS(err, "cpus=0 is not a valid value");
	CHECK(snapshot_header_parse("format=kvmrun-snapshot\0", 23, &g, err, sizeof(err)) < 0);
	CHECK_HAS(err, "NUL");
}

/* restore=: the snapshot's config, and only the keys that may change. */
static void test_restore_config(void)
{
	char dir[] = "/tmp/kvmrun-unit-snapXXXXXX";
	CHECK(mkdtemp(dir) != NULL);
	char path[128];
	snprintf(path, sizeof(path), "%s/config", dir);
	FILE *f = fopen(path, "w");
	fputs("kernel=/nonexistent/guest.elf\nmem=256M\ncpus=2\ncontrol=/run/w.sock\n", f);
	fclose(f);

	struct vm_config c;
	struct capture cap;
	config_init(&c);
	cap_open(&cap);
	CHECK_EQ(config_restore_load(&c, dir, &cap.d), 0);
	CHECK_EQ(c.mem, 256ull << 20);
	CHECK(c.control == NULL);     /* the running VM may hold it */
	char arg[160];
	snprintf(arg, sizeof(arg), "restore=%s", dir);
	CHECK_EQ(config_apply_arg(&c, arg, 1, &cap.d), 0);
	CHECK_EQ(config_apply_arg(&c, "timeout=30", 2, &cap.d), 0);
	CHECK_EQ(config_apply_arg(&c, "control=/tmp/new.sock", 3, &cap.d), 0);
	CHECK_EQ(config_restore_check(&c, &cap.d), 0);
	CHECK_EQ(config_validate(&c, &cap.d), 0);   /* no kernel needed */
	CHECK_EQ(config_apply_arg(&c, "mem=512M", 4, &cap.d), 0);
	CHECK_EQ(config_apply_arg(&c, "net0.mtu=9000", 5, &cap.d), 0);
	CHECK(config_restore_check(&c, &cap.d) < 0);
	CHECK_HAS(cap_text(&cap), "mem: cannot change across a restore");
	CHECK_HAS(cap_text(&cap), "net0.mtu: cannot change across a restore");
	cap_close(&cap);
	config_free(&c);

	config_init(&c);
	cap_open(&cap);
	CHECK(config_restore_load(&c, "/nonexistent-snapshot", &cap.d) < 0);
	CHECK_HAS(cap_text(&cap), "does not hold a snapshot's readable configuration");
	cap_close(&cap);
	config_free(&c);
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	RUN(test_vcpu_round_trip);
	RUN(test_vcpu_hostile);
	RUN(test_vm_state);
	RUN(test_header);
	RUN(test_restore_config);
	return unit_done();
}
