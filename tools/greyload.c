/*
 * greyload — SMTP load generator for greyd's benchmarks and tests.
 *
 * One process, one libevent loop, one bufferevent per SMTP session.  It
 * keeps -c sessions running until -n sessions have been started or -t
 * seconds have passed, then waits for the sessions in flight and prints a
 * summary: sessions ok/failed, sessions and messages per second, replies
 * counted by code, connect errors, and latency percentiles (p50/p90/p99/max,
 * in ms) of the whole session and of connect -> complete banner.
 *
 * Modes (-m):
 *   grey    connect, 220, EHLO, MAIL FROM:<sN@senderN.example>,
 *           RCPT TO:<user@example.com> (any reply is fine; -k K sends K
 *           RCPTs, each counted as a "message"), QUIT.  N is a counter
 *           (from -o), so every session offers a new triplet.  A "%u" in
 *           -r is replaced by a counter over all sessions, modulo -R N if
 *           given: -r 'u%u@example.com' -R 100000 walks 100,000 addresses.
 *   relay   connect, 220, EHLO, then -k times MAIL, RCPT, DATA, a message
 *           with a body of -b bytes, "." (250 counts as a message), QUIT.
 *   idle    connect and read the banner, then hold the connection without
 *           sending; -n connections, -c of them connecting at a time.  Held
 *           for -t seconds after the last one connected, or until SIGINT.
 *   tarpit  like idle, but a connection counts as held as soon as TCP
 *           connects, with no banner deadline: whatever the server sends
 *           (a banner stuttered one byte at a time) is read and counted.
 * In idle and tarpit mode a line "greyload: holding N connections" goes to
 * stdout once every connection has been tried, and the open count goes to
 * stderr once a second while it changes.
 *
 * Options: -s HOST:PORT target (numeric; "[::1]:PORT" for IPv6), -m MODE
 * (grey), -c N concurrent sessions (10; in idle/tarpit mode: connecting at
 * once), -n N sessions (1000 unless -t is given), -t SECONDS duration (or
 * hold time), -a FIRST-LAST source addresses, -b BYTES body (1024), -k K
 * messages per session (1), -T SECONDS per session (30), -L SECONDS per run,
 * -o N first sender number (0), -H NAME for EHLO (greyload.example),
 * -r ADDRESS recipient (user@example.com), -R N modulus of its %u, -q
 * RESULT line, -v progress.
 *
 * Commands are never pipelined: each waits for the complete (possibly
 * multi-line) reply to the one before.  A reply of an unexpected class marks
 * the session failed; greyload then sends QUIT and closes.  greyload closes
 * first after the 221, so TIME_WAIT stays on its side; tcp_tw_reuse (2, the
 * default, covers loopback) lets new connections reuse those ports.
 *
 * -a FIRST-LAST binds each connection to the next source address of the
 * range (round robin; IPv4, or IPv6 differing in the last 32 bits), so one
 * process can play many SMTP clients on 127.0.0.0/8.  IP_BIND_ADDRESS_NO_PORT
 * lets the kernel choose the source port at connect time, so a source
 * address is not limited to one ephemeral port range for all destinations.
 *
 * Bounds: RLIMIT_NOFILE is raised to the hard limit; every session has a
 * deadline (-T, default 30 s; in idle mode it covers connect and banner
 * only); the whole run has one (-L, default -t + -T + 30 s, or 600 s without
 * -t), after which the sessions still open are aborted.  SIGINT or SIGTERM
 * ends a hold (held connections then count as ok) or aborts the sessions in
 * flight, and the summary is printed either way.
 *
 * -q adds a machine-readable last line:
 *   RESULT sessions_per_s=... messages_per_s=... p50_ms=... p99_ms=...
 *   banner_p99_ms=... ok=... failed=...
 * (idle and tarpit modes add held=...).  Exit status: 0 when no session
 * failed, 1 otherwise, 2 for bad usage.
 */
#include <sys/types.h>
#include <sys/queue.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/event_struct.h>

/* libevent callbacks have fixed signatures; most ignore some arguments. */
#pragma GCC diagnostic ignored "-Wunused-parameter"

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define REPLY_LINE_MAX	4096	/* longer reply lines are a protocol error */
#define COMMAND_MAX	1024	/* longest command line greyload sends */
#define NAME_MAX_LEN	256	/* -H and -r */
#define BODY_LINE_LEN	76	/* message body line length, CRLF excluded */
#define ERRNO_MAX	256	/* connect errors are counted by errno below this */

enum mode { MODE_GREY, MODE_RELAY, MODE_IDLE, MODE_TARPIT };
static const char *const mode_names[] = { "grey", "relay", "idle", "tarpit" };

/* Where a session is: the reply it waits for, or holding. */
enum step {
	STEP_CONNECT, STEP_BANNER, STEP_EHLO, STEP_MAIL, STEP_RCPT, STEP_DATA,
	STEP_BODY, STEP_QUIT, STEP_HOLD
};

