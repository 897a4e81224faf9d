/*
 * t/unit/smtp.c — unit tests for greyd/smtp.c: the CRLF line scanner (every
 * status, limits at and over, split CRLF, pipelining), the command parser
 * (each verb, arguments, ESMTP parameters, SIZE), the RFC 5321 path parser,
 * address keys, HELO syntax and the backend reply scanner.  TAP for prove.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "smtp.h"

/* ---- helpers ---- */

static enum smtp_line_status
scan(const char *buf, size_t len, size_t max, size_t *linelen,
    size_t *consumed)
{
	*linelen = 12345;
	*consumed = 12345;
	return smtp_line_scan(buf, len, max, linelen, consumed);
}

static void
scan_expect(const char *buf, size_t len, size_t max,
    enum smtp_line_status want, size_t want_linelen, size_t want_consumed)
{
	size_t linelen, consumed;

	assert_int_equal(scan(buf, len, max, &linelen, &consumed), want);
	assert_int_equal(consumed, want_consumed);
	if (want == SMTP_LINE_OK)
		assert_int_equal(linelen, want_linelen);
}

static struct smtp_command cmd;

static void
parse_ok(const char *line, enum smtp_verb verb)
{
	const char *reply = "unset";
	int r = smtp_parse_command(line, strlen(line), &cmd, &reply);

	if (r != 0)
		fail_msg("\"%s\" refused: %s", line, reply);
	assert_int_equal(cmd.verb, verb);
}

static void
parse_err(const char *line, const char *want)
{
	const char *reply = NULL;

	if (smtp_parse_command(line, strlen(line), &cmd, &reply) != -1)
		fail_msg("\"%s\" accepted", line);
	assert_non_null(reply);
	assert_string_equal(reply, want);
}

static void
path_ok(const char *s, bool null, bool pm, const char *want_addr,
    const char *want_rest)
{
	char addr[SMTP_PATH_MAX];
	const char *end = NULL;

	if (smtp_parse_path(s, addr, sizeof(addr), null, pm, &end) != 0)
		fail_msg("path \"%s\" refused", s);
	assert_string_equal(addr, want_addr);
	assert_string_equal(end, want_rest);
}

static void
path_bad(const char *s, bool null, bool pm)
{
	char addr[SMTP_PATH_MAX];
	const char *end = NULL;

	if (smtp_parse_path(s, addr, sizeof(addr), null, pm, &end) != -1)
		fail_msg("path \"%s\" accepted", s);
	assert_null(end);
}

static char *
repeat(char *buf, char c, size_t n)
{
	memset(buf, c, n);
	buf[n] = '\0';
	return buf;
}

/* ---- line scanner ---- */

static void
test_line_ok(void **state)
{
	scan_expect("HELO x\r\n", 8, SMTP_LINE_MAX, SMTP_LINE_OK, 6, 8);
	scan_expect("\r\n", 2, SMTP_LINE_MAX, SMTP_LINE_OK, 0, 2);
	scan_expect("QUIT\r\nNOOP\r\n", 12, SMTP_LINE_MAX, SMTP_LINE_OK, 4, 6);
	scan_expect("\r\n", 2, 2, SMTP_LINE_OK, 0, 2);
}

static void
test_line_incomplete(void **state)
{
	scan_expect("", 0, SMTP_LINE_MAX, SMTP_LINE_INCOMPLETE, 0, 0);
	scan_expect("HELO x", 6, SMTP_LINE_MAX, SMTP_LINE_INCOMPLETE, 0, 0);
	/* a NUL or bare CR waits for its LF so the rest is discarded too */
	scan_expect("NOOP\rRCPT", 9, SMTP_LINE_MAX, SMTP_LINE_INCOMPLETE, 0, 0);
	scan_expect("NO\0OP", 5, SMTP_LINE_MAX, SMTP_LINE_INCOMPLETE, 0, 0);
}

static void
test_line_split_crlf(void **state)
{
	char buf[16] = "HELO x\r";

	scan_expect(buf, 7, SMTP_LINE_MAX, SMTP_LINE_INCOMPLETE, 0, 0);
	buf[7] = '\n';
	scan_expect(buf, 8, SMTP_LINE_MAX, SMTP_LINE_OK, 6, 8);
	/* the CR alone at the end of the buffer is not a bare CR */
	scan_expect("\r", 1, SMTP_LINE_MAX, SMTP_LINE_INCOMPLETE, 0, 0);
	scan_expect("\r\n", 2, SMTP_LINE_MAX, SMTP_LINE_OK, 0, 2);
}

