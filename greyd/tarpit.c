/*
 * tarpit.c — stuttered replies for bad clients (see tarpit.h), as OpenBSD
 * spamd does it.
 *
 * One struct tarpit per connection, registered with the server (kind
 * "tarpit"), with one embedded
 * struct event that alternates between two jobs:
 *
 *   STUTTER  a timer on the base's common timeout of tarpit_stutter (so
 *            thousands of them cost O(1) each to re-arm): every tick sends
 *            the next byte of the current reply.  Nothing is read meanwhile;
 *            whatever the client sends waits in the kernel.
 *   LISTEN   EV_READ on the socket, timing out when tarpit_time is over.
 *            Input goes to a stack buffer and is thrown away; only the
 *            first bytes of the current line are kept, to see QUIT.
 *
 * Its event runs at the lowest priority, at most EV_TARPIT_BATCH per loop
 * turn (server.h), so that thousands of ticks falling due together delay
 * a normal client's accept or reply by one batch, not by all of them.
 *
 * The first byte of a reply goes out one tick after it is due, every byte
 * with send(MSG_DONTWAIT); a full socket buffer (EAGAIN) retries the same
 * byte at the next tick.
 *
 * Life of a connection: with banner, "220 <smtp_banner>" then LISTEN;
 * without, the reply (the caller has just read the command it answers:
 * a protocol error, a RCPT to a spamtrap) then LISTEN.  A read that
 * completes one or more lines answers them with ONE reply (pipelined
 * commands earn one stuttered reply per read, as in spamd, so a client
 * cannot queue up work for us), or with "221 2.0.0 Bye" and a close when
 * one of the lines was QUIT.  The connection ends on QUIT,
 * at tarpit_time after its start (checked on every tick and by the LISTEN
 * timeout), when the client hangs up (EOF, or a send or recv error), or at
 * shutdown (the server drains: reason=shutdown).  Each end logs one
 * TARPIT-END line.
 *
 * Replies longer than TARPIT_REPLY_MAX - 2 octets are cut, and a reply is
 * cut at its first CR or LF so that one reply stays one line.  A change of
 * tarpit_stutter or tarpit_time on SIGHUP applies to new connections.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/event_struct.h>

#include "clock.h"
#include "log.h"
#include "server.h"
#include "tarpit.h"

#define TARPIT_READ_MAX		512	/* octets read (and dropped) at a time */
#define TARPIT_DISCARD_READS	8	/* reads at most before close */
#define TARPIT_LINE_KEEP	5	/* enough for "QUIT" and what follows */
/* libevent's clock may run a little behind ours: a tick that ends on the
 * deadline counts as reaching it. */
#define TARPIT_CLOCK_SLACK_MS	10

static const char tarpit_bye[] = "221 2.0.0 Bye\r\n";

struct tarpit {
	struct conn conn;		/* in the server's registry */
	struct server *srv;
	struct event ev;		/* STUTTER timer or LISTEN read */
	const struct timeval *tick;	/* common timeout: tarpit_stutter */
	int64_t start_ms, end_ms;	/* monotonic; end = start + tarpit_time */
	evutil_socket_t fd;
	unsigned port;
	unsigned sent;			/* octets sent */
	const char *out;		/* reply being stuttered */
	unsigned short outlen, outpos;
	unsigned short reply_len;
	unsigned short linelen;		/* octets of the current input line */
	bool quitting;			/* a QUIT was read: the 221 ends it */
	bool owed;			/* earlier input waits for a reply */
	char line[TARPIT_LINE_KEEP];	/* its first octets */
	char addr[NETADDR_STRLEN];
	char reply[TARPIT_REPLY_MAX];	/* answer to every command, CRLF */
	char banner[TARPIT_REPLY_MAX];	/* "220 <smtp_banner>" CRLF */
};

static void tarpit_tick_cb(evutil_socket_t fd, short what, void *arg);
static void tarpit_read_cb(evutil_socket_t fd, short what, void *arg);
static void tarpit_shutdown(void *arg);
static void tarpit_answer(struct tarpit *t);

