#!/usr/bin/perl
# 75-pregreet-tarpit.t — the before-220 test (greet_wait, pregreet_action),
# the protocol test (protocol_error_action) and the tarpit (tarpit.c) against
# a running greyd:
#  1. greet_wait with pregreet_action = reject: "220-" at once, the rest of
#     the banner after the wait; an early talker gets 521 and EOF; a quiet
#     client passes (PASS-GREET) and is not retested on its next connection
#     (greet_pass_expiry, in the client record); a hang-up is logged;
#  2. pregreet_action = trap: 521, the address is in the trap table, its next
#     session is TRAPPED and every RCPT gets 550 5.7.1;
#  3. pregreet_action = ignore: logged, the session goes on;
#  4. protocol_error_action = reject: HTTP and a bare LF get 521 and close;
#     = trap: the address is trapped (reason protocol);
#  5. the tarpit: the rest of the banner and the replies one byte per
#     tarpit_stutter (early talker, trapped client with trap_action = tarpit,
#     protocol error), closed after tarpit_time, TARPIT/TARPIT-END logged,
#     greyd's descriptors back to where they were;
#  6. max_tarpit_sessions: beyond the cap a trapped client gets a normal
#     session that rejects its RCPT, an early talker the plain 521; a freed
#     slot is used again; SIGTERM stops greyd at once with tarpits open.
# Short banners (smtp_banner = x) keep the stuttered parts short.

use strict;
use warnings;
use lib 't/lib';
use IO::Select;
use JSON::PP;
use Test::More;
use Time::HiRes qw(time sleep);
use GreydTest;

my $T0 = time;
my $pf = start_postfix(proxy => 'haproxy', users => [qw(alice bob postmaster)]);
my %common = (postfix => $pf, greylist_delay => '1h', hostname => 'mx.greyd.test');

sub client {
	my ($g, $addr) = @_;
	return smtp_connect(port => $g->{port}, addr => $addr, timeout => 10);
}

# QUIT, then wait until greyd closed (the session is freed by then).
sub quit_wait {
	my ($c) = @_;
	my ($code) = $c->cmd('QUIT', 10);
	$c->wait_closed(5);
	$c->close;
	return $code;
}

# One raw line; the banner counts as read from then on, so that cmd()
# does not wait for another one.
sub rl {
	my ($c, $timeout) = @_;
	$c->{banner_read} = 1;
	return $c->read_line($timeout);
}

# One line, with the time it took to arrive.
sub timed_line {
	my ($c, $timeout) = @_;
	my $t = time;
	my $line = rl($c, $timeout);
	return ($line, time - $t);
}

