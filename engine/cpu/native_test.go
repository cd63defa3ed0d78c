//go:build !purego

package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/qmulgpu/qmulgpu/engine"
)

// TestNativeKernelsMatchGo runs every op that has a C kernel twice, with the
// C kernels and with the Go ones, on the same float32 operands, and requires
// the same bits in every output. Shapes include channel counts that are not
// multiples of the 16 lanes, fused activations, quantizer blocks that end
// part-way, values on the activations' and grid's edges, and the im2col
// convolutions (strided, grouped, padded) whose column matrices C builds.
func TestNativeKernelsMatchGo(t *testing.T) {
	for _, c := range nativeCases() {
		t.Run(c.name, func(t *testing.T) {
			want := runNative(c, false)
			got := runNative(c, true)
			for i := range want {
				for j := range want[i] {
					if math.Float32bits(got[i][j]) != math.Float32bits(want[i][j]) {
						t.Fatalf("output %d [%d]: C kernel %g (%#x), Go kernel %g (%#x)", i, j,
							got[i][j], math.Float32bits(got[i][j]), want[i][j], math.Float32bits(want[i][j]))
					}
				}
			}
		})
	}
}

// nativeCase is one op run on a fresh backend; it returns the outputs to
// compare.
type nativeCase struct {
	name string
	run  func(b *Backend, r *rand.Rand) [][]float32
}

func runNative(c nativeCase, on bool) [][]float32 {
	defer func(old bool) { useNative = old }(useNative)
	useNative = on
	return c.run(New(3), rand.New(rand.NewPCG(7, 7)))
}

// edgy draws n values from N(0, 2) with every fifth replaced by one of the
// values where activations and rounding change behaviour.
func edgy(r *rand.Rand, n int) []float32 {
	special := []float32{0, float32(math.Copysign(0, -1)), 6, -6, 0.5, 1.5, -2.5, 7.5}
	v := randF32(r, n)
	for i := range v {
		v[i] *= 2
		if i%5 == 0 {
			v[i] = special[r.IntN(len(special))]
		}
	}
	return v
}

func nativeCases() []nativeCase {
	var cs []nativeCase
	for _, shape := range [][2]int{{97, 3}, {64, 64}, {33, 100}, {1000, 17}} {
		rows, ch := shape[0], shape[1]
		for _, act := range []engine.Activation{0, engine.ReLU, engine.ReLU6} {
			for _, train := range []bool{true, false} {
				cs = append(cs, nativeCase{fmt.Sprintf("BatchNorm/%dx%d/act%d/train=%v", rows, ch, act, train),
					func(b *Backend, r *rand.Rand) [][]float32 { return batchNormOutputs(b, r, rows, ch, act, train) }})
			}
		}
		cs = append(cs, nativeCase{fmt.Sprintf("BiasGrad/%dx%d", rows, ch), func(b *Backend, r *rand.Rand) [][]float32 {
			dy, db := upload(b, edgy(r, rows*ch), rows, ch), upload(b, edgy(r, ch), ch)
			b.BiasGrad(dy, db)
			return [][]float32{F32(db)}
		}})
	}
	for _, n := range []int{1, 15, 16, 1000, 100003} {
		for _, act := range []engine.Activation{engine.ReLU, engine.ReLU6} {
			cs = append(cs, nativeCase{fmt.Sprintf("Activate/%d/act%d", n, act), func(b *Backend, r *rand.Rand) [][]float32 {
				x, dy := upload(b, edgy(r, n), n), upload(b, edgy(r, n), n)
				y, dx := b.Alloc(engine.Float32, n), b.Alloc(engine.Float32, n)
				b.Activate(act, x, nil, y)
				b.ActivateBackward(act, y, nil, dy, dx, nil)
				return [][]float32{F32(y), F32(dx)}
			}})
		}
	}
	for _, g := range []engine.ConvGeom{
		{N: 5, H: 9, W: 9, C: 3, K: 4, R: 3, S: 3, Stride: 2, Pad: 1, Groups: 1},
		{N: 2, H: 12, W: 12, C: 3, K: 8, R: 7, S: 7, Stride: 2, Pad: 3, Groups: 1},
		{N: 2, H: 5, W: 6, C: 6, K: 9, R: 3, S: 3, Stride: 1, Pad: 1, Groups: 3},
		{N: 3, H: 8, W: 7, C: 5, K: 6, R: 3, S: 3, Stride: 1, Pad: 1, Groups: 1},
		{N: 70, H: 4, W: 4, C: 16, K: 8, R: 3, S: 3, Stride: 2, Pad: 1, Groups: 1},
	} {
		cs = append(cs, nativeCase{fmt.Sprintf("Conv/%+v", g), func(b *Backend, r *rand.Rand) [][]float32 {
			x, w := upload(b, edgy(r, g.N*g.H*g.W*g.C), g.N, g.H, g.W, g.C), upload(b, edgy(r, g.K*g.R*g.S*g.C/g.Groups), g.K, g.R, g.S, g.C/g.Groups)
			y, dy := b.Alloc(engine.Float32, g.N, g.OutH(), g.OutW(), g.K), upload(b, edgy(r, g.N*g.OutH()*g.OutW()*g.K), g.N, g.OutH(), g.OutW(), g.K)
			dx, dw := b.Alloc(engine.Float32, g.N, g.H, g.W, g.C), upload(b, edgy(r, g.K*g.R*g.S*g.C/g.Groups), g.K, g.R, g.S, g.C/g.Groups)
			b.Conv2d(x, w, y, g)
			b.Conv2dBackward(x, w, dy, dx, dw, g)
			return [][]float32{F32(y), F32(dx), F32(dw)}
		}})
	}
	for _, q := range []struct {
		n, ch      int
		zero       bool
		accumulate bool
	}{{1000, 1, false, false}, {50000, 1, true, true}, {8 * 300, 8, false, true}, {7 * 9, 7, true, false}} {
		cs = append(cs, nativeCase{fmt.Sprintf("FakeQuant/%d/%dch/zp=%v/acc=%v", q.n, q.ch, q.zero, q.accumulate),
			func(b *Backend, r *rand.Rand) [][]float32 {
				return fakeQuantOutputs(b, r, q.n, q.ch, q.zero, q.accumulate)
			}})
	}
	return cs
}

