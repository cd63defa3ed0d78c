#!/usr/bin/env bash
# Trains smallcnn on the full Fashion-MNIST training set with the recipe of
# docs/quantization.md (5 epochs, batch 128, SGD lr 0.05 momentum 0.9,
# weight decay 5e-4, cosine) in float and with every scheme at W2A2, W4A4
# and W8A8, then prints one Markdown table per scheme.
#   scripts/qat-study.sh [OUTDIR]      (bin/qmulgpu must be built)
set -euo pipefail
out=${1:-out/qat-study}
bin=${QMUL_BIN:-bin/qmulgpu}
mkdir -p "$out"
unset OPENBLAS_CORETYPE
common=(--dataset fashion-mnist --model smallcnn --val-frac 0 --epochs 5 --batch 128 --lr 0.05 --seed 1 --quiet --force)

run() { # name, extra flags...
	local name=$1; shift
	[ -f "$out/$name/metrics.json" ] || "$bin" train "${common[@]}" "$@" --out "$out/$name" >/dev/null
}
acc() { /usr/bin/python3 -c "import json; print('%.2f' % json.load(open('$out/$1/metrics.json'))['test_acc'])"; }
secs() { /usr/bin/python3 -c "import json; print('%.0f' % json.load(open('$out/$1/metrics.json'))['phases_s']['train'])"; }

run float
echo "Float: test accuracy $(acc float)% ($(secs float) s)."
for scheme in lsq pact dorefa minmax; do
	echo
	echo "| $scheme | test accuracy | vs float | train time (s) |"
	echo "|---|---:|---:|---:|"
	for bits in 2 4 8; do
		run "$scheme-w${bits}a${bits}" --quant "$scheme" --wbits "$bits" --abits "$bits"
		a=$(acc "$scheme-w${bits}a${bits}")
		printf '| W%sA%s | %s%% | %+.2f | %s |\n' "$bits" "$bits" "$a" "$(/usr/bin/python3 -c "print($a - $(acc float))")" "$(secs "$scheme-w${bits}a${bits}")"
	done
done
