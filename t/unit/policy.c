/*
 * t/unit/policy.c — greyd/policy.c, pure: the route at connect in its
 * order (allow over trap over the DNS lists over white), and the RCPT
 * verdict walked step by step as the session walks it: the facts it asks
 * for in turn, each verdict's reply text, log lines, and what the caller
 * must do (count, trap, tarpit, close, greylist with a minimum delay).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "policy.h"

struct fixture {
	struct greyd_conf c;
	struct rcpt_facts f;
	struct rcpt_decision d;
	struct dnsbl_result bl, rhs;
};

static int
setup(void **state)
{
	static struct fixture fx;
	const char *ov[] = { "hostname=mx.test", "message_recipient_limit=3",
	    "max_unknown_recipients=2", NULL };
	char err[CONF_ERRLEN];

	memset(&fx, 0, sizeof(fx));
	if (conf_load(&fx.c, NULL, ov, err, sizeof(err)) != 0) {
		fprintf(stderr, "# %s\n", err);
		return -1;
	}
	fx.f = (struct rcpt_facts){ .addr = "192.0.2.7", .rcpt = "Bob@example.com",
	    .sender = "alice@example.org", .mult = 1, .rcpt_why = "map" };
	*state = &fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *fx = *state;

	conf_free(&fx->c);
	return 0;
}

static struct dnsbl_result
result(int score, const char *hits, const char *top, const char *txt)
{
	struct dnsbl_result r;

	memset(&r, 0, sizeof(r));
	r.score = score;
	snprintf(r.hits, sizeof(r.hits), "%s", hits);
	snprintf(r.top, sizeof(r.top), "%s", top);
	snprintf(r.txt, sizeof(r.txt), "%s", txt);
	return r;
}

/* The lists answered (none listed), the recipient is valid. */
static void
known_up_to_grey(struct fixture *fx)
{
	fx->f.lists_known = true;
	fx->f.rcpt_known = true;
	fx->f.rcpt_verdict = RCPT_VALID;
}

/* ---- at connect ---- */

static void
test_route_order(void **state)
{
	struct fixture *fx = *state;
	struct client_facts f;
	struct route_decision d;
	struct cidr allow;
	struct trap_rec t = { .trapped_at = 1, .expire = 1795000000 };
	struct white_rec w = { .passes = 1 };
	struct dnsbl_result listed = result(3, "bl.test*3", "bl.test", "");
	struct dnsbl_result dnswl = result(-5, "wl.test*-5", "", "");
	struct netaddr a;

	assert_int_equal(netaddr_parse_cidr(&allow, "192.0.2.0/24"), 0);
	/* everything known: allow_clients wins */
	f = (struct client_facts){ &allow, &t, &listed, "192.0.2.0/24", &w };
	policy_route(&fx->c, &f, &d);
	assert_int_equal(d.route, ROUTE_FAST);
	assert_int_equal(d.reason, ROUTE_BY_ALLOW);
	assert_string_equal(d.why, "allow=192.0.2.0/24");
	/* then the trap, over a white entry */
	f.allow = NULL;
	policy_route(&fx->c, &f, &d);
	assert_int_equal(d.route, ROUTE_TRAPPED);
	assert_string_equal(d.why, "trapped until 1795000000");
	/* then a cached listing: greyd's session, white or not */
	f.trap = NULL;
	policy_route(&fx->c, &f, &d);
	assert_int_equal(d.route, ROUTE_SESSION);
	assert_int_equal(d.reason, ROUTE_BY_DNSBL);
	/* a DNS whitelist */
	f.bl = &dnswl;
	policy_route(&fx->c, &f, &d);
	assert_int_equal(d.route, ROUTE_FAST);
	assert_string_equal(d.why, "dnswl score=-5 lists=\"wl.test*-5\"");
	/* the white entry */
	f.bl = NULL;
	policy_route(&fx->c, &f, &d);
	assert_int_equal(d.route, ROUTE_FAST);
	assert_int_equal(d.reason, ROUTE_BY_WHITE);
	assert_string_equal(d.why, "white=192.0.2.0/24");
	/* nothing */
	f.white_key = NULL;
	f.white = NULL;
	policy_route(&fx->c, &f, &d);
	assert_int_equal(d.route, ROUTE_SESSION);
	assert_int_equal(d.reason, ROUTE_BY_NOTHING);
	assert_string_equal(d.why, "");

	/* policy_allowed finds the entry */
	free(fx->c.allow_clients);
	fx->c.allow_clients = &allow;
	fx->c.nallow_clients = 1;
	assert_int_equal(netaddr_parse(&a, "192.0.2.77"), 0);
	assert_ptr_equal(policy_allowed(&fx->c, &a), &allow);
	assert_int_equal(netaddr_parse(&a, "198.51.100.1"), 0);
	assert_null(policy_allowed(&fx->c, &a));
	fx->c.allow_clients = NULL;
	fx->c.nallow_clients = 0;
}

