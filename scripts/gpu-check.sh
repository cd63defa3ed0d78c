#!/usr/bin/env bash
# gpu-check.sh: qmulgpu's check on a machine with an NVIDIA GPU, the
# NVIDIA driver and PyTorch, but no Go toolchain, bounded in time. It runs
# from the bundle `make gpu-bundle` makes (docs/gpu.md, "Checking on a GPU
# machine"):
#
#   gpu-check.sh [--budget SECONDS] [--results DIR] [--work DIR] [--bundle DIR]
#                [--tiny] [--torch-device DEVICE] [--sanitizer CMD]
#
#   --budget S        wall-clock bound of the whole run (default 540)
#   --results DIR     where the one archive of logs, JSON files and table
#                     goes (default ./gpu-check-results)
#   --work DIR        scratch folder, reused by reruns (default
#                     ${TMPDIR:-/tmp}/qmulgpu-gpu-check); never $OUT
#   --bundle DIR      the bundle (default: this script's folder, else
#                     ./gpu-bundle)
#   --tiny            emulated-device sizes (make test-gpu-check)
#   --torch-device D  where PyTorch runs (default cuda)
#   --sanitizer CMD   compute-sanitizer, or a stand-in (default
#                     compute-sanitizer)
#
# Steps run most valuable first, each under `timeout`; a step whose
# estimated time no longer fits the budget is skipped and listed as
# skipped. Phase 1 (about 3 minutes on an H100): the devices and the
# libraries they loaded; the GPU-vs-CPU parity tests through cuDNN and
# through im2col + SGEMM; compute-sanitizer's memcheck of the op suite
# with exact-size allocations on the im2col path, which launches every
# kernel. Phase 2: the kernels compiled by the local nvcc, then benchmarks
# against PyTorch on the same GPU (same model, quantizer and step, TF32 on
# both sides, cudnn.benchmark on), the unlearning epochs sized to the time
# left. Every row names the convolution path that ran. Statuses: ok,
# FAILED, skipped (not started: no time), stopped (started, then stopped
# when the budget ran out: its estimate was short, not a failure), info.
# The exit status is 1 when a row failed, 2 on bad usage, 0 otherwise.
set -uo pipefail

BUDGET=540 RESULTS=$PWD/gpu-check-results WORK=${TMPDIR:-/tmp}/qmulgpu-gpu-check BUNDLE="" TINY=0
TORCH_DEVICE=cuda SANITIZER=compute-sanitizer
usage() {
	sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}
while [ $# -gt 0 ]; do
	case $1 in
	--budget) BUDGET=$2 && shift ;;
	--results) RESULTS=$2 && shift ;;
	--work) WORK=$2 && shift ;;
	--bundle) BUNDLE=$2 && shift ;;
	--tiny) TINY=1 ;;
	--torch-device) TORCH_DEVICE=$2 && shift ;;
	--sanitizer) SANITIZER=$2 && shift ;;
	-h | --help) usage ;;
	*) echo "gpu-check: unknown argument $1" >&2 && usage ;;
	esac
	shift
done
[[ $BUDGET =~ ^[0-9]+$ ]] && [ "$BUDGET" -ge 10 ] || { echo "gpu-check: --budget $BUDGET: want whole seconds, at least 10" >&2; exit 2; }
START=$(date +%s)
DEADLINE=$((START + BUDGET))
RESERVE=10 # seconds kept for a killed step to go, the table and the archive

HERE=$(cd "$(dirname "$0")" && pwd)
[ -n "$BUNDLE" ] || { [ -x "$HERE/qmulgpu" ] && BUNDLE=$HERE || BUNDLE=$PWD/gpu-bundle; }
BUNDLE=$(cd "$BUNDLE" 2>/dev/null && pwd) || { echo "gpu-check: no bundle folder: run 'make gpu-bundle' where Go is installed" >&2; exit 2; }
for f in qmulgpu cuda.test bench/torch_bench.py kernels/common.cuh CMakeLists.txt; do
	[ -e "$BUNDLE/$f" ] || { echo "gpu-check: $BUNDLE/$f missing: rebuild the bundle with 'make gpu-bundle'" >&2; exit 2; }
