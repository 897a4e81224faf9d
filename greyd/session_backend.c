/*
 * session_backend.c — the session's side of the relay to the backend
 * (relay.c is the backend client): once the first recipient passes, the
 * connection is opened (identity header, replayed HELO/EHLO), MAIL is
 * replayed, and from then on each command of the transaction goes to the
 * backend one at a time and the backend's own reply goes to the client
 * unchanged.  The client gets 250 after DATA only when the backend said
 * 250.  A backend that fails answers the command it had with 451 4.4.2
 * (or its own 4xx/5xx), and the transaction is marked broken so that no
 * half of it is ever delivered.
 */
#include <string.h>

#include "clock.h"
#include "log.h"
#include "relay.h"
#include "session_impl.h"
#include "trust.h"

static void session_backend_reply(void *arg, int code, const char *reply,
    size_t len);

/* The backend said 354: message text from now on. */
static void
session_data_begin(struct session *s)
{
	s->state = SS_DATA;
	s->await = AW_STREAM;
	s->data_bytes = 0;
	s->data_error = NULL;
	s->data_crlf = true;	/* DATA's own CRLF */
	s->data_last_cr = false;
	sio_timeouts(s, s->conf->smtp_idle_timeout, s->conf->smtp_idle_timeout);
	sio_kick(s);
}

/* Make progress towards sending s->pending (open, MAIL, then the command). */
void
session_backend_next(struct session *s)
{
	char line[SMTP_PATH_MAX + SMTP_PARAMS_MAX + 16];

	session_suspend(s, SS_BACKEND);
	if (s->relay == NULL) {
		s->relay = relay_open(server_base(s->d->srv), s->conf,
		    (struct sockaddr *)&s->peer,
		    (struct sockaddr *)&s->local, s->helo, s->esmtp,
		    session_backend_reply, s);
		if (s->relay == NULL) {
			s->await = AW_NONE;
			sio_reply(s, "451 4.4.2 Backend unavailable, try "
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
		 * with it (no read event may come for it). */
		s->data_error = "451 4.4.2 Backend connection lost, try again later";
		sio_kick(s);
		return;
	}
	if (code >= 400 && reply != NULL)
		sio_write(s, reply, len);
	else
		sio_reply(s, "451 4.4.2 Backend unavailable, try again later");
	if (aw == AW_DOT || aw == AW_DATA)
		session_reset_txn(s);
	session_resume(s);
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

	if (s->state == SS_WAIT) {
		/* The relay is idle while a check is out: this can only be
		 * its failure; the session goes on waiting. */
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
		sio_write(s, reply, len);
		break;
	case AW_RCPT:
		if (code / 100 == 2)
			s->nrcpt++;
		else {
			session_log_reply(s, "NOQUEUE", reply, len);
			session_count_reject(s, REJECT_BACKEND);
		}
		sio_write(s, reply, len);
		break;
	case AW_DATA:
		sio_write(s, reply, len);
		if (code == 354) {
			session_received_spf(s);
			session_data_begin(s);
			return;
		}
		break;
	case AW_DOT:
		sio_write(s, reply, len);
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
		sio_reply(s, "250 2.0.0 Ok");
		break;
	default:
		/* A reply nobody waited for: relay.c reports those as -1. */
		break;
	}
	session_resume(s);
}

/* RFC 7208 §9.1: the Received-SPF header goes first in the message. */
void
session_received_spf(struct session *s)
{
	if (s->spf_received == NULL || s->relay == NULL)
		return;
	relay_data(s->relay, s->spf_received, strlen(s->spf_received));
	relay_data(s->relay, "\r\n", 2);
}
