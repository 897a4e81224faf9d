/*
 * rcpt.c — recipient verification and spamtraps (see rcpt.h, design §3).
 *
 * Two parts (the backend callout is callout.c):
 *
 *  - Map files.  recipient_maps and spamtrap_maps are read line by line
 *    (at most MAP_LINE_MAX octets a line); the first white-space-separated
 *    column is the key, anything after it is ignored, so Postfix "key
 *    value" tables can be reused; '#' at the start of a line or after
 *    white space starts a comment.  A key is "user@domain" (a plausible
 *    address: dot-atom or quoted local part of at most 64 octets, domain
 *    of two or more LDH labels), "@domain" or "domain"; the domain of an
 *    address or wildcard is recorded as one of our domains too.  Every
 *    file is parsed into memory (sorted, duplicates dropped) before the
 *    first record is written, so a bad line leaves the database as it was.
 *    Records that greydb added (ORIGIN_ADMIN) are never replaced by a map
 *    load; map records no longer listed are purged (trustdb_purge_map).
 *
 *  - Lookup (rcpt_lookup): postmaster (bare or at any domain: RFC 5321
 *    4.5.1 makes it valid everywhere), then the exact address, the
 *    "@domain" wildcard and the "domain" record in the rcpt table, with the
 *    callout cache (ORIGIN_CALLOUT records that have not expired) in the
 *    same table; relay_domains are our domains as well.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include <event2/event.h>

#include "log.h"
#include "rcpt.h"

#define MAP_LINE_MAX		1000	/* octets of a map line, newline excluded */
#define RCPT_ADDR_MAX		254	/* RFC 5321 path minus the brackets */
#define RCPT_LOCAL_MAX		64
#define RCPT_DOMAIN_MAX		253


/* ---- keys ---- */

static char
ascii_lower(char ch)
{
	return ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
}

int
rcpt_key(const char *addr, char *out, size_t len)
{
	size_t i;

	for (i = 0; addr[i] != '\0'; i++) {
		if (i + 1 >= len)
			return -1;
		out[i] = ascii_lower(addr[i]);
	}
	if (len == 0)
		return -1;
	out[i] = '\0';
	return 0;
}

/* ---- syntax of map keys ---- */

static bool
label_char(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
	    ch == '-' || ch == '_' || ch >= 0x80;
}

/* A lowercased domain of two or more labels (LDH, '_', UTF-8 octets). */
static bool
domain_ok(const char *d, size_t len)
{
	size_t i, label = 0, labels = 1;

	if (len == 0 || len > RCPT_DOMAIN_MAX)
		return false;
	for (i = 0; i < len; i++) {
		if (d[i] == '.') {
			if (label == 0 || d[i - 1] == '-')
				return false;
			label = 0;
			labels++;
			continue;
		}
		if (!label_char((unsigned char)d[i]) ||
		    (label == 0 && d[i] == '-') || ++label > 63)
			return false;
	}
	return label > 0 && d[len - 1] != '-' && labels >= 2;
}

static bool
atext_char(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	    (ch >= '0' && ch <= '9') || ch >= 0x80 ||
	    strchr("!#$%&'*+-/=?^_`{|}~", ch) != NULL;
}

/* A dot-atom, or a quoted string without white space (it is one column). */
static bool
local_ok(const char *l, size_t len)
{
	size_t i;

	if (len == 0 || len > RCPT_LOCAL_MAX)
		return false;
	if (l[0] == '"') {
		if (len < 3 || l[len - 1] != '"')
			return false;
		for (i = 1; i < len - 1; i++)
			if (l[i] == '"' || (unsigned char)l[i] < 0x21 ||
			    l[i] == 0x7f)
				return false;
		return true;
	}
	if (l[0] == '.' || l[len - 1] == '.')
		return false;
	for (i = 0; i < len; i++) {
		if (l[i] == '.' ? l[i + 1] == '.' : !atext_char((unsigned char)l[i]))
			return false;
	}
	return true;
}

/* ---- map files ---- */

/* The keys of one table, collected before anything is written. */
/* A key, and whether a map line lists it (not only the domain of one). */
struct mapkey {
	char *key;
	bool listed;
};

