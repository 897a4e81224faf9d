/*
 * dns.c — the resolver (see dns.h): c-ares channels driven by libevent.
 *
 * A channel (struct dns_chan) is one ares_channel with what hooks it into
 * the loop: c-ares tells sock_state_cb which sockets it wants watched, and
 * each gets a struct dns_sock whose persistent event (EV_READ, plus
 * EV_WRITE while c-ares asks for it) calls ares_process_fd; one timer per
 * channel is re-armed from ares_timeout() after every call into c-ares, and
 * its expiry calls ares_process_fd with no socket, which is how c-ares
 * retries and times out.
 *
 * dns_reconfigure makes a new channel for the new server list (empty: a
 * fresh read of /etc/resolv.conf) and retires the old one: the queries it
 * holds finish on it, and it is destroyed once it holds none.  c-ares 1.18
 * refuses to change servers while queries are pending, and this way a
 * failed reconfiguration leaves the old channel in place.
 *
 * Answers are never delivered from inside c-ares.  Its callback only fills
 * the query's struct dns_answer and moves the query to d->done; an event
 * made active then (the "deliver" event, no fd, no timeout) runs the
 * callbacks from the loop.  A query that fails before reaching c-ares (name
 * too long, unknown type) and one c-ares fails at once take the same path,
 * so no callback ever runs inside dns_query(), and user code never runs
 * inside c-ares (a callback may call dns_query, dns_reconfigure or
 * dns_free).  One delivery runs the callbacks queued when it starts, not
 * those their callbacks queue, so the loop gets its turn.
 *
 * dns_free destroys the channels (c-ares completes their queries with
 * ARES_EDESTRUCTION) and runs every callback not yet run with
 * DNS_CANCELLED, answers already received but not delivered included.
 *
 * Answers: A through ares_parse_a_reply (TTLs from its addrttls), TXT
 * through ares_parse_txt_reply_ext (the strings of the first record joined,
 * cut at DNS_TXT_MAX - 1 octets; its TTL read from the answer section).
 * NXDOMAIN and NODATA take the negative-caching TTL of RFC 2308 §5 from the
 * SOA of the authority section, min(SOA TTL, SOA MINIMUM), or 0 without a
 * SOA.  Status mapping: ARES_ENOTFOUND -> DNS_NXDOMAIN, ARES_ENODATA ->
 * DNS_OK with no records, ARES_ETIMEOUT -> DNS_TIMEOUT, ARES_EDESTRUCTION
 * and ARES_ECANCELLED -> DNS_CANCELLED, anything else (SERVFAIL, REFUSED,
 * connection refused, a malformed answer, no memory) -> DNS_ERROR.
 *
 * Waiting resolvers (struct dns_sync, for the SPF workers, design §2): a
 * channel of its own per thread, with the same settings (servers_csv,
 * options) as the loop's, and no sock_state_cb.  dns_sync_query sends one
 * query and waits for it in poll(2) on the sockets ares_getsock names, at
 * most DNS_SYNC_SLICE_MS at a time (less when ares_timeout says so), calling
 * ares_process_fd after each wait; between waits it asks the caller's stop
 * function, and if that says stop, ares_cancel ends the query
 * (DNS_CANCELLED).  The answer message is copied out for the caller, with
 * the same status mapping as above.
 *
 * ares_library_init is called once per process (pthread_once: SPF workers
 * make channels of their own) and never undone.
 */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <ares.h>
#include <event2/event.h>
#include <event2/event_struct.h>

#include "dns.h"
#include "log.h"

#define DNS_NAME_MAX	253	/* octets of a name, without the final dot */
#define DNS_TRIES	2	/* tries per server */
#define DNS_EDNS_SIZE	1232	/* UDP payload we accept (DNS flag day 2020) */
#define DNS_SERVERS_MAX	16	/* entries of dns_servers */
#define DNS_SERVER_LEN	64	/* "[v6]:port," */
_Static_assert(DNS_SERVERS_MAX * DNS_SERVER_LEN <= DNS_SERVERS_CSV_MAX,
    "DNS_SERVERS_CSV_MAX");
#define DNS_SYNC_SLICE_MS 100	/* longest wait between stop checks */
#define DNS_LABELS_MAX	128	/* labels and pointers followed in a name */
#define DNS_HDR_LEN	12
#define DNS_RR_FIXED	10	/* type, class, TTL, rdlength */

struct dns_chan;

