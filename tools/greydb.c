/*
 * greydb.c — the trust database admin tool: list, add, delete, count and
 * explain entries, while greyd runs (same Berkeley DB environment, its own
 * process; see trustdb.h).  It links trustdb.c, conf.c and greylist.c, so
 * what it shows and explains is computed by greyd's own code.
 *
 *   greydb [-f FILE] list [white|grey|client] [--json]
 *   greydb [-f FILE] add white ADDR[/PREFIX] [--expire DURATION]
 *   greydb [-f FILE] del white KEY
 *   greydb [-f FILE] del grey CLIENTKEY SENDER RECIPIENT
 *   greydb [-f FILE] stats
 *   greydb [-f FILE] explain IP SENDER RECIPIENT
 *
 * The configuration is FILE, else /etc/greyd/greyd.conf if it exists,
 * else the embedded defaults (db_dir and the greylist settings matter).
 *
 * Living beside greyd:
 *   - no lock is held while output is written (trustdb_iterate reads in
 *     short batches), so `greydb list | less` never stalls greyd;
 *   - SIGINT, SIGTERM, SIGHUP and SIGQUIT are blocked while the database is
 *     open: a listing stops at the next record, the environment is closed,
 *     then the signal takes effect.  (A greydb that died with the
 *     environment open would make the next open run recovery, which greyd
 *     survives by reopening, but which is better avoided.)  SIGPIPE is
 *     ignored, so `greydb list | head` stops quietly;
 *   - run as root, greydb first becomes the owner of db_dir (greyd hands
 *     it to its `user`), so files it creates stay usable by greyd.
 *
 * Text output escapes control characters, backslashes and non-ASCII octets
 * C-style (strvis); `del grey` decodes its arguments the same way, so a
 * line of `list grey` can always be pasted back.  --json writes JSON Lines.
 *
 * Exit status: 0 success, 1 failure (no such entry, database or output
 * error), 2 bad usage.
 */
#include <sys/stat.h>

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LIBBSD_OPENBSD_VIS	/* we use strvisx/strunvis only */
#include <vis.h>

#include "conf.h"
#include "greylist.h"
#include "log.h"
#include "netaddr.h"
#include "trustdb.h"

#ifndef GREYD_CONF_PATH
#define GREYD_CONF_PATH		"/etc/greyd/greyd.conf"
#endif

#define EXIT_USAGE		2
#define TIME_LEN		32
#define VIS_FLAGS		(VIS_CSTYLE | VIS_OCTAL | VIS_TAB | VIS_NL)
#define VIS_LEN(n)		(4 * (n) + 1)
#define SIGNAL_CHECK_EVERY	64	/* records between looks at signals */
#define MAX_FIELDS		10

struct greydb {
	struct greyd_conf conf;
	struct trustdb *db;
	sigset_t stopsigs;		/* blocked while the database is open */
	int64_t now;
	bool json;
	bool stopped;			/* a signal or an output error */
	unsigned long records;
};

/* ---- output ---- */

enum field_type { F_STR, F_PATH, F_TIME, F_NUM };

/* One named value of a record; the first field of a record is its key. */
struct field {
	const char *name;
	enum field_type type;
	const char *s;
	size_t len;
	int64_t n;
};

static const char *const table_names[] = {
	[TRUSTDB_GREY] = "grey", [TRUSTDB_WHITE] = "white",
	[TRUSTDB_CLIENT] = "client",
};
static const char *const table_labels[] = {
	[TRUSTDB_GREY] = "GREY", [TRUSTDB_WHITE] = "WHITE",
	[TRUSTDB_CLIENT] = "CLIENT",
};
static const char *const origin_names[] = {
	[WHITE_LOCAL] = "local", [WHITE_PEER] = "peer", [WHITE_ADMIN] = "admin",
};

static void
usage(FILE *fp)
{
	fputs("usage: greydb [-f FILE] COMMAND ...\n"
	    "  list [white|grey|client] [--json]\n"
	    "  add white ADDR[/PREFIX] [--expire DURATION]\n"
	    "  del white KEY\n"
	    "  del grey CLIENTKEY SENDER RECIPIENT\n"
	    "  stats\n"
	    "  explain IP SENDER RECIPIENT\n", fp);
}