struct keyset {
	struct mapkey *v;
	size_t n, cap;
};

enum map_kind { MAP_NONE, MAP_ADDR, MAP_WILDCARD, MAP_DOMAIN };

static int
keyset_add(struct keyset *ks, const char *key, size_t len, bool listed)
{
	struct mapkey *v;

	if (ks->n == ks->cap) {
		size_t cap = ks->cap ? ks->cap * 2 : 256;

		if ((v = reallocarray(ks->v, cap, sizeof(*v))) == NULL)
			return -1;
		ks->v = v;
		ks->cap = cap;
	}
	if ((ks->v[ks->n].key = strndup(key, len)) == NULL)
		return -1;
	ks->v[ks->n++].listed = listed;
	return 0;
}

static void
keyset_free(struct keyset *ks)
{
	size_t i;

	for (i = 0; i < ks->n; i++)
		free(ks->v[i].key);
	free(ks->v);
	memset(ks, 0, sizeof(*ks));
}

static int
key_cmp(const void *a, const void *b)
{
	return strcmp(((const struct mapkey *)a)->key,
	    ((const struct mapkey *)b)->key);
}

/* Sort and drop duplicates (the domain of every address, listed twice...). */
static void
keyset_unique(struct keyset *ks)
{
	size_t i, n = 0;

	if (ks->n == 0)
		return;
	qsort(ks->v, ks->n, sizeof(*ks->v), key_cmp);
	for (i = 1; i < ks->n; i++) {
		if (strcmp(ks->v[i].key, ks->v[n].key) == 0) {
			ks->v[n].listed |= ks->v[i].listed;
			free(ks->v[i].key);
		} else
			ks->v[++n] = ks->v[i];
	}
	ks->n = n + 1;
}

/* How many distinct keys a map line lists (after keyset_unique). */
static size_t
keyset_listed(const struct keyset *ks)
{
	size_t i, n = 0;

	for (i = 0; i < ks->n; i++)
		n += ks->v[i].listed;
	return n;
}

/* Control characters of a file name or key never reach the log as such. */
static void
err_sanitize(char *err)
{
	for (; *err != '\0'; err++)
		if ((unsigned char)*err < 0x20 || *err == 0x7f)
			*err = '?';
}

static int
map_error(char *err, size_t errlen, const char *path, long line,
    const char *reason, const char *key, size_t keylen)
{
	if (key != NULL)
		snprintf(err, errlen, "%s:%ld: %s: %.*s", path, line, reason,
		    (int)(keylen > 64 ? 64 : keylen), key);
	else
		snprintf(err, errlen, "%s:%ld: %s", path, line, reason);
	err_sanitize(err);
	return -1;
}

/*
 * Read one line (newline excluded) into buf of MAP_LINE_MAX + 1 octets.
 * 1: a line, 0: end of file, -1: too long, -2: NUL octet, -3: read error.
 */
static int
map_read_line(FILE *fp, char *buf, size_t *len)
{
	size_t n = 0;
	int ch;

	while ((ch = getc_unlocked(fp)) != EOF && ch != '\n') {
		if (ch == '\0')
			return -2;
		if (n == MAP_LINE_MAX)
			return -1;
		buf[n++] = (char)ch;
	}
	if (ch == EOF && ferror(fp))
		return -3;
	if (ch == EOF && n == 0)
		return 0;
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	buf[n] = '\0';
	*len = n;
	return 1;
}

/* Classify the lowercased first column of a line; NULL or the reason. */
static const char *
map_classify(const char *key, size_t len, enum map_kind *kind,
    size_t *domain_at)
{
	const char *at = memrchr(key, '@', len);

	if (at == NULL) {
		*kind = MAP_DOMAIN;
		*domain_at = 0;
		if (len > RCPT_DOMAIN_MAX)
			return "domain too long (more than 253 octets)";
		return domain_ok(key, len) ? NULL : "not an address or domain";
	}
	*kind = at == key ? MAP_WILDCARD : MAP_ADDR;
	*domain_at = (size_t)(at - key) + 1;
	if (len > RCPT_ADDR_MAX)
		return "address too long (more than 254 octets)";
	if (!domain_ok(at + 1, len - *domain_at))
		return "not an address or domain";
	if (*kind == MAP_ADDR && !local_ok(key, (size_t)(at - key)))
		return "not an address or domain";
	return NULL;
}

