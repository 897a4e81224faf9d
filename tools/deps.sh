#!/bin/sh
# deps.sh — install the Debian packages greyd needs to build, test and
# benchmark, but only those that are missing.  Idempotent: when everything is
# present it runs one dpkg-query and exits.  Non-interactive: Postfix is
# preseeded with "No configuration" so its postinst asks nothing and starts
# nothing on port 25.
set -eu

PACKAGES="
build-essential clang pkg-config
libevent-dev libdb5.3-dev db5.3-util libc-ares-dev libspf2-dev libbsd-dev libssl-dev
libcmocka-dev libclang-rt-14-dev
postfix swaks rbldnsd unbound python3-spf openssl libnet-ssleay-perl
perl libnet-dns-perl libyaml-libyaml-perl mandoc
"

missing=""
for p in $PACKAGES; do
	status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	case "$status" in
	*" installed") ;;
	*) missing="$missing $p" ;;
	esac
done

[ -z "$missing" ] && exit 0

echo "deps: installing:$missing" >&2
if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing packages and not root; run: sudo $0" >&2
	exit 1
fi
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# Debian's postfix/unbound postinst may try to start services; policy-rc.d
# keeps the host's port 25 and 53 untouched.
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
	chmod +x /usr/sbin/policy-rc.d
	trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get install -y -qq --no-install-recommends $missing </dev/null
