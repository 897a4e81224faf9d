/*
 * listener.h — listening sockets, accept, and the route each new
 * connection takes.
 *
 * listener_bind creates the sockets (as root, before privileges drop);
 * listener_start accepts on them.  At accept the client is counted by
 * limits.c (over a limit: 421 4.7.0 and close) and routed (listener.c):
 * the fast path (relay_splice), the tarpit, or greyd's own SMTP session
 * (session_new).  listener_stop stops accepting (SIGTERM); the server
 * registry drains what is live.
 */
#ifndef GREYD_LISTENER_H
#define GREYD_LISTENER_H

#include "conf.h"
#include "session.h"

struct listener;

struct listener *listener_new(void);
/* Create and bind every listening socket of c (before privileges drop). */
int listener_bind(struct listener *l, const struct greyd_conf *c, char *err,
    size_t errlen);
/* Accept on the bound sockets; new sessions get d (which must outlive l). */
int listener_start(struct listener *l, const struct session_deps *d);
/* Stop accepting (the sockets close). */
void listener_stop(struct listener *l);
void listener_free(struct listener *l);

#endif
