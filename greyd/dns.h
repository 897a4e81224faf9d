/*
 * dns.h — the one resolver of greyd: a c-ares channel driven by the
 * libevent loop (design §3: c-ares sockets hooked in via sock_state_cb, one
 * timer for ares_timeout).  Every DNS lookup greyd makes goes through it:
 * the DNSBL/DNSWL/RHSBL queries of dnsbl.c here, and SPF's DNS layer
 * (spf.c) through a waiting resolver per worker thread (dns_sync_*, below)
 * made with the same settings.
 *
 * dns_servers (greyd.conf) lists up to 16 "host" or "host:port" words
 * ("[v6]:port" for IPv6 with a port, "v6" or "[v6]" without); numeric hosts
 * only, port 53 by default.  Empty: /etc/resolv.conf (read again by
 * dns_reconfigure).  Queries use EDNS0 (1232-octet UDP payload); an answer
 * that does not fit is truncated by the server and c-ares retries over TCP.
 *
 * Callbacks: a query's callback runs exactly once, always from the event
 * loop, never from inside dns_query() (an immediate failure, such as a bad
 * name, is deferred to the next loop turn), so callers may start queries
 * while holding state that the callback would change.  A callback may call
 * dns_query, dns_reconfigure and dns_free.  dns_free() runs the callback of
 * every query not yet completed with DNS_CANCELLED before it returns (also
 * of those whose answer had arrived but was not yet delivered).
 */
#ifndef GREYD_DNS_H
#define GREYD_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "conf.h"

struct dns;

enum dns_status {
	DNS_OK,		/* an answer; records may still be 0 (NODATA) */
	DNS_NXDOMAIN,	/* the name does not exist: "not listed" */
	DNS_TIMEOUT,	/* no server answered in time */
	DNS_ERROR,	/* SERVFAIL, REFUSED, port unreachable, a malformed
			 * answer, no memory; a bad name or type */
	DNS_CANCELLED,	/* dns_free() while the query was in flight */
};

#define DNS_MAX_RECORDS	16	/* records kept from one answer */
#define DNS_TXT_MAX	512	/* octets of TXT kept (strings joined) */

struct dns_answer {
	enum dns_status status;
	uint32_t ttl;		/* smallest TTL of the records kept; for
				 * NXDOMAIN and NODATA min(TTL, MINIMUM) of
				 * the authority section's SOA (RFC 2308),
				 * 0 without one; 0 for the other statuses */
	int nrecords;
	/* type A: IPv4 addresses, network order */
	uint8_t a[DNS_MAX_RECORDS][4];
	/* type TXT: nrecords counts the TXT records; the first record's
	 * strings joined, cut at DNS_TXT_MAX - 1 octets, NUL-terminated,
	 * bytes as received (the caller sanitises before logging or replying;
	 * a NUL octet received ends the C string early) */
	char txt[DNS_TXT_MAX];
};

enum dns_type { DNS_TYPE_A = 1, DNS_TYPE_TXT = 16 };

typedef void (*dns_cb)(const struct dns_answer *ans, void *arg);

/*
 * A channel on base using c->dns_servers, with a per-try timeout of
 * timeout_ms and 2 tries per server (c-ares doubles the timeout for the
 * second round: one silent server means DNS_TIMEOUT after about
 * 3 * timeout_ms).  NULL with err set on failure ("dns_servers: ..." for a
 * bad server list).
 */
struct dns *dns_new(struct event_base *base, const struct greyd_conf *c,
    int timeout_ms, char *err, size_t errlen);
/* SIGHUP: use c->dns_servers from now on (queries in flight go on with
 * the old servers).  -1 with err set, and the old servers kept, if the new
 * list is bad. */
int dns_reconfigure(struct dns *d, const struct greyd_conf *c, char *err,
    size_t errlen);
/*
 * Query name (no trailing dot needed) for type; cb(answer, arg) later.  A
 * name longer than 253 octets (a final dot aside), an empty name or label,
 * or another type: DNS_ERROR, from the loop.  Aborts if it cannot allocate
 * the query (about 700 octets): a callback could not be promised.
 */
void dns_query(struct dns *d, const char *name, enum dns_type type,
    dns_cb cb, void *arg);
/* Queries started whose callback has not run yet. */
unsigned dns_pending(const struct dns *d);
void dns_free(struct dns *d);

/*
 * The per-try timeout greyd gives c-ares, in ms, from c->dnsbl_timeout:
 * half of it, as c-ares tries each server twice (the second try takes
 * twice as long: a silent server is given up after 1.5 x dnsbl_timeout).
 * For dns_new, spf_new and dns_sync_new alike.
 */
int dns_try_ms(const struct greyd_conf *c);

/*
 * The server list of c as the text dns_sync_new takes ("" for
 * /etc/resolv.conf); -1 with err set if it is bad, as dns_new would say.
 */
#define DNS_SERVERS_CSV_MAX	1024
int dns_servers_csv(const struct greyd_conf *c, char *csv, size_t csvlen,
    char *err, size_t errlen);

/*
 * A waiting resolver, for one thread that may block (an SPF worker): its
 * own c-ares channel with the same options as dns_new's (timeout_ms per
 * try, 2 tries per server, EDNS0) on the servers of csv.  Not for the loop
 * thread.  Used by one thread at a time.
 */
struct dns_sync;
struct dns_sync *dns_sync_new(const char *csv, int timeout_ms, char *err,
    size_t errlen);
/*
 * Query name for type (1 to 65535, class IN) and wait for the answer.
 * *abuf (malloc'd, the caller frees it) is the answer message as received,
 * hostile input to parse with bounds; NULL when there is none (timeout,
 * cancelled, a bad name).  DNS_OK is also NODATA.  stop(arg), if not NULL,
 * is asked before the query and at least every 100 ms while it waits; when
 * it returns true the query ends with DNS_CANCELLED.  A bad name or type:
 * DNS_ERROR without a query.
 */
enum dns_status dns_sync_query(struct dns_sync *d, const char *name,
    int type, unsigned char **abuf, int *alen, bool (*stop)(void *),
    void *arg);
void dns_sync_free(struct dns_sync *d);

#endif
