/*
 * t/unit/dnsbl.c — unit tests of greyd/dnsbl.c against a real rbldnsd
 * (t/unit/rbldnsd.h), with a real libevent loop and the real resolver
 * (dns.c).  rbldnsd logs every query it answers, so the tests count the
 * queries dnsbl.c makes.
 *
 * Zones (one rbldnsd for the whole group):
 *   bl.test    ip4set  TTL 600  127.0.0.2 "Listed in bl: $"; one client
 *                               answers 127.0.0.11, one 10.0.0.2, two carry
 *                               a TXT to sanitise and a TXT too long
 *   bl2.test   ip4set  TTL 300  127.0.0.4 "Listed in bl2: $"
 *   wl.test    ip4set  TTL 600  127.0.10.2 (a DNSWL)
 *   v6.test    ip6trie TTL 600  2001:db8:1::/48
 *   ttl1.test  ip4set  TTL 1    (dnsbl_min_ttl clamps it)
 *   long.test  ip4set  TTL 1d   (dnsbl_max_ttl clamps it)
 *   dn.test    dnset   TTL 600  bad.example (RHSBL)
 *
 * Covers: the score (weights summed, reply filters, an answer outside the
 * filter or outside 127/8, negative weights, a name listed twice), the
 * hits, top and txt texts (TXT asked only for positive weights, sanitised
 * and bounded), IPv6 clients (nibbles), RHSBL sender domains (lowercased;
 * too long: no query), sharing of a lookup in flight, the cache and its
 * TTL clamped to [dnsbl_min_ttl, dnsbl_max_ttl], dnsbl_timeout against a
 * silent server, dnsbl_wait (once, replaced, released from inside the
 * callback), dnsbl_release of a pending lookup, dnsbl_sweep (expired and
 * unused only, in batches), a full cache.
 *
 * Times: dnsbl.c stamps a finished entry with clock_ms() and compares
 * it with the now_ms the caller passes, so the tests pass clock_ms()
 * plus an offset instead of sleeping.
 */
#include <sys/time.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "conf.h"
#include "dns.h"
#include "clock.h"
#include "dnsbl.h"
#include "dnsbl_site.h"
#include "log.h"
#include "netaddr.h"
#include "evloop.h"
#include "rbldnsd.h"

#define PLEN		256
#define MAX_WORDS	8

struct fixture {
	char root[64];			/* the mkdtemp directory */
	char qlog[PLEN];		/* rbldnsd's query log */
	int port;			/* rbldnsd's */
	int silent_fd, silent_port;	/* bound, never read */
	struct event_base *base;
	struct greyd_conf conf;
	struct dns *dns;
	struct dnsbl *b;
};

/* What a dnsbl_wait callback saw. */
struct waiter {
	int calls;
	struct dnsbl_lookup *release;	/* released from the callback */
};

static const char *const zones[] = {
	"bl.test:ip4set:bl", "bl2.test:ip4set:bl2", "wl.test:ip4set:wl",
	"v6.test:ip6trie:v6", "ttl1.test:ip4set:ttl1",
	"long.test:ip4set:long", "dn.test:dnset:dn", NULL
};

/* ---- zones ---- */

static int
write_zone(const char *dir, const char *name, const char *text)
{
	char path[PLEN];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return write_file(path, text);
}

static int
write_zones(const char *dir)
{
	char bl[1024], longtxt[251];

	memset(longtxt, 'L', sizeof(longtxt) - 1);
	longtxt[sizeof(longtxt) - 1] = '\0';
	snprintf(bl, sizeof(bl),
	    "$SOA 3600 ns.bl.test hostmaster.bl.test 1 600 300 86400 90\n"
	    "$TTL 600\n"
	    ":127.0.0.2:Listed in bl: $\n"
	    "192.0.2.1\n"
	    "192.0.2.2 :127.0.0.11:\n"
	    "192.0.2.3 :127.0.0.2:Bad\ttext \303\251\177 end\n"
	    "192.0.2.4 :127.0.0.2:%s\n"
	    "192.0.2.5 :10.0.0.2:\n", longtxt);
	if (write_zone(dir, "bl", bl) != 0 ||
	    write_zone(dir, "bl2", "$TTL 300\n:127.0.0.4:Listed in bl2: $\n"
	    "192.0.2.1\n192.0.2.6\n") != 0 ||
	    write_zone(dir, "wl", "$TTL 600\n:127.0.10.2:Welcome $\n"
	    "192.0.2.1\n192.0.2.7\n") != 0 ||
	    write_zone(dir, "v6", "$TTL 600\n:127.0.0.2:v6 listed\n"
	    "2001:db8:1::/48\n") != 0 ||
	    write_zone(dir, "ttl1", "$TTL 1\n:127.0.0.2:short\n"
	    "192.0.2.50\n") != 0 ||
	    write_zone(dir, "long", "$TTL 86400\n:127.0.0.2:long\n"
	    "192.0.2.60\n") != 0)
		return -1;
	return write_zone(dir, "dn", "$TTL 600\n:127.0.0.2:Domain $ listed\n"
	    "bad.example\n");
}

