#!/usr/bin/perl
# 05-daemon.t — greyd as a daemon: -t and -n, file:line errors for a bad
# configuration, -o overrides, the privilege drop, the pid file, SIGHUP
# reload (a bad file keeps the running configuration), SIGTERM exit 0.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Time::HiRes qw(sleep);
use GreydTest;

my $dir = tempdir();
my $bin = greyd_binary();

sub run_cmd {
	my (@cmd) = @_;
	my $out = `@cmd 2>&1`;
	return ($? >> 8, $out);
}

# --- -t on a good and on bad files
write_file("$dir/good.conf", "# comment\nlisten = 127.0.0.1:2600, [::1]:2600\n"
    . "greylist_delay = 10m\nallow_clients = 10.0.0.0/8\n  192.168.0.0/16\n");
my ($st, $out) = run_cmd($bin, '-t', '-f', "$dir/good.conf");
is($st, 0, '-t accepts a good file') or diag($out);

write_file("$dir/bad1.conf", "listen = 127.0.0.1:2600\n\ngreylist_dleay = 5m\n");
($st, $out) = run_cmd($bin, '-t', '-f', "$dir/bad1.conf");
isnt($st, 0, '-t rejects an unknown name');
like($out, qr/bad1\.conf:3: .*greylist_dleay/, 'error names file:line and the setting');

write_file("$dir/bad2.conf", "greylist_delay = 5 minutes please\n");
($st, $out) = run_cmd($bin, '-t', '-f', "$dir/bad2.conf");
isnt($st, 0, '-t rejects a bad duration');
like($out, qr/bad2\.conf:1: .*greylist_delay/, 'file:line for a bad value');

write_file("$dir/bad3.conf", "backend_proxy = haproxy3\n");
($st, $out) = run_cmd($bin, '-t', '-f', "$dir/bad3.conf");
isnt($st, 0, '-t rejects a bad enum');
like($out, qr/bad3\.conf:1: /, 'file:line for a bad backend_proxy');

write_file("$dir/bad4.conf", "allow_clients = 10.0.0.0/8\n 10.1.2.3/40\n");
($st, $out) = run_cmd($bin, '-t', '-f', "$dir/bad4.conf");
isnt($st, 0, '-t rejects a bad CIDR on a continuation line');
like($out, qr/bad4\.conf:1: /, 'reported at the logical line');

($st, $out) = run_cmd($bin, '-t', '-f', "$dir/does-not-exist.conf");
isnt($st, 0, 'a missing file is an error');

# --- -n prints every effective setting; -o overrides
($st, $out) = run_cmd($bin, '-n', '-f', "$dir/good.conf", '-o', 'white_expiry=7d');
is($st, 0, '-n exits 0');
for my $name (qw(listen backend backend_proxy db_dir greylist_delay greylist_retry_window
    white_expiry client_record_expiry greylist_ipv4_prefix greylist_ipv6_prefix allow_clients user
    pid_file)) {
	like($out, qr/^\Q$name\E =/m, "-n prints $name");
}
like($out, qr/^greylist_delay = 600s?$/m, '-n shows the file value');
like($out, qr/^white_expiry = 604800s?$/m, '-n shows the -o override');
like($out, qr/^greylist_retry_window = 14400s?$/m, '-n shows a default (4h)');
like($out, qr/^allow_clients = 10\.0\.0\.0\/8,? 192\.168\.0\.0\/16$/m, 'continuation line joined');
($st, $out) = run_cmd($bin, '-n', '-o', 'no_such_thing=1');
isnt($st, 0, 'a bad -o is an error');
like($out, qr/-o no_such_thing=1/, 'and says which');
($st, $out) = run_cmd($bin, '-n');
like($out, qr/^listen = 127\.0\.0\.1:2525$/m, 'embedded default listen');
like($out, qr/^backend = 127\.0\.0\.1:10025$/m, 'embedded default backend');
like($out, qr/^greylist_delay = 300s?$/m, 'embedded default delay 5m');

# --- a running greyd: privilege drop, pid file, reload
my $g = start_greyd(backend => '127.0.0.1:' . free_port(), greylist_delay => '100s',
    pid_file => "$dir/greyd.pid", user => 'nobody');
my $status = read_file("/proc/$g->{pid}/status") // '';
my ($uid) = $status =~ /^Uid:\s+(\d+)/m;
is($uid, scalar getpwnam('nobody'), 'runs as user nobody after binding');
ok(wait_until(sub { -s "$dir/greyd.pid" }, 5), 'pid file written');
is((read_file("$dir/greyd.pid") // '') =~ /^(\d+)/ ? $1 : 0, $g->{pid}, 'pid file holds the pid');

# a second instance with the same pid file refuses to start
($st, $out) = run_cmd($bin, '-d', '-f', $g->{conf}, '-o', 'listen=127.0.0.1:' . free_port());
isnt($st, 0, 'second instance refused');
like($out, qr/already running/, 'because of the pid file');

my $c = smtp_connect(port => $g->{port}, addr => '127.0.2.1');
my $r = $c->send_mail(from => 'a@example.org', to => 'x@example.com');
like($r->{rcpt}[0][1], qr/try again in 100 seconds/, 'delay before reload');
$c->quit;

my $conf = read_file($g->{conf});
(my $new = $conf) =~ s/^greylist_delay = .*$/greylist_delay = 200s/m;
write_file($g->{conf}, $new);
kill 'HUP', $g->{pid};
ok(wait_for_log($g, qr/configuration reloaded/, 5), 'SIGHUP reload logged');
$c = smtp_connect(port => $g->{port}, addr => '127.0.3.1');
$r = $c->send_mail(from => 'a@example.org', to => 'x@example.com');
like($r->{rcpt}[0][1], qr/try again in 200 seconds/, 'new delay applies after SIGHUP');
$c->quit;

write_file($g->{conf}, $new . "bogus_setting = 1\n");
kill 'HUP', $g->{pid};
ok(wait_for_log($g, qr/reload failed, keeping the running configuration: .*:\d+: /, 5),
    'a bad file on SIGHUP is logged with file:line');
$c = smtp_connect(port => $g->{port}, addr => '127.0.4.1');
$r = $c->send_mail(from => 'a@example.org', to => 'x@example.com');
like($r->{rcpt}[0][1], qr/try again in 200 seconds/, 'and the running configuration stays');
$c->quit;
ok(kill(0, $g->{pid}), 'greyd still running');
is(stop_greyd($g), 0, 'SIGTERM: exit 0');
done_testing;
