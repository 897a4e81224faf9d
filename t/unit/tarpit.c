/*
 * tarpit.c tests on a real libevent event base over real sockets
 * (socketpair(AF_UNIX, SOCK_STREAM)), tarpit_stutter = 1s.
 *
 * The timed cases run side by side in one event loop, so the file takes
 * about as long as the longest of them (a 221 stuttered after a 2-octet
 * reply: ~17 s), each on its own server (server.c) where a case must see
 * its tarpit freed (tarpit_held back to 0):
 *
 *   banner    "220 ..." one octet a second, none before the first second;
 *             the client hangs up after 3 octets: the entry is freed
 *   pipeline  the owed reply, then one reply for a read of two pipelined
 *             lines and a partial third: exactly two replies
 *   quit      "quit" gets "221 2.0.0 Bye" and EOF
 *   stutter   tarpit_time = 2s ends a connection while it stutters
 *   listen    tarpit_time = 4s ends a connection while it waits for input
 *   hangup    a client that hangs up while the tarpit waits for input
 *   owed      input the session had read (an early talker's EHLO) is
 *             answered once the banner is out, like input read later
 *
 * Then quick cases: max_tarpit_sessions, the server's teardown closing
 * what is held, a drain closing tarpits at once (and the loop ending then,
 * not at the drain timeout), and the memory of a connection (TAP
 * comments).
 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>
#include <event2/event_struct.h>

#include "server.h"
#include "tarpit.h"

#define CLIENT_MAX	64
#define RUN_DEADLINE	30	/* seconds: a hung case fails, never hangs */

/* The peer of a tarpitted socket: what arrived, and when. */
struct client {
	int fd;
	struct event ev;
	char got[CLIENT_MAX + 1];
	double at[CLIENT_MAX];	/* seconds after t0 */
	size_t n;
	size_t hangup_after;	/* close after this many octets; 0 never */
	double eof_at;		/* -1: no EOF seen */
	bool done;		/* EOF seen, or hung up */
};

static double t0;

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
conf_init(struct greyd_conf *c, const char *tarpit_time, const char *max)
{
	char err[CONF_ERRLEN], t[64], m[64];
	const char *ov[] = { "tarpit_stutter=1s", t, m,
	    "smtp_banner=tarpit.test", NULL };

	snprintf(t, sizeof(t), "tarpit_time=%s", tarpit_time);
	snprintf(m, sizeof(m), "max_tarpit_sessions=%s", max);
	if (conf_load(c, NULL, ov, err, sizeof(err)) != 0)
		fail_msg("conf_load: %s", err);
}


static void
client_close(struct client *cl)
{
	if (cl->fd >= 0) {
		event_del(&cl->ev);
		close(cl->fd);
		cl->fd = -1;
	}
	cl->done = true;
}

static void
client_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct client *cl = arg;
	char buf[256];
	ssize_t n, i;

	while ((n = recv(cl->fd, buf, sizeof(buf), 0)) > 0) {
		for (i = 0; i < n && cl->n < CLIENT_MAX; i++) {
			cl->at[cl->n] = now_s() - t0;
			cl->got[cl->n++] = buf[i];
		}
		if (cl->hangup_after > 0 && cl->n >= cl->hangup_after) {
			client_close(cl);
			return;
		}
	}
	if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
		cl->eof_at = now_s() - t0;
		client_close(cl);
	}
}

/*
 * A socketpair: the tarpit takes one end with tarpit_start (banner, reply),
 * cl the other, after sending input.  Returns tarpit_start's result.
 */
static int
client_start_owed(struct client *cl, struct server *srv,
    const struct greyd_conf *c, bool banner, const char *reply,
    const char *input, const char *owed)
{
	int sv[2], rc;

	memset(cl, 0, sizeof(*cl));
	cl->eof_at = -1;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0, sv), 0);
	if (input != NULL)
		assert_int_equal(send(sv[1], input, strlen(input), 0),
		    (ssize_t)strlen(input));
	cl->fd = sv[1];
	event_assign(&cl->ev, server_base(srv), cl->fd, EV_READ | EV_PERSIST,
	    client_read_cb, cl);
	assert_int_equal(event_add(&cl->ev, NULL), 0);
	rc = tarpit_start(srv, c, sv[0], "192.0.2.1", 12345, banner, reply,
	    "test", owed, owed != NULL ? strlen(owed) : 0);
	if (rc != 0)
		close(sv[0]);
	return rc;
}

static int
client_start(struct client *cl, struct server *srv,
    const struct greyd_conf *c, bool banner, const char *reply,
    const char *input)
{
	return client_start_owed(cl, srv, c, banner, reply, input, NULL);
}

