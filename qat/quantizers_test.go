package qat

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/qmulgpu/qmulgpu/engine"
	"github.com/qmulgpu/qmulgpu/engine/cpu"
	"github.com/qmulgpu/qmulgpu/engine/nn"
)

func tensor64(b engine.Backend, v []float64, shape ...int) *engine.Tensor {
	t := b.Alloc(engine.Float64, shape...)
	b.Upload(t, v)
	return t
}

func values(b engine.Backend, t *engine.Tensor) []float64 {
	v := make([]float64, t.Numel())
	b.Download(t, v)
	return v
}

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol*math.Max(1, math.Abs(b)) }

// TestLSQHandValues checks the forward grid, the straight-through and clip
// gradients and the step gradient on values worked out by hand:
// s = 0.5, 3-bit signed (Q_N = −4, Q_P = 3).
func TestLSQHandValues(t *testing.T) {
	b := cpu.New(1)
	x := tensor64(b, []float64{-3.7, -0.3, 0.26, 0.74, 2.5, 9}, 6)
	s := tensor64(b, []float64{0.5}, 1)
	y := b.Alloc(engine.Float64, 6)
	a := engine.FakeQuantArgs{X: x, Y: y, Scale: s, ScaleMul: 1, Lo: -4, Hi: 3}
	b.FakeQuant(a)
	// v = x/s = [−7.4 −0.6 0.52 1.48 5 18] → clamp → round half even.
	wantY := []float64{-2, -0.5, 0.5, 0.5, 1.5, 1.5}
	for i, v := range values(b, y) {
		if !near(v, wantY[i], 1e-12) {
			t.Errorf("y[%d] = %g, want %g", i, v, wantY[i])
		}
	}
	dy := tensor64(b, []float64{1, 1, 1, 1, 1, 1}, 6)
	dx := b.Alloc(engine.Float64, 6)
	ds := b.Zeros(engine.Float64, 1)
	a.DY, a.DX, a.DScale, a.GradScale = dy, dx, ds, 1
	a.CInside, a.CAbove, a.CBelow = 1, 3, -4
	b.FakeQuantBackward(a)
	wantDx := []float64{0, 1, 1, 1, 0, 0}
	for i, v := range values(b, dx) {
		if v != wantDx[i] {
			t.Errorf("dx[%d] = %g, want %g", i, v, wantDx[i])
		}
	}
	// inside: (−1+0.6) + (1−0.52) + (1−1.48) = −0.4; below: −4; above: 3+3.
	if got := values(b, ds)[0]; !near(got, 1.6, 1e-12) {
		t.Errorf("ds = %g, want 1.6", got)
	}
	// Round half to even: v = 0.5 → 0, 1.5 → 2, −2.5 → −2.
	b.Upload(x, []float64{0.25, 0.75, -1.25, 0, 0, 0})
	b.FakeQuant(engine.FakeQuantArgs{X: x, Y: y, Scale: s, ScaleMul: 1, Lo: -4, Hi: 3})
	for i, want := range []float64{0, 1, -1} {
		if got := values(b, y)[i]; got != want {
			t.Errorf("half-even y[%d] = %g, want %g", i, got, want)
		}
	}
}

// quantizerCase builds one quantizer on a fresh backend.
type quantizerCase struct {
	name   string
	bits   int
	make   func(b engine.Backend) nn.Quantizer
	levels int // at most this many distinct outputs
	// bounds returns the range of the outputs after the forward pass:
	// fixed for the clipping quantizers, from the learnt or observed step
	// (and zero point) for LSQ and min-max, with the integer grid derived
	// from the bit width here rather than read from the quantizer.
	bounds func(b engine.Backend, q nn.Quantizer) (lo, hi float64)
}

// fixed returns bounds that do not depend on the quantizer's state.
func fixed(lo, hi float64) func(engine.Backend, nn.Quantizer) (float64, float64) {
	return func(engine.Backend, nn.Quantizer) (float64, float64) { return lo, hi }
}

