#!/bin/sh
# bench.sh — the driver of `make bench`: greyd's benchmarks, each figure
# printed beside its target and a reference measured in the same run.
#
#   a) greylist sessions/s: greyd (backend_proxy = none, in front of
#      smtp-sink) answers greyload -m grey, a new triplet every session, from
#      65,534 client addresses.  Target >= 5,000/s.  Reference: the same load
#      straight to smtp-sink on the same core (the load generator's ceiling).
#   b) relayed messages/s: greyload -m relay (-k messages of -b bytes per
#      session) through greyd's fast path (allow_clients = 127.0.0.0/8) and
#      directly to the same smtp-sink, one after the other.  Target: via/direct
#      >= 0.9.
#   c) memory: greyd holds BENCH_IDLE SMTP sessions of greyload -m idle (one
#      per client address, none in allow_clients); VmRSS of greyd before and
#      while held gives KiB per session.  Target <= 16 KiB.  Reference:
#      greyload's own VmRSS per connection.
#   d) tarpit: BENCH_TARPITS client addresses are trapped (greydb import
#      traps) with trap_action = tarpit; greyload -m tarpit holds one
#      connection from each, stuttered at 1 byte/s.  Reported: greyd's VmRSS
#      per tarpitted connection (target <= 4 KiB) and, while they are held,
#      the connect-to-banner p99 of normal clients (greyload -m grey -c 5,
#      target <= 5 ms); reference: the same p99 before the tarpit filled.
#   e) recipient checks/s: greyload -m grey -k 50 (50 RCPTs a session).
#      Against recipient_maps of 100,000 addresses, every RCPT unknown
#      (550 5.1.1 from the map, no grey entry written); then with
#      recipient_verify = backend against smtp-sink -f RCPT (it rejects every
#      RCPT, so each answer is cached as unknown): a warm-up pass fills the
#      cache for 10,000 addresses, the measured pass asks for them again
#      (the log shows that no callout happens then).  No target in the
#      issue; the reference is greylist RCPTs/s (a grey entry written each).
#   f) DNS lists: rbldnsd serves 5 lists (nobody listed), reached through
#      tools/dnsdelay, which holds back the queries of one list by 200 ms.
#      greyload -m grey -c 10: session p50 with the 5 lists minus p50 with
#      none is the latency the lists add; target <= 250 ms (the slowest list,
#      not 5 x 200 ms).  Then lookups/s: 5 fast lists straight to rbldnsd,
#      greyload -m grey -c BENCH_CONCURRENCY from new addresses (5 A
#      queries a session),
#      and again over the same addresses with the cache warm.  Reference:
#      the same sessions with no lists.
#   g) SPF: tools/greyspf -b (greyd's SPF path, 2 workers) runs BENCH_SPF
#      checks of distinct sender domains against unbound (record
#      "v=spf1 include:_spf.spf.bench ~all", two lookups a check): checks/s.
#      Then greylist sessions/s of greyd (a)'s load) with spf_workers = 0,
#      and with spf_workers = 2 while greyspf-like SPF load runs inside it
#      (every session's MAIL FROM is checked; the clients are 127.x, so
#      spf_check_loopback = yes): target >= 0.8 of the first.  Two ratios:
#      wall-clock sessions/s with every greyd thread on core 0 (the loop
#      shares it with both workers, and unbound floats), and the loop's own
#      capacity, sessions per CPU-second of the loop thread (from
#      /proc/PID/task), which is what the loop sustains when the workers
#      have a core of their own, as on a production MX.
#
# CPU placement (2 cores): greyd on core 0, greyload on core 1.  The
# smtp-sink of a)'s reference run (and of BENCH_DRY=1) takes greyd's core 0.
# In b) the smtp-sink shares core 1 with greyload, in both the direct and the
# via-greyd run, so the two runs give the load generator and the sink exactly
# the same CPU and greyd has core 0 to itself ("greyd on one core"): the
# ratio then says whether greyd slows the traffic it relays.  Left to the
# scheduler instead (BENCH_B_SHARED=1), three busy processes fight over two
# cores and the ratio mostly measures greyd's CPU cost against a sink that
# does almost nothing (about 0.5 on this kind of machine).  BENCH_SINK_CPU=N
# pins the smtp-sink of a) and c).
# Binaries come from ${GREYD_BUILD:-.}.  Every process is started here, on a
# free loopback port, and killed by PID on exit, INT or TERM; scratch files go
# to a temp dir (kept with BENCH_KEEP=1).  Knobs (environment):
#   BENCH_SECONDS=10 BENCH_SESSIONS=50000 BENCH_CONCURRENCY=200
#   BENCH_MESSAGES=10 (per relay session) BENCH_BODY=1024 BENCH_IDLE=10000
#   BENCH_TARPITS=20000 BENCH_SPF=20000 BENCH_ONLY="a b c d e f g"
#   BENCH_SINK_CPU=
#   BENCH_B_SHARED=0  BENCH_KEEP=0
#   BENCH_DRY=1  no greyd: a second smtp-sink stands in for it, to check this
#                script's plumbing only (the figures are then not greyd's).
# Exit status: 0 when every benchmark produced its figure (met or not; the
# table says MISS), 1 when one could not be measured.
set -u

B=${GREYD_BUILD:-.}
GREYD=$B/greyd/greyd
GREYLOAD=$B/tools/greyload
SINK=$(command -v smtp-sink 2>/dev/null || echo /usr/sbin/smtp-sink)

