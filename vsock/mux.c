/* The userspace backend's connection state machine (see vsock/mux.h).
 *
 * A connection is keyed by (host port, guest port). Its states:
 *   REQUESTED    host-initiated: REQUEST owed or sent, waiting for the
 *                guest's RESPONSE (or RST);
 *   ESTABLISHED  data both ways until both sides have shut down.
 * Guest-initiated connections are ESTABLISHED as soon as the host socket
 * connects (RESPONSE owed). Closing one closes its socket at once and owes
 * the guest an RST (kept in a small ring, so no connection outlives its
 * socket).
 *
 * Host -> guest: a readable socket is not read in its callback; the
 * connection is marked readable, stops being watched for input and is read
 * straight into the next rx buffer, at most the guest's free credit
 * (buf_alloc - (tx_cnt - peer fwd_cnt)). Guest -> host: payload goes
 * straight to the socket; what it does not take waits in a ring of
 * VSOCK_BUF_ALLOC bytes, written out on EPOLLOUT; fwd_cnt counts what the
 * socket took, and a CREDIT_UPDATE is owed once a quarter of the buffer was
 * forwarded unannounced, or as soon as a backlog has been written out. */
#include "vsock/mux.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define CREDIT_UPDATE_AT (VSOCK_BUF_ALLOC / 4)
#define MAX_IOV 64u

enum conn_state { CONN_REQUESTED, CONN_ESTABLISHED };

/* Control packets owed to the guest, in the order they are sent. */
#define OWE_REQUEST  (1u << 0)
#define OWE_RESPONSE (1u << 1)
#define OWE_CREDIT   (1u << 2)
#define OWE_SHUTDOWN (1u << 3)

struct conn {
	struct vsock_mux *m;
	uint32_t host_port, guest_port;
	int fd;
	enum conn_state state;
	uint32_t owed;          /* OWE_* */
	uint32_t events;        /* what fd is watched for; watched unless hup */
	bool watched;
	bool readable;          /* the socket may have data for the guest */
	bool hup;               /* EPOLLHUP/ERR seen: off the event loop */
	bool host_eof;          /* the host will send no more */
	bool guest_shut_send, guest_shut_rcv;
	bool host_shut_wr;      /* shutdown(SHUT_WR) done */
	/* guest -> host */
	uint32_t rx_cnt;        /* bytes the guest sent */
	uint32_t fwd_cnt;       /* bytes the socket took */
	uint32_t fwd_told;      /* fwd_cnt the guest last heard */
	uint8_t *buf;           /* VSOCK_BUF_ALLOC ring, while rx_cnt != fwd_cnt */
	uint32_t buf_head, buf_len;
	/* host -> guest */
	uint32_t tx_cnt;        /* bytes sent to the guest */
	uint32_t peer_buf_alloc, peer_fwd_cnt;
};

struct rst {
	uint32_t host_port, guest_port;
};

struct vsock_mux {
	struct vsock_mux_params p;
	struct conn *conns[VSOCK_MUX_MAX_CONNS];
	unsigned nr_conns;
	unsigned cursor;        /* round-robin start of the rx scan */
	struct rst rsts[VSOCK_MUX_MAX_RSTS];
	unsigned rst_head, nr_rsts;
	uint32_t next_host_port;
};

static void on_conn(void *cookie, uint32_t events);
static void conn_drop(struct conn *c, bool rst);

/* ---- bookkeeping ---- */

static struct conn *conn_find(const struct vsock_mux *m, uint32_t host_port, uint32_t guest_port)
{
	for (unsigned i = 0; i < m->nr_conns; i++) {
		struct conn *c = m->conns[i];
		if (c->host_port == host_port && c->guest_port == guest_port)
			return c;
	}
	return NULL;
}

static void rst_owe(struct vsock_mux *m, uint32_t host_port, uint32_t guest_port)
{
	if (m->nr_rsts == VSOCK_MUX_MAX_RSTS) {
		/* the guest's connection times out instead */
		log_ratelimited(m->p.log, m->p.rl, m->p.name, "too many resets owed: one dropped");
		return;
	}
	m->rsts[(m->rst_head + m->nr_rsts++) % VSOCK_MUX_MAX_RSTS] =
		(struct rst){ host_port, guest_port };
}