static void
test_line_bare_lf(void **state)
{
	scan_expect("HELO x\nQUIT\r\n", 13, SMTP_LINE_MAX, SMTP_LINE_BARE_LF, 0, 7);
	scan_expect("\n", 1, SMTP_LINE_MAX, SMTP_LINE_BARE_LF, 0, 1);
	scan_expect("\n\r\n", 3, SMTP_LINE_MAX, SMTP_LINE_BARE_LF, 0, 1);
	/* DATA smuggling: "\n.\n" and "\r\n.\n" never end a line properly */
	scan_expect(".\n", 2, SMTP_TEXT_LINE_MAX, SMTP_LINE_BARE_LF, 0, 2);
}

static void
test_line_bare_cr(void **state)
{
	scan_expect("HELO\rx\r\n", 8, SMTP_LINE_MAX, SMTP_LINE_BARE_CR, 0, 8);
	scan_expect("\r\r\n", 3, SMTP_LINE_MAX, SMTP_LINE_BARE_CR, 0, 3);
	scan_expect("a\r.\rb\nQUIT\r\n", 12, SMTP_LINE_MAX, SMTP_LINE_BARE_CR, 0, 6);
	/* a bare CR then a bare LF: first anomaly reported, up to the LF */
	scan_expect("x\ry\n", 4, SMTP_LINE_MAX, SMTP_LINE_BARE_CR, 0, 4);
}

static void
test_line_nul(void **state)
{
	scan_expect("HE\0LO\r\n", 7, SMTP_LINE_MAX, SMTP_LINE_NUL, 0, 7);
	scan_expect("\0\r\nQUIT\r\n", 9, SMTP_LINE_MAX, SMTP_LINE_NUL, 0, 3);
	scan_expect("A\0B\nC\r\n", 7, SMTP_LINE_MAX, SMTP_LINE_NUL, 0, 4);
}

static void
test_line_limit(void **state)
{
	char buf[700];
	size_t n;

	/* 510 octets + CRLF = 512: exactly at the limit */
	memset(buf, 'a', sizeof(buf));
	memcpy(buf + 510, "\r\n", 2);
	scan_expect(buf, 512, SMTP_LINE_MAX, SMTP_LINE_OK, 510, 512);
	/* 510 + CR, LF not yet here: still possible */
	scan_expect(buf, 511, SMTP_LINE_MAX, SMTP_LINE_INCOMPLETE, 0, 0);
	/* 511 + CRLF = 513: over, consumed through the LF */
	memset(buf, 'a', sizeof(buf));
	memcpy(buf + 511, "\r\nQUIT\r\n", 8);
	scan_expect(buf, 519, SMTP_LINE_MAX, SMTP_LINE_TOO_LONG, 0, 513);
	/* 511 + CR with the LF still to come: already too long */
	scan_expect(buf, 512, SMTP_LINE_MAX, SMTP_LINE_TOO_LONG, 0, 512);
	/* 511 octets, no line end: one short of the limit, still waiting */
	scan_expect(buf, 511, SMTP_LINE_MAX, SMTP_LINE_INCOMPLETE, 0, 0);
	/* 512 octets and no LF: everything is discarded */
	memset(buf, 'a', sizeof(buf));
	scan_expect(buf, 512, SMTP_LINE_MAX, SMTP_LINE_TOO_LONG, 0, 512);
	scan_expect(buf, 700, SMTP_LINE_MAX, SMTP_LINE_TOO_LONG, 0, 700);
	/* the LF far beyond the limit still bounds what is discarded */
	memcpy(buf + 600, "\r\nQUIT\r\n", 8);
	scan_expect(buf, 608, SMTP_LINE_MAX, SMTP_LINE_TOO_LONG, 0, 602);
	scan_expect(buf + 602, 6, SMTP_LINE_MAX, SMTP_LINE_OK, 4, 6);
	/* a bare LF over the limit is reported as too long */
	memset(buf, 'a', sizeof(buf));
	buf[600] = '\n';
	scan_expect(buf, 601, SMTP_LINE_MAX, SMTP_LINE_TOO_LONG, 0, 601);
	/* text lines: 1000 with CRLF ok, 1001 not */
	memset(buf, 'a', sizeof(buf));
	for (n = 0; n < 2; n++) {
		char text[1100];

		memset(text, 'x', sizeof(text));
		memcpy(text + 998 + n, "\r\n", 2);
		scan_expect(text, 1000 + n, SMTP_TEXT_LINE_MAX,
		    n == 0 ? SMTP_LINE_OK : SMTP_LINE_TOO_LONG, 998, 1000 + n);
	}
	/* a degenerate limit */
	scan_expect("\r\n", 2, 0, SMTP_LINE_TOO_LONG, 0, 2);
}

