/*
 * record.h — the records of the trust database and their encoding (pure:
 * no I/O, no Berkeley DB, no logging; see record.c for the layouts).
 *
 * One record type per table of the trust database (enum trustdb_table):
 * grey, white, client, trap, spamtrap and rcpt, each a C struct here.  A
 * record is encoded as a version byte followed by its fields in a fixed
 * order, little-endian, each as wide as its member (1, 4 or 8 octets).
 * This is the value format of the databases on disk, and the format in
 * which records travel between greyd hosts.
 *
 * Decoding takes untrusted bytes: an encoding of another size or version
 * than one of the record's layouts is refused (-1), never read past.  Every
 * layout ever written stays readable: client records have a version 1
 * layout (before greet_pass_until, trapped and rejected_by) and the
 * version 2 layout written today; the other records have version 1 only.
 */
#ifndef GREYD_RECORD_H
#define GREYD_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum trustdb_table {
	TRUSTDB_GREY, TRUSTDB_WHITE, TRUSTDB_CLIENT, TRUSTDB_TRAP,
	TRUSTDB_SPAMTRAP, TRUSTDB_RCPT,
};
#define TRUSTDB_NTABLES	6

enum white_origin { WHITE_LOCAL = 1, WHITE_PEER = 2, WHITE_ADMIN = 3 };

struct grey_rec {
	int64_t first_seen, last_seen;
	int64_t pass_after;	/* a retry at or after this passes */
	int64_t expire;		/* first_seen + greylist_retry_window */
	uint32_t attempts;
};

struct white_rec {
	int64_t first_seen, last_seen;
	int64_t expire;
	uint32_t passes;	/* greylist passes that (re)made this entry */
	uint32_t messages;	/* messages delivered */
	uint8_t origin;		/* enum white_origin */
};

/*
 * Why a client was rejected (client_rec.rejected_by[]).  The number of
 * reasons is part of the client record's layout: a new reason needs a new
 * layout version (record.c).
 */
enum reject_reason {
	REJECT_RCPT,		/* unknown recipient (550 5.1.1) */
	REJECT_LIMIT,		/* a per-client limit (421 4.7.0) */
	REJECT_PROTOCOL,	/* non-SMTP command, bare newline, errors */
	REJECT_PREGREET,	/* talked before the banner ended */
	REJECT_TRAP,		/* trapped client, or RCPT to a spamtrap */
	REJECT_BACKEND,		/* the backend's own 5xx */
	REJECT_DNSBL,
	REJECT_SPF,
	REJECT_NREASONS
};

struct client_rec {
	int64_t first_seen, last_seen;
	int64_t greet_pass_until;	/* pregreet test passed: not retested before */
	uint32_t connections, greylisted, passed, delivered, rejected;
	uint32_t trapped;		/* times it was trapped */
	uint32_t rejected_by[REJECT_NREASONS];	/* sums to rejected */
};

enum trap_reason {
	TRAP_SPAMTRAP = 1,	/* sent to a spamtrap address */
	TRAP_PREGREET = 2,	/* pregreet_action = trap */
	TRAP_PROTOCOL = 3,	/* protocol_error_action = trap */
	TRAP_ADMIN = 4,		/* greydb add trap */
	TRAP_PEER = 5,		/* from a sync peer */
};

struct trap_rec {
	int64_t trapped_at, expire;
	uint8_t reason;		/* enum trap_reason */
};

/* Where a spamtrap or rcpt record came from. */
enum list_origin {
	ORIGIN_MAP = 1,		/* recipient_maps / spamtrap_maps, rebuilt on load */
	ORIGIN_ADMIN = 2,	/* greydb add / import: kept until deleted */
	ORIGIN_CALLOUT = 3,	/* rcpt only: the backend's answer, cached */
	ORIGIN_SYNC = 4,	/* from a sync peer */
};

struct spamtrap_rec {
	int64_t added;		/* for ORIGIN_MAP: the load stamp */
	uint8_t origin;		/* enum list_origin */
};

struct rcpt_rec {
	int64_t checked;	/* for ORIGIN_MAP: the load stamp */
	int64_t expire;		/* 0 = never (map, admin) */
	uint8_t valid;		/* 1 valid, 0 unknown (callout said 5xx) */
	uint8_t origin;		/* enum list_origin */
};

/* Room for a record of any table. */
union record {
	struct grey_rec grey;
	struct white_rec white;
	struct client_rec client;
	struct trap_rec trap;
	struct spamtrap_rec spamtrap;
	struct rcpt_rec rcpt;
};

/* Octets of the largest encoding: a client record of version 2. */
#define RECORD_MAX	(1 + 3 * 8 + (6 + REJECT_NREASONS) * 4)

/* One member of a record struct, as the codec sees it. */
struct record_field {
	const char *name;	/* the member's name */
	size_t offset;		/* offsetof the member */
	uint8_t width;		/* octets in the struct and encoded: 1, 4 or 8 */
	bool is_signed;
	uint8_t count;		/* elements of an array member; 1 otherwise */
};

/* "grey", "white", ...; NULL for no such table. */
const char *record_name(enum trustdb_table t);
/* Octets of the encoding record_encode writes; 0 for no such table. */
size_t record_size(enum trustdb_table t);
/* The fields record_encode writes, in order; *n of them (NULL, 0: no such
 * table). */
const struct record_field *record_fields(enum trustdb_table t, size_t *n);
/*
 * Encode rec (a struct grey_rec for TRUSTDB_GREY, ...) into buf; returns
 * the octets written, or 0 if len is less than record_size(t) or there is
 * no such table.
 */
size_t record_encode(enum trustdb_table t, const void *rec, uint8_t *buf,
    size_t len);
/*
 * Decode size octets at data into rec (the struct of table t; members a
 * layout lacks are 0).  0, or -1 if the octets are not a record of any
 * known layout of t (rec is then untouched).
 */
int record_decode(enum trustdb_table t, const void *data, size_t size,
    void *rec);
/*
 * When a decoded record stops being useful: grey, white and trap records
 * at their expire, rcpt records at theirs unless it is 0 (never), client
 * records client_ttl seconds after last_seen; spamtrap records never.
 * "Never" is INT64_MAX; a sum past the range of int64_t is clamped to it.
 */
int64_t record_expiry(enum trustdb_table t, const void *rec,
    int64_t client_ttl);

#endif
