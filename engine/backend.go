package engine

// Backend is the op-level contract every compute backend implements. The CPU
// backend (engine/cpu) is the reference; other backends are tested against it.
// It embeds one interface per op family, and each family lives in files of
// the same name here (its interface, operands and preconditions), in
// engine/cpu, in cuda and in kernels: ConvOps in conv.go, and so on (see
// docs/design.md). Packages take the narrowest of these they use.
//
// Conventions shared by all ops:
//   - tensors are contiguous views; "[rows, C]" means the op treats the tensor
//     as a matrix with C columns whatever its rank;
//   - parameter-gradient outputs (dw, db, dgamma, ...) are accumulated (+=),
//     every other output is overwritten;
//   - an optional tensor argument may be nil.
//
// Ops panic on programming errors (mismatched shapes or types): the
// preconditions every backend checks are the Check functions of this
// package, whose error the panic carries. Runtime failures of a device
// (out of memory, a failed launch) are reported by Err.
//
// Some backends also implement the optional interfaces Concurrent,
// TF32Switch, ConvPathChooser and Closer, which callers reach by type
// assertion.
type Backend interface {
	Device
	Storage
	ElementwiseOps
	ReduceOps
	GemmOps
	ConvOps
	BatchNormOps
	ActivationOps
	PoolOps
	LossOps
	SGDOps
	GatherOps
	FakeQuantOps
	UnlearnOps
	PerSampleOps
}

// Device names a backend and reports its asynchronous failures.
type Device interface {
	// Name is the short device name ("cpu", "cuda:0").
	Name() string
	// Describe is a one-line human description of the device.
	Describe() string
	// Err returns (and clears) the first asynchronous error since the last
	// call; it waits for queued work to finish.
	Err() error
}

// Concurrent is implemented by backends that say whether their ops may be
// called from several goroutines at once (each op still writing distinct
// outputs). A backend that does not implement it is taken to be unsafe.
type Concurrent interface {
	ConcurrentSafe() bool
}

// TF32Switch is implemented by backends whose matrix products can use
// TF32 tensor-op math; SetTF32 switches it on or off.
type TF32Switch interface {
	SetTF32(on bool) error
}

// ConvPathChooser is implemented by backends with more than one way to
// compute convolutions (the CUDA backend: cuDNN or im2col + GEMM).
// SetConv takes "auto", "cudnn" or "im2col"; ConvPath says in one line
// which path convolutions take, and why.
type ConvPathChooser interface {
	SetConv(mode string) error
	ConvPath() string
}

// Closer is implemented by backends that hold device resources (contexts,
// streams, library handles); Close releases them, after which the backend
// must not be used. The CPU backend holds none.
type Closer interface {
	Close() error
}

// WorkCounter is implemented by backends that count the device work they
// issue (the CUDA backend). Work returns the totals since the backend was
// opened. On a GPU each launch, library call and memory operation is
// queued work with a fixed cost of a few microseconds on the host and on
// the device, whatever its size: their count per training step is what
// bounds the step time of small models.
type WorkCounter interface {
	Work() Work
}

// OpTimer is implemented by backends that can time their ops by family
// (the CPU backend, whose ops finish before they return): `qmulgpu bench
// --profile` splits a training step with it.
type OpTimer interface {
	// TimeOps switches timing on, from zero, or off.
	TimeOps(on bool)
	// OpTimes returns the wall time spent in each family of ops since
	// timing was switched on, in the backend's order of families.
	OpTimes() []OpTime
}

// OpTime is the time a backend spent in one family of ops: wall time, and
// the processor time of the process meanwhile (all threads).
type OpTime struct {
	Op         string  `json:"op"`
	Calls      int64   `json:"calls"`
	Seconds    float64 `json:"seconds"`
	CPUSeconds float64 `json:"cpu_seconds"`
}

// Work is device work, in total and by op.
type Work struct {
	OpWork
	// PerOp splits the counts by the op that issued them ("Conv2d",
	// "Alloc", ...).
	PerOp map[string]OpWork
}

// OpWork counts one op's device work.
type OpWork struct {
	// Launches are kernels of this project launched.
	Launches int64 `json:"launches"`
	// LibraryCalls are cuBLAS and cuDNN calls, each of which launches one
	// or more kernels of its own.
	LibraryCalls int64 `json:"library_calls"`
	// MemoryOps are device fills (memsets) and device-to-device copies.
	MemoryOps int64 `json:"memory_ops"`
	// Allocs and AllocBytes are the blocks the backend's allocator handed
	// out (tensors and scratch buffers, in their rounded sizes), whether
	// from its cache or from the device.
	Allocs     int64 `json:"allocs"`
	AllocBytes int64 `json:"alloc_bytes"`
}

// Add returns the sum of w and v.
func (w OpWork) Add(v OpWork) OpWork {
	return OpWork{w.Launches + v.Launches, w.LibraryCalls + v.LibraryCalls, w.MemoryOps + v.MemoryOps,
		w.Allocs + v.Allocs, w.AllocBytes + v.AllocBytes}
}

// Sub returns w − v.
func (w OpWork) Sub(v OpWork) OpWork {
	return OpWork{w.Launches - v.Launches, w.LibraryCalls - v.LibraryCalls, w.MemoryOps - v.MemoryOps,
		w.Allocs - v.Allocs, w.AllocBytes - v.AllocBytes}
}
