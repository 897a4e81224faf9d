/*
 * t/unit/dnsbl_site.c — unit tests for the DNSBL site syntax
 * (greyd/dnsbl_site.c): parsing of name[=filter][*weight] in postscreen's
 * syntax (good words, every kind of bad word and its error text), reply
 * filter matching, the weighted score over several answers and several
 * entries of one list, and the query names for IPv4, IPv6 (RFC 5782) and
 * sender domains, overflow included.  Output is TAP, for prove.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "dnsbl_site.h"

static struct dnsbl_site
parse_ok(const char *word)
{
	struct dnsbl_site s;
	char err[1024] = "";

	if (dnsbl_site_parse(word, &s, err, sizeof(err)) != 0)
		fail_msg("dnsbl_site_parse(\"%s\"): %s", word, err);
	assert_string_equal(s.text, word);
	return s;
}

static void
parse_fails(const char *word, const char *want)
{
	struct dnsbl_site s;
	char err[1024] = "";

	if (dnsbl_site_parse(word, &s, err, sizeof(err)) != -1)
		fail_msg("dnsbl_site_parse accepted \"%s\"", word);
	if (strcmp(err, want) != 0)
		fail_msg("dnsbl_site_parse(\"%s\"):\n  got  %s\n  want %s",
		    word, err, want);
}

static bool
match(const struct dnsbl_site *s, const char *dotted)
{
	uint8_t a[4];

	assert_int_equal(inet_pton(AF_INET, dotted, a), 1);
	return dnsbl_site_match(s, a);
}

/* ---- parsing -------------------------------------------------------------- */

static void
test_parse_plain(void **state)
{
	struct dnsbl_site s;

	s = parse_ok("bl.spamcop.net");
	assert_string_equal(s.name, "bl.spamcop.net");
	assert_false(s.filtered);
	assert_int_equal(s.weight, 1);

	s = parse_ok("bl.spamcop.net*2");
	assert_string_equal(s.name, "bl.spamcop.net");
	assert_false(s.filtered);
	assert_int_equal(s.weight, 2);

	s = parse_ok("Zen.SpamHaus.ORG=127.0.0.[2..11]*3");
	assert_string_equal(s.name, "zen.spamhaus.org");
	assert_string_equal(s.text, "Zen.SpamHaus.ORG=127.0.0.[2..11]*3");
	assert_true(s.filtered);
	assert_int_equal(s.weight, 3);

	s = parse_ok("list.dnswl.org=127.0.[0..255].[1..3]*-5");
	assert_string_equal(s.name, "list.dnswl.org");
	assert_int_equal(s.weight, -5);

	s = parse_ok("swl.spamhaus.org*-4");
	assert_false(s.filtered);
	assert_int_equal(s.weight, -4);

	s = parse_ok("b.barracudacentral.org=127.0.0.2");
	assert_true(s.filtered);
	assert_int_equal(s.weight, 1);

	s = parse_ok("x*+7");
	assert_string_equal(s.name, "x");
	assert_int_equal(s.weight, 7);

	s = parse_ok("a-b.example*0");
	assert_int_equal(s.weight, 0);
	s = parse_ok("x.example*1000");
	assert_int_equal(s.weight, DNSBL_WEIGHT_MAX);
	s = parse_ok("x.example*-1000");
	assert_int_equal(s.weight, -DNSBL_WEIGHT_MAX);
	s = parse_ok("x.example*-0");
	assert_int_equal(s.weight, 0);
	s = parse_ok("0.example=0.0.0.0*007");
	assert_int_equal(s.weight, 7);
	/* a numeric label is fine in a name that is not all numeric */
	s = parse_ok("127.0.0.1.dnsbl.example");
	assert_string_equal(s.name, "127.0.0.1.dnsbl.example");
	s = parse_ok("4.example=255.255.255.255");
	assert_true(s.filtered);
}

