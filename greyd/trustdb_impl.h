/*
 * trustdb_impl.h — private to the files of the trust database module:
 * trustdb.c (environment, transactions and retries, single records),
 * trustdb_white.c (white records and the prefix-length bitmap) and
 * trustdb_iter.c (iteration, expiry, map purges, counts).  No other file
 * includes it; the module's interface is trustdb.h.
 */
#ifndef GREYD_TRUSTDB_IMPL_H
#define GREYD_TRUSTDB_IMPL_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <db.h>

#include "record.h"
#include "trustdb.h"

/* The white database's record of prefix lengths (trustdb_white.c). */
#define TRUSTDB_META_KEY	"#prefixlens"
#define TRUSTDB_META_KEYLEN	(sizeof(TRUSTDB_META_KEY) - 1)
/* A value read into a buffer this big or smaller is whole; a bigger one
 * cannot be any record (DB_BUFFER_SMALL: its size is still reported). */
#define TRUSTDB_VAL_MAX		128
_Static_assert(TRUSTDB_VAL_MAX >= RECORD_MAX, "a record fits TRUSTDB_VAL_MAX");

struct trustdb {
	DB_ENV *env;			/* NULL after a failed reopen */
	DB *db[TRUSTDB_NTABLES];
	char dir[PATH_MAX];
	/* where trustdb_expire_step continues */
	enum trustdb_table expire_table;
	bool expire_started;		/* expire_key: last key examined */
	size_t expire_keylen;
	char expire_key[TRUSTDB_KEY_MAX];
};

/* One try of an operation, in txn (NULL: none); 0 or a Berkeley DB error. */
typedef int (*trustdb_fn)(struct trustdb *db, DB_TXN *txn, void *arg);

/* One key and value, for trustdb_kv_get and trustdb_kv_put. */
struct trustdb_kv {
	enum trustdb_table table;
	const void *key;
	size_t keylen;
	u_int32_t flags;	/* get: DB_RMW in a transaction that will write */
	uint8_t val[TRUSTDB_VAL_MAX];
	size_t vallen;		/* stored size (may exceed sizeof(val)) */
};

/*
 * Run fn (in a DB_TXN_NOWAIT transaction if in_txn), retrying after lock
 * conflicts and recoveries.  0, TRUSTDB_NOTFOUND or -1 (logged as what).
 */
int trustdb_run(struct trustdb *db, const char *what, bool in_txn,
    trustdb_fn fn, void *arg);
/* trustdb_fn's for a struct trustdb_kv: read kv->val, or write it. */
int trustdb_kv_get(struct trustdb *db, DB_TXN *txn, void *arg);
int trustdb_kv_put(struct trustdb *db, DB_TXN *txn, void *arg);
/* Log a stored value that decodes as no known record. */
void trustdb_warn_bad_record(enum trustdb_table t, const char *key,
    size_t keylen);
/* Is this the white database's prefix-length record (trustdb_white.c)? */
bool trustdb_is_meta_key(enum trustdb_table t, const void *key,
    size_t keylen);

#endif