/* ---- at RCPT: the steps ---- */

static void
test_steps_to_greylist(void **state)
{
	struct fixture *fx = *state;

	assert_int_equal(policy_rcpt(&fx->c, &fx->f, &fx->d), STEP_NEED_LISTS);
	fx->f.lists_known = true;
	assert_int_equal(policy_rcpt(&fx->c, &fx->f, &fx->d), STEP_NEED_RCPT);
	fx->f.rcpt_known = true;
	fx->f.rcpt_verdict = RCPT_UNCHECKED;
	assert_int_equal(policy_rcpt(&fx->c, &fx->f, &fx->d), STEP_NEED_GREY);
	assert_int_equal(fx->d.min_delay, 0);
	fx->f.grey_known = true;
	fx->f.grey = GREYLIST_NEW;
	fx->f.wait = 300;
	fx->f.attempts = 1;
	assert_int_equal(policy_rcpt(&fx->c, &fx->f, &fx->d), STEP_DONE);
	assert_int_equal(fx->d.kind, RCPT_V_REFUSE);
	assert_string_equal(fx->d.reply, "451 4.7.1 <Bob@example.com>: "
	    "Greylisted, try again in 300 seconds");
	assert_string_equal(fx->d.log[0].word, "GREY");
	assert_string_equal(fx->d.log[0].text, "from=<alice@example.org> "
	    "to=<Bob@example.com> delay=300 attempts=1");
	assert_null(fx->d.log[1].word);
	assert_true(fx->d.greylisted);
	assert_false(fx->d.counts_reject);
	/* the same with the triplet keyed by SPF */
	fx->f.spf_key = "spf:example.org";
	policy_rcpt(&fx->c, &fx->f, &fx->d);
	assert_string_equal(fx->d.log[0].text, "from=<alice@example.org> "
	    "to=<Bob@example.com> delay=300 attempts=1 key=spf:example.org");
}

static void
test_pass(void **state)
{
	struct fixture *fx = *state;

	known_up_to_grey(fx);
	fx->f.grey_known = true;
	fx->f.grey = GREYLIST_PASS;
	fx->f.waited = 301;
	fx->f.white_key = "192.0.2.0/24";
	fx->f.passes = 1;
	assert_int_equal(policy_rcpt(&fx->c, &fx->f, &fx->d), STEP_DONE);
	assert_int_equal(fx->d.kind, RCPT_V_FORWARD);
	assert_true(fx->d.passed);
	assert_string_equal(fx->d.log[0].word, "PASS");
	assert_string_equal(fx->d.log[0].text, "from=<alice@example.org> "
	    "to=<Bob@example.com> waited=301 white=192.0.2.0/24 passes=1/1");
	fx->c.auto_whitelist_after = 3;
	policy_rcpt(&fx->c, &fx->f, &fx->d);
	assert_non_null(strstr(fx->d.log[0].text, "passes=1/3"));
}

static void
test_grey_failed(void **state)
{
	struct fixture *fx = *state;

	known_up_to_grey(fx);
	fx->f.grey_known = true;
	fx->f.grey_failed = true;
	assert_int_equal(policy_rcpt(&fx->c, &fx->f, &fx->d), STEP_DONE);
	assert_string_equal(fx->d.reply, "451 4.3.0 <Bob@example.com>: "
	    "Temporary lookup failure");
	assert_string_equal(fx->d.log[0].word, "TEMPFAIL");
	assert_true(fx->d.log[0].warn);
	assert_false(fx->d.greylisted);
}

/* Passed in this session, or trusted by a DNS whitelist: no greylisting,
 * unless SPF or a listing with dnsbl_action = greylist says so. */
