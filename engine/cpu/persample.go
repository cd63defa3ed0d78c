package cpu

import (
	"github.com/qmulgpu/qmulgpu/engine"
)

// Per-sample gradient norms. For a convolution, sample n's weight gradient
// is G_n = D_nᵀ·A_n with A_n = im2col(x_n) [P, RSC] and D_n = dy_n [P, K]
// over its P output pixels. ‖G_n‖² is computed directly (form G_n, sum its
// squares: P·RSC·K multiply-adds) or by the ghost-norm identity
// ‖D_nᵀA_n‖² = ⟨A_nA_nᵀ, D_nD_nᵀ⟩ (P²·(RSC+K)), whichever is cheaper for
// the layer's shape.

// ghostCheaper reports whether the ghost norm costs less than the direct one.
func ghostCheaper(pixels, rsc, k int) bool { return pixels*(rsc+k) < rsc*k }

// ConvPerSampleSqNorm implements engine.Backend.
func (b *Backend) ConvPerSampleSqNorm(x, dy, out *engine.Tensor, g engine.ConvGeom) {
	must(engine.CheckConvPerSample(x, dy, out, g))
	res := make([]float64, g.N)
	dispatch(b, opPerSample, x.DType, convArgs{x: x, dy: dy, g: g, norms: res}, convPerSample[float32], convPerSample[float64])
	storeFloats(out, res)
}

func convPerSample[T float](b *Backend, a convArgs) {
	x, dy, out, g := floats[T](a.x), floats[T](a.dy), a.norms, a.g
	oh, ow := g.OutH(), g.OutW()
	pix := oh * ow
	cg, kg := g.C/g.Groups, g.K/g.Groups
	rsc := g.R * g.S * cg
	ghost := ghostCheaper(pix, rsc, kg)
	pointwise := isPointwise(g)
	b.parallel(g.N, 1, func(_, lo, hi int) {
		var col, work, work2 []T
		if !pointwise {
			col = getScratch[T](b, pix*rsc)
			defer putScratch(b, col)
		}
		if ghost {
			work = getScratch[T](b, pix*pix)
			work2 = getScratch[T](b, pix*pix)
			defer putScratch(b, work)
			defer putScratch(b, work2)
		} else {
			work = getScratch[T](b, kg*rsc)
			defer putScratch(b, work)
		}
		for n := lo; n < hi; n++ {
			var s float64
			for grp := 0; grp < g.Groups; grp++ {
				a, lda := x[n*g.H*g.W*g.C:], g.C
				if !pointwise {
					im2col(x, col, n, n+1, grp, g)
					a, lda = col, rsc
				}
				d := dy[n*pix*g.K+grp*kg:]
				if ghost {
					gemm(false, true, pix, pix, rsc, 1, a, lda, a, lda, 0, work, pix)
					gemm(false, true, pix, pix, kg, 1, d, g.K, d, g.K, 0, work2, pix)
					for i, v := range work[:pix*pix] {
						s += float64(v) * float64(work2[i])
					}
				} else {
					gemm(true, false, kg, rsc, pix, 1, d, g.K, a, lda, 0, work, rsc)
					for _, v := range work[:kg*rsc] {
						s += float64(v) * float64(v)
					}
				}
			}
			out[n] = s
		}
	})
}

// BatchNormPerSampleSqNorm implements engine.Backend.
func (b *Backend) BatchNormPerSampleSqNorm(a engine.BatchNormArgs, n int, outGamma, outBeta *engine.Tensor) {
	must(engine.CheckBatchNormPerSample(a, n, outGamma, outBeta))
	p := bnPerSampleArgs{BatchNormArgs: a, gamma: make([]float64, n), beta: make([]float64, n)}
	dispatch(b, opPerSample, a.X.DType, p, bnPerSample[float32], bnPerSample[float64])
	storeFloats(outGamma, p.gamma)
	storeFloats(outBeta, p.beta)
}

// bnPerSampleArgs are the operands of BatchNormPerSampleSqNorm, with the
// per-sample squared norms of dgamma's and dbeta's shares as outputs.
type bnPerSampleArgs struct {
	engine.BatchNormArgs
	gamma, beta []float64
}

func bnPerSample[T float](b *Backend, p bnPerSampleArgs) {
	a, n, sg, sb := p.BatchNormArgs, len(p.gamma), p.gamma, p.beta
	x, dy := floats[T](a.X), floats[T](a.DY)
	var y []T
	if a.Act != 0 {
		y = floats[T](a.Y)
	}
	mean, invstd := floats[T](a.Mean), floats[T](a.InvStd)
	c := len(mean)
	per := len(x) / c / n
	b.parallel(n, 1, func(_, lo, hi int) {
		dg, db := make([]float64, c), make([]float64, c)
		for s := lo; s < hi; s++ {
			clear(dg)
			clear(db)
			for r := s * per; r < (s+1)*per; r++ {
				xs, ds := x[r*c:(r+1)*c], dy[r*c:(r+1)*c]
				for j := range ds {
					d := float64(ds[j])
					if y != nil && flat(a.Act, y[r*c+j]) {
						d = 0
					}
					db[j] += d
					dg[j] += d * (float64(xs[j]) - float64(mean[j])) * float64(invstd[j])
				}
			}
			var g2, b2 float64
			for j := range dg {
				g2 += dg[j] * dg[j]
				b2 += db[j] * db[j]
			}
			sg[s], sb[s] = g2, b2
		}
	})
}
