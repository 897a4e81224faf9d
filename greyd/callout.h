/*
 * callout.h — recipient verification by asking the backend (design §3):
 * for recipient_verify = backend, MAIL FROM:<>, RCPT TO:<addr>, RSET over
 * one reused connection, queries answered in order, the answer cached in
 * the trust database's rcpt table (positive for rcpt_positive_expiry,
 * negative, a 5xx, for rcpt_negative_expiry), where rcpt_lookup finds it
 * next time.  A backend that is down, slow or answers 4xx gives
 * RCPT_TEMPFAIL (the client gets 450 4.1.1), never a guessed 550.
 */
#ifndef GREYD_CALLOUT_H
#define GREYD_CALLOUT_H

#include <event2/event.h>

#include "rcpt.h"
#include "trustdb.h"

struct callout;
struct callout_query;

typedef void (*callout_done_fn)(void *arg, enum rcpt_verdict v,
    const char *why);

/* The callout of one daemon, on base, caching its answers in db.  The
 * backend and the expiries are read from the current configuration. */
struct callout *callout_new(struct event_base *base, struct trustdb *db);
/* Close the connection (QUIT) and drop every query; NULL is ignored. */
void callout_free(struct callout *co);
/*
 * Ask the backend about rcpt (after rcpt_lookup said RCPT_CALLOUT); fn is
 * called once from the event loop with RCPT_VALID, RCPT_UNKNOWN or
 * RCPT_TEMPFAIL, and the answer is cached.  Returns NULL (fn never called)
 * if the query cannot even be queued: treat that as RCPT_TEMPFAIL.
 */
struct callout_query *callout_query(struct callout *co, const char *rcpt,
    callout_done_fn fn, void *arg);
/* The asker went away: fn will not be called. */
void callout_cancel(struct callout_query *q);

#endif
