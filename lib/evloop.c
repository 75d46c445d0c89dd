#include "lib/evloop.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

/* The handler table grows as descriptors are added (a VM watches one kick
 * eventfd per virtqueue: hundreds with many vCPUs and disks), so nothing
 * but RLIMIT_NOFILE bounds it. Slots are reused; the table never shrinks. */
#define EVLOOP_INITIAL 64
#define EVLOOP_BATCH 64

struct handler {
	int fd;          /* -1: free slot */
	uint32_t gen;    /* bumped on delete, so stale events are recognised */
	evloop_cb cb;
	void *cookie;
};

struct evloop {
	int epfd;
	struct handler *h;
	unsigned cap;
};

int evloop_create(struct evloop **out)
{
	struct evloop *l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->h = malloc(EVLOOP_INITIAL * sizeof(*l->h));
	if (!l->h) {
		free(l);
		return -ENOMEM;
	}
	l->cap = EVLOOP_INITIAL;
	for (unsigned i = 0; i < l->cap; i++)
		l->h[i] = (struct handler){ .fd = -1 };
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0) {
		int e = errno;
		free(l->h);
		free(l);
		return -e;
	}
	*out = l;
	return 0;
}

void evloop_destroy(struct evloop *l)
{
	if (!l)
		return;
	close(l->epfd);
	free(l->h);
	free(l);
}

static struct handler *find(struct evloop *l, int fd)
{
	for (unsigned i = 0; i < l->cap; i++)
		if (l->h[i].fd == fd)
			return &l->h[i];
	return NULL;
}

/* A free slot, doubling the table when there is none. Slot indices (the
 * epoll tags) stay valid; pointers into the table do not. */
static struct handler *free_slot(struct evloop *l)
{
	struct handler *h = find(l, -1);
	if (h)
		return h;
	if (l->cap > UINT32_MAX / 2)
		return NULL;
	unsigned cap = l->cap * 2;
	struct handler *t = realloc(l->h, cap * sizeof(*t));
	if (!t)
		return NULL;
	for (unsigned i = l->cap; i < cap; i++)
		t[i] = (struct handler){ .fd = -1 };
	l->h = t;
	h = &t[l->cap];
	l->cap = cap;
	return h;
}

static uint64_t tag(const struct evloop *l, const struct handler *h)
{
	return ((uint64_t)h->gen << 32) | (uint64_t)(h - l->h);
}

int evloop_add(struct evloop *l, int fd, uint32_t events, evloop_cb cb, void *cookie)
{
	if (fd < 0 || !cb)
		return -EINVAL;
	if (find(l, fd))
		return -EEXIST;
	struct handler *h = free_slot(l);
	if (!h)
		return -ENOMEM;
	struct epoll_event ev = { .events = events, .data.u64 = tag(l, h) };
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return -errno;
	h->fd = fd;
	h->cb = cb;
	h->cookie = cookie;
	return 0;
}

int evloop_mod(struct evloop *l, int fd, uint32_t events)
{
	struct handler *h = find(l, fd);
	if (!h)
		return -ENOENT;
	struct epoll_event ev = { .events = events, .data.u64 = tag(l, h) };
	return epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev) < 0 ? -errno : 0;
}

int evloop_del(struct evloop *l, int fd)
{
	struct handler *h = find(l, fd);
	if (!h)
		return -ENOENT;
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
	h->fd = -1;
	h->gen++;
	return 0;
}

int evloop_run_once(struct evloop *l, int timeout_ms)
{
	struct epoll_event evs[EVLOOP_BATCH];
	int n = epoll_wait(l->epfd, evs, EVLOOP_BATCH, timeout_ms);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	int ran = 0;
	for (int i = 0; i < n; i++) {
		uint32_t slot = (uint32_t)evs[i].data.u64, gen = (uint32_t)(evs[i].data.u64 >> 32);
		struct handler *h = &l->h[slot];
		if (h->fd < 0 || h->gen != gen)
			continue; /* deleted by an earlier callback in this round */
		h->cb(h->cookie, evs[i].events); /* may grow the table: h is stale after */
		ran++;
	}
	return ran;
}
