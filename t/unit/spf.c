/*
 * t/unit/spf.c — unit tests of greyd/spf.c (libspf2 in worker threads over
 * greyd's resolver) against a real DNS server, driven by a real libevent
 * loop.  No mocks:
 *
 *   rbldnsd   started once for the group (rbldnsd.h: as user rbldns, on a
 *             free UDP port of 127.0.0.1 and ::1, killed by PID at the end
 *             and at exit), serving a generic zone spf.test with the SPF
 *             records below; it answers REFUSED for names outside its zones.
 *   silence   a bound UDP socket nobody reads: every query times out.
 *
 * Covers: pass (ip4, a, mx, include), fail with the domain's exp= text and
 * with libspf2's default explanation, softfail, neutral, none (no record,
 * no domain), permerror (syntax error; more than 10 DNS mechanisms; an
 * include loop), temperror (a server answering REFUSED; a
 * dead server with a short DNS timeout), the null sender (the HELO
 * identity, postmaster@helo; a HELO name that is an address gives none),
 * an IPv6 client, the Received-SPF line exactly, callbacks never inside
 * spf_check, spf_cancel (the callback never runs, while queued and while
 * running), spf_timeout (temperror "timeout", the late result dropped),
 * spf_free with checks queued and running, many checks in parallel,
 * spf_workers = 0.
 */
#include <sys/socket.h>
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
#include "log.h"
#include "netaddr.h"
#include "spf.h"
#include "evloop.h"
#include "rbldnsd.h"

#define HOST		"mx.greyd.test"
#define NPARALLEL	100

struct fixture {
	char root[64];
	int port;			/* rbldnsd's */
	int silent_fd, silent_port;
	struct event_base *base;
	struct greyd_conf conf;
	struct conf_list orig_servers;	/* conf_load's, given back */
	char *servers[1];
	char server_buf[64];
	struct spf *spf;
};

struct result {
	int calls;
	struct spf_answer a;
};

static bool in_spf_check;
static int answers_total;

static const char *const zones[] = { "spf.test:generic:spf", NULL };

static int
write_zone(const char *dir)
{
	char path[RBLDNSD_PLEN], text[4096];
	size_t n;
	int i;

	n = (size_t)snprintf(text, sizeof(text),
	    "$TTL 300\n"
	    "probe A 192.0.2.99\n"
	    "pass TXT \"v=spf1 ip4:192.0.2.0/24 -all\"\n"
	    "fail TXT \"v=spf1 ip4:192.0.2.0/24 -all exp=why.spf.test\"\n"
	    "why TXT \"%%{i}%%_is%%_not%%_allowed%%_for%%_%%{d}\"\n"
	    "plain TXT \"v=spf1 -all\"\n"
	    "soft TXT \"v=spf1 ~all\"\n"
	    "neutral TXT \"v=spf1 ?all\"\n"
	    "nospf TXT \"not an spf record\"\n"
	    "syntax TXT \"v=spf1 ip4:192.0.2.0/24 frob:x -all\"\n"
	    "loop TXT \"v=spf1 include:loop.spf.test -all\"\n"
	    "amx TXT \"v=spf1 a mx -all\"\n"
	    "amx A 198.51.100.1\n"
	    "amx MX 10 mx1.spf.test\n"
	    "mx1 A 198.51.100.2\n"
	    "inc TXT \"v=spf1 include:pass.spf.test -all\"\n"
	    "refused TXT \"v=spf1 include:spf.example.org -all\"\n"
	    "v6 TXT \"v=spf1 ip6:2001:db8::/32 -all\"\n"
	    "helo TXT \"v=spf1 ip4:203.0.113.0/24 -all\"\n"
	    "many TXT \"v=spf1");
	/* 11 a: mechanisms, one lookup each: over the limit of 10 */
	for (i = 0; i < 11 && n < sizeof(text); i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n,
		    " a:a%d.spf.test", i);
	if (n < sizeof(text))
		snprintf(text + n, sizeof(text) - n, " -all\"\n");
	snprintf(path, sizeof(path), "%s/spf", dir);
	return write_file(path, text);
}

