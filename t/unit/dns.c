/*
 * t/unit/dns.c — unit tests of greyd/dns.c against real DNS servers on
 * loopback ports, driven by a real libevent loop:
 *
 *   rbldnsd   started once for the whole group as user rbldns, on a free
 *             UDP port of 127.0.0.1 and the same port of ::1, serving an
 *             ip4set DNSBL zone bl.test (with a SOA) and a generic zone
 *             gen.test (without one).
 *   a stub    a UDP socket of the test itself, answered from the same loop
 *             with hand-made messages, for what rbldnsd cannot serve: a TXT
 *             record of several strings (rbldnsd keeps one string of at most
 *             255 octets), two TXT records, SERVFAIL.
 *   silence   a bound UDP socket that nobody reads: every query times out.
 *
 * Covers: A with addresses and TTL, TXT (joined, cut at DNS_TXT_MAX, the
 * first record only), NXDOMAIN and NODATA with and without a SOA (negative
 * TTL), REFUSED and SERVFAIL, a timeout, names too long or malformed,
 * callbacks never run inside dns_query (and dns_query from a callback),
 * dns_free cancelling queries in flight and queued answers (also from
 * inside a callback), dns_reconfigure (queries in flight finish on the old
 * servers; a bad list keeps the old ones), the dns_servers syntax, IPv6
 * servers, 200 queries in parallel; the waiting resolver of the SPF
 * workers (dns_sync_*: an answer with its message, NXDOMAIN, NODATA, bad
 * names and types, a timeout, a stop function ending a wait).
 *
 * rbldnsd is started and stopped by rbldnsd.h: by PID, in the group
 * teardown and at exit, even when a test fails.
 */
#include <sys/socket.h>
#include <sys/time.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <ares.h>
#include <event2/event.h>

#include "conf.h"
#include "dns.h"
#include "log.h"
#include "evloop.h"
#include "rbldnsd.h"

#define PLEN		256
#define NPARALLEL	200
#define STUB_TXT_LEN	200	/* octets of each of the stub's 3 strings */
#define LABEL63		"abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz0123456789a"

struct fixture {
	char root[64];			/* the mkdtemp directory */
	int port;			/* rbldnsd's, on 127.0.0.1 and ::1 */
	struct event_base *base;
	struct dns *dns;
	struct greyd_conf conf;
	char *servers[4];		/* conf.dns_servers.v */
	char server_buf[4][64];
	int silent_fd;			/* bound, never read */
	int silent_port;
	int stub_fd;			/* answered by stub_cb */
	int stub_port;
	struct event *stub_ev;
	int stub_queries;
};

/* What a callback saw. */
struct result {
	int calls;
	struct dns_answer ans;
	struct fixture *f;
	struct dns *chain_dns;		/* query again from the callback */
	bool free_dns;			/* dns_free from the callback */
};

static int answers_total;
static bool in_dns_query;		/* set around every dns_query call */

/* ---- rbldnsd ---- */

static const char bl_zone[] =
    "$SOA 3600 ns.bl.test hostmaster.bl.test 1 600 300 86400 90\n"
    "$TTL 600\n"
    ":127.0.0.2:Listed: see http://bl.test/$\n"
    "127.0.0.2\n"
    "127.0.0.4 :127.0.0.4:\n";

static const char *const zones[] = { "bl.test:ip4set:bl",
    "gen.test:generic:gen", NULL };

static int
write_zones(const char *dir)
{
	char path[PLEN], gen[1024], longtxt[251];

	memset(longtxt, 'L', sizeof(longtxt) - 1);
	longtxt[sizeof(longtxt) - 1] = '\0';
	snprintf(gen, sizeof(gen),
	    "$TTL 300\n"
	    "host A 192.0.2.10\n"
	    "host A 192.0.2.11\n"
	    "host 60 TXT \"v=spf1 ip4:192.0.2.0/24 -all\"\n"
	    "onlytxt TXT \"hello\"\n"
	    "long TXT \"%s\"\n", longtxt);
	snprintf(path, sizeof(path), "%s/bl", dir);
	if (write_file(path, bl_zone) != 0)
		return -1;
	snprintf(path, sizeof(path), "%s/gen", dir);
	return write_file(path, gen);
}