func batchNormOutputs(b *Backend, r *rand.Rand, rows, ch int, act engine.Activation, train bool) [][]float32 {
	xv := edgy(r, rows*ch)
	for i := range xv {
		xv[i] += float32(i % ch) // channels with different means
	}
	pos := func(n int) []float32 {
		v := randF32(r, n)
		for i := range v {
			v[i] = 0.5 + float32(math.Abs(float64(v[i])))
		}
		return v
	}
	a := engine.BatchNormArgs{X: upload(b, xv, rows, ch), Y: b.Alloc(engine.Float32, rows, ch),
		Gamma: upload(b, pos(ch), ch), Beta: upload(b, randF32(r, ch), ch),
		RunMean: upload(b, randF32(r, ch), ch), RunVar: upload(b, pos(ch), ch),
		Mean: b.Alloc(engine.Float32, ch), InvStd: b.Alloc(engine.Float32, ch),
		Train: train, Momentum: 0.1, Eps: 1e-5, Act: act}
	b.BatchNorm(a)
	a.DY = upload(b, edgy(r, rows*ch), rows, ch)
	a.DX = b.Alloc(engine.Float32, rows, ch)
	a.DGamma, a.DBeta = upload(b, randF32(r, ch), ch), upload(b, randF32(r, ch), ch)
	b.BatchNormBackward(a)
	return [][]float32{F32(a.Y), F32(a.Mean), F32(a.InvStd), F32(a.RunMean), F32(a.RunVar), F32(a.DX), F32(a.DGamma), F32(a.DBeta)}
}

func fakeQuantOutputs(b *Backend, r *rand.Rand, n, ch int, zero, accumulate bool) [][]float32 {
	xv := edgy(r, n)
	scale := make([]float32, ch)
	for i := range scale {
		scale[i] = 0.1 + 0.3*float32(r.Float64())
	}
	a := engine.FakeQuantArgs{X: upload(b, xv, n), Y: b.Alloc(engine.Float32, n), DY: upload(b, edgy(r, n), n),
		DX: upload(b, edgy(r, n), n), Scale: upload(b, scale, ch), DScale: upload(b, randF32(r, ch), ch),
		ScaleMul: 1.5, Lo: -8, Hi: 7, GradScale: 0.01, CInside: 1, CAbove: 7, CBelow: -8, Accumulate: accumulate}
	if zero {
		zp := make([]float32, ch)
		for i := range zp {
			zp[i] = float32(r.IntN(5) - 2)
		}
		a.ZeroPoint = upload(b, zp, ch)
	}
	b.FakeQuant(a)
	b.FakeQuantBackward(a)
	return [][]float32{F32(a.Y), F32(a.DX), F32(a.DScale)}
}

// TestNativeFakeQuantSums compares the float64 sums of the step gradient
// themselves (the op rounds them to float32 after scaling, which can hide a
// different order of summation).
func TestNativeFakeQuantSums(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{1, 17, 256, 300, 4099} {
		x, dy := edgy(r, n), edgy(r, n)
		for i := range dy {
			dy[i] *= float32(math.Exp(4 * r.NormFloat64())) // magnitudes far apart
		}
		dxGo, dxC := make([]float32, n), make([]float32, n)
		in, above, below := fakeQuantGrad(x, dy, dxGo, 0.3, 1, -8, 7, false)
		cin, cabove, cbelow := nativeFakeQuantGrad(x, dy, dxC, 0.3, 1, -8, 7, false)
		if in != cin || above != cabove || below != cbelow {
			t.Errorf("n=%d: C sums %v %v %v, Go sums %v %v %v", n, cin, cabove, cbelow, in, above, below)
		}
	}
}
