#!/bin/sh
# ensure-user.sh - create the unprivileged system users and group when
# missing: "tern" (the queue process, the spool, virtual users' mail),
# "tern-smtpd" (the smtpd, which reads the network and may only write new
# messages) and the "terndrop" group (the group of tern-drop and
# $home/spool/drop, for local submission: tern(8), SENDMAIL).  Root only;
# as another user there is nothing to do: tern then runs as the invoking
# user.
set -eu
[ "$(id -u)" -eq 0 ] || exit 0
if ! getent group terndrop >/dev/null 2>&1; then
	groupadd --system terndrop
	echo "tern: created system group terndrop"
fi
for u in tern tern-smtpd; do
	id "$u" >/dev/null 2>&1 && continue
	useradd --system --user-group --home-dir /nonexistent \
		--no-create-home --shell /usr/sbin/nologin "$u"
	echo "tern: created system user $u"
done
