#!/bin/sh
# run.sh SECONDS BIN... - run each libFuzzer target for SECONDS.
# Every target first replays fuzz/regressions/NAME/ (inputs that once
# crashed it; kept forever) and its seed corpus fuzz/corpus/NAME/; new
# findings land in fuzz/artifacts/NAME/ and fail the run.  What a run adds
# to its corpus stays in build-fuzz/corpus-NAME/, for fuzz/merge.sh to
# keep what adds coverage.  fuzz/NAME.flags, when present, holds libFuzzer
# flags of that target alone.
set -eu

# stats LOG - a finished run in one line: executions, their rate, coverage
stats() {
	printf '%s executions, %s a second, %s\n' \
	    "$(sed -n 's/^stat::number_of_executed_units: *//p' "$1")" \
	    "$(sed -n 's/^stat::average_exec_per_sec: *//p' "$1")" \
	    "$(grep -o 'cov: [0-9]* ft: [0-9]*' "$1" | tail -n 1)"
}

secs=$1
shift
status=0
for bin in "$@"; do
	name=$(basename "$bin")
	seeds=fuzz/corpus/$name
	regress=fuzz/regressions/$name
	work=build-fuzz/corpus-$name
	art=fuzz/artifacts/$name
	flags=
	if [ -f "fuzz/$name.flags" ]; then
		flags=$(cat "fuzz/$name.flags")
	fi
	mkdir -p "$seeds" "$regress" "$work" "$art"
	if [ -n "$(ls -A "$regress")" ]; then
		echo "== $name: replaying regressions"
		"$bin" -runs=0 "$regress"/* || status=1
	fi
	echo "== $name: fuzzing for ${secs}s"
	if ! "$bin" -max_total_time="$secs" -max_len=4096 -timeout=10 \
		-rss_limit_mb=2048 -print_final_stats=1 $flags \
		-artifact_prefix="$art/" "$work" "$seeds" >"build-fuzz/$name.log" 2>&1; then
		tail -n 40 "build-fuzz/$name.log"
		echo "== $name: FAILED; the input is in $art/ (add it to $regress/)"
		status=1
	else
		stats "build-fuzz/$name.log"
	fi
done
exit $status
