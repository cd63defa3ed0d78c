# qmulgpu: the two set-up commands are `make demo` and `make test`.
# Both install what they need first (Debian/Ubuntu packages, Go modules).

GO      ?= go
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
BIN     := bin/qmulgpu

# OpenBLAS picks its kernels for this CPU unless OPENBLAS_CORETYPE forces a
# narrower set (some environments force Haswell, halving SGEMM speed on
# AVX-512 machines). Our targets let OpenBLAS choose; set it explicitly on
# the command line to override.
unexport OPENBLAS_CORETYPE

.PHONY: all deps build demo test test-short fuzz-smoke bench-cpu kernels build-cuda test-cuda emu test-emu gpu-bundle test-gpu-check test-slurm clean

all: build

deps:
	@scripts/install-deps.sh
	@$(GO) mod download

build: deps
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/qmulgpu

demo: build
	$(BIN) demo --out out/demo

test: deps
	@scripts/install-deps.sh test
	$(GO) vet ./...
	$(GO) test -timeout 30m ./...

test-short: deps
	$(GO) test -short ./...

# Every fuzz target (the readers of outside input, docs/fuzzing.md) for
# FUZZTIME each; CI runs this. Longer: make fuzz-smoke FUZZTIME=20m.
FUZZTIME ?= 10s
fuzz-smoke: deps
	scripts/fuzz.sh $(FUZZTIME)

bench-cpu: build
	@scripts/install-deps.sh torch
	bench/compare-cpu.sh $(BIN)

# CUDA: kernels/*.cu → one fatbin (cuda/kernels.fatbin, embedded by the cuda
# build); nvcc comes from Debian's nvidia-cuda-toolkit here, any nvcc ≥ 11.8
# elsewhere.
kernels:
	@scripts/install-deps.sh cuda
	cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
	cmake --build build

build-cuda: deps kernels
	$(GO) build -tags cuda -ldflags "$(LDFLAGS)" -o bin/qmulgpu-cuda ./cmd/qmulgpu

# Compiles and vets the cuda build, runs its tests (GPU ones skip without a
# GPU), the binding's tests under the race detector, and the cuda binary's
# train end to end to prove the CPU fallback.
test-cuda: build-cuda
	$(GO) vet -tags cuda ./...
	$(GO) test -tags cuda ./cuda/...
	$(GO) test -race -tags cuda ./cuda/...
	bin/qmulgpu-cuda devices
	bin/qmulgpu-cuda train --dataset fashion-mnist --model smallcnn --quant lsq --subset 1000 --test-subset 500 \
		--epochs 1 --lr 0.05 --batch 100 --val-frac 0 --out build/cuda-fallback --force --quiet

# The emulated CUDA device (cuda/emu, see docs/gpu.md): kernels/*.cu as host
# C++ (g++, no nvcc) behind fake libcuda.so.1, libcublas.so.12 and .13
# (with their cuBLASLt), libcudnn.so.9 (with two sub-libraries) and
# libnvidia-ml.so.1, in two builds: plain, and checked (AddressSanitizer and
# the race checker).
emu:
	@scripts/install-deps.sh emu
	$(MAKE) -C cuda/emu VARIANT=plain
	$(MAKE) -C cuda/emu VARIANT=checked

# The cuda package's whole GPU test suite and `qmulgpu-cuda unlearn` on the
# emulated device, in two schedules and with every checker on in one of
# them; ends with the kernel census (scripts/test-emu.sh).
test-emu: build-cuda emu
	$(GO) test -c -tags cuda -o build/emu/cuda.test ./cuda
	scripts/test-emu.sh

# The GPU check's bundle, for a GPU machine without Go (docs/gpu.md): the
# cuda build with the pure-Go BLAS (nothing to install there but the
# NVIDIA driver, cuBLAS and PyTorch) and the cuda package's test binary,
# both stripped, with scripts/gpu-check.sh, the PyTorch reference scripts
# and the kernel sources it compiles; gpu-bundle.tar.gz packs it.
GPU_BUNDLE_MAX_MB := 40
gpu-bundle: deps kernels
	rm -rf gpu-bundle gpu-bundle.tar.gz
	mkdir -p gpu-bundle/bench gpu-bundle/kernels
	$(GO) build -tags "cuda purego" -ldflags "-s -w $(LDFLAGS)" -o gpu-bundle/qmulgpu ./cmd/qmulgpu
	$(GO) test -c -tags "cuda purego" -ldflags "-s -w" -o gpu-bundle/cuda.test ./cuda/
	cp scripts/gpu-check.sh CMakeLists.txt gpu-bundle/
	cp bench/torch_bench.py bench/torch_models.py bench/torch_unlearn_epoch.py gpu-bundle/bench/
	cp kernels/*.cu kernels/*.cuh gpu-bundle/kernels/
	echo "$(VERSION)" > gpu-bundle/VERSION
	tar -czf gpu-bundle.tar.gz gpu-bundle
	@size=$$(du -m -s gpu-bundle | cut -f1); echo "gpu-bundle: $$size MB unpacked, $$(du -k gpu-bundle.tar.gz | cut -f1) KB packed"; \
		[ $$size -le $(GPU_BUNDLE_MAX_MB) ] || { echo "gpu-bundle: $$size MB, over $(GPU_BUNDLE_MAX_MB) MB" >&2; exit 1; }

# scripts/gpu-check.sh end to end on the emulated device before it meets a
# GPU: a --tiny run in which every step must pass, then a rerun with
# --budget 60 that must end on time with its skipped steps listed
# (scripts/test-gpu-check.sh).
test-gpu-check: emu gpu-bundle
	@scripts/install-deps.sh torch
	scripts/test-gpu-check.sh

# A real one-node Slurm cluster (started and stopped by the script, as
# root) runs a small sweep as a 4-task job array, one task cancelled and
# resubmitted; every cell must appear exactly once in the report.
test-slurm: build
	@scripts/install-deps.sh slurm
	QMUL_BIN=$(CURDIR)/$(BIN) scripts/test-slurm.sh

# The images of docker/, built on stand-in bases made from Debian packages
# and run as a user would: devices, a tiny train, unlearn and eval, as an
# unprivileged user with data and output folders mounted; sizes against
# budgets (scripts/test-images.sh, docker/README.md). As root.
.PHONY: test-images
test-images:
	@scripts/install-deps.sh images
	scripts/test-images.sh

clean:
	rm -rf bin build out gpu-bundle gpu-bundle.tar.gz cuda/kernels.fatbin
