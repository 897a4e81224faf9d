/*
 * greylist.h — the greylist policy, pure (no I/O): the triplet key, the
 * decision for a triplet given its stored record and the time, and how the
 * records change.  session.c and greydb's "explain" both call it, so what
 * greydb explains is exactly what greyd does.
 */
#ifndef GREYD_GREYLIST_H
#define GREYD_GREYLIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "trustdb.h"

/* Longest address a key holds: an RFC 5321 path. */
#define SMTP_PATH_MAX_KEY 256

enum greylist_verdict {
	GREYLIST_NEW,		/* unknown (or expired) triplet: 451, entry created */
	GREYLIST_EARLY,		/* retried before greylist_delay: 451 */
	GREYLIST_PASS,		/* retried after the delay, within the window */
	GREYLIST_EXEMPT,	/* postmaster@ and similar: never greylisted */
};

/*
 * Decide for a triplet.  old is the stored record or NULL.  Fills *upd with
 * the record to store (NEW/EARLY) and *wait with the seconds left (NEW/EARLY).
 */
enum greylist_verdict greylist_decide(const struct greyd_conf *c,
    const struct grey_rec *old, int64_t now, struct grey_rec *upd, int *wait);
/*
 * The same with a delay of at least min_delay seconds since the first
 * attempt (dnsbl_greylist_delay for a DNSBL-listed client): a triplet
 * created with the ordinary delay is held back until then too.
 */
enum greylist_verdict greylist_decide_min(const struct greyd_conf *c,
    const struct grey_rec *old, int64_t now, int min_delay,
    struct grey_rec *upd, int *wait);

/* The white record after a pass (old may be NULL) or a delivery. */
void greylist_white_pass(const struct greyd_conf *c, const struct white_rec *old,
    int64_t now, struct white_rec *upd);
void greylist_white_refresh(const struct greyd_conf *c, struct white_rec *w,
    int64_t now);

/* Client key for greylisting: the address masked to the configured prefix. */
void greylist_client_key(const struct greyd_conf *c, const struct netaddr *a,
    char *buf, size_t len);
/*
 * Normalised sender for the key: lowercased; BATV tags (prvs=, msprvs1=,
 * btv1==) removed; +extension removed; numeric VERP parts of the local part
 * replaced by '#'.
 */
void greylist_normalise_sender(const char *sender, char *out, size_t len);
/* "clientkey\0sender\0rcpt" with normalised sender and lowercased rcpt.
 * Returns the key length (inner NULs included, no final NUL), 0 if too long. */
size_t greylist_triplet_key(char *buf, size_t len, const char *clientkey,
    const char *sender, const char *rcpt);
/* postmaster (RFC 5321 4.5.1) when greylist_exempt_postmaster. */
bool greylist_exempt(const struct greyd_conf *c, const char *rcpt);

const char *greylist_verdict_name(enum greylist_verdict v);

#endif
