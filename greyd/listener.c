/*
 * listener.c — listening sockets, accept and routing (see listener.h).
 *
 * At accept, limits.c counts the connection first: over a limit the client
 * gets 421 4.7.0 and is closed (LIMIT log line).  Then the facts about the
 * client (allow_clients, its trap and white records, the DNS lists' cached
 * result) go to policy_route, whose decision is logged on one line and
 * taken: FAST (relay_splice; for a white client the DNS lists are looked
 * up meanwhile, for its next connection, and its white entry refreshed by
 * the trust layer), TRAPPED (the tarpit while trap_action = tarpit has
 * room, else a session that rejects every RCPT), or greyd's own session.
 * Trusted clients (the fast path) get trusted_limit_multiplier times the
 * per-client limits.  Tarpitted connections are not counted
 * (max_tarpit_sessions bounds them). */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "clock.h"
#include "dnsbl.h"
#include "greyd_limits.h"
#include "listener.h"
#include "log.h"
#include "netaddr.h"
#include "policy.h"
#include "relay.h"
#include "server.h"
#include "session.h"
#include "tarpit.h"
#include "trust.h"

#define LISTEN_BACKLOG		1024
#define LIMITS_SWEEP_SECONDS	10
#define LIMITS_SWEEP_BATCH	4096

struct listener {
	const struct session_deps *d;	/* what sessions and the route use */
	int listen_fd[CONF_MAX_LISTEN];
	struct evconnlistener *listeners[CONF_MAX_LISTEN];
	int nlisteners;
};

/* Gather what policy_route needs and decide; see the header comment. */
static void
listener_route(struct listener *l, const struct greyd_conf *c,
    const struct netaddr *a, const char *addr, struct route_decision *d)
{
	struct trustdb *db = trust_db(l->d->trust);
	char key[NETADDR_STRLEN];
	struct client_facts f = { .allow = policy_allowed(c, a) };
	struct dnsbl_result bl;
	struct trap_rec t;
	struct white_rec w;
	int64_t now = clock_now();

	if (f.allow == NULL) {
		if (trustdb_find_trap(db, addr, now, &t) == 0)
			f.trap = &t;
		if (l->d->dnsbl != NULL &&
		    dnsbl_cached_client(l->d->dnsbl, a, clock_ms(), &bl))
			f.bl = &bl;
		if (trustdb_find_white(db, a, now,
		    (uint32_t)c->auto_whitelist_after, key, sizeof(key),
		    &w) == 0) {
			f.white_key = key;
			f.white = &w;
		}
	}
	policy_route(c, &f, d);
	if (d->reason != ROUTE_BY_WHITE)
		return;
	trust_white_seen(l->d->trust, c, key, &w, now);
	/* Look the lists up for this client's next connection. */
	if (l->d->dnsbl != NULL)
		dnsbl_release(dnsbl_client(l->d->dnsbl, a, clock_ms()));
}

static unsigned
sockaddr_port(const struct sockaddr *sa)
{
	return ntohs(sa->sa_family == AF_INET6 ?
	    ((const struct sockaddr_in6 *)sa)->sin6_port :
	    ((const struct sockaddr_in *)sa)->sin_port);
}

/* Over a limit: 421 straight on the socket (it is empty), then close. */
static void
listener_refuse(struct listener *l, const struct greyd_conf *c,
    evutil_socket_t fd, const struct netaddr *a, const char *addr,
    unsigned port, enum limit_verdict v, int mult)
{
	struct client_rec add = { .rejected = 1 };
	char reply[160];
	size_t n;

	add.rejected_by[REJECT_LIMIT] = 1;
	limits_reply(v, addr, reply, sizeof(reply) - 2);
	log_info("LIMIT [%s]:%u %s sessions=%u/%d all=%u/%d rate=%d/h", addr,
	    port, limits_name(v), limits_sessions(l->d->limits, a),
	    limits_scaled(c->client_connection_limit, mult),
	    server_count(l->d->srv, NULL), c->max_sessions,
	    limits_scaled(c->client_connection_rate, mult));
	n = strlen(reply);
	memcpy(reply + n, "\r\n", 2);
	(void)send(fd, reply, n + 2, MSG_NOSIGNAL | MSG_DONTWAIT);
	evutil_closesocket(fd);
	(void)trust_client(l->d->trust, addr, clock_now(), &add);
}

/* A trapped client: tarpit it, or give it a session that rejects it. */
static void
listener_trapped(struct listener *l, const struct greyd_conf *c,
    evutil_socket_t fd, const struct sockaddr *peer,
    const struct sockaddr *local, const struct netaddr *a, const char *addr)
{
	char reply[TARPIT_REPLY_MAX];

	if (c->trap_action == ACTION_TARPIT && tarpit_room(l->d->srv, c)) {
		policy_trapped_reply(addr, reply, sizeof(reply));
		if (tarpit_start(l->d->srv, c, fd, addr, sockaddr_port(peer),
		    true, reply, "trap", NULL, 0) == 0) {
			limits_disconnect(l->d->limits, a);
			return;
		}
	}
	(void)session_new(l->d, fd, peer, local, SESSION_TRAPPED);
}

