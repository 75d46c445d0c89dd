/* lib/ratelimit: the token bucket over a fake clock. */
#include <stdint.h>
#include <string.h>

#include "lib/ratelimit.h"
#include "unit.h"

#define MS 1000000ull
#define S 1000000000ull

static void test_unlimited(void)
{
	struct ratelimit r;
	ratelimit_init(&r, 0, 0, 0);
	CHECK(ratelimit_unlimited(&r));
	for (int i = 0; i < 1000; i++)
		CHECK(ratelimit_try(&r, 1u << 30, 0));
	CHECK_EQ(ratelimit_wait_ns(&r, UINT64_MAX), 0);
}

/* Starts full with burst tokens, then gives exactly rate a second. */
static void test_burst_then_rate(void)
{
	struct ratelimit r;
	ratelimit_init(&r, 100, 10, 5 * S);
	unsigned got = 0;
	while (ratelimit_try(&r, 1, 5 * S))
		got++;
	CHECK_EQ(got, 10);
	CHECK_EQ(ratelimit_wait_ns(&r, 1), 10 * MS);
	CHECK(!ratelimit_try(&r, 1, 5 * S + 9 * MS));
	CHECK(ratelimit_try(&r, 1, 5 * S + 10 * MS));
	/* one simulated second in 1 ms steps: 100 requests, no rounding loss */
	got = 0;
	for (uint64_t t = 5 * S + 10 * MS; t <= 6 * S + 10 * MS; t += MS)
		while (ratelimit_try(&r, 1, t))
			got++;
	CHECK_EQ(got, 100);
}

/* A refill remainder below one token survives many small steps. */
static void test_fractional_rate(void)
{
	struct ratelimit r;
	ratelimit_init(&r, 3, 1, 0);
	CHECK(ratelimit_try(&r, 1, 0));
	unsigned got = 0;
	for (uint64_t t = 0; t <= 10 * S; t += 7 * MS)
		got += ratelimit_try(&r, 1, t);
	CHECK(got >= 29 && got <= 30);
}

/* The bucket never holds more than burst, however long it idles. */
static void test_cap(void)
{
	struct ratelimit r;
	ratelimit_init(&r, 1000, 50, 0);
	ratelimit_refill(&r, 3600 * S);
	CHECK_EQ(r.tokens, 50);
	CHECK(ratelimit_ready(&r, 50));
	ratelimit_take(&r, 50);
	CHECK(!ratelimit_ready(&r, 1));
	CHECK_EQ(ratelimit_wait_ns(&r, 1), 1 * MS);
	CHECK_EQ(ratelimit_wait_ns(&r, 50), 50 * MS);
}

/* A request larger than the bucket goes on a full bucket and leaves a
 * debt, so large requests still average the rate. */
static void test_oversized(void)
{
	struct ratelimit r;
	ratelimit_init(&r, 1000, 100, 0); /* bytes: 1000/s, 100 burst */
	CHECK(ratelimit_try(&r, 4096, 0));
	CHECK_EQ(r.tokens, 100 - 4096);
	/* needs the debt paid back and 100 more: 4.096 s */
	CHECK_EQ(ratelimit_wait_ns(&r, 4096), 4096 * MS);
	CHECK(!ratelimit_try(&r, 4096, 4096 * MS - 1));
	CHECK(ratelimit_try(&r, 4096, 4096 * MS));
}

/* Time going backwards (or standing still) adds nothing. */
static void test_monotonic(void)
{
	struct ratelimit r;
	ratelimit_init(&r, 10, 1, 10 * S);
	CHECK(ratelimit_try(&r, 1, 10 * S));
	CHECK(!ratelimit_try(&r, 1, 1 * S));
	CHECK(!ratelimit_try(&r, 1, 10 * S));
	CHECK(ratelimit_try(&r, 1, 10 * S + 100 * MS));
}

/* Huge rates and sizes do not overflow. */
static void test_extremes(void)
{
	struct ratelimit r;
	ratelimit_init(&r, UINT64_MAX, 0, 0);
	CHECK(ratelimit_try(&r, UINT64_MAX, 0));
	ratelimit_refill(&r, UINT64_MAX);
	CHECK(ratelimit_ready(&r, 1));
	ratelimit_init(&r, 1, 1, 0);
	ratelimit_take(&r, UINT64_MAX);
	ratelimit_take(&r, UINT64_MAX);
	CHECK(!ratelimit_ready(&r, 1));
	CHECK(ratelimit_wait_ns(&r, 1) > 1000 * S);
}

int main(void)
{
	RUN(test_unlimited);
	RUN(test_burst_then_rate);
	RUN(test_fractional_rate);
	RUN(test_cap);
	RUN(test_oversized);
	RUN(test_monotonic);
	RUN(test_extremes);
	return unit_done();
}
