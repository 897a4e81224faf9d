/*
 * conf.c — greyd.conf reader and printer (see conf.h and greyd.conf(5)).
 *
 * One table, settings[], names every setting with its type, its built-in
 * default as text, where it lives in struct greyd_conf and what a valid
 * value looks like.  The reader, the defaults and conf_print all come from
 * that table.  Loading runs in two phases, as Postfix does:
 *
 *  1. collect raw text: the defaults, then the file's logical lines, then
 *     the -o overrides.  A later value replaces an earlier one (no error)
 *     and remembers where it came from: file:line, "-o name=value" or the
 *     built-in default.
 *  2. for every setting in table order, expand $name, ${name} and $$
 *     against the raw values (recursively; a loop is an error), then parse
 *     and validate the result into the struct.
 *
 * So "$hostname" in smtp_banner sees the final hostname wherever it is set,
 * and defaults go through the same parser as file values.  If several
 * values are bad, the one reported is the earliest in the file, then in the
 * -o list, then a default (a bad default is usually caused by what the file
 * set).  Syntax errors and unknown names stop the reading at once.
 *
 * Choices beyond the Postfix syntax: a '#' starts a comment only at the
 * start of a line (as in main.cf); comment and blank lines do not end a
 * logical line; a continuation is joined with one space; logical lines and
 * expanded values are limited to CONF_LINE_MAX bytes; timeouts and timer
 * intervals must be at least 1s (zero would mean "fire at once"),
 * greylist_retry_window must be longer than greylist_delay (and than
 * dnsbl_greylist_delay when dnsbl_action = greylist), dnsbl_min_ttl may not
 * exceed dnsbl_max_ttl, and dnswl_threshold must be below dnsbl_threshold
 * (a client cannot be both trusted and bad).  An *_action setting takes only
 * the actions that make sense for its test (conf_setting.allowed).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "conf.h"

#define CONF_LINE_MAX	65536	/* bytes in a logical line or expanded value */
#define QUOTE_MAX	200	/* bytes of a bad value quoted in an error */

struct conf_setting;

struct conf_type {
	/* Parse value (may be modified) into c; -1 with a reason in why. */
	int (*parse)(const struct conf_setting *s, struct greyd_conf *c,
	    char *value, char *why, size_t whylen);
	/* Print " value" (nothing for an empty value). */
	void (*print)(const struct conf_setting *s, const struct greyd_conf *c,
	    FILE *fp);
};

struct conf_setting {
	const char *name;
	const struct conf_type *type;
	const char *def;	/* raw default; NULL: gethostname() */
	size_t off;		/* field in struct greyd_conf */
	const char *const *names; /* enums: the value names, by value */
	size_t nnames;
	unsigned allowed;	/* enums: bit v set if value v is valid; 0: all */
	size_t count_off;	/* sites: the size_t count beside the array */
	size_t size;		/* its size (strings) */
	long long min, max;	/* durations and integers */
	bool (*check)(const char *s);	/* strings */
	const char *expect;	/* what a valid value looks like, for errors */
};

#define FIELD_PTR(c, s, type)	((type *)(void *)((char *)(c) + (s)->off))
#define FIELD_CPTR(c, s, type)	\
	((const type *)(const void *)((const char *)(c) + (s)->off))

static const char *const proxy_names[] = {
	[BACKEND_PROXY_NONE] = "none",
	[BACKEND_PROXY_HAPROXY] = "haproxy",
	[BACKEND_PROXY_HAPROXY2] = "haproxy2",
	[BACKEND_PROXY_XCLIENT] = "xclient",
};

static const char *const action_names[] = {
	[ACTION_IGNORE] = "ignore",
	[ACTION_REJECT] = "reject",
	[ACTION_TRAP] = "trap",
	[ACTION_TARPIT] = "tarpit",
	[ACTION_GREYLIST] = "greylist",
	[ACTION_ACCEPT] = "accept",
	[ACTION_TEMPFAIL] = "tempfail",
};

static const char *const verify_names[] = {
	[RCPT_VERIFY_NONE] = "none",
	[RCPT_VERIFY_BACKEND] = "backend",
};

#define NAMES(a)	.names = (a), .nnames = sizeof(a) / sizeof((a)[0])
#define ACT(v)		(1u << (v))	/* conf_setting.allowed */

/* ---- small helpers ---------------------------------------------------- */

static __attribute__((format(printf, 3, 4))) int
reason(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
	return -1;
}

static int
bad_value(const struct conf_setting *s, const char *v, char *why,
    size_t whylen)
{
	return reason(why, whylen, "bad value for %s: \"%.*s%s\" (expected %s)",
	    s->name, QUOTE_MAX, v, strlen(v) > QUOTE_MAX ? "..." : "",
	    s->expect);
}

static bool
is_name_char(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	    (ch >= '0' && ch <= '9') || ch == '_';
}

static bool
is_blank(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\v' ||
	    ch == '\f';
}

static char *
skip_blanks(char *s)
{
	while (is_blank(*s))
		s++;
	return s;
}

static void
trim_end(char *s)
{
	size_t n = strlen(s);

	while (n > 0 && is_blank(s[n - 1]))
		s[--n] = '\0';
}

/* Next list element: separated by white space and/or commas. */
static char *
next_token(char **rest)
{
	char *tok;

	while ((tok = strsep(rest, " \t,")) != NULL)
		if (*tok != '\0')
			return tok;
	return NULL;
}

/* Digits only, no sign or blanks, within [min, max]. */
static int
parse_decimal(const char *s, long long min, long long max, long long *out)
{
	long long n = 0;

	if (*s == '\0')
		return -1;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9' || n > (max - (*s - '0')) / 10)
			return -1;
		n = n * 10 + (*s - '0');
	}
	if (n < min)
		return -1;
	*out = n;
	return 0;
}

/* ---- public parsers --------------------------------------------------- */

static long long
unit_seconds(char unit)
{
	switch (unit) {
	case 's': return 1;
	case 'm': return 60;
	case 'h': return 3600;
	case 'd': return 86400;
	case 'w': return 7 * 86400;
	default: return 0;
	}
}