static void
test_pipelining(void **state)
{
	static const char input[] =
	    "EHLO client.example\r\n"
	    "MAIL FROM:<a@b.example> SIZE=42\r\n"
	    "RCPT TO:<c@d.example>\r\n"
	    "RCPT TO:<postmaster>\r\n"
	    "DATA\r\n"
	    "QUI";
	static const enum smtp_verb want[] = {
		SMTP_EHLO, SMTP_MAIL, SMTP_RCPT, SMTP_RCPT, SMTP_DATA,
	};
	const char *p = input, *reply;
	size_t left = sizeof(input) - 1, linelen, consumed, n = 0;

	while (scan(p, left, SMTP_LINE_MAX, &linelen, &consumed) ==
	    SMTP_LINE_OK) {
		assert_true(n < 5);
		assert_int_equal(smtp_parse_command(p, linelen, &cmd, &reply), 0);
		assert_int_equal(cmd.verb, want[n]);
		if (n == 1) {
			assert_string_equal(cmd.addr, "a@b.example");
			assert_int_equal(cmd.size, 42);
		}
		if (n == 3)
			assert_string_equal(cmd.addr, "postmaster");
		p += consumed;
		left -= consumed;
		n++;
	}
	assert_int_equal(n, 5);
	assert_int_equal(left, 3);
	assert_int_equal(scan(p, left, SMTP_LINE_MAX, &linelen, &consumed),
	    SMTP_LINE_INCOMPLETE);
}

/* ---- command parser ---- */

static void
test_helo_ehlo(void **state)
{
	parse_ok("EHLO mail.example.com", SMTP_EHLO);
	assert_string_equal(cmd.arg, "mail.example.com");
	assert_int_equal(cmd.size, -1);
	parse_ok("helo [192.0.2.1]", SMTP_HELO);
	assert_string_equal(cmd.arg, "[192.0.2.1]");
	parse_ok("Ehlo   spaced.example  \t", SMTP_EHLO);
	assert_string_equal(cmd.arg, "spaced.example");
	parse_ok("HELO\ttabbed.example", SMTP_HELO);
	assert_string_equal(cmd.arg, "tabbed.example");
	/* syntax policy is smtp_valid_helo's business, not the parser's */
	parse_ok("EHLO not a hostname", SMTP_EHLO);
	assert_string_equal(cmd.arg, "not a hostname");
	parse_err("EHLO", "501 5.5.4 Syntax: EHLO hostname");
	parse_err("EHLO   ", "501 5.5.4 Syntax: EHLO hostname");
	parse_err("HELO", "501 5.5.4 Syntax: HELO hostname");
}

static void
test_mail(void **state)
{
	parse_ok("MAIL FROM:<a@b.example>", SMTP_MAIL);
	assert_string_equal(cmd.addr, "a@b.example");
	assert_string_equal(cmd.params, "");
	assert_int_equal(cmd.size, -1);
	parse_ok("mail from:<>", SMTP_MAIL);
	assert_string_equal(cmd.addr, "");
	parse_ok("MAIL FROM: <a@b.example>", SMTP_MAIL);
	assert_string_equal(cmd.addr, "a@b.example");
	parse_ok("mAiL fRoM:<User@B.Example>", SMTP_MAIL);
	assert_string_equal(cmd.addr, "User@B.Example");
	parse_ok("MAIL FROM:<a@b.example> SIZE=123 BODY=8BITMIME", SMTP_MAIL);
	assert_string_equal(cmd.params, "SIZE=123 BODY=8BITMIME");
	assert_int_equal(cmd.size, 123);
	parse_ok("MAIL FROM:<a@b.example>   BODY=7BIT\tsize=0  ", SMTP_MAIL);
	assert_string_equal(cmd.params, "BODY=7BIT\tsize=0");
	assert_int_equal(cmd.size, 0);
	parse_ok("MAIL FROM:<> RET=HDRS ENVID=QQ314159 SMTPUTF8", SMTP_MAIL);
	assert_string_equal(cmd.params, "RET=HDRS ENVID=QQ314159 SMTPUTF8");
	parse_ok("MAIL FROM:<\"john doe\"@example.com>", SMTP_MAIL);
	assert_string_equal(cmd.addr, "\"john doe\"@example.com");
	parse_ok("MAIL FROM:<@relay.example:a@b.example>", SMTP_MAIL);
	assert_string_equal(cmd.addr, "a@b.example");
}

