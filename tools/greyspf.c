/*
 * greyspf.c — run greyd's SPF path from the command line: the same
 * spf_new/spf_check (spf.c: libspf2 in worker threads, each with its own
 * c-ares channel) with the same settings, so what it prints is what greyd
 * would decide on.  The RFC 7208 suite
 * (t/integration/85-spf-suite.t) and the SPF benchmark drive it.
 *
 *   greyspf [-f greyd.conf] [-s dns_server] [-w workers] IP HELO SENDER
 *   greyspf [-f greyd.conf] [-s dns_server] [-w workers] -b
 *
 * SENDER "" is the null sender <> (the HELO name is checked).  -s replaces
 * dns_servers (same syntax: 127.0.0.1:5353, [::1]:53), -w spf_workers.
 * Without -f the embedded defaults apply (spf_workers, spf_timeout,
 * hostname for Received-SPF, dns_servers, dnsbl_timeout: as greyd, one
 * try per server takes half of dnsbl_timeout).
 *
 * Output, one line per check, tab-separated:
 *     RESULT\tEXPLANATION\tRECEIVED\tREASON
 * (struct spf_answer: RESULT as spf_result_name, the rest printable ASCII
 * without tabs, possibly empty).
 *
 * -b: lines "IP\tHELO\tSENDER" from standard input (SENDER may be empty;
 * a missing field is empty; a bad IP gives "permerror" with reason "bad
 * client address"), all checked concurrently through the worker pool, at
 * most BATCH_INFLIGHT at a time, one output line per input line in input
 * order.
 *
 * Exit status: 0 when every check was made (whatever the results), 2 on
 * bad usage or configuration, 1 on another failure.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "conf.h"
#include "dns.h"
#include "log.h"
#include "netaddr.h"
#include "spf.h"

#define BATCH_INFLIGHT	64
#define OVERRIDES_MAX	3

struct run;

struct job {
	struct run *run;
	char *ip, *helo, *sender;	/* into line */
	char *line;
	char *out;			/* the output line, once answered */
};

struct run {
	struct event_base *base;
	struct spf *spf;
	struct job *jobs;
	size_t njobs;
	size_t next;			/* next job to start */
	size_t printed;			/* jobs printed */
	size_t inflight;
};

static void
usage(void)
{
	fprintf(stderr, "usage: greyspf [-f greyd.conf] [-s dns_server] "
	    "[-w workers] IP HELO SENDER\n"
	    "       greyspf [-f greyd.conf] [-s dns_server] [-w workers] "
	    "-b < lines\n");
	exit(2);
}

/* The output line for an answer (malloc'd). */
static char *
format_answer(const struct spf_answer *a)
{
	char *s;

	if (asprintf(&s, "%s\t%s\t%s\t%s\n", spf_result_name(a->result),
	    a->explanation, a->received, a->reason) == -1) {
		fprintf(stderr, "greyspf: out of memory\n");
		exit(1);
	}
	return s;
}

/* Print the answered jobs at the head, in order; stop the loop at the
 * end. */
static void
flush(struct run *r)
{
	while (r->printed < r->njobs && r->jobs[r->printed].out != NULL) {
		fputs(r->jobs[r->printed].out, stdout);
		free(r->jobs[r->printed].out);
		r->jobs[r->printed].out = NULL;
		r->printed++;
	}
	fflush(stdout);
	if (r->printed == r->njobs)
		event_base_loopbreak(r->base);
}

static void start_jobs(struct run *r);

static void
job_done(const struct spf_answer *a, void *arg)
{
	struct job *j = arg;
	struct run *r = j->run;

	j->out = format_answer(a);
	r->inflight--;
	start_jobs(r);
	flush(r);
}

/* Start jobs until BATCH_INFLIGHT are in flight or none is left. */
static void
start_jobs(struct run *r)
{
	struct netaddr a;
	struct job *j;
	struct spf_answer bad;

	while (r->inflight < BATCH_INFLIGHT && r->next < r->njobs) {
		j = &r->jobs[r->next++];
		if (netaddr_parse(&a, j->ip) == -1) {
			memset(&bad, 0, sizeof(bad));
			bad.result = SPF_R_PERMERROR;
			snprintf(bad.reason, sizeof(bad.reason),
			    "bad client address");
			j->out = format_answer(&bad);
			continue;
		}
		r->inflight++;
		spf_check(r->spf, &a, j->helo, j->sender, job_done, j);
	}
}

/* Split "IP\tHELO\tSENDER" (a missing field is ""). */
static void
split_line(struct job *j)
{
	char *p = j->line, *t;
	char **f[3] = { &j->ip, &j->helo, &j->sender };
	int i;

	for (i = 0; i < 3; i++) {
		*f[i] = p;
		if (i < 2 && (t = strchr(p, '\t')) != NULL) {
			*t = '\0';
			p = t + 1;
		} else if (i < 2)
			p = p + strlen(p);
	}
}

