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
 *   2. recipient_verify = backend: a callout to the backend MTA
 *      (callout.h) whose answer is cached in the rcpt table; rcpt_lookup
 *      reads that cache and says when a callout is needed.
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

#define RCPT_KEY_LEN	255	/* a recipient key, NUL included (RFC 5321
				 * path minus its brackets, plus the NUL) */


enum rcpt_verdict {
	RCPT_VALID,	/* listed, or the backend accepted it */
	RCPT_UNKNOWN,	/* our domain (or the backend said 5xx): 550 5.1.1 */
	RCPT_UNCHECKED,	/* not ours and no callout: greylisting decides */
	RCPT_TEMPFAIL,	/* callout failed: 450 4.1.1 */
	RCPT_CALLOUT,	/* rcpt_lookup only: ask the backend (callout.h) */
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

const char *rcpt_verdict_name(enum rcpt_verdict v);

#endif