/* Parse one line into ks; -1 with err set if the line is bad. */
static int
map_parse_line(char *line, size_t len, enum trustdb_table table,
    struct keyset *ks, const char *path, long lineno, char *err,
    size_t errlen)
{
	enum map_kind kind;
	const char *reason;
	size_t i = 0, start, dom;

	while (i < len && (line[i] == ' ' || line[i] == '\t'))
		i++;
	if (i == len || line[i] == '#')
		return 0;
	for (start = i; i < len && line[i] != ' ' && line[i] != '\t'; i++)
		line[i] = ascii_lower(line[i]);
	if ((reason = map_classify(line + start, i - start, &kind, &dom)) !=
	    NULL)
		return map_error(err, errlen, path, lineno, reason,
		    line + start, i - start);
	if (table == TRUSTDB_SPAMTRAP && kind != MAP_ADDR)
		return map_error(err, errlen, path, lineno,
		    "a spamtrap must be an address", line + start, i - start);
	if (keyset_add(ks, line + start, i - start, true) == -1 ||
	    (table == TRUSTDB_RCPT && kind != MAP_DOMAIN &&
	    keyset_add(ks, line + start + dom, i - start - dom, false) == -1))
		return map_error(err, errlen, path, lineno, "out of memory",
		    NULL, 0);
	return 0;
}

/* Add every key of the file at path to ks. */
static int
map_parse_file(const char *path, enum trustdb_table table, struct keyset *ks,
    char *err, size_t errlen)
{
	char line[MAP_LINE_MAX + 1];
	long lineno = 0;
	size_t len;
	FILE *fp;
	int rc;

	if ((fp = fopen(path, "r")) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		err_sanitize(err);
		return -1;
	}
	while ((rc = map_read_line(fp, line, &len)) == 1) {
		lineno++;
		if (map_parse_line(line, len, table, ks, path, lineno, err,
		    errlen) == -1)
			break;
	}
	if (rc == -1)
		map_error(err, errlen, path, lineno + 1,
		    "line too long (more than 1000 octets)", NULL, 0);
	else if (rc == -2)
		map_error(err, errlen, path, lineno + 1, "NUL octet", NULL, 0);
	else if (rc == -3)
		map_error(err, errlen, path, lineno + 1, strerror(errno), NULL,
		    0);
	fclose(fp);
	return rc == 0 ? 0 : -1;
}

/*
 * Store one key; a map load keeps what an administrator added.
 * 1 written, 0 kept, -1 database error.
 */
static int
map_put(struct trustdb *db, enum trustdb_table table, const char *key,
    enum list_origin origin, int64_t stamp)
{
	struct rcpt_rec r = { .checked = stamp, .valid = 1, .origin = origin };
	struct spamtrap_rec s = { .added = stamp, .origin = origin };
	int rc;

	if (table == TRUSTDB_RCPT)
		rc = trustdb_get_rcpt(db, key, &r);
	else
		rc = trustdb_get_spamtrap(db, key, &s);
	if (rc == -1)
		return -1;
	if (rc == 0 && origin == ORIGIN_MAP &&
	    (table == TRUSTDB_RCPT ? r.origin : s.origin) == ORIGIN_ADMIN)
		return 0;
	r = (struct rcpt_rec){ .checked = stamp, .valid = 1, .origin = origin };
	s = (struct spamtrap_rec){ .added = stamp, .origin = origin };
	if (table == TRUSTDB_RCPT)
		rc = trustdb_put_rcpt(db, key, &r);
	else
		rc = trustdb_put_spamtrap(db, key, &s);
	return rc == 0 ? 1 : -1;
}

static int
map_write(struct trustdb *db, enum trustdb_table table,
    const struct keyset *ks, enum list_origin origin, int64_t stamp,
    long *count, char *err, size_t errlen)
{
	size_t i;
	int rc;

	*count = 0;
	for (i = 0; i < ks->n; i++) {
		if ((rc = map_put(db, table, ks->v[i].key, origin, stamp)) ==
		    -1) {
			snprintf(err, errlen, "database error writing %s "
			    "(%ld records written)", ks->v[i].key, *count);
			err_sanitize(err);
			return -1;
		}
		*count += rc;
	}
	return 0;
}

