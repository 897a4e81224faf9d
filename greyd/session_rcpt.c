/*
 * session_rcpt.c — RCPT: the facts policy.c asks for, in its order, and
 * what its verdict says to do.
 *
 * policy_rcpt is asked again after each fact it needs: the DNS lists
 * (asked at connect and MAIL; the first RCPT may have to wait for them),
 * the recipient check (rcpt.c's maps and cache; a callout to the backend
 * waits for its answer), the greylist decision (stored by the trust
 * layer).  A wait goes through the session's one check slot and comes
 * back to session_rcpt_checked.  The verdict: a reply (452, 550, 554,
 * 450, 451 ...), perhaps a trap, the tarpit or a 421 and close; or the
 * RCPT is relayed to the backend, which answers for itself.
 */
#include <string.h>

#include "clock.h"
#include "log.h"
#include "rcpt.h"
#include "session_impl.h"
#include "trust.h"

/* Log a DNS list's verdict once per lookup: score, lists hit, silent. */
static void
session_dnsbl_log(struct session *s, const char *what,
    const struct dnsbl_result *r, bool sender)
{
	if (r->score == 0 && r->silent[0] == '\0')
		return;
	log_info("DNSBL [%s]:%u from=<%s> %s score=%d lists=\"%s\"%s%s%s "
	    "%s", s->addrstr, s->port, s->sender, what, r->score, r->hits,
	    r->silent[0] != '\0' ? " silent=\"" : "", r->silent,
	    r->silent[0] != '\0' ? "\"" : "",
	    policy_listed(s->conf, r) ? "listed" :
	    policy_trusted(s->conf, r, sender) ? "trusted" : "not listed");
}

/* The lists' results, into rf (the caller's buffers), once known. */
static void
session_rcpt_results(struct session *s, struct dnsbl_result *c,
    struct dnsbl_result *snd)
{
	s->rf.bl_client = NULL;
	s->rf.bl_sender = NULL;
	if (!s->rf.lists_known)
		return;
	if (s->bl_client != NULL) {
		dnsbl_result(s->bl_client, c);
		s->rf.bl_client = c;
	}
	if (s->bl_sender != NULL) {
		dnsbl_result(s->bl_sender, snd);
		s->rf.bl_sender = snd;
	}
}

/* The lists are needed: wait for a lookup still out (true), or take the
 * results. */
static bool
session_rcpt_lists(struct session *s)
{
	if (check_lists(&s->check, s->bl_client, s->bl_sender)) {
		session_suspend(s, SS_WAIT);
		return true;
	}
	s->rf.lists_known = true;
	return false;
}

/* The recipient is checked: the maps and the cache now (false), or a
 * callout to the backend, answered later (true). */
static bool
session_rcpt_verify(struct session *s)
{
	const char *why = "";
	enum rcpt_verdict v;

	v = rcpt_lookup(s->conf, trust_db(s->d->trust), s->rcpt, clock_now(),
	    &why);
	if (v == RCPT_CALLOUT) {
		if (check_callout(&s->check, s->d->callout, s->rcpt)) {
			session_suspend(s, SS_WAIT);
			return true;
		}
		v = s->check.verdict;		/* could not even ask */
		why = s->check.why;
	} else
		strlcpy(s->check.why, why, sizeof(s->check.why));
	s->rf.rcpt_verdict = v;
	s->rf.rcpt_why = s->check.why;
	s->rf.rcpt_known = true;
	return false;
}

/* The greylist decision, stored by the trust layer. */
static void
session_rcpt_grey(struct session *s, int min_delay)
{
	char ckey[NETADDR_STRLEN], tkey[TRUSTDB_KEY_MAX];
	struct trust_grey g;
	size_t klen;
	int64_t now = clock_now();

	greylist_client_key(s->conf, &s->addr, ckey, sizeof(ckey));
	/* SPF pass: the triplet names the domain, not the address */
	klen = greylist_triplet_key(tkey, sizeof(tkey),
	    s->spf_key != NULL ? s->spf_key : ckey, s->sender, s->rcpt);
	s->rf.grey_known = true;
	if (klen == 0 || trust_greylist(s->d->trust, s->conf, ckey, tkey, klen,
	    min_delay, now, &g) != 0) {
		s->rf.grey_failed = true;
		return;
	}
	s->rf.grey = g.verdict;
	s->rf.wait = g.wait;
	s->rf.attempts = g.rec.attempts;
	s->rf.waited = g.had ? (long long)(now - g.old.first_seen) : 0;
	strlcpy(s->white_key, ckey, sizeof(s->white_key));
	s->rf.white_key = s->white_key;
	s->rf.passes = g.white.passes;
}