SECONDS_=${BENCH_SECONDS:-10}
SESSIONS=${BENCH_SESSIONS:-50000}
CONC=${BENCH_CONCURRENCY:-200}
MESSAGES=${BENCH_MESSAGES:-10}
BODY=${BENCH_BODY:-1024}
IDLE=${BENCH_IDLE:-10000}
TARPITS=${BENCH_TARPITS:-20000}
SPF_N=${BENCH_SPF:-20000}
ONLY=${BENCH_ONLY:-a b c d e f g}
GREYSPF=$B/tools/greyspf
DNSDELAY=$(dirname "$0")/dnsdelay
DRY=${BENCH_DRY:-0}
SINK_CPU=${BENCH_SINK_CPU:-}
B_SHARED=${BENCH_B_SHARED:-0}

# Client address ranges: one per benchmark, so greylist keys, per-client
# counters and allow_clients never mix between them.
SRC_A=127.1.0.1-127.1.255.254
SRC_B=127.2.0.1-127.2.255.254
SRC_C=127.3.0.1-127.3.255.254
SRC_D=127.5.0.1-127.5.255.254
SRC_D_NORMAL=127.6.0.1-127.6.255.254
SRC_E=127.7.0.1-127.7.255.254
SRC_F0=127.8.0.1-127.8.255.254
SRC_F1=127.9.0.1-127.9.255.254
SRC_F2=127.10.0.1-127.10.255.254
SRC_G=127.11.0.1-127.11.255.254

PORT_LOCK_DIR=/tmp/greydtest-ports	# shared with t/lib/GreydTest.pm
PIDS=""
TMP=""
ERRORS=0
TABLE=""

say() { printf '%s\n' "$*"; }
warn() { printf 'bench: %s\n' "$*" >&2; }

cleanup() {
	trap - EXIT INT TERM
	for p in $PIDS; do
		kill -TERM "$p" 2>/dev/null
	done
	for p in $PIDS; do
		stop_wait "$p"
	done
	# free_port runs in $(...): its reservations carry this shell's $$.
	for f in "$PORT_LOCK_DIR"/*; do
		[ "$(cat "$f" 2>/dev/null)" = "$$" ] && rm -f "$f"
	done
	if [ -n "$TMP" ]; then
		if [ "${BENCH_KEEP:-0}" = 1 ]; then
			warn "scratch files kept in $TMP"
		else
			rm -rf "$TMP"
		fi
	fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Wait up to 5 s for a signalled process, then SIGKILL it, then reap it.
stop_wait() {
	i=0
	while kill -0 "$1" 2>/dev/null && [ $i -lt 50 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	kill -KILL "$1" 2>/dev/null
	wait "$1" 2>/dev/null
}

# stop PID [SIGNAL]: stop one process this script started and forget it.
stop() {
	kill -"${2:-TERM}" "$1" 2>/dev/null
	stop_wait "$1"
	forget "$1"
}

# forget PID: a process that has ended is no longer ours to kill.
forget() {
	rest=""
	for p in $PIDS; do
		[ "$p" = "$1" ] || rest="$rest $p"
	done
	PIDS=$rest
}

# A free TCP port on 127.0.0.1 below the ephemeral range (so it never meets
# the local port of an outgoing connection), reserved in the lock dir the
# test suite uses so parallel tests do not take it too.
free_port() {
	eph=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null)
	hi=$(( ${eph:-32768} - 1 ))
	mkdir -p "$PORT_LOCK_DIR" 2>/dev/null && chmod 1777 "$PORT_LOCK_DIR" 2>/dev/null
	n=0
	while [ $n -lt 500 ]; do
		n=$((n + 1))
		r=$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')
		port=$(( 10000 + r % (hi - 10000) ))
		[ -z "$(ss -Htan "( sport = :$port )" 2>/dev/null)" ] || continue
		if (set -C; echo $$ > "$PORT_LOCK_DIR/$port") 2>/dev/null; then
			echo "$port"
			return 0
		fi
	done
	warn "no free port found"
	return 1
}


# Wait until process $1 listens on 127.0.0.1:$2 (10 s at most).
wait_listen() {
	i=0
	while [ $i -lt 100 ]; do
		if ! kill -0 "$1" 2>/dev/null; then
			warn "process $1 exited before listening on port $2"
			return 1
		fi
		ss -Htlnp "( sport = :$2 )" 2>/dev/null | grep -q "pid=$1," && return 0
		sleep 0.1
		i=$((i + 1))
	done
	warn "process $1 is not listening on port $2 after 10 s"
	return 1
}

# pin CPU: the taskset prefix (nothing when there is no second core).
pin() {
	[ -n "$1" ] && [ "$NCPU" -ge 2 ] && echo "taskset -c $1"
}

# start_sink PORT CPU LOG: smtp-sink on 127.0.0.1:PORT; sets SINK_PID.
start_sink() {
	# shellcheck disable=SC2046,SC2086
	$(pin "$2") "$SINK" $SINK_USER -m 20000 "127.0.0.1:$1" 4096 > "$3" 2>&1 &
	SINK_PID=$!
	PIDS="$PIDS $SINK_PID"
	wait_listen "$SINK_PID" "$1"
}

# start_greyd NAME PORT BACKEND_PORT ALLOW: greyd on core 0 with a fresh
# db_dir and the settings in $GREYD_EXTRA (lines) added; sets GREYD_PID,
# GREYD_LOG and GREYD_CONF.  With BENCH_DRY=1, a smtp-sink.
start_greyd() {
	GREYD_LOG=$TMP/greyd-$1.log
	if [ "$DRY" = 1 ]; then
		start_sink "$2" 0 "$GREYD_LOG" || return 1
		GREYD_PID=$SINK_PID
		return 0
	fi
	conf=$TMP/greyd-$1.conf
	cat > "$conf" <<-EOF
	listen = 127.0.0.1:$2
	backend = 127.0.0.1:$3
	backend_proxy = none
	db_dir = $TMP/db-$1
	greylist_delay = 300s
	allow_clients = $4
	smtp_idle_timeout = 600s
	EOF
	printf '%s\n' "${GREYD_EXTRA:-}" >> "$conf"
	GREYD_CONF=$conf
	# shellcheck disable=SC2046
	$(pin 0) "$GREYD" -d -f "$conf" > "$GREYD_LOG" 2>&1 &
	GREYD_PID=$!
	PIDS="$PIDS $GREYD_PID"
	if ! wait_listen "$GREYD_PID" "$2"; then
		tail -n 20 "$GREYD_LOG" >&2
		return 1
	fi
}

# load OUT ARGS...: greyload on core 1 (its output to OUT), -q always.
load() {
	out=$1
	shift
	# In the background so that INT/TERM interrupt the wait at once.
	# shellcheck disable=SC2046
	$(pin 1) "$GREYLOAD" -q "$@" > "$out" 2> "$out.err" &
	lp=$!
	PIDS="$PIDS $lp"
	wait "$lp"
	rc=$?
	forget "$lp"
	if ! grep -q '^RESULT ' "$out"; then
		warn "greyload $* gave no result (exit $rc):"
		cat "$out.err" >&2
		return 1
	fi
	[ $rc -eq 0 ] || warn "greyload $*: some sessions failed, see below"
	return 0
}

# field FILE NAME: a value from greyload's RESULT line.
field() {
	sed -n "s/^RESULT.* $2=\([^ ]*\).*/\1/p" "$1" | tail -n 1
}