done
# The work folder is ours alone: never $OUT, which job runners bring back.
mkdir -p "$WORK" "$RESULTS" || exit 2
WORK=$(cd "$WORK" && pwd) RESULTS=$(cd "$RESULTS" && pwd)
if [ -n "${OUT:-}" ] && [ -d "$OUT" ]; then
	case $WORK/ in "$(cd "$OUT" && pwd)"/*) echo "gpu-check: --work $WORK lies in \$OUT; choose another folder" >&2; exit 2 ;; esac
fi
RUN=$WORK/run DATA=$WORK/data
rm -rf "$RUN" && mkdir -p "$RUN" "$DATA"
# cuda.test reads kernels/*.cu from its working folder.
cd "$BUNDLE" || exit 2
PY=${PYTHON:-python3}
Q="$BUNDLE/qmulgpu"
# TF32 as qmulgpu will use it (QMUL_TF32, default on), and so PyTorch too.
TF32=1
case ${QMUL_TF32:-1} in 0 | false | FALSE | False) TF32=0 ;; esac

# Sizes: a GPU's, or --tiny's for the emulated device (seconds there are
# the emulator's, not a GPU's).
if [ "$TINY" = 1 ]; then
	BATCH=8 STEPS=1 WARMUP=0 INPUT=16x16x3 STEP_MODELS="resnet18:lsq smallcnn:none" EPOCH_MODEL=smallcnn
	EPOCH_MAX=66 EPOCH_VARIANTS=("qmul epoch cudnn" "rl - im2col") ORIG_SUBSET=64
	PARITY_RUN='TestOpsMatchCPU|TestTrainingStepsMatchCPU/smallcnn' MEMCHECK_RUN='TestOpsMatchCPU/(Conv2d|FakeQuant|Loss)'
	EST_DEVICES=5 EST_PARITY=30 EST_MEMCHECK=45 EST_NVCC=20 EST_STEP=20 EST_TORCH=10 EST_EPOCH=25
else
	BATCH=256 STEPS=20 WARMUP=3 INPUT=32x32x3 STEP_MODELS="resnet18:lsq resnet18:none" EPOCH_MODEL=resnet18
	EPOCH_MAX=45000 EPOCH_VARIANTS=("qmul epoch cudnn" "qmul epoch im2col" "qmul sample auto" "rl - auto") ORIG_SUBSET=1024
	PARITY_RUN='.' MEMCHECK_RUN='TestOpsMatchCPU'
	EST_DEVICES=10 EST_PARITY=60 EST_MEMCHECK=75 EST_NVCC=40 EST_STEP=15 EST_TORCH=20 EST_EPOCH=30
fi

rows=() failed=0
# row PHASE CHECK PATH RESULT STATUS: one line of the table.
row() {
	rows+=("| $1 | $2 | $3 | $4 | $5 |")
	echo "gpu-check: [$5] $2: $4 (${3})"
	[ "$5" != FAILED ] || failed=1
}
left() { echo $((DEADLINE - $(date +%s) - RESERVE)); }
# step PHASE CHECK EST CAP LOG CMD...: runs CMD (stdout to LOG, stderr to
# LOG.err) under timeout when EST seconds still fit, for at most CAP
# seconds and never past the budget; otherwise adds a skipped row and
# returns 1. STEP_RC is CMD's status (124 or 137 when it timed out),
# STEP_S its seconds.
step() {
	local phase=$1 check=$2 est=$3 cap=$4 log=$5 l
	shift 5
	l=$(left)
	if [ "$est" -gt "$l" ]; then
		row "$phase" "$check" "-" "needs about $est s, $((l > 0 ? l : 0)) s left" skipped
		return 1
	fi
	local t0 limit=$((cap < l ? cap : l))
	t0=$(date +%s)
	timeout --kill-after=5 "$limit" "$@" >"$log" 2>"$log.err"
	STEP_RC=$?
	STEP_S=$(($(date +%s) - t0))
	STEP_END=""
	if [ "$STEP_RC" = 124 ] || [ "$STEP_RC" = 137 ]; then
		# Stopped at the budget (its estimate was short): not a failure.
		# Stopped at its own cap: it hung, a failure.
		STEP_END="timed out after $STEP_S s (its limit: $cap s)"
		[ "$limit" -ge "$cap" ] || STEP_END="stopped after $STEP_S s: the budget ran out"
		echo "gpu-check: $check: $STEP_END" >>"$log.err"
	fi
	return 0
}
# need VALUE: a step that exited 0 without producing VALUE failed.
need() { [ -n "$1" ] || [ "$STEP_RC" != 0 ] || STEP_RC=1; }
# json FILE KEY [FORMAT]: a top-level value of a JSON file ("" when
# absent), numbers printed with FORMAT (default %.4g).
json() {
	"$PY" -c 'import json, sys
v = json.load(open(sys.argv[1])).get(sys.argv[2], "")
print(sys.argv[3] % v if isinstance(v, (int, float)) and not isinstance(v, bool) else v)' "$1" "$2" "${3:-%.4g}" 2>/dev/null
}
# libraries FILE: the libraries a devices report lists, one phrase.
libraries() {
	"$PY" -c 'import json, sys
libs = json.load(open(sys.argv[1])).get("libraries") or []
print("; ".join("%s %s%s (%s)" % (l["name"], l.get("version", "") + " " if l.get("version") else "", l["path"], l["found_in"]) for l in libs))' "$1" 2>/dev/null
}
# convpath TEXT: the convolution path a Describe line names.
convpath() { sed -n 's/.*, convolutions on \(.*\)$/\1/p' <<<"$1" | head -1; }
# outcome: the status of the last step; ended: why it ended early, if it did.
outcome() {
	case $STEP_RC:$STEP_END in
	0:*) echo ok ;;
	*:*stopped*) echo stopped ;;
	*) echo FAILED ;;
	esac
}
ended() { [ -z "$STEP_END" ] || echo "; $STEP_END"; }
ratio() { "$PY" -c 'import sys; a, b = map(float, sys.argv[1:]); print("%.2f" % (a / b))' "$1" "$2" 2>/dev/null || echo "?"; }

# ---------------------------------------------------------------- phase 1

check_devices() {
	local gpu
	gpu=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -1)
	row 1 "machine" "n/a" "GPU: ${gpu:-no nvidia-smi}; nvcc: $(nvcc --version 2>/dev/null | sed -n 's/.*release \([0-9.]*\).*/\1/p' || true); bundle $(cat "$BUNDLE/VERSION" 2>/dev/null)" info
	step 1 "devices and libraries" "$EST_DEVICES" 60 "$RUN/devices.json" "$Q" devices --json || return
	"$Q" devices >"$RUN/devices.txt" 2>&1
	local auto conv libs
	auto=$(json "$RUN/devices.json" auto)
	conv=$(json "$RUN/devices.json" gpu_convolutions)
	libs=$(libraries "$RUN/devices.json")
	if [ "$STEP_RC" = 0 ] && [ "$auto" = cuda:0 ]; then
		row 1 "devices and libraries" "$conv" "--device auto uses cuda:0; ${libs:-no library listed}" ok
	else
		row 1 "devices and libraries" "${conv:--}" "--device auto uses ${auto:-?}: $(json "$RUN/devices.json" gpu_error) (exit $STEP_RC)" FAILED
	fi
}

