/*
 * greydb.c — the trust database admin tool: list, add, delete, import,
 * count and explain entries, while greyd runs (same Berkeley DB
 * environment, its own process; see trustdb.h).  It links trustdb.c,
 * conf.c, greylist.c and rcpt.c, so what it shows and explains is computed
 * by greyd's own code.
 *
 *   greydb [-f FILE] list [TABLE] [--json]
 *   greydb [-f FILE] list client [--sort FIELD] [--json]
 *   greydb [-f FILE] add white ADDR[/PREFIX] [--expire DURATION]
 *   greydb [-f FILE] add trap ADDR [--expire DURATION]
 *   greydb [-f FILE] add spamtrap ADDR
 *   greydb [-f FILE] del white KEY | del trap ADDR | del spamtrap ADDR
 *   greydb [-f FILE] del rcpt KEY
 *   greydb [-f FILE] del grey CLIENTKEY SENDER RECIPIENT
 *   greydb [-f FILE] import recipients|spamtraps FILE
 *   greydb [-f FILE] import traps FILE [--expire DURATION]
 *   greydb [-f FILE] stats
 *   greydb [-f FILE] explain IP [SENDER RECIPIENT]
 *
 * TABLE is white, grey, client, trap, spamtrap or rcpt.  The configuration
 * is FILE, else /etc/greyd/greyd.conf if it exists, else the embedded
 * defaults (db_dir, the greylist, trap and recipient settings matter).
 *
 * Living beside greyd:
 *   - no lock is held while output is written (trustdb_iterate reads in
 *     short batches), so `greydb list | less` never stalls greyd;
 *     `list client --sort` reads every client record into memory first
 *     (about 100 octets each);
 *   - SIGINT, SIGTERM, SIGHUP and SIGQUIT are blocked while the database is
 *     open: a listing or an import stops at the next record, the
 *     environment is closed, then the signal takes effect.  (A greydb that
 *     died with the environment open would make the next open run
 *     recovery, which greyd survives by reopening, but which is better
 *     avoided.)  SIGPIPE is ignored, so `greydb list | head` stops quietly;
 *   - run as root, greydb first becomes the owner of db_dir (greyd hands
 *     it to its `user`), so files it creates stay usable by greyd.  An
 *     import file is therefore read as that user, except for `import
 *     traps`, which opens its file first;
 *   - an import of traps checks the whole file before it writes anything,
 *     then writes one record per transaction (greyd is never held up for
 *     longer than one put).
 *
 * Text output escapes control characters, backslashes and non-ASCII octets
 * C-style (strvis); `del grey` decodes its arguments the same way, so a
 * line of `list grey` can always be pasted back.  --json writes JSON Lines.
 *
 * Exit status: 0 success, 1 failure (no such entry, database, input or
 * output error), 2 bad usage.
 */
#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LIBBSD_OPENBSD_VIS	/* we use strvisx/strunvis only */
#include <vis.h>

#include <event2/event.h>

#include "clock.h"
#include "conf.h"
#include "dns.h"
#include "dnsbl.h"
#include "greylist.h"
#include "log.h"
#include "netaddr.h"
#include "rcpt.h"
#include "spf.h"
#include "trustdb.h"

#ifndef GREYD_CONF_PATH
#define GREYD_CONF_PATH		"/etc/greyd/greyd.conf"
#endif

#define EXIT_USAGE		2
#define TIME_LEN		32
#define VIS_FLAGS		(VIS_CSTYLE | VIS_OCTAL | VIS_TAB | VIS_NL)
#define VIS_LEN(n)		(4 * (n) + 1)
#define SIGNAL_CHECK_EVERY	64	/* records between looks at signals */
#define MAX_FIELDS		12
#define ROWS_INITIAL		1024	/* list client --sort: first allocation */
#define NELEM(a)		(sizeof(a) / sizeof((a)[0]))

struct greydb {
	struct greyd_conf conf;
	struct trustdb *db;
	sigset_t stopsigs;		/* blocked while the database is open */
	int64_t now;
	bool json;
	bool stopped;			/* a signal or an output error */
	unsigned long records;
};

/* ---- names ---- */

static const char *const table_names[TRUSTDB_NTABLES] = {
	[TRUSTDB_GREY] = "grey", [TRUSTDB_WHITE] = "white",
	[TRUSTDB_CLIENT] = "client", [TRUSTDB_TRAP] = "trap",
	[TRUSTDB_SPAMTRAP] = "spamtrap", [TRUSTDB_RCPT] = "rcpt",
};
static const char *const table_labels[TRUSTDB_NTABLES] = {
	[TRUSTDB_GREY] = "GREY", [TRUSTDB_WHITE] = "WHITE",
	[TRUSTDB_CLIENT] = "CLIENT", [TRUSTDB_TRAP] = "TRAP",
	[TRUSTDB_SPAMTRAP] = "SPAMTRAP", [TRUSTDB_RCPT] = "RCPT",
};
static const char *const white_origin_names[] = {
	[WHITE_LOCAL] = "local", [WHITE_PEER] = "peer", [WHITE_ADMIN] = "admin",
};
static const char *const list_origin_names[] = {
	[ORIGIN_MAP] = "map", [ORIGIN_ADMIN] = "admin",
	[ORIGIN_CALLOUT] = "callout", [ORIGIN_SYNC] = "sync",
};
static const char *const trap_reason_names[] = {
	[TRAP_SPAMTRAP] = "spamtrap", [TRAP_PREGREET] = "pregreet",
	[TRAP_PROTOCOL] = "protocol", [TRAP_ADMIN] = "admin",
	[TRAP_PEER] = "peer",
};
static const char *const reject_names[REJECT_NREASONS] = {
	[REJECT_RCPT] = "rcpt", [REJECT_LIMIT] = "limit",
	[REJECT_PROTOCOL] = "protocol", [REJECT_PREGREET] = "pregreet",
	[REJECT_TRAP] = "trap", [REJECT_BACKEND] = "backend",
	[REJECT_DNSBL] = "dnsbl", [REJECT_SPF] = "spf",
};

/* What `list client --sort` orders by (descending). */
enum sort_field {
	SORT_CONNECTIONS, SORT_GREYLISTED, SORT_PASSED, SORT_DELIVERED,
	SORT_REJECTED, SORT_TRAPPED, SORT_LAST_SEEN,
};
static const char *const sort_names[] = {
	[SORT_CONNECTIONS] = "connections", [SORT_GREYLISTED] = "greylisted",
	[SORT_PASSED] = "passed", [SORT_DELIVERED] = "delivered",
	[SORT_REJECTED] = "rejected", [SORT_TRAPPED] = "trapped",
	[SORT_LAST_SEEN] = "last_seen",
};

#define NAME_OF(names, v)	name_of((names), NELEM(names), (v))

static const char *
name_of(const char *const *names, size_t n, unsigned v)
{
	return v < n && names[v] != NULL ? names[v] : "unknown";
}

/* Index of s in names, or -1. */
static int
index_of(const char *const *names, size_t n, const char *s)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (names[i] != NULL && strcmp(s, names[i]) == 0)
			return (int)i;
	return -1;
}

static void
usage(FILE *fp)
{
	fputs("usage: greydb [-f FILE] COMMAND ...\n"
	    "  list [white|grey|client|trap|spamtrap|rcpt] [--json]\n"
	    "  list client [--sort FIELD] [--json]\n"
	    "      FIELD: connections greylisted passed delivered rejected "
	    "trapped last_seen\n"
	    "  add white ADDR[/PREFIX] [--expire DURATION]\n"
	    "  add trap ADDR [--expire DURATION]\n"
	    "  add spamtrap ADDR\n"
	    "  del white KEY\n"
	    "  del grey CLIENTKEY SENDER RECIPIENT\n"
	    "  del trap ADDR\n"
	    "  del spamtrap ADDR\n"
	    "  del rcpt KEY\n"
	    "  import recipients FILE\n"
	    "  import spamtraps FILE\n"
	    "  import traps FILE [--expire DURATION]\n"
	    "  stats\n"
	    "  explain IP [SENDER RECIPIENT]\n", fp);
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

/* A failure that is not the user's syntax: message, exit status 1. */
static __attribute__((format(printf, 1, 2))) int
fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	verror(fmt, ap);
	va_end(ap);
	return 1;
}

/* ---- output ---- */