/* Why a session failed. */
enum fail {
	FAIL_NONE, FAIL_CONNECT, FAIL_TIMEOUT, FAIL_CLOSED, FAIL_REPLY,
	FAIL_PROTOCOL, FAIL_ABORTED, FAIL_MAX
};
static const char *const fail_names[] = {
	"none", "connect", "timeout", "closed", "reply", "protocol", "aborted"
};

struct latencies {
	uint32_t *us;
	size_t n, cap;
};

struct session {
	LIST_ENTRY(session) entry;
	struct bufferevent *bev;
	struct event deadline;		/* -T; not armed while holding */
	enum step step;
	enum fail fail;			/* first failure seen; FAIL_NONE if none */
	int multiline_code;		/* code of a multi-line reply in progress */
	int messages_left;
	unsigned long long sender;	/* the N of sN@senderN.example */
	double t_start;
};

static struct options {
	enum mode mode;
	struct sockaddr_storage target;
	socklen_t target_len;
	const char *target_text;
	int concurrency;
	long long sessions;		/* -n; 0 = until -t */
	double duration;		/* -t; 0 = none */
	long long body_bytes;
	int messages_per_session;
	int session_timeout;
	double run_limit;
	bool result_line;
	bool verbose;
	const char *helo;
	const char *rcpt;
	bool rcpt_pattern;		/* -r holds "%u" */
	unsigned long long rcpt_mod;	/* -R; 0 = none */
	unsigned long long sender_first;
	bool have_source;		/* -a given */
	struct sockaddr_storage source;	/* first address of the range */
	socklen_t source_len;
	uint32_t source_count;
} opt = {
	.mode = MODE_GREY,
	.concurrency = 10,
	.body_bytes = 1024,
	.messages_per_session = 1,
	.session_timeout = 30,
	.helo = "greyload.example",
	.rcpt = "user@example.com",
};

static struct run {
	struct event_base *base;
	struct event *sigint, *sigterm, *tick, *limit, *hold, *launcher;
	LIST_HEAD(, session) sessions;
	double t_start, t_end, t_last_connect;
	bool stopping;			/* start no more sessions */
	bool holding;			/* idle/tarpit: every connection tried */
	long long started, ok, failed, messages;
	long long fails[FAIL_MAX];
	long long connect_errors;
	long long connect_errnos[ERRNO_MAX];
	unsigned long long replies[1000];
	unsigned long long held_bytes;	/* bytes read while holding */
	int active;			/* sessions in memory */
	int connecting;			/* idle/tarpit: not yet holding */
	int held;
	int held_reported;
	uint32_t source_next;
	unsigned long long sender_next;
	unsigned long long rcpt_next;	/* the %u of -r */
	struct latencies session_lat, banner_lat;
	char *message;			/* relay mode: headers, body, "." */
	size_t message_len;
} run;

static void launch(void);

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static struct timeval
seconds_tv(double s)
{
	struct timeval tv;

	tv.tv_sec = (time_t)s;
	tv.tv_usec = (suseconds_t)((s - (double)tv.tv_sec) * 1e6);
	return tv;
}

static void
latency_add(struct latencies *l, double seconds)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 4096;
		uint32_t *p = reallocarray(l->us, cap, sizeof(*p));

		if (p == NULL)
			return;		/* the percentiles lose a sample */
		l->us = p;
		l->cap = cap;
	}
	l->us[l->n++] = seconds < 4000 ? (uint32_t)(seconds * 1e6) : UINT32_MAX;
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

/* Nearest-rank percentile in ms of a sorted sample; 0 when empty. */
static double
percentile_ms(const struct latencies *l, double p)
{
	size_t rank;

	if (l->n == 0)
		return 0;
	rank = (size_t)(p / 100.0 * (double)l->n + 0.999999);
	if (rank < 1)
		rank = 1;
	if (rank > l->n)
		rank = l->n;
	return l->us[rank - 1] / 1000.0;
}

/* Address number i of the -a range. */
static void
source_address(uint32_t i, struct sockaddr_storage *ss)
{
	memcpy(ss, &opt.source, sizeof(*ss));
	if (ss->ss_family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_addr.s_addr = htonl(ntohl(sin->sin_addr.s_addr) + i);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
		uint32_t low;

		memcpy(&low, &sin6->sin6_addr.s6_addr[12], 4);
		low = htonl(ntohl(low) + i);
		memcpy(&sin6->sin6_addr.s6_addr[12], &low, 4);
	}
}

static bool
more_to_start(void)
{
	if (run.stopping)
		return false;
	if (opt.sessions > 0 && run.started >= opt.sessions)
		return false;
	if (opt.mode != MODE_IDLE && opt.mode != MODE_TARPIT &&
	    opt.duration > 0 && now() - run.t_start >= opt.duration)
		return false;
	return true;
}

