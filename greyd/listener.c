/*
 * listener.c — listening sockets, accept and routing, the live-connection
 * bookkeeping, the trust database timers, and the drain on SIGTERM (see
 * listener.h).
 *
 * Routing at accept (one decision, logged on one line):
 *   allow_clients match          -> FAST ... allow=CIDR  (relay_splice)
 *   trapped (trap table)         -> TARPIT (trap_action = tarpit, room left)
 *                                   or a session that rejects every RCPT
 *   cached DNS lists: listed     -> greyd's own session (white ignored)
 *                     trusted    -> FAST ... dnswl score=N lists="..."
 *   white entry in the trust DB  -> FAST ... white=KEY   (relay_splice;
 *                                   the DNS lists are looked up meanwhile
 *                                   for the next connection)
 *   otherwise                    -> greyd's own SMTP session (session_new)
 * allow_clients wins over a trap (the admin said so); a trap wins over a
 * white entry (a trapped client is never treated as whitelisted).  Before
 * any of that, limits.c counts the connection: over a limit the client gets
 * 421 4.7.0 and is closed (LIMIT log line).  Trusted clients (allow or
 * white) get trusted_limit_multiplier times the per-client limits.
 * Tarpitted connections are not counted (max_tarpit_sessions bounds them).
 * A whitelisted client's entry is refreshed at most once a minute, so a
 * busy trusted sender does not cost a database write per connection.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "dnsbl.h"
#include "greylist.h"
#include "greyd_limits.h"
#include "listener.h"
#include "log.h"
#include "netaddr.h"
#include "rcpt.h"
#include "relay.h"
#include "session.h"
#include "tarpit.h"

#define LISTEN_BACKLOG		1024
#define WHITE_REFRESH_SLACK	60	/* seconds between refresh writes */
#define LIMITS_SWEEP_SECONDS	10
#define LIMITS_SWEEP_BATCH	4096

/* The route a new connection takes. */
enum route { ROUTE_SESSION, ROUTE_FAST, ROUTE_TRAPPED };

int64_t
monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool
listener_allowed(const struct greyd_conf *c, const struct netaddr *a,
    char *why, size_t whylen)
{
	char key[NETADDR_STRLEN];
	size_t i;

	for (i = 0; i < c->nallow_clients; i++) {
		if (netaddr_in_cidr(a, &c->allow_clients[i])) {
			netaddr_key(&c->allow_clients[i].net,
			    c->allow_clients[i].prefix, key, sizeof(key));
			snprintf(why, whylen, "allow=%s", key);
			return true;
		}
	}
	return false;
}

/* Whitelisted in the trust database?  Fills why ("white=...") if so. */
static bool
listener_white(struct server *srv, const struct netaddr *a, char *why,
    size_t whylen)
{
	const struct greyd_conf *c = srv->conf;
	char key[NETADDR_STRLEN];
	struct white_rec w;
	int64_t now = (int64_t)time(NULL);

	if (trustdb_find_white(srv->db, a, now,
	    (uint32_t)c->auto_whitelist_after, key, sizeof(key), &w) != 0)
		return false;
	snprintf(why, whylen, "white=%s", key);
	if (now - w.last_seen >= WHITE_REFRESH_SLACK) {
		greylist_white_refresh(c, &w, now);
		(void)trustdb_put_white(srv->db, key, &w);
	}
	return true;
}

/*
 * The cached verdict of the DNS lists: ROUTE_SESSION for a listed client
 * (its session applies dnsbl_action, even to a whitelisted client),
 * ROUTE_FAST for a trusted one, -1 when nothing is cached or neither.
 */
static int
listener_dnsbl(struct server *srv, const struct netaddr *a, char *why,
    size_t whylen)
{
	const struct greyd_conf *c = srv->conf;
	struct dnsbl_result r;

	if (srv->dnsbl == NULL ||
	    !dnsbl_cached_client(srv->dnsbl, a, monotonic_ms(), &r))
		return -1;
	if (r.score >= c->dnsbl_threshold)
		return ROUTE_SESSION;
	if (r.score > c->dnswl_threshold)
		return -1;
	snprintf(why, whylen, "dnswl score=%d lists=\"%s\"", r.score, r.hits);
	return ROUTE_FAST;
}

