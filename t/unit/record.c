/*
 * t/unit/record.c — unit tests of greyd/record.c, the codec of trust
 * database records (no database: bytes in, structs out).
 *
 * Covers: the exact bytes of one record of each table (golden vectors:
 * the on-disk format must never change by accident; a change needs a new
 * layout version), decoding those bytes back, round trips of every field
 * at the ends of its range, client records of version 1 (still decoded,
 * the fields they lack zero, re-encoded as version 2), sizes and the field
 * tables, refusal of every wrong size and version without touching the
 * output, an unknown table, a short output buffer, and record_expiry
 * (including sums past the range of int64_t).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "record.h"

#define NOW	1795000000LL	/* 2026-11-18 */
#define DAY	86400LL
#define NO_TABLE	((enum trustdb_table)TRUSTDB_NTABLES)

static const uint8_t grey_bytes[] = {
	0x01,						/* version */
	0xc0, 0x86, 0xfd, 0x6a, 0x00, 0x00, 0x00, 0x00,	/* first_seen */
	0xca, 0x86, 0xfd, 0x6a, 0x00, 0x00, 0x00, 0x00,	/* last_seen */
	0xfb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,	/* pass_after: -5 */
	0x00, 0xbf, 0xfd, 0x6a, 0x00, 0x00, 0x00, 0x00,	/* expire */
	0x04, 0x03, 0x02, 0x01,				/* attempts */
};

static const uint8_t white_bytes[] = {
	0x01,						/* version */
	0x40, 0x35, 0xfc, 0x6a, 0x00, 0x00, 0x00, 0x00,	/* first_seen */
	0xc0, 0x86, 0xfd, 0x6a, 0x00, 0x00, 0x00, 0x00,	/* last_seen */
	0xc0, 0xfc, 0x2c, 0x6b, 0x00, 0x00, 0x00, 0x00,	/* expire */
	0x02, 0x00, 0x00, 0x00,				/* passes */
	0x00, 0x28, 0x6b, 0xee,				/* messages */
	0x03,						/* origin: WHITE_ADMIN */
};

static const uint8_t client_bytes[] = {
	0x02,						/* version */
	0x40, 0x35, 0xfc, 0x6a, 0x00, 0x00, 0x00, 0x00,	/* first_seen */
	0xc0, 0x86, 0xfd, 0x6a, 0x00, 0x00, 0x00, 0x00,	/* last_seen */
	0xd0, 0x94, 0xfd, 0x6a, 0x00, 0x00, 0x00, 0x00,	/* greet_pass_until */
	0x0b, 0x00, 0x00, 0x00,				/* connections */
	0x0c, 0x00, 0x00, 0x00,				/* greylisted */
	0x0d, 0x00, 0x00, 0x00,				/* passed */
	0x0e, 0x00, 0x00, 0x00,				/* delivered */
	0x0f, 0x28, 0x6b, 0xee,				/* rejected */
	0x02, 0x00, 0x00, 0x00,				/* trapped */
	0x10, 0x00, 0x00, 0x00,				/* rejected_by[0] */
	0x11, 0x00, 0x00, 0x00,				/* rejected_by[1] */
	0x12, 0x00, 0x00, 0x00,				/* rejected_by[2] */
	0x13, 0x00, 0x00, 0x00,				/* rejected_by[3] */
	0x14, 0x00, 0x00, 0x00,				/* rejected_by[4] */
	0x15, 0x00, 0x00, 0x00,				/* rejected_by[5] */
	0x16, 0x00, 0x00, 0x00,				/* rejected_by[6] */
	0x17, 0x00, 0x00, 0x00,				/* rejected_by[7] */
};

static const uint8_t client_v1_bytes[] = {
	0x01,						/* version */
	0x40, 0x35, 0xfc, 0x6a, 0x00, 0x00, 0x00, 0x00,	/* first_seen */
	0xc0, 0x86, 0xfd, 0x6a, 0x00, 0x00, 0x00, 0x00,	/* last_seen */
	0x0b, 0x00, 0x00, 0x00,				/* connections */
	0x0c, 0x00, 0x00, 0x00,				/* greylisted */
	0x0d, 0x00, 0x00, 0x00,				/* passed */
	0x0e, 0x00, 0x00, 0x00,				/* delivered */
	0x0f, 0x28, 0x6b, 0xee,				/* rejected */
};

