/*
 * t/unit/trust.c — greyd/trust.c against a real Berkeley DB environment in
 * a temporary directory: the greylist decision as stored (new, early,
 * pass: the client key whitelisted and the triplet forgotten, a minimum
 * delay), a delivery refreshing the white entry that covers the client,
 * the fast path's refresh at most once per white_refresh_interval, traps,
 * and the gate (trust_put / trust_del) for every table.
 */
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "greylist.h"
#include "trust.h"

#define NOW	1795000000LL

struct fixture {
	char dir[64];
	struct greyd_conf c;
	struct trustdb *db;
	struct trust *t;
};

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int
setup(void **state)
{
	static struct fixture fx;
	const char *ov[] = { "greylist_delay=300s", "white_refresh_interval=60s",
	    "greylist_ipv4_prefix=24", NULL };
	char err[CONF_ERRLEN];

	memset(&fx, 0, sizeof(fx));
	strcpy(fx.dir, "/tmp/greyd-trust.XXXXXX");
	if (mkdtemp(fx.dir) == NULL ||
	    conf_load(&fx.c, NULL, ov, err, sizeof(err)) != 0 ||
	    (fx.db = trustdb_open(fx.dir, err, sizeof(err))) == NULL ||
	    (fx.t = trust_new(fx.db)) == NULL) {
		fprintf(stderr, "# setup: %s\n", err);
		return -1;
	}
	*state = &fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *fx = *state;

	trust_free(fx->t);
	trustdb_close(fx->db);
	conf_free(&fx->c);
	return nftw(fx->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static size_t
triplet(char *buf, size_t len, const char *ckey)
{
	return greylist_triplet_key(buf, len, ckey, "alice@example.org",
	    "bob@example.com");
}

static void
test_greylist_new_early_pass(void **state)
{
	struct fixture *fx = *state;
	char tkey[TRUSTDB_KEY_MAX];
	size_t klen = triplet(tkey, sizeof(tkey), "192.0.2.0/24");
	struct trust_grey g;
	struct grey_rec r;
	struct white_rec w;

	assert_true(klen > 0);
	assert_int_equal(trust_greylist(fx->t, &fx->c, "192.0.2.0/24", tkey,
	    klen, 0, NOW, &g), 0);
	assert_int_equal(g.verdict, GREYLIST_NEW);
	assert_false(g.had);
	assert_int_equal(g.wait, 300);
	assert_int_equal(trustdb_get_grey(fx->db, tkey, klen, &r), 0);
	assert_int_equal(r.first_seen, NOW);
	assert_int_equal(r.attempts, 1);

	assert_int_equal(trust_greylist(fx->t, &fx->c, "192.0.2.0/24", tkey,
	    klen, 0, NOW + 100, &g), 0);
	assert_int_equal(g.verdict, GREYLIST_EARLY);
	assert_true(g.had);
	assert_int_equal(g.wait, 200);
	assert_int_equal(g.rec.attempts, 2);
	assert_int_equal(trustdb_get_white(fx->db, "192.0.2.0/24", &w),
	    TRUSTDB_NOTFOUND);

	assert_int_equal(trust_greylist(fx->t, &fx->c, "192.0.2.0/24", tkey,
	    klen, 0, NOW + 301, &g), 0);
	assert_int_equal(g.verdict, GREYLIST_PASS);
	assert_int_equal(g.old.first_seen, NOW);
	assert_int_equal(g.white.passes, 1);
	assert_int_equal(trustdb_get_white(fx->db, "192.0.2.0/24", &w), 0);
	assert_int_equal(w.passes, 1);
	assert_int_equal(w.expire, NOW + 301 + fx->c.white_expiry);
	/* the triplet is forgotten */
	assert_int_equal(trustdb_get_grey(fx->db, tkey, klen, &r),
	    TRUSTDB_NOTFOUND);
}

/* dnsbl_greylist_delay: a triplet made with the ordinary delay waits on. */
static void
test_greylist_min_delay(void **state)
{
	struct fixture *fx = *state;
	char tkey[TRUSTDB_KEY_MAX];
	size_t klen = triplet(tkey, sizeof(tkey), "198.51.100.0/24");
	struct trust_grey g;

	assert_int_equal(trust_greylist(fx->t, &fx->c, "198.51.100.0/24", tkey,
	    klen, 0, NOW, &g), 0);
	assert_int_equal(trust_greylist(fx->t, &fx->c, "198.51.100.0/24", tkey,
	    klen, 1800, NOW + 400, &g), 0);
	assert_int_equal(g.verdict, GREYLIST_EARLY);
	assert_int_equal(g.wait, 1400);
}

static void
test_delivered_and_seen(void **state)
{
	struct fixture *fx = *state;
	struct white_rec w = { .first_seen = NOW, .last_seen = NOW,
	    .expire = NOW + 100, .passes = 1, .origin = WHITE_LOCAL };
	struct white_rec got;
	struct netaddr a;

	assert_int_equal(trust_put(fx->t, TRUSTDB_WHITE, "203.0.113.0/24", 14,
	    &w), 0);
	assert_int_equal(netaddr_parse(&a, "203.0.113.9"), 0);
	trust_delivered(fx->t, &fx->c, &a, NOW + 10);
	assert_int_equal(trustdb_get_white(fx->db, "203.0.113.0/24", &got), 0);
	assert_int_equal(got.messages, 1);
	assert_int_equal(got.last_seen, NOW + 10);
	assert_int_equal(got.expire, NOW + 10 + fx->c.white_expiry);

	/* the fast path: within the interval nothing is written */
	trust_white_seen(fx->t, &fx->c, "203.0.113.0/24", &got, NOW + 69);
	assert_int_equal(trustdb_get_white(fx->db, "203.0.113.0/24", &w), 0);
	assert_int_equal(w.last_seen, NOW + 10);
	trust_white_seen(fx->t, &fx->c, "203.0.113.0/24", &got, NOW + 70);
	assert_int_equal(trustdb_get_white(fx->db, "203.0.113.0/24", &w), 0);
	assert_int_equal(w.last_seen, NOW + 70);
	assert_int_equal(w.messages, 1);

	/* nothing covers this one: no entry made */
	assert_int_equal(netaddr_parse(&a, "203.0.114.9"), 0);
	trust_delivered(fx->t, &fx->c, &a, NOW);
	assert_int_equal(trustdb_get_white(fx->db, "203.0.114.0/24", &w),
	    TRUSTDB_NOTFOUND);
}

static void
test_trap_and_gate(void **state)
{
	struct fixture *fx = *state;
	struct trap_rec t;
	struct spamtrap_rec st = { .added = NOW, .origin = ORIGIN_ADMIN };
	struct client_rec add = { .connections = 2, .rejected = 1 }, cr;

	assert_int_equal(trust_trap(fx->t, &fx->c, "192.0.2.66", TRAP_SPAMTRAP,
	    NOW), 0);
	assert_int_equal(trustdb_get_trap(fx->db, "192.0.2.66", &t), 0);
	assert_int_equal(t.expire, NOW + fx->c.trap_expiry);
	assert_int_equal(t.reason, TRAP_SPAMTRAP);
	assert_int_equal(trust_del(fx->t, TRUSTDB_TRAP, "192.0.2.66", 10), 0);
	assert_int_equal(trustdb_get_trap(fx->db, "192.0.2.66", &t),
	    TRUSTDB_NOTFOUND);
	assert_int_equal(trust_del(fx->t, TRUSTDB_TRAP, "192.0.2.66", 10),
	    TRUSTDB_NOTFOUND);

	assert_int_equal(trust_put(fx->t, TRUSTDB_SPAMTRAP, "trap@example.com",
	    16, &st), 0);
	assert_int_equal(trust_del(fx->t, TRUSTDB_SPAMTRAP, "trap@example.com",
	    16), 0);
	/* a white key must be canonical */
	assert_int_equal(trust_put(fx->t, TRUSTDB_WHITE, "192.0.2.7/24", 12,
	    &(struct white_rec){ .expire = NOW }), -1);
	/* client records: counters add up; they are never deleted */
	assert_int_equal(trust_client(fx->t, "192.0.2.8", NOW, &add), 0);
	assert_int_equal(trust_client(fx->t, "192.0.2.8", NOW + 1, &add), 0);
	assert_int_equal(trustdb_get_client(fx->db, "192.0.2.8", &cr), 0);
	assert_int_equal(cr.connections, 4);
	assert_int_equal(cr.last_seen, NOW + 1);
	assert_int_equal(trust_del(fx->t, TRUSTDB_CLIENT, "192.0.2.8", 9), -1);
	assert_ptr_equal(trust_db(fx->t), fx->db);
}

#define T(name)	cmocka_unit_test_setup_teardown(name, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_greylist_new_early_pass),
		T(test_greylist_min_delay),
		T(test_delivered_and_seen),
		T(test_trap_and_gate),
	};

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
