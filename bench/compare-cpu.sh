#!/usr/bin/env bash
# Side-by-side CPU benchmark: qmulgpu against PyTorch (Debian's python3-torch)
# on the same models, quantizer, step and thread count, then qmulgpu's
# per-op breakdown of each step. Each case runs REPEATS times on each
# side, the two programs alternating, and the table gives the min, median
# and max images/s of each side with two ratios (qmulgpu / PyTorch): best
# against best and median against median. Processor time per image
# (all threads) is given beside them: on a loaded machine it moves far
# less than wall time. The load average is printed before and after.
#
#   bench/compare-cpu.sh [path/to/qmulgpu]
#
# Environment: THREADS (default nproc), REPEATS (default 5), CASES (a
# regular expression over "model quant", default all), BEFORE (a second
# qmulgpu binary whose per-op breakdown is printed beside the first, for
# before/after comparisons), PROFILE=0 (no breakdown).
set -euo pipefail
bin=${1:-bin/qmulgpu}
threads=${THREADS:-$(nproc)}
repeats=${REPEATS:-5}
cases=${CASES:-.}
py=/usr/bin/python3
here=$(dirname "$0")
unset OPENBLAS_CORETYPE

# stats reads the JSON lines of one side and prints min, median and max
# images/s, the median processor ms per image and the largest peak RSS.
stats() {
	"$py" -c '
import json, statistics, sys
rs = [json.loads(l) for l in sys.stdin if l.strip()]
ips = [r["images_per_sec"] for r in rs]
cpu = statistics.median(1000 * r["cpu_seconds"] / (r["steps"] * r["batch"]) for r in rs)
print(min(ips), statistics.median(ips), max(ips), cpu, max(r["peak_rss_mib"] for r in rs))'
}

# The cases: model, batch, quantizer and timed steps per run (fewer for the
# slow models, so that one run takes seconds, not minutes).
all_cases='smallcnn 128 none 20
smallcnn 128 lsq 20
resnet18 64 none 5
resnet18 64 lsq 5
mobilenetv2 64 none 3
mobilenetv2 64 lsq 3'
selected=$(grep -E -- "$cases" <<<"$all_cases" || true)
[ -n "$selected" ] || { echo "compare-cpu.sh: CASES=$cases matches no case" >&2; exit 2; }

start=$(date +%s)
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), threads $threads, $("$py" -c 'import torch; print("PyTorch", torch.__version__)'), $repeats alternating runs per side"
echo "qmulgpu: $("$bin" bench --model smallcnn --batch 1 --steps 1 --warmup-steps 0 --threads "$threads" --device cpu --json | "$py" -c 'import json,sys; print(json.load(sys.stdin)["device"])' 2>/dev/null || echo "$bin")"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| model | quant | batch | qmulgpu img/s min / median / max | PyTorch img/s min / median / max | ratio best/best | ratio median/median | CPU ms/img qmulgpu / PyTorch | peak MiB qmulgpu / PyTorch |"
echo "|---|---|---|---|---|---|---|---|---|"
while read -r model batch quant steps; do
	qflags=()
	[ "$quant" = lsq ] && qflags=(--quant lsq --wbits 4 --abits 4)
	ours="" theirs=""
	for _ in $(seq "$repeats"); do
		ours+=$("$bin" bench --model "$model" --batch "$batch" --steps "$steps" --threads "$threads" --device cpu "${qflags[@]}" --json | tr -d '\n')$'\n'
		theirs+=$("$py" "$here/torch_bench.py" --model "$model" --batch "$batch" --steps "$steps" --threads "$threads" --quant "$quant")$'\n'
	done
	read -r omin omed omax ocpu om <<<"$(printf '%s' "$ours" | stats)"
	read -r tmin tmed tmax tcpu tm <<<"$(printf '%s' "$theirs" | stats)"
	printf '| %s | %s | %s | %.1f / %.1f / %.1f | %.1f / %.1f / %.1f | %.2f | %.2f | %.2f / %.2f | %.0f / %.0f |\n' \
		"$model" "$quant" "$batch" "$omin" "$omed" "$omax" "$tmin" "$tmed" "$tmax" \
		"$("$py" -c "print($omax/$tmax)")" "$("$py" -c "print($omed/$tmed)")" "$ocpu" "$tcpu" "$om" "$tm"
done <<<"$selected"
echo
echo "load average after the table: $(cut -d' ' -f1-3 /proc/loadavg)"

if [ "${PROFILE:-1}" != 0 ]; then
	while read -r model batch quant steps; do
		qflags=()
		[ "$quant" = lsq ] && qflags=(--quant lsq --wbits 4 --abits 4)
		for b in "$bin" ${BEFORE:+"$BEFORE"}; do
			echo
			echo "== per-op breakdown: $model $quant batch $batch, $b"
			"$b" bench --model "$model" --batch "$batch" --steps "$steps" --threads "$threads" --device cpu "${qflags[@]}" --profile
		done
	done <<<"$selected"
fi
echo
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg); $(($(date +%s) - start)) s in all"
