/*
 * t/unit/proxy.c — unit tests for greyd/proxy.c: PROXY v1/v2 encoding
 * (known answers, IPv4, IPv6, IPv4-mapped, buffer bounds), decode round
 * trips, the decoder's handling of partial, trailing and hostile input, and
 * XCLIENT with xtext escaping.  TAP output for prove.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/un.h>

#include "proxy.h"

static const uint8_t v2_signature[12] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a
};

/* A socket address from text; "::ffff:..." stays an AF_INET6 sockaddr. */
static struct sockaddr *
sa(struct sockaddr_storage *ss, const char *addr, uint16_t port)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, addr, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
	} else {
		assert_int_equal(inet_pton(AF_INET6, addr, &sin6->sin6_addr), 1);
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
	}
	return (struct sockaddr *)ss;
}

/* Check a decoded endpoint against family, text and port. */
static void
endpoint_is(const struct sockaddr_storage *ss, int family, const char *addr,
    uint16_t port)
{
	char text[INET6_ADDRSTRLEN];

	assert_int_equal(ss->ss_family, family);
	if (family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;

		inet_ntop(AF_INET, &sin->sin_addr, text, sizeof(text));
		assert_int_equal(ntohs(sin->sin_port), port);
	} else {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;

		inet_ntop(AF_INET6, &sin6->sin6_addr, text, sizeof(text));
		assert_int_equal(ntohs(sin6->sin6_port), port);
	}
	assert_string_equal(text, addr);
}

static int
decode(const void *buf, size_t len, struct sockaddr_storage *src,
    struct sockaddr_storage *dst, size_t *consumed)
{
	*consumed = 9999;
	return proxy_decode(buf, len, src, dst, consumed);
}

static void
decode_bad(const void *buf, size_t len)
{
	struct sockaddr_storage src, dst;
	size_t consumed;

	if (decode(buf, len, &src, &dst, &consumed) != -1)
		fail_msg("header of %zu octets not refused", len);
}

static void
decode_bad_str(const char *s)
{
	decode_bad(s, strlen(s));
}

/* Every proper prefix needs more, the whole header decodes. */
static void
decode_prefixes(const void *buf, size_t len)
{
	struct sockaddr_storage src, dst;
	size_t consumed, i;

	for (i = 0; i < len; i++)
		if (decode(buf, i, &src, &dst, &consumed) != 0)
			fail_msg("prefix %zu of %zu not incomplete", i, len);
	assert_int_equal(decode(buf, len, &src, &dst, &consumed), 1);
	assert_int_equal(consumed, len);
}

/* ---- v1 ---- */

