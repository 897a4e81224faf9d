/*
 * dnsbl_site.h — the DNSBL/DNSWL/RHSBL site list in postscreen's syntax
 * (postscreen_dnsbl_sites), its reply filters and the weighted score.
 * Pure code: no DNS, no I/O; dnsbl.c does the lookups.
 *
 * One site is  name[=filter][*weight]:
 *   name    a DNS domain (zen.spamhaus.org, list.dnswl.org), lowercased;
 *   filter  a pattern for the A record the list answers, four dotted
 *           octets, each a number or a bracketed set of numbers and ranges
 *           separated by ';': 127.0.0.2, 127.0.0.[2..11],
 *           127.0.[0..255].[1;3;5..7].  No filter: any 127.0.0.0/8 answer
 *           matches (RFC 5782 lists answer in 127/8; anything else is not
 *           a listing);
 *   weight  an integer, default 1; negative for allowlists (*-5);
 *           |weight| <= DNSBL_WEIGHT_MAX.
 * A name may be listed more than once with different filters and weights
 * (as postscreen allows); each entry that matches adds its weight once.
 */
#ifndef GREYD_DNSBL_SITE_H
#define GREYD_DNSBL_SITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DNSBL_NAME_MAX		253	/* a domain name, without the final dot */
#define DNSBL_MAX_SITES		64	/* per list setting */
#define DNSBL_WEIGHT_MAX	1000	/* |weight| */

struct dnsbl_site {
	char name[DNSBL_NAME_MAX + 1];
	bool filtered;			/* false: any 127.0.0.0/8 answer */
	uint8_t filter[4][32];		/* octet i may be v iff bit v of filter[i] */
	int weight;
	char text[DNSBL_NAME_MAX + 64];	/* as written, for -n and the logs */
};

/*
 * Parse one word of a site list into *s.  0, or -1 with a reason in err
 * (what is wrong, where, and why: "bad reply filter \"127.0.0.[2..\" in
 * \"zen.spamhaus.org=127.0.0.[2..\": expected a number").  s->text keeps
 * the word as written; s->name is lowercased.
 */
int dnsbl_site_parse(const char *word, struct dnsbl_site *s, char *err,
    size_t errlen);
/* Does the A record a (network order) match the site's filter? */
bool dnsbl_site_match(const struct dnsbl_site *s, const uint8_t a[4]);
/* The weight this site adds for these answers (0 if none matches). */
int dnsbl_site_score(const struct dnsbl_site *s, const uint8_t (*a)[4],
    int n);
/*
 * The DNS name to query: the client address reversed (IPv4 octets;
 * IPv6 nibbles, RFC 5782) or the sender domain (RHSBL, lowercased), then
 * the site name.  family is AF_INET (4 bytes) or AF_INET6 (16 bytes).
 * 0, or -1 if the name would exceed 253 octets or does not fit in len, or
 * (domains) the domain is not a host name: empty, an empty or over-long
 * label, characters other than letters, digits, '-', '_' and '.'.
 */
int dnsbl_query_name_addr(const struct dnsbl_site *s, int family,
    const uint8_t *bytes, char *buf, size_t len);
int dnsbl_query_name_domain(const struct dnsbl_site *s, const char *domain,
    char *buf, size_t len);

#endif