static void
test_mail_errors(void **state)
{
	const char *syntax = "501 5.5.4 Syntax: MAIL FROM:<address>";
	const char *bad = "501 5.1.7 Bad sender address syntax";

	parse_err("MAIL", syntax);
	parse_err("MAIL FROM", syntax);
	parse_err("MAIL FROM:", syntax);
	parse_err("MAIL FROM: ", syntax);
	parse_err("MAIL TO:<a@b.example>", syntax);
	parse_err("MAIL FROM :<a@b.example>", syntax);
	parse_err("MAIL FROM:a@b.example", bad);
	parse_err("MAIL FROM:  <a@b.example>", bad);
	parse_err("MAIL FROM:<a@b.example", bad);
	parse_err("MAIL FROM:<a@b.example>x", bad);
	parse_err("MAIL FROM:<a b@c.example>", bad);
	parse_err("MAIL FROM:<a@b@c.example>", bad);
	parse_err("MAIL FROM:<a@>", bad);
	parse_err("MAIL FROM:<postmaster>", bad);
	parse_err("MAIL FROM:<a@b.example> BODY=", "501 5.5.4 Bad ESMTP parameter syntax");
	parse_err("MAIL FROM:<a@b.example> =x", "501 5.5.4 Bad ESMTP parameter syntax");
	parse_err("MAIL FROM:<a@b.example> -X", "501 5.5.4 Bad ESMTP parameter syntax");
	parse_err("MAIL FROM:<a@b.example> X=a=b", "501 5.5.4 Bad ESMTP parameter syntax");
	parse_err("MAIL FROM:<a@b.example> X=\xc3\xa9", "501 5.5.4 Bad ESMTP parameter syntax");
	parse_err("MAIL FROM:<a@b.example> B_Y=1", "501 5.5.4 Bad ESMTP parameter syntax");
}

static void
test_mail_size(void **state)
{
	const char *bad = "501 5.5.4 Bad SIZE parameter syntax";

	parse_ok("MAIL FROM:<a@b.example> SIZE=9223372036854775807", SMTP_MAIL);
	assert_true(cmd.size == 9223372036854775807LL);
	parse_ok("MAIL FROM:<a@b.example> SIZE=00000000000000000001", SMTP_MAIL);
	assert_int_equal(cmd.size, 1);
	parse_err("MAIL FROM:<a@b.example> SIZE=9223372036854775808", bad);
	parse_err("MAIL FROM:<a@b.example> SIZE=99999999999999999999", bad);
	parse_err("MAIL FROM:<a@b.example> SIZE=000000000000000000001", bad);
	parse_err("MAIL FROM:<a@b.example> SIZE=", "501 5.5.4 Bad ESMTP parameter syntax");
	parse_err("MAIL FROM:<a@b.example> SIZE", bad);
	parse_err("MAIL FROM:<a@b.example> SIZE=12a", bad);
	parse_err("MAIL FROM:<a@b.example> SIZE=-1", bad);
	parse_err("MAIL FROM:<a@b.example> SIZE=+1", bad);
	parse_err("MAIL FROM:<a@b.example> SIZE=1 SIZE=2", bad);
	/* SIZEX is another keyword */
	parse_ok("MAIL FROM:<a@b.example> SIZEX=abc", SMTP_MAIL);
	assert_int_equal(cmd.size, -1);
}

static void
test_rcpt(void **state)
{
	const char *bad = "501 5.1.3 Bad recipient address syntax";

	parse_ok("RCPT TO:<c@d.example>", SMTP_RCPT);
	assert_string_equal(cmd.addr, "c@d.example");
	assert_int_equal(cmd.size, -1);
	parse_ok("rcpt to: <c@d.example> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;c@d.example",
	    SMTP_RCPT);
	assert_string_equal(cmd.params,
	    "NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;c@d.example");
	parse_ok("RCPT TO:<postmaster>", SMTP_RCPT);
	assert_string_equal(cmd.addr, "postmaster");
	parse_ok("RCPT TO:<PostMaster>", SMTP_RCPT);
	assert_string_equal(cmd.addr, "PostMaster");
	parse_ok("RCPT TO:<@a.example,@b.example:user@c.example>", SMTP_RCPT);
	assert_string_equal(cmd.addr, "user@c.example");
	parse_err("RCPT TO:<>", bad);
	parse_err("RCPT TO:c@d.example", bad);
	parse_err("RCPT TO:<c@d.example> <x@y.example>", "501 5.5.4 Bad ESMTP parameter syntax");
	parse_err("RCPT", "501 5.5.4 Syntax: RCPT TO:<address>");
	parse_err("RCPT FROM:<c@d.example>", "501 5.5.4 Syntax: RCPT TO:<address>");
}

static void
test_no_argument_verbs(void **state)
{
	parse_ok("DATA", SMTP_DATA);
	parse_ok("data  ", SMTP_DATA);
	parse_ok("RSET", SMTP_RSET);
	parse_ok("QUIT", SMTP_QUIT);
	parse_ok("StartTLS", SMTP_STARTTLS);
	parse_err("DATA x", "501 5.5.4 Syntax: DATA");
	parse_err("RSET now", "501 5.5.4 Syntax: RSET");
	parse_err("QUIT please", "501 5.5.4 Syntax: QUIT");
	parse_err("STARTTLS x", "501 5.5.4 Syntax: STARTTLS");
}

