/*
 * dnsbl.c — DNSBL, DNSWL and RHSBL lookups, score and cache (see dnsbl.h).
 *
 * The cache is a red-black tree (sys/tree.h) of entries keyed "a:ADDRESS"
 * or "d:domain".  An entry holds one struct dnsbl_list per distinct list
 * name with the A records it answered, the TXT when one was asked for, and
 * the state of its queries.  Life of an entry:
 *
 *   PENDING  queries in flight, sessions waiting (struct dnsbl_lookup
 *            handles in e->waiters); a timer fires at dnsbl_timeout;
 *   DONE     every query answered (or the timer fired): waiters called,
 *            expire_ms set from the TTLs; readers share it;
 *   gone     expired and unused: dnsbl_sweep frees it, or a new lookup of
 *            the same key takes its place in the tree (the old one is
 *            detached and freed when its last handle and query are gone).
 *
 * A DNS callback never sees a freed entry: every query holds the entry
 * (e->inflight) and an entry is freed only with no query in flight and no
 * handle (e->refs).  dns_free() completes the queries still in flight, so
 * main.c frees dns before dnsbl.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/tree.h>

#include <event2/event.h>

#include "dnsbl.h"
#include "clock.h"
#include "log.h"

#define DNSBL_KEY_MAX	(2 + DNSBL_NAME_MAX + 1)

enum list_state { LIST_PENDING, LIST_ANSWERED, LIST_FAILED };

struct dnsbl_list {
	char *name;
	enum list_state state;
	bool want_txt;			/* a site of this name has weight > 0 */
	int n;
	uint8_t a[DNS_MAX_RECORDS][4];
	uint32_t ttl;
	char *txt;			/* NULL: none (yet) */
};

struct dnsbl_lookup {
	struct dnsbl_entry *e;
	dnsbl_cb cb;
	void *arg;
	bool waiting;
	bool cached;
	TAILQ_ENTRY(dnsbl_lookup) wq;
};

struct dnsbl_entry {
	RB_ENTRY(dnsbl_entry) node;
	struct dnsbl *b;
	char key[DNSBL_KEY_MAX];
	bool sender;			/* rhsbl_sender_sites */
	bool done, in_tree;
	unsigned refs;			/* handles */
	unsigned inflight;		/* DNS queries */
	int64_t start_ms, expire_ms;
	struct event *deadline;
	struct dnsbl_list *lists;
	int nlists;
	TAILQ_HEAD(, dnsbl_lookup) waiters;
};

/* One DNS query in flight: which list of which entry, A or TXT. */
struct dnsbl_query {
	struct dnsbl_entry *e;
	int list;
	bool txt;
};

RB_HEAD(dnsbl_tree, dnsbl_entry);

struct dnsbl {
	struct event_base *base;
	struct dns *dns;
	struct dnsbl_tree tree;
	size_t count;			/* entries in the tree */
	size_t pending;			/* entries not done */
	char cursor[DNSBL_KEY_MAX];	/* where dnsbl_sweep goes on */
};

static int
entry_cmp(const struct dnsbl_entry *a, const struct dnsbl_entry *b)
{
	return strcmp(a->key, b->key);
}

/* Not _STATIC: libbsd leaves __unused undefined, which that form needs. */
RB_PROTOTYPE(dnsbl_tree, dnsbl_entry, node, entry_cmp)
RB_GENERATE(dnsbl_tree, dnsbl_entry, node, entry_cmp)

static const struct greyd_conf *
conf_of(const struct dnsbl *b)
{
	(void)b;
	return conf_current();
}

static void
sites_of(const struct dnsbl *b, bool sender, const struct dnsbl_site **v,
    size_t *n)
{
	const struct greyd_conf *c = conf_of(b);

	*v = sender ? c->rhsbl_sender_sites : c->dnsbl_sites;
	*n = sender ? c->nrhsbl_sender_sites : c->ndnsbl_sites;
}

/* ---- entries ---- */

static void
entry_free(struct dnsbl_entry *e)
{
	int i;

	if (e->deadline != NULL)
		event_free(e->deadline);
	for (i = 0; i < e->nlists; i++) {
		free(e->lists[i].name);
		free(e->lists[i].txt);
	}
	free(e->lists);
	free(e);
}

/* Free e if nothing refers to it any more and the tree no longer has it. */
static void
entry_maybe_free(struct dnsbl_entry *e)
{
	if (!e->in_tree && e->refs == 0 && e->inflight == 0)
		entry_free(e);
}

