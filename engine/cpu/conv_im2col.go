package cpu

import "github.com/qmulgpu/qmulgpu/engine"

// im2col + GEMM runs over blocks of whole samples. Each goroutine takes a
// contiguous range of the batch and walks it in blocks sized so that the
// column buffer stays bounded while the GEMMs stay large enough to run at
// full speed.

const (
	targetRows  = 1024    // GEMM rows per block worth reaching
	maxColElems = 4 << 20 // column-buffer elements per block, at most
)

// samplesPerBlock is how many samples one im2col block holds.
func samplesPerBlock(outPixels, rowLen int) int {
	per := (targetRows + outPixels - 1) / outPixels
	if limit := maxColElems / max(1, outPixels*rowLen); per > limit {
		per = limit
	}
	return max(1, per)
}

// im2colForward computes y = im2col(x)·wᵀ per block of samples.
func im2colForward[T float](b *Backend, a convArgs) {
	x, w, y, g := floats[T](a.x), floats[T](a.w), floats[T](a.y), a.g
	oh, ow := g.OutH(), g.OutW()
	cg, kg := g.C/g.Groups, g.K/g.Groups
	rsc := g.R * g.S * cg
	pointwise := isPointwise(g)
	per := samplesPerBlock(oh*ow, rsc)
	b.parallel(g.N, 1, func(_, lo, hi int) {
		var col []T
		if !pointwise {
			col = getScratch[T](b, min(per, hi-lo)*oh*ow*rsc)
			defer putScratch(b, col)
		}
		for n0 := lo; n0 < hi; n0 += per {
			n1 := min(hi, n0+per)
			rows := (n1 - n0) * oh * ow
			for grp := 0; grp < g.Groups; grp++ {
				a, lda := x[n0*g.H*g.W*g.C:], g.C
				if !pointwise {
					im2col(x, col, n0, n1, grp, g)
					a, lda = col, rsc
				}
				gemm(false, true, rows, kg, rsc, 1, a, lda, w[grp*kg*rsc:], rsc, 0, y[n0*oh*ow*g.K+grp*kg:], g.K)
			}
		}
	})
}

// im2colData computes dx: per block, dcol = dy·w and col2im scatters dcol
// into dx.
func im2colData[T float](b *Backend, a convArgs) {
	w, dy, dx, g := floats[T](a.w), floats[T](a.dy), floats[T](a.dx), a.g
	oh, ow := g.OutH(), g.OutW()
	cg, kg := g.C/g.Groups, g.K/g.Groups
	rsc := g.R * g.S * cg
	pointwise := isPointwise(g)
	per := samplesPerBlock(oh*ow, rsc)
	b.parallel(g.N, 1, func(_, lo, hi int) {
		var dcol []T
		if !pointwise {
			dcol = getScratch[T](b, min(per, hi-lo)*oh*ow*rsc)
			defer putScratch(b, dcol)
		}
		for n0 := lo; n0 < hi; n0 += per {
			n1 := min(hi, n0+per)
			rows := (n1 - n0) * oh * ow
			if !pointwise {
				clear(dx[n0*g.H*g.W*g.C : n1*g.H*g.W*g.C])
			}
			for grp := 0; grp < g.Groups; grp++ {
				dyg, wg := dy[n0*oh*ow*g.K+grp*kg:], w[grp*kg*rsc:]
				if pointwise {
					gemm(false, false, rows, rsc, kg, 1, dyg, g.K, wg, rsc, 0, dx[n0*g.H*g.W*g.C:], g.C)
					continue
				}
				gemm(false, false, rows, rsc, kg, 1, dyg, g.K, wg, rsc, 0, dcol, rsc)
				col2im(dcol, dx, n0, n1, grp, g)
			}
		}
	})
}

