/*
 * session.h — one SMTP session that greyd conducts itself (the client is not
 * trusted yet): greeting, commands, the greylist decision at each RCPT, and
 * once a recipient passes, relaying to the backend (see session.c).
 */
#ifndef GREYD_SESSION_H
#define GREYD_SESSION_H

#include <sys/socket.h>

#include <event2/util.h>

struct callout;
struct dnsbl;
struct limits;
struct server;
struct session;
struct spf;
struct trust;

/* What sessions use, made once by main.c and shared by every session. */
struct session_deps {
	struct server *srv;		/* the registry (kind "session") */
	struct trust *trust;		/* the trust layer (writes and reads) */
	struct limits *limits;		/* limits_disconnect at the end */
	struct dnsbl *dnsbl;		/* NULL: no DNS lists */
	struct spf *spf;		/* NULL: no SPF */
	struct callout *callout;	/* recipient_verify = backend */
};

/* Flags for session_new. */
#define SESSION_TRAPPED	0x01	/* the client is trapped: reject every RCPT */

/*
 * Take over the accepted socket fd, counted by limits_connect (the session
 * calls limits_disconnect when it ends), and register it with d->srv: at
 * the drain timeout a session answers 421 and closes.  The session holds
 * the configuration current now for its whole life.  Returns NULL (fd
 * closed, limits released) on failure.
 */
struct session *session_new(const struct session_deps *d, evutil_socket_t fd,
    const struct sockaddr *peer, const struct sockaddr *local, int flags);

#endif
