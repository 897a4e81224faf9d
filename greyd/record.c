/*
 * record.c — the codec of trust database records (see record.h): pure,
 * depends on libc only.
 *
 * One table, types[], says for each record type its name, the size of its
 * struct and its layouts; a layout is a version byte and a list of fields,
 * each one line made from the struct member itself (FIELD, ARRAY: name,
 * offset, width and signedness come from the member's declaration, and a
 * member of any type but [u]int8_t, [u]int32_t or [u]int64_t does not
 * compile).  Encoding, decoding, sizes and validation all walk that table.
 * The first layout of a type is the one written; every layout is read.
 *
 * On disk (v = version byte; widths in octets; little-endian):
 *
 *   grey     v=1 first_seen:8 last_seen:8 pass_after:8 expire:8 attempts:4
 *   white    v=1 first_seen:8 last_seen:8 expire:8 passes:4 messages:4
 *                origin:1
 *   client   v=2 first_seen:8 last_seen:8 greet_pass_until:8 connections:4
 *                greylisted:4 passed:4 delivered:4 rejected:4 trapped:4
 *                rejected_by:4 x REJECT_NREASONS
 *            v=1 first_seen:8 last_seen:8 connections:4 greylisted:4
 *                passed:4 delivered:4 rejected:4  (read only)
 *   trap     v=1 trapped_at:8 expire:8 reason:1
 *   spamtrap v=1 added:8 origin:1
 *   rcpt     v=1 checked:8 expire:8 valid:1 origin:1
 *
 * Changing a record: add a layout with the next version in front of the
 * current one (the old stays, for reading) and put the new member's line
 * in it.  Editing an existing layout would make every stored record of it
 * unreadable; t/unit/record.c pins the bytes of each layout.
 */
#include <string.h>

#include "record.h"

struct layout {
	uint8_t version;
	const struct record_field *fields;
	size_t nfields;
};

struct record_type {
	const char *name;
	size_t rec_size;		/* sizeof the struct */
	const struct layout *layouts;	/* [0] is written, all are read */
	size_t nlayouts;
};

#define MEMBER(s, m)	(((struct s *)0)->m)
#define IS_SIGNED(x)	_Generic((x), int8_t: true, int32_t: true, \
			    int64_t: true, uint8_t: false, uint32_t: false, \
			    uint64_t: false)
#define FIELD(s, m)	{ #m, offsetof(struct s, m), sizeof(MEMBER(s, m)), \
			  IS_SIGNED(MEMBER(s, m)), 1 }
#define ARRAY(s, m)	{ #m, offsetof(struct s, m), sizeof(MEMBER(s, m)[0]), \
			  IS_SIGNED(MEMBER(s, m)[0]), \
			  sizeof(MEMBER(s, m)) / sizeof(MEMBER(s, m)[0]) }
#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))
#define LAYOUT(v, f)	{ (v), (f), NELEM(f) }
#define TYPE(n, s, l)	{ (n), sizeof(struct s), (l), NELEM(l) }

static const struct record_field grey_v1[] = {
	FIELD(grey_rec, first_seen),
	FIELD(grey_rec, last_seen),
	FIELD(grey_rec, pass_after),
	FIELD(grey_rec, expire),
	FIELD(grey_rec, attempts),
};

static const struct record_field white_v1[] = {
	FIELD(white_rec, first_seen),
	FIELD(white_rec, last_seen),
	FIELD(white_rec, expire),
	FIELD(white_rec, passes),
	FIELD(white_rec, messages),
	FIELD(white_rec, origin),
};

static const struct record_field client_v2[] = {
	FIELD(client_rec, first_seen),
	FIELD(client_rec, last_seen),
	FIELD(client_rec, greet_pass_until),
	FIELD(client_rec, connections),
	FIELD(client_rec, greylisted),
	FIELD(client_rec, passed),
	FIELD(client_rec, delivered),
	FIELD(client_rec, rejected),
	FIELD(client_rec, trapped),
	ARRAY(client_rec, rejected_by),
};