/* ---- the stub server ---- */

static size_t
put16(unsigned char *p, unsigned v)
{
	p[0] = (unsigned char)(v >> 8);
	p[1] = (unsigned char)v;
	return 2;
}

/* One answer record for the question at offset 12: name pointer, type,
 * class IN, ttl, rdata. */
static size_t
put_rr(unsigned char *p, unsigned type, unsigned ttl, const void *rd,
    size_t rdlen)
{
	size_t n = 0;

	n += put16(p + n, 0xc00c);
	n += put16(p + n, type);
	n += put16(p + n, 1);
	n += put16(p + n, ttl >> 16);
	n += put16(p + n, ttl & 0xffff);
	n += put16(p + n, (unsigned)rdlen);
	memcpy(p + n, rd, rdlen);
	return n + rdlen;
}

/*
 * Answers every query: "servfail.*" with SERVFAIL, TXT with two records
 * (3 strings of STUB_TXT_LEN octets 'a', 'b', 'c' at TTL 700, then "second"
 * at TTL 500), A with 10.0.0.1 at TTL 0x80000001 (read as 0).
 */
static void
stub_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fixture *f = arg;
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof(ss);
	unsigned char q[512], r[1500], rd[3 * (STUB_TXT_LEN + 1)];
	ssize_t qlen = recvfrom(fd, q, sizeof(q), 0, (struct sockaddr *)&ss,
	    &sslen);
	size_t qend = 12, n;
	unsigned qtype, i;

	if (qlen < 17)
		return;
	f->stub_queries++;
	while (qend < (size_t)qlen && q[qend] != 0)
		qend += 1 + q[qend];
	qend += 5;
	if (qend > (size_t)qlen)
		return;
	qtype = (unsigned)q[qend - 4] << 8 | q[qend - 3];
	memcpy(r, q, qend);
	r[2] = 0x84 | (q[2] & 1);		/* QR, AA, RD as asked */
	r[3] = 0x80;				/* RA, NOERROR */
	put16(r + 6, 0);
	put16(r + 8, 0);
	put16(r + 10, 0);
	n = qend;
	if (memcmp(q + 13, "servfail", 8) == 0)
		r[3] |= 2;
	else if (qtype == 16) {
		for (i = 0; i < 3; i++) {
			rd[i * (STUB_TXT_LEN + 1)] = STUB_TXT_LEN;
			memset(rd + i * (STUB_TXT_LEN + 1) + 1, 'a' + (int)i,
			    STUB_TXT_LEN);
		}
		n += put_rr(r + n, 16, 700, rd, sizeof(rd));
		n += put_rr(r + n, 16, 500, "\006second", 7);
		put16(r + 6, 2);
	} else if (qtype == 1) {
		n += put_rr(r + n, 1, 0x80000001, "\012\000\000\001", 4);
		put16(r + 6, 1);
	}
	sendto(fd, r, n, 0, (struct sockaddr *)&ss, sslen);
}

/* ---- helpers ---- */

/* Point f->conf at servers (NULL-terminated). */
static void
set_servers(struct fixture *f, const char *const *servers)
{
	size_t i;

	for (i = 0; servers[i] != NULL && i < 4; i++) {
		strlcpy(f->server_buf[i], servers[i], sizeof(f->server_buf[i]));
		f->servers[i] = f->server_buf[i];
	}
	f->conf.dns_servers.v = f->servers;
	f->conf.dns_servers.n = i;
}

static void
set_server_port(struct fixture *f, const char *host, int port)
{
	char s[64];
	const char *v[] = { s, NULL };

	snprintf(s, sizeof(s), host[0] == ':' ? "[%s]:%d" : "%s:%d", host,
	    port);
	set_servers(f, v);
}

