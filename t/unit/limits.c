/*
 * limits.c unit tests: concurrency with and without the trusted multiplier,
 * the connection rate bucket (exact over a burst, refill over simulated
 * time), max_sessions, independent addresses, IPv6, disconnect underflow,
 * the sweep, growth to 100k addresses, reply texts; and a micro-benchmark
 * printed as a TAP comment.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "greyd_limits.h"

#define HOUR_MS	3600000LL

static struct greyd_conf conf;

static int
setup(void **state)
{
	char err[CONF_ERRLEN];

	(void)state;
	assert_int_equal(conf_load(&conf, NULL, NULL, err, sizeof(err)), 0);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	conf_free(&conf);
	return 0;
}

/* Known limits before each test. */
static int
reset(void **state)
{
	(void)state;
	conf.client_connection_limit = 3;
	conf.client_connection_rate = 1000;
	conf.max_sessions = 5000;
	conf.trusted_limit_multiplier = 10;
	*state = limits_new();
	assert_non_null(*state);
	return 0;
}

static int
drop(void **state)
{
	limits_free(*state);
	return 0;
}

static struct netaddr
addr(const char *s)
{
	struct netaddr a;

	assert_int_equal(netaddr_parse(&a, s), 0);
	return a;
}

/* IPv4 address number i in 10.0.0.0/8. */
static struct netaddr
addr_n(uint32_t i)
{
	struct netaddr a;

	memset(&a, 0, sizeof(a));
	a.family = AF_INET;
	a.bytes[0] = 10;
	a.bytes[1] = (i >> 16) & 0xff;
	a.bytes[2] = (i >> 8) & 0xff;
	a.bytes[3] = i & 0xff;
	return a;
}

static void
test_concurrency(void **state)
{
	struct limits *l = *state;
	struct netaddr a = addr("127.0.0.2");
	int i;

	for (i = 0; i < 3; i++)
		assert_int_equal(limits_connect(l, &conf, &a, 0, 1, 0),
		    LIMIT_OK);
	assert_int_equal(limits_sessions(l, &a), 3);
	assert_int_equal(limits_connect(l, &conf, &a, 0, 1, 0),
	    LIMIT_CONCURRENCY);
	assert_int_equal(limits_sessions(l, &a), 3);	/* refused: not counted */
	limits_disconnect(l, &a);
	assert_int_equal(limits_connect(l, &conf, &a, 0, 1, 0), LIMIT_OK);
	assert_int_equal(limits_connect(l, &conf, &a, 0, 1, 0),
	    LIMIT_CONCURRENCY);
}

static void
test_concurrency_multiplier(void **state)
{
	struct limits *l = *state;
	struct netaddr a = addr("192.0.2.1");
	int i;

	for (i = 0; i < 30; i++)
		assert_int_equal(limits_connect(l, &conf, &a, 0, 10, 0),
		    LIMIT_OK);
	assert_int_equal(limits_connect(l, &conf, &a, 0, 10, 0),
	    LIMIT_CONCURRENCY);
	/* the same address without the multiplier is far over its limit */
	assert_int_equal(limits_connect(l, &conf, &a, 0, 1, 0),
	    LIMIT_CONCURRENCY);
}

static void
test_rate_burst_exact(void **state)
{
	struct limits *l = *state;
	struct netaddr a = addr("198.51.100.7");
	int i;

	conf.client_connection_limit = 1000000;
	for (i = 0; i < 1000; i++)
		assert_int_equal(limits_connect(l, &conf, &a, 0, 1, 5000),
		    LIMIT_OK);
	assert_int_equal(limits_connect(l, &conf, &a, 0, 1, 5000),
	    LIMIT_RATE);
	assert_int_equal(limits_sessions(l, &a), 1000);
	/* 1000/h: one token every 3.6 s, not a millisecond earlier */
	assert_int_equal(limits_connect(l, &conf, &a, 0, 1, 5000 + 3599),
	    LIMIT_RATE);
	assert_int_equal(limits_connect(l, &conf, &a, 0, 1, 5000 + 3600),
	    LIMIT_OK);
	assert_int_equal(limits_connect(l, &conf, &a, 0, 1, 5000 + 3600),
	    LIMIT_RATE);
	/* ten more tokens 36 s later, then none */
	for (i = 0; i < 10; i++)
		assert_int_equal(limits_connect(l, &conf, &a, 0, 1,
		    5000 + 3600 + 36000), LIMIT_OK);
	assert_int_equal(limits_connect(l, &conf, &a, 0, 1,
	    5000 + 3600 + 36000), LIMIT_RATE);
}

