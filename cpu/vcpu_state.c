#include "cpu/vcpu_state.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

__attribute__((format(printf, 3, 4)))
static int fail(char *err, size_t len, const char *fmt, ...)
{
	int e = errno;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(err, len, fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n < len)
		snprintf(err + n, len - (size_t)n, ": %s", strerror(e));
	return e ? -e : -EIO;
}

uint32_t vcpu_state_xsave_len(int kvm_fd)
{
	int n = ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);
	return n > (int)sizeof(struct kvm_xsave) ? (uint32_t)n : (uint32_t)sizeof(struct kvm_xsave);
}

int vcpu_state_msr_list(int kvm_fd, uint32_t **out, uint32_t *nr)
{
	struct kvm_msr_list probe = { .nmsrs = 0 };
	if (ioctl(kvm_fd, KVM_GET_MSR_INDEX_LIST, &probe) < 0 && errno != E2BIG)
		return -errno;
	if (probe.nmsrs > VCPU_STATE_MAX_MSRS)
		probe.nmsrs = VCPU_STATE_MAX_MSRS;
	struct kvm_msr_list *l = calloc(1, sizeof(*l) + probe.nmsrs * sizeof(uint32_t));
	if (!l)
		return -ENOMEM;
	l->nmsrs = probe.nmsrs;
	if (ioctl(kvm_fd, KVM_GET_MSR_INDEX_LIST, l) < 0) {
		int e = errno;
		free(l);
		return -e;
	}
	*out = malloc((l->nmsrs ? l->nmsrs : 1) * sizeof(uint32_t));
	if (!*out) {
		free(l);
		return -ENOMEM;
	}
	memcpy(*out, l->indices, l->nmsrs * sizeof(uint32_t));
	*nr = l->nmsrs;
	free(l);
	return 0;
}

/* KVM_GET_MSRS stops at the first MSR it cannot read: read what reads,
 * skip the one that stopped it, go on. */
static int get_msrs(int fd, const uint32_t *idx, uint32_t n, struct vcpu_state *s)
{
	struct kvm_msrs *m = calloc(1, sizeof(*m) + n * sizeof(struct kvm_msr_entry));
	s->msrs = calloc(n ? n : 1, sizeof(*s->msrs));
	if (!m || !s->msrs) {
		free(m);
		return -ENOMEM;
	}
	uint32_t at = 0;
	while (at < n) {
		m->nmsrs = n - at;
		for (uint32_t i = 0; i < m->nmsrs; i++)
			m->entries[i] = (struct kvm_msr_entry){ .index = idx[at + i] };
		int got = ioctl(fd, KVM_GET_MSRS, m);
		if (got < 0) {
			int e = errno;
			free(m);
			return -e;
		}
		memcpy(s->msrs + s->nr_msrs, m->entries, (size_t)got * sizeof(*s->msrs));
		s->nr_msrs += (uint32_t)got;
		at += (uint32_t)got + 1; /* the one after those read did not */
	}
	free(m);
	return 0;
}

static int get_cpuid(int fd, struct vcpu_state *s)
{
	uint32_t n = VCPU_STATE_MAX_CPUID;
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(struct kvm_cpuid_entry2));
	if (!c)
		return -ENOMEM;
	c->nent = n;
	if (ioctl(fd, KVM_GET_CPUID2, c) < 0) {
		int e = errno;
		free(c);
		return -e;
	}
	s->cpuid = malloc((c->nent ? c->nent : 1) * sizeof(*s->cpuid));
	if (!s->cpuid) {
		free(c);
		return -ENOMEM;
	}
	memcpy(s->cpuid, c->entries, c->nent * sizeof(*s->cpuid));
	s->nr_cpuid = c->nent;
	free(c);
	return 0;
}

static int get_xsave(int kvm_fd, int fd, struct vcpu_state *s)
{
	s->xsave_len = vcpu_state_xsave_len(kvm_fd);
	if (s->xsave_len > VCPU_STATE_MAX_XSAVE)
		return -E2BIG;
	s->xsave = calloc(1, s->xsave_len);
	if (!s->xsave)
		return -ENOMEM;
	unsigned long req = s->xsave_len > sizeof(struct kvm_xsave) ? KVM_GET_XSAVE2 : KVM_GET_XSAVE;
	return ioctl(fd, req, s->xsave) < 0 ? -errno : 0;
}

int vcpu_state_get(int kvm_fd, int fd, const uint32_t *msr_index, uint32_t nr_msr_index,
		   struct vcpu_state *s, char *err, size_t len)
{
	errno = 0;
	if (ioctl(fd, KVM_GET_REGS, &s->regs) < 0)
		return fail(err, len, "KVM_GET_REGS");
	if (ioctl(fd, KVM_GET_SREGS, &s->sregs) < 0)
		return fail(err, len, "KVM_GET_SREGS");
	int rc = get_xsave(kvm_fd, fd, s);
	if (rc < 0) {
		errno = -rc;
		return fail(err, len, "KVM_GET_XSAVE (%u bytes)", s->xsave_len);
	}
	if (ioctl(fd, KVM_GET_XCRS, &s->xcrs) < 0)
		return fail(err, len, "KVM_GET_XCRS");
	if (ioctl(fd, KVM_GET_LAPIC, &s->lapic) < 0)
		return fail(err, len, "KVM_GET_LAPIC");
	if (ioctl(fd, KVM_GET_VCPU_EVENTS, &s->events) < 0)
		return fail(err, len, "KVM_GET_VCPU_EVENTS");
	if (ioctl(fd, KVM_GET_DEBUGREGS, &s->debugregs) < 0)
		return fail(err, len, "KVM_GET_DEBUGREGS");
	if (ioctl(fd, KVM_GET_MP_STATE, &s->mp) < 0)
		return fail(err, len, "KVM_GET_MP_STATE");
	rc = get_msrs(fd, msr_index, nr_msr_index, s);
	if (rc < 0) {
		errno = -rc;
		return fail(err, len, "KVM_GET_MSRS");
	}
	rc = get_cpuid(fd, s);
	if (rc < 0) {
		errno = -rc;
		return fail(err, len, "KVM_GET_CPUID2");
	}
	int khz = ioctl(fd, KVM_GET_TSC_KHZ, 0);
	s->tsc_khz = khz > 0 ? (uint32_t)khz : 0;
	return 0;
}

