#define UNIT_CONFIG_CAPTURE /* the capture below is built once, for the tests that opt in */
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

void cap_open(struct capture *cap)
{
	cap->text = NULL;
	cap->len = 0;
	cap->d.out = open_memstream(&cap->text, &cap->len);
	cap->d.errors = 0;
}

const char *cap_text(struct capture *cap)
{
	fflush(cap->d.out); /* the memstream updates text and len only on flush */
	return cap->text ? cap->text : "";
}

void cap_close(struct capture *cap)
{
	fclose(cap->d.out);
	free(cap->text);
}
