#!/usr/bin/perl
# 80-dnsbl.t — DNSBL, DNSWL and RHSBL with a real rbldnsd serving test
# zones on a loopback port and a real Postfix behind greyd.  Clients connect
# from 127.0.80.x, listed or not:
#   .2  bl.test (127.0.0.2, weight 2)           -> 554 5.7.1 with the TXT
#   .3  small.test only (weight 1 < threshold 2) -> greylisted
#   .4  bl.test 127.0.0.4 + small.test (2 + 1)   -> 554
#   .5  wl.test (weight -5)                      -> relayed at once; its next
#                                                   connection: fast path
#   .6  bl.test answers 127.0.0.20, outside the filter -> greylisted
# RHSBL: a sender domain in rhs.test -> 554 5.7.1 Sender address rejected.
# The cache: two sessions of .6, one query at rbldnsd.  A second greyd whose
# dns_servers is a silent port: the lists time out, counted as not listed,
# logged.  A third with dnsbl_action = greylist: a listed client that is
# whitelisted still meets greylisting, with dnsbl_greylist_delay.

use strict;
use warnings;
use lib 't/lib';
use IO::Socket::INET;
use Test::More;
use Time::HiRes qw(sleep time);
use GreydTest;

# -l +-: every query logged, line-buffered, to its log (for the cache check)
my $dns = start_rbldnsd(args => ['-l', '+-'], zones => {
	'bl.test' => ['ip4set', <<'EOF'],
:127.0.0.2:Listed in bl.test, see http://bl.test/lookup?ip=$
127.0.80.2
127.0.80.4 :127.0.0.4:Listed (policy) in bl.test
127.0.80.6 :127.0.0.20:Outside the filter
127.0.80.8 :127.0.0.2:Listed for the greylist action
EOF
	'small.test' => ['ip4set', ":127.0.0.2:small\n127.0.80.3\n127.0.80.4\n"],
	'wl.test' => ['ip4set', ":127.0.2.1:whitelisted\n127.0.80.5\n"],
	'rhs.test' => ['dnset', ":127.0.0.2:Sender domain listed\nspammer.example\n"],
});

my $pf = start_postfix(proxy => 'haproxy', users => [qw(alice bob)]);
my %dnsbl = (
	dns_servers => "127.0.0.1:$dns->{port}",
	dnsbl_sites => 'bl.test=127.0.0.[2..11]*2 small.test*1 wl.test=127.0.[0..255].[1..3]*-5',
	rhsbl_sender_sites => 'rhs.test*2',
	dnsbl_threshold => 2,
	dnsbl_timeout => '2s',
);
my $g = start_greyd(postfix => $pf, greylist_delay => '1h', %dnsbl);

