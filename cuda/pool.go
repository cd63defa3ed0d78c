//go:build cuda

package cuda

import (
	"fmt"

	"github.com/qmulgpu/qmulgpu/engine"
)

func checkPool(op string, kind engine.PoolKind, x, y, argmax *engine.Tensor, g engine.PoolGeom) {
	must(engine.CheckPool(op, kind, x, y, argmax, g))
	if g.N*g.H*g.W > maxPixels || g.N*g.OutH()*g.OutW() > maxPixels {
		panic(fmt.Sprintf("cuda: %s %+v is too large for the CUDA backend", op, g))
	}
	checkFloat(op, x, y)
}

// poolGeom is the geometry parameters of the pooling kernels.
type poolGeom struct{ n, h, w, c, oh, ow, k, stride, pad int32 }

func newPoolGeom(g engine.PoolGeom) poolGeom {
	return poolGeom{narrow(g.N), narrow(g.H), narrow(g.W), narrow(g.C), narrow(g.OutH()), narrow(g.OutW()),
		narrow(g.Kernel), narrow(g.Stride), narrow(g.Pad)}
}

// Pool2d implements engine.Backend. A max-pooling window that lies entirely
// in the padding yields −inf and argmax −1.
func (b *Backend) Pool2d(kind engine.PoolKind, x, y, argmax *engine.Tensor, g engine.PoolGeom) {
	checkPool("pool", kind, x, y, argmax, g)
	if b.err != nil {
		return
	}
	n, p := y.Numel(), newPoolGeom(g)
	if kind == engine.MaxPool {
		b.launchN("Pool2d", n, qmMaxpoolF32(b.f32(x), b.f32(y), b.i32(argmax),
			p.n, p.h, p.w, p.c, p.oh, p.ow, p.k, p.stride, p.pad))
	} else {
		b.launchN("Pool2d", n, qmAvgpoolF32(b.f32(x), b.f32(y), p.n, p.h, p.w, p.c, p.oh, p.ow, p.k, p.stride, p.pad))
	}
}

// Pool2dBackward implements engine.Backend. Each dx element gathers from
// the windows covering it, so overlapping windows need no atomics.
func (b *Backend) Pool2dBackward(kind engine.PoolKind, dy, argmax, dx *engine.Tensor, g engine.PoolGeom) {
	checkPool("pool backward", kind, dx, dy, argmax, g)
	if b.err != nil {
		return
	}
	var am dptr[int32]
	if kind == engine.MaxPool {
		am = b.i32(argmax)
	}
	p := newPoolGeom(g)
	b.launchN("Pool2dBackward", dx.Numel(), qmPoolBackwardF32(b.f32(dy), am, b.f32(dx),
		p.n, p.h, p.w, p.c, p.oh, p.ow, p.k, p.stride, p.pad))
}

// globalPoolDims returns N, H·W and C for x [N,H,W,C] and y [N,C].
func globalPoolDims(op string, x, y *engine.Tensor) (n, hw, c int) {
	must(engine.CheckGlobalAvgPool(op, x, y))
	checkFloat(op, x, y)
	n, c = x.Rows(), y.Cols()
	return n, x.Numel() / (n * c), c
}

// GlobalAvgPool implements engine.Backend (sums in double precision).
func (b *Backend) GlobalAvgPool(x, y *engine.Tensor) {
	n, hw, c := globalPoolDims("global average pool", x, y)
	if b.err != nil {
		return
	}
	b.launchN("GlobalAvgPool", n*c, qmGlobalAvgpoolF32(b.f32(x), b.f32(y), int64(n), narrow(hw), narrow(c)))
}

// GlobalAvgPoolBackward implements engine.Backend.
func (b *Backend) GlobalAvgPoolBackward(dy, dx *engine.Tensor) {
	n, hw, c := globalPoolDims("global average pool backward", dx, dy)
	if b.err != nil {
		return
	}
	b.launchN("GlobalAvgPoolBackward", dx.Numel(), qmGlobalAvgpoolBackwardF32(b.f32(dy), b.f32(dx),
		int64(n), narrow(hw), narrow(c)))
}
