/*
 * session_impl.h — the session's own header, shared by its files only
 * (session*.c); nothing else includes it.
 *
 * The session is split by concern, postscreen-style:
 *   session.c          life cycle, states, closing, the input loop, the
 *                      pending check's resume, hand-off to the tarpit
 *   session_io.c       the client's byte stream: the only code that
 *                      touches the client's bufferevent
 *   session_cmd.c      the command table and the commands (HELO/EHLO,
 *                      MAIL with SPF, DATA, RSET, NOOP, QUIT, ...)
 *   session_rcpt.c     RCPT: the facts policy.c asks for, and its verdict
 *   session_backend.c  the relay to the backend and its replies
 *   session_data.c     message text (the CRLF.CRLF and line rules)
 *   session_greet.c    the before-220 (pregreet) test
 *
 * States (enum session_state):
 *   GREET    the pregreet test: "220-" was sent; input is held until
 *            greet_wait is over (whatever arrived meanwhile is early talk).
 *   COMMAND  command lines are read from the input buffer and answered one
 *            at a time; pipelined commands wait in the buffer, in order.
 *   WAIT     a check is out (the DNS lists, a callout, SPF): input stays
 *            buffered and the idle timer is off until its answer.
 *   BACKEND  a command is with the backend (opening the relay, MAIL,
 *            RCPT, DATA, end of data, RSET): likewise.
 *   DATA     message text, streamed to the backend (session_data.c).
 *   CLOSING  the last reply is being flushed; freed when it is out.
 */
#ifndef GREYD_SESSION_IMPL_H
#define GREYD_SESSION_IMPL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include <event2/bufferevent.h>
#include <event2/event.h>

#include "checks.h"
#include "conf.h"
#include "dnsbl.h"
#include "netaddr.h"
#include "policy.h"
#include "server.h"
#include "session.h"
#include "smtp.h"
#include "trustdb.h"

#define SESSION_PULL_MAX	(64 * 1024)	/* octets examined per pass */
#define SESSION_IN_HIGH		(128 * 1024)	/* stop reading the client */
#define SESSION_OUT_HIGH	(64 * 1024)	/* stop answering until flushed */
#define SESSION_RELAY_HIGH	(256 * 1024)	/* stop reading message text */
#define SESSION_CLOSE_TIMEOUT	10		/* seconds to flush the last reply */

enum session_state {
	SS_GREET, SS_COMMAND, SS_WAIT, SS_BACKEND, SS_DATA, SS_CLOSING,
};

/* What the backend's next reply answers. */
enum session_await {
	AW_NONE, AW_OPEN, AW_MAIL, AW_RCPT, AW_DATA, AW_STREAM, AW_DOT, AW_RSET,
};

struct relay;

/* session_io.c's state: the client's stream. */
struct sio_callbacks;

struct session_io {
	struct bufferevent *bev;
	const struct sio_callbacks *cb;
};

struct session {
	struct conn conn;		/* in the server's registry */
	const struct session_deps *d;
	const struct greyd_conf *conf;	/* held for the session's life */
	struct session_io io;
	struct relay *relay;
	struct check_slot check;	/* the one check waited for */
	struct sockaddr_storage peer, local;
	struct netaddr addr;
	char addrstr[NETADDR_STRLEN];
	unsigned port;
	enum session_state state;
	enum session_await await;
	bool discarding;	/* dropping the rest of an over-long line */
	bool out_blocked;	/* waiting for the client to read our replies */
	bool relay_blocked;	/* waiting for the backend to take message text */
	bool white;		/* the client key passed greylisting this session */
	bool trapped;		/* reject every RCPT with 550 5.7.1 */
	bool greet_tested;	/* the pregreet test ran ... */
	bool greet_failed;	/* ... and caught it, or a protocol error did */
	int mult;		/* 1, or trusted_limit_multiplier */
	int errors;
	unsigned unknown_rcpts;	/* 550 5.1.1 answers in this session */
	unsigned messages;	/* transactions (MAIL) in this session */
	struct dnsbl_lookup *bl_client;	/* dnsbl_sites, from the connect */
	struct dnsbl_lookup *bl_sender;	/* rhsbl_sender_sites, from MAIL */
	bool bl_client_seen;	/* its verdict is taken (and logged) */
	bool bl_sender_seen;
	struct rcpt_facts rf;	/* what is known of the RCPT being decided */
	char white_key[NETADDR_STRLEN];	/* rf.white_key */
	struct event *greet_ev;	/* the end of greet_wait */

	/* HELO/EHLO */
	char helo[SMTP_LINE_MAX];
	bool helo_seen, esmtp;