/* ---- helpers ---- */

/* Replace a site list of the configuration by words (NULL-terminated). */
static void
set_sites(struct fixture *f, bool sender, const char *const *words)
{
	struct dnsbl_site **v = sender ? &f->conf.rhsbl_sender_sites :
	    &f->conf.dnsbl_sites;
	size_t *n = sender ? &f->conf.nrhsbl_sender_sites :
	    &f->conf.ndnsbl_sites;
	char err[CONF_ERRLEN];
	size_t i;

	free(*v);
	assert_non_null(*v = calloc(MAX_WORDS, sizeof(**v)));
	for (i = 0; words[i] != NULL && i < MAX_WORDS; i++)
		if (dnsbl_site_parse(words[i], &(*v)[i], err, sizeof(err)) !=
		    0)
			fail_msg("%s: %s", words[i], err);
	*n = i;
}

/* The resolver and the cache, on dns_servers 127.0.0.1:port. */
static void
start(struct fixture *f, int port)
{
	char err[CONF_ERRLEN] = "", server[64];

	snprintf(server, sizeof(server), "127.0.0.1:%d", port);
	assert_non_null(f->conf.dns_servers.v = calloc(1, sizeof(char *)));
	assert_non_null(f->conf.dns_servers.v[0] = strdup(server));
	f->conf.dns_servers.n = 1;
	/* as main.c: c-ares tries twice in 1.5 x dnsbl_timeout */
	f->dns = dns_new(f->base, &f->conf, dns_try_ms(&f->conf),
	    err, sizeof(err));
	if (f->dns == NULL)
		fail_msg("dns_new: %s", err);
	assert_non_null(f->b = dnsbl_new(f->base, f->dns));
}

static struct netaddr
addr(const char *s)
{
	struct netaddr a;

	if (netaddr_parse(&a, s) != 0)
		fail_msg("bad address %s", s);
	return a;
}

struct flag_want {
	const bool *flag;
	bool want;
};

static bool
flag_is(const void *arg)
{
	const struct flag_want *fw = arg;

	return *fw->flag == fw->want;
}

/* Run the loop until *flag (if given) is want or seconds pass. */
static void
run_while(struct fixture *f, const bool *flag, bool want, double seconds)
{
	struct flag_want fw = { flag, want };

	evloop_run(f->base, flag != NULL ? flag_is : NULL, &fw, seconds);
}

/* Run the loop until no lookup is pending (at most 5 s). */
static void
run_pending(struct fixture *f)
{
	struct timeval t0;

	gettimeofday(&t0, NULL);
	while (dnsbl_pending(f->b) > 0 && since(&t0) < 5)
		run_while(f, NULL, false, 0.01);
	assert_int_equal(dnsbl_pending(f->b), 0);
}

/* Wait for l, read its result, release it. */
static void
finish(struct fixture *f, struct dnsbl_lookup *l, struct dnsbl_result *r)
{
	struct timeval t0;

	assert_non_null(l);
	gettimeofday(&t0, NULL);
	while (!dnsbl_done(l) && since(&t0) < 5)
		run_while(f, NULL, false, 0.01);
	assert_true(dnsbl_done(l));
	dnsbl_result(l, r);
	dnsbl_release(l);
}

static void
client(struct fixture *f, const char *a, int64_t now_ms,
    struct dnsbl_result *r)
{
	struct netaddr na = addr(a);

	finish(f, dnsbl_client(f->b, &na, now_ms), r);
}

/* Queries of type for name (or a zone) in rbldnsd's log; it writes its log
 * line as it answers, so give it a moment. */
static int
queries(struct fixture *f, const char *name, const char *type)
{
	usleep(20000);
	return rbldnsd_queries(f->qlog, name, type);
}

static void
wait_cb(void *arg)
{
	struct waiter *w = arg;

	w->calls++;
	if (w->release != NULL) {
		dnsbl_release(w->release);
		w->release = NULL;
	}
}

/* ---- fixture ---- */