// lsqBounds is [Q_N·s, Q_P·s] for the step s LSQ initialised from the data.
func lsqBounds(bits int, signed bool) func(engine.Backend, nn.Quantizer) (float64, float64) {
	qn, qp := 0.0, float64(int(1)<<bits-1)
	if signed {
		qn, qp = -float64(int(1)<<(bits-1)), float64(int(1)<<(bits-1)-1)
	}
	return func(b engine.Backend, q nn.Quantizer) (float64, float64) {
		s := values(b, q.(*LSQ).Step.Value)[0]
		return qn * s, qp * s
	}
}

// minMaxBounds is [s·(0 − z), s·(2^bits − 1 − z)] for the scale s and zero
// point z observed on the data.
func minMaxBounds(bits int) func(engine.Backend, nn.Quantizer) (float64, float64) {
	return func(b engine.Backend, q nn.Quantizer) (float64, float64) {
		m := q.(*MinMax)
		s, z := values(b, m.scale)[0], values(b, m.zeroPoint)[0]
		return s * (0 - z), s * (float64(int(1)<<bits-1) - z)
	}
}

func TestOutputsLieOnTheGrid(t *testing.T) {
	var cases []quantizerCase
	for _, bits := range []int{2, 4, 8} {
		cases = append(cases,
			quantizerCase{"lsq signed", bits, func(b engine.Backend) nn.Quantizer { return newLSQ(b, engine.Float64, bits, true, 1) }, 1 << bits, lsqBounds(bits, true)},
			quantizerCase{"lsq unsigned", bits, func(b engine.Backend) nn.Quantizer { return newLSQ(b, engine.Float64, bits, false, 1) }, 1 << bits, lsqBounds(bits, false)},
			quantizerCase{"pact", bits, func(b engine.Backend) nn.Quantizer { return newPACT(b, engine.Float64, bits, false) }, 1 << bits, fixed(0, 10)},
			quantizerCase{"dorefa activations", bits, func(b engine.Backend) nn.Quantizer { return newClipQuant(b, engine.Float64, bits, false) }, 1 << bits, fixed(0, 1)},
			quantizerCase{"dorefa weights", bits, func(engine.Backend) nn.Quantizer { return newDoReFaWeights(bits) }, 1 << bits, fixed(-1, 1)},
			quantizerCase{"minmax activations", bits, func(b engine.Backend) nn.Quantizer { return newMinMax(b, engine.Float64, bits, false, 1) }, 1 << bits, minMaxBounds(bits)},
		)
	}
	for _, tc := range cases {
		b := cpu.New(2)
		r := rand.New(rand.NewPCG(1, uint64(tc.bits)))
		v := make([]float64, 4000)
		for i := range v {
			v[i] = 4 * r.NormFloat64()
		}
		x := tensor64(b, v, 40, 100)
		q := tc.make(b)
		y := values(b, q.Forward(&nn.Ctx{B: b, Train: true}, x))
		lo, hi := tc.bounds(b, q)
		if !(lo < hi) || math.IsInf(lo, 0) || math.IsInf(hi, 0) {
			t.Fatalf("%s %d-bit: bounds [%g, %g], want a finite range", tc.name, tc.bits, lo, hi)
		}
		tol := 1e-12 * max(1, hi-lo)
		distinct := map[float64]bool{}
		for _, f := range y {
			distinct[f] = true
			if f < lo-tol || f > hi+tol {
				t.Fatalf("%s %d-bit: output %g outside [%g, %g]", tc.name, tc.bits, f, lo, hi)
			}
		}
		if len(distinct) > tc.levels {
			t.Errorf("%s %d-bit: %d distinct outputs, want at most %d", tc.name, tc.bits, len(distinct), tc.levels)
		}
		if len(distinct) < 2 {
			t.Errorf("%s %d-bit: only %d distinct output", tc.name, tc.bits, len(distinct))
		}
	}
}

