package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/qmulgpu/qmulgpu/engine"
)

// The CPU backend defines what every other backend must compute, so its
// BatchNorm must be at least as accurate as the CUDA kernels'. This file
// holds a float64 reference of BatchNorm forward and backward, a port of the
// arithmetic of kernels/batchnorm.cu (per-channel sums in double precision,
// statistics rounded to float32, the apply steps in float32), and a test that
// measures both against the reference.

func TestBatchNormStatistics(t *testing.T) {
	b := New(2)
	r := rand.New(rand.NewPCG(2, 2))
	rows, c := 50, 3
	xv := randF32(r, rows*c)
	for i := range xv {
		xv[i] = xv[i]*2 + float32(i%c) // channel j has mean ≈ j
	}
	x := upload(b, xv, rows, c)
	y := b.Alloc(engine.Float32, rows, c)
	gamma := upload(b, []float32{1, 2, 0.5}, c)
	beta := upload(b, []float32{0, 1, -1}, c)
	rm := upload(b, []float32{0, 0, 0}, c)
	rv := upload(b, []float32{1, 1, 1}, c)
	mean, inv := b.Alloc(engine.Float32, c), b.Alloc(engine.Float32, c)
	b.BatchNorm(engine.BatchNormArgs{X: x, Y: y, Gamma: gamma, Beta: beta, RunMean: rm, RunVar: rv,
		Mean: mean, InvStd: inv, Train: true, Momentum: 0.1, Eps: 1e-5})
	for j := 0; j < c; j++ {
		var s, ss float64
		for i := 0; i < rows; i++ {
			s += float64(xv[i*c+j])
		}
		mu := s / float64(rows)
		for i := 0; i < rows; i++ {
			d := float64(xv[i*c+j]) - mu
			ss += d * d
		}
		v := ss / float64(rows)
		if math.Abs(float64(F32(mean)[j])-mu) > 1e-5 {
			t.Errorf("mean[%d] = %g, want %g", j, F32(mean)[j], mu)
		}
		if got, want := float64(F32(rm)[j]), 0.1*mu; math.Abs(got-want) > 1e-5 {
			t.Errorf("running mean[%d] = %g, want %g", j, got, want)
		}
		if got, want := float64(F32(rv)[j]), 0.9+0.1*ss/float64(rows-1); math.Abs(got-want) > 1e-5 {
			t.Errorf("running var[%d] = %g, want %g (unbiased)", j, got, want)
		}
		g, be := []float64{1, 2, 0.5}[j], []float64{0, 1, -1}[j]
		for i := 0; i < rows; i++ {
			want := (float64(xv[i*c+j])-mu)/math.Sqrt(v+1e-5)*g + be
			if math.Abs(float64(F32(y)[i*c+j])-want) > 1e-4 {
				t.Fatalf("y[%d,%d] = %g, want %g", i, j, F32(y)[i*c+j], want)
			}
		}
	}
}

// bnProblem is one BatchNorm input: x [rows, c] with per-channel offsets.
type bnProblem struct {
	rows, c          int
	x, dy            []float32
	gamma, beta      []float32
	runMean, runVar  []float32
	act              engine.Activation
	momentum, eps    float64
	offsetPerChannel float64
}

// newBNProblem draws x = 2·N(0,1) + off·(j − 3) for channel j (the CUDA op
// test's distribution when off = 1), γ = 3·N(0,1) (wide enough for ReLU6
// to clip), β and dy from N(0,1).
func newBNProblem(seed uint64, rows, c int, off float64, act engine.Activation) bnProblem {
	r := rand.New(rand.NewPCG(seed, 0x626e))
	p := bnProblem{rows: rows, c: c, act: act, momentum: 0.1, eps: 1e-5, offsetPerChannel: off}
	p.x = make([]float32, rows*c)
	for i := range p.x {
		p.x[i] = float32(2*r.NormFloat64() + off*float64(i%c-3))
	}
	p.dy = randF32(r, rows*c)
	p.gamma = randF32(r, c)
	for j := range p.gamma {
		p.gamma[j] *= 3
	}
	p.beta = randF32(r, c)
	p.runMean = randF32(r, c)
	p.runVar = make([]float32, c)
	for j := range p.runVar {
		p.runVar[j] = 0.5 + float32(math.Abs(r.NormFloat64()))
	}
	return p
}