// im2colFilter accumulates dw += dyᵀ·im2col(x), summing each chunk's share
// in its own buffer and the chunks in order.
func im2colFilter[T float](b *Backend, a convArgs) {
	x, dy, dw, g := floats[T](a.x), floats[T](a.dy), floats[T](a.dw), a.g
	oh, ow := g.OutH(), g.OutW()
	cg, kg := g.C/g.Groups, g.K/g.Groups
	rsc := g.R * g.S * cg
	pointwise := isPointwise(g)
	per := samplesPerBlock(oh*ow, rsc)
	partial := make([][]T, b.threads)
	chunks := b.parallel(g.N, 1, func(wk, lo, hi int) {
		// The first block of each chunk overwrites acc (beta 0), so the
		// scratch needs no clearing.
		acc := getScratch[T](b, len(dw))
		partial[wk] = acc
		var col []T
		if !pointwise {
			col = getScratch[T](b, min(per, hi-lo)*oh*ow*rsc)
			defer putScratch(b, col)
		}
		for n0 := lo; n0 < hi; n0 += per {
			n1 := min(hi, n0+per)
			rows := (n1 - n0) * oh * ow
			beta := T(1)
			if n0 == lo {
				beta = 0
			}
			for grp := 0; grp < g.Groups; grp++ {
				a, lda := x[n0*g.H*g.W*g.C:], g.C
				if !pointwise {
					im2col(x, col, n0, n1, grp, g)
					a, lda = col, rsc
				}
				gemm(true, false, kg, rsc, rows, 1, dy[n0*oh*ow*g.K+grp*kg:], g.K, a, lda, beta, acc[grp*kg*rsc:], rsc)
			}
		}
	})
	addChunks(b, dw, partial[:chunks])
}

// im2col writes, for samples [n0, n1) and group grp, one row per output
// pixel holding the input window in (r, s, c) order.
func im2col[T float](x, col []T, n0, n1, grp int, g engine.ConvGeom) {
	if x32, ok := native32(x); ok {
		nativeIm2col(x32, nativeOrNil(col), n0, n1, grp, g)
		return
	}
	oh, ow := g.OutH(), g.OutW()
	cg := g.C / g.Groups
	rsc := g.R * g.S * cg
	sc := g.S * cg
	row := 0
	for n := n0; n < n1; n++ {
		img := x[n*g.H*g.W*g.C:]
		for oy := 0; oy < oh; oy++ {
			for ox := 0; ox < ow; ox++ {
				dst := col[row*rsc : (row+1)*rsc]
				row++
				ix0 := ox*g.Stride - g.Pad
				inside := ix0 >= 0 && ix0+g.S <= g.W && g.Groups == 1
				for r := 0; r < g.R; r++ {
					iy := oy*g.Stride - g.Pad + r
					seg := dst[r*sc : (r+1)*sc]
					if iy < 0 || iy >= g.H {
						clear(seg)
						continue
					}
					line := img[iy*g.W*g.C:]
					if inside {
						copy(seg, line[ix0*g.C:ix0*g.C+sc])
						continue
					}
					for s := 0; s < g.S; s++ {
						ix := ix0 + s
						d := seg[s*cg : (s+1)*cg]
						if ix < 0 || ix >= g.W {
							clear(d)
						} else {
							copy(d, line[ix*g.C+grp*cg:ix*g.C+grp*cg+cg])
						}
					}
				}
			}
		}
	}
}

// col2im adds the rows of dcol back into dx: the adjoint of im2col.
func col2im[T float](dcol, dx []T, n0, n1, grp int, g engine.ConvGeom) {
	if dcol32, ok := native32(dcol); ok {
		nativeCol2im(dcol32, nativeOrNil(dx), n0, n1, grp, g)
		return
	}
	oh, ow := g.OutH(), g.OutW()
	cg := g.C / g.Groups
	rsc := g.R * g.S * cg
	sc := g.S * cg
	row := 0
	for n := n0; n < n1; n++ {
		img := dx[n*g.H*g.W*g.C:]
		for oy := 0; oy < oh; oy++ {
			for ox := 0; ox < ow; ox++ {
				src := dcol[row*rsc : (row+1)*rsc]
				row++
				ix0 := ox*g.Stride - g.Pad
				inside := ix0 >= 0 && ix0+g.S <= g.W && g.Groups == 1
				for r := 0; r < g.R; r++ {
					iy := oy*g.Stride - g.Pad + r
					if iy < 0 || iy >= g.H {
						continue
					}
					line := img[iy*g.W*g.C:]
					if inside {
						// The window row is one contiguous run of S·C values.
						d := line[ix0*g.C : ix0*g.C+sc]
						v := src[r*sc : (r+1)*sc]
						for i := range d {
							d[i] += v[i]
						}
						continue
					}
					for s := 0; s < g.S; s++ {
						ix := ix0 + s
						if ix < 0 || ix >= g.W {
							continue
						}
						d := line[ix*g.C+grp*cg : ix*g.C+grp*cg+cg]
						v := src[(r*g.S+s)*cg : (r*g.S+s+1)*cg]
						for c := range d {
							d[c] += v[c]
						}
					}
				}
			}
		}
	}
}
