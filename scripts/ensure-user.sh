#!/bin/sh
# ensure-user.sh - create the unprivileged "tern" system user and the
# "terndrop" group (the group of tern-drop and $home/spool/drop, for local
# submission: tern(8), SENDMAIL) when missing (root only; as another user
# there is nothing to do: tern then runs as the invoking user).
set -eu
[ "$(id -u)" -eq 0 ] || exit 0
if ! getent group terndrop >/dev/null 2>&1; then
	groupadd --system terndrop
	echo "tern: created system group terndrop"
fi
id tern >/dev/null 2>&1 && exit 0
useradd --system --home-dir /nonexistent --no-create-home \
	--shell /usr/sbin/nologin tern
echo "tern: created system user tern"
