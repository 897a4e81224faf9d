/*
 * main.c — greyd: arguments, configuration, privileges, daemon, signals,
 * and the wiring of the server (listener.c) to the trust database.
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

#include "conf.h"
#include "dns.h"
#include "dnsbl.h"
#include "spf.h"
#include "greyd_limits.h"
#include "listener.h"
#include "log.h"
#include "rcpt.h"
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

struct signals {
	struct server *srv;
	const struct options *opt;
	struct event *hup, *term, *intr;
};

static void
reload_cb(evutil_socket_t sig, short what, void *arg)
{
	struct signals *sg = arg;
	struct server *srv = sg->srv;
	struct greyd_conf *c;
	char err[CONF_ERRLEN];

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return;
	if (conf_load(c, sg->opt->config, sg->opt->overrides, err,
	    sizeof(err)) != 0) {
		log_err("reload failed, keeping the running configuration: %s",
		    err);
		free(c);
		return;
	}
	/* Listeners, the database and the SPF threads stay as they are until
	 * a restart. */
	snprintf(c->db_dir, sizeof(c->db_dir), "%s", srv->conf->db_dir);
	if (c->spf_workers != srv->conf->spf_workers) {
		log_warn("spf_workers stays %d until a restart",
		    srv->conf->spf_workers);
		c->spf_workers = srv->conf->spf_workers;
	}
	conf_free(srv->conf);
	free(srv->conf);
	srv->conf = c;
	log_info("configuration reloaded from %s",
	    sg->opt->config != NULL ? sg->opt->config : "embedded defaults");
	if (rcpt_load_maps(c, srv->db, (int64_t)time(NULL), err,
	    sizeof(err)) != 0)
		log_err("maps not reloaded, the previous ones stay: %s", err);
	if (dns_reconfigure(srv->dns, c, err, sizeof(err)) != 0)
		log_err("dns_servers not changed: %s", err);
	else if (srv->spf != NULL &&
	    spf_reconfigure(srv->spf, err, sizeof(err)) != 0)
		log_err("dns_servers not changed for SPF: %s", err);
}

static void
term_cb(evutil_socket_t sig, short what, void *arg)
{
	struct signals *sg = arg;

	log_info("signal %d: stopping", (int)sig);
	listener_drain(sg->srv);
}