/* Idle/tarpit: once every connection has been tried, hold for -t. */
static void
check_holding(void)
{
	struct timeval tv;

	if (run.holding || run.connecting > 0 || more_to_start())
		return;
	run.holding = true;
	run.t_last_connect = now();
	printf("greyload: holding %d connections (%lld failed) after %.2fs\n",
	    run.held, run.failed, run.t_last_connect - run.t_start);
	fflush(stdout);
	if (opt.duration > 0 && !run.stopping) {
		tv = seconds_tv(opt.duration);
		evtimer_add(run.hold, &tv);
	}
}

static void
check_done(void)
{
	if (run.active == 0 && !more_to_start()) {
		if (run.t_end == 0)
			run.t_end = now();
		event_base_loopexit(run.base, NULL);
	}
}

static void
session_end(struct session *s, enum fail why)
{
	if (s->fail == FAIL_NONE)
		s->fail = why;
	if (s->fail == FAIL_NONE) {
		run.ok++;
		if (opt.mode == MODE_GREY || opt.mode == MODE_RELAY)
			latency_add(&run.session_lat, now() - s->t_start);
	} else {
		run.failed++;
		run.fails[s->fail]++;
	}
	if (s->step == STEP_HOLD)
		run.held--;
	else if (opt.mode == MODE_IDLE || opt.mode == MODE_TARPIT)
		run.connecting--;
	evtimer_del(&s->deadline);
	bufferevent_free(s->bev);
	LIST_REMOVE(s, entry);
	free(s);
	run.active--;
	if (opt.mode == MODE_IDLE || opt.mode == MODE_TARPIT)
		check_holding();
	if (more_to_start())
		event_active(run.launcher, EV_TIMEOUT, 0);
	else
		check_done();
}

static void
session_hold(struct session *s)
{
	evtimer_del(&s->deadline);
	s->step = STEP_HOLD;
	run.connecting--;
	run.held++;
	check_holding();
	if (more_to_start())
		event_active(run.launcher, EV_TIMEOUT, 0);
}

static void
send_line(struct session *s, enum step next, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Commands go out with one send() on the socket when nothing is queued: in
 * this lockstep dialogue it nearly always takes the whole line, and it
 * saves the two epoll_ctl calls per command of arming and disarming the
 * bufferevent's write event.  What send() does not take (or an error) is
 * left to the bufferevent, which writes it and reports any error.
 */
static void
session_send(struct session *s, const char *data, size_t len)
{
	struct evbuffer *out = bufferevent_get_output(s->bev);
	ssize_t n = 0;

	if (evbuffer_get_length(out) == 0) {
		n = send(bufferevent_getfd(s->bev), data, len,
		    MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0)
			n = 0;
	}
	if ((size_t)n < len)
		evbuffer_add(out, data + n, len - (size_t)n);
}

static void
send_line(struct session *s, enum step next, const char *fmt, ...)
{
	char line[COMMAND_MAX];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n > 0)
		session_send(s, line, (size_t)n < sizeof(line) ?
		    (size_t)n : sizeof(line) - 1);
	s->step = next;
}

static void
send_mail(struct session *s)
{
	s->sender = run.sender_next++;
	send_line(s, STEP_MAIL, "MAIL FROM:<s%llu@sender%llu.example>\r\n",
	    s->sender, s->sender);
}

static void
send_rcpt(struct session *s)
{
	char addr[NAME_MAX_LEN + 24];
	const char *pct;
	unsigned long long n;

	if (!opt.rcpt_pattern) {
		send_line(s, STEP_RCPT, "RCPT TO:<%s>\r\n", opt.rcpt);
		return;
	}
	n = run.rcpt_next++;
	if (opt.rcpt_mod > 0)
		n %= opt.rcpt_mod;
	pct = strstr(opt.rcpt, "%u");
	snprintf(addr, sizeof(addr), "%.*s%llu%s", (int)(pct - opt.rcpt),
	    opt.rcpt, n, pct + 2);
	send_line(s, STEP_RCPT, "RCPT TO:<%s>\r\n", addr);
}

/* A reply of the wrong class: the session has failed; say goodbye. */
static void
session_reject(struct session *s)
{
	if (s->fail == FAIL_NONE)
		s->fail = FAIL_REPLY;
	send_line(s, STEP_QUIT, "QUIT\r\n");
}

