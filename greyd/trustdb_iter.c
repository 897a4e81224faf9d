/*
 * trustdb_iter.c — whole-table walks of the trust database (see trustdb.h):
 * iteration, batched expiry, the purge of map records after a map load,
 * and record counts.
 *
 * Iteration reads TRUSTDB_ITER_BATCH records per short read-committed
 * transaction and calls the callback with no lock held, so a slow reader
 * (greydb list | less) never blocks greyd.  Expiry examines a bounded batch
 * per call in one transaction, continuing after the last key it examined
 * (kept in struct trustdb); when a record expires is record_expiry's
 * answer, with the client TTL its caller passes.  Both skip the white
 * database's prefix-length record and values record_decode refuses;
 * expiry leaves such values alone, and deletes keys longer than this
 * module ever writes.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "record.h"
#include "trustdb_impl.h"

#define TRUSTDB_ITER_BATCH	128

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

	if (trustdb_is_meta_key(st->table, k->data, k->size))
		return false;
	it->e.table = st->table;
	memcpy(it->key, k->data, k->size);
	it->key[k->size] = '\0';
	it->keylen = k->size;
	if (record_decode(st->table, v->data, v->size, &it->e.v) == -1) {
		trustdb_warn_bad_record(st->table, it->key, it->keylen);
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
			    record_name(st->table), k->size);
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
	if ((e->table == TRUSTDB_RCPT ? trustdb_del_rcpt(pa->db, e->key) :
	    trustdb_del_spamtrap(pa->db, e->key)) < 0)
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
		    table_ok("purge", table) ? record_name(table) : "?");
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

/* Has the stored value v expired?  Not if it cannot be decoded. */
static bool
value_expired(const struct expire_walk *w, const DBT *v)
{
	union record r;

	return record_decode(w->table, v->data, v->size, &r) == 0 &&
	    record_expiry(w->table, &r, w->client_ttl) <= w->now;
}

/* Examine one record under the cursor; delete it if it has expired. */
static int
expire_record(struct expire_walk *w, DBC *c, const DBT *k, const DBT *v)
{
	int ret;

	w->examined++;
	if (k->size <= TRUSTDB_KEY_MAX) {
		memcpy(w->key, k->data, k->size);
		w->keylen = k->size;
		w->started = true;
		if (trustdb_is_meta_key(w->table, k->data, k->size) ||
		    !value_expired(w, v))
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

/* ---- counts ---- */

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
	struct trustdb_kv meta = {
		.table = TRUSTDB_WHITE, .key = TRUSTDB_META_KEY,
		.keylen = TRUSTDB_META_KEYLEN,
	};
	int ret;

	if ((ret = d->stat(d, txn, &sp, DB_READ_COMMITTED)) != 0)
		return ret;
	ca->count = (long)sp->bt_nkeys;
	free(sp);
	if (ca->table != TRUSTDB_WHITE)
		return 0;
	if ((ret = trustdb_kv_get(db, txn, &meta)) == 0)
		ca->count--;
	return ret == DB_NOTFOUND ? 0 : ret;
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