static void
test_parse_sets(void **state)
{
	struct dnsbl_site s;

	s = parse_ok("wl.mailspike.net=127.0.0.[17;18]*-1");
	assert_true(match(&s, "127.0.0.17"));
	assert_true(match(&s, "127.0.0.18"));
	assert_false(match(&s, "127.0.0.19"));
	assert_false(match(&s, "127.0.0.16"));

	s = parse_ok("x.example=127.0.0.[1;3..5;10]");
	assert_true(match(&s, "127.0.0.1"));
	assert_false(match(&s, "127.0.0.2"));
	assert_true(match(&s, "127.0.0.3"));
	assert_true(match(&s, "127.0.0.4"));
	assert_true(match(&s, "127.0.0.5"));
	assert_false(match(&s, "127.0.0.6"));
	assert_true(match(&s, "127.0.0.10"));
	assert_false(match(&s, "127.0.0.11"));

	/* a one-number range, overlapping parts, sets in every octet */
	s = parse_ok("x.example=[127].[0..0].[1..5;3..9].[0..255]");
	assert_true(match(&s, "127.0.9.0"));
	assert_true(match(&s, "127.0.1.255"));
	assert_false(match(&s, "127.0.10.0"));
	assert_false(match(&s, "127.1.1.1"));
	assert_false(match(&s, "126.0.1.1"));
}

static void
test_parse_bad_names(void **state)
{
	char word[400], want[1024], label[70];

	parse_fails("", "empty site");
	parse_fails("=127.0.0.2", "missing list name in \"=127.0.0.2\"");
	parse_fails("*2", "missing list name in \"*2\"");
	parse_fails("zen_spamhaus.org",
	    "bad list name \"zen_spamhaus.org\" in \"zen_spamhaus.org\": only "
	    "letters, digits, '-' and '.' are allowed");
	parse_fails("zen..org*2", "bad list name \"zen..org\" in "
	    "\"zen..org*2\": empty label");
	parse_fails(".zen.org", "bad list name \".zen.org\" in \".zen.org\": "
	    "empty label");
	parse_fails("zen.org.", "bad list name \"zen.org.\" in \"zen.org.\": "
	    "empty label");
	parse_fails("-zen.org", "bad list name \"-zen.org\" in \"-zen.org\": "
	    "a label starts or ends with '-'");
	parse_fails("zen-.org=127.0.0.2", "bad list name \"zen-.org\" in "
	    "\"zen-.org=127.0.0.2\": a label starts or ends with '-'");
	parse_fails("127.0.0.1", "bad list name \"127.0.0.1\" in "
	    "\"127.0.0.1\": an address, not a domain");
	parse_fails("zen spamhaus", "bad list name \"zen spamhaus\" in "
	    "\"zen spamhaus\": only letters, digits, '-' and '.' are allowed");
	parse_fails("zen.spamhaus.org:53", "bad list name "
	    "\"zen.spamhaus.org:53\" in \"zen.spamhaus.org:53\": only "
	    "letters, digits, '-' and '.' are allowed");

	/* label and name lengths: 63 and 253 fit, one more does not */
	memset(label, 'a', 63);
	label[63] = '\0';
	snprintf(word, sizeof(word), "%s.example", label);
	parse_ok(word);
	snprintf(word, sizeof(word), "b%s.example", label);
	snprintf(want, sizeof(want), "bad list name \"%s\" in \"%s\": a label "
	    "is longer than 63 octets", word, word);
	parse_fails(word, want);
	/* 3 labels of 63 and one of 61: 253 octets */
	snprintf(word, sizeof(word), "%s.%s.%s.%.61s", label, label, label,
	    label);
	assert_int_equal(strlen(word), 253);
	assert_string_equal(parse_ok(word).name, word);
	snprintf(word, sizeof(word), "%s.%s.%s.%.62s", label, label, label,
	    label);
	snprintf(want, sizeof(want), "bad list name \"%s\" in \"%s\": longer "
	    "than 253 octets", word, word);
	parse_fails(word, want);
}

