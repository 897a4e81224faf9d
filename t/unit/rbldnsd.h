/*
 * t/unit/rbldnsd.h — a real rbldnsd for unit tests that talk DNS
 * (t/unit/dns.c, t/unit/dnsbl.c), and the small socket and file helpers
 * around it.  Header only: every function is static (and may go unused).
 *
 * rbldnsd_start() runs /usr/sbin/rbldnsd in the foreground (-n) on a free
 * UDP port of 127.0.0.1 and the same port of ::1, serving zone specs
 * "name:type:file" (file relative to the zone directory, which must be
 * readable by user rbldns), optionally logging every query line-buffered
 * (-l +-) to a file, one line per query:
 *     TIME CLIENT QNAME TYPE IN: RCODE/ANSWERS/SIZE
 * which rbldnsd_queries() counts.  It starts as user rbldns from fork (so
 * PR_SET_PDEATHSIG survives: run as root, rbldnsd would drop privileges
 * itself and lose it), so it dies with the test even on a crash; one
 * instance per test program, recorded by PID in rbldnsd_pid, killed by
 * rbldnsd_kill() (call it from the group teardown and register it with
 * atexit, so it goes even when a test fails).
 */
#ifndef GREYD_T_RBLDNSD_H
#define GREYD_T_RBLDNSD_H

#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <ares.h>

#define RBLDNSD			"/usr/sbin/rbldnsd"
#define RBLDNS_USER		"rbldns"
#define RBLDNSD_MAX_ZONES	16
#define RBLDNSD_PLEN		256
#define RBLDNSD_FN		static __attribute__((unused))

static pid_t rbldnsd_pid;

RBLDNSD_FN void
rbldnsd_kill(void)
{
	int i, status;

	if (rbldnsd_pid <= 0)
		return;
	kill(rbldnsd_pid, SIGTERM);
	for (i = 0; i < 100 && waitpid(rbldnsd_pid, &status, WNOHANG) == 0;
	    i++)
		usleep(10000);
	if (i == 100) {
		kill(rbldnsd_pid, SIGKILL);
		waitpid(rbldnsd_pid, &status, 0);
	}
	rbldnsd_pid = 0;
}

static int
rbldnsd_rm_entry(const char *path, const struct stat *st, int flag,
    struct FTW *ftw)
{
	return remove(path);
}

/* Remove a directory tree (the test's mkdtemp). */
RBLDNSD_FN int
rm_tree(const char *dir)
{
	return nftw(dir, rbldnsd_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

RBLDNSD_FN int
write_file(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");

	if (fp == NULL)
		return -1;
	fputs(text, fp);
	return fclose(fp);
}

/* A UDP socket bound to 127.0.0.1:0; its port in *port. */
RBLDNSD_FN int
udp_bound(int *port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	if (fd == -1)
		return -1;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    getsockname(fd, (struct sockaddr *)&sin, &len) == -1) {
		close(fd);
		return -1;
	}
	*port = ntohs(sin.sin_port);
	return fd;
}

/* Does a server on 127.0.0.1:port answer an A query for name? */
RBLDNSD_FN bool
udp_answers(int port, const char *name)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	struct pollfd pfd;
	unsigned char *q, buf[512];
	int qlen, fd = socket(AF_INET, SOCK_DGRAM, 0);
	bool ok = false;

	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd == -1 || ares_create_query(name, 1, 1, 4242, 0, &q, &qlen, 0) !=
	    ARES_SUCCESS) {
		if (fd != -1)
			close(fd);
		return false;
	}
	if (sendto(fd, q, (size_t)qlen, 0, (struct sockaddr *)&sin,
	    sizeof(sin)) == qlen) {
		pfd.fd = fd;
		pfd.events = POLLIN;
		ok = poll(&pfd, 1, 100) == 1 && recv(fd, buf, sizeof(buf), 0) >=
		    12 && buf[0] == 4242 >> 8 && buf[1] == (4242 & 0xff);
	}
	ares_free_string(q);
	close(fd);
	return ok;
}

/* The child: output to files, become rbldns, die with the parent, exec
 * rbldnsd in dir.  Only async-signal-safe calls before exec but for the
 * getpwnam, which the single-threaded tests allow. */