static const uint8_t trap_bytes[] = {
	0x01,						/* version */
	0xc0, 0x86, 0xfd, 0x6a, 0x00, 0x00, 0x00, 0x00,	/* trapped_at */
	0x40, 0xd8, 0xfe, 0x6a, 0x00, 0x00, 0x00, 0x00,	/* expire */
	0x04,						/* reason: TRAP_ADMIN */
};

static const uint8_t spamtrap_bytes[] = {
	0x01,						/* version */
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,	/* added: -1 */
	0x02,						/* origin: ORIGIN_ADMIN */
};

static const uint8_t rcpt_bytes[] = {
	0x01,						/* version */
	0x84, 0x86, 0xfd, 0x6a, 0x00, 0x00, 0x00, 0x00,	/* checked */
	0x18, 0x89, 0xfd, 0x6a, 0x00, 0x00, 0x00, 0x00,	/* expire */
	0x00,						/* valid */
	0x03,						/* origin: ORIGIN_CALLOUT */
};

static void
grey_make(union record *r)
{
	memset(r, 0, sizeof(*r));
	r->grey.first_seen = NOW;
	r->grey.last_seen = NOW + 10;
	r->grey.pass_after = -5;
	r->grey.expire = NOW + 4 * 3600;
	r->grey.attempts = 0x01020304;
}

static void
white_make(union record *r)
{
	memset(r, 0, sizeof(*r));
	r->white.first_seen = NOW - DAY;
	r->white.last_seen = NOW;
	r->white.expire = NOW + 36 * DAY;
	r->white.passes = 2;
	r->white.messages = 4000000000u;
	r->white.origin = WHITE_ADMIN;
}

static void
client_make(union record *r)
{
	int i;

	memset(r, 0, sizeof(*r));
	r->client.first_seen = NOW - DAY;
	r->client.last_seen = NOW;
	r->client.greet_pass_until = NOW + 3600;
	r->client.connections = 11;
	r->client.greylisted = 12;
	r->client.passed = 13;
	r->client.delivered = 14;
	r->client.rejected = 4000000015u;
	r->client.trapped = 2;
	for (i = 0; i < REJECT_NREASONS; i++)
		r->client.rejected_by[i] = (uint32_t)(0x10 + i);
}

static void
trap_make(union record *r)
{
	memset(r, 0, sizeof(*r));
	r->trap.trapped_at = NOW;
	r->trap.expire = NOW + DAY;
	r->trap.reason = TRAP_ADMIN;
}

static void
spamtrap_make(union record *r)
{
	memset(r, 0, sizeof(*r));
	r->spamtrap.added = -1;
	r->spamtrap.origin = ORIGIN_ADMIN;
}

static void
rcpt_make(union record *r)
{
	memset(r, 0, sizeof(*r));
	r->rcpt.checked = NOW - 60;
	r->rcpt.expire = NOW + 600;
	r->rcpt.valid = 0;
	r->rcpt.origin = ORIGIN_CALLOUT;
}

/* One record of each table: its struct and its bytes. */
static const struct golden {
	enum trustdb_table t;
	size_t rec_size;		/* sizeof its struct */
	const uint8_t *bytes;
	size_t size;
	void (*make)(union record *r);
} goldens[] = {
	{ TRUSTDB_GREY, sizeof(struct grey_rec), grey_bytes,
	  sizeof(grey_bytes), grey_make },
	{ TRUSTDB_WHITE, sizeof(struct white_rec), white_bytes,
	  sizeof(white_bytes), white_make },
	{ TRUSTDB_CLIENT, sizeof(struct client_rec), client_bytes,
	  sizeof(client_bytes), client_make },
	{ TRUSTDB_TRAP, sizeof(struct trap_rec), trap_bytes,
	  sizeof(trap_bytes), trap_make },
	{ TRUSTDB_SPAMTRAP, sizeof(struct spamtrap_rec), spamtrap_bytes,
	  sizeof(spamtrap_bytes), spamtrap_make },
	{ TRUSTDB_RCPT, sizeof(struct rcpt_rec), rcpt_bytes,
	  sizeof(rcpt_bytes), rcpt_make },
};
#define NGOLDENS	(sizeof(goldens) / sizeof(goldens[0]))

/* Decoding bad input must leave the output as it was: this pattern. */
static void
poison(union record *r)
{
	memset(r, 0xa5, sizeof(*r));
}

static void
assert_poisoned(const union record *r)
{
	union record p;

	poison(&p);
	assert_memory_equal(r, &p, sizeof(*r));
}

static void
assert_refused(enum trustdb_table t, const void *data, size_t size)
{
	union record r;

	poison(&r);
	assert_int_equal(record_decode(t, data, size, &r), -1);
	assert_poisoned(&r);
}

