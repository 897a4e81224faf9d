/*
 * limits.c — per-client connection limits (see greyd_limits.h).
 *
 * The table is an array of singly linked chains (sys/queue.h SLIST), a
 * power of two long, indexed by SipHash-2-4 of the address family and
 * bytes under a key drawn from arc4random_buf() when the table is made:
 * a client cannot pick addresses that collide.  The table doubles when it
 * holds more entries than chains (load factor 1), so connect and
 * disconnect cost O(1) amortised.  It never shrinks: after a peak of N
 * addresses the chain array keeps its 8 * N bytes (the entries go).
 *
 * SipHash comes from OpenSSL 3 (EVP_MAC "SIPHASH", 64-bit output): the
 * algorithm is fetched and its context made once; each hash re-keys the
 * same context (no allocation per call).
 *
 * The connection rate is a token bucket in fixed point: one token is
 * MS_PER_HOUR units, so a bucket of capacity C tokens per hour gains
 * exactly C units per millisecond and the arithmetic is exact integer
 * arithmetic (a rate of 1000/h allows 1000 connections in a burst, never
 * 1001, and one more 3.6 seconds later).  Capacity is the hourly rate times
 * the multiplier of the connection; the entry keeps the capacity of its
 * last connect, which is what limits_sweep measures "full" against.
 *
 * A connection that is refused is checked against a bucket on the stack:
 * a new address enters the table only when its connection is counted.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "greyd_limits.h"

#define MS_PER_HOUR		3600000LL	/* fixed-point units per token */
#define LIMITS_MIN_BUCKETS	256
#define SIPHASH_KEY_LEN		16

struct limits_entry {
	SLIST_ENTRY(limits_entry) next;
	uint64_t hash;
	int64_t tokens;		/* MS_PER_HOUR units per token */
	int64_t stamp_ms;	/* when tokens was last brought up to date */
	struct netaddr addr;	/* unused address bytes zeroed */
	unsigned sessions;
	int capacity;		/* tokens per hour at the last connect */
};

SLIST_HEAD(limits_chain, limits_entry);

struct limits {
	struct limits_chain *chains;
	size_t nchains;		/* a power of two */
	size_t count;		/* entries */
	size_t cursor;		/* next chain limits_sweep examines */
	EVP_MAC *mac;
	EVP_MAC_CTX *ctx;
	unsigned char key[SIPHASH_KEY_LEN];
};

static size_t
addr_len(const struct netaddr *a)
{
	return a->family == AF_INET ? 4 : 16;
}

/* The address with the bytes its family does not use zeroed. */
static void
addr_normalise(struct netaddr *out, const struct netaddr *a)
{
	memset(out, 0, sizeof(*out));
	out->family = a->family;
	memcpy(out->bytes, a->bytes, addr_len(a));
}

static bool
addr_equal(const struct netaddr *a, const struct netaddr *b)
{
	return a->family == b->family &&
	    memcmp(a->bytes, b->bytes, addr_len(a)) == 0;
}

/* SipHash-2-4 of the family and the address bytes (0 if OpenSSL fails,
 * which costs speed, never correctness). */
static uint64_t
limits_hash(const struct limits *l, const struct netaddr *a)
{
	unsigned char in[1 + 16], out[8];
	uint64_t h = 0;
	size_t outlen = 0, n = addr_len(a);

	in[0] = a->family == AF_INET ? 4 : 6;
	memcpy(in + 1, a->bytes, n);
	if (EVP_MAC_init(l->ctx, l->key, sizeof(l->key), NULL) == 1 &&
	    EVP_MAC_update(l->ctx, in, 1 + n) == 1 &&
	    EVP_MAC_final(l->ctx, out, &outlen, sizeof(out)) == 1 &&
	    outlen == sizeof(out))
		memcpy(&h, out, sizeof(h));
	return h;
}

static struct limits_entry *
limits_find(const struct limits *l, const struct netaddr *a, uint64_t h)
{
	struct limits_entry *e;

	SLIST_FOREACH(e, &l->chains[h & (l->nchains - 1)], next)
		if (e->hash == h && addr_equal(&e->addr, a))
			return e;
	return NULL;
}

