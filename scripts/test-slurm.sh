#!/usr/bin/env bash
# End-to-end test of deploy/slurm/sweep.sbatch on a real one-node Slurm
# cluster that this script starts on this machine (as root) and tears down.
#
#   scripts/install-deps.sh slurm      # slurm-wlm and munge (Debian/Ubuntu)
#   sudo scripts/test-slurm.sh
#
# What it does:
#   1. starts a private munged (own key and socket), writes a one-node
#      slurm.conf (this host, its CPUs and memory, one partition that lets
#      four one-CPU tasks share the cores, no accounting) and starts
#      slurmctld and slurmd, all under a temporary directory and on free
#      ports, so a Slurm or munge already on the machine is left alone;
#   2. builds qmulgpu (or takes $QMUL_BIN);
#   3. submits qmul/sweep/testdata/slurm.yaml as a 4-task array through
#      deploy/slurm/sweep.sbatch, cancels one task (scancel JOB_TASK) while
#      it is in the middle of a cell, waits for the other tasks, then
#      resubmits only that task index (sbatch --array=I) and waits for it;
#   4. runs `qmulgpu report` and checks that every cell of the grid and of
#      its learning-rate search (whose rounds the tasks share out as they
#      finish their own cells) appears exactly once in results.csv, that
#      the search is complete, that report.md exists and that no lock
#      file is left.
#
# Environment: QMUL_BIN (a built binary; default: build one with go),
# KEEP=1 (keep the temporary directory), TIMEOUT (seconds any one wait may
# take, default 600), RESUBMIT=shards (resubmit with QMUL_SHARDS=4 so the
# task keeps its shard; default plain: `sbatch --array=I` alone).
# Exit status: 0 passed, 1 failed, 2 missing prerequisites, 130 interrupted.
# It takes about 2 minutes on 2 cores.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SBATCH_SCRIPT=$ROOT/deploy/slurm/sweep.sbatch
CONFIG=$ROOT/qmul/sweep/testdata/slurm.yaml
SHARDS=4
TIMEOUT=${TIMEOUT:-600}
# The fixed grid of slurm.yaml: 1 data set x 1 model x 1 bit width x 2
# seeds x 1 forget set, and per (seed, forget set) one Retrain cell, one
# evaluation of the original, ft at two learning rates, qmul and
# qmul-sample: 2 x (2 + 4) = 12 cells; 2 originals. The cells of rl's
# learning-rate search are added from its record in searches/.
GRID_CELLS=12
EXPECTED_ORIGINALS=2
SEARCHED=rl
# The cells a cancelled task is caught in: unlearning cells of the fixed
# grid, which only their own shard runs (Retrain cells and the original's
# evaluations are made by whichever task needs them first, and the search
# needs the evaluations).
VICTIM_NAMES="ft|qmul|qmul-sample"
# name lr seed of every row of the fixed grid (lr empty for Retrain and the
# original).
GRID_ROWS="retrain,,1 retrain,,2 original,,1 original,,2 ft,0.01,1 ft,0.01,2 ft,0.05,1 ft,0.05,2 qmul,0.01,1 qmul,0.01,2 qmul-sample,0.01,1 qmul-sample,0.01,2"

export PATH=$PATH:/usr/sbin:/sbin
# Let OpenBLAS pick its kernels (some environments force a slower set); sbatch
# passes this shell's environment on to the jobs.
unset OPENBLAS_CORETYPE

START=$(date +%s)
log() { echo "test-slurm: $*" >&2; }

if [ "$(id -u)" -ne 0 ]; then
	log "must run as root (it starts slurmctld, slurmd and munged)"
	exit 2
fi
missing=()
for c in slurmctld slurmd munged munge sbatch squeue scancel sinfo scontrol; do
	command -v "$c" >/dev/null 2>&1 || missing+=("$c")
