#!/usr/bin/perl
# 86-spf.t — SPF at MAIL FROM, end to end: a real unbound serves the SPF
# records on a loopback port, greyd checks them with libspf2 through its own
# c-ares resolver, a real Postfix receives what passes.
#   pass.test      ip4:127.0.86.0/24 ip4:127.0.87.0/24 -all
#                  greylisted by the SPF domain: the retry from 127.0.87.2
#                  (another /24) passes; Postfix gets Received-SPF: pass
#   fail.test      -all with exp=      -> 550 5.7.23 with the explanation
#   softfail.test  ~all                -> greylisted (address key)
#   neutral.test   ?all, none.test (no record) -> accepted, greylisted
#   loop.test      include:loop.test   -> permerror, accepted (default);
#                  rejected 550 5.7.24 with spf_permerror_action = reject
#   many.test      11 DNS mechanisms   -> permerror
#   slow.test      never answered      -> temperror, 451 4.7.24
#   helo.test      the HELO identity of a null sender -> pass
#   big.test       a record too big for a UDP answer -> pass over TCP
# The clients are 127.x: spf_check_loopback = yes has them checked like any
# other (the default, no, skips the host's own clients; tested last).
# SIGHUP with a new dns_servers reaches the workers' resolvers; greydb
# explain checks SPF the same way.
# MAIL and RCPT pipelined in one write: the RCPT waits in the buffer while
# SPF runs and is answered after it.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Time::HiRes qw(sleep time);
use GreydTest;

my @many = map { "a:h$_.many.test" } 1 .. 11;
# A record of about 1,900 octets in 8 strings: the answer does not fit the
# 1,232 octets of EDNS0, so the worker's resolver retries over TCP.  (Its
# terms are padded with spaces: libspf2 1.2.10 silently stops compiling a
# record after 512 octets of compiled mechanisms, about 64 ip4 terms.)
my $bigrec = join(' ' x 30, 'v=spf1', (map { "ip4:10.$_.0.0/16" } 1 .. 40), 'ip4:127.0.86.0/24 -all');
my $big = join(' ', map { qq("$_") } unpack('(a250)*', $bigrec));
my $dns = start_unbound(log_queries => 1, records => [
	'pass.test. 300 IN TXT "v=spf1 ip4:127.0.86.0/24 ip4:127.0.87.0/24 -all"',
	'fail.test. 300 IN TXT "v=spf1 -all exp=exp.fail.test"',
	# %_ for a space: libspf2 1.2.10 turns a literal space of an
	# explanation into "%" and stops expanding after it
	'exp.fail.test. 300 IN TXT "%{i}%_may%_not%_send%_for%_%{d}"',
	'softfail.test. 300 IN TXT "v=spf1 ~all"',
	'neutral.test. 300 IN TXT "v=spf1 ?all"',
	'none.test. 300 IN A 192.0.2.1',
	'loop.test. 300 IN TXT "v=spf1 include:loop.test -all"',
	"many.test. 300 IN TXT \"v=spf1 @many -all\"",
	'slow.test. 300 IN TXT "v=spf1 include:x.slow-ns.test -all"',
	'helo.test. 300 IN TXT "v=spf1 ip4:127.0.86.0/24 -all"',
	'helo.test. 300 IN A 127.0.86.9',
	"big.test. 300 IN TXT $big",
], timeout => ['slow-ns.test']);

my $pf = start_postfix(proxy => 'haproxy', users => [qw(alice bob)]);
my %spf = (
	dns_servers => "127.0.0.1:$dns->{port}",
	dnsbl_timeout => '1s',
	spf_timeout => '10s',
	spf_workers => 2,
	spf_check_loopback => 'yes',	# the test clients are 127.x
);
my $g = start_greyd(postfix => $pf, greylist_delay => '1s', %spf);

