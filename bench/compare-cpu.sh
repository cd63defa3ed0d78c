#!/usr/bin/env bash
# Side-by-side CPU benchmark: qmulgpu against PyTorch (Debian's python3-torch)
# on the same models, quantizer, step and thread count. Prints a Markdown
# table with images/s, peak memory and the ratio (qmulgpu / PyTorch).
#   bench/compare-cpu.sh [path/to/qmulgpu]      (THREADS=2 STEPS=10 by default)
set -euo pipefail
bin=${1:-bin/qmulgpu}
threads=${THREADS:-$(nproc)}
steps=${STEPS:-10}
py=/usr/bin/python3
here=$(dirname "$0")
unset OPENBLAS_CORETYPE

field() { "$py" -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }

echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), threads $threads, $("$py" -c 'import torch; print("PyTorch", torch.__version__)')"
echo
echo "| model | quant | batch | qmulgpu img/s | PyTorch img/s | ratio | qmulgpu peak MiB | PyTorch peak MiB |"
echo "|---|---|---|---|---|---|---|---|"
while read -r model batch quant; do
	qflags=()
	[ "$quant" = lsq ] && qflags=(--quant lsq --wbits 4 --abits 4)
	ours=$("$bin" bench --model "$model" --batch "$batch" --steps "$steps" --threads "$threads" --device cpu "${qflags[@]}" --json)
	theirs=$("$py" "$here/torch_bench.py" --model "$model" --batch "$batch" --steps "$steps" --threads "$threads" --quant "$quant")
	oi=$(echo "$ours" | field images_per_sec); ti=$(echo "$theirs" | field images_per_sec)
	om=$(echo "$ours" | field peak_rss_mib); tm=$(echo "$theirs" | field peak_rss_mib)
	printf '| %s | %s | %s | %.1f | %.1f | %.2f | %.0f | %.0f |\n' "$model" "$quant" "$batch" "$oi" "$ti" "$("$py" -c "print($oi/$ti)")" "$om" "$tm"
done <<'CASES'
smallcnn 128 none
smallcnn 128 lsq
resnet18 64 none
resnet18 64 lsq
CASES
