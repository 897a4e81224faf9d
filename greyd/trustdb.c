/*
 * trustdb.c — the trust database (see trustdb.h and design §4): one Berkeley
 * DB 5.3 transactional environment in db_dir with the B-trees grey.db,
 * white.db and client.db, shared by greyd and greydb at the same time.
 *
 * Environment.  DB_REGISTER|DB_RECOVER runs recovery only when a process
 * that had the environment open died without closing it.  Such a recovery
 * panics the environment under the processes still running; every
 * operation here then closes its handles, rejoins the recovered
 * environment and retries, so a killed greydb never stops greyd.  Commits
 * use DB_TXN_WRITE_NOSYNC (the log record is in the kernel when a call
 * returns; a kill -9 loses nothing committed, a power cut may lose the last
 * second).  One DB_ENV handle per process (DB_REGISTER allows no more).
 *
 * Locking.  Berkeley DB enforces its lock timeout (set to
 * TRUSTDB_LOCK_TIMEOUT_US) only when its deadlock detector runs, not while
 * a request sleeps, so a blocked request could wait for as long as greydb
 * holds the lock.  Every transaction here is therefore DB_TXN_NOWAIT: a
 * conflict fails at once and the operation is retried after sleeps of
 * 2, 4, ... 64 ms.  Before the last try the environment is reopened: if
 * the holder died (greydb killed mid-transaction), DB_REGISTER makes that
 * open run recovery, which releases its locks.  Worst case, greyd's loop
 * stalls about 130 ms and the call returns -1.  No caller ever waits on a
 * lock, so there are no deadlocks to detect.
 *
 * Records.  Fixed little-endian layouts that start with a version byte
 * (TRUSTDB_VERSION).  A record with another version or size is treated as
 * not found (with a warning), skipped by iteration, and left alone by
 * expiry, so an older greyd never destroys what a newer one wrote.
 *
 *   grey   v first_seen:8 last_seen:8 pass_after:8 expire:8 attempts:4
 *   white  v first_seen:8 last_seen:8 expire:8 passes:4 messages:4 origin:1
 *   client v first_seen:8 last_seen:8 connections:4 greylisted:4 passed:4
 *          delivered:4 rejected:4
 *
 * Grey keys are the triplet "clientkey\0sender\0rcpt" of explicit length;
 * white and client keys are C strings stored without their NUL.  White keys
 * must be canonical ("192.0.2.0/24" as netaddr_key writes it), or
 * trustdb_find_white could never match them: put_white refuses others.
 *
 * Prefix lengths.  The white database also holds TRUSTDB_META_KEY, a bitmap
 * of the prefix lengths ever stored (0..32 for IPv4, 0..128 for IPv6),
 * updated in the same transaction as every put_white.  find_white reads it
 * and looks up the client address masked to each of those lengths, longest
 * first.  Iteration and expiry never show or delete it.  An unreadable
 * bitmap counts as "every length" (slower, still correct).
 *
 * Iteration reads TRUSTDB_ITER_BATCH records per short read-committed
 * transaction and calls the callback with no lock held, so a slow reader
 * (greydb list | less) never blocks greyd.  Expiry examines a bounded batch
 * per call in one transaction, continuing after the last key it examined.
 */
#include <sys/stat.h>

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <db.h>

#include "log.h"
#include "netaddr.h"
#include "trustdb.h"

#define TRUSTDB_VERSION		1
#define TRUSTDB_RETRIES		8
#define TRUSTDB_BACKOFF_US	2000		/* 2, 4, ... 64 ms: 126 ms */
#define TRUSTDB_LOCK_TIMEOUT_US	200000		/* 200 ms */
#define TRUSTDB_CACHE_BYTES	(64u << 20)	/* 64 MiB */
#define TRUSTDB_LOG_FILE_BYTES	(10u << 20)	/* 10 MiB */
#define TRUSTDB_ITER_BATCH	128
#define TRUSTDB_META_KEY	"#prefixlens"
#define TRUSTDB_ENV_FLAGS	(DB_CREATE | DB_INIT_TXN | DB_INIT_LOCK | \
				 DB_INIT_LOG | DB_INIT_MPOOL | DB_REGISTER | \
				 DB_RECOVER)

#define GREY_REC_SIZE		(1 + 4 * 8 + 4)
#define WHITE_REC_SIZE		(1 + 3 * 8 + 2 * 4 + 1)
#define CLIENT_REC_SIZE_V1	(1 + 2 * 8 + 5 * 4)
#define CLIENT_VERSION		2	/* v2: greet_pass_until, trapped, rejected_by */
#define CLIENT_REC_SIZE		(1 + 3 * 8 + (6 + REJECT_NREASONS) * 4)
#define TRAP_REC_SIZE		(1 + 2 * 8 + 1)
#define SPAMTRAP_REC_SIZE	(1 + 8 + 1)
#define RCPT_REC_SIZE		(1 + 2 * 8 + 2)
#define PREFIX_BITMAP_BYTES	17		/* bits for prefix 0..128 */
#define META_REC_SIZE		(1 + 2 * PREFIX_BITMAP_BYTES)
#define TRUSTDB_VAL_MAX		128		/* >= every record size */

static const char *const trustdb_files[TRUSTDB_NTABLES] = {
	"grey.db", "white.db", "client.db", "trap.db", "spamtrap.db", "rcpt.db"
};
static const char *const trustdb_names[TRUSTDB_NTABLES] = {
	"grey", "white", "client", "trap", "spamtrap", "rcpt"
};

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

/* Prefix lengths present in the white database, per address family. */
struct prefix_bitmap {
	uint8_t bits[2][PREFIX_BITMAP_BYTES];	/* [0] IPv4, [1] IPv6 */
};

typedef int (*trustdb_fn)(struct trustdb *db, DB_TXN *txn, void *arg);

/* ---- little-endian encoding ---- */

