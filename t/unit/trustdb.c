/*
 * t/unit/trustdb.c — unit tests of the trust database (greyd/trustdb.c,
 * trustdb_white.c, trustdb_iter.c) against a real Berkeley DB environment
 * in a temporary directory (one subdirectory per test).  The record
 * encoding itself is tested in t/unit/record.c.
 *
 * Covers: get/put/del of every table, grey keys with inner NULs, white
 * lookups by prefix length (/32, /24, /16, IPv6 /64) and expiry,
 * auto_whitelist_after (find_white's min_passes), the trap, spamtrap and
 * rcpt tables (find_trap at its expiry; which of their records expiry
 * removes; purge of stale map records), client records of version 2
 * (rejected_by, greet_pass_until, the merge of trustdb_add_client) and of
 * version 1 (written raw in the old 37-octet layout: still read, and
 * rewritten as version 2 by the next update), batched
 * expiry across calls, batched iteration, counts, reopening, a second
 * process writing while the first has the environment open (greyd and
 * greydb), a record with an unknown version and an unreadable prefix
 * bitmap, a lock held by another process (the caller gets -1 quickly
 * instead of waiting) or by one that died mid-transaction (freed within
 * the call), a process killed without closing (kill -9: everything
 * committed survives and db5.3_verify accepts every file), and a recovery
 * run by another process under an open handle (the handle rejoins).
 *
 * Child processes report through their exit status; the helpers they share
 * with the tests only assert on conditions that cannot fail there.
 */
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>

#include <ftw.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <db.h>

#include "evloop.h"
#include "log.h"
#include "netaddr.h"
#include "trustdb.h"

#define NOW	1795000000LL	/* 2026-11-18 */
#define DAY	86400LL
#define CLIENT_TTL	(90 * 86400)	/* client_record_expiry's default */

struct fixture {
	char root[64];		/* the mkdtemp directory */
	char dir[PATH_MAX];	/* this test's db_dir */
	int seq;
};

/*
 * Closing an environment that another process's recovery has panicked
 * (test_recovery_under_running_handle) leaves about 17 KB that Berkeley DB
 * allocated at open time unfreed; libdb has no frame pointers, so only the
 * library can be named.  Read by LeakSanitizer in the sanitizer build.
 */
const char *__lsan_default_suppressions(void);

const char *
__lsan_default_suppressions(void)
{
	return "leak:libdb-5.3.so\n";
}

/* ---- helpers ---- */

static struct trustdb *
open_db(const char *dir)
{
	char err[256] = "";
	struct trustdb *db = trustdb_open(dir, err, sizeof(err));

	if (db == NULL)
		fail_msg("trustdb_open %s: %s", dir, err);
	return db;
}

static struct grey_rec
grey_make(int64_t first, int64_t expire, uint32_t attempts)
{
	struct grey_rec r = {
		.first_seen = first, .last_seen = first + 10,
		.pass_after = first + 300, .expire = expire,
		    .attempts = attempts,
	};

	return r;
}

static struct white_rec
white_make(int64_t expire, uint8_t origin)
{
	struct white_rec r = {
		.first_seen = NOW - DAY, .last_seen = NOW, .expire = expire,
		.passes = 2, .messages = 7, .origin = origin,
	};

	return r;
}

static void
assert_grey_equal(const struct grey_rec *a, const struct grey_rec *b)
{
	assert_int_equal(a->first_seen, b->first_seen);
	assert_int_equal(a->last_seen, b->last_seen);
	assert_int_equal(a->pass_after, b->pass_after);
	assert_int_equal(a->expire, b->expire);
	assert_int_equal(a->attempts, b->attempts);
}

static void
assert_white_equal(const struct white_rec *a, const struct white_rec *b)
{
	assert_int_equal(a->first_seen, b->first_seen);
	assert_int_equal(a->last_seen, b->last_seen);
	assert_int_equal(a->expire, b->expire);
	assert_int_equal(a->passes, b->passes);
	assert_int_equal(a->messages, b->messages);
	assert_int_equal(a->origin, b->origin);
}

static void
assert_client_equal(const struct client_rec *a, const struct client_rec *b)
{
	assert_int_equal(a->first_seen, b->first_seen);
	assert_int_equal(a->last_seen, b->last_seen);
	assert_int_equal(a->connections, b->connections);
	assert_int_equal(a->greylisted, b->greylisted);
	assert_int_equal(a->passed, b->passed);
	assert_int_equal(a->delivered, b->delivered);
	assert_int_equal(a->rejected, b->rejected);
	assert_int_equal(a->trapped, b->trapped);
	assert_int_equal(a->greet_pass_until, b->greet_pass_until);
	assert_memory_equal(a->rejected_by, b->rejected_by,
	    sizeof(a->rejected_by));
}

static size_t
triplet(char *buf, size_t len, const char *client, const char *from,
    const char *to)
{
	int n = snprintf(buf, len, "%s%c%s%c%s", client, '\0', from, '\0', to);

	assert_true(n > 0 && (size_t)n < len);
	return (size_t)n;
}

static int
find4(struct trustdb *db, const char *addr, int64_t now, char *key,
    size_t keylen)
{
	struct netaddr a;

	assert_int_equal(netaddr_parse(&a, addr), 0);
	return trustdb_find_white(db, &a, now, 0, key, keylen, NULL);
}

static int
count_cb(const struct trustdb_entry *e, void *arg)
{
	(*(long *)arg)++;
	return 0;
}

static long
count_iter(struct trustdb *db, enum trustdb_table t)
{
	long n = 0;

	assert_int_equal(trustdb_iterate(db, t, count_cb, &n), 0);
	return n;
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

/* ---- fixture: one temp root per run, one db_dir per test ---- */

static int
group_setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	strcpy(f->root, "/tmp/greyd-trustdb.XXXXXX");
	if (mkdtemp(f->root) == NULL)
		return -1;
	*state = f;
	return 0;
}

static int
group_teardown(void **state)
{
	struct fixture *f = *state;
	int ret = nftw(f->root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);

	free(f);
	return ret;
}

static int
test_setup(void **state)
{
	struct fixture *f = *state;

	snprintf(f->dir, sizeof(f->dir), "%s/db%d", f->root, ++f->seq);
	return 0;
}

/* ---- tests ---- */

static void
test_open_errors(void **state)
{
	struct fixture *f = *state;
	char path[PATH_MAX], err[256] = "";
	FILE *fp;

	snprintf(path, sizeof(path), "%s/missing/deeper", f->root);
	assert_null(trustdb_open(path, err, sizeof(err)));
	assert_non_null(strstr(err, "db_dir "));
	assert_non_null(strstr(err, "No such file or directory"));

	snprintf(path, sizeof(path), "%s/plainfile", f->root);
	assert_non_null(fp = fopen(path, "w"));
	fclose(fp);
	assert_null(trustdb_open(path, err, sizeof(err)));
	assert_non_null(strstr(err, "Not a directory"));
}