# parity CONV: the cuda package's tests with convolutions through CONV.
parity() {
	local conv=$1 log=$RUN/parity-$1.log
	step 1 "GPU-vs-CPU parity, --conv $conv" "$EST_PARITY" 240 "$log" \
		env QMUL_CONV="$conv" "$BUNDLE/cuda.test" -test.v -test.run "$PARITY_RUN" -test.timeout "$(($(left) > 20 ? $(left) - 5 : 15))s" || return
	local pass fail skip path rejected
	pass=$(grep -c -e '^--- PASS' "$log") fail=$(grep -c -e '--- FAIL' "$log") skip=$(grep -c -e '^--- SKIP' "$log")
	path=$(convpath "$(grep -m1 ', convolutions on ' "$log")")
	rejected=$(cat "$log" "$log.err" | grep -c 'convolutions: .* rejects ')
	[ "$rejected" = 0 ] || path="$path; $rejected shapes cuDNN rejects on im2col or our kernels"
	[ "$pass" -gt 0 ] || need ""
	row 1 "GPU-vs-CPU parity, --conv $conv" "${path:-unknown}" "$pass passed, $fail failed, $skip skipped in $STEP_S s$(ended)" "$(outcome)"
}

memcheck() {
	local log=$RUN/memcheck.log
	if ! command -v "${SANITIZER%% *}" >/dev/null; then
		row 1 "memcheck of the op suite" "-" "$SANITIZER not found (it comes with the CUDA toolkit)" skipped
		return
	fi
	step 1 "memcheck of the op suite" "$EST_MEMCHECK" 240 "$log" env QMUL_CUDA_EXACT_ALLOC=1 QMUL_CONV=im2col \
		$SANITIZER --tool memcheck --error-exitcode 9 "$BUNDLE/cuda.test" -test.run "$MEMCHECK_RUN" || return
	local summary
	summary=$(cat "$log" "$log.err" | grep -m1 'ERROR SUMMARY' | sed 's/^=* *//')
	row 1 "memcheck of the op suite ($MEMCHECK_RUN, exact allocations)" "im2col + cuBLAS SGEMM (QMUL_CONV=im2col)" \
		"${summary:-no summary} in $STEP_S s (exit $STEP_RC)$(ended)" "$(outcome)"
}

