/*
 * t/unit/conf.c — unit tests for greyd.conf loading and printing
 * (greyd/conf.c): defaults, every value type, main.cf syntax (comments,
 * continuation lines, later-wins), $name / ${name} expansion and its errors,
 * -o overrides, file:line error messages, and that conf_print's output reads
 * back to the same settings.  Each test writes its files into a fresh
 * mkdtemp directory that teardown removes.  Output is TAP, for prove.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"

#define NSETTINGS	68	/* settings conf_print writes */

struct fixture {
	char dir[64];
	char path[PATH_MAX];	/* the greyd.conf the test wrote last */
	char err[CONF_ERRLEN];
	struct greyd_conf c;
};

static int
setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));

	if (fx == NULL)
		return -1;
	strlcpy(fx->dir, "/tmp/greyd-conf-XXXXXX", sizeof(fx->dir));
	if (mkdtemp(fx->dir) == NULL) {
		free(fx);
		return -1;
	}
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *fx = *state;
	char path[PATH_MAX];
	struct dirent *de;
	DIR *d;

	conf_free(&fx->c);
	if ((d = opendir(fx->dir)) != NULL) {
		while ((de = readdir(d)) != NULL) {
			if (strcmp(de->d_name, ".") == 0 ||
			    strcmp(de->d_name, "..") == 0)
				continue;
			snprintf(path, sizeof(path), "%s/%s", fx->dir,
			    de->d_name);
			if (rmdir(path) == -1)
				unlink(path);
		}
		closedir(d);
	}
	rmdir(fx->dir);
	free(fx);
	return 0;
}

/* Write text (len bytes) to dir/name; the path goes to out. */
static void
write_file(struct fixture *fx, const char *name, const char *text,
    size_t len, char *out, size_t outlen)
{
	FILE *fp;

	snprintf(out, outlen, "%s/%s", fx->dir, name);
	fp = fopen(out, "w");
	assert_non_null(fp);
	assert_int_equal(fwrite(text, 1, len, fp), len);
	assert_int_equal(fclose(fp), 0);
}

static int
load_text(struct fixture *fx, const char *text)
{
	write_file(fx, "greyd.conf", text, strlen(text), fx->path,
	    sizeof(fx->path));
	return conf_load(&fx->c, fx->path, NULL, fx->err, sizeof(fx->err));
}

static void
load_ok(struct fixture *fx, const char *text)
{
	if (load_text(fx, text) != 0)
		fail_msg("conf_load: %s", fx->err);
}

/* The load must fail with "PATH:" followed by want. */
static void
load_fails(struct fixture *fx, const char *text, const char *want)
{
	char full[CONF_ERRLEN + PATH_MAX];

	assert_int_equal(load_text(fx, text), -1);
	snprintf(full, sizeof(full), "%s:%s", fx->path, want);
	assert_string_equal(fx->err, full);
	assert_null(fx->c.allow_clients);
	assert_int_equal(fx->c.nallow_clients, 0);
}

static void
override_fails(struct fixture *fx, const char *o, const char *want)
{
	const char *const ov[] = { o, NULL };

	assert_int_equal(conf_load(&fx->c, NULL, ov, fx->err,
	    sizeof(fx->err)), -1);
	assert_string_equal(fx->err, want);
}

static in_port_t
port_of(const struct conf_sockaddr *a)
{
	if (a->ss.ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)&a->ss)->sin6_port);
	return ntohs(((const struct sockaddr_in *)&a->ss)->sin_port);
}

static void
assert_ipv4(const struct conf_sockaddr *a, const char *addr, in_port_t port)
{
	const struct sockaddr_in *sin = (const struct sockaddr_in *)&a->ss;
	char buf[INET_ADDRSTRLEN];

	assert_int_equal(a->ss.ss_family, AF_INET);
	assert_int_equal(a->len, sizeof(struct sockaddr_in));
	assert_non_null(inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof(buf)));
	assert_string_equal(buf, addr);
	assert_int_equal(port_of(a), port);
}

static void
assert_ipv6(const struct conf_sockaddr *a, const char *addr, in_port_t port)
{
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&a->ss;
	char buf[INET6_ADDRSTRLEN];

	assert_int_equal(a->ss.ss_family, AF_INET6);
	assert_int_equal(a->len, sizeof(struct sockaddr_in6));
	assert_non_null(inet_ntop(AF_INET6, &sin6->sin6_addr, buf,
	    sizeof(buf)));
	assert_string_equal(buf, addr);
	assert_int_equal(port_of(a), port);
}

/* Read a whole small file into buf. */
static void
slurp(const char *path, char *buf, size_t len)
{
	FILE *fp = fopen(path, "r");
	size_t n;

	assert_non_null(fp);
	n = fread(buf, 1, len - 1, fp);
	assert_true(n < len - 1);
	buf[n] = '\0';
	fclose(fp);
}

