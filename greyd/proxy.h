/*
 * proxy.h — how the real client's identity reaches the backend MTA (pure):
 * HAProxy PROXY protocol v1 (text) and v2 (binary) headers, and Postfix's
 * XCLIENT command.  relay.c writes them; the decoder exists for the unit
 * tests and the fuzzer, and for any future listener that sits behind a proxy.
 */
#ifndef GREYD_PROXY_H
#define GREYD_PROXY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define PROXY_V1_MAX	108	/* spec: the longest v1 line, CRLF included */
#define PROXY_V2_MAX	(16 + 36)

/* Write a v1 line "PROXY TCP4 src dst sport dport\r\n".  src and dst must
 * be the same family (IPv4-mapped IPv6 is written as TCP4).  Returns the
 * length written, 0 if it does not fit or the families differ. */
size_t proxy_v1_encode(char *buf, size_t len, const struct sockaddr *src,
    const struct sockaddr *dst);
/* Write a v2 header (PROXY command, TCP over IPv4/IPv6).  Returns length or 0. */
size_t proxy_v2_encode(uint8_t *buf, size_t len, const struct sockaddr *src,
    const struct sockaddr *dst);
/*
 * Decode a v1 or v2 header at the start of buf.  Returns 1 and fills
 * src/dst/consumed when complete, 0 if more bytes are needed, -1 if invalid.
 */
int proxy_decode(const uint8_t *buf, size_t len, struct sockaddr_storage *src,
    struct sockaddr_storage *dst, size_t *consumed);
/*
 * "XCLIENT NAME=... ADDR=... PORT=... HELO=... PROTO=...\r\n" with xtext
 * encoding (RFC 3461) of each value; IPv6 ADDR as "IPV6:addr".  name, helo
 * and proto may be NULL (omitted; NAME then "[UNAVAILABLE]").  Returns the
 * length or 0 if it does not fit.
 */
size_t xclient_encode(char *buf, size_t len, const struct sockaddr *src,
    const char *name, const char *helo, const char *proto);

#endif
