/*
 * relay.h — the connection to the backend MTA.
 *
 * Two uses:
 *  - the SMTP path: when the first RCPT of a session passes, session.c opens
 *    a relay: connect to backend, send the PROXY v1/v2 header (or XCLIENT),
 *    replay HELO/EHLO; then session.c sends MAIL/RCPT/DATA/RSET one command
 *    at a time and gets each reply from the backend, which it passes to the
 *    client unchanged.  Message text is streamed with relay_data().
 *  - the fast path: relay_splice() connects, sends the identity header and
 *    copies bytes both ways until either side closes (STARTTLS and all).
 *
 * Every wait is bounded by backend_connect_timeout / backend_timeout.  A
 * backend that fails (refused, timeout, EOF, a malformed or unsolicited
 * reply) is reported once with code -1; the caller then frees the relay.
 */
#ifndef GREYD_RELAY_H
#define GREYD_RELAY_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include <event2/util.h>

#include "conf.h"

struct event_base;
struct limits;
struct relay;
struct server;

/* code: the reply's SMTP code, or -1 on failure.  reply: the whole reply,
 * CRLF-terminated lines (NULL on failure). */
typedef void (*relay_reply_fn)(void *arg, int code, const char *reply,
    size_t len);

/*
 * Open a relay for an SMTP session (or the callout) on base, to c's
 * backend (c is held while the relay lives).  fn is first called with the reply to
 * the replayed HELO/EHLO (250: ready), then with each command's reply.
 */
struct relay *relay_open(struct event_base *base, const struct greyd_conf *c,
    const struct sockaddr *client, const struct sockaddr *local,
    const char *helo, bool esmtp, relay_reply_fn fn, void *arg);
/* Send one command line (no CRLF in line); fn gets the reply. */
void relay_command(struct relay *r, const char *line);
/* Queue message text (already CRLF lines, dot-stuffed as received). */
void relay_data(struct relay *r, const char *p, size_t n);
/* Bytes queued towards the backend (for flow control). */
size_t relay_backlog(const struct relay *r);
/* Ask for fn(arg) once the backlog has drained below the low mark. */
void relay_on_drain(struct relay *r, void (*fn)(void *), void *arg);
/* Close: with quit, send QUIT and let the connection finish on its own. */
void relay_free(struct relay *r, bool quit);

/*
 * Fast path: take over the client socket fd, counted by limits_connect
 * (limits_disconnect is called when both sides are closed), and register
 * it with srv (kind "splice": closed at the drain timeout).  The backend's
 * banner reaches the client directly.  Returns NULL (fd closed) on
 * immediate failure.
 */
struct relay *relay_splice(struct server *srv, struct limits *limits,
    const struct greyd_conf *c, evutil_socket_t fd,
    const struct sockaddr *client, const struct sockaddr *local);

#endif