func TestMinMaxWeightsPerChannelGrid(t *testing.T) {
	b := cpu.New(1)
	r := rand.New(rand.NewPCG(2, 2))
	v := make([]float64, 6*50)
	for i := range v {
		v[i] = float64(i/50+1) * r.NormFloat64() // channel c has scale c+1
	}
	q := newMinMax(b, engine.Float64, 4, true, 6)
	y := values(b, q.Forward(&nn.Ctx{B: b, Train: true}, tensor64(b, v, 6, 50)))
	for c := 0; c < 6; c++ {
		amax := 0.0
		for _, f := range v[c*50 : (c+1)*50] {
			amax = math.Max(amax, math.Abs(f))
		}
		step := amax / 7 // narrow 4-bit grid ±7
		levels := map[float64]bool{}
		for _, f := range y[c*50 : (c+1)*50] {
			k := f / step
			if math.Abs(k-math.Round(k)) > 1e-9 || math.Abs(k) > 7+1e-9 {
				t.Fatalf("channel %d: %g is not on the grid of step %g", c, f, step)
			}
			levels[f] = true
		}
		if len(levels) > 15 {
			t.Errorf("channel %d: %d levels, want at most 15", c, len(levels))
		}
	}
}

func TestMinMaxObserverMovingAverage(t *testing.T) {
	b := cpu.New(1)
	q := newMinMax(b, engine.Float64, 8, false, 1)
	c := &nn.Ctx{B: b, Train: true}
	q.Forward(c, tensor64(b, []float64{-1, 0.5, 3}, 3))
	q.Forward(c, tensor64(b, []float64{0.2, 0.4, 5}, 3)) // batch range [0, 5]: zero included
	mn, mx := values(b, q.Min.Value)[0], values(b, q.Max.Value)[0]
	if !near(mn, -1+0.01*(0-(-1)), 1e-12) || !near(mx, 3+0.01*(5-3), 1e-12) {
		t.Fatalf("observer [%g, %g], want [%g, %g]", mn, mx, -0.99, 3.02)
	}
	s := (mx - mn) / 255
	if got := values(b, q.scale)[0]; !near(got, s, 1e-12) {
		t.Errorf("scale %g, want %g", got, s)
	}
	if got, want := values(b, q.zeroPoint)[0], math.RoundToEven(-mn/s); got != want {
		t.Errorf("zero point %g, want %g", got, want)
	}
	// Evaluation does not move the observer.
	q.Forward(&nn.Ctx{B: b}, tensor64(b, []float64{-50, 50, 0}, 3))
	if got := values(b, q.Min.Value)[0]; got != mn {
		t.Errorf("evaluation moved the observer to %g", got)
	}
}

func TestLSQInitialisesStep(t *testing.T) {
	b := cpu.New(1)
	q := newLSQ(b, engine.Float64, 4, false, 1)
	q.Forward(&nn.Ctx{B: b, Train: true}, tensor64(b, []float64{1, -2, 3, 0}, 4))
	if got, want := values(b, q.Step.Value)[0], 2*1.5/math.Sqrt(15); !near(got, want, 1e-12) {
		t.Errorf("initial step %g, want %g", got, want)
	}
	if q.init != 1 {
		t.Error("not marked initialised")
	}
	// Per channel: one step per leading index.
	pc := newLSQ(b, engine.Float64, 4, true, 2)
	pc.Forward(&nn.Ctx{B: b, Train: true}, tensor64(b, []float64{1, 1, 4, -4}, 2, 2))
	got := values(b, pc.Step.Value)
	if !near(got[0], 2/math.Sqrt(7), 1e-12) || !near(got[1], 8/math.Sqrt(7), 1e-12) {
		t.Errorf("per-channel steps %v", got)
	}
}

// surrogate evaluates Σ dy·q with the rounding frozen at its value for the
// base step: the function whose derivative the straight-through estimator
// defines. LSQ freezes the residual round(v)−v on the integer grid (so it
// scales with s); PACT freezes it in value units (the rounding is passed
// straight through entirely, so only the clip depends on α).
func surrogate(x, dy []float64, s float64, lo, hi float64, residual []float64, scaled bool) float64 {
	var sum float64
	for i, xi := range x {
		v := math.Min(math.Max(xi/s, lo), hi)
		if scaled {
			sum += dy[i] * s * (v + residual[i])
		} else {
			sum += dy[i] * (s*v + residual[i])
		}
	}
	return sum
}