static const struct record_field client_v1[] = {
	FIELD(client_rec, first_seen),
	FIELD(client_rec, last_seen),
	FIELD(client_rec, connections),
	FIELD(client_rec, greylisted),
	FIELD(client_rec, passed),
	FIELD(client_rec, delivered),
	FIELD(client_rec, rejected),
};

static const struct record_field trap_v1[] = {
	FIELD(trap_rec, trapped_at),
	FIELD(trap_rec, expire),
	FIELD(trap_rec, reason),
};

static const struct record_field spamtrap_v1[] = {
	FIELD(spamtrap_rec, added),
	FIELD(spamtrap_rec, origin),
};

static const struct record_field rcpt_v1[] = {
	FIELD(rcpt_rec, checked),
	FIELD(rcpt_rec, expire),
	FIELD(rcpt_rec, valid),
	FIELD(rcpt_rec, origin),
};

static const struct layout grey_layouts[] = { LAYOUT(1, grey_v1) };
static const struct layout white_layouts[] = { LAYOUT(1, white_v1) };
static const struct layout client_layouts[] = {
	LAYOUT(2, client_v2), LAYOUT(1, client_v1),
};
static const struct layout trap_layouts[] = { LAYOUT(1, trap_v1) };
static const struct layout spamtrap_layouts[] = { LAYOUT(1, spamtrap_v1) };
static const struct layout rcpt_layouts[] = { LAYOUT(1, rcpt_v1) };

static const struct record_type types[TRUSTDB_NTABLES] = {
	[TRUSTDB_GREY] = TYPE("grey", grey_rec, grey_layouts),
	[TRUSTDB_WHITE] = TYPE("white", white_rec, white_layouts),
	[TRUSTDB_CLIENT] = TYPE("client", client_rec, client_layouts),
	[TRUSTDB_TRAP] = TYPE("trap", trap_rec, trap_layouts),
	[TRUSTDB_SPAMTRAP] = TYPE("spamtrap", spamtrap_rec, spamtrap_layouts),
	[TRUSTDB_RCPT] = TYPE("rcpt", rcpt_rec, rcpt_layouts),
};

static const struct record_type *
type_of(enum trustdb_table t)
{
	if ((int)t < 0 || (int)t >= TRUSTDB_NTABLES)
		return NULL;
	return &types[t];
}

static size_t
layout_size(const struct layout *l)
{
	size_t i, n = 1;

	for (i = 0; i < l->nfields; i++)
		n += (size_t)l->fields[i].width * l->fields[i].count;
	return n;
}

/* The value of one element of a member, as its own type says. */
static uint64_t
member_get(const struct record_field *f, const void *m)
{
	switch (f->width) {
	case 1:
		return f->is_signed ? (uint64_t)*(const int8_t *)m :
		    *(const uint8_t *)m;
	case 4:
		return f->is_signed ? (uint64_t)*(const int32_t *)m :
		    *(const uint32_t *)m;
	default:
		return f->is_signed ? (uint64_t)*(const int64_t *)m :
		    *(const uint64_t *)m;
	}
}

static void
member_set(const struct record_field *f, void *m, uint64_t v)
{
	switch (f->width) {
	case 1:
		if (f->is_signed)
			*(int8_t *)m = (int8_t)v;
		else
			*(uint8_t *)m = (uint8_t)v;
		break;
	case 4:
		if (f->is_signed)
			*(int32_t *)m = (int32_t)v;
		else
			*(uint32_t *)m = (uint32_t)v;
		break;
	default:
		if (f->is_signed)
			*(int64_t *)m = (int64_t)v;
		else
			*(uint64_t *)m = v;
		break;
	}
}

static uint8_t *
put_le(uint8_t *p, uint64_t v, unsigned width)
{
	unsigned i;

	for (i = 0; i < width; i++)
		p[i] = (uint8_t)(v >> (8 * i));
	return p + width;
}

