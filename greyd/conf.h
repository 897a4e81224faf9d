/*
 * conf.h — greyd.conf: Postfix main.cf syntax, validated into one struct.
 *
 * Syntax (design §5): "name = value", '#' comments, a line that starts with
 * white space continues the previous one, lists separated by spaces and/or
 * commas, durations with units (s m h d w; a bare number is seconds), sizes
 * as plain numbers, booleans yes/no, "$name" and "${name}" expand another
 * setting (defaults included).  Unknown names and bad values are errors
 * reported as "file:line: reason"; -o overrides as "-o name=value: reason".
 *
 * The configuration snapshot.  greyd has one global configuration, the
 * snapshot in force (conf_current).  SIGHUP loads a new one with conf_new
 * and, if it is valid, makes it current with conf_install.  Whoever keeps
 * using a configuration across loop turns (a session, a fast-path
 * connection) holds it with conf_hold and lets go with conf_release, so a
 * reload never frees a configuration that a live connection still reads:
 * it is freed when its last holder releases it.  A struct filled by
 * conf_load in the caller's own memory is not counted (hold and release
 * leave it alone); tests and tools install such structs directly.  All of
 * this runs on the event loop's thread only.
 */
#ifndef GREYD_CONF_H
#define GREYD_CONF_H

#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/socket.h>

#include "dnsbl_site.h"
#include "netaddr.h"

#define CONF_MAX_LISTEN	16
#define CONF_ERRLEN	512
#define CONF_MAX_DNS_SERVERS	16

enum backend_proxy {
	BACKEND_PROXY_NONE,
	BACKEND_PROXY_HAPROXY,		/* PROXY protocol v1 (text) */
	BACKEND_PROXY_HAPROXY2,		/* PROXY protocol v2 (binary) */
	BACKEND_PROXY_XCLIENT,		/* Postfix XCLIENT command */
};

/*
 * What to do with a client caught by a test (pregreet, protocol, trap,
 * DNSBL).  Each *_action setting takes only some of these (greyd.conf(5)).
 */
enum conf_action {
	ACTION_IGNORE,		/* log only */
	ACTION_REJECT,		/* reply 5xx (and close, where the text says so) */
	ACTION_TRAP,		/* reject, and trap the address for trap_expiry */
	ACTION_TARPIT,		/* hand the connection to tarpit.c */
	ACTION_GREYLIST,	/* greylist even a whitelisted client (DNSBL) */
	ACTION_ACCEPT,		/* log only (SPF) */
	ACTION_TEMPFAIL,	/* reply 4xx (SPF) */
};

enum recipient_verify { RCPT_VERIFY_NONE, RCPT_VERIFY_BACKEND };

/* A list of words (file names, domains), each a NUL-terminated string. */
struct conf_list {
	char **v;
	size_t n;
};

struct conf_sockaddr {
	struct sockaddr_storage ss;
	socklen_t len;
	char text[NETADDR_STRLEN + 8];	/* as written: "[::1]:2525" */
};

struct greyd_conf {
	/* where greyd listens and where accepted mail goes */
	struct conf_sockaddr listen[CONF_MAX_LISTEN];
	int nlisten;
	struct conf_sockaddr backend;
	enum backend_proxy backend_proxy;
	int backend_connect_timeout;	/* seconds */
	int backend_timeout;		/* seconds to wait for a backend reply */

	/* trust database */
	char db_dir[PATH_MAX];
	int db_checkpoint_interval;	/* seconds */
	int db_expire_interval;		/* seconds between expiry batches */
	int db_expire_batch;		/* records examined per batch */
	int client_record_expiry;	/* seconds a client record outlives its last_seen */

	/* greylisting */
	int greylist_delay;		/* seconds */
	int greylist_retry_window;	/* seconds a grey entry waits for its retry */
	int white_expiry;		/* seconds, refreshed on each delivery */
	int white_refresh_interval;	/* seconds between refreshes by the fast path */
	int greylist_ipv4_prefix;
	int greylist_ipv6_prefix;
	bool greylist_exempt_postmaster;
	struct cidr *allow_clients;
	size_t nallow_clients;

	int auto_whitelist_after;	/* greylist passes before the client key is white (0 = first) */

	/* recipients and spamtraps (rcpt.c) */
	struct conf_list recipient_maps;	/* files of addresses, @domain wildcards */
	struct conf_list relay_domains;		/* domains we receive mail for */
	enum recipient_verify recipient_verify;
	int rcpt_positive_expiry;	/* seconds a callout "valid" is cached */
	int rcpt_negative_expiry;	/* seconds a callout "unknown" is cached */
	int callout_idle_timeout;	/* seconds an idle callout connection stays */
	int max_unknown_recipients;	/* per session, then 421 */
	struct conf_list spamtrap_maps;	/* files of spamtrap addresses */
	int trap_expiry;		/* seconds a trapped client stays trapped */
	enum conf_action trap_action;	/* reject or tarpit */

