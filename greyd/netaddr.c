/*
 * netaddr.c — IP addresses and prefixes without sockets (see netaddr.h).
 *
 * Pure helpers used by the listener (client address of an accepted socket),
 * the greylist (client key = address masked to a prefix), the allow/deny
 * lists (CIDR matching) and proxy.c (header encoding).  Text goes through
 * inet_pton/inet_ntop only, so every accepted form is one the C library
 * already knows to be numeric; nothing here resolves names.
 *
 * IPv4-mapped IPv6 (::ffff:a.b.c.d) becomes plain IPv4 wherever an address
 * enters: from a socket, from text, and in a CIDR whose prefix is at least
 * 96 (::ffff:192.0.2.0/120 is 192.0.2.0/24).  A mapped CIDR with a shorter
 * prefix (e.g. ::/0) stays IPv6 and so never matches an IPv4 client.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "netaddr.h"

static const uint8_t netaddr_v4mapped[12] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
};

int
netaddr_maxprefix(const struct netaddr *a)
{
	return a->family == AF_INET ? 32 : 128;
}

static bool
netaddr_is_v4mapped(const struct netaddr *a)
{
	return a->family == AF_INET6 &&
	    memcmp(a->bytes, netaddr_v4mapped, sizeof(netaddr_v4mapped)) == 0;
}

/* ::ffff:a.b.c.d -> a.b.c.d; anything else unchanged. */
static void
netaddr_unmap(struct netaddr *a)
{
	uint8_t v4[4];

	if (!netaddr_is_v4mapped(a))
		return;
	memcpy(v4, a->bytes + 12, sizeof(v4));
	memset(a->bytes, 0, sizeof(a->bytes));
	memcpy(a->bytes, v4, sizeof(v4));
	a->family = AF_INET;
}

int
netaddr_from_sockaddr(struct netaddr *a, const struct sockaddr *sa)
{
	memset(a, 0, sizeof(*a));
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;

		a->family = AF_INET;
		memcpy(a->bytes, &sin->sin_addr, 4);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 =
		    (const struct sockaddr_in6 *)sa;

		a->family = AF_INET6;
		memcpy(a->bytes, &sin6->sin6_addr, 16);
		netaddr_unmap(a);
		return 0;
	}
	return -1;
}

socklen_t
netaddr_to_sockaddr(const struct netaddr *a, uint16_t port,
    struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (a->family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		memcpy(&sin->sin_addr, a->bytes, 4);
		return sizeof(*sin);
	}
	if (a->family == AF_INET6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		memcpy(&sin6->sin6_addr, a->bytes, 16);
		return sizeof(*sin6);
	}
	return 0;
}

/* Parse without unmapping, so the CIDR parser can adjust the prefix. */
static int
netaddr_parse_raw(struct netaddr *a, const char *s)
{
	memset(a, 0, sizeof(*a));
	if (inet_pton(AF_INET, s, a->bytes) == 1) {
		a->family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, s, a->bytes) == 1) {
		a->family = AF_INET6;
		return 0;
	}
	memset(a, 0, sizeof(*a));
	return -1;
}

int
netaddr_parse(struct netaddr *a, const char *s)
{
	if (netaddr_parse_raw(a, s) == -1)
		return -1;
	netaddr_unmap(a);
	return 0;
}

/* Decimal 0..max, digits only, no sign, no leading zero. -1 if bad. */
static int
netaddr_parse_prefix(const char *s, int max)
{
	int v = 0;

	if (*s == '\0' || (s[0] == '0' && s[1] != '\0'))
		return -1;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (*s - '0');
		if (v > max)
			return -1;
	}
	return v;
}

int
netaddr_parse_cidr(struct cidr *c, const char *s)
{
	char text[NETADDR_STRLEN];
	char *slash;
	bool mapped;

	memset(c, 0, sizeof(*c));
	if (strlcpy(text, s, sizeof(text)) >= sizeof(text))
		return -1;
	if ((slash = strchr(text, '/')) != NULL)
		*slash = '\0';
	if (netaddr_parse_raw(&c->net, text) == -1)
		return -1;
	c->prefix = netaddr_maxprefix(&c->net);
	if (slash != NULL &&
	    (c->prefix = netaddr_parse_prefix(slash + 1, c->prefix)) == -1)
		return -1;
	mapped = netaddr_is_v4mapped(&c->net);
	if (mapped && c->prefix >= 96) {
		netaddr_unmap(&c->net);
		c->prefix -= 96;
	}
	netaddr_mask(&c->net, c->prefix);
	return 0;
}

void
netaddr_mask(struct netaddr *a, int prefix)
{
	int max = netaddr_maxprefix(a);
	int i, nbytes = max / 8;

	if (prefix < 0)
		prefix = 0;
	for (i = 0; i < nbytes; i++) {
		int keep = prefix - i * 8;

		if (keep >= 8)
			continue;
		a->bytes[i] &= keep <= 0 ? 0 : (uint8_t)(0xff << (8 - keep));
	}
	for (i = nbytes; i < (int)sizeof(a->bytes); i++)
		a->bytes[i] = 0;
}

bool
netaddr_in_cidr(const struct netaddr *a, const struct cidr *c)
{
	struct netaddr masked = *a;

	if (a->family != c->net.family)
		return false;
	netaddr_mask(&masked, c->prefix);
	return memcmp(masked.bytes, c->net.bytes, sizeof(masked.bytes)) == 0;
}

bool
netaddr_is_loopback(const struct netaddr *a)
{
	static const uint8_t v6[16] = { [15] = 1 };

	if (a->family == AF_INET)
		return a->bytes[0] == 127;
	return a->family == AF_INET6 && memcmp(a->bytes, v6, 16) == 0;
}

bool
netaddr_in_cidr_list(const struct netaddr *a, const struct cidr *list,
    size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (netaddr_in_cidr(a, &list[i]))
			return true;
	return false;
}

void
netaddr_format(const struct netaddr *a, char *buf, size_t len)
{
	char text[NETADDR_STRLEN];

	if (len == 0)
		return;
	if ((a->family != AF_INET && a->family != AF_INET6) ||
	    inet_ntop(a->family, a->bytes, text, sizeof(text)) == NULL)
		strlcpy(text, "?", sizeof(text));
	strlcpy(buf, text, len);
}

void
netaddr_key(const struct netaddr *a, int prefix, char *buf, size_t len)
{
	struct netaddr masked = *a;
	char text[NETADDR_STRLEN];
	int max = netaddr_maxprefix(a);

	if (len == 0)
		return;
	if (prefix < 0)
		prefix = 0;
	if (prefix > max)
		prefix = max;
	netaddr_mask(&masked, prefix);
	netaddr_format(&masked, text, sizeof(text));
	snprintf(buf, len, "%s/%d", text, prefix);
}