/* Log what was decided, then the lines of the DNS lists it took. */
static void
session_rcpt_log(struct session *s, const struct rcpt_decision *d)
{
	int i;

	if (d->took_client_list && !s->bl_client_seen) {
		s->bl_client_seen = true;
		session_dnsbl_log(s, "client", s->rf.bl_client, false);
	}
	if (d->took_sender_list && !s->bl_sender_seen) {
		s->bl_sender_seen = true;
		session_dnsbl_log(s, "sender", s->rf.bl_sender, true);
	}
	for (i = 0; i < 2; i++) {
		if (d->log[i].word == NULL)
			continue;
		if (d->log[i].warn)
			log_warn("%s [%s]:%u %s", d->log[i].word, s->addrstr,
			    s->port, d->log[i].text);
		else
			log_info("%s [%s]:%u %s", d->log[i].word, s->addrstr,
			    s->port, d->log[i].text);
	}
}

/* Do what policy_rcpt decided. */
static void
session_rcpt_act(struct session *s, const struct rcpt_decision *d)
{
	session_rcpt_log(s, d);
	if (d->counts_reject)
		session_count_reject(s, d->reason);
	if (d->unknown_rcpt)
		s->unknown_rcpts++;
	if (d->greylisted)
		s->count.greylisted++;
	if (d->passed) {
		s->white = true;
		s->count.passed++;
	}
	if (d->trap)
		session_trap_client(s, TRAP_SPAMTRAP);
	if (d->tarpit && session_tarpit(s, d->reply, d->tarpit_why, false))
		return;
	if (d->kind == RCPT_V_REFUSE) {
		sio_reply(s, "%s", d->reply);
		if (d->close_reply[0] != '\0') {
			sio_reply(s, "%s", d->close_reply);
			session_close(s);
		}
		return;
	}
	snprintf(s->pending, sizeof(s->pending), "RCPT TO:<%s>%s%s", s->rcpt,
	    s->rcpt_params[0] != '\0' ? " " : "", s->rcpt_params);
	s->await = AW_RCPT;
	session_backend_next(s);
}

/* Ask policy_rcpt until it decides, gathering what it needs; a fact that
 * takes time (a DNS lookup, a callout) suspends the session and comes
 * back through session_rcpt_checked. */
static void
session_rcpt_decide(struct session *s)
{
	struct dnsbl_result bl_client, bl_sender;
	struct rcpt_decision d;

	for (;;) {
		session_rcpt_results(s, &bl_client, &bl_sender);
		switch (policy_rcpt(s->conf, &s->rf, &d)) {
		case STEP_NEED_LISTS:
			if (session_rcpt_lists(s))
				return;
			break;
		case STEP_NEED_RCPT:
			if (session_rcpt_verify(s))
				return;
			break;
		case STEP_NEED_GREY:
			session_rcpt_grey(s, d.min_delay);
			break;
		case STEP_DONE:
			session_rcpt_act(s, &d);
			return;
		}
	}
}

void
session_rcpt_checked(struct session *s)
{
	if (s->check.finished == CHECK_CALLOUT) {
		s->rf.rcpt_verdict = s->check.verdict;
		s->rf.rcpt_why = s->check.why;
		s->rf.rcpt_known = true;
	}
	session_rcpt_decide(s);
}

void
session_rcpt(struct session *s, const struct smtp_command *cmd,
    const char *line, size_t len)
{
	(void)line;
	(void)len;
	snprintf(s->rcpt, sizeof(s->rcpt), "%s", cmd->addr);
	snprintf(s->rcpt_params, sizeof(s->rcpt_params), "%s", cmd->params);
	s->rf = (struct rcpt_facts){
		.addr = s->addrstr, .rcpt = s->rcpt, .sender = s->sender,
		.mult = s->mult, .nrcpt_seen = s->nrcpt_seen++,
		.unknown_rcpts = s->unknown_rcpts, .trapped = s->trapped,
		.txn_broken = s->txn_broken, .white = s->white,
		.spf_greylist = s->spf_greylist, .spf_key = s->spf_key,
		.rcpt_why = "",
	};
	s->rf.spamtrap = rcpt_is_spamtrap(trust_db(s->d->trust), s->rcpt);
	session_rcpt_decide(s);
}