long long
conf_parse_duration(const char *s)
{
	char digits[16];
	size_t n = strspn(s, "0123456789");
	long long mult = 1, v;

	if (n == 0 || n >= sizeof(digits))
		return -1;
	if (s[n] != '\0' && ((mult = unit_seconds(s[n])) == 0 ||
	    s[n + 1] != '\0'))
		return -1;
	memcpy(digits, s, n);
	digits[n] = '\0';
	if (parse_decimal(digits, 0, INT_MAX / mult, &v) == -1)
		return -1;
	return v * mult;
}

static int
split_host_port(const char *s, char *host, size_t hostlen, const char **port,
    bool *bracketed)
{
	const char *end;
	size_t n;

	*bracketed = s[0] == '[';
	if (*bracketed) {
		s++;
		if ((end = strchr(s, ']')) == NULL || end[1] != ':')
			return -1;
		*port = end + 2;
	} else {
		if ((end = strchr(s, ':')) == NULL || strchr(end + 1, ':'))
			return -1;
		*port = end + 1;
	}
	n = (size_t)(end - s);
	if (n == 0 || n >= hostlen)
		return -1;
	memcpy(host, s, n);
	host[n] = '\0';
	return 0;
}

static int
fill_sockaddr(struct conf_sockaddr *out, const char *host, bool bracketed,
    in_port_t port)
{
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&out->ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&out->ss;

	if (bracketed) {
		if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
			return -1;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		out->len = sizeof(*sin6);
		return 0;
	}
	if (strcmp(host, "*") == 0)
		sin->sin_addr.s_addr = htonl(INADDR_ANY);
	else if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
		return -1;
	sin->sin_family = AF_INET;
	sin->sin_port = htons(port);
	out->len = sizeof(*sin);
	return 0;
}

int
conf_parse_sockaddr(struct conf_sockaddr *out, const char *s)
{
	char host[NETADDR_STRLEN];
	const char *port;
	bool bracketed;
	long long portnum;

	memset(out, 0, sizeof(*out));
	if (strlen(s) >= sizeof(out->text) ||
	    split_host_port(s, host, sizeof(host), &port, &bracketed) == -1 ||
	    strlen(port) > 5 || parse_decimal(port, 1, 65535, &portnum) == -1 ||
	    fill_sockaddr(out, host, bracketed, (in_port_t)portnum) == -1) {
		memset(out, 0, sizeof(*out));
		return -1;
	}
	strlcpy(out->text, s, sizeof(out->text));
	return 0;
}

const char *
conf_backend_proxy_name(enum backend_proxy p)
{
	if ((size_t)p >= sizeof(proxy_names) / sizeof(proxy_names[0]))
		return "unknown";
	return proxy_names[p];
}

const char *
conf_action_name(enum conf_action a)
{
	if ((size_t)a >= sizeof(action_names) / sizeof(action_names[0]))
		return "unknown";
	return action_names[a];
}

/* ---- value parsers (phase 2) ------------------------------------------ */

static bool check_domain(const char *s);

static int
parse_duration(const struct conf_setting *s, struct greyd_conf *c,
    char *value, char *why, size_t whylen)
{
	long long v = conf_parse_duration(value);

	if (v < s->min || v > s->max)
		return bad_value(s, value, why, whylen);
	*FIELD_PTR(c, s, int) = (int)v;
	return 0;
}

/* Digits, with a leading '-' where the range has negative numbers. */
static int
parse_integer(const struct conf_setting *s, struct greyd_conf *c,
    char *value, char *why, size_t whylen)
{
	long long v;

	if (value[0] == '-' && s->min < 0) {
		if (parse_decimal(value + 1, 0, -s->min, &v) == -1 ||
		    -v > s->max)
			return bad_value(s, value, why, whylen);
		v = -v;
	} else if (parse_decimal(value, s->min > 0 ? s->min : 0, s->max,
	    &v) == -1) {
		return bad_value(s, value, why, whylen);
	}
	*FIELD_PTR(c, s, int) = (int)v;
	return 0;
}

static int
parse_size(const struct conf_setting *s, struct greyd_conf *c, char *value,
    char *why, size_t whylen)
{
	long long v;

	if (parse_decimal(value, s->min, s->max, &v) == -1)
		return bad_value(s, value, why, whylen);
	*FIELD_PTR(c, s, long long) = v;
	return 0;
}

static int
parse_boolean(const struct conf_setting *s, struct greyd_conf *c,
    char *value, char *why, size_t whylen)
{
	if (strcasecmp(value, "yes") == 0)
		*FIELD_PTR(c, s, bool) = true;
	else if (strcasecmp(value, "no") == 0)
		*FIELD_PTR(c, s, bool) = false;
	else
		return bad_value(s, value, why, whylen);
	return 0;
}

/* Enums are stored as int-sized C enums; the setting names its values. */
static int
parse_enum(const struct conf_setting *s, struct greyd_conf *c, char *value,
    char *why, size_t whylen)
{
	size_t i;

	for (i = 0; i < s->nnames; i++)
		if (s->names[i] != NULL && strcmp(value, s->names[i]) == 0 &&
		    (s->allowed == 0 || (s->allowed & ACT(i)))) {
			*FIELD_PTR(c, s, int) = (int)i;
			return 0;
		}
	return bad_value(s, value, why, whylen);
}

