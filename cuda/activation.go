//go:build cuda

package cuda

import "github.com/qmulgpu/qmulgpu/engine"

// Activate implements engine.Backend (engine.CheckActivate refuses unknown
// activations).
func (b *Backend) Activate(act engine.Activation, x, alpha, y *engine.Tensor) {
	must(engine.CheckActivate(act, x, alpha, y))
	checkFloat("activate", x, y, alpha)
	n := x.Numel()
	if b.err != nil {
		return
	}
	switch act {
	case engine.ReLU:
		b.launchN("Activate", n, qmReluF32(b.f32(x), b.f32(y), int64(n)))
	case engine.ReLU6:
		b.launchN("Activate", n, qmRelu6F32(b.f32(x), b.f32(y), int64(n)))
	case engine.PReLU:
		na := alpha.Numel()
		rows := n / na
		if rows == 0 {
			return
		}
		lanes := b.lanes(rows, na)
		b.launchLanes("Activate", na, lanes, qmPreluF32(b.f32(x), b.f32(alpha), b.f32(y), int64(rows), narrow(na), int32(lanes)))
	}
}

// ActivateBackward implements engine.Backend. For PReLU, dalpha's column
// reduction runs in double precision (qm_prelu_backward_f32 writes dx and
// per-lane sums, qm_prelu_dalpha_final adds them).
func (b *Backend) ActivateBackward(act engine.Activation, x, alpha, dy, dx, dalpha *engine.Tensor) {
	must(engine.CheckActivateBackward(act, x, alpha, dy, dx, dalpha))
	checkFloat("activate backward", x, dy, dx, alpha, dalpha)
	n := x.Numel()
	if b.err != nil {
		return
	}
	switch act {
	case engine.ReLU:
		b.launchN("ActivateBackward", n, qmReluBackwardF32(b.f32(x), b.f32(dy), b.f32(dx), int64(n)))
	case engine.ReLU6:
		b.launchN("ActivateBackward", n, qmRelu6BackwardF32(b.f32(x), b.f32(dy), b.f32(dx), int64(n)))
	case engine.PReLU:
		b.preluBackward(x, alpha, dy, dx, dalpha, n/alpha.Numel(), alpha.Numel())
	}
}

func (b *Backend) preluBackward(x, alpha, dy, dx, dalpha *engine.Tensor, rows, na int) {
	if rows == 0 {
		return
	}
	lanes := b.lanes(rows, na)
	var partial scratch
	if dalpha != nil {
		var ok bool
		if partial, ok = b.scratch("ActivateBackward", 8*na*lanes); !ok {
			return
		}
		defer b.release(partial)
	}
	sums := dptr[float64](partial.ptr)
	b.launchLanes("ActivateBackward", na, lanes, qmPreluBackwardF32(b.f32(x), b.f32(alpha), b.f32(dy), b.f32(dx),
		int64(rows), narrow(na), int32(lanes), sums))
	if dalpha != nil {
		b.launchBlocks("ActivateBackward", na, qmPreluDalphaFinal(sums, narrow(na), int32(lanes), b.f32(dalpha)))
	}
}
