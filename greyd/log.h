/*
 * log.h — one line per decision, postscreen-like, to syslog (LOG_MAIL) or,
 * with greyd -d, to stderr as "greyd[pid]: ...".
 *
 * Callers write the whole line:  log_info("GREY [%s]:%u from=<%s> to=<%s> delay=%d", ...)
 * so an administrator can grep one word (PASS, GREY, WHITE, REJECT, RELAY, ...).
 */
#ifndef GREYD_LOG_H
#define GREYD_LOG_H

void log_init(const char *ident, int to_stderr);
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_set_debug(int on);

#endif