static void
conf_list_clear(struct conf_list *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

/*
 * A list of words; each must pass s->check, and there may be at most
 * s->max of them (0: no limit).  Domains are lowercased.
 */
static int
parse_words(const struct conf_setting *s, struct greyd_conf *c, char *value,
    char *why, size_t whylen)
{
	struct conf_list *l = FIELD_PTR(c, s, struct conf_list);
	char *tok, *rest = value, **grown, *p;

	conf_list_clear(l);
	while ((tok = next_token(&rest)) != NULL) {
		if (!s->check(tok))
			return bad_value(s, tok, why, whylen);
		if (s->max > 0 && l->n == (size_t)s->max)
			return reason(why, whylen, "too many values for %s "
			    "(at most %lld)", s->name, s->max);
		if (l->n % 16 == 0) {
			grown = reallocarray(l->v, l->n + 16, sizeof(*grown));
			if (grown == NULL)
				return reason(why, whylen, "out of memory");
			l->v = grown;
		}
		if ((l->v[l->n] = strdup(tok)) == NULL)
			return reason(why, whylen, "out of memory");
		if (s->check == check_domain)
			for (p = l->v[l->n]; *p != '\0'; p++)
				*p = (char)tolower((unsigned char)*p);
		l->n++;
	}
	return 0;
}

static int
parse_string(const struct conf_setting *s, struct greyd_conf *c, char *value,
    char *why, size_t whylen)
{
	if (strlen(value) >= s->size)
		return reason(why, whylen, "value for %s is too long "
		    "(at most %zu bytes)", s->name, s->size - 1);
	if (!s->check(value))
		return bad_value(s, value, why, whylen);
	strlcpy(FIELD_PTR(c, s, char), value, s->size);
	return 0;
}

static bool
is_wildcard(const struct conf_sockaddr *a)
{
	const struct sockaddr_in *sin = (const struct sockaddr_in *)&a->ss;
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&a->ss;

	if (a->ss.ss_family == AF_INET6)
		return IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr);
	return sin->sin_addr.s_addr == htonl(INADDR_ANY);
}

static int
parse_backend(const struct conf_setting *s, struct greyd_conf *c,
    char *value, char *why, size_t whylen)
{
	struct conf_sockaddr *a = FIELD_PTR(c, s, struct conf_sockaddr);

	if (conf_parse_sockaddr(a, value) == -1 || is_wildcard(a))
		return bad_value(s, value, why, whylen);
	return 0;
}

static bool
listen_has(const struct greyd_conf *c, const struct conf_sockaddr *a)
{
	int i;

	for (i = 0; i < c->nlisten; i++)
		if (c->listen[i].len == a->len &&
		    memcmp(&c->listen[i].ss, &a->ss, a->len) == 0)
			return true;
	return false;
}

static int
parse_listen(const struct conf_setting *s, struct greyd_conf *c, char *value,
    char *why, size_t whylen)
{
	struct conf_sockaddr a;
	char *tok, *rest = value;

	c->nlisten = 0;
	while ((tok = next_token(&rest)) != NULL) {
		if (conf_parse_sockaddr(&a, tok) == -1)
			return bad_value(s, tok, why, whylen);
		if (listen_has(c, &a))
			return reason(why, whylen, "listen address \"%s\" "
			    "given twice", tok);
		if (c->nlisten == CONF_MAX_LISTEN)
			return reason(why, whylen, "too many listen addresses "
			    "(at most %d)", CONF_MAX_LISTEN);
		c->listen[c->nlisten++] = a;
	}
	if (c->nlisten == 0)
		return reason(why, whylen, "listen needs at least one address");
	return 0;
}

static int
parse_cidrs(const struct conf_setting *s, struct greyd_conf *c, char *value,
    char *why, size_t whylen)
{
	struct cidr one, *grown;
	char *tok, *rest = value;

	free(c->allow_clients);
	c->allow_clients = NULL;
	c->nallow_clients = 0;
	while ((tok = next_token(&rest)) != NULL) {
		if (netaddr_parse_cidr(&one, tok) == -1)
			return bad_value(s, tok, why, whylen);
		if (c->nallow_clients % 16 == 0) {
			grown = reallocarray(c->allow_clients,
			    c->nallow_clients + 16, sizeof(*grown));
			if (grown == NULL)
				return reason(why, whylen, "out of memory");
			c->allow_clients = grown;
		}
		c->allow_clients[c->nallow_clients++] = one;
	}
	return 0;
}

static void
sites_clear(struct dnsbl_site **v, size_t *n)
{
	free(*v);
	*v = NULL;
	*n = 0;
}

/* A DNSBL site list: words in postscreen's syntax (dnsbl_site.c). */
static int
parse_sites(const struct conf_setting *s, struct greyd_conf *c, char *value,
    char *why, size_t whylen)
{
	struct dnsbl_site **v = FIELD_PTR(c, s, struct dnsbl_site *);
	size_t *n = (size_t *)(void *)((char *)c + s->count_off);
	char *tok, *rest = value, err[CONF_ERRLEN];

	sites_clear(v, n);
	while ((tok = next_token(&rest)) != NULL) {
		if (*n == DNSBL_MAX_SITES)
			return reason(why, whylen, "too many sites in %s (at "
			    "most %d)", s->name, DNSBL_MAX_SITES);
		if (*v == NULL &&
		    (*v = calloc(DNSBL_MAX_SITES, sizeof(**v))) == NULL)
			return reason(why, whylen, "out of memory");
		if (dnsbl_site_parse(tok, &(*v)[*n], err, sizeof(err)) == -1)
			return reason(why, whylen, "%s: %s", s->name, err);
		(*n)++;
	}
	return 0;
}

/* ---- string checks ---------------------------------------------------- */

static bool
all_chars(const char *s, int lo, int hi)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < lo || (unsigned char)*s > hi)
			return false;
	return true;
}

static bool
check_hostname(const char *s)
{
	return *s != '\0' && all_chars(s, '!', '~');
}

static bool
check_text(const char *s)
{
	return *s != '\0' && all_chars(s, ' ', '~');
}

static bool
check_user(const char *s)
{
	return all_chars(s, '!', '~');
}

static bool
check_path(const char *s)
{
	return all_chars(s, ' ', 255) && strchr(s, 0x7f) == NULL;
}

static bool
check_dir(const char *s)
{
	return *s != '\0' && check_path(s);
}

/* Letters, digits, '-' and '.', as in a host name (no IP literals). */
static bool
check_domain(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 253 || s[0] == '.' || s[0] == '-' || s[n - 1] == '.')
		return false;
	for (; *s != '\0'; s++)
		if (!isalnum((unsigned char)*s) && *s != '-' && *s != '.')
			return false;
	return true;
}