static void
entry_detach(struct dnsbl_entry *e)
{
	struct dnsbl *b = e->b;

	if (e->in_tree) {
		RB_REMOVE(dnsbl_tree, &b->tree, e);
		e->in_tree = false;
		b->count--;
	}
	if (!e->done) {
		e->done = true;
		b->pending--;
	}
	entry_maybe_free(e);
}

static int
list_index(const struct dnsbl_entry *e, const char *name)
{
	int i;

	for (i = 0; i < e->nlists; i++)
		if (strcmp(e->lists[i].name, name) == 0)
			return i;
	return -1;
}

/* One dnsbl_list per distinct site name; want_txt if any has weight > 0. */
static int
entry_add_lists(struct dnsbl_entry *e, const struct dnsbl_site *v, size_t n)
{
	size_t i;
	int k;

	if ((e->lists = calloc(n, sizeof(*e->lists))) == NULL)
		return -1;
	for (i = 0; i < n; i++) {
		if ((k = list_index(e, v[i].name)) == -1) {
			k = e->nlists;
			if ((e->lists[k].name = strdup(v[i].name)) == NULL)
				return -1;
			e->nlists++;
		}
		if (v[i].weight > 0)
			e->lists[k].want_txt = true;
	}
	return 0;
}

/* ---- completion ---- */

static int64_t
clamp_ttl(const struct greyd_conf *c, int64_t ttl)
{
	if (ttl < c->dnsbl_min_ttl)
		return c->dnsbl_min_ttl;
	if (ttl > c->dnsbl_max_ttl)
		return c->dnsbl_max_ttl;
	return ttl;
}

/* Seconds to cache e: the smallest TTL of its answers (a listing's, or
 * the negative-caching TTL of NXDOMAIN/NODATA, 0 without a SOA), clamped;
 * the minimum when a list stayed silent or failed. */
static int64_t
entry_ttl(const struct dnsbl_entry *e)
{
	const struct greyd_conf *c = conf_of(e->b);
	int64_t ttl = -1;
	int i;

	for (i = 0; i < e->nlists; i++) {
		const struct dnsbl_list *l = &e->lists[i];

		if (l->state != LIST_ANSWERED)
			return c->dnsbl_min_ttl;
		/* a listing's TTL, or the negative TTL of NXDOMAIN/NODATA */
		if (ttl == -1 || l->ttl < ttl)
			ttl = l->ttl;
	}
	return clamp_ttl(c, ttl == -1 ? 0 : ttl);
}

/* The caller frees e afterwards if the callbacks released every handle
 * (entry_maybe_free): it may still use e after this returns. */
static void
entry_notify(struct dnsbl_entry *e)
{
	struct dnsbl_lookup *l;

	e->refs++;		/* a callback may release every handle */
	while ((l = TAILQ_FIRST(&e->waiters)) != NULL) {
		TAILQ_REMOVE(&e->waiters, l, wq);
		l->waiting = false;
		l->cb(l->arg);
	}
	e->refs--;
}

static void
entry_finish(struct dnsbl_entry *e, int64_t now_ms)
{
	if (e->done)
		return;
	e->done = true;
	e->b->pending--;
	e->expire_ms = now_ms + entry_ttl(e) * 1000;
	if (e->deadline != NULL)
		event_del(e->deadline);
	entry_notify(e);
}

static void
deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	entry_finish(arg, clock_ms());
	entry_maybe_free(arg);
}

/* Does any list still wait for an answer (A or TXT)? */
static bool
entry_waiting(const struct dnsbl_entry *e)
{
	int i;

	for (i = 0; i < e->nlists; i++)
		if (e->lists[i].state == LIST_PENDING)
			return true;
	return e->inflight > 0;
}

/* ---- queries ---- */

static void query_cb(const struct dns_answer *ans, void *arg);

static void
entry_query(struct dnsbl_entry *e, int list, const char *name, bool txt)
{
	struct dnsbl_query *q;

	if ((q = malloc(sizeof(*q))) == NULL) {
		e->lists[list].state = LIST_FAILED;
		return;
	}
	*q = (struct dnsbl_query){ .e = e, .list = list, .txt = txt };
	e->inflight++;
	dns_query(e->b->dns, name, txt ? DNS_TYPE_TXT : DNS_TYPE_A, query_cb,
	    q);
}

