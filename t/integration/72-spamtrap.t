#!/usr/bin/perl
# 72-spamtrap.t — spamtraps and trapped clients, with a real Postfix
# behind greyd: a RCPT to a spamtrap (from spamtrap_maps or added with
# greydb) traps the client address: 550 5.7.1 for the rest of the session
# and for its later sessions, never the fast path even when whitelisted,
# nothing reaches Postfix; other addresses are unaffected; greydb lists and
# deletes traps and spamtraps; SIGHUP reloads spamtrap_maps; the client
# record counts the trap; auto_whitelist_after holds the white entry back
# until enough greylist passes.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use JSON::PP;
use Time::HiRes qw(sleep);
use GreydTest;

my $pf = start_postfix(proxy => 'haproxy', users => [qw(alice bob postmaster)]);
my $dir = tempdir();
my $traps = write_file("$dir/spamtraps", "# traps\ntrap1\@example.com\n");
my $g = start_greyd(postfix => $pf, greylist_delay => '1s', spamtrap_maps => $traps,
    trap_expiry => '1h');

sub client { smtp_connect(port => $g->{port}, addr => $_[0]) }
sub greydb { my (undef, $out, $err) = run_greydb($g, @_); return $out . $err }

my ($st, $out) = run_greydb($g, 'add', 'spamtrap', 'Trap2@Example.COM');
is($st, 0, 'greydb add spamtrap');
$out = greydb('list', 'spamtrap');
like($out, qr/trap1\@example\.com.*map/, 'list spamtrap: the map entry');
like($out, qr/trap2\@example\.com.*admin/, 'list spamtrap: the added one, lowercased');

# --- a RCPT to a spamtrap traps the client
{
	my $c = client('127.0.22.1');
	$c->banner;
	$c->cmd('EHLO trapped.example.org');
	$c->cmd('MAIL FROM:<s1@trapped.example.org>');
	is(($c->cmd('RCPT TO:<alice@example.com>'))[0], 451, 'before the trap: greylisted');
	my ($code, $text) = $c->cmd('RCPT TO:<TRAP2@example.com>');
	is($code, 550, 'spamtrap recipient: 550');
	is($text, '550 5.7.1 Service unavailable; client [127.0.22.1] blocked', 'spamtrap: 550 5.7.1, the trap not revealed');
	($code, $text) = $c->cmd('RCPT TO:<bob@example.com>');
	is($code, 550, 'the rest of the session: 550');
	like($text, qr/^550 5\.7\.1 /, 'the rest of the session: 5.7.1');
	is(($c->cmd('DATA'))[0], 554, 'DATA: 554');
	$c->quit;
	ok(wait_for_log($g, qr/TRAP \[127\.0\.22\.1\]:\d+ from=<s1\@trapped\.example\.org> to=<trap2\@example\.com> spamtrap expiry=3600 action=reject/i, 5),
	    'TRAP logged with the triplet');
}
like(greydb('list', 'trap'), qr/127\.0\.22\.1.*spamtrap/, 'greydb list trap: trapped, reason spamtrap');

# --- later sessions: rejected, even once whitelisted; another address is not
sleep 1.2;
is((run_greydb($g, 'add', 'white', '127.0.22.0/24'))[0], 0, 'the whole /24 whitelisted by the admin');
{
	my $c = client('127.0.22.1');
	my ($code, $text) = $c->banner;
	like($text, qr/ESMTP greyd/, 'trapped client: greyd answers, not the fast path to Postfix');
	$c->cmd('EHLO trapped.example.org');
	$c->cmd('MAIL FROM:<s1@trapped.example.org>');
	($code, $text) = $c->cmd('RCPT TO:<alice@example.com>');
	is($code, 550, 'later session: 550 even for a good recipient whose greylist delay has passed');
	is($text, '550 5.7.1 Service unavailable; client [127.0.22.1] blocked', 'later session: 550 5.7.1');
	$c->quit;
	ok(wait_for_log($g, qr/TRAPPED \[127\.0\.22\.1\]:\d+ trapped until \d+ action=reject/, 5), 'TRAPPED logged at connect');

	$c = client('127.0.22.2');
	($code, $text) = $c->banner;
	unlike($text, qr/ESMTP greyd/, 'another address of the /24: the fast path to Postfix');
	$c->quit;
}
unlike(postfix_log($pf), qr/127\.0\.22\.1\b/, 'Postfix never saw the trapped client');