	/* the transaction */
	bool mail_seen;
	bool backend_mail;	/* the backend accepted MAIL for it */
	bool txn_broken;	/* the backend went away during it */
	char sender[SMTP_PATH_MAX];
	char mail_params[SMTP_PARAMS_MAX];
	char pending[SMTP_PATH_MAX + SMTP_PARAMS_MAX + 16];	/* command to send to the backend */
	char rcpt[SMTP_PATH_MAX];		/* recipient of the pending RCPT */
	char rcpt_params[SMTP_PARAMS_MAX];	/* and its parameters */
	bool spf_greylist;	/* SPF action greylist: even if white */
	char *spf_key;		/* "spf:domain" after a pass, or NULL */
	char *spf_received;	/* the Received-SPF line, or NULL */
	unsigned nrcpt;		/* recipients the backend accepted */
	unsigned nrcpt_seen;
	long long data_bytes;
	const char *data_error;	/* reply for a poisoned message */
	bool data_crlf;		/* the message text so far ends in CRLF */
	bool data_last_cr;	/* its last octet is CR */

	struct {
		uint32_t greylisted, passed, delivered, rejected, trapped;
		uint32_t rejected_by[REJECT_NREASONS];
	} count;
};

/* ---- session_state.c ---- */
void session_close(struct session *s);
void session_error(struct session *s, const char *reply);
void session_reset_txn(struct session *s);
void session_drop_relay(struct session *s, bool quit);
void session_count_reject(struct session *s, enum reject_reason why);
void session_trap_client(struct session *s, enum trap_reason why);
bool session_tarpit(struct session *s, const char *reply, const char *why,
    bool banner);
bool session_caught(struct session *s, enum reject_reason reason,
    enum trap_reason trap, enum conf_action action, bool banner);
/* Hold input while a check or the backend answers; take it up again. */
void session_suspend(struct session *s, enum session_state why);
void session_resume(struct session *s);

/* ---- session_io.c ---- */
/* What the stream calls back (the session's own event handlers). */
struct sio_callbacks {
	void (*input)(struct session *s);		/* new input */
	void (*drained)(struct session *s);		/* output below low mark */
	void (*event)(struct session *s, short what);	/* EOF, error,
							 * timeout */
};
int sio_open(struct session *s, evutil_socket_t fd,
    const struct sio_callbacks *cb);
/* Call cb->input from the event loop soon (input that waited). */
void sio_kick(struct session *s);
/* Call cb->drained from the event loop soon (after sio_take_fd). */
void sio_kick_output(struct session *s);
void sio_free(struct session *s);
void sio_reply(struct session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void sio_write(struct session *s, const char *p, size_t n);
size_t sio_out_len(const struct session *s);
size_t sio_in_len(const struct session *s);
/* The first n (<= sio_in_len) octets of input, contiguous. */
const char *sio_in_peek(struct session *s, size_t n);
void sio_in_drain(struct session *s, size_t n);
void sio_reading(struct session *s, bool on);
bool sio_is_reading(const struct session *s);
/* The idle timeout on reading (0: none) and the write timeout. */
void sio_timeouts(struct session *s, int read_s, int write_s);
/* Stop reading and let the output go within timeout seconds. */
void sio_flush_then_close(struct session *s, int timeout);
/* Take the socket away from the stream (its output is dropped): the
 * caller owns the descriptor; the input already read is left in place. */
evutil_socket_t sio_take_fd(struct session *s);

/* ---- session_cmd.c ---- */
size_t session_command_input(struct session *s, const char *p, size_t n);
/* The SPF check of MAIL FROM ended (s->check.answer). */
void session_mail_checked(struct session *s);

/* ---- session_rcpt.c ---- */
void session_rcpt(struct session *s, const struct smtp_command *cmd,
    const char *line, size_t len);
/* A check the RCPT waited for ended (the lists, a callout). */
void session_rcpt_checked(struct session *s);

/* ---- session_backend.c ---- */
/* Make progress towards sending s->pending (open, MAIL, then it). */
void session_backend_next(struct session *s);
void session_received_spf(struct session *s);

/* ---- session_data.c ---- */
size_t session_data_input(struct session *s, const char *p, size_t n);

/* ---- session_greet.c ---- */
/* The banner: "220 ..." now, or the pregreet test's "220-". */
void session_greet(struct session *s);
/* The client closed during greet_wait: true if it talked first (then it
 * was caught as an early talker), else false (HANGUP logged). */
bool session_greet_hangup(struct session *s);

#endif
