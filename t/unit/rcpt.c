/*
 * t/unit/rcpt.c — unit tests of greyd/rcpt.c against a real Berkeley DB
 * environment in a temporary directory (one per test) and, for the callout,
 * a real SMTP peer: Postfix's smtp-sink on a free loopback port
 * (backend_proxy = none), driven by a real libevent loop.
 *
 * Covers: keys; map syntax (addresses, @domain, domains, comments, a second
 * column, case, CRLF, quoted local parts) and its errors with file:line
 * (bad keys, over-long lines and keys, NUL octets, a missing file; the
 * database unchanged after a failed load); reload (entries removed are
 * purged, admin entries kept, callout entries replaced by the map);
 * spamtrap maps; greydb's import; every branch of rcpt_lookup (postmaster,
 * map, admin, @domain, our domains from the maps and relay_domains, the
 * callout cache fresh and expired, database error through a lock held by
 * another process); the callout: 2xx, 5xx, 4xx, MAIL refused, backend down,
 * disconnect, timeout, one probe shared by identical queries, the
 * connection reused and replaced after CALLOUT_CONN_ERRORS rejections,
 * reopened after the backend closed it (idle, or at RSET), a cancelled
 * query (in flight: its answer still fills the cache), the queue bound,
 * answers never delivered from inside callout_query.  And a micro-benchmark
 * (a TAP comment): rcpt_lookup calls per second with 100,000 map entries,
 * and the time rcpt_load_maps takes for them.
 *
 * Every smtp-sink runs as nobody with PR_SET_PDEATHSIG, is recorded by PID
 * and killed by the test's teardown (and at exit), even when a test fails.
 */
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <limits.h>
#include <netinet/in.h>
#include <pwd.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <db.h>
#include <event2/event.h>

#include "callout.h"
#include "conf.h"
#include "evloop.h"
#include "log.h"
#include "rcpt.h"
#include "trustdb.h"

#define NOW		1795000000LL	/* 2026-11-18 */
#define SMTP_SINK	"/usr/sbin/smtp-sink"
#define MAX_SINKS	4
#define PLEN		256	/* our paths: root (64) + a few names */

struct fixture {
	char root[64];		/* the mkdtemp directory */
	char dir[96];		/* this test's directory (db and files) */
	int seq;
	struct greyd_conf conf;
	bool conf_loaded;
	struct trustdb *db;
	struct event_base *base;
	struct callout *co;	/* made by the first callout_query */
	pid_t sink;		/* smtp-sink, or 0 */
	int sink_port;
	char sink_log[PLEN];
	int sink_connects;	/* connections seen before the test's own */
	int stderr_saved;	/* captured stderr: the original, or -1 */
	char stderr_file[PLEN];
};

/* Answers of callout_query. */
struct answer {
	int calls;
	enum rcpt_verdict v;
	char why[64];
};

static int answers_total;
static pid_t live_sinks[MAX_SINKS];

/* ---- helpers: files, processes ---- */

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void
write_file(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	assert_int_equal(fputs(text, fp) >= 0, 1);
	assert_int_equal(fclose(fp), 0);
}

/* A file in the test's directory; returns its path in buf. */
static const char *
test_file(struct fixture *f, const char *name, const char *text, char *buf,
    size_t len)
{
	snprintf(buf, len, "%s/%s", f->dir, name);
	if (text != NULL)
		write_file(buf, text);
	return buf;
}

static char *
read_all(const char *path)
{
	FILE *fp = fopen(path, "r");
	char *buf = NULL;
	size_t len = 0;

	if (fp == NULL)
		return strdup("");
	assert_int_not_equal(getdelim(&buf, &len, '\0', fp), 0);
	fclose(fp);
	return buf != NULL ? buf : strdup("");
}

static int
count_substr(const char *hay, const char *needle)
{
	int n = 0;

	while ((hay = strstr(hay, needle)) != NULL) {
		n++;
		hay += strlen(needle);
	}
	return n;
}

static void
kill_sink(pid_t pid)
{
	int i, status;

	if (pid <= 0)
		return;
	kill(pid, SIGTERM);
	for (i = 0; i < 100 && waitpid(pid, &status, WNOHANG) == 0; i++)
		usleep(10000);
	if (i == 100) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
	}
	for (i = 0; i < MAX_SINKS; i++)
		if (live_sinks[i] == pid)
			live_sinks[i] = 0;
}

static void
kill_live_sinks(void)
{
	int i;

	for (i = 0; i < MAX_SINKS; i++)
		kill_sink(live_sinks[i]);
}

