package cpu

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/qmulgpu/qmulgpu/engine"
)

func randF32(r *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}

func upload(b *Backend, v []float32, shape ...int) *engine.Tensor {
	t := b.Alloc(engine.Float32, shape...)
	b.Upload(t, v)
	return t
}

func maxRelDiff(a, b []float32) float64 {
	var worst float64
	for i := range a {
		d := math.Abs(float64(a[i] - b[i]))
		s := math.Max(1, math.Abs(float64(b[i])))
		worst = math.Max(worst, d/s)
	}
	return worst
}

// naiveConv is the textbook definition over NHWC input and [K,R,S,C/G] weights.
func naiveConv(x, w []float32, g engine.ConvGeom) []float32 {
	oh, ow := g.OutH(), g.OutW()
	cg, kg := g.C/g.Groups, g.K/g.Groups
	y := make([]float32, g.N*oh*ow*g.K)
	for n := 0; n < g.N; n++ {
		for oy := 0; oy < oh; oy++ {
			for ox := 0; ox < ow; ox++ {
				for k := 0; k < g.K; k++ {
					grp := k / kg
					var s float64
					for r := 0; r < g.R; r++ {
						for q := 0; q < g.S; q++ {
							iy, ix := oy*g.Stride-g.Pad+r, ox*g.Stride-g.Pad+q
							if iy < 0 || iy >= g.H || ix < 0 || ix >= g.W {
								continue
							}
							for c := 0; c < cg; c++ {
								s += float64(x[((n*g.H+iy)*g.W+ix)*g.C+grp*cg+c]) * float64(w[((k*g.R+r)*g.S+q)*cg+c])
							}
						}
					}
					y[((n*oh+oy)*ow+ox)*g.K+k] = float32(s)
				}
			}
		}
	}
	return y
}

func TestConvMatchesDefinition(t *testing.T) {
	geoms := []engine.ConvGeom{
		{N: 3, H: 8, W: 7, C: 5, K: 6, R: 3, S: 3, Stride: 1, Pad: 1, Groups: 1},
		{N: 5, H: 9, W: 9, C: 3, K: 4, R: 3, S: 3, Stride: 2, Pad: 1, Groups: 1},
		{N: 2, H: 12, W: 12, C: 3, K: 8, R: 7, S: 7, Stride: 2, Pad: 3, Groups: 1},
		{N: 4, H: 6, W: 6, C: 8, K: 16, R: 1, S: 1, Stride: 1, Pad: 0, Groups: 1},
		{N: 4, H: 6, W: 6, C: 8, K: 4, R: 1, S: 1, Stride: 2, Pad: 0, Groups: 1},
		{N: 2, H: 5, W: 6, C: 6, K: 9, R: 3, S: 3, Stride: 1, Pad: 1, Groups: 3},
		{N: 3, H: 7, W: 5, C: 8, K: 8, R: 3, S: 3, Stride: 2, Pad: 1, Groups: 8},
		{N: 70, H: 4, W: 4, C: 16, K: 8, R: 3, S: 3, Stride: 1, Pad: 1, Groups: 1}, // many blocks
	}
	for _, threads := range []int{1, 3} {
		b := New(threads)
		for _, g := range geoms {
			r := rand.New(rand.NewPCG(uint64(g.N), uint64(g.K)))
			xv := randF32(r, g.N*g.H*g.W*g.C)
			wv := randF32(r, g.K*g.R*g.S*g.C/g.Groups)
			x := upload(b, xv, g.N, g.H, g.W, g.C)
			w := upload(b, wv, g.K, g.R, g.S, g.C/g.Groups)
			y := b.Alloc(engine.Float32, g.N, g.OutH(), g.OutW(), g.K)
			b.Fill(y, math.NaN()) // every output must be written
			b.Conv2d(x, w, y, g)
			if d := maxRelDiff(F32(y), naiveConv(xv, wv, g)); d > 1e-4 {
				t.Errorf("threads %d, %+v: max relative difference %.3g", threads, g, d)
			}
		}
	}
}