static void
test_parse_too_long(void **state)
{
	char word[1024], want[128];
	struct dnsbl_site s;

	char label[64];
	int i;

	memset(word, 'a', sizeof(word));
	word[sizeof(s.text)] = '\0';
	snprintf(want, sizeof(want), "site \"%.40s...\" is too long (at most "
	    "%zu octets)", word, sizeof(s.text) - 1);
	parse_fails(word, want);
	word[sizeof(s.text)] = 'a';
	word[sizeof(word) - 1] = '\0';
	parse_fails(word, want);
	/* the longest word that fits: a 253-octet name and a long filter */
	memset(label, 'a', 63);
	label[63] = '\0';
	snprintf(word, sizeof(word), "%s.%s.%s.%.61s=127.0.0.[", label, label,
	    label, label);
	for (i = 0; i < 25; i++)
		strlcat(word, "1;", sizeof(word));
	strlcat(word, "11]", sizeof(word));
	assert_int_equal(strlen(word), sizeof(s.text) - 1);
	s = parse_ok(word);
	assert_int_equal(strlen(s.name), DNSBL_NAME_MAX);
	assert_true(s.filtered);
}

static void
test_parse_bad_filters(void **state)
{
	static const struct { const char *word, *want; } cases[] = {
		{ "x.example=", "bad reply filter \"\" in \"x.example=\": "
		  "empty" },
		{ "x.example=*2", "bad reply filter \"\" in \"x.example=*2\": "
		  "empty" },
		{ "x.example=127.0.0", "bad reply filter \"127.0.0\" in "
		  "\"x.example=127.0.0\": expected four octets, like "
		  "127.0.0.[2..11]" },
		{ "x.example=127.0.0.2.1", "bad reply filter \"127.0.0.2.1\" in "
		  "\"x.example=127.0.0.2.1\": expected four octets, like "
		  "127.0.0.[2..11]" },
		{ "x.example=127.0.0.", "bad reply filter \"127.0.0.\" in "
		  "\"x.example=127.0.0.\": expected a number" },
		{ "x.example=127..0.2", "bad reply filter \"127..0.2\" in "
		  "\"x.example=127..0.2\": expected a number" },
		{ "x.example=127.0.0.256", "bad reply filter \"127.0.0.256\" in "
		  "\"x.example=127.0.0.256\": a number above 255" },
		{ "x.example=127.0.0.1000", "bad reply filter \"127.0.0.1000\" "
		  "in \"x.example=127.0.0.1000\": a number above 255" },
		{ "x.example=127.0.0.02", "bad reply filter \"127.0.0.02\" in "
		  "\"x.example=127.0.0.02\": a number with a leading zero" },
		{ "x.example=127.0.0.-1", "bad reply filter \"127.0.0.-1\" in "
		  "\"x.example=127.0.0.-1\": expected a number" },
		{ "x.example=127.0.0.x", "bad reply filter \"127.0.0.x\" in "
		  "\"x.example=127.0.0.x\": expected a number" },
		{ "x.example=127.0.0.[]", "bad reply filter \"127.0.0.[]\" in "
		  "\"x.example=127.0.0.[]\": an empty set \"[]\"" },
		{ "x.example=127.0.0.[2..", "bad reply filter \"127.0.0.[2..\" "
		  "in \"x.example=127.0.0.[2..\": expected a number" },
		{ "x.example=127.0.0.[2..11", "bad reply filter "
		  "\"127.0.0.[2..11\" in \"x.example=127.0.0.[2..11\": a \"[\" "
		  "without \"]\"" },
		{ "x.example=127.0.0.[11..2]", "bad reply filter "
		  "\"127.0.0.[11..2]\" in \"x.example=127.0.0.[11..2]\": a range "
		  "from high to low" },
		{ "x.example=127.0.0.[2..300]", "bad reply filter "
		  "\"127.0.0.[2..300]\" in \"x.example=127.0.0.[2..300]\": a "
		  "number above 255" },
		{ "x.example=127.0.0.[1;;2]", "bad reply filter "
		  "\"127.0.0.[1;;2]\" in \"x.example=127.0.0.[1;;2]\": expected "
		  "a number" },
		{ "x.example=127.0.0.[1;]", "bad reply filter \"127.0.0.[1;]\" "
		  "in \"x.example=127.0.0.[1;]\": expected a number" },
		{ "x.example=127.0.0.[1,2]", "bad reply filter "
		  "\"127.0.0.[1,2]\" in \"x.example=127.0.0.[1,2]\": expected "
		  "';' or ']' in a set" },
		{ "x.example=127.0.0.[1...2]", "bad reply filter "
		  "\"127.0.0.[1...2]\" in \"x.example=127.0.0.[1...2]\": "
		  "expected a number" },
		{ "x.example=127.0.0.[1]2", "bad reply filter \"127.0.0.[1]2\" "
		  "in \"x.example=127.0.0.[1]2\": expected four octets, like "
		  "127.0.0.[2..11]" },
		{ "x.example=127.0.0.2=3", "bad reply filter \"127.0.0.2=3\" in "
		  "\"x.example=127.0.0.2=3\": expected four octets, like "
		  "127.0.0.[2..11]" },
		{ "x.example=127.0.0.2/32", "bad reply filter "
		  "\"127.0.0.2/32\" in \"x.example=127.0.0.2/32\": expected "
		  "four octets, like 127.0.0.[2..11]" },
		{ "x.example=127.0.0.[1..2..3]", "bad reply filter "
		  "\"127.0.0.[1..2..3]\" in \"x.example=127.0.0.[1..2..3]\": "
		  "expected ';' or ']' in a set" },
		{ "x.example=[127.0.0.2]", "bad reply filter \"[127.0.0.2]\" in "
		  "\"x.example=[127.0.0.2]\": expected ';' or ']' in a set" },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		parse_fails(cases[i].word, cases[i].want);
}

static void
test_parse_bad_weights(void **state)
{
	static const char *const bad[] = {
		"", "-", "+", "1001", "-1001", "99999999999999999999", "2.5",
		"3x", " 3", "3 ", "--3", "+-3", "0x10", "*3",
	};
	char word[64], want[256];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(word, sizeof(word), "x.example=127.0.0.2*%s", bad[i]);
		snprintf(want, sizeof(want), "bad weight \"%s\" in \"%s\": "
		    "expected an integer from -1000 to 1000", bad[i], word);
		parse_fails(word, want);
	}
	/* the weight comes after the filter */
	parse_fails("x.example*2=127.0.0.2", "bad weight \"2=127.0.0.2\" in "
	    "\"x.example*2=127.0.0.2\": expected an integer from -1000 to "
	    "1000");
}

