/* A very small unit-test harness: CHECK() records a failure and goes on,
 * RUN() runs one test function, unit_done() prints a summary and returns
 * the process exit status. */
#ifndef KVMRUN_UNIT_H
#define KVMRUN_UNIT_H

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>

struct unit_state {
	unsigned checks, failures, tests;
	const char *current;
};

extern struct unit_state unit; /* test harness only; never in kvmrun itself */

void unit_fail(const char *file, int line, const char *expr);

#define CHECK(cond) do { unit.checks++; if (!(cond)) unit_fail(__FILE__, __LINE__, #cond); } while (0)
#define CHECK_EQ(a, b) do { \
	unit.checks++; \
	long long _a = (long long)(a), _b = (long long)(b); \
	if (_a != _b) { \
		fprintf(stderr, "  %s = %lld, %s = %lld\n", #a, _a, #b, _b); \
		unit_fail(__FILE__, __LINE__, #a " == " #b); \
	} \
} while (0)
#define CHECK_STREQ(a, b) do { \
	unit.checks++; \
	const char *_a = (a), *_b = (b); \
	if (!_a || !_b || strcmp(_a, _b) != 0) { \
		fprintf(stderr, "  %s = \"%s\", %s = \"%s\"\n", #a, _a ? _a : "(null)", #b, _b ? _b : "(null)"); \
		unit_fail(__FILE__, __LINE__, #a " == " #b); \
	} \
} while (0)

/* strstr(hay, needle): a message need only contain the words checked, so
 * the rest of its wording can change without touching the test. */
#define CHECK_HAS(hay, needle) do { \
	const char *_h = (hay), *_n = (needle); \
	unit.checks++; \
	if (!strstr(_h, _n)) { \
		fprintf(stderr, "  \"%s\" not in:\n%s\n", _n, _h); \
		unit_fail(__FILE__, __LINE__, "strstr(" #hay ", " #needle ")"); \
	} \
} while (0)

#define RUN(fn) do { unit.current = #fn; unit.tests++; fn(); } while (0)

/* Prints "N passed, N failed" over test functions and returns 0 or 1. */
int unit_done(void);

/* Config diagnostics (struct config_diag) captured in memory, for the tests
 * of the config code (test_config.c, test_check.c). Opt-in: a test defines
 * UNIT_CONFIG_CAPTURE before including this file, so that vmm/config.h stays
 * out of the other unit tests. */
#ifdef UNIT_CONFIG_CAPTURE
#include <stddef.h>

#include "vmm/config.h"

struct capture {
	char *text;
	size_t len;
	struct config_diag d;
};

/* Starts an empty capture with no errors counted; pass &cap->d on. */
void cap_open(struct capture *cap);
/* The messages so far (stays valid until cap_close). */
const char *cap_text(struct capture *cap);
void cap_close(struct capture *cap);
#endif

#endif
