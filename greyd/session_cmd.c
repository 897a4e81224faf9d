/*
 * session_cmd.c — the SMTP commands of greyd's own phase: the command
 * table, the command-line input, and the commands that are not RCPT.
 *
 * Each command line is parsed by smtp.c and looked up in commands[]: its
 * flags say what must come first (HELO/EHLO for MAIL; MAIL for RCPT and
 * DATA, each with its own 503), and it has either an action or a fixed
 * reply; a fixed reply with CMD_ERROR counts as an error (too many
 * errors: 421 and close).  MAIL waits for SPF (spf.c through the check
 * slot) before it answers, when SPF applies; DATA, RSET and the RCPTs
 * that passed go to the backend (session_backend.c).
 */
#include <string.h>

#include "clock.h"
#include "greyd_limits.h"
#include "log.h"
#include "session_impl.h"
#include "spf.h"

/* commands[].flags */
#define CMD_NEED_HELO	0x01	/* refused before HELO/EHLO */
#define CMD_NEED_MAIL	0x02	/* refused outside a transaction */
#define CMD_ERROR	0x04	/* the fixed reply counts as an error */

struct session_cmd {
	enum smtp_verb verb;
	void (*action)(struct session *s, const struct smtp_command *cmd,
	    const char *line, size_t len);
	unsigned flags;
	/* the fixed reply (no action), or the refusal its flags give */
	const char *reply;
};

static void
session_ehlo(struct session *s, const struct smtp_command *cmd,
    const char *line, size_t len)
{
	const struct greyd_conf *c = s->conf;

	(void)line;
	(void)len;
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
		sio_reply(s, "250 %s", c->hostname);
		return;
	}
	sio_reply(s, "250-%s", c->hostname);
	sio_reply(s, "250-PIPELINING");
	if (c->message_size_limit > 0)
		sio_reply(s, "250-SIZE %lld", c->message_size_limit);
	else
		sio_reply(s, "250-SIZE");
	sio_reply(s, "250-8BITMIME");
	sio_reply(s, "250 ENHANCEDSTATUSCODES");
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

/* Refuse MAIL (spf_reply: RFC 7372 codes, 550 or 451). */
static void
session_spf_refuse(struct session *s, const struct spf_answer *a,
    enum conf_action act)
{
	char reply[SMTP_LINE_MAX - 1];	/* a reply line: 510 + NUL */

	session_count_reject(s, REJECT_SPF);
	spf_reply(reply, sizeof(reply), a, s->sender, act);
	sio_reply(s, "%s", reply);
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

/* The SPF check of MAIL FROM ended: log it, then answer MAIL. */
void
session_mail_checked(struct session *s)
{
	const struct spf_answer *a = s->check.answer;
	enum conf_action act = spf_action(s->conf, a->result);

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
		sio_reply(s, "250 2.1.0 Ok");
	}
}

static void
session_mail(struct session *s, const struct smtp_command *cmd,
    const char *line, size_t len)
{
	long long limit = s->conf->message_size_limit;

	(void)line;
	(void)len;
	if (s->mail_seen) {
		session_error(s, "503 5.5.1 Error: nested MAIL command");
		return;
	}
	if (limit > 0 && cmd->size > limit) {
		sio_reply(s, "552 5.3.4 Message size exceeds fixed limit");
		return;
	}
	if (s->messages >= (unsigned)limits_scaled(
	    s->conf->session_message_limit, s->mult)) {
		log_info("LIMIT [%s]:%u messages per session (%u)", s->addrstr,
		    s->port, s->messages);
		session_count_reject(s, REJECT_LIMIT);
		sio_reply(s, "421 4.7.0 Too many messages in this session");
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
		sio_reply(s, "250 2.1.0 Ok");
		return;
	}
	/* The answer to MAIL waits for SPF; input stays buffered. */
	session_suspend(s, SS_WAIT);
	check_spf(&s->check, s->d->spf, &s->addr, s->helo, s->sender);
}

static void
session_data(struct session *s, const struct smtp_command *cmd,
    const char *line, size_t len)
{
	(void)cmd;
	(void)line;
	(void)len;
	if (s->trapped) {
		sio_reply(s, "554 5.7.1 Service unavailable; client [%s] "
		    "blocked", s->addrstr);
		return;
	}
	if (s->txn_broken || (s->nrcpt > 0 && s->relay == NULL)) {
		sio_reply(s, "451 4.4.2 Backend connection lost, try again "
		    "later");
		return;
	}
	if (s->nrcpt == 0) {
		sio_reply(s, "554 5.5.1 Error: no valid recipients");
		return;
	}
	snprintf(s->pending, sizeof(s->pending), "DATA");
	s->await = AW_DATA;
	session_backend_next(s);
}

