/*
 * smtp.c — SMTP line scanner, command parser and reply scanner (see smtp.h).
 *
 * Pure functions over caller-owned bytes: session.c asks smtp_line_scan for
 * the next command line in its input buffer (pipelined clients leave several
 * there), hands the line to smtp_parse_command, and answers with the static
 * reply string on error; relay.c asks smtp_reply_scan where the backend's
 * reply ends.  Nothing is allocated and nothing is kept between calls.
 *
 * Choices where RFC 5321 leaves room, made strict because everything that
 * passes is replayed to the backend:
 *  - only CRLF ends a line; a bare CR, bare LF or NUL invalidates the whole
 *    line up to the next LF, so the remainder can never be read as a second
 *    command (SMTP smuggling);
 *  - verbs are case-insensitive, SP or HTAB separate words, trailing white
 *    space is ignored, other control octets make the line "500 5.5.2";
 *  - "MAIL FROM:" / "RCPT TO:" may be followed by one space before the path
 *    (common client behaviour); the path must be bracketed; a source route
 *    is accepted and dropped; local parts are dot-strings or quoted strings
 *    (8-bit octets only inside quotes, so SMTPUTF8 addresses are refused:
 *    greyd does not offer SMTPUTF8); domains are LDH labels or [IPv4] /
 *    [IPv6:...] literals, general address literals are refused;
 *  - ESMTP parameters must be keyword[=value] words (RFC 5321 4.1.2); they
 *    are kept verbatim for the replay, only MAIL's SIZE is interpreted.
 */
#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <string.h>

#include "smtp.h"

#define SMTP_LOCAL_MAX	64	/* local part, RFC 5321 4.5.3.1.1 */
#define SMTP_LABEL_MAX	63	/* one domain label, RFC 1035 */
#define SMTP_LITERAL_MAX 64	/* inside of an address literal */
#define SMTP_SIZE_DIGITS 20	/* RFC 1870 size-value */

#define REPLY_BAD_SYNTAX	"500 5.5.2 Error: bad syntax"
#define REPLY_TOO_LONG		"500 5.5.2 Error: line too long"
#define REPLY_UNKNOWN		"500 5.5.2 Error: command not recognized"
#define REPLY_BAD_SENDER	"501 5.1.7 Bad sender address syntax"
#define REPLY_BAD_RCPT		"501 5.1.3 Bad recipient address syntax"
#define REPLY_BAD_PARAM		"501 5.5.4 Bad ESMTP parameter syntax"
#define REPLY_BAD_SIZE		"501 5.5.4 Bad SIZE parameter syntax"

enum smtp_argrule {
	ARG_NONE,		/* nothing may follow the verb */
	ARG_OPTIONAL,		/* anything, copied to arg */
	ARG_REQUIRED,		/* something, copied to arg */
	ARG_PATH,		/* FROM:<path> or TO:<path>, then parameters */
};

struct smtp_verb_def {
	const char *name;
	enum smtp_verb verb;
	enum smtp_argrule rule;
	const char *syntax;	/* reply when the argument rule is broken */
};

static const struct smtp_verb_def smtp_verbs[] = {
	{ "HELO", SMTP_HELO, ARG_REQUIRED, "501 5.5.4 Syntax: HELO hostname" },
	{ "EHLO", SMTP_EHLO, ARG_REQUIRED, "501 5.5.4 Syntax: EHLO hostname" },
	{ "MAIL", SMTP_MAIL, ARG_PATH, "501 5.5.4 Syntax: MAIL FROM:<address>" },
	{ "RCPT", SMTP_RCPT, ARG_PATH, "501 5.5.4 Syntax: RCPT TO:<address>" },
	{ "DATA", SMTP_DATA, ARG_NONE, "501 5.5.4 Syntax: DATA" },
	{ "RSET", SMTP_RSET, ARG_NONE, "501 5.5.4 Syntax: RSET" },
	{ "NOOP", SMTP_NOOP, ARG_OPTIONAL, NULL },
	{ "QUIT", SMTP_QUIT, ARG_NONE, "501 5.5.4 Syntax: QUIT" },
	{ "VRFY", SMTP_VRFY, ARG_OPTIONAL, NULL },
	{ "EXPN", SMTP_EXPN, ARG_OPTIONAL, NULL },
	{ "HELP", SMTP_HELP, ARG_OPTIONAL, NULL },
	{ "STARTTLS", SMTP_STARTTLS, ARG_NONE, "501 5.5.4 Syntax: STARTTLS" },
	{ "AUTH", SMTP_AUTH, ARG_REQUIRED, "501 5.5.4 Syntax: AUTH mechanism" },
	{ "BDAT", SMTP_BDAT, ARG_REQUIRED, "501 5.5.4 Syntax: BDAT size [LAST]" },
};