/* A failed parse leaves a zeroed site; errors are truncated, not overrun. */
static void
test_parse_error_buffer(void **state)
{
	struct dnsbl_site s;
	char err[16];

	memset(&s, 0x55, sizeof(s));
	memset(err, 'x', sizeof(err));
	assert_int_equal(dnsbl_site_parse("x.example=1.2.3", &s, err,
	    sizeof(err)), -1);
	assert_int_equal(strlen(err), sizeof(err) - 1);
	assert_true(strncmp(err, "bad reply filte", sizeof(err) - 1) == 0);
	assert_string_equal(s.name, "");
	assert_string_equal(s.text, "");
	assert_false(s.filtered);
}

/* ---- matching and scoring ----------------------------------------------- */

static void
test_match_unfiltered(void **state)
{
	struct dnsbl_site s = parse_ok("bl.spamcop.net");

	assert_true(match(&s, "127.0.0.2"));
	assert_true(match(&s, "127.255.255.254"));
	assert_true(match(&s, "127.0.0.0"));
	assert_false(match(&s, "126.0.0.2"));
	assert_false(match(&s, "128.0.0.2"));
	assert_false(match(&s, "192.0.2.1"));
	assert_false(match(&s, "0.0.0.0"));
}

static void
test_match_filtered(void **state)
{
	struct dnsbl_site s = parse_ok("zen.spamhaus.org=127.0.0.[2..11]*3");
	struct dnsbl_site w =
	    parse_ok("list.dnswl.org=127.0.[0..255].[1..3]*-5");
	struct dnsbl_site any = parse_ok("x.example=[0..255].[0..255]."
	    "[0..255].[0..255]");
	struct dnsbl_site one = parse_ok("x.example=192.0.2.1");

	assert_false(match(&s, "127.0.0.1"));
	assert_true(match(&s, "127.0.0.2"));
	assert_true(match(&s, "127.0.0.11"));
	assert_false(match(&s, "127.0.0.12"));
	assert_false(match(&s, "127.0.1.2"));
	assert_false(match(&s, "127.255.255.254"));

	assert_false(match(&w, "127.0.5.0"));
	assert_true(match(&w, "127.0.5.1"));
	assert_true(match(&w, "127.0.255.3"));
	assert_false(match(&w, "127.0.5.4"));
	assert_false(match(&w, "127.1.5.2"));

	/* a filter may match outside 127/8: the admin asked for it */
	assert_true(match(&any, "192.0.2.1"));
	assert_true(match(&any, "0.0.0.0"));
	assert_true(match(&any, "255.255.255.255"));
	assert_true(match(&one, "192.0.2.1"));
	assert_false(match(&one, "192.0.2.2"));
}