static void
new_dns(struct fixture *f, int port, int timeout_ms)
{
	char err[CONF_ERRLEN] = "";

	set_server_port(f, "127.0.0.1", port);
	f->dns = dns_new(f->base, &f->conf, timeout_ms, err, sizeof(err));
	if (f->dns == NULL)
		fail_msg("dns_new: %s", err);
}

static void
answer_cb(const struct dns_answer *ans, void *arg)
{
	struct result *r = arg;

	assert_false(in_dns_query);
	r->calls++;
	r->ans = *ans;
	answers_total++;
	if (r->chain_dns != NULL) {
		in_dns_query = true;
		dns_query(r->chain_dns, "host.gen.test", DNS_TYPE_A, answer_cb,
		    r);
		in_dns_query = false;
		r->chain_dns = NULL;
	}
	if (r->free_dns) {
		dns_free(r->f->dns);
		r->f->dns = NULL;
	}
}

static void
query(struct dns *d, const char *name, enum dns_type type, struct result *r)
{
	in_dns_query = true;
	dns_query(d, name, type, answer_cb, r);
	in_dns_query = false;
}

/* Run the loop until answers_total reaches want or seconds pass. */
static void
run_until(struct fixture *f, int want, double seconds)
{
	evloop_run_count(f->base, &answers_total, want, seconds);
}

/* One query, run to its answer. */
static void
ask(struct fixture *f, const char *name, enum dns_type type,
    struct result *r)
{
	memset(r, 0, sizeof(*r));
	answers_total = 0;
	query(f->dns, name, type, r);
	assert_int_equal(r->calls, 0);
	run_until(f, 1, 10);
	if (r->calls != 1)
		fail_msg("%s: %d callbacks", name, r->calls);
}

static void
assert_a(const struct dns_answer *a, int i, const char *want)
{
	char got[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, a->a[i], got, sizeof(got));
	assert_string_equal(got, want);
}

/* ---- fixture ---- */

static int
group_setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	atexit(rbldnsd_kill);
	strcpy(f->root, "/tmp/greyd-dns.XXXXXX");
	if (mkdtemp(f->root) == NULL || chmod(f->root, 0755) == -1 ||
	    write_zones(f->root) == -1 || rbldnsd_start(f->root, zones, NULL,
	    "2.0.0.127.bl.test", &f->port) == -1) {
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

	if ((f->base = event_base_new()) == NULL)
		return -1;
	memset(&f->conf, 0, sizeof(f->conf));
	if ((f->silent_fd = udp_bound(&f->silent_port)) == -1 ||
	    (f->stub_fd = udp_bound(&f->stub_port)) == -1)
		return -1;
	f->stub_ev = event_new(f->base, f->stub_fd, EV_READ | EV_PERSIST,
	    stub_cb, f);
	if (f->stub_ev == NULL || event_add(f->stub_ev, NULL) == -1)
		return -1;
	f->stub_queries = 0;
	f->dns = NULL;
	answers_total = 0;
	return 0;
}

static int
test_teardown(void **state)
{
	struct fixture *f = *state;

	dns_free(f->dns);
	f->dns = NULL;
	event_free(f->stub_ev);
	close(f->stub_fd);
	close(f->silent_fd);
	event_base_free(f->base);
	f->base = NULL;
	return 0;
}

/* ---- answers ---- */

static void
test_a(void **state)
{
	struct fixture *f = *state;
	struct result r;

	new_dns(f, f->port, 1000);
	ask(f, "2.0.0.127.bl.test", DNS_TYPE_A, &r);
	assert_int_equal(r.ans.status, DNS_OK);
	assert_int_equal(r.ans.nrecords, 1);
	assert_a(&r.ans, 0, "127.0.0.2");
	assert_int_equal(r.ans.ttl, 600);

	ask(f, "4.0.0.127.bl.test.", DNS_TYPE_A, &r);	/* final dot */
	assert_int_equal(r.ans.status, DNS_OK);
	assert_int_equal(r.ans.nrecords, 1);
	assert_a(&r.ans, 0, "127.0.0.4");

	ask(f, "HOST.gen.test", DNS_TYPE_A, &r);
	assert_int_equal(r.ans.status, DNS_OK);
	assert_int_equal(r.ans.nrecords, 2);
	assert_int_equal(r.ans.ttl, 300);
	assert_true(r.ans.a[0][3] + r.ans.a[1][3] == 10 + 11 &&
	    r.ans.a[0][3] != r.ans.a[1][3]);
	assert_int_equal(r.ans.a[0][0], 192);
	assert_int_equal(dns_pending(f->dns), 0);
}