static int
group_setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	atexit(rbldnsd_kill);
	strcpy(f->root, "/tmp/greyd-dnsbl.XXXXXX");
	if (mkdtemp(f->root) == NULL || chmod(f->root, 0755) == -1 ||
	    write_zones(f->root) == -1)
		return -1;
	snprintf(f->qlog, sizeof(f->qlog), "%s/queries.log", f->root);
	if (rbldnsd_start(f->root, zones, f->qlog, "1.2.0.192.bl.test",
	    &f->port) == -1) {
		fprintf(stderr, "# rbldnsd did not start (see %s)\n",
		    f->root);
		return -1;
	}
	*state = f;
	return 0;
}

static int
group_teardown(void **state)
{
	struct fixture *f = *state;
	int ret;

	rbldnsd_kill();
	ret = rm_tree(f->root);
	free(f);
	return ret;
}

static int
test_setup(void **state)
{
	struct fixture *f = *state;
	char err[CONF_ERRLEN];

	if (conf_load(&f->conf, NULL, NULL, err, sizeof(err)) != 0) {
		fprintf(stderr, "# conf_load: %s\n", err);
		return -1;
	}
	f->conf.dnsbl_timeout = 2;
	f->conf.dnsbl_min_ttl = 2;
	f->conf.dnsbl_max_ttl = 3600;
	conf_install(&f->conf);	/* what dnsbl.c reads */
	f->dns = NULL;
	f->b = NULL;
	if ((f->base = event_base_new()) == NULL ||
	    (f->silent_fd = udp_bound(&f->silent_port)) == -1)
		return -1;
	return 0;
}

/* dns first: it completes the queries in flight, which hold entries. */
static int
test_teardown(void **state)
{
	struct fixture *f = *state;

	dns_free(f->dns);
	dnsbl_free(f->b);
	conf_free(&f->conf);
	close(f->silent_fd);
	event_base_free(f->base);
	return 0;
}

/* ---- score ---- */

static void
test_score(void **state)
{
	struct fixture *f = *state;
	const char *sites[] = { "bl.test=127.0.0.[2..10]*2", "bl2.test*3",
	    "wl.test=127.0.[0..255].[1..3]*-5", NULL };
	struct dnsbl_result r;
	int64_t now = clock_ms();

	set_sites(f, false, sites);
	start(f, f->port);

	client(f, "192.0.2.1", now, &r);	/* on all three */
	assert_int_equal(r.score, 2 + 3 - 5);
	assert_string_equal(r.hits, "bl.test*2 bl2.test*3 wl.test*-5");
	assert_string_equal(r.top, "bl2.test");
	assert_string_equal(r.txt, "Listed in bl2: 192.0.2.1");
	assert_string_equal(r.silent, "");
	assert_false(r.cached);
	assert_true(r.age_ms >= 0 && r.age_ms < 2000);

	client(f, "192.0.2.2", now, &r);	/* 127.0.0.11: not in filter */
	assert_int_equal(r.score, 0);
	assert_string_equal(r.hits, "");
	assert_string_equal(r.top, "");
	assert_string_equal(r.txt, "");

	client(f, "192.0.2.6", now, &r);
	assert_int_equal(r.score, 3);
	assert_string_equal(r.hits, "bl2.test*3");
	assert_string_equal(r.top, "bl2.test");

	client(f, "192.0.2.7", now, &r);	/* allowlisted only */
	assert_int_equal(r.score, -5);
	assert_string_equal(r.hits, "wl.test*-5");
	assert_string_equal(r.top, "");
	assert_string_equal(r.txt, "");

	client(f, "192.0.2.9", now, &r);	/* nowhere */
	assert_int_equal(r.score, 0);
	assert_string_equal(r.hits, "");
	assert_string_equal(r.silent, "");
	assert_int_equal(dnsbl_count(f->b), 5);
}

/* A name listed twice: each entry that matches adds its weight; one query
 * per distinct name; no filter: anything in 127/8, nothing else. */