replies() {
	sed -n 's/^replies: *//p' "$1"
}

# Wait (at most $3 seconds) until the greyload of PID $2 says in $1 that it
# holds all its connections, or has exited.
wait_holding() {
	i=0
	while ! grep -q '^greyload: holding' "$1" && kill -0 "$2" 2>/dev/null && [ $i -lt $(($3 * 10)) ]; do
		sleep 0.1
		i=$((i + 1))
	done
}

vmrss() {
	awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null
}

# row NAME FIGURE TARGET OP REFERENCE: one table line; OP is >= or <=;
# TARGET "-": a figure to report, with no target.
row() {
	verdict=$(awk -v f="$2" -v t="$3" -v op="$4" 'BEGIN {
		if (f == "" || f == "-") { print "- ERROR"; exit }
		if (t == "-") { print "- info"; exit }
		r = (op == ">=") ? (t > 0 ? f / t : 0) : (f > 0 ? t / f : 0)
		printf "%.2f %s\n", r, (r >= 1 ? "ok" : "MISS") }')
	line=$(printf '%-34s %10s  %-9s %6s %-5s %s' "$1" "$2" "$4 $3" \
	    "${verdict% *}" "${verdict#* }" "$5")
	TABLE="$TABLE
$line"
	say "$line"
	case $verdict in *ERROR) ERRORS=$((ERRORS + 1)) ;; esac
}

# a) greylist sessions/s
bench_a() {
	say ""
	say "== a) greylist sessions/s: greyload -m grey -c $CONC," \
	    "${SESSIONS} sessions or ${SECONDS_}s, new triplets, $SRC_A"
	sp=$(free_port) && gp=$(free_port) && rp=$(free_port) || exit 1
	start_sink "$sp" "$SINK_CPU" "$TMP/sink-a.log" || { row "greylist sessions/s" - 5000 ">=" ""; return; }
	sink=$SINK_PID
	start_greyd a "$gp" "$sp" "" || { row "greylist sessions/s" - 5000 ">=" ""; stop "$sink"; return; }
	args="-m grey -c $CONC -n $SESSIONS -t $SECONDS_ -a $SRC_A"
	# shellcheck disable=SC2086
	load "$TMP/a.greyd" -s "127.0.0.1:$gp" $args || { row "greylist sessions/s" - 5000 ">=" ""; stop "$GREYD_PID"; stop "$sink"; return; }
	sed -n '/^sessions:/p; /^replies:/p; /^session ms:/p; /^banner ms:/p' "$TMP/a.greyd"
	stop "$GREYD_PID"
	stop "$sink"
	# Reference: the same load against smtp-sink on greyd's core.
	start_sink "$rp" 0 "$TMP/sink-a-ref.log" || return
	ref=$SINK_PID
	# shellcheck disable=SC2086
	if load "$TMP/a.sink" -s "127.0.0.1:$rp" $args; then
		refval="smtp-sink direct: $(field "$TMP/a.sink" sessions_per_s)/s"
	else
		refval="smtp-sink direct: failed"
	fi
	stop "$ref"
	awk -v g="$(field "$TMP/a.greyd" sessions_per_s)" -v r="$(field "$TMP/a.sink" sessions_per_s)" \
	    'BEGIN { exit !(g != "" && r > 0 && g >= 0.9 * r) }' &&
	    warn "a) greyd is within 10% of the load generator's ceiling: the figure is bounded by greyload, not greyd"
	row "greylist sessions/s" "$(field "$TMP/a.greyd" sessions_per_s)" \
	    5000 ">=" "p99 $(field "$TMP/a.greyd" p99_ms) ms, failed $(field "$TMP/a.greyd" failed); $refval"
}