/* ---- tests ---- */

static void
test_golden_encode(void **state)
{
	union record r;
	uint8_t buf[RECORD_MAX + 8];
	size_t i;

	for (i = 0; i < NGOLDENS; i++) {
		goldens[i].make(&r);
		assert_int_equal(record_encode(goldens[i].t, &r, buf,
		    sizeof(buf)), goldens[i].size);
		assert_memory_equal(buf, goldens[i].bytes, goldens[i].size);
	}
}

static void
test_golden_decode(void **state)
{
	union record want, got;
	size_t i;

	for (i = 0; i < NGOLDENS; i++) {
		goldens[i].make(&want);
		poison(&got);
		assert_int_equal(record_decode(goldens[i].t, goldens[i].bytes,
		    goldens[i].size, &got), 0);
		assert_memory_equal(&got, &want, goldens[i].rec_size);
	}
}

/* The smallest (min) or largest value of a field's type, as its bits. */
static uint64_t
extreme(const struct record_field *f, bool min)
{
	unsigned bits = 8u * f->width;
	uint64_t all = bits == 64 ? UINT64_MAX : (1ULL << bits) - 1;

	if (!f->is_signed)
		return min ? 0 : all;
	return min ? 1ULL << (bits - 1) : all >> 1;
}

static void
store(void *m, unsigned width, uint64_t v)
{
	uint8_t u8 = (uint8_t)v;
	uint32_t u32 = (uint32_t)v;

	if (width == 1)
		memcpy(m, &u8, 1);
	else if (width == 4)
		memcpy(m, &u32, 4);
	else
		memcpy(m, &v, 8);
}

/* Set every field of t's record to its smallest (min) or largest value. */
static void
fill_extremes(enum trustdb_table t, union record *r, bool min)
{
	const struct record_field *f;
	size_t n, i, j;

	memset(r, 0, sizeof(*r));
	f = record_fields(t, &n);
	for (i = 0; i < n; i++)
		for (j = 0; j < f[i].count; j++)
			store((uint8_t *)r + f[i].offset + j * f[i].width,
			    f[i].width, extreme(&f[i], min));
}

static void
test_roundtrip_extremes(void **state)
{
	union record in, out;
	uint8_t buf[RECORD_MAX];
	size_t i, n;
	int min;

	for (i = 0; i < NGOLDENS; i++) {
		for (min = 0; min <= 1; min++) {
			fill_extremes(goldens[i].t, &in, min);
			n = record_encode(goldens[i].t, &in, buf, sizeof(buf));
			assert_int_equal(n, goldens[i].size);
			poison(&out);
			assert_int_equal(record_decode(goldens[i].t, buf, n,
			    &out), 0);
			assert_memory_equal(&in, &out, goldens[i].rec_size);
		}
	}
}

static void
test_roundtrip_values(void **state)
{
	union record in, out;
	uint8_t buf[RECORD_MAX];

	memset(&in, 0, sizeof(in));
	in.grey.first_seen = INT64_MIN;
	in.grey.last_seen = INT64_MAX;
	in.grey.pass_after = -1;
	in.grey.expire = 0;
	in.grey.attempts = UINT32_MAX;
	assert_int_equal(record_encode(TRUSTDB_GREY, &in, buf, sizeof(buf)),
	    37);
	assert_int_equal(record_decode(TRUSTDB_GREY, buf, 37, &out), 0);
	assert_int_equal(out.grey.first_seen, INT64_MIN);
	assert_int_equal(out.grey.last_seen, INT64_MAX);
	assert_int_equal(out.grey.pass_after, -1);
	assert_int_equal(out.grey.expire, 0);
	assert_int_equal(out.grey.attempts, UINT32_MAX);

	memset(&in, 0, sizeof(in));
	in.rcpt.checked = -NOW;
	in.rcpt.valid = 1;
	in.rcpt.origin = 255;
	assert_int_equal(record_encode(TRUSTDB_RCPT, &in, buf, sizeof(buf)),
	    19);
	assert_int_equal(record_decode(TRUSTDB_RCPT, buf, 19, &out), 0);
	assert_int_equal(out.rcpt.checked, -NOW);
	assert_int_equal(out.rcpt.expire, 0);
	assert_int_equal(out.rcpt.valid, 1);
	assert_int_equal(out.rcpt.origin, 255);
}