/* ------------------------------------------------------------- applying */

static int set_cpuid(int fd, const struct vcpu_state *s)
{
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + s->nr_cpuid * sizeof(*s->cpuid));
	if (!c)
		return -ENOMEM;
	c->nent = s->nr_cpuid;
	memcpy(c->entries, s->cpuid, s->nr_cpuid * sizeof(*s->cpuid));
	int rc = ioctl(fd, KVM_SET_CPUID2, c) < 0 ? -errno : 0;
	free(c);
	return rc;
}

#define MSR_IA32_TSC_DEADLINE 0x6e0

/* KVM_SET_MSRS stops at the first MSR it refuses: skip that one, count
 * it, go on with the rest. @deadline: only the TSC deadline MSR, which
 * KVM ignores unless the LAPIC's timer is in TSC-deadline mode, so it is
 * set after the LAPIC; else every MSR but that one. */
static int set_msrs(int fd, const struct vcpu_state *s, bool deadline, unsigned *skipped,
		    uint32_t *first)
{
	struct kvm_msrs *m = calloc(1, sizeof(*m) + s->nr_msrs * sizeof(struct kvm_msr_entry));
	if (!m)
		return -ENOMEM;
	uint32_t n = 0;
	for (uint32_t i = 0; i < s->nr_msrs; i++)
		if ((s->msrs[i].index == MSR_IA32_TSC_DEADLINE) == deadline)
			m->entries[n++] = s->msrs[i];
	struct kvm_msr_entry *all = malloc((n ? n : 1) * sizeof(*all));
	if (!all) {
		free(m);
		return -ENOMEM;
	}
	memcpy(all, m->entries, n * sizeof(*all));
	uint32_t at = 0;
	while (at < n) {
		m->nmsrs = n - at;
		memcpy(m->entries, all + at, m->nmsrs * sizeof(*all));
		int set = ioctl(fd, KVM_SET_MSRS, m);
		if (set < 0) {
			int e = errno;
			free(all);
			free(m);
			return -e;
		}
		at += (uint32_t)set;
		if (at < n) {
			if ((*skipped)++ == 0)
				*first = all[at].index;
			at++;
		}
	}
	free(all);
	free(m);
	return 0;
}

int vcpu_state_set(int fd, const struct vcpu_state *s, unsigned *msrs_skipped,
		   uint32_t *msr_first, char *err, size_t len)
{
	errno = 0;
	int rc = set_cpuid(fd, s);
	if (rc < 0) {
		errno = -rc;
		return fail(err, len, "KVM_SET_CPUID2 (%u entries)", s->nr_cpuid);
	}
	if (s->tsc_khz && ioctl(fd, KVM_GET_TSC_KHZ, 0) != (int)s->tsc_khz &&
	    ioctl(fd, KVM_SET_TSC_KHZ, (unsigned long)s->tsc_khz) < 0)
		return fail(err, len, "KVM_SET_TSC_KHZ %u (the snapshot's TSC rate)", s->tsc_khz);
	if (ioctl(fd, KVM_SET_REGS, &s->regs) < 0)
		return fail(err, len, "KVM_SET_REGS");
	if (ioctl(fd, KVM_SET_XSAVE, s->xsave) < 0)
		return fail(err, len, "KVM_SET_XSAVE");
	if (ioctl(fd, KVM_SET_XCRS, &s->xcrs) < 0)
		return fail(err, len, "KVM_SET_XCRS");
	if (ioctl(fd, KVM_SET_SREGS, &s->sregs) < 0)
		return fail(err, len, "KVM_SET_SREGS");
	rc = set_msrs(fd, s, false, msrs_skipped, msr_first);
	if (rc < 0) {
		errno = -rc;
		return fail(err, len, "KVM_SET_MSRS");
	}
	struct kvm_vcpu_events ev = s->events;
	ev.flags |= KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SIPI_VECTOR;
	if (ioctl(fd, KVM_SET_VCPU_EVENTS, &ev) < 0)
		return fail(err, len, "KVM_SET_VCPU_EVENTS");
	if (ioctl(fd, KVM_SET_MP_STATE, &s->mp) < 0)
		return fail(err, len, "KVM_SET_MP_STATE %u", s->mp.mp_state);
	if (ioctl(fd, KVM_SET_LAPIC, &s->lapic) < 0)
		return fail(err, len, "KVM_SET_LAPIC");
	rc = set_msrs(fd, s, true, msrs_skipped, msr_first);
	if (rc < 0) {
		errno = -rc;
		return fail(err, len, "KVM_SET_MSRS (TSC deadline)");
	}
	if (ioctl(fd, KVM_SET_DEBUGREGS, &s->debugregs) < 0)
		return fail(err, len, "KVM_SET_DEBUGREGS");
	return 0;
}
