//go:build cuda

package cuda

import (
	"errors"
	"fmt"
	"math"
	"time"
	"unsafe"

	"github.com/qmulgpu/qmulgpu/engine"
	"github.com/qmulgpu/qmulgpu/engine/device"
)

// executor is the device work of a Backend: memory, copies, kernel
// launches and GEMMs, all on one stream. gpu (stream.go) is the real one;
// the tests substitute a fake that checks every launch's shape and
// pointer arguments (fake_test.go).
type executor interface {
	blockSource
	// upload and download copy between host and device memory and return
	// when the copy is done.
	upload(dst devPtr, src unsafe.Pointer, bytes uint64) error
	download(dst unsafe.Pointer, src devPtr, bytes uint64) error
	copy(dst, src devPtr, bytes uint64) error
	memset8(dst devPtr, v uint8, n uint64) error
	memset32(dst devPtr, v uint32, n uint64) error
	launch(kernel string, grid, block dim3, args []any) error
	gemm(g gemmArgs) error
	setTF32(on bool) error
	// convLibrary returns cuDNN on the executor's context and stream,
	// loading it on first use; the error says why it is unusable.
	convLibrary() (convLib, error)
	close() error
}

// gemmArgs is a row-major single-precision GEMM,
// c = alpha·op(a)·op(b) + beta·c with op(a) m×k, op(b) k×n and c m×n, each
// matrix given by its address and leading dimension (the distance between
// rows, in elements). With batch > 1 it is batch such products, the i-th
// on the matrices at a + i·strideA, b + i·strideB and c + i·strideC
// (elements).
type gemmArgs struct {
	transA, transB            bool
	m, n, k                   int
	alpha                     float32
	a                         dptr[float32]
	lda                       int
	b                         dptr[float32]
	ldb                       int
	beta                      float32
	c                         dptr[float32]
	ldc                       int
	batch                     int
	strideA, strideB, strideC int
}

// String describes the product's shape for error messages.
func (g gemmArgs) String() string {
	s := fmt.Sprintf("transA %v, transB %v, m %d, n %d, k %d, lda %d, ldb %d, ldc %d",
		g.transA, g.transB, g.m, g.n, g.k, g.lda, g.ldb, g.ldc)
	if g.batch > 1 {
		s += fmt.Sprintf(", batch %d, strides %d %d %d", g.batch, g.strideA, g.strideB, g.strideC)
	}
	return s
}

// deviceInfo describes the device a backend runs on.
type deviceInfo struct {
	name         string
	major, minor int
	sms          int
	totalMem     uint64
}

// Launch shapes, as in kernels/common.cuh (QM_BLOCK, QM_TILE_X, QM_TILE_Y).
const (
	blockSize = 256
	tileX     = 32
	tileY     = 8
	// maxGridY is the largest grid height (and depth) CUDA allows.
	maxGridY = 65535
	// residentThreads is how many threads an SM holds at once (2048 on
	// sm_80 and sm_90, 1536 on sm_86 and sm_89); lane launches aim at
	// this many per SM.
	residentThreads = 2048
	// blocksPerSM is how many blocks per SM grid-stride launches use.
	blocksPerSM = 16
	// maxPixels bounds N·H·W of convolution and pooling operands, so that
	// kernels index pixels with 32-bit ints.
	maxPixels = 1 << 30
)

// Backend is the CUDA implementation of engine.Backend on one device, with
// one stream. Ops only queue work, so they return no error: the first
// failure is recorded and returned by Err, and every op after it does
// nothing until Err has been called. Ops must be called from one goroutine
// at a time (ConcurrentSafe is false).
type Backend struct {
	name, describe string
	x              executor
	mem            allocator
	status         scratch // int32 where kernels report invalid input
	maxBlocks      int     // grid size of grid-stride launches
	threads        int     // threads a lane launch aims at
	tf32           bool    // TF32 tensor-op math is on
	conv           convState
	work           workCounts
	err            error
}

var (
	_ engine.Backend         = (*Backend)(nil)
	_ engine.Concurrent      = (*Backend)(nil)
	_ engine.TF32Switch      = (*Backend)(nil)
	_ engine.ConvPathChooser = (*Backend)(nil)
	_ engine.Closer          = (*Backend)(nil)
	_ engine.WorkCounter     = (*Backend)(nil)
)

