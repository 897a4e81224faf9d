#!/usr/bin/perl
# 60-hostile.t — hostile input against a running greyd with a private
# Postfix behind it.  Each case checks the exact reply greyd gives (design
# §6, session.c), that greyd is still up and serves a normal session
# afterwards, and, where it matters, what reaches Postfix:
#  1. over-long command lines (600 octets; 100 KB with no LF at all), the
#     512-octet boundary, and 421 + close after smtp_error_limit errors;
#  2. NUL, bare LF, bare CR (also split across writes) and other control
#     octets in command lines: the whole line is refused, its remainder is
#     never read as a second command;
#  3. SMTP smuggling in DATA on greyd's own SMTP path (a client that passes
#     greylisting in the session): each of the five public sequences gets
#     550 5.5.2, nothing reaches the Maildir, Postfix never sees a second
#     transaction; a clean message afterwards is delivered exactly once;
#  4. 10,000 pipelined commands in one write (NOOPs; then MAIL/RCPT/RSET/
#     NOOP with every RCPT greylisted): every reply, in order; bounded RSS;
#     a client that pipelines 2.4 MB and reads nothing: greyd holds its
#     input without burning CPU, and every reply comes once it reads;
#  5. hang-up in the middle of DATA: nothing delivered, HANGUP logged;
#     (5b) Postfix stalls (SIGSTOP) while greyd streams a big message, then
#     dies: greyd idles meanwhile, then reads the rest and answers 451;
#  6. a silent client (and one that stops mid-line): 421 4.4.2 after
#     smtp_idle_timeout, then close;
#  7. HTTP and proxy probes: 521 5.5.1 and close;
#  8. commands out of order and bad arguments: 503 / 501 / 500 / 552 / 554;
#  9. 200 connections opened and dropped at once (closed, half lines, RST):
#     greyd survives, and its descriptors return to the baseline.
# Every case uses its own 127.0.N.0/24, because a client that passes
# greylisting whitelists its /24 and later connections from it would take
# the fast path.

use strict;
use warnings;
use lib 't/lib';
use IO::Select;
use IO::Socket::IP;
use POSIX ();
use Socket qw(SOL_SOCKET SO_LINGER);
use Test::More;
use Time::HiRes qw(time sleep);
use GreydTest;

my $T0 = time;
my $pf = start_postfix(proxy => 'haproxy', users => [qw(alice bob carol dave postmaster)]);
my $g = start_greyd(postfix => $pf, greylist_delay => '1s', hostname => 'mx.greyd.test',
    smtp_error_limit => 10, smtp_idle_timeout => '60s', message_size_limit => 50000000,
    drain_timeout => '5s', session_message_limit => 100000,
    # the error handling of bare LF is tested here; the protocol test's
    # actions (reject, trap, tarpit) in 75-pregreet-tarpit.t
    protocol_error_action => 'ignore');
# A second instance for the small error limit and the short idle timeout.
my $g2 = start_greyd(postfix => $pf, greylist_delay => '1h', hostname => 'mx2.greyd.test',
    smtp_error_limit => 3, smtp_idle_timeout => '2s', drain_timeout => '5s',
    protocol_error_action => 'ignore');

sub client {
	my ($gd, $addr) = @_;
	return smtp_connect(port => $gd->{port}, addr => $addr, timeout => 10);
}

# The next reply, exactly (one line, CRLF-terminated).
sub reply_is {
	my ($c, $want, $name) = @_;
	my ($code, $text) = $c->read_reply(10);
	my $ok = is($text, $want, $name);
	$ok &&= is($c->{last_raw}, "$want\r\n", "$name: CRLF-terminated") if defined $code;
	return $ok;
}

sub cmd_is {
	my ($c, $line, $want, $name) = @_;
	$c->banner unless $c->{banner_read};
	$c->send_raw("$line\r\n");
	return reply_is($c, $want, $name);
}

