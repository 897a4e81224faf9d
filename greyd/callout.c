/*
 * callout.c — the recipient callout to the backend (see callout.h).
 *
 * One backend connection, opened on demand through relay.c (identity
 * header, EHLO greyd's hostname) and closed after callout_idle_timeout
 * without a query.  Queries wait in a FIFO; the one at its head is probed
 * with MAIL FROM:<> (once per transaction), RCPT TO:<addr>, RSET, and its
 * answer serves every queued query for the same address.  Postfix counts
 * each rejected RCPT as an error and each RSET as a junk command
 * (smtpd_soft_error_limit 10, smtpd_junk_command_limit 100): the connection
 * is replaced after CALLOUT_CONN_ERRORS non-2xx answers or
 * CALLOUT_CONN_PROBES probes so that the backend never starts to slow the
 * probes down.  A connection that fails while it is in use fails every
 * queued query (tempfail), but a reused connection gets one second chance
 * first (the backend may have closed it while it was idle).  Answers reach
 * the askers through a zero-timeout event, never from inside rcpt_callout
 * or relay.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/event.h>

#include "callout.h"
#include "clock.h"
#include "log.h"
#include "relay.h"

#define CALLOUT_QUEUE_MAX	1000	/* queries waiting for the backend */
#define CALLOUT_CONN_PROBES	50	/* probes per connection (RSETs < 100) */
#define CALLOUT_CONN_ERRORS	5	/* non-2xx answers per connection (< 10) */
#define CALLOUT_REPLY_LOG	200	/* octets of a backend reply in the log */

enum callout_state {
	CO_CLOSED,	/* no connection */
	CO_OPENING,	/* connect, identity, banner, EHLO */
	CO_IDLE,	/* connected, outside a transaction */
	CO_MAIL,	/* MAIL FROM:<> sent */
	CO_READY,	/* in a transaction, no RCPT outstanding */
	CO_RCPT,	/* RCPT TO sent for co->probe */
	CO_RSET,	/* RSET sent */
};

struct callout_query {
	TAILQ_ENTRY(callout_query) entry;	/* co->queue, then co->done */
	struct callout *co;
	bool answered;			/* on co->done */
	bool cancelled;
	callout_done_fn fn;
	void *arg;
	enum rcpt_verdict verdict;
	char why[48];
	char key[RCPT_KEY_LEN];
	char addr[RCPT_KEY_LEN];	/* as the client wrote it */
};

TAILQ_HEAD(query_list, callout_query);

struct callout {
	struct event_base *base;
	struct trustdb *db;		/* the cache: the rcpt table */
	struct relay *relay;
	enum callout_state state;
	struct query_list queue;	/* waiting, oldest first */
	struct query_list done;		/* answered, fn not called yet */
	size_t nqueue;
	char probe[RCPT_KEY_LEN];	/* key of the RCPT in flight */
	char probe_addr[RCPT_KEY_LEN];
	unsigned conn_probes;		/* answers on this connection */
	unsigned conn_errors;		/* of them not 2xx */
	struct event *idle_ev;		/* closes an idle connection */
	struct event *deliver_ev;	/* calls fn of the answered queries */
};

static void callout_kick(struct callout *co);

/* Printable first line of a backend reply, for the log. */
static void
reply_text(const char *reply, size_t len, char *out, size_t outlen)
{
	size_t i, n = 0;

	for (i = 0; reply != NULL && i < len && reply[i] != '\r' &&
	    reply[i] != '\n' && n + 1 < outlen; i++)
		out[n++] = reply[i] == '"' ? '\'' :
		    (unsigned char)reply[i] < 0x20 || reply[i] == 0x7f ? '?' :
		    reply[i];
	out[n] = '\0';
}

static void
query_answer(struct callout *co, struct callout_query *q, enum rcpt_verdict v,
    const char *why)
{
	TAILQ_REMOVE(&co->queue, q, entry);
	co->nqueue--;
	q->answered = true;
	q->verdict = v;
	strlcpy(q->why, why, sizeof(q->why));
	TAILQ_INSERT_TAIL(&co->done, q, entry);
	event_active(co->deliver_ev, EV_TIMEOUT, 0);
}

/* Every waiting query: the backend is unreachable (not cached). */
static void
callout_fail_all(struct callout *co, const char *why)
{
	struct callout_query *q;

	while ((q = TAILQ_FIRST(&co->queue)) != NULL) {
		log_info("CALLOUT <%s> reply=none tempfail (%s)", q->addr, why);
		query_answer(co, q, RCPT_TEMPFAIL, why);
	}
}