static bool
limits_init_mac(struct limits *l)
{
	size_t size = 8;
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_size_t(OSSL_MAC_PARAM_SIZE, &size),
		OSSL_PARAM_construct_end(),
	};

	arc4random_buf(l->key, sizeof(l->key));
	if ((l->mac = EVP_MAC_fetch(NULL, "SIPHASH", NULL)) == NULL ||
	    (l->ctx = EVP_MAC_CTX_new(l->mac)) == NULL)
		return false;
	return EVP_MAC_init(l->ctx, l->key, sizeof(l->key), params) == 1;
}

struct limits *
limits_new(void)
{
	struct limits *l;

	if ((l = calloc(1, sizeof(*l))) == NULL)
		return NULL;
	l->nchains = LIMITS_MIN_BUCKETS;
	if ((l->chains = calloc(l->nchains, sizeof(*l->chains))) == NULL ||
	    !limits_init_mac(l)) {
		limits_free(l);
		return NULL;
	}
	return l;
}

void
limits_free(struct limits *l)
{
	struct limits_entry *e;
	size_t i;

	if (l == NULL)
		return;
	for (i = 0; l->chains != NULL && i < l->nchains; i++) {
		while ((e = SLIST_FIRST(&l->chains[i])) != NULL) {
			SLIST_REMOVE_HEAD(&l->chains[i], next);
			free(e);
		}
	}
	free(l->chains);
	EVP_MAC_CTX_free(l->ctx);
	EVP_MAC_free(l->mac);
	explicit_bzero(l->key, sizeof(l->key));
	free(l);
}

/* Double the chain array; on no memory keep the old one (slower chains). */
static void
limits_grow(struct limits *l)
{
	struct limits_chain *chains;
	struct limits_entry *e;
	size_t i, n = l->nchains * 2;

	if ((chains = calloc(n, sizeof(*chains))) == NULL)
		return;
	for (i = 0; i < l->nchains; i++) {
		while ((e = SLIST_FIRST(&l->chains[i])) != NULL) {
			SLIST_REMOVE_HEAD(&l->chains[i], next);
			SLIST_INSERT_HEAD(&chains[e->hash & (n - 1)], e, next);
		}
	}
	free(l->chains);
	l->chains = chains;
	l->nchains = n;
	l->cursor = 0;
}

/* Tokens of e at now_ms for a bucket of capacity tokens per hour. */
static int64_t
bucket_level(const struct limits_entry *e, int capacity, int64_t now_ms)
{
	int64_t elapsed = now_ms - e->stamp_ms, full = capacity * MS_PER_HOUR;
	int64_t tokens = e->tokens;

	if (elapsed > 0)
		tokens += (elapsed < MS_PER_HOUR ? elapsed : MS_PER_HOUR) *
		    capacity;
	return tokens < full ? tokens : full;
}

/* The verdict for e (not changed); *tokens: its bucket level now. */
static enum limit_verdict
limits_check(const struct greyd_conf *c, const struct limits_entry *e,
    unsigned total, int mult, int capacity, int64_t now_ms, int64_t *tokens)
{
	if (total >= (unsigned)c->max_sessions)
		return LIMIT_MAX_SESSIONS;
	if (e->sessions >= (unsigned)limits_scaled(c->client_connection_limit,
	    mult))
		return LIMIT_CONCURRENCY;
	*tokens = bucket_level(e, capacity, now_ms);
	if (*tokens < MS_PER_HOUR)
		return LIMIT_RATE;
	return LIMIT_OK;
}

/* Put a copy of the counted entry *e in the table; false: no memory. */
static bool
limits_insert(struct limits *l, const struct limits_entry *e)
{
	struct limits_entry *n;

	if ((n = malloc(sizeof(*n))) == NULL)
		return false;
	*n = *e;
	SLIST_INSERT_HEAD(&l->chains[n->hash & (l->nchains - 1)], n, next);
	if (++l->count > l->nchains)
		limits_grow(l);
	return true;
}