sub cmd_like {
	my ($c, $line, $re, $name) = @_;
	my ($code, $text) = $c->cmd($line, 10);
	return like($text // '', $re, $name);
}

# Nothing more arrives within $secs (no stray reply).
sub no_more {
	my ($c, $secs, $name) = @_;
	my $line = $c->read_line($secs);
	return ok(!defined $line && ($c->error // '') eq 'timeout', $name)
	    || diag('unexpected: ' . ($line // $c->error // '?'));
}

# A normal client still gets a 220 and a working session.
my $probe_serial = 0;
sub still_serving {
	my ($gd, $what) = @_;
	my $n = ++$probe_serial;
	subtest "$gd->{name} still serves after $what" => sub {
		ok(kill(0, $gd->{pid}), 'process alive');
		my $c = eval { client($gd, '127.0.20.1') };
		ok($c, 'connects') or return diag($@);
		my ($code, $text) = $c->banner(10);
		is($code, 220, 'banner 220');
		like($text // '', qr/^220 \S+ ESMTP greyd$/, "greyd's own banner");
		is(($c->cmd('EHLO probe.example.org'))[0], 250, 'EHLO');
		is(($c->cmd("MAIL FROM:<probe$n\@example.org>"))[0], 250, 'MAIL');
		cmd_like($c, 'RCPT TO:<alice@example.com>', qr/^451 4\.7\.1 <alice\@example\.com>: Greylisted/,
		    'RCPT greylisted (a new triplet)');
		is(($c->cmd('RSET'))[0], 250, 'RSET');
		is($c->quit, 221, 'QUIT');
	};
}

sub vmrss_kb {
	my ($pid) = @_;
	my $s = read_file("/proc/$pid/status") // '';
	return $s =~ /^VmRSS:\s+(\d+)/m ? $1 : 0;
}

# CPU seconds greyd used (user + system).
sub cpu_seconds {
	my ($pid) = @_;
	my @f = split ' ', (read_file("/proc/$pid/stat") // '') =~ s/^.*\) //sr;
	return (($f[11] // 0) + ($f[12] // 0)) / POSIX::sysconf(POSIX::_SC_CLK_TCK());
}

sub nfds {
	my ($pid) = @_;
	opendir(my $dh, "/proc/$pid/fd") or return -1;
	my $n = grep { /^\d+$/ } readdir $dh;
	closedir $dh;
	return $n;
}

# Offer all of $bytes to the socket at once (the first write gets the whole
# buffer; the kernel takes what fits) while reading the replies, so neither
# side can block the other.  Returns the reply lines (CRLF kept) once $n
# arrived and everything is written, or what came within $timeout seconds.
sub pipeline {
	my ($c, $bytes, $n, $timeout) = @_;
	my $sock = $c->sock;
	my $deadline = time + $timeout;
	my $in = $c->{buf};
	my @lines;
	$c->{buf} = '';
	while (time < $deadline && (@lines < $n || length $bytes)) {
		if (length $bytes) {
			my $w = syswrite($sock, $bytes);
			if (defined $w) {
				substr($bytes, 0, $w, '');
			} elsif (!$!{EAGAIN} && !$!{EWOULDBLOCK} && !$!{EINTR}) {
				diag("pipeline: write: $!");
				last;
			}
		}
		my $left = $deadline - time;
		my ($r) = IO::Select->select(IO::Select->new($sock),
		    length $bytes ? IO::Select->new($sock) : undef, undef,
		    $left < 0.2 ? ($left > 0 ? $left : 0) : 0.2);
		next unless $r && @$r;
		my $got = sysread($sock, my $chunk, 1 << 20);
		next if !defined $got && ($!{EAGAIN} || $!{EINTR});
		last unless $got;
		$in .= $chunk;
		my $end = rindex($in, "\n");
		push @lines, split(/(?<=\n)/, substr($in, 0, $end + 1, '')) if $end >= 0;
	}
	$c->{buf} = $in;
	return @lines;
}

# --- first attempts of the clients that must pass greylisting later
my %first;
my %rcpt_of = (13 => 'bob@example.com', 15 => 'carol@example.com', 21 => 'dave@example.com');
for my $net (13, 15, 21) {
	my $c = client($g, "127.0.$net.1");
	my $r = $c->send_mail(from => "s$net\@sender.example", to => $rcpt_of{$net});
	is($r->{rcpt}[0][0], 451, "127.0.$net.1: first attempt greylisted");
	$c->quit;
	$first{$net} = time;
}

# ============================================================ 1. long lines
{
	my $c = client($g, '127.0.11.1');
	is(($c->banner)[0], 220, 'long: banner');
	is(($c->cmd('EHLO long.example.org'))[0], 250, 'long: EHLO');
	$c->send_raw(('A' x 600) . "\r\n");
	reply_is($c, '500 5.5.2 Error: line too long', 'long: 600-octet line');
	cmd_is($c, 'NOOP', '250 2.0.0 Ok', 'long: the session continues');
	cmd_is($c, 'NOOP ' . ('x' x 505), '250 2.0.0 Ok', 'long: a 512-octet line (CRLF included) is accepted');
	cmd_is($c, 'NOOP ' . ('x' x 506), '500 5.5.2 Error: line too long', 'long: 513 octets is too long');
	$c->send_raw('B' x 102400);
	reply_is($c, '500 5.5.2 Error: line too long', 'long: 100 KB without a LF');
	no_more($c, 0.5, 'long: one reply for the whole over-long line');
	$c->send_raw("tail of the long line\r\n");
	no_more($c, 0.3, 'long: its end is discarded silently');
	cmd_is($c, 'NOOP', '250 2.0.0 Ok', 'long: the session continues after 100 KB');
	is($c->quit, 221, 'long: QUIT');

	# smtp_error_limit = 3: the third error closes with 421 4.7.0
	$c = client($g2, '127.0.11.2');
	is(($c->banner)[0], 220, 'error limit: banner');
	$c->send_raw(join('', map { ('C' x 600) . "\r\n" } 1 .. 5));
	reply_is($c, '500 5.5.2 Error: line too long', "error limit: error $_") for 1 .. 3;
	reply_is($c, '421 4.7.0 mx2.greyd.test Error: too many errors', 'error limit: 421 4.7.0 after 3 errors');
	is($c->wait_closed(5), '', 'error limit: closed, nothing after the 421');
	ok(wait_for_log($g2, qr/REJECT \[127\.0\.11\.2\]:\d+ too many errors \(3\)/, 5), 'error limit: logged');

	# mixed errors count together
	$c = client($g2, '127.0.11.3');
	is(($c->banner)[0], 220, 'error limit, mixed: banner');
	$c->send_raw("NO\0OP\r\n");
	reply_is($c, '500 5.5.2 Error: NUL character received', 'error limit, mixed: NUL');
	$c->send_raw("NOOP\n");
	reply_is($c, '500 5.5.2 Error: bare <LF> received', 'error limit, mixed: bare LF');
	cmd_is($c, 'NOOP', '250 2.0.0 Ok', 'error limit, mixed: a good command does not reset the count');
	cmd_is($c, 'FOO', '500 5.5.2 Error: command not recognized', 'error limit, mixed: unknown verb');
	reply_is($c, '421 4.7.0 mx2.greyd.test Error: too many errors', 'error limit, mixed: 421');
	is($c->wait_closed(5), '', 'error limit, mixed: closed');
}
still_serving($g, 'over-long lines');
still_serving($g2, 'the error limit');

# ===================================================== 2. NUL, bare LF / CR
{
	my $c = client($g, '127.0.12.1');
	is(($c->banner)[0], 220, 'ctl: banner');
	is(($c->cmd('EHLO ctl.example.org'))[0], 250, 'ctl: EHLO');
	$c->send_raw("NO\0OP\r\n");
	reply_is($c, '500 5.5.2 Error: NUL character received', 'ctl: NUL in a command');
	$c->send_raw("NOOP\n");
	reply_is($c, '500 5.5.2 Error: bare <LF> received', 'ctl: LF-terminated command');
	$c->send_raw("NO\rOP\r\n");
	reply_is($c, '500 5.5.2 Error: bare <CR> received', 'ctl: bare CR inside a command');
	$c->send_raw("NOOP\r");
	no_more($c, 0.3, 'ctl: a CR at the end of the input waits for the next octet');
	$c->send_raw("X\r\n");
	reply_is($c, '500 5.5.2 Error: bare <CR> received', 'ctl: bare CR split across two writes');
	$c->send_raw("RSET\rQUIT\r\n");
	reply_is($c, '500 5.5.2 Error: bare <CR> received', 'ctl: CR-separated commands: one error');
	$c->send_raw("RSET\nQUIT\r\n");
	reply_is($c, '500 5.5.2 Error: bare <LF> received', 'ctl: LF-separated: the bare-LF line is refused');
	reply_is($c, '221 2.0.0 Bye', 'ctl: the CRLF line after it is a command of its own');
	is($c->wait_closed(5), '', 'ctl: closed after QUIT');

	$c = client($g, '127.0.12.2');
	is(($c->banner)[0], 220, 'ctl: banner (2)');
	$c->send_raw("NOOP\x01\r\n");
	reply_is($c, '500 5.5.2 Error: bad syntax', 'ctl: other control octet');
	$c->send_raw("\0\0\0\r\n");
	reply_is($c, '500 5.5.2 Error: NUL character received', 'ctl: only NULs');
	$c->send_raw("\r\n");
	reply_is($c, '500 5.5.2 Error: command not recognized', 'ctl: empty line');
	$c->send_raw("\n\n");
	reply_is($c, '500 5.5.2 Error: bare <LF> received', "ctl: bare LF ($_)") for 1 .. 2;
	cmd_is($c, 'NOOP', '250 2.0.0 Ok', 'ctl: the session continues');
	is($c->quit, 221, 'ctl: QUIT');
}
still_serving($g, 'control octets');

# =============================================================== 7. probes
{
	my @probes = (
		["GET / HTTP/1.1\r\nHost: mx.greyd.test\r\nUser-Agent: probe\r\n\r\n", 'GET'],
		["CONNECT host:25 HTTP/1.0\r\n\r\n", 'CONNECT'],
		["USER root\r\n", 'USER'],
		["POST /cgi-bin/x HTTP/1.0\r\nContent-Length: 0\r\n\r\n", 'POST'],
	);
	my $i = 0;
	for my $p (@probes) {
		$i++;
		my $c = client($g, "127.0.17.$i");
		is(($c->banner)[0], 220, "probe $p->[1]: banner");
		$c->send_raw($p->[0]);
		reply_is($c, '521 5.5.1 Protocol error', "probe $p->[1]: 521 5.5.1");
		is($c->wait_closed(5), '', "probe $p->[1]: closed, the rest of the request ignored");
	}
	# after a valid EHLO too
	my $c = client($g, '127.0.17.9');
	is(($c->cmd('EHLO web.example.org'))[0], 250, 'probe after EHLO: EHLO');
	$c->send_raw("GET /index.html HTTP/1.0\r\n\r\n");
	reply_is($c, '521 5.5.1 Protocol error', 'probe after EHLO: 521');
	is($c->wait_closed(5), '', 'probe after EHLO: closed');
	ok(wait_for_log($g, qr/PROTOCOL \[127\.0\.17\.1\]:\d+ non-SMTP command "GET \/ HTTP\/1\.1" action=ignore/, 5),
	    'probe logged');
}
still_serving($g, 'HTTP and proxy probes');

# ================================================ 8. out of order, bad args
{
	my $c = client($g, '127.0.18.1');
	is(($c->banner)[0], 220, 'order: banner');
	cmd_is($c, 'MAIL FROM:<a@example.org>', '503 5.5.1 Error: send HELO/EHLO first', 'order: MAIL before EHLO');
	cmd_is($c, 'RCPT TO:<alice@example.com>', '503 5.5.1 Error: need MAIL command', 'order: RCPT before MAIL (no EHLO)');
	cmd_is($c, 'DATA', '503 5.5.1 Error: need RCPT command', 'order: DATA before MAIL');
	cmd_is($c, 'EHLO', '501 5.5.4 Syntax: EHLO hostname', 'order: EHLO without argument');
	cmd_is($c, 'HELO', '501 5.5.4 Syntax: HELO hostname', 'order: HELO without argument');
	cmd_is($c, 'EHLO bad..name', '501 5.5.4 Syntax: EHLO hostname', 'order: EHLO with an invalid name');
	cmd_is($c, 'XYZZY', '500 5.5.2 Error: command not recognized', 'order: unknown verb');
	is($c->quit, 221, 'order: QUIT');

	$c = client($g, '127.0.18.2');
	is(($c->cmd('EHLO order.example.org'))[0], 250, 'order: EHLO');
	cmd_is($c, 'RCPT TO:<alice@example.com>', '503 5.5.1 Error: need MAIL command', 'order: RCPT before MAIL');
	cmd_is($c, 'DATA now', '501 5.5.4 Syntax: DATA', 'order: DATA with an argument');
	cmd_is($c, 'RSET all', '501 5.5.4 Syntax: RSET', 'order: RSET with an argument');
	cmd_is($c, 'QUIT now', '501 5.5.4 Syntax: QUIT', 'order: QUIT with an argument');
	cmd_is($c, 'NOOP', '250 2.0.0 Ok', 'order: not closed by a QUIT with an argument');
	cmd_is($c, 'MAIL FROM:a@example.org', '501 5.1.7 Bad sender address syntax', 'order: path without brackets');
	cmd_is($c, 'MAIL FROM:<a@b@c.example>', '501 5.1.7 Bad sender address syntax', 'order: <a@b@c>');
	cmd_is($c, 'MAIL FROM:<a b@c.example>', '501 5.1.7 Bad sender address syntax', 'order: <a b@c>');
	my $long = '<' . ('a' x 64) . '@' . join('.', ('d' x 60) x 3, 'e' x 50) . '.example>';
	cmd_is($c, "MAIL FROM:$long", '501 5.1.7 Bad sender address syntax',
	    'order: ' . length($long) . '-octet path');
	cmd_is($c, 'MAIL FROM:<a@example.org> SIZE=50000001', '552 5.3.4 Message size exceeds fixed limit',
	    'order: SIZE over message_size_limit');
	cmd_is($c, 'MAIL FROM:<a@example.org> SIZE=50000000', '250 2.1.0 Ok', 'order: SIZE at the limit');
	cmd_is($c, 'MAIL FROM:<b@example.org>', '503 5.5.1 Error: nested MAIL command', 'order: nested MAIL');
	cmd_is($c, 'DATA', '554 5.5.1 Error: no valid recipients', 'order: DATA without RCPT');
	is($c->quit, 221, 'order: QUIT');

	$c = client($g, '127.0.18.3');
	is(($c->cmd('EHLO order.example.org'))[0], 250, 'order: EHLO (3)');
	cmd_is($c, 'MAIL FROM:<a@example.org> SIZE=12x', '501 5.5.4 Bad SIZE parameter syntax', 'order: bad SIZE');
	cmd_is($c, 'MAIL FROM:<a@example.org> SIZE=99999999999999999999999', '501 5.5.4 Bad SIZE parameter syntax',
	    'order: SIZE overflowing 64 bits');
	cmd_is($c, 'MAIL FROM:<a@example.org> =x', '501 5.5.4 Bad ESMTP parameter syntax', 'order: bad parameter');
	# the path limit is 256 octets, brackets included
	my $dom = join('.', 'b' x 63, 'c' x 63, 'd' x 61);
	my $p256 = '<' . ('a' x 64) . "\@$dom>";
	(my $p257 = $p256) =~ s/>$/d>/;
	is(length($p256), 256, 'order: a 256-octet path is built');
	cmd_is($c, "MAIL FROM:$p257", '501 5.1.7 Bad sender address syntax', 'order: 257-octet path');
	cmd_is($c, "MAIL FROM:$p256", '250 2.1.0 Ok', 'order: 256-octet path accepted');
	cmd_is($c, 'RCPT TO:alice@example.com', '501 5.1.3 Bad recipient address syntax', 'order: RCPT without brackets');
	cmd_is($c, 'RCPT TO:<>', '501 5.1.3 Bad recipient address syntax', 'order: RCPT TO:<>');
	cmd_like($c, "RCPT TO:<alice\@example.com>", qr/^451 4\.7\.1 <alice\@example\.com>: Greylisted, try again in 1 seconds$/,
	    'order: the long sender is greylisted like any other');
	cmd_is($c, 'RSET', '250 2.0.0 Ok', 'order: RSET');
	is($c->quit, 221, 'order: QUIT (3)');
}
still_serving($g, 'out-of-order commands');

# ============================================================ 3. smuggling
{
	my $wait = $first{13} + 1.2 - time;
	sleep $wait if $wait > 0;
	my $mark = length postfix_log($pf);
	my $c = client($g, '127.0.13.1');
	is(($c->cmd('EHLO smuggle.example.org'))[0], 250, 'smuggle: EHLO');
	is(($c->cmd('MAIL FROM:<s13@sender.example>'))[0], 250, 'smuggle: MAIL');
	cmd_like($c, 'RCPT TO:<bob@example.com>', qr/^250 2\.1\.5 /, 'smuggle: the retry passes greylisting (Postfix replies)');
	my @seq = (["\n.\n", 'LF'], ["\n.\r\n", 'LF'], ["\r\n.\n", 'LF'], ["\r.\r\n", 'CR'], ["\r\n.\r", 'CR']);
	my $smuggled = "MAIL FROM:<evil\@x>\r\nRCPT TO:<bob\@example.com>\r\nDATA\r\n"
	    . "Subject: smuggled\r\n\r\nevil\r\n";
	for my $i (0 .. $#seq) {
		my ($s, $why) = @{$seq[$i]};
		(my $name = $s) =~ s/\r/\\r/g;
		$name =~ s/\n/\\n/g;
		if ($i > 0) {
			is(($c->cmd('MAIL FROM:<s13@sender.example>'))[0], 250, "smuggle $name: MAIL");
			cmd_like($c, 'RCPT TO:<bob@example.com>', qr/^250 2\.1\.5 /, "smuggle $name: RCPT relayed");
		}
		is(($c->cmd('DATA'))[0], 354, "smuggle $name: DATA 354 from Postfix");
		$c->send_raw("Subject: carrier $i\r\n\r\nhello$s$smuggled.\r\n");
		reply_is($c, "550 5.5.2 Message rejected: bare <$why> received", "smuggle $name: 550 5.5.2");
		no_more($c, 0.5, "smuggle $name: no reply to a smuggled command");
		cmd_is($c, 'NOOP', '250 2.0.0 Ok', "smuggle $name: back in command mode");
	}
	# an over-long text line whose CRLF is split across two writes: the
	# "." after it still ends DATA (CRLF.CRLF across the boundary)
	is(($c->cmd('MAIL FROM:<s13@sender.example>'))[0], 250, 'split CRLF: MAIL');
	cmd_like($c, 'RCPT TO:<bob@example.com>', qr/^250 2\.1\.5 /, 'split CRLF: RCPT relayed');
	is(($c->cmd('DATA'))[0], 354, 'split CRLF: DATA 354');
	$c->send_raw("Subject: long\r\n\r\n" . ('L' x 2000) . "\r");
	sleep 0.2;
	$c->send_raw("\n.\r\n");
	reply_is($c, '552 5.5.2 Message rejected: line longer than 1000 octets', 'split CRLF: 552 5.5.2 at once');

	is(($c->cmd('MAIL FROM:<s13@sender.example>'))[0], 250, 'smuggle: clean MAIL');
	cmd_like($c, 'RCPT TO:<bob@example.com>', qr/^250 2\.1\.5 /, 'smuggle: clean RCPT');
	my ($code, $text) = $c->data("Subject: clean\n\nclean message\n");
	is($code, 250, 'smuggle: a clean message in the same session is accepted');
	like($text // '', qr/^250 2\.0\.0 Ok: queued as /, "smuggle: Postfix's reply");
	is($c->quit, 221, 'smuggle: QUIT');

	my @bob = wait_for_mail($pf, 1, 10, 'bob');
	sleep 2;    # a smuggled or half-delivered message would arrive meanwhile
	@bob = mail_files($pf, 'bob');
	is(scalar @bob, 1, 'smuggle: exactly one message delivered to bob');
	like(read_file($bob[0] // '/nonexistent') // '', qr/^Subject: clean$/m, 'smuggle: it is the clean one');
	my @all = mail_files($pf);
	ok(!grep({ (read_file($_) // '') =~ /smuggled|evil|carrier/ } @all),
	    'smuggle: no carrier or smuggled text in any Maildir');
	my $log = substr(postfix_log($pf), $mark);
	unlike($log, qr/evil\@x/, 'smuggle: Postfix never saw the smuggled MAIL FROM');
	my @queued = $log =~ /qmgr\[\d+\]: \w+: from=<s13\@sender\.example>, .*\(queue active\)/g;
	is(scalar @queued, 1, 'smuggle: Postfix queued exactly one message from the sender');
	wait_until(sub { my @d = substr(postfix_log($pf), $mark) =~ /disconnect from \S+\[127\.0\.13\.1\]/g; @d >= 7 }, 5);
	$log = substr(postfix_log($pf), $mark);
	my @disc = $log =~ /(disconnect from \S+\[127\.0\.13\.1\].*)/g;
	is(scalar @disc, 7, 'smuggle: seven backend connections (five carriers, one long line, one clean)')
	    or diag(join("\n", @disc));
	is(scalar(grep { /\bmail=1\b/ && /\brcpt=1\b/ } @disc), 7,
	    'smuggle: each had exactly one MAIL and one RCPT (no second transaction)')
	    or diag(join("\n", @disc));
	is(scalar(grep { /\bdata=0\/1\b/ } @disc), 6, 'smuggle: the six rejected messages were never completed');
	my @rej = greyd_log($g) =~ /(REJECT \[127\.0\.13\.1\]:\d+ from=<s13\@sender\.example> bare (?:LF|CR) in message text)/g;
	is(scalar @rej, 5, 'smuggle: five rejections logged');
	unlike(greyd_log($g), qr/evil\@x/, 'smuggle: greyd never took the smuggled MAIL FROM as a command');
}
still_serving($g, 'smuggling attempts');

# =============================================================== 5. hang-up
{
	my $wait = $first{15} + 1.2 - time;
	sleep $wait if $wait > 0;
	my $c = client($g, '127.0.15.1');
	is(($c->cmd('EHLO hangup.example.org'))[0], 250, 'hangup: EHLO');
	is(($c->cmd('MAIL FROM:<s15@sender.example>'))[0], 250, 'hangup: MAIL');
	cmd_like($c, 'RCPT TO:<carol@example.com>', qr/^250 2\.1\.5 /, 'hangup: RCPT passes and is relayed');
	is(($c->cmd('DATA'))[0], 354, 'hangup: DATA 354');
	ok($c->send_raw("Subject: never finished\r\n\r\n" . ("some text of the message\r\n" x 4000)),
	    'hangup: 100 KB of the message sent');
	sleep 0.2;
	$c->close;
	ok(wait_for_log($g, qr/HANGUP \[127\.0\.15\.1\]:\d+ from=<s15\@sender\.example> during DATA/, 5),
	    'hangup: HANGUP logged');
	ok(wait_for_log($pf, qr/lost connection after DATA .*from \S+\[127\.0\.15\.1\]/, 5),
	    'hangup: Postfix lost the connection in DATA');
}
still_serving($g, 'a hang-up in DATA');

# ==================== 5b. the backend dies while greyd holds message text back
# Postfix's smtpd is stopped, so greyd's queue towards it grows until greyd
# stops reading the client; then smtpd is killed.  greyd must go back to
# reading (and discarding) the message and answer 451 at its end.
{
	my $wait = $first{21} + 1.2 - time;
	sleep $wait if $wait > 0;
	my $c = client($g, '127.0.21.1');
	is(($c->cmd('EHLO slow.example.org'))[0], 250, 'stalled backend: EHLO');
	is(($c->cmd('MAIL FROM:<s21@sender.example>'))[0], 250, 'stalled backend: MAIL');
	cmd_like($c, 'RCPT TO:<dave@example.com>', qr/^250 2\.1\.5 /, 'stalled backend: RCPT relayed');
	is(($c->cmd('DATA'))[0], 354, 'stalled backend: DATA 354');
	my @smtpd = grep { /^\d+$/ } split /\n/, `pgrep -f 'smtpd -n 127.0.0.1:$pf->{port}'`;
	ok(@smtpd >= 1, 'stalled backend: found the smtpd processes');
	kill 'STOP', @smtpd;
	my $cpu0 = cpu_seconds($g->{pid});
	my $text = "Subject: stalled\r\n\r\n" . (('x' x 998) . "\r\n") x 1024;
	my ($sent, $last, $deadline) = (0, time, time + 10);
	while ($sent < 32 * 1024 * 1024 && time < $deadline && time - $last < 0.5) {
		my $n = syswrite($c->sock, $text);
		if ($n) {
			$sent += $n;
			$last = time;
			substr($text, 0, $n, '') if $n < length $text;
			$text = (('x' x 998) . "\r\n") x 1024 if $n == length $text;
		} else {
			IO::Select->new($c->sock)->can_write(0.1);
		}
	}
	note("stalled backend: $sent octets of message text written before the client blocked");
	sleep 1;
	my $cpu = cpu_seconds($g->{pid}) - $cpu0;
	ok($cpu < 1.5, sprintf('stalled backend: greyd waits without spinning (%.2f s CPU in %.1f s)',
	    $cpu, time - $last + 0.5));
	kill 'KILL', @smtpd;
	kill 'CONT', @smtpd;
	ok($c->send_raw($text . ".\r\n"), 'stalled backend: the rest of the message and the end of data are taken');
	reply_is($c, '451 4.4.2 Backend connection lost, try again later', 'stalled backend: 451 4.4.2 at end of data');
	cmd_is($c, 'NOOP', '250 2.0.0 Ok', 'stalled backend: the session goes on');
	is($c->quit, 221, 'stalled backend: QUIT');
	ok(wait_for_log($g, qr/TEMPFAIL \[127\.0\.21\.1\]:\d+ from=<s21\@sender\.example> backend failed during DATA/, 5),
	    'stalled backend: TEMPFAIL logged');
}
still_serving($g, 'a backend that died while stalled');

# =========================================================== 6. idle client
{
	my $t = time;
	my $silent = client($g2, '127.0.16.1');
	my $half = client($g2, '127.0.16.2');
	is(($half->banner)[0], 220, 'idle: banner (half line)');
	$half->send_raw('EHLO never.finish');
	my ($code, $text) = $silent->read_reply(10);
	is($text, '220 mx2.greyd.test ESMTP greyd', 'idle: banner');
	reply_is($silent, '421 4.4.2 mx2.greyd.test Error: timeout exceeded', 'idle: silent client gets 421 4.4.2');
	is($silent->wait_closed(5), '', 'idle: then the connection is closed');
	my $elapsed = time - $t;
	ok($elapsed >= 1.5 && $elapsed <= 6, sprintf('idle: after %.1f s (smtp_idle_timeout = 2s)', $elapsed));
	reply_is($half, '421 4.4.2 mx2.greyd.test Error: timeout exceeded', 'idle: half a line, then silence: 421');
	is($half->wait_closed(5), '', 'idle: closed too');
	ok(wait_for_log($g2, qr/TIMEOUT \[127\.0\.16\.1\]:\d+ after 2 s idle/, 5), 'idle: TIMEOUT logged');
}
still_serving($g2, 'idle clients');

# ===================================================== 4. 10,000 pipelined
{
	my $c = client($g, '127.0.14.1');
	is(($c->banner)[0], 220, 'pipelining: banner');
	is(($c->cmd('EHLO pipe.example.org'))[0], 250, 'pipelining: EHLO');
	my $rss0 = vmrss_kb($g->{pid});
	my $t = time;
	my @r = pipeline($c, "NOOP\r\n" x 10000, 10000, 20);
	is(scalar @r, 10000, sprintf('pipelining: 10,000 NOOPs in one write, 10,000 replies (%.2f s)', time - $t));
	is(scalar(grep { $_ eq "250 2.0.0 Ok\r\n" } @r), 10000, 'pipelining: each one "250 2.0.0 Ok" CRLF');
	no_more($c, 0.3, 'pipelining: no extra reply');

	my ($cmds, @want) = ('');
	for my $i (1 .. 2500) {
		$cmds .= "MAIL FROM:<p$i\@pipe.example>\r\nRCPT TO:<u$i\@example.com>\r\nRSET\r\nNOOP $i\r\n";
		push @want, "250 2.1.0 Ok\r\n",
		    "451 4.7.1 <u$i\@example.com>: Greylisted, try again in 1 seconds\r\n",
		    "250 2.0.0 Ok\r\n", "250 2.0.0 Ok\r\n";
	}
	$t = time;
	@r = pipeline($c, $cmds, 10000, 30);
	is(scalar @r, 10000, sprintf('pipelining: 10,000 MAIL/RCPT/RSET/NOOP in one write, 10,000 replies (%.2f s)',
	    time - $t));
	my ($bad) = grep { ($r[$_] // '') ne $want[$_] } 0 .. $#want;
	ok(!defined $bad, 'pipelining: every reply in order, each RCPT greylisted with its own recipient')
	    or diag("reply $bad: got " . ($r[$bad] // 'nothing') . " want $want[$bad]");
	no_more($c, 0.3, 'pipelining: no extra reply (2)');
	my $rss1 = vmrss_kb($g->{pid});
	my $limit = $ENV{GREYD_SANITIZED} ? 131072 : 16384;
	ok($rss1 - $rss0 < $limit, "pipelining: VmRSS $rss0 kB before, $rss1 kB after (growth below $limit kB)");
	cmd_is($c, 'NOOP', '250 2.0.0 Ok', 'pipelining: the session still works');

	# a client that pipelines 2.4 MB of commands and does not read: greyd
	# stops answering and reading, and waits without burning CPU
	my $burst = "NOOP\r\n" x 400000;
	my ($sent, $last) = (0, time);
	while (length $burst && time - $last < 0.5) {
		my $n = syswrite($c->sock, $burst);
		if ($n) {
			$sent += $n;
			$last = time;
			substr($burst, 0, $n, '');
		} else {
			IO::Select->new($c->sock)->can_write(0.1);
		}
	}
	sleep 0.5;    # greyd answers what fits, then holds the rest
	my $cpu0 = cpu_seconds($g->{pid});
	sleep 1.5;
	my $cpu = cpu_seconds($g->{pid}) - $cpu0;
	ok($cpu < 0.5, sprintf('pipelining: %d octets of commands sent, no reply read: greyd idles (%.2f s CPU in 1.5 s)',
	    $sent, $cpu));
	$t = time;
	@r = pipeline($c, $burst, 400000, 30);
	is(scalar @r, 400000, sprintf('pipelining: then all 400,000 replies arrive (%.2f s)', time - $t));
	is(scalar(grep { $_ eq "250 2.0.0 Ok\r\n" } @r), 400000, 'pipelining: each one "250 2.0.0 Ok"');
	@r = ();
	cmd_is($c, 'NOOP', '250 2.0.0 Ok', 'pipelining: the session still works (2)');
	is(($c->cmd('MAIL FROM:<after@pipe.example>'))[0], 250, 'pipelining: MAIL after the burst');
	is($c->quit, 221, 'pipelining: QUIT');
	ok(wait_for_log($g, qr/GREY \[127\.0\.14\.1\]:\d+ from=<p2500\@pipe\.example> to=<u2500\@example\.com>/, 5),
	    'pipelining: the last RCPT reached the greylist');
}
still_serving($g, '10,000 pipelined commands');

# ===================================================== 9. connection storm
{
	sleep 0.2;
	my $fd0 = nfds($g->{pid});
	my @socks;
	for my $i (0 .. 199) {
		my $s = IO::Socket::IP->new(PeerHost => '127.0.0.1', PeerPort => $g->{port},
		    LocalHost => '127.0.19.' . (1 + $i % 50), Proto => 'tcp', Timeout => 5);
		push @socks, $s if $s;
	}
	is(scalar @socks, 200, 'storm: 200 connections opened');
	my $i = 0;
	for my $s (@socks) {
		my $k = $i++ % 5;
		if ($k == 1) {
			syswrite($s, 'EHLO half-a-li');
		} elsif ($k == 2) {
			setsockopt($s, SOL_SOCKET, SO_LINGER, pack('II', 1, 0));    # RST
		} elsif ($k == 3) {
			syswrite($s, "EHLO x.example\r\nMAIL FROM:<a$i\@b.example>\r\nRCPT TO:<alice\@example.com>\r\nDATA\r\n");
		} elsif ($k == 4) {
			syswrite($s, "MAIL FROM:<x\@y.example>\r\nRCPT TO:<z");
			shutdown($s, 1);
		}
	}
	close $_ for @socks;
	@socks = ();
	ok(wait_until(sub { nfds($g->{pid}) <= $fd0 }, 10),
	    "storm: greyd's descriptors back to $fd0 (now " . nfds($g->{pid}) . ')');
	still_serving($g, '200 connections opened and dropped');
}

# ============================================= nothing arrived for carol
{
	my @carol = mail_files($pf, 'carol');
	is(scalar @carol, 0, 'hangup: nothing delivered to carol');
	my @dave = mail_files($pf, 'dave');
	is(scalar @dave, 0, 'stalled backend: nothing delivered to dave');
	my @all = mail_files($pf);
	is(scalar @all, 1, 'only the clean message of the smuggling case was ever delivered');
}

is(stop_greyd($g), 0, 'greyd exits 0');
is(stop_greyd($g2), 0, 'greyd2 exits 0');
unlike(greyd_log($g) . greyd_log($g2), qr/ERROR: AddressSanitizer|runtime error:|LeakSanitizer/,
    'no sanitizer report');
note(sprintf('60-hostile.t ran in %.1f s', time - $T0));
done_testing;