static void
verror(const char *fmt, va_list ap)
{
	fputs("greydb: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputs("\n", stderr);
}

static __attribute__((format(printf, 1, 2))) int
usage_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	verror(fmt, ap);
	va_end(ap);
	usage(stderr);
	return EXIT_USAGE;
}

/* A bad value in a well-formed command: say what, not the whole usage. */
static __attribute__((format(printf, 1, 2))) int
arg_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	verror(fmt, ap);
	va_end(ap);
	return EXIT_USAGE;
}

/* s escaped as in text listings, into buf of VIS_LEN(strlen(s)) octets. */
static const char *
vis_str(char *buf, const char *s)
{
	strvis(buf, s, VIS_FLAGS);
	return buf;
}

static void
format_time(int64_t t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm) == NULL ||
	    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, len, "%lld", (long long)t);
}

static const char *
origin_name(uint8_t origin)
{
	if (origin < sizeof(origin_names) / sizeof(origin_names[0]) &&
	    origin_names[origin] != NULL)
		return origin_names[origin];
	return "unknown";
}

/* Length of the valid UTF-8 sequence at s, 0 if there is none. */
static size_t
utf8_len(const unsigned char *s, size_t avail)
{
	uint32_t cp;
	size_t n, i;

	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (n > avail)
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 ||
	    cp > 0x10ffff)) || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

/* A JSON string; octets that are not UTF-8 become U+FFFD. */
static void
json_string(FILE *fp, const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i, n;

	putc('"', fp);
	for (i = 0; i < len; i += n) {
		n = 1;
		if (u[i] == '"' || u[i] == '\\')
			fprintf(fp, "\\%c", u[i]);
		else if (u[i] < 0x20 || u[i] == 0x7f)
			fprintf(fp, "\\u%04x", u[i]);
		else if (u[i] < 0x80)
			putc(u[i], fp);
		else if ((n = utf8_len(u + i, len - i)) > 0)
			fwrite(u + i, 1, n, fp);
		else {
			fputs("\\ufffd", fp);
			n = 1;
		}
	}
	putc('"', fp);
}

static void
print_json(FILE *fp, enum trustdb_table t, const struct field *f, size_t n)
{
	char tbuf[TIME_LEN];
	size_t i;

	fprintf(fp, "{\"table\":\"%s\"", table_names[t]);
	for (i = 0; i < n; i++) {
		fprintf(fp, ",\"%s\":", f[i].name);
		if (f[i].type == F_NUM)
			fprintf(fp, "%lld", (long long)f[i].n);
		else if (f[i].type == F_TIME) {
			format_time(f[i].n, tbuf, sizeof(tbuf));
			fprintf(fp, "\"%s\"", tbuf);
		} else
			json_string(fp, f[i].s, f[i].len);
	}
	fputs("}\n", fp);
}

static void
print_text(FILE *fp, enum trustdb_table t, const struct field *f, size_t n)
{
	char vbuf[VIS_LEN(TRUSTDB_KEY_MAX)], tbuf[TIME_LEN];
	size_t i;

	fputs(table_labels[t], fp);
	for (i = 0; i < n; i++) {
		fputs(" ", fp);
		if (i > 0)
			fprintf(fp, "%s=", f[i].name);
		if (f[i].type == F_NUM)
			fprintf(fp, "%lld", (long long)f[i].n);
		else if (f[i].type == F_TIME) {
			format_time(f[i].n, tbuf, sizeof(tbuf));
			fputs(tbuf, fp);
		} else {
			strvisx(vbuf, f[i].s, f[i].len, VIS_FLAGS);
			fprintf(fp, f[i].type == F_PATH ? "<%s>" : "%s", vbuf);
		}
	}
	fputs("\n", fp);
}

static struct field
fstr(const char *name, enum field_type type, const char *s, size_t len)
{
	struct field f = { .name = name, .type = type, .s = s, .len = len };

	return f;
}

static struct field
fnum(const char *name, enum field_type type, int64_t n)
{
	struct field f = { .name = name, .type = type, .n = n };

	return f;
}

/* The next NUL-terminated part of a grey key ("" past its end). */
static const char *
key_part(const char **p, const char *end, size_t *len)
{
	const char *s = *p;

	*len = s < end ? strnlen(s, (size_t)(end - s)) : 0;
	*p = s + *len + (s + *len < end);
	return s < end ? s : "";
}