sub rcpt_reply {
	my ($g, $addr, $from, $to) = @_;
	my $c = smtp_connect(port => $g->{port}, addr => $addr);
	my (undef, $banner) = $c->banner;
	$c->cmd('EHLO client.example.org');
	$c->cmd("MAIL FROM:<$from>");
	my ($code, $text) = $c->cmd("RCPT TO:<$to>");
	$c->quit;
	return ($code // 0, $text // '', $banner // '');
}

# --- listed: 554 5.7.1 with the list and its TXT
{
	my ($code, $text) = rcpt_reply($g, '127.0.80.2', 'a1@example.org', 'alice@example.com');
	is($code, 554, 'listed in bl.test (weight 2 = threshold): 554');
	is($text, '554 5.7.1 Service unavailable; client [127.0.80.2] blocked using bl.test; '
	    . 'Listed in bl.test, see http://bl.test/lookup?ip=127.0.80.2', 'the reply names the list, with its TXT');
	ok(wait_for_log($g, qr/DNSBL \[127\.0\.80\.2\]:\d+ from=<a1\@example\.org> client score=2 lists="bl\.test\*2" listed/, 5),
	    'DNSBL logged: score and lists');
	ok(wait_for_log($g, qr/REJECT \[127\.0\.80\.2\]:\d+ from=<a1\@example\.org> to=<alice\@example\.com> dnsbl bl\.test score=2 action=reject/, 5),
	    'REJECT logged with the triplet');
}

# --- weights and threshold
{
	my ($code) = rcpt_reply($g, '127.0.80.3', 'a2@example.org', 'alice@example.com');
	is($code, 451, 'small.test only: score 1 < 2, greylisted');
	ok(wait_for_log($g, qr/DNSBL \[127\.0\.80\.3\]:\d+ .*score=1 lists="small\.test\*1" not listed/, 5), 'score 1 logged');
	($code, my $text) = rcpt_reply($g, '127.0.80.4', 'a3@example.org', 'alice@example.com');
	is($code, 554, 'bl.test + small.test: score 3, 554');
	like($text, qr/blocked using bl\.test; Listed \(policy\) in bl\.test$/, 'the list of largest weight in the reply');
	($code) = rcpt_reply($g, '127.0.80.6', 'a4@example.org', 'alice@example.com');
	is($code, 451, 'an answer outside the reply filter: not listed, greylisted');
	($code) = rcpt_reply($g, '127.0.80.9', 'a5@example.org', 'alice@example.com');
	is($code, 451, 'listed nowhere: greylisted');
}

# --- the cache: the DNS server sees one query for two sessions
{
	my $log = rbldnsd_log($dns);
	my $before = () = $log =~ /6\.80\.0\.127\.bl\.test/g;
	is($before, 1, 'one query for 127.0.80.6 so far');
	my ($code) = rcpt_reply($g, '127.0.80.6', 'a4@example.org', 'alice@example.com');
	is($code, 451, 'second session: same answer');
	sleep 0.3;
	$log = rbldnsd_log($dns);
	my $after = () = $log =~ /6\.80\.0\.127\.bl\.test/g;
	is($after, 1, 'cached: no second query');
}

# --- DNSWL: no greylisting, then the fast path
{
	my ($code, $text) = rcpt_reply($g, '127.0.80.5', 'w1@example.org', 'alice@example.com');
	is($code, 250, 'DNSWL-trusted: relayed on the first attempt, no greylisting');
	ok(wait_for_log($g, qr/DNSBL \[127\.0\.80\.5\]:\d+ .*score=-5 lists="wl\.test\*-5" trusted/, 5), 'trusted logged');
	my (undef, undef, $banner) = rcpt_reply($g, '127.0.80.5', 'w1@example.org', 'bob@example.com');
	unlike($banner, qr/ESMTP greyd/, 'next connection: the fast path (Postfix banner)');
	ok(wait_for_log($g, qr/FAST \[127\.0\.80\.5\]:\d+ dnswl score=-5/, 5), 'FAST dnswl logged');
}

# --- RHSBL: the sender domain
{
	my ($code, $text) = rcpt_reply($g, '127.0.80.9', 'x@spammer.example', 'alice@example.com');
	is($code, 554, 'sender domain in rhs.test: 554');
	like($text, qr/^554 5\.7\.1 <x\@spammer\.example>: Sender address rejected: domain spammer\.example blocked using rhs\.test/,
	    'Sender address rejected');
}

unlike(postfix_log($pf), qr/127\.0\.80\.[2346]\b/, 'Postfix never saw a listed or greylisted client');

# --- greydb explain asks the lists as greyd does
{
	my ($st, $out) = run_greydb($g, 'explain', '127.0.80.4', 'e1@example.org', 'alice@example.com');
	is($st, 0, 'explain a listed client: exit 0');
	like($out, qr/^dnsbl\s+score=3 lists="bl\.test\*2 small\.test\*1": listed$/m, 'explain: the score and the lists hit');
	like($out, qr/^answer\s+554 5\.7\.1 Service unavailable; client \[127\.0\.80\.4\] blocked using bl\.test; Listed \(policy\) in bl\.test$/m,
	    'explain: the 554 greyd gives');
	($st, $out) = run_greydb($g, 'explain', '127.0.80.5', 'e2@example.org', 'alice@example.com');
	like($out, qr/^dnsbl\s+score=-5 lists="wl\.test\*-5": trusted/m, 'explain: DNSWL-trusted');
	like($out, qr/^answer\s+accept: relayed to the backend \(trusted by the DNS whitelists/m, 'explain: no greylisting');
	($st, $out) = run_greydb($g, 'explain', '127.0.80.9', 'x@spammer.example', 'alice@example.com');
	like($out, qr/^rhsbl\s+spammer\.example score=2 lists="rhs\.test\*2": listed$/m, 'explain: the RHSBL score');
	like($out, qr/^answer\s+554 5\.7\.1 <x\@spammer\.example>: Sender address rejected/m, 'explain: the sender rejection');
	($st, $out) = run_greydb($g, 'explain', '127.0.80.9');
	like($out, qr/^dnsbl\s+score=0 lists="": not listed$/m, 'explain IP: not listed');
}

# --- a DNS server that never answers: the lists count as not listed
{
	my $silent = IO::Socket::INET->new(Proto => 'udp', LocalAddr => '127.0.0.1', LocalPort => 0)
	    or die "udp: $!";
	my $g2 = start_greyd(postfix => $pf, greylist_delay => '1h', name => 'silent', %dnsbl,
	    dns_servers => '127.0.0.1:' . $silent->sockport, dnsbl_timeout => '1s');
	my $t0 = time;
	my ($code) = rcpt_reply($g2, '127.0.80.2', 'a6@example.org', 'alice@example.com');
	my $took = time - $t0;
	is($code, 451, 'no answer: not listed, greylisted');
	cmp_ok($took, '<', 3, sprintf('the session waited for dnsbl_timeout only (%.1f s)', $took));
	ok(wait_for_log($g2, qr/DNSBL \[127\.0\.80\.2\]:\d+ .*score=0 lists="" silent="bl\.test small\.test wl\.test" not listed/, 5),
	    'the silent lists are logged');
	stop_greyd($g2);
}

# --- dnsbl_action = greylist: even a whitelisted client is greylisted
{
	my $g3 = start_greyd(postfix => $pf, greylist_delay => '1s', name => 'grey', %dnsbl,
	    dnsbl_action => 'greylist', dnsbl_greylist_delay => '1h');
	is((run_greydb($g3, 'add', 'white', '127.0.80.8'))[0], 0, 'the listed client is whitelisted');
	my (undef, undef, $banner) = rcpt_reply($g3, '127.0.80.8', 'g1@example.org', 'alice@example.com');
	unlike($banner, qr/ESMTP greyd/, 'first connection: white, fast path (the lookup starts)');
	sleep 0.5;
	my ($code, $text);
	($code, $text, $banner) = rcpt_reply($g3, '127.0.80.8', 'g1@example.org', 'alice@example.com');
	like($banner, qr/ESMTP greyd/, 'listed (cached): greyd answers despite the white entry');
	is($code, 451, 'greylisted');
	like($text, qr/try again in 3600 seconds/, 'with dnsbl_greylist_delay');
	stop_greyd($g3);
}

done_testing();