static enum route
listener_route(struct server *srv, const struct netaddr *a, const char *addr,
    char *why, size_t whylen)
{
	struct trap_rec t;
	int bl;

	if (listener_allowed(srv->conf, a, why, whylen))
		return ROUTE_FAST;
	if (trustdb_find_trap(srv->db, addr, (int64_t)time(NULL), &t) == 0) {
		snprintf(why, whylen, "trapped until %lld",
		    (long long)t.expire);
		return ROUTE_TRAPPED;
	}
	if ((bl = listener_dnsbl(srv, a, why, whylen)) != -1)
		return (enum route)bl;
	if (!listener_white(srv, a, why, whylen))
		return ROUTE_SESSION;
	/* Look the lists up for this client's next connection. */
	if (srv->dnsbl != NULL)
		dnsbl_release(dnsbl_client(srv->dnsbl, a, monotonic_ms()));
	return ROUTE_FAST;
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
listener_refuse(struct server *srv, evutil_socket_t fd,
    const struct netaddr *a, const char *addr, unsigned port,
    enum limit_verdict v, int mult)
{
	const struct greyd_conf *c = srv->conf;
	struct client_rec add = { .rejected = 1 };
	char reply[160];
	size_t n;

	add.rejected_by[REJECT_LIMIT] = 1;
	limits_reply(v, addr, reply, sizeof(reply) - 2);
	log_info("LIMIT [%s]:%u %s sessions=%u/%d all=%u/%d rate=%d/h", addr,
	    port, limits_name(v), limits_sessions(srv->limits, a),
	    limits_scaled(c->client_connection_limit, mult),
	    srv->nsessions + srv->nsplices, c->max_sessions,
	    limits_scaled(c->client_connection_rate, mult));
	n = strlen(reply);
	memcpy(reply + n, "\r\n", 2);
	(void)send(fd, reply, n + 2, MSG_NOSIGNAL | MSG_DONTWAIT);
	evutil_closesocket(fd);
	(void)trustdb_add_client(srv->db, addr, (int64_t)time(NULL), &add);
}

/* A trapped client: tarpit it, or give it a session that rejects it. */
static void
listener_trapped(struct server *srv, evutil_socket_t fd,
    const struct sockaddr *peer, const struct sockaddr *local,
    const struct netaddr *a, const char *addr)
{
	char reply[TARPIT_REPLY_MAX];

	if (srv->conf->trap_action == ACTION_TARPIT && tarpit_room(srv)) {
		snprintf(reply, sizeof(reply), "550 5.7.1 Service unavailable; "
		    "client [%s] trapped", addr);
		if (tarpit_start(srv, fd, addr, sockaddr_port(peer), true,
		    reply, "trap") == 0) {
			limits_disconnect(srv->limits, a);
			return;
		}
	}
	(void)session_new(srv, fd, peer, local, SESSION_TRAPPED);
}

static void
listener_accept_cb(struct evconnlistener *l, evutil_socket_t fd,
    struct sockaddr *peer, int peerlen, void *arg)
{
	struct server *srv = arg;
	struct sockaddr_storage local;
	socklen_t locallen = sizeof(local);
	char addr[NETADDR_STRLEN], why[DNSBL_HITS_MAX + 64];
	const struct client_rec one = { .connections = 1 };
	struct netaddr a;
	enum route route;
	enum limit_verdict v;
	int mult;

	if (srv->draining || netaddr_from_sockaddr(&a, peer) != 0 ||
	    getsockname(fd, (struct sockaddr *)&local, &locallen) != 0) {
		evutil_closesocket(fd);
		return;
	}
	netaddr_format(&a, addr, sizeof(addr));
	route = listener_route(srv, &a, addr, why, sizeof(why));
	mult = route == ROUTE_FAST ? srv->conf->trusted_limit_multiplier : 1;
	v = limits_connect(srv->limits, srv->conf, &a,
	    srv->nsessions + srv->nsplices, mult, monotonic_ms());
	if (v != LIMIT_OK) {
		listener_refuse(srv, fd, &a, addr, sockaddr_port(peer), v, mult);
		return;
	}
	switch (route) {
	case ROUTE_FAST:
		log_info("FAST [%s]:%u %s", addr, sockaddr_port(peer), why);
		(void)trustdb_add_client(srv->db, addr, (int64_t)time(NULL), &one);
		if (relay_splice(srv, fd, peer, (struct sockaddr *)&local) ==
		    NULL)
			limits_disconnect(srv->limits, &a);
		break;
	case ROUTE_TRAPPED:
		log_info("TRAPPED [%s]:%u %s action=%s", addr,
		    sockaddr_port(peer), why,
		    conf_action_name(srv->conf->trap_action));
		listener_trapped(srv, fd, peer, (struct sockaddr *)&local, &a,
		    addr);
		break;
	case ROUTE_SESSION:
		(void)session_new(srv, fd, peer, (struct sockaddr *)&local, 0);
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

int
listener_bind(struct server *srv, char *err, size_t errlen)
{
	int i, fd;

	for (i = 0; i < srv->conf->nlisten; i++) {
		if ((fd = listener_socket(&srv->conf->listen[i], err,
		    errlen)) < 0)
			return -1;
		srv->listen_fd[srv->nlisteners++] = fd;
	}
	return 0;
}

static void
listener_expire_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;
	int n = trustdb_expire_step(srv->db, (int64_t)time(NULL),
	    srv->conf->db_expire_batch);

	if (n > 0)
		log_debug("expired %d trust database records", n);
}

static void
listener_checkpoint_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;

	(void)trustdb_checkpoint(srv->db);
}

static void
listener_sweep_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;

	(void)limits_sweep(srv->limits, srv->conf, monotonic_ms(),
	    LIMITS_SWEEP_BATCH);
	if (srv->dnsbl != NULL)
		dnsbl_sweep(srv->dnsbl, monotonic_ms(), LIMITS_SWEEP_BATCH);
}

