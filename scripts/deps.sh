#!/bin/sh
# deps.sh - install the Debian packages listed in debian-packages.txt that
# are missing.  As root: apt-get update, then apt-get install.  As another
# user: print the exact command and exit non-zero.
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
echo "tern: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update
# shellcheck disable=SC2086
apt-get install -y --no-install-recommends $missing
