/*
 * greylist.c unit tests: the decision over time, the retry window, the
 * white record on pass, sender normalisation, the triplet key, exemptions.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "greylist.h"

static struct greyd_conf conf;

static int
setup(void **state)
{
	char err[CONF_ERRLEN];

	(void)state;
	assert_int_equal(conf_load(&conf, NULL, NULL, err, sizeof(err)), 0);
	conf.greylist_delay = 300;
	conf.greylist_retry_window = 4 * 3600;
	conf.white_expiry = 36 * 86400;
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	conf_free(&conf);
	return 0;
}

static void
test_new_early_pass(void **state)
{
	struct grey_rec r, u;
	int wait;

	(void)state;
	assert_int_equal(greylist_decide(&conf, NULL, 1000, &r, &wait),
	    GREYLIST_NEW);
	assert_int_equal(wait, 300);
	assert_int_equal(r.first_seen, 1000);
	assert_int_equal(r.pass_after, 1300);
	assert_int_equal(r.expire, 1000 + 4 * 3600);
	assert_int_equal(r.attempts, 1);

	assert_int_equal(greylist_decide(&conf, &r, 1100, &u, &wait),
	    GREYLIST_EARLY);
	assert_int_equal(wait, 200);
	assert_int_equal(u.attempts, 2);
	assert_int_equal(u.first_seen, 1000);	/* an early retry does not restart */
	assert_int_equal(u.last_seen, 1100);

	assert_int_equal(greylist_decide(&conf, &u, 1299, &r, &wait),
	    GREYLIST_EARLY);
	assert_int_equal(wait, 1);
	assert_int_equal(greylist_decide(&conf, &r, 1300, &u, &wait),
	    GREYLIST_PASS);
	assert_int_equal(wait, 0);
}

/* A DNSBL-listed client: at least min_delay since the first attempt. */
static void
test_min_delay(void **state)
{
	struct grey_rec r, u;
	int wait;

	(void)state;
	assert_int_equal(greylist_decide_min(&conf, NULL, 1000, 1800, &r,
	    &wait), GREYLIST_NEW);
	assert_int_equal(wait, 1800);
	assert_int_equal(r.pass_after, 2800);
	/* a triplet first seen with the ordinary delay is held back too */
	assert_int_equal(greylist_decide(&conf, NULL, 1000, &r, &wait),
	    GREYLIST_NEW);
	assert_int_equal(greylist_decide_min(&conf, &r, 1400, 1800, &u,
	    &wait), GREYLIST_EARLY);
	assert_int_equal(wait, 1400);
	assert_int_equal(u.pass_after, 2800);
	assert_int_equal(greylist_decide_min(&conf, &u, 2800, 1800, &r,
	    &wait), GREYLIST_PASS);
	/* a shorter minimum changes nothing */
	assert_int_equal(greylist_decide_min(&conf, NULL, 1000, 60, &r,
	    &wait), GREYLIST_NEW);
	assert_int_equal(wait, 300);
}

static void
test_window_expired_starts_over(void **state)
{
	struct grey_rec r, u;
	int wait;

	(void)state;
	greylist_decide(&conf, NULL, 1000, &r, &wait);
	/* the last second of the window still passes, the next does not */
	assert_int_equal(greylist_decide(&conf, &r, 1000 + 4 * 3600 - 1, &u,
	    &wait), GREYLIST_PASS);
	assert_int_equal(greylist_decide(&conf, &r, 1000 + 4 * 3600, &u,
	    &wait), GREYLIST_NEW);
	assert_int_equal(u.first_seen, 1000 + 4 * 3600);
	assert_int_equal(u.attempts, 1);
	assert_int_equal(wait, 300);
}

static void
test_clock_backwards_starts_over(void **state)
{
	struct grey_rec r, u;
	int wait;

	(void)state;
	greylist_decide(&conf, NULL, 5000, &r, &wait);
	assert_int_equal(greylist_decide(&conf, &r, 4000, &u, &wait),
	    GREYLIST_NEW);
}

static void
test_zero_delay_passes_first(void **state)
{
	struct grey_rec r;
	int wait;

	(void)state;
	conf.greylist_delay = 0;
	assert_int_equal(greylist_decide(&conf, NULL, 1000, &r, &wait),
	    GREYLIST_PASS);
	conf.greylist_delay = 300;
}

