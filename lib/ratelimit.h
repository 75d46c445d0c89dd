/* A token bucket: @rate tokens a second flow into a bucket that holds at
 * most @burst. A request of n tokens goes when the bucket holds
 * min(n, burst) of them and takes n, so a request larger than the bucket
 * still goes (on a full bucket) and leaves it in debt: the long-run rate
 * stays @rate whatever the request sizes. Disk and net limits use one per
 * resource (operations, bytes).
 *
 * Pure: the caller passes the monotonic time in nanoseconds, so tests
 * drive it with a fake clock. No locking: one owner thread (the event
 * thread for devices). */
#ifndef KVMRUN_RATELIMIT_H
#define KVMRUN_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

struct ratelimit {
	uint64_t rate;        /* tokens a second; 0: unlimited */
	uint64_t burst;       /* bucket capacity, >= 1 when limited */
	int64_t tokens;       /* may be negative: debt of an oversized request */
	uint64_t frac;        /* refill remainder, in token-nanoseconds */
	uint64_t last_ns;     /* time of the last refill */
};

/* Sets the bucket up full. @burst 0: one second's worth (@rate).
 * @rate 0: unlimited (every request goes at once). */
void ratelimit_init(struct ratelimit *r, uint64_t rate, uint64_t burst, uint64_t now_ns);

static inline bool ratelimit_unlimited(const struct ratelimit *r)
{
	return r->rate == 0;
}

/* Adds what flowed in since the last refill (time never runs backwards
 * here: an earlier @now_ns adds nothing). */
void ratelimit_refill(struct ratelimit *r, uint64_t now_ns);

/* After a refill: may a request of @n tokens go now? */
bool ratelimit_ready(const struct ratelimit *r, uint64_t n);

/* Takes @n tokens (after ratelimit_ready() said yes). */
void ratelimit_take(struct ratelimit *r, uint64_t n);

/* Refills, then takes @n tokens if they are there: true when it did. */
bool ratelimit_try(struct ratelimit *r, uint64_t n, uint64_t now_ns);

/* After a refill: nanoseconds until a request of @n tokens may go (0:
 * now), rounded up, for a timer. */
uint64_t ratelimit_wait_ns(const struct ratelimit *r, uint64_t n);

#endif
