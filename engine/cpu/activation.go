package cpu

import (
	"fmt"

	"github.com/qmulgpu/qmulgpu/engine"
)

// activationArgs are the operands of Activate and ActivateBackward.
type activationArgs struct {
	act                         engine.Activation
	x, alpha, y, dy, dx, dalpha *engine.Tensor
}

// Activate implements engine.Backend.
func (b *Backend) Activate(act engine.Activation, x, alpha, y *engine.Tensor) {
	must(engine.CheckActivate(act, x, alpha, y))
	dispatch(b, opActivation, x.DType, activationArgs{act: act, x: x, alpha: alpha, y: y}, activate[float32], activate[float64])
}

// ActivateBackward implements engine.Backend.
func (b *Backend) ActivateBackward(act engine.Activation, x, alpha, dy, dx, dalpha *engine.Tensor) {
	must(engine.CheckActivateBackward(act, x, alpha, dy, dx, dalpha))
	dispatch(b, opActivation, x.DType, activationArgs{act: act, x: x, alpha: alpha, dy: dy, dx: dx, dalpha: dalpha},
		activateBackward[float32], activateBackward[float64])
}

func activate[T float](b *Backend, a activationArgs) {
	act, x, alpha, y := a.act, floats[T](a.x), floatsOrNil[T](a.alpha), floats[T](a.y)
	na := len(alpha)
	b.parallel(len(x), minElems, func(_, lo, hi int) {
		if x32, ok := native32(x[lo:hi]); ok && act != engine.PReLU {
			nativeActivate(x32, nativeOrNil(y[lo:hi]), int(act))
			return
		}
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

func activateBackward[T float](b *Backend, a activationArgs) {
	act, x, alpha, dy, dx := a.act, floats[T](a.x), floatsOrNil[T](a.alpha), floats[T](a.dy), floats[T](a.dx)
	dalpha := floatsOrNil[T](a.dalpha)
	if act == engine.PReLU {
		preluBackward(b, x, alpha, dy, dx, dalpha)
		return
	}
	b.parallel(len(x), minElems, func(_, lo, hi int) {
		if x32, ok := native32(x[lo:hi]); ok {
			nativeActivateGrad(x32, nativeOrNil(dy[lo:hi]), nativeOrNil(dx[lo:hi]), int(act))
			return
		}
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