static struct event *
listener_timer(struct server *srv, int seconds, event_callback_fn fn)
{
	struct timeval tv = { seconds > 0 ? seconds : 1, 0 };
	struct event *ev = event_new(srv->base, -1, EV_PERSIST, fn, srv);

	if (ev != NULL)
		event_add(ev, &tv);
	return ev;
}

int
listener_start(struct server *srv)
{
	int i;

	for (i = 0; i < srv->nlisteners; i++) {
		srv->listeners[i] = evconnlistener_new(srv->base,
		    listener_accept_cb, srv, LEV_OPT_CLOSE_ON_FREE,
		    0 /* already listening with LISTEN_BACKLOG */,
		    srv->listen_fd[i]);
		if (srv->listeners[i] == NULL)
			return -1;
		evconnlistener_set_error_cb(srv->listeners[i], listener_error_cb);
		srv->listen_fd[i] = -1;
	}
	srv->expire_ev = listener_timer(srv, srv->conf->db_expire_interval,
	    listener_expire_cb);
	srv->checkpoint_ev = listener_timer(srv,
	    srv->conf->db_checkpoint_interval, listener_checkpoint_cb);
	srv->sweep_ev = listener_timer(srv, LIMITS_SWEEP_SECONDS,
	    listener_sweep_cb);
	return 0;
}

static void
listener_maybe_exit(struct server *srv)
{
	if (srv->draining && srv->nsessions == 0 && srv->nsplices == 0 &&
	    srv->ntarpits == 0)
		event_base_loopexit(srv->base, NULL);
}

static void
listener_drain_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;

	log_info("drain timeout: closing %u sessions and %u fast-path "
	    "connections", srv->nsessions, srv->nsplices);
	session_shutdown_all(srv);
	relay_splice_close_all(srv);
	tarpit_close_all(srv);
	/* Sessions flushing their 421 get a few more seconds. */
	{
		struct timeval tv = { 5, 0 };

		event_base_loopexit(srv->base, &tv);
	}
}

void
listener_drain(struct server *srv)
{
	struct timeval tv = { srv->conf->drain_timeout, 0 };
	int i;

	if (srv->draining)
		return;
	srv->draining = true;
	for (i = 0; i < srv->nlisteners; i++) {
		if (srv->listeners[i] != NULL) {
			evconnlistener_free(srv->listeners[i]);
			srv->listeners[i] = NULL;
		}
	}
	log_info("draining: %u sessions, %u fast-path connections, %u "
	    "tarpitted", srv->nsessions, srv->nsplices, srv->ntarpits);
	/* Tarpitted clients are owed nothing: close them at once. */
	tarpit_close_all(srv);
	srv->drain_ev = event_new(srv->base, -1, 0, listener_drain_timeout_cb,
	    srv);
	if (srv->drain_ev != NULL)
		event_add(srv->drain_ev, &tv);
	listener_maybe_exit(srv);
}

void
listener_session_done(struct server *srv, struct session *s)
{
	listener_maybe_exit(srv);
}

void
listener_splice_done(struct server *srv, struct relay *r)
{
	listener_maybe_exit(srv);
}

void
listener_tarpit_done(struct server *srv)
{
	listener_maybe_exit(srv);
}

void
listener_free(struct server *srv)
{
	int i;

	session_free_all(srv);
	relay_splice_close_all(srv);
	tarpit_close_all(srv);
	rcpt_callout_free(srv);
	for (i = 0; i < srv->nlisteners; i++) {
		if (srv->listeners[i] != NULL)
			evconnlistener_free(srv->listeners[i]);
		if (srv->listen_fd[i] >= 0)
			close(srv->listen_fd[i]);
	}
	if (srv->expire_ev != NULL)
		event_free(srv->expire_ev);
	if (srv->checkpoint_ev != NULL)
		event_free(srv->checkpoint_ev);
	if (srv->drain_ev != NULL)
		event_free(srv->drain_ev);
	if (srv->sweep_ev != NULL)
		event_free(srv->sweep_ev);
}