# b) relayed messages/s through greyd's fast path vs directly
bench_b() {
	say ""
	say "== b) relayed messages/s: greyload -m relay -c $CONC -k $MESSAGES" \
	    "-b $BODY, ${SECONDS_}s, $SRC_B, via greyd and direct"
	sp=$(free_port) && gp=$(free_port) || exit 1
	bcpu=1
	[ "$B_SHARED" = 1 ] && bcpu=""
	say "placement: greyd on core 0, greyload on core 1, smtp-sink on core ${bcpu:-(any)}"
	start_sink "$sp" "$bcpu" "$TMP/sink-b.log" || { row "relayed messages/s via/direct" - 0.9 ">=" ""; return; }
	sink=$SINK_PID
	start_greyd b "$gp" "$sp" 127.0.0.0/8 || { row "relayed messages/s via/direct" - 0.9 ">=" ""; stop "$sink"; return; }
	args="-m relay -c $CONC -k $MESSAGES -b $BODY -t $SECONDS_ -a $SRC_B"
	# shellcheck disable=SC2086
	load "$TMP/b.direct" -s "127.0.0.1:$sp" $args
	# shellcheck disable=SC2086
	load "$TMP/b.greyd" -s "127.0.0.1:$gp" $args
	stop "$GREYD_PID"
	stop "$sink"
	d=$(field "$TMP/b.direct" messages_per_s)
	v=$(field "$TMP/b.greyd" messages_per_s)
	say "direct:    $(sed -n 's/^rate: //p' "$TMP/b.direct"); session p50 $(field "$TMP/b.direct" p50_ms) ms p99 $(field "$TMP/b.direct" p99_ms) ms; $(sed -n 's/^sessions: //p' "$TMP/b.direct")"
	say "via greyd: $(sed -n 's/^rate: //p' "$TMP/b.greyd"); session p50 $(field "$TMP/b.greyd" p50_ms) ms p99 $(field "$TMP/b.greyd" p99_ms) ms; $(sed -n 's/^sessions: //p' "$TMP/b.greyd")"
	ratio=$(awk -v v="$v" -v d="$d" 'BEGIN { if (v == "" || d == "" || d == 0) print "-"; else printf "%.3f\n", v / d }')
	row "relayed messages/s via/direct" "$ratio" 0.9 ">=" "via greyd ${v:-?}/s, direct ${d:-?}/s"
}

# c) memory per held SMTP session
bench_c() {
	say ""
	say "== c) memory: greyd holding $IDLE idle SMTP sessions from $SRC_C"
	sp=$(free_port) && gp=$(free_port) || exit 1
	start_sink "$sp" "$SINK_CPU" "$TMP/sink-c.log" || { row "greyd KiB per held session" - 16 "<=" ""; return; }
	sink=$SINK_PID
	# max_sessions (default 5000) would refuse half of them
	GREYD_EXTRA="max_sessions = $((IDLE + 1000))"
	start_greyd c "$gp" "$sp" "" || { row "greyd KiB per held session" - 16 "<=" ""; stop "$sink"; return; }
	GREYD_EXTRA=""
	# Warm up (database pages, allocator arenas), then the baseline.
	load "$TMP/c.warm" -s "127.0.0.1:$gp" -m grey -c 20 -n 200 -a 127.4.0.1-127.4.0.254 >/dev/null
	sleep 0.5
	before=$(vmrss "$GREYD_PID")
	# shellcheck disable=SC2046
	$(pin 1) "$GREYLOAD" -q -m idle -n "$IDLE" -c 500 -t 120 -T 60 -a "$SRC_C" \
	    -s "127.0.0.1:$gp" > "$TMP/c.idle" 2> "$TMP/c.idle.err" &
	gl=$!
	PIDS="$PIDS $gl"
	wait_holding "$TMP/c.idle" "$gl" 120
	sleep 1		# let greyd settle every banner it has sent
	during=$(vmrss "$GREYD_PID")
	est=$(ss -Htn state established "( sport = :$gp )" 2>/dev/null | wc -l)
	glrss=$(vmrss "$gl")
	stop "$gl" INT
	stop "$GREYD_PID"
	stop "$sink"
	held=$(field "$TMP/c.idle" held)
	sed -n '/^greyload: holding/p; /^sessions:/p; /^banner ms:/p' "$TMP/c.idle"
	say "greyd VmRSS: ${before:-?} KiB before, ${during:-?} KiB while holding ${held:-?} (ss: $est established)"
	kib=$(awk -v a="$before" -v b="$during" -v n="$held" 'BEGIN {
		if (a == "" || b == "" || n == "" || n == 0) print "-"; else printf "%.2f\n", (b - a) / n }')
	glkib=$(awk -v r="$glrss" -v n="$held" 'BEGIN {
		if (r == "" || n == "" || n == 0) print "?"; else printf "%.2f\n", r / n }')
	[ "${held:-0}" -lt "$IDLE" ] && warn "c) held ${held:-0} of $IDLE sessions: see $TMP/c.idle and greyd's log"
	row "greyd KiB per held session" "$kib" 16 "<=" "held $held of $IDLE; greyload's own VmRSS/conn: $glkib KiB"
}