/* What the socket should be watched for now. */
static void conn_rewatch(struct conn *c)
{
	if (c->hup || !c->watched)
		return;
	uint32_t ev = 0;
	if (c->state == CONN_ESTABLISHED && !c->readable && !c->host_eof && !c->guest_shut_rcv)
		ev |= EPOLLIN;
	if (c->buf_len)
		ev |= EPOLLOUT;
	if (ev != c->events && evloop_mod(c->m->p.loop, c->fd, ev) == 0)
		c->events = ev;
}

static void conn_unwatch(struct conn *c)
{
	if (c->watched)
		evloop_del(c->m->p.loop, c->fd);
	c->watched = false;
}

/* Closes @c's socket and forgets it; owes the guest an RST if @rst. */
static void conn_close(struct conn *c, bool rst, const char *why)
{
	struct vsock_mux *m = c->m;
	log_debug(m->p.log, m->p.name, "connection host:%u <-> guest:%u closed (%s)",
		  c->host_port, c->guest_port, why);
	conn_drop(c, rst);
}

/* A host socket call on @c failed with errno: say so, and reset it. */
static void conn_failed(struct conn *c, const char *what)
{
	char why[96];
	snprintf(why, sizeof(why), "host socket %s: %s", what, strerror(errno));
	conn_close(c, true, why);
}

static void conn_drop(struct conn *c, bool rst)
{
	struct vsock_mux *m = c->m;
	if (rst)
		rst_owe(m, c->host_port, c->guest_port);
	conn_unwatch(c);
	close(c->fd);
	free(c->buf);
	for (unsigned i = 0; i < m->nr_conns; i++) {
		if (m->conns[i] == c) {
			m->conns[i] = m->conns[--m->nr_conns];
			break;
		}
	}
	m->p.st->conns = m->nr_conns;
	free(c);
}

static struct conn *conn_new(struct vsock_mux *m, int fd, uint32_t host_port,
			     uint32_t guest_port, enum conn_state st)
{
	if (m->nr_conns == VSOCK_MUX_MAX_CONNS)
		return NULL;
	struct conn *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	*c = (struct conn){ .m = m, .fd = fd, .host_port = host_port, .guest_port = guest_port,
			    .state = st };
	if (evloop_add(m->p.loop, fd, 0, on_conn, c) < 0) {
		free(c);
		return NULL;
	}
	c->watched = true;
	m->conns[m->nr_conns++] = c;
	m->p.st->conns = m->nr_conns;
	return c;
}

/* Free credit the guest gave us; 0 if its counters make no sense. */
static uint32_t peer_free(const struct conn *c)
{
	uint32_t inflight = c->tx_cnt - c->peer_fwd_cnt;
	return inflight > c->peer_buf_alloc ? 0 : c->peer_buf_alloc - inflight;
}

static bool wants_data(const struct conn *c)
{
	return c->state == CONN_ESTABLISHED && c->readable && !c->guest_shut_rcv &&
	       !c->host_eof && peer_free(c) > 0;
}

/* ---- guest -> host: the ring of bytes the socket has not taken ---- */

static void fwd_done(struct conn *c, uint32_t n)
{
	c->fwd_cnt += n;
	if (c->fwd_cnt - c->fwd_told >= CREDIT_UPDATE_AT)
		c->owed |= OWE_CREDIT;
}

/* After the guest's data is all out: carry out its shutdown. Returns false
 * if @c was closed. */
static bool conn_settle(struct conn *c)
{
	if (c->buf_len)
		return true;
	if (c->guest_shut_send && c->guest_shut_rcv) {
		/* 5.10.6.5: both directions shut: the connection is over */
		conn_close(c, true, "shut down by the guest");
		return false;
	}
	if (c->guest_shut_send && !c->host_shut_wr) {
		c->host_shut_wr = true;
		(void)shutdown(c->fd, SHUT_WR);
	}
	return true;
}