static void
test_txt(void **state)
{
	struct fixture *f = *state;
	struct result r;
	char want[251];

	new_dns(f, f->port, 1000);
	ask(f, "2.0.0.127.bl.test", DNS_TYPE_TXT, &r);
	assert_int_equal(r.ans.status, DNS_OK);
	assert_int_equal(r.ans.nrecords, 1);
	assert_string_equal(r.ans.txt, "Listed: see http://bl.test/127.0.0.2");
	assert_int_equal(r.ans.ttl, 600);

	ask(f, "host.gen.test", DNS_TYPE_TXT, &r);
	assert_int_equal(r.ans.status, DNS_OK);
	assert_string_equal(r.ans.txt, "v=spf1 ip4:192.0.2.0/24 -all");
	assert_int_equal(r.ans.ttl, 60);

	ask(f, "long.gen.test", DNS_TYPE_TXT, &r);
	memset(want, 'L', sizeof(want) - 1);
	want[sizeof(want) - 1] = '\0';
	assert_int_equal(r.ans.status, DNS_OK);
	assert_string_equal(r.ans.txt, want);
}

/* Several strings joined, cut at DNS_TXT_MAX - 1, the first record only. */
static void
test_txt_joined(void **state)
{
	struct fixture *f = *state;
	struct result r;
	char want[DNS_TXT_MAX];
	int i;

	new_dns(f, f->stub_port, 1000);
	ask(f, "multi.stub.test", DNS_TYPE_TXT, &r);
	for (i = 0; i < DNS_TXT_MAX - 1; i++)
		want[i] = (char)('a' + i / STUB_TXT_LEN);
	want[DNS_TXT_MAX - 1] = '\0';
	assert_int_equal(r.ans.status, DNS_OK);
	assert_int_equal(r.ans.nrecords, 2);
	assert_int_equal(strlen(r.ans.txt), DNS_TXT_MAX - 1);
	assert_string_equal(r.ans.txt, want);
	assert_int_equal(r.ans.ttl, 500);	/* the smallest */

	/* a TTL with its top bit set counts as 0 */
	ask(f, "a.stub.test", DNS_TYPE_A, &r);
	assert_int_equal(r.ans.status, DNS_OK);
	assert_a(&r.ans, 0, "10.0.0.1");
	assert_int_equal(r.ans.ttl, 0);
}

static void
test_nxdomain(void **state)
{
	struct fixture *f = *state;
	struct result r;

	new_dns(f, f->port, 1000);
	ask(f, "3.0.0.127.bl.test", DNS_TYPE_A, &r);
	assert_int_equal(r.ans.status, DNS_NXDOMAIN);
	assert_int_equal(r.ans.nrecords, 0);
	assert_int_equal(r.ans.ttl, 90);	/* the SOA minimum */

	ask(f, "3.0.0.127.bl.test", DNS_TYPE_TXT, &r);
	assert_int_equal(r.ans.status, DNS_NXDOMAIN);
	assert_string_equal(r.ans.txt, "");

	ask(f, "nothing.gen.test", DNS_TYPE_A, &r);	/* no SOA */
	assert_int_equal(r.ans.status, DNS_NXDOMAIN);
	assert_int_equal(r.ans.ttl, 0);
}