static void
test_score(void **state)
{
	static const uint8_t answers[][4] = {
		{ 127, 0, 0, 4 }, { 127, 0, 0, 10 }, { 192, 0, 2, 1 },
	};
	static const uint8_t wl[][4] = { { 127, 0, 10, 2 } };
	static const uint8_t none[][4] = { { 127, 0, 0, 1 } };
	struct dnsbl_site zen = parse_ok("zen.spamhaus.org=127.0.0.[2..11]*3");
	struct dnsbl_site pbl = parse_ok("zen.spamhaus.org=127.0.0.[10;11]*8");
	struct dnsbl_site sbl = parse_ok("zen.spamhaus.org=127.0.0.2*2");
	struct dnsbl_site any = parse_ok("zen.spamhaus.org");
	struct dnsbl_site dnswl =
	    parse_ok("list.dnswl.org=127.0.[0..255].[1..3]*-5");

	/* two answers match one entry: its weight counts once */
	assert_int_equal(dnsbl_site_score(&zen, answers, 3), 3);
	/* several entries for one name each add their weight once */
	assert_int_equal(dnsbl_site_score(&pbl, answers, 3), 8);
	assert_int_equal(dnsbl_site_score(&sbl, answers, 3), 0);
	assert_int_equal(dnsbl_site_score(&any, answers, 3), 1);
	assert_int_equal(dnsbl_site_score(&zen, answers, 3) +
	    dnsbl_site_score(&pbl, answers, 3) +
	    dnsbl_site_score(&sbl, answers, 3) +
	    dnsbl_site_score(&any, answers, 3), 12);
	/* only the answers given count */
	assert_int_equal(dnsbl_site_score(&pbl, answers, 1), 0);
	assert_int_equal(dnsbl_site_score(&zen, answers, 0), 0);
	assert_int_equal(dnsbl_site_score(&zen, answers + 2, 1), 0);
	assert_int_equal(dnsbl_site_score(&zen, none, 1), 0);
	assert_int_equal(dnsbl_site_score(&any, none, 1), 1);
	/* allowlists score negative */
	assert_int_equal(dnsbl_site_score(&dnswl, wl, 1), -5);
	assert_int_equal(dnsbl_site_score(&dnswl, answers, 3), 0);
}

/* ---- query names -------------------------------------------------------- */

static void
test_query_ipv4(void **state)
{
	struct dnsbl_site s = parse_ok("Zen.Spamhaus.org=127.0.0.[2..11]*3");
	uint8_t a[4];
	char buf[DNSBL_NAME_MAX + 1];

	assert_int_equal(inet_pton(AF_INET, "192.0.2.99", a), 1);
	assert_int_equal(dnsbl_query_name_addr(&s, AF_INET, a, buf,
	    sizeof(buf)), 0);
	assert_string_equal(buf, "99.2.0.192.zen.spamhaus.org");
	assert_int_equal(inet_pton(AF_INET, "0.0.0.255", a), 1);
	assert_int_equal(dnsbl_query_name_addr(&s, AF_INET, a, buf,
	    sizeof(buf)), 0);
	assert_string_equal(buf, "255.0.0.0.zen.spamhaus.org");
	assert_int_equal(inet_pton(AF_INET, "127.0.0.2", a), 1);
	assert_int_equal(dnsbl_query_name_addr(&s, AF_INET, a, buf,
	    sizeof(buf)), 0);
	assert_string_equal(buf, "2.0.0.127.zen.spamhaus.org");
	/* exactly the size needed, and one octet less */
	assert_int_equal(dnsbl_query_name_addr(&s, AF_INET, a, buf,
	    strlen("2.0.0.127.zen.spamhaus.org") + 1), 0);
	assert_int_equal(dnsbl_query_name_addr(&s, AF_INET, a, buf,
	    strlen("2.0.0.127.zen.spamhaus.org")), -1);
	assert_int_equal(dnsbl_query_name_addr(&s, AF_INET, a, buf, 0), -1);
	/* an unknown family */
	assert_int_equal(dnsbl_query_name_addr(&s, AF_UNIX, a, buf,
	    sizeof(buf)), -1);
}