static void
test_rate_refill_capped(void **state)
{
	struct limits *l = *state;
	struct netaddr a = addr("198.51.100.8");
	int i;

	conf.client_connection_limit = 1000000;
	conf.client_connection_rate = 5;
	for (i = 0; i < 5; i++)
		assert_int_equal(limits_connect(l, &conf, &a, 0, 1, 0),
		    LIMIT_OK);
	assert_int_equal(limits_connect(l, &conf, &a, 0, 1, 0), LIMIT_RATE);
	/* a day later the bucket holds its capacity, not 24 hours' worth */
	for (i = 0; i < 5; i++)
		assert_int_equal(limits_connect(l, &conf, &a, 0, 1,
		    24 * HOUR_MS), LIMIT_OK);
	assert_int_equal(limits_connect(l, &conf, &a, 0, 1, 24 * HOUR_MS),
	    LIMIT_RATE);
	/* a clock that goes back refills nothing */
	assert_int_equal(limits_connect(l, &conf, &a, 0, 1, 0), LIMIT_RATE);
	/* the trusted multiplier scales the bucket too */
	for (i = 0; i < 50; i++)
		assert_int_equal(limits_connect(l, &conf, &a, 0, 10,
		    48 * HOUR_MS), LIMIT_OK);
	assert_int_equal(limits_connect(l, &conf, &a, 0, 10, 48 * HOUR_MS),
	    LIMIT_RATE);
}

static void
test_max_sessions(void **state)
{
	struct limits *l = *state;
	struct netaddr a = addr("203.0.113.9");

	conf.max_sessions = 100;
	assert_int_equal(limits_connect(l, &conf, &a, 99, 1, 0), LIMIT_OK);
	assert_int_equal(limits_connect(l, &conf, &a, 100, 1, 0),
	    LIMIT_MAX_SESSIONS);
	/* the multiplier does not raise max_sessions */
	assert_int_equal(limits_connect(l, &conf, &a, 100, 10, 0),
	    LIMIT_MAX_SESSIONS);
	/* checked before the per-client limits */
	conf.client_connection_limit = 1;
	assert_int_equal(limits_connect(l, &conf, &a, 100, 1, 0),
	    LIMIT_MAX_SESSIONS);
	assert_int_equal(limits_connect(l, &conf, &a, 0, 1, 0),
	    LIMIT_CONCURRENCY);
	assert_int_equal(limits_sessions(l, &a), 1);
}

static void
test_refused_leaves_no_entry(void **state)
{
	struct limits *l = *state;
	struct netaddr a = addr("203.0.113.10");

	conf.max_sessions = 1;
	assert_int_equal(limits_connect(l, &conf, &a, 1, 1, 0),
	    LIMIT_MAX_SESSIONS);
	assert_int_equal(limits_count(l), 0);
	assert_int_equal(limits_sessions(l, &a), 0);
}

static void
test_addresses_independent(void **state)
{
	struct limits *l = *state;
	struct netaddr a = addr("127.0.0.2"), b = addr("127.0.0.3");
	int i;

	for (i = 0; i < 3; i++)
		assert_int_equal(limits_connect(l, &conf, &a, 0, 1, 0),
		    LIMIT_OK);
	assert_int_equal(limits_connect(l, &conf, &a, 0, 1, 0),
	    LIMIT_CONCURRENCY);
	assert_int_equal(limits_connect(l, &conf, &b, 0, 1, 0), LIMIT_OK);
	assert_int_equal(limits_sessions(l, &a), 3);
	assert_int_equal(limits_sessions(l, &b), 1);
	assert_int_equal(limits_count(l), 2);
}

static void
test_ipv6(void **state)
{
	struct limits *l = *state;
	struct netaddr a = addr("2001:db8::1"), b = addr("2001:db8::2");
	struct netaddr v4 = addr("32.1.13.184");	/* 2001:db8 as IPv4 */
	struct netaddr mapped = addr("::ffff:32.1.13.184");
	int i;

	for (i = 0; i < 3; i++)
		assert_int_equal(limits_connect(l, &conf, &a, 0, 1, 0),
		    LIMIT_OK);
	assert_int_equal(limits_connect(l, &conf, &a, 0, 1, 0),
	    LIMIT_CONCURRENCY);
	assert_int_equal(limits_connect(l, &conf, &b, 0, 1, 0), LIMIT_OK);
	assert_int_equal(limits_sessions(l, &v4), 0);
	assert_int_equal(limits_connect(l, &conf, &v4, 0, 1, 0), LIMIT_OK);
	assert_int_equal(limits_count(l), 3);
	assert_int_equal(limits_sessions(l, &a), 3);
	/* IPv4-mapped IPv6 is the IPv4 client (netaddr unmaps it) */
	assert_int_equal(limits_sessions(l, &mapped), 1);
}