static void
test_same_name(void **state)
{
	struct fixture *f = *state;
	const char *sites[] = { "bl.test=127.0.0.2*2",
	    "bl.test=127.0.0.[2..11]*1", "bl.test*10", NULL };
	struct dnsbl_result r;
	int64_t now = clock_ms();
	int a2 = queries(f, "2.2.0.192.bl.test", "A");

	set_sites(f, false, sites);
	start(f, f->port);
	client(f, "192.0.2.1", now, &r);
	assert_int_equal(r.score, 13);
	assert_string_equal(r.hits, "bl.test*2 bl.test*1 bl.test*10");
	assert_string_equal(r.top, "bl.test");
	assert_string_equal(r.txt, "Listed in bl: 192.0.2.1");

	client(f, "192.0.2.2", now, &r);
	assert_int_equal(r.score, 11);
	assert_string_equal(r.hits, "bl.test*1 bl.test*10");
	assert_int_equal(queries(f, "2.2.0.192.bl.test", "A"), a2 + 1);

	client(f, "192.0.2.5", now, &r);	/* 10.0.0.2: not a listing */
	assert_int_equal(r.score, 0);
	assert_string_equal(r.hits, "");
}

/* TXT: asked only when a positive weight matched; printable ASCII, at
 * most DNSBL_REPLY_TXT_MAX octets. */
static void
test_txt(void **state)
{
	struct fixture *f = *state;
	const char *sites[] = { "bl.test", "wl.test*-5", NULL };
	struct dnsbl_result r;
	char want[DNSBL_REPLY_TXT_MAX + 1];
	int64_t now = clock_ms();
	int wl_txt = queries(f, "wl.test", "TXT");
	int t2 = queries(f, "2.2.0.192.bl.test", "TXT");
	int t5 = queries(f, "5.2.0.192.bl.test", "TXT");

	set_sites(f, false, sites);
	start(f, f->port);
	client(f, "192.0.2.3", now, &r);
	assert_int_equal(r.score, 1);
	assert_string_equal(r.top, "bl.test");
	/* rbldnsd passes the bytes as written */
	assert_string_equal(r.txt, "Bad?text ??? end");

	client(f, "192.0.2.4", now, &r);
	memset(want, 'L', DNSBL_REPLY_TXT_MAX);
	want[DNSBL_REPLY_TXT_MAX] = '\0';
	assert_string_equal(r.txt, want);

	client(f, "192.0.2.1", now, &r);	/* listed on both */
	assert_int_equal(r.score, 1 - 5);
	assert_string_equal(r.txt, "Listed in bl: 192.0.2.1");
	client(f, "192.0.2.2", now, &r);	/* listed, no filter: counts */
	assert_int_equal(r.score, 1);
	client(f, "192.0.2.5", now, &r);	/* 10.0.0.2 */
	assert_int_equal(r.score, 0);

	assert_int_equal(queries(f, "wl.test", "TXT"), wl_txt);
	assert_int_equal(queries(f, "2.2.0.192.bl.test", "TXT"), t2 + 1);
	assert_int_equal(queries(f, "5.2.0.192.bl.test", "TXT"), t5);
}

/* A filter that does not match: no TXT either. */
static void
test_txt_filtered(void **state)
{
	struct fixture *f = *state;
	const char *sites[] = { "bl.test=127.0.0.2", NULL };
	struct dnsbl_result r;
	int t2 = queries(f, "2.2.0.192.bl.test", "TXT");

	set_sites(f, false, sites);
	start(f, f->port);
	client(f, "192.0.2.2", clock_ms(), &r);
	assert_int_equal(r.score, 0);
	assert_int_equal(queries(f, "2.2.0.192.bl.test", "TXT"), t2);
}

static void
test_ipv6(void **state)
{
	struct fixture *f = *state;
	const char *sites[] = { "v6.test*4", NULL };
	const char *name = "5.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0."
	    "1.0.0.0.8.b.d.0.1.0.0.2.v6.test";
	struct dnsbl_result r;
	int64_t now = clock_ms();
	int n = queries(f, name, "A");

	set_sites(f, false, sites);
	start(f, f->port);
	client(f, "2001:db8:1::25", now, &r);
	assert_int_equal(r.score, 4);
	assert_string_equal(r.hits, "v6.test*4");
	assert_string_equal(r.txt, "v6 listed");
	assert_int_equal(queries(f, name, "A"), n + 1);

	client(f, "2001:db8:2::25", now, &r);
	assert_int_equal(r.score, 0);
	assert_string_equal(r.silent, "");
}

/* ---- RHSBL ---- */

