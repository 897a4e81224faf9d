/*
 * session.c — the SMTP session greyd conducts itself with a client that is
 * not trusted yet (see listener.c for the routing, relay.c for the backend).
 *
 * States:
 *   GREET    the pregreet test (greet_wait > 0, client not known good):
 *            "220-" was sent; a client that talks before the rest of the
 *            banner is an early talker (pregreet_action).
 *   COMMAND  read one command line at a time from the input buffer and
 *            answer it; pipelined commands wait in the buffer, in order.
 *   BACKEND  a command is with the backend (opening the relay, MAIL, RCPT,
 *            DATA, end of data, RSET) or a recipient callout is out
 *            (rcpt.c): input stays buffered, unread, and the client's idle
 *            timer is off until the reply is there.
 *   DATA     message text: each line is checked (CRLF only, no NUL, at most
 *            1000 octets) and streamed to the backend without buffering the
 *            message.  A bad line poisons the message: the backend
 *            connection is dropped at once (so the partial message can never
 *            be delivered), the rest is read and discarded up to CRLF.CRLF,
 *            and the client gets one rejection.  Only CRLF.CRLF ends DATA:
 *            a "." line ends it only when the octets before it are CRLF
 *            (or the DATA command's own CRLF), so after a line that ended
 *            in a bare LF ("\n.\r\n") the "." is message text and what
 *            follows it can never be read as a smuggled command.
 *   CLOSING  the last reply is being flushed; the session is freed when the
 *            output is empty or the peer is gone.
 *
 * Each RCPT goes through, in order: the recipient limit, the trap (a
 * trapped client gets 550 5.7.1), the spamtrap check (a hit traps the
 * client), recipient verification (rcpt.c: maps, cache, callout; unknown
 * gives 550 5.1.1 and more than max_unknown_recipients of them 421), and
 * the greylist decision (greylist.c on the trust database's grey record).  The first recipient that passes opens the relay:
 * PROXY header or XCLIENT, replayed HELO/EHLO, MAIL; from then on every
 * command of the transaction goes to the backend and the backend's own
 * reply goes back to the client.  The client gets 250 after DATA only when
 * the backend said 250.  Greylisted recipients never reach the backend.
 *
 * Reputation counters are kept in the session and written to the client
 * record once, when the session ends.  A session that is handed to the
 * tarpit (pregreet, protocol error, trap with action tarpit) gives its
 * socket to tarpit.c and ends.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "callout.h"
#include "clock.h"
#include "greyd_limits.h"
#include "greylist.h"
#include "log.h"
#include "netaddr.h"
#include "dnsbl.h"
#include "policy.h"
#include "rcpt.h"
#include "relay.h"
#include "session.h"
#include "smtp.h"
#include "spf.h"
#include "tarpit.h"
#include "trust.h"
#include "trustdb.h"

#define SESSION_PULL_MAX	(64 * 1024)	/* octets examined per pass */
#define SESSION_IN_HIGH		(128 * 1024)	/* stop reading the client */
#define SESSION_OUT_HIGH	(64 * 1024)	/* stop answering until flushed */
#define SESSION_RELAY_HIGH	(256 * 1024)	/* stop reading message text */
#define SESSION_CLOSE_TIMEOUT	10		/* seconds to flush the last reply */

enum session_state { SS_COMMAND, SS_GREET, SS_BACKEND, SS_DATA, SS_CLOSING };

/* What the backend's next reply answers. */
enum session_await {
	AW_NONE, AW_OPEN, AW_MAIL, AW_RCPT, AW_DATA, AW_STREAM, AW_DOT, AW_RSET,
	AW_CALLOUT,	/* not the relay: rcpt.c's callout for s->rcpt */
	AW_DNSBL,	/* not the relay: dnsbl.c's lookups */
	AW_SPF,		/* not the relay: spf.c's check of MAIL FROM */
};

struct session {
	struct conn conn;		/* in the server's registry */
	const struct session_deps *d;
	const struct greyd_conf *conf;	/* held for the session's life */
	struct bufferevent *bev;
	struct relay *relay;
	struct sockaddr_storage peer, local;
	struct netaddr addr;
	char addrstr[NETADDR_STRLEN];
	unsigned port;
	enum session_state state;
	enum session_await await;
	bool discarding;	/* dropping the rest of an over-long line */
	bool out_blocked;	/* waiting for the client to read our replies */
	bool relay_blocked;	/* waiting for the backend to take message text */
	bool white;		/* the client key passed greylisting this session */
	bool in_process;	/* session_process() is on the stack */
	bool trapped;		/* reject every RCPT with 550 5.7.1 */
	bool greet_tested;	/* the pregreet test ran ... */
	bool greet_failed;	/* ... and caught it, or a protocol error did */
	int mult;		/* 1, or trusted_limit_multiplier */
	int errors;
	unsigned unknown_rcpts;	/* 550 5.1.1 answers in this session */
	unsigned messages;	/* transactions (MAIL) in this session */
	struct callout_query *callout;
	struct dnsbl_lookup *bl_client;	/* dnsbl_sites, from the connect */
	struct dnsbl_lookup *bl_sender;	/* rhsbl_sender_sites, from MAIL */
	bool bl_client_seen;	/* its verdict is taken (and logged) */
	bool bl_sender_seen;
	struct dnsbl_result bl_client_r, bl_sender_r;	/* their results */
	struct rcpt_facts rf;	/* what is known of the RCPT being decided */
	char rcpt_why[48];	/* rf.rcpt_why: why the recipient is ... */
	char white_key[NETADDR_STRLEN];	/* rf.white_key */
	struct spf_check *spf;	/* in flight, from MAIL */
	struct event *greet_ev;	/* the end of greet_wait */

	/* HELO/EHLO */
	char helo[SMTP_LINE_MAX];
	bool helo_seen, esmtp;