# d) tarpitted connections: memory, and a normal client's banner latency
bench_d() {
	say ""
	say "== d) tarpit: $TARPITS trapped clients held by greyload -m tarpit from $SRC_D"
	if [ "$DRY" = 1 ]; then
		row "greyd KiB per tarpitted conn" - 4 "<=" "BENCH_DRY=1: no tarpit"
		return
	fi
	sp=$(free_port) && gp=$(free_port) || exit 1
	start_sink "$sp" "$SINK_CPU" "$TMP/sink-d.log" || { row "greyd KiB per tarpitted conn" - 4 "<=" ""; return; }
	sink=$SINK_PID
	GREYD_EXTRA="trap_action = tarpit
max_tarpit_sessions = $((TARPITS + 1000))
tarpit_time = 600s
max_sessions = 100000"
	start_greyd d "$gp" "$sp" "" || { row "greyd KiB per tarpitted conn" - 4 "<=" ""; stop "$sink"; return; }
	GREYD_EXTRA=""
	# The trapped addresses: the first $TARPITS of SRC_D, as greyload
	# walks it.
	awk -v n="$TARPITS" 'BEGIN { b = 127 * 16777216 + 5 * 65536 + 1
		for (i = 0; i < n; i++) { a = b + i
			printf "%d.%d.%d.%d\n", int(a / 16777216), int(a / 65536) % 256,
			    int(a / 256) % 256, a % 256 } }' > "$TMP/traps"
	if ! "$B/tools/greydb" -f "$GREYD_CONF" import traps "$TMP/traps" > "$TMP/d.import" 2>&1; then
		warn "greydb import traps failed:"; cat "$TMP/d.import" >&2
		row "greyd KiB per tarpitted conn" - 4 "<=" ""; stop "$GREYD_PID"; stop "$sink"; return
	fi
	# Reference: normal clients' banner latency with nothing held.
	load "$TMP/d.ref" -s "127.0.0.1:$gp" -m grey -c 5 -n 2000 -a "$SRC_D_NORMAL" -o 1000000 >/dev/null
	before=$(vmrss "$GREYD_PID")
	# shellcheck disable=SC2046
	$(pin 1) "$GREYLOAD" -q -m tarpit -n "$TARPITS" -c 500 -t 300 -T 60 -a "$SRC_D" \
	    -s "127.0.0.1:$gp" > "$TMP/d.tarpit" 2> "$TMP/d.tarpit.err" &
	gl=$!
	PIDS="$PIDS $gl"
	wait_holding "$TMP/d.tarpit" "$gl" 180
	sleep 2		# every TARPIT started, a few stutter ticks done
	during=$(vmrss "$GREYD_PID")
	tp=$(grep -c ' TARPIT \[' "$GREYD_LOG")
	load "$TMP/d.normal" -s "127.0.0.1:$gp" -m grey -c 5 -n 5000 -a "$SRC_D_NORMAL" -o 2000000
	after=$(vmrss "$GREYD_PID")
	stop "$gl" INT
	stop "$GREYD_PID"
	stop "$sink"
	held=$(field "$TMP/d.tarpit" held)
	sed -n '/^greyload: holding/p; /^sessions:/p; /^held:/p' "$TMP/d.tarpit"
	say "greyd VmRSS: ${before:-?} KiB before, ${during:-?} KiB holding ${held:-?} (TARPIT log lines: $tp), ${after:-?} KiB after the normal clients"
	say "normal clients while held: $(sed -n 's/^banner ms: //p' "$TMP/d.normal"); before: $(sed -n 's/^banner ms: //p' "$TMP/d.ref")"
	kib=$(awk -v a="$before" -v b="$during" -v n="$held" 'BEGIN {
		if (a == "" || b == "" || n == "" || n == 0) print "-"; else printf "%.2f\n", (b - a) / n }')
	row "greyd KiB per tarpitted conn" "$kib" 4 "<=" "held $held of $TARPITS"
	row "banner p99 ms, tarpit held" "$(field "$TMP/d.normal" banner_p99_ms)" 5 "<=" \
	    "before the tarpit: $(field "$TMP/d.ref" banner_p99_ms) ms; failed $(field "$TMP/d.normal" failed)"
}

# e) recipient checks per second: the map, the warm callout cache
bench_e() {
	say ""
	say "== e) recipient checks/s: greyload -m grey -k 50 -c 50, ${SECONDS_}s, $SRC_E"
	if [ "$DRY" = 1 ]; then
		row "map checks/s (unknown rcpt)" - - ">=" "BENCH_DRY=1"
		return
	fi
	awk 'BEGIN { for (i = 0; i < 100000; i++) printf "u%d@example.com\n", i }' > "$TMP/rcpt.map"
	sp=$(free_port) && gp=$(free_port) || exit 1
	start_sink "$sp" "$SINK_CPU" "$TMP/sink-e.log" || { row "map checks/s (unknown rcpt)" - - ">=" ""; return; }
	sink=$SINK_PID
	GREYD_EXTRA="recipient_maps = $TMP/rcpt.map
max_unknown_recipients = 100000
message_recipient_limit = 1000
session_message_limit = 1000"
	start_greyd e1 "$gp" "$sp" "" || { row "map checks/s (unknown rcpt)" - - ">=" ""; stop "$sink"; return; }
	GREYD_EXTRA=""
	sed -n 's/.*\(maps: .*\)/\1/p' "$GREYD_LOG" | head -n 2
	args="-m grey -k 50 -c 50 -t $SECONDS_ -a $SRC_E"
	# shellcheck disable=SC2086
	load "$TMP/e.map" -s "127.0.0.1:$gp" $args -r 'x%u@example.com' -R 100000
	# shellcheck disable=SC2086
	load "$TMP/e.grey" -s "127.0.0.1:$gp" $args -r 'u%u@example.com' -R 100000 -o 5000000
	say "unknown (map): $(sed -n 's/^rate: //p' "$TMP/e.map"); $(replies "$TMP/e.map")"
	say "valid, greylisted: $(sed -n 's/^rate: //p' "$TMP/e.grey"); $(replies "$TMP/e.grey")"
	stop "$GREYD_PID"
	stop "$sink"
	row "map checks/s (unknown rcpt)" "$(field "$TMP/e.map" messages_per_s)" - ">=" \
	    "100,000-entry map; greylisted RCPTs/s: $(field "$TMP/e.grey" messages_per_s)"

	sp=$(free_port) && gp=$(free_port) || exit 1
	# shellcheck disable=SC2046,SC2086
	$(pin "$SINK_CPU") "$SINK" $SINK_USER -f RCPT -m 20000 "127.0.0.1:$sp" 4096 > "$TMP/sink-e2.log" 2>&1 &
	SINK_PID=$!
	PIDS="$PIDS $SINK_PID"
	wait_listen "$SINK_PID" "$sp" || { row "callout cache checks/s" - - ">=" ""; return; }
	sink=$SINK_PID
	GREYD_EXTRA="recipient_verify = backend
max_unknown_recipients = 100000
message_recipient_limit = 1000
session_message_limit = 1000"
	start_greyd e2 "$gp" "$sp" "" || { row "callout cache checks/s" - - ">=" ""; stop "$sink"; return; }
	GREYD_EXTRA=""
	load "$TMP/e.warm" -s "127.0.0.1:$gp" -m grey -k 50 -c 1 -n 200 -a "$SRC_E" -r 'c%u@example.com' -R 10000
	c1=$(grep -c 'CALLOUT <' "$GREYD_LOG")
	# shellcheck disable=SC2086
	load "$TMP/e.cache" -s "127.0.0.1:$gp" $args -r 'c%u@example.com' -R 10000
	c2=$(grep -c 'CALLOUT <' "$GREYD_LOG")
	say "warm-up: $(sed -n 's/^rate: //p' "$TMP/e.warm"); $c1 callouts"
	say "cached: $(sed -n 's/^rate: //p' "$TMP/e.cache"); $(replies "$TMP/e.cache"); callouts during it: $((c2 - c1))"
	stop "$GREYD_PID"
	stop "$sink"
	row "callout cache checks/s" "$(field "$TMP/e.cache" messages_per_s)" - ">=" \
	    "10,000 cached answers; callouts during the run: $((c2 - c1)); uncached (warm-up, 1 client): $(field "$TMP/e.warm" messages_per_s)/s"
}