static void
test_client_v1(void **state)
{
	union record r, again;
	uint8_t buf[RECORD_MAX];
	int i;

	poison(&r);
	assert_int_equal(record_decode(TRUSTDB_CLIENT, client_v1_bytes,
	    sizeof(client_v1_bytes), &r), 0);
	assert_int_equal(r.client.first_seen, NOW - DAY);
	assert_int_equal(r.client.last_seen, NOW);
	assert_int_equal(r.client.connections, 11);
	assert_int_equal(r.client.greylisted, 12);
	assert_int_equal(r.client.passed, 13);
	assert_int_equal(r.client.delivered, 14);
	assert_int_equal(r.client.rejected, 4000000015u);
	/* what version 1 lacks is 0, not what the struct held */
	assert_int_equal(r.client.greet_pass_until, 0);
	assert_int_equal(r.client.trapped, 0);
	for (i = 0; i < REJECT_NREASONS; i++)
		assert_int_equal(r.client.rejected_by[i], 0);
	/* written again, it is version 2 */
	assert_int_equal(record_encode(TRUSTDB_CLIENT, &r, buf, sizeof(buf)),
	    sizeof(client_bytes));
	assert_int_equal(buf[0], 2);
	assert_memory_equal(buf + 1, client_v1_bytes + 1, 2 * 8);
	assert_int_equal(record_decode(TRUSTDB_CLIENT, buf,
	    sizeof(client_bytes), &again), 0);
	assert_memory_equal(&r, &again, sizeof(struct client_rec));
}

static void
test_sizes_and_fields(void **state)
{
	const struct record_field *f;
	size_t i, j, n, sum, max = 0;

	for (i = 0; i < NGOLDENS; i++) {
		assert_int_equal(record_size(goldens[i].t), goldens[i].size);
		if (goldens[i].size > max)
			max = goldens[i].size;
		f = record_fields(goldens[i].t, &n);
		assert_non_null(f);
		for (j = 0, sum = 1; j < n; j++) {
			assert_true(f[j].width == 1 || f[j].width == 4 ||
			    f[j].width == 8);
			assert_true(f[j].count >= 1);
			assert_true(f[j].offset + (size_t)f[j].width *
			    f[j].count <= goldens[i].rec_size);
			if (j > 0)	/* in struct order, no overlap */
				assert_true(f[j].offset >= f[j - 1].offset +
				    (size_t)f[j - 1].width * f[j - 1].count);
			sum += (size_t)f[j].width * f[j].count;
		}
		assert_int_equal(sum, goldens[i].size);
	}
	assert_int_equal(max, RECORD_MAX);
	assert_string_equal(record_name(TRUSTDB_GREY), "grey");
	assert_string_equal(record_name(TRUSTDB_SPAMTRAP), "spamtrap");

	f = record_fields(TRUSTDB_CLIENT, &n);
	assert_int_equal(n, 10);
	assert_string_equal(f[0].name, "first_seen");
	assert_true(f[0].is_signed);
	assert_int_equal(f[0].offset, offsetof(struct client_rec, first_seen));
	assert_string_equal(f[3].name, "connections");
	assert_false(f[3].is_signed);
	assert_int_equal(f[3].width, 4);
	assert_string_equal(f[9].name, "rejected_by");
	assert_int_equal(f[9].count, REJECT_NREASONS);
	f = record_fields(TRUSTDB_WHITE, &n);
	assert_string_equal(f[n - 1].name, "origin");
	assert_int_equal(f[n - 1].width, 1);
}

static void
test_bad_sizes(void **state)
{
	uint8_t buf[RECORD_MAX + 2];
	size_t i;

	assert_refused(TRUSTDB_GREY, NULL, 0);
	for (i = 0; i < NGOLDENS; i++) {
		memcpy(buf, goldens[i].bytes, goldens[i].size);
		buf[goldens[i].size] = 0;
		assert_refused(goldens[i].t, buf, 0);
		assert_refused(goldens[i].t, buf, 1);
		assert_refused(goldens[i].t, buf, goldens[i].size - 1);
		assert_refused(goldens[i].t, buf, goldens[i].size + 1);
	}
	/* another table's record, of another size */
	assert_refused(TRUSTDB_GREY, white_bytes, sizeof(white_bytes));
	assert_refused(TRUSTDB_TRAP, rcpt_bytes, sizeof(rcpt_bytes));
}