static int
map_parse_files(const struct conf_list *files, enum trustdb_table table,
    struct keyset *ks, char *err, size_t errlen)
{
	size_t i;

	for (i = 0; i < files->n; i++)
		if (map_parse_file(files->v[i], table, ks, err, errlen) == -1)
			return -1;
	keyset_unique(ks);
	return 0;
}

static bool
keyset_has(const char *key, void *arg)
{
	const struct keyset *ks = arg;
	struct mapkey k = { .key = (char *)key };

	return ks->n > 0 &&
	    bsearch(&k, ks->v, ks->n, sizeof(*ks->v), key_cmp) != NULL;
}

/* Write the parsed keys of table, then purge the map records not listed. */
static int
map_replace(struct trustdb *db, enum trustdb_table table,
    const struct keyset *ks, int64_t now, char *err, size_t errlen)
{
	long written;

	if (map_write(db, table, ks, ORIGIN_MAP, now, &written, err,
	    errlen) == -1)
		return -1;
	if (trustdb_purge_map(db, table, keyset_has, (void *)ks) == -1) {
		snprintf(err, errlen, "database error purging old %s entries",
		    table == TRUSTDB_RCPT ? "recipient" : "spamtrap");
		return -1;
	}
	return 0;
}

int
rcpt_load_maps(const struct greyd_conf *c, struct trustdb *db, int64_t now,
    char *err, size_t errlen)
{
	struct keyset rk = { 0 }, sk = { 0 };
	size_t i, addrs = 0;
	int rc = -1;

	if (map_parse_files(&c->recipient_maps, TRUSTDB_RCPT, &rk, err,
	    errlen) == -1 ||
	    map_parse_files(&c->spamtrap_maps, TRUSTDB_SPAMTRAP, &sk, err,
	    errlen) == -1)
		goto out;
	if (map_replace(db, TRUSTDB_RCPT, &rk, now, err, errlen) == -1 ||
	    map_replace(db, TRUSTDB_SPAMTRAP, &sk, now, err, errlen) == -1)
		goto out;
	for (i = 0; i < rk.n; i++)
		addrs += strchr(rk.v[i].key, '@') != NULL;
	log_info("maps: %zu recipients, %zu domains from %zu files", addrs,
	    rk.n - addrs, c->recipient_maps.n);
	log_info("maps: %zu spamtraps", sk.n);
	rc = 0;
out:
	keyset_free(&rk);
	keyset_free(&sk);
	return rc;
}

int
rcpt_check_maps(const struct greyd_conf *c, char *err, size_t errlen)
{
	struct keyset rk = { 0 }, sk = { 0 };
	int rc;

	rc = map_parse_files(&c->recipient_maps, TRUSTDB_RCPT, &rk, err,
	    errlen) == -1 || map_parse_files(&c->spamtrap_maps,
	    TRUSTDB_SPAMTRAP, &sk, err, errlen) == -1 ? -1 : 0;
	keyset_free(&rk);
	keyset_free(&sk);
	return rc;
}

int
rcpt_import_file(struct trustdb *db, enum trustdb_table table,
    const char *path, enum list_origin origin, int64_t stamp, long *count,
    char *err, size_t errlen)
{
	struct keyset ks = { 0 };
	long written;
	int rc = -1;

	*count = 0;
	if (table != TRUSTDB_RCPT && table != TRUSTDB_SPAMTRAP) {
		snprintf(err, errlen, "%s: not a recipient or spamtrap table",
		    path);
		return -1;
	}
	if (map_parse_file(path, table, &ks, err, errlen) == 0) {
		keyset_unique(&ks);
		rc = map_write(db, table, &ks, origin, stamp, &written, err,
		    errlen);
		if (rc == 0)
			*count = (long)keyset_listed(&ks);
	}
	keyset_free(&ks);
	return rc;
}

/* ---- lookup ---- */

bool
rcpt_is_spamtrap(struct trustdb *db, const char *rcpt)
{
	char key[RCPT_KEY_LEN];
	struct spamtrap_rec r;

	return rcpt_key(rcpt, key, sizeof(key)) == 0 &&
	    trustdb_get_spamtrap(db, key, &r) == 0;
}