/* ---- helpers ---- */

/* Run the loop until answers_total reaches want or seconds pass. */
static void
run_until(struct fixture *f, int want, double seconds)
{
	evloop_run_count(f->base, &answers_total, want, seconds);
}

/* Resolver on port with dns_timeout_ms per try, spf with workers. */
static void
start(struct fixture *f, int port, int dns_timeout_ms, int workers,
    int spf_timeout)
{
	char err[CONF_ERRLEN] = "";

	snprintf(f->server_buf, sizeof(f->server_buf), "127.0.0.1:%d", port);
	f->servers[0] = f->server_buf;
	f->conf.dns_servers.v = f->servers;
	f->conf.dns_servers.n = 1;
	f->conf.spf_workers = workers;
	f->conf.spf_timeout = spf_timeout;
	f->spf = spf_new(f->base, dns_timeout_ms, err, sizeof(err));
	if (f->spf == NULL)
		fail_msg("spf_new: %s", err);
}

static void
answer_cb(const struct spf_answer *a, void *arg)
{
	struct result *r = arg;

	assert_false(in_spf_check);
	r->calls++;
	r->a = *a;
	answers_total++;
}

static struct spf_check *
check(struct fixture *f, const char *ip, const char *helo, const char *sender,
    struct result *r)
{
	struct netaddr a;
	struct spf_check *c;

	assert_int_equal(netaddr_parse(&a, ip), 0);
	in_spf_check = true;
	c = spf_check(f->spf, &a, helo, sender, answer_cb, r);
	in_spf_check = false;
	assert_non_null(c);
	return c;
}

/* One check, run to its answer. */
static void
ask(struct fixture *f, const char *ip, const char *helo, const char *sender,
    struct result *r)
{
	memset(r, 0, sizeof(*r));
	answers_total = 0;
	check(f, ip, helo, sender, r);
	assert_int_equal(r->calls, 0);
	run_until(f, 1, 10);
	if (r->calls != 1)
		fail_msg("%s %s <%s>: %d callbacks", ip, helo, sender,
		    r->calls);
	assert_int_equal(spf_pending(f->spf), 0);
}

static void
expect(struct fixture *f, const char *ip, const char *helo,
    const char *sender, enum spf_result want)
{
	struct result r;

	ask(f, ip, helo, sender, &r);
	if (r.a.result != want)
		fail_msg("%s %s <%s>: %s (%s), expected %s", ip, helo, sender,
		    spf_result_name(r.a.result), r.a.reason,
		    spf_result_name(want));
}

/* ---- fixture ---- */

static int
group_setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	atexit(rbldnsd_kill);
	strcpy(f->root, "/tmp/greyd-spf.XXXXXX");
	if (mkdtemp(f->root) == NULL || chmod(f->root, 0755) == -1 ||
	    write_zone(f->root) == -1 || rbldnsd_start(f->root, zones, NULL,
	    "probe.spf.test", &f->port) == -1) {
		fprintf(stderr, "cannot start rbldnsd in %s\n", f->root);
		return -1;
	}
	if ((f->silent_fd = udp_bound(&f->silent_port)) == -1)
		return -1;
	*state = f;
	return 0;
}

static int
group_teardown(void **state)
{
	struct fixture *f = *state;

	rbldnsd_kill();
	close(f->silent_fd);
	rm_tree(f->root);
	free(f);
	return 0;
}

static int
test_setup(void **state)
{
	struct fixture *f = *state;
	char err[CONF_ERRLEN];

	if (conf_load(&f->conf, NULL, NULL, err, sizeof(err)) == -1) {
		fprintf(stderr, "conf_load: %s\n", err);
		return -1;
	}
	strlcpy(f->conf.hostname, HOST, sizeof(f->conf.hostname));
	f->orig_servers = f->conf.dns_servers;
	conf_install(&f->conf);	/* what spf.c reads */
	if ((f->base = event_base_new()) == NULL)
		return -1;
	answers_total = 0;
	return 0;
}

