/*
 * trustdb.h — the trust database: a Berkeley DB 5.3 transactional
 * environment in db_dir holding B-tree databases (design §4):
 *
 *   grey    triplet key "clientkey\0sender\0recipient"   -> struct grey_rec
 *   white   client key "192.0.2.0/24", "2001:db8::/64",
 *           "192.0.2.7/32" (admin)                        -> struct white_rec
 *   client  client address "192.0.2.7"                    -> struct client_rec
 *   trap    client address "192.0.2.7"                    -> struct trap_rec
 *   spamtrap recipient address "trap@example.com"         -> struct spamtrap_rec
 *   rcpt    recipient "user@example.com", wildcard "@example.com" or
 *           receiving domain "example.com" (no '@')       -> struct rcpt_rec
 *
 * greyd and greydb open the same environment at the same time
 * (DB_INIT_TXN|DB_INIT_LOCK|DB_INIT_LOG|DB_INIT_MPOOL, DB_REGISTER with
 * DB_RECOVER so recovery runs only after a crash).  Every put/delete is its
 * own transaction, committed with DB_TXN_WRITE_NOSYNC: the log record is in
 * the kernel when the call returns, so a kill -9 of greyd loses nothing that
 * was answered; the checkpoint timer flushes to disk.  Values are encoded in
 * a fixed little-endian layout that starts with a version byte.
 *
 * Return convention: 0 found/done, TRUSTDB_NOTFOUND, or -1 on error (logged).
 */
#ifndef GREYD_TRUSTDB_H
#define GREYD_TRUSTDB_H

#include <stddef.h>
#include <stdint.h>

#include "netaddr.h"

#define TRUSTDB_NOTFOUND 1
#define TRUSTDB_KEY_MAX	 (NETADDR_STRLEN + 2 * 256 + 2)

struct trustdb;

enum trustdb_table {
	TRUSTDB_GREY, TRUSTDB_WHITE, TRUSTDB_CLIENT, TRUSTDB_TRAP,
	TRUSTDB_SPAMTRAP, TRUSTDB_RCPT,
};
#define TRUSTDB_NTABLES	6

enum white_origin { WHITE_LOCAL = 1, WHITE_PEER = 2, WHITE_ADMIN = 3 };

struct grey_rec {
	int64_t first_seen, last_seen;
	int64_t pass_after;	/* a retry at or after this passes */
	int64_t expire;		/* first_seen + greylist_retry_window */
	uint32_t attempts;
};

struct white_rec {
	int64_t first_seen, last_seen;
	int64_t expire;
	uint32_t passes;	/* greylist passes that (re)made this entry */
	uint32_t messages;	/* messages delivered */
	uint8_t origin;		/* enum white_origin */
};

/* Why a client was rejected (client_rec.rejected_by[]). */
enum reject_reason {
	REJECT_RCPT,		/* unknown recipient (550 5.1.1) */
	REJECT_LIMIT,		/* a per-client limit (421 4.7.0) */
	REJECT_PROTOCOL,	/* non-SMTP command, bare newline, errors */
	REJECT_PREGREET,	/* talked before the banner ended */
	REJECT_TRAP,		/* trapped client, or RCPT to a spamtrap */
	REJECT_BACKEND,		/* the backend's own 5xx */
	REJECT_DNSBL,
	REJECT_SPF,
	REJECT_NREASONS
};

struct client_rec {
	int64_t first_seen, last_seen;
	int64_t greet_pass_until;	/* pregreet test passed: not retested before */
	uint32_t connections, greylisted, passed, delivered, rejected;
	uint32_t trapped;		/* times it was trapped */
	uint32_t rejected_by[REJECT_NREASONS];	/* sums to rejected */
};

enum trap_reason {
	TRAP_SPAMTRAP = 1,	/* sent to a spamtrap address */
	TRAP_PREGREET = 2,	/* pregreet_action = trap */
	TRAP_PROTOCOL = 3,	/* protocol_error_action = trap */
	TRAP_ADMIN = 4,		/* greydb add trap */
	TRAP_PEER = 5,		/* from a sync peer */
};

struct trap_rec {
	int64_t trapped_at, expire;
	uint8_t reason;		/* enum trap_reason */
};

/* Where a spamtrap or rcpt record came from. */
enum list_origin {
	ORIGIN_MAP = 1,		/* recipient_maps / spamtrap_maps, rebuilt on load */
	ORIGIN_ADMIN = 2,	/* greydb add / import: kept until deleted */
	ORIGIN_CALLOUT = 3,	/* rcpt only: the backend's answer, cached */
	ORIGIN_SYNC = 4,	/* from a sync peer */
};

struct spamtrap_rec {
	int64_t added;		/* for ORIGIN_MAP: the load stamp */
	uint8_t origin;		/* enum list_origin */
};

struct rcpt_rec {
	int64_t checked;	/* for ORIGIN_MAP: the load stamp */
	int64_t expire;		/* 0 = never (map, admin) */
	uint8_t valid;		/* 1 valid, 0 unknown (callout said 5xx) */
	uint8_t origin;		/* enum list_origin */
};

