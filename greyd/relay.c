/*
 * relay.c — the connection to the backend MTA (see relay.h).
 *
 * State machine of one backend connection:
 *
 *   CONNECTING --connected, identity header sent--> BANNER
 *   BANNER   --220--> EHLO (replayed HELO/EHLO of the client)
 *            --220, xclient--> XCLIENT_EHLO --250--> XCLIENT --220--> EHLO
 *   EHLO     --reply--> IDLE (reported to the session: 250 = ready)
 *   IDLE     --relay_command--> WAIT --reply--> IDLE (reported)
 *   any      --EOF, error, timeout, malformed or unsolicited reply--> FAILED
 *            (reported once as code -1)
 *
 * On the fast path (relay_splice) the same connection, once the identity is
 * established, turns into SPLICE: bytes are copied both ways with
 * back-pressure (reading from one side stops while the other side has more
 * than RELAY_HIGH_WATER queued) until either side closes; what one side had
 * sent is flushed to the other before both are closed.
 *
 * The reply callback may call relay_free(); the relay then dies when the
 * callback returns (the in_callback/dead pair), never under its own feet.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "greyd_limits.h"
#include "log.h"
#include "netaddr.h"
#include "proxy.h"
#include "relay.h"
#include "server.h"
#include "smtp.h"

#define RELAY_HIGH_WATER	(256 * 1024)
#define RELAY_LOW_WATER		(64 * 1024)

enum relay_state {
	R_CONNECTING, R_BANNER, R_XCLIENT_EHLO, R_XCLIENT, R_EHLO, R_IDLE,
	R_WAIT, R_SPLICE, R_FAILED,
};

struct relay {
	struct conn conn;		/* fast path: in the server's registry */
	struct server *srv;		/* fast path only */
	struct limits *limits;		/* fast path only: limits_disconnect */
	struct event_base *base;
	const struct greyd_conf *conf;	/* held while the relay lives */
	struct bufferevent *be;		/* backend */
	struct bufferevent *cl;		/* client (fast path only) */
	enum relay_state state;
	bool splice;
	bool in_callback, dead;
	bool closing;			/* splice: one side closed, flushing */
	relay_reply_fn fn;
	void *arg;
	void (*drain_fn)(void *);
	void *drain_arg;
	struct sockaddr_storage client, local;
	char helo[SMTP_LINE_MAX];
	bool esmtp;
	char addrstr[NETADDR_STRLEN];
};

static void relay_read_cb(struct bufferevent *bev, void *arg);
static void relay_write_cb(struct bufferevent *bev, void *arg);
static void relay_event_cb(struct bufferevent *bev, short what, void *arg);
static void splice_start(struct relay *r);

static void
set_reply_timeout(struct relay *r, int seconds)
{
	struct timeval tv = { seconds, 0 };

	bufferevent_set_timeouts(r->be, seconds > 0 ? &tv : NULL, NULL);
}

static void
relay_destroy(struct relay *r)
{
	if (r->be != NULL)
		bufferevent_free(r->be);
	if (r->cl != NULL)
		bufferevent_free(r->cl);
	conf_release(r->conf);
	free(r);
}

/* Report to the session; returns false if the relay died in the callback. */
static bool
relay_report(struct relay *r, int code, const char *reply, size_t len)
{
	r->in_callback = true;
	r->fn(r->arg, code, reply, len);
	r->in_callback = false;
	if (r->dead) {
		relay_destroy(r);
		return false;
	}
	return true;
}

static void
splice_finish(struct relay *r)
{
	struct netaddr a;

	if (netaddr_from_sockaddr(&a, (struct sockaddr *)&r->client) == 0)
		limits_disconnect(r->limits, &a);
	server_remove(r->srv, &r->conn);
	relay_destroy(r);
}

/* Drain timeout or teardown: a fast-path connection just closes. */
static void
splice_end(void *arg)
{
	splice_finish(arg);
}

static const struct conn_ops splice_ops = {
	.name = "splice",
	.counted = true,
	.close_at_drain = false,
	.shutdown = splice_end,
	.free = splice_end,
};

/* The client of a fast path whose backend failed before the splice began
 * hears nothing yet: tell it to come back (its socket buffer is empty). */
static void
splice_tempfail(struct relay *r)
{
	static const char msg[] =
	    "421 4.3.0 Service temporarily unavailable, try again later\r\n";

	if (r->cl != NULL)
		(void)send(bufferevent_getfd(r->cl), msg, sizeof(msg) - 1,
		    MSG_NOSIGNAL | MSG_DONTWAIT);
}