# --- the client record counts it; greydb explain shows it
{
	my $exp = greydb('explain', '127.0.22.1');
	like($exp, qr/trapped/i, 'explain IP: trapped');
	my ($st2, $json) = run_greydb($g, 'list', 'client', '--json');
	my $rec;
	for my $line (split /\n/, $json) {
		my $r = eval { decode_json($line) } or next;
		$rec = $r if ($r->{addr} // '') eq '127.0.22.1';
	}
	ok($rec && $rec->{trapped} >= 1, 'client record: trapped counted');
	ok($rec && $rec->{rejected} >= 3, 'client record: rejections counted');
}

# --- greydb del trap: the client is free again (whitelisted: fast path)
is((run_greydb($g, 'del', 'trap', '127.0.22.1'))[0], 0, 'greydb del trap');
{
	my $c = client('127.0.22.1');
	my (undef, $text) = $c->banner;
	unlike($text, qr/ESMTP greyd/, 'untrapped and whitelisted: the fast path');
	$c->quit;
}

# --- SIGHUP: a spamtrap removed from the map is an ordinary recipient again
write_file($traps, "other-trap\@example.com\n");
kill 'HUP', $g->{pid};
ok(wait_for_log($g, qr/configuration reloaded/, 5), 'SIGHUP');
sleep 0.3;
{
	my $c = client('127.0.23.1');
	$c->banner;
	$c->cmd('EHLO reload.example.org');
	$c->cmd('MAIL FROM:<r@reload.example.org>');
	is(($c->cmd('RCPT TO:<trap1@example.com>'))[0], 451, 'SIGHUP: trap1 left the map: greylisted, not trapped');
	is(($c->cmd('RCPT TO:<other-trap@example.com>'))[0], 550, 'SIGHUP: the new map entry traps');
	$c->quit;
}
like(greydb('list', 'spamtrap'), qr/trap2\@example\.com/, 'the admin spamtrap survives the map reload');
unlike(greydb('list', 'spamtrap'), qr/trap1\@example\.com/, 'the removed map spamtrap is gone');
is((run_greydb($g, 'del', 'spamtrap', 'trap2@example.com'))[0], 0, 'greydb del spamtrap');
unlike(greydb('list', 'spamtrap'), qr/trap2/, 'deleted');
is(stop_greyd($g), 0, 'greyd exits 0');

# --- auto_whitelist_after = 2: the client key is white after its second pass
{
	my $g2 = start_greyd(postfix => $pf, greylist_delay => '1s', auto_whitelist_after => 2,
	    name => 'auto');
	my $pass = sub {
		my ($n) = @_;
		for my $try (1, 2) {
			my $c = smtp_connect(port => $g2->{port}, addr => '127.0.24.1');
			my (undef, $banner) = $c->banner;
			$c->cmd('EHLO auto.example.org');
			$c->cmd("MAIL FROM:<a$n\@auto.example.org>");
			my ($code) = $c->cmd('RCPT TO:<alice@example.com>');
			$c->quit;
			sleep 1.2 if $try == 1;
			return $code if $try == 2;
		}
	};
	is($pass->(1), 250, 'auto: first triplet passes after its delay');
	ok(wait_for_log($g2, qr/PASS \[127\.0\.24\.1\]:\d+ .* passes=1\/2/, 5), 'auto: PASS logged with passes=1/2');
	my $c = smtp_connect(port => $g2->{port}, addr => '127.0.24.1');
	my (undef, $banner) = $c->banner;
	like($banner, qr/ESMTP greyd/, 'auto: after one pass the client is not whitelisted yet');
	$c->quit;
	is($pass->(2), 250, 'auto: a second triplet passes after its delay');
	$c = smtp_connect(port => $g2->{port}, addr => '127.0.24.1');
	(undef, $banner) = $c->banner;
	unlike($banner, qr/ESMTP greyd/, 'auto: after two passes the fast path');
	$c->quit;
	is(stop_greyd($g2), 0, 'greyd (auto) exits 0');
}
done_testing;