static void
test_v1_encode(void **state)
{
	struct sockaddr_storage s, d;
	char buf[PROXY_V1_MAX];
	size_t n;

	n = proxy_v1_encode(buf, sizeof(buf), sa(&s, "192.0.2.1", 56324),
	    sa(&d, "198.51.100.25", 25));
	assert_string_equal(buf, "PROXY TCP4 192.0.2.1 198.51.100.25 56324 25\r\n");
	assert_int_equal(n, strlen(buf));

	n = proxy_v1_encode(buf, sizeof(buf), sa(&s, "2001:db8::1", 1234),
	    sa(&d, "2001:db8::25", 25));
	assert_string_equal(buf, "PROXY TCP6 2001:db8::1 2001:db8::25 1234 25\r\n");
	assert_int_equal(n, strlen(buf));

	n = proxy_v1_encode(buf, sizeof(buf), sa(&s, "::ffff:192.0.2.1", 0),
	    sa(&d, "::ffff:127.0.0.1", 65535));
	assert_string_equal(buf, "PROXY TCP4 192.0.2.1 127.0.0.1 0 65535\r\n");
	assert_int_equal(n, strlen(buf));

	n = proxy_v1_encode(buf, sizeof(buf), sa(&s, "::ffff:192.0.2.1", 1),
	    sa(&d, "127.0.0.1", 2));
	assert_string_equal(buf, "PROXY TCP4 192.0.2.1 127.0.0.1 1 2\r\n");

	/* the longest possible line fits PROXY_V1_MAX */
	n = proxy_v1_encode(buf, sizeof(buf),
	    sa(&s, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535),
	    sa(&d, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", 65535));
	assert_int_equal(n, 104);
}

static void
test_v1_encode_refused(void **state)
{
	struct sockaddr_storage s, d;
	struct sockaddr_un sun;
	char buf[PROXY_V1_MAX];
	const char *want = "PROXY TCP4 192.0.2.1 198.51.100.25 56324 25\r\n";

	assert_int_equal(proxy_v1_encode(buf, sizeof(buf), sa(&s, "192.0.2.1", 1),
	    sa(&d, "2001:db8::1", 2)), 0);
	assert_int_equal(proxy_v1_encode(buf, sizeof(buf),
	    sa(&s, "2001:db8::1", 1), sa(&d, "::ffff:192.0.2.1", 2)), 0);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	assert_int_equal(proxy_v1_encode(buf, sizeof(buf),
	    (struct sockaddr *)&sun, sa(&d, "192.0.2.1", 2)), 0);
	/* room for the line and its NUL, not one octet less */
	sa(&s, "192.0.2.1", 56324);
	sa(&d, "198.51.100.25", 25);
	assert_int_equal(proxy_v1_encode(buf, strlen(want) + 1,
	    (struct sockaddr *)&s, (struct sockaddr *)&d), strlen(want));
	assert_int_equal(proxy_v1_encode(buf, strlen(want),
	    (struct sockaddr *)&s, (struct sockaddr *)&d), 0);
	assert_int_equal(proxy_v1_encode(buf, 0,
	    (struct sockaddr *)&s, (struct sockaddr *)&d), 0);
}

static void
test_v1_round_trip(void **state)
{
	static const struct {
		const char *src, *dst;
		int family;
		const char *want_src, *want_dst;
	} cases[] = {
		{ "192.0.2.1", "198.51.100.25", AF_INET, "192.0.2.1", "198.51.100.25" },
		{ "2001:db8::1", "2001:db8::25", AF_INET6, "2001:db8::1", "2001:db8::25" },
		{ "::ffff:192.0.2.1", "::ffff:10.0.0.1", AF_INET, "192.0.2.1", "10.0.0.1" },
		{ "::", "::1", AF_INET6, "::", "::1" },
	};
	struct sockaddr_storage s, d, src, dst;
	char buf[PROXY_V1_MAX + 8];
	size_t n, consumed, i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		n = proxy_v1_encode(buf, PROXY_V1_MAX, sa(&s, cases[i].src, 40000),
		    sa(&d, cases[i].dst, 25));
		assert_true(n > 0);
		decode_prefixes(buf, n);
		memcpy(buf + n, "EHLO", 4);
		assert_int_equal(decode(buf, n + 4, &src, &dst, &consumed), 1);
		assert_int_equal(consumed, n);
		endpoint_is(&src, cases[i].family, cases[i].want_src, 40000);
		endpoint_is(&dst, cases[i].family, cases[i].want_dst, 25);
	}
}

static void
test_v1_decode_unknown(void **state)
{
	struct sockaddr_storage src, dst;
	size_t consumed;
	const char *h = "PROXY UNKNOWN\r\n";
	const char *h2 = "PROXY UNKNOWN ffff:f::1 ffff:f::2 65535 65535\r\nEHLO x\r\n";

	assert_int_equal(decode(h, strlen(h), &src, &dst, &consumed), 1);
	assert_int_equal(consumed, strlen(h));
	assert_int_equal(src.ss_family, AF_UNSPEC);
	assert_int_equal(dst.ss_family, AF_UNSPEC);
	assert_int_equal(decode(h2, strlen(h2), &src, &dst, &consumed), 1);
	assert_int_equal(consumed, strlen(h2) - 8);
	assert_int_equal(src.ss_family, AF_UNSPEC);
}

static void
test_v1_decode_bad(void **state)
{
	static const char *const bad[] = {
		"GET / HTTP/1.0\r\n",
		"EHLO x\r\n",
		"proxy TCP4 192.0.2.1 192.0.2.2 1 2\r\n",
		"PROXY tcp4 192.0.2.1 192.0.2.2 1 2\r\n",
		"PROXY TCP5 192.0.2.1 192.0.2.2 1 2\r\n",
		"PROXY  TCP4 192.0.2.1 192.0.2.2 1 2\r\n",
		"PROXY TCP4 192.0.2.1 192.0.2.2 1 2\n",
		"PROXY TCP4 192.0.2.1 192.0.2.2 1 2\r\r\n",
		"PROXY TCP4 192.0.2.1  192.0.2.2 1 2\r\n",
		"PROXY TCP4 192.0.2.1 192.0.2.2 1 2 \r\n",
		"PROXY TCP4 192.0.2.1 192.0.2.2 1 2 3\r\n",
		"PROXY TCP4 192.0.2.1 192.0.2.2 1\r\n",
		"PROXY TCP4 192.0.2.1 192.0.2.2\r\n",
		"PROXY TCP4\r\n",
		"PROXY \r\n",
		"PROXY\r\n",
		"PROXY TCP4 192.0.2.1 192.0.2.2 65536 2\r\n",
		"PROXY TCP4 192.0.2.1 192.0.2.2 025 2\r\n",
		"PROXY TCP4 192.0.2.1 192.0.2.2 -1 2\r\n",
		"PROXY TCP4 192.0.2.1 192.0.2.2 1 +2\r\n",
		"PROXY TCP4 192.0.2.1 192.0.2.2 1 999999\r\n",
		"PROXY TCP4 192.0.2.1 192.0.2.2 1 2x\r\n",
		"PROXY TCP4 2001:db8::1 192.0.2.2 1 2\r\n",
		"PROXY TCP6 192.0.2.1 2001:db8::2 1 2\r\n",
		"PROXY TCP4 192.0.2.256 192.0.2.2 1 2\r\n",
		"PROXY TCP4 example.com 192.0.2.2 1 2\r\n",
		"PROXY UNKNOWNX\r\n",
		"PROXY TCP4 192.0.2.1\r192.0.2.2 1 2\r\n",
	};
	char big[200];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct sockaddr_storage src, dst;
		size_t consumed;

		if (decode(bad[i], strlen(bad[i]), &src, &dst, &consumed) != -1)
			fail_msg("\"%s\" not refused", bad[i]);
	}
	decode_bad("PROXY TCP4 192.0.2.1\0 192.0.2.2 1 2\r\n", 37);
	/* no line end within 107 octets */
	memcpy(big, "PROXY UNKNOWN ", 14);
	memset(big + 14, 'x', sizeof(big) - 14);
	decode_bad(big, 107);
	decode_bad(big, sizeof(big));
	/* a 107-octet line is the longest accepted */
	memcpy(big + 105, "\r\n", 2);
	{
		struct sockaddr_storage src, dst;
		size_t consumed;

		assert_int_equal(decode(big, 107, &src, &dst, &consumed), 1);
		assert_int_equal(consumed, 107);
		assert_int_equal(decode(big, 106, &src, &dst, &consumed), 0);
		memcpy(big + 105, "x\r\n", 3);
		assert_int_equal(decode(big, 108, &src, &dst, &consumed), -1);
	}
}

