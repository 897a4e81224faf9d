#!/usr/bin/perl
# 10-greylist-flow.t — the whole path with a real Postfix behind greyd
# (PROXY v1): first attempt 451, early retry 451, retry after the delay is
# relayed to Postfix (its own replies, 550 for an unknown user included),
# several transactions in one session, delivery to the Maildir with the
# client's address in Received:, then the fast path for the whitelisted
# network, the postmaster exemption and BATV-tag normalisation.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Time::HiRes qw(sleep);
use GreydTest;

my $pf = start_postfix(proxy => 'haproxy', users => [qw(alice bob carol dave postmaster)]);
my $g = start_greyd(postfix => $pf, greylist_delay => '2s');

sub client { smtp_connect(port => $g->{port}, addr => $_[0]) }

# --- first attempt and early retry: greylisted by greyd, Postfix never sees them
my $c = client('127.0.0.5');
my ($code, $text) = $c->banner;
is($code, 220, 'banner');
like($text, qr/ESMTP greyd/, 'greyd answers an unknown client itself');
($code, $text) = $c->cmd('EHLO sender.example.org');
is($code, 250, 'EHLO');
like($text, qr/^250-PIPELINING$/m, 'PIPELINING advertised');
like($text, qr/^250-SIZE \d+$/m, 'SIZE advertised');
like($text, qr/^250-8BITMIME$/m, '8BITMIME advertised');
like($text, qr/^250 ENHANCEDSTATUSCODES$/m, 'ENHANCEDSTATUSCODES advertised');
is(($c->cmd('MAIL FROM:<sender@example.org>'))[0], 250, 'MAIL');
($code, $text) = $c->cmd('RCPT TO:<alice@example.com>');
is($code, 451, 'new triplet greylisted');
like($text, qr/^451 4\.7\.1 <alice\@example\.com>: Greylisted, try again in 2 seconds$/,
    'design reply text');
($code, $text) = $c->cmd('RCPT TO:<alice@example.com>');
is($code, 451, 'early retry greylisted again');
is(($c->cmd('DATA'))[0], 554, 'DATA with no accepted recipient: 554');
is($c->quit, 221, 'QUIT');
ok(wait_for_log($g, qr/GREY \[127\.0\.0\.5\]:\d+ from=<sender\@example\.org> to=<alice\@example\.com> delay=2 attempts=1/, 5),
    'GREY logged with client, triplet and delay');
unlike(postfix_log($pf), qr/connect from .*127\.0\.0\.5/, 'Postfix never saw the greylisted attempt');

sleep 2.2;

# --- the retry passes and is relayed; more transactions in the same session
$c = client('127.0.0.5');
is(($c->banner)[0], 220, 'retry: banner');
is(($c->cmd('EHLO sender.example.org'))[0], 250, 'retry: EHLO');
is(($c->cmd('MAIL FROM:<sender@example.org> BODY=8BITMIME'))[0], 250, 'retry: MAIL with parameter');
($code, $text) = $c->cmd('RCPT TO:<alice@example.com>');
is($code, 250, 'retry after the delay passes');
like($text, qr/^250 2\.1\.5 Ok$/, "Postfix's own RCPT reply is relayed");
($code, $text) = $c->cmd('RCPT TO:<nobody@example.com>');
is($code, 550, "unknown user: Postfix's 550 relayed");
like($text, qr/5\.1\.1 .*User unknown/, 'with its text');
($code, $text) = $c->data("Subject: first\n\nfirst message\n.dotted line\n");
is($code, 250, '250 after DATA from Postfix');
like($text, qr/queued as/, "Postfix's queue id reaches the client");

is(($c->cmd('MAIL FROM:<other@example.org>'))[0], 250, 'second transaction: MAIL');
($code) = $c->cmd('RCPT TO:<bob@example.com>');
is($code, 250, 'second transaction: whitelisted network passes at once');
($code, $text) = $c->data("Subject: second\n\nsecond message\n");
is($code, 250, 'second transaction delivered');