static int
test_teardown(void **state)
{
	struct fixture *f = *state;

	spf_free(f->spf);
	f->spf = NULL;
	f->conf.dns_servers = f->orig_servers;
	conf_free(&f->conf);
	event_base_free(f->base);
	return 0;
}

/* ---- tests ---- */

static void
test_pass(void **state)
{
	struct fixture *f = *state;
	struct result r;

	start(f, f->port, 500, 2, 10);
	ask(f, "192.0.2.1", "h.example", "x@pass.spf.test", &r);
	assert_int_equal(r.a.result, SPF_R_PASS);
	assert_false(r.a.helo);
	assert_string_equal(r.a.domain, "pass.spf.test");
	assert_string_equal(r.a.explanation, "");
	assert_string_equal(r.a.reason, "");
	assert_string_equal(r.a.received, "Received-SPF: pass (" HOST
	    ": domain of pass.spf.test designates 192.0.2.1 as permitted "
	    "sender) client-ip=192.0.2.1; envelope-from=x@pass.spf.test; "
	    "helo=h.example;");
	assert_true(r.a.elapsed_ms >= 0 && r.a.elapsed_ms < 5000);
	expect(f, "198.51.100.1", "h", "x@amx.spf.test", SPF_R_PASS);
	expect(f, "198.51.100.2", "h", "x@amx.spf.test", SPF_R_PASS);
	expect(f, "198.51.100.3", "h", "x@amx.spf.test", SPF_R_FAIL);
	expect(f, "192.0.2.77", "h", "x@inc.spf.test", SPF_R_PASS);
}

static void
test_fail(void **state)
{
	struct fixture *f = *state;
	struct result r;

	start(f, f->port, 500, 2, 10);
	ask(f, "198.51.100.9", "h.example", "who@fail.spf.test", &r);
	assert_int_equal(r.a.result, SPF_R_FAIL);
	assert_string_equal(r.a.explanation,
	    "198.51.100.9 is not allowed for fail.spf.test");
	assert_string_equal(r.a.received, "Received-SPF: fail (" HOST
	    ": domain of fail.spf.test does not designate 198.51.100.9 as "
	    "permitted sender) client-ip=198.51.100.9; "
	    "envelope-from=who@fail.spf.test; helo=h.example;");
	/* no exp=: libspf2's default text */
	ask(f, "198.51.100.9", "h.example", "who@plain.spf.test", &r);
	assert_int_equal(r.a.result, SPF_R_FAIL);
	assert_non_null(strstr(r.a.explanation, "who%40plain.spf.test"));
	assert_true(strlen(r.a.explanation) <= SPF_EXPLAIN_MAX);
}

static void
test_softfail_neutral_none(void **state)
{
	struct fixture *f = *state;
	struct result r;

	start(f, f->port, 500, 2, 10);
	expect(f, "198.51.100.9", "h", "x@soft.spf.test", SPF_R_SOFTFAIL);
	expect(f, "198.51.100.9", "h", "x@neutral.spf.test", SPF_R_NEUTRAL);
	ask(f, "198.51.100.9", "h", "x@nospf.spf.test", &r);
	assert_int_equal(r.a.result, SPF_R_NONE);
	assert_string_equal(r.a.explanation, "");
	assert_non_null(strstr(r.a.received, "Received-SPF: none (" HOST));
	/* NXDOMAIN */
	expect(f, "198.51.100.9", "h", "x@nothere.spf.test", SPF_R_NONE);
	/* a domain that cannot exist: no query */
	expect(f, "198.51.100.9", "h", "x@a..b", SPF_R_NONE);
}