static void buf_append(struct conn *c, const struct iovec *iov, unsigned nr, size_t skip)
{
	for (unsigned i = 0; i < nr; i++) {
		const uint8_t *s = iov[i].iov_base;
		size_t len = iov[i].iov_len;
		if (skip >= len) {
			skip -= len;
			continue;
		}
		s += skip;
		len -= skip;
		skip = 0;
		while (len) {
			uint32_t tail = (c->buf_head + c->buf_len) % VSOCK_BUF_ALLOC;
			size_t k = VSOCK_BUF_ALLOC - tail;
			if (k > len)
				k = len;
			memcpy(c->buf + tail, s, k);
			c->buf_len += (uint32_t)k;
			s += k;
			len -= k;
		}
	}
}

/* Writes out the ring. Returns false if @c was closed. */
static bool buf_flush(struct conn *c)
{
	while (c->buf_len) {
		uint32_t first = VSOCK_BUF_ALLOC - c->buf_head;
		struct iovec iov[2] = { { c->buf + c->buf_head, first < c->buf_len ? first : c->buf_len },
					{ c->buf, 0 } };
		if (first < c->buf_len)
			iov[1].iov_len = c->buf_len - first;
		struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2 };
		ssize_t n = sendmsg(c->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			break;
		if (n <= 0) {
			if (n == 0)
				errno = EPIPE;
			conn_failed(c, "write");
			return false;
		}
		c->buf_head = (c->buf_head + (uint32_t)n) % VSOCK_BUF_ALLOC;
		c->buf_len -= (uint32_t)n;
		fwd_done(c, (uint32_t)n);
	}
	if (!c->buf_len) {
		/* the backlog is out: a sender that ran into its credit
		 * limit hears at once that it may go on */
		if (c->fwd_cnt != c->fwd_told)
			c->owed |= OWE_CREDIT;
		free(c->buf);
		c->buf = NULL;
		c->buf_head = 0;
	}
	conn_rewatch(c);
	return conn_settle(c);
}

/* RW from the guest: @len payload bytes in @iov. */
static void conn_write(struct conn *c, const struct iovec *iov, unsigned nr, uint32_t len)
{
	struct vsock_mux *m = c->m;
	if (c->state != CONN_ESTABLISHED || c->guest_shut_send) {
		conn_close(c, true, "data on a connection not open for it");
		return;
	}
	if (c->rx_cnt - c->fwd_cnt > VSOCK_BUF_ALLOC - len) {
		log_ratelimited(m->p.log, m->p.rl, m->p.name, "guest port %u sent beyond its "
				"credit: connection reset", c->guest_port);
		conn_close(c, true, "credit overrun");
		return;
	}
	c->rx_cnt += len;
	m->p.st->tx_bytes += len;
	size_t sent = 0;
	if (!c->buf_len && len) {
		struct msghdr mh = { .msg_iov = (struct iovec *)iov, .msg_iovlen = nr };
		ssize_t n = sendmsg(c->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0 && errno != EAGAIN && errno != EINTR) {
			conn_failed(c, "write");
			return;
		}
		sent = n > 0 ? (size_t)n : 0;
		fwd_done(c, (uint32_t)sent);
	}
	if (sent < len) {
		if (!c->buf && !(c->buf = malloc(VSOCK_BUF_ALLOC))) {
			conn_close(c, true, "out of memory");
			return;
		}
		buf_append(c, iov, nr, sent);
	}
	conn_rewatch(c);
	(void)conn_settle(c);
}

/* ---- the socket's events ---- */