static void
test_sender(void **state)
{
	struct fixture *f = *state;
	const char *sites[] = { "dn.test*2", NULL };
	struct dnsbl_result r;
	struct dnsbl_lookup *l;
	struct netaddr na = addr("192.0.2.1");
	char dom[DNSBL_NAME_MAX + 2];
	int64_t now = clock_ms();
	int n = queries(f, "bad.example.dn.test", "A");
	int all;

	/* no client lists: nothing to look up for a client */
	set_sites(f, true, sites);
	start(f, f->port);
	assert_null(dnsbl_client(f->b, &na, now));

	finish(f, dnsbl_sender(f->b, "Bad.EXAMPLE", now), &r);
	assert_int_equal(r.score, 2);
	assert_string_equal(r.hits, "dn.test*2");
	assert_string_equal(r.top, "dn.test");
	assert_string_equal(r.txt, "Domain bad.example listed");
	assert_int_equal(queries(f, "bad.example.dn.test", "A"), n + 1);

	finish(f, dnsbl_sender(f->b, "good.example", now), &r);
	assert_int_equal(r.score, 0);
	assert_string_equal(r.hits, "");

	/* the same key, whatever the case: from the cache */
	finish(f, dnsbl_sender(f->b, "bad.example", now), &r);
	assert_true(r.cached);
	assert_int_equal(r.score, 2);

	/* 246 octets + ".dn.test" > 253: no query, done at once */
	all = queries(f, "dn.test", "A");
	memset(dom, 'a', sizeof(dom));
	dom[63] = dom[127] = dom[191] = '.';
	dom[246] = '\0';
	assert_non_null(l = dnsbl_sender(f->b, dom, now));
	assert_true(dnsbl_done(l));
	dnsbl_result(l, &r);
	assert_int_equal(r.score, 0);
	assert_string_equal(r.silent, "dn.test");	/* failed */
	dnsbl_release(l);
	assert_int_equal(dnsbl_pending(f->b), 0);
	/* too long for a domain, or empty: nothing */
	dom[246] = 'a';
	dom[DNSBL_NAME_MAX + 1] = '\0';
	assert_null(dnsbl_sender(f->b, dom, now));
	assert_null(dnsbl_sender(f->b, "", now));
	assert_int_equal(queries(f, "dn.test", "A"), all);
}

/* ---- sharing and the cache ---- */

static void
test_shared(void **state)
{
	struct fixture *f = *state;
	const char *sites[] = { "bl.test", "bl2.test", NULL };
	struct netaddr a = addr("192.0.2.1");
	struct dnsbl_lookup *l1, *l2, *l3;
	struct dnsbl_result r1, r2, r3;
	int64_t now = clock_ms();
	int bl = queries(f, "1.2.0.192.bl.test", "A");
	int bl2 = queries(f, "1.2.0.192.bl2.test", "A");
	int txt = queries(f, "1.2.0.192.bl.test", "TXT");

	set_sites(f, false, sites);
	start(f, f->port);
	assert_non_null(l1 = dnsbl_client(f->b, &a, now));
	assert_non_null(l2 = dnsbl_client(f->b, &a, now + 10));
	assert_ptr_not_equal(l1, l2);
	assert_int_equal(dnsbl_count(f->b), 1);
	assert_int_equal(dnsbl_pending(f->b), 1);
	assert_false(dnsbl_done(l1));
	assert_false(dnsbl_cached_client(f->b, &a, now, &r3));
	dnsbl_result(l1, &r1);			/* pending: empty */
	assert_int_equal(r1.score, 0);
	assert_string_equal(r1.hits, "");
	finish(f, l1, &r1);
	assert_true(dnsbl_done(l2));
	finish(f, l2, &r2);
	assert_int_equal(r1.score, 2);
	assert_int_equal(r2.score, 2);
	assert_false(r1.cached);
	assert_false(r2.cached);
	assert_string_equal(r2.hits, "bl.test*1 bl2.test*1");
	assert_int_equal(queries(f, "1.2.0.192.bl.test", "A"), bl + 1);
	assert_int_equal(queries(f, "1.2.0.192.bl2.test", "A"), bl2 + 1);
	assert_int_equal(queries(f, "1.2.0.192.bl.test", "TXT"), txt + 1);

	/* done: the next lookup reads the cache */
	now = clock_ms();
	assert_non_null(l3 = dnsbl_client(f->b, &a, now));
	assert_true(dnsbl_done(l3));
	assert_false(dnsbl_wait(l3, wait_cb, NULL));
	finish(f, l3, &r3);
	assert_true(r3.cached);
	assert_int_equal(r3.score, 2);
	assert_string_equal(r3.hits, r1.hits);
	assert_string_equal(r3.txt, r1.txt);
	memset(&r3, 0, sizeof(r3));
	assert_true(dnsbl_cached_client(f->b, &a, now, &r3));
	assert_true(r3.cached);
	assert_int_equal(r3.score, 2);
	assert_int_equal(queries(f, "1.2.0.192.bl.test", "A"), bl + 1);
	assert_int_equal(queries(f, "1.2.0.192.bl2.test", "A"), bl2 + 1);
	assert_int_equal(queries(f, "1.2.0.192.bl.test", "TXT"), txt + 1);
	assert_int_equal(dnsbl_count(f->b), 1);

	/* weights of the configuration current when the result is read */
	f->conf.dnsbl_sites[1].weight = 7;
	assert_true(dnsbl_cached_client(f->b, &a, now, &r3));
	assert_int_equal(r3.score, 8);
	assert_string_equal(r3.top, "bl2.test");
}

