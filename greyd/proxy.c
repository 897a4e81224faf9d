/*
 * proxy.c — PROXY protocol v1/v2 headers and the XCLIENT command (see
 * proxy.h).
 *
 * relay.c opens a backend connection and, before any SMTP, writes one of:
 *  - a PROXY v1 line "PROXY TCP4 src dst sport dport\r\n",
 *  - a PROXY v2 binary header (signature, 0x21 = version 2 + PROXY,
 *    0x11 TCP over IPv4 or 0x21 TCP over IPv6, big-endian address length,
 *    source address, destination address, source port, destination port),
 *  - or, after the backend's greeting, "XCLIENT NAME=.. ADDR=.. PORT=.."
 *    (Postfix XCLIENT_README) with every value xtext-encoded (RFC 3461).
 * Specification: haproxy's doc/proxy-protocol.txt.  Addresses go through
 * netaddr, so an IPv4 client seen on an IPv6 socket (::ffff:a.b.c.d) is sent
 * as TCP4 / plain IPv4 and the backend logs the address an admin expects.
 * Encoders NUL-terminate their output when there is room for it and refuse
 * (return 0) when there is not; the XCLIENT line is a C string for the
 * caller's convenience.
 *
 * The decoder is strict: v1 must be exactly "PROXY TCP4|TCP6 a b p q\r\n"
 * with single spaces, numeric ports without leading zeros, within 107
 * octets, or "PROXY UNKNOWN...\r\n"; v2 must have version 2, command LOCAL
 * or PROXY, family TCP4/TCP6/UNSPEC, a length that covers the addresses,
 * well-formed TLVs after them, and fit in PROXY_V2_DECODE_MAX octets.
 * LOCAL, UNSPEC and UNKNOWN headers decode with both addresses AF_UNSPEC
 * (the receiver then uses the real connection endpoints).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "netaddr.h"
#include "proxy.h"

#define PROXY_V1_LINE_MAX	107	/* longest v1 line, CRLF included */
#define PROXY_V2_HEADER		16	/* signature, ver/cmd, family, len */
#define PROXY_V2_DECODE_MAX	536	/* largest v2 header accepted, TLVs incl. */
#define PROXY_V2_VERSION	0x20
#define PROXY_V2_CMD_LOCAL	0x00
#define PROXY_V2_CMD_PROXY	0x01
#define PROXY_V2_FAM_UNSPEC	0x00
#define PROXY_V2_FAM_TCP4	0x11
#define PROXY_V2_FAM_TCP6	0x21
#define PROXY_PORT_DIGITS	5

static const uint8_t proxy_v2_signature[12] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a
};
static const char proxy_v1_signature[] = "PROXY ";

struct proxy_endpoint {
	struct netaddr addr;	/* IPv4-mapped already made IPv4 */
	uint16_t port;		/* host order */
};

static int
proxy_endpoint_from(const struct sockaddr *sa, struct proxy_endpoint *ep)
{
	if (netaddr_from_sockaddr(&ep->addr, sa) == -1)
		return -1;
	if (sa->sa_family == AF_INET)
		ep->port = ntohs(((const struct sockaddr_in *)sa)->sin_port);
	else
		ep->port = ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	return 0;
}

/* Both endpoints, and they must end up in the same family. */
static int
proxy_endpoints(const struct sockaddr *src, const struct sockaddr *dst,
    struct proxy_endpoint *s, struct proxy_endpoint *d)
{
	if (proxy_endpoint_from(src, s) == -1 ||
	    proxy_endpoint_from(dst, d) == -1 ||
	    s->addr.family != d->addr.family)
		return -1;
	return 0;
}

size_t
proxy_v1_encode(char *buf, size_t len, const struct sockaddr *src,
    const struct sockaddr *dst)
{
	struct proxy_endpoint s, d;
	char stext[NETADDR_STRLEN], dtext[NETADDR_STRLEN];
	int n;

	if (proxy_endpoints(src, dst, &s, &d) == -1)
		return 0;
	netaddr_format(&s.addr, stext, sizeof(stext));
	netaddr_format(&d.addr, dtext, sizeof(dtext));
	n = snprintf(buf, len, "PROXY %s %s %s %u %u\r\n",
	    s.addr.family == AF_INET ? "TCP4" : "TCP6", stext, dtext,
	    (unsigned)s.port, (unsigned)d.port);
	if (n < 0 || (size_t)n >= len)
		return 0;
	return (size_t)n;
}

static uint8_t *
proxy_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)(v & 0xff);
	return p + 2;
}

