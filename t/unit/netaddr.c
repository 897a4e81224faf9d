/*
 * t/unit/netaddr.c — unit tests for greyd/netaddr.c: parsing, IPv4-mapped
 * unmapping, masking, CIDR matching and client keys.  TAP output for prove.
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

#include "netaddr.h"

static void
format_of(const char *in, const char *want)
{
	struct netaddr a;
	char buf[NETADDR_STRLEN];

	assert_int_equal(netaddr_parse(&a, in), 0);
	netaddr_format(&a, buf, sizeof(buf));
	assert_string_equal(buf, want);
}

static void
key_of(const char *in, int prefix, const char *want)
{
	struct netaddr a;
	char buf[NETADDR_STRLEN];

	assert_int_equal(netaddr_parse(&a, in), 0);
	netaddr_key(&a, prefix, buf, sizeof(buf));
	assert_string_equal(buf, want);
}

static void
cidr_of(const char *in, int family, const char *net, int prefix)
{
	struct cidr c;
	char buf[NETADDR_STRLEN];

	assert_int_equal(netaddr_parse_cidr(&c, in), 0);
	assert_int_equal(c.net.family, family);
	assert_int_equal(c.prefix, prefix);
	netaddr_format(&c.net, buf, sizeof(buf));
	assert_string_equal(buf, net);
}

static void
test_parse_ipv4(void **state)
{
	struct netaddr a;
	const uint8_t want[16] = { 192, 0, 2, 1 };

	assert_int_equal(netaddr_parse(&a, "192.0.2.1"), 0);
	assert_int_equal(a.family, AF_INET);
	assert_memory_equal(a.bytes, want, 16);
	assert_int_equal(netaddr_maxprefix(&a), 32);
	format_of("0.0.0.0", "0.0.0.0");
	format_of("255.255.255.255", "255.255.255.255");
}

static void
test_parse_ipv6(void **state)
{
	struct netaddr a;

	assert_int_equal(netaddr_parse(&a, "2001:db8::1"), 0);
	assert_int_equal(a.family, AF_INET6);
	assert_int_equal(a.bytes[0], 0x20);
	assert_int_equal(a.bytes[1], 0x01);
	assert_int_equal(a.bytes[15], 1);
	assert_int_equal(netaddr_maxprefix(&a), 128);
	format_of("2001:0DB8:0000:0000:0000:0000:0000:0001", "2001:db8::1");
	format_of("::1", "::1");
	format_of("::", "::");
}

static void
test_parse_mapped(void **state)
{
	struct netaddr a;

	assert_int_equal(netaddr_parse(&a, "::ffff:192.0.2.7"), 0);
	assert_int_equal(a.family, AF_INET);
	format_of("::ffff:192.0.2.7", "192.0.2.7");
	format_of("::FFFF:c000:0207", "192.0.2.7");
	/* IPv4-compatible (deprecated) and NAT64 stay IPv6 */
	format_of("::192.0.2.7", "::192.0.2.7");
	format_of("64:ff9b::192.0.2.7", "64:ff9b::c000:207");
}

static void
test_parse_invalid(void **state)
{
	static const char *const bad[] = {
		"", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1.2.3.4 ", " 1.2.3.4",
		"[::1]", "::g", "1:2:3:4:5:6:7:8:9", "example.com", "1.2.3.4/24",
		"2001:db8::1%eth0", "-1.2.3.4",
	};
	struct netaddr a;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(netaddr_parse(&a, bad[i]), -1);
}

static void
test_from_sockaddr(void **state)
{
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;
	struct sockaddr_un sun;
	struct netaddr a;
	char buf[NETADDR_STRLEN];

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	inet_pton(AF_INET, "198.51.100.9", &sin.sin_addr);
	assert_int_equal(netaddr_from_sockaddr(&a, (struct sockaddr *)&sin), 0);
	netaddr_format(&a, buf, sizeof(buf));
	assert_string_equal(buf, "198.51.100.9");

	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	inet_pton(AF_INET6, "2001:db8:1::5", &sin6.sin6_addr);
	assert_int_equal(netaddr_from_sockaddr(&a, (struct sockaddr *)&sin6), 0);
	assert_int_equal(a.family, AF_INET6);
	netaddr_format(&a, buf, sizeof(buf));
	assert_string_equal(buf, "2001:db8:1::5");

	inet_pton(AF_INET6, "::ffff:198.51.100.9", &sin6.sin6_addr);
	assert_int_equal(netaddr_from_sockaddr(&a, (struct sockaddr *)&sin6), 0);
	assert_int_equal(a.family, AF_INET);
	netaddr_format(&a, buf, sizeof(buf));
	assert_string_equal(buf, "198.51.100.9");

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	assert_int_equal(netaddr_from_sockaddr(&a, (struct sockaddr *)&sun), -1);
}

