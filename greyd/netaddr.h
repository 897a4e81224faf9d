/*
 * netaddr.h — IP addresses and prefixes without sockets (pure).
 *
 * greyd keys everything by client address: the greylist client key is the
 * address masked to greylist_ipv4_prefix / greylist_ipv6_prefix, allow lists
 * are CIDR lists, the white database holds "address/prefix" keys.  This module
 * parses, masks, compares and formats them.  IPv4-mapped IPv6 addresses
 * (::ffff:a.b.c.d, as an IPv6 listener sees IPv4 clients) are turned into
 * plain IPv4 so one client has one key.
 */
#ifndef GREYD_NETADDR_H
#define GREYD_NETADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* "ffff:ffff:...:255.255.255.255/128" plus NUL fits. */
#define NETADDR_STRLEN 64

struct netaddr {
	int family;		/* AF_INET or AF_INET6 */
	uint8_t bytes[16];	/* network order; IPv4 uses bytes[0..3] */
};

struct cidr {
	struct netaddr net;	/* already masked to prefix */
	int prefix;
};

/* 32 for IPv4, 128 for IPv6. */
int netaddr_maxprefix(const struct netaddr *a);
/* From a socket address; maps ::ffff:0:0/96 to IPv4. 0 ok, -1 bad family. */
int netaddr_from_sockaddr(struct netaddr *a, const struct sockaddr *sa);
/* Fill a sockaddr (port in host order). Returns its length. */
socklen_t netaddr_to_sockaddr(const struct netaddr *a, uint16_t port,
    struct sockaddr_storage *ss);
/* Numeric address text, IPv4 or IPv6 (no brackets). 0 ok, -1 bad. */
int netaddr_parse(struct netaddr *a, const char *s);
/* "a.b.c.d/len", "x::y/len" or a bare address (full prefix). 0 ok, -1 bad.
 * The host bits must be zero after masking is applied: the result is masked. */
int netaddr_parse_cidr(struct cidr *c, const char *s);
/* Zero the bits after prefix. */
void netaddr_mask(struct netaddr *a, int prefix);
bool netaddr_in_cidr(const struct netaddr *a, const struct cidr *c);
/* The host itself: 127.0.0.0/8 or ::1. */
bool netaddr_is_loopback(const struct netaddr *a);
bool netaddr_in_cidr_list(const struct netaddr *a, const struct cidr *list,
    size_t n);
/* Numeric text of the address (no brackets). */
void netaddr_format(const struct netaddr *a, char *buf, size_t len);
/* Client key: the address masked to prefix, as "192.0.2.0/24". */
void netaddr_key(const struct netaddr *a, int prefix, char *buf, size_t len);

#endif