	/* per-client limits (limits.c) */
	int client_connection_limit;	/* concurrent sessions per address */
	int client_connection_rate;	/* new sessions per address per hour */
	int session_message_limit;	/* messages per session */
	int message_recipient_limit;	/* recipients per message */
	int max_sessions;		/* all clients together */
	int trusted_limit_multiplier;	/* for whitelisted clients */

	/* before-220 and protocol tests */
	int greet_wait;			/* seconds; 0 = no pregreet test */
	enum conf_action pregreet_action;
	enum conf_action protocol_error_action;
	int greet_pass_expiry;		/* seconds a passed client is not retested */

	/* tarpit (tarpit.c) */
	int tarpit_stutter;		/* seconds between reply bytes */
	int tarpit_time;		/* seconds a tarpit session lasts at most */
	int max_tarpit_sessions;

	/* DNS checks (dns.c, dnsbl.c) */
	struct conf_list dns_servers;	/* "ip", "ip:port", "[ip6]:port"; none = resolv.conf */
	struct dnsbl_site *dnsbl_sites;	/* client address lists, postscreen syntax */
	size_t ndnsbl_sites;
	int dnsbl_threshold;		/* score >= this: bad client */
	int dnswl_threshold;		/* score <= this: trusted client */
	int dnsbl_timeout;		/* seconds to wait for the lists */
	int dnsbl_min_ttl;		/* seconds a result is cached at least */
	int dnsbl_max_ttl;		/* and at most */
	enum conf_action dnsbl_action;	/* reject, greylist or tarpit */
	int dnsbl_greylist_delay;	/* seconds, for dnsbl_action = greylist */
	struct dnsbl_site *rhsbl_sender_sites;	/* MAIL FROM domain lists */
	size_t nrhsbl_sender_sites;

	/* SPF (spf.c) */
	int spf_workers;		/* threads running libspf2; 0: no SPF */
	int spf_timeout;		/* seconds a check may take in all */
	enum conf_action spf_fail_action;	/* accept|reject|tempfail|greylist */
	enum conf_action spf_softfail_action;
	enum conf_action spf_temperror_action;
	enum conf_action spf_permerror_action;
	bool greylist_spf_key;		/* SPF pass: the domain is the client key */
	bool spf_check_loopback;	/* check 127/8 and ::1 clients too */

	/* SMTP server */
	char hostname[256];		/* default: gethostname() */
	char smtp_banner[512];		/* text after "220 "; default "$hostname ESMTP greyd" */
	int smtp_idle_timeout;		/* seconds */
	int smtp_error_limit;		/* errors before 421 and close */
	long long message_size_limit;	/* octets, advertised in SIZE; 0 = no limit */
	int drain_timeout;		/* seconds SIGTERM waits for live sessions */

	/* daemon */
	char user[64];			/* "" = do not change user */
	char pid_file[PATH_MAX];	/* "" = none */

	unsigned refs;			/* holders (conf_new); 0: not counted */
};

/*
 * Load the embedded defaults, then the file at path (NULL: defaults only),
 * then overrides ("name=value" strings, NULL-terminated array, may be NULL).
 * On error returns -1 with "file:line: reason" in err; c is then freed.
 */
int conf_load(struct greyd_conf *c, const char *path,
    const char *const *overrides, char *err, size_t errlen);
/* conf_load into new memory, held once by the caller; NULL with err set. */
struct greyd_conf *conf_new(const char *path, const char *const *overrides,
    char *err, size_t errlen);
/* The snapshot in force (NULL before the first conf_install). */
const struct greyd_conf *conf_current(void);
/* Make c current, taking over the caller's hold; the previous snapshot is
 * released.  c may be NULL (nothing current). */
void conf_install(struct greyd_conf *c);
/* One more holder of c; returns c. */
const struct greyd_conf *conf_hold(const struct greyd_conf *c);
/* A holder is done with c (NULL is ignored). */
void conf_release(const struct greyd_conf *c);
/* Print every effective setting as "name = value", one per line. */
void conf_print(const struct greyd_conf *c, FILE *fp);
void conf_free(struct greyd_conf *c);
/* Parse a duration ("300", "300s", "5m", "4h", "36d", "1w"); -1 if bad. */
long long conf_parse_duration(const char *s);
/* "host:port", "[v6]:port" (numeric hosts only). 0 ok, -1 bad. */
int conf_parse_sockaddr(struct conf_sockaddr *out, const char *s);
const char *conf_backend_proxy_name(enum backend_proxy p);
const char *conf_action_name(enum conf_action a);

#endif