/* Act on one complete reply.  Returns false if the session has ended. */
static bool
session_reply(struct session *s, int code)
{
	int class = code / 100;

	switch (s->step) {
	case STEP_BANNER:
		latency_add(&run.banner_lat, now() - s->t_start);
		if (class != 2)
			session_reject(s);
		else if (opt.mode == MODE_IDLE)
			session_hold(s);
		else
			send_line(s, STEP_EHLO, "EHLO %s\r\n", opt.helo);
		break;
	case STEP_EHLO:
		if (class != 2)
			session_reject(s);
		else
			send_mail(s);
		break;
	case STEP_MAIL:
		if (class != 2)
			session_reject(s);
		else
			send_rcpt(s);
		break;
	case STEP_RCPT:
		if (opt.mode == MODE_GREY) {
			run.messages++;
			if (--s->messages_left > 0)
				send_rcpt(s);
			else
				send_line(s, STEP_QUIT, "QUIT\r\n");
		} else if (class != 2)
			session_reject(s);
		else
			send_line(s, STEP_DATA, "DATA\r\n");
		break;
	case STEP_DATA:
		if (code != 354) {
			session_reject(s);
			break;
		}
		session_send(s, run.message, run.message_len);
		s->step = STEP_BODY;
		break;
	case STEP_BODY:
		if (class != 2) {
			session_reject(s);
			break;
		}
		run.messages++;
		if (--s->messages_left > 0)
			send_mail(s);
		else
			send_line(s, STEP_QUIT, "QUIT\r\n");
		break;
	case STEP_QUIT:
		session_end(s, FAIL_NONE);
		return false;
	case STEP_CONNECT:
	case STEP_HOLD:
		break;
	}
	return true;
}

static void
session_connected(struct session *s)
{
	if (opt.mode == MODE_TARPIT)
		session_hold(s);
	else
		s->step = STEP_BANNER;
}

static void
read_cb(struct bufferevent *bev, void *arg)
{
	struct session *s = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	char line[REPLY_LINE_MAX + 1];
	struct evbuffer_ptr eol;
	size_t eol_len, len;
	int code;

	if (s->step == STEP_CONNECT)
		session_connected(s);	/* data can beat the connect event */
	for (;;) {
		if (s->step == STEP_HOLD) {
			run.held_bytes += evbuffer_get_length(in);
			evbuffer_drain(in, evbuffer_get_length(in));
			return;
		}
		eol = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_CRLF);
		if (eol.pos < 0) {
			if (evbuffer_get_length(in) > REPLY_LINE_MAX)
				session_end(s, FAIL_PROTOCOL);
			return;
		}
		len = (size_t)eol.pos;
		if (len > REPLY_LINE_MAX) {
			session_end(s, FAIL_PROTOCOL);
			return;
		}
		evbuffer_remove(in, line, len);
		evbuffer_drain(in, eol_len);
		line[len] = '\0';
		if (len < 3 || line[0] < '2' || line[0] > '5' ||
		    line[1] < '0' || line[1] > '9' ||
		    line[2] < '0' || line[2] > '9' ||
		    (len > 3 && line[3] != ' ' && line[3] != '-')) {
			session_end(s, FAIL_PROTOCOL);
			return;
		}
		code = (line[0] - '0') * 100 + (line[1] - '0') * 10 +
		    (line[2] - '0');
		if (s->multiline_code != 0 && code != s->multiline_code) {
			session_end(s, FAIL_PROTOCOL);
			return;
		}
		if (len > 3 && line[3] == '-') {
			s->multiline_code = code;
			continue;
		}
		s->multiline_code = 0;
		run.replies[code]++;
		if (!session_reply(s, code))
			return;
	}
}

static void
event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct session *s = arg;
	int err = EVUTIL_SOCKET_ERROR();

	if (what & BEV_EVENT_CONNECTED) {
		if (s->step == STEP_CONNECT)
			session_connected(s);
		return;
	}
	if (s->step == STEP_CONNECT && (what & BEV_EVENT_ERROR)) {
		run.connect_errors++;
		run.connect_errnos[err > 0 && err < ERRNO_MAX ? err : 0]++;
		session_end(s, FAIL_CONNECT);
	} else if (s->step == STEP_QUIT) {
		session_end(s, FAIL_NONE);	/* closed after QUIT: fine */
	} else {
		session_end(s, FAIL_CLOSED);
	}
}

static void
deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;

	if (s->step == STEP_CONNECT) {	/* no TCP connection within -T */
		run.connect_errors++;
		run.connect_errnos[ETIMEDOUT]++;
		session_end(s, FAIL_CONNECT);
	} else {
		session_end(s, FAIL_TIMEOUT);
	}
}

/*
 * Start one session.  Returns false if it failed at once (socket, bind or
 * connect error), which the caller counts as a failed session.
 */