static void
test_optional_argument_verbs(void **state)
{
	parse_ok("NOOP", SMTP_NOOP);
	assert_string_equal(cmd.arg, "");
	parse_ok("NOOP anything at all", SMTP_NOOP);
	assert_string_equal(cmd.arg, "anything at all");
	parse_ok("HELP", SMTP_HELP);
	parse_ok("help mail", SMTP_HELP);
	assert_string_equal(cmd.arg, "mail");
	parse_ok("VRFY postmaster", SMTP_VRFY);
	assert_string_equal(cmd.arg, "postmaster");
	parse_ok("VRFY", SMTP_VRFY);
	parse_ok("EXPN staff", SMTP_EXPN);
	assert_string_equal(cmd.arg, "staff");
	parse_ok("AUTH PLAIN dGVzdAB0ZXN0AHRlc3Q=", SMTP_AUTH);
	assert_string_equal(cmd.arg, "PLAIN dGVzdAB0ZXN0AHRlc3Q=");
	parse_err("AUTH", "501 5.5.4 Syntax: AUTH mechanism");
	parse_ok("BDAT 100 LAST", SMTP_BDAT);
	assert_string_equal(cmd.arg, "100 LAST");
	parse_err("BDAT", "501 5.5.4 Syntax: BDAT size [LAST]");
}

static void
test_nonsmtp(void **state)
{
	static const char *const probes[] = {
		"GET / HTTP/1.0", "POST /cgi-bin/x HTTP/1.1", "HEAD /", "PUT /x",
		"CONNECT mx.example:25 HTTP/1.1", "USER root", "PASS secret",
		"OPTIONS * HTTP/1.1", "get /", "GET",
	};
	size_t i;

	for (i = 0; i < sizeof(probes) / sizeof(probes[0]); i++)
		parse_ok(probes[i], SMTP_NONSMTP);
}

static void
test_unknown_and_bad_lines(void **state)
{
	const char *unknown = "500 5.5.2 Error: command not recognized";
	const char *reply;
	char line[SMTP_LINE_MAX + 8];

	parse_err("", unknown);
	parse_err("FOO bar", unknown);
	parse_err("MAILFROM:<a@b.example>", unknown);
	parse_err(" HELO x", unknown);
	parse_err("HELOx", unknown);
	parse_err("EHL", unknown);
	parse_err("GETX /", unknown);
	parse_err("HELO a\x01", "500 5.5.2 Error: bad syntax");
	parse_err("NOOP \x7f", "500 5.5.2 Error: bad syntax");
	assert_int_equal(smtp_parse_command("HELO a\0b", 8, &cmd, &reply), -1);
	assert_string_equal(reply, "500 5.5.2 Error: bad syntax");
	assert_int_equal(smtp_parse_command("QUIT\r", 5, &cmd, &reply), -1);
	assert_int_equal(smtp_parse_command("QUIT\n", 5, &cmd, &reply), -1);
	/* 510 octets fit a 512-octet line, 511 do not */
	memcpy(line, "NOOP ", 5);
	memset(line + 5, 'x', sizeof(line) - 5);
	assert_int_equal(smtp_parse_command(line, 510, &cmd, &reply), 0);
	assert_int_equal(strlen(cmd.arg), 505);
	assert_int_equal(smtp_parse_command(line, 511, &cmd, &reply), -1);
	assert_string_equal(reply, "500 5.5.2 Error: line too long");
}

/* ---- paths ---- */

static void
test_path_good(void **state)
{
	path_ok("<user@example.com>", false, false, "user@example.com", "");
	path_ok("<first.last+tag@sub.example.co.uk> SIZE=1", false, false,
	    "first.last+tag@sub.example.co.uk", " SIZE=1");
	path_ok("<!#$%&'*+-/=?^_`{|}~@x.example>", false, false,
	    "!#$%&'*+-/=?^_`{|}~@x.example", "");
	path_ok("<\"john doe\"@example.com>", false, false,
	    "\"john doe\"@example.com", "");
	path_ok("<\"a\\\"b\\\\c\"@example.com>", false, false,
	    "\"a\\\"b\\\\c\"@example.com", "");
	path_ok("<\"\"@example.com>", false, false, "\"\"@example.com", "");
	path_ok("<\"caf\xc3\xa9\"@example.com>", false, false,
	    "\"caf\xc3\xa9\"@example.com", "");
	path_ok("<user@[192.0.2.1]>", false, false, "user@[192.0.2.1]", "");
	path_ok("<user@[IPv6:2001:db8::1]>", false, false,
	    "user@[IPv6:2001:db8::1]", "");
	path_ok("<user@[ipv6:::ffff:192.0.2.1]>", false, false,
	    "user@[ipv6:::ffff:192.0.2.1]", "");
	path_ok("<@a.example,@b.example:user@c.example>", false, false,
	    "user@c.example", "");
	path_ok("<@a.example:user@c.example>", false, false, "user@c.example", "");
	path_ok("<a@b-c.d3.example>", false, false, "a@b-c.d3.example", "");
	path_ok("<a@localhost>", false, false, "a@localhost", "");
	path_ok("<a@123.example>", false, false, "a@123.example", "");
	path_ok("<>", true, false, "", "");
	path_ok("<> BODY=8BITMIME", true, false, "", " BODY=8BITMIME");
	path_ok("<postmaster>", false, true, "postmaster", "");
	path_ok("<POSTMASTER>x", false, true, "POSTMASTER", "x");
	path_ok("<postmaster@example.com>", false, false,
	    "postmaster@example.com", "");
}

