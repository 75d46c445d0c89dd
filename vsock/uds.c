/* The userspace backend of virtio-vsock (vsock/vsock.h): the event thread
 * moves the rx and tx queues' packets and vsock/mux.c runs the
 * connections. This file is the glue: the Unix socket host programs
 * connect to and its "CONNECT <port>\n" handshake, the connections to
 * PATH_<port> for the guest's, and the two queue loops. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "vsock/mux.h"
#include "vsock/vsockdev.h"

#define UDS_MAX_HANDSHAKES 16u
#define UDS_LINE_MAX 24u        /* "CONNECT 4294967295\n" and a little */
#define UDS_RX_SEGS 64u
#define UDS_TX_SEGS 64u
#define UDS_BUDGET 256u         /* packets per queue and round */

struct handshake {
	struct uds *u;
	int fd;
	char line[UDS_LINE_MAX];
	unsigned len;
};

struct uds {
	struct vsock *v;
	int listen_fd;
	bool bound;                     /* the socket file is ours to remove */
	struct vsock_mux *mux;
	struct handshake *hs[UDS_MAX_HANDSHAKES];
	unsigned nr_hs;
	/* rx: a chain popped ahead of the packet it will carry */
	struct vq_seg rx_segs[UDS_RX_SEGS];
	struct vq_chain held;
	bool have_held;
	bool in_rx;
	/* tx scratch */
	struct vq_seg tx_segs[UDS_TX_SEGS];
	struct iovec tx_iov[UDS_TX_SEGS];
};

static struct uds *uds_of(struct vsock *v)
{
	return v->be;
}

/* ---- the queues ---- */

static void rx_process(struct uds *u)
{
	struct virtio_dev *d = &u->v->dev;
	struct vq *vq = d->queues[VSOCK_QUEUE_RX].vq;
	if (u->in_rx || !virtio_dev_live(d) || !vq)
		return;
	u->in_rx = true;
	bool pushed = false;
	for (unsigned n = 0; vsock_mux_rx_pending(u->mux); n++) {
		if (n == UDS_BUDGET) {
			virtio_dev_rekick(d, VSOCK_QUEUE_RX); /* others get their turn */
			break;
		}
		if (!u->have_held) {
			u->held = (struct vq_chain){ .segs = u->rx_segs, .cap = UDS_RX_SEGS };
			int r = vq_pop(vq, &u->held);
			if (r < 0) {
				u->v->st.needs_reset++;
				virtio_dev_needs_reset(d, vq_error(vq) ? vq_error(vq) : "rx queue");
				break;
			}
			if (r == 0)
				break; /* the guest's next rx kick brings buffers */
			if (!vsock_pkt_rx_ok(&u->held)) {
				u->v->st.needs_reset++;
				virtio_dev_needs_reset(d, "rx buffer readable or shorter than a header");
				break;
			}
			u->have_held = true;
		}
		uint32_t w = vsock_mux_rx(u->mux, &u->held);
		if (!w)
			continue; /* the mux's state moved on (drained, closed) */
		u->have_held = false;
		if (vq_push(vq, u->held.head, w) == 0)
			pushed = true;
	}
	if (pushed)
		virtio_dev_used(d, VSOCK_QUEUE_RX);
	u->in_rx = false;
}

static void tx_process(struct uds *u)
{
	struct vsock *v = u->v;
	struct virtio_dev *d = &v->dev;
	struct vq *vq = d->queues[VSOCK_QUEUE_TX].vq;
	if (!virtio_dev_live(d) || !vq)
		return;
	bool pushed = false;
	for (unsigned n = 0;; n++) {
		if (n == UDS_BUDGET) {
			virtio_dev_rekick(d, VSOCK_QUEUE_TX);
			break;
		}
		struct vq_chain c = { .segs = u->tx_segs, .cap = UDS_TX_SEGS };
		int r = vq_pop(vq, &c);
		if (r < 0) {
			v->st.needs_reset++;
			virtio_dev_needs_reset(d, vq_error(vq) ? vq_error(vq) : "tx queue");
			break;
		}
		if (r == 0)
			break;
		struct vsock_pkt p = { .iov = u->tx_iov, .iov_cap = UDS_TX_SEGS };
		enum vsock_pkt_err e = vsock_pkt_parse(&c, &p);
		if (e != VSOCK_PKT_OK) {
			v->st.bad_packets++;
			log_ratelimited(v->plat->log, &d->rl, "vsock", "tx packet dropped: %s",
					vsock_pkt_strerror(e));
		} else {
			vsock_mux_tx(u->mux, &p); /* done with the payload when it returns */
		}
		if (vq_push(vq, c.head, 0) == 0)
			pushed = true;
	}
	if (pushed)
		virtio_dev_used(d, VSOCK_QUEUE_TX);
	rx_process(u); /* replies, credit updates, data the new credit lets go */
}