	/* the transaction */
	bool mail_seen;
	bool backend_mail;	/* the backend accepted MAIL for it */
	bool txn_broken;	/* the backend went away during it */
	char sender[SMTP_PATH_MAX];
	char mail_params[SMTP_PARAMS_MAX];
	char pending[SMTP_PATH_MAX + SMTP_PARAMS_MAX + 16];	/* command to send to the backend */
	char rcpt[SMTP_PATH_MAX];		/* recipient of the pending RCPT */
	char rcpt_params[SMTP_PARAMS_MAX];	/* and its parameters */
	bool spf_greylist;	/* SPF action greylist: even if white */
	char *spf_key;		/* "spf:domain" after a pass, or NULL */
	char *spf_received;	/* the Received-SPF line, or NULL */
	unsigned nrcpt;		/* recipients the backend accepted */
	unsigned nrcpt_seen;
	long long data_bytes;
	const char *data_error;	/* reply for a poisoned message */
	bool data_crlf;		/* the message text so far ends in CRLF */
	bool data_last_cr;	/* its last octet is CR */

	struct {
		uint32_t greylisted, passed, delivered, rejected, trapped;
		uint32_t rejected_by[REJECT_NREASONS];
	} count;
};

static void session_read_cb(struct bufferevent *bev, void *arg);
static void session_write_cb(struct bufferevent *bev, void *arg);
static void session_event_cb(struct bufferevent *bev, short what, void *arg);
static void session_process(struct session *s);
static void session_free(struct session *s);
static void session_backend_next(struct session *s);
static void session_check_done(void *arg);

/* ---- replies and closing ---- */