static void
session_rset(struct session *s, const struct smtp_command *cmd,
    const char *line, size_t len)
{
	(void)cmd;
	(void)line;
	(void)len;
	if (s->relay != NULL && s->backend_mail) {
		snprintf(s->pending, sizeof(s->pending), "RSET");
		s->await = AW_RSET;
		session_backend_next(s);
		return;
	}
	session_reset_txn(s);
	sio_reply(s, "250 2.0.0 Ok");
}

static void
session_quit(struct session *s, const struct smtp_command *cmd,
    const char *line, size_t len)
{
	(void)cmd;
	(void)line;
	(void)len;
	sio_reply(s, "221 2.0.0 Bye");
	session_close(s);
}

/* GET, POST, CONNECT, USER ...: no SMTP client sends these, the session
 * ends either way. */
static void
session_nonsmtp(struct session *s, const struct smtp_command *cmd,
    const char *line, size_t len)
{
	(void)cmd;
	/* line is not NUL-terminated: print at most its len octets (the
	 * parser has refused control octets in them). */
	log_info("PROTOCOL [%s]:%u non-SMTP command \"%.*s\" action=%s",
	    s->addrstr, s->port, (int)(len < 20 ? len : 20), line,
	    conf_action_name(s->conf->protocol_error_action));
	if (session_caught(s, REJECT_PROTOCOL, TRAP_PROTOCOL,
	    s->conf->protocol_error_action, false))
		return;
	session_count_reject(s, REJECT_PROTOCOL);
	sio_reply(s, "521 5.5.1 Protocol error");
	session_close(s);
}

static const struct session_cmd commands[] = {
	{ SMTP_HELO, session_ehlo, 0, NULL },
	{ SMTP_EHLO, session_ehlo, 0, NULL },
	{ SMTP_MAIL, session_mail, CMD_NEED_HELO,
	  "503 5.5.1 Error: send HELO/EHLO first" },
	{ SMTP_RCPT, session_rcpt, CMD_NEED_MAIL,
	  "503 5.5.1 Error: need MAIL command" },
	{ SMTP_DATA, session_data, CMD_NEED_MAIL,
	  "503 5.5.1 Error: need RCPT command" },
	{ SMTP_RSET, session_rset, 0, NULL },
	{ SMTP_NOOP, NULL, 0, "250 2.0.0 Ok" },
	{ SMTP_VRFY, NULL, 0, "252 2.0.0 Cannot VRFY user, but will accept "
	  "message and attempt delivery" },
	{ SMTP_HELP, NULL, 0, "214 2.0.0 Commands: HELO EHLO MAIL RCPT DATA "
	  "RSET NOOP QUIT VRFY HELP" },
	{ SMTP_QUIT, session_quit, 0, NULL },
	{ SMTP_NONSMTP, session_nonsmtp, 0, NULL },
	{ SMTP_EXPN, NULL, CMD_ERROR,
	  "502 5.5.1 Error: command not implemented" },
	{ SMTP_STARTTLS, NULL, CMD_ERROR,
	  "502 5.5.1 Error: command not implemented" },
	{ SMTP_AUTH, NULL, CMD_ERROR,
	  "502 5.5.1 Error: command not implemented" },
	{ SMTP_BDAT, NULL, CMD_ERROR,
	  "502 5.5.1 Error: command not implemented" },
	{ SMTP_UNKNOWN, NULL, CMD_ERROR,
	  "500 5.5.2 Error: command not recognized" },
};

static const struct session_cmd *
session_find_cmd(enum smtp_verb verb)
{
	size_t i;

	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (commands[i].verb == verb)
			return &commands[i];
	return &commands[sizeof(commands) / sizeof(commands[0]) - 1];
}

static void
session_command(struct session *s, const char *line, size_t len)
{
	const struct session_cmd *c;
	struct smtp_command cmd;
	const char *err;

	if (smtp_parse_command(line, len, &cmd, &err) != 0) {
		session_error(s, err);
		return;
	}
	c = session_find_cmd(cmd.verb);
	if (((c->flags & CMD_NEED_HELO) && !s->helo_seen) ||
	    ((c->flags & CMD_NEED_MAIL) && !s->mail_seen)) {
		session_error(s, c->reply);
		return;
	}
	if (c->action != NULL)
		c->action(s, &cmd, line, len);
	else if (c->flags & CMD_ERROR)
		session_error(s, c->reply);
	else
		sio_reply(s, "%s", c->reply);
}

/* Examine input as command lines; returns the octets consumed. */
size_t
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
