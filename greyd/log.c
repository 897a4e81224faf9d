/*
 * log.c — decision and diagnostic logging (see log.h).
 *
 * With greyd -d (and in greydb) lines go to stderr as
 * "greyd[pid]: text"; otherwise to syslog with facility LOG_MAIL, so they
 * land next to Postfix's own lines.  Debug lines are dropped unless
 * log_set_debug(1).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "log.h"

static struct {
	char ident[32];
	int to_stderr;
	int debug;
	long pid;	/* stderr logging happens only with -d: no fork after */
} log_state = { "greyd", 1, 0, 0 };

void
log_init(const char *ident, int to_stderr)
{
	snprintf(log_state.ident, sizeof(log_state.ident), "%s", ident);
	log_state.to_stderr = to_stderr;
	log_state.pid = (long)getpid();
	if (!to_stderr)
		openlog(log_state.ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
}

void
log_set_debug(int on)
{
	log_state.debug = on;
}

static void
log_emit(int prio, const char *fmt, va_list ap)
{
	char line[2048];

	vsnprintf(line, sizeof(line), fmt, ap);
	if (log_state.to_stderr)
		fprintf(stderr, "%s[%ld]: %s\n", log_state.ident,
		    log_state.pid != 0 ? log_state.pid : (long)getpid(), line);
	else
		syslog(prio, "%s", line);
}

#define LOG_FN(name, prio)				\
void							\
name(const char *fmt, ...)				\
{							\
	va_list ap;					\
	va_start(ap, fmt);				\
	log_emit(prio, fmt, ap);			\
	va_end(ap);					\
}

LOG_FN(log_info, LOG_INFO)
LOG_FN(log_warn, LOG_WARNING)
LOG_FN(log_err, LOG_ERR)

void
log_debug(const char *fmt, ...)
{
	va_list ap;

	if (!log_state.debug)
		return;
	va_start(ap, fmt);
	log_emit(LOG_DEBUG, fmt, ap);
	va_end(ap);
}