static void
test_nodata(void **state)
{
	struct fixture *f = *state;
	struct result r;

	new_dns(f, f->port, 1000);
	/* listed with an A and no TXT */
	ask(f, "4.0.0.127.bl.test", DNS_TYPE_TXT, &r);
	assert_int_equal(r.ans.status, DNS_OK);
	assert_int_equal(r.ans.nrecords, 0);
	assert_string_equal(r.ans.txt, "");
	assert_int_equal(r.ans.ttl, 90);

	ask(f, "onlytxt.gen.test", DNS_TYPE_A, &r);
	assert_int_equal(r.ans.status, DNS_OK);
	assert_int_equal(r.ans.nrecords, 0);
	assert_int_equal(r.ans.ttl, 0);
}

static void
test_errors(void **state)
{
	struct fixture *f = *state;
	struct result r;

	new_dns(f, f->port, 300);
	/* rbldnsd REFUSEs names outside its zones */
	ask(f, "www.example.org", DNS_TYPE_A, &r);
	assert_int_equal(r.ans.status, DNS_ERROR);
	dns_free(f->dns);

	new_dns(f, f->stub_port, 300);
	ask(f, "servfail.stub.test", DNS_TYPE_A, &r);
	assert_int_equal(r.ans.status, DNS_ERROR);
	assert_int_equal(f->stub_queries, 2);	/* tried twice */
}

static void
test_timeout(void **state)
{
	struct fixture *f = *state;
	struct result r;
	struct timeval t0;
	double t;

	new_dns(f, f->silent_port, 200);
	gettimeofday(&t0, NULL);
	ask(f, "2.0.0.127.bl.test", DNS_TYPE_A, &r);
	t = since(&t0);
	assert_int_equal(r.ans.status, DNS_TIMEOUT);
	assert_int_equal(r.ans.nrecords, 0);
	/* two tries: 200 ms, then twice that */
	if (t < 0.5 || t > 2.0)
		fail_msg("timed out after %.3f s", t);
	assert_int_equal(dns_pending(f->dns), 0);
}

/* Names: 253 octets is the limit (a final dot aside); empty labels and an
 * unknown type fail; all through the loop, never inside dns_query. */
static void
test_bad_names(void **state)
{
	struct fixture *f = *state;
	struct result r[7];
	char n253[300], n254[300];
	int i;

	/* 63 + 1 + 63 + 1 + 63 + 1 + 53 + 8 = 253 */
	snprintf(n253, sizeof(n253), "%s.%s.%s.%.53s.bl.test", LABEL63,
	    LABEL63, LABEL63, LABEL63);
	snprintf(n254, sizeof(n254), "%s.%s.%s.%.54s.bl.test", LABEL63,
	    LABEL63, LABEL63, LABEL63);
	assert_int_equal(strlen(n253), 253);
	assert_int_equal(strlen(n254), 254);

	new_dns(f, f->port, 1000);
	memset(r, 0, sizeof(r));
	query(f->dns, n254, DNS_TYPE_A, &r[0]);
	query(f->dns, "", DNS_TYPE_A, &r[1]);
	query(f->dns, "a..bl.test", DNS_TYPE_A, &r[2]);
	query(f->dns, ".", DNS_TYPE_A, &r[3]);
	query(f->dns, "2.0.0.127.bl.test", (enum dns_type)28, &r[4]);
	query(f->dns, n253, DNS_TYPE_A, &r[5]);
	strcat(n253, ".");
	query(f->dns, n253, DNS_TYPE_A, &r[6]);
	assert_int_equal(dns_pending(f->dns), 7);
	for (i = 0; i < 7; i++)
		assert_int_equal(r[i].calls, 0);
	run_until(f, 7, 10);
	/* the last two reached the server */
	for (i = 0; i < 7; i++) {
		assert_int_equal(r[i].calls, 1);
		assert_int_equal(r[i].ans.status, i < 5 ? DNS_ERROR :
		    DNS_NXDOMAIN);
	}
	assert_int_equal(dns_pending(f->dns), 0);
}

/* Callbacks never run inside dns_query (answer_cb checks), and a
 * callback may start a query. */