sub closed_ok {
	my ($c, $name) = @_;
	my $rest = $c->wait_closed(5);
	ok(defined $rest && $rest eq '', "$name: closed, nothing more")
	    or diag('after: ' . ($rest // 'still open'));
}

# JSON Lines of greydb list TABLE --json, keyed by addr.
sub greydb_records {
	my ($g, $table) = @_;
	my ($st, $out, $err) = run_greydb($g, 'list', $table, '--json');
	is($st, 0, "$g->{name}: greydb list $table --json") or diag($err);
	my %rec;
	for my $line (split /\n/, $out) {
		my $r = eval { decode_json($line) } or next;
		$rec{$r->{addr}} = $r if defined $r->{addr};
	}
	return \%rec;
}

sub fd_count {
	my ($pid) = @_;
	opendir(my $dh, "/proc/$pid/fd") or return -1;
	my $n = grep { /^\d+$/ } readdir $dh;
	closedir $dh;
	return $n;
}

# ---- byte-by-byte watchers for stuttered output
# A watcher records every octet of a connection with its arrival time.
sub watch {
	my ($c, $name) = @_;
	my $w = { c => $c, name => $name, got => '', t => [], eof => 0, t0 => time };
	if ($c->{buf} ne '') {          # already read by the client object
		$w->{got} = $c->{buf};
		push @{$w->{t}}, (time) x length $c->{buf};
		$c->{buf} = '';
	}
	return $w;
}

# Read whatever arrives on the watchers until $until->() is true, every
# watcher is at EOF, or $secs have passed.
sub pump {
	my ($secs, $until, @w) = @_;
	my $deadline = time + $secs;
	while (1) {
		return 1 if $until && $until->();
		my @open = grep { !$_->{eof} } @w;
		return 1 if !@open;
		my $left = $deadline - time;
		return 0 if $left <= 0;
		my $sel = IO::Select->new(map { $_->{c}->sock } @open);
		for my $fh ($sel->can_read($left > 0.05 ? 0.05 : $left)) {
			my ($w) = grep { $_->{c}->sock == $fh } @open;
			my $n = sysread($fh, my $buf, 4096);
			my $now = time;
			if (!defined $n) {
				next if $!{EAGAIN} || $!{EINTR};
				$w->{eof} = $now;
				next;
			}
			if ($n == 0) {
				$w->{eof} = $now;
				next;
			}
			$w->{got} .= $buf;
			push @{$w->{t}}, ($now) x $n;
		}
	}
}

# The gaps between octets $from .. $to (indexes into got).
sub gaps {
	my ($w, $from, $to) = @_;
	return map { $w->{t}[$_] - $w->{t}[$_ - 1] } ($from + 1) .. $to;
}

sub stuttered_ok {
	my ($w, $from, $count, $name) = @_;
	my $have = length($w->{got}) - $from;
	ok($have >= $count, "$name: at least $count octets stuttered") or do {
		diag("got " . JSON::PP->new->allow_nonref->encode($w->{got}));
		return;
	};
	my @g = gaps($w, $from, $from + $count - 1);
	my @short = grep { $_ < 0.8 } @g;
	ok(!@short, "$name: octets arrive >= 0.8 s apart")
	    or diag('gaps: ' . join(' ', map { sprintf '%.2f', $_ } @g));
}

# ============================================================ 1. reject
{
	my $g = start_greyd(%common, name => 'g_reject', greet_wait => '2s',
	    pregreet_action => 'reject');
	my $banner = 'mx.greyd.test ESMTP greyd';

	my $t0 = time;
	my $early = client($g, '127.0.1.1');
	$early->send_raw("EHLO early.example.org\r\n");
	my $quiet = client($g, '127.0.1.2');
	my $hang = client($g, '127.0.1.3');

	my ($line, $dt) = timed_line($quiet, 2);
	is($line, "220-$banner\r\n", 'greet_wait: "220-" first');
	cmp_ok($dt, '<', 0.5, 'greet_wait: "220-" at once');
	is(rl($early, 2), "220-$banner\r\n", 'early talker: "220-" too');
	is(rl($hang, 2), "220-$banner\r\n", 'hang-up client: "220-"');
	my $hport = $hang->sockport;
	$hang->close;

	($line) = timed_line($quiet, 5);
	my $waited = time - $t0;
	is($line, "220 $banner\r\n", 'quiet client: the rest of the banner');
	cmp_ok($waited, '>=', 1.8, 'quiet client: after greet_wait (2 s)');
	cmp_ok($waited, '<', 3.5, 'quiet client: not much later');

	my $eport = $early->sockport;
	is(rl($early, 5), "521 5.5.1 Protocol error\r\n", 'early talker: 521 5.5.1');
	cmp_ok(time - $t0, '>=', 1.8, 'early talker: answered at the end of greet_wait');
	closed_ok($early, 'early talker');
	ok(wait_for_log($g, qr/PREGREET \[127\.0\.1\.1\]:$eport .*action=reject/, 5),
	    'PREGREET [127.0.1.1]:PORT ... action=reject logged');
	ok(wait_for_log($g, qr/HANGUP \[127\.0\.1\.3\]:$hport before the end of the banner/, 5),
	    'HANGUP [127.0.1.3]:PORT before the end of the banner logged');

	my $qport = $quiet->sockport;
	is(($quiet->cmd('EHLO quiet.example.org'))[0], 250, 'quiet client: EHLO');
	is(quit_wait($quiet), 221, 'quiet client: QUIT');
	ok(wait_for_log($g, qr/PASS-GREET \[127\.0\.1\.2\]:$qport/, 5), 'PASS-GREET logged');

	# remembered: no test on the next connection
	my $again = client($g, '127.0.1.2');
	($line, $dt) = timed_line($again, 5);
	is($line, "220 $banner\r\n", 'passed client: a plain "220 " banner');
	cmp_ok($dt, '<', 0.5, 'passed client: at once (greet_pass_expiry)');
	is(($again->cmd('EHLO quiet.example.org'))[0], 250, 'passed client: EHLO');
	is(quit_wait($again), 221, 'passed client: QUIT');

	# a failure or a hang-up is no pass
	for my $a ('127.0.1.1', '127.0.1.3') {
		my $c = client($g, $a);
		is(rl($c, 2), "220-$banner\r\n", "$a is tested again");
		$c->close;
	}

	my $rec = greydb_records($g, 'client');
	ok(defined(($rec->{'127.0.1.2'} // {})->{greet_pass_until}),
	    'client record of 127.0.1.2: greet_pass_until set');
	ok(!defined(($rec->{'127.0.1.1'} // {})->{greet_pass_until}),
	    'client record of 127.0.1.1: no greet pass');
	is(eval { $rec->{'127.0.1.1'}{rejected_by}{pregreet} }, 1,
	    'client record of 127.0.1.1: rejected_by pregreet 1');

	my $c = client($g, '127.0.1.9');
	is(rl($c, 2), "220-$banner\r\n", 'greyd keeps serving');
	$c->close;
	ok(kill(0, $g->{pid}), 'g_reject alive');
	is(stop_greyd($g), 0, 'g_reject exits 0');
}

# ============================================================ 2. trap
{
	my $g = start_greyd(%common, name => 'g_trap', greet_wait => '1s',
	    pregreet_action => 'trap', smtp_banner => 'x');
	my $c = client($g, '127.0.2.1');
	$c->send_raw("EHLO early.example.org\r\n");
	is(rl($c, 3), "220-x\r\n", 'trap: "220-"');
	is(rl($c, 3), "521 5.5.1 Protocol error\r\n", 'trap: early talker gets 521');
	closed_ok($c, 'trap');
	ok(wait_for_log($g, qr/PREGREET \[127\.0\.2\.1\]:\d+ .*action=trap/, 5),
	    'PREGREET ... action=trap logged');
	my $traps = greydb_records($g, 'trap');
	ok($traps->{'127.0.2.1'}, 'trap: greydb list trap shows 127.0.2.1');
	is(($traps->{'127.0.2.1'} // {})->{reason}, 'pregreet', 'trap: reason pregreet');

	$c = client($g, '127.0.2.1');
	my $port = $c->sockport;
	my ($line, $dt) = timed_line($c, 3);
	is($line, "220 x\r\n", 'trapped: a plain banner (no greet test)');
	ok(wait_for_log($g, qr/TRAPPED \[127\.0\.2\.1\]:$port .*action=reject/, 5),
	    'TRAPPED [127.0.2.1]:PORT logged at connect');
	is(($c->cmd('EHLO early.example.org'))[0], 250, 'trapped: EHLO');
	is(($c->cmd('MAIL FROM:<s@example.org>'))[0], 250, 'trapped: MAIL');
	my ($code, $text) = $c->cmd('RCPT TO:<alice@example.com>');
	is($text, '550 5.7.1 Service unavailable; client [127.0.2.1] blocked',
	    'trapped: RCPT gets 550 5.7.1');
	is(quit_wait($c), 221, 'trapped: QUIT');
	unlike(postfix_log($pf), qr/127\.0\.2\.1/, 'Postfix never saw the trapped client');
	is(stop_greyd($g), 0, 'g_trap exits 0');
}

# ============================================================ 3. ignore
{
	my $g = start_greyd(%common, name => 'g_ignore', greet_wait => '1s',
	    pregreet_action => 'ignore', smtp_banner => 'x');
	my $t0 = time;
	my $c = client($g, '127.0.2.5');
	my $port = $c->sockport;
	$c->send_raw("EHLO early.example.org\r\n");
	is(rl($c, 3), "220-x\r\n", 'ignore: "220-"');
	is(rl($c, 3), "220 x\r\n", 'ignore: the rest of the banner');
	cmp_ok(time - $t0, '>=', 0.8, 'ignore: after greet_wait');
	my ($code, $text) = $c->read_reply(3);
	is($code, 250, 'ignore: the early EHLO is answered');
	like($text // '', qr/^250 ENHANCEDSTATUSCODES$/m, 'ignore: with the EHLO reply');
	is(($c->cmd('MAIL FROM:<s@example.org>'))[0], 250, 'ignore: the session goes on');
	is(quit_wait($c), 221, 'ignore: QUIT');
	ok(wait_for_log($g, qr/PREGREET \[127\.0\.2\.5\]:$port .*action=ignore/, 5),
	    'PREGREET ... action=ignore logged');
	is(stop_greyd($g), 0, 'g_ignore exits 0');
}

# ============================================================ 4. protocol errors
{
	my $g = start_greyd(%common, name => 'g_proto', smtp_banner => 'x');
	my $c = client($g, '127.0.2.10');
	my $port = $c->sockport;
	is(($c->banner(3))[0], 220, 'protocol: banner');
	$c->send_raw("GET / HTTP/1.0\r\n");
	is(rl($c, 3), "521 5.5.1 Protocol error\r\n", 'protocol: HTTP gets 521');
	closed_ok($c, 'protocol: HTTP');
	ok(wait_for_log($g, qr/PROTOCOL \[127\.0\.2\.10\]:$port non-SMTP command .*action=reject/, 5),
	    'PROTOCOL ... non-SMTP command ... action=reject logged');

	$c = client($g, '127.0.2.11');
	$port = $c->sockport;
	is(($c->banner(3))[0], 220, 'bare LF: banner');
	is(($c->cmd('EHLO client.example.org'))[0], 250, 'bare LF: EHLO');
	$c->send_raw("NOOP\n");
	is(rl($c, 3), "521 5.5.1 Protocol error\r\n", 'bare LF: 521');
	closed_ok($c, 'bare LF');
	ok(wait_for_log($g, qr/PROTOCOL \[127\.0\.2\.11\]:$port bare newline action=reject/, 5),
	    'PROTOCOL ... bare newline action=reject logged');
	my $rec = greydb_records($g, 'client');
	is(eval { $rec->{'127.0.2.11'}{rejected_by}{protocol} }, 1,
	    'client record: rejected_by protocol 1');
	is(stop_greyd($g), 0, 'g_proto exits 0');

	$g = start_greyd(%common, name => 'g_proto_trap', smtp_banner => 'x',
	    protocol_error_action => 'trap');
	$c = client($g, '127.0.2.20');
	is(($c->banner(3))[0], 220, 'protocol trap: banner');
	$c->send_raw("GET / HTTP/1.0\r\n");
	is(rl($c, 3), "521 5.5.1 Protocol error\r\n", 'protocol trap: 521');
	closed_ok($c, 'protocol trap');
	$c = client($g, '127.0.2.21');
	is(($c->banner(3))[0], 220, 'protocol trap, bare LF: banner');
	$c->send_raw("NOOP\n");
	is(rl($c, 3), "521 5.5.1 Protocol error\r\n", 'protocol trap, bare LF: 521');
	closed_ok($c, 'protocol trap, bare LF');
	my $traps = greydb_records($g, 'trap');
	is(($traps->{'127.0.2.20'} // {})->{reason}, 'protocol', 'HTTP client trapped, reason protocol');
	is(($traps->{'127.0.2.21'} // {})->{reason}, 'protocol', 'bare LF client trapped, reason protocol');
	$c = client($g, '127.0.2.20');
	$port = $c->sockport;
	is(($c->banner(3))[0], 220, 'protocol trap: next session');
	ok(wait_for_log($g, qr/TRAPPED \[127\.0\.2\.20\]:$port /, 5), 'TRAPPED at its next connect');
	is(quit_wait($c), 221, 'protocol trap: QUIT');
	is(stop_greyd($g), 0, 'g_proto_trap exits 0');
}

# ============================================================ 5. the tarpit
{
	my $g = start_greyd(%common, name => 'g_tarpit', greet_wait => '1s', smtp_banner => 'x',
	    pregreet_action => 'tarpit', protocol_error_action => 'tarpit', trap_action => 'tarpit',
	    tarpit_stutter => '1s', tarpit_time => '5s');
	my ($st, $out, $err) = run_greydb($g, 'add', 'trap', '127.0.3.1');
	is($st, 0, 'greydb add trap 127.0.3.1') or diag($err);
	my $fds0 = fd_count($g->{pid});

	# a protocol error after the banner
	my $p = client($g, '127.0.3.5');
	is(rl($p, 3), "220-x\r\n", 'tarpit protocol: "220-"');
	is(rl($p, 3), "220 x\r\n", 'tarpit protocol: banner');
	$p->send_raw("GET / HTTP/1.0\r\n");
	my $pw = watch($p, 'protocol');
	# an early talker and a trapped client
	my $e = client($g, '127.0.3.9');
	$e->send_raw("EHLO early.example.org\r\n");
	my $ew = watch($e, 'pregreet');
	my $t = client($g, '127.0.3.1');
	my $tw = watch($t, 'trap');
	my %port = map { $_->{name} => $_->{c}->sockport } $pw, $ew, $tw;

	pump(12, undef, $pw, $ew, $tw);

	# the early talker: "220-x" at once, the rest stuttered
	like($ew->{got}, qr/\A220-x\r\n/, 'tarpit pregreet: "220-x" first');
	ok(index("220-x\r\n220 x\r\n550 5.5.1 Protocol error\r\n", $ew->{got}) == 0,
	    'tarpit pregreet: then the rest of the greeting') or diag("got: $ew->{got}");
	cmp_ok($ew->{t}[0] - $ew->{t0}, '<', 0.5, 'tarpit pregreet: "220-" at once');
	cmp_ok(($ew->{t}[7] // 99) - $ew->{t0}, '>=', 0.8,
	    'tarpit pregreet: the next octet after greet_wait');
	stuttered_ok($ew, 7, 4, 'tarpit pregreet');
	# the trapped client
	like($tw->{got}, qr/\A2/, 'tarpit trap: the banner starts');
	ok(index("220 x\r\n550", $tw->{got}) == 0, 'tarpit trap: stuttered greeting "220 x"')
	    or diag("got: $tw->{got}");
	cmp_ok(($tw->{t}[0] // 99) - $tw->{t0}, '<', 1.5, 'tarpit trap: first octet within a stutter');
	stuttered_ok($tw, 0, 4, 'tarpit trap');
	# the protocol error
	ok(index("550 5.5.1 Protocol error\r\n", $pw->{got}) == 0,
	    'tarpit protocol: a stuttered "550 5.5.1 Protocol error"') or diag("got: $pw->{got}");
	stuttered_ok($pw, 0, 4, 'tarpit protocol');
	# tarpit_time
	for my $w ($ew, $tw, $pw) {
		ok($w->{eof}, "tarpit $w->{name}: closed by greyd") or next;
		# the tarpit starts at connect (trap), at greet_wait (pregreet),
		# at once (protocol: t0 is when GET was sent)
		my $start = $w->{name} eq 'pregreet' ? 1 : 0;
		my $len = $w->{eof} - $w->{t0} - $start;
		cmp_ok($len, '<=', 5 + 2, "tarpit $w->{name}: closed within tarpit_time + 2 s");
		cmp_ok($len, '>=', 3.8, "tarpit $w->{name}: not long before tarpit_time");
	}
	ok(wait_for_log($g, qr/PREGREET \[127\.0\.3\.9\]:$port{pregreet} .*action=tarpit/, 2),
	    'PREGREET ... action=tarpit logged');
	ok(wait_for_log($g, qr/TRAPPED \[127\.0\.3\.1\]:$port{trap} /, 2), 'TRAPPED [127.0.3.1] logged');
	for my $why (qw(pregreet trap protocol)) {
		ok(wait_for_log($g, qr/TARPIT \[[\d.]+\]:$port{$why}\b.*why=$why/, 2),
		    "TARPIT ... why=$why logged");
		ok(wait_for_log($g, qr/TARPIT-END \[[\d.]+\]:$port{$why}\b/, 2),
		    "TARPIT-END logged ($why)");
	}
	$_->{c}->close for $pw, $ew, $tw;

	# cleanup: greyd serves, its descriptors are back
	my $c = client($g, '127.0.3.20');
	is(rl($c, 3), "220-x\r\n", 'after the tarpits: greyd serves');
	is(rl($c, 3), "220 x\r\n", 'after the tarpits: full banner');
	is(quit_wait($c), 221, 'after the tarpits: QUIT');
	ok(wait_until(sub { fd_count($g->{pid}) <= $fds0 }, 3),
	    'greyd descriptors back to the baseline')
	    or diag('fds: ' . fd_count($g->{pid}) . " baseline $fds0");
	is(stop_greyd($g), 0, 'g_tarpit exits 0');
}

# ============================================================ 6. max_tarpit_sessions
{
	my $g = start_greyd(%common, name => 'g_cap', greet_wait => '1s', smtp_banner => 'x',
	    pregreet_action => 'tarpit', trap_action => 'tarpit', tarpit_stutter => '1s',
	    tarpit_time => '30s', max_tarpit_sessions => 2, drain_timeout => '20s');
	for my $a (qw(127.0.4.1 127.0.4.2 127.0.4.3)) {
		my ($st, $out, $err) = run_greydb($g, 'add', 'trap', $a);
		is($st, 0, "greydb add trap $a") or diag($err);
	}
	my $a = client($g, '127.0.4.9');     # early talker: tarpitted at greet_wait
	$a->send_raw("EHLO early.example.org\r\n");
	my $aw = watch($a, 'early');
	my $aport = $a->sockport;
	my $b = client($g, '127.0.4.1');     # trapped: tarpitted at once
	my $bport = $b->sockport;
	ok(wait_for_log($g, qr/TARPIT \[127\.0\.4\.1\]:$bport\b.*why=trap/, 5), 'cap: 1st tarpit (trap)');
	ok(wait_for_log($g, qr/TARPIT \[127\.0\.4\.9\]:$aport\b.*why=pregreet/, 5),
	    'cap: 2nd tarpit (pregreet)');

	# a trapped client beyond the cap: a session that rejects it
	my $c = client($g, '127.0.4.2');
	my $cport = $c->sockport;
	my ($line, $dt) = timed_line($c, 3);
	is($line, "220 x\r\n", 'cap: trapped client gets a whole banner');
	cmp_ok($dt, '<', 0.5, 'cap: at once, not stuttered');
	is(($c->cmd('EHLO trapped.example.org'))[0], 250, 'cap: EHLO');
	is(($c->cmd('MAIL FROM:<s@example.org>'))[0], 250, 'cap: MAIL');
	my ($code, $text) = $c->cmd('RCPT TO:<alice@example.com>');
	is($text, '550 5.7.1 Service unavailable; client [127.0.4.2] blocked',
	    'cap: RCPT rejected 550 5.7.1');
	is(quit_wait($c), 221, 'cap: QUIT');
	ok(wait_for_log($g, qr/TRAPPED \[127\.0\.4\.2\]:$cport\b/, 2), 'cap: TRAPPED logged');
	unlike(greyd_log($g), qr/TARPIT \[127\.0\.4\.2\]/, 'cap: not tarpitted');

	# an early talker beyond the cap: the plain 521
	my $d = client($g, '127.0.4.8');
	my $dport = $d->sockport;
	$d->send_raw("EHLO early.example.org\r\n");
	is(rl($d, 3), "220-x\r\n", 'cap: early talker "220-"');
	is(rl($d, 3), "521 5.5.1 Protocol error\r\n", 'cap: early talker gets the plain 521');
	closed_ok($d, 'cap: early talker');
	unlike(greyd_log($g), qr/TARPIT \[127\.0\.4\.8\]/, 'cap: early talker not tarpitted');

	# a freed slot is used again
	$b->close;
	ok(wait_for_log($g, qr/TARPIT-END \[127\.0\.4\.1\]:$bport\b/, 5),
	    'cap: TARPIT-END when the client hangs up');
	my $e = client($g, '127.0.4.3');
	my $eport = $e->sockport;
	my $ew = watch($e, 'trap2');
	pump(1.5, undef, $ew);
	like($ew->{got}, qr/\A22?\z/, 'cap: the freed slot tarpits the next trapped client')
	    or diag("got: $ew->{got}");
	ok(wait_for_log($g, qr/TARPIT \[127\.0\.4\.3\]:$eport\b.*why=trap/, 2), 'cap: TARPIT logged');

	# the early talker's pipelined EHLO is answered, stuttered, after the banner
	my $want = "220-x\r\n220 x\r\n550 5";
	pump(20, sub { length($aw->{got}) >= length $want }, $aw);
	is(substr($aw->{got}, 0, length $want), $want,
	    "cap: the early talker's command gets a stuttered 550 after the greeting");
	stuttered_ok($aw, 14, 5, 'cap: the 550 reply');

	# SIGTERM with two tarpitted connections open
	ok(kill(0, $g->{pid}), 'g_cap alive');
	my $t0 = time;
	is(stop_greyd($g), 0, 'SIGTERM with tarpits open: exit 0');
	cmp_ok(time - $t0, '<', 3, 'SIGTERM with tarpits open: prompt');
	ok(defined $e->wait_closed(2), 'tarpitted client closed at shutdown');
	ok(defined $a->wait_closed(2), 'tarpitted early talker closed at shutdown');
}

diag(sprintf 'test took %.1f s', time - $T0);
done_testing;
