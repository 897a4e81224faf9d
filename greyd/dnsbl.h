/*
 * dnsbl.h — DNSBL, DNSWL and RHSBL lookups with a weighted score and a
 * cache (design §3, §4).
 *
 * A lookup is keyed by what is looked up: a client address against
 * dnsbl_sites, or a sender domain against rhsbl_sender_sites.  Every list
 * is queried at once through dns.c (one query per distinct list name); a
 * listed answer from a list of positive weight also asks for its TXT, for
 * the reply.  The lookup is done when every query has answered, or when
 * dnsbl_timeout has passed: the lists still silent count as not listed and
 * are named in the result (the caller logs them).  Lookups are shared and
 * cached: a second session of the same client joins the lookup in flight or
 * reads the cached result, for the smallest TTL of the answers clamped to
 * [dnsbl_min_ttl, dnsbl_max_ttl] (dnsbl_min_ttl for a result with a
 * timeout).  Entries are freed when expired and unused (dnsbl_sweep), and
 * the cache holds at most DNSBL_CACHE_MAX of them.
 *
 * The score is computed from the answers with the site list of the
 * configuration current when the result is read, so a SIGHUP that changes
 * weights or filters applies to cached answers too; a list added by the
 * SIGHUP counts as not listed until the entry expires.
 */
#ifndef GREYD_DNSBL_H
#define GREYD_DNSBL_H

#include <stdbool.h>
#include <stdint.h>

#include "conf.h"
#include "dns.h"
#include "dnsbl_site.h"
#include "netaddr.h"

#define DNSBL_CACHE_MAX		100000	/* entries */
#define DNSBL_HITS_MAX		256	/* octets of the "list*weight ..." text */
#define DNSBL_REPLY_TXT_MAX	200	/* octets of TXT in a reply */

struct dnsbl;
struct dnsbl_lookup;

struct dnsbl_result {
	int score;
	bool cached;			/* answered from the cache */
	int64_t age_ms;			/* since the lookup started */
	/* "zen.spamhaus.org*3 list.dnswl.org*-5": the sites that matched */
	char hits[DNSBL_HITS_MAX];
	/* the matching site of largest positive weight, for the reply */
	char top[DNSBL_NAME_MAX + 1];
	/* its TXT, printable ASCII only, at most DNSBL_REPLY_TXT_MAX */
	char txt[DNSBL_REPLY_TXT_MAX + 1];
	/* the lists that had not answered by dnsbl_timeout, or failed */
	char silent[DNSBL_HITS_MAX];
};

typedef void (*dnsbl_cb)(void *arg);

/* The lookups of one daemon; the current configuration (conf_current) is
 * read whenever settings are needed. */
struct dnsbl *dnsbl_new(struct event_base *base, struct dns *dns);
void dnsbl_free(struct dnsbl *b);

/*
 * Start or join the lookup of a client address (dnsbl_sites) or a sender
 * domain (rhsbl_sender_sites).  NULL when there is nothing to look up (no
 * sites, an empty domain) or no memory: the caller treats it as score 0.
 */
struct dnsbl_lookup *dnsbl_client(struct dnsbl *b, const struct netaddr *a,
    int64_t now_ms);
struct dnsbl_lookup *dnsbl_sender(struct dnsbl *b, const char *domain,
    int64_t now_ms);
bool dnsbl_done(const struct dnsbl_lookup *l);
/* The result of a done lookup (score 0 and empty texts while pending). */
void dnsbl_result(const struct dnsbl_lookup *l, struct dnsbl_result *r);
/*
 * Call cb(arg) once, from the event loop, when the pending lookup l is
 * done; false (and no call) if l is done already.  A later call replaces
 * the earlier callback.
 */
bool dnsbl_wait(struct dnsbl_lookup *l, dnsbl_cb cb, void *arg);
/* The callback dnsbl_wait set will not be called (NULL is ignored). */
void dnsbl_unwait(struct dnsbl_lookup *l);
/* The caller is done with l (a pending callback is cancelled). */
void dnsbl_release(struct dnsbl_lookup *l);
/* The cached result of a client address, if it is cached and done: for
 * the route at accept (DNSWL fast path).  false otherwise. */
bool dnsbl_cached_client(struct dnsbl *b, const struct netaddr *a,
    int64_t now_ms, struct dnsbl_result *r);
/* Free expired entries nobody uses; at most batch examined. */
void dnsbl_sweep(struct dnsbl *b, int64_t now_ms, size_t batch);
/* Entries in the cache, and lookups still waiting for DNS. */
size_t dnsbl_count(const struct dnsbl *b);
size_t dnsbl_pending(const struct dnsbl *b);
/*
 * The 554 reply (no CRLF) for a listed client, addr its address text, or,
 * sender not NULL, for the listed domain of sender: "554 5.7.1 Service
 * unavailable; client [ip] blocked using LIST; TXT" or "554 5.7.1
 * <sender>: Sender address rejected: domain D blocked using LIST; TXT".
 * Cut to len - 1 octets; returns what snprintf returns.
 */
int dnsbl_reply(char *buf, size_t len, const struct dnsbl_result *r,
    const char *addr, const char *sender);

#endif