static void want_rx(void *cookie)
{
	rx_process(cookie);
}

/* ---- the host's side: PATH and PATH_<port> ---- */

static int connect_port(void *cookie, uint32_t port)
{
	struct uds *u = cookie;
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	snprintf(a.sun_path, sizeof(a.sun_path), "%s_%u", u->v->uds, port);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* a Unix stream connect completes at once or not at all
	 * (EAGAIN: the listener's backlog is full; the guest gets RST) */
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

static void hs_close(struct uds *u, struct handshake *h, bool close_fd)
{
	evloop_del(u->v->plat->loop, h->fd);
	if (close_fd)
		close(h->fd);
	for (unsigned i = 0; i < u->nr_hs; i++) {
		if (u->hs[i] == h) {
			u->hs[i] = u->hs[--u->nr_hs];
			break;
		}
	}
	free(h);
}

/* "CONNECT <port>" (the newline taken off): the port, or -1. */
static long long parse_connect(const char *s)
{
	static const char cmd[] = "CONNECT ";
	if (strncmp(s, cmd, sizeof(cmd) - 1) != 0)
		return -1;
	s += sizeof(cmd) - 1;
	unsigned long long port = 0;
	if (!*s)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		port = port * 10 + (unsigned)(*s - '0');
		if (port > UINT32_MAX)
			return -1;
	}
	return (long long)port;
}

/* The host program's line is read a byte at a time, so nothing it sends
 * after the newline is taken from the stream before the guest's end is. */
static void on_handshake(void *cookie, uint32_t events)
{
	struct handshake *h = cookie;
	struct uds *u = h->u;
	struct vsock *v = u->v;
	pthread_mutex_lock(&v->dev.lock);
	for (;;) {
		char ch;
		ssize_t n = recv(h->fd, &ch, 1, MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			break;
		if (n <= 0) {
			hs_close(u, h, true);
			break;
		}
		if (ch != '\n') {
			if (h->len == UDS_LINE_MAX - 1) {
				log_ratelimited(v->plat->log, &v->dev.rl, "vsock",
						"%s: handshake line too long: closed", v->uds);
				hs_close(u, h, true);
				break;
			}
			h->line[h->len++] = ch;
			continue;
		}
		h->line[h->len] = 0;
		long long port = parse_connect(h->line);
		int fd = h->fd;
		hs_close(u, h, port < 0 || !virtio_dev_live(&v->dev));
		if (port < 0) {
			log_ratelimited(v->plat->log, &v->dev.rl, "vsock", "%s: expected "
					"\"CONNECT <port>\": closed", v->uds);
		} else if (virtio_dev_live(&v->dev)) {
			int rc = vsock_mux_host_connect(u->mux, fd, (uint32_t)port);
			if (rc < 0)
				log_ratelimited(v->plat->log, &v->dev.rl, "vsock",
						"connection to guest port %lld refused: %s", port,
						strerror(-rc));
			rx_process(u);
		}
		break;
	}
	pthread_mutex_unlock(&v->dev.lock);
}

static void on_accept(void *cookie, uint32_t events)
{
	struct uds *u = cookie;
	struct vsock *v = u->v;
	int fd = accept4(u->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0) {
		if (errno != EAGAIN && errno != EINTR)
			log_ratelimited(v->plat->log, &v->dev.rl, "vsock", "%s: accept: %s", v->uds,
					strerror(errno));
		return;
	}
	pthread_mutex_lock(&v->dev.lock);
	struct handshake *h = NULL;
	if (u->nr_hs < UDS_MAX_HANDSHAKES && virtio_dev_live(&v->dev))
		h = calloc(1, sizeof(*h));
	if (h) {
		*h = (struct handshake){ .u = u, .fd = fd };
		if (evloop_add(v->plat->loop, fd, EPOLLIN, on_handshake, h) == 0) {
			u->hs[u->nr_hs++] = h;
			h = NULL;
			fd = -1;
		}
	}
	free(h);
	if (fd >= 0) {
		log_ratelimited(v->plat->log, &v->dev.rl, "vsock", "%s: connection refused (%s)",
				v->uds, virtio_dev_live(&v->dev) ? "too many handshakes"
								: "the guest's driver is not up");
		close(fd);
	}
	pthread_mutex_unlock(&v->dev.lock);
}

/* Binds PATH, replacing a socket file left by an earlier run (nothing
 * else: a regular file there is an error). */
static int uds_listen(struct uds *u)
{
	struct vsock *v = u->v;
	const struct logger *lg = v->plat->log;
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	if (strlen(v->uds) >= sizeof(a.sun_path) - 11) {
		log_err(lg, "vsock", "vsock.uds=%s: path too long for a Unix socket", v->uds);
		return -ENAMETOOLONG;
	}
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", v->uds);
	struct stat st;
	if (lstat(v->uds, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			log_err(lg, "vsock", "vsock.uds=%s: exists and is not a socket", v->uds);
			return -EEXIST;
		}
		if (unlink(v->uds) < 0) {
			int e = errno;
			log_err(lg, "vsock", "vsock.uds=%s: removing the old socket: %s", v->uds,
				strerror(e));
			return -e;
		}
	}
	u->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (u->listen_fd < 0) {
		int e = errno;
		log_err(lg, "vsock", "vsock.uds=%s: socket: %s", v->uds, strerror(e));
		return -e;
	}
	if (bind(u->listen_fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		int e = errno;
		log_err(lg, "vsock", "vsock.uds=%s: bind: %s", v->uds, strerror(e));
		return -e;
	}
	u->bound = true;
	if (listen(u->listen_fd, 64) < 0) {
		int e = errno;
		log_err(lg, "vsock", "vsock.uds=%s: listen: %s", v->uds, strerror(e));
		return -e;
	}
	return 0;
}

/* ---- the ops ---- */

static void uds_close(struct vsock *v)
{
	struct uds *u = uds_of(v);
	if (!u)
		return;
	while (u->nr_hs)
		hs_close(u, u->hs[u->nr_hs - 1], true);
	vsock_mux_destroy(u->mux);
	if (u->listen_fd >= 0) {
		evloop_del(v->plat->loop, u->listen_fd);
		close(u->listen_fd);
	}
	if (u->bound)
		(void)unlink(v->uds);
	free(u);
	v->be = NULL;
}

static int uds_open(struct vsock *v)
{
	if (!v->uds) {
		log_err(v->plat->log, "vsock", "the userspace backend needs vsock.uds=PATH, the "
			"Unix socket host programs connect to");
		return -EINVAL;
	}
	struct uds *u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	u->v = v;
	u->listen_fd = -1;
	v->be = u;
	struct vsock_mux_params mp = {
		.guest_cid = v->config.guest_cid, .loop = v->plat->loop, .lock = &v->dev.lock,
		.log = v->plat->log, .rl = &v->dev.rl, .name = "vsock", .st = &v->st,
		.connect_port = connect_port, .want_rx = want_rx, .cookie = u,
	};
	int rc = vsock_mux_create(&mp, &u->mux);
	if (rc == 0)
		rc = uds_listen(u);
	if (rc < 0)
		uds_close(v);
	return rc;
}

static int uds_setup(struct vsock *v)
{
	struct uds *u = uds_of(v);
	int rc = evloop_add(v->plat->loop, u->listen_fd, EPOLLIN, on_accept, u);
	if (rc < 0)
		log_err(v->plat->log, "vsock", "vsock.uds=%s: watching the socket: %s", v->uds,
			strerror(-rc));
	return rc;
}

static void uds_reset(struct vsock *v)
{
	struct uds *u = uds_of(v);
	while (u->nr_hs)
		hs_close(u, u->hs[u->nr_hs - 1], true);
	vsock_mux_reset(u->mux);
	u->have_held = false; /* the queue is reset with the device */
}

static void uds_notify(struct vsock *v, unsigned q)
{
	struct uds *u = uds_of(v);
	if (q == VSOCK_QUEUE_TX)
		tx_process(u);
	else if (q == VSOCK_QUEUE_RX)
		rx_process(u);
}

const struct vsock_backend_ops vsock_uds_ops = {
	.name = "userspace",
	.vhost = false,
	.open = uds_open,
	.setup = uds_setup,
	.close = uds_close,
	.reset = uds_reset,
	.notify = uds_notify,
};
