/*
 * rcpt.h — recipient verification and spamtraps (design §3).
 *
 * Recipients are checked before greylisting, so that a dictionary attack
 * creates no grey entries and the backend never has to bounce:
 *
 *   1. recipient_maps are compiled into the trust database's rcpt table at
 *      start and on SIGHUP (origin ORIGIN_MAP, replaced on each load), and
 *      by `greydb import recipients FILE` (ORIGIN_ADMIN).  A map line is
 *      "user@domain" (that address), "@domain" (every address of domain) or
 *      "domain" (a domain we receive for, whose addresses must be listed);
 *      a second column (Postfix's "key value" tables) is ignored; '#'
 *      starts a comment.  Every listed domain, and relay_domains, are "our
 *      domains".  Keys are lowercased (lookups are case-insensitive).
 *   2. recipient_verify = backend: a callout to the backend MTA (MAIL
 *      FROM:<>, RCPT TO:<addr>, RSET over one reused connection, queries
 *      answered in order) whose answer is cached in the rcpt table:
 *      positive for rcpt_positive_expiry, negative (5xx) for
 *      rcpt_negative_expiry.  A backend that is down, slow or answers 4xx
 *      gives RCPT_TEMPFAIL (the client gets 450 4.1.1), never a guessed 550.
 *
 * Spamtraps: spamtrap_maps files (one address per line) are compiled into
 * the spamtrap table the same way; greydb adds and deletes single ones.
 */
#ifndef GREYD_RCPT_H
#define GREYD_RCPT_H

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

#include "conf.h"
#include "trustdb.h"

struct server;
struct rcpt_query;

enum rcpt_verdict {
	RCPT_VALID,	/* listed, or the backend accepted it */
	RCPT_UNKNOWN,	/* our domain (or the backend said 5xx): 550 5.1.1 */
	RCPT_UNCHECKED,	/* not ours and no callout: greylisting decides */
	RCPT_TEMPFAIL,	/* callout failed: 450 4.1.1 */
	RCPT_CALLOUT,	/* rcpt_lookup only: ask the backend (rcpt_callout) */
};

/*
 * Compile recipient_maps and spamtrap_maps into db (each table in one bulk
 * transaction stamped now; map records no longer listed are purged).
 * Returns 0, or -1 with "file:line: reason" in err (db is then unchanged).
 */
int rcpt_load_maps(const struct greyd_conf *c, struct trustdb *db,
    int64_t now, char *err, size_t errlen);
/* Parse recipient_maps and spamtrap_maps without writing (greyd -t);
 * 0, or -1 with "file:line: reason" in err. */
int rcpt_check_maps(const struct greyd_conf *c, char *err, size_t errlen);
/*
 * Compile one file into table (TRUSTDB_RCPT or TRUSTDB_SPAMTRAP) with the
 * given origin and stamp; *count gets the number of distinct entries the
 * file lists (the domains derived from its addresses are not counted).
 * greydb import uses it with ORIGIN_ADMIN.
 */
int rcpt_import_file(struct trustdb *db, enum trustdb_table table,
    const char *path, enum list_origin origin, int64_t stamp, long *count,
    char *err, size_t errlen);

/* Lowercase addr into out; 0, or -1 if it does not fit. */
int rcpt_key(const char *addr, char *out, size_t len);
/* Is rcpt (any case) a spamtrap? */
bool rcpt_is_spamtrap(struct trustdb *db, const char *rcpt);
/*
 * What is known about rcpt without the network: the maps, our domains and
 * the callout cache.  why gets a short reason for the log ("map",
 * "map @domain", "cache", "not our domain", ...).
 */
enum rcpt_verdict rcpt_lookup(const struct greyd_conf *c, struct trustdb *db,
    const char *rcpt, int64_t now, const char **why);

/*
 * Ask the backend about rcpt (after rcpt_lookup said RCPT_CALLOUT); fn is
 * called once from the event loop with RCPT_VALID, RCPT_UNKNOWN or
 * RCPT_TEMPFAIL, and the answer is cached.  Returns NULL (fn never called)
 * if the query cannot even be queued: treat that as RCPT_TEMPFAIL.
 */
typedef void (*rcpt_done_fn)(void *arg, enum rcpt_verdict v,
    const char *why);
struct rcpt_query *rcpt_callout(struct server *srv, const char *rcpt,
    rcpt_done_fn fn, void *arg);
/* The asker went away: fn will not be called. */
void rcpt_cancel(struct rcpt_query *q);
/* Close the callout connection and drop every query (shutdown). */
void rcpt_callout_free(struct server *srv);

const char *rcpt_verdict_name(enum rcpt_verdict v);

#endif