static void
test_query_ipv6(void **state)
{
	struct dnsbl_site s = parse_ok("NAME");
	uint8_t a[16];
	char buf[DNSBL_NAME_MAX + 1];

	/* RFC 5782 section 2.4 */
	assert_int_equal(inet_pton(AF_INET6, "2001:db8:1:2:3:4:567:89ab", a),
	    1);
	assert_int_equal(dnsbl_query_name_addr(&s, AF_INET6, a, buf,
	    sizeof(buf)), 0);
	assert_string_equal(buf, "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1."
	    "0.0.0.8.b.d.0.1.0.0.2.name");
	assert_int_equal(inet_pton(AF_INET6, "::1", a), 1);
	assert_int_equal(dnsbl_query_name_addr(&s, AF_INET6, a, buf,
	    sizeof(buf)), 0);
	assert_string_equal(buf, "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0."
	    "0.0.0.0.0.0.0.0.0.0.0.0.name");
	assert_int_equal(inet_pton(AF_INET6, "ffff:eeee::dcba", a), 1);
	assert_int_equal(dnsbl_query_name_addr(&s, AF_INET6, a, buf,
	    sizeof(buf)), 0);
	assert_string_equal(buf, "a.b.c.d.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0."
	    "0.0.0.0.e.e.e.e.f.f.f.f.name");
	/* 64 octets of nibbles + "name" + NUL = 69 */
	assert_int_equal(dnsbl_query_name_addr(&s, AF_INET6, a, buf, 69), 0);
	assert_int_equal(dnsbl_query_name_addr(&s, AF_INET6, a, buf, 68), -1);
}

/* A site name of n octets: labels of 63 'a' and a rest. */
static void
long_site(struct dnsbl_site *s, size_t n)
{
	char word[DNSBL_NAME_MAX + 1];
	size_t i;

	memset(word, 'a', n);
	for (i = 63; i < n; i += 64)
		word[i] = '.';
	word[n] = '\0';
	*s = parse_ok(word);
	assert_int_equal(strlen(s->name), n);
}

static void
test_query_overflow(void **state)
{
	struct dnsbl_site s;
	uint8_t a4[4] = { 255, 255, 255, 255 }, a6[16];
	char buf[512];

	memset(a6, 0xff, sizeof(a6));
	/* 16 + 237 = 253: fits; one more does not */
	long_site(&s, 237);
	assert_int_equal(dnsbl_query_name_addr(&s, AF_INET, a4, buf,
	    sizeof(buf)), 0);
	assert_int_equal(strlen(buf), 253);
	long_site(&s, 238);
	assert_int_equal(dnsbl_query_name_addr(&s, AF_INET, a4, buf,
	    sizeof(buf)), -1);
	/* a short address gives a short name: 8 + 238 */
	a4[0] = 1;
	a4[3] = 2;
	a4[1] = a4[2] = 0;
	assert_int_equal(dnsbl_query_name_addr(&s, AF_INET, a4, buf,
	    sizeof(buf)), 0);
	assert_int_equal(strlen(buf), 246);
	/* IPv6: 64 + 189 = 253 */
	long_site(&s, 189);
	assert_int_equal(dnsbl_query_name_addr(&s, AF_INET6, a6, buf,
	    sizeof(buf)), 0);
	assert_int_equal(strlen(buf), 253);
	long_site(&s, 190);
	assert_int_equal(dnsbl_query_name_addr(&s, AF_INET6, a6, buf,
	    sizeof(buf)), -1);
}