/* A port after "host:": 1 to 65535, digits only. */
static bool
check_port(const char *p)
{
	long long v;

	return strlen(p) <= 5 && parse_decimal(p, 1, 65535, &v) == 0;
}

/* A numeric resolver address: a.b.c.d, a.b.c.d:port, x::y, [x::y]:port. */
static bool
check_dns_server(const char *s)
{
	char host[INET6_ADDRSTRLEN];
	unsigned char bin[sizeof(struct in6_addr)];
	const char *colon = strchr(s, ':'), *end;
	size_t n;
	int af = AF_INET;

	if (s[0] == '[') {
		if ((end = strchr(++s, ']')) == NULL ||
		    (end[1] != '\0' && (end[1] != ':' || !check_port(end + 2))))
			return false;
		af = AF_INET6;
	} else if (colon != NULL && strchr(colon + 1, ':') != NULL) {
		end = s + strlen(s);
		af = AF_INET6;
	} else if (colon != NULL) {
		if (!check_port(colon + 1))
			return false;
		end = colon;
	} else {
		end = s + strlen(s);
	}
	n = (size_t)(end - s);
	if (n == 0 || n >= sizeof(host))
		return false;
	memcpy(host, s, n);
	host[n] = '\0';
	return inet_pton(af, host, bin) == 1;
}

/* ---- printers ---------------------------------------------------------- */

static void
print_duration(const struct conf_setting *s, const struct greyd_conf *c,
    FILE *fp)
{
	fprintf(fp, " %ds", *FIELD_CPTR(c, s, int));
}

static void
print_integer(const struct conf_setting *s, const struct greyd_conf *c,
    FILE *fp)
{
	fprintf(fp, " %d", *FIELD_CPTR(c, s, int));
}

static void
print_size(const struct conf_setting *s, const struct greyd_conf *c,
    FILE *fp)
{
	fprintf(fp, " %lld", *FIELD_CPTR(c, s, long long));
}

static void
print_boolean(const struct conf_setting *s, const struct greyd_conf *c,
    FILE *fp)
{
	fputs(*FIELD_CPTR(c, s, bool) ? " yes" : " no", fp);
}

static void
print_enum(const struct conf_setting *s, const struct greyd_conf *c,
    FILE *fp)
{
	int v = *FIELD_CPTR(c, s, int);

	fprintf(fp, " %s", v >= 0 && (size_t)v < s->nnames ? s->names[v] :
	    "unknown");
}

static void
print_words(const struct conf_setting *s, const struct greyd_conf *c,
    FILE *fp)
{
	const struct conf_list *l = FIELD_CPTR(c, s, struct conf_list);
	size_t i;

	for (i = 0; i < l->n; i++)
		fprintf(fp, " %s", l->v[i]);
}

/* '$' is written as "$$" so that reading it back does not expand it. */
static void
print_string(const struct conf_setting *s, const struct greyd_conf *c,
    FILE *fp)
{
	const char *p = FIELD_CPTR(c, s, char);

	if (*p != '\0')
		fputc(' ', fp);
	for (; *p != '\0'; p++) {
		if (*p == '$')
			fputc('$', fp);
		fputc(*p, fp);
	}
}

static void
print_backend(const struct conf_setting *s, const struct greyd_conf *c,
    FILE *fp)
{
	fprintf(fp, " %s", FIELD_CPTR(c, s, struct conf_sockaddr)->text);
}

static void
print_listen(const struct conf_setting *s, const struct greyd_conf *c,
    FILE *fp)
{
	int i;

	for (i = 0; i < c->nlisten; i++)
		fprintf(fp, " %s", c->listen[i].text);
}

static void
print_cidrs(const struct conf_setting *s, const struct greyd_conf *c,
    FILE *fp)
{
	char buf[NETADDR_STRLEN];
	size_t i;

	for (i = 0; i < c->nallow_clients; i++) {
		netaddr_format(&c->allow_clients[i].net, buf, sizeof(buf));
		fprintf(fp, " %s/%d", buf, c->allow_clients[i].prefix);
	}
}

static void
print_sites(const struct conf_setting *s, const struct greyd_conf *c,
    FILE *fp)
{
	const struct dnsbl_site *v = *FIELD_CPTR(c, s, struct dnsbl_site *);
	size_t n = *(const size_t *)(const void *)((const char *)c +
	    s->count_off), i;

	for (i = 0; i < n; i++)
		fprintf(fp, " %s", v[i].text);
}

/* ---- the settings ------------------------------------------------------ */

static const struct conf_type type_duration = { parse_duration, print_duration };
static const struct conf_type type_integer = { parse_integer, print_integer };
static const struct conf_type type_size = { parse_size, print_size };
static const struct conf_type type_boolean = { parse_boolean, print_boolean };
static const struct conf_type type_enum = { parse_enum, print_enum };
static const struct conf_type type_words = { parse_words, print_words };
static const struct conf_type type_string = { parse_string, print_string };
static const struct conf_type type_backend = { parse_backend, print_backend };
static const struct conf_type type_listen = { parse_listen, print_listen };
static const struct conf_type type_cidrs = { parse_cidrs, print_cidrs };
static const struct conf_type type_sites = { parse_sites, print_sites };

#define FIELD(n)	.name = #n, .off = offsetof(struct greyd_conf, n), \
			.size = sizeof(((struct greyd_conf *)0)->n)
#define DURATION(lo)	.type = &type_duration, .min = (lo), .max = INT_MAX, \
			.expect = (lo) ? "a duration of at least 1s, like " \
			    "300s, 5m, 4h, 36d" : \
			    "a duration like 300s, 5m, 4h, 36d"
#define INTEGER(lo, hi)	.type = &type_integer, .min = (lo), .max = (hi), \
			.expect = "an integer from " #lo " to " #hi
