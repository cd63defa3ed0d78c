#!/usr/bin/env bash
# test-emu.sh: the cuda package and the cuda binary on the emulated device
# (cuda/emu; see docs/gpu.md). Run by `make test-emu`, which builds the
# emulator variants, the cuda test binary and bin/qmulgpu-cuda first.
#
#  1. fixtures: each checker catches its broken kernel, and misses it when
#     switched off (so each fixture test can fail);
#  2. the whole GPU test suite twice: the plain build in forward order, and
#     the checked build (AddressSanitizer, exact-size allocations, barrier,
#     shuffle and race checkers) in a seeded shuffled order. Each run checks
#     every result against the CPU backend within the tests' bounds, so the
#     two schedules agree within twice those bounds; no test may skip. The
#     first run computes every convolution cuDNN accepts through cuDNN (the
#     fake libcudnn.so.9) on a device reporting 132 multiprocessors, the
#     second through im2col + SGEMM on the default 2, and each runs the op
#     cases again through the other path; each ends with its own census
#     line, so every kernel is launched in both schedules;
#  3. end to end: `qmulgpu-cuda unlearn --method qmul` with each --agr on the
#     emulated device (through cuDNN, and --agr epoch through im2col too)
#     against the same run on the CPU backend (scripts/compare-metrics.py
#     states the tolerances);
#  4. the census of all runs: every kernel of kernels/*.cu launched, and
#     cuDNN's forward, backward-data and backward-filter convolutions called.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
EMU=$ROOT/build/emu
WORK=$EMU/run
SEED=${QM_EMU_SEED:-20251}
rm -rf "$WORK"
mkdir -p "$WORK/census"

ASAN_LIB=$(gcc -print-file-name=libasan.so)
# Go installs its own signal handlers; AddressSanitizer must leave SIGSEGV
# to them. Leaks are not checked (the process exits without freeing).
export ASAN_OPTIONS=detect_leaks=0:handle_segv=0:allow_user_segv_handler=1:abort_on_error=1

# on_device VARIANT CMD...: runs CMD with the emulated device of VARIANT
# found first by the dynamic loader (and libasan first for "checked"). The
# library search finds the fake cuBLAS 13 there before any older cuBLAS of
# the system; QM_EMU_LIBS tells TestLibrariesFromFakeVenv where the fakes
# are.
on_device() {
	local v=$1
	shift
	local preload=""
	[ "$v" = checked ] && preload=$ASAN_LIB
	LD_PRELOAD=$preload LD_LIBRARY_PATH=$EMU/$v${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} QM_EMU_LIBS=$EMU/$v "$@"
}

fail() {
	echo "test-emu: $*" >&2
	exit 1
}

echo "== fixtures: each checker catches its broken kernel"
# fixture KERNEL PATTERN OFF: the checked build must fail KERNEL with a
# report matching PATTERN; with the checker off (OFF: a QM_EMU_NOCHECK
# value, or "plain" for AddressSanitizer's checks) it must run clean.
fixture() {
	local k=$1 pattern=$2 off=$3 log=$WORK/fixture-$1.log
	if on_device checked "$EMU/checked/run-fixture" "$k" > "$log" 2>&1; then
		fail "$k: the checked build ran it without a finding"
	fi
	grep -q -E "$pattern" "$log" || { cat "$log" >&2; fail "$k: no report matching $pattern"; }
	if [ "$off" = plain ]; then
		"$EMU/plain/run-fixture" "$k" > "$log.off" 2>&1 || fail "$k: the plain build (no AddressSanitizer) reported it"
	else
		QM_EMU_NOCHECK=$off on_device checked "$EMU/checked/run-fixture" "$k" > "$log.off" 2>&1 ||
			{ cat "$log.off" >&2; fail "$k: still reported with QM_EMU_NOCHECK=$off"; }
	fi
	echo "   $k: $(grep -m1 -o -E "$pattern" "$log")"
}
fixture qm_fixture_oob_global 'heap-buffer-overflow|fixtures/oob-global.cu:[0-9]+' plain
grep -q 'in qm_fixture_oob_global cuda/emu/fixtures/oob-global.cu:10' "$WORK/fixture-qm_fixture_oob_global.log" ||
	fail "the out-of-bounds report does not name cuda/emu/fixtures/oob-global.cu:10"
