package cpu_test

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

// orderThreads is the thread count of the chunk-order test: with two
// chunks a sum combined in the wrong order is still the same (a+b = b+a),
// with four it is not ((a+b)+c ≠ (c+b)+a in floating point).
const orderThreads = 4

// TestChunkOrderDoesNotChangeTraining trains quantized models for a few
// steps on two backends of the same thread count, one as usual and one
// that runs every op's chunks one at a time from the last to the first,
// and requires bit-identical losses, parameters, gradients, per-sample
// gradient norms and states. A partial result combined in the order its
// chunks finish, which goroutine scheduling decides, would differ, and so
// would checkpoints of the same command, seed and --threads.
func TestChunkOrderDoesNotChangeTraining(t *testing.T) {
	cases := []struct {
		name  string
		model models.Config
		quant qat.Config
	}{
		{"smallcnn lsq per-channel", models.Config{Arch: "smallcnn", Classes: 10, H: 28, W: 28, C: 1},
			qat.Config{Scheme: "lsq", WBits: 4, ABits: 4, PerChannel: true, Float: qat.DefaultFloat()}},
		{"mobilenetv2 pact", models.Config{Arch: "mobilenetv2", Classes: 10, H: 32, W: 32, C: 3, Width: 0.5},
			qat.Config{Scheme: "pact", WBits: 4, ABits: 4, Float: qat.DefaultFloat()}},
		{"smallcnn minmax", models.Config{Arch: "smallcnn", Classes: 10, H: 28, W: 28, C: 1},
			qat.Config{Scheme: "minmax", WBits: 4, ABits: 4, Float: qat.DefaultFloat()}},
		// ResNet-18's 3×3 stride-1 convolutions take the Winograd path.
		{"resnet18 lsq", models.Config{Arch: "resnet18", Classes: 10, H: 8, W: 8, C: 3},
			qat.Config{Scheme: "lsq", WBits: 4, ABits: 4, Float: qat.DefaultFloat()}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want := trainBits(t, cpu.New(orderThreads), c.model, c.quant)
			got := trainBits(t, cpu.NewReversed(orderThreads), c.model, c.quant)
			if len(got) != len(want) {
				t.Fatalf("%d values, want %d", len(got), len(want))
			}
			for i := range want {
				if got[i].bits != want[i].bits {
					t.Fatalf("%s differs when chunks finish in another order: %x, want %x", want[i].name, got[i].bits, want[i].bits)
				}
			}
		})
	}
}

// namedBits is one float of a model's state, as bits.
type namedBits struct {
	name string
	bits uint64
}

// trainBits runs three training steps of a fresh model on fixed random
// data (SGD with momentum after the first two) and returns every loss,
// per-sample norm, parameter, gradient and state value.
func trainBits(t *testing.T, b *cpu.Backend, cfg models.Config, q qat.Config) []namedBits {
	t.Helper()
	m, err := models.New(b, engine.Float32, cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := qat.Apply(b, m, q); err != nil {
		t.Fatal(err)
	}
	const batch = 8
	r := rand.New(rand.NewPCG(1, 2))
	xv := make([]float32, batch*cfg.H*cfg.W*cfg.C)
	for i := range xv {
		xv[i] = float32(r.NormFloat64())
	}
	yv := make([]int32, batch)
	for i := range yv {
		yv[i] = int32(r.IntN(cfg.Classes))
	}
	bt := &train.Batch{X: b.Alloc(engine.Float32, batch, cfg.H, cfg.W, cfg.C), Y: b.Alloc(engine.Int32, batch), Index: make([]int32, batch)}
	defer bt.Free(b)
	b.Upload(bt.X, xv)
	b.Upload(bt.Y, yv)
	norms := b.Zeros(engine.Float32, batch)
	defer b.Free(norms)
	c := &nn.Ctx{B: b, Train: true, PerSample: norms}
	opt := optim.NewSGD(b, m.Params(), 0.9, 5e-4, false)
	var out []namedBits
	add := func(name string, t *engine.Tensor) {
		v := make([]float32, t.Numel())
		b.Download(t, v)
		for _, x := range v {
			out = append(out, namedBits{name, math.Float64bits(float64(x))})
		}
	}
	for step := range 3 {
		res := train.Step(c, m, bt, nil, 1.0/batch)
		out = append(out, namedBits{"loss", math.Float64bits(res.Loss)})
		add("per-sample norms", norms)
		if step < 2 {
			opt.Step(b, 0.05)
			nn.ZeroGrad(b, m.Params())
			b.Fill(norms, 0)
		}
	}
	for _, p := range m.Params() {
		add(p.Name, p.Value)
		add(p.Name+" gradient", p.Grad)
	}
	for _, s := range m.States() {
		if s.Value != nil {
			add(s.Name, s.Value)
		}
	}
	if err := b.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