# start_rbldnsd PORT ZONESPEC...: rbldnsd (UDP) on 127.0.0.1:PORT; sets
# DNS_PID.  It runs as the rbldns user: its files must be readable by it.
start_rbldnsd() {
	port=$1
	shift
	rbldnsd -n -u rbldns -b "127.0.0.1/$port" "$@" > "$TMP/rbldnsd-$port.log" 2>&1 &
	DNS_PID=$!
	PIDS="$PIDS $DNS_PID"
	sleep 0.5
	kill -0 "$DNS_PID" 2>/dev/null || { cat "$TMP/rbldnsd-$port.log" >&2; return 1; }
}

# f) DNS lists: the latency a slow list adds, lookups/s cold and warm
bench_f() {
	say ""
	say "== f) DNS lists: 5 lists, one 200 ms late (tools/dnsdelay); lookups/s"
	if [ "$DRY" = 1 ]; then
		row "DNSBL added latency ms" - 250 "<=" "BENCH_DRY=1"
		return
	fi
	zd=$TMP/zones
	mkdir -p "$zd" && chmod 755 "$TMP" "$zd"
	specs=""
	for z in l1 l2 l3 l4 slow; do
		printf ':127.0.0.2:listed\n127.255.255.254\n' > "$zd/$z"
		chmod 644 "$zd/$z"
		specs="$specs $z.bench:ip4set:$zd/$z"
	done
	sites="l1.bench l2.bench l3.bench l4.bench slow.bench"
	sp=$(free_port) && gp=$(free_port) && rp=$(free_port) && dp=$(free_port) || exit 1
	# shellcheck disable=SC2086
	start_rbldnsd "$rp" $specs || { row "DNSBL added latency ms" - 250 "<=" "rbldnsd failed"; return; }
	rbl=$DNS_PID
	perl "$DNSDELAY" -l "127.0.0.1:$dp" -u "127.0.0.1:$rp" -d 0.2 -m '\.slow\.bench\.$' > "$TMP/dnsdelay.log" 2>&1 &
	delay=$!
	PIDS="$PIDS $delay"
	sleep 0.5
	start_sink "$sp" "$SINK_CPU" "$TMP/sink-f.log" || return
	sink=$SINK_PID
	lat="-m grey -c 10 -n 300"
	GREYD_EXTRA="dns_servers = 127.0.0.1:$dp"
	start_greyd f0 "$gp" "$sp" "" || { stop "$sink"; return; }
	# shellcheck disable=SC2086
	load "$TMP/f.none" -s "127.0.0.1:$gp" $lat -a "$SRC_F0"
	stop "$GREYD_PID"
	GREYD_EXTRA="dns_servers = 127.0.0.1:$dp
dnsbl_sites = $sites"
	start_greyd f1 "$gp" "$sp" "" || { stop "$sink"; return; }
	GREYD_EXTRA=""
	# shellcheck disable=SC2086
	load "$TMP/f.slow" -s "127.0.0.1:$gp" $lat -a "$SRC_F1"
	stop "$GREYD_PID"
	say "no lists:          $(sed -n 's/^session ms: //p' "$TMP/f.none")"
	say "5 lists, 1 slow:   $(sed -n 's/^session ms: //p' "$TMP/f.slow")"
	added=$(awk -v a="$(field "$TMP/f.slow" p50_ms)" -v b="$(field "$TMP/f.none" p50_ms)" \
	    'BEGIN { if (a == "" || b == "") print "-"; else printf "%.1f\n", a - b }')
	row "DNSBL added latency ms (p50)" "$added" 250 "<=" \
	    "slowest list 200 ms; the 5 in a row would add >= 200 + 4 round trips"

	GREYD_EXTRA="dns_servers = 127.0.0.1:$rp
dnsbl_sites = $sites"
	start_greyd f2 "$gp" "$sp" "" || { stop "$sink"; return; }
	GREYD_EXTRA=""
	args="-m grey -c $CONC -t $SECONDS_ -a $SRC_F2"
	# shellcheck disable=SC2086
	load "$TMP/f.cold" -s "127.0.0.1:$gp" $args
	n=$(field "$TMP/f.cold" ok)
	# shellcheck disable=SC2086
	load "$TMP/f.warm" -s "127.0.0.1:$gp" -m grey -c "$CONC" -n "${n:-1000}" -a "$SRC_F2" -o 9000000
	silent=$(grep -c 'silent=' "$GREYD_LOG")
	stop "$GREYD_PID"
	stop "$sink"
	stop "$delay"
	stop "$rbl"
	say "cold (new clients): $(sed -n 's/^rate: //p' "$TMP/f.cold"); $(replies "$TMP/f.cold")"
	say "warm (same clients): $(sed -n 's/^rate: //p' "$TMP/f.warm"); $(replies "$TMP/f.warm")"
	lps=$(awk -v s="$(field "$TMP/f.cold" sessions_per_s)" 'BEGIN { if (s == "") print "-"; else printf "%.0f\n", s * 5 }')
	row "DNSBL lookups/s (5 lists, cold)" "$lps" - ">=" \
	    "$(field "$TMP/f.cold" sessions_per_s) clients/s x 5 A queries; lists timed out: $silent; no lists: see a)"
	row "DNSBL clients/s, cache warm" "$(field "$TMP/f.warm" sessions_per_s)" - ">=" \
	    "the same clients again, every result cached"
}