/* Octets from..to-1 arrived at least 0.9 s apart, the first one too. */
static void
assert_stuttered(const struct client *cl, size_t from, size_t to,
    double since)
{
	size_t i;

	for (i = from; i < to; i++) {
		if (cl->at[i] - (i == from ? since : cl->at[i - 1]) < 0.9)
			fail_msg("octet %zu came %.3f s after the one before", i,
			    cl->at[i] - (i == from ? since : cl->at[i - 1]));
	}
}

/* ---- the timed cases, all in one loop ---- */

enum {
	C_BANNER, C_PIPELINE, C_QUIT, C_STUTTER, C_LISTEN, C_HANGUP, C_OWED,
	NCASES
};

static struct {
	bool ran;
	bool finished;		/* before RUN_DEADLINE */
	double took;
	struct event_base *base;
	struct greyd_conf conf_long, conf_short, conf_mid, conf_owed;
	struct server *srv[NCASES];
	struct client cl[NCASES];
	unsigned pipeline_left;	/* tarpits of srv[C_PIPELINE] after the run */
} run;

static bool
run_finished(void)
{
	int i;

	for (i = 0; i < NCASES; i++)
		if (i != C_PIPELINE && i != C_OWED && (!run.cl[i].done ||
		    tarpit_held(run.srv[i]) != 0))
			return false;
	return run.cl[C_PIPELINE].n >= 10 && run.cl[C_OWED].n >= 10;
}

static void
run_poll_cb(evutil_socket_t fd, short what, void *arg)
{
	if (run_finished() || now_s() - t0 > RUN_DEADLINE)
		event_base_loopexit(run.base, NULL);
}

static void
run_start_cases(void)
{
	struct { struct greyd_conf *c; bool banner; const char *reply, *in; }
	    cs[NCASES] = {
		[C_BANNER] = { &run.conf_long, true, "550 x", NULL },
		[C_PIPELINE] = { &run.conf_long, false, "550",
		    "NOOP\r\nNOOP\r\nNOOP" },
		[C_QUIT] = { &run.conf_long, false, "", "quit\r\n" },
		[C_STUTTER] = { &run.conf_short, true, "550 x", NULL },
		[C_LISTEN] = { &run.conf_mid, false, "", NULL },
		[C_HANGUP] = { &run.conf_long, false, "", NULL },
		[C_OWED] = { &run.conf_owed, true, "5", NULL },
	};
	int i;

	for (i = 0; i < NCASES; i++) {
		assert_non_null(run.srv[i] = server_new(run.base));
		assert_int_equal(client_start_owed(&run.cl[i], run.srv[i],
		    cs[i].c, cs[i].banner, cs[i].reply, cs[i].in,
		    i == C_OWED ? "EHLO early.example\r\nNO" : NULL), 0);
		assert_int_equal(tarpit_held(run.srv[i]), 1);
	}
	run.cl[C_BANNER].hangup_after = 3;
	run.cl[C_HANGUP].hangup_after = 2;
}

static void
run_cases(void)
{
	struct event *poll;
	struct timeval tick = { 0, 50000 };

	if (run.ran)
		return;
	run.ran = true;
	conf_init(&run.conf_long, "60s", "5000");
	conf_init(&run.conf_short, "2s", "5000");
	conf_init(&run.conf_mid, "4s", "5000");
	conf_init(&run.conf_owed, "60s", "5000");
	strlcpy(run.conf_owed.smtp_banner, "x", sizeof(run.conf_owed.smtp_banner));
	assert_non_null(run.base = event_base_new());
	poll = event_new(run.base, -1, EV_PERSIST, run_poll_cb, NULL);
	assert_non_null(poll);
	assert_int_equal(event_add(poll, &tick), 0);
	t0 = now_s();
	run_start_cases();
	assert_int_equal(event_base_dispatch(run.base), 0);
	run.took = now_s() - t0;
	run.finished = run_finished();
	run.pipeline_left = tarpit_held(run.srv[C_PIPELINE]);
	server_free(run.srv[C_PIPELINE]);	/* closes what it holds */
	run.srv[C_PIPELINE] = NULL;
	event_free(poll);
	printf("# timed cases took %.1f s\n", run.took);
}

static int
run_teardown(void **state)
{
	int i;

	(void)state;
	if (!run.ran)
		return 0;
	for (i = 0; i < NCASES; i++) {
		server_free(run.srv[i]);
		client_close(&run.cl[i]);
	}
	event_base_free(run.base);
	conf_free(&run.conf_long);
	conf_free(&run.conf_short);
	conf_free(&run.conf_mid);
	conf_free(&run.conf_owed);
	return 0;
}

