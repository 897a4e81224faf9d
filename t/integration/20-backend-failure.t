#!/usr/bin/perl
# 20-backend-failure.t — the backend is down or dies: the client always gets
# a 4xx, nothing is lost, nothing is accepted twice.
#  - backend port closed: a passing RCPT gets 451 4.4.2; the (now
#    whitelisted) network's fast path gets 421 4.3.0;
#  - Postfix's smtpd killed in the middle of DATA: the client gets 451 at
#    its end of data, the partial message is never delivered, and the
#    client's retry is delivered exactly once.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Time::HiRes qw(sleep);
use GreydTest;

# --- nothing listens on the backend port
my $dead = free_port();
my $g = start_greyd(backend => "127.0.0.1:$dead", backend_proxy => 'haproxy',
    greylist_delay => '1s', backend_connect_timeout => '3s');
my $c = smtp_connect(port => $g->{port}, addr => '127.0.0.5');
my $r = $c->send_mail(from => 'a@example.org', to => 'alice@example.com');
is($r->{rcpt}[0][0], 451, 'first attempt greylisted');
$c->quit;
sleep 1.2;
$c = smtp_connect(port => $g->{port}, addr => '127.0.0.5');
$r = $c->send_mail(from => 'a@example.org', to => 'alice@example.com');
is($r->{rcpt}[0][0], 451, 'backend down: the passing RCPT gets 451');
like($r->{rcpt}[0][1], qr/^451 4\.4\.2 /, 'with 4.4.2');
ok(!defined $r->{data}, 'no DATA attempted');
is(($c->cmd('NOOP'))[0], 250, 'the session goes on');
$c->quit;
ok(wait_for_log($g, qr/BACKEND \[127\.0\.0\.5\] 127\.0\.0\.1:$dead: (?:Connection refused|cannot connect)/, 5),
    'BACKEND failure logged');
ok(wait_for_log($g, qr/TEMPFAIL \[127\.0\.0\.5\]:\d+ from=<a\@example\.org> backend failed during connect/, 5),
    'TEMPFAIL logged');

$c = smtp_connect(port => $g->{port}, addr => '127.0.0.6');
my ($code, $text) = $c->banner;
is($code, 421, 'fast path with the backend down: 421');
like($text // '', qr/^421 4\.3\.0 /, 'with 4.3.0');
ok(defined $c->wait_closed(5), 'and the connection is closed');
stop_greyd($g);

# --- the backend dies in the middle of DATA
my $pf = start_postfix(proxy => 'haproxy', users => [qw(alice bob)]);
$g = start_greyd(postfix => $pf, greylist_delay => '1s', name => 'greyd2');
$c = smtp_connect(port => $g->{port}, addr => '127.0.1.5');
$r = $c->send_mail(from => 'b@example.org', to => 'bob@example.com');
is($r->{rcpt}[0][0], 451, 'greylisted first');
$c->quit;
sleep 1.2;
$c = smtp_connect(port => $g->{port}, addr => '127.0.1.5');
is(($c->cmd('EHLO client.example.org'))[0], 250, 'EHLO');
is(($c->cmd('MAIL FROM:<b@example.org>'))[0], 250, 'MAIL');
is(($c->cmd('RCPT TO:<bob@example.com>'))[0], 250, 'RCPT relayed');
is(($c->cmd('DATA'))[0], 354, 'DATA: 354 from Postfix');
$c->send_raw("Subject: half\r\n\r\nfirst half of the message\r\n");
sleep 0.3;
my @smtpd = grep { /\S/ } split /\n/, `pgrep -f 'smtpd -n 127.0.0.1:$pf->{port}'`;
ok(@smtpd >= 1, 'found the smtpd serving greyd') or diag(`ps axww`);
kill 'KILL', @smtpd;
sleep 0.3;
$c->send_raw("second half\r\n.\r\n");
($code, $text) = $c->read_reply(10);
is($code, 451, 'backend died mid-DATA: 451 at end of data');
like($text // '', qr/^451 4\.4\.2 /, 'with 4.4.2');
is(($c->cmd('RSET'))[0], 250, 'session still usable');
# the retry in the same session opens a new backend connection
is(($c->cmd('MAIL FROM:<b@example.org>'))[0], 250, 'retry: MAIL');
is(($c->cmd('RCPT TO:<bob@example.com>'))[0], 250, 'retry: RCPT over a new backend connection');
($code, $text) = $c->data("Subject: whole\n\nthe whole message\n");
is($code, 250, 'retry delivered');
$c->quit;
my @bob = wait_for_mail($pf, 1, 10, 'bob');
sleep 1;    # a wrongly completed half message would arrive meanwhile
@bob = wait_for_mail($pf, 1, 5, 'bob');
is(scalar @bob, 1, 'exactly one message delivered');
like(read_file($bob[0] // '/nonexistent') // '', qr/^Subject: whole$/m, 'and it is the retry');
ok(wait_for_log($g, qr/TEMPFAIL \[127\.0\.1\.5\]:\d+ .*backend failed during/, 5), 'failure logged');
is(stop_greyd($g), 0, 'greyd exits 0');
done_testing;
