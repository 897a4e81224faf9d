/*
 * checks.h — the one check a session (or greydb explain) waits for at a
 * time, with one way back: the DNS lists' lookups, a recipient callout to
 * the backend, or an SPF check of MAIL FROM.
 *
 * A slot holds at most one pending check.  When it ends, the slot notes
 * which kind ended (finished), keeps its answer, and calls done(arg)
 * once, from the event loop; done is the caller's single resume path, for
 * every kind.  The answer of a callout stays in the slot until the next
 * check; the SPF answer (answer) is valid only while done runs.  A check
 * that is cancelled never calls done.
 */
#ifndef GREYD_CHECKS_H
#define GREYD_CHECKS_H

#include <stdbool.h>

#include "callout.h"
#include "dnsbl.h"
#include "netaddr.h"
#include "rcpt.h"
#include "spf.h"

enum check_kind { CHECK_NONE, CHECK_LISTS, CHECK_CALLOUT, CHECK_SPF };

struct check_slot {
	enum check_kind pending;	/* what is being waited for */
	enum check_kind finished;	/* what ended last (for done) */
	void (*done)(void *arg);
	void *arg;
	union {
		struct dnsbl_lookup *lookup;	/* CHECK_LISTS, not owned */
		struct callout_query *query;	/* CHECK_CALLOUT */
		struct spf_check *spf;		/* CHECK_SPF */
	} u;
	/* CHECK_CALLOUT: the verdict and why (also when it could not be
	 * asked: RCPT_TEMPFAIL, "callout queue full") */
	enum rcpt_verdict verdict;
	char why[48];
	/* CHECK_SPF: the answer, while done runs */
	const struct spf_answer *answer;
};

void check_init(struct check_slot *k, void (*done)(void *arg), void *arg);
bool check_pending(const struct check_slot *k);
/*
 * Wait for whichever of the lookups a, b (either may be NULL) is still
 * out; false when none is (the results can be read now: nothing waits).
 */
bool check_lists(struct check_slot *k, struct dnsbl_lookup *a,
    struct dnsbl_lookup *b);
/* Ask the backend about rcpt; false when the query cannot even be queued
 * (then verdict and why say tempfail, and nothing waits). */
bool check_callout(struct check_slot *k, struct callout *co,
    const char *rcpt);
/* Check SPF for client, helo and sender (always waits). */
void check_spf(struct check_slot *k, struct spf *spf,
    const struct netaddr *client, const char *helo, const char *sender);
/* Drop the pending check, if any: done will not be called for it. */
void check_cancel(struct check_slot *k);

#endif
