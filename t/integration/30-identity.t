#!/usr/bin/perl
# 30-identity.t — the client's identity reaches Postfix by every means
# greyd offers: IPv6 clients on ::1 (PROXY v1 TCP6), PROXY v2, and XCLIENT
# both on the SMTP path and on the fast path.  Each delivered message's
# Received: header must show the real client address.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Time::HiRes qw(sleep);
use GreydTest;

sub received_from {
	my ($pf, $user, $subject) = @_;
	my @files = wait_for_mail($pf, 1, 10, $user);
	my ($f) = grep { (read_file($_) // '') =~ /^Subject: \Q$subject\E$/m } @files;
	return '' unless $f;
	my $m = read_file($f);
	return $m =~ /^(Received: .*?)\n(?!\s)/ms ? $1 : '';
}

# Greylist once, retry after the delay, deliver; returns the reply hash.
sub greylist_and_deliver {
	my ($g, %o) = @_;
	my %conn = (port => $g->{port}, addr => $o{addr}, $o{host} ? (host => $o{host}) : ());
	my $c = smtp_connect(%conn);
	my $r = $c->send_mail(from => 'sender@example.org', to => $o{to});
	is($r->{rcpt}[0][0], 451, "$o{label}: first attempt greylisted");
	$c->quit;
	sleep 1.2;
	$c = smtp_connect(%conn);
	$r = $c->send_mail(from => 'sender@example.org', to => $o{to},
	    data => "Subject: $o{label}\n\nvia $o{label}\n");
	ok($r->{ok}, "$o{label}: retry delivered") or diag explain $r;
	$c->quit;
	return $r;
}

# --- IPv6: greyd on [::1] and 127.0.0.1, Postfix behind with PROXY v1
my $pf = start_postfix(proxy => 'haproxy', ipv6 => 1, users => [qw(alice bob carol)]);
my $port = free_port(ipv6 => 1);
my $g = start_greyd(postfix => $pf, listen => "127.0.0.1:$port, [::1]:$port",
    greylist_delay => '1s');
greylist_and_deliver($g, host => '::1', addr => '::1', to => 'alice@example.com', label => 'ipv6');
like(received_from($pf, 'alice', 'ipv6'), qr/\[IPv6:::1\]/, 'ipv6: Received shows ::1');
ok(wait_for_log($g, qr/PASS \[::1\]:\d+ .* white=::\/64/, 5), 'ipv6: whitelisted as ::/64');
my $c = smtp_connect(port => $g->{port}, host => '::1', addr => '::1');
like(($c->banner)[1] // '', qr/Postfix/, 'ipv6: the whitelisted /64 takes the fast path');
$c->quit;
stop_greyd($g);

# --- PROXY v2 to the same Postfix
$g = start_greyd(postfix => $pf, backend_proxy => 'haproxy2', greylist_delay => '1s',
    name => 'greyd-v2');
greylist_and_deliver($g, addr => '127.0.0.7', to => 'bob@example.com', label => 'proxy-v2');
like(received_from($pf, 'bob', 'proxy-v2'), qr/\[127\.0\.0\.7\]/, 'PROXY v2: Received shows 127.0.0.7');
stop_greyd($g);

# --- XCLIENT: a plain Postfix listener that trusts greyd's XCLIENT
my $pfx = start_postfix(proxy => 'none', xclient => 1, users => [qw(dave erin)]);
$g = start_greyd(postfix => $pfx, backend_proxy => 'xclient', greylist_delay => '1s',
    allow_clients => '127.0.5.0/24', name => 'greyd-xclient');
greylist_and_deliver($g, addr => '127.0.0.8', to => 'dave@example.com', label => 'xclient');
my $rcv = received_from($pfx, 'dave', 'xclient');
like($rcv, qr/\[127\.0\.0\.8\]/, 'XCLIENT: Received shows 127.0.0.8');
like($rcv, qr/from client\.greyd\.test/, "XCLIENT: the client's HELO name is passed on");

$c = smtp_connect(port => $g->{port}, addr => '127.0.5.5');
my ($code, $text) = $c->banner;
is($code, 220, 'XCLIENT fast path: banner');
like($text, qr/Postfix/, "XCLIENT fast path: Postfix's greeting after XCLIENT");
my $r = $c->send_mail(from => 'x@example.org', to => 'erin@example.com',
    data => "Subject: xclient-fast\n\nfast\n");
ok($r->{ok}, 'XCLIENT fast path: delivered') or diag explain $r;
$c->quit;
like(received_from($pfx, 'erin', 'xclient-fast'), qr/\[127\.0\.5\.5\]/,
    'XCLIENT fast path: Received shows 127.0.5.5');
ok(wait_for_log($g, qr/FAST \[127\.0\.5\.5\]:\d+ allow=127\.0\.5\.0\/24/, 5), 'FAST allow= logged');
is(stop_greyd($g), 0, 'greyd exits 0');
done_testing;
