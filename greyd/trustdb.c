/*
 * trustdb.c — the trust database (see trustdb.h and design §4): one Berkeley
 * DB 5.3 transactional environment in db_dir with one B-tree per table
 * (grey.db, white.db, client.db, trap.db, spamtrap.db, rcpt.db), shared by
 * greyd and greydb at the same time.  This file opens and reopens the
 * environment, runs every operation in its transaction with retries, and
 * gets, puts and deletes single records, encoded by record.c.  White
 * records and their prefix-length bitmap are in trustdb_white.c;
 * iteration, expiry, map purges and counts in trustdb_iter.c.
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
 * Records.  A stored value that record_decode refuses (another version or
 * size) is treated as not found (with a warning), skipped by iteration,
 * and left alone by expiry, so an older greyd never destroys what a newer
 * one wrote.  Grey keys are the triplet "clientkey\0sender\0rcpt" of
 * explicit length; the other keys are C strings stored without their NUL.
 */
#include <sys/stat.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "record.h"
#include "trustdb_impl.h"

#define TRUSTDB_RETRIES		8
#define TRUSTDB_BACKOFF_US	2000		/* 2, 4, ... 64 ms: 126 ms */
#define TRUSTDB_LOCK_TIMEOUT_US	200000		/* 200 ms */
#define TRUSTDB_CACHE_BYTES	(64u << 20)	/* 64 MiB */
#define TRUSTDB_LOG_FILE_BYTES	(10u << 20)	/* 10 MiB */
#define TRUSTDB_ENV_FLAGS	(DB_CREATE | DB_INIT_TXN | DB_INIT_LOCK | \
				 DB_INIT_LOG | DB_INIT_MPOOL | DB_REGISTER | \
				 DB_RECOVER)

static const char *const trustdb_files[TRUSTDB_NTABLES] = {
	"grey.db", "white.db", "client.db", "trap.db", "spamtrap.db", "rcpt.db"
};

void
trustdb_warn_bad_record(enum trustdb_table t, const char *key, size_t keylen)
{
	log_warn("trustdb: %s record \"%.*s\": unknown version or size, "
	    "ignored", record_name(t), (int)strnlen(key, keylen), key);
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

int
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

static void
dbt_set(DBT *d, const void *data, size_t size)
{
	memset(d, 0, sizeof(*d));
	d->data = (void *)data;
	d->size = (u_int32_t)size;
}

int
trustdb_kv_get(struct trustdb *db, DB_TXN *txn, void *arg)
{
	struct trustdb_kv *kv = arg;
	DBT k, v;
	int ret;

	dbt_set(&k, kv->key, kv->keylen);
	dbt_set(&v, kv->val, 0);
	v.ulen = sizeof(kv->val);
	v.flags = DB_DBT_USERMEM;
	ret = db->db[kv->table]->get(db->db[kv->table], txn, &k, &v,
	    kv->flags);
	kv->vallen = v.size;
	/* Too big for any known record: the decoder rejects it by size. */
	return ret == DB_BUFFER_SMALL ? 0 : ret;
}

int
trustdb_kv_put(struct trustdb *db, DB_TXN *txn, void *arg)
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
	[KV_GET] = { "get", trustdb_kv_get },
	[KV_PUT] = { "put", trustdb_kv_put },
	[KV_DEL] = { "del", kv_del_fn },
};

/* One record operation; kv->val/vallen in (put) or out (get). */
static int
kv_run(struct trustdb *db, enum kv_op op, enum trustdb_table t,
    const void *key, size_t keylen, struct trustdb_kv *kv)
{
	char what[32];

	snprintf(what, sizeof(what), "%s %s", kv_ops[op].name,
	    record_name(t));
	if (keylen == 0 || keylen > TRUSTDB_KEY_MAX ||
	    trustdb_is_meta_key(t, key, keylen)) {
		log_err("trustdb: %s: invalid key (length %zu)", what, keylen);
		return -1;
	}
	kv->table = t;
	kv->key = key;
	kv->keylen = keylen;
	kv->flags = 0;
	return trustdb_run(db, what, true, kv_ops[op].fn, kv);
}