static void on_conn(void *cookie, uint32_t events)
{
	struct conn *c = cookie;
	struct vsock_mux *m = c->m;
	pthread_mutex_lock(m->p.lock);
	if (events & (EPOLLHUP | EPOLLERR)) {
		/* reported whatever is watched: take the socket off the loop
		 * and read what is left (then its end) as credit allows */
		conn_unwatch(c);
		c->hup = true;
		if (c->state != CONN_ESTABLISHED) {
			conn_close(c, true, "host socket hung up");
			goto out;
		}
		c->readable = true;
		if (c->buf_len)
			conn_close(c, true, "host socket hung up with data still to write");
		goto out;
	}
	if ((events & EPOLLOUT) && !buf_flush(c))
		goto out;
	if (events & EPOLLIN) {
		c->readable = true;
		conn_rewatch(c);
	}
out:
	/* never from deeper down: the rx loop may close connections, and
	 * the caller of a function that closed one must not touch it */
	if (vsock_mux_rx_pending(m))
		m->p.want_rx(m->p.cookie);
	pthread_mutex_unlock(m->p.lock);
}

/* ---- guest packets ---- */

static void guest_request(struct vsock_mux *m, const struct vsock_hdr *h)
{
	if (m->nr_conns == VSOCK_MUX_MAX_CONNS) {
		log_ratelimited(m->p.log, m->p.rl, m->p.name, "connection to host port %u refused: "
				"%u connections open", h->dst_port, VSOCK_MUX_MAX_CONNS);
		rst_owe(m, h->dst_port, h->src_port);
		return;
	}
	int fd = m->p.connect_port(m->p.cookie, h->dst_port);
	struct conn *c = fd < 0 ? NULL : conn_new(m, fd, h->dst_port, h->src_port,
						   CONN_ESTABLISHED);
	if (!c) {
		if (fd >= 0)
			close(fd);
		log_debug(m->p.log, m->p.name, "guest connection to host port %u refused: %s",
			  h->dst_port, fd < 0 ? strerror(-fd) : "no memory");
		rst_owe(m, h->dst_port, h->src_port);
		return;
	}
	c->peer_buf_alloc = h->buf_alloc;
	c->peer_fwd_cnt = h->fwd_cnt;
	c->owed |= OWE_RESPONSE;
	m->p.st->conns_opened++;
	conn_rewatch(c);
}

static void guest_response(struct conn *c)
{
	char ok[24];
	int len = snprintf(ok, sizeof(ok), "OK %u\n", c->host_port);
	if (c->state != CONN_REQUESTED ||
	    send(c->fd, ok, (size_t)len, MSG_DONTWAIT | MSG_NOSIGNAL) != len) {
		conn_close(c, true, c->state != CONN_REQUESTED ? "unexpected RESPONSE"
							       : "host socket write failed");
		return;
	}
	c->state = CONN_ESTABLISHED;
	c->m->p.st->conns_opened++;
	conn_rewatch(c);
}

static void guest_shutdown(struct conn *c, uint32_t flags)
{
	if (flags & VSOCK_SHUTDOWN_RCV)
		c->guest_shut_rcv = true;
	if (flags & VSOCK_SHUTDOWN_SEND)
		c->guest_shut_send = true;
	conn_rewatch(c);
	(void)conn_settle(c);
}

void vsock_mux_tx(struct vsock_mux *m, const struct vsock_pkt *p)
{
	const struct vsock_hdr *h = &p->hdr;
	m->p.st->tx_packets++;
	if (!vsock_pkt_addressed(h, m->p.guest_cid)) {
		m->p.st->bad_packets++;
		log_ratelimited(m->p.log, m->p.rl, m->p.name, "packet from CID %llu to CID %llu "
				"dropped (the guest is %llu)", (unsigned long long)h->src_cid,
				(unsigned long long)h->dst_cid, (unsigned long long)m->p.guest_cid);
		return;
	}
	struct conn *c = conn_find(m, h->dst_port, h->src_port);
	if (h->type != VSOCK_TYPE_STREAM) {
		/* 5.10.6.4: an unknown type is answered with RST */
		m->p.st->bad_packets++;
		if (h->op != VSOCK_OP_RST) {
			if (c)
				conn_close(c, true, "packet of an unknown type");
			else
				rst_owe(m, h->dst_port, h->src_port);
		}
		return;
	}
	if (!c) {
		if (h->op == VSOCK_OP_REQUEST)
			guest_request(m, h);
		else if (h->op != VSOCK_OP_RST)
			rst_owe(m, h->dst_port, h->src_port); /* 5.10.6.4: no such connection */
		return;
	}
	c->peer_buf_alloc = h->buf_alloc;
	c->peer_fwd_cnt = h->fwd_cnt;
	switch (h->op) {
	case VSOCK_OP_RESPONSE:
		guest_response(c);
		return;
	case VSOCK_OP_RST:
		conn_close(c, false, "reset by the guest");
		return;
	case VSOCK_OP_SHUTDOWN:
		guest_shutdown(c, h->flags);
		return;
	case VSOCK_OP_RW:
		conn_write(c, p->iov, p->nr_iov, h->len);
		return;
	case VSOCK_OP_CREDIT_UPDATE:
		break;
	case VSOCK_OP_CREDIT_REQUEST:
		c->owed |= OWE_CREDIT;
		break;
	default: /* REQUEST on an open connection, or no such op */
		conn_close(c, true, "unexpected operation");
		return;
	}
	/* new credit (any packet carries it) may let waiting data go: the
	 * caller runs its rx loop after the tx queue */
}