static void
listener_accept_cb(struct evconnlistener *el, evutil_socket_t fd,
    struct sockaddr *peer, int peerlen, void *arg)
{
	struct listener *l = arg;
	const struct session_deps *d = l->d;
	const struct greyd_conf *c = conf_current();
	struct sockaddr_storage local;
	socklen_t locallen = sizeof(local);
	char addr[NETADDR_STRLEN];
	const struct client_rec one = { .connections = 1 };
	struct route_decision rd;
	struct netaddr a;
	enum limit_verdict v;
	int mult;

	if (server_draining(d->srv) || netaddr_from_sockaddr(&a, peer) != 0 ||
	    getsockname(fd, (struct sockaddr *)&local, &locallen) != 0) {
		evutil_closesocket(fd);
		return;
	}
	netaddr_format(&a, addr, sizeof(addr));
	listener_route(l, c, &a, addr, &rd);
	mult = rd.route == ROUTE_FAST ? c->trusted_limit_multiplier : 1;
	v = limits_connect(d->limits, c, &a, server_count(d->srv, NULL), mult,
	    clock_ms());
	if (v != LIMIT_OK) {
		listener_refuse(l, c, fd, &a, addr, sockaddr_port(peer), v, mult);
		return;
	}
	switch (rd.route) {
	case ROUTE_FAST:
		log_info("FAST [%s]:%u %s", addr, sockaddr_port(peer), rd.why);
		(void)trust_client(d->trust, addr, clock_now(), &one);
		if (relay_splice(d->srv, d->limits, c, fd, peer,
		    (struct sockaddr *)&local) == NULL)
			limits_disconnect(d->limits, &a);
		break;
	case ROUTE_TRAPPED:
		log_info("TRAPPED [%s]:%u %s action=%s", addr,
		    sockaddr_port(peer), rd.why,
		    conf_action_name(c->trap_action));
		listener_trapped(l, c, fd, peer, (struct sockaddr *)&local, &a,
		    addr);
		break;
	case ROUTE_SESSION:
		(void)session_new(d, fd, peer, (struct sockaddr *)&local, 0);
		break;
	}
}

static void
listener_error_cb(struct evconnlistener *l, void *arg)
{
	int err = EVUTIL_SOCKET_ERROR();

	/* EMFILE and the like: keep going, the next accept may succeed. */
	log_warn("accept: %s", evutil_socket_error_to_string(err));
}

static int
listener_socket(const struct conf_sockaddr *a, char *err, size_t errlen)
{
	int fd, on = 1;

	fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if (fd < 0) {
		snprintf(err, errlen, "listen %s: socket: %s", a->text,
		    strerror(errno));
		return -1;
	}
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	if (a->ss.ss_family == AF_INET6)
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
	if (bind(fd, (const struct sockaddr *)&a->ss, a->len) != 0 ||
	    listen(fd, LISTEN_BACKLOG) != 0) {
		snprintf(err, errlen, "listen %s: %s", a->text, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

struct listener *
listener_new(void)
{
	struct listener *l = calloc(1, sizeof(*l));
	int i;

	if (l != NULL)
		for (i = 0; i < CONF_MAX_LISTEN; i++)
			l->listen_fd[i] = -1;
	return l;
}

int
listener_bind(struct listener *l, const struct greyd_conf *c, char *err,
    size_t errlen)
{
	int i, fd;

	for (i = 0; i < c->nlisten; i++) {
		if ((fd = listener_socket(&c->listen[i], err, errlen)) < 0)
			return -1;
		l->listen_fd[l->nlisteners++] = fd;
	}
	return 0;
}

/* Idle per-client counters and expired DNS list results go. */
static void
listener_sweep(void *arg)
{
	struct listener *l = arg;

	(void)limits_sweep(l->d->limits, conf_current(), clock_ms(),
	    LIMITS_SWEEP_BATCH);
	if (l->d->dnsbl != NULL)
		dnsbl_sweep(l->d->dnsbl, clock_ms(), LIMITS_SWEEP_BATCH);
}

int
listener_start(struct listener *l, const struct session_deps *d)
{
	int i;

	l->d = d;
	for (i = 0; i < l->nlisteners; i++) {
		l->listeners[i] = evconnlistener_new(server_base(d->srv),
		    listener_accept_cb, l, LEV_OPT_CLOSE_ON_FREE,
		    0 /* already listening with LISTEN_BACKLOG */,
		    l->listen_fd[i]);
		if (l->listeners[i] == NULL)
			return -1;
		evconnlistener_set_error_cb(l->listeners[i], listener_error_cb);
		l->listen_fd[i] = -1;
	}
	return server_every(d->srv, LIMITS_SWEEP_SECONDS, listener_sweep, l);
}

void
listener_stop(struct listener *l)
{
	int i;

	for (i = 0; i < l->nlisteners; i++) {
		if (l->listeners[i] != NULL) {
			evconnlistener_free(l->listeners[i]);
			l->listeners[i] = NULL;
		}
	}
}

void
listener_free(struct listener *l)
{
	int i;

	if (l == NULL)
		return;
	listener_stop(l);
	for (i = 0; i < l->nlisteners; i++)
		if (l->listen_fd[i] >= 0)
			close(l->listen_fd[i]);
	free(l);
}