static bool
session_start(void)
{
	struct sockaddr_storage src;
	struct session *s;
	struct timeval tv;
	int fd, one = 1, err;

	run.started++;
	fd = socket(opt.target.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0);
	if (fd == -1)
		goto fail;
	if (opt.have_source) {
		source_address(run.source_next, &src);
		run.source_next = (run.source_next + 1) % opt.source_count;
		if (setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one,
		    sizeof(one)) == -1 ||
		    bind(fd, (struct sockaddr *)&src, opt.source_len) == -1)
			goto fail;
	}
	if (connect(fd, (struct sockaddr *)&opt.target, opt.target_len) == -1 &&
	    errno != EINPROGRESS)
		goto fail;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		goto fail;
	s->bev = bufferevent_socket_new(run.base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (s->bev == NULL) {
		free(s);
		goto fail;
	}
	fd = -1;	/* the bufferevent owns it now */
	s->t_start = now();
	s->step = STEP_CONNECT;
	s->messages_left = opt.messages_per_session;
	LIST_INSERT_HEAD(&run.sessions, s, entry);
	run.active++;
	if (opt.mode == MODE_IDLE || opt.mode == MODE_TARPIT)
		run.connecting++;
	bufferevent_setcb(s->bev, read_cb, NULL, event_cb, s);
	evtimer_assign(&s->deadline, run.base, deadline_cb, s);
	tv = seconds_tv(opt.session_timeout);
	evtimer_add(&s->deadline, &tv);
	/* The connect is under way: let the bufferevent report its end. */
	if (bufferevent_socket_connect(s->bev, NULL, 0) == -1 ||
	    bufferevent_enable(s->bev, EV_READ) == -1) {
		s->fail = FAIL_CONNECT;
		run.connect_errors++;
		run.connect_errnos[0]++;
		session_end(s, FAIL_CONNECT);
	}
	return true;

fail:
	err = errno;
	if (fd != -1)
		close(fd);
	run.connect_errors++;
	run.connect_errnos[err > 0 && err < ERRNO_MAX ? err : 0]++;
	run.failed++;
	run.fails[FAIL_CONNECT]++;
	return false;
}

/*
 * Top up the running sessions to -c.  Bounded per call so the loop keeps
 * turning; immediate failures back off for 10 ms instead of spinning.
 */
static void
launch(void)
{
	struct timeval backoff = { 0, 10000 };
	int busy, tries = 0;
	bool failed_now = false;

	for (;;) {
		busy = (opt.mode == MODE_IDLE || opt.mode == MODE_TARPIT) ?
		    run.connecting : run.active;
		if (busy >= opt.concurrency || !more_to_start())
			break;
		if (tries++ >= opt.concurrency) {
			event_active(run.launcher, EV_TIMEOUT, 0);
			return;
		}
		if (!session_start()) {
			failed_now = true;
			break;
		}
	}
	if (failed_now && more_to_start())
		evtimer_add(run.launcher, &backoff);
	if (opt.mode == MODE_IDLE || opt.mode == MODE_TARPIT)
		check_holding();
	check_done();
}

static void
launcher_cb(evutil_socket_t fd, short what, void *arg)
{
	launch();
}

/* End the run: sessions still open are ok if held, aborted otherwise. */
static void
stop_all(bool held_ok)
{
	struct session *s;

	run.stopping = true;
	if (run.t_end == 0)
		run.t_end = now();
	while ((s = LIST_FIRST(&run.sessions)) != NULL)
		session_end(s, held_ok && s->step == STEP_HOLD ?
		    FAIL_NONE : FAIL_ABORTED);
	event_base_loopexit(run.base, NULL);
}

static void
signal_cb(evutil_socket_t sig, short what, void *arg)
{
	fprintf(stderr, "greyload: %s, stopping\n", strsignal(sig));
	stop_all(true);
}

static void
limit_cb(evutil_socket_t fd, short what, void *arg)
{
	fprintf(stderr, "greyload: run time limit (-L %.0fs) reached\n",
	    opt.run_limit);
	stop_all(false);
}

static void
hold_cb(evutil_socket_t fd, short what, void *arg)
{
	stop_all(true);
}

static void
tick_cb(evutil_socket_t fd, short what, void *arg)
{
	double t = now() - run.t_start;

	if (opt.mode == MODE_IDLE || opt.mode == MODE_TARPIT) {
		if (run.held != run.held_reported || opt.verbose) {
			fprintf(stderr, "greyload: %.0fs open=%d connecting=%d "
			    "failed=%lld\n", t, run.held, run.connecting,
			    run.failed);
			run.held_reported = run.held;
		}
	} else if (opt.verbose) {
		fprintf(stderr, "greyload: %.0fs ok=%lld failed=%lld "
		    "active=%d messages=%lld\n", t, run.ok, run.failed,
		    run.active, run.messages);
	}
}

/* Relay mode's message: a few headers and -b bytes of body, then ".". */
static int
build_message(void)
{
	static const char alphabet[] =
	    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
	char head[512];
	size_t head_len, cap, pos;
	long long left;
	int n;

	n = snprintf(head, sizeof(head),
	    "From: <greyload@sender.example>\r\n"
	    "To: <%s>\r\n"
	    "Subject: greyload test message\r\n"
	    "Message-ID: <greyload.%ld@greyload.example>\r\n"
	    "\r\n", opt.rcpt, (long)getpid());
	if (n < 0 || (size_t)n >= sizeof(head))
		return -1;
	head_len = (size_t)n;
	cap = head_len + (size_t)opt.body_bytes + 8;
	if ((run.message = malloc(cap)) == NULL)
		return -1;
	memcpy(run.message, head, head_len);
	pos = head_len;
	/* Lines of BODY_LINE_LEN characters plus CRLF; none starts with '.'. */
	for (left = opt.body_bytes; left > 0; ) {
		size_t line = left > BODY_LINE_LEN + 2 ?
		    BODY_LINE_LEN : (left > 2 ? (size_t)left - 2 : 0);
		size_t i;

		for (i = 0; i < line; i++)
			run.message[pos + i] =
			    alphabet[(pos + i) % (sizeof(alphabet) - 1)];
		pos += line;
		run.message[pos++] = '\r';
		run.message[pos++] = '\n';
		left -= (long long)line + 2;
	}
	memcpy(run.message + pos, ".\r\n", 3);
	run.message_len = pos + 3;
	return 0;
}