static const uint8_t *
get_le(const uint8_t *p, uint64_t *v, unsigned width)
{
	unsigned i;

	*v = 0;
	for (i = width; i > 0; i--)
		*v = (*v << 8) | p[i - 1];
	return p + width;
}

/* The layout of t whose version and size the octets have; NULL if none. */
static const struct layout *
layout_of(const struct record_type *rt, const uint8_t *data, size_t size)
{
	size_t i;

	if (size == 0)
		return NULL;
	for (i = 0; i < rt->nlayouts; i++)
		if (rt->layouts[i].version == data[0] &&
		    layout_size(&rt->layouts[i]) == size)
			return &rt->layouts[i];
	return NULL;
}

const char *
record_name(enum trustdb_table t)
{
	const struct record_type *rt = type_of(t);

	return rt != NULL ? rt->name : NULL;
}

size_t
record_size(enum trustdb_table t)
{
	const struct record_type *rt = type_of(t);

	return rt != NULL ? layout_size(&rt->layouts[0]) : 0;
}

const struct record_field *
record_fields(enum trustdb_table t, size_t *n)
{
	const struct record_type *rt = type_of(t);

	*n = rt != NULL ? rt->layouts[0].nfields : 0;
	return rt != NULL ? rt->layouts[0].fields : NULL;
}

size_t
record_encode(enum trustdb_table t, const void *rec, uint8_t *buf,
    size_t len)
{
	const struct record_type *rt = type_of(t);
	const struct layout *l;
	const struct record_field *f;
	uint8_t *p = buf;
	size_t i, j;

	if (rt == NULL || len < layout_size(&rt->layouts[0]))
		return 0;
	l = &rt->layouts[0];
	*p++ = l->version;
	for (i = 0; i < l->nfields; i++) {
		f = &l->fields[i];
		for (j = 0; j < f->count; j++)
			p = put_le(p, member_get(f, (const uint8_t *)rec +
			    f->offset + j * f->width), f->width);
	}
	return (size_t)(p - buf);
}

int
record_decode(enum trustdb_table t, const void *data, size_t size,
    void *rec)
{
	const struct record_type *rt = type_of(t);
	const struct layout *l;
	const struct record_field *f;
	const uint8_t *p = data;
	uint64_t v;
	size_t i, j;

	if (rt == NULL || (l = layout_of(rt, data, size)) == NULL)
		return -1;
	memset(rec, 0, rt->rec_size);
	p++;
	for (i = 0; i < l->nfields; i++) {
		f = &l->fields[i];
		for (j = 0; j < f->count; j++) {
			p = get_le(p, &v, f->width);
			member_set(f, (uint8_t *)rec + f->offset +
			    j * f->width, v);
		}
	}
	return 0;
}

static int64_t
add_clamped(int64_t a, int64_t b)
{
	int64_t sum;

	if (__builtin_add_overflow(a, b, &sum))
		return b > 0 ? INT64_MAX : INT64_MIN;
	return sum;
}

int64_t
record_expiry(enum trustdb_table t, const void *rec, int64_t client_ttl)
{
	int64_t e;

	switch (t) {
	case TRUSTDB_GREY:
		return ((const struct grey_rec *)rec)->expire;
	case TRUSTDB_WHITE:
		return ((const struct white_rec *)rec)->expire;
	case TRUSTDB_CLIENT:
		return add_clamped(((const struct client_rec *)rec)->last_seen,
		    client_ttl);
	case TRUSTDB_TRAP:
		return ((const struct trap_rec *)rec)->expire;
	case TRUSTDB_RCPT:
		e = ((const struct rcpt_rec *)rec)->expire;
		return e != 0 ? e : INT64_MAX;
	case TRUSTDB_SPAMTRAP:
		break;
	}
	return INT64_MAX;
}