/* get/put/del of one record of any table, rec its struct. */
static int
rec_get(struct trustdb *db, enum trustdb_table t, const char *key,
    size_t keylen, void *rec)
{
	struct trustdb_kv kv;
	int ret;

	if ((ret = kv_run(db, KV_GET, t, key, keylen, &kv)) != 0)
		return ret;
	if (record_decode(t, kv.val, kv.vallen, rec) == -1) {
		trustdb_warn_bad_record(t, key, keylen);
		return TRUSTDB_NOTFOUND;
	}
	return 0;
}

static int
rec_put(struct trustdb *db, enum trustdb_table t, const char *key,
    size_t keylen, const void *rec)
{
	struct trustdb_kv kv;

	kv.vallen = record_encode(t, rec, kv.val, sizeof(kv.val));
	return kv_run(db, KV_PUT, t, key, keylen, &kv);
}

static int
rec_del(struct trustdb *db, enum trustdb_table t, const char *key,
    size_t keylen)
{
	struct trustdb_kv kv;

	return kv_run(db, KV_DEL, t, key, keylen, &kv);
}

int
trustdb_get_grey(struct trustdb *db, const char *key, size_t keylen,
    struct grey_rec *r)
{
	return rec_get(db, TRUSTDB_GREY, key, keylen, r);
}

int
trustdb_put_grey(struct trustdb *db, const char *key, size_t keylen,
    const struct grey_rec *r)
{
	return rec_put(db, TRUSTDB_GREY, key, keylen, r);
}

int
trustdb_del_grey(struct trustdb *db, const char *key, size_t keylen)
{
	return rec_del(db, TRUSTDB_GREY, key, keylen);
}

int
trustdb_get_white(struct trustdb *db, const char *key, struct white_rec *r)
{
	return rec_get(db, TRUSTDB_WHITE, key, strlen(key), r);
}

int
trustdb_del_white(struct trustdb *db, const char *key)
{
	return rec_del(db, TRUSTDB_WHITE, key, strlen(key));
}

int
trustdb_get_client(struct trustdb *db, const char *addr, struct client_rec *r)
{
	return rec_get(db, TRUSTDB_CLIENT, addr, strlen(addr), r);
}

int
trustdb_put_client(struct trustdb *db, const char *addr,
    const struct client_rec *r)
{
	return rec_put(db, TRUSTDB_CLIENT, addr, strlen(addr), r);
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

int
trustdb_get_trap(struct trustdb *db, const char *addr, struct trap_rec *r)
{
	return rec_get(db, TRUSTDB_TRAP, addr, strlen(addr), r);
}

int
trustdb_put_trap(struct trustdb *db, const char *addr,
    const struct trap_rec *r)
{
	return rec_put(db, TRUSTDB_TRAP, addr, strlen(addr), r);
}

int
trustdb_del_trap(struct trustdb *db, const char *addr)
{
	return rec_del(db, TRUSTDB_TRAP, addr, strlen(addr));
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
	return rec_get(db, TRUSTDB_SPAMTRAP, addr, strlen(addr), r);
}

int
trustdb_put_spamtrap(struct trustdb *db, const char *addr,
    const struct spamtrap_rec *r)
{
	return rec_put(db, TRUSTDB_SPAMTRAP, addr, strlen(addr), r);
}

int
trustdb_del_spamtrap(struct trustdb *db, const char *addr)
{
	return rec_del(db, TRUSTDB_SPAMTRAP, addr, strlen(addr));
}

int
trustdb_get_rcpt(struct trustdb *db, const char *key, struct rcpt_rec *r)
{
	return rec_get(db, TRUSTDB_RCPT, key, strlen(key), r);
}

int
trustdb_put_rcpt(struct trustdb *db, const char *key,
    const struct rcpt_rec *r)
{
	return rec_put(db, TRUSTDB_RCPT, key, strlen(key), r);
}

int
trustdb_del_rcpt(struct trustdb *db, const char *key)
{
	return rec_del(db, TRUSTDB_RCPT, key, strlen(key));
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
