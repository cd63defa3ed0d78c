#!/usr/bin/env bash
# Builds the images of docker/ on stand-in bases made from Debian packages
# and runs each as a user would. docker/README.md says what the bases must
# provide and how each stand-in provides it.
#
#   scripts/install-deps.sh images     # podman, runc, mmdebstrap (Debian/Ubuntu)
#   sudo scripts/test-images.sh        # or: make test-images
#   sudo scripts/test-images.sh bases  # only make the stand-ins; print their --build-arg flags
#
# What it does:
#   1. makes four stand-in bases with mmdebstrap (Debian 12) and imports
#      them: the Go image (with the Go toolchain this script finds on PATH),
#      Debian slim, and CUDA devel and runtime images made of Debian's
#      nvidia-cuda-toolkit and CUDA runtime libraries. They are cached
#      under a key of their recipe, so later runs reuse them;
#   2. builds docker/Dockerfile.cpu and docker/Dockerfile on them, with
#      the build cache kept between runs;
#   3. checks each image: `--help` through the entrypoint, the OCI version
#      label against `qmulgpu version`, a non-root default user, no build
#      tools in the final stage, its size and what it adds to its base
#      against the budgets below;
#   4. runs each as a user would, with no network, as an unprivileged
#      user, with a data folder (read-only) and an output folder mounted:
#      `devices`, then a tiny train, unlearn and eval; the GPU image must
#      fall back to the CPU with one line per command, and every file
#      written to the host must belong to that user and be readable by it.
#
# It uses podman (as root), or docker where a docker daemon answers.
# podman gets its own configuration and storage under the cache folder
# (CONTAINERS_CONF, CONTAINERS_STORAGE_CONF), so a podman set-up already on
# the machine is neither used nor changed. With docker the daemon's storage
# is used, and only this script's tags are removed.
#
# Environment: QMUL_IMAGES_CACHE (default /var/cache/qmulgpu-images),
# QMUL_IMAGES_ENGINE (podman or docker; default: docker if its daemon
# answers, else podman), QMUL_IMAGES_HOST_CA (a CA bundle the build
# stand-ins trust besides Debian's, for machines behind a TLS-inspecting
# proxy; default: this machine's /etc/ssl/certs/ca-certificates.crt;
# "none": nothing), QMUL_IMAGES_UID (the unprivileged user the images run
# as when this script runs as root; default 4242), KEEP=1 (keep the
# temporary folder and the test tags).
# Exit status: 0 passed, 1 failed, 2 missing prerequisites.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${QMUL_IMAGES_CACHE:-/var/cache/qmulgpu-images}
START=$(date +%s)

# Budgets in MB (10^6 bytes, as podman and docker print sizes). "added" is
# what the Dockerfile's final stage adds to its base: OpenBLAS, the binary,
# the user (and Fashion-MNIST in the CPU image); it does not depend on the
# base, so it catches build tools, caches or a second copy of anything
# leaking into the final stage. The totals hold for the stand-in bases.
declare -A ADDED_MB=([cpu]=130 [gpu]=110) # measured 106 and 80
declare -A TOTAL_MB=([cpu]=220 [gpu]=950)  # measured 183 and 871 (the stand-ins: Debian slim 78, CUDA runtime 791 with cuBLAS 11.8, no cuDNN)

log() { echo "test-images: $*" >&2; }
fail() {
	log "FAIL: $*"
	exit 1
}
elapsed() { echo "$(($(date +%s) - START))s"; }

# ---- prerequisites and the container engine ----
if [ -n "${QMUL_IMAGES_ENGINE:-}" ]; then
	ENGINE=$QMUL_IMAGES_ENGINE
elif command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
	ENGINE=docker
else
	ENGINE=podman
fi
case "$ENGINE" in podman | docker) ;; *)
	log "QMUL_IMAGES_ENGINE=$ENGINE: want podman or docker"
	exit 2
	;;
esac
missing=()
for c in "$ENGINE" mmdebstrap go python3 setpriv flock; do
	command -v "$c" >/dev/null 2>&1 || missing+=("$c")
