/* virtio-blk rate limits: see blk_limit.h. */
#include "virtio/limit.h"

#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void on_timer(void *cookie, uint32_t events)
{
	struct limit *l = cookie;
	uint64_t n;
	(void)events;
	if (read(l->timer_fd, &n, sizeof(n)) != sizeof(n))
		return;
	l->armed = false;
	l->resume(l->cookie);
}

int limit_create(struct limit *l, uint64_t iops, uint64_t iops_burst,
		     uint64_t bandwidth, uint64_t bandwidth_burst, struct evloop *loop,
		     const struct logger *log, const char *name,
		     void (*resume)(void *cookie), void *cookie)
{
	memset(l, 0, sizeof(*l));
	l->timer_fd = -1;
	l->on = iops || bandwidth;
	if (!l->on)
		return 0;
	uint64_t t = now_ns();
	ratelimit_init(&l->ops, iops, iops_burst, t);
	ratelimit_init(&l->bytes, bandwidth, bandwidth_burst, t);
	l->loop = loop;
	l->log = log;
	l->name = name;
	l->resume = resume;
	l->cookie = cookie;
	l->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (l->timer_fd < 0) {
		int e = errno;
		log_err(log, name, "rate limit: timerfd_create: %s", strerror(e));
		return -e;
	}
	int r = evloop_add(loop, l->timer_fd, EPOLLIN, on_timer, l);
	if (r < 0) {
		log_err(log, name, "rate limit: watching its timer: %s", strerror(-r));
		close(l->timer_fd);
		l->timer_fd = -1;
		return r;
	}
	return 0;
}

void limit_destroy(struct limit *l)
{
	if (!l->on || l->timer_fd < 0)
		return;
	evloop_del(l->loop, l->timer_fd);
	close(l->timer_fd);
	l->timer_fd = -1;
}

static void arm(struct limit *l, uint64_t wait_ns)
{
	if (l->armed)
		return;
	if (wait_ns == 0)
		wait_ns = 1; /* 0 would disarm the timerfd */
	struct itimerspec its = {
		.it_value = { .tv_sec = (time_t)(wait_ns / 1000000000u),
			      .tv_nsec = (long)(wait_ns % 1000000000u) },
	};
	if (timerfd_settime(l->timer_fd, 0, &its, NULL) < 0) {
		/* cannot happen with a valid fd and value; resume at once
		 * rather than stall the queue for ever */
		log_err(l->log, l->name, "rate limit: timerfd_settime: %s",
			strerror(errno));
		l->resume(l->cookie);
		return;
	}
	l->armed = true;
	l->armed_ns = wait_ns;
}

bool limit_admit(struct limit *l, uint64_t ops, uint64_t bytes, uint64_t now)
{
	if (!l->on)
		return true;
	if (l->armed)
		return false; /* keep the order: the waiting request goes first */
	ratelimit_refill(&l->ops, now);
	ratelimit_refill(&l->bytes, now);
	if (ratelimit_ready(&l->ops, ops) && ratelimit_ready(&l->bytes, bytes)) {
		ratelimit_take(&l->ops, ops);
		ratelimit_take(&l->bytes, bytes);
		return true;
	}
	uint64_t w1 = ratelimit_wait_ns(&l->ops, ops), w2 = ratelimit_wait_ns(&l->bytes, bytes);
	arm(l, w1 > w2 ? w1 : w2);
	return false;
}

void limit_charge(struct limit *l, uint64_t ops, uint64_t bytes)
{
	if (!l->on)
		return;
	ratelimit_take(&l->ops, ops);
	ratelimit_take(&l->bytes, bytes);
}

void limit_reset(struct limit *l)
{
	if (!l->armed)
		return;
	struct itimerspec its = { 0 };
	timerfd_settime(l->timer_fd, 0, &its, NULL);
	l->armed = false;
}
