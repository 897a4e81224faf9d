#!/usr/bin/perl
# 00-postfix-harness.t — the test harness itself: private Postfix instances
# (PROXY listener, plain listener, XCLIENT over IPv6) accept, reject and
# deliver mail as the integration tests expect.  Needs no greyd binary.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Time::HiRes qw(time);
use GreydTest;

my $t0 = time;
my $pf1 = start_postfix(proxy => 'haproxy', users => [qw(alice bob postmaster)]);
my $pf2 = start_postfix(proxy => 'none', users => [qw(alice bob)]);
note(sprintf('two instances started in %.2f s (%.2f s, %.2f s)',
    time - $t0, $pf1->{start_time}, $pf2->{start_time}));
ok(kill(0, $pf1->{pid}) && kill(0, $pf2->{pid}), 'both masters running');
isnt($pf1->{port}, $pf2->{port}, 'distinct ports');

# One SMTP transaction; returns the delivered file's text.
sub deliver {
	my ($pf, %o) = @_;
	my $c = smtp_connect(port => $pf->{port}, addr => $o{from_addr});
	if (defined $o{proxy_src}) {
		ok(send_proxy_v1($c, $o{proxy_src}, 40000 + int(rand(1000)),
		    '127.0.0.1', $pf->{port}), "$o{label}: PROXY header sent");
	}
	my ($code, $text) = $c->banner;
	is($code, 220, "$o{label}: banner") or diag($text);
	($code, $text) = $c->cmd('EHLO client.greyd.test');
	is($code, 250, "$o{label}: EHLO");
	like($text, qr/^250[ -]PIPELINING$/m, "$o{label}: multi-line EHLO reply parsed");
	($code) = $c->cmd('MAIL FROM:<sender@sender.test>');
	is($code, 250, "$o{label}: MAIL");
	($code, $text) = $c->cmd('RCPT TO:<nobody@example.com>');
	is($code, 550, "$o{label}: unknown recipient rejected");
	like($text, qr/^550 5\.1\.1 /, "$o{label}: 5.1.1");
	($code) = $c->cmd("RCPT TO:<$o{to}>");
	is($code, 250, "$o{label}: RCPT $o{to}");
	my $id = "harness-$o{label}-" . int(rand(1e9));
	($code, $text) = $c->data("Subject: $id\n\n$id\n.leading dot\n");
	is($code, 250, "$o{label}: 250 after DATA") or diag($text);
	($code) = $c->quit;
	is($code, 221, "$o{label}: QUIT");

	my ($user) = split /@/, $o{to};
	my @files = wait_for_mail($pf, 1, 10, $user);
	my ($file) = grep { (read_file($_) // '') =~ /\Q$id\E/ } @files;
	ok($file, "$o{label}: delivered to $user\'s Maildir") or diag(postfix_log($pf));
	my $msg = read_file($file // '/nonexistent') // '';
	like($msg, qr/^\.leading dot$/m, "$o{label}: dot-stuffing undone");
	return $msg;
}

sub received { my ($m) = @_; return $m =~ /^(Received: .*?)\n(?!\s)/ms ? $1 : '' }

my $m = deliver($pf1, label => 'proxy', from_addr => '127.0.0.9',
    proxy_src => '127.0.0.9', to => 'alice@example.com');
like(received($m), qr/\[127\.0\.0\.9\]/, 'proxy: Received shows 127.0.0.9');

$m = deliver($pf1, label => 'proxy-claim', from_addr => '127.0.0.9',
    proxy_src => '198.51.100.7', to => 'bob@example.com');
like(received($m), qr/\[198\.51\.100\.7\]/, 'proxy: Received shows the address from the PROXY header');

$m = deliver($pf2, label => 'plain', from_addr => '127.0.0.10', to => 'bob@example.com');
like(received($m), qr/\[127\.0\.0\.10\]/, 'plain: Received shows the socket address 127.0.0.10');

# A PROXY listener says nothing until it gets the header.
{
	my $c = smtp_connect(port => $pf1->{port});
	my $code = $c->read_reply(1);
	ok(!defined $code && $c->error eq 'timeout', 'PROXY listener silent without a header');
	$c->close;
}

# The forbid_bare_newline option reaches the listener.
like(read_file("$pf1->{config_dir}/master.cf"), qr/-o smtpd_forbid_bare_newline=yes/,
    'PROXY listener forbids bare newlines');

# XCLIENT over IPv6 on a third instance.
{
	my $t = time;
	my $pf3 = start_postfix(proxy => 'none', xclient => 1, ipv6 => 1, users => ['carol']);
	note(sprintf('ipv6+xclient instance started in %.2f s', time - $t));
	my $c = smtp_connect(host => '::1', port => $pf3->{port});
	is($c->banner, 220, 'ipv6: banner');
	my ($code, $text) = $c->cmd('EHLO client.greyd.test');
	like($text, qr/^250-XCLIENT /m, 'xclient: advertised to loopback');
	($code) = $c->cmd('XCLIENT ADDR=127.0.0.77 NAME=[UNAVAILABLE]');
	is($code, 220, 'xclient: accepted, new banner');
	is(($c->cmd('EHLO client.greyd.test'))[0], 250, 'xclient: EHLO again');
	my $r = $c->send_mail(from => 's@sender.test', to => 'carol@example.com',
	    data => "Subject: xclient\n\nhi\n");
	ok($r->{ok}, 'xclient: message accepted');
	$c->quit;
	my @f = wait_for_mail($pf3, 1, 10, 'carol');
	is(scalar @f, 1, 'xclient: delivered');
	like(received(read_file($f[0]) // ''), qr/\[127\.0\.0\.77\]/, 'xclient: Received shows 127.0.0.77');
	my $pid = $pf3->{pid};
	stop_postfix($pf3);
	note(sprintf('stop took %.2f s', $pf3->{stop_time}));
	ok(!GreydTest::_pid_alive($pid), 'stop_postfix: master gone');
}

# Clean stop of one instance leaves the other alone.
{
	my $pid = $pf2->{pid};
	stop_postfix($pf2);
	note(sprintf('stop took %.2f s', $pf2->{stop_time}));
	ok(!GreydTest::_pid_alive($pid), 'stop_postfix: master gone');
	ok(kill(0, $pf1->{pid}), 'the other instance still runs');
	my $c = eval { smtp_connect(port => $pf2->{port}, timeout => 2) };
	ok(!$c, 'stopped instance no longer accepts');
}

done_testing;
