package cpu

import (
	"fmt"

	"github.com/qmulgpu/qmulgpu/engine"
)

// Convolutions are computed as im2col + GEMM over blocks of whole samples.
// Each goroutine takes a contiguous range of the batch and walks it in
// blocks sized so that the column buffer stays bounded while the GEMMs stay
// large enough to run at full speed. Pure depthwise convolutions (one input
// and one output channel per group) use direct loops instead.

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

func checkConv(x, w, y *engine.Tensor, g engine.ConvGeom) {
	if err := g.Validate(); err != nil {
		panic("cpu: " + err.Error())
	}
	want := [][]int{{g.N, g.H, g.W, g.C}, {g.K, g.R, g.S, g.C / g.Groups}, {g.N, g.OutH(), g.OutW(), g.K}}
	for i, t := range []*engine.Tensor{x, w, y} {
		if t != nil && engine.Numel(t.Shape) != engine.Numel(want[i]) {
			panic(fmt.Sprintf("cpu: conv %+v: operand %d is %v, want %v", g, i, t, want[i]))
		}
	}
}

func isDepthwise(g engine.ConvGeom) bool {
	return g.Groups > 1 && g.Groups == g.C && g.Groups == g.K
}

func isPointwise(g engine.ConvGeom) bool {
	return g.R == 1 && g.S == 1 && g.Stride == 1 && g.Pad == 0 && g.Groups == 1
}

// convArgs are the operands of Conv2d, Conv2dBackward and
// ConvPerSampleSqNorm (which writes norms).
type convArgs struct {
	x, w, y, dy, dx, dw *engine.Tensor
	g                   engine.ConvGeom
	norms               []float64
}

// Conv2d implements engine.Backend.
func (b *Backend) Conv2d(x, w, y *engine.Tensor, g engine.ConvGeom) {
	checkConv(x, w, y, g)
	dispatch(b, opConvForward, x.DType, convArgs{x: x, w: w, y: y, g: g}, convForward[float32], convForward[float64])
}

// Conv2dBackward implements engine.Backend: the input gradient (when dx is
// given) and the weight gradient are two passes, timed as two op families.
func (b *Backend) Conv2dBackward(x, w, dy, dx, dw *engine.Tensor, g engine.ConvGeom) {
	checkConv(x, w, dy, g)
	checkConv(dx, dw, nil, g)
	a := convArgs{x: x, w: w, dy: dy, dx: dx, dw: dw, g: g}
	if dx != nil {
		dispatch(b, opConvData, x.DType, a, convData[float32], convData[float64])
	}
	dispatch(b, opConvFilter, x.DType, a, convFilter[float32], convFilter[float64])
}