static void
test_run_finishes(void **state)
{
	(void)state;
	run_cases();
	assert_true(run.finished);
}

static void
test_banner_stuttered(void **state)
{
	struct client *cl = &run.cl[C_BANNER];

	(void)state;
	run_cases();
	assert_int_equal(cl->n, 3);
	assert_memory_equal(cl->got, "220", 3);
	assert_stuttered(cl, 0, 3, 0);
	assert_true(cl->at[0] < 1.5);
}

static void
test_hangup_while_stuttering(void **state)
{
	(void)state;
	run_cases();
	assert_int_equal(tarpit_held(run.srv[C_BANNER]), 0);
}

static void
test_reply_per_read(void **state)
{
	struct client *cl = &run.cl[C_PIPELINE];

	(void)state;
	run_cases();
	/* the owed reply, then one for the read of two lines and a half */
	assert_int_equal(cl->n, 10);
	assert_memory_equal(cl->got, "550\r\n550\r\n", 10);
	assert_stuttered(cl, 0, 10, 0);
	assert_true(cl->eof_at < 0);		/* still held after the run */
	assert_int_equal(run.pipeline_left, 1);
}

/* server_free closed the connection still held (EOF at the client). */
static void
test_teardown_closes(void **state)
{
	struct client *cl = &run.cl[C_PIPELINE];
	char c;

	(void)state;
	run_cases();
	assert_int_equal(recv(cl->fd, &c, 1, MSG_DONTWAIT), 0);
}

static void
test_quit(void **state)
{
	static const char want[] = "\r\n221 2.0.0 Bye\r\n";
	struct client *cl = &run.cl[C_QUIT];

	(void)state;
	run_cases();
	assert_int_equal(cl->n, sizeof(want) - 1);
	assert_memory_equal(cl->got, want, sizeof(want) - 1);
	assert_stuttered(cl, 0, cl->n, 0);
	assert_true(cl->eof_at >= cl->at[cl->n - 1]);
	assert_true(cl->eof_at - cl->at[cl->n - 1] < 0.5);
	assert_int_equal(tarpit_held(run.srv[C_QUIT]), 0);
}

static void
test_timeout_while_stuttering(void **state)
{
	struct client *cl = &run.cl[C_STUTTER];

	(void)state;
	run_cases();
	assert_true(cl->eof_at >= 1.9 && cl->eof_at < 3.1);
	assert_true(cl->n >= 1 && cl->n <= 2);
	assert_memory_equal(cl->got, "22", cl->n);
	assert_int_equal(tarpit_held(run.srv[C_STUTTER]), 0);
}

static void
test_timeout_while_listening(void **state)
{
	struct client *cl = &run.cl[C_LISTEN];

	(void)state;
	run_cases();
	assert_int_equal(cl->n, 2);
	assert_memory_equal(cl->got, "\r\n", 2);
	assert_true(cl->eof_at >= 3.9 && cl->eof_at < 5.0);
	assert_int_equal(tarpit_held(run.srv[C_LISTEN]), 0);
}

static void
test_hangup_while_listening(void **state)
{
	(void)state;
	run_cases();
	assert_int_equal(run.cl[C_HANGUP].n, 2);
	assert_int_equal(tarpit_held(run.srv[C_HANGUP]), 0);
}

/* An early talker's line, read by the session: answered after the banner,
 * once (the half line "NO" is not a line yet). */
static void
test_owed_input(void **state)
{
	struct client *cl = &run.cl[C_OWED];

	(void)state;
	run_cases();
	assert_int_equal(cl->n, 10);
	assert_memory_equal(cl->got, "220 x\r\n5\r\n", 10);
	assert_stuttered(cl, 0, 10, 0);
	assert_true(cl->eof_at < 0);
}

/* ---- quick cases, each with its own loop ---- */