struct dns_sock {
	LIST_ENTRY(dns_sock) entry;	/* chan->socks */
	struct dns_chan *chan;
	ares_socket_t fd;
	short what;			/* EV_READ|EV_WRITE watched */
	struct event ev;
};

struct dns_chan {
	TAILQ_ENTRY(dns_chan) entry;	/* d->retired */
	struct dns *d;
	ares_channel ch;
	LIST_HEAD(, dns_sock) socks;
	struct event timer;
	unsigned pending;		/* queries c-ares holds */
};

struct dns_query {
	TAILQ_ENTRY(dns_query) entry;	/* d->done */
	dns_cb cb;
	void *arg;
	enum dns_type type;
	struct dns_chan *chan;		/* NULL once answered */
	struct dns_answer ans;
};

TAILQ_HEAD(dns_query_list, dns_query);

struct dns {
	struct event_base *base;
	int timeout_ms;
	struct dns_chan *chan;		/* new queries go here */
	TAILQ_HEAD(, dns_chan) retired;	/* old channels draining */
	struct dns_query_list done;	/* answered, callback not yet run */
	unsigned ndone;
	unsigned npending;		/* started, callback not yet run */
	struct event *deliver;
	bool *freed;			/* set by dns_free during a delivery */
	bool closing;			/* in dns_free */
};

static pthread_once_t dns_lib_once = PTHREAD_ONCE_INIT;
static int dns_lib_status = ARES_SUCCESS;

static void
dns_lib_init(void)
{
	dns_lib_status = ares_library_init(ARES_LIB_INIT_ALL);
}

/* ---- the server list ---- */

static bool
parse_port(const char *s, unsigned *port)
{
	char *end;
	unsigned long v;

	if (*s < '0' || *s > '9')
		return false;
	v = strtoul(s, &end, 10);
	if (*end != '\0' || v == 0 || v > 65535)
		return false;
	*port = (unsigned)v;
	return true;
}

/* One dns_servers word as c-ares' "ip:port" or "[ip6]:port" into out. */
static bool
server_entry(const char *w, char *out, size_t outlen)
{
	char host[INET6_ADDRSTRLEN];
	unsigned char bin[sizeof(struct in6_addr)];
	const char *colon = strchr(w, ':'), *end;
	unsigned port = 53;
	size_t len;
	int af;

	if (w[0] == '[') {
		if ((end = strchr(w, ']')) == NULL ||
		    (end[1] != '\0' && (end[1] != ':' ||
		    !parse_port(end + 2, &port))))
			return false;
		w++;
		len = (size_t)(end - w);
		af = AF_INET6;
	} else if (colon != NULL && strchr(colon + 1, ':') != NULL) {
		len = strlen(w);		/* a bare IPv6 address */
		af = AF_INET6;
	} else {
		if (colon != NULL && !parse_port(colon + 1, &port))
			return false;
		len = colon != NULL ? (size_t)(colon - w) : strlen(w);
		af = AF_INET;
	}
	if (len == 0 || len >= sizeof(host))
		return false;
	memcpy(host, w, len);
	host[len] = '\0';
	if (inet_pton(af, host, bin) != 1)
		return false;
	return (size_t)snprintf(out, outlen, af == AF_INET6 ? "[%s]:%u" :
	    "%s:%u", host, port) < outlen;
}

/* c->dns_servers as the csv of ares_set_servers_ports_csv ("" if empty). */
int
dns_servers_csv(const struct greyd_conf *c, char *csv, size_t csvlen,
    char *err, size_t errlen)
{
	const struct conf_list *l = &c->dns_servers;
	char one[DNS_SERVER_LEN];
	size_t i;

	csv[0] = '\0';
	if (l->n > DNS_SERVERS_MAX) {
		snprintf(err, errlen, "dns_servers: more than %d servers",
		    DNS_SERVERS_MAX);
		return -1;
	}
	for (i = 0; i < l->n; i++) {
		if (!server_entry(l->v[i], one, sizeof(one))) {
			snprintf(err, errlen, "dns_servers: bad server \"%s\" "
			    "(want ip, ip:port or [ip6]:port)", l->v[i]);
			return -1;
		}
		if (i > 0)
			strlcat(csv, ",", csvlen);
		strlcat(csv, one, csvlen);
	}
	return 0;
}

/* ---- channels ---- */

static void dns_sock_cb(evutil_socket_t fd, short what, void *arg);

