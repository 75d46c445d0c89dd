/* The event loop (lib/evloop.c): registration rules, dispatch, pausing,
 * handlers deleted or replaced by an earlier callback of the same round,
 * and a number of descriptors that no fixed table bounds (a VM with many
 * vCPUs and disks watches hundreds: one kick eventfd per queue). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "unit.h"
#include "lib/evloop.h"

struct hit {
	struct evloop *l;
	int fd;
	unsigned calls;
	uint32_t events;
	int del_fd;          /* >= 0: delete this fd from inside the callback */
	int add_fd;          /* >= 0: then add this fd (reusing the freed slot) */
	struct hit *add_hit;
};

static void on_hit(void *cookie, uint32_t events)
{
	struct hit *h = cookie;
	uint64_t v;
	h->calls++;
	h->events = events;
	if (read(h->fd, &v, sizeof(v)) != sizeof(v))
		return;
	if (h->del_fd >= 0)
		CHECK_EQ(evloop_del(h->l, h->del_fd), 0);
	if (h->add_fd >= 0)
		CHECK_EQ(evloop_add(h->l, h->add_fd, EPOLLIN, on_hit, h->add_hit), 0);
}

static int efd(void)
{
	int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	CHECK(fd >= 0);
	return fd;
}

static void signal_fd(int fd)
{
	uint64_t one = 1;
	CHECK_EQ(write(fd, &one, sizeof(one)), 8);
}

static void test_registration(void)
{
	struct evloop *l;
	CHECK_EQ(evloop_create(&l), 0);
	struct hit h = { .l = l, .del_fd = -1, .add_fd = -1 };
	h.fd = efd();
	CHECK_EQ(evloop_add(l, -1, EPOLLIN, on_hit, &h), -EINVAL);
	CHECK_EQ(evloop_add(l, h.fd, EPOLLIN, NULL, &h), -EINVAL);
	CHECK_EQ(evloop_add(l, h.fd, EPOLLIN, on_hit, &h), 0);
	CHECK_EQ(evloop_add(l, h.fd, EPOLLIN, on_hit, &h), -EEXIST);
	CHECK_EQ(evloop_mod(l, h.fd + 100, EPOLLIN), -ENOENT);
	CHECK_EQ(evloop_del(l, h.fd + 100), -ENOENT);
	/* a descriptor epoll refuses (a regular file) is reported, not kept */
	int nul = open("/dev/null", O_RDONLY | O_CLOEXEC);
	CHECK(nul >= 0);
	CHECK_EQ(evloop_add(l, nul, EPOLLIN, on_hit, &h), -EPERM);
	CHECK_EQ(evloop_del(l, nul), -ENOENT);
	close(nul);
	CHECK_EQ(evloop_del(l, h.fd), 0);
	CHECK_EQ(evloop_del(l, h.fd), -ENOENT);
	close(h.fd);
	evloop_destroy(l);
	evloop_destroy(NULL);
}

static void test_dispatch_and_pause(void)
{
	struct evloop *l;
	CHECK_EQ(evloop_create(&l), 0);
	struct hit a = { .l = l, .del_fd = -1, .add_fd = -1 }, b = a;
	a.fd = efd();
	b.fd = efd();
	CHECK_EQ(evloop_add(l, a.fd, EPOLLIN, on_hit, &a), 0);
	CHECK_EQ(evloop_add(l, b.fd, EPOLLIN, on_hit, &b), 0);
	CHECK_EQ(evloop_run_once(l, 0), 0); /* nothing ready */
	signal_fd(a.fd);
	CHECK_EQ(evloop_run_once(l, 1000), 1);
	CHECK_EQ(a.calls, 1);
	CHECK(a.events & EPOLLIN);
	CHECK_EQ(b.calls, 0);

	/* events 0 pauses the fd; restoring EPOLLIN delivers what waited */
	CHECK_EQ(evloop_mod(l, b.fd, 0), 0);
	signal_fd(b.fd);
	CHECK_EQ(evloop_run_once(l, 0), 0);
	CHECK_EQ(b.calls, 0);
	CHECK_EQ(evloop_mod(l, b.fd, EPOLLIN), 0);
	CHECK_EQ(evloop_run_once(l, 1000), 1);
	CHECK_EQ(b.calls, 1);

	evloop_destroy(l);
	close(a.fd);
	close(b.fd);
}

