/*
 * trustdb_white.c — the white database of the trust database (see
 * trustdb.h): trustdb_put_white, which keeps the prefix-length bitmap, and
 * trustdb_find_white, the lookup of a client address under every prefix
 * length stored.
 *
 * White keys must be canonical ("192.0.2.0/24" as netaddr_key writes it),
 * or trustdb_find_white could never match them: put_white refuses others.
 *
 * Prefix lengths.  The white database also holds TRUSTDB_META_KEY, a bitmap
 * of the prefix lengths ever stored (0..32 for IPv4, 0..128 for IPv6),
 * updated in the same transaction as every put_white:
 *
 *   v=1 IPv4 bits:17 IPv6 bits:17    (bit n of the 17 octets: prefix n)
 *
 * find_white reads it and looks up the client address masked to each of
 * those lengths, longest first.  Iteration and expiry never show or delete
 * it, and single-record calls refuse its key.  An unreadable bitmap counts
 * as "every length" (slower, still correct).
 */
#include <string.h>

#include "log.h"
#include "netaddr.h"
#include "record.h"
#include "trustdb_impl.h"

#define META_VERSION		1
#define PREFIX_BITMAP_BYTES	17		/* bits for prefix 0..128 */
#define META_REC_SIZE		(1 + 2 * PREFIX_BITMAP_BYTES)
_Static_assert(META_REC_SIZE <= TRUSTDB_VAL_MAX, "the bitmap fits a value");

/* Prefix lengths present in the white database, per address family. */
struct prefix_bitmap {
	uint8_t bits[2][PREFIX_BITMAP_BYTES];	/* [0] IPv4, [1] IPv6 */
};

bool
trustdb_is_meta_key(enum trustdb_table t, const void *key, size_t keylen)
{
	return t == TRUSTDB_WHITE && keylen == TRUSTDB_META_KEYLEN &&
	    memcmp(key, TRUSTDB_META_KEY, keylen) == 0;
}

/* ---- the prefix-length bitmap ---- */

static size_t
bitmap_encode(const struct prefix_bitmap *m, uint8_t *buf)
{
	buf[0] = META_VERSION;
	memcpy(buf + 1, m->bits, sizeof(m->bits));
	return META_REC_SIZE;
}

static int
bitmap_decode(const void *data, size_t size, struct prefix_bitmap *m)
{
	if (size != META_REC_SIZE ||
	    ((const uint8_t *)data)[0] != META_VERSION)
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

static void
meta_kv(struct trustdb_kv *kv, u_int32_t flags)
{
	kv->table = TRUSTDB_WHITE;
	kv->key = TRUSTDB_META_KEY;
	kv->keylen = TRUSTDB_META_KEYLEN;
	kv->flags = flags;
}

/* Read the bitmap (flags DB_RMW in a transaction that will update it). */
static int
bitmap_get(struct trustdb *db, DB_TXN *txn, u_int32_t flags,
    struct prefix_bitmap *m)
{
	struct trustdb_kv kv;
	int ret;

	meta_kv(&kv, flags);
	memset(m, 0, sizeof(*m));
	ret = trustdb_kv_get(db, txn, &kv);
	if (ret == DB_NOTFOUND)
		return 0;
	if (ret == 0 && bitmap_decode(kv.val, kv.vallen, m) == -1) {
		trustdb_warn_bad_record(TRUSTDB_WHITE, TRUSTDB_META_KEY,
		    TRUSTDB_META_KEYLEN);
		memset(m, 0xff, sizeof(*m));
	}
	return ret;
}

/* ---- put ---- */

struct white_put {
	struct trustdb_kv rec;
	int fam, prefix;
};

static int
white_put_fn(struct trustdb *db, DB_TXN *txn, void *arg)
{
	struct white_put *wp = arg;
	struct prefix_bitmap m;
	struct trustdb_kv meta;
	int ret;

	if ((ret = bitmap_get(db, txn, DB_RMW, &m)) != 0)
		return ret;
	if (!bitmap_test(&m, wp->fam, wp->prefix)) {
		bitmap_set(&m, wp->fam, wp->prefix);
		meta_kv(&meta, 0);
		meta.vallen = bitmap_encode(&m, meta.val);
		if ((ret = trustdb_kv_put(db, txn, &meta)) != 0)
			return ret;
	}
	return trustdb_kv_put(db, txn, &wp->rec);
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
	wp.rec.vallen = record_encode(TRUSTDB_WHITE, r, wp.rec.val,
	    sizeof(wp.rec.val));
	return trustdb_run(db, "put white", true, white_put_fn, &wp);
}

/* ---- find ---- */

struct white_find {
	const struct netaddr *addr;
	int64_t now;
	uint32_t min_passes;
	char key[NETADDR_STRLEN];
	struct white_rec rec;
};

/* Does the white key wf->key hold a live record?  0, DB_NOTFOUND or an
 * error. */
static int
white_find_one(struct trustdb *db, DB_TXN *txn, struct white_find *wf)
{
	struct trustdb_kv kv = {
		.table = TRUSTDB_WHITE, .key = wf->key,
		.keylen = strlen(wf->key),
	};
	int ret;

	if ((ret = trustdb_kv_get(db, txn, &kv)) != 0)
		return ret;
	if (record_decode(TRUSTDB_WHITE, kv.val, kv.vallen, &wf->rec) == -1) {
		trustdb_warn_bad_record(TRUSTDB_WHITE, wf->key, kv.keylen);
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