static void
test_bad_versions(void **state)
{
	static const uint8_t versions[] = { 0, 2, 3, 0x81, 255 };
	uint8_t buf[RECORD_MAX];
	size_t i, j;

	for (i = 0; i < NGOLDENS; i++) {
		if (goldens[i].t == TRUSTDB_CLIENT)
			continue;
		memcpy(buf, goldens[i].bytes, goldens[i].size);
		for (j = 0; j < sizeof(versions); j++) {
			buf[0] = versions[j];
			assert_refused(goldens[i].t, buf, goldens[i].size);
		}
	}
	/* client: each layout only with its own version */
	memcpy(buf, client_bytes, sizeof(client_bytes));
	buf[0] = 1;
	assert_refused(TRUSTDB_CLIENT, buf, sizeof(client_bytes));
	buf[0] = 3;
	assert_refused(TRUSTDB_CLIENT, buf, sizeof(client_bytes));
	memcpy(buf, client_v1_bytes, sizeof(client_v1_bytes));
	buf[0] = 2;
	assert_refused(TRUSTDB_CLIENT, buf, sizeof(client_v1_bytes));
	buf[0] = 0;
	assert_refused(TRUSTDB_CLIENT, buf, sizeof(client_v1_bytes));
}

static void
test_no_table(void **state)
{
	union record r;
	uint8_t buf[RECORD_MAX];
	size_t n = 7;

	memset(&r, 0, sizeof(r));
	assert_null(record_name(NO_TABLE));
	assert_null(record_name((enum trustdb_table)-1));
	assert_int_equal(record_size(NO_TABLE), 0);
	assert_null(record_fields(NO_TABLE, &n));
	assert_int_equal(n, 0);
	assert_int_equal(record_encode(NO_TABLE, &r, buf, sizeof(buf)), 0);
	assert_refused(NO_TABLE, grey_bytes, sizeof(grey_bytes));
	assert_refused((enum trustdb_table)-1, grey_bytes, sizeof(grey_bytes));
	assert_int_equal(record_expiry(NO_TABLE, &r, DAY), INT64_MAX);
}

static void
test_short_buffer(void **state)
{
	union record r;
	uint8_t buf[RECORD_MAX], zero[RECORD_MAX];
	size_t i;

	memset(zero, 0, sizeof(zero));
	for (i = 0; i < NGOLDENS; i++) {
		goldens[i].make(&r);
		memset(buf, 0, sizeof(buf));
		assert_int_equal(record_encode(goldens[i].t, &r, buf,
		    goldens[i].size - 1), 0);
		assert_memory_equal(buf, zero, sizeof(buf));
		assert_int_equal(record_encode(goldens[i].t, &r, buf,
		    goldens[i].size), goldens[i].size);
	}
}

static void
test_expiry(void **state)
{
	union record r;

	grey_make(&r);
	assert_int_equal(record_expiry(TRUSTDB_GREY, &r, DAY), NOW + 4 * 3600);
	white_make(&r);
	assert_int_equal(record_expiry(TRUSTDB_WHITE, &r, DAY),
	    NOW + 36 * DAY);
	trap_make(&r);
	assert_int_equal(record_expiry(TRUSTDB_TRAP, &r, DAY), NOW + DAY);
	spamtrap_make(&r);
	assert_int_equal(record_expiry(TRUSTDB_SPAMTRAP, &r, DAY), INT64_MAX);
	rcpt_make(&r);
	assert_int_equal(record_expiry(TRUSTDB_RCPT, &r, DAY), NOW + 600);
	r.rcpt.expire = 0;		/* never */
	assert_int_equal(record_expiry(TRUSTDB_RCPT, &r, DAY), INT64_MAX);
	client_make(&r);
	assert_int_equal(record_expiry(TRUSTDB_CLIENT, &r, 90 * DAY),
	    NOW + 90 * DAY);
	assert_int_equal(record_expiry(TRUSTDB_CLIENT, &r, 1), NOW + 1);
	/* a hostile last_seen cannot overflow */
	r.client.last_seen = INT64_MAX - 10;
	assert_int_equal(record_expiry(TRUSTDB_CLIENT, &r, 90 * DAY),
	    INT64_MAX);
	r.client.last_seen = INT64_MIN + 10;
	assert_int_equal(record_expiry(TRUSTDB_CLIENT, &r, -DAY), INT64_MIN);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_golden_encode),
		cmocka_unit_test(test_golden_decode),
		cmocka_unit_test(test_roundtrip_extremes),
		cmocka_unit_test(test_roundtrip_values),
		cmocka_unit_test(test_client_v1),
		cmocka_unit_test(test_sizes_and_fields),
		cmocka_unit_test(test_bad_sizes),
		cmocka_unit_test(test_bad_versions),
		cmocka_unit_test(test_no_table),
		cmocka_unit_test(test_short_buffer),
		cmocka_unit_test(test_expiry),
	};

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