done
if [ ${#missing[@]} -gt 0 ]; then
	log "missing ${missing[*]} (scripts/install-deps.sh images installs podman, runc and mmdebstrap; Go from go.dev)"
	exit 2
fi
if [ "$(id -u)" -ne 0 ]; then
	log "must run as root: mmdebstrap makes the stand-ins as root, and this machine's podman runs as root"
	exit 2
fi
FMNIST=/usr/share/datasets/fashion-mnist
[ -d "$FMNIST" ] || {
	log "missing $FMNIST (scripts/install-deps.sh installs dataset-fashion-mnist)"
	exit 2
}
HOST_CA=${QMUL_IMAGES_HOST_CA:-/etc/ssl/certs/ca-certificates.crt}
[ "$HOST_CA" = none ] || [ -r "$HOST_CA" ] || {
	log "QMUL_IMAGES_HOST_CA=$HOST_CA: not readable"
	exit 2
}
GOROOT_HOST=$(go env GOROOT)
GO_VERSION=$(go env GOVERSION)

mkdir -p "$CACHE/logs" "$CACHE/standin" "$CACHE/tmp"
# One run at a time per cache: runs share the stand-ins and the store.
exec 9>"$CACHE/lock"
if ! flock -n 9; then
	log "waiting for another run to release $CACHE/lock"
	flock 9
fi

# podman: runc (crun refuses a hybrid cgroup v1 layout), and default
# ulimits within this machine's hard limits; podman itself runs with an
# nproc limit of at most pid_max.
if [ "$ENGINE" = podman ]; then
	nofile=$(ulimit -Hn)
	nproc=$(ulimit -Hu)
	pidmax=$(cat /proc/sys/kernel/pid_max)
	[ "$nofile" = unlimited ] && nofile=1048576
	[ "$nproc" = unlimited ] || [ "$nproc" -gt "$pidmax" ] && nproc=$pidmax
	runtime=""
	command -v runc >/dev/null 2>&1 && runtime='runtime = "runc"'
	cat >"$CACHE/containers.conf" <<EOF
# Written by scripts/test-images.sh for its own podman commands.
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
[engine]
$runtime
# Temporary files and the build's cache mounts (Go's build cache).
image_copy_tmp_dir = "$CACHE/tmp"
EOF
	cat >"$CACHE/storage.conf" <<EOF
# Written by scripts/test-images.sh for its own podman commands.
[storage]
driver = "overlay"
graphroot = "$CACHE/storage"
runroot = "/run/qmulgpu-images-$(echo "$CACHE" | sha256sum | cut -c1-8)"
EOF
	export CONTAINERS_CONF=$CACHE/containers.conf CONTAINERS_STORAGE_CONF=$CACHE/storage.conf
	# Build-cache images made more than a week ago.
	podman image prune -f --filter until=168h >/dev/null 2>&1 || true
fi

# ---- the stand-in bases ----
# Each recipe is the mmdebstrap options of one stand-in, one per line; a
# stand-in is rebuilt when its recipe (or what it copies in) changes.
SOURCES=$CACHE/standin/sources
mkdir -p "$SOURCES"
# Official Debian images keep their sources in deb822 form.
write_sources() { # components
	local f=$SOURCES/${1// /-}.sources
	cat >"$f" <<EOF
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: $1
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: $1
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
	echo "$f"
}

standin_recipe() { # name
	local comps=main
	case $1 in cuda-devel | cuda-runtime) comps="main contrib non-free" ;; esac
	cat <<EOF
--variant=minbase
--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr
--components=${comps// /,}
--aptopt=APT::Install-Recommends "false"
--dpkgopt=force-unsafe-io
--customize-hook=rm -f "\$1/etc/apt/sources.list" "\$1/etc/apt/apt.conf.d/99mmdebstrap"
--customize-hook=upload $(write_sources "$comps") /etc/apt/sources.list.d/debian.sources
EOF
	case $1 in
	go)
		echo "--include=ca-certificates,git,gcc,g++,libc6-dev,make,pkg-config"
		echo "--customize-hook=mkdir \"\$1/usr/local/go\" && tar -C $GOROOT_HOST -c . | tar -C \"\$1/usr/local/go\" -x"
		;;
	debian-slim)
		echo "--dpkgopt=path-exclude=/usr/share/doc/*"
		echo "--dpkgopt=path-include=/usr/share/doc/*/copyright"
		echo "--dpkgopt=path-exclude=/usr/share/man/*"
		echo "--dpkgopt=path-exclude=/usr/share/info/*"
		echo "--dpkgopt=path-exclude=/usr/share/locale/*"
		;;
	cuda-devel)
		echo "--include=ca-certificates,nvidia-cuda-toolkit"
		# The build stage runs nvcc and links no CUDA library: leave out
		# the static libraries and the math libraries (5 GB of 6).
		local lib
		for lib in '*_static*.a' 'libcublas*' 'libcufft*' 'libcurand*' 'libcusolver*' 'libcusparse*' 'libnpp*' 'libnvjpeg*' 'libnvblas*'; do
			echo "--dpkgopt=path-exclude=/usr/lib/*/$lib"
		done
		;;
	cuda-runtime)
		echo "--include=libcublas11,libcublaslt11,libcudart11.0"
		;;
	esac
	if [ "$HOST_CA" != none ] && { [ "$1" = go ] || [ "$1" = cuda-devel ]; }; then
		echo "--customize-hook=upload $HOST_CA /usr/local/share/ca-certificates/qmulgpu-test-host.crt"
		echo "--customize-hook=chroot \"\$1\" update-ca-certificates"
	fi
}