/* ---- v2 ---- */

static void
test_v2_known_answer(void **state)
{
	static const uint8_t want4[] = {
		0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
		0x21, 0x11, 0x00, 0x0c,
		192, 0, 2, 1,
		198, 51, 100, 25,
		0xdc, 0x04,
		0x00, 0x19,
	};
	static const uint8_t want6[] = {
		0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
		0x21, 0x21, 0x00, 0x24,
		0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,
		0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x25,
		0x04, 0xd2,
		0xff, 0xff,
	};
	struct sockaddr_storage s, d;
	uint8_t buf[PROXY_V2_MAX];

	assert_int_equal(proxy_v2_encode(buf, sizeof(buf), sa(&s, "192.0.2.1", 56324),
	    sa(&d, "198.51.100.25", 25)), sizeof(want4));
	assert_memory_equal(buf, want4, sizeof(want4));
	assert_int_equal(proxy_v2_encode(buf, sizeof(buf),
	    sa(&s, "::ffff:192.0.2.1", 56324), sa(&d, "::ffff:198.51.100.25", 25)),
	    sizeof(want4));
	assert_memory_equal(buf, want4, sizeof(want4));
	assert_int_equal(proxy_v2_encode(buf, sizeof(buf), sa(&s, "2001:db8::1", 1234),
	    sa(&d, "2001:db8::25", 65535)), sizeof(want6));
	assert_memory_equal(buf, want6, sizeof(want6));
	assert_int_equal(sizeof(want6), PROXY_V2_MAX);
}

