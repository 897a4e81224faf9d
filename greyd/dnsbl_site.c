/*
 * dnsbl_site.c — one word of dnsbl_sites / rhsbl_sender_sites in
 * postscreen's syntax, name[=filter][*weight], its reply filter, the weight
 * it scores and the DNS names to query (see dnsbl_site.h).  Pure code.
 *
 * Parsing is strict, so that a typo is an error at start-up rather than a
 * list that silently never matches:
 *  - the name is a DNS domain: labels of letters, digits and '-' (not at
 *    either end of a label), 1 to 63 octets each, at most 253 in all, not
 *    all digits and dots (an address is not a list); it is lowercased;
 *  - the filter has exactly four octets; an octet is a decimal number from
 *    0 to 255 without leading zeros, or a set in brackets of numbers and
 *    ranges lo..hi (lo <= hi) separated by ';'; a set is never empty;
 *  - the weight is an integer with an optional sign, at most
 *    DNSBL_WEIGHT_MAX in magnitude; 0 is allowed (the list is queried and
 *    logged but does not count).
 * A query name is refused (-1) rather than truncated when it would exceed
 * 253 octets or the caller's buffer.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "dnsbl_site.h"

#define LABEL_MAX	63

static __attribute__((format(printf, 3, 4))) int
site_error(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* ---- the list name ------------------------------------------------------ */

static bool
is_ldh(int ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	    (ch >= '0' && ch <= '9') || ch == '-';
}

/* NULL if name (len octets) is a valid list name, else what is wrong. */
static const char *
name_problem(const char *name, size_t len)
{
	size_t i, label = 0;
	bool numeric = true;

	if (len > DNSBL_NAME_MAX)
		return "longer than 253 octets";
	for (i = 0; i <= len; i++) {
		if (i == len || name[i] == '.') {
			if (label == 0)
				return "empty label";
			if (name[i - 1] == '-' || name[i - label] == '-')
				return "a label starts or ends with '-'";
			label = 0;
			continue;
		}
		if (!is_ldh((unsigned char)name[i]))
			return "only letters, digits, '-' and '.' are allowed";
		if (++label > LABEL_MAX)
			return "a label is longer than 63 octets";
		numeric &= name[i] >= '0' && name[i] <= '9';
	}
	if (numeric)
		return "an address, not a domain";
	return NULL;
}

/* ---- the reply filter --------------------------------------------------- */

/* A number 0..255, no leading zero; *p moves past it. */
static const char *
filter_number(const char **p, int *out)
{
	const char *s = *p;
	int v = 0, n = 0;

	while (s[n] >= '0' && s[n] <= '9') {
		if (n == 3)
			return "a number above 255";
		v = v * 10 + (s[n] - '0');
		n++;
	}
	if (n == 0)
		return "expected a number";
	if (n > 1 && s[0] == '0')
		return "a number with a leading zero";
	if (v > 255)
		return "a number above 255";
	*p = s + n;
	*out = v;
	return NULL;
}

static void
set_bits(uint8_t bits[32], int lo, int hi)
{
	int v;

	for (v = lo; v <= hi; v++)
		bits[v / 8] |= (uint8_t)(1u << (v % 8));
}

/* "[2..11;15]": numbers and ranges separated by ';'. */
static const char *
filter_set(const char **p, uint8_t bits[32])
{
	const char *why;
	int lo, hi;

	(*p)++;
	if (**p == ']')
		return "an empty set \"[]\"";
	for (;;) {
		if ((why = filter_number(p, &lo)) != NULL)
			return why;
		hi = lo;
		if ((*p)[0] == '.' && (*p)[1] == '.') {
			*p += 2;
			if ((why = filter_number(p, &hi)) != NULL)
				return why;
			if (hi < lo)
				return "a range from high to low";
		}
		set_bits(bits, lo, hi);
		if (**p == ']') {
			(*p)++;
			return NULL;
		}
		if (**p != ';')
			return **p == '\0' ? "a \"[\" without \"]\"" :
			    "expected ';' or ']' in a set";
		(*p)++;
	}
}

static const char *
filter_parse(const char *f, uint8_t filter[4][32])
{
	const char *p = f, *why;
	int i, v;

	memset(filter, 0, 4 * 32);
	if (*f == '\0')
		return "empty";
	for (i = 0; i < 4; i++) {
		if (i > 0 && *p++ != '.')
			return "expected four octets, like 127.0.0.[2..11]";
		if (*p == '[')
			why = filter_set(&p, filter[i]);
		else if ((why = filter_number(&p, &v)) == NULL)
			set_bits(filter[i], v, v);
		if (why != NULL)
			return why;
	}
	if (*p != '\0')
		return "expected four octets, like 127.0.0.[2..11]";
	return NULL;
}

/* ---- the weight --------------------------------------------------------- */

static bool
weight_parse(const char *w, int *out)
{
	bool neg = *w == '-';
	int v = 0;

	if (*w == '-' || *w == '+')
		w++;
	if (*w == '\0')
		return false;
	for (; *w != '\0'; w++) {
		if (*w < '0' || *w > '9')
			return false;
		v = v * 10 + (*w - '0');
		if (v > DNSBL_WEIGHT_MAX)
			return false;
	}
	*out = neg ? -v : v;
	return true;
}

