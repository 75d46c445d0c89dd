/* Token bucket (see ratelimit.h). The refill keeps its remainder in
 * token-nanoseconds so that no time is lost to rounding: 3 tokens a second
 * refilled every millisecond still give 3 a second. */
#include "lib/ratelimit.h"

#define NS_PER_S 1000000000ull

void ratelimit_init(struct ratelimit *r, uint64_t rate, uint64_t burst, uint64_t now_ns)
{
	r->rate = rate;
	r->burst = burst ? burst : rate;
	if (rate && r->burst == 0)
		r->burst = 1;
	r->tokens = r->burst > INT64_MAX ? INT64_MAX : (int64_t)r->burst;
	r->frac = 0;
	r->last_ns = now_ns;
}

void ratelimit_refill(struct ratelimit *r, uint64_t now_ns)
{
	if (!r->rate || now_ns <= r->last_ns)
		return;
	unsigned __int128 t = (unsigned __int128)(now_ns - r->last_ns) * r->rate + r->frac;
	r->last_ns = now_ns;
	unsigned __int128 add = t / NS_PER_S;
	r->frac = (uint64_t)(t % NS_PER_S);
	/* the bucket is full: what flows in beyond burst is lost */
	if ((__int128)r->tokens + (__int128)add >= (__int128)r->burst) {
		r->tokens = r->burst > INT64_MAX ? INT64_MAX : (int64_t)r->burst;
		r->frac = 0;
		return;
	}
	r->tokens += (int64_t)add;
}

/* What a request of @n must find in the bucket. */
static int64_t need_of(const struct ratelimit *r, uint64_t n)
{
	uint64_t need = n < r->burst ? n : r->burst;
	return need > INT64_MAX ? INT64_MAX : (int64_t)need;
}

bool ratelimit_ready(const struct ratelimit *r, uint64_t n)
{
	return !r->rate || r->tokens >= need_of(r, n);
}

void ratelimit_take(struct ratelimit *r, uint64_t n)
{
	if (!r->rate)
		return;
	int64_t take = n > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)n;
	/* saturate: a debt this deep already means "wait a very long time" */
	r->tokens = r->tokens < INT64_MIN + take ? INT64_MIN : r->tokens - take;
}

bool ratelimit_try(struct ratelimit *r, uint64_t n, uint64_t now_ns)
{
	ratelimit_refill(r, now_ns);
	if (!ratelimit_ready(r, n))
		return false;
	ratelimit_take(r, n);
	return true;
}

uint64_t ratelimit_wait_ns(const struct ratelimit *r, uint64_t n)
{
	if (ratelimit_ready(r, n))
		return 0;
	unsigned __int128 missing = (unsigned __int128)(need_of(r, n) - (__int128)r->tokens);
	unsigned __int128 tn = missing * NS_PER_S;
	tn = tn > r->frac ? tn - r->frac : 0;
	unsigned __int128 ns = (tn + r->rate - 1) / r->rate;
	return ns > UINT64_MAX ? UINT64_MAX : (uint64_t)ns;
}