func convForward[T float](b *Backend, a convArgs) {
	x, w, y, g := floats[T](a.x), floats[T](a.w), floats[T](a.y), a.g
	if isDepthwise(g) {
		depthwiseForward(b, x, w, y, g)
		return
	}
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

// convData computes dx = dy ⊛ w (the adjoint of the forward pass): per
// block, dcol = dy·w and col2im scatters dcol into dx.
func convData[T float](b *Backend, a convArgs) {
	w, dy, dx, g := floats[T](a.w), floats[T](a.dy), floats[T](a.dx), a.g
	if isDepthwise(g) {
		depthwiseData(b, w, dy, dx, g)
		return
	}
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

// convFilter accumulates dw += dyᵀ·im2col(x), summing each chunk's share
// in its own buffer and the chunks in order.
func convFilter[T float](b *Backend, a convArgs) {
	x, dy, dw, g := floats[T](a.x), floats[T](a.dy), floats[T](a.dw), a.g
	if isDepthwise(g) {
		depthwiseFilter(b, x, dy, dw, g)
		return
	}
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

// addChunks adds the chunks' partial sums into dst in chunk order and
// returns their buffers.
func addChunks[T float](b *Backend, dst []T, partial [][]T) {
	for _, p := range partial {
		for i, v := range p {
			dst[i] += v
		}
		putScratch(b, p)
	}
}

// im2col writes, for samples [n0, n1) and group grp, one row per output
// pixel holding the input window in (r, s, c) order.
func im2col[T float](x, col []T, n0, n1, grp int, g engine.ConvGeom) {
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

// depthwiseWeights transposes [C, R, S] weights to [R·S, C] so that the
// inner loops run over contiguous channels.
func depthwiseWeights[T float](w []T, g engine.ConvGeom) []T {
	rs := g.R * g.S
	wt := make([]T, rs*g.C)
	for c := 0; c < g.C; c++ {
		for k := 0; k < rs; k++ {
			wt[k*g.C+c] = w[c*rs+k]
		}
	}
	return wt
}

func depthwiseForward[T float](b *Backend, x, w, y []T, g engine.ConvGeom) {
	oh, ow, C := g.OutH(), g.OutW(), g.C
	wt := depthwiseWeights(w, g)
	b.parallel(g.N, 1, func(_, lo, hi int) {
		for n := lo; n < hi; n++ {
			img := x[n*g.H*g.W*C:]
			for oy := 0; oy < oh; oy++ {
				for ox := 0; ox < ow; ox++ {
					out := y[((n*oh+oy)*ow+ox)*C:][:C]
					clear(out)
					for r := 0; r < g.R; r++ {
						iy := oy*g.Stride - g.Pad + r
						if iy < 0 || iy >= g.H {
							continue
						}
						for s := 0; s < g.S; s++ {
							ix := ox*g.Stride - g.Pad + s
							if ix < 0 || ix >= g.W {
								continue
							}
							in := img[(iy*g.W+ix)*C:][:C]
							wr := wt[(r*g.S+s)*C:][:C]
							for c := range out {
								out[c] += in[c] * wr[c]
							}
						}
					}
				}
			}
		}
	})
}

// depthwiseData computes dx for a depthwise convolution.
func depthwiseData[T float](b *Backend, w, dy, dx []T, g engine.ConvGeom) {
	oh, ow, C := g.OutH(), g.OutW(), g.C
	wt := depthwiseWeights(w, g)
	b.parallel(g.N, 1, func(_, lo, hi int) {
		clear(dx[lo*g.H*g.W*C : hi*g.H*g.W*C])
		for n := lo; n < hi; n++ {
			for oy := 0; oy < oh; oy++ {
				for ox := 0; ox < ow; ox++ {
					d := dy[((n*oh+oy)*ow+ox)*C:][:C]
					for r := 0; r < g.R; r++ {
						iy := oy*g.Stride - g.Pad + r
						if iy < 0 || iy >= g.H {
							continue
						}
						for s := 0; s < g.S; s++ {
							ix := ox*g.Stride - g.Pad + s
							if ix < 0 || ix >= g.W {
								continue
							}
							o := dx[((n*g.H+iy)*g.W+ix)*C:][:C]
							wr := wt[(r*g.S+s)*C:][:C]
							for c := range d {
								o[c] += d[c] * wr[c]
							}
						}
					}
				}
			}
		}
	})
}

// depthwiseFilter accumulates dw for a depthwise convolution.
func depthwiseFilter[T float](b *Backend, x, dy, dw []T, g engine.ConvGeom) {
	oh, ow, C := g.OutH(), g.OutW(), g.C
	rs := g.R * g.S
	partial := make([][]T, b.threads)
	chunks := b.parallel(g.N, 1, func(wk, lo, hi int) {
		acc := make([]T, rs*C)
		partial[wk] = acc
		for n := lo; n < hi; n++ {
			img := x[n*g.H*g.W*C:]
			for oy := 0; oy < oh; oy++ {
				for ox := 0; ox < ow; ox++ {
					d := dy[((n*oh+oy)*ow+ox)*C:][:C]
					for r := 0; r < g.R; r++ {
						iy := oy*g.Stride - g.Pad + r
						if iy < 0 || iy >= g.H {
							continue
						}
						for s := 0; s < g.S; s++ {
							ix := ox*g.Stride - g.Pad + s
							if ix < 0 || ix >= g.W {
								continue
							}
							in := img[(iy*g.W+ix)*C:][:C]
							a := acc[(r*g.S+s)*C:][:C]
							for c := range d {
								a[c] += d[c] * in[c]
							}
						}
					}
				}
			}
		}
	})
	for _, p := range partial[:chunks] {
		for k := 0; k < rs; k++ {
			for c := 0; c < C; c++ {
				dw[c*rs+k] += p[k*C+c]
			}
		}
	}
}
