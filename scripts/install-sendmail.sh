#!/bin/sh
# install-sendmail.sh DESTDIR SBINDIR FORCE - link sendmail(1), mailq(1)
# and newaliases(1) to tern (tern(8), SENDMAIL), the way every program
# on the host that sends mail finds an MTA.  Another MTA's command is never
# replaced silently: where one is there (not a link to this tern), refuse
# and say so, unless FORCE=1, which keeps it as NAME.pre-tern.
set -eu
destdir=$1
sbindir=$2
force=${3:-}
tern=$sbindir/tern
links="/usr/sbin/sendmail /usr/bin/mailq /usr/bin/newaliases"

# is_ours PATH - PATH is a link to this tern
is_ours() {
	[ -L "$1" ] && [ "$(readlink "$1")" = "$tern" ]
}

# first check them all: nothing is changed when one is refused
refused=0
for link in $links; do
	path=$destdir$link
	if { [ -e "$path" ] || [ -L "$path" ]; } && ! is_ours "$path"; then
		if [ "$force" != 1 ]; then
			echo "tern: $link exists and is not tern (another MTA's;" \
				"dpkg -S $link names its package): not replacing" \
				"it. Remove that MTA, or run make install-sendmail" \
				"FORCE=1 to keep it as $link.pre-tern and link tern" >&2
			refused=1
		fi
	fi
done
[ $refused -eq 0 ] || exit 1

for link in $links; do
	path=$destdir$link
	if is_ours "$path"; then
		echo "tern: $link -> $tern (already)"
		continue
	fi
	if [ -e "$path" ] || [ -L "$path" ]; then
		mv -f "$path" "$path.pre-tern"
		echo "tern: kept the old $link as $link.pre-tern (FORCE=1)"
	fi
	mkdir -p "$(dirname "$path")"
	ln -s "$tern" "$path"
	echo "tern: $link -> $tern"
done
