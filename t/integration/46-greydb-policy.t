#!/usr/bin/perl
# 46-greydb-policy.t — greydb's commands for the trap, spamtrap, rcpt and
# client tables, against a running greyd: add/del trap (one canonical key
# per address; greyd rejects the trapped client at once and lets it go
# again after del), add/del spamtrap (lowercased, origin admin), del rcpt,
# import recipients/spamtraps/traps (1,000 addresses, a bad line changes
# nothing and names FILE:LINE), list of every new table in text and JSON,
# list client --sort, stats of all six tables, and explain: the one-argument
# form (trap, white entry, auto_whitelist_after) and the answers for a
# trapped client, a spamtrap, an unknown recipient and a valid one.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use JSON::PP;
use Time::HiRes qw(sleep time);
use GreydTest;

my $ISO = qr/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ/;

my $pf = start_postfix(proxy => 'haproxy', users => [qw(alice bob postmaster)]);
my $dir = tempdir();
my $map = write_file("$dir/recipients", "alice\@example.com\nbob\@example.com\n");
my $g = start_greyd(postfix => $pf, greylist_delay => '2s', trap_expiry => '1h',
    recipient_maps => $map, relay_domains => 'example.com');

sub greydb { return run_greydb($g, @_) }

# JSON Lines into a list of hashes; a line that does not parse fails.
sub json_lines {
	my ($out, $what) = @_;
	my @recs;
	for my $line (split /\n/, $out) {
		my $r = eval { decode_json($line) };
		ok(0, "$what: JSON line parses") or diag($line) unless $r;
		push @recs, $r if $r;
	}
	return @recs;
}