static void
test_not_greylisted(void **state)
{
	struct fixture *fx = *state;
	struct dnsbl_result wl = result(-5, "wl.test*-5", "", "");

	known_up_to_grey(fx);
	fx->f.white = true;
	assert_int_equal(policy_rcpt(&fx->c, &fx->f, &fx->d), STEP_DONE);
	assert_int_equal(fx->d.kind, RCPT_V_FORWARD);
	assert_null(fx->d.log[0].word);
	fx->f.spf_greylist = true;
	assert_int_equal(policy_rcpt(&fx->c, &fx->f, &fx->d), STEP_NEED_GREY);
	fx->f.white = fx->f.spf_greylist = false;
	fx->f.bl_client = &wl;
	assert_int_equal(policy_rcpt(&fx->c, &fx->f, &fx->d), STEP_DONE);
	assert_true(fx->d.trusted);
	assert_true(fx->d.took_client_list);
	assert_int_equal(fx->d.kind, RCPT_V_FORWARD);
}

static void
test_recipient_limit(void **state)
{
	struct fixture *fx = *state;

	fx->f.nrcpt_seen = 3;
	assert_int_equal(policy_rcpt(&fx->c, &fx->f, &fx->d), STEP_DONE);
	assert_string_equal(fx->d.reply, "452 4.5.3 Error: too many recipients");
	assert_string_equal(fx->d.log[0].word, "LIMIT");
	assert_string_equal(fx->d.log[0].text,
	    "from=<alice@example.org> recipients per message (3)");
	fx->f.nrcpt_seen = 4;			/* logged once */
	policy_rcpt(&fx->c, &fx->f, &fx->d);
	assert_int_equal(fx->d.kind, RCPT_V_REFUSE);
	assert_null(fx->d.log[0].word);
	fx->f.mult = 10;			/* trusted_limit_multiplier */
	assert_int_equal(policy_rcpt(&fx->c, &fx->f, &fx->d), STEP_NEED_LISTS);
}

static void
test_trapped_and_broken(void **state)
{
	struct fixture *fx = *state;

	fx->f.trapped = true;
	fx->f.spamtrap = true;
	assert_int_equal(policy_rcpt(&fx->c, &fx->f, &fx->d), STEP_DONE);
	assert_string_equal(fx->d.reply,
	    "550 5.7.1 Service unavailable; client [192.0.2.7] blocked");
	assert_string_equal(fx->d.log[0].word, "REJECT");
	assert_string_equal(fx->d.log[0].text, "from=<alice@example.org> "
	    "to=<Bob@example.com> trapped");
	assert_true(fx->d.counts_reject);
	assert_int_equal(fx->d.reason, REJECT_TRAP);
	assert_false(fx->d.trap);		/* trapped already */
	fx->f.trapped = false;
	fx->f.txn_broken = true;
	policy_rcpt(&fx->c, &fx->f, &fx->d);
	assert_string_equal(fx->d.reply, "451 4.4.2 <Bob@example.com>: Backend "
	    "connection lost, try again later");
	assert_false(fx->d.counts_reject);
}

static void
test_spamtrap(void **state)
{
	struct fixture *fx = *state;

	fx->f.spamtrap = true;
	assert_int_equal(policy_rcpt(&fx->c, &fx->f, &fx->d), STEP_DONE);
	assert_true(fx->d.trap);
	assert_false(fx->d.tarpit);
	assert_string_equal(fx->d.reply,
	    "550 5.7.1 Service unavailable; client [192.0.2.7] blocked");
	assert_string_equal(fx->d.log[0].word, "TRAP");
	assert_string_equal(fx->d.log[0].text, "from=<alice@example.org> "
	    "to=<Bob@example.com> spamtrap expiry=86400 action=reject");
	fx->c.trap_action = ACTION_TARPIT;
	policy_rcpt(&fx->c, &fx->f, &fx->d);
	assert_true(fx->d.tarpit);
	assert_string_equal(fx->d.tarpit_why, "spamtrap");
}

