/*
 * session_state.c — what the parts of a session do to it alike: close it
 * (after its last reply), count an error (too many: 421), reset the
 * transaction, drop the backend connection, count a rejection, trap the
 * client, hand it to the tarpit, act on a caught test (pregreet,
 * protocol), hold input while a check or the backend answers and take it
 * up again.  It calls only the session's stream (session_io.c) and the
 * modules below the session: every part of the session may call it, it
 * calls none of them.
 */
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "relay.h"
#include "session_impl.h"
#include "tarpit.h"
#include "trust.h"

/* The last reply is written; free the session once it is flushed. */
void
session_close(struct session *s)
{
	s->state = SS_CLOSING;
	check_cancel(&s->check);
	if (s->greet_ev != NULL) {
		event_free(s->greet_ev);
		s->greet_ev = NULL;
	}
	sio_flush_then_close(s, SESSION_CLOSE_TIMEOUT);
	if (s->relay != NULL) {
		relay_free(s->relay, true);
		s->relay = NULL;
	}
}

void
session_error(struct session *s, const char *reply)
{
	sio_reply(s, "%s", reply);
	if (++s->errors < s->conf->smtp_error_limit)
		return;
	log_info("REJECT [%s]:%u too many errors (%d)", s->addrstr, s->port,
	    s->errors);
	sio_reply(s, "421 4.7.0 %s Error: too many errors",
	    s->conf->hostname);
	session_close(s);
}

void
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
void
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

void
session_count_reject(struct session *s, enum reject_reason why)
{
	s->count.rejected++;
	s->count.rejected_by[why]++;
}


/* Trap the client's address for trap_expiry; nothing of this session
 * reaches the backend any more. */
void
session_trap_client(struct session *s, enum trap_reason why)
{
	(void)trust_trap(s->d->trust, s->conf, s->addrstr, why, clock_now());
	s->count.trapped++;
	s->trapped = true;
	s->white = false;
	session_drop_relay(s, true);
	s->txn_broken = false;
}


/*
 * Hand the connection to the tarpit (its socket, and the input the
 * session had not read yet) and let this session end: its stream, now
 * without a socket, reports its (empty) output drained from the event
 * loop, and session.c frees it then (the caller may be deep in the input
 * loop).  false: no room in the tarpit, nothing changed.
 */
bool
session_tarpit(struct session *s, const char *reply, const char *why,
    bool banner)
{
	size_t n = sio_in_len(s);
	evutil_socket_t fd;

	if (!tarpit_room(s->d->srv, s->conf))
		return false;
	if (n > TARPIT_INPUT_MAX)
		n = TARPIT_INPUT_MAX;
	fd = sio_take_fd(s);
	if (tarpit_start(s->d->srv, s->conf, fd, s->addrstr, s->port, banner,
	    reply, why, sio_in_peek(s, n), n) != 0)
		evutil_closesocket(fd);		/* no memory: the client goes */
	session_close(s);
	sio_kick_output(s);
	return true;
}

/*
 * A before-220 or protocol test caught the client: act per action.
 * Returns false for ACTION_IGNORE (the caller goes on as usual).
 */
bool
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
	sio_reply(s, "521 5.5.1 Protocol error");
	session_close(s);
	return true;
}

void
session_suspend(struct session *s, enum session_state why)
{
	s->state = why;
	sio_timeouts(s, 0, s->conf->smtp_idle_timeout);
}

void
session_resume(struct session *s)
{
	if (s->state == SS_WAIT || s->state == SS_BACKEND)
		s->state = SS_COMMAND;
	sio_timeouts(s, s->conf->smtp_idle_timeout, s->conf->smtp_idle_timeout);
	/* the input loop takes up what waited, from the event loop */
	sio_kick(s);
}