enum limit_verdict
limits_connect(struct limits *l, const struct greyd_conf *c,
    const struct netaddr *a, unsigned total, int mult, int64_t now_ms)
{
	int capacity = limits_scaled(c->client_connection_rate, mult);
	struct limits_entry fresh, *e;
	enum limit_verdict v;
	uint64_t h = limits_hash(l, a);
	int64_t tokens = 0;

	if ((e = limits_find(l, a, h)) == NULL) {
		memset(&fresh, 0, sizeof(fresh));
		addr_normalise(&fresh.addr, a);
		fresh.hash = h;
		fresh.tokens = capacity * MS_PER_HOUR;
		fresh.stamp_ms = now_ms;
		e = &fresh;
	}
	v = limits_check(c, e, total, mult, capacity, now_ms, &tokens);
	if (v != LIMIT_OK)
		return v;
	e->tokens = tokens - MS_PER_HOUR;
	if (now_ms > e->stamp_ms)
		e->stamp_ms = now_ms;
	e->capacity = capacity;
	e->sessions++;
	/* No memory for a new entry: refuse as a busy server would. */
	if (e == &fresh && !limits_insert(l, &fresh))
		return LIMIT_MAX_SESSIONS;
	return LIMIT_OK;
}

void
limits_disconnect(struct limits *l, const struct netaddr *a)
{
	struct limits_entry *e = limits_find(l, a, limits_hash(l, a));

	if (e != NULL && e->sessions > 0)
		e->sessions--;
}

static bool
entry_idle(const struct limits_entry *e, int64_t now_ms)
{
	return e->sessions == 0 &&
	    bucket_level(e, e->capacity, now_ms) >= e->capacity * MS_PER_HOUR;
}

/* Free the idle entries of one chain; returns how many it examined. */
static size_t
sweep_chain(struct limits *l, struct limits_chain *chain, int64_t now_ms,
    size_t *freed)
{
	struct limits_entry *e, *prev = NULL;
	size_t examined = 0;

	while ((e = prev == NULL ? SLIST_FIRST(chain) :
	    SLIST_NEXT(prev, next)) != NULL) {
		examined++;
		if (!entry_idle(e, now_ms)) {
			prev = e;
			continue;
		}
		if (prev == NULL)
			SLIST_REMOVE_HEAD(chain, next);
		else
			SLIST_REMOVE_AFTER(prev, next);
		free(e);
		l->count--;
		(*freed)++;
	}
	return examined;
}

/*
 * Examines whole chains from the cursor on until batch chains and entries
 * together have been looked at (the last chain is finished: chains are one
 * entry long on average), so an almost empty, once large table costs no
 * more per call than a full one.  The conf is not needed: an entry is full
 * against the capacity of its own last connect.
 */
size_t
limits_sweep(struct limits *l, const struct greyd_conf *c, int64_t now_ms,
    size_t batch)
{
	size_t work = 0, freed = 0;

	while (work < batch && l->count > 0) {
		work += 1 + sweep_chain(l, &l->chains[l->cursor], now_ms,
		    &freed);
		l->cursor = (l->cursor + 1) & (l->nchains - 1);
	}
	return freed;
}

size_t
limits_count(const struct limits *l)
{
	return l->count;
}

unsigned
limits_sessions(const struct limits *l, const struct netaddr *a)
{
	const struct limits_entry *e;

	e = limits_find(l, a, limits_hash(l, a));
	return e != NULL ? e->sessions : 0;
}

int
limits_scaled(int limit, int mult)
{
	long long v = (long long)limit * (mult > 1 ? mult : 1);

	if (v > INT_MAX)
		return INT_MAX;
	return v < INT_MIN ? INT_MIN : (int)v;
}

void
limits_reply(enum limit_verdict v, const char *addrstr, char *buf, size_t len)
{
	switch (v) {
	case LIMIT_CONCURRENCY:
		snprintf(buf, len, "421 4.7.0 Too many connections from [%s], "
		    "slow down", addrstr);
		break;
	case LIMIT_RATE:
		snprintf(buf, len, "421 4.7.0 Connection rate limit exceeded "
		    "for [%s], slow down", addrstr);
		break;
	case LIMIT_MAX_SESSIONS:
		snprintf(buf, len, "421 4.7.0 Server busy, too many "
		    "connections, try again later");
		break;
	case LIMIT_OK:
		snprintf(buf, len, "%s", "");
		break;
	}
}

const char *
limits_name(enum limit_verdict v)
{
	switch (v) {
	case LIMIT_CONCURRENCY:
		return "concurrency";
	case LIMIT_RATE:
		return "rate";
	case LIMIT_MAX_SESSIONS:
		return "max_sessions";
	case LIMIT_OK:
		break;
	}
	return "ok";
}