static void
test_v2_encode_refused(void **state)
{
	struct sockaddr_storage s, d;
	uint8_t buf[PROXY_V2_MAX];

	sa(&s, "192.0.2.1", 1);
	sa(&d, "198.51.100.25", 25);
	assert_int_equal(proxy_v2_encode(buf, 28, (struct sockaddr *)&s,
	    (struct sockaddr *)&d), 28);
	assert_int_equal(proxy_v2_encode(buf, 27, (struct sockaddr *)&s,
	    (struct sockaddr *)&d), 0);
	assert_int_equal(proxy_v2_encode(buf, 0, (struct sockaddr *)&s,
	    (struct sockaddr *)&d), 0);
	sa(&s, "2001:db8::1", 1);
	assert_int_equal(proxy_v2_encode(buf, sizeof(buf), (struct sockaddr *)&s,
	    (struct sockaddr *)&d), 0);
	sa(&d, "2001:db8::2", 1);
	assert_int_equal(proxy_v2_encode(buf, PROXY_V2_MAX - 1,
	    (struct sockaddr *)&s, (struct sockaddr *)&d), 0);
}

static void
test_v2_round_trip(void **state)
{
	static const struct {
		const char *src, *dst;
		int family;
		const char *want_src, *want_dst;
	} cases[] = {
		{ "192.0.2.1", "198.51.100.25", AF_INET, "192.0.2.1", "198.51.100.25" },
		{ "2001:db8::1", "2001:db8::25", AF_INET6, "2001:db8::1", "2001:db8::25" },
		{ "::ffff:192.0.2.1", "127.0.0.1", AF_INET, "192.0.2.1", "127.0.0.1" },
		{ "0.0.0.0", "255.255.255.255", AF_INET, "0.0.0.0", "255.255.255.255" },
	};
	struct sockaddr_storage s, d, src, dst;
	uint8_t buf[PROXY_V2_MAX + 8];
	size_t n, consumed, i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		n = proxy_v2_encode(buf, PROXY_V2_MAX, sa(&s, cases[i].src, 65535),
		    sa(&d, cases[i].dst, 10025));
		assert_true(n > 0);
		decode_prefixes(buf, n);
		memcpy(buf + n, "EHLO", 4);
		assert_int_equal(decode(buf, n + 4, &src, &dst, &consumed), 1);
		assert_int_equal(consumed, n);
		endpoint_is(&src, cases[i].family, cases[i].want_src, 65535);
		endpoint_is(&dst, cases[i].family, cases[i].want_dst, 10025);
	}
}

/* A v2 header with the given ver/cmd, family and payload. */
static size_t
v2_header(uint8_t *buf, uint8_t vercmd, uint8_t fam, const uint8_t *payload,
    size_t plen)
{
	memcpy(buf, v2_signature, 12);
	buf[12] = vercmd;
	buf[13] = fam;
	buf[14] = (uint8_t)(plen >> 8);
	buf[15] = (uint8_t)plen;
	if (plen > 0)
		memcpy(buf + 16, payload, plen);
	return 16 + plen;
}

