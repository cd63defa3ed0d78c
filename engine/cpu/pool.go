package cpu

import "github.com/qmulgpu/qmulgpu/engine"

// Pool2d implements engine.Backend.
func (b *Backend) Pool2d(kind engine.PoolKind, x, y, argmax *engine.Tensor, g engine.PoolGeom) {
	must(engine.CheckPool("pool", kind, x, y, argmax, g))
	var am []int32
	if kind == engine.MaxPool {
		am = I32(argmax)
	}
	if x.DType == engine.Float32 {
		pool(b, kind, F32(x), F32(y), am, g)
	} else {
		pool(b, kind, F64(x), F64(y), am, g)
	}
}

// Pool2dBackward implements engine.Backend.
func (b *Backend) Pool2dBackward(kind engine.PoolKind, dy, argmax, dx *engine.Tensor, g engine.PoolGeom) {
	must(engine.CheckPool("pool backward", kind, dx, dy, argmax, g))
	var am []int32
	if kind == engine.MaxPool {
		am = I32(argmax)
	}
	if dy.DType == engine.Float32 {
		poolBackward(b, kind, F32(dy), am, F32(dx), g)
	} else {
		poolBackward(b, kind, F64(dy), am, F64(dx), g)
	}
}

func pool[T float](b *Backend, kind engine.PoolKind, x, y []T, argmax []int32, g engine.PoolGeom) {
	oh, ow, C := g.OutH(), g.OutW(), g.C
	inv := 1 / T(g.Kernel*g.Kernel)
	b.parallel(g.N, 1, func(_, lo, hi int) {
		for n := lo; n < hi; n++ {
			img := x[n*g.H*g.W*C:]
			for oy := 0; oy < oh; oy++ {
				for ox := 0; ox < ow; ox++ {
					o := ((n*oh+oy)*ow + ox) * C
					out := y[o : o+C]
					first := true
					if kind == engine.AvgPool {
						clear(out)
					}
					for r := 0; r < g.Kernel; r++ {
						iy := oy*g.Stride - g.Pad + r
						if iy < 0 || iy >= g.H {
							continue
						}
						for s := 0; s < g.Kernel; s++ {
							ix := ox*g.Stride - g.Pad + s
							if ix < 0 || ix >= g.W {
								continue
							}
							pos := iy*g.W + ix
							in := img[pos*C : pos*C+C]
							if kind == engine.AvgPool {
								for c, v := range in {
									out[c] += v
								}
								continue
							}
							am := argmax[o : o+C]
							for c, v := range in {
								if first || v > out[c] || v != v {
									out[c] = v
									am[c] = int32(pos)
								}
							}
							first = false
						}
					}
					if kind == engine.AvgPool {
						for c := range out {
							out[c] *= inv
						}
					}
				}
			}
		}
	})
}

func poolBackward[T float](b *Backend, kind engine.PoolKind, dy []T, argmax []int32, dx []T, g engine.PoolGeom) {
	oh, ow, C := g.OutH(), g.OutW(), g.C
	inv := 1 / T(g.Kernel*g.Kernel)
	b.parallel(g.N, 1, func(_, lo, hi int) {
		clear(dx[lo*g.H*g.W*C : hi*g.H*g.W*C])
		for n := lo; n < hi; n++ {
			img := dx[n*g.H*g.W*C:]
			for oy := 0; oy < oh; oy++ {
				for ox := 0; ox < ow; ox++ {
					o := ((n*oh+oy)*ow + ox) * C
					d := dy[o : o+C]
					if kind == engine.MaxPool {
						for c, v := range d {
							img[int(argmax[o+c])*C+c] += v
						}
						continue
					}
					for r := 0; r < g.Kernel; r++ {
						iy := oy*g.Stride - g.Pad + r
						if iy < 0 || iy >= g.H {
							continue
						}
						for s := 0; s < g.Kernel; s++ {
							ix := ox*g.Stride - g.Pad + s
							if ix < 0 || ix >= g.W {
								continue
							}
							in := img[(iy*g.W+ix)*C:][:C]
							for c, v := range d {
								in[c] += v * inv
							}
						}
					}
				}
			}
		}
	})
}

// GlobalAvgPool implements engine.Backend.
func (b *Backend) GlobalAvgPool(x, y *engine.Tensor) {
	must(engine.CheckGlobalAvgPool("global average pool", x, y))
	if x.DType == engine.Float32 {
		globalAvgPool(b, F32(x), F32(y), x.Rows(), y.Cols())
	} else {
		globalAvgPool(b, F64(x), F64(y), x.Rows(), y.Cols())
	}
}

// GlobalAvgPoolBackward implements engine.Backend.
func (b *Backend) GlobalAvgPoolBackward(dy, dx *engine.Tensor) {
	must(engine.CheckGlobalAvgPool("global average pool backward", dx, dy))
	if dy.DType == engine.Float32 {
		globalAvgPoolBackward(b, F32(dy), F32(dx), dx.Rows(), dy.Cols())
	} else {
		globalAvgPoolBackward(b, F64(dy), F64(dx), dx.Rows(), dy.Cols())
	}
}

func globalAvgPool[T float](b *Backend, x, y []T, n, c int) {
	hw := len(x) / (n * c)
	b.parallel(n, 1, func(_, lo, hi int) {
		acc := make([]float64, c)
		for i := lo; i < hi; i++ {
			clear(acc)
			img := x[i*hw*c : (i+1)*hw*c]
			for p := 0; p < hw; p++ {
				for j, v := range img[p*c : (p+1)*c] {
					acc[j] += float64(v)
				}
			}
			for j := range acc {
				y[i*c+j] = T(acc[j] / float64(hw))
			}
		}
	})
}

func globalAvgPoolBackward[T float](b *Backend, dy, dx []T, n, c int) {
	hw := len(dx) / (n * c)
	inv := 1 / T(hw)
	b.parallel(n, 1, func(_, lo, hi int) {
		for i := lo; i < hi; i++ {
			d := dy[i*c : (i+1)*c]
			for p := 0; p < hw; p++ {
				out := dx[(i*hw+p)*c : (i*hw+p+1)*c]
				for j, v := range d {
					out[j] = v * inv
				}
			}
		}
	})
}