#define STRING(fn, what) .type = &type_string, .check = (fn), .expect = (what)
#define SPF_ACTION(n, d)	FIELD(n), .type = &type_enum, NAMES(action_names), \
	.allowed = ACT(ACTION_ACCEPT) | ACT(ACTION_REJECT) | \
	    ACT(ACTION_TEMPFAIL) | ACT(ACTION_GREYLIST), .def = d, \
	.expect = "accept, reject, tempfail or greylist"
#define SITES(n, count)	FIELD(n), .type = &type_sites, .def = "", \
			.count_off = offsetof(struct greyd_conf, count)

static const struct conf_setting settings[] = {
	{ FIELD(listen), .type = &type_listen, .def = "127.0.0.1:2525",
	  .expect = "a numeric host:port, [ipv6]:port or *:port" },
	{ FIELD(backend), .type = &type_backend, .def = "127.0.0.1:10025",
	  .expect = "a numeric host:port or [ipv6]:port, not a wildcard" },
	{ FIELD(backend_proxy), .type = &type_enum, NAMES(proxy_names),
	  .def = "haproxy", .expect = "haproxy, haproxy2, xclient or none" },
	{ FIELD(backend_connect_timeout), .def = "10s", DURATION(1) },
	{ FIELD(backend_timeout), .def = "300s", DURATION(1) },
	{ FIELD(db_dir), .def = "./var/db", STRING(check_dir, "a directory") },
	{ FIELD(db_checkpoint_interval), .def = "60s", DURATION(1) },
	{ FIELD(db_expire_interval), .def = "60s", DURATION(1) },
	{ FIELD(db_expire_batch), .def = "1000", INTEGER(1, 1000000) },
	{ FIELD(client_record_expiry), .def = "90d", DURATION(1) },
	{ FIELD(greylist_delay), .def = "5m", DURATION(0) },
	{ FIELD(greylist_retry_window), .def = "4h", DURATION(1) },
	{ FIELD(white_expiry), .def = "36d", DURATION(1) },
	{ FIELD(white_refresh_interval), .def = "60s", DURATION(0) },
	{ FIELD(greylist_ipv4_prefix), .def = "24", INTEGER(0, 32) },
	{ FIELD(greylist_ipv6_prefix), .def = "64", INTEGER(0, 128) },
	{ FIELD(greylist_exempt_postmaster), .type = &type_boolean,
	  .def = "yes", .expect = "yes or no" },
	{ FIELD(allow_clients), .type = &type_cidrs, .def = "",
	  .expect = "an address or address/prefix, like 192.0.2.0/24" },
	{ FIELD(auto_whitelist_after), .def = "0", INTEGER(0, 1000000) },
	{ FIELD(recipient_maps), .type = &type_words, .def = "",
	  .check = check_dir, .expect = "file names" },
	{ FIELD(relay_domains), .type = &type_words, .def = "",
	  .check = check_domain, .expect = "domain names" },
	{ FIELD(recipient_verify), .type = &type_enum, NAMES(verify_names),
	  .def = "none", .expect = "none or backend" },
	{ FIELD(rcpt_positive_expiry), .def = "7d", DURATION(1) },
	{ FIELD(rcpt_negative_expiry), .def = "3h", DURATION(1) },
	{ FIELD(callout_idle_timeout), .def = "30s", DURATION(1) },
	{ FIELD(max_unknown_recipients), .def = "5", INTEGER(0, 100000) },
	{ FIELD(spamtrap_maps), .type = &type_words, .def = "",
	  .check = check_dir, .expect = "file names" },
	{ FIELD(trap_expiry), .def = "24h", DURATION(1) },
	{ FIELD(trap_action), .type = &type_enum, NAMES(action_names),
	  .allowed = ACT(ACTION_REJECT) | ACT(ACTION_TARPIT),
	  .def = "reject", .expect = "reject or tarpit" },
	{ FIELD(client_connection_limit), .def = "10", INTEGER(1, 1000000) },
	{ FIELD(client_connection_rate), .def = "1000", INTEGER(1, 100000000) },
	{ FIELD(session_message_limit), .def = "100", INTEGER(1, 1000000) },
	{ FIELD(message_recipient_limit), .def = "100", INTEGER(1, 100000) },
	{ FIELD(max_sessions), .def = "5000", INTEGER(1, 10000000) },
	{ FIELD(trusted_limit_multiplier), .def = "10", INTEGER(1, 10000) },
	{ FIELD(greet_wait), .def = "0", DURATION(0) },
	{ FIELD(pregreet_action), .type = &type_enum, NAMES(action_names),
	  .allowed = ACT(ACTION_IGNORE) | ACT(ACTION_REJECT) |
	      ACT(ACTION_TRAP) | ACT(ACTION_TARPIT),
	  .def = "reject", .expect = "ignore, reject, trap or tarpit" },
	{ FIELD(protocol_error_action), .type = &type_enum,
	  NAMES(action_names), .def = "reject",
	  .allowed = ACT(ACTION_IGNORE) | ACT(ACTION_REJECT) |
	      ACT(ACTION_TRAP) | ACT(ACTION_TARPIT),
	  .expect = "ignore, reject, trap or tarpit" },
	{ FIELD(greet_pass_expiry), .def = "1d", DURATION(1) },
	{ FIELD(tarpit_stutter), .def = "1s", DURATION(1) },
	{ FIELD(tarpit_time), .def = "10m", DURATION(1) },
	{ FIELD(max_tarpit_sessions), .def = "5000", INTEGER(0, 10000000) },
	{ FIELD(dns_servers), .type = &type_words, .def = "",
	  .check = check_dns_server, .max = CONF_MAX_DNS_SERVERS,
	  .expect = "numeric addresses like 192.0.2.53, 192.0.2.53:5353, "
	      "2001:db8::53 or [2001:db8::53]:5353" },
	{ SITES(dnsbl_sites, ndnsbl_sites) },
	{ FIELD(dnsbl_threshold), .def = "1", INTEGER(-1000, 1000) },
	{ FIELD(dnswl_threshold), .def = "-1", INTEGER(-1000, 1000) },
	{ FIELD(dnsbl_timeout), .def = "5s", DURATION(1) },
	{ FIELD(dnsbl_min_ttl), .def = "60s", DURATION(0) },
	{ FIELD(dnsbl_max_ttl), .def = "1h", DURATION(0) },
	{ FIELD(dnsbl_action), .type = &type_enum, NAMES(action_names),
	  .allowed = ACT(ACTION_REJECT) | ACT(ACTION_GREYLIST) |
	      ACT(ACTION_TARPIT),
	  .def = "reject", .expect = "reject, greylist or tarpit" },
	{ FIELD(dnsbl_greylist_delay), .def = "30m", DURATION(0) },
	{ SITES(rhsbl_sender_sites, nrhsbl_sender_sites) },
	{ FIELD(spf_workers), .def = "2", INTEGER(0, 64) },
	{ FIELD(spf_timeout), .def = "20s", DURATION(1) },
	{ SPF_ACTION(spf_fail_action, "reject") },
	{ SPF_ACTION(spf_softfail_action, "greylist") },
	{ SPF_ACTION(spf_temperror_action, "tempfail") },
	{ SPF_ACTION(spf_permerror_action, "accept") },
	{ FIELD(greylist_spf_key), .type = &type_boolean, .def = "yes",
	  .expect = "yes or no" },
	{ FIELD(spf_check_loopback), .type = &type_boolean, .def = "no",
	  .expect = "yes or no" },
	{ FIELD(hostname), .def = NULL,
	  STRING(check_hostname, "a host name without spaces") },
	{ FIELD(smtp_banner), .def = "$hostname ESMTP greyd",
	  STRING(check_text, "printable ASCII text") },
	{ FIELD(smtp_idle_timeout), .def = "300s", DURATION(1) },
	{ FIELD(smtp_error_limit), .def = "10", INTEGER(1, 1000) },
	{ FIELD(message_size_limit), .type = &type_size, .def = "10240000",
	  .min = 0, .max = LLONG_MAX,
	  .expect = "a size in bytes, 0 for no limit" },
	{ FIELD(drain_timeout), .def = "30s", DURATION(0) },
	{ FIELD(user), .def = "",
	  STRING(check_user, "a user name without spaces, or nothing") },
	{ FIELD(pid_file), .def = "",
	  STRING(check_path, "a file name, or nothing") },
};

