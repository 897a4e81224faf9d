/*
 * t/fuzz/proxy_fuzz.c — libFuzzer target for greyd/proxy.c.
 *
 * proxy_decode gets the raw input.  When it accepts a header, every
 * shorter prefix must only ask for more (a valid header is never refused
 * half-way), and decoded TCP endpoints are encoded again as v1, v2 and
 * XCLIENT and the PROXY headers decoded back to the same endpoints.  The
 * input is also used as the XCLIENT HELO value, whose xtext output must
 * stay printable and bounded.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include "proxy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x) do { if (!(x)) abort(); } while (0)

static bool
same_endpoint(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const struct sockaddr_in *)a;
		const struct sockaddr_in *y = (const struct sockaddr_in *)b;

		return x->sin_port == y->sin_port &&
		    x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	{
		const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)a;
		const struct sockaddr_in6 *y = (const struct sockaddr_in6 *)b;

		return x->sin6_port == y->sin6_port &&
		    memcmp(&x->sin6_addr, &y->sin6_addr, 16) == 0;
	}
}

static bool
is_mapped(const struct sockaddr_storage *ss)
{
	return ss->ss_family == AF_INET6 &&
	    IN6_IS_ADDR_V4MAPPED(&((const struct sockaddr_in6 *)ss)->sin6_addr);
}

static void
reencode(const struct sockaddr_storage *src, const struct sockaddr_storage *dst)
{
	struct sockaddr_storage s2, d2;
	char line[PROXY_V1_MAX], xclient[512];
	uint8_t bin[PROXY_V2_MAX];
	size_t n, consumed;

	if (is_mapped(src) != is_mapped(dst)) {	/* IPv4 vs IPv6 once unmapped */
		CHECK(proxy_v1_encode(line, sizeof(line),
		    (const struct sockaddr *)src, (const struct sockaddr *)dst) == 0);
		CHECK(proxy_v2_encode(bin, sizeof(bin),
		    (const struct sockaddr *)src, (const struct sockaddr *)dst) == 0);
		return;
	}
	n = proxy_v1_encode(line, sizeof(line), (const struct sockaddr *)src,
	    (const struct sockaddr *)dst);
	CHECK(n > 0);
	CHECK(proxy_decode((const uint8_t *)line, n, &s2, &d2, &consumed) == 1);
	CHECK(consumed == n);
	if (!is_mapped(src) && !is_mapped(dst))
		CHECK(same_endpoint(src, &s2) && same_endpoint(dst, &d2));
	n = proxy_v2_encode(bin, sizeof(bin), (const struct sockaddr *)src,
	    (const struct sockaddr *)dst);
	CHECK(n > 0);
	CHECK(proxy_decode(bin, n, &s2, &d2, &consumed) == 1);
	CHECK(consumed == n);
	if (!is_mapped(src) && !is_mapped(dst))
		CHECK(same_endpoint(src, &s2) && same_endpoint(dst, &d2));
	CHECK(xclient_encode(xclient, sizeof(xclient),
	    (const struct sockaddr *)src, NULL, "helo", "ESMTP") > 0);
}

static void
fuzz_decode(const uint8_t *data, size_t size)
{
	struct sockaddr_storage src, dst;
	size_t consumed = 0, i;
	int r = proxy_decode(data, size, &src, &dst, &consumed);

	CHECK(r >= -1 && r <= 1);
	if (r != 1)
		return;
	CHECK(consumed > 0 && consumed <= size);
	CHECK(src.ss_family == dst.ss_family);
	for (i = 0; i < consumed; i++) {
		struct sockaddr_storage s2, d2;
		size_t c2;

		CHECK(proxy_decode(data, i, &s2, &d2, &c2) == 0);
	}
	if (src.ss_family == AF_INET || src.ss_family == AF_INET6)
		reencode(&src, &dst);
	else
		CHECK(src.ss_family == AF_UNSPEC);
}

static void
fuzz_xclient(const uint8_t *data, size_t size)
{
	struct sockaddr_in sin;
	char helo[300], out[1024];
	size_t n, i, len = size < sizeof(helo) - 1 ? size : sizeof(helo) - 1;

	memcpy(helo, data, len);
	helo[len] = '\0';
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(0xc0000201);
	n = xclient_encode(out, sizeof(out), (struct sockaddr *)&sin, helo, helo,
	    helo);
	CHECK(n < sizeof(out));
	if (n == 0)
		return;
	CHECK(n >= 2 && out[n - 2] == '\r' && out[n - 1] == '\n' && out[n] == '\0');
	for (i = 0; i + 2 < n; i++)
		CHECK(out[i] == ' ' || (out[i] >= '!' && out[i] <= '~'));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_decode(data, size);
	fuzz_xclient(data, size);
	return 0;
}