static void
test_permerror(void **state)
{
	struct fixture *f = *state;
	struct result r;

	start(f, f->port, 500, 2, 10);
	ask(f, "192.0.2.1", "h", "x@syntax.spf.test", &r);
	assert_int_equal(r.a.result, SPF_R_PERMERROR);
	assert_string_not_equal(r.a.reason, "");
	assert_non_null(strstr(r.a.received, "Received-SPF: permerror ("));
	/* 11 a: mechanisms, more than 10 DNS lookups */
	ask(f, "192.0.2.1", "h", "x@many.spf.test", &r);
	assert_int_equal(r.a.result, SPF_R_PERMERROR);
	assert_string_not_equal(r.a.reason, "");
	/* include of itself */
	expect(f, "192.0.2.1", "h", "x@loop.spf.test", SPF_R_PERMERROR);
}

static void
test_temperror(void **state)
{
	struct fixture *f = *state;
	struct result r;

	start(f, f->port, 300, 2, 10);
	/* REFUSED, for the sender's domain and through an include */
	ask(f, "192.0.2.1", "h", "x@example.org", &r);
	assert_int_equal(r.a.result, SPF_R_TEMPERROR);
	assert_string_not_equal(r.a.reason, "");
	assert_non_null(strstr(r.a.received, "Received-SPF: temperror ("));
	expect(f, "198.51.100.9", "h", "x@refused.spf.test",
	    SPF_R_TEMPERROR);
	spf_free(f->spf);

	/* nobody answers: 2 tries of 100 ms, then temperror */
	start(f, f->silent_port, 100, 2, 10);
	ask(f, "192.0.2.1", "h", "x@pass.spf.test", &r);
	assert_int_equal(r.a.result, SPF_R_TEMPERROR);
	assert_string_not_equal(r.a.reason, "timeout");
	assert_true(r.a.elapsed_ms < 5000);
}

static void
test_null_sender(void **state)
{
	struct fixture *f = *state;
	struct result r;

	start(f, f->port, 500, 2, 10);
	ask(f, "203.0.113.5", "helo.spf.test", "", &r);
	assert_int_equal(r.a.result, SPF_R_PASS);
	assert_true(r.a.helo);
	assert_string_equal(r.a.domain, "helo.spf.test");
	assert_non_null(strstr(r.a.received,
	    "envelope-from=postmaster@helo.spf.test; helo=helo.spf.test;"));
	expect(f, "192.0.2.1", "helo.spf.test", "", SPF_R_FAIL);
	/* address literals and non-domains: none, without a lookup */
	expect(f, "192.0.2.1", "[192.0.2.1]", "", SPF_R_NONE);
	expect(f, "192.0.2.1", "192.0.2.1", "", SPF_R_NONE);
	expect(f, "192.0.2.1", "localhost", "", SPF_R_NONE);
	expect(f, "192.0.2.1", "", "", SPF_R_NONE);
}

static void
test_ipv6(void **state)
{
	struct fixture *f = *state;
	struct result r;

	start(f, f->port, 500, 2, 10);
	ask(f, "2001:db8::25", "h", "x@v6.spf.test", &r);
	assert_int_equal(r.a.result, SPF_R_PASS);
	assert_non_null(strstr(r.a.received, "client-ip=2001:db8::25;"));
	expect(f, "2001:db9::25", "h", "x@v6.spf.test", SPF_R_FAIL);
	expect(f, "2001:db8::25", "h", "x@pass.spf.test", SPF_R_FAIL);
}

static void
test_bounds(void **state)
{
	struct fixture *f = *state;
	char big[600];
	struct result r;

	start(f, f->port, 500, 2, 10);
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	ask(f, "192.0.2.1", big, "x@pass.spf.test", &r);
	assert_int_equal(r.a.result, SPF_R_NONE);
	ask(f, "192.0.2.1", "h", big, &r);
	assert_int_equal(r.a.result, SPF_R_NONE);
	/* control characters never reach the header */
	ask(f, "192.0.2.1", "h\r\nX-Evil: 1", "x\001@pass.spf.test", &r);
	assert_int_equal(r.a.result, SPF_R_PASS);
	assert_null(strchr(r.a.received, '\r'));
	assert_null(strchr(r.a.received, '\n'));
	assert_null(strchr(r.a.received, '\001'));
}

