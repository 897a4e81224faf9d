/*
 * dns.h — the one resolver of greyd: a c-ares channel driven by the
 * libevent loop (design §3: c-ares sockets hooked in via sock_state_cb, one
 * timer for ares_timeout).  Every DNS lookup greyd makes goes through it:
 * the DNSBL/DNSWL/RHSBL queries of dnsbl.c, and SPF's DNS layer (spf.c,
 * through dns_query_raw).
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
/*
 * A raw query, for SPF's DNS layer: name for any RR type (1 to 65535),
 * class IN.  cb(status, abuf, alen, arg) later, with the same guarantees as
 * dns_query (exactly once, from the loop, never inside this call; counted
 * by dns_pending; DNS_CANCELLED from dns_free).  abuf is the answer message
 * as received (DNS_OK for NODATA too, with records 0; NXDOMAIN with the
 * message; NULL and 0 when there is none: timeout, cancelled, a bad name);
 * it is valid only during the callback, and is hostile input: parse it
 * with bounds (ares_parse_*_reply).  Aborts if it cannot allocate the query.
 */
typedef void (*dns_raw_cb)(enum dns_status st, const unsigned char *abuf,
    int alen, void *arg);
void dns_query_raw(struct dns *d, const char *name, int type, dns_raw_cb cb,
    void *arg);
/* Queries started whose callback has not run yet. */
unsigned dns_pending(const struct dns *d);
void dns_free(struct dns *d);

#endif