static void
test_room(void **state)
{
	struct greyd_conf c;
	struct event_base *base;
	struct server *srv;
	struct client cl[3];
	char ch;
	int i;

	(void)state;
	conf_init(&c, "60s", "2");
	assert_non_null(base = event_base_new());
	assert_non_null(srv = server_new(base));
	assert_true(tarpit_room(srv, &c));
	for (i = 0; i < 2; i++)
		assert_int_equal(client_start(&cl[i], srv, &c, true, "550 x",
		    NULL), 0);
	assert_false(tarpit_room(srv, &c));
	assert_int_equal(tarpit_held(srv), 2);
	assert_int_equal(server_count(srv, NULL), 0);	/* not counted */

	/* the third is refused and its socket left alone */
	{
		int sv[2];

		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM |
		    SOCK_NONBLOCK, 0, sv), 0);
		assert_int_equal(tarpit_start(srv, &c, sv[0], "192.0.2.3", 1,
		    true, "550 x", "test", NULL, 0), -1);
		assert_int_not_equal(fcntl(sv[0], F_GETFD), -1);
		assert_int_equal(send(sv[0], "x", 1, 0), 1);
		assert_int_equal(recv(sv[1], &ch, 1, 0), 1);
		close(sv[0]);
		close(sv[1]);
	}
	assert_int_equal(tarpit_held(srv), 2);
	c.max_tarpit_sessions = 3;
	assert_true(tarpit_room(srv, &c));
	c.max_tarpit_sessions = 0;
	assert_false(tarpit_room(srv, &c));

	server_free(srv);
	for (i = 0; i < 2; i++) {
		assert_int_equal(recv(cl[i].fd, &ch, 1, MSG_DONTWAIT), 0);
		client_close(&cl[i]);
	}
	event_base_free(base);
	conf_free(&c);
}

static bool drain_expired;

static void
deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	drain_expired = true;
	event_base_loopbreak(arg);
}

/* A drain closes every tarpit at once; with nothing else left, the loop
 * ends then, long before the drain timeout. */
static void
test_drain_closes(void **state)
{
	struct greyd_conf c;
	struct event_base *base;
	struct server *srv;
	struct client cl;
	struct event *deadline;
	struct timeval tv = { 5, 0 };
	double t;

	(void)state;
	conf_init(&c, "60s", "10");
	assert_non_null(base = event_base_new());
	assert_non_null(srv = server_new(base));
	assert_int_equal(client_start(&cl, srv, &c, false, "550 x", NULL), 0);
	deadline = evtimer_new(base, deadline_cb, base);
	assert_int_equal(evtimer_add(deadline, &tv), 0);
	t = now_s();
	server_drain(srv, 60);
	assert_int_equal(tarpit_held(srv), 0);
	assert_int_equal(event_base_dispatch(base), 0);
	assert_false(drain_expired);
	assert_true(event_base_got_exit(base));
	assert_true(now_s() - t < 1.0);
	assert_true(cl.done);			/* EOF seen by the client */
	assert_true(cl.eof_at >= 0);
	client_close(&cl);
	event_free(deadline);
	server_free(srv);
	event_base_free(base);
	conf_free(&c);
}

/* Not asserted: printed for the record.  The connections are stuttering
 * (a timer each, their sockets not in the event loop's poll set). */
static void
test_memory(void **state)
{
	enum { N = 200 };
	int fds[N][2];
	struct greyd_conf c;
	struct event_base *base;
	struct server *srv;
	struct mallinfo2 before = { 0 }, after;
	int i, saved, null;

	(void)state;
	conf_init(&c, "60s", "5000");
	assert_non_null(base = event_base_new());
	assert_non_null(srv = server_new(base));
	fflush(stderr);
	assert_true((saved = dup(2)) >= 0);	/* no 2 x 200 log lines */
	assert_true((null = open("/dev/null", O_WRONLY)) >= 0);
	dup2(null, 2);
	for (i = 0; i < N; i++) {
		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM |
		    SOCK_NONBLOCK, 0, fds[i]), 0);
		/* the first warms the base up (its common timeout) */
		if (i == 1)
			before = mallinfo2();
		assert_int_equal(tarpit_start(srv, &c, fds[i][0], "192.0.2.1",
		    1, false, "550 x", "test", NULL, 0), 0);
	}
	after = mallinfo2();
	server_free(srv);
	dup2(saved, 2);
	close(saved);
	close(null);
	if (after.uordblks > before.uordblks)
		printf("# heap per tarpitted connection: %zu octets (%d "
		    "connections)\n", (after.uordblks - before.uordblks) /
		    (N - 1), N - 1);
	for (i = 0; i < N; i++)
		close(fds[i][1]);
	event_base_free(base);
	conf_free(&c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_run_finishes),
		cmocka_unit_test(test_banner_stuttered),
		cmocka_unit_test(test_hangup_while_stuttering),
		cmocka_unit_test(test_reply_per_read),
		cmocka_unit_test(test_teardown_closes),
		cmocka_unit_test(test_quit),
		cmocka_unit_test(test_timeout_while_stuttering),
		cmocka_unit_test(test_timeout_while_listening),
		cmocka_unit_test(test_hangup_while_listening),
		cmocka_unit_test(test_owed_input),
		cmocka_unit_test(test_room),
		cmocka_unit_test(test_drain_closes),
		cmocka_unit_test(test_memory),
	};

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, NULL, run_teardown);
}
