/*
 * greyd_limits.h — (limits.c; not "limits.h", which would shadow <limits.h>) per-client connection limits (design §3), the receiving side
 * of the sending guidelines big mailbox providers publish.
 *
 * One in-memory table keyed by client address (never the trust database):
 * for each address the number of live sessions and a token bucket for the
 * connection rate (client_connection_rate new sessions per hour, refilled
 * continuously).  Lookups, inserts and deletes are O(1) (a hash table keyed
 * with a per-process random SipHash key, so clients cannot choose colliding
 * addresses).  An entry is freed when the address has no live session and
 * its bucket is full again (limits_sweep, called from a timer, examines a
 * bounded number of entries per call).
 *
 * Per-session limits (session_message_limit, message_recipient_limit) are
 * plain counters in the session; limits_scaled() gives the effective value.
 */
#ifndef GREYD_GREYD_LIMITS_H
#define GREYD_GREYD_LIMITS_H

#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "netaddr.h"

struct limits;

enum limit_verdict {
	LIMIT_OK,
	LIMIT_MAX_SESSIONS,	/* max_sessions live sessions in all */
	LIMIT_CONCURRENCY,	/* client_connection_limit for this address */
	LIMIT_RATE,		/* client_connection_rate for this address */
};

struct limits *limits_new(void);
void limits_free(struct limits *l);

/*
 * A client connects.  total: live sessions of all clients (not counting
 * this one); mult: 1, or trusted_limit_multiplier for a trusted client
 * (applies to the per-client limits, not to max_sessions); now_ms: a
 * monotonic clock in milliseconds.  LIMIT_OK counts the session (the
 * caller must call limits_disconnect when it ends); any other verdict
 * counts nothing (a refused connection costs no token).
 */
enum limit_verdict limits_connect(struct limits *l, const struct greyd_conf *c,
    const struct netaddr *a, unsigned total, int mult, int64_t now_ms);
/* A session counted by limits_connect ended. */
void limits_disconnect(struct limits *l, const struct netaddr *a);
/* Free idle entries, examining at most batch; returns how many were freed. */
size_t limits_sweep(struct limits *l, const struct greyd_conf *c,
    int64_t now_ms, size_t batch);
/* Entries in the table (for logs and tests). */
size_t limits_count(const struct limits *l);
/* Live sessions counted for a (0 if unknown). */
unsigned limits_sessions(const struct limits *l, const struct netaddr *a);
/* limit * mult, saturating at INT_MAX. */
int limits_scaled(int limit, int mult);
/* The 421 reply text (without CRLF) for a verdict other than LIMIT_OK. */
void limits_reply(enum limit_verdict v, const char *addrstr, char *buf,
    size_t len);
/* "concurrency", "rate", "max_sessions" (for logs). */
const char *limits_name(enum limit_verdict v);

#endif