static bool
starts_with(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* conf_print c into dir/name; the path goes to out. */
static void
print_to(struct fixture *fx, const struct greyd_conf *c, const char *name,
    char *out, size_t outlen)
{
	FILE *fp;

	snprintf(out, outlen, "%s/%s", fx->dir, name);
	assert_non_null(fp = fopen(out, "w"));
	conf_print(c, fp);
	assert_int_equal(fclose(fp), 0);
}

/* ---- tests --------------------------------------------------------------- */

static void
test_defaults(void **state)
{
	struct fixture *fx = *state;
	struct greyd_conf *c = &fx->c;
	char host[256] = "", banner[512];

	assert_int_equal(conf_load(c, NULL, NULL, fx->err, sizeof(fx->err)), 0);
	assert_int_equal(c->nlisten, 1);
	assert_ipv4(&c->listen[0], "127.0.0.1", 2525);
	assert_string_equal(c->listen[0].text, "127.0.0.1:2525");
	assert_ipv4(&c->backend, "127.0.0.1", 10025);
	assert_int_equal(c->backend_proxy, BACKEND_PROXY_HAPROXY);
	assert_int_equal(c->backend_connect_timeout, 10);
	assert_int_equal(c->backend_timeout, 300);
	assert_string_equal(c->db_dir, "./var/db");
	assert_int_equal(c->db_checkpoint_interval, 60);
	assert_int_equal(c->db_expire_interval, 60);
	assert_int_equal(c->db_expire_batch, 1000);
	assert_int_equal(c->client_record_expiry, 90 * 86400);
	assert_int_equal(c->greylist_delay, 300);
	assert_int_equal(c->greylist_retry_window, 4 * 3600);
	assert_int_equal(c->white_expiry, 36 * 86400);
	assert_int_equal(c->greylist_ipv4_prefix, 24);
	assert_int_equal(c->greylist_ipv6_prefix, 64);
	assert_true(c->greylist_exempt_postmaster);
	assert_null(c->allow_clients);
	assert_int_equal(c->nallow_clients, 0);
	assert_int_equal(gethostname(host, sizeof(host) - 1), 0);
	assert_string_equal(c->hostname, host);
	snprintf(banner, sizeof(banner), "%s ESMTP greyd", host);
	assert_string_equal(c->smtp_banner, banner);
	assert_int_equal(c->smtp_idle_timeout, 300);
	assert_int_equal(c->smtp_error_limit, 10);
	assert_int_equal(c->message_size_limit, 10240000);
	assert_int_equal(c->drain_timeout, 30);
	assert_string_equal(c->user, "");
	assert_string_equal(c->pid_file, "");
}

static void
test_parse_duration(void **state)
{
	static const struct { const char *s; long long want; } cases[] = {
		{ "0", 0 }, { "300", 300 }, { "300s", 300 }, { "5m", 300 },
		{ "4h", 14400 }, { "36d", 3110400 }, { "1w", 604800 },
		{ "0007s", 7 }, { "2147483647", 2147483647 },
		{ "2147483647s", 2147483647 }, { "35791394m", 2147483640 },
		{ "", -1 }, { "5x", -1 }, { "-1", -1 }, { "+5", -1 },
		{ "5 m", -1 }, { " 5m", -1 }, { "5m ", -1 }, { "m", -1 },
		{ "5mm", -1 }, { "5M", -1 }, { "1.5h", -1 },
		{ "2147483648", -1 }, { "35791395m", -1 }, { "3551w", -1 },
		{ "99999999999999999999999", -1 },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		long long got = conf_parse_duration(cases[i].s);

		if (got != cases[i].want)
			fail_msg("conf_parse_duration(\"%s\") = %lld, want %lld",
			    cases[i].s, got, cases[i].want);
	}
}

static void
test_parse_sockaddr(void **state)
{
	static const char *const bad[] = {
		"", "192.0.2.1", "192.0.2.1:", ":25", "192.0.2.1:65536",
		"192.0.2.1:0", "192.0.2.1:+25", "192.0.2.1:000025",
		"192.0.2.1:25x", "2001:db8::1:25", "[2001:db8::1]25",
		"[2001:db8::1]", "[192.0.2.1]:25", "[::1:25", "[]:25",
		"host.example:25", "127.1:25", "192.0.2.1:25 ", "[*]:25",
		"*", "256.0.0.1:25",
	};
	struct conf_sockaddr a;
	size_t i;

	assert_int_equal(conf_parse_sockaddr(&a, "192.0.2.1:25"), 0);
	assert_ipv4(&a, "192.0.2.1", 25);
	assert_string_equal(a.text, "192.0.2.1:25");
	assert_int_equal(conf_parse_sockaddr(&a, "*:2525"), 0);
	assert_ipv4(&a, "0.0.0.0", 2525);
	assert_string_equal(a.text, "*:2525");
	assert_int_equal(conf_parse_sockaddr(&a, "[2001:db8::1]:587"), 0);
	assert_ipv6(&a, "2001:db8::1", 587);
	assert_int_equal(conf_parse_sockaddr(&a, "[::]:65535"), 0);
	assert_ipv6(&a, "::", 65535);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (conf_parse_sockaddr(&a, bad[i]) != -1)
			fail_msg("conf_parse_sockaddr accepted \"%s\"", bad[i]);
}

static void
test_backend_proxy_names(void **state)
{
	static const struct { enum backend_proxy p; const char *name; } m[] = {
		{ BACKEND_PROXY_NONE, "none" },
		{ BACKEND_PROXY_HAPROXY, "haproxy" },
		{ BACKEND_PROXY_HAPROXY2, "haproxy2" },
		{ BACKEND_PROXY_XCLIENT, "xclient" },
	};
	struct fixture *fx = *state;
	char o[64];
	const char *const ov[] = { o, NULL };
	size_t i;

	for (i = 0; i < sizeof(m) / sizeof(m[0]); i++) {
		assert_string_equal(conf_backend_proxy_name(m[i].p), m[i].name);
		snprintf(o, sizeof(o), "backend_proxy=%s", m[i].name);
		assert_int_equal(conf_load(&fx->c, NULL, ov, fx->err,
		    sizeof(fx->err)), 0);
		assert_int_equal(fx->c.backend_proxy, m[i].p);
	}
}

static void
test_every_type(void **state)
{
	struct fixture *fx = *state;
	struct greyd_conf *c = &fx->c;
	char a[NETADDR_STRLEN];

	load_ok(fx,
	    "listen = 0.0.0.0:25 [::]:25\n"
	    "backend = [::1]:10026\n"
	    "backend_proxy = xclient\n"
	    "backend_connect_timeout = 3\n"
	    "backend_timeout = 2m\n"
	    "db_dir = /var/lib/greyd\n"
	    "db_checkpoint_interval = 1h\n"
	    "db_expire_interval = 1w\n"
	    "db_expire_batch = 1000000\n"
	    "client_record_expiry = 2w\n"
	    "greylist_delay = 0\n"
	    "greylist_retry_window = 2d\n"
	    "white_expiry = 1s\n"
	    "greylist_ipv4_prefix = 32\n"
	    "greylist_ipv6_prefix = 0\n"
	    "greylist_exempt_postmaster = NO\n"
	    "allow_clients = 192.0.2.0/24, 2001:db8::/32,198.51.100.7\n"
	    "hostname = mx1.example.org\n"
	    "smtp_banner = mx1 ready\n"
	    "smtp_idle_timeout = 45s\n"
	    "smtp_error_limit = 1000\n"
	    "message_size_limit = 0\n"
	    "drain_timeout = 0s\n"
	    "user = greyd\n"
	    "pid_file = /run/greyd.pid\n");
	assert_int_equal(c->nlisten, 2);
	assert_ipv4(&c->listen[0], "0.0.0.0", 25);
	assert_ipv6(&c->listen[1], "::", 25);
	assert_ipv6(&c->backend, "::1", 10026);
	assert_int_equal(c->backend_proxy, BACKEND_PROXY_XCLIENT);
	assert_int_equal(c->backend_connect_timeout, 3);
	assert_int_equal(c->backend_timeout, 120);
	assert_string_equal(c->db_dir, "/var/lib/greyd");
	assert_int_equal(c->db_checkpoint_interval, 3600);
	assert_int_equal(c->db_expire_interval, 604800);
	assert_int_equal(c->db_expire_batch, 1000000);
	assert_int_equal(c->client_record_expiry, 14 * 86400);
	assert_int_equal(c->greylist_delay, 0);
	assert_int_equal(c->greylist_retry_window, 172800);
	assert_int_equal(c->white_expiry, 1);
	assert_int_equal(c->greylist_ipv4_prefix, 32);
	assert_int_equal(c->greylist_ipv6_prefix, 0);
	assert_false(c->greylist_exempt_postmaster);
	assert_int_equal(c->nallow_clients, 3);
	netaddr_format(&c->allow_clients[0].net, a, sizeof(a));
	assert_string_equal(a, "192.0.2.0");
	assert_int_equal(c->allow_clients[0].prefix, 24);
	netaddr_format(&c->allow_clients[1].net, a, sizeof(a));
	assert_string_equal(a, "2001:db8::");
	assert_int_equal(c->allow_clients[1].prefix, 32);
	assert_int_equal(c->allow_clients[2].prefix, 32);
	assert_string_equal(c->hostname, "mx1.example.org");
	assert_string_equal(c->smtp_banner, "mx1 ready");
	assert_int_equal(c->smtp_idle_timeout, 45);
	assert_int_equal(c->smtp_error_limit, 1000);
	assert_int_equal(c->message_size_limit, 0);
	assert_int_equal(c->drain_timeout, 0);
	assert_string_equal(c->user, "greyd");
	assert_string_equal(c->pid_file, "/run/greyd.pid");
}

static const char continued[] =
    "# greyd.conf\n"				/* 1 */
    "listen = 127.0.0.1:2525,\n"		/* 2 */
    "    [::1]:2525\n"				/* 3 */
    "# a comment inside a continued list\n"	/* 4 */
    "\t192.0.2.1:25 ,, 198.51.100.1:25\n"	/* 5 */
    "allow_clients =\n"				/* 6 */
    "  10.0.0.0/8\n"				/* 7 */
    "  # another\n"				/* 8 */
    "\n"					/* 9 */
    "  192.168.0.0/16\n"			/* 10 */
    "smtp_banner = greyd at\n"			/* 11 */
    "  your   service\n";			/* 12 */

static void
test_continuation_and_comments(void **state)
{
	struct fixture *fx = *state;

	load_ok(fx, continued);
	assert_int_equal(fx->c.nlisten, 4);
	assert_ipv4(&fx->c.listen[0], "127.0.0.1", 2525);
	assert_ipv6(&fx->c.listen[1], "::1", 2525);
	assert_string_equal(fx->c.listen[1].text, "[::1]:2525");
	assert_ipv4(&fx->c.listen[2], "192.0.2.1", 25);
	assert_ipv4(&fx->c.listen[3], "198.51.100.1", 25);
	assert_int_equal(fx->c.nallow_clients, 2);
	assert_int_equal(fx->c.allow_clients[1].prefix, 16);
	assert_string_equal(fx->c.smtp_banner, "greyd at your   service");
}

static void
test_line_numbers(void **state)
{
	struct fixture *fx = *state;
	char text[sizeof(continued) + 64];

	snprintf(text, sizeof(text), "%sfoo = 1\n", continued);
	load_fails(fx, text, "13: unknown setting \"foo\"");
	load_fails(fx,
	    "greylist_delay = 5m\n"
	    "allow_clients = 10.0.0.0/8,\n"
	    "    10.1.0.0/16,\n"
	    "    10.2.0.0/33\n"
	    "user = greyd\n",
	    "2: bad value for allow_clients: \"10.2.0.0/33\" (expected an "
	    "address or address/prefix, like 192.0.2.0/24)");
	/* Among several bad values the earliest line is reported. */
	load_fails(fx,
	    "# x\n"
	    "white_expiry = 0\n"
	    "\n"
	    "listen = localhost:25\n",
	    "2: bad value for white_expiry: \"0\" (expected a duration of at "
	    "least 1s, like 300s, 5m, 4h, 36d)");
	load_fails(fx, "\r\ngreylist_delay = 2m\r\nbogus\r\n",
	    "3: expected \"name = value\"");
}

static void
test_syntax_errors(void **state)
{
	struct fixture *fx = *state;

	load_fails(fx, "greylist_delay 5m\n", "1: expected \"name = value\"");
	load_fails(fx, "grey list = 5m\n", "1: expected \"name = value\"");
	load_fails(fx, " = 5m\n", "1: continuation line without a setting "
	    "before it");
	load_fails(fx, "= 5m\n", "1: expected \"name = value\"");
	load_fails(fx, "# c\n  greylist_delay = 5m\n", "2: continuation line "
	    "without a setting before it");
	load_fails(fx, "Greylist_delay = 5m\n", "1: unknown setting "
	    "\"Greylist_delay\"");
}

static void
test_bad_values(void **state)
{
	static const struct { const char *text, *want; } cases[] = {
		{ "# comment\n\ngreylist_delay = 5x\n",
		  "3: bad value for greylist_delay: \"5x\" (expected a duration "
		  "like 300s, 5m, 4h, 36d)" },
		{ "greylist_delay = 2147483648\n",
		  "1: bad value for greylist_delay: \"2147483648\" (expected a "
		  "duration like 300s, 5m, 4h, 36d)" },
		{ "smtp_idle_timeout = 0s\n",
		  "1: bad value for smtp_idle_timeout: \"0s\" (expected a "
		  "duration of at least 1s, like 300s, 5m, 4h, 36d)" },
		{ "greylist_exempt_postmaster = maybe\n",
		  "1: bad value for greylist_exempt_postmaster: \"maybe\" "
		  "(expected yes or no)" },
		{ "greylist_ipv4_prefix = 33\n",
		  "1: bad value for greylist_ipv4_prefix: \"33\" (expected an "
		  "integer from 0 to 32)" },
		{ "greylist_ipv6_prefix = -1\n",
		  "1: bad value for greylist_ipv6_prefix: \"-1\" (expected an "
		  "integer from 0 to 128)" },
		{ "db_expire_batch = 0\n",
		  "1: bad value for db_expire_batch: \"0\" (expected an integer "
		  "from 1 to 1000000)" },
		{ "client_record_expiry = 0\n",
		  "1: bad value for client_record_expiry: \"0\" (expected a "
		  "duration of at least 1s, like 300s, 5m, 4h, 36d)" },
		{ "smtp_error_limit = ten\n",
		  "1: bad value for smtp_error_limit: \"ten\" (expected an "
		  "integer from 1 to 1000)" },
		{ "message_size_limit = 10M\n",
		  "1: bad value for message_size_limit: \"10M\" (expected a size "
		  "in bytes, 0 for no limit)" },
		{ "allow_clients = 10.0.0.0/8 bad.example\n",
		  "1: bad value for allow_clients: \"bad.example\" (expected an "
		  "address or address/prefix, like 192.0.2.0/24)" },
		{ "backend = localhost:10025\n",
		  "1: bad value for backend: \"localhost:10025\" (expected a "
		  "numeric host:port or [ipv6]:port, not a wildcard)" },
		{ "backend = *:10025\n",
		  "1: bad value for backend: \"*:10025\" (expected a numeric "
		  "host:port or [ipv6]:port, not a wildcard)" },
		{ "listen = 127.0.0.1:2525 ::1:2525\n",
		  "1: bad value for listen: \"::1:2525\" (expected a numeric "
		  "host:port, [ipv6]:port or *:port)" },
		{ "listen = *:25, 0.0.0.0:25\n",
		  "1: listen address \"0.0.0.0:25\" given twice" },
		{ "listen =\n", "1: listen needs at least one address" },
		{ "backend_proxy = proxy\n",
		  "1: bad value for backend_proxy: \"proxy\" (expected haproxy, "
		  "haproxy2, xclient or none)" },
		{ "hostname = mx example\n",
		  "1: bad value for hostname: \"mx example\" (expected a host "
		  "name without spaces)" },
		{ "user = grey d\n",
		  "1: bad value for user: \"grey d\" (expected a user name "
		  "without spaces, or nothing)" },
		{ "db_dir =\n",
		  "1: bad value for db_dir: \"\" (expected a directory)" },
		{ "smtp_banner = caf\xc3\xa9\n",
		  "1: bad value for smtp_banner: \"caf\xc3\xa9\" (expected "
		  "printable ASCII text)" },
		{ "greylist_delay = 5h\n",
		  "1: greylist_retry_window (14400s) must be longer than "
		  "greylist_delay (18000s)" },
		{ "greylist_delay = 1m\ngreylist_retry_window = 60s\n",
		  "2: greylist_retry_window (60s) must be longer than "
		  "greylist_delay (60s)" },
	};
	struct fixture *fx = *state;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		load_fails(fx, cases[i].text, cases[i].want);
}

static void
test_listen_limit(void **state)
{
	struct fixture *fx = *state;
	char text[1024] = "listen =";
	char one[32];
	int i;

	for (i = 0; i < CONF_MAX_LISTEN; i++) {
		snprintf(one, sizeof(one), " 127.0.0.1:%d", 2000 + i);
		strlcat(text, one, sizeof(text));
	}
	strlcat(text, "\n", sizeof(text));
	load_ok(fx, text);
	assert_int_equal(fx->c.nlisten, CONF_MAX_LISTEN);
	assert_int_equal(port_of(&fx->c.listen[CONF_MAX_LISTEN - 1]),
	    2000 + CONF_MAX_LISTEN - 1);
	conf_free(&fx->c);
	text[strlen(text) - 1] = '\0';
	strlcat(text, " [::1]:25\n", sizeof(text));
	load_fails(fx, text, "1: too many listen addresses (at most 16)");
}

static void
test_long_values(void **state)
{
	struct fixture *fx = *state;
	size_t n = 100000, i;
	char *text = malloc(n + 1), want[64];

	assert_non_null(text);
	memset(text, 'x', 70000);
	memcpy(text, "db_dir = ", 9);
	text[70000] = '\0';
	load_fails(fx, text, "1: line too long (more than 65536 bytes)");
	/* a logical line made of many short physical lines */
	strlcpy(text, "# long list\nallow_clients =\n", n + 1);
	for (i = 0; i < 7000; i++)
		strlcat(text, "  10.0.0.0/8\n", n + 1);
	load_fails(fx, text, "2: line too long (more than 65536 bytes)");
	memset(text, 'x', 5000);
	memcpy(text, "db_dir = ", 9);
	text[5000] = '\0';
	snprintf(want, sizeof(want), "1: value for db_dir is too long "
	    "(at most %d bytes)", PATH_MAX - 1);
	load_fails(fx, text, want);
	free(text);
	load_fails(fx, "smtp_banner = $hostname $hostname $hostname $hostname"
	    " $hostname $hostname $hostname $hostname $hostname $hostname\n"
	    "hostname = aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaa\n",
	    "1: value for smtp_banner is too long (at most 511 bytes)");
}

static void
test_file_errors(void **state)
{
	struct fixture *fx = *state;
	char path[PATH_MAX], want[PATH_MAX + 128];

	snprintf(path, sizeof(path), "%s/missing.conf", fx->dir);
	assert_int_equal(conf_load(&fx->c, path, NULL, fx->err,
	    sizeof(fx->err)), -1);
	snprintf(want, sizeof(want), "%s: cannot open: %s", path,
	    strerror(ENOENT));
	assert_string_equal(fx->err, want);

	snprintf(path, sizeof(path), "%s/subdir", fx->dir);
	assert_int_equal(mkdir(path, 0700), 0);
	assert_int_equal(conf_load(&fx->c, path, NULL, fx->err,
	    sizeof(fx->err)), -1);
	snprintf(want, sizeof(want), "%s: cannot read: %s", path,
	    strerror(EISDIR));
	assert_string_equal(fx->err, want);

	write_file(fx, "nul.conf", "user = a\nuser = b\0c\n", 20, path,
	    sizeof(path));
	assert_int_equal(conf_load(&fx->c, path, NULL, fx->err,
	    sizeof(fx->err)), -1);
	snprintf(want, sizeof(want), "%s:2: NUL byte in line", path);
	assert_string_equal(fx->err, want);
}

static void
test_expansion(void **state)
{
	struct fixture *fx = *state;

	load_ok(fx, "hostname = mx.example.org\n");
	assert_string_equal(fx->c.smtp_banner, "mx.example.org ESMTP greyd");
	conf_free(&fx->c);
	/* references to later lines and to defaults; $$ is a literal $ */
	load_ok(fx,
	    "smtp_banner = ${hostname} says $$5 to $user\n"
	    "pid_file = $db_dir/greyd.pid\n"
	    "user = ${hostname}\n"
	    "hostname = mx.example.org\n");
	assert_string_equal(fx->c.smtp_banner,
	    "mx.example.org says $5 to mx.example.org");
	assert_string_equal(fx->c.pid_file, "./var/db/greyd.pid");
	assert_string_equal(fx->c.user, "mx.example.org");
	conf_free(&fx->c);
	/* expansion inside lists */
	load_ok(fx, "db_dir = 127.0.0.1:2600\nlisten = $db_dir, [::1]:2600\n");
	assert_int_equal(fx->c.nlisten, 2);
	assert_ipv4(&fx->c.listen[0], "127.0.0.1", 2600);
}

static void
test_expansion_errors(void **state)
{
	struct fixture *fx = *state;

	load_fails(fx, "hostname = $smtp_banner\n",
	    "1: recursion loop: $hostname expands to itself");
	load_fails(fx, "# x\nuser = ${user}\n",
	    "2: recursion loop: $user expands to itself");
	load_fails(fx, "user = $pid_file\npid_file = $db_dir\n"
	    "db_dir = /x$user\n",
	    "1: recursion loop: $user expands to itself");
	load_fails(fx, "smtp_banner = $nosuch here\n",
	    "1: unknown setting \"nosuch\" in $ expansion in value of "
	    "smtp_banner");
	load_fails(fx, "smtp_banner = costs 5$\n",
	    "1: stray \"$\" in value of smtp_banner (write $$ for a literal $)");
	load_fails(fx, "smtp_banner = ${hostname\n",
	    "1: missing \"}\" after \"${hostname\" in value of smtp_banner");
	load_fails(fx, "smtp_banner = ${}\n",
	    "1: stray \"$\" in value of smtp_banner (write $$ for a literal $)");
}

static void
test_later_wins(void **state)
{
	struct fixture *fx = *state;

	load_ok(fx,
	    "greylist_delay = 5x\n"
	    "hostname = first.example\n"
	    "smtp_banner = $hostname hi\n"
	    "greylist_delay = 2m\n"
	    "hostname = second.example\n");
	assert_int_equal(fx->c.greylist_delay, 120);
	assert_string_equal(fx->c.smtp_banner, "second.example hi");
}

static void
test_overrides(void **state)
{
	struct fixture *fx = *state;
	const char *const ov[] = { "greylist_delay=1s", " hostname = o.example ",
	    "allow_clients=192.0.2.0/24,198.51.100.0/24", NULL };
	const char *const bad[] = { "greylist_delay=5x", NULL };
	const char *text;
	char want[PATH_MAX + 128];

	assert_int_equal(conf_load(&fx->c, NULL, ov, fx->err,
	    sizeof(fx->err)), 0);
	assert_int_equal(fx->c.greylist_delay, 1);
	assert_string_equal(fx->c.smtp_banner, "o.example ESMTP greyd");
	assert_int_equal(fx->c.nallow_clients, 2);
	conf_free(&fx->c);
	/* overrides win over the file */
	text = "greylist_delay = 1m\nuser = nobody\n";
	write_file(fx, "greyd.conf", text, strlen(text), fx->path,
	    sizeof(fx->path));
	assert_int_equal(conf_load(&fx->c, fx->path, ov, fx->err,
	    sizeof(fx->err)), 0);
	assert_int_equal(fx->c.greylist_delay, 1);
	assert_string_equal(fx->c.user, "nobody");
	conf_free(&fx->c);

	override_fails(fx, "greylist_delay=5x", "-o greylist_delay=5x: bad "
	    "value for greylist_delay: \"5x\" (expected a duration like 300s, "
	    "5m, 4h, 36d)");
	override_fails(fx, "nosuch=1", "-o nosuch=1: unknown setting "
	    "\"nosuch\"");
	override_fails(fx, "greylist_delay", "-o greylist_delay: expected "
	    "\"name = value\"");
	override_fails(fx, "hostname=$smtp_banner", "-o hostname=$smtp_banner: "
	    "recursion loop: $hostname expands to itself");
	override_fails(fx, "greylist_delay=9h", "-o greylist_delay=9h: "
	    "greylist_retry_window (14400s) must be longer than "
	    "greylist_delay (32400s)");
	/* a bad file value is reported before a bad override */
	text = "user = a b\n";
	write_file(fx, "greyd.conf", text, strlen(text), fx->path,
	    sizeof(fx->path));
	assert_int_equal(conf_load(&fx->c, fx->path, bad, fx->err,
	    sizeof(fx->err)), -1);
	snprintf(want, sizeof(want), "%s:1: bad value for user: \"a b\" "
	    "(expected a user name without spaces, or nothing)", fx->path);
	assert_string_equal(fx->err, want);
}

static void
test_print_roundtrip(void **state)
{
	struct fixture *fx = *state;
	struct greyd_conf again;
	char p1[PATH_MAX], p2[PATH_MAX], t1[8192], t2[8192];
	const char *s;
	int lines = 0;

	load_ok(fx,
	    "listen = [::1]:2525, 127.0.0.1:2526 *:2527\n"
	    "backend_proxy = haproxy2\n"
	    "greylist_delay = 90\n"
	    "white_expiry = 2w\n"
	    "allow_clients = 10.1.2.3/8\n"
	    "  2001:db8::/32 ::ffff:192.0.2.1\n"
	    "hostname = mx.example.org\n"
	    "smtp_banner = $hostname charges $$5\n"
	    "greylist_exempt_postmaster = no\n"
	    "pid_file = /run/greyd dir/greyd.pid\n");
	print_to(fx, &fx->c, "print1.conf", p1, sizeof(p1));
	assert_int_equal(conf_load(&again, p1, NULL, fx->err,
	    sizeof(fx->err)), 0);
	print_to(fx, &again, "print2.conf", p2, sizeof(p2));
	conf_free(&again);
	slurp(p1, t1, sizeof(t1));
	slurp(p2, t2, sizeof(t2));
	assert_string_equal(t1, t2);
	for (s = t1; (s = strchr(s, '\n')) != NULL; s++)
		lines++;
	assert_int_equal(lines, NSETTINGS);
	assert_true(starts_with(t1, "listen = [::1]:2525 127.0.0.1:2526 "
	    "*:2527\n"));
	assert_non_null(strstr(t1, "\nbackend_proxy = haproxy2\n"));
	assert_non_null(strstr(t1, "\ngreylist_delay = 90s\n"));
	assert_non_null(strstr(t1, "\nwhite_expiry = 1209600s\n"));
	assert_non_null(strstr(t1, "\nallow_clients = 10.0.0.0/8 "
	    "2001:db8::/32 192.0.2.1/32\n"));
	assert_non_null(strstr(t1, "\nsmtp_banner = mx.example.org charges "
	    "$$5\n"));
	assert_non_null(strstr(t1, "\ngreylist_exempt_postmaster = no\n"));
	assert_non_null(strstr(t1, "\nuser =\n"));
	assert_non_null(strstr(t1, "\npid_file = /run/greyd dir/greyd.pid\n"));
	assert_non_null(strstr(t1, "\nmessage_size_limit = 10240000\n"));
}

static void
test_print_defaults(void **state)
{
	struct fixture *fx = *state;
	struct greyd_conf again;
	char p1[PATH_MAX], p2[PATH_MAX], t1[8192], t2[8192];

	assert_int_equal(conf_load(&fx->c, NULL, NULL, fx->err,
	    sizeof(fx->err)), 0);
	print_to(fx, &fx->c, "d1.conf", p1, sizeof(p1));
	assert_int_equal(conf_load(&again, p1, NULL, fx->err,
	    sizeof(fx->err)), 0);
	print_to(fx, &again, "d2.conf", p2, sizeof(p2));
	slurp(p1, t1, sizeof(t1));
	slurp(p2, t2, sizeof(t2));
	assert_string_equal(t1, t2);
	assert_true(starts_with(t1, "listen = 127.0.0.1:2525\n"
	    "backend = 127.0.0.1:10025\nbackend_proxy = haproxy\n"
	    "backend_connect_timeout = 10s\n"));
	assert_non_null(strstr(t1, "\nallow_clients =\n"));
	assert_non_null(strstr(t1, "\ngreylist_retry_window = 14400s\n"));
	assert_non_null(strstr(t1, "\npid_file =\n"));
}

/* Issue 3's settings: enums, word lists (domains lowercased), defaults. */
static void
test_policy_settings(void **state)
{
	struct fixture *fx = *state;

	load_ok(fx, "recipient_maps = /etc/a.map, /etc/b map\n"
	    "relay_domains = Example.ORG other.example\n"
	    "recipient_verify = backend\n"
	    "pregreet_action = tarpit\nprotocol_error_action = ignore\n"
	    "trap_action = tarpit\ngreet_wait = 6s\n"
	    "client_connection_limit = 3\n");
	assert_int_equal(fx->c.recipient_maps.n, 3);
	assert_string_equal(fx->c.recipient_maps.v[0], "/etc/a.map");
	assert_string_equal(fx->c.recipient_maps.v[2], "map");
	assert_int_equal(fx->c.relay_domains.n, 2);
	assert_string_equal(fx->c.relay_domains.v[0], "example.org");
	assert_int_equal(fx->c.recipient_verify, RCPT_VERIFY_BACKEND);
	assert_int_equal(fx->c.pregreet_action, ACTION_TARPIT);
	assert_int_equal(fx->c.protocol_error_action, ACTION_IGNORE);
	assert_int_equal(fx->c.trap_action, ACTION_TARPIT);
	assert_int_equal(fx->c.greet_wait, 6);
	assert_int_equal(fx->c.client_connection_limit, 3);
	/* defaults */
	assert_int_equal(fx->c.client_connection_rate, 1000);
	assert_int_equal(fx->c.message_recipient_limit, 100);
	assert_int_equal(fx->c.max_unknown_recipients, 5);
	assert_int_equal(fx->c.rcpt_negative_expiry, 3 * 3600);
	assert_int_equal(fx->c.tarpit_time, 600);
	assert_int_equal(fx->c.spamtrap_maps.n, 0);
	conf_free(&fx->c);

	load_fails(fx, "trap_action = trap\n", "1: bad value for trap_action: "
	    "\"trap\" (expected reject or tarpit)");
	load_fails(fx, "\npregreet_action = drop\n", "2: bad value for "
	    "pregreet_action: \"drop\" (expected ignore, reject, trap or "
	    "tarpit)");
	load_fails(fx, "relay_domains = ok.example, bad_domain\n",
	    "1: bad value for relay_domains: \"bad_domain\" (expected domain "
	    "names)");
	load_fails(fx, "recipient_verify = yes\n", "1: bad value for "
	    "recipient_verify: \"yes\" (expected none or backend)");
	load_fails(fx, "client_connection_limit = 0\n", "1: bad value for "
	    "client_connection_limit: \"0\" (expected an integer from 1 to "
	    "1000000)");
}

/* Issue 4's settings: DNS servers, DNSBL/DNSWL/RHSBL sites and policy. */
static void
test_dns_defaults(void **state)
{
	struct fixture *fx = *state;
	struct greyd_conf *c = &fx->c;
	char p[PATH_MAX], t[8192];

	assert_int_equal(conf_load(c, NULL, NULL, fx->err, sizeof(fx->err)), 0);
	assert_int_equal(c->dns_servers.n, 0);
	assert_null(c->dnsbl_sites);
	assert_int_equal(c->ndnsbl_sites, 0);
	assert_int_equal(c->dnsbl_threshold, 1);
	assert_int_equal(c->dnswl_threshold, -1);
	assert_int_equal(c->dnsbl_timeout, 5);
	assert_int_equal(c->dnsbl_min_ttl, 60);
	assert_int_equal(c->dnsbl_max_ttl, 3600);
	assert_int_equal(c->dnsbl_action, ACTION_REJECT);
	assert_int_equal(c->dnsbl_greylist_delay, 1800);
	assert_null(c->rhsbl_sender_sites);
	assert_int_equal(c->nrhsbl_sender_sites, 0);
	assert_string_equal(conf_action_name(ACTION_GREYLIST), "greylist");
	print_to(fx, c, "d.conf", p, sizeof(p));
	slurp(p, t, sizeof(t));
	assert_non_null(strstr(t, "\nmax_tarpit_sessions = 5000\n"
	    "dns_servers =\n"
	    "dnsbl_sites =\n"
	    "dnsbl_threshold = 1\n"
	    "dnswl_threshold = -1\n"
	    "dnsbl_timeout = 5s\n"
	    "dnsbl_min_ttl = 60s\n"
	    "dnsbl_max_ttl = 3600s\n"
	    "dnsbl_action = reject\n"
	    "dnsbl_greylist_delay = 1800s\n"
	    "rhsbl_sender_sites =\n"
	    "spf_workers = 2\n"
	    "spf_timeout = 20s\n"
	    "spf_fail_action = reject\n"
	    "spf_softfail_action = greylist\n"
	    "spf_temperror_action = tempfail\n"
	    "spf_permerror_action = accept\n"
	    "greylist_spf_key = yes\n"
	    "spf_check_loopback = no\n"
	    "hostname = "));
}

static void
test_dns_settings(void **state)
{
	struct fixture *fx = *state;
	struct greyd_conf *c = &fx->c, again;
	char p1[PATH_MAX], p2[PATH_MAX], t1[8192], t2[8192];

	load_ok(fx,
	    "dns_servers = 192.0.2.53, 192.0.2.54:5353 2001:db8::53\n"
	    "  [2001:db8::54]:5353 [::1]\n"
	    "dnsbl_sites = Zen.Spamhaus.org=127.0.0.[2..11]*3, bl.spamcop.net*2\n"
	    "  list.dnswl.org=127.0.[0..255].[1..3]*-5\n"
	    "  zen.spamhaus.org=127.0.0.[10;11]*8\n"
	    "dnsbl_threshold = 3\n"
	    "dnswl_threshold = -5\n"
	    "dnsbl_timeout = 2s\n"
	    "dnsbl_min_ttl = 0\n"
	    "dnsbl_max_ttl = 2h\n"
	    "dnsbl_action = greylist\n"
	    "dnsbl_greylist_delay = 10m\n"
	    "rhsbl_sender_sites = dbl.spamhaus.org=127.0.1.[2..99]*3\n");
	assert_int_equal(c->dns_servers.n, 5);
	assert_string_equal(c->dns_servers.v[0], "192.0.2.53");
	assert_string_equal(c->dns_servers.v[1], "192.0.2.54:5353");
	assert_string_equal(c->dns_servers.v[2], "2001:db8::53");
	assert_string_equal(c->dns_servers.v[3], "[2001:db8::54]:5353");
	assert_string_equal(c->dns_servers.v[4], "[::1]");
	assert_int_equal(c->ndnsbl_sites, 4);
	assert_string_equal(c->dnsbl_sites[0].name, "zen.spamhaus.org");
	assert_string_equal(c->dnsbl_sites[0].text,
	    "Zen.Spamhaus.org=127.0.0.[2..11]*3");
	assert_true(c->dnsbl_sites[0].filtered);
	assert_int_equal(c->dnsbl_sites[0].weight, 3);
	assert_string_equal(c->dnsbl_sites[1].name, "bl.spamcop.net");
	assert_false(c->dnsbl_sites[1].filtered);
	assert_int_equal(c->dnsbl_sites[1].weight, 2);
	assert_int_equal(c->dnsbl_sites[2].weight, -5);
	assert_int_equal(c->dnsbl_sites[3].weight, 8);
	assert_int_equal(c->dnsbl_threshold, 3);
	assert_int_equal(c->dnswl_threshold, -5);
	assert_int_equal(c->dnsbl_timeout, 2);
	assert_int_equal(c->dnsbl_min_ttl, 0);
	assert_int_equal(c->dnsbl_max_ttl, 7200);
	assert_int_equal(c->dnsbl_action, ACTION_GREYLIST);
	assert_int_equal(c->dnsbl_greylist_delay, 600);
	assert_int_equal(c->nrhsbl_sender_sites, 1);
	assert_string_equal(c->rhsbl_sender_sites[0].name, "dbl.spamhaus.org");
	assert_int_equal(c->rhsbl_sender_sites[0].weight, 3);

	/* -n prints the words as written, and reads back the same */
	print_to(fx, c, "p1.conf", p1, sizeof(p1));
	assert_int_equal(conf_load(&again, p1, NULL, fx->err,
	    sizeof(fx->err)), 0);
	print_to(fx, &again, "p2.conf", p2, sizeof(p2));
	assert_int_equal(again.ndnsbl_sites, 4);
	conf_free(&again);
	assert_null(again.dnsbl_sites);
	assert_int_equal(again.dns_servers.n, 0);
	slurp(p1, t1, sizeof(t1));
	slurp(p2, t2, sizeof(t2));
	assert_string_equal(t1, t2);
	assert_non_null(strstr(t1, "\ndns_servers = 192.0.2.53 "
	    "192.0.2.54:5353 2001:db8::53 [2001:db8::54]:5353 [::1]\n"));
	assert_non_null(strstr(t1, "\ndnsbl_sites = "
	    "Zen.Spamhaus.org=127.0.0.[2..11]*3 bl.spamcop.net*2 "
	    "list.dnswl.org=127.0.[0..255].[1..3]*-5 "
	    "zen.spamhaus.org=127.0.0.[10;11]*8\n"));
	assert_non_null(strstr(t1, "\ndnsbl_threshold = 3\n"
	    "dnswl_threshold = -5\n"));
	assert_non_null(strstr(t1, "\ndnsbl_action = greylist\n"
	    "dnsbl_greylist_delay = 600s\n"
	    "rhsbl_sender_sites = dbl.spamhaus.org=127.0.1.[2..99]*3\n"));
	conf_free(c);

	/* thresholds at the ends of their range; equal TTLs */
	load_ok(fx, "dnsbl_threshold = 1000\ndnswl_threshold = -1000\n"
	    "dnsbl_min_ttl = 5m\ndnsbl_max_ttl = 300\n");
	assert_int_equal(c->dnsbl_threshold, 1000);
	assert_int_equal(c->dnswl_threshold, -1000);
	assert_int_equal(c->dnsbl_min_ttl, 300);
	conf_free(c);
	load_ok(fx, "dnsbl_threshold = -0\ndnswl_threshold = -2\n"
	    "dnsbl_action = tarpit\ndnsbl_greylist_delay = 1w\n");
	assert_int_equal(c->dnsbl_threshold, 0);
	assert_int_equal(c->dnsbl_action, ACTION_TARPIT);
	conf_free(c);
	/* the sites of a later line replace the earlier ones */
	load_ok(fx, "dnsbl_sites = a.example b.example\n"
	    "dnsbl_sites = c.example\n");
	assert_int_equal(c->ndnsbl_sites, 1);
	assert_string_equal(c->dnsbl_sites[0].name, "c.example");
}

static void
test_dns_bad_values(void **state)
{
	static const char *const bad_servers[] = {
		"localhost", "192.0.2.53:0", "192.0.2.53:65536", "192.0.2.53:",
		":53", "192.0.2.53:+53", "192.0.2.53:053x", "192.0.2.53:000053",
		"256.0.2.53", "192.0.2", "[192.0.2.53]:53", "[2001:db8::1]53",
		"[2001:db8::1]:", "[2001:db8::1", "[]:53", "[]", "2001:db8::g",
		"[fe80::1%eth0]:53", "fe80::1%eth0", "*:53", "0x7f.0.0.1",
	};
	static const struct { const char *text, *want; } cases[] = {
		{ "dnsbl_sites = zen.spamhaus.org=127.0.0.[2..*3\n",
		  "1: dnsbl_sites: bad reply filter \"127.0.0.[2..\" in "
		  "\"zen.spamhaus.org=127.0.0.[2..*3\": expected a number" },
		{ "# x\ndnsbl_sites = ok.example\n  bad_name.example*2\n",
		  "2: dnsbl_sites: bad list name \"bad_name.example\" in "
		  "\"bad_name.example*2\": only letters, digits, '-' and '.' "
		  "are allowed" },
		{ "dnsbl_sites = bl.spamcop.net*1001\n",
		  "1: dnsbl_sites: bad weight \"1001\" in \"bl.spamcop.net*1001\": "
		  "expected an integer from -1000 to 1000" },
		{ "rhsbl_sender_sites = dbl.spamhaus.org=127.0.1\n",
		  "1: rhsbl_sender_sites: bad reply filter \"127.0.1\" in "
		  "\"dbl.spamhaus.org=127.0.1\": expected four octets, like "
		  "127.0.0.[2..11]" },
		{ "dnsbl_threshold = 1001\n",
		  "1: bad value for dnsbl_threshold: \"1001\" (expected an "
		  "integer from -1000 to 1000)" },
		{ "dnsbl_threshold = -1001\n",
		  "1: bad value for dnsbl_threshold: \"-1001\" (expected an "
		  "integer from -1000 to 1000)" },
		{ "dnswl_threshold = +1\n",
		  "1: bad value for dnswl_threshold: \"+1\" (expected an "
		  "integer from -1000 to 1000)" },
		{ "dnswl_threshold = --1\n",
		  "1: bad value for dnswl_threshold: \"--1\" (expected an "
		  "integer from -1000 to 1000)" },
		{ "dnswl_threshold = -\n",
		  "1: bad value for dnswl_threshold: \"-\" (expected an "
		  "integer from -1000 to 1000)" },
		{ "dnswl_threshold = - 1\n",
		  "1: bad value for dnswl_threshold: \"- 1\" (expected an "
		  "integer from -1000 to 1000)" },
		{ "dnsbl_threshold = 1.5\n",
		  "1: bad value for dnsbl_threshold: \"1.5\" (expected an "
		  "integer from -1000 to 1000)" },
		{ "dnsbl_timeout = 0\n",
		  "1: bad value for dnsbl_timeout: \"0\" (expected a duration "
		  "of at least 1s, like 300s, 5m, 4h, 36d)" },
		{ "dnsbl_min_ttl = -1\n",
		  "1: bad value for dnsbl_min_ttl: \"-1\" (expected a duration "
		  "like 300s, 5m, 4h, 36d)" },
		{ "dnsbl_max_ttl = 1y\n",
		  "1: bad value for dnsbl_max_ttl: \"1y\" (expected a duration "
		  "like 300s, 5m, 4h, 36d)" },
		{ "dnsbl_greylist_delay = soon\n",
		  "1: bad value for dnsbl_greylist_delay: \"soon\" (expected a "
		  "duration like 300s, 5m, 4h, 36d)" },
		{ "dnsbl_action = ignore\n",
		  "1: bad value for dnsbl_action: \"ignore\" (expected reject, "
		  "greylist or tarpit)" },
		{ "dnsbl_action = trap\n",
		  "1: bad value for dnsbl_action: \"trap\" (expected reject, "
		  "greylist or tarpit)" },
		{ "dnsbl_action = Reject\n",
		  "1: bad value for dnsbl_action: \"Reject\" (expected reject, "
		  "greylist or tarpit)" },
		/* "greylist" is for dnsbl_action only */
		{ "trap_action = greylist\n",
		  "1: bad value for trap_action: \"greylist\" (expected reject "
		  "or tarpit)" },
		{ "pregreet_action = greylist\n",
		  "1: bad value for pregreet_action: \"greylist\" (expected "
		  "ignore, reject, trap or tarpit)" },
		{ "protocol_error_action = greylist\n",
		  "1: bad value for protocol_error_action: \"greylist\" "
		  "(expected ignore, reject, trap or tarpit)" },
		/* conflicts: reported at the setting set last */
		{ "dnsbl_min_ttl = 2h\n",
		  "1: dnsbl_min_ttl (7200s) must not be longer than "
		  "dnsbl_max_ttl (3600s)" },
		{ "# x\ndnsbl_max_ttl = 30s\n",
		  "2: dnsbl_min_ttl (60s) must not be longer than "
		  "dnsbl_max_ttl (30s)" },
		{ "dnsbl_max_ttl = 1m\ndnsbl_min_ttl = 61s\n",
		  "2: dnsbl_min_ttl (61s) must not be longer than "
		  "dnsbl_max_ttl (60s)" },
		{ "dnswl_threshold = 1\n",
		  "1: dnswl_threshold (1) must be lower than dnsbl_threshold "
		  "(1)" },
		{ "\ndnsbl_threshold = -1\n",
		  "2: dnswl_threshold (-1) must be lower than dnsbl_threshold "
		  "(-1)" },
		{ "dnswl_threshold = 5\ndnsbl_threshold = 3\n",
		  "2: dnswl_threshold (5) must be lower than dnsbl_threshold "
		  "(3)" },
		{ "dnsbl_action = greylist\ndnsbl_greylist_delay = 4h\n",
		  "2: greylist_retry_window (14400s) must be longer than "
		  "dnsbl_greylist_delay (14400s) when dnsbl_action = greylist" },
		{ "dnsbl_greylist_delay = 5h\ndnsbl_action = greylist\n"
		  "greylist_retry_window = 1h\n",
		  "3: greylist_retry_window (3600s) must be longer than "
		  "dnsbl_greylist_delay (18000s) when dnsbl_action = greylist" },
	};
	struct fixture *fx = *state;
	char text[2048], want[1024], one[64];
	size_t i;

	for (i = 0; i < sizeof(bad_servers) / sizeof(bad_servers[0]); i++) {
		snprintf(text, sizeof(text), "\ndns_servers = 192.0.2.1 %s\n",
		    bad_servers[i]);
		snprintf(want, sizeof(want), "2: bad value for dns_servers: "
		    "\"%s\" (expected numeric addresses like 192.0.2.53, "
		    "192.0.2.53:5353, 2001:db8::53 or [2001:db8::53]:5353)",
		    bad_servers[i]);
		load_fails(fx, text, want);
		assert_int_equal(fx->c.dns_servers.n, 0);
	}
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		load_fails(fx, cases[i].text, cases[i].want);
		assert_null(fx->c.dnsbl_sites);
		assert_int_equal(fx->c.ndnsbl_sites, 0);
		assert_null(fx->c.rhsbl_sender_sites);
	}
	/* a greylist delay over the retry window is fine for other actions */
	load_ok(fx, "dnsbl_greylist_delay = 5h\n");
	conf_free(&fx->c);

	/* at most 16 servers and 64 sites */
	strlcpy(text, "dns_servers =", sizeof(text));
	for (i = 0; i < CONF_MAX_DNS_SERVERS; i++) {
		snprintf(one, sizeof(one), " 192.0.2.%zu", i + 1);
		strlcat(text, one, sizeof(text));
	}
	strlcat(text, "\n", sizeof(text));
	load_ok(fx, text);
	assert_int_equal(fx->c.dns_servers.n, CONF_MAX_DNS_SERVERS);
	conf_free(&fx->c);
	text[strlen(text) - 1] = '\0';
	strlcat(text, " [::1]:53\n", sizeof(text));
	load_fails(fx, text, "1: too many values for dns_servers (at most 16)");

	strlcpy(text, "dnsbl_sites = allow.example*-1\n", sizeof(text));
	for (i = 1; i < DNSBL_MAX_SITES; i++) {
		snprintf(one, sizeof(one), "  l%zu.example=127.0.0.%zu\n", i,
		    i);
		strlcat(text, one, sizeof(text));
	}
	load_ok(fx, text);
	assert_int_equal(fx->c.ndnsbl_sites, DNSBL_MAX_SITES);
	assert_int_equal(fx->c.dnsbl_sites[0].weight, -1);
	assert_string_equal(fx->c.dnsbl_sites[DNSBL_MAX_SITES - 1].text,
	    "l63.example=127.0.0.63");
	conf_free(&fx->c);
	strlcat(text, "  one.more.example\n", sizeof(text));
	load_fails(fx, text, "1: too many sites in dnsbl_sites (at most 64)");

	/* -o overrides */
	override_fails(fx, "dnsbl_sites=a..b", "-o dnsbl_sites=a..b: "
	    "dnsbl_sites: bad list name \"a..b\" in \"a..b\": empty label");
	override_fails(fx, "dnsbl_action=ignore", "-o dnsbl_action=ignore: bad "
	    "value for dnsbl_action: \"ignore\" (expected reject, greylist or "
	    "tarpit)");
	override_fails(fx, "dnsbl_min_ttl=2h", "-o dnsbl_min_ttl=2h: "
	    "dnsbl_min_ttl (7200s) must not be longer than dnsbl_max_ttl "
	    "(3600s)");
}