static int
free_port(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	assert_true(fd >= 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	port = ntohs(sin.sin_port);
	close(fd);
	return port;
}

static bool
port_accepts(int port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	bool ok;

	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ok = connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0;
	close(fd);
	return ok;
}

/* The child: drop to nobody, die with the parent, become smtp-sink. */
static void
sink_exec(const char *log, pid_t parent, char **argv)
{
	struct passwd *pw = getpwnam("nobody");
	int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	if (fd == -1 || dup2(fd, 1) == -1 || dup2(fd, 2) == -1)
		_exit(126);
	if (getuid() == 0 && (pw == NULL || setgroups(0, NULL) == -1 ||
	    setgid(pw->pw_gid) == -1 || setuid(pw->pw_uid) == -1))
		_exit(126);
	/* After the uid change, which would clear it. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) == -1 || getppid() != parent)
		_exit(126);
	execv(SMTP_SINK, argv);
	_exit(127);
}

/* Start smtp-sink -v with the given options (NULL-terminated). */
static void
start_sink(struct fixture *f, const char *const *opts)
{
	char listen[32], *argv[16];
	char *log;
	int i, n = 0, slot;
	pid_t parent = getpid();

	f->sink_port = free_port();
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", f->sink_port);
	snprintf(f->sink_log, sizeof(f->sink_log), "%s/sink.log", f->dir);
	argv[n++] = (char *)SMTP_SINK;
	argv[n++] = (char *)"-v";
	for (i = 0; opts != NULL && opts[i] != NULL && n < 12; i++)
		argv[n++] = (char *)opts[i];
	argv[n++] = listen;
	argv[n++] = (char *)"10";
	argv[n] = NULL;
	for (slot = 0; slot < MAX_SINKS && live_sinks[slot] != 0; slot++)
		;
	assert_true(slot < MAX_SINKS);
	assert_true((f->sink = fork()) != -1);
	if (f->sink == 0)
		sink_exec(f->sink_log, parent, argv);
	live_sinks[slot] = f->sink;
	for (i = 0; i < 500 && !port_accepts(f->sink_port); i++)
		usleep(10000);
	assert_true(i < 500);
	/* port_accepts' own connection shows up in the log too. */
	for (i = 0; i < 200; i++) {
		log = read_all(f->sink_log);
		n = count_substr(log, "disconnect");
		free(log);
		if (n >= 1)
			break;
		usleep(10000);
	}
	f->sink_connects = 1;
}

/* How many lines of the sink's log contain what (the test's own only). */
static int
sink_count(struct fixture *f, const char *what)
{
	char *log = read_all(f->sink_log);
	int n = count_substr(log, what);

	free(log);
	if (strcmp(what, "connect (") == 0)
		n -= f->sink_connects;
	return n;
}

/* stderr (the log) into a file, to read what rcpt.c logged. */
static void
capture_stderr(struct fixture *f)
{
	int fd;

	snprintf(f->stderr_file, sizeof(f->stderr_file), "%s/stderr",
	    f->dir);
	fflush(stderr);
	f->stderr_saved = dup(2);
	fd = open(f->stderr_file, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(f->stderr_saved >= 0 && fd >= 0);
	dup2(fd, 2);
	close(fd);
}

static char *
captured(struct fixture *f)
{
	fflush(stderr);
	return read_all(f->stderr_file);
}

static void
restore_stderr(struct fixture *f)
{
	if (f->stderr_saved < 0)
		return;
	fflush(stderr);
	dup2(f->stderr_saved, 2);
	close(f->stderr_saved);
	f->stderr_saved = -1;
}

/* ---- helpers: configuration, database, loop ---- */

static void
load_conf(struct fixture *f, const char *const *overrides)
{
	char err[CONF_ERRLEN] = "";

	if (f->conf_loaded)
		conf_free(&f->conf);
	f->conf_loaded = false;
	if (conf_load(&f->conf, NULL, overrides, err, sizeof(err)) != 0)
		fail_msg("conf_load: %s", err);
	f->conf_loaded = true;
	conf_install(&f->conf);	/* what callout.c reads */
}

static void
open_db(struct fixture *f)
{
	char err[256] = "", path[PLEN];

	snprintf(path, sizeof(path), "%s/db", f->dir);
	if ((f->db = trustdb_open(path, err, sizeof(err))) == NULL)
		fail_msg("trustdb_open %s: %s", path, err);
}

static void
put_rcpt(struct trustdb *db, const char *key, enum list_origin origin,
    int valid, int64_t checked, int64_t expire)
{
	struct rcpt_rec r = { .checked = checked, .expire = expire,
	    .valid = (uint8_t)valid, .origin = (uint8_t)origin };

	assert_int_equal(trustdb_put_rcpt(db, key, &r), 0);
}

static void
assert_rcpt(struct trustdb *db, const char *key, enum list_origin origin,
    int64_t checked)
{
	struct rcpt_rec r;

	if (trustdb_get_rcpt(db, key, &r) != 0)
		fail_msg("no rcpt record %s", key);
	assert_int_equal(r.origin, origin);
	assert_int_equal(r.checked, checked);
	assert_int_equal(r.valid, 1);
	if (origin != ORIGIN_CALLOUT)
		assert_int_equal(r.expire, 0);
}

static void
assert_no_rcpt(struct trustdb *db, const char *key)
{
	struct rcpt_rec r;

	if (trustdb_get_rcpt(db, key, &r) != TRUSTDB_NOTFOUND)
		fail_msg("unexpected rcpt record %s", key);
}

static long
count_table(struct trustdb *db, enum trustdb_table t)
{
	long n = -1;

	assert_int_equal(trustdb_count(db, t, &n), 0);
	return n;
}

static void
load_ok(struct fixture *f, int64_t now)
{
	char err[CONF_ERRLEN] = "";

	if (rcpt_load_maps(&f->conf, f->db, now, err, sizeof(err)) != 0)
		fail_msg("rcpt_load_maps: %s", err);
}

static void
assert_lookup(struct fixture *f, const char *rcpt, int64_t now,
    enum rcpt_verdict want, const char *want_why)
{
	const char *why = NULL;
	enum rcpt_verdict v = rcpt_lookup(&f->conf, f->db, rcpt, now, &why);

	if (v != want || why == NULL || strcmp(why, want_why) != 0)
		fail_msg("rcpt_lookup(%s) = %s (%s), want %s (%s)", rcpt,
		    rcpt_verdict_name(v), why ? why : "NULL",
		    rcpt_verdict_name(want), want_why);
}

static void
answer_cb(void *arg, enum rcpt_verdict v, const char *why)
{
	struct answer *a = arg;

	a->calls++;
	a->v = v;
	snprintf(a->why, sizeof(a->why), "%s", why);
	answers_total++;
}

/* Run the loop until answers_total reaches want or seconds pass. */
static void
run_until(struct fixture *f, int want, double seconds)
{
	evloop_run_count(f->base, &answers_total, want, seconds);
}

/* The fixture's callout (made on first use, on its loop and database). */
static struct callout *
co_of(struct fixture *f)
{
	if (f->co == NULL)
		assert_non_null(f->co = callout_new(f->base, f->db));
	return f->co;
}

/* A callout setup against 127.0.0.1:port. */
static void
callout_conf(struct fixture *f, int port, const char *timeout)
{
	char backend[64], bt[64];
	const char *ov[] = { backend, "backend_proxy=none",
	    "recipient_verify=backend", "backend_connect_timeout=2s", bt,
	    "rcpt_positive_expiry=7d", "rcpt_negative_expiry=3h",
	    "hostname=greyd.test", NULL };

	snprintf(backend, sizeof(backend), "backend=127.0.0.1:%d", port);
	snprintf(bt, sizeof(bt), "backend_timeout=%s", timeout);
	load_conf(f, ov);
	answers_total = 0;
}

/* ---- fixture ---- */

static int
group_setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	strcpy(f->root, "/tmp/greyd-rcpt.XXXXXX");
	if (mkdtemp(f->root) == NULL)
		return -1;
	/* smtp-sink runs as nobody and writes its log by a descriptor only */
	chmod(f->root, 0755);
	atexit(kill_live_sinks);
	*state = f;
	return 0;
}

static int
group_teardown(void **state)
{
	struct fixture *f = *state;
	int ret = nftw(f->root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);

	free(f);
	return ret;
}

static int
test_setup(void **state)
{
	struct fixture *f = *state;

	snprintf(f->dir, sizeof(f->dir), "%s/t%d", f->root, ++f->seq);
	if (mkdir(f->dir, 0755) != 0)
		return -1;
	f->co = NULL;
	if ((f->base = event_base_new()) == NULL)
		return -1;
	f->sink = 0;
	f->stderr_saved = -1;
	load_conf(f, NULL);
	open_db(f);
	return 0;
}

static int
test_teardown(void **state)
{
	struct fixture *f = *state;

	restore_stderr(f);
	callout_free(f->co);
	f->co = NULL;
	kill_sink(f->sink);
	f->sink = 0;
	trustdb_close(f->db);
	f->db = NULL;
	if (f->conf_loaded)
		conf_free(&f->conf);
	f->conf_loaded = false;
	event_base_free(f->base);
	f->base = NULL;
	return 0;
}

/* ---- keys and names ---- */

static void
test_key_and_names(void **state)
{
	char out[16];

	assert_int_equal(rcpt_key("Bob@Example.COM", out, sizeof(out)), 0);
	assert_string_equal(out, "bob@example.com");
	assert_int_equal(rcpt_key("\xc3\x84x@B.c", out, sizeof(out)), 0);
	assert_string_equal(out, "\xc3\x84x@b.c");	/* ASCII only */
	assert_int_equal(rcpt_key("0123456789abcdef", out, sizeof(out)), -1);
	assert_int_equal(rcpt_key("0123456789abcde", out, sizeof(out)), 0);
	assert_int_equal(rcpt_key("", out, sizeof(out)), 0);
	assert_string_equal(out, "");
	assert_int_equal(rcpt_key("a", out, 0), -1);

	assert_string_equal(rcpt_verdict_name(RCPT_VALID), "valid");
	assert_string_equal(rcpt_verdict_name(RCPT_UNKNOWN), "unknown");
	assert_string_equal(rcpt_verdict_name(RCPT_UNCHECKED), "unchecked");
	assert_string_equal(rcpt_verdict_name(RCPT_TEMPFAIL), "tempfail");
	assert_string_equal(rcpt_verdict_name(RCPT_CALLOUT), "callout");
}

/* ---- map files ---- */

static void
test_map_parse(void **state)
{
	struct fixture *f = *state;
	char p1[PLEN], p2[PLEN], maps[2 * PLEN + 32], *log;
	const char *ov[] = { maps, NULL };

	test_file(f, "r1",
	    "# recipients of example.com\n"
	    "alice@example.com\n"
	    "Bob@Example.COM   OK  # a second column, then a comment\n"
	    "\n"
	    "@CatchAll.Example\n"
	    "receive.example\tanything at all\n"
	    "   indented@example.org\n"
	    "\t# an indented comment\n"
	    "\"quoted.local\"@example.net\n"
	    "carol@sub.example.com #comment\n"
	    "dave@example.com\r\n"
	    "hash#in-local@example.com\n"
	    "no-newline-at-end@example.com", p1, sizeof(p1));
	test_file(f, "r2", "alice@example.com\neve@example.com x y z\n", p2,
	    sizeof(p2));
	snprintf(maps, sizeof(maps), "recipient_maps=%s %s", p1, p2);
	load_conf(f, ov);
	capture_stderr(f);
	load_ok(f, NOW);
	log = captured(f);
	restore_stderr(f);
	assert_non_null(strstr(log,
	    "maps: 10 recipients, 6 domains from 2 files"));
	assert_non_null(strstr(log, "maps: 0 spamtraps"));
	free(log);

	assert_rcpt(f->db, "alice@example.com", ORIGIN_MAP, NOW);
	assert_rcpt(f->db, "bob@example.com", ORIGIN_MAP, NOW);
	assert_rcpt(f->db, "@catchall.example", ORIGIN_MAP, NOW);
	assert_rcpt(f->db, "receive.example", ORIGIN_MAP, NOW);
	assert_rcpt(f->db, "indented@example.org", ORIGIN_MAP, NOW);
	assert_rcpt(f->db, "\"quoted.local\"@example.net", ORIGIN_MAP, NOW);
	assert_rcpt(f->db, "carol@sub.example.com", ORIGIN_MAP, NOW);
	assert_rcpt(f->db, "dave@example.com", ORIGIN_MAP, NOW);
	assert_rcpt(f->db, "hash#in-local@example.com", ORIGIN_MAP, NOW);
	assert_rcpt(f->db, "no-newline-at-end@example.com", ORIGIN_MAP, NOW);
	assert_rcpt(f->db, "eve@example.com", ORIGIN_MAP, NOW);
	/* the domains of addresses and wildcards are our domains */
	assert_rcpt(f->db, "example.com", ORIGIN_MAP, NOW);
	assert_rcpt(f->db, "catchall.example", ORIGIN_MAP, NOW);
	assert_rcpt(f->db, "example.org", ORIGIN_MAP, NOW);
	assert_rcpt(f->db, "example.net", ORIGIN_MAP, NOW);
	assert_rcpt(f->db, "sub.example.com", ORIGIN_MAP, NOW);
	assert_no_rcpt(f->db, "Bob@Example.COM");
	assert_no_rcpt(f->db, "ok");
	assert_int_equal(count_table(f->db, TRUSTDB_RCPT), 16);
}

struct bad_map {
	const char *text;
	const char *err;	/* after "PATH:" */
};

static void
test_map_errors(void **state)
{
	struct fixture *f = *state;
	char long_line[2100], long_comment[1100], long_addr[400];
	char long_domain[300], long_local[100], text[1200];
	char path[PLEN], maps[2 * PLEN + 32], err[CONF_ERRLEN], want[600];
	const char *ov[] = { maps, NULL };
	struct bad_map bad[] = {
		{ "ok@example.com\n@\n", "2: not an address or domain: @" },
		{ "ok@example.com\nbad line with@two@ats\n",
		    "2: not an address or domain: bad" },
		{ "user@localhost\n", "1: not an address or domain: user@localhost" },
		{ "two@ats@example.com\n", "1: not an address or domain" },
		{ "a..b@example.com\n", "1: not an address or domain" },
		{ ".a@example.com\n", "1: not an address or domain" },
		{ "a.@example.com\n", "1: not an address or domain" },
		{ "a@-x.example.com\n", "1: not an address or domain" },
		{ "a@x-.example.com\n", "1: not an address or domain" },
		{ "a@example..com\n", "1: not an address or domain" },
		{ "a@example.com.\n", "1: not an address or domain" },
		{ "a@[192.0.2.1]\n", "1: not an address or domain" },
		{ "\"a b\"@example.com\n", "1: not an address or domain" },
		{ "\"\"@example.com\n", "1: not an address or domain" },
		{ "@@example.com\n", "1: not an address or domain" },
		{ "a\x01@example.com\n", "1: not an address or domain: a?@" },
		{ long_line, "3: line too long (more than 1000 octets)" },
		{ long_addr, "1: address too long (more than 254 octets)" },
		{ long_domain, "1: domain too long (more than 253 octets)" },
		{ long_local, "1: not an address or domain" },
		{ "ok@example.com\nx\0y@example.com\n", "2: NUL octet" },
	};
	size_t i;

	/* 1,000 octets is the limit, not an error */
	memset(long_comment, 'c', 1000);
	long_comment[0] = '#';
	strcpy(long_comment + 1000, "\n");
	snprintf(long_line, sizeof(long_line), "a@example.com\n%s",
	    long_comment);
	i = strlen(long_line);
	memset(long_line + i, 'x', 1001);
	strcpy(long_line + i + 1001, "\n");
	/* 60 + '@' + 199 = 260 octets */
	memset(long_addr, 'a', 60);
	long_addr[60] = '@';
	for (i = 61; i < 260; i++)
		long_addr[i] = (i - 61) % 50 == 49 ? '.' : 'd';
	strcpy(long_addr + 260, "\n");
	for (i = 0; i < 254; i++)
		long_domain[i] = i % 50 == 49 ? '.' : 'd';
	strcpy(long_domain + 254, "\n");
	memset(long_local, 'l', 65);
	strcpy(long_local + 65, "@example.com\n");

	test_file(f, "keep", "keep@example.com\n", path, sizeof(path));
	snprintf(maps, sizeof(maps), "recipient_maps=%s", path);
	load_conf(f, ov);
	load_ok(f, NOW);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		FILE *fp;
		size_t len = strlen(bad[i].text);

		if (strcmp(bad[i].err, "2: NUL octet") == 0)
			len = 31;
		snprintf(path, sizeof(path), "%s/bad%zu", f->dir, i);
		assert_non_null(fp = fopen(path, "w"));
		assert_int_equal(fwrite(bad[i].text, 1, len, fp), len);
		fclose(fp);
		snprintf(maps, sizeof(maps), "recipient_maps=%s/keep %s",
		    f->dir, path);
		load_conf(f, ov);
		err[0] = '\0';
		assert_int_equal(rcpt_load_maps(&f->conf, f->db, NOW + 1, err,
		    sizeof(err)), -1);
		snprintf(want, sizeof(want), "%s:%s", path, bad[i].err);
		if (strncmp(err, want, strlen(want)) != 0)
			fail_msg("case %zu: got \"%s\", want \"%s...\"", i,
			    err, want);
	}
	/* a long comment alone is fine */
	snprintf(text, sizeof(text), "%sok@example.net\n", long_comment);
	test_file(f, "comment", text, path, sizeof(path));
	snprintf(maps, sizeof(maps), "recipient_maps=%s", path);
	load_conf(f, ov);
	err[0] = '\0';
	assert_int_equal(rcpt_import_file(f->db, TRUSTDB_RCPT, path,
	    ORIGIN_ADMIN, NOW, &(long){ 0 }, err, sizeof(err)), 0);

	/* a missing file */
	snprintf(maps, sizeof(maps), "recipient_maps=%s/keep %s/missing",
	    f->dir, f->dir);
	load_conf(f, ov);
	assert_int_equal(rcpt_load_maps(&f->conf, f->db, NOW + 1, err,
	    sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s/missing: No such file or directory",
	    f->dir);
	assert_string_equal(err, want);

	/* a spamtrap must be an address */
	test_file(f, "traps", "trap@example.com\n@example.com\n", path,
	    sizeof(path));
	snprintf(maps, sizeof(maps), "spamtrap_maps=%s", path);
	load_conf(f, ov);
	assert_int_equal(rcpt_load_maps(&f->conf, f->db, NOW + 1, err,
	    sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s:2: a spamtrap must be an address: "
	    "@example.com", path);
	assert_string_equal(err, want);
	test_file(f, "traps", "example.com\n", path, sizeof(path));
	assert_int_equal(rcpt_load_maps(&f->conf, f->db, NOW + 1, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, ":1: a spamtrap must be an address"));

	/* every failed load left the database as it was */
	assert_rcpt(f->db, "keep@example.com", ORIGIN_MAP, NOW);
	assert_rcpt(f->db, "example.com", ORIGIN_MAP, NOW);
	assert_rcpt(f->db, "ok@example.net", ORIGIN_ADMIN, NOW);
	assert_rcpt(f->db, "example.net", ORIGIN_ADMIN, NOW);
	assert_int_equal(count_table(f->db, TRUSTDB_RCPT), 4);
	assert_int_equal(count_table(f->db, TRUSTDB_SPAMTRAP), 0);
}

static void
test_reload(void **state)
{
	struct fixture *f = *state;
	char path[PLEN], maps[2 * PLEN + 32];
	const char *ov[] = { maps, NULL };
	const char *none[] = { "recipient_maps=", NULL };
	struct rcpt_rec r;

	test_file(f, "map", "a@example.com\nb@example.com\nc@example.com\n"
	    "@wild.example\n", path, sizeof(path));
	snprintf(maps, sizeof(maps), "recipient_maps=%s", path);
	load_conf(f, ov);
	put_rcpt(f->db, "admin@example.com", ORIGIN_ADMIN, 1, NOW - 50, 0);
	put_rcpt(f->db, "d@example.com", ORIGIN_CALLOUT, 0, NOW - 5, NOW + 99);
	load_ok(f, NOW);
	assert_int_equal(count_table(f->db, TRUSTDB_RCPT), 8);
	/* the administrator takes b over */
	put_rcpt(f->db, "b@example.com", ORIGIN_ADMIN, 1, NOW + 1, 0);

	test_file(f, "map", "a@example.com\nadmin@example.com\nd@example.com\n",
	    path, sizeof(path));
	load_ok(f, NOW + 10);
	assert_rcpt(f->db, "a@example.com", ORIGIN_MAP, NOW + 10);
	assert_rcpt(f->db, "example.com", ORIGIN_MAP, NOW + 10);
	assert_rcpt(f->db, "b@example.com", ORIGIN_ADMIN, NOW + 1);
	assert_no_rcpt(f->db, "c@example.com");
	assert_no_rcpt(f->db, "@wild.example");
	assert_no_rcpt(f->db, "wild.example");
	/* listed in the map, but added by the administrator: kept as it is */
	assert_rcpt(f->db, "admin@example.com", ORIGIN_ADMIN, NOW - 50);
	/* a cached callout answer gives way to the map */
	assert_rcpt(f->db, "d@example.com", ORIGIN_MAP, NOW + 10);
	assert_int_equal(trustdb_get_rcpt(f->db, "d@example.com", &r), 0);
	assert_int_equal(r.expire, 0);
	assert_int_equal(count_table(f->db, TRUSTDB_RCPT), 5);

	/* no maps at all: only the administrator's entries stay */
	load_conf(f, none);
	load_ok(f, NOW + 20);
	assert_rcpt(f->db, "admin@example.com", ORIGIN_ADMIN, NOW - 50);
	assert_rcpt(f->db, "b@example.com", ORIGIN_ADMIN, NOW + 1);
	assert_int_equal(count_table(f->db, TRUSTDB_RCPT), 2);
}

static void
test_spamtrap_maps(void **state)
{
	struct fixture *f = *state;
	char path[PLEN], maps[2 * PLEN + 32], *log;
	const char *ov[] = { maps, NULL };
	struct spamtrap_rec s;

	test_file(f, "traps", "# traps\nTrap1@Example.COM\n"
	    "trap2@example.com   second column\n", path, sizeof(path));
	snprintf(maps, sizeof(maps), "spamtrap_maps=%s", path);
	load_conf(f, ov);
	capture_stderr(f);
	load_ok(f, NOW);
	log = captured(f);
	restore_stderr(f);
	assert_non_null(strstr(log, "maps: 2 spamtraps"));
	free(log);
	assert_true(rcpt_is_spamtrap(f->db, "TRAP1@example.com"));
	assert_true(rcpt_is_spamtrap(f->db, "trap2@EXAMPLE.com"));
	assert_false(rcpt_is_spamtrap(f->db, "alice@example.com"));
	assert_false(rcpt_is_spamtrap(f->db, "example.com"));
	assert_int_equal(trustdb_get_spamtrap(f->db, "trap1@example.com", &s), 0);
	assert_int_equal(s.origin, ORIGIN_MAP);
	assert_int_equal(s.added, NOW);
	/* spamtraps are not recipients, nor do they make domains ours */
	assert_int_equal(count_table(f->db, TRUSTDB_RCPT), 0);

	s = (struct spamtrap_rec){ .added = NOW + 1, .origin = ORIGIN_ADMIN };
	assert_int_equal(trustdb_put_spamtrap(f->db, "admin-trap@example.com",
	    &s), 0);
	assert_int_equal(trustdb_put_spamtrap(f->db, "trap2@example.com", &s),
	    0);
	test_file(f, "traps", "trap2@example.com\ntrap3@example.com\n", path,
	    sizeof(path));
	load_ok(f, NOW + 10);
	assert_false(rcpt_is_spamtrap(f->db, "trap1@example.com"));
	assert_true(rcpt_is_spamtrap(f->db, "trap3@example.com"));
	assert_true(rcpt_is_spamtrap(f->db, "admin-trap@example.com"));
	assert_int_equal(trustdb_get_spamtrap(f->db, "trap2@example.com", &s), 0);
	assert_int_equal(s.origin, ORIGIN_ADMIN);
	assert_int_equal(trustdb_get_spamtrap(f->db, "trap3@example.com", &s), 0);
	assert_int_equal(s.origin, ORIGIN_MAP);
	assert_int_equal(s.added, NOW + 10);
	assert_int_equal(count_table(f->db, TRUSTDB_SPAMTRAP), 3);
}

/* greydb import: ORIGIN_ADMIN entries that no map load removes. */
static void
test_import(void **state)
{
	struct fixture *f = *state;
	char path[PLEN], map[PLEN], maps[2 * PLEN + 32];
	char err[CONF_ERRLEN] = "", want[PLEN + 64];
	const char *ov[] = { maps, NULL };
	struct spamtrap_rec s;
	long count = -1;

	test_file(f, "import", "X@Example.com\n@wild.example\nx@example.com\n",
	    path, sizeof(path));
	assert_int_equal(rcpt_import_file(f->db, TRUSTDB_RCPT, path,
	    ORIGIN_ADMIN, NOW, &count, err, sizeof(err)), 0);
	assert_int_equal(count, 2);	/* the entries listed, not their domains */
	assert_rcpt(f->db, "x@example.com", ORIGIN_ADMIN, NOW);
	assert_rcpt(f->db, "example.com", ORIGIN_ADMIN, NOW);
	assert_rcpt(f->db, "@wild.example", ORIGIN_ADMIN, NOW);
	assert_rcpt(f->db, "wild.example", ORIGIN_ADMIN, NOW);

	/* a map load neither replaces nor purges them */
	test_file(f, "map", "x@example.com\ny@example.com\n", map, sizeof(map));
	snprintf(maps, sizeof(maps), "recipient_maps=%s", map);
	load_conf(f, ov);
	load_ok(f, NOW + 10);
	assert_rcpt(f->db, "x@example.com", ORIGIN_ADMIN, NOW);
	assert_rcpt(f->db, "y@example.com", ORIGIN_MAP, NOW + 10);
	test_file(f, "map", "", map, sizeof(map));
	load_ok(f, NOW + 20);
	assert_no_rcpt(f->db, "y@example.com");
	assert_int_equal(count_table(f->db, TRUSTDB_RCPT), 4);

	/* an admin import takes over a map entry */
	test_file(f, "map", "z@example.com\n", map, sizeof(map));
	load_ok(f, NOW + 30);
	test_file(f, "import", "z@example.com\n", path, sizeof(path));
	assert_int_equal(rcpt_import_file(f->db, TRUSTDB_RCPT, path,
	    ORIGIN_ADMIN, NOW + 31, &count, err, sizeof(err)), 0);
	assert_rcpt(f->db, "z@example.com", ORIGIN_ADMIN, NOW + 31);

	test_file(f, "itraps", "t1@example.com\nT2@example.com\n", path,
	    sizeof(path));
	assert_int_equal(rcpt_import_file(f->db, TRUSTDB_SPAMTRAP, path,
	    ORIGIN_ADMIN, NOW, &count, err, sizeof(err)), 0);
	assert_int_equal(count, 2);
	assert_int_equal(trustdb_get_spamtrap(f->db, "t2@example.com", &s), 0);
	assert_int_equal(s.origin, ORIGIN_ADMIN);

	/* a bad file imports nothing */
	test_file(f, "ibad", "new@example.com\nnot-an-address\n", path,
	    sizeof(path));
	count = -1;
	assert_int_equal(rcpt_import_file(f->db, TRUSTDB_RCPT, path,
	    ORIGIN_ADMIN, NOW, &count, err, sizeof(err)), -1);
	assert_int_equal(count, 0);
	snprintf(want, sizeof(want), "%s:2: not an address or domain: "
	    "not-an-address", path);
	assert_string_equal(err, want);
	assert_no_rcpt(f->db, "new@example.com");
	assert_int_equal(rcpt_import_file(f->db, TRUSTDB_GREY, path,
	    ORIGIN_ADMIN, NOW, &count, err, sizeof(err)), -1);
}

/* ---- lookup ---- */

static void
test_lookup(void **state)
{
	struct fixture *f = *state;
	char path[PLEN], maps[2 * PLEN + 32], longaddr[300];
	const char *ov[] = { maps, "relay_domains=Relay.Example, other.example",
	    NULL };

	test_file(f, "map", "alice@example.com\n@catchall.example\n"
	    "receive.example\n", path, sizeof(path));
	snprintf(maps, sizeof(maps), "recipient_maps=%s", path);
	load_conf(f, ov);
	load_ok(f, NOW);
	put_rcpt(f->db, "admin@example.com", ORIGIN_ADMIN, 1, NOW, 0);
	put_rcpt(f->db, "yes@example.com", ORIGIN_CALLOUT, 1, NOW, NOW + 100);
	put_rcpt(f->db, "no@example.com", ORIGIN_CALLOUT, 0, NOW, NOW + 100);
	put_rcpt(f->db, "old@example.com", ORIGIN_CALLOUT, 1, NOW - 100, NOW);
	put_rcpt(f->db, "oldno@elsewhere.org", ORIGIN_CALLOUT, 0, NOW - 9,
	    NOW - 1);

	assert_lookup(f, "Postmaster", NOW, RCPT_VALID, "postmaster");
	assert_lookup(f, "postmaster@Example.com", NOW, RCPT_VALID,
	    "postmaster");
	assert_lookup(f, "postmaster@elsewhere.org", NOW, RCPT_VALID,
	    "postmaster");
	assert_lookup(f, "bob", NOW, RCPT_UNKNOWN, "no domain");
	assert_lookup(f, "ALICE@Example.COM", NOW, RCPT_VALID, "map");
	assert_lookup(f, "admin@example.com", NOW, RCPT_VALID, "admin");
	assert_lookup(f, "anyone@CatchAll.example", NOW, RCPT_VALID,
	    "map @domain");
	assert_lookup(f, "yes@example.com", NOW, RCPT_VALID, "cache");
	assert_lookup(f, "no@example.com", NOW, RCPT_UNKNOWN, "cache");
	/* an expired answer counts for nothing */
	assert_lookup(f, "old@example.com", NOW, RCPT_UNKNOWN,
	    "not in recipient maps");
	assert_lookup(f, "oldno@elsewhere.org", NOW, RCPT_UNCHECKED,
	    "not our domain");
	assert_lookup(f, "yes@example.com", NOW + 100, RCPT_UNKNOWN,
	    "not in recipient maps");
	assert_lookup(f, "bob@example.com", NOW, RCPT_UNKNOWN,
	    "not in recipient maps");
	assert_lookup(f, "x@receive.example", NOW, RCPT_UNKNOWN,
	    "not in recipient maps");
	assert_lookup(f, "x@relay.example", NOW, RCPT_UNKNOWN,
	    "not in recipient maps");
	assert_lookup(f, "x@OTHER.example", NOW, RCPT_UNKNOWN,
	    "not in recipient maps");
	assert_lookup(f, "x@sub.relay.example", NOW, RCPT_UNCHECKED,
	    "not our domain");
	assert_lookup(f, "x@elsewhere.org", NOW, RCPT_UNCHECKED,
	    "not our domain");
	memset(longaddr, 'a', 280);
	strcpy(longaddr + 280, "@example.com");
	assert_lookup(f, longaddr, NOW, RCPT_UNKNOWN, "address too long");

	f->conf.recipient_verify = RCPT_VERIFY_BACKEND;
	assert_lookup(f, "alice@example.com", NOW, RCPT_VALID, "map");
	assert_lookup(f, "x@catchall.example", NOW, RCPT_VALID, "map @domain");
	assert_lookup(f, "no@example.com", NOW, RCPT_UNKNOWN, "cache");
	assert_lookup(f, "old@example.com", NOW, RCPT_CALLOUT, "callout");
	assert_lookup(f, "x@receive.example", NOW, RCPT_CALLOUT, "callout");
	assert_lookup(f, "x@relay.example", NOW, RCPT_CALLOUT, "callout");
	assert_lookup(f, "x@elsewhere.org", NOW, RCPT_CALLOUT,
	    "callout (not our domain)");
	assert_lookup(f, "Postmaster", NOW, RCPT_VALID, "postmaster");

	/* nothing configured: greyd as before, greylisting decides */
	load_conf(f, (const char *[]){ "recipient_maps=", NULL });
	load_ok(f, NOW + 1);
	assert_lookup(f, "alice@example.com", NOW, RCPT_UNCHECKED,
	    "not our domain");
	assert_lookup(f, "anyone@catchall.example", NOW, RCPT_UNCHECKED,
	    "not our domain");
}

/* A process holding a write lock on key in rcpt.db until rfd closes. */
static int
child_lock_holder(const char *dir, const char *key, int wfd, int rfd)
{
	DB_ENV *env;
	DB *d;
	DB_TXN *txn;
	DBT k, v;
	char val = 'x';

	if (db_env_create(&env, 0) != 0 ||
	    env->open(env, dir, DB_CREATE | DB_INIT_TXN | DB_INIT_LOCK |
	    DB_INIT_LOG | DB_INIT_MPOOL | DB_REGISTER | DB_RECOVER,
	    0600) != 0 ||
	    db_create(&d, env, 0) != 0 ||
	    d->open(d, NULL, "rcpt.db", NULL, DB_BTREE, DB_AUTO_COMMIT,
	    0) != 0 ||
	    env->txn_begin(env, NULL, &txn, 0) != 0)
		return 20;
	memset(&k, 0, sizeof(k));
	memset(&v, 0, sizeof(v));
	k.data = (void *)key;
	k.size = (u_int32_t)strlen(key);
	v.data = &val;
	v.size = 1;
	if (d->put(d, txn, &k, &v, 0) != 0 || write(wfd, "l", 1) != 1)
		return 21;
	while (read(rfd, &val, 1) > 0)
		;
	txn->abort(txn);
	d->close(d, 0);
	env->close(env, 0);
	return 0;
}

/* The database fails (a lock greyd cannot get): tempfail, never a guess. */
static void
test_lookup_db_error(void **state)
{
	struct fixture *f = *state;
	char path[PLEN], dbdir[PLEN], maps[2 * PLEN + 32];
	char err[CONF_ERRLEN] = "", c;
	const char *ov[] = { maps, NULL };
	int up[2], down[2], status;
	pid_t pid;

	test_file(f, "map", "alice@example.com\nlocked@example.com\n", path,
	    sizeof(path));
	snprintf(maps, sizeof(maps), "recipient_maps=%s", path);
	load_conf(f, ov);
	snprintf(dbdir, sizeof(dbdir), "%s/db", f->dir);
	assert_int_equal(pipe(up), 0);
	assert_int_equal(pipe(down), 0);
	assert_true((pid = fork()) != -1);
	if (pid == 0) {
		close(up[0]);
		close(down[1]);
		_exit(child_lock_holder(dbdir, "locked@example.com", up[1],
		    down[0]));
	}
	close(up[1]);
	close(down[0]);
	assert_int_equal(read(up[0], &c, 1), 1);
	close(up[0]);

	assert_lookup(f, "locked@example.com", NOW, RCPT_TEMPFAIL,
	    "database error");
	assert_int_equal(rcpt_load_maps(&f->conf, f->db, NOW, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "database error"));

	close(down[1]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	load_ok(f, NOW);
	assert_lookup(f, "locked@example.com", NOW, RCPT_VALID, "map");
}

/* ---- callout against smtp-sink ---- */

static void
assert_cached(struct fixture *f, const char *key, int valid, int expiry)
{
	struct rcpt_rec r;
	int64_t now = (int64_t)time(NULL);

	if (trustdb_get_rcpt(f->db, key, &r) != 0)
		fail_msg("no cached answer for %s", key);
	assert_int_equal(r.origin, ORIGIN_CALLOUT);
	assert_int_equal(r.valid, valid);
	assert_true(r.checked >= now - 5 && r.checked <= now);
	assert_int_equal(r.expire - r.checked, expiry);
}

static void
test_callout_valid(void **state)
{
	struct fixture *f = *state;
	struct answer a1 = { 0 }, a2 = { 0 }, a3 = { 0 }, a4 = { 0 };
	char *log;

	start_sink(f, NULL);
	callout_conf(f, f->sink_port, "5s");
	capture_stderr(f);
	assert_non_null(callout_query(co_of(f), "A@Example.com", answer_cb, &a1));
	assert_non_null(callout_query(co_of(f), "b@example.com", answer_cb, &a2));
	assert_non_null(callout_query(co_of(f), "a@example.com", answer_cb, &a3));
	/* answers come from the loop only */
	assert_int_equal(answers_total, 0);
	run_until(f, 3, 5);
	assert_int_equal(a1.calls, 1);
	assert_int_equal(a2.calls, 1);
	assert_int_equal(a3.calls, 1);
	assert_int_equal(a1.v, RCPT_VALID);
	assert_int_equal(a2.v, RCPT_VALID);
	assert_int_equal(a3.v, RCPT_VALID);
	assert_string_equal(a1.why, "callout");
	assert_cached(f, "a@example.com", 1, 7 * 86400);
	assert_cached(f, "b@example.com", 1, 7 * 86400);
	assert_lookup(f, "A@example.com", (int64_t)time(NULL), RCPT_VALID,
	    "cache");

	/* the same connection answers a later query */
	assert_non_null(callout_query(co_of(f), "c@example.com", answer_cb, &a4));
	run_until(f, 4, 5);
	assert_int_equal(a4.v, RCPT_VALID);
	run_until(f, 99, 0.2);		/* the last RSET leaves */
	log = captured(f);
	restore_stderr(f);
	assert_non_null(strstr(log,
	    "CALLOUT <A@Example.com> reply=\"250 2.1.5 Ok\" valid"));
	free(log);
	assert_int_equal(sink_count(f, "connect ("), 1);
	assert_int_equal(sink_count(f, "EHLO greyd.test"), 1);
	/* one probe for the two queries of a@example.com */
	assert_int_equal(sink_count(f, "RCPT TO:<"), 3);
	assert_int_equal(sink_count(f, "MAIL FROM:<>"), 3);
	assert_int_equal(sink_count(f, "RSET"), 3);
	/* callout_free closes it (QUIT) */
	callout_free(f->co);
	f->co = NULL;
	usleep(200000);
	assert_int_equal(sink_count(f, "QUIT"), 1);
}

/* 5xx: unknown, cached; the connection is replaced every 5 rejections. */
static void
test_callout_unknown(void **state)
{
	struct fixture *f = *state;
	const char *opts[] = { "-f", "RCPT", NULL };
	struct answer a[12];
	char addr[64];
	int i;

	memset(a, 0, sizeof(a));
	start_sink(f, opts);
	callout_conf(f, f->sink_port, "5s");
	for (i = 0; i < 12; i++) {
		snprintf(addr, sizeof(addr), "u%d@example.com", i);
		assert_non_null(callout_query(co_of(f), addr, answer_cb, &a[i]));
	}
	run_until(f, 12, 10);
	for (i = 0; i < 12; i++) {
		assert_int_equal(a[i].calls, 1);
		assert_int_equal(a[i].v, RCPT_UNKNOWN);
	}
	assert_cached(f, "u0@example.com", 0, 3 * 3600);
	assert_cached(f, "u11@example.com", 0, 3 * 3600);
	assert_lookup(f, "U3@example.com", (int64_t)time(NULL), RCPT_UNKNOWN,
	    "cache");
	assert_int_equal(sink_count(f, "RCPT TO:<"), 12);
	assert_int_equal(sink_count(f, "connect ("), 3);
}

/* 4xx: tempfail for that recipient only, not cached, connection kept. */
static void
test_callout_tempfail(void **state)
{
	struct fixture *f = *state;
	const char *opts[] = { "-r", "RCPT", NULL };
	struct answer a1 = { 0 }, a2 = { 0 }, a3 = { 0 };
	char *log;

	start_sink(f, opts);
	callout_conf(f, f->sink_port, "5s");
	capture_stderr(f);
	assert_non_null(callout_query(co_of(f), "t1@example.com", answer_cb, &a1));
	assert_non_null(callout_query(co_of(f), "t2@example.com", answer_cb, &a2));
	assert_non_null(callout_query(co_of(f), "t3@example.com", answer_cb, &a3));
	run_until(f, 3, 5);
	log = captured(f);
	restore_stderr(f);
	assert_int_equal(a1.v, RCPT_TEMPFAIL);
	assert_int_equal(a2.v, RCPT_TEMPFAIL);
	assert_int_equal(a3.v, RCPT_TEMPFAIL);
	assert_non_null(strstr(log, "CALLOUT <t2@example.com> reply=\"450 4.3.0 "
	    "Error: command failed\" tempfail"));
	free(log);
	assert_no_rcpt(f->db, "t1@example.com");
	assert_int_equal(sink_count(f, "RCPT TO:<"), 3);
	assert_int_equal(sink_count(f, "connect ("), 1);
}

/* MAIL FROM:<> refused: every waiting query tempfails. */
static void
test_callout_mail_refused(void **state)
{
	struct fixture *f = *state;
	const char *opts[] = { "-f", "MAIL", NULL };
	struct answer a1 = { 0 }, a2 = { 0 };

	start_sink(f, opts);
	callout_conf(f, f->sink_port, "5s");
	assert_non_null(callout_query(co_of(f), "m1@example.com", answer_cb, &a1));
	assert_non_null(callout_query(co_of(f), "m2@example.com", answer_cb, &a2));
	run_until(f, 2, 5);
	assert_int_equal(a1.v, RCPT_TEMPFAIL);
	assert_int_equal(a2.v, RCPT_TEMPFAIL);
	assert_string_equal(a1.why, "backend refused MAIL FROM:<>");
	assert_no_rcpt(f->db, "m1@example.com");
	assert_int_equal(sink_count(f, "RCPT TO:<"), 0);
}

/* Nothing listens: tempfail, delivered from the loop, not cached. */
static void
test_callout_down(void **state)
{
	struct fixture *f = *state;
	struct answer a1 = { 0 }, a2 = { 0 }, a3 = { 0 };

	callout_conf(f, free_port(), "5s");
	assert_non_null(callout_query(co_of(f), "d1@example.com", answer_cb, &a1));
	assert_non_null(callout_query(co_of(f), "d2@example.com", answer_cb, &a2));
	assert_int_equal(answers_total, 0);
	run_until(f, 2, 5);
	assert_int_equal(a1.v, RCPT_TEMPFAIL);
	assert_int_equal(a2.v, RCPT_TEMPFAIL);
	assert_string_equal(a1.why, "backend unavailable");
	assert_no_rcpt(f->db, "d1@example.com");
	/* the next query tries again */
	assert_non_null(callout_query(co_of(f), "d3@example.com", answer_cb, &a3));
	assert_int_equal(answers_total, 2);
	run_until(f, 3, 5);
	assert_int_equal(a3.v, RCPT_TEMPFAIL);
}

/* The backend drops a fresh connection at RCPT: all waiting tempfail. */
static void
test_callout_disconnect(void **state)
{
	struct fixture *f = *state;
	const char *opts[] = { "-q", "RCPT", NULL };
	struct answer a1 = { 0 }, a2 = { 0 };

	start_sink(f, opts);
	callout_conf(f, f->sink_port, "5s");
	assert_non_null(callout_query(co_of(f), "q1@example.com", answer_cb, &a1));
	assert_non_null(callout_query(co_of(f), "q2@example.com", answer_cb, &a2));
	run_until(f, 2, 5);
	assert_int_equal(a1.v, RCPT_TEMPFAIL);
	assert_int_equal(a2.v, RCPT_TEMPFAIL);
	assert_int_equal(sink_count(f, "RCPT TO:<"), 1);
}

/* The backend answers too slowly: tempfail after backend_timeout. */
static void
test_callout_timeout(void **state)
{
	struct fixture *f = *state;
	const char *opts[] = { "-W", "RCPT:4", NULL };
	struct answer a1 = { 0 };
	time_t t0;

	start_sink(f, opts);
	callout_conf(f, f->sink_port, "1s");
	t0 = time(NULL);
	assert_non_null(callout_query(co_of(f), "slow@example.com", answer_cb,
	    &a1));
	run_until(f, 1, 5);
	assert_int_equal(a1.calls, 1);
	assert_int_equal(a1.v, RCPT_TEMPFAIL);
	assert_true(time(NULL) - t0 <= 3);
	assert_no_rcpt(f->db, "slow@example.com");
}

/*
 * The backend closes connections: while idle (its command timeout: the
 * next query opens a new one), or after answering RSET with nothing (a
 * reused connection gets a second chance: every query is answered).
 */
static void
test_callout_reconnect(void **state)
{
	struct fixture *f = *state;
	const char *idle[] = { "-t", "1", NULL }, *rset[] = { "-q", "RSET",
	    NULL };
	struct answer a[4];
	char addr[64];
	int i;

	memset(a, 0, sizeof(a));
	start_sink(f, idle);
	callout_conf(f, f->sink_port, "5s");
	assert_non_null(callout_query(co_of(f), "i1@example.com", answer_cb,
	    &a[0]));
	run_until(f, 1, 5);
	usleep(1500000);
	run_until(f, 99, 0.2);		/* the relay sees the close */
	assert_non_null(callout_query(co_of(f), "i2@example.com", answer_cb,
	    &a[1]));
	run_until(f, 2, 5);
	assert_int_equal(a[0].v, RCPT_VALID);
	assert_int_equal(a[1].v, RCPT_VALID);
	assert_int_equal(sink_count(f, "connect ("), 2);
	callout_free(f->co);
	f->co = NULL;
	kill_sink(f->sink);

	memset(a, 0, sizeof(a));
	start_sink(f, rset);
	callout_conf(f, f->sink_port, "5s");
	for (i = 0; i < 3; i++) {
		snprintf(addr, sizeof(addr), "r%d@example.com", i);
		assert_non_null(callout_query(co_of(f), addr, answer_cb, &a[i]));
	}
	run_until(f, 3, 5);
	for (i = 0; i < 3; i++)
		assert_int_equal(a[i].v, RCPT_VALID);
	assert_int_equal(sink_count(f, "RCPT TO:<"), 3);
	assert_int_equal(sink_count(f, "connect ("), 3);
}

/* A callback that cancels another query and asks about c5. */
struct canceller {
	struct callout *co;
	struct callout_query *other;
	struct answer *next;
	int calls;
};

static void
cancel_cb(void *arg, enum rcpt_verdict v, const char *why)
{
	struct canceller *cc = arg;

	cc->calls++;
	answers_total++;
	callout_cancel(cc->other);
	assert_non_null(callout_query(cc->co, "c5@example.com", answer_cb,
	    cc->next));
}

/* A cancelled query is never answered; one in flight still fills the cache. */
static void
test_callout_cancel(void **state)
{
	struct fixture *f = *state;
	const char *opts[] = { "-W", "RCPT:1", NULL };
	struct answer a1 = { 0 }, a2 = { 0 }, a3 = { 0 };
	struct callout_query *q1, *q3;
	struct canceller cc;

	start_sink(f, opts);
	callout_conf(f, f->sink_port, "5s");
	assert_non_null(q1 = callout_query(co_of(f), "c1@example.com", answer_cb,
	    &a1));
	assert_non_null(callout_query(co_of(f), "c2@example.com", answer_cb, &a2));
	assert_non_null(q3 = callout_query(co_of(f), "c3@example.com", answer_cb,
	    &a3));
	callout_cancel(q3);		/* waiting: dropped at once */
	run_until(f, 99, 0.5);		/* c1's RCPT is in flight */
	assert_int_equal(sink_count(f, "RCPT TO:<c1@example.com>"), 1);
	callout_cancel(q1);
	run_until(f, 1, 5);
	assert_int_equal(a1.calls, 0);
	assert_int_equal(a2.calls, 1);
	assert_int_equal(a3.calls, 0);
	assert_int_equal(a2.v, RCPT_VALID);
	assert_cached(f, "c1@example.com", 1, 7 * 86400);
	assert_int_equal(sink_count(f, "RCPT TO:<c3@example.com>"), 0);

	/*
	 * Answered, then cancelled before its delivery: the first answer's
	 * callback cancels the second query of the same probe and asks anew.
	 */
	memset(&cc, 0, sizeof(cc));
	cc.co = co_of(f);
	assert_non_null(callout_query(co_of(f), "c4@example.com", cancel_cb,
	    &cc));
	assert_non_null(cc.other = callout_query(co_of(f), "C4@example.com",
	    answer_cb, &a3));
	a1 = (struct answer){ 0 };
	cc.next = &a1;
	answers_total = 0;
	run_until(f, 2, 5);
	assert_int_equal(cc.calls, 1);
	assert_int_equal(a3.calls, 0);
	assert_int_equal(a1.calls, 1);
	assert_int_equal(a1.v, RCPT_VALID);
	assert_int_equal(sink_count(f, "RCPT TO:<c5@example.com>"), 1);
}

/* At most 1,000 waiting queries; free drops them without calling back. */
static void
test_callout_queue_bound(void **state)
{
	struct fixture *f = *state;
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);
	struct answer a = { 0 };
	char addr[64];
	int fd = socket(AF_INET, SOCK_STREAM, 0), i;

	/* a backend that accepts the connection and never says a word */
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(fd, 5), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	callout_conf(f, ntohs(sin.sin_port), "30s");
	assert_null(callout_query(co_of(f), "bad\r\n@example.com", answer_cb,
	    &a));
	assert_null(callout_query(co_of(f), "<a>@example.com", answer_cb, &a));
	for (i = 0; i < 1000; i++) {
		snprintf(addr, sizeof(addr), "q%d@example.com", i);
		assert_non_null(callout_query(co_of(f), addr, answer_cb, &a));
	}
	assert_null(callout_query(co_of(f), "one-more@example.com", answer_cb,
	    &a));
	run_until(f, 1, 0.3);
	callout_free(f->co);
	f->co = NULL;
	run_until(f, 1, 0.1);
	assert_int_equal(a.calls, 0);
	close(fd);
}

/* ---- micro-benchmark ---- */

static void
test_bench(void **state)
{
	struct fixture *f = *state;
	char path[PLEN], maps[2 * PLEN + 32], addr[64];
	const char *ov[] = { maps, NULL };
	const char *why;
	struct timeval t0;
	double load, t;
	long n, hits = 0;
	FILE *fp;
	int i;

	test_file(f, "big", NULL, path, sizeof(path));
	assert_non_null(fp = fopen(path, "w"));
	for (i = 0; i < 100000; i++)
		fprintf(fp, "user%d@d%d.example.com\n", i, i % 100);
	fclose(fp);
	snprintf(maps, sizeof(maps), "recipient_maps=%s", path);
	load_conf(f, ov);
	gettimeofday(&t0, NULL);
	load_ok(f, NOW);
	load = since(&t0);
	assert_int_equal(count_table(f->db, TRUSTDB_RCPT), 100100);

	/* listed, unknown of our domains, and not ours: a third each */
	gettimeofday(&t0, NULL);
	for (n = 0; (n & 1023) != 0 || since(&t0) < 1.0; n++) {
		switch (n % 3) {
		case 0:
			snprintf(addr, sizeof(addr), "User%ld@d%ld.example.com",
			    (n * 7919) % 100000, ((n * 7919) % 100000) % 100);
			break;
		case 1:
			snprintf(addr, sizeof(addr), "nobody%ld@d%ld.example.com",
			    n, n % 100);
			break;
		default:
			snprintf(addr, sizeof(addr), "x%ld@elsewhere.org", n);
			break;
		}
		hits += rcpt_lookup(&f->conf, f->db, addr, NOW, &why) ==
		    RCPT_VALID;
	}
	t = since(&t0);
	assert_int_equal(hits, (n + 2) / 3);
	printf("# rcpt_lookup: %.0f/s (100000-entry map); load: %.2f s\n",
	    (double)n / t, load);
	fflush(stdout);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_key_and_names),
#define T(fn) cmocka_unit_test_setup_teardown(fn, test_setup, test_teardown)
		T(test_map_parse),
		T(test_map_errors),
		T(test_reload),
		T(test_spamtrap_maps),
		T(test_import),
		T(test_lookup),
		T(test_lookup_db_error),
		T(test_callout_valid),
		T(test_callout_unknown),
		T(test_callout_tempfail),
		T(test_callout_mail_refused),
		T(test_callout_down),
		T(test_callout_disconnect),
		T(test_callout_timeout),
		T(test_callout_reconnect),
		T(test_callout_cancel),
		T(test_callout_queue_bound),
		T(test_bench),
#undef T
	};

	log_init("rcpt.t", 1);
	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
