/* The VM's event thread: one epoll set of file descriptors, each with a
 * callback. Owned and run by one thread; add/del only from that thread or
 * before it starts. Callbacks may add and delete handlers (their own too). */
#ifndef KVMRUN_EVLOOP_H
#define KVMRUN_EVLOOP_H

#include <stdint.h>

struct evloop;

/* @events: the EPOLL* bits that fired. */
typedef void (*evloop_cb)(void *cookie, uint32_t events);

__attribute__((warn_unused_result))
int evloop_create(struct evloop **out);
void evloop_destroy(struct evloop *l);

/* Watches @fd for @events (EPOLLIN, ...). -EEXIST if already watched;
 * -ENOMEM when the handler table cannot grow; epoll_ctl's -errno. */
__attribute__((warn_unused_result))
int evloop_add(struct evloop *l, int fd, uint32_t events, evloop_cb cb, void *cookie);
/* Changes the events watched for (0 pauses the fd). */
int evloop_mod(struct evloop *l, int fd, uint32_t events);
/* Stops watching @fd; its callback is not called again, even for events
 * already collected in the current round. */
int evloop_del(struct evloop *l, int fd);

/* Waits up to @timeout_ms (-1: forever) and dispatches what is ready.
 * Returns the number of callbacks run, or -errno (not -EINTR). */
int evloop_run_once(struct evloop *l, int timeout_ms);

#endif
