/*
 * smtp.h — SMTP command parser and reply helpers (pure: no I/O, no state
 * beyond what the caller passes in), RFC 5321.
 *
 * session.c feeds it bytes from the client's input buffer; relay.c feeds it
 * the backend's replies.  Everything here is bounded: a command line is at
 * most SMTP_LINE_MAX octets including CRLF, a text (DATA) line at most
 * SMTP_TEXT_LINE_MAX, a path at most SMTP_PATH_MAX.  Only CRLF ends a line;
 * a bare LF, a bare CR or a NUL makes the line invalid (design §6: never
 * relayed, so nothing can be smuggled past the backend).
 */
#ifndef GREYD_SMTP_H
#define GREYD_SMTP_H

#include <stdbool.h>
#include <stddef.h>

#define SMTP_LINE_MAX		512	/* command line, CRLF included (RFC 5321 4.5.3.1.4) */
#define SMTP_TEXT_LINE_MAX	1000	/* text line, CRLF included (4.5.3.1.6) */
#define SMTP_PATH_MAX		256	/* path, brackets included (4.5.3.1.3) */
#define SMTP_DOMAIN_MAX		255
#define SMTP_PARAMS_MAX		SMTP_LINE_MAX
#define SMTP_REPLY_MAX		4096	/* a whole (multi-line) reply from the backend */

enum smtp_line_status {
	SMTP_LINE_OK,		/* a complete CRLF-terminated line */
	SMTP_LINE_INCOMPLETE,	/* no line end yet and below the limit: wait for more */
	SMTP_LINE_TOO_LONG,	/* no LF within max octets */
	SMTP_LINE_BARE_LF,	/* LF not preceded by CR */
	SMTP_LINE_BARE_CR,	/* CR not followed by LF */
	SMTP_LINE_NUL,		/* NUL octet in the line */
};

/*
 * Look at the start of buf[0..len) for one line of at most max octets
 * (terminator included).
 *  OK:          *linelen = octets before CRLF, *consumed = linelen + 2.
 *  BARE_LF/CR, NUL: *consumed = octets up to and including the first LF
 *               (the caller discards them).
 *  TOO_LONG:    *consumed = octets up to and including the first LF if one
 *               is in buf, else len (caller discards and keeps discarding
 *               until it finds a LF).
 *  INCOMPLETE:  nothing consumed.
 */
enum smtp_line_status smtp_line_scan(const char *buf, size_t len, size_t max,
    size_t *linelen, size_t *consumed);

enum smtp_verb {
	SMTP_HELO, SMTP_EHLO, SMTP_MAIL, SMTP_RCPT, SMTP_DATA, SMTP_RSET,
	SMTP_NOOP, SMTP_QUIT, SMTP_VRFY, SMTP_EXPN, SMTP_HELP, SMTP_STARTTLS,
	SMTP_AUTH, SMTP_BDAT,
	SMTP_NONSMTP,		/* GET, POST, CONNECT, USER, ... (HTTP/proxy probes) */
	SMTP_UNKNOWN,
};

struct smtp_command {
	enum smtp_verb verb;
	/* HELO/EHLO: the domain or address literal; VRFY/EXPN/HELP/NOOP: argument */
	char arg[SMTP_LINE_MAX];
	/* MAIL/RCPT: the address without brackets or source route, as sent
	 * ("" for the null sender <>).  Quoted local parts keep their quotes. */
	char addr[SMTP_PATH_MAX];
	/* MAIL/RCPT: the ESMTP parameters after the path, as sent */
	char params[SMTP_PARAMS_MAX];
	long long size;		/* MAIL SIZE=n, -1 if absent */
};

/*
 * Parse one command line (without CRLF, len octets, may contain anything).
 * Returns 0 and fills cmd, or -1 with *reply set to a complete static reply
 * line without CRLF (e.g. "501 5.5.4 Syntax: MAIL FROM:<address>",
 * "500 5.5.2 Error: command not recognized").  A verb that is not SMTP but
 * an HTTP or proxy probe returns 0 with verb SMTP_NONSMTP.
 */
int smtp_parse_command(const char *line, size_t len, struct smtp_command *cmd,
    const char **reply);

/*
 * Parse a path "<...>" at s (RFC 5321 4.1.2): optional source route
 * "@a,@b:" dropped, dot-string or quoted-string local part, domain or
 * address literal, or "<>" (only if allow_null).  Also accepts the
 * "<postmaster>" form for RCPT when allow_postmaster.  On success copies the
 * address (no brackets) to addr and sets *end just past '>'.  -1 if invalid.
 */
int smtp_parse_path(const char *s, char *addr, size_t addrlen, bool allow_null,
    bool allow_postmaster, const char **end);

/* Lowercase copy of an address for database keys. */
void smtp_addr_key(const char *addr, char *out, size_t outlen);

/*
 * Scan a reply from the backend at the start of buf[0..len): lines
 * "ddd-text" continued until "ddd text" (or "ddd").  Returns 1 and sets
 * *code and *consumed (whole reply incl. final CRLF) when complete, 0 when
 * more is needed, -1 when malformed (non-digit code, codes differ between
 * lines, over SMTP_REPLY_MAX).  Lines may end in LF or CRLF.
 */
int smtp_reply_scan(const char *buf, size_t len, int *code, size_t *consumed);

/* True if the domain/address literal is syntactically acceptable for HELO. */
bool smtp_valid_helo(const char *arg);

#endif
