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
)

// TestTrainingStepsMatchCPU trains smallcnn for a few SGD steps on both
// backends from the same weights and batch and compares the losses and the
// updated parameters and running statistics (bound 1e-3, TF32 off).
func TestTrainingStepsMatchCPU(t *testing.T) {
	g := gpuBackend(t)
	ref := cpu.New(0)
	cfg := models.Config{Arch: "smallcnn", Classes: 10, H: 16, W: 16, C: 3}
	mc, err := models.New(ref, engine.Float32, cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	mg, err := models.New(g, engine.Float32, cfg, 2) // other weights, overwritten below
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range mc.Params() {
		copyTensor(ref, p.Value, g, mg.Params()[i].Value)
	}
	for i, s := range mc.States() {
		if s.Value != nil {
			copyTensor(ref, s.Value, g, mg.States()[i].Value)
		}
	}

	const n = 32
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
	for step := range 3 {
		rc := train.Step(&nn.Ctx{B: ref, Train: true}, mc, bc, nil, 1.0/n)
		rg := train.Step(&nn.Ctx{B: g, Train: true}, mg, bg, nil, 1.0/n)
		if err := g.Err(); err != nil {
			t.Fatal(err)
		}
		if d := math.Abs(rg.Loss-rc.Loss) / math.Max(1, math.Abs(rc.Loss)); d > 1e-3 || !rg.Finite() {
			t.Errorf("step %d: loss %g on the GPU, %g on the CPU", step, rg.Loss, rc.Loss)
		}
		t.Logf("step %d: loss %.6f (GPU) %.6f (CPU), correct %d/%d", step, rg.Loss/n, rc.Loss/n, rg.Correct, rc.Correct)
		oc.Step(ref, 0.05)
		og.Step(g, 0.05)
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
