/*
 * policy.c — the route at connect and the verdict at RCPT (see policy.h
 * for the order of the checks), pure: no I/O, no clock, no database.
 *
 * Each verdict is written in one small function that fills the reply,
 * the log lines and what the caller must do (count, trap, tarpit, close);
 * policy_rcpt only walks the order.  Log texts follow the session's form
 * "from=<sender> to=<rcpt> reason", so that a line of the log and a line
 * of `greydb explain` name the same decision with the same words.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "greyd_limits.h"
#include "policy.h"

/* ---- at connect ---- */

const struct cidr *
policy_allowed(const struct greyd_conf *c, const struct netaddr *a)
{
	size_t i;

	for (i = 0; i < c->nallow_clients; i++)
		if (netaddr_in_cidr(a, &c->allow_clients[i]))
			return &c->allow_clients[i];
	return NULL;
}

bool
policy_listed(const struct greyd_conf *c, const struct dnsbl_result *r)
{
	return r != NULL && r->score >= c->dnsbl_threshold;
}

bool
policy_trusted(const struct greyd_conf *c, const struct dnsbl_result *r,
    bool sender)
{
	return r != NULL && !sender && r->score <= c->dnswl_threshold;
}

static void
route(struct route_decision *d, enum route r, enum route_reason why)
{
	d->route = r;
	d->reason = why;
}

void
policy_route(const struct greyd_conf *c, const struct client_facts *f,
    struct route_decision *d)
{
	char key[NETADDR_STRLEN];

	d->why[0] = '\0';
	if (f->allow != NULL) {
		netaddr_key(&f->allow->net, f->allow->prefix, key, sizeof(key));
		snprintf(d->why, sizeof(d->why), "allow=%s", key);
		route(d, ROUTE_FAST, ROUTE_BY_ALLOW);
	} else if (f->trap != NULL) {
		snprintf(d->why, sizeof(d->why), "trapped until %lld",
		    (long long)f->trap->expire);
		route(d, ROUTE_TRAPPED, ROUTE_BY_TRAP);
	} else if (policy_listed(c, f->bl)) {
		route(d, ROUTE_SESSION, ROUTE_BY_DNSBL);
	} else if (policy_trusted(c, f->bl, false)) {
		snprintf(d->why, sizeof(d->why), "dnswl score=%d lists=\"%s\"",
		    f->bl->score, f->bl->hits);
		route(d, ROUTE_FAST, ROUTE_BY_DNSWL);
	} else if (f->white_key != NULL) {
		snprintf(d->why, sizeof(d->why), "white=%s", f->white_key);
		route(d, ROUTE_FAST, ROUTE_BY_WHITE);
	} else
		route(d, ROUTE_SESSION, ROUTE_BY_NOTHING);
}

void
policy_trapped_reply(const char *addr, char *buf, size_t len)
{
	snprintf(buf, len, "550 5.7.1 Service unavailable; client [%s] trapped",
	    addr);
}

/* ---- reply texts ---- */

void
policy_blocked_reply(const char *addr, char *buf, size_t len)
{
	snprintf(buf, len, "550 5.7.1 Service unavailable; client [%s] blocked",
	    addr);
}

void
policy_unknown_reply(const char *rcpt, char *buf, size_t len)
{
	snprintf(buf, len, "550 5.1.1 <%s>: Recipient address rejected", rcpt);
}

void
policy_unverified_reply(const char *rcpt, char *buf, size_t len)
{
	snprintf(buf, len, "450 4.1.1 <%s>: Recipient address rejected: "
	    "unverified address, try again later", rcpt);
}

void
policy_greylisted_reply(const char *rcpt, int wait, char *buf, size_t len)
{
	snprintf(buf, len, "451 4.7.1 <%s>: Greylisted, try again in %d "
	    "seconds", rcpt, wait);
}

/* ---- at RCPT ---- */

static __attribute__((format(printf, 4, 5))) void
say(struct rcpt_decision *d, int i, const char *word, const char *fmt, ...)
{
	va_list ap;

	d->log[i].word = word;
	va_start(ap, fmt);
	vsnprintf(d->log[i].text, sizeof(d->log[i].text), fmt, ap);
	va_end(ap);
}