static void
test_white_pass_and_refresh(void **state)
{
	struct white_rec w, w2;

	(void)state;
	greylist_white_pass(&conf, NULL, 1000, &w);
	assert_int_equal(w.first_seen, 1000);
	assert_int_equal(w.expire, 1000 + 36 * 86400);
	assert_int_equal(w.passes, 1);
	assert_int_equal(w.origin, WHITE_LOCAL);
	greylist_white_pass(&conf, &w, 2000, &w2);
	assert_int_equal(w2.first_seen, 1000);
	assert_int_equal(w2.passes, 2);
	assert_int_equal(w2.expire, 2000 + 36 * 86400);
	/* an expired entry starts afresh */
	greylist_white_pass(&conf, &w, 1000 + 36 * 86400, &w2);
	assert_int_equal(w2.first_seen, 1000 + 36 * 86400);
	assert_int_equal(w2.passes, 1);
	/* admin entries keep their own expiry */
	w.origin = WHITE_ADMIN;
	w.expire = 1500;
	greylist_white_refresh(&conf, &w, 1400);
	assert_int_equal(w.expire, 1500);
	assert_int_equal(w.last_seen, 1400);
}

static void
check_norm(const char *in, const char *want)
{
	char out[256];

	greylist_normalise_sender(in, out, sizeof(out));
	assert_string_equal(out, want);
}

static void
test_normalise_sender(void **state)
{
	(void)state;
	check_norm("", "");
	check_norm("Alice@Example.ORG", "alice@example.org");
	check_norm("prvs=1234abcdef=alice@example.org", "alice@example.org");
	check_norm("msprvs1=17726abcde=bounce@example.org", "bounce@example.org");
	check_norm("btv1==123abcdef0==user@example.org", "user@example.org");
	check_norm("alice+tag123@example.org", "alice@example.org");
	check_norm("bounce-12345-678@lists.example.org", "bounce-#-#@lists.example.org");
	check_norm("list-bounces-99@x.org", "list-bounces-#@x.org");
	check_norm("user2000@x.org", "user2000@x.org");	/* digits inside a word stay */
	check_norm("srs0=ab12=cd=x.org=u@y.org", "srs0=ab12=cd=x.org=u@y.org");
	check_norm("\"quoted 123\"@x.org", "\"quoted 123\"@x.org");
	check_norm("1234@x.org", "#@x.org");
}

static void
test_triplet_key(void **state)
{
	char key[512];
	size_t n;

	(void)state;
	n = greylist_triplet_key(key, sizeof(key), "192.0.2.0/24",
	    "prvs=1234abcdef=A@X.org", "Bob@Example.COM");
	assert_int_equal(n, strlen("192.0.2.0/24") + 1 + strlen("a@x.org") + 1 +
	    strlen("bob@example.com"));
	assert_string_equal(key, "192.0.2.0/24");
	assert_string_equal(key + 13, "a@x.org");
	assert_string_equal(key + 13 + 8, "bob@example.com");
	/* too small a buffer is refused, not truncated */
	assert_int_equal(greylist_triplet_key(key, 20, "192.0.2.0/24", "a@x.org",
	    "bob@example.com"), 0);
}

static void
test_client_key(void **state)
{
	struct netaddr a;
	char key[NETADDR_STRLEN];

	(void)state;
	assert_int_equal(netaddr_parse(&a, "192.0.2.77"), 0);
	greylist_client_key(&conf, &a, key, sizeof(key));
	assert_string_equal(key, "192.0.2.0/24");
	assert_int_equal(netaddr_parse(&a, "2001:db8:1:2:3:4:5:6"), 0);
	greylist_client_key(&conf, &a, key, sizeof(key));
	assert_string_equal(key, "2001:db8:1:2::/64");
	conf.greylist_ipv4_prefix = 32;
	assert_int_equal(netaddr_parse(&a, "192.0.2.77"), 0);
	greylist_client_key(&conf, &a, key, sizeof(key));
	assert_string_equal(key, "192.0.2.77/32");
	conf.greylist_ipv4_prefix = 24;
}

static void
test_exempt(void **state)
{
	(void)state;
	assert_true(greylist_exempt(&conf, "postmaster@example.com"));
	assert_true(greylist_exempt(&conf, "PostMaster@example.com"));
	assert_true(greylist_exempt(&conf, "postmaster"));
	assert_false(greylist_exempt(&conf, "postmasterx@example.com"));
	assert_false(greylist_exempt(&conf, "alice@example.com"));
	conf.greylist_exempt_postmaster = false;
	assert_false(greylist_exempt(&conf, "postmaster@example.com"));
	conf.greylist_exempt_postmaster = true;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_new_early_pass),
		cmocka_unit_test(test_min_delay),
		cmocka_unit_test(test_window_expired_starts_over),
		cmocka_unit_test(test_clock_backwards_starts_over),
		cmocka_unit_test(test_zero_delay_passes_first),
		cmocka_unit_test(test_white_pass_and_refresh),
		cmocka_unit_test(test_normalise_sender),
		cmocka_unit_test(test_triplet_key),
		cmocka_unit_test(test_client_key),
		cmocka_unit_test(test_exempt),
	};

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, setup, teardown);
}