static void
test_callback_context(void **state)
{
	struct fixture *f = *state;
	struct result r, bad;

	new_dns(f, f->port, 1000);
	memset(&r, 0, sizeof(r));
	memset(&bad, 0, sizeof(bad));
	r.chain_dns = f->dns;
	query(f->dns, "2.0.0.127.bl.test", DNS_TYPE_A, &r);
	query(f->dns, "", DNS_TYPE_A, &bad);
	assert_int_equal(r.calls + bad.calls, 0);
	run_until(f, 3, 10);
	assert_int_equal(bad.calls, 1);
	assert_int_equal(r.calls, 2);
	assert_int_equal(r.ans.status, DNS_OK);		/* the chained one */
	assert_int_equal(r.ans.nrecords, 2);
	assert_int_equal(dns_pending(f->dns), 0);
}

/* dns_free completes queries in flight and answers not yet delivered
 * with DNS_CANCELLED, before it returns. */
static void
test_free_cancels(void **state)
{
	struct fixture *f = *state;
	struct result r[5];
	int i;

	new_dns(f, f->silent_port, 5000);
	memset(r, 0, sizeof(r));
	for (i = 0; i < 4; i++)
		query(f->dns, "2.0.0.127.bl.test", DNS_TYPE_A, &r[i]);
	query(f->dns, "", DNS_TYPE_A, &r[4]);		/* already failed */
	run_until(f, 1, 0.3);
	assert_int_equal(r[4].calls, 1);
	query(f->dns, "", DNS_TYPE_A, &r[4]);		/* queued */
	assert_int_equal(dns_pending(f->dns), 5);
	for (i = 0; i < 4; i++)
		assert_int_equal(r[i].calls, 0);
	dns_free(f->dns);
	f->dns = NULL;
	for (i = 0; i < 5; i++) {
		assert_int_equal(r[i].calls, i < 4 ? 1 : 2);
		assert_int_equal(r[i].ans.status, DNS_CANCELLED);
	}
	/* nothing left in the loop that refers to it */
	run_until(f, 100, 0.2);
	assert_int_equal(answers_total, 6);
}

/* A callback frees the resolver while other answers wait for delivery. */
static void
test_free_in_callback(void **state)
{
	struct fixture *f = *state;
	struct result r[4];
	int i;

	new_dns(f, f->port, 1000);
	memset(r, 0, sizeof(r));
	r[0].f = f;
	r[0].free_dns = true;
	for (i = 0; i < 4; i++)
		query(f->dns, "", DNS_TYPE_A, &r[i]);
	run_until(f, 4, 2);
	assert_null(f->dns);
	assert_int_equal(r[0].ans.status, DNS_ERROR);
	for (i = 1; i < 4; i++) {
		assert_int_equal(r[i].calls, 1);
		assert_int_equal(r[i].ans.status, DNS_CANCELLED);
	}
}

/* New servers for new queries; queries in flight finish where they are. */
static void
test_reconfigure(void **state)
{
	struct fixture *f = *state;
	struct result old, r;
	char err[CONF_ERRLEN] = "";
	const char *bad[] = { "127.0.0.1", "localhost", NULL };

	new_dns(f, f->silent_port, 200);
	memset(&old, 0, sizeof(old));
	query(f->dns, "2.0.0.127.bl.test", DNS_TYPE_A, &old);

	set_server_port(f, "127.0.0.1", f->port);
	assert_int_equal(dns_reconfigure(f->dns, &f->conf, err, sizeof(err)),
	    0);
	ask(f, "2.0.0.127.bl.test", DNS_TYPE_A, &r);
	assert_int_equal(r.ans.status, DNS_OK);
	assert_int_equal(old.calls, 0);
	assert_int_equal(dns_pending(f->dns), 1);
	run_until(f, 1, 3);
	answers_total = 0;
	run_until(f, 1, 3);
	assert_int_equal(old.calls, 1);
	assert_int_equal(old.ans.status, DNS_TIMEOUT);
	assert_int_equal(dns_pending(f->dns), 0);

	/* a bad list: an error, the servers unchanged */
	set_servers(f, bad);
	assert_int_equal(dns_reconfigure(f->dns, &f->conf, err, sizeof(err)),
	    -1);
	assert_string_equal(err, "dns_servers: bad server \"localhost\" "
	    "(want ip, ip:port or [ip6]:port)");
	ask(f, "4.0.0.127.bl.test", DNS_TYPE_A, &r);
	assert_int_equal(r.ans.status, DNS_OK);
	assert_a(&r.ans, 0, "127.0.0.4");

	/* IPv6 */
	set_server_port(f, "::1", f->port);
	assert_int_equal(dns_reconfigure(f->dns, &f->conf, err, sizeof(err)),
	    0);
	ask(f, "2.0.0.127.bl.test", DNS_TYPE_TXT, &r);
	assert_int_equal(r.ans.status, DNS_OK);
	assert_int_equal(r.ans.nrecords, 1);
}

