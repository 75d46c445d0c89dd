/* Tap devices (Documentation/networking/tuntap.rst): open an existing tap
 * or create one, one file descriptor per queue (IFF_MULTI_QUEUE when there
 * is more than one), always IFF_NO_PI | IFF_VNET_HDR with a 12-byte
 * virtio-net header (struct virtio_net_hdr_v1), non-blocking.
 *
 * Privileges: attaching to an existing tap needs no capability when the
 * tap's owner/group is the caller (ip tuntap add dev tap0 mode tap
 * multi_queue user $USER); creating one needs CAP_NET_ADMIN. Everything
 * else here (offloads, queue attach/detach, MTU read) needs none, so it
 * keeps working after vmm/caps.c drops every capability.
 *
 * Nothing here knows virtio; all functions return 0 or -errno and log
 * through @lg naming @who ("net0"). */
#ifndef KVMRUN_TAP_H
#define KVMRUN_TAP_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/log.h"

#define TAP_MAX_QUEUES 16
#define TAP_VNET_HDR_LEN 12 /* struct virtio_net_hdr_v1 */

/* TUN_F_* offload bits the tap may hand us (what the guest accepts). */
#define TAP_OFF_CSUM (1u << 0) /* TUN_F_CSUM */
#define TAP_OFF_TSO4 (1u << 1) /* TUN_F_TSO4 */
#define TAP_OFF_TSO6 (1u << 2) /* TUN_F_TSO6 */
#define TAP_OFF_ECN  (1u << 3) /* TUN_F_TSO_ECN */
#define TAP_OFF_UFO  (1u << 4) /* TUN_F_UFO */

struct tap {
	char name[16];          /* IFNAMSIZ */
	unsigned nr_queues;
	int fds[TAP_MAX_QUEUES];
	bool created;           /* kvmrun created the device */
	bool persistent;        /* TUNSETPERSIST was set by kvmrun */
	unsigned mtu;           /* the device's MTU after open */
	unsigned offloads;      /* TAP_OFF_* the kernel accepts (probed) */
	unsigned ifindex;       /* the device's interface index after open */
};

struct tap_params {
	const char *name;       /* required, < 16 bytes */
	unsigned nr_queues;     /* 1..TAP_MAX_QUEUES */
	unsigned mtu;           /* set on a created tap; checked on an existing one */
	/* A created tap is made persistent and owned by the effective uid, so
	 * a later open without CAP_NET_ADMIN (the on_reboot=restart path
	 * after the capability drop) attaches to it again. */
	bool persist;
};

/* Opens (or creates) the tap: @nr_queues descriptors, vnet header of
 * TAP_VNET_HDR_LEN bytes, offloads probed then cleared. Errors are logged
 * as "WHO.tap=NAME: ..." (@who is the device's config prefix, "net0", so
 * they name the key) and name the fix (missing CAP_NET_ADMIN, a tap
 * without multi_queue, ...). */
__attribute__((warn_unused_result))
int tap_open(struct tap *t, const struct tap_params *p, const struct logger *lg,
	     const char *who);

/* Closes every descriptor. With @remove, a tap kvmrun made persistent is
 * made non-persistent first, so it disappears with the last descriptor. */
void tap_close(struct tap *t, bool remove);

/* TUNSETOFFLOAD on the device (TAP_OFF_* bits). */
__attribute__((warn_unused_result))
int tap_set_offloads(int fd, unsigned offloads);

/* TUNSETQUEUE: attach or detach one queue of a multi-queue tap. */
__attribute__((warn_unused_result))
int tap_set_queue(int fd, bool attach);

/* ---- The tap's state on the host, and its changes ----
 * Someone may set the tap down and up again (`ip link set`), or delete it
 * and make one of the same name. None of this reaches the tap's file
 * descriptors as data, so net/ watches the host's link changes: an
 * rtnetlink socket subscribed to RTMGRP_LINK is readable whenever any
 * device of this network namespace changes, and tap_state_get() then says
 * what the tap is now. Neither needs a capability. */
struct tap_state {
	bool exists;            /* a device of that name exists */
	bool up;                /* IFF_UP: set up on the host */
	unsigned ifindex;       /* its interface index (another one: a new device) */
};

/* What the host says now of the device named @name (SIOCGIFINDEX,
 * SIOCGIFFLAGS). 0 (exists false when there is none) or -errno. */
__attribute__((warn_unused_result))
int tap_state_get(const char *name, struct tap_state *out);

/* The rtnetlink socket (non-blocking, close-on-exec); its fd or -errno. */
__attribute__((warn_unused_result))
int tap_watch_open(void);

/* Discards every pending message on @fd: the messages only say that
 * something changed; tap_state_get() says what. */
void tap_watch_drain(int fd);

#endif