func TestStepAndAlphaGradientsMatchSurrogate(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	x, dy := make([]float64, 300), make([]float64, 300)
	for i := range x {
		x[i] = 3 * r.NormFloat64()
		dy[i] = r.NormFloat64()
	}
	for _, tc := range []struct {
		name string
		q    func(b engine.Backend) (nn.Quantizer, *nn.Param, float64, float64, float64) // quantizer, param, lo, hi, param→s
	}{
		{"lsq signed", func(b engine.Backend) (nn.Quantizer, *nn.Param, float64, float64, float64) {
			q := newLSQ(b, engine.Float64, 3, true, 1)
			return q, q.Step, -4, 3, 1
		}},
		{"lsq unsigned", func(b engine.Backend) (nn.Quantizer, *nn.Param, float64, float64, float64) {
			q := newLSQ(b, engine.Float64, 4, false, 1)
			return q, q.Step, 0, 15, 1
		}},
		{"pact", func(b engine.Backend) (nn.Quantizer, *nn.Param, float64, float64, float64) {
			q := newPACT(b, engine.Float64, 4, false)
			b.Fill(q.Alpha.Value, 4)
			return q, q.Alpha, 0, 15, 1.0 / 15
		}},
		{"pact signed", func(b engine.Backend) (nn.Quantizer, *nn.Param, float64, float64, float64) {
			q := newPACT(b, engine.Float64, 4, true)
			b.Fill(q.Alpha.Value, 4)
			return q, q.Alpha, -7, 7, 1.0 / 7
		}},
	} {
		b := cpu.New(2)
		q, p, lo, hi, mul := tc.q(b)
		c := &nn.Ctx{B: b, Train: true}
		xt := tensor64(b, x, 300)
		q.Forward(c, xt)
		param := values(b, p.Value)[0]
		s := param * mul
		residual := make([]float64, len(x))
		for i, xi := range x {
			v := math.Min(math.Max(xi/s, lo), hi)
			residual[i] = math.RoundToEven(v) - v
		}
		dx := b.Alloc(engine.Float64, 300)
		q.Backward(c, tensor64(b, dy, 300), dx, false)
		grad := values(b, p.Grad)[0]
		gscale := 1.0
		_, lsq := q.(*LSQ)
		if lsq {
			gscale = 1 / math.Sqrt(300*hi)
		} else {
			for i := range residual {
				residual[i] *= s
			}
		}
		h := 1e-6
		num := (surrogate(x, dy, (param+h)*mul, lo, hi, residual, lsq) - surrogate(x, dy, (param-h)*mul, lo, hi, residual, lsq)) / (2 * h)
		if !near(grad, gscale*num, 1e-6) {
			t.Errorf("%s: parameter gradient %g, surrogate central difference %g", tc.name, grad, gscale*num)
		}
		// The input gradient is the clip mask.
		dxv := values(b, dx)
		for i, xi := range x {
			v := xi / s
			want := dy[i]
			if v < lo || v > hi {
				want = 0
			}
			if dxv[i] != want {
				t.Fatalf("%s: dx[%d] = %g, want %g (v = %g)", tc.name, i, dxv[i], want, v)
			}
		}
	}
}

func TestDoReFaWeightGradientMatchesCentralDifferences(t *testing.T) {
	b := cpu.New(1)
	r := rand.New(rand.NewPCG(4, 4))
	w, dy := make([]float64, 40), make([]float64, 40)
	for i := range w {
		w[i] = r.NormFloat64()
		dy[i] = r.NormFloat64()
	}
	// The surrogate of DoReFa's weight map without rounding is tanh(w)/M.
	f := func(w []float64) float64 {
		m := 0.0
		for _, v := range w {
			m = math.Max(m, math.Abs(math.Tanh(v)))
		}
		var s float64
		for i, v := range w {
			s += dy[i] * math.Tanh(v) / m
		}
		return s
	}
	q := newDoReFaWeights(4)
	wt := tensor64(b, w, 40)
	c := &nn.Ctx{B: b, Train: true}
	q.Forward(c, wt)
	dw := b.Zeros(engine.Float64, 40)
	q.Backward(c, tensor64(b, dy, 40), dw, true)
	got := values(b, dw)
	for i := range w {
		h := 1e-6
		wp := append([]float64(nil), w...)
		wm := append([]float64(nil), w...)
		wp[i] += h
		wm[i] -= h
		num := (f(wp) - f(wm)) / (2 * h)
		if !near(got[i], num, 1e-6) {
			t.Errorf("dw[%d] = %g, central difference %g", i, got[i], num)
		}
	}
}