static const struct conn_ops tarpit_ops = {
	.name = "tarpit",
	.counted = false,		/* max_tarpit_sessions bounds them */
	.close_at_drain = true,		/* a tarpitted client is owed nothing */
	.shutdown = tarpit_shutdown,
	.free = tarpit_shutdown,
};

/* prefix + text (up to its first CR or LF, cut to fit) + CRLF into buf. */
static size_t
tarpit_line(char *buf, const char *prefix, const char *text)
{
	size_t n = strlcpy(buf, prefix, TARPIT_REPLY_MAX - 2);
	size_t len = strcspn(text, "\r\n");

	if (n > TARPIT_REPLY_MAX - 3)
		n = TARPIT_REPLY_MAX - 3;
	if (len > TARPIT_REPLY_MAX - 3 - n)
		len = TARPIT_REPLY_MAX - 3 - n;
	memcpy(buf + n, text, len);
	memcpy(buf + n + len, "\r\n", 3);
	return n + len + 2;
}

/* Read what the client sent and we never looked at (a bounded amount), so
 * that close() sends a FIN, not a reset that could cost the client the end
 * of our last reply. */
static void
tarpit_discard_input(evutil_socket_t fd)
{
	char buf[TARPIT_READ_MAX];
	int i;

	for (i = 0; i < TARPIT_DISCARD_READS; i++)
		if (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) <= 0)
			break;
}

static void
tarpit_free(struct tarpit *t)
{
	struct server *srv = t->srv;

	event_del(&t->ev);
	tarpit_discard_input(t->fd);
	close(t->fd);
	server_remove(srv, &t->conn);
	free(t);
}

static void
tarpit_end(struct tarpit *t, const char *reason)
{
	log_info("TARPIT-END [%s]:%u after=%llds sent=%u bytes reason=%s",
	    t->addr, t->port,
	    (long long)((clock_ms() - t->start_ms + 500) / 1000), t->sent,
	    reason);
	tarpit_free(t);
}

/* The server drains or goes away. */
static void
tarpit_shutdown(void *arg)
{
	tarpit_end(arg, "shutdown");
}

/* After every other event of the loop turn (see server.h); a base made
 * without priorities (the unit tests') has one and ignores this. */
static void
tarpit_lowest_priority(struct tarpit *t)
{
	if (event_base_get_npriorities(server_base(t->srv)) > EV_PRIO_TARPIT)
		(void)event_priority_set(&t->ev, EV_PRIO_TARPIT);
}

static void
tarpit_stutter(struct tarpit *t)
{
	evtimer_assign(&t->ev, server_base(t->srv), tarpit_tick_cb, t);
	tarpit_lowest_priority(t);
	if (evtimer_add(&t->ev, t->tick) != 0)
		tarpit_end(t, "error");
}

static void
tarpit_listen(struct tarpit *t)
{
	int64_t left = t->end_ms - clock_ms();
	struct timeval tv;

	if (left < 0)
		left = 0;
	tv.tv_sec = left / 1000;
	tv.tv_usec = (left % 1000) * 1000;
	event_assign(&t->ev, server_base(t->srv), t->fd, EV_READ, tarpit_read_cb, t);
	tarpit_lowest_priority(t);
	if (event_add(&t->ev, &tv) != 0)
		tarpit_end(t, "error");
}

static void
tarpit_say(struct tarpit *t, const char *text, size_t len)
{
	t->out = text;
	t->outlen = (unsigned short)len;
	t->outpos = 0;
	tarpit_stutter(t);
}

/* One byte of the current reply; false if the connection ended. */
static bool
tarpit_send_byte(struct tarpit *t)
{
	ssize_t n = send(t->fd, t->out + t->outpos, 1,
	    MSG_NOSIGNAL | MSG_DONTWAIT);

	if (n == 1) {
		t->outpos++;
		t->sent++;
		return true;
	}
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK ||
	    errno == EINTR))
		return true;
	tarpit_end(t, "hangup");
	return false;
}

