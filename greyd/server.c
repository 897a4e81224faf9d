/*
 * server.c — the connection registry, its counters, the drain and the
 * server's own timers (see server.h).
 *
 * Counters are kept per ops table in a small array (greyd has three kinds
 * of connection), so server_count is O(kinds) and add/remove O(1).
 */
#include <stdlib.h>

#include "log.h"
#include "server.h"

#define SERVER_KINDS		8	/* distinct ops tables */
#define SERVER_TIMERS		8
#define SERVER_LAST_WORD	5	/* seconds for the shutdown replies */

struct server_timer {
	struct event *ev;
	void (*fn)(void *arg);
	void *arg;
};

struct server {
	struct event_base *base;
	TAILQ_HEAD(, conn) conns;
	struct {
		const struct conn_ops *ops;
		unsigned live;
	} kinds[SERVER_KINDS];
	int nkinds;
	bool draining;
	struct event *drain_ev;
	struct server_timer timers[SERVER_TIMERS];
	int ntimers;
};

struct server *
server_new(struct event_base *base)
{
	struct server *srv = calloc(1, sizeof(*srv));

	if (srv == NULL)
		return NULL;
	srv->base = base;
	TAILQ_INIT(&srv->conns);
	return srv;
}

struct event_base *
server_base(const struct server *srv)
{
	return srv->base;
}

static unsigned *
kind_live(struct server *srv, const struct conn_ops *ops)
{
	int i;

	for (i = 0; i < srv->nkinds; i++)
		if (srv->kinds[i].ops == ops)
			return &srv->kinds[i].live;
	if (srv->nkinds == SERVER_KINDS)
		abort();	/* a programming error: more kinds than slots */
	srv->kinds[srv->nkinds].ops = ops;
	return &srv->kinds[srv->nkinds++].live;
}

void
server_add(struct server *srv, struct conn *c, const struct conn_ops *ops,
    void *obj)
{
	c->ops = ops;
	c->obj = obj;
	TAILQ_INSERT_TAIL(&srv->conns, c, entry);
	(*kind_live(srv, ops))++;
}

static void
server_maybe_exit(struct server *srv)
{
	if (srv->draining && TAILQ_EMPTY(&srv->conns))
		event_base_loopexit(srv->base, NULL);
}

void
server_remove(struct server *srv, struct conn *c)
{
	TAILQ_REMOVE(&srv->conns, c, entry);
	(*kind_live(srv, c->ops))--;
	server_maybe_exit(srv);
}

unsigned
server_count(const struct server *srv, const struct conn_ops *ops)
{
	unsigned n = 0;
	int i;

	for (i = 0; i < srv->nkinds; i++)
		if (srv->kinds[i].ops == ops ||
		    (ops == NULL && srv->kinds[i].ops->counted))
			n += srv->kinds[i].live;
	return n;
}

bool
server_draining(const struct server *srv)
{
	return srv->draining;
}

/* "3 session, 1 splice, 0 tarpit" for the drain log lines. */
static void
server_census(const struct server *srv, char *buf, size_t len)
{
	size_t off = 0;
	int i, n;

	buf[0] = '\0';
	for (i = 0; i < srv->nkinds && off < len; i++) {
		n = snprintf(buf + off, len - off, "%s%u %s", i > 0 ? ", " : "",
		    srv->kinds[i].live, srv->kinds[i].ops->name);
		if (n < 0)
			break;
		off += (size_t)n;
	}
}

/* Free (or shut down) every live connection c for which pick(c) holds.
 * An ops function ends its own connection only, so the next one is safe
 * to keep across the call. */
static void
server_end_each(struct server *srv, bool (*pick)(const struct conn *),
    bool shutdown)
{
	struct conn *c, *next;

	for (c = TAILQ_FIRST(&srv->conns); c != NULL; c = next) {
		next = TAILQ_NEXT(c, entry);
		if (!pick(c))
			continue;
		if (shutdown)
			c->ops->shutdown(c->obj);
		else
			c->ops->free(c->obj);
	}
}

static bool
pick_at_drain(const struct conn *c)
{
	return c->ops->close_at_drain;
}

static bool
pick_all(const struct conn *c)
{
	(void)c;
	return true;
}

static void
server_drain_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;
	struct timeval tv = { SERVER_LAST_WORD, 0 };
	char census[160];

	(void)fd;
	(void)what;
	server_census(srv, census, sizeof(census));
	log_info("drain timeout: closing %s", census);
	server_end_each(srv, pick_all, true);
	/* Connections flushing their last reply get a few more seconds. */
	event_base_loopexit(srv->base, &tv);
}

void
server_drain(struct server *srv, int timeout)
{
	struct timeval tv = { timeout, 0 };
	char census[160];

	if (srv->draining)
		return;
	srv->draining = true;
	server_census(srv, census, sizeof(census));
	log_info("draining: %s", census[0] != '\0' ? census :
	    "no connection");
	server_end_each(srv, pick_at_drain, false);
	srv->drain_ev = evtimer_new(srv->base, server_drain_timeout_cb, srv);
	if (srv->drain_ev != NULL)
		evtimer_add(srv->drain_ev, &tv);
	server_maybe_exit(srv);
}

static void
server_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server_timer *t = arg;

	(void)fd;
	(void)what;
	t->fn(t->arg);
}

int
server_every(struct server *srv, int seconds, void (*fn)(void *arg),
    void *arg)
{
	struct timeval tv = { seconds > 0 ? seconds : 1, 0 };
	struct server_timer *t;

	if (srv->ntimers == SERVER_TIMERS)
		return -1;
	t = &srv->timers[srv->ntimers];
	t->fn = fn;
	t->arg = arg;
	t->ev = event_new(srv->base, -1, EV_PERSIST, server_timer_cb, t);
	if (t->ev == NULL || event_add(t->ev, &tv) != 0) {
		if (t->ev != NULL)
			event_free(t->ev);
		return -1;
	}
	srv->ntimers++;
	return 0;
}

void
server_free(struct server *srv)
{
	int i;

	if (srv == NULL)
		return;
	server_end_each(srv, pick_all, false);
	for (i = 0; i < srv->ntimers; i++)
		event_free(srv->timers[i].ev);
	if (srv->drain_ev != NULL)
		event_free(srv->drain_ev);
	free(srv);
}