/*
 * F_TTL holds the seconds left before an expiry ("3600s" or "expired");
 * F_OPTTIME is a time that may be unset (0: left out of text, null in
 * JSON); F_REASONS is client_rec.rejected_by (text: the non-zero ones,
 * "rcpt:2,trap:1"; JSON: an object with every reason).  A field with
 * never set is "never" in text and null in JSON.
 */
enum field_type { F_STR, F_PATH, F_TIME, F_NUM, F_TTL, F_OPTTIME, F_REASONS };

/* One named value of a record; the first field of a record is its key. */
struct field {
	const char *name;
	enum field_type type;
	const char *s;
	size_t len;
	int64_t n;
	const uint32_t *counts;	/* F_REASONS: REJECT_NREASONS counters */
	bool never;
};

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

/* "2026-11-22T10:00:00Z (in 3600 s)" or "... (expired)". */
static const char *
format_expiry(int64_t t, int64_t now, char *buf, size_t len)
{
	char tbuf[TIME_LEN];

	format_time(t, tbuf, sizeof(tbuf));
	if (t > now)
		snprintf(buf, len, "%s (in %lld s)", tbuf,
		    (long long)(t - now));
	else
		snprintf(buf, len, "%s (expired)", tbuf);
	return buf;
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
json_value(FILE *fp, const struct field *f)
{
	char tbuf[TIME_LEN];
	size_t i;

	if (f->never || (f->type == F_OPTTIME && f->n == 0)) {
		fputs("null", fp);
		return;
	}
	switch (f->type) {
	case F_NUM:
		fprintf(fp, "%lld", (long long)f->n);
		break;
	case F_TTL:
		fprintf(fp, "%lld", (long long)(f->n > 0 ? f->n : 0));
		break;
	case F_TIME:
	case F_OPTTIME:
		format_time(f->n, tbuf, sizeof(tbuf));
		fprintf(fp, "\"%s\"", tbuf);
		break;
	case F_REASONS:
		for (i = 0; i < REJECT_NREASONS; i++)
			fprintf(fp, "%s\"%s\":%u", i == 0 ? "{" : ",",
			    reject_names[i], f->counts[i]);
		fputs("}", fp);
		break;
	case F_STR:
	case F_PATH:
		json_string(fp, f->s, f->len);
		break;
	}
}

static void
print_json(FILE *fp, enum trustdb_table t, const struct field *f, size_t n)
{
	size_t i;

	fprintf(fp, "{\"table\":\"%s\"", table_names[t]);
	for (i = 0; i < n; i++) {
		fprintf(fp, ",\"%s\":", f[i].name);
		json_value(fp, &f[i]);
	}
	fputs("}\n", fp);
}

static bool
reasons_zero(const uint32_t *counts)
{
	size_t i;

	for (i = 0; i < REJECT_NREASONS; i++)
		if (counts[i] != 0)
			return false;
	return true;
}

/*
 * Write one field as text after sep ("name=value" if named); an unset
 * F_OPTTIME or an all-zero F_REASONS writes nothing.  True if written.
 */
static bool
text_field(FILE *fp, const struct field *f, const char *sep, bool named)
{
	char vbuf[VIS_LEN(TRUSTDB_KEY_MAX)], tbuf[TIME_LEN];
	const char *comma = "";
	size_t i;

	if ((f->type == F_OPTTIME && f->n == 0) ||
	    (f->type == F_REASONS && reasons_zero(f->counts)))
		return false;
	fputs(sep, fp);
	if (named)
		fprintf(fp, "%s=", f->name);
	if (f->never) {
		fputs("never", fp);
		return true;
	}
	switch (f->type) {
	case F_NUM:
		fprintf(fp, "%lld", (long long)f->n);
		break;
	case F_TTL:
		if (f->n > 0)
			fprintf(fp, "%llds", (long long)f->n);
		else
			fputs("expired", fp);
		break;
	case F_TIME:
	case F_OPTTIME:
		format_time(f->n, tbuf, sizeof(tbuf));
		fputs(tbuf, fp);
		break;
	case F_REASONS:
		for (i = 0; i < REJECT_NREASONS; i++) {
			if (f->counts[i] == 0)
				continue;
			fprintf(fp, "%s%s:%u", comma, reject_names[i],
			    f->counts[i]);
			comma = ",";
		}
		break;
	case F_STR:
	case F_PATH:
		strvisx(vbuf, f->s, f->len, VIS_FLAGS);
		fprintf(fp, f->type == F_PATH ? "<%s>" : "%s", vbuf);
		break;
	}
	return true;
}

static void
print_text(FILE *fp, enum trustdb_table t, const struct field *f, size_t n)
{
	size_t i;

	fputs(table_labels[t], fp);
	for (i = 0; i < n; i++)
		text_field(fp, &f[i], " ", i > 0);
	fputs("\n", fp);
}

static struct field
fstr(const char *name, enum field_type type, const char *s, size_t len)
{
	struct field f = { .name = name, .type = type, .s = s, .len = len };

	return f;
}

static struct field
fname(const char *name, const char *s)
{
	return fstr(name, F_STR, s, strlen(s));
}

static struct field
fnum(const char *name, enum field_type type, int64_t n)
{
	struct field f = { .name = name, .type = type, .n = n };

	return f;
}

/* An expiry time, 0 meaning never: the time and the seconds left. */
static size_t
fexpire(struct field *f, int64_t expire, int64_t now)
{
	f[0] = fnum("expire", F_TIME, expire);
	f[1] = fnum("ttl", F_TTL, expire - now);
	f[0].never = f[1].never = expire == 0;
	return 2;
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
grey_fields(const struct trustdb_entry *e, int64_t now, struct field *f)
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
	return 7 + fexpire(f + 7, r->expire, now);
}

static size_t
white_fields(const struct trustdb_entry *e, int64_t now, struct field *f)
{
	const struct white_rec *r = &e->v.white;

	f[0] = fstr("key", F_STR, e->key, e->keylen);
	f[1] = fnum("first", F_TIME, r->first_seen);
	f[2] = fnum("last", F_TIME, r->last_seen);
	fexpire(f + 3, r->expire, now);
	f[5] = fnum("passes", F_NUM, r->passes);
	f[6] = fnum("messages", F_NUM, r->messages);
	f[7] = fname("origin", NAME_OF(white_origin_names, r->origin));
	return 8;
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
	f[8] = fnum("rejected_by", F_REASONS, 0);
	f[8].counts = r->rejected_by;
	f[9] = fnum("trapped", F_NUM, r->trapped);
	f[10] = fnum("greet_pass_until", F_OPTTIME, r->greet_pass_until);
	return 11;
}

static size_t
trap_fields(const struct trustdb_entry *e, int64_t now, struct field *f)
{
	const struct trap_rec *r = &e->v.trap;

	f[0] = fstr("addr", F_STR, e->key, e->keylen);
	f[1] = fnum("trapped_at", F_TIME, r->trapped_at);
	fexpire(f + 2, r->expire, now);
	f[4] = fname("reason", NAME_OF(trap_reason_names, r->reason));
	return 5;
}

static size_t
spamtrap_fields(const struct trustdb_entry *e, struct field *f)
{
	const struct spamtrap_rec *r = &e->v.spamtrap;

	f[0] = fstr("addr", F_STR, e->key, e->keylen);
	f[1] = fnum("added", F_TIME, r->added);
	f[2] = fname("origin", NAME_OF(list_origin_names, r->origin));
	return 3;
}

static size_t
rcpt_fields(const struct trustdb_entry *e, int64_t now, struct field *f)
{
	const struct rcpt_rec *r = &e->v.rcpt;

	f[0] = fstr("key", F_STR, e->key, e->keylen);
	f[1] = fname("verdict", r->valid ? "valid" : "unknown");
	f[2] = fnum("checked", F_TIME, r->checked);
	fexpire(f + 3, r->expire, now);
	f[5] = fname("origin", NAME_OF(list_origin_names, r->origin));
	return 6;
}

static size_t
entry_fields(const struct trustdb_entry *e, int64_t now, struct field *f)
{
	switch (e->table) {
	case TRUSTDB_GREY:
		return grey_fields(e, now, f);
	case TRUSTDB_WHITE:
		return white_fields(e, now, f);
	case TRUSTDB_CLIENT:
		return client_fields(e, f);
	case TRUSTDB_TRAP:
		return trap_fields(e, now, f);
	case TRUSTDB_SPAMTRAP:
		return spamtrap_fields(e, f);
	case TRUSTDB_RCPT:
		return rcpt_fields(e, now, f);
	}
	return 0;
}

static void
print_entry(const struct greydb *g, const struct trustdb_entry *e)
{
	struct field f[MAX_FIELDS];
	size_t n = entry_fields(e, g->now, f);

	if (g->json)
		print_json(stdout, e->table, f, n);
	else
		print_text(stdout, e->table, f, n);
}

/* Print one record without its label (and key, unless with_key), as
 * explain shows it. */
static void
print_detail(const struct greydb *g, const char *label,
    const struct trustdb_entry *e, bool with_key)
{
	struct field f[MAX_FIELDS];
	size_t n = entry_fields(e, g->now, f), i;
	size_t first = with_key ? 0 : e->table == TRUSTDB_GREY ? 3 : 1;
	bool any = false;

	printf("%-12s", label);
	for (i = first; i < n; i++)
		if (text_field(stdout, &f[i], any ? " " : "", i > 0))
			any = true;
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

/* A recipient address or rcpt key as greyd stores it: bare, lowercased. */
static int
rcpt_arg(const char *arg, char *out, size_t len)
{
	char bare[SMTP_PATH_MAX_KEY];

	if (path_arg(arg, bare, sizeof(bare)) == -1 || bare[0] == '\0')
		return -1;
	return rcpt_key(bare, out, len);
}

/* Does addr (lowercased) look like local@domain? */
static bool
mailbox_ok(const char *addr)
{
	const char *at = strrchr(addr, '@'), *p;

	if (at == NULL || at == addr || at[1] == '\0' || at[1] == '.' ||
	    at[strlen(at) - 1] == '.' || strstr(at, "..") != NULL)
		return false;
	for (p = addr; p < at; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f || *p == '<' ||
		    *p == '>')
			return false;
	for (p = at + 1; *p != '\0'; p++)
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.' &&
		    (unsigned char)*p < 0x80)
			return false;
	return true;
}

/* A single client address, as greyd keys the trap and client tables. */
static int
client_addr_arg(const char *arg, char *out, size_t len)
{
	struct netaddr a;

	if (netaddr_parse(&a, arg) == -1)
		return -1;
	netaddr_format(&a, out, len);
	return 0;
}

/* --expire DURATION or --expire=DURATION at argv[*i]; 1 if it was one. */
static int
expire_option(int argc, char **argv, int *i, const char **dur)
{
	if (strcmp(argv[*i], "--expire") == 0 && *i + 1 < argc) {
		*dur = argv[++*i];
		return 1;
	}
	if (strncmp(argv[*i], "--expire=", 9) == 0) {
		*dur = argv[*i] + 9;
		return 1;
	}
	return 0;
}

/* Seconds from dur, or def when dur is NULL; -1 (reported) if bad. */
static long long
expire_seconds(const char *what, const char *dur, long long def)
{
	long long secs;

	if (dur == NULL)
		return def;
	if ((secs = conf_parse_duration(dur)) <= 0) {
		arg_error("%s: bad duration \"%s\" (e.g. 36d, 12h, 90m)", what,
		    dur);
		return -1;
	}
	return secs;
}

/* ---- list ---- */

static int
list_cb(const struct trustdb_entry *e, void *arg)
{
	struct greydb *g = arg;

	print_entry(g, e);
	return greydb_should_stop(g);
}

struct client_row {
	char *key;
	size_t keylen;
	struct client_rec r;
};

struct client_rows {
	struct greydb *g;
	struct client_row *v;
	size_t n, cap;
	bool failed;
};

static int
collect_client(const struct trustdb_entry *e, void *arg)
{
	struct client_rows *rows = arg;
	struct client_row *row;
	size_t cap;
	void *p;

	if (rows->n == rows->cap) {
		cap = rows->cap > 0 ? rows->cap * 2 : ROWS_INITIAL;
		if ((p = reallocarray(rows->v, cap, sizeof(*rows->v))) == NULL) {
			rows->failed = true;
			return 1;
		}
		rows->v = p;
		rows->cap = cap;
	}
	row = &rows->v[rows->n];
	if ((row->key = strndup(e->key, e->keylen)) == NULL) {
		rows->failed = true;
		return 1;
	}
	row->keylen = e->keylen;
	row->r = e->v.client;
	rows->n++;
	return greydb_should_stop(rows->g);
}

static int64_t
client_sort_value(const struct client_rec *r, enum sort_field by)
{
	switch (by) {
	case SORT_CONNECTIONS:
		return r->connections;
	case SORT_GREYLISTED:
		return r->greylisted;
	case SORT_PASSED:
		return r->passed;
	case SORT_DELIVERED:
		return r->delivered;
	case SORT_REJECTED:
		return r->rejected;
	case SORT_TRAPPED:
		return r->trapped;
	case SORT_LAST_SEEN:
		return r->last_seen;
	}
	return 0;
}

/* Descending by the field; equal values in key order. */
static int
client_row_cmp(const void *a, const void *b, void *arg)
{
	const struct client_row *x = a, *y = b;
	enum sort_field by = *(const enum sort_field *)arg;
	int64_t vx = client_sort_value(&x->r, by);
	int64_t vy = client_sort_value(&y->r, by);
	size_t n = x->keylen < y->keylen ? x->keylen : y->keylen;
	int c;

	if (vx != vy)
		return vx > vy ? -1 : 1;
	if ((c = memcmp(x->key, y->key, n)) != 0)
		return c;
	return x->keylen < y->keylen ? -1 : x->keylen > y->keylen;
}

static int
list_clients_sorted(struct greydb *g, enum sort_field by)
{
	struct client_rows rows = { .g = g };
	struct trustdb_entry e = { .table = TRUSTDB_CLIENT };
	size_t i;
	int rc = 0;

	if (trustdb_iterate(g->db, TRUSTDB_CLIENT, collect_client, &rows) != 0)
		rc = 1;
	else if (rows.failed)
		rc = fail("list client: out of memory");
	if (rc == 0 && !g->stopped) {
		qsort_r(rows.v, rows.n, sizeof(*rows.v), client_row_cmp, &by);
		for (i = 0; i < rows.n && !greydb_should_stop(g); i++) {
			e.key = rows.v[i].key;
			e.keylen = rows.v[i].keylen;
			e.v.client = rows.v[i].r;
			print_entry(g, &e);
		}
	}
	for (i = 0; i < rows.n; i++)
		free(rows.v[i].key);
	free(rows.v);
	return rc;
}

static int
cmd_list(struct greydb *g, int argc, char **argv)
{
	static const enum trustdb_table all[] = {
		TRUSTDB_WHITE, TRUSTDB_GREY, TRUSTDB_CLIENT, TRUSTDB_TRAP,
		TRUSTDB_SPAMTRAP, TRUSTDB_RCPT,
	};
	const char *sort = NULL;
	int i, table = -1, by = -1;
	size_t t;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			g->json = true;
		else if (strcmp(argv[i], "--sort") == 0 && i + 1 < argc)
			sort = argv[++i];
		else if (strncmp(argv[i], "--sort=", 7) == 0)
			sort = argv[i] + 7;
		else if (table == -1 && (table = index_of(table_names,
		    NELEM(table_names), argv[i])) != -1)
			continue;
		else
			return usage_error("list: unexpected argument \"%s\"",
			    argv[i]);
	}
	if (sort != NULL && table != TRUSTDB_CLIENT)
		return usage_error("list: --sort is for \"list client\" only");
	if (sort != NULL &&
	    (by = index_of(sort_names, NELEM(sort_names), sort)) == -1)
		return arg_error("list client: cannot sort by \"%s\" (say "
		    "connections, greylisted, passed, delivered, rejected, "
		    "trapped or last_seen)", sort);
	if (greydb_open(g) == -1)
		return 1;
	if (by != -1)
		return list_clients_sorted(g, (enum sort_field)by);
	for (t = 0; t < NELEM(all) && !g->stopped; t++) {
		if (table != -1 && (int)all[t] != table)
			continue;
		if (trustdb_iterate(g->db, all[t], list_cb, g) != 0)
			return 1;
	}
	return 0;
}

