#!/bin/sh
# ensure-user.sh - create the unprivileged "tern" system user when missing
# (root only; as another user there is nothing to do: tern then runs as
# the invoking user).
set -eu
[ "$(id -u)" -eq 0 ] || exit 0
id tern >/dev/null 2>&1 && exit 0
useradd --system --home-dir /nonexistent --no-create-home \
	--shell /usr/sbin/nologin tern
echo "tern: created system user tern"
