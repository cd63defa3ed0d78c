//go:build cuda

package cuda

import (
	"fmt"
	"math/bits"
	"unsafe"

	"github.com/qmulgpu/qmulgpu/engine"
)

// blockSource is the device memory an allocator caches: the GPU's
// (cuMemAlloc_v2, cuMemFree_v2) or, in tests, a fake.
type blockSource interface {
	alloc(bytes uint64) (devPtr, error)
	free(p devPtr) error
	// memInfo reports the device's free and total memory.
	memInfo() (free, total uint64, err error)
	// sync waits until queued work is done, so that blocks can be freed.
	sync() error
}

// allocator is a caching allocator: blocks are rounded up to a size class
// and returned to a free list of their class, where the next request of the
// class finds them. Memory goes back to the device only when an allocation
// runs out of memory (or at Close).
type allocator struct {
	src    blockSource
	exact  bool // blocks of exactly the size asked for (device.Options.ExactAlloc)
	cache  map[uint64][]devPtr
	cached uint64 // bytes in the free lists
	live   uint64 // bytes handed out and not yet returned
}

func newAllocator(src blockSource, exact bool) allocator {
	return allocator{src: src, exact: exact, cache: make(map[uint64][]devPtr)}
}

// sizeClass rounds bytes up to its class: a multiple of 512 up to 4 KiB,
// above that a multiple of 1/8 of the largest power of two not above bytes,
// so that at most 1/8 of a block is slack.
func sizeClass(bytes uint64) uint64 {
	const small = 512
	if bytes <= 8*small {
		return max(small, (bytes+small-1)/small*small)
	}
	step := uint64(1) << (bits.Len64(bytes) - 1 - 3)
	return (bytes + step - 1) / step * step
}

// OutOfMemoryError is an allocation the device could not satisfy even after
// the allocator released its cache.
type OutOfMemoryError struct {
	// Bytes is the size asked for.
	Bytes uint64
	// Live is what the backend had allocated at the time.
	Live uint64
	// Free and Total are the device's free and total memory when the
	// allocation failed (0 when the driver could not say).
	Free, Total uint64
	// Err is the driver's error.
	Err error
}

// Error implements error.
func (e *OutOfMemoryError) Error() string {
	device := ""
	if e.Total > 0 {
		device = fmt.Sprintf("; %s of %s free", formatBytes(e.Free), formatBytes(e.Total))
	}
	return fmt.Sprintf("out of GPU memory allocating %s (%d bytes) with %s in use by this backend%s; try a smaller --batch: %v",
		formatBytes(e.Bytes), e.Bytes, formatBytes(e.Live), device, e.Err)
}

// Unwrap returns the driver's error.
func (e *OutOfMemoryError) Unwrap() error { return e.Err }

