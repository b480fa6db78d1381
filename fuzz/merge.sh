#!/bin/sh
# merge.sh BIN... - keep in each seed corpus fuzz/corpus/NAME/ the inputs
# of build-fuzz/corpus-NAME/ (what fuzz/run.sh found) that add coverage
# (libFuzzer -merge=1: the seeds stay, only new coverage is added).
set -eu
for bin in "$@"; do
	name=$(basename "$bin")
	flags=
	if [ -f "fuzz/$name.flags" ]; then
		flags=$(cat "fuzz/$name.flags")
	fi
	mkdir -p "fuzz/corpus/$name" "build-fuzz/corpus-$name"
	before=$(ls "fuzz/corpus/$name" | wc -l)
	"$bin" -merge=1 $flags "fuzz/corpus/$name" "build-fuzz/corpus-$name" \
	    >"build-fuzz/$name.merge.log" 2>&1
	echo "$name: $before -> $(ls "fuzz/corpus/$name" | wc -l) inputs"
done
