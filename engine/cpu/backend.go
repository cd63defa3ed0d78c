// Package cpu is the reference Backend: plain Go loops for elementwise ops,
// im2col plus SGEMM (OpenBLAS through cgo, or gonum with the purego build
// tag) for convolutions, and goroutines across the batch.
//
// Work is split into a fixed number of contiguous chunks that depends only on
// the problem size and the thread count, and partial results are combined in
// chunk order, so the same inputs and thread count give bit-identical outputs.
package cpu

import (
	"fmt"
	"runtime"
	"sync"

	"github.com/qmulgpu/qmulgpu/engine"
)

// Backend is the CPU implementation of engine.Backend.
type Backend struct {
	threads int
	// reversed, set only by tests, runs parallel's chunks one at a time
	// from the last to the first: a result that depended on the order in
	// which chunks finish would then differ from a usual run's.
	reversed bool

	mu      sync.Mutex
	cache   map[cacheKey][]*hostMemory
	scratch []*hostMemory

	// times accumulates op times while TimeOps is on.
	times timesOn
	// im2colOnly makes every convolution im2col + GEMM (--conv im2col).
	im2colOnly bool
}

// New returns a CPU backend that uses up to threads goroutines per op;
// threads <= 0 means one per core.
func New(threads int) *Backend {
	if threads <= 0 {
		threads = runtime.NumCPU()
	}
	return &Backend{threads: threads, cache: make(map[cacheKey][]*hostMemory)}
}

// Threads is the number of goroutines an op may use.
func (b *Backend) Threads() int { return b.threads }

// Name implements engine.Backend.
func (b *Backend) Name() string { return "cpu" }

// Describe implements engine.Backend: the processor, threads, BLAS and
// convolution algorithms, which together decide the bits a run computes.
func (b *Backend) Describe() string {
	return fmt.Sprintf("%s, %d threads, BLAS %s, %s convolutions", CPUModel(), b.threads, BLASName(), b.convAlgorithms())
}

// float is the element constraint of the generic kernels.
type float interface{ ~float32 | ~float64 }

// dispatch runs an op's generic kernel for the element type dt: k32 and k64
// are its float32 and float64 instantiations, a the op's operands. It is the
// one place where an op looks at the element type of its tensors; kernels
// take their slices with floats[T]. The call is timed as one of family f
// while TimeOps is on.
func dispatch[A any](b *Backend, f opFamily, dt engine.DType, a A, k32, k64 func(*Backend, A)) {
	defer b.span(f)()
	switch dt {
	case engine.Float32:
		k32(b, a)
	case engine.Float64:
		k64(b, a)
	default:
		panic(fmt.Sprintf("cpu: no %s kernel", dt))
	}
}

// floats returns t's elements as []T, where T matches t's type.
func floats[T float](t *engine.Tensor) []T {
	var z T
	switch any(z).(type) {
	case float32:
		return any(F32(t)).([]T)
	default:
		return any(F64(t)).([]T)
	}
}

// isFloat32 reports whether T is float32.
func isFloat32[T float]() bool {
	var z T
	_, ok := any(z).(float32)
	return ok
}

// native32 returns v as []float32 when T is float32 and the C kernels are
// in use (native.go): the test a Go kernel makes before handing a chunk to
// its C twin.
func native32[T float](v []T) ([]float32, bool) {
	if !native || !useNative {
		return nil, false
	}
	f, ok := any(v).([]float32)
	return f, ok
}

// nativeOrNil is v as []float32 for a kernel that native32 already chose
// for float32 (nil stays nil).
func nativeOrNil[T float](v []T) []float32 {
	if v == nil {
		return nil
	}
	return any(v).([]float32)
}

// floatsOrNil is floats for an optional tensor.
func floatsOrNil[T float](t *engine.Tensor) []T {
	if t == nil {
		return nil
	}
	return floats[T](t)
}

// parallel splits [0, n) into at most b.threads contiguous chunks of at
// least minChunk items and runs fn on each, chunk w covering [lo, hi). It
// returns the number of chunks, which depends only on n, minChunk and the
// thread count.
func (b *Backend) parallel(n, minChunk int, fn func(w, lo, hi int)) int {
	chunks := b.chunks(n, minChunk)
	if chunks <= 1 {
		if n > 0 {
			fn(0, 0, n)
		}
		return chunks
	}
	if b.reversed {
		for w := chunks - 1; w >= 0; w-- {
			fn(w, w*n/chunks, (w+1)*n/chunks)
		}
		return chunks
	}
	// The calling goroutine runs the last chunk itself: one handoff fewer,
	// and its thread does not sit idle while the others work.
	var wg sync.WaitGroup
	for w := 0; w < chunks-1; w++ {
		lo, hi := w*n/chunks, (w+1)*n/chunks
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(w, lo, hi)
		}()
	}
	fn(chunks-1, (chunks-1)*n/chunks, n)
	wg.Wait()
	return chunks
}

// chunks is the number of chunks parallel uses for n items.
func (b *Backend) chunks(n, minChunk int) int {
	if minChunk < 1 {
		minChunk = 1
	}
	c := min(b.threads, n/minChunk)
	if c < 1 {
		c = 1
	}
	if n == 0 {
		return 0
	}
	return c
}

var (
	_ engine.Backend         = (*Backend)(nil)
	_ engine.Concurrent      = (*Backend)(nil)
	_ engine.ConvPathChooser = (*Backend)(nil)
)

// ConcurrentSafe implements engine.Concurrent: ops may be called from
// several goroutines at once (each op must still work on distinct outputs).
func (b *Backend) ConcurrentSafe() bool { return true }