done
if [ ${#missing[@]} -gt 0 ]; then
	log "missing ${missing[*]}: install Slurm and munge first (scripts/install-deps.sh slurm installs slurm-wlm and munge)"
	exit 2
fi
if [ -z "${QMUL_BIN:-}" ] && ! command -v go >/dev/null 2>&1; then
	log "no go on PATH to build qmulgpu: set QMUL_BIN to a built binary (sudo resets PATH: sudo env PATH=\"\$PATH\" $0)"
	exit 2
fi
for f in "$SBATCH_SCRIPT" "$CONFIG"; do
	[ -r "$f" ] || { log "missing $f"; exit 2; }
done

T=$(mktemp -d "${TMPDIR:-/tmp}/qmul-slurm.XXXXXX")
# munged insists that every directory above its socket be searchable by all.
chmod 755 "$T"
mkdir -p "$T"/{etc,state,spool,run,log,munge,jobs}
chmod 755 "$T/munge"
OUT=$T/results
export SLURM_CONF=$T/etc/slurm.conf
JOBS=() # every job id submitted, for the teardown
failed=0

show_logs() {
	local f
	for f in "$T"/log/* "$T"/munge/munged.log "$T"/jobs/*.out; do
		[ -f "$f" ] || continue
		# A daemon's stderr repeats its log file once that is open.
		case "$f" in */slurmctld.out | */slurmd.out) [ -s "${f%.out}.log" ] && continue ;; esac
		echo "----- ${f#"$T"/} (last 40 lines) -----" >&2
		tail -n 40 "$f" >&2
	done
	if [ -d "$OUT/locks" ]; then
		echo "----- results/locks -----" >&2
		ls -la "$OUT/locks" >&2
	fi
	echo "-----" >&2
}

fail() {
	log "FAIL: $*"
	failed=1
	show_logs
	log "FAIL: $* (logs above; KEEP=1 keeps $T)"
	exit 1
}

# pids_of_ours lists processes started for this test's jobs: their
# environment names this test's results directory.
pids_of_ours() {
	# (grep runs without QMUL_OUT, so as not to find itself)
	env -u QMUL_OUT grep -lzxF "QMUL_OUT=$OUT" /proc/[0-9]*/environ 2>/dev/null | sed -n 's|^/proc/\([0-9]*\)/environ$|\1|p' | grep -vx "$$"
	return 0
}

stop_pid() { # pid name
	local pid=$1 i
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
	kill "$pid" 2>/dev/null || true
	for i in $(seq 50); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.2
	done
	log "teardown: $2 (pid $pid) ignored SIGTERM; killing it"
	kill -9 "$pid" 2>/dev/null || true
}

teardown() {
	local rc=$? i pid
	trap - EXIT INT TERM
	set +e
	if [ $rc -eq 130 ]; then
		log "interrupted; tearing down"
	elif [ $rc -ne 0 ] && [ $failed -eq 0 ]; then
		log "FAIL: exit status $rc (a command above failed)"
		show_logs
	fi
	if [ ${#JOBS[@]} -gt 0 ] && [ -n "${CTLD_PID:-}" ]; then
		scancel "${JOBS[@]}" 2>/dev/null
		for i in $(seq 60); do
			[ -z "$(squeue -h -j "$(
				IFS=,
				echo "${JOBS[*]}"
			)" 2>/dev/null)" ] && break
			sleep 0.5
		done
	fi
	for pid in $(pids_of_ours); do
		kill -9 "$pid" 2>/dev/null
	done
	stop_pid "${SLURMD_PID:-}" slurmd
	stop_pid "${CTLD_PID:-}" slurmctld
	[ -f "$T/munge/munged.pid" ] && stop_pid "$(cat "$T/munge/munged.pid")" munged
	if [ "${KEEP:-0}" = 1 ]; then
		log "kept $T"
	else
		rm -rf "$T"
	fi
	exit $rc
}
trap teardown EXIT
trap 'exit 130' INT TERM

# wait_for SECONDS WHAT COMMAND...: polls COMMAND until it succeeds.
wait_for() {
	local limit=$1 what=$2 deadline
	shift 2
	deadline=$(($(date +%s) + limit))
	until "$@"; do
		[ "$(date +%s)" -lt "$deadline" ] || fail "timed out after ${limit}s waiting for $what"
		sleep 1
	done
}

# free_port prints a TCP port nothing listens on.
free_port() {
	local p
	for _ in $(seq 100); do
		p=$((20000 + RANDOM % 20000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

# ---- munge ----
mungekey --create --keyfile="$T/munge/munge.key" 2>/dev/null ||
	{ dd if=/dev/urandom of="$T/munge/munge.key" bs=1 count=1024 status=none && chmod 600 "$T/munge/munge.key"; }
munged --socket="$T/munge/munge.socket" --key-file="$T/munge/munge.key" --pid-file="$T/munge/munged.pid" \
	--log-file="$T/munge/munged.log" --seed-file="$T/munge/munged.seed" ||
	fail "munged did not start"
wait_for 20 "munged" test -S "$T/munge/munge.socket"
munge -S "$T/munge/munge.socket" -n | unmunge -S "$T/munge/munge.socket" >/dev/null || fail "munge round trip failed"

# ---- Slurm ----
HOST=$(hostname -s 2>/dev/null || uname -n)
HOST=${HOST%%.*}
NCPU=$(nproc)
# RealMemory a little under the total, so slurmd never finds less than that.
if command -v free >/dev/null; then
	MEM=$(free -m | awk '/^Mem:/ {print int($2 * 0.9)}')
else
	MEM=$(awk '/^MemTotal:/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)
fi
CTLD_PORT=$(free_port) || fail "no free TCP port found"
SLURMD_PORT=$CTLD_PORT
while [ "$SLURMD_PORT" = "$CTLD_PORT" ]; do SLURMD_PORT=$(free_port) || fail "no free TCP port found"; done
cat >"$SLURM_CONF" <<EOF
# One-node test cluster of scripts/test-slurm.sh.
ClusterName=qmultest
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$T/munge/munge.socket
CredType=cred/munge
StateSaveLocation=$T/state
SlurmdSpoolDir=$T/spool
SlurmctldPidFile=$T/run/slurmctld.pid
SlurmdPidFile=$T/run/slurmd.pid
SlurmctldLogFile=$T/log/slurmctld.log
SlurmdLogFile=$T/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MailProg=/bin/true
KillWait=5
MinJobAge=3600
InactiveLimit=0
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$NCPU RealMemory=$MEM State=UNKNOWN
# FORCE:4 lets the four one-CPU array tasks share the cores of a small machine.
PartitionName=test Nodes=$HOST Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
EOF

slurmctld -D -c -f "$SLURM_CONF" >"$T/log/slurmctld.out" 2>&1 &
CTLD_PID=$!
slurmd -D -N "$HOST" -f "$SLURM_CONF" >"$T/log/slurmd.out" 2>&1 &
SLURMD_PID=$!
node_idle() {
	kill -0 "$CTLD_PID" 2>/dev/null || fail "slurmctld exited"
	kill -0 "$SLURMD_PID" 2>/dev/null || fail "slurmd exited"
	[ "$(sinfo -h -N -n "$HOST" -o %T 2>/dev/null)" = idle ]
}
wait_for 60 "node $HOST to be idle in sinfo" node_idle
log "cluster up: node $HOST, $NCPU CPUs, ${MEM} MB, ports $CTLD_PORT/$SLURMD_PORT, in $T"

# ---- qmulgpu ----
if [ -n "${QMUL_BIN:-}" ]; then
	BIN=$(command -v "$QMUL_BIN") || fail "QMUL_BIN=$QMUL_BIN: not found"
else
	BIN=$T/qmulgpu
	log "building qmulgpu"
	(cd "$ROOT" && go build -o "$BIN" ./cmd/qmulgpu) || fail "go build failed"
fi

# ---- the sweep ----
export QMUL_BIN=$BIN QMUL_CONFIG=$CONFIG QMUL_OUT=$OUT QMUL_DEVICE=cpu QMUL_THREADS=1
unset QMUL_SHARDS QMUL_ARGS
submit() { # sbatch options...; prints the job id
	local id
	id=$(sbatch --parsable --chdir="$T/jobs" --cpus-per-task=1 --mem=512M "$@" "$SBATCH_SCRIPT") || return 1
	echo "${id%%;*}"
}
job_gone() { [ -z "$(squeue -h -j "$1" 2>/dev/null)" ]; }
# task_state JOB TASK prints the state of one array task (RUNNING, ...).
task_state() {
	scontrol -o show job "$1" 2>/dev/null | grep -E "(^| )ArrayTaskId=$2( |$)" |
		sed -n 's/.* JobState=\([A-Z_]*\).*/\1/p' | head -n 1
}
task_exit() {
	scontrol -o show job "$1" 2>/dev/null | grep -E "(^| )ArrayTaskId=$2( |$)" |
		sed -n 's/.* ExitCode=\([0-9:]*\).*/\1/p' | head -n 1
}
task_ended() { local s; s=$(task_state "$1" "$2"); [ -n "$s" ] && [ "$s" != RUNNING ] && [ "$s" != COMPLETING ]; }
pid_gone() { ! kill -0 "$1" 2>/dev/null; }
finished_cells() { find "$OUT/cells" -mindepth 2 -maxdepth 2 -name metrics.json 2>/dev/null | wc -l; }

JOB=$(submit --array=0-$((SHARDS - 1))) || fail "sbatch --array=0-$((SHARDS - 1)) failed"
JOBS+=("$JOB")
log "submitted job array $JOB (tasks 0-$((SHARDS - 1)))"

# Find a task in the middle of a cell: a lock on a cell that has started
# (cell.json written) but not finished (no metrics.json), held by a
# process of this job; the lock file holds "token host pid time".
victim_task=""
victim_cell=""
victim_pid=""
find_victim() {
	local l key pid task env
	for l in "$OUT"/locks/*.lock; do
		[ -f "$l" ] || continue
		key=$(basename "$l" .lock)
		[ -f "$OUT/cells/$key/cell.json" ] && [ ! -f "$OUT/cells/$key/metrics.json" ] || continue
		# An unlearning cell of the fixed grid: no other task takes it
		# over, so the grid cannot finish without the resubmitted task.
		grep -Eq "^  \"name\": \"($VICTIM_NAMES)\"" "$OUT/cells/$key/cell.json" || continue
		pid=$(awk '{print $3; exit}' "$l" 2>/dev/null) || continue # token host pid time
		[ -n "$pid" ] && [ -r "/proc/$pid/environ" ] || continue
		env=$({ tr '\0' '\n' <"/proc/$pid/environ"; } 2>/dev/null) || continue
		grep -qxF "SLURM_ARRAY_JOB_ID=$JOB" <<<"$env" || continue
		task=$(sed -n 's/^SLURM_ARRAY_TASK_ID=//p' <<<"$env")
		[ -n "$task" ] || continue
		victim_task=$task victim_cell=$key victim_pid=$pid
		return 0
	done
	job_gone "$JOB" && fail "the array finished before a task could be caught in the middle of a cell"
	return 1
}
state=""
for _ in 1 2 3; do
	deadline=$(($(date +%s) + TIMEOUT))
	until find_victim; do
		[ "$(date +%s)" -lt "$deadline" ] || fail "timed out after ${TIMEOUT}s waiting for a task to start a cell"
		sleep 0.2
	done
	log "task $victim_task is running cell $victim_cell; cancelling ${JOB}_$victim_task"
	scancel "${JOB}_$victim_task" || fail "scancel ${JOB}_$victim_task failed"
	wait_for 60 "task ${JOB}_$victim_task to end" task_ended "$JOB" "$victim_task"
	wait_for 30 "the cancelled task's qmulgpu (pid $victim_pid) to exit" pid_gone "$victim_pid"
	state=$(task_state "$JOB" "$victim_task")
	[ "$state" = CANCELLED ] && break
	log "task $victim_task ended as $state before the cancel reached it; trying another task"
done
[ "$state" = CANCELLED ] || fail "could not cancel a task in the middle of a cell"
cancel_time=$(date +%s)

wait_for "$TIMEOUT" "the other tasks of job $JOB to finish" job_gone "$JOB"
for i in $(seq 0 $((SHARDS - 1))); do
	[ "$i" = "$victim_task" ] && continue
	s=$(task_state "$JOB" "$i")
	e=$(task_exit "$JOB" "$i")
	[ "$s" = COMPLETED ] && [ "$e" = 0:0 ] || fail "task ${JOB}_$i ended as $s (exit $e)"
done
before=$(finished_cells)
log "other tasks finished $(($(date +%s) - cancel_time))s after the cancel (and the search); $before cells finished"
[ -f "$OUT/cells/$victim_cell/metrics.json" ] && fail "cell $victim_cell of the cancelled task finished without it: the cancel came too late"

# Plainly resubmitted, the lone task is shard 0 of 1 (Slurm tells it of no
# other task) and runs whatever is unfinished; RESUBMIT=shards passes
# QMUL_SHARDS so that it keeps its shard I of 4.
case "${RESUBMIT:-plain}" in
plain) JOB2=$(submit --array="$victim_task") || fail "sbatch --array=$victim_task failed" ;;
shards) JOB2=$(QMUL_SHARDS=$SHARDS submit --array="$victim_task") || fail "QMUL_SHARDS=$SHARDS sbatch --array=$victim_task failed" ;;
*) fail "RESUBMIT=$RESUBMIT: want plain or shards" ;;
esac
JOBS+=("$JOB2")
log "resubmitted task $victim_task as job $JOB2 (${RESUBMIT:-plain})"
wait_for "$TIMEOUT" "resubmitted job $JOB2 to finish" job_gone "$JOB2"
s=$(task_state "$JOB2" "$victim_task")
e=$(task_exit "$JOB2" "$victim_task")
[ "$s" = COMPLETED ] && [ "$e" = 0:0 ] || fail "resubmitted task ${JOB2}_$victim_task ended as $s (exit $e)"
resubmitted_summary=$(grep -h '^sweep shard' "$T"/jobs/*-"${JOB2}"_*.out 2>/dev/null | tail -n 1 | sed 's/;.*//')
case "$resubmitted_summary" in
"sweep shard "*", 0 run now, "*) fail "the resubmitted task ran nothing: $resubmitted_summary" ;;
"sweep shard $victim_task/$SHARDS: "* | "sweep shard 0/1: "*) ;;
*) fail "unexpected summary of the resubmitted task: '$resubmitted_summary'" ;;
esac
[ "${RESUBMIT:-plain}" != shards ] || [[ "$resubmitted_summary" == "sweep shard $victim_task/$SHARDS: "* ]] ||
	fail "the resubmitted task did not keep its shard $victim_task/$SHARDS: $resubmitted_summary"

# ---- the report ----
"$BIN" report "$OUT" >"$T/log/report.out" 2>&1 || { cat "$T/log/report.out" >&2; fail "qmulgpu report failed"; }
# The search's rows: each round's rates on its seeds, then its choice (and
# any rejected one) on the other seeds.
search_rows=$(python3 -c 'import glob, json, sys
files = glob.glob(sys.argv[1] + "/searches/*.json")
if len(files) != 1:
    sys.exit("%d search records, want 1" % len(files))
s = json.load(open(files[0]))
if not s["complete"] or not s.get("lr"):
    sys.exit("the search is not complete: %s" % s)
g = lambda lr: "%g" % lr
rows = [(g(lr), seed) for r in s["rounds"] for lr in r for seed in s["seeds"]]
rows += [(g(lr), seed) for lr in s.get("rejected", []) + [s["lr"]] for seed in s.get("final_seeds", [])]
print(" ".join("%s,%s,%d" % (s["name"], lr, seed) for lr, seed in rows))' "$OUT") || fail "searches/: $search_rows"
EXPECTED_ROWS="$GRID_ROWS $search_rows"
EXPECTED_CELLS=$(wc -w <<<"$EXPECTED_ROWS")
[ -s "$OUT/report.md" ] || fail "report.md missing"
[ -s "$OUT/results.csv" ] || fail "results.csv missing"
# results.csv quotes fields that hold commas (the lr_search note): read it
# as CSV once and check its tab-separated form.
python3 -c 'import csv, sys
w = csv.writer(sys.stdout, delimiter="\t", lineterminator="\n")
w.writerows(csv.reader(open(sys.argv[1], newline="")))' "$OUT/results.csv" >"$T/results.tsv" ||
	fail "results.csv is not valid CSV"
csv_check=$(awk -F'\t' -v want="$EXPECTED_ROWS" '
	NR == 1 {
		for (i = 1; i <= NF; i++) col[$i] = i
		if (!("key" in col) || !("name" in col) || !("lr" in col) || !("seed" in col)) { print "results.csv header lacks key, name, lr or seed: " $0; bad = 1; exit }
		next
	}
	{
		rows++
		if (seen[$col["key"]]++) { print "key " $col["key"] " appears twice"; bad = 1 }
		id = $col["name"] "," $col["lr"] "," $col["seed"]
		if (got[id]++) { print "cell " id " appears twice"; bad = 1 }
	}
	END {
		if (bad) exit 1
		n = split(want, w, " ")
		for (i = 1; i <= n; i++) if (!(w[i] in got)) { print "cell " w[i] " missing"; bad = 1 }
		if (rows != n) { print rows " rows, want " n; bad = 1 }
		if (bad) exit 1
		print rows
	}' "$T/results.tsv") || fail "results.csv: $csv_check"
# Every cell directory is finished and in results.csv once, and results.csv
# has no other key.
cells=$(find "$OUT/cells" -mindepth 1 -maxdepth 1 -type d | wc -l)
[ "$cells" -eq "$EXPECTED_CELLS" ] || fail "$cells cell directories, want $EXPECTED_CELLS"
dir_keys=""
for d in "$OUT"/cells/*/; do
	[ -f "$d/metrics.json" ] || [ -f "$d/collapsed.json" ] || fail "cell $(basename "$d") unfinished"
	dir_keys="$dir_keys $(basename "$d")"
done
key_check=$(awk -F'\t' -v dirs="$dir_keys" '
	NR == 1 { for (i = 1; i <= NF; i++) if ($i == "key") k = i; next }
	{ n[$k]++ }
	END {
		m = split(dirs, d, " ")
		for (i = 1; i <= m; i++) { if (n[d[i]] != 1) { print "cell " d[i] " appears " n[d[i]] + 0 " times"; bad = 1 } ; dir[d[i]] = 1 }
		for (key in n) if (!(key in dir)) { print "key " key " has no cell directory"; bad = 1 }
		exit bad
	}' "$T/results.tsv") || fail "results.csv: $key_check"
originals=$(find "$OUT/originals" -mindepth 2 -maxdepth 2 -name metrics.json | wc -l)
[ "$originals" -eq "$EXPECTED_ORIGINALS" ] || fail "$originals finished originals, want $EXPECTED_ORIGINALS"
# Reporting again changes nothing.
cp "$OUT/results.csv" "$T/results.csv.first"
"$BIN" report "$OUT" >>"$T/log/report.out" 2>&1 || fail "second qmulgpu report failed"
cmp -s "$OUT/results.csv" "$T/results.csv.first" || fail "a second report wrote a different results.csv"
locks=$(find "$OUT/locks" -mindepth 1 | wc -l)
[ "$locks" -eq 0 ] || fail "$locks file(s) left in locks/: $(ls "$OUT/locks")"

log "PASS in $(($(date +%s) - START))s: job $JOB, task $victim_task cancelled in cell $victim_cell and resubmitted as $JOB2 ($resubmitted_summary); $csv_check cells in results.csv ($GRID_CELLS of the grid, the rest the search's: $search_rows), each once; $originals originals; report.md written; no locks left"