/* Any answer inside 127.0.0.0/8 (RFC 5782); others are ignored. */
static void
list_store_a(struct dnsbl_list *l, const struct dns_answer *ans)
{
	int i;

	l->n = 0;
	l->ttl = ans->ttl;
	for (i = 0; i < ans->nrecords && i < DNS_MAX_RECORDS; i++)
		if (ans->a[i][0] == 127)
			memcpy(l->a[l->n++], ans->a[i], 4);
}

/* Does a site of list idx's name with a positive weight match its answer? */
static bool
list_counts(const struct dnsbl_entry *e, int idx)
{
	const struct dnsbl_list *l = &e->lists[idx];
	const struct dnsbl_site *v;
	size_t n, j;

	sites_of(e->b, e->sender, &v, &n);
	for (j = 0; j < n; j++)
		if (strcmp(v[j].name, l->name) == 0 &&
		    dnsbl_site_score(&v[j], (const uint8_t (*)[4])l->a,
		    l->n) > 0)
			return true;
	return false;
}

/* The A answer; the TXT is asked only when it may go in a reply. */
static void
query_a_done(struct dnsbl_entry *e, int idx, const struct dns_answer *ans,
    const char *qname)
{
	struct dnsbl_list *l = &e->lists[idx];

	if (ans->status == DNS_OK || ans->status == DNS_NXDOMAIN) {
		l->state = LIST_ANSWERED;
		l->ttl = ans->ttl;
		if (ans->status == DNS_OK)
			list_store_a(l, ans);
	} else {
		l->state = LIST_FAILED;
	}
	if (l->n > 0 && l->want_txt && qname != NULL && list_counts(e, idx))
		entry_query(e, idx, qname, true);
}

