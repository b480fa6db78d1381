#!/bin/sh
# deps.sh - install the Debian packages listed in debian-packages.txt that
# are missing.  As root: apt-get update, then apt-get install.  As another
# user: print the exact command and exit non-zero.
#
# Some test peers (postfix) are packaged as system services.  The tests run
# private instances of them, so nothing may be started by the install: a
# temporary /usr/sbin/policy-rc.d that exits 101 ("action forbidden", see
# invoke-rc.d(8)) keeps every maintainer script from starting a service,
# and debconf is preseeded so that postfix installs without configuring a
# system mail server.  An existing policy-rc.d (e.g. a container's) is left
# as it is.  Afterwards nothing may listen on port 25: a system postfix
# found running there is stopped, and said so.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
list="$here/debian-packages.txt"
missing=""
for p in $(grep -v '^[[:space:]]*#' "$list" | tr -s ' \t' '\n' | grep -v '^$'); do
	st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	case "$st" in
	"install ok installed") ;;
	*) missing="$missing $p" ;;
	esac
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
	echo "tern: missing Debian packages; run as root:" >&2
	echo "  apt-get update && apt-get install -y$missing" >&2
	exit 1
fi

policy=/usr/sbin/policy-rc.d
made_policy=""
cleanup() {
	if [ -n "$made_policy" ]; then
		rm -f "$policy"
	fi
}
trap cleanup EXIT INT TERM
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\n# tern scripts/deps.sh: no service starts during install\nexit 101\n' >"$policy"
	chmod 755 "$policy"
	made_policy=1
fi

echo "tern: installing$missing"
export DEBIAN_FRONTEND=noninteractive
echo "postfix postfix/main_mailer_type select No configuration" |
	debconf-set-selections
apt-get update
# shellcheck disable=SC2086
apt-get install -y --no-install-recommends $missing

# A system postfix (or anything else) on port 25 would be a service the
# tests did not start: stop postfix if it runs, and say so.
if command -v postfix >/dev/null 2>&1 &&
	postfix status >/dev/null 2>&1; then
	echo "tern: the postfix package started a system postfix; stopping it"
	postfix stop || true
fi
if command -v ss >/dev/null 2>&1 &&
	ss -Hltn 'sport = :25' 2>/dev/null | grep -q .; then
	echo "tern: warning: something listens on port 25:" >&2
	ss -ltnp 'sport = :25' >&2 || true
fi
exit 0
