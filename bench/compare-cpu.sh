#!/usr/bin/env bash
# Side-by-side CPU benchmark: qmulgpu against PyTorch (Debian's python3-torch)
# on the same models, quantizer, step and thread count. Each measurement is
# repeated REPEATS times, alternating the two programs, and the median is
# kept, so that a noisy neighbour on a shared machine does not decide the
# ratio. Prints a Markdown table with images/s, peak memory and the ratio
# (qmulgpu / PyTorch).
#   bench/compare-cpu.sh [path/to/qmulgpu]   (THREADS=nproc STEPS=10 REPEATS=3)
set -euo pipefail
bin=${1:-bin/qmulgpu}
threads=${THREADS:-$(nproc)}
steps=${STEPS:-10}
repeats=${REPEATS:-3}
py=/usr/bin/python3
here=$(dirname "$0")
unset OPENBLAS_CORETYPE

# median reads JSON lines and prints the median of images_per_sec and the
# largest peak_rss_mib.
median() {
	"$py" -c '
import json, statistics, sys
rs = [json.loads(l) for l in sys.stdin if l.strip()]
print(statistics.median(r["images_per_sec"] for r in rs), max(r["peak_rss_mib"] for r in rs))'
}

echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), threads $threads, $("$py" -c 'import torch; print("PyTorch", torch.__version__)'), median of $repeats alternating runs of $steps steps"
echo
echo "| model | quant | batch | qmulgpu img/s | PyTorch img/s | ratio | qmulgpu peak MiB | PyTorch peak MiB |"
echo "|---|---|---|---|---|---|---|---|"
while read -r model batch quant; do
	qflags=()
	[ "$quant" = lsq ] && qflags=(--quant lsq --wbits 4 --abits 4)
	ours="" theirs=""
	for _ in $(seq "$repeats"); do
		ours+=$("$bin" bench --model "$model" --batch "$batch" --steps "$steps" --threads "$threads" --device cpu "${qflags[@]}" --json | tr -d '\n')$'\n'
		theirs+=$("$py" "$here/torch_bench.py" --model "$model" --batch "$batch" --steps "$steps" --threads "$threads" --quant "$quant")$'\n'
	done
	read -r oi om <<<"$(printf '%s' "$ours" | median)"
	read -r ti tm <<<"$(printf '%s' "$theirs" | median)"
	printf '| %s | %s | %s | %.1f | %.1f | %.2f | %.0f | %.0f |\n' "$model" "$quant" "$batch" "$oi" "$ti" "$("$py" -c "print($oi/$ti)")" "$om" "$tm"
done <<'CASES'
smallcnn 128 none
smallcnn 128 lsq
resnet18 64 none
resnet18 64 lsq
mobilenetv2 64 none
mobilenetv2 64 lsq
CASES
