#!/usr/bin/perl
# 50-crash.t — kill -9 during load loses nothing: every grey entry whose 451
# reached a client, and a white entry whose pass was answered just before
# the kill, are in the trust database after a restart (Berkeley DB recovery
# runs at open), greyd serves again, and db_verify passes on every database.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use IO::Socket::IP;
use POSIX qw(_exit);
use Time::HiRes qw(sleep time);
use GreydTest;

my $dir = tempdir();
my $g = start_greyd(backend => '127.0.0.1:' . free_port(), greylist_delay => '1s',
    allow_clients => '');

# A pass answered just before the kill: its white entry must survive.
my $c = smtp_connect(port => $g->{port}, addr => '127.0.7.1');
is($c->send_mail(from => 'p@example.org', to => 'pass@example.com')->{rcpt}[0][0], 451,
    'pass triplet greylisted');
$c->quit;
sleep 1.2;

# Load: 4 children, each opening sessions with new triplets and writing down
# every triplet whose 451 it has fully read.
my $NCHILD = 4;
my @kids;
for my $k (1 .. $NCHILD) {
	my $pid = fork() // die "fork: $!";
	if ($pid == 0) {
		open(my $log, '>', "$dir/answered.$k") or _exit(1);
		$log->autoflush(1);
		my $deadline = time + 20;
		for (my $i = 0; time < $deadline; $i++) {
			my $src = "127.0.$k." . (1 + $i % 250);
			my $s = IO::Socket::IP->new(PeerHost => '127.0.0.1', PeerPort => $g->{port},
			    LocalHost => $src, Timeout => 5) or last;
			my $from = "s${k}x${i}y\@load.example.org";
			print $s "EHLO load\r\nMAIL FROM:<$from>\r\nRCPT TO:<r\@example.com>\r\n";
			my $got = 0;
			while (defined(my $line = <$s>)) {
				if ($line =~ /^451 4\.7\.1 /) { $got = 1; last }
				last if $line =~ /^[45]\d\d /;
			}
			last unless $got;
			print $log "$src $from\n";
			print $s "QUIT\r\n";
			close $s;
		}
		_exit(0);
	}
	push @kids, $pid;
}
sleep 1.5;
$c = smtp_connect(port => $g->{port}, addr => '127.0.7.1');
my $r = $c->send_mail(from => 'p@example.org', to => 'pass@example.com');
is($r->{rcpt}[0][0], 451, 'the retry passed greylisting (backend down: 451 4.4.2)');
like($r->{rcpt}[0][1], qr/4\.4\.2/, 'answered after the pass was recorded');
kill 'KILL', $g->{pid};
waitpid($_, 0) for @kids;
waitpid($g->{pid}, 0);
$g->{pid} = undef;

my %answered;
for my $k (1 .. $NCHILD) {
	open(my $fh, '<', "$dir/answered.$k") or next;
	while (<$fh>) {
		chomp;
		my ($src, $from) = split / /;
		(my $net = $src) =~ s/\.\d+$/.0\/24/;
		$answered{"$net $from"} = 1;
	}
}
my $n = keys %answered;
cmp_ok($n, '>', 200, "load answered $n triplets before kill -9");

restart_greyd($g);
my ($st, $out, $err) = run_greydb($g, 'list', 'grey');
is($st, 0, 'greydb list grey after the restart') or diag($err);
my %stored;
for (split /\n/, $out) {
	$stored{"$1 $2"} = 1 if /^GREY (\S+) from=<([^>]*)> to=<r\@example\.com>/;
}
my @lost = grep { !$stored{$_} } sort keys %answered;
is(scalar @lost, 0, 'no answered grey entry was lost') or diag("lost: @lost[0 .. ($#lost < 9 ? $#lost : 9)]");
($st, $out) = run_greydb($g, 'list', 'white');
like($out, qr/^WHITE 127\.0\.7\.0\/24 /m, 'the white entry of the last pass survived');

$c = smtp_connect(port => $g->{port}, addr => '127.0.9.1');
is(($c->banner)[0], 220, 'greyd serves again after recovery');
is($c->send_mail(from => 'x@example.org', to => 'y@example.com')->{rcpt}[0][0], 451,
    'and greylists');
$c->quit;
is(stop_greyd($g), 0, 'clean stop');

for my $db (qw(grey white client)) {
	my $v = `db5.3_verify -h $g->{settings}{db_dir} $db.db 2>&1`;
	is($?, 0, "db_verify $db.db") or diag($v);
}
done_testing;