func TestDeterministicForThreadCount(t *testing.T) {
	g := engine.ConvGeom{N: 9, H: 8, W: 8, C: 4, K: 8, R: 3, S: 3, Stride: 1, Pad: 1, Groups: 1}
	run := func() ([]float32, []float32) {
		b := New(3)
		r := rand.New(rand.NewPCG(1, 1))
		x := upload(b, randF32(r, g.N*g.H*g.W*g.C), g.N, g.H, g.W, g.C)
		w := upload(b, randF32(r, g.K*9*g.C), g.K, 3, 3, g.C)
		dy := upload(b, randF32(r, g.N*g.H*g.W*g.K), g.N, g.H, g.W, g.K)
		dx := b.Alloc(engine.Float32, x.Shape...)
		dw := b.Zeros(engine.Float32, w.Shape...)
		b.Conv2dBackward(x, w, dy, dx, dw, g)
		return append([]float32(nil), F32(dx)...), append([]float32(nil), F32(dw)...)
	}
	dx1, dw1 := run()
	dx2, dw2 := run()
	for i := range dw1 {
		if math.Float32bits(dw1[i]) != math.Float32bits(dw2[i]) {
			t.Fatalf("dw[%d] differs between identical runs", i)
		}
	}
	for i := range dx1 {
		if math.Float32bits(dx1[i]) != math.Float32bits(dx2[i]) {
			t.Fatalf("dx[%d] differs between identical runs", i)
		}
	}
}

func TestSoftmaxCrossEntropyOutputs(t *testing.T) {
	b := New(2)
	logits := upload(b, []float32{1, 2, 3, 0, 0, 0, 5, -5, 0}, 3, 3)
	labels := b.Alloc(engine.Int32, 3)
	b.Upload(labels, []int32{2, 1, 1})
	weights := upload(b, []float32{1, 0.5, -1}, 3)
	n := func(dt engine.DType) *engine.Tensor { return b.Alloc(dt, 3) }
	a := engine.LossArgs{Logits: logits, Labels: labels, Weights: weights, Scale: 1.0 / 3,
		DLogits: b.Alloc(engine.Float32, 3, 3), Loss: n(engine.Float32), Pred: n(engine.Int32),
		Conf: n(engine.Float32), Entropy: n(engine.Float32)}
	b.SoftmaxCrossEntropy(a)
	rows := [][]float64{{1, 2, 3}, {0, 0, 0}, {5, -5, 0}}
	lab := []int{2, 1, 1}
	w := []float64{1, 0.5, -1}
	for i, z := range rows {
		var s float64
		for _, v := range z {
			s += math.Exp(v)
		}
		p := make([]float64, 3)
		var h float64
		best := 0
		for j, v := range z {
			p[j] = math.Exp(v) / s
			h -= p[j] * math.Log(p[j])
			if v > z[best] {
				best = j
			}
		}
		check := func(what string, got float32, want float64) {
			if math.Abs(float64(got)-want) > 1e-5*math.Max(1, math.Abs(want)) {
				t.Errorf("row %d %s = %g, want %g", i, what, got, want)
			}
		}
		check("loss", F32(a.Loss)[i], -math.Log(p[lab[i]]))
		check("conf", F32(a.Conf)[i], p[lab[i]])
		check("entropy", F32(a.Entropy)[i], h)
		if got := I32(a.Pred)[i]; int(got) != best {
			t.Errorf("row %d pred = %d, want %d", i, got, best)
		}
		for j := range p {
			want := w[i] / 3 * p[j]
			if j == lab[i] {
				want = w[i] / 3 * (p[j] - 1)
			}
			check("dlogits", F32(a.DLogits)[i*3+j], want)
		}
	}
}

