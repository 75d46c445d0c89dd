/* The vCPU kick signal (cpu/vcpu.c): kvmrun installs its handler only on a
 * signal left at its default disposition, and never takes one the program
 * handles or ignores. Needs no /dev/kvm: only the signal's disposition. */
#include <errno.h>
#include <signal.h>
#include <string.h>

#include "unit.h"
#include "cpu/vcpu.h"

static void program_handler(int sig)
{
	(void)sig;
}

static void (*disposition(int sig))(int)
{
	struct sigaction sa;
	sigaction(sig, NULL, &sa);
	return sa.sa_handler;
}

static void test_default_signal_is_taken(void)
{
	int sig = vcpu_kick_signal();
	CHECK_EQ(sig, SIGRTMIN + 3);
	CHECK(disposition(sig) == SIG_DFL);
	CHECK_EQ(vcpu_kick_setup(sig), 0);
	void (*h)(int) = disposition(sig);
	CHECK(h != SIG_DFL && h != SIG_IGN);
	/* a second VM finds kvmrun's own handler there */
	CHECK_EQ(vcpu_kick_setup(sig), 0);
	CHECK(disposition(sig) == h);
}

static void test_program_signals_are_refused(void)
{
	struct sigaction sa = { .sa_handler = program_handler };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
	CHECK_EQ(vcpu_kick_setup(SIGUSR1), -EBUSY);
	CHECK(disposition(SIGUSR1) == program_handler);
	signal(SIGUSR2, SIG_IGN);
	CHECK_EQ(vcpu_kick_setup(SIGUSR2), -EBUSY);
	CHECK(disposition(SIGUSR2) == SIG_IGN);
	CHECK_EQ(vcpu_kick_setup(SIGKILL), -EINVAL);
	CHECK_EQ(vcpu_kick_setup(SIGSTOP), -EINVAL);
	CHECK_EQ(vcpu_kick_setup(0), -EINVAL);
	CHECK_EQ(vcpu_kick_setup(SIGRTMAX + 1), -EINVAL);
	/* another real-time signal at its default: fine */
	CHECK_EQ(vcpu_kick_setup(SIGRTMIN + 5), 0);
}

int main(void)
{
	RUN(test_default_signal_is_taken);
	RUN(test_program_signals_are_refused);
	return unit_done();
}
