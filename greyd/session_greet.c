/*
 * session_greet.c — the before-220 test (greet_wait > 0, for a client
 * that has not passed it within greet_pass_expiry): "220-" at once, the
 * rest of the banner after greet_wait.  A client that talks meanwhile is
 * an early talker (pregreet_action); one that hangs up does not pass; one
 * that keeps quiet passes, and its client record remembers it
 * (session.c's counters, greet_pass_until).  Input that arrives during
 * the wait is read and held, never parsed, until the verdict.
 */
#include "clock.h"
#include "log.h"
#include "session_impl.h"
#include "trust.h"

#define PREGREET_SHOWN	20	/* octets of early talk in the log */

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

/* The client talked before the banner ended: an early talker.  Returns
 * false when pregreet_action is ignore. */
static bool
session_pregreet(struct session *s)
{
	size_t n = sio_in_len(s) < PREGREET_SHOWN ? sio_in_len(s) :
	    PREGREET_SHOWN, i;
	const char *p = sio_in_peek(s, n);
	char text[PREGREET_SHOWN + 1];

	for (i = 0; i < n; i++)
		text[i] = (unsigned char)p[i] < ' ' ||
		    (unsigned char)p[i] > '~' ? '.' : p[i];
	text[n] = '\0';
	log_info("PREGREET [%s]:%u in %d s of greet_wait \"%s\" action=%s",
	    s->addrstr, s->port, s->conf->greet_wait, text,
	    conf_action_name(s->conf->pregreet_action));
	return session_caught(s, REJECT_PREGREET, TRAP_PREGREET,
	    s->conf->pregreet_action, true);
}

/* greet_wait is over: early talk, or the rest of the banner. */
static void
session_greet_cb(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;

	(void)fd;
	(void)what;
	event_free(s->greet_ev);
	s->greet_ev = NULL;
	if (sio_in_len(s) > 0 && session_pregreet(s))
		return;
	if (sio_in_len(s) == 0)
		log_info("PASS-GREET [%s]:%u after %d s", s->addrstr, s->port,
		    s->conf->greet_wait);
	s->state = SS_COMMAND;
	sio_reply(s, "220 %s", s->conf->smtp_banner);
	sio_timeouts(s, s->conf->smtp_idle_timeout, s->conf->smtp_idle_timeout);
	sio_kick(s);		/* what the client sent meanwhile */
}

void
session_greet(struct session *s)
{
	struct timeval tv = { s->conf->greet_wait, 0 };

	if (!session_greet_due(s)) {
		sio_reply(s, "220 %s", s->conf->smtp_banner);
		return;
	}
	s->greet_ev = evtimer_new(server_base(s->d->srv), session_greet_cb, s);
	if (s->greet_ev == NULL || evtimer_add(s->greet_ev, &tv) != 0) {
		sio_reply(s, "220 %s", s->conf->smtp_banner);
		return;
	}
	s->state = SS_GREET;
	s->greet_tested = true;
	sio_timeouts(s, 0, s->conf->smtp_idle_timeout);	/* greet_wait rules */
	sio_reply(s, "220-%s", s->conf->smtp_banner);
}

bool
session_greet_hangup(struct session *s)
{
	/* talked, then went: an early talker all the same */
	if (sio_in_len(s) > 0 && session_pregreet(s))
		return true;
	log_info("HANGUP [%s]:%u before the end of the banner", s->addrstr,
	    s->port);
	s->greet_failed = true;		/* not a pass */
	return false;
}