/* ---- add ---- */

struct add_args {
	const char *what;	/* "add white", for messages */
	const char *addr;
	const char *dur;	/* --expire, or NULL */
};

/* ADDR and, where allowed, --expire DURATION, in any order. */
static int
add_parse(int argc, char **argv, bool expire_ok, struct add_args *a)
{
	int i;

	for (i = 2; i < argc; i++) {
		if (expire_ok && expire_option(argc, argv, &i, &a->dur))
			continue;
		if (a->addr == NULL && argv[i][0] != '-')
			a->addr = argv[i];
		else
			return usage_error("%s: unexpected argument \"%s\"",
			    a->what, argv[i]);
	}
	if (a->addr == NULL)
		return usage_error("%s: missing ADDR", a->what);
	return 0;
}

static int
add_white(struct greydb *g, int argc, char **argv)
{
	struct add_args a = { .what = "add white" };
	struct trustdb_entry e = { .table = TRUSTDB_WHITE };
	struct white_rec *w = &e.v.white;
	char key[NETADDR_STRLEN];
	long long expire;
	struct cidr c;
	int rc;

	if ((rc = add_parse(argc, argv, true, &a)) != 0)
		return rc;
	if ((expire = expire_seconds(a.what, a.dur, g->conf.white_expiry)) < 0)
		return EXIT_USAGE;
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
	w->expire = g->now + expire;
	if (trustdb_put_white(g->db, key, w) != 0)
		return 1;
	if (strcmp(key, a.addr) != 0 && strchr(a.addr, '/') != NULL)
		fprintf(stderr, "greydb: %s stored as %s\n", a.addr, key);
	e.key = key;
	e.keylen = strlen(key);
	print_entry(g, &e);
	return 0;
}