static void
rbldnsd_exec(const char *dir, const char *const *zones, const char *qlog,
    int port, pid_t parent)
{
	struct passwd *pw = getpwnam(RBLDNS_USER);
	const char *argv[11 + RBLDNSD_MAX_ZONES];	/* NULL-terminated */
	char b4[64], b6[64];
	int fd, n = 0, i;

	snprintf(b4, sizeof(b4), "127.0.0.1/%d", port);
	snprintf(b6, sizeof(b6), "::1/%d", port);
	argv[n++] = RBLDNSD;
	argv[n++] = "-n";
	argv[n++] = "-c";
	argv[n++] = "0";
	argv[n++] = "-b";
	argv[n++] = b4;
	argv[n++] = "-b";
	argv[n++] = b6;
	if (qlog != NULL) {
		argv[n++] = "-l";
		argv[n++] = "+-";
	}
	for (i = 0; zones[i] != NULL && i < RBLDNSD_MAX_ZONES; i++)
		argv[n++] = zones[i];
	argv[n] = NULL;
	if (chdir(dir) == -1 ||
	    (fd = open("rbldnsd.log", O_WRONLY | O_CREAT | O_APPEND, 0644)) ==
	    -1 || dup2(fd, 2) == -1)
		_exit(126);
	if (qlog != NULL)
		fd = open(qlog, O_WRONLY | O_CREAT | O_APPEND, 0644);
	if (fd == -1 || dup2(fd, 1) == -1)
		_exit(126);
	/* Not root when it starts: it then never calls setuid itself. */
	if (pw == NULL || setgroups(0, NULL) == -1 ||
	    setgid(pw->pw_gid) == -1 || setuid(pw->pw_uid) == -1)
		_exit(126);
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) == -1 || getppid() != parent)
		_exit(126);
	execv(RBLDNSD, (char *const *)argv);
	_exit(127);
}

/*
 * Start rbldnsd in dir serving zones (NULL-terminated specs, at most
 * RBLDNSD_MAX_ZONES), logging queries to qlog (a path, relative to dir
 * unless absolute; NULL: none), on a free port put in *port;
 * returns once it answers an A query for probe.  A few tries: the port may
 * be taken between the check and rbldnsd's bind.  0, or -1 (output of a
 * failed start in dir/rbldnsd.log).
 */
RBLDNSD_FN int
rbldnsd_start(const char *dir, const char *const *zones, const char *qlog,
    const char *probe, int *port)
{
	int attempt, i, fd, status;
	pid_t parent = getpid();

	for (attempt = 0; attempt < 5; attempt++) {
		if ((fd = udp_bound(port)) == -1)
			return -1;
		close(fd);
		if ((rbldnsd_pid = fork()) == -1)
			return -1;
		if (rbldnsd_pid == 0)
			rbldnsd_exec(dir, zones, qlog, *port, parent);
		for (i = 0; i < 500; i++) {
			if (udp_answers(*port, probe))
				return 0;
			if (waitpid(rbldnsd_pid, &status, WNOHANG) ==
			    rbldnsd_pid) {
				rbldnsd_pid = 0;
				break;
			}
		}
		rbldnsd_kill();
	}
	return -1;
}

/*
 * Queries of type ("A", "TXT") for names ending in suffix (a zone, or a
 * whole query name) that rbldnsd logged to qlog; -1 if it cannot be read.
 */
RBLDNSD_FN int
rbldnsd_queries(const char *qlog, const char *suffix, const char *type)
{
	FILE *fp = fopen(qlog, "r");
	char line[1024], name[512], t[16];
	size_t nl, sl = strlen(suffix);
	int n = 0;

	if (fp == NULL)
		return -1;
	while (fgets(line, sizeof(line), fp) != NULL) {
		if (sscanf(line, "%*s %*s %511s %15s IN:", name, t) != 2 ||
		    strcasecmp(t, type) != 0 || (nl = strlen(name)) < sl)
			continue;
		if (strcasecmp(name + nl - sl, suffix) == 0 &&
		    (nl == sl || name[nl - sl - 1] == '.'))
			n++;
	}
	fclose(fp);
	return n;
}

#endif
