package GreydTest;

# GreydTest — the integration-test library: temp dirs, free ports, a private
# Postfix instance, rbldnsd serving test zones, greyd and greydb runners, and
# a small SMTP client.  Core Perl modules only, but for Net::DNS, loaded by
# start_rbldnsd alone.  POD at the end of the file.

use strict;
use warnings;

use Cwd ();
use Errno qw(EINTR EAGAIN EWOULDBLOCK ECHILD);
use Exporter qw(import);
use Fcntl qw(O_WRONLY O_CREAT O_EXCL);
use File::Path ();
use File::Spec;
use File::Temp ();
use IO::Select;
use IO::Socket::IP;
use POSIX qw(WNOHANG _exit);
use Socket qw(SOCK_STREAM);
use Test::More ();
use Time::HiRes qw(time sleep);

our @EXPORT = qw(
    tempdir free_port
    start_postfix stop_postfix postfix_log mail_files wait_for_mail
    start_rbldnsd stop_rbldnsd rbldnsd_log
    start_unbound stop_unbound unbound_log unbound_queries dns_escape_name dns_txt_rdata
    start_greyd stop_greyd restart_greyd greyd_log run_greydb
    greyd_binary greydb_binary greyspf_binary
    smtp_connect send_proxy_v1 proxy_v1_header
    read_file write_file wait_for_log wait_until
);