static void
test_server_syntax(void **state)
{
	struct fixture *f = *state;
	static const char *const good[] = { "127.0.0.1", "127.0.0.1:53",
	    "[::1]:5353", "::1", "[::1]", "192.0.2.1:65535", NULL };
	static const char *const bad[] = { "localhost", "127.0.0.1:0",
	    "127.0.0.1:65536", "127.0.0.1:", "[::1", "[::1]x", "[::1]:",
	    "[127.0.0.1]:53", "1.2.3", "::1:53:x", "", "127.0.0.1:5x",
	    "[]:53", NULL };
	const char *v[2] = { NULL, NULL };
	const char *many[] = { "127.0.0.1", "127.0.0.2", "127.0.0.3", NULL };
	char err[CONF_ERRLEN];
	struct dns *d;
	int i;

	for (i = 0; good[i] != NULL; i++) {
		v[0] = good[i];
		set_servers(f, v);
		err[0] = '\0';
		if ((d = dns_new(f->base, &f->conf, 100, err, sizeof(err))) ==
		    NULL)
			fail_msg("%s: %s", good[i], err);
		dns_free(d);
	}
	for (i = 0; bad[i] != NULL; i++) {
		v[0] = bad[i];
		set_servers(f, v);
		err[0] = '\0';
		d = dns_new(f->base, &f->conf, 100, err, sizeof(err));
		if (d != NULL || strncmp(err, "dns_servers: ", 13) != 0)
			fail_msg("%s accepted (%s)", bad[i], err);
	}
	set_servers(f, many);
	assert_non_null(d = dns_new(f->base, &f->conf, 100, err, sizeof(err)));
	dns_free(d);
	/* none: resolv.conf */
	memset(&f->conf, 0, sizeof(f->conf));
	assert_non_null(d = dns_new(f->base, &f->conf, 100, err, sizeof(err)));
	dns_free(d);
	assert_null(dns_new(f->base, &f->conf, 0, err, sizeof(err)));
}

static void
test_parallel(void **state)
{
	struct fixture *f = *state;
	struct result *r = calloc(NPARALLEL, sizeof(*r));
	char name[64];
	int i;

	assert_non_null(r);
	new_dns(f, f->port, 1000);
	for (i = 0; i < NPARALLEL; i++) {
		snprintf(name, sizeof(name), "%d.0.0.127.bl.test",
		    i % 2 == 0 ? 2 : 100 + i / 2);
		query(f->dns, name, i % 4 == 0 ? DNS_TYPE_TXT : DNS_TYPE_A,
		    &r[i]);
	}
	assert_int_equal(dns_pending(f->dns), NPARALLEL);
	run_until(f, NPARALLEL, 10);
	for (i = 0; i < NPARALLEL; i++) {
		if (r[i].calls != 1)
			fail_msg("query %d: %d callbacks", i, r[i].calls);
		assert_int_equal(r[i].ans.status,
		    i % 2 == 0 ? DNS_OK : DNS_NXDOMAIN);
		if (i % 4 == 0)
			assert_string_equal(r[i].ans.txt,
			    "Listed: see http://bl.test/127.0.0.2");
		else if (i % 2 == 0)
			assert_a(&r[i].ans, 0, "127.0.0.2");
	}
	assert_int_equal(dns_pending(f->dns), 0);
	free(r);
}

