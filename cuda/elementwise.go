//go:build cuda

package cuda

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/qmulgpu/qmulgpu/engine"
)

// Fill implements engine.Backend with cuMemsetD32Async (Float32, Int32) or
// cuMemsetD8Async (Uint8).
func (b *Backend) Fill(x *engine.Tensor, v float64) {
	n := x.Numel()
	if n == 0 || b.err != nil {
		return
	}
	p := b.addr(x, x.DType)
	switch x.DType {
	case engine.Float32:
		b.fail("Fill", b.x.memset32(p, math.Float32bits(float32(v)), uint64(n)))
	case engine.Int32:
		b.fail("Fill", b.x.memset32(p, uint32(int32(v)), uint64(n)))
	case engine.Uint8:
		b.fail("Fill", b.x.memset8(p, uint8(v), uint64(n)))
	}
}

// Copy implements engine.Backend with cuMemcpyDtoDAsync.
func (b *Backend) Copy(dst, src *engine.Tensor) {
	if dst.DType != src.DType || dst.Numel() != src.Numel() {
		panic(fmt.Sprintf("cuda: copy of %v into %v", src, dst))
	}
	if dst.Numel() == 0 || b.err != nil {
		return
	}
	b.fail("Copy", b.x.copy(b.addr(dst, dst.DType), b.addr(src, src.DType), uint64(dst.Numel()*dst.DType.Size())))
}

// Scale implements engine.Backend.
func (b *Backend) Scale(x *engine.Tensor, a float64) {
	checkFloat("scale", x)
	if b.err != nil {
		return
	}
	n := x.Numel()
	b.launchN("Scale", "qm_scale_f32", n, b.f32(x), int64(n), float32(a))
}

// Axpy implements engine.Backend.
func (b *Backend) Axpy(a float64, x, y *engine.Tensor) {
	checkFloat("axpy", x, y)
	checkNumel("axpy", y, x.Numel(), "y")
	if b.err != nil {
		return
	}
	n := x.Numel()
	b.launchN("Axpy", "qm_axpy_f32", n, b.f32(x), b.f32(y), int64(n), float32(a))
}

// Add implements engine.Backend.
func (b *Backend) Add(dst, x, y *engine.Tensor) {
	checkFloat("add", dst, x, y)
	n := dst.Numel()
	checkNumel("add", x, n, "a")
	checkNumel("add", y, n, "b")
	if b.err != nil {
		return
	}
	b.launchN("Add", "qm_add_f32", n, b.f32(dst), b.f32(x), b.f32(y), int64(n))
}

// Gather implements engine.Backend for every type. An index out of range
// is reported by Err.
func (b *Backend) Gather(dst, src, index *engine.Tensor) {
	if dst.DType != src.DType || index.DType != engine.Int32 || dst.Rows() != index.Numel() || dst.Cols() != src.Cols() {
		panic(fmt.Sprintf("cuda: gather %v from %v by %v", dst, src, index))
	}
	rows, cols := dst.Rows(), dst.Cols()
	if rows*cols == 0 || b.err != nil {
		return
	}
	kernel := "qm_gather_rows_u32"
	if dst.DType.Size() == 1 {
		kernel = "qm_gather_rows_u8"
	}
	b.launchN("Gather", kernel, rows*cols, b.addr(dst, dst.DType), b.addr(src, src.DType), b.i32(index),
		int64(rows), int64(cols), int64(src.Rows()), b.status.ptr)
}

// AddSign implements engine.Backend.
func (b *Backend) AddSign(a float64, x, y *engine.Tensor) {
	checkFloat("add sign", x, y)
	n := x.Numel()
	checkNumel("add sign", y, n, "y")
	if b.err != nil {
		return
	}
	b.launchN("AddSign", "qm_add_sign_f32", n, b.f32(x), b.f32(y), int64(n), float32(a))
}

// AddSqrt implements engine.Backend.
func (b *Backend) AddSqrt(dst, src *engine.Tensor) {
	checkFloat("add sqrt", dst, src)
	n := dst.Numel()
	checkNumel("add sqrt", src, n, "src")
	if b.err != nil {
		return
	}
	b.launchN("AddSqrt", "qm_add_sqrt_f32", n, b.f32(dst), b.f32(src), int64(n))
}

// dotMax is how many tensor pairs one qm_dot_partial launch covers
// (QM_DOT_MAX in kernels/reduce.cu).
const dotMax = 160

// SumSquares implements engine.Backend: Dot of each tensor with itself.
func (b *Backend) SumSquares(ts []*engine.Tensor, out *engine.Tensor) {
	b.dot("SumSquares", ts, ts, out)
}

// Dot implements engine.Backend: out[i] = Σ as[i]·bs[i], accumulated in
// double precision.
func (b *Backend) Dot(as, bs []*engine.Tensor, out *engine.Tensor) {
	if len(as) != len(bs) {
		panic(fmt.Sprintf("cuda: dot of %d and %d tensors", len(as), len(bs)))
	}
	b.dot("Dot", as, bs, out)
}

// dot computes the dot products of pairs of tensors. Up to dotMax pairs
// take one launch of qm_dot_partial, whose table of addresses and lengths
// travels in the kernel's parameters; qm_dot_final then adds each pair's
// partial sums.
func (b *Backend) dot(op string, as, bs []*engine.Tensor, out *engine.Tensor) {
	checkFloat(op, out)
	checkNumel(op, out, len(as), "out")
	longest := 0
	for i, a := range as {
		checkFloat(op, a, bs[i])
		checkNumel(op, bs[i], a.Numel(), "an operand")
		longest = max(longest, a.Numel())
	}
	if len(as) == 0 || b.err != nil {
		return
	}
	// Enough blocks per pair for the longest to give each thread about
	// eight elements.
	splits := min(max(1, (longest+8*blockSize-1)/(8*blockSize)), blockSize)
	partial, ok := b.scratch(op, 8*len(as)*splits)
	if !ok {
		return
	}
	defer b.release(partial)
	for first := 0; first < len(as); first += dotMax {
		chunk := min(len(as)-first, dotMax)
		table := make([]byte, 24*dotMax)
		for i := range chunk {
			a, bt := as[first+i], bs[first+i]
			binary.NativeEndian.PutUint64(table[8*i:], uint64(b.f32(a)))
			binary.NativeEndian.PutUint64(table[8*(dotMax+i):], uint64(b.f32(bt)))
			binary.NativeEndian.PutUint64(table[8*(2*dotMax+i):], uint64(a.Numel()))
		}
		b.launch(op, "qm_dot_partial", dim3{uint32(splits), uint32(chunk), 1}, dim3{blockSize, 1, 1},
			rawArg{table, 8}, int32(first), partial.ptr)
	}
	b.launchBlocks(op, "qm_dot_final", len(as), partial.ptr, int32(splits), b.f32(out))
}

// RowSqNorm implements engine.Backend: one block per row, in double
// precision.
func (b *Backend) RowSqNorm(x, out *engine.Tensor) {
	checkFloat("row norm", x, out)
	rows, cols := x.Rows(), x.Cols()
	checkNumel("row norm", out, rows, "out")
	if rows == 0 || b.err != nil {
		return
	}
	b.launchBlocks("RowSqNorm", "qm_row_dot", rows, b.f32(x), b.f32(x), int64(cols), devPtr(0), b.f32(out))
}