static void
test_path_bad(void **state)
{
	static const char *const bad[] = {
		"user@example.com", "<user@example.com", "user@example.com>",
		"", "<", ">", "<user>", "< user@example.com>",
		"<user @example.com>", "<user@ example.com>",
		"<user@example.com >", "<a@b@c.example>", "<a@>", "<@example.com>",
		"<a@-b.example>", "<a@b-.example>", "<a@b..example>",
		"<a@.b.example>", "<a@b.example.>", "<.a@b.example>",
		"<a.@b.example>", "<a..b@c.example>", "<a@b_c.example>",
		"<a@192.0.2.1>", "<a@b.123>",
		"<a@[192.0.2.256]>", "<a@[IPv6:zz::1]>", "<a@[IPv6:192.0.2.1]>",
		"<a@[2001:db8::1]>", "<a@[]>", "<a@[192.0.2.1>", "<a@[tag:x]>",
		"<a@[192.0.2.1]x>", "<\"unterminated@a.example>",
		"<\"a\x01\"@b.example>", "<\"a\\\x7f\"@b.example>", "<\"a\x7f\"@b.example>",
		"<\"a\\\"@b.example>", "<\"a\"b@c.example>",
		"<caf\xc3\xa9@b.example>", "<a\x01@b.example>", "<a\t@b.example>",
		"<@a.example:>", "<@a.example,b.example:u@c.example>",
		"<@a.example;u@c.example>", "<@:u@c.example>",
		"<@a.example,:u@c.example>", "<postmaster@>", "<<a@b.example>>",
		"<a@b.example", "<a(comment)@b.example>",
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		path_bad(bad[i], true, true);
	path_bad("<>", false, true);
	path_bad("<postmaster>", true, false);
	path_bad("<postmaster", true, true);
}

static void
test_path_limits(void **state)
{
	char s[600], want[600], local[80], label[80], c[80], small[8];
	const char *end = NULL;

	/* local part: 64 octets ok, 65 not; quotes count */
	snprintf(s, sizeof(s), "<%s@x.example>", repeat(local, 'l', 64));
	snprintf(want, sizeof(want), "%s@x.example", local);
	path_ok(s, false, false, want, "");
	snprintf(s, sizeof(s), "<%s@x.example>", repeat(local, 'l', 65));
	path_bad(s, false, false);
	snprintf(s, sizeof(s), "<\"%s\"@x.example>", repeat(local, 'q', 62));
	snprintf(want, sizeof(want), "\"%s\"@x.example", local);
	path_ok(s, false, false, want, "");
	snprintf(s, sizeof(s), "<\"%s\"@x.example>", repeat(local, 'q', 63));
	path_bad(s, false, false);
	/* label: 63 ok, 64 not */
	snprintf(s, sizeof(s), "<a@%s.example>", repeat(label, 'd', 63));
	snprintf(want, sizeof(want), "a@%s.example", label);
	path_ok(s, false, false, want, "");
	snprintf(s, sizeof(s), "<a@%s.example>", repeat(label, 'd', 64));
	path_bad(s, false, false);
	/* whole path, brackets included: 256 ok, 257 not */
	repeat(local, 'l', 64);
	repeat(label, 'a', 63);
	snprintf(s, sizeof(s), "<%s@%s.%s.%s>", local, label, label,
	    repeat(c, 'c', 61));
	assert_int_equal(strlen(s), 256);
	snprintf(want, sizeof(want), "%.*s", 254, s + 1);
	path_ok(s, false, false, want, "");
	snprintf(s, sizeof(s), "<%s@%s.%s.%s>", local, label, label,
	    repeat(c, 'c', 62));
	assert_int_equal(strlen(s), 257);
	path_bad(s, false, false);
	/* the dropped source route still counts */
	snprintf(s, sizeof(s), "<@r.example:%s@%s.%s.%s>", local, label,
	    label, repeat(c, 'c', 60));
	assert_int_equal(strlen(s), 266);
	path_bad(s, false, false);
	/* the caller's buffer bounds the copy */
	assert_int_equal(smtp_parse_path("<a@b.example>", small, sizeof(small),
	    false, false, &end), -1);
	assert_int_equal(smtp_parse_path("<a@b.cd>", small, 7, false, false,
	    &end), 0);
	assert_string_equal(small, "a@b.cd");
	assert_int_equal(smtp_parse_path("<postmaster>", small, sizeof(small),
	    false, true, &end), -1);
	assert_int_equal(smtp_parse_path("<>", small, 0, true, false, &end), -1);
}

static void
test_addr_key(void **state)
{
	char out[SMTP_PATH_MAX], small[5];

	smtp_addr_key("User@Example.COM", out, sizeof(out));
	assert_string_equal(out, "user@example.com");
	smtp_addr_key("\"John Doe\"@X.example", out, sizeof(out));
	assert_string_equal(out, "\"john doe\"@x.example");
	smtp_addr_key("\"\xc3\x89T\xc3\x89\"@x", out, sizeof(out));
	assert_string_equal(out, "\"\xc3\x89t\xc3\x89\"@x");
	smtp_addr_key("", out, sizeof(out));
	assert_string_equal(out, "");
	smtp_addr_key("ABCDEFGH", small, sizeof(small));
	assert_string_equal(small, "abcd");
	small[0] = 'Z';
	smtp_addr_key("ABCDEFGH", small, 0);
	assert_int_equal(small[0], 'Z');
}

static void
test_valid_helo(void **state)
{
	static const char *const good[] = {
		"mail.example.com", "localhost", "a", "x1-2.example",
		"123.example", "[192.0.2.1]", "[IPv6:2001:db8::1]", "MX.EXAMPLE.NET",
	};
	static const char *const bad[] = {
		"", "192.0.2.1", "a..b", "-a.example", "a-.example", "a_b.example",
		"foo bar", "[192.0.2.1", "[192.0.2.1]x", "[2001:db8::1]",
		"mail.example.com.", ".example", "caf\xc3\xa9.example", "a.example:25",
		"[]", "[IPv6:]",
	};
	char name[400], label[80];
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (!smtp_valid_helo(good[i]))
			fail_msg("\"%s\" refused", good[i]);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (smtp_valid_helo(bad[i]))
			fail_msg("\"%s\" accepted", bad[i]);
	/* 255 octets ok, 256 not; 63-octet labels */
	repeat(label, 'a', 63);
	snprintf(name, sizeof(name), "%s.%s.%s.%s", label, label, label, label);
	assert_int_equal(strlen(name), 255);
	assert_true(smtp_valid_helo(name));
	strlcat(name, "b", sizeof(name));
	assert_false(smtp_valid_helo(name));
	snprintf(name, sizeof(name), "%s%s", label, "a");
	assert_false(smtp_valid_helo(name));
}

/* ---- backend replies ---- */

static int
reply_scan(const char *buf, int *code, size_t *consumed)
{
	*code = -7;
	*consumed = 777;
	return smtp_reply_scan(buf, strlen(buf), code, consumed);
}

static void
test_reply_single(void **state)
{
	int code;
	size_t consumed;

	assert_int_equal(reply_scan("250 OK\r\n", &code, &consumed), 1);
	assert_int_equal(code, 250);
	assert_int_equal(consumed, 8);
	assert_int_equal(reply_scan("220 mx ESMTP\nNEXT", &code, &consumed), 1);
	assert_int_equal(code, 220);
	assert_int_equal(consumed, 13);
	assert_int_equal(reply_scan("354\r\n", &code, &consumed), 1);
	assert_int_equal(code, 354);
	assert_int_equal(consumed, 5);
	assert_int_equal(reply_scan("421 4.7.0 bye\r\n250 OK\r\n", &code,
	    &consumed), 1);
	assert_int_equal(code, 421);
	assert_int_equal(consumed, 15);
}

static void
test_reply_multiline(void **state)
{
	static const char ehlo[] =
	    "250-mx.example\r\n"
	    "250-PIPELINING\r\n"
	    "250-SIZE 10240000\n"
	    "250-\r\n"
	    "250 8BITMIME\r\n";
	char buf[256];
	int code;
	size_t consumed;

	assert_int_equal(reply_scan(ehlo, &code, &consumed), 1);
	assert_int_equal(code, 250);
	assert_int_equal(consumed, sizeof(ehlo) - 1);
	snprintf(buf, sizeof(buf), "%s250 OK\r\n", ehlo);
	assert_int_equal(reply_scan(buf, &code, &consumed), 1);
	assert_int_equal(consumed, sizeof(ehlo) - 1);
	assert_int_equal(reply_scan("550-5.1.1 no\r\n550 5.1.1 such user\r\n",
	    &code, &consumed), 1);
	assert_int_equal(code, 550);
}

static void
test_reply_incomplete(void **state)
{
	static const char *const partial[] = {
		"", "2", "25", "250", "250 ", "250 OK", "250 OK\r", "250-a\r\n",
		"250-a\r\n250", "250-a\r\n250 b", "250-a\n250-b\n",
	};
	int code;
	size_t consumed, i;

	for (i = 0; i < sizeof(partial) / sizeof(partial[0]); i++) {
		if (reply_scan(partial[i], &code, &consumed) != 0)
			fail_msg("\"%s\" not incomplete", partial[i]);
		assert_int_equal(code, -7);
		assert_int_equal(consumed, 777);
	}
}

static void
test_reply_malformed(void **state)
{
	static const char *const bad[] = {
		"x", "2x", "abc\r\n", "2x0 ok\r\n", "250x\r\n", "25\r\n", "\r\n",
		"250-a\r\n251 b\r\n", "250-a\r\n25x", "650 x\r\n", "160 x\r\n",
		"260 x\r\n", "250-a\r\nfoo\r\n", " 250 OK\r\n", "250 a\rb\r\n",
		"250 a\r\r\n", "250_OK\r\n",
	};
	int code;
	size_t consumed, i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (reply_scan(bad[i], &code, &consumed) != -1)
			fail_msg("\"%s\" not malformed", bad[i]);
	assert_int_equal(smtp_reply_scan("250 a\0b\r\n", 9, &code, &consumed), -1);
}

static void
test_reply_limit(void **state)
{
	char buf[SMTP_REPLY_MAX + 64];
	int code;
	size_t consumed, pos, n;

	/* one line with no end: waits below the limit, fails at it */
	memcpy(buf, "250 ", 4);
	memset(buf + 4, 'x', sizeof(buf) - 4);
	assert_int_equal(smtp_reply_scan(buf, SMTP_REPLY_MAX - 1, &code,
	    &consumed), 0);
	assert_int_equal(smtp_reply_scan(buf, SMTP_REPLY_MAX, &code,
	    &consumed), -1);
	/* a reply of exactly SMTP_REPLY_MAX octets is fine */
	buf[SMTP_REPLY_MAX - 2] = '\r';
	buf[SMTP_REPLY_MAX - 1] = '\n';
	assert_int_equal(smtp_reply_scan(buf, sizeof(buf), &code, &consumed), 1);
	assert_int_equal(consumed, SMTP_REPLY_MAX);
	/* one more octet is not */
	buf[SMTP_REPLY_MAX - 2] = 'x';
	buf[SMTP_REPLY_MAX - 1] = '\r';
	buf[SMTP_REPLY_MAX] = '\n';
	assert_int_equal(smtp_reply_scan(buf, sizeof(buf), &code, &consumed), -1);
	/* many continuation lines adding up past the limit */
	for (pos = 0; pos + 16 < sizeof(buf); pos += n)
		n = (size_t)snprintf(buf + pos, sizeof(buf) - pos, "250-line %04zu\r\n",
		    pos / 15);
	assert_int_equal(smtp_reply_scan(buf, pos, &code, &consumed), -1);
	assert_int_equal(smtp_reply_scan(buf, 150, &code, &consumed), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_line_ok),
		cmocka_unit_test(test_line_incomplete),
		cmocka_unit_test(test_line_split_crlf),
		cmocka_unit_test(test_line_bare_lf),
		cmocka_unit_test(test_line_bare_cr),
		cmocka_unit_test(test_line_nul),
		cmocka_unit_test(test_line_limit),
		cmocka_unit_test(test_pipelining),
		cmocka_unit_test(test_helo_ehlo),
		cmocka_unit_test(test_mail),
		cmocka_unit_test(test_mail_errors),
		cmocka_unit_test(test_mail_size),
		cmocka_unit_test(test_rcpt),
		cmocka_unit_test(test_no_argument_verbs),
		cmocka_unit_test(test_optional_argument_verbs),
		cmocka_unit_test(test_nonsmtp),
		cmocka_unit_test(test_unknown_and_bad_lines),
		cmocka_unit_test(test_path_good),
		cmocka_unit_test(test_path_bad),
		cmocka_unit_test(test_path_limits),
		cmocka_unit_test(test_addr_key),
		cmocka_unit_test(test_valid_helo),
		cmocka_unit_test(test_reply_single),
		cmocka_unit_test(test_reply_multiline),
		cmocka_unit_test(test_reply_incomplete),
		cmocka_unit_test(test_reply_malformed),
		cmocka_unit_test(test_reply_limit),
	};

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
