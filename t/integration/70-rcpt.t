#!/usr/bin/perl
# 70-rcpt.t — recipient verification before greylisting, against a real
# Postfix: recipient_maps (addresses, @domain, case-insensitive, a second
# column ignored) and relay_domains give 550 5.1.1 for unknown recipients
# of our domains; other domains are left to greylisting; more than
# max_unknown_recipients in a session gives 421; a dictionary attack of
# 1,000 unknown recipients creates no grey entry and never reaches Postfix;
# SIGHUP reloads the maps; a bad map stops greyd with file:line.  Then
# recipient_verify = backend: a callout to Postfix, cached (Postfix sees one
# probe for two sessions), and 450 4.1.1 when the backend is down.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Time::HiRes qw(sleep time);
use POSIX qw(WNOHANG);
use GreydTest;

my $pf = start_postfix(proxy => 'haproxy', users => [qw(alice bob postmaster)]);
my $dir = tempdir();
my $map = "$dir/recipients";
write_file($map, <<'EOF');
# valid recipients
alice@example.com
Bob@Example.COM   OK
@catchall.example

postmaster@example.com  anything here is ignored
EOF

my $g = start_greyd(postfix => $pf, greylist_delay => '1s', recipient_maps => $map,
    relay_domains => 'other.example', session_message_limit => 1000);

sub client { smtp_connect(port => $_[0]{port}, addr => $_[1]) }

sub grey_count {
	my ($st, $out) = run_greydb($g, 'stats');
	return $out =~ /^GREY entries=(\d+)/m ? $1 : -1;
}

ok(wait_for_log($g, qr/maps: \d+ recipients/, 5), 'maps compiled at start');

# --- verdicts per recipient
{
	my $c = client($g, '127.0.20.1');
	is(($c->banner)[0], 220, 'banner');
	is(($c->cmd('EHLO verify.example.org'))[0], 250, 'EHLO');
	is(($c->cmd('MAIL FROM:<s1@verify.example.org>'))[0], 250, 'MAIL');
	my @cases = (
		['alice@example.com', 451, 'listed address: on to greylisting'],
		['BOB@example.com', 451, 'listed with a second column, other case: on to greylisting'],
		['anyone@CatchAll.example', 451, '@domain wildcard: on to greylisting'],
		['postmaster@example.com', 250, 'postmaster: exempt from greylisting, Postfix accepts'],
		['nobody@example.com', 550, 'unknown address of a map domain: 550'],
		['x@other.example', 550, 'unknown address of relay_domains: 550'],
		['x@elsewhere.org', 451, 'not our domain: left to greylisting'],
	);
	for my $case (@cases) {
		my ($code, $text) = $c->cmd("RCPT TO:<$case->[0]>");
		is($code, $case->[1], "$case->[0]: $case->[2]");
		like($text, qr/^550 5\.1\.1 <\Q$case->[0]\E>: Recipient address rejected$/, "$case->[0]: design reply")
		    if $case->[1] == 550;
	}
	is($c->quit, 221, 'QUIT');
	ok(wait_for_log($g, qr/NOQUEUE \[127\.0\.20\.1\]:\d+ from=<s1\@verify\.example\.org> to=<nobody\@example\.com> unknown recipient/, 5),
	    'unknown recipient logged with the triplet');
}

# --- more than max_unknown_recipients (5) in one session: 421
{
	my $c = client($g, '127.0.20.2');
	$c->banner;
	$c->cmd('EHLO many.example.org');
	$c->cmd('MAIL FROM:<s2@many.example.org>');
	is(($c->cmd("RCPT TO:<u$_\@example.com>"))[0], 550, "unknown recipient $_ of 5: 550") for 1 .. 5;
	my ($code, $text) = $c->cmd('RCPT TO:<u6@example.com>');
	is($code, 550, 'the 6th: 550 first');
	like($text, qr/^550 5\.1\.1 /, 'the 6th: its 550 5.1.1');
	($code, $text) = $c->read_reply;
	is($code, 421, 'then 421');
	like($text, qr/^421 4\.7\.0 .*too many unknown recipients/, '421 4.7.0 text');
	is($c->wait_closed(5), '', 'and closed');
	ok(wait_for_log($g, qr/REJECT \[127\.0\.20\.2\]:\d+ too many unknown recipients \(6\)/, 5), '421 logged');
}

# --- dictionary attack: 1,000 unknown recipients, no grey entry, Postfix never sees it
{
	my $before = grey_count();
	ok($before >= 0, "grey entries before the attack: $before");
	my ($sent, $rejected, $sessions) = (0, 0, 0);
	my $t = time;
	while ($sent < 1000) {
		my $c = client($g, '127.0.21.' . (1 + $sessions % 200));
		$sessions++;
		$c->banner;
		my $batch = '';
		my $n = 0;
		while ($n < 6 && $sent < 1000) {
			$batch .= "RCPT TO:<dict$sent\@example.com>\r\n";
			$sent++;
			$n++;
		}
		$c->send_raw("EHLO dict.example\r\nMAIL FROM:<spam$sessions\@dict.example>\r\n$batch");
		$c->read_reply for 1 .. 2;
		for (1 .. $n) {
			my ($code) = $c->read_reply;
			$rejected++ if defined $code && $code == 550;
		}
		$c->close;
	}
	is($rejected, 1000, sprintf('1,000 unknown recipients, 1,000 times 550 (%d sessions, %.1f s)', $sessions, time - $t));
	is(grey_count(), $before, 'the grey database is unchanged');
	unlike(postfix_log($pf), qr/127\.0\.21\./, 'Postfix never saw the attack');
}

