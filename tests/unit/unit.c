#include "unit.h"

#include <stdlib.h>
#include <string.h>

struct unit_state unit;

static unsigned failed_tests;
static const char *last_failed;

void unit_fail(const char *file, int line, const char *expr)
{
	unit.failures++;
	if (last_failed != unit.current) {
		failed_tests++;
		last_failed = unit.current;
	}
	fprintf(stderr, "FAIL %s: %s:%d: %s\n", unit.current ? unit.current : "?",
		file, line, expr);
}

int unit_done(void)
{
	printf("%u checks in %u tests: %u passed, %u failed\n", unit.checks,
	       unit.tests, unit.tests - failed_tests, failed_tests);
	return unit.failures ? EXIT_FAILURE : EXIT_SUCCESS;
}