/* One decoded record, for iteration. */
struct trustdb_entry {
	enum trustdb_table table;
	const char *key;	/* NUL-terminated; grey keys hold two inner NULs */
	size_t keylen;		/* without the final NUL */
	union {
		struct grey_rec grey;
		struct white_rec white;
		struct client_rec client;
		struct trap_rec trap;
		struct spamtrap_rec spamtrap;
		struct rcpt_rec rcpt;
	} v;
};

/* Open (creating if needed) the environment and databases in dir. */
struct trustdb *trustdb_open(const char *dir, char *err, size_t errlen);
void trustdb_close(struct trustdb *db);

int trustdb_get_grey(struct trustdb *db, const char *key, size_t keylen,
    struct grey_rec *r);
int trustdb_put_grey(struct trustdb *db, const char *key, size_t keylen,
    const struct grey_rec *r);
int trustdb_del_grey(struct trustdb *db, const char *key, size_t keylen);

int trustdb_get_white(struct trustdb *db, const char *key, struct white_rec *r);
int trustdb_put_white(struct trustdb *db, const char *key,
    const struct white_rec *r);
int trustdb_del_white(struct trustdb *db, const char *key);
/*
 * Is this address in the white database under any prefix length?  Checks
 * only the prefix lengths that have ever been stored (kept in a small meta
 * record that every put_white maintains), so it costs 1 + a few gets.  On a
 * hit copies the matching key (if key != NULL) and record (if r != NULL).
 * Expired records do not match, nor do WHITE_LOCAL records with fewer than
 * min_passes passes (auto_whitelist_after; 0 and 1 both mean one pass).
 */
int trustdb_find_white(struct trustdb *db, const struct netaddr *a, int64_t now,
    uint32_t min_passes, char *key, size_t keylen, struct white_rec *r);

int trustdb_get_client(struct trustdb *db, const char *addr,
    struct client_rec *r);
int trustdb_put_client(struct trustdb *db, const char *addr,
    const struct client_rec *r);
/* Add the counters of add to the client's record (created if missing,
 * first_seen = now), set last_seen = now, and store it. */
int trustdb_add_client(struct trustdb *db, const char *addr, int64_t now,
    const struct client_rec *add);

/* The client's counters are merged: each counter of add is added (greylisted,
 * rejected_by[] ...), greet_pass_until = max(old, add's). */

/* Trapped client addresses ("192.0.2.7", "2001:db8::7"). */
int trustdb_get_trap(struct trustdb *db, const char *addr, struct trap_rec *r);
int trustdb_put_trap(struct trustdb *db, const char *addr,
    const struct trap_rec *r);
int trustdb_del_trap(struct trustdb *db, const char *addr);
/* Trapped now?  Like get_trap, but an expired record is TRUSTDB_NOTFOUND. */
int trustdb_find_trap(struct trustdb *db, const char *addr, int64_t now,
    struct trap_rec *r);

/* Spamtrap recipient addresses (lowercased by the caller). */
int trustdb_get_spamtrap(struct trustdb *db, const char *addr,
    struct spamtrap_rec *r);
int trustdb_put_spamtrap(struct trustdb *db, const char *addr,
    const struct spamtrap_rec *r);
int trustdb_del_spamtrap(struct trustdb *db, const char *addr);

/* Recipient records: map entries and the callout cache (rcpt.c). */
int trustdb_get_rcpt(struct trustdb *db, const char *key, struct rcpt_rec *r);
int trustdb_put_rcpt(struct trustdb *db, const char *key,
    const struct rcpt_rec *r);
int trustdb_del_rcpt(struct trustdb *db, const char *key);

/*
 * A map load writes every entry with trustdb_put_rcpt / put_spamtrap, one
 * transaction each (about 100,000 a second), stamped with the load time.
 * After a map load: delete the records of table (rcpt or spamtrap) whose
 * origin is ORIGIN_MAP and for which listed(key, arg) is false, i.e.
 * entries no longer in any map file.  (Membership, not the load time: two
 * loads in the same second must still purge.)
 * Returns the number deleted, or -1.
 */
typedef bool (*trustdb_listed_fn)(const char *key, void *arg);
int trustdb_purge_map(struct trustdb *db, enum trustdb_table table,
    trustdb_listed_fn listed, void *arg);

/* Call fn for each record of table (read committed; fn returns non-zero to stop). */
int trustdb_iterate(struct trustdb *db, enum trustdb_table table,
    int (*fn)(const struct trustdb_entry *e, void *arg), void *arg);
/*
 * Delete expired records: examine at most batch records from where the
 * previous call stopped (wrapping around, table after table).  Returns the
 * number deleted, or -1.  grey, white, trap and rcpt records expire at their
 * expire time (rcpt: only when expire != 0); client records client_ttl
 * seconds after last_seen (client_record_expiry); spamtrap records never.
 */
int trustdb_expire_step(struct trustdb *db, int64_t now, int batch,
    int client_ttl);
/* Checkpoint and remove log files no longer needed. */
int trustdb_checkpoint(struct trustdb *db);
/* Counts of records per table (for greydb stats). */
int trustdb_count(struct trustdb *db, enum trustdb_table table, long *count);

#endif