standin_changes() { # name: the image's environment, as --change flags
	local path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
	case $1 in
	go) printf '%s\n' "--change=ENV PATH=/usr/local/go/bin:/go/bin:$path" "--change=ENV GOPATH=/go" "--change=ENV GOTOOLCHAIN=local" ;;
	*) printf '%s\n' "--change=ENV PATH=$path" ;;
	esac
}

standin_ref() { # name
	local key
	key=$({
		standin_recipe "$1"
		standin_changes "$1"
		declare -f write_sources
		[ "$1" != go ] || echo "$GO_VERSION"
		[ "$HOST_CA" = none ] || sha256sum <"$HOST_CA"
	} | sha256sum | cut -c1-16)
	echo "localhost/qmulgpu-standin/$1:$key"
}

have_image() { "$ENGINE" image inspect "$1" >/dev/null 2>&1; }

make_standin() { # name ref
	local recipe changes
	mapfile -t recipe < <(standin_recipe "$1")
	mapfile -t changes < <(standin_changes "$1")
	mmdebstrap "${recipe[@]}" bookworm - | "$ENGINE" import "${changes[@]}" - "$2"
}

STANDINS=(go debian-slim cuda-devel cuda-runtime)
declare -A REF STANDIN_PID
# start_standins makes, in the background, each stand-in whose recipe has
# no image yet.
start_standins() {
	local name
	for name in "${STANDINS[@]}"; do
		REF[$name]=$(standin_ref "$name")
		have_image "${REF[$name]}" && continue
		log "making stand-in $name (${REF[$name]}); log in $CACHE/logs/standin-$name.log"
		make_standin "$name" "${REF[$name]}" >"$CACHE/logs/standin-$name.log" 2>&1 &
		STANDIN_PID[$name]=$!
	done
}

# await_standins waits for the named stand-ins, then removes the images of
# their older recipes.
await_standins() {
	local name old
	for name in "$@"; do
		if [ -n "${STANDIN_PID[$name]:-}" ]; then
			if ! wait "${STANDIN_PID[$name]}" || ! have_image "${REF[$name]}"; then
				tail -n 30 "$CACHE/logs/standin-$name.log" >&2
				fail "making stand-in $name failed (log above)"
			fi
			log "stand-in $name ready ($(elapsed))"
		fi
		for old in $("$ENGINE" images --format '{{.Repository}}:{{.Tag}}' "localhost/qmulgpu-standin/$name"); do
			[ "$old" = "${REF[$name]}" ] || "$ENGINE" rmi "$old" >/dev/null 2>&1 || true
		done
	done
}

start_standins
CPU_ARGS=(--build-arg "GO_IMAGE=${REF[go]}" --build-arg "RUNTIME_IMAGE=${REF[debian-slim]}")
GPU_ARGS=(--build-arg "GO_IMAGE=${REF[go]}" --build-arg "CUDA_DEVEL_IMAGE=${REF[cuda-devel]}" --build-arg "CUDA_RUNTIME_IMAGE=${REF[cuda-runtime]}")
if [ "${1:-}" = bases ]; then
	await_standins "${STANDINS[@]}"
	echo "docker/Dockerfile.cpu: ${CPU_ARGS[*]}"
	echo "docker/Dockerfile:     ${GPU_ARGS[*]}"
	exit 0
fi

