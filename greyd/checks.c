/*
 * checks.c — the pending-check slot (see checks.h): one of the DNS lists'
 * lookups, a callout or an SPF check at a time, one resume callback.
 */
#include <string.h>

#include "checks.h"

void
check_init(struct check_slot *k, void (*done)(void *arg), void *arg)
{
	memset(k, 0, sizeof(*k));
	k->done = done;
	k->arg = arg;
}

bool
check_pending(const struct check_slot *k)
{
	return k->pending != CHECK_NONE;
}

static void
check_end(struct check_slot *k)
{
	k->finished = k->pending;
	k->pending = CHECK_NONE;
	k->done(k->arg);
}

static void
lists_done(void *arg)
{
	check_end(arg);
}

bool
check_lists(struct check_slot *k, struct dnsbl_lookup *a,
    struct dnsbl_lookup *b)
{
	struct dnsbl_lookup *l = NULL;

	if (a != NULL && !dnsbl_done(a))
		l = a;
	else if (b != NULL && !dnsbl_done(b))
		l = b;
	if (l == NULL || !dnsbl_wait(l, lists_done, k))
		return false;
	k->pending = CHECK_LISTS;
	k->u.lookup = l;
	return true;
}

static void
callout_done(void *arg, enum rcpt_verdict v, const char *why)
{
	struct check_slot *k = arg;

	k->verdict = v;
	strlcpy(k->why, why, sizeof(k->why));
	check_end(k);
}

bool
check_callout(struct check_slot *k, struct callout *co, const char *rcpt)
{
	if ((k->u.query = callout_query(co, rcpt, callout_done, k)) == NULL) {
		k->verdict = RCPT_TEMPFAIL;
		strlcpy(k->why, "callout queue full", sizeof(k->why));
		return false;
	}
	k->pending = CHECK_CALLOUT;
	return true;
}

static void
spf_done(const struct spf_answer *a, void *arg)
{
	struct check_slot *k = arg;

	k->answer = a;
	check_end(k);
	k->answer = NULL;
}

void
check_spf(struct check_slot *k, struct spf *spf, const struct netaddr *client,
    const char *helo, const char *sender)
{
	k->pending = CHECK_SPF;
	k->u.spf = spf_check(spf, client, helo, sender, spf_done, k);
}

void
check_cancel(struct check_slot *k)
{
	switch (k->pending) {
	case CHECK_LISTS:
		dnsbl_unwait(k->u.lookup);
		break;
	case CHECK_CALLOUT:
		callout_cancel(k->u.query);
		break;
	case CHECK_SPF:
		spf_cancel(k->u.spf);
		break;
	case CHECK_NONE:
		break;
	}
	k->pending = CHECK_NONE;
}
