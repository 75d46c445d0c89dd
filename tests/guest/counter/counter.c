/* counter: a guest that runs on until it is stopped, for pause, snapshot
 * and restore tests. It fills a buffer of RAM with a pattern, turns on
 * kvm-clock, then prints one line every counter.ms=N milliseconds
 * (default 20) of kvm-clock time:
 *
 *   counter: start buf=0xADDR bytes=N
 *   tick N clock_ms=M mem=ok|bad
 *
 * N counts from 0 and never repeats or skips; clock_ms is kvm-clock time
 * (which a pause holds still and a restore carries over); mem says
 * whether the window of the buffer checked on that tick still holds its
 * pattern (the whole buffer is checked every 64 ticks). A restored guest
 * goes on from the tick after the last one it printed before the pause,
 * with no "counter: start". Without kvm-clock it prints
 * "counter: no kvm-clock" and powers off. */
#include "guest.h"

#define BUF_ADDR 0x1000000ull     /* 16 MiB: clear of the image and boot data */
#define BUF_BYTES (8ull << 20)
#define WINDOWS 64

struct pvclock_vcpu_time_info {
	uint32_t version;
	uint32_t pad0;
	uint64_t tsc_timestamp;
	uint64_t system_time;
	uint32_t tsc_to_system_mul;
	int8_t tsc_shift;
	uint8_t flags;
	uint8_t pad[2];
} __attribute__((packed));

#define KVM_CPUID_SIGNATURE 0x40000000u
#define KVM_CPUID_FEATURES 0x40000001u
#define KVM_FEATURE_CLOCKSOURCE2 (1u << 3)
#define MSR_KVM_SYSTEM_TIME_NEW 0x4b564d01u

static struct pvclock_vcpu_time_info pvclock __attribute__((aligned(64)));

static bool kvmclock_on(void)
{
	struct cpuid_regs sig = cpuid(KVM_CPUID_SIGNATURE, 0);
	if (sig.ebx != 0x4b4d564b || sig.ecx != 0x564b4d56 || sig.edx != 0x4d ||
	    sig.eax < KVM_CPUID_FEATURES ||
	    !(cpuid(KVM_CPUID_FEATURES, 0).eax & KVM_FEATURE_CLOCKSOURCE2))
		return false;
	wrmsr(MSR_KVM_SYSTEM_TIME_NEW, (uint64_t)(uintptr_t)&pvclock | 1);
	return true;
}

static uint64_t clock_ns(void)
{
	uint32_t ver;
	uint64_t ns;
	do {
		ver = *(volatile uint32_t *)&pvclock.version;
		__asm__ volatile("" ::: "memory");
		uint64_t delta = rdtsc() - pvclock.tsc_timestamp;
		int8_t shift = pvclock.tsc_shift;
		delta = shift >= 0 ? delta << shift : delta >> -shift;
		ns = pvclock.system_time +
		     (uint64_t)(((unsigned __int128)delta * pvclock.tsc_to_system_mul) >> 32);
		__asm__ volatile("" ::: "memory");
	} while ((ver & 1) || ver != *(volatile uint32_t *)&pvclock.version);
	return ns;
}

static uint64_t pattern(uint64_t i)
{
	return (i + 1) * 0x9e3779b97f4a7c15ull;
}

static bool check_window(unsigned w)
{
	volatile uint64_t *buf = (volatile uint64_t *)(uintptr_t)BUF_ADDR;
	uint64_t words = BUF_BYTES / 8 / WINDOWS;
	for (uint64_t i = w * words; i < (w + 1) * words; i++)
		if (buf[i] != pattern(i))
			return false;
	return true;
}

int guest_main(void)
{
	if (!kvmclock_on()) {
		printf("counter: no kvm-clock\n");
		return 0;
	}
	volatile uint64_t *buf = (volatile uint64_t *)(uintptr_t)BUF_ADDR;
	for (uint64_t i = 0; i < BUF_BYTES / 8; i++)
		buf[i] = pattern(i);
	uint64_t period = cmdline_get_u64("counter.ms", 20) * 1000000ull;
	printf("counter: start buf=0x%lx bytes=%lu\n", (unsigned long)BUF_ADDR,
	       (unsigned long)BUF_BYTES);
	uint64_t next = clock_ns();
	for (uint64_t n = 0;; n++) {
		while (clock_ns() < next)
			__asm__ volatile("pause");
		next += period;
		bool ok = check_window((unsigned)(n % WINDOWS));
		printf("tick %lu clock_ms=%lu mem=%s\n", (unsigned long)n,
		       (unsigned long)(clock_ns() / 1000000), ok ? "ok" : "bad");
	}
}