static void
relay_fail(struct relay *r, const char *why)
{
	if (r->state == R_FAILED)
		return;
	log_info("BACKEND [%s] %s: %s", r->addrstr,
	    r->conf->backend.text, why);
	r->state = R_FAILED;
	bufferevent_disable(r->be, EV_READ | EV_WRITE);
	if (r->splice) {
		splice_tempfail(r);
		splice_finish(r);
		return;
	}
	relay_report(r, -1, NULL, 0);
}

static void
relay_send(struct relay *r, const char *line, enum relay_state next)
{
	struct evbuffer *out = bufferevent_get_output(r->be);

	evbuffer_add(out, line, strlen(line));
	evbuffer_add(out, "\r\n", 2);
	r->state = next;
	set_reply_timeout(r, r->conf->backend_timeout);
}

static void
send_identity(struct relay *r)
{
	struct evbuffer *out = bufferevent_get_output(r->be);
	const struct sockaddr *c = (const struct sockaddr *)&r->client;
	const struct sockaddr *l = (const struct sockaddr *)&r->local;
	uint8_t buf[PROXY_V1_MAX + PROXY_V2_MAX];
	size_t n = 0;

	switch (r->conf->backend_proxy) {
	case BACKEND_PROXY_HAPROXY:
		n = proxy_v1_encode((char *)buf, sizeof(buf), c, l);
		break;
	case BACKEND_PROXY_HAPROXY2:
		n = proxy_v2_encode(buf, sizeof(buf), c, l);
		break;
	default:
		return;
	}
	if (n > 0)
		evbuffer_add(out, buf, n);
}

static void
send_helo(struct relay *r)
{
	char line[SMTP_LINE_MAX + 8];

	snprintf(line, sizeof(line), "%s %s", r->esmtp ? "EHLO" : "HELO",
	    r->helo);
	relay_send(r, line, R_EHLO);
}

static bool
send_xclient(struct relay *r)
{
	char line[SMTP_LINE_MAX * 2];
	size_t n;

	n = xclient_encode(line, sizeof(line), (const struct sockaddr *)&r->client,
	    NULL, r->splice ? NULL : r->helo,
	    r->splice ? NULL : (r->esmtp ? "ESMTP" : "SMTP"));
	if (n < 2) {
		relay_fail(r, "cannot encode XCLIENT");
		return false;
	}
	line[n - 2] = '\0';		/* relay_send adds the CRLF */
	relay_send(r, line, R_XCLIENT);
	return true;
}

/* A complete reply arrived in state r->state.  False if r is gone. */
static bool
relay_handle_reply(struct relay *r, int code, const char *reply, size_t len)
{
	char line[SMTP_LINE_MAX];

	switch (r->state) {
	case R_BANNER:
		if (code != 220)
			break;
		if (r->conf->backend_proxy == BACKEND_PROXY_XCLIENT) {
			snprintf(line, sizeof(line), "EHLO %s",
			    r->conf->hostname);
			relay_send(r, line, R_XCLIENT_EHLO);
		} else
			send_helo(r);
		return true;
	case R_XCLIENT_EHLO:
		if (code != 250)
			break;
		return send_xclient(r);
	case R_XCLIENT:
		if (code != 220)
			break;
		if (r->splice) {
			/* The greeting after XCLIENT is the client's banner. */
			evbuffer_add(bufferevent_get_output(r->cl), reply, len);
			splice_start(r);
		} else
			send_helo(r);
		return true;
	case R_EHLO:
	case R_WAIT:
		r->state = code == 250 || r->state == R_WAIT ? R_IDLE : R_FAILED;
		set_reply_timeout(r, 0);
		return relay_report(r, code, reply, len);
	default:
		relay_fail(r, "unexpected reply");
		return false;
	}
	/* Handshake refused: report the backend's own reply, then fail. */
	log_info("BACKEND [%s] %s: handshake refused: %.*s", r->addrstr,
	    r->conf->backend.text, (int)(len > 2 ? len - 2 : len), reply);
	if (r->splice) {
		relay_fail(r, "handshake refused");
		return false;
	}
	r->state = R_FAILED;
	bufferevent_disable(r->be, EV_READ | EV_WRITE);
	return relay_report(r, code >= 400 ? code : -1, reply, len);
}

static void
relay_read_cb(struct bufferevent *bev, void *arg)
{
	struct relay *r = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t len, used;
	const char *p;
	int code, rc;

	if (r->state == R_SPLICE)
		return;
	while ((len = evbuffer_get_length(in)) > 0 && r->state != R_FAILED) {
		p = (const char *)evbuffer_pullup(in, (ssize_t)(len < SMTP_REPLY_MAX ?
		    len : SMTP_REPLY_MAX));
		rc = smtp_reply_scan(p, len < SMTP_REPLY_MAX ? len : SMTP_REPLY_MAX,
		    &code, &used);
		if (rc == 0 && len < SMTP_REPLY_MAX)
			return;
		if (rc <= 0) {
			relay_fail(r, "malformed reply");
			return;
		}
		if (r->state == R_IDLE || r->state == R_CONNECTING) {
			relay_fail(r, "unsolicited reply");
			return;
		}
		{
			char reply[SMTP_REPLY_MAX];

			memcpy(reply, p, used);
			evbuffer_drain(in, used);
			if (!relay_handle_reply(r, code, reply, used))
				return;
		}
		if (r->state == R_SPLICE)
			return;
	}
}

