package cpu

import "github.com/qmulgpu/qmulgpu/engine"

// Pool2d implements engine.Backend.
func (b *Backend) Pool2d(kind engine.PoolKind, x, y, argmax *engine.Tensor, g engine.PoolGeom) {
	must(engine.CheckPool("pool", kind, x, y, argmax, g))
	dispatch(b, opPool, x.DType, poolArgs{kind: kind, x: x, y: y, argmax: argmax, g: g}, pool[float32], pool[float64])
}

// Pool2dBackward implements engine.Backend.
func (b *Backend) Pool2dBackward(kind engine.PoolKind, dy, argmax, dx *engine.Tensor, g engine.PoolGeom) {
	must(engine.CheckPool("pool backward", kind, dx, dy, argmax, g))
	dispatch(b, opPool, dy.DType, poolArgs{kind: kind, dy: dy, argmax: argmax, dx: dx, g: g}, poolBackward[float32], poolBackward[float64])
}

// poolArgs are the operands of the pooling ops (g and kind unused by the
// global ones).
type poolArgs struct {
	kind                 engine.PoolKind
	x, y, argmax, dy, dx *engine.Tensor
	g                    engine.PoolGeom
}

// maxIndex is argmax's elements for max pooling, nil for average pooling.
func (a poolArgs) maxIndex() []int32 {
	if a.kind == engine.MaxPool {
		return I32(a.argmax)
	}
	return nil
}

func pool[T float](b *Backend, a poolArgs) {
	kind, x, y, argmax, g := a.kind, floats[T](a.x), floats[T](a.y), a.maxIndex(), a.g
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

func poolBackward[T float](b *Backend, a poolArgs) {
	kind, dy, argmax, dx, g := a.kind, floats[T](a.dy), a.maxIndex(), floats[T](a.dx), a.g
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
	dispatch(b, opPool, x.DType, poolArgs{x: x, y: y}, globalAvgPool[float32], globalAvgPool[float64])
}

// GlobalAvgPoolBackward implements engine.Backend.
func (b *Backend) GlobalAvgPoolBackward(dy, dx *engine.Tensor) {
	must(engine.CheckGlobalAvgPool("global average pool backward", dx, dy))
	dispatch(b, opPool, dy.DType, poolArgs{dy: dy, dx: dx}, globalAvgPoolBackward[float32], globalAvgPoolBackward[float64])
}

func globalAvgPool[T float](b *Backend, a poolArgs) {
	x, y, n, c := floats[T](a.x), floats[T](a.y), a.x.Rows(), a.y.Cols()
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

func globalAvgPoolBackward[T float](b *Backend, a poolArgs) {
	dy, dx, n, c := floats[T](a.dy), floats[T](a.dx), a.dx.Rows(), a.dy.Cols()
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