static void
test_cancel(void **state)
{
	struct fixture *f = *state;
	struct result r[3];
	struct timeval t0;

	memset(r, 0, sizeof(r));
	/* one worker, a silent server: the first check runs, the second
	 * waits in the queue */
	start(f, f->silent_port, 2000, 1, 10);
	spf_cancel(check(f, "192.0.2.1", "h", "x@pass.spf.test", &r[0]));
	assert_int_equal(spf_pending(f->spf), 0);
	struct spf_check *running = check(f, "192.0.2.1", "h",
	    "x@pass.spf.test", &r[1]);
	run_until(f, 1, 0.3);		/* the worker waits for DNS */
	struct spf_check *queued = check(f, "192.0.2.1", "h",
	    "x@pass.spf.test", &r[2]);
	assert_int_equal(spf_pending(f->spf), 2);
	spf_cancel(queued);
	spf_cancel(running);
	assert_int_equal(spf_pending(f->spf), 0);
	/* the abandoned worker is free again at once: a check answers */
	spf_free(f->spf);
	start(f, f->port, 500, 1, 10);
	gettimeofday(&t0, NULL);
	expect(f, "192.0.2.1", "h", "x@pass.spf.test", SPF_R_PASS);
	run_until(f, 100, 0.3);
	assert_int_equal(r[0].calls + r[1].calls + r[2].calls, 0);
}

static void
test_cancel_running_worker_freed(void **state)
{
	struct fixture *f = *state;
	struct result r[2];
	struct timeval t0;

	memset(r, 0, sizeof(r));
	start(f, f->silent_port, 3000, 1, 30);
	spf_cancel(check(f, "192.0.2.1", "h", "x@pass.spf.test", &r[0]));
	check(f, "192.0.2.1", "h", "x@pass.spf.test", &r[1]);
	run_until(f, 1, 0.3);
	/* the running check was cancelled and its lookup answered: the
	 * second one runs now, and waits on DNS in turn */
	gettimeofday(&t0, NULL);
	spf_free(f->spf);	/* joins quickly, no callback */
	f->spf = NULL;
	assert_true(since(&t0) < 1.0);
	assert_int_equal(r[0].calls + r[1].calls, 0);
}

static void
test_timeout(void **state)
{
	struct fixture *f = *state;
	struct result r;

	/* DNS would wait 2 x 3 s per try; spf_timeout is 1 s */
	start(f, f->silent_port, 3000, 1, 1);
	ask(f, "192.0.2.1", "h", "x@pass.spf.test", &r);
	assert_int_equal(r.a.result, SPF_R_TEMPERROR);
	assert_string_equal(r.a.reason, "timeout");
	assert_string_equal(r.a.domain, "pass.spf.test");
	assert_non_null(strstr(r.a.received, "Received-SPF: temperror ("
	    HOST ": timeout) client-ip=192.0.2.1;"));
	assert_true(r.a.elapsed_ms >= 900 && r.a.elapsed_ms < 3000);
	/* the late result is dropped, the worker is free again */
	run_until(f, 100, 0.5);
	assert_int_equal(r.calls, 1);
	assert_int_equal(spf_pending(f->spf), 0);
}

static void
test_free_pending(void **state)
{
	struct fixture *f = *state;
	struct result r[10];
	int i;

	memset(r, 0, sizeof(r));
	start(f, f->silent_port, 2000, 2, 10);
	for (i = 0; i < 10; i++)
		check(f, "192.0.2.1", "h", "x@pass.spf.test", &r[i]);
	run_until(f, 1, 0.2);
	assert_int_equal(spf_pending(f->spf), 10);
	spf_free(f->spf);
	f->spf = NULL;
	for (i = 0; i < 10; i++)
		assert_int_equal(r[i].calls, 0);
}