static uint8_t *
enc_u64(uint8_t *p, uint64_t v)
{
	int i;

	for (i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
	return p + 8;
}

static uint8_t *
enc_u32(uint8_t *p, uint32_t v)
{
	int i;

	for (i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
	return p + 4;
}

static const uint8_t *
dec_i64(const uint8_t *p, int64_t *v)
{
	uint64_t u = 0;
	int i;

	for (i = 7; i >= 0; i--)
		u = (u << 8) | p[i];
	*v = (int64_t)u;
	return p + 8;
}

static const uint8_t *
dec_u32(const uint8_t *p, uint32_t *v)
{
	uint32_t u = 0;
	int i;

	for (i = 3; i >= 0; i--)
		u = (u << 8) | p[i];
	*v = u;
	return p + 4;
}

static bool
rec_valid(const void *data, size_t size, size_t want)
{
	return size == want && ((const uint8_t *)data)[0] == TRUSTDB_VERSION;
}

static size_t
grey_encode(const struct grey_rec *r, uint8_t *buf)
{
	uint8_t *p = buf;

	*p++ = TRUSTDB_VERSION;
	p = enc_u64(p, (uint64_t)r->first_seen);
	p = enc_u64(p, (uint64_t)r->last_seen);
	p = enc_u64(p, (uint64_t)r->pass_after);
	p = enc_u64(p, (uint64_t)r->expire);
	p = enc_u32(p, r->attempts);
	return (size_t)(p - buf);
}

static int
grey_decode(const void *data, size_t size, struct grey_rec *r)
{
	const uint8_t *p = data;

	if (!rec_valid(data, size, GREY_REC_SIZE))
		return -1;
	p = dec_i64(p + 1, &r->first_seen);
	p = dec_i64(p, &r->last_seen);
	p = dec_i64(p, &r->pass_after);
	p = dec_i64(p, &r->expire);
	dec_u32(p, &r->attempts);
	return 0;
}

static size_t
white_encode(const struct white_rec *r, uint8_t *buf)
{
	uint8_t *p = buf;

	*p++ = TRUSTDB_VERSION;
	p = enc_u64(p, (uint64_t)r->first_seen);
	p = enc_u64(p, (uint64_t)r->last_seen);
	p = enc_u64(p, (uint64_t)r->expire);
	p = enc_u32(p, r->passes);
	p = enc_u32(p, r->messages);
	*p++ = r->origin;
	return (size_t)(p - buf);
}

static int
white_decode(const void *data, size_t size, struct white_rec *r)
{
	const uint8_t *p = data;

	if (!rec_valid(data, size, WHITE_REC_SIZE))
		return -1;
	p = dec_i64(p + 1, &r->first_seen);
	p = dec_i64(p, &r->last_seen);
	p = dec_i64(p, &r->expire);
	p = dec_u32(p, &r->passes);
	p = dec_u32(p, &r->messages);
	r->origin = *p;
	return 0;
}

static size_t
client_encode(const struct client_rec *r, uint8_t *buf)
{
	uint8_t *p = buf;
	int i;

	*p++ = CLIENT_VERSION;
	p = enc_u64(p, (uint64_t)r->first_seen);
	p = enc_u64(p, (uint64_t)r->last_seen);
	p = enc_u64(p, (uint64_t)r->greet_pass_until);
	p = enc_u32(p, r->connections);
	p = enc_u32(p, r->greylisted);
	p = enc_u32(p, r->passed);
	p = enc_u32(p, r->delivered);
	p = enc_u32(p, r->rejected);
	p = enc_u32(p, r->trapped);
	for (i = 0; i < REJECT_NREASONS; i++)
		p = enc_u32(p, r->rejected_by[i]);
	return (size_t)(p - buf);
}

/* Version 1 records (before issue 3) lack the last fields: zero. */
static int
client_decode(const void *data, size_t size, struct client_rec *r)
{
	const uint8_t *p = data;
	bool v1 = rec_valid(data, size, CLIENT_REC_SIZE_V1);
	int i;

	if (!v1 && (size != CLIENT_REC_SIZE || p[0] != CLIENT_VERSION))
		return -1;
	memset(r, 0, sizeof(*r));
	p = dec_i64(p + 1, &r->first_seen);
	p = dec_i64(p, &r->last_seen);
	if (!v1)
		p = dec_i64(p, &r->greet_pass_until);
	p = dec_u32(p, &r->connections);
	p = dec_u32(p, &r->greylisted);
	p = dec_u32(p, &r->passed);
	p = dec_u32(p, &r->delivered);
	p = dec_u32(p, &r->rejected);
	if (v1)
		return 0;
	p = dec_u32(p, &r->trapped);
	for (i = 0; i < REJECT_NREASONS; i++)
		p = dec_u32(p, &r->rejected_by[i]);
	return 0;
}

static size_t
trap_encode(const struct trap_rec *r, uint8_t *buf)
{
	uint8_t *p = buf;

	*p++ = TRUSTDB_VERSION;
	p = enc_u64(p, (uint64_t)r->trapped_at);
	p = enc_u64(p, (uint64_t)r->expire);
	*p++ = r->reason;
	return (size_t)(p - buf);
}

static int
trap_decode(const void *data, size_t size, struct trap_rec *r)
{
	const uint8_t *p = data;

	if (!rec_valid(data, size, TRAP_REC_SIZE))
		return -1;
	p = dec_i64(p + 1, &r->trapped_at);
	p = dec_i64(p, &r->expire);
	r->reason = *p;
	return 0;
}

static size_t
spamtrap_encode(const struct spamtrap_rec *r, uint8_t *buf)
{
	uint8_t *p = buf;

	*p++ = TRUSTDB_VERSION;
	p = enc_u64(p, (uint64_t)r->added);
	*p++ = r->origin;
	return (size_t)(p - buf);
}

static int
spamtrap_decode(const void *data, size_t size, struct spamtrap_rec *r)
{
	const uint8_t *p = data;

	if (!rec_valid(data, size, SPAMTRAP_REC_SIZE))
		return -1;
	p = dec_i64(p + 1, &r->added);
	r->origin = *p;
	return 0;
}

static size_t
rcpt_encode(const struct rcpt_rec *r, uint8_t *buf)
{
	uint8_t *p = buf;

	*p++ = TRUSTDB_VERSION;
	p = enc_u64(p, (uint64_t)r->checked);
	p = enc_u64(p, (uint64_t)r->expire);
	*p++ = r->valid;
	*p++ = r->origin;
	return (size_t)(p - buf);
}

static int
rcpt_decode(const void *data, size_t size, struct rcpt_rec *r)
{
	const uint8_t *p = data;

	if (!rec_valid(data, size, RCPT_REC_SIZE))
		return -1;
	p = dec_i64(p + 1, &r->checked);
	p = dec_i64(p, &r->expire);
	r->valid = *p++;
	r->origin = *p;
	return 0;
}

static int
entry_decode(struct trustdb_entry *e, const void *data, size_t size)
{
	switch (e->table) {
	case TRUSTDB_GREY:
		return grey_decode(data, size, &e->v.grey);
	case TRUSTDB_WHITE:
		return white_decode(data, size, &e->v.white);
	case TRUSTDB_CLIENT:
		return client_decode(data, size, &e->v.client);
	case TRUSTDB_TRAP:
		return trap_decode(data, size, &e->v.trap);
	case TRUSTDB_SPAMTRAP:
		return spamtrap_decode(data, size, &e->v.spamtrap);
	case TRUSTDB_RCPT:
		return rcpt_decode(data, size, &e->v.rcpt);
	}
	return -1;
}

/* Encode the record of an entry; 0 if the table has none of its own. */
static size_t
entry_encode(enum trustdb_table t, const void *rec, uint8_t *buf)
{
	switch (t) {
	case TRUSTDB_GREY:
		return grey_encode(rec, buf);
	case TRUSTDB_WHITE:
		return white_encode(rec, buf);
	case TRUSTDB_CLIENT:
		return client_encode(rec, buf);
	case TRUSTDB_TRAP:
		return trap_encode(rec, buf);
	case TRUSTDB_SPAMTRAP:
		return spamtrap_encode(rec, buf);
	case TRUSTDB_RCPT:
		return rcpt_encode(rec, buf);
	}
	return 0;
}

/* When a record stops being useful; -1 if it cannot be decoded. */
static int
record_expiry(enum trustdb_table t, const void *data, size_t size,
    int client_ttl, int64_t *expire)
{
	struct trustdb_entry e = { .table = t };

	*expire = INT64_MAX;
	if (entry_decode(&e, data, size) == -1)
		return -1;
	switch (t) {
	case TRUSTDB_GREY:
		*expire = e.v.grey.expire;
		break;
	case TRUSTDB_WHITE:
		*expire = e.v.white.expire;
		break;
	case TRUSTDB_CLIENT:
		*expire = e.v.client.last_seen + client_ttl;
		break;
	case TRUSTDB_TRAP:
		*expire = e.v.trap.expire;
		break;
	case TRUSTDB_SPAMTRAP:
		*expire = INT64_MAX;
		break;
	case TRUSTDB_RCPT:
		*expire = e.v.rcpt.expire != 0 ? e.v.rcpt.expire : INT64_MAX;
		break;
	}
	return 0;
}

static bool
is_meta_key(enum trustdb_table t, const void *key, size_t keylen)
{
	return t == TRUSTDB_WHITE && keylen == sizeof(TRUSTDB_META_KEY) - 1 &&
	    memcmp(key, TRUSTDB_META_KEY, keylen) == 0;
}

static void
warn_bad_record(enum trustdb_table t, const char *key, size_t keylen)
{
	log_warn("trustdb: %s record \"%.*s\": unknown version or size, "
	    "ignored", trustdb_names[t], (int)strnlen(key, keylen), key);
}

/* ---- prefix-length bitmap ---- */

static size_t
bitmap_encode(const struct prefix_bitmap *m, uint8_t *buf)
{
	buf[0] = TRUSTDB_VERSION;
	memcpy(buf + 1, m->bits, sizeof(m->bits));
	return META_REC_SIZE;
}

static int
bitmap_decode(const void *data, size_t size, struct prefix_bitmap *m)
{
	if (!rec_valid(data, size, META_REC_SIZE))
		return -1;
	memcpy(m->bits, (const uint8_t *)data + 1, sizeof(m->bits));
	return 0;
}

static bool
bitmap_test(const struct prefix_bitmap *m, int fam, int prefix)
{
	return (m->bits[fam][prefix / 8] >> (prefix % 8)) & 1;
}

static void
bitmap_set(struct prefix_bitmap *m, int fam, int prefix)
{
	m->bits[fam][prefix / 8] |= (uint8_t)(1u << (prefix % 8));
}

static int
family_index(int family)
{
	return family == AF_INET ? 0 : 1;
}

/* ---- environment ---- */

static void
trustdb_errcall(const DB_ENV *env, const char *pfx, const char *msg)
{
	log_err("trustdb: %s", msg);
}

/* Closing a panicked environment lists every handle; nothing to act on. */
static void
trustdb_errcall_quiet(const DB_ENV *env, const char *pfx, const char *msg)
{
}

static int
trustdb_open_env(struct trustdb *db)
{
	DB_ENV *env;
	int ret;

	if ((ret = db_env_create(&env, 0)) != 0)
		return ret;
	db->env = env;
	env->set_errcall(env, trustdb_errcall);
	if ((ret = env->set_cachesize(env, 0, TRUSTDB_CACHE_BYTES, 1)) != 0 ||
	    (ret = env->set_lg_max(env, TRUSTDB_LOG_FILE_BYTES)) != 0 ||
	    (ret = env->set_flags(env, DB_TXN_WRITE_NOSYNC, 1)) != 0 ||
	    (ret = env->set_lk_detect(env, DB_LOCK_DEFAULT)) != 0 ||
	    (ret = env->set_timeout(env, TRUSTDB_LOCK_TIMEOUT_US,
	    DB_SET_LOCK_TIMEOUT)) != 0)
		return ret;
	return env->open(env, db->dir, TRUSTDB_ENV_FLAGS, 0600);
}

static int
trustdb_open_tables(struct trustdb *db)
{
	int i, ret;

	for (i = 0; i < TRUSTDB_NTABLES; i++) {
		if ((ret = db_create(&db->db[i], db->env, 0)) != 0)
			return ret;
		ret = db->db[i]->open(db->db[i], NULL, trustdb_files[i], NULL,
		    DB_BTREE, DB_CREATE | DB_AUTO_COMMIT, 0600);
		if (ret != 0)
			return ret;
	}
	return 0;
}

/* flags DB_NOSYNC: leave dirty pages to the log (a reopen must be quick). */
static void
trustdb_close_handles(struct trustdb *db, u_int32_t flags)
{
	int i;

	for (i = 0; i < TRUSTDB_NTABLES; i++) {
		if (db->db[i] != NULL)
			db->db[i]->close(db->db[i], flags);
		db->db[i] = NULL;
	}
	if (db->env != NULL)
		db->env->close(db->env, 0);
	db->env = NULL;
}

static int
trustdb_open_handles(struct trustdb *db)
{
	int ret;

	if ((ret = trustdb_open_env(db)) == 0 &&
	    (ret = trustdb_open_tables(db)) == 0)
		return 0;
	trustdb_close_handles(db, DB_NOSYNC);
	return ret;
}

/*
 * Close and open the environment again: after a recovery by another
 * process (rejoin the recovered environment), or when a lock stays taken
 * (if its holder died, DB_REGISTER makes the open recover, which frees it).
 */
static int
trustdb_reopen(struct trustdb *db, const char *why)
{
	int ret;

	log_warn("trustdb: %s: %s, reopening the environment", db->dir, why);
	if (db->env != NULL)
		db->env->set_errcall(db->env, trustdb_errcall_quiet);
	trustdb_close_handles(db, DB_NOSYNC);
	if ((ret = trustdb_open_handles(db)) != 0) {
		log_err("trustdb: db_dir %s: %s", db->dir, db_strerror(ret));
		return -1;
	}
	return 0;
}

static int
trustdb_make_dir(const char *dir, char *err, size_t errlen)
{
	struct stat st;

	if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
		snprintf(err, errlen, "db_dir %s: %s", dir, strerror(errno));
		return -1;
	}
	if (stat(dir, &st) == -1) {
		snprintf(err, errlen, "db_dir %s: %s", dir, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "db_dir %s: %s", dir, strerror(ENOTDIR));
		return -1;
	}
	return 0;
}

struct trustdb *
trustdb_open(const char *dir, char *err, size_t errlen)
{
	struct trustdb *db;
	int ret;

	if ((db = calloc(1, sizeof(*db))) == NULL) {
		snprintf(err, errlen, "trustdb: %s", strerror(errno));
		return NULL;
	}
	if (strlcpy(db->dir, dir, sizeof(db->dir)) >= sizeof(db->dir)) {
		snprintf(err, errlen, "db_dir %s: %s", dir,
		    strerror(ENAMETOOLONG));
		free(db);
		return NULL;
	}
	if (trustdb_make_dir(dir, err, errlen) == -1) {
		free(db);
		return NULL;
	}
	if ((ret = trustdb_open_handles(db)) != 0) {
		snprintf(err, errlen, "db_dir %s: %s", dir, db_strerror(ret));
		free(db);
		return NULL;
	}
	return db;
}

void
trustdb_close(struct trustdb *db)
{
	if (db == NULL)
		return;
	trustdb_close_handles(db, 0);
	free(db);
}

/* ---- running operations with retries ---- */

/* One try of fn in a DB_TXN_NOWAIT transaction (none if !in_txn). */
static int
trustdb_attempt(struct trustdb *db, bool in_txn, trustdb_fn fn, void *arg)
{
	DB_TXN *txn = NULL;
	int ret, cret;

	if (in_txn && (ret = db->env->txn_begin(db->env, NULL, &txn,
	    DB_TXN_NOWAIT)) != 0)
		return ret;
	ret = fn(db, txn, arg);
	if (txn == NULL)
		return ret;
	if (ret != 0 && ret != DB_NOTFOUND) {
		txn->abort(txn);
		return ret;
	}
	cret = txn->commit(txn, 0);
	return cret != 0 ? cret : ret;
}

/*
 * After a failed attempt: can the next one succeed?  A lock held by
 * someone else is waited out in short sleeps; before the last attempt the
 * environment is reopened, in case the holder died.  A panicked
 * environment is reopened.
 */
static bool
trustdb_retryable(struct trustdb *db, int ret, int attempt)
{
	if (ret == DB_LOCK_DEADLOCK || ret == DB_LOCK_NOTGRANTED) {
		if (attempt + 2 < TRUSTDB_RETRIES) {
			usleep(TRUSTDB_BACKOFF_US << attempt);
			return true;
		}
		return trustdb_reopen(db, "a lock stays taken") == 0;
	}
	if (ret == DB_RUNRECOVERY)
		return trustdb_reopen(db, "environment recovered by another "
		    "process") == 0;
	return false;
}

/*
 * Run fn (in a transaction if in_txn), retrying after lock conflicts and
 * recoveries.  0, TRUSTDB_NOTFOUND or -1 (logged).
 */
static int
trustdb_run(struct trustdb *db, const char *what, bool in_txn, trustdb_fn fn,
    void *arg)
{
	int attempt, ret = DB_RUNRECOVERY;

	for (attempt = 0; attempt < TRUSTDB_RETRIES; attempt++) {
		if (db->env == NULL &&
		    trustdb_reopen(db, "no environment since an error") == -1)
			return -1;
		ret = trustdb_attempt(db, in_txn, fn, arg);
		if (ret == 0)
			return 0;
		if (ret == DB_NOTFOUND)
			return TRUSTDB_NOTFOUND;
		if (attempt + 1 == TRUSTDB_RETRIES ||
		    !trustdb_retryable(db, ret, attempt))
			break;
	}
	if (ret == DB_LOCK_DEADLOCK || ret == DB_LOCK_NOTGRANTED)
		log_err("trustdb: %s: locked by another process, gave up",
		    what);
	else
		log_err("trustdb: %s: %s", what, db_strerror(ret));
	return -1;
}

/* ---- single records ---- */

struct trustdb_kv {
	enum trustdb_table table;
	const void *key;
	size_t keylen;
	uint8_t val[TRUSTDB_VAL_MAX];
	size_t vallen;		/* stored size (may exceed sizeof(val)) */
};

static void
dbt_set(DBT *d, const void *data, size_t size)
{
	memset(d, 0, sizeof(*d));
	d->data = (void *)data;
	d->size = (u_int32_t)size;
}

static int
kv_get_fn(struct trustdb *db, DB_TXN *txn, void *arg)
{
	struct trustdb_kv *kv = arg;
	DBT k, v;
	int ret;

	dbt_set(&k, kv->key, kv->keylen);
	dbt_set(&v, kv->val, 0);
	v.ulen = sizeof(kv->val);
	v.flags = DB_DBT_USERMEM;
	ret = db->db[kv->table]->get(db->db[kv->table], txn, &k, &v, 0);
	kv->vallen = v.size;
	/* Too big for any known record: the decoder rejects it by size. */
	return ret == DB_BUFFER_SMALL ? 0 : ret;
}

static int
kv_put_fn(struct trustdb *db, DB_TXN *txn, void *arg)
{
	struct trustdb_kv *kv = arg;
	DBT k, v;

	dbt_set(&k, kv->key, kv->keylen);
	dbt_set(&v, kv->val, kv->vallen);
	return db->db[kv->table]->put(db->db[kv->table], txn, &k, &v, 0);
}

static int
kv_del_fn(struct trustdb *db, DB_TXN *txn, void *arg)
{
	struct trustdb_kv *kv = arg;
	DBT k;

	dbt_set(&k, kv->key, kv->keylen);
	return db->db[kv->table]->del(db->db[kv->table], txn, &k, 0);
}

enum kv_op { KV_GET, KV_PUT, KV_DEL };

static const struct {
	const char *name;
	trustdb_fn fn;
} kv_ops[] = {
	[KV_GET] = { "get", kv_get_fn },
	[KV_PUT] = { "put", kv_put_fn },
	[KV_DEL] = { "del", kv_del_fn },
};

/* One record operation; kv->val/vallen in (put) or out (get). */
static int
kv_run(struct trustdb *db, enum kv_op op, enum trustdb_table t,
    const void *key, size_t keylen, struct trustdb_kv *kv)
{
	char what[32];

	snprintf(what, sizeof(what), "%s %s", kv_ops[op].name,
	    trustdb_names[t]);
	if (keylen == 0 || keylen > TRUSTDB_KEY_MAX ||
	    is_meta_key(t, key, keylen)) {
		log_err("trustdb: %s: invalid key (length %zu)", what, keylen);
		return -1;
	}
	kv->table = t;
	kv->key = key;
	kv->keylen = keylen;
	return trustdb_run(db, what, true, kv_ops[op].fn, kv);
}

int
trustdb_get_grey(struct trustdb *db, const char *key, size_t keylen,
    struct grey_rec *r)
{
	struct trustdb_kv kv;
	int ret;

	if ((ret = kv_run(db, KV_GET, TRUSTDB_GREY, key, keylen, &kv)) != 0)
		return ret;
	if (grey_decode(kv.val, kv.vallen, r) == -1) {
		warn_bad_record(TRUSTDB_GREY, key, keylen);
		return TRUSTDB_NOTFOUND;
	}
	return 0;
}

int
trustdb_put_grey(struct trustdb *db, const char *key, size_t keylen,
    const struct grey_rec *r)
{
	struct trustdb_kv kv;

	kv.vallen = grey_encode(r, kv.val);
	return kv_run(db, KV_PUT, TRUSTDB_GREY, key, keylen, &kv);
}

int
trustdb_del_grey(struct trustdb *db, const char *key, size_t keylen)
{
	struct trustdb_kv kv;

	return kv_run(db, KV_DEL, TRUSTDB_GREY, key, keylen, &kv);
}

int
trustdb_get_white(struct trustdb *db, const char *key, struct white_rec *r)
{
	struct trustdb_kv kv;
	size_t keylen = strlen(key);
	int ret;

	if ((ret = kv_run(db, KV_GET, TRUSTDB_WHITE, key, keylen, &kv)) != 0)
		return ret;
	if (white_decode(kv.val, kv.vallen, r) == -1) {
		warn_bad_record(TRUSTDB_WHITE, key, keylen);
		return TRUSTDB_NOTFOUND;
	}
	return 0;
}

int
trustdb_del_white(struct trustdb *db, const char *key)
{
	struct trustdb_kv kv;

	return kv_run(db, KV_DEL, TRUSTDB_WHITE, key, strlen(key), &kv);
}

int
trustdb_get_client(struct trustdb *db, const char *addr, struct client_rec *r)
{
	struct trustdb_kv kv;
	size_t keylen = strlen(addr);
	int ret;

	if ((ret = kv_run(db, KV_GET, TRUSTDB_CLIENT, addr, keylen, &kv)) != 0)
		return ret;
	if (client_decode(kv.val, kv.vallen, r) == -1) {
		warn_bad_record(TRUSTDB_CLIENT, addr, keylen);
		return TRUSTDB_NOTFOUND;
	}
	return 0;
}

int
trustdb_put_client(struct trustdb *db, const char *addr,
    const struct client_rec *r)
{
	struct trustdb_kv kv;

	kv.vallen = client_encode(r, kv.val);
	return kv_run(db, KV_PUT, TRUSTDB_CLIENT, addr, strlen(addr), &kv);
}

/* get/put/del of the tables keyed by a plain string (trap, spamtrap, rcpt). */
static int
record_get(struct trustdb *db, enum trustdb_table t, const char *key,
    void *rec)
{
	struct trustdb_kv kv;
	struct trustdb_entry e = { .table = t };
	size_t keylen = strlen(key);
	int ret;

	if ((ret = kv_run(db, KV_GET, t, key, keylen, &kv)) != 0)
		return ret;
	if (entry_decode(&e, kv.val, kv.vallen) == -1) {
		warn_bad_record(t, key, keylen);
		return TRUSTDB_NOTFOUND;
	}
	switch (t) {
	case TRUSTDB_TRAP:
		memcpy(rec, &e.v.trap, sizeof(e.v.trap));
		break;
	case TRUSTDB_SPAMTRAP:
		memcpy(rec, &e.v.spamtrap, sizeof(e.v.spamtrap));
		break;
	default:
		memcpy(rec, &e.v.rcpt, sizeof(e.v.rcpt));
		break;
	}
	return 0;
}

static int
record_put(struct trustdb *db, enum trustdb_table t, const char *key,
    const void *rec)
{
	struct trustdb_kv kv;

	kv.vallen = entry_encode(t, rec, kv.val);
	return kv_run(db, KV_PUT, t, key, strlen(key), &kv);
}

static int
record_del(struct trustdb *db, enum trustdb_table t, const char *key)
{
	struct trustdb_kv kv;

	return kv_run(db, KV_DEL, t, key, strlen(key), &kv);
}

int
trustdb_get_trap(struct trustdb *db, const char *addr, struct trap_rec *r)
{
	return record_get(db, TRUSTDB_TRAP, addr, r);
}

int
trustdb_put_trap(struct trustdb *db, const char *addr,
    const struct trap_rec *r)
{
	return record_put(db, TRUSTDB_TRAP, addr, r);
}

int
trustdb_del_trap(struct trustdb *db, const char *addr)
{
	return record_del(db, TRUSTDB_TRAP, addr);
}

int
trustdb_find_trap(struct trustdb *db, const char *addr, int64_t now,
    struct trap_rec *r)
{
	struct trap_rec t;
	int ret;

	if ((ret = trustdb_get_trap(db, addr, &t)) != 0)
		return ret;
	if (t.expire <= now)
		return TRUSTDB_NOTFOUND;
	if (r != NULL)
		*r = t;
	return 0;
}

int
trustdb_get_spamtrap(struct trustdb *db, const char *addr,
    struct spamtrap_rec *r)
{
	return record_get(db, TRUSTDB_SPAMTRAP, addr, r);
}

int
trustdb_put_spamtrap(struct trustdb *db, const char *addr,
    const struct spamtrap_rec *r)
{
	return record_put(db, TRUSTDB_SPAMTRAP, addr, r);
}

int
trustdb_del_spamtrap(struct trustdb *db, const char *addr)
{
	return record_del(db, TRUSTDB_SPAMTRAP, addr);
}

int
trustdb_get_rcpt(struct trustdb *db, const char *key, struct rcpt_rec *r)
{
	return record_get(db, TRUSTDB_RCPT, key, r);
}

int
trustdb_put_rcpt(struct trustdb *db, const char *key,
    const struct rcpt_rec *r)
{
	return record_put(db, TRUSTDB_RCPT, key, r);
}

int
trustdb_del_rcpt(struct trustdb *db, const char *key)
{
	return record_del(db, TRUSTDB_RCPT, key);
}

/* ---- white: records plus the prefix-length bitmap ---- */

struct white_put {
	struct trustdb_kv rec;
	int fam, prefix;
};

/* Read the bitmap (flags DB_RMW in a transaction that will update it). */
static int
bitmap_get(struct trustdb *db, DB_TXN *txn, u_int32_t flags,
    struct prefix_bitmap *m)
{
	DB *d = db->db[TRUSTDB_WHITE];
	uint8_t buf[TRUSTDB_VAL_MAX];
	DBT k, v;
	int ret;

	dbt_set(&k, TRUSTDB_META_KEY, sizeof(TRUSTDB_META_KEY) - 1);
	dbt_set(&v, buf, 0);
	v.ulen = sizeof(buf);
	v.flags = DB_DBT_USERMEM;
	memset(m, 0, sizeof(*m));
	ret = d->get(d, txn, &k, &v, flags);
	if (ret == DB_NOTFOUND)
		return 0;
	if ((ret == 0 || ret == DB_BUFFER_SMALL) &&
	    bitmap_decode(buf, v.size, m) == -1) {
		warn_bad_record(TRUSTDB_WHITE, TRUSTDB_META_KEY,
		    sizeof(TRUSTDB_META_KEY) - 1);
		memset(m, 0xff, sizeof(*m));
		return 0;
	}
	return ret;
}

static int
white_put_fn(struct trustdb *db, DB_TXN *txn, void *arg)
{
	struct white_put *wp = arg;
	struct prefix_bitmap m;
	uint8_t buf[META_REC_SIZE];
	DBT k, v;
	int ret;

	if ((ret = bitmap_get(db, txn, DB_RMW, &m)) != 0)
		return ret;
	if (!bitmap_test(&m, wp->fam, wp->prefix)) {
		bitmap_set(&m, wp->fam, wp->prefix);
		dbt_set(&k, TRUSTDB_META_KEY, sizeof(TRUSTDB_META_KEY) - 1);
		dbt_set(&v, buf, bitmap_encode(&m, buf));
		ret = db->db[TRUSTDB_WHITE]->put(db->db[TRUSTDB_WHITE], txn,
		    &k, &v, 0);
		if (ret != 0)
			return ret;
	}
	return kv_put_fn(db, txn, &wp->rec);
}

/* A white key must be exactly what netaddr_key writes for it. */
static int
white_key_parse(const char *key, struct cidr *c)
{
	char canon[NETADDR_STRLEN];

	if (netaddr_parse_cidr(c, key) == -1)
		return -1;
	netaddr_key(&c->net, c->prefix, canon, sizeof(canon));
	return strcmp(canon, key) == 0 ? 0 : -1;
}

int
trustdb_put_white(struct trustdb *db, const char *key,
    const struct white_rec *r)
{
	struct white_put wp;
	struct cidr c;

	if (white_key_parse(key, &c) == -1) {
		log_err("trustdb: put white \"%s\": not a canonical "
		    "address/prefix key", key);
		return -1;
	}
	wp.fam = family_index(c.net.family);
	wp.prefix = c.prefix;
	wp.rec.table = TRUSTDB_WHITE;
	wp.rec.key = key;
	wp.rec.keylen = strlen(key);
	wp.rec.vallen = white_encode(r, wp.rec.val);
	return trustdb_run(db, "put white", true, white_put_fn, &wp);
}

struct white_find {
	const struct netaddr *addr;
	int64_t now;
	uint32_t min_passes;
	char key[NETADDR_STRLEN];
	struct white_rec rec;
};

/* Does the white key k hold a live record?  0, DB_NOTFOUND or an error. */
static int
white_find_one(struct trustdb *db, DB_TXN *txn, struct white_find *wf)
{
	struct trustdb_kv kv = {
		.table = TRUSTDB_WHITE, .key = wf->key,
		.keylen = strlen(wf->key),
	};
	int ret;

	if ((ret = kv_get_fn(db, txn, &kv)) != 0)
		return ret;
	if (white_decode(kv.val, kv.vallen, &wf->rec) == -1) {
		warn_bad_record(TRUSTDB_WHITE, wf->key, kv.keylen);
		return DB_NOTFOUND;
	}
	if (wf->rec.expire <= wf->now)
		return DB_NOTFOUND;
	if (wf->rec.origin == WHITE_LOCAL && wf->rec.passes < wf->min_passes)
		return DB_NOTFOUND;
	return 0;
}

static int
white_find_fn(struct trustdb *db, DB_TXN *txn, void *arg)
{
	struct white_find *wf = arg;
	struct prefix_bitmap m;
	int fam = family_index(wf->addr->family), prefix, ret;

	if ((ret = bitmap_get(db, txn, 0, &m)) != 0)
		return ret;
	for (prefix = netaddr_maxprefix(wf->addr); prefix >= 0; prefix--) {
		if (!bitmap_test(&m, fam, prefix))
			continue;
		netaddr_key(wf->addr, prefix, wf->key, sizeof(wf->key));
		if ((ret = white_find_one(db, txn, wf)) != DB_NOTFOUND)
			return ret;
	}
	return DB_NOTFOUND;
}

int
trustdb_find_white(struct trustdb *db, const struct netaddr *a, int64_t now,
    uint32_t min_passes, char *key, size_t keylen, struct white_rec *r)
{
	struct white_find wf = { .addr = a, .now = now, .min_passes = min_passes };
	int ret;

	ret = trustdb_run(db, "find white", true, white_find_fn, &wf);
	if (ret != 0)
		return ret;
	if (key != NULL)
		strlcpy(key, wf.key, keylen);
	if (r != NULL)
		*r = wf.rec;
	return 0;
}

/* ---- cursors ---- */

/*
 * Position c on the first record after pos (the first record of all when
 * !started).  k and v are DB_DBT_REALLOC.
 */
static int
cursor_after(DBC *c, DBT *k, DBT *v, bool started, const void *pos,
    size_t poslen)
{
	void *p;
	int ret;

	if (!started)
		return c->get(c, k, v, DB_FIRST);
	if ((p = realloc(k->data, poslen > 0 ? poslen : 1)) == NULL)
		return ENOMEM;
	k->data = p;
	memcpy(k->data, pos, poslen);
	k->size = (u_int32_t)poslen;
	ret = c->get(c, k, v, DB_SET_RANGE);
	if (ret == 0 && k->size == poslen && memcmp(k->data, pos, poslen) == 0)
		ret = c->get(c, k, v, DB_NEXT);
	return ret;
}

static void
dbt_realloc_init(DBT *d)
{
	memset(d, 0, sizeof(*d));
	d->flags = DB_DBT_REALLOC;
}

/* ---- iteration ---- */

struct iter_item {
	size_t keylen;
	char key[TRUSTDB_KEY_MAX + 1];
	struct trustdb_entry e;
};

struct iter_state {
	enum trustdb_table table;
	bool started, end;
	bool got;			/* this batch read a key into next */
	size_t poslen, nextlen;
	char pos[TRUSTDB_KEY_MAX];	/* last key of the previous batch */
	char next[TRUSTDB_KEY_MAX];	/* last key of this batch */
	size_t n;
	struct iter_item items[TRUSTDB_ITER_BATCH];
};

/* Keep one record read by iter_fill_fn; false if it is to be skipped. */
static bool
iter_take(struct iter_state *st, const DBT *k, const DBT *v)
{
	struct iter_item *it = &st->items[st->n];

	if (is_meta_key(st->table, k->data, k->size))
		return false;
	it->e.table = st->table;
	memcpy(it->key, k->data, k->size);
	it->key[k->size] = '\0';
	it->keylen = k->size;
	if (entry_decode(&it->e, v->data, v->size) == -1) {
		warn_bad_record(st->table, it->key, it->keylen);
		return false;
	}
	return true;
}

/*
 * Read up to TRUSTDB_ITER_BATCH records after st->pos.  A batch ends on a
 * record it keeps, so the next one can always resume after st->next;
 * skipped records (meta, undecodable, keys longer than this module ever
 * writes) cost a cursor step each.
 */
static int
iter_scan(struct iter_state *st, DBC *c, DBT *k, DBT *v)
{
	int ret;

	st->n = 0;
	st->got = false;
	ret = cursor_after(c, k, v, st->started, st->pos, st->poslen);
	for (; ret == 0; ret = c->get(c, k, v, DB_NEXT)) {
		if (k->size > TRUSTDB_KEY_MAX) {
			log_warn("trustdb: %s: skipping key of %u octets",
			    trustdb_names[st->table], k->size);
			continue;
		}
		if (!iter_take(st, k, v))
			continue;
		memcpy(st->next, k->data, k->size);
		st->nextlen = k->size;
		st->got = true;
		if (++st->n == TRUSTDB_ITER_BATCH)
			return 0;
	}
	return ret;
}

static int
iter_fill_fn(struct trustdb *db, DB_TXN *txn, void *arg)
{
	struct iter_state *st = arg;
	DB *d = db->db[st->table];
	DBC *c;
	DBT k, v;
	int ret, cret;

	if ((ret = d->cursor(d, txn, &c, DB_READ_COMMITTED)) != 0)
		return ret;
	dbt_realloc_init(&k);
	dbt_realloc_init(&v);
	ret = iter_scan(st, c, &k, &v);
	st->end = ret == DB_NOTFOUND;
	if (st->end)
		ret = 0;
	cret = c->close(c);
	free(k.data);
	free(v.data);
	return ret != 0 ? ret : cret;
}

static bool
table_ok(const char *what, enum trustdb_table t)
{
	if ((int)t >= 0 && (int)t < TRUSTDB_NTABLES)
		return true;
	log_err("trustdb: %s: no table %d", what, (int)t);
	return false;
}

int
trustdb_iterate(struct trustdb *db, enum trustdb_table table,
    int (*fn)(const struct trustdb_entry *e, void *arg), void *arg)
{
	struct iter_state *st;
	size_t i;
	bool stop = false;
	int ret = 0;

	if (!table_ok("iterate", table))
		return -1;
	if ((st = calloc(1, sizeof(*st))) == NULL) {
		log_err("trustdb: iterate: %s", strerror(errno));
		return -1;
	}
	st->table = table;
	while (!st->end && !stop) {
		if (trustdb_run(db, "iterate", true, iter_fill_fn, st) != 0) {
			ret = -1;
			break;
		}
		if (st->got) {
			memcpy(st->pos, st->next, st->nextlen);
			st->poslen = st->nextlen;
			st->started = true;
		}
		for (i = 0; i < st->n && !stop; i++) {
			st->items[i].e.key = st->items[i].key;
			st->items[i].e.keylen = st->items[i].keylen;
			stop = fn(&st->items[i].e, arg) != 0;
		}
	}
	free(st);
	return ret;
}

/* ---- map reloads ---- */

struct purge_arg {
	struct trustdb *db;
	trustdb_listed_fn listed;
	void *arg;
	int deleted;
	bool failed;
};

static int
purge_one(const struct trustdb_entry *e, void *arg)
{
	struct purge_arg *pa = arg;
	uint8_t origin;

	origin = e->table == TRUSTDB_RCPT ? e->v.rcpt.origin :
	    e->v.spamtrap.origin;
	if (origin != ORIGIN_MAP || pa->listed(e->key, pa->arg))
		return 0;
	if (record_del(pa->db, e->table, e->key) < 0)
		pa->failed = true;
	else
		pa->deleted++;
	return 0;
}

int
trustdb_purge_map(struct trustdb *db, enum trustdb_table table,
    trustdb_listed_fn listed, void *arg)
{
	struct purge_arg pa = { .db = db, .listed = listed, .arg = arg };

	if (table != TRUSTDB_RCPT && table != TRUSTDB_SPAMTRAP) {
		log_err("trustdb: purge map: table %s has no maps",
		    table_ok("purge", table) ? trustdb_names[table] : "?");
		return -1;
	}
	if (trustdb_iterate(db, table, purge_one, &pa) != 0 || pa.failed)
		return -1;
	return pa.deleted;
}

/* ---- expiry ---- */

struct expire_walk {
	int64_t now;
	int client_ttl;			/* seconds after a client's last_seen */
	int batch, examined, deleted;
	enum trustdb_table table;
	bool started;
	size_t keylen;
	char key[TRUSTDB_KEY_MAX];
};

/* Examine one record under the cursor; delete it if it has expired. */
static int
expire_record(struct expire_walk *w, DBC *c, const DBT *k, const DBT *v)
{
	int64_t expire;
	int ret;

	w->examined++;
	if (k->size <= TRUSTDB_KEY_MAX) {
		memcpy(w->key, k->data, k->size);
		w->keylen = k->size;
		w->started = true;
		if (is_meta_key(w->table, k->data, k->size) ||
		    record_expiry(w->table, v->data, v->size, w->client_ttl,
		    &expire) == -1 ||
		    expire > w->now)
			return 0;
	}
	/* Expired, or a key longer than this module ever writes. */
	if ((ret = c->del(c, 0)) != 0)
		return ret;
	w->deleted++;
	return 0;
}

/* Walk w->table from w's position; DB_NOTFOUND at the end of the table. */
static int
expire_table_walk(struct trustdb *db, DB_TXN *txn, struct expire_walk *w)
{
	DB *d = db->db[w->table];
	DBC *c;
	DBT k, v;
	int ret, cret;

	if ((ret = d->cursor(d, txn, &c, 0)) != 0)
		return ret;
	dbt_realloc_init(&k);
	dbt_realloc_init(&v);
	ret = cursor_after(c, &k, &v, w->started, w->key, w->keylen);
	while (ret == 0) {
		if ((ret = expire_record(w, c, &k, &v)) != 0 ||
		    w->examined >= w->batch)
			break;
		ret = c->get(c, &k, &v, DB_NEXT);
	}
	cret = c->close(c);
	free(k.data);
	free(v.data);
	return ret != 0 ? ret : cret;
}

static int
expire_fn(struct trustdb *db, DB_TXN *txn, void *arg)
{
	struct expire_walk *w = arg;
	int ends = 0, ret;

	/* Start (again, after a deadlock) from the committed position. */
	w->examined = w->deleted = 0;
	w->table = db->expire_table;
	w->started = db->expire_started;
	w->keylen = db->expire_keylen;
	memcpy(w->key, db->expire_key, w->keylen);
	/* Up to the end of the table it started in, a second time if need
	 * be, so a batch larger than the database sees every record. */
	while (w->examined < w->batch && ends <= TRUSTDB_NTABLES) {
		ret = expire_table_walk(db, txn, w);
		if (ret == DB_NOTFOUND) {
			w->table = (w->table + 1) % TRUSTDB_NTABLES;
			w->started = false;
			w->keylen = 0;
			ends++;
		} else if (ret != 0)
			return ret;
	}
	return 0;
}

int
trustdb_expire_step(struct trustdb *db, int64_t now, int batch,
    int client_ttl)
{
	struct expire_walk w = {
		.now = now, .client_ttl = client_ttl,
		.batch = batch > 0 ? batch : 1,
	};

	if (trustdb_run(db, "expire", true, expire_fn, &w) != 0)
		return -1;
	db->expire_table = w.table;
	db->expire_started = w.started;
	db->expire_keylen = w.keylen;
	memcpy(db->expire_key, w.key, w.keylen);
	return w.deleted;
}

/* ---- maintenance ---- */

static int
checkpoint_fn(struct trustdb *db, DB_TXN *txn, void *arg)
{
	int ret;

	if ((ret = db->env->txn_checkpoint(db->env, 0, 0, 0)) != 0)
		return ret;
	return db->env->log_archive(db->env, NULL, DB_ARCH_REMOVE);
}

int
trustdb_checkpoint(struct trustdb *db)
{
	return trustdb_run(db, "checkpoint", false, checkpoint_fn, NULL);
}

struct count_arg {
	enum trustdb_table table;
	long count;
};

static int
count_fn(struct trustdb *db, DB_TXN *txn, void *arg)
{
	struct count_arg *ca = arg;
	DB *d = db->db[ca->table];
	DB_BTREE_STAT *sp;
	uint8_t buf[TRUSTDB_VAL_MAX];
	DBT k, v;
	int ret;

	if ((ret = d->stat(d, txn, &sp, DB_READ_COMMITTED)) != 0)
		return ret;
	ca->count = (long)sp->bt_nkeys;
	free(sp);
	if (ca->table != TRUSTDB_WHITE)
		return 0;
	dbt_set(&k, TRUSTDB_META_KEY, sizeof(TRUSTDB_META_KEY) - 1);
	dbt_set(&v, buf, 0);
	v.ulen = sizeof(buf);
	v.flags = DB_DBT_USERMEM;
	ret = d->get(d, txn, &k, &v, 0);
	if (ret == 0 || ret == DB_BUFFER_SMALL)
		ca->count--;
	return ret == DB_NOTFOUND || ret == DB_BUFFER_SMALL ? 0 : ret;
}

int
trustdb_count(struct trustdb *db, enum trustdb_table table, long *count)
{
	struct count_arg ca = { .table = table };

	if (!table_ok("count", table))
		return -1;
	if (trustdb_run(db, "count", true, count_fn, &ca) != 0)
		return -1;
	*count = ca.count;
	return 0;
}

int
trustdb_add_client(struct trustdb *db, const char *addr, int64_t now,
    const struct client_rec *add)
{
	struct client_rec r;
	int i;

	if (trustdb_get_client(db, addr, &r) != 0) {
		memset(&r, 0, sizeof(r));
		r.first_seen = now;
	}
	r.last_seen = now;
	r.connections += add->connections;
	r.greylisted += add->greylisted;
	r.passed += add->passed;
	r.delivered += add->delivered;
	r.rejected += add->rejected;
	r.trapped += add->trapped;
	for (i = 0; i < REJECT_NREASONS; i++)
		r.rejected_by[i] += add->rejected_by[i];
	if (add->greet_pass_until > r.greet_pass_until)
		r.greet_pass_until = add->greet_pass_until;
	return trustdb_put_client(db, addr, &r);
}