// Open starts a backend on CUDA device index (numbered as nvidia-smi
// numbers them) with the GPU settings of opts: TF32 math (SetTF32
// switches it later), the convolution path (SetConv), cuDNN's algorithm
// search, exact-size allocations and where one-line notices go.
func Open(index int, opts device.Options) (*Backend, error) {
	if err := opts.Check(); err != nil {
		return nil, fmt.Errorf("cuda:%d: %w", index, err)
	}
	g, info, err := openGPU(index, opts.TF32)
	if err != nil {
		return nil, fmt.Errorf("cuda:%d: %w", index, err)
	}
	b, err := newBackend(g, index, info, opts)
	if err != nil {
		return nil, fmt.Errorf("cuda:%d: %w", index, errors.Join(err, g.close()))
	}
	return b, nil
}

// newBackend makes a backend that runs on x.
func newBackend(x executor, index int, info deviceInfo, opts device.Options) (*Backend, error) {
	b := &Backend{
		name: fmt.Sprintf("cuda:%d", index),
		describe: fmt.Sprintf("%s (cuda:%d, compute %d.%d, %.1f GiB)", info.name, index, info.major, info.minor,
			float64(info.totalMem)/(1<<30)),
		x:         x,
		mem:       newAllocator(x, opts.ExactAlloc),
		maxBlocks: max(1, info.sms) * blocksPerSM,
		threads:   max(1, info.sms) * residentThreads,
	}
	s, ok := b.scratch("Open", 4)
	if !ok {
		return nil, b.err
	}
	b.status = s
	if err := x.memset32(s.ptr, 0, 1); err != nil {
		return nil, err
	}
	b.tf32 = opts.TF32
	b.conv = convState{find: opts.CudnnFind, now: time.Now, note: opts.Note}
	if err := b.SetConv(opts.Conv); err != nil {
		return nil, err
	}
	return b, nil
}

// Name implements engine.Backend ("cuda:0").
func (b *Backend) Name() string { return b.name }

// Describe implements engine.Backend, e.g. "NVIDIA H100 80GB HBM3
// (cuda:0, compute 9.0, 79.1 GiB), convolutions on cuDNN 9.1.0
// (libcudnn.so.9)".
func (b *Backend) Describe() string {
	if b.conv.dnn == nil {
		return b.describe + ", convolutions on im2col + SGEMM"
	}
	s := b.describe + ", convolutions on " + b.conv.dnn.name()
	if n := b.conv.rejected; n > 0 {
		s += fmt.Sprintf(" (%d shapes it rejects on im2col + SGEMM or our depthwise kernels)", n)
	}
	return s
}

// ConcurrentSafe implements engine.Concurrent: ops must not be called from
// several goroutines at once, since they share one stream and one error.
func (b *Backend) ConcurrentSafe() bool { return false }

// SetTF32 implements engine.TF32Switch: it switches TF32 tensor-op math in
// GEMMs (and so convolutions) on or off. On, products are about 10× faster
// on Ampere and Hopper GPUs, with inputs rounded to 10-bit mantissas.
func (b *Backend) SetTF32(on bool) error {
	if err := b.Err(); err != nil {
		return err
	}
	if err := b.x.setTF32(on); err != nil {
		return err
	}
	b.tf32 = on
	return nil
}

// Close implements engine.Closer: it waits for queued work and releases
// the device (cached memory, the stream, the kernels and the cuBLAS
// handle). Tensors still allocated become invalid; the backend must not be
// used afterwards.
func (b *Backend) Close() error {
	err := b.Err()
	if b.status.ptr != 0 {
		b.release(b.status)
		b.status = scratch{}
	}
	return errors.Join(err, b.closeConv(), b.mem.trim(), b.x.close())
}

// fail records err (when it is the first) as a failure of op.
func (b *Backend) fail(op string, err error) {
	if err != nil && b.err == nil {
		b.err = fmt.Errorf("cuda: %s: %w", op, err)
	}
}

// addr is the device address of t's first element; t must have type dt.
func (b *Backend) addr(t *engine.Tensor, dt engine.DType) devPtr {
	if t.DType != dt {
		panic(fmt.Sprintf("cuda: %v used as %s", t, dt))
	}
	m, ok := t.Mem.(*memory)
	switch {
	case !ok:
		panic(fmt.Sprintf("cuda: %v does not live on the CUDA backend", t))
	case m.freed:
		panic(fmt.Sprintf("cuda: %v used after Free", t))
	case t.Offset < 0 || t.Offset+t.Numel() > m.elems:
		panic(fmt.Sprintf("cuda: view %v at offset %d outside its allocation of %d elements", t, t.Offset, m.elems))
	case m.ptr == 0 && m.elems > 0:
		panic(fmt.Sprintf("cuda: %v has no device memory (its allocation failed)", t))
	}
	return m.ptr + devPtr(t.Offset*dt.Size())
}