# ---- building the images ----
VERSION=$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo dev)
RUN_ID=$$
declare -A IMAGE=([cpu]="localhost/qmulgpu-test/cpu:run$RUN_ID" [gpu]="localhost/qmulgpu-test/gpu:run$RUN_ID")
T=$(mktemp -d "${TMPDIR:-/tmp}/qmul-images.XXXXXX")
chmod 755 "$T"
CPU_JOB=""
cleanup() {
	local rc=$?
	[ -z "$CPU_JOB" ] || wait "$CPU_JOB" 2>/dev/null || true
	if [ "${KEEP:-0}" = 1 ]; then
		log "kept $T and the tags ${IMAGE[*]}"
	else
		rm -rf "$T"
		# Untagged, podman's images stay in its build cache until pruned.
		for img in "${IMAGE[@]}"; do
			if [ "$ENGINE" = podman ]; then
				podman untag "$img" "$img"
			else
				docker rmi "$img"
			fi
		done >/dev/null 2>&1 || true
	fi
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# stamp prefixes each line with the seconds since it started.
stamp() {
	local t0=$SECONDS line
	while IFS= read -r line || [ -n "$line" ]; do printf '%4ds %s\n' $((SECONDS - t0)) "$line"; done
}

build() { # kind dockerfile build-args...
	local kind=$1 file=$2
	shift 2
	log "building $file as ${IMAGE[$kind]} (version $VERSION); log in $CACHE/logs/build-$kind.log"
	"$ENGINE" build -f "$ROOT/$file" --build-arg "VERSION=$VERSION" "$@" -t "${IMAGE[$kind]}" "$ROOT" 2>&1 |
		stamp >"$CACHE/logs/build-$kind.log" || {
		tail -n 40 "$CACHE/logs/build-$kind.log" >&2
		fail "building $file failed (log above)"
	}
	log "built $file ($(elapsed))"
}

# ---- what each image is ----
inspect() { "$ENGINE" image inspect --format "$2" "$1"; }
run() { "$ENGINE" run --rm --network none "$@"; }

check_image() { # kind base added-budget-MB total-budget-MB
	local img=${IMAGE[$1]} out user uid tools size base
	for args in "" --help; do
		out=$(run "$img" $args 2>&1) || fail "$1: \`docker run IMAGE $args\` failed: $out"
		grep -q '^USAGE:' <<<"$out" || fail "$1: the entrypoint's help lacks USAGE: $out"
	done
	out=$(inspect "$img" '{{index .Config.Labels "org.opencontainers.image.version"}}')
	[ "$out" = "$VERSION" ] || fail "$1: label org.opencontainers.image.version is '$out', want '$VERSION'"
	out=$(run "$img" version)
	[ "$out" = "qmulgpu $VERSION" ] || fail "$1: \`qmulgpu version\` says '$out', want 'qmulgpu $VERSION'"
	user=$(inspect "$img" '{{.Config.User}}')
	uid=$(run --entrypoint id "$img" -u)
	case "$user" in "" | 0 | 0:* | root | root:*) fail "$1: runs as root by default (USER '$user')" ;; esac
	[ "$uid" != 0 ] || fail "$1: runs as uid 0 by default"
	tools=$(run --entrypoint sh "$img" -c 'for t in go gofmt gcc cc c++ g++ clang nvcc ptxas cmake make ld as git; do command -v "$t"; done; ls -d /usr/local/go /src 2>/dev/null; true')
	[ -z "$tools" ] || fail "$1: build tools in the final stage: $(echo $tools)"
	size=$(inspect "$img" '{{.Size}}')
	base=$(inspect "$2" '{{.Size}}')
	log "$1: $((size / 1000000)) MB, $(((size - base) / 1000000)) MB above its base (budgets $4 and $3 MB); user $user; version $VERSION"
	[ $((size - base)) -le $(($3 * 1000000)) ] || fail "$1: adds $(((size - base) / 1000000)) MB to its base, over the budget of $3 MB"
	[ "$size" -le $(($4 * 1000000)) ] || fail "$1: $((size / 1000000)) MB, over the budget of $4 MB"
}

# ---- running them as a user would ----
RUN_UID=${QMUL_IMAGES_UID:-4242}
# as_user runs a command as the run user from /, since the user may not
# enter the working directory (a private checkout: find then fails to
# restore it and says so on stderr).
as_user() { (cd / && setpriv --reuid="$RUN_UID" --regid="$RUN_UID" --clear-groups -- "$@"); }