static void
test_query_domain(void **state)
{
	struct dnsbl_site s = parse_ok("dbl.spamhaus.org=127.0.1.[2..99]*3");
	char buf[DNSBL_NAME_MAX + 1], dom[400], label[64];

	assert_int_equal(dnsbl_query_name_domain(&s, "Example.COM", buf,
	    sizeof(buf)), 0);
	assert_string_equal(buf, "example.com.dbl.spamhaus.org");
	assert_int_equal(dnsbl_query_name_domain(&s, "mail-1.x_y.example",
	    buf, sizeof(buf)), 0);
	assert_string_equal(buf, "mail-1.x_y.example.dbl.spamhaus.org");
	assert_int_equal(dnsbl_query_name_domain(&s, "localhost", buf,
	    sizeof(buf)), 0);
	assert_string_equal(buf, "localhost.dbl.spamhaus.org");
	/* exact fit and one short */
	assert_int_equal(dnsbl_query_name_domain(&s, "a.b", buf,
	    strlen("a.b.dbl.spamhaus.org") + 1), 0);
	assert_int_equal(dnsbl_query_name_domain(&s, "a.b", buf,
	    strlen("a.b.dbl.spamhaus.org")), -1);

	/* not host names */
	assert_int_equal(dnsbl_query_name_domain(&s, "", buf, sizeof(buf)),
	    -1);
	assert_int_equal(dnsbl_query_name_domain(&s, "[192.0.2.1]", buf,
	    sizeof(buf)), -1);
	assert_int_equal(dnsbl_query_name_domain(&s, "a..b", buf,
	    sizeof(buf)), -1);
	assert_int_equal(dnsbl_query_name_domain(&s, ".a.b", buf,
	    sizeof(buf)), -1);
	assert_int_equal(dnsbl_query_name_domain(&s, "a.b.", buf,
	    sizeof(buf)), -1);
	assert_int_equal(dnsbl_query_name_domain(&s, "caf\xc3\xa9.example",
	    buf, sizeof(buf)), -1);
	assert_int_equal(dnsbl_query_name_domain(&s, "a b.example", buf,
	    sizeof(buf)), -1);
	memset(label, 'a', 63);
	label[63] = '\0';
	snprintf(dom, sizeof(dom), "%s.example", label);
	assert_int_equal(dnsbl_query_name_domain(&s, dom, buf, sizeof(buf)),
	    0);
	snprintf(dom, sizeof(dom), "a%s.example", label);
	assert_int_equal(dnsbl_query_name_domain(&s, dom, buf, sizeof(buf)),
	    -1);

	/* the whole name at most 253 octets: ".dbl.spamhaus.org" is 17 */
	snprintf(dom, sizeof(dom), "%s.%s.%s.%.44s", label, label, label,
	    label);
	assert_int_equal(strlen(dom), 236);
	assert_int_equal(dnsbl_query_name_domain(&s, dom, buf, sizeof(buf)),
	    0);
	assert_int_equal(strlen(buf), 253);
	snprintf(dom, sizeof(dom), "%s.%s.%s.%.45s", label, label, label,
	    label);
	assert_int_equal(dnsbl_query_name_domain(&s, dom, buf, sizeof(buf)),
	    -1);
	snprintf(dom, sizeof(dom), "%s.%s.%s.%s.%s", label, label, label,
	    label, label);
	assert_int_equal(dnsbl_query_name_domain(&s, dom, buf, sizeof(buf)),
	    -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_plain),
		cmocka_unit_test(test_parse_sets),
		cmocka_unit_test(test_parse_bad_names),
		cmocka_unit_test(test_parse_too_long),
		cmocka_unit_test(test_parse_bad_filters),
		cmocka_unit_test(test_parse_bad_weights),
		cmocka_unit_test(test_parse_error_buffer),
		cmocka_unit_test(test_match_unfiltered),
		cmocka_unit_test(test_match_filtered),
		cmocka_unit_test(test_score),
		cmocka_unit_test(test_query_ipv4),
		cmocka_unit_test(test_query_ipv6),
		cmocka_unit_test(test_query_overflow),
		cmocka_unit_test(test_query_domain),
	};

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