static void
callout_close(struct callout *co, bool quit)
{
	if (co->relay != NULL)
		relay_free(co->relay, quit);
	co->relay = NULL;
	co->state = CO_CLOSED;
	evtimer_del(co->idle_ev);
}

/* Cache a 2xx or 5xx answer, unless the key is listed by now. */
static void
callout_cache(struct callout *co, enum rcpt_verdict v)
{
	const struct greyd_conf *c = conf_current();
	int64_t now = clock_now();
	int expiry = v == RCPT_VALID ? c->rcpt_positive_expiry :
	    c->rcpt_negative_expiry;
	struct rcpt_rec r;
	int rc;

	if (v == RCPT_TEMPFAIL || expiry <= 0)
		return;
	rc = trustdb_get_rcpt(co->db, co->probe, &r);
	if (rc == -1 || (rc == 0 && r.origin != ORIGIN_CALLOUT))
		return;
	r = (struct rcpt_rec){ .checked = now, .expire = now + expiry,
	    .valid = v == RCPT_VALID, .origin = ORIGIN_CALLOUT };
	(void)trustdb_put_rcpt(co->db, co->probe, &r);
}

/* The backend answered RCPT TO for co->probe. */
static void
callout_answer(struct callout *co, int code, const char *reply, size_t len)
{
	struct callout_query *q, *next;
	enum rcpt_verdict v;
	char text[CALLOUT_REPLY_LOG];
	const char *why;

	v = code >= 200 && code < 300 ? RCPT_VALID :
	    code >= 500 && code < 600 ? RCPT_UNKNOWN : RCPT_TEMPFAIL;
	why = v == RCPT_TEMPFAIL ? "callout: backend tempfail" : "callout";
	reply_text(reply, len, text, sizeof(text));
	log_info("CALLOUT <%s> reply=\"%s\" %s", co->probe_addr, text,
	    rcpt_verdict_name(v));
	callout_cache(co, v);
	TAILQ_FOREACH_SAFE(q, &co->queue, entry, next)
		if (strcmp(q->key, co->probe) == 0)
			query_answer(co, q, v, why);
	co->conn_probes++;
	co->conn_errors += v != RCPT_VALID;
}

/* The connection failed (or the backend refused the handshake). */
static void
callout_lost(struct callout *co)
{
	bool busy = co->state != CO_IDLE && co->state != CO_READY;
	bool reused = co->conn_probes > 0;

	callout_close(co, false);
	if (!busy || TAILQ_EMPTY(&co->queue))
		return;
	if (reused) {
		/* Perhaps closed by the backend while idle: once more. */
		callout_kick(co);
		return;
	}
	callout_fail_all(co, "backend unavailable");
}

static void
callout_reply(void *arg, int code, const char *reply, size_t len)
{
	struct callout *co = arg;

	if (code < 0 || (co->state == CO_OPENING && code != 250)) {
		callout_lost(co);
		return;
	}
	switch (co->state) {
	case CO_OPENING:
		co->state = CO_IDLE;
		break;
	case CO_MAIL:
		if (code != 250) {
			callout_close(co, true);
			callout_fail_all(co, "backend refused MAIL FROM:<>");
			return;
		}
		co->state = CO_READY;
		break;
	case CO_RCPT:
		callout_answer(co, code, reply, len);
		if (code == 421) {
			callout_close(co, false);
			break;
		}
		relay_command(co->relay, "RSET");
		co->state = CO_RSET;
		return;
	case CO_RSET:
		co->state = CO_IDLE;
		if (code != 250 || co->conn_probes >= CALLOUT_CONN_PROBES ||
		    co->conn_errors >= CALLOUT_CONN_ERRORS)
			callout_close(co, code == 250);
		break;
	default:
		callout_lost(co);
		return;
	}
	callout_kick(co);
}

static void
callout_connect(struct callout *co)
{
	const struct greyd_conf *c = conf_current();
	const struct sockaddr *b = (const struct sockaddr *)&c->backend.ss;

	/* The identity header names greyd itself: the backend address is
	 * the one greyd knows before connecting (the backend only logs it). */
	co->relay = relay_open(co->base, c, b, b, c->hostname, true,
	    callout_reply, co);
	co->conn_probes = co->conn_errors = 0;
	if (co->relay == NULL) {
		callout_fail_all(co, "backend unavailable");
		return;
	}
	co->state = CO_OPENING;
}