/* Sites and servers parsed before a later failure are freed. */
static void
test_dns_free_after_error(void **state)
{
	struct fixture *fx = *state;

	load_fails(fx, "smtp_error_limit = 0\n"
	    "dns_servers = 192.0.2.1 192.0.2.2\n"
	    "dnsbl_sites = zen.spamhaus.org*3 bl.spamcop.net\n"
	    "rhsbl_sender_sites = dbl.spamhaus.org\n",
	    "1: bad value for smtp_error_limit: \"0\" (expected an integer "
	    "from 1 to 1000)");
	assert_null(fx->c.dnsbl_sites);
	assert_null(fx->c.rhsbl_sender_sites);
	assert_null(fx->c.dns_servers.v);
	/* a failing conflict check after every setting parsed */
	load_fails(fx, "dnsbl_sites = zen.spamhaus.org*3\n"
	    "rhsbl_sender_sites = dbl.spamhaus.org\n"
	    "dns_servers = 192.0.2.1\n"
	    "dnswl_threshold = 7\n",
	    "4: dnswl_threshold (7) must be lower than dnsbl_threshold (1)");
	assert_null(fx->c.dnsbl_sites);
	assert_int_equal(fx->c.nrhsbl_sender_sites, 0);
	conf_free(&fx->c);
}

