/*
 * trustdb.h — the trust database: a Berkeley DB 5.3 transactional
 * environment in db_dir holding B-tree databases (design §4):
 *
 *   grey    triplet key "clientkey\0sender\0recipient"   -> struct grey_rec
 *   white   client key "192.0.2.0/24", "2001:db8::/64",
 *           "192.0.2.7/32" (admin)                        -> struct white_rec
 *   client  client address "192.0.2.7"                    -> struct client_rec
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

enum trustdb_table { TRUSTDB_GREY, TRUSTDB_WHITE, TRUSTDB_CLIENT };

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

struct client_rec {
	int64_t first_seen, last_seen;
	uint32_t connections, greylisted, passed, delivered, rejected;
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
 * Expired records do not match.
 */
int trustdb_find_white(struct trustdb *db, const struct netaddr *a, int64_t now,
    char *key, size_t keylen, struct white_rec *r);

int trustdb_get_client(struct trustdb *db, const char *addr,
    struct client_rec *r);
int trustdb_put_client(struct trustdb *db, const char *addr,
    const struct client_rec *r);
/* Add the counters of add to the client's record (created if missing,
 * first_seen = now), set last_seen = now, and store it. */
int trustdb_add_client(struct trustdb *db, const char *addr, int64_t now,
    const struct client_rec *add);

/* Call fn for each record of table (read committed; fn returns non-zero to stop). */
int trustdb_iterate(struct trustdb *db, enum trustdb_table table,
    int (*fn)(const struct trustdb_entry *e, void *arg), void *arg);
/*
 * Delete expired grey and white records: examine at most batch records from
 * where the previous call stopped (wrapping around).  Returns the number
 * deleted, or -1.  Client records expire 90 days after last_seen.
 */
int trustdb_expire_step(struct trustdb *db, int64_t now, int batch);
/* Checkpoint and remove log files no longer needed. */
int trustdb_checkpoint(struct trustdb *db);
/* Counts of records per table (for greydb stats). */
int trustdb_count(struct trustdb *db, enum trustdb_table table, long *count);

#endif
