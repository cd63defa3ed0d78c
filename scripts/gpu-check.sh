#!/usr/bin/env bash
# One command for a GPU machine that has nvcc and PyTorch but no Go
# toolchain. It uses a bundle of prebuilt binaries (make gpu-bundle, on any
# machine with Go and nvcc ≥ 11.8) and:
#   1. reports the GPU, driver and nvcc;
#   2. compiles the kernels with the local nvcc (warnings as errors) to check
#      they still build with it;
#   3. runs the GPU-vs-CPU parity tests of the cuda package, once with
#      every convolution through cuDNN and once through im2col + SGEMM;
#   4. runs a short compute-sanitizer memcheck of training steps;
#   5. benchmarks ResNet-18 (CIFAR stem, LSQ W4A4 and float, batch 256,
#      32×32×3) training steps with --conv cudnn and --conv im2col, and one
#      Q-MUL epoch (--agr epoch with both paths, --agr sample; 45,000
#      retain + 4,500 forget images), plus an RL epoch, against PyTorch eager
#      running the same model and quantizer on the same GPU;
#   6. prints one table (the convolution-path rows go into
#      docs/performance.md beside bench/convmodel's prediction).
#
#   scripts/gpu-check.sh [BUNDLE]        (default: gpu-bundle)
# Environment: OUT (work and log directory, default /tmp/gpu-check),
# STEPS (timed benchmark steps, default 20), SKIP_EPOCH=1 (no epoch benchmark).
set -uo pipefail
cd "$(dirname "$0")/.."
B=${1:-gpu-bundle}
OUT=${OUT:-/tmp/gpu-check}
STEPS=${STEPS:-20}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
rows=()
row() { rows+=("| $1 | $2 |"); echo "gpu-check: $1: $2"; }
json() { "$PY" -c "import json,sys; d=json.load(open('$1')); print(d$2)" 2>/dev/null; }

for f in "$B/qmulgpu" "$B/cuda.test"; do
	[ -x "$f" ] || { echo "gpu-check: $f missing: run 'make gpu-bundle' where Go is installed and copy $B here" >&2; exit 2; }
done

# 1. The machine.
gpu=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -1)
row "GPU, driver, memory" "${gpu:-none found}"
row "nvcc" "$(nvcc --version 2>/dev/null | sed -n 's/.*release \([0-9.]*\).*/\1/p' || echo none)"
"$B/qmulgpu" devices > "$OUT/devices.txt" 2>&1
row "qmulgpu devices" "$(grep -m1 'auto uses' "$OUT/devices.txt" || tail -1 "$OUT/devices.txt")"
row "GPU convolutions" "$(grep -m1 'GPU convolutions' "$OUT/devices.txt" | sed 's/^[^:]*: //')"

