/*
 * listener.c — listening sockets, accept and routing, the live-connection
 * bookkeeping, the trust database timers, and the drain on SIGTERM (see
 * listener.h).
 *
 * Routing at accept (one decision, logged on one line):
 *   allow_clients match          -> FAST ... allow=CIDR  (relay_splice)
 *   white entry in the trust DB  -> FAST ... white=KEY   (relay_splice)
 *   otherwise                    -> greyd's own SMTP session (session_new)
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

#include "greylist.h"
#include "listener.h"
#include "log.h"
#include "netaddr.h"
#include "relay.h"
#include "session.h"

#define LISTEN_BACKLOG		1024
#define WHITE_REFRESH_SLACK	60	/* seconds between refresh writes */

/* Is the client trusted?  Fills why ("allow=..." / "white=...") if so. */
static bool
listener_trusted(struct server *srv, const struct netaddr *a, char *why,
    size_t whylen)
{
	const struct greyd_conf *c = srv->conf;
	char key[NETADDR_STRLEN];
	struct white_rec w;
	int64_t now = (int64_t)time(NULL);
	size_t i;

	for (i = 0; i < c->nallow_clients; i++) {
		if (netaddr_in_cidr(a, &c->allow_clients[i])) {
			netaddr_key(&c->allow_clients[i].net,
			    c->allow_clients[i].prefix, key, sizeof(key));
			snprintf(why, whylen, "allow=%s", key);
			return true;
		}
	}
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

static void
listener_accept_cb(struct evconnlistener *l, evutil_socket_t fd,
    struct sockaddr *peer, int peerlen, void *arg)
{
	struct server *srv = arg;
	struct sockaddr_storage local;
	socklen_t locallen = sizeof(local);
	char addr[NETADDR_STRLEN], why[NETADDR_STRLEN + 16];
	const struct client_rec one = { .connections = 1 };
	struct netaddr a;

	if (srv->draining || netaddr_from_sockaddr(&a, peer) != 0 ||
	    getsockname(fd, (struct sockaddr *)&local, &locallen) != 0) {
		evutil_closesocket(fd);
		return;
	}
	netaddr_format(&a, addr, sizeof(addr));
	if (listener_trusted(srv, &a, why, sizeof(why))) {
		log_info("FAST [%s]:%u %s", addr, ntohs(peer->sa_family ==
		    AF_INET6 ? ((struct sockaddr_in6 *)peer)->sin6_port :
		    ((struct sockaddr_in *)peer)->sin_port), why);
		(void)trustdb_add_client(srv->db, addr, (int64_t)time(NULL), &one);
		(void)relay_splice(srv, fd, peer, (struct sockaddr *)&local);
		return;
	}
	(void)session_new(srv, fd, peer, (struct sockaddr *)&local);
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
	return 0;
}

static void
listener_maybe_exit(struct server *srv)
{
	if (srv->draining && srv->nsessions == 0 && srv->nsplices == 0)
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
	log_info("draining: %u sessions, %u fast-path connections",
	    srv->nsessions, srv->nsplices);
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
listener_free(struct server *srv)
{
	int i;

	session_free_all(srv);
	relay_splice_close_all(srv);
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
}
