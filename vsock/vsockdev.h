/* The inside of struct vsock, for vsock/ only, and the ops table each
 * backend fills (vsock/vhost.c, vsock/uds.c), as net/netdev.h does for
 * net/. vsock.c (device model, config space, backend choice and life)
 * calls through the table and never asks which backend it has; the
 * backends include this, never vsock.c's own header beyond the public
 * vsock.h. Everything here is under dev.lock. */
#ifndef KVMRUN_VSOCKDEV_H
#define KVMRUN_VSOCKDEV_H

#include <stdbool.h>
#include <stdint.h>

#include "virtio/device.h"
#include "vsock/vsock.h"

#define VSOCK_QUEUE_SIZE 256u

struct vsock_config {
	uint64_t guest_cid;             /* 5.10.4 */
} __attribute__((packed));

struct vsock {
	struct virtio_dev dev;
	const struct virtio_platform *plat;
	const struct vsock_backend_ops *ops;
	void *be;                       /* the backend's state */
	char *uds;                      /* the userspace backend's socket path */
	struct vsock_config config;
	struct vsock_stats st;
};

/* A backend. Hooks run under dev.lock (open/close before and after the
 * device exists); NULL hooks do nothing. */
struct vsock_backend_ops {
	const char *name;               /* for the log */
	bool vhost;
	/* vsock_create(), before the device is initialised: acquire what
	 * the backend needs; -errno (logged) having released it. */
	int (*open)(struct vsock *v);
	/* Once the device is initialised (its kick fds exist): event-loop
	 * state; -errno, undone by close(). */
	int (*setup)(struct vsock *v);
	void (*close)(struct vsock *v);
	/* Narrows the device features to what the backend carries. */
	uint64_t (*offer)(struct vsock *v, uint64_t features);
	/* DRIVER_OK: start moving packets. */
	int (*start)(struct vsock *v);
	/* Device reset: stop, and forget every connection. */
	void (*reset)(struct vsock *v);
	/* The driver kicked the rx or tx queue. */
	void (*notify)(struct vsock *v, unsigned q);
	/* The transport's interrupt routes changed. */
	void (*irq_changed)(struct vsock *v);
};

extern const struct vsock_backend_ops vsock_vhost_ops; /* vsock/vhost.c */
extern const struct vsock_backend_ops vsock_uds_ops;   /* vsock/uds.c */

#endif