static int
add_trap(struct greydb *g, int argc, char **argv)
{
	struct add_args a = { .what = "add trap" };
	struct trustdb_entry e = { .table = TRUSTDB_TRAP };
	char addr[NETADDR_STRLEN];
	long long expire;
	int rc;

	if ((rc = add_parse(argc, argv, true, &a)) != 0)
		return rc;
	if ((expire = expire_seconds(a.what, a.dur, g->conf.trap_expiry)) < 0)
		return EXIT_USAGE;
	if (client_addr_arg(a.addr, addr, sizeof(addr)) == -1)
		return arg_error("add trap: \"%s\" is not a single IP address",
		    a.addr);
	if (greydb_open(g) == -1)
		return 1;
	e.v.trap.trapped_at = g->now;
	e.v.trap.expire = g->now + expire;
	e.v.trap.reason = TRAP_ADMIN;
	if (trustdb_put_trap(g->db, addr, &e.v.trap) != 0)
		return 1;
	e.key = addr;
	e.keylen = strlen(addr);
	print_entry(g, &e);
	return 0;
}

static int
add_spamtrap(struct greydb *g, int argc, char **argv)
{
	struct add_args a = { .what = "add spamtrap" };
	struct trustdb_entry e = { .table = TRUSTDB_SPAMTRAP };
	char key[SMTP_PATH_MAX_KEY];
	int rc;

	if ((rc = add_parse(argc, argv, false, &a)) != 0)
		return rc;
	if (rcpt_arg(a.addr, key, sizeof(key)) == -1 || !mailbox_ok(key))
		return arg_error("add spamtrap: \"%s\" is not an address "
		    "(local@domain)", a.addr);
	if (greydb_open(g) == -1)
		return 1;
	e.v.spamtrap.added = g->now;
	e.v.spamtrap.origin = ORIGIN_ADMIN;
	if (trustdb_put_spamtrap(g->db, key, &e.v.spamtrap) != 0)
		return 1;
	e.key = key;
	e.keylen = strlen(key);
	print_entry(g, &e);
	return 0;
}

static int
cmd_add(struct greydb *g, int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "white") == 0)
		return add_white(g, argc, argv);
	if (argc >= 2 && strcmp(argv[1], "trap") == 0)
		return add_trap(g, argc, argv);
	if (argc >= 2 && strcmp(argv[1], "spamtrap") == 0)
		return add_spamtrap(g, argc, argv);
	return usage_error("add: say \"add white\", \"add trap\" or "
	    "\"add spamtrap\"");
}

/* ---- del ---- */

/* After a delete of key from table: report it; 1 if there was none. */
static int
del_report(int rc, enum trustdb_table t, const char *key)
{
	char vbuf[VIS_LEN(TRUSTDB_KEY_MAX)];

	if (rc == -1)
		return 1;
	if (rc == TRUSTDB_NOTFOUND)
		return fail("no %s entry %s", table_names[t],
		    vis_str(vbuf, key));
	printf("deleted %s %s\n", table_labels[t], vis_str(vbuf, key));
	return 0;
}

static int
del_white(struct greydb *g, int argc, char **argv)
{
	char key[NETADDR_STRLEN];
	struct cidr c;

	if (argc != 3)
		return usage_error("del white: needs one KEY");
	if (netaddr_parse_cidr(&c, argv[2]) == -1)
		return arg_error("del white: \"%s\" is not an address or "
		    "address/prefix", argv[2]);
	netaddr_key(&c.net, c.prefix, key, sizeof(key));
	if (greydb_open(g) == -1)
		return 1;
	return del_report(trustdb_del_white(g->db, key), TRUSTDB_WHITE, key);
}

static int
del_trap(struct greydb *g, int argc, char **argv)
{
	char addr[NETADDR_STRLEN];

	if (argc != 3)
		return usage_error("del trap: needs one ADDR");
	if (client_addr_arg(argv[2], addr, sizeof(addr)) == -1)
		return arg_error("del trap: \"%s\" is not a single IP address",
		    argv[2]);
	if (greydb_open(g) == -1)
		return 1;
	return del_report(trustdb_del_trap(g->db, addr), TRUSTDB_TRAP, addr);
}

static int
del_spamtrap(struct greydb *g, int argc, char **argv)
{
	char key[SMTP_PATH_MAX_KEY];

	if (argc != 3)
		return usage_error("del spamtrap: needs one ADDR");
	if (rcpt_arg(argv[2], key, sizeof(key)) == -1)
		return arg_error("del spamtrap: bad address \"%s\"", argv[2]);
	if (greydb_open(g) == -1)
		return 1;
	return del_report(trustdb_del_spamtrap(g->db, key), TRUSTDB_SPAMTRAP,
	    key);
}

static int
del_rcpt(struct greydb *g, int argc, char **argv)
{
	char key[SMTP_PATH_MAX_KEY];

	if (argc != 3)
		return usage_error("del rcpt: needs one KEY");
	if (rcpt_arg(argv[2], key, sizeof(key)) == -1)
		return arg_error("del rcpt: bad key \"%s\"", argv[2]);
	if (greydb_open(g) == -1)
		return 1;
	return del_report(trustdb_del_rcpt(g->db, key), TRUSTDB_RCPT, key);
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
print_grey_key(const struct greydb *g, const char *what,
    const struct trustdb_entry *e)
{
	struct field f[MAX_FIELDS];

	grey_fields(e, g->now, f);
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
	print_grey_key(g, "deleted", &e);
	return 0;
}

static int
cmd_del(struct greydb *g, int argc, char **argv)
{
	static const struct {
		const char *table;
		int (*run)(struct greydb *, int, char **);
	} dels[] = {
		{ "white", del_white }, { "grey", del_grey },
		{ "trap", del_trap }, { "spamtrap", del_spamtrap },
		{ "rcpt", del_rcpt },
	};
	size_t i;

	for (i = 0; argc >= 2 && i < NELEM(dels); i++)
		if (strcmp(argv[1], dels[i].table) == 0)
			return dels[i].run(g, argc, argv);
	return usage_error("del: say \"del white\", \"del grey\", \"del "
	    "trap\", \"del spamtrap\" or \"del rcpt\"");
}

/* ---- import ---- */

struct trap_list {
	char (*addr)[NETADDR_STRLEN];
	size_t n, cap;
};

/* A bad line of a traps file: "FILE:LINE: reason", stop. */
static __attribute__((format(printf, 3, 4))) int
line_error(const char *path, unsigned long lineno, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "greydb: %s:%lu: ", path, lineno);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\n", stderr);
	return -1;
}

