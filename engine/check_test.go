package engine_test

import (
	"testing"

	"github.com/qmulgpu/qmulgpu/engine"
	"github.com/qmulgpu/qmulgpu/engine/cpu"
)

// TestChecksAllocateNothing holds the preconditions every op checks to
// allocating nothing on good operands: they run on every op call.
func TestChecksAllocateNothing(t *testing.T) {
	b := cpu.New(1)
	f := func(s ...int) *engine.Tensor { return b.Zeros(engine.Float32, s...) }
	i := func(s ...int) *engine.Tensor { return b.Zeros(engine.Int32, s...) }
	bn := engine.BatchNormArgs{X: f(4, 3), Y: f(4, 3), DY: f(4, 3), DX: f(4, 3), Gamma: f(3), Beta: f(3), DGamma: f(3),
		DBeta: f(3), RunMean: f(3), RunVar: f(3), Mean: f(3), InvStd: f(3), Act: engine.ReLU}
	fq := engine.FakeQuantArgs{X: f(4, 3), Y: f(4, 3), DY: f(4, 3), DX: f(4, 3), Scale: f(4), DScale: f(4)}
	ob := engine.ObserveArgs{X: f(4, 3), Min: f(4), Max: f(4), Scale: f(4), ZeroPoint: f(4)}
	g := engine.ConvGeom{N: 1, H: 4, W: 4, C: 2, K: 3, R: 3, S: 3, Stride: 1, Groups: 1}
	pg := engine.PoolGeom{N: 1, H: 4, W: 4, C: 2, Kernel: 2, Stride: 2}
	x, w, y := f(1, 4, 4, 2), f(3, 3, 3, 2), f(1, 2, 2, 3)
	loss := engine.LossArgs{Logits: f(4, 10), Labels: i(4), Weights: f(4), DLogits: f(4, 10), Loss: f(4), Pred: i(4),
		Conf: f(4), Entropy: f(4)}
	gi := engine.GatherArgs{Src: b.Zeros(engine.Uint8, 5, 4, 4, 1), Index: i(2), Crop: i(2, 2), Flip: i(2),
		Mean: []float32{0}, Std: []float32{1}, Out: f(2, 4, 4, 1)}
	ts := []*engine.Tensor{f(3), f(4)}
	one, two, pooled, six := f(1), f(2), f(1, 2, 2, 2), f(6)
	sgd := engine.SGDArgs{Param: six, Grad: six, Buf: six, Mask: six}
	for _, c := range []struct {
		name  string
		check func() error
	}{
		{"batch norm", func() error { return engine.CheckBatchNorm(bn, false) }},
		{"batch norm backward", func() error { return engine.CheckBatchNorm(bn, true) }},
		{"fake quant backward", func() error { return engine.CheckFakeQuant(fq, true) }},
		{"observe", func() error { return engine.CheckObserve(ob) }},
		{"conv backward", func() error { return engine.CheckConvBackward(x, w, y, x, w, g) }},
		{"per-sample conv", func() error { return engine.CheckConvPerSample(x, y, one, g) }},
		{"per-sample batch norm", func() error { return engine.CheckBatchNormPerSample(bn, 2, two, two) }},
		{"pool", func() error { return engine.CheckPool("pool", engine.AvgPool, x, pooled, nil, pg) }},
		{"loss", func() error { return engine.CheckSoftmaxCrossEntropy(loss) }},
		{"entropy", func() error { return engine.CheckSoftmaxEntropy(loss) }},
		{"dot", func() error { return engine.CheckDot("dot", ts, ts, two) }},
		{"sgd", func() error { return engine.CheckSGD(sgd) }},
		{"gather images", func() error { return engine.CheckGatherImages(gi) }},
	} {
		if err := c.check(); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if n := testing.AllocsPerRun(20, func() { _ = c.check() }); n > 0 {
			t.Errorf("%s: %.0f allocations", c.name, n)
		}
	}
}