static void
test_to_sockaddr(void **state)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	struct netaddr a, back;

	assert_int_equal(netaddr_parse(&a, "192.0.2.1"), 0);
	assert_int_equal(netaddr_to_sockaddr(&a, 10025, &ss), sizeof(*sin));
	assert_int_equal(sin->sin_family, AF_INET);
	assert_int_equal(ntohs(sin->sin_port), 10025);
	assert_int_equal(netaddr_from_sockaddr(&back, (struct sockaddr *)&ss), 0);
	assert_memory_equal(&a, &back, sizeof(a));

	assert_int_equal(netaddr_parse(&a, "2001:db8::25"), 0);
	assert_int_equal(netaddr_to_sockaddr(&a, 25, &ss), sizeof(*sin6));
	assert_int_equal(sin6->sin6_family, AF_INET6);
	assert_int_equal(ntohs(sin6->sin6_port), 25);
	assert_int_equal(netaddr_from_sockaddr(&back, (struct sockaddr *)&ss), 0);
	assert_memory_equal(&a, &back, sizeof(a));

	memset(&a, 0, sizeof(a));
	a.family = AF_UNIX;
	assert_int_equal(netaddr_to_sockaddr(&a, 25, &ss), 0);
}

static void
test_mask(void **state)
{
	static const struct {
		const char *addr;
		int prefix;
		const char *want;
	} cases[] = {
		{ "255.255.255.255", 0, "0.0.0.0" },
		{ "255.255.255.255", 1, "128.0.0.0" },
		{ "255.255.255.255", 7, "254.0.0.0" },
		{ "255.255.255.255", 9, "255.128.0.0" },
		{ "255.255.255.255", 24, "255.255.255.0" },
		{ "255.255.255.255", 31, "255.255.255.254" },
		{ "255.255.255.255", 32, "255.255.255.255" },
		{ "255.255.255.255", -5, "0.0.0.0" },
		{ "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", 64, "2001:db8:ffff:ffff::" },
		{ "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", 48, "2001:db8:ffff::" },
		{ "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", 127,
		    "2001:db8:ffff:ffff:ffff:ffff:ffff:fffe" },
		{ "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", 128,
		    "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff" },
		{ "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", 0, "::" },
	};
	struct netaddr a;
	char buf[NETADDR_STRLEN];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(netaddr_parse(&a, cases[i].addr), 0);
		netaddr_mask(&a, cases[i].prefix);
		netaddr_format(&a, buf, sizeof(buf));
		assert_string_equal(buf, cases[i].want);
	}
}

static void
test_parse_cidr(void **state)
{
	cidr_of("192.0.2.0/24", AF_INET, "192.0.2.0", 24);
	cidr_of("192.0.2.77/24", AF_INET, "192.0.2.0", 24);
	cidr_of("192.0.2.77", AF_INET, "192.0.2.77", 32);
	cidr_of("0.0.0.0/0", AF_INET, "0.0.0.0", 0);
	cidr_of("10.1.2.3/8", AF_INET, "10.0.0.0", 8);
	cidr_of("2001:db8::/32", AF_INET6, "2001:db8::", 32);
	cidr_of("2001:db8:1:2:3::1/64", AF_INET6, "2001:db8:1:2::", 64);
	cidr_of("2001:db8::1", AF_INET6, "2001:db8::1", 128);
	cidr_of("::/0", AF_INET6, "::", 0);
	cidr_of("::ffff:192.0.2.0/120", AF_INET, "192.0.2.0", 24);
	cidr_of("::ffff:192.0.2.9", AF_INET, "192.0.2.9", 32);
	cidr_of("::ffff:192.0.2.0/96", AF_INET, "0.0.0.0", 0);
	cidr_of("::ffff:0:0/95", AF_INET6, "::fffe:0:0", 95);
}

static void
test_parse_cidr_invalid(void **state)
{
	static const char *const bad[] = {
		"", "/24", "192.0.2.0/", "192.0.2.0/33", "192.0.2.0/-1",
		"192.0.2.0/024", "192.0.2.0/2a", "192.0.2.0/24/1", "192.0.2.0 /24",
		"2001:db8::/129", "2001:db8::/1000000000000", "example.com/24",
		"192.0.2.0/+8",
		"0000:0000:0000:0000:0000:0000:0000:0000:0000:0000:0000:0000/8",
	};
	struct cidr c;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(netaddr_parse_cidr(&c, bad[i]), -1);
}