use_image() { # kind step args...: runs one command, output in $T/kind/step.{out,err}
	local kind=$1 step=$2
	shift 2
	run --user "$RUN_UID:$RUN_UID" -e QMUL_DATA=/data -v "$FMNIST:/data/fashion-mnist:ro" -v "$T/$kind/out:/out" \
		"${IMAGE[$kind]}" "$@" >"$T/$kind/$step.out" 2>"$T/$kind/$step.err" ||
		fail "$kind: \`qmulgpu $*\` failed: $(tail -n 5 "$T/$kind/$step.err")"
}

fallback_lines() { grep -c '^qmulgpu: no usable GPU (.*); running on the CPU$' "$1" || true; }

use_as_user() { # kind
	local kind=$1 d=$T/$1 step want n bad
	mkdir -p "$d"
	install -d -o "$RUN_UID" -g "$RUN_UID" -m 0755 "$d/out"
	use_image "$kind" devices devices
	grep -q '^--device auto uses: cpu' "$d/devices.out" || fail "$kind: devices: $(cat "$d/devices.out")"
	if [ "$kind" = gpu ]; then
		grep -q '^GPUs: none (' "$d/devices.out" || fail "gpu: devices does not say why there is no GPU: $(cat "$d/devices.out")"
	fi
	use_image "$kind" train train --dataset fashion-mnist --model smallcnn --quant lsq --subset 1000 --test-subset 500 \
		--epochs 1 --lr 0.05 --batch 100 --val-frac 0 --threads 2 --out /out/orig --quiet
	use_image "$kind" unlearn unlearn --checkpoint /out/orig/model.safetensors --method ft --forget random:100 \
		--epochs 1 --threads 2 --out /out/ft --quiet
	use_image "$kind" eval eval --checkpoint /out/ft/model.safetensors --forget random:100 --threads 2 --json
	python3 - "$d/eval.out" <<'EOF' || fail "$kind: eval --json: $(cat "$d/eval.out")"
import json, sys
m = json.load(open(sys.argv[1]))
missing = [k for k in ("fa", "ra", "ta", "mia") if not 0 <= m.get(k, -1) <= 100]
sys.exit("missing or out of range: %s" % missing if missing else 0)
EOF
	grep -q '"data_dir": "/data/fashion-mnist"' "$d/out/orig/metrics.json" ||
		fail "$kind: train did not read the mounted data folder: $(grep data_dir "$d/out/orig/metrics.json")"
	# The cuda build says once per command that it runs on the CPU; the
	# CPU build has nothing to say.
	want=0
	[ "$kind" = gpu ] && want=1
	for step in train unlearn eval; do
		n=$(fallback_lines "$d/$step.err")
		[ "$n" -eq $want ] || fail "$kind: $step printed $n CPU-fallback lines, want $want: $(cat "$d/$step.err")"
	done
	bad=$(find "$d/out" ! -user "$RUN_UID" -printf '%p (uid %U)\n')
	[ -z "$bad" ] || fail "$kind: files on the host not owned by uid $RUN_UID: $bad"
	bad=$(as_user find "$d/out" \( ! -readable -o -type d ! -executable \) -print 2>&1)
	[ -z "$bad" ] || fail "$kind: files on the host that uid $RUN_UID cannot read: $bad"
	log "$kind: devices, train, unlearn and eval ran as uid $RUN_UID ($(find "$d/out" -type f | wc -l) files written, all theirs) ($(elapsed))"
}

# test_image builds one image, checks it and uses it.
test_image() { # kind dockerfile base build-args...
	local kind=$1 file=$2 base=$3
	shift 3
	build "$kind" "$file" "$@"
	check_image "$kind" "$base" "${ADDED_MB[$kind]}" "${TOTAL_MB[$kind]}"
	use_as_user "$kind"
}

# The CPU image as soon as its bases are ready, in the background, while
# the CUDA stand-ins are made and the GPU image is built.
await_standins go debian-slim
test_image cpu docker/Dockerfile.cpu "${REF[debian-slim]}" "${CPU_ARGS[@]}" &
CPU_JOB=$!
await_standins cuda-devel cuda-runtime
test_image gpu docker/Dockerfile "${REF[cuda-runtime]}" "${GPU_ARGS[@]}"
log "gpu: $(grep 'running on the CPU' "$T/gpu/train.err")"
wait "$CPU_JOB" || fail "the CPU image failed (above)"
CPU_JOB=""
log "PASS in $(elapsed)"