# start_unbound PORT: unbound on 127.0.0.1:PORT serving the SPF zones of
# g) from memory (nothing leaves the machine); sets DNS_PID.
start_unbound() {
	cat > "$TMP/unbound.conf" <<-EOF
	server:
	  interface: 127.0.0.1@$1
	  port: $1
	  do-daemonize: no
	  username: ""
	  chroot: ""
	  directory: "$TMP"
	  pidfile: ""
	  use-syslog: no
	  logfile: "$TMP/unbound.log"
	  verbosity: 0
	  num-threads: 1
	  so-reuseport: no
	  access-control: 127.0.0.0/8 allow
	  do-not-query-localhost: yes
	  module-config: "iterator"
	  local-zone: "example." redirect
	  local-data: 'example. 300 IN TXT "v=spf1 include:_spf.spf.bench ~all"'
	  local-zone: "spf.bench." static
	  local-data: '_spf.spf.bench. 300 IN TXT "v=spf1 ip4:127.0.0.0/8 -all"'
	  local-zone: "." static
	remote-control:
	  control-enable: no
	EOF
	unbound -d -c "$TMP/unbound.conf" > "$TMP/unbound.out" 2>&1 &
	DNS_PID=$!
	PIDS="$PIDS $DNS_PID"
	sleep 0.5
	kill -0 "$DNS_PID" 2>/dev/null || { cat "$TMP/unbound.out" "$TMP/unbound.log" >&2; return 1; }
}

# thread_cpu PID: "LOOP OTHER", CPU seconds (utime + stime) used so far by
# the main thread (the event loop) and by the other threads (SPF workers).
thread_cpu() {
	for t in /proc/"$1"/task/*; do
		echo "${t##*/} $(sed 's/^.*) //' "$t/stat" | cut -d' ' -f12,13)"
	done | awk -v pid="$1" -v hz="$(getconf CLK_TCK)" '
		{ cpu = ($2 + $3) / hz; if ($1 == pid) loop += cpu; else other += cpu }
		END { printf "%.2f %.2f\n", loop, other }'
}

# cpu_per FILE "LOOP OTHER": "loop N us/session, workers M us/session".
cpu_per() {
	echo "$2" | awk -v n="$(field "$1" ok)" '{ if (n == "" || n == 0) print "-"; else
		printf "loop thread %.0f us CPU/session, workers %.0f us\n", $1 * 1e6 / n, $2 * 1e6 / n }'
}

# g) SPF checks/s with 2 workers; greylist sessions/s with and without SPF
bench_g() {
	say ""
	say "== g) SPF: greyspf -b -w 2, $SPF_N checks; greylist sessions/s with SPF load"
	if [ "$DRY" = 1 ]; then
		row "SPF checks/s (2 workers)" - - ">=" "BENCH_DRY=1"
		return
	fi
	up=$(free_port) && sp=$(free_port) && gp=$(free_port) || exit 1
	start_unbound "$up" || { row "SPF checks/s (2 workers)" - - ">=" "unbound failed"; return; }
	ub=$DNS_PID
	awk -v n="$SPF_N" 'BEGIN { for (i = 0; i < n; i++)
		printf "127.11.%d.%d\thelo.example\ts@d%d.example\n", int(i / 250) % 250, i % 250 + 1, i }' > "$TMP/spf.in"
	t0=$(date +%s.%N)
	# shellcheck disable=SC2046
	$(pin 0) "$GREYSPF" -s "127.0.0.1:$up" -w 2 -b < "$TMP/spf.in" > "$TMP/spf.out" 2> "$TMP/spf.err"
	t1=$(date +%s.%N)
	pass=$(grep -c '^pass' "$TMP/spf.out")
	say "greyspf: $(wc -l < "$TMP/spf.out") results, $pass pass, in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }') s"
	cps=$(awk -v a="$t0" -v b="$t1" -v n="$pass" 'BEGIN { if (n == 0) print "-"; else printf "%.0f\n", n / (b - a) }')
	row "SPF checks/s (2 workers)" "$cps" - ">=" "2 lookups a check (TXT, include TXT) against unbound"

	start_sink "$sp" "$SINK_CPU" "$TMP/sink-g.log" || return
	sink=$SINK_PID
	args="-m grey -c $CONC -t $SECONDS_ -a $SRC_G"
	GREYD_EXTRA="spf_workers = 0"
	start_greyd g0 "$gp" "$sp" "" || { stop "$sink"; return; }
	# shellcheck disable=SC2086
	load "$TMP/g.nospf" -s "127.0.0.1:$gp" $args
	cpu0=$(thread_cpu "$GREYD_PID")
	stop "$GREYD_PID"
	GREYD_EXTRA="spf_workers = 2