static void
session_reply(struct session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
session_reply(struct session *s, const char *fmt, ...)
{
	struct evbuffer *out = bufferevent_get_output(s->bev);
	va_list ap;

	va_start(ap, fmt);
	evbuffer_add_vprintf(out, fmt, ap);
	va_end(ap);
	evbuffer_add(out, "\r\n", 2);
}

static void
session_set_idle_timer(struct session *s, bool on)
{
	struct timeval tv = { s->conf->smtp_idle_timeout, 0 };

	bufferevent_set_timeouts(s->bev, on ? &tv : NULL, &tv);
}

/* The last reply is written; free the session once it is flushed. */
static void
session_close(struct session *s)
{
	struct timeval tv = { SESSION_CLOSE_TIMEOUT, 0 };

	s->state = SS_CLOSING;
	if (s->callout != NULL) {
		callout_cancel(s->callout);
		s->callout = NULL;
	}
	if (s->spf != NULL) {
		spf_cancel(s->spf);
		s->spf = NULL;
	}
	if (s->greet_ev != NULL) {
		event_free(s->greet_ev);
		s->greet_ev = NULL;
	}
	bufferevent_disable(s->bev, EV_READ);
	bufferevent_set_timeouts(s->bev, NULL, &tv);
	bufferevent_setwatermark(s->bev, EV_WRITE, 0, 0);
	if (s->relay != NULL) {
		relay_free(s->relay, true);
		s->relay = NULL;
	}
}

static void
session_error(struct session *s, const char *reply)
{
	session_reply(s, "%s", reply);
	if (++s->errors < s->conf->smtp_error_limit)
		return;
	log_info("REJECT [%s]:%u too many errors (%d)", s->addrstr, s->port,
	    s->errors);
	session_reply(s, "421 4.7.0 %s Error: too many errors",
	    s->conf->hostname);
	session_close(s);
}

static void
session_reset_txn(struct session *s)
{
	s->mail_seen = false;
	s->backend_mail = false;
	s->txn_broken = false;
	s->sender[0] = s->mail_params[0] = '\0';
	s->nrcpt = s->nrcpt_seen = 0;
	s->data_bytes = 0;
	s->data_error = NULL;
	s->spf_greylist = false;
	free(s->spf_key);
	free(s->spf_received);
	s->spf_key = s->spf_received = NULL;
}

/* Drop the backend connection (it has no transaction worth keeping). */
static void
session_drop_relay(struct session *s, bool quit)
{
	if (s->relay == NULL)
		return;
	relay_free(s->relay, quit);
	s->relay = NULL;
	/* Its drain callback dies with it: nothing is waited for any more. */
	s->relay_blocked = false;
	if (s->backend_mail)
		s->txn_broken = s->mail_seen;
	s->backend_mail = false;
}

/* ---- the trust database ---- */

static void
session_count_reject(struct session *s, enum reject_reason why)
{
	s->count.rejected++;
	s->count.rejected_by[why]++;
}

static void
session_flush_counters(struct session *s)
{
	struct client_rec add = {
		.connections = 1,
		.greylisted = s->count.greylisted,
		.passed = s->count.passed,
		.delivered = s->count.delivered,
		.rejected = s->count.rejected,
		.trapped = s->count.trapped,
	};
	int64_t now = clock_now();

	memcpy(add.rejected_by, s->count.rejected_by, sizeof(add.rejected_by));
	/* Passed the before-220 test and made no protocol error since. */
	if (s->greet_tested && !s->greet_failed)
		add.greet_pass_until = now + s->conf->greet_pass_expiry;
	(void)trust_client(s->d->trust, s->addrstr, now, &add);
}

/* Trap the client's address for trap_expiry; nothing of this session
 * reaches the backend any more. */
static void
session_trap_client(struct session *s, enum trap_reason why)
{
	(void)trust_trap(s->d->trust, s->conf, s->addrstr, why, clock_now());
	s->count.trapped++;
	s->trapped = true;
	s->white = false;
	session_drop_relay(s, true);
	s->txn_broken = false;
}

static void
session_free_cb(evutil_socket_t fd, short what, void *arg)
{
	session_free(arg);
}

/*
 * Hand the connection to the tarpit (tarpit.c gets a dup of the socket)
 * and end this session from the event loop (the caller may be deep in
 * session_process).  false: no room in the tarpit, nothing changed.
 */
static bool
session_tarpit(struct session *s, const char *reply, const char *why,
    bool banner)
{
	struct timeval now = { 0, 0 };
	evutil_socket_t fd;

	if (!tarpit_room(s->d->srv, s->conf) ||
	    (fd = dup(bufferevent_getfd(s->bev))) < 0)
		return false;
	if (tarpit_start(s->d->srv, s->conf, fd, s->addrstr, s->port, banner, reply,
	    why) != 0) {
		close(fd);
		return false;
	}
	session_close(s);
	bufferevent_disable(s->bev, EV_READ | EV_WRITE);
	evbuffer_drain(bufferevent_get_output(s->bev),
	    evbuffer_get_length(bufferevent_get_output(s->bev)));
	if (event_base_once(server_base(s->d->srv), -1, EV_TIMEOUT, session_free_cb, s,
	    &now) != 0)
		log_warn("session [%s]:%u: cannot schedule its end", s->addrstr,
		    s->port);
	return true;
}

/*
 * A before-220 or protocol test caught the client: act per action.
 * Returns false for ACTION_IGNORE (the caller goes on as usual).
 */
static bool
session_caught(struct session *s, enum reject_reason reason,
    enum trap_reason trap, enum conf_action action, bool banner)
{
	s->greet_failed = true;
	switch (action) {
	case ACTION_IGNORE:
		return false;
	case ACTION_TARPIT:
		session_count_reject(s, reason);
		if (session_tarpit(s, "550 5.5.1 Protocol error",
		    reason == REJECT_PREGREET ? "pregreet" : "protocol", banner))
			return true;
		break;
	case ACTION_TRAP:
		session_trap_client(s, trap);
		session_count_reject(s, reason);
		break;
	case ACTION_REJECT:
	case ACTION_GREYLIST:		/* conf.c never allows these here */
	case ACTION_ACCEPT:
	case ACTION_TEMPFAIL:
		session_count_reject(s, reason);
		break;
	}
	session_reply(s, "521 5.5.1 Protocol error");
	session_close(s);
	return true;
}

/* ---- RCPT: the facts policy.c asks for, and its verdict ---- */

static void session_rcpt_decide(struct session *s);
static void session_suspend(struct session *s);
static void session_resume(struct session *s);

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

/* The lists are needed: wait for a lookup still out (true), or take the
 * results. */
static bool
session_rcpt_lists(struct session *s)
{
	struct dnsbl_lookup *l = NULL;

	if (s->bl_client != NULL && !dnsbl_done(s->bl_client))
		l = s->bl_client;
	else if (s->bl_sender != NULL && !dnsbl_done(s->bl_sender))
		l = s->bl_sender;
	if (l != NULL && dnsbl_wait(l, session_check_done, s)) {
		session_suspend(s);
		s->await = AW_DNSBL;
		return true;
	}
	if (s->bl_client != NULL) {
		dnsbl_result(s->bl_client, &s->bl_client_r);
		s->rf.bl_client = &s->bl_client_r;
	}
	if (s->bl_sender != NULL) {
		dnsbl_result(s->bl_sender, &s->bl_sender_r);
		s->rf.bl_sender = &s->bl_sender_r;
	}
	s->rf.lists_known = true;
	return false;
}

static void
session_callout_done(void *arg, enum rcpt_verdict v, const char *why)
{
	struct session *s = arg;

	s->callout = NULL;
	s->rf.rcpt_verdict = v;
	strlcpy(s->rcpt_why, why, sizeof(s->rcpt_why));
	s->rf.rcpt_known = true;
	session_check_done(s);
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
		s->callout = callout_query(s->d->callout, s->rcpt,
		    session_callout_done, s);
		if (s->callout != NULL) {
			session_suspend(s);
			s->await = AW_CALLOUT;
			return true;
		}
		v = RCPT_TEMPFAIL;
		why = "callout queue full";
	}
	s->rf.rcpt_verdict = v;
	strlcpy(s->rcpt_why, why, sizeof(s->rcpt_why));
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
		session_reply(s, "%s", d->reply);
		if (d->close_reply[0] != '\0') {
			session_reply(s, "%s", d->close_reply);
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
 * back here through session_check_done. */
static void
session_rcpt_decide(struct session *s)
{
	struct rcpt_decision d;

	for (;;) {
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

/* A fact the RCPT waited for is there (the DNS lists, a callout). */
static void
session_check_done(void *arg)
{
	struct session *s = arg;

	s->await = AW_NONE;
	session_rcpt_decide(s);
	/* Answered here (not forwarded to the backend, not closed). */
	if (s->state == SS_BACKEND && s->await == AW_NONE)
		session_resume(s);
}

static void
session_rcpt(struct session *s, const struct smtp_command *cmd)
{
	if (!s->mail_seen) {
		session_error(s, "503 5.5.1 Error: need MAIL command");
		return;
	}
	snprintf(s->rcpt, sizeof(s->rcpt), "%s", cmd->addr);
	snprintf(s->rcpt_params, sizeof(s->rcpt_params), "%s", cmd->params);
	s->rf = (struct rcpt_facts){
		.addr = s->addrstr, .rcpt = s->rcpt, .sender = s->sender,
		.mult = s->mult, .nrcpt_seen = s->nrcpt_seen++,
		.unknown_rcpts = s->unknown_rcpts, .trapped = s->trapped,
		.txn_broken = s->txn_broken, .white = s->white,
		.spf_greylist = s->spf_greylist, .spf_key = s->spf_key,
		.rcpt_why = s->rcpt_why,
	};
	s->rf.spamtrap = rcpt_is_spamtrap(trust_db(s->d->trust), s->rcpt);
	session_rcpt_decide(s);
}

/* ---- MAIL: SPF ---- */

/* Refuse MAIL (spf_reply: RFC 7372 codes, 550 or 451). */
static void
session_spf_refuse(struct session *s, const struct spf_answer *a,
    enum conf_action act)
{
	char reply[SMTP_LINE_MAX - 1];	/* a reply line: 510 + NUL */

	session_count_reject(s, REJECT_SPF);
	spf_reply(reply, sizeof(reply), a, s->sender, act);
	session_reply(s, "%s", reply);
	session_reset_txn(s);
}

/* Keep what the transaction needs: the header, the greylist key. */
static void
session_spf_accept(struct session *s, const struct spf_answer *a,
    enum conf_action act)
{
	char key[SPF_DOMAIN_MAX + 5];

	s->spf_greylist = act == ACTION_GREYLIST;
	if (a->received[0] != '\0' &&
	    (s->spf_received = strdup(a->received)) == NULL)
		log_warn("session [%s]:%u: out of memory for Received-SPF",
		    s->addrstr, s->port);
	if (spf_client_key(s->conf, a, act, key, sizeof(key)) &&
	    (s->spf_key = strdup(key)) == NULL)
		log_warn("session [%s]:%u: out of memory for the SPF key",
		    s->addrstr, s->port);
}

static void
session_spf_done(const struct spf_answer *a, void *arg)
{
	struct session *s = arg;
	enum conf_action act = spf_action(s->conf, a->result);

	s->spf = NULL;
	s->await = AW_NONE;
	log_info("SPF [%s]:%u from=<%s> helo=<%s> identity=%s domain=%s "
	    "result=%s action=%s%s%s%s ms=%lld", s->addrstr, s->port,
	    s->sender, s->helo, a->helo ? "helo" : "mailfrom", a->domain,
	    spf_result_name(a->result), conf_action_name(act),
	    a->reason[0] != '\0' ? " reason=\"" : "", a->reason,
	    a->reason[0] != '\0' ? "\"" : "", (long long)a->elapsed_ms);
	if (act == ACTION_REJECT || act == ACTION_TEMPFAIL)
		session_spf_refuse(s, a, act);
	else {
		session_spf_accept(s, a, act);
		session_reply(s, "250 2.1.0 Ok");
	}
	if (s->state == SS_BACKEND && s->await == AW_NONE)
		session_resume(s);
}

/* RFC 7208 §9.1: the Received-SPF header goes first in the message. */
static void
session_received_spf(struct session *s)
{
	if (s->spf_received == NULL || s->relay == NULL)
		return;
	relay_data(s->relay, s->spf_received, strlen(s->spf_received));
	relay_data(s->relay, "\r\n", 2);
}

/* ---- the backend ---- */

static void
session_suspend(struct session *s)
{
	s->state = SS_BACKEND;
	session_set_idle_timer(s, false);
}

static void
session_resume(struct session *s)
{
	if (s->state == SS_BACKEND)
		s->state = SS_COMMAND;
	session_set_idle_timer(s, true);
	session_process(s);
}

static void session_backend_reply(void *arg, int code, const char *reply,
    size_t len);

/* Make progress towards sending s->pending (open, MAIL, then the command). */
static void
session_backend_next(struct session *s)
{
	char line[SMTP_PATH_MAX + SMTP_PARAMS_MAX + 16];

	session_suspend(s);
	if (s->relay == NULL) {
		s->relay = relay_open(server_base(s->d->srv), s->conf,
		    (struct sockaddr *)&s->peer,
		    (struct sockaddr *)&s->local, s->helo, s->esmtp,
		    session_backend_reply, s);
		if (s->relay == NULL) {
			s->await = AW_NONE;
			session_reply(s, "451 4.4.2 Backend unavailable, try "
			    "again later");
			session_resume(s);
			return;
		}
		s->await = AW_OPEN;
		return;
	}
	if (s->mail_seen && !s->backend_mail && s->await == AW_RCPT) {
		snprintf(line, sizeof(line), "MAIL FROM:<%s>%s%s", s->sender,
		    s->mail_params[0] != '\0' ? " " : "", s->mail_params);
		relay_command(s->relay, line);
		s->await = AW_MAIL;
		return;
	}
	relay_command(s->relay, s->pending);
}

static const char *
pending_verb(const struct session *s)
{
	return s->pending[0] == '.' ? "end of data" : s->pending;
}

/* The backend failed (or refused the handshake) while we waited for it. */
static void
session_backend_failed(struct session *s, enum session_await aw, int code,
    const char *reply, size_t len)
{
	s->await = AW_NONE;
	session_drop_relay(s, false);
	log_info("TEMPFAIL [%s]:%u from=<%s> backend failed during %s",
	    s->addrstr, s->port, s->sender, aw == AW_OPEN ? "connect" :
	    pending_verb(s));
	if (aw == AW_NONE)
		return;
	if (aw == AW_STREAM) {
		/* Keep reading the message; the client hears at CRLF.CRLF.
		 * The input may have been held back for the backend: go on
		 * with it now, no read event may come for it. */
		s->data_error = "451 4.4.2 Backend connection lost, try again later";
		session_process(s);
		return;
	}
	if (code >= 400 && reply != NULL)
		evbuffer_add(bufferevent_get_output(s->bev), reply, len);
	else
		session_reply(s, "451 4.4.2 Backend unavailable, try again later");
	if (aw == AW_DOT || aw == AW_DATA)
		session_reset_txn(s);
	session_resume(s);
}

static void
session_relay_reply(struct session *s, const char *reply, size_t len)
{
	evbuffer_add(bufferevent_get_output(s->bev), reply, len);
}

static void
session_log_reply(struct session *s, const char *what, const char *reply,
    size_t len)
{
	while (len > 0 && (reply[len - 1] == '\n' || reply[len - 1] == '\r'))
		len--;
	log_info("%s [%s]:%u from=<%s> to=<%s> reply=\"%.*s\"", what,
	    s->addrstr, s->port, s->sender, s->rcpt, (int)(len > 200 ? 200 : len),
	    reply);
}

static void
session_backend_reply(void *arg, int code, const char *reply, size_t len)
{
	struct session *s = arg;
	enum session_await aw = s->await;

	if (aw == AW_CALLOUT || aw == AW_DNSBL || aw == AW_SPF) {
		/* The relay is idle while a callout or a DNS lookup is out:
		 * this can only be its failure; the session goes on waiting. */
		session_drop_relay(s, false);
		return;
	}
	if (code < 0 || (aw == AW_OPEN && code != 250)) {
		session_backend_failed(s, aw, code, reply, len);
		return;
	}
	s->await = AW_NONE;
	switch (aw) {
	case AW_OPEN:
		s->await = AW_RCPT;
		session_backend_next(s);
		return;
	case AW_MAIL:
		if (code == 250) {
			s->backend_mail = true;
			s->await = AW_RCPT;
			session_backend_next(s);
			return;
		}
		/* The backend refused the sender: that answers this RCPT. */
		session_log_reply(s, "NOQUEUE", reply, len);
		session_count_reject(s, REJECT_BACKEND);
		session_relay_reply(s, reply, len);
		break;
	case AW_RCPT:
		if (code / 100 == 2)
			s->nrcpt++;
		else {
			session_log_reply(s, "NOQUEUE", reply, len);
			session_count_reject(s, REJECT_BACKEND);
		}
		session_relay_reply(s, reply, len);
		break;
	case AW_DATA:
		session_relay_reply(s, reply, len);
		if (code == 354) {
			session_received_spf(s);
			s->state = SS_DATA;
			s->await = AW_STREAM;
			s->data_bytes = 0;
			s->data_error = NULL;
			s->data_crlf = true;	/* DATA's own CRLF */
			s->data_last_cr = false;
			session_set_idle_timer(s, true);
			session_process(s);
			return;
		}
		break;
	case AW_DOT:
		session_relay_reply(s, reply, len);
		if (code == 250) {
			s->count.delivered++;
			trust_delivered(s->d->trust, s->conf, &s->addr, clock_now());
			log_info("DELIVERED [%s]:%u from=<%s> nrcpt=%u size=%lld "
			    "reply=\"%.*s\"", s->addrstr, s->port, s->sender,
			    s->nrcpt, s->data_bytes, (int)(len > 2 ? len - 2 : 0),
			    reply);
		} else {
			session_count_reject(s, REJECT_BACKEND);
			session_log_reply(s, "NOQUEUE", reply, len);
		}
		session_reset_txn(s);
		break;
	case AW_RSET:
		session_reset_txn(s);
		session_reply(s, "250 2.0.0 Ok");
		break;
	default:
		/* A reply nobody waited for: relay.c reports those as -1. */
		break;
	}
	session_resume(s);
}

/* ---- commands ---- */

static void
session_ehlo(struct session *s, const struct smtp_command *cmd)
{
	const struct greyd_conf *c = s->conf;

	if (!smtp_valid_helo(cmd->arg)) {
		session_error(s, "501 5.5.4 Syntax: EHLO hostname");
		return;
	}
	/* A new greeting resets the session; the backend starts afresh too. */
	session_drop_relay(s, true);
	session_reset_txn(s);
	snprintf(s->helo, sizeof(s->helo), "%s", cmd->arg);
	s->helo_seen = true;
	s->esmtp = cmd->verb == SMTP_EHLO;
	if (!s->esmtp) {
		session_reply(s, "250 %s", c->hostname);
		return;
	}
	session_reply(s, "250-%s", c->hostname);
	session_reply(s, "250-PIPELINING");
	if (c->message_size_limit > 0)
		session_reply(s, "250-SIZE %lld", c->message_size_limit);
	else
		session_reply(s, "250-SIZE");
	session_reply(s, "250-8BITMIME");
	session_reply(s, "250 ENHANCEDSTATUSCODES");
}

/* Start the RHSBL lookup of the sender's domain (none for <>). */
static void
session_dnsbl_sender(struct session *s)
{
	const char *at = strrchr(s->sender, '@');

	dnsbl_release(s->bl_sender);
	s->bl_sender = NULL;
	s->bl_sender_seen = false;
	if (s->d->dnsbl != NULL && at != NULL && at[1] != '\0')
		s->bl_sender = dnsbl_sender(s->d->dnsbl, at + 1,
		    clock_ms());
}

static void
session_mail(struct session *s, const struct smtp_command *cmd)
{
	long long limit = s->conf->message_size_limit;

	if (!s->helo_seen) {
		session_error(s, "503 5.5.1 Error: send HELO/EHLO first");
		return;
	}
	if (s->mail_seen) {
		session_error(s, "503 5.5.1 Error: nested MAIL command");
		return;
	}
	if (limit > 0 && cmd->size > limit) {
		session_reply(s, "552 5.3.4 Message size exceeds fixed limit");
		return;
	}
	if (s->messages >= (unsigned)limits_scaled(
	    s->conf->session_message_limit, s->mult)) {
		log_info("LIMIT [%s]:%u messages per session (%u)", s->addrstr,
		    s->port, s->messages);
		session_count_reject(s, REJECT_LIMIT);
		session_reply(s, "421 4.7.0 Too many messages in this session");
		session_close(s);
		return;
	}
	s->messages++;
	session_reset_txn(s);
	s->mail_seen = true;
	snprintf(s->sender, sizeof(s->sender), "%s", cmd->addr);
	snprintf(s->mail_params, sizeof(s->mail_params), "%s", cmd->params);
	session_dnsbl_sender(s);
	/* No SPF, or a client on this host (spf_check_loopback = no). */
	if (s->d->spf == NULL || (!s->conf->spf_check_loopback &&
	    netaddr_is_loopback(&s->addr))) {
		session_reply(s, "250 2.1.0 Ok");
		return;
	}
	/* The answer to MAIL waits for SPF; input stays buffered. */
	session_suspend(s);
	s->await = AW_SPF;
	s->spf = spf_check(s->d->spf, &s->addr, s->helo, s->sender,
	    session_spf_done, s);
}

static void
session_data(struct session *s)
{
	if (!s->mail_seen) {
		session_error(s, "503 5.5.1 Error: need RCPT command");
		return;
	}
	if (s->trapped) {
		session_reply(s, "554 5.7.1 Service unavailable; client [%s] "
		    "blocked", s->addrstr);
		return;
	}
	if (s->txn_broken || (s->nrcpt > 0 && s->relay == NULL)) {
		session_reply(s, "451 4.4.2 Backend connection lost, try again "
		    "later");
		return;
	}
	if (s->nrcpt == 0) {
		session_reply(s, "554 5.5.1 Error: no valid recipients");
		return;
	}
	snprintf(s->pending, sizeof(s->pending), "DATA");
	s->await = AW_DATA;
	session_backend_next(s);
}

static void
session_rset(struct session *s)
{
	if (s->relay != NULL && s->backend_mail) {
		snprintf(s->pending, sizeof(s->pending), "RSET");
		s->await = AW_RSET;
		session_backend_next(s);
		return;
	}
	session_reset_txn(s);
	session_reply(s, "250 2.0.0 Ok");
}

static void
session_command(struct session *s, const char *line, size_t len)
{
	struct smtp_command cmd;
	const char *err;

	if (smtp_parse_command(line, len, &cmd, &err) != 0) {
		session_error(s, err);
		return;
	}
	switch (cmd.verb) {
	case SMTP_HELO:
	case SMTP_EHLO:
		session_ehlo(s, &cmd);
		break;
	case SMTP_MAIL:
		session_mail(s, &cmd);
		break;
	case SMTP_RCPT:
		session_rcpt(s, &cmd);
		break;
	case SMTP_DATA:
		session_data(s);
		break;
	case SMTP_RSET:
		session_rset(s);
		break;
	case SMTP_NOOP:
		session_reply(s, "250 2.0.0 Ok");
		break;
	case SMTP_VRFY:
		session_reply(s, "252 2.0.0 Cannot VRFY user, but will accept "
		    "message and attempt delivery");
		break;
	case SMTP_HELP:
		session_reply(s, "214 2.0.0 Commands: HELO EHLO MAIL RCPT DATA "
		    "RSET NOOP QUIT VRFY HELP");
		break;
	case SMTP_QUIT:
		session_reply(s, "221 2.0.0 Bye");
		session_close(s);
		break;
	case SMTP_NONSMTP:
		/* line is not NUL-terminated: print at most its len octets
		 * (the parser has refused control octets in them). */
		log_info("PROTOCOL [%s]:%u non-SMTP command \"%.*s\" action=%s",
		    s->addrstr, s->port, (int)(len < 20 ? len : 20), line,
		    conf_action_name(s->conf->protocol_error_action));
		/* No SMTP client sends these: the session ends either way. */
		if (session_caught(s, REJECT_PROTOCOL, TRAP_PROTOCOL,
		    s->conf->protocol_error_action, false))
			break;
		session_count_reject(s, REJECT_PROTOCOL);
		session_reply(s, "521 5.5.1 Protocol error");
		session_close(s);
		break;
	case SMTP_EXPN:
	case SMTP_STARTTLS:
	case SMTP_AUTH:
	case SMTP_BDAT:
		session_error(s, "502 5.5.1 Error: command not implemented");
		break;
	case SMTP_UNKNOWN:
		session_error(s, "500 5.5.2 Error: command not recognized");
		break;
	}
}

/* Examine input as command lines; returns the octets consumed. */
static size_t
session_command_input(struct session *s, const char *p, size_t n)
{
	size_t linelen, used;
	const char *lf;

	if (s->discarding) {
		if ((lf = memchr(p, '\n', n)) == NULL)
			return n;
		s->discarding = false;
		return (size_t)(lf - p) + 1;
	}
	switch (smtp_line_scan(p, n, SMTP_LINE_MAX, &linelen, &used)) {
	case SMTP_LINE_INCOMPLETE:
		return 0;
	case SMTP_LINE_OK:
		session_command(s, p, linelen);
		break;
	case SMTP_LINE_TOO_LONG:
		if (p[used - 1] != '\n')
			s->discarding = true;
		session_error(s, "500 5.5.2 Error: line too long");
		break;
	case SMTP_LINE_BARE_LF:
		log_info("PROTOCOL [%s]:%u bare newline action=%s", s->addrstr,
		    s->port, conf_action_name(s->conf->protocol_error_action));
		if (!session_caught(s, REJECT_PROTOCOL, TRAP_PROTOCOL,
		    s->conf->protocol_error_action, false))
			session_error(s, "500 5.5.2 Error: bare <LF> received");
		break;
	case SMTP_LINE_BARE_CR:
		session_error(s, "500 5.5.2 Error: bare <CR> received");
		break;
	case SMTP_LINE_NUL:
		session_error(s, "500 5.5.2 Error: NUL character received");
		break;
	}
	return used;
}

/* ---- message text ---- */

static void
session_data_poison(struct session *s, const char *reply, const char *why)
{
	if (s->data_error != NULL)
		return;
	s->data_error = reply;
	log_info("REJECT [%s]:%u from=<%s> %s in message text", s->addrstr,
	    s->port, s->sender, why);
	/* The partial message must never be completed: drop the backend. */
	session_drop_relay(s, false);
	s->txn_broken = false;
}

static void
session_data_line_error(struct session *s, enum smtp_line_status st,
    const char *p, size_t used)
{
	switch (st) {
	case SMTP_LINE_TOO_LONG:
		if (p[used - 1] != '\n')
			s->discarding = true;
		session_data_poison(s, "552 5.5.2 Message rejected: line longer "
		    "than 1000 octets", "line too long");
		break;
	case SMTP_LINE_BARE_LF:
		session_data_poison(s, "550 5.5.2 Message rejected: bare <LF> "
		    "received", "bare LF");
		break;
	case SMTP_LINE_BARE_CR:
		session_data_poison(s, "550 5.5.2 Message rejected: bare <CR> "
		    "received", "bare CR");
		break;
	default:
		session_data_poison(s, "550 5.5.2 Message rejected: NUL "
		    "character received", "NUL");
		break;
	}
}

static void
session_data_end(struct session *s)
{
	if (s->data_error != NULL || s->relay == NULL) {
		session_count_reject(s, s->data_error != NULL ?
		    REJECT_PROTOCOL : REJECT_BACKEND);
		session_reply(s, "%s", s->data_error != NULL ? s->data_error :
		    "451 4.4.2 Backend connection lost, try again later");
		session_reset_txn(s);
		s->state = SS_COMMAND;
		s->await = AW_NONE;
		return;
	}
	snprintf(s->pending, sizeof(s->pending), ".");
	s->await = AW_DOT;
	session_backend_next(s);
}

/* Note the last octets of consumed message text (for the CRLF.CRLF rule). */
static void
session_data_track(struct session *s, const char *q, size_t k)
{
	if (k == 0)
		return;
	s->data_crlf = q[k - 1] == '\n' &&
	    (k >= 2 ? q[k - 2] == '\r' : s->data_last_cr);
	s->data_last_cr = q[k - 1] == '\r';
}

static void
session_relay_drained(void *arg)
{
	struct session *s = arg;

	s->relay_blocked = false;
	session_process(s);
}

static void
session_forward(struct session *s, const char *p, size_t n)
{
	if (n == 0 || s->data_error != NULL || s->relay == NULL)
		return;
	relay_data(s->relay, p, n);
	if (relay_backlog(s->relay) >= SESSION_RELAY_HIGH) {
		s->relay_blocked = true;
		relay_on_drain(s->relay, session_relay_drained, s);
	}
}

/* Examine input as message text; returns the octets consumed. */
static size_t
session_data_input(struct session *s, const char *p, size_t n)
{
	long long limit = s->conf->message_size_limit;
	size_t off = 0, run = 0, linelen, used;
	enum smtp_line_status st;
	const char *lf;

	while (off < n && !s->relay_blocked) {
		if (s->discarding) {
			if ((lf = memchr(p + off, '\n', n - off)) == NULL) {
				session_data_track(s, p + off, n - off);
				return n;
			}
			s->discarding = false;
			session_data_track(s, p + off, (size_t)(lf - p) + 1 - off);
			off = run = (size_t)(lf - p) + 1;
			continue;
		}
		st = smtp_line_scan(p + off, n - off, SMTP_TEXT_LINE_MAX,
		    &linelen, &used);
		if (st == SMTP_LINE_INCOMPLETE)
			break;
		if (st == SMTP_LINE_OK && linelen == 1 && p[off] == '.' &&
		    s->data_crlf) {
			session_forward(s, p + run, off - run);
			session_data_end(s);
			return off + used;
		}
		if (st != SMTP_LINE_OK)
			session_data_line_error(s, st, p + off, used);
		session_data_track(s, p + off, used);
		s->data_bytes += (long long)used;
		if (limit > 0 && s->data_bytes > limit)
			session_data_poison(s, "552 5.3.4 Error: message file "
			    "too big", "size limit");
		off += used;
		if (s->data_error != NULL)
			run = off;
		else if (off - run >= SESSION_PULL_MAX / 2) {
			session_forward(s, p + run, off - run);
			run = off;
		}
	}
	session_forward(s, p + run, off - run);
	return off;
}

/* ---- before 220: the pregreet test ---- */

/* Is the client due for the pregreet test (not passed it lately)? */
static bool
session_greet_due(struct session *s)
{
	struct client_rec r;

	if (s->conf->greet_wait <= 0 || s->trapped)
		return false;
	return trustdb_get_client(trust_db(s->d->trust), s->addrstr, &r) != 0 ||
	    r.greet_pass_until <= clock_now();
}

static void session_greet_cb(evutil_socket_t fd, short what, void *arg);

/* "220-" now, the rest after greet_wait; reading waits until then. */
static void
session_greet_start(struct session *s)
{
	struct timeval tv = { s->conf->greet_wait, 0 };

	s->greet_ev = evtimer_new(server_base(s->d->srv), session_greet_cb, s);
	if (s->greet_ev == NULL || evtimer_add(s->greet_ev, &tv) != 0) {
		session_reply(s, "220 %s", s->conf->smtp_banner);
		return;
	}
	s->state = SS_GREET;
	s->greet_tested = true;
	bufferevent_disable(s->bev, EV_READ);
	session_reply(s, "220-%s", s->conf->smtp_banner);
}

/* greet_wait is over and the client kept quiet (or it was ignored). */
static void
session_greet_done(struct session *s)
{
	s->state = SS_COMMAND;
	session_reply(s, "220 %s", s->conf->smtp_banner);
	session_set_idle_timer(s, true);
	session_process(s);
}

/* The client talked before the banner ended: an early talker.  Returns
 * false when pregreet_action is ignore. */
static bool
session_pregreet(struct session *s, char *text, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if ((unsigned char)text[i] < ' ' || (unsigned char)text[i] > '~')
			text[i] = '.';
	text[n] = '\0';
	log_info("PREGREET [%s]:%u in %d s of greet_wait \"%s\" action=%s",
	    s->addrstr, s->port, s->conf->greet_wait, text,
	    conf_action_name(s->conf->pregreet_action));
	return session_caught(s, REJECT_PREGREET, TRAP_PREGREET,
	    s->conf->pregreet_action, true);
}

static void
session_greet_cb(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;
	char text[24];
	ssize_t n;

	event_free(s->greet_ev);
	s->greet_ev = NULL;
	n = recv(bufferevent_getfd(s->bev), text, 20, MSG_PEEK | MSG_DONTWAIT);
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
		log_info("HANGUP [%s]:%u before the end of the banner",
		    s->addrstr, s->port);
		s->greet_failed = true;		/* not a pass */
		session_free(s);
		return;
	}
	if (n > 0 && session_pregreet(s, text, (size_t)n))
		return;
	if (n < 0)
		log_info("PASS-GREET [%s]:%u after %d s", s->addrstr, s->port,
		    s->conf->greet_wait);
	session_greet_done(s);
}

/* ---- input loop ---- */

static void
session_process(struct session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	struct evbuffer *out = bufferevent_get_output(s->bev);
	size_t len, n, used;
	const char *p;

	if (s->state == SS_GREET)
		return;		/* reading waits for session_greet_cb */
	/* A command answered synchronously resumes us from inside the loop
	 * below: the loop itself goes on, never a second one over the same
	 * input. */
	if (s->in_process)
		return;
	s->in_process = true;
	if ((s->state == SS_COMMAND || s->state == SS_DATA) &&
	    !s->relay_blocked && !s->out_blocked &&
	    !(bufferevent_get_enabled(s->bev) & EV_READ))
		bufferevent_enable(s->bev, EV_READ);
	while (s->state == SS_COMMAND || s->state == SS_DATA) {
		if (s->relay_blocked)
			break;
		if (evbuffer_get_length(out) >= SESSION_OUT_HIGH) {
			s->out_blocked = true;
			break;
		}
		if ((len = evbuffer_get_length(in)) == 0)
			break;
		n = len < SESSION_PULL_MAX ? len : SESSION_PULL_MAX;
		p = (const char *)evbuffer_pullup(in, (ssize_t)n);
		used = s->state == SS_COMMAND ? session_command_input(s, p, n) :
		    session_data_input(s, p, n);
		if (used == 0)
			break;
		evbuffer_drain(in, used);
	}
	/* Input is held back (the backend has the command, the client does
	 * not read our replies, the backend does not take message text).
	 * With a full input buffer libevent 2.1 would call the read callback
	 * again at once, forever (100% CPU): stop reading until the session
	 * can take input again; the start of this function reads again. */
	if (s->state != SS_CLOSING && evbuffer_get_length(in) >= SESSION_IN_HIGH)
		bufferevent_disable(s->bev, EV_READ);
	s->in_process = false;
}

static void
session_read_cb(struct bufferevent *bev, void *arg)
{
	session_process(arg);
}

static void
session_write_cb(struct bufferevent *bev, void *arg)
{
	struct session *s = arg;

	if (s->state == SS_CLOSING) {
		session_free(s);
		return;
	}
	if (s->out_blocked) {
		s->out_blocked = false;
		session_process(s);
	}
}

static void
session_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct session *s = arg;

	if ((what & BEV_EVENT_TIMEOUT) && (what & BEV_EVENT_READING) &&
	    s->state != SS_CLOSING) {
		log_info("TIMEOUT [%s]:%u after %d s idle%s", s->addrstr,
		    s->port, s->conf->smtp_idle_timeout,
		    s->state == SS_DATA ? " in DATA" : "");
		session_reply(s, "421 4.4.2 %s Error: timeout exceeded",
		    s->conf->hostname);
		session_close(s);
		return;
	}
	if (s->state == SS_DATA || s->state == SS_BACKEND)
		log_info("HANGUP [%s]:%u from=<%s> %s", s->addrstr, s->port,
		    s->sender, s->state == SS_DATA ? "during DATA" :
		    "waiting for the backend");
	session_free(s);
}

/* ---- life cycle ---- */

/* The drain timeout: the session's last word, then close. */
static void
session_shutdown(void *arg)
{
	struct session *s = arg;

	if (s->state == SS_CLOSING)
		return;
	session_reply(s, "421 4.3.2 %s Service shutting down, closing "
	    "transmission channel", s->conf->hostname);
	session_close(s);
}

static void
session_free_op(void *arg)
{
	session_free(arg);
}

static const struct conn_ops session_ops = {
	.name = "session",
	.counted = true,
	.close_at_drain = false,
	.shutdown = session_shutdown,
	.free = session_free_op,
};

struct session *
session_new(const struct session_deps *d, evutil_socket_t fd,
    const struct sockaddr *peer, const struct sockaddr *local, int flags)
{
	struct session *s;
	struct netaddr a;

	if ((s = calloc(1, sizeof(*s))) == NULL) {
		if (netaddr_from_sockaddr(&a, peer) == 0)
			limits_disconnect(d->limits, &a);
		evutil_closesocket(fd);
		return NULL;
	}
	s->d = d;
	s->conf = conf_hold(conf_current());
	s->mult = 1;
	s->state = SS_COMMAND;
	s->trapped = (flags & SESSION_TRAPPED) != 0;
	memcpy(&s->peer, peer, peer->sa_family == AF_INET6 ?
	    sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in));
	memcpy(&s->local, local, local->sa_family == AF_INET6 ?
	    sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in));
	(void)netaddr_from_sockaddr(&s->addr, peer);
	netaddr_format(&s->addr, s->addrstr, sizeof(s->addrstr));
	s->port = ntohs(peer->sa_family == AF_INET6 ?
	    ((const struct sockaddr_in6 *)peer)->sin6_port :
	    ((const struct sockaddr_in *)peer)->sin_port);
	s->bev = bufferevent_socket_new(server_base(d->srv), fd,
	    BEV_OPT_CLOSE_ON_FREE);
	if (s->bev == NULL) {
		limits_disconnect(d->limits, &s->addr);
		evutil_closesocket(fd);
		conf_release(s->conf);
		free(s);
		return NULL;
	}
	bufferevent_setcb(s->bev, session_read_cb, session_write_cb,
	    session_event_cb, s);
	bufferevent_setwatermark(s->bev, EV_READ, 0, SESSION_IN_HIGH);
	session_set_idle_timer(s, true);
	bufferevent_enable(s->bev, EV_READ);
	server_add(d->srv, &s->conn, &session_ops, s);
	/* Every list asked now; the answers are needed at the first RCPT. */
	if (d->dnsbl != NULL && !s->trapped)
		s->bl_client = dnsbl_client(d->dnsbl, &s->addr, clock_ms());
	if (session_greet_due(s))
		session_greet_start(s);
	else
		session_reply(s, "220 %s", s->conf->smtp_banner);
	return s;
}

static void
session_free(struct session *s)
{
	session_flush_counters(s);
	if (s->callout != NULL)
		callout_cancel(s->callout);
	if (s->spf != NULL)
		spf_cancel(s->spf);
	session_reset_txn(s);
	dnsbl_release(s->bl_client);
	dnsbl_release(s->bl_sender);
	if (s->greet_ev != NULL)
		event_free(s->greet_ev);
	limits_disconnect(s->d->limits, &s->addr);
	if (s->relay != NULL)
		relay_free(s->relay, false);
	bufferevent_free(s->bev);
	server_remove(s->d->srv, &s->conn);
	conf_release(s->conf);
	free(s);
}
