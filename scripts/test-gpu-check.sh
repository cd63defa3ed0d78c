#!/usr/bin/env bash
# test-gpu-check.sh: scripts/gpu-check.sh end to end on the emulated device,
# before it meets a GPU (make test-gpu-check builds the emulator and the
# bundle first). Two runs in one work folder:
#
#  1. --tiny, with a budget it fits in: every step must run and pass (every
#     row ok or info), every row that ran something must name its
#     convolution path, and one archive under 16 MiB must hold the table;
#  2. a rerun with --budget 60: it must reuse the folder, end within 60 s,
#     list the steps it skipped (or stopped when the budget ran out), and
#     have no failed row.
#
# PyTorch runs on the CPU; the emulator's memcheck.sh stands in for
# compute-sanitizer.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
EMU=$ROOT/build/emu
T=$ROOT/build/gpu-check
rm -rf "$T"
mkdir -p "$T"
export PYTHON=${PYTHON:-/usr/bin/python3}
fail() {
	echo "test-gpu-check: $*" >&2
	exit 1
}

size=$(du -m -s gpu-bundle | cut -f1)
[ "$size" -le 40 ] || fail "the bundle is $size MB, over 40"
for b in gpu-bundle/qmulgpu gpu-bundle/cuda.test; do
	if readelf -S "$b" | grep -q '\.symtab'; then fail "$b is not stripped"; fi
done

# run NAME BUDGET: gpu-check.sh on the emulated device; prints its seconds.
run() {
	local start=$SECONDS rc=0
	LD_LIBRARY_PATH=$EMU/plain${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} OUT=$T/out \
		gpu-bundle/gpu-check.sh --tiny --budget "$2" --results "$T/results-$1" --work "$T/work" \
		--torch-device cpu --sanitizer "$ROOT/cuda/emu/memcheck.sh" >"$T/$1.log" 2>&1 || rc=$?
	echo "$((SECONDS - start))"
	[ "$rc" = 0 ] || { tail -30 "$T/$1.log" >&2; fail "$1: gpu-check.sh exited $rc"; }
}
# table NAME: the rows of the run's table, from its archive.
table() {
	local archives=("$T/results-$1"/*.tar.gz)
	[ "${#archives[@]}" = 1 ] && [ -f "${archives[0]}" ] || fail "$1: want one archive, found ${#archives[@]}"
	[ "$(du -k "${archives[0]}" | cut -f1)" -lt 16384 ] || fail "$1: the archive is 16 MiB or more"
	tar -xzOf "${archives[0]}" gpu-check/table.md | grep '^| [12] |'
}

echo "== gpu-check.sh --tiny (every step)"
s=$(run full 900)
rows=$(table full)
echo "$rows" | sed 's/^/   /'
! echo "$rows" | grep -q -E '\| (FAILED|skipped|stopped) \|$' || fail "full: a step failed, was skipped or was stopped"
echo "$rows" | awk -F' [|] ' '$5 ~ /^ok/ && ($3 == "" || $3 == "-") {bad = 1; print "no convolution path: " $0} END {exit bad}' >&2 ||
	fail "full: a row does not name its convolution path"
[ "$(echo "$rows" | grep -c '| ok |$')" -ge 12 ] || fail "full: fewer rows than the steps"
if [ -e "$T/out" ]; then fail "gpu-check.sh wrote into \$OUT"; fi
echo "   $(echo "$rows" | wc -l) rows in $s s"

echo "== gpu-check.sh --tiny --budget 60, rerun in the same work folder"
s=$(run short 60)
rows=$(table short)
[ "$s" -le 60 ] || fail "short: took $s s with --budget 60"
skipped=$(echo "$rows" | grep -c -E '\| (skipped|stopped) \|$' || true)
[ "$skipped" -ge 1 ] || fail "short: nothing skipped: the budget test proves nothing"
echo "$rows" | grep -E '\| (skipped|stopped) \|$' | sed 's/^/   /'
echo "   ended in $s s, $skipped steps skipped or stopped at the budget"
