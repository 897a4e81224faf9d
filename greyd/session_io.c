/*
 * session_io.c — the client's byte stream of a session: the only code
 * that touches the client's bufferevent.  Replies are appended here,
 * input is looked at and consumed here, reading and the timeouts are
 * switched here, and here the socket is handed away (to the tarpit).  A
 * TLS filter under the session (STARTTLS) replaces the stream in this one
 * file; the commands never see the difference.
 *
 * The bufferevent's events go to the callbacks given to sio_open: new
 * input, the output fell below its low mark, EOF/error/timeout.  The
 * session never calls its own input loop from inside itself: sio_kick
 * asks for the input callback from the event loop (a deferred callback of
 * the bufferevent).  The input buffer has a high
 * watermark of SESSION_IN_HIGH: libevent stops reading beyond it, so a
 * client that sends faster than it is answered costs bounded memory.
 */
#include <stdarg.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "session_impl.h"

static void
sio_read_cb(struct bufferevent *bev, void *arg)
{
	struct session *s = arg;

	(void)bev;
	s->io.cb->input(s);
}

static void
sio_write_cb(struct bufferevent *bev, void *arg)
{
	struct session *s = arg;

	(void)bev;
	s->io.cb->drained(s);
}

static void
sio_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct session *s = arg;

	(void)bev;
	s->io.cb->event(s, what);
}

int
sio_open(struct session *s, evutil_socket_t fd, const struct sio_callbacks *cb)
{
	s->io.cb = cb;
	s->io.bev = bufferevent_socket_new(server_base(s->d->srv), fd,
	    BEV_OPT_CLOSE_ON_FREE);
	if (s->io.bev == NULL)
		return -1;
	bufferevent_setcb(s->io.bev, sio_read_cb, sio_write_cb, sio_event_cb,
	    s);
	bufferevent_setwatermark(s->io.bev, EV_READ, 0, SESSION_IN_HIGH);
	return 0;
}

void
sio_free(struct session *s)
{
	if (s->io.bev != NULL)
		bufferevent_free(s->io.bev);
	s->io.bev = NULL;
}

void
sio_kick(struct session *s)
{
	bufferevent_trigger(s->io.bev, EV_READ,
	    BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
}

void
sio_kick_output(struct session *s)
{
	bufferevent_trigger(s->io.bev, EV_WRITE,
	    BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
}

void
sio_reply(struct session *s, const char *fmt, ...)
{
	struct evbuffer *out = bufferevent_get_output(s->io.bev);
	va_list ap;

	va_start(ap, fmt);
	evbuffer_add_vprintf(out, fmt, ap);
	va_end(ap);
	evbuffer_add(out, "\r\n", 2);
}

void
sio_write(struct session *s, const char *p, size_t n)
{
	evbuffer_add(bufferevent_get_output(s->io.bev), p, n);
}

size_t
sio_out_len(const struct session *s)
{
	return evbuffer_get_length(bufferevent_get_output(s->io.bev));
}

size_t
sio_in_len(const struct session *s)
{
	return evbuffer_get_length(bufferevent_get_input(s->io.bev));
}

const char *
sio_in_peek(struct session *s, size_t n)
{
	return (const char *)evbuffer_pullup(bufferevent_get_input(s->io.bev),
	    (ssize_t)n);
}

void
sio_in_drain(struct session *s, size_t n)
{
	evbuffer_drain(bufferevent_get_input(s->io.bev), n);
}

void
sio_reading(struct session *s, bool on)
{
	if (on)
		bufferevent_enable(s->io.bev, EV_READ);
	else
		bufferevent_disable(s->io.bev, EV_READ);
}

bool
sio_is_reading(const struct session *s)
{
	return (bufferevent_get_enabled(s->io.bev) & EV_READ) != 0;
}

void
sio_timeouts(struct session *s, int read_s, int write_s)
{
	struct timeval r = { read_s, 0 }, w = { write_s, 0 };

	bufferevent_set_timeouts(s->io.bev, read_s > 0 ? &r : NULL,
	    write_s > 0 ? &w : NULL);
}

void
sio_flush_then_close(struct session *s, int timeout)
{
	sio_reading(s, false);
	sio_timeouts(s, 0, timeout);
	/* the write callback comes when everything is out */
	bufferevent_setwatermark(s->io.bev, EV_WRITE, 0, 0);
}

evutil_socket_t
sio_take_fd(struct session *s)
{
	struct evbuffer *out = bufferevent_get_output(s->io.bev);
	evutil_socket_t fd = bufferevent_getfd(s->io.bev);

	bufferevent_disable(s->io.bev, EV_READ | EV_WRITE);
	evbuffer_drain(out, evbuffer_get_length(out));
	/* the stream forgets the descriptor: freeing it closes nothing */
	(void)bufferevent_setfd(s->io.bev, -1);
	return fd;
}
