/*
 * t/fuzz/smtp_fuzz.c — libFuzzer target for greyd/smtp.c.
 *
 * The input is treated three ways, as hostile bytes always are:
 *  1. a client stream: smtp_line_scan splits it into command lines the way
 *     session.c does (discarding bad and over-long lines through their LF),
 *     each good line goes to smtp_parse_command, HELO arguments to
 *     smtp_valid_helo and addresses to smtp_addr_key;
 *  2. a backend stream: smtp_reply_scan consumes one reply after another;
 *  3. a NUL-terminated string for smtp_parse_path in every allow mode.
 * Lines are passed in place (not NUL-terminated) so that AddressSanitizer
 * catches any read past the length.  The scanners' contracts are checked
 * and a violation aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x) do { if (!(x)) abort(); } while (0)

static void
fuzz_command(const char *line, size_t len)
{
	struct smtp_command cmd;
	const char *reply = NULL;
	char key[SMTP_PATH_MAX];

	if (smtp_parse_command(line, len, &cmd, &reply) == -1) {
		CHECK(reply != NULL && reply[0] == '5');
		return;
	}
	CHECK(strlen(cmd.arg) < sizeof(cmd.arg));
	CHECK(strlen(cmd.addr) < sizeof(cmd.addr));
	CHECK(strlen(cmd.params) < sizeof(cmd.params));
	CHECK(cmd.size >= -1);
	CHECK(cmd.verb != SMTP_UNKNOWN);
	if (cmd.verb == SMTP_HELO || cmd.verb == SMTP_EHLO)
		(void)smtp_valid_helo(cmd.arg);
	if (cmd.verb == SMTP_MAIL || cmd.verb == SMTP_RCPT) {
		smtp_addr_key(cmd.addr, key, sizeof(key));
		CHECK(strlen(key) == strlen(cmd.addr));
	}
}

static void
fuzz_client_stream(const char *buf, size_t len, size_t max)
{
	size_t linelen, consumed;
	enum smtp_line_status st;

	while (len > 0) {
		st = smtp_line_scan(buf, len, max, &linelen, &consumed);
		if (st == SMTP_LINE_INCOMPLETE)
			return;
		CHECK(consumed > 0 && consumed <= len);
		if (st == SMTP_LINE_OK) {
			CHECK(linelen + 2 == consumed && consumed <= max);
			CHECK(buf[linelen] == '\r' && buf[linelen + 1] == '\n');
			CHECK(memchr(buf, '\n', linelen) == NULL);
			CHECK(memchr(buf, '\0', linelen) == NULL);
			fuzz_command(buf, linelen);
		} else if (st != SMTP_LINE_TOO_LONG || consumed < len)
			CHECK(buf[consumed - 1] == '\n');
		buf += consumed;
		len -= consumed;
	}
}

static void
fuzz_backend_stream(const char *buf, size_t len)
{
	size_t consumed;
	int code, r;

	while ((r = smtp_reply_scan(buf, len, &code, &consumed)) == 1) {
		CHECK(consumed > 0 && consumed <= len &&
		    consumed <= SMTP_REPLY_MAX);
		CHECK(code >= 200 && code <= 559);
		CHECK(buf[consumed - 1] == '\n');
		buf += consumed;
		len -= consumed;
	}
}

static void
fuzz_path(const char *s)
{
	char addr[SMTP_PATH_MAX];
	const char *end;
	int mode;

	for (mode = 0; mode < 4; mode++) {
		if (smtp_parse_path(s, addr, sizeof(addr), mode & 1, mode & 2,
		    &end) == 0) {
			CHECK(end > s && end[-1] == '>');
			CHECK(end - s <= SMTP_PATH_MAX);
			CHECK(strlen(addr) < sizeof(addr));
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy;

	fuzz_client_stream((const char *)data, size, SMTP_LINE_MAX);
	fuzz_client_stream((const char *)data, size, SMTP_TEXT_LINE_MAX);
	fuzz_backend_stream((const char *)data, size);
	if ((copy = malloc(size + 1)) == NULL)
		return 0;
	memcpy(copy, data, size);
	copy[size] = '\0';
	fuzz_path(copy);
	(void)smtp_valid_helo(copy);
	free(copy);
	return 0;
}