static void
relay_write_cb(struct bufferevent *bev, void *arg)
{
	struct relay *r = arg;
	void (*fn)(void *) = r->drain_fn;

	if (fn == NULL)
		return;
	r->drain_fn = NULL;
	fn(r->drain_arg);
}

static void
relay_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct relay *r = arg;

	if (what & BEV_EVENT_CONNECTED) {
		send_identity(r);
		if (r->splice &&
		    r->conf->backend_proxy != BACKEND_PROXY_XCLIENT) {
			/* The backend's banner goes straight to the client. */
			splice_start(r);
			return;
		}
		r->state = R_BANNER;
		set_reply_timeout(r, r->conf->backend_timeout);
		bufferevent_enable(r->be, EV_READ);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT)
		relay_fail(r, r->state == R_CONNECTING ? "connect timeout" :
		    "timeout waiting for reply");
	else if (what & BEV_EVENT_EOF)
		relay_fail(r, "connection closed");
	else
		relay_fail(r, evutil_socket_error_to_string(
		    EVUTIL_SOCKET_ERROR()));
}

static struct relay *
relay_new(struct event_base *base, const struct greyd_conf *c,
    const struct sockaddr *client, const struct sockaddr *local)
{
	struct relay *r;
	struct netaddr a;
	struct timeval tv = { c->backend_connect_timeout, 0 };

	if ((r = calloc(1, sizeof(*r))) == NULL)
		return NULL;
	r->base = base;
	r->conf = conf_hold(c);
	memcpy(&r->client, client, client->sa_family == AF_INET6 ?
	    sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in));
	memcpy(&r->local, local, local->sa_family == AF_INET6 ?
	    sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in));
	if (netaddr_from_sockaddr(&a, client) == 0)
		netaddr_format(&a, r->addrstr, sizeof(r->addrstr));
	r->be = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (r->be == NULL) {
		relay_destroy(r);
		return NULL;
	}
	bufferevent_setcb(r->be, relay_read_cb, relay_write_cb, relay_event_cb, r);
	bufferevent_setwatermark(r->be, EV_WRITE, RELAY_LOW_WATER, 0);
	bufferevent_set_timeouts(r->be, &tv, &tv);
	r->state = R_CONNECTING;
	return r;
}

static int
relay_connect(struct relay *r)
{
	const struct conf_sockaddr *b = &r->conf->backend;

	if (bufferevent_socket_connect(r->be, (const struct sockaddr *)&b->ss,
	    (int)b->len) != 0)
		return -1;
	return 0;
}

struct relay *
relay_open(struct event_base *base, const struct greyd_conf *c,
    const struct sockaddr *client, const struct sockaddr *local,
    const char *helo, bool esmtp, relay_reply_fn fn, void *arg)
{
	struct relay *r = relay_new(base, c, client, local);

	if (r == NULL)
		return NULL;
	r->fn = fn;
	r->arg = arg;
	r->esmtp = esmtp;
	snprintf(r->helo, sizeof(r->helo), "%s", helo[0] != '\0' ? helo :
	    "[UNAVAILABLE]");
	if (relay_connect(r) != 0) {
		log_info("BACKEND [%s] %s: cannot connect", r->addrstr,
		    c->backend.text);
		relay_destroy(r);
		return NULL;
	}
	return r;
}

void
relay_command(struct relay *r, const char *line)
{
	relay_send(r, line, R_WAIT);
}

void
relay_data(struct relay *r, const char *p, size_t n)
{
	evbuffer_add(bufferevent_get_output(r->be), p, n);
}

size_t
relay_backlog(const struct relay *r)
{
	return evbuffer_get_length(bufferevent_get_output(r->be));
}

void
relay_on_drain(struct relay *r, void (*fn)(void *), void *arg)
{
	r->drain_fn = fn;
	r->drain_arg = arg;
}

void
relay_free(struct relay *r, bool quit)
{
	if (quit && r->state == R_IDLE &&
	    evbuffer_get_length(bufferevent_get_output(r->be)) == 0) {
		/* Idle: the socket buffer is empty, QUIT fits at once. */
		(void)send(bufferevent_getfd(r->be), "QUIT\r\n", 6,
		    MSG_NOSIGNAL | MSG_DONTWAIT);
	}
	if (r->in_callback) {
		r->dead = true;
		return;
	}
	relay_destroy(r);
}

