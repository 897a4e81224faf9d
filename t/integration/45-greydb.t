#!/usr/bin/perl
# 45-greydb.t — greydb works on the trust database while greyd runs, and
# greyd sees its changes at once: list (text and JSON), explain agreeing
# with greyd's own answers, add white (next connection takes the fast path),
# del white (greylisted again), del grey (triplet starts over), stats.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Time::HiRes qw(sleep);
use GreydTest;

my $pf = start_postfix(proxy => 'haproxy', users => [qw(alice)]);
# 8 s: the explain of an early retry below must come before the delay ends,
# even under the sanitizers on a busy machine
my $g = start_greyd(postfix => $pf, greylist_delay => '8s');

my $c = smtp_connect(port => $g->{port}, addr => '127.0.3.7');
is($c->send_mail(from => 'a@example.org', to => 'alice@example.com')->{rcpt}[0][0], 451,
    'greylisted');
$c->quit;

my ($st, $out, $err) = run_greydb($g, 'list', 'grey');
is($st, 0, 'list grey while greyd runs') or diag($err);
like($out, qr/^GREY 127\.0\.3\.0\/24 from=<a\@example\.org> to=<alice\@example\.com> .*attempts=1 /m,
    'the grey entry greyd just wrote');
($st, $out) = run_greydb($g, 'list', 'client', '--json');
like($out, qr/^\{"table":"client","addr":"127\.0\.3\.7",.*"greylisted":1/m, 'client record as JSON');

($st, $out) = run_greydb($g, 'explain', '127.0.3.99', 'a@example.org', 'alice@example.com');
is($st, 0, 'explain');
like($out, qr/^answer\s+451 4\.7\.1 greylisted: early retry, [1-8] s left$/m,
    'explain: early retry from another address of the /24');
($st, $out) = run_greydb($g, 'explain', '127.0.3.99', 'new@example.org', 'alice@example.com');
like($out, qr/^answer\s+451 4\.7\.1 greylisted: new triplet/m, 'explain: a new triplet');
sleep 8.2;
($st, $out) = run_greydb($g, 'explain', '127.0.3.99', 'a@example.org', 'alice@example.com');
like($out, qr/^answer\s+pass/m, 'explain: pass after the delay');
($st, $out) = run_greydb($g, 'explain', '127.0.3.99', 'a@example.org', 'postmaster@example.com');
like($out, qr/postmaster/i, 'explain: postmaster exemption');

# del grey: the triplet starts over
($st, $out, $err) = run_greydb($g, 'del', 'grey', '127.0.3.0/24', 'a@example.org', 'alice@example.com');
is($st, 0, 'del grey') or diag($err);
$c = smtp_connect(port => $g->{port}, addr => '127.0.3.7');
my $r = $c->send_mail(from => 'a@example.org', to => 'alice@example.com');
like($r->{rcpt}[0][1], qr/try again in 8 seconds/, 'greyd sees the deletion: new triplet again');
$c->quit;

# add white: greyd takes the fast path at once
($st, $out, $err) = run_greydb($g, 'add', 'white', '127.0.4.0/24', '--expire', '1d');
is($st, 0, 'add white') or diag($err);
($st, $out) = run_greydb($g, 'list', 'white');
like($out, qr/^WHITE 127\.0\.4\.0\/24 .*origin=admin/m, 'listed with origin admin');
($st, $out) = run_greydb($g, 'explain', '127.0.4.5', 'x@example.org', 'alice@example.com');
like($out, qr/^answer\s+fast path \(white 127\.0\.4\.0\/24/m, 'explain: fast path');
$c = smtp_connect(port => $g->{port}, addr => '127.0.4.5');
like(($c->banner)[1] // '', qr/Postfix/, 'greyd sees the new white entry: fast path');
$r = $c->send_mail(from => 'x@example.org', to => 'alice@example.com');
ok($r->{ok}, 'delivered through the fast path');
$c->quit;
ok(wait_for_log($g, qr/FAST \[127\.0\.4\.5\]:\d+ white=127\.0\.4\.0\/24/, 5), 'FAST logged');

# del white: greylisted again
($st) = run_greydb($g, 'del', 'white', '127.0.4.0/24');
is($st, 0, 'del white');
$c = smtp_connect(port => $g->{port}, addr => '127.0.4.5');
like(($c->banner)[1] // '', qr/ESMTP greyd/, 'greyd sees the deletion: its own SMTP again');
is($c->send_mail(from => 'x@example.org', to => 'alice@example.com')->{rcpt}[0][0], 451,
    'and greylists');
$c->quit;

($st, $out) = run_greydb($g, 'stats');
like($out, qr/^GREY entries=\d+/m, 'stats');
($st, $out, $err) = run_greydb($g, 'add', 'white', 'not-an-address');
isnt($st, 0, 'a bad address is refused');
like($err, qr/not-an-address/, 'with a message naming it');
($st, $out, $err) = run_greydb($g, 'frobnicate');
is($st, 2, 'unknown command: usage error');
is(stop_greyd($g), 0, 'greyd exits 0');
done_testing;
