#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages qmulgpu needs, only those missing.
#   scripts/install-deps.sh            build and run: OpenBLAS, Fashion-MNIST
#   scripts/install-deps.sh test       + what the tests use (numpy, scikit-learn, scipy, PyTorch CPU)
#   scripts/install-deps.sh cuda       + cmake and nvcc (Debian: contrib/non-free)
#   scripts/install-deps.sh emu        + g++ (with AddressSanitizer) and python3 for the emulated GPU
#   scripts/install-deps.sh torch      + PyTorch (CPU), the benchmark reference
#   scripts/install-deps.sh slurm      + a one-node Slurm cluster for the sweep tests
#   scripts/install-deps.sh images     + podman (runc), mmdebstrap and python3 for the image tests
# QMUL_DEPS=none skips it all: the environment provides the packages (the
# build stages of docker/, which install what they need themselves).
set -euo pipefail
[ "${QMUL_DEPS:-}" = none ] && exit 0

pkgs=(gcc libc6-dev pkg-config libopenblas-dev dataset-fashion-mnist)
for extra in "$@"; do
	case "$extra" in
	test) pkgs+=(python3 python3-numpy python3-scipy python3-sklearn python3-torch) ;;
	cuda) pkgs+=(cmake nvidia-cuda-toolkit) ;;
	emu) pkgs+=(g++ python3) ;;
	torch) pkgs+=(python3 python3-torch) ;;
	slurm) pkgs+=(slurm-wlm munge) ;;
	images) pkgs+=(podman runc containernetworking-plugins iptables mmdebstrap python3) ;;
	*) echo "install-deps: unknown extra '$extra'" >&2; exit 2 ;;
	esac
done

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null; then
	echo "install-deps: missing packages ${missing[*]} and no apt-get to install them" >&2
	exit 1
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

# nvidia-cuda-toolkit lives in Debian's non-free component (Ubuntu: multiverse).
if printf '%s\n' "${missing[@]}" | grep -q nvidia-cuda-toolkit && [ -f /etc/apt/sources.list.d/debian.sources ] &&
	! grep -q non-free /etc/apt/sources.list.d/debian.sources; then
	$sudo sed -i 's/^Components: main$/Components: main contrib non-free non-free-firmware/' /etc/apt/sources.list.d/debian.sources
fi

echo "install-deps: installing ${missing[*]}" >&2
$sudo apt-get update -qq
# No recommends: the CUDA toolkit would otherwise pull in a kernel driver.
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