my $OWNER_PID = $$;               # forked children must not clean up
my $REPO_DIR = Cwd::getcwd();
my $BUILD_DIR = File::Spec->rel2abs($ENV{GREYD_BUILD} // '.', $REPO_DIR);
my $PORT_LOCK_DIR = '/tmp/greydtest-ports';

my $TEMPDIR;                      # tempdir() result, created on first use
my %RUNNING;                      # pid => object (postfix, rbldnsd or greyd)
my @RESERVED_PORTS;
my $WATCHDOG_PID;
my %NAME_COUNT;                   # 'pf' / 'dns' / 'greyd' => instances started
my $CLEANING;

my $SANITIZER_RE = qr/ERROR: AddressSanitizer|runtime error:|LeakSanitizer/;

# A test that writes to a socket the peer has closed must get EPIPE, not die
# of SIGPIPE with its processes still running.
$SIG{PIPE} = 'IGNORE';
for my $sig (qw(INT TERM HUP QUIT)) {
	$SIG{$sig} = sub {
		Test::More::diag("GreydTest: caught SIG$sig, cleaning up");
		_cleanup_all();
		exit(128 + _signum($sig));
	};
}

END {
	if ($$ == $OWNER_PID) {
		my $status = $?;
		_cleanup_all();
		$? = $status;
	}
}

sub _signum {
	my ($name) = @_;
	my %n = (HUP => 1, INT => 2, QUIT => 3, KILL => 9, TERM => 15);
	return $n{$name} // 0;
}

# ---------------------------------------------------------------- files, dirs

sub read_file {
	my ($path) = @_;
	open(my $fh, '<:raw', $path) or return undef;
	local $/;
	my $s = <$fh>;
	close $fh;
	return $s // '';
}

sub write_file {
	my ($path, $content, $mode) = @_;
	open(my $fh, '>:raw', $path) or die "GreydTest: write $path: $!\n";
	print {$fh} $content;
	close($fh) or die "GreydTest: write $path: $!\n";
	chmod($mode, $path) if defined $mode;
	return $path;
}

# Every ancestor of $dir must be searchable by others, or the postfix user
# (virtual delivery, smtpd after the privilege drop) cannot reach its files.
sub _world_traversable {
	my ($dir) = @_;
	my @parts = File::Spec->splitdir(File::Spec->rel2abs($dir));
	my $path = '';
	for my $p (@parts) {
		$path = $path eq '' ? ($p eq '' ? '/' : $p) : File::Spec->catdir($path, $p);
		my @st = stat($path) or return 0;
		return 0 unless $st[2] & 0001;
	}
	return 1;
}

sub tempdir {
	return $TEMPDIR if defined $TEMPDIR;
	my $base = File::Spec->tmpdir;
	$base = '/tmp' unless _world_traversable($base);
	my $d = File::Temp::tempdir('greyd-t-XXXXXX', DIR => $base, CLEANUP => 0);
	chmod(0755, $d) or die "GreydTest: chmod $d: $!\n";
	$TEMPDIR = $d;
	return $d;
}

# ---------------------------------------------------------------------- ports

sub _pid_alive {
	my ($pid) = @_;
	return 0 unless $pid && kill(0, $pid);
	# A zombie is as good as dead (nobody may reap a daemonised master).
	my $stat = read_file("/proc/$pid/stat");
	return 1 unless defined $stat;
	return $stat =~ /^\d+ \(.*\) Z/s ? 0 : 1;
}

# Reserve a port among all GreydTest processes on this machine, so two tests
# run by "prove -j" never pick the same one between the check and the bind.
sub _reserve_port {
	my ($port) = @_;
	mkdir($PORT_LOCK_DIR, 01777);
	my $file = "$PORT_LOCK_DIR/$port";
	for (1 .. 2) {
		if (sysopen(my $fh, $file, O_WRONLY | O_CREAT | O_EXCL, 0644)) {
			print {$fh} "$$\n";
			close $fh;
			push @RESERVED_PORTS, $port;
			return 1;
		}
		my $owner = read_file($file) // '';
		$owner =~ s/\s+//g;
		return 0 if $owner =~ /^\d+$/ && _pid_alive($owner);
		unlink $file;     # stale: its test process is gone
	}
	return 0;
}

sub _port_bindable {
	my ($host, $port, $udp) = @_;
	my $s = IO::Socket::IP->new(
		LocalHost => $host, LocalPort => $port,
		($udp ? (Proto => 'udp') : (Proto => 'tcp', Listen => 1, ReuseAddr => 1)),
		($host =~ /:/ ? (V6Only => 1) : ()),
	) or return 0;
	close $s;
	return 1;
}

sub free_port {
	my (%opt) = @_;
	# Ports are drawn from below the kernel's ephemeral range, so they never
	# collide with the local ports of the tests' own outgoing connections.
	my ($eph_lo) = split ' ', (read_file('/proc/sys/net/ipv4/ip_local_port_range') // '32768');
	my $lo = 10000;
	my $hi = ($eph_lo && $eph_lo > $lo + 1000) ? $eph_lo - 1 : 30000;
	for (1 .. 500) {
		my $port = $lo + int(rand($hi - $lo + 1));
		next unless _port_bindable('127.0.0.1', $port, $opt{udp});
		next if $opt{ipv6} && !_port_bindable('::1', $port, $opt{udp});
		next unless _reserve_port($port);
		return $port;
	}
	die "GreydTest: no free port found\n";
}

# ------------------------------------------------------------------ processes

sub _close_fds_above_2 {
	opendir(my $dh, '/proc/self/fd') or return;
	my @fds = grep { /^\d+$/ && $_ > 2 } readdir($dh);
	closedir $dh;
	POSIX::close($_) for @fds;
}

# Run a command with output to $out (a file), killing it after $timeout s.
# Returns the wait status (-1 on timeout).
sub _run {
	my ($argv, $timeout, $out, $stdin_file) = @_;
	my $pid = fork() // die "GreydTest: fork: $!\n";
	if ($pid == 0) {
		open(STDIN, '<', $stdin_file // '/dev/null');
		open(STDOUT, '>>', $out) or _exit(127);
		open(STDERR, '>&', \*STDOUT);
		exec(@$argv) or do { print STDERR "exec $argv->[0]: $!\n"; _exit(127) };
	}
	return _wait_pid($pid, $timeout);
}

# Wait for our child $pid up to $timeout seconds; SIGKILL it after that.
sub _wait_pid {
	my ($pid, $timeout) = @_;
	my $deadline = time + $timeout;
	while (1) {
		my $r = waitpid($pid, WNOHANG);
		return $? if $r == $pid;
		return -1 if $r < 0;
		if (time > $deadline) {
			kill('KILL', $pid);
			waitpid($pid, 0);
			return -1;
		}
		sleep 0.02;
	}
}

sub _decode_status {
	my ($st) = @_;
	return undef if !defined $st || $st < 0;
	return $st >> 8 if ($st & 0x7f) == 0;
	return 128 + ($st & 0x7f);
}

sub _children_of {
	my ($ppid) = @_;
	my @kids;
	opendir(my $dh, '/proc') or return;
	for my $p (grep { /^\d+$/ } readdir $dh) {
		my $stat = read_file("/proc/$p/stat") // next;
		push @kids, $p if $stat =~ /^\d+ \(.*\) \S (\d+)/s && $1 == $ppid;
	}
	closedir $dh;
	return @kids;
}

sub _wait_gone {
	my ($timeout, @pids) = @_;
	my $deadline = time + $timeout;
	while (1) {
		@pids = grep { _pid_alive($_) } @pids;
		return 1 unless @pids;
		return 0 if time > $deadline;
		sleep 0.05;
	}
}

# The watchdog outlives a test killed with SIGKILL: when its parent is gone
# it kills every process listed in the pid file and removes the temp dir.
sub _pidfile { return tempdir() . '/.greydtest-pids' }

sub _update_pidfile {
	return unless defined $TEMPDIR && -d $TEMPDIR;
	my $s = '';
	for my $o (values %RUNNING) {
		$s .= join(' ', $o->{type}, $o->{pid}, $o->{type} eq 'postfix' ? $o->{config_dir} : '-') . "\n";
	}
	write_file(_pidfile() . '.new', $s);
	rename(_pidfile() . '.new', _pidfile());
}

sub _start_watchdog {
	return if $WATCHDOG_PID;
	my $parent = $$;
	my $dir = tempdir();
	my $pid = fork() // return;
	if ($pid == 0) {
		open(STDIN, '<', '/dev/null');
		open(STDOUT, '>', '/dev/null');
		open(STDERR, '>', '/dev/null');
		_close_fds_above_2();
		$0 = "greydtest-watchdog $parent";
		$SIG{$_} = 'DEFAULT' for qw(INT TERM HUP QUIT);
		while (getppid() == $parent) {
			sleep 0.5;
		}
		for my $line (split /\n/, read_file("$dir/.greydtest-pids") // '') {
			my ($type, $p, $cfg) = split ' ', $line;
			if ($type eq 'postfix') {
				my @kids = _children_of($p);
				system('postfix', '-c', $cfg, 'stop') if $cfg ne '-';
				kill('KILL', $p, @kids);
			} else {
				kill('TERM', $p);
				_wait_gone(5, $p) or kill('KILL', $p);
			}
		}
		unlink("$PORT_LOCK_DIR/$_") for @RESERVED_PORTS;
		File::Path::rmtree($dir) unless $ENV{GREYD_KEEP};
		_exit(0);
	}
	$WATCHDOG_PID = $pid;
}

sub _register {
	my ($obj) = @_;
	_start_watchdog();
	$RUNNING{$obj->{pid}} = $obj;
	_update_pidfile();
}

sub _unregister {
	my ($obj) = @_;
	delete $RUNNING{$obj->{pid}} if defined $obj->{pid};
	_update_pidfile();
}

sub _tail {
	my ($text, $n) = @_;
	return '' unless defined $text;
	my @l = split /\n/, $text;
	@l = @l[-$n .. -1] if @l > $n;
	return join("\n", @l) . "\n";
}

sub _cleanup_all {
	return if $CLEANING++;
	my $failed = !Test::More->builder->is_passing;
	my @objs = values %RUNNING;
	if ($failed) {
		for my $o (sort { $a->{name} cmp $b->{name} } @objs) {
			my $log = $o->{type} eq 'postfix' ? postfix_log($o)
			    : $o->{type} eq 'rbldnsd' ? rbldnsd_log($o) : greyd_log($o);
			Test::More::diag("---- last lines of $o->{name} log ($o->{logfile}):\n" . _tail($log, 40));
		}
	}
	# greyd first: it holds connections to the Postfix instances.
	stop_greyd($_) for grep { $_->{type} eq 'greyd' } @objs;
	stop_postfix($_) for grep { $_->{type} eq 'postfix' } @objs;
	stop_rbldnsd($_) for grep { $_->{type} eq 'rbldnsd' } @objs;
	if ($WATCHDOG_PID) {
		kill('KILL', $WATCHDOG_PID);
		waitpid($WATCHDOG_PID, 0);
		$WATCHDOG_PID = undef;
	}
	unlink("$PORT_LOCK_DIR/$_") for @RESERVED_PORTS;
	@RESERVED_PORTS = ();
	if (defined $TEMPDIR && -d $TEMPDIR) {
		if ($ENV{GREYD_KEEP}) {
			Test::More::diag("GreydTest: kept $TEMPDIR");
		} else {
			Test::More::diag("GreydTest: set GREYD_KEEP=1 to keep the test directory") if $failed;
			File::Path::rmtree($TEMPDIR);
		}
	}
}

# -------------------------------------------------------------------- postfix

# The services a private instance needs; nothing is chrooted.
my $MASTER_CF_SERVICES = <<'EOF';
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
virtual   unix  -       n       n       -       -       virtual
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF

sub _postfix_main_cf {
	my ($pf, $extra) = @_;
	my $d = $pf->{dir};
	my @set = (
		compatibility_level => '3.6',
		queue_directory => $pf->{queue_dir},
		data_directory => $pf->{data_dir},
		syslog_name => "greydtest-$pf->{name}",
		maillog_file => $pf->{logfile},
		maillog_file_prefixes => $d,
		myhostname => 'backend.greyd.test',
		mydomain => 'greyd.test',
		myorigin => '$myhostname',
		mydestination => '',
		local_recipient_maps => '',
		alias_maps => '',
		alias_database => '',
		relay_domains => '',
		inet_interfaces => 'loopback-only',
		inet_protocols => $pf->{ipv6} ? 'all' : 'ipv4',
		mynetworks => '127.0.0.0/8 [::1]/128',
		smtpd_peername_lookup => 'no',
		smtp_dns_support_level => 'disabled',
		lmtp_dns_support_level => 'disabled',
		default_transport => 'error:outbound mail is disabled in tests',
		relay_transport => 'error:outbound mail is disabled in tests',
		virtual_mailbox_domains => $pf->{domain},
		virtual_mailbox_base => $pf->{maildir},
		virtual_mailbox_maps => "texthash:$pf->{config_dir}/vmailbox",
		virtual_uid_maps => "static:$pf->{uid}",
		virtual_gid_maps => "static:$pf->{gid}",
		smtpd_client_restrictions => '',
		smtpd_helo_restrictions => '',
		smtpd_sender_restrictions => '',
		smtpd_relay_restrictions => 'permit_mynetworks, reject_unauth_destination',
		smtpd_recipient_restrictions => '',
		in_flow_delay => '0s',
		notify_classes => '',
		biff => 'no',
		append_dot_mydomain => 'no',
	);
	my (@keys, %val);
	while (my ($k, $v) = splice(@set, 0, 2)) {
		push @keys, $k;
		$val{$k} = $v;
	}
	for my $k (sort keys %$extra) {
		push @keys, $k unless exists $val{$k};
		$val{$k} = $extra->{$k};
	}
	return join('', map { defined $val{$_} ? "$_ = $val{$_}\n" : '' } @keys);
}

sub _postfix_master_cf {
	my ($pf) = @_;
	my @o;
	if ($pf->{proxy} eq 'haproxy') {
		push @o, smtpd_upstream_proxy_protocol => 'haproxy';
	}
	if (defined $pf->{forbid_bare_newline}) {
		push @o, smtpd_forbid_bare_newline => $pf->{forbid_bare_newline},
		    # the default exclusion, $mynetworks, covers every test client
		    smtpd_forbid_bare_newline_exclusions => '';
	}
	if ($pf->{xclient}) {
		push @o, smtpd_authorized_xclient_hosts => '127.0.0.0/8, [::1]/128';
	}
	my $ex = $pf->{listener_opts} || {};
	push @o, map { ($_ => $ex->{$_}) } sort keys %$ex;
	my $opts = '';
	while (my ($k, $v) = splice(@o, 0, 2)) {
		$opts .= ($v =~ /[\s,]/) ? "  -o { $k = $v }\n" : "  -o $k=$v\n";
	}
	my $cf = "127.0.0.1:$pf->{port} inet n - n - - smtpd\n$opts";
	$cf .= "[::1]:$pf->{port} inet n - n - - smtpd\n$opts" if $pf->{ipv6};
	return $cf . $MASTER_CF_SERVICES;
}

sub _mkdir_owned {
	my ($path, $mode, $uid, $gid) = @_;
	mkdir($path) or $!{EEXIST} or die "GreydTest: mkdir $path: $!\n";
	chown($uid, $gid, $path) or die "GreydTest: chown $path: $!\n";
	chmod($mode, $path) or die "GreydTest: chmod $path: $!\n";
}

# The queue layout of postfix-files, made directly: "postfix start" would
# otherwise run post-install create-missing and the integrity checks, which
# cost 1.5 s per instance; the quick-start flag skips them.
sub _postfix_make_queue {
	my ($pf) = @_;
	my ($uid, $gid) = ($pf->{uid}, $pf->{gid});
	my $postdrop = getgrnam('postdrop') // die "GreydTest: no postdrop group\n";
	my $q = $pf->{queue_dir};
	_mkdir_owned($q, 0755, 0, 0);
	_mkdir_owned("$q/$_", 0700, $uid, 0)
	    for qw(active bounce corrupt defer deferred flush hold incoming private saved trace);
	_mkdir_owned("$q/maildrop", 01730, $uid, $postdrop);
	_mkdir_owned("$q/public", 0710, $uid, $postdrop);
	_mkdir_owned("$q/pid", 0755, 0, 0);
	write_file("$q/quick-start", '');
}

sub _postfix_read_pid {
	my ($pf, $timeout) = @_;
	my $deadline = time + $timeout;
	while (time < $deadline) {
		my $s = read_file("$pf->{queue_dir}/pid/master.pid");
		return $1 if defined $s && $s =~ /(\d+)/ && _pid_alive($1);
		sleep 0.02;
	}
	return undef;
}

# Wait until the listener answers 220; a PROXY listener gets a header first.
sub _postfix_probe {
	my ($pf, $host, $timeout) = @_;
	my $deadline = time + $timeout;
	my $err = '';
	while (time < $deadline) {
		my $c = eval { smtp_connect(host => $host, port => $pf->{port}, timeout => 2) };
		if ($c) {
			if ($pf->{proxy} eq 'haproxy') {
				send_proxy_v1($c, $host, $c->sockport, $host, $pf->{port});
			}
			my ($code, $text) = $c->banner;
			if (defined $code && $code == 220) {
				$c->cmd('QUIT');
				$c->close;
				return 1;
			}
			$err = $text // $c->{error} // 'no banner';
			$c->close;
		} else {
			$err = $@;
		}
		sleep 0.05;
	}
	die "GreydTest: $pf->{name} listener $host port $pf->{port} never answered 220: $err\n";
}

sub start_postfix {
	my (%opt) = @_;
	my $n = ++$NAME_COUNT{pf};
	my $name = $opt{name} // "pf$n";
	my $dir = tempdir() . "/$name";
	my ($uid, $gid) = (getpwnam('postfix'))[2, 3];
	die "GreydTest: no postfix user (install postfix)\n" unless defined $uid;
	my $domain = $opt{domain} // 'example.com';
	my $users = $opt{users} // [qw(alice bob postmaster)];
	my $proxy = $opt{proxy} // 'haproxy';
	die "GreydTest: proxy must be haproxy or none\n" unless $proxy =~ /^(?:haproxy|none)$/;
	my $pf = {
		type => 'postfix',
		name => $name,
		dir => $dir,
		config_dir => "$dir/etc",
		queue_dir => "$dir/queue",
		data_dir => "$dir/data",
		maildir => "$dir/mail",
		logfile => "$dir/maillog",
		host => '127.0.0.1',
		domain => $domain,
		users => [map { /@/ ? $_ : "$_\@$domain" } @$users],
		proxy => $proxy,
		xclient => $opt{xclient} ? 1 : 0,
		ipv6 => $opt{ipv6} ? 1 : 0,
		forbid_bare_newline => exists $opt{forbid_bare_newline}
		    ? $opt{forbid_bare_newline}
		    : ($proxy eq 'haproxy' ? 'yes' : undef),
		listener_opts => $opt{listener} // {},
		uid => $uid,
		gid => $gid,
	};
	mkdir $dir or die "GreydTest: mkdir $dir: $!\n";
	chmod 0755, $dir;
	mkdir $pf->{config_dir} or die "GreydTest: mkdir $pf->{config_dir}: $!\n";
	_mkdir_owned($pf->{data_dir}, 0700, $uid, $gid);
	_mkdir_owned($pf->{maildir}, 0755, $uid, $gid);
	_postfix_make_queue($pf);
	write_file("$pf->{config_dir}/vmailbox",
	    join('', map { my ($l, $d) = split /@/; "$_ $d/$l/\n" } @{$pf->{users}}), 0644);
	write_file("$pf->{config_dir}/main.cf", _postfix_main_cf($pf, $opt{main} // {}), 0644);

	my $timeout = $opt{start_timeout} // 10;
	my $t0 = time;
	for my $attempt (1 .. 3) {
		$pf->{port} = $opt{port} // free_port(ipv6 => $pf->{ipv6});
		write_file("$pf->{config_dir}/master.cf", _postfix_master_cf($pf), 0644);
		write_file("$pf->{queue_dir}/quick-start", '');
		my $out = "$dir/postfix-start.out";
		my $st = _run(['postfix', '-c', $pf->{config_dir}, 'start'], $timeout, $out);
		my $pid = _postfix_read_pid($pf, $st == 0 ? $timeout : 0.5);
		if ($pid) {
			$pf->{pid} = $pid;
			_register($pf);
		}
		if ($st == 0 && $pid) {
			_postfix_probe($pf, '127.0.0.1', $timeout);
			_postfix_probe($pf, '::1', $timeout) if $pf->{ipv6};
			$pf->{start_time} = time - $t0;
			return $pf;
		}
		my $why = (read_file($out) // '') . (read_file($pf->{logfile}) // '');
		stop_postfix($pf) if $pid;
		next if !defined $opt{port} && $why =~ /address already in use/i;
		die "GreydTest: postfix $name failed to start (status $st):\n$why";
	}
	die "GreydTest: postfix $name: no usable port after 3 attempts\n";
}

sub stop_postfix {
	my ($pf) = @_;
	return unless $pf && $pf->{pid};
	my $pid = $pf->{pid};
	my @kids = _children_of($pid);
	my $t0 = time;
	_run(['postfix', '-c', $pf->{config_dir}, 'stop'], 10, "$pf->{dir}/postfix-stop.out")
	    if _pid_alive($pid);
	kill('KILL', $pid) unless _wait_gone(5, $pid);
	kill('KILL', @kids) if @kids && !_wait_gone(2, @kids);
	_unregister($pf);
	$pf->{pid} = undef;
	$pf->{stop_time} = time - $t0;
	return 1;
}

sub postfix_log {
	my ($pf) = @_;
	return read_file($pf->{logfile}) // '';
}

sub mail_files {
	my ($pf, $user) = @_;
	my $glob = defined $user
	    ? do { my ($l, $d) = $user =~ /@/ ? split(/@/, $user) : ($user, $pf->{domain}); "$pf->{maildir}/$d/$l" }
	    : "$pf->{maildir}/*/*";
	my @files = grep { -f $_ } map { glob("$_/new/* $_/cur/*") } glob($glob);
	return sort { (stat $a)[9] <=> (stat $b)[9] || $a cmp $b } @files;
}

sub wait_for_mail {
	my ($pf, $n, $timeout, $user) = @_;
	$n //= 1;
	my $deadline = time + ($timeout // 10);
	while (1) {
		my @f = mail_files($pf, $user);
		return @f if @f >= $n || time > $deadline;
		sleep 0.05;
	}
}

# -------------------------------------------------------------------- rbldnsd

# rbldnsd answers over UDP only, A and TXT (and SOA/NS when the zone file has
# $SOA/$NS lines); a TXT record is one string of at most 255 octets; names
# outside its zones get REFUSED.  It cannot delay its answers.
sub _rbldnsd_probe {
	my ($r, $timeout) = @_;
	my ($zone) = sort keys %{$r->{zones}};
	my $res = Net::DNS::Resolver->new(
		nameservers => ['127.0.0.1'], port => $r->{port}, recurse => 0,
		udp_timeout => 0.3, retry => 1, usevc => 0, defnames => 0, dnsrch => 0,
	);
	my $deadline = time + $timeout;
	while (time < $deadline) {
		return 1 if $res->send("probe.$zone", 'A');
		return 0 if waitpid($r->{pid}, WNOHANG) == $r->{pid};
		sleep 0.02;
	}
	return 0;
}

sub start_rbldnsd {
	my (%opt) = @_;
	die "GreydTest: rbldnsd cannot delay its answers (use unbound or a stub)\n"
	    if exists $opt{delay};
	require Net::DNS;
	my $zones = $opt{zones} // die "GreydTest: start_rbldnsd needs zones\n";
	die "GreydTest: start_rbldnsd needs at least one zone\n" unless %$zones;
	my $n = ++$NAME_COUNT{dns};
	my $name = $opt{name} // "dns$n";
	my $dir = tempdir() . "/$name";
	die "GreydTest: no rbldns user (install rbldnsd)\n" unless defined getpwnam('rbldns');
	mkdir $dir or die "GreydTest: mkdir $dir: $!\n";
	chmod 0755, $dir;
	my @specs;
	for my $zone (sort keys %$zones) {
		my ($type, $text) = @{$zones->{$zone}};
		die "GreydTest: zone $zone: bad dataset type\n" unless ($type // '') =~ /^[a-z0-9]+$/;
		write_file("$dir/$zone", $text // '', 0644);
		push @specs, "$zone:$type:$dir/$zone";
	}
	my $r = {
		type => 'rbldnsd', name => $name, dir => $dir, host => '127.0.0.1',
		logfile => "$dir/rbldnsd.log", zones => { %$zones },
		ipv6 => $opt{ipv6} ? 1 : 0,
	};
	my $timeout = $opt{start_timeout} // 10;
	for my $attempt (1 .. 3) {
		$r->{port} = $opt{port} // free_port(udp => 1, ipv6 => $r->{ipv6});
		my @argv = ('rbldnsd', '-n', '-u', 'rbldns', '-b', "127.0.0.1/$r->{port}",
		    ($r->{ipv6} ? ('-b', "::1/$r->{port}") : ()), @{$opt{args} // []}, @specs);
		my $pid = fork() // die "GreydTest: fork: $!\n";
		if ($pid == 0) {
			open(STDIN, '<', '/dev/null');
			open(STDOUT, '>>', $r->{logfile}) or _exit(127);
			open(STDERR, '>&', \*STDOUT);
			exec(@argv) or do { print STDERR "exec rbldnsd: $!\n"; _exit(127) };
		}
		$r->{pid} = $pid;
		_register($r);
		return $r if _rbldnsd_probe($r, $timeout);
		my $why = rbldnsd_log($r);
		stop_rbldnsd($r);
		next if !defined $opt{port} && $why =~ /address already in use/i;
		die "GreydTest: rbldnsd $name did not answer on port $r->{port}:\n$why";
	}
	die "GreydTest: rbldnsd $name: no usable port after 3 attempts\n";
}

sub stop_rbldnsd {
	my ($r) = @_;
	return unless $r && $r->{pid};
	my $pid = $r->{pid};
	kill('TERM', $pid);
	_wait_pid($pid, 5);
	_unregister($r);
	$r->{pid} = undef;
	return 1;
}

sub rbldnsd_log {
	my ($r) = @_;
	return read_file($r->{logfile}) // '';
}

# -------------------------------------------------------------------- unbound

# unbound serving only local data: a "." static zone (so no query ever leaves
# the machine and names without data get NXDOMAIN), local-data records, and
# deny/refuse local zones for names whose queries must time out / be refused.
# Started by start_unbound, stopped by stop_unbound or at exit (the END block
# below runs before the one that stops everything else).

# A domain name in master-file syntax: every octet outside [A-Za-z0-9_*-] of
# each label as \DDD; the result ends with a dot.  Characters above 255 are
# taken as UTF-8.
sub dns_escape_name {
	my ($name) = @_;
	utf8::encode($name) if $name =~ /[^\x00-\xff]/;
	return '.' if $name eq '.' || $name eq '';
	$name =~ s/\.\z//;
	return join('.', map {
		my $l = $_;
		$l =~ s/([^A-Za-z0-9_*\-])/sprintf('\\%03d', ord $1)/ge;
		$l;
	} split(/\./, $name, -1)) . '.';
}

# TXT rdata in master-file syntax: each string quoted, every octet outside
# printable ASCII, and " \ ' as \DDD; strings longer than 255 octets are cut
# into 255-octet strings.  No strings at all: the empty rdata, "\# 0".
sub dns_txt_rdata {
	my (@strings) = @_;
	my @q;
	for my $s (@strings) {
		$s = '' unless defined $s;
		utf8::encode($s) if $s =~ /[^\x00-\xff]/;
		my @chunks = length($s) ? unpack('(a255)*', $s) : ('');
		for my $c (@chunks) {
			$c =~ s/([^\x20-\x7e]|["'\\])/sprintf('\\%03d', ord $1)/ge;
			push @q, qq("$c");
		}
	}
	return @q ? join(' ', @q) : '\\# 0';
}

# unbound's default local zones (RFC 6303, 6761, 7686, 8375 ...): each would
# shadow the auth zone below, so each is turned off.  Naming one that this
# unbound version lacks is harmless.
my @UNBOUND_DEFAULT_ZONES = (
	qw(localhost. 127.in-addr.arpa. home.arpa. onion. test. invalid.
	    resolver.arpa. service.arpa. 10.in-addr.arpa. 168.192.in-addr.arpa.
	    0.in-addr.arpa. 254.169.in-addr.arpa. 2.0.192.in-addr.arpa.
	    100.51.198.in-addr.arpa. 113.0.203.in-addr.arpa.
	    255.255.255.255.in-addr.arpa. d.f.ip6.arpa. 8.e.f.ip6.arpa.
	    9.e.f.ip6.arpa. a.e.f.ip6.arpa. b.e.f.ip6.arpa. 8.b.d.0.1.0.0.2.ip6.arpa.),
	(map { "$_.172.in-addr.arpa." } 16 .. 31),
	(map { "$_.100.in-addr.arpa." } 64 .. 127),
	join('.', ('0') x 31, '1', 'ip6.arpa.'),
	join('.', ('0') x 32, 'ip6.arpa.'),
);

# The records go into an auth zone for "." (zone file root.zone), which
# answers every name: data, CNAME chains followed within it, NODATA and
# NXDOMAIN with its SOA; nothing is ever resolved outside.  Local zones come
# first in unbound: a deny (refuse) zone drops (refuses) every query at or
# below its name but those matching the local data there, so the records of
# such a name are also given as local-data, and every name below it that
# has records gets a transparent zone, which falls through to the auth zone.
sub _unbound_conf {
	my ($u, $opt) = @_;
	my $d = $u->{dir};
	my @c = (
		'server:',
		"\tdirectory: \"$d\"",
		"\tusername: \"\"",
		"\tchroot: \"\"",
		"\tpidfile: \"$d/unbound.pid\"",
		"\tdo-daemonize: no",
		"\tuse-syslog: no",
		"\tlogfile: \"$u->{logfile}\"",
		"\tlog-time-ascii: yes",
		"\tverbosity: " . ($opt->{verbosity} // 1),
		"\tinterface: 127.0.0.1\@$u->{port}",
		($u->{ipv6} ? "\tinterface: ::1\@$u->{port}" : ()),
		"\tport: $u->{port}",
		"\tdo-ip4: yes",
		"\tdo-ip6: " . ($u->{ipv6} ? 'yes' : 'no'),
		"\tdo-udp: yes",
		"\tdo-tcp: yes",
		"\tinterface-automatic: no",
		"\taccess-control: 127.0.0.0/8 allow",
		"\taccess-control: ::1/128 allow",
		"\tso-reuseport: no",
		"\tnum-threads: 1",
		"\toutgoing-range: 32",
		"\tnum-queries-per-thread: 32",
		"\tincoming-num-tcp: 32",
		"\tmodule-config: \"iterator\"",
		"\tdo-not-query-localhost: yes",
		"\tprefetch: no",
		"\tminimal-responses: yes",
		"\tlog-queries: " . ($opt->{log_queries} ? 'yes' : 'no'),
		"\tlog-local-actions: " . ($opt->{log_queries} ? 'yes' : 'no'),
	);
	push @c, map { "\tlocal-zone: \"$_\" nodefault" } @UNBOUND_DEFAULT_ZONES;
	my %special;
	$special{lc dns_escape_name($_)} = 'deny' for @{$u->{timeout}};
	$special{lc dns_escape_name($_)} = 'refuse' for @{$u->{refuse}};
	my (%owner, @zonefile);
	for my $rr (@{$u->{records}}) {
		die "GreydTest: unbound record has a newline: '$rr'\n" if $rr =~ /\n/;
		my ($o) = $rr =~ /^\s*(\S+)/ or die "GreydTest: bad unbound record '$rr'\n";
		$o .= '.' unless $o =~ /\.\z/;
		push @{$owner{lc $o}}, $rr;
		(my $line = $rr) =~ s/^\s*\S+/$o/;
		push @zonefile, $line;
	}
	my %zone = %special;
	for my $o (keys %owner) {
		if ($special{$o}) {
			for my $rr (@{$owner{$o}}) {
				(my $q = $rr) =~ s/'/\\039/g;
				push @c, "\tlocal-data: '$q'";
			}
			next;
		}
		for my $s (keys %special) {
			if ($s eq '.' || (length($o) > length($s)
			    && substr($o, -length($s) - 1) eq ".$s")) {
				$zone{$o} = 'transparent';
				last;
			}
		}
	}
	push @c, map { "\tlocal-zone: \"$_\" $zone{$_}" } sort keys %zone;
	push @c, map { "\t$_" } @{$opt->{server} // []};
	push @c, 'auth-zone:', "\tname: \".\"", "\tzonefile: \"$d/root.zone\"",
	    "\tfor-downstream: yes", "\tfor-upstream: yes", "\tfallback-enabled: no";
	push @c, 'remote-control:', "\tcontrol-enable: no";
	write_file("$d/root.zone", join("\n",
	    '$ORIGIN .',
	    '. 300 IN SOA ns.greydtest.invalid. hostmaster.greydtest.invalid. 1 3600 600 86400 300',
	    '. 300 IN NS ns.greydtest.invalid.',
	    @zonefile) . "\n", 0644);
	return join("\n", @c) . "\n";
}

sub _unbound_probe {
	my ($u, $timeout) = @_;
	my $res = Net::DNS::Resolver->new(
		nameservers => ['127.0.0.1'], port => $u->{port}, recurse => 1,
		udp_timeout => 0.3, retrans => 0.3, retry => 1, usevc => 0, defnames => 0, dnsrch => 0,
	);
	my $deadline = time + $timeout;
	while (time < $deadline) {
		return 1 if $res->send('greydtest-probe.invalid', 'A');
		return 0 if waitpid($u->{pid}, WNOHANG) == $u->{pid};
		sleep 0.02;
	}
	return 0;
}

sub start_unbound {
	my (%opt) = @_;
	require Net::DNS;
	my $n = ++$NAME_COUNT{unbound};
	my $name = $opt{name} // "unbound$n";
	my $dir = tempdir() . "/$name";
	mkdir $dir or die "GreydTest: mkdir $dir: $!\n";
	chmod 0755, $dir;
	my $u = {
		type => 'unbound', name => $name, dir => $dir, host => '127.0.0.1',
		conf => "$dir/unbound.conf", logfile => "$dir/unbound.log",
		ipv6 => $opt{ipv6} ? 1 : 0,
		records => [ @{$opt{records} // []} ],
		timeout => [ @{$opt{timeout} // []} ],
		refuse => [ @{$opt{refuse} // []} ],
		log_queries => $opt{log_queries} ? 1 : 0,
	};
	$u->{log} = $u->{logfile};     # for the failure diagnostics of _cleanup_all
	my $timeout = $opt{start_timeout} // 10;
	for my $attempt (1 .. 5) {
		my $port = $opt{port};
		while (!defined $port) {
			my $p = free_port(udp => 1, ipv6 => $u->{ipv6});
			$port = $p if _port_bindable('127.0.0.1', $p)
			    && (!$u->{ipv6} || _port_bindable('::1', $p));
		}
		$u->{port} = $port;
		write_file($u->{conf}, _unbound_conf($u, \%opt), 0644);
		unlink $u->{logfile};
		my $pid = fork() // die "GreydTest: fork: $!\n";
		if ($pid == 0) {
			open(STDIN, '<', '/dev/null');
			open(STDOUT, '>>', $u->{logfile}) or _exit(127);
			open(STDERR, '>&', \*STDOUT);
			exec('unbound', '-d', '-c', $u->{conf})
			    or do { print STDERR "exec unbound: $!\n"; _exit(127) };
		}
		$u->{pid} = $pid;
		_register($u);
		return $u if _unbound_probe($u, $timeout);
		my $why = unbound_log($u);
		stop_unbound($u);
		next if !defined $opt{port} && $why =~ /address already in use/i;
		my $check = '';
		if (open(my $fh, '-|', 'unbound-checkconf', $u->{conf})) {
			local $/;
			$check = <$fh> // '';
			close $fh;
			$check = "unbound-checkconf $u->{conf}:\n$check";
		}
		die "GreydTest: unbound $name did not answer on port $u->{port}:\n$why$check";
	}
	die "GreydTest: unbound $name: no usable port after 5 attempts\n";
}

sub stop_unbound {
	my ($u) = @_;
	return unless $u && $u->{pid};
	my $pid = $u->{pid};
	kill('TERM', $pid);
	_wait_pid($pid, 5);
	_unregister($u);
	$u->{pid} = undef;
	return 1;
}

sub unbound_log {
	my ($u) = @_;
	return read_file($u->{logfile}) // '';
}

# The queries unbound logged (log_queries => 1), oldest first:
# [client address, name without the final dot, type, class] each.
sub unbound_queries {
	my ($u) = @_;
	my @q;
	for (split /\n/, unbound_log($u)) {
		push @q, [$1, $2, $3, $4] if /\binfo: (\S+) (\S+?)\.? (\S+) (\S+)$/ && $2 ne 'greydtest-probe.invalid';
	}
	return @q;
}

END {
	if ($$ == $OWNER_PID) {
		my $status = $?;
		my @u = grep { $_->{type} eq 'unbound' } values %RUNNING;
		if (@u && !Test::More->builder->is_passing) {
			Test::More::diag("---- last lines of $_->{name} log ($_->{logfile}):\n"
			    . _tail(unbound_log($_), 40)) for @u;
		}
		stop_unbound($_) for @u;
		$? = $status;
	}
}

# ---------------------------------------------------------------------- greyd

sub greyd_binary { return "$BUILD_DIR/greyd/greyd" }
sub greydb_binary { return "$BUILD_DIR/tools/greydb" }
sub greyspf_binary { return "$BUILD_DIR/tools/greyspf" }

sub _conf_value {
	my ($v) = @_;
	return ref($v) eq 'ARRAY' ? join(' ', @$v) : $v;
}

sub _parse_listen {
	my ($listen) = @_;
	my @out;
	for my $item (split /[\s,]+/, $listen) {
		next if $item eq '';
		if ($item =~ /^\[([^\]]+)\]:(\d+)$/ || $item =~ /^([^:]+):(\d+)$/) {
			push @out, [$1, $2];
		}
	}
	return @out;
}

# Inodes of the listening TCP sockets on ($host, $port).
sub _listen_inodes {
	my ($host, $port) = @_;
	my $v6 = $host =~ /:/;
	my $want = $v6 ? ($host eq '::' ? '0' x 32 : '00000000000000000000000001000000')
	               : join('', reverse map { sprintf '%02X', $_ } split /\./, $host);
	my %ino;
	my $tab = read_file($v6 ? '/proc/net/tcp6' : '/proc/net/tcp') // '';
	for my $line (split /\n/, $tab) {
		my @f = split ' ', $line;
		next unless @f > 9 && $f[3] eq '0A';      # LISTEN
		my ($a, $p) = split /:/, $f[1];
		$ino{$f[9]} = 1 if hex($p) == $port && ($a eq $want || $a =~ /^0+$/);
	}
	return \%ino;
}

sub _pid_listens_on {
	my ($pid, $host, $port) = @_;
	my $ino = _listen_inodes($host, $port);
	return 0 unless %$ino;
	opendir(my $dh, "/proc/$pid/fd") or return 0;
	for my $fd (readdir $dh) {
		my $l = readlink("/proc/$pid/fd/$fd") // next;
		return 1 if $l =~ /^socket:\[(\d+)\]$/ && $ino->{$1};
	}
	return 0;
}

sub _greyd_spawn {
	my ($g) = @_;
	my $bin = greyd_binary();
	die "GreydTest: $bin is not built\n" unless -x $bin;
	my @argv = ($bin, '-d', '-f', $g->{conf}, @{$g->{args}});
	my $pid = fork() // die "GreydTest: fork: $!\n";
	if ($pid == 0) {
		$ENV{$_} = $g->{env}{$_} for keys %{$g->{env}};
		open(STDIN, '<', '/dev/null');
		open(STDOUT, '>>', $g->{log}) or _exit(127);
		open(STDERR, '>&', \*STDOUT);
		exec(@argv) or do { print STDERR "exec $bin: $!\n"; _exit(127) };
	}
	$g->{pid} = $pid;
	$g->{status} = undef;
	$g->{exit} = undef;
	_register($g);

	# Ready when the process itself holds a listening socket on every listen
	# address: no probe connection, so greyd's counters start clean.
	my $deadline = time + $g->{start_timeout};
	while (1) {
		my $r = waitpid($pid, WNOHANG);
		if ($r == $pid) {
			$g->{status} = $?;
			$g->{exit} = _decode_status($?);
			_unregister($g);
			die "GreydTest: $g->{name} exited with status $g->{exit} while starting:\n"
			    . greyd_log($g) . "\n";
		}
		return $g unless grep { !_pid_listens_on($pid, @$_) } @{$g->{listen_addrs}};
		if (time > $deadline) {
			stop_greyd($g);
			die "GreydTest: $g->{name} not listening on $g->{settings}{listen} after "
			    . "$g->{start_timeout} s:\n" . greyd_log($g) . "\n";
		}
		sleep 0.02;
	}
}

sub start_greyd {
	my (%opt) = @_;
	my %control = map { $_ => delete $opt{$_} }
	    grep { exists $opt{$_} } qw(postfix name args env start_timeout conf);
	my $n = ++$NAME_COUNT{greyd};
	my $name = $control{name} // ($n == 1 ? 'greyd' : "greyd$n");
	my $dir = tempdir();
	my %set = (%{$control{conf} // {}}, %opt);
	my $auto_listen = !exists $set{listen};
	$set{listen} //= '127.0.0.1:' . free_port();
	$set{db_dir} //= $name eq 'greyd' ? "$dir/db" : "$dir/$name-db";
	$set{greylist_delay} //= '2s';
	if (my $pf = $control{postfix}) {
		$set{backend} //= "127.0.0.1:$pf->{port}";
		$set{backend_proxy} //= $pf->{proxy} eq 'haproxy' ? 'haproxy'
		    : $pf->{xclient} ? 'xclient' : 'none';
	}
	# greyd drops privileges after binding; as root, run as "nobody" (the
	# default user "greyd" does not exist on a test machine).
	$set{user} //= 'nobody' if $> == 0;
	if (!-d $set{db_dir}) {
		mkdir $set{db_dir} or die "GreydTest: mkdir $set{db_dir}: $!\n";
		if (defined $set{user} && $set{user} ne '' && $> == 0) {
			my ($uid, $gid) = (getpwnam($set{user}))[2, 3];
			chown($uid, $gid, $set{db_dir}) if defined $uid;
		}
	}
	my $g = {
		type => 'greyd',
		name => $name,
		dir => $dir,
		conf => "$dir/$name.conf",
		log => "$dir/$name.log",
		settings => \%set,
		args => $control{args} // [],
		env => $control{env} // {},
		start_timeout => $control{start_timeout} // 10,
		postfix => $control{postfix},
	};
	$g->{logfile} = $g->{log};
	for my $attempt (1 .. 3) {
		my $text = "# written by GreydTest for $name\n";
		$text .= "$_ = " . _conf_value($set{$_}) . "\n"
		    for grep { defined $set{$_} } sort keys %set;
		write_file($g->{conf}, $text, 0644);
		$g->{listen_addrs} = [_parse_listen($set{listen})];
		die "GreydTest: cannot parse listen = $set{listen}\n" unless @{$g->{listen_addrs}};
		($g->{host}, $g->{port}) = @{$g->{listen_addrs}[0]};
		my $ok = eval { _greyd_spawn($g); 1 };
		return $g if $ok;
		die $@ unless $auto_listen && $@ =~ /address already in use/i;
		write_file($g->{log}, '');
		$set{listen} = '127.0.0.1:' . free_port();
	}
	die "GreydTest: $name: no usable port after 3 attempts\n";
}

sub restart_greyd {
	my ($g) = @_;
	stop_greyd($g) if $g->{pid};
	return _greyd_spawn($g);
}

sub _sanitizer_check {
	my ($what, $text) = @_;
	return unless $ENV{GREYD_SANITIZED};
	return unless defined $text && $text =~ $SANITIZER_RE;
	Test::More::fail("$what: sanitizer report");
	Test::More::diag(_tail($text, 60));
}

sub stop_greyd {
	my ($g, $timeout) = @_;
	return $g->{exit} unless $g && $g->{pid};
	my $pid = $g->{pid};
	kill('TERM', $pid);
	my $st = _wait_pid($pid, $timeout // 10);
	if ($st < 0) {
		Test::More::diag("GreydTest: $g->{name} ignored SIGTERM for "
		    . ($timeout // 10) . " s, killed");
		$g->{killed} = 1;
		$st = 9;
	}
	_unregister($g);
	$g->{pid} = undef;
	$g->{status} = $st;
	$g->{exit} = _decode_status($st);
	_sanitizer_check($g->{name}, greyd_log($g));
	return $g->{exit};
}

sub greyd_log {
	my ($g) = @_;
	return read_file($g->{log}) // '';
}

sub run_greydb {
	my ($g, @args) = @_;
	my %o = ref($args[0]) eq 'HASH' ? %{shift @args} : ();
	my $conf = ref($g) ? $g->{conf} : $g;
	my $bin = greydb_binary();
	die "GreydTest: $bin is not built\n" unless -x $bin;
	my $dir = tempdir();
	my $id = ++$NAME_COUNT{greydb};
	my ($out, $err) = ("$dir/greydb-$id.out", "$dir/greydb-$id.err");
	my $in;
	if (defined $o{stdin}) {
		$in = write_file("$dir/greydb-$id.in", $o{stdin});
	}
	my $pid = fork() // die "GreydTest: fork: $!\n";
	if ($pid == 0) {
		$ENV{$_} = $o{env}{$_} for keys %{$o{env} // {}};
		open(STDIN, '<', $in // '/dev/null');
		open(STDOUT, '>', $out) or _exit(127);
		open(STDERR, '>', $err) or _exit(127);
		exec($bin, '-f', $conf, @args) or do { print STDERR "exec $bin: $!\n"; _exit(127) };
	}
	my $st = _wait_pid($pid, $o{timeout} // 30);
	my ($so, $se) = (read_file($out) // '', read_file($err) // '');
	unlink grep { defined } $out, $err, $in;
	$se .= "GreydTest: greydb timed out\n" if $st < 0;
	_sanitizer_check("greydb @args", $se);
	return (_decode_status($st) // 124, $so, $se);
}

# ---------------------------------------------------------------- utilities

sub wait_until {
	my ($cond, $timeout, $interval) = @_;
	my $deadline = time + ($timeout // 10);
	while (1) {
		my $r = $cond->();
		return $r if $r;
		return undef if time > $deadline;
		sleep($interval // 0.05);
	}
}

# Wait for a line matching $re in a log (a path, a Postfix or greyd object);
# returns the first matching line, or undef after $timeout seconds.
sub wait_for_log {
	my ($src, $re, $timeout) = @_;
	my $path = ref($src) ? $src->{logfile} : $src;
	return wait_until(sub {
		for my $line (split /\n/, read_file($path) // '') {
			return $line if $line =~ $re;
		}
		return undef;
	}, $timeout);
}

sub proxy_v1_header {
	my ($src, $sport, $dst, $dport) = @_;
	my $fam = $src =~ /:/ ? 'TCP6' : 'TCP4';
	return "PROXY $fam $src $dst $sport $dport\r\n";
}

sub send_proxy_v1 {
	my ($sock, $src, $sport, $dst, $dport) = @_;
	my $raw = ref($sock) && $sock->isa('GreydTest::SMTP') ? $sock->sock : $sock;
	$dst //= $raw->peerhost;
	$dport //= $raw->peerport;
	$sport //= $raw->sockport;
	my $hdr = proxy_v1_header($src, $sport, $dst, $dport);
	if (ref($sock) && $sock->isa('GreydTest::SMTP')) {
		return $sock->send_raw($hdr);
	}
	return defined syswrite($raw, $hdr);
}

sub smtp_connect {
	return GreydTest::SMTP->new(@_);
}

# ================================================================ SMTP client

package GreydTest::SMTP;

use strict;
use warnings;
use Errno qw(EINTR EAGAIN EWOULDBLOCK);
use IO::Select;
use IO::Socket::IP;
use Time::HiRes qw(time);

sub new {
	my ($class, %opt) = @_;
	my $host = $opt{host} // '127.0.0.1';
	my $timeout = $opt{timeout} // 10;
	die "smtp_connect: port is required\n" unless $opt{port};
	my %local;
	$local{LocalHost} = $opt{addr} if defined $opt{addr};
	$local{LocalPort} = $opt{lport} if defined $opt{lport};
	my $sock = IO::Socket::IP->new(
		PeerHost => $host, PeerPort => $opt{port}, Proto => 'tcp',
		Timeout => $timeout, %local,
	) or die "smtp_connect: [$host]:$opt{port}"
	    . (defined $opt{addr} ? " from $opt{addr}" : '') . ": $@\n";
	binmode $sock;
	$sock->blocking(0);
	return bless {
		sock => $sock, buf => '', timeout => $timeout,
		banner_read => 0, eof => 0, error => undef,
		host => $host, port => $opt{port},
	}, $class;
}

sub sock { $_[0]{sock} }
sub sockhost { $_[0]{sock}->sockhost }
sub sockport { $_[0]{sock}->sockport }
sub error { $_[0]{error} }

sub send_raw {
	my ($self, $bytes) = @_;
	my $deadline = time + $self->{timeout};
	my $sel = IO::Select->new($self->{sock});
	while (length $bytes) {
		my $n = syswrite($self->{sock}, $bytes);
		if (defined $n) {
			substr($bytes, 0, $n, '');
			next;
		}
		if ($! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR) {
			my $left = $deadline - time;
			if ($left <= 0) { $self->{error} = 'write timeout'; return 0 }
			$sel->can_write($left);
			next;
		}
		$self->{error} = "write: $!";
		return 0;
	}
	return 1;
}

sub send_line {
	my ($self, $line) = @_;
	return $self->send_raw("$line\r\n");
}

# Read more input into the buffer; 1 if data came, 0 on timeout or EOF.
sub _fill {
	my ($self, $deadline) = @_;
	return 0 if $self->{eof};
	my $sel = IO::Select->new($self->{sock});
	while (1) {
		my $left = $deadline - time;
		if ($left <= 0) { $self->{error} = 'timeout'; return 0 }
		next unless $sel->can_read($left);
		my $n = sysread($self->{sock}, my $chunk, 65536);
		if (!defined $n) {
			next if $! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR;
			$self->{error} = "read: $!";
			$self->{eof} = 1;
			return 0;
		}
		if ($n == 0) { $self->{error} = 'eof'; $self->{eof} = 1; return 0 }
		$self->{buf} .= $chunk;
		return 1;
	}
}

sub read_line {
	my ($self, $timeout) = @_;
	my $deadline = time + ($timeout // $self->{timeout});
	while (1) {
		if ($self->{buf} =~ s/\A([^\n]*\n)//) {
			return $1;
		}
		return undef unless $self->_fill($deadline);
	}
}

# One reply, multi-line included.  (code, text): text is every line of the
# reply without its CRLF, joined with "\n".  On timeout or EOF code is undef,
# text holds what arrived, and ->error says why.
sub read_reply {
	my ($self, $timeout) = @_;
	my $deadline = time + ($timeout // $self->{timeout});
	$self->{error} = undef;
	$self->{banner_read} = 1;
	my (@lines, $raw);
	$raw = '';
	while (1) {
		my $left = $deadline - time;
		my $line = $self->read_line($left > 0 ? $left : 0.001);
		if (!defined $line) {
			my $partial = join("\n", @lines, ($self->{buf} ne '' ? $self->{buf} : ()));
			$self->{last_raw} = $raw . $self->{buf};
			return wantarray ? (undef, $partial) : undef;
		}
		$raw .= $line;
		(my $text = $line) =~ s/\r?\n\z//;
		push @lines, $text;
		if ($text =~ /^(\d{3})-/) {
			next;
		}
		$self->{last_raw} = $raw;
		my $all = join("\n", @lines);
		if ($text =~ /^(\d{3})(?: |\z)/) {
			$self->{last_code} = $1;
			return wantarray ? ($1 + 0, $all) : $1 + 0;
		}
		$self->{error} = 'malformed reply';
		return wantarray ? (undef, $all) : undef;
	}
}

sub banner {
	my ($self, $timeout) = @_;
	if (!$self->{banner_read}) {
		my ($code, $text) = $self->read_reply($timeout);
		$self->{banner} = [$code, $text];
	}
	my ($code, $text) = @{$self->{banner} // [undef, undef]};
	return wantarray ? ($code, $text) : $code;
}

sub cmd {
	my ($self, $line, $timeout) = @_;
	$self->banner($timeout) unless $self->{banner_read};
	unless ($self->send_raw("$line\r\n")) {
		return wantarray ? (undef, $self->{error}) : undef;
	}
	return $self->read_reply($timeout);
}

# DATA, then the message (bare LF made CRLF, dot-stuffed) and the final dot.
# Returns the 354 failure or the reply to the message.
sub data {
	my ($self, $msg, $timeout) = @_;
	my ($code, $text) = $self->cmd('DATA', $timeout);
	return ($code, $text) unless defined $code && $code == 354;
	$msg =~ s/\r?\n/\r\n/g;
	$msg .= "\r\n" unless $msg =~ /\r\n\z/ || $msg eq '';
	$msg =~ s/^\./../mg;
	$self->send_raw($msg . ".\r\n") or return (undef, $self->{error});
	return $self->read_reply($timeout);
}

# EHLO, MAIL, every RCPT, DATA when a recipient was accepted.  Returns a hash:
# {ehlo, mail, rcpt => [...], data} each [code, text], and ok when DATA got 250.
sub send_mail {
	my ($self, %o) = @_;
	my %r;
	my @to = ref $o{to} ? @{$o{to}} : ($o{to} // ());
	$r{ehlo} = [$self->cmd('EHLO ' . ($o{helo} // 'client.greyd.test'))];
	$r{mail} = [$self->cmd('MAIL FROM:<' . ($o{from} // '') . '>')];
	return \%r unless ($r{mail}[0] // 0) == 250;
	$r{rcpt} = [map { [$self->cmd("RCPT TO:<$_>")] } @to];
	return \%r unless grep { ($_->[0] // 0) =~ /^25/ } @{$r{rcpt}};
	my $body = $o{data} // "Subject: greyd test\n\nhello\n";
	$r{data} = [$self->data($body)];
	$r{ok} = ($r{data}[0] // 0) == 250;
	return \%r;
}

# Wait until the peer closes; returns everything that arrived meanwhile, or
# undef if it is still open after $timeout seconds.
sub wait_closed {
	my ($self, $timeout) = @_;
	my $deadline = time + ($timeout // $self->{timeout});
	while ($self->_fill($deadline)) { }
	return undef unless $self->{eof};
	my $all = $self->{buf};
	$self->{buf} = '';
	return $all;
}

sub quit {
	my ($self) = @_;
	my @r = $self->cmd('QUIT');
	$self->close;
	return wantarray ? @r : $r[0];
}

sub close {
	my ($self) = @_;
	if ($self->{sock}) {
		CORE::close($self->{sock});
		$self->{sock} = undef;
	}
}

sub DESTROY { $_[0]->close }

1;

__END__

=head1 NAME

GreydTest - integration-test library for greyd: private Postfix, greyd runner, SMTP client

=head1 SYNOPSIS

    use lib 't/lib';
    use Test::More;
    use GreydTest;

    my $pf = start_postfix(proxy => 'haproxy', users => [qw(alice bob postmaster)]);
    my $g  = start_greyd(postfix => $pf, greylist_delay => '1s');

    my $c = smtp_connect(port => $g->{port}, addr => '127.0.0.5');
    is($c->banner, 220, 'banner');
    my ($code, $text) = $c->cmd('EHLO client.test');
    ($code, $text) = $c->cmd('MAIL FROM:<s@sender.test>');
    ($code, $text) = $c->cmd('RCPT TO:<alice@example.com>');
    like($text, qr/Greylisted/, 'first attempt greylisted');
    $c->quit;

    my @mail = wait_for_mail($pf, 1, 10);
    is(stop_greyd($g), 0, 'greyd exits 0 on SIGTERM');
    done_testing;

Tests run from the repository root (C<prove -r t/>).  Every process started
through this library is stopped by PID when the test ends, dies, or gets
SIGINT/SIGTERM/SIGHUP/SIGQUIT; a watchdog process also cleans up if the test
itself is killed with SIGKILL.  Nothing here uses the host's DNS, port 25
or port 53: DNS comes from rbldnsd on a loopback port (C<start_rbldnsd>).

=head1 ENVIRONMENT

=over

=item GREYD_BUILD

Build directory holding F<greyd/greyd> and F<tools/greydb> (default: the
repository root).  Relative paths are taken from the directory the test
started in.

=item GREYD_SANITIZED

The binaries are ASan/UBSan builds: after greyd stops, and after each greydb
run, the test fails if the output contains C<ERROR: AddressSanitizer>,
C<runtime error:> or C<LeakSanitizer>.

=item GREYD_KEEP

Keep the test's temp dir (its path is printed) instead of removing it.

=back

=head1 FILES AND DIRECTORIES

=head2 tempdir()

The test's own temp dir, created on first call under C<$TMPDIR> (or F</tmp>
when that is not searchable by others), mode 0755 so the postfix user and
greyd's unprivileged user can traverse it; the same path on every call.
Removed at exit after every process is stopped, unless C<GREYD_KEEP> is set.
(Importing File::Temp's own C<tempdir> into the same test would clash.)

=head2 read_file($path)

The whole file as bytes, or undef if it cannot be opened.

=head2 write_file($path, $content [, $mode])

Writes the file (bytes), optionally chmods it; returns the path.

=head2 wait_until($coderef, $timeout = 10 [, $interval = 0.05])

Polls the sub until it returns true; returns that value, or undef on timeout.

=head2 wait_for_log($file_or_object, qr/.../, $timeout = 10)

Polls a log (a path, or a Postfix or greyd object) for a line matching the
pattern; returns the first such line or undef.

=head1 PORTS

=head2 free_port(ipv6 => 0, udp => 0)

A TCP port (a UDP port with C<udp =E<gt> 1>) that can be bound on 127.0.0.1
(and on ::1 too with C<ipv6 =E<gt> 1>).  Ports are picked at random below the kernel's ephemeral range (so they
never collide with the local ports of outgoing test connections) and reserved
in F</tmp/greydtest-ports/PORT> for the life of the test process, so tests
running in parallel never get the same port.  Reservations of dead processes
are reclaimed.

=head1 POSTFIX

=head2 start_postfix(%opt)

Starts a private Postfix instance in C<tempdir()/pfN> and returns a hash:

    { name, dir, config_dir, queue_dir, data_dir, maildir, logfile,
      port, host => '127.0.0.1', pid, domain, users, proxy, xclient, ipv6,
      uid, gid, start_time }

C<maildir> is the virtual mailbox base: user C<alice@example.com> receives in
C<maildir/example.com/alice/{new,cur}>.  C<logfile> is the instance's maillog.
C<pid> is the master's PID.  Options:

=over

=item users => [qw(alice bob postmaster)]

Valid mailboxes; bare local parts get C<@domain>.  Any other recipient in the
domain is rejected at RCPT with C<550 5.1.1 ... User unknown in virtual
mailbox table>.

=item domain => 'example.com'

The virtual mailbox domain.  Other domains are not relayed (C<554 5.7.1
Relay access denied> for clients outside mynetworks; from loopback clients
mail to them bounces through the error transport: nothing ever leaves).

=item proxy => 'haproxy' | 'none'

Default C<haproxy>: the listener has C<smtpd_upstream_proxy_protocol =
haproxy> and waits for a PROXY v1/v2 header before its banner (without one,
C<421 4.3.0> after 5 s).

=item forbid_bare_newline => 'yes' | 'reject' | 'no' | undef

C<smtpd_forbid_bare_newline> on the listener (with an empty
C<smtpd_forbid_bare_newline_exclusions>, whose default C<$mynetworks> would
exempt every loopback client).  Default C<yes> with C<proxy =E<gt> 'haproxy'>,
unset otherwise.  In Postfix 3.7.11 C<yes> means C<normalize>: only
C<CRLF.CRLF> ends DATA, but a bare LF inside a line is accepted as a line end.
C<reject> answers C<550 5.5.2 Error: bare E<lt>LFE<gt> received> and
disconnects.

=item xclient => 1

C<smtpd_authorized_xclient_hosts = 127.0.0.0/8, [::1]/128> on the listener.

=item ipv6 => 1

Also listen on [::1]:PORT (same port).

=item port => N

A fixed port instead of a free one.

=item main => { name => value, ... }

Extra or replaced main.cf settings.

=item listener => { name => value, ... }

Extra C<-o> options on the smtpd listener(s).

=item name => 'pfN', start_timeout => 10

=back

Startup takes well under a second; it dies with the start output and the
maillog if Postfix fails, and retries with another port if the chosen one was
taken meanwhile.  Readiness is checked by a real session (PROXY header for
127.0.0.1 when needed, banner 220, QUIT), so the maillog starts with one
C<connect from unknown[127.0.0.1]> line per listener.

=head2 stop_postfix($pf)

C<postfix -c DIR stop>, then SIGKILL to the master and its children if they
are still there.  Called automatically at exit.

=head2 postfix_log($pf)

The maillog text.

=head2 mail_files($pf [, $user])

Delivered message files now in the Maildirs (C<new/> and C<cur/>), oldest
first; C<$user> is C<alice> or C<alice@example.com>.

=head2 wait_for_mail($pf, $n = 1, $timeout = 10 [, $user])

Waits until at least C<$n> messages are delivered and returns the list of
paths; after the timeout returns what is there (compare the count).

=head1 RBLDNSD

=head2 start_rbldnsd(%opt)

Writes one file per zone in C<tempdir()/dnsN> and runs C<rbldnsd -n -u rbldns
-b 127.0.0.1/PORT ZONE:TYPE:FILE...> on a free UDP port (stdout and stderr in
C<rbldnsd.log>), registered for cleanup like every other process here.
Returns once it answers a query (made with Net::DNS), or dies with its log.

    my $dns = start_rbldnsd(zones => {
        'bl.test'  => ['ip4set',  ":127.0.0.2:Listed: see http://bl.test/\$\n127.0.0.2\n"],
        'gen.test' => ['generic', "host A 192.0.2.1\nhost TXT \"v=spf1 -all\"\n"],
    });
    # greyd: dns_servers = 127.0.0.1:$dns->{port}

Returns C<{ pid, port, host =E<gt> '127.0.0.1', dir, logfile, name, zones }>.
Options: C<zones =E<gt> { NAME =E<gt> [TYPE, TEXT] }> (required; TYPE is an
rbldnsd dataset: ip4set, ip4trie, dnset, generic, combined ...), C<ipv6 =E<gt>
1> (also listen on ::1, same port), C<port>, C<args =E<gt> [more rbldnsd
options]> (e.g. C<-t 60>), C<name>, C<start_timeout =E<gt> 10>.

What rbldnsd does (rbldnsd(8)): UDP only, no TCP; A and TXT records (SOA and
NS only from C<$SOA>/C<$NS> lines); a TXT record is a single string, cut to
255 octets (the generic dataset keeps the quoted text as one string, quotes
inside included); names outside its zones get REFUSED; NXDOMAIN and NODATA
answers carry the zone's SOA when it has one; EDNS0 is understood.  Default
TTL 35m unless C<$TTL> or C<-t>.  It cannot delay its answers: a C<delay>
option dies.  After changing a zone file, C<kill('HUP', $dns-E<gt>{pid})>
reloads it.

=head2 stop_rbldnsd($dns)

SIGTERM, and SIGKILL after 5 s.

=head2 rbldnsd_log($dns)

=head1 UNBOUND

=head2 start_unbound(%opt)

Runs Debian's C<unbound -d -c DIR/unbound.conf> (as root, no chroot, no
daemonizing, no remote control, no trust anchor, C<module-config:
"iterator">, one thread, log in C<DIR/unbound.log>) in C<tempdir()/unboundN>
on a free port, UDP and TCP, of 127.0.0.1 (and ::1 with C<ipv6 =E<gt> 1>),
registered for cleanup like every other process here.  Returns once it
answers a query (Net::DNS), or dies with its log and the output of
C<unbound-checkconf>; a port taken meanwhile means another try.

    my $dns = start_unbound(log_queries => 1, records => [
        'spf.test. 300 IN TXT ' . dns_txt_rdata('v=spf1 ip4:192.0.2.0/24', ' -all'),
        'spf.test. 300 IN MX 10 mx.spf.test.',
        'mx.spf.test. 300 IN A 192.0.2.1',
    ], timeout => ['slow.test']);
    # greyd: dns_servers = 127.0.0.1:$dns->{port}

Returns C<{ pid, port, host =E<gt> '127.0.0.1', dir, conf, logfile, name }>.
Options:

=over

=item records => [ 'name. TTL IN TYPE rdata', ... ]

Master-file lines (owner names absolute; see C<dns_escape_name> and
C<dns_txt_rdata>).  They make an auth zone for "." (with an SOA, minimum
300 s), so every name is answered from them: data, CNAME chains followed,
NODATA, NXDOMAIN with the SOA.  No query ever leaves the machine.
unbound's default local zones (localhost, test, invalid, the AS112 reverse
zones ...) are turned off, so names in them are served from the records too.

=item timeout => [ 'name', ... ]

Queries for these names and every name below them go unanswered (a
C<deny> local zone): a UDP client times out; a TCP connection is closed
without an answer.  Exceptions: a query whose name and type match records
of the timeout name itself is answered; a name below it that has records is
served normally (NODATA included).

=item refuse => [ 'name', ... ]

The same with REFUSED answers (a C<refuse> local zone).

=item log_queries => 1

C<log-queries> and C<log-local-actions>: every query is logged when it
arrives (see C<unbound_queries>).

=item ipv6 => 1, port => N, name => 'unboundN', start_timeout => 10,
verbosity => 1, server => [ 'extra: setting', ... ]

=back

=head2 stop_unbound($u)

SIGTERM, and SIGKILL after 5 s.  Also done at exit for every instance still
running.

=head2 unbound_log($u)

The log text.

=head2 unbound_queries($u)

The queries logged (with C<log_queries>), oldest first, each C<[client,
name without the final dot, type, class]>; the start-up probe is left out.
Octets outside printable ASCII in names are logged as C<?>.

=head2 dns_escape_name($name)

The name in master-file syntax, with a final dot: every octet outside
C<[A-Za-z0-9_*-]> of a label as C<\DDD>.

=head2 dns_txt_rdata(@strings)

TXT (or SPF) rdata: each string quoted, every octet outside printable ASCII
and C<"> C<\> C<'> as C<\DDD>; a string longer than 255 octets becomes
several; no strings at all gives the empty rdata C<\# 0>.  Strings are octets
(a character above 255 is taken as UTF-8).

=head1 GREYD

=head2 start_greyd(%opt)

Writes C<tempdir()/greyd.conf> (C<greydN.conf> for later instances), runs
C<$GREYD_BUILD/greyd/greyd -d -f CONF> with stdout and stderr appended to
C<greyd.log>, and returns once the greyd process itself has a listening socket
on every C<listen> address (found through F</proc>, without connecting, so no
probe session shows in greyd's counters).  Dies with the log if greyd exits or
is not listening after C<start_timeout>.  Returns:

    { pid, port, host, conf, dir, log, name, settings => {...}, postfix }

Control options: C<postfix =E<gt> $pf> (sets the backend defaults),
C<name>, C<args =E<gt> [extra command-line arguments]>, C<env =E<gt> {VAR =E<gt>
value}>, C<start_timeout =E<gt> 10>, C<conf =E<gt> {settings}>.  Every other
key is a greyd.conf setting (array refs are joined with spaces; undef omits
the setting).  Defaults:

    listen         = 127.0.0.1:<free port>
    db_dir         = DIR/db           (created; DIR/<name>-db for later instances)
    greylist_delay = 2s
    backend        = 127.0.0.1:<postfix port>          (with postfix => $pf)
    backend_proxy  = haproxy | xclient | none          (from the instance)
    user           = nobody           (when run as root; db_dir is chowned to it)

=head2 stop_greyd($g [, $timeout = 10])

SIGTERM, wait up to C<$timeout> seconds, then SIGKILL.  Returns the exit
status (128+signal if killed by a signal; C<$g-E<gt>{status}> has the raw
wait status).  Under C<GREYD_SANITIZED> a sanitizer report in the log fails
the test.

=head2 restart_greyd($g)

Stops greyd if running and starts it again with the same configuration, log
(appended) and database.

=head2 greyd_log($g)

The log text.

=head2 run_greydb($g_or_conf_path, [\%opt,] @args)

Runs C<$GREYD_BUILD/tools/greydb -f CONF @args>; returns C<(exit status,
stdout, stderr)>.  Options: C<stdin =E<gt> $bytes>, C<timeout =E<gt> 30>,
C<env =E<gt> {...}>.  A timeout kills it and returns 124.

=head2 greyd_binary(), greydb_binary(), greyspf_binary()

Absolute paths of the binaries used.

=head1 SMTP CLIENT

=head2 smtp_connect(port => P, host => '127.0.0.1', addr => LOCALADDR, lport => N, timeout => 10)

Connects (to C<host>, C<127.0.0.1> or C<::1>) from local address C<addr> (any
127.0.0.0/8 address; the kernel's choice if omitted) and returns a
GreydTest::SMTP object.  Dies if the connection fails (wrap in C<eval> to test
a refusal).  Nothing is read at connect time, so a PROXY header or a pregreet
can be sent before the banner.  Every read and write has a timeout
(C<timeout>, default 10 s), so a hung daemon fails the test instead of
hanging it.

=head2 Methods

=over

=item $c->banner([$timeout])

Reads the greeting (once); returns the code, or (code, text) in list context.

=item $c->cmd($line [, $timeout])

Reads the banner first if nothing was read yet, sends C<$line> with CRLF and
reads one reply: (code, text) in list context, code in scalar context.
C<text> is the whole reply, every line with its code, joined with C<"\n">
(multi-line C<ddd-> replies included).  Code is undef on timeout, EOF or a
malformed reply; see C<$c-E<gt>error> (C<timeout>, C<eof>, ...) and C<text>
for the partial input.

=item $c->read_reply([$timeout]), $c->read_line([$timeout])

Read one reply / one raw line (with its line end).  C<$c-E<gt>{last_raw}> holds
the raw bytes of the last reply, to check CRLF.

=item $c->send_raw($bytes), $c->send_line($line)

Write bytes as they are / a line plus CRLF.  False on error (the peer closed:
SIGPIPE is ignored).

=item $c->data($message [, $timeout])

DATA; on 354 sends the message (line ends made CRLF, dot-stuffed) and the
final dot; returns the last reply.

=item $c->send_mail(from => S, to => R | [R...], data => MSG, helo => H)

EHLO, MAIL, each RCPT, and DATA if a recipient got 25x.  Returns
C<{ehlo, mail, rcpt =E<gt> [...], data}> (each C<[code, text]>) and C<ok>.

=item $c->wait_closed([$timeout])

Waits for the peer to close; returns what arrived meanwhile, or undef if the
connection is still open after the timeout.

=item $c->quit, $c->close, $c->sock, $c->sockhost, $c->sockport, $c->error

=back

=head2 send_proxy_v1($client_or_socket, $src, $sport, $dst, $dport)

Sends C<PROXY TCP4|TCP6 src dst sport dport\r\n> (TCP6 when C<$src> has a
colon).  C<$dst>/C<$dport> default to the connection's peer, C<$sport> to its
local port.

=head2 proxy_v1_header($src, $sport, $dst, $dport)

The header as a string.

=head1 THE PRIVATE POSTFIX INSTANCE

What running Postfix 3.7 (Debian 12) from a private directory as root takes:

=over

=item *

Its own C<config_directory> (C<postfix -c DIR>), C<queue_directory> and
C<data_directory>; C<meta_directory>, C<daemon_directory> and
C<shlib_directory> stay the system's.  As root no
C<alternate_config_directories> entry is needed, and F</etc/postfix/main.cf>
need not exist.

=item *

The queue directories are created here with postfix-files' owners and modes
(C<public> and C<maildrop> group C<postdrop>) and C<quick-start> is touched,
which makes C<postfix start> skip C<post-install create-missing> and the
integrity checks (1.5 s saved per start).  C<data_directory> is owned by
C<postfix> (the master takes C<master.lock> there).

=item *

C<maillog_file> with C<maillog_file_prefixes> naming the instance dir, and a
C<postlog unix-dgram> service in master.cf, or nothing is logged (no syslog
daemon here).

=item *

No chroot for any service (the Debian master.cf chroots most of them), and
only the services needed: one smtpd listener, pickup, cleanup, qmgr, rewrite,
bounce/defer/trace, verify, flush, proxymap/proxywrite, showq, error/retry,
discard, virtual, anvil, scache, postlog.

=item *

No DNS: C<smtpd_peername_lookup = no>, C<smtp_dns_support_level = disabled>,
C<default_transport> and C<relay_transport> are C<error>, so no smtp client
ever runs; C<inet_protocols = ipv4> unless C<ipv6>.

=item *

Virtual delivery as the postfix uid/gid (C<virtual_uid_maps = static:UID>;
the postfix uid is above C<virtual_minimum_uid = 100>) into
C<virtual_mailbox_base> owned by postfix, from a C<texthash:> map (no postmap).

=item *

C<compatibility_level = 3.6> (silences the backwards-compatibility warnings),
C<in_flow_delay = 0s> (no throttling of fast test senders),
C<mydestination>, C<alias_maps>, C<local_recipient_maps>, C<relay_domains>
empty.

=back

=cut