static size_t
grey_fields(const struct trustdb_entry *e, struct field *f)
{
	const struct grey_rec *r = &e->v.grey;
	const char *p = e->key, *end = e->key + e->keylen, *s;
	size_t len;

	s = key_part(&p, end, &len);
	f[0] = fstr("client", F_STR, s, len);
	s = key_part(&p, end, &len);
	f[1] = fstr("from", F_PATH, s, len);
	s = key_part(&p, end, &len);
	f[2] = fstr("to", F_PATH, s, len);
	f[3] = fnum("first", F_TIME, r->first_seen);
	f[4] = fnum("last", F_TIME, r->last_seen);
	f[5] = fnum("attempts", F_NUM, r->attempts);
	f[6] = fnum("pass_after", F_TIME, r->pass_after);
	f[7] = fnum("expire", F_TIME, r->expire);
	return 8;
}

static size_t
white_fields(const struct trustdb_entry *e, struct field *f)
{
	const struct white_rec *r = &e->v.white;
	const char *origin = origin_name(r->origin);

	f[0] = fstr("key", F_STR, e->key, e->keylen);
	f[1] = fnum("first", F_TIME, r->first_seen);
	f[2] = fnum("last", F_TIME, r->last_seen);
	f[3] = fnum("expire", F_TIME, r->expire);
	f[4] = fnum("passes", F_NUM, r->passes);
	f[5] = fnum("messages", F_NUM, r->messages);
	f[6] = fstr("origin", F_STR, origin, strlen(origin));
	return 7;
}

static size_t
client_fields(const struct trustdb_entry *e, struct field *f)
{
	const struct client_rec *r = &e->v.client;

	f[0] = fstr("addr", F_STR, e->key, e->keylen);
	f[1] = fnum("first", F_TIME, r->first_seen);
	f[2] = fnum("last", F_TIME, r->last_seen);
	f[3] = fnum("connections", F_NUM, r->connections);
	f[4] = fnum("greylisted", F_NUM, r->greylisted);
	f[5] = fnum("passed", F_NUM, r->passed);
	f[6] = fnum("delivered", F_NUM, r->delivered);
	f[7] = fnum("rejected", F_NUM, r->rejected);
	return 8;
}

static void
print_entry(const struct greydb *g, const struct trustdb_entry *e)
{
	struct field f[MAX_FIELDS];
	size_t n;

	if (e->table == TRUSTDB_GREY)
		n = grey_fields(e, f);
	else if (e->table == TRUSTDB_WHITE)
		n = white_fields(e, f);
	else
		n = client_fields(e, f);
	if (g->json)
		print_json(stdout, e->table, f, n);
	else
		print_text(stdout, e->table, f, n);
}

/* Print one record without its label, as explain shows it. */
static void
print_detail(const char *label, const struct trustdb_entry *e)
{
	struct field f[MAX_FIELDS];
	size_t n = e->table == TRUSTDB_GREY ? grey_fields(e, f) :
	    client_fields(e, f);
	size_t first = e->table == TRUSTDB_GREY ? 3 : 1;
	char tbuf[TIME_LEN];
	size_t i;

	printf("%-12s", label);
	for (i = first; i < n; i++) {
		if (f[i].type == F_TIME)
			format_time(f[i].n, tbuf, sizeof(tbuf));
		else
			snprintf(tbuf, sizeof(tbuf), "%lld", (long long)f[i].n);
		printf("%s%s=%s", i > first ? " " : "", f[i].name, tbuf);
	}
	printf("\n");
}

/* Should a listing stop (signal pending, or stdout failed)? */
static bool
greydb_should_stop(struct greydb *g)
{
	sigset_t pending;
	int sig;

	if (ferror(stdout)) {
		g->stopped = true;
		return true;
	}
	if (++g->records % SIGNAL_CHECK_EVERY != 0 || sigpending(&pending) != 0)
		return false;
	for (sig = 1; sig < NSIG; sig++)
		if (sigismember(&g->stopsigs, sig) == 1 &&
		    sigismember(&pending, sig) == 1)
			g->stopped = true;
	return g->stopped;
}

/* ---- database access ---- */

/*
 * As root, become the owner of db_dir (greyd's `user`), so that log files
 * greydb creates stay readable and writable by greyd.
 */
