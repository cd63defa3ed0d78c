package nn

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/qmulgpu/qmulgpu/engine"
	"github.com/qmulgpu/qmulgpu/engine/cpu"
)

// TestPerSampleNorms computes every sample's gradient norm in one backward
// pass and compares it with gradients materialised one sample at a time.
// BatchNorm runs in evaluation mode, where samples do not interact and a
// per-sample gradient is well defined.
func TestPerSampleNorms(t *testing.T) {
	b := cpu.New(2)
	dt := engine.Float32
	net := NewSequential(
		NewConv2d(b, dt, 3, 8, 3, 1, 1, 1, false), NewBatchNormReLU(b, dt, 8, engine.ReLU),
		NewConv2d(b, dt, 8, 8, 3, 2, 1, 8, false), NewBatchNorm(b, dt, 8), NewReLU(),
		NewConv2d(b, dt, 8, 16, 1, 1, 0, 1, false), NewBatchNorm(b, dt, 16), NewReLU(),
		&Flatten{}, NewLinear(b, dt, 16*4*4, 5))
	Init(b, net, rand.New(rand.NewPCG(1, 1)))
	randomizeBN(b, net, rand.New(rand.NewPCG(2, 2)))
	r := rand.New(rand.NewPCG(3, 3))
	n := 5
	x := randTensor(b, dt, r, n, 8, 8, 3)
	dyv := make([]float64, n*5)
	for i := range dyv {
		dyv[i] = r.NormFloat64()
	}
	c := &Ctx{B: b, Train: false, PerSample: b.Zeros(engine.Float32, n)}
	xc := b.Alloc(dt, x.Shape...)
	b.Copy(xc, x)
	net.Forward(c, xc)
	dy := b.Alloc(dt, n, 5)
	upload64(b, dy, dyv)
	net.Backward(c, dy)
	got := download64(b, c.PerSample)

	one := &Ctx{B: b, Train: false}
	for i := 0; i < n; i++ {
		ZeroGrad(b, net.Params())
		xi := b.Alloc(dt, 1, 8, 8, 3)
		b.Copy(xi, x.Slice(i, i+1))
		net.Forward(one, xi)
		d := b.Alloc(dt, 1, 5)
		upload64(b, d, dyv[i*5:(i+1)*5])
		net.Backward(one, d)
		var want float64
		for _, p := range net.Params() {
			var s float64
			for _, v := range download64(b, p.Grad) {
				s += v * v
			}
			want += math.Sqrt(s)
		}
		if math.Abs(got[i]-want) > 1e-4*want {
			t.Errorf("sample %d: one-pass norm %g, materialised %g", i, got[i], want)
		}
	}
}