fixture qm_fixture_oob_shared 'heap-buffer-overflow' plain
grep -q 'in qm_fixture_oob_shared cuda/emu/fixtures/oob-shared.cu:9' "$WORK/fixture-qm_fixture_oob_shared.log" ||
	fail "the shared out-of-bounds report does not name cuda/emu/fixtures/oob-shared.cu:9"
fixture qm_fixture_divergent_barrier 'divergent __syncthreads' barrier
fixture qm_fixture_shuffle_exited_lane 'names lane [0-9]+, which has exited' shuffle
fixture qm_fixture_shared_race 'shared-memory race on s .*shared-race.cu:10' race
for v in plain checked; do
	on_device $v "$EMU/$v/run-fixture" qm_fixture_clean > "$WORK/fixture-clean-$v.log" 2>&1 ||
		{ cat "$WORK/fixture-clean-$v.log" >&2; fail "qm_fixture_clean: a checker reported a correct kernel ($v)"; }
done
echo "   qm_fixture_clean: no finding in either build"

# census NAME DIR: prints how many kernels of kernels/*.cu the runs that
# wrote DIR launched; fails when one was never launched.
census() {
	local name=$1 dir=$2
	local total k counts launched missing launches
	total=$(grep -h -o -E 'extern "C"[[:space:]]+__global__[[:space:]]+void[[:space:]]+[A-Za-z0-9_]+' kernels/*.cu |
		awk '{print $NF}' | sort -u)
	k=$(echo "$total" | wc -l)
	counts=$WORK/census-$name.txt
	cat "$dir"/*.kernels | awk '{n[$1] += $2} END {for (k in n) print k, n[k]}' | sort > "$counts"
	launched=$(awk '$2 > 0 {print $1}' "$counts" | sort)
	missing=$(comm -23 <(echo "$total") <(echo "$launched"))
	launches=$(awk '{s += $2} END {print s}' "$counts")
	echo "emu: $(echo "$total" | comm -12 - <(echo "$launched") | wc -l) of $k kernels launched, $launches launches ($name)"
	[ -z "$missing" ] || fail "$name: kernels no test launches: $(echo $missing)"
}

# suite NAME VARIANT SCHEDULE CONV OTHER [VAR=VALUE...]: the cuda package's
# tests with convolutions through CONV, then every op case again through
# OTHER, so that each schedule launches every kernel (cuDNN replaces
# col2im and the depthwise kernels); ends with the schedule's census.
suite() {
	local name=$1 v=$2 schedule=$3 conv=$4 other=$5 log=$WORK/suite-$1.log
	shift 5
	echo "== suite ($name): $v build, schedule $schedule, convolutions through $conv"
	local start=$SECONDS dir=$WORK/census/$name
	mkdir -p "$dir"
	if ! (cd cuda && export "$@" QM_EMU_SCHEDULE="$schedule" QM_EMU_CENSUS="$dir" QMUL_CONV="$conv" &&
		on_device "$v" "$EMU/cuda.test" -test.v -test.timeout 30m > "$log" 2>&1 &&
		QMUL_CONV="$other" on_device "$v" "$EMU/cuda.test" -test.v -test.run 'TestOpsMatchCPU' >> "$log" 2>&1); then
		grep -E -e '--- FAIL|emulated device:|ERROR: AddressSanitizer|^panic' "$log" | head -40 >&2
		fail "suite $name failed (log: $log)"
	fi
	if grep -q -e '--- SKIP' "$log"; then
		grep -e '--- SKIP' "$log" >&2
		fail "suite $name: a test skipped on the emulated device"
	fi
	# The fake cuDNN rejects grouped float convolutions, as real cuDNN may:
	# the depthwise cases must have fallen back, each with its one line.
	grep -q 'convolutions: cuDNN .* rejects the .* depthwise convolution' "$log" ||
		fail "suite $name: no depthwise convolution fell back from cuDNN with its one-line notice"
	echo "   $(grep -c -e '^--- PASS' "$log") tests passed in $((SECONDS - start)) s (op cases through $other too)"
	census "$name" "$dir"
}
# Each run takes one convolution path for the whole suite, so every
# convolution case, the training-step parity tests and the rest run through
# cuDNN (the fake libcudnn.so.9) in one and through im2col + SGEMM in the
# other; each then runs the op cases through the other path. The first
# reports an H100 SXM's 132 multiprocessors, so that grid-stride and lane
# launches take the grid sizes of a real GPU; the second the default 2,
# whose small grids make every thread loop.
suite forward-cudnn plain forward cudnn im2col QM_EMU_SMS=132
suite shuffled-im2col checked "shuffle:$SEED" im2col cudnn QMUL_CUDA_EXACT_ALLOC=1

echo "== end to end: qmul with each --agr, emulated device against the CPU"
E2E=$WORK/e2e
common=(--quiet)
bin/qmulgpu-cuda train --device cpu --dataset fashion-mnist --model smallcnn --quant lsq --wbits 4 --abits 4 \
	--subset 600 --test-subset 300 --epochs 1 --lr 0.05 --batch 100 --val-frac 0 --out "$E2E/orig" --force "${common[@]}"
# Every --agr through cuDNN, and --agr epoch through im2col as well.
for run in "epoch cudnn" "step cudnn" "sample cudnn" "epoch im2col"; do
	read -r agr conv <<<"$run"
	args=(unlearn --checkpoint "$E2E/orig/model.safetensors" --method qmul --agr "$agr" --forget random:10% \
		--epochs 1 --batch 100 "${common[@]}")
	[ -d "$E2E/cpu-$agr" ] || bin/qmulgpu-cuda "${args[@]}" --device cpu --out "$E2E/cpu-$agr"
	QM_EMU_CENSUS="$WORK/census" on_device plain bin/qmulgpu-cuda "${args[@]}" --device cuda --conv "$conv" \
		--out "$E2E/emu-$agr-$conv" 2> >(grep -v '^qmulgpu: convolutions: ' >&2)
	/usr/bin/python3 scripts/compare-metrics.py "$E2E/cpu-$agr/metrics.json" "$E2E/emu-$agr-$conv/metrics.json" ||
		fail "--agr $agr --conv $conv: the emulated device's metrics.json differs from the CPU's"
	echo "   --agr $agr --conv $conv: metrics agree ($(/usr/bin/python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); print("FA %.2f RA %.2f TA %.2f MIA %.0f" % (m["fa"], m["ra"], m["ta"], m["mia"]))' "$E2E/emu-$agr-$conv/metrics.json"))"
done

echo "== census"
mkdir -p "$WORK/census/all"
cat "$WORK"/census/*/*.kernels "$WORK"/census/*.kernels 2>/dev/null > "$WORK/census/all/merged.kernels"
census "all runs" "$WORK/census/all"

# The cuDNN path ran: each of the three convolutions, and the searches.
cudnn=$WORK/census-cudnn.txt
cat "$WORK"/census/*.cudnn "$WORK"/census/*/*.cudnn 2>/dev/null | awk '{n[$1] += $2} END {for (k in n) print k, n[k]}' | sort > "$cudnn"
calls() { awk -v k="$1" '$1 == k {print $2}' "$cudnn"; }
fwd=$(calls ConvolutionForward) bwd_data=$(calls ConvolutionBackwardData) bwd_filter=$(calls ConvolutionBackwardFilter)
finds=$(awk '$1 ~ /^Find/ {s += $2} END {print s + 0}' "$cudnn")
echo "emu: cuDNN: ${fwd:-0} forward, ${bwd_data:-0} backward-data, ${bwd_filter:-0} backward-filter convolutions, $finds algorithm searches"
[ -n "$fwd" ] && [ -n "$bwd_data" ] && [ -n "$bwd_filter" ] || fail "the cuDNN path did not run all three convolutions"
