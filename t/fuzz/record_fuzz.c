/*
 * t/fuzz/record_fuzz.c — libFuzzer target for greyd/record.c.
 *
 * The input is a stored value (or, later, a record from a sync peer) and
 * is decoded as a record of every table, in libFuzzer's buffer of exactly
 * its size, so that AddressSanitizer catches any read past it.  A refused input must leave the output
 * struct untouched.  An accepted one is encoded again: the encoding has
 * record_size octets, decodes to the same struct, and is the input itself
 * when the input was of the layout written today (a client record of
 * version 1 comes back as version 2).  record_expiry is asked about every
 * record decoded, whatever its times (UndefinedBehaviorSanitizer catches
 * an overflow).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x) do { if (!(x)) abort(); } while (0)

/* Decode as t; a refusal must not have written to the output. */
static int
decode_checked(enum trustdb_table t, const uint8_t *data, size_t size,
    union record *r)
{
	union record poison;

	memset(&poison, 0xa5, sizeof(poison));
	*r = poison;
	if (record_decode(t, data, size, r) == 0)
		return 0;
	CHECK(memcmp(r, &poison, sizeof(*r)) == 0);
	return -1;
}

static void
fuzz_table(enum trustdb_table t, const uint8_t *data, size_t size)
{
	union record r, again;
	uint8_t buf[RECORD_MAX];
	size_t n;

	if (decode_checked(t, data, size, &r) == -1)
		return;
	(void)record_expiry(t, &r, 90 * 86400);
	(void)record_expiry(t, &r, -90 * 86400);
	n = record_encode(t, &r, buf, sizeof(buf));
	CHECK(n == record_size(t));
	if (size == n && data[0] == buf[0])
		CHECK(memcmp(buf, data, n) == 0);
	/* the bytes of the union past t's struct are the poison in both */
	CHECK(decode_checked(t, buf, n, &again) == 0);
	CHECK(memcmp(&r, &again, sizeof(r)) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int t;

	for (t = 0; t < TRUSTDB_NTABLES; t++)
		fuzz_table((enum trustdb_table)t, data, size);
	return 0;
}