static void
test_v2_local_unspec_tlv(void **state)
{
	static const uint8_t addr4[12] = { 192, 0, 2, 1, 192, 0, 2, 2, 0, 1, 0, 2 };
	uint8_t payload[64], buf[700];
	struct sockaddr_storage src, dst;
	size_t n, consumed;

	/* LOCAL: no addresses, whatever the family byte says */
	n = v2_header(buf, 0x20, 0x00, NULL, 0);
	assert_int_equal(decode(buf, n, &src, &dst, &consumed), 1);
	assert_int_equal(consumed, 16);
	assert_int_equal(src.ss_family, AF_UNSPEC);
	n = v2_header(buf, 0x20, 0x11, addr4, sizeof(addr4));
	assert_int_equal(decode(buf, n, &src, &dst, &consumed), 1);
	assert_int_equal(consumed, 28);
	assert_int_equal(src.ss_family, AF_UNSPEC);
	/* PROXY with UNSPEC family */
	n = v2_header(buf, 0x21, 0x00, NULL, 0);
	assert_int_equal(decode(buf, n, &src, &dst, &consumed), 1);
	assert_int_equal(dst.ss_family, AF_UNSPEC);
	/* addresses followed by well-formed TLVs (ALPN, NOOP padding) */
	memcpy(payload, addr4, sizeof(addr4));
	memcpy(payload + 12, "\x01\x00\x04smtp\x04\x00\x00", 10);
	n = v2_header(buf, 0x21, 0x11, payload, 22);
	decode_prefixes(buf, n);
	assert_int_equal(decode(buf, n, &src, &dst, &consumed), 1);
	assert_int_equal(consumed, 38);
	endpoint_is(&src, AF_INET, "192.0.2.1", 1);
	endpoint_is(&dst, AF_INET, "192.0.2.2", 2);
	/* the largest accepted header: 536 octets in all */
	memset(buf, 0, sizeof(buf));
	memcpy(payload, addr4, sizeof(addr4));
	n = v2_header(buf, 0x21, 0x11, payload, 12);
	buf[14] = (536 - 16) >> 8;
	buf[15] = (536 - 16) & 0xff;
	buf[28] = 0x04;				/* NOOP TLV filling the rest */
	buf[29] = (536 - 31) >> 8;
	buf[30] = (536 - 31) & 0xff;
	assert_int_equal(decode(buf, 536, &src, &dst, &consumed), 1);
	assert_int_equal(consumed, 536);
	buf[15] += 1;
	decode_bad(buf, 537);
}

static void
test_v2_decode_bad(void **state)
{
	static const uint8_t addr4[12] = { 192, 0, 2, 1, 192, 0, 2, 2, 0, 1, 0, 2 };
	uint8_t payload[64], buf[700];
	struct sockaddr_storage src, dst;
	size_t n, consumed;

	/* signature broken at each position */
	for (n = 0; n < 12; n++) {
		v2_header(buf, 0x21, 0x11, addr4, sizeof(addr4));
		buf[n] ^= 0x40;
		decode_bad(buf, 28);
		decode_bad(buf, n + 1);
	}
	n = v2_header(buf, 0x11, 0x11, addr4, sizeof(addr4));	/* version 1 */
	decode_bad(buf, n);
	n = v2_header(buf, 0x31, 0x11, addr4, sizeof(addr4));	/* version 3 */
	decode_bad(buf, n);
	n = v2_header(buf, 0x22, 0x11, addr4, sizeof(addr4));	/* command 2 */
	decode_bad(buf, n);
	n = v2_header(buf, 0x21, 0x12, addr4, sizeof(addr4));	/* UDP */
	decode_bad(buf, n);
	n = v2_header(buf, 0x21, 0x31, addr4, sizeof(addr4));	/* UNIX */
	decode_bad(buf, n);
	n = v2_header(buf, 0x21, 0x41, addr4, sizeof(addr4));	/* unknown */
	decode_bad(buf, n);
	n = v2_header(buf, 0x21, 0x11, addr4, 11);		/* short */
	decode_bad(buf, n);
	n = v2_header(buf, 0x21, 0x21, addr4, 12);		/* IPv6, short */
	decode_bad(buf, n);
	/* TLV area not tiled: 1, 2 octets, or a TLV longer than what is left */
	memcpy(payload, addr4, sizeof(addr4));
	memcpy(payload + 12, "\x01\x00\x05smtp", 7);
	for (n = 13; n <= 19; n++) {
		size_t len = v2_header(buf, 0x21, 0x11, payload, n);

		decode_bad(buf, len);
	}
	/* length beyond the decoder's bound is refused before it arrives */
	n = v2_header(buf, 0x21, 0x11, addr4, sizeof(addr4));
	buf[14] = 0xff;
	buf[15] = 0xff;
	decode_bad(buf, 16);
	/* an honest truncated header just needs more */
	n = v2_header(buf, 0x21, 0x11, addr4, sizeof(addr4));
	assert_int_equal(decode(buf, 27, &src, &dst, &consumed), 0);
	assert_int_equal(decode(buf, 15, &src, &dst, &consumed), 0);
	assert_int_equal(decode(buf, 0, &src, &dst, &consumed), 0);
	decode_bad_str("\r\n\r\n\r");
	decode_bad("\x00", 1);
	decode_bad_str("\xff\xff\xff");
}

/* ---- XCLIENT ---- */