static char *
txt_sanitise(const char *s)
{
	char *t = strndup(s, DNSBL_REPLY_TXT_MAX);
	char *p;

	if (t == NULL)
		return NULL;
	for (p = t; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
			*p = '?';
	return t;
}

/* The name of list idx's query for this entry (again, for the TXT). */
static int
entry_qname(const struct dnsbl_entry *e, int idx, char *buf, size_t len)
{
	struct dnsbl_site s;
	struct netaddr a;

	memset(&s, 0, sizeof(s));
	snprintf(s.name, sizeof(s.name), "%s", e->lists[idx].name);
	if (e->sender)
		return dnsbl_query_name_domain(&s, e->key + 2, buf, len);
	if (netaddr_parse(&a, e->key + 2) != 0)
		return -1;
	return dnsbl_query_name_addr(&s, a.family, a.bytes, buf, len);
}

static void
query_cb(const struct dns_answer *ans, void *arg)
{
	struct dnsbl_query *q = arg;
	struct dnsbl_entry *e = q->e;
	char qname[DNSBL_KEY_MAX + 80];
	bool late = e->done;

	e->inflight--;
	if (!late && ans->status != DNS_CANCELLED) {
		if (q->txt) {
			if (ans->status == DNS_OK && ans->nrecords > 0)
				e->lists[q->list].txt = txt_sanitise(ans->txt);
		} else {
			query_a_done(e, q->list, ans,
			    entry_qname(e, q->list, qname, sizeof(qname)) == 0 ?
			    qname : NULL);
		}
		if (!entry_waiting(e))
			entry_finish(e, clock_ms());
	}
	free(q);
	entry_maybe_free(e);
}

/* Start the A query of every list; lists whose name does not fit fail. */
static void
entry_start(struct dnsbl_entry *e)
{
	char qname[DNSBL_KEY_MAX + 80];
	int i;

	for (i = 0; i < e->nlists; i++) {
		if (entry_qname(e, i, qname, sizeof(qname)) != 0)
			e->lists[i].state = LIST_FAILED;
		else
			entry_query(e, i, qname, false);
	}
}

/* ---- lookups ---- */

static struct dnsbl_lookup *
lookup_new(struct dnsbl_entry *e, bool cached)
{
	struct dnsbl_lookup *l = calloc(1, sizeof(*l));

	if (l == NULL)
		return NULL;
	l->e = e;
	l->cached = cached;
	e->refs++;
	return l;
}

static struct dnsbl_entry *
entry_new(struct dnsbl *b, const char *key, bool sender, int64_t now_ms)
{
	const struct dnsbl_site *v;
	struct dnsbl_entry *e;
	struct timeval tv;
	size_t n;

	sites_of(b, sender, &v, &n);
	if ((e = calloc(1, sizeof(*e))) == NULL)
		return NULL;
	e->b = b;
	e->sender = sender;
	e->start_ms = now_ms;
	snprintf(e->key, sizeof(e->key), "%s", key);
	TAILQ_INIT(&e->waiters);
	tv.tv_sec = conf_of(b)->dnsbl_timeout;
	tv.tv_usec = 0;
	if (entry_add_lists(e, v, n) != 0 ||
	    (e->deadline = evtimer_new(b->base, deadline_cb, e)) == NULL ||
	    evtimer_add(e->deadline, &tv) != 0) {
		entry_free(e);
		return NULL;
	}
	b->pending++;
	if (b->count < DNSBL_CACHE_MAX) {
		RB_INSERT(dnsbl_tree, &b->tree, e);
		e->in_tree = true;
		b->count++;
	}
	return e;
}

static struct dnsbl_lookup *
dnsbl_lookup_key(struct dnsbl *b, const char *key, bool sender,
    int64_t now_ms)
{
	struct dnsbl_entry find, *e;
	struct dnsbl_lookup *l;
	const struct dnsbl_site *v;
	size_t n;

	sites_of(b, sender, &v, &n);
	if (n == 0)
		return NULL;
	snprintf(find.key, sizeof(find.key), "%s", key);
	if ((e = RB_FIND(dnsbl_tree, &b->tree, &find)) != NULL) {
		if (!e->done || e->expire_ms > now_ms)
			return lookup_new(e, e->done);
		entry_detach(e);	/* expired: a new lookup replaces it */
	}
	if ((e = entry_new(b, key, sender, now_ms)) == NULL)
		return NULL;
	if ((l = lookup_new(e, false)) == NULL) {
		entry_detach(e);
		return NULL;
	}
	entry_start(e);
	if (!entry_waiting(e))		/* every name too long */
		entry_finish(e, now_ms);
	return l;
}

static void
client_key(const struct netaddr *a, char *key, size_t len)
{
	char text[NETADDR_STRLEN];

	netaddr_format(a, text, sizeof(text));
	snprintf(key, len, "a:%s", text);
}

struct dnsbl_lookup *
dnsbl_client(struct dnsbl *b, const struct netaddr *a, int64_t now_ms)
{
	char key[DNSBL_KEY_MAX];

	client_key(a, key, sizeof(key));
	return dnsbl_lookup_key(b, key, false, now_ms);
}

struct dnsbl_lookup *
dnsbl_sender(struct dnsbl *b, const char *domain, int64_t now_ms)
{
	char key[DNSBL_KEY_MAX];
	size_t i, len = strlen(domain);

	if (len == 0 || len > DNSBL_NAME_MAX)
		return NULL;
	key[0] = 'd';
	key[1] = ':';
	for (i = 0; i <= len; i++)
		key[2 + i] = (char)(domain[i] >= 'A' && domain[i] <= 'Z' ?
		    domain[i] + 32 : domain[i]);
	return dnsbl_lookup_key(b, key, true, now_ms);
}

bool
dnsbl_done(const struct dnsbl_lookup *l)
{
	return l->e->done;
}

/* Append "word" to a space-separated text of at most len octets. */
static void
text_add(char *buf, size_t len, const char *word)
{
	size_t used = strlen(buf);

	if (used > 0 && used + 1 < len)
		buf[used++] = ' ';
	snprintf(buf + used, len - used, "%s", word);
}

static void
entry_result(const struct dnsbl_entry *e, struct dnsbl_result *r)
{
	const struct dnsbl_site *v;
	int i, k, w, top = 0;
	char word[DNSBL_NAME_MAX + 16];
	size_t n, j;

	sites_of(e->b, e->sender, &v, &n);
	for (j = 0; j < n; j++) {
		if ((k = list_index(e, v[j].name)) == -1 ||
		    e->lists[k].state != LIST_ANSWERED ||
		    (w = dnsbl_site_score(&v[j], (const uint8_t (*)[4])
		    e->lists[k].a, e->lists[k].n)) == 0)
			continue;
		r->score += w;
		snprintf(word, sizeof(word), "%s*%d", v[j].name, w);
		text_add(r->hits, sizeof(r->hits), word);
		if (w > top) {
			top = w;
			snprintf(r->top, sizeof(r->top), "%s", v[j].name);
			snprintf(r->txt, sizeof(r->txt), "%s",
			    e->lists[k].txt != NULL ? e->lists[k].txt : "");
		}
	}
	for (i = 0; i < e->nlists; i++)
		if (e->lists[i].state != LIST_ANSWERED)
			text_add(r->silent, sizeof(r->silent),
			    e->lists[i].name);
}

void
dnsbl_result(const struct dnsbl_lookup *l, struct dnsbl_result *r)
{
	memset(r, 0, sizeof(*r));
	if (!l->e->done)
		return;
	r->cached = l->cached;
	r->age_ms = clock_ms() - l->e->start_ms;
	entry_result(l->e, r);
}

bool
dnsbl_wait(struct dnsbl_lookup *l, dnsbl_cb cb, void *arg)
{
	if (l->e->done)
		return false;
	l->cb = cb;
	l->arg = arg;
	if (!l->waiting)
		TAILQ_INSERT_TAIL(&l->e->waiters, l, wq);
	l->waiting = true;
	return true;
}

void
dnsbl_unwait(struct dnsbl_lookup *l)
{
	if (l == NULL || !l->waiting)
		return;
	TAILQ_REMOVE(&l->e->waiters, l, wq);
	l->waiting = false;
}

void
dnsbl_release(struct dnsbl_lookup *l)
{
	struct dnsbl_entry *e;

	if (l == NULL)
		return;
	e = l->e;
	if (l->waiting)
		TAILQ_REMOVE(&e->waiters, l, wq);
	free(l);
	e->refs--;
	entry_maybe_free(e);
}

bool
dnsbl_cached_client(struct dnsbl *b, const struct netaddr *a, int64_t now_ms,
    struct dnsbl_result *r)
{
	struct dnsbl_entry find, *e;

	client_key(a, find.key, sizeof(find.key));
	if ((e = RB_FIND(dnsbl_tree, &b->tree, &find)) == NULL || !e->done ||
	    e->expire_ms <= now_ms)
		return false;
	memset(r, 0, sizeof(*r));
	r->cached = true;
	entry_result(e, r);
	return true;
}

/* ---- the whole cache ---- */

struct dnsbl *
dnsbl_new(struct event_base *base, struct dns *dns)
{
	struct dnsbl *b = calloc(1, sizeof(*b));

	if (b == NULL)
		return NULL;
	b->base = base;
	b->dns = dns;
	RB_INIT(&b->tree);
	return b;
}

void
dnsbl_sweep(struct dnsbl *b, int64_t now_ms, size_t batch)
{
	struct dnsbl_entry find, *e, *next;

	snprintf(find.key, sizeof(find.key), "%s", b->cursor);
	e = RB_NFIND(dnsbl_tree, &b->tree, &find);
	for (; e != NULL && batch > 0; e = next, batch--) {
		next = RB_NEXT(dnsbl_tree, &b->tree, e);
		if (e->done && e->expire_ms <= now_ms && e->refs == 0)
			entry_detach(e);
	}
	if (e == NULL)
		b->cursor[0] = '\0';
	else
		snprintf(b->cursor, sizeof(b->cursor), "%s", e->key);
}

size_t
dnsbl_count(const struct dnsbl *b)
{
	return b->count;
}

size_t
dnsbl_pending(const struct dnsbl *b)
{
	return b->pending;
}

/* After dns_free(): no query is in flight, every handle released. */
void
dnsbl_free(struct dnsbl *b)
{
	struct dnsbl_entry *e;

	if (b == NULL)
		return;
	while ((e = RB_MIN(dnsbl_tree, &b->tree)) != NULL) {
		RB_REMOVE(dnsbl_tree, &b->tree, e);
		e->in_tree = false;
		if (e->refs == 0 && e->inflight == 0)
			entry_free(e);
		else
			log_err("dnsbl: %s still in use at exit", e->key);
	}
	free(b);
}

int
dnsbl_reply(char *buf, size_t len, const struct dnsbl_result *r,
    const char *addr, const char *sender)
{
	const char *at, *sep = r->txt[0] != '\0' ? "; " : "";

	if (sender == NULL)
		return snprintf(buf, len, "554 5.7.1 Service unavailable; "
		    "client [%s] blocked using %s%s%s", addr, r->top, sep,
		    r->txt);
	at = strrchr(sender, '@');
	return snprintf(buf, len, "554 5.7.1 <%s>: Sender address rejected: "
	    "domain %s blocked using %s%s%s", sender, at != NULL ? at + 1 : "",
	    r->top, sep, r->txt);
}