is(($c->cmd('MAIL FROM:<third@example.org>'))[0], 250, 'third transaction: MAIL');
is(($c->cmd('RCPT TO:<bob@example.com>'))[0], 250, 'third transaction: RCPT');
is(($c->cmd('RSET'))[0], 250, 'RSET aborts it');
is(($c->cmd('NOOP'))[0], 250, 'NOOP');
is(($c->cmd('VRFY bob'))[0], 252, 'VRFY 252');
is(($c->cmd('HELP'))[0], 214, 'HELP 214');
is($c->quit, 221, 'QUIT');

my @alice = wait_for_mail($pf, 1, 10, 'alice');
my @bob = wait_for_mail($pf, 1, 10, 'bob');
is(scalar @alice, 1, 'alice got one message');
is(scalar @bob, 1, 'bob got one message (the RSET one was not sent)');
my $m = read_file($alice[0] // '/nonexistent') // '';
like($m, qr/^Subject: first$/m, 'first message content');
like($m, qr/^\.dotted line$/m, 'dot-stuffing passed through intact');
like($m, qr/^Received: from sender\.example\.org \(\S+ \[127\.0\.0\.5\]\)/m,
    "Received: shows the client's real address (PROXY header)");
ok(wait_for_log($g, qr/PASS \[127\.0\.0\.5\]:\d+ from=<sender\@example\.org> to=<alice\@example\.com> waited=\d+ white=127\.0\.0\.0\/24/, 5),
    'PASS logged');
ok(wait_for_log($g, qr/DELIVERED \[127\.0\.0\.5\]:\d+ from=<sender\@example\.org> nrcpt=1 size=\d+ reply="250 2\.0\.0 Ok: queued as/, 5),
    'DELIVERED logged with the backend reply');
ok(wait_for_log($g, qr/NOQUEUE \[127\.0\.0\.5\]:\d+ .*to=<nobody\@example\.com> reply="550 5\.1\.1/, 5),
    'backend rejection logged');

# --- the whitelisted network takes the fast path: Postfix's own banner
$c = client('127.0.0.6');
($code, $text) = $c->banner;
is($code, 220, 'fast path: banner');
like($text, qr/Postfix/, "fast path: it is Postfix's banner");
my $r = $c->send_mail(from => 'x@example.org', to => 'carol@example.com',
    data => "Subject: fast\n\nfast path\n");
ok($r->{ok}, 'fast path: delivered') or diag explain $r;
$c->quit;
my @carol = wait_for_mail($pf, 1, 10, 'carol');
like(read_file($carol[0] // '/nonexistent') // '', qr/^Received: from \S+ \(\S+ \[127\.0\.0\.6\]\)/m,
    'fast path: Received shows 127.0.0.6');
ok(wait_for_log($g, qr/FAST \[127\.0\.0\.6\]:\d+ white=127\.0\.0\.0\/24/, 5), 'FAST logged');

# --- postmaster is never greylisted (RFC 5321 4.5.1)
$c = client('127.0.9.9');
is(($c->banner)[0], 220, 'new network: banner');
$r = $c->send_mail(from => 'someone@example.net', to => 'postmaster@example.com');
is($r->{rcpt}[0][0], 250, 'postmaster@ passes on the first attempt');
ok($r->{ok}, 'and is delivered');
$c->quit;
ok(wait_for_log($g, qr/EXEMPT \[127\.0\.9\.9\]/, 5), 'EXEMPT logged');

# --- BATV tags do not make a new triplet per message
$c = client('127.0.8.1');
$r = $c->send_mail(from => 'prvs=1111aaaaaa=news@example.net', to => 'dave@example.com');
is($r->{rcpt}[0][0], 451, 'BATV sender greylisted first');
$c->quit;
sleep 2.2;
$c = client('127.0.8.2');
$r = $c->send_mail(from => 'prvs=2222bbbbbb=news@example.net', to => 'dave@example.com');
is($r->{rcpt}[0][0], 250, 'retry with another tag, from another address of the /24, passes');
ok($r->{ok}, 'and is delivered');
$c->quit;

is(stop_greyd($g), 0, 'greyd exits 0 on SIGTERM');
done_testing;
