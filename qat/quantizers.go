package qat

import (
	"math"

	"github.com/qmulgpu/qmulgpu/engine"
	"github.com/qmulgpu/qmulgpu/engine/nn"
)

// fakeQuant is the part every uniform-grid quantizer shares: it keeps the
// input and output of the last Forward.
type fakeQuant struct {
	x, y *engine.Tensor
}

func (f *fakeQuant) forward(c *nn.Ctx, x *engine.Tensor, a engine.FakeQuantArgs) *engine.Tensor {
	f.release(c)
	f.x = x
	f.y = c.B.Alloc(x.DType, x.Shape...)
	a.X, a.Y = x, f.y
	c.B.FakeQuant(a)
	return f.y
}

func (f *fakeQuant) backward(c *nn.Ctx, dq, dx *engine.Tensor, accumulate bool, a engine.FakeQuantArgs) {
	a.X, a.DY, a.DX, a.Accumulate = f.x, dq, dx, accumulate
	c.B.FakeQuantBackward(a)
}

func (f *fakeQuant) release(c *nn.Ctx) {
	if f.y != nil {
		c.B.Free(f.y)
	}
	f.x, f.y = nil, nil
}

// Release implements nn.Quantizer.
func (f *fakeQuant) Release(c *nn.Ctx) { f.release(c) }

// LSQ is Learned Step Size Quantization (Esser et al. 2020): a trained step
// s per tensor (or per output channel), q(x) = s·round(clip(x/s, Q_N, Q_P)),
// the step's gradient scaled by 1/sqrt(numel·Q_P), and s initialised to
// 2·mean|x|/sqrt(Q_P) on first use.
type LSQ struct {
	fakeQuant
	Bits   int
	Signed bool
	Step   *nn.Param
	Init   *nn.State
	init   int64
	lo, hi int
}

func newLSQ(b engine.Backend, dt engine.DType, bits int, signed bool, channels int) *LSQ {
	q := &LSQ{Bits: bits, Signed: signed}
	q.lo, q.hi = grid(bits, signed)
	q.Step = &nn.Param{Local: "s", Value: b.Zeros(dt, channels), Grad: b.Zeros(dt, channels)}
	q.Init = &nn.State{Local: "initialized", Count: &q.init}
	return q
}

// Forward implements nn.Quantizer.
func (q *LSQ) Forward(c *nn.Ctx, x *engine.Tensor) *engine.Tensor {
	if q.init == 0 {
		initStep(c.B, x, q.Step.Value, float64(q.hi))
		q.init = 1
	}
	return q.forward(c, x, q.args())
}

func (q *LSQ) args() engine.FakeQuantArgs {
	return engine.FakeQuantArgs{Scale: q.Step.Value, ScaleMul: 1, Lo: q.lo, Hi: q.hi}
}

// Backward implements nn.Quantizer.
func (q *LSQ) Backward(c *nn.Ctx, dq, dx *engine.Tensor, accumulate bool) {
	a := q.args()
	per := q.x.Numel() / q.Step.Value.Numel()
	a.DScale, a.GradScale = q.Step.Grad, 1/math.Sqrt(float64(per)*float64(q.hi))
	a.CInside, a.CAbove, a.CBelow = 1, float64(q.hi), float64(q.lo)
	q.backward(c, dq, dx, accumulate, a)
}

// Params implements nn.Quantizer.
func (q *LSQ) Params() []*nn.Param { return []*nn.Param{q.Step} }

// States implements nn.Quantizer.
func (q *LSQ) States() []*nn.State { return []*nn.State{q.Init} }

// initStep sets each channel's step to 2·mean|x|/sqrt(qp) (host-side; it
// runs once per quantizer).
func initStep(b engine.Backend, x, step *engine.Tensor, qp float64) {
	v := make([]float32, x.Numel())
	if x.DType == engine.Float64 {
		w := make([]float64, x.Numel())
		b.Download(x, w)
		for i, f := range w {
			v[i] = float32(f)
		}
	} else {
		b.Download(x, v)
	}
	ch := step.Numel()
	per := len(v) / ch
	s := make([]float64, ch)
	for c := range s {
		var sum float64
		for _, f := range v[c*per : (c+1)*per] {
			sum += math.Abs(float64(f))
		}
		s[c] = math.Max(2*sum/float64(per)/math.Sqrt(qp), 1e-6)
	}
	uploadFloats(b, step, s)
}

