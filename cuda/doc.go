//go:build cuda

// Package cuda is the CUDA backend of qmulgpu: an engine.Backend that runs
// every op of the training step on an NVIDIA GPU. It exists only in the
// cuda build (build tag cuda) and registers itself with engine/device.
//
// # Binding
//
// The package binds the CUDA driver API, cuBLAS and cuDNN itself, loading
// them with dlopen at run time (libload.go), so that one binary runs with
// or without a GPU and links only libc and libdl: libcuda.so.1 from the
// loader's path; cuBLAS (.so.13, .12, .11, each with its cuBLASLt) and,
// when present, cuDNN (.so.9, .8, with its sub-libraries) from the places
// libsearch lists — the loader's path, the CUDA toolkit's folders and the
// lib folders of NVIDIA's pip wheels — or the file QMUL_CUBLAS or
// QMUL_CUDNN names. Of those found, the newest that the driver runs and
// that creates a handle is used, chosen when the first device opens. A
// backend's settings come from device.Options, passed to Open; the
// package reads no setting from the environment. It declares the few
// types it needs (binding.h) rather than including CUDA headers and calls
// only ABI-stable driver entry points, through function pointers in small C
// shims. Each shim makes the backend's context current first, in the same
// C call, so goroutines may move between OS threads freely. Kernel
// arguments are copied into C memory the binding owns (launch.go), never
// passed as Go pointers for the driver to keep.
//
// Discovery (Discover, `qmulgpu devices`) uses NVML through go-nvml.
// Devices are numbered in PCI order, as nvidia-smi and NVML number them:
// the package sets CUDA_DEVICE_ORDER=PCI_BUS_ID before initialising the
// driver unless the environment sets it. CUDA_VISIBLE_DEVICES renumbers
// the driver's devices but not NVML's, so `qmulgpu devices` lists every
// GPU whatever it says.
//
// # Kernels
//
// The kernels are kernels/*.cu, compiled by CMakeLists.txt into one fatbin
// (SASS for sm_80, sm_86, sm_89 and sm_90, PTX for compute_80) that is
// embedded as kernels.fatbin and loaded with cuModuleLoadData. Each op
// family has one name in all three trees: kernels/X.cu holds its kernels,
// cuda/X.go the methods that launch them by name, engine/cpu/X.go the
// reference (for example batchnorm, fakequant, reduce, unlearn);
// fake_test.go checks every launch's arguments against the kernel
// signatures it parses from kernels/*.cu.
//
// # Memory
//
// Allocations go through a caching allocator over cuMemAlloc_v2: blocks
// are rounded up to size classes (at most 1/8 slack) and Free returns them
// to a free list of their class. When the device runs out of memory, the
// allocator waits for the stream, releases its cache and tries once more;
// then Err reports an OutOfMemoryError that names the size asked for and
// suggests a smaller --batch.
//
// # Stream and errors
//
// Every op queues work on one non-blocking stream and returns at once;
// only Upload, Download and Err wait. Ops return no error: the first
// failure (a driver or cuBLAS error, out of memory, or invalid input such
// as an out-of-range label that a kernel reports in a status word) is
// recorded, every later op is a no-op, and Err returns the error after
// waiting for the stream. An error inside a kernel surfaces at the next
// wait, naming the call that waited (cuStreamSynchronize or a copy); run
// with CUDA_LAUNCH_BLOCKING=1 to pin it to its launch.
//
// # Convolutions
//
// Convolutions run through cuDNN when it is present, and as im2col +
// cuBLAS SGEMM otherwise (convplan.go has the rules). cuDNN is an
// optional run-time dependency loaded like cuBLAS. It must report version
// 8 or newer through cudnnGetVersion, and export the legacy
// cudnnConvolution* API that cuDNN 8 and 9 share with the same signatures
// (binding.h declares the types); cuDNN 9's convolution sub-library is
// loaded by a probe when the backend opens. A missing, broken or too old
// library leaves the backend on im2col, and ConvPath (printed by the CLI,
// and by `qmulgpu devices`) says why. Options.Conv (--conv: auto, cudnn,
// im2col) forces a path, and a shape cuDNN rejects runs on im2col with one
// line through Options.Note; Options.CudnnFind false keeps cuDNN's
// heuristic choices instead of measuring them once per shape.
//
// # TF32
//
// GEMMs and convolutions use TF32 tensor-op math by default (inputs
// rounded to 10-bit mantissas, about 1e-3 relative error, several times
// faster; cuDNN's default math type, and its FMA math type when off).
// Options.TF32 false (QMUL_TF32=0 where the CLI reads the environment)
// turns it off when a backend opens; Backend.SetTF32 switches it at run
// time.
//
// Everything is Float32 (Supports(Float64) is false); Int32 and Uint8
// tensors hold labels, indices and images.
//
// # Building and testing
//
//	cmake -S . -B build && cmake --build build   # kernels -> cuda/kernels.fatbin
//	go build -tags cuda ./...
//	go test -tags cuda ./cuda/
//
// On a machine with a GPU the tests compare every op, and a few training
// steps of smallcnn, with the CPU backend; without one they skip those
// ("no CUDA GPU: ...") and still check the binding, the allocator, the
// error model and, through a fake executor, every launch. A test binary
// built with -tags cuda,purego needs no OpenBLAS at run time; run it from
// the repository root or from cuda/, where it finds kernels/*.cu.
package cuda
