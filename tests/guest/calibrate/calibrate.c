/* calibrate: how fast does this host run guest code? Times a fixed loop of
 * simple integer instructions (add, add, dec, jnz: four per iteration) with
 * rdtsc and prints millions of guest instructions per second, so that a test
 * can tell native KVM (hundreds to thousands of MIPS) from a KVM that runs
 * guests through its instruction emulator (a few MIPS), e.g. before
 * attempting a full Linux boot.
 *
 * The TSC frequency comes from kvm-clock (the scale KVM itself uses,
 * through MSR_KVM_SYSTEM_TIME_NEW) when the guest runs on KVM, else from
 * time_tsc_hz() (CPUID 0x15/0x16, else PIT channel 2, else an assumed
 * 1 GHz); the source is printed. The loop size
 * doubles from 64 Ki iterations until one run takes at least
 * calibrate.ms=N milliseconds (default 20) or reaches 2^28 iterations,
 * so an emulated host spends about 0.15 s here (one 256 Ki-instruction
 * run) and a native one a few tens of milliseconds. Output:
 *
 *   calibrate: tsc_hz=N source=kvmclock|cpuid-pit-or-1ghz
 *   calibrate: iterations=N instructions=N tsc_ticks=N
 *   calibrate: kips=N      (thousands of instructions a second)
 *   calibrate: mips=N      (kips / 1000, rounded down)
 *
 * then ACPI poweroff (host status 0). */
#include "guest.h"

#define INSNS_PER_ITER 4ull
#define ITER_START (64ull << 10)
#define ITER_MAX (1ull << 28)

/* KVM's paravirtual clock (Documentation/virt/kvm/x86/msr.rst): the
 * hypervisor fills this with the TSC -> nanoseconds scale it uses itself. */
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

/* TSC ticks per second from kvm-clock, or 0 when this is not KVM. */
static uint64_t tsc_hz_from_kvmclock(void)
{
	struct cpuid_regs sig = cpuid(KVM_CPUID_SIGNATURE, 0);

	if (sig.ebx != 0x4b4d564b || sig.ecx != 0x564b4d56 || sig.edx != 0x4d || /* "KVMKVMKVM" */
	    sig.eax < KVM_CPUID_FEATURES ||
	    !(cpuid(KVM_CPUID_FEATURES, 0).eax & KVM_FEATURE_CLOCKSOURCE2))
		return 0;
	wrmsr(MSR_KVM_SYSTEM_TIME_NEW, (uint64_t)(uintptr_t)&pvclock | 1);
	uint32_t ver, mul;
	int8_t shift;
	do {
		ver = *(volatile uint32_t *)&pvclock.version;
		__asm__ volatile("" ::: "memory");
		mul = pvclock.tsc_to_system_mul;
		shift = pvclock.tsc_shift;
		__asm__ volatile("" ::: "memory");
	} while ((ver & 1) || ver != *(volatile uint32_t *)&pvclock.version);
	wrmsr(MSR_KVM_SYSTEM_TIME_NEW, 0);
	if (!mul)
		return 0;
	/* ns = ((ticks << shift) * mul) >> 32, so hz = 1e9 * 2^32 / mul >> shift */
	uint64_t hz = (1000000000ull << 32) / mul;
	return shift >= 0 ? hz >> shift : hz << -shift;
}

/* Runs @iters iterations of the four-instruction loop; returns TSC ticks. */
static uint64_t timed_loop(uint64_t iters)
{
	uint64_t a = 1, b = 0, n = iters;
	uint64_t t0 = rdtsc();

	__asm__ volatile("1:\n\t"
			 "add $1, %0\n\t"
			 "add %0, %1\n\t"
			 "dec %2\n\t"
			 "jnz 1b"
			 : "+r"(a), "+r"(b), "+r"(n)
			 :
			 : "cc");
	return rdtsc() - t0;
}

int guest_main(void)
{
	const char *source = "kvmclock";
	uint64_t hz = tsc_hz_from_kvmclock();

	if (hz < 10000000) { /* not KVM, or nonsense */
		hz = time_tsc_hz();
		source = "cpuid-pit-or-1ghz";
	}
	uint64_t min_ms = cmdline_get_u64("calibrate.ms", 20);
	uint64_t min_ticks = hz / 1000 * (min_ms ? min_ms : 1);
	uint64_t iters = ITER_START, ticks;

	printf("calibrate: tsc_hz=%lu source=%s\n", hz, source);
	for (;;) {
		ticks = timed_loop(iters);
		if (ticks >= min_ticks || iters >= ITER_MAX)
			break;
		iters *= 2;
	}
	if (ticks == 0)
		ticks = 1;
	uint64_t insns = iters * INSNS_PER_ITER;
	/* insns / (ticks / hz) / 1e3, in an order that neither overflows
	 * (insns < 2^31, hz / 1000 < 2^26) nor truncates to 0 */
	uint64_t kips = insns * (hz / 1000) / ticks;

	printf("calibrate: iterations=%lu instructions=%lu tsc_ticks=%lu\n", iters, insns, ticks);
	printf("calibrate: kips=%lu\n", kips);
	printf("calibrate: mips=%lu\n", kips / 1000);
	return 0;
}