static bool
relay_domain(const struct greyd_conf *c, const char *domain)
{
	size_t i;

	for (i = 0; i < c->relay_domains.n; i++)
		if (strcasecmp(c->relay_domains.v[i], domain) == 0)
			return true;
	return false;
}

/* Is there a map/admin record for key?  1 yes, 0 no, -1 database error. */
static int
listed(struct trustdb *db, const char *key)
{
	struct rcpt_rec r;
	int rc = trustdb_get_rcpt(db, key, &r);

	if (rc == -1)
		return -1;
	return rc == 0 && r.origin != ORIGIN_CALLOUT && r.valid;
}

/* The exact address: 1 answered (*v set), 0 not known, -1 error. */
static int
lookup_address(struct trustdb *db, const char *key, int64_t now,
    enum rcpt_verdict *v, const char **why)
{
	struct rcpt_rec r;
	int rc = trustdb_get_rcpt(db, key, &r);

	if (rc != 0)
		return rc == -1 ? -1 : 0;
	switch (r.origin) {
	case ORIGIN_CALLOUT:
		if (r.expire <= now)
			return 0;
		*why = "cache";
		*v = r.valid ? RCPT_VALID : RCPT_UNKNOWN;
		return 1;
	case ORIGIN_ADMIN:
		*why = "admin";
		break;
	case ORIGIN_SYNC:
		*why = "sync";
		break;
	default:
		*why = "map";
		break;
	}
	*v = r.valid ? RCPT_VALID : RCPT_UNKNOWN;
	return 1;
}

/* Not listed: our domain or not, and is the backend to be asked? */
static enum rcpt_verdict
lookup_domain(const struct greyd_conf *c, struct trustdb *db,
    const char *domain, const char **why)
{
	int ours = listed(db, domain);

	if (ours == -1) {
		*why = "database error";
		return RCPT_TEMPFAIL;
	}
	ours = ours || relay_domain(c, domain);
	if (c->recipient_verify == RCPT_VERIFY_BACKEND) {
		*why = ours ? "callout" : "callout (not our domain)";
		return RCPT_CALLOUT;
	}
	*why = ours ? "not in recipient maps" : "not our domain";
	return ours ? RCPT_UNKNOWN : RCPT_UNCHECKED;
}

enum rcpt_verdict
rcpt_lookup(const struct greyd_conf *c, struct trustdb *db, const char *rcpt,
    int64_t now, const char **why)
{
	char key[RCPT_KEY_LEN];
	enum rcpt_verdict v = RCPT_TEMPFAIL;
	const char *at = strrchr(rcpt, '@'), *wild;
	int rc;

	/* RFC 5321 4.5.1: every domain has a postmaster; bare is allowed. */
	if (at == NULL ? strcasecmp(rcpt, "postmaster") == 0 :
	    at - rcpt == 10 && strncasecmp(rcpt, "postmaster", 10) == 0) {
		*why = "postmaster";
		return RCPT_VALID;
	}
	if (at == NULL) {
		*why = "no domain";
		return RCPT_UNKNOWN;
	}
	if (rcpt_key(rcpt, key, sizeof(key)) == -1) {
		*why = "address too long";
		return RCPT_UNKNOWN;
	}
	wild = key + (at - rcpt);
	if ((rc = lookup_address(db, key, now, &v, why)) == 0 &&
	    (rc = listed(db, wild)) == 1) {
		*why = "map @domain";
		v = RCPT_VALID;
	}
	if (rc == -1) {
		*why = "database error";
		return RCPT_TEMPFAIL;
	}
	return rc == 1 ? v : lookup_domain(c, db, wild + 1, why);
}

const char *
rcpt_verdict_name(enum rcpt_verdict v)
{
	switch (v) {
	case RCPT_VALID:
		return "valid";
	case RCPT_UNKNOWN:
		return "unknown";
	case RCPT_UNCHECKED:
		return "unchecked";
	case RCPT_TEMPFAIL:
		return "tempfail";
	case RCPT_CALLOUT:
		return "callout";
	}
	return "?";
}