func uploadFloats(b engine.Backend, t *engine.Tensor, v []float64) {
	if t.DType == engine.Float64 {
		b.Upload(t, v)
		return
	}
	f := make([]float32, len(v))
	for i, x := range v {
		f[i] = float32(x)
	}
	b.Upload(t, f)
}

// PACT clips activations at a learned α (Choi et al. 2018) and quantizes
// [0, α] uniformly; signed inputs use [−α, α]. The clip gradient reaches α
// (straight through the rounding). α starts at 10.
type PACT struct {
	fakeQuant
	Bits   int
	Signed bool
	Alpha  *nn.Param
	lo, hi int
}

func newPACT(b engine.Backend, dt engine.DType, bits int, signed bool) *PACT {
	q := &PACT{Bits: bits, Signed: signed, Alpha: &nn.Param{Local: "alpha", Value: b.Zeros(dt, 1), Grad: b.Zeros(dt, 1)}}
	q.lo, q.hi = 0, 1<<bits-1
	if signed {
		q.hi = 1<<(bits-1) - 1
		q.lo = -q.hi
	}
	b.Fill(q.Alpha.Value, 10)
	return q
}

func (q *PACT) args() engine.FakeQuantArgs {
	return engine.FakeQuantArgs{Scale: q.Alpha.Value, ScaleMul: 1 / float64(q.hi), Lo: q.lo, Hi: q.hi}
}

// Forward implements nn.Quantizer.
func (q *PACT) Forward(c *nn.Ctx, x *engine.Tensor) *engine.Tensor { return q.forward(c, x, q.args()) }

// Backward implements nn.Quantizer.
func (q *PACT) Backward(c *nn.Ctx, dq, dx *engine.Tensor, accumulate bool) {
	a := q.args()
	a.DScale, a.GradScale, a.CAbove = q.Alpha.Grad, 1, 1
	if q.Signed {
		a.CBelow = -1
	}
	q.backward(c, dq, dx, accumulate, a)
}

// Params implements nn.Quantizer.
func (q *PACT) Params() []*nn.Param { return []*nn.Param{q.Alpha} }

// States implements nn.Quantizer.
func (q *PACT) States() []*nn.State { return nil }

// ClipQuant is DoReFa-Net's activation quantizer: clip to [0, 1] ([−1, 1]
// for signed inputs) and round to a uniform grid, gradient straight through
// inside the range.
type ClipQuant struct {
	fakeQuant
	Bits   int
	Signed bool
	scale  *engine.Tensor
	lo, hi int
}

func newClipQuant(b engine.Backend, dt engine.DType, bits int, signed bool) *ClipQuant {
	q := &ClipQuant{Bits: bits, Signed: signed, scale: b.Alloc(dt, 1)}
	q.lo, q.hi = 0, 1<<bits-1
	if signed {
		q.hi = 1<<(bits-1) - 1
		q.lo = -q.hi
	}
	b.Fill(q.scale, 1/float64(q.hi))
	return q
}

func (q *ClipQuant) args() engine.FakeQuantArgs {
	return engine.FakeQuantArgs{Scale: q.scale, ScaleMul: 1, Lo: q.lo, Hi: q.hi}
}

// Forward implements nn.Quantizer.
func (q *ClipQuant) Forward(c *nn.Ctx, x *engine.Tensor) *engine.Tensor {
	return q.forward(c, x, q.args())
}

// Backward implements nn.Quantizer.
func (q *ClipQuant) Backward(c *nn.Ctx, dq, dx *engine.Tensor, accumulate bool) {
	q.backward(c, dq, dx, accumulate, q.args())
}

// Params implements nn.Quantizer.
func (q *ClipQuant) Params() []*nn.Param { return nil }

// States implements nn.Quantizer.
func (q *ClipQuant) States() []*nn.State { return nil }