/* A job: the fields of text (split), or ip, helo and sender. */
static void
job_init(struct run *r, struct job *j, const char *ip, const char *helo,
    const char *sender, const char *text)
{
	j->run = r;
	if ((j->line = strdup(text)) == NULL) {
		fprintf(stderr, "greyspf: out of memory\n");
		exit(1);
	}
	if (ip == NULL)
		split_line(j);
	else {
		j->ip = (char *)ip;
		j->helo = (char *)helo;
		j->sender = (char *)sender;
	}
}

static void
read_jobs(struct run *r, FILE *fp)
{
	char *line = NULL;
	size_t cap = 0, alloc = 0;
	ssize_t n;

	while ((n = getline(&line, &cap, fp)) != -1) {
		if (n > 0 && line[n - 1] == '\n')
			line[--n] = '\0';
		if (n > 0 && line[n - 1] == '\r')
			line[--n] = '\0';
		if (r->njobs == alloc) {
			alloc = alloc == 0 ? 256 : alloc * 2;
			if ((r->jobs = reallocarray(r->jobs, alloc,
			    sizeof(*r->jobs))) == NULL) {
				fprintf(stderr, "greyspf: out of memory\n");
				exit(1);
			}
		}
		memset(&r->jobs[r->njobs], 0, sizeof(*r->jobs));
		job_init(r, &r->jobs[r->njobs++], NULL, NULL, NULL, line);
	}
	free(line);
}

static void
free_jobs(struct run *r)
{
	size_t i;

	for (i = 0; i < r->njobs; i++) {
		free(r->jobs[i].line);
		free(r->jobs[i].out);
	}
	free(r->jobs);
}

/* Load the configuration with -s and -w as overrides; exits 2 if bad. */
static void
load_conf(struct greyd_conf *c, const char *path, const char *server,
    const char *workers)
{
	char err[CONF_ERRLEN], sbuf[512], wbuf[64];
	const char *ov[OVERRIDES_MAX];
	int n = 0;

	if (server != NULL) {
		snprintf(sbuf, sizeof(sbuf), "dns_servers=%s", server);
		ov[n++] = sbuf;
	}
	if (workers != NULL) {
		snprintf(wbuf, sizeof(wbuf), "spf_workers=%s", workers);
		ov[n++] = wbuf;
	}
	ov[n] = NULL;
	if (conf_load(c, path, ov, err, sizeof(err)) == -1) {
		fprintf(stderr, "greyspf: %s\n", err);
		exit(2);
	}
}

int
main(int argc, char **argv)
{
	struct greyd_conf conf;
	const char *path = NULL, *server = NULL, *workers = NULL;
	char err[CONF_ERRLEN];
	struct run r;
	bool batch = false;
	int ch;

	while ((ch = getopt(argc, argv, "bf:s:w:")) != -1) {
		switch (ch) {
		case 'b':
			batch = true;
			break;
		case 'f':
			path = optarg;
			break;
		case 's':
			server = optarg;
			break;
		case 'w':
			workers = optarg;
			break;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (batch ? argc != 0 : argc != 3)
		usage();
	log_init("greyspf", 1);
	load_conf(&conf, path, server, workers);
	conf_install(&conf);
	memset(&r, 0, sizeof(r));
	if ((r.base = event_base_new()) == NULL) {
		fprintf(stderr, "greyspf: event_base_new failed\n");
		return 1;
	}
	if ((r.spf = spf_new(r.base, dns_try_ms(&conf), err,
	    sizeof(err))) == NULL) {
		fprintf(stderr, "greyspf: %s\n", err[0] != '\0' ? err :
		    "spf_workers = 0: no SPF");
		return 2;
	}
	if (batch)
		read_jobs(&r, stdin);
	else {
		if ((r.jobs = calloc(1, sizeof(*r.jobs))) == NULL)
			return 1;
		r.njobs = 1;
		job_init(&r, &r.jobs[0], argv[0], argv[1], argv[2], "");
		if (netaddr_parse(&(struct netaddr){ 0 }, argv[0]) == -1) {
			fprintf(stderr, "greyspf: bad IP address %s\n",
			    argv[0]);
			return 2;
		}
	}
	start_jobs(&r);
	flush(&r);
	if (r.printed < r.njobs)
		event_base_dispatch(r.base);
	spf_free(r.spf);
	free_jobs(&r);
	event_base_free(r.base);
	conf_free(&conf);
	return r.printed == r.njobs ? 0 : 1;
}