func formatBytes(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// get returns a block of at least bytes (> 0) bytes and its class. When the
// device is out of memory it releases the cache and tries once more.
func (a *allocator) get(bytes uint64) (devPtr, uint64, error) {
	class := sizeClass(bytes)
	if a.exact {
		class = bytes
	}
	if l := a.cache[class]; len(l) > 0 {
		p := l[len(l)-1]
		a.cache[class] = l[:len(l)-1]
		a.cached -= class
		a.live += class
		return p, class, nil
	}
	p, err := a.src.alloc(class)
	if err != nil && isOutOfMemory(err) && a.cached > 0 {
		if err := a.trim(); err != nil {
			return 0, 0, err
		}
		p, err = a.src.alloc(class)
	}
	if err != nil {
		if isOutOfMemory(err) {
			e := &OutOfMemoryError{Bytes: bytes, Live: a.live, Err: err}
			if free, total, ierr := a.src.memInfo(); ierr == nil {
				e.Free, e.Total = free, total
			}
			return 0, 0, e
		}
		return 0, 0, err
	}
	a.live += class
	return p, class, nil
}

// put returns a block obtained from get to the cache.
func (a *allocator) put(p devPtr, class uint64) {
	a.cache[class] = append(a.cache[class], p)
	a.cached += class
	a.live -= class
}

// trim waits for queued work and frees every cached block.
func (a *allocator) trim() error {
	if err := a.src.sync(); err != nil {
		return err
	}
	for class, l := range a.cache {
		for _, p := range l {
			if err := a.src.free(p); err != nil {
				return err
			}
			a.cached -= class
		}
		delete(a.cache, class)
	}
	return nil
}

// memory is a device allocation, the engine.Memory of the CUDA backend.
// A tensor whose allocation failed has ptr 0: ops are no-ops until Err
// reports the failure, and using the tensor afterwards panics.
type memory struct {
	ptr   devPtr
	class uint64
	elems int
	freed bool
}

// Elements implements engine.Memory.
func (m *memory) Elements() int { return m.elems }

// Supports implements engine.Backend: Float32, Int32 and Uint8.
func (b *Backend) Supports(dt engine.DType) bool {
	return dt == engine.Float32 || dt == engine.Int32 || dt == engine.Uint8
}

// Alloc implements engine.Backend. Out of memory, it records the error for
// Err and returns a tensor without device memory.
func (b *Backend) Alloc(dt engine.DType, shape ...int) *engine.Tensor {
	n := engine.Numel(shape)
	if n < 0 || !b.Supports(dt) {
		panic(fmt.Sprintf("cuda: alloc %s%v", dt, shape))
	}
	m := &memory{elems: n}
	t := &engine.Tensor{Shape: append([]int(nil), shape...), DType: dt, Mem: m}
	if n == 0 || b.err != nil {
		return t
	}
	p, class, err := b.mem.get(uint64(n * dt.Size()))
	if err != nil {
		b.fail("Alloc", fmt.Errorf("%v: %w", t, err))
		return t
	}
	m.ptr, m.class = p, class
	b.work.add("Alloc", engine.OpWork{Allocs: 1, AllocBytes: int64(class)})
	return t
}

// Zeros implements engine.Backend.
func (b *Backend) Zeros(dt engine.DType, shape ...int) *engine.Tensor {
	t := b.Alloc(dt, shape...)
	b.Fill(t, 0)
	return t
}

// Free implements engine.Backend. Freeing a tensor twice, or two views of
// one allocation, returns the memory once.
func (b *Backend) Free(t *engine.Tensor) {
	if t == nil || t.Mem == nil {
		return
	}
	m, ok := t.Mem.(*memory)
	if !ok {
		panic(fmt.Sprintf("cuda: free of %v, which does not live on the CUDA backend", t))
	}
	if !m.freed && m.ptr != 0 {
		b.mem.put(m.ptr, m.class)
	}
	m.freed = true
	t.Mem = nil
}

// scratch is a temporary device buffer of an op, from the same cache as
// tensors.
type scratch struct {
	ptr   devPtr
	class uint64
}

// scratch allocates a temporary buffer of bytes bytes; ok is false (and
// the error recorded) when that fails.
func (b *Backend) scratch(op string, bytes int) (s scratch, ok bool) {
	if b.err != nil {
		return s, false
	}
	p, class, err := b.mem.get(uint64(max(bytes, 1)))
	if err != nil {
		b.fail(op, fmt.Errorf("scratch buffer: %w", err))
		return s, false
	}
	b.work.add(op, engine.OpWork{Allocs: 1, AllocBytes: int64(class)})
	return scratch{p, class}, true
}

// release returns a scratch buffer to the cache. Work queued on the stream
// that uses it still runs before any later user of the memory.
func (b *Backend) release(s scratch) { b.mem.put(s.ptr, s.class) }

// hostSlice checks that src (or dst) is a slice of t's type holding at
// least t.Numel() elements and returns its first element's address.
func hostSlice(t *engine.Tensor, s any, what string) unsafe.Pointer {
	n := t.Numel()
	var p unsafe.Pointer
	var dt engine.DType
	var length int
	switch v := s.(type) {
	case []float32:
		dt, length = engine.Float32, len(v)
		if len(v) > 0 {
			p = unsafe.Pointer(&v[0])
		}
	case []int32:
		dt, length = engine.Int32, len(v)
		if len(v) > 0 {
			p = unsafe.Pointer(&v[0])
		}
	case []uint8:
		dt, length = engine.Uint8, len(v)
		if len(v) > 0 {
			p = unsafe.Pointer(&v[0])
		}
	default:
		panic(fmt.Sprintf("cuda: %s of %v with a %T", what, t, s))
	}
	if dt != t.DType || length < n {
		panic(fmt.Sprintf("cuda: %s of %v with a %T of length %d", what, t, s, length))
	}
	return p
}

// Upload implements engine.Backend. It returns when the copy is done.
func (b *Backend) Upload(t *engine.Tensor, src any) {
	p := hostSlice(t, src, "upload")
	if t.Numel() == 0 || b.err != nil {
		return
	}
	b.fail("Upload", b.x.upload(b.addr(t, t.DType), p, uint64(t.Numel()*t.DType.Size())))
}

// Download implements engine.Backend. It waits for the work queued before
// it; after an error it leaves dst unchanged.
func (b *Backend) Download(t *engine.Tensor, dst any) {
	p := hostSlice(t, dst, "download")
	if t.Numel() == 0 || b.err != nil {
		return
	}
	b.fail("Download", b.x.download(p, b.addr(t, t.DType), uint64(t.Numel()*t.DType.Size())))
}

// Err implements engine.Backend: it waits for the stream and returns the
// first error recorded since the last call, including invalid input that a
// kernel reported (an index or label out of range).
func (b *Backend) Err() error {
	if err := b.x.sync(); err != nil {
		b.fail("Err", err)
	}
	if b.err == nil {
		b.checkStatus()
	}
	err := b.err
	b.err = nil
	return err
}

// checkStatus reads and clears the status word the kernels report invalid
// input in.
func (b *Backend) checkStatus() {
	var code int32
	if err := b.x.download(unsafe.Pointer(&code), b.status.ptr, 4); err != nil {
		b.fail("Err", err)
		return
	}
	if code == 0 {
		return
	}
	b.memset32("Err", b.status.ptr, 0, 1)
	if b.err == nil {
		b.err = statusError(code)
	}
}

// Status codes of the kernels (QM_STATUS_* in kernels/common.cuh).
const (
	statusGatherIndex = 1
	statusImageIndex  = 2
	statusLabel       = 3
)

// statusError describes a status code.
func statusError(code int32) error {
	switch code {
	case statusGatherIndex:
		return fmt.Errorf("cuda: Gather: a row index is outside the source tensor")
	case statusImageIndex:
		return fmt.Errorf("cuda: GatherImages: an image index is outside the data set")
	case statusLabel:
		return fmt.Errorf("cuda: SoftmaxCrossEntropy: a label is outside [0, classes)")
	}
	return fmt.Errorf("cuda: a kernel reported unknown status %d", code)
}