/* ---- host -> guest ---- */

bool vsock_mux_rx_pending(const struct vsock_mux *m)
{
	if (m->nr_rsts)
		return true;
	for (unsigned i = 0; i < m->nr_conns; i++)
		if (m->conns[i]->owed || wants_data(m->conns[i]))
			return true;
	return false;
}

static struct vsock_hdr hdr_for(const struct vsock_mux *m, uint32_t host_port,
				uint32_t guest_port, uint16_t op)
{
	return (struct vsock_hdr){
		.src_cid = VSOCK_CID_HOST, .dst_cid = m->p.guest_cid,
		.src_port = host_port, .dst_port = guest_port,
		.type = VSOCK_TYPE_STREAM, .op = op,
	};
}

static uint32_t put(struct vsock_mux *m, const struct vq_chain *ch, struct conn *c,
		    struct vsock_hdr *h)
{
	if (c) {
		h->buf_alloc = VSOCK_BUF_ALLOC;
		h->fwd_cnt = c->fwd_cnt;
		c->fwd_told = c->fwd_cnt;
	}
	if (h->op == VSOCK_OP_RST)
		m->p.st->resets_sent++;
	m->p.st->rx_packets++;
	m->p.st->rx_bytes += h->len;
	vsock_pkt_put_hdr(ch, h);
	return VSOCK_HDR_LEN + h->len;
}

/* Reads from @c's socket into @ch. Returns the bytes written, or 0. */
static uint32_t conn_read(struct vsock_mux *m, struct conn *c, const struct vq_chain *ch)
{
	size_t max = peer_free(c);
	if (max > VSOCK_MAX_PAYLOAD)
		max = VSOCK_MAX_PAYLOAD;
	struct iovec iov[MAX_IOV];
	unsigned nr;
	size_t room = vsock_pkt_rx_iov(ch, max, iov, MAX_IOV, &nr);
	if (!room) {
		/* a buffer with no room past the header (a hostile driver's):
		 * use it up with a credit update, so the loop moves on */
		struct vsock_hdr h = hdr_for(m, c->host_port, c->guest_port,
					     VSOCK_OP_CREDIT_UPDATE);
		return put(m, ch, c, &h);
	}
	ssize_t n = readv(c->fd, iov, (int)nr);
	if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
		c->readable = false;
		conn_rewatch(c);
		return 0;
	}
	if (n < 0) {
		conn_failed(c, "read");
		return 0;
	}
	if (n == 0) {
		/* the host will send no more: 5.10.6.5 SHUTDOWN(SEND) */
		c->host_eof = true;
		c->readable = false;
		c->owed |= OWE_SHUTDOWN;
		conn_rewatch(c);
		return 0;
	}
	if ((size_t)n < room && !c->hup) {
		c->readable = false; /* most likely drained: wait for more */
		conn_rewatch(c);
	}
	c->tx_cnt += (uint32_t)n;
	struct vsock_hdr h = hdr_for(m, c->host_port, c->guest_port, VSOCK_OP_RW);
	h.len = (uint32_t)n;
	return put(m, ch, c, &h);
}