/* Add one address (text of len octets at tok) to l. */
static int
trap_list_add(struct trap_list *l, const char *path, unsigned long lineno,
    const char *tok, size_t len)
{
	char word[NETADDR_STRLEN], vbuf[VIS_LEN(NETADDR_STRLEN)];
	size_t cap;
	void *p;

	if (l->n == l->cap) {
		cap = l->cap > 0 ? l->cap * 2 : ROWS_INITIAL;
		if ((p = reallocarray(l->addr, cap, sizeof(*l->addr))) == NULL)
			return line_error(path, lineno, "out of memory");
		l->addr = p;
		l->cap = cap;
	}
	if (len < sizeof(word)) {
		memcpy(word, tok, len);
		word[len] = '\0';
		if (client_addr_arg(word, l->addr[l->n], NETADDR_STRLEN) == 0) {
			l->n++;
			return 0;
		}
	}
	strvisx(vbuf, tok, len < NETADDR_STRLEN ? len : NETADDR_STRLEN - 1,
	    VIS_FLAGS);
	return line_error(path, lineno, "\"%s%s\" is not a single IP address",
	    vbuf, len < NETADDR_STRLEN ? "" : "...");
}

/* One client address per line, '#' starts a comment.  -1 if bad. */
static int
read_traps(FILE *fp, const char *path, struct trap_list *l)
{
	static const char space[] = " \t\r\n";
	char *line = NULL, *p, *tok;
	unsigned long lineno = 0;
	size_t cap = 0, len;
	ssize_t n;
	int rc = 0;

	while (rc == 0 && (n = getline(&line, &cap, fp)) != -1) {
		lineno++;
		if (memchr(line, '\0', (size_t)n) != NULL) {
			rc = line_error(path, lineno, "NUL octet");
			break;
		}
		if ((p = strchr(line, '#')) != NULL)
			*p = '\0';
		tok = line + strspn(line, space);
		if (*tok == '\0')
			continue;
		len = strcspn(tok, space);
		if (tok[len + strspn(tok + len, space)] != '\0')
			rc = line_error(path, lineno, "one address per line");
		else
			rc = trap_list_add(l, path, lineno, tok, len);
	}
	if (rc == 0 && ferror(fp)) {
		fail("%s: %s", path, strerror(errno));
		rc = -1;
	}
	free(line);
	return rc;
}

static int
import_traps(struct greydb *g, int argc, char **argv)
{
	struct trap_list l = { NULL, 0, 0 };
	struct trap_rec t = { .reason = TRAP_ADMIN };
	const char *path = NULL, *dur = NULL;
	long long expire;
	size_t k;
	FILE *fp;
	int i, rc = 0;

	for (i = 2; i < argc; i++) {
		if (expire_option(argc, argv, &i, &dur))
			continue;
		if (path != NULL || argv[i][0] == '-')
			return usage_error("import traps: unexpected argument "
			    "\"%s\"", argv[i]);
		path = argv[i];
	}
	if (path == NULL)
		return usage_error("import traps: missing FILE");
	if ((expire = expire_seconds("import traps", dur,
	    g->conf.trap_expiry)) < 0)
		return EXIT_USAGE;
	/* Opened before greydb_open gives up root, like the shell would. */
	if ((fp = fopen(path, "r")) == NULL)
		return fail("%s: %s", path, strerror(errno));
	if (read_traps(fp, path, &l) == -1)
		rc = 1;
	fclose(fp);
	if (rc == 0 && greydb_open(g) == -1)
		rc = 1;
	t.trapped_at = g->now;
	t.expire = g->now + expire;
	for (k = 0; rc == 0 && k < l.n; k++) {
		if (trustdb_put_trap(g->db, l.addr[k], &t) != 0)
			rc = fail("import traps: stopped after %zu of %zu "
			    "addresses", k, l.n);
		else if (greydb_should_stop(g))
			rc = fail("import traps: interrupted after %zu of %zu "
			    "addresses", k + 1, l.n);
	}
	if (rc == 0)
		printf("imported %zu traps from %s\n", l.n, path);
	free(l.addr);
	return rc;
}

/* recipients or spamtraps: rcpt.c's map reader, as admin entries. */
static int
import_list(struct greydb *g, int argc, char **argv, enum trustdb_table t)
{
	char err[CONF_ERRLEN];
	long count = 0;

	if (argc != 3)
		return usage_error("import %s: needs one FILE", argv[1]);
	if (greydb_open(g) == -1)
		return 1;
	if (rcpt_import_file(g->db, t, argv[2], ORIGIN_ADMIN, g->now, &count,
	    err, sizeof(err)) != 0)
		return fail("%s", err);
	printf("imported %ld %s from %s\n", count, argv[1], argv[2]);
	return 0;
}

static int
cmd_import(struct greydb *g, int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "recipients") == 0)
		return import_list(g, argc, argv, TRUSTDB_RCPT);
	if (argc >= 2 && strcmp(argv[1], "spamtraps") == 0)
		return import_list(g, argc, argv, TRUSTDB_SPAMTRAP);
	if (argc >= 2 && strcmp(argv[1], "traps") == 0)
		return import_traps(g, argc, argv);
	return usage_error("import: say \"import recipients\", \"import "
	    "spamtraps\" or \"import traps\"");
}

/* ---- stats ---- */

#define ORIGIN_SLOTS	8	/* by origin or reason value; [0] unknown */

struct stats {
	struct greydb *g;
	long origin[TRUSTDB_NTABLES][ORIGIN_SLOTS];
	long expired[TRUSTDB_NTABLES];
	long grey_pass, rcpt_valid, rcpt_unknown;
};

static void
stats_origin(struct stats *st, enum trustdb_table t, unsigned v)
{
	st->origin[t][v < ORIGIN_SLOTS ? v : 0]++;
}

static int
stats_cb(const struct trustdb_entry *e, void *arg)
{
	struct stats *st = arg;
	int64_t now = st->g->now;
	struct grey_rec upd;
	int wait;

	switch (e->table) {
	case TRUSTDB_WHITE:
		stats_origin(st, e->table, e->v.white.origin);
		st->expired[e->table] += e->v.white.expire <= now;
		break;
	case TRUSTDB_GREY:
		st->grey_pass += greylist_decide(&st->g->conf, &e->v.grey, now,
		    &upd, &wait) == GREYLIST_PASS;
		st->expired[e->table] += e->v.grey.expire <= now;
		break;
	case TRUSTDB_TRAP:
		stats_origin(st, e->table, e->v.trap.reason);
		st->expired[e->table] += e->v.trap.expire <= now;
		break;
	case TRUSTDB_SPAMTRAP:
		stats_origin(st, e->table, e->v.spamtrap.origin);
		break;
	case TRUSTDB_RCPT:
		stats_origin(st, e->table, e->v.rcpt.origin);
		st->rcpt_valid += e->v.rcpt.valid != 0;
		st->rcpt_unknown += e->v.rcpt.valid == 0;
		st->expired[e->table] += e->v.rcpt.expire != 0 &&
		    e->v.rcpt.expire <= now;
		break;
	case TRUSTDB_CLIENT:
		break;
	}
	return greydb_should_stop(st->g);
}

/* " name=count" for each named origin (or reason) of table t. */
static void
print_origins(const struct stats *st, enum trustdb_table t,
    const char *const *names, size_t n)
{
	size_t i;

	for (i = 1; i < n && i < ORIGIN_SLOTS; i++)
		if (names[i] != NULL)
			printf(" %s=%ld", names[i], st->origin[t][i]);
}