# EHLO, MAIL and RCPT from addr; the replies and the connection.
sub mail_rcpt {
	my ($g, $addr, $from, $to, $helo) = @_;
	my $c = smtp_connect(port => $g->{port}, addr => $addr);
	$c->banner;
	$c->cmd('EHLO ' . ($helo // 'client.example.org'));
	my ($mc, $mt) = $c->cmd("MAIL FROM:<$from>", 15);
	my ($rc, $rt) = ($mc // 0) == 250 ? $c->cmd("RCPT TO:<$to>") : (0, '');
	return ($c, $mc // 0, $mt // '', $rc // 0, $rt // '');
}

sub spf_log {
	my ($g, $addr, $result, $action) = @_;
	return wait_for_log($g, qr/SPF \[\Q$addr\E\]:\d+ .*result=\Q$result\E action=\Q$action\E/, 10);
}

# --- pass: keyed by the domain; the retry from another /24 passes
{
	my ($c, $mc, undef, $rc, $rt) = mail_rcpt($g, '127.0.86.2', 'big@pass.test', 'alice@example.com');
	is($mc, 250, 'pass: MAIL accepted');
	is($rc, 451, 'pass: greylisted at first');
	$c->quit;
	ok(spf_log($g, '127.0.86.2', 'pass', 'accept'), 'SPF pass logged');
	ok(wait_for_log($g, qr/GREY \[127\.0\.86\.2\]:\d+ from=<big\@pass\.test> to=<alice\@example\.com> .*key=spf:pass\.test/, 5),
	    'the triplet is keyed by the SPF domain');
	sleep 1.2;
	my $c2 = smtp_connect(port => $g->{port}, addr => '127.0.87.2');
	$c2->banner;
	my $r = $c2->send_mail(from => 'big@pass.test', to => 'alice@example.com',
	    data => "Subject: spf pool\n\nfrom the other address\n");
	is($r->{rcpt}[0][0], 250, 'the retry from 127.0.87.2 (another /24) passes on its first retry');
	ok($r->{ok}, 'and is relayed');
	$c2->quit;
	my @f = wait_for_mail($pf, 1, 10, 'alice');
	my $msg = @f ? read_file($f[-1]) : '';
	like($msg, qr/^Received-SPF: pass \(.*\) client-ip=127\.0\.87\.2;.*envelope-from="?big\@pass\.test"?;/m,
	    'Postfix got the message with Received-SPF: pass');
	my ($hdr_pos, $spf_pos) = (index($msg, "\nSubject: spf pool"), index($msg, 'Received-SPF:'));
	ok($spf_pos >= 0 && $spf_pos < $hdr_pos, 'Received-SPF comes before the message headers');
}

# --- fail: 550 5.7.23 with the domain's explanation
{
	my ($c, $mc, $mt) = mail_rcpt($g, '127.0.86.3', 'x@fail.test', 'alice@example.com');
	is($mc, 550, 'fail: 550');
	like($mt, qr/^550 5\.7\.23 SPF check failed for <x\@fail\.test>: fail fail\.test: 127\.0\.86\.3 may not send for fail\.test/,
	    'fail: RFC 7372 code and the explanation');
	is(($c->cmd('RCPT TO:<alice@example.com>'))[0], 503, 'no transaction after the refusal');
	$c->quit;
	ok(spf_log($g, '127.0.86.3', 'fail', 'reject'), 'fail logged');
}

# --- softfail (greylist), neutral, none: accepted at MAIL
for my $t (['softfail', '127.0.86.4', 'greylist'], ['neutral', '127.0.86.5', 'accept'],
    ['none', '127.0.86.6', 'accept']) {
	my ($name, $addr, $action) = @$t;
	my ($c, $mc, undef, $rc) = mail_rcpt($g, $addr, "u\@$name.test", 'alice@example.com');
	is($mc, 250, "$name: MAIL accepted");
	is($rc, 451, "$name: greylisted");
	$c->quit;
	ok(spf_log($g, $addr, $name, $action), "$name logged with action $action");
	ok(wait_for_log($g, qr/GREY \[\Q$addr\E\]:\d+ from=<u\@\Q$name\E\.test> .*attempts=1$/m, 5),
	    "$name: keyed by the address");
}

# --- permerror: a loop and too many lookups; accepted by default
for my $t (['loop', '127.0.86.7'], ['many', '127.0.86.8']) {
	my ($name, $addr) = @$t;
	my ($c, $mc) = mail_rcpt($g, $addr, "p\@$name.test", 'alice@example.com');
	is($mc, 250, "$name.test: permerror accepted (spf_permerror_action = accept)");
	$c->quit;
	ok(wait_for_log($g, qr/SPF \[\Q$addr\E\]:\d+ .*result=permerror action=accept reason="[^"]+"/, 10),
	    "$name.test: permerror logged with its reason");
}

# --- temperror: the name server of an include never answers
{
	my $t0 = time;
	my ($c, $mc, $mt) = mail_rcpt($g, '127.0.86.10', 's@slow.test', 'alice@example.com');
	is($mc, 451, 'temperror: 451');
	like($mt, qr/^451 4\.7\.24 SPF temporary error for <s\@slow\.test>: temperror slow\.test: .*; try again later/, 'temperror: 4.7.24');
	cmp_ok(time - $t0, '<', 10, 'answered before spf_timeout');
	$c->quit;
	ok(spf_log($g, '127.0.86.10', 'temperror', 'tempfail'), 'temperror logged');
}

# --- a record too big for UDP: fetched over TCP
{
	my ($c, $mc) = mail_rcpt($g, '127.0.86.21', 'b@big.test', 'alice@example.com');
	is($mc, 250, 'a 1,900-octet record: MAIL accepted');
	$c->quit;
	ok(spf_log($g, '127.0.86.21', 'pass', 'accept'), 'a 1,900-octet record (TCP): pass');
}

# --- the null sender: the HELO identity
{
	my ($c, $mc, undef, $rc) = mail_rcpt($g, '127.0.86.9', '', 'alice@example.com', 'helo.test');
	is($mc, 250, 'null sender: MAIL accepted');
	$c->quit;
	ok(wait_for_log($g, qr/SPF \[127\.0\.86\.9\]:\d+ from=<> helo=<helo\.test> identity=helo domain=helo\.test result=pass/, 10),
	    'null sender: HELO identity checked, pass');
}

# --- pipelining: MAIL and RCPT in one write, answered in order
{
	my $c = smtp_connect(port => $g->{port}, addr => '127.0.86.11');
	$c->banner;
	$c->cmd('EHLO client.example.org');
	$c->send_raw("MAIL FROM:<x\@fail.test>\r\nRCPT TO:<alice\@example.com>\r\nMAIL FROM:<y\@neutral.test>\r\n"
	    . "RCPT TO:<alice\@example.com>\r\n");
	my @codes = map { ($c->read_reply(15))[0] // 0 } 1 .. 4;
	is_deeply(\@codes, [550, 503, 250, 451], 'pipelined: fail 550, RCPT 503, neutral 250, RCPT 451');
	$c->quit;
}

# --- greydb explain checks SPF as greyd does at MAIL FROM
{
	my ($st, $out) = run_greydb($g, 'explain', '127.0.86.3', 'x@fail.test', 'alice@example.com');
	is($st, 0, 'explain a failing sender: exit 0');
	like($out, qr/^spf\s+result=fail identity=mailfrom domain=fail\.test action=reject$/m, 'explain: the SPF result and action');
	like($out, qr/^answer\s+550 5\.7\.23 SPF check failed for <x\@fail\.test>: fail fail\.test: 127\.0\.86\.3 may not send for fail\.test$/m,
	    'explain: the 550 greyd gives');
	unlike($out, qr/^grey\s/m, 'explain: no greylisting after the refusal');
	($st, $out) = run_greydb($g, 'explain', '127.0.86.20', 'big@pass.test', 'alice@example.com');
	like($out, qr/^spf\s+result=pass .*action=accept$/m, 'explain: pass');
	like($out, qr/^triplet\s+spf:pass\.test from=<big\@pass\.test> to=<alice\@example\.com> \(SPF pass/m,
	    'explain: the triplet keyed by the SPF domain');
	like($out, qr/^grey\s+(?!no record)/m, 'explain: finds the grey entry of the domain key');
	($st, $out) = run_greydb($g, 'explain', '127.0.86.4', 'u@softfail.test', 'alice@example.com');
	like($out, qr/^spf\s+result=softfail .*action=greylist$/m, 'explain: softfail greylisted');
	(my $text = read_file($g->{conf})) =~ s/^spf_check_loopback = yes$/spf_check_loopback = no/m
	    or die "no spf_check_loopback in $g->{conf}";
	my $local = write_file(tempdir() . '/local.conf', $text);
	($st, $out) = run_greydb($local, 'explain', '127.0.86.3', 'x@fail.test', 'alice@example.com');
	like($out, qr/^spf\s+not checked \(a client on this host/m, 'explain: a loopback client is not checked by default');
}

# --- spf_permerror_action = reject; spf_fail_action = accept
{
	my $g2 = start_greyd(postfix => $pf, greylist_delay => '1s', name => 'strict', %spf,
	    spf_permerror_action => 'reject', spf_fail_action => 'tempfail');
	my ($c, $mc, $mt) = mail_rcpt($g2, '127.0.86.12', 'p@loop.test', 'alice@example.com');
	is($mc, 550, 'permerror rejected');
	like($mt, qr/^550 5\.7\.24 SPF permanent error for <p\@loop\.test>: permerror loop\.test/, 'permerror: 5.7.24');
	$c->quit;
	($c, $mc, $mt) = mail_rcpt($g2, '127.0.86.13', 'x@fail.test', 'alice@example.com');
	is($mc, 451, 'spf_fail_action = tempfail: 451');
	like($mt, qr/^451 4\.7\.23 /, 'fail tempfailed: 4.7.23');
	$c->quit;
	stop_greyd($g2);
}

# --- SIGHUP: a new dns_servers reaches the SPF workers' own resolvers
{
	my $g5 = start_greyd(postfix => $pf, greylist_delay => '1s', name => 'hup', %spf,
	    dns_servers => '127.0.0.1:' . free_port());	# nobody there
	my ($c, $mc, $mt) = mail_rcpt($g5, '127.0.86.16', 'x@fail.test', 'alice@example.com');
	is($mc, 451, 'no DNS server: temperror 451');
	$c->quit;
	my $conf = read_file($g5->{conf});
	$conf =~ s/^dns_servers = .*$/dns_servers = 127.0.0.1:$dns->{port}/m or die "no dns_servers in $g5->{conf}";
	write_file($g5->{conf}, $conf);
	kill 'HUP', $g5->{pid};
	ok(wait_for_log($g5, qr/configuration reloaded/, 5), 'SIGHUP: reloaded');
	($c, $mc, $mt) = mail_rcpt($g5, '127.0.86.16', 'x@fail.test', 'alice@example.com');
	is($mc, 550, 'after SIGHUP the workers ask the new server: fail 550');
	$c->quit;
	stop_greyd($g5);
}

# --- spf_check_loopback = no (the default): a client on this host is not
#     checked
{
	my $g4 = start_greyd(postfix => $pf, greylist_delay => '1s', name => 'local', %spf,
	    spf_check_loopback => 'no');
	my ($c, $mc) = mail_rcpt($g4, '127.0.86.15', 'x@fail.test', 'alice@example.com');
	is($mc, 250, 'spf_check_loopback = no: a loopback client is not checked');
	$c->quit;
	stop_greyd($g4);
	unlike(greyd_log($g4), qr/ SPF \[/, 'and nothing logged');
}

# --- spf_workers = 0: no SPF at all
{
	my $g3 = start_greyd(postfix => $pf, greylist_delay => '1s', name => 'nospf', %spf, spf_workers => 0);
	my ($c, $mc) = mail_rcpt($g3, '127.0.86.14', 'x@fail.test', 'alice@example.com');
	is($mc, 250, 'spf_workers = 0: no check, MAIL accepted');
	$c->quit;
	stop_greyd($g3);
	unlike(greyd_log($g3), qr/ SPF \[/, 'and nothing logged');
}

unlike(postfix_log($pf), qr/127\.0\.86\.[3-9]\b|127\.0\.86\.1[0-6]\b/, 'Postfix never saw a refused or greylisted client');

done_testing();
