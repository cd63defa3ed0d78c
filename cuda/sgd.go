//go:build cuda

package cuda

import "github.com/qmulgpu/qmulgpu/engine"

// SGD implements engine.Backend with one fused kernel per parameter.
func (b *Backend) SGD(a engine.SGDArgs) {
	must(engine.CheckSGD(a))
	checkFloat("sgd", a.Param, a.Grad, a.Buf, a.Mask)
	n := a.Param.Numel()
	if b.err != nil {
		return
	}
	nesterov := int32(0)
	if a.Nesterov {
		nesterov = 1
	}
	b.launchN("SGD", n, qmSgdF32(b.f32(a.Param), b.f32(a.Grad), b.f32(a.Buf), b.f32(a.Mask), int64(n),
		float32(a.LR), float32(a.Momentum), float32(a.WeightDecay), float32(a.GradScale), nesterov))
}
