/*
 * greylist.c — the greylist policy (pure; see greylist.h).
 *
 * A triplet is (client key, normalised sender, recipient).  The client key
 * is the client address masked to greylist_ipv4_prefix/greylist_ipv6_prefix,
 * because large senders retry from a neighbouring address of their pool.
 *
 *   no record, or record expired   -> NEW:   451, record first_seen = now,
 *                                            pass_after = now + delay,
 *                                            expire = now + retry window
 *   now < pass_after               -> EARLY: 451 with the seconds left
 *   pass_after <= now < expire     -> PASS:  the caller whitelists the client
 *                                            key for white_expiry and drops
 *                                            the grey record
 *
 * The retry window is measured from the first attempt (as OpenBSD spamd's
 * GREYEXP), so a delay of 5m and a window of 4h let a sender retry between
 * 5 minutes and 4 hours after its first try.
 *
 * Sender normalisation follows postgrey: per-message tags must not make a
 * new triplet per message, so BATV (prvs=, msprvs1=, btv1==) tags and
 * +extensions are removed and numbers in the local part that stand alone
 * between separators (VERP: bounce-1234-user) become '#'.
 */
#include <ctype.h>
#include <string.h>

#include "greylist.h"

enum greylist_verdict
greylist_decide(const struct greyd_conf *c, const struct grey_rec *old,
    int64_t now, struct grey_rec *upd, int *wait)
{
	return greylist_decide_min(c, old, now, 0, upd, wait);
}

enum greylist_verdict
greylist_decide_min(const struct greyd_conf *c, const struct grey_rec *old,
    int64_t now, int min_delay, struct grey_rec *upd, int *wait)
{
	int delay = c->greylist_delay > min_delay ? c->greylist_delay :
	    min_delay;

	if (old == NULL || old->expire <= now || old->first_seen > now) {
		memset(upd, 0, sizeof(*upd));
		upd->first_seen = upd->last_seen = now;
		upd->pass_after = now + delay;
		upd->expire = now + c->greylist_retry_window;
		upd->attempts = 1;
		*wait = delay;
		/* A zero delay passes the very first attempt. */
		return delay > 0 ? GREYLIST_NEW : GREYLIST_PASS;
	}
	*upd = *old;
	upd->last_seen = now;
	if (upd->attempts < UINT32_MAX)
		upd->attempts++;
	if (upd->pass_after < old->first_seen + min_delay)
		upd->pass_after = old->first_seen + min_delay;
	if (now < upd->pass_after) {
		*wait = (int)(upd->pass_after - now);
		return GREYLIST_EARLY;
	}
	*wait = 0;
	return GREYLIST_PASS;
}

void
greylist_white_pass(const struct greyd_conf *c, const struct white_rec *old,
    int64_t now, struct white_rec *upd)
{
	if (old != NULL && old->expire > now)
		*upd = *old;
	else {
		memset(upd, 0, sizeof(*upd));
		upd->first_seen = now;
		upd->origin = WHITE_LOCAL;
	}
	if (upd->passes < UINT32_MAX)
		upd->passes++;
	greylist_white_refresh(c, upd, now);
}

void
greylist_white_refresh(const struct greyd_conf *c, struct white_rec *w,
    int64_t now)
{
	w->last_seen = now;
	/* Admin entries keep the expiry the administrator gave them. */
	if (w->origin != WHITE_ADMIN && w->expire < now + c->white_expiry)
		w->expire = now + c->white_expiry;
}

void
greylist_client_key(const struct greyd_conf *c, const struct netaddr *a,
    char *buf, size_t len)
{
	int prefix = a->family == AF_INET ? c->greylist_ipv4_prefix :
	    c->greylist_ipv6_prefix;

	netaddr_key(a, prefix, buf, len);
}