static void
test_xclient(void **state)
{
	struct sockaddr_storage s;
	char buf[512];
	size_t n;

	n = xclient_encode(buf, sizeof(buf), sa(&s, "192.0.2.1", 56324),
	    "mail.example.com", "helo.example", "ESMTP");
	assert_string_equal(buf, "XCLIENT NAME=mail.example.com ADDR=192.0.2.1 "
	    "PORT=56324 HELO=helo.example PROTO=ESMTP\r\n");
	assert_int_equal(n, strlen(buf));

	n = xclient_encode(buf, sizeof(buf), sa(&s, "192.0.2.1", 25), NULL,
	    NULL, NULL);
	assert_string_equal(buf,
	    "XCLIENT NAME=[UNAVAILABLE] ADDR=192.0.2.1 PORT=25\r\n");
	assert_int_equal(n, strlen(buf));

	xclient_encode(buf, sizeof(buf), sa(&s, "2001:db8::1", 1), NULL,
	    "[IPv6:2001:db8::1]", "SMTP");
	assert_string_equal(buf, "XCLIENT NAME=[UNAVAILABLE] ADDR=IPV6:2001:db8::1 "
	    "PORT=1 HELO=[IPv6:2001:db8::1] PROTO=SMTP\r\n");

	xclient_encode(buf, sizeof(buf), sa(&s, "::ffff:192.0.2.1", 2), NULL,
	    NULL, "ESMTP");
	assert_string_equal(buf,
	    "XCLIENT NAME=[UNAVAILABLE] ADDR=192.0.2.1 PORT=2 PROTO=ESMTP\r\n");
}

static void
test_xclient_xtext(void **state)
{
	struct sockaddr_storage s;
	char buf[512];

	xclient_encode(buf, sizeof(buf), sa(&s, "192.0.2.1", 25),
	    "a+b=c", "x y\r\n+\x01\x7f\xc3\xa9~!", NULL);
	assert_string_equal(buf, "XCLIENT NAME=a+2Bb+3Dc ADDR=192.0.2.1 PORT=25 "
	    "HELO=x+20y+0D+0A+2B+01+7F+C3+A9~!\r\n");
	xclient_encode(buf, sizeof(buf), sa(&s, "192.0.2.1", 25), "", "", "");
	assert_string_equal(buf,
	    "XCLIENT NAME= ADDR=192.0.2.1 PORT=25 HELO= PROTO=\r\n");
}

static void
test_xclient_bounds(void **state)
{
	struct sockaddr_storage s;
	struct sockaddr_un sun;
	char buf[512], helo[400];
	const char *want = "XCLIENT NAME=[UNAVAILABLE] ADDR=192.0.2.1 PORT=25\r\n";
	size_t n = strlen(want);

	sa(&s, "192.0.2.1", 25);
	assert_int_equal(xclient_encode(buf, n + 1, (struct sockaddr *)&s, NULL,
	    NULL, NULL), n);
	assert_string_equal(buf, want);
	assert_int_equal(xclient_encode(buf, n, (struct sockaddr *)&s, NULL,
	    NULL, NULL), 0);
	assert_int_equal(xclient_encode(buf, 0, (struct sockaddr *)&s, NULL,
	    NULL, NULL), 0);
	/* escaping triples the size of a hostile HELO; still bounded */
	memset(helo, ' ', sizeof(helo) - 1);
	helo[sizeof(helo) - 1] = '\0';
	assert_int_equal(xclient_encode(buf, sizeof(buf), (struct sockaddr *)&s,
	    NULL, helo, NULL), 0);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	assert_int_equal(xclient_encode(buf, sizeof(buf), (struct sockaddr *)&sun,
	    NULL, NULL, NULL), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_v1_encode),
		cmocka_unit_test(test_v1_encode_refused),
		cmocka_unit_test(test_v1_round_trip),
		cmocka_unit_test(test_v1_decode_unknown),
		cmocka_unit_test(test_v1_decode_bad),
		cmocka_unit_test(test_v2_known_answer),
		cmocka_unit_test(test_v2_encode_refused),
		cmocka_unit_test(test_v2_round_trip),
		cmocka_unit_test(test_v2_local_unspec_tlv),
		cmocka_unit_test(test_v2_decode_bad),
		cmocka_unit_test(test_xclient),
		cmocka_unit_test(test_xclient_xtext),
		cmocka_unit_test(test_xclient_bounds),
	};

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