static void
test_dnsbl(void **state)
{
	struct fixture *fx = *state;
	struct dnsbl_result bl = result(3, "bl.test*3", "bl.test", "see it");
	struct dnsbl_result rhs = result(2, "rhs.test*2", "rhs.test", "");

	known_up_to_grey(fx);
	fx->f.white = true;			/* ignored when listed */
	fx->f.bl_client = &bl;
	fx->f.bl_sender = &rhs;
	assert_int_equal(policy_rcpt(&fx->c, &fx->f, &fx->d), STEP_DONE);
	assert_int_equal(fx->d.kind, RCPT_V_REFUSE);
	assert_string_equal(fx->d.reply, "554 5.7.1 Service unavailable; client "
	    "[192.0.2.7] blocked using bl.test; see it");
	assert_string_equal(fx->d.log[0].text, "from=<alice@example.org> "
	    "to=<Bob@example.com> dnsbl bl.test score=3 action=reject");
	assert_int_equal(fx->d.reason, REJECT_DNSBL);
	assert_true(fx->d.took_client_list);
	assert_false(fx->d.took_sender_list);	/* not looked at */
	/* the sender's domain */
	bl.score = 0;
	policy_rcpt(&fx->c, &fx->f, &fx->d);
	assert_true(fx->d.took_sender_list);
	assert_non_null(strstr(fx->d.reply, "<alice@example.org>: Sender "
	    "address rejected: domain example.org blocked using rhs.test"));
	/* tarpit */
	fx->c.dnsbl_action = ACTION_TARPIT;
	policy_rcpt(&fx->c, &fx->f, &fx->d);
	assert_true(fx->d.tarpit);
	assert_string_equal(fx->d.tarpit_why, "dnsbl");
	/* greylist: even a client that passed, for dnsbl_greylist_delay */
	fx->c.dnsbl_action = ACTION_GREYLIST;
	assert_int_equal(policy_rcpt(&fx->c, &fx->f, &fx->d), STEP_NEED_GREY);
	assert_true(fx->d.bl_greylist);
	assert_int_equal(fx->d.min_delay, fx->c.dnsbl_greylist_delay);
}

static void
test_recipients(void **state)
{
	struct fixture *fx = *state;

	fx->f.lists_known = true;
	fx->f.rcpt_known = true;
	fx->f.rcpt_verdict = RCPT_UNKNOWN;
	assert_int_equal(policy_rcpt(&fx->c, &fx->f, &fx->d), STEP_DONE);
	assert_string_equal(fx->d.reply,
	    "550 5.1.1 <Bob@example.com>: Recipient address rejected");
	assert_string_equal(fx->d.log[0].word, "NOQUEUE");
	assert_string_equal(fx->d.log[0].text, "from=<alice@example.org> "
	    "to=<Bob@example.com> unknown recipient (map)");
	assert_true(fx->d.unknown_rcpt);
	assert_int_equal(fx->d.reason, REJECT_RCPT);
	assert_string_equal(fx->d.close_reply, "");
	/* the third unknown one with max_unknown_recipients = 2 */
	fx->f.unknown_rcpts = 2;
	policy_rcpt(&fx->c, &fx->f, &fx->d);
	assert_string_equal(fx->d.close_reply,
	    "421 4.7.0 mx.test Error: too many unknown recipients");
	assert_string_equal(fx->d.log[1].word, "REJECT");
	assert_string_equal(fx->d.log[1].text, "too many unknown recipients (3)");
	fx->f.rcpt_verdict = RCPT_TEMPFAIL;
	fx->f.rcpt_why = "callout: backend tempfail";
	policy_rcpt(&fx->c, &fx->f, &fx->d);
	assert_string_equal(fx->d.reply, "450 4.1.1 <Bob@example.com>: "
	    "Recipient address rejected: unverified address, try again later");
	assert_string_equal(fx->d.log[0].text, "from=<alice@example.org> "
	    "to=<Bob@example.com> recipient verification failed (callout: "
	    "backend tempfail)");
	assert_false(fx->d.counts_reject);
}

static void
test_postmaster(void **state)
{
	struct fixture *fx = *state;

	known_up_to_grey(fx);
	fx->f.rcpt = "Postmaster@example.com";
	assert_int_equal(policy_rcpt(&fx->c, &fx->f, &fx->d), STEP_DONE);
	assert_int_equal(fx->d.kind, RCPT_V_FORWARD);
	assert_string_equal(fx->d.log[0].word, "EXEMPT");
	assert_string_equal(fx->d.log[0].text, "from=<alice@example.org> "
	    "to=<Postmaster@example.com>");
	fx->c.greylist_exempt_postmaster = false;
	assert_int_equal(policy_rcpt(&fx->c, &fx->f, &fx->d), STEP_NEED_GREY);
}

#define T(name)	cmocka_unit_test_setup_teardown(name, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_route_order),
		T(test_steps_to_greylist),
		T(test_pass),
		T(test_grey_failed),
		T(test_not_greylisted),
		T(test_recipient_limit),
		T(test_trapped_and_broken),
		T(test_spamtrap),
		T(test_dnsbl),
		T(test_recipients),
		T(test_postmaster),
	};

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
