/*
 * session_data.c — message text, between the backend's 354 and CRLF.CRLF.
 *
 * Each line is checked (CRLF only, no NUL, at most 1000 octets) and
 * streamed to the backend without buffering the message (back-pressure:
 * reading stops while more than SESSION_RELAY_HIGH octets wait for the
 * backend).  A bad line poisons the message: the backend connection is
 * dropped at once (so the partial message can never be delivered), the
 * rest is read and discarded up to CRLF.CRLF, and the client gets one
 * rejection.  Only CRLF.CRLF ends DATA: a "." line ends it only when the
 * octets before it are CRLF (or the DATA command's own CRLF), so after a
 * line that ended in a bare LF ("\n.\r\n") the "." is message text and
 * what follows it can never be read as a smuggled command.
 */
#include <string.h>

#include "log.h"
#include "relay.h"
#include "session_impl.h"

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
		sio_reply(s, "%s", s->data_error != NULL ? s->data_error :
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
	sio_kick(s);
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
size_t
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