static void
test_is_loopback(void **state)
{
	static const char *const yes[] = { "127.0.0.1", "127.255.0.9",
	    "::1", "::ffff:127.0.0.2" };
	static const char *const no[] = { "128.0.0.1", "126.255.255.255",
	    "::2", "::", "0.0.0.0", "2001:db8::1" };
	struct netaddr a;
	size_t i;

	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		assert_int_equal(netaddr_parse(&a, yes[i]), 0);
		assert_true(netaddr_is_loopback(&a));
	}
	for (i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
		assert_int_equal(netaddr_parse(&a, no[i]), 0);
		assert_false(netaddr_is_loopback(&a));
	}
}

static void
test_in_cidr(void **state)
{
	struct cidr list[3];
	struct netaddr a;

	assert_int_equal(netaddr_parse_cidr(&list[0], "192.0.2.0/24"), 0);
	assert_int_equal(netaddr_parse_cidr(&list[1], "2001:db8::/32"), 0);
	assert_int_equal(netaddr_parse_cidr(&list[2], "203.0.113.5"), 0);

	assert_int_equal(netaddr_parse(&a, "192.0.2.200"), 0);
	assert_true(netaddr_in_cidr(&a, &list[0]));
	assert_false(netaddr_in_cidr(&a, &list[1]));
	assert_false(netaddr_in_cidr(&a, &list[2]));
	assert_true(netaddr_in_cidr_list(&a, list, 3));

	assert_int_equal(netaddr_parse(&a, "192.0.3.0"), 0);
	assert_false(netaddr_in_cidr(&a, &list[0]));
	assert_false(netaddr_in_cidr_list(&a, list, 3));
	assert_false(netaddr_in_cidr_list(&a, list, 0));

	assert_int_equal(netaddr_parse(&a, "::ffff:192.0.2.1"), 0);
	assert_true(netaddr_in_cidr(&a, &list[0]));

	assert_int_equal(netaddr_parse(&a, "2001:db8:ffff::1"), 0);
	assert_true(netaddr_in_cidr(&a, &list[1]));
	assert_true(netaddr_in_cidr_list(&a, list, 3));
	assert_int_equal(netaddr_parse(&a, "2001:db9::1"), 0);
	assert_false(netaddr_in_cidr_list(&a, list, 3));

	assert_int_equal(netaddr_parse(&a, "203.0.113.5"), 0);
	assert_true(netaddr_in_cidr_list(&a, list, 3));
	assert_int_equal(netaddr_parse(&a, "203.0.113.4"), 0);
	assert_false(netaddr_in_cidr_list(&a, list, 3));

	/* /0 matches its own family only */
	assert_int_equal(netaddr_parse_cidr(&list[0], "0.0.0.0/0"), 0);
	assert_true(netaddr_in_cidr(&a, &list[0]));
	assert_int_equal(netaddr_parse(&a, "::1"), 0);
	assert_false(netaddr_in_cidr(&a, &list[0]));
}

static void
test_key(void **state)
{
	struct netaddr a;
	char small[8];

	key_of("192.0.2.77", 24, "192.0.2.0/24");
	key_of("192.0.2.77", 32, "192.0.2.77/32");
	key_of("192.0.2.77", 0, "0.0.0.0/0");
	key_of("192.0.2.77", 99, "192.0.2.77/32");
	key_of("::ffff:192.0.2.77", 24, "192.0.2.0/24");
	key_of("2001:db8:1:2:3:4:5:6", 64, "2001:db8:1:2::/64");
	key_of("2001:db8:1:2:3:4:5:6", 48, "2001:db8:1::/48");
	key_of("2001:db8:1:2:3:4:5:6", 128, "2001:db8:1:2:3:4:5:6/128");
	key_of("2001:db8::1", -3, "::/0");

	assert_int_equal(netaddr_parse(&a, "192.0.2.77"), 0);
	netaddr_key(&a, 24, small, sizeof(small));
	assert_string_equal(small, "192.0.2");
	netaddr_format(&a, small, sizeof(small));
	assert_string_equal(small, "192.0.2");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_ipv4),
		cmocka_unit_test(test_parse_ipv6),
		cmocka_unit_test(test_parse_mapped),
		cmocka_unit_test(test_parse_invalid),
		cmocka_unit_test(test_from_sockaddr),
		cmocka_unit_test(test_to_sockaddr),
		cmocka_unit_test(test_mask),
		cmocka_unit_test(test_parse_cidr),
		cmocka_unit_test(test_parse_cidr_invalid),
		cmocka_unit_test(test_is_loopback),
		cmocka_unit_test(test_in_cidr),
		cmocka_unit_test(test_key),
	};

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
