package cpu

import "github.com/qmulgpu/qmulgpu/engine"

// Depthwise convolutions (one input and one output channel per group) are
// direct loops over the channels, which NHWC keeps contiguous.

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