/* After every call into c-ares: its next deadline, if any. */
static void
chan_rearm(struct dns_chan *chan)
{
	struct timeval tv;

	if (ares_timeout(chan->ch, NULL, &tv) != NULL)
		evtimer_add(&chan->timer, &tv);
	else
		evtimer_del(&chan->timer);
}

static struct dns_sock *
chan_sock(struct dns_chan *chan, ares_socket_t fd)
{
	struct dns_sock *s;

	LIST_FOREACH(s, &chan->socks, entry)
		if (s->fd == fd)
			return s;
	return NULL;
}

static void
sock_free(struct dns_sock *s)
{
	event_del(&s->ev);
	LIST_REMOVE(s, entry);
	free(s);
}

/* c-ares: watch fd for reading and/or writing, or no longer. */
static void
dns_sock_state_cb(void *data, ares_socket_t fd, int readable, int writable)
{
	struct dns_chan *chan = data;
	struct dns_sock *s = chan_sock(chan, fd);
	short what = (readable ? EV_READ : 0) | (writable ? EV_WRITE : 0);

	if (what == 0) {
		if (s != NULL)
			sock_free(s);
		return;
	}
	if (s == NULL) {
		if ((s = calloc(1, sizeof(*s))) == NULL) {
			/* The timer still drives the retries to a timeout. */
			log_warn("dns: no memory to watch a c-ares socket");
			return;
		}
		s->chan = chan;
		s->fd = fd;
		LIST_INSERT_HEAD(&chan->socks, s, entry);
	} else if (s->what == what)
		return;
	else
		event_del(&s->ev);
	s->what = what;
	event_assign(&s->ev, chan->d->base, fd, what | EV_PERSIST, dns_sock_cb,
	    s);
	event_add(&s->ev, NULL);
}

static void
dns_sock_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dns_sock *s = arg;
	struct dns_chan *chan = s->chan;	/* s may go in ares_process_fd */

	ares_process_fd(chan->ch, what & EV_READ ? fd : ARES_SOCKET_BAD,
	    what & EV_WRITE ? fd : ARES_SOCKET_BAD);
	chan_rearm(chan);
}

static void
dns_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dns_chan *chan = arg;

	ares_process_fd(chan->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	chan_rearm(chan);
}

/*
 * *ch with greyd's options on the servers of csv ("": /etc/resolv.conf);
 * state_cb, if not NULL, hooks its sockets into a loop.  -1 with err set.
 */
static int
channel_init(ares_channel *ch, const char *csv, int timeout_ms,
    ares_sock_state_cb state_cb, void *state_data, char *err, size_t errlen)
{
	struct ares_options o;
	int r, mask = ARES_OPT_FLAGS | ARES_OPT_EDNSPSZ | ARES_OPT_TIMEOUTMS |
	    ARES_OPT_TRIES;

	memset(&o, 0, sizeof(o));
	o.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES | ARES_FLAG_EDNS |
	    ARES_FLAG_STAYOPEN;
	o.ednspsz = DNS_EDNS_SIZE;
	o.timeout = timeout_ms;
	o.tries = DNS_TRIES;
	if (state_cb != NULL) {
		o.sock_state_cb = state_cb;
		o.sock_state_cb_data = state_data;
		mask |= ARES_OPT_SOCK_STATE_CB;
	}
	if ((r = ares_init_options(ch, &o, mask)) != ARES_SUCCESS) {
		snprintf(err, errlen, "dns: ares_init_options: %s",
		    ares_strerror(r));
		return -1;
	}
	if (csv[0] != '\0' &&
	    (r = ares_set_servers_ports_csv(*ch, csv)) != ARES_SUCCESS) {
		snprintf(err, errlen, "dns_servers: %s: %s", csv,
		    ares_strerror(r));
		ares_destroy(*ch);
		return -1;
	}
	return 0;
}

static struct dns_chan *
chan_new(struct dns *d, const struct greyd_conf *c, char *err, size_t errlen)
{
	struct dns_chan *chan;
	char csv[DNS_SERVERS_CSV_MAX];

	if (dns_servers_csv(c, csv, sizeof(csv), err, errlen) == -1)
		return NULL;
	if ((chan = calloc(1, sizeof(*chan))) == NULL) {
		snprintf(err, errlen, "dns: out of memory");
		return NULL;
	}
	chan->d = d;
	LIST_INIT(&chan->socks);
	evtimer_assign(&chan->timer, d->base, dns_timer_cb, chan);
	if (channel_init(&chan->ch, csv, d->timeout_ms, dns_sock_state_cb,
	    chan, err, errlen) == -1) {
		free(chan);
		return NULL;
	}
	return chan;
}