// bnResult holds every output of a training-mode forward and backward.
type bnResult struct {
	y, mean, invstd, runMean, runVar []float64
	dx, dgamma, dbeta                []float64
}

// flatAt reports whether the fused activation has zero gradient at output y.
func flatAt(act engine.Activation, y float64) bool {
	return (act == engine.ReLU || act == engine.ReLU6) && y <= 0 || act == engine.ReLU6 && y >= 6
}

// bnReference computes BatchNorm in float64 from the float32 inputs. The
// forward pass uses the two-pass mean and variance: y = act(γ·(x −
// mean)·invstd + β). The backward pass takes what the backend under test
// gave its own backward pass: its saved mean and invstd, and its output y,
// where dy is zeroed when the activation is flat (so that both agree on
// where a ReLU was active). The backward op is thus measured on its own,
// not through the rounding of the saved statistics.
func bnReference(p bnProblem, yMask []float32, mean, invstd []float64) bnResult {
	rows, c := p.rows, p.c
	res := bnResult{y: make([]float64, rows*c), mean: make([]float64, c), invstd: make([]float64, c),
		runMean: make([]float64, c), runVar: make([]float64, c), dx: make([]float64, rows*c),
		dgamma: make([]float64, c), dbeta: make([]float64, c)}
	n := float64(rows)
	for j := 0; j < c; j++ {
		var s float64
		for r := 0; r < rows; r++ {
			s += float64(p.x[r*c+j])
		}
		mu := s / n
		var ss float64
		for r := 0; r < rows; r++ {
			d := float64(p.x[r*c+j]) - mu
			ss += d * d
		}
		v := ss / n
		is := 1 / math.Sqrt(v+p.eps)
		res.mean[j], res.invstd[j] = mu, is
		res.runMean[j] = (1-p.momentum)*float64(p.runMean[j]) + p.momentum*mu
		res.runVar[j] = (1-p.momentum)*float64(p.runVar[j]) + p.momentum*ss/(n-1)
		g, be := float64(p.gamma[j]), float64(p.beta[j])
		for r := 0; r < rows; r++ {
			i := r*c + j
			y := g*(float64(p.x[i])-mu)*is + be
			switch p.act {
			case engine.ReLU:
				y = math.Max(y, 0)
			case engine.ReLU6:
				y = math.Min(math.Max(y, 0), 6)
			}
			res.y[i] = y
		}
		mu, is = mean[j], invstd[j]
		var sd, sdh float64
		for r := 0; r < rows; r++ {
			i := r*c + j
			if !flatAt(p.act, float64(yMask[i])) {
				sd += float64(p.dy[i])
				sdh += float64(p.dy[i]) * (float64(p.x[i]) - mu) * is
			}
		}
		res.dgamma[j], res.dbeta[j] = sdh, sd
		for r := 0; r < rows; r++ {
			i := r*c + j
			d := float64(p.dy[i])
			if flatAt(p.act, float64(yMask[i])) {
				d = 0
			}
			xh := (float64(p.x[i]) - mu) * is
			res.dx[i] = g * is * (d - sd/n - xh*sdh/n)
		}
	}
	return res
}

