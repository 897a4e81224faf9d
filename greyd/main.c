/*
 * main.c — greyd: arguments, configuration, privileges, daemon, signals,
 * and the wiring: the event loop, the connection registry (server.c), the
 * trust database, the checks, and the listener that ties them together.
 *
 * Start-up order matters:
 *   1. load and check the configuration (-t stops here, -n prints it);
 *   2. bind every listener and open the pid file, as root if need be;
 *   3. create db_dir and hand it to `user`, then drop to that user;
 *   4. daemonise (unless -d), write the pid file;
 *   5. open the trust database and the event base (after the fork: neither
 *      may cross one), start accepting.
 * SIGHUP loads the configuration again and swaps it in if it is valid
 * (listen addresses and db_dir need a restart); SIGTERM and SIGINT stop
 * accepting and let live sessions finish within drain_timeout.
 */
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bsd/libutil.h>
#include <event2/event.h>

#include "callout.h"
#include "clock.h"
#include "conf.h"
#include "dns.h"
#include "dnsbl.h"
#include "greyd_limits.h"
#include "listener.h"
#include "log.h"
#include "rcpt.h"
#include "server.h"
#include "session.h"
#include "spf.h"
#include "trustdb.h"

#define MAX_OVERRIDES 64

struct options {
	const char *config;
	const char *overrides[MAX_OVERRIDES + 1];
	int noverrides;
	bool foreground, check_only, print;
};

static void
usage(void)
{
	fprintf(stderr,
	    "usage: greyd [-dtnv] [-f config] [-o name=value ...]\n"
	    "  -f FILE  configuration file (default: embedded defaults)\n"
	    "  -d       stay in the foreground, log to stderr\n"
	    "  -t       check the configuration and exit\n"
	    "  -n       print every effective setting and exit\n"
	    "  -o N=V   override a setting (repeatable)\n"
	    "  -v       log debug lines\n");
	exit(2);
}

