#!/usr/bin/env bash
# Runs the fuzz targets of every reader of outside input (docs/fuzzing.md),
# one after another, each for TIME:
#
#   scripts/fuzz.sh [TIME] [TARGET...]
#   scripts/fuzz.sh 10s                      # make fuzz-smoke: every target
#   nice -n 19 scripts/fuzz.sh 20m FuzzParseZip FuzzParseLegacy
#
# TIME is go test's -fuzztime (10s by default). A failing input is written
# to the target's testdata/fuzz/ folder, which is kept (commit it with the
# fix); the script then exits 1. With FUZZLOG=DIR each target's output goes
# to DIR/TARGET.log as well.
#
# Go 1.26's fuzzing coordinator can report "context deadline exceeded" when
# -fuzztime ends while a worker is busy (golang.org/issue/75804, fixed in
# Go 1.27); such a run wrote no failing input, and is counted as passed.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
unset OPENBLAS_CORETYPE

time=${1:-10s}
shift || true

# package and target, one a line.
all="
./engine/torchimport FuzzUnpickle
./engine/torchimport FuzzParseZip
./engine/torchimport FuzzParseLegacy
./engine/safetensors FuzzParse
./qat FuzzOpen
./data FuzzParseIDX
./data FuzzParseCIFAR
./data FuzzParseMAT
./data FuzzParseMATCompressed
./data FuzzSVHN
./data FuzzTinyImageNetAnnotations
./data FuzzClassNames
./data FuzzDecodeImage
./qmul FuzzParseForget
./qmul FuzzParseIndices
./qmul FuzzParseMetrics
./qmul FuzzParamsJSON
./qmul FuzzReadOrigin
./qmul/sweep FuzzParseConfig
./qmul/sweep FuzzParseSearch
./engine/device FuzzWorkers
"

selected() {
	[ $# -eq 0 ] && return 0
	for t in "$@"; do [ "$t" = "$target" ] && return 0; done
	return 1
}

# count is the number of files in a folder (0 when there is none).
count() {
	if [ -d "$1" ]; then find "$1" -type f | wc -l; else echo 0; fi
}

failed=0
ran=0
while read -r pkg target; do
	[ -n "$pkg" ] || continue
	selected "$@" || continue
	ran=$((ran + 1))
	corpus="$pkg/testdata/fuzz/$target"
	before=$(count "$corpus")
	log=$(mktemp)
	echo "== $pkg $target ($time)"
	status=0
	go test -run '^$' -fuzz "^$target\$" -fuzztime "$time" -fuzzminimizetime 10s "$pkg" </dev/null >"$log" 2>&1 || status=$?
	if [ -n "${FUZZLOG:-}" ]; then
		mkdir -p "$FUZZLOG"
		cp "$log" "$FUZZLOG/$target.log"
	fi
	tail -n 3 "$log"
	after=$(count "$corpus")
	if [ "$status" -ne 0 ]; then
		if [ "$after" -eq "$before" ] && grep -q "context deadline exceeded" "$log"; then
			echo "   (no failing input: Go's end-of-fuzztime race, golang.org/issue/75804)"
		else
			cat "$log"
			echo "FAIL: $target; its failing input is in $corpus"
			failed=1
		fi
	fi
	rm -f "$log"
done <<<"$all"
if [ "$ran" -eq 0 ]; then
	echo "no fuzz target named $*" >&2
	exit 2
fi
exit $failed
