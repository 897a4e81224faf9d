/*
 * policy.h — what greyd decides, pure (no I/O): the route a connection
 * takes at accept, and the verdict for each RCPT, with the reply text and
 * the log line's word and reason.  The daemon (listener.c, the session)
 * and `greydb explain` both call it, so what greydb explains is what greyd
 * does, and every reply text of a policy decision is written once, here.
 *
 * The callers gather the facts (the trust database, the DNS lists, the
 * recipient maps and callout, the greylist record) and do what the
 * decision says; policy.c only decides.
 *
 * At connect (policy_route), in this order:
 *   allow_clients match        -> fast path            why "allow=CIDR"
 *   trapped                    -> trapped (tarpit, or every RCPT 550)
 *   DNS lists, if cached:
 *     listed                   -> greyd's session (white ignored)
 *     trusted (DNSWL)          -> fast path            "dnswl score=N ..."
 *   white entry                -> fast path            "white=KEY"
 *   otherwise                  -> greyd's session
 * allow_clients wins over a trap (the admin said so); a trap wins over a
 * white entry.
 *
 * At RCPT (policy_rcpt), a step function: called with the facts known so
 * far, it either decides or names the fact it needs next (the DNS lists,
 * the recipient check, the greylist decision), in this order:
 *   recipients per message over message_recipient_limit -> 452 4.5.3
 *   the client is trapped                  -> 550 5.7.1 blocked
 *   the backend was lost in this transaction -> 451 4.4.2
 *   a spamtrap recipient                   -> trap the client, 550 5.7.1
 *                                             (tarpit per trap_action)
 *   DNSBL / RHSBL listed (dnsbl_action)    -> 554 5.7.1 blocked using
 *                                             LIST, tarpit, or greylisted
 *                                             for dnsbl_greylist_delay
 *   unknown recipient                      -> 550 5.1.1, and 421 past
 *                                             max_unknown_recipients
 *   recipient verification failed          -> 450 4.1.1
 *   postmaster (greylist_exempt_postmaster) -> relayed, never greylisted
 *   greylisted (a listing or SPF says so, or neither passed this
 *   session nor a DNS whitelist):  new or early -> 451 4.7.1, passed ->
 *                                             relayed, client whitelisted
 *   otherwise                              -> relayed
 */
#ifndef GREYD_POLICY_H
#define GREYD_POLICY_H

#include <stdbool.h>
#include <stddef.h>

#include "conf.h"
#include "dnsbl.h"
#include "greylist.h"
#include "netaddr.h"
#include "rcpt.h"
#include "trustdb.h"

#define POLICY_REPLY_MAX	512	/* a reply line, NUL included */
#define POLICY_WHY_MAX		(DNSBL_HITS_MAX + 64)

/* ---- at connect ---- */

enum route { ROUTE_SESSION, ROUTE_FAST, ROUTE_TRAPPED };

enum route_reason {
	ROUTE_BY_NOTHING,	/* unknown client: greyd's session */
	ROUTE_BY_ALLOW,		/* allow_clients */
	ROUTE_BY_TRAP,		/* a live trap record */
	ROUTE_BY_DNSBL,		/* cached DNS lists: listed */
	ROUTE_BY_DNSWL,		/* cached DNS lists: trusted */
	ROUTE_BY_WHITE,		/* a white entry */
};

/* What is known about a client when it connects; NULL: none. */
struct client_facts {
	const struct cidr *allow;	/* the allow_clients entry it is in */
	const struct trap_rec *trap;	/* its trap record, live */
	const struct dnsbl_result *bl;	/* the DNS lists' cached result */
	const char *white_key;		/* the white entry greyd matches */
	const struct white_rec *white;	/* (find_white, auto_whitelist_after) */
};

struct route_decision {
	enum route route;
	enum route_reason reason;
	/* for the log line: "allow=CIDR", "trapped until T", "dnswl score=N
	 * lists=\"...\"", "white=KEY", "" */
	char why[POLICY_WHY_MAX];
};

/* The allow_clients entry that a is in, or NULL. */
const struct cidr *policy_allowed(const struct greyd_conf *c,
    const struct netaddr *a);
void policy_route(const struct greyd_conf *c, const struct client_facts *f,
    struct route_decision *d);
/* The reply a trapped client is tarpitted with at connect. */
void policy_trapped_reply(const char *addr, char *buf, size_t len);

/* ---- at RCPT ---- */

