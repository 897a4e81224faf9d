/*
 * evloop.h — for the unit tests that time things or drive a real libevent
 * loop (dns.c, dnsbl.c, spf.c, rcpt.c, trustdb.c): seconds elapsed since a
 * time, and running the loop until a condition holds or time is up.  A
 * 10 ms tick keeps each EVLOOP_ONCE turn from blocking, so the condition
 * and the clock are checked often.  Header-only (static inline functions:
 * each t/unit/NAME.c is its own program, and uses only some of them).
 */
#ifndef GREYD_TEST_EVLOOP_H
#define GREYD_TEST_EVLOOP_H

#include <stdbool.h>
#include <sys/time.h>

#include <event2/event.h>

static inline double
since(const struct timeval *t0)
{
	struct timeval t1;

	gettimeofday(&t1, NULL);
	return (double)(t1.tv_sec - t0->tv_sec) +
	    (double)(t1.tv_usec - t0->tv_usec) / 1e6;
}

static inline void
evloop_tick_cb(evutil_socket_t fd, short what, void *arg)
{
}

/* Run base until done(arg) (done NULL: never) or seconds pass. */
static inline void
evloop_run(struct event_base *base, bool (*done)(const void *),
    const void *arg, double seconds)
{
	struct timeval tv = { 0, 10000 }, t0;
	struct event *tick = event_new(base, -1, EV_PERSIST, evloop_tick_cb,
	    NULL);

	assert_non_null(tick);
	event_add(tick, &tv);
	gettimeofday(&t0, NULL);
	while ((done == NULL || !done(arg)) && since(&t0) < seconds)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(tick);
}

struct evloop_count {
	const int *n;
	int want;
};

static inline bool
evloop_count_reached(const void *arg)
{
	const struct evloop_count *c = arg;

	return *c->n >= c->want;
}

/* Run base until *n (a counter the callbacks raise) reaches want or
 * seconds pass. */
static inline void
evloop_run_count(struct event_base *base, const int *n, int want,
    double seconds)
{
	struct evloop_count c = { n, want };

	evloop_run(base, evloop_count_reached, &c, seconds);
}

#endif