// DoReFaWeights is DoReFa-Net's weight quantizer: tanh-normalised weights
// mapped to [0, 1], rounded to 2^b levels and stretched to [−1, 1].
type DoReFaWeights struct {
	Bits int
	w, y *engine.Tensor
}

func newDoReFaWeights(bits int) *DoReFaWeights { return &DoReFaWeights{Bits: bits} }

// Forward implements nn.Quantizer.
func (q *DoReFaWeights) Forward(c *nn.Ctx, w *engine.Tensor) *engine.Tensor {
	q.Release(c)
	q.w, q.y = w, c.B.Alloc(w.DType, w.Shape...)
	c.B.DoReFaWeights(engine.DoReFaArgs{W: w, Y: q.y, Bits: q.Bits})
	return q.y
}

// Backward implements nn.Quantizer.
func (q *DoReFaWeights) Backward(c *nn.Ctx, dq, dw *engine.Tensor, accumulate bool) {
	if !accumulate {
		c.B.Fill(dw, 0)
	}
	c.B.DoReFaWeightsBackward(engine.DoReFaArgs{W: q.w, DY: dq, DW: dw, Bits: q.Bits})
}

// Release implements nn.Quantizer.
func (q *DoReFaWeights) Release(c *nn.Ctx) {
	if q.y != nil {
		c.B.Free(q.y)
	}
	q.w, q.y = nil, nil
}

// Params implements nn.Quantizer.
func (q *DoReFaWeights) Params() []*nn.Param { return nil }

// States implements nn.Quantizer.
func (q *DoReFaWeights) States() []*nn.State { return nil }

// MinMax is the observer-based quantizer of PyTorch's and TensorRT's
// defaults: weights symmetric per output channel from their current
// range (narrow grid ±(2^(b−1)−1)); activations affine per tensor from a
// moving average (constant 0.01) of the batch range; gradient straight
// through inside the range and zero outside (the clipped STE).
type MinMax struct {
	fakeQuant
	Bits             int
	Weight           bool
	Min, Max         *nn.State
	Observed         *nn.State
	observed         int64
	scale, zeroPoint *engine.Tensor
	lo, hi           int
}

func newMinMax(b engine.Backend, dt engine.DType, bits int, weight bool, channels int) *MinMax {
	q := &MinMax{Bits: bits, Weight: weight,
		Min:   &nn.State{Local: "min_val", Value: b.Zeros(dt, channels)},
		Max:   &nn.State{Local: "max_val", Value: b.Zeros(dt, channels)},
		scale: b.Zeros(dt, channels), zeroPoint: b.Zeros(dt, channels)}
	q.Observed = &nn.State{Local: "observed", Count: &q.observed}
	if weight {
		q.hi = 1<<(bits-1) - 1
		q.lo = -q.hi
	} else {
		q.lo, q.hi = 0, 1<<bits-1
	}
	return q
}

// Forward implements nn.Quantizer.
func (q *MinMax) Forward(c *nn.Ctx, x *engine.Tensor) *engine.Tensor {
	update := c.Train || q.Weight
	momentum := 0.01
	if q.Weight {
		momentum = 1 // weights: the current range
	}
	c.B.Observe(engine.ObserveArgs{X: x, Min: q.Min.Value, Max: q.Max.Value, Scale: q.scale, ZeroPoint: q.zeroPoint,
		Update: update, Count: q.observed, Momentum: momentum, Symmetric: q.Weight, Lo: q.lo, Hi: q.hi})
	if update || q.observed == 0 {
		q.observed++
	}
	return q.forward(c, x, q.args())
}

func (q *MinMax) args() engine.FakeQuantArgs {
	return engine.FakeQuantArgs{Scale: q.scale, ZeroPoint: q.zeroPoint, ScaleMul: 1, Lo: q.lo, Hi: q.hi}
}

// Backward implements nn.Quantizer.
func (q *MinMax) Backward(c *nn.Ctx, dq, dx *engine.Tensor, accumulate bool) {
	q.backward(c, dq, dx, accumulate, q.args())
}

// Params implements nn.Quantizer.
func (q *MinMax) Params() []*nn.Param { return nil }

// States implements nn.Quantizer.
func (q *MinMax) States() []*nn.State { return []*nn.State{q.Min, q.Max, q.Observed} }
