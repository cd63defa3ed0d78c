package cpu

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/qmulgpu/qmulgpu/engine"
)

// TestConvPerSampleSqNorm compares the per-sample norms with weight
// gradients materialised one sample at a time, for shapes that take the
// direct path and shapes that take the ghost-norm path.
func TestConvPerSampleSqNorm(t *testing.T) {
	geoms := []engine.ConvGeom{
		{N: 3, H: 8, W: 8, C: 3, K: 4, R: 3, S: 3, Stride: 1, Pad: 1, Groups: 1},   // direct
		{N: 4, H: 2, W: 2, C: 32, K: 64, R: 3, S: 3, Stride: 1, Pad: 1, Groups: 1}, // ghost
		{N: 2, H: 5, W: 5, C: 8, K: 8, R: 3, S: 3, Stride: 2, Pad: 1, Groups: 8},   // depthwise
		{N: 3, H: 4, W: 4, C: 6, K: 6, R: 3, S: 3, Stride: 1, Pad: 1, Groups: 2},   // grouped
		{N: 5, H: 1, W: 1, C: 40, K: 10, R: 1, S: 1, Stride: 1, Pad: 0, Groups: 1}, // linear
		{N: 2, H: 3, W: 3, C: 16, K: 16, R: 1, S: 1, Stride: 1, Pad: 0, Groups: 1}, // pointwise
	}
	b := New(2)
	for _, g := range geoms {
		r := rand.New(rand.NewPCG(uint64(g.C), uint64(g.K)))
		oh, ow := g.OutH(), g.OutW()
		x := upload(b, randF32(r, g.N*g.H*g.W*g.C), g.N, g.H, g.W, g.C)
		w := upload(b, randF32(r, g.K*g.R*g.S*g.C/g.Groups), g.K, g.R, g.S, g.C/g.Groups)
		dy := upload(b, randF32(r, g.N*oh*ow*g.K), g.N, oh, ow, g.K)
		out := b.Alloc(engine.Float32, g.N)
		b.ConvPerSampleSqNorm(x, dy, out, g)
		for n := 0; n < g.N; n++ {
			one := g
			one.N = 1
			dw := b.Zeros(engine.Float32, w.Shape...)
			b.Conv2dBackward(x.Slice(n, n+1), w, dy.Slice(n, n+1), nil, dw, one)
			var want float64
			for _, v := range F32(dw) {
				want += float64(v) * float64(v)
			}
			if got := float64(F32(out)[n]); math.Abs(got-want) > 1e-4*want {
				t.Errorf("%+v sample %d: %g, materialised %g (ghost %v)", g, n, got, want, ghostCheaper(oh*ow, g.R*g.S*g.C/g.Groups, g.K/g.Groups))
			}
		}
	}
}

func TestBatchNormPerSampleSqNorm(t *testing.T) {
	b := New(2)
	r := rand.New(rand.NewPCG(5, 5))
	n, pix, c := 4, 6, 3
	x := upload(b, randF32(r, n*pix*c), n*pix, c)
	dy := upload(b, randF32(r, n*pix*c), n*pix, c)
	mean := upload(b, []float32{0.1, -0.2, 0.3}, c)
	inv := upload(b, []float32{1.5, 0.7, 2}, c)
	gamma := upload(b, []float32{1, 1, 1}, c)
	sg, sb := b.Alloc(engine.Float32, n), b.Alloc(engine.Float32, n)
	a := engine.BatchNormArgs{X: x, DY: dy, Gamma: gamma, Mean: mean, InvStd: inv, Train: true}
	b.BatchNormPerSampleSqNorm(a, n, sg, sb)
	for s := 0; s < n; s++ {
		dg, db := b.Zeros(engine.Float32, c), b.Zeros(engine.Float32, c)
		one := a
		one.X, one.DY, one.DGamma, one.DBeta = x.Slice(s*pix, (s+1)*pix), dy.Slice(s*pix, (s+1)*pix), dg, db
		b.BatchNormBackward(one)
		var wg, wb float64
		for j := 0; j < c; j++ {
			wg += float64(F32(dg)[j]) * float64(F32(dg)[j])
			wb += float64(F32(db)[j]) * float64(F32(db)[j])
		}
		if got := float64(F32(sg)[s]); math.Abs(got-wg) > 1e-4*wg {
			t.Errorf("sample %d gamma: %g, materialised %g", s, got, wg)
		}
		if got := float64(F32(sb)[s]); math.Abs(got-wb) > 1e-4*wb {
			t.Errorf("sample %d beta: %g, materialised %g", s, got, wb)
		}
	}
}

func TestSimilarLabels(t *testing.T) {
	b := New(1)
	// Row 0: p ∝ e^[3 2 0 1], label 0 → the runner-up, class 1.
	// Row 1: label 2 (a low class): the class whose probability is closest to p_2.
	// Row 2: all equal: the first class other than the label.
	logits := upload(b, []float32{3, 2, 0, 1, 3, 2, 0, 1, 0, 0, 0, 0}, 3, 4)
	labels := b.Alloc(engine.Int32, 3)
	b.Upload(labels, []int32{0, 2, 0})
	out := b.Alloc(engine.Int32, 3)
	b.SimilarLabels(logits, labels, out)
	want := []int32{1, 3, 1}
	for i, w := range want {
		if got := I32(out)[i]; got != w {
			t.Errorf("row %d: similar label %d, want %d", i, got, w)
		}
		if I32(out)[i] == I32(labels)[i] {
			t.Errorf("row %d: similar label equals the true label", i)
		}
	}
}

func TestSoftmaxEntropyGradient(t *testing.T) {
	b := New(1)
	z := []float64{0.3, -1.2, 2.0, 0.5}
	ent := func(z []float64) float64 {
		var s, h float64
		for _, v := range z {
			s += math.Exp(v)
		}
		for _, v := range z {
			p := math.Exp(v) / s
			h -= p * math.Log(p)
		}
		return h
	}
	lt := b.Alloc(engine.Float64, 1, 4)
	b.Upload(lt, z)
	dl, e := b.Alloc(engine.Float64, 1, 4), b.Alloc(engine.Float64, 1)
	b.SoftmaxEntropy(engine.LossArgs{Logits: lt, Scale: -2, DLogits: dl, Entropy: e})
	if math.Abs(F64(e)[0]-ent(z)) > 1e-12 {
		t.Errorf("entropy %g, want %g", F64(e)[0], ent(z))
	}
	for j := range z {
		zp, zm := append([]float64(nil), z...), append([]float64(nil), z...)
		zp[j] += 1e-6
		zm[j] -= 1e-6
		want := -2 * (ent(zp) - ent(zm)) / 2e-6
		if math.Abs(F64(dl)[j]-want) > 1e-6 {
			t.Errorf("dlogits[%d] = %g, central difference %g", j, F64(dl)[j], want)
		}
	}
}
