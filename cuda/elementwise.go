//go:build cuda

package cuda

import (
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
		b.memset32("Fill", p, math.Float32bits(float32(v)), uint64(n))
	case engine.Int32:
		b.memset32("Fill", p, uint32(int32(v)), uint64(n))
	case engine.Uint8:
		b.memset8("Fill", p, uint8(v), uint64(n))
	}
}

// Copy implements engine.Backend with cuMemcpyDtoDAsync.
func (b *Backend) Copy(dst, src *engine.Tensor) {
	must(engine.CheckLike("copy", "src", src, dst))
	if dst.Numel() == 0 || b.err != nil {
		return
	}
	b.work.add("Copy", engine.OpWork{MemoryOps: 1})
	b.fail("Copy", b.x.copy(b.addr(dst, dst.DType), b.addr(src, src.DType), uint64(dst.Numel()*dst.DType.Size())))
}

// Scale implements engine.Backend.
func (b *Backend) Scale(x *engine.Tensor, a float64) {
	checkFloat("scale", x)
	if b.err != nil {
		return
	}
	n := x.Numel()
	b.launchN("Scale", n, qmScaleF32(b.f32(x), int64(n), float32(a)))
}

// Axpy implements engine.Backend.
func (b *Backend) Axpy(a float64, x, y *engine.Tensor) {
	must(engine.CheckLike("axpy", "y", y, x))
	checkFloat("axpy", x, y)
	if b.err != nil {
		return
	}
	n := x.Numel()
	b.launchN("Axpy", n, qmAxpyF32(b.f32(x), b.f32(y), int64(n), float32(a)))
}

// Add implements engine.Backend.
func (b *Backend) Add(dst, x, y *engine.Tensor) {
	must(engine.CheckAdd(dst, x, y))
	checkFloat("add", dst, x, y)
	n := dst.Numel()
	if b.err != nil {
		return
	}
	b.launchN("Add", n, qmAddF32(b.f32(dst), b.f32(x), b.f32(y), int64(n)))
}

// Gather implements engine.Backend for every type. An index out of range
// is reported by Err.
func (b *Backend) Gather(dst, src, index *engine.Tensor) {
	must(engine.CheckGather(dst, src, index))
	rows, cols := dst.Rows(), dst.Cols()
	if rows*cols == 0 || b.err != nil {
		return
	}
	d, s := b.addr(dst, dst.DType), b.addr(src, src.DType)
	if dst.DType.Size() == 1 {
		b.launchN("Gather", rows*cols, qmGatherRowsU8(dptr[uint8](d), dptr[uint8](s), b.i32(index),
			int64(rows), int64(cols), int64(src.Rows()), b.statusWord()))
		return
	}
	b.launchN("Gather", rows*cols, qmGatherRowsU32(dptr[uint32](d), dptr[uint32](s), b.i32(index),
		int64(rows), int64(cols), int64(src.Rows()), b.statusWord()))
}