static int
become_db_owner(const char *dir)
{
	struct stat st;
	struct passwd *pw;

	if (stat(dir, &st) == -1) {
		fprintf(stderr, "greydb: db_dir %s: %s%s\n", dir,
		    strerror(errno), errno == ENOENT ?
		    " (greyd creates it when it starts)" : "");
		return -1;
	}
	if (geteuid() != 0 || st.st_uid == 0)
		return 0;
	pw = getpwuid(st.st_uid);
	if ((pw != NULL ? initgroups(pw->pw_name, st.st_gid) :
	    setgroups(1, &st.st_gid)) != 0 || setgid(st.st_gid) != 0 ||
	    setuid(st.st_uid) != 0) {
		fprintf(stderr, "greydb: cannot become uid %u, the owner of "
		    "%s: %s\n", (unsigned)st.st_uid, dir, strerror(errno));
		return -1;
	}
	return 0;
}

static int
greydb_open(struct greydb *g)
{
	char err[512];

	if (become_db_owner(g->conf.db_dir) == -1)
		return -1;
	if ((g->db = trustdb_open(g->conf.db_dir, err, sizeof(err))) == NULL) {
		fprintf(stderr, "greydb: %s\n", err);
		return -1;
	}
	return 0;
}

static int
table_from_name(const char *s)
{
	size_t i;

	for (i = 0; i < sizeof(table_names) / sizeof(table_names[0]); i++)
		if (strcmp(s, table_names[i]) == 0)
			return (int)i;
	return -1;
}

/* "<a@b>" or "a@b" (and "<>" or "") to the bare address. */
static int
path_arg(const char *arg, char *out, size_t len)
{
	size_t n = strlen(arg);

	if (n >= 2 && arg[0] == '<' && arg[n - 1] == '>') {
		arg++;
		n -= 2;
	}
	if (n >= len || n >= SMTP_PATH_MAX_KEY)
		return -1;
	memcpy(out, arg, n);
	out[n] = '\0';
	return 0;
}

/* ---- list ---- */

static int
list_cb(const struct trustdb_entry *e, void *arg)
{
	struct greydb *g = arg;

	print_entry(g, e);
	return greydb_should_stop(g);
}

static int
cmd_list(struct greydb *g, int argc, char **argv)
{
	static const enum trustdb_table all[] = {
		TRUSTDB_WHITE, TRUSTDB_GREY, TRUSTDB_CLIENT
	};
	int i, table = -1;
	size_t t;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			g->json = true;
		else if (table == -1 &&
		    (table = table_from_name(argv[i])) != -1)
			continue;
		else
			return usage_error("list: unexpected argument \"%s\"",
			    argv[i]);
	}
	if (greydb_open(g) == -1)
		return 1;
	for (t = 0; t < sizeof(all) / sizeof(all[0]) && !g->stopped; t++) {
		if (table != -1 && (int)all[t] != table)
			continue;
		if (trustdb_iterate(g->db, all[t], list_cb, g) != 0)
			return 1;
	}
	return 0;
}

/* ---- add ---- */

struct add_args {
	const char *addr;
	long long expire;	/* seconds from now */
};

static int
add_parse(struct greydb *g, int argc, char **argv, struct add_args *a)
{
	const char *dur = NULL;
	int i;

	if (argc < 2 || strcmp(argv[1], "white") != 0)
		return usage_error("add: only \"add white\" exists");
	for (i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--expire") == 0 && i + 1 < argc)
			dur = argv[++i];
		else if (strncmp(argv[i], "--expire=", 9) == 0)
			dur = argv[i] + 9;
		else if (a->addr == NULL && argv[i][0] != '-')
			a->addr = argv[i];
		else
			return usage_error("add white: unexpected argument "
			    "\"%s\"", argv[i]);
	}
	if (a->addr == NULL)
		return usage_error("add white: missing ADDR[/PREFIX]");
	if (dur == NULL)
		a->expire = g->conf.white_expiry;
	else if ((a->expire = conf_parse_duration(dur)) <= 0)
		return arg_error("add white: bad duration \"%s\" (e.g. 36d, "
		    "12h, 90m)", dur);
	return 0;
}