static void
print_summary(void)
{
	double elapsed = run.t_end - run.t_start;
	int code, e;
	bool idle = opt.mode == MODE_IDLE || opt.mode == MODE_TARPIT;
	double sps, mps;

	if (elapsed <= 0)
		elapsed = 1e-9;
	sps = idle ? 0 : run.ok / elapsed;
	mps = run.messages / elapsed;
	qsort(run.session_lat.us, run.session_lat.n, sizeof(uint32_t), cmp_u32);
	qsort(run.banner_lat.us, run.banner_lat.n, sizeof(uint32_t), cmp_u32);

	printf("greyload: mode=%s target=%s concurrency=%d elapsed=%.2fs\n",
	    mode_names[opt.mode], opt.target_text, opt.concurrency, elapsed);
	printf("sessions: ok=%lld failed=%lld", run.ok, run.failed);
	for (e = FAIL_CONNECT; e < FAIL_MAX; e++)
		if (run.fails[e])
			printf(" %s=%lld", fail_names[e], run.fails[e]);
	printf("\n");
	if (idle)
		printf("held: %lld connections until the end, %llu bytes read "
		    "while holding, connect phase %.2fs\n", run.ok,
		    run.held_bytes, run.t_last_connect > 0 ?
		    run.t_last_connect - run.t_start : elapsed);
	else
		printf("rate: %.1f sessions/s, %.1f %s/s (%lld %s)\n",
		    sps, mps, opt.mode == MODE_GREY ? "recipients" : "messages",
		    run.messages, opt.mode == MODE_GREY ? "recipients" :
		    "messages");
	printf("replies:");
	for (code = 0; code < 1000; code++)
		if (run.replies[code])
			printf(" %d=%llu", code, run.replies[code]);
	printf("\n");
	printf("connect errors: %lld", run.connect_errors);
	for (e = 0; e < ERRNO_MAX; e++)
		if (run.connect_errnos[e])
			printf(" (%s: %lld)", e ? strerror(e) : "other",
			    run.connect_errnos[e]);
	printf("\n");
	if (!idle)
		printf("session ms: p50=%.2f p90=%.2f p99=%.2f max=%.2f\n",
		    percentile_ms(&run.session_lat, 50),
		    percentile_ms(&run.session_lat, 90),
		    percentile_ms(&run.session_lat, 99),
		    percentile_ms(&run.session_lat, 100));
	if (opt.mode != MODE_TARPIT)
		printf("banner ms: p50=%.2f p90=%.2f p99=%.2f max=%.2f\n",
		    percentile_ms(&run.banner_lat, 50),
		    percentile_ms(&run.banner_lat, 90),
		    percentile_ms(&run.banner_lat, 99),
		    percentile_ms(&run.banner_lat, 100));
	if (opt.result_line) {
		printf("RESULT sessions_per_s=%.1f messages_per_s=%.1f "
		    "p50_ms=%.2f p99_ms=%.2f banner_p99_ms=%.2f ok=%lld "
		    "failed=%lld", sps, mps,
		    percentile_ms(&run.session_lat, 50),
		    percentile_ms(&run.session_lat, 99),
		    percentile_ms(&run.banner_lat, 99), run.ok, run.failed);
		if (idle)
			printf(" held=%lld", run.ok);
		printf("\n");
	}
	fflush(stdout);
}

static void
usage(void)
{
	fprintf(stderr,
	    "usage: greyload -s HOST:PORT [-m grey|relay|idle|tarpit] [-c N]\n"
	    "                [-n N | -t SECONDS] [-a FIRST-LAST] [-b BYTES] [-k K]\n"
	    "                [-T SECONDS] [-L SECONDS] [-o N] [-H HELO] [-r RCPT] [-R N]"
	    " [-qv]\n");
	exit(2);
}

static long long
number(const char *s, long long min, long long max, const char *what)
{
	const char *err;
	long long v = strtonum(s, min, max, &err);

	if (err != NULL) {
		fprintf(stderr, "greyload: %s %s: %s\n", what, s, err);
		exit(2);
	}
	return v;
}

