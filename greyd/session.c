/*
 * session.c — the SMTP session greyd conducts itself with a client that is
 * not trusted yet (see listener.c for the routing, session_impl.h for the
 * states and the other files of the session): its life cycle, the input
 * loop that feeds command lines and message text to their parsers, the
 * one pending check and its resume, closing, and the hand-off to the
 * tarpit.
 *
 * The input loop (session_process) runs only in COMMAND and DATA; in any
 * other state input stays buffered, in order, until the session resumes
 * (session_resume asks the stream to call the loop again from the event
 * loop, so no part of the session ever calls it from inside itself).
 *
 * The parts of the session call one way: this file calls the commands,
 * the message text, the greeting and the check replies; those call the
 * backend part and session_state.c; all of them the stream
 * (session_io.c), which calls back only through the callbacks given to
 * sio_open.
 *
 * Reputation counters are kept in the session and written to the client
 * record once, when the session ends.  A session that is handed to the
 * tarpit (pregreet, protocol error, spamtrap or DNS list with action
 * tarpit) gives it its socket and the input not yet read, and ends.
 */
#include <stdlib.h>
#include <string.h>

#include "callout.h"
#include "clock.h"
#include "dnsbl.h"
#include "greyd_limits.h"
#include "log.h"
#include "relay.h"
#include "session_impl.h"
#include "spf.h"
#include "tarpit.h"
#include "trust.h"













/* The one way back from a check (checks.h): to the command that waited,
 * then to the input, unless that command is now with the backend or the
 * session closes. */
static void session_free(struct session *s);

static void
session_check_done(void *arg)
{
	struct session *s = arg;

	if (s->check.finished == CHECK_SPF)
		session_mail_checked(s);
	else
		session_rcpt_checked(s);
	if (s->state == SS_WAIT && !check_pending(&s->check))
		session_resume(s);
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

/* ---- input loop ---- */

static void
session_process(struct session *s)
{
	size_t len, n, used;
	const char *p;

	if (s->state == SS_GREET)
		return;		/* input waits for the end of greet_wait */
	if ((s->state == SS_COMMAND || s->state == SS_DATA) &&
	    !s->relay_blocked && !s->out_blocked && !sio_is_reading(s))
		sio_reading(s, true);
	while (s->state == SS_COMMAND || s->state == SS_DATA) {
		if (s->relay_blocked)
			break;
		if (sio_out_len(s) >= SESSION_OUT_HIGH) {
			s->out_blocked = true;
			break;
		}
		if ((len = sio_in_len(s)) == 0)
			break;
		n = len < SESSION_PULL_MAX ? len : SESSION_PULL_MAX;
		p = sio_in_peek(s, n);
		used = s->state == SS_COMMAND ? session_command_input(s, p, n) :
		    session_data_input(s, p, n);
		if (used == 0)
			break;
		sio_in_drain(s, used);
	}
	/* Input is held back (a check or the backend has the command, the
	 * client does not read our replies, the backend does not take
	 * message text).  With a full input buffer libevent 2.1 would call
	 * the read callback again at once, forever (100% CPU): stop reading
	 * until the session can take input again; the start of this
	 * function reads again. */
	if (s->state != SS_CLOSING && sio_in_len(s) >= SESSION_IN_HIGH)
		sio_reading(s, false);
}

static void
session_input(struct session *s)
{
	session_process(s);
}

static void
session_output_drained(struct session *s)
{
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
session_io_event(struct session *s, short what)
{
	if ((what & BEV_EVENT_TIMEOUT) && (what & BEV_EVENT_READING) &&
	    s->state != SS_CLOSING) {
		log_info("TIMEOUT [%s]:%u after %d s idle%s", s->addrstr,
		    s->port, s->conf->smtp_idle_timeout,
		    s->state == SS_DATA ? " in DATA" : "");
		sio_reply(s, "421 4.4.2 %s Error: timeout exceeded",
		    s->conf->hostname);
		session_close(s);
		return;
	}
	if (s->state == SS_GREET && session_greet_hangup(s))
		return;		/* caught as an early talker */
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
	sio_reply(s, "421 4.3.2 %s Service shutting down, closing "
	    "transmission channel", s->conf->hostname);
	session_close(s);
}

static void
session_free_op(void *arg)
{
	session_free(arg);
}

static const struct sio_callbacks session_io_callbacks = {
	.input = session_input,
	.drained = session_output_drained,
	.event = session_io_event,
};

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
	check_init(&s->check, session_check_done, s);
	memcpy(&s->peer, peer, peer->sa_family == AF_INET6 ?
	    sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in));
	memcpy(&s->local, local, local->sa_family == AF_INET6 ?
	    sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in));
	(void)netaddr_from_sockaddr(&s->addr, peer);
	netaddr_format(&s->addr, s->addrstr, sizeof(s->addrstr));
	s->port = ntohs(peer->sa_family == AF_INET6 ?
	    ((const struct sockaddr_in6 *)peer)->sin6_port :
	    ((const struct sockaddr_in *)peer)->sin_port);
	if (sio_open(s, fd, &session_io_callbacks) != 0) {
		limits_disconnect(d->limits, &s->addr);
		evutil_closesocket(fd);
		conf_release(s->conf);
		free(s);
		return NULL;
	}
	sio_timeouts(s, s->conf->smtp_idle_timeout, s->conf->smtp_idle_timeout);
	sio_reading(s, true);
	server_add(d->srv, &s->conn, &session_ops, s);
	/* Every list asked now; the answers are needed at the first RCPT. */
	if (d->dnsbl != NULL && !s->trapped)
		s->bl_client = dnsbl_client(d->dnsbl, &s->addr, clock_ms());
	session_greet(s);
	return s;
}

static void
session_free(struct session *s)
{
	session_flush_counters(s);
	check_cancel(&s->check);
	session_reset_txn(s);
	dnsbl_release(s->bl_client);
	dnsbl_release(s->bl_sender);
	if (s->greet_ev != NULL)
		event_free(s->greet_ev);
	limits_disconnect(s->d->limits, &s->addr);
	if (s->relay != NULL)
		relay_free(s->relay, false);
	sio_free(s);
	server_remove(s->d->srv, &s->conn);
	conf_release(s->conf);
	free(s);
}