static int
run(struct server *srv, const struct options *opt)
{
	struct signals sg = { srv, opt, NULL, NULL, NULL };
	struct event_config *evcfg;
	char err[CONF_ERRLEN];
	int rc = 1;

	if ((srv->db = trustdb_open(srv->conf->db_dir, err, sizeof(err))) ==
	    NULL) {
		log_err("trust database: %s", err);
		return 1;
	}
	if (rcpt_load_maps(srv->conf, srv->db, (int64_t)time(NULL), err,
	    sizeof(err)) != 0) {
		log_err("%s", err);
		trustdb_close(srv->db);
		return 1;
	}
	if ((srv->limits = limits_new()) == NULL) {
		log_err("out of memory");
		trustdb_close(srv->db);
		return 1;
	}
	/* Batch epoll_ctl calls: an event enabled and disabled within one loop
	 * turn (every reply written at once) then costs none. */
	if ((evcfg = event_config_new()) == NULL)
		goto out;
	event_config_set_flag(evcfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
	/* Tarpit callbacks in batches, the rest between them (listener.h). */
	event_config_set_max_dispatch_interval(evcfg, NULL, EV_TARPIT_BATCH,
	    EV_PRIO_TARPIT);
	srv->base = event_base_new_with_config(evcfg);
	event_config_free(evcfg);
	if (srv->base == NULL ||
	    event_base_priority_init(srv->base, EV_PRIORITIES) != 0)
		goto out;
	if ((srv->dns = dns_new(srv->base, srv->conf, dns_try_ms(srv->conf),
	    err, sizeof(err))) == NULL) {
		log_err("%s", err);
		goto out;
	}
	if ((srv->dnsbl = dnsbl_new(srv->base, srv->dns, &srv->conf)) ==
	    NULL) {
		log_err("out of memory");
		goto out;
	}
	if ((srv->spf = spf_new(srv->base, &srv->conf, dns_try_ms(srv->conf),
	    err, sizeof(err))) == NULL &&
	    err[0] != '\0') {
		log_err("%s", err);
		goto out;
	}
	sg.hup = evsignal_new(srv->base, SIGHUP, reload_cb, &sg);
	sg.term = evsignal_new(srv->base, SIGTERM, term_cb, &sg);
	sg.intr = evsignal_new(srv->base, SIGINT, term_cb, &sg);
	if (sg.hup == NULL || sg.term == NULL || sg.intr == NULL ||
	    evsignal_add(sg.hup, NULL) != 0 || evsignal_add(sg.term, NULL) != 0 ||
	    evsignal_add(sg.intr, NULL) != 0 || listener_start(srv) != 0) {
		log_err("cannot start the event loop");
		goto out;
	}
	log_info("ready: listening on %d address%s, backend %s (%s), db %s",
	    srv->conf->nlisten, srv->conf->nlisten == 1 ? "" : "es",
	    srv->conf->backend.text,
	    conf_backend_proxy_name(srv->conf->backend_proxy),
	    srv->conf->db_dir);
	event_base_dispatch(srv->base);
	log_info("stopped");
	rc = 0;
out:
	listener_free(srv);
	/* Sessions are gone: no check waits; the workers stop before the
	 * resolver they use goes, and dns_free completes its queries. */
	if (srv->spf != NULL)
		spf_free(srv->spf);
	dns_free(srv->dns);
	dnsbl_free(srv->dnsbl);
	if (sg.hup != NULL)
		event_free(sg.hup);
	if (sg.term != NULL)
		event_free(sg.term);
	if (sg.intr != NULL)
		event_free(sg.intr);
	if (srv->base != NULL)
		event_base_free(srv->base);
	trustdb_close(srv->db);
	limits_free(srv->limits);
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
	struct server srv;
	struct pidfh *pfh = NULL;
	const struct passwd *pw;
	char err[CONF_ERRLEN];
	pid_t other;
	int rc;

	memset(&opt, 0, sizeof(opt));
	memset(&srv, 0, sizeof(srv));
	TAILQ_INIT(&srv.sessions);
	TAILQ_INIT(&srv.splices);
	TAILQ_INIT(&srv.tarpits);
	parse_args(argc, argv, &opt);
	if ((srv.conf = calloc(1, sizeof(*srv.conf))) == NULL)
		return 1;
	if (conf_load(srv.conf, opt.config, opt.overrides, err,
	    sizeof(err)) != 0) {
		fprintf(stderr, "greyd: %s\n", err);
		free(srv.conf);
		return 1;
	}
	if (opt.check_only && rcpt_check_maps(srv.conf, err,
	    sizeof(err)) != 0) {
		fprintf(stderr, "greyd: %s\n", err);
		conf_free(srv.conf);
		free(srv.conf);
		return 1;
	}
	if (opt.print)
		conf_print(srv.conf, stdout);
	if (opt.check_only || opt.print) {
		if (opt.check_only)
			fprintf(stderr, "greyd: %s: configuration ok\n",
			    opt.config != NULL ? opt.config : "defaults");
		conf_free(srv.conf);
		free(srv.conf);
		return 0;
	}
	signal(SIGPIPE, SIG_IGN);
	raise_nofile();
	log_init("greyd", opt.foreground);
	pw = lookup_user(srv.conf);
	if (listener_bind(&srv, err, sizeof(err)) != 0) {
		fprintf(stderr, "greyd: %s\n", err);
		return 1;
	}
	if (srv.conf->pid_file[0] != '\0' &&
	    (pfh = pidfile_open(srv.conf->pid_file, 0644, &other)) == NULL) {
		if (errno == EEXIST)
			fprintf(stderr, "greyd: already running, pid %ld\n",
			    (long)other);
		else
			fprintf(stderr, "greyd: pid_file %s: %s\n",
			    srv.conf->pid_file, strerror(errno));
		return 1;
	}
	if (prepare_db_dir(srv.conf, pw) != 0 || drop_privileges(pw) != 0)
		return 1;
	if (!opt.foreground && daemon(0, 0) != 0) {
		fprintf(stderr, "greyd: daemon: %s\n", strerror(errno));
		return 1;
	}
	if (pfh != NULL)
		pidfile_write(pfh);
	rc = run(&srv, &opt);
	if (pfh != NULL)
		pidfile_remove(pfh);
	conf_free(srv.conf);
	free(srv.conf);
	return rc;
}