# ---------------------------------------------------------------- phase 2

nvcc_check() {
	if ! command -v nvcc >/dev/null || ! command -v cmake >/dev/null; then
		row 2 "kernels with the local nvcc" "-" "needs nvcc and cmake on the PATH" skipped
		return
	fi
	local cc src=$WORK/kernels-src
	cc=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d '.')
	cc=${cc:-80}
	rm -rf "$src" && mkdir -p "$src/cuda" && cp -r "$BUNDLE/kernels" "$BUNDLE/CMakeLists.txt" "$src/"
	step 2 "kernels with the local nvcc (sm_$cc)" "$EST_NVCC" 120 "$RUN/nvcc.log" bash -c \
		"cmake -S '$src' -B '$WORK/kernels-build' -DQMUL_CUDA_ARCHS=$cc -DQMUL_CUDA_PTX=$cc && cmake --build '$WORK/kernels-build'" || return
	row 2 "kernels with the local nvcc (sm_$cc, warnings as errors)" "n/a (compiled only)" "exit $STEP_RC in $STEP_S s$(ended)" "$(outcome)"
}

# step_bench MODEL QUANT: a training step, ours on each path and PyTorch's.
step_bench() {
	local model=$1 q=$2 name=$1-$2 theirs="" tpath conv
	local common=(--model "$model" --batch "$BATCH" --steps "$STEPS" --warmup-steps "$WARMUP" --input "$INPUT" --json)
	if step 2 "PyTorch $model $q step" "$EST_TORCH" 180 "$RUN/torch-$name.json" "$PY" "$BUNDLE/bench/torch_bench.py" \
		--device "$TORCH_DEVICE" --model "$model" --quant "$q" --batch "$BATCH" --steps "$STEPS" \
		--warmup-steps "$WARMUP" --input "$INPUT" --tf32 "$TF32"; then
		theirs=$(json "$RUN/torch-$name.json" images_per_sec %.1f)
		tpath=$(json "$RUN/torch-$name.json" conv)
		need "$theirs"
		row 2 "PyTorch $model $q train step, batch $BATCH (img/s)" "${tpath:-?}" "${theirs:-failed} ($(json "$RUN/torch-$name.json" ms_per_step %.1f) ms/step)$(ended)" "$(outcome)"
	fi
	for conv in cudnn im2col; do
		local out=$RUN/ours-$name-$conv.json qf=(--quant "$q")
		[ "$q" = none ] && qf=()
		step 2 "qmulgpu $model $q step, --conv $conv" "$EST_STEP" 180 "$out" "$Q" bench --device cuda --conv "$conv" "${common[@]}" "${qf[@]}" || continue
		local ours ms
		ours=$(json "$out" images_per_sec %.1f) ms=$(json "$out" ms_per_step %.2f)
		need "$ours"
		[ "$model-$q-$conv" != "$EPOCH_MODEL-lsq-cudnn" ] || OURS_MS=$ms
		row 2 "$model $q train step, batch $BATCH, --conv $conv (img/s)" "$(convpath "$(json "$out" device)")" \
			"qmulgpu ${ours:-failed} (${ms:-?} ms/step) vs PyTorch ${theirs:-?} = $([ -n "$ours" ] && [ -n "$theirs" ] && ratio "$ours" "$theirs" || echo ?)x$(ended)" "$(outcome)"
	done
}