// bnKernelModel follows kernels/batchnorm.cu step by step: qm_colsum_partial
// and qm_bn_backward_partial sum in double precision, qm_bn_train_stats and
// qm_bn_backward_coeffs round the statistics and coefficients to float32,
// qm_bn_apply_f32 and qm_bn_backward_apply_f32 apply them in float32. (The
// order of the double sums does not matter at this size; nvcc's FMA
// contraction, which saves a rounding here and there, is not modelled.)
func bnKernelModel(p bnProblem) (bnResult, []float32) {
	rows, c := p.rows, p.c
	res := bnResult{y: make([]float64, rows*c), mean: make([]float64, c), invstd: make([]float64, c),
		runMean: make([]float64, c), runVar: make([]float64, c), dx: make([]float64, rows*c),
		dgamma: make([]float64, c), dbeta: make([]float64, c)}
	y32 := make([]float32, rows*c)
	for j := 0; j < c; j++ {
		var sx, sxx float64
		for r := 0; r < rows; r++ {
			v := float64(p.x[r*c+j])
			sx += v
			sxx += v * v
		}
		mu := sx / float64(rows)
		v := math.Max(sxx/float64(rows)-mu*mu, 0)
		m := float32(mu)
		is := float32(1 / math.Sqrt(v+p.eps))
		res.mean[j], res.invstd[j] = float64(m), float64(is)
		unbiased := v * float64(rows) / float64(rows-1)
		res.runMean[j] = float64(float32((1-p.momentum)*float64(p.runMean[j]) + p.momentum*mu))
		res.runVar[j] = float64(float32((1-p.momentum)*float64(p.runVar[j]) + p.momentum*unbiased))
		sc := p.gamma[j] * is
		sh := p.beta[j] - m*sc
		for r := 0; r < rows; r++ {
			i := r*c + j
			y := p.x[i]*sc + sh
			switch p.act {
			case engine.ReLU:
				y = max(y, 0)
			case engine.ReLU6:
				y = min(max(y, 0), 6)
			}
			y32[i] = y
			res.y[i] = float64(y)
		}
		var sumDy, sumDyX float64
		for r := 0; r < rows; r++ {
			i := r*c + j
			if !flatAt(p.act, float64(y32[i])) {
				sumDy += float64(p.dy[i])
				sumDyX += float64(p.dy[i]) * float64(p.x[i])
			}
		}
		isd := float64(is)
		sumDyXhat := isd * (sumDyX - float64(m)*sumDy)
		res.dgamma[j] = float64(float32(sumDyXhat))
		res.dbeta[j] = float64(float32(sumDy))
		gi := float64(p.gamma[j]) * isd
		k := float32(gi)
		cu := -gi * isd * sumDyXhat / float64(rows)
		u := float32(cu)
		vv := float32(-gi*sumDy/float64(rows) - cu*float64(m))
		for r := 0; r < rows; r++ {
			i := r*c + j
			d := p.dy[i]
			if flatAt(p.act, float64(y32[i])) {
				d = 0
			}
			res.dx[i] = float64(d*k + p.x[i]*u + vv)
		}
	}
	return res, y32
}

// bnOnCPU runs a training-mode forward and backward on the CPU backend.
func bnOnCPU(b *Backend, p bnProblem) (bnResult, []float32) {
	rows, c := p.rows, p.c
	a := engine.BatchNormArgs{X: upload(b, p.x, rows, c), Y: b.Alloc(engine.Float32, rows, c),
		Gamma: upload(b, p.gamma, c), Beta: upload(b, p.beta, c),
		RunMean: upload(b, p.runMean, c), RunVar: upload(b, p.runVar, c),
		Mean: b.Alloc(engine.Float32, c), InvStd: b.Alloc(engine.Float32, c),
		Train: true, Momentum: p.momentum, Eps: p.eps, Act: p.act}
	b.BatchNorm(a)
	a.DY, a.DX = upload(b, p.dy, rows, c), b.Alloc(engine.Float32, rows, c)
	a.DGamma, a.DBeta = b.Zeros(engine.Float32, c), b.Zeros(engine.Float32, c)
	b.BatchNormBackward(a)
	wide := func(t *engine.Tensor) []float64 {
		v := make([]float64, t.Numel())
		for i, f := range F32(t) {
			v[i] = float64(f)
		}
		return v
	}
	res := bnResult{y: wide(a.Y), mean: wide(a.Mean), invstd: wide(a.InvStd), runMean: wide(a.RunMean),
		runVar: wide(a.RunVar), dx: wide(a.DX), dgamma: wide(a.DGamma), dbeta: wide(a.DBeta)}
	y := append([]float32(nil), F32(a.Y)...)
	for _, t := range []*engine.Tensor{a.X, a.Y, a.Gamma, a.Beta, a.RunMean, a.RunVar, a.Mean, a.InvStd,
		a.DY, a.DX, a.DGamma, a.DBeta} {
		b.Free(t)
	}
	return res, y
}

// bnErrors returns, per output, max_i |got_i − want_i| / max(1, |want_i|):
// the measure the CUDA op test bounds.
func bnErrors(got, want bnResult) map[string]float64 {
	e := func(g, w []float64) float64 {
		var worst float64
		for i := range g {
			worst = math.Max(worst, math.Abs(g[i]-w[i])/math.Max(1, math.Abs(w[i])))
		}
		return worst
	}
	return map[string]float64{"y": e(got.y, want.y), "mean": e(got.mean, want.mean),
		"invstd": e(got.invstd, want.invstd), "running mean": e(got.runMean, want.runMean),
		"running var": e(got.runVar, want.runVar), "dx": e(got.dx, want.dx),
		"dgamma": e(got.dgamma, want.dgamma), "dbeta": e(got.dbeta, want.dbeta)}
}