spf_check_loopback = yes
dns_servers = 127.0.0.1:$up
greylist_spf_key = no"
	start_greyd g1 "$gp" "$sp" "" || { stop "$sink"; return; }
	GREYD_EXTRA=""
	# shellcheck disable=SC2086
	load "$TMP/g.spf" -s "127.0.0.1:$gp" $args -o 7000000
	checked=$(grep -c ' SPF \[' "$GREYD_LOG")
	cpu2=$(thread_cpu "$GREYD_PID")
	stop "$GREYD_PID"
	stop "$sink"
	stop "$ub"
	say "spf_workers = 0: $(sed -n 's/^rate: //p' "$TMP/g.nospf"); $(replies "$TMP/g.nospf"); $(cpu_per "$TMP/g.nospf" "$cpu0")"
	say "spf_workers = 2: $(sed -n 's/^rate: //p' "$TMP/g.spf"); $(replies "$TMP/g.spf"); SPF log lines: $checked; $(cpu_per "$TMP/g.spf" "$cpu2")"
	ratio=$(awk -v a="$(field "$TMP/g.spf" sessions_per_s)" -v b="$(field "$TMP/g.nospf" sessions_per_s)" \
	    'BEGIN { if (a == "" || b == "" || b == 0) print "-"; else printf "%.2f\n", a / b }')
	row "greylist/s with SPF / without" "$ratio" 0.8 ">=" \
	    "$(field "$TMP/g.spf" sessions_per_s)/s with every MAIL checked vs $(field "$TMP/g.nospf" sessions_per_s)/s; all on greyd's one core"
	# The loop's own capacity: sessions per CPU-second of the loop thread.
	lcap=$(awk -v a="$(field "$TMP/g.spf" ok)" -v ca="${cpu2%% *}" \
	    -v b="$(field "$TMP/g.nospf" ok)" -v cb="${cpu0%% *}" \
	    'BEGIN { if (a == "" || b == "" || ca == 0 || cb == 0 || b == 0) print "-"; else printf "%.2f\n", (a / ca) / (b / cb) }')
	row "loop sessions/CPU-s with SPF / without" "$lcap" 0.8 ">=" \
	    "the event loop's capacity; the workers' CPU is theirs (a core of their own in production)"
}

# ------------------------------------------------------------------ main

[ -x "$GREYLOAD" ] || { warn "$GREYLOAD missing: run make"; exit 1; }
[ -x "$SINK" ] || { warn "smtp-sink missing (package postfix): run make deps"; exit 1; }
if [ "$DRY" != 1 ] && [ ! -x "$GREYD" ]; then
	warn "$GREYD missing: run make (or BENCH_DRY=1 to test this script)"
	exit 1
fi
NCPU=$(nproc 2>/dev/null || echo 1)
[ "$NCPU" -ge 2 ] || warn "one CPU only: nothing is pinned, figures are shared-core figures"
SINK_USER=""
[ "$(id -u)" -eq 0 ] && SINK_USER="-u nobody"

# ulimit -H/-n are not POSIX, but dash (sh here) and bash both have them.
# As root, raise the hard limit too (d) holds 20,000 connections in greyd
# and as many in greyload); greyd and greyload take the hard limit.
# shellcheck disable=SC3045
[ "$(id -u)" -eq 0 ] && ulimit -n $((TARPITS + IDLE + 10000)) 2>/dev/null
# shellcheck disable=SC3045
ulimit -n "$(ulimit -Hn)" 2>/dev/null
# shellcheck disable=SC3045
nofile=$(ulimit -n)
if [ "$nofile" != unlimited ] && [ "$nofile" -lt $((IDLE + 100)) ]; then
	IDLE=$((nofile - 100))
	warn "ulimit -n is $nofile: holding $IDLE sessions only"
fi
# Each connection costs greyd one descriptor and greyload one: both need
# TARPITS plus their own few.  Where the hard limit cannot be raised (no
# CAP_SYS_RESOURCE, e.g. in a container) hold what fits and say so.
if [ "$nofile" != unlimited ] && [ "$nofile" -lt $((TARPITS + 100)) ]; then
	warn "ulimit -n is $nofile and cannot be raised here: d) holds $((nofile - 100)) tarpitted sessions, not $TARPITS"
	TARPITS=$((nofile - 100))
fi

TMP=$(mktemp -d /tmp/greyd-bench.XXXXXX) || exit 1
say "greyd benchmarks: $(date -u '+%Y-%m-%d %H:%M:%SZ'), $NCPU CPUs, kernel $(uname -r)"
if [ "$DRY" = 1 ]; then
	say "BENCH_DRY=1: smtp-sink stands in for greyd; these are NOT greyd's figures"
else
	say "greyd: $GREYD"
fi
say "load average before: $(cut -d' ' -f1-3 /proc/loadavg) (anything else running skews the figures)"

for b in $ONLY; do
	case $b in
	a) bench_a ;;
	b) bench_b ;;
	c) bench_c ;;
	d) bench_d ;;
	e) bench_e ;;
	f) bench_f ;;
	g) bench_g ;;
	*) warn "unknown benchmark $b (want a, b, c, d, e, f, g)"; ERRORS=$((ERRORS + 1)) ;;
	esac
done

say ""
say "== summary$( [ "$DRY" = 1 ] && echo ' (BENCH_DRY=1: smtp-sink, not greyd)')"
printf '%-34s %10s  %-9s %6s %-5s %s\n' benchmark figure target ratio "" reference
say "${TABLE#?}"
[ $ERRORS -eq 0 ]