enum rcpt_step {
	STEP_DONE,		/* *d holds the verdict */
	STEP_NEED_LISTS,	/* the DNS lists' results (lists_known) */
	STEP_NEED_RCPT,		/* recipient verification (rcpt_known) */
	STEP_NEED_GREY,		/* the greylist decision (grey_known),
				 * with d->min_delay */
};

/* What is known about one RCPT, gathered step by step. */
struct rcpt_facts {
	const char *addr;		/* the client address, as text */
	const char *rcpt;		/* the recipient, as the client wrote it */
	int mult;			/* 1, or trusted_limit_multiplier */
	unsigned nrcpt_seen;		/* RCPTs of this message before this one */
	unsigned unknown_rcpts;		/* 550 5.1.1 answers before this one */
	bool trapped;			/* the client is trapped */
	bool txn_broken;		/* the backend went away in this message */
	bool spamtrap;			/* the recipient is a spamtrap */
	bool white;			/* the client passed in this session */
	bool spf_greylist;		/* SPF's action is greylist */
	const char *sender;		/* MAIL FROM, for an RHSBL reply */

	bool lists_known;		/* bl_client/bl_sender are final */
	const struct dnsbl_result *bl_client;	/* NULL: no lists asked */
	const struct dnsbl_result *bl_sender;

	bool rcpt_known;
	enum rcpt_verdict rcpt_verdict;	/* never RCPT_CALLOUT here */
	const char *rcpt_why;		/* "map", "callout", ... */

	bool grey_known;
	bool grey_failed;		/* the grey record could not be read */
	enum greylist_verdict grey;	/* NEW, EARLY or PASS */
	int wait;			/* NEW, EARLY: seconds left */
	/* for the log line */
	unsigned attempts;		/* NEW, EARLY: of the stored record */
	long long waited;		/* PASS: seconds since the first try */
	const char *white_key;		/* PASS: the client key whitelisted */
	unsigned passes;		/* PASS: its passes now */
	const char *spf_key;		/* "spf:domain" keys the triplet, or
					 * NULL */
};

enum rcpt_kind {
	RCPT_V_FORWARD,		/* relay the RCPT to the backend */
	RCPT_V_REFUSE,		/* answer reply and go on */
};

struct rcpt_decision {
	enum rcpt_kind kind;
	/* The reply (no CRLF); RCPT_V_FORWARD: "". */
	char reply[POLICY_REPLY_MAX];
	/* A second reply line to send after it, then close ("421 ...");
	 * "" for none. */
	char close_reply[POLICY_REPLY_MAX];
	/* Log lines "WORD [addr]:port TEXT" (word NULL: no line); the second
	 * goes with close_reply. */
	struct {
		const char *word;	/* REJECT TRAP NOQUEUE TEMPFAIL EXEMPT
					 * GREY PASS LIMIT */
		bool warn;		/* a warning, not a decision */
		char text[POLICY_REPLY_MAX];
	} log[2];
	bool unknown_rcpt;	/* counts towards max_unknown_recipients */
	bool counts_reject;	/* the client's record counts a rejection */
	enum reject_reason reason;	/* ... for this reason */
	bool greylisted;	/* the client's record counts a greylisting */
	bool passed;		/* a greylist pass (whitelist the client) */
	bool trap;		/* trap the client (spamtrap) */
	bool tarpit;		/* hand the client to the tarpit, if room */
	const char *tarpit_why;	/* "spamtrap", "dnsbl" */
	bool trusted;		/* the client's DNS whitelists trust it */
	bool bl_greylist;	/* listed, dnsbl_action greylist */
	/* STEP_NEED_GREY: the delay the triplet waits at least */
	int min_delay;
	/* which DNS list verdicts this decision has taken (each is logged
	 * once per lookup by the caller) */
	bool took_client_list, took_sender_list;
};

enum rcpt_step policy_rcpt(const struct greyd_conf *c,
    const struct rcpt_facts *f, struct rcpt_decision *d);

/* Is a DNS list result listed (score >= dnsbl_threshold)?  Trusted (a
 * client result with score <= dnswl_threshold; a sender domain is forged
 * at will and never earns trust)? */
bool policy_listed(const struct greyd_conf *c, const struct dnsbl_result *r);
bool policy_trusted(const struct greyd_conf *c, const struct dnsbl_result *r,
    bool sender);

/* Reply texts shared with greydb explain. */
void policy_blocked_reply(const char *addr, char *buf, size_t len);
void policy_unknown_reply(const char *rcpt, char *buf, size_t len);
void policy_unverified_reply(const char *rcpt, char *buf, size_t len);
void policy_greylisted_reply(const char *rcpt, int wait, char *buf,
    size_t len);

#endif