#define NSETTINGS	(sizeof(settings) / sizeof(settings[0]))

/* Where a raw value came from; ordered as the kinds are listed. */
enum origin_kind { ORIGIN_FILE, ORIGIN_OVERRIDE, ORIGIN_DEFAULT };

struct origin {
	enum origin_kind kind;
	int line;		/* file line (0: the whole file), -o index */
	const char *text;	/* the -o string */
};

struct load_ctx {
	const char *path;
	char *raw[NSETTINGS];
	struct origin origin[NSETTINGS];
	bool expanding[NSETTINGS];
	char line[CONF_LINE_MAX + 1];	/* logical line being assembled */
	char phys[CONF_LINE_MAX + 1];	/* physical line just read */
	char value[CONF_LINE_MAX + 1];	/* expanded value */
	char *err;
	size_t errlen;
};

enum phys_status { PHYS_EOF, PHYS_LINE, PHYS_TOO_LONG, PHYS_NUL };

static int
find_setting(const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < NSETTINGS; i++)
		if (strncmp(settings[i].name, name, len) == 0 &&
		    settings[i].name[len] == '\0')
			return (int)i;
	return -1;
}

static int
setting_index(const char *name)
{
	return find_setting(name, strlen(name));
}

/* ---- phase 1: raw values ------------------------------------------------ */

static __attribute__((format(printf, 3, 4))) int
fail(struct load_ctx *x, const struct origin *o, const char *fmt, ...)
{
	char msg[CONF_ERRLEN];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (o->kind == ORIGIN_FILE && o->line > 0)
		snprintf(x->err, x->errlen, "%s:%d: %s", x->path, o->line, msg);
	else if (o->kind == ORIGIN_FILE)
		snprintf(x->err, x->errlen, "%s: %s", x->path, msg);
	else if (o->kind == ORIGIN_OVERRIDE)
		snprintf(x->err, x->errlen, "-o %s: %s", o->text, msg);
	else
		snprintf(x->err, x->errlen, "built-in default: %s", msg);
	return -1;
}

static int
set_raw(struct load_ctx *x, int idx, const char *value,
    const struct origin *o)
{
	char *copy = strdup(value);

	if (copy == NULL)
		return fail(x, o, "out of memory");
	free(x->raw[idx]);
	x->raw[idx] = copy;
	x->origin[idx] = *o;
	return 0;
}

static void
default_hostname(char *buf, size_t len)
{
	if (gethostname(buf, len) == -1)
		buf[0] = '\0';
	buf[len - 1] = '\0';
}

static int
load_defaults(struct load_ctx *x)
{
	static const struct origin o = { ORIGIN_DEFAULT, 0, NULL };
	char host[256];
	size_t i;

	for (i = 0; i < NSETTINGS; i++) {
		if (settings[i].def == NULL)
			default_hostname(host, sizeof(host));
		if (set_raw(x, (int)i, settings[i].def ? settings[i].def : host,
		    &o) == -1)
			return -1;
	}
	return 0;
}

/* "name = value" (line is modified). */
static int
assign_line(struct load_ctx *x, char *line, const struct origin *o)
{
	char *eq = strchr(line, '='), *name = skip_blanks(line), *p;
	int idx;

	if (eq == NULL)
		return fail(x, o, "expected \"name = value\"");
	*eq = '\0';
	trim_end(name);
	for (p = name; is_name_char(*p); p++)
		;
	if (*name == '\0' || *p != '\0')
		return fail(x, o, "expected \"name = value\"");
	if ((idx = setting_index(name)) == -1)
		return fail(x, o, "unknown setting \"%s\"", name);
	p = skip_blanks(eq + 1);
	trim_end(p);
	return set_raw(x, idx, p, o);
}