static void
test_free_after_error(void **state)
{
	struct fixture *fx = *state;

	/* allow_clients is parsed (and allocated) before white_expiry fails */
	load_fails(fx, "white_expiry = 0\nallow_clients = 10.0.0.0/8\n",
	    "1: bad value for white_expiry: \"0\" (expected a duration of at "
	    "least 1s, like 300s, 5m, 4h, 36d)");
	conf_free(&fx->c);
	conf_free(&fx->c);
}

/*
 * The snapshot: a held configuration outlives the install of the next one
 * and goes with its last holder (the sanitizer run would see a use after
 * free or a leak); a conf_load'ed struct in the caller's memory is not
 * counted; a bad file gives NULL and err.
 */
static void
test_snapshot(void **state)
{
	const char *ov_a[] = { "hostname=a.example", NULL };
	const char *ov_b[] = { "hostname=b.example", NULL };
	struct greyd_conf *a, *b, stack;
	const struct greyd_conf *held;
	char err[CONF_ERRLEN];

	(void)state;
	assert_null(conf_current());
	assert_non_null(a = conf_new(NULL, ov_a, err, sizeof(err)));
	assert_non_null(b = conf_new(NULL, ov_b, err, sizeof(err)));
	conf_install(a);
	assert_ptr_equal(conf_current(), a);
	held = conf_hold(conf_current());	/* a session starts */
	conf_install(b);			/* SIGHUP */
	assert_ptr_equal(conf_current(), b);
	assert_string_equal(held->hostname, "a.example");
	conf_release(held);			/* the session ends: a goes */
	conf_release(NULL);

	assert_int_equal(conf_load(&stack, NULL, ov_a, err, sizeof(err)), 0);
	conf_install(&stack);			/* b goes */
	assert_ptr_equal(conf_hold(&stack), &stack);
	conf_release(&stack);
	conf_release(&stack);			/* not counted: still there */
	assert_string_equal(conf_current()->hostname, "a.example");
	conf_install(NULL);
	assert_null(conf_current());
	conf_free(&stack);

	assert_null(conf_new("/nonexistent/greyd.conf", NULL, err,
	    sizeof(err)));
	assert_non_null(strstr(err, "/nonexistent/greyd.conf"));
}

#define T(name)	cmocka_unit_test_setup_teardown(name, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_defaults),
		T(test_parse_duration),
		T(test_parse_sockaddr),
		T(test_backend_proxy_names),
		T(test_every_type),
		T(test_continuation_and_comments),
		T(test_line_numbers),
		T(test_syntax_errors),
		T(test_bad_values),
		T(test_listen_limit),
		T(test_long_values),
		T(test_file_errors),
		T(test_expansion),
		T(test_expansion_errors),
		T(test_later_wins),
		T(test_overrides),
		T(test_print_roundtrip),
		T(test_print_defaults),
		T(test_policy_settings),
		T(test_dns_defaults),
		T(test_dns_settings),
		T(test_dns_bad_values),
		T(test_dns_free_after_error),
		T(test_free_after_error),
		T(test_snapshot),
	};

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