static int
cmd_add(struct greydb *g, int argc, char **argv)
{
	struct add_args a = { NULL, 0 };
	struct trustdb_entry e = { .table = TRUSTDB_WHITE };
	struct white_rec *w = &e.v.white;
	char key[NETADDR_STRLEN];
	struct cidr c;
	int rc;

	if ((rc = add_parse(g, argc, argv, &a)) != 0)
		return rc;
	if (netaddr_parse_cidr(&c, a.addr) == -1)
		return arg_error("add white: \"%s\" is not an address or "
		    "address/prefix", a.addr);
	netaddr_key(&c.net, c.prefix, key, sizeof(key));
	if (greydb_open(g) == -1)
		return 1;
	if ((rc = trustdb_get_white(g->db, key, w)) == -1)
		return 1;
	if (rc == TRUSTDB_NOTFOUND) {
		memset(w, 0, sizeof(*w));
		w->first_seen = w->last_seen = g->now;
	}
	w->origin = WHITE_ADMIN;
	w->expire = g->now + a.expire;
	if (trustdb_put_white(g->db, key, w) != 0)
		return 1;
	if (strcmp(key, a.addr) != 0 && strchr(a.addr, '/') != NULL)
		fprintf(stderr, "greydb: %s stored as %s\n", a.addr, key);
	e.key = key;
	e.keylen = strlen(key);
	print_entry(g, &e);
	return 0;
}

/* ---- del ---- */

static int
del_white(struct greydb *g, int argc, char **argv)
{
	char key[NETADDR_STRLEN];
	struct cidr c;
	int rc;

	if (argc != 3)
		return usage_error("del white: needs one KEY");
	if (netaddr_parse_cidr(&c, argv[2]) == -1)
		return arg_error("del white: \"%s\" is not an address or "
		    "address/prefix", argv[2]);
	netaddr_key(&c.net, c.prefix, key, sizeof(key));
	if (greydb_open(g) == -1 || (rc = trustdb_del_white(g->db, key)) == -1)
		return 1;
	if (rc == TRUSTDB_NOTFOUND) {
		fprintf(stderr, "greydb: no white entry %s\n", key);
		return 1;
	}
	printf("deleted WHITE %s\n", key);
	return 0;
}

/* Undo the escaping of `list`'s text output.  -1 if malformed. */
static int
unvis_arg(const char *arg, char *out, size_t len)
{
	if (strlen(arg) >= len || strunvis(out, arg) == -1)
		return -1;
	return 0;
}

/*
 * Delete the grey entry exactly as listed; failing that, the key greyd
 * would build from those parts (normalised sender, lowercased recipient).
 * The key deleted is left in e.
 */
static int
del_grey_key(struct greydb *g, const char *client, const char *sender,
    const char *rcpt, char *key, struct trustdb_entry *e)
{
	size_t cl = strlen(client), sl = strlen(sender), rl = strlen(rcpt);
	int rc = TRUSTDB_NOTFOUND;

	e->key = key;
	if (cl + sl + rl + 2 <= TRUSTDB_KEY_MAX) {
		memcpy(key, client, cl + 1);
		memcpy(key + cl + 1, sender, sl + 1);
		memcpy(key + cl + 1 + sl + 1, rcpt, rl + 1);
		e->keylen = cl + sl + rl + 2;
		rc = trustdb_del_grey(g->db, key, e->keylen);
	}
	if (rc != TRUSTDB_NOTFOUND)
		return rc;
	e->keylen = greylist_triplet_key(key, TRUSTDB_KEY_MAX + 1, client,
	    sender, rcpt);
	return e->keylen == 0 ? TRUSTDB_NOTFOUND :
	    trustdb_del_grey(g->db, key, e->keylen);
}

static void
print_grey_key(const char *what, const struct trustdb_entry *e)
{
	struct field f[MAX_FIELDS];

	grey_fields(e, f);
	printf("%s ", what);
	print_text(stdout, TRUSTDB_GREY, f, 3);
}