static const char *
name(const char *s, const char *what)
{
	if (*s == '\0' || strlen(s) > NAME_MAX_LEN ||
	    strpbrk(s, "\r\n<> ") != NULL) {
		fprintf(stderr, "greyload: %s %s: want 1 to %d characters, no "
		    "white space or <>\n", what, s, NAME_MAX_LEN);
		exit(2);
	}
	return s;
}

static double
seconds(const char *s, const char *what)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || !(v > 0) || v > 1e6) {
		fprintf(stderr, "greyload: %s %s: bad number of seconds\n",
		    what, s);
		exit(2);
	}
	return v;
}

/* "host:port" or "[v6]:port", numeric only: greyload never asks DNS. */
static void
parse_target(const char *text)
{
	struct addrinfo hints, *res;
	char host[128];
	const char *colon = strrchr(text, ':');
	size_t hlen;
	int rc;

	if (colon == NULL || colon == text || colon[1] == '\0')
		goto bad;
	hlen = (size_t)(colon - text);
	if (text[0] == '[') {
		if (hlen < 3 || colon[-1] != ']')
			goto bad;
		text++;
		hlen -= 2;
	}
	if (hlen >= sizeof(host))
		goto bad;
	memcpy(host, text, hlen);
	host[hlen] = '\0';
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
	if ((rc = getaddrinfo(host, colon + 1, &hints, &res)) != 0) {
		fprintf(stderr, "greyload: -s %s: %s\n", opt.target_text,
		    gai_strerror(rc));
		exit(2);
	}
	memcpy(&opt.target, res->ai_addr, res->ai_addrlen);
	opt.target_len = res->ai_addrlen;
	freeaddrinfo(res);
	return;
bad:
	fprintf(stderr, "greyload: -s %s: want HOST:PORT or [V6]:PORT\n",
	    opt.target_text);
	exit(2);
}

static int
parse_address(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, s, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		*len = sizeof(*sin);
		return 0;
	}
	if (inet_pton(AF_INET6, s, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		*len = sizeof(*sin6);
		return 0;
	}
	return -1;
}

/* The low 32 bits of an address, host order. */
static uint32_t
address_low32(const struct sockaddr_storage *ss)
{
	uint32_t v;

	if (ss->ss_family == AF_INET)
		return ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr);
	memcpy(&v, &((const struct sockaddr_in6 *)ss)->sin6_addr.s6_addr[12], 4);
	return ntohl(v);
}

/* "FIRST-LAST" or one address. */
static void
parse_source(const char *text)
{
	struct sockaddr_storage last;
	socklen_t last_len;
	char first[INET6_ADDRSTRLEN + 1];
	const char *dash = strchr(text, '-');
	size_t flen = dash ? (size_t)(dash - text) : strlen(text);
	uint32_t lo, hi;

	if (flen >= sizeof(first))
		goto bad;
	memcpy(first, text, flen);
	first[flen] = '\0';
	if (parse_address(first, &opt.source, &opt.source_len) == -1)
		goto bad;
	if (dash == NULL) {
		memcpy(&last, &opt.source, sizeof(last));
	} else if (parse_address(dash + 1, &last, &last_len) == -1 ||
	    last.ss_family != opt.source.ss_family) {
		goto bad;
	}
	if (opt.source.ss_family == AF_INET6 && memcmp(
	    &((struct sockaddr_in6 *)&opt.source)->sin6_addr,
	    &((struct sockaddr_in6 *)&last)->sin6_addr, 12) != 0) {
		fprintf(stderr, "greyload: -a %s: an IPv6 range may differ in "
		    "the last 32 bits only\n", text);
		exit(2);
	}
	lo = address_low32(&opt.source);
	hi = address_low32(&last);
	if (hi < lo || hi - lo == UINT32_MAX)
		goto bad;
	opt.source_count = hi - lo + 1;
	opt.have_source = true;
	return;
bad:
	fprintf(stderr, "greyload: -a %s: want FIRST-LAST (numeric addresses, "
	    "same family, FIRST <= LAST)\n", text);
	exit(2);
}

static void
raise_nofile(void)
{
	struct rlimit rl;
	long long need;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
			perror("greyload: setrlimit RLIMIT_NOFILE");
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		return;
	need = (opt.mode == MODE_IDLE || opt.mode == MODE_TARPIT) ?
	    opt.sessions : opt.concurrency;
	if ((rlim_t)need + 32 > rl.rlim_cur) {
		fprintf(stderr, "greyload: %lld connections need more than the "
		    "%llu file descriptors allowed (ulimit -n)\n", need,
		    (unsigned long long)rl.rlim_cur);
		exit(2);
	}
}

