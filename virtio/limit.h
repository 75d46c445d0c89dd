/* A device's rate limit (diskN.iops and diskN.bandwidth, netN.bandwidth):
 * two token buckets (lib/ratelimit.h), one for operations and one for
 * bytes, and the timerfd on the event loop that resumes a queue which ran
 * out of tokens. virtio/blk.c asks limit_admit() before it starts a
 * request; on "no" it keeps the parsed request, stops popping that queue
 * and waits for @resume: nothing is dropped and nothing spins. A device
 * that learns a size only after popping (a transmitted frame) admits 1
 * byte, then limit_charge()s the rest: the bucket's debt keeps the rate.
 *
 * Threads: the event thread only (admit, the timer callback), or before
 * the loop runs (create, destroy). */
#ifndef KVMRUN_LIMIT_H
#define KVMRUN_LIMIT_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/evloop.h"
#include "lib/log.h"
#include "lib/ratelimit.h"

struct limit {
	bool on;                       /* some limit is set */
	struct ratelimit ops, bytes;
	int timer_fd;                  /* -1 when !on */
	bool armed;
	uint64_t armed_ns;             /* the wait asked for when armed */
	struct evloop *loop;
	const struct logger *log;
	const char *name;
	void (*resume)(void *cookie);  /* the timer fired (event thread) */
	void *cookie;
};

/* Limits of 0 are unlimited; all four 0: no timer, admit() always says
 * yes. A zeroed struct limit (never created) is off, and destroy is a
 * no-op on it. Returns 0 or -errno (logged with @name). */
__attribute__((warn_unused_result))
int limit_create(struct limit *l, uint64_t iops, uint64_t iops_burst,
		     uint64_t bandwidth, uint64_t bandwidth_burst, struct evloop *loop,
		     const struct logger *log, const char *name,
		     void (*resume)(void *cookie), void *cookie);
void limit_destroy(struct limit *l);

/* May a request of @ops operations and @bytes data bytes start at
 * @now_ns? Yes: its tokens are taken. No: the timer is armed for when both
 * buckets will hold enough (unless it already is), and @resume runs then. */
bool limit_admit(struct limit *l, uint64_t ops, uint64_t bytes, uint64_t now_ns);

/* Takes tokens without asking (see above); may leave the bucket in debt. */
void limit_charge(struct limit *l, uint64_t ops, uint64_t bytes);

/* Device reset: forget a pending wait (the buckets keep their state, so
 * a reset does not buy a guest a fresh burst). */
void limit_reset(struct limit *l);

#endif