static void
test_creates_dir(void **state)
{
	struct fixture *f = *state;
	struct trustdb *db = open_db(f->dir);
	struct stat st;

	assert_int_equal(stat(f->dir, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0700);
	trustdb_close(db);
}

static void
test_grey(void **state)
{
	struct fixture *f = *state;
	struct trustdb *db = open_db(f->dir);
	struct grey_rec in = grey_make(NOW, NOW + 4 * 3600, 3), out;
	char k1[TRUSTDB_KEY_MAX], k2[TRUSTDB_KEY_MAX], k3[TRUSTDB_KEY_MAX];
	size_t l1 = triplet(k1, sizeof(k1), "192.0.2.0/24", "a@b.example",
	    "c@d.example");
	size_t l2 = triplet(k2, sizeof(k2), "192.0.2.0/24", "a@b.example",
	    "c@d.exampl");
	size_t l3 = triplet(k3, sizeof(k3), "192.0.2.0/24", "", "c@d.example");

	in.pass_after = -5;	/* signs survive the encoding */
	assert_int_equal(trustdb_get_grey(db, k1, l1, &out), TRUSTDB_NOTFOUND);
	assert_int_equal(trustdb_put_grey(db, k1, l1, &in), 0);
	assert_int_equal(trustdb_get_grey(db, k1, l1, &out), 0);
	assert_grey_equal(&in, &out);
	/* keys that differ only after an inner NUL, or by length */
	assert_int_equal(trustdb_get_grey(db, k2, l2, &out), TRUSTDB_NOTFOUND);
	assert_int_equal(trustdb_get_grey(db, k3, l3, &out), TRUSTDB_NOTFOUND);
	in.attempts = 9;
	assert_int_equal(trustdb_put_grey(db, k3, l3, &in), 0);
	assert_int_equal(trustdb_get_grey(db, k3, l3, &out), 0);
	assert_int_equal(out.attempts, 9);
	assert_int_equal(trustdb_get_grey(db, k1, l1, &out), 0);
	assert_int_equal(out.attempts, 3);
	assert_int_equal(count_iter(db, TRUSTDB_GREY), 2);

	assert_int_equal(trustdb_del_grey(db, k1, l1), 0);
	assert_int_equal(trustdb_del_grey(db, k1, l1), TRUSTDB_NOTFOUND);
	assert_int_equal(trustdb_get_grey(db, k1, l1, &out), TRUSTDB_NOTFOUND);
	assert_int_equal(trustdb_get_grey(db, k3, l3, &out), 0);
	/* bad key lengths are errors, not crashes */
	assert_int_equal(trustdb_put_grey(db, k1, 0, &in), -1);
	assert_int_equal(trustdb_put_grey(db, k1, TRUSTDB_KEY_MAX + 1, &in),
	    -1);
	trustdb_close(db);
}

static void
test_white(void **state)
{
	struct fixture *f = *state;
	struct trustdb *db = open_db(f->dir);
	struct white_rec in = white_make(NOW + DAY, WHITE_PEER), out;
	long n;

	assert_int_equal(trustdb_get_white(db, "192.0.2.0/24", &out),
	    TRUSTDB_NOTFOUND);
	assert_int_equal(trustdb_put_white(db, "192.0.2.0/24", &in), 0);
	assert_int_equal(trustdb_get_white(db, "192.0.2.0/24", &out), 0);
	assert_white_equal(&in, &out);
	in.messages = 8;
	assert_int_equal(trustdb_put_white(db, "192.0.2.0/24", &in), 0);
	assert_int_equal(trustdb_get_white(db, "192.0.2.0/24", &out), 0);
	assert_int_equal(out.messages, 8);
	assert_int_equal(out.origin, WHITE_PEER);
	/* keys find_white could never match are refused */
	assert_int_equal(trustdb_put_white(db, "192.0.2.7/24", &in), -1);
	assert_int_equal(trustdb_put_white(db, "192.0.2.7", &in), -1);
	assert_int_equal(trustdb_put_white(db, "example.org", &in), -1);
	assert_int_equal(trustdb_put_white(db, "#prefixlens", &in), -1);
	/* the prefix-length record is not a white entry */
	assert_int_equal(trustdb_get_white(db, "#prefixlens", &out), -1);
	assert_int_equal(count_iter(db, TRUSTDB_WHITE), 1);
	assert_int_equal(trustdb_count(db, TRUSTDB_WHITE, &n), 0);
	assert_int_equal(n, 1);

	assert_int_equal(trustdb_del_white(db, "192.0.2.0/24"), 0);
	assert_int_equal(trustdb_del_white(db, "192.0.2.0/24"),
	    TRUSTDB_NOTFOUND);
	assert_int_equal(trustdb_get_white(db, "192.0.2.0/24", &out),
	    TRUSTDB_NOTFOUND);
	assert_int_equal(trustdb_count(db, TRUSTDB_WHITE, &n), 0);
	assert_int_equal(n, 0);
	trustdb_close(db);
}

static void
test_client(void **state)
{
	struct fixture *f = *state;
	struct trustdb *db = open_db(f->dir);
	struct client_rec in = {
		.first_seen = NOW - 5, .last_seen = NOW,
		    .connections = 4000000000u,
		.greylisted = 2, .passed = 3, .delivered = 4, .rejected = 5,
	}, out;
	long n;

	assert_int_equal(trustdb_get_client(db, "2001:db8::7", &out),
	    TRUSTDB_NOTFOUND);
	assert_int_equal(trustdb_put_client(db, "2001:db8::7", &in), 0);
	assert_int_equal(trustdb_put_client(db, "192.0.2.7", &in), 0);
	assert_int_equal(trustdb_get_client(db, "2001:db8::7", &out), 0);
	assert_client_equal(&in, &out);
	in.rejected = 6;
	assert_int_equal(trustdb_put_client(db, "192.0.2.7", &in), 0);
	assert_int_equal(trustdb_get_client(db, "192.0.2.7", &out), 0);
	assert_int_equal(out.rejected, 6);
	assert_int_equal(trustdb_count(db, TRUSTDB_CLIENT, &n), 0);
	assert_int_equal(n, 2);
	trustdb_close(db);
}

static void
test_find_white(void **state)
{
	struct fixture *f = *state;
	struct trustdb *db = open_db(f->dir);
	struct white_rec live = white_make(NOW + DAY, WHITE_LOCAL);
	struct white_rec dead = white_make(NOW, WHITE_LOCAL);
	struct white_rec out;
	struct netaddr a;
	char key[NETADDR_STRLEN];

	assert_int_equal(find4(db, "192.0.2.7", NOW, key, sizeof(key)),
	    TRUSTDB_NOTFOUND);
	assert_int_equal(trustdb_put_white(db, "192.0.2.0/24", &live), 0);
	live.origin = WHITE_ADMIN;
	assert_int_equal(trustdb_put_white(db, "192.0.2.7/32", &live), 0);
	assert_int_equal(trustdb_put_white(db, "192.0.2.99/32", &dead), 0);
	assert_int_equal(trustdb_put_white(db, "198.51.0.0/16", &live), 0);
	assert_int_equal(trustdb_put_white(db, "203.0.113.9/32", &dead), 0);
	assert_int_equal(trustdb_put_white(db, "2001:db8:1:2::/64", &live), 0);

	/* longest prefix first */
	assert_int_equal(find4(db, "192.0.2.7", NOW, key, sizeof(key)), 0);
	assert_string_equal(key, "192.0.2.7/32");
	assert_int_equal(find4(db, "192.0.2.8", NOW, key, sizeof(key)), 0);
	assert_string_equal(key, "192.0.2.0/24");
	/* an expired /32 does not hide the live /24 */
	assert_int_equal(find4(db, "192.0.2.99", NOW, key, sizeof(key)), 0);
	assert_string_equal(key, "192.0.2.0/24");
	assert_int_equal(find4(db, "198.51.100.9", NOW, key, sizeof(key)), 0);
	assert_string_equal(key, "198.51.0.0/16");
	assert_int_equal(find4(db, "198.52.0.1", NOW, key, sizeof(key)),
	    TRUSTDB_NOTFOUND);
	/* expired: no match; at exactly expire: no match */
	assert_int_equal(find4(db, "203.0.113.9", NOW, key, sizeof(key)),
	    TRUSTDB_NOTFOUND);
	assert_int_equal(find4(db, "203.0.113.9", NOW - 1, key, sizeof(key)),
	    0);
	assert_int_equal(find4(db, "192.0.2.8", NOW + DAY, key, sizeof(key)),
	    TRUSTDB_NOTFOUND);

	assert_int_equal(netaddr_parse(&a, "2001:db8:1:2:aaaa::99"), 0);
	assert_int_equal(trustdb_find_white(db, &a, NOW, 0, key, sizeof(key),
	    &out), 0);
	assert_string_equal(key, "2001:db8:1:2::/64");
	assert_int_equal(out.origin, WHITE_ADMIN);
	assert_int_equal(out.expire, NOW + DAY);
	assert_int_equal(netaddr_parse(&a, "2001:db8:1:3::1"), 0);
	assert_int_equal(trustdb_find_white(db, &a, NOW, 0, NULL, 0, NULL),
	    TRUSTDB_NOTFOUND);
	/* an IPv4-mapped client is the IPv4 client */
	assert_int_equal(netaddr_parse(&a, "::ffff:192.0.2.8"), 0);
	assert_int_equal(trustdb_find_white(db, &a, NOW, 0, key, sizeof(key),
	    NULL), 0);
	assert_string_equal(key, "192.0.2.0/24");
	trustdb_close(db);
}

static void
test_find_white_min_passes(void **state)
{
	struct fixture *f = *state;
	struct trustdb *db = open_db(f->dir);
	struct white_rec w = white_make(NOW + DAY, WHITE_LOCAL), out;
	struct netaddr a;
	char key[NETADDR_STRLEN];

	w.passes = 1;
	assert_int_equal(trustdb_put_white(db, "192.0.2.0/24", &w), 0);
	assert_int_equal(netaddr_parse(&a, "192.0.2.7"), 0);
	/* 0 and 1 both mean one pass */
	assert_int_equal(trustdb_find_white(db, &a, NOW, 0, key, sizeof(key),
	    NULL), 0);
	assert_int_equal(trustdb_find_white(db, &a, NOW, 1, key, sizeof(key),
	    NULL), 0);
	assert_int_equal(trustdb_find_white(db, &a, NOW, 2, key, sizeof(key),
	    NULL), TRUSTDB_NOTFOUND);
	w.passes = 2;
	assert_int_equal(trustdb_put_white(db, "192.0.2.0/24", &w), 0);
	assert_int_equal(trustdb_find_white(db, &a, NOW, 2, key, sizeof(key),
	    &out), 0);
	assert_int_equal(out.passes, 2);
	assert_int_equal(trustdb_find_white(db, &a, NOW, 3, key, sizeof(key),
	    NULL), TRUSTDB_NOTFOUND);
	/* admin and peer entries need no passes */
	w.passes = 0;
	w.origin = WHITE_ADMIN;
	assert_int_equal(trustdb_put_white(db, "198.51.100.0/24", &w), 0);
	w.origin = WHITE_PEER;
	assert_int_equal(trustdb_put_white(db, "203.0.113.0/24", &w), 0);
	assert_int_equal(find4(db, "198.51.100.1", NOW, key, sizeof(key)), 0);
	assert_int_equal(netaddr_parse(&a, "198.51.100.1"), 0);
	assert_int_equal(trustdb_find_white(db, &a, NOW, 5, key, sizeof(key),
	    NULL), 0);
	assert_int_equal(netaddr_parse(&a, "203.0.113.1"), 0);
	assert_int_equal(trustdb_find_white(db, &a, NOW, 5, key, sizeof(key),
	    NULL), 0);
	/* a local /32 short of passes does not hide an admin /24 */
	w.origin = WHITE_LOCAL;
	w.passes = 1;
	assert_int_equal(trustdb_put_white(db, "198.51.100.9/32", &w), 0);
	assert_int_equal(netaddr_parse(&a, "198.51.100.9"), 0);
	assert_int_equal(trustdb_find_white(db, &a, NOW, 1, key, sizeof(key),
	    NULL), 0);
	assert_string_equal(key, "198.51.100.9/32");
	assert_int_equal(trustdb_find_white(db, &a, NOW, 2, key, sizeof(key),
	    &out), 0);
	assert_string_equal(key, "198.51.100.0/24");
	assert_int_equal(out.origin, WHITE_ADMIN);
	trustdb_close(db);
}

static void
test_trap(void **state)
{
	struct fixture *f = *state;
	struct trustdb *db = open_db(f->dir);
	struct trap_rec in = {
		.trapped_at = NOW, .expire = NOW + 3600, .reason = TRAP_SPAMTRAP,
	}, out;
	long n;

	assert_int_equal(trustdb_get_trap(db, "192.0.2.7", &out),
	    TRUSTDB_NOTFOUND);
	assert_int_equal(trustdb_find_trap(db, "192.0.2.7", NOW, &out),
	    TRUSTDB_NOTFOUND);
	assert_int_equal(trustdb_put_trap(db, "192.0.2.7", &in), 0);
	in.reason = TRAP_ADMIN;
	in.expire = NOW + DAY;
	assert_int_equal(trustdb_put_trap(db, "2001:db8::7", &in), 0);
	assert_int_equal(trustdb_get_trap(db, "192.0.2.7", &out), 0);
	assert_int_equal(out.trapped_at, NOW);
	assert_int_equal(out.expire, NOW + 3600);
	assert_int_equal(out.reason, TRAP_SPAMTRAP);
	assert_int_equal(trustdb_get_trap(db, "2001:db8::7", &out), 0);
	assert_int_equal(out.reason, TRAP_ADMIN);
	assert_int_equal(out.expire, NOW + DAY);
	/* find_trap: trapped up to, not at, the expiry */
	assert_int_equal(trustdb_find_trap(db, "192.0.2.7", NOW + 3599, &out),
	    0);
	assert_int_equal(out.reason, TRAP_SPAMTRAP);
	assert_int_equal(trustdb_find_trap(db, "192.0.2.7", NOW + 3599, NULL),
	    0);
	assert_int_equal(trustdb_find_trap(db, "192.0.2.7", NOW + 3600, &out),
	    TRUSTDB_NOTFOUND);
	/* the expired record is still there until expiry removes it */
	assert_int_equal(trustdb_get_trap(db, "192.0.2.7", &out), 0);
	assert_int_equal(count_iter(db, TRUSTDB_TRAP), 2);
	assert_int_equal(trustdb_count(db, TRUSTDB_TRAP, &n), 0);
	assert_int_equal(n, 2);
	/* other tables are untouched */
	assert_int_equal(count_iter(db, TRUSTDB_CLIENT), 0);

	assert_int_equal(trustdb_del_trap(db, "192.0.2.7"), 0);
	assert_int_equal(trustdb_del_trap(db, "192.0.2.7"), TRUSTDB_NOTFOUND);
	assert_int_equal(trustdb_get_trap(db, "192.0.2.7", &out),
	    TRUSTDB_NOTFOUND);
	assert_int_equal(trustdb_count(db, TRUSTDB_TRAP, &n), 0);
	assert_int_equal(n, 1);
	trustdb_close(db);
}

static void
test_spamtrap(void **state)
{
	struct fixture *f = *state;
	struct trustdb *db = open_db(f->dir);
	struct spamtrap_rec in = { .added = NOW, .origin = ORIGIN_MAP }, out;
	long n;

	assert_int_equal(trustdb_get_spamtrap(db, "trap@example.com", &out),
	    TRUSTDB_NOTFOUND);
	assert_int_equal(trustdb_put_spamtrap(db, "trap@example.com", &in), 0);
	in.added = NOW + 5;
	in.origin = ORIGIN_ADMIN;
	assert_int_equal(trustdb_put_spamtrap(db, "trap2@example.com", &in),
	    0);
	assert_int_equal(trustdb_get_spamtrap(db, "trap@example.com", &out), 0);
	assert_int_equal(out.added, NOW);
	assert_int_equal(out.origin, ORIGIN_MAP);
	assert_int_equal(trustdb_get_spamtrap(db, "trap2@example.com", &out),
	    0);
	assert_int_equal(out.added, NOW + 5);
	assert_int_equal(out.origin, ORIGIN_ADMIN);
	/* keys are exact: the caller lowercases */
	assert_int_equal(trustdb_get_spamtrap(db, "Trap@example.com", &out),
	    TRUSTDB_NOTFOUND);
	assert_int_equal(trustdb_count(db, TRUSTDB_SPAMTRAP, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(trustdb_del_spamtrap(db, "trap@example.com"), 0);
	assert_int_equal(trustdb_del_spamtrap(db, "trap@example.com"),
	    TRUSTDB_NOTFOUND);
	assert_int_equal(count_iter(db, TRUSTDB_SPAMTRAP), 1);
	trustdb_close(db);
}

static void
test_rcpt(void **state)
{
	struct fixture *f = *state;
	struct trustdb *db = open_db(f->dir);
	struct rcpt_rec map = {
		.checked = NOW, .expire = 0, .valid = 1, .origin = ORIGIN_MAP,
	};
	struct rcpt_rec callout = {
		.checked = NOW - 60, .expire = NOW + 600, .valid = 0,
		.origin = ORIGIN_CALLOUT,
	};
	struct rcpt_rec out;
	long n;

	assert_int_equal(trustdb_get_rcpt(db, "alice@example.com", &out),
	    TRUSTDB_NOTFOUND);
	assert_int_equal(trustdb_put_rcpt(db, "alice@example.com", &map), 0);
	assert_int_equal(trustdb_put_rcpt(db, "@catchall.example", &map), 0);
	assert_int_equal(trustdb_put_rcpt(db, "example.com", &map), 0);
	assert_int_equal(trustdb_put_rcpt(db, "nobody@example.org", &callout),
	    0);
	assert_int_equal(trustdb_get_rcpt(db, "alice@example.com", &out), 0);
	assert_int_equal(out.checked, NOW);
	assert_int_equal(out.expire, 0);
	assert_int_equal(out.valid, 1);
	assert_int_equal(out.origin, ORIGIN_MAP);
	assert_int_equal(trustdb_get_rcpt(db, "nobody@example.org", &out), 0);
	assert_int_equal(out.checked, NOW - 60);
	assert_int_equal(out.expire, NOW + 600);
	assert_int_equal(out.valid, 0);
	assert_int_equal(out.origin, ORIGIN_CALLOUT);
	assert_int_equal(trustdb_get_rcpt(db, "@catchall.example", &out), 0);
	assert_int_equal(trustdb_count(db, TRUSTDB_RCPT, &n), 0);
	assert_int_equal(n, 4);
	assert_int_equal(trustdb_del_rcpt(db, "nobody@example.org"), 0);
	assert_int_equal(trustdb_del_rcpt(db, "nobody@example.org"),
	    TRUSTDB_NOTFOUND);
	assert_int_equal(count_iter(db, TRUSTDB_RCPT), 3);
	trustdb_close(db);
}

static void
test_client_v2(void **state)
{
	struct fixture *f = *state;
	struct trustdb *db = open_db(f->dir);
	struct client_rec in = {
		.first_seen = NOW - DAY, .last_seen = NOW - 60,
		.greet_pass_until = NOW + 3600, .connections = 7,
		.greylisted = 3, .passed = 2, .delivered = 1, .rejected = 10,
		.trapped = 2,
	}, add = { 0 }, out;
	int i;

	for (i = 0; i < REJECT_NREASONS; i++)
		in.rejected_by[i] = (uint32_t)(i + 1);
	in.rejected_by[REJECT_SPF] = 4000000000u;
	assert_int_equal(trustdb_put_client(db, "192.0.2.7", &in), 0);
	assert_int_equal(trustdb_get_client(db, "192.0.2.7", &out), 0);
	assert_client_equal(&in, &out);

	/* add_client: every counter summed, greet pass the later one */
	add.connections = 1;
	add.greylisted = 1;
	add.passed = 1;
	add.delivered = 2;
	add.rejected = 3;
	add.trapped = 1;
	add.rejected_by[REJECT_RCPT] = 2;
	add.rejected_by[REJECT_TRAP] = 1;
	add.greet_pass_until = NOW + 60;	/* earlier: kept the old one */
	assert_int_equal(trustdb_add_client(db, "192.0.2.7", NOW, &add), 0);
	assert_int_equal(trustdb_get_client(db, "192.0.2.7", &out), 0);
	assert_int_equal(out.first_seen, NOW - DAY);
	assert_int_equal(out.last_seen, NOW);
	assert_int_equal(out.greet_pass_until, NOW + 3600);
	assert_int_equal(out.connections, 8);
	assert_int_equal(out.greylisted, 4);
	assert_int_equal(out.passed, 3);
	assert_int_equal(out.delivered, 3);
	assert_int_equal(out.rejected, 13);
	assert_int_equal(out.trapped, 3);
	assert_int_equal(out.rejected_by[REJECT_RCPT], 1 + 2);
	assert_int_equal(out.rejected_by[REJECT_LIMIT], 2);
	assert_int_equal(out.rejected_by[REJECT_TRAP], 5 + 1);
	assert_int_equal(out.rejected_by[REJECT_SPF], 4000000000u);
	add.greet_pass_until = NOW + 7200;	/* later: taken */
	assert_int_equal(trustdb_add_client(db, "192.0.2.7", NOW + 1, &add),
	    0);
	assert_int_equal(trustdb_get_client(db, "192.0.2.7", &out), 0);
	assert_int_equal(out.greet_pass_until, NOW + 7200);
	assert_int_equal(out.last_seen, NOW + 1);
	assert_int_equal(out.rejected_by[REJECT_RCPT], 1 + 2 + 2);

	/* a new client: first_seen = last_seen = now */
	memset(&add, 0, sizeof(add));
	add.connections = 1;
	add.rejected = 1;
	add.rejected_by[REJECT_PREGREET] = 1;
	assert_int_equal(trustdb_add_client(db, "2001:db8::1", NOW, &add), 0);
	assert_int_equal(trustdb_get_client(db, "2001:db8::1", &out), 0);
	assert_int_equal(out.first_seen, NOW);
	assert_int_equal(out.last_seen, NOW);
	assert_int_equal(out.connections, 1);
	assert_int_equal(out.greet_pass_until, 0);
	assert_int_equal(out.rejected_by[REJECT_PREGREET], 1);
	assert_int_equal(out.rejected_by[REJECT_RCPT], 0);
	assert_int_equal(count_iter(db, TRUSTDB_CLIENT), 2);
	trustdb_close(db);
}

/* Records of the tables that expire by time, and those that never do. */
static void
test_expire_new_tables(void **state)
{
	struct fixture *f = *state;
	struct trustdb *db = open_db(f->dir);
	struct trap_rec t = { .trapped_at = NOW - DAY, .reason = TRAP_ADMIN };
	struct rcpt_rec r = { .checked = NOW - DAY, .valid = 1 };
	struct spamtrap_rec st = { .added = NOW - 1000 * DAY };
	struct trap_rec to;
	struct rcpt_rec ro;
	struct spamtrap_rec so;

	t.expire = NOW;				/* expired at NOW */
	assert_int_equal(trustdb_put_trap(db, "192.0.2.1", &t), 0);
	t.expire = NOW + 1;
	assert_int_equal(trustdb_put_trap(db, "192.0.2.2", &t), 0);
	r.origin = ORIGIN_CALLOUT;
	r.expire = NOW - 1;
	assert_int_equal(trustdb_put_rcpt(db, "old@example.com", &r), 0);
	r.expire = NOW + 60;
	assert_int_equal(trustdb_put_rcpt(db, "new@example.com", &r), 0);
	r.expire = 0;
	r.origin = ORIGIN_MAP;
	assert_int_equal(trustdb_put_rcpt(db, "map@example.com", &r), 0);
	r.origin = ORIGIN_ADMIN;
	assert_int_equal(trustdb_put_rcpt(db, "admin@example.com", &r), 0);
	st.origin = ORIGIN_MAP;
	assert_int_equal(trustdb_put_spamtrap(db, "map-trap@example.com", &st),
	    0);
	st.origin = ORIGIN_ADMIN;
	assert_int_equal(trustdb_put_spamtrap(db, "trap@example.com", &st), 0);

	/* 8 records: the expired trap and callout go */
	assert_int_equal(trustdb_expire_step(db, NOW, 100, CLIENT_TTL), 2);
	assert_int_equal(trustdb_expire_step(db, NOW, 100, CLIENT_TTL), 0);
	assert_int_equal(trustdb_get_trap(db, "192.0.2.1", &to),
	    TRUSTDB_NOTFOUND);
	assert_int_equal(trustdb_get_trap(db, "192.0.2.2", &to), 0);
	assert_int_equal(trustdb_get_rcpt(db, "old@example.com", &ro),
	    TRUSTDB_NOTFOUND);
	assert_int_equal(trustdb_get_rcpt(db, "new@example.com", &ro), 0);
	/* far in the future: map and admin rcpt and spamtraps stay */
	assert_int_equal(trustdb_expire_step(db, NOW + 10000 * DAY, 100,
	    CLIENT_TTL), 2);
	assert_int_equal(count_iter(db, TRUSTDB_TRAP), 0);
	assert_int_equal(count_iter(db, TRUSTDB_RCPT), 2);
	assert_int_equal(trustdb_get_rcpt(db, "map@example.com", &ro), 0);
	assert_int_equal(trustdb_get_rcpt(db, "admin@example.com", &ro), 0);
	assert_int_equal(trustdb_get_spamtrap(db, "map-trap@example.com", &so),
	    0);
	assert_int_equal(trustdb_get_spamtrap(db, "trap@example.com", &so), 0);
	trustdb_close(db);
}

static bool
not_gone(const char *key, void *arg)
{
	(void)arg;
	return strstr(key, "gone") == NULL;
}

static void
test_purge_map(void **state)
{
	struct fixture *f = *state;
	struct trustdb *db = open_db(f->dir);
	struct rcpt_rec r = { .valid = 1 }, ro;
	struct spamtrap_rec st, so;
	const int64_t old = NOW - 3600, stamp = NOW;

	/* "gone" entries carry the load's own stamp: membership decides */
	r.origin = ORIGIN_MAP;
	r.checked = stamp;
	assert_int_equal(trustdb_put_rcpt(db, "gone@example.com", &r), 0);
	assert_int_equal(trustdb_put_rcpt(db, "@gone.example", &r), 0);
	r.checked = stamp;
	assert_int_equal(trustdb_put_rcpt(db, "kept@example.com", &r), 0);
	r.checked = old;
	r.origin = ORIGIN_ADMIN;
	assert_int_equal(trustdb_put_rcpt(db, "admin@example.com", &r), 0);
	r.origin = ORIGIN_CALLOUT;
	r.expire = NOW + 600;
	assert_int_equal(trustdb_put_rcpt(db, "cached@example.com", &r), 0);
	st.origin = ORIGIN_MAP;
	st.added = stamp;
	assert_int_equal(trustdb_put_spamtrap(db, "gone-trap@example.com",
	    &st), 0);
	st.added = stamp;
	assert_int_equal(trustdb_put_spamtrap(db, "trap@example.com", &st), 0);
	st.added = old;
	st.origin = ORIGIN_ADMIN;
	assert_int_equal(trustdb_put_spamtrap(db, "admin-trap@example.com",
	    &st), 0);

	assert_int_equal(trustdb_purge_map(db, TRUSTDB_RCPT, not_gone, NULL), 2);
	assert_int_equal(trustdb_purge_map(db, TRUSTDB_RCPT, not_gone, NULL), 0);
	assert_int_equal(trustdb_get_rcpt(db, "gone@example.com", &ro),
	    TRUSTDB_NOTFOUND);
	assert_int_equal(trustdb_get_rcpt(db, "@gone.example", &ro),
	    TRUSTDB_NOTFOUND);
	assert_int_equal(trustdb_get_rcpt(db, "kept@example.com", &ro), 0);
	assert_int_equal(trustdb_get_rcpt(db, "admin@example.com", &ro), 0);
	assert_int_equal(trustdb_get_rcpt(db, "cached@example.com", &ro), 0);
	/* the spamtrap table is purged separately */
	assert_int_equal(count_iter(db, TRUSTDB_SPAMTRAP), 3);
	assert_int_equal(trustdb_purge_map(db, TRUSTDB_SPAMTRAP, not_gone, NULL), 1);
	assert_int_equal(trustdb_get_spamtrap(db, "gone-trap@example.com",
	    &so), TRUSTDB_NOTFOUND);
	assert_int_equal(trustdb_get_spamtrap(db, "trap@example.com", &so), 0);
	assert_int_equal(trustdb_get_spamtrap(db, "admin-trap@example.com",
	    &so), 0);
	/* only those two tables have maps */
	assert_int_equal(trustdb_purge_map(db, TRUSTDB_GREY, not_gone, NULL), -1);
	assert_int_equal(trustdb_purge_map(db, TRUSTDB_TRAP, not_gone, NULL), -1);
	trustdb_close(db);
}

static void
test_iterate_batches(void **state)
{
	struct fixture *f = *state;
	struct trustdb *db = open_db(f->dir);
	struct white_rec w = white_make(NOW + DAY, WHITE_LOCAL);
	struct grey_rec g = grey_make(NOW, NOW + 3600, 1);
	char key[TRUSTDB_KEY_MAX], rcpt[64];
	size_t len;
	long n;
	int i;

	for (i = 0; i < 300; i++) {
		snprintf(rcpt, sizeof(rcpt), "user%03d@example.org", i);
		len = triplet(key, sizeof(key), "192.0.2.0/24", "s@example.net",
		    rcpt);
		g.attempts = (uint32_t)i;
		assert_int_equal(trustdb_put_grey(db, key, len, &g), 0);
	}
	for (i = 0; i < 200; i++) {
		snprintf(key, sizeof(key), "10.0.%d.%d/32", i / 100, i % 100);
		assert_int_equal(trustdb_put_white(db, key, &w), 0);
	}
	assert_int_equal(count_iter(db, TRUSTDB_GREY), 300);
	assert_int_equal(count_iter(db, TRUSTDB_WHITE), 200);
	assert_int_equal(count_iter(db, TRUSTDB_CLIENT), 0);
	assert_int_equal(trustdb_count(db, TRUSTDB_GREY, &n), 0);
	assert_int_equal(n, 300);
	assert_int_equal(trustdb_count(db, TRUSTDB_WHITE, &n), 0);
	assert_int_equal(n, 200);
	trustdb_close(db);
}

struct order_check {
	int seen;
	int stop_at;
	char last[TRUSTDB_KEY_MAX + 1];
	size_t lastlen;
	int bad;
};

static int
order_cb(const struct trustdb_entry *e, void *arg)
{
	struct order_check *oc = arg;
	size_t n = e->keylen < oc->lastlen ? e->keylen : oc->lastlen;
	int cmp = memcmp(oc->last, e->key, n);

	if (oc->seen > 0 && (cmp > 0 || (cmp == 0 && oc->lastlen >= e->keylen)))
		oc->bad++;		/* a duplicate or a step back */
	if (e->table != TRUSTDB_GREY || e->key[e->keylen] != '\0' ||
	    e->v.grey.attempts != (uint32_t)oc->seen)
		oc->bad++;
	memcpy(oc->last, e->key, e->keylen);
	oc->lastlen = e->keylen;
	return ++oc->seen == oc->stop_at;
}

static void
test_iterate_order_and_stop(void **state)
{
	struct fixture *f = *state;
	struct trustdb *db = open_db(f->dir);
	struct grey_rec g = grey_make(NOW, NOW + 3600, 1);
	struct order_check oc;
	char key[TRUSTDB_KEY_MAX], rcpt[64];
	size_t len;
	int i;

	for (i = 0; i < 400; i++) {
		snprintf(rcpt, sizeof(rcpt), "u%04d@example.org", i);
		len = triplet(key, sizeof(key), "2001:db8::/64", "", rcpt);
		g.attempts = (uint32_t)i;
		assert_int_equal(trustdb_put_grey(db, key, len, &g), 0);
	}
	memset(&oc, 0, sizeof(oc));
	oc.stop_at = -1;
	assert_int_equal(trustdb_iterate(db, TRUSTDB_GREY, order_cb, &oc), 0);
	assert_int_equal(oc.seen, 400);
	assert_int_equal(oc.bad, 0);
	memset(&oc, 0, sizeof(oc));
	oc.stop_at = 130;
	assert_int_equal(trustdb_iterate(db, TRUSTDB_GREY, order_cb, &oc), 0);
	assert_int_equal(oc.seen, 130);
	assert_int_equal(oc.bad, 0);
	trustdb_close(db);
}

static void
test_expire_step(void **state)
{
	struct fixture *f = *state;
	struct trustdb *db = open_db(f->dir);
	struct grey_rec g;
	struct white_rec w;
	struct client_rec c = { .first_seen = NOW - 200 * DAY };
	char key[TRUSTDB_KEY_MAX], rcpt[64];
	size_t len;
	int i, got, total = 0, calls;
	long n;

	/* 20 grey (every other one expired), 10 white (3 expired),
	 * 6 clients (2 stale) */
	for (i = 0; i < 20; i++) {
		snprintf(rcpt, sizeof(rcpt), "r%02d@example.org", i);
		len = triplet(key, sizeof(key), "192.0.2.0/24", "s@x", rcpt);
		g = grey_make(NOW - 100, i % 2 ? NOW - i : NOW + i + 1, 1);
		assert_int_equal(trustdb_put_grey(db, key, len, &g), 0);
	}
	for (i = 0; i < 10; i++) {
		snprintf(key, sizeof(key), "198.51.100.%d/32", i);
		w = white_make(i < 3 ? NOW : NOW + DAY, WHITE_LOCAL);
		assert_int_equal(trustdb_put_white(db, key, &w), 0);
	}
	for (i = 0; i < 6; i++) {
		snprintf(key, sizeof(key), "203.0.113.%d", i);
		c.last_seen = i < 2 ? NOW - 90 * DAY : NOW - 89 * DAY;
		assert_int_equal(trustdb_put_client(db, key, &c), 0);
	}
	/* one call examines at most its batch */
	got = trustdb_expire_step(db, NOW, 3, CLIENT_TTL);
	assert_in_range(got, 0, 3);
	total += got;
	/* 36 records (and the meta record) in batches of 3: 13 calls see all */
	for (calls = 1; calls < 13; calls++) {
		got = trustdb_expire_step(db, NOW, 3, CLIENT_TTL);
		assert_in_range(got, 0, 3);
		total += got;
	}
	assert_int_equal(total, 10 + 3 + 2);
	/* another full round finds nothing more */
	for (calls = 0; calls < 13; calls++)
		assert_int_equal(trustdb_expire_step(db, NOW, 3, CLIENT_TTL), 0);

	assert_int_equal(count_iter(db, TRUSTDB_GREY), 10);
	assert_int_equal(count_iter(db, TRUSTDB_WHITE), 7);
	assert_int_equal(count_iter(db, TRUSTDB_CLIENT), 4);
	assert_int_equal(trustdb_count(db, TRUSTDB_WHITE, &n), 0);
	assert_int_equal(n, 7);
	for (i = 0; i < 20; i++) {
		snprintf(rcpt, sizeof(rcpt), "r%02d@example.org", i);
		len = triplet(key, sizeof(key), "192.0.2.0/24", "s@x", rcpt);
		assert_int_equal(trustdb_get_grey(db, key, len, &g),
		    i % 2 ? TRUSTDB_NOTFOUND : 0);
	}
	/* the prefix-length record survived: lookups still work */
	assert_int_equal(find4(db, "198.51.100.5", NOW, key, sizeof(key)), 0);
	assert_int_equal(find4(db, "198.51.100.1", NOW, key, sizeof(key)),
	    TRUSTDB_NOTFOUND);
	/* a batch larger than the database sees every record once and stops */
	assert_int_equal(trustdb_expire_step(db, NOW + 2 * DAY, 1000,
	    CLIENT_TTL), 10 + 7 + 4);
	assert_int_equal(trustdb_expire_step(db, NOW + 2 * DAY, 1000,
	    CLIENT_TTL), 0);
	trustdb_close(db);
}

static void
test_reopen(void **state)
{
	struct fixture *f = *state;
	struct trustdb *db = open_db(f->dir);
	struct white_rec w = white_make(NOW + DAY, WHITE_ADMIN), wo;
	struct grey_rec g = grey_make(NOW, NOW + 60, 2), go;
	char key[TRUSTDB_KEY_MAX];
	size_t len = triplet(key, sizeof(key), "192.0.2.0/24", "a@b", "c@d");

	assert_int_equal(trustdb_put_white(db, "192.0.2.0/24", &w), 0);
	assert_int_equal(trustdb_put_grey(db, key, len, &g), 0);
	assert_int_equal(trustdb_checkpoint(db), 0);
	trustdb_close(db);
	db = open_db(f->dir);
	assert_int_equal(trustdb_get_white(db, "192.0.2.0/24", &wo), 0);
	assert_white_equal(&w, &wo);
	assert_int_equal(trustdb_get_grey(db, key, len, &go), 0);
	assert_grey_equal(&g, &go);
	assert_int_equal(find4(db, "192.0.2.1", NOW, NULL, 0), 0);
	trustdb_close(db);
}

/* ---- two processes ---- */

static int
child_peer(const char *dir, int rfd, int wfd)
{
	struct grey_rec g;
	struct white_rec w = white_make(NOW + DAY, WHITE_PEER);
	char key[TRUSTDB_KEY_MAX], err[256], c;
	size_t len = triplet(key, sizeof(key), "192.0.2.0/24", "a@b", "c@d");
	struct trustdb *db = trustdb_open(dir, err, sizeof(err));
	int ok;

	if (db == NULL || write(wfd, "o", 1) != 1 || read(rfd, &c, 1) != 1)
		return 10;
	/* the parent's write is visible at once */
	ok = trustdb_get_grey(db, key, len, &g) == 0 && g.attempts == 5;
	ok = ok && trustdb_put_white(db, "198.51.100.0/24", &w) == 0;
	if (write(wfd, ok ? "y" : "n", 1) != 1 || read(rfd, &c, 1) != 1)
		return 11;
	/* and the parent's delete too */
	ok = trustdb_get_grey(db, key, len, &g) == TRUSTDB_NOTFOUND;
	trustdb_close(db);
	return ok ? 0 : 12;
}

static pid_t
spawn_peer(const char *dir, int *rfd, int *wfd)
{
	int down[2], up[2];
	pid_t pid;

	assert_int_equal(pipe(down), 0);
	assert_int_equal(pipe(up), 0);
	assert_true((pid = fork()) != -1);
	if (pid == 0) {
		close(down[1]);
		close(up[0]);
		_exit(child_peer(dir, down[0], up[1]));
	}
	close(down[0]);
	close(up[1]);
	*rfd = up[0];
	*wfd = down[1];
	return pid;
}

static void
test_two_processes(void **state)
{
	struct fixture *f = *state;
	struct trustdb *db = open_db(f->dir);
	struct grey_rec g = grey_make(NOW, NOW + 60, 5);
	struct white_rec w;
	char key[TRUSTDB_KEY_MAX], c, wkey[NETADDR_STRLEN];
	size_t len = triplet(key, sizeof(key), "192.0.2.0/24", "a@b", "c@d");
	int rfd, wfd, status;
	pid_t pid = spawn_peer(f->dir, &rfd, &wfd);

	assert_int_equal(read(rfd, &c, 1), 1);		/* child has it open */
	assert_int_equal(c, 'o');
	assert_int_equal(trustdb_put_grey(db, key, len, &g), 0);
	assert_int_equal(write(wfd, "g", 1), 1);
	assert_int_equal(read(rfd, &c, 1), 1);
	assert_int_equal(c, 'y');
	/* the child's write, prefix bitmap included, is visible at once */
	assert_int_equal(trustdb_get_white(db, "198.51.100.0/24", &w), 0);
	assert_int_equal(w.origin, WHITE_PEER);
	assert_int_equal(find4(db, "198.51.100.200", NOW, wkey, sizeof(wkey)),
	    0);
	assert_string_equal(wkey, "198.51.100.0/24");
	assert_int_equal(trustdb_del_grey(db, key, len), 0);
	assert_int_equal(write(wfd, "d", 1), 1);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	close(rfd);
	close(wfd);
	/* still usable after the other process closed */
	assert_int_equal(trustdb_put_grey(db, key, len, &g), 0);
	trustdb_close(db);
}

/*
 * A process that writes key in a transaction it leaves open: it tells the
 * parent on wfd, then dies (die) or waits until rfd is closed and aborts.
 */
static int
child_lock_holder(const char *dir, const char *key, size_t len, int wfd,
    int rfd, bool die)
{
	DB_ENV *env;
	DB *d;
	DB_TXN *txn;
	DBT k, v;
	char val = 'x';

	if (db_env_create(&env, 0) != 0 ||
	    env->open(env, dir, DB_CREATE | DB_INIT_TXN | DB_INIT_LOCK |
	    DB_INIT_LOG | DB_INIT_MPOOL | DB_REGISTER | DB_RECOVER,
	    0600) != 0 ||
	    db_create(&d, env, 0) != 0 ||
	    d->open(d, NULL, "grey.db", NULL, DB_BTREE, DB_AUTO_COMMIT,
	    0) != 0 ||
	    env->txn_begin(env, NULL, &txn, 0) != 0)
		return 20;
	memset(&k, 0, sizeof(k));
	memset(&v, 0, sizeof(v));
	k.data = (void *)key;
	k.size = (u_int32_t)len;
	v.data = &val;
	v.size = 1;
	if (d->put(d, txn, &k, &v, 0) != 0 || write(wfd, "l", 1) != 1)
		return 21;
	if (die)
		_exit(0);	/* killed mid-transaction, lock held */
	while (read(rfd, &val, 1) > 0)
		;
	txn->abort(txn);
	d->close(d, 0);
	env->close(env, 0);
	return 0;
}

/* Fork a lock holder; *release is the pipe end whose closing ends it. */
static pid_t
spawn_lock_holder(const char *dir, const char *key, size_t len, bool die,
    int *release)
{
	int up[2], down[2];
	char c;
	pid_t pid;

	assert_int_equal(pipe(up), 0);
	assert_int_equal(pipe(down), 0);
	assert_true((pid = fork()) != -1);
	if (pid == 0) {
		close(up[0]);
		close(down[1]);
		_exit(child_lock_holder(dir, key, len, up[1], down[0], die));
	}
	close(up[1]);
	close(down[0]);
	assert_int_equal(read(up[0], &c, 1), 1);	/* lock taken */
	close(up[0]);
	*release = down[1];
	return pid;
}

/*
 * Another process holds a write lock on the record greyd wants: the call
 * gives up (-1) within its retries (about 130 ms) instead of waiting.
 */
static void
test_lock_timeout(void **state)
{
	struct fixture *f = *state;
	struct trustdb *db = open_db(f->dir);
	struct grey_rec g = grey_make(NOW, NOW + 60, 1);
	struct timeval t0;
	char key[TRUSTDB_KEY_MAX];
	size_t len = triplet(key, sizeof(key), "192.0.2.0/24", "a@b", "c@d");
	int release, status;
	pid_t pid = spawn_lock_holder(f->dir, key, len, false, &release);

	gettimeofday(&t0, NULL);
	assert_int_equal(trustdb_put_grey(db, key, len, &g), -1);
	assert_true(since(&t0) < 0.5);
	assert_int_equal(trustdb_get_grey(db, key, len, &g), -1);
	assert_true(since(&t0) < 1.0);
	close(release);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	/* the holder aborted: the record never existed, writes work again */
	assert_int_equal(trustdb_get_grey(db, key, len, &g), TRUSTDB_NOTFOUND);
	g = grey_make(NOW, NOW + 60, 1);
	assert_int_equal(trustdb_put_grey(db, key, len, &g), 0);
	trustdb_close(db);
}

/*
 * The process holding the lock dies mid-transaction (greydb killed -9):
 * failchk (or, failing that, recovery) frees the lock within the call.
 */
static void
test_dead_lock_holder(void **state)
{
	struct fixture *f = *state;
	struct trustdb *db = open_db(f->dir);
	struct grey_rec g = grey_make(NOW, NOW + 60, 4), go;
	struct timeval t0;
	char key[TRUSTDB_KEY_MAX];
	size_t len = triplet(key, sizeof(key), "192.0.2.0/24", "a@b", "c@d");
	int release, status;
	pid_t pid;

	assert_int_equal(trustdb_put_white(db, "192.0.2.0/24",
	    &(struct white_rec){ .expire = NOW + DAY, .origin = WHITE_ADMIN }),
	    0);
	pid = spawn_lock_holder(f->dir, key, len, true, &release);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(WEXITSTATUS(status), 0);
	close(release);
	gettimeofday(&t0, NULL);
	assert_int_equal(trustdb_put_grey(db, key, len, &g), 0);
	assert_true(since(&t0) < 1.0);
	assert_int_equal(trustdb_get_grey(db, key, len, &go), 0);
	assert_grey_equal(&g, &go);
	assert_int_equal(find4(db, "192.0.2.1", NOW, NULL, 0), 0);
	trustdb_close(db);
}

/* ---- damaged records ---- */

static void
raw_put(const char *dir, const char *file, const char *key, const void *val,
    size_t vallen)
{
	DB_ENV *env;
	DB *d;
	DBT k, v;

	assert_int_equal(db_env_create(&env, 0), 0);
	assert_int_equal(env->open(env, dir, DB_CREATE | DB_INIT_TXN |
	    DB_INIT_LOCK | DB_INIT_LOG | DB_INIT_MPOOL | DB_REGISTER |
	    DB_RECOVER, 0600), 0);
	assert_int_equal(db_create(&d, env, 0), 0);
	assert_int_equal(d->open(d, NULL, file, NULL, DB_BTREE, DB_AUTO_COMMIT,
	    0), 0);
	memset(&k, 0, sizeof(k));
	memset(&v, 0, sizeof(v));
	k.data = (void *)key;
	k.size = (u_int32_t)strlen(key);
	v.data = (void *)val;
	v.size = (u_int32_t)vallen;
	assert_int_equal(d->put(d, NULL, &k, &v, DB_AUTO_COMMIT), 0);
	assert_int_equal(d->close(d, 0), 0);
	assert_int_equal(env->close(env, 0), 0);
}

static void
raw_get(const char *dir, const char *file, const char *key, void *val,
    size_t vallen)
{
	DB_ENV *env;
	DB *d;
	DBT k, v;

	assert_int_equal(db_env_create(&env, 0), 0);
	assert_int_equal(env->open(env, dir, DB_CREATE | DB_INIT_TXN |
	    DB_INIT_LOCK | DB_INIT_LOG | DB_INIT_MPOOL | DB_REGISTER |
	    DB_RECOVER, 0600), 0);
	assert_int_equal(db_create(&d, env, 0), 0);
	assert_int_equal(d->open(d, NULL, file, NULL, DB_BTREE, DB_AUTO_COMMIT,
	    0), 0);
	memset(&k, 0, sizeof(k));
	memset(&v, 0, sizeof(v));
	k.data = (void *)key;
	k.size = (u_int32_t)strlen(key);
	v.data = val;
	v.ulen = (u_int32_t)vallen;
	v.flags = DB_DBT_USERMEM;
	assert_int_equal(d->get(d, NULL, &k, &v, 0), 0);
	assert_int_equal(v.size, vallen);
	assert_int_equal(d->close(d, 0), 0);
	assert_int_equal(env->close(env, 0), 0);
}

static void
test_bad_version(void **state)
{
	struct fixture *f = *state;
	struct trustdb *db = open_db(f->dir);
	struct white_rec w = white_make(NOW + DAY, WHITE_LOCAL);
	struct client_rec c = { .first_seen = NOW, .last_seen = NOW };
	unsigned char rec[34], big[200];
	long n;

	assert_int_equal(trustdb_put_white(db, "192.0.2.0/24", &w), 0);
	assert_int_equal(trustdb_put_white(db, "192.0.2.1/32", &w), 0);
	assert_int_equal(trustdb_put_client(db, "192.0.2.1", &c), 0);
	trustdb_close(db);

	/* version 2 of a white record; a client record of the wrong size */
	raw_get(f->dir, "white.db", "192.0.2.0/24", rec, sizeof(rec));
	assert_int_equal(rec[0], 1);
	rec[0] = 2;
	raw_put(f->dir, "white.db", "192.0.2.0/24", rec, sizeof(rec));
	memset(big, 1, sizeof(big));
	raw_put(f->dir, "client.db", "192.0.2.1", big, sizeof(big));
	raw_put(f->dir, "client.db", "192.0.2.2", big, 3);

	db = open_db(f->dir);
	assert_int_equal(trustdb_get_white(db, "192.0.2.0/24", &w),
	    TRUSTDB_NOTFOUND);
	assert_int_equal(find4(db, "192.0.2.9", NOW, NULL, 0),
	    TRUSTDB_NOTFOUND);
	assert_int_equal(find4(db, "192.0.2.1", NOW, NULL, 0), 0);
	assert_int_equal(trustdb_get_client(db, "192.0.2.1", &c),
	    TRUSTDB_NOTFOUND);
	assert_int_equal(trustdb_get_client(db, "192.0.2.2", &c),
	    TRUSTDB_NOTFOUND);
	assert_int_equal(count_iter(db, TRUSTDB_WHITE), 1);
	assert_int_equal(count_iter(db, TRUSTDB_CLIENT), 0);
	assert_int_equal(trustdb_count(db, TRUSTDB_WHITE, &n), 0);
	assert_int_equal(n, 2);
	/* expiry leaves records it cannot read alone */
	assert_int_equal(trustdb_expire_step(db, NOW + 1000 * DAY, 100,
	    CLIENT_TTL), 1);
	assert_int_equal(trustdb_count(db, TRUSTDB_WHITE, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(trustdb_count(db, TRUSTDB_CLIENT, &n), 0);
	assert_int_equal(n, 2);
	/* a put replaces the unreadable record */
	w = white_make(NOW + DAY, WHITE_ADMIN);
	assert_int_equal(trustdb_put_white(db, "192.0.2.0/24", &w), 0);
	assert_int_equal(find4(db, "192.0.2.9", NOW, NULL, 0), 0);
	trustdb_close(db);
}

static void
test_bad_bitmap(void **state)
{
	struct fixture *f = *state;
	struct trustdb *db = open_db(f->dir);
	struct white_rec w = white_make(NOW + DAY, WHITE_LOCAL);
	unsigned char junk[5] = { 9, 9, 9, 9, 9 };

	assert_int_equal(trustdb_put_white(db, "192.0.2.0/24", &w), 0);
	trustdb_close(db);
	raw_put(f->dir, "white.db", "#prefixlens", junk, sizeof(junk));
	db = open_db(f->dir);
	/* an unreadable bitmap means "try every length" */
	assert_int_equal(find4(db, "192.0.2.9", NOW, NULL, 0), 0);
	assert_int_equal(trustdb_put_white(db, "10.0.0.0/8", &w), 0);
	assert_int_equal(find4(db, "10.1.2.3", NOW, NULL, 0), 0);
	assert_int_equal(find4(db, "192.0.2.9", NOW, NULL, 0), 0);
	assert_int_equal(count_iter(db, TRUSTDB_WHITE), 2);
	trustdb_close(db);
}

static uint8_t *
put_le(uint8_t *p, uint64_t v, int octets)
{
	int i;

	for (i = 0; i < octets; i++)
		p[i] = (uint8_t)(v >> (8 * i));
	return p + octets;
}

/*
 * A client record of version 1 (before the trap and rejection fields):
 * version 1, first_seen and last_seen as 8 octets, then connections,
 * greylisted, passed, delivered, rejected as 4, little-endian: 37 octets.
 */
static void
test_client_v1(void **state)
{
	struct fixture *f = *state;
	struct trustdb *db = open_db(f->dir);
	struct client_rec out, add = { .connections = 1, .rejected = 1 };
	uint8_t v1[37], *p = v1, v2[1 + 3 * 8 + (6 + REJECT_NREASONS) * 4];
	int i;

	trustdb_close(db);
	*p++ = 1;
	p = put_le(p, (uint64_t)(NOW - DAY), 8);
	p = put_le(p, (uint64_t)NOW, 8);
	p = put_le(p, 11, 4);
	p = put_le(p, 12, 4);
	p = put_le(p, 13, 4);
	p = put_le(p, 14, 4);
	p = put_le(p, 4000000015u, 4);
	assert_int_equal(p - v1, 37);
	raw_put(f->dir, "client.db", "192.0.2.1", v1, sizeof(v1));

	db = open_db(f->dir);
	assert_int_equal(trustdb_get_client(db, "192.0.2.1", &out), 0);
	assert_int_equal(out.first_seen, NOW - DAY);
	assert_int_equal(out.last_seen, NOW);
	assert_int_equal(out.connections, 11);
	assert_int_equal(out.greylisted, 12);
	assert_int_equal(out.passed, 13);
	assert_int_equal(out.delivered, 14);
	assert_int_equal(out.rejected, 4000000015u);
	assert_int_equal(out.trapped, 0);
	assert_int_equal(out.greet_pass_until, 0);
	for (i = 0; i < REJECT_NREASONS; i++)
		assert_int_equal(out.rejected_by[i], 0);
	assert_int_equal(count_iter(db, TRUSTDB_CLIENT), 1);
	/* kept by expiry while it is young, like any client record */
	assert_int_equal(trustdb_expire_step(db, NOW, 100, CLIENT_TTL), 0);
	/* the next update writes version 2, counters carried over */
	add.rejected_by[REJECT_LIMIT] = 1;
	assert_int_equal(trustdb_add_client(db, "192.0.2.1", NOW + 5, &add),
	    0);
	trustdb_close(db);
	raw_get(f->dir, "client.db", "192.0.2.1", v2, sizeof(v2));
	assert_int_equal(v2[0], 2);
	db = open_db(f->dir);
	assert_int_equal(trustdb_get_client(db, "192.0.2.1", &out), 0);
	assert_int_equal(out.first_seen, NOW - DAY);
	assert_int_equal(out.last_seen, NOW + 5);
	assert_int_equal(out.connections, 12);
	assert_int_equal(out.rejected, 4000000016u);
	assert_int_equal(out.rejected_by[REJECT_LIMIT], 1);
	trustdb_close(db);
}

/* ---- crash ---- */

static int
child_crash(const char *dir)
{
	struct grey_rec g = grey_make(NOW, NOW + 3600, 1);
	struct white_rec w = white_make(NOW + DAY, WHITE_LOCAL);
	struct client_rec c = { .first_seen = NOW, .last_seen = NOW };
	char key[TRUSTDB_KEY_MAX], rcpt[64], wkey[32], ckey[32], err[256];
	struct trustdb *db = trustdb_open(dir, err, sizeof(err));
	size_t len;
	int i;

	if (db == NULL)
		return 30;
	for (i = 0; i < 500; i++) {
		snprintf(rcpt, sizeof(rcpt), "r%d@example.org", i);
		len = triplet(key, sizeof(key), "192.0.2.0/24", "s@x", rcpt);
		g.attempts = (uint32_t)i;
		snprintf(wkey, sizeof(wkey), "10.1.%d.%d/32", i / 256, i % 256);
		snprintf(ckey, sizeof(ckey), "10.2.%d.%d", i / 256, i % 256);
		if (trustdb_put_grey(db, key, len, &g) != 0 ||
		    trustdb_put_white(db, wkey, &w) != 0 ||
		    trustdb_put_client(db, ckey, &c) != 0)
			return 31;
	}
	_exit(0);		/* no close, no checkpoint: as kill -9 */
}

static void
verify_file(const char *dir, const char *file)
{
	char cmd[PATH_MAX * 2 + 64];
	int status;

	snprintf(cmd, sizeof(cmd), "db5.3_verify -q -h '%s' '%s'", dir, file);
	status = system(cmd);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void
test_crash_recovery(void **state)
{
	struct fixture *f = *state;
	struct trustdb *db;
	struct grey_rec g;
	struct white_rec w;
	struct client_rec c;
	char key[TRUSTDB_KEY_MAX], rcpt[64], addr[32];
	size_t len;
	int i, status;
	pid_t pid;

	assert_true((pid = fork()) != -1);
	if (pid == 0)
		_exit(child_crash(f->dir));
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);

	/* DB_REGISTER sees the dead process: recovery */
	db = open_db(f->dir);
	for (i = 0; i < 500; i++) {
		snprintf(rcpt, sizeof(rcpt), "r%d@example.org", i);
		len = triplet(key, sizeof(key), "192.0.2.0/24", "s@x", rcpt);
		assert_int_equal(trustdb_get_grey(db, key, len, &g), 0);
		assert_int_equal(g.attempts, i);
		snprintf(addr, sizeof(addr), "10.1.%d.%d/32", i / 256, i % 256);
		assert_int_equal(trustdb_get_white(db, addr, &w), 0);
		snprintf(addr, sizeof(addr), "10.2.%d.%d", i / 256, i % 256);
		assert_int_equal(trustdb_get_client(db, addr, &c), 0);
	}
	assert_int_equal(find4(db, "10.1.1.7", NOW, NULL, 0), 0);
	trustdb_close(db);
	verify_file(f->dir, "grey.db");
	verify_file(f->dir, "white.db");
	verify_file(f->dir, "client.db");
}

/*
 * A process dies while greyd has the environment open; the next process to
 * open it runs recovery, which panics greyd's handle.  greyd's next call
 * rejoins the environment and succeeds.
 */
static void
test_recovery_under_running_handle(void **state)
{
	struct fixture *f = *state;
	struct trustdb *db = open_db(f->dir);
	struct grey_rec g = grey_make(NOW, NOW + 60, 1);
	struct white_rec w = white_make(NOW + DAY, WHITE_LOCAL);
	char key[TRUSTDB_KEY_MAX];
	size_t len = triplet(key, sizeof(key), "192.0.2.0/24", "a@b", "c@d");
	int status;
	pid_t pid;

	assert_int_equal(trustdb_put_grey(db, key, len, &g), 0);
	assert_true((pid = fork()) != -1);
	if (pid == 0)
		_exit(child_crash(f->dir));
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(WEXITSTATUS(status), 0);
	/* a third process opens (greydb): it recovers the environment */
	assert_true((pid = fork()) != -1);
	if (pid == 0) {
		char err[256];
		struct trustdb *other = trustdb_open(f->dir, err, sizeof(err));

		if (other == NULL)
			_exit(40);
		trustdb_close(other);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(WEXITSTATUS(status), 0);
	/* that recovery panicked our handle: the call reopens, retries */
	assert_int_equal(trustdb_put_white(db, "192.0.2.0/24", &w), 0);
	assert_int_equal(trustdb_get_grey(db, key, len, &g), 0);
	assert_int_equal(find4(db, "10.1.0.9", NOW, NULL, 0), 0);
	trustdb_close(db);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_open_errors),
		cmocka_unit_test_setup(test_creates_dir, test_setup),
		cmocka_unit_test_setup(test_grey, test_setup),
		cmocka_unit_test_setup(test_white, test_setup),
		cmocka_unit_test_setup(test_client, test_setup),
		cmocka_unit_test_setup(test_find_white, test_setup),
		cmocka_unit_test_setup(test_find_white_min_passes, test_setup),
		cmocka_unit_test_setup(test_trap, test_setup),
		cmocka_unit_test_setup(test_spamtrap, test_setup),
		cmocka_unit_test_setup(test_rcpt, test_setup),
		cmocka_unit_test_setup(test_client_v2, test_setup),
		cmocka_unit_test_setup(test_expire_new_tables, test_setup),
		cmocka_unit_test_setup(test_purge_map, test_setup),
		cmocka_unit_test_setup(test_iterate_batches, test_setup),
		cmocka_unit_test_setup(test_iterate_order_and_stop, test_setup),
		cmocka_unit_test_setup(test_expire_step, test_setup),
		cmocka_unit_test_setup(test_reopen, test_setup),
		cmocka_unit_test_setup(test_two_processes, test_setup),
		cmocka_unit_test_setup(test_lock_timeout, test_setup),
		cmocka_unit_test_setup(test_dead_lock_holder, test_setup),
		cmocka_unit_test_setup(test_bad_version, test_setup),
		cmocka_unit_test_setup(test_bad_bitmap, test_setup),
		cmocka_unit_test_setup(test_client_v1, test_setup),
		cmocka_unit_test_setup(test_crash_recovery, test_setup),
		cmocka_unit_test_setup(test_recovery_under_running_handle,
		    test_setup),
	};

	log_init("trustdb.t", 1);
	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