static void
test_parallel(void **state)
{
	struct fixture *f = *state;
	struct result *r = calloc(NPARALLEL, sizeof(*r));
	int i;

	assert_non_null(r);
	start(f, f->port, 1000, 4, 20);
	for (i = 0; i < NPARALLEL; i++)
		check(f, i % 2 == 0 ? "192.0.2.1" : "198.51.100.1", "h",
		    i % 3 == 0 ? "x@amx.spf.test" : "x@pass.spf.test", &r[i]);
	assert_int_equal(spf_pending(f->spf), NPARALLEL);
	run_until(f, NPARALLEL, 20);
	for (i = 0; i < NPARALLEL; i++) {
		if (r[i].calls != 1)
			fail_msg("check %d: %d callbacks", i, r[i].calls);
		assert_int_equal(r[i].a.result, (i % 2 == 0) == (i % 3 != 0) ?
		    SPF_R_PASS : SPF_R_FAIL);
	}
	assert_int_equal(spf_pending(f->spf), 0);
	free(r);
}

/* libspf2's "localhost is always allowed" is off: a loopback client is
 * judged by the record like any other (spf.c's SPF_request_is_loopback
 * takes libspf2's place; if it stopped doing so, these would pass). */
static void
test_loopback_judged(void **state)
{
	struct fixture *f = *state;
	struct result r;

	start(f, f->port, 500, 1, 10);
	ask(f, "127.0.0.1", "localhost", "x@pass.spf.test", &r);
	assert_int_equal(r.a.result, SPF_R_FAIL);
	assert_null(strstr(r.a.received, "localhost is always allowed"));
	expect(f, "127.0.0.2", "h", "x@plain.spf.test", SPF_R_FAIL);
	expect(f, "::1", "h", "x@soft.spf.test", SPF_R_SOFTFAIL);
}

/* spf_reconfigure: the workers take the new dns_servers at their next
 * check; a check abandoned while its lookup waits frees its worker within
 * the resolver's 100 ms slice, not after the DNS timeout. */
static void
test_reconfigure(void **state)
{
	struct fixture *f = *state;
	struct result r[2];
	struct spf_check *c;
	struct timeval t0;
	char err[CONF_ERRLEN];
	double t;

	memset(r, 0, sizeof(r));
	start(f, f->silent_port, 3000, 1, 30);
	c = check(f, "192.0.2.1", "h", "x@pass.spf.test", &r[0]);
	run_until(f, 1, 0.3);		/* the worker waits for DNS */
	snprintf(f->server_buf, sizeof(f->server_buf), "127.0.0.1:%d",
	    f->port);
	assert_int_equal(spf_reconfigure(f->spf, err, sizeof(err)), 0);
	gettimeofday(&t0, NULL);
	spf_cancel(c);
	ask(f, "192.0.2.1", "h", "x@pass.spf.test", &r[1]);
	t = since(&t0);
	assert_int_equal(r[1].a.result, SPF_R_PASS);
	assert_int_equal(r[0].calls, 0);
	if (t > 1.0)
		fail_msg("the abandoned worker took %.3f s to free", t);

	snprintf(f->server_buf, sizeof(f->server_buf), "127.0.0.1:x");
	assert_int_equal(spf_reconfigure(f->spf, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "dns_servers"));
	expect(f, "192.0.2.1", "h", "x@pass.spf.test", SPF_R_PASS);
}

static void
test_no_workers(void **state)
{
	struct fixture *f = *state;
	char err[CONF_ERRLEN] = "x";

	f->conf.spf_workers = 0;
	assert_null(spf_new(f->base, 1000, err, sizeof(err)));
	assert_string_equal(err, "");
	assert_string_equal(spf_result_name(SPF_R_SOFTFAIL), "softfail");
	assert_string_equal(spf_result_name(SPF_R_PERMERROR), "permerror");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, test_setup, test_teardown)
		T(test_pass),
		T(test_fail),
		T(test_softfail_neutral_none),
		T(test_permerror),
		T(test_temperror),
		T(test_null_sender),
		T(test_ipv6),
		T(test_bounds),
		T(test_cancel),
		T(test_cancel_running_worker_freed),
		T(test_timeout),
		T(test_free_pending),
		T(test_parallel),
		T(test_loopback_judged),
		T(test_reconfigure),
		T(test_no_workers),
#undef T
	};

	log_init("spf.t", 1);
	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
