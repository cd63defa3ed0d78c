//go:build cuda

package cuda

import (
	"fmt"

	"github.com/qmulgpu/qmulgpu/engine"
)

// Convolutions run through cuDNN where convplan.go decides so, and
// otherwise as im2col + cuBLAS SGEMM over chunks of output pixels
// (pixel p = (n·OH + oy)·OW + ox of the whole batch), each chunk small
// enough that its column buffers stay within maxColBytes; grouped
// convolutions take one GEMM per group, addressing the group's channels
// through leading dimensions. 1×1 stride-1 unpadded convolutions are GEMMs
// on the activations themselves, and depthwise convolutions (groups = C =
// K) use direct kernels.

// maxColBytes bounds the column buffers of one convolution. It is a
// variable so that tests can force many small chunks.
var maxColBytes = 256 << 20

// maxWindow bounds R·S·C/groups, so that one pixel's column row (and any
// chunk's column buffer) has fewer than 2^31 elements.
const maxWindow = 1 << 26

// checkConvSize panics when g is past the CUDA backend's sizes.
func checkConvSize(op string, g engine.ConvGeom) {
	if g.N*g.H*g.W > maxPixels || g.N*g.OutH()*g.OutW() > maxPixels || g.R*g.S*(g.C/g.Groups) > maxWindow ||
		g.R*g.S > maxGridY {
		panic(fmt.Sprintf("cuda: %s %+v is too large for the CUDA backend", op, g))
	}
}

func isDepthwise(g engine.ConvGeom) bool {
	return g.Groups > 1 && g.Groups == g.C && g.Groups == g.K
}

func isPointwise(g engine.ConvGeom) bool {
	return g.R == 1 && g.S == 1 && g.Stride == 1 && g.Pad == 0 && g.Groups == 1
}

// colRows is how many output pixels a chunk holds when buffers column
// buffers of rsc floats per pixel must fit in maxColBytes.
func colRows(pixels, rsc, buffers int) int {
	return max(1, min(pixels, maxColBytes/(4*rsc*buffers)))
}

// Conv2d implements engine.Backend.
func (b *Backend) Conv2d(x, w, y *engine.Tensor, g engine.ConvGeom) {
	must(engine.CheckConv("conv", x, w, y, g))
	checkFloat("conv", x, w, y)
	checkConvSize("conv", g)
	if g.N == 0 || b.err != nil {
		return
	}
	xp, wp, yp := b.f32(x), b.f32(w), b.f32(y)
	if b.dnnForward(devPtr(xp), devPtr(wp), devPtr(yp), g) {
		return
	}
	oh, ow := g.OutH(), g.OutW()
	pixels := g.N * oh * ow
	switch {
	case isDepthwise(g):
		b.depthwiseForward(xp, wp, yp, g)
		return
	case isPointwise(g):
		// y [pixels, K] = x [pixels, C] · wᵀ with w [K, C].
		b.gemm("Conv2d", gemmArgs{transB: true, m: pixels, n: g.K, k: g.C, alpha: 1,
			a: xp, lda: g.C, b: wp, ldb: g.C, c: yp, ldc: g.K})
		return
	}
	cg, kg := g.C/g.Groups, g.K/g.Groups
	rsc := g.R * g.S * cg
	chunk := colRows(pixels, rsc, 1)
	colBuf, ok := b.scratch("Conv2d", 4*chunk*rsc)
	if !ok {
		return
	}
	defer b.release(colBuf)
	col := dptr[float32](colBuf.ptr)
	for p0 := 0; p0 < pixels; p0 += chunk {
		rows := min(chunk, pixels-p0)
		for grp := 0; grp < g.Groups; grp++ {
			b.im2col("Conv2d", xp, col, p0, rows, grp, g)
			// y[p0:, group's K] [rows, kg] = col [rows, rsc] · w_grpᵀ with w_grp [kg, rsc].
			b.gemm("Conv2d", gemmArgs{transB: true, m: rows, n: kg, k: rsc, alpha: 1,
				a: col, lda: rsc, b: wp.add(grp * kg * rsc), ldb: rsc, c: yp.add(p0*g.K + grp*kg), ldc: g.K})
		}
	}
}