static enum phys_status
read_physical(FILE *fp, char *buf, size_t *lenp)
{
	size_t len = 0;
	bool nul = false;
	int ch;

	while ((ch = getc(fp)) != EOF && ch != '\n') {
		if (len == CONF_LINE_MAX)
			return PHYS_TOO_LONG;
		nul |= ch == '\0';
		buf[len++] = (char)ch;
	}
	buf[len] = '\0';
	*lenp = len;
	if (ch == EOF && len == 0)
		return PHYS_EOF;
	return nul ? PHYS_NUL : PHYS_LINE;
}

/* Add a physical line to the logical line that starts at o->line. */
static int
append_line(struct load_ctx *x, size_t *len, const struct origin *o)
{
	const char *more = skip_blanks(x->phys);
	size_t n = strlen(more);

	if (*len + 1 + n > CONF_LINE_MAX)
		return fail(x, o, "line too long (more than %d bytes)",
		    CONF_LINE_MAX);
	if (*len > 0)
		x->line[(*len)++] = ' ';
	memcpy(x->line + *len, more, n + 1);
	*len += n;
	return 0;
}

/* One physical line: a comment, a blank, a continuation or a new line. */
static int
take_physical(struct load_ctx *x, size_t *len, struct origin *start,
    int lineno)
{
	struct origin here = { ORIGIN_FILE, lineno, NULL };
	const char *first;

	trim_end(x->phys);
	first = skip_blanks(x->phys);
	if (*first == '\0' || *first == '#')
		return 0;
	if (first != x->phys) {
		if (*len == 0)
			return fail(x, &here, "continuation line without a "
			    "setting before it");
		return append_line(x, len, start);
	}
	if (*len > 0 && assign_line(x, x->line, start) == -1)
		return -1;
	*len = 0;
	*start = here;
	return append_line(x, len, start);
}

static int
read_stream(struct load_ctx *x, FILE *fp)
{
	struct origin start = { ORIGIN_FILE, 0, NULL }, here = start;
	enum phys_status st;
	size_t len = 0, plen;

	while ((st = read_physical(fp, x->phys, &plen)) != PHYS_EOF) {
		here.line++;
		if (ferror(fp))
			break;
		if (st == PHYS_TOO_LONG)
			return fail(x, &here, "line too long (more than %d "
			    "bytes)", CONF_LINE_MAX);
		if (st == PHYS_NUL)
			return fail(x, &here, "NUL byte in line");
		if (take_physical(x, &len, &start, here.line) == -1)
			return -1;
	}
	if (ferror(fp)) {
		here.line = 0;
		return fail(x, &here, "cannot read: %s", strerror(errno));
	}
	if (len > 0)
		return assign_line(x, x->line, &start);
	return 0;
}

static int
read_file(struct load_ctx *x)
{
	struct origin whole = { ORIGIN_FILE, 0, NULL };
	FILE *fp;
	int rc;

	if (x->path == NULL)
		return 0;
	if ((fp = fopen(x->path, "r")) == NULL)
		return fail(x, &whole, "cannot open: %s", strerror(errno));
	rc = read_stream(x, fp);
	fclose(fp);
	return rc;
}

static int
read_overrides(struct load_ctx *x, const char *const *overrides)
{
	struct origin o = { ORIGIN_OVERRIDE, 0, NULL };

	for (; overrides != NULL && overrides[o.line] != NULL; o.line++) {
		o.text = overrides[o.line];
		if (strlcpy(x->line, o.text, sizeof(x->line)) >= sizeof(x->line))
			return fail(x, &o, "too long (more than %d bytes)",
			    CONF_LINE_MAX);
		if (assign_line(x, x->line, &o) == -1)
			return -1;
	}
	return 0;
}

/* ---- phase 2: expand and parse ---------------------------------------- */

/* The setting named after '$' ("name" or "{name}"); *p moves past it. */
static int
expansion_ref(const char **p, const char *owner, char *why, size_t whylen)
{
	bool brace = **p == '{';
	const char *name = *p + brace, *end = name;
	int ref;

	while (is_name_char(*end))
		end++;
	if (end == name)
		return reason(why, whylen, "stray \"$\" in value of %s "
		    "(write $$ for a literal $)", owner);
	if (brace && *end != '}')
		return reason(why, whylen, "missing \"}\" after \"${%.*s\" in "
		    "value of %s", (int)(end - name), name, owner);
	*p = end + brace;
	if ((ref = find_setting(name, (size_t)(end - name))) == -1)
		return reason(why, whylen, "unknown setting \"%.*s\" in $ "
		    "expansion in value of %s", (int)(end - name), name, owner);
	return ref;
}

/* Append the expanded raw value of setting idx to x->value at *pos. */
static int
expand(struct load_ctx *x, int idx, size_t *pos, char *why, size_t whylen)
{
	const char *p = x->raw[idx], *owner = settings[idx].name;
	int ref;

	x->expanding[idx] = true;
	while (*p != '\0') {
		if (*pos == CONF_LINE_MAX)
			return reason(why, whylen, "value of %s is too long "
			    "after $ expansion", owner);
		if (p[0] == '$' && p[1] == '$') {
			x->value[(*pos)++] = '$';
			p += 2;
		} else if (*p != '$') {
			x->value[(*pos)++] = *p++;
		} else {
			p++;
			if ((ref = expansion_ref(&p, owner, why, whylen)) == -1)
				return -1;
			if (x->expanding[ref])
				return reason(why, whylen, "recursion loop: $%s "
				    "expands to itself", settings[ref].name);
			if (expand(x, ref, pos, why, whylen) == -1)
				return -1;
		}
	}
	x->expanding[idx] = false;
	return 0;
}

static int
apply_one(struct load_ctx *x, struct greyd_conf *c, int idx, char *why,
    size_t whylen)
{
	size_t pos = 0;

	memset(x->expanding, 0, sizeof(x->expanding));
	if (expand(x, idx, &pos, why, whylen) == -1)
		return -1;
	x->value[pos] = '\0';
	return settings[idx].type->parse(&settings[idx], c, x->value, why,
	    whylen);
}

