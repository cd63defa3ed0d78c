package cpu

import "github.com/qmulgpu/qmulgpu/engine"

// SGD implements engine.Backend.
func (b *Backend) SGD(a engine.SGDArgs) {
	must(engine.CheckSGD(a))
	dispatch(b, opSGD, a.Param.DType, a, sgd[float32], sgd[float64])
}

func sgd[T float](b *Backend, a engine.SGDArgs) {
	p, g := floats[T](a.Param), floats[T](a.Grad)
	buf, mask := floatsOrNil[T](a.Buf), floatsOrNil[T](a.Mask)
	lr, mom, wd, gs := T(a.LR), T(a.Momentum), T(a.WeightDecay), T(a.GradScale)
	b.parallel(len(p), minElems, func(_, lo, hi int) {
		for i := lo; i < hi; i++ {
			d := gs*g[i] + wd*p[i]
			if mask != nil {
				d *= mask[i]
			}
			if buf != nil && mom != 0 {
				buf[i] = mom*buf[i] + d
				if a.Nesterov {
					d += mom * buf[i]
				} else {
					d = buf[i]
				}
			}
			p[i] -= lr * d
		}
	})
}