/* ---- fast path ---- */

static void
splice_other(struct relay *r, struct bufferevent *bev,
    struct bufferevent **other)
{
	*other = bev == r->cl ? r->be : r->cl;
}

static void
splice_read_cb(struct bufferevent *bev, void *arg)
{
	struct relay *r = arg;
	struct bufferevent *other;

	struct evbuffer *in = bufferevent_get_input(bev), *out;

	splice_other(r, bev, &other);
	out = bufferevent_get_output(other);
	/* Nothing queued for the other side: write at once instead of arming a
	 * write event for the next loop turn (that costs two epoll_ctl calls and
	 * an extra epoll_wait per chunk).  What does not fit is queued. */
	if (evbuffer_get_length(out) == 0)
		(void)evbuffer_write(in, bufferevent_getfd(other));
	if (evbuffer_get_length(in) > 0)
		evbuffer_add_buffer(out, in);
	if (evbuffer_get_length(out) >= RELAY_HIGH_WATER)
		bufferevent_disable(bev, EV_READ);
}

static void
splice_write_cb(struct bufferevent *bev, void *arg)
{
	struct relay *r = arg;
	struct bufferevent *other;

	splice_other(r, bev, &other);
	if (r->closing) {
		if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
			splice_finish(r);
		return;
	}
	bufferevent_enable(other, EV_READ);
}

static void
splice_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct relay *r = arg;
	struct bufferevent *other;

	if (what & BEV_EVENT_CONNECTED) {
		relay_event_cb(bev, what, arg);
		return;
	}
	splice_other(r, bev, &other);
	if (r->state != R_SPLICE || r->closing || !(what & BEV_EVENT_EOF) ||
	    other == NULL) {
		if (r->state != R_SPLICE && bev == r->be) {
			relay_event_cb(bev, what, arg);
			return;
		}
		splice_finish(r);
		return;
	}
	/* One side closed: flush what it sent to the other, then close. */
	r->closing = true;
	evbuffer_add_buffer(bufferevent_get_output(other),
	    bufferevent_get_input(bev));
	bufferevent_disable(bev, EV_READ);
	bufferevent_disable(other, EV_READ);
	bufferevent_setwatermark(other, EV_WRITE, 0, 0);
	if (evbuffer_get_length(bufferevent_get_output(other)) == 0)
		splice_finish(r);
}

static void
splice_start(struct relay *r)
{
	struct timeval tv = { r->conf->smtp_idle_timeout +
	    r->conf->backend_timeout, 0 };

	r->state = R_SPLICE;
	bufferevent_setcb(r->be, splice_read_cb, splice_write_cb,
	    splice_event_cb, r);
	bufferevent_setcb(r->cl, splice_read_cb, splice_write_cb,
	    splice_event_cb, r);
	bufferevent_set_timeouts(r->be, NULL, &tv);
	bufferevent_set_timeouts(r->cl, &tv, &tv);
	bufferevent_setwatermark(r->be, EV_WRITE, RELAY_LOW_WATER, 0);
	bufferevent_setwatermark(r->cl, EV_WRITE, RELAY_LOW_WATER, 0);
	bufferevent_enable(r->be, EV_READ);
	bufferevent_enable(r->cl, EV_READ);
	/* Anything the client already sent (it may talk first) goes along. */
	if (evbuffer_get_length(bufferevent_get_input(r->cl)) > 0)
		splice_read_cb(r->cl, r);
	if (evbuffer_get_length(bufferevent_get_input(r->be)) > 0)
		splice_read_cb(r->be, r);
}

struct relay *
relay_splice(struct server *srv, struct limits *limits,
    const struct greyd_conf *c, evutil_socket_t fd,
    const struct sockaddr *client, const struct sockaddr *local)
{
	struct relay *r = relay_new(server_base(srv), c, client, local);

	if (r == NULL) {
		evutil_closesocket(fd);
		return NULL;
	}
	r->splice = true;
	r->cl = bufferevent_socket_new(r->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (r->cl == NULL) {
		evutil_closesocket(fd);
		relay_destroy(r);
		return NULL;
	}
	bufferevent_setcb(r->cl, NULL, NULL, splice_event_cb, r);
	bufferevent_setcb(r->be, relay_read_cb, relay_write_cb, splice_event_cb,
	    r);
	if (relay_connect(r) != 0) {
		log_info("BACKEND [%s] %s: cannot connect", r->addrstr,
		    c->backend.text);
		relay_destroy(r);
		return NULL;
	}
	r->srv = srv;
	r->limits = limits;
	server_add(srv, &r->conn, &splice_ops, r);
	return r;
}