/* ---- public ------------------------------------------------------------- */

int
dnsbl_site_parse(const char *word, struct dnsbl_site *s, char *err,
    size_t errlen)
{
	char buf[sizeof(s->text)];
	char *filter = NULL, *weight = NULL, *star, *eq;
	const char *why;
	size_t len = strlen(word), i;

	memset(s, 0, sizeof(*s));
	s->weight = 1;
	if (len == 0)
		return site_error(err, errlen, "empty site");
	if (len >= sizeof(buf))
		return site_error(err, errlen, "site \"%.40s...\" is too long "
		    "(at most %zu octets)", word, sizeof(buf) - 1);
	memcpy(buf, word, len + 1);
	if ((star = strchr(buf, '*')) != NULL) {
		*star = '\0';
		weight = star + 1;
	}
	if ((eq = strchr(buf, '=')) != NULL) {
		*eq = '\0';
		filter = eq + 1;
	}
	if (buf[0] == '\0')
		return site_error(err, errlen, "missing list name in \"%s\"",
		    word);
	if ((why = name_problem(buf, strlen(buf))) != NULL)
		return site_error(err, errlen, "bad list name \"%s\" in \"%s\": "
		    "%s", buf, word, why);
	if (filter != NULL) {
		if ((why = filter_parse(filter, s->filter)) != NULL)
			return site_error(err, errlen, "bad reply filter \"%s\" "
			    "in \"%s\": %s", filter, word, why);
		s->filtered = true;
	}
	if (weight != NULL && !weight_parse(weight, &s->weight))
		return site_error(err, errlen, "bad weight \"%s\" in \"%s\": "
		    "expected an integer from %d to %d", weight, word,
		    -DNSBL_WEIGHT_MAX, DNSBL_WEIGHT_MAX);
	for (i = 0; buf[i] != '\0'; i++)
		s->name[i] = (char)tolower((unsigned char)buf[i]);
	memcpy(s->text, word, len + 1);
	return 0;
}

bool
dnsbl_site_match(const struct dnsbl_site *s, const uint8_t a[4])
{
	int i;

	if (!s->filtered)
		return a[0] == 127;
	for (i = 0; i < 4; i++)
		if (!(s->filter[i][a[i] / 8] & (1u << (a[i] % 8))))
			return false;
	return true;
}

int
dnsbl_site_score(const struct dnsbl_site *s, const uint8_t (*a)[4], int n)
{
	int i;

	for (i = 0; i < n; i++)
		if (dnsbl_site_match(s, a[i]))
			return s->weight;
	return 0;
}

/* prefix (plen octets) + s->name into buf, within 253 octets and len. */
static int
join_name(const char *prefix, size_t plen, const struct dnsbl_site *s,
    char *buf, size_t len)
{
	size_t nlen = strlen(s->name);

	if (plen + nlen > DNSBL_NAME_MAX || plen + nlen >= len)
		return -1;
	memcpy(buf, prefix, plen);
	memcpy(buf + plen, s->name, nlen + 1);
	return 0;
}

int
dnsbl_query_name_addr(const struct dnsbl_site *s, int family,
    const uint8_t *bytes, char *buf, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	char prefix[16 * 4 + 1];
	size_t n = 0;
	int i;

	if (family == AF_INET) {
		n = (size_t)snprintf(prefix, sizeof(prefix), "%u.%u.%u.%u.",
		    bytes[3], bytes[2], bytes[1], bytes[0]);
	} else if (family == AF_INET6) {
		for (i = 15; i >= 0; i--) {
			prefix[n++] = hex[bytes[i] & 0xf];
			prefix[n++] = '.';
			prefix[n++] = hex[bytes[i] >> 4];
			prefix[n++] = '.';
		}
		prefix[n] = '\0';
	} else {
		return -1;
	}
	return join_name(prefix, n, s, buf, len);
}

/*
 * The sender domain must look like a host name (letters, digits, '-', '_'
 * and '.', labels of 1 to 63 octets); anything else (an address literal,
 * UTF-8, an empty domain) is not looked up.
 */
int
dnsbl_query_name_domain(const struct dnsbl_site *s, const char *domain,
    char *buf, size_t len)
{
	char prefix[DNSBL_NAME_MAX + 2];
	size_t n = strlen(domain), i, label = 0;

	if (n == 0 || n > DNSBL_NAME_MAX)
		return -1;
	for (i = 0; i <= n; i++) {
		if (i == n || domain[i] == '.') {
			if (label == 0)
				return -1;
			label = 0;
			prefix[i] = '.';
			continue;
		}
		if (!is_ldh((unsigned char)domain[i]) && domain[i] != '_')
			return -1;
		if (++label > LABEL_MAX)
			return -1;
		prefix[i] = (char)tolower((unsigned char)domain[i]);
	}
	prefix[n + 1] = '\0';
	return join_name(prefix, n + 1, s, buf, len);
}
