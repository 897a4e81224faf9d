/*
 * spf.h — SPF checks (RFC 7208) with libspf2, off the event loop.
 *
 * spf_workers threads each run libspf2 with a DNS layer of greyd's own:
 * every lookup libspf2 makes goes through the worker's own c-ares channel
 * (dns.h: dns_sync_*, the same dns_servers and timeouts as the DNS lists),
 * and the worker waits for the answer.  The loop itself never waits:
 * spf_check() queues the request and returns; the callback runs later,
 * from the loop.
 *
 * The identity checked is MAIL FROM, or the HELO name when the sender is
 * <> (RFC 7208 §2.4); a HELO name that is an address literal or not a
 * domain gives SPF_R_NONE for the null sender.  A check that has not ended
 * after spf_timeout ends with SPF_R_TEMPERROR ("timeout"); its worker's
 * late result is dropped.
 */
#ifndef GREYD_SPF_H
#define GREYD_SPF_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/event.h>

#include "conf.h"
#include "dns.h"
#include "netaddr.h"

enum spf_result {
	SPF_R_NONE,
	SPF_R_NEUTRAL,
	SPF_R_PASS,
	SPF_R_FAIL,
	SPF_R_SOFTFAIL,
	SPF_R_TEMPERROR,
	SPF_R_PERMERROR,
};

#define SPF_DOMAIN_MAX		255
#define SPF_HEADER_MAX		998	/* a header line, RFC 5322 §2.1.1 */
#define SPF_EXPLAIN_MAX		200	/* octets of explanation in a reply */

struct spf_answer {
	enum spf_result result;
	bool helo;			/* the HELO identity was checked */
	/* the domain checked: the sender's, or the HELO name */
	char domain[SPF_DOMAIN_MAX + 1];
	/* "Received-SPF: pass (host: ...) client-ip=...; envelope-from=...;
	 * helo=...;" — one line, no CRLF, printable ASCII */
	char received[SPF_HEADER_MAX + 1];
	/* fail: the explanation (the domain's exp= or libspf2's default),
	 * printable ASCII, cut to SPF_EXPLAIN_MAX; else "" */
	char explanation[SPF_EXPLAIN_MAX + 1];
	/* why, in a few words, for the log: libspf2's error text for
	 * temperror/permerror, "timeout", "" for the others */
	char reason[128];
	int64_t elapsed_ms;		/* from spf_check to the answer */
};

struct spf;
struct spf_check;

typedef void (*spf_cb)(const struct spf_answer *a, void *arg);

/*
 * spf_workers threads of the current configuration (0: spf_new returns
 * NULL with err "" and greyd does no SPF), resolving with dns_servers and
 * dns_timeout_ms per try (as dns_new).  The configuration (conf_current)
 * is read by the loop thread only: at each check (hostname for
 * Received-SPF, spf_timeout) and by spf_reconfigure; the number of workers
 * is fixed at start.  NULL with err set on failure.
 */
struct spf *spf_new(struct event_base *base, int dns_timeout_ms, char *err,
    size_t errlen);
/* SIGHUP: the workers take the current dns_servers before their next check.
 * -1 with err set, the old servers kept, if the list is bad. */
int spf_reconfigure(struct spf *s, char *err, size_t errlen);
/*
 * Check client with helo and sender ("" for <>, else local@domain).  cb
 * runs exactly once, from the loop, never inside spf_check(), unless
 * spf_cancel() is called first.  Never NULL (aborts when out of memory).
 */
struct spf_check *spf_check(struct spf *s, const struct netaddr *client,
    const char *helo, const char *sender, spf_cb cb, void *arg);
/* The callback will not run; the worker's result is dropped. */
void spf_cancel(struct spf_check *c);
/* Checks queued or running. */
unsigned spf_pending(const struct spf *s);
/* Stops the workers (a running check is abandoned at its next lookup);
 * callbacks not yet run never run. */
void spf_free(struct spf *s);

const char *spf_result_name(enum spf_result r);	/* "pass", "softfail" ... */

/* What greyd does with a result, for the session and greydb explain
 * alike (no I/O). */
/* The action c sets for r: spf_*_action; pass, neutral, none: accept. */
enum conf_action spf_action(const struct greyd_conf *c, enum spf_result r);
/*
 * The reply refusing MAIL from sender (no CRLF), act reject (550) or
 * tempfail (451), with the RFC 7372 codes: x.7.23 when the check failed
 * (fail, softfail), x.7.24 when it could not be made (temperror,
 * permerror); the domain, and the explanation (fail) or the reason.  Cut
 * to len - 1 octets; returns what snprintf returns.
 */
int spf_reply(char *buf, size_t len, const struct spf_answer *a,
    const char *sender, enum conf_action act);
/*
 * SPF-aware greylisting: true, with "spf:domain" (lower case) in buf, when
 * the greylist triplet of this transaction is keyed by the domain (a pass,
 * greylist_spf_key, act not greylist).
 */
bool spf_client_key(const struct greyd_conf *c, const struct spf_answer *a,
    enum conf_action act, char *buf, size_t len);

#endif
