//go:build cuda

package cuda

import (
	"fmt"

	"github.com/qmulgpu/qmulgpu/engine"
)

// Per-sample gradient norms. Sample n's weight gradient of a convolution
// is G_n = D_nᵀ·A_n, with A_n = im2col(x_n) [P, RSC] and D_n = dy_n [P, K]
// over its P output pixels (per group). ‖G_n‖² is computed directly (G_n
// for a chunk of samples by one strided-batched GEMM, then its squares
// summed) or by the ghost-norm identity ‖D_nᵀA_n‖² = ⟨A_nA_nᵀ, D_nD_nᵀ⟩
// (two batched GEMMs of P×P Gram matrices, then their dot product),
// whichever takes fewer multiply-adds, as the CPU backend chooses.
// Depthwise convolutions compute G_n directly with the weight-gradient
// kernel, one split per sample.

// ghostCheaper reports whether the ghost norm costs less than the direct
// one.
func ghostCheaper(pixels, rsc, k int) bool { return pixels*(rsc+k) < rsc*k }

// checkPerSample validates the operands of ConvPerSampleSqNorm.
func checkPerSample(x, dy, out *engine.Tensor, g engine.ConvGeom) {
	must(engine.CheckConvPerSample(x, dy, out, g))
	checkFloat("per-sample norm", x, dy, out)
	if g.N*g.H*g.W > maxPixels || g.N*g.OutH()*g.OutW() > maxPixels || g.R*g.S*(g.C/g.Groups) > maxWindow {
		panic(fmt.Sprintf("cuda: per-sample norm %+v is too large for the CUDA backend", g))
	}
}

// ConvPerSampleSqNorm implements engine.Backend.
func (b *Backend) ConvPerSampleSqNorm(x, dy, out *engine.Tensor, g engine.ConvGeom) {
	checkPerSample(x, dy, out, g)
	if g.N == 0 || b.err != nil {
		return
	}
	if isDepthwise(g) {
		b.depthwisePerSample(b.f32(x), b.f32(dy), b.f32(out), g)
		return
	}
	xp, dyp := b.f32(x), b.f32(dy)
	p := g.OutH() * g.OutW()
	cg, kg := g.C/g.Groups, g.K/g.Groups
	rsc := g.R * g.S * cg
	pointwise := isPointwise(g)
	ghost := ghostCheaper(p, rsc, kg)
	// Per sample: its column matrix (unless pointwise) and G_n or the two
	// Gram matrices.
	perSample := 2 * p * p
	if !ghost {
		perSample = kg * rsc
	}
	if !pointwise {
		perSample += p * rsc
	}
	chunk := max(1, min(g.N, maxColBytes/(4*perSample)))
	accBuf, ok := b.scratch("ConvPerSampleSqNorm", 8*g.N)
	if !ok {
		return
	}
	defer b.release(accBuf)
	work, ok := b.scratch("ConvPerSampleSqNorm", 4*chunk*perSample)
	if !ok {
		return
	}
	defer b.release(work)
	b.memset32("ConvPerSampleSqNorm", accBuf.ptr, 0, uint64(2*g.N))
	acc := dptr[float64](accBuf.ptr)
	col := dptr[float32](work.ptr) // chunk·P rows of RSC, unless pointwise
	prod := col
	if !pointwise {
		prod = col.add(chunk * p * rsc)
	}
	for n0 := 0; n0 < g.N; n0 += chunk {
		nc := min(chunk, g.N-n0)
		for grp := 0; grp < g.Groups; grp++ {
			a, lda, strideA := xp.add(n0*g.H*g.W*g.C), g.C, g.H*g.W*g.C // A_n of pointwise convolutions
			if !pointwise {
				b.im2col("ConvPerSampleSqNorm", xp, col, n0*p, nc*p, grp, g)
				a, lda, strideA = col, rsc, p*rsc
			}
			d, strideD := dyp.add(n0*p*g.K+grp*kg), p*g.K // D_n [P, kg], leading dimension K
			var cols int
			var left, right dptr[float32]
			if ghost {
				// A_nA_nᵀ and D_nD_nᵀ, [P, P] each.
				gramA, gramD := prod, prod.add(nc*p*p)
				b.gemm("ConvPerSampleSqNorm", gemmArgs{transB: true, m: p, n: p, k: rsc, alpha: 1,
					a: a, lda: lda, b: a, ldb: lda, c: gramA, ldc: p, batch: nc, strideA: strideA, strideB: strideA, strideC: p * p})
				b.gemm("ConvPerSampleSqNorm", gemmArgs{transB: true, m: p, n: p, k: kg, alpha: 1,
					a: d, lda: g.K, b: d, ldb: g.K, c: gramD, ldc: p, batch: nc, strideA: strideD, strideB: strideD, strideC: p * p})
				left, right, cols = gramA, gramD, p*p
			} else {
				// G_n = D_nᵀ·A_n, [kg, RSC].
				b.gemm("ConvPerSampleSqNorm", gemmArgs{transA: true, m: kg, n: rsc, k: p, alpha: 1,
					a: d, lda: g.K, b: a, ldb: lda, c: prod, ldc: rsc, batch: nc, strideA: strideD, strideB: strideA, strideC: kg * rsc})
				left, right, cols = prod, prod, kg*rsc
			}
			var dst dptr[float32]
			if grp == g.Groups-1 {
				dst = b.f32(out).add(n0)
			}
			b.launchBlocks("ConvPerSampleSqNorm", nc, qmRowDot(left, right, int64(cols), acc.add(n0), dst))
		}
	}
}

