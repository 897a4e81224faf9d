/*
 * trust.c — the trust layer (see trust.h): the single writer of grey,
 * white, trap and spamtrap records and of the client counters, greyd's
 * greylist decision stored, and the database's expiry and checkpoint
 * timers.
 *
 * trust_put and trust_del are the only functions here that write; every
 * other one decides what to write (with greylist.c's pure rules) and goes
 * through them.  Write errors are logged by trustdb.c; the callers of the
 * decision functions learn of them only where the answer to the client
 * depends on it (a grey record that cannot be read).
 */
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "server.h"
#include "trust.h"

struct trust {
	struct trustdb *db;
};

struct trust *
trust_new(struct trustdb *db)
{
	struct trust *t = calloc(1, sizeof(*t));

	if (t != NULL)
		t->db = db;
	return t;
}

void
trust_free(struct trust *t)
{
	free(t);
}

struct trustdb *
trust_db(const struct trust *t)
{
	return t->db;
}

/* ---- the gate ---- */

int
trust_put(struct trust *t, enum trustdb_table table, const char *key,
    size_t keylen, const void *rec)
{
	switch (table) {
	case TRUSTDB_GREY:
		return trustdb_put_grey(t->db, key, keylen, rec);
	case TRUSTDB_WHITE:
		return trustdb_put_white(t->db, key, rec);
	case TRUSTDB_CLIENT:
		return trustdb_put_client(t->db, key, rec);
	case TRUSTDB_TRAP:
		return trustdb_put_trap(t->db, key, rec);
	case TRUSTDB_SPAMTRAP:
		return trustdb_put_spamtrap(t->db, key, rec);
	case TRUSTDB_RCPT:
		return trustdb_put_rcpt(t->db, key, rec);
	}
	return -1;
}

int
trust_del(struct trust *t, enum trustdb_table table, const char *key,
    size_t keylen)
{
	switch (table) {
	case TRUSTDB_GREY:
		return trustdb_del_grey(t->db, key, keylen);
	case TRUSTDB_WHITE:
		return trustdb_del_white(t->db, key);
	case TRUSTDB_TRAP:
		return trustdb_del_trap(t->db, key);
	case TRUSTDB_SPAMTRAP:
		return trustdb_del_spamtrap(t->db, key);
	case TRUSTDB_RCPT:
		return trustdb_del_rcpt(t->db, key);
	case TRUSTDB_CLIENT:
		break;		/* client records only expire */
	}
	return -1;
}

/* ---- greyd's decisions ---- */

int
trust_greylist(struct trust *t, const struct greyd_conf *c, const char *ckey,
    const char *tkey, size_t klen, int min_delay, int64_t now,
    struct trust_grey *g)
{
	struct white_rec w;
	int rc;

	memset(g, 0, sizeof(*g));
	if ((rc = trustdb_get_grey(t->db, tkey, klen, &g->old)) < 0)
		return -1;
	g->had = rc == 0;
	g->verdict = greylist_decide_min(c, g->had ? &g->old : NULL, now,
	    min_delay, &g->rec, &g->wait);
	if (g->verdict != GREYLIST_PASS) {
		(void)trust_put(t, TRUSTDB_GREY, tkey, klen, &g->rec);
		return 0;
	}
	greylist_white_pass(c, trustdb_get_white(t->db, ckey, &w) == 0 ? &w :
	    NULL, now, &g->white);
	(void)trust_put(t, TRUSTDB_WHITE, ckey, strlen(ckey), &g->white);
	if (g->had)
		(void)trust_del(t, TRUSTDB_GREY, tkey, klen);
	return 0;
}

void
trust_delivered(struct trust *t, const struct greyd_conf *c,
    const struct netaddr *a, int64_t now)
{
	char key[NETADDR_STRLEN];
	struct white_rec w;

	if (trustdb_find_white(t->db, a, now,
	    (uint32_t)c->auto_whitelist_after, key, sizeof(key), &w) != 0)
		return;
	greylist_white_refresh(c, &w, now);
	if (w.messages < UINT32_MAX)
		w.messages++;
	(void)trust_put(t, TRUSTDB_WHITE, key, strlen(key), &w);
}

void
trust_white_seen(struct trust *t, const struct greyd_conf *c, const char *key,
    const struct white_rec *w, int64_t now)
{
	struct white_rec upd = *w;

	if (now - w->last_seen < c->white_refresh_interval)
		return;
	greylist_white_refresh(c, &upd, now);
	(void)trust_put(t, TRUSTDB_WHITE, key, strlen(key), &upd);
}

int
trust_trap(struct trust *t, const struct greyd_conf *c, const char *addr,
    enum trap_reason why, int64_t now)
{
	const struct trap_rec r = {
		.trapped_at = now,
		.expire = now + c->trap_expiry,
		.reason = (uint8_t)why,
	};

	return trust_put(t, TRUSTDB_TRAP, addr, strlen(addr), &r);
}

int
trust_client(struct trust *t, const char *addr, int64_t now,
    const struct client_rec *add)
{
	return trustdb_add_client(t->db, addr, now, add);
}

/* ---- maintenance ---- */

static void
trust_expire_cb(void *arg)
{
	struct trust *t = arg;
	const struct greyd_conf *c = conf_current();
	int n = trustdb_expire_step(t->db, clock_now(), c->db_expire_batch,
	    c->client_record_expiry);

	if (n > 0)
		log_debug("expired %d trust database records", n);
}

static void
trust_checkpoint_cb(void *arg)
{
	struct trust *t = arg;

	(void)trustdb_checkpoint(t->db);
}

int
trust_maintain(struct trust *t, struct server *srv,
    const struct greyd_conf *c)
{
	if (server_every(srv, c->db_expire_interval, trust_expire_cb, t) != 0 ||
	    server_every(srv, c->db_checkpoint_interval, trust_checkpoint_cb,
	    t) != 0)
		return -1;
	return 0;
}