static int
del_grey(struct greydb *g, int argc, char **argv)
{
	char client[TRUSTDB_KEY_MAX], sraw[TRUSTDB_KEY_MAX];
	char rraw[TRUSTDB_KEY_MAX];
	char sender[SMTP_PATH_MAX_KEY], rcpt[SMTP_PATH_MAX_KEY];
	char key[TRUSTDB_KEY_MAX + 1];
	struct trustdb_entry e = { .table = TRUSTDB_GREY };
	int rc;

	if (argc != 5)
		return usage_error("del grey: needs CLIENTKEY SENDER "
		    "RECIPIENT");
	if (unvis_arg(argv[2], client, sizeof(client)) == -1 ||
	    unvis_arg(argv[3], sraw, sizeof(sraw)) == -1 ||
	    unvis_arg(argv[4], rraw, sizeof(rraw)) == -1 ||
	    path_arg(sraw, sender, sizeof(sender)) == -1 ||
	    path_arg(rraw, rcpt, sizeof(rcpt)) == -1 || client[0] == '\0')
		return arg_error("del grey: bad escape or overlong argument");
	if (greydb_open(g) == -1 ||
	    (rc = del_grey_key(g, client, sender, rcpt, key, &e)) == -1)
		return 1;
	if (rc == TRUSTDB_NOTFOUND) {
		fprintf(stderr, "greydb: no grey entry %s from=<%s> to=<%s>\n",
		    argv[2], argv[3], argv[4]);
		return 1;
	}
	print_grey_key("deleted", &e);
	return 0;
}

static int
cmd_del(struct greydb *g, int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "white") == 0)
		return del_white(g, argc, argv);
	if (argc >= 2 && strcmp(argv[1], "grey") == 0)
		return del_grey(g, argc, argv);
	return usage_error("del: say \"del white\" or \"del grey\"");
}

/* ---- stats ---- */

struct stats {
	struct greydb *g;
	long origin[4];		/* by enum white_origin; [0] unknown */
	long white_expired, grey_pass, grey_expired;
};

static int
stats_cb(const struct trustdb_entry *e, void *arg)
{
	struct stats *st = arg;
	int64_t now = st->g->now;
	struct grey_rec upd;
	int wait;

	if (e->table == TRUSTDB_WHITE) {
		st->origin[e->v.white.origin <= WHITE_ADMIN ?
		    e->v.white.origin : 0]++;
		st->white_expired += e->v.white.expire <= now;
	} else {
		st->grey_pass += greylist_decide(&st->g->conf, &e->v.grey, now,
		    &upd, &wait) == GREYLIST_PASS;
		st->grey_expired += e->v.grey.expire <= now;
	}
	return greydb_should_stop(st->g);
}

static int
cmd_stats(struct greydb *g, int argc, char **argv)
{
	struct stats st = { .g = g };
	long n[3];

	if (argc != 1)
		return usage_error("stats: unexpected argument \"%s\"",
		    argv[1]);
	if (greydb_open(g) == -1 ||
	    trustdb_count(g->db, TRUSTDB_WHITE, &n[TRUSTDB_WHITE]) != 0 ||
	    trustdb_count(g->db, TRUSTDB_GREY, &n[TRUSTDB_GREY]) != 0 ||
	    trustdb_count(g->db, TRUSTDB_CLIENT, &n[TRUSTDB_CLIENT]) != 0 ||
	    trustdb_iterate(g->db, TRUSTDB_WHITE, stats_cb, &st) != 0 ||
	    trustdb_iterate(g->db, TRUSTDB_GREY, stats_cb, &st) != 0)
		return 1;
	if (g->stopped)
		return 1;
	printf("WHITE entries=%ld local=%ld peer=%ld admin=%ld expired=%ld\n",
	    n[TRUSTDB_WHITE], st.origin[WHITE_LOCAL], st.origin[WHITE_PEER],
	    st.origin[WHITE_ADMIN], st.white_expired);
	printf("GREY entries=%ld pass_now=%ld expired=%ld\n", n[TRUSTDB_GREY],
	    st.grey_pass, st.grey_expired);
	printf("CLIENT entries=%ld\n", n[TRUSTDB_CLIENT]);
	return 0;
}

/* ---- explain ---- */

struct explain {
	struct netaddr addr;
	char sender[SMTP_PATH_MAX_KEY], rcpt[SMTP_PATH_MAX_KEY];
	char addrstr[NETADDR_STRLEN], ckey[NETADDR_STRLEN];
	char tkey[TRUSTDB_KEY_MAX];
	size_t tlen;
};

static void
explain_client(struct greydb *g, const struct explain *x)
{
	struct trustdb_entry e = {
		.table = TRUSTDB_CLIENT, .key = x->addrstr,
		.keylen = strlen(x->addrstr),
	};

	printf("%-12s%s\n", "address", x->addrstr);
	if (trustdb_get_client(g->db, x->addrstr, &e.v.client) == 0)
		print_detail("client", &e);
	else
		printf("%-12s%s\n", "client", "no record");
}