size_t
proxy_v2_encode(uint8_t *buf, size_t len, const struct sockaddr *src,
    const struct sockaddr *dst)
{
	struct proxy_endpoint s, d;
	size_t alen, total;
	uint8_t *p;

	if (proxy_endpoints(src, dst, &s, &d) == -1)
		return 0;
	alen = s.addr.family == AF_INET ? 4 : 16;
	total = PROXY_V2_HEADER + 2 * alen + 4;
	if (total > len)
		return 0;
	memcpy(buf, proxy_v2_signature, sizeof(proxy_v2_signature));
	buf[12] = PROXY_V2_VERSION | PROXY_V2_CMD_PROXY;
	buf[13] = s.addr.family == AF_INET ? PROXY_V2_FAM_TCP4 :
	    PROXY_V2_FAM_TCP6;
	p = proxy_put16(buf + 14, (uint16_t)(total - PROXY_V2_HEADER));
	memcpy(p, s.addr.bytes, alen);
	memcpy(p + alen, d.addr.bytes, alen);
	p = proxy_put16(p + 2 * alen, s.port);
	proxy_put16(p, d.port);
	return total;
}

/* ---- decoder ---- */

static uint16_t
proxy_get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void
proxy_set_sockaddr(struct sockaddr_storage *ss, int family,
    const uint8_t *addr, uint16_t port)
{
	struct netaddr a;

	memset(&a, 0, sizeof(a));
	a.family = family;
	memcpy(a.bytes, addr, family == AF_INET ? 4 : 16);
	netaddr_to_sockaddr(&a, port, ss);
}

/* TLVs: type, 16-bit length, value; they must tile the rest exactly. */
static int
proxy_v2_check_tlvs(const uint8_t *p, size_t n)
{
	size_t vlen;

	while (n > 0) {
		if (n < 3)
			return -1;
		vlen = proxy_get16(p + 1);
		if (vlen > n - 3)
			return -1;
		p += 3 + vlen;
		n -= 3 + vlen;
	}
	return 0;
}

/* Addresses of a complete v2 header of payload plen at buf. */
static int
proxy_v2_addresses(const uint8_t *buf, size_t plen,
    struct sockaddr_storage *src, struct sockaddr_storage *dst)
{
	const uint8_t *p = buf + PROXY_V2_HEADER;
	int family;
	size_t alen, need;

	if ((buf[12] & 0x0f) == PROXY_V2_CMD_LOCAL ||
	    buf[13] == PROXY_V2_FAM_UNSPEC)
		return 0;
	if (buf[13] == PROXY_V2_FAM_TCP4) {
		family = AF_INET;
		alen = 4;
	} else if (buf[13] == PROXY_V2_FAM_TCP6) {
		family = AF_INET6;
		alen = 16;
	} else
		return -1;
	need = 2 * alen + 4;
	if (plen < need || proxy_v2_check_tlvs(p + need, plen - need) == -1)
		return -1;
	proxy_set_sockaddr(src, family, p, proxy_get16(p + 2 * alen));
	proxy_set_sockaddr(dst, family, p + alen, proxy_get16(p + 2 * alen + 2));
	return 0;
}

static int
proxy_v2_decode(const uint8_t *buf, size_t len, struct sockaddr_storage *src,
    struct sockaddr_storage *dst, size_t *consumed)
{
	size_t n = len < sizeof(proxy_v2_signature) ? len :
	    sizeof(proxy_v2_signature);
	size_t plen;

	if (memcmp(buf, proxy_v2_signature, n) != 0)
		return -1;
	if (len < PROXY_V2_HEADER)
		return 0;
	if ((buf[12] & 0xf0) != PROXY_V2_VERSION ||
	    (buf[12] & 0x0f) > PROXY_V2_CMD_PROXY)
		return -1;
	plen = proxy_get16(buf + 14);
	if (PROXY_V2_HEADER + plen > PROXY_V2_DECODE_MAX)
		return -1;
	if (len < PROXY_V2_HEADER + plen)
		return 0;
	if (proxy_v2_addresses(buf, plen, src, dst) == -1)
		return -1;
	*consumed = PROXY_V2_HEADER + plen;
	return 1;
}