static bool
origin_before(const struct origin *a, const struct origin *b)
{
	return a->kind < b->kind || (a->kind == b->kind && a->line < b->line);
}

static int
apply_all(struct load_ctx *x, struct greyd_conf *c)
{
	char why[CONF_ERRLEN], first[CONF_ERRLEN];
	int i, bad = -1;

	for (i = 0; i < (int)NSETTINGS; i++) {
		if (apply_one(x, c, i, why, sizeof(why)) == 0)
			continue;
		if (bad == -1 || origin_before(&x->origin[i], &x->origin[bad])) {
			bad = i;
			strlcpy(first, why, sizeof(first));
		}
	}
	if (bad != -1)
		return fail(x, &x->origin[bad], "%s", first);
	return 0;
}

static int
check_greylist_times(struct load_ctx *x, const struct greyd_conf *c)
{
	int w = setting_index("greylist_retry_window");
	int d = setting_index("greylist_delay");
	int blame = x->origin[w].kind == ORIGIN_DEFAULT ? d : w;

	if (c->greylist_retry_window > c->greylist_delay)
		return 0;
	return fail(x, &x->origin[blame], "greylist_retry_window (%ds) must "
	    "be longer than greylist_delay (%ds)", c->greylist_retry_window,
	    c->greylist_delay);
}

/*
 * Which of two settings a conflict between them is reported at: the one
 * set last (in the file, then by -o); a default is never to blame unless
 * both are defaults.
 */
static const struct origin *
blame_pair(const struct load_ctx *x, const char *a, const char *b)
{
	const struct origin *oa = &x->origin[setting_index(a)];
	const struct origin *ob = &x->origin[setting_index(b)];

	if (oa->kind == ORIGIN_DEFAULT)
		return ob;
	if (ob->kind == ORIGIN_DEFAULT)
		return oa;
	return origin_before(oa, ob) ? ob : oa;
}

static int
check_dnsbl(struct load_ctx *x, const struct greyd_conf *c)
{
	if (c->dnsbl_min_ttl > c->dnsbl_max_ttl)
		return fail(x, blame_pair(x, "dnsbl_min_ttl", "dnsbl_max_ttl"),
		    "dnsbl_min_ttl (%ds) must not be longer than dnsbl_max_ttl "
		    "(%ds)", c->dnsbl_min_ttl, c->dnsbl_max_ttl);
	if (c->dnswl_threshold >= c->dnsbl_threshold)
		return fail(x, blame_pair(x, "dnswl_threshold",
		    "dnsbl_threshold"), "dnswl_threshold (%d) must be lower "
		    "than dnsbl_threshold (%d)", c->dnswl_threshold,
		    c->dnsbl_threshold);
	if (c->dnsbl_action == ACTION_GREYLIST &&
	    c->greylist_retry_window <= c->dnsbl_greylist_delay)
		return fail(x, blame_pair(x, "dnsbl_greylist_delay",
		    "greylist_retry_window"), "greylist_retry_window (%ds) "
		    "must be longer than dnsbl_greylist_delay (%ds) when "
		    "dnsbl_action = greylist", c->greylist_retry_window,
		    c->dnsbl_greylist_delay);
	return 0;
}

/* ---- public ------------------------------------------------------------ */

int
conf_load(struct greyd_conf *c, const char *path,
    const char *const *overrides, char *err, size_t errlen)
{
	struct load_ctx *x;
	size_t i;
	int rc;

	memset(c, 0, sizeof(*c));
	if ((x = calloc(1, sizeof(*x))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	x->path = path;
	x->err = err;
	x->errlen = errlen;
	rc = -1;
	if (load_defaults(x) == 0 && read_file(x) == 0 &&
	    read_overrides(x, overrides) == 0 && apply_all(x, c) == 0 &&
	    check_greylist_times(x, c) == 0 && check_dnsbl(x, c) == 0)
		rc = 0;
	for (i = 0; i < NSETTINGS; i++)
		free(x->raw[i]);
	free(x);
	if (rc == -1)
		conf_free(c);
	return rc;
}

static struct greyd_conf *conf_now;	/* the snapshot in force */

struct greyd_conf *
conf_new(const char *path, const char *const *overrides, char *err,
    size_t errlen)
{
	struct greyd_conf *c = malloc(sizeof(*c));

	if (c == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (conf_load(c, path, overrides, err, errlen) != 0) {
		free(c);
		return NULL;
	}
	c->refs = 1;
	return c;
}

const struct greyd_conf *
conf_current(void)
{
	return conf_now;
}

void
conf_install(struct greyd_conf *c)
{
	struct greyd_conf *old = conf_now;

	conf_now = c;
	conf_release(old);
}

const struct greyd_conf *
conf_hold(const struct greyd_conf *c)
{
	/* The count is bookkeeping, not configuration: a holder that reads
	 * c as const may still count itself. */
	struct greyd_conf *m = (struct greyd_conf *)(uintptr_t)c;

	if (m != NULL && m->refs > 0)
		m->refs++;
	return c;
}

void
conf_release(const struct greyd_conf *c)
{
	struct greyd_conf *m = (struct greyd_conf *)(uintptr_t)c;

	if (m == NULL || m->refs == 0 || --m->refs > 0)
		return;
	conf_free(m);
	free(m);
}

void
conf_print(const struct greyd_conf *c, FILE *fp)
{
	size_t i;

	for (i = 0; i < NSETTINGS; i++) {
		fprintf(fp, "%s =", settings[i].name);
		settings[i].type->print(&settings[i], c, fp);
		fputc('\n', fp);
	}
}

void
conf_free(struct greyd_conf *c)
{
	free(c->allow_clients);
	c->allow_clients = NULL;
	c->nallow_clients = 0;
	conf_list_clear(&c->recipient_maps);
	conf_list_clear(&c->relay_domains);
	conf_list_clear(&c->spamtrap_maps);
	conf_list_clear(&c->dns_servers);
	sites_clear(&c->dnsbl_sites, &c->ndnsbl_sites);
	sites_clear(&c->rhsbl_sender_sites, &c->nrhsbl_sender_sites);
}