func TestSGDMatchesPyTorchSemantics(t *testing.T) {
	b := New(1)
	for _, nesterov := range []bool{false, true} {
		p := upload(b, []float32{1, -2, 3}, 3)
		g := upload(b, []float32{0.5, 0.5, -1}, 3)
		buf := b.Zeros(engine.Float32, 3)
		mask := upload(b, []float32{1, 0, 1}, 3)
		want := []float64{1, -2, 3}
		mom := []float64{0, 0, 0}
		for step := 0; step < 3; step++ {
			b.SGD(engine.SGDArgs{Param: p, Grad: g, Buf: buf, Mask: mask, LR: 0.1, Momentum: 0.9, WeightDecay: 0.01, GradScale: 1, Nesterov: nesterov})
			for i, gi := range []float64{0.5, 0.5, -1} {
				d := (gi + 0.01*want[i]) * []float64{1, 0, 1}[i]
				mom[i] = 0.9*mom[i] + d
				if nesterov {
					d += 0.9 * mom[i]
				} else {
					d = mom[i]
				}
				want[i] -= 0.1 * d
			}
		}
		for i := range want {
			if math.Abs(float64(F32(p)[i])-want[i]) > 1e-6 {
				t.Errorf("nesterov=%v: p[%d] = %g, want %g", nesterov, i, F32(p)[i], want[i])
			}
		}
		if F32(p)[1] != -2 {
			t.Errorf("masked element moved to %g", F32(p)[1])
		}
	}
}

func TestGatherImagesCropFlipNormalise(t *testing.T) {
	b := New(2)
	// Two 3×4 single-channel images with pixel value = 10·row + col (+100 for the second).
	h, w := 3, 4
	src := make([]uint8, 2*h*w)
	for n := 0; n < 2; n++ {
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				src[(n*h+y)*w+x] = uint8(100*n + 10*y + x)
			}
		}
	}
	st := b.Alloc(engine.Uint8, 2, h, w, 1)
	b.Upload(st, src)
	idx, crop, flip := b.Alloc(engine.Int32, 2), b.Alloc(engine.Int32, 2, 2), b.Alloc(engine.Int32, 2)
	b.Upload(idx, []int32{1, 0})
	b.Upload(crop, []int32{0, 2, 2, 1}) // pad 1: offsets (-1,+1) and (+1,0)
	b.Upload(flip, []int32{0, 1})
	out := b.Alloc(engine.Float32, 2, h, w, 1)
	b.GatherImages(engine.GatherArgs{Src: st, Index: idx, Crop: crop, Flip: flip, Pad: 1,
		Mean: []float32{0.5}, Std: []float32{0.25}, Out: out})
	pixel := func(n, y, x int) float64 {
		if y < 0 || y >= h || x < 0 || x >= w {
			return 0
		}
		return float64(src[(n*h+y)*w+x])
	}
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			want0 := pixel(1, y-1, x+1)
			want1 := pixel(0, y+1, (w-1-x)+0)
			for i, want := range []float64{want0, want1} {
				got := float64(F32(out)[(i*h+y)*w+x])
				if e := (want/255 - 0.5) / 0.25; math.Abs(got-e) > 1e-5 {
					t.Errorf("image %d (%d,%d) = %g, want %g", i, y, x, got, e)
				}
			}
		}
	}
}

func TestRoundSmallMatchesRoundToEven(t *testing.T) {
	cases := []float64{0, 0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 0.49999997, 127.5, 128.5, -128.5, 254.5, 255.49, 1e-7, -3.7, 1<<21 + 0.5}
	r := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		cases = append(cases, (r.Float64()-0.5)*600)
	}
	for _, v := range cases {
		if got, want := roundSmall(float32(v)), float32(math.RoundToEven(float64(float32(v)))); got != want {
			t.Fatalf("float32 %v: roundSmall %v, want %v", float32(v), got, want)
		}
		if got, want := roundSmall(v), math.RoundToEven(v); got != want {
			t.Fatalf("float64 %v: roundSmall %v, want %v", v, got, want)
		}
	}
}