// depthwisePerSample writes out[n] = Σ_{c,r,s} G_n[c, r, s]² for a
// depthwise convolution, with G_n from qm_dwconv_dw_partial_f32 run with one
// split per sample (at most maxGridY samples per launch).
func (b *Backend) depthwisePerSample(xp, dyp, out dptr[float32], g engine.ConvGeom) {
	oh, ow := g.OutH(), g.OutW()
	rs := g.R * g.S
	tiles := (g.C + tileX - 1) / tileX
	chunk := min(g.N, maxGridY, max(1, maxColBytes/(4*rs*g.C)))
	gradBuf, ok := b.scratch("ConvPerSampleSqNorm", 4*chunk*rs*g.C)
	if !ok {
		return
	}
	defer b.release(gradBuf)
	grad := dptr[float32](gradBuf.ptr)
	for n0 := 0; n0 < g.N; n0 += chunk {
		nc := min(chunk, g.N-n0)
		b.launch("ConvPerSampleSqNorm", dim3{uint32(tiles), uint32(rs), uint32(nc)}, dim3{tileX, tileY, 1},
			qmDwconvDwPartialF32(xp.add(n0*g.H*g.W*g.C), dyp.add(n0*oh*ow*g.C), grad,
				narrow(nc), narrow(g.H), narrow(g.W), narrow(g.C), narrow(oh), narrow(ow),
				narrow(g.R), narrow(g.S), narrow(g.Stride), narrow(g.Pad)))
		b.launchBlocks("ConvPerSampleSqNorm", nc, qmRowDot(grad, grad, int64(rs*g.C), 0, out.add(n0)))
	}
}

// BatchNormPerSampleSqNorm implements engine.Backend: per sample and
// channel, Σ dy·x̂ and Σ dy over the sample's rows (dy zeroed where a fused
// activation is flat; qm_bn_persample_partial, in double precision), then
// per sample the sums of their squares.
func (b *Backend) BatchNormPerSampleSqNorm(a engine.BatchNormArgs, n int, outGamma, outBeta *engine.Tensor) {
	must(engine.CheckBatchNormPerSample(a, n, outGamma, outBeta))
	checkFloat("batch norm per-sample norm", a.X, a.DY, a.Mean, a.InvStd, outGamma, outBeta)
	if fusedAct(a.Act) != 0 {
		checkFloat("batch norm per-sample norm", a.Y)
	}
	c := a.Mean.Numel()
	if b.err != nil {
		return
	}
	sums, ok := b.scratch("BatchNormPerSampleSqNorm", 8*2*n*c)
	if !ok {
		return
	}
	defer b.release(sums)
	dg := dptr[float64](sums.ptr)
	db := dg.add(n * c)
	tiles := (c + tileX - 1) / tileX
	if tiles > maxGridY {
		panic(fmt.Sprintf("cuda: batch norm per-sample norm: %d channels", c))
	}
	b.launch("BatchNormPerSampleSqNorm", dim3{uint32(n), uint32(tiles), 1}, dim3{tileX, tileY, 1},
		qmBnPersamplePartial(b.f32(a.X), b.f32(a.DY), b.fusedOutput(a), fusedAct(a.Act), b.f32(a.Mean), b.f32(a.InvStd),
			int64(a.X.Numel()/(c*n)), narrow(c), dg, db))
	b.launchBlocks("BatchNormPerSampleSqNorm", n, qmBnPersampleFinal(dg, db, narrow(c), b.f32(outGamma), b.f32(outBeta)))
}
