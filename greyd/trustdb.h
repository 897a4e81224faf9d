/*
 * trustdb.h — the trust database: a Berkeley DB 5.3 transactional
 * environment in db_dir holding one B-tree database per table (design §4):
 *
 *   grey.db     triplet key "clientkey\0sender\0recipient" -> struct grey_rec
 *   white.db    client key "192.0.2.0/24", "2001:db8::/64",
 *               "192.0.2.7/32" (admin)                       -> struct white_rec
 *   client.db   client address "192.0.2.7"                   -> struct client_rec
 *   trap.db     client address "192.0.2.7"                   -> struct trap_rec
 *   spamtrap.db recipient address "trap@example.com"         -> struct spamtrap_rec
 *   rcpt.db     recipient "user@example.com", wildcard "@example.com" or
 *               receiving domain "example.com" (no '@')      -> struct rcpt_rec
 *
 * The record structs and their encoding are in record.h: a version byte,
 * then the fields little-endian; client records of version 1 (without
 * greet_pass_until, trapped and rejected_by) are still read, and the next
 * update rewrites them as version 2.  A stored value of no known version
 * or size is treated as not found (with a warning).
 *
 * greyd and greydb open the same environment at the same time
 * (DB_INIT_TXN|DB_INIT_LOCK|DB_INIT_LOG|DB_INIT_MPOOL, DB_REGISTER with
 * DB_RECOVER so recovery runs only after a crash).  Every put/delete is its
 * own transaction, committed with DB_TXN_WRITE_NOSYNC: the log record is in
 * the kernel when the call returns, so a kill -9 of greyd loses nothing that
 * was answered; the checkpoint timer flushes to disk.
 *
 * Return convention: 0 found/done, TRUSTDB_NOTFOUND, or -1 on error (logged).
 */
#ifndef GREYD_TRUSTDB_H
#define GREYD_TRUSTDB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "netaddr.h"
#include "record.h"

#define TRUSTDB_NOTFOUND 1
#define TRUSTDB_KEY_MAX	 (NETADDR_STRLEN + 2 * 256 + 2)

struct trustdb;

/* One decoded record, for iteration. */
struct trustdb_entry {
	enum trustdb_table table;
	const char *key;	/* NUL-terminated; grey keys hold two inner NULs */
	size_t keylen;		/* without the final NUL */
	union record v;
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
 * first_seen = now): each counter of add is added (greylisted,
 * rejected_by[] ...), greet_pass_until = max(old, add's); set
 * last_seen = now, and store it. */
int trustdb_add_client(struct trustdb *db, const char *addr, int64_t now,
    const struct client_rec *add);

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
 * seconds after last_seen (client_record_expiry); spamtrap records never
 * (record_expiry).  Records that cannot be decoded are left alone.
 */
int trustdb_expire_step(struct trustdb *db, int64_t now, int batch,
    int client_ttl);
/* Checkpoint and remove log files no longer needed. */
int trustdb_checkpoint(struct trustdb *db);
/* Counts of records per table (for greydb stats). */
int trustdb_count(struct trustdb *db, enum trustdb_table table, long *count);

#endif