static void
test_disconnect_underflow(void **state)
{
	struct limits *l = *state;
	struct netaddr a = addr("192.0.2.50"), u = addr("192.0.2.51");

	limits_disconnect(l, &u);		/* unknown: no entry made */
	assert_int_equal(limits_count(l), 0);
	assert_int_equal(limits_connect(l, &conf, &a, 0, 1, 0), LIMIT_OK);
	limits_disconnect(l, &a);
	limits_disconnect(l, &a);
	limits_disconnect(l, &a);
	assert_int_equal(limits_sessions(l, &a), 0);
	/* still exactly three allowed after the extra disconnects */
	assert_int_equal(limits_connect(l, &conf, &a, 0, 1, 0), LIMIT_OK);
	assert_int_equal(limits_connect(l, &conf, &a, 0, 1, 0), LIMIT_OK);
	assert_int_equal(limits_connect(l, &conf, &a, 0, 1, 0), LIMIT_OK);
	assert_int_equal(limits_connect(l, &conf, &a, 0, 1, 0),
	    LIMIT_CONCURRENCY);
}

static void
test_sweep(void **state)
{
	struct limits *l = *state;
	struct netaddr idle = addr("192.0.2.1"), busy = addr("192.0.2.2");
	struct netaddr drained = addr("192.0.2.3");

	conf.client_connection_rate = 10;
	assert_int_equal(limits_connect(l, &conf, &idle, 0, 1, 0), LIMIT_OK);
	limits_disconnect(l, &idle);
	assert_int_equal(limits_connect(l, &conf, &busy, 0, 1, 0), LIMIT_OK);
	assert_int_equal(limits_connect(l, &conf, &drained, 0, 1, 0),
	    LIMIT_OK);
	assert_int_equal(limits_connect(l, &conf, &drained, 0, 1, 0),
	    LIMIT_OK);
	limits_disconnect(l, &drained);
	limits_disconnect(l, &drained);
	assert_int_equal(limits_count(l), 3);

	/* nothing is full yet */
	assert_int_equal(limits_sweep(l, &conf, 0, 100000), 0);
	/* 6 minutes refill one token of 10/h: idle (one taken) is full,
	 * drained (two taken) is not */
	assert_int_equal(limits_sweep(l, &conf, 360000, 100000), 1);
	assert_int_equal(limits_count(l), 2);
	assert_int_equal(limits_sessions(l, &busy), 1);
	/* an hour on: drained is full, busy still has its session */
	assert_int_equal(limits_sweep(l, &conf, HOUR_MS, 100000), 1);
	assert_int_equal(limits_count(l), 1);
	assert_int_equal(limits_sessions(l, &busy), 1);
	limits_disconnect(l, &busy);
	assert_int_equal(limits_sweep(l, &conf, 2 * HOUR_MS, 100000), 1);
	assert_int_equal(limits_count(l), 0);
	/* a freed address starts over with a full bucket */
	assert_int_equal(limits_connect(l, &conf, &idle, 0, 1, 2 * HOUR_MS),
	    LIMIT_OK);
}

static void
test_sweep_bounded(void **state)
{
	struct limits *l = *state;
	struct netaddr a;
	size_t freed = 0, calls = 0, n;
	uint32_t i;

	for (i = 0; i < 1000; i++) {
		a = addr_n(i);
		assert_int_equal(limits_connect(l, &conf, &a, 0, 1, 0),
		    LIMIT_OK);
		limits_disconnect(l, &a);
	}
	while (limits_count(l) > 0) {
		n = limits_sweep(l, &conf, HOUR_MS, 64);
		assert_true(n <= 64);
		freed += n;
		assert_true(++calls < 1000);
	}
	assert_int_equal(freed, 1000);
	assert_true(calls > 1000 / 64);
	assert_int_equal(limits_sweep(l, &conf, HOUR_MS, 64), 0);
}