/* "from=<s> to=<r> " then the reason, as line i. */
static __attribute__((format(printf, 5, 6))) void
say_triplet(struct rcpt_decision *d, const struct rcpt_facts *f, int i,
    const char *word, const char *fmt, ...)
{
	char reason[POLICY_REPLY_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	say(d, i, word, "from=<%s> to=<%s>%s%s", f->sender, f->rcpt,
	    reason[0] != '\0' ? " " : "", reason);
}

static void
refuse(struct rcpt_decision *d, enum reject_reason why)
{
	d->kind = RCPT_V_REFUSE;
	d->counts_reject = true;
	d->reason = why;
}

static bool
over_recipient_limit(const struct greyd_conf *c, const struct rcpt_facts *f,
    struct rcpt_decision *d)
{
	int limit = limits_scaled(c->message_recipient_limit, f->mult);

	if (f->nrcpt_seen < (unsigned)limit)
		return false;
	d->kind = RCPT_V_REFUSE;
	if (f->nrcpt_seen == (unsigned)limit)	/* logged once a message */
		say(d, 0, "LIMIT", "from=<%s> recipients per message (%d)",
		    f->sender, limit);
	snprintf(d->reply, sizeof(d->reply),
	    "452 4.5.3 Error: too many recipients");
	return true;
}

static void
trapped(const struct rcpt_facts *f, struct rcpt_decision *d)
{
	refuse(d, REJECT_TRAP);
	say_triplet(d, f, 0, "REJECT", "trapped");
	policy_blocked_reply(f->addr, d->reply, sizeof(d->reply));
}

static void
broken(const struct rcpt_facts *f, struct rcpt_decision *d)
{
	d->kind = RCPT_V_REFUSE;
	snprintf(d->reply, sizeof(d->reply), "451 4.4.2 <%s>: Backend "
	    "connection lost, try again later", f->rcpt);
}

static void
spamtrap(const struct greyd_conf *c, const struct rcpt_facts *f,
    struct rcpt_decision *d)
{
	refuse(d, REJECT_TRAP);
	d->trap = true;
	d->tarpit = c->trap_action == ACTION_TARPIT;
	d->tarpit_why = "spamtrap";
	say_triplet(d, f, 0, "TRAP", "spamtrap expiry=%d action=%s",
	    c->trap_expiry, conf_action_name(c->trap_action));
	policy_blocked_reply(f->addr, d->reply, sizeof(d->reply));
}

/* One list's verdict; true if it answers the RCPT. */
static bool
listed(const struct greyd_conf *c, const struct rcpt_facts *f,
    const struct dnsbl_result *r, bool sender, struct rcpt_decision *d)
{
	if (!policy_listed(c, r))
		return false;
	if (c->dnsbl_action == ACTION_GREYLIST) {
		d->bl_greylist = true;
		return false;
	}
	refuse(d, REJECT_DNSBL);
	d->tarpit = c->dnsbl_action == ACTION_TARPIT;
	d->tarpit_why = "dnsbl";
	say_triplet(d, f, 0, "REJECT", "dnsbl %s score=%d action=%s", r->top,
	    r->score, conf_action_name(c->dnsbl_action));
	/* a long TXT is cut, the reply line kept */
	(void)dnsbl_reply(d->reply, sizeof(d->reply), r, f->addr,
	    sender ? f->sender : NULL);
	return true;
}

static bool
lists(const struct greyd_conf *c, const struct rcpt_facts *f,
    struct rcpt_decision *d)
{
	d->took_client_list = f->bl_client != NULL;
	d->trusted = policy_trusted(c, f->bl_client, false);
	if (listed(c, f, f->bl_client, false, d))
		return true;
	d->took_sender_list = f->bl_sender != NULL;
	return listed(c, f, f->bl_sender, true, d);
}

/* Recipient verification's verdict; true if it answers the RCPT. */
static bool
verified(const struct greyd_conf *c, const struct rcpt_facts *f,
    struct rcpt_decision *d)
{
	switch (f->rcpt_verdict) {
	case RCPT_UNKNOWN:
		refuse(d, REJECT_RCPT);
		d->unknown_rcpt = true;
		say_triplet(d, f, 0, "NOQUEUE", "unknown recipient (%s)",
		    f->rcpt_why);
		policy_unknown_reply(f->rcpt, d->reply, sizeof(d->reply));
		if (f->unknown_rcpts + 1 <= (unsigned)c->max_unknown_recipients)
			return true;
		say(d, 1, "REJECT", "too many unknown recipients (%u)",
		    f->unknown_rcpts + 1);
		snprintf(d->close_reply, sizeof(d->close_reply), "421 4.7.0 %s "
		    "Error: too many unknown recipients", c->hostname);
		return true;
	case RCPT_TEMPFAIL:
		d->kind = RCPT_V_REFUSE;
		say_triplet(d, f, 0, "TEMPFAIL", "recipient verification "
		    "failed (%s)", f->rcpt_why);
		policy_unverified_reply(f->rcpt, d->reply, sizeof(d->reply));
		return true;
	case RCPT_VALID:
	case RCPT_UNCHECKED:
	case RCPT_CALLOUT:
		break;
	}
	return false;
}

static void
greylisted(const struct greyd_conf *c, const struct rcpt_facts *f,
    struct rcpt_decision *d)
{
	const char *kp = f->spf_key != NULL ? " key=" : "";
	const char *kv = f->spf_key != NULL ? f->spf_key : "";

	if (f->grey_failed) {
		d->kind = RCPT_V_REFUSE;
		say_triplet(d, f, 0, "TEMPFAIL", "trust database error");
		d->log[0].warn = true;
		snprintf(d->reply, sizeof(d->reply), "451 4.3.0 <%s>: "
		    "Temporary lookup failure", f->rcpt);
		return;
	}
	if (f->grey != GREYLIST_PASS) {
		d->kind = RCPT_V_REFUSE;
		d->greylisted = true;
		say_triplet(d, f, 0, "GREY", "delay=%d attempts=%u%s%s",
		    f->wait, f->attempts, kp, kv);
		policy_greylisted_reply(f->rcpt, f->wait, d->reply,
		    sizeof(d->reply));
		return;
	}
	d->passed = true;
	say_triplet(d, f, 0, "PASS", "waited=%lld white=%s passes=%u/%d%s%s",
	    f->waited, f->white_key, f->passes,
	    c->auto_whitelist_after > 1 ? c->auto_whitelist_after : 1, kp, kv);
}

enum rcpt_step
policy_rcpt(const struct greyd_conf *c, const struct rcpt_facts *f,
    struct rcpt_decision *d)
{
	memset(d, 0, sizeof(*d));
	d->kind = RCPT_V_FORWARD;
	if (over_recipient_limit(c, f, d))
		return STEP_DONE;
	if (f->trapped) {
		trapped(f, d);
		return STEP_DONE;
	}
	if (f->txn_broken) {
		broken(f, d);
		return STEP_DONE;
	}
	if (f->spamtrap) {
		spamtrap(c, f, d);
		return STEP_DONE;
	}
	if (!f->lists_known)
		return STEP_NEED_LISTS;
	if (lists(c, f, d))
		return STEP_DONE;
	if (!f->rcpt_known)
		return STEP_NEED_RCPT;
	if (verified(c, f, d))
		return STEP_DONE;
	if (greylist_exempt(c, f->rcpt)) {
		say_triplet(d, f, 0, "EXEMPT", "%s", "");
		return STEP_DONE;
	}
	if (!d->bl_greylist && !f->spf_greylist && (f->white || d->trusted))
		return STEP_DONE;
	if (!f->grey_known) {
		d->min_delay = d->bl_greylist ? c->dnsbl_greylist_delay : 0;
		return STEP_NEED_GREY;
	}
	greylisted(c, f, d);
	return STEP_DONE;
}