static int
cmd_stats(struct greydb *g, int argc, char **argv)
{
	static const enum trustdb_table walk[] = {
		TRUSTDB_WHITE, TRUSTDB_GREY, TRUSTDB_TRAP, TRUSTDB_SPAMTRAP,
		TRUSTDB_RCPT,
	};
	struct stats st = { .g = g };
	long n[TRUSTDB_NTABLES];
	size_t i;

	if (argc != 1)
		return usage_error("stats: unexpected argument \"%s\"",
		    argv[1]);
	if (greydb_open(g) == -1)
		return 1;
	for (i = 0; i < TRUSTDB_NTABLES; i++)
		if (trustdb_count(g->db, (enum trustdb_table)i, &n[i]) != 0)
			return 1;
	for (i = 0; i < NELEM(walk) && !g->stopped; i++)
		if (trustdb_iterate(g->db, walk[i], stats_cb, &st) != 0)
			return 1;
	if (g->stopped)
		return 1;
	printf("WHITE entries=%ld", n[TRUSTDB_WHITE]);
	print_origins(&st, TRUSTDB_WHITE, white_origin_names,
	    NELEM(white_origin_names));
	printf(" expired=%ld\n", st.expired[TRUSTDB_WHITE]);
	printf("GREY entries=%ld pass_now=%ld expired=%ld\n", n[TRUSTDB_GREY],
	    st.grey_pass, st.expired[TRUSTDB_GREY]);
	printf("CLIENT entries=%ld\n", n[TRUSTDB_CLIENT]);
	printf("TRAP entries=%ld", n[TRUSTDB_TRAP]);
	print_origins(&st, TRUSTDB_TRAP, trap_reason_names,
	    NELEM(trap_reason_names));
	printf(" expired=%ld\n", st.expired[TRUSTDB_TRAP]);
	printf("SPAMTRAP entries=%ld map=%ld admin=%ld sync=%ld\n",
	    n[TRUSTDB_SPAMTRAP], st.origin[TRUSTDB_SPAMTRAP][ORIGIN_MAP],
	    st.origin[TRUSTDB_SPAMTRAP][ORIGIN_ADMIN],
	    st.origin[TRUSTDB_SPAMTRAP][ORIGIN_SYNC]);
	printf("RCPT entries=%ld valid=%ld unknown=%ld", n[TRUSTDB_RCPT],
	    st.rcpt_valid, st.rcpt_unknown);
	print_origins(&st, TRUSTDB_RCPT, list_origin_names,
	    NELEM(list_origin_names));
	printf(" expired=%ld\n", st.expired[TRUSTDB_RCPT]);
	return 0;
}

/* ---- explain ---- */

struct explain {
	struct netaddr addr;
	bool full;			/* IP SENDER RECIPIENT, not IP alone */
	char sender[SMTP_PATH_MAX_KEY], rcpt[SMTP_PATH_MAX_KEY];
	char addrstr[NETADDR_STRLEN], ckey[NETADDR_STRLEN];
	char tkey[TRUSTDB_KEY_MAX];
	size_t tlen;
	struct client_rec client;	/* zero if there is no record */
	bool trapped;			/* a live trap record */
	char allow[NETADDR_STRLEN];	/* matching allow_clients entry, or "" */
	/* the DNS lists, asked now as greyd would */
	struct dnsbl_result bl, rhs;
	bool listed, trusted, rhs_listed;
	/* SPF, checked now as greyd would at MAIL FROM */
	bool spf_greylist;		/* its action is greylist */
	char spfkey[SPF_DOMAIN_MAX + 5];	/* "spf:domain" keys the triplet */
};

/* How far explain got with the recipient checks. */
enum explain_step { EXPLAIN_ERROR = -1, EXPLAIN_ON, EXPLAIN_ANSWERED };

/* ---- explain: the DNS lists ---- */

struct dns_wait {
	struct event_base *base;
	int left;
};

static void
explain_dns_done(void *arg)
{
	struct dns_wait *w = arg;

	if (--w->left == 0)
		event_base_loopbreak(w->base);
}

/* Start (or find done) one lookup; w->left counts the pending. */
static void
explain_dns_wait(struct dnsbl_lookup *l, struct dns_wait *w)
{
	if (l != NULL && dnsbl_wait(l, explain_dns_done, w))
		w->left++;
}

/* Ask dnsbl_sites (and rhsbl_sender_sites for the sender's domain) now,
 * through dns.c and dnsbl.c as greyd does: the same scores and texts. */
static int
explain_dns_ask(struct greydb *g, struct explain *x)
{
	struct greyd_conf *cp = &g->conf;
	struct dns_wait w = { .left = 0 };
	struct dnsbl_lookup *lc, *ls = NULL;
	const char *at = strrchr(x->sender, '@');
	char err[CONF_ERRLEN];
	struct dnsbl *b;
	struct dns *d;
	int rc = -1;

	if ((w.base = event_base_new()) == NULL)
		return fail("explain: cannot make an event loop");
	if ((d = dns_new(w.base, cp, dns_try_ms(cp), err,
	    sizeof(err))) == NULL) {
		fail("explain: %s", err);
		goto out;
	}
	if ((b = dnsbl_new(w.base, d)) == NULL) {
		fail("explain: out of memory");
		goto out;
	}
	lc = dnsbl_client(b, &x->addr, clock_ms());
	if (x->full && at != NULL && at[1] != '\0')
		ls = dnsbl_sender(b, at + 1, clock_ms());
	explain_dns_wait(lc, &w);
	explain_dns_wait(ls, &w);
	if (w.left > 0)
		event_base_dispatch(w.base);
	if (lc != NULL)
		dnsbl_result(lc, &x->bl);
	if (ls != NULL)
		dnsbl_result(ls, &x->rhs);
	dnsbl_release(lc);
	dnsbl_release(ls);
	dns_free(d);
	dnsbl_free(b);
	rc = 0;
out:
	event_base_free(w.base);
	return rc;
}

static void
explain_dns_line(const char *what, const char *whose,
    const struct dnsbl_result *r, const char *verdict)
{
	printf("%-12s%sscore=%d lists=\"%s\"%s%s%s: %s\n", what, whose,
	    r->score, r->hits, r->silent[0] != '\0' ? " silent=\"" : "",
	    r->silent, r->silent[0] != '\0' ? "\"" : "", verdict);
}

/* The lists' verdict, printed; none configured: nothing printed. */
static int
explain_dns(struct greydb *g, struct explain *x)
{
	const struct greyd_conf *c = &g->conf;
	char whose[SMTP_PATH_MAX_KEY + 16];
	const char *at = strrchr(x->sender, '@');

	if (c->ndnsbl_sites == 0 && (c->nrhsbl_sender_sites == 0 ||
	    !x->full))
		return 0;
	if (explain_dns_ask(g, x) == -1)
		return -1;
	x->listed = x->bl.score >= c->dnsbl_threshold;
	x->trusted = !x->listed && x->bl.score <= c->dnswl_threshold;
	x->rhs_listed = x->rhs.score >= c->dnsbl_threshold;
	if (c->ndnsbl_sites > 0)
		explain_dns_line("dnsbl", "", &x->bl, x->listed ? "listed" :
		    x->trusted ? "trusted (no greylisting; the fast path "
		    "while the result is cached)" : "not listed");
	if (c->nrhsbl_sender_sites > 0 && x->full && at != NULL) {
		snprintf(whose, sizeof(whose), "%s ", at + 1);
		explain_dns_line("rhsbl", whose, &x->rhs,
		    x->rhs_listed ? "listed" : "not listed");
	}
	return 0;
}

/* The answer for a listed client or sender domain, as greyd gives it. */
static int
explain_dns_answer(const struct greydb *g, const struct explain *x)
{
	const struct greyd_conf *c = &g->conf;
	const struct dnsbl_result *r = x->listed ? &x->bl : &x->rhs;
	char reply[512];

	if (!x->listed && !x->rhs_listed)
		return EXPLAIN_ON;
	if (c->dnsbl_action == ACTION_GREYLIST) {
		printf("%-12sgreylisted even if whitelisted, for at least "
		    "dnsbl_greylist_delay (%d s)\n", "dnsbl", c->dnsbl_greylist_delay);
		return EXPLAIN_ON;
	}
	dnsbl_reply(reply, sizeof(reply), r, x->addrstr,
	    x->listed ? NULL : x->sender);
	printf("%-12s%s%s\n", "answer", reply,
	    c->dnsbl_action == ACTION_TARPIT ? " (tarpitted while "
	    "max_tarpit_sessions has room)" : "");
	return EXPLAIN_ANSWERED;
}


static int
explain_client(struct greydb *g, struct explain *x)
{
	struct trustdb_entry e = {
		.table = TRUSTDB_CLIENT, .key = x->addrstr,
		.keylen = strlen(x->addrstr),
	};
	int rc;

	printf("%-12s%s\n", "address", x->addrstr);
	if ((rc = trustdb_get_client(g->db, x->addrstr, &e.v.client)) == -1)
		return -1;
	if (rc == 0) {
		print_detail(g, "client", &e, false);
		x->client = e.v.client;
	} else
		printf("%-12s%s\n", "client", "no record");
	return 0;
}