# cifar_data: CIFAR-10-shaped binary files of random pixels (the time does
# not depend on them), made once and kept for reruns.
cifar_data() {
	local d=$DATA/cifar/cifar-10-batches-bin
	[ "$(du -b "$d/test_batch.bin" 2>/dev/null | cut -f1)" = 30730000 ] && return 0
	"$PY" - "$d" <<'PYEOF'
import os, sys
import numpy as np
d = sys.argv[1]
os.makedirs(d, exist_ok=True)
rng = np.random.default_rng(1)
for name in ["data_batch_%d.bin" % i for i in range(1, 6)] + ["test_batch.bin"]:
    rec = np.empty((10000, 3073), np.uint8)
    rec[:, 0] = rng.integers(0, 10, 10000)
    rec[:, 1:] = rng.integers(0, 256, (10000, 3072))
    rec.tofile(os.path.join(d, name + ".tmp"))
    os.replace(os.path.join(d, name + ".tmp"), os.path.join(d, name))
PYEOF
}

# epoch_size: how many training images the epoch benchmarks can afford in
# the time left, from the measured step (EPOCH_MAX at most).
epoch_size() {
	local ms=${OURS_MS:-0} per
	per=$("$PY" -c 'import sys; ms, b = float(sys.argv[1] or 0), int(sys.argv[2]); print(ms / b / 1000 if ms > 0 else 0.002)' "$ms" "$BATCH")
	"$PY" -c 'import sys
left, per, runs, top = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
# Each run costs about 20 s of start-up and evaluation plus three passes over
# its images (similar labels, measuring, training), on our side and PyTorch'"'"'s.
n = int((left / runs - 20) / (3 * 2 * per))
print(max(0, min(top, n // 11 * 11)))' "$(left)" "$per" "$((${#EPOCH_VARIANTS[@]} + 1))" "$EPOCH_MAX"
}

epochs() {
	cifar_data || { row 2 "unlearning epochs" "-" "could not write the CIFAR-shaped data (numpy?)" FAILED; return; }
	local n
	n=$(epoch_size)
	if [ "$n" -lt 22 ]; then
		row 2 "unlearning epochs" "-" "no time left for an epoch of at least 22 images" skipped
		return
	fi
	local forget=$((n / 11)) common=(--device cuda --data "$DATA/cifar" --quiet)
	step 2 "original model for the epochs" "$EST_EPOCH" 300 "$RUN/orig.log" "$Q" train "${common[@]}" --dataset cifar10 \
		--model "$EPOCH_MODEL" --quant lsq --val-frac 0.01 --subset "$ORIG_SUBSET" --test-subset 200 --epochs 1 --batch "$BATCH" \
		--lr 0.1 --out "$WORK/orig" --force || return
	[ "$STEP_RC" = 0 ] || { row 2 "original model for the epochs" "-" "train failed (exit $STEP_RC, see orig.log)" FAILED; return; }
	for variant in "${EPOCH_VARIANTS[@]}"; do
		epoch_row "$n" "$forget" $variant
	done
}

# epoch_row IMAGES FORGET METHOD AGR CONV: one epoch of ours and (once per
# method) of PyTorch.
epoch_row() {
	local n=$1 forget=$2 method=$3 agr=$4 conv=$5 name=$3-$4-$5
	local flags=(--method "$method" --conv "$conv") tj=$RUN/torch-epoch-$method.json theirs="" ours
	[ "$agr" = - ] || flags+=(--agr "$agr")
	step 2 "qmulgpu $name epoch" "$EST_EPOCH" 600 "$RUN/$name.log" "$Q" unlearn --device cuda --data "$DATA/cifar" --quiet \
		--checkpoint "$WORK/orig/model.safetensors" "${flags[@]}" --subset "$n" --test-subset 1000 \
		--forget "random:$forget" --epochs 1 --batch "$BATCH" --out "$WORK/$name" --force || return
	ours=$(json "$WORK/$name/metrics.json" rte_s %.2f)
	need "$ours"
	local rc=$STEP_RC end=$STEP_END
	cp "$WORK/$name/metrics.json" "$RUN/metrics-$name.json" 2>/dev/null
	# PyTorch's epoch, once per method; skipped for lack of time, the row
	# is ours alone.
	if [ "$agr" != sample ] && [ ! -s "$tj" ] && step 2 "PyTorch $method epoch" "$EST_TORCH" 600 "$tj" "$PY" \
		"$BUNDLE/bench/torch_unlearn_epoch.py" --device "$TORCH_DEVICE" --model "$EPOCH_MODEL" --quant lsq \
		--method "$method" --forget "$forget" --retain "$((n - forget))" --batch "$BATCH" --input 32x32x3 --tf32 "$TF32" &&
		[ "$STEP_RC" != 0 ]; then
		[ "$rc" != 0 ] || rc=$STEP_RC
		[ -n "$end" ] || end=${STEP_END:+PyTorch $STEP_END}
	fi
	local vs=""
	if [ "$agr" != sample ] && [ -e "$tj" ]; then
		theirs=$(json "$tj" epoch_seconds %.2f)
		[ -n "$theirs" ] || [ "$rc" != 0 ] || rc=1
		vs=" vs PyTorch ${theirs:-failed} ($(json "$tj" conv)) = $([ -n "$ours" ] && [ -n "$theirs" ] && ratio "$theirs" "$ours" || echo ?)x"
	fi
	STEP_RC=$rc STEP_END=$end
	row 2 "$EPOCH_MODEL LSQ $method --agr $agr epoch, $n images, $forget forgotten (s)" \
		"$(convpath "$(json "$WORK/$name/metrics.json" device)")" "qmulgpu ${ours:-failed}$vs$(ended)" "$(outcome)"
}

# ---------------------------------------------------------------- the run

check_devices
parity cudnn
parity im2col
memcheck
nvcc_check
for mq in $STEP_MODELS; do
	step_bench "${mq%%:*}" "${mq##*:}"
done
epochs

table=$RUN/table.md
{
	echo "qmulgpu gpu-check, $(date -u +%Y-%m-%dT%H:%M:%SZ), budget $BUDGET s, took $(($(date +%s) - START)) s;" \
		"TF32 $([ "$TF32" = 1 ] && echo on || echo off) on both sides (GPU), cudnn.benchmark on for PyTorch"
	echo
	echo "| phase | check | convolution path | result | status |"
	echo "|---|---|---|---|---|"
	printf '%s\n' "${rows[@]}"
} >"$table"
echo
cat "$table"

# One archive of the logs (each cut to its last MiB), the JSON files and
# the table, under 16 MiB, written whole or not at all.
pack=$WORK/pack/gpu-check
rm -rf "$WORK/pack" && mkdir -p "$pack"
for f in "$RUN"/*; do
	[ -f "$f" ] && tail -c 1048576 "$f" >"$pack/$(basename "$f")"
done
archive=$RESULTS/gpu-check-$(hostname -s 2>/dev/null || echo host)-$(date -u +%Y%m%dT%H%M%SZ).tar.gz
tar -czf "$archive.partial" -C "$WORK/pack" gpu-check && mv "$archive.partial" "$archive"
if [ "$(du -k "$archive" | cut -f1)" -ge 16384 ]; then
	echo "gpu-check: $archive is 16 MiB or more" >&2
	failed=1
fi
echo "gpu-check: results in $archive ($(du -k "$archive" | cut -f1) KiB)"
exit "$failed"
