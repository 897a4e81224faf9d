/*
 * t/unit/server.c — the connection registry (greyd/server.c) on a real
 * libevent loop, with two kinds of fake connection: "slow" ones that stay
 * until told to go (like sessions: counted, a last word at the drain
 * timeout, then gone one loop turn later) and "quick" ones (like tarpits:
 * not counted, freed as soon as draining starts).
 *
 * Covers: counts per kind and of the counted kinds; server_free ending
 * every live connection; a drain freeing the quick ones at once, leaving
 * the slow ones alone until the timeout, then calling their shutdown; the
 * loop ending as soon as the last connection goes while draining (not at
 * the timeout); server_every ticking.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <cmocka.h>
#include <event2/event.h>

#include "evloop.h"
#include "server.h"

struct fake {
	struct conn conn;
	struct server *srv;
	struct event *later;	/* the slow kind goes a turn after shutdown */
	int *shutdowns, *frees;
};

static void
fake_gone(struct fake *f)
{
	server_remove(f->srv, &f->conn);
	if (f->later != NULL)
		event_free(f->later);
	free(f);
}

static void
fake_free(void *arg)
{
	struct fake *f = arg;

	(*f->frees)++;
	fake_gone(f);
}

static void
fake_later_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	fake_gone(arg);
}

static void
fake_shutdown(void *arg)
{
	struct fake *f = arg;
	struct timeval now = { 0, 0 };

	(*f->shutdowns)++;
	f->later = evtimer_new(server_base(f->srv), fake_later_cb, f);
	assert_non_null(f->later);
	evtimer_add(f->later, &now);
}

static const struct conn_ops slow_ops = {
	.name = "slow", .counted = true, .close_at_drain = false,
	.shutdown = fake_shutdown, .free = fake_free,
};

static const struct conn_ops quick_ops = {
	.name = "quick", .counted = false, .close_at_drain = true,
	.shutdown = fake_free, .free = fake_free,
};

static int shutdowns, frees;

static struct fake *
fake_new(struct server *srv, const struct conn_ops *ops)
{
	struct fake *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->srv = srv;
	f->shutdowns = &shutdowns;
	f->frees = &frees;
	server_add(srv, &f->conn, ops, f);
	return f;
}

static int
setup(void **state)
{
	struct event_base *base = event_base_new();

	shutdowns = frees = 0;
	*state = base;
	return base == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	event_base_free(*state);
	return 0;
}

static void
test_counts(void **state)
{
	struct server *srv = server_new(*state);
	struct fake *a, *b;

	assert_non_null(srv);
	assert_int_equal(server_count(srv, NULL), 0);
	a = fake_new(srv, &slow_ops);
	b = fake_new(srv, &slow_ops);
	(void)fake_new(srv, &quick_ops);
	assert_int_equal(server_count(srv, &slow_ops), 2);
	assert_int_equal(server_count(srv, &quick_ops), 1);
	assert_int_equal(server_count(srv, NULL), 2);	/* counted kinds */
	fake_free(a);
	assert_int_equal(server_count(srv, &slow_ops), 1);
	assert_int_equal(server_count(srv, NULL), 1);
	(void)b;
	assert_false(server_draining(srv));
	server_free(srv);		/* frees b and the quick one */
	assert_int_equal(frees, 3);
	assert_int_equal(shutdowns, 0);
}

static void
test_drain(void **state)
{
	struct event_base *base = *state;
	struct server *srv = server_new(base);
	struct timeval t0;
	int i;

	assert_non_null(srv);
	for (i = 0; i < 3; i++)
		(void)fake_new(srv, &slow_ops);
	for (i = 0; i < 5; i++)
		(void)fake_new(srv, &quick_ops);
	server_drain(srv, 1);
	assert_true(server_draining(srv));
	/* the quick ones at once, the slow ones left to finish */
	assert_int_equal(frees, 5);
	assert_int_equal(server_count(srv, &quick_ops), 0);
	assert_int_equal(server_count(srv, &slow_ops), 3);
	gettimeofday(&t0, NULL);
	assert_int_equal(event_base_dispatch(base), 0);
	/* the timeout came: each slow one had its last word, then went, and
	 * the loop ended with the last of them, not 5 s later */
	assert_true(since(&t0) >= 0.9 && since(&t0) < 3.0);
	assert_int_equal(shutdowns, 3);
	assert_int_equal(server_count(srv, NULL), 0);
	server_drain(srv, 1);		/* a second SIGTERM changes nothing */
	server_free(srv);
	assert_int_equal(frees, 5);
}

/* Draining with nothing live ends the loop at once. */
static void
test_drain_empty(void **state)
{
	struct event_base *base = *state;
	struct server *srv = server_new(base);
	struct timeval t0;

	assert_non_null(srv);
	server_drain(srv, 30);
	gettimeofday(&t0, NULL);
	assert_int_equal(event_base_dispatch(base), 0);
	assert_true(since(&t0) < 1.0);
	server_free(srv);
}

/* The last connection to go while draining ends the loop then. */
static void
test_drain_last_leaves(void **state)
{
	struct event_base *base = *state;
	struct server *srv = server_new(base);
	struct fake *f;
	struct timeval t0;

	assert_non_null(srv);
	f = fake_new(srv, &slow_ops);
	server_drain(srv, 30);
	fake_shutdown(f);		/* it finishes on its own, next turn */
	gettimeofday(&t0, NULL);
	assert_int_equal(event_base_dispatch(base), 0);
	assert_true(since(&t0) < 1.0);
	assert_int_equal(server_count(srv, NULL), 0);
	server_free(srv);
}

static void
tick(void *arg)
{
	(*(int *)arg)++;
}

static void
test_every(void **state)
{
	struct event_base *base = *state;
	struct server *srv = server_new(base);
	int ticks = 0;

	assert_non_null(srv);
	assert_int_equal(server_every(srv, 1, tick, &ticks), 0);
	evloop_run(base, NULL, NULL, 2.3);
	assert_int_equal(ticks, 2);
	server_free(srv);		/* the timer goes with it */
	evloop_run(base, NULL, NULL, 1.2);
	assert_int_equal(ticks, 2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_counts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_drain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_drain_empty, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_drain_last_leaves, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_every, setup, teardown),
	};

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
