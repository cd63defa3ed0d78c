package cpu

import (
	"fmt"

	"github.com/qmulgpu/qmulgpu/engine"
)

// Activate implements engine.Backend.
func (b *Backend) Activate(act engine.Activation, x, alpha, y *engine.Tensor) {
	must(engine.CheckActivate(act, x, alpha, y))
	if x.DType == engine.Float32 {
		activate(b, act, F32(x), floatsOrNil[float32](alpha), F32(y))
	} else {
		activate(b, act, F64(x), floatsOrNil[float64](alpha), F64(y))
	}
}

// ActivateBackward implements engine.Backend.
func (b *Backend) ActivateBackward(act engine.Activation, x, alpha, dy, dx, dalpha *engine.Tensor) {
	must(engine.CheckActivateBackward(act, x, alpha, dy, dx, dalpha))
	if x.DType == engine.Float32 {
		activateBackward(b, act, F32(x), floatsOrNil[float32](alpha), F32(dy), F32(dx), floatsOrNil[float32](dalpha))
	} else {
		activateBackward(b, act, F64(x), floatsOrNil[float64](alpha), F64(dy), F64(dx), floatsOrNil[float64](dalpha))
	}
}

func activate[T float](b *Backend, act engine.Activation, x, alpha, y []T) {
	na := len(alpha)
	b.parallel(len(x), minElems, func(_, lo, hi int) {
		switch act {
		case engine.ReLU:
			for i := lo; i < hi; i++ {
				y[i] = max(x[i], 0)
			}
		case engine.ReLU6:
			for i := lo; i < hi; i++ {
				y[i] = min(max(x[i], 0), 6)
			}
		case engine.PReLU:
			for i := lo; i < hi; i++ {
				if v := x[i]; v > 0 {
					y[i] = v
				} else {
					y[i] = alpha[i%na] * v
				}
			}
		default:
			panic(fmt.Sprintf("cpu: unknown activation %d", act))
		}
	})
}

func activateBackward[T float](b *Backend, act engine.Activation, x, alpha, dy, dx, dalpha []T) {
	if act == engine.PReLU {
		preluBackward(b, x, alpha, dy, dx, dalpha)
		return
	}
	b.parallel(len(x), minElems, func(_, lo, hi int) {
		switch act {
		// Written so that the compiler emits conditional moves: the
		// signs of activations are unpredictable branches.
		case engine.ReLU:
			xs, ds, os := x[lo:hi], dy[lo:hi], dx[lo:hi]
			for i, v := range xs {
				d := ds[i]
				if v <= 0 {
					d = 0
				}
				os[i] = d
			}
		case engine.ReLU6:
			xs, ds, os := x[lo:hi], dy[lo:hi], dx[lo:hi]
			for i, v := range xs {
				d := ds[i]
				if v <= 0 || v >= 6 {
					d = 0
				}
				os[i] = d
			}
		default:
			panic(fmt.Sprintf("cpu: unknown activation %d", act))
		}
	})
}

func preluBackward[T float](b *Backend, x, alpha, dy, dx, dalpha []T) {
	na := len(alpha)
	partial := make([][]float64, b.threads)
	chunks := b.parallel(len(x)/na, max(1, minElems/na), func(w, lo, hi int) {
		acc := make([]float64, na)
		for i := lo * na; i < hi*na; i++ {
			j := i % na
			if v := x[i]; v > 0 {
				dx[i] = dy[i]
			} else {
				acc[j] += float64(dy[i]) * float64(v)
				dx[i] = alpha[j] * dy[i]
			}
		}
		partial[w] = acc
	})
	if dalpha == nil {
		return
	}
	for _, p := range partial[:chunks] {
		for j, v := range p {
			dalpha[j] += T(v)
		}
	}
}