sub rcpt_code {
	my ($addr, $to, $from) = @_;
	my $c = smtp_connect(port => $g->{port}, addr => $addr);
	my $r = $c->send_mail(from => $from // 'sender@example.org', to => $to);
	$c->quit;
	return $r->{rcpt}[0] // [0, ''];
}

# --- usage names the new commands
{
	my ($st, $out) = greydb('-h');
	is($st, 0, '-h');
	like($out, qr/^  $_/m, "usage: $_") for ('add trap ADDR', 'add spamtrap ADDR',
	    'del trap ADDR', 'del spamtrap ADDR', 'del rcpt KEY', 'import traps FILE',
	    'import recipients FILE', 'list client \[--sort FIELD\]', 'explain IP \[SENDER RECIPIENT\]');
}

# --- add trap / list trap / del trap
{
	my ($st, $out, $err) = greydb('add', 'trap', '::0001');
	is($st, 0, 'add trap ::0001') or diag($err);
	like($out, qr/^TRAP ::1 trapped_at=$ISO expire=$ISO ttl=3600s reason=admin$/,
	    'add trap: canonical key, trap_expiry by default, reason admin');
	($st, $out) = greydb('add', 'trap', '127.0.30.1', '--expire', '2h');
	like($out, qr/^TRAP 127\.0\.30\.1 .*ttl=7200s reason=admin$/, 'add trap --expire 2h');
	($st, $out, $err) = greydb('add', 'trap', '10.0.0.0/8');
	is($st, 2, 'add trap of a prefix: usage error');
	like($err, qr/"10\.0\.0\.0\/8" is not a single IP address/, 'with a message naming it');
	($st, $out, $err) = greydb('add', 'trap');
	is($st, 2, 'add trap without ADDR: usage error');
	($st, $out, $err) = greydb('add', 'trap', '127.0.30.2', '--expire', 'soon');
	is($st, 2, 'add trap with a bad duration: usage error');
	like($err, qr/bad duration "soon"/, 'naming the duration');

	($st, $out) = greydb('list', 'trap');
	is($st, 0, 'list trap');
	my @lines = split /\n/, $out;
	is(scalar(@lines), 2, 'list trap: one line per trap');
	like($out, qr/^TRAP ::1 trapped_at=$ISO expire=$ISO ttl=\d+s reason=admin$/m, 'list trap: ::1');
	($st, $out) = greydb('list', 'trap', '--json');
	my %t = map { $_->{addr} => $_ } json_lines($out, 'list trap --json');
	is_deeply([sort keys %t], ['127.0.30.1', '::1'], 'list trap --json: both keys');
	is($t{'127.0.30.1'}{table}, 'trap', 'JSON: table');
	is($t{'127.0.30.1'}{reason}, 'admin', 'JSON: reason');
	like($t{'127.0.30.1'}{expire}, qr/^$ISO$/, 'JSON: expire is a time');
	ok($t{'127.0.30.1'}{ttl} > 7000 && $t{'127.0.30.1'}{ttl} <= 7200, 'JSON: ttl in seconds');
	like($t{'127.0.30.1'}{trapped_at}, qr/^$ISO$/, 'JSON: trapped_at');

	($st, $out) = greydb('del', 'trap', '0:0:0::1');
	is($st, 0, 'del trap in another spelling');
	is($out, "deleted TRAP ::1\n", 'del trap: the canonical key');
	($st, $out, $err) = greydb('del', 'trap', '::1');
	is($st, 1, 'del trap again: exit 1');
	like($err, qr/no trap entry ::1/, 'del trap again: says so');
	($st, $out, $err) = greydb('del', 'trap', 'example.org');
	is($st, 2, 'del trap of a name: usage error');
	is((greydb('del', 'trap', '127.0.30.1'))[0], 0, 'del trap 127.0.30.1');
}

# --- greyd sees greydb's traps at once
{
	is(rcpt_code('127.0.31.1', 'alice@example.com')->[0], 451, 'before the trap: greylisted');
	my ($st) = greydb('add', 'trap', '127.0.31.1');
	is($st, 0, 'add trap while greyd runs');
	my $r = rcpt_code('127.0.31.1', 'alice@example.com');
	is($r->[0], 550, 'greyd rejects the trapped client');
	like($r->[1], qr/^550 5\.7\.1 /, 'with 550 5.7.1');
	is(rcpt_code('127.0.31.2', 'alice@example.com')->[0], 451, 'its neighbour is not trapped');
	($st) = greydb('del', 'trap', '127.0.31.1');
	is($st, 0, 'del trap while greyd runs');
	# greylisted, or passed if the delay is over by now: not rejected
	like(rcpt_code('127.0.31.1', 'alice@example.com')->[0], qr/^(?:451|250)$/,
	    'greyd lets it go again');
}

# --- spamtraps
{
	my ($st, $out, $err) = greydb('add', 'spamtrap', '<Trap@Example.COM>');
	is($st, 0, 'add spamtrap') or diag($err);
	like($out, qr/^SPAMTRAP trap\@example\.com added=$ISO origin=admin$/,
	    'add spamtrap: lowercased, brackets gone, origin admin');
	for my $bad ('bogus', '@example.com', 'user@', 'a b@example.com') {
		($st, $out, $err) = greydb('add', 'spamtrap', $bad);
		is($st, 2, "add spamtrap '$bad': refused");
	}
	like($err, qr/is not an address \(local\@domain\)/, 'with a reason');
	my $r = rcpt_code('127.0.32.1', 'TRAP@example.com');
	is($r->[0], 550, 'greyd: a RCPT to the spamtrap is rejected');
	($st, $out) = greydb('list', 'trap');
	like($out, qr/^TRAP 127\.0\.32\.1 .*reason=spamtrap$/m, 'and the client is trapped, reason spamtrap');
	($st, $out) = greydb('list', 'spamtrap', '--json');
	my @s = json_lines($out, 'list spamtrap --json');
	is(scalar(@s), 1, 'list spamtrap --json: one record');
	is($s[0]{addr}, 'trap@example.com', 'JSON: addr');
	is($s[0]{origin}, 'admin', 'JSON: origin');
	like($s[0]{added}, qr/^$ISO$/, 'JSON: added');
	($st, $out) = greydb('del', 'spamtrap', 'TRAP@example.com');
	is($st, 0, 'del spamtrap in another case');
	is($out, "deleted SPAMTRAP trap\@example.com\n", 'del spamtrap: the lowercased key');
	($st, $out, $err) = greydb('del', 'spamtrap', 'trap@example.com');
	is($st, 1, 'del spamtrap again: exit 1');
	greydb('del', 'trap', '127.0.32.1');
}

# --- import spamtraps / recipients, del rcpt
{
	my $f = write_file("$dir/spamtraps", "# traps\nOne\@Example.com\n\ntwo\@example.com\n");
	my ($st, $out, $err) = greydb('import', 'spamtraps', $f);
	is($st, 0, 'import spamtraps') or diag($err);
	is($out, "imported 2 spamtraps from $f\n", 'import spamtraps: the count');
	($st, $out) = greydb('list', 'spamtrap');
	like($out, qr/^SPAMTRAP one\@example\.com added=$ISO origin=admin$/m, 'imported spamtrap, lowercased, admin');

	$f = write_file("$dir/more-recipients", "carol\@example.com\n\@wild.example\n");
	($st, $out, $err) = greydb('import', 'recipients', $f);
	is($st, 0, 'import recipients') or diag($err);
	is($out, "imported 2 recipients from $f\n", 'import recipients: the count');
	($st, $out) = greydb('list', 'rcpt');
	like($out, qr/^RCPT carol\@example\.com verdict=valid checked=$ISO expire=never ttl=never origin=admin$/m,
	    'list rcpt: the imported address');
	like($out, qr/^RCPT \@wild\.example .*origin=admin$/m, 'list rcpt: the imported wildcard');
	like($out, qr/^RCPT alice\@example\.com .*origin=map$/m, 'list rcpt: the map entry');
	($st, $out) = greydb('list', 'rcpt', '--json');
	my %r = map { $_->{key} => $_ } json_lines($out, 'list rcpt --json');
	ok($r{'carol@example.com'}, 'list rcpt --json: the imported address');
	is($r{'carol@example.com'}{origin}, 'admin', 'JSON: origin');
	is($r{'carol@example.com'}{verdict}, 'valid', 'JSON: verdict');
	is($r{'carol@example.com'}{expire}, undef, 'JSON: expire null (never)');
	is($r{'carol@example.com'}{table}, 'rcpt', 'JSON: table');

	($st, $out, $err) = greydb('import', 'recipients', "$dir/missing");
	is($st, 1, 'import recipients of a missing file: exit 1');
	like($err, qr/\Q$dir\/missing\E/, 'naming the file');

	($st, $out) = greydb('del', 'rcpt', 'Carol@Example.COM');
	is($st, 0, 'del rcpt');
	is($out, "deleted RCPT carol\@example.com\n", 'del rcpt: the lowercased key');
	($st, $out, $err) = greydb('del', 'rcpt', 'carol@example.com');
	is($st, 1, 'del rcpt again: exit 1');
	like($err, qr/no rcpt entry carol\@example\.com/, 'says so');
}

# --- import traps: 1,000 addresses, comments, IPv6; a bad file writes nothing
{
	my $text = "# addresses to trap\n\n";
	for my $i (0 .. 997) {
		$text .= sprintf("127.1.%d.%d%s\n", int($i / 250), $i % 250 + 1,
		    $i % 100 == 0 ? "   # every hundredth has a comment" : '');
	}
	$text .= "  2001:db8::77  \n::ffff:127.1.9.9\n";
	my $f = write_file("$dir/traps", $text);
	my $t0 = time;
	my ($st, $out, $err) = greydb('import', 'traps', $f);
	my $took = time - $t0;
	is($st, 0, 'import traps') or diag($err);
	is($out, "imported 1000 traps from $f\n", 'import traps: 1,000 addresses');
	cmp_ok($took, '<', 10, "import traps took ${\ sprintf('%.2f', $took)} s");
	($st, $out) = greydb('list', 'trap');
	my @lines = grep { /^TRAP / } split /\n/, $out;
	is(scalar(@lines), 1000, 'list trap: 1,000 traps');
	like($out, qr/^TRAP 2001:db8::77 .*ttl=\d+s reason=admin$/m, 'the IPv6 address');
	like($out, qr/^TRAP 127\.1\.9\.9 /m, 'the IPv4-mapped address as IPv4');
	like($out, qr/^TRAP 127\.1\.3\.248 .*reason=admin$/m, 'the last of the range');
	($st, $out) = greydb('stats');
	like($out, qr/^TRAP entries=1000 .*admin=1000 .*expired=0$/m, 'stats: 1,000 traps');
	is(rcpt_code('127.1.2.3', 'alice@example.com')->[0], 550, 'greyd rejects an imported trap');

	my ($before) = $out =~ /^(TRAP .*)$/m;
	my $bad = write_file("$dir/bad-traps", "127.2.0.1\n# fine\n127.2.0.300\n127.2.0.2\n");
	($st, $out, $err) = greydb('import', 'traps', $bad);
	is($st, 1, 'import traps with a bad line: exit 1');
	is($err, "greydb: $bad:3: \"127.2.0.300\" is not a single IP address\n", 'FILE:LINE: reason');
	($st, $out) = greydb('stats');
	is(($out =~ /^(TRAP .*)$/m)[0], $before, 'nothing was written');
	$bad = write_file("$dir/bad-traps2", "127.2.0.1 127.2.0.2\n");
	($st, $out, $err) = greydb('import', 'traps', $bad);
	like($err, qr/^greydb: \Q$bad\E:1: one address per line$/, 'two addresses on a line');
	($st, $out, $err) = greydb('import', 'traps', "$dir/no-such-file");
	is($st, 1, 'import traps of a missing file: exit 1');
	like($err, qr/no-such-file: No such file/, 'names the file');

	$f = write_file("$dir/traps2", "127.2.1.1\n");
	($st, $out) = greydb('import', 'traps', $f, '--expire', '90m');
	is($out, "imported 1 traps from $f\n", 'import traps --expire');
	($st, $out) = greydb('list', 'trap', '--json');
	my ($rec) = grep { $_->{addr} eq '127.2.1.1' } json_lines($out, 'list trap --json (1001)');
	ok($rec && $rec->{ttl} > 5300 && $rec->{ttl} <= 5400, 'trapped for 90 minutes');
}

# --- client records: list client, --sort, rejected_by
{
	# 127.0.40.1: one session, an unknown recipient; 127.0.40.2: four
	# sessions (127.0.31.1 above had three)
	my $r = rcpt_code('127.0.40.1', 'nobody@example.com');
	is($r->[0], 550, 'unknown recipient of our domain: 550');
	like($r->[1], qr/^550 5\.1\.1 /, '550 5.1.1');
	rcpt_code('127.0.40.2', 'alice@example.com') for 1 .. 4;
	ok(wait_until(sub {
		my (undef, $o) = greydb('list', 'client');
		return $o =~ /^CLIENT 127\.0\.40\.1 /m && $o =~ /^CLIENT 127\.0\.40\.2 .*connections=4 /m;
	}, 10), 'the client records are written');
	my ($st, $out) = greydb('list', 'client');
	like($out, qr/^CLIENT 127\.0\.40\.1 first=$ISO last=$ISO connections=1 greylisted=0 passed=0 delivered=0 rejected=1 rejected_by=rcpt:1 trapped=0$/m,
	    'list client: every counter, the rejections by reason');
	unlike($out, qr/^CLIENT 127\.0\.40\.2 .*rejected_by=/m, 'no rejected_by when nothing was rejected');

	($st, $out) = greydb('list', 'client', '--sort', 'connections');
	is($st, 0, 'list client --sort connections');
	my @keys = map { /^CLIENT (\S+) .*connections=(\d+)/ ? [$1, $2] : () } split /\n/, $out;
	my @counts = map { $_->[1] } @keys;
	is_deeply(\@counts, [sort { $b <=> $a } @counts], 'descending by connections');
	is($keys[0][0], '127.0.40.2', 'the busiest client first');
	($st, $out) = greydb('list', 'client', '--sort=rejected', '--json');
	my @c = json_lines($out, 'list client --sort=rejected --json');
	ok(@c >= 2, 'list client --json: records');
	my @rej = map { $_->{rejected} } @c;
	is_deeply(\@rej, [sort { $b <=> $a } @rej], 'descending by rejected');
	my ($c1) = grep { $_->{addr} eq '127.0.40.1' } @c;
	is_deeply([sort keys %{$c1->{rejected_by}}],
	    [sort qw(rcpt limit protocol pregreet trap backend dnsbl spf)], 'JSON: every reason');
	is($c1->{rejected_by}{rcpt}, 1, 'JSON: rejected by rcpt');
	ok(exists $c1->{greet_pass_until} && exists $c1->{trapped}, 'JSON: greet_pass_until and trapped');
	($st, $out) = greydb('list', 'client', '--sort', 'last_seen');
	is($st, 0, 'list client --sort last_seen');
	my (undef, undef, $err) = greydb('list', 'client', '--sort', 'age');
	like($err, qr/cannot sort by "age"/, 'an unknown sort field');
	($st) = greydb('list', 'white', '--sort', 'connections');
	is($st, 2, '--sort on another table: usage error');
}

# --- stats: all six tables
{
	my ($st, $out) = greydb('stats');
	is($st, 0, 'stats');
	like($out, qr/^$_ entries=\d+/m, "stats: $_") for qw(WHITE GREY CLIENT TRAP SPAMTRAP RCPT);
	# admin: the imported wildcard and the domains of the imported entries
	# (example.com, wild.example); carol@ was deleted
	like($out, qr/^RCPT entries=\d+ valid=\d+ unknown=\d+ map=\d+ admin=3 callout=0 sync=0 expired=0$/m,
	    'stats: rcpt by verdict and origin');
	like($out, qr/^SPAMTRAP entries=2 map=0 admin=2 sync=0$/m, 'stats: spamtraps by origin');
}

# --- explain IP
{
	my ($st, $out) = greydb('explain', '127.1.0.1');
	is($st, 0, 'explain IP');
	like($out, qr/^address\s+127\.1\.0\.1$/m, 'explain IP: the address');
	like($out, qr/^trap\s+trapped until $ISO \(in \d+ s\), reason admin, since $ISO$/m, 'explain IP: trapped, until, why');
	like($out, qr/^connect\s+.*550 5\.7\.1 \(trapped\)$/m, 'explain IP: what greyd does at connect');
	like($out, qr/^limits\s+.*live only in greyd's memory$/m, 'explain IP: the in-memory counters');
	($st, $out) = greydb('explain', '127.0.40.1');
	like($out, qr/^client\s+first=$ISO .*rejected=1 rejected_by=rcpt:1 trapped=0$/m, 'explain IP: the client record');
	like($out, qr/^trap\s+not trapped$/m, 'explain IP: not trapped');
	like($out, qr/^white\s+no entry$/m, 'explain IP: no white entry');
	like($out, qr/^connect\s+greyd's own session/m, 'explain IP: greyd\'s session');

	# a local white entry with one pass; auto_whitelist_after = 2 elsewhere
	my $c = smtp_connect(port => $g->{port}, addr => '127.0.41.1');
	is($c->send_mail(from => 'p@example.org', to => 'alice@example.com')->{rcpt}[0][0], 451, 'greylisted');
	$c->quit;
	sleep 2.2;
	$c = smtp_connect(port => $g->{port}, addr => '127.0.41.1');
	ok($c->send_mail(from => 'p@example.org', to => 'alice@example.com')->{ok}, 'passes after the delay');
	$c->quit;
	($st, $out) = greydb('explain', '127.0.41.1');
	like($out, qr/^white\s+127\.0\.41\.0\/24 origin=local passes=1 messages=\d+, expires $ISO \(in \d+ s\); auto_whitelist_after = 0 met$/m,
	    'explain IP: the white entry');
	like($out, qr/^connect\s+fast path \(white 127\.0\.41\.0\/24\)$/m, 'explain IP: the fast path');
	my $conf2 = write_file("$dir/auto2.conf", "db_dir = $g->{settings}{db_dir}\nauto_whitelist_after = 2\n");
	($st, $out) = run_greydb($conf2, 'explain', '127.0.41.1');
	like($out, qr/^white\s+127\.0\.41\.0\/24 .*; auto_whitelist_after = 2 not met \(1 of 2 passes\): not whitelisted yet$/m,
	    'explain IP: auto_whitelist_after not met');
	like($out, qr/^connect\s+greyd's own session/m, 'explain IP: so no fast path');

	($st, undef, my $err) = greydb('explain', '127.0.41.1', 'only-a-sender@example.org');
	is($st, 2, 'explain with two arguments: usage error');
	($st, undef, $err) = greydb('explain', 'mail.example.org');
	is($st, 2, 'explain of a name: usage error');
}

# --- explain IP SENDER RECIPIENT: the new answers before greylisting
{
	my ($st, $out) = greydb('explain', '127.1.0.1', 's@example.org', 'alice@example.com');
	like($out, qr/^answer\s+550 5\.7\.1 Service unavailable; client \[127\.1\.0\.1\] blocked \(trapped\)$/m,
	    'explain: a trapped client');
	greydb('add', 'spamtrap', 'honey@example.com');
	($st, $out) = greydb('explain', '127.0.42.1', 's@example.org', 'Honey@example.com');
	like($out, qr/^answer\s+550 5\.7\.1 .*\(spamtrap; the client would be trapped for 3600 s, trap_expiry\)$/m,
	    'explain: a spamtrap');
	($st, $out) = greydb('explain', '127.0.42.1', 's@example.org', 'nobody@example.com');
	like($out, qr/^recipient\s+unknown/m, 'explain: the recipient verdict');
	like($out, qr/^answer\s+550 5\.1\.1 <nobody\@example\.com>: Recipient address rejected$/m,
	    'explain: an unknown recipient');
	unlike($out, qr/^grey/m, 'explain: no greylisting for it');
	($st, $out) = greydb('explain', '127.0.42.1', 's@example.org', 'bob@example.com');
	like($out, qr/^rcpt\s+bob\@example\.com verdict=valid .*origin=map$/m, 'explain: the rcpt record');
	like($out, qr/^recipient\s+valid/m, 'explain: a valid recipient');
	like($out, qr/^answer\s+451 4\.7\.1 greylisted: new triplet/m, 'explain: then greylisting');
	($st, $out) = greydb('explain', '127.0.42.1', 's@example.org', 'someone@elsewhere.example');
	like($out, qr/^recipient\s+unchecked/m, 'explain: not our domain: unchecked');
	like($out, qr/^answer\s+451 4\.7\.1 greylisted/m, 'explain: greylisting decides');
	($st, $out) = greydb('explain', '127.0.41.1', 's@example.org', 'alice@example.com');
	like($out, qr/^answer\s+fast path \(white 127\.0\.41\.0\/24/m, 'explain: whitelisted: fast path');
}

is(stop_greyd($g), 0, 'greyd exits 0');
done_testing;