/* Destroy the channel: c-ares completes what it holds (EDESTRUCTION) and
 * closes its sockets through sock_state_cb. */
static void
chan_free(struct dns_chan *chan)
{
	struct dns_sock *s;

	ares_destroy(chan->ch);
	while ((s = LIST_FIRST(&chan->socks)) != NULL)
		sock_free(s);
	evtimer_del(&chan->timer);
	free(chan);
}

/* Free the retired channels that hold no query any more. */
static void
dns_reap(struct dns *d)
{
	struct dns_chan *chan, *next;

	for (chan = TAILQ_FIRST(&d->retired); chan != NULL; chan = next) {
		next = TAILQ_NEXT(chan, entry);
		if (chan->pending == 0) {
			TAILQ_REMOVE(&d->retired, chan, entry);
			chan_free(chan);
		}
	}
}

/* ---- answers ---- */

/* Offset past the (possibly compressed) name at off, or -1. */
static int
skip_name(const unsigned char *buf, int len, int off)
{
	int i;
	unsigned l;

	for (i = 0; i < DNS_LABELS_MAX && off < len; i++) {
		l = buf[off];
		if ((l & 0xc0) == 0xc0)
			return off + 2 <= len ? off + 2 : -1;
		if ((l & 0xc0) != 0)
			return -1;
		off += 1 + (int)l;
		if (l == 0)
			return off;
	}
	return -1;
}

static uint16_t
get16(const unsigned char *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/* A TTL with its top bit set means 0 (RFC 2181 §8). */
static uint32_t
get_ttl(const unsigned char *p)
{
	uint32_t v = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];

	return v > INT32_MAX ? 0 : v;
}

/*
 * Walk the answer and authority sections: *ans_ttl gets the smallest TTL
 * of the answer records of type type, *neg_ttl min(TTL, MINIMUM) of the
 * first SOA of the authority section (both stay as they are without one).
 */
static void
scan_ttls(const unsigned char *buf, int len, int type, uint32_t *ans_ttl,
    uint32_t *neg_ttl)
{
	unsigned i, nq, nan, nns;
	int off = DNS_HDR_LEN, rd, rdlen;
	uint32_t ttl, min;

	if (buf == NULL || len < DNS_HDR_LEN)
		return;
	nq = get16(buf + 4);
	nan = get16(buf + 6);
	nns = get16(buf + 8);
	for (i = 0; i < nq; i++)
		if ((off = skip_name(buf, len, off)) == -1 || (off += 4) > len)
			return;
	for (i = 0; i < nan + nns; i++) {
		if ((off = skip_name(buf, len, off)) == -1 ||
		    off + DNS_RR_FIXED > len)
			return;
		ttl = get_ttl(buf + off + 4);
		rdlen = get16(buf + off + 8);
		rd = off + DNS_RR_FIXED;
		if (rd + rdlen > len)
			return;
		if (i < nan && get16(buf + off) == type && ttl < *ans_ttl)
			*ans_ttl = ttl;
		if (i >= nan && get16(buf + off) == T_SOA) {
			if ((rd = skip_name(buf, len, rd)) == -1 ||
			    (rd = skip_name(buf, len, rd)) == -1 ||
			    rd + 20 > off + DNS_RR_FIXED + rdlen)
				return;
			min = get_ttl(buf + rd + 16);
			*neg_ttl = ttl < min ? ttl : min;
			return;
		}
		off = rd + rdlen;
	}
}

static enum dns_status
parse_a(struct dns_answer *ans, const unsigned char *abuf, int alen)
{
	struct ares_addrttl at[DNS_MAX_RECORDS];
	uint32_t ttl;
	int i, n = DNS_MAX_RECORDS, r;

	r = ares_parse_a_reply(abuf, alen, NULL, at, &n);
	if (r == ARES_ENODATA)
		return DNS_OK;
	if (r != ARES_SUCCESS)
		return DNS_ERROR;
	for (i = 0; i < n && i < DNS_MAX_RECORDS; i++) {
		memcpy(ans->a[i], &at[i].ipaddr, 4);
		ttl = at[i].ttl > 0 ? (uint32_t)at[i].ttl : 0;
		if (i == 0 || ttl < ans->ttl)
			ans->ttl = ttl;
	}
	ans->nrecords = i;
	return DNS_OK;
}