static void
tarpit_tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tarpit *t = arg;

	if (clock_ms() + TARPIT_CLOCK_SLACK_MS >= t->end_ms) {
		tarpit_end(t, "timeout");
		return;
	}
	if (!tarpit_send_byte(t))
		return;
	if (t->outpos < t->outlen)
		tarpit_stutter(t);
	else if (t->quitting && t->out == tarpit_bye)
		tarpit_end(t, "quit");
	else if (t->owed)
		tarpit_answer(t);
	else
		tarpit_listen(t);
}

/* Is the line kept so far (complete) a QUIT command? */
static bool
tarpit_is_quit(const struct tarpit *t)
{
	return t->linelen >= 4 && strncasecmp(t->line, "QUIT", 4) == 0 &&
	    (t->linelen == 4 || t->line[4] == '\r' || t->line[4] == ' ');
}

/* Scan input; returns the number of lines it completed. */
static unsigned
tarpit_scan(struct tarpit *t, const char *buf, size_t len)
{
	unsigned lines = 0;
	size_t i;

	for (i = 0; i < len; i++) {
		if (buf[i] == '\n') {
			lines++;
			if (tarpit_is_quit(t))
				t->quitting = true;
			t->linelen = 0;
		} else if (t->linelen < sizeof(t->line)) {
			t->line[t->linelen++] = buf[i];
		}
	}
	return lines;
}

/* Answer the lines read: the 221 if one of them was QUIT. */
static void
tarpit_answer(struct tarpit *t)
{
	t->owed = false;
	if (t->quitting)
		tarpit_say(t, tarpit_bye, sizeof(tarpit_bye) - 1);
	else
		tarpit_say(t, t->reply, t->reply_len);
}

static void
tarpit_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tarpit *t = arg;
	char buf[TARPIT_READ_MAX];
	ssize_t n;

	if (what & EV_TIMEOUT) {
		tarpit_end(t, "timeout");
		return;
	}
	n = recv(t->fd, buf, sizeof(buf), MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK ||
	    errno == EINTR)) {
		tarpit_listen(t);
		return;
	}
	if (n <= 0) {
		tarpit_end(t, "hangup");
		return;
	}
	if (tarpit_scan(t, buf, (size_t)n) == 0)
		tarpit_listen(t);
	else
		tarpit_answer(t);
}

unsigned
tarpit_held(const struct server *srv)
{
	return server_count(srv, &tarpit_ops);
}

bool
tarpit_room(const struct server *srv, const struct greyd_conf *c)
{
	return tarpit_held(srv) < (unsigned)c->max_tarpit_sessions;
}

int
tarpit_start(struct server *srv, const struct greyd_conf *c,
    evutil_socket_t fd, const char *addrstr, unsigned port, bool banner,
    const char *reply, const char *why, const char *input, size_t inlen)
{
	struct timeval stutter = { c->tarpit_stutter, 0 };
	struct tarpit *t;

	if (!tarpit_room(srv, c) || (t = calloc(1, sizeof(*t))) == NULL)
		return -1;
	if ((t->tick = event_base_init_common_timeout(server_base(srv),
	    &stutter)) == NULL) {
		free(t);
		return -1;
	}
	t->srv = srv;
	t->fd = fd;
	t->port = port;
	t->start_ms = clock_ms();
	t->end_ms = t->start_ms + (int64_t)c->tarpit_time * 1000;
	strlcpy(t->addr, addrstr, sizeof(t->addr));
	t->reply_len = (unsigned short)tarpit_line(t->reply, "", reply);
	t->owed = tarpit_scan(t, input, inlen < TARPIT_INPUT_MAX ? inlen :
	    TARPIT_INPUT_MAX) > 0;
	server_add(srv, &t->conn, &tarpit_ops, t);
	log_info("TARPIT [%s]:%u why=%s reply=\"%.*s\"", t->addr, port, why,
	    (int)(t->reply_len - 2 < 40 ? t->reply_len - 2 : 40), t->reply);
	if (banner)
		tarpit_say(t, t->banner, tarpit_line(t->banner, "220 ",
		    c->smtp_banner));
	else
		tarpit_say(t, t->reply, t->reply_len);
	return 0;
}