// Conv2dBackward implements engine.Backend.
func (b *Backend) Conv2dBackward(x, w, dy, dx, dw *engine.Tensor, g engine.ConvGeom) {
	must(engine.CheckConvBackward(x, w, dy, dx, dw, g))
	checkFloat("conv backward", x, w, dy, dx, dw)
	checkConvSize("conv backward", g)
	if g.N == 0 || b.err != nil {
		return
	}
	xp, wp, dyp, dxp, dwp := b.f32(x), b.f32(w), b.f32(dy), b.f32(dx), b.f32(dw)
	if b.dnnBackward(devPtr(xp), devPtr(wp), devPtr(dyp), devPtr(dxp), devPtr(dwp), g) {
		return
	}
	if isDepthwise(g) {
		b.depthwiseBackward(xp, wp, dyp, dxp, dwp, g)
		return
	}
	oh, ow := g.OutH(), g.OutW()
	pixels := g.N * oh * ow
	if isPointwise(g) {
		// dw [K, C] += dyᵀ · x; dx [pixels, C] = dy · w.
		b.gemm("Conv2dBackward", gemmArgs{transA: true, m: g.K, n: g.C, k: pixels, alpha: 1,
			a: dyp, lda: g.K, b: xp, ldb: g.C, beta: 1, c: dwp, ldc: g.C})
		if dx != nil {
			b.gemm("Conv2dBackward", gemmArgs{m: pixels, n: g.C, k: g.K, alpha: 1,
				a: dyp, lda: g.K, b: wp, ldb: g.C, c: dxp, ldc: g.C})
		}
		return
	}
	cg, kg := g.C/g.Groups, g.K/g.Groups
	rsc := g.R * g.S * cg
	buffers := 1
	if dx != nil {
		buffers = 2
	}
	chunk := colRows(pixels, rsc, buffers)
	colBuf, ok := b.scratch("Conv2dBackward", 4*chunk*rsc)
	if !ok {
		return
	}
	defer b.release(colBuf)
	col := dptr[float32](colBuf.ptr)
	var dcol dptr[float32]
	if dx != nil {
		dcolBuf, ok := b.scratch("Conv2dBackward", 4*chunk*rsc)
		if !ok {
			return
		}
		defer b.release(dcolBuf)
		dcol = dptr[float32](dcolBuf.ptr)
		// col2im accumulates, chunk by chunk.
		b.memset32("Conv2dBackward", devPtr(dxp), 0, uint64(x.Numel()))
	}
	for p0 := 0; p0 < pixels; p0 += chunk {
		rows := min(chunk, pixels-p0)
		for grp := 0; grp < g.Groups; grp++ {
			b.im2col("Conv2dBackward", xp, col, p0, rows, grp, g)
			dyg := dyp.add(p0*g.K + grp*kg) // [rows, kg] with leading dimension K
			wg := wp.add(grp * kg * rsc)    // [kg, rsc]
			// dw_grp [kg, rsc] += dy_grpᵀ · col.
			b.gemm("Conv2dBackward", gemmArgs{transA: true, m: kg, n: rsc, k: rows, alpha: 1,
				a: dyg, lda: g.K, b: col, ldb: rsc, beta: 1, c: dwp.add(grp * kg * rsc), ldc: rsc})
			if dx == nil {
				continue
			}
			// dcol [rows, rsc] = dy_grp · w_grp, then scattered back into dx.
			b.gemm("Conv2dBackward", gemmArgs{m: rows, n: rsc, k: kg, alpha: 1,
				a: dyg, lda: g.K, b: wg, ldb: rsc, c: dcol, ldc: rsc})
			n0 := p0 / (oh * ow)
			nimg := (p0+rows-1)/(oh*ow) - n0 + 1
			b.launchTiles("Conv2dBackward", cg, nimg*g.H*g.W, qmCol2imF32(dcol, dxp,
				narrow(p0), narrow(rows), narrow(n0), narrow(nimg), narrow(g.H), narrow(g.W), narrow(g.C),
				narrow(oh), narrow(ow), narrow(g.R), narrow(g.S), narrow(g.Stride), narrow(g.Pad), narrow(cg), narrow(grp)))
		}
	}
}

// im2col queues qm_im2col_f32 for output pixels [p0, p0+rows) and group
// grp into col.
func (b *Backend) im2col(op string, x, col dptr[float32], p0, rows, grp int, g engine.ConvGeom) {
	cg := g.C / g.Groups
	b.launchTiles(op, g.R*g.S*cg, rows, qmIm2colF32(x, col, narrow(p0), narrow(rows),
		narrow(g.H), narrow(g.W), narrow(g.C), narrow(g.OutH()), narrow(g.OutW()),
		narrow(g.R), narrow(g.S), narrow(g.Stride), narrow(g.Pad), narrow(cg), narrow(grp)))
}

// depthwiseForward queues our direct depthwise kernel.
func (b *Backend) depthwiseForward(xp, wp, yp dptr[float32], g engine.ConvGeom) {
	oh, ow := g.OutH(), g.OutW()
	b.launchTiles("Conv2d", g.C, g.N*oh*ow, qmDwconvF32(xp, wp, yp,
		narrow(g.N), narrow(g.H), narrow(g.W), narrow(g.C), narrow(oh), narrow(ow),
		narrow(g.R), narrow(g.S), narrow(g.Stride), narrow(g.Pad)))
}

// depthwiseBackward computes dx (when dxp is not 0) and accumulates dw of
// a depthwise convolution. The weight gradient is a reduction over output
// pixels, split into ranges whose partial sums qm_dwconv_dw_final_f32 adds
// in order.
func (b *Backend) depthwiseBackward(xp, wp, dyp, dxp, dwp dptr[float32], g engine.ConvGeom) {
	oh, ow := g.OutH(), g.OutW()
	n, h, w, c := narrow(g.N), narrow(g.H), narrow(g.W), narrow(g.C)
	r, s, stride, pad := narrow(g.R), narrow(g.S), narrow(g.Stride), narrow(g.Pad)
	if dxp != 0 {
		b.launchTiles("Conv2dBackward", g.C, g.N*g.H*g.W,
			qmDwconvDxF32(dyp, wp, dxp, n, h, w, c, narrow(oh), narrow(ow), r, s, stride, pad))
	}
	rs := g.R * g.S
	pixels := g.N * oh * ow
	tiles := (g.C + tileX - 1) / tileX
	// Enough splits to fill the device, but at least 64 pixels per thread.
	splits := min(max(1, b.maxBlocks/(tiles*rs)), max(1, pixels/(tileY*64)), maxGridY)
	partialBuf, ok := b.scratch("Conv2dBackward", 4*splits*rs*g.C)
	if !ok {
		return
	}
	defer b.release(partialBuf)
	partial := dptr[float32](partialBuf.ptr)
	b.launch("Conv2dBackward", dim3{uint32(tiles), uint32(rs), uint32(splits)}, dim3{tileX, tileY, 1},
		qmDwconvDwPartialF32(xp, dyp, partial, n, h, w, c, narrow(oh), narrow(ow), r, s, stride, pad))
	b.launchN("Conv2dBackward", g.C*rs, qmDwconvDwFinalF32(partial, dwp, c, narrow(rs), narrow(splits)))
}