/* The trap record, as greyd's trustdb_find_trap sees it. */
static int
explain_trap(struct greydb *g, struct explain *x)
{
	char when[TIME_LEN + 32], since[TIME_LEN];
	struct trap_rec t;
	int rc;

	if ((rc = trustdb_get_trap(g->db, x->addrstr, &t)) == -1)
		return -1;
	if (rc == TRUSTDB_NOTFOUND) {
		printf("%-12snot trapped\n", "trap");
		return 0;
	}
	format_time(t.trapped_at, since, sizeof(since));
	x->trapped = t.expire > g->now;
	if (x->trapped)
		printf("%-12strapped until %s, reason %s, since %s\n", "trap",
		    format_expiry(t.expire, g->now, when, sizeof(when)),
		    NAME_OF(trap_reason_names, t.reason), since);
	else {
		format_time(t.expire, when, sizeof(when));
		printf("%-12snot trapped (the trap of %s, reason %s, expired "
		    "at %s)\n", "trap", since,
		    NAME_OF(trap_reason_names, t.reason), when);
	}
	return 0;
}

/* Does allow_clients hold the address?  The entry goes to x->allow. */
static bool
explain_allow(const struct greydb *g, struct explain *x)
{
	size_t i;

	for (i = 0; i < g->conf.nallow_clients; i++) {
		if (!netaddr_in_cidr(&x->addr, &g->conf.allow_clients[i]))
			continue;
		netaddr_key(&g->conf.allow_clients[i].net,
		    g->conf.allow_clients[i].prefix, x->allow,
		    sizeof(x->allow));
		return true;
	}
	return false;
}

static void
explain_greet(const struct greydb *g, const struct explain *x)
{
	int64_t until = x->client.greet_pass_until;
	char when[TIME_LEN + 32];

	if (g->conf.greet_wait <= 0)
		printf("%-12spregreet test off (greet_wait = 0)\n", "greet");
	else if (until > g->now)
		printf("%-12spassed the pregreet test; not tested again until "
		    "%s\n", "greet", format_expiry(until, g->now, when,
		    sizeof(when)));
	else if (until != 0) {
		format_time(until, when, sizeof(when));
		printf("%-12sthe pregreet pass expired at %s: tested at the "
		    "next connection\n", "greet", when);
	} else
		printf("%-12sno pregreet pass on record: tested at the next "
		    "connection (greet_wait = %d s)\n", "greet",
		    g->conf.greet_wait);
}

static void
print_white(const struct greydb *g, const char *key, const struct white_rec *w,
    const char *note)
{
	char when[TIME_LEN + 32];

	printf("%-12s%s origin=%s passes=%u messages=%u, expires %s%s\n",
	    "white", key, NAME_OF(white_origin_names, w->origin), w->passes,
	    w->messages, format_expiry(w->expire, g->now, when, sizeof(when)),
	    note);
}

/*
 * The white entry greyd would match (trustdb_find_white with
 * auto_whitelist_after), else a local one that has too few passes yet.
 * 0 (whitelisted; its key in key), TRUSTDB_NOTFOUND or -1.
 */
static int
explain_white(struct greydb *g, const struct explain *x, char *key,
    size_t keylen)
{
	uint32_t min = (uint32_t)g->conf.auto_whitelist_after;
	char note[96];
	struct white_rec w;
	int rc;

	rc = trustdb_find_white(g->db, &x->addr, g->now, min, key, keylen, &w);
	if (rc == 0) {
		snprintf(note, sizeof(note), "; auto_whitelist_after = %u met",
		    min);
		print_white(g, key, &w, w.origin == WHITE_LOCAL ? note : "");
		return 0;
	}
	if (rc == -1 || (rc = trustdb_find_white(g->db, &x->addr, g->now, 0,
	    key, keylen, &w)) == -1)
		return -1;
	if (rc == 0) {
		snprintf(note, sizeof(note), "; auto_whitelist_after = %u not "
		    "met (%u of %u passes): not whitelisted yet", min,
		    w.passes, min);
		print_white(g, key, &w, note);
	} else
		printf("%-12sno entry\n", "white");
	return TRUSTDB_NOTFOUND;
}

/* explain IP: what greyd knows about the client and does at connect. */
static int
explain_address(struct greydb *g, struct explain *x)
{
	const char *tarpit = g->conf.trap_action == ACTION_TARPIT ?
	    "tarpitted while max_tarpit_sessions has room, else " : "";
	char key[NETADDR_STRLEN];
	bool allowed = explain_allow(g, x);
	int white;

	explain_greet(g, x);
	if (allowed)
		printf("%-12s%s\n", "allow", x->allow);
	if ((white = explain_white(g, x, key, sizeof(key))) == -1)
		return 1;
	if (allowed)
		printf("%-12sfast path (allow_clients %s)\n", "connect",
		    x->allow);
	else if (x->trapped)
		printf("%-12s%sgreyd's own session: every RCPT gets 550 5.7.1 "
		    "(trapped)\n", "connect", tarpit);
	else if (x->listed)
		printf("%-12sgreyd's own session, whitelisted or not: every "
		    "RCPT meets dnsbl_action = %s\n", "connect",
		    conf_action_name(g->conf.dnsbl_action));
	else if (x->trusted)
		printf("%-12sfast path (dnswl score=%d) once the result is "
		    "cached; before: a session without greylisting\n",
		    "connect", x->bl.score);
	else if (white == 0)
		printf("%-12sfast path (white %s)\n", "connect", key);
	else
		printf("%-12sgreyd's own session: recipient checks and "
		    "greylisting decide each RCPT\n", "connect");
	printf("%-12sper-client connection counters (concurrent sessions, "
	    "connection rate) live only in greyd's memory\n", "limits");
	return 0;
}

/* ---- explain: SPF ---- */

struct spf_wait {
	struct event_base *base;
	struct spf_answer a;
};

static void
explain_spf_done(const struct spf_answer *a, void *arg)
{
	struct spf_wait *w = arg;

	w->a = *a;
	event_base_loopbreak(w->base);
}

/* Check SPF now through spf.c as greyd does (no HELO name is known: a
 * null sender gives none).  -1 on failure. */
static int
explain_spf_ask(struct greydb *g, const struct explain *x,
    struct spf_answer *a)
{
	struct greyd_conf *cp = &g->conf;
	struct spf_wait w;
	char err[CONF_ERRLEN];
	struct spf *s;

	memset(&w, 0, sizeof(w));
	if ((w.base = event_base_new()) == NULL)
		return fail("explain: cannot make an event loop");
	if ((s = spf_new(w.base, dns_try_ms(cp), err,
	    sizeof(err))) == NULL) {
		event_base_free(w.base);
		return fail("explain: %s", err);
	}
	spf_check(s, &x->addr, "", x->sender, explain_spf_done, &w);
	event_base_dispatch(w.base);
	spf_free(s);
	event_base_free(w.base);
	*a = w.a;
	return 0;
}

/* MAIL FROM's SPF check and what greyd does with it; EXPLAIN_ANSWERED
 * if it refuses MAIL. */
