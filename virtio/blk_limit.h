/* virtio-blk's rate limits (diskN.iops, diskN.bandwidth): two token
 * buckets (lib/ratelimit.h), one for requests and one for data bytes, and
 * the timerfd on the event loop that resumes a queue which ran out of
 * tokens. virtio/blk.c asks blk_limit_admit() before it starts a request;
 * on "no" it keeps the parsed request, stops popping that queue and waits
 * for @resume: nothing is dropped and nothing spins.
 *
 * Threads: the event thread only (admit, the timer callback), or before
 * the loop runs (create, destroy). */
#ifndef KVMRUN_BLK_LIMIT_H
#define KVMRUN_BLK_LIMIT_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/evloop.h"
#include "lib/log.h"
#include "lib/ratelimit.h"

struct blk_limit {
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
 * yes. Returns 0 or -errno (logged with @name). */
__attribute__((warn_unused_result))
int blk_limit_create(struct blk_limit *l, uint64_t iops, uint64_t iops_burst,
		     uint64_t bandwidth, uint64_t bandwidth_burst, struct evloop *loop,
		     const struct logger *log, const char *name,
		     void (*resume)(void *cookie), void *cookie);
void blk_limit_destroy(struct blk_limit *l);

/* May a request of @ops operations and @bytes data bytes start at
 * @now_ns? Yes: its tokens are taken. No: the timer is armed for when both
 * buckets will hold enough (unless it already is), and @resume runs then. */
bool blk_limit_admit(struct blk_limit *l, uint64_t ops, uint64_t bytes, uint64_t now_ns);

/* Device reset: forget a pending wait (the buckets keep their state, so
 * a reset does not buy a guest a fresh burst). */
void blk_limit_reset(struct blk_limit *l);

#endif
