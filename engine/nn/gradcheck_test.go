package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/qmulgpu/qmulgpu/engine"
	"github.com/qmulgpu/qmulgpu/engine/cpu"
)

// The gradient checks build each layer twice, in float64 and float32 with
// identical parameters, and compare both analytic backward passes against
// float64 central differences of L = Σ dy ⊙ layer(x).

const (
	fdStep   = 1e-6
	tol64    = 1e-6
	tol32    = 1e-3
	maxProbe = 48 // coordinates probed per tensor
)

type gradCase struct {
	name  string
	shape []int // input shape
	train bool
	make  func(b engine.Backend, dt engine.DType) Layer
	// prepare sets non-trainable state (e.g. BN running statistics).
	prepare func(b engine.Backend, l Layer, r *rand.Rand)
}

func randTensor(b engine.Backend, dt engine.DType, r *rand.Rand, shape ...int) *engine.Tensor {
	t := b.Alloc(dt, shape...)
	v := make([]float64, t.Numel())
	for i := range v {
		v[i] = r.NormFloat64()
	}
	upload64(b, t, v)
	return t
}

func upload64(b engine.Backend, t *engine.Tensor, v []float64) {
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

func download64(b engine.Backend, t *engine.Tensor) []float64 {
	v := make([]float64, t.Numel())
	if t.DType == engine.Float64 {
		b.Download(t, v)
		return v
	}
	f := make([]float32, t.Numel())
	b.Download(t, f)
	for i, x := range f {
		v[i] = float64(x)
	}
	return v
}

// evalLoss runs a fresh forward on a copy of x and returns Σ dy·y.
func evalLoss(c *Ctx, l Layer, x *engine.Tensor, dy []float64) float64 {
	xc := c.B.Alloc(x.DType, x.Shape...)
	c.B.Copy(xc, x)
	y := l.Forward(c, xc)
	v := download64(c.B, y)
	l.Release(c)
	c.B.Free(xc)
	var s float64
	for i := range v {
		s += v[i] * dy[i]
	}
	return s
}

// probes picks up to maxProbe coordinates of an n-element tensor.
func probes(r *rand.Rand, n int) []int {
	if n <= maxProbe {
		idx := make([]int, n)
		for i := range idx {
			idx[i] = i
		}
		return idx
	}
	return r.Perm(n)[:maxProbe]
}

func relErr(a, b []float64) float64 {
	var num, den float64
	for i := range a {
		num += (a[i] - b[i]) * (a[i] - b[i])
		den = math.Max(den, math.Max(math.Abs(a[i]), math.Abs(b[i])))
	}
	if den == 0 {
		return math.Sqrt(num)
	}
	return math.Sqrt(num/float64(len(a))) / den
}

func runGradCheck(t *testing.T, tc gradCase) {
	b := cpu.New(2)
	r := rand.New(rand.NewPCG(1, 2))
	l64 := tc.make(b, engine.Float64)
	l32 := tc.make(b, engine.Float32)
	Init(b, l64, rand.New(rand.NewPCG(3, 4)))
	if tc.prepare != nil {
		tc.prepare(b, l64, rand.New(rand.NewPCG(5, 6)))
	}
	copyState(b, l64, l32)
	c := &Ctx{B: b, Train: tc.train}

	x64 := randTensor(b, engine.Float64, r, tc.shape...)
	x32 := b.Alloc(engine.Float32, tc.shape...)
	upload64(b, x32, download64(b, x64))

	// Analytic gradients in both precisions.
	grads := func(l Layer, x *engine.Tensor) (dx []float64, dps [][]float64, dyv []float64) {
		ZeroGrad(b, l.Params())
		xc := b.Alloc(x.DType, x.Shape...)
		b.Copy(xc, x)
		y := l.Forward(c, xc)
		if dyv == nil {
			dyv = make([]float64, y.Numel())
			rr := rand.New(rand.NewPCG(7, 8))
			for i := range dyv {
				dyv[i] = rr.NormFloat64()
			}
		}
		dy := b.Alloc(y.DType, y.Shape...)
		upload64(b, dy, dyv)
		d := l.Backward(c, dy)
		if d != nil {
			dx = download64(b, d)
		}
		for _, p := range l.Params() {
			dps = append(dps, download64(b, p.Grad))
		}
		return dx, dps, dyv
	}
	dx64, dp64, dyv := grads(l64, x64)
	dx32, dp32, _ := grads(l32, x32)

	// Numerical gradients in float64, probing a subset of coordinates.
	numeric := func(target *engine.Tensor, probe []int) []float64 {
		vals := download64(b, target)
		out := make([]float64, len(probe))
		for k, i := range probe {
			orig := vals[i]
			vals[i] = orig + fdStep
			upload64(b, target, vals)
			fp := evalLoss(c, l64, x64, dyv)
			vals[i] = orig - fdStep
			upload64(b, target, vals)
			fm := evalLoss(c, l64, x64, dyv)
			vals[i] = orig
			upload64(b, target, vals)
			out[k] = (fp - fm) / (2 * fdStep)
		}
		return out
	}
	compare := func(what string, analytic64, analytic32 []float64, target *engine.Tensor) {
		probe := probes(r, target.Numel())
		num := numeric(target, probe)
		a64 := make([]float64, len(probe))
		a32 := make([]float64, len(probe))
		for k, i := range probe {
			a64[k], a32[k] = analytic64[i], analytic32[i]
		}
		if e := relErr(a64, num); e > tol64 || math.IsNaN(e) {
			t.Errorf("%s float64: relative error %.3g > %g\nanalytic %v\nnumeric  %v", what, e, tol64, a64[:min(6, len(a64))], num[:min(6, len(num))])
		}
		if e := relErr(a32, num); e > tol32 || math.IsNaN(e) {
			t.Errorf("%s float32: relative error %.3g > %g\nanalytic %v\nnumeric  %v", what, e, tol32, a32[:min(6, len(a32))], num[:min(6, len(num))])
		}
	}
	if dx64 != nil {
		compare("input", dx64, dx32, x64)
	}
	for i, p := range l64.Params() {
		compare(fmt.Sprintf("param %d (%s)", i, p.Local), dp64[i], dp32[i], p.Value)
	}
}

// copyState copies parameters and states from one tree to its twin of
// another precision.
func copyState(b engine.Backend, from, to Layer) {
	fp, tp := from.Params(), to.Params()
	for i := range fp {
		upload64(b, tp[i].Value, download64(b, fp[i].Value))
	}
	fs, ts := from.States(), to.States()
	for i := range fs {
		if fs[i].Value != nil {
			upload64(b, ts[i].Value, download64(b, fs[i].Value))
		}
	}
}

func convCase(name string, shape []int, in, out, k, stride, pad, groups int, bias bool) gradCase {
	return gradCase{name: name, shape: shape, make: func(b engine.Backend, dt engine.DType) Layer {
		return NewConv2d(b, dt, in, out, k, stride, pad, groups, bias)
	}}
}

func randomizeBN(b engine.Backend, l Layer, r *rand.Rand) {
	for _, p := range l.Params() {
		v := make([]float64, p.Value.Numel())
		for i := range v {
			v[i] = 0.5 + r.Float64()
		}
		upload64(b, p.Value, v)
	}
	for _, s := range l.States() {
		if s.Value != nil {
			v := make([]float64, s.Value.Numel())
			for i := range v {
				v[i] = 0.5 + r.Float64()
			}
			upload64(b, s.Value, v)
		}
	}
}

func TestGradients(t *testing.T) {
	cases := []gradCase{
		convCase("conv3x3", []int{3, 6, 5, 4}, 4, 5, 3, 1, 1, 1, false),
		convCase("conv3x3 stride2 bias", []int{2, 7, 6, 3}, 3, 4, 3, 2, 1, 1, true),
		convCase("conv7x7 stride2 pad3", []int{2, 9, 9, 2}, 2, 3, 7, 2, 3, 1, false),
		convCase("conv1x1", []int{2, 4, 4, 6}, 6, 5, 1, 1, 0, 1, false),
		convCase("conv1x1 stride2", []int{2, 5, 5, 3}, 3, 4, 1, 2, 0, 1, false),
		convCase("conv grouped", []int{2, 5, 4, 6}, 6, 4, 3, 1, 1, 2, false),
		convCase("conv depthwise", []int{3, 5, 6, 4}, 4, 4, 3, 1, 1, 4, false),
		convCase("conv depthwise stride2", []int{2, 7, 7, 3}, 3, 3, 3, 2, 1, 3, true),
		convCase("conv no pad", []int{2, 5, 5, 2}, 2, 3, 3, 1, 0, 1, false),
		{name: "linear", shape: []int{4, 7}, make: func(b engine.Backend, dt engine.DType) Layer { return NewLinear(b, dt, 7, 3) }},
		{name: "linear from map", shape: []int{3, 2, 2, 3}, make: func(b engine.Backend, dt engine.DType) Layer { return NewLinear(b, dt, 12, 4) }},
		{name: "batchnorm train", shape: []int{4, 3, 2, 5}, train: true, prepare: randomizeBN,
			make: func(b engine.Backend, dt engine.DType) Layer { return NewBatchNorm(b, dt, 5) }},
		{name: "batchnorm eval", shape: []int{4, 3, 2, 5}, prepare: randomizeBN,
			make: func(b engine.Backend, dt engine.DType) Layer { return NewBatchNorm(b, dt, 5) }},
		{name: "batchnorm1d train", shape: []int{6, 4}, train: true, prepare: randomizeBN,
			make: func(b engine.Backend, dt engine.DType) Layer { return NewBatchNorm(b, dt, 4) }},
		{name: "relu", shape: []int{3, 4, 4, 2}, make: func(engine.Backend, engine.DType) Layer { return NewReLU() }},
		{name: "relu6", shape: []int{3, 4, 4, 2}, make: func(b engine.Backend, dt engine.DType) Layer {
			return NewSequential(&scaleLayer{4}, NewReLU6())
		}},
		{name: "prelu scalar", shape: []int{3, 4, 2}, make: func(b engine.Backend, dt engine.DType) Layer { return NewPReLU(b, dt, 1) }},
		{name: "prelu channels", shape: []int{3, 4, 4, 2}, make: func(b engine.Backend, dt engine.DType) Layer { return NewPReLU(b, dt, 2) }},
		{name: "maxpool 2x2", shape: []int{2, 4, 6, 3}, make: func(engine.Backend, engine.DType) Layer { return NewMaxPool(2, 2, 0) }},
		{name: "maxpool 3x3 s2 p1", shape: []int{2, 7, 5, 2}, make: func(engine.Backend, engine.DType) Layer { return NewMaxPool(3, 2, 1) }},
		{name: "avgpool 3x3 s1 p1", shape: []int{2, 5, 4, 2}, make: func(engine.Backend, engine.DType) Layer { return NewAvgPool(3, 1, 1) }},
		{name: "avgpool 2x2", shape: []int{2, 4, 4, 3}, make: func(engine.Backend, engine.DType) Layer { return NewAvgPool(2, 2, 0) }},
		{name: "global avgpool", shape: []int{3, 3, 5, 4}, make: func(engine.Backend, engine.DType) Layer { return &GlobalAvgPool{} }},
		{name: "residual identity", shape: []int{2, 4, 4, 3}, train: true, make: func(b engine.Backend, dt engine.DType) Layer {
			main := NewSequential(NewConv2d(b, dt, 3, 3, 3, 1, 1, 1, false), NewBatchNorm(b, dt, 3), NewReLU(), NewConv2d(b, dt, 3, 3, 3, 1, 1, 1, false))
			return &Residual{Main: Child{"", main}, Post: NewReLU()}
		}},
		{name: "residual projection", shape: []int{2, 6, 6, 2}, train: true, make: func(b engine.Backend, dt engine.DType) Layer {
			main := NewSequential(NewConv2d(b, dt, 2, 4, 3, 2, 1, 1, false), NewBatchNorm(b, dt, 4))
			sc := NewSequential(NewConv2d(b, dt, 2, 4, 1, 2, 0, 1, false), NewBatchNorm(b, dt, 4))
			return &Residual{Main: Child{"", main}, Shortcut: &Child{"downsample", sc}, Post: NewReLU()}
		}},
		{name: "conv-bn-relu-flatten-linear", shape: []int{3, 5, 5, 2}, train: true, make: func(b engine.Backend, dt engine.DType) Layer {
			return NewSequential(NewConv2d(b, dt, 2, 4, 3, 2, 1, 1, false), NewBatchNorm(b, dt, 4), NewReLU(), &Flatten{}, NewLinear(b, dt, 36, 3))
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { runGradCheck(t, tc) })
	}
}

// scaleLayer multiplies by a constant, spreading inputs over ReLU6's range.
type scaleLayer struct{ k float64 }

func (s *scaleLayer) Forward(c *Ctx, x *engine.Tensor) *engine.Tensor {
	c.B.Scale(x, s.k)
	return x
}
func (s *scaleLayer) Backward(c *Ctx, dy *engine.Tensor) *engine.Tensor {
	dx := c.B.Alloc(dy.DType, dy.Shape...)
	c.B.Copy(dx, dy)
	c.B.Scale(dx, s.k)
	return dx
}
func (s *scaleLayer) Release(*Ctx)     {}
func (s *scaleLayer) Params() []*Param { return nil }
func (s *scaleLayer) States() []*State { return nil }

func TestFusedBatchNormActivation(t *testing.T) {
	for _, act := range []engine.Activation{engine.ReLU, engine.ReLU6} {
		for _, train := range []bool{true, false} {
			runGradCheck(t, gradCase{name: "fused", shape: []int{4, 3, 2, 5}, train: train, prepare: randomizeBN,
				make: func(b engine.Backend, dt engine.DType) Layer { return NewBatchNormReLU(b, dt, 5, act) }})
		}
	}
}