/* $TTL 1 with dnsbl_min_ttl 2: cached for 2 s. */
static void
test_ttl_min(void **state)
{
	struct fixture *f = *state;
	const char *sites[] = { "ttl1.test", NULL };
	struct netaddr a = addr("192.0.2.50"), none = addr("192.0.2.51");
	struct dnsbl_result r;
	struct dnsbl_lookup *l;
	int64_t t0, t1;
	int n = queries(f, "50.2.0.192.ttl1.test", "A");

	set_sites(f, false, sites);
	f->conf.dnsbl_min_ttl = 2;
	start(f, f->port);
	t0 = clock_ms();
	finish(f, dnsbl_client(f->b, &a, t0), &r);
	finish(f, dnsbl_client(f->b, &none, t0), &r);	/* NXDOMAIN */
	t1 = clock_ms();
	assert_int_equal(r.score, 0);
	assert_int_equal(queries(f, "50.2.0.192.ttl1.test", "A"), n + 1);

	/* 1.5 s later: still cached, no query */
	finish(f, dnsbl_client(f->b, &a, t1 + 1500), &r);
	assert_true(r.cached);
	assert_int_equal(r.score, 1);
	assert_true(dnsbl_cached_client(f->b, &none, t1 + 1500, &r));
	assert_int_equal(queries(f, "50.2.0.192.ttl1.test", "A"), n + 1);

	/* 2.5 s later: expired, asked again */
	assert_false(dnsbl_cached_client(f->b, &a, t1 + 2500, &r));
	assert_false(dnsbl_cached_client(f->b, &none, t1 + 2500, &r));
	assert_non_null(l = dnsbl_client(f->b, &a, t1 + 2500));
	assert_false(dnsbl_done(l));
	assert_int_equal(dnsbl_count(f->b), 2);	/* replaced */
	finish(f, l, &r);
	assert_false(r.cached);
	assert_int_equal(r.score, 1);
	assert_int_equal(queries(f, "50.2.0.192.ttl1.test", "A"), n + 2);
}

/* $TTL 1d with dnsbl_max_ttl 100: cached for 100 s. */
static void
test_ttl_max(void **state)
{
	struct fixture *f = *state;
	const char *sites[] = { "long.test", NULL };
	struct netaddr a = addr("192.0.2.60");
	struct dnsbl_result r;
	int64_t t0, t1;

	set_sites(f, false, sites);
	f->conf.dnsbl_max_ttl = 100;
	start(f, f->port);
	t0 = clock_ms();
	client(f, "192.0.2.60", t0, &r);
	t1 = clock_ms();
	assert_int_equal(r.score, 1);
	assert_true(dnsbl_cached_client(f->b, &a, t0 + 99000, &r));
	assert_int_equal(r.score, 1);
	assert_false(dnsbl_cached_client(f->b, &a, t1 + 100001, &r));
}

/* ---- timeout ---- */

static void
test_timeout(void **state)
{
	struct fixture *f = *state;
	const char *sites[] = { "bl.test*2", "bl2.test", "wl.test*-1", NULL };
	struct netaddr a = addr("192.0.2.1");
	struct waiter w = { 0 };
	struct dnsbl_lookup *l;
	struct dnsbl_result r;
	struct timeval t0;
	double t;
	bool done = false;

	set_sites(f, false, sites);
	f->conf.dnsbl_timeout = 1;
	start(f, f->silent_port);
	gettimeofday(&t0, NULL);
	assert_non_null(l = dnsbl_client(f->b, &a, clock_ms()));
	assert_true(dnsbl_wait(l, wait_cb, &w));
	while (!done && since(&t0) < 5) {
		run_while(f, NULL, false, 0.01);
		done = dnsbl_done(l);
	}
	t = since(&t0);
	assert_true(done);
	assert_int_equal(w.calls, 1);
	if (t < 0.9 || t > 1.4)
		fail_msg("done after %.3f s, dnsbl_timeout is 1 s", t);
	dnsbl_result(l, &r);
	dnsbl_release(l);
	assert_int_equal(r.score, 0);
	assert_string_equal(r.hits, "");
	assert_string_equal(r.silent, "bl.test bl2.test wl.test");
	assert_int_equal(dnsbl_pending(f->b), 0);

	/* cached for dnsbl_min_ttl; the queries still in flight time out
	 * later and change nothing */
	run_while(f, NULL, false, 1.0);
	assert_true(dnsbl_cached_client(f->b, &a, clock_ms(), &r));
	assert_string_equal(r.silent, "bl.test bl2.test wl.test");
	assert_false(dnsbl_cached_client(f->b, &a, clock_ms() + 2100, &r));
}