// TestBatchNormAsAccurateAsKernels measures the CPU backend and the kernels'
// arithmetic against the float64 reference: the CPU may not be worse than
// the kernels by more than one float32 rounding of the output (2⁻²⁴ in the
// error measure). It also checks the CUDA op test's bound (1e-5 between the
// CPU and the kernels) with the port of the kernels standing in for a
// device.
//
// The reference shows why that bound is not also a bound on each side's
// error: y = x·scale + shift in float32 loses up to a few roundings of
// |x·scale|, which is large next to |y| when a channel's mean is far from
// zero (about 1e-5 relative for the offsets here, on both sides alike).
func TestBatchNormAsAccurateAsKernels(t *testing.T) {
	const (
		rounding = 0x1p-24
		opTol    = 1e-5 // tolReduce in cuda/ops_test.go
	)
	cases := []struct {
		rows, c int
		off     float64
	}{
		{50, 3, 1},
		{120, 37, 1},    // the CUDA op test's [4,5,6,37]
		{20000, 16, 1},  // many rows: several chunks
		{4096, 8, 0},    // centred
		{2048, 24, 0.5}, // milder offsets
	}
	b := New(2)
	for i, tc := range cases {
		for _, act := range []engine.Activation{0, engine.ReLU, engine.ReLU6} {
			t.Run(fmt.Sprintf("%dx%d/off=%g/act=%d", tc.rows, tc.c, tc.off, act), func(t *testing.T) {
				p := newBNProblem(uint64(i+1), tc.rows, tc.c, tc.off, act)
				cpu, cpuY := bnOnCPU(b, p)
				kern, kernY := bnKernelModel(p)
				cpuErr := bnErrors(cpu, bnReference(p, cpuY, cpu.mean, cpu.invstd))
				kernErr := bnErrors(kern, bnReference(p, kernY, kern.mean, kern.invstd))
				diff := bnErrors(kern, cpu)
				for _, name := range []string{"y", "mean", "invstd", "running mean", "running var", "dx", "dgamma", "dbeta"} {
					ce, ke := cpuErr[name], kernErr[name]
					t.Logf("%-12s cpu %.2e  kernels %.2e", name, ce, ke)
					if ce > ke+rounding {
						t.Errorf("%s: CPU error %.3g exceeds the kernels' %.3g by more than one rounding", name, ce, ke)
					}
					if diff[name] > opTol {
						t.Errorf("%s: CPU and kernels differ by %.3g, more than the op test's %g", name, diff[name], opTol)
					}
				}
			})
		}
	}
}

// BenchmarkBatchNorm times a training-mode forward and backward with a
// fused ReLU at the shapes of ResNet-18's BatchNorm layers on 32×32 inputs,
// batch 64.
func BenchmarkBatchNorm(bm *testing.B) {
	for _, s := range []struct{ rows, c int }{{64 * 32 * 32, 64}, {64 * 16 * 16, 128}, {64 * 8 * 8, 256}, {64 * 4 * 4, 512}} {
		bm.Run(fmt.Sprintf("%dx%d", s.rows, s.c), func(bm *testing.B) {
			b := New(0)
			p := newBNProblem(1, s.rows, s.c, 1, engine.ReLU)
			rows, c := s.rows, s.c
			a := engine.BatchNormArgs{X: upload(b, p.x, rows, c), Y: b.Alloc(engine.Float32, rows, c),
				Gamma: upload(b, p.gamma, c), Beta: upload(b, p.beta, c),
				RunMean: upload(b, p.runMean, c), RunVar: upload(b, p.runVar, c),
				Mean: b.Alloc(engine.Float32, c), InvStd: b.Alloc(engine.Float32, c),
				DY: upload(b, p.dy, rows, c), DX: b.Alloc(engine.Float32, rows, c),
				DGamma: b.Zeros(engine.Float32, c), DBeta: b.Zeros(engine.Float32, c),
				Train: true, Momentum: p.momentum, Eps: p.eps, Act: p.act}
			bm.SetBytes(int64(4 * rows * c))
			for bm.Loop() {
				b.BatchNorm(a)
				b.BatchNormBackward(a)
			}
		})
	}
}