static void
parse_args(int argc, char **argv, struct options *o)
{
	int ch;

	while ((ch = getopt(argc, argv, "df:hno:tv")) != -1) {
		switch (ch) {
		case 'd':
			o->foreground = true;
			break;
		case 'f':
			o->config = optarg;
			break;
		case 'n':
			o->print = true;
			break;
		case 'o':
			if (o->noverrides >= MAX_OVERRIDES) {
				fprintf(stderr, "greyd: too many -o options\n");
				exit(2);
			}
			o->overrides[o->noverrides++] = optarg;
			break;
		case 't':
			o->check_only = true;
			break;
		case 'v':
			log_set_debug(1);
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
}

static int
mkdir_p(const char *path, mode_t mode)
{
	char tmp[PATH_MAX], *p;

	if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	for (p = tmp + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(tmp, mode) != 0 && errno != EEXIST)
		return -1;
	return 0;
}

/* Create db_dir, make it absolute (we chdir("/") as a daemon), give it to
 * the user greyd will run as. */
static int
prepare_db_dir(struct greyd_conf *c, const struct passwd *pw)
{
	char abs[PATH_MAX];

	if (mkdir_p(c->db_dir, 0700) != 0 || realpath(c->db_dir, abs) == NULL) {
		fprintf(stderr, "greyd: db_dir %s: %s\n", c->db_dir,
		    strerror(errno));
		return -1;
	}
	snprintf(c->db_dir, sizeof(c->db_dir), "%s", abs);
	if (pw != NULL && chown(abs, pw->pw_uid, pw->pw_gid) != 0) {
		fprintf(stderr, "greyd: chown %s: %s\n", abs, strerror(errno));
		return -1;
	}
	return 0;
}

static int
drop_privileges(const struct passwd *pw)
{
	if (pw == NULL)
		return 0;
	if (initgroups(pw->pw_name, pw->pw_gid) != 0 ||
	    setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0) {
		fprintf(stderr, "greyd: cannot become %s: %s\n", pw->pw_name,
		    strerror(errno));
		return -1;
	}
	return 0;
}

static const struct passwd *
lookup_user(const struct greyd_conf *c)
{
	const struct passwd *pw;

	if (c->user[0] == '\0')
		return NULL;
	if ((pw = getpwnam(c->user)) == NULL) {
		fprintf(stderr, "greyd: user %s: no such user\n", c->user);
		exit(1);
	}
	if (geteuid() != 0 && geteuid() != pw->pw_uid) {
		fprintf(stderr, "greyd: user = %s needs greyd started as root\n",
		    c->user);
		exit(1);
	}
	return geteuid() == 0 ? pw : NULL;
}

/* Everything run() wires together. */
struct daemon {
	const struct options *opt;
	struct listener *listener;
	struct dns *dns;
	struct session_deps deps;	/* srv, db, limits, dnsbl, spf, callout */
	struct event *hup, *term, *intr;
};

static void
reload_cb(evutil_socket_t sig, short what, void *arg)
{
	struct daemon *dm = arg;
	const struct greyd_conf *old = conf_current();
	struct greyd_conf *c;
	char err[CONF_ERRLEN];

	if ((c = conf_new(dm->opt->config, dm->opt->overrides, err,
	    sizeof(err))) == NULL) {
		log_err("reload failed, keeping the running configuration: %s",
		    err);
		return;
	}
	/* Listeners, the database and the SPF threads stay as they are until
	 * a restart. */
	snprintf(c->db_dir, sizeof(c->db_dir), "%s", old->db_dir);
	if (c->spf_workers != old->spf_workers) {
		log_warn("spf_workers stays %d until a restart",
		    old->spf_workers);
		c->spf_workers = old->spf_workers;
	}
	conf_install(c);
	log_info("configuration reloaded from %s",
	    dm->opt->config != NULL ? dm->opt->config : "embedded defaults");
	if (rcpt_load_maps(c, dm->deps.db, clock_now(), err,
	    sizeof(err)) != 0)
		log_err("maps not reloaded, the previous ones stay: %s", err);
	if (dns_reconfigure(dm->dns, c, err, sizeof(err)) != 0)
		log_err("dns_servers not changed: %s", err);
	else if (dm->deps.spf != NULL &&
	    spf_reconfigure(dm->deps.spf, err, sizeof(err)) != 0)
		log_err("dns_servers not changed for SPF: %s", err);
}

static void
term_cb(evutil_socket_t sig, short what, void *arg)
{
	struct daemon *dm = arg;

	log_info("signal %d: stopping", (int)sig);
	listener_stop(dm->listener);
	server_drain(dm->deps.srv, conf_current()->drain_timeout);
}

static void
expire_cb(void *arg)
{
	const struct greyd_conf *c = conf_current();
	int n = trustdb_expire_step(arg, clock_now(), c->db_expire_batch,
	    c->client_record_expiry);

	if (n > 0)
		log_debug("expired %d trust database records", n);
}

static void
checkpoint_cb(void *arg)
{
	(void)trustdb_checkpoint(arg);
}

static struct event_base *
make_base(void)
{
	struct event_config *evcfg;
	struct event_base *base;

	/* Batch epoll_ctl calls: an event enabled and disabled within one loop
	 * turn (every reply written at once) then costs none. */
	if ((evcfg = event_config_new()) == NULL)
		return NULL;
	event_config_set_flag(evcfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
	/* Tarpit callbacks in batches, the rest between them (server.h). */
	event_config_set_max_dispatch_interval(evcfg, NULL, EV_TARPIT_BATCH,
	    EV_PRIO_TARPIT);
	base = event_base_new_with_config(evcfg);
	event_config_free(evcfg);
	if (base != NULL && event_base_priority_init(base, EV_PRIORITIES) != 0) {
		event_base_free(base);
		return NULL;
	}
	return base;
}

static int
add_signals(struct daemon *dm, struct event_base *base)
{
	dm->hup = evsignal_new(base, SIGHUP, reload_cb, dm);
	dm->term = evsignal_new(base, SIGTERM, term_cb, dm);
	dm->intr = evsignal_new(base, SIGINT, term_cb, dm);
	if (dm->hup == NULL || dm->term == NULL || dm->intr == NULL ||
	    evsignal_add(dm->hup, NULL) != 0 ||
	    evsignal_add(dm->term, NULL) != 0 ||
	    evsignal_add(dm->intr, NULL) != 0)
		return -1;
	return 0;
}

/* The checks sessions use: resolver, DNS lists, SPF, the callout. */
static int
start_checks(struct daemon *dm, struct event_base *base)
{
	const struct greyd_conf *c = conf_current();
	struct session_deps *d = &dm->deps;
	char err[CONF_ERRLEN];

	if ((dm->dns = dns_new(base, c, dns_try_ms(c), err,
	    sizeof(err))) == NULL) {
		log_err("%s", err);
		return -1;
	}
	if ((d->dnsbl = dnsbl_new(base, dm->dns)) == NULL ||
	    (d->callout = callout_new(base, d->db)) == NULL) {
		log_err("out of memory");
		return -1;
	}
	if ((d->spf = spf_new(base, dns_try_ms(c), err, sizeof(err))) ==
	    NULL && err[0] != '\0') {
		log_err("%s", err);
		return -1;
	}
	return 0;
}

static int
run(struct daemon *dm)
{
	const struct greyd_conf *c = conf_current();
	struct session_deps *d = &dm->deps;
	struct event_base *base = NULL;
	char err[CONF_ERRLEN];
	int rc = 1;

	if ((d->db = trustdb_open(c->db_dir, err, sizeof(err))) == NULL) {
		log_err("trust database: %s", err);
		return 1;
	}
	if (rcpt_load_maps(c, d->db, clock_now(), err, sizeof(err)) != 0) {
		log_err("%s", err);
		goto out;
	}
	if ((d->limits = limits_new()) == NULL ||
	    (base = make_base()) == NULL ||
	    (d->srv = server_new(base)) == NULL) {
		log_err("out of memory");
		goto out;
	}
	if (start_checks(dm, base) != 0)
		goto out;
	if (add_signals(dm, base) != 0 ||
	    server_every(d->srv, c->db_expire_interval, expire_cb, d->db) != 0 ||
	    server_every(d->srv, c->db_checkpoint_interval, checkpoint_cb,
	    d->db) != 0 || listener_start(dm->listener, d) != 0) {
		log_err("cannot start the event loop");
		goto out;
	}
	log_info("ready: listening on %d address%s, backend %s (%s), db %s",
	    c->nlisten, c->nlisten == 1 ? "" : "es", c->backend.text,
	    conf_backend_proxy_name(c->backend_proxy), c->db_dir);
	event_base_dispatch(base);
	log_info("stopped");
	rc = 0;
out:
	listener_free(dm->listener);
	/* Connections go first; then no check waits: the SPF workers stop
	 * before the resolver they use goes, and dns_free completes its
	 * queries. */
	server_free(d->srv);
	callout_free(d->callout);
	if (d->spf != NULL)
		spf_free(d->spf);
	dns_free(dm->dns);
	dnsbl_free(d->dnsbl);
	if (dm->hup != NULL)
		event_free(dm->hup);
	if (dm->term != NULL)
		event_free(dm->term);
	if (dm->intr != NULL)
		event_free(dm->intr);
	if (base != NULL)
		event_base_free(base);
	trustdb_close(d->db);
	limits_free(d->limits);
	return rc;
}

/* Every session holds a socket (two on the fast path): take the hard
 * limit on descriptors, not the usual soft 1024. */
static void
raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int
main(int argc, char **argv)
{
	struct options opt;
	struct daemon dm;
	struct greyd_conf *c;
	struct pidfh *pfh = NULL;
	const struct passwd *pw;
	char err[CONF_ERRLEN];
	pid_t other;
	int rc;

	memset(&opt, 0, sizeof(opt));
	memset(&dm, 0, sizeof(dm));
	dm.opt = &opt;
	parse_args(argc, argv, &opt);
	if ((c = conf_new(opt.config, opt.overrides, err, sizeof(err))) ==
	    NULL) {
		fprintf(stderr, "greyd: %s\n", err);
		return 1;
	}
	if (opt.check_only && rcpt_check_maps(c, err, sizeof(err)) != 0) {
		fprintf(stderr, "greyd: %s\n", err);
		conf_release(c);
		return 1;
	}
	if (opt.print)
		conf_print(c, stdout);
	if (opt.check_only || opt.print) {
		if (opt.check_only)
			fprintf(stderr, "greyd: %s: configuration ok\n",
			    opt.config != NULL ? opt.config : "defaults");
		conf_release(c);
		return 0;
	}
	signal(SIGPIPE, SIG_IGN);
	raise_nofile();
	log_init("greyd", opt.foreground);
	pw = lookup_user(c);
	if ((dm.listener = listener_new()) == NULL ||
	    listener_bind(dm.listener, c, err, sizeof(err)) != 0) {
		fprintf(stderr, "greyd: %s\n", dm.listener == NULL ?
		    "out of memory" : err);
		return 1;
	}
	if (c->pid_file[0] != '\0' &&
	    (pfh = pidfile_open(c->pid_file, 0644, &other)) == NULL) {
		if (errno == EEXIST)
			fprintf(stderr, "greyd: already running, pid %ld\n",
			    (long)other);
		else
			fprintf(stderr, "greyd: pid_file %s: %s\n",
			    c->pid_file, strerror(errno));
		return 1;
	}
	if (prepare_db_dir(c, pw) != 0 || drop_privileges(pw) != 0)
		return 1;
	if (!opt.foreground && daemon(0, 0) != 0) {
		fprintf(stderr, "greyd: daemon: %s\n", strerror(errno));
		return 1;
	}
	if (pfh != NULL)
		pidfile_write(pfh);
	conf_install(c);
	rc = run(&dm);
	if (pfh != NULL)
		pidfile_remove(pfh);
	conf_install(NULL);
	return rc;
}