static enum dns_status
parse_txt(struct dns_answer *ans, const unsigned char *abuf, int alen)
{
	struct ares_txt_ext *head, *t;
	size_t len = 0, n;
	uint32_t unused = 0;
	int r;

	r = ares_parse_txt_reply_ext(abuf, alen, &head);
	if (r == ARES_ENODATA)
		return DNS_OK;
	if (r != ARES_SUCCESS)
		return DNS_ERROR;
	for (t = head; t != NULL; t = t->next) {
		if (t->record_start && ans->nrecords < DNS_MAX_RECORDS)
			ans->nrecords++;
		if (ans->nrecords > 1 || t->txt == NULL)
			continue;	/* only the first record's strings */
		n = t->length;
		if (n > sizeof(ans->txt) - 1 - len)
			n = sizeof(ans->txt) - 1 - len;
		memcpy(ans->txt + len, t->txt, n);
		len += n;
	}
	ans->txt[len] = '\0';
	ares_free_data(head);
	ans->ttl = UINT32_MAX;
	scan_ttls(abuf, alen, DNS_TYPE_TXT, &ans->ttl, &unused);
	if (ans->ttl == UINT32_MAX)
		ans->ttl = 0;
	return DNS_OK;
}

/* c-ares' status as ours (ARES_SUCCESS and ARES_ENODATA: DNS_OK). */
static enum dns_status
map_status(int status)
{
	switch (status) {
	case ARES_SUCCESS:
	case ARES_ENODATA:
		return DNS_OK;
	case ARES_ENOTFOUND:
		return DNS_NXDOMAIN;
	case ARES_ETIMEOUT:
		return DNS_TIMEOUT;
	case ARES_EDESTRUCTION:
	case ARES_ECANCELLED:
		return DNS_CANCELLED;
	default:
		return DNS_ERROR;
	}
}

/* The answer from c-ares' status and message. */
static void
fill_answer(struct dns_answer *ans, enum dns_type type, int status,
    const unsigned char *abuf, int alen)
{
	uint32_t unused = 0;

	ans->status = map_status(status);
	if (status == ARES_SUCCESS)
		ans->status = type == DNS_TYPE_A ? parse_a(ans, abuf, alen) :
		    parse_txt(ans, abuf, alen);
	if (ans->status != DNS_OK) {
		ans->nrecords = 0;
		ans->txt[0] = '\0';
	}
	/* NXDOMAIN or NODATA: the negative-caching TTL */
	if ((ans->status == DNS_OK && ans->nrecords == 0) ||
	    ans->status == DNS_NXDOMAIN) {
		ans->ttl = 0;
		scan_ttls(abuf, alen, -1, &unused, &ans->ttl);
	}
}

/* Queue q's answer for delivery from the loop. */
static void
query_done(struct dns *d, struct dns_query *q)
{
	TAILQ_INSERT_TAIL(&d->done, q, entry);
	d->ndone++;
	event_active(d->deliver, EV_TIMEOUT, 1);
}

/* Run q's callback and free q. */
static void
query_run(struct dns_query *q)
{
	q->cb(&q->ans, q->arg);
	free(q);
}

/* c-ares' callback: record the answer, deliver later. */
static void
dns_ares_cb(void *arg, int status, int timeouts, unsigned char *abuf,
    int alen)
{
	struct dns_query *q = arg;
	struct dns_chan *chan = q->chan;

	fill_answer(&q->ans, q->type, status, abuf, alen);
	chan->pending--;
	q->chan = NULL;
	query_done(chan->d, q);
}

/* Run the callbacks queued when called; stop if one of them frees d. */
static void
dns_deliver_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dns *d = arg;
	struct dns_query *q;
	unsigned n = d->ndone;
	bool freed = false;

	dns_reap(d);
	d->freed = &freed;
	while (n-- > 0 && (q = TAILQ_FIRST(&d->done)) != NULL) {
		TAILQ_REMOVE(&d->done, q, entry);
		d->ndone--;
		d->npending--;
		query_run(q);
		if (freed)
			return;
	}
	d->freed = NULL;
}

/* ---- the interface ---- */

