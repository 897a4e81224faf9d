/*
 * trust.h — the trust layer: the one place where the records that decide
 * who is trusted change (design §4).
 *
 * Every write of a grey, white, trap or spamtrap record passes through
 * trust_put / trust_del: greyd's own decisions (trust_greylist,
 * trust_delivered, trust_white_seen, trust_trap) and greydb's edits
 * alike.  That gate is where peer sync will write its change log.  A
 * client's reputation counters (local, never synced) are merged in one
 * database transaction by trust_client.  Reads go to
 * the trust database directly (trust_db).  Recipient maps and the
 * callout cache (the rcpt table, and spamtraps compiled from
 * spamtrap_maps) are local by nature and stay with rcpt.c and callout.c.
 *
 * The trust layer also keeps the database healthy while greyd runs:
 * trust_maintain starts the expiry and checkpoint timers.
 *
 * Return convention (as trustdb.h): 0 done, TRUSTDB_NOTFOUND, -1 error
 * (logged by trustdb.c).
 */
#ifndef GREYD_TRUST_H
#define GREYD_TRUST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "greylist.h"
#include "netaddr.h"
#include "trustdb.h"

struct server;
struct trust;

/* The trust layer over db (which it does not own). */
struct trust *trust_new(struct trustdb *db);
void trust_free(struct trust *t);
struct trustdb *trust_db(const struct trust *t);
/* Expiry every db_expire_interval (db_expire_batch records, client
 * records after client_record_expiry) and a checkpoint every
 * db_checkpoint_interval, on srv's timers; c gives the intervals. */
int trust_maintain(struct trust *t, struct server *srv,
    const struct greyd_conf *c);

/*
 * The gate.  key is a C string of keylen octets, or for TRUSTDB_GREY a
 * triplet key of keylen octets (greylist_triplet_key); rec the table's
 * record type (struct grey_rec, white_rec, trap_rec, spamtrap_rec,
 * client_rec, rcpt_rec).
 */
int trust_put(struct trust *t, enum trustdb_table table, const char *key,
    size_t keylen, const void *rec);
int trust_del(struct trust *t, enum trustdb_table table, const char *key,
    size_t keylen);

/* The greylist decision for one triplet, as stored. */
struct trust_grey {
	enum greylist_verdict verdict;	/* NEW, EARLY or PASS */
	int wait;			/* NEW, EARLY: seconds left */
	bool had;			/* a grey record was stored */
	struct grey_rec old;		/* it, if had */
	struct grey_rec rec;		/* NEW, EARLY: what is stored now */
	struct white_rec white;		/* PASS: the client key's entry now */
};

/*
 * Decide for the triplet tkey (klen octets) of client key ckey, with a
 * delay of at least min_delay (greylist.c's greylist_decide_min), and
 * store the outcome: NEW/EARLY update the grey record; PASS whitelists
 * ckey (greylist_white_pass), then forgets the triplet (a crash between
 * the two leaves a harmless grey record, never a lost pass).  0, or -1 if
 * the grey record could not be read (nothing decided).
 */
int trust_greylist(struct trust *t, const struct greyd_conf *c,
    const char *ckey, const char *tkey, size_t klen, int min_delay,
    int64_t now, struct trust_grey *g);
/* A message was delivered for the client at a: refresh the white entry
 * that covers it (greylist_white_refresh) and count the message. */
void trust_delivered(struct trust *t, const struct greyd_conf *c,
    const struct netaddr *a, int64_t now);
/* The fast path matched white entry key (w): refresh it, at most once
 * per white_refresh_interval so a busy sender costs no write per
 * connection. */
void trust_white_seen(struct trust *t, const struct greyd_conf *c,
    const char *key, const struct white_rec *w, int64_t now);
/* Trap the client address addr for trap_expiry. */
int trust_trap(struct trust *t, const struct greyd_conf *c, const char *addr,
    enum trap_reason why, int64_t now);
/* Add add's counters to the client record of addr (trustdb_add_client). */
int trust_client(struct trust *t, const char *addr, int64_t now,
    const struct client_rec *add);

#endif
