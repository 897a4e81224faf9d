/*
 * listener.h — the server: listening sockets, accept, the route each new
 * connection takes, and the bookkeeping of live connections.
 *
 * At accept a client is routed by listener_route(): on allow_clients or
 * whitelisted in the trust database it takes the fast path (relay_splice:
 * bytes copied both ways to the backend after the PROXY header); otherwise
 * greyd speaks SMTP itself (session_new).  The server also owns the timers
 * of the trust database (expiry, checkpoint) and the drain on SIGTERM.
 */
#ifndef GREYD_LISTENER_H
#define GREYD_LISTENER_H

#include <stdbool.h>
#include <sys/queue.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "conf.h"
#include "trustdb.h"

/*
 * Event priorities (event_base_priority_init in main.c): everything runs at
 * libevent's default, the middle one, except the tarpit's ticks and reads,
 * which run last and at most EV_TARPIT_BATCH per loop turn: 20,000
 * stuttering connections then never hold back an accept or a session.
 */
#define EV_PRIORITIES		3
#define EV_PRIO_TARPIT		2
#define EV_TARPIT_BATCH		64

struct session;
struct relay;
struct tarpit;
struct limits;
struct callout;
struct dns;
struct dnsbl;

struct server {
	struct event_base *base;
	struct greyd_conf *conf;	/* current; replaced on SIGHUP */
	struct trustdb *db;
	int listen_fd[CONF_MAX_LISTEN];
	struct evconnlistener *listeners[CONF_MAX_LISTEN];
	int nlisteners;
	TAILQ_HEAD(, session) sessions;
	TAILQ_HEAD(, relay) splices;
	TAILQ_HEAD(, tarpit) tarpits;
	unsigned nsessions, nsplices, ntarpits;
	struct limits *limits;		/* per-client counters (limits.c) */
	struct callout *callout;	/* recipient callout state (rcpt.c) */
	struct dns *dns;		/* the resolver (dns.c) */
	struct dnsbl *dnsbl;		/* DNS list lookups (dnsbl.c); NULL:
					 * no dnsbl_sites nor rhsbl sites */
	struct spf *spf;		/* SPF checks (spf.c); NULL: spf_workers
					 * = 0 */
	bool draining;
	struct event *expire_ev, *checkpoint_ev, *drain_ev, *sweep_ev;
};

/* Create and bind every listening socket of c (before privileges drop). */
int listener_bind(struct server *srv, char *err, size_t errlen);
/* Wrap the bound sockets in evconnlisteners on srv->base and start timers. */
int listener_start(struct server *srv);
/* SIGTERM: stop accepting, let sessions finish within drain_timeout. */
void listener_drain(struct server *srv);
/* Called by session.c / relay.c / tarpit.c when a connection ends. */
void listener_session_done(struct server *srv, struct session *s);
void listener_splice_done(struct server *srv, struct relay *r);
void listener_tarpit_done(struct server *srv);
void listener_free(struct server *srv);
/* CLOCK_MONOTONIC in milliseconds, the clock of every timeout in greyd. */
int64_t monotonic_ms(void);

#endif