int
main(int argc, char *argv[])
{
	struct event_config *cfg;
	struct timeval tv;
	int ch, status;
	bool idle;

	while ((ch = getopt(argc, argv, "a:b:c:H:k:L:m:n:o:qr:R:s:t:T:v")) != -1) {
		switch (ch) {
		case 'a':
			parse_source(optarg);
			break;
		case 'b':
			opt.body_bytes = number(optarg, 0, 1LL << 30, "-b");
			break;
		case 'c':
			opt.concurrency = (int)number(optarg, 1, 1000000, "-c");
			break;
		case 'H':
			opt.helo = name(optarg, "-H");
			break;
		case 'k':
			opt.messages_per_session =
			    (int)number(optarg, 1, 1000000, "-k");
			break;
		case 'L':
			opt.run_limit = seconds(optarg, "-L");
			break;
		case 'm':
			for (opt.mode = MODE_GREY; opt.mode <= MODE_TARPIT;
			    opt.mode++)
				if (strcmp(optarg, mode_names[opt.mode]) == 0)
					break;
			if (opt.mode > MODE_TARPIT)
				usage();
			break;
		case 'n':
			opt.sessions = number(optarg, 1, 1LL << 40, "-n");
			break;
		case 'o':
			opt.sender_first = (unsigned long long)
			    number(optarg, 0, LLONG_MAX, "-o");
			break;
		case 'q':
			opt.result_line = true;
			break;
		case 'r':
			opt.rcpt = name(optarg, "-r");
			opt.rcpt_pattern = strstr(opt.rcpt, "%u") != NULL;
			if (strchr(opt.rcpt, '%') != NULL && (!opt.rcpt_pattern ||
			    strchr(strstr(opt.rcpt, "%u") + 1, '%') != NULL)) {
				fprintf(stderr, "greyload: -r: only one %%u\n");
				exit(2);
			}
			break;
		case 'R':
			opt.rcpt_mod = (unsigned long long)
			    number(optarg, 1, LLONG_MAX, "-R");
			break;
		case 's':
			opt.target_text = optarg;
			parse_target(optarg);
			break;
		case 't':
			opt.duration = seconds(optarg, "-t");
			break;
		case 'T':
			opt.session_timeout = (int)number(optarg, 1, 86400, "-T");
			break;
		case 'v':
			opt.verbose = true;
			break;
		default:
			usage();
		}
	}
	if (optind != argc || opt.target_text == NULL)
		usage();
	idle = opt.mode == MODE_IDLE || opt.mode == MODE_TARPIT;
	if (idle && opt.sessions == 0) {
		fprintf(stderr, "greyload: -m %s needs -n CONNECTIONS\n",
		    mode_names[opt.mode]);
		exit(2);
	}
	if (!idle && opt.sessions == 0 && opt.duration == 0)
		opt.sessions = 1000;
	if (opt.have_source && opt.source.ss_family != opt.target.ss_family) {
		fprintf(stderr, "greyload: -a and -s are of different address "
		    "families\n");
		exit(2);
	}
	if (opt.run_limit == 0)
		opt.run_limit = opt.duration > 0 ?
		    opt.duration + opt.session_timeout + 30 : 600;
	raise_nofile();
	signal(SIGPIPE, SIG_IGN);
	if (opt.mode == MODE_RELAY && build_message() == -1) {
		fprintf(stderr, "greyload: out of memory\n");
		exit(1);
	}

	LIST_INIT(&run.sessions);
	run.sender_next = opt.sender_first;
	/* The changelist folds the epoll_ctl calls of one loop turn. */
	if ((cfg = event_config_new()) == NULL ||
	    event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST) ||
	    (run.base = event_base_new_with_config(cfg)) == NULL) {
		fprintf(stderr, "greyload: event_base_new failed\n");
		exit(1);
	}
	event_config_free(cfg);
	run.sigint = evsignal_new(run.base, SIGINT, signal_cb, NULL);
	run.sigterm = evsignal_new(run.base, SIGTERM, signal_cb, NULL);
	run.tick = event_new(run.base, -1, EV_PERSIST, tick_cb, NULL);
	run.limit = evtimer_new(run.base, limit_cb, NULL);
	run.hold = evtimer_new(run.base, hold_cb, NULL);
	run.launcher = evtimer_new(run.base, launcher_cb, NULL);
	if (!run.sigint || !run.sigterm || !run.tick || !run.limit ||
	    !run.hold || !run.launcher) {
		fprintf(stderr, "greyload: event_new failed\n");
		exit(1);
	}
	evsignal_add(run.sigint, NULL);
	evsignal_add(run.sigterm, NULL);
	tv = seconds_tv(1);
	evtimer_add(run.tick, &tv);
	tv = seconds_tv(opt.run_limit);
	evtimer_add(run.limit, &tv);

	run.t_start = now();
	launch();
	if (run.active > 0 || more_to_start())
		event_base_dispatch(run.base);
	if (run.t_end == 0)
		run.t_end = now();

	print_summary();
	status = run.failed > 0 ? 1 : 0;

	event_free(run.sigint);
	event_free(run.sigterm);
	event_free(run.tick);
	event_free(run.limit);
	event_free(run.hold);
	event_free(run.launcher);
	event_base_free(run.base);
	libevent_global_shutdown();
	free(run.session_lat.us);
	free(run.banner_lat.us);
	free(run.message);
	return status;
}