/* The key and the normalised triplet, as greyd builds them. */
static void
explain_triplet(const struct explain *x)
{
	const char *p = x->tkey, *end = x->tkey + x->tlen, *s, *r;
	char vs[VIS_LEN(SMTP_PATH_MAX_KEY)], vr[VIS_LEN(SMTP_PATH_MAX_KEY)];
	size_t len;

	key_part(&p, end, &len);
	s = key_part(&p, end, &len);
	strvisx(vs, s, len, VIS_FLAGS);
	r = key_part(&p, end, &len);
	strvisx(vr, r, len, VIS_FLAGS);
	printf("%-12s%s\n", "client key", x->ckey);
	printf("%-12s%s from=<%s> to=<%s>\n", "triplet", x->ckey, vs, vr);
}

/* allow_clients or the white database: the fast path.  true if taken. */
static bool
explain_fast_path(struct greydb *g, const struct explain *x, int *rc)
{
	char key[NETADDR_STRLEN], tbuf[TIME_LEN];
	struct white_rec w;
	size_t i;

	for (i = 0; i < g->conf.nallow_clients; i++) {
		if (!netaddr_in_cidr(&x->addr, &g->conf.allow_clients[i]))
			continue;
		netaddr_key(&g->conf.allow_clients[i].net,
		    g->conf.allow_clients[i].prefix, key, sizeof(key));
		printf("%-12sfast path (allow_clients %s)\n", "answer", key);
		return true;
	}
	*rc = trustdb_find_white(g->db, &x->addr, g->now,
	    (uint32_t)g->conf.auto_whitelist_after, key, sizeof(key), &w);
	if (*rc != 0)
		return *rc == -1;
	format_time(w.expire, tbuf, sizeof(tbuf));
	printf("%-12sfast path (white %s, expires %s, origin %s)\n", "answer",
	    key, tbuf, origin_name(w.origin));
	return true;
}

static void
explain_pass(struct greydb *g, const struct explain *x,
    const struct grey_rec *old)
{
	struct white_rec w, upd;
	char tbuf[TIME_LEN];

	if (old != NULL)
		printf("%-12spass (waited %lld s)", "answer",
		    (long long)(g->now - old->first_seen));
	else
		printf("%-12spass (greylist_delay is 0)", "answer");
	greylist_white_pass(&g->conf,
	    trustdb_get_white(g->db, x->ckey, &w) == 0 ? &w : NULL, g->now,
	    &upd);
	format_time(upd.expire, tbuf, sizeof(tbuf));
	printf("; %s would be whitelisted until %s\n", x->ckey, tbuf);
}

static int
explain_greylist(struct greydb *g, const struct explain *x)
{
	struct trustdb_entry e = {
		.table = TRUSTDB_GREY, .key = x->tkey, .keylen = x->tlen
	};
	struct grey_rec upd;
	int rc, wait;

	if ((rc = trustdb_get_grey(g->db, x->tkey, x->tlen, &e.v.grey)) == -1)
		return 1;
	if (rc == 0)
		print_detail("grey", &e);
	else
		printf("%-12s%s\n", "grey", "no record");
	switch (greylist_decide(&g->conf, rc == 0 ? &e.v.grey : NULL, g->now,
	    &upd, &wait)) {
	case GREYLIST_NEW:
		printf("%-12s451 4.7.1 greylisted: new triplet%s, retry in "
		    "%d s\n", "answer", rc == 0 ?
		    " (the stored entry has expired)" : "", wait);
		break;
	case GREYLIST_EARLY:
		printf("%-12s451 4.7.1 greylisted: early retry, %d s left\n",
		    "answer", wait);
		break;
	case GREYLIST_PASS:
		explain_pass(g, x, rc == 0 ? &e.v.grey : NULL);
		break;
	case GREYLIST_EXEMPT:
		printf("%-12saccept (exempt from greylisting)\n", "answer");
		break;
	}
	return 0;
}

