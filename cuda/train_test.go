//go:build cuda

package cuda

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/qmulgpu/qmulgpu/engine"
	"github.com/qmulgpu/qmulgpu/engine/cpu"
	"github.com/qmulgpu/qmulgpu/engine/models"
	"github.com/qmulgpu/qmulgpu/engine/nn"
	"github.com/qmulgpu/qmulgpu/engine/optim"
	"github.com/qmulgpu/qmulgpu/engine/train"
	"github.com/qmulgpu/qmulgpu/qat"
)

// TestTrainingStepsMatchCPU trains each model for a few SGD steps on both
// backends from the same weights and batch and compares the losses and the
// updated parameters and running statistics (bound 1e-3, TF32 off): the
// three architectures at test sizes, in float and with LSQ W4A4 (the
// reference code's float stem, downsample and classifier).
//
// ResNet-18 and MobileNetV2 take one step: at 16×16 their last BatchNorms
// normalise over a handful of values (batch 8, 1×1 or 2×2 maps), and
// gradients of up to ~10 on weights of ~0.1 make the next steps chaotic —
// float32 rounding differences of 1e-4 of a gradient's scale (the
// same on two CPU runs with different summation orders) grow into
// different trajectories, so later steps would test the model, not the
// kernels. One step still runs every forward and backward kernel and the
// optimizer.
func TestTrainingStepsMatchCPU(t *testing.T) {
	g := gpuBackend(t)
	lsq := qat.Config{Scheme: "lsq", WBits: 4, ABits: 4, Float: qat.DefaultFloat()}
	tests := []struct {
		cfg          models.Config
		quant        qat.Config
		batch, steps int
	}{
		{models.Config{Arch: "smallcnn", Classes: 10, H: 16, W: 16, C: 3}, qat.Config{}, 32, 3},
		{models.Config{Arch: "smallcnn", Classes: 10, H: 16, W: 16, C: 3}, lsq, 32, 3},
		{models.Config{Arch: "resnet18", Classes: 10, H: 16, W: 16, C: 3}, qat.Config{}, 8, 1},
		{models.Config{Arch: "resnet18", Classes: 10, H: 16, W: 16, C: 3}, lsq, 8, 1},
		{models.Config{Arch: "mobilenetv2", Classes: 10, H: 16, W: 16, C: 3, Width: 0.5}, qat.Config{}, 8, 1},
		{models.Config{Arch: "mobilenetv2", Classes: 10, H: 16, W: 16, C: 3, Width: 0.5}, lsq, 8, 1},
	}
	for _, tc := range tests {
		t.Run(tc.cfg.Arch+"/"+tc.quant.String(), func(t *testing.T) {
			trainingStepsMatch(t, g, tc.cfg, tc.quant, tc.batch, tc.steps)
		})
	}
}

// trainingStepsMatch runs SGD steps of one model on the CPU and on g.
func trainingStepsMatch(t *testing.T, g *Backend, cfg models.Config, q qat.Config, n, steps int) {
	ref := cpu.New(0)
	build := func(b engine.Backend, seed uint64) *models.Model {
		m, err := models.New(b, engine.Float32, cfg, seed)
		if err != nil {
			t.Fatal(err)
		}
		if err := qat.Apply(b, m, q); err != nil {
			t.Fatal(err)
		}
		return m
	}
	mc := build(ref, 1)
	mg := build(g, 2) // other weights, overwritten below
	for i, p := range mc.Params() {
		copyTensor(ref, p.Value, g, mg.Params()[i].Value)
	}
	for i, s := range mc.States() {
		if s.Value != nil {
			copyTensor(ref, s.Value, g, mg.States()[i].Value)
		}
	}

	r := rand.New(rand.NewPCG(3, 3))
	xv := make([]float32, n*cfg.H*cfg.W*cfg.C)
	for i := range xv {
		xv[i] = float32(r.NormFloat64())
	}
	yv := make([]int32, n)
	for i := range yv {
		yv[i] = int32(r.IntN(cfg.Classes))
	}
	batch := func(b engine.Backend) *train.Batch {
		bt := &train.Batch{X: b.Alloc(engine.Float32, n, cfg.H, cfg.W, cfg.C), Y: b.Alloc(engine.Int32, n), Index: make([]int32, n)}
		b.Upload(bt.X, xv)
		b.Upload(bt.Y, yv)
		return bt
	}
	bc, bg := batch(ref), batch(g)
	defer bc.Free(ref)
	defer bg.Free(g)
	oc := optim.NewSGD(ref, mc.Params(), 0.9, 5e-4, true)
	og := optim.NewSGD(g, mg.Params(), 0.9, 5e-4, true)
	const lr = 0.05
	for step := range steps {
		rc := train.Step(&nn.Ctx{B: ref, Train: true}, mc, bc, nil, 1.0/float64(n))
		rg := train.Step(&nn.Ctx{B: g, Train: true}, mg, bg, nil, 1.0/float64(n))
		if err := g.Err(); err != nil {
			t.Fatal(err)
		}
		if d := math.Abs(rg.Loss-rc.Loss) / math.Max(1, math.Abs(rc.Loss)); d > 1e-3 || !rg.Finite() {
			t.Errorf("step %d: loss %g on the GPU, %g on the CPU", step, rg.Loss, rc.Loss)
		}
		t.Logf("step %d: loss %.6f (GPU) %.6f (CPU), correct %d/%d", step, rg.Loss/float64(n), rc.Loss/float64(n), rg.Correct, rc.Correct)
		oc.Step(ref, lr)
		og.Step(g, lr)
		nn.ZeroGrad(ref, mc.Params())
		nn.ZeroGrad(g, mg.Params())
	}
	for i, p := range mc.Params() {
		compareTensor(t, p.Name, ref, p.Value, g, mg.Params()[i].Value, 1e-3)
	}
	for i, s := range mc.States() {
		if s.Value != nil {
			compareTensor(t, s.Name, ref, s.Value, g, mg.States()[i].Value, 1e-3)
		}
	}
	if err := g.Err(); err != nil {
		t.Fatal(err)
	}
}

// copyTensor copies a Float32 tensor between backends.
func copyTensor(from engine.Backend, src *engine.Tensor, to engine.Backend, dst *engine.Tensor) {
	v := make([]float32, src.Numel())
	from.Download(src, v)
	to.Upload(dst, v)
}

// compareTensor checks |gpu − cpu| ≤ tol·max(1, |cpu|) element by element.
func compareTensor(t *testing.T, name string, rb engine.Backend, rt *engine.Tensor, gb engine.Backend, gt *engine.Tensor, tol float64) {
	t.Helper()
	want, got := make([]float32, rt.Numel()), make([]float32, gt.Numel())
	rb.Download(rt, want)
	gb.Download(gt, got)
	for i := range want {
		w := float64(want[i])
		if d := math.Abs(float64(got[i])-w) / math.Max(1, math.Abs(w)); !(d <= tol) {
			t.Errorf("%s[%d] = %g on the GPU, %g on the CPU", name, i, got[i], want[i])
			return
		}
	}
}