/* ---- waiting and releasing ---- */

static void
test_wait(void **state)
{
	struct fixture *f = *state;
	const char *sites[] = { "bl.test", "bl2.test", "wl.test*-5", NULL };
	struct netaddr a = addr("192.0.2.1");
	struct dnsbl_lookup *l1, *l2, *l3;
	struct waiter w1 = { 0 }, w2 = { 0 }, w3 = { 0 };
	struct dnsbl_result r;
	int64_t now = clock_ms();

	set_sites(f, false, sites);
	start(f, f->port);
	assert_non_null(l1 = dnsbl_client(f->b, &a, now));
	assert_non_null(l2 = dnsbl_client(f->b, &a, now));
	assert_non_null(l3 = dnsbl_client(f->b, &a, now));
	/* a second dnsbl_wait replaces the first */
	assert_true(dnsbl_wait(l1, wait_cb, &w3));
	assert_true(dnsbl_wait(l1, wait_cb, &w1));
	assert_true(dnsbl_wait(l2, wait_cb, &w2));
	/* l3's callback releases l3 */
	w3.release = l3;
	assert_true(dnsbl_wait(l3, wait_cb, &w3));
	assert_int_equal(w1.calls + w2.calls + w3.calls, 0);
	run_pending(f);
	run_while(f, NULL, false, 0.2);
	assert_int_equal(w1.calls, 1);
	assert_int_equal(w2.calls, 1);
	assert_int_equal(w3.calls, 1);
	assert_null(w3.release);
	assert_false(dnsbl_wait(l1, wait_cb, &w1));
	finish(f, l1, &r);
	assert_int_equal(r.score, 1 + 1 - 5);
	finish(f, l2, &r);
	assert_int_equal(w1.calls, 1);
}

/* The last handle of a pending lookup released: its callback never runs,
 * the entry finishes and stays cached (ASan: nothing leaks). */
static void
test_release_pending(void **state)
{
	struct fixture *f = *state;
	const char *sites[] = { "bl.test", "bl2.test", NULL };
	struct netaddr a = addr("192.0.2.1"), b = addr("192.0.2.6");
	struct dnsbl_lookup *l, *m;
	struct waiter w = { 0 }, wm = { 0 };
	struct dnsbl_result r;
	int64_t now = clock_ms();

	set_sites(f, false, sites);
	start(f, f->port);
	assert_non_null(l = dnsbl_client(f->b, &a, now));
	assert_true(dnsbl_wait(l, wait_cb, &w));
	dnsbl_release(l);
	/* one handle of two released: the other is still called */
	assert_non_null(l = dnsbl_client(f->b, &b, now));
	assert_non_null(m = dnsbl_client(f->b, &b, now));
	assert_true(dnsbl_wait(l, wait_cb, &w));
	assert_true(dnsbl_wait(m, wait_cb, &wm));
	dnsbl_release(l);
	run_pending(f);
	run_while(f, NULL, false, 0.2);
	assert_int_equal(w.calls, 0);
	assert_int_equal(wm.calls, 1);
	finish(f, m, &r);
	assert_int_equal(r.score, 1);
	assert_int_equal(dnsbl_count(f->b), 2);
	assert_true(dnsbl_cached_client(f->b, &a, now, &r));
	assert_int_equal(r.score, 2);
}

/* ---- sweep ---- */

