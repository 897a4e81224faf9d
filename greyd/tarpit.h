/*
 * tarpit.h — stuttered replies for bad clients, in the style of OpenBSD
 * spamd: every reply goes out one byte per tarpit_stutter, the session lasts
 * at most tarpit_time, and max_tarpit_sessions caps how many are held.
 *
 * A tarpitted connection costs a small, fixed amount of memory: one struct
 * (its reply text in a fixed buffer) and one libevent event; no bufferevent,
 * no backend connection, no database write per byte.  Input is read into a
 * small stack buffer and thrown away; only the start of the current line is
 * kept, to see QUIT.
 */
#ifndef GREYD_TARPIT_H
#define GREYD_TARPIT_H

#include <stdbool.h>

#include <event2/util.h>

#include "conf.h"
#include "netaddr.h"
#include "server.h"

#define TARPIT_REPLY_MAX	160	/* octets of a reply line, CRLF included */
#define TARPIT_INPUT_MAX	4096	/* octets of earlier input handed over */

struct tarpit;

/* Tarpitted connections held now. */
unsigned tarpit_held(const struct server *srv);
/* Is there room for one more (fewer than max_tarpit_sessions held)? */
bool tarpit_room(const struct server *srv, const struct greyd_conf *c);
/*
 * Take over fd (non-blocking, connected) and register it with srv (kind
 * "tarpit", closed as soon as the server drains); c gives tarpit_stutter,
 * tarpit_time and smtp_banner, read here once.  With banner, first stutter
 * "220 <smtp_banner>" (a client tarpitted at connect, or an early talker
 * whose input is still unread); without, first stutter reply, which
 * answers the command the caller has just read (protocol error, spamtrap
 * RCPT).  Then answer command lines with reply (a full reply line without
 * CRLF, e.g. "550 5.7.1 ...", cut to TARPIT_REPLY_MAX), QUIT with
 * "221 2.0.0 Bye" and close.  why is logged ("trap", "pregreet", ...).
 * input (inlen octets, at most TARPIT_INPUT_MAX are looked at) is what the
 * client sent before and nobody answered yet: the lines it completes are
 * answered like input read later (one reply, after the first).
 * Returns 0, or -1 when there is no room or no memory: then fd is left to
 * the caller.
 */
int tarpit_start(struct server *srv, const struct greyd_conf *c,
    evutil_socket_t fd, const char *addrstr, unsigned port, bool banner,
    const char *reply, const char *why, const char *input, size_t inlen);

#endif