static void
test_growth_100k(void **state)
{
	struct limits *l = *state;
	struct netaddr a;
	uint32_t i;

	for (i = 0; i < 100000; i++) {
		a = addr_n(i);
		assert_int_equal(limits_connect(l, &conf, &a, 0, 1, 0),
		    LIMIT_OK);
	}
	assert_int_equal(limits_count(l), 100000);
	for (i = 0; i < 100000; i += 997) {
		a = addr_n(i);
		assert_int_equal(limits_sessions(l, &a), 1);
	}
	a = addr_n(100000);
	assert_int_equal(limits_sessions(l, &a), 0);
	for (i = 0; i < 100000; i++) {
		a = addr_n(i);
		limits_disconnect(l, &a);
	}
	assert_int_equal(limits_sweep(l, &conf, HOUR_MS, 1000000), 100000);
	assert_int_equal(limits_count(l), 0);
}

static void
test_replies(void **state)
{
	char buf[160], small[16];

	(void)state;
	limits_reply(LIMIT_CONCURRENCY, "192.0.2.1", buf, sizeof(buf));
	assert_string_equal(buf,
	    "421 4.7.0 Too many connections from [192.0.2.1], slow down");
	limits_reply(LIMIT_RATE, "2001:db8::1", buf, sizeof(buf));
	assert_string_equal(buf, "421 4.7.0 Connection rate limit exceeded "
	    "for [2001:db8::1], slow down");
	limits_reply(LIMIT_MAX_SESSIONS, "192.0.2.1", buf, sizeof(buf));
	assert_string_equal(buf,
	    "421 4.7.0 Server busy, too many connections, try again later");
	limits_reply(LIMIT_CONCURRENCY, "192.0.2.1", small, sizeof(small));
	assert_string_equal(small, "421 4.7.0 Too m");
	assert_string_equal(limits_name(LIMIT_CONCURRENCY), "concurrency");
	assert_string_equal(limits_name(LIMIT_RATE), "rate");
	assert_string_equal(limits_name(LIMIT_MAX_SESSIONS), "max_sessions");
	assert_string_equal(limits_name(LIMIT_OK), "ok");
}

static void
test_scaled(void **state)
{
	(void)state;
	assert_int_equal(limits_scaled(10, 1), 10);
	assert_int_equal(limits_scaled(10, 10), 100);
	assert_int_equal(limits_scaled(100000000, 10000), INT_MAX);
	assert_int_equal(limits_scaled(INT_MAX, 2), INT_MAX);
	assert_int_equal(limits_scaled(7, 0), 7);
}

static double
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* Not asserted: printed for the record. */
static void
test_benchmark(void **state)
{
	struct limits *l = *state;
	struct netaddr a;
	double t0;
	uint32_t i, n = 1000000;

	conf.client_connection_rate = 100000000;
	for (i = 0; i < 10000; i++) {
		a = addr_n(i);
		limits_connect(l, &conf, &a, 0, 1, 0);
		limits_disconnect(l, &a);
	}
	t0 = now_ns();
	for (i = 0; i < n; i++) {
		a = addr_n(i % 10000);
		if (limits_connect(l, &conf, &a, 0, 1, i) == LIMIT_OK)
			limits_disconnect(l, &a);
	}
	printf("# limits_connect+disconnect: %.0f ns/op (10000 addresses)\n",
	    (now_ns() - t0) / n);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_concurrency, reset, drop),
		cmocka_unit_test_setup_teardown(test_concurrency_multiplier,
		    reset, drop),
		cmocka_unit_test_setup_teardown(test_rate_burst_exact, reset,
		    drop),
		cmocka_unit_test_setup_teardown(test_rate_refill_capped, reset,
		    drop),
		cmocka_unit_test_setup_teardown(test_max_sessions, reset, drop),
		cmocka_unit_test_setup_teardown(test_refused_leaves_no_entry,
		    reset, drop),
		cmocka_unit_test_setup_teardown(test_addresses_independent,
		    reset, drop),
		cmocka_unit_test_setup_teardown(test_ipv6, reset, drop),
		cmocka_unit_test_setup_teardown(test_disconnect_underflow,
		    reset, drop),
		cmocka_unit_test_setup_teardown(test_sweep, reset, drop),
		cmocka_unit_test_setup_teardown(test_sweep_bounded, reset,
		    drop),
		cmocka_unit_test_setup_teardown(test_growth_100k, reset, drop),
		cmocka_unit_test(test_replies),
		cmocka_unit_test(test_scaled),
		cmocka_unit_test_setup_teardown(test_benchmark, reset, drop),
	};

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, setup, teardown);
}
