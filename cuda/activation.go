//go:build cuda

package cuda

import (
	"fmt"

	"github.com/qmulgpu/qmulgpu/engine"
)

// slopes returns PReLU's slope count, which must divide x's size.
func slopes(op string, x, alpha *engine.Tensor) int {
	if alpha == nil {
		panic(fmt.Sprintf("cuda: %s: PReLU without slopes", op))
	}
	checkFloat(op, alpha)
	na := alpha.Numel()
	if na == 0 || x.Numel()%na != 0 {
		panic(fmt.Sprintf("cuda: %s: %d PReLU slopes for %v", op, na, x))
	}
	return na
}

// Activate implements engine.Backend.
func (b *Backend) Activate(act engine.Activation, x, alpha, y *engine.Tensor) {
	checkFloat("activate", x, y)
	n := x.Numel()
	checkNumel("activate", y, n, "y")
	na := 0
	if act == engine.PReLU {
		na = slopes("activate", x, alpha)
	}
	if b.err != nil {
		return
	}
	switch act {
	case engine.ReLU:
		b.launchN("Activate", n, qmReluF32(b.f32(x), b.f32(y), int64(n)))
	case engine.ReLU6:
		b.launchN("Activate", n, qmRelu6F32(b.f32(x), b.f32(y), int64(n)))
	case engine.PReLU:
		rows := n / na
		if rows == 0 {
			return
		}
		lanes := b.lanes(rows, na)
		b.launchLanes("Activate", na, lanes, qmPreluF32(b.f32(x), b.f32(alpha), b.f32(y), int64(rows), narrow(na), int32(lanes)))
	default:
		panic(fmt.Sprintf("cuda: unknown activation %d", act))
	}
}

// ActivateBackward implements engine.Backend. For PReLU, dalpha's column
// reduction runs in double precision (qm_prelu_backward_f32 writes dx and
// per-lane sums, qm_prelu_dalpha_final adds them).
func (b *Backend) ActivateBackward(act engine.Activation, x, alpha, dy, dx, dalpha *engine.Tensor) {
	checkFloat("activate backward", x, dy, dx)
	n := x.Numel()
	checkNumel("activate backward", dy, n, "dy")
	checkNumel("activate backward", dx, n, "dx")
	na := 0
	if act == engine.PReLU {
		na = slopes("activate backward", x, alpha)
		if dalpha != nil {
			checkFloat("activate backward", dalpha)
			checkNumel("activate backward", dalpha, na, "dalpha")
		}
	}
	if b.err != nil {
		return
	}
	switch act {
	case engine.ReLU:
		b.launchN("ActivateBackward", n, qmReluBackwardF32(b.f32(x), b.f32(dy), b.f32(dx), int64(n)))
	case engine.ReLU6:
		b.launchN("ActivateBackward", n, qmRelu6BackwardF32(b.f32(x), b.f32(dy), b.f32(dx), int64(n)))
	case engine.PReLU:
		b.preluBackward(x, alpha, dy, dx, dalpha, n/na, na)
	default:
		panic(fmt.Sprintf("cuda: unknown activation %d", act))
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