static int
explain_spf(struct greydb *g, struct explain *x)
{
	const struct greyd_conf *c = &g->conf;
	char reply[512], vs[VIS_LEN(SMTP_PATH_MAX_KEY)];
	char vr[VIS_LEN(SMTP_PATH_MAX_KEY)];
	struct spf_answer a;
	enum conf_action act;

	if (c->spf_workers == 0)
		return EXPLAIN_ON;
	if (!c->spf_check_loopback && netaddr_is_loopback(&x->addr)) {
		printf("%-12snot checked (a client on this host; "
		    "spf_check_loopback = no)\n", "spf");
		return EXPLAIN_ON;
	}
	if (explain_spf_ask(g, x, &a) == -1)
		return EXPLAIN_ERROR;
	act = spf_action(c, a.result);
	printf("%-12sresult=%s identity=%s domain=%s action=%s%s%s%s\n",
	    "spf", spf_result_name(a.result), a.helo ? "helo" : "mailfrom",
	    a.domain, conf_action_name(act), a.reason[0] != '\0' ?
	    " reason=\"" : "", a.reason, a.reason[0] != '\0' ? "\"" : "");
	if (act == ACTION_REJECT || act == ACTION_TEMPFAIL) {
		spf_reply(reply, sizeof(reply), &a, x->sender, act);
		printf("%-12s%s\n", "answer", reply);
		return EXPLAIN_ANSWERED;
	}
	x->spf_greylist = act == ACTION_GREYLIST;
	if (spf_client_key(c, &a, act, x->spfkey, sizeof(x->spfkey))) {
		x->tlen = greylist_triplet_key(x->tkey, sizeof(x->tkey),
		    x->spfkey, x->sender, x->rcpt);
		if (x->tlen == 0) {
			fail("explain: triplet too long");
			return EXPLAIN_ERROR;
		}
		printf("%-12s%s from=<%s> to=<%s> (SPF pass: greylist_spf_key "
		    "keys it by the domain)\n", "triplet", x->spfkey,
		    vis_str(vs, x->sender), vis_str(vr, x->rcpt));
	}
	return EXPLAIN_ON;
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

/*
 * Before any recipient: allow_clients, the trap, the white database, as
 * greyd routes a connection.  EXPLAIN_ANSWERED if one of them decides.
 */
static int
explain_connect(struct greydb *g, struct explain *x)
{
	char key[NETADDR_STRLEN], tbuf[TIME_LEN];
	struct white_rec w;
	int rc;

	if (explain_allow(g, x)) {
		printf("%-12sfast path (allow_clients %s)\n", "answer",
		    x->allow);
		return EXPLAIN_ANSWERED;
	}
	if (x->trapped) {
		printf("%-12s550 5.7.1 Service unavailable; client [%s] "
		    "blocked (trapped%s)\n", "answer", x->addrstr,
		    g->conf.trap_action == ACTION_TARPIT ? "; tarpitted while "
		    "max_tarpit_sessions has room" : "");
		return EXPLAIN_ANSWERED;
	}
	if (x->listed)		/* greyd's session even for a white client */
		return EXPLAIN_ON;
	rc = trustdb_find_white(g->db, &x->addr, g->now,
	    (uint32_t)g->conf.auto_whitelist_after, key, sizeof(key), &w);
	if (rc == -1)
		return EXPLAIN_ERROR;
	if (rc != 0)
		return EXPLAIN_ON;
	format_time(w.expire, tbuf, sizeof(tbuf));
	printf("%-12sfast path (white %s, expires %s, origin %s)\n", "answer",
	    key, tbuf, NAME_OF(white_origin_names, w.origin));
	return EXPLAIN_ANSWERED;
}

/* A spamtrap recipient (checked before the DNS lists, as greyd does). */
static int
explain_spamtrap(const struct greydb *g, const struct explain *x)
{
	char vr[VIS_LEN(SMTP_PATH_MAX_KEY)];

	if (!rcpt_is_spamtrap(g->db, x->rcpt))
		return EXPLAIN_ON;
	printf("%-12s<%s> is a spamtrap\n", "recipient", vis_str(vr, x->rcpt));
	printf("%-12s550 5.7.1 Service unavailable; client [%s] blocked "
	    "(spamtrap; the client would be trapped for %d s, trap_expiry)\n",
	    "answer", x->addrstr, g->conf.trap_expiry);
	return EXPLAIN_ANSWERED;
}

/* Recipient verification (rcpt.c). */
static int
explain_recipient(struct greydb *g, const struct explain *x)
{
	struct trustdb_entry e = { .table = TRUSTDB_RCPT };
	char key[SMTP_PATH_MAX_KEY], vr[VIS_LEN(SMTP_PATH_MAX_KEY)];
	const char *why = NULL;
	enum rcpt_verdict v;
	int rc;

	if (rcpt_key(x->rcpt, key, sizeof(key)) == 0 && key[0] != '\0') {
		if ((rc = trustdb_get_rcpt(g->db, key, &e.v.rcpt)) == -1)
			return EXPLAIN_ERROR;
		e.key = key;
		e.keylen = strlen(key);
		if (rc == 0)
			print_detail(g, "rcpt", &e, true);
		else
			printf("%-12sno record for <%s>\n", "rcpt",
			    vis_str(vr, key));
	}
	v = rcpt_lookup(&g->conf, g->db, x->rcpt, g->now, &why);
	why = why != NULL ? why : "";
	vis_str(vr, x->rcpt);
	switch (v) {
	case RCPT_VALID:
		printf("%-12svalid (%s)\n", "recipient", why);
		return EXPLAIN_ON;
	case RCPT_UNCHECKED:
		printf("%-12sunchecked (%s): greylisting decides\n",
		    "recipient", why);
		return EXPLAIN_ON;
	case RCPT_CALLOUT:
		printf("%-12scallout needed (%s): greyd asks the backend and "
		    "caches its answer; below, the answer if it accepts\n",
		    "recipient", why);
		return EXPLAIN_ON;
	case RCPT_UNKNOWN:
		printf("%-12sunknown (%s)\n", "recipient", why);
		printf("%-12s550 5.1.1 <%s>: Recipient address rejected\n",
		    "answer", vr);
		return EXPLAIN_ANSWERED;
	case RCPT_TEMPFAIL:
		printf("%-12sunverified (%s)\n", "recipient", why);
		printf("%-12s450 4.1.1 <%s>: Recipient address rejected: "
		    "unverified address, try again later\n", "answer", vr);
		return EXPLAIN_ANSWERED;
	}
	return EXPLAIN_ON;
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
	if (upd.origin == WHITE_LOCAL && g->conf.auto_whitelist_after > 1 &&
	    upd.passes < (uint32_t)g->conf.auto_whitelist_after)
		printf("; %s would have %u of the %d passes "
		    "auto_whitelist_after asks for\n", x->ckey, upd.passes,
		    g->conf.auto_whitelist_after);
	else
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
		print_detail(g, "grey", &e, false);
	else
		printf("%-12s%s\n", "grey", "no record");
	switch (greylist_decide_min(&g->conf, rc == 0 ? &e.v.grey : NULL,
	    g->now, (x->listed || x->rhs_listed) &&
	    g->conf.dnsbl_action == ACTION_GREYLIST ?
	    g->conf.dnsbl_greylist_delay : 0, &upd, &wait)) {
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
	if (argc != 2 && argc != 4)
		return usage_error("explain: needs IP, or IP SENDER "
		    "RECIPIENT");
	if (netaddr_parse(&x->addr, argv[1]) == -1)
		return arg_error("explain: \"%s\" is not an IP address",
		    argv[1]);
	netaddr_format(&x->addr, x->addrstr, sizeof(x->addrstr));
	if (argc == 2)
		return 0;
	x->full = true;
	if (path_arg(argv[2], x->sender, sizeof(x->sender)) == -1 ||
	    path_arg(argv[3], x->rcpt, sizeof(x->rcpt)) == -1)
		return arg_error("explain: address too long");
	greylist_client_key(&g->conf, &x->addr, x->ckey, sizeof(x->ckey));
	x->tlen = greylist_triplet_key(x->tkey, sizeof(x->tkey), x->ckey,
	    x->sender, x->rcpt);
	if (x->tlen == 0)
		return arg_error("explain: triplet too long");
	return 0;
}

/* What greyd would do now, and why; reads only. */
static int
cmd_explain(struct greydb *g, int argc, char **argv)
{
	struct explain x;
	char vr[VIS_LEN(SMTP_PATH_MAX_KEY)];
	int rc;

	memset(&x, 0, sizeof(x));
	if ((rc = explain_parse(g, argc, argv, &x)) != 0)
		return rc;
	if (greydb_open(g) == -1 || explain_client(g, &x) == -1 ||
	    explain_trap(g, &x) == -1 || explain_dns(g, &x) == -1)
		return 1;
	if (!x.full)
		return explain_address(g, &x);
	explain_triplet(&x);
	if ((rc = explain_connect(g, &x)) != EXPLAIN_ON ||
	    (rc = explain_spf(g, &x)) != EXPLAIN_ON ||
	    (rc = explain_spamtrap(g, &x)) != EXPLAIN_ON ||
	    (rc = explain_dns_answer(g, &x)) != EXPLAIN_ON ||
	    (rc = explain_recipient(g, &x)) != EXPLAIN_ON)
		return rc == EXPLAIN_ERROR ? 1 : 0;
	if (greylist_exempt(&g->conf, x.rcpt)) {
		printf("%-12saccept: relayed to the backend (<%s> is exempt "
		    "from greylisting)\n", "answer", vis_str(vr, x.rcpt));
		return 0;
	}
	if (x.trusted && !x.spf_greylist && !(x.rhs_listed &&
	    g->conf.dnsbl_action == ACTION_GREYLIST)) {
		printf("%-12saccept: relayed to the backend (trusted by the "
		    "DNS whitelists: no greylisting)\n", "answer");
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
	{ "import", cmd_import },
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
	conf_install(&g->conf);		/* for dnsbl.c and spf.c */
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

	for (i = 0; i < NELEM(commands); i++)
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