static void
test_sweep(void **state)
{
	struct fixture *f = *state;
	const char *sites[] = { "bl.test", NULL };
	const char *addrs[] = { "192.0.2.1", "192.0.2.2", "192.0.2.3",
	    "192.0.2.9" };
	struct dnsbl_lookup *held, *pending;
	struct netaddr a = addr("192.0.2.4");
	struct dnsbl_result r;
	int64_t t1;
	int i;

	set_sites(f, false, sites);
	f->conf.dnsbl_min_ttl = 2;
	start(f, f->port);
	for (i = 0; i < 4; i++)
		client(f, addrs[i], clock_ms(), &r);
	a = addr("192.0.2.1");
	assert_non_null(held = dnsbl_client(f->b, &a, clock_ms()));
	t1 = clock_ms();
	assert_int_equal(dnsbl_count(f->b), 4);

	/* nothing expired yet (bl.test's TTL is 600 s) */
	dnsbl_sweep(f->b, t1, 100);
	assert_int_equal(dnsbl_count(f->b), 4);

	/* a pending lookup is never swept */
	a = addr("192.0.2.5");
	assert_non_null(pending = dnsbl_client(f->b, &a, t1));
	assert_int_equal(dnsbl_count(f->b), 5);

	/* in key order, 2 examined at a time: .1 (held) .2, then .3 .5
	 * (pending), then .9 */
	dnsbl_sweep(f->b, t1 + 700000, 2);
	assert_int_equal(dnsbl_count(f->b), 4);
	dnsbl_sweep(f->b, t1 + 700000, 2);
	assert_int_equal(dnsbl_count(f->b), 3);
	dnsbl_sweep(f->b, t1 + 700000, 100);
	assert_int_equal(dnsbl_count(f->b), 2);
	assert_false(dnsbl_done(pending));

	/* released: swept */
	dnsbl_release(held);
	dnsbl_sweep(f->b, t1 + 700000, 100);
	assert_int_equal(dnsbl_count(f->b), 1);
	finish(f, pending, &r);
	assert_int_equal(r.score, 0);		/* 10.0.0.2 */
	dnsbl_sweep(f->b, clock_ms() + 700000, 100);
	assert_int_equal(dnsbl_count(f->b), 0);
}

/* ---- a full cache ---- */

/*
 * DNSBL_CACHE_MAX entries (cheap: a list whose query name is too long
 * finishes at once, without a query), then a real lookup: it is not
 * cached, and is freed when its last handle goes, here from inside its
 * callback, while the last query's answer is being handled.
 */
static void
test_cache_full(void **state)
{
	struct fixture *f = *state;
	char longname[300];
	const char *fill[] = { longname, NULL }, *sites[] = { "bl.test",
	    NULL };
	struct netaddr a = addr("10.0.0.0");
	struct dnsbl_lookup *l;
	struct dnsbl_result r;
	struct waiter w = { 0 };
	int64_t now = clock_ms();
	int i;

	/* 63 + 1 + 63 + 1 + 63 + 1 + 50 + 5 = 247 */
	memset(longname, 'x', sizeof(longname));
	longname[63] = longname[127] = longname[191] = '.';
	memcpy(longname + 242, ".test", 6);
	set_sites(f, false, fill);
	start(f, f->port);
	for (i = 0; i < DNSBL_CACHE_MAX; i++) {
		a.bytes[1] = (uint8_t)(i >> 16);
		a.bytes[2] = (uint8_t)(i >> 8);
		a.bytes[3] = (uint8_t)i;
		assert_non_null(l = dnsbl_client(f->b, &a, now));
		dnsbl_release(l);
	}
	assert_int_equal(dnsbl_count(f->b), DNSBL_CACHE_MAX);
	assert_int_equal(dnsbl_pending(f->b), 0);

	set_sites(f, false, sites);
	a = addr("192.0.2.1");
	assert_non_null(l = dnsbl_client(f->b, &a, now));
	assert_int_equal(dnsbl_count(f->b), DNSBL_CACHE_MAX);
	assert_int_equal(dnsbl_pending(f->b), 1);
	w.release = l;
	assert_true(dnsbl_wait(l, wait_cb, &w));
	run_pending(f);
	assert_int_equal(w.calls, 1);
	assert_false(dnsbl_cached_client(f->b, &a, now, &r));

	/* the same, read before release */
	finish(f, dnsbl_client(f->b, &a, now), &r);
	assert_false(r.cached);
	assert_int_equal(r.score, 1);
	assert_int_equal(dnsbl_count(f->b), DNSBL_CACHE_MAX);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, test_setup, test_teardown)
		T(test_score),
		T(test_same_name),
		T(test_txt),
		T(test_txt_filtered),
		T(test_ipv6),
		T(test_sender),
		T(test_shared),
		T(test_ttl_min),
		T(test_ttl_max),
		T(test_timeout),
		T(test_wait),
		T(test_release_pending),
		T(test_sweep),
		T(test_cache_full),
#undef T
	};

	log_init("dnsbl.t", 1);
	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
