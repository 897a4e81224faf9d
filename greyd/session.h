/*
 * session.h — one SMTP session that greyd conducts itself (the client is not
 * trusted yet): greeting, commands, the greylist decision at each RCPT, and
 * once a recipient passes, relaying to the backend (see session.c).
 */
#ifndef GREYD_SESSION_H
#define GREYD_SESSION_H

#include <sys/socket.h>

#include <event2/util.h>

struct server;
struct session;

/* Flags for session_new. */
#define SESSION_TRAPPED	0x01	/* the client is trapped: reject every RCPT */

/*
 * Take over the accepted socket fd, counted by limits_connect (the session
 * calls limits_disconnect when it ends).  Returns NULL (fd closed, limits
 * released) on failure.
 */
struct session *session_new(struct server *srv, evutil_socket_t fd,
    const struct sockaddr *peer, const struct sockaddr *local, int flags);
/* Shutdown: answer 421 to every session and close them. */
void session_shutdown_all(struct server *srv);
/* Free every session at once (server teardown). */
void session_free_all(struct server *srv);

#endif