/* Length of a BATV/SRS-like tag prefix of the local part, 0 if none. */
static size_t
batv_tag_len(const char *local, size_t n)
{
	static const char *const tags[] = { "prvs=", "msprvs1=", "btv1==" };
	size_t i, t, sep;

	for (i = 0; i < sizeof(tags) / sizeof(tags[0]); i++) {
		t = strlen(tags[i]);
		if (n <= t || strncmp(local, tags[i], t) != 0)
			continue;
		/* prvs=TAGVAL=user: skip up to and including the next '=' (or "==") */
		for (sep = t; sep < n && local[sep] != '='; sep++)
			;
		if (sep >= n - 1)
			return 0;
		while (sep < n && local[sep] == '=')
			sep++;
		return sep;
	}
	return 0;
}

static bool
is_verp_sep(char ch)
{
	return ch == '-' || ch == '.' || ch == '_' || ch == '=' || ch == '+';
}

/* Copy local[0..n) to out, digits-only words replaced by '#', stop at '+'. */
static size_t
fold_local(const char *local, size_t n, char *out, size_t len)
{
	size_t i = 0, o = 0, j;

	while (i < n && local[i] != '+' && o + 1 < len) {
		bool word_start = i == 0 || is_verp_sep(local[i - 1]);

		if (word_start && isdigit((unsigned char)local[i])) {
			for (j = i; j < n && isdigit((unsigned char)local[j]); j++)
				;
			if (j == n || local[j] == '+' || is_verp_sep(local[j])) {
				out[o++] = '#';
				i = j;
				continue;
			}
		}
		out[o++] = (char)tolower((unsigned char)local[i++]);
	}
	out[o] = '\0';
	return o;
}

void
greylist_normalise_sender(const char *sender, char *out, size_t len)
{
	const char *at = strrchr(sender, '@');
	size_t n, skip, o;

	if (len == 0)
		return;
	if (at == NULL || sender[0] == '"') {
		/* null sender, bare local part or quoted local part: lowercase only */
		for (o = 0; sender[o] != '\0' && o + 1 < len; o++)
			out[o] = (char)tolower((unsigned char)sender[o]);
		out[o] = '\0';
		return;
	}
	n = (size_t)(at - sender);
	skip = batv_tag_len(sender, n);
	o = fold_local(sender + skip, n - skip, out, len);
	for (; *at != '\0' && o + 1 < len; at++)
		out[o++] = (char)tolower((unsigned char)*at);
	out[o] = '\0';
}

size_t
greylist_triplet_key(char *buf, size_t len, const char *clientkey,
    const char *sender, const char *rcpt)
{
	char s[SMTP_PATH_MAX_KEY], r[SMTP_PATH_MAX_KEY];
	size_t a, b, d, i;

	greylist_normalise_sender(sender, s, sizeof(s));
	for (i = 0; rcpt[i] != '\0' && i + 1 < sizeof(r); i++)
		r[i] = (char)tolower((unsigned char)rcpt[i]);
	r[i] = '\0';
	a = strlen(clientkey);
	b = strlen(s);
	d = strlen(r);
	if (a + 1 + b + 1 + d + 1 > len)
		return 0;
	memcpy(buf, clientkey, a + 1);
	memcpy(buf + a + 1, s, b + 1);
	memcpy(buf + a + 1 + b + 1, r, d + 1);
	return a + 1 + b + 1 + d;
}

bool
greylist_exempt(const struct greyd_conf *c, const char *rcpt)
{
	static const char pm[] = "postmaster";
	size_t n = sizeof(pm) - 1;

	if (!c->greylist_exempt_postmaster)
		return false;
	return strncasecmp(rcpt, pm, n) == 0 &&
	    (rcpt[n] == '\0' || rcpt[n] == '@');
}

const char *
greylist_verdict_name(enum greylist_verdict v)
{
	switch (v) {
	case GREYLIST_NEW:	return "new";
	case GREYLIST_EARLY:	return "early";
	case GREYLIST_PASS:	return "pass";
	case GREYLIST_EXEMPT:	return "exempt";
	}
	return "?";
}