/* Send what the state and the queue call for next. */
static void
callout_kick(struct callout *co)
{
	struct timeval idle = { conf_current()->callout_idle_timeout, 0 };
	struct callout_query *q = TAILQ_FIRST(&co->queue);
	char line[RCPT_KEY_LEN + 16];

	if (q == NULL) {
		if (co->state == CO_IDLE || co->state == CO_READY)
			evtimer_add(co->idle_ev, &idle);
		return;
	}
	evtimer_del(co->idle_ev);
	switch (co->state) {
	case CO_CLOSED:
		callout_connect(co);
		break;
	case CO_IDLE:
		relay_command(co->relay, "MAIL FROM:<>");
		co->state = CO_MAIL;
		break;
	case CO_READY:
		strlcpy(co->probe, q->key, sizeof(co->probe));
		strlcpy(co->probe_addr, q->addr, sizeof(co->probe_addr));
		snprintf(line, sizeof(line), "RCPT TO:<%s>", q->addr);
		relay_command(co->relay, line);
		co->state = CO_RCPT;
		break;
	default:
		break;		/* a reply is awaited */
	}
}

static void
callout_idle_cb(evutil_socket_t fd, short what, void *arg)
{
	struct callout *co = arg;

	if (TAILQ_EMPTY(&co->queue) &&
	    (co->state == CO_IDLE || co->state == CO_READY))
		callout_close(co, true);
}

/* Call fn of each answered query, from the event loop. */
static void
callout_deliver_cb(evutil_socket_t fd, short what, void *arg)
{
	struct callout *co = arg;
	struct callout_query *q;
	callout_done_fn fn;
	void *fn_arg;
	enum rcpt_verdict v;
	char why[sizeof(q->why)];

	while ((q = TAILQ_FIRST(&co->done)) != NULL) {
		TAILQ_REMOVE(&co->done, q, entry);
		fn = q->cancelled ? NULL : q->fn;
		fn_arg = q->arg;
		v = q->verdict;
		strlcpy(why, q->why, sizeof(why));
		free(q);
		if (fn != NULL)
			fn(fn_arg, v, why);
	}
}

struct callout *
callout_new(struct event_base *base, struct trustdb *db)
{
	struct callout *co;

	if ((co = calloc(1, sizeof(*co))) == NULL)
		return NULL;
	co->base = base;
	co->db = db;
	TAILQ_INIT(&co->queue);
	TAILQ_INIT(&co->done);
	co->idle_ev = evtimer_new(base, callout_idle_cb, co);
	co->deliver_ev = event_new(base, -1, 0, callout_deliver_cb, co);
	if (co->idle_ev == NULL || co->deliver_ev == NULL) {
		callout_free(co);
		return NULL;
	}
	return co;
}

/* Nothing that could break the RCPT line (the SMTP parser allows none). */
static bool
probe_addr_ok(const char *addr)
{
	for (; *addr != '\0'; addr++)
		if ((unsigned char)*addr < 0x20 || *addr == 0x7f ||
		    *addr == '<' || *addr == '>')
			return false;
	return true;
}

struct callout_query *
callout_query(struct callout *co, const char *rcpt, callout_done_fn fn,
    void *arg)
{
	struct callout_query *q;

	if (co->nqueue >= CALLOUT_QUEUE_MAX ||
	    !probe_addr_ok(rcpt) || (q = calloc(1, sizeof(*q))) == NULL)
		return NULL;
	if (rcpt_key(rcpt, q->key, sizeof(q->key)) == -1) {
		free(q);
		return NULL;
	}
	strlcpy(q->addr, rcpt, sizeof(q->addr));
	q->co = co;
	q->fn = fn;
	q->arg = arg;
	TAILQ_INSERT_TAIL(&co->queue, q, entry);
	co->nqueue++;
	callout_kick(co);
	return q;
}

void
callout_cancel(struct callout_query *q)
{
	struct callout *co;

	if (q == NULL)
		return;
	if (q->answered) {
		q->cancelled = true;
		return;
	}
	/* Still waiting: a probe in flight keeps its own copy of the key. */
	co = q->co;
	TAILQ_REMOVE(&co->queue, q, entry);
	co->nqueue--;
	free(q);
}

static void
query_list_free(struct query_list *l)
{
	struct callout_query *q;

	while ((q = TAILQ_FIRST(l)) != NULL) {
		TAILQ_REMOVE(l, q, entry);
		free(q);
	}
}

void
callout_free(struct callout *co)
{
	if (co == NULL)
		return;
	callout_close(co, true);
	query_list_free(&co->queue);
	query_list_free(&co->done);
	if (co->idle_ev != NULL)
		event_free(co->idle_ev);
	if (co->deliver_ev != NULL)
		event_free(co->deliver_ev);
	free(co);
}