// f32 is addr for a Float32 tensor, and 0 (NULL) for a nil one.
func (b *Backend) f32(t *engine.Tensor) dptr[float32] {
	if t == nil {
		return 0
	}
	return dptr[float32](b.addr(t, engine.Float32))
}

// i32 is addr for an Int32 tensor, and 0 (NULL) for a nil one.
func (b *Backend) i32(t *engine.Tensor) dptr[int32] {
	if t == nil {
		return 0
	}
	return dptr[int32](b.addr(t, engine.Int32))
}

// statusWord is the Int32 word where kernels report invalid input.
func (b *Backend) statusWord() dptr[int32] { return dptr[int32](b.status.ptr) }

// launch queues a kernel call (built by its generated launcher, see
// kernelCall) for op unless an error is pending.
func (b *Backend) launch(op string, grid, block dim3, c kernelCall) {
	if b.err != nil {
		return
	}
	b.work.add(op, engine.OpWork{Launches: 1})
	b.fail(op, b.x.launch(c.kernel, grid, block, c.args))
}

// launchN launches a grid-stride kernel over n elements (nothing when n is
// 0).
func (b *Backend) launchN(op string, n int, c kernelCall) {
	if n <= 0 {
		return
	}
	blocks := min((n+blockSize-1)/blockSize, b.maxBlocks)
	b.launch(op, dim3{uint32(blocks), 1, 1}, dim3{blockSize, 1, 1}, c)
}

// launchBlocks launches blocks blocks of blockSize threads: one block per
// item of a final reduction, or enough blocks for a lane launch.
func (b *Backend) launchBlocks(op string, blocks int, c kernelCall) {
	if blocks <= 0 {
		return
	}
	if blocks > math.MaxInt32 {
		panic(fmt.Sprintf("cuda: %s: %d blocks", op, blocks))
	}
	b.launch(op, dim3{uint32(blocks), 1, 1}, dim3{blockSize, 1, 1}, c)
}

// lanes is how many lanes a column reduction or per-column launch over a
// [rows, cols] matrix uses (see kernels/common.cuh): enough for the device
// to hold about b.threads threads, at most one per row.
func (b *Backend) lanes(rows, cols int) int {
	return max(1, min(rows, b.threads/cols))
}

// launchLanes is a lane launch of cols·lanes threads.
func (b *Backend) launchLanes(op string, cols, lanes int, c kernelCall) {
	b.launchBlocks(op, (cols*lanes+blockSize-1)/blockSize, c)
}

// launchTiles launches a 2-D kernel whose x threads cover nx contiguous
// items (columns or channels) in tiles of tileX, and whose y threads loop,
// grid-stride, over ny pixels.
func (b *Backend) launchTiles(op string, nx, ny int, c kernelCall) {
	if nx <= 0 || ny <= 0 {
		return
	}
	gx := (nx + tileX - 1) / tileX
	gy := min((ny+tileY-1)/tileY, maxGridY, max(1, b.maxBlocks/gx))
	if gx > math.MaxInt32 {
		panic(fmt.Sprintf("cuda: %s: %d blocks", op, gx))
	}
	b.launch(op, dim3{uint32(gx), uint32(gy), 1}, dim3{tileX, tileY, 1}, c)
}

// gemm queues a row-major GEMM (see gemmArgs) unless an error is pending.
func (b *Backend) gemm(op string, g gemmArgs) {
	if b.err != nil || g.m == 0 || g.n == 0 {
		return
	}
	for _, v := range []int{g.m, g.n, g.k, g.lda, g.ldb, g.ldc, g.batch} {
		if v > math.MaxInt32 {
			panic(fmt.Sprintf("cuda: %s: GEMM %v exceeds cuBLAS's 32-bit sizes", op, g))
		}
	}
	b.work.add(op, engine.OpWork{LibraryCalls: 1})
	b.fail(op, b.x.gemm(g))
}

// must panics with err, a failed precondition of an op (engine's Check
// functions), unless it is nil.
func must(err error) {
	if err != nil {
		panic("cuda: " + err.Error())
	}
}

// checkFloat panics unless every non-nil tensor is Float32.
func checkFloat(op string, ts ...*engine.Tensor) {
	for _, t := range ts {
		if t != nil && t.DType != engine.Float32 {
			panic(fmt.Sprintf("cuda: %s of %v: the CUDA backend computes in Float32", op, t))
		}
	}
}

// narrow converts a size to a kernel's int parameter, panicking when it
// does not fit.
func narrow(v int) int32 {
	if v > math.MaxInt32 || v < math.MinInt32 {
		panic(fmt.Sprintf("cuda: %d does not fit a 32-bit kernel parameter", v))
	}
	return int32(v)
}