/* A callback deletes a handler whose event is already collected in the
 * same round: that handler must not run, even when another callback has
 * put a new handler into its slot (the slot's generation changed). */
static void test_delete_in_round(void)
{
	struct evloop *l;
	CHECK_EQ(evloop_create(&l), 0);
	struct hit a = { .l = l, .del_fd = -1, .add_fd = -1 }, b = a, c = a;
	a.fd = efd();
	b.fd = efd();
	c.fd = efd();
	CHECK_EQ(evloop_add(l, a.fd, EPOLLIN, on_hit, &a), 0);
	CHECK_EQ(evloop_add(l, b.fd, EPOLLIN, on_hit, &b), 0);
	/* whichever runs first deletes the other and adds c in its slot */
	a.del_fd = b.fd;
	a.add_fd = c.fd;
	a.add_hit = &c;
	b.del_fd = a.fd;
	b.add_fd = c.fd;
	b.add_hit = &c;
	signal_fd(a.fd);
	signal_fd(b.fd);
	signal_fd(c.fd);
	CHECK_EQ(evloop_run_once(l, 1000), 1);
	CHECK_EQ(a.calls + b.calls, 1);
	CHECK_EQ(c.calls, 0); /* its readiness is new: next round */
	CHECK_EQ(evloop_run_once(l, 1000), 1);
	CHECK_EQ(c.calls, 1);
	CHECK_EQ(a.calls + b.calls, 1);
	evloop_destroy(l);
	close(a.fd);
	close(b.fd);
	close(c.fd);
}

/* cpus=64 with four disks watches more than 256 descriptors (one kick
 * eventfd per queue): the loop takes as many as it is given. */
#define MANY 600

static void test_many(void)
{
	struct evloop *l;
	CHECK_EQ(evloop_create(&l), 0);
	struct hit *h = calloc(MANY, sizeof(*h));
	CHECK(h != NULL);
	if (!h)
		return;
	unsigned added = 0;
	for (unsigned i = 0; i < MANY; i++) {
		h[i] = (struct hit){ .l = l, .fd = efd(), .del_fd = -1, .add_fd = -1 };
		int rc = evloop_add(l, h[i].fd, EPOLLIN, on_hit, &h[i]);
		if (rc != 0) {
			fprintf(stderr, "  evloop_add of fd %u: %s\n", i, strerror(-rc));
			break;
		}
		added++;
	}
	CHECK_EQ(added, MANY);
	for (unsigned i = 0; i < added; i++)
		signal_fd(h[i].fd);
	unsigned ran = 0;
	for (int round = 0; round < 100 && ran < added; round++) {
		int r = evloop_run_once(l, 1000);
		CHECK(r > 0);
		if (r <= 0)
			break;
		ran += (unsigned)r;
	}
	CHECK_EQ(ran, added);
	for (unsigned i = 0; i < added; i++)
		CHECK_EQ(h[i].calls, 1);
	/* deleting half and adding them back reuses the freed slots */
	for (unsigned i = 0; i < added; i += 2)
		CHECK_EQ(evloop_del(l, h[i].fd), 0);
	for (unsigned i = 0; i < added; i += 2)
		CHECK_EQ(evloop_add(l, h[i].fd, EPOLLIN, on_hit, &h[i]), 0);
	evloop_destroy(l);
	for (unsigned i = 0; i < MANY; i++)
		if (h[i].fd > 0)
			close(h[i].fd);
	free(h);
}

int main(void)
{
	RUN(test_registration);
	RUN(test_dispatch_and_pause);
	RUN(test_delete_in_round);
	RUN(test_many);
	return unit_done();
}