# --- SIGHUP reloads the maps (entries added and removed)
{
	write_file($map, "bob\@example.com\nnobody\@example.com\n\@catchall.example\n");
	kill 'HUP', $g->{pid};
	ok(wait_for_log($g, qr/configuration reloaded/, 5), 'SIGHUP: reloaded');
	sleep 0.3;
	my $c = client($g, '127.0.20.3');
	$c->banner;
	$c->cmd('EHLO reload.example.org');
	$c->cmd('MAIL FROM:<s3@reload.example.org>');
	is(($c->cmd('RCPT TO:<nobody@example.com>'))[0], 451, 'SIGHUP: an added address passes verification');
	is(($c->cmd('RCPT TO:<alice@example.com>'))[0], 550, 'SIGHUP: a removed address is unknown now');
	$c->quit;

	write_file($map, "bob\@example.com\nbad line with\@two\@ats\n");
	kill 'HUP', $g->{pid};
	ok(wait_for_log($g, qr/maps not reloaded.*recipients:2: /, 5), 'SIGHUP with a bad map: file:line logged');
	$c = client($g, '127.0.20.4');
	$c->banner;
	$c->cmd('EHLO reload.example.org');
	$c->cmd('MAIL FROM:<s4@reload.example.org>');
	is(($c->cmd('RCPT TO:<nobody@example.com>'))[0], 451, 'SIGHUP with a bad map: the previous maps stay');
	$c->quit;
}

# --- a bad map at start: greyd refuses to start, file:line on stderr
{
	my $bad = "$dir/bad.map";
	write_file($bad, "ok\@example.com\n\@\n");
	my $conf = write_file("$dir/bad.conf", join('', map { "$_\n" }
	    'listen = 127.0.0.1:' . free_port(), "db_dir = $dir/baddb", "recipient_maps = $bad",
	    'backend = 127.0.0.1:' . free_port(), ($> == 0 ? ('user = nobody') : ())));
	mkdir "$dir/baddb";
	chown((getpwnam('nobody'))[2, 3], "$dir/baddb") if $> == 0;
	my $err = "$dir/bad.err";
	my $pid = fork() // die;
	if ($pid == 0) {
		open(STDERR, '>', $err);
		open(STDOUT, '>', '/dev/null');
		exec(GreydTest::greyd_binary(), '-d', '-f', $conf) or POSIX::_exit(127);
	}
	my $deadline = time + 10;
	my $st;
	while (time < $deadline) {
		last if waitpid($pid, WNOHANG) == $pid && defined($st = $?);
		sleep 0.1;
	}
	if (!defined $st) { kill 'KILL', $pid; waitpid($pid, 0); }
	ok(defined $st && $st != 0, 'a bad map at start: greyd exits non-zero');
	like(read_file($err) // '', qr/bad\.map:2: /, 'with file:line');

	# greyd -t checks the map files too
	my $bin = GreydTest::greyd_binary();
	my $out = `$bin -t -f $conf 2>&1`;
	isnt($? >> 8, 0, 'greyd -t: a bad map is an error');
	like($out, qr/bad\.map:2: /, 'greyd -t: with file:line');
	write_file($bad, "ok\@example.com\n\@ok.example\n");
	$out = `$bin -t -f $conf 2>&1`;
	is($? >> 8, 0, 'greyd -t: the map fixed, ok') or diag($out);
}

# --- recipient_verify = backend: a callout to Postfix, cached
my $g2 = start_greyd(postfix => $pf, greylist_delay => '1s', recipient_verify => 'backend',
    name => 'callout');
{
	my $before = () = postfix_log($pf) =~ /nobody2\@example\.com/g;
	for my $round (1, 2) {
		my $c = client($g2, '127.0.20.' . (10 + $round));
		$c->banner;
		$c->cmd('EHLO callout.example.org');
		$c->cmd("MAIL FROM:<c$round\@callout.example.org>");
		my ($code, $text) = $c->cmd('RCPT TO:<nobody2@example.com>');
		is($code, 550, "callout round $round: unknown user 550");
		like($text, qr/^550 5\.1\.1 <nobody2\@example\.com>: Recipient address rejected$/, "callout round $round: design reply");
		is(($c->cmd('RCPT TO:<alice@example.com>'))[0], 451, "callout round $round: a valid user goes on to greylisting");
		$c->quit;
	}
	sleep 0.5;
	my $after = () = postfix_log($pf) =~ /reject: RCPT from \S+: 550 5\.1\.1 <nobody2\@example\.com>/g;
	is($after, 1, 'Postfix saw one probe for two sessions (the answer is cached)');
	ok(wait_for_log($g2, qr/CALLOUT <nobody2\@example\.com> .*unknown/, 5), 'the callout is logged');
	my ($st, $out) = run_greydb($g2, 'list', 'rcpt');
	like($out, qr/nobody2\@example\.com/, 'greydb list rcpt shows the cached answer');
}

# --- backend down during the callout: 450 4.1.1, never 550
{
	my $g3 = start_greyd(backend => '127.0.0.1:' . free_port(), recipient_verify => 'backend',
	    backend_connect_timeout => '2s', name => 'down');
	my $c = client($g3, '127.0.20.20');
	$c->banner;
	$c->cmd('EHLO down.example.org');
	$c->cmd('MAIL FROM:<d@down.example.org>');
	my ($code, $text) = $c->cmd('RCPT TO:<someone@example.com>');
	is($code, 450, 'backend down: 450');
	like($text, qr/^450 4\.1\.1 <someone\@example\.com>: /, 'backend down: 450 4.1.1');
	is(($c->cmd('NOOP'))[0], 250, 'the session goes on');
	$c->quit;
	is(stop_greyd($g3), 0, 'greyd (backend down) exits 0');
}

is(stop_greyd($g2), 0, 'greyd (callout) exits 0');
is(stop_greyd($g), 0, 'greyd exits 0');
done_testing;