/* c-ares initialised for the process, and timeout_ms usable; else err. */
static bool
lib_ready(int timeout_ms, char *err, size_t errlen)
{
	pthread_once(&dns_lib_once, dns_lib_init);
	if (dns_lib_status != ARES_SUCCESS) {
		snprintf(err, errlen, "dns: ares_library_init: %s",
		    ares_strerror(dns_lib_status));
		return false;
	}
	if (timeout_ms <= 0) {
		snprintf(err, errlen, "dns: timeout of %d ms", timeout_ms);
		return false;
	}
	return true;
}

struct dns *
dns_new(struct event_base *base, const struct greyd_conf *c, int timeout_ms,
    char *err, size_t errlen)
{
	struct dns *d;

	if (!lib_ready(timeout_ms, err, errlen))
		return NULL;
	if ((d = calloc(1, sizeof(*d))) == NULL) {
		snprintf(err, errlen, "dns: out of memory");
		return NULL;
	}
	d->base = base;
	d->timeout_ms = timeout_ms;
	TAILQ_INIT(&d->retired);
	TAILQ_INIT(&d->done);
	if ((d->deliver = event_new(base, -1, 0, dns_deliver_cb, d)) == NULL) {
		snprintf(err, errlen, "dns: out of memory");
		free(d);
		return NULL;
	}
	if ((d->chan = chan_new(d, c, err, errlen)) == NULL) {
		event_free(d->deliver);
		free(d);
		return NULL;
	}
	return d;
}

int
dns_reconfigure(struct dns *d, const struct greyd_conf *c, char *err,
    size_t errlen)
{
	struct dns_chan *chan;

	if (d->closing) {
		snprintf(err, errlen, "dns: resolver being freed");
		return -1;
	}
	if ((chan = chan_new(d, c, err, errlen)) == NULL)
		return -1;
	if (d->chan->pending == 0)
		chan_free(d->chan);
	else
		TAILQ_INSERT_TAIL(&d->retired, d->chan, entry);
	d->chan = chan;
	return 0;
}

/* A name c-ares may be given: 1 to DNS_NAME_MAX octets, a final dot
 * aside, no empty label, no NUL. */
static bool
name_ok(const char *name)
{
	size_t len = strnlen(name, DNS_NAME_MAX + 2);

	if (len > 0 && name[len - 1] == '.')
		len--;
	return len > 0 && len <= DNS_NAME_MAX && name[0] != '.' &&
	    strstr(name, "..") == NULL;
}

static struct dns_query *
query_new(struct dns *d, dns_cb cb, void *arg)
{
	struct dns_query *q;

	if ((q = calloc(1, sizeof(*q))) == NULL) {
		/* No way to keep the promise of a callback. */
		log_err("dns: out of memory for a query");
		abort();
	}
	q->cb = cb;
	q->arg = arg;
	d->npending++;
	return q;
}

/* Send q, or fail it from the loop if ok is false. */
static void
query_start(struct dns *d, struct dns_query *q, const char *name, int type,
    bool ok)
{
	struct dns_chan *chan = d->chan;

	if (d->closing || !ok) {
		q->ans.status = d->closing ? DNS_CANCELLED : DNS_ERROR;
		query_done(d, q);
		return;
	}
	/* c-ares may answer inside ares_query: dns_ares_cb queues it. */
	q->chan = chan;
	chan->pending++;
	ares_query(chan->ch, name, C_IN, type, dns_ares_cb, q);
	chan_rearm(chan);
}

void
dns_query(struct dns *d, const char *name, enum dns_type type, dns_cb cb,
    void *arg)
{
	struct dns_query *q = query_new(d, cb, arg);

	q->type = type;
	query_start(d, q, name, (int)type, name_ok(name) &&
	    (type == DNS_TYPE_A || type == DNS_TYPE_TXT));
}

unsigned
dns_pending(const struct dns *d)
{
	return d->npending;
}

void
dns_free(struct dns *d)
{
	struct dns_chan *chan;
	struct dns_query *q;

	if (d == NULL)
		return;
	if (d->freed != NULL)
		*d->freed = true;	/* inside a delivery: it stops */
	d->closing = true;
	chan_free(d->chan);
	d->chan = NULL;
	while ((chan = TAILQ_FIRST(&d->retired)) != NULL) {
		TAILQ_REMOVE(&d->retired, chan, entry);
		chan_free(chan);
	}
	while ((q = TAILQ_FIRST(&d->done)) != NULL) {
		TAILQ_REMOVE(&d->done, q, entry);
		memset(&q->ans, 0, sizeof(q->ans));
		q->ans.status = DNS_CANCELLED;
		query_run(q);
	}
	event_free(d->deliver);
	free(d);
}

