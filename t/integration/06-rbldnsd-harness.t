#!/usr/bin/perl
# 06-rbldnsd-harness.t — the test harness itself: start_rbldnsd serves a
# DNSBL zone (ip4set) and a generic zone on a loopback UDP port, as the
# DNSBL and SPF tests expect, and stop_rbldnsd stops it.  Needs no greyd
# binary.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Net::DNS;
use GreydTest;

my $dns = start_rbldnsd(ipv6 => 1, zones => {
	'bl.test' => ['ip4set', <<'EOF_BL'],
$SOA 3600 ns.bl.test hostmaster.bl.test 1 600 300 86400 90
$TTL 600
:127.0.0.2:Listed: see http://bl.test/$
127.0.0.2
127.0.0.4 :127.0.0.4:
EOF_BL
	'gen.test' => ['generic', <<'EOF_GEN'],
$TTL 300
host A 192.0.2.10
host 60 TXT "v=spf1 ip4:192.0.2.0/24 -all"
EOF_GEN
});
ok($dns->{port} > 0 && GreydTest::_pid_alive($dns->{pid}), "rbldnsd runs on port $dns->{port}");

sub resolver {
	my ($host) = @_;
	return Net::DNS::Resolver->new(nameservers => [$host // '127.0.0.1'],
	    port => $dns->{port}, recurse => 0, retrans => 1, retry => 2, udp_timeout => 2);
}

sub answer {
	my ($name, $type, $host) = @_;
	my $res = resolver($host);
	my $p = $res->send($name, $type) or return ('TIMEOUT');
	return ($p->header->rcode, map { $_->type eq 'TXT' ? $_->txtdata : $_->rdstring }
	    grep { $_->type eq $type } $p->answer);
}

is_deeply([answer('2.0.0.127.bl.test', 'A')], ['NOERROR', '127.0.0.2'], 'listed: A');
is_deeply([answer('2.0.0.127.bl.test', 'TXT')],
    ['NOERROR', 'Listed: see http://bl.test/127.0.0.2'], 'listed: TXT with $ expanded');
is_deeply([answer('4.0.0.127.bl.test', 'A')], ['NOERROR', '127.0.0.4'], 'listed as 127.0.0.4');
is_deeply([answer('4.0.0.127.bl.test', 'TXT')], ['NOERROR'], 'no TXT: NODATA');
is_deeply([answer('3.0.0.127.bl.test', 'A')], ['NXDOMAIN'], 'not listed: NXDOMAIN');
is_deeply([answer('host.gen.test', 'A')], ['NOERROR', '192.0.2.10'], 'generic: A');
is_deeply([answer('host.gen.test', 'TXT')], ['NOERROR', 'v=spf1 ip4:192.0.2.0/24 -all'],
    'generic: TXT');
is_deeply([answer('www.example.org', 'A')], ['REFUSED'], 'outside the zones: REFUSED');
is_deeply([answer('2.0.0.127.bl.test', 'A', '::1')], ['NOERROR', '127.0.0.2'], 'ipv6 listener');
{
	my $p = resolver()->send('2.0.0.127.bl.test', 'A');
	is(($p->answer)[0]->ttl, 600, '$TTL applies');
	$p = resolver()->send('3.0.0.127.bl.test', 'A');
	my ($soa) = grep { $_->type eq 'SOA' } $p->authority;
	is($soa && $soa->minimum, 90, 'NXDOMAIN carries the SOA');
}

eval { start_rbldnsd(delay => 1, zones => { 'x.test' => ['generic', ''] }) };
like($@, qr/cannot delay/, 'delay is refused');

my $pid = $dns->{pid};
stop_rbldnsd($dns);
ok(!GreydTest::_pid_alive($pid), 'stop_rbldnsd: gone');
is((answer('2.0.0.127.bl.test', 'A'))[0], 'TIMEOUT', 'no longer answers');

done_testing;
