#!/usr/bin/perl
# 07-unbound-harness.t — the test harness itself: start_unbound serves
# records (TXT with several strings and escapes, A, AAAA, MX, PTR, CNAME)
# over UDP and TCP on a loopback port, never sends a query out, drops the
# queries for a timeout name (a real client timeout over UDP; over TCP the
# connection is closed unanswered), refuses a refuse name,
# logs the queries, and stop_unbound leaves no process.  Needs no greyd
# binary.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Net::DNS;
use Time::HiRes qw(time);
use GreydTest;

my $u = start_unbound(ipv6 => 1, log_queries => 1, records => [
	'txt.h.test. 300 IN TXT ' . dns_txt_rdata('v=spf1 ip4:192.0.2.0/24', ' -all'),
	'esc.h.test. 300 IN TXT ' . dns_txt_rdata(qq(q"b\\s'e \x96), 'x' x 300),
	'empty.h.test. 300 IN TXT ' . dns_txt_rdata(),
	'host.h.test. 300 IN A 192.0.2.10',
	'host.h.test. 300 IN AAAA 2001:db8::10',
	'h.test. 300 IN MX 10 host.h.test.',
	'10.2.0.192.in-addr.arpa. 300 IN PTR host.h.test.',
	'alias.h.test. 300 IN CNAME host.h.test.',
	dns_escape_name('odd:na/me with space.h.test') . ' 300 IN A 192.0.2.11',
	'part.slow.test. 300 IN TXT "answered"',
	'below.slow.test. 300 IN A 192.0.2.12',
], timeout => ['slow.test', 'part.slow.test'], refuse => ['no.test']);
ok($u->{port} > 0 && GreydTest::_pid_alive($u->{pid}), "unbound runs on port $u->{port}");

sub resolver {
	my (%o) = @_;
	return Net::DNS::Resolver->new(nameservers => [$o{host} // '127.0.0.1'],
	    port => $u->{port}, recurse => 1, retrans => 1, retry => 1,
	    udp_timeout => 1, tcp_timeout => 2, usevc => $o{tcp} ? 1 : 0,
	    defnames => 0, dnsrch => 0);
}

# (rcode, rdata of the answers of that type...), or ('TIMEOUT').
sub answer {
	my ($name, $type, %o) = @_;
	my $p = resolver(%o)->send($name, $type) or return ('TIMEOUT');
	return ($p->header->rcode, map {
		$_->type eq 'TXT' ? join('|', map { unpack('H*', $_) } $_->txtdata) : $_->rdstring
	} grep { $_->type eq $type } $p->answer);
}

sub hexs { join('|', map { unpack('H*', $_) } @_) }

for my $tcp (0, 1) {
	my $via = $tcp ? 'TCP' : 'UDP';
	is_deeply([answer('txt.h.test', 'TXT', tcp => $tcp)],
	    ['NOERROR', hexs('v=spf1 ip4:192.0.2.0/24', ' -all')], "$via: TXT with two strings");
	is_deeply([answer('host.h.test', 'A', tcp => $tcp)], ['NOERROR', '192.0.2.10'], "$via: A");
	is_deeply([answer('host.h.test', 'AAAA', tcp => $tcp)], ['NOERROR', '2001:db8::10'], "$via: AAAA");
	is_deeply([answer('h.test', 'MX', tcp => $tcp)], ['NOERROR', '10 host.h.test.'], "$via: MX");
	is_deeply([answer('10.2.0.192.in-addr.arpa', 'PTR', tcp => $tcp)], ['NOERROR', 'host.h.test.'],
	    "$via: PTR (in a zone unbound serves itself by default)");
}
{
	my $p = resolver()->send('esc.h.test', 'TXT');
	my ($rr) = $p ? $p->answer : ();
	my $raw = $rr ? $rr->rdata : '';
	my @s;
	while (length $raw) {
		my $l = ord substr($raw, 0, 1);
		push @s, substr($raw, 1, $l);
		substr($raw, 0, $l + 1) = '';
	}
	is_deeply(\@s, [qq(q"b\\s'e \x96), 'x' x 255, 'x' x 45],
	    'TXT octets: quote, backslash, apostrophe, non-ASCII; 300 octets cut at 255');
}
is_deeply([answer('empty.h.test', 'TXT')], ['NOERROR', ''], 'TXT with no strings');
is_deeply([answer('odd:na/me with space.h.test', 'A')], ['NOERROR', '192.0.2.11'],
    'owner name with : / and spaces');
is_deeply([answer('host.h.test', 'TXT')], ['NOERROR'], 'no such type: NODATA');
is_deeply([answer('nothing.h.test', 'A')], ['NXDOMAIN'], 'no such name: NXDOMAIN');
{
	my $p = resolver()->send('nothing.h.test', 'A');
	my ($soa) = grep { $_->type eq 'SOA' } $p->authority;
	ok($soa && $soa->minimum == 300, 'NXDOMAIN carries an SOA');
}
is_deeply([answer('alias.h.test', 'A')], ['NOERROR', '192.0.2.10'], 'CNAME followed');
is_deeply([answer('www.example.org', 'A')], ['NXDOMAIN'], 'a name outside the records: NXDOMAIN, not resolved');
is_deeply([answer('foo.test', 'A')], ['NXDOMAIN'], '.test is served too');
is_deeply([answer('host.h.test', 'A', host => '::1')], ['NOERROR', '192.0.2.10'], 'ipv6 listener');

{
	my $t0 = time;
	is_deeply([answer('slow.test', 'A')], ['TIMEOUT'], 'UDP: timeout name: no answer');
	cmp_ok(time - $t0, '>=', 0.9, 'UDP: the client really waited for its timeout');
	# Over TCP unbound closes the connection instead of answering.
	is_deeply([answer('slow.test', 'A', tcp => 1)], ['TIMEOUT'], 'TCP: timeout name: no answer');
}
is_deeply([answer('x.slow.test', 'TXT')], ['TIMEOUT'], 'below a timeout name: no answer');
is_deeply([answer('part.slow.test', 'TXT')], ['NOERROR', hexs('answered')],
    'a record at a timeout name is answered (name and type match)');
is_deeply([answer('part.slow.test', 'A')], ['TIMEOUT'], '... its other types are not');
is_deeply([answer('below.slow.test', 'A')], ['NOERROR', '192.0.2.12'],
    'a name with records below a timeout name is answered');
is_deeply([answer('below.slow.test', 'TXT')], ['NOERROR'], '... with NODATA too');
is_deeply([answer('no.test', 'A')], ['REFUSED'], 'refuse name: REFUSED');

my @q = unbound_queries($u);
is(scalar(grep { $_->[1] eq 'host.h.test' && $_->[2] eq 'A' } @q), 3, 'log_queries: host.h.test A asked 3 times')
    or diag(explain(\@q));
is(scalar(grep { $_->[1] eq 'slow.test' } @q), 2, 'the dropped queries are logged (one UDP, one TCP)')
    or diag(explain(\@q));
unlike(unbound_log($u), qr/error:/, 'no errors in the log');

# Another instance at the same time gets another port.
my $u2 = start_unbound(records => ['a.b.test. 60 IN A 192.0.2.1']);
isnt($u2->{port}, $u->{port}, 'a second instance has its own port');

my $bad = eval { start_unbound(records => ['bad.test. 300 IN A not-an-address']) };
like($@, qr/did not answer.*unbound-checkconf/s, 'a bad record dies with the log and unbound-checkconf')
    or diag($@);

my @pids = ($u->{pid}, $u2->{pid});
stop_unbound($u);
stop_unbound($u2);
ok(!GreydTest::_pid_alive($_), "stop_unbound: $_ gone") for @pids;
is((answer('host.h.test', 'A'))[0], 'TIMEOUT', 'no longer answers');

done_testing;