int
dns_try_ms(const struct greyd_conf *c)
{
	return c->dnsbl_timeout * 1000 / 2;
}

/* ---- waiting resolvers (SPF workers) ---- */

struct dns_sync {
	ares_channel ch;
};

struct sync_result {
	bool done;
	int status;
	unsigned char *abuf;		/* a copy, or NULL */
	int alen;
};

static void
sync_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct sync_result *r = arg;

	(void)timeouts;
	r->done = true;
	r->status = status;
	if (abuf == NULL || alen <= 0 || status == ARES_EDESTRUCTION ||
	    status == ARES_ECANCELLED)
		return;
	if ((r->abuf = malloc((size_t)alen)) == NULL) {
		r->status = ARES_ENOMEM;
		return;
	}
	memcpy(r->abuf, abuf, (size_t)alen);
	r->alen = alen;
}

struct dns_sync *
dns_sync_new(const char *csv, int timeout_ms, char *err, size_t errlen)
{
	struct dns_sync *d;

	if (!lib_ready(timeout_ms, err, errlen))
		return NULL;
	if ((d = calloc(1, sizeof(*d))) == NULL) {
		snprintf(err, errlen, "dns: out of memory");
		return NULL;
	}
	if (channel_init(&d->ch, csv, timeout_ms, NULL, NULL, err,
	    errlen) == -1) {
		free(d);
		return NULL;
	}
	return d;
}

/* Wait once for d's sockets (at most DNS_SYNC_SLICE_MS), then let c-ares
 * read, write, retry and time out. */
static void
sync_wait(struct dns_sync *d)
{
	ares_socket_t socks[ARES_GETSOCK_MAXNUM];
	struct pollfd pfd[ARES_GETSOCK_MAXNUM];
	struct timeval max = { 0, DNS_SYNC_SLICE_MS * 1000 }, tv, *tvp;
	int bits = ares_getsock(d->ch, socks, ARES_GETSOCK_MAXNUM);
	unsigned ub = (unsigned)bits, rd, wr;
	int i, n = 0, ms;

	/* not ares.h's ARES_GETSOCK_WRITABLE: it shifts a signed 1 into
	 * bit 31 */
	for (i = 0; i < ARES_GETSOCK_MAXNUM; i++) {
		rd = ub & (1u << i);
		wr = ub & (1u << (i + ARES_GETSOCK_MAXNUM));
		if (!rd && !wr)
			continue;
		pfd[n].fd = socks[i];
		pfd[n].events = (short)((rd ? POLLIN : 0) | (wr ? POLLOUT : 0));
		pfd[n].revents = 0;
		n++;
	}
	tvp = ares_timeout(d->ch, &max, &tv);
	ms = (int)(tvp->tv_sec * 1000 + (tvp->tv_usec + 999) / 1000);
	if (poll(pfd, (nfds_t)n, ms) <= 0) {
		ares_process_fd(d->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
		return;
	}
	for (i = 0; i < n; i++)
		ares_process_fd(d->ch,
		    pfd[i].revents & (POLLIN | POLLERR | POLLHUP) ?
		    pfd[i].fd : ARES_SOCKET_BAD,
		    pfd[i].revents & (POLLOUT | POLLERR | POLLHUP) ?
		    pfd[i].fd : ARES_SOCKET_BAD);
}

enum dns_status
dns_sync_query(struct dns_sync *d, const char *name, int type,
    unsigned char **abuf, int *alen, bool (*stop)(void *), void *arg)
{
	struct sync_result r;

	memset(&r, 0, sizeof(r));
	*abuf = NULL;
	*alen = 0;
	if (!name_ok(name) || type <= 0 || type >= 65536)
		return DNS_ERROR;
	if (stop != NULL && stop(arg))
		return DNS_CANCELLED;
	ares_query(d->ch, name, C_IN, type, sync_cb, &r);
	while (!r.done) {
		sync_wait(d);
		if (!r.done && stop != NULL && stop(arg))
			ares_cancel(d->ch);	/* sync_cb: ECANCELLED */
	}
	*abuf = r.abuf;
	*alen = r.alen;
	return map_status(r.status);
}

void
dns_sync_free(struct dns_sync *d)
{
	if (d == NULL)
		return;
	ares_destroy(d->ch);
	free(d);
}