static int
explain_parse(struct greydb *g, int argc, char **argv, struct explain *x)
{
	if (argc != 4)
		return usage_error("explain: needs IP SENDER RECIPIENT");
	if (netaddr_parse(&x->addr, argv[1]) == -1)
		return arg_error("explain: \"%s\" is not an IP address",
		    argv[1]);
	if (path_arg(argv[2], x->sender, sizeof(x->sender)) == -1 ||
	    path_arg(argv[3], x->rcpt, sizeof(x->rcpt)) == -1)
		return arg_error("explain: address too long");
	netaddr_format(&x->addr, x->addrstr, sizeof(x->addrstr));
	greylist_client_key(&g->conf, &x->addr, x->ckey, sizeof(x->ckey));
	x->tlen = greylist_triplet_key(x->tkey, sizeof(x->tkey), x->ckey,
	    x->sender, x->rcpt);
	if (x->tlen == 0)
		return arg_error("explain: triplet too long");
	return 0;
}

/* What greyd would answer now, and why; reads only. */
static int
cmd_explain(struct greydb *g, int argc, char **argv)
{
	struct explain x;
	char vr[VIS_LEN(SMTP_PATH_MAX_KEY)];
	int rc = 0;

	memset(&x, 0, sizeof(x));
	if ((rc = explain_parse(g, argc, argv, &x)) != 0)
		return rc;
	if (greydb_open(g) == -1)
		return 1;
	explain_client(g, &x);
	explain_triplet(&x);
	if (explain_fast_path(g, &x, &rc))
		return rc == -1 ? 1 : 0;
	if (greylist_exempt(&g->conf, x.rcpt)) {
		printf("%-12saccept: relayed to the backend (<%s> is exempt "
		    "from greylisting)\n", "answer", vis_str(vr, x.rcpt));
		return 0;
	}
	return explain_greylist(g, &x);
}

/* ---- main ---- */

static const struct command {
	const char *name;
	int (*run)(struct greydb *g, int argc, char **argv);
} commands[] = {
	{ "list", cmd_list },
	{ "add", cmd_add },
	{ "del", cmd_del },
	{ "stats", cmd_stats },
	{ "explain", cmd_explain },
};

static int
load_conf(struct greydb *g, const char *path)
{
	char err[CONF_ERRLEN];

	if (path == NULL && access(GREYD_CONF_PATH, F_OK) == 0)
		path = GREYD_CONF_PATH;
	if (conf_load(&g->conf, path, NULL, err, sizeof(err)) == -1) {
		fprintf(stderr, "greydb: %s\n", err);
		return -1;
	}
	return 0;
}

static void
block_stop_signals(struct greydb *g)
{
	sigemptyset(&g->stopsigs);
	sigaddset(&g->stopsigs, SIGINT);
	sigaddset(&g->stopsigs, SIGTERM);
	sigaddset(&g->stopsigs, SIGHUP);
	sigaddset(&g->stopsigs, SIGQUIT);
	sigprocmask(SIG_BLOCK, &g->stopsigs, NULL);
	signal(SIGPIPE, SIG_IGN);
}

/* Close everything, then let a pending stop signal take effect. */
static int
finish(struct greydb *g, int rc)
{
	trustdb_close(g->db);
	g->db = NULL;
	if ((fflush(stdout) == EOF || ferror(stdout)) && rc == 0) {
		if (errno != EPIPE)
			fprintf(stderr, "greydb: stdout: %s\n",
			    strerror(errno));
		rc = 1;
	}
	sigprocmask(SIG_UNBLOCK, &g->stopsigs, NULL);
	return rc;
}

static const struct command *
find_command(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(name, commands[i].name) == 0)
			return &commands[i];
	return NULL;
}

int
main(int argc, char **argv)
{
	struct greydb g;
	const struct command *cmd;
	const char *path = NULL;
	int ch, rc;

	memset(&g, 0, sizeof(g));
	log_init("greydb", 1);
	while ((ch = getopt(argc, argv, "+f:h")) != -1) {
		if (ch == 'f')
			path = optarg;
		else if (ch == 'h') {
			usage(stdout);
			return 0;
		} else {
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc == 0)
		return usage_error("no command");
	if ((cmd = find_command(argv[0])) == NULL)
		return usage_error("unknown command \"%s\"", argv[0]);
	if (load_conf(&g, path) == -1)
		return 1;
	g.now = (int64_t)time(NULL);
	block_stop_signals(&g);
	rc = finish(&g, cmd->run(&g, argc, argv));
	conf_free(&g.conf);
	return rc;
}