/* ---- waiting resolvers (dns_sync_*, SPF workers) ---- */

static struct dns_sync *
sync_new(int port, int timeout_ms)
{
	char csv[64], err[CONF_ERRLEN] = "";
	struct dns_sync *d;

	snprintf(csv, sizeof(csv), "127.0.0.1:%d", port);
	if ((d = dns_sync_new(csv, timeout_ms, err, sizeof(err))) == NULL)
		fail_msg("dns_sync_new: %s", err);
	return d;
}

static bool
stop_after(void *arg)
{
	return since(arg) > 0.2;
}

static void
test_sync(void **state)
{
	struct fixture *f = *state;
	struct dns_sync *d = sync_new(f->port, 1000);
	struct ares_addrttl at[4];
	struct timeval t0;
	unsigned char *abuf;
	int alen, n = 4;
	char err[CONF_ERRLEN];
	double t;

	assert_int_equal(dns_sync_query(d, "2.0.0.127.bl.test", 1, &abuf,
	    &alen, NULL, NULL), DNS_OK);
	assert_non_null(abuf);
	assert_int_equal(ares_parse_a_reply(abuf, alen, NULL, at, &n),
	    ARES_SUCCESS);
	assert_int_equal(n, 1);
	assert_int_equal(at[0].ttl, 600);
	free(abuf);
	assert_int_equal(dns_sync_query(d, "3.0.0.127.bl.test", 16, &abuf,
	    &alen, NULL, NULL), DNS_NXDOMAIN);
	free(abuf);
	assert_int_equal(dns_sync_query(d, "host.gen.test", 28, &abuf,
	    &alen, NULL, NULL), DNS_OK);	/* NODATA, with the message */
	assert_non_null(abuf);
	free(abuf);
	assert_int_equal(dns_sync_query(d, "a..b", 1, &abuf, &alen, NULL,
	    NULL), DNS_ERROR);
	assert_null(abuf);
	assert_int_equal(dns_sync_query(d, "x.test", 0, &abuf, &alen, NULL,
	    NULL), DNS_ERROR);
	dns_sync_free(d);

	/* nobody answers: 2 tries, 100 ms then 200 ms */
	d = sync_new(f->silent_port, 100);
	gettimeofday(&t0, NULL);
	assert_int_equal(dns_sync_query(d, "2.0.0.127.bl.test", 1, &abuf,
	    &alen, NULL, NULL), DNS_TIMEOUT);
	t = since(&t0);
	if (t < 0.25 || t > 1.5)
		fail_msg("timed out after %.3f s", t);
	dns_sync_free(d);

	/* stopped after 200 ms of a 3 s try: cancelled within a slice */
	d = sync_new(f->silent_port, 3000);
	gettimeofday(&t0, NULL);
	assert_int_equal(dns_sync_query(d, "2.0.0.127.bl.test", 1, &abuf,
	    &alen, stop_after, &t0), DNS_CANCELLED);
	t = since(&t0);
	if (t < 0.2 || t > 0.5)
		fail_msg("stopped after %.3f s", t);
	assert_null(abuf);
	dns_sync_free(d);

	assert_null(dns_sync_new("127.0.0.1:x", 100, err, sizeof(err)));
	assert_non_null(strstr(err, "dns_servers"));
	assert_null(dns_sync_new("", 0, err, sizeof(err)));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, test_setup, test_teardown)
		T(test_a),
		T(test_txt),
		T(test_txt_joined),
		T(test_nxdomain),
		T(test_nodata),
		T(test_errors),
		T(test_timeout),
		T(test_bad_names),
		T(test_callback_context),
		T(test_free_cancels),
		T(test_free_in_callback),
		T(test_reconfigure),
		T(test_server_syntax),
		T(test_parallel),
		T(test_sync),
#undef T
	};

	log_init("dns.t", 1);
	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