# 2. Kernels with the local nvcc.
if command -v nvcc >/dev/null; then
	if command -v cmake >/dev/null; then
		cmake -S . -B "$OUT/build" >"$OUT/kernels.log" 2>&1 && cmake --build "$OUT/build" >>"$OUT/kernels.log" 2>&1
	else
		# Without cmake: the same unity build and flags by hand.
		{ for f in kernels/*.cu; do echo "#include \"$PWD/$f\""; done; } >"$OUT/all.cu"
		nvcc -fatbin -O3 -Werror all-warnings -I kernels \
			-gencode arch=compute_80,code=sm_80 -gencode arch=compute_86,code=sm_86 \
			-gencode arch=compute_89,code=sm_89 -gencode arch=compute_90,code=sm_90 \
			-gencode arch=compute_80,code=compute_80 -o "$OUT/qmulgpu.fatbin" "$OUT/all.cu" >"$OUT/kernels.log" 2>&1
	fi
	[ $? -eq 0 ] && row "kernels with local nvcc" "compiled, no warnings" || row "kernels with local nvcc" "FAILED (see $OUT/kernels.log)"
fi

# 3. Parity: every op on the GPU against its CPU twin, and training steps.
for conv in cudnn im2col; do
	QMUL_CONV=$conv "$B/cuda.test" -test.v -test.timeout 15m >"$OUT/parity-$conv.log" 2>&1
	status=$?
	log="$OUT/parity-$conv.log"
	pass=$(grep -c -- '--- PASS' "$log"); fail=$(grep -c -- '--- FAIL' "$log"); skip=$(grep -c -- '--- SKIP' "$log")
	row "GPU vs CPU parity tests, --conv $conv" "$pass passed, $fail failed, $skip skipped (exit $status; $log)"
done

# 4. Memcheck of a few training steps.
if command -v compute-sanitizer >/dev/null; then
	compute-sanitizer --tool memcheck --error-exitcode 9 "$B/qmulgpu" bench --device cuda --model smallcnn \
		--quant lsq --batch 32 --steps 2 --warmup-steps 1 >"$OUT/memcheck.log" 2>&1
	row "compute-sanitizer memcheck (smallcnn LSQ steps)" "$(grep -m1 'ERROR SUMMARY' "$OUT/memcheck.log" || echo "exit $?; see $OUT/memcheck.log")"
else
	row "compute-sanitizer memcheck" "compute-sanitizer not found"
fi

# 5a. Training steps: ours on each convolution path and PyTorch's, on the
# same GPU. ms/step is what bench/convmodel predicts.
for q in lsq none; do
	qflags=(--quant "$q"); [ "$q" = none ] && qflags=()
	"$PY" bench/torch_bench.py --device cuda --model resnet18 --batch 256 --steps "$STEPS" --quant "$q" >"$OUT/bench-torch-$q.json" 2>"$OUT/bench-torch-$q.err"
	t=$(json "$OUT/bench-torch-$q.json" "['images_per_sec']")
	for conv in cudnn im2col; do
		"$B/qmulgpu" bench --device cuda --conv "$conv" --model resnet18 --batch 256 --steps "$STEPS" "${qflags[@]}" --json \
			>"$OUT/bench-ours-$q-$conv.json" 2>"$OUT/bench-ours-$q-$conv.err"
		o=$(json "$OUT/bench-ours-$q-$conv.json" "['images_per_sec']")
		ms=$(json "$OUT/bench-ours-$q-$conv.json" "['ms_per_step']")
		ratio=$("$PY" -c "print('%.2f' % ($o/$t))" 2>/dev/null || echo "?")
		row "ResNet-18 $q batch 256 train step, --conv $conv (img/s)" "qmulgpu ${o:-failed} (${ms:-?} ms/step) vs PyTorch ${t:-failed} = ${ratio}x"
	done
done

# 5b. One unlearning epoch on CIFAR-10-shaped data (random pixels: the time
# does not depend on them): 49,500 training images, 4,500 forgotten.
if [ -z "${SKIP_EPOCH:-}" ]; then
	rm -f "$OUT"/torch-qmul.json "$OUT"/torch-rl.json
	"$PY" - "$OUT/cifar/cifar-10-batches-bin" <<'PYEOF'
import os, sys
import numpy as np
d = sys.argv[1]
os.makedirs(d, exist_ok=True)
rng = np.random.default_rng(1)
for name, n in [("data_batch_%d.bin" % i, 10000) for i in range(1, 6)] + [("test_batch.bin", 10000)]:
    rec = np.empty((n, 3073), np.uint8)
    rec[:, 0] = rng.integers(0, 10, n)
    rec[:, 1:] = rng.integers(0, 256, (n, 3072))
    rec.tofile(os.path.join(d, name))
PYEOF
	common=(--device cuda --data "$OUT/cifar" --quiet)
	"$B/qmulgpu" train "${common[@]}" --dataset cifar10 --model resnet18 --quant lsq --val-frac 0.01 \
		--subset 1024 --test-subset 1000 --epochs 1 --batch 256 --lr 0.1 --out "$OUT/orig" --force >"$OUT/orig.log" 2>&1
	for variant in "qmul epoch cudnn" "qmul epoch im2col" "qmul sample auto" "rl - auto"; do
		set -- $variant
		flags=(--method "$1" --conv "$3"); [ "$2" != - ] && flags+=(--agr "$2")
		name=${variant// /-}
		"$B/qmulgpu" unlearn "${common[@]}" --checkpoint "$OUT/orig/model.safetensors" "${flags[@]}" --subset 0 \
			--forget random:4500 --epochs 1 --batch 256 --out "$OUT/$name" >"$OUT/$name.log" 2>&1
		ours=$(json "$OUT/$name/metrics.json" "['rte_s']")
		tm=qmul; [ "$1" = rl ] && tm=rl
		theirs=""
		if [ "$2" != sample ]; then
			# PyTorch's epoch once per method, compared with each path.
			[ -s "$OUT/torch-$tm.json" ] || "$PY" bench/torch_unlearn_epoch.py --device cuda --model resnet18 --quant lsq \
				--method "$tm" --forget 4500 --retain 45000 --batch 256 >"$OUT/torch-$tm.json" 2>"$OUT/torch-$tm.err"
			theirs=$(json "$OUT/torch-$tm.json" "['epoch_seconds']")
		fi
		if [ -n "$theirs" ]; then
			row "ResNet-18 LSQ $1 --agr $2 --conv $3 epoch (s)" "qmulgpu ${ours:-failed} vs PyTorch $theirs = $("$PY" -c "print('%.2f' % ($theirs/$ours))" 2>/dev/null || echo ?)x"
		else
			row "ResNet-18 LSQ $1 --agr $2 --conv $3 epoch (s)" "qmulgpu ${ours:-failed}"
		fi
	done
fi

echo
echo "| check | result |"
echo "|---|---|"
printf '%s\n' "${rows[@]}"