/* HTTP and proxy probes: answered as SMTP_NONSMTP (design §6, 521). */
static const char *const smtp_nonsmtp_verbs[] = {
	"GET", "POST", "HEAD", "PUT", "CONNECT", "USER", "PASS", "OPTIONS",
};

/* Character classes, ASCII only and independent of the locale. */

static bool
smtp_is_alpha(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static bool
smtp_is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static bool
smtp_is_letdig(unsigned char c)
{
	return smtp_is_alpha(c) || smtp_is_digit(c);
}

static bool
smtp_is_wsp(unsigned char c)
{
	return c == ' ' || c == '\t';
}

/* RFC 5322 atext. */
static bool
smtp_is_atext(unsigned char c)
{
	return smtp_is_letdig(c) ||
	    (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

static unsigned char
smtp_lower(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c;
}

/* Case-insensitive comparison of n octets; b is a NUL-terminated ASCII
 * constant, so a shorter a stops at its NUL. */
static bool
smtp_ncaseeq(const char *a, const char *b, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (smtp_lower((unsigned char)a[i]) !=
		    smtp_lower((unsigned char)b[i]))
			return false;
	return true;
}

/* ---- line scanner ---- */

static enum smtp_line_status
smtp_line_too_long(const char *buf, size_t len, size_t *consumed)
{
	const char *lf = memchr(buf, '\n', len);

	*consumed = lf != NULL ? (size_t)(lf - buf) + 1 : len;
	return SMTP_LINE_TOO_LONG;
}

enum smtp_line_status
smtp_line_scan(const char *buf, size_t len, size_t max, size_t *linelen,
    size_t *consumed)
{
	enum smtp_line_status bad = SMTP_LINE_OK;
	size_t i;

	*linelen = 0;
	*consumed = 0;
	for (i = 0; i < len && i < max; i++) {
		if (buf[i] == '\n') {
			if (bad == SMTP_LINE_OK && (i == 0 || buf[i - 1] != '\r'))
				bad = SMTP_LINE_BARE_LF;
			*consumed = i + 1;
			if (bad == SMTP_LINE_OK)
				*linelen = i - 1;
			return bad;
		}
		if (bad != SMTP_LINE_OK)
			continue;
		if (buf[i] == '\0')
			bad = SMTP_LINE_NUL;
		else if (buf[i] == '\r' && i + 1 < len && buf[i + 1] != '\n')
			bad = SMTP_LINE_BARE_CR;
	}
	/* No LF among the first max octets: any LF to come is too late. */
	if (len >= max)
		return smtp_line_too_long(buf, len, consumed);
	return SMTP_LINE_INCOMPLETE;
}

/* ---- paths (RFC 5321 4.1.2) ---- */

/*
 * Domain = sub-domain *("." sub-domain); returns the end or NULL.  An
 * all-numeric last label is refused: "192.0.2.1" is an address that lacks
 * its brackets, not a domain (RFC 3696 2).
 */
static const char *
smtp_scan_domain(const char *p)
{
	const char *start = p, *label;
	bool numeric;

	for (;;) {
		label = p;
		numeric = true;
		if (!smtp_is_letdig((unsigned char)*p))
			return NULL;
		for (; smtp_is_letdig((unsigned char)*p) || *p == '-'; p++)
			numeric = numeric && smtp_is_digit((unsigned char)*p);
		if (p[-1] == '-' || p - label > SMTP_LABEL_MAX)
			return NULL;
		if (*p != '.')
			break;
		p++;
	}
	return numeric || p - start > SMTP_DOMAIN_MAX ? NULL : p;
}

/* "[" IPv4 "]" or "[IPv6:" IPv6 "]"; returns the end or NULL. */
static const char *
smtp_scan_literal(const char *p)
{
	char text[SMTP_LITERAL_MAX];
	struct in6_addr addr;
	size_t n = 0;

	p++;
	while (p[n] != ']' && p[n] != '\0' && n < sizeof(text))
		n++;
	if (p[n] != ']' || n == 0 || n >= sizeof(text))
		return NULL;
	memcpy(text, p, n);
	text[n] = '\0';
	if (smtp_ncaseeq(text, "IPv6:", 5)) {
		if (inet_pton(AF_INET6, text + 5, &addr) != 1)
			return NULL;
	} else if (inet_pton(AF_INET, text, &addr) != 1)
		return NULL;
	return p + n + 1;
}

/* Dot-string = Atom *("." Atom). */
static const char *
smtp_scan_dot_string(const char *p)
{
	for (;;) {
		if (!smtp_is_atext((unsigned char)*p))
			return NULL;
		while (smtp_is_atext((unsigned char)*p))
			p++;
		if (*p != '.')
			return p;
		p++;
	}
}

/* Quoted-string with quoted-pairs; 8-bit text allowed, controls are not. */
static const char *
smtp_scan_quoted_string(const char *p)
{
	unsigned char c;

	for (p++;; p++) {
		c = (unsigned char)*p;
		if (c == '"')
			return p + 1;
		if (c == '\\') {
			c = (unsigned char)*++p;
			if (c < 32 || c > 126)
				return NULL;
		} else if (c < 32 || c == 127)
			return NULL;
	}
}

/* Mailbox = Local-part "@" ( Domain / address-literal ). */
static const char *
smtp_scan_mailbox(const char *p)
{
	const char *q;

	q = *p == '"' ? smtp_scan_quoted_string(p) : smtp_scan_dot_string(p);
	if (q == NULL || q - p > SMTP_LOCAL_MAX || *q != '@')
		return NULL;
	q++;
	return *q == '[' ? smtp_scan_literal(q) : smtp_scan_domain(q);
}

/* A-d-l ":" = "@" Domain *("," "@" Domain) ":"; returns past ':' or NULL. */
static const char *
smtp_scan_route(const char *p)
{
	for (;;) {
		if (*p != '@' || (p = smtp_scan_domain(p + 1)) == NULL)
			return NULL;
		if (*p == ':')
			return p + 1;
		if (*p != ',')
			return NULL;
		p++;
	}
}

static int
smtp_copy_addr(const char *from, size_t n, char *addr, size_t addrlen)
{
	if (n >= addrlen)
		return -1;
	memcpy(addr, from, n);
	addr[n] = '\0';
	return 0;
}

int
smtp_parse_path(const char *s, char *addr, size_t addrlen, bool allow_null,
    bool allow_postmaster, const char **end)
{
	const char *p = s + 1, *mailbox;

	if (s[0] != '<')
		return -1;
	if (*p == '>') {
		if (!allow_null || smtp_copy_addr(p, 0, addr, addrlen) == -1)
			return -1;
		*end = p + 1;
		return 0;
	}
	if (allow_postmaster && smtp_ncaseeq(p, "postmaster>", 11)) {
		if (smtp_copy_addr(p, 10, addr, addrlen) == -1)
			return -1;
		*end = p + 11;
		return 0;
	}
	if (*p == '@' && (p = smtp_scan_route(p)) == NULL)
		return -1;
	mailbox = p;
	if ((p = smtp_scan_mailbox(p)) == NULL || *p != '>' ||
	    p + 1 - s > SMTP_PATH_MAX)
		return -1;
	if (smtp_copy_addr(mailbox, (size_t)(p - mailbox), addr, addrlen) == -1)
		return -1;
	*end = p + 1;
	return 0;
}

void
smtp_addr_key(const char *addr, char *out, size_t outlen)
{
	size_t i;

	if (outlen == 0)
		return;
	for (i = 0; addr[i] != '\0' && i + 1 < outlen; i++)
		out[i] = (char)smtp_lower((unsigned char)addr[i]);
	out[i] = '\0';
}

bool
smtp_valid_helo(const char *arg)
{
	const char *end;

	if (strnlen(arg, SMTP_DOMAIN_MAX + 1) > SMTP_DOMAIN_MAX)
		return false;
	end = arg[0] == '[' ? smtp_scan_literal(arg) : smtp_scan_domain(arg);
	return end != NULL && *end == '\0';
}

/* ---- ESMTP parameters ---- */

/* RFC 1870 size-value: 1*20DIGIT, and it must fit in a long long. */
static int
smtp_parse_size(const char *v, size_t n, long long *size)
{
	long long value = 0;
	size_t i;

	if (n == 0 || n > SMTP_SIZE_DIGITS)
		return -1;
	for (i = 0; i < n; i++) {
		if (!smtp_is_digit((unsigned char)v[i]))
			return -1;
		if (value > (LLONG_MAX - (v[i] - '0')) / 10)
			return -1;
		value = value * 10 + (v[i] - '0');
	}
	*size = value;
	return 0;
}

/* esmtp-keyword ["=" esmtp-value] in p[0..n); returns the keyword length. */
static size_t
smtp_check_param(const char *p, size_t n)
{
	size_t k = 0, i;

	while (k < n && (smtp_is_letdig((unsigned char)p[k]) ||
	    (k > 0 && p[k] == '-')))
		k++;
	if (k == 0 || (k < n && p[k] != '='))
		return 0;
	if (k < n && k + 1 == n)
		return 0;
	for (i = k + 1; i < n; i++)
		if ((unsigned char)p[i] < 33 || (unsigned char)p[i] > 126 ||
		    p[i] == '=')
			return 0;
	return k;
}

/* Validate the parameter words of MAIL/RCPT; MAIL's SIZE goes to cmd->size. */
static int
smtp_parse_params(struct smtp_command *cmd, const char **reply)
{
	const char *p = cmd->params;
	size_t n, k;

	while (*p != '\0') {
		n = strcspn(p, " \t");
		if ((k = smtp_check_param(p, n)) == 0) {
			*reply = REPLY_BAD_PARAM;
			return -1;
		}
		if (cmd->verb == SMTP_MAIL && k == 4 &&
		    smtp_ncaseeq(p, "SIZE", 4) && (cmd->size != -1 || k == n ||
		    smtp_parse_size(p + 5, n - 5, &cmd->size) == -1)) {
			*reply = REPLY_BAD_SIZE;
			return -1;
		}
		p += n;
		p += strspn(p, " \t");
	}
	return 0;
}

/* ---- commands ---- */

static const struct smtp_verb_def *
smtp_find_verb(const char *word, size_t n)
{
	size_t i;

	for (i = 0; i < sizeof(smtp_verbs) / sizeof(smtp_verbs[0]); i++)
		if (strlen(smtp_verbs[i].name) == n &&
		    smtp_ncaseeq(word, smtp_verbs[i].name, n))
			return &smtp_verbs[i];
	return NULL;
}

static bool
smtp_is_nonsmtp(const char *word, size_t n)
{
	size_t i;

	for (i = 0; i < sizeof(smtp_nonsmtp_verbs) /
	    sizeof(smtp_nonsmtp_verbs[0]); i++)
		if (strlen(smtp_nonsmtp_verbs[i]) == n &&
		    smtp_ncaseeq(word, smtp_nonsmtp_verbs[i], n))
			return true;
	return false;
}

/* "FROM:<path> params" or "TO:<path> params". */
static int
smtp_parse_mail_rcpt(const char *rest, const struct smtp_verb_def *def,
    struct smtp_command *cmd, const char **reply)
{
	bool mail = def->verb == SMTP_MAIL;
	const char *keyword = mail ? "FROM:" : "TO:";
	size_t klen = strlen(keyword);
	const char *p, *end;

	if (!smtp_ncaseeq(rest, keyword, klen)) {
		*reply = def->syntax;
		return -1;
	}
	p = rest + klen;
	if (*p == ' ')
		p++;
	if (*p == '\0') {
		*reply = def->syntax;
		return -1;
	}
	if (smtp_parse_path(p, cmd->addr, sizeof(cmd->addr), mail, !mail,
	    &end) == -1 ||
	    (*end != '\0' && !smtp_is_wsp((unsigned char)*end))) {
		*reply = mail ? REPLY_BAD_SENDER : REPLY_BAD_RCPT;
		return -1;
	}
	end += strspn(end, " \t");
	strlcpy(cmd->params, end, sizeof(cmd->params));
	return smtp_parse_params(cmd, reply);
}

/* Apply the verb's argument rule to rest (already trimmed). */
static int
smtp_parse_args(const char *rest, const struct smtp_verb_def *def,
    struct smtp_command *cmd, const char **reply)
{
	switch (def->rule) {
	case ARG_NONE:
		if (*rest != '\0') {
			*reply = def->syntax;
			return -1;
		}
		return 0;
	case ARG_REQUIRED:
		if (*rest == '\0') {
			*reply = def->syntax;
			return -1;
		}
		break;
	case ARG_OPTIONAL:
		break;
	case ARG_PATH:
		return smtp_parse_mail_rcpt(rest, def, cmd, reply);
	}
	strlcpy(cmd->arg, rest, sizeof(cmd->arg));
	return 0;
}

/* Copy the line NUL-terminated, refusing control octets other than HTAB,
 * and drop trailing white space. */
static int
smtp_copy_line(const char *line, size_t len, char *text, const char **reply)
{
	size_t i;

	if (len > SMTP_LINE_MAX - 2) {
		*reply = REPLY_TOO_LONG;
		return -1;
	}
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)line[i];

		if ((c < 32 && c != '\t') || c == 127) {
			*reply = REPLY_BAD_SYNTAX;
			return -1;
		}
	}
	while (len > 0 && smtp_is_wsp((unsigned char)line[len - 1]))
		len--;
	memcpy(text, line, len);
	text[len] = '\0';
	return 0;
}

int
smtp_parse_command(const char *line, size_t len, struct smtp_command *cmd,
    const char **reply)
{
	char text[SMTP_LINE_MAX];
	const struct smtp_verb_def *def;
	const char *rest;
	size_t n;

	memset(cmd, 0, sizeof(*cmd));
	cmd->verb = SMTP_UNKNOWN;
	cmd->size = -1;
	*reply = NULL;
	if (smtp_copy_line(line, len, text, reply) == -1)
		return -1;
	n = strcspn(text, " \t");
	rest = text + n + strspn(text + n, " \t");
	if ((def = smtp_find_verb(text, n)) == NULL) {
		if (!smtp_is_nonsmtp(text, n)) {
			*reply = REPLY_UNKNOWN;
			return -1;
		}
		cmd->verb = SMTP_NONSMTP;
		strlcpy(cmd->arg, rest, sizeof(cmd->arg));
		return 0;
	}
	cmd->verb = def->verb;
	return smtp_parse_args(rest, def, cmd, reply);
}

/* ---- backend replies ---- */

/*
 * One reply line at line[0..avail): 1 and *linelen (LF included), *code,
 * *last when complete; 0 when no LF yet; -1 when malformed so far.
 */
static int
smtp_reply_line(const char *line, size_t avail, int *code, bool *last,
    size_t *linelen)
{
	static const char lo[] = "200", hi[] = "559";
	const char *lf = memchr(line, '\n', avail);
	size_t end = lf != NULL ? (size_t)(lf - line) : avail, i;

	for (i = 0; i < 3 && i < end; i++)
		if (line[i] < lo[i] || line[i] > hi[i])
			return -1;
	if (end > 3 && line[3] != ' ' && line[3] != '-' && line[3] != '\r')
		return -1;
	if (lf == NULL)
		return 0;
	if (end > 0 && line[end - 1] == '\r')
		end--;
	if (end < 3 || memchr(line, '\0', end) != NULL ||
	    memchr(line, '\r', end) != NULL)
		return -1;
	*code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	*last = end == 3 || line[3] == ' ';
	*linelen = (size_t)(lf - line) + 1;
	return 1;
}

int
smtp_reply_scan(const char *buf, size_t len, int *code, size_t *consumed)
{
	size_t pos = 0, linelen, window;
	int first = -1, this;
	bool last;
	int r;

	for (;;) {
		window = len - pos;
		if (window > SMTP_REPLY_MAX - pos)
			window = SMTP_REPLY_MAX - pos;
		r = smtp_reply_line(buf + pos, window, &this, &last, &linelen);
		if (r == -1)
			return -1;
		if (r == 0)
			return len >= SMTP_REPLY_MAX ? -1 : 0;
		if (first != -1 && this != first)
			return -1;
		first = this;
		pos += linelen;
		if (last) {
			*code = first;
			*consumed = pos;
			return 1;
		}
	}
}