/* Decimal port: 1-5 digits, no leading zero, at most 65535. */
static int
proxy_parse_port(const char *s, uint16_t *port)
{
	unsigned long v = 0;
	size_t i;

	if (s[0] == '\0' || (s[0] == '0' && s[1] != '\0'))
		return -1;
	for (i = 0; s[i] != '\0'; i++) {
		if (i >= PROXY_PORT_DIGITS || s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v > 65535)
		return -1;
	*port = (uint16_t)v;
	return 0;
}

/* "a b p q" after "TCP4 " or "TCP6 ": exactly four single-space fields. */
static int
proxy_v1_fields(char *text, int family, struct sockaddr_storage *src,
    struct sockaddr_storage *dst)
{
	char *field[4];
	uint8_t saddr[16], daddr[16];
	uint16_t sport, dport;
	int i;

	for (i = 0; i < 4; i++)
		if ((field[i] = strsep(&text, " ")) == NULL)
			return -1;
	if (text != NULL ||
	    inet_pton(family, field[0], saddr) != 1 ||
	    inet_pton(family, field[1], daddr) != 1 ||
	    proxy_parse_port(field[2], &sport) == -1 ||
	    proxy_parse_port(field[3], &dport) == -1)
		return -1;
	proxy_set_sockaddr(src, family, saddr, sport);
	proxy_set_sockaddr(dst, family, daddr, dport);
	return 0;
}

static int
proxy_v1_decode(const uint8_t *buf, size_t len, struct sockaddr_storage *src,
    struct sockaddr_storage *dst, size_t *consumed)
{
	size_t n = len < sizeof(proxy_v1_signature) - 1 ? len :
	    sizeof(proxy_v1_signature) - 1;
	char text[PROXY_V1_LINE_MAX];
	const uint8_t *lf;
	size_t linelen;
	int r = 0;

	if (memcmp(buf, proxy_v1_signature, n) != 0)
		return -1;
	lf = memchr(buf, '\n', len < PROXY_V1_LINE_MAX ? len :
	    PROXY_V1_LINE_MAX);
	if (lf == NULL)
		return len >= PROXY_V1_LINE_MAX ? -1 : 0;
	linelen = (size_t)(lf - buf) + 1;
	if (linelen < sizeof(proxy_v1_signature) + 1 || lf[-1] != '\r')
		return -1;
	memcpy(text, buf, linelen - 2);
	text[linelen - 2] = '\0';
	if (strlen(text) != linelen - 2 || strchr(text, '\r') != NULL)
		return -1;
	if (strncmp(text + 6, "UNKNOWN", 7) == 0 &&
	    (text[13] == '\0' || text[13] == ' '))
		r = 0;
	else if (strncmp(text + 6, "TCP4 ", 5) == 0)
		r = proxy_v1_fields(text + 11, AF_INET, src, dst);
	else if (strncmp(text + 6, "TCP6 ", 5) == 0)
		r = proxy_v1_fields(text + 11, AF_INET6, src, dst);
	else
		r = -1;
	if (r == -1)
		return -1;
	*consumed = linelen;
	return 1;
}

int
proxy_decode(const uint8_t *buf, size_t len, struct sockaddr_storage *src,
    struct sockaddr_storage *dst, size_t *consumed)
{
	memset(src, 0, sizeof(*src));
	memset(dst, 0, sizeof(*dst));
	src->ss_family = AF_UNSPEC;
	dst->ss_family = AF_UNSPEC;
	if (len == 0)
		return 0;
	if (buf[0] == proxy_v2_signature[0])
		return proxy_v2_decode(buf, len, src, dst, consumed);
	if (buf[0] == (uint8_t)proxy_v1_signature[0])
		return proxy_v1_decode(buf, len, src, dst, consumed);
	return -1;
}

/* ---- XCLIENT ---- */

struct proxy_out {
	char *buf;
	size_t len;
	size_t off;
	bool full;
};

static void
proxy_out_char(struct proxy_out *o, char c)
{
	if (o->off + 1 >= o->len) {	/* keep room for the NUL */
		o->full = true;
		return;
	}
	o->buf[o->off++] = c;
}

static void
proxy_out_str(struct proxy_out *o, const char *s)
{
	for (; *s != '\0' && !o->full; s++)
		proxy_out_char(o, *s);
}

/* RFC 3461 xtext: '!'..'~' except '+' and '=' as is, the rest as +XX. */
static void
proxy_out_xtext(struct proxy_out *o, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	unsigned char c;

	for (; *s != '\0' && !o->full; s++) {
		c = (unsigned char)*s;
		if (c >= '!' && c <= '~' && c != '+' && c != '=') {
			proxy_out_char(o, (char)c);
			continue;
		}
		proxy_out_char(o, '+');
		proxy_out_char(o, hex[c >> 4]);
		proxy_out_char(o, hex[c & 0x0f]);
	}
}

static void
proxy_out_attr(struct proxy_out *o, const char *name, const char *value)
{
	proxy_out_char(o, ' ');
	proxy_out_str(o, name);
	proxy_out_char(o, '=');
	proxy_out_xtext(o, value);
}

size_t
xclient_encode(char *buf, size_t len, const struct sockaddr *src,
    const char *name, const char *helo, const char *proto)
{
	struct proxy_out o = { buf, len, 0, false };
	struct proxy_endpoint ep;
	char addr[NETADDR_STRLEN + 5], port[8];
	size_t prefix;

	if (len == 0 || proxy_endpoint_from(src, &ep) == -1)
		return 0;
	prefix = strlcpy(addr, ep.addr.family == AF_INET6 ? "IPV6:" : "",
	    sizeof(addr));
	netaddr_format(&ep.addr, addr + prefix, sizeof(addr) - prefix);
	snprintf(port, sizeof(port), "%u", (unsigned)ep.port);
	proxy_out_str(&o, "XCLIENT");
	proxy_out_attr(&o, "NAME", name != NULL ? name : "[UNAVAILABLE]");
	proxy_out_attr(&o, "ADDR", addr);
	proxy_out_attr(&o, "PORT", port);
	if (helo != NULL)
		proxy_out_attr(&o, "HELO", helo);
	if (proto != NULL)
		proxy_out_attr(&o, "PROTO", proto);
	proxy_out_str(&o, "\r\n");
	if (o.full)
		return 0;
	buf[o.off] = '\0';
	return o.off;
}
