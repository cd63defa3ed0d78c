#!/usr/bin/env bash
# Times one unlearning epoch of each reweighting mode against RL (our own
# ratios), and Q-MUL and RL epochs against PyTorch (bench/torch_unlearn_epoch.py)
# on the same model, quantizer, data sizes and thread count. Prints a
# Markdown table.
#   bench/unlearn-epoch.sh [path/to/qmulgpu]    (SUBSET=20000 THREADS=nproc)
set -euo pipefail
bin=${1:-bin/qmulgpu}
subset=${SUBSET:-20000}
threads=${THREADS:-$(nproc)}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
unset OPENBLAS_CORETYPE
py=/usr/bin/python3
forget=$((subset / 10))
retain=$((subset - forget))

"$bin" train --dataset fashion-mnist --model smallcnn --quant lsq --val-frac 0 --subset 1000 --test-subset 1000 \
	--epochs 1 --lr 0.05 --batch 128 --threads "$threads" --quiet --out "$work/orig" >/dev/null
rte() { # label, unlearn flags...
	local label=$1; shift
	"$bin" unlearn --checkpoint "$work/orig/model.safetensors" --subset "$subset" --forget "random:$forget" \
		--epochs 1 --batch 128 --threads "$threads" --quiet --out "$work/$label" "$@" >/dev/null
	"$py" -c "import json; print(json.load(open('$work/$label/metrics.json'))['rte_s'])"
}
rl=$(rte rl --method rl)
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $threads threads; smallcnn LSQ W4A4, Fashion-MNIST: $forget forget + $retain retain images, batch 128, one epoch"
echo
echo "| method | epoch (s) | vs RL |"
echo "|---|---:|---:|"
printf '| rl | %.1f | 1.00 |\n' "$rl"
for v in "qmul --agr epoch" "qmul --agr step" "qmul --agr sample" "qmul --agr sample --schedule joint" "qmul --agr epoch --schedule joint"; do
	set -- $v
	label=$(echo "$v" | tr ' ' '_' | tr -d -)
	s=$(rte "$label" --method "$@")
	printf '| %s | %.1f | %.2f |\n' "$v" "$s" "$("$py" -c "print($s/$rl)")"
done
echo
echo "| epoch | qmulgpu (s) | PyTorch (s) | speed-up |"
echo "|---|---:|---:|---:|"
for m in qmul rl; do
	flags=(--method "$m"); [ "$m" = qmul ] && flags+=(--agr epoch)
	ours=$(rte "torch-$m" "${flags[@]}")
	theirs=$("$py" "$(dirname "$0")/torch_unlearn_epoch.py" --model smallcnn --quant lsq --method "$m" \
		--forget "$forget" --retain "$retain" --batch 128 --threads "$threads" |
		"$py" -c "import json,sys; print(json.load(sys.stdin)['epoch_seconds'])")
	printf '| %s | %.1f | %.1f | %.2f |\n' "$m" "$ours" "$theirs" "$("$py" -c "print($theirs/$ours)")"
done
