/*
 * server.h — the registry of live connections, and the drain.
 *
 * The server knows no connection types.  Each connection (an SMTP session,
 * a fast-path splice, a tarpitted client) embeds a struct conn and
 * registers it with an ops table that names its kind and says how to end
 * it; the server counts the live connections of each kind, ends them on
 * SIGTERM and at teardown, and leaves the event loop once draining is over.
 *
 * Draining (server_drain): connections of a kind with close_at_drain are
 * freed at once (a tarpitted client is owed nothing); the others may finish
 * on their own within the timeout; then each gets its shutdown() (say a
 * last word, close soon) and the loop ends a few seconds later at the
 * latest.  The loop ends as soon as no connection is left.
 *
 * Timers that live as long as the server (database maintenance, sweeps)
 * are made with server_every() and freed by server_free().
 */
#ifndef GREYD_SERVER_H
#define GREYD_SERVER_H

#include <stdbool.h>
#include <sys/queue.h>

#include <event2/event.h>

/*
 * Event priorities (event_base_priority_init in main.c): everything runs at
 * libevent's default, the middle one, except the tarpit's ticks and reads,
 * which run last and at most EV_TARPIT_BATCH per loop turn: 20,000
 * stuttering connections then never hold back an accept or a session.
 */
#define EV_PRIORITIES		3
#define EV_PRIO_TARPIT		2
#define EV_TARPIT_BATCH		64

struct server;

struct conn_ops {
	const char *name;		/* "session", "splice", "tarpit" (logs) */
	bool counted;			/* counts towards max_sessions */
	bool close_at_drain;		/* freed as soon as draining starts */
	/* The drain timeout has come: a last reply, then close (the
	 * connection calls server_remove when it is gone). */
	void (*shutdown)(void *obj);
	/* Free now, without a word (teardown); calls server_remove. */
	void (*free)(void *obj);
};

/* Embedded in each connection object; owned by the registry. */
struct conn {
	TAILQ_ENTRY(conn) entry;
	const struct conn_ops *ops;
	void *obj;
};

struct server *server_new(struct event_base *base);
/* Free every live connection (ops->free), every timer, the server. */
void server_free(struct server *srv);
struct event_base *server_base(const struct server *srv);

/* Register a new connection obj (c is embedded in it). */
void server_add(struct server *srv, struct conn *c,
    const struct conn_ops *ops, void *obj);
/* The connection is gone; ends the loop if it was the last one while
 * draining. */
void server_remove(struct server *srv, struct conn *c);
/* Live connections of one kind; ops NULL: of every counted kind. */
unsigned server_count(const struct server *srv, const struct conn_ops *ops);

/* SIGTERM: end connections as described above, within timeout seconds. */
void server_drain(struct server *srv, int timeout);
bool server_draining(const struct server *srv);

/* Call fn(arg) every seconds (at least 1) until server_free. */
int server_every(struct server *srv, int seconds, void (*fn)(void *arg),
    void *arg);

#endif