/* The next control packet @c owes, or 0 having read its data. */
static uint32_t conn_rx(struct vsock_mux *m, struct conn *c, const struct vq_chain *ch)
{
	static const struct { uint32_t bit; uint16_t op; } order[] = {
		{ OWE_REQUEST, VSOCK_OP_REQUEST }, { OWE_RESPONSE, VSOCK_OP_RESPONSE },
		{ OWE_CREDIT, VSOCK_OP_CREDIT_UPDATE }, { OWE_SHUTDOWN, VSOCK_OP_SHUTDOWN },
	};
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		if (!(c->owed & order[i].bit))
			continue;
		if (order[i].bit == OWE_SHUTDOWN && wants_data(c))
			continue; /* data read before the end goes first */
		c->owed &= ~order[i].bit;
		struct vsock_hdr h = hdr_for(m, c->host_port, c->guest_port, order[i].op);
		if (order[i].bit == OWE_SHUTDOWN)
			h.flags = VSOCK_SHUTDOWN_SEND;
		return put(m, ch, c, &h);
	}
	return wants_data(c) ? conn_read(m, c, ch) : 0;
}

uint32_t vsock_mux_rx(struct vsock_mux *m, const struct vq_chain *ch)
{
	if (m->nr_rsts) {
		struct rst r = m->rsts[m->rst_head];
		m->rst_head = (m->rst_head + 1) % VSOCK_MUX_MAX_RSTS;
		m->nr_rsts--;
		struct vsock_hdr h = hdr_for(m, r.host_port, r.guest_port, VSOCK_OP_RST);
		return put(m, ch, NULL, &h);
	}
	for (unsigned k = 0; k < m->nr_conns; k++) {
		unsigned i = (m->cursor + k) % m->nr_conns;
		struct conn *c = m->conns[i];
		if (!c->owed && !wants_data(c))
			continue;
		m->cursor = i + 1;
		uint32_t n = conn_rx(m, c, ch);
		if (n)
			return n;
		if (m->nr_rsts) /* the read closed it */
			return vsock_mux_rx(m, ch);
	}
	return 0;
}

/* ---- life ---- */

int vsock_mux_host_connect(struct vsock_mux *m, int fd, uint32_t port)
{
	uint32_t hp = 0;
	for (unsigned tries = 0; tries <= VSOCK_MUX_MAX_CONNS; tries++) {
		uint32_t cand = m->next_host_port++;
		if (m->next_host_port < VSOCK_HOST_PORT_BASE)
			m->next_host_port = VSOCK_HOST_PORT_BASE;
		if (!conn_find(m, cand, port)) {
			hp = cand;
			break;
		}
	}
	struct conn *c = hp ? conn_new(m, fd, hp, port, CONN_REQUESTED) : NULL;
	if (!c) {
		close(fd);
		return m->nr_conns == VSOCK_MUX_MAX_CONNS ? -EMFILE : -ENOMEM;
	}
	/* the host program's credit is its socket buffer, not ours to give:
	 * nothing goes to the guest before its RESPONSE anyway */
	c->owed |= OWE_REQUEST;
	return 0;
}

unsigned vsock_mux_conns(const struct vsock_mux *m)
{
	return m->nr_conns;
}

int vsock_mux_create(const struct vsock_mux_params *p, struct vsock_mux **out)
{
	struct vsock_mux *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->p = *p;
	m->next_host_port = VSOCK_HOST_PORT_BASE;
	*out = m;
	return 0;
}

void vsock_mux_reset(struct vsock_mux *m)
{
	while (m->nr_conns) {
		struct conn *c = m->conns[m->nr_conns - 1];
		conn_unwatch(c);
		close(c->fd);
		free(c->buf);
		free(c);
		m->nr_conns--;
	}
	m->p.st->conns = 0;
	m->nr_rsts = 0;
	m->rst_head = 0;
	m->cursor = 0;
}

void vsock_mux_destroy(struct vsock_mux *m)
{
	if (!m)
		return;
	vsock_mux_reset(m);
	free(m);
}
