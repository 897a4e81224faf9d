#!/usr/bin/perl
# 40-fastpath-tls.t — a trusted client's session is end to end with
# Postfix: STARTTLS negotiated by swaks (a real SMTP client) with Postfix
# through greyd's fast path, the message delivered, and Postfix's Received:
# header showing both the client's real address and the TLS session.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use GreydTest;

my $dir = tempdir();
system("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=mx.greyd.test "
    . "-keyout $dir/key.pem -out $dir/cert.pem 2>/dev/null") == 0
    or BAIL_OUT('openssl req failed');
chmod 0644, "$dir/key.pem", "$dir/cert.pem";

my $pf = start_postfix(proxy => 'haproxy', users => [qw(alice)], main => {
	smtpd_tls_cert_file => "$dir/cert.pem",
	smtpd_tls_key_file => "$dir/key.pem",
	smtpd_tls_security_level => 'may',
	smtpd_tls_received_header => 'yes',
});
my $g = start_greyd(postfix => $pf, allow_clients => '127.0.6.0/24');

my $out = `swaks --server 127.0.0.1:$g->{port} --local-interface 127.0.6.1 --tls \\
    --from tls\@example.org --to alice\@example.com --h-Subject tls-fast-path \\
    --timeout 15 2>&1`;
is($? >> 8, 0, 'swaks succeeded') or diag($out);
like($out, qr/^<-\s+220 .*Postfix/m, "Postfix's banner through greyd");
like($out, qr/^<-\s+250-STARTTLS/m, 'Postfix offers STARTTLS');
like($out, qr/^=== TLS started with cipher/m, 'TLS negotiated end to end');
like($out, qr/^<~\s+250 .*queued as/m, 'message accepted inside TLS');

my @files = wait_for_mail($pf, 1, 10, 'alice');
my $m = read_file($files[0] // '/nonexistent') // '';
like($m, qr/^Received: from \S+ \(\S+ \[127\.0\.6\.1\]\)\s+\(using TLS/m,
    'Received: shows the real client and the TLS session');
ok(wait_for_log($g, qr/FAST \[127\.0\.6\.1\]:\d+ allow=127\.0\.6\.0\/24/, 5), 'FAST logged');
is(stop_greyd($g), 0, 'greyd exits 0');
done_testing;
